/* Node lifecycle and the dispatch queue: every delivery and death notice
 * runs from the loop, in FIFO order, never re-entrantly from snd/kil. */
#include "kernel.h"

#include <string.h>

/* Items processed per loop iteration before I/O and timers get a turn,
 * those queued during the pass included: a port that keeps sending to
 * itself must not keep the loop from reading, writing and running timers
 * for long, while one loop iteration (a few hundred ns) is still spread
 * over many deliveries. */
#define DISPATCH_BUDGET 4096
/* Free items kept for reuse (a full receive queue's worth, see
 * AEMP__BLOCK_CACHE); beyond that they go back to the allocator. */
#define ITEM_CACHE 8192

static const char cookie_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* The instance cookie: ~59 bits from the CSPRNG.  OpenSSL seeds from the
 * OS, so two instances (even a restart in the same second with the same
 * pid) collide with negligible probability — which is what keeps port IDs
 * from ever being reused. */
static int make_cookie(char *out)
{
    unsigned char rnd[AEMP__COOKIE_LEN];
    int rc = aemp__random(rnd, sizeof rnd);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < AEMP__COOKIE_LEN; i++)
        out[i] = cookie_alphabet[rnd[i] % (sizeof cookie_alphabet - 1)];
    out[AEMP__COOKIE_LEN] = 0;
    return 0;
}

static void on_idle(uv_idle_t *h);

static int node_init(aemp_node_t *n)
{
    int rc = make_cookie(n->cookie);
    if (rc < 0)
        return rc;
    n->noderef = aemp__asprintf("anon/%s", n->cookie);
    if (!n->noderef)
        return AEMP_ENOMEM;
    n->noderef_len = strlen(n->noderef);
    n->next_counter = 1;
    n->tail = &n->head;
    aemp_node_set_log(n, AEMP_LOG_WARN, NULL, NULL);
    return aemp__ports_init(n);
}

int aemp_node_new(aemp_node_t **out, uv_loop_t *loop)
{
    if (!out)
        return AEMP_EINVAL;
    aemp_node_t *n = aemp__calloc(1, sizeof *n);
    if (!n)
        return AEMP_ENOMEM;
    int rc = node_init(n);
    if (rc == 0 && !loop) {
        if (uv_loop_init(&n->own_loop) != 0)
            rc = AEMP_ESYS;
        n->owns_loop = rc == 0;
        loop = &n->own_loop;
    }
    if (rc < 0) {
        aemp__ports_free(n);
        aemp__free(n->noderef);
        aemp__free(n);
        return rc;
    }
    n->loop = loop;
    uv_idle_init(loop, &n->idle);
    n->idle.data = n;
    *out = n;
    return 0;
}

/* ---- queue --------------------------------------------------------------- */

aemp__item_t *aemp__item_new(aemp_node_t *n, uint8_t kind)
{
    aemp__item_t *it = n->free_items;
    if (it) {
        n->free_items = it->next;
        n->nfree_items--;
    } else if (!(it = aemp__malloc(sizeof *it))) {
        return NULL;
    }
    it->next = NULL;
    it->kind = kind;
    it->msg = NULL;
    it->id = NULL;
    it->skip = 0;
    it->bytes = 0;
    return it;
}

static void item_free(aemp_node_t *n, aemp__item_t *it)
{
    if (n->nfree_items >= ITEM_CACHE) {
        aemp__free(it);
        return;
    }
    it->next = n->free_items;
    n->free_items = it;
    n->nfree_items++;
}

void aemp__enqueue(aemp_node_t *n, aemp__item_t *it)
{
    if (!n->head && !n->freeing)
        uv_idle_start(&n->idle, on_idle);
    *n->tail = it;
    n->tail = &it->next;
}

static aemp__item_t *dequeue(aemp_node_t *n)
{
    aemp__item_t *it = n->head;
    if (it && !(n->head = it->next))
        n->tail = &n->head;
    if (it && it->bytes) {
        n->qitems--;
        n->qbytes -= it->bytes;
    }
    return it;
}

void aemp__dequeue_item(aemp_node_t *n, aemp__item_t *it)
{
    aemp__item_t **pp = &n->head, *prev = NULL;
    while (*pp && *pp != it) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = it->next;
    if (n->tail == &it->next)
        n->tail = prev ? &prev->next : &n->head;
}

/* ---- dispatch -------------------------------------------------------------- */

void aemp__run_in(aemp_node_t *n, aemp__port_t *p, aemp_rcv_fn rcv,
                  aemp_task_fn task, const aemp_msg_t *m, void *user)
{
    aemp_ctx_t c = {n, p, NULL, n->cur};
    n->cur = &c;
    int rc = rcv ? rcv(&c, m, user) : task(&c, user);
    n->cur = c.outer;
    if (rc != 0 && p == n->node_port)
        aemp__log(n, AEMP_LOG_WARN, "node port handler failed: %s",
                  c.die ? c.die : aemp_strerror(rc));
    else if (rc != 0 && !p->dead)
        aemp__kill_die(n, p, c.die ? c.die : aemp_strerror(rc));
    aemp__free(c.die);
}

