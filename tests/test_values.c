/* Values and messages: constructors, readers, pictures, unpacking,
 * ownership, and allocation-failure injection over all of it. */
#include "helpers.h"

#include "value.h" /* aemp__utf8_valid */

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- constructors and readers ------------------------------------------ */

static void test_scalars(void **state)
{
    (void)state;
    aemp_val_t *n = aemp_null(), *b = aemp_bool(7), *i = aemp_int(INT64_MIN),
               *d = aemp_double(-0.5);
    int bv = 0;
    int64_t iv = 0;
    double dv = 0;
    assert_int_equal(aemp_val_type(n), AEMP_T_NULL);
    assert_int_equal(aemp_val_type(NULL), AEMP_T_NULL);
    assert_int_equal(aemp_val_bool(b, &bv), 0);
    assert_int_equal(bv, 1);
    assert_int_equal(aemp_val_int(i, &iv), 0);
    assert_true(iv == INT64_MIN);
    assert_int_equal(aemp_val_double(d, &dv), 0);
    assert_true(dv == -0.5);
    assert_int_equal(aemp_val_double(i, &dv), 0); /* ints convert */
    assert_true(dv == (double)INT64_MIN);
    /* wrong types and NULL */
    assert_int_equal(aemp_val_bool(i, &bv), AEMP_ETYPE);
    assert_int_equal(aemp_val_int(d, &iv), AEMP_ETYPE);
    assert_int_equal(aemp_val_int(NULL, &iv), AEMP_ETYPE);
    assert_int_equal(aemp_val_double(b, &dv), AEMP_ETYPE);
    assert_int_equal(aemp_val_len(i), 0);
    assert_null(aemp_val_at(i, 0));
    aemp_val_free(n);
    aemp_val_free(b);
    aemp_val_free(i);
    aemp_val_free(d);
    aemp_val_free(NULL);
}

