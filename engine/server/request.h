/*
 * request.h - the body of an OpenAI completion request, parsed and checked.
 *
 * POST /v1/chat/completions and POST /v1/completions carry a JSON object;
 * srv_request_parse() turns it into a srv_request with every optional field
 * resolved to its default, or explains in OpenAI's terms (message, offending
 * parameter, error code) why the body is refused. It is pure: no I/O, no
 * global state besides the allocator, so it can be fuzzed directly
 * (tests/fuzz/fuzz_server_request.c) and unit-tested without a server.
 *
 * Accepted fields (unknown ones are ignored, null counts as absent):
 *   model                       string
 *   messages (chat)             non-empty array of {role, content}; role one of system,
 *                               developer, user, assistant, tool; content a string, an
 *                               array of {"type":"text","text":...} parts, or null
 *   prompt (completions)        string, [string], [int...] (token ids) or [[int...]]
 *   max_tokens, max_completion_tokens   integer >= 1 (the latter wins when both are given)
 *   temperature [0,2]  top_p [0,1]  top_k >= 0  min_p [0,1]
 *   presence_penalty, frequency_penalty [-2,2]
 *   seed                        integer (|seed| <= 2^53)
 *   stop                        string or array of at most 4 non-empty strings
 *   logit_bias                  object {"token id": bias in [-100,100]}
 *   n                           1 (only one choice per request is generated)
 *   stream                      bool;  stream_options.include_usage  bool
 *   user                        string
 * Defaults are OpenAI's: temperature 1, top_p 1, no top-k / min-p / penalties,
 * no token limit (generation ends at end-of-generation or a full context),
 * a fresh random seed (has_seed false).
 */
#ifndef QUARRY_SERVER_REQUEST_H
#define QUARRY_SERVER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_MAX_STOPS 4
#define SRV_MAX_LOGIT_BIAS 1024

enum srv_endpoint {
    SRV_EP_CHAT = 1,        /* /v1/chat/completions */
    SRV_EP_COMPLETIONS = 2, /* /v1/completions */
};

struct srv_message {
    char *role;             /* "developer" is stored as "system" */
    char *content;          /* NUL-terminated; "" for null content */
};

struct srv_bias {
    int32_t token;
    float bias;
};

struct srv_request {
    enum srv_endpoint endpoint;
    char *model;                    /* NULL when absent */
    struct srv_message *messages;   /* chat: n_messages >= 1 */
    size_t n_messages;
    char *prompt;                   /* completions, text prompt (NUL-terminated) or NULL */
    size_t prompt_len;
    int32_t *prompt_ids;            /* completions, token-id prompt, or NULL */
    size_t n_prompt_ids;
    int32_t max_tokens;             /* -1: no limit */
    float temperature, top_p, min_p;
    int32_t top_k;
    float presence_penalty, frequency_penalty;
    bool has_seed;
    uint64_t seed;
    char *stops[SRV_MAX_STOPS];
    size_t n_stops;
    struct srv_bias *logit_bias;
    size_t n_logit_bias;
    bool stream, include_usage;
    char *user;                     /* NULL when absent */
};

/* Why a body was refused: OpenAI's error fields. */
struct srv_request_error {
    char message[256];
    char param[48];                 /* "" when no single parameter is at fault */
    const char *code;               /* "invalid_json", "invalid_type", "invalid_value",
                                       "missing_required_parameter" */
};

/* What the parse needs to know about the model: token ids (prompt ids,
 * logit_bias keys) must be below n_vocab (0: not checked). */
struct srv_request_limits {
    int32_t n_vocab;
};

/* Parses body[0..len) (need not be NUL-terminated) for endpoint. Returns 0
 * and fills *out (free with srv_request_free), or -1 with *err filled (out
 * is then empty); -2 when memory ran out. */
int srv_request_parse(enum srv_endpoint endpoint, const char *body, size_t len,
                      const struct srv_request_limits *limits, struct srv_request *out,
                      struct srv_request_error *err);
void srv_request_free(struct srv_request *r);

#endif
