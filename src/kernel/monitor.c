/* Killing ports and the monitors that notice it.  Deaths are queued and
 * monitors fire from the loop, so no user code runs inside aemp_kil. */
#include "kernel.h"

#include <stdlib.h>
#include <string.h>

/* ---- killing ------------------------------------------------------------ */

/* Takes reason.  Under memory exhaustion the death notice cannot be
 * queued; the port then stays alive (nothing is half-done) and the error
 * is returned. */
static int port_kill(aemp_node_t *n, aemp__port_t *p, aemp_msg_t *reason)
{
    aemp__item_t *it = aemp__item_new(n, AEMP__DIED);
    if (!it) {
        aemp_msg_unref(reason);
        return AEMP_ENOMEM;
    }
    p->dead = 1;
    aemp__port_unlink(n, p);
    aemp__tags_free(p->tags);
    p->tags = NULL;
    p->cb = NULL;
    it->u.port = p;
    it->msg = reason;
    aemp__enqueue(n, it);
    return 0;
}

void aemp__port_kill(aemp_node_t *n, aemp__port_t *p, aemp_msg_t *reason)
{
    if (port_kill(n, p, reason) < 0)
        aemp__log(n, AEMP_LOG_ERROR, "out of memory killing %s", p->id);
}

void aemp__kill_die(aemp_node_t *n, aemp__port_t *p, const char *text)
{
    aemp_msg_t *reason;
    if (aemp_msg_new(&reason, "ss", "die", text) < 0) {
        aemp__log(n, AEMP_LOG_ERROR, "out of memory killing %s", p->id);
        return;
    }
    aemp__port_kill(n, p, reason);
}

static int kill_id(aemp_node_t *n, const char *port, const aemp_msg_t *reason)
{
    uint64_t counter;
    int rc = aemp__port_locate(n, port, &counter);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return n->net_ops ? n->net_ops->kill(n, port, reason) : AEMP_ENOROUTE;
    if (counter == 0)
        return AEMP_EPERM;
    aemp__port_t *p = aemp__port_get(n, counter);
    if (!p)
        return 0;
    aemp_msg_t *r = aemp__msg_ref(reason);
    return r ? port_kill(n, p, r) : AEMP_ENOMEM;
}

static int kil_msg(aemp_node_t *n, const char *port, aemp_msg_t *reason)
{
    int rc = kill_id(n, port, reason);
    aemp_msg_unref(reason);
    return rc;
}

int aemp_kil(aemp_node_t *n, const char *port, const char *picture, ...)
{
    if (!n)
        return AEMP_EINVAL;
    aemp_msg_t *reason;
    va_list ap;
    va_start(ap, picture);
    int rc = aemp__msg_vnew(&reason, picture, ap);
    va_end(ap);
    return rc < 0 ? rc : kil_msg(n, port, reason);
}

int aemp_kilv(aemp_node_t *n, const char *port, aemp_val_t **reason)
{
    aemp_msg_t *m;
    int rc = n && reason ? aemp__msg_of_val(&m, *reason) : AEMP_EINVAL;
    if (rc == 0 && (rc = kil_msg(n, port, m)) == 0) {
        aemp_val_free(*reason); /* taken only on success */
        *reason = NULL;
    }
    return rc;
}

/* ---- monitor records ---------------------------------------------------- */

static void mon_free(struct aemp_mon *m)
{
    if (m->kind == AEMP__MON_KILL) {
        aemp__free(m->u.kill.other);
    } else if (m->kind == AEMP__MON_MSG) {
        aemp__free(m->u.msg.rcvport);
        aemp_msg_unref(m->u.msg.head);
    } else if (m->kind == AEMP__MON_WATCH) {
        aemp__free(m->u.watch.peer);
        aemp__free(m->u.watch.name);
    }
    aemp__free(m);
}

