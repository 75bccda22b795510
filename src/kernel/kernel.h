/* The node's local kernel: ports, the dispatch queue, monitors, timers.
 * Everything here runs on the node's loop thread. */
#ifndef AEMP_KERNEL_H
#define AEMP_KERNEL_H

#include "strmap.h"
#include "value.h"

#include <uv.h>

/* Port names generated here are "<cookie>.<counter>"; the cookie is random
 * per node instance, so IDs are never reused. */
#define AEMP__COOKIE_LEN 10

struct aemp__tag {
    char *tag;
    size_t len;
    aemp_rcv_fn cb;
    void *user;
};

/* Per-tag callbacks: a small array searched linearly (ports have a handful
 * of tags; a port with none pays one NULL pointer). */
struct aemp__tags {
    size_t n, cap;
    struct aemp__tag t[];
};

/* A local port.  Kept small: 100,000 idle ports must fit in 128 bytes each
 * including the table slot. */
typedef struct aemp__port {
    uint64_t counter; /* 0 for the node port */
    aemp_rcv_fn cb;
    void *user;
    struct aemp__tags *tags;
    struct aemp_mon *mons; /* monitors of this port, in set-up order */
    uint32_t idlen;
    uint8_t dead;
    uint8_t remote; /* a stub standing for a monitored remote port */
    uint8_t named;  /* a name a spawner chose (in n->named), not ours */
    char id[]; /* "<noderef>#<name>", NUL-terminated */
} aemp__port_t;

/* Work for the loop, in one FIFO so that messages and death notices keep
 * the order in which they were caused. */
enum aemp__item_kind {
    AEMP__DELIVER, /* msg to local port `counter` (0 = node port) */
    AEMP__DIED,    /* port died: fire its monitors with reason, free it */
    AEMP__FIRE,    /* fire one monitor (no_such_port) with reason */
    AEMP__NODE_EVENT, /* node id up (counter 1) or down, for mon_nodes */
    AEMP__SPAWN,      /* run init function `id` with args msg in the new
                         port `counter` (spawn.c) */
    AEMP__NET_ITEM,   /* the network layer's own step (its ops->run_item;
                         the item is its, never freed here) */
};

typedef struct aemp__item {
    struct aemp__item *next;
    uint8_t kind;
    uint8_t skip; /* DELIVER: the message starts with the port name */
    uint32_t bytes; /* DELIVER from a link: counted in n->qbytes */
    uint64_t counter;
    aemp_msg_t *msg;
    char *id; /* FIRE: the monitored port's ID; DELIVER to the node port:
                 the sending node; NODE_EVENT: the node */
    union {
        aemp__port_t *port;
        struct aemp_mon *mon;
        void *ptr;
    } u;
} aemp__item_t;

enum aemp__mon_kind {
    AEMP__MON_CB,
    AEMP__MON_KILL,
    AEMP__MON_MSG,
    AEMP__MON_GUARD,
    AEMP__MON_WATCH, /* a peer's mon1 on our port: tell it with kil0 */
    AEMP__MON_NODES, /* mon_nodes subscriber (not one-shot) */
    AEMP__MON_HOOK,  /* a guard of an upper layer's (db_mon): cancelling
                        calls its cancel function (not tied to a port) */
};
enum aemp__mon_state {
    AEMP__MON_ARMED,     /* linked into its port's list */
    AEMP__MON_QUEUED,    /* an AEMP__FIRE item will fire it */
    AEMP__MON_FIRED,     /* done; memory kept for its guard holder */
    AEMP__MON_CANCELLED, /* queued, then cancelled: the item frees it */
    AEMP__MON_ORPHAN,    /* node freed while the guard was held */
};

struct aemp_mon {
    struct aemp_mon *next, *prev;
    aemp_node_t *node;
    aemp__port_t *port; /* while ARMED */
    uint8_t kind, state, held;
    uint64_t seq; /* set-up order across ports: a lost link fires its
                     node's monitors in this order */
    union {
        struct { aemp_mon_fn fn; void *user; } cb;
        struct { char *other; } kill;
        struct { char *rcvport; aemp_msg_t *head; } msg;
        struct { void (*release)(void *); void *resource; } guard;
        struct { char *peer; char *name; } watch;
        struct { aemp_node_fn fn; void *user; } nodes;
        struct { void (*cancel)(void *); void *ptr; } hook;
    } u;
};

