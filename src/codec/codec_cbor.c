/* The cbor framing (PROTOCOL.md §6, RFC 8949): encoder, decoder and the
 * reader's packet scanner.
 *
 * Encoding uses libcbor's cbor_encode_* writers (always definite lengths).
 * Decoding does not use libcbor: its streaming decoder (0.8) rejects valid
 * tags 6..20 (initial bytes 0xc6..0xd4), its `required` overflows for 64-bit
 * string lengths, and one indirect call per item costs more than reading
 * the head inline.  The decoder makes two passes over a complete packet:
 * the first validates everything and measures nodes and text, allocating
 * nothing but (rarely) a list of indefinite-length counts; the second fills
 * one message block and cannot fail. */
#include "codec.h"

#include <cbor.h>
#include <stdio.h>
#include <string.h>

/* ---- encoding ---------------------------------------------------------- */

/* Room for n more bytes: inline check, out-of-line growth. */
static inline int room(aemp__buf_t *b, size_t n)
{
    return b->cap - b->len >= n ? 0 : aemp__buf_reserve(b, n);
}

#define HEAD_MAX 9 /* initial byte + 8-byte argument */

static unsigned char *out_at(aemp__buf_t *b)
{
    return (unsigned char *)b->data + b->len;
}

static int enc_text(aemp__buf_t *b, const char *s, size_t len, bool text)
{
    if (text && !aemp__utf8_valid(s, len))
        return AEMP_EINVAL;
    if (room(b, HEAD_MAX + len) < 0)
        return AEMP_ENOMEM;
    b->len += text ? cbor_encode_string_start(len, out_at(b), HEAD_MAX)
                   : cbor_encode_bytestring_start(len, out_at(b), HEAD_MAX);
    if (len)
        memcpy(b->data + b->len, s, len);
    b->len += len;
    return 0;
}

static int enc_val(aemp__buf_t *b, const aemp_val_t *v);

