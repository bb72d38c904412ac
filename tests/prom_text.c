/*
 * prom_text.c - Prometheus text format checker for tests (see prom_text.h).
 */
#include "tests/prom_text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAMILIES 256
#define MAX_SAMPLES 4096

struct family {
    char name[128];
    char type[16];
    bool has_help;
    /* histogram check: last bucket count of the current label set */
    double last_bucket;
    bool in_buckets;
};

static int bad(char *err, size_t errlen, int line, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "line %d: %s", line, msg);
    return -1;
}

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

/* Parses a metric name at *p; returns its length (0 = none). */
static size_t metric_name(const char *p)
{
    if (!name_start(*p))
        return 0;
    size_t n = 1;
    while (name_char(p[n]))
        n++;
    return n;
}

static bool parse_value(const char *s, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (!strcmp(buf, "+Inf")) {
        *out = INFINITY;
        return true;
    }
    if (!strcmp(buf, "-Inf")) {
        *out = -INFINITY;
        return true;
    }
    if (!strcmp(buf, "NaN")) {
        *out = NAN;
        return true;
    }
    char *end = NULL;
    *out = strtod(buf, &end);
    return end == buf + n;
}

static struct family *find_family(struct family *f, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(f[i].name) == len && !strncmp(f[i].name, name, len))
            return &f[i];
    return NULL;
}

/* The family a sample name belongs to (histogram suffixes stripped). */
static struct family *family_of(struct family *f, int n, const char *name, size_t len,
                                const char **suffix)
{
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    *suffix = "";
    struct family *fam = find_family(f, n, name, len);
    if (fam)
        return fam;
    for (int i = 0; i < 3; i++) {
        const size_t sl = strlen(sfx[i]);
        if (len > sl && !strncmp(name + len - sl, sfx[i], sl)) {
            fam = find_family(f, n, name, len - sl);
            if (fam && (!strcmp(fam->type, "histogram") || !strcmp(fam->type, "summary"))) {
                *suffix = sfx[i];
                return fam;
            }
        }
    }
    return NULL;
}

