/*
 * error.c - filling quarry_error records (see error.h).
 */
#include "error.h"

#include <stdio.h>

int quarry_errorf(quarry_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *quarry_status_name(int code)
{
    switch (code) {
    case QUARRY_OK: return "ok";
    case QUARRY_EIO: return "I/O error";
    case QUARRY_EFORMAT: return "format error";
    case QUARRY_ENOMEM: return "out of memory";
    case QUARRY_EINVAL: return "invalid argument";
    case QUARRY_ENOTFOUND: return "not found";
    case QUARRY_EUNSUPPORTED: return "unsupported";
    case QUARRY_ERANGE: return "out of range";
    default: return "unknown error";
    }
}