static const struct aemp__tag *tag_lookup(const aemp__port_t *p,
                                          const aemp_msg_t *m)
{
    if (!p->tags || !m->root.len || !aemp__val_is_text(&m->root.u.items[0]))
        return NULL;
    const struct aemp_val *t = &m->root.u.items[0];
    return aemp__tags_find(p->tags, t->u.s, t->len);
}

static void dispatch_msg(aemp_node_t *n, uint64_t counter, const aemp_msg_t *m,
                         const char *from)
{
    if (counter == 0) {
        aemp__nodeport_dispatch(n, m, from);
        return;
    }
    aemp__port_t *p = aemp__port_get(n, counter);
    if (!p)
        return; /* dead or never existed: dropped, monitors tell */
    const struct aemp__tag *t = tag_lookup(p, m);
    if (t) {
        aemp_msg_t view;
        aemp__msg_view_tail(m, &view);
        aemp__run_in(n, p, t->cb, NULL, &view, t->user);
    } else if (p->cb) {
        aemp__run_in(n, p, p->cb, NULL, m, p->user);
    } else {
        aemp__kill_die(n, p, "received message on port without callback");
    }
}

static void process(aemp_node_t *n, aemp__item_t *it)
{
    switch (it->kind) {
    case AEMP__DELIVER:
        if (it->skip) {
            aemp_msg_t view;
            aemp__msg_view_tail(it->msg, &view);
            dispatch_msg(n, it->counter, &view, it->id);
        } else {
            dispatch_msg(n, it->counter, it->msg, it->id);
        }
        aemp__msg_release(&n->blocks, it->msg);
        aemp__free(it->id);
        break;
    case AEMP__DIED:
        aemp__process_died(n, it);
        break;
    case AEMP__FIRE:
        aemp__process_fire(n, it);
        break;
    case AEMP__NODE_EVENT:
        aemp__process_node_event(n, it);
        break;
    case AEMP__SPAWN:
        aemp__process_spawn(n, it);
        break;
    case AEMP__NET_ITEM:
        n->net_ops->run_item(n, it);
        return; /* the network's own item */
    }
    item_free(n, it);
}

static void on_idle(uv_idle_t *h)
{
    aemp_node_t *n = h->data;
    n->dispatching++;
    for (size_t budget = DISPATCH_BUDGET; budget && n->head && !n->stopping;
         budget--)
        process(n, dequeue(n));
    n->dispatching--;
    if (!n->head)
        uv_idle_stop(h);
    if (n->net_ops)
        n->net_ops->queue_drained(n);
}

/* [<port name>, "<request>", ...] to the node port: a request to handle
 * as it is read (aemp__request_t.on_read), or NULL. */
static const aemp__request_t *on_read(const aemp_node_t *n,
                                      const aemp_msg_t *m)
{
    const char *req;
    size_t len;
    const aemp__request_t *r =
        aemp_val_str(aemp_msg_at(m, 1), &req, &len) == 0
            ? aemp__nodeport_find(n, req, len)
            : NULL;
    return r && r->on_read ? r : NULL;
}

int aemp__deliver_packet(aemp_node_t *n, const char *from, const aemp_msg_t *m)
{
    const char *name;
    if (aemp_val_str(aemp_msg_at(m, 0), &name, NULL) < 0)
        return AEMP_EPROTO;
    uint64_t counter = *name ? aemp__port_counter(n, name) : 0;
    if (counter == UINT64_MAX)
        return 0; /* no such port (any more): dropped */
    const aemp__request_t *now = counter ? NULL : on_read(n, m);
    if (now) {
        aemp_msg_t view;
        aemp__msg_view_tail(m, &view);
        now->fn(n, &view, from);
        return 0;
    }
    if (counter && !n->head && !n->dispatching && !n->cur && !n->stopping) {
        /* Nothing is queued ahead of it and no callback is running (we are
         * in the link's read callback): delivering now is what the queue
         * would do next, minus the queue — and the packet is still in the
         * cache.  Whatever the callback sends queues behind it. */
        aemp_msg_t view;
        aemp__msg_view_tail(m, &view);
        n->dispatching++;
        dispatch_msg(n, counter, &view, from);
        n->dispatching--;
        return 0;
    }
    aemp__item_t *it = aemp__item_new(n, AEMP__DELIVER);
    if (!it)
        return AEMP_ENOMEM;
    if (!counter && !(it->id = aemp__strdup(from))) {
        item_free(n, it);
        return AEMP_ENOMEM;
    }
    it->counter = counter;
    it->skip = 1;
    it->msg = aemp__msg_ref(m); /* decoded packets are blocks: never NULL */
    /* counted for the network's read bound (never 0: a block) */
    size_t fp = aemp__msg_footprint(m);
    it->bytes = fp > UINT32_MAX ? UINT32_MAX : (uint32_t)fp;
    n->qitems++;
    n->qbytes += it->bytes;
    aemp__enqueue(n, it);
    return 0;
}

