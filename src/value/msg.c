/* Messages: one immutable, reference-counted block per message, built from
 * pictures or value trees, read with aemp_msg_unpack. */
#include "value.h"

#include <limits.h>
#include <string.h>

#define MSG_HDR sizeof(struct aemp_msg)

static void *block_get(aemp__blocks_t *bc, size_t size, uint32_t *flags)
{
    *flags = 0;
    if (!bc || size > AEMP__BLOCK_SIZE)
        return aemp__malloc(size);
    *flags = AEMP__MSG_RECYCLE;
    void *b = bc->head;
    if (!b)
        return aemp__malloc(AEMP__BLOCK_SIZE);
    bc->head = *(void **)b;
    bc->n--;
    return b;
}

int aemp__msg_alloc_from(aemp__blocks_t *bc, aemp_msg_t **out, size_t nodes,
                         size_t text, size_t nroot, aemp__fill_t *fill)
{
    const size_t nsz = sizeof(struct aemp_val);
    if (nodes > (SIZE_MAX - MSG_HDR) / nsz ||
        text > SIZE_MAX - MSG_HDR - nodes * nsz || nroot > AEMP__MAX_LEN)
        return AEMP_ELIMIT;
    uint32_t flags;
    aemp_msg_t *m = block_get(bc, MSG_HDR + nodes * nsz + text, &flags);
    if (!m)
        return AEMP_ENOMEM;
    m->owner = m->base = m;
    m->refs = 1;
    m->flags = flags;
    m->root.type = AEMP_T_ARR;
    m->root.owned = 0;
    m->root.pad = 0;
    m->root.len = (uint32_t)nroot;
    m->root.u.items = (struct aemp_val *)(m + 1);
    fill->node = m->root.u.items + nroot;
    fill->text = (char *)(m->root.u.items + nodes);
    *out = m;
    return 0;
}

int aemp__msg_alloc(aemp_msg_t **out, size_t nodes, size_t text, size_t nroot,
                    aemp__fill_t *fill)
{
    return aemp__msg_alloc_from(NULL, out, nodes, text, nroot, fill);
}

aemp_msg_t *aemp__msg_ref(const aemp_msg_t *m)
{
    if (m->owner) {
        m->owner->refs++;
        return m->owner;
    }
    aemp_msg_t *s = aemp__malloc(sizeof *s);
    if (!s)
        return NULL;
    *s = *m;
    s->owner = s;
    s->refs = 1;
    s->flags = 0;
    m->base->refs++;
    return s;
}

/* Drops one reference of a block or slice; true if it was the last, with
 * *block set to the block whose storage is now unused. */
static bool msg_drop(aemp_msg_t *m, aemp_msg_t **block)
{
    aemp_msg_t *o = m->owner;
    if (!o || --o->refs)
        return false;
    if (o->base == o) {
        *block = o;
        return true;
    }
    aemp_msg_t *base = o->base;
    aemp__free(o); /* a slice */
    if (--base->refs)
        return false;
    *block = base;
    return true;
}

void aemp__msg_release(aemp__blocks_t *bc, aemp_msg_t *m)
{
    aemp_msg_t *o;
    if (!msg_drop(m, &o))
        return;
    if ((o->flags & AEMP__MSG_RECYCLE) && bc->n < AEMP__BLOCK_CACHE) {
        *(void **)o = bc->head;
        bc->head = o;
        bc->n++;
    } else {
        aemp__free(o);
    }
}

size_t aemp__msg_footprint(const aemp_msg_t *m)
{
    const aemp_msg_t *b = m->base ? m->base : m;
    if (b->flags & AEMP__MSG_RECYCLE)
        return AEMP__BLOCK_SIZE;
    size_t nodes = 0, text = 0;
    aemp__val_measure(&b->root, &nodes, &text);
    return MSG_HDR + (nodes + b->root.len) * sizeof(struct aemp_val) + text;
}

void aemp__blocks_free(aemp__blocks_t *bc)
{
    while (bc->head) {
        void *b = bc->head;
        bc->head = *(void **)b;
        aemp__free(b);
    }
    bc->n = 0;
}

char *aemp__fill_text(aemp__fill_t *f, const void *p, size_t len)
{
    char *t = f->text;
    if (len)
        memcpy(t, p, len);
    t[len] = 0;
    f->text += len + 1;
    return t;
}

struct aemp_val *aemp__fill_nodes(aemp__fill_t *f, size_t n)
{
    struct aemp_val *v = f->node;
    f->node += n;
    return v;
}

