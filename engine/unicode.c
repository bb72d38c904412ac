/*
 * unicode.c - UTF-8 decoding/encoding with llama.cpp's rules, codepoint
 * property lookup in the generated run table (unicode_data.c), and GPT-2's
 * byte <-> codepoint mapping. See unicode.h.
 */
#include "engine/unicode.h"

uint8_t quarry_unicode_flags(uint32_t cp)
{
    if (cp >= QUARRY_UNICODE_MAX)
        return 0;
    /* last run whose start is <= cp (run 0 starts at 0) */
    size_t lo = 0, hi = quarry_unicode_n_runs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (quarry_unicode_run_start[mid] <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return quarry_unicode_run_flags[lo];
}

size_t quarry_utf8_len(uint8_t lead)
{
    static const uint8_t by_high_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return by_high_nibble[lead >> 4];
}

static int is_cont(uint8_t b)
{
    return (b & 0xC0) == 0x80;
}

uint32_t quarry_utf8_decode(const char *str, size_t n, size_t *adv)
{
    const uint8_t *s = (const uint8_t *)str;
    uint32_t cp;
    size_t len;
    if (!(s[0] & 0x80)) {
        *adv = 1;
        return s[0];
    }
    if (!(s[0] & 0x40)) {
        goto invalid; /* a stray continuation byte */
    } else if (!(s[0] & 0x20)) {
        if (n < 2 || !is_cont(s[1]))
            goto invalid;
        cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        len = 2;
    } else if (!(s[0] & 0x10)) {
        if (n < 3 || !is_cont(s[1]) || !is_cont(s[2]))
            goto invalid;
        cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        len = 3;
    } else if (!(s[0] & 0x08)) {
        if (n < 4 || !is_cont(s[1]) || !is_cont(s[2]) || !is_cont(s[3]))
            goto invalid;
        cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
             ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        len = 4;
        if (cp >= QUARRY_UNICODE_MAX)
            goto invalid; /* llama.cpp would throw when re-encoding it */
    } else {
        goto invalid;
    }
    *adv = len;
    return cp;
invalid:
    *adv = 1;
    return QUARRY_UNICODE_REPLACEMENT;
}

size_t quarry_utf8_encode(uint32_t cp, char out[4])
{
    if (cp <= 0x7F) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp <= 0x7FF) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp <= 0xFFFF) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp < QUARRY_UNICODE_MAX) {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

size_t quarry_utf8_incomplete_tail(const char *str, size_t n)
{
    const uint8_t *s = (const uint8_t *)str;
    /* find the last non-continuation byte among the last 4 */
    size_t back = 0;
    while (back < n && back < 4 && is_cont(s[n - 1 - back]))
        back++;
    if (back == n || back == 4)
        return 0; /* only continuation bytes: nothing a later byte could complete */
    uint8_t lead = s[n - 1 - back];
    size_t need;
    if ((lead & 0xE0) == 0xC0)
        need = 2;
    else if ((lead & 0xF0) == 0xE0)
        need = 3;
    else if ((lead & 0xF8) == 0xF0)
        need = 4;
    else
        return 0; /* ASCII or an invalid lead byte */
    size_t have = back + 1;
    return have < need ? have : 0;
}

/* Bytes that stand for themselves in GPT-2's mapping. */
static int gpt2_self(uint32_t b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* The other 68 bytes, in order: 0x00-0x20 (33), 0x7F-0xA0 (34), 0xAD (1),
 * become U+0100 + their index in that list. */
uint32_t quarry_gpt2_byte_to_cp(uint8_t b)
{
    if (gpt2_self(b))
        return b;
    if (b <= 0x20)
        return 0x100u + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x100u + 33 + (b - 0x7Fu);
    return 0x100u + 67; /* 0xAD */
}

int quarry_gpt2_cp_to_byte(uint32_t cp)
{
    if (cp < 0x100)
        return gpt2_self(cp) ? (int)cp : -1;
    if (cp < 0x100 + 33)
        return (int)(cp - 0x100);
    if (cp < 0x100 + 67)
        return (int)(0x7F + (cp - 0x100 - 33));
    if (cp == 0x100 + 67)
        return 0xAD;
    return -1;
}
