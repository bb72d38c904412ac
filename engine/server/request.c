/*
 * request.c - parsing and checking an OpenAI completion request body (see
 * request.h). cJSON builds the tree; every field is then read with its type
 * and range checked, so nothing downstream sees a value it cannot use.
 */
#include "engine/server/request.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARSE_FAIL (-1)
#define PARSE_NOMEM (-2)

static int fail(struct srv_request_error *err, const char *code, const char *param,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(struct srv_request_error *err, const char *code, const char *param,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    err->code = code;
    return PARSE_FAIL;
}

static int type_error(struct srv_request_error *err, const char *param, const char *want)
{
    return fail(err, "invalid_type", param, "'%s' must be %s", param, want);
}

/* The member called name, or NULL when it is absent or null. */
static const cJSON *field(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNull(v) ? NULL : v;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* A number field in [lo, hi]; absent leaves *out alone. */
static int get_number(const cJSON *obj, const char *name, double lo, double hi, float *out,
                      struct srv_request_error *err)
{
    const cJSON *v = field(obj, name);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v))
        return type_error(err, name, "a number");
    const double d = v->valuedouble;
    if (!isfinite(d) || d < lo || d > hi)
        return fail(err, "invalid_value", name, "'%s' must be between %g and %g", name, lo, hi);
    *out = (float)d;
    return 0;
}

/* true when v is a number holding an integer in [lo, hi]. */
static bool is_int_in(const cJSON *v, double lo, double hi)
{
    if (!cJSON_IsNumber(v))
        return false;
    const double d = v->valuedouble;
    return isfinite(d) && d == floor(d) && d >= lo && d <= hi;
}

static int get_int(const cJSON *obj, const char *name, double lo, double hi, int32_t *out,
                   struct srv_request_error *err)
{
    const cJSON *v = field(obj, name);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v))
        return type_error(err, name, "an integer");
    if (!is_int_in(v, lo, hi))
        return fail(err, "invalid_value", name, "'%s' must be an integer between %.0f and %.0f",
                    name, lo, hi);
    *out = (int32_t)v->valuedouble;
    return 0;
}

static int get_bool(const cJSON *obj, const char *name, bool *out, struct srv_request_error *err)
{
    const cJSON *v = field(obj, name);
    if (!v)
        return 0;
    if (!cJSON_IsBool(v))
        return type_error(err, name, "a boolean");
    *out = cJSON_IsTrue(v);
    return 0;
}

/* An optional string field copied into *out. */
static int get_string(const cJSON *obj, const char *name, char **out,
                      struct srv_request_error *err)
{
    const cJSON *v = field(obj, name);
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return type_error(err, name, "a string");
    if (!(*out = dup_str(v->valuestring)))
        return PARSE_NOMEM;
    return 0;
}

/* ---- messages ------------------------------------------------------------ */

/* Concatenates the text parts of an array content. */
static int content_parts(const cJSON *parts, size_t index, char **out,
                         struct srv_request_error *err)
{
    size_t total = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, parts) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsObject(p) || !cJSON_IsString(type))
            return fail(err, "invalid_type", "messages",
                        "messages[%zu].content parts must be objects with a 'type'", index);
        if (strcmp(type->valuestring, "text") != 0)
            return fail(err, "invalid_value", "messages",
                        "messages[%zu].content: only 'text' parts are supported, not '%.40s'",
                        index, type->valuestring);
        if (!cJSON_IsString(text))
            return fail(err, "invalid_type", "messages",
                        "messages[%zu].content text parts need a string 'text'", index);
        total += strlen(text->valuestring);
    }
    char *s = malloc(total + 1);
    if (!s)
        return PARSE_NOMEM;
    size_t at = 0;
    cJSON_ArrayForEach(p, parts) {
        const char *t = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
        const size_t n = strlen(t);
        memcpy(s + at, t, n);
        at += n;
    }
    s[at] = '\0';
    *out = s;
    return 0;
}

