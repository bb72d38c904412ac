/*
 * accesslog.h - one line per HTTP request: who asked what, the status, the
 * tokens and the timings.
 *
 * text: 2025-01-01T12:00:00.123Z 127.0.0.1 "POST /v1/completions" 200 tenant=alice
 *       prompt_tokens=5 completion_tokens=64 ttft_ms=12.3 duration_ms=130.5 finish=length
 * json: {"time":"...","remote":"...","method":"POST","path":"/v1/completions","status":200,
 *        "tenant":"alice","prompt_tokens":5,"completion_tokens":64,"ttft_ms":12.3,
 *        "duration_ms":130.5,"finish":"length"}
 * Fields that do not apply are "-" (text) or null (json). The method and path
 * are the client's bytes: quoted and escaped, never trusted. Nothing here
 * ever sees an API key.
 */
#ifndef QUARRY_SERVER_ACCESSLOG_H
#define QUARRY_SERVER_ACCESSLOG_H

#include <stdio.h>

enum srv_log_format { SRV_LOG_TEXT = 0, SRV_LOG_JSON = 1 };

struct srv_access_entry {
    double time;               /* Unix seconds (wall clock) when the request arrived */
    const char *remote;        /* client address, or NULL */
    const char *method, *path;
    int status;
    const char *tenant;        /* NULL when none (open server, refused before auth) */
    long prompt_tokens;        /* < 0: not applicable */
    long completion_tokens;
    double ttft_s;             /* < 0: no token was generated */
    double duration_s;
    const char *finish;        /* "stop", "length", "cancelled", ..., or NULL */
};

/* The line with its newline (malloc'd), or NULL when out of memory. */
char *srv_accesslog_format(const struct srv_access_entry *e, enum srv_log_format fmt,
                           size_t *len);
/* Formats and writes the line to out in one write. */
void srv_accesslog_write(FILE *out, const struct srv_access_entry *e, enum srv_log_format fmt);

#endif
