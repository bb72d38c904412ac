/*
 * results.c - JSON result documents (see results.h).
 */
#include "harness/results.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness/machine.h"

cJSON *quarry_results_new(const char *benchmark)
{
    cJSON *doc = cJSON_CreateObject();
    if (!doc)
        return NULL;
    char when[32] = "";
    const time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    struct quarry_machine_info mi;
    quarry_machine_info_collect(&mi);
    cJSON *machine = quarry_machine_info_json(&mi);
    cJSON *build = quarry_build_info_json();
    int ok = machine && build;
    ok = ok && cJSON_AddStringToObject(doc, "schema", "quarry-results/1");
    ok = ok && cJSON_AddStringToObject(doc, "benchmark", benchmark);
    ok = ok && cJSON_AddStringToObject(doc, "created_utc", when);
    ok = ok && cJSON_AddBoolToObject(doc, "complete", 0);
    ok = ok && cJSON_AddItemToObject(doc, "machine", machine);
    if (ok)
        machine = NULL; /* owned by doc now */
    ok = ok && cJSON_AddItemToObject(doc, "build", build);
    if (ok)
        build = NULL;
    ok = ok && cJSON_AddObjectToObject(doc, "config");
    ok = ok && cJSON_AddArrayToObject(doc, "results");
    cJSON_Delete(machine);
    cJSON_Delete(build);
    if (!ok) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

cJSON *quarry_results_config(cJSON *doc)
{
    return cJSON_GetObjectItemCaseSensitive(doc, "config");
}

cJSON *quarry_results_rows(cJSON *doc)
{
    return cJSON_GetObjectItemCaseSensitive(doc, "results");
}

void quarry_results_set_complete(cJSON *doc, int complete)
{
    cJSON *item = cJSON_CreateBool(complete ? 1 : 0);
    if (item && !cJSON_ReplaceItemInObjectCaseSensitive(doc, "complete", item))
        cJSON_Delete(item);
}

cJSON *quarry_stats_json(const struct quarry_stats *st, const char *unit)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int ok = cJSON_AddStringToObject(o, "unit", unit) != NULL;
    ok &= cJSON_AddNumberToObject(o, "mean", st->mean) != NULL;
    ok &= cJSON_AddNumberToObject(o, "stddev", st->stddev) != NULL;
    ok &= cJSON_AddNumberToObject(o, "min", st->min) != NULL;
    ok &= cJSON_AddNumberToObject(o, "max", st->max) != NULL;
    ok &= cJSON_AddNumberToObject(o, "n", st->n) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

int quarry_results_write(const cJSON *doc, const char *path, quarry_error *err)
{
    char *text = cJSON_Print(doc);
    if (!text)
        return quarry_errorf(err, QUARRY_ENOMEM, "results: out of memory printing JSON");
    const size_t len = strlen(path) + 16;
    char *tmp = malloc(len);
    if (!tmp) {
        free(text);
        return quarry_errorf(err, QUARRY_ENOMEM, "results: out of memory");
    }
    snprintf(tmp, len, "%s.tmp", path);
    int rc = 0;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        rc = quarry_errorf(err, QUARRY_EIO, "results: cannot create %s: %s", tmp, strerror(errno));
    } else {
        const int write_ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
        const int close_ok = fclose(f) == 0;
        if (!write_ok || !close_ok)
            rc = quarry_errorf(err, QUARRY_EIO, "results: cannot write %s", tmp);
        else if (rename(tmp, path) != 0)
            rc = quarry_errorf(err, QUARRY_EIO, "results: cannot rename %s to %s: %s", tmp, path,
                               strerror(errno));
        if (rc != 0)
            remove(tmp);
    }
    free(tmp);
    free(text);
    return rc;
}
