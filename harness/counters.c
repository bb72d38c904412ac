/*
 * counters.c - PAPI hardware counters, event by event (see counters.h).
 */
#include "harness/counters.h"

#include <papi.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *field;
    const char *papi;
} counter_events[QUARRY_CTR_COUNT] = {
    [QUARRY_CTR_CYCLES] = {"cycles", "PAPI_TOT_CYC"},
    [QUARRY_CTR_INSTRUCTIONS] = {"instructions", "PAPI_TOT_INS"},
    [QUARRY_CTR_L1D_MISSES] = {"l1d_misses", "PAPI_L1_DCM"},
    [QUARRY_CTR_L2_MISSES] = {"l2_misses", "PAPI_L2_TCM"},
    [QUARRY_CTR_L3_MISSES] = {"l3_misses", "PAPI_L3_TCM"},
};

const char *quarry_counter_name(enum quarry_counter c)
{
    return (unsigned)c < QUARRY_CTR_COUNT ? counter_events[c].field : "?";
}

/* Appends "text" to the note (truncating quietly). */
static void note_append(struct quarry_counters *c, const char *text)
{
    const size_t used = strlen(c->note);
    if (used + 1 < sizeof c->note)
        snprintf(c->note + used, sizeof c->note - used, "%s%s", used ? "; " : "", text);
}

int quarry_counters_open(struct quarry_counters *c)
{
    memset(c, 0, sizeof *c);
    c->eventset = -1;
    for (int e = 0; e < QUARRY_CTR_COUNT; e++)
        c->slot[e] = -1;
    char text[160];
    if (PAPI_is_initialized() == PAPI_NOT_INITED) {
        const int v = PAPI_library_init(PAPI_VER_CURRENT);
        if (v != PAPI_VER_CURRENT) {
            snprintf(text, sizeof text, "PAPI_library_init failed (%s)",
                     v < 0 ? PAPI_strerror(v) : "version mismatch");
            note_append(c, text);
            return 0;
        }
    }
    int es = PAPI_NULL;
    int rc = PAPI_create_eventset(&es);
    if (rc != PAPI_OK) {
        snprintf(text, sizeof text, "PAPI_create_eventset: %s", PAPI_strerror(rc));
        note_append(c, text);
        return 0;
    }
    c->eventset = es;
    char missing[160] = "";
    const char *first_error = NULL;
    for (int e = 0; e < QUARRY_CTR_COUNT; e++) {
        int code = 0;
        rc = PAPI_event_name_to_code((char *)counter_events[e].papi, &code);
        if (rc == PAPI_OK)
            rc = PAPI_add_event(es, code);
        if (rc == PAPI_OK) {
            c->available[e] = 1;
            c->slot[e] = c->n_available++;
            continue;
        }
        if (!first_error)
            first_error = PAPI_strerror(rc);
        const size_t used = strlen(missing);
        snprintf(missing + used, sizeof missing - used, "%s%s", used ? " " : "",
                 counter_events[e].papi);
    }
    if (missing[0]) {
        snprintf(text, sizeof text, "not available: %s (%s)", missing,
                 first_error ? first_error : "?");
        note_append(c, text);
    }
    if (c->n_available == 0) {
        PAPI_destroy_eventset(&es);
        c->eventset = -1;
    }
    return c->n_available;
}

void quarry_counters_close(struct quarry_counters *c)
{
    if (c->eventset < 0)
        return;
    if (c->running) {
        long long scratch[QUARRY_CTR_COUNT];
        PAPI_stop(c->eventset, scratch);
        c->running = 0;
    }
    int es = c->eventset;
    PAPI_cleanup_eventset(es);
    PAPI_destroy_eventset(&es);
    c->eventset = -1;
}

int quarry_counters_start(struct quarry_counters *c)
{
    if (c->eventset < 0 || c->running)
        return -1;
    const int rc = PAPI_start(c->eventset);
    if (rc != PAPI_OK) {
        char text[96];
        snprintf(text, sizeof text, "PAPI_start: %s", PAPI_strerror(rc));
        note_append(c, text);
        return -1;
    }
    c->running = 1;
    return 0;
}

int quarry_counters_stop(struct quarry_counters *c, long long values[QUARRY_CTR_COUNT])
{
    for (int e = 0; e < QUARRY_CTR_COUNT; e++)
        values[e] = -1;
    if (c->eventset < 0 || !c->running)
        return -1;
    long long raw[QUARRY_CTR_COUNT];
    const int rc = PAPI_stop(c->eventset, raw);
    c->running = 0;
    if (rc != PAPI_OK)
        return -1;
    for (int e = 0; e < QUARRY_CTR_COUNT; e++)
        if (c->available[e])
            values[e] = raw[c->slot[e]];
    return 0;
}

static int add_value(cJSON *o, const char *key, int known, double v)
{
    return (known ? cJSON_AddNumberToObject(o, key, v) : cJSON_AddNullToObject(o, key)) != NULL;
}

cJSON *quarry_counters_json(const struct quarry_counters *c, const long long *values, double per)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (!(per > 0))
        per = 1;
    int ok = 1;
    for (int e = 0; ok && e < QUARRY_CTR_COUNT; e++) {
        const int known = values && c->available[e] && values[e] >= 0;
        ok = add_value(o, counter_events[e].field, known, known ? (double)values[e] / per : 0);
        if (e == QUARRY_CTR_INSTRUCTIONS) {
            const int have_ipc = values && c->available[QUARRY_CTR_CYCLES] &&
                                 c->available[QUARRY_CTR_INSTRUCTIONS] &&
                                 values[QUARRY_CTR_CYCLES] > 0 &&
                                 values[QUARRY_CTR_INSTRUCTIONS] >= 0;
            ok = ok && add_value(o, "ipc", have_ipc,
                                 have_ipc ? (double)values[QUARRY_CTR_INSTRUCTIONS] /
                                                (double)values[QUARRY_CTR_CYCLES]
                                          : 0);
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