void aemp__mon_link(aemp__port_t *p, struct aemp_mon *m)
{
    /* head->prev is the tail, so appending keeps set-up order in O(1) */
    m->port = p;
    m->next = NULL;
    if (!p->mons) {
        m->prev = m;
        p->mons = m;
    } else {
        m->prev = p->mons->prev;
        p->mons->prev->next = m;
        p->mons->prev = m;
    }
}

static void mon_unlink(struct aemp_mon *m)
{
    aemp__port_t *p = m->port;
    if (m->next)
        m->next->prev = m->prev;
    else
        p->mons->prev = m->prev;
    if (p->mons == m)
        p->mons = m->next;
    else
        m->prev->next = m->next;
    m->port = NULL;
}

/* Runs a monitor's action.  Nothing touches m after a user callback when
 * the user holds the guard (they may cancel it from inside). */
static void mon_fire(aemp_node_t *n, struct aemp_mon *m, const char *port,
                     const aemp_msg_t *reason)
{
    bool held = m->held;
    m->state = AEMP__MON_FIRED;
    switch (m->kind) {
    case AEMP__MON_CB:
        m->u.cb.fn(n, port, reason, m->u.cb.user);
        break;
    case AEMP__MON_KILL:
        if (aemp_msg_len(reason))
            kill_id(n, m->u.kill.other, reason);
        break;
    case AEMP__MON_MSG: {
        aemp_msg_t *msg;
        if (aemp__msg_concat(&msg, m->u.msg.head, reason) == 0) {
            aemp__send(n, m->u.msg.rcvport, msg);
            aemp_msg_unref(msg);
        } else {
            aemp__log(n, AEMP_LOG_ERROR, "out of memory notifying %s",
                      m->u.msg.rcvport);
        }
        break;
    }
    case AEMP__MON_GUARD:
        m->u.guard.release(m->u.guard.resource);
        break;
    case AEMP__MON_WATCH: /* a peer's monitor: the network tells it */
        if (n->net_ops)
            n->net_ops->watch_fired(n, m, reason);
        break;
    case AEMP__MON_NODES:
    case AEMP__MON_HOOK:
        break;
    }
    if (!held)
        mon_free(m);
}

void aemp__process_died(aemp_node_t *n, aemp__item_t *it)
{
    aemp__port_t *p = it->u.port;
    struct aemp_mon *m;
    while ((m = p->mons)) {
        mon_unlink(m);
        mon_fire(n, m, p->id, it->msg);
    }
    aemp_msg_unref(it->msg);
    aemp__free(p);
}

/* One monitor of a lost node's port, and the stub it was set on. */
struct lost_mon {
    struct aemp_mon *m;
    const aemp__port_t *stub;
};

static int by_setup_order(const void *a, const void *b)
{
    uint64_t x = ((const struct lost_mon *)a)->m->seq;
    uint64_t y = ((const struct lost_mon *)b)->m->seq;
    return x < y ? -1 : x > y;
}

void aemp__stubs_fire(aemp_node_t *n, aemp__port_t **stubs, size_t count,
                      const aemp_msg_t *reason)
{
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        stubs[i]->dead = 1; /* a cancelled last monitor frees no stub */
        for (struct aemp_mon *m = stubs[i]->mons; m; m = m->next)
            total++;
    }
    struct lost_mon *all = total ? aemp__calloc(total, sizeof *all) : NULL;
    if (!all) {
        /* no memory to sort: port by port, each in set-up order */
        for (size_t i = 0; i < count; i++) {
            struct aemp_mon *m;
            while ((m = stubs[i]->mons)) {
                mon_unlink(m);
                mon_fire(n, m, stubs[i]->id, reason);
            }
            aemp__free(stubs[i]);
        }
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        struct aemp_mon *m;
        while ((m = stubs[i]->mons)) {
            mon_unlink(m);
            /* a callback may cancel a monitor that has yet to fire: as
             * for a queued firing, cancelling then only marks it */
            m->state = AEMP__MON_QUEUED;
            all[k].m = m;
            all[k++].stub = stubs[i];
        }
    }
    qsort(all, k, sizeof *all, by_setup_order);
    for (size_t i = 0; i < k; i++) {
        struct aemp_mon *m = all[i].m;
        if (m->state == AEMP__MON_CANCELLED)
            mon_free(m);
        else
            mon_fire(n, m, all[i].stub->id, reason);
    }
    aemp__free(all);
    for (size_t i = 0; i < count; i++)
        aemp__free(stubs[i]);
}

