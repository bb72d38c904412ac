/*
 * test_server_request.c - the OpenAI request parser (engine/server/request.h):
 * defaults, every accepted field and form, and for each kind of bad input
 * (broken JSON, wrong types, values out of range) a refusal that names the
 * parameter and carries OpenAI's error code.
 */
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/server/request.h"

static const struct srv_request_limits limits = {.n_vocab = 512};

static int parse(enum srv_endpoint ep, const char *body, struct srv_request *r,
                 struct srv_request_error *e)
{
    return srv_request_parse(ep, body, strlen(body), &limits, r, e);
}

/* Expects body to be refused with code, naming param ("" for none). */
static void expect_refused(enum srv_endpoint ep, const char *body, const char *code,
                           const char *param)
{
    struct srv_request r;
    struct srv_request_error e;
    const int rc = parse(ep, body, &r, &e);
    if (rc != -1)
        fail_msg("accepted (rc %d): %s", rc, body);
    if (!e.code || strcmp(e.code, code) != 0)
        fail_msg("code '%s', wanted '%s' for %s (%s)", e.code ? e.code : "(null)", code, body,
                 e.message);
    if (strcmp(e.param, param) != 0)
        fail_msg("param '%s', wanted '%s' for %s", e.param, param, body);
    assert_true(strlen(e.message) > 0);
    /* a refused request holds nothing */
    assert_null(r.messages);
    assert_null(r.prompt);
    assert_null(r.model);
    srv_request_free(&r);
}

static void test_chat_defaults(void **state)
{
    (void)state;
    struct srv_request r;
    struct srv_request_error e;
    assert_int_equal(parse(SRV_EP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                           &r, &e),
                     0);
    assert_int_equal(r.endpoint, SRV_EP_CHAT);
    assert_null(r.model);
    assert_int_equal(r.n_messages, 1);
    assert_string_equal(r.messages[0].role, "user");
    assert_string_equal(r.messages[0].content, "hi");
    assert_int_equal(r.max_tokens, -1);
    assert_true(r.temperature == 1.0f);
    assert_true(r.top_p == 1.0f);
    assert_int_equal(r.top_k, 0);
    assert_true(r.min_p == 0.0f);
    assert_true(r.presence_penalty == 0.0f && r.frequency_penalty == 0.0f);
    assert_false(r.has_seed);
    assert_int_equal(r.n_stops, 0);
    assert_int_equal(r.n_logit_bias, 0);
    assert_false(r.stream);
    assert_false(r.include_usage);
    assert_null(r.user);
    srv_request_free(&r);
}

static void test_chat_all_fields(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"m1\",\"messages\":["
        "{\"role\":\"developer\",\"content\":\"be brief\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\\u00e9\"},"
        "{\"type\":\"text\",\"text\":\"b\"}]},"
        "{\"role\":\"assistant\",\"content\":null}],"
        "\"max_tokens\":10,\"max_completion_tokens\":7,\"temperature\":0,\"top_p\":0.5,"
        "\"top_k\":40,\"min_p\":0.05,\"presence_penalty\":-2,\"frequency_penalty\":1.5,"
        "\"seed\":-3,\"stop\":[\"\\n\",\"END\"],\"logit_bias\":{\"5\":-100,\"17\":2.5},\"n\":1,"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"user\":\"u-1\","
        "\"unknown_field\":{\"x\":[1,2]},\"logprobs\":false}";
    struct srv_request r;
    struct srv_request_error e;
    assert_int_equal(parse(SRV_EP_CHAT, body, &r, &e), 0);
    assert_string_equal(r.model, "m1");
    assert_int_equal(r.n_messages, 3);
    assert_string_equal(r.messages[0].role, "system"); /* developer is the new name */
    assert_string_equal(r.messages[1].content, "a\xc3\xa9" "b");
    assert_string_equal(r.messages[2].role, "assistant");
    assert_string_equal(r.messages[2].content, "");
    assert_int_equal(r.max_tokens, 7); /* max_completion_tokens wins */
    assert_true(r.temperature == 0.0f);
    assert_true(r.top_p == 0.5f);
    assert_int_equal(r.top_k, 40);
    assert_true(fabsf(r.min_p - 0.05f) < 1e-7f);
    assert_true(r.presence_penalty == -2.0f);
    assert_true(r.frequency_penalty == 1.5f);
    assert_true(r.has_seed);
    assert_true(r.seed == (uint64_t)(int64_t)-3);
    assert_int_equal(r.n_stops, 2);
    assert_string_equal(r.stops[0], "\n");
    assert_string_equal(r.stops[1], "END");
    assert_int_equal(r.n_logit_bias, 2);
    assert_int_equal(r.logit_bias[0].token, 5);
    assert_true(r.logit_bias[0].bias == -100.0f);
    assert_int_equal(r.logit_bias[1].token, 17);
    assert_true(r.logit_bias[1].bias == 2.5f);
    assert_true(r.stream);
    assert_true(r.include_usage);
    assert_string_equal(r.user, "u-1");
    srv_request_free(&r);
}

