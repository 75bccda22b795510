/* The json framing's decoder: one complete packet into a message
 * (PROTOCOL.md §6); the encoder and the packet scanner are codec_json.c. */
#include "codec.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- decoding ---------------------------------------------------------- */

/* Hand-written rather than jansson's json_loadb, which built a tree of
 * malloc'd json_t nodes per packet, copied it into the message block and
 * freed it: ~70% of a JSON link's receiving CPU.  Parsing the bytes
 * straight into the block is ~5.5x faster (bench_local "JSON decode"
 * 2.4 -> 13.3 M/s; net_aemp json, 3M messages: receiver CPU 1.96 -> 0.48 s,
 * 1.5 -> 6.2 M messages/s).
 *
 * Two passes over the bytes.  The scan checks the syntax and measures:
 * nodes, text bytes, and in document order ("side" values) the element
 * count of each container and the value of each double, so that strtod
 * runs once and the fill cannot fail.  The fill then writes the values.
 *
 * The language is that of jansson 2.14's json_loadb with JSON_ALLOW_NUL,
 * the previous decoder, but for one bug (below); tests/test_json_fast.c and
 * tests/fuzz_json_diff.c compare the two, results and error codes:
 *  - the text is one array or object (an object is then refused: packets
 *    are arrays), tokens separated by ' ', \t, \n, \r only;
 *  - a number without '.' or exponent is an int64 and refused beyond its
 *    range (not made a double); "-0" is int 0; any number with '.' or an
 *    exponent is a double ("1.0", "-0.0"); one beyond DBL_MAX is refused,
 *    one too small for a denormal is 0; no leading zeros, '+', ".5", "1.";
 *  - strings are UTF-8 (no overlongs, surrogates, > U+10FFFF; jansson
 *    checks every byte of the text, outside strings too), no raw control
 *    characters; \u escapes with surrogates only as pairs; \u0000 allowed,
 *    but not in object keys;
 *  - a duplicate key keeps its first place and takes the last value;
 *  - one deliberate difference: jansson loses a NUL byte read just past a
 *    number or literal ("[1\0]" is [1] to it: its lexer's put-back slot
 *    uses NUL for "empty"); here a NUL outside a string is malformed, like
 *    any other stray byte;
 *  - jansson's own depth limit (values, scalars included, nested more than
 *    AEMP__DEPTH_CAP deep) is AEMP_ELIMIT and stops where it is met;
 *    max_depth and max_items are checked after the whole text parsed (a
 *    syntax error anywhere wins), on the values after duplicates merged. */

enum { J_EOF, J_PUNCT, J_STR, J_INT, J_REAL, J_WORD, J_INVALID };

typedef struct jtok {
    int kind;
    char c;           /* J_PUNCT: which; J_WORD: 't', 'f' or 'n' */
    bool nul;         /* J_STR: holds U+0000 */
    size_t len;       /* J_STR: bytes once unescaped */
    double d;         /* J_REAL */
    const char *at;   /* first byte */
    const char *stop; /* numbers and words: where jansson stopped reading */
} jtok_t;

#define J_SIDE0 32
#define J_SCRATCH0 64
#define J_DEDUP_SMALL 8 /* objects up to this many pairs: no hash table */

typedef struct jdec {
    const char *buf, *p, *end;
    const aemp_limits_t *lim;
    size_t depth;           /* values being parsed: jansson's depth */
    size_t nodes, text;     /* the block's size */
    size_t deepest, widest; /* deepest container, most elements or pairs */
    size_t widest_map;      /* most pairs of an object */
    size_t first;           /* side index of the first container beyond
                               max_depth / max_items, before merging */
    const char *first_why;
    bool too_long, too_many; /* beyond 32-bit lengths */
    bool objects, merged;    /* objects seen; duplicate keys merged */
    uint64_t *side;          /* counts and doubles in document order */
    size_t nside, capside, next;
    char *scratch; /* strtod's NUL-terminated copies */
    size_t capscratch;
    uint32_t *tab; /* duplicate keys: slot + 1, 0 empty */
    const char *why;
    size_t at; /* SIZE_MAX: no position */
    char whybuf[48];
    uint64_t side0[J_SIDE0];
    char scratch0[J_SCRATCH0];
} jdec_t;

