/* The hand-written JSON decoder (src/codec_json.c) against the jansson-based
 * one it replaced (tests/json_ref.h): a table of valid and invalid packets,
 * nesting and counts around the limits, random mutations of the table, and
 * the fuzz corpus, each under several limits, must give the same result,
 * error code and values.  A few expectations are also spelled out, so that
 * the language stays documented here, not only "the same as jansson". */
#include "helpers.h"

#define FUZZ_ENTRY fuzz_json_diff
#include "fuzz_json_diff.c"
#undef FUZZ_ENTRY

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ----------------------------------------------------------- */

/* The input, printable, for failure messages. */
static const char *show(const char *s, size_t n)
{
    static char out[400];
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < sizeof out; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", c);
    }
    if (o + 8 >= sizeof out)
        o += (size_t)snprintf(out + o, sizeof out - o, "...");
    out[o] = 0;
    return out;
}

static aemp_limits_t limits(size_t depth, size_t items)
{
    aemp_limits_t lim = {0, depth, items};
    aemp__limits_resolve(&lim);
    return lim;
}

/* Limit sets every table entry runs under. */
static aemp_limits_t lims[5];
static size_t nlims;

static int setup(void **state)
{
    (void)state;
    nlims = 0;
    lims[nlims++] = limits(0, 0);     /* defaults: 128 deep, 1M items */
    lims[nlims++] = limits(3, 3);     /* small: the table's packets reach */
    lims[nlims++] = limits(1, 1);     /* the root only, one element */
    lims[nlims++] = limits(32, 64);   /* the reader fuzzers' */
    lims[nlims++] = limits(2048, 20); /* as deep as jansson goes */
    return 0;
}

static size_t checked;

static void same(const char *s, size_t n, const aemp_limits_t *lim)
{
    char what[700];
    if (json_diff(s, n, lim, what, sizeof what) < 0)
        fail_msg("%s (max_depth %zu, max_items %zu): %s", show(s, n),
                 lim->max_depth, lim->max_items, what);
    checked++;
}

static void same_all(const char *s, size_t n)
{
    for (size_t i = 0; i < nlims; i++)
        same(s, n, &lims[i]);
}

typedef struct tcase {
    const char *s;
    size_t n;
} tcase_t;

/* sizeof, not strlen: some hold NUL bytes */
// clang-format off
#define T(lit) {lit, sizeof(lit) - 1}

