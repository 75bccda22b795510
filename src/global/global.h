/* The global service (AnyEvent::MP 2.x's design and g_* protocol): every
 * node's own database entries and its attachment to a master (attach.c),
 * the global node's merged database (store.c), port groups (groups.c),
 * and 1.30's Global rendezvous (perl130.c).  Loop thread only. */
#ifndef AEMP_GLOBAL_H
#define AEMP_GLOBAL_H

#include "dbmap.h"
#include "net.h"

/* The most entries a global node keeps for one node: a peer cannot grow
 * our memory without a bound (2^20 entries, some 100 MiB). */
#define AEMP__SHARD_MAX ((size_t)1 << 20)
/* ... and at most this many families one node monitors on us. */
#define AEMP__MONS_MAX ((size_t)1 << 16)

/* A request waiting for the master's answer (2.x's %GLOBAL_REQ): sent to
 * every new master until it is answered. */
typedef struct aemp__greq {
    struct aemp__greq *next, *prev;
    char *key;       /* "g_find <id>", "mon1 <family>", or a query ID */
    aemp_msg_t *msg; /* the request */
    aemp_db_fn fn;   /* queries: the callback ... */
    void *user;
    uint64_t deadline; /* ... and when it times out (loop ms) */
    uint8_t shape;     /* queries: what the result is cut down to */
} aemp__greq_t;

struct aemp__global;

/* view.c: a family as a monitoring node sees it — the map value its
 * db_mon callbacks get, and an index of its keys (a change is O(1)). */
typedef struct aemp__view {
    aemp_val_t *map;      /* key -> value, owned */
    aemp__strmap_t index; /* key (borrowed from map) -> its pair's i + 1 */
} aemp__view_t;
int aemp__view_init(aemp__view_t *v);
void aemp__view_free(aemp__view_t *v);
bool aemp__view_has(const aemp__view_t *v, const char *k, size_t klen);
/* Sets k to val (taken; NULL: AEMP_ENOMEM); *had: it was there. */
int aemp__view_set(aemp__view_t *v, const char *k, size_t klen, aemp_val_t *val,
                   bool *had);
bool aemp__view_del(aemp__view_t *v, const char *k, size_t klen);
aemp_val_t *aemp__view_keys(const aemp__view_t *v);

/* A subscriber of a family (db_mon / grp_mon). */
typedef struct aemp__gsub {
    struct aemp__gsub *next;
    struct aemp__gwatch *watch;
    aemp_db_mon_fn fn;
    aemp_grp_mon_fn gfn;
    void *user;
    aemp_mon_t *guard; /* the caller's, or NULL */
    bool snapshot_due; /* joined a primed family: gets it from the loop */
    bool snapshot_now; /* due when the snapshot callback began */
    bool called;       /* has had its snapshot */
    bool gone;         /* cancelled while callbacks run */
} aemp__gsub_t;

/* A family this node monitors (2.x's %LOCAL_MON / %MON_DB). */
typedef struct aemp__gwatch {
    aemp__gsub_t *subs;
    struct aemp__global *g;
    aemp__view_t view; /* the master's view of the family */
    bool primed;       /* the master's snapshot (g_chg1) arrived */
    int running;       /* callbacks on the stack: unlinking waits */
    size_t flen;
    char family[];
} aemp__gwatch_t;

/* On a global node: what one other node holds (2.x's %LOCAL_DBS{node}). */
typedef struct aemp__gshard {
    aemp__dbmap_t db;    /* its entries (owned values) */
    size_t count;        /* of entries, at most AEMP__SHARD_MAX */
    bool slave;          /* attached to us; else a global node's merge */
    aemp__strmap_t mons; /* families it monitors here (key only) */
    size_t idlen;
    char id[];
} aemp__gshard_t;

