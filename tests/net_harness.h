/* The harness of the in-process network tests (net_harness.c). */
#ifndef AEMP_TEST_NET_HARNESS_H
#define AEMP_TEST_NET_HARNESS_H

#include "certs.h"
#include "helpers.h"

#include "net.h"

#define SECRET "net test secret"

typedef struct tnode {
    aemp_node_t *n;
    char ref[64]; /* its noderef */
    kt_rec_t log;
} tnode_t;

/* The configuration of the tests' nodes: the secret, short timeouts, and
 * with AEMP_TEST_TLS=1 in the environment also one shared certificate
 * (nt_tls_cert), so that the same tests run over TLS links. */
aemp_netconf_t conf_std(void);
/* The shared certificate under AEMP_TEST_TLS (made once), else NULL. */
const char *nt_tls_cert(void);

/* A node on loop with conf; public: listening on `ref` (NULL: a free port
 * of 127.0.0.1). */
void tnode_init(tnode_t *t, uv_loop_t *loop, const aemp_netconf_t *c,
                bool public_, const char *ref);

void tnode_pub(tnode_t *t, uv_loop_t *loop);

void tnode_free(tnode_t *t);

/* Starts loop with public node a (and b, unless NULL) on it, configured
 * with c (NULL: conf_std()). */
void nodes_start(uv_loop_t *loop, const aemp_netconf_t *c, tnode_t *a,
                 tnode_t *b);

/* Frees a, b and rec (those not NULL), then finishes the loop. */
void nodes_finish(uv_loop_t *loop, tnode_t *a, tnode_t *b, kt_rec_t *rec);

void dump_log(const tnode_t *t);

/* A new port's ID, copied: the library's copy dies with the port, and
 * tests look at ports after their death.  Not inlined: GCC 12 takes the
 * out-parameter for a dangling pointer. */
const char *mkport(aemp_node_t *n, aemp_rcv_fn cb, void *user);

/* The part of a port ID after '#'. */
const char *name_of(const char *port);

aemp__peer_t *peer_of(aemp_node_t *n, const char *id);

size_t watchers_of(aemp_node_t *n, const char *peer_id);

size_t links_up(aemp_node_t *n);

size_t links_all(aemp_node_t *n);

int link_fd(aemp_node_t *n, const char *peer_id);

typedef struct watch_cond {
    aemp_node_t *n;
    const char *peer;
    size_t want;
} watch_cond_t;

int watchers_are(void *arg);

/* Runs until n has exactly `want` monitors set by peer. */
void await_watchers(uv_loop_t *loop, aemp_node_t *n, const char *peer,
                    size_t want);

typedef struct rec_cond {
    const kt_rec_t *rec;
    const char *label;
    size_t want;
} rec_cond_t;

int rec_has(void *arg);

int await_rec(uv_loop_t *loop, const kt_rec_t *rec, const char *label,
              size_t want, double seconds);

typedef struct up_cond {
    aemp_node_t *n;
    const char *peer;
    int want;
} up_cond_t;

int is_up_as(void *arg);

int await_up(uv_loop_t *loop, aemp_node_t *n, const char *peer, int want,
             double seconds);

/* 1 if some element of m is the string s. */
int msg_has_str(const aemp_msg_t *m, const char *s);

/* Checks that m is ["transport_error", id, text] (any id if id is NULL);
 * returns the text. */
const char *transport_error(const aemp_msg_t *m, const char *id);

/* How many nodes n knows (aemp_known_nodes). */
size_t known_count(aemp_node_t *n);

/* A receiver of ["seq", i] messages that checks they come 0, 1, 2, ... */
typedef struct seqrx {
    int64_t next, count;
    int64_t bad_got, bad_want;
    int bad;
    int fired;          /* a monitor covering this stream fired */
    int64_t after_fire; /* deliveries after that */
    int marker;         /* other messages */
    aemp_msg_t *reason;
    /* cut the socket cut_fd when the cut_at-th message arrives */
    int64_t cut_at;
    int cut_fd, cut_done;
} seqrx_t;

int seq_rcv(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user);

void seq_fired(aemp_node_t *n, const char *port, const aemp_msg_t *reason,
               void *user);

void seqrx_check(const seqrx_t *r, const char *what);

/* Sends ["seq", i] from `from` to `to` in windows of `window` unacknowledged
 * messages (the receiver's count is the acknowledgement). */
typedef struct pump {
    aemp_node_t *from;
    const char *to;
    seqrx_t *rx;
    int64_t total, sent, window;
    int stop; /* set by the test: send no more */
    int err;
} pump_t;

void pump_fill(pump_t *p);

int pump_done(void *arg);

typedef struct raw {
    uv_loop_t *loop;
    int fd;
    uv_poll_t poll;
    bool polling, eof, closed;
    char *in;
    size_t len, cap, off; /* off: bytes consumed */
    uint64_t eof_at;      /* kt_now_ms() when EOF was seen */
    /* after a handshake */
    aemp__hs_conf_t conf;
    aemp__hs_t hs;
    char node_id[64];
    aemp_reader_t *reader;
    int reader_rc;
    aemp_msg_t **pkts;
    size_t npkts, cappkts;
} raw_t;

void raw_drain(raw_t *r);

void raw_on_poll(uv_poll_t *h, int status, int events);

raw_t *raw_connect(uv_loop_t *loop, const char *ref);

/* Writes everything (small amounts: the socket buffer takes them). */
void raw_write(raw_t *r, const void *data, size_t len);

void raw_stop_reading(raw_t *r);

void raw_closed(uv_handle_t *h);

void raw_close(raw_t *r);

/* Complete lines received and not consumed. */
size_t raw_lines(const raw_t *r);

/* Pops the next line (without LF) into buf; its length. */
size_t raw_pop_line(raw_t *r, char *buf, size_t size);

typedef struct raw_cond {
    raw_t *r;
    size_t want;
} raw_cond_t;

int raw_has_lines(void *arg);

int raw_has_pkts(void *arg);

int raw_at_eof(void *arg);

int await_raw_lines(raw_t *r, size_t want);

int await_raw_pkts(raw_t *r, size_t want, double seconds);

int await_raw_eof(raw_t *r, double seconds);

/* Connects to ref and completes a real handshake as node "anon/raw<k>",
 * announcing timeout (0: none) and accepting `framings`. */
raw_t *raw_handshaken(uv_loop_t *loop, const char *ref, const char *framings,
                      unsigned timeout);

/* Connects to ref and sends a greeting as node `id` accepting `framings`,
 * and a nonce: the start of a handshake. */
raw_t *raw_greet(uv_loop_t *loop, const char *ref, const char *id,
                 const char *framings);

/* Sends one packet built from picture (the port name first). */
void raw_send(raw_t *r, const char *picture, ...);

/* Every test runs in a child process of its own, with a deadline: a test
 * that fails half-way leaves nodes and sockets behind, which must not
 * disturb the next one, and a livelock inside the loop (a timer re-armed
 * for "now" from its own callback keeps libuv in its timer phase for good)
 * must fail that test, not hang the run.  The child ends with exit(), so
 * that LeakSanitizer checks it. */
typedef struct isolated {
    const char *name;
    void (*fn)(void **);
    unsigned secs;
} isolated_t;

void run_isolated(void **state);

#define ISOLATED(fn, secs)                                                     \
    {                                                                          \
#fn, run_isolated, NULL, NULL, &(isolated_t)                           \
        {                                                                      \
#fn, fn, secs                                                      \
        }                                                                      \
    }

#endif
