/*
 * auth.h - API keys and the tenants they belong to.
 *
 * The keys file (--api-keys FILE) has one tenant per line, fields separated
 * by spaces or tabs:
 *
 *     KEY  TENANT  REQUESTS_PER_MINUTE  TOKENS_PER_MINUTE  MAX_CONCURRENT
 *
 * e.g. `sk-alice-0123456789 alice 60 100000 4`. A limit of 0 means
 * unlimited. Blank lines and lines starting with '#' are ignored. Keys are
 * printable ASCII without spaces (at most 256 bytes), tenant names letters,
 * digits, '-', '_' and '.' (at most 64); both must be unique.
 *
 * A request is authenticated by the header `Authorization: Bearer KEY` (the
 * scheme word is matched case-insensitively, as HTTP says). Anything else -
 * no header, another scheme, a bare key without "Bearer ", an empty key - is
 * refused. The presented key is compared with every configured key in time
 * that does not depend on where (or whether) they differ; keys are never
 * written anywhere by this module.
 */
#ifndef QUARRY_SERVER_AUTH_H
#define QUARRY_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_KEY_MAX 256
#define SRV_TENANT_NAME_MAX 64

struct srv_tenant {
    char *key;
    size_t key_len;
    char name[SRV_TENANT_NAME_MAX + 1];
    uint32_t requests_per_minute;  /* 0 = unlimited */
    uint32_t tokens_per_minute;    /* prompt + completion tokens; 0 = unlimited */
    uint32_t max_concurrent;       /* 0 = unlimited */
};

struct srv_keys {
    struct srv_tenant *tenants;
    size_t n;
};

/* Parses a keys file's text. Returns 0, or -1 with a message naming the line
 * in errbuf (the key itself is never quoted); -2 when out of memory. */
int srv_keys_parse(const char *text, size_t len, struct srv_keys *out, char *errbuf,
                   size_t errlen);
/* Reads and parses path. -1 with a message also when the file cannot be read. */
int srv_keys_load(const char *path, struct srv_keys *out, char *errbuf, size_t errlen);
void srv_keys_free(struct srv_keys *k);

enum srv_auth_result {
    SRV_AUTH_OK = 0,
    SRV_AUTH_MISSING,    /* no Authorization header */
    SRV_AUTH_MALFORMED,  /* not "Bearer KEY" */
    SRV_AUTH_INVALID,    /* a key no tenant has */
};

/* Checks an Authorization header value (NULL when absent). On SRV_AUTH_OK
 * *tenant is the index of the key's tenant. */
enum srv_auth_result srv_auth_check(const struct srv_keys *k, const char *header, size_t *tenant);

/* a[0..alen) == b[0..blen), in time that depends only on blen (the stored
 * key's length), never on the contents. */
bool srv_ct_equal(const char *a, size_t alen, const char *b, size_t blen);

#endif