static const tcase_t table[] = {
    /* whitespace, structure, top level */
    T(""), T(" "), T("\n"), T("["), T("]"), T("[]"), T("[ ]"), T(" [] "),
    T("\t\n\r[\t\n\r1\t\n\r,\t\n\r2\t\n\r]\t\n\r"), T("\f[]"), T("[]\f"),
    T("[\v1]"), T("\xc2\xa0[]"), T("[1"), T("[1,"), T("[1,]"), T("[,1]"),
    T("[,]"), T("[1,,2]"), T("[1 2]"), T("[1]]"), T("[1][2]"), T("[1] [2]"),
    T("[1]x"), T("[1] x"), T("[1]\n"), T("[1]\0"), T("\0[1]"), T("[1,\0]"),
    T("{}"), T("{\"a\":1}"), T("{\"a\":}"), T("{\"a\":1} x"), T("1"),
    T("\"a\""), T("null"), T("true"), T("-1"), T("[}"), T("{]"), T("[{]}"),
    T("[{}]"), T("[[]]"), T("[[[]]]"), T("[[1,2],[3,[4]]]"), T("[1:2]"),
    T("[\"a\":1]"), T("[[],{},[[]],{\"\":{}}]"), T("\xef\xbb\xbf[1]"),
    T("[/*c*/1]"), T("[1]//"), T("['a']"), T("[#]"),
    /* a raw NUL outside strings is malformed (jansson loses one read just
     * past a number or literal; the reference gives it \x01 instead) */
    T("[1\0]"), T("[1\0,2]"), T("[true\0,1]"), T("[1\0\0]"), T("[1.5\0]"),
    T("[null\0 ]"), T("[\"a\"\0]"), T("[1 \0]"), T("[-\0]"), T("[1.\0]"),
    T("[false\0"), T("[{\"a\":1\0}]"), T("[{\"a\"\0:1}]"), T("[[]\0]"),
    /* literals */
    T("[null]"), T("[true,false]"), T("[tru]"), T("[truee]"), T("[True]"),
    T("[nul]"), T("[nulll]"), T("[falsey]"), T("[true false]"), T("[null1]"),
    T("[truex]"), T("[t]"), T("[n\xff]"), T("[true\xff]"),
    /* integers */
    T("[0]"), T("[-0]"), T("[1]"), T("[-1]"), T("[12345]"), T("[100]"),
    T("[9223372036854775807]"), T("[-9223372036854775808]"),
    T("[9223372036854775808]"), T("[-9223372036854775809]"),
    T("[18446744073709551615]"), T("[18446744073709551616]"),
    T("[99999999999999999999999]"), T("[-99999999999999999999999]"),
    T("[1234567890123456789012345678901234567890]"),
    T("[01]"), T("[-01]"), T("[00]"), T("[-00]"), T("[+1]"), T("[-]"),
    T("[--1]"), T("[- 1]"), T("[0x10]"), T("[1_000]"), T("[0-1]"),
    /* doubles */
    T("[0.0]"), T("[-0.0]"), T("[0e0]"), T("[-0e-0]"), T("[0.1]"), T("[1.0]"),
    T("[1.5e3]"), T("[1E2]"), T("[1e+2]"), T("[1e-2]"), T("[1e308]"),
    T("[1e309]"), T("[-1e309]"), T("[1.7976931348623157e308]"),
    T("[1.7976931348623158e308]"), T("[1.7976931348623159e308]"),
    T("[2e308]"), T("[1e-400]"), T("[-1e-400]"), T("[4.9e-324]"),
    T("[2.4703282292062327e-324]"), T("[2.4703282292062328e-324]"),
    T("[0.000000000000000000000000000001e330]"),
    T("[123456789012345678901234567890e290]"),
    T("[123456789012345678901234567890e278]"), T("[1e00000000000000000309]"),
    T("[1e-99999999999999999999]"), T("[1e99999999999999999999]"),
    T("[3.141592653589793238462643383279502884197169399375105820974944]"),
    T("[.5]"), T("[1.]"), T("[1.e5]"), T("[1e]"), T("[1e+]"), T("[1e-]"),
    T("[1.5.3]"), T("[1e5e5]"), T("[1E+-5]"), T("[Infinity]"), T("[NaN]"),
    T("[-Infinity]"), T("[1.\xff]"), T("[1e\xff]"), T("[-\xff]"),
    T("[0\xff]"), T("[1\xff]"), T("[1.5\xc3\xa9]"),
    /* strings and escapes */
    T("[\"\"]"), T("[\"abc\"]"), T("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]"),
    T("[\"\\u0041\"]"), T("[\"\\u00e9\"]"), T("[\"\\u00E9\"]"),
    T("[\"\\u20AC\"]"), T("[\"\\u07ff\\u0800\\u007f\\u0080\"]"),
    T("[\"\\uFFFF\"]"), T("[\"\\uD7FF\\uE000\"]"), T("[\"\\ud83d\\ude00\"]"),
    T("[\"\\uD83D\\uDE00\"]"), T("[\"\\udbff\\udfff\"]"),
    T("[\"\\ud800\\udc00\"]"), T("[\"\\ud83d\"]"), T("[\"\\ud83dx\"]"),
    T("[\"\\ud83d\\n\"]"), T("[\"\\ud83d\\u0041\"]"), T("[\"\\ude00\"]"),
    T("[\"\\ude00\\ud83d\"]"), T("[\"\\ud83d\\ud83d\"]"),
    T("[\"\\ud83d\\u\"]"), T("[\"\\ud83d\\uZZZZ\"]"), T("[\"\\ud83d\\"),
    T("[\"\\ud83d\\ude0\"]"), T("[\"\\u0000\"]"), T("[\"a\\u0000b\"]"),
    T("[\"\\u00\"]"), T("[\"\\u00g0\"]"), T("[\"\\u\"]"), T("[\"\\x\"]"),
    T("[\"\\\"]"), T("[\"\\"), T("[\"abc"), T("[\"\\u12"), T("[\""),
    T("[\"a\nb\"]"), T("[\"a\tb\"]"), T("[\"\x01\"]"), T("[\"\x1f\"]"),
    T("[\"\x7f\"]"), T("[\"a\0b\"]"), T("[\"\\U0041\"]"), T("[\"\\ \"]"),
    T("[\"\\'\"]"), T("[\"\\0\"]"), T("[\"\\\xc3\xa9\"]"), T("[\"\\\xff\"]"),
    T("[\"a\",\"\\u00e9\\u20ac\\ud83d\\ude00\"]"),
    /* UTF-8 */
    T("[\"\xc3\xa9\"]"), T("[\"\xe2\x82\xac\"]"), T("[\"\xf0\x9f\x98\x80\"]"),
    T("[\"\xf4\x8f\xbf\xbf\"]"), T("[\"\xf4\x90\x80\x80\"]"),
    T("[\"\xf5\x80\x80\x80\"]"), T("[\"\xc0\xaf\"]"), T("[\"\xc1\xbf\"]"),
    T("[\"\xc2\x80\"]"), T("[\"\xe0\x80\xaf\"]"), T("[\"\xe0\xa0\x80\"]"),
    T("[\"\xf0\x80\x80\xaf\"]"), T("[\"\xf0\x90\x80\x80\"]"),
    T("[\"\xed\xa0\x80\"]"), T("[\"\xed\xbf\xbf\"]"), T("[\"\xed\x9f\xbf\"]"),
    T("[\"\xee\x80\x80\"]"), T("[\"\xc3\"]"), T("[\"\xc3"), T("[\"\xe2\x82\"]"),
    T("[\"\xe2\x82"), T("[\"\xf0\x9f\x98\"]"), T("[\"\x80\"]"),
    T("[\"\xbf\"]"), T("[\"\xfe\"]"), T("[\"\xff\"]"), T("[\"\xc3\x28\"]"),
    T("[\"\xf8\x88\x80\x80\x80\"]"), T("[\"\xc3\xa9\xc3\"]"),
    T("[\xc3\xa9]"), T("[1]\xff"), T("[1,\xff]"), T("[\xff]"), T("[\x80]"),
    T("[1]\xc3\xa9"), T("[1] \xc3"), T("\xff"), T("\xc3\xa9"),
    /* objects */
    T("[{\"a\":1}]"), T("[{\"a\":1,\"b\":2}]"), T("[{\"a\":1,\"a\":2}]"),
    T("[{\"a\":1,\"b\":2,\"a\":3}]"), T("[{\"a\":[1,2],\"a\":{}}]"),
    T("[{\"b\":1,\"a\":2,\"b\":3,\"a\":4,\"c\":5}]"), T("[{\"\":1}]"),
    T("[{\"\":1,\"\":2}]"), T("[{\"a\\u0000\":1}]"), T("[{\"\\u0000\":1}]"),
    T("[{1:2}]"), T("[{\"a\"}]"), T("[{\"a\":}]"), T("[{\"a\" 1}]"),
    T("[{\"a\":1,}]"), T("[{,}]"), T("[{\"a\":1 \"b\":2}]"),
    T("[{\"a\":1}{}]"), T("[{null:1}]"), T("[{\"a\":1:2}]"),
    T("[{\"\\u00e9\":1,\"\xc3\xa9\":2}]"), T("[{\"a\":1},{\"a\":2,\"a\":3}]"),
    T("[{\"a\":{\"a\":{\"a\":1,\"a\":2},\"a\":3}}]"), T("[{\"a\""),
    T("[{\"a\":"), T("[{\"a\":1"), T("[{\"a\":1,"), T("[{"),
    T("[{\"\xff\":1}]"), T("[{\"a\":\"\xff\"}]"), T("[{\"a\":1e999}]"),
    /* the benchmark's packet, and the limits of the small sets */
    T("[\"port\",\"tag\",12345,\"sixteen-byte-str\"]"), T("[1,2,3]"),
    T("[1,2,3,4]"), T("[[[1]]]"), T("[[[[1]]]]"), T("[[[[]]]]"),
    T("[{\"a\":1,\"b\":2,\"c\":3,\"d\":4}]"),
    T("[{\"a\":1,\"b\":2,\"c\":3,\"a\":4}]"), T("[{\"a\":[[[[1]]]],\"a\":1}]"),
    T("[{\"a\":1,\"a\":[[[[1]]]]}]"), T("[{\"a\":[1,2,3,4],\"a\":1}]"),
    T("[[1,2,3,4],x]"), T("[[[[[1]]]]] x"), T("[[[[1]]]],[1,2,3,4]]"),
    T("[[1,2,3,4],[[[[1]]]]]"), T("[[1,2,3,4],[[[[1]]]],[1,2,3,4,5]]"),
    T("[{\"a\":[1,2,3,4]},[[[[1]]]]]"), T("[1,2,3,4,\"\\x\"]"),
    T("[{\"x\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"a\":5}},[[[[1]]]]]"),
};
// clang-format on

