/* The json framing (PROTOCOL.md §6): the encoder and the reader's packet
 * scanner (the decoder is json_decode.c).
 *
 * Encoding writes the text directly instead of building a json_t tree for
 * json_dumpb: that would cost one allocation per value and a second copy of
 * every string. */
#include "codec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- encoding ---------------------------------------------------------- */

static int put(aemp__buf_t *b, const void *p, size_t n)
{
    if (b->cap - b->len < n && aemp__buf_reserve(b, n) < 0)
        return AEMP_ENOMEM;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static int putc_(aemp__buf_t *b, char c)
{
    return put(b, &c, 1);
}

/* Bytes copied as they are; everything else is escaped or, for latin1
 * (byte strings), widened to two UTF-8 bytes. */
static inline bool plain(unsigned char c, bool latin1)
{
    return c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || !latin1);
}

static char *esc_byte(char *o, unsigned char c, bool latin1)
{
    static const char hex[] = "0123456789abcdef";
    static const char short_esc[32] = {
        ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    if (c >= 0x80 && latin1) {
        *o++ = (char)(0xc0 | c >> 6);
        *o++ = (char)(0x80 | (c & 0x3f));
    } else if (c == '"' || c == '\\') {
        *o++ = '\\';
        *o++ = (char)c;
    } else if (c < 0x20 && short_esc[c]) {
        *o++ = '\\';
        *o++ = short_esc[c];
    } else {
        memcpy(o, "\\u00", 4);
        o[4] = hex[c >> 4];
        o[5] = hex[c & 15];
        o += 6;
    }
    return o;
}

/* Escapes in slices so that the worst case (6 bytes out per byte in) is
 * reserved for a slice, not for a whole 16 MiB string. */
#define ESC_SLICE 4096

static int json_text(aemp__buf_t *b, const char *s, size_t len, bool latin1)
{
    if (!latin1 && !aemp__utf8_valid(s, len))
        return AEMP_EINVAL;
    const unsigned char *u = (const unsigned char *)s;
    if (putc_(b, '"') < 0)
        return AEMP_ENOMEM;
    for (size_t i = 0; i < len;) {
        size_t n = len - i < ESC_SLICE ? len - i : ESC_SLICE;
        if (aemp__buf_reserve(b, 6 * n + 1) < 0)
            return AEMP_ENOMEM;
        char *o = b->data + b->len;
        for (size_t end = i + n; i < end; i++)
            if (plain(u[i], latin1))
                *o++ = (char)u[i];
            else
                o = esc_byte(o, u[i], latin1);
        b->len = (size_t)(o - b->data);
    }
    return putc_(b, '"');
}

static int json_int(aemp__buf_t *b, int64_t i)
{
    char tmp[24], *end = tmp + sizeof tmp, *p = end;
    uint64_t u = i < 0 ? -(uint64_t)i : (uint64_t)i;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (i < 0)
        *--p = '-';
    return put(b, p, (size_t)(end - p));
}

/* The shortest of %.15g..%.17g that reads back as d.  printf and strtod
 * both follow LC_NUMERIC, so the round trip is checked in the locale's
 * form; the decimal point is then rewritten to '.', whatever bytes the
 * locale uses for it (%g emits nothing else outside [0-9e+-]). */
static int json_double(aemp__buf_t *b, double d)
{
    if (!isfinite(d))
        return AEMP_EINVAL;
    char tmp[64], out[64];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (prec == 17 || strtod(tmp, NULL) == d)
            break;
    }
    size_t n = 0;
    bool real = false;
    for (const char *p = tmp; *p;) {
        if (strchr("0123456789eE+-", *p) == NULL) {
            while (*p && !strchr("0123456789eE+-", *p))
                p++;
            out[n++] = '.';
            real = true;
            continue;
        }
        real |= *p == 'e';
        out[n++] = *p++;
    }
    if (!real) { /* keep it a double for the reader: "1" would be an int */
        out[n++] = '.';
        out[n++] = '0';
    }
    return put(b, out, n);
}

static int json_val(aemp__buf_t *b, const aemp_val_t *v);

