/*
 * scrape.c - HTTP GET and Prometheus text parsing (see scrape.h).
 */
#include "loadgen/scrape.h"

#include <curl/curl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *qload_curl_version(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v && v->version ? v->version : "?";
}

struct buffer {
    char *data;
    size_t len, cap;
    int oom;
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct buffer *b = userdata;
    const size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *nd = realloc(b->data, ncap);
        if (!nd) {
            b->oom = 1;
            return 0;
        }
        b->data = nd;
        b->cap = ncap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

int qload_http_get(const char *url, double timeout_s, char **body, size_t *len, long *status,
                   quarry_error *err)
{
    *body = NULL;
    *len = 0;
    *status = 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return quarry_errorf(err, QUARRY_EIO, "GET %s: curl_global_init failed", url);
    CURL *e = curl_easy_init();
    if (!e) {
        curl_global_cleanup();
        return quarry_errorf(err, QUARRY_ENOMEM, "GET %s: curl_easy_init failed", url);
    }
    struct buffer b = {0};
    char msg[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)llround(timeout_s * 1000.0));
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, msg);
    const CURLcode res = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(e);
    curl_global_cleanup();
    int rc = 0;
    if (b.oom)
        rc = quarry_errorf(err, QUARRY_ENOMEM, "GET %s: out of memory", url);
    else if (res != CURLE_OK)
        rc = quarry_errorf(err, QUARRY_EIO, "GET %s: %s%s%s", url, curl_easy_strerror(res),
                           msg[0] ? ": " : "", msg);
    if (rc != 0) {
        free(b.data);
        return rc;
    }
    if (!b.data) {
        b.data = malloc(1);
        if (!b.data)
            return quarry_errorf(err, QUARRY_ENOMEM, "GET %s: out of memory", url);
        b.data[0] = '\0';
    }
    *body = b.data;
    *len = b.len;
    return 0;
}

/* One sample line: the key (name plus labels) ends at *key_len; the value
 * follows. Returns 0 for a usable line. */
static int parse_sample(const char *line, size_t len, size_t *key_len, double *value)
{
    size_t i = 0;
    while (i < len && line[i] != '{' && line[i] != ' ' && line[i] != '\t')
        i++;
    if (i == 0)
        return -1;
    if (i < len && line[i] == '{') {
        int in_quotes = 0;
        for (i++; i < len; i++) {
            if (in_quotes && line[i] == '\\') {
                i++;
                continue;
            }
            if (line[i] == '"')
                in_quotes = !in_quotes;
            else if (!in_quotes && line[i] == '}')
                break;
        }
        if (i >= len)
            return -1;
        i++;
    }
    *key_len = i;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len)
        return -1;
    char num[64];
    size_t n = 0;
    while (i < len && line[i] != ' ' && line[i] != '\t' && n < sizeof num - 1)
        num[n++] = line[i++];
    num[n] = '\0';
    char *end = NULL;
    *value = strtod(num, &end);
    if (end == num || *end != '\0')
        return -1;
    return 0;
}

cJSON *qload_prometheus_parse(const char *text, size_t len)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj)
        return NULL;
    size_t pos = 0;
    char keybuf[512];
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - line) : len - pos;
        pos += line_len + (nl ? 1 : 0);
        if (line_len > 0 && line[line_len - 1] == '\r')
            line_len--;
        size_t s = 0;
        while (s < line_len && (line[s] == ' ' || line[s] == '\t'))
            s++;
        if (s == line_len || line[s] == '#')
            continue;
        size_t key_len;
        double v;
        if (parse_sample(line + s, line_len - s, &key_len, &v) != 0 || key_len >= sizeof keybuf)
            continue;
        memcpy(keybuf, line + s, key_len);
        keybuf[key_len] = '\0';
        if (cJSON_GetObjectItemCaseSensitive(obj, keybuf))
            continue;
        if (!cJSON_AddNumberToObject(obj, keybuf, v)) {
            cJSON_Delete(obj);
            return NULL;
        }
    }
    return obj;
}

cJSON *qload_prometheus_delta(const cJSON *before, const cJSON *after)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj)
        return NULL;
    const cJSON *a = after ? after->child : NULL;
    for (; a; a = a->next) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(before, a->string);
        if (!cJSON_IsNumber(a) || (b && !cJSON_IsNumber(b)))
            continue;
        /* a series absent before the run appeared during it: a counter with
         * new labels starts from 0, so its whole value is the change */
        const double was = b ? b->valuedouble : 0.0;
        if (!cJSON_AddNumberToObject(obj, a->string, a->valuedouble - was)) {
            cJSON_Delete(obj);
            return NULL;
        }
    }
    return obj;
}
