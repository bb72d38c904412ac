/*
 * error.h - how the quarry library reports failure.
 *
 * Library functions never print and never exit: they return 0 on success or a
 * negative QUARRY_E* code, and fill a caller-owned quarry_error with a one-line
 * message the caller can show (the CLI prints it, the server puts it in a JSON
 * error). A NULL quarry_error pointer is allowed and means "code only".
 */
#ifndef QUARRY_ERROR_H
#define QUARRY_ERROR_H

#include <stdarg.h>
#include <stddef.h>

enum quarry_status {
    QUARRY_OK = 0,
    QUARRY_EIO = -1,      /* open/read/mmap/write failed */
    QUARRY_EFORMAT = -2,  /* input data is malformed */
    QUARRY_ENOMEM = -3,   /* allocation failed */
    QUARRY_EINVAL = -4,   /* bad argument from the caller */
    QUARRY_ENOTFOUND = -5,/* key, tensor or file not present */
    QUARRY_EUNSUPPORTED = -6, /* valid input quarry does not handle */
    QUARRY_ERANGE = -7,   /* a limit (context, size) was exceeded */
};

typedef struct quarry_error {
    int code;
    char msg[512];
} quarry_error;

/* Records code and a printf-style message in err (if non-NULL); returns code. */
int quarry_errorf(quarry_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short name for a status code ("format error", ...). */
const char *quarry_status_name(int code);

#endif
