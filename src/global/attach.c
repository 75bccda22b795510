/* Every node's side of the global service: its own entries, the master it
 * attaches to, the requests that wait for a master, queries and family
 * monitors (PROTOCOL.md §10).  A global node is its own master: what it
 * sends "to the master" goes to its own node port, so that its entries
 * and monitors take the same path as everybody's. */
#include "global.h"

#include <stdio.h>
#include <string.h>

enum { SHAPE_FAMILY, SHAPE_KEYS, SHAPE_VALUES };

static void on_node_event(aemp_node_t *n, const char *id, int up,
                          const aemp_msg_t *reason, void *user);
static void global_free(aemp_node_t *n);
static bool find_addr(aemp_node_t *n, aemp__peer_t *p);
static void master_search(aemp__global_t *g);

bool aemp__global_is_self(const aemp__global_t *g, const char *id)
{
    return id && !strcmp(id, g->node->noderef);
}

int aemp__global_snd(aemp__global_t *g, const char *id, aemp_msg_t *m)
{
    if (!m)
        return AEMP_ENOMEM;
    int rc = aemp__send(g->node, id, m);
    aemp_msg_unref(m);
    return rc;
}

/* ---- the service ----------------------------------------------------------
 */

aemp__global_t *aemp__global_get(aemp_node_t *n)
{
    if (!n || !n->net || n->freeing)
        return NULL;
    if (n->global)
        return n->global;
    aemp__global_t *g = aemp__calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->node = n;
    g->local.owns_values = true;
    if (aemp__node_at_free(n, global_free) < 0 ||
        aemp_mon_nodes(n, on_node_event, g, &g->nodes_mon) < 0) {
        aemp__free(g);
        return NULL;
    }
    uv_timer_init(n->loop, &g->timer);
    g->timer.data = g;
    uv_idle_init(n->loop, &g->snapshots);
    g->snapshots.data = g;
    n->global = g;
    n->global_requests = aemp__global_requests;
    n->net->find_addr = find_addr;
    aemp__perl130_register(n);
    g->started = true;
    master_search(g);
    return g;
}

/* Our 'l entry: the endpoints we listen on ([] if none). */
static int set_listeners(aemp__global_t *g)
{
    aemp_val_t *eps = aemp__addrs_ours(g->node);
    return eps ? aemp__global_set(g, "'l", g->node->noderef, eps) : AEMP_ENOMEM;
}

int aemp__global_start(aemp_node_t *n, bool global)
{
    aemp__global_t *g = aemp__global_get(n);
    if (!g)
        return AEMP_ENOMEM;
    int rc = set_listeners(g);
    if (rc == 0 && global)
        aemp__store_become_global(g);
    return rc;
}

static void seed_up(aemp__global_t *g, aemp__peer_t *p)
{
    /* makes a seed global, as 2.x's seeds become */
    aemp_msg_t *m = NULL;
    if (p->dialect != AEMP__DIALECT_PERL1 &&
        aemp_msg_new(&m, "s", "g_slave") == 0)
        aemp__global_snd(g, p->id, m);
}

void aemp__global_seed(aemp_node_t *n, const char *noderef)
{
    aemp__peer_t *p = aemp__peer_find(n, noderef);
    aemp__global_t *g = aemp__global_get(n);
    if (!g || !p || p->gseed)
        return;
    p->gseed = true;
    if (p->up) {
        seed_up(g, p);
        master_search(g);
    }
}

/* Both handles live in g: it goes when the second has closed. */
static void on_handle_closed(uv_handle_t *h)
{
    aemp__global_t *g = h->data;
    aemp_node_t *n = g->node;
    if (++g->closed == 2)
        aemp__free(g);
    aemp__node_handle_closed(n);
}

static void watch_free(aemp__gwatch_t *w)
{
    aemp__view_free(&w->view);
    aemp__gsub_t *s;
    while ((s = w->subs)) {
        w->subs = s->next;
        if (s->guard)
            aemp__mon_hook_drop(s->guard);
        aemp__free(s);
    }
    aemp__free(w);
}

static void global_free(aemp_node_t *n)
{
    aemp__global_t *g = n->global;
    if (!g)
        return;
    g->closing = true;
    aemp__greq_t *r;
    while ((r = g->reqs)) {
        g->reqs = r->next;
        aemp_msg_unref(r->msg);
        aemp__free(r->key);
        aemp__free(r);
    }
    size_t i;
    aemp__gwatch_t *w;
    while ((i = 0, w = aemp__strmap_next(&g->watches, &i))) {
        aemp__strmap_del(&g->watches, w->family, w->flen);
        watch_free(w);
    }
    aemp__strmap_free(&g->watches);
    aemp__db_free(&g->local);
    aemp__store_free(g);
    aemp__free(g->master);
    aemp_mon_cancel(g->nodes_mon);
    g->nodes_mon = NULL;
    n->global = NULL;
    n->global_requests = NULL;
    aemp__node_close(n, (uv_handle_t *)&g->timer, on_handle_closed);
    uv_idle_stop(&g->snapshots);
    aemp__node_close(n, (uv_handle_t *)&g->snapshots, on_handle_closed);
}

