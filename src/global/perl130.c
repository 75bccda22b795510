/* AnyEvent::MP 1.30's Global service, answered well enough that 1.30
 * nodes learn our addresses and we theirs (GLOBAL-NOTES §2, §3, §6;
 * PROTOCOL.md §10.5).
 *
 * 1.30 has no global nodes and no database: per link, each side spawns
 * "AnyEvent::MP::Global::connect" on the other (arguments: the protocol
 * version 0 and its own node ID), monitors that rendezvous port and talks
 * to it — only ever to the port it spawned, never back on the other's.
 * What we do, per 1.30 peer:
 *
 *   - On link-up (aemp__perl130_node_up): spawn connect on it, mon1 it, and
 *     send `addr` (the endpoints we listen on, [] if none), `nodes` (the
 *     nodes we have a link to and know addresses of, if any: C nodes and
 *     other 1.30 nodes; never 2.x nodes, which 1.30 cannot authenticate
 *     with), `setup`, and `seedme1` (every 1.30 peer relays to us the
 *     addresses it learns later: we have no single 1.30 master).  No `set`:
 *     see groups below.
 *   - Its connect port on us (registered init function, so that secure
 *     nodes answer it too) takes `addr` (its addresses: the peer record
 *     gets them, so that sending to its free-text ID dials them when there
 *     is no link; they go into our 'l entry for it, so that 2.x and C nodes
 *     find it through the global nodes (g_find); and 2 to 3 s later they
 *     are relayed as `nodes` to every peer that asked us to seed it),
 *     `nodes` (addresses of other nodes: their peer records get them; we
 *     dial none of them — 1.30 builds a full mesh, we connect on use),
 *     `seedme1`/`seedme0` (answered with `nodes` at once, relays later /
 *     no more relays), `find <id>` (answered with `nodes {id: addresses}`
 *     if we know any: a link's, a peer record's, or on a global node the
 *     'l entry), `setup` (nothing to run).
 *   - A C node that comes up with a known address is relayed to the
 *     seeded 1.30 peers as well, 2 to 3 s later (as 1.30 relays `addr`).
 *   - When the peer goes down: its connect port here ends (a normal kill,
 *     as 1.30's does), its 'l entry goes, it is no longer seeded.
 *
 * Groups: 1.30's port groups (`set`, `reg1`, `reg0`) stay separate from
 * our database — they are ignored here, and our groups (db families) are
 * not told to 1.30 peers; grp_get on a 1.30 node does not see C members
 * and ours does not see 1.30 ones.  We send no `find` when a node goes
 * down (1.30 asks its master so as to redial at once; we redial on use).
 *
 * State: one record per node (found through the init function's user
 * pointer), tied to the node port, so it lives as long as the node and is
 * released when the node is freed. */
#include "global.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT "AnyEvent::MP::Global::connect"
#define GLOBAL_VERSION 0
#define RELAY_MS 2000     /* relays wait 2 s ... */
#define RELAY_JITTER 1000 /* ... plus up to 1 s, as 1.30 */
#define MAX_LEARNED 65536 /* node records made from `nodes` and `addr` */

/* A 1.30 peer. */
typedef struct p130_peer {
    struct p130_peer *next;
    struct p130 *st;
    char *gport;     /* our Global port on it (NULL: none, or it died) */
    aemp_mon_t *mon; /* our monitor of gport */
    char *theirs;    /* its Global port on us, NULL if none */
    bool seedme;     /* it asked us for relays (seedme1) */
    bool published;  /* our 'l entry for it is set */
    size_t idlen;
    char id[];
} p130_peer_t;

/* `nodes` waiting for its time, to every seeded peer. */
typedef struct relay {
    struct relay *next;
    uint64_t due; /* loop ms */
    aemp_val_t *nodes;
} relay_t;

typedef struct p130 {
    aemp_node_t *node;
    unsigned learned; /* node records made for addresses 1.30 told us */
    p130_peer_t *peers;
    relay_t *relays;
    uv_timer_t timer; /* the earliest relay */
    aemp_mon_t *nodes_mon;
} p130_t;