int aemp__queue_node_event(aemp_node_t *n, const char *id, bool up,
                           aemp_msg_t *reason)
{
    aemp__item_t *it = aemp__item_new(n, AEMP__NODE_EVENT);
    if (!it || !(it->id = aemp__strdup(id))) {
        if (it)
            item_free(n, it);
        aemp_msg_unref(reason);
        return AEMP_ENOMEM;
    }
    it->counter = up;
    it->msg = reason;
    aemp__enqueue(n, it);
    return 0;
}

/* ---- running and freeing ---------------------------------------------- */

int aemp_run(aemp_node_t *n)
{
    if (!n)
        return AEMP_EINVAL;
    /* the loop this thread is running through aemp_run: libuv loops are
     * not re-entrant, and another node on the same loop would not know */
    static _Thread_local uv_loop_t *running;
    if (n->dispatching || n->cur || running == n->loop)
        return AEMP_EBUSY;
    uv_loop_t *outer = running;
    running = n->loop;
    n->stopping = false;
    uv_run(n->loop, UV_RUN_DEFAULT);
    n->stopping = false;
    running = outer;
    return 0;
}

void aemp_stop(aemp_node_t *n)
{
    if (!n)
        return;
    n->stopping = true; /* the dispatcher stops at the next item */
    uv_stop(n->loop);
}

uv_loop_t *aemp_node_loop(aemp_node_t *n) { return n ? n->loop : NULL; }

const char *aemp_noderef(const aemp_node_t *n)
{
    return n ? n->noderef : NULL;
}

static void free_node_memory(aemp_node_t *n)
{
    aemp__item_t *it;
    while ((it = n->free_items)) {
        n->free_items = it->next;
        aemp__free(it);
    }
    aemp__blocks_free(&n->blocks);
    aemp__tags_free(n->handlers);
    aemp__tags_free(n->inits);
    aemp__free(n->nodename);
    aemp__free(n->dns_servers);
    aemp__free(n->noderef);
    for (size_t i = 0; i < n->nold; i++)
        aemp__free(n->old_names[i]);
    aemp__free(n->old_names);
    aemp__free(n);
}

void aemp__node_handle_closed(aemp_node_t *n)
{
    if (--n->closing == 0 && n->freeing && !n->owns_loop)
        free_node_memory(n);
}

static void on_idle_closed(uv_handle_t *h)
{
    aemp__node_handle_closed(h->data);
}

void aemp__node_close(aemp_node_t *n, uv_handle_t *h, uv_close_cb cb)
{
    n->closing++;
    uv_close(h, cb);
}

int aemp__node_at_free(aemp_node_t *n, void (*fn)(aemp_node_t *n))
{
    for (size_t i = 0; i < AEMP__FREE_HOOKS; i++) {
        if (n->free_hooks[i] == fn)
            return 0;
        if (!n->free_hooks[i]) {
            n->free_hooks[i] = fn;
            return 0;
        }
    }
    return AEMP_ENOMEM;
}

/* Drops queued work without running it: messages are released, death
 * notices and pending monitors do not fire (guards still release). */
static void drain_queue(aemp_node_t *n)
{
    aemp__item_t *it;
    while ((it = dequeue(n))) {
        if (it->kind == AEMP__DIED) {
            aemp__port_drop_mons(n, it->u.port);
            aemp__free(it->u.port);
        } else if (it->kind == AEMP__FIRE) {
            aemp__drop_fire(n, it);
        }
        aemp_msg_unref(it->msg);
        it->msg = NULL;
        aemp__free(it->id);
        if (it->kind != AEMP__NET_ITEM) /* the network's own */
            aemp__free(it);
    }
}

void aemp_node_free(aemp_node_t *n)
{
    if (!n)
        return;
    n->freeing = true;
    if (n->net_ops)
        n->net_ops->close(n); /* closes links and listeners */
    for (size_t i = 0; i < AEMP__FREE_HOOKS && n->free_hooks[i]; i++)
        n->free_hooks[i](n);
    aemp__nodes_drop(n);
    drain_queue(n);
    aemp__ports_free(n);
    drain_queue(n); /* nothing new should appear, but stay safe */
    aemp__timers_close(n);
    aemp__node_close(n, (uv_handle_t *)&n->idle, on_idle_closed);
    if (n->owns_loop) {
        while (n->closing)
            uv_run(&n->own_loop, UV_RUN_ONCE);
        uv_loop_close(&n->own_loop);
        free_node_memory(n);
    }
}