static void test_nulls_are_absent(void **state)
{
    (void)state;
    struct srv_request r;
    struct srv_request_error e;
    assert_int_equal(parse(SRV_EP_COMPLETIONS,
                           "{\"prompt\":\"x\",\"model\":null,\"max_tokens\":null,"
                           "\"temperature\":null,\"stop\":null,\"seed\":null,\"stream\":null,"
                           "\"stream_options\":null,\"logit_bias\":null,\"n\":null}",
                           &r, &e),
                     0);
    assert_null(r.model);
    assert_int_equal(r.max_tokens, -1);
    assert_true(r.temperature == 1.0f);
    assert_false(r.has_seed);
    srv_request_free(&r);
}

static void test_prompt_forms(void **state)
{
    (void)state;
    struct srv_request r;
    struct srv_request_error e;
    assert_int_equal(parse(SRV_EP_COMPLETIONS, "{\"prompt\":\"Once upon a time\"}", &r, &e), 0);
    assert_string_equal(r.prompt, "Once upon a time");
    assert_int_equal(r.prompt_len, 16);
    assert_null(r.prompt_ids);
    srv_request_free(&r);

    assert_int_equal(parse(SRV_EP_COMPLETIONS, "{\"prompt\":[\"one\"]}", &r, &e), 0);
    assert_string_equal(r.prompt, "one");
    srv_request_free(&r);

    assert_int_equal(parse(SRV_EP_COMPLETIONS, "{\"prompt\":[1, 403, 407]}", &r, &e), 0);
    assert_null(r.prompt);
    assert_int_equal(r.n_prompt_ids, 3);
    assert_int_equal(r.prompt_ids[0], 1);
    assert_int_equal(r.prompt_ids[2], 407);
    srv_request_free(&r);

    assert_int_equal(parse(SRV_EP_COMPLETIONS, "{\"prompt\":[[7, 8]]}", &r, &e), 0);
    assert_int_equal(r.n_prompt_ids, 2);
    assert_int_equal(r.prompt_ids[1], 8);
    srv_request_free(&r);

    /* an empty string is a prompt (BOS alone, if the model adds one) */
    assert_int_equal(parse(SRV_EP_COMPLETIONS, "{\"prompt\":\"\"}", &r, &e), 0);
    assert_int_equal(r.prompt_len, 0);
    srv_request_free(&r);
}

static void test_bad_json(void **state)
{
    (void)state;
    expect_refused(SRV_EP_CHAT, "", "invalid_json", "");
    expect_refused(SRV_EP_CHAT, "{", "invalid_json", "");
    expect_refused(SRV_EP_CHAT, "{\"messages\":[}", "invalid_json", "");
    expect_refused(SRV_EP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]} x",
                   "invalid_json", "");
    expect_refused(SRV_EP_CHAT, "{} {}", "invalid_json", "");
    expect_refused(SRV_EP_CHAT, "[1,2]", "invalid_type", "");
    expect_refused(SRV_EP_CHAT, "\"text\"", "invalid_type", "");
    /* trailing whitespace is fine */
    struct srv_request r;
    struct srv_request_error e;
    assert_int_equal(parse(SRV_EP_COMPLETIONS, "  {\"prompt\":\"x\"} \r\n\t", &r, &e), 0);
    srv_request_free(&r);
    /* the length given is what counts: a NUL-free prefix of a valid body is not valid */
    const char *full = "{\"prompt\":\"x\"}";
    assert_int_equal(srv_request_parse(SRV_EP_COMPLETIONS, full, strlen(full) - 1, &limits, &r,
                                       &e),
                     -1);
    assert_string_equal(e.code, "invalid_json");
    srv_request_free(&r);
}

static void test_missing_and_wrong_types(void **state)
{
    (void)state;
    expect_refused(SRV_EP_CHAT, "{}", "missing_required_parameter", "messages");
    expect_refused(SRV_EP_COMPLETIONS, "{\"messages\":[]}", "missing_required_parameter",
                   "prompt");
    expect_refused(SRV_EP_CHAT, "{\"messages\":\"hi\"}", "invalid_type", "messages");
    expect_refused(SRV_EP_CHAT, "{\"messages\":[\"hi\"]}", "invalid_type", "messages");
    expect_refused(SRV_EP_CHAT, "{\"messages\":[{\"content\":\"hi\"}]}", "invalid_type",
                   "messages");
    expect_refused(SRV_EP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}",
                   "invalid_type", "messages");
    expect_refused(SRV_EP_CHAT,
                   "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
                   "invalid_value", "messages");
    const char *m = "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
    char body[512];