/* ---- requests to the master -----------------------------------------------
 */

static aemp__greq_t *req_find(aemp__global_t *g, const char *key)
{
    for (aemp__greq_t *r = g->reqs; r; r = r->next)
        if (!strcmp(r->key, key))
            return r;
    return NULL;
}

static void req_unlink(aemp__global_t *g, aemp__greq_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        g->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        g->reqs_tail = r->prev;
}

static void req_free(aemp__greq_t *r)
{
    aemp_msg_unref(r->msg);
    aemp__free(r->key);
    aemp__free(r);
}

static int to_master(aemp__global_t *g, const aemp_msg_t *m)
{
    return g->master ? aemp__send(g->node, g->master, m) : 0;
}

static aemp__greq_t *req_add(aemp__global_t *g, const char *key, aemp_msg_t *m)
{
    aemp__greq_t *r = aemp__calloc(1, sizeof *r);
    if (!r || !(r->key = aemp__strdup(key))) {
        aemp__free(r);
        aemp_msg_unref(m);
        return NULL;
    }
    r->msg = m;
    r->prev = g->reqs_tail;
    if (g->reqs_tail)
        g->reqs_tail->next = r;
    else
        g->reqs = r;
    g->reqs_tail = r;
    return r;
}

int aemp__global_request(aemp__global_t *g, const char *key, aemp_msg_t *m)
{
    if (!m)
        return AEMP_ENOMEM;
    if (!key) {
        int rc = to_master(g, m);
        aemp_msg_unref(m);
        return rc;
    }
    if (req_find(g, key)) {
        aemp_msg_unref(m);
        return 0;
    }
    aemp__greq_t *r = req_add(g, key, m);
    return r ? to_master(g, r->msg) : AEMP_ENOMEM;
}

void aemp__global_request_done(aemp__global_t *g, const char *key)
{
    aemp__greq_t *r = req_find(g, key);
    if (r) {
        req_unlink(g, r);
        req_free(r);
    }
}

/* ---- masters ----------------------------------------------------------------
 */

/* A seed that is global but not our master is not needed once attached:
 * one link, not a mesh.  Its link goes unless something else uses it, and
 * it is dialled again when the master is lost. */
static void release_seed(aemp__global_t *g, aemp__peer_t *p)
{
    if (g->global || !g->master || !p->gseed || p->alias ||
        !strcmp(p->id, g->master) ||
        !aemp__strmap_get(&g->globals, p->id, p->idlen))
        return;
    p->seed = false;
    if (p->link && p->up && !p->stubs.n && !p->watchers.n && !p->qhead &&
        !p->flushers)
        aemp__link_close(p->link, "attached to another global node");
}

static void release_seeds(aemp__global_t *g)
{
    size_t i = 0;
    aemp__peer_t *p;
    while ((p = aemp__strmap_next(&g->node->net->peers, &i)))
        release_seed(g, p);
}

/* Dial every seed again: the master is lost. */
static void redial_seeds(aemp__global_t *g)
{
    aemp_node_t *n = g->node;
    size_t i = 0;
    aemp__peer_t *p;
    while ((p = aemp__strmap_next(&n->net->peers, &i)))
        if (p->gseed && !p->alias && !p->seed) {
            p->seed = true;
            /* its link was closed on purpose, not lost: no back-off */
            p->next_dial = 0;
            aemp__peer_need(p);
        }
}

static void master_set(aemp__global_t *g, const char *id)
{
    aemp_node_t *n = g->node;
    char *copy = aemp__strdup(id);
    if (!copy)
        return;
    aemp__free(g->master);
    g->master = copy;
    aemp__log(n, AEMP_LOG_INFO, "global: master is %s%s", id,
              aemp__global_is_self(g, id) ? " (this node is global)" : "");
    aemp_val_t *db = aemp__db_val(&g->local);
    aemp_msg_t *m = NULL;
    aemp_val_t *arr = db ? aemp_arr(aemp_str("g_slave"), db) : NULL;
    aemp_msg_from_val(&m, &arr);
    aemp_val_free(arr);
    if (m && aemp__global_is_self(g, id))
        /* our own entries are in the store before anything else is
         * answered: a node that made us global may ask for them in the
         * same read (2.x's seeds send g_slave, then g_find) */
        aemp__g_slave(n, m, NULL);
    else if (m)
        to_master(g, m);
    aemp_msg_unref(m);
    for (aemp__greq_t *r = g->reqs; r; r = r->next)
        to_master(g, r->msg);
    if (!g->global)
        release_seeds(g);
}

/* A master is a global node (it said g_global) with a link up: one of our
 * seeds first, as in 2.x, then any other. */
static void master_search(aemp__global_t *g)
{
    if (g->global || g->master)
        return;
    for (int seeds = 1; seeds >= 0; seeds--) {
        size_t i = 0;
        const char *id;
        while ((id = aemp__strmap_next(&g->globals, &i))) {
            aemp__peer_t *p = aemp__peer_find(g->node, id);
            if (p && p->up && p->gseed == (seeds == 1)) {
                master_set(g, id);
                return;
            }
        }
    }
}

