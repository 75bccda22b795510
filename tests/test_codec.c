/* The json and cbor framings: round trips, exact encodings, malformed
 * input, limits, the streaming reader, and packets recorded from Perl. */
#include "helpers.h"

#include "codec.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const aemp_framing_t both[] = {AEMP_JSON, AEMP_CBOR};

/* ---- helpers ----------------------------------------------------------- */

static aemp_msg_t *msg_of(aemp_val_t *arr)
{
    aemp_msg_t *m = NULL;
    assert_int_equal(aemp_msg_from_val(&m, &arr), 0);
    return m;
}

static aemp_msg_t *roundtrip(const aemp_msg_t *m, aemp_framing_t f)
{
    char *buf;
    size_t len;
    aemp_msg_t *d = NULL;
    assert_int_equal(aemp_msg_encode(m, f, &buf, &len), 0);
    assert_int_equal(buf[len], 0);
    assert_int_equal(aemp_msg_decode(&d, f, buf, len), 0);
    aemp_free(buf);
    return d;
}

/* m survives both framings unchanged. */
static void assert_roundtrips(aemp_msg_t *m)
{
    for (size_t k = 0; k < 2; k++) {
        aemp_msg_t *d = roundtrip(m, both[k]);
        if (!aemp_val_equal(aemp_msg_val(d), aemp_msg_val(m)))
            fail_msg("framing %d changed the message", (int)both[k]);
        aemp_msg_unref(d);
    }
    aemp_msg_unref(m);
}

static void assert_json(const aemp_msg_t *m, const char *want)
{
    char *buf;
    size_t len;
    assert_int_equal(aemp_msg_encode(m, AEMP_JSON, &buf, &len), 0);
    assert_string_equal(buf, want);
    assert_int_equal(len, strlen(want));
    aemp_free(buf);
}

static void assert_cbor(const aemp_msg_t *m, const char *want, size_t wlen)
{
    char *buf;
    size_t len;
    assert_int_equal(aemp_msg_encode(m, AEMP_CBOR, &buf, &len), 0);
    assert_int_equal(len, wlen);
    assert_memory_equal(buf, want, wlen);
    aemp_free(buf);
}

static int decode_rc(aemp_framing_t f, const char *buf, size_t len)
{
    aemp_msg_t *m = NULL;
    int rc = aemp_msg_decode(&m, f, buf, len);
    assert_true((rc == 0) == (m != NULL));
    aemp_msg_unref(m);
    return rc;
}

#define CBOR_RC(lit) decode_rc(AEMP_CBOR, (lit), sizeof(lit) - 1)
#define JSON_RC(lit) decode_rc(AEMP_JSON, (lit), sizeof(lit) - 1)

static aemp_msg_t *decode_ok(aemp_framing_t f, const char *buf, size_t len)
{
    aemp_msg_t *m = NULL;
    assert_int_equal(aemp_msg_decode(&m, f, buf, len), 0);
    return m;
}

static aemp_msg_t *decode_json(const char *text)
{
    return decode_ok(AEMP_JSON, text, strlen(text));
}

/* `depth` arrays nested in each other, encoded in framing f. */
static char *nested(aemp_framing_t f, size_t depth, size_t *len)
{
    char *s = malloc(2 * depth + 1);
    for (size_t i = 0; i < depth; i++) {
        s[i] = f == AEMP_JSON ? '[' : (char)0x81;
        s[2 * depth - 1 - i] = f == AEMP_JSON ? ']' : (char)0x80;
    }
    if (f == AEMP_CBOR) { /* innermost is the empty array 0x80 */
        *len = depth;
        s[depth - 1] = (char)0x80;
    } else {
        *len = 2 * depth;
    }
    return s;
}

/* ---- round trips ------------------------------------------------------- */

static const int64_t ints[] = {0,
                               1,
                               -1,
                               23,
                               24,
                               -24,
                               -25,
                               255,
                               256,
                               -256,
                               -257,
                               65535,
                               65536,
                               -65536,
                               -65537,
                               4294967295LL,
                               4294967296LL,
                               -4294967296LL,
                               -4294967297LL,
                               INT64_MAX,
                               INT64_MIN,
                               INT64_MIN + 1};

static void test_roundtrip_ints(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        assert_roundtrips(msg_of(aemp_arr(aemp_int(ints[i]))));
}

static void test_roundtrip_doubles(void **state)
{
    (void)state;
    const double ds[] = {0.0,
                         0.1,
                         -0.1,
                         1.0,
                         -1.0,
                         1e300,
                         -1e300,
                         5e-324,
                         DBL_MAX,
                         DBL_MIN,
                         1.0 / 3,
                         123456789.125,
                         1e21,
                         1e-7,
                         2.5e-308,
                         1795890694.47587,
                         0.3,
                         1e15,
                         9007199254740993.0};
    for (size_t i = 0; i < sizeof ds / sizeof *ds; i++)
        assert_roundtrips(msg_of(aemp_arr(aemp_double(ds[i]))));
    /* -0.0 compares equal to 0.0: check the sign bit itself */
    for (size_t k = 0; k < 2; k++) {
        aemp_msg_t *m = msg_of(aemp_arr(aemp_double(-0.0)));
        aemp_msg_t *d = roundtrip(m, both[k]);
        double v = 1;
        assert_int_equal(aemp_msg_unpack(d, "d", &v), 0);
        assert_true(v == 0 && signbit(v));
        assert_int_equal(aemp_val_type(aemp_msg_at(d, 0)), AEMP_T_DOUBLE);
        aemp_msg_unref(d);
        aemp_msg_unref(m);
    }
}

static void test_roundtrip_scalars_and_text(void **state)
{
    (void)state;
    /* multi-byte characters after and between runs of 8 ASCII bytes */
    assert_roundtrips(msg_of(aemp_arr(aemp_str("0123456789\xc3\xa9"
                                               "0123456789"),
                                      aemp_str("01234567\xf0\x9d\x84\x9e"))));
    assert_roundtrips(
        msg_of(aemp_arr(aemp_null(), aemp_bool(1), aemp_bool(0), aemp_str(""),
                        aemp_str("a"), aemp_strn("a\0b", 3),
                        aemp_str("h\xc3\xa9 \xe2\x82\xac "
                                 "\xf0\x9d\x84\x9e"),
                        aemp_str("\"\\/\b\f\n\r\t\x01\x1f\x7f"))));
    assert_roundtrips(msg_of(aemp_arr_new()));
    /* bytes survive cbor as bytes */
    aemp_msg_t *m = msg_of(
        aemp_arr(aemp_bytes("\0\x01\x7f\x80\xff", 5), aemp_bytes(NULL, 0)));
    aemp_msg_t *d = roundtrip(m, AEMP_CBOR);
    assert_true(aemp_val_equal(aemp_msg_val(d), aemp_msg_val(m)));
    aemp_msg_unref(d);
    aemp_msg_unref(m);
}