static int parse_messages(const cJSON *root, struct srv_request *r,
                          struct srv_request_error *err)
{
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool"};
    const cJSON *msgs = field(root, "messages");
    if (!msgs)
        return fail(err, "missing_required_parameter", "messages", "'messages' is required");
    if (!cJSON_IsArray(msgs))
        return type_error(err, "messages", "an array");
    const int n = cJSON_GetArraySize(msgs);
    if (n <= 0)
        return fail(err, "invalid_value", "messages", "'messages' must not be empty");
    r->messages = calloc((size_t)n, sizeof *r->messages);
    if (!r->messages)
        return PARSE_NOMEM;
    size_t i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        if (!cJSON_IsObject(m))
            return fail(err, "invalid_type", "messages", "messages[%zu] must be an object", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role))
            return fail(err, "invalid_type", "messages", "messages[%zu].role must be a string",
                        i);
        const char *role_name = NULL;
        for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++)
            if (strcmp(role->valuestring, roles[k]) == 0)
                role_name = k == 1 ? "system" : roles[k];
        if (!role_name)
            return fail(err, "invalid_value", "messages",
                        "messages[%zu].role must be system, developer, user, assistant or "
                        "tool",
                        i);
        struct srv_message *out = &r->messages[r->n_messages++];
        if (!(out->role = dup_str(role_name)))
            return PARSE_NOMEM;
        const cJSON *content = field(m, "content");
        int rc = 0;
        if (!content)
            out->content = dup_str("");
        else if (cJSON_IsString(content))
            out->content = dup_str(content->valuestring);
        else if (cJSON_IsArray(content))
            rc = content_parts(content, i, &out->content, err);
        else
            return fail(err, "invalid_type", "messages",
                        "messages[%zu].content must be a string or an array of text parts", i);
        if (rc)
            return rc;
        if (!out->content)
            return PARSE_NOMEM;
        i++;
    }
    return 0;
}

/* ---- prompt -------------------------------------------------------------- */

static int token_ids(const cJSON *arr, const struct srv_request_limits *lim,
                     struct srv_request *r, struct srv_request_error *err)
{
    const int n = cJSON_GetArraySize(arr);
    if (n <= 0)
        return fail(err, "invalid_value", "prompt", "'prompt' must not be an empty list");
    const double hi = lim && lim->n_vocab > 0 ? lim->n_vocab - 1 : INT32_MAX;
    r->prompt_ids = malloc((size_t)n * sizeof *r->prompt_ids);
    if (!r->prompt_ids)
        return PARSE_NOMEM;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        if (!is_int_in(v, 0, hi))
            return fail(err, "invalid_value", "prompt",
                        "prompt token ids must be integers between 0 and %.0f", hi);
        r->prompt_ids[r->n_prompt_ids++] = (int32_t)v->valuedouble;
    }
    return 0;
}

static int parse_prompt(const cJSON *root, const struct srv_request_limits *lim,
                        struct srv_request *r, struct srv_request_error *err)
{
    const cJSON *p = field(root, "prompt");
    if (!p)
        return fail(err, "missing_required_parameter", "prompt", "'prompt' is required");
    if (cJSON_IsArray(p)) {
        const int n = cJSON_GetArraySize(p);
        const cJSON *first = cJSON_GetArrayItem(p, 0);
        if (n == 0)
            return fail(err, "invalid_value", "prompt", "'prompt' must not be an empty list");
        if (cJSON_IsNumber(first))
            return token_ids(p, lim, r, err);
        if (n > 1)
            return fail(err, "invalid_value", "prompt",
                        "only one prompt per request is supported (n = 1)");
        if (cJSON_IsArray(first))
            return token_ids(first, lim, r, err);
        p = first;
    }
    if (!cJSON_IsString(p))
        return type_error(err, "prompt", "a string, a list of token ids, or a list of one of them");
    r->prompt_len = strlen(p->valuestring);
    if (!(r->prompt = dup_str(p->valuestring)))
        return PARSE_NOMEM;
    return 0;
}

