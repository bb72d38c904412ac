/*
 * test_sse.c - the incremental server-sent-events parser (loadgen/sse.h)
 * and the reading of OpenAI stream chunks (loadgen/openai.h).
 *
 * SSE: a reference stream using every line ending (LF, CRLF, CR), comments,
 * multi-line data, event types, ignored fields and a leading BOM must give
 * the same events, written out by hand here, however it is cut into pieces:
 * whole, at every single split point, at every pair of split points, byte
 * by byte and in random pieces. Then the edge rules one by one (CRLF split
 * across pieces, BOM split, value spacing, empty data, dispatch without
 * data), malformed input (lines without colon, over-long lines and events,
 * NUL bytes), stopping from the callback and the end-of-stream check that
 * tells a cut stream from a clean one.
 * Chunks: completions text, chat deltas, role-only and empty chunks (no
 * output), usage, [DONE], error objects and malformed JSON.
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen/openai.h"
#include "loadgen/sse.h"

#define MAX_EVENTS 64

struct collected {
    int n;
    char type[MAX_EVENTS][64];
    char data[MAX_EVENTS][256];
    size_t len[MAX_EVENTS];
    int stop_after; /* stop parsing after this many events (0: never) */
};

static int collect(void *ctx, const char *type, const char *data, size_t len)
{
    struct collected *c = ctx;
    if (c->n >= MAX_EVENTS || len >= sizeof c->data[0])
        fail_msg("too many or too long events");
    assert_int_equal(data[len], '\0');
    snprintf(c->type[c->n], sizeof c->type[0], "%s", type);
    memcpy(c->data[c->n], data, len);
    c->data[c->n][len] = '\0';
    c->len[c->n] = len;
    c->n++;
    return c->stop_after > 0 && c->n >= c->stop_after;
}

/* Feeds text cut at the given split points; returns the finish() verdict. */
static int feed_split(const char *text, size_t len, const size_t *cuts, int n_cuts, struct collected *c)
{
    struct qload_sse p;
    qload_sse_init(&p, 0);
    memset(c, 0, sizeof *c);
    size_t at = 0;
    for (int i = 0; i <= n_cuts; i++) {
        const size_t end = i < n_cuts ? cuts[i] : len;
        assert_int_equal(qload_sse_feed(&p, text + at, end - at, collect, c, NULL), 0);
        at = end;
    }
    const int unfinished = qload_sse_finish(&p);
    qload_sse_free(&p);
    return unfinished;
}

/* The reference stream and the events it must give. */
static const char reference[] =
    "\xEF\xBB\xBF"                         /* BOM: skipped */
    "data: one\n\n"                        /* LF */
    ": a comment\n"                        /* ignored */
    "event: update\r\ndata: two\r\n\r\n"   /* CRLF, typed */
    "data:three\r\rdata\n\n"               /* CR endings; no space after the colon; bare "data" */
    "id: 7\nretry: 100\nfoo: bar\n"        /* ignored fields */
    "data: first line\ndata: second line\n\n"
    "data:  two spaces\n\n"                /* only one space dropped */
    "event: typed\n\n"                     /* no data: no event, and the type is forgotten */
    "data: {\"x\": \"a:b\"}\n\n"           /* colons in the value */
    ":\n"
    "data\n\n";                            /* an event with empty data */

struct expected_event {
    const char *type, *data;
};

static const struct expected_event reference_events[] = {
    {"message", "one"},
    {"update", "two"},
    {"message", "three"},
    {"message", ""},
    {"message", "first line\nsecond line"},
    {"message", " two spaces"},
    {"message", "{\"x\": \"a:b\"}"},
    {"message", ""},
};
#define N_REF (int)(sizeof reference_events / sizeof reference_events[0])

static void check_reference(const struct collected *c)
{
    assert_int_equal(c->n, N_REF);
    for (int i = 0; i < N_REF; i++) {
        assert_string_equal(c->type[i], reference_events[i].type);
        assert_string_equal(c->data[i], reference_events[i].data);
    }
}

static void test_reference_whole(void **state)
{
    (void)state;
    struct collected c;
    assert_int_equal(feed_split(reference, sizeof reference - 1, NULL, 0, &c), 0);
    check_reference(&c);
}