static void on_node_event(aemp_node_t *n, const char *id, int up,
                          const aemp_msg_t *reason, void *user)
{
    aemp__global_t *g = user;
    aemp__peer_t *p = aemp__peer_find(n, id);
    if (up) {
        if (p && p->gseed)
            seed_up(g, p);
        if (g->global)
            aemp__store_node_up(g, id);
        if (p && p->dialect == AEMP__DIALECT_PERL1)
            aemp__perl130_node_up(g, p);
        master_search(g);
        return;
    }
    aemp__free(aemp__strmap_del(&g->globals, id, strlen(id)));
    if (g->global)
        aemp__store_node_down(g, id);
    if (g->master && !strcmp(g->master, id)) {
        aemp__log(n, AEMP_LOG_INFO, "global: lost master %s", id);
        aemp__free(g->master);
        g->master = NULL;
        redial_seeds(g);
        master_search(g);
    }
}

/* Is a g_chg1/g_chg2/g_found/g_reply from our master?  Another's is
 * dropped, and said so. */
static bool from_master(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = n->global;
    const char *src = from ? from : n->noderef, *name = "?";
    if (g && g->master && !strcmp(src, g->master))
        return true;
    aemp_val_str(aemp_msg_at(req, 0), &name, NULL);
    if (g)
        aemp__log(n, AEMP_LOG_WARN,
                  "global: %s from %s ignored: it is not our master (%s)", name,
                  src, g->master ? g->master : "none");
    return false;
}

/* ---- addresses ----------------------------------------------------------- */

/* A node whose ID is no address: a global node looks into 'l, another asks
 * its master (g_find) and dials what g_found says. */
static bool find_addr(aemp_node_t *n, aemp__peer_t *p)
{
    aemp__global_t *g = n->global;
    if (!g || p->alias)
        return false;
    if (g->global) {
        char *addrs = aemp__store_addrs(g, p->id);
        if (!addrs)
            return false;
        aemp__free(p->addrs);
        p->addrs = addrs;
        p->connectable = true;
        p->needs_resolve = false;
        return false;
    }
    if (!g->master)
        return false;
    char *key = aemp__asprintf("g_find %s", p->id);
    aemp_msg_t *m = NULL;
    int rc =
        key ? aemp_msg_new(&m, "sS", "g_find", p->id, p->idlen) : AEMP_ENOMEM;
    if (rc == 0)
        rc = aemp__global_request(g, key, m);
    aemp__free(key);
    return rc == 0;
}

/* ["g_found", node, [addresses] | null] from our master. */
static void g_found(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = n->global;
    const char *id;
    /* only the master we asked says where a node is */
    if (!from_master(n, req, from))
        return;
    if (aemp__db_name(aemp_msg_at(req, 1), &id) < 0) {
        aemp__log(n, AEMP_LOG_WARN, "global: g_found without a node ID");
        return;
    }
    char *key = aemp__asprintf("g_find %s", id);
    if (key)
        aemp__global_request_done(g, key);
    aemp__free(key);
    aemp__peer_t *p = aemp__peer_find(n, id);
    if (!p || p->link)
        return;
    const aemp_val_t *addrs = aemp_msg_at(req, 2);
    char *list = aemp__addrs_join(addrs);
    if (!list) { /* null, empty, or no endpoints */
        char why[300];
        snprintf(why, sizeof why,
                 "no address is known for %.80s (global node %.80s does not "
                 "know it)",
                 id, from ? from : n->noderef);
        aemp__peer_dial_failed(p, why, !n->net->public_);
        return;
    }
    aemp__free(p->addrs);
    p->addrs = list;
    p->connectable = true;
    p->needs_resolve = false;
    p->next_dial = p->next_ep = 0;
    aemp__log(n, AEMP_LOG_INFO, "global: %s is at %s", id, list);
    aemp__peer_need(p);
}

/* ---- own entries --------------------------------------------------------- */

static aemp_msg_t *upd_msg(const char *f, const char *k, aemp_val_t *v,
                           bool del)
{
    aemp_val_t *arr =
        del ? aemp_arr(aemp_str("g_upd"), aemp_str(f), aemp_null(),
                       aemp_arr(aemp_str(k)))
            : aemp_arr(aemp_str("g_upd"), aemp_str(f),
                       aemp_map_set(aemp_map_new(), k,
                                    v ? aemp_val_copy(v) : aemp_null()));
    aemp_msg_t *m = NULL;
    aemp_msg_from_val(&m, &arr);
    aemp_val_free(arr);
    return m;
}