int prom_check(const char *text, char *err, size_t errlen)
{
    struct family *fams = calloc(MAX_FAMILIES, sizeof *fams);
    char **seen = calloc(MAX_SAMPLES, sizeof *seen);
    int n_fams = 0, n_seen = 0, line_no = 0, rc = 0;
    if (!fams || !seen) {
        free(fams);
        free(seen);
        return bad(err, errlen, 0, "out of memory");
    }
    const char *p = text;
    const size_t total = strlen(text);
    if (total == 0 || text[total - 1] != '\n') {
        rc = bad(err, errlen, 0, "the text must end with a newline");
        goto out;
    }
    while (*p) {
        line_no++;
        const char *eol = strchr(p, '\n');
        const size_t len = (size_t)(eol - p);
        char line[1024];
        if (len >= sizeof line) {
            rc = bad(err, errlen, line_no, "line too long");
            goto out;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        p = eol + 1;
        if (len == 0)
            continue;
        if (line[0] == '#') {
            char kind[8], name[128];
            if (sscanf(line, "# %7s %127s", kind, name) == 2 &&
                (!strcmp(kind, "HELP") || !strcmp(kind, "TYPE"))) {
                if (metric_name(name) != strlen(name)) {
                    rc = bad(err, errlen, line_no, "bad metric name '%s'", name);
                    goto out;
                }
                struct family *f = find_family(fams, n_fams, name, strlen(name));
                if (!f) {
                    if (n_fams == MAX_FAMILIES) {
                        rc = bad(err, errlen, line_no, "too many families");
                        goto out;
                    }
                    f = &fams[n_fams++];
                    snprintf(f->name, sizeof f->name, "%s", name);
                }
                if (!strcmp(kind, "TYPE")) {
                    const char *t = line + 7 + strlen(name);
                    while (*t == ' ')
                        t++;
                    if (f->type[0]) {
                        rc = bad(err, errlen, line_no, "second TYPE for %s", name);
                        goto out;
                    }
                    if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "histogram") &&
                        strcmp(t, "summary") && strcmp(t, "untyped")) {
                        rc = bad(err, errlen, line_no, "unknown type '%s'", t);
                        goto out;
                    }
                    snprintf(f->type, sizeof f->type, "%s", t);
                } else {
                    if (f->has_help) {
                        rc = bad(err, errlen, line_no, "second HELP for %s", name);
                        goto out;
                    }
                    f->has_help = true;
                }
            }
            continue; /* other comments are allowed */
        }
        /* a sample: name{labels} value [timestamp] */
        const size_t nl = metric_name(line);
        if (nl == 0) {
            rc = bad(err, errlen, line_no, "no metric name");
            goto out;
        }
        const char *q = line + nl;
        char le[64] = "";
        const char *labels_start = q, *labels_end = q;
        if (*q == '{') {
            q++;
            labels_start = q;
            while (*q != '}') {
                size_t ln = 0;
                while ((q[ln] >= 'a' && q[ln] <= 'z') || (q[ln] >= 'A' && q[ln] <= 'Z') ||
                       q[ln] == '_' || (ln > 0 && q[ln] >= '0' && q[ln] <= '9'))
                    ln++;
                if (ln == 0 || q[ln] != '=' || q[ln + 1] != '"') {
                    rc = bad(err, errlen, line_no, "bad label");
                    goto out;
                }
                const bool is_le = ln == 2 && !strncmp(q, "le", 2);
                q += ln + 2;
                size_t vl = 0;
                while (*q != '"') {
                    if (*q == '\0') {
                        rc = bad(err, errlen, line_no, "unterminated label value");
                        goto out;
                    }
                    if (*q == '\\') {
                        if (q[1] != '\\' && q[1] != '"' && q[1] != 'n') {
                            rc = bad(err, errlen, line_no, "bad escape in label value");
                            goto out;
                        }
                        q++;
                    }
                    if (is_le && vl + 1 < sizeof le)
                        le[vl++] = *q;
                    q++;
                }
                if (is_le)
                    le[vl] = '\0';
                q++;
                if (*q == ',')
                    q++;
                else if (*q != '}') {
                    rc = bad(err, errlen, line_no, "expected ',' or '}' after a label");
                    goto out;
                }
            }
            labels_end = q;
            q++;
        }
        if (*q != ' ') {
            rc = bad(err, errlen, line_no, "expected a space before the value");
            goto out;
        }
        q++;
        const char *vend = strchr(q, ' ');
        const size_t vlen = vend ? (size_t)(vend - q) : strlen(q);
        double v;
        if (!parse_value(q, vlen, &v)) {
            rc = bad(err, errlen, line_no, "bad value '%.*s'", (int)vlen, q);
            goto out;
        }
        const char *suffix;
        struct family *f = family_of(fams, n_fams, line, nl, &suffix);
        if (!f || !f->type[0]) {
            rc = bad(err, errlen, line_no, "sample of %.*s before its TYPE", (int)nl, line);
            goto out;
        }
        if ((!strcmp(f->type, "counter") || !strcmp(suffix, "_count")) && !(v >= 0)) {
            rc = bad(err, errlen, line_no, "negative or NaN counter");
            goto out;
        }
        if (!strcmp(f->type, "histogram")) {
            if (!strcmp(suffix, "_bucket")) {
                if (!le[0]) {
                    rc = bad(err, errlen, line_no, "bucket without le");
                    goto out;
                }
                if (f->in_buckets && v < f->last_bucket) {
                    rc = bad(err, errlen, line_no, "buckets not cumulative");
                    goto out;
                }
                f->in_buckets = true;
                f->last_bucket = v;
            } else if (!strcmp(suffix, "_count")) {
                if (!f->in_buckets || f->last_bucket != v) {
                    rc = bad(err, errlen, line_no, "_count differs from the +Inf bucket");
                    goto out;
                }
                f->in_buckets = false;
            } else if (suffix[0] == '\0') {
                rc = bad(err, errlen, line_no, "histogram sample without a suffix");
                goto out;
            }
        }
        /* no sample twice */
        char key[1024];
        snprintf(key, sizeof key, "%.*s{%.*s}", (int)nl, line,
                 (int)(labels_end - labels_start), labels_start);
        for (int i = 0; i < n_seen; i++) {
            if (!strcmp(seen[i], key)) {
                rc = bad(err, errlen, line_no, "duplicate sample %s", key);
                goto out;
            }
        }
        if (n_seen < MAX_SAMPLES) {
            seen[n_seen] = malloc(strlen(key) + 1);
            if (seen[n_seen])
                strcpy(seen[n_seen++], key);
        }
    }
out:
    for (int i = 0; i < n_seen; i++)
        free(seen[i]);
    free(seen);
    free(fams);
    return rc;
}

bool prom_value(const char *text, const char *name, const char *labels, double *out)
{
    char want[512];
    if (labels && labels[0])
        snprintf(want, sizeof want, "%s{%s} ", name, labels);
    else
        snprintf(want, sizeof want, "%s ", name);
    const size_t wl = strlen(want);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, want, wl)) {
            char *end = NULL;
            *out = strtod(p + wl, &end);
            return end != p + wl;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return false;
}