#define CHAT(extra) (snprintf(body, sizeof body, "{%s,%s}", m, extra), body)
    expect_refused(SRV_EP_CHAT, CHAT("\"model\":5"), "invalid_type", "model");
    expect_refused(SRV_EP_CHAT, CHAT("\"temperature\":\"hot\""), "invalid_type", "temperature");
    expect_refused(SRV_EP_CHAT, CHAT("\"top_p\":true"), "invalid_type", "top_p");
    expect_refused(SRV_EP_CHAT, CHAT("\"max_tokens\":\"10\""), "invalid_type", "max_tokens");
    expect_refused(SRV_EP_CHAT, CHAT("\"max_tokens\":1.5"), "invalid_value", "max_tokens");
    expect_refused(SRV_EP_CHAT, CHAT("\"top_k\":[1]"), "invalid_type", "top_k");
    expect_refused(SRV_EP_CHAT, CHAT("\"seed\":\"1\""), "invalid_type", "seed");
    expect_refused(SRV_EP_CHAT, CHAT("\"seed\":0.5"), "invalid_value", "seed");
    expect_refused(SRV_EP_CHAT, CHAT("\"stream\":\"yes\""), "invalid_type", "stream");
    expect_refused(SRV_EP_CHAT, CHAT("\"stream\":1"), "invalid_type", "stream");
    expect_refused(SRV_EP_CHAT, CHAT("\"stream_options\":true"), "invalid_type",
                   "stream_options");
    expect_refused(SRV_EP_CHAT, CHAT("\"stream_options\":{\"include_usage\":1}"),
                   "invalid_type", "include_usage");
    expect_refused(SRV_EP_CHAT, CHAT("\"stop\":5"), "invalid_type", "stop");
    expect_refused(SRV_EP_CHAT, CHAT("\"stop\":[\"a\",3]"), "invalid_type", "stop");
    expect_refused(SRV_EP_CHAT, CHAT("\"logit_bias\":[1]"), "invalid_type", "logit_bias");
    expect_refused(SRV_EP_CHAT, CHAT("\"logit_bias\":{\"3\":\"x\"}"), "invalid_type",
                   "logit_bias");
    expect_refused(SRV_EP_CHAT, CHAT("\"user\":7"), "invalid_type", "user");
    expect_refused(SRV_EP_CHAT, CHAT("\"n\":\"1\""), "invalid_type", "n");
    expect_refused(SRV_EP_COMPLETIONS, "{\"prompt\":5}", "invalid_type", "prompt");
    expect_refused(SRV_EP_COMPLETIONS, "{\"prompt\":{}}", "invalid_type", "prompt");
#undef CHAT
}