static size_t child_count(const aemp_val_t *v)
{
    if (v->type == AEMP_T_ARR)
        return v->len;
    if (v->type == AEMP_T_MAP)
        return 2 * (size_t)v->len;
    return 0;
}

int aemp__val_measure(const aemp_val_t *v, size_t *nodes, size_t *text)
{
    if (v->type == AEMP_T_STR || v->type == AEMP_T_BYTES) {
        *text += (size_t)v->len + 1;
        return 0;
    }
    size_t n = child_count(v);
    *nodes += n;
    for (size_t i = 0; i < n; i++)
        if (aemp__val_measure(&v->u.items[i], nodes, text) < 0)
            return AEMP_ELIMIT;
    return *nodes > SIZE_MAX / 64 || *text > SIZE_MAX / 2 ? AEMP_ELIMIT : 0;
}

void aemp__val_flatten(struct aemp_val *dst, const aemp_val_t *v,
                       aemp__fill_t *f)
{
    *dst = *v;
    dst->owned = 0;
    if (v->type == AEMP_T_STR || v->type == AEMP_T_BYTES) {
        dst->u.s = aemp__fill_text(f, v->u.s, v->len);
        return;
    }
    size_t n = child_count(v);
    if (v->type != AEMP_T_ARR && v->type != AEMP_T_MAP)
        return;
    dst->u.items = aemp__fill_nodes(f, n);
    for (size_t i = 0; i < n; i++)
        aemp__val_flatten(&dst->u.items[i], &v->u.items[i], f);
}

int aemp__msg_of_val(aemp_msg_t **out, const aemp_val_t *v)
{
    if (!v)
        return AEMP_ENOMEM; /* a constructor failed */
    if (v->type != AEMP_T_ARR)
        return AEMP_ETYPE;
    size_t nodes = 0, text = 0;
    int rc = aemp__val_measure(v, &nodes, &text);
    aemp__fill_t f;
    aemp_msg_t *m;
    if (rc < 0 || (rc = aemp__msg_alloc(&m, nodes, text, v->len, &f)) < 0)
        return rc;
    for (size_t i = 0; i < v->len; i++)
        aemp__val_flatten(&m->root.u.items[i], &v->u.items[i], &f);
    *out = m;
    return 0;
}

int aemp_msg_from_val(aemp_msg_t **out, aemp_val_t **arr)
{
    if (!out || !arr)
        return AEMP_EINVAL;
    int rc = aemp__msg_of_val(out, *arr);
    if (rc == 0) {
        aemp_val_free(*arr);
        *arr = NULL;
    }
    return rc;
}

aemp_msg_t *aemp_msg_ref(const aemp_msg_t *m)
{
    aemp_msg_t *o = m ? aemp__msg_ref(m) : NULL;
    if (o)
        o->base->flags &= ~AEMP__MSG_RECYCLE; /* may be released anywhere */
    return o;
}

void aemp_msg_unref(aemp_msg_t *m)
{
    aemp_msg_t *o;
    if (m && msg_drop(m, &o))
        aemp__free(o);
}

size_t aemp_msg_len(const aemp_msg_t *m) { return m ? m->root.len : 0; }

const aemp_val_t *aemp_msg_at(const aemp_msg_t *m, size_t i)
{
    return m ? aemp_val_at(&m->root, i) : NULL;
}

const aemp_val_t *aemp_msg_val(const aemp_msg_t *m)
{
    return m ? &m->root : NULL;
}

void aemp__msg_view_tail(const aemp_msg_t *m, aemp_msg_t *view)
{
    *view = *m;
    view->owner = NULL;
    view->base = m->base;
    if (view->root.len) {
        view->root.len--;
        view->root.u.items++;
    }
}

/* One message of the elements of several runs of values, copied. */
static int msg_join(aemp_msg_t **out, const struct aemp_val *const runs[],
                    const size_t lens[], size_t nruns)
{
    size_t nroot = 0, nodes = 0, text = 0;
    for (size_t r = 0; r < nruns; r++) {
        nroot += lens[r];
        for (size_t i = 0; i < lens[r]; i++)
            aemp__val_measure(&runs[r][i], &nodes, &text);
    }
    aemp__fill_t f;
    aemp_msg_t *m;
    int rc = aemp__msg_alloc(&m, nroot + nodes, text, nroot, &f);
    if (rc < 0)
        return rc;
    struct aemp_val *dst = m->root.u.items;
    for (size_t r = 0; r < nruns; r++)
        for (size_t i = 0; i < lens[r]; i++)
            aemp__val_flatten(dst++, &runs[r][i], &f);
    *out = m;
    return 0;
}

