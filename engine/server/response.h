/*
 * response.h - the JSON bodies and Server-Sent Events the server sends, in
 * OpenAI's shapes.
 *
 *   errors          {"error":{"message","type","param","code"}}
 *   completions     {"id","object":"text_completion"|"chat.completion","created","model",
 *                    "choices":[{"index":0,"text"|"message",...,"finish_reason"}],
 *                    "usage":{"prompt_tokens","completion_tokens","total_tokens"}}
 *   stream chunks   "data: {...chunk...}\n\n" with object "text_completion" or
 *                   "chat.completion.chunk"; the stream ends with "data: [DONE]\n\n"
 *   models          {"object":"list","data":[{"id","object":"model",...}]}
 *
 * Every function returns a malloc'd NUL-terminated string (the caller frees
 * it) or NULL when memory ran out. Generated text may hold any bytes: it is
 * written as valid UTF-8 (see strbuf.h).
 */
#ifndef QUARRY_SERVER_RESPONSE_H
#define QUARRY_SERVER_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/server/request.h"

#define SRV_SSE_DONE "data: [DONE]\n\n"
#define SRV_SSE_KEEPALIVE ": keepalive\n\n"

struct srv_usage {
    int32_t prompt_tokens, completion_tokens;
};

/* What every completion body and chunk of one request repeats. */
struct srv_response_meta {
    enum srv_endpoint endpoint;
    const char *id;           /* "chatcmpl-..." / "cmpl-..." */
    long long created;        /* Unix seconds */
    const char *model;
    bool usage_field;         /* chunks carry "usage":null (stream_options.include_usage) */
};

/* param and code may be NULL (written as null). */
char *srv_error_json(const char *message, const char *type, const char *param, const char *code,
                     size_t *len);

/* A whole (non-streamed) completion. finish_reason: "stop" or "length". */
char *srv_completion_json(const struct srv_response_meta *m, const char *text, size_t text_len,
                          const char *finish_reason, const struct srv_usage *usage, size_t *len);

/* One SSE event carrying a chunk: text (may be empty) and, on the last
 * chunk, finish_reason (else NULL). role_chunk: a chat stream's first chunk,
 * whose delta is {"role":"assistant","content":""} (text ignored). */
char *srv_chunk_sse(const struct srv_response_meta *m, const char *text, size_t text_len,
                    const char *finish_reason, bool role_chunk, size_t *len);

/* The usage chunk that ends a stream with include_usage ("choices":[]). */
char *srv_usage_sse(const struct srv_response_meta *m, const struct srv_usage *usage, size_t *len);

/* An error event inside a stream: "data: {"error":{...}}\n\n". */
char *srv_error_sse(const char *message, const char *type, const char *code, size_t *len);

/* GET /v1/models (one model) or /v1/models/{id} (single = true). */
char *srv_models_json(const char *model_id, long long created, int32_t n_ctx, bool single,
                      size_t *len);

#endif