/* Its Global port on us: who spawned it. */
typedef struct conn {
    p130_t *st;
    char id[];
} conn_t;

static int connect_init(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user);

static p130_t *state_of(aemp_node_t *n)
{
    const struct aemp__tag *t =
        aemp__tags_find(n->inits, CONNECT, sizeof CONNECT - 1);
    return t && t->cb == connect_init ? t->user : NULL;
}

static bool is_self(const p130_t *st, const char *id)
{
    return !strcmp(id, st->node->noderef);
}

/* ---- addresses ----------------------------------------------------------- */

/* Where p can be dialled: its ID if that is an address, else the
 * addresses it was given (learnt, found or resolved); NULL if unknown. */
static aemp_val_t *peer_addrs(const aemp__peer_t *p)
{
    if (p->alias)
        return NULL;
    if (aemp__id_is_address(p->id, p->idlen))
        return aemp__addrs_split(p->id, p->idlen);
    if (p->addrs && aemp__id_is_address(p->addrs, strlen(p->addrs)))
        return aemp__addrs_split(p->addrs, strlen(p->addrs));
    return NULL;
}

/* What we know of node id's addresses: ours, its peer record's, or (on a
 * global node) its 'l entry.  NULL if nothing. */
static aemp_val_t *known_addrs(p130_t *st, const char *id)
{
    aemp_node_t *n = st->node;
    if (is_self(st, id))
        return n->net && n->net->public_ ? aemp__addrs_ours(n) : NULL;
    aemp__peer_t *p = aemp__peer_find(n, id);
    aemp_val_t *arr = p ? peer_addrs(p) : NULL;
    if (!arr && n->global && n->global->global) {
        char *s = aemp__store_addrs(n->global, id);
        if (s)
            arr = aemp__addrs_split(s, strlen(s));
        aemp__free(s);
    }
    return arr;
}

/* 1.30's `nodes`: {id: [addresses]} of the nodes we have a link to and
 * know addresses of, except ourselves, `except` (NULL: none) and 2.x nodes
 * (1.30 would dial them and fail: no common authentication).  An empty map
 * if none. */
static aemp_val_t *nodes_map(p130_t *st, const char *except)
{
    aemp_node_t *n = st->node;
    aemp_val_t *map = aemp_map_new();
    size_t i = 0;
    aemp__peer_t *p;
    while (map && n->net && (p = aemp__strmap_next(&n->net->peers, &i))) {
        if (!p->up || p->alias || p->dialect == AEMP__DIALECT_PERL2 ||
            is_self(st, p->id) || (except && !strcmp(p->id, except)))
            continue;
        aemp_val_t *arr = peer_addrs(p);
        if (arr && aemp_val_len(arr))
            map = aemp__map_append(map, p->id, p->idlen, arr);
        else
            aemp_val_free(arr);
    }
    return map;
}

/* Node id is at addrs (an array): its peer record gets them, so that what
 * is sent to it dials them when there is no link.  Nothing is dialled
 * otherwise: a 1.30 node meshes, we connect on use.  An ID that is an
 * address is dialled as it is (kept); anon/ and slave/ nodes have none. */
static void learn(p130_t *st, const char *id, const aemp_val_t *addrs)
{
    aemp_node_t *n = st->node;
    size_t len = strlen(id);
    if (!len || is_self(st, id) || aemp__id_is_address(id, len) ||
        !strncmp(id, "anon/", 5) || !strncmp(id, "slave/", 6) ||
        strchr(id, '#') || aemp__id_check(id, len) < 0 || !n->net)
        return;
    char *list = aemp__addrs_join(addrs);
    if (!list)
        return;
    aemp__peer_t *p = aemp__peer_get(n, id, len, false);
    if (!p && st->learned >= MAX_LEARNED) { /* a peer cannot fill memory */
        if (st->learned++ == MAX_LEARNED)
            aemp__log(n, AEMP_LOG_WARN,
                      "global (1.30): %u addresses learned: no more",
                      MAX_LEARNED);
        aemp__free(list);
        return;
    }
    if (!p && (p = aemp__peer_get(n, id, len, true)))
        st->learned++;
    if (!p || p->alias || (p->addrs && !strcmp(p->addrs, list))) {
        aemp__free(list);
        return;
    }
    aemp__log(n, AEMP_LOG_DEBUG, "global (1.30): %s is at %s", id, list);
    aemp__free(p->addrs);
    p->addrs = list;
    p->connectable = true;
    p->needs_resolve = false;
    if (!p->link && !p->dialing) {
        p->next_dial = p->next_ep = 0;
        /* something waits for it: dial now */
        if (p->qhead || p->stubs.n || p->flushers || p->seed)
            aemp__peer_need(p);
    }
}

