/* Local ports: the table keyed by counter, IDs, receive callbacks, and
 * working out where a port ID points. */
#include "kernel.h"

#include <string.h>

/* Counters are handed out in sequence, so `counter & mask` spreads live
 * ports without collisions within any window of nslots; linear probing
 * with backward-shift deletion keeps lookups to a slot or two. */
static size_t slot_of(const aemp_node_t *n, uint64_t counter)
{
    return (size_t)counter & (n->nslots - 1);
}

static int table_grow(aemp_node_t *n)
{
    size_t nslots = n->nslots ? n->nslots * 2 : 64;
    aemp__port_t **old = n->slots, **slots = aemp__calloc(nslots, sizeof *slots);
    if (!slots)
        return AEMP_ENOMEM;
    size_t oldn = n->nslots;
    n->slots = slots;
    n->nslots = nslots;
    for (size_t i = 0; i < oldn; i++) {
        if (!old[i])
            continue;
        size_t j = slot_of(n, old[i]->counter);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = old[i];
    }
    aemp__free(old);
    return 0;
}

static int table_insert(aemp_node_t *n, aemp__port_t *p)
{
    if ((n->nports + 1) * 4 > n->nslots * 3) {
        int rc = table_grow(n);
        if (rc < 0)
            return rc;
    }
    size_t j = slot_of(n, p->counter);
    while (n->slots[j])
        j = (j + 1) & (n->nslots - 1);
    n->slots[j] = p;
    n->nports++;
    return 0;
}

aemp__port_t *aemp__port_get(aemp_node_t *n, uint64_t counter)
{
    if (!n->nslots)
        return NULL;
    for (size_t j = slot_of(n, counter);; j = (j + 1) & (n->nslots - 1)) {
        aemp__port_t *p = n->slots[j];
        if (!p || p->counter == counter)
            return p;
    }
}

/* The part of a port's ID after '#'. */
static const char *name_part(const aemp__port_t *p)
{
    return strchr(p->id, '#') + 1;
}

void aemp__port_unlink(aemp_node_t *n, aemp__port_t *p)
{
    if (p->named) {
        const char *name = name_part(p);
        aemp__strmap_del(&n->named, name, strlen(name));
    }
    size_t mask = n->nslots - 1, i = slot_of(n, p->counter);
    while (n->slots[i] != p)
        i = (i + 1) & mask;
    /* backward-shift: move later entries of the run into the hole when
     * their home slot does not lie between the hole and themselves */
    for (size_t j = (i + 1) & mask; n->slots[j]; j = (j + 1) & mask) {
        size_t home = slot_of(n, n->slots[j]->counter);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            n->slots[i] = n->slots[j];
            i = j;
        }
    }
    n->slots[i] = NULL;
    n->nports--;
}

/* A port with a name a spawner chose: "<noderef>#<name>". */
static aemp__port_t *port_alloc_named(aemp_node_t *n, uint64_t counter,
                                      const char *name)
{
    size_t nl = strlen(name), idlen = n->noderef_len + 1 + nl;
    aemp__port_t *p = aemp__calloc(1, sizeof *p + idlen + 1);
    if (!p)
        return NULL;
    p->counter = counter;
    p->idlen = (uint32_t)idlen;
    p->named = 1;
    memcpy(p->id, n->noderef, n->noderef_len);
    p->id[n->noderef_len] = '#';
    memcpy(p->id + n->noderef_len + 1, name, nl + 1);
    return p;
}

static aemp__port_t *port_alloc(aemp_node_t *n, uint64_t counter)
{
    char digits[24];
    size_t nd = 0;
    for (uint64_t c = counter; c || !nd; c /= 10)
        digits[nd++] = (char)('0' + c % 10);
    size_t idlen = counter ? n->noderef_len + 2 + AEMP__COOKIE_LEN + nd
                           : n->noderef_len;
    aemp__port_t *p = aemp__calloc(1, sizeof *p + idlen + 1);
    if (!p)
        return NULL;
    p->counter = counter;
    p->idlen = (uint32_t)idlen;
    char *d = p->id;
    memcpy(d, n->noderef, n->noderef_len);
    d += n->noderef_len;
    if (counter) {
        *d++ = '#';
        memcpy(d, n->cookie, AEMP__COOKIE_LEN);
        d += AEMP__COOKIE_LEN;
        *d++ = '.';
        while (nd)
            *d++ = digits[--nd];
    }
    *d = 0;
    return p;
}

