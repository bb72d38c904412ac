/*
 * json_file.c - whole-file JSON reading (see json_file.h).
 */
#include "harness/json_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *quarry_read_text_file(const char *path, size_t *len, quarry_error *err)
{
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        quarry_errorf(err, QUARRY_EIO, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 1 >= cap) {
            const size_t new_cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, new_cap);
            if (!nb) {
                free(buf);
                fclose(f);
                quarry_errorf(err, QUARRY_ENOMEM, "out of memory reading %s", path);
                return NULL;
            }
            buf = nb;
            cap = new_cap;
        }
        const size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    const int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        quarry_errorf(err, QUARRY_EIO, "cannot read %s", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

cJSON *quarry_json_parse_text(const char *text, size_t len, const char *what, quarry_error *err)
{
    const char *end = NULL;
    /* the length includes the NUL so that require_null_terminated can see it */
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
    if (!doc)
        quarry_errorf(err, QUARRY_EFORMAT, "%s: invalid JSON near byte %td", what,
                      end && end >= text ? end - text : (ptrdiff_t)0);
    return doc;
}

cJSON *quarry_json_read_file(const char *path, quarry_error *err)
{
    size_t len;
    char *text = quarry_read_text_file(path, &len, err);
    if (!text)
        return NULL;
    cJSON *doc = quarry_json_parse_text(text, len, path, err);
    free(text);
    return doc;
}
