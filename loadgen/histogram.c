/*
 * histogram.c - log-linear histogram (see histogram.h for the layout).
 *
 * Index of value v: v itself below 256; otherwise with e = floor(log2 v) and
 * s = v >> (e - 7) (the top 8 bits, 128..255), index = (e - 7) * 128 + s.
 * The indices run on without gaps from one octave to the next.
 */
#include "loadgen/histogram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SUB_COUNT (1 << QLOAD_HIST_SUB_BITS)

int qload_hist_init(struct qload_hist *h, quarry_error *err)
{
    memset(h, 0, sizeof *h);
    h->buckets = calloc(QLOAD_HIST_BUCKETS, sizeof *h->buckets);
    if (!h->buckets)
        return quarry_errorf(err, QUARRY_ENOMEM, "histogram: out of memory");
    h->min = UINT64_MAX;
    return 0;
}

void qload_hist_free(struct qload_hist *h)
{
    free(h->buckets);
    h->buckets = NULL;
}

void qload_hist_reset(struct qload_hist *h)
{
    uint64_t *b = h->buckets;
    memset(b, 0, QLOAD_HIST_BUCKETS * sizeof *b);
    memset(h, 0, sizeof *h);
    h->buckets = b;
    h->min = UINT64_MAX;
}

int qload_hist_bucket_index(uint64_t v)
{
    if (v > QLOAD_HIST_MAX_VALUE)
        v = QLOAD_HIST_MAX_VALUE;
    if (v < 2 * SUB_COUNT)
        return (int)v;
    const int e = 63 - __builtin_clzll(v);
    const int shift = e - QLOAD_HIST_SUB_BITS;
    return (shift << QLOAD_HIST_SUB_BITS) + (int)(v >> shift);
}

uint64_t qload_hist_bucket_lower(int index)
{
    if (index < 2 * SUB_COUNT)
        return (uint64_t)index;
    const int shift = (index >> QLOAD_HIST_SUB_BITS) - 1;
    const uint64_t sub = (uint64_t)(index - (shift << QLOAD_HIST_SUB_BITS));
    return sub << shift;
}

uint64_t qload_hist_bucket_width(int index)
{
    if (index < 2 * SUB_COUNT)
        return 1;
    return UINT64_C(1) << ((index >> QLOAD_HIST_SUB_BITS) - 1);
}

void qload_hist_record(struct qload_hist *h, uint64_t value)
{
    if (value > QLOAD_HIST_MAX_VALUE)
        h->saturated++;
    h->buckets[qload_hist_bucket_index(value)]++;
    h->count++;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
    const double x = (double)value;
    const double delta = x - h->mean;
    h->mean += delta / (double)h->count;
    h->m2 += delta * (x - h->mean);
}

void qload_hist_merge(struct qload_hist *dst, const struct qload_hist *src)
{
    if (src->count == 0)
        return;
    for (int i = 0; i < QLOAD_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    /* Chan et al.: combine two (n, mean, M2) summaries */
    const double na = (double)dst->count, nb = (double)src->count;
    const double n = na + nb;
    const double delta = src->mean - dst->mean;
    dst->mean += delta * nb / n;
    dst->m2 += src->m2 + delta * delta * na * nb / n;
    dst->count += src->count;
    dst->saturated += src->saturated;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

double qload_hist_percentile(const struct qload_hist *h, double p)
{
    if (h->count == 0)
        return 0.0;
    if (p <= 0.0)
        return (double)h->min;
    if (p >= 100.0)
        return (double)h->max;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (int i = 0; i < QLOAD_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            const double lower = (double)qload_hist_bucket_lower(i);
            double v = lower + (double)(qload_hist_bucket_width(i) - 1) / 2.0;
            if (v < (double)h->min)
                v = (double)h->min;
            if (v > (double)h->max)
                v = (double)h->max;
            return v;
        }
    }
    return (double)h->max; /* not reached: the buckets hold count values */
}

double qload_hist_mean(const struct qload_hist *h)
{
    return h->count ? h->mean : 0.0;
}

double qload_hist_stddev(const struct qload_hist *h)
{
    if (h->count < 2)
        return 0.0;
    const double var = h->m2 / (double)h->count;
    return var > 0.0 ? sqrt(var) : 0.0;
}
