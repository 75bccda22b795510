/* Links between nodes: the node table (peers), links (TCP + handshake +
 * framing), and the glue to the kernel.  Loop thread only. */
#ifndef AEMP_NET_H
#define AEMP_NET_H

#include "codec.h"
#include "handshake.h"
#include "kernel.h"
#include "link.h"
#include "strmap.h"

typedef struct aemp__link aemp__link_t;
typedef struct aemp__peer aemp__peer_t;

/* A packet waiting for a link. */
typedef struct aemp__qpkt {
    struct aemp__qpkt *next;
    aemp_msg_t *msg;
    size_t namelen;
    char name[]; /* destination port name (after the '#') */
} aemp__qpkt_t;

typedef struct aemp__flushw {
    struct aemp__flushw *next;
    uint64_t upto; /* done when the link's written bytes reach this;
                      UINT64_MAX until the peer's link is ready */
    aemp_flush_fn fn;
    void *user;
} aemp__flushw_t;

/* A node we know of. */
struct aemp__peer {
    char *id;
    size_t idlen;
    aemp_node_t *node;
    aemp__link_t *link;    /* the established link, or NULL */
    aemp__link_t *dialing; /* our outgoing attempt, or NULL */
    int handshaking;       /* links in handshake that named this peer */
    bool up;      /* the link is ready and users were told (node-up) */
    bool in_loss; /* lost, and the loss step (the `loss` item) has yet to
                     fire its monitors: until then the node is unreachable
                     — sends are dropped, a link that comes up waits */
    bool seed, connectable, free_pending;
    uint8_t dialect; /* enum aemp__dialect, from its last greeting */
    bool master_candidate; /* a slave's seed, until one becomes master */
    bool gseed; /* a seed of initialisation: a candidate master of the
                   global service (which may stop dialling it) */
    aemp__peer_t *via;     /* reached through this peer's relay, or NULL */
    /* Dialled by an address, the node there has another ID (Perl's IDs
     * are free text; seeds are addresses): this record stands for that
     * node's from then on, and both are kept while the network lives (one
     * per address that was dialled).  `aliased` counts the records that
     * stand for this one; `addrs` is where to dial it when its ID is no
     * address (NULL: the ID is). */
    aemp__peer_t *alias;
    unsigned aliased;
    char *addrs;
    /* The ID is an unresolved noderef ("localhost:4041", "4041"): its
     * addrs come from the node's resolver, asked when it is first dialled
     * (resolving: the answer is awaited; the record is not forgotten). */
    bool needs_resolve, resolving;
    unsigned refusals; /* endpoints in a row that refused the connection */
    aemp__qpkt_t *qhead, **qtail;
    size_t qbytes;
    aemp__flushw_t *flushers;
    aemp__item_t loss;    /* the loss step, queued while in_loss */
    uv_timer_t timer;     /* reconnect wait and monitor-timeout check */
    uint64_t wait_since;  /* loop time when waiting for a link began; 0 */
    uint64_t next_dial;   /* loop time of the next connect attempt */
    unsigned next_ep;     /* endpoint to try next */
    char last_error[160]; /* why the last attempt failed */
    aemp__strmap_t stubs;    /* port name -> remote port stub we monitor */
    aemp__strmap_t watchers; /* port name -> monitor this peer set on us */
};

/* Reasons a link stops reading. */
enum {
    AEMP__HOLD_QUEUE = 1, /* the node's queue is above its bound */
    AEMP__HOLD_LOSS = 2,  /* came up while its peer's loss is reported */
};

enum aemp__link_state { AEMP__LINK_CONNECTING, AEMP__LINK_HANDSHAKE,
                        AEMP__LINK_UP, AEMP__LINK_CLOSED };

typedef struct aemp__net {
    aemp_node_t *node;
    aemp_netconf_t conf; /* strings owned below */
    char *secret, *framings, *auth_accept, *auth_offer, *cert, *ca;
    aemp__tls_conf_t *tls; /* from cert and ca; NULL: no TLS */
    aemp__hs_conf_t hs;
    aemp__strmap_t peers;
    aemp__link_t *links;
    aemp__link_t *dirty;
    uv_prepare_t flush_prep;
    uv_tcp_t **listeners; /* each freed by its close callback */
    size_t nlisteners;
    int flush_checks;      /* peers with flush waiters to check */
    int queue_holds;       /* links held by AEMP__HOLD_QUEUE */
    int free_pending;      /* peers to forget (aemp__peers_sweep) */
    bool public_, active;
    /* initialisation's hook: a link to p is ready (aemp_initialise waits
     * for a slave's master this way) */
    void (*on_link_ready)(aemp_node_t *n, aemp__peer_t *p, void *user);
    void *on_link_ready_user;
    aemp__peer_t *master; /* a slave's master */
    /* the global service's address lookup for a node whose ID is no
     * address: true while an answer is awaited (it then sets the peer's
     * addrs and calls aemp__peer_need, or fails the dial); it may also set
     * them at once and return false */
    bool (*find_addr)(aemp_node_t *n, aemp__peer_t *p);
} aemp__net_t;

/* net.c */
/* The node takes a new name (aemp__node_rename) and greets with it. */
int aemp__net_rename(aemp_node_t *n, const char *noderef);
/* Splits a port ID into the peer (created if new) and port name. */
int aemp__net_route(aemp_node_t *n, const char *port, aemp__peer_t **peer,
                    const char **name);
