/* The JSON decoder as it was before src/codec_json.c parsed by hand:
 * jansson's json_loadb(JSON_ALLOW_NUL), then the json_t tree measured and
 * copied into one message block.  Kept as the reference that the hand-
 * written decoder must match (tests/test_json_fast.c,
 * tests/fuzz_json_diff.c): same acceptance, same error code, same values
 * to the bit, and the same reason where the old one was not jansson's.
 *
 * json_diff() runs both over one input; it returns 0 when they agree, else
 * -1 with what differs in the caller's buffer. */
#ifndef AEMP_JSON_REF_H
#define AEMP_JSON_REF_H

#include "codec.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

typedef struct ref_dec {
    const aemp_limits_t *lim;
    size_t nodes, text;
    const char *why;
} ref_dec_t;

static int ref_bad(ref_dec_t *d, int rc, const char *why)
{
    d->why = why;
    return rc;
}

static int ref_measure(ref_dec_t *d, const json_t *j, size_t depth);

static int ref_container(ref_dec_t *d, size_t n, size_t depth)
{
    if (depth > d->lim->max_depth)
        return ref_bad(d, AEMP_ELIMIT, "nesting deeper than max_depth");
    if (n > d->lim->max_items)
        return ref_bad(d, AEMP_ELIMIT, "more than max_items elements");
    return 0;
}

static int ref_text(ref_dec_t *d, size_t len)
{
    if (len > AEMP__MAX_LEN)
        return ref_bad(d, AEMP_ELIMIT, "string longer than 4 GiB");
    d->text += len + 1;
    return 0;
}

static int ref_measure_object(ref_dec_t *d, json_t *j, size_t depth)
{
    int rc = ref_container(d, json_object_size(j), depth);
    d->nodes += 2 * json_object_size(j);
    for (void *it = json_object_iter(j); it && rc == 0;
         it = json_object_iter_next(j, it)) {
        rc = ref_text(d, json_object_iter_key_len(it));
        if (rc == 0)
            rc = ref_measure(d, json_object_iter_value(it), depth + 1);
    }
    return rc;
}

static int ref_measure(ref_dec_t *d, const json_t *cj, size_t depth)
{
    json_t *j = (json_t *)cj;
    switch (json_typeof(j)) {
    case JSON_STRING: return ref_text(d, json_string_length(j));
    case JSON_OBJECT: return ref_measure_object(d, j, depth);
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        int rc = ref_container(d, n, depth);
        d->nodes += n;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = ref_measure(d, json_array_get(j, i), depth + 1);
        return rc;
    }
    default: return 0;
    }
}

static void ref_fill(struct aemp_val *dst, json_t *j, aemp__fill_t *f);

static void ref_fill_text(struct aemp_val *dst, const char *s, size_t len,
                          aemp__fill_t *f)
{
    dst->type = AEMP_T_STR;
    dst->len = (uint32_t)len;
    dst->u.s = aemp__fill_text(f, s, len);
}

static void ref_fill_object(struct aemp_val *dst, json_t *j, aemp__fill_t *f)
{
    dst->type = AEMP_T_MAP;
    dst->len = (uint32_t)json_object_size(j);
    struct aemp_val *kv = dst->u.items =
        aemp__fill_nodes(f, 2 * (size_t)dst->len);
    for (void *it = json_object_iter(j); it;
         it = json_object_iter_next(j, it), kv += 2) {
        memset(kv, 0, sizeof *kv);
        ref_fill_text(kv, json_object_iter_key(it),
                      json_object_iter_key_len(it), f);
        ref_fill(kv + 1, json_object_iter_value(it), f);
    }
}

static void ref_fill(struct aemp_val *dst, json_t *j, aemp__fill_t *f)
{
    memset(dst, 0, sizeof *dst);
    switch (json_typeof(j)) {
    case JSON_NULL: dst->type = AEMP_T_NULL; break;
    case JSON_TRUE:
    case JSON_FALSE:
        dst->type = AEMP_T_BOOL;
        dst->u.i = json_is_true(j);
        break;
    case JSON_INTEGER:
        dst->type = AEMP_T_INT;
        dst->u.i = json_integer_value(j);
        break;
    case JSON_REAL:
        dst->type = AEMP_T_DOUBLE;
        dst->u.d = json_real_value(j);
        break;
    case JSON_STRING:
        ref_fill_text(dst, json_string_value(j), json_string_length(j), f);
        break;
    case JSON_OBJECT: ref_fill_object(dst, j, f); break;
    case JSON_ARRAY:
        dst->type = AEMP_T_ARR;
        dst->len = (uint32_t)json_array_size(j);
        dst->u.items = aemp__fill_nodes(f, dst->len);
        for (size_t i = 0; i < dst->len; i++)
            ref_fill(&dst->u.items[i], json_array_get(j, i), f);
        break;
    }
}

