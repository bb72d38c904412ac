/*
 * ratelimit.h - per-tenant limits: token buckets for requests and for tokens,
 * and a cap on concurrent requests.
 *
 * A bucket holds up to `capacity` units (the per-minute limit) and refills
 * continuously at capacity / 60 units per second, so a tenant may burst up to
 * its per-minute allowance and then proceeds at the steady rate. Time is
 * passed in (seconds on any monotonic clock), which keeps the arithmetic
 * testable without sleeping.
 *
 * Requests: each admitted request takes one unit; with less than one unit
 * left the request is refused. Tokens: a request is admitted only while the
 * token bucket is positive; its prompt tokens are taken at admission and its
 * completion tokens when it ends, and the bucket may go below zero, so a
 * request that used more than was left delays the tenant's next ones by the
 * time the debt takes to refill. Concurrency: at most max_concurrent admitted
 * requests that have not been released.
 *
 * A refusal says which limit and how many seconds until a retry can succeed
 * (for the Retry-After header, rounded up, at least 1). The limiter is safe
 * to use from several threads: one mutex makes each admission atomic (all
 * three checks pass and all are charged, or nothing is).
 */
#ifndef QUARRY_SERVER_RATELIMIT_H
#define QUARRY_SERVER_RATELIMIT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct srv_bucket {
    double level;       /* units available now (may be negative: debt) */
    double capacity;    /* the per-minute limit; 0 = unlimited */
    double rate;        /* units per second = capacity / 60 */
    double t_last;      /* time of the last refill */
};

/* A full bucket for per_minute units (0 = unlimited). */
void srv_bucket_init(struct srv_bucket *b, uint32_t per_minute, double now);
/* Adds what accrued since the last refill, up to capacity. */
void srv_bucket_refill(struct srv_bucket *b, double now);
/* Seconds until the bucket holds at least `need` units (0 = now). */
double srv_bucket_wait(struct srv_bucket *b, double need, double now);
/* Takes n units (the level may go negative). */
void srv_bucket_take(struct srv_bucket *b, double n, double now);

enum srv_limit {
    SRV_LIMIT_NONE = 0,
    SRV_LIMIT_REQUESTS,
    SRV_LIMIT_TOKENS,
    SRV_LIMIT_CONCURRENCY,
};
/* "requests", "tokens", "concurrency" (metric labels). */
const char *srv_limit_name(enum srv_limit l);

struct srv_tenant_limits {
    uint32_t requests_per_minute, tokens_per_minute, max_concurrent; /* 0 = unlimited */
};

typedef struct srv_limiter srv_limiter;

int srv_limiter_new(const struct srv_tenant_limits *limits, size_t n_tenants, double now,
                    srv_limiter **out);
void srv_limiter_free(srv_limiter *l);

/* Admits a request of tenant with prompt_tokens, or says which limit refused
 * it and *retry_after (whole seconds >= 1). */
enum srv_limit srv_limiter_admit(srv_limiter *l, size_t tenant, int32_t prompt_tokens,
                                 double now, unsigned *retry_after);
/* Charges completion tokens and ends an admitted request (its concurrency
 * slot is freed). */
void srv_limiter_release(srv_limiter *l, size_t tenant, int32_t completion_tokens, double now);

#endif