aemp__port_t *aemp__stub_new(const char *id, size_t len)
{
    aemp__port_t *p = aemp__calloc(1, sizeof *p + len + 1);
    if (p) {
        p->remote = 1;
        p->idlen = (uint32_t)len;
        memcpy(p->id, id, len);
    }
    return p;
}

int aemp__ports_init(aemp_node_t *n)
{
    n->node_port = port_alloc(n, 0);
    return n->node_port ? 0 : AEMP_ENOMEM;
}

void aemp__tags_free(struct aemp__tags *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        aemp__free(t->t[i].tag);
    aemp__free(t);
}

static void port_destroy(aemp_node_t *n, aemp__port_t *p)
{
    aemp__port_drop_mons(n, p);
    aemp__tags_free(p->tags);
    aemp__free(p);
}

void aemp__ports_free(aemp_node_t *n)
{
    aemp__strmap_free(&n->named);
    /* detach the table first: a guard's release function may look ports
     * up while we go, and must find none rather than freed ones */
    aemp__port_t **slots = n->slots;
    size_t nslots = n->nslots;
    n->slots = NULL;
    n->nslots = n->nports = 0;
    for (size_t i = 0; i < nslots; i++)
        if (slots[i])
            port_destroy(n, slots[i]);
    aemp__free(slots);
    if (n->node_port)
        port_destroy(n, n->node_port);
    n->node_port = NULL;
}

static uint64_t named_counter(const aemp_node_t *n, const char *name,
                              size_t len);

int aemp__port_new(aemp_node_t *n, const char *name, aemp__port_t **out)
{
    size_t nl = name ? strlen(name) : 0;
    /* a name in our own form ("<cookie>.…") is ours to give out */
    bool ours = nl > AEMP__COOKIE_LEN &&
                !memcmp(name, n->cookie, AEMP__COOKIE_LEN) &&
                name[AEMP__COOKIE_LEN] == '.';
    if (name && (!nl || ours || strchr(name, '#') ||
                 named_counter(n, name, nl) != UINT64_MAX))
        return AEMP_EBUSY; /* ours, or one spawned before */
    aemp__port_t *p = name ? port_alloc_named(n, n->next_counter, name)
                           : port_alloc(n, n->next_counter);
    if (!p)
        return AEMP_ENOMEM;
    int rc = table_insert(n, p);
    if (rc == 0 && name &&
        (rc = aemp__strmap_put(&n->named, name_part(p), nl, p)) < 0)
        aemp__port_unlink(n, p);
    if (rc < 0) {
        p->named = 0;
        aemp__free(p);
        return rc;
    }
    n->next_counter++;
    *out = p;
    return 0;
}

int aemp_port(aemp_node_t *n, aemp_rcv_fn cb, void *user, const char **id)
{
    if (!n || !id || n->freeing)
        return AEMP_EINVAL;
    aemp__port_t *p;
    int rc = aemp__port_new(n, NULL, &p);
    if (rc < 0)
        return rc;
    p->cb = cb;
    p->user = user;
    *id = p->id;
    return 0;
}

/* A spawned port's name (off the hot path: only names not in our form). */
static uint64_t named_counter(const aemp_node_t *n, const char *name,
                              size_t len)
{
    const aemp__port_t *p = n->named.n ? aemp__strmap_get(&n->named, name, len)
                                       : NULL;
    return p ? p->counter : UINT64_MAX;
}

/* Parses "<cookie>.<digits>" (len bytes) of our own instance, or finds a
 * spawned port's name; anything else names no port of ours (an earlier
 * instance's, or garbage). */
static uint64_t counter_of(const aemp_node_t *n, const char *name, size_t len)
{
    /* fixed-size copies compile to plain loads; a memcmp call was a tenth
     * of a small snd */
    uint64_t a8, b8;
    uint16_t a2, b2;
    if (len < AEMP__COOKIE_LEN + 2 || len > AEMP__COOKIE_LEN + 21)
        return named_counter(n, name, len);
    memcpy(&a8, name, 8);
    memcpy(&b8, n->cookie, 8);
    memcpy(&a2, name + 8, 2);
    memcpy(&b2, n->cookie + 8, 2);
    if (a8 != b8 || a2 != b2 || name[AEMP__COOKIE_LEN] != '.')
        return named_counter(n, name, len);
    const char *d = name + AEMP__COOKIE_LEN + 1, *end = name + len;
    uint64_t c = 0;
    if (*d < '1' || *d > '9')
        return UINT64_MAX;
    for (; d < end; d++) {
        if (*d < '0' || *d > '9' || c > (UINT64_MAX - 9) / 10)
            return UINT64_MAX;
        c = c * 10 + (uint64_t)(*d - '0');
    }
    return c;
}