int aemp__msg_concat(aemp_msg_t **out, const aemp_msg_t *a,
                     const aemp_msg_t *b)
{
    const struct aemp_val *runs[2] = {a->root.u.items, b->root.u.items};
    size_t lens[2] = {a->root.len, b->root.len};
    return msg_join(out, runs, lens, 2);
}

int aemp__msg_slice(aemp_msg_t **out, const aemp_msg_t *m, size_t from)
{
    if (from > m->root.len)
        from = m->root.len;
    const struct aemp_val *runs[1] = {m->root.u.items + from};
    size_t lens[1] = {m->root.len - from};
    return msg_join(out, runs, lens, 1);
}

/* ---- pictures ---------------------------------------------------------- */

/* One picture element and its argument.  Pictures are read in one pass
 * over the va_list into these, so the block's size is known before it is
 * allocated and the arguments are never walked twice. */
typedef struct pic_arg {
    char c;     /* letter; '[' or '{' for containers; 'k' for a map key */
    size_t len; /* text bytes, or the number of children of a container */
    union {
        int64_t i;
        double d;
        const char *s;
        const aemp_val_t *v;
    } u;
} pic_arg_t;

#define PIC_STACK_ARGS 32
#define PIC_MAX_DEPTH 32

typedef struct pic_sizes {
    size_t nroot, nodes, text;
} pic_sizes_t;

static int pic_text(pic_arg_t *a, const char *s, size_t len, pic_sizes_t *z)
{
    if ((!s && len) || len > AEMP__MAX_LEN)
        return AEMP_EINVAL;
    a->u.s = s;
    a->len = len;
    z->text += len + 1;
    return 0;
}

/* Reads one letter's argument into a. */
static int pic_value(pic_arg_t *a, va_list *ap, pic_sizes_t *z)
{
    const char *s;
    switch (a->c) {
    case 'n': return 0;
    case 'b': a->u.i = va_arg(*ap, int) != 0; return 0;
    case 'i': a->u.i = va_arg(*ap, int); return 0;
    case 'I': a->u.i = va_arg(*ap, int64_t); return 0;
    case 'd': a->u.d = va_arg(*ap, double); return 0;
    case 's':
        s = va_arg(*ap, const char *);
        return s ? pic_text(a, s, strlen(s), z) : AEMP_EINVAL;
    case 'S':
    case 'y':
        s = va_arg(*ap, const char *);
        return pic_text(a, s, va_arg(*ap, size_t), z);
    case 'v':
        a->u.v = va_arg(*ap, const aemp_val_t *);
        return a->u.v ? aemp__val_measure(a->u.v, &z->nodes, &z->text) : 0;
    default:
        return AEMP_EINVAL;
    }
}

/* Pass 1: picture + arguments -> args[], with container child counts
 * patched in as their children are read. */
static int pic_collect(const char *p, va_list *ap, pic_arg_t *args,
                       size_t *nargs, pic_sizes_t *z)
{
    long open[PIC_MAX_DEPTH]; /* arg index of each open container */
    int depth = 0;
    size_t n = 0;
    for (; *p; p++) {
        if (*p == ']' || *p == '}') {
            if (!depth || args[open[depth - 1]].c != (*p == ']' ? '[' : '{'))
                return AEMP_EINVAL;
            depth--;
            continue;
        }
        if (depth && args[open[depth - 1]].c == '{') {
            const char *k = va_arg(*ap, const char *);
            args[n].c = 'k';
            if (!k || pic_text(&args[n++], k, strlen(k), z) < 0)
                return AEMP_EINVAL;
        }
        if (depth)
            args[open[depth - 1]].len++;
        else
            z->nroot++;
        pic_arg_t *a = &args[n++];
        a->c = *p;
        a->len = 0;
        if (*p == '[' || *p == '{') {
            if (depth == PIC_MAX_DEPTH)
                return AEMP_EINVAL;
            open[depth++] = (long)(a - args);
        } else {
            int rc = pic_value(a, ap, z);
            if (rc < 0)
                return rc;
        }
    }
    *nargs = n;
    return depth ? AEMP_EINVAL : 0;
}

