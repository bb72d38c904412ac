/*
 * response.c - OpenAI-shaped JSON bodies and SSE chunks (see response.h),
 * written directly into a buffer: generated text can hold bytes cJSON could
 * not carry (NUL, invalid UTF-8), and the JSON string writer handles them.
 */
#include "engine/server/response.h"

#include <string.h>

#include "engine/server/strbuf.h"

static void key_string(struct srv_buf *b, const char *key, const char *value)
{
    srv_buf_printf(b, "\"%s\":", key);
    if (value)
        srv_buf_json_string(b, value, strlen(value));
    else
        srv_buf_puts(b, "null");
}

static void write_error(struct srv_buf *b, const char *message, const char *type,
                        const char *param, const char *code)
{
    srv_buf_puts(b, "{\"error\":{");
    key_string(b, "message", message ? message : "");
    srv_buf_puts(b, ",");
    key_string(b, "type", type ? type : "server_error");
    srv_buf_puts(b, ",");
    key_string(b, "param", param);
    srv_buf_puts(b, ",");
    key_string(b, "code", code);
    srv_buf_puts(b, "}}");
}

char *srv_error_json(const char *message, const char *type, const char *param, const char *code,
                     size_t *len)
{
    struct srv_buf b;
    srv_buf_init(&b);
    write_error(&b, message, type, param, code);
    srv_buf_puts(&b, "\n");
    return srv_buf_take(&b, len);
}

static void write_head(struct srv_buf *b, const struct srv_response_meta *m, const char *object)
{
    srv_buf_puts(b, "{");
    key_string(b, "id", m->id);
    srv_buf_printf(b, ",\"object\":\"%s\",\"created\":%lld,", object, m->created);
    key_string(b, "model", m->model);
    srv_buf_puts(b, ",\"system_fingerprint\":null,\"choices\":[");
}

static void write_usage(struct srv_buf *b, const struct srv_usage *u)
{
    srv_buf_printf(b, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                      "\"total_tokens\":%d}",
                   (int)u->prompt_tokens, (int)u->completion_tokens,
                   (int)(u->prompt_tokens + u->completion_tokens));
}

char *srv_completion_json(const struct srv_response_meta *m, const char *text, size_t text_len,
                          const char *finish_reason, const struct srv_usage *usage, size_t *len)
{
    struct srv_buf b;
    srv_buf_init(&b);
    const bool chat = m->endpoint == SRV_EP_CHAT;
    write_head(&b, m, chat ? "chat.completion" : "text_completion");
    if (chat) {
        srv_buf_puts(&b, "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
        srv_buf_json_string(&b, text, text_len);
        srv_buf_puts(&b, "},");
    } else {
        srv_buf_puts(&b, "{\"index\":0,\"text\":");
        srv_buf_json_string(&b, text, text_len);
        srv_buf_puts(&b, ",");
    }
    srv_buf_puts(&b, "\"logprobs\":null,");
    key_string(&b, "finish_reason", finish_reason);
    srv_buf_puts(&b, "}],");
    write_usage(&b, usage);
    srv_buf_puts(&b, "}\n");
    return srv_buf_take(&b, len);
}

char *srv_chunk_sse(const struct srv_response_meta *m, const char *text, size_t text_len,
                    const char *finish_reason, bool role_chunk, size_t *len)
{
    struct srv_buf b;
    srv_buf_init(&b);
    const bool chat = m->endpoint == SRV_EP_CHAT;
    srv_buf_puts(&b, "data: ");
    write_head(&b, m, chat ? "chat.completion.chunk" : "text_completion");
    srv_buf_puts(&b, "{\"index\":0,");
    if (chat) {
        if (role_chunk) {
            srv_buf_puts(&b, "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},");
        } else if (finish_reason && text_len == 0) {
            srv_buf_puts(&b, "\"delta\":{},");
        } else {
            srv_buf_puts(&b, "\"delta\":{\"content\":");
            srv_buf_json_string(&b, text, text_len);
            srv_buf_puts(&b, "},");
        }
    } else {
        srv_buf_puts(&b, "\"text\":");
        srv_buf_json_string(&b, text, text_len);
        srv_buf_puts(&b, ",");
    }
    srv_buf_puts(&b, "\"logprobs\":null,");
    key_string(&b, "finish_reason", finish_reason);
    srv_buf_puts(&b, "}]");
    if (m->usage_field)
        srv_buf_puts(&b, ",\"usage\":null");
    srv_buf_puts(&b, "}\n\n");
    return srv_buf_take(&b, len);
}

char *srv_usage_sse(const struct srv_response_meta *m, const struct srv_usage *usage, size_t *len)
{
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_puts(&b, "data: ");
    write_head(&b, m, m->endpoint == SRV_EP_CHAT ? "chat.completion.chunk" : "text_completion");
    srv_buf_puts(&b, "],");
    write_usage(&b, usage);
    srv_buf_puts(&b, "}\n\n");
    return srv_buf_take(&b, len);
}

char *srv_error_sse(const char *message, const char *type, const char *code, size_t *len)
{
    struct srv_buf b;
    srv_buf_init(&b);
    srv_buf_puts(&b, "data: ");
    write_error(&b, message, type, NULL, code);
    srv_buf_puts(&b, "\n\n");
    return srv_buf_take(&b, len);
}

char *srv_models_json(const char *model_id, long long created, int32_t n_ctx, bool single,
                      size_t *len)
{
    struct srv_buf b;
    srv_buf_init(&b);
    if (!single)
        srv_buf_puts(&b, "{\"object\":\"list\",\"data\":[");
    srv_buf_puts(&b, "{");
    key_string(&b, "id", model_id);
    srv_buf_printf(&b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"quarry\","
                       "\"context_length\":%d}",
                   created, (int)n_ctx);
    if (!single)
        srv_buf_puts(&b, "]}");
    srv_buf_puts(&b, "\n");
    return srv_buf_take(&b, len);
}