static void test_roundtrip_containers(void **state)
{
    (void)state;
    aemp_val_t *map = aemp_map_new();
    map = aemp_map_set(map, "z", aemp_int(1));
    map = aemp_map_set(map, "a", aemp_arr(aemp_map_new(), aemp_arr_new()));
    map = aemp_map_set(map, "", aemp_str("empty key"));
    map = aemp_map_set(
        map, "m", aemp_map_set(aemp_map_new(), "x", aemp_arr(aemp_null())));
    assert_roundtrips(msg_of(aemp_arr(
        aemp_arr_new(), aemp_map_new(), aemp_arr(aemp_arr(aemp_arr_new())), map,
        aemp_arr(aemp_int(1), aemp_str("two"), aemp_double(3.5)))));
}

static void test_roundtrip_big_strings(void **state)
{
    (void)state;
    size_t n = (size_t)1 << 20;
    char *s = malloc(n);
    for (size_t i = 0; i < n; i++) /* ASCII including controls and quotes */
        s[i] = (char)(i % 128);
    aemp_val_t *text = aemp_strn(s, n);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(i * 7 % 256);
    assert_roundtrips(msg_of(aemp_arr(aemp_strn(s, 0), text)));
    aemp_msg_t *m = msg_of(aemp_arr(aemp_bytes(s, n)));
    aemp_msg_t *d = roundtrip(m, AEMP_CBOR);
    assert_true(aemp_val_equal(aemp_msg_val(d), aemp_msg_val(m)));
    aemp_msg_unref(d);
    aemp_msg_unref(m);
    free(s);
}

/* Byte strings travel in JSON as strings of code points U+0000..U+00FF and
 * come back as text. */
