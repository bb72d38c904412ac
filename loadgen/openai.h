/*
 * openai.h - the OpenAI-compatible protocol as quarry-load speaks it: the
 * JSON bodies it POSTs to /v1/completions and /v1/chat/completions (always
 * streaming, asking for a final usage chunk), and what it reads out of each
 * streamed chunk (`data: {...}` events, the last one `data: [DONE]`).
 *
 * A chunk "carries output" when any choice has a non-empty `text`
 * (completions) or non-empty `delta.content` / `delta.reasoning_content`
 * (chat). Chunks with only a role, an empty string or a finish_reason carry
 * none and are not tokens: time to first token and inter-token gaps are
 * measured between chunks that carry output. `usage` (prompt_tokens,
 * completion_tokens) comes from the chunk that has it; `error` marks an
 * error reported inside the stream.
 */
#ifndef QUARRY_LOADGEN_OPENAI_H
#define QUARRY_LOADGEN_OPENAI_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "engine/error.h"

enum qload_api {
    QLOAD_API_COMPLETIONS,  /* POST, body with "prompt" */
    QLOAD_API_CHAT,         /* POST, body with "messages" */
    QLOAD_API_PLAIN_GET,    /* GET any other path (e.g. /health); the body is not parsed */
};

/* Parses text[0..len) as exactly one JSON value (whitespace around it
 * allowed, anything else after it is an error). NULL when malformed. (cJSON's
 * require_null_terminated flag only works when len counts a NUL, so this
 * checks the end itself.) */
cJSON *qload_json_parse(const char *text, size_t len);

/* The API an endpoint path speaks: ".../chat/completions" is chat, ".../completions"
 * is completions, anything else a plain GET. */
enum qload_api qload_api_for_path(const char *path);
const char *qload_api_name(enum qload_api api);

struct qload_body_opts {
    enum qload_api api;
    const char *model;
    const char *prompt;        /* completions: the prompt; chat: one user message (if messages is NULL) */
    const char *messages_json; /* chat: a JSON array of messages used as-is (from a prompts file), or NULL */
    int max_tokens;            /* > 0 */
    int ignore_eos;            /* adds "ignore_eos": true (vLLM / llama.cpp extension) */
};

/* A malloc'd, NUL-terminated JSON body (*len without the NUL). Returns 0,
 * QUARRY_EINVAL (messages_json not a JSON array) or QUARRY_ENOMEM. */
int qload_openai_body(const struct qload_body_opts *o, char **body, size_t *len, quarry_error *err);

struct qload_chunk {
    int done;                  /* the data was "[DONE]" */
    int has_error;             /* a top-level "error" member */
    size_t output_bytes;       /* bytes of output text in all choices */
    int has_finish;            /* some choice has a non-null finish_reason */
    int64_t prompt_tokens;     /* from "usage", -1 when absent */
    int64_t completion_tokens; /* from "usage", -1 when absent */
};

/* Reads one event's data. Returns 0 or QUARRY_EFORMAT (not "[DONE]" and not a
 * JSON object). */
int qload_openai_parse_chunk(const char *data, size_t len, struct qload_chunk *out);

#endif