/* Elements of an array, or (map) "key":value pairs, comma-separated. */
static int json_items(aemp__buf_t *b, const aemp_val_t *items, size_t n,
                      bool map)
{
    for (size_t i = 0; i < n; i++) {
        int rc = 0;
        if (i && (rc = putc_(b, map && (i & 1) ? ':' : ',')) < 0)
            return rc;
        if ((rc = json_val(b, &items[i])) < 0)
            return rc;
    }
    return 0;
}

static int json_container(aemp__buf_t *b, const aemp_val_t *v, bool map)
{
    int rc = putc_(b, map ? '{' : '[');
    if (rc == 0)
        rc = json_items(b, v->u.items, map ? 2 * (size_t)v->len : v->len, map);
    if (rc == 0)
        rc = putc_(b, map ? '}' : ']');
    return rc;
}

static int json_val(aemp__buf_t *b, const aemp_val_t *v)
{
    switch ((aemp_type_t)v->type) {
    case AEMP_T_NULL: return put(b, "null", 4);
    case AEMP_T_BOOL: return v->u.i ? put(b, "true", 4) : put(b, "false", 5);
    case AEMP_T_INT: return json_int(b, v->u.i);
    case AEMP_T_DOUBLE: return json_double(b, v->u.d);
    case AEMP_T_STR: return json_text(b, v->u.s, v->len, false);
    case AEMP_T_BYTES: return json_text(b, v->u.s, v->len, true);
    case AEMP_T_ARR: return json_container(b, v, false);
    case AEMP_T_MAP: return json_container(b, v, true);
    }
    return AEMP_EINVAL;
}

int aemp__json_value(aemp__buf_t *b, const aemp_val_t *v)
{
    size_t start = b->len;
    int rc = json_val(b, v);
    if (rc < 0)
        b->len = start;
    return rc;
}

int aemp__json_encode(aemp__buf_t *b, const char *prefix, size_t prefix_len,
                      const aemp_msg_t *m)
{
    size_t start = b->len;
    int rc = putc_(b, '[');
    if (rc == 0 && prefix) {
        rc = json_text(b, prefix, prefix_len, false);
        if (rc == 0 && m->root.len)
            rc = putc_(b, ',');
    }
    if (rc == 0)
        rc = json_items(b, m->root.u.items, m->root.len, false);
    if (rc == 0)
        rc = putc_(b, ']');
    if (rc < 0)
        b->len = start;
    return rc;
}

/* ---- the reader's scanner ---------------------------------------------- */

/* Brackets outside strings, up to end; 1 when the top level closes. */
static int json_walk(aemp__scan_t *s, const char *buf, size_t end,
                     const aemp_limits_t *lim, const char **why)
{
    size_t i = s->off;
    int rc = 0;
    while (i < end && rc == 0) {
        if (s->in_str) {
            /* the bulk of most packets: find the end of the string */
            while (i < end && !s->esc && buf[i] != '"' && buf[i] != '\\')
                i++;
            if (i == end)
                break;
            if (s->esc)
                s->esc = false;
            else if (buf[i] == '\\')
                s->esc = true;
            else
                s->in_str = false;
            i++;
            continue;
        }
        switch (buf[i++]) {
        case '"': s->in_str = true; break;
        case '[':
        case '{':
            if (++s->depth > lim->max_depth) {
                *why = "nesting deeper than max_depth";
                rc = AEMP_ELIMIT;
            }
            break;
        case ']':
        case '}':
            if (--s->depth == 0)
                rc = s->done = 1;
            break;
        }
    }
    s->off = i;
    return rc;
}

int aemp__json_scan(aemp__scan_t *s, const char *buf, size_t len,
                    const aemp_limits_t *lim, const char **why)
{
    if (s->done)
        return 1;
    if (!s->started) {
        while (s->off < len && aemp__json_ws(buf[s->off]))
            s->off++;
        s->start = s->off;
        if (s->off == len)
            return 0;
        if (buf[s->off] != '[') {
            *why = "JSON text is not an array";
            return AEMP_EPROTO;
        }
        s->started = true;
    }
    /* never look further than the largest packet allowed */
    size_t end =
        len - s->start > lim->max_packet ? s->start + lim->max_packet : len;
    int rc = json_walk(s, buf, end, lim, why);
    if (rc == 0 && end < len) {
        *why = "packet larger than max_packet";
        return AEMP_ELIMIT;
    }
    return rc;
}