void aemp__process_fire(aemp_node_t *n, aemp__item_t *it)
{
    struct aemp_mon *m = it->u.mon;
    if (m->state == AEMP__MON_CANCELLED)
        mon_free(m);
    else
        mon_fire(n, m, it->id, it->msg);
    aemp_msg_unref(it->msg);
    aemp__free(it->id);
}

/* The node goes away: guards release their resources, held guards become
 * orphans that aemp_mon_cancel() only frees, the rest is freed. */
static void mon_drop(struct aemp_mon *m)
{
    if (m->state == AEMP__MON_CANCELLED) {
        mon_free(m);
        return;
    }
    if (m->kind == AEMP__MON_GUARD)
        m->u.guard.release(m->u.guard.resource);
    if (m->held) {
        m->state = AEMP__MON_ORPHAN;
        m->node = NULL;
    } else {
        mon_free(m);
    }
}

void aemp__port_drop_mons(aemp_node_t *n, aemp__port_t *p)
{
    struct aemp_mon *m;
    while ((m = p->mons)) {
        mon_unlink(m);
        mon_drop(m);
    }
}

void aemp__drop_fire(aemp_node_t *n, aemp__item_t *it)
{
    mon_drop(it->u.mon);
}

static void nodes_unlink(struct aemp_mon *m);

void aemp_mon_cancel(aemp_mon_t *m)
{
    if (!m)
        return;
    if (m->kind == AEMP__MON_NODES && m->state == AEMP__MON_ARMED) {
        nodes_unlink(m);
        mon_free(m);
        return;
    }
    if (m->kind == AEMP__MON_HOOK) {
        if (m->state == AEMP__MON_ARMED)
            m->u.hook.cancel(m->u.hook.ptr);
        mon_free(m);
        return;
    }
    aemp__port_t *p = m->port;
    switch (m->state) {
    case AEMP__MON_ARMED:
        mon_unlink(m);
        if (p->remote && !p->mons && !p->dead)
            m->node->net_ops->stub_idle(m->node, p); /* last monitor */
        /* fall through */
    case AEMP__MON_QUEUED:
        if (m->kind == AEMP__MON_GUARD)
            m->u.guard.release(m->u.guard.resource);
        if (m->state == AEMP__MON_QUEUED) {
            m->state = AEMP__MON_CANCELLED; /* its queue item frees it */
            m->held = 0;
            return;
        }
        break;
    case AEMP__MON_CANCELLED:
        return; /* cancelled twice: the queue item still owns it */
    default:
        break;
    }
    mon_free(m);
}

/* ---- setting monitors up ------------------------------------------------ */

static int fire_soon(aemp_node_t *n, struct aemp_mon *m, const char *port)
{
    aemp__item_t *it = aemp__item_new(n, AEMP__FIRE);
    if (!it)
        return AEMP_ENOMEM;
    it->id = aemp__strdup(port);
    int rc = it->id ? aemp_msg_new(&it->msg, "sss", "no_such_port",
                                   "cannot monitor nonexistent port", port)
                    : AEMP_ENOMEM;
    if (rc < 0) {
        aemp__free(it->id);
        aemp__free(it); /* never queued */
        return rc;
    }
    m->state = AEMP__MON_QUEUED;
    it->u.mon = m;
    aemp__enqueue(n, it);
    return 0;
}