int aemp__global_set(aemp__global_t *g, const char *f, const char *k,
                     aemp_val_t *v)
{
    size_t flen = strlen(f), klen = strlen(k);
    aemp__dbent_t *e = aemp__db_get(&g->local, f, flen, k, klen);
    if (e && aemp_val_equal(e->val, v)) {
        aemp_val_free(v);
        return 0; /* as 2.x: setting what is set sends nothing */
    }
    aemp_msg_t *m = upd_msg(f, k, v, false);
    if (!m) {
        aemp_val_free(v);
        return AEMP_ENOMEM;
    }
    int rc = aemp__db_put(&g->local, f, flen, k, klen, v, NULL);
    if (rc == 0)
        to_master(g, m);
    aemp_msg_unref(m);
    return rc;
}

int aemp__global_del(aemp__global_t *g, const char *f, const char *k)
{
    size_t flen = strlen(f), klen = strlen(k);
    if (!aemp__db_get(&g->local, f, flen, k, klen))
        return 0;
    aemp_msg_t *m = upd_msg(f, k, NULL, true);
    if (!m)
        return AEMP_ENOMEM; /* nothing changed */
    bool found;
    aemp_val_free(aemp__db_take(&g->local, f, flen, k, klen, &found));
    to_master(g, m);
    aemp_msg_unref(m);
    return 0;
}

static int check_names(aemp_node_t *n, const char *family, const char *key,
                       aemp__global_t **g)
{
    if (!n || !family || !*family || (key && !*key))
        return AEMP_EINVAL;
    if (!(*g = aemp__global_get(n)))
        return n->net ? AEMP_ENOMEM : AEMP_ENOROUTE;
    return 0;
}

int aemp_db_set(aemp_node_t *n, const char *family, const char *key,
                aemp_val_t **value)
{
    aemp__global_t *g;
    if (value && !*value)
        return AEMP_ENOMEM; /* a constructor failed */
    int rc = key ? check_names(n, family, key, &g) : AEMP_EINVAL;
    if (rc == 0 && family[0] == '\'')
        rc = AEMP_EPERM;
    if (rc < 0)
        return rc;
    /* aemp__global_set takes v even when it fails: a failed call must
     * leave *value the caller's */
    aemp_val_t *v = value ? aemp_val_copy(*value) : aemp_null();
    if (!v)
        return AEMP_ENOMEM;
    if ((rc = aemp__global_set(g, family, key, v)) == 0 && value) {
        aemp_val_free(*value);
        *value = NULL;
    }
    return rc;
}

int aemp_db_del(aemp_node_t *n, const char *family, const char *key)
{
    aemp__global_t *g;
    int rc = key ? check_names(n, family, key, &g) : AEMP_EINVAL;
    if (rc == 0 && family[0] == '\'')
        rc = AEMP_EPERM;
    return rc < 0 ? rc : aemp__global_del(g, family, key);
}

/* db_reg's guard: the entry goes with the port or the guard. */
typedef struct reg_entry {
    aemp_node_t *node;
    char *family;
    char *key;
} reg_entry_t;

static void reg_release(void *resource)
{
    reg_entry_t *r = resource;
    if (r->node && r->node->global && !r->node->global->closing)
        aemp__global_del(r->node->global, r->family, r->key);
    aemp__free(r->family);
    aemp__free(r->key);
    aemp__free(r);
}

int aemp_db_reg(aemp_node_t *n, const char *family, const char *port,
                aemp_val_t **value, aemp_mon_t **guard)
{
    aemp__global_t *g;
    int rc = port ? check_names(n, family, port, &g) : AEMP_EINVAL;
    if (rc == 0 && family[0] == '\'')
        rc = AEMP_EPERM;
    if (rc < 0)
        return rc;
    aemp__port_t *p;
    if ((rc = aemp__port_find(n, port, &p)) < 0)
        return rc;
    if (p == n->node_port)
        return AEMP_EPERM;
    if (value && !*value)
        return AEMP_ENOMEM;
    reg_entry_t *r = aemp__calloc(1, sizeof *r); /* r->node NULL */
    if (!r || !(r->family = aemp__strdup(family)) ||
        !(r->key = aemp__strdup(port))) {
        if (r)
            aemp__free(r->family);
        aemp__free(r);
        return AEMP_ENOMEM;
    }
    /* tied first, set second: a failure leaves whatever entry was
     * there (r->node NULL: its release only frees it) */
    aemp_mon_t *tied = NULL;
    if ((rc = aemp_mon_guard(n, port, reg_release, r, guard ? &tied : NULL)) <
        0) {
        reg_release(r);
        return rc;
    }
    aemp_val_t *v = value ? aemp_val_copy(*value) : aemp_null();
    if (!v || (rc = aemp__global_set(g, family, port, v)) < 0) {
        r->node = NULL;
        aemp_mon_cancel(tied); /* unheld (no guard): r goes with the port */
        return rc < 0 ? rc : AEMP_ENOMEM;
    }
    r->node = n;
    if (guard)
        *guard = tied;
    if (value) {
        aemp_val_free(*value);
        *value = NULL;
    }
    return 0;
}

/* ---- queries ----------------------------------------------------------------
 */

static void on_query_timer(uv_timer_t *t);