/* ---- the table --------------------------------------------------------- */

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        same_all(table[i].s, table[i].n);
    /* numbers longer than any inline buffer */
    char buf[1200];
    const char *tails[] = {"]", ".0]", "e-400]", ".5e-300]"};
    for (size_t t = 0; t < 4; t++) {
        for (size_t digits = 300; digits <= 1000; digits += 350) {
            size_t n = 0;
            buf[n++] = '[';
            buf[n++] = '1';
            memset(buf + n, '0', digits);
            n += digits;
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s", tails[t]);
            same_all(buf, n);
            memcpy(buf, "[0.", 3); /* 0.000...1 */
            buf[1 + digits] = '1';
            same_all(buf, n);
        }
    }
}

/* ---- spelled-out expectations ------------------------------------------ */

static int dec(const char *s, aemp_msg_t **m, const aemp_limits_t *lim)
{
    *m = NULL;
    return aemp__json_decode(m, s, strlen(s), lim, NULL, 0);
}

static void expect_rc(const char *s, int rc)
{
    aemp_msg_t *m;
    assert_int_equal(dec(s, &m, &lims[0]), rc);
    aemp_msg_unref(m);
}

static void expect_int(const char *s, int64_t v)
{
    aemp_msg_t *m;
    assert_int_equal(dec(s, &m, &lims[0]), 0);
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 0)), AEMP_T_INT);
    assert_true(aemp_msg_at(m, 0)->u.i == v);
    aemp_msg_unref(m);
}

