/*
 * machine.c - machine and build description for result files (see machine.h).
 */
#include "harness/machine.h"

#include <hwloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "kernels/blas.h"
#include "kernels/kernels.h"

static void read_cpu_model(char *out, size_t size)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *colon = strchr(line, ':');
        if (!colon)
            continue;
        colon++;
        while (*colon == ' ' || *colon == '\t')
            colon++;
        snprintf(out, size, "%s", colon);
        out[strcspn(out, "\n")] = '\0';
        break;
    }
    fclose(f);
}

static int64_t read_mem_total(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}

static int64_t cache_size(hwloc_topology_t topo, hwloc_obj_type_t type)
{
    hwloc_obj_t obj = hwloc_get_obj_by_type(topo, type, 0);
    return obj && obj->attr ? (int64_t)obj->attr->cache.size : -1;
}

static int count_of(hwloc_topology_t topo, hwloc_obj_type_t type)
{
    int n = hwloc_get_nbobjs_by_type(topo, type);
    return n >= 0 ? n : -1;
}

void quarry_machine_info_collect(struct quarry_machine_info *mi)
{
    memset(mi, 0, sizeof *mi);
    mi->packages = mi->cores = mi->logical_cpus = mi->numa_nodes = -1;
    mi->l1d_bytes = mi->l2_bytes = mi->l3_bytes = -1;
    read_cpu_model(mi->cpu_model, sizeof mi->cpu_model);
    mi->mem_total_bytes = read_mem_total();

    struct utsname u;
    if (uname(&u) == 0)
        snprintf(mi->kernel, sizeof mi->kernel, "%s %s %s %s", u.sysname, u.release, u.version,
                 u.machine);

    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0)
        return;
    if (hwloc_topology_load(topo) == 0) {
        mi->packages = count_of(topo, HWLOC_OBJ_PACKAGE);
        mi->cores = count_of(topo, HWLOC_OBJ_CORE);
        mi->logical_cpus = count_of(topo, HWLOC_OBJ_PU);
        mi->numa_nodes = count_of(topo, HWLOC_OBJ_NUMANODE);
        mi->l1d_bytes = cache_size(topo, HWLOC_OBJ_L1CACHE);
        mi->l2_bytes = cache_size(topo, HWLOC_OBJ_L2CACHE);
        mi->l3_bytes = cache_size(topo, HWLOC_OBJ_L3CACHE);
    }
    hwloc_topology_destroy(topo);
}

/* Adds a number, or null when the value is negative (unknown). */
static int add_known(cJSON *obj, const char *key, double v)
{
    return (v < 0 ? cJSON_AddNullToObject(obj, key) : cJSON_AddNumberToObject(obj, key, v)) != NULL;
}

cJSON *quarry_machine_info_json(const struct quarry_machine_info *mi)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int ok = 1;
    ok &= (mi->cpu_model[0] ? cJSON_AddStringToObject(o, "cpu_model", mi->cpu_model)
                            : cJSON_AddNullToObject(o, "cpu_model")) != NULL;
    ok &= add_known(o, "packages", mi->packages);
    ok &= add_known(o, "cores", mi->cores);
    ok &= add_known(o, "logical_cpus", mi->logical_cpus);
    ok &= add_known(o, "numa_nodes", mi->numa_nodes);
    ok &= add_known(o, "l1d_bytes", (double)mi->l1d_bytes);
    ok &= add_known(o, "l2_bytes", (double)mi->l2_bytes);
    ok &= add_known(o, "l3_bytes_hwloc", (double)mi->l3_bytes);
    ok &= add_known(o, "mem_total_bytes", (double)mi->mem_total_bytes);
    ok &= cJSON_AddStringToObject(o, "kernel", mi->kernel) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

const char *quarry_compiler_name(void)
{
#if defined(__clang__)
    return "clang " __VERSION__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown";
#endif
}

static int built_with_sanitizer(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return 1;
#else
    return 0;
#endif
#else
    return 0;
#endif
}

static int built_optimized(void)
{
#if defined(__OPTIMIZE__)
    return 1;
#else
    return 0;
#endif
}

cJSON *quarry_build_info_json(void)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char hwloc_version[32];
    const unsigned hv = hwloc_get_api_version();
    snprintf(hwloc_version, sizeof hwloc_version, "%u.%u.%u", hv >> 16, (hv >> 8) & 0xff, hv & 0xff);
    const char *blas = quarry_blas_status();
    int ok = 1;
    ok &= cJSON_AddStringToObject(o, "compiler", quarry_compiler_name()) != NULL;
    ok &= cJSON_AddBoolToObject(o, "optimized", built_optimized()) != NULL;
    ok &= cJSON_AddBoolToObject(o, "address_sanitizer", built_with_sanitizer()) != NULL;
    ok &= cJSON_AddStringToObject(o, "isa_detected", quarry_isa_name(quarry_isa_detected())) != NULL;
    ok &= cJSON_AddStringToObject(o, "isa_chosen", quarry_isa_name(quarry_isa_chosen())) != NULL;
    ok &= cJSON_AddStringToObject(o, "openblas", blas ? blas : "") != NULL;
    ok &= cJSON_AddStringToObject(o, "hwloc_api", hwloc_version) != NULL;
    ok &= cJSON_AddStringToObject(o, "cjson", cJSON_Version()) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