static void arm_timer(aemp__global_t *g)
{
    uint64_t first = UINT64_MAX;
    for (aemp__greq_t *r = g->reqs; r; r = r->next)
        if (r->fn && r->deadline < first)
            first = r->deadline;
    if (first == UINT64_MAX) {
        uv_timer_stop(&g->timer);
        return;
    }
    uint64_t now = uv_now(g->node->loop);
    uv_timer_start(&g->timer, on_query_timer, first > now ? first - now : 0, 0);
}

static void on_query_timer(uv_timer_t *t)
{
    aemp__global_t *g = t->data;
    uint64_t now = uv_now(g->node->loop);
    aemp__greq_t *r = g->reqs;
    while (r) {
        aemp__greq_t *next = r->next;
        if (r->fn && r->deadline <= now) {
            req_unlink(g, r);
            r->fn(g->node, AEMP_ETIMEDOUT, NULL, r->user);
            req_free(r);
            next = g->reqs; /* the callback may have changed the list */
        }
        r = next;
    }
    arm_timer(g);
}

static int query(aemp_node_t *n, const char *req, uint8_t shape,
                 const char *family, double timeout, aemp_db_fn fn, void *user)
{
    aemp__global_t *g;
    int rc = check_names(n, family, NULL, &g);
    if (rc < 0)
        return rc;
    if (!fn || timeout < 0 || timeout > 1e9)
        return AEMP_EINVAL;
    char id[32];
    snprintf(id, sizeof id, "aemp%llu", (unsigned long long)++g->next_query);
    aemp_msg_t *m = NULL;
    if ((rc = aemp_msg_new(&m, "sss", req, family, id)) < 0)
        return rc;
    aemp__greq_t *r = req_add(g, id, m);
    if (!r)
        return AEMP_ENOMEM;
    r->fn = fn;
    r->user = user;
    r->shape = shape;
    /* at least 1 ms: a query asked from a timeout callback must not be due
     * in the same pass of the timer (uv_now stays put within it) */
    uint64_t ms = (uint64_t)((timeout ? timeout : 30) * 1000);
    r->deadline = uv_now(n->loop) + (ms ? ms : 1);
    to_master(g, r->msg);
    arm_timer(g);
    return 0;
}

int aemp_db_family(aemp_node_t *n, const char *family, double timeout,
                   aemp_db_fn fn, void *user)
{
    return query(n, "g_db_family", SHAPE_FAMILY, family, timeout, fn, user);
}

int aemp_db_keys(aemp_node_t *n, const char *family, double timeout,
                 aemp_db_fn fn, void *user)
{
    return query(n, "g_db_keys", SHAPE_KEYS, family, timeout, fn, user);
}

int aemp_db_values(aemp_node_t *n, const char *family, double timeout,
                   aemp_db_fn fn, void *user)
{
    return query(n, "g_db_values", SHAPE_VALUES, family, timeout, fn, user);
}

/* ["g_reply", id, result] */
static void g_reply(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = n->global;
    const char *id;
    if (!from_master(n, req, from) ||
        aemp_val_str(aemp_msg_at(req, 1), &id, NULL) < 0)
        return;
    aemp__greq_t *r = req_find(g, id);
    if (!r || !r->fn)
        return;
    req_unlink(g, r);
    const aemp_val_t *res = aemp_msg_at(req, 2);
    aemp_val_t *empty = NULL;
    aemp_type_t want = r->shape == SHAPE_FAMILY ? AEMP_T_MAP : AEMP_T_ARR;
    if (aemp_val_type(res) != want) /* a missing family: null */
        res = empty = want == AEMP_T_MAP ? aemp_map_new() : aemp_arr_new();
    r->fn(n, res ? 0 : AEMP_ENOMEM, res, r->user);
    aemp_val_free(empty);
    req_free(r);
    arm_timer(g);
}

/* ---- monitors
 * ----------------------------------------------------------------- */

static void watch_drop(aemp__global_t *g, aemp__gwatch_t *w);
static bool watch_idle(const aemp__gwatch_t *w);

/* Calls every subscriber of w (only those due a snapshot if only_due). */
static void notify(aemp__global_t *g, aemp__gwatch_t *w, const aemp_val_t *a,
                   const aemp_val_t *c, const aemp_val_t *d, bool only_due)
{
    aemp_node_t *n = g->node;
    aemp_val_t *members = NULL;
    w->running++;
    for (aemp__gsub_t *s = w->subs; s; s = s->next) {
        if (s->gone || (only_due && !s->snapshot_now))
            continue;
        if (!only_due && s->snapshot_due)
            continue; /* its snapshot comes first, with all of this */
        s->snapshot_due = s->snapshot_now = false;
        bool first = !s->called; /* the snapshot, even of an empty group */
        s->called = true;
        if (s->fn) {
            s->fn(n, w->family, w->view.map, a, c, d, s->user);
        } else if (aemp_val_len(a) || aemp_val_len(d) || first) {
            /* grp_mon: members, added, removed (a changed key is neither) */
            if (!members && !(members = aemp__view_keys(&w->view)))
                continue;
            s->gfn(n, w->family, members, a, d, s->user);
        }
        if (n->freeing || !n->global)
            break;
    }
    aemp_val_free(members);
    if (--w->running == 0) {
        if (watch_idle(w)) {
            watch_drop(g, w);
            return;
        }
        aemp__gsub_t **sp = &w->subs, *s;
        while ((s = *sp)) {
            if (s->gone) {
                *sp = s->next;
                aemp__free(s);
            } else {
                sp = &s->next;
            }
        }
    }
}

