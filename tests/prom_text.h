/*
 * prom_text.h - a checker for the Prometheus text exposition format 0.0.4,
 * for the server's metrics tests: every line is a HELP/TYPE comment or a
 * sample with a valid name, label set and value; TYPE comes before a
 * family's samples and at most once; no sample repeats; histogram buckets
 * are cumulative and the +Inf bucket equals _count.
 */
#ifndef QUARRY_TESTS_PROM_TEXT_H
#define QUARRY_TESTS_PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* 0 when text is valid, else -1 with a message naming the line in err. */
int prom_check(const char *text, char *err, size_t errlen);

/* The value of the sample `name{labels}` (labels exactly as printed, ""
 * for none). false when absent. */
bool prom_value(const char *text, const char *name, const char *labels, double *out);

#endif
