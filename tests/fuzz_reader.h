/* The body shared by the reader fuzz targets (fuzz_json_reader.c,
 * fuzz_cbor_reader.c), which also run over the seed corpus as the ordinary
 * test test_fuzz_corpus.c.
 *
 * Input: two bytes choosing chunk sizes, then the byte stream.  Checked:
 *  - the stream fed at once and fed in chunks (pulling after every feed)
 *    gives the same messages and the same final result;
 *  - every message re-encodes, and decodes again to an equal message;
 *  - a stream that aemp__*_decode accepts as one packet comes out of the
 *    reader as exactly that message;
 *  - nothing crashes, leaks or trips the sanitizers. */
#ifndef AEMP_FUZZ_READER_H
#define AEMP_FUZZ_READER_H

#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Small limits, so that inputs of a few KiB reach them. */
static const aemp_limits_t fuzz_limits = {4096, 32, 64};

#define FUZZ_MAX_MSGS 256

typedef struct fuzz_out {
    aemp_msg_t *msgs[FUZZ_MAX_MSGS];
    size_t n;
    int rc; /* the last non-1 result of aemp_reader_next */
} fuzz_out_t;

/* Pulls every message available; false once the reader failed. */
static int fuzz_pull(aemp_reader_t *r, fuzz_out_t *o)
{
    aemp_msg_t *m;
    while ((o->rc = aemp_reader_next(r, &m)) == 1) {
        if (o->n < FUZZ_MAX_MSGS)
            o->msgs[o->n++] = m;
        else
            aemp_msg_unref(m);
    }
    FUZZ_CHECK(o->rc == 0 || o->rc == AEMP_EPROTO || o->rc == AEMP_ELIMIT);
    FUZZ_CHECK((o->rc < 0) == (aemp_reader_error(r)[0] != 0));
    return o->rc == 0;
}

/* Feeds data in chunks of the two sizes alternately (0: all at once). */
static void fuzz_read(aemp_framing_t f, const uint8_t *data, size_t size,
                      const size_t chunk[2], fuzz_out_t *o)
{
    aemp_reader_t *r;
    FUZZ_CHECK(aemp_reader_new(&r, f, &fuzz_limits) == 0);
    o->n = 0;
    o->rc = 0;
    for (size_t off = 0, i = 0; off < size; i++) {
        size_t c = chunk[i % 2] ? chunk[i % 2] : size;
        if (c > size - off)
            c = size - off;
        int rc = aemp_reader_feed(r, data + off, c);
        FUZZ_CHECK(rc == 0 || rc == AEMP_ELIMIT);
        off += c;
        if (!fuzz_pull(r, o))
            break;
    }
    if (size == 0)
        fuzz_pull(r, o);
    aemp_reader_free(r);
}

static void fuzz_out_free(fuzz_out_t *o)
{
    for (size_t i = 0; i < o->n; i++)
        aemp_msg_unref(o->msgs[i]);
}

/* Bytes b as JSON brings them back: text of code points U+0000..U+00FF. */
static int fuzz_latin1_equal(const aemp_val_t *b, const aemp_val_t *s)
{
    const unsigned char *p, *q;
    size_t n, m, j = 0;
    if (aemp_val_bytes(b, (const void **)&p, &n) < 0 ||
        aemp_val_str(s, (const char **)&q, &m) < 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x80) {
            if (j >= m || q[j++] != p[i])
                return 0;
        } else if (j + 1 >= m || q[j] != (0xc0 | p[i] >> 6) ||
                   q[j + 1] != (0x80 | (p[i] & 0x3f))) {
            return 0;
        } else {
            j += 2;
        }
    }
    return j == m;
}

/* aemp_val_equal, except that bytes in a match their JSON form in c. */
static int fuzz_json_equal(const aemp_val_t *a, const aemp_val_t *c)
{
    aemp_type_t t = aemp_val_type(a);
    if (t == AEMP_T_BYTES)
        return fuzz_latin1_equal(a, c);
    if (t != AEMP_T_ARR && t != AEMP_T_MAP)
        return aemp_val_equal(a, c);
    if (aemp_val_type(c) != t || aemp_val_len(a) != aemp_val_len(c))
        return 0;
    for (size_t i = 0; i < aemp_val_len(a); i++) {
        const aemp_val_t *x = aemp_val_at(a, i), *y = aemp_val_at(c, i);
        const char *kx = NULL, *ky = NULL;
        if (t == AEMP_T_MAP) {
            aemp_map_at(a, i, &kx, &x);
            aemp_map_at(c, i, &ky, &y);
            if (strcmp(kx, ky) != 0) /* keys are text: NUL-free in JSON */
                return 0;
        }
        if (!fuzz_json_equal(x, y))
            return 0;
    }
    return 1;
}