static void test_json_bytes_as_latin1(void **state)
{
    (void)state;
    aemp_msg_t *m = msg_of(aemp_arr(aemp_bytes("\0A\x7f\x80\xff", 5)));
    assert_json(m, "[\"\\u0000A\x7f\xc2\x80\xc3\xbf\"]");
    aemp_msg_t *d = roundtrip(m, AEMP_JSON);
    const char *s;
    size_t len;
    assert_int_equal(aemp_val_str(aemp_msg_at(d, 0), &s, &len), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(s, "\0A\x7f\xc2\x80\xc3\xbf", 7);
    aemp_msg_unref(d);
    aemp_msg_unref(m);
}

/* ---- exact encodings --------------------------------------------------- */

static void test_json_text(void **state)
{
    (void)state;
    aemp_msg_t *m;
    assert_int_equal(aemp_msg_new(&m, "sis", "tag", 12345, "sixteen-byte-str"),
                     0);
    assert_json(m, "[\"tag\",12345,\"sixteen-byte-str\"]");
    aemp_msg_unref(m);
    m = msg_of(aemp_arr(aemp_double(0.1), aemp_double(1.0), aemp_double(-0.0),
                        aemp_double(1e300), aemp_double(0.5),
                        aemp_double(1795890694.47587), aemp_int(INT64_MIN),
                        aemp_null(), aemp_bool(1), aemp_bool(0)));
    assert_json(m, "[0.1,1.0,-0.0,1e+300,0.5,1795890694.47587,"
                   "-9223372036854775808,null,true,false]");
    aemp_msg_unref(m);
    m = msg_of(
        aemp_arr(aemp_str("q\"b\\s/\b\f\n\r\t\x01\x1f\x7f\xc3\xa9"),
                 aemp_map_set(aemp_map_set(aemp_map_new(), "k", aemp_arr_new()),
                              "j", aemp_map_new())));
    assert_json(m, "[\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xc3\xa9\","
                   "{\"k\":[],\"j\":{}}]");
    aemp_msg_unref(m);
    m = msg_of(aemp_arr_new());
    assert_json(m, "[]");
    aemp_msg_unref(m);
}

/* Under a locale whose decimal point is a comma, the text is the same. */
static void test_json_locale(void **state)
{
    (void)state;
    char dir[64] = "";
    kt_comma_locale(dir, sizeof dir);
    aemp_msg_t *m = msg_of(aemp_arr(aemp_double(0.5), aemp_double(-2.25e-10)));
    assert_json(m, "[0.5,-2.25e-10]");
    aemp_msg_t *d = roundtrip(m, AEMP_JSON);
    assert_true(aemp_val_equal(aemp_msg_val(d), aemp_msg_val(m)));
    aemp_msg_unref(d);
    aemp_msg_unref(m);
    kt_comma_locale_done(dir);
}

static void test_cbor_bytes(void **state)
{
    (void)state;
    static const struct {
        int64_t i;
        const char *cbor;
        size_t len;
    } cases[] = {
        {0, "\x81\x00", 2},
        {23, "\x81\x17", 2},
        {24, "\x81\x18\x18", 3},
        {255, "\x81\x18\xff", 3},
        {256, "\x81\x19\x01\x00", 4},
        {65535, "\x81\x19\xff\xff", 4},
        {65536, "\x81\x1a\x00\x01\x00\x00", 6},
        {4294967295LL, "\x81\x1a\xff\xff\xff\xff", 6},
        {4294967296LL, "\x81\x1b\x00\x00\x00\x01\x00\x00\x00\x00", 10},
        {-1, "\x81\x20", 2},
        {-24, "\x81\x37", 2},
        {-25, "\x81\x38\x18", 3},
        {-257, "\x81\x39\x01\x00", 4},
        {INT64_MAX, "\x81\x1b\x7f\xff\xff\xff\xff\xff\xff\xff", 10},
        {INT64_MIN, "\x81\x3b\x7f\xff\xff\xff\xff\xff\xff\xff", 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        aemp_msg_t *m = msg_of(aemp_arr(aemp_int(cases[i].i)));
        assert_cbor(m, cases[i].cbor, cases[i].len);
        aemp_msg_unref(m);
    }
    aemp_msg_t *m;
    assert_int_equal(
        aemp_msg_new(&m, "sy{n}bd", "tag", "\0", (size_t)1, "k", 1, -0.0), 0);
    assert_cbor(m,
                "\x85\x63tag\x41\x00\xa1\x61k\xf6\xf5"
                "\xfb\x80\x00\x00\x00\x00\x00\x00\x00",
                21);
    aemp_msg_unref(m);
}

static void test_encode_errors(void **state)
{
    (void)state;
    const double bad[] = {NAN, INFINITY, -INFINITY};
    char *buf = NULL;
    size_t len = 0;
    for (size_t i = 0; i < 3; i++) {
        aemp_msg_t *m = msg_of(aemp_arr(aemp_str("x"), aemp_double(bad[i])));
        assert_int_equal(aemp_msg_encode(m, AEMP_JSON, &buf, &len),
                         AEMP_EINVAL);
        assert_null(buf);
        aemp_msg_t *d = roundtrip(m, AEMP_CBOR); /* cbor carries them */
        assert_true(aemp_val_equal(aemp_msg_val(d), aemp_msg_val(m)));
        aemp_msg_unref(d);
        aemp_msg_unref(m);
    }
    const char *invalid[] = {"\xff",
                             "\xc0\x80",
                             "\xed\xa0\x80",
                             "a\xe2\x82",
                             "\xf4\x90\x80\x80",
                             "0123456789abcdef\xff",
                             "01234567\xc3",
                             "0123456789\xed\xa0\x80xyz01234567"};
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        for (size_t k = 0; k < 2; k++) {
            aemp_msg_t *m = msg_of(aemp_arr(aemp_arr(aemp_str(invalid[i]))));
            assert_int_equal(aemp_msg_encode(m, both[k], &buf, &len),
                             AEMP_EINVAL);
            aemp_msg_unref(m);
            /* map keys too */
            m = msg_of(aemp_arr(
                aemp_map_set(aemp_map_new(), invalid[i], aemp_null())));
            assert_int_equal(aemp_msg_encode(m, both[k], &buf, &len),
                             AEMP_EINVAL);
            aemp_msg_unref(m);
        }
    }
    aemp_msg_t *m = msg_of(aemp_arr_new());
    assert_int_equal(aemp_msg_encode(m, 3, &buf, &len), AEMP_EINVAL);
    assert_int_equal(aemp_msg_encode(NULL, AEMP_JSON, &buf, &len), AEMP_EINVAL);
    assert_int_equal(aemp_msg_encode(m, AEMP_JSON, NULL, &len), AEMP_EINVAL);
    aemp_msg_unref(m);
}

/* The internal encoders put the destination port in front, and leave the
 * buffer as it was on failure. */
static void test_encode_prefix(void **state)
{
    (void)state;
    aemp_msg_t *m, *e, *bad = msg_of(aemp_arr(aemp_double(NAN)));
    assert_int_equal(aemp_msg_new(&m, "si", "ping", 1), 0);
    assert_int_equal(aemp_msg_new(&e, ""), 0);
    aemp__buf_t b = {NULL, 0, 0};
    assert_int_equal(aemp__json_encode(&b, "port", 4, m), 0);
    assert_int_equal(aemp__json_encode(&b, "", 0, e), 0);
    assert_int_equal(aemp__json_encode(&b, "x", 1, bad), AEMP_EINVAL);
    assert_int_equal(aemp__json_encode(&b, "\xff", 1, e), AEMP_EINVAL);
    assert_int_equal(b.len, 21);
    assert_memory_equal(b.data, "[\"port\",\"ping\",1][\"\"]", 21);
    b.len = 0;
    assert_int_equal(aemp__cbor_encode(&b, "p", 1, m), 0);
    assert_int_equal(aemp__cbor_encode(&b, "\xff", 1, e), AEMP_EINVAL);
    assert_int_equal(b.len, 9);
    assert_memory_equal(b.data, "\x83\x61p\x64ping\x01", 9);
    aemp__buf_free(&b);
    aemp_msg_unref(m);
    aemp_msg_unref(e);
    aemp_msg_unref(bad);
}

/* ---- decoding ---------------------------------------------------------- */

static void test_json_decode_errors(void **state)
{
    (void)state;
    assert_int_equal(JSON_RC("[\"\xff\"]"), AEMP_EPROTO);
    assert_int_equal(JSON_RC("[\"\xc0\x80\"]"), AEMP_EPROTO);
    assert_int_equal(JSON_RC("[\"\xed\xa0\x80\"]"), AEMP_EPROTO);
    assert_int_equal(JSON_RC("[\"\\ud800\"]"), AEMP_EPROTO);
    assert_int_equal(JSON_RC("{}"), AEMP_EPROTO);
    assert_int_equal(JSON_RC("1"), AEMP_EPROTO);
    assert_int_equal(JSON_RC("\"s\""), AEMP_EPROTO);
    assert_int_equal(JSON_RC(""), AEMP_EPROTO);
    assert_int_equal(JSON_RC("[1] x"), AEMP_EPROTO);
    assert_int_equal(JSON_RC("[1][2]"), AEMP_EPROTO);
    assert_int_equal(JSON_RC("[1,"), AEMP_EPROTO);
    assert_int_equal(JSON_RC("[1,]"), AEMP_EPROTO);
    assert_int_equal(JSON_RC("[\"a\x01\"]"), AEMP_EPROTO);
    assert_int_equal(JSON_RC("[9223372036854775808]"), AEMP_EPROTO);
    assert_int_equal(JSON_RC("[1e400]"), AEMP_EPROTO);
    assert_int_equal(JSON_RC(" \n[1]\t\r "), 0); /* whitespace around */
    assert_int_equal(JSON_RC("[-9223372036854775808,9223372036854775807]"), 0);
    aemp_msg_t *m = NULL;
    assert_int_equal(aemp_msg_decode(NULL, AEMP_JSON, "[]", 2), AEMP_EINVAL);
    assert_int_equal(aemp_msg_decode(&m, 0, "[]", 2), AEMP_EINVAL);
    assert_int_equal(aemp_msg_decode(&m, AEMP_JSON, NULL, 2), AEMP_EINVAL);
}

static void test_cbor_decode_errors(void **state)
{
    (void)state;
    assert_int_equal(CBOR_RC("\x81\x61\xff"), AEMP_EPROTO);     /* UTF-8 */
    assert_int_equal(CBOR_RC("\x81\x62\xc0\x80"), AEMP_EPROTO); /* overlong */
    assert_int_equal(CBOR_RC("\x81\x5a\x7f\xff\xff\xff"), AEMP_EPROTO);
    assert_int_equal(CBOR_RC("\x81\x7b\xff\xff\xff\xff\xff\xff\xff\xfb"),
                     AEMP_EPROTO);
    assert_int_equal(CBOR_RC("\x9b\xff\xff\xff\xff\xff\xff\xff\xff"),
                     AEMP_ELIMIT);                               /* items */
    assert_int_equal(CBOR_RC("\x81\x99\x10\x00"), AEMP_EPROTO);  /* count */
    assert_int_equal(CBOR_RC("\x81\xa1\x01\x02"), AEMP_EPROTO);  /* key */
    /* a byte-string key (Perl 2.x) is a key if it is UTF-8 */
    assert_int_equal(CBOR_RC("\x81\xa1\x41k\x02"), 0);
    assert_int_equal(CBOR_RC("\x81\xa1\x41\xff\x02"), AEMP_EPROTO);
    assert_int_equal(CBOR_RC("\x80\x00"), AEMP_EPROTO);          /* trailing */
    assert_int_equal(CBOR_RC("\x01"), AEMP_EPROTO);              /* top */
    assert_int_equal(CBOR_RC("\xa0"), AEMP_EPROTO);
    assert_int_equal(CBOR_RC("\x61x"), AEMP_EPROTO);
    assert_int_equal(CBOR_RC(""), AEMP_EPROTO);
    assert_int_equal(CBOR_RC("\x82\x01"), AEMP_EPROTO); /* short */
    assert_int_equal(CBOR_RC("\x81\x19\x01"), AEMP_EPROTO);
    assert_int_equal(CBOR_RC("\x81\x1c"), AEMP_EPROTO);     /* ai 28 */
    assert_int_equal(CBOR_RC("\x81\x5e"), AEMP_EPROTO);     /* ai 30 */
    assert_int_equal(CBOR_RC("\x81\x1f"), AEMP_EPROTO);     /* indef int */
    assert_int_equal(CBOR_RC("\x81\xdf\x01"), AEMP_EPROTO); /* indef tag */
    assert_int_equal(CBOR_RC("\x81\xff"), AEMP_EPROTO);     /* break */
    assert_int_equal(CBOR_RC("\xff"), AEMP_EPROTO);
    assert_int_equal(CBOR_RC("\x9f\xc1\xff"), AEMP_EPROTO);      /* tag+break */
    assert_int_equal(CBOR_RC("\x81\xbf\x61k\xff"), AEMP_EPROTO); /* no value */
    assert_int_equal(CBOR_RC("\x9f\x01"), AEMP_EPROTO);          /* no break */
    assert_int_equal(CBOR_RC("\x81\x1b\x80\x00\x00\x00\x00\x00\x00\x00"),
                     AEMP_EPROTO); /* > INT64_MAX */
    assert_int_equal(CBOR_RC("\x81\x3b\x80\x00\x00\x00\x00\x00\x00\x00"),
                     AEMP_EPROTO);                      /* < INT64_MIN */
    assert_int_equal(CBOR_RC("\x81\xe0"), AEMP_EPROTO); /* simple */
    assert_int_equal(CBOR_RC("\x81\xf8\x20"), AEMP_EPROTO);
    assert_int_equal(CBOR_RC("\x81\x7f\x41k\xff"), AEMP_EPROTO); /* chunk */
    assert_int_equal(CBOR_RC("\x81\x7f\x7f\xff\xff"), AEMP_EPROTO);
    assert_int_equal(CBOR_RC("\x81\x7f\xc1\x61k\xff"), AEMP_EPROTO);
    assert_int_equal(CBOR_RC("\x81\x7f\x62\xc3\xff"), AEMP_EPROTO);
}

static void test_cbor_decode_accepts(void **state)
{
    (void)state;
    /* tags are ignored, also the ones libcbor 0.8 rejects */
    aemp_msg_t *m = decode_ok(AEMP_CBOR,
                              "\xd9\xd9\xf7\x83\xc6\x01\xd4\x02"
                              "\xdb\x00\x00\x00\x00\x00\x00\x00\x01"
                              "\xc1\xc2\x03",
                              20);
    int64_t a, b, c;
    assert_int_equal(aemp_msg_unpack(m, "III", &a, &b, &c), 0);
    assert_true(a == 1 && b == 2 && c == 3);
    aemp_msg_unref(m);
    /* floats of every width, undefined */
    m = decode_ok(AEMP_CBOR,
                  "\x89\xf9\x3c\x00\xf9\x00\x01\xf9\x7c\x00\xf9\xfc\x00"
                  "\xf9\x80\x00\xfa\x3f\xc0\x00\x00\xf9\x7e\x00\xf7"
                  "\xfb\x3f\xb9\x99\x99\x99\x99\x99\x9a",
                  34);
    double d[7];
    const aemp_val_t *u;
    assert_int_equal(aemp_msg_unpack(m, "dddddddvd", &d[0], &d[1], &d[2], &d[3],
                                     &d[4], &d[5], &d[6], &u, &d[0]),
                     0);
    assert_true(d[0] == 0.1);
    assert_true(d[1] == 0x1p-24);
    assert_true(isinf(d[2]) && d[2] > 0);
    assert_true(isinf(d[3]) && d[3] < 0);
    assert_true(d[4] == 0 && signbit(d[4]));
    assert_true(d[5] == 1.5);
    assert_true(isnan(d[6]));
    assert_int_equal(aemp_val_type(u), AEMP_T_NULL);
    aemp_msg_unref(m);
    assert_int_equal(aemp_msg_decode(&m, AEMP_CBOR, "\x81\xf9\x3c\x00", 4), 0);
    assert_true(aemp_msg_unpack(m, "d", &d[0]) == 0 && d[0] == 1.0);
    aemp_msg_unref(m);
}

static void test_cbor_indefinite(void **state)
{
    (void)state;
    /* [_ "abc" (in chunks), h'00' (in chunks), [_ 1], {_ "k": [_ ]}, ""] */
    aemp_msg_t *m = decode_ok(AEMP_CBOR,
                              "\x9f\x7f\x61"
                              "a\x62"
                              "bc\xff\x5f\x41\x00\x40\xff"
                              "\x9f\x01\xff\xbf\x61k\x9f\xff\xff\x7f\xff\xff",
                              25);
    aemp_val_t *want = aemp_arr(
        aemp_str("abc"), aemp_bytes("\0", 1), aemp_arr(aemp_int(1)),
        aemp_map_set(aemp_map_new(), "k", aemp_arr_new()), aemp_str(""));
    assert_true(aemp_val_equal(aemp_msg_val(m), want));
    aemp_val_free(want);
    aemp_msg_unref(m);
    /* more indefinite containers than the decoder keeps inline */
    char buf[200];
    size_t n = 0;
    buf[n++] = (char)0x9f;
    for (int i = 0; i < 40; i++) {
        buf[n++] = (char)0x9f;
        buf[n++] = (char)0x9f;
        buf[n++] = (char)0xff;
        buf[n++] = (char)0xff;
    }
    buf[n++] = (char)0xff;
    m = decode_ok(AEMP_CBOR, buf, n);
    assert_int_equal(aemp_msg_len(m), 40);
    assert_int_equal(aemp_val_len(aemp_msg_at(m, 39)), 1);
    aemp_msg_unref(m);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    /* cbor: kept as received; lookups see the last */
    aemp_msg_t *m = decode_ok(AEMP_CBOR,
                              "\x81\xa2\x61"
                              "a\x01\x61"
                              "a\x02",
                              8);
    const aemp_val_t *map = aemp_msg_at(m, 0);
    int64_t v;
    assert_int_equal(aemp_val_len(map), 2);
    assert_int_equal(aemp_val_int(aemp_map_get(map, "a"), &v), 0);
    assert_int_equal(v, 2);
    aemp_msg_unref(m);
    /* json: jansson merges them (the last value, in the first place) */
    m = decode_json("[{\"b\":1,\"a\":2,\"b\":3}]");
    map = aemp_msg_at(m, 0);
    const char *key;
    assert_int_equal(aemp_val_len(map), 2);
    assert_int_equal(aemp_map_at(map, 0, &key, NULL), 0);
    assert_string_equal(key, "b");
    assert_int_equal(aemp_val_int(aemp_map_get(map, "b"), &v), 0);
    assert_int_equal(v, 3);
    aemp_msg_unref(m);
    /* and key order is kept */
    m = decode_json("[{\"z\":1,\"a\":2,\"m\":3}]");
    const char *k[3];
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(aemp_map_at(aemp_msg_at(m, 0), i, &k[i], NULL), 0);
    assert_string_equal(k[0], "z");
    assert_string_equal(k[1], "a");
    assert_string_equal(k[2], "m");
    aemp_msg_unref(m);
}

static void test_depth_limit(void **state)
{
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        size_t len;
        char *s = nested(both[k], 128, &len);
        assert_int_equal(decode_rc(both[k], s, len), 0);
        free(s);
        s = nested(both[k], 129, &len);
        assert_int_equal(decode_rc(both[k], s, len), AEMP_ELIMIT);
        free(s);
        s = nested(both[k], 5000, &len); /* beyond jansson's own limit */
        assert_int_equal(decode_rc(both[k], s, len), AEMP_ELIMIT);
        free(s);
        /* the reader stops at the same depth */
        for (size_t depth = 128; depth <= 129; depth++) {
            aemp_reader_t *r;
            aemp_msg_t *m = NULL;
            s = nested(both[k], depth, &len);
            assert_int_equal(aemp_reader_new(&r, both[k], NULL), 0);
            assert_int_equal(aemp_reader_feed(r, s, len), 0);
            assert_int_equal(aemp_reader_next(r, &m),
                             depth == 128 ? 1 : AEMP_ELIMIT);
            aemp_msg_unref(m);
            aemp_reader_free(r);
            free(s);
        }
    }
}