/* ---- peers --------------------------------------------------------------- */

static p130_peer_t *peer_rec(p130_t *st, const char *id, bool create)
{
    size_t len = strlen(id);
    for (p130_peer_t *r = st->peers; r; r = r->next)
        if (r->idlen == len && !memcmp(r->id, id, len))
            return r;
    if (!create)
        return NULL;
    p130_peer_t *r = aemp__calloc(1, sizeof *r + len + 1);
    if (!r)
        return NULL;
    memcpy(r->id, id, len);
    r->idlen = len;
    r->st = st;
    r->next = st->peers;
    st->peers = r;
    return r;
}

/* Sends [tag, value] (value taken; NULL: none) to our Global port on r. */
static void tell(p130_peer_t *r, const char *tag, aemp_val_t *value)
{
    if (!r->gport) {
        aemp_val_free(value);
        return;
    }
    aemp_val_t *m =
        value ? aemp_arr(aemp_str(tag), value) : aemp_arr(aemp_str(tag));
    if (aemp_sndv(r->st->node, r->gport, &m) < 0)
        aemp_val_free(m);
}

/* Sends our `nodes` to r, if we know any (but r: opening). */
static void tell_nodes(p130_peer_t *r, bool opening)
{
    aemp_val_t *map = nodes_map(r->st, opening ? r->id : NULL);
    if (map && aemp_val_len(map))
        tell(r, "nodes", map);
    else
        aemp_val_free(map);
}

/* Our Global port on r died (kil0, or the link was lost): 1.30 forgets it
 * and the groups it told; so do we (we kept none). */
static void on_gport_dead(aemp_node_t *n, const char *port,
                          const aemp_msg_t *reason, void *user)
{
    p130_peer_t *r = user;
    char *why = NULL;
    aemp_msg_to_json(reason, &why);
    aemp__log(n, AEMP_LOG_INFO,
              "global (1.30): our Global port on %s ended: %s", r->id,
              why ? why : "?");
    aemp_free(why);
    aemp__free(r->gport);
    r->gport = NULL;
    aemp_mon_cancel(r->mon); /* fired: this frees it */
    r->mon = NULL;
}

/* 1.30's start_node: our Global port on node id, and the link's opening
 * block (addr, nodes, setup, seedme1).  Nothing if we have one there. */
static p130_peer_t *start_node(p130_t *st, const char *id)
{
    aemp_node_t *n = st->node;
    if (is_self(st, id))
        return NULL;
    p130_peer_t *r = peer_rec(st, id, true);
    if (!r || r->gport)
        return r;
    char port[1024];
    int rc = aemp_spawn(n, id, CONNECT, port, sizeof port, "is", GLOBAL_VERSION,
                        n->noderef);
    if (rc == 0 && !(r->gport = aemp__strdup(port)))
        rc = AEMP_ENOMEM;
    if (rc < 0) {
        aemp__log(n, AEMP_LOG_WARN, "global (1.30): cannot spawn %s on %s: %s",
                  CONNECT, id, aemp_strerror(rc));
        return r;
    }
    if ((rc = aemp_mon_cb(n, r->gport, on_gport_dead, r, &r->mon)) < 0)
        aemp__log(n, AEMP_LOG_WARN, "global (1.30): cannot monitor %s: %s",
                  r->gport, aemp_strerror(rc));
    aemp__log(n, AEMP_LOG_INFO, "global (1.30): rendezvous with %s at %s", id,
              r->gport);
    tell(r, "addr", aemp__addrs_ours(n));
    tell_nodes(r, true); /* 1.30 has not heard of r's own yet */
    tell(r, "setup", NULL);
    tell(r, "seedme1", NULL);
    return r;
}