static int jfail(jdec_t *d, int rc, const char *why, const void *at)
{
    d->why = why;
    d->at = at ? (size_t)((const char *)at - d->buf) : SIZE_MAX;
    return rc;
}

/* A reason quoting one byte or code point. */
static int jfailf(jdec_t *d, const char *fmt, unsigned v, const void *at)
{
    snprintf(d->whybuf, sizeof d->whybuf, fmt, v);
    return jfail(d, AEMP_EPROTO, d->whybuf, at);
}

static inline bool jdigit(char c)
{
    return c >= '0' && c <= '9';
}

static inline bool jalpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline const char *jws(const char *p, const char *end)
{
    while (p < end && aemp__json_ws(*p))
        p++;
    return p;
}

/* Length of the valid UTF-8 sequence of 2 to 4 bytes at p, or 0. */
static size_t jutf8_seq(const unsigned char *p, const unsigned char *end)
{
    size_t n = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 0;
    if (n == 0 || (size_t)(end - p) < n ||
        !aemp__utf8_valid((const char *)p, n))
        return 0;
    return n;
}

static int jside_push(jdec_t *d, uint64_t v)
{
    if (d->nside == d->capside) {
        size_t cap = 2 * d->capside;
        uint64_t *s = d->side == d->side0
                          ? aemp__reallocarray(NULL, cap, sizeof *s)
                          : aemp__reallocarray(d->side, cap, sizeof *s);
        if (!s)
            return jfail(d, AEMP_ENOMEM, "out of memory", NULL);
        if (d->side == d->side0)
            memcpy(s, d->side0, sizeof d->side0);
        d->side = s;
        d->capside = cap;
    }
    d->side[d->nside++] = v;
    return 0;
}

/* A buffer of n bytes for strtod's copies. */
static char *jscratch(jdec_t *d, size_t n)
{
    if (n > d->capscratch) {
        char *s = aemp__malloc(n);
        if (!s)
            return NULL;
        if (d->scratch != d->scratch0)
            aemp__free(d->scratch);
        d->scratch = s;
        d->capscratch = n;
    }
    return d->scratch;
}

/* strtod on a NUL-terminated copy.  strtod follows LC_NUMERIC: the library
 * never calls setlocale, but a program may, so if it stops short of the
 * end (at the '.'), the locale's decimal point takes the place of '.'. */
static int jstrtod(jdec_t *d, const char *s, size_t n, double *out)
{
    char *b = jscratch(d, n + 1), *e;
    if (!b)
        return jfail(d, AEMP_ENOMEM, "out of memory", NULL);
    memcpy(b, s, n);
    b[n] = 0;
    *out = strtod(b, &e);
    if (e == b + n)
        return 0;
    const char *dp = localeconv()->decimal_point;
    size_t dl = strlen(dp), k = 0;
    if (!(b = jscratch(d, n + dl + 1)))
        return jfail(d, AEMP_ENOMEM, "out of memory", NULL);
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '.') {
            b[k++] = s[i];
            continue;
        }
        memcpy(b + k, dp, dl);
        k += dl;
    }
    b[k] = 0;
    *out = strtod(b, NULL);
    return 0;
}

/* ---- scan: tokens, as jansson's lexer reads them ----------------------- */

static long jhex4(const unsigned char *p, const unsigned char *end)
{
    long v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v += c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            v += (c | 0x20) - 'a' + 10;
        else
            return -1;
    }
    return v;
}