static void expect_double(const char *s, double v)
{
    aemp_msg_t *m;
    assert_int_equal(dec(s, &m, &lims[0]), 0);
    assert_int_equal(aemp_val_type(aemp_msg_at(m, 0)), AEMP_T_DOUBLE);
    assert_memory_equal(&aemp_msg_at(m, 0)->u.d, &v, sizeof v);
    aemp_msg_unref(m);
}

static void expect_str(const char *s, const char *v, size_t n)
{
    aemp_msg_t *m;
    assert_int_equal(dec(s, &m, &lims[0]), 0);
    const aemp_val_t *x = aemp_msg_at(m, 0);
    assert_int_equal(aemp_val_type(x), AEMP_T_STR);
    assert_int_equal(x->len, n);
    assert_memory_equal(x->u.s, v, n);
    aemp_msg_unref(m);
}

static void test_expected(void **state)
{
    (void)state;
    expect_int("[-0]", 0);
    expect_int("[9223372036854775807]", INT64_MAX);
    expect_int("[-9223372036854775808]", INT64_MIN);
    expect_rc("[9223372036854775808]", AEMP_EPROTO); /* not a double */
    expect_rc("[-9223372036854775809]", AEMP_EPROTO);
    expect_double("[-0.0]", -0.0);
    expect_double("[1.0]", 1.0);
    expect_double("[1e2]", 100.0);
    expect_double("[1e308]", 1e308);
    expect_double("[1e-400]", 0.0);
    expect_rc("[1e309]", AEMP_EPROTO);
    const char *bad[] = {"[01]",
                         "[+1]",
                         "[.5]",
                         "[1.]",
                         "[1,]",
                         "[]x",
                         "",
                         "1",
                         "{}",
                         "[\"\\ud83d\"]",
                         "[\"\\ude00\"]",
                         "[\"\xed\xa0\x80\"]",
                         "[\"\xc0\xaf\"]",
                         "[\"\xf4\x90\x80\x80\"]",
                         "[\"\xc3\"]",
                         "[{\"\\u0000\":1}]",
                         "[NaN]",
                         "[\"\x01\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_rc(bad[i], AEMP_EPROTO);
    expect_str("[\"\\ud83d\\ude00\"]", "\xf0\x9f\x98\x80", 4);
    expect_str("[\"a\\u0000b\"]", "a\0b", 3);
    expect_str("[\"\\u00e9\\/\"]", "\xc3\xa9/", 3);
    /* duplicates: the first place, the last value */
    aemp_msg_t *m;
    assert_int_equal(dec("[{\"b\":1,\"a\":2,\"b\":3}]", &m, &lims[0]), 0);
    const aemp_val_t *map = aemp_msg_at(m, 0), *v;
    const char *k;
    assert_int_equal(aemp_val_len(map), 2);
    assert_int_equal(aemp_map_at(map, 0, &k, &v), 0);
    assert_string_equal(k, "b");
    assert_true(v->u.i == 3);
    aemp_msg_unref(m);
    /* limits apply to what is left after merging */
    assert_int_equal(dec("[{\"a\":[[[[1]]]],\"a\":1}]", &m, &lims[1]), 0);
    aemp_msg_unref(m);
    assert_int_equal(dec("[{\"a\":1,\"b\":2,\"c\":3,\"a\":4}]", &m, &lims[1]),
                     0);
    aemp_msg_unref(m);
    /* a syntax error anywhere wins over a limit */
    assert_int_equal(dec("[[1,2,3,4],x]", &m, &lims[1]), AEMP_EPROTO);
    assert_int_equal(dec("[[1,2,3,4]]", &m, &lims[1]), AEMP_ELIMIT);
}

/* ---- nesting ----------------------------------------------------------- */

/* n containers (object members "k": or arrays), inner, the closers. */
static size_t nest(char *buf, size_t n, bool objects, const char *inner,
                   bool close, const char *after)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        bool obj = objects && i > 0 && (i % 2);
        memcpy(buf + o, obj ? "{\"k\":" : "[", obj ? 5 : 1);
        o += obj ? 5 : 1;
    }
    o += (size_t)sprintf(buf + o, "%s", inner);
    for (size_t i = n; close && i-- > 0;)
        buf[o++] = objects && i > 0 && (i % 2) ? '}' : ']';
    o += (size_t)sprintf(buf + o, "%s", after);
    return o;
}