static void test_items_limit(void **state)
{
    (void)state;
    aemp_limits_t lim = {0, 0, 3};
    aemp__limits_resolve(&lim);
    assert_int_equal(lim.max_packet, (size_t)16 << 20);
    assert_int_equal(lim.max_depth, 128);
    assert_int_equal(lim.max_items, 3);
    aemp_msg_t *m = NULL;
    static const struct {
        aemp_framing_t f;
        const char *s;
        size_t len;
        int rc;
    } cases[] = {
        {AEMP_JSON, "[1,2,3]", 7, 0},
        {AEMP_JSON, "[1,2,3,4]", 9, AEMP_ELIMIT},
        {AEMP_JSON, "[{\"a\":1,\"b\":2,\"c\":3,\"d\":4}]", 27, AEMP_ELIMIT},
        {AEMP_CBOR, "\x83\x01\x02\x03", 4, 0},
        {AEMP_CBOR, "\x84\x01\x02\x03\x04", 5, AEMP_ELIMIT},
        {AEMP_CBOR, "\x9f\x01\x02\x03\xff", 5, 0},
        {AEMP_CBOR, "\x9f\x01\x02\x03\x04\xff", 6, AEMP_ELIMIT},
        {AEMP_CBOR, "\x81\xa4", 2, AEMP_ELIMIT},
        {AEMP_CBOR,
         "\x81\xbf\x61"
         "a\x01\x61"
         "b\x01\x61"
         "c\x01\x61"
         "d\x01\xff",
         15, AEMP_ELIMIT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int (*dec)(aemp_msg_t **, const char *, size_t, const aemp_limits_t *,
                   char *, size_t) =
            cases[i].f == AEMP_JSON ? aemp__json_decode : aemp__cbor_decode;
        char why[128] = "";
        int rc = dec(&m, cases[i].s, cases[i].len, &lim, why, sizeof why);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0)
            aemp_msg_unref(m);
        else
            assert_non_null(strstr(why, "max_items"));
        /* the reader agrees */
        aemp_reader_t *r;
        assert_int_equal(aemp_reader_new(&r, cases[i].f, &lim), 0);
        aemp_reader_feed(r, cases[i].s, cases[i].len);
        rc = aemp_reader_next(r, &m);
        assert_int_equal(rc, cases[i].rc ? cases[i].rc : 1);
        if (rc == 1)
            aemp_msg_unref(m);
        aemp_reader_free(r);
    }
}