/* The escape at *pp (a backslash); adds its unescaped length to *len. */
static int jlex_escape(jdec_t *d, const unsigned char **pp, size_t *len,
                       bool *nul)
{
    const unsigned char *p = *pp, *end = (const unsigned char *)d->end;
    if (end - p < 2)
        return jfail(d, AEMP_EPROTO, "premature end of input", p);
    if (p[1] != 'u') {
        if (!p[1] || !strchr("\"\\/bfnrt", p[1]))
            return jfail(d, AEMP_EPROTO, "invalid escape", p);
        *pp = p + 2;
        *len += 1;
        return 0;
    }
    long cp = jhex4(p + 2, end);
    if (cp < 0)
        return jfail(d, AEMP_EPROTO, "invalid escape", p);
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return jfailf(d, "invalid Unicode '\\u%04X'", (unsigned)cp, p);
    if (cp >= 0xd800 && cp <= 0xdbff) {
        long lo = end - p >= 8 && p[6] == '\\' && p[7] == 'u'
                      ? jhex4(p + 8, end)
                      : -1;
        if (lo < 0xdc00 || lo > 0xdfff)
            return jfailf(d, "invalid Unicode '\\u%04X'", (unsigned)cp, p);
        *pp = p + 12;
        *len += 4;
        return 0;
    }
    *nul |= cp == 0;
    *pp = p + 6;
    *len += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
    return 0;
}

/* A raw byte that is not plain ASCII text: a control character or the
 * start of a UTF-8 sequence. */
static int jlex_raw(jdec_t *d, const unsigned char **pp, size_t *len)
{
    const unsigned char *p = *pp;
    if (*p < 0x20)
        return *p == '\n' ? jfail(d, AEMP_EPROTO, "unexpected newline", p)
                          : jfailf(d, "control character 0x%x", *p, p);
    size_t n = jutf8_seq(p, (const unsigned char *)d->end);
    if (!n)
        return jfailf(d, "unable to decode byte 0x%x", *p, p);
    *pp = p + n;
    *len += n;
    return 0;
}

static int jlex_string(jdec_t *d, jtok_t *t)
{
    const unsigned char *p = (const unsigned char *)d->p + 1;
    const unsigned char *end = (const unsigned char *)d->end;
    size_t len = 0;
    t->kind = J_STR;
    t->nul = false;
    for (;;) {
        const unsigned char *q = p;
        while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
            q++;
        len += (size_t)(q - p);
        p = q;
        if (p == end)
            return jfail(d, AEMP_EPROTO, "premature end of input", p);
        if (*p == '"')
            break;
        int rc = *p == '\\' ? jlex_escape(d, &p, &len, &t->nul)
                            : jlex_raw(d, &p, &len);
        if (rc < 0)
            return rc;
    }
    t->len = len;
    d->p = (const char *)p + 1;
    return 0;
}

static const char *jdigits(const char *p, const char *end)
{
    while (p < end && jdigit(*p))
        p++;
    return p;
}

/* Integer digits [s, e) (after the sign): jansson's strtoll refuses what
 * int64_t cannot hold. */
static int jcheck_int(jdec_t *d, const char *s, const char *e, bool neg)
{
    uint64_t max = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, u = 0;
    for (; s < e; s++) {
        unsigned dg = (unsigned)(*s - '0');
        if (u > (max - dg) / 10)
            return jfail(d, AEMP_EPROTO,
                         neg ? "too big negative integer" : "too big integer",
                         d->p);
        u = u * 10 + dg;
    }
    return 0;
}

/* The fraction and exponent of a double whose integer digits end at p;
 * NULL where jansson gives up (the token is then invalid). */
static const char *jreal_tail(const char *p, const char *end, const char **stop)
{
    if (*p == '.') {
        if (++p == end || !jdigit(*p))
            return *stop = p, NULL;
        p = jdigits(p, end);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !jdigit(*p))
            return *stop = p, NULL;
        p = jdigits(p, end);
    }
    return *stop = p;
}