/* ---- sampling extras ----------------------------------------------------- */

static int parse_stop(const cJSON *root, struct srv_request *r, struct srv_request_error *err)
{
    const cJSON *s = field(root, "stop");
    if (!s)
        return 0;
    if (cJSON_IsString(s)) {
        if (!s->valuestring[0])
            return fail(err, "invalid_value", "stop", "'stop' strings must not be empty");
        if (!(r->stops[0] = dup_str(s->valuestring)))
            return PARSE_NOMEM;
        r->n_stops = 1;
        return 0;
    }
    if (!cJSON_IsArray(s))
        return type_error(err, "stop", "a string or an array of strings");
    if (cJSON_GetArraySize(s) > SRV_MAX_STOPS)
        return fail(err, "invalid_value", "stop", "'stop' takes at most %d strings",
                    SRV_MAX_STOPS);
    const cJSON *v;
    cJSON_ArrayForEach(v, s) {
        if (!cJSON_IsString(v))
            return type_error(err, "stop", "a string or an array of strings");
        if (!v->valuestring[0])
            return fail(err, "invalid_value", "stop", "'stop' strings must not be empty");
        if (!(r->stops[r->n_stops++] = dup_str(v->valuestring)))
            return PARSE_NOMEM;
    }
    return 0;
}

static int parse_logit_bias(const cJSON *root, const struct srv_request_limits *lim,
                            struct srv_request *r, struct srv_request_error *err)
{
    const cJSON *b = field(root, "logit_bias");
    if (!b)
        return 0;
    if (!cJSON_IsObject(b))
        return type_error(err, "logit_bias", "an object mapping token ids to numbers");
    const int n = cJSON_GetArraySize(b);
    if (n > SRV_MAX_LOGIT_BIAS)
        return fail(err, "invalid_value", "logit_bias", "'logit_bias' takes at most %d entries",
                    SRV_MAX_LOGIT_BIAS);
    if (n == 0)
        return 0;
    r->logit_bias = malloc((size_t)n * sizeof *r->logit_bias);
    if (!r->logit_bias)
        return PARSE_NOMEM;
    const long long hi = lim && lim->n_vocab > 0 ? lim->n_vocab - 1 : INT32_MAX;
    const cJSON *v;
    cJSON_ArrayForEach(v, b) {
        const char *key = v->string ? v->string : "";
        char *end = NULL;
        long long id = -1;
        if (key[0] >= '0' && key[0] <= '9' && strlen(key) <= 10)
            id = strtoll(key, &end, 10);
        if (id < 0 || !end || *end != '\0' || id > hi)
            return fail(err, "invalid_value", "logit_bias",
                        "'logit_bias' keys must be token ids between 0 and %lld", hi);
        if (!cJSON_IsNumber(v))
            return type_error(err, "logit_bias", "an object mapping token ids to numbers");
        if (!isfinite(v->valuedouble) || v->valuedouble < -100 || v->valuedouble > 100)
            return fail(err, "invalid_value", "logit_bias",
                        "'logit_bias' values must be between -100 and 100");
        r->logit_bias[r->n_logit_bias++] = (struct srv_bias){(int32_t)id, (float)v->valuedouble};
    }
    return 0;
}

