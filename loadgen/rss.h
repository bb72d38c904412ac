/*
 * rss.h - the server's resident memory during a load run (--server-pid):
 * sampled from /proc/PID/statm (resident pages x page size) at the start,
 * periodically while requests run, and at the end; reported as start, peak
 * and end bytes. Reading another process's statm needs no privileges.
 */
#ifndef QUARRY_LOADGEN_RSS_H
#define QUARRY_LOADGEN_RSS_H

#include <stdint.h>

#include "engine/error.h"

struct qload_rss {
    int pid;
    int64_t start_bytes, peak_bytes, end_bytes;  /* -1 until sampled */
    uint64_t samples;
    uint64_t failures;   /* reads that failed (the process gone, ...) */
};

/* Resident bytes of process pid now. Returns 0 or QUARRY_EIO. */
int qload_rss_read(int pid, int64_t *bytes, quarry_error *err);

void qload_rss_init(struct qload_rss *r, int pid);
/* Takes one sample: the first sets start, every one updates peak and end. */
void qload_rss_sample(struct qload_rss *r);

#endif
