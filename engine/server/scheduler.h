/*
 * scheduler.h - continuous batching: sequence slots, a bounded queue, and the
 * engine step loop on its own thread.
 *
 * The scheduler owns n_slots generation slots, one per sequence of the
 * context (the context must have n_seq >= n_slots). A submitted job waits in
 * a FIFO queue of at most queue_cap jobs (a full queue refuses at once) until
 * a slot is free; it then becomes a generation session (engine/generate.h) on
 * that slot's sequence. Each engine step builds one batch:
 *   1. one token for every session that is decoding (the token it sampled
 *      last), so every running request advances every step;
 *   2. then prompt tokens of sessions still reading their prompt, oldest
 *      first, at most prompt_chunk per session and as many as fit the batch
 *      (n_slots + prompt_chunk tokens), so a long prompt is cut into chunks
 *      and never stalls the others for more than one chunk's worth of work;
 * runs one batched forward pass, and lets every session sample and stream.
 *
 * The scheduler knows nothing about HTTP. A job talks to its owner through
 * callbacks, all made on the scheduler thread:
 *   on_start   the job got a slot (queue wait over)
 *   on_piece   a sampled token and the text it released (generate.h); non-zero
 *              return cancels the job
 *   on_done    exactly once, last: how it ended; afterwards the scheduler never
 *              touches the job's user pointer again
 *   cancelled  polled every step (and for queued jobs every loop): true ends
 *              the job within that step (a client that went away)
 *   tick       called about every tick_s seconds while the job is queued or
 *              running (for SSE keep-alive comments)
 * A job that ends early releases its slot and its sequence's KV cache at once.
 *
 * The model, tokenizer, context and thread pool are borrowed; only the
 * scheduler thread runs forward passes on them while it lives.
 */
#ifndef QUARRY_SERVER_SCHEDULER_H
#define QUARRY_SERVER_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/error.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/tokenizer.h"

enum srv_job_end {
    SRV_JOB_FINISHED = 0,   /* stop string, EOS or length: see finish */
    SRV_JOB_CANCELLED,      /* cancelled() said so, or on_piece returned non-zero */
    SRV_JOB_SHUTDOWN,       /* the scheduler was stopped before the job finished */
    SRV_JOB_FAILED,         /* a forward pass or sampling failed: see error */
};

struct srv_job_result {
    enum srv_job_end end;
    enum quarry_finish finish;  /* for SRV_JOB_FINISHED */
    int32_t n_prompt, n_gen;    /* tokens processed / sampled (0 when it never ran) */
    const char *error;          /* message for SRV_JOB_FAILED, else NULL */
};

struct srv_job_ops {
    void (*on_start)(void *user, double queue_wait_s);
    int (*on_piece)(void *user, const struct quarry_gen_piece *piece);
    void (*on_done)(void *user, const struct srv_job_result *result);
    bool (*cancelled)(void *user);
    void (*tick)(void *user, double now);   /* may be NULL */
};

/* What to generate. Everything is copied by srv_sched_submit. */
struct srv_job_spec {
    const int32_t *prompt;      /* token ids */
    int32_t n_prompt;
    struct quarry_gen_params gen;   /* n_batch is overridden with prompt_chunk */
};

struct srv_sched_params {
    int32_t n_slots;            /* concurrent sequences (--parallel) */
    int32_t queue_cap;          /* jobs that may wait for a slot (--queue) */
    int32_t prompt_chunk;       /* prompt tokens per session per step (--batch) */
    double tick_s;              /* tick period (0: no ticks) */
};

/* Counts for /metrics, as of the last step. */
struct srv_sched_snapshot {
    int32_t active, queued, n_slots;
    int64_t kv_cells_used, kv_cells_total;
    uint64_t steps;             /* forward passes run */
};

typedef struct srv_sched srv_sched;

enum srv_submit_result {
    SRV_SUBMIT_OK = 0,
    SRV_SUBMIT_QUEUE_FULL,
    SRV_SUBMIT_STOPPING,
    SRV_SUBMIT_NOMEM,
};

/* Creates the scheduler and starts its thread. ctx must have at least
 * n_slots sequences. */
int srv_sched_new(const quarry_model *model, const quarry_tokenizer *tok, quarry_context *ctx,
                  const struct srv_sched_params *p, srv_sched **out, quarry_error *err);

/* Queues a job; on anything but SRV_SUBMIT_OK no callback will ever be made. */
enum srv_submit_result srv_sched_submit(srv_sched *s, const struct srv_job_spec *spec,
                                        const struct srv_job_ops *ops, void *user);

void srv_sched_snapshot(srv_sched *s, struct srv_sched_snapshot *out);

/* Refuses new jobs from now on (SRV_SUBMIT_STOPPING) and ends every queued
 * job with SRV_JOB_SHUTDOWN; running jobs go on. */
void srv_sched_drain(srv_sched *s);
/* Waits until no job is running or queued, at most timeout_s seconds.
 * Returns true when idle. */
bool srv_sched_wait_idle(srv_sched *s, double timeout_s);
/* Ends every running and queued job with SRV_JOB_SHUTDOWN (implies drain)
 * and joins the thread. The scheduler stays valid for snapshots (and refuses
 * submissions) until it is freed. */
void srv_sched_stop(srv_sched *s);
/* Stops it if needed and frees it. NULL is allowed. */
void srv_sched_free(srv_sched *s);

#endif