static int parse_fields(enum srv_endpoint ep, const cJSON *root,
                        const struct srv_request_limits *lim, struct srv_request *r,
                        struct srv_request_error *err)
{
    int rc;
    if (!cJSON_IsObject(root))
        return fail(err, "invalid_type", NULL, "the request body must be a JSON object");
    if ((rc = get_string(root, "model", &r->model, err)) ||
        (rc = ep == SRV_EP_CHAT ? parse_messages(root, r, err) : parse_prompt(root, lim, r, err)))
        return rc;
    /* max_tokens, and the newer name that wins when both are present */
    if ((rc = get_int(root, "max_tokens", 1, INT32_MAX, &r->max_tokens, err)) ||
        (rc = get_int(root, "max_completion_tokens", 1, INT32_MAX, &r->max_tokens, err)) ||
        (rc = get_number(root, "temperature", 0, 2, &r->temperature, err)) ||
        (rc = get_number(root, "top_p", 0, 1, &r->top_p, err)) ||
        (rc = get_int(root, "top_k", 0, INT32_MAX, &r->top_k, err)) ||
        (rc = get_number(root, "min_p", 0, 1, &r->min_p, err)) ||
        (rc = get_number(root, "presence_penalty", -2, 2, &r->presence_penalty, err)) ||
        (rc = get_number(root, "frequency_penalty", -2, 2, &r->frequency_penalty, err)))
        return rc;
    const cJSON *seed = field(root, "seed");
    if (seed) {
        const double lim53 = 9007199254740992.0; /* 2^53: exact in a double */
        if (!cJSON_IsNumber(seed))
            return type_error(err, "seed", "an integer");
        if (!is_int_in(seed, -lim53, lim53))
            return fail(err, "invalid_value", "seed", "'seed' must be an integer of at most 2^53");
        r->has_seed = true;
        r->seed = (uint64_t)(int64_t)seed->valuedouble;
    }
    int32_t n = 1;
    if ((rc = get_int(root, "n", INT32_MIN, INT32_MAX, &n, err)))
        return rc;
    if (n != 1)
        return fail(err, "invalid_value", "n", "only n = 1 is supported");
    if ((rc = parse_stop(root, r, err)) || (rc = parse_logit_bias(root, lim, r, err)) ||
        (rc = get_bool(root, "stream", &r->stream, err)))
        return rc;
    const cJSON *so = field(root, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so))
            return type_error(err, "stream_options", "an object");
        if ((rc = get_bool(so, "include_usage", &r->include_usage, err)))
            return rc;
    }
    return get_string(root, "user", &r->user, err);
}

int srv_request_parse(enum srv_endpoint endpoint, const char *body, size_t len,
                      const struct srv_request_limits *limits, struct srv_request *out,
                      struct srv_request_error *err)
{
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    out->endpoint = endpoint;
    out->max_tokens = -1;
    out->temperature = 1.0f;
    out->top_p = 1.0f;
    if (endpoint != SRV_EP_CHAT && endpoint != SRV_EP_COMPLETIONS)
        return fail(err, "invalid_value", NULL, "unknown endpoint");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body ? body : "", body ? len : 0, &end, 0);
    if (!root) {
        /* cJSON also fails when out of memory; it cannot tell us which */
        return fail(err, "invalid_json", NULL, "the request body is not valid JSON (near byte %zu)",
                    end && body && end >= body ? (size_t)(end - body) : (size_t)0);
    }
    /* only whitespace may follow the value */
    for (const char *p = end; p < body + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return fail(err, "invalid_json", NULL,
                        "the request body has data after the JSON value (byte %zu)",
                        (size_t)(p - body));
        }
    }
    int rc = parse_fields(endpoint, root, limits, out, err);
    cJSON_Delete(root);
    if (rc == PARSE_NOMEM)
        fail(err, "out_of_memory", NULL, "out of memory while reading the request");
    if (rc) {
        srv_request_free(out);
        out->endpoint = endpoint;
    }
    return rc;
}

void srv_request_free(struct srv_request *r)
{
    if (!r)
        return;
    free(r->model);
    for (size_t i = 0; i < r->n_messages; i++) {
        free(r->messages[i].role);
        free(r->messages[i].content);
    }
    free(r->messages);
    free(r->prompt);
    free(r->prompt_ids);
    for (size_t i = 0; i < r->n_stops; i++)
        free(r->stops[i]);
    free(r->logit_bias);
    free(r->user);
    memset(r, 0, sizeof *r);
}