static int jlex_number(jdec_t *d, jtok_t *t)
{
    const char *s = d->p, *end = d->end, *p = s + (*s == '-');
    t->kind = J_INVALID;
    if (p < end && *p == '0')
        p++;
    else if (p < end && jdigit(*p))
        p = jdigits(p, end);
    if (p == s + (*s == '-') || (p < end && jdigit(*p))) {
        t->stop = p; /* no digit, or a leading zero */
        return 0;
    }
    if (p == end || (*p != '.' && *p != 'e' && *p != 'E')) {
        t->kind = J_INT;
        t->stop = p;
        d->p = p;
        return jcheck_int(d, s + (*s == '-'), p, *s == '-');
    }
    if (!(p = jreal_tail(p, end, &t->stop)))
        return 0;
    int rc = jstrtod(d, s, (size_t)(p - s), &t->d);
    if (rc == 0 && isinf(t->d))
        rc = jfail(d, AEMP_EPROTO, "real number overflow", s);
    t->kind = J_REAL;
    d->p = p;
    return rc;
}

static void jlex_word(jdec_t *d, jtok_t *t)
{
    const char *s = d->p, *p = s;
    while (p < d->end && jalpha(*p))
        p++;
    size_t n = (size_t)(p - s);
    t->kind = J_INVALID;
    t->stop = d->p = p;
    if ((n == 4 && !memcmp(s, "true", 4)) ||
        (n == 5 && !memcmp(s, "false", 5)) ||
        (n == 4 && !memcmp(s, "null", 4))) {
        t->kind = J_WORD;
        t->c = *s;
        d->p = p;
    }
}

/* The next token.  An invalid one is no error yet: jansson first checks
 * its depth limit where a value was expected. */
static int jlex(jdec_t *d, jtok_t *t)
{
    const char *p = d->p = jws(d->p, d->end);
    t->at = p;
    t->stop = NULL;
    if (p == d->end) {
        t->kind = J_EOF;
        return 0;
    }
    unsigned char c = (unsigned char)*p;
    switch (c) {
    case '[':
    case ']':
    case '{':
    case '}':
    case ':':
    case ',':
        t->kind = J_PUNCT;
        t->c = (char)c;
        d->p = p + 1;
        return 0;
    case '"': return jlex_string(d, t);
    }
    if (c == '-' || jdigit((char)c))
        return jlex_number(d, t);
    t->kind = J_INVALID;
    if (jalpha((char)c))
        jlex_word(d, t);
    else if (c >= 0x80 && !jutf8_seq((const unsigned char *)p,
                                     (const unsigned char *)d->end))
        return jfailf(d, "unable to decode byte 0x%x", c, p);
    return 0;
}

static inline bool jis(const jtok_t *t, char c)
{
    return t->kind == J_PUNCT && t->c == c;
}

/* ---- scan: the grammar, as jansson's parser walks it ------------------- */

static int jscan_value(jdec_t *d, const jtok_t *t);

/* A value too deep for jansson, unless its lexer, reading one byte past a
 * number or word, met invalid UTF-8 first. */
static int jtoo_deep(jdec_t *d, const jtok_t *t)
{
    const unsigned char *s = (const unsigned char *)t->stop;
    const unsigned char *end = (const unsigned char *)d->end;
    if (s && s < end && *s >= 0x80 && !jutf8_seq(s, end))
        return jfailf(d, "unable to decode byte 0x%x", *s, s);
    return jfail(d, AEMP_ELIMIT, "maximum parsing depth reached", t->at);
}

/* Opens a container: its count's place among the side values, and the
 * depth check of the old converter, remembered for after the parse. */
static int jopen(jdec_t *d, size_t *slot)
{
    *slot = d->nside;
    if (d->depth > d->deepest)
        d->deepest = d->depth;
    if (d->depth > d->lim->max_depth && *slot < d->first) {
        d->first = *slot;
        d->first_why = "nesting deeper than max_depth";
    }
    return jside_push(d, 0);
}