struct aemp__timer;
struct aemp__net;

/* What the kernel asks of the network layer, which installs this table
 * when the node gets a network configuration (the way nng's transports
 * plug in).  Until then remote port IDs give AEMP_ENOROUTE.  Port IDs and
 * messages are borrowed. */
typedef struct aemp__net_ops {
    int (*send)(aemp_node_t *n, const char *port, const aemp_msg_t *m);
    int (*kill)(aemp_node_t *n, const char *port, const aemp_msg_t *reason);
    /* Arms monitor m on remote port `port` (on a stub the network keeps);
     * m is not freed on failure. */
    int (*monitor)(aemp_node_t *n, const char *port, struct aemp_mon *m);
    /* The last monitor of a stub was cancelled: the network frees it. */
    void (*stub_idle)(aemp_node_t *n, aemp__port_t *stub);
    /* A port of ours a peer monitors (AEMP__MON_WATCH) died. */
    void (*watch_fired)(aemp_node_t *n, struct aemp_mon *m,
                        const aemp_msg_t *reason);
    /* Appends the IDs of the nodes we know (up_only: with a link). */
    aemp_val_t *(*nodes)(aemp_node_t *n, aemp_val_t *arr, bool up_only);
    void (*run_item)(aemp_node_t *n, aemp__item_t *it); /* AEMP__NET_ITEM */
    void (*queue_drained)(aemp_node_t *n); /* after each dispatch pass */
    void (*close)(aemp_node_t *n);         /* aemp_node_free */
} aemp__net_ops_t;

/* A node-port request (PROTOCOL.md §7): fn(node, request, from) with the
 * whole request message and the sending node's ID (NULL: a local sender). */
typedef void (*aemp__request_fn)(aemp_node_t *n, const aemp_msg_t *req,
                                 const char *from);
typedef struct aemp__request {
    const char *name;
    aemp__request_fn fn;
    bool peer_only; /* about the link to the sender: peers only */
    /* Handled as soon as a peer's packet is read, ahead of what waits in
     * the queue (it runs no user code): spawn creates its port before the
     * packets behind it are looked at, and mon1/mon0 attach to a port
     * before a death queued ahead of them is told, so that it is told to
     * them with its reason rather than as "no such port". */
    bool on_read;
} aemp__request_t;

#define AEMP__FREE_HOOKS 4

struct aemp_node {
    /* What every snd and delivery touches comes first, together (a layout
     * that spread these over more cache lines cost the local paths 9%). */
    uv_loop_t *loop;
    char *noderef;
    size_t noderef_len;
    char cookie[AEMP__COOKIE_LEN + 1];
    uint64_t next_counter;

    /* open addressing, linear probing, keyed by counter */
    aemp__port_t **slots;
    size_t nslots, nports;
    aemp__port_t *node_port;

    aemp__item_t *head, **tail;
    size_t qitems, qbytes; /* packets from links waiting in the queue: the
                              network stops reading above its bound */
    aemp__item_t *free_items;
    size_t nfree_items;
    aemp__blocks_t blocks; /* recycled message blocks */

    aemp_ctx_t *cur; /* innermost running port callback */
    int dispatching;  /* inside the queue runner */
    bool stopping;    /* aemp_stop: the runner yields at once */
    struct aemp__net *net; /* the network layer's, NULL until configured */
    const aemp__net_ops_t *net_ops;