static void set_text(struct aemp_val *d, aemp_type_t t, const pic_arg_t *a,
                     aemp__fill_t *f)
{
    d->type = (uint8_t)t;
    d->len = (uint32_t)a->len;
    d->u.s = aemp__fill_text(f, a->u.s, a->len);
}

/* Pass 2: writes `count` consecutive values from args[*i] into dst. */
static void pic_fill(const pic_arg_t *args, size_t *i, struct aemp_val *dst,
                     size_t count, aemp__fill_t *f)
{
    for (size_t k = 0; k < count; k++) {
        const pic_arg_t *a = &args[(*i)++];
        struct aemp_val *d = &dst[k];
        memset(d, 0, sizeof *d);
        switch (a->c) {
        case 'n': d->type = AEMP_T_NULL; break;
        case 'b': d->type = AEMP_T_BOOL; d->u.i = a->u.i; break;
        case 'i': case 'I': d->type = AEMP_T_INT; d->u.i = a->u.i; break;
        case 'd': d->type = AEMP_T_DOUBLE; d->u.d = a->u.d; break;
        case 's': case 'S': case 'k': set_text(d, AEMP_T_STR, a, f); break;
        case 'y': set_text(d, AEMP_T_BYTES, a, f); break;
        case 'v':
            if (a->u.v)
                aemp__val_flatten(d, a->u.v, f);
            break;
        case '[':
        case '{': {
            size_t nn = a->c == '[' ? a->len : 2 * a->len;
            d->type = a->c == '[' ? AEMP_T_ARR : AEMP_T_MAP;
            d->len = (uint32_t)a->len;
            d->u.items = aemp__fill_nodes(f, nn);
            pic_fill(args, i, d->u.items, nn, f);
            break;
        }
        }
    }
}

int aemp__msg_vnew(aemp_msg_t **out, const char *picture, va_list ap)
{
    return aemp__msg_vnew_from(NULL, out, picture, ap);
}

#define PIC_FLAT_MAX 8

/* The common case — a few scalars and strings, no nesting — in one pass
 * straight into nodes: half the cost of a small snd was the general
 * engine.  1 means "not flat": use the general path (which also reports
 * bad pictures). */
static bool pic_is_flat(const char *p)
{
    for (size_t n = 0; *p; p++, n++) {
        if (n == PIC_FLAT_MAX)
            return false;
        switch (*p) {
        case 'n': case 'b': case 'i': case 'I': case 'd':
        case 's': case 'S': case 'y':
            break;
        default:
            return false;
        }
    }
    return true;
}

/* Consumes ap directly: copying a va_list right after va_start stalls on
 * store forwarding, which was a quarter of a small snd. */
