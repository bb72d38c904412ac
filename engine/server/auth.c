/*
 * auth.c - the keys file and Bearer-token checks (see auth.h).
 */
#include "engine/server/auth.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_error(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int parse_error(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void srv_keys_free(struct srv_keys *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++) {
        if (k->tenants[i].key) {
            /* do not leave keys lying around in freed memory */
            volatile char *p = k->tenants[i].key;
            for (size_t j = 0; j < k->tenants[i].key_len; j++)
                p[j] = 0;
        }
        free(k->tenants[i].key);
    }
    free(k->tenants);
    k->tenants = NULL;
    k->n = 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Splits line[0..len) into at most max fields; returns the field count
 * (max + 1 when there are more). */
static size_t split(const char *line, size_t len, const char **f, size_t *flen, size_t max)
{
    size_t n = 0, i = 0;
    while (i < len) {
        while (i < len && is_space(line[i]))
            i++;
        if (i == len)
            break;
        const size_t start = i;
        while (i < len && !is_space(line[i]))
            i++;
        if (n == max)
            return max + 1;
        f[n] = line + start;
        flen[n] = i - start;
        n++;
    }
    return n;
}

static bool parse_u32(const char *s, size_t n, uint32_t *out)
{
    if (n == 0 || n > 10)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool valid_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
}

int srv_keys_parse(const char *text, size_t len, struct srv_keys *out, char *errbuf,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    size_t line_no = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        const size_t line_len = nl ? (size_t)(nl - line) : len - pos;
        pos += line_len + (nl ? 1 : 0);
        line_no++;
        const char *f[5];
        size_t fl[5];
        const size_t nf = split(line, line_len, f, fl, 5);
        if (nf == 0 || f[0][0] == '#')
            continue;
        if (nf != 5) {
            srv_keys_free(out);
            return parse_error(errbuf, errlen,
                               "keys file line %zu: expected 5 fields (key tenant "
                               "requests_per_minute tokens_per_minute max_concurrent), found %s",
                               line_no, nf > 5 ? "more" : "fewer");
        }
        if (fl[0] > SRV_KEY_MAX) {
            srv_keys_free(out);
            return parse_error(errbuf, errlen, "keys file line %zu: the key is longer than %d bytes",
                               line_no, SRV_KEY_MAX);
        }
        for (size_t i = 0; i < fl[0]; i++) {
            const unsigned char c = (unsigned char)f[0][i];
            if (c < 0x21 || c > 0x7E) {
                srv_keys_free(out);
                return parse_error(errbuf, errlen,
                                   "keys file line %zu: the key must be printable ASCII",
                                   line_no);
            }
        }
        bool name_ok = fl[1] <= SRV_TENANT_NAME_MAX;
        for (size_t i = 0; name_ok && i < fl[1]; i++)
            name_ok = valid_name_char(f[1][i]);
        if (!name_ok) {
            srv_keys_free(out);
            return parse_error(errbuf, errlen,
                               "keys file line %zu: the tenant name must be 1-%d letters, digits, "
                               "'-', '_' or '.'",
                               line_no, SRV_TENANT_NAME_MAX);
        }
        struct srv_tenant t = {0};
        memcpy(t.name, f[1], fl[1]);
        if (!parse_u32(f[2], fl[2], &t.requests_per_minute) ||
            !parse_u32(f[3], fl[3], &t.tokens_per_minute) ||
            !parse_u32(f[4], fl[4], &t.max_concurrent)) {
            srv_keys_free(out);
            return parse_error(errbuf, errlen,
                               "keys file line %zu: limits must be whole numbers (0 = unlimited)",
                               line_no);
        }
        for (size_t i = 0; i < out->n; i++) {
            const bool same_key = out->tenants[i].key_len == fl[0] &&
                                  memcmp(out->tenants[i].key, f[0], fl[0]) == 0;
            if (same_key || strcmp(out->tenants[i].name, t.name) == 0) {
                srv_keys_free(out);
                return parse_error(errbuf, errlen, "keys file line %zu: duplicate %s", line_no,
                                   same_key ? "key" : "tenant name");
            }
        }
        if (out->n == cap) {
            const size_t ncap = cap ? cap * 2 : 8;
            struct srv_tenant *nt = realloc(out->tenants, ncap * sizeof *nt);
            if (!nt) {
                srv_keys_free(out);
                return -2;
            }
            out->tenants = nt;
            cap = ncap;
        }
        if (!(t.key = malloc(fl[0] + 1))) {
            srv_keys_free(out);
            return -2;
        }
        memcpy(t.key, f[0], fl[0]);
        t.key[fl[0]] = '\0';
        t.key_len = fl[0];
        out->tenants[out->n++] = t;
    }
    if (out->n == 0)
        return parse_error(errbuf, errlen, "keys file: no keys found");
    return 0;
}

int srv_keys_load(const char *path, struct srv_keys *out, char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return parse_error(errbuf, errlen, "cannot open keys file '%s': %s", path,
                           strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        if (n == cap) {
            char *nb = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                rc = parse_error(errbuf, errlen, "keys file '%s' is too large", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        const size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    if (!buf)
        rc = -2;
    else if (!rc && ferror(fp))
        rc = parse_error(errbuf, errlen, "cannot read keys file '%s'", path);
    fclose(fp);
    if (!rc)
        rc = srv_keys_parse(buf, n, out, errbuf, errlen);
    if (buf) {
        volatile char *p = buf;
        for (size_t i = 0; i < n; i++)
            p[i] = 0;
    }
    free(buf);
    return rc;
}

bool srv_ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    /* walk the stored key's length whatever a holds; bytes past a's end
     * compare as 0 against b and the length difference is folded in */
    volatile unsigned char diff = (unsigned char)((alen ^ blen) != 0);
    for (size_t i = 0; i < blen; i++) {
        const unsigned char ca = i < alen ? (unsigned char)a[i] : 0;
        diff |= (unsigned char)(ca ^ (unsigned char)b[i]);
    }
    return diff == 0;
}

enum srv_auth_result srv_auth_check(const struct srv_keys *k, const char *header, size_t *tenant)
{
    if (!header)
        return SRV_AUTH_MISSING;
    static const char scheme[] = "bearer";
    for (size_t i = 0; i < sizeof scheme - 1; i++) {
        char c = header[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != scheme[i])
            return SRV_AUTH_MALFORMED;
    }
    const char *p = header + sizeof scheme - 1;
    if (*p != ' ')
        return SRV_AUTH_MALFORMED;
    while (*p == ' ')
        p++;
    size_t len = strlen(p);
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    if (len == 0)
        return SRV_AUTH_MALFORMED;
    bool found = false;
    size_t which = 0;
    /* every key is compared, so the time does not tell which one matched */
    for (size_t i = 0; i < k->n; i++) {
        const bool eq = srv_ct_equal(p, len, k->tenants[i].key, k->tenants[i].key_len);
        which = eq ? i : which;
        found |= eq;
    }
    if (!found)
        return SRV_AUTH_INVALID;
    *tenant = which;
    return SRV_AUTH_OK;
}