/* key k is set to v (copied) in the master's view; *added or *changed
 * gets it. */
static void view_set(aemp__gwatch_t *w, const char *k, const aemp_val_t *v,
                     aemp_val_t **added, aemp_val_t **changed)
{
    size_t klen = strlen(k);
    bool had;
    if (aemp__view_set(&w->view, k, klen, v ? aemp_val_copy(v) : aemp_null(),
                       &had) < 0)
        return;
    aemp_val_t **to = had ? changed : added;
    *to = aemp_arr_push(*to, aemp_strn(k, klen));
}

static void view_del(aemp__gwatch_t *w, const char *k, aemp_val_t **deleted)
{
    size_t klen = strlen(k);
    if (aemp__view_del(&w->view, k, klen))
        *deleted = aemp_arr_push(*deleted, aemp_strn(k, klen));
}

/* The watch a g_chg1/g_chg2 from our master is about, or NULL (not from
 * our master, or a family we no longer watch). */
static aemp__gwatch_t *watch_of(aemp_node_t *n, const aemp_msg_t *req,
                                const char *from)
{
    aemp__global_t *g = n->global;
    const char *f;
    if (!from_master(n, req, from))
        return NULL;
    if (aemp__db_name(aemp_msg_at(req, 1), &f) < 0) {
        aemp__log(n, AEMP_LOG_WARN, "global: a change without a family name");
        return NULL;
    }
    return aemp__strmap_get(&g->watches, f, strlen(f));
}

/* The subscribers hear of the keys added, changed, deleted (taken). */
static void report_changes(aemp__global_t *g, aemp__gwatch_t *w, aemp_val_t *a,
                           aemp_val_t *c, aemp_val_t *d)
{
    if (a && c && d)
        notify(g, w, a, c, d, false);
    aemp_val_free(a);
    aemp_val_free(c);
    aemp_val_free(d);
}

/* ["g_chg1", family, {all} | null]: the master's snapshot. */
static void g_chg1(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = n->global;
    aemp__gwatch_t *w = watch_of(n, req, from);
    if (!w)
        return;
    const aemp_val_t *all = aemp_msg_at(req, 2);
    aemp_val_t *a = aemp_arr_new(), *c = aemp_arr_new(), *d = aemp_arr_new();
    /* what is gone first (found through an index of the snapshot's keys:
     * a family of n keys costs O(n), not O(n^2)) */
    aemp__strmap_t incoming;
    bool indexed = aemp__db_index_keys(all, &incoming) == 0;
    aemp_val_t *gone = indexed ? aemp_arr_new() : NULL;
    for (size_t i = 0; gone && i < aemp_val_len(w->view.map); i++) {
        size_t len;
        const char *k = aemp__map_key_at(w->view.map, i, &len);
        if (!aemp__strmap_get(&incoming, k, len))
            gone = aemp_arr_push(gone, aemp_strn(k, len));
    }
    aemp__strmap_free(&incoming);
    for (size_t j = 0; j < aemp_val_len(gone); j++) {
        const char *k;
        if (aemp_val_str(aemp_val_at(gone, j), &k, NULL) == 0)
            view_del(w, k, &d);
    }
    aemp_val_free(gone);
    for (size_t i = 0; i < aemp_val_len(all); i++) {
        const char *k;
        const aemp_val_t *v;
        if (aemp_map_at(all, i, &k, &v) == 0)
            view_set(w, k, v, &a, &c);
    }
    w->primed = true;
    report_changes(g, w, a, c, d);
}

/* ["g_chg2", family, {set}, [deleted]]: a change in the master's view. */
static void g_chg2(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = n->global;
    aemp__gwatch_t *w = watch_of(n, req, from);
    if (!w)
        return;
    const aemp_val_t *set = aemp_msg_at(req, 2), *del = aemp_msg_at(req, 3);
    aemp_val_t *a = aemp_arr_new(), *c = aemp_arr_new(), *d = aemp_arr_new();
    for (size_t i = 0; i < aemp_val_len(set); i++) {
        const char *k;
        const aemp_val_t *v;
        if (aemp_map_at(set, i, &k, &v) == 0)
            view_set(w, k, v, &a, &c);
    }
    for (size_t i = 0; i < aemp_val_len(del); i++) {
        const char *k;
        if (aemp_val_str(aemp_val_at(del, i), &k, NULL) == 0)
            view_del(w, k, &d);
    }
    report_changes(g, w, a, c, d);
}