static int pic_flat(aemp__blocks_t *bc, aemp_msg_t **out, const char *p,
                    va_list a)
{
    struct aemp_val v[PIC_FLAT_MAX];
    size_t n = 0, text = 0;
    int rc = 0;
    for (; *p && rc == 0; p++, n++) {
        struct aemp_val *d = &v[n];
        const char *str;
        size_t len;
        switch (*p) {
        case 'n': d->type = AEMP_T_NULL; break;
        case 'b': d->type = AEMP_T_BOOL; d->u.i = va_arg(a, int) != 0; break;
        case 'i': d->type = AEMP_T_INT; d->u.i = va_arg(a, int); break;
        case 'I': d->type = AEMP_T_INT; d->u.i = va_arg(a, int64_t); break;
        case 'd': d->type = AEMP_T_DOUBLE; d->u.d = va_arg(a, double); break;
        case 's':
        case 'S':
        case 'y':
            str = va_arg(a, const char *);
            len = *p == 's' ? (str ? strlen(str) : 0) : va_arg(a, size_t);
            if ((!str && (*p == 's' || len)) || len > AEMP__MAX_LEN) {
                rc = AEMP_EINVAL;
                break;
            }
            d->type = *p == 'y' ? AEMP_T_BYTES : AEMP_T_STR;
            d->len = (uint32_t)len;
            d->u.s = (char *)str;
            text += len + 1;
            break;
        }
    }
    aemp__fill_t f;
    aemp_msg_t *m;
    if (rc || (rc = aemp__msg_alloc_from(bc, &m, n, text, n, &f)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        struct aemp_val *d = &m->root.u.items[i];
        *d = v[i];
        d->owned = 0;
        d->pad = 0;
        if (d->type == AEMP_T_STR || d->type == AEMP_T_BYTES)
            d->u.s = aemp__fill_text(&f, v[i].u.s, v[i].len);
        else if (d->type == AEMP_T_NULL)
            d->len = 0;
    }
    *out = m;
    return 0;
}

int aemp__msg_vnew_from(aemp__blocks_t *bc, aemp_msg_t **out,
                        const char *picture, va_list ap)
{
    if (!out)
        return AEMP_EINVAL;
    if (!picture)
        picture = "";
    if (pic_is_flat(picture))
        return pic_flat(bc, out, picture, ap);
    /* each letter may bring a map key: at most two args per character */
    size_t nargs = 0;
    pic_arg_t stack[PIC_STACK_ARGS], *args = stack;
    if (strnlen(picture, PIC_STACK_ARGS / 2 + 1) > PIC_STACK_ARGS / 2 &&
        !(args = aemp__calloc(strlen(picture), 2 * sizeof *args)))
        return AEMP_ENOMEM;
    pic_sizes_t z = {0, 0, 0};
    va_list ap2;
    va_copy(ap2, ap);
    int rc = pic_collect(picture, &ap2, args, &nargs, &z);
    va_end(ap2);
    aemp__fill_t f;
    aemp_msg_t *m;
    /* one node per arg (root values, nested values, keys) plus the nodes
     * inside 'v' values */
    if (rc == 0 && (rc = aemp__msg_alloc_from(bc, &m, nargs + z.nodes, z.text,
                                              z.nroot, &f)) == 0) {
        size_t i = 0;
        pic_fill(args, &i, m->root.u.items, z.nroot, &f);
        *out = m;
    }
    if (args != stack)
        aemp__free(args);
    return rc;
}

int aemp_msg_new(aemp_msg_t **out, const char *picture, ...)
{
    va_list ap;
    va_start(ap, picture);
    int rc = aemp__msg_vnew(out, picture, ap);
    va_end(ap);
    return rc;
}

/* ---- unpacking --------------------------------------------------------- */

static int unpack_check(const aemp_msg_t *m, const char *p)
{
    size_t i = 0;
    for (; *p; p++, i++) {
        if (*p == '*' && !p[1])
            return 0;
        const aemp_val_t *v = aemp_msg_at(m, i);
        if (!v)
            return AEMP_ERANGE;
        aemp_type_t t = (aemp_type_t)v->type;
        switch (*p) {
        case '-': break;
        case 'n': if (t != AEMP_T_NULL) return AEMP_ETYPE; break;
        case 'b': if (t != AEMP_T_BOOL) return AEMP_ETYPE; break;
        case 'i':
            if (t != AEMP_T_INT)
                return AEMP_ETYPE;
            if (v->u.i < INT_MIN || v->u.i > INT_MAX)
                return AEMP_ERANGE;
            break;
        case 'I': if (t != AEMP_T_INT) return AEMP_ETYPE; break;
        case 'd':
            if (t != AEMP_T_DOUBLE && t != AEMP_T_INT)
                return AEMP_ETYPE;
            break;
        case 's': case 'S': if (!aemp__val_is_text(v)) return AEMP_ETYPE; break;
        case 'y': if (t != AEMP_T_BYTES) return AEMP_ETYPE; break;
        case 'v': break;
        default: return AEMP_EINVAL;
        }
    }
    return i == aemp_msg_len(m) ? 0 : AEMP_ERANGE;
}

int aemp_msg_unpack(const aemp_msg_t *m, const char *picture, ...)
{
    if (!m || !picture)
        return AEMP_EINVAL;
    int rc = unpack_check(m, picture);
    if (rc < 0)
        return rc;
    va_list ap;
    va_start(ap, picture);
    const aemp_val_t *v = m->root.u.items;
    for (const char *p = picture; *p && *p != '*'; p++, v++) {
        switch (*p) {
        case 'b': *va_arg(ap, int *) = (int)v->u.i; break;
        case 'i': *va_arg(ap, int *) = (int)v->u.i; break;
        case 'I': *va_arg(ap, int64_t *) = v->u.i; break;
        case 'd': aemp_val_double(v, va_arg(ap, double *)); break;
        case 's': *va_arg(ap, const char **) = v->u.s; break;
        case 'S':
            *va_arg(ap, const char **) = v->u.s;
            *va_arg(ap, size_t *) = v->len;
            break;
        case 'y':
            *va_arg(ap, const void **) = v->u.s;
            *va_arg(ap, size_t *) = v->len;
            break;
        case 'v': *va_arg(ap, const aemp_val_t **) = v; break;
        }
    }
    va_end(ap);
    return 0;
}