static void test_depth(void **state)
{
    (void)state;
    static const char *inner[] = {"",
                                  "1",
                                  "x",
                                  "-",
                                  "01",
                                  "1\xff",
                                  "-\xff",
                                  "tru\xff",
                                  "true\xff",
                                  "\"s\"",
                                  "\"\\x\"",
                                  "\xff",
                                  "\xc3\xa9",
                                  ",",
                                  "]",
                                  "}",
                                  ":",
                                  "[",
                                  "{",
                                  "{}",
                                  "[]",
                                  "1e999",
                                  "99999999999999999999",
                                  "\"\xff\"",
                                  "null",
                                  "1.",
                                  "1.\xff",
                                  "1e",
                                  "1e\xff",
                                  "\"\\ud800\"",
                                  "{\"a\":1,\"a\":2}",
                                  "[1,2,3,4]",
                                  "0\xc3\xa9",
                                  "1,",
                                  "1,]",
                                  "\"a\":1"};
    static const char *after[] = {"", "x", " ", ",", "]", "\xff"};
    static const size_t depths[] = {1,    2,    3,    4,    5,    31,
                                    32,   33,   127,  128,  129,  130,
                                    2046, 2047, 2048, 2049, 2050, 2100};
    char *buf = malloc(8 * 2200);
    assert_non_null(buf);
    for (size_t d = 0; d < sizeof depths / sizeof *depths; d++)
        for (size_t i = 0; i < sizeof inner / sizeof *inner; i++)
            for (int shape = 0; shape < 4; shape++)
                for (size_t a = 0; a < sizeof after / sizeof *after; a++) {
                    size_t n = nest(buf, depths[d], shape & 1, inner[i],
                                    shape & 2, after[a]);
                    same_all(buf, n);
                }
    free(buf);
}

