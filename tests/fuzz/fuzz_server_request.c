/*
 * fuzz_server_request.c - libFuzzer target for the server's request parser
 * (engine/server/request.h). The first byte picks the endpoint (chat or
 * completions); the rest is the body, given as an exact-size copy so any read
 * past its end is caught. A parse that succeeds is walked field by field and
 * must satisfy everything the server relies on: ranges of every number,
 * prompt ids below n_vocab, NUL-terminated strings, at most 4 stop strings;
 * a refusal must carry an error code and a message. Seeded from
 * tests/fuzz/corpus/fuzz_server_request. Run: make fuzz.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/server/request.h"

#define N_VOCAB 512

static void check(int cond)
{
    if (!cond)
        abort();
}

static size_t touch(const char *s)
{
    check(s != NULL);
    return strlen(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const enum srv_endpoint ep = (data[0] & 1) ? SRV_EP_CHAT : SRV_EP_COMPLETIONS;
    const size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    if (!body)
        return 0;
    memcpy(body, data + 1, len);
    const struct srv_request_limits lim = {.n_vocab = N_VOCAB};
    struct srv_request r;
    struct srv_request_error e;
    const int rc = srv_request_parse(ep, body, len, &lim, &r, &e);
    if (rc == 0) {
        check(r.endpoint == ep);
        if (ep == SRV_EP_CHAT) {
            check(r.n_messages >= 1 && r.messages);
            for (size_t i = 0; i < r.n_messages; i++) {
                touch(r.messages[i].content);
                const char *role = r.messages[i].role;
                check(!strcmp(role, "system") || !strcmp(role, "user") ||
                      !strcmp(role, "assistant") || !strcmp(role, "tool"));
            }
        } else {
            check((r.prompt != NULL) != (r.prompt_ids != NULL));
            if (r.prompt)
                check(touch(r.prompt) == r.prompt_len);
            for (size_t i = 0; i < r.n_prompt_ids; i++)
                check(r.prompt_ids[i] >= 0 && r.prompt_ids[i] < N_VOCAB);
            check(!r.prompt_ids || r.n_prompt_ids > 0);
        }
        if (r.model)
            touch(r.model);
        if (r.user)
            touch(r.user);
        check(r.max_tokens == -1 || r.max_tokens >= 1);
        check(r.temperature >= 0 && r.temperature <= 2);
        check(r.top_p >= 0 && r.top_p <= 1);
        check(r.min_p >= 0 && r.min_p <= 1);
        check(r.top_k >= 0);
        check(r.presence_penalty >= -2 && r.presence_penalty <= 2);
        check(r.frequency_penalty >= -2 && r.frequency_penalty <= 2);
        check(r.n_stops <= SRV_MAX_STOPS);
        for (size_t i = 0; i < r.n_stops; i++)
            check(touch(r.stops[i]) > 0);
        check(r.n_logit_bias <= SRV_MAX_LOGIT_BIAS);
        for (size_t i = 0; i < r.n_logit_bias; i++) {
            check(r.logit_bias[i].token >= 0 && r.logit_bias[i].token < N_VOCAB);
            check(r.logit_bias[i].bias >= -100 && r.logit_bias[i].bias <= 100);
        }
    } else {
        check(rc == -1 || rc == -2);
        check(e.code != NULL && e.message[0] != '\0');
        check(r.messages == NULL && r.prompt == NULL && r.prompt_ids == NULL);
    }
    srv_request_free(&r);
    free(body);
    return 0;
}
