/*
 * scheduler.c - slots, queue and the continuous-batching step loop (see
 * scheduler.h).
 *
 * Locking: one mutex guards the queue, the slot table's ownership and the
 * counters; the step itself (batch, forward, sampling) runs without it, on
 * the scheduler thread, which is the only thread that touches sessions.
 * Job callbacks may take their owner's locks, so the owner must never call
 * into the scheduler while holding a lock a callback takes.
 */
#include "engine/server/scheduler.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct job {
    struct job *next;                  /* queue link */
    int32_t *prompt;
    int32_t n_prompt;
    struct quarry_gen_params gen;      /* stops / logit_bias point at the copies below */
    char **stops;
    struct quarry_logit_bias *bias;
    const struct srv_job_ops *ops;
    void *user;
    double t_submit, t_tick;
};

struct slot {
    struct job *job;                   /* NULL when free */
    quarry_gen *gen;
    uint64_t admitted;                 /* admission order: oldest prompts go first */
    int32_t added;                     /* tokens added to this step's batch */
};

struct srv_sched {
    const quarry_model *model;
    const quarry_tokenizer *tok;
    quarry_context *ctx;
    struct srv_sched_params p;

    pthread_mutex_t mu;
    pthread_cond_t wake;               /* work arrived or stop asked */
    pthread_cond_t idle;               /* n_owned reached 0 */
    struct job *q_head, *q_tail;
    int32_t n_queued, n_active;
    int64_t n_owned;                   /* jobs whose on_done has not returned yet */
    bool draining, stopping;
    uint64_t admit_counter;
    struct srv_sched_snapshot snap;

    struct slot *slots;                /* [n_slots] */
    quarry_gen_batch *batch;
    pthread_t thread;
    bool thread_started;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    free(j->prompt);
    for (size_t i = 0; i < j->gen.n_stops; i++)
        free(j->stops[i]);
    free(j->stops);
    free(j->bias);
    free(j);
}

static struct job *job_copy(const struct srv_job_spec *spec)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->gen = spec->gen;
    j->gen.stops = NULL;
    j->gen.logit_bias = NULL;
    j->gen.n_stops = 0;
    j->gen.n_logit_bias = 0;
    j->n_prompt = spec->n_prompt;
    j->prompt = malloc((size_t)(spec->n_prompt > 0 ? spec->n_prompt : 1) * sizeof *j->prompt);
    if (!j->prompt)
        goto fail;
    if (spec->n_prompt > 0)
        memcpy(j->prompt, spec->prompt, (size_t)spec->n_prompt * sizeof *j->prompt);
    if (spec->gen.n_stops) {
        j->stops = calloc(spec->gen.n_stops, sizeof *j->stops);
        if (!j->stops)
            goto fail;
        for (size_t i = 0; i < spec->gen.n_stops; i++) {
            const size_t n = strlen(spec->gen.stops[i]);
            if (!(j->stops[i] = malloc(n + 1)))
                goto fail;
            memcpy(j->stops[i], spec->gen.stops[i], n + 1);
            j->gen.n_stops = i + 1;
        }
        j->gen.stops = (const char *const *)j->stops;
    }
    if (spec->gen.n_logit_bias) {
        j->bias = malloc(spec->gen.n_logit_bias * sizeof *j->bias);
        if (!j->bias)
            goto fail;
        memcpy(j->bias, spec->gen.logit_bias, spec->gen.n_logit_bias * sizeof *j->bias);
        j->gen.logit_bias = j->bias;
        j->gen.n_logit_bias = spec->gen.n_logit_bias;
    }
    return j;
fail:
    job_free(j);
    return NULL;
}

