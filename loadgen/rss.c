/*
 * rss.c - sampling a process's resident memory (see rss.h).
 */
#include "loadgen/rss.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int qload_rss_read(int pid, int64_t *bytes, quarry_error *err)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return quarry_errorf(err, QUARRY_EIO, "%s: %s", path, strerror(errno));
    unsigned long long size_pages = 0, resident_pages = 0;
    const int n = fscanf(f, "%llu %llu", &size_pages, &resident_pages);
    fclose(f);
    if (n != 2)
        return quarry_errorf(err, QUARRY_EIO, "%s: unexpected contents", path);
    const long page = sysconf(_SC_PAGESIZE);
    *bytes = (int64_t)resident_pages * (page > 0 ? page : 4096);
    return 0;
}

void qload_rss_init(struct qload_rss *r, int pid)
{
    memset(r, 0, sizeof *r);
    r->pid = pid;
    r->start_bytes = r->peak_bytes = r->end_bytes = -1;
}

void qload_rss_sample(struct qload_rss *r)
{
    int64_t b;
    if (qload_rss_read(r->pid, &b, NULL) != 0) {
        r->failures++;
        return;
    }
    if (r->samples == 0)
        r->start_bytes = b;
    if (b > r->peak_bytes)
        r->peak_bytes = b;
    r->end_bytes = b;
    r->samples++;
}