/* ---- counts and duplicate keys ----------------------------------------- */

/* An object of n pairs whose keys repeat every `distinct` (0: never). */
static size_t object(char *buf, size_t n, size_t distinct, const char *val)
{
    size_t o = (size_t)sprintf(buf, "[{");
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(buf + o, "%s\"k%zu\":%s", i ? "," : "",
                             distinct ? i % distinct : i, val);
    return o + (size_t)sprintf(buf + o, "}]");
}

static void test_items(void **state)
{
    (void)state;
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    const size_t counts[] = {0,  1,  2,  3,  4,  7,  8,  9,
                             16, 17, 19, 20, 21, 64, 65, 200};
    for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
        size_t n = counts[c], o = 0;
        buf[o++] = '[';
        for (size_t i = 0; i < n; i++)
            o += (size_t)sprintf(buf + o, "%s%zu", i ? "," : "", i);
        buf[o++] = ']';
        same_all(buf, o);
        for (size_t distinct = 0; distinct <= 21; distinct += 3) {
            same_all(buf, object(buf, n, distinct, "1"));
            same_all(buf, object(buf, n, distinct, "[[[[1]]]]"));
            same_all(buf, object(buf, n, distinct, "{\"a\":1,\"a\":[2]}"));
        }
    }
    /* the root's own count, with the prefix string as the reader sees it */
    for (size_t n = 0; n < 25; n++) {
        size_t o = (size_t)sprintf(buf, "[\"p\"");
        for (size_t i = 0; i < n; i++)
            o += (size_t)sprintf(buf + o, ",[%zu]", i);
        buf[o++] = ']';
        same_all(buf, o);
    }
    free(buf);
}

/* ---- mutations --------------------------------------------------------- */