/* ---- the reader -------------------------------------------------------- */

/* Packets of every kind, encoded back to back (JSON with whitespace
 * between), then half of one more. */
static char *stream_of(aemp_framing_t f, aemp_msg_t **msgs, size_t n,
                       size_t *len)
{
    aemp__buf_t b = {NULL, 0, 0};
    for (size_t i = 0; i <= n; i++) {
        aemp_msg_t *m = i < n ? msgs[i] : msgs[0];
        size_t start = b.len;
        int rc = f == AEMP_JSON ? aemp__json_encode(&b, NULL, 0, m)
                                : aemp__cbor_encode(&b, NULL, 0, m);
        assert_int_equal(rc, 0);
        if (i == n)
            b.len = start + (b.len - start) / 2;
        else if (f == AEMP_JSON && i % 2)
            assert_int_equal(aemp__buf_append(&b, " \n\t\r", i % 5), 0);
    }
    *len = b.len;
    return b.data;
}

static void sample_msgs(aemp_msg_t **msgs, size_t n)
{
    assert_int_equal(n, 6);
    assert_int_equal(aemp_msg_new(&msgs[0], "sis", "tag", 12345, "sixteen"), 0);
    assert_int_equal(aemp_msg_new(&msgs[1], ""), 0);
    assert_int_equal(aemp_msg_new(&msgs[2], "s[i[s]]{sn}", "a\"]\\[", 1,
                                  "}\\\"", "k]", "v", "k2"),
                     0);
    assert_int_equal(
        aemp_msg_new(&msgs[3], "dnbI", -0.25, 1, (int64_t)INT64_MIN), 0);
    assert_int_equal(
        aemp_msg_new(&msgs[4], "SS", "a\0b", (size_t)3, "", (size_t)0), 0);
    char big[300];
    memset(big, 'x', sizeof big);
    assert_int_equal(aemp_msg_new(&msgs[5], "S[]{}", big, sizeof big), 0);
}