/* Maps JSON cannot carry as they are: jansson merges duplicate keys and
 * rejects keys containing U+0000.  (Reads the nodes directly: the API does
 * not give key lengths.) */
static int fuzz_json_lossy(const aemp_val_t *v)
{
    if (v->type == AEMP_T_ARR) {
        for (size_t i = 0; i < v->len; i++)
            if (fuzz_json_lossy(&v->u.items[i]))
                return 1;
        return 0;
    }
    for (size_t i = 0; v->type == AEMP_T_MAP && i < v->len; i++) {
        const aemp_val_t *k = &v->u.items[2 * i];
        if (memchr(k->u.s, 0, k->len) || fuzz_json_lossy(k + 1))
            return 1;
        for (size_t j = 0; j < i; j++) {
            const aemp_val_t *k2 = &v->u.items[2 * j];
            if (k2->len == k->len && memcmp(k2->u.s, k->u.s, k->len) == 0)
                return 1;
        }
    }
    return 0;
}

/* m encodes in framing f and decodes to an equal message. */
static void fuzz_reencode(const aemp_msg_t *m, aemp_framing_t f)
{
    aemp__buf_t b = {NULL, 0, 0};
    int rc = f == AEMP_JSON ? aemp__json_encode(&b, "p", 1, m)
                            : aemp__cbor_encode(&b, "p", 1, m);
    if (rc == AEMP_EINVAL) { /* NaN or infinity from cbor, in JSON */
        FUZZ_CHECK(f == AEMP_JSON);
        aemp__buf_free(&b);
        return;
    }
    FUZZ_CHECK(rc == 0);
    if (f == AEMP_JSON && fuzz_json_lossy(aemp_msg_val(m))) {
        aemp__buf_free(&b);
        return;
    }
    /* floats may grow (not max_packet), and the prefix is one more item */
    aemp_limits_t lim = fuzz_limits;
    lim.max_packet = 0;
    lim.max_items++;
    aemp__limits_resolve(&lim);
    aemp_msg_t *d = NULL;
    rc = f == AEMP_JSON ? aemp__json_decode(&d, b.data, b.len, &lim, NULL, 0)
                        : aemp__cbor_decode(&d, b.data, b.len, &lim, NULL, 0);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(aemp_msg_len(d) == aemp_msg_len(m) + 1);
    for (size_t i = 0; i < aemp_msg_len(m); i++) {
        const aemp_val_t *a = aemp_msg_at(m, i), *c = aemp_msg_at(d, i + 1);
        FUZZ_CHECK(f == AEMP_JSON ? fuzz_json_equal(a, c)
                                  : aemp_val_equal(a, c));
    }
    aemp_msg_unref(d);
    aemp__buf_free(&b);
}

static int fuzz_reader_run(aemp_framing_t f, const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const size_t whole[2] = {0, 0};
    const size_t chunk[2] = {1 + data[0] % 16, 1 + (size_t)data[1] * 3};
    data += 2;
    size -= 2;
    fuzz_out_t a, b;
    fuzz_read(f, data, size, whole, &a);
    fuzz_read(f, data, size, chunk, &b);
    FUZZ_CHECK(a.n == b.n && a.rc == b.rc);
    for (size_t i = 0; i < a.n; i++) {
        FUZZ_CHECK(
            aemp_val_equal(aemp_msg_val(a.msgs[i]), aemp_msg_val(b.msgs[i])));
        fuzz_reencode(a.msgs[i], AEMP_JSON);
        fuzz_reencode(a.msgs[i], AEMP_CBOR);
    }
    aemp_msg_t *m = NULL;
    int rc = f == AEMP_JSON ? aemp__json_decode(&m, (const char *)data, size,
                                                &fuzz_limits, NULL, 0)
                            : aemp__cbor_decode(&m, (const char *)data, size,
                                                &fuzz_limits, NULL, 0);
    FUZZ_CHECK(rc == 0 || rc == AEMP_EPROTO || rc == AEMP_ELIMIT);
    if (rc == 0 && size <= fuzz_limits.max_packet) {
        FUZZ_CHECK(a.n == 1 && a.rc == 0);
        FUZZ_CHECK(aemp_val_equal(aemp_msg_val(m), aemp_msg_val(a.msgs[0])));
    }
    aemp_msg_unref(m);
    fuzz_out_free(&a);
    fuzz_out_free(&b);
    return 0;
}

#endif
