/*
 * counters.h - hardware performance counters through PAPI, for the figures
 * that wall time cannot explain: cycles, instructions, IPC and cache misses
 * per token.
 *
 * Events are added one at a time and kept only if PAPI accepts them, so a
 * machine that has some counters reports those and null for the rest. In a
 * VM without a PMU (like the machines this project is developed on) PAPI
 * initialises but every hardware event fails; then nothing is counted, every
 * field is null and `note` says why, once.
 *
 * Counting follows PAPI's default: the events of the thread that started the
 * set. Measure single-threaded work with it (the bench suite counts a decode
 * run on one thread), or the other threads' work is missing.
 */
#ifndef QUARRY_HARNESS_COUNTERS_H
#define QUARRY_HARNESS_COUNTERS_H

#include <cJSON.h>

/* The events asked for, in this order. */
enum quarry_counter {
    QUARRY_CTR_CYCLES,        /* PAPI_TOT_CYC */
    QUARRY_CTR_INSTRUCTIONS,  /* PAPI_TOT_INS */
    QUARRY_CTR_L1D_MISSES,    /* PAPI_L1_DCM */
    QUARRY_CTR_L2_MISSES,     /* PAPI_L2_TCM */
    QUARRY_CTR_L3_MISSES,     /* PAPI_L3_TCM */
    QUARRY_CTR_COUNT
};

/* "cycles", "instructions", "l1d_misses", ... (the JSON field names). */
const char *quarry_counter_name(enum quarry_counter c);

struct quarry_counters {
    int eventset;                       /* PAPI event set; -1 when none */
    int available[QUARRY_CTR_COUNT];    /* 1 when the event was added */
    int slot[QUARRY_CTR_COUNT];         /* its index in the event set's values */
    int n_available;
    int running;
    char note[256];                     /* why events are missing ("" when all work) */
};

/* Initialises PAPI (if needed) and adds every event that works here. Never
 * fails: returns the number of events available (0 when none; see note). */
int quarry_counters_open(struct quarry_counters *c);
void quarry_counters_close(struct quarry_counters *c);

/* Starts counting on the calling thread. 0, or -1 when nothing can count. */
int quarry_counters_start(struct quarry_counters *c);

/* Stops and reads: values[e] for each available event, -1 for the others.
 * 0, or -1 when counting had not started or PAPI failed (values all -1). */
int quarry_counters_stop(struct quarry_counters *c, long long values[QUARRY_CTR_COUNT]);

/* {"cycles": x, "instructions": x, "ipc": x, "l1d_misses": x, ...} with each
 * count divided by `per` (e.g. tokens); null where unavailable (ipc needs
 * both cycles and instructions). values may be NULL (all null). NULL when out
 * of memory. */
cJSON *quarry_counters_json(const struct quarry_counters *c, const long long *values, double per);

#endif