    /* the rest */
    uv_loop_t own_loop;
    bool owns_loop;
    uv_idle_t idle; /* active while the queue is non-empty */
    int closing;    /* handles still to be closed before the free */
    bool freeing;
    char **old_names; /* names the node had before (listen, attach): its
                         ports made then keep them and stay ours */
    size_t nold;
    uint64_t next_mon_seq;
    aemp_log_fn log_fn;
    void *log_user;
    int log_level;
    struct aemp__timer *timers;
    const aemp__request_t *net_requests; /* its node-port requests, {NULL} */
    const aemp__request_t *global_requests; /* the global service's */
    struct aemp__global *global; /* the global service, NULL until used */
    void (*free_hooks[AEMP__FREE_HOOKS])(aemp_node_t *n); /* at node free */
    struct aemp__tags *handlers; /* node-port requests (aemp_node_handle) */
    struct aemp__tags *inits;    /* init functions (aemp_register) */
    struct aemp__modules *modules; /* loadable modules (modules.c) */
    aemp__strmap_t named;        /* spawned ports' names -> port */
    bool secure; /* peers may spawn registered functions only */
    bool initialised;
    struct aemp__dns *dns;       /* the resolver, made on first use */
    struct aemp_mon *node_mons;  /* mon_nodes subscribers */
    char *nodename, *dns_servers; /* from the configuration, or NULL */
};

struct aemp_ctx {
    aemp_node_t *node;
    aemp__port_t *port;
    char *die; /* set by aemp_die */
    aemp_ctx_t *outer;
};

/* port.c */
int aemp__tags_set(struct aemp__tags **tp, const char *tag, aemp_rcv_fn cb,
                   void *user);
const struct aemp__tag *aemp__tags_find(const struct aemp__tags *t,
                                        const char *tag, size_t len);
int aemp__ports_init(aemp_node_t *n);
void aemp__ports_free(aemp_node_t *n);
aemp__port_t *aemp__port_get(aemp_node_t *n, uint64_t counter);
void aemp__port_unlink(aemp_node_t *n, aemp__port_t *p);
/* Where a port ID points: 1 local (counter set; 0 = node port), 0 remote,
 * AEMP_EINVAL if malformed. */
int aemp__port_locate(aemp_node_t *n, const char *id, uint64_t *counter);
/* Finds a live local port by ID: AEMP_ENOPORT / AEMP_ENOTLOCAL. */
int aemp__port_find(aemp_node_t *n, const char *id, aemp__port_t **out);
/* The counter of our port named `name` (the part after '#'), UINT64_MAX if
 * it cannot be one of ours. */
uint64_t aemp__port_counter(const aemp_node_t *n, const char *name);
/* A new live port without callbacks: named `name` if not NULL (a name a
 * spawner chose: AEMP_EBUSY if taken or in our own form), else a name of
 * ours. */
int aemp__port_new(aemp_node_t *n, const char *name, aemp__port_t **out);
/* A stub for remote port ID `id`, not in any table. */
aemp__port_t *aemp__stub_new(const char *id, size_t len);
void aemp__tags_free(struct aemp__tags *t);

/* node.c */
aemp__item_t *aemp__item_new(aemp_node_t *n, uint8_t kind);
void aemp__enqueue(aemp_node_t *n, aemp__item_t *it);
/* Takes a queued item out of the queue without running it. */
void aemp__dequeue_item(aemp_node_t *n, aemp__item_t *it);
/* Runs cb in port context; kills the port with ["die", ...] on failure. */
void aemp__run_in(aemp_node_t *n, aemp__port_t *p, aemp_rcv_fn rcv,
                  aemp_task_fn task, const aemp_msg_t *m, void *user);
/* Delivery of a packet from peer `from` (the message starts with the port
 * name); a reference is taken. */
int aemp__deliver_packet(aemp_node_t *n, const char *from, const aemp_msg_t *m);
/* Queues a node event for the mon_nodes subscribers. */
int aemp__queue_node_event(aemp_node_t *n, const char *id, bool up,
                           aemp_msg_t *reason);
/* Sends m to any port ID (local or remote); m is borrowed. */
int aemp__send(aemp_node_t *n, const char *port, const aemp_msg_t *m);

/* One of the node's handles finished closing (n->closing counts them). */
void aemp__node_handle_closed(aemp_node_t *n);
/* uv_close on a handle of the node's (h->data must lead to the node for
 * cb); the node's free waits for it. */
void aemp__node_close(aemp_node_t *n, uv_handle_t *h, uv_close_cb cb);
/* fn(n) runs at aemp_node_free (once, however often added).  AEMP_ENOMEM
 * when all slots are taken. */
