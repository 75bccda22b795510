/* Remote monitoring and killing (PROTOCOL.md §7): the stubs that stand for
 * remote ports we monitor (mon1 when the first monitor is set up, mon0
 * when the last one goes, kil0 when the port dies), the monitors peers set
 * on our ports (watchers), and remote kil.  The kernel reaches this file
 * through its network operations; peers through the node-port requests
 * mon1, mon0 and kil0 below. */
#include "net.h"

#include <stdlib.h>
#include <string.h>

/* ---- our monitors of remote ports ---------------------------------------- */

int aemp__remote_monitor(aemp_node_t *n, const char *port, struct aemp_mon *m)
{
    aemp__peer_t *p;
    const char *name;
    int rc = aemp__net_route(n, port, &p, &name);
    if (rc < 0)
        return rc;
    size_t namelen = strlen(name);
    if (p->via && !p->link)
        return AEMP_ENOROUTE; /* kil0 cannot find its way back through a
                                 relay: refuse rather than never fire */
    aemp__port_t *stub = aemp__strmap_get(&p->stubs, name, namelen);
    if (!stub) {
        char *id = aemp__asprintf("%s#%s", p->id, name);
        stub = id ? aemp__stub_new(id, strlen(id)) : NULL;
        aemp__free(id);
        if (!stub)
            return AEMP_ENOMEM;
        rc = aemp__strmap_put(&p->stubs, stub->id + p->idlen + 1, namelen,
                              stub);
        /* a node port is watched through the link alone: it dies with it
         * (as Perl, which never sends mon1 for it); a link is needed */
        if (rc == 0 && !namelen)
            aemp__peer_need(p);
        else if (rc == 0 &&
                 (rc = aemp__peer_request(p, "ss", "mon1", name)) < 0)
            aemp__strmap_del(&p->stubs, name, namelen);
        if (rc < 0) {
            aemp__free(stub);
            return rc;
        }
    }
    aemp__mon_link(stub, m);
    return 0;
}

void aemp__remote_stub_idle(aemp_node_t *n, aemp__port_t *stub)
{
    const char *hash = strchr(stub->id, '#');
    aemp__peer_t *p = aemp__peer_get(n, stub->id, (size_t)(hash - stub->id),
                                     false);
    if (p) {
        aemp__strmap_del(&p->stubs, hash + 1, strlen(hash + 1));
        if (hash[1]) /* no mon1 was sent for the node port */
            aemp__peer_request(p, "ss", "mon0", hash + 1);
    }
    aemp__free(stub);
}

/* Takes one of the peer's port stubs out of its table (NULL: none left). */
static aemp__port_t *pop_stub(aemp__peer_t *p)
{
    size_t i = 0;
    aemp__port_t *stub = aemp__strmap_next(&p->stubs, &i);
    if (stub) /* the stub's ID is "<node ID>#<name>": keyed by name */
        aemp__strmap_del(&p->stubs, stub->id + p->idlen + 1,
                         stub->idlen - p->idlen - 1);
    return stub;
}

void aemp__remote_move_stubs(aemp__peer_t *d, aemp__peer_t *p)
{
    aemp__port_t *old;
    while ((old = pop_stub(d))) {
        const char *name = old->id + d->idlen + 1;
        size_t namelen = strlen(name);
        aemp__port_t *stub = aemp__strmap_get(&p->stubs, name, namelen);
        if (!stub) {
            char *id = aemp__asprintf("%s#%s", p->id, name);
            stub = id ? aemp__stub_new(id, strlen(id)) : NULL;
            aemp__free(id);
            if (stub && aemp__strmap_put(&p->stubs, stub->id + p->idlen + 1,
                                         namelen, stub) < 0) {
                aemp__free(stub);
                stub = NULL;
            }
        }
        if (!stub) { /* no memory: these monitors cannot follow */
            aemp__stub_kill(d->node, old, NULL);
            continue;
        }
        struct aemp_mon *m, *next;
        for (m = old->mons; m; m = next) {
            next = m->next;
            aemp__mon_link(stub, m);
        }
        aemp__free(old);
    }
}

void aemp__remote_lost(aemp__peer_t *p, const aemp_msg_t *reason)
{
    aemp_node_t *n = p->node;
    size_t count = p->stubs.n;
    aemp__port_t **stubs = count ? aemp__calloc(count, sizeof *stubs) : NULL;
    if (stubs) {
        for (size_t i = 0; i < count; i++)
            stubs[i] = pop_stub(p);
        aemp__stubs_fire(n, stubs, count, reason);
        aemp__free(stubs);
    } else {
        aemp__port_t *stub; /* no memory: one port at a time */
        while (count-- && (stub = pop_stub(p)))
            aemp__stubs_fire(n, &stub, 1, reason);
    }
}

/* The peer of a peer-only request ["<req>", <name>, ...] from `from`, and
 * the name; NULL (logged) if malformed. */