static void test_reference_every_split(void **state)
{
    (void)state;
    const size_t len = sizeof reference - 1;
    struct collected c;
    for (size_t a = 0; a <= len; a++) {
        if (feed_split(reference, len, &a, 1, &c) != 0)
            fail_msg("split at %zu: unfinished", a);
        check_reference(&c);
    }
    /* every pair of split points */
    for (size_t a = 0; a <= len; a++)
        for (size_t b = a; b <= len; b++) {
            const size_t cuts[2] = {a, b};
            assert_int_equal(feed_split(reference, len, cuts, 2, &c), 0);
            check_reference(&c);
        }
}

static void test_reference_bytewise_and_random(void **state)
{
    (void)state;
    const size_t len = sizeof reference - 1;
    size_t cuts[sizeof reference];
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    struct collected c;
    assert_int_equal(feed_split(reference, len, cuts, (int)len - 1, &c), 0);
    check_reference(&c);
    uint64_t rng = 77;
    for (int trial = 0; trial < 2000; trial++) {
        int n = 0;
        size_t at = 0;
        while (n < 20) {
            at += 1 + tu_rand_u64(&rng) % 12;
            if (at >= len)
                break;
            cuts[n++] = at;
        }
        assert_int_equal(feed_split(reference, len, cuts, n, &c), 0);
        check_reference(&c);
    }
}

/* Many events in one piece (merged chunks) come out in order. */
static void test_merged_events(void **state)
{
    (void)state;
    char text[4096];
    size_t len = 0;
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "data: {\"i\":%d}\n\n", i);
    struct collected c;
    assert_int_equal(feed_split(text, len, NULL, 0, &c), 0);
    assert_int_equal(c.n, 40);
    for (int i = 0; i < 40; i++) {
        char want[32];
        snprintf(want, sizeof want, "{\"i\":%d}", i);
        assert_string_equal(c.data[i], want);
    }
}

/* A CR ending one piece and the LF starting the next are one line end: the
 * two data lines stay one event. Treating them as two line ends would
 * dispatch "x" alone. */
