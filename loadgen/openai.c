/*
 * openai.c - OpenAI-compatible request bodies and streamed chunks (see openai.h).
 */
#include "loadgen/openai.h"

#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

cJSON *qload_json_parse(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!v)
        return NULL;
    const char *stop = text + len;
    while (end && end < stop && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end != stop) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

enum qload_api qload_api_for_path(const char *path)
{
    const size_t n = strlen(path);
    static const char chat[] = "/chat/completions";
    static const char compl[] = "/completions";
    if (n >= sizeof chat - 1 && strcmp(path + n - (sizeof chat - 1), chat) == 0)
        return QLOAD_API_CHAT;
    if (n >= sizeof compl - 1 && strcmp(path + n - (sizeof compl - 1), compl) == 0)
        return QLOAD_API_COMPLETIONS;
    return QLOAD_API_PLAIN_GET;
}

const char *qload_api_name(enum qload_api api)
{
    switch (api) {
    case QLOAD_API_COMPLETIONS: return "completions";
    case QLOAD_API_CHAT: return "chat";
    case QLOAD_API_PLAIN_GET: return "get";
    }
    return "?";
}

int qload_openai_body(const struct qload_body_opts *o, char **body, size_t *len, quarry_error *err)
{
    *body = NULL;
    *len = 0;
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    ok = ok && cJSON_AddStringToObject(root, "model", o->model ? o->model : "");
    if (ok && o->api == QLOAD_API_CHAT) {
        cJSON *messages = NULL;
        if (o->messages_json) {
            messages = qload_json_parse(o->messages_json, strlen(o->messages_json));
            if (!messages || !cJSON_IsArray(messages)) {
                cJSON_Delete(messages);
                cJSON_Delete(root);
                return quarry_errorf(err, QUARRY_EINVAL, "request: messages is not a JSON array");
            }
        } else {
            messages = cJSON_CreateArray();
            cJSON *m = cJSON_CreateObject();
            int mok = messages && m;
            mok = mok && cJSON_AddStringToObject(m, "role", "user");
            mok = mok && cJSON_AddStringToObject(m, "content", o->prompt ? o->prompt : "");
            if (mok && cJSON_AddItemToArray(messages, m))
                m = NULL;
            else
                mok = 0;
            cJSON_Delete(m);
            if (!mok) {
                cJSON_Delete(messages);
                messages = NULL;
            }
        }
        if (messages && !cJSON_AddItemToObject(root, "messages", messages)) {
            cJSON_Delete(messages);
            messages = NULL;
        }
        ok = messages != NULL;
    } else if (ok) {
        ok = cJSON_AddStringToObject(root, "prompt", o->prompt ? o->prompt : "") != NULL;
    }
    ok = ok && cJSON_AddNumberToObject(root, "max_tokens", o->max_tokens);
    ok = ok && cJSON_AddBoolToObject(root, "stream", 1);
    cJSON *so = ok ? cJSON_AddObjectToObject(root, "stream_options") : NULL;
    ok = so && cJSON_AddBoolToObject(so, "include_usage", 1);
    if (ok && o->ignore_eos)
        ok = cJSON_AddBoolToObject(root, "ignore_eos", 1) != NULL;
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return quarry_errorf(err, QUARRY_ENOMEM, "request: out of memory building the body");
    *body = text;
    *len = strlen(text);
    return 0;
}

static size_t string_len(const cJSON *item)
{
    return cJSON_IsString(item) && item->valuestring ? strlen(item->valuestring) : 0;
}

static int64_t usage_count(const cJSON *usage, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, name);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0)
        return -1;
    return (int64_t)v->valuedouble;
}

int qload_openai_parse_chunk(const char *data, size_t len, struct qload_chunk *out)
{
    memset(out, 0, sizeof *out);
    out->prompt_tokens = -1;
    out->completion_tokens = -1;
    /* "[DONE]", tolerating surrounding blanks */
    size_t a = 0, b = len;
    while (a < b && (data[a] == ' ' || data[a] == '\t'))
        a++;
    while (b > a && (data[b - 1] == ' ' || data[b - 1] == '\t'))
        b--;
    if (b - a == 6 && memcmp(data + a, "[DONE]", 6) == 0) {
        out->done = 1;
        return 0;
    }
    cJSON *root = qload_json_parse(data, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return QUARRY_EFORMAT;
    }
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    out->has_error = error != NULL && !cJSON_IsNull(error);
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    const cJSON *choice = cJSON_IsArray(choices) ? choices->child : NULL;
    for (; choice; choice = choice->next) {
        out->output_bytes += string_len(cJSON_GetObjectItemCaseSensitive(choice, "text"));
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
        if (cJSON_IsObject(delta)) {
            out->output_bytes += string_len(cJSON_GetObjectItemCaseSensitive(delta, "content"));
            out->output_bytes +=
                string_len(cJSON_GetObjectItemCaseSensitive(delta, "reasoning_content"));
        }
        const cJSON *fin = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");
        if (fin && !cJSON_IsNull(fin))
            out->has_finish = 1;
    }
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if (cJSON_IsObject(usage)) {
        out->prompt_tokens = usage_count(usage, "prompt_tokens");
        out->completion_tokens = usage_count(usage, "completion_tokens");
    }
    cJSON_Delete(root);
    return 0;
}