int aemp__node_at_free(aemp_node_t *n, void (*fn)(aemp_node_t *n));
/* The node takes a new name (going public); the old one stays ours. */
int aemp__node_rename(aemp_node_t *n, const char *noderef);

/* monitor.c */
/* Kills a live local port: unlinks it, queues its death notice. */
void aemp__port_kill(aemp_node_t *n, aemp__port_t *p, aemp_msg_t *reason);
/* A remote port stub died (kil0 or link loss): fire its monitors. */
void aemp__stub_kill(aemp_node_t *n, aemp__port_t *stub, aemp_msg_t *reason);
/* Sets up a monitor on our port `name` for peer `peer`. */
int aemp__watch_local(aemp_node_t *n, const char *peer, const char *name,
                      struct aemp_mon **out);
void aemp__process_node_event(aemp_node_t *n, aemp__item_t *it);
void aemp__nodes_drop(aemp_node_t *n);
void aemp__mon_link(aemp__port_t *p, struct aemp_mon *m);
void aemp__kill_die(aemp_node_t *n, aemp__port_t *p, const char *text);
void aemp__process_died(aemp_node_t *n, aemp__item_t *it);
void aemp__process_fire(aemp_node_t *n, aemp__item_t *it);
/* At node free: a queued AEMP__FIRE that will never run. */
void aemp__drop_fire(aemp_node_t *n, aemp__item_t *it);
/* At node free: releases guards, orphans held monitors. */
void aemp__port_drop_mons(aemp_node_t *n, aemp__port_t *p);
/* Fires every monitor of the remote port stubs (taken and freed) in the
 * order they were set up, with reason (borrowed; NULL under memory
 * exhaustion). */
void aemp__stubs_fire(aemp_node_t *n, aemp__port_t **stubs, size_t count,
                      const aemp_msg_t *reason);
/* Tells the mon_nodes subscribers that node id went up or down. */
void aemp__nodes_notify(aemp_node_t *n, const char *id, bool up,
                        const aemp_msg_t *reason);

/* A guard for an upper layer's subscription: aemp_mon_cancel(*guard)
 * calls cancel(ptr) (once) and frees it.  The owner drops it with
 * aemp__mon_hook_drop() when the subscription ends otherwise (node free):
 * the guard then only frees. */
int aemp__mon_hook(aemp_node_t *n, void (*cancel)(void *), void *ptr,
                   aemp_mon_t **guard);
void aemp__mon_hook_drop(aemp_mon_t *m);

/* timer.c */
void aemp__timers_close(aemp_node_t *n);

/* log.c */
void aemp__log(aemp_node_t *n, int level, const char *fmt, ...)
    AEMP_PRINTF(3, 4);

/* services.c: a port running init function `name` with args. */
int aemp__start(aemp_node_t *n, const char *name, const aemp_msg_t *args,
                const char **id);
/* Runs init function `name` with args in port p's context (now); an init
 * function that cannot be found (registered, or in a module unless
 * registered_only) kills p with ["die", "unable to resolve '<name>': ..."]. */
void aemp__run_init(aemp_node_t *n, aemp__port_t *p, const char *name,
                    const aemp_msg_t *args, bool registered_only);

/* modules.c: loads the module that may define init function `name` and
 * calls its aemp_module_init(n).  0: loaded (try the lookup again),
 * AEMP_ENOTFOUND: no module for it, else an error with why set. */
int aemp__module_load(aemp_node_t *n, const char *name, char *why,
                      size_t whylen);
void aemp__modules_free(aemp_node_t *n);

/* spawn.c: the AnyEvent::MP::_spawn request [req, name, init, args...]
 * from peer `from` (NULL: local): creates the port now, so that packets
 * behind the request find it, and queues its init. */
void aemp__spawn_request(aemp_node_t *n, const aemp_msg_t *req,
                         const char *from);
void aemp__process_spawn(aemp_node_t *n, aemp__item_t *it);

/* nodeport.c */
void aemp__nodeport_dispatch(aemp_node_t *n, const aemp_msg_t *m,
                             const char *from);
/* The kernel's or the network's request of that name (len bytes), or
 * NULL. */
const aemp__request_t *aemp__nodeport_find(const aemp_node_t *n,
                                           const char *name, size_t len);


#endif