/* Feeds s in chunks of `chunk` bytes, pulling after every feed. */
static void stream_check(aemp_framing_t f, const char *s, size_t len,
                         size_t chunk, aemp_msg_t **msgs, size_t n)
{
    aemp_reader_t *r;
    assert_int_equal(aemp_reader_new(&r, f, NULL), 0);
    size_t got = 0;
    for (size_t off = 0; off < len; off += chunk) {
        size_t k = len - off < chunk ? len - off : chunk;
        assert_int_equal(aemp_reader_feed(r, s + off, k), 0);
        aemp_msg_t *m;
        int rc;
        while ((rc = aemp_reader_next(r, &m)) == 1) {
            assert_true(got < n);
            if (!aemp_val_equal(aemp_msg_val(m), aemp_msg_val(msgs[got])))
                fail_msg("chunk %zu: message %zu differs", chunk, got);
            got++;
            aemp_msg_unref(m);
        }
        assert_int_equal(rc, 0);
    }
    assert_int_equal(got, n);
    assert_string_equal(aemp_reader_error(r), "");
    aemp_reader_free(r);
}

static void test_reader_chunks(void **state)
{
    (void)state;
    aemp_msg_t *msgs[6];
    sample_msgs(msgs, 6);
    for (size_t k = 0; k < 2; k++) {
        size_t len;
        char *s = stream_of(both[k], msgs, 6, &len);
        for (size_t chunk = 1; chunk <= len; chunk++)
            stream_check(both[k], s, len, chunk, msgs, 6);
        aemp_free(s);
    }
    for (size_t i = 0; i < 6; i++)
        aemp_msg_unref(msgs[i]);
}