typedef struct aemp__global {
    aemp_node_t *node;
    bool started;        /* the service runs (initialised, or first use) */
    bool global;         /* this is a global node */
    char *master;        /* the master's node ID; ours when global; NULL */
    aemp__dbmap_t local; /* our own entries (owned values) */
    /* the master side of requests */
    aemp__greq_t *reqs, *reqs_tail;
    uint64_t next_query;
    uv_timer_t timer; /* the earliest query deadline */
    /* monitoring */
    aemp__strmap_t watches; /* family -> aemp__gwatch_t */
    /* the global node's side */
    aemp__strmap_t shards;  /* node ID -> aemp__gshard_t */
    aemp__dbmap_t merged;   /* every shard merged (values borrowed) */
    aemp__strmap_t gmon;    /* family -> aemp__strmap_t* of node IDs */
    aemp__strmap_t globals; /* node IDs that said g_global (char *) */
    aemp_mon_t *nodes_mon;  /* our node event subscription */
    aemp__gsub_t *gsub;     /* our own watch of 'g (global nodes) */
    uv_idle_t snapshots;    /* due snapshots for new subscribers */
    bool closing;
    int closed; /* handles closed at node free */
} aemp__global_t;

/* addrs.c: address lists.  The comma list s (len bytes) as an array of
 * strings; an array of endpoint strings as a comma list (malloc'd; NULL
 * unless it is a non-empty list of resolved endpoints); the endpoints we
 * listen on ([] if none). */
aemp_val_t *aemp__addrs_split(const char *s, size_t len);
char *aemp__addrs_join(const aemp_val_t *arr);
aemp_val_t *aemp__addrs_ours(aemp_node_t *n);

/* attach.c */
/* The node's global service, started if need be (NULL without a network:
 * AEMP_ENOROUTE for the caller). */
aemp__global_t *aemp__global_get(aemp_node_t *n);
/* Initialisation: start the service; global = configured global. */
int aemp__global_start(aemp_node_t *n, bool global);
/* A seed given to initialisation: a master candidate. */
void aemp__global_seed(aemp_node_t *n, const char *noderef);
/* Sends the request message to the master (ours or us), or keeps it under
 * key until there is one; key NULL: only if there is a master now. */
int aemp__global_request(aemp__global_t *g, const char *key, aemp_msg_t *m);
void aemp__global_request_done(aemp__global_t *g, const char *key);
/* Sends m (taken) to node id's node port (ours if id is ours). */
int aemp__global_snd(aemp__global_t *g, const char *id, aemp_msg_t *m);
bool aemp__global_is_self(const aemp__global_t *g, const char *id);
/* db_set / db_del of our own entries, also for the reserved families. */
int aemp__global_set(aemp__global_t *g, const char *f, const char *k,
                     aemp_val_t *v);
int aemp__global_del(aemp__global_t *g, const char *f, const char *k);
extern const aemp__request_t aemp__global_requests[];
/* grp_mon's subscription (groups.c). */
int aemp__global_watch_grp(aemp_node_t *n, const char *group,
                           aemp_grp_mon_fn fn, void *user, aemp_mon_t **guard);

/* The node is global: its own master. */
void aemp__global_attach_self(aemp__global_t *g);

/* store.c: the global node */
void aemp__store_become_global(aemp__global_t *g);
void aemp__store_node_up(aemp__global_t *g, const char *id);
void aemp__store_node_down(aemp__global_t *g, const char *id);
/* The nodes attached to us and the global nodes we know (arrays appended
 * to; NULL on failure). */
void aemp__store_lists(aemp__global_t *g, aemp_val_t **attached,
                       aemp_val_t **globals);
/* g_global from id on a global node. */
void aemp__store_hello(aemp__global_t *g, const char *id);
/* Addresses ('l) a global node knows for id, as "ip:port,..." (malloc'd),
 * or NULL. */
char *aemp__store_addrs(aemp__global_t *g, const char *id);
void aemp__store_free(aemp__global_t *g);
/* The global node's requests (the table's g_* entries). */
void aemp__g_slave(aemp_node_t *n, const aemp_msg_t *req, const char *from);
void aemp__g_set(aemp_node_t *n, const aemp_msg_t *req, const char *from);
void aemp__g_upd(aemp_node_t *n, const aemp_msg_t *req, const char *from);
void aemp__g_find(aemp_node_t *n, const aemp_msg_t *req, const char *from);
void aemp__g_query(aemp_node_t *n, const aemp_msg_t *req, const char *from);
void aemp__g_mon(aemp_node_t *n, const aemp_msg_t *req, const char *from);
void aemp__g_global(aemp_node_t *n, const aemp_msg_t *req, const char *from);

/* perl130.c: 1.30's AnyEvent::MP::Global::connect */
void aemp__perl130_node_up(aemp__global_t *g, aemp__peer_t *p);
int aemp__perl130_register(aemp_node_t *n);

#endif