/* Tells the owner how the job ended and forgets it. Called without mu. */
static void end_job(srv_sched *s, struct job *j, const struct srv_job_result *r)
{
    j->ops->on_done(j->user, r);
    job_free(j);
    pthread_mutex_lock(&s->mu);
    if (--s->n_owned == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
}

static void end_job_simple(srv_sched *s, struct job *j, enum srv_job_end end, const char *error)
{
    const struct srv_job_result r = {.end = end, .error = error};
    end_job(s, j, &r);
}

/* ---- slots ---------------------------------------------------------------- */

static int slot_piece(void *user, const struct quarry_gen_piece *piece)
{
    struct slot *sl = user;
    return sl->job->ops->on_piece(sl->job->user, piece);
}

/* Frees slot i (its session and its KV cache) after its job ended. */
static void slot_release(srv_sched *s, int32_t i)
{
    struct slot *sl = &s->slots[i];
    quarry_gen_free(sl->gen);
    sl->gen = NULL;
    sl->job = NULL;
    sl->added = 0;
    quarry_kvcache_clear(quarry_context_kv(s->ctx), i, NULL);
    pthread_mutex_lock(&s->mu);
    s->n_active--;
    pthread_mutex_unlock(&s->mu);
}

/* Ends the job of slot i with a result made from its session. */
static void slot_finish(srv_sched *s, int32_t i, enum srv_job_end end)
{
    struct slot *sl = &s->slots[i];
    struct job *j = sl->job;
    struct srv_job_result r = {.end = end};
    if (sl->gen) {
        const struct quarry_gen_stats *st = quarry_gen_stats(sl->gen);
        r.n_prompt = st->n_prompt;
        r.n_gen = st->n_gen;
        if (end == SRV_JOB_FINISHED) {
            r.finish = st->finish;
            if (st->finish == QUARRY_FINISH_CANCELLED)
                r.end = SRV_JOB_CANCELLED;
            else if (st->finish == QUARRY_FINISH_ERROR) {
                r.end = SRV_JOB_FAILED;
                r.error = st->error.msg[0] ? st->error.msg : "generation failed";
            }
        }
    }
    /* the session (and the error text) stay alive until on_done returns */
    j->ops->on_done(j->user, &r);
    slot_release(s, i);
    job_free(j);
    pthread_mutex_lock(&s->mu);
    if (--s->n_owned == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
}

/* Turns a job that just got slot i into a running session. */
static void slot_start(srv_sched *s, int32_t i, double now)
{
    struct slot *sl = &s->slots[i];
    struct job *j = sl->job;
    quarry_error err = {0};
    struct quarry_gen_params gp = j->gen;
    gp.n_batch = s->p.prompt_chunk;
    int rc = quarry_gen_new(s->model, s->tok, s->ctx, i, &gp, slot_piece, sl, &sl->gen, &err);
    if (!rc)
        rc = quarry_gen_start_tokens(sl->gen, j->prompt, j->n_prompt, &err);
    if (rc) {
        const struct srv_job_result r = {.end = SRV_JOB_FAILED, .error = err.msg};
        j->ops->on_done(j->user, &r);
        slot_release(s, i);
        job_free(j);
        pthread_mutex_lock(&s->mu);
        if (--s->n_owned == 0)
            pthread_cond_broadcast(&s->idle);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    j->ops->on_start(j->user, now - j->t_submit);
}

/* ---- one engine step -------------------------------------------------------- */

static bool decoding(const quarry_gen *g)
{
    int32_t n = 0;
    quarry_gen_output(g, &n);
    return n > 0;
}

static void run_step(srv_sched *s, double now)
{
    const int32_t n = s->p.n_slots;
    /* clients that went away, and keep-alive ticks */
    for (int32_t i = 0; i < n; i++) {
        struct slot *sl = &s->slots[i];
        if (!sl->job)
            continue;
        if (sl->job->ops->cancelled(sl->job->user)) {
            slot_finish(s, i, SRV_JOB_CANCELLED);
            continue;
        }
        if (s->p.tick_s > 0 && sl->job->ops->tick && now - sl->job->t_tick >= s->p.tick_s) {
            sl->job->t_tick = now;
            sl->job->ops->tick(sl->job->user, now);
        }
    }
    quarry_gen_batch *b = s->batch;
    quarry_gen_batch_clear(b);
    /* 1. a token for every decoding session */
    for (int32_t i = 0; i < n; i++) {
        struct slot *sl = &s->slots[i];
        sl->added = 0;
        if (sl->job && !quarry_gen_done(sl->gen) && decoding(sl->gen))
            sl->added = quarry_gen_add(sl->gen, b);
    }
    /* 2. prompt chunks, oldest admission first, while the batch has room */
    for (;;) {
        int32_t pick = -1;
        for (int32_t i = 0; i < n; i++) {
            const struct slot *sl = &s->slots[i];
            if (sl->job && sl->added == 0 && !quarry_gen_done(sl->gen) && !decoding(sl->gen) &&
                (pick < 0 || sl->admitted < s->slots[pick].admitted))
                pick = i;
        }
        if (pick < 0 || quarry_gen_batch_room(b) == 0)
            break;
        s->slots[pick].added = quarry_gen_add(s->slots[pick].gen, b);
        if (s->slots[pick].added == 0)
            break;
    }
    if (quarry_gen_batch_size(b) > 0) {
        quarry_error err = {0};
        const int rc = quarry_gen_batch_forward(s->model, s->ctx, b, &err);
        for (int32_t i = 0; i < n; i++) {
            struct slot *sl = &s->slots[i];
            if (!sl->job || sl->added == 0)
                continue;
            if (rc) {
                quarry_gen_fail(sl->gen, &err);
            } else {
                quarry_error uerr = {0};
                quarry_gen_update(sl->gen, b, &uerr); /* failures finish the session */
            }
        }
        pthread_mutex_lock(&s->mu);
        s->snap.steps++;
        pthread_mutex_unlock(&s->mu);
    }
    for (int32_t i = 0; i < n; i++)
        if (s->slots[i].job && quarry_gen_done(s->slots[i].gen))
            slot_finish(s, i, SRV_JOB_FINISHED);
}

static void publish_snapshot(srv_sched *s)
{
    const quarry_kvcache *kv = quarry_context_kv(s->ctx);
    int64_t used = 0;
    for (int32_t i = 0; i < s->p.n_slots; i++) {
        const int32_t len = quarry_kvcache_seq_len(kv, i);
        used += len > 0 ? len : 0;
    }
    pthread_mutex_lock(&s->mu);
    s->snap.active = s->n_active;
    s->snap.queued = s->n_queued;
    s->snap.kv_cells_used = used;
    pthread_mutex_unlock(&s->mu);
}

/* Under mu: unlinks every queued job for which pred holds into *out. */
static void take_queued(srv_sched *s, bool all, struct job **out, double now)
{
    struct job **pp = &s->q_head;
    struct job *prev = NULL;
    while (*pp) {
        struct job *j = *pp;
        if (all || j->ops->cancelled(j->user)) {
            *pp = j->next;
            if (s->q_tail == j)
                s->q_tail = prev;
            s->n_queued--;
            j->next = *out;
            *out = j;
            continue;
        }
        if (s->p.tick_s > 0 && j->ops->tick && now - j->t_tick >= s->p.tick_s) {
            j->t_tick = now;
            j->ops->tick(j->user, now);
        }
        prev = j;
        pp = &j->next;
    }
}

static void *sched_thread(void *arg)
{
    srv_sched *s = arg;
    int32_t *admitted = malloc((size_t)s->p.n_slots * sizeof *admitted);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->stopping && s->n_active == 0 && s->n_queued == 0)
            pthread_cond_wait(&s->wake, &s->mu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        const double now = now_s();
        struct job *ended = NULL, *cancelled = NULL;
        if (s->draining)
            take_queued(s, true, &ended, now);
        else
            take_queued(s, false, &cancelled, now);
        int32_t n_admitted = 0;
        for (int32_t i = 0; admitted && i < s->p.n_slots && s->q_head; i++) {
            if (s->slots[i].job)
                continue;
            struct job *j = s->q_head;
            s->q_head = j->next;
            if (!s->q_head)
                s->q_tail = NULL;
            j->next = NULL;
            s->n_queued--;
            s->n_active++;
            s->slots[i].job = j;
            s->slots[i].admitted = s->admit_counter++;
            j->t_tick = now;
            admitted[n_admitted++] = i;
        }
        pthread_mutex_unlock(&s->mu);

        while (ended) {
            struct job *j = ended;
            ended = j->next;
            end_job_simple(s, j, SRV_JOB_SHUTDOWN, NULL);
        }
        while (cancelled) {
            struct job *j = cancelled;
            cancelled = j->next;
            end_job_simple(s, j, SRV_JOB_CANCELLED, NULL);
        }
        for (int32_t k = 0; k < n_admitted; k++)
            slot_start(s, admitted[k], now);
        run_step(s, now);
        publish_snapshot(s);
    }
    free(admitted);
    /* stopping: whatever is left ends now */
    for (int32_t i = 0; i < s->p.n_slots; i++)
        if (s->slots[i].job)
            slot_finish(s, i, SRV_JOB_SHUTDOWN);
    pthread_mutex_lock(&s->mu);
    struct job *rest = s->q_head;
    s->q_head = s->q_tail = NULL;
    s->n_queued = 0;
    pthread_mutex_unlock(&s->mu);
    while (rest) {
        struct job *j = rest;
        rest = j->next;
        end_job_simple(s, j, SRV_JOB_SHUTDOWN, NULL);
    }
    publish_snapshot(s);
    return NULL;
}

/* ---- public ----------------------------------------------------------------- */

int srv_sched_new(const quarry_model *model, const quarry_tokenizer *tok, quarry_context *ctx,
                  const struct srv_sched_params *p, srv_sched **out, quarry_error *err)
{
    *out = NULL;
    const struct quarry_kvcache_params *kp = quarry_kvcache_params(quarry_context_kv(ctx));
    if (p->n_slots < 1 || p->n_slots > kp->n_seq)
        return quarry_errorf(err, QUARRY_EINVAL,
                             "scheduler: %d slots, but the context has %d sequences", p->n_slots,
                             kp->n_seq);
    if (p->queue_cap < 0 || p->prompt_chunk < 1)
        return quarry_errorf(err, QUARRY_EINVAL, "scheduler: bad queue size or prompt chunk");
    srv_sched *s = calloc(1, sizeof *s);
    if (!s)
        return quarry_errorf(err, QUARRY_ENOMEM, "scheduler: out of memory");
    s->model = model;
    s->tok = tok;
    s->ctx = ctx;
    s->p = *p;
    s->slots = calloc((size_t)p->n_slots, sizeof *s->slots);
    int rc = s->slots ? 0 : quarry_errorf(err, QUARRY_ENOMEM, "scheduler: out of memory");
    if (!rc)
        rc = quarry_gen_batch_new(p->n_slots + p->prompt_chunk, model->hp.n_vocab, &s->batch,
                                  err);
    if (rc) {
        free(s->slots);
        free(s);
        return rc;
    }
    s->snap.n_slots = p->n_slots;
    s->snap.kv_cells_total = (int64_t)p->n_slots * kp->n_ctx;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->idle, NULL);
    if (pthread_create(&s->thread, NULL, sched_thread, s) != 0) {
        srv_sched_free(s);
        return quarry_errorf(err, QUARRY_ENOMEM, "scheduler: cannot start its thread");
    }
    s->thread_started = true;
    *out = s;
    return 0;
}

enum srv_submit_result srv_sched_submit(srv_sched *s, const struct srv_job_spec *spec,
                                        const struct srv_job_ops *ops, void *user)
{
    pthread_mutex_lock(&s->mu);
    const bool stopping = s->draining || s->stopping;
    const bool full = s->n_queued >= s->p.queue_cap &&
                      /* a free slot takes the job at once: the queue is only for waiting */
                      s->n_active + s->n_queued >= s->p.n_slots;
    pthread_mutex_unlock(&s->mu);
    if (stopping)
        return SRV_SUBMIT_STOPPING;
    if (full)
        return SRV_SUBMIT_QUEUE_FULL;
    struct job *j = job_copy(spec);
    if (!j)
        return SRV_SUBMIT_NOMEM;
    j->ops = ops;
    j->user = user;
    j->t_submit = now_s();
    j->t_tick = j->t_submit;
    pthread_mutex_lock(&s->mu);
    enum srv_submit_result res = SRV_SUBMIT_OK;
    if (s->draining || s->stopping)
        res = SRV_SUBMIT_STOPPING;
    else if (s->n_queued >= s->p.queue_cap && s->n_active + s->n_queued >= s->p.n_slots)
        res = SRV_SUBMIT_QUEUE_FULL;
    if (res == SRV_SUBMIT_OK) {
        if (s->q_tail)
            s->q_tail->next = j;
        else
            s->q_head = j;
        s->q_tail = j;
        s->n_queued++;
        s->n_owned++;
        s->snap.queued = s->n_queued;
        pthread_cond_signal(&s->wake);
    }
    pthread_mutex_unlock(&s->mu);
    if (res != SRV_SUBMIT_OK)
        job_free(j);
    return res;
}

void srv_sched_snapshot(srv_sched *s, struct srv_sched_snapshot *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->snap;
    pthread_mutex_unlock(&s->mu);
}

void srv_sched_drain(srv_sched *s)
{
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

bool srv_sched_wait_idle(srv_sched *s, double timeout_s)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    const double t = (double)deadline.tv_sec + 1e-9 * (double)deadline.tv_nsec +
                     (timeout_s > 0 ? timeout_s : 0);
    deadline.tv_sec = (time_t)t;
    deadline.tv_nsec = (long)((t - (double)deadline.tv_sec) * 1e9);
    pthread_mutex_lock(&s->mu);
    while (s->n_owned > 0) {
        if (pthread_cond_timedwait(&s->idle, &s->mu, &deadline) != 0)
            break;
    }
    const bool idle = s->n_owned == 0;
    pthread_mutex_unlock(&s->mu);
    return idle;
}

void srv_sched_stop(srv_sched *s)
{
    if (!s->thread_started)
        return;
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->thread_started = false;
}

void srv_sched_free(srv_sched *s)
{
    if (!s)
        return;
    srv_sched_stop(s);
    quarry_gen_batch_free(s->batch);
    free(s->slots);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