static void jclose(jdec_t *d, size_t slot, size_t n, bool map)
{
    d->side[slot] = n;
    d->nodes += map ? 2 * n : n;
    if (n > d->widest)
        d->widest = n;
    if (map && n > d->widest_map)
        d->widest_map = n;
    if (n > AEMP__MAX_LEN)
        d->too_many = true;
    if (n > d->lim->max_items && slot < d->first) {
        d->first = slot;
        d->first_why = "more than max_items elements";
    }
}

/* One "key": value pair, the key's token in t. */
static int jscan_pair(jdec_t *d, jtok_t *t)
{
    int rc;
    if (t->kind != J_STR)
        return jfail(d, AEMP_EPROTO, "string or '}' expected", t->at);
    if (t->nul)
        return jfail(d, AEMP_EPROTO, "NUL byte in object key not supported",
                     t->at);
    d->text += t->len + 1;
    if ((rc = jlex(d, t)) < 0)
        return rc;
    if (!jis(t, ':'))
        return jfail(d, AEMP_EPROTO, "':' expected", t->at);
    if ((rc = jlex(d, t)) < 0)
        return rc;
    return jscan_value(d, t);
}

/* The elements of [ values ] or the pairs of { "key": value }, from after
 * the opening bracket to after the closing one. */
static int jscan_container(jdec_t *d, bool map)
{
    const char close = map ? '}' : ']';
    size_t slot, n = 0;
    jtok_t t;
    int rc = jopen(d, &slot);
    if (map)
        d->objects = true;
    if (rc == 0)
        rc = jlex(d, &t);
    if (rc < 0 || jis(&t, close))
        goto done;
    /* at the end of the text an array says "']' expected", an object
     * (through jscan_pair) "string or '}' expected", as jansson does */
    while (map || t.kind != J_EOF) {
        if ((rc = map ? jscan_pair(d, &t) : jscan_value(d, &t)) < 0 ||
            (rc = jlex(d, &t)) < 0)
            goto done;
        n++;
        if (!jis(&t, ','))
            break;
        if ((rc = jlex(d, &t)) < 0)
            goto done;
    }
    if (!jis(&t, close))
        rc = jfail(d, AEMP_EPROTO, map ? "'}' expected" : "']' expected",
                   t.at);
done:
    if (rc == 0)
        jclose(d, slot, n, map);
    return rc;
}

static int jscan_value(jdec_t *d, const jtok_t *t)
{
    if (d->depth >= AEMP__DEPTH_CAP)
        return jtoo_deep(d, t);
    int rc = 0;
    d->depth++;
    switch (t->kind) {
    case J_STR:
        d->text += t->len + 1;
        d->too_long |= t->len > AEMP__MAX_LEN;
        break;
    case J_REAL: {
        uint64_t bits;
        memcpy(&bits, &t->d, sizeof bits);
        rc = jside_push(d, bits);
        break;
    }
    case J_INT:
    case J_WORD: break;
    case J_INVALID: rc = jfail(d, AEMP_EPROTO, "invalid token", t->at); break;
    default:
        if (jis(t, '['))
            rc = jscan_container(d, false);
        else if (jis(t, '{'))
            rc = jscan_container(d, true);
        else
            rc = jfail(d, AEMP_EPROTO, "unexpected token", t->at);
    }
    d->depth--;
    return rc;
}

/* The whole text; *array: the top level is an array. */
static int jscan(jdec_t *d, bool *array)
{
    jtok_t t;
    int rc = jlex(d, &t);
    if (rc < 0)
        return rc;
    if (!jis(&t, '[') && !jis(&t, '{'))
        return jfail(d, AEMP_EPROTO, "'[' or '{' expected", t.at);
    *array = jis(&t, '[');
    if ((rc = jscan_value(d, &t)) < 0 || (rc = jlex(d, &t)) < 0)
        return rc;
    if (t.kind != J_EOF)
        return jfail(d, AEMP_EPROTO, "end of file expected", t.at);
    return 0;
}

/* ---- fill: the bytes again, known to be valid -------------------------- */

