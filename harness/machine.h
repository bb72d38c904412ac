/*
 * machine.h - what a benchmark result was measured on and built with, for
 * every result file quarry writes (kernels, model, attention benchmarks).
 *
 * Machine: CPU model (/proc/cpuinfo), packages / cores / logical CPUs and
 * cache sizes (hwloc), MemTotal (/proc/meminfo; hwloc's NUMA memory is not
 * reliable in VMs), kernel (uname). Build: compiler and version (__VERSION__),
 * whether optimized or sanitized, the ISA level detected and chosen, the
 * OpenBLAS, hwloc and cJSON versions.
 * Note: inside VMs hwloc may report a meaningless L3 size; it is recorded as
 * reported, never used for tuning.
 */
#ifndef QUARRY_HARNESS_MACHINE_H
#define QUARRY_HARNESS_MACHINE_H

#include <stdint.h>

#include <cJSON.h>

struct quarry_machine_info {
    char cpu_model[128];   /* "" when unknown */
    int packages, cores, logical_cpus, numa_nodes;  /* -1 when unknown */
    int64_t l1d_bytes, l2_bytes, l3_bytes;          /* first cache of each level; -1 unknown */
    int64_t mem_total_bytes;                        /* -1 when unknown */
    char kernel[4 * 65 + 8]; /* uname: sysname release version machine */
};

/* Fills mi; parts that cannot be read are left unknown (never fails). */
void quarry_machine_info_collect(struct quarry_machine_info *mi);

/* JSON objects for result files (NULL when out of memory). Unknown values are null. */
cJSON *quarry_machine_info_json(const struct quarry_machine_info *mi);
cJSON *quarry_build_info_json(void);

/* "gcc 12.2.0" / "clang 14.0.6 ..." - the compiler this library was built with. */
const char *quarry_compiler_name(void);

#endif