/* New subscribers of a primed family get its snapshot from the loop. */
static void on_snapshots(uv_idle_t *h)
{
    aemp__global_t *g = h->data;
    uv_idle_stop(h);
    size_t i = 0;
    aemp__gwatch_t *w;
    /* those due now; who subscribes from a callback is served in the next
     * turn of the loop (watch() starts the idle handle again) */
    while ((w = aemp__strmap_next(&g->watches, &i)))
        for (aemp__gsub_t *s = w->subs; s; s = s->next)
            s->snapshot_now = s->snapshot_due && !s->gone;
    i = 0;
    while ((w = aemp__strmap_next(&g->watches, &i))) {
        bool due = false;
        for (aemp__gsub_t *s = w->subs; s; s = s->next)
            due |= s->snapshot_now && !s->gone;
        if (!due)
            continue;
        aemp_val_t *a = aemp__view_keys(&w->view), *none = aemp_arr_new();
        if (a && none)
            notify(g, w, a, none, none, true);
        aemp_val_free(a);
        aemp_val_free(none);
        if (!g->node->global)
            return;
        i = 0; /* a callback may have changed the watches */
    }
}

static void watch_drop(aemp__global_t *g, aemp__gwatch_t *w)
{
    for (aemp__greq_t *r = g->reqs; r; r = r->next)
        if (!strncmp(r->key, "mon1 ", 5) && !strcmp(r->key + 5, w->family)) {
            req_unlink(g, r);
            req_free(r);
            break;
        }
    aemp_msg_t *m = NULL;
    aemp_msg_new(&m, "sS", "g_mon0", w->family, w->flen);
    aemp__global_request(g, NULL, m);
    aemp__strmap_del(&g->watches, w->family, w->flen);
    watch_free(w);
}

static bool watch_idle(const aemp__gwatch_t *w)
{
    for (const aemp__gsub_t *t = w->subs; t; t = t->next)
        if (!t->gone)
            return false;
    return true;
}

/* A db_mon guard was cancelled: the family is given up with its last
 * subscriber (g_mon0), unless callbacks of it still run (notify ends it). */
static void sub_cancel(void *ptr)
{
    aemp__gsub_t *s = ptr;
    aemp__gwatch_t *w = s->watch;
    s->guard = NULL;
    s->gone = true;
    if (!w->running && watch_idle(w))
        watch_drop(w->g, w);
}

static int watch(aemp_node_t *n, const char *family, aemp_db_mon_fn fn,
                 aemp_grp_mon_fn gfn, void *user, aemp_mon_t **guard)
{
    aemp__global_t *g;
    int rc = check_names(n, family, NULL, &g);
    if (rc < 0)
        return rc;
    if (!fn && !gfn)
        return AEMP_EINVAL;
    size_t flen = strlen(family);
    aemp__gwatch_t *w = aemp__strmap_get(&g->watches, family, flen);
    bool fresh = !w;
    if (fresh) {
        if (!(w = aemp__calloc(1, sizeof *w + flen + 1)))
            return AEMP_ENOMEM;
        memcpy(w->family, family, flen);
        w->flen = flen;
        w->g = g;
        if (aemp__view_init(&w->view) < 0 ||
            aemp__strmap_put(&g->watches, w->family, flen, w) < 0) {
            aemp__view_free(&w->view);
            aemp__free(w);
            return AEMP_ENOMEM;
        }
    }
    if (fresh) { /* the master is asked first: a failure undoes it all */
        char *key = aemp__asprintf("mon1 %s", family);
        aemp_msg_t *m = NULL;
        int r = key ? aemp_msg_new(&m, "ss", "g_mon1", family) : AEMP_ENOMEM;
        if (r == 0)
            r = aemp__global_request(g, key, m);
        aemp__free(key);
        if (r < 0) {
            watch_drop(g, w);
            return r;
        }
    }
    aemp__gsub_t *s = aemp__calloc(1, sizeof *s);
    if (!s || (guard && aemp__mon_hook(n, sub_cancel, s, &s->guard) < 0)) {
        aemp__free(s);
        if (fresh)
            watch_drop(g, w); /* g_mon0 after the g_mon1: nothing stays */
        return AEMP_ENOMEM;
    }
    s->watch = w;
    s->fn = fn;
    s->gfn = gfn;
    s->user = user;
    s->next = w->subs;
    w->subs = s;
    if (!fresh && w->primed) {
        s->snapshot_due = true;
        uv_idle_start(&g->snapshots, on_snapshots);
    }
    if (guard)
        *guard = s->guard;
    return 0;
}

int aemp_db_mon(aemp_node_t *n, const char *family, aemp_db_mon_fn fn,
                void *user, aemp_mon_t **guard)
{
    return fn ? watch(n, family, fn, NULL, user, guard) : AEMP_EINVAL;
}

int aemp__global_watch_grp(aemp_node_t *n, const char *group,
                           aemp_grp_mon_fn fn, void *user, aemp_mon_t **guard)
{
    return fn ? watch(n, group, NULL, fn, user, guard) : AEMP_EINVAL;
}

/* ---- state ------------------------------------------------------------------
 */

int aemp_node_is_global(aemp_node_t *n)
{
    return n && n->global && n->global->global;
}

const char *aemp_master(aemp_node_t *n)
{
    return n && n->global ? n->global->master : NULL;
}