static void jfill_value(jdec_t *d, aemp__fill_t *f, struct aemp_val *dst);

static char *jput_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* The escape at p (a backslash) written to *o; returns what follows. */
static const char *junescape(const char *p, char **o)
{
    static const char simple[128] = {
        ['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['b'] = '\b',
        ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t'};
    const unsigned char *u = (const unsigned char *)p;
    if (p[1] != 'u') {
        *(*o)++ = simple[u[1] & 0x7f];
        return p + 2;
    }
    unsigned long cp = (unsigned long)jhex4(u + 2, u + 6);
    if (cp >= 0xd800 && cp <= 0xdbff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) +
             ((unsigned long)jhex4(u + 8, u + 12) - 0xdc00);
        p += 6;
    }
    *o = jput_utf8(*o, cp);
    return p + 6;
}

/* The string at d->p into the block's text. */
static void jfill_str(jdec_t *d, aemp__fill_t *f, struct aemp_val *dst)
{
    char *o = f->text;
    const char *p = d->p + 1, *q;
    for (;;) {
        for (q = p; *q != '"' && *q != '\\';)
            q++;
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        if (*q == '"')
            break;
        p = junescape(q, &o);
    }
    *o = 0;
    dst->type = AEMP_T_STR;
    dst->len = (uint32_t)(o - f->text);
    dst->u.s = f->text;
    f->text = o + 1;
    d->p = q + 1;
}

static void jfill_number(jdec_t *d, struct aemp_val *dst)
{
    const char *p = d->p, *end = d->end;
    bool neg = *p == '-';
    uint64_t u = 0;
    for (p += neg; p < end && jdigit(*p); p++)
        u = u * 10 + (uint64_t)(*p - '0'); /* wraps only for doubles */
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) {
        while (p < end && (jdigit(*p) || strchr(".eE+-", *p)) && *p)
            p++;
        dst->type = AEMP_T_DOUBLE;
        memcpy(&dst->u.d, &d->side[d->next++], sizeof dst->u.d);
    } else {
        dst->type = AEMP_T_INT;
        dst->u.i = neg && u ? -(int64_t)(u - 1) - 1 : (int64_t)u;
    }
    d->p = p;
}

/* n values separated by commas, from after the opening bracket to after
 * the closing one. */
static void jfill_items(jdec_t *d, aemp__fill_t *f, struct aemp_val *items,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        jfill_value(d, f, &items[i]);
        d->p = jws(d->p, d->end) + 1;
    }
    if (n == 0)
        d->p = jws(d->p, d->end) + 1;
}

static bool jkey_eq(const struct aemp_val *a, const struct aemp_val *b)
{
    return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
}

/* Where key i (an index into kv's pairs) is, or goes, among the first n
 * distinct keys: a table of mask + 1 slots holding pair index + 1. */
static uint32_t *jdedup_slot(const jdec_t *d, const struct aemp_val *kv,
                             size_t i, size_t mask)
{
    /* FNV-1a, seeded by the table's (ASLR-randomised) address so that a
     * peer cannot precompute colliding keys */
    uint64_t h = 14695981039346656037u ^ (uint64_t)(uintptr_t)d->tab;
    for (size_t k = 0; k < kv[2 * i].len; k++)
        h = (h ^ (unsigned char)kv[2 * i].u.s[k]) * 1099511628211u;
    size_t s = (size_t)(h ^ h >> 29) & mask;
    while (d->tab[s] && !jkey_eq(&kv[2 * (d->tab[s] - 1)], &kv[2 * i]))
        s = (s + 1) & mask;
    return &d->tab[s];
}

/* jansson's merge of duplicate keys over the n pairs of kv as written: the
 * first place, the last value.  Returns the pairs left. */