uint64_t aemp__port_counter(const aemp_node_t *n, const char *name)
{
    return counter_of(n, name, strlen(name));
}

/* Whether id (len bytes) names us: our current name or one we had before
 * going public; returns that name's length, 0 if none.  Lengths first,
 * then memcmp: this runs on every snd. */
static size_t own_prefix(const aemp_node_t *n, const char *id, size_t len)
{
    size_t nl = n->noderef_len;
    if (len >= nl && (len == nl || id[nl] == '#') &&
        aemp__same(id, n->noderef, nl))
        return nl;
    for (size_t i = 0; i < n->nold; i++) {
        const char *old = n->old_names[i];
        size_t ol = strlen(old);
        if (len >= ol && (len == ol || id[ol] == '#') && !memcmp(id, old, ol))
            return ol;
    }
    return 0;
}

int aemp__port_locate(aemp_node_t *n, const char *id, uint64_t *counter)
{
    if (!id || !*id || *id == '#')
        return AEMP_EINVAL;
    size_t len = strlen(id), plen = own_prefix(n, id, len);
    if (!plen)
        return 0;
    *counter = plen == len ? 0 : counter_of(n, id + plen + 1, len - plen - 1);
    return 1;
}

int aemp__port_find(aemp_node_t *n, const char *id, aemp__port_t **out)
{
    uint64_t counter;
    int rc = aemp__port_locate(n, id, &counter);
    if (rc <= 0)
        return rc < 0 ? rc : AEMP_ENOTLOCAL;
    if (counter == 0)
        return AEMP_EPERM;
    aemp__port_t *p = aemp__port_get(n, counter);
    if (!p)
        return AEMP_ENOPORT;
    *out = p;
    return 0;
}

int aemp_port_exists(aemp_node_t *n, const char *port)
{
    uint64_t counter;
    if (!n || aemp__port_locate(n, port, &counter) != 1)
        return 0;
    return counter == 0 || aemp__port_get(n, counter) != NULL;
}

int aemp_rcv(aemp_node_t *n, const char *port, aemp_rcv_fn cb, void *user)
{
    aemp__port_t *p;
    int rc = n ? aemp__port_find(n, port, &p) : AEMP_EINVAL;
    if (rc < 0)
        return rc;
    p->cb = cb;
    p->user = cb ? user : NULL;
    return 0;
}

static struct aemp__tag *tag_slot(struct aemp__tags *t, const char *tag,
                                  size_t len)
{
    for (size_t i = 0; t && i < t->n; i++)
        if (t->t[i].len == len && aemp__same(t->t[i].tag, tag, len))
            return &t->t[i];
    return NULL;
}

const struct aemp__tag *aemp__tags_find(const struct aemp__tags *t,
                                        const char *tag, size_t len)
{
    return tag_slot((struct aemp__tags *)t, tag, len);
}

static int tag_add(struct aemp__tags **tp, const char *tag, size_t len,
                   aemp_rcv_fn cb, void *user)
{
    struct aemp__tags *t = *tp;
    if (!t || t->n == t->cap) {
        size_t cap = t ? t->cap * 2 : 2;
        struct aemp__tags *nt =
            aemp__realloc(t, sizeof *t + cap * sizeof t->t[0]);
        if (!nt)
            return AEMP_ENOMEM;
        if (!t)
            nt->n = 0;
        nt->cap = cap;
        *tp = t = nt;
    }
    char *copy = aemp__strndup(tag, len);
    if (!copy)
        return AEMP_ENOMEM;
    t->t[t->n++] = (struct aemp__tag){copy, len, cb, user};
    return 0;
}