static uint64_t rng = 88172645463325252u;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void mutate(char *buf, size_t *n, size_t cap)
{
    static const char alphabet[] = "[]{}:,\"\\/u0123456789abcdefeE+-.tfnl "
                                   "\t\n\r\x80\xc3\xa9\xed\xf4\xff\xbf";
    size_t len = *n, at = len ? next_rand() % (len + 1) : 0;
    char c = alphabet[next_rand() % (sizeof alphabet)]; /* NUL included */
    switch (next_rand() % 4) {
    case 0:
        if (at < len)
            buf[at] = c;
        break;
    case 1:
        if (len < cap) {
            memmove(buf + at + 1, buf + at, len - at);
            buf[at] = c;
            len++;
        }
        break;
    case 2:
        if (at < len) {
            memmove(buf + at, buf + at + 1, len - at - 1);
            len--;
        }
        break;
    default: { /* repeat a slice */
        size_t from = len ? next_rand() % len : 0;
        size_t k = len ? 1 + next_rand() % 8 : 0;
        if (from + k > len)
            k = len - from;
        if (len + k <= cap) {
            memmove(buf + at + k, buf + at, len - at);
            memmove(buf + at, buf + from + (from >= at ? k : 0), k);
            len += k;
        }
    }
    }
    *n = len;
}

static void test_mutations(void **state)
{
    (void)state;
    char buf[512];
    const size_t ntable = sizeof table / sizeof *table;
    for (size_t round = 0; round < 60000; round++) {
        const tcase_t *t = &table[next_rand() % ntable];
        size_t n = t->n;
        memcpy(buf, t->s, n);
        for (uint64_t k = 1 + next_rand() % 4; k-- > 0;)
            mutate(buf, &n, sizeof buf);
        same(buf, n, &lims[next_rand() % nlims]);
    }
}

/* ---- the fuzz corpus --------------------------------------------------- */

static void test_corpus(void **state)
{
    (void)state;
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    assert_non_null(slash);
    snprintf(slash, sizeof dir - (size_t)(slash - dir), "/corpus/json");
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("%s: cannot open the corpus", dir);
    size_t files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static uint8_t data[1 << 16];
        size_t n = fread(data, 1, sizeof data, f);
        fclose(f);
        fuzz_json_diff(data, n); /* as the fuzzer reads it */
        same_all((const char *)data + (n >= 2 ? 2 : 0), n >= 2 ? n - 2 : 0);
        same_all((const char *)data, n);
        files++;
    }
    closedir(d);
    assert_true(files > 10);
}

/* ---- the locale -------------------------------------------------------- */

/* strtod follows LC_NUMERIC; the decoder must read '.' whatever it is. */
static void test_locale(void **state)
{
    (void)state;
    char dir[64] = "";
    kt_comma_locale(dir, sizeof dir);
    expect_double("[1.5]", 1.5);
    expect_double("[-2.25e2]", -225.0);
    expect_double("[1e1]", 10.0);
    same_all("[1.5,0.25,1e3]", 14);
    kt_comma_locale_done(dir);
}

/* ---- allocation failures ----------------------------------------------- */

static void oom_run(void)
{
    static const char *in[] = {
        "[\"p\",\"tag\",12345,\"sixteen-byte-str\"]",
        "[1.5,[[],[[]],[[[]]],[[[[]]]],[],[],[],[],[],[],[],[],[],[],[],[],[],"
        "[],[],[],[],[],[],[],[],[],[],[],[],[],[],[],[],[],[],[],[]],2.5]",
        "[{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,"
        "\"i\":9,\"a\":10}]",
        "[1."
        "00000000000000000000000000000000000000000000000000000000000000001]"};
    for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
        aemp_msg_t *m = NULL;
        int rc = aemp__json_decode(&m, in[i], strlen(in[i]), &lims[0], NULL, 0);
        assert_true(rc == 0 || rc == AEMP_ENOMEM);
        aemp_msg_unref(m);
    }
}

static void test_alloc_failures(void **state)
{
    (void)state;
    assert_true(helper_alloc_sweep(oom_run) > 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),     cmocka_unit_test(test_expected),
        cmocka_unit_test(test_depth),     cmocka_unit_test(test_items),
        cmocka_unit_test(test_mutations), cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_locale),    cmocka_unit_test(test_alloc_failures),
    };
    int rc = cmocka_run_group_tests(tests, setup, NULL);
    printf("%zu comparisons\n", checked);
    return rc;
}