/* Arms m on port; m is freed on failure. */
static int mon_setup(aemp_node_t *n, const char *port, struct aemp_mon *m,
                     aemp_mon_t **guard)
{
    uint64_t counter;
    int rc = aemp__port_locate(n, port, &counter);
    if (rc < 0)
        goto fail;
    m->node = n;
    m->held = guard != NULL;
    m->state = AEMP__MON_ARMED;
    m->seq = n->next_mon_seq++;
    if (rc == 0) {
        rc = n->net_ops ? n->net_ops->monitor(n, port, m) : AEMP_ENOROUTE;
        if (rc < 0)
            goto fail;
    } else {
        aemp__port_t *p = counter ? aemp__port_get(n, counter) : n->node_port;
        if (p)
            aemp__mon_link(p, m);
        else if ((rc = fire_soon(n, m, port)) < 0)
            goto fail;
    }
    if (guard)
        *guard = m;
    return 0;
fail:
    mon_free(m);
    return rc;
}

static struct aemp_mon *mon_new(uint8_t kind)
{
    struct aemp_mon *m = aemp__calloc(1, sizeof *m);
    if (m)
        m->kind = kind;
    return m;
}

int aemp_mon_cb(aemp_node_t *n, const char *port, aemp_mon_fn cb, void *user,
                aemp_mon_t **guard)
{
    if (!n || !cb)
        return AEMP_EINVAL;
    struct aemp_mon *m = mon_new(AEMP__MON_CB);
    if (!m)
        return AEMP_ENOMEM;
    m->u.cb.fn = cb;
    m->u.cb.user = user;
    return mon_setup(n, port, m, guard);
}

int aemp_mon_kill(aemp_node_t *n, const char *port, const char *other,
                  aemp_mon_t **guard)
{
    if (!n)
        return AEMP_EINVAL;
    if (!other && !n->cur)
        return AEMP_ENOCTX;
    struct aemp_mon *m = mon_new(AEMP__MON_KILL);
    if (!m)
        return AEMP_ENOMEM;
    m->u.kill.other = aemp__strdup(other ? other : n->cur->port->id);
    if (!m->u.kill.other) {
        mon_free(m);
        return AEMP_ENOMEM;
    }
    return mon_setup(n, port, m, guard);
}

int aemp_mon_msg(aemp_node_t *n, const char *port, const char *rcvport,
                 aemp_mon_t **guard, const char *picture, ...)
{
    if (!n || !rcvport)
        return AEMP_EINVAL;
    struct aemp_mon *m = mon_new(AEMP__MON_MSG);
    if (!m)
        return AEMP_ENOMEM;
    va_list ap;
    va_start(ap, picture);
    int rc = aemp__msg_vnew(&m->u.msg.head, picture, ap);
    va_end(ap);
    if (rc == 0 && !(m->u.msg.rcvport = aemp__strdup(rcvport)))
        rc = AEMP_ENOMEM;
    if (rc < 0) {
        mon_free(m);
        return rc;
    }
    return mon_setup(n, port, m, guard);
}

int aemp_mon_guard(aemp_node_t *n, const char *port,
                   void (*release)(void *resource), void *resource,
                   aemp_mon_t **guard)
{
    if (!n || !release)
        return AEMP_EINVAL;
    struct aemp_mon *m = mon_new(AEMP__MON_GUARD);
    if (!m)
        return AEMP_ENOMEM;
    m->u.guard.release = release;
    m->u.guard.resource = resource;
    return mon_setup(n, port, m, guard);
}

/* ---- remote ports --------------------------------------------------------- */

void aemp__stub_kill(aemp_node_t *n, aemp__port_t *stub, aemp_msg_t *reason)
{
    aemp__item_t *it = aemp__item_new(n, AEMP__DIED);
    if (!it) {
        /* cannot defer: fire nothing, but never leak the stub */
        aemp__port_drop_mons(n, stub);
        aemp__free(stub);
        aemp_msg_unref(reason);
        return;
    }
    stub->dead = 1;
    it->u.port = stub;
    it->msg = reason;
    aemp__enqueue(n, it);
}

