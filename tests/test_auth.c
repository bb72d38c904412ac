/*
 * test_auth.c - the keys file parser and the Authorization header check
 * (engine/server/auth.h): fields, comments, every malformed line refused with
 * its line number and without quoting the key, the Bearer scheme required
 * (a bare key is refused), and the constant-time comparison.
 */
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/server/auth.h"

static const char keys_text[] =
    "# key                 tenant  rpm   tpm     concurrent\n"
    "sk-alice-0123456789   alice   60    100000  4\n"
    "\n"
    "   \t\n"
    "sk-bob-9876543210\tbob\t0\t0\t0\r\n"
    "k3 carol.c-d_e 1 2 3";

static void test_parse_keys(void **state)
{
    (void)state;
    struct srv_keys k;
    char err[256] = "";
    assert_int_equal(srv_keys_parse(keys_text, strlen(keys_text), &k, err, sizeof err), 0);
    assert_int_equal(k.n, 3);
    assert_string_equal(k.tenants[0].key, "sk-alice-0123456789");
    assert_int_equal(k.tenants[0].key_len, 19);
    assert_string_equal(k.tenants[0].name, "alice");
    assert_int_equal(k.tenants[0].requests_per_minute, 60);
    assert_int_equal(k.tenants[0].tokens_per_minute, 100000);
    assert_int_equal(k.tenants[0].max_concurrent, 4);
    assert_string_equal(k.tenants[1].key, "sk-bob-9876543210"); /* tabs and CRLF */
    assert_string_equal(k.tenants[1].name, "bob");
    assert_int_equal(k.tenants[1].requests_per_minute, 0);
    assert_string_equal(k.tenants[2].name, "carol.c-d_e");
    assert_int_equal(k.tenants[2].max_concurrent, 3);
    srv_keys_free(&k);
    assert_int_equal(k.n, 0);
}

static void expect_bad(const char *text, const char *line_tag)
{
    struct srv_keys k;
    char err[256] = "";
    const int rc = srv_keys_parse(text, strlen(text), &k, err, sizeof err);
    if (rc != -1)
        fail_msg("accepted: %s", text);
    if (!strstr(err, line_tag))
        fail_msg("message '%s' does not name '%s'", err, line_tag);
    assert_null(strstr(err, "SECRET")); /* the key is never quoted */
    assert_int_equal(k.n, 0);
}

static void test_bad_keys_files(void **state)
{
    (void)state;
    expect_bad("SECRET alice 1 2\n", "line 1");
    expect_bad("ok1 a 1 2 3\nSECRET alice 1 2 3 4\n", "line 2");
    expect_bad("SECRET alice x 2 3\n", "line 1");
    expect_bad("SECRET alice 1 -2 3\n", "line 1");
    expect_bad("SECRET alice 1 2 99999999999\n", "line 1");
    expect_bad("SECRET al/ice 1 2 3\n", "line 1");
    expect_bad("SECRET a 1 2 3\nSECRET b 1 2 3\n", "duplicate key");
    expect_bad("SECRET1 a 1 2 3\nSECRET2 a 1 2 3\n", "duplicate tenant");
    expect_bad("# nothing\n\n", "no keys");
    expect_bad("", "no keys");
    char longkey[400];
    memset(longkey, 'K', 300);
    strcpy(longkey + 300, " t 1 2 3\n");
    expect_bad(longkey, "line 1");
    expect_bad("SEC\x01RET t 1 2 3\n", "line 1");
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/quarry-test-keys-XXXXXX";
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, keys_text, strlen(keys_text)), (ssize_t)strlen(keys_text));
    close(fd);
    struct srv_keys k;
    char err[256] = "";
    assert_int_equal(srv_keys_load(path, &k, err, sizeof err), 0);
    assert_int_equal(k.n, 3);
    srv_keys_free(&k);
    unlink(path);
    assert_int_equal(srv_keys_load(path, &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
}

static void test_bearer_check(void **state)
{
    (void)state;
    struct srv_keys k;
    char err[256];
    assert_int_equal(srv_keys_parse(keys_text, strlen(keys_text), &k, err, sizeof err), 0);
    size_t t = 99;
    assert_int_equal(srv_auth_check(&k, "Bearer sk-alice-0123456789", &t), SRV_AUTH_OK);
    assert_int_equal(t, 0);
    assert_int_equal(srv_auth_check(&k, "Bearer sk-bob-9876543210", &t), SRV_AUTH_OK);
    assert_int_equal(t, 1);
    assert_int_equal(srv_auth_check(&k, "bearer  k3 ", &t), SRV_AUTH_OK); /* scheme case, spaces */
    assert_int_equal(t, 2);
    t = 99;
    /* no header, no scheme, other schemes, empty keys */
    assert_int_equal(srv_auth_check(&k, NULL, &t), SRV_AUTH_MISSING);
    assert_int_equal(srv_auth_check(&k, "sk-alice-0123456789", &t), SRV_AUTH_MALFORMED);
    assert_int_equal(srv_auth_check(&k, "k3", &t), SRV_AUTH_MALFORMED);
    assert_int_equal(srv_auth_check(&k, "Basic sk-alice-0123456789", &t), SRV_AUTH_MALFORMED);
    assert_int_equal(srv_auth_check(&k, "Bearersk-alice-0123456789", &t), SRV_AUTH_MALFORMED);
    assert_int_equal(srv_auth_check(&k, "Bearer", &t), SRV_AUTH_MALFORMED);
    assert_int_equal(srv_auth_check(&k, "Bearer ", &t), SRV_AUTH_MALFORMED);
    assert_int_equal(srv_auth_check(&k, "", &t), SRV_AUTH_MALFORMED);
    /* wrong keys: prefixes, extensions, one byte off */
    assert_int_equal(srv_auth_check(&k, "Bearer sk-alice-012345678", &t), SRV_AUTH_INVALID);
    assert_int_equal(srv_auth_check(&k, "Bearer sk-alice-01234567890", &t), SRV_AUTH_INVALID);
    assert_int_equal(srv_auth_check(&k, "Bearer sk-alice-0123456788", &t), SRV_AUTH_INVALID);
    assert_int_equal(srv_auth_check(&k, "Bearer SK-ALICE-0123456789", &t), SRV_AUTH_INVALID);
    assert_int_equal(srv_auth_check(&k, "Bearer k", &t), SRV_AUTH_INVALID);
    assert_int_equal(t, 99); /* untouched on failure */
    srv_keys_free(&k);
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(srv_ct_equal("abc", 3, "abc", 3));
    assert_false(srv_ct_equal("abd", 3, "abc", 3));
    assert_false(srv_ct_equal("ab", 2, "abc", 3));
    assert_false(srv_ct_equal("abcd", 4, "abc", 3));
    assert_false(srv_ct_equal("", 0, "abc", 3));
    assert_true(srv_ct_equal("", 0, "", 0));
    /* a shorter candidate padded with zero bytes must not match */
    assert_false(srv_ct_equal("ab\0", 3, "ab", 2));
    /* every single-byte difference at every position is seen */
    char a[32], b[32];
    for (int i = 0; i < 32; i++)
        a[i] = b[i] = (char)('A' + i);
    for (int i = 0; i < 32; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] = (char)(a[i] ^ (1 << bit));
            assert_false(srv_ct_equal(a, 32, b, 32));
            b[i] = a[i];
        }
    }
    assert_true(srv_ct_equal(a, 32, b, 32));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_keys),
        cmocka_unit_test(test_bad_keys_files),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_bearer_check),
        cmocka_unit_test(test_ct_equal),
    };
    return TU_RUN_GROUP(tests);
}