static size_t jdedup(jdec_t *d, struct aemp_val *kv, size_t n)
{
    size_t size = 1, kept = 0;
    bool hashed = n > J_DEDUP_SMALL; /* else compare with each kept key */
    while (hashed && size < 2 * n)
        size <<= 1;
    if (hashed)
        memset(d->tab, 0, size * sizeof *d->tab);
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        uint32_t *slot = NULL;
        if (hashed) {
            slot = jdedup_slot(d, kv, i, size - 1);
            j = *slot ? *slot - 1 : kept;
        } else {
            while (j < kept && !jkey_eq(&kv[2 * j], &kv[2 * i]))
                j++;
        }
        if (j < kept) {
            kv[2 * j + 1] = kv[2 * i + 1];
            continue;
        }
        if (slot)
            *slot = (uint32_t)kept + 1;
        kv[2 * kept] = kv[2 * i];
        kv[2 * kept + 1] = kv[2 * i + 1];
        kept++;
    }
    d->merged |= kept < n;
    return kept;
}

static void jfill_object(jdec_t *d, aemp__fill_t *f, struct aemp_val *dst)
{
    size_t n = (size_t)d->side[d->next++];
    struct aemp_val *kv = aemp__fill_nodes(f, 2 * n);
    d->p++;
    for (size_t i = 0; i < n; i++) {
        d->p = jws(d->p, d->end);
        memset(&kv[2 * i], 0, sizeof *kv);
        jfill_str(d, f, &kv[2 * i]);
        d->p = jws(d->p, d->end) + 1; /* the ':' */
        jfill_value(d, f, &kv[2 * i + 1]);
        d->p = jws(d->p, d->end) + 1; /* ',' or '}' */
    }
    if (n == 0)
        d->p = jws(d->p, d->end) + 1;
    dst->type = AEMP_T_MAP;
    dst->u.items = kv;
    dst->len = (uint32_t)(n > 1 ? jdedup(d, kv, n) : n);
}

static void jfill_value(jdec_t *d, aemp__fill_t *f, struct aemp_val *dst)
{
    memset(dst, 0, sizeof *dst);
    d->p = jws(d->p, d->end);
    switch (*d->p) {
    case '"': jfill_str(d, f, dst); break;
    case '[':
        dst->type = AEMP_T_ARR;
        dst->len = (uint32_t)d->side[d->next++];
        dst->u.items = aemp__fill_nodes(f, dst->len);
        d->p++;
        jfill_items(d, f, dst->u.items, dst->len);
        break;
    case '{': jfill_object(d, f, dst); break;
    case 'n':
        dst->type = AEMP_T_NULL;
        d->p += 4;
        break;
    case 't':
    case 'f':
        dst->type = AEMP_T_BOOL;
        dst->u.i = *d->p == 't';
        d->p += *d->p == 't' ? 4 : 5;
        break;
    default: jfill_number(d, dst);
    }
}

/* ---- the limits, and the entry points ---------------------------------- */

/* The old converter's check of the values in document order: the first
 * container beyond max_depth or max_items. */
static const char *jlimits(const struct aemp_val *v, size_t depth,
                           const aemp_limits_t *lim)
{
    if (v->type != AEMP_T_ARR && v->type != AEMP_T_MAP)
        return NULL;
    if (depth > lim->max_depth)
        return "nesting deeper than max_depth";
    if (v->len > lim->max_items)
        return "more than max_items elements";
    size_t n = v->type == AEMP_T_MAP ? 2 * (size_t)v->len : v->len;
    for (size_t i = 0; i < n; i++) {
        const char *why = jlimits(&v->u.items[i], depth + 1, lim);
        if (why)
            return why;
    }
    return NULL;
}