/* ["g_global"]: the sender is a global node. */
void aemp__g_global(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = n->global;
    if (!g || !from)
        return;
    if (g->global) {
        aemp__store_hello(g, from);
        return;
    }
    char *copy = aemp__strmap_get(&g->globals, from, strlen(from))
                     ? NULL
                     : aemp__strdup(from);
    if (copy && aemp__strmap_put(&g->globals, copy, strlen(copy), copy) < 0)
        aemp__free(copy);
    master_search(g);
    aemp__peer_t *p = aemp__peer_find(n, from);
    if (p)
        release_seed(g, p);
}

void aemp__global_attach_self(aemp__global_t *g)
{
    aemp__free(g->master);
    g->master = NULL;
    master_set(g, g->node->noderef);
}

/* ["aemp::global", reply target...] -> [{"global": b, "master": id | null,
 * "attached": [ids], "globals": [ids]}]: what `aemp trace` shows. */
static void req_info(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = n->global;
    const char *port;
    if (!g || aemp_val_str(aemp_msg_at(req, 1), &port, NULL) < 0)
        return;
    aemp_val_t *attached = aemp_arr_new(), *globals = aemp_arr_new();
    aemp__store_lists(g, &attached, &globals);
    aemp_val_t *info = aemp_map_new();
    info = aemp_map_set(info, "global", aemp_bool(g->global));
    info = aemp_map_set(info, "master",
                        g->master ? aemp_str(g->master) : aemp_null());
    /* where the master is, when its ID is no address (a Perl node's free
     * text): a node that asks us can reach it there */
    aemp__peer_t *mp = g->master ? aemp__peer_find(n, g->master) : NULL;
    info = aemp_map_set(info, "master_at",
                        mp && mp->addrs ? aemp_str(mp->addrs) : aemp_null());
    info = aemp_map_set(info, "attached", attached);
    info = aemp_map_set(info, "globals", globals);
    aemp_msg_t *head = NULL, *m = NULL;
    aemp_val_t *arr = aemp_arr(info);
    int rc = aemp__msg_slice(&head, req, 2);
    if (rc == 0 && (rc = aemp_msg_from_val(&m, &arr)) == 0) {
        aemp_msg_t *all = NULL;
        if (aemp__msg_concat(&all, head, m) == 0)
            aemp__send(n, port, all);
        aemp_msg_unref(all);
    }
    aemp_val_free(arr);
    aemp_msg_unref(head);
    aemp_msg_unref(m);
}

/* ["AnyEvent::MP::Kernel::db_set", family, key, value] and
 * ["AnyEvent::MP::Kernel::db_del", family, key...]: a peer asks this node
 * to set or delete entries of its own — what `aemp db set` does through
 * the node it names (a Perl 2.x node calls its function of that name).
 * Refused on a secure node, as Perl refuses function calls there. */
static void req_db_set(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = n->global;
    const char *name, *f, *k;
    if (!g || aemp_val_str(aemp_msg_at(req, 0), &name, NULL) < 0)
        return;
    if (n->secure && from) {
        aemp__log(n, AEMP_LOG_WARN, "global: %s from %s refused (secure)", name,
                  from);
        return;
    }
    if (aemp_val_str(aemp_msg_at(req, 1), &f, NULL) < 0 || !*f ||
        f[0] == '\'') {
        aemp__log(n, AEMP_LOG_WARN, "global: %s without a family", name);
        return;
    }
    bool del = !strcmp(name, "AnyEvent::MP::Kernel::db_del");
    for (size_t i = 2; i < aemp_msg_len(req); i++) {
        if (aemp_val_str(aemp_msg_at(req, i), &k, NULL) < 0 || !*k)
            break;
        if (del) {
            aemp__global_del(g, f, k);
            continue;
        }
        const aemp_val_t *v = aemp_msg_at(req, i + 1);
        aemp_val_t *copy = v ? aemp_val_copy(v) : aemp_null();
        if (copy)
            aemp__global_set(g, f, k, copy);
        break;
    }
}

const aemp__request_t aemp__global_requests[] = {
    {"aemp::global", req_info, false, false},
    {"AnyEvent::MP::Kernel::db_set", req_db_set, false, false},
    {"AnyEvent::MP::Kernel::db_del", req_db_set, false, false},
    {"g_slave", aemp__g_slave, false, false},
    {"g_set", aemp__g_set, false, false},
    {"g_upd", aemp__g_upd, false, false},
    {"g_find", aemp__g_find, false, false},
    {"g_found", g_found, false, false},
    {"g_db_family", aemp__g_query, false, false},
    {"g_db_keys", aemp__g_query, false, false},
    {"g_db_values", aemp__g_query, false, false},
    {"g_reply", g_reply, false, false},
    {"g_mon1", aemp__g_mon, false, false},
    {"g_mon0", aemp__g_mon, false, false},
    {"g_chg1", g_chg1, false, false},
    {"g_chg2", g_chg2, false, false},
    {"g_global", aemp__g_global, false, false},
    {NULL, NULL, false, false},
};