static void test_reader_errors(void **state)
{
    (void)state;
    static const struct {
        aemp_framing_t f;
        const char *s;
        size_t len;
        int good, rc;
    } cases[] = {
        {AEMP_JSON, "[1] x", 5, 1, AEMP_EPROTO},
        {AEMP_JSON, "[1]]", 4, 1, AEMP_EPROTO},
        {AEMP_JSON, "{\"a\":1}", 7, 0, AEMP_EPROTO},
        {AEMP_JSON, "[1][\"\xff\"][2]", 11, 1, AEMP_EPROTO},
        {AEMP_JSON, "[1,]", 4, 0, AEMP_EPROTO},
        {AEMP_CBOR, "\x80\x01", 2, 1, AEMP_EPROTO},
        {AEMP_CBOR, "\x80\x81\xff", 3, 1, AEMP_EPROTO},
        {AEMP_CBOR, "\x81\x1c", 2, 0, AEMP_EPROTO},
        {AEMP_CBOR, "\x81\xa1\x01\x01\x80", 5, 0, AEMP_EPROTO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        aemp_reader_t *r;
        aemp_msg_t *m;
        assert_int_equal(aemp_reader_new(&r, cases[i].f, NULL), 0);
        assert_int_equal(aemp_reader_feed(r, cases[i].s, cases[i].len), 0);
        for (int g = 0; g < cases[i].good; g++) {
            assert_int_equal(aemp_reader_next(r, &m), 1);
            aemp_msg_unref(m);
        }
        assert_int_equal(aemp_reader_next(r, &m), cases[i].rc);
        assert_true(strlen(aemp_reader_error(r)) > 0);
        /* stays failed */
        assert_int_equal(aemp_reader_next(r, &m), cases[i].rc);
        assert_int_equal(aemp_reader_feed(r, "[]", 2), cases[i].rc);
        aemp_reader_free(r);
    }
    aemp_reader_t *r;
    aemp_msg_t *m;
    assert_int_equal(aemp_reader_new(&r, 7, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_reader_new(NULL, AEMP_JSON, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_reader_new(&r, AEMP_JSON, NULL), 0);
    assert_int_equal(aemp_reader_next(r, &m), 0); /* nothing fed */
    assert_int_equal(aemp_reader_feed(r, NULL, 0), 0);
    assert_int_equal(aemp_reader_feed(r, NULL, 1), AEMP_EINVAL);
    assert_int_equal(aemp_reader_next(r, NULL), AEMP_EINVAL);
    aemp_reader_free(r);
    aemp_reader_free(NULL);
}

/* Truncated input: decoding fails, the reader waits for more. */
static void test_truncated(void **state)
{
    (void)state;
    aemp_msg_t *msgs[6];
    sample_msgs(msgs, 6);
    for (size_t k = 0; k < 2; k++) {
        char *buf;
        size_t len;
        assert_int_equal(aemp_msg_encode(msgs[2], both[k], &buf, &len), 0);
        for (size_t cut = 0; cut < len; cut++) {
            assert_true(decode_rc(both[k], buf, cut) < 0);
            aemp_reader_t *r;
            aemp_msg_t *m;
            assert_int_equal(aemp_reader_new(&r, both[k], NULL), 0);
            assert_int_equal(aemp_reader_feed(r, buf, cut), 0);
            assert_int_equal(aemp_reader_next(r, &m), 0);
            assert_int_equal(aemp_reader_feed(r, buf + cut, len - cut), 0);
            assert_int_equal(aemp_reader_next(r, &m), 1);
            aemp_msg_unref(m);
            aemp_reader_free(r);
        }
        aemp_free(buf);
    }
    for (size_t i = 0; i < 6; i++)
        aemp_msg_unref(msgs[i]);
}

static void test_reader_packet_limit(void **state)
{
    (void)state;
    aemp_reader_t *r;
    aemp_msg_t *m;
    /* a cbor header announcing more than 16 MiB fails at once */
    assert_int_equal(aemp_reader_new(&r, AEMP_CBOR, NULL), 0);
    assert_int_equal(aemp_reader_feed(r, "\x81\x5a\x01\x00\x00\x00", 6), 0);
    assert_int_equal(aemp_reader_next(r, &m), AEMP_ELIMIT);
    assert_non_null(strstr(aemp_reader_error(r), "max_packet"));
    aemp_reader_free(r);
    /* ... and so does a count that cannot fit */
    assert_int_equal(aemp_reader_new(&r, AEMP_CBOR, NULL), 0);
    assert_int_equal(aemp_reader_feed(r,
                                      "\x81\xbb\x00\x00\x00\x00\x01\x00"
                                      "\x00\x00",
                                      10),
                     0);
    assert_int_equal(aemp_reader_next(r, &m), AEMP_ELIMIT);
    aemp_reader_free(r);
    /* exactly max_packet is fine, one more byte is not */
    aemp_limits_t lim = {100, 0, 0};
    for (size_t k = 0; k < 2; k++) {
        for (size_t size = 100; size <= 101; size++) {
            char pkt[101];
            memset(pkt, ' ', sizeof pkt);
            if (both[k] == AEMP_JSON) {
                pkt[0] = '[';
                pkt[1] = '"';
                pkt[size - 2] = '"';
                pkt[size - 1] = ']';
            } else {
                memcpy(pkt, "\x81\x78", 2);
                pkt[2] = (char)(size - 3);
            }
            assert_int_equal(aemp_reader_new(&r, both[k], &lim), 0);
            int rc = aemp_reader_feed(r, pkt, size);
            assert_int_equal(rc, size == 100 ? 0 : AEMP_ELIMIT);
            assert_int_equal(aemp_reader_next(r, &m),
                             size == 100 ? 1 : AEMP_ELIMIT);
            if (size == 100)
                aemp_msg_unref(m);
            aemp_reader_free(r);
        }
    }
}

/* feed() refuses bytes that make one pending packet too large, while any
 * number of complete packets may arrive in one go; packets before the
 * offending one are still delivered. */
static void test_reader_feed_limit(void **state)
{
    (void)state;
    aemp_limits_t lim = {100, 0, 0};
    aemp_reader_t *r;
    aemp_msg_t *m;
    char big[600];
    size_t n = 0;
    for (int i = 0; i < 40; i++) /* 40 complete packets, 240 bytes */
        n += (size_t)snprintf(big + n, sizeof big - n, "[%d,0] ", 10 + i);
    assert_int_equal(aemp_reader_new(&r, AEMP_JSON, &lim), 0);
    assert_int_equal(aemp_reader_feed(r, big, n), 0);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(aemp_reader_next(r, &m), 1);
        aemp_msg_unref(m);
    }
    assert_int_equal(aemp_reader_next(r, &m), 0);
    /* a pending packet growing past the limit over two feeds */
    char part[60];
    memset(part, '1', sizeof part);
    part[0] = '[';
    assert_int_equal(aemp_reader_feed(r, part, sizeof part), 0);
    assert_int_equal(aemp_reader_next(r, &m), 0);
    assert_int_equal(aemp_reader_feed(r, part + 1, sizeof part - 1),
                     AEMP_ELIMIT);
    assert_int_equal(aemp_reader_next(r, &m), AEMP_ELIMIT);
    aemp_reader_free(r);
    /* complete packets, then an oversized one, in one feed */
    memcpy(big + n, "[\"", 2);
    memset(big + n + 2, 'x', 150);
    assert_int_equal(aemp_reader_new(&r, AEMP_JSON, &lim), 0);
    assert_int_equal(aemp_reader_feed(r, big, n + 152), AEMP_ELIMIT);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(aemp_reader_next(r, &m), 1);
        aemp_msg_unref(m);
    }
    assert_int_equal(aemp_reader_next(r, &m), AEMP_ELIMIT);
    assert_int_equal(aemp_reader_feed(r, "[]", 2), AEMP_ELIMIT);
    aemp_reader_free(r);
}

/* Feeds len bytes in chunks, expecting no message yet. */
static void feed_chunks(aemp_reader_t *r, const char *s, size_t len,
                        size_t chunk)
{
    aemp_msg_t *m;
    for (size_t off = 0; off < len; off += chunk) {
        size_t c = len - off < chunk ? len - off : chunk;
        assert_int_equal(aemp_reader_feed(r, s + off, c), 0);
        assert_int_equal(aemp_reader_next(r, &m), 0);
    }
}

/* One packet of almost 16 MiB: ["aaa..."] with escaped quotes and brackets
 * inside the string; returns the decoded string's length. */
static size_t big_json(char *s, size_t n)
{
    size_t pairs = 0;
    memset(s, 'a', n);
    memcpy(s, "[\"", 2);
    memcpy(s + n - 2, "\"]", 2);
    for (size_t i = 1000; i + 4 < n; i += 1000) {
        if (i % 3000) {
            memcpy(s + i, "\\\"", 2);
            pairs++;
        } else {
            s[i] = '[';
        }
    }
    return n - 4 - pairs;
}

/* [1, h'abab...'] of n bytes; returns the byte string's length. */
static size_t big_cbor(char *s, size_t n)
{
    size_t body = n - 7;
    memcpy(s, "\x82\x01\x5a", 3);
    for (int b = 0; b < 4; b++)
        s[3 + b] = (char)(body >> (24 - 8 * b));
    memset(s + 7, 0xab, body);
    return body;
}

/* A packet of almost 16 MiB arriving in small pieces is scanned once:
 * rescanning from its start on every feed would not finish within the
 * test's timeout (1 MiB in 1-byte pieces alone would take 5e11 steps). */
static void test_reader_big_packet(void **state)
{
    (void)state;
    size_t n = ((size_t)16 << 20) - 16;
    char *s = malloc(n);
    for (size_t k = 0; k < 2; k++) {
        size_t want = both[k] == AEMP_JSON ? big_json(s, n) : big_cbor(s, n);
        aemp_reader_t *r;
        aemp_msg_t *m;
        assert_int_equal(aemp_reader_new(&r, both[k], NULL), 0);
        feed_chunks(r, s, n - 1, 4096);
        assert_int_equal(aemp_reader_feed(r, s + n - 1, 1), 0);
        assert_int_equal(aemp_reader_next(r, &m), 1);
        size_t idx = both[k] == AEMP_JSON ? 0 : 1;
        assert_int_equal(aemp_val_len(aemp_msg_at(m, idx)), want);
        aemp_msg_unref(m);
        aemp_reader_free(r);
        assert_int_equal(aemp_reader_new(&r, both[k], NULL), 0);
        feed_chunks(r, s, (size_t)1 << 20, 1);
        aemp_reader_free(r);
    }
    free(s);
}

/* Thousands of small packets in one buffer. */
static void test_reader_many(void **state)
{
    (void)state;
    aemp_msg_t *m;
    assert_int_equal(aemp_msg_new(&m, "sis", "tag", 12345, "sixteen-byte-str"),
                     0);
    for (size_t k = 0; k < 2; k++) {
        aemp__buf_t b = {NULL, 0, 0};
        for (int i = 0; i < 10000; i++)
            assert_int_equal(both[k] == AEMP_JSON
                                 ? aemp__json_encode(&b, NULL, 0, m)
                                 : aemp__cbor_encode(&b, NULL, 0, m),
                             0);
        aemp_reader_t *r;
        aemp_msg_t *d;
        assert_int_equal(aemp_reader_new(&r, both[k], NULL), 0);
        for (int rep = 0; rep < 3; rep++) { /* reuse after draining */
            assert_int_equal(aemp_reader_feed(r, b.data, b.len), 0);
            for (int i = 0; i < 10000; i++) {
                assert_int_equal(aemp_reader_next(r, &d), 1);
                aemp_msg_unref(d);
            }
            assert_int_equal(aemp_reader_next(r, &d), 0);
        }
        aemp_reader_free(r);
        aemp__buf_free(&b);
    }
    aemp_msg_unref(m);
}

/* ---- interop: packets as Perl AnyEvent::MP 1.30 / 0.8 sent them --------
 * (shared/interop/1.30-named-functest.txt, 0.8-public-functest.txt) */

static void test_interop_json(void **state)
{
    (void)state;
    const char *s;
    const char *port, *req, *target;
    const aemp_val_t *v;
    double t;
    int a, b;
    aemp_msg_t *m;
    m = decode_json("[\"OEweBqTh.a\",\"r_time\",1795890694.47587]");
    assert_int_equal(aemp_msg_unpack(m, "ssd", &port, &req, &t), 0);
    assert_true(t == 1795890694.47587);
    aemp_msg_unref(m);
    m = decode_json(
        "[\"0XdM0cRBTVMugUSv.c\",\"ping\",\"B#OEweBqTh.a\",42,\"str\","
        "[1,{\"a\":2}]]");
    assert_int_equal(
        aemp_msg_unpack(m, "sssisv", &port, &req, &target, &a, &s, &v), 0);
    assert_int_equal(a, 42);
    assert_int_equal(aemp_val_len(v), 2);
    assert_int_equal(aemp_val_type(aemp_map_get(aemp_val_at(v, 1), "a")),
                     AEMP_T_INT);
    aemp_msg_unref(m);
    m = decode_json(
        "[\"\",\"snd_multiple\",[\"B#OEweBqTh.a\",\"relayed\",\"m1\"],"
        "[\"B#OEweBqTh.a\",\"relayed\",\"m2\"]]");
    assert_int_equal(aemp_msg_unpack(m, "ssvv", &port, &req, &v, &v), 0);
    assert_string_equal(port, "");
    aemp_msg_unref(m);
    m = decode_json(
        "[\"0XdM0cRBTVMugUSv.b\",\"nodes\",{\"A\":[\"127.0.0.1:4040\"]}]");
    assert_int_equal(aemp_msg_unpack(m, "ssv", &port, &req, &v), 0);
    assert_int_equal(
        aemp_val_str(aemp_val_at(aemp_map_get(v, "A"), 0), &s, NULL), 0);
    assert_string_equal(s, "127.0.0.1:4040");
    aemp_msg_unref(m);
    /* numbers Perl last used as strings, and booleans */
    m = decode_json("[\"x\",\"r\",\"123\",true,false]");
    assert_int_equal(aemp_msg_unpack(m, "sssbb", &port, &req, &s, &a, &b), 0);
    assert_string_equal(s, "123");
    assert_true(a == 1 && b == 0);
    aemp_msg_unref(m);
}

/* Two packets in one TCP segment, as the 0.8 node wrote them. */
static void test_interop_stream(void **state)
{
    (void)state;
    static const char seg[] =
        "[\"\",\"devnull\",1,2,3][\"\",\"AnyEvent::MP::_spawn\","
        "\"HGmBQSE55z7PG3A5k1tW7w=.b\",\"AEMPHarness::echo_srv\","
        "\"127.0.0.1:4041#4CxrCx2MfjM.a\"][\"\",\"mon1\",\"0XdM0cRBTVMugUSv."
        "b\"]"
        "[]";
    aemp_reader_t *r;
    aemp_msg_t *m;
    const char *port, *req, *s;
    int a, b, c;
    assert_int_equal(aemp_reader_new(&r, AEMP_JSON, NULL), 0);
    assert_int_equal(aemp_reader_feed(r, seg, sizeof seg - 1), 0);
    assert_int_equal(aemp_reader_next(r, &m), 1);
    assert_int_equal(aemp_msg_unpack(m, "ssiii", &port, &req, &a, &b, &c), 0);
    assert_string_equal(req, "devnull");
    aemp_msg_unref(m);
    assert_int_equal(aemp_reader_next(r, &m), 1);
    assert_int_equal(aemp_msg_unpack(m, "ss*", &port, &req), 0);
    assert_string_equal(req, "AnyEvent::MP::_spawn");
    aemp_msg_unref(m);
    assert_int_equal(aemp_reader_next(r, &m), 1);
    assert_int_equal(aemp_msg_unpack(m, "sss", &port, &req, &s), 0);
    assert_string_equal(s, "0XdM0cRBTVMugUSv.b");
    aemp_msg_unref(m);
    assert_int_equal(aemp_reader_next(r, &m), 1); /* keepalive [] */
    assert_int_equal(aemp_msg_len(m), 0);
    aemp_msg_unref(m);
    assert_int_equal(aemp_reader_next(r, &m), 0);
    aemp_reader_free(r);
}

/* The print helpers: one line of JSON, the caller's to free. */
static void test_to_json(void **state)
{
    (void)state;
    aemp_msg_t *m = NULL;
    assert_int_equal(aemp_msg_new(&m, "si[sn]{i}y", "tag", -3, "in", "k", 7,
                                  "b\xff", (size_t)2),
                     0);
    char *t = NULL;
    assert_int_equal(aemp_msg_to_json(m, &t), 0);
    assert_string_equal(t, "[\"tag\",-3,[\"in\",null],{\"k\":7},\"b\xc3\xbf\"]");
    aemp_free(t);
    assert_int_equal(aemp_val_to_json(aemp_msg_at(m, 3), &t), 0);
    assert_string_equal(t, "{\"k\":7}");
    aemp_free(t);
    assert_int_equal(aemp_val_to_json(aemp_msg_at(m, 0), &t), 0);
    assert_string_equal(t, "\"tag\"");
    aemp_free(t);
    aemp_msg_unref(m);
    assert_int_equal(aemp_msg_new(&m, "d", 0.0 / 0.0), 0);
    t = NULL;
    assert_int_equal(aemp_msg_to_json(m, &t), AEMP_EINVAL);
    assert_null(t);
    aemp_msg_unref(m);
    assert_int_equal(aemp_msg_to_json(NULL, &t), AEMP_EINVAL);
    assert_int_equal(aemp_val_to_json(NULL, &t), AEMP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_ints),
        cmocka_unit_test(test_roundtrip_doubles),
        cmocka_unit_test(test_roundtrip_scalars_and_text),
        cmocka_unit_test(test_roundtrip_containers),
        cmocka_unit_test(test_roundtrip_big_strings),
        cmocka_unit_test(test_json_bytes_as_latin1),
        cmocka_unit_test(test_json_text),
        cmocka_unit_test(test_json_locale),
        cmocka_unit_test(test_cbor_bytes),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_encode_prefix),
        cmocka_unit_test(test_json_decode_errors),
        cmocka_unit_test(test_cbor_decode_errors),
        cmocka_unit_test(test_cbor_decode_accepts),
        cmocka_unit_test(test_cbor_indefinite),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_items_limit),
        cmocka_unit_test(test_reader_chunks),
        cmocka_unit_test(test_reader_errors),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_reader_packet_limit),
        cmocka_unit_test(test_reader_feed_limit),
        cmocka_unit_test(test_reader_big_packet),
        cmocka_unit_test(test_reader_many),
        cmocka_unit_test(test_interop_json),
        cmocka_unit_test(test_interop_stream),
        cmocka_unit_test(test_to_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