static void test_out_of_range(void **state)
{
    (void)state;
    const char *m = "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]";
    char body[1024];
#define CHAT(extra) (snprintf(body, sizeof body, "{%s,%s}", m, extra), body)
    expect_refused(SRV_EP_CHAT, CHAT("\"temperature\":2.01"), "invalid_value", "temperature");
    expect_refused(SRV_EP_CHAT, CHAT("\"temperature\":-0.1"), "invalid_value", "temperature");
    expect_refused(SRV_EP_CHAT, CHAT("\"temperature\":1e400"), "invalid_value", "temperature");
    expect_refused(SRV_EP_CHAT, CHAT("\"top_p\":1.5"), "invalid_value", "top_p");
    expect_refused(SRV_EP_CHAT, CHAT("\"min_p\":-1"), "invalid_value", "min_p");
    expect_refused(SRV_EP_CHAT, CHAT("\"top_k\":-1"), "invalid_value", "top_k");
    expect_refused(SRV_EP_CHAT, CHAT("\"presence_penalty\":2.5"), "invalid_value",
                   "presence_penalty");
    expect_refused(SRV_EP_CHAT, CHAT("\"frequency_penalty\":-3"), "invalid_value",
                   "frequency_penalty");
    expect_refused(SRV_EP_CHAT, CHAT("\"max_tokens\":0"), "invalid_value", "max_tokens");
    expect_refused(SRV_EP_CHAT, CHAT("\"max_completion_tokens\":-5"), "invalid_value",
                   "max_completion_tokens");
    expect_refused(SRV_EP_CHAT, CHAT("\"max_tokens\":3000000000"), "invalid_value",
                   "max_tokens");
    expect_refused(SRV_EP_CHAT, CHAT("\"n\":2"), "invalid_value", "n");
    expect_refused(SRV_EP_CHAT, CHAT("\"n\":0"), "invalid_value", "n");
    expect_refused(SRV_EP_CHAT, CHAT("\"seed\":1e300"), "invalid_value", "seed");
    expect_refused(SRV_EP_CHAT, CHAT("\"stop\":\"\""), "invalid_value", "stop");
    expect_refused(SRV_EP_CHAT, CHAT("\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]"),
                   "invalid_value", "stop");
    expect_refused(SRV_EP_CHAT, CHAT("\"logit_bias\":{\"3\":101}"), "invalid_value",
                   "logit_bias");
    expect_refused(SRV_EP_CHAT, CHAT("\"logit_bias\":{\"512\":1}"), "invalid_value",
                   "logit_bias"); /* n_vocab is 512 */
    expect_refused(SRV_EP_CHAT, CHAT("\"logit_bias\":{\"-1\":1}"), "invalid_value",
                   "logit_bias");
    expect_refused(SRV_EP_CHAT, CHAT("\"logit_bias\":{\"abc\":1}"), "invalid_value",
                   "logit_bias");
    expect_refused(SRV_EP_CHAT, CHAT("\"logit_bias\":{\"1x\":1}"), "invalid_value",
                   "logit_bias");
    expect_refused(SRV_EP_CHAT, "{\"messages\":[]}", "invalid_value", "messages");
    expect_refused(SRV_EP_CHAT, "{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
                   "invalid_value", "messages");
    expect_refused(SRV_EP_COMPLETIONS, "{\"prompt\":[]}", "invalid_value", "prompt");
    expect_refused(SRV_EP_COMPLETIONS, "{\"prompt\":[\"a\",\"b\"]}", "invalid_value", "prompt");
    expect_refused(SRV_EP_COMPLETIONS, "{\"prompt\":[1,512]}", "invalid_value", "prompt");
    expect_refused(SRV_EP_COMPLETIONS, "{\"prompt\":[1,-1]}", "invalid_value", "prompt");
    expect_refused(SRV_EP_COMPLETIONS, "{\"prompt\":[1,2.5]}", "invalid_value", "prompt");
    expect_refused(SRV_EP_COMPLETIONS, "{\"prompt\":[1,\"a\"]}", "invalid_value", "prompt");
    expect_refused(SRV_EP_COMPLETIONS, "{\"prompt\":[[]]}", "invalid_value", "prompt");
    /* boundaries are inclusive */
    struct srv_request r;
    struct srv_request_error e;
    assert_int_equal(parse(SRV_EP_CHAT,
                           CHAT("\"temperature\":2,\"top_p\":0,\"min_p\":1,"
                                "\"presence_penalty\":2,\"frequency_penalty\":-2,"
                                "\"logit_bias\":{\"511\":-100,\"0\":100},\"max_tokens\":1,"
                                "\"seed\":9007199254740992"),
                           &r, &e),
                     0);
    assert_int_equal(r.logit_bias[0].token, 511);
    assert_true(r.seed == 9007199254740992ull);
    srv_request_free(&r);
#undef CHAT
}

static void test_deep_nesting_and_long_input(void **state)
{
    (void)state;
    /* nesting deeper than cJSON's limit is refused, not a crash */
    enum { DEPTH = 5000 };
    char *deep = malloc(2 * DEPTH + 64);
    assert_non_null(deep);
    size_t n = (size_t)sprintf(deep, "{\"prompt\":\"x\",\"junk\":");
    for (int i = 0; i < DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < DEPTH; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = '\0';
    struct srv_request r;
    struct srv_request_error e;
    assert_int_equal(parse(SRV_EP_COMPLETIONS, deep, &r, &e), -1);
    assert_string_equal(e.code, "invalid_json");
    free(deep);
    /* a long prompt comes through whole */
    enum { LEN = 100000 };
    char *big = malloc(LEN + 32);
    assert_non_null(big);
    n = (size_t)sprintf(big, "{\"prompt\":\"");
    for (int i = 0; i < LEN; i++)
        big[n++] = (char)('a' + i % 26);
    n += (size_t)sprintf(big + n, "\"}");
    assert_int_equal(srv_request_parse(SRV_EP_COMPLETIONS, big, n, &limits, &r, &e), 0);
    assert_int_equal(r.prompt_len, LEN);
    assert_int_equal(r.prompt[LEN - 1], 'a' + (LEN - 1) % 26);
    srv_request_free(&r);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_defaults),
        cmocka_unit_test(test_chat_all_fields),
        cmocka_unit_test(test_nulls_are_absent),
        cmocka_unit_test(test_prompt_forms),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_missing_and_wrong_types),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_deep_nesting_and_long_input),
    };
    return TU_RUN_GROUP(tests);
}
