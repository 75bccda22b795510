/* The streaming reader (feed bytes, pull messages), the one-shot
 * aemp_msg_encode / aemp_msg_decode, and the byte buffer the encoders
 * write into.
 *
 * The reader finds packet boundaries with a resumable scanner per framing
 * (codec_json.c, codec_cbor.c), so bytes arriving in small pieces are
 * looked at once, not re-parsed from the start of the packet on every feed;
 * a complete packet is then decoded in one go. */
#include "codec.h"

#include <stdio.h>
#include <string.h>

/* ---- buffers ----------------------------------------------------------- */

int aemp__buf_reserve(aemp__buf_t *b, size_t add)
{
    if (b->cap - b->len >= add)
        return 0;
    if (add > SIZE_MAX - b->len)
        return AEMP_ENOMEM;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + add)
        cap = cap > SIZE_MAX / 2 ? b->len + add : 2 * cap;
    char *p = aemp__realloc(b->data, cap);
    if (!p)
        return AEMP_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int aemp__buf_append(aemp__buf_t *b, const void *p, size_t len)
{
    if (aemp__buf_reserve(b, len) < 0)
        return AEMP_ENOMEM;
    if (len)
        memcpy(b->data + b->len, p, len);
    b->len += len;
    return 0;
}

void aemp__buf_free(aemp__buf_t *b)
{
    aemp__free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- limits and framings ----------------------------------------------- */

void aemp__limits_resolve(aemp_limits_t *lim)
{
    if (!lim->max_packet)
        lim->max_packet = (size_t)16 << 20;
    if (!lim->max_depth)
        lim->max_depth = 128;
    if (!lim->max_items)
        lim->max_items = (size_t)1 << 20;
    if (lim->max_depth > AEMP__DEPTH_CAP)
        lim->max_depth = AEMP__DEPTH_CAP;
    if (lim->max_items > AEMP__MAX_LEN) /* a container's length is 32-bit */
        lim->max_items = AEMP__MAX_LEN;
}

_Static_assert(AEMP_JSON < AEMP__FRAMINGS && AEMP_CBOR < AEMP__FRAMINGS,
               "aemp__framing_table is indexed by aemp_framing_t");
const aemp__framing_t aemp__framing_table[AEMP__FRAMINGS] = {
    [AEMP_JSON] = {AEMP_JSON, "json", aemp__json_encode, aemp__json_decode_from,
                   aemp__json_scan, false, "[]", 2},
    /* CBOR 0x80: the array of no items */
    [AEMP_CBOR] = {AEMP_CBOR, "cbor", aemp__cbor_encode, aemp__cbor_decode_from,
                   aemp__cbor_scan, true, "\x80", 1},
};

const aemp__framing_t *aemp__framing_named(const char *name, size_t len)
{
    for (size_t i = 0; i < AEMP__FRAMINGS; i++) {
        const char *n = aemp__framing_table[i].name;
        if (n && strlen(n) == len && !memcmp(n, name, len))
            return &aemp__framing_table[i];
    }
    return NULL;
}

/* ---- one-shot encoding and decoding ------------------------------------ */

int aemp_msg_encode(const aemp_msg_t *m, aemp_framing_t f, char **buf,
                    size_t *len)
{
    const aemp__framing_t *fr = aemp__framing(f);
    if (!m || !fr || !buf || !len)
        return AEMP_EINVAL;
    aemp__buf_t b = {NULL, 0, 0};
    int rc = fr->encode(&b, NULL, 0, m);
    if (rc == 0)
        rc = aemp__buf_reserve(&b, 1); /* the NUL */
    if (rc < 0) {
        aemp__buf_free(&b);
        return rc;
    }
    b.data[b.len] = 0;
    *buf = b.data;
    *len = b.len;
    return 0;
}

/* b's bytes and a NUL as the caller's string. */
static int buf_text(aemp__buf_t *b, int rc, char **text)
{
    if (rc == 0)
        rc = aemp__buf_reserve(b, 1);
    if (rc < 0) {
        aemp__buf_free(b);
        return rc;
    }
    b->data[b->len] = 0;
    *text = b->data;
    return 0;
}

int aemp_val_to_json(const aemp_val_t *v, char **text)
{
    if (!v || !text)
        return AEMP_EINVAL;
    aemp__buf_t b = {NULL, 0, 0};
    return buf_text(&b, aemp__json_value(&b, v), text);
}

int aemp_msg_to_json(const aemp_msg_t *m, char **text)
{
    if (!m || !text)
        return AEMP_EINVAL;
    aemp__buf_t b = {NULL, 0, 0};
    return buf_text(&b, aemp__json_encode(&b, NULL, 0, m), text);
}

int aemp_msg_decode(aemp_msg_t **out, aemp_framing_t f, const void *buf,
                    size_t len)
{
    const aemp__framing_t *fr = aemp__framing(f);
    if (!out || !fr || (!buf && len))
        return AEMP_EINVAL;
    aemp_limits_t lim = {0, 0, 0};
    aemp__limits_resolve(&lim);
    if (len > lim.max_packet)
        return AEMP_ELIMIT;
    return fr->decode(NULL, out, buf ? buf : "", len, &lim, NULL, 0);
}

/* ---- the reader -------------------------------------------------------- */

struct aemp_reader {
    const aemp__framing_t *fr;
    aemp_limits_t lim;
    aemp__buf_t in; /* bytes fed and not yet taken, from pos on */
    size_t pos;
    aemp__scan_t scan; /* the packet at pos */
    /* Feed's limit check: once more than max_packet bytes are pending,
     * `ahead` scans every fed byte to know where the last packet starts
     * (complete packets before it may add up to any size). */
    aemp__scan_t ahead;
    size_t ahead_base;
    bool ahead_on;
    int err;      /* < 0: failed for good */
    int deferred; /* an error found by `ahead`, reported by next() once
                     the packets before it are taken */
    char why[192];
    aemp__blocks_t *blocks; /* where messages get their blocks, or NULL */
};

void aemp__reader_set_blocks(aemp_reader_t *r, aemp__blocks_t *bc)
{
    r->blocks = bc;
}

static int scan_init(aemp__scan_t *s, const aemp_reader_t *r)
{
    memset(s, 0, sizeof *s);
    if (!r->fr->scan_stack)
        return 0;
    s->stack = aemp__calloc(r->lim.max_depth, sizeof *s->stack);
    return s->stack ? 0 : AEMP_ENOMEM;
}

static void scan_reset(aemp__scan_t *s)
{
    aemp__scan_frame_t *stack = s->stack;
    memset(s, 0, sizeof *s);
    s->stack = stack;
}

/* Moves the base of s over the whitespace it passed (by *base). */
static void scan_rebase(aemp__scan_t *s, size_t *base)
{
    *base += s->start;
    s->off -= s->start;
    s->start = 0;
}

void aemp_reader_free(aemp_reader_t *r)
{
    if (!r)
        return;
    aemp__buf_free(&r->in);
    aemp__free(r->scan.stack);
    aemp__free(r->ahead.stack);
    aemp__free(r);
}

int aemp_reader_new(aemp_reader_t **out, aemp_framing_t f,
                    const aemp_limits_t *limits)
{
    const aemp__framing_t *fr = aemp__framing(f);
    if (!out || !fr)
        return AEMP_EINVAL;
    aemp_reader_t *r = aemp__calloc(1, sizeof *r);
    if (!r)
        return AEMP_ENOMEM;
    r->fr = fr;
    if (limits)
        r->lim = *limits;
    aemp__limits_resolve(&r->lim);
    if (scan_init(&r->scan, r) < 0 || scan_init(&r->ahead, r) < 0) {
        aemp_reader_free(r);
        return AEMP_ENOMEM;
    }
    *out = r;
    return 0;
}

const char *aemp_reader_error(const aemp_reader_t *r)
{
    return r && r->err ? r->why : "";
}

static int fail(aemp_reader_t *r, int rc, const char *why)
{
    r->err = rc;
    if (why)
        snprintf(r->why, sizeof r->why, "%s", why);
    return rc;
}

/* Drops taken bytes from the front when they are at least as many as the
 * rest, so that the copying stays proportional to the bytes taken. */
static void compact(aemp_reader_t *r)
{
    size_t rest = r->in.len - r->pos;
    if (!r->pos || r->pos < rest)
        return;
    memmove(r->in.data, r->in.data + r->pos, rest);
    r->in.len = rest;
    if (r->ahead_on)
        r->ahead_base -= r->pos;
    r->pos = 0;
}

/* Runs `ahead` over everything fed.  An error it finds is deferred: the
 * bytes after it are dropped and next() reports it in order. */
static int ahead_run(aemp_reader_t *r)
{
    for (;;) {
        const char *why = NULL;
        int rc = r->fr->scan(&r->ahead, r->in.data + r->ahead_base,
                             r->in.len - r->ahead_base, &r->lim, &why);
        if (rc == 1) {
            r->ahead_base += r->ahead.off;
            scan_reset(&r->ahead);
            continue;
        }
        if (rc == 0) {
            scan_rebase(&r->ahead, &r->ahead_base);
            return 0;
        }
        size_t keep = r->ahead_base + r->ahead.off;
        if (keep < r->pos + r->scan.off)
            keep = r->pos + r->scan.off;
        if (keep < r->in.len)
            r->in.len = keep;
        r->deferred = rc;
        snprintf(r->why, sizeof r->why, "%s", why);
        return rc == AEMP_ELIMIT ? rc : 0;
    }
}

int aemp_reader_feed(aemp_reader_t *r, const void *buf, size_t len)
{
    if (!r || (!buf && len))
        return AEMP_EINVAL;
    if (r->err || r->deferred)
        return r->err ? r->err : r->deferred;
    if (!len)
        return 0;
    compact(r);
    if (aemp__buf_reserve(&r->in, len) < 0)
        return AEMP_ENOMEM;
    bool check = r->ahead_on || r->in.len - r->pos + len > r->lim.max_packet;
    memcpy(r->in.data + r->in.len, buf, len);
    r->in.len += len;
    if (!check)
        return 0; /* fewer pending bytes than one packet may have */
    if (!r->ahead_on) {
        r->ahead_on = true;
        r->ahead_base = r->pos;
        scan_reset(&r->ahead);
    }
    return ahead_run(r);
}

/* All taken: start over at the front, without copying. */
static void restart_if_empty(aemp_reader_t *r)
{
    if (r->pos == r->in.len && !r->deferred) {
        r->pos = r->in.len = 0;
        r->ahead_on = false;
    }
}

/* Takes the packet the scanner found. */
static int take(aemp_reader_t *r, aemp_msg_t **out)
{
    aemp_msg_t *m;
    char why[sizeof r->why]; /* r->why may hold a deferred error's text */
    const char *p = r->in.data + r->pos + r->scan.start;
    int rc = r->fr->decode(r->blocks, &m, p, r->scan.off - r->scan.start,
                           &r->lim, why, sizeof why);
    if (rc == AEMP_ENOMEM)
        return rc; /* nothing changed: the caller may try again */
    if (rc < 0)
        return fail(r, rc, why);
    r->pos += r->scan.off;
    scan_reset(&r->scan);
    restart_if_empty(r);
    *out = m;
    return 1;
}

int aemp_reader_next(aemp_reader_t *r, aemp_msg_t **out)
{
    if (!r || !out)
        return AEMP_EINVAL;
    if (r->err)
        return r->err;
    const char *why = NULL;
    int rc = r->fr->scan(&r->scan, r->in.data ? r->in.data + r->pos : "",
                         r->in.len - r->pos, &r->lim, &why);
    if (rc == 1)
        return take(r, out);
    if (rc < 0)
        return fail(r, rc, why);
    scan_rebase(&r->scan, &r->pos);
    restart_if_empty(r);
    if (r->deferred)
        return fail(r, r->deferred, NULL);
    return 0;
}