static void test_crlf_split_across_pieces(void **state)
{
    (void)state;
    const char text[] = "data: x\r\ndata: y\r\n\r\n";
    const size_t cut = 8; /* just after the first CR */
    assert_int_equal(text[cut - 1], '\r');
    struct collected c;
    assert_int_equal(feed_split(text, sizeof text - 1, &cut, 1, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.data[0], "x\ny");
    /* a lone CR at the end of a piece followed by a non-LF byte is a line end too */
    const char text2[] = "data: x\rdata: y\r\r";
    assert_int_equal(feed_split(text2, sizeof text2 - 1, &cut, 1, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.data[0], "x\ny");
}

/* Only a BOM at the very start is skipped; a partial BOM is ordinary bytes. */
static void test_bom_rules(void **state)
{
    (void)state;
    struct collected c;
    const char bom_twice[] = "\xEF\xBB\xBF\xEF\xBB\xBF" "data: a\n\n";
    /* the second BOM belongs to the field name, which is then unknown */
    assert_int_equal(feed_split(bom_twice, sizeof bom_twice - 1, NULL, 0, &c), 0);
    assert_int_equal(c.n, 0);
    const char partial[] = "\xEF\xBB" "data: a\n\ndata: b\n\n";
    assert_int_equal(feed_split(partial, sizeof partial - 1, NULL, 0, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.data[0], "b");
    const size_t cut = 1;
    assert_int_equal(feed_split(partial, sizeof partial - 1, &cut, 1, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.data[0], "b");
}

/* Malformed lines are tolerated as the standard says; NUL bytes survive. */
static void test_malformed_lines(void **state)
{
    (void)state;
    struct collected c;
    const char text[] = "garbage without colon\n"
                        "data\n"          /* field "data" with empty value */
                        "DATA: upper\n"   /* field names are case-sensitive: ignored */
                        "data : spaced\n" /* field "data " (with the space): ignored */
                        "\n";
    assert_int_equal(feed_split(text, sizeof text - 1, NULL, 0, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.data[0], "");
    const char nul[] = "data: a\0b\n\n";
    assert_int_equal(feed_split(nul, sizeof nul - 1, NULL, 0, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.len[0], 3);
    assert_memory_equal(c.data[0], "a\0b", 3);
}

/* Over-long lines and events are refused, and the refusal sticks. */
static void test_limits(void **state)
{
    (void)state;
    struct qload_sse p;
    struct collected c = {0};
    quarry_error err;
    qload_sse_init(&p, 64);
    char line[200];
    memset(line, 'x', sizeof line);
    /* a line growing past the limit across pieces */
    assert_int_equal(qload_sse_feed(&p, "data: ", 6, collect, &c, &err), 0);
    assert_int_equal(qload_sse_feed(&p, line, 40, collect, &c, &err), 0);
    assert_int_equal(qload_sse_feed(&p, line, 40, collect, &c, &err), QUARRY_ERANGE);
    assert_int_equal(qload_sse_feed(&p, "\n\n", 2, collect, &c, &err), QUARRY_ERANGE);
    assert_int_equal(c.n, 0);
    qload_sse_free(&p);
    /* short lines adding up to an over-long event */
    qload_sse_init(&p, 64);
    int rc = 0;
    for (int i = 0; i < 10 && rc == 0; i++)
        rc = qload_sse_feed(&p, "data: 0123456789\n", 17, collect, &c, &err);
    assert_int_equal(rc, QUARRY_ERANGE);
    assert_int_equal(c.n, 0);
    qload_sse_free(&p);
    /* an over-long line arriving whole (a comment: it would need no memory)
     * is refused just the same as one gathered across pieces */
    qload_sse_init(&p, 64);
    char comment[100];
    memset(comment, ':', 99);
    comment[99] = '\n';
    assert_int_equal(qload_sse_feed(&p, comment, 100, collect, &c, &err), QUARRY_ERANGE);
    qload_sse_free(&p);
    /* exactly at the limit is fine */
    qload_sse_init(&p, 64);
    char ok[80];
    memcpy(ok, "data: ", 6);
    memset(ok + 6, 'y', 58);
    memcpy(ok + 64, "\n\n", 2);
    assert_int_equal(qload_sse_feed(&p, ok, 66, collect, &c, &err), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.len[0], 58);
    qload_sse_free(&p);
}

/* The callback can stop the parser (cancellation); nothing after that event is seen. */
static void test_stop_from_callback(void **state)
{
    (void)state;
    struct qload_sse p;
    struct collected c = {0};
    c.stop_after = 2;
    qload_sse_init(&p, 0);
    const char text[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    assert_int_equal(qload_sse_feed(&p, text, sizeof text - 1, collect, &c, NULL), QLOAD_SSE_STOPPED);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.data[1], "2");
    qload_sse_free(&p);
}

/* finish(): 0 after complete events (comments and blank lines allowed),
 * 1 when the stream stopped inside a line or an event. */
static void test_finish_detects_cut_streams(void **state)
{
    (void)state;
    struct collected c;
    const char *clean[] = {"", "data: a\n\n", "data: a\n\n: keepalive\n", "data: a\n\n\n\n", "\xEF\xBB\xBF"};
    for (size_t i = 0; i < sizeof clean / sizeof clean[0]; i++)
        assert_int_equal(feed_split(clean[i], strlen(clean[i]), NULL, 0, &c), 0);
    const char *cut[] = {"data: a", "data: a\n", "data: a\n\ndata: b\n", "event: x\n", "dat", "\xEF\xBB",
                         "data: a\r"};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++)
        if (feed_split(cut[i], strlen(cut[i]), NULL, 0, &c) != 1)
            fail_msg("cut stream %zu not detected", i);
    /* a reset parser starts clean, BOM handling included */
    struct qload_sse p;
    qload_sse_init(&p, 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(qload_sse_feed(&p, "data: half", 10, collect, &c, NULL), 0);
    qload_sse_reset(&p);
    assert_int_equal(qload_sse_finish(&p), 0);
    assert_int_equal(qload_sse_feed(&p, "\xEF\xBB\xBF" "data: new\n\n", 14, collect, &c, NULL), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.data[0], "new");
    qload_sse_free(&p);
}

/* ---- OpenAI chunks ---- */

static struct qload_chunk parse(const char *s, int expect_rc)
{
    struct qload_chunk ch;
    assert_int_equal(qload_openai_parse_chunk(s, strlen(s), &ch), expect_rc);
    return ch;
}

static void test_openai_chunks(void **state)
{
    (void)state;
    struct qload_chunk ch;
    ch = parse("{\"choices\":[{\"index\":0,\"text\":\"Hello\",\"finish_reason\":null}]}", 0);
    assert_int_equal(ch.output_bytes, 5);
    assert_false(ch.done || ch.has_error || ch.has_finish);
    assert_int_equal(ch.prompt_tokens, -1);
    ch = parse("{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}", 0);
    assert_int_equal(ch.output_bytes, 2);
    ch = parse("{\"choices\":[{\"delta\":{\"reasoning_content\":\"think\"}}]}", 0);
    assert_int_equal(ch.output_bytes, 5);
    /* no output: role only, empty text, finish only */
    ch = parse("{\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}", 0);
    assert_int_equal(ch.output_bytes, 0);
    ch = parse("{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}", 0);
    assert_int_equal(ch.output_bytes, 0);
    ch = parse("{\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}]}", 0);
    assert_int_equal(ch.output_bytes, 0);
    assert_true(ch.has_finish);
    ch = parse("{\"choices\":[{\"delta\":{\"content\":null}}]}", 0);
    assert_int_equal(ch.output_bytes, 0);
    /* several choices add up */
    ch = parse("{\"choices\":[{\"text\":\"ab\"},{\"text\":\"cde\"}]}", 0);
    assert_int_equal(ch.output_bytes, 5);
    /* usage */
    ch = parse("{\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,\"total_tokens\":46}}", 0);
    assert_int_equal(ch.prompt_tokens, 12);
    assert_int_equal(ch.completion_tokens, 34);
    assert_int_equal(ch.output_bytes, 0);
    ch = parse("{\"choices\":[{\"text\":\"x\"}],\"usage\":null}", 0);
    assert_int_equal(ch.completion_tokens, -1);
    /* end and errors */
    assert_true(parse("[DONE]", 0).done);
    assert_true(parse(" [DONE] ", 0).done);
    assert_true(parse("{\"error\":{\"message\":\"overloaded\"}}", 0).has_error);
    assert_false(parse("{\"error\":null,\"choices\":[]}", 0).has_error);
    parse("{\"choices\":[", QUARRY_EFORMAT);
    parse("[1,2]", QUARRY_EFORMAT);
    parse("{} trailing", QUARRY_EFORMAT);
    parse("", QUARRY_EFORMAT);
    parse("DONE", QUARRY_EFORMAT);
}

/* Request bodies are valid JSON with streaming and usage switched on. */
static void test_openai_bodies(void **state)
{
    (void)state;
    char *body;
    size_t len;
    quarry_error err;
    struct qload_body_opts o = {.api = QLOAD_API_COMPLETIONS, .model = "m", .prompt = "say \"hi\"\n",
                                .max_tokens = 7, .ignore_eos = 1};
    assert_int_equal(qload_openai_body(&o, &body, &len, &err), 0);
    cJSON *j = qload_json_parse(body, len);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "prompt")->valuestring, "say \"hi\"\n");
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "max_tokens")->valuedouble == 7);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "stream")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "stream_options"), "include_usage")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ignore_eos")));
    cJSON_Delete(j);
    free(body);
    o.api = QLOAD_API_CHAT;
    o.ignore_eos = 0;
    assert_int_equal(qload_openai_body(&o, &body, &len, &err), 0);
    j = qload_json_parse(body, len);
    assert_non_null(j);
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "messages"), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring, "user");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(m, "content")->valuestring, "say \"hi\"\n");
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "ignore_eos"));
    cJSON_Delete(j);
    free(body);
    o.messages_json = "[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"u\"}]";
    assert_int_equal(qload_openai_body(&o, &body, &len, &err), 0);
    j = qload_json_parse(body, len);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "messages")), 2);
    cJSON_Delete(j);
    free(body);
    o.messages_json = "{\"not\":\"an array\"}";
    assert_int_equal(qload_openai_body(&o, &body, &len, &err), QUARRY_EINVAL);
    assert_int_equal(qload_api_for_path("/v1/chat/completions"), QLOAD_API_CHAT);
    assert_int_equal(qload_api_for_path("/v1/completions"), QLOAD_API_COMPLETIONS);
    assert_int_equal(qload_api_for_path("/health"), QLOAD_API_PLAIN_GET);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_whole),
        cmocka_unit_test(test_reference_every_split),
        cmocka_unit_test(test_reference_bytewise_and_random),
        cmocka_unit_test(test_merged_events),
        cmocka_unit_test(test_crlf_split_across_pieces),
        cmocka_unit_test(test_bom_rules),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_stop_from_callback),
        cmocka_unit_test(test_finish_detects_cut_streams),
        cmocka_unit_test(test_openai_chunks),
        cmocka_unit_test(test_openai_bodies),
    };
    return TU_RUN_GROUP(tests);
}