/* Makes sure the flush step runs at the end of this loop iteration. */
void aemp__net_wake(aemp_node_t *n);
/* The node's queue is above its bound: links stop reading. */
bool aemp__net_queue_full(const aemp_node_t *n);
/* Runs the initialisation hook (net->on_link_ready) for p. */
void aemp__net_link_ready(aemp_node_t *n, aemp__peer_t *p);
/* Parses "a.b.c.d:port" or "[v6]:port" into addr. */
int aemp__endpoint_parse(const char *ep, size_t len,
                         struct sockaddr_storage *addr);

/* peer.c */
aemp__peer_t *aemp__peer_get(aemp_node_t *n, const char *id, size_t len,
                             bool create);
/* The peer of a node ID from the public API (NULL n, net or ID: NULL). */
aemp__peer_t *aemp__peer_find(aemp_node_t *n, const char *node_id);
int aemp__peer_send(aemp__peer_t *p, const char *name, size_t namelen,
                    const aemp_msg_t *m);
/* A node-port request ["<req>", pic...] to p. */
int aemp__peer_request(aemp__peer_t *p, const char *pic, ...);
void aemp__peer_need(aemp__peer_t *p); /* start connecting if idle */
void aemp__peer_link_up(aemp__peer_t *p, aemp__link_t *l);
/* The established link failed: the no-holes teardown. */
void aemp__peer_lost(aemp__peer_t *p, const char *why);
/* A dial failed or a handshake did not complete.  definitive: the peer
 * refused us (authentication, versions, certificates) or its endpoint
 * refused the connection — no point in waiting for monitor_timeout. */
void aemp__peer_dial_failed(aemp__peer_t *p, const char *why, bool definitive);
/* Bytes of the peer's ready link reached the socket: flushes may be done. */
void aemp__peer_written(aemp__peer_t *p);
/* The peer's loss step (an AEMP__NET_ITEM): fires the lost node's
 * monitors, node-down, failed flushes. */
void aemp__peer_loss_step(aemp_node_t *n, aemp__item_t *it);
/* Appends the node IDs we know (up_only: with a ready link). */
aemp_val_t *aemp__peer_ids(aemp_node_t *n, aemp_val_t *arr, bool up_only);
void aemp__peer_free(aemp__peer_t *p);
void aemp__peers_check_flushers(aemp_node_t *n);
/* Frees the peers marked free_pending that are still idle. */
void aemp__peers_sweep(aemp_node_t *n);
/* Forget p soon unless it is in use by then (aemp__peers_sweep). */
void aemp__peer_forget(aemp__peer_t *p);
/* d, dialled by its ID's addresses, turned out to be node p: d's queue,
 * flush waiters, monitors and seed role go to p, which can be dialled at
 * d's addresses, and whatever is sent to d's ID reaches p. */
void aemp__peer_alias(aemp__peer_t *d, aemp__peer_t *p);
/* true if id (len bytes) is a list of resolved endpoints ("ip:port,...")
 * — what a node ID of ours is, and what can be dialled. */
bool aemp__id_is_address(const char *id, size_t len);
/* The node part of a port ID: 0 if usable (an address, a noderef to
 * resolve — it has ':' or ',', or is a port number or an IP — or a
 * free-text node ID), AEMP_EINVAL if it is meant as a noderef and is
 * malformed (a port out of range, an empty host, junk). */
int aemp__id_check(const char *id, size_t len);

/* remote.c: remote monitors and kil (the kernel's network operations) */
int aemp__remote_monitor(aemp_node_t *n, const char *port, struct aemp_mon *m);
void aemp__remote_stub_idle(aemp_node_t *n, aemp__port_t *stub);
void aemp__remote_watch_fired(aemp_node_t *n, struct aemp_mon *m,
                              const aemp_msg_t *reason);
int aemp__remote_kill(aemp_node_t *n, const char *port,
                      const aemp_msg_t *reason);
/* The link to p is lost: every monitor of its ports fires with reason. */
void aemp__remote_lost(aemp__peer_t *p, const aemp_msg_t *reason);
/* Forgets the monitors p set on our ports. */
void aemp__remote_forget_watchers(aemp__peer_t *p);
/* Node free: p's stubs and watchers go without firing. */
void aemp__remote_free(aemp__peer_t *p);
/* d's stubs become p's (aemp__peer_alias): the monitors on them stay
 * armed, now on "<p's ID>#<name>". */
void aemp__remote_move_stubs(aemp__peer_t *d, aemp__peer_t *p);
/* The network's node-port requests: mon1, mon0, kil0, iam. */
extern const aemp__request_t aemp__net_requests[];

/* slave.c */
int aemp__slave_candidate(aemp_node_t *n, const char *noderef);
int aemp__slave_attach(aemp_node_t *n, aemp__peer_t *master);
/* The peer p's packets are relayed through, if any (slaves, and nodes
 * named "slave/...@<master>"). */
aemp__peer_t *aemp__route_via(aemp_node_t *n, aemp__peer_t *p);
int aemp__relay(aemp__peer_t *p, const char *name, size_t namelen,
                const aemp_msg_t *m);
void aemp__peer_iam(aemp__peer_t *p, const char *id);
/* A port ID names "slave/<id>@<us>" before the linked slave "slave/<id>"
 * told us (iam) it took that name: rename it now.  NULL if no such slave. */
aemp__peer_t *aemp__slave_early(aemp_node_t *n, const char *id, size_t len);

/* link.c: link.h */

#endif