int aemp__watch_local(aemp_node_t *n, const char *peer, const char *name,
                      struct aemp_mon **out)
{
    struct aemp_mon *m = mon_new(AEMP__MON_WATCH);
    if (!m)
        return AEMP_ENOMEM;
    m->u.watch.peer = aemp__strdup(peer);
    m->u.watch.name = aemp__strdup(name);
    char *id = aemp__asprintf("%s#%s", n->noderef, name);
    int rc = m->u.watch.peer && m->u.watch.name && id ? 0 : AEMP_ENOMEM;
    if (rc < 0)
        mon_free(m);
    else if ((rc = mon_setup(n, *name ? id : n->noderef, m, NULL)) == 0)
        *out = m;
    aemp__free(id);
    return rc;
}

/* ---- upper layers' guards -------------------------------------------------- */

int aemp__mon_hook(aemp_node_t *n, void (*cancel)(void *), void *ptr,
                   aemp_mon_t **guard)
{
    struct aemp_mon *m = mon_new(AEMP__MON_HOOK);
    if (!m)
        return AEMP_ENOMEM;
    m->node = n;
    m->state = AEMP__MON_ARMED;
    m->held = 1;
    m->u.hook.cancel = cancel;
    m->u.hook.ptr = ptr;
    *guard = m;
    return 0;
}

void aemp__mon_hook_drop(aemp_mon_t *m)
{
    m->state = AEMP__MON_ORPHAN;
    m->node = NULL;
}

/* ---- node events ------------------------------------------------------------ */

static void nodes_unlink(struct aemp_mon *m)
{
    aemp_node_t *n = m->node;
    if (m->prev)
        m->prev->next = m->next;
    else
        n->node_mons = m->next;
    if (m->next)
        m->next->prev = m->prev;
}

int aemp_mon_nodes(aemp_node_t *n, aemp_node_fn fn, void *user,
                   aemp_mon_t **guard)
{
    if (!n || !fn)
        return AEMP_EINVAL;
    struct aemp_mon *m = mon_new(AEMP__MON_NODES);
    if (!m)
        return AEMP_ENOMEM;
    m->node = n;
    m->state = AEMP__MON_ARMED;
    m->held = guard != NULL;
    m->u.nodes.fn = fn;
    m->u.nodes.user = user;
    m->next = n->node_mons;
    if (m->next)
        m->next->prev = m;
    n->node_mons = m;
    if (guard)
        *guard = m;
    return 0;
}

void aemp__process_node_event(aemp_node_t *n, aemp__item_t *it)
{
    aemp__nodes_notify(n, it->id, it->counter, it->msg);
    aemp_msg_unref(it->msg);
    aemp__free(it->id);
}

void aemp__nodes_notify(aemp_node_t *n, const char *id, bool up,
                        const aemp_msg_t *reason)
{
    /* a subscriber may cancel any subscriber from its callback: walk a
     * snapshot of the list */
    size_t count = 0;
    for (struct aemp_mon *m = n->node_mons; m; m = m->next)
        count++;
    struct aemp_mon **snap = count ? aemp__calloc(count, sizeof *snap) : NULL;
    size_t k = 0;
    for (struct aemp_mon *m = snap ? n->node_mons : NULL; m; m = m->next)
        snap[k++] = m;
    for (size_t i = 0; i < k; i++) {
        struct aemp_mon *m;
        for (m = n->node_mons; m && m != snap[i]; m = m->next)
            ; /* still subscribed? */
        if (m)
            m->u.nodes.fn(n, id, up, reason, m->u.nodes.user);
    }
    aemp__free(snap);
}

void aemp__nodes_drop(aemp_node_t *n)
{
    struct aemp_mon *m;
    while ((m = n->node_mons)) {
        nodes_unlink(m);
        m->prev = m->next = NULL;
        if (m->held) {
            m->state = AEMP__MON_ORPHAN;
            m->node = NULL;
        } else {
            mon_free(m);
        }
    }
}