static int enc_items(aemp__buf_t *b, const aemp_val_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = enc_val(b, &items[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int enc_val(aemp__buf_t *b, const aemp_val_t *v)
{
    if (v->type == AEMP_T_STR || v->type == AEMP_T_BYTES)
        return enc_text(b, v->u.s, v->len, v->type == AEMP_T_STR);
    if (room(b, HEAD_MAX) < 0)
        return AEMP_ENOMEM;
    unsigned char *o = out_at(b);
    switch ((aemp_type_t)v->type) {
    case AEMP_T_NULL: b->len += cbor_encode_null(o, HEAD_MAX); return 0;
    case AEMP_T_BOOL: b->len += cbor_encode_bool(v->u.i, o, HEAD_MAX); return 0;
    case AEMP_T_INT:
        /* negint n stands for -1 - n, which is ~i in two's complement */
        b->len += v->u.i >= 0
                      ? cbor_encode_uint((uint64_t)v->u.i, o, HEAD_MAX)
                      : cbor_encode_negint(~(uint64_t)v->u.i, o, HEAD_MAX);
        return 0;
    case AEMP_T_DOUBLE:
        b->len += cbor_encode_double(v->u.d, o, HEAD_MAX);
        return 0;
    case AEMP_T_ARR:
        b->len += cbor_encode_array_start(v->len, o, HEAD_MAX);
        return enc_items(b, v->u.items, v->len);
    case AEMP_T_MAP:
        b->len += cbor_encode_map_start(v->len, o, HEAD_MAX);
        return enc_items(b, v->u.items, 2 * (size_t)v->len);
    default: return AEMP_EINVAL;
    }
}

int aemp__cbor_encode(aemp__buf_t *b, const char *prefix, size_t prefix_len,
                      const aemp_msg_t *m)
{
    size_t start = b->len, n = (size_t)m->root.len + (prefix != NULL);
    int rc = room(b, HEAD_MAX);
    if (rc == 0) {
        b->len += cbor_encode_array_start(n, out_at(b), HEAD_MAX);
        if (prefix)
            rc = enc_text(b, prefix, prefix_len, true);
    }
    if (rc == 0)
        rc = enc_items(b, m->root.u.items, m->root.len);
    if (rc < 0)
        b->len = start;
    return rc;
}

/* ---- heads ------------------------------------------------------------- */

enum { M_UINT, M_NEGINT, M_BYTES, M_TEXT, M_ARRAY, M_MAP, M_TAG, M_SIMPLE };
#define AI_INDEF 31
#define BREAK_BYTE 0xff

/* The head of a data item: initial byte and argument. */
typedef struct head {
    uint8_t ib, major, ai, hlen; /* ib: the initial byte */
    uint64_t arg;
} head_t;

/* Reads the head at p (n bytes available): 1, 0 if more bytes are needed,
 * -1 for reserved additional information (28..30). */
static inline int head_read(const uint8_t *p, size_t n, head_t *h)
{
    if (n == 0)
        return 0;
    h->ib = p[0];
    h->major = p[0] >> 5;
    h->ai = p[0] & 31;
    h->hlen = 1;
    h->arg = h->ai;
    if (h->ai < 24)
        return 1;
    if (h->ai > 27)
        return h->ai == AI_INDEF ? 1 : -1;
    unsigned w = 1u << (h->ai - 24);
    if (n <= w)
        return 0;
    uint64_t a = 0;
    for (unsigned i = 1; i <= w; i++)
        a = a << 8 | p[i];
    h->arg = a;
    h->hlen = (uint8_t)(1 + w);
    return 1;
}

/* Indefinite length is defined for strings, containers and break only. */
static inline bool indef_ok(const head_t *h)
{
    return h->ai != AI_INDEF || (h->major >= M_BYTES && h->major != M_TAG);
}

/* (Tested on the initial byte: comparing major and ai together would read
 * two separately stored bytes as one word, which stalls store forwarding
 * on the decoder's hottest path.) */
static inline bool is_break(const head_t *h)
{
    return h->ib == BREAK_BYTE;
}

/* ---- decoding, pass 1: validate and measure ---------------------------- */

#define INDEF_INLINE 16

typedef struct dec {
    const uint8_t *p, *start, *end;
    const aemp_limits_t *lim;
    size_t nodes, text;
    const char *why;
    /* element counts of indefinite-length containers, in pre-order, so
     * that pass 2 knows a container's size when it starts */
    uint32_t *indef, indef_inline[INDEF_INLINE];
    size_t nindef, capindef, kindef;
} dec_t;

static int bad(dec_t *d, int rc, const char *why)
{
    d->why = why;
    return rc;
}

/* Reads the next item's head, passing over tags (ignored, their item
 * kept).  A break is not an item: the callers that allow one look for it
 * first. */
static int next_head(dec_t *d, head_t *h)
{
    for (;;) {
        int rc = head_read(d->p, (size_t)(d->end - d->p), h);
        if (rc == 0)
            return bad(d, AEMP_EPROTO, "truncated data item");
        if (rc < 0 || !indef_ok(h))
            return bad(d, AEMP_EPROTO, "reserved additional information");
        d->p += h->hlen;
        if (h->major != M_TAG)
            break;
    }
    if (is_break(h))
        return bad(d, AEMP_EPROTO, "unexpected break");
    return 0;
}

static size_t left(const dec_t *d)
{
    return (size_t)(d->end - d->p);
}

static bool at_break(dec_t *d)
{
    if (d->p < d->end && *d->p == BREAK_BYTE) {
        d->p++;
        return true;
    }
    return false;
}

/* One definite string (or chunk) of length arg at d->p; text: it must be
 * UTF-8 (a text string, or any map key). */
static int chk_chunk(dec_t *d, const head_t *h, uint64_t *total, bool text)
{
    if (h->arg > left(d))
        return bad(d, AEMP_EPROTO, "string length beyond the end of data");
    if (text && !aemp__utf8_valid((const char *)d->p, h->arg))
        return bad(d, AEMP_EPROTO, "invalid UTF-8 in a text string");
    d->p += h->arg;
    *total += h->arg;
    return 0;
}

static int chk_string(dec_t *d, const head_t *h, bool key)
{
    uint64_t total = 0;
    int rc = 0;
    bool text = key || h->major == M_TEXT;
    if (h->ai != AI_INDEF) {
        rc = chk_chunk(d, h, &total, text);
    } else {
        head_t c = {0, 0, 0, 0, 0};
        while (rc == 0 && !at_break(d)) {
            if (head_read(d->p, left(d), &c) != 1 || c.major != h->major ||
                c.ai == AI_INDEF)
                return bad(d, AEMP_EPROTO, "bad chunk in indefinite string");
            d->p += c.hlen;
            rc = chk_chunk(d, &c, &total, text);
        }
    }
    if (rc == 0 && total > AEMP__MAX_LEN)
        return bad(d, AEMP_ELIMIT, "string longer than 4 GiB");
    d->text += (size_t)total + 1;
    return rc;
}

static int chk_simple(dec_t *d, const head_t *h)
{
    if ((h->ai >= 20 && h->ai <= 23) || (h->ai >= 25 && h->ai <= 27))
        return 0; /* false, true, null, undefined, floats */
    return bad(d, AEMP_EPROTO, "unsupported simple value");
}

static int chk_item(dec_t *d, size_t depth, bool key);

/* Reserves the pre-order slot of an indefinite container's count. */
static int indef_slot(dec_t *d, size_t *k)
{
    if (d->nindef == d->capindef) {
        size_t cap = 2 * d->capindef;
        uint32_t *p = d->indef == d->indef_inline
                          ? aemp__malloc(cap * sizeof *p)
                          : aemp__reallocarray(d->indef, cap, sizeof *p);
        if (!p)
            return bad(d, AEMP_ENOMEM, "out of memory");
        if (d->indef == d->indef_inline)
            memcpy(p, d->indef_inline, sizeof d->indef_inline);
        d->indef = p;
        d->capindef = cap;
    }
    *k = d->nindef++;
    return 0;
}

/* The elements of an array (map: the pairs) whose head is h. */
static int chk_elems(dec_t *d, const head_t *h, size_t depth)
{
    bool map = h->major == M_MAP;
    size_t k = 0, n = 0;
    int rc = 0;
    if (h->ai == AI_INDEF && (rc = indef_slot(d, &k)) < 0)
        return rc;
    for (; rc == 0; n++) {
        if (h->ai == AI_INDEF ? at_break(d) : n == h->arg)
            break;
        if (n == d->lim->max_items)
            return bad(d, AEMP_ELIMIT, "more than max_items elements");
        rc = chk_item(d, depth, map);
        if (rc == 0 && map)
            rc = chk_item(d, depth, false);
    }
    d->nodes += map ? 2 * n : n;
    if (h->ai == AI_INDEF)
        d->indef[k] = (uint32_t)n;
    return rc;
}

static int chk_container(dec_t *d, const head_t *h, size_t depth)
{
    if (depth >= d->lim->max_depth)
        return bad(d, AEMP_ELIMIT, "nesting deeper than max_depth");
    if (h->ai != AI_INDEF && h->arg > d->lim->max_items)
        return bad(d, AEMP_ELIMIT, "more than max_items elements");
    /* every element takes at least one byte: refuse before looping */
    if (h->ai != AI_INDEF && h->arg > left(d))
        return bad(d, AEMP_EPROTO, "container length beyond the end of data");
    return chk_elems(d, h, depth + 1);
}

static int chk_item(dec_t *d, size_t depth, bool key)
{
    head_t h;
    int rc = next_head(d, &h);
    if (rc < 0)
        return rc;
    /* Perl 2.x writes its keys as byte strings too: UTF-8 ones count */
    if (key && h.major != M_TEXT && h.major != M_BYTES)
        return bad(d, AEMP_EPROTO, "map key is not a string");
    switch (h.major) {
    case M_UINT:
    case M_NEGINT:
        return h.arg > INT64_MAX ? bad(d, AEMP_EPROTO, "integer out of range")
                                 : 0;
    case M_BYTES:
    case M_TEXT: return chk_string(d, &h, key);
    case M_ARRAY:
    case M_MAP: return chk_container(d, &h, depth);
    default: return chk_simple(d, &h);
    }
}

static int chk_root(dec_t *d, size_t *nroot)
{
    head_t h;
    int rc = next_head(d, &h);
    if (rc == 0 && h.major != M_ARRAY)
        rc = bad(d, AEMP_EPROTO, "top-level item is not an array");
    if (rc == 0)
        rc = chk_container(d, &h, 0);
    if (rc == 0 && d->p != d->end)
        rc = bad(d, AEMP_EPROTO, "trailing bytes after the packet");
    if (rc == 0)
        *nroot = h.ai == AI_INDEF ? d->indef[0] : (size_t)h.arg;
    return rc;
}

/* ---- decoding, pass 2: fill (input known to be valid) ------------------ */

/* RFC 8949 appendix D, by assembling the double's bits: exact, no libm. */
static double half_to_double(uint16_t half)
{
    uint64_t sign = (uint64_t)(half >> 15) << 63;
    unsigned exp = (half >> 10) & 0x1f, mant = half & 0x3ff;
    double d;
    if (exp == 0) {
        d = mant * 0x1p-24;
        return sign ? -d : d;
    }
    uint64_t e = exp == 31 ? 0x7ff : exp + (1023 - 15);
    uint64_t bits = sign | e << 52 | (uint64_t)mant << 42;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static double float_of(const head_t *h)
{
    if (h->ai == 25)
        return half_to_double((uint16_t)h->arg);
    if (h->ai == 26) {
        uint32_t bits = (uint32_t)h->arg;
        float f;
        memcpy(&f, &bits, sizeof f);
        return f;
    }
    double d;
    memcpy(&d, &h->arg, sizeof d);
    return d;
}

static void fill_simple(struct aemp_val *dst, const head_t *h)
{
    if (h->ai == 20 || h->ai == 21) {
        dst->type = AEMP_T_BOOL;
        dst->u.i = h->ai == 21;
    } else if (h->ai >= 25) {
        dst->type = AEMP_T_DOUBLE;
        dst->u.d = float_of(h);
    } else {
        dst->type = AEMP_T_NULL; /* null and undefined */
    }
}

static void fill_string(dec_t *d, struct aemp_val *dst, const head_t *h,
                        aemp__fill_t *f)
{
    dst->type = h->major == M_TEXT ? AEMP_T_STR : AEMP_T_BYTES;
    dst->u.s = f->text;
    size_t total = 0;
    if (h->ai != AI_INDEF) {
        total = (size_t)h->arg;
        memcpy(f->text, d->p, total);
        d->p += total;
    } else {
        head_t c = {0, 0, 0, 0, 0};
        while (!at_break(d)) {
            head_read(d->p, left(d), &c);
            memcpy(f->text + total, d->p + c.hlen, (size_t)c.arg);
            d->p += c.hlen + (size_t)c.arg;
            total += (size_t)c.arg;
        }
    }
    f->text[total] = 0;
    f->text += total + 1;
    dst->len = (uint32_t)total;
}

static void fill_item(dec_t *d, struct aemp_val *dst, aemp__fill_t *f);

/* The elements of the container whose head is h into items[]. */
static void fill_elems(dec_t *d, const head_t *h, struct aemp_val *items,
                       size_t n, aemp__fill_t *f)
{
    for (size_t i = 0; i < n; i++) {
        fill_item(d, &items[i], f);
        if (h->major == M_MAP && !(i & 1))
            items[i].type = AEMP_T_STR; /* a key (checked: UTF-8) */
    }
    if (h->ai == AI_INDEF)
        d->p++; /* the break */
}

static size_t count_of(dec_t *d, const head_t *h)
{
    return h->ai == AI_INDEF ? d->indef[d->kindef++] : (size_t)h->arg;
}

static void fill_item(dec_t *d, struct aemp_val *dst, aemp__fill_t *f)
{
    head_t h;
    next_head(d, &h);
    memset(dst, 0, sizeof *dst);
    switch (h.major) {
    case M_UINT:
        dst->type = AEMP_T_INT;
        dst->u.i = (int64_t)h.arg;
        break;
    case M_NEGINT:
        dst->type = AEMP_T_INT;
        dst->u.i = -1 - (int64_t)h.arg;
        break;
    case M_BYTES:
    case M_TEXT: fill_string(d, dst, &h, f); break;
    case M_ARRAY:
    case M_MAP: {
        size_t n = count_of(d, &h), nn = h.major == M_MAP ? 2 * n : n;
        dst->type = h.major == M_MAP ? AEMP_T_MAP : AEMP_T_ARR;
        dst->len = (uint32_t)n;
        dst->u.items = aemp__fill_nodes(f, nn);
        fill_elems(d, &h, dst->u.items, nn, f);
        break;
    }
    default: fill_simple(dst, &h); break;
    }
}

/* ---- decoding: the whole packet ---------------------------------------- */

static void dec_error(const dec_t *d, char *errbuf, size_t errlen)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "CBOR: %s (at byte %zu)", d->why,
                 (size_t)(d->p - d->start));
}

int aemp__cbor_decode(aemp_msg_t **out, const char *buf, size_t len,
                      const aemp_limits_t *lim, char *errbuf, size_t errlen)
{
    return aemp__cbor_decode_from(NULL, out, buf, len, lim, errbuf, errlen);
}

int aemp__cbor_decode_from(aemp__blocks_t *bc, aemp_msg_t **out,
                           const char *buf, size_t len,
                           const aemp_limits_t *lim, char *errbuf,
                           size_t errlen)
{
    dec_t d = {.p = (const uint8_t *)buf,
               .start = (const uint8_t *)buf,
               .end = (const uint8_t *)buf + len,
               .lim = lim,
               .capindef = INDEF_INLINE};
    d.indef = d.indef_inline;
    size_t nroot = 0;
    aemp__fill_t f;
    aemp_msg_t *m = NULL;
    int rc = chk_root(&d, &nroot);
    if (rc == 0 &&
        (rc = aemp__msg_alloc_from(bc, &m, d.nodes, d.text, nroot, &f)) < 0)
        d.why = "out of memory";
    if (rc == 0) {
        head_t h;
        d.p = d.start;
        next_head(&d, &h);
        fill_elems(&d, &h, m->root.u.items, count_of(&d, &h), &f);
        *out = m;
    } else {
        dec_error(&d, errbuf, errlen);
    }
    if (d.indef != d.indef_inline)
        aemp__free(d.indef);
    return rc;
}

/* ---- the reader's scanner ---------------------------------------------- */

static int scan_bad(const char **why, int rc, const char *text)
{
    *why = text;
    return rc;
}

/* An item ended: count it in its container and close finished ones.  1 when
 * that completes the packet. */
static int scan_item_done(aemp__scan_t *s, const aemp_limits_t *lim,
                          const char **why)
{
    s->tagged = false;
    while (s->depth) {
        aemp__scan_frame_t *fr = &s->stack[s->depth - 1];
        if (fr->indef) {
            fr->n++;
            if ((fr->map ? (fr->n + 1) / 2 : fr->n) > lim->max_items)
                return scan_bad(why, AEMP_ELIMIT,
                                "more than max_items elements");
            return 0;
        }
        if (--fr->n)
            return 0;
        s->depth--;
    }
    s->done = true;
    return 1;
}

/* Bytes the packet may still grow by before exceeding max_packet. */
static uint64_t scan_budget(const aemp__scan_t *s, const aemp_limits_t *lim)
{
    size_t used = s->off - s->start;
    return used >= lim->max_packet ? 0 : lim->max_packet - used;
}

static int scan_string(aemp__scan_t *s, const head_t *h,
                       const aemp_limits_t *lim, const char **why)
{
    if (h->ai == AI_INDEF) {
        s->str_major = h->major;
        s->off += 1;
        s->tagged = false;
        return 0;
    }
    if (h->arg > scan_budget(s, lim) - h->hlen)
        return scan_bad(why, AEMP_ELIMIT, "packet larger than max_packet");
    s->off += h->hlen;
    s->skip = h->arg;
    s->tagged = false;
    if (s->skip || s->str_major)
        return 0;
    return scan_item_done(s, lim, why); /* empty: no bytes to pass */
}

static int scan_container(aemp__scan_t *s, const head_t *h,
                          const aemp_limits_t *lim, const char **why)
{
    if (s->depth >= lim->max_depth)
        return scan_bad(why, AEMP_ELIMIT, "nesting deeper than max_depth");
    bool map = h->major == M_MAP, indef = h->ai == AI_INDEF;
    if (!indef && h->arg > lim->max_items)
        return scan_bad(why, AEMP_ELIMIT, "more than max_items elements");
    uint64_t n = map ? 2 * h->arg : h->arg;
    if (!indef && n > scan_budget(s, lim) - h->hlen)
        return scan_bad(why, AEMP_ELIMIT, "packet larger than max_packet");
    s->off += h->hlen;
    s->started = true;
    if (!indef && n == 0)
        return scan_item_done(s, lim, why);
    s->stack[s->depth++] = (aemp__scan_frame_t){indef ? 0 : n, indef, map};
    s->tagged = false;
    return 0;
}

static int scan_break(aemp__scan_t *s, const aemp_limits_t *lim,
                      const char **why)
{
    aemp__scan_frame_t *fr = s->depth ? &s->stack[s->depth - 1] : NULL;
    if (s->str_major) {
        s->str_major = 0;
    } else if (s->tagged || !fr || !fr->indef) {
        return scan_bad(why, AEMP_EPROTO, "unexpected break");
    } else if (fr->map && (fr->n & 1)) {
        return scan_bad(why, AEMP_EPROTO, "break after a map key");
    } else {
        s->depth--;
    }
    s->off += 1;
    return scan_item_done(s, lim, why);
}

/* Applies one complete head. */
static int scan_head(aemp__scan_t *s, const head_t *h, const aemp_limits_t *lim,
                     const char **why)
{
    if (!indef_ok(h))
        return scan_bad(why, AEMP_EPROTO, "reserved additional information");
    if (is_break(h))
        return scan_break(s, lim, why);
    if (s->str_major && (h->major != s->str_major || h->ai == AI_INDEF))
        return scan_bad(why, AEMP_EPROTO, "bad chunk in indefinite string");
    if (!s->started && h->major != M_TAG && h->major != M_ARRAY)
        return scan_bad(why, AEMP_EPROTO, "top-level item is not an array");
    switch (h->major) {
    case M_BYTES:
    case M_TEXT: return scan_string(s, h, lim, why);
    case M_ARRAY:
    case M_MAP: return scan_container(s, h, lim, why);
    case M_TAG:
        s->off += h->hlen;
        s->tagged = true;
        return 0;
    default: s->off += h->hlen; return scan_item_done(s, lim, why);
    }
}

/* Passes over string bytes; 1 if that completed the packet, 0 to go on,
 * 2 when more bytes are needed. */
static int scan_skip(aemp__scan_t *s, size_t len, const aemp_limits_t *lim,
                     const char **why)
{
    size_t avail = len - s->off;
    if (avail < s->skip) {
        s->skip -= avail;
        s->off = len;
        return 2;
    }
    s->off += (size_t)s->skip;
    s->skip = 0;
    return s->str_major ? 0 : scan_item_done(s, lim, why);
}

int aemp__cbor_scan(aemp__scan_t *s, const char *buf, size_t len,
                    const aemp_limits_t *lim, const char **why)
{
    const uint8_t *p = (const uint8_t *)buf;
    int rc = s->done;
    while (rc == 0) {
        head_t h;
        if (s->skip) {
            rc = scan_skip(s, len, lim, why);
            if (rc == 2)
                return 0;
            continue;
        }
        rc = head_read(p + s->off, len - s->off, &h);
        if (rc == 0)
            return 0; /* a head is at most 9 bytes: the wait is bounded */
        if (rc < 0)
            return scan_bad(why, AEMP_EPROTO,
                            "reserved additional information");
        if (h.hlen > scan_budget(s, lim))
            return scan_bad(why, AEMP_ELIMIT, "packet larger than max_packet");
        rc = scan_head(s, &h, lim, why);
    }
    return rc;
}