/* After the scan: refusals that need no values, and what the fill needs. */
static int jprepare(jdec_t *d, bool array)
{
    if (!array)
        return jfail(d, AEMP_EPROTO, "top-level value is not an array", NULL);
    if (d->too_long) /* more than 4 GiB of input: only with a huge max_packet */
        return jfail(d, AEMP_ELIMIT, "string longer than 4 GiB", NULL);
    if (d->too_many)
        return jfail(d, AEMP_ELIMIT, "more than max_items elements", NULL);
    /* without objects nothing merges: the scan's verdict is final */
    if (d->first_why && !d->objects)
        return jfail(d, AEMP_ELIMIT, d->first_why, NULL);
    if (d->widest_map > J_DEDUP_SMALL) {
        size_t n = 1;
        while (n < 2 * d->widest_map)
            n <<= 1;
        if (!(d->tab = aemp__reallocarray(NULL, n, sizeof *d->tab)))
            return jfail(d, AEMP_ENOMEM, "out of memory", NULL);
    }
    return 0;
}

/* Merged duplicates left unused nodes and text in the block; a block that
 * is not a recycled one of fixed size is copied without them, so that its
 * footprint (aemp__msg_footprint: measured from the values) stays true. */
static int jcompact(jdec_t *d, aemp__blocks_t *bc, aemp_msg_t *m,
                    aemp_msg_t **out)
{
    aemp_msg_t *copy = m;
    int rc = 0;
    if (d->merged && !(m->flags & AEMP__MSG_RECYCLE)) {
        rc = aemp__msg_slice(&copy, m, 0);
        aemp__msg_release(bc, m);
    }
    if (rc < 0)
        return jfail(d, rc, "out of memory", NULL);
    *out = copy;
    return 0;
}

static int jdecode(jdec_t *d, aemp__blocks_t *bc, aemp_msg_t **out)
{
    bool array = false;
    aemp__fill_t f;
    aemp_msg_t *m = NULL;
    int rc = jscan(d, &array);
    if (rc == 0)
        rc = jprepare(d, array);
    if (rc < 0)
        return rc;
    size_t n = (size_t)d->side[0];
    rc = aemp__msg_alloc_from(bc, &m, d->nodes, d->text, n, &f);
    if (rc < 0)
        return jfail(d, rc, rc == AEMP_ENOMEM ? "out of memory" : "too large",
                     NULL);
    d->p = jws(d->buf, d->end) + 1;
    d->next = 1;
    jfill_items(d, &f, m->root.u.items, n);
    const char *why =
        d->deepest > d->lim->max_depth || d->widest > d->lim->max_items
            ? jlimits(&m->root, 1, d->lim)
            : NULL;
    if (why) {
        aemp__msg_release(bc, m);
        return jfail(d, AEMP_ELIMIT, why, NULL);
    }
    return jcompact(d, bc, m, out);
}

int aemp__json_decode(aemp_msg_t **out, const char *buf, size_t len,
                      const aemp_limits_t *lim, char *errbuf, size_t errlen)
{
    return aemp__json_decode_from(NULL, out, buf, len, lim, errbuf, errlen);
}

int aemp__json_decode_from(aemp__blocks_t *bc, aemp_msg_t **out,
                           const char *buf, size_t len,
                           const aemp_limits_t *lim, char *errbuf,
                           size_t errlen)
{
    jdec_t d;
    d.buf = d.p = buf ? buf : "";
    d.end = d.buf + len;
    d.lim = lim;
    d.depth = d.nodes = d.text = d.deepest = d.widest = d.widest_map = 0;
    d.first = SIZE_MAX;
    d.first_why = NULL;
    d.too_long = d.too_many = d.objects = d.merged = false;
    d.side = d.side0;
    d.nside = d.next = 0;
    d.capside = J_SIDE0;
    d.scratch = d.scratch0;
    d.capscratch = J_SCRATCH0;
    d.tab = NULL;
    int rc = jdecode(&d, bc, out);
    if (rc < 0 && errbuf && errlen) {
        if (d.at != SIZE_MAX)
            snprintf(errbuf, errlen, "JSON: %s (at byte %zu)", d.why, d.at);
        else
            snprintf(errbuf, errlen, "JSON: %s", d.why);
    }
    if (d.side != d.side0)
        aemp__free(d.side);
    if (d.scratch != d.scratch0)
        aemp__free(d.scratch);
    aemp__free(d.tab);
    return rc;
}