static int ref_load_error(const json_error_t *e, char *errbuf, size_t errlen)
{
    int rc = AEMP_EPROTO;
    if (json_error_code(e) == json_error_out_of_memory)
        rc = AEMP_ENOMEM;
    else if (json_error_code(e) == json_error_stack_overflow)
        rc = AEMP_ELIMIT;
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "JSON: %s (at byte %d)", e->text, e->position);
    return rc;
}

static int ref_convert(aemp_msg_t **out, json_t *root, const aemp_limits_t *lim,
                       char *errbuf, size_t errlen)
{
    ref_dec_t d = {.lim = lim};
    size_t n = json_array_size(root);
    aemp__fill_t f;
    aemp_msg_t *m = NULL;
    int rc = json_is_array(root)
                 ? ref_measure(&d, root, 1)
                 : ref_bad(&d, AEMP_EPROTO, "top-level value is not an array");
    if (rc == 0 &&
        (rc = aemp__msg_alloc_from(NULL, &m, d.nodes, d.text, n, &f)) < 0)
        d.why = "out of memory";
    if (rc < 0) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "JSON: %s", d.why);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        ref_fill(&m->root.u.items[i], json_array_get(root, i), &f);
    *out = m;
    return 0;
}

static int ref_json_decode(aemp_msg_t **out, const char *buf, size_t len,
                           const aemp_limits_t *lim, char *errbuf,
                           size_t errlen)
{
    /* jansson loses a raw NUL byte read just past a number or literal
     * ("[1\0]" is [1] to it); the decoder refuses it like any stray byte.
     * So jansson gets \x01 for every raw NUL: a byte it refuses wherever
     * it refuses a NUL, and also there. */
    char *copy = malloc(len + 1);
    if (!copy)
        return AEMP_ENOMEM;
    for (size_t i = 0; i < len; i++)
        copy[i] = buf[i] ? buf[i] : '\x01';
    json_error_t e;
    json_t *root = json_loadb(copy, len, JSON_ALLOW_NUL, &e);
    free(copy);
    if (!root)
        return ref_load_error(&e, errbuf, errlen);
    int rc = ref_convert(out, root, lim, errbuf, errlen);
    json_decref(root);
    return rc;
}

/* ---- comparing --------------------------------------------------------- */

/* Exactly the same values: doubles to the bit (-0.0 is not 0.0), strings
 * and keys byte for byte, map pairs in the same order. */
static int ref_val_same(const struct aemp_val *a, const struct aemp_val *b)
{
    if (a->type != b->type || a->len != b->len)
        return 0;
    switch ((aemp_type_t)a->type) {
    case AEMP_T_NULL: return 1;
    case AEMP_T_BOOL:
    case AEMP_T_INT: return a->u.i == b->u.i;
    case AEMP_T_DOUBLE: return memcmp(&a->u.d, &b->u.d, sizeof a->u.d) == 0;
    case AEMP_T_STR:
    case AEMP_T_BYTES:
        return memcmp(a->u.s, b->u.s, a->len) == 0 && a->u.s[a->len] == 0 &&
               b->u.s[b->len] == 0;
    case AEMP_T_ARR:
    case AEMP_T_MAP: {
        size_t n = a->type == AEMP_T_MAP ? 2 * (size_t)a->len : a->len;
        for (size_t i = 0; i < n; i++)
            if (!ref_val_same(&a->u.items[i], &b->u.items[i]))
                return 0;
        return 1;
    }
    }
    return 0;
}

/* The reason part of an error text: jansson's own reasons differ in words
 * and positions, so only the old converter's (no position) are compared. */
static int ref_why_comparable(const char *why)
{
    return strstr(why, "(at byte") == NULL;
}

static int json_diff(const char *buf, size_t len, const aemp_limits_t *lim,
                     char *what, size_t whatlen)
{
    char e1[256] = "", e2[256] = "";
    aemp_msg_t *m1 = NULL, *m2 = NULL;
    int rc1 = ref_json_decode(&m1, buf, len, lim, e1, sizeof e1);
    int rc2 = aemp__json_decode(&m2, buf, len, lim, e2, sizeof e2);
    int ok = 1;
    if (rc1 != rc2)
        ok = 0;
    else if (rc1 == 0)
        ok = ref_val_same(&m1->root, &m2->root);
    else if (ref_why_comparable(e1))
        ok = strcmp(e1, e2) == 0;
    if (!ok)
        snprintf(what, whatlen, "jansson %d \"%s\" / hand-written %d \"%s\"%s",
                 rc1, e1, rc2, e2,
                 rc1 == 0 && rc2 == 0 ? " (values differ)" : "");
    aemp_msg_unref(m1);
    aemp_msg_unref(m2);
    return ok ? 0 : -1;
}

#endif