/* The record of the 1.30 node id (its port on us told something), with
 * our Global port there started if the node is up and had none. */
static p130_peer_t *peer_started(p130_t *st, const char *id)
{
    aemp__peer_t *p = aemp__peer_find(st->node, id);
    if (p && p->up && p->dialect == AEMP__DIALECT_PERL1)
        return start_node(st, id);
    return peer_rec(st, id, true);
}

static void unpublish(p130_peer_t *r)
{
    aemp__global_t *g = r->st->node->global;
    if (r->published && g)
        aemp__global_del(g, "'l", r->id);
    r->published = false;
}

static void peer_free(p130_peer_t *r)
{
    aemp_mon_cancel(r->mon);
    aemp__free(r->gport);
    aemp__free(r->theirs);
    aemp__free(r);
}

/* Node id went down: its port here ends (silently, as 1.30's), its 'l
 * entry goes, it is seeded no more. */
static void peer_down(p130_t *st, const char *id)
{
    p130_peer_t **rp = &st->peers, *r;
    while ((r = *rp) && strcmp(r->id, id))
        rp = &r->next;
    if (!r)
        return;
    *rp = r->next;
    if (r->theirs)
        aemp_kil(st->node, r->theirs, NULL);
    unpublish(r);
    peer_free(r);
}

/* ---- relays -------------------------------------------------------------- */

static void on_relay_timer(uv_timer_t *t);

static void arm(p130_t *st)
{
    uint64_t first = UINT64_MAX;
    for (relay_t *r = st->relays; r; r = r->next)
        if (r->due < first)
            first = r->due;
    if (first == UINT64_MAX) {
        uv_timer_stop(&st->timer);
        return;
    }
    uint64_t now = uv_now(st->node->loop);
    uv_timer_start(&st->timer, on_relay_timer, first > now ? first - now : 0,
                   0);
}

static void on_relay_timer(uv_timer_t *t)
{
    p130_t *st = t->data;
    uint64_t now = uv_now(st->node->loop);
    relay_t **rp = &st->relays, *r;
    while ((r = *rp)) {
        if (r->due > now) {
            rp = &r->next;
            continue;
        }
        *rp = r->next;
        /* to whoever is seeded now, as 1.30 does */
        for (p130_peer_t *q = st->peers; q; q = q->next)
            if (q->seedme && q->gport)
                tell(q, "nodes", aemp_val_copy(r->nodes));
        aemp_val_free(r->nodes);
        aemp__free(r);
    }
    arm(st);
}

/* 2 to 3 s from now, `nodes {id: addrs}` (addrs taken) to every seeded
 * peer. */
static void relay_later(p130_t *st, const char *id, aemp_val_t *addrs)
{
    relay_t *r = aemp__calloc(1, sizeof *r);
    aemp_val_t *map = aemp_map_set(aemp_map_new(), id, addrs);
    if (!r || !map) {
        aemp__free(r);
        aemp_val_free(map);
        return;
    }
    r->nodes = map;
    uint32_t jitter = 0; /* from the CSPRNG: processes must not relay in
                            step (rand() is the same in every one) */
    aemp__random(&jitter, sizeof jitter);
    r->due = uv_now(st->node->loop) + RELAY_MS + jitter % RELAY_JITTER;
    r->next = st->relays;
    st->relays = r;
    arm(st);
}

/* ---- its Global port on us ----------------------------------------------- */