/* Registers, replaces (cb) or removes (cb NULL) the entry for tag. */
int aemp__tags_set(struct aemp__tags **tp, const char *tag, aemp_rcv_fn cb,
                   void *user)
{
    size_t len = strlen(tag);
    struct aemp__tag *e = tag_slot(*tp, tag, len);
    if (e && cb) {
        e->cb = cb;
        e->user = user;
    } else if (e) {
        aemp__free(e->tag);
        *e = (*tp)->t[--(*tp)->n];
        if (!(*tp)->n) {
            aemp__tags_free(*tp);
            *tp = NULL;
        }
    } else if (cb) {
        return tag_add(tp, tag, len, cb, user);
    }
    return 0;
}

int aemp_rcv_tag(aemp_node_t *n, const char *port, const char *tag,
                 aemp_rcv_fn cb, void *user)
{
    aemp__port_t *p;
    if (!n || !tag)
        return AEMP_EINVAL;
    int rc = aemp__port_find(n, port, &p);
    return rc < 0 ? rc : aemp__tags_set(&p->tags, tag, cb, user);
}

int aemp_node_of(const char *port, char *buf, size_t size)
{
    if (!port || !buf)
        return AEMP_EINVAL;
    const char *hash = strchr(port, '#');
    size_t len = hash ? (size_t)(hash - port) : strlen(port);
    if (len >= size || len > INT32_MAX)
        return AEMP_ERANGE;
    memcpy(buf, port, len);
    buf[len] = 0;
    return (int)len;
}

aemp_node_t *aemp_ctx_node(const aemp_ctx_t *ctx) { return ctx->node; }
const char *aemp_self(const aemp_ctx_t *ctx) { return ctx->port->id; }

int aemp_die(aemp_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = aemp__vasprintf(fmt, ap);
    va_end(ap);
    if (text) {
        aemp__free(ctx->die);
        ctx->die = text;
    }
    return AEMP_EDIE;
}

int aemp__node_rename(aemp_node_t *n, const char *noderef)
{
    char *name = aemp__strdup(noderef);
    char **old = aemp__reallocarray(n->old_names, n->nold + 1, sizeof *old);
    if (old)
        n->old_names = old;
    char *prev = n->noderef;
    n->noderef = name;
    n->noderef_len = name ? strlen(name) : 0;
    aemp__port_t *np = name && old ? port_alloc(n, 0) : NULL;
    if (!np) {
        n->noderef = prev;
        n->noderef_len = strlen(prev);
        aemp__free(name);
        return AEMP_ENOMEM;
    }
    /* the node port's monitors (of peers, on link loss) move along */
    np->mons = n->node_port->mons;
    for (struct aemp_mon *m = np->mons; m; m = m->next)
        m->port = np;
    aemp__free(n->node_port);
    n->node_port = np;
    n->old_names[n->nold++] = prev;
    return 0;
}

/* ---- reg: a local name for a port (the seed's reg) ------------------------ */

typedef struct reg_name {
    aemp_node_t *node;
    size_t len;
    char name[];
} reg_name_t;

static void reg_release(void *resource)
{
    reg_name_t *r = resource;
    aemp__strmap_del(&r->node->named, r->name, r->len);
    aemp__free(r);
}

int aemp_reg(aemp_node_t *n, const char *name, const char *port,
             aemp_mon_t **guard)
{
    if (!n || !name || !port || n->freeing)
        return AEMP_EINVAL;
    size_t len = strlen(name);
    bool ours = len > AEMP__COOKIE_LEN &&
                !memcmp(name, n->cookie, AEMP__COOKIE_LEN) &&
                name[AEMP__COOKIE_LEN] == '.';
    if (!len || strchr(name, '#') || ours)
        return AEMP_EINVAL;
    if (named_counter(n, name, len) != UINT64_MAX)
        return AEMP_EBUSY;
    aemp__port_t *p;
    int rc = aemp__port_find(n, port, &p);
    if (rc < 0)
        return rc;
    if (p == n->node_port)
        return AEMP_EPERM;
    reg_name_t *r = aemp__malloc(sizeof *r + len + 1);
    if (!r)
        return AEMP_ENOMEM;
    r->node = n;
    r->len = len;
    memcpy(r->name, name, len + 1);
    if ((rc = aemp__strmap_put(&n->named, r->name, len, p)) < 0) {
        aemp__free(r);
        return rc;
    }
    /* the name goes with the port (its death notice runs the release
     * before the port's memory is freed) or with the guard */
    if ((rc = aemp_mon_guard(n, port, reg_release, r, guard)) < 0)
        reg_release(r);
    return rc;
}