static void test_strings(void **state)
{
    (void)state;
    aemp_val_t *s = aemp_str("héllo"), *sn = aemp_strn("a\0b", 3),
               *y = aemp_bytes("\0\xff", 2), *e = aemp_bytes(NULL, 0);
    const char *p;
    const void *q;
    size_t len;
    assert_int_equal(aemp_val_str(s, &p, &len), 0);
    assert_string_equal(p, "héllo");
    assert_int_equal(len, 6);
    assert_int_equal(aemp_val_str(sn, &p, NULL), 0);
    assert_memory_equal(p, "a\0b", 4); /* NUL-terminated in storage */
    assert_int_equal(aemp_val_len(sn), 3);
    assert_int_equal(aemp_val_bytes(y, &q, &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(q, "\0\xff", 2);
    assert_int_equal(aemp_val_bytes(e, &q, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(aemp_val_str(y, &p, &len), AEMP_ETYPE);
    assert_int_equal(aemp_val_bytes(s, &q, &len), AEMP_ETYPE);
    assert_null(aemp_str(NULL));
    assert_null(aemp_bytes(NULL, 1));
    aemp_val_free(s);
    aemp_val_free(sn);
    aemp_val_free(y);
    aemp_val_free(e);
}

static void test_arrays(void **state)
{
    (void)state;
    aemp_val_t *a = aemp_arr(aemp_int(1), aemp_str("x"), aemp_arr_new());
    assert_non_null(a);
    assert_int_equal(aemp_val_type(a), AEMP_T_ARR);
    assert_int_equal(aemp_val_len(a), 3);
    for (int i = 0; i < 100; i++) /* crosses several capacity steps */
        a = aemp_arr_push(a, aemp_int(i));
    assert_non_null(a);
    assert_int_equal(aemp_val_len(a), 103);
    int64_t v;
    assert_int_equal(aemp_val_int(aemp_val_at(a, 102), &v), 0);
    assert_int_equal(v, 99);
    assert_null(aemp_val_at(a, 103));
    assert_int_equal(aemp_val_type(aemp_val_at(a, 2)), AEMP_T_ARR);
    /* pushing onto a non-array frees both */
    assert_null(aemp_arr_push(aemp_int(1), aemp_int(2)));
    assert_null(aemp_arr_push(NULL, aemp_str("freed")));
    assert_null(aemp_arr_push(a, NULL)); /* frees a */
}

/* A failed constructor anywhere makes the whole expression NULL, and
 * everything else is freed (the sanitizer build checks for leaks). */
static void test_null_propagation(void **state)
{
    (void)state;
    assert_null(aemp_arr(aemp_int(1), aemp_str(NULL), aemp_str("leak?")));
    assert_null(aemp_arr(NULL));
    assert_null(aemp_arr(aemp_arr(aemp_str("deep"), NULL), aemp_int(2)));
    assert_null(aemp_map_set(aemp_map_new(), "k", NULL));
    assert_null(aemp_map_set(NULL, "k", aemp_str("freed")));
    assert_null(aemp_map_set(aemp_map_new(), NULL, aemp_str("freed")));
    assert_null(aemp_map_set(aemp_arr_new(), "k", aemp_str("wrong type")));
    aemp_val_t *nil = NULL;
    aemp_msg_t *m = NULL;
    assert_int_equal(aemp_msg_from_val(&m, &nil), AEMP_ENOMEM);
    assert_null(m);
}

static void test_maps(void **state)
{
    (void)state;
    aemp_val_t *m = aemp_map_new();
    m = aemp_map_set(m, "b", aemp_int(1));
    m = aemp_map_set(m, "a", aemp_str("x"));
    m = aemp_map_set(m, "b", aemp_int(2)); /* replaced in place */
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        m = aemp_map_set(m, k, aemp_int(i));
    }
    assert_non_null(m);
    assert_int_equal(aemp_val_len(m), 22);
    const char *key;
    const aemp_val_t *val;
    int64_t v;
    assert_int_equal(aemp_map_at(m, 0, &key, &val), 0);
    assert_string_equal(key, "b");
    assert_int_equal(aemp_val_int(val, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(aemp_map_at(m, 1, &key, NULL), 0);
    assert_string_equal(key, "a");
    assert_int_equal(aemp_map_at(m, 22, &key, &val), AEMP_ERANGE);
    assert_int_equal(aemp_map_at(aemp_val_at(NULL, 0), 0, &key, &val),
                     AEMP_ETYPE);
    assert_int_equal(aemp_val_int(aemp_map_get(m, "k19"), &v), 0);
    assert_int_equal(v, 19);
    assert_null(aemp_map_get(m, "nope"));
    assert_null(aemp_map_get(m, NULL));
    assert_null(aemp_map_get(NULL, "a"));
    aemp_val_free(m);
}

static aemp_val_t *sample(void)
{
    aemp_val_t *inner = aemp_map_new();
    inner = aemp_map_set(inner, "list",
                         aemp_arr(aemp_double(1.5), aemp_null(), aemp_bool(0)));
    inner = aemp_map_set(inner, "bin", aemp_bytes("\0\1\2", 3));
    return aemp_arr(aemp_str("tag"), aemp_int(-7), inner, aemp_strn("n\0l", 3),
                    aemp_arr_new(), aemp_map_new());
}

static void test_copy_and_equal(void **state)
{
    (void)state;
    aemp_val_t *a = sample(), *b = aemp_val_copy(a);
    assert_non_null(b);
    assert_true(aemp_val_equal(a, b));
    /* a copy is an ordinary built value: it can grow (its item arrays must
     * have the capacity that pushing assumes) */
    for (int i = 0; i < 9; i++)
        b = aemp_arr_push(b, aemp_int(i));
    assert_non_null(b);
    assert_false(aemp_val_equal(a, b));
    aemp_val_t *m = aemp_val_copy(aemp_val_at(a, 2));
    for (int i = 0; i < 9; i++) {
        char k[16];
        snprintf(k, sizeof k, "n%d", i);
        m = aemp_map_set(m, k, aemp_int(i));
    }
    assert_non_null(m);
    assert_int_equal(aemp_val_len(m), 11);
    assert_null(aemp_val_copy(NULL));
    aemp_val_free(b);
    aemp_val_free(m);
    aemp_val_free(a);
}

static void test_equal_rules(void **state)
{
    (void)state;
    aemp_val_t *i = aemp_int(1), *d = aemp_double(1.0), *z = aemp_double(0.0),
               *nz = aemp_double(-0.0), *n1 = aemp_double(NAN),
               *n2 = aemp_double(NAN);
    assert_false(aemp_val_equal(i, d)); /* never across int and double */
    assert_true(aemp_val_equal(z, nz));
    assert_true(aemp_val_equal(n1, n2)); /* same bits */
    assert_true(aemp_val_equal(NULL, NULL));
    assert_false(aemp_val_equal(i, NULL));
    aemp_val_t *m1 = aemp_map_set(
        aemp_map_set(aemp_map_new(), "a", aemp_int(1)), "b", aemp_int(2));
    aemp_val_t *m2 = aemp_map_set(
        aemp_map_set(aemp_map_new(), "b", aemp_int(2)), "a", aemp_int(1));
    assert_false(aemp_val_equal(m1, m2)); /* maps are ordered */
    aemp_val_t *s1 = aemp_strn("a\0b", 3), *s2 = aemp_strn("a\0c", 3);
    assert_false(aemp_val_equal(s1, s2));
    aemp_val_t *vals[] = {i, d, z, nz, n1, n2, m1, m2, s1, s2};
    for (size_t k = 0; k < sizeof vals / sizeof *vals; k++)
        aemp_val_free(vals[k]);
}

/* ---- messages ---------------------------------------------------------- */

static void test_msg_new_letters(void **state)
{
    (void)state;
    aemp_val_t *v = aemp_arr(aemp_int(5));
    aemp_msg_t *m;
    assert_int_equal(aemp_msg_new(&m, "nbiIdsSyvv", 2, -3, (int64_t)INT64_MAX,
                                  2.5, "str", "S\0S", (size_t)3, "\0y",
                                  (size_t)2, v, (aemp_val_t *)NULL),
                     0);
    assert_int_equal(aemp_msg_len(m), 10);
    int b, i;
    int64_t I;
    double d;
    const char *s, *S;
    size_t Slen, ylen;
    const void *y;
    const aemp_val_t *vv, *vn;
    assert_int_equal(aemp_msg_unpack(m, "nbiIdsSyvv", &b, &i, &I, &d, &s, &S,
                                     &Slen, &y, &ylen, &vv, &vn),
                     0);
    assert_int_equal(b, 1);
    assert_int_equal(i, -3);
    assert_true(I == INT64_MAX);
    assert_true(d == 2.5);
    assert_string_equal(s, "str");
    assert_int_equal(Slen, 3);
    assert_memory_equal(S, "S\0S", 3);
    assert_int_equal(ylen, 2);
    assert_memory_equal(y, "\0y", 2);
    assert_true(aemp_val_equal(vv, v)); /* copied */
    assert_int_equal(aemp_val_type(vn), AEMP_T_NULL);
    aemp_val_free(v);
    aemp_msg_unref(m);
}

static void test_msg_new_nested(void **state)
{
    (void)state;
    aemp_msg_t *m;
    assert_int_equal(aemp_msg_new(&m, "s[i[s]{}]{s[n]i}", "a", 1, "b", "k1",
                                  "v", "k2", "k3", 3),
                     0);
    aemp_val_t *want =
        aemp_arr(aemp_str("a"),
                 aemp_arr(aemp_int(1), aemp_arr(aemp_str("b")), aemp_map_new()),
                 aemp_map_set(aemp_map_set(aemp_map_set(aemp_map_new(), "k1",
                                                        aemp_str("v")),
                                           "k2", aemp_arr(aemp_null())),
                              "k3", aemp_int(3)));
    assert_true(aemp_val_equal(aemp_msg_val(m), want));
    aemp_val_free(want);
    aemp_msg_unref(m);
    /* long pictures take the heap path */
    assert_int_equal(aemp_msg_new(&m, "iiiiiiiiiiiiiiiiiiiiiiii[ii]", 1, 2, 3,
                                  4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26),
                     0);
    assert_int_equal(aemp_msg_len(m), 25);
    aemp_msg_unref(m);
    assert_int_equal(aemp_msg_new(&m, ""), 0);
    assert_int_equal(aemp_msg_len(m), 0);
    aemp_msg_unref(m);
    assert_int_equal(aemp_msg_new(&m, NULL), 0);
    assert_int_equal(aemp_msg_len(m), 0);
    aemp_msg_unref(m);
}

static void test_msg_new_invalid(void **state)
{
    (void)state;
    aemp_msg_t *m = NULL;
    assert_int_equal(aemp_msg_new(&m, "x"), AEMP_EINVAL);
    assert_int_equal(aemp_msg_new(&m, "["), AEMP_EINVAL);
    assert_int_equal(aemp_msg_new(&m, "]"), AEMP_EINVAL);
    assert_int_equal(aemp_msg_new(&m, "[}"), AEMP_EINVAL);
    assert_int_equal(aemp_msg_new(&m, "{n]", "k"), AEMP_EINVAL);
    assert_int_equal(aemp_msg_new(&m, "-"), AEMP_EINVAL);
    assert_int_equal(aemp_msg_new(&m, "*"), AEMP_EINVAL);
    assert_int_equal(aemp_msg_new(&m, "s", (const char *)NULL), AEMP_EINVAL);
    assert_int_equal(aemp_msg_new(&m, "{n}", (const char *)NULL), AEMP_EINVAL);
    assert_int_equal(aemp_msg_new(&m, "y", (const void *)NULL, (size_t)1),
                     AEMP_EINVAL);
    assert_int_equal(aemp_msg_new(NULL, "n"), AEMP_EINVAL);
    assert_null(m);
}

static void test_unpack_rules(void **state)
{
    (void)state;
    aemp_msg_t *m;
    assert_int_equal(
        aemp_msg_new(&m, "sIId", "t", (int64_t)INT_MAX + 1, (int64_t)7, 1.5),
        0);
    const char *s = "untouched";
    int i = -1;
    double d = -1;
    int64_t I = -1;
    /* skip, rest */
    assert_int_equal(aemp_msg_unpack(m, "-*"), 0);
    assert_int_equal(aemp_msg_unpack(m, "s*", &s), 0);
    assert_string_equal(s, "t");
    assert_int_equal(aemp_msg_unpack(m, "--d*", &d), 0); /* int -> double */
    assert_true(d == 7.0);
    assert_int_equal(aemp_msg_unpack(m, "----"), 0);
    assert_int_equal(aemp_msg_unpack(m, "----*"), 0);
    /* failures write nothing */
    s = "untouched";
    d = -1;
    assert_int_equal(aemp_msg_unpack(m, "sIIs", &s, &I, &I, &s), AEMP_ETYPE);
    assert_string_equal(s, "untouched");
    assert_true(I == -1);
    assert_int_equal(aemp_msg_unpack(m, "si--", &s, &i), AEMP_ERANGE);
    assert_int_equal(i, -1); /* INT_MAX + 1 does not fit */
    assert_int_equal(aemp_msg_unpack(m, "s--", &s), AEMP_ERANGE);
    assert_int_equal(aemp_msg_unpack(m, "s----", &s), AEMP_ERANGE);
    assert_string_equal(s, "untouched");
    assert_int_equal(aemp_msg_unpack(m, "n---"), AEMP_ETYPE);
    assert_int_equal(aemp_msg_unpack(m, "b---", &i), AEMP_ETYPE);
    const void *y = NULL;
    size_t ylen = 0;
    assert_int_equal(aemp_msg_unpack(m, "y---", &y, &ylen), AEMP_ETYPE);
    assert_null(y);
    assert_int_equal(aemp_msg_unpack(m, "-s--", &s), AEMP_ETYPE);
    assert_int_equal(aemp_msg_unpack(m, "-*-"), AEMP_EINVAL);
    assert_int_equal(aemp_msg_unpack(m, "x"), AEMP_EINVAL);
    assert_int_equal(aemp_msg_unpack(NULL, ""), AEMP_EINVAL);
    assert_int_equal(aemp_msg_unpack(m, NULL), AEMP_EINVAL);
    assert_int_equal(i, -1);
    assert_true(d == -1);
    aemp_msg_unref(m);
}

static void test_msg_from_val(void **state)
{
    (void)state;
    aemp_val_t *v = sample(), *want = aemp_val_copy(v);
    aemp_msg_t *m = NULL;
    assert_int_equal(aemp_msg_from_val(&m, &v), 0);
    assert_null(v); /* taken */
    assert_true(aemp_val_equal(aemp_msg_val(m), want));
    assert_int_equal(aemp_msg_len(m), 6);
    assert_non_null(aemp_msg_at(m, 5));
    assert_null(aemp_msg_at(m, 6));
    assert_null(aemp_msg_at(NULL, 0));
    assert_int_equal(aemp_msg_len(NULL), 0);
    /* values borrowed from a message read like built ones */
    const aemp_val_t *inner = aemp_msg_at(m, 2);
    assert_int_equal(aemp_val_type(aemp_map_get(inner, "bin")), AEMP_T_BYTES);
    /* a copy of a borrowed value is an ordinary built one */
    aemp_val_t *c = aemp_val_copy(aemp_msg_val(m));
    assert_true(aemp_val_equal(c, aemp_msg_val(m)));
    c = aemp_arr_push(aemp_arr_push(c, aemp_int(7)), aemp_int(8));
    assert_non_null(c);
    assert_int_equal(aemp_val_len(c), 8);
    aemp_val_free(c);
    aemp_msg_unref(m);
    aemp_val_free(want);

    aemp_val_t *notarr = aemp_int(1);
    assert_int_equal(aemp_msg_from_val(&m, &notarr), AEMP_ETYPE);
    assert_non_null(notarr); /* still ours */
    aemp_val_free(notarr);
    assert_int_equal(aemp_msg_from_val(NULL, &notarr), AEMP_EINVAL);
}

static void test_ref_unref(void **state)
{
    (void)state;
    aemp_msg_t *m;
    assert_int_equal(aemp_msg_new(&m, "s", "kept"), 0);
    aemp_msg_t *r = aemp_msg_ref(m);
    assert_ptr_equal(r, m);
    aemp_msg_unref(m);
    const char *s;
    assert_int_equal(aemp_msg_unpack(r, "s", &s), 0); /* still alive */
    assert_string_equal(s, "kept");
    aemp_msg_unref(r);
    aemp_msg_unref(NULL);
}

/* The validator the encoders use; it skips ASCII 8 bytes at a time, so the
 * cases put multi-byte sequences on and across word boundaries. */
static void test_utf8_valid(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t len;
        bool ok;
    } cases[] = {
        {"", 0, true},
        {"a\0b", 3, true},
        {"0123456789abcdef\xc3\xa9", 18, true},
        {"0123456\xe2\x82\xac", 10, true},
        {"01234567\xf0\x9d\x84\x9e" "01234567", 20, true},
        {"\xc3", 1, false},
        {"01234567\xc3", 9, false},
        {"01234567\x80"
         "01234567",
         17, false},
        {"\xed\xa0\x80", 3, false},
        {"\xf4\x90\x80\x80", 4, false},
        {"\xc0\xaf", 2, false},
        {"\xe0\x80\xaf", 3, false},
        {"\xf8\x88\x80\x80\x80", 5, false},
        {"0123456789abcde\xff", 16, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (aemp__utf8_valid(cases[i].s, cases[i].len) != cases[i].ok)
            fail_msg("case %zu", i);
}

/* ---- allocation failure injection -------------------------------------- */

static int expect_ok_or_nomem(int rc)
{
    assert_true(rc == 0 || rc == AEMP_ENOMEM);
    return rc;
}

/* Encodes, decodes and streams m in framing f under the failing
 * allocator; any step may fail with AEMP_ENOMEM, nothing may leak. */
static void oom_codec(const aemp_msg_t *m, aemp_framing_t f)
{
    char *buf;
    size_t len;
    if (expect_ok_or_nomem(aemp_msg_encode(m, f, &buf, &len)) < 0)
        return;
    aemp_msg_t *d;
    if (expect_ok_or_nomem(aemp_msg_decode(&d, f, buf, len)) == 0) {
        if (f == AEMP_CBOR)
            assert_true(aemp_val_equal(aemp_msg_val(d), aemp_msg_val(m)));
        aemp_msg_unref(d);
    }
    aemp_reader_t *r;
    if (expect_ok_or_nomem(aemp_reader_new(&r, f, NULL)) == 0) {
        if (expect_ok_or_nomem(aemp_reader_feed(r, buf, len)) == 0) {
            int rc = aemp_reader_next(r, &d);
            if (rc == AEMP_ENOMEM) /* nothing changed: try again */
                rc = aemp_reader_next(r, &d);
            assert_int_equal(rc, 1);
            aemp_msg_unref(d);
        }
        aemp_reader_free(r);
    }
    aemp_free(buf);
}

static void oom_run(void)
{
    aemp_val_t *v = sample(), *c = aemp_val_copy(v);
    aemp_val_free(c);
    aemp_msg_t *m;
    if (v && expect_ok_or_nomem(aemp_msg_from_val(&m, &v)) == 0) {
        oom_codec(m, AEMP_JSON);
        oom_codec(m, AEMP_CBOR);
        aemp_msg_unref(m);
    }
    aemp_val_free(v);
    if (expect_ok_or_nomem(aemp_msg_new(&m, "s[i{sy}]nnnnnnnnnnnnnnnnnnnn", "x",
                                        1, "k", "v", "b", "Z", (size_t)1)) == 0)
        aemp_msg_unref(m);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    assert_true(helper_alloc_sweep(oom_run) > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_null_propagation),
        cmocka_unit_test(test_maps),
        cmocka_unit_test(test_copy_and_equal),
        cmocka_unit_test(test_equal_rules),
        cmocka_unit_test(test_msg_new_letters),
        cmocka_unit_test(test_msg_new_nested),
        cmocka_unit_test(test_msg_new_invalid),
        cmocka_unit_test(test_unpack_rules),
        cmocka_unit_test(test_msg_from_val),
        cmocka_unit_test(test_ref_unref),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