static void got_addr(conn_t *c, const aemp_val_t *addrs)
{
    p130_t *st = c->st;
    aemp_node_t *n = st->node;
    if (aemp_val_type(addrs) != AEMP_T_ARR)
        return;
    char *text = NULL;
    aemp_val_to_json(addrs, &text);
    aemp__log(n, AEMP_LOG_INFO, "global (1.30): %s told us its addresses %s",
              c->id, text ? text : "?");
    aemp_free(text);
    aemp__peer_t *p = aemp__peer_find(n, c->id);
    if (!p || !p->up) { /* it claims an ID that has no link to us */
        aemp__log(n, AEMP_LOG_INFO,
                  "global (1.30): %s is not linked to us: its addresses are "
                  "not taken",
                  c->id);
        return;
    }
    p130_peer_t *r = peer_started(st, c->id);
    char *list = r ? aemp__addrs_join(addrs) : NULL;
    if (!list)
        return; /* none (a node without a listener), or not addresses */
    aemp__free(list);
    learn(st, c->id, addrs);
    /* our 'l entry for it: the global nodes answer g_find with it */
    aemp__global_t *g = n->global;
    aemp_val_t *copy = g ? aemp_val_copy(addrs) : NULL;
    if (copy && aemp__global_set(g, "'l", c->id, copy) == 0)
        r->published = true;
    relay_later(st, c->id, aemp_val_copy(addrs));
}

static void got_nodes(conn_t *c, const aemp_val_t *map)
{
    p130_t *st = c->st;
    if (aemp_val_type(map) != AEMP_T_MAP)
        return;
    char *text = NULL;
    aemp_val_to_json(map, &text);
    aemp__log(st->node, AEMP_LOG_DEBUG,
              "global (1.30): %s told us it knows about %s", c->id,
              text ? text : "?");
    aemp_free(text);
    for (size_t i = 0; i < aemp_val_len(map); i++) {
        const char *id;
        const aemp_val_t *addrs;
        if (aemp_map_at(map, i, &id, &addrs) == 0)
            learn(st, id, addrs);
    }
}

static void got_find(conn_t *c, const aemp_val_t *which)
{
    p130_t *st = c->st;
    const char *id;
    if (aemp_val_str(which, &id, NULL) < 0)
        return;
    aemp__log(st->node, AEMP_LOG_DEBUG, "global (1.30): %s asked us to find %s",
              c->id, id);
    aemp_val_t *addrs = known_addrs(st, id);
    p130_peer_t *r =
        addrs && aemp_val_len(addrs) ? peer_started(st, c->id) : NULL;
    if (!r) {
        aemp_val_free(addrs);
        return;
    }
    tell(r, "nodes", aemp_map_set(aemp_map_new(), id, addrs));
}

static int on_connect_msg(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    conn_t *c = user;
    const char *tag;
    if (aemp_val_str(aemp_msg_at(m, 0), &tag, NULL) < 0)
        return 0;
    if (!strcmp(tag, "addr")) {
        got_addr(c, aemp_msg_at(m, 1));
    } else if (!strcmp(tag, "nodes")) {
        got_nodes(c, aemp_msg_at(m, 1));
    } else if (!strcmp(tag, "seedme1")) {
        p130_peer_t *r = peer_started(c->st, c->id);
        if (r) {
            r->seedme = true;
            tell_nodes(r, false);
        }
    } else if (!strcmp(tag, "seedme0")) {
        p130_peer_t *r = peer_rec(c->st, c->id, false);
        if (r)
            r->seedme = false;
    } else if (!strcmp(tag, "find")) {
        got_find(c, aemp_msg_at(m, 1));
    } else if (strcmp(tag, "setup") && strcmp(tag, "set") &&
               strcmp(tag, "reg0") && strcmp(tag, "reg1")) {
        /* setup: 1.30's on-setup hooks, none here; set, reg0, reg1: 1.30's
         * groups, kept apart from our database (see the top) */
        aemp__log(c->st->node, AEMP_LOG_DEBUG,
                  "global (1.30): %s sent %s: ignored", c->id, tag);
    }
    return 0;
}

static void conn_free(void *ptr)
{
    aemp__free(ptr);
}