static aemp__peer_t *requester(aemp_node_t *n, const aemp_msg_t *req,
                               const char *from, const char **name)
{
    aemp__peer_t *p = aemp__peer_get(n, from, strlen(from), false);
    if (!p || aemp_val_str(aemp_msg_at(req, 1), name, NULL) < 0) {
        const char *what = "?";
        aemp_val_str(aemp_msg_at(req, 0), &what, NULL);
        aemp__log(n, AEMP_LOG_WARN, "node port: malformed %s from %s", what,
                  from);
        return NULL;
    }
    return p;
}

/* kil0 from the peer: its port died, with the reason that follows. */
static void req_kil0(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    const char *name;
    aemp__peer_t *p = requester(n, req, from, &name);
    aemp_msg_t *reason;
    if (!p)
        return;
    aemp__port_t *stub = aemp__strmap_del(&p->stubs, name, strlen(name));
    if (!stub)
        return;
    if (aemp__msg_slice(&reason, req, 2) < 0)
        reason = NULL;
    aemp__stub_kill(p->node, stub, reason);
}

/* ---- peers' monitors of our ports ------------------------------------------ */

static void req_mon1(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    const char *name;
    aemp__peer_t *p = requester(n, req, from, &name);
    struct aemp_mon *m;
    if (!p || aemp__strmap_get(&p->watchers, name, strlen(name)))
        return; /* already watched for that peer */
    if (aemp__watch_local(p->node, p->id, name, &m) < 0)
        return;
    if (aemp__strmap_put(&p->watchers, m->u.watch.name, strlen(name), m) < 0)
        aemp_mon_cancel(m);
}

static void req_mon0(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    const char *name;
    aemp__peer_t *p = requester(n, req, from, &name);
    struct aemp_mon *m =
        p ? aemp__strmap_del(&p->watchers, name, strlen(name)) : NULL;
    if (m)
        aemp_mon_cancel(m);
}

/* Our port that a peer monitors died: ["", "kil0", name, reason...]. */
void aemp__remote_watch_fired(aemp_node_t *n, struct aemp_mon *m,
                              const aemp_msg_t *reason)
{
    aemp__peer_t *peer = aemp__peer_get(n, m->u.watch.peer,
                                        strlen(m->u.watch.peer), false);
    if (!peer)
        return;
    aemp__strmap_del(&peer->watchers, m->u.watch.name,
                     strlen(m->u.watch.name));
    aemp_msg_t *head, *req;
    if (aemp_msg_new(&head, "ss", "kil0", m->u.watch.name) < 0)
        return;
    if (aemp__msg_concat(&req, head, reason) == 0) {
        aemp__peer_send(peer, "", 0, req);
        aemp_msg_unref(req);
    }
    aemp_msg_unref(head);
}

void aemp__remote_forget_watchers(aemp__peer_t *p)
{
    size_t i;
    struct aemp_mon *m;
    while ((i = 0, m = aemp__strmap_next(&p->watchers, &i))) {
        aemp__strmap_del(&p->watchers, m->u.watch.name,
                         strlen(m->u.watch.name));
        aemp_mon_cancel(m);
    }
}

/* ---- remote kil -------------------------------------------------------------- */

/* ["", "kil", name, reason...] to the port's node. */
int aemp__remote_kill(aemp_node_t *n, const char *port,
                      const aemp_msg_t *reason)
{
    aemp__peer_t *peer;
    const char *name;
    aemp_msg_t *head, *req;
    int rc = aemp__net_route(n, port, &peer, &name);
    if (rc < 0 || (rc = aemp_msg_new(&head, "ss", "kil", name)) < 0)
        return rc;
    rc = aemp__msg_concat(&req, head, reason);
    aemp_msg_unref(head);
    if (rc == 0) {
        rc = aemp__peer_send(peer, "", 0, req);
        aemp_msg_unref(req);
    }
    return rc;
}

/* ---- the peer's node-port requests ------------------------------------------ */

static void req_iam(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    const char *name;
    aemp__peer_t *p = requester(n, req, from, &name);
    if (p)
        aemp__peer_iam(p, name); /* slave.c */
}

const aemp__request_t aemp__net_requests[] = {
    {"mon1", req_mon1, true, true},
    {"mon0", req_mon0, true, true},
    {"kil0", req_kil0, true, false},
    {"iam", req_iam, true, false},
    {NULL, NULL, false, false},
};

/* ---- teardown (node free): nothing fires ------------------------------------ */

void aemp__remote_free(aemp__peer_t *p)
{
    aemp__port_t *stub;
    while ((stub = pop_stub(p))) {
        aemp__port_drop_mons(p->node, stub);
        aemp__free(stub);
    }
    aemp__strmap_free(&p->stubs);
    aemp__remote_forget_watchers(p);
    aemp__strmap_free(&p->watchers);
}
