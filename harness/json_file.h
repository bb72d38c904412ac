/*
 * json_file.h - reading a whole file into memory and parsing it as JSON, for
 * the tools that read result files back (compare, import, the gate). A file
 * must hold exactly one JSON value (trailing garbage is refused).
 */
#ifndef QUARRY_HARNESS_JSON_FILE_H
#define QUARRY_HARNESS_JSON_FILE_H

#include <stddef.h>

#include <cJSON.h>

#include "engine/error.h"

/* The file's bytes, NUL-terminated (*len excludes the NUL); NULL on failure
 * (QUARRY_EIO, QUARRY_ENOMEM in err). Free with free(). */
char *quarry_read_text_file(const char *path, size_t *len, quarry_error *err);

/* Parses one JSON value from text[0..len) (text[len] must be '\0'); NULL
 * with QUARRY_EFORMAT naming `what` and the byte offset where it failed. */
cJSON *quarry_json_parse_text(const char *text, size_t len, const char *what, quarry_error *err);

/* Both of the above. */
cJSON *quarry_json_read_file(const char *path, quarry_error *err);

#endif