/* A 1.30 node spawned its rendezvous port here: [version, its node ID]. */
static int connect_init(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    p130_t *st = user;
    aemp_node_t *n = aemp_ctx_node(ctx);
    const aemp_val_t *v = aemp_msg_at(args, 0);
    double version = 0;
    const char *s, *id;
    if (aemp_val_double(v, &version) < 0 && aemp_val_str(v, &s, NULL) == 0)
        version = strtod(s, NULL);
    if ((long long)version != GLOBAL_VERSION)
        return aemp_die(ctx, "node version mismatch (requested %g; we have %d)",
                        version, GLOBAL_VERSION);
    if (aemp_val_str(aemp_msg_at(args, 1), &id, NULL) < 0 || !*id)
        return aemp_die(ctx, "%s: no node ID", CONNECT);
    size_t len = strlen(id);
    conn_t *c = aemp__calloc(1, sizeof *c + len + 1);
    if (!c)
        return AEMP_ENOMEM;
    memcpy(c->id, id, len);
    c->st = st;
    int rc = aemp_mon_guard(n, aemp_self(ctx), conn_free, c, NULL);
    if (rc < 0) {
        aemp__free(c);
        return rc;
    }
    if ((rc = aemp_rcv(n, aemp_self(ctx), on_connect_msg, c)) < 0)
        return rc;
    p130_peer_t *r = peer_rec(st, id, true);
    if (r) {
        char *self = aemp__strdup(aemp_self(ctx));
        if (r->theirs && self) /* a second one: the first goes */
            aemp_kil(n, r->theirs, NULL);
        if (self) {
            aemp__free(r->theirs);
            r->theirs = self;
        }
    }
    return 0;
}

/* ---- the service --------------------------------------------------------- */

/* Node events: 1.30 peers that go down; C nodes that come up with an
 * address are relayed to the seeded 1.30 peers. */
static void on_node(aemp_node_t *n, const char *id, int up,
                    const aemp_msg_t *reason, void *user)
{
    p130_t *st = user;
    if (!up) {
        peer_down(st, id);
        return;
    }
    aemp__peer_t *p = aemp__peer_find(n, id);
    if (!p || p->dialect != AEMP__DIALECT_AEMP || is_self(st, id))
        return;
    bool seeded = false;
    for (p130_peer_t *r = st->peers; r; r = r->next)
        seeded |= r->seedme && r->gport;
    aemp_val_t *addrs = seeded ? peer_addrs(p) : NULL;
    if (addrs && aemp_val_len(addrs))
        relay_later(st, id, addrs);
    else
        aemp_val_free(addrs);
}

static void on_timer_closed(uv_handle_t *h)
{
    p130_t *st = h->data;
    aemp_node_t *n = st->node;
    aemp__free(st);
    aemp__node_handle_closed(n);
}

/* The node is freed (its node port goes last): everything goes. */
static void state_release(void *ptr)
{
    p130_t *st = ptr;
    p130_peer_t *r;
    while ((r = st->peers)) {
        st->peers = r->next;
        peer_free(r);
    }
    relay_t *q;
    while ((q = st->relays)) {
        st->relays = q->next;
        aemp_val_free(q->nodes);
        aemp__free(q);
    }
    aemp_mon_cancel(st->nodes_mon);
    st->nodes_mon = NULL;
    uv_timer_stop(&st->timer);
    aemp__node_close(st->node, (uv_handle_t *)&st->timer, on_timer_closed);
}

void aemp__perl130_node_up(aemp__global_t *g, aemp__peer_t *p)
{
    p130_t *st = state_of(g->node);
    if (st && p && p->up && p->dialect == AEMP__DIALECT_PERL1 && !p->alias)
        start_node(st, p->id);
}

int aemp__perl130_register(aemp_node_t *n)
{
    if (state_of(n))
        return 0;
    p130_t *st = aemp__calloc(1, sizeof *st);
    if (!st)
        return AEMP_ENOMEM;
    st->node = n;
    int rc = aemp_mon_nodes(n, on_node, st, &st->nodes_mon);
    if (rc == 0 && (rc = aemp_register(n, CONNECT, connect_init, st)) < 0)
        aemp_mon_cancel(st->nodes_mon);
    if (rc == 0 &&
        (rc = aemp_mon_guard(n, n->noderef, state_release, st, NULL)) < 0) {
        aemp_register(n, CONNECT, NULL, NULL);
        aemp_mon_cancel(st->nodes_mon);
    }
    if (rc < 0) {
        aemp__log(n, AEMP_LOG_ERROR, "global (1.30): %s", aemp_strerror(rc));
        aemp__free(st);
        return rc;
    }
    uv_timer_init(n->loop, &st->timer);
    st->timer.data = st;
    return 0;
}
