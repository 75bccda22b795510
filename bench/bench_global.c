/* bench_global: the global registry (issue 13) with real node processes
 * and real TCP on loopback.  This one program is the driver and, started
 * again by itself with --node, every node process; each node is one aemp
 * node (aemp_node_configure with a shared secret and a short
 * monitor_timeout, then aemp_initialise on 127.0.0.1:<port> with its
 * seeds; global nodes have aemp_netconf_t.global = 1), driven by one-line
 * commands on its standard input and answering one-line results on its
 * standard output.  Times across processes are CLOCK_MONOTONIC, which all
 * processes of one machine share: a node puts the time into what it sends
 * and the receiving node subtracts it from its own.
 *
 *   bench_global [--runs N] [--only latency|snapshot|network]
 *                [--samples N] [--keys N] [--ports N] [--mon-keys N]
 *                [--failover-runs N] [--nodes N] [--net-runs N]
 *                [--early-runs N] [--settle S] [--monitor-timeout S]
 *                [--pin on|off|both]
 *
 * Every node has monitor_timeout --monitor-timeout (default 2 s) and the
 * other settings at their defaults (connect_interval 2 s, +-25%).
 *
 * 1. latency.  Three nodes: a global node G, a setter S and a monitor M
 *    both attached to G (seed: G only).  M runs db_mon("lat"); S sets
 *    "lat"/"k" to [seq, t_set, last]; M's db_mon callback takes
 *    now - t_set (one-way: db_set on S to db_mon firing on M, through G:
 *    two hops) and, for a value marked last, sends ["ack", seq] to S's
 *    port.
 *      paced: --samples (default 2000) sets, each waiting for the ack of
 *        the one before (a single change in flight: one sample is one
 *        S -> G -> M trip with nothing queued behind it); median and p99
 *        of the one-way times, and S's round trip (set to ack).
 *      burst: --samples sets issued in one go (one loop iteration), the
 *        last marked; the time until M's callback saw the last, the rate
 *        that gives, and the median/p99 of the one-way times of all.
 *      peers: the same pacing and measurement with plain messages:
 *        aemp_snd(M's port, ["ping", seq, t_send, 1, S's port]) straight
 *        from S to M (one hop; M's tag callback takes now - t_send and
 *        answers the ack): "db_set -> db_mon = k x one-hop latency"; and
 *        the same path as the database's, relayed by a port on each global
 *        node (["fwd", path, ...], S -> G -> M): what the registry costs
 *        beyond the hops its changes travel.
 *    And the variant through replication: two global nodes G1, G2 (each
 *    listing both as seeds), S attached to G1, M to G2 (S -> G1 -> G2 ->
 *    M: three hops).  100 paced sets and pings of each kind are made and
 *    thrown away first (links up, caches warm).  Every run uses fresh
 * processes; with
 *    --pin both (default) every run is measured with all processes of the
 *    run on CPU 0 (sched_setaffinity, as `taskset -c 0`) and unpinned,
 *    interleaved: on a 2-CPU VM an unpinned hop costs a cross-CPU wake-up
 *    or not, as the scheduler places the processes (compare bench_net's
 *    ping-pong, pinned and unpinned), so unpinned runs are bimodal.
 *
 * 2. snapshot.  A global node G, a registering node R and a monitor M
 *    attached to G.  R db_sets --keys (default 100,000) keys "key-NNNNNN"
 *    (value: the integer N) in one family "big", then creates --ports
 *    (default 1,000) ports and db_regs each in family "svc" (value null);
 *    each load ends with a query R makes (ordered behind its sets on the
 *    same link), so its time is "until G holds them all".
 *      memory per entry: G's heap in use (mallinfo2 uordblks + hblkhd, in
 *        G's own process) and its VmRSS (/proc/self/status), before and
 *        after each load, divided by the entries loaded: everything G
 *        keeps per entry (R's shard, the merged view, hash slots).
 *      full snapshot: on M, the time from aemp_db_mon("big") to the first
 *        callback, whose db then holds all the keys (checked); the guard
 *        is cancelled afterwards and the next run subscribes anew.
 *      query: on M, aemp_db_family("big") (and "svc") to its callback with
 *        the whole family (checked: its size).
 *      change in the big family: with M's db_mon("big") standing, paced
 *        single changes from R (key "probe-<seq>-<t>" added, value null)
 *        to M's callback, as in 1: what one change of a large monitored
 *        family costs end to end (db_mon hands the callback the whole
 *        family each time, so its cost grows with the family).
 *      a monitored family filled: --mon-keys (default 5,000) keys db_set
 *        by R into a family M already monitors (db_mon("mon")): until G
 *        holds them (R's query) and until M's db_mon has seen them all.
 *
 * 2b. a monitor of the big family losing its master (--failover-runs,
 *    default 3): two global nodes, M attached to one, R (holding --keys
 *    keys) to the other; once M's master holds them all (replication is
 *    eventual) M's db_mon("big") takes the snapshot; --settle seconds after
 *    M attached its master is killed (SIGKILL): the times until M has a
 *    new master and until M's db_mon reports the new master's view.
 *
 * 3. network.  --nodes (default 50) node processes: 3 global nodes (each
 *    listing the 3 as seeds) and the others ordinary, each listing all 3
 *    global nodes as seeds (in rotated order) so that it can re-attach.
 *    Every ordinary node db_sets "net"/<its node ID>; each global node
 *    runs db_mon("net") and prints the family's size at every change.
 *      links: aemp_up_nodes() on every node once the database is complete
 *        on all 3 global nodes: an ordinary node should have 1 (its master),
 *        not nodes - 1; a global node the other globals plus its attached
 *        nodes.
 *      convergence: the global node with the most attached nodes is
 *        killed (SIGKILL); the time from the kill until every node that
 *        was attached to it has a new master (aemp_master(), polled each
 *        millisecond once the node saw its master's link go down) and
 *        until "net" is complete again (every ordinary node's entry) on
 *        both remaining global nodes (the last db_mon change that made it
 *        complete); then links are counted again.
 *    The kill comes --settle seconds (default 3) after all attached, more
 *    than connect_interval: an ordinary node closes its idle links to the
 *    global seeds it did not choose when it attaches, and such a link's
 *    reconnection back-off (connect_interval, +-25%) also delays the
 *    re-attachment if the master is lost before it ran out.  --early-runs
 *    (default 1) more runs kill 0.3 s after all attached, to show that.
 *    --net-runs runs (default 3), each a fresh network.
 *
 * Every figure is the median of --runs runs (default 5; 2b: --failover-runs,
 * 3: --net-runs), every run printed.  The program ends within about a
 * minute on a 2-CPU machine (most of it in 2b); --only runs one part (2b
 * belongs to snapshot). */
#define _GNU_SOURCE
#include "median.h"

#include <aemp.h>

#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET "aemp-bench-global"
#define MAXNODES 200

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-quantile (0..1) of n samples (sorted in place); NAN for none. */
static double quantile(double *v, size_t n, double p)
{
    if (!n)
        return NAN;
    qsort(v, n, sizeof *v, cmp_dbl);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* ========================================================================
 * The node process: bench_global --node NAME PORT GLOBAL SEEDS MONTIMEOUT
 * (SEEDS: comma-separated ports, or "-").  Commands on stdin, one a line;
 * results on stdout:
 *   ready <node ID> <master> <port ID>     once attached (or global)
 *   lost <t> <id>, master <t> <id>         its master's link went down;
 *                                          a new master (t: CLOCK_MONOTONIC ns)
 *   links           "links N ids...": aemp_up_nodes()
 *   mem             "mem <heap bytes in use> <VmRSS kB>"
 *   set F K V       db_set(F, K (- : own node ID), integer V): "ok"
 *   mon F           db_mon(F): "fam F <t> <size>" at every change
 *   watch F ACKPORT db_mon(F) taking probes (below): "watching <size>"
 *   unwatch         ends it: "ok"
 *   report          the probes' one-way times since the last report:
 *                   "samples N min median p99 max gaps" (us)
 *   dbping F N KEYED  paced probes: "done <s> <N> <rtt-median-us> <rtt-p99>"
 *   msgping PATH N    the same with plain messages: PATH is M's port ID,
 *                     or relays' port IDs and M's, comma-separated
 *   dbburst F N       N probes at once: "done <s>"
 *   load F N        db_set N keys: "loaded <s> <t-start>"
 *   monsize F N     db_mon(F): "watching <size>", then "full <t>" at N keys
 *   reg F N         N ports, db_reg each: "registered <s>"
 *   snap F          db_mon until the snapshot: "snap <s> <size>"
 *   query F         db_family: "query <s> <size>"
 *   quit
 * A probe is "k" = [seq, t, last] (KEYED 0) or the key
 * "probe-<seq>-<t>-<last>" with value null (KEYED 1).
 * ======================================================================== */

static struct {
    uv_loop_t loop;
    aemp_node_t *n;
    const char *port; /* the work port ("ping", "ack") */
    int global, ready;
    char master[128];
    uv_timer_t poll; /* waiting for a master */
    uv_poll_t in;
    char inbuf[8192];
    size_t inlen;
    /* monitor side of probes */
    char ackport[256];
    int primed;
    aemp_mon_t *watch;
    double *lat;
    size_t nlat, caplat;
    int64_t expect_seq, gaps;
    /* setter side */
    enum { S_IDLE, S_DB, S_MSG, S_BURST } mode;
    char family[64], target[1024];
    int keyed;
    int64_t left, seq, t_sent, t_first, count;
    double *rtt;
    size_t nrtt, caprtt;
    /* loads, snapshots, queries */
    int64_t t0;
    aemp_mon_t *snap;
    int snapped;
    uv_timer_t later; /* cancels the snapshot's guard outside its callback */
} C;

static void out(const char *fmt, ...) AEMP_PRINTF(1, 2);
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

#define CHECK(expr) check_rc((expr), #expr, __LINE__)
static void check_rc(int rc, const char *what, int line)
{
    if (rc < 0) {
        fprintf(stderr, "bench_global node:%d: %s: %s\n", line, what,
                aemp_strerror(rc));
        exit(2);
    }
}

static void push(double **v, size_t *n, size_t *cap, double x)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 4096;
        if (!(*v = realloc(*v, *cap * sizeof **v))) {
            fprintf(stderr, "bench_global: out of memory\n");
            exit(2);
        }
    }
    (*v)[(*n)++] = x;
}

static long rss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* ---- attachment ---------------------------------------------------------- */

static int on_ping(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user);
static int on_ack(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user);
static int on_fwd(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user);
static int on_other(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user);

static void on_poll(uv_timer_t *t)
{
    const char *m = aemp_master(C.n);
    if (!m || !*m)
        return;
    uv_timer_stop(t);
    snprintf(C.master, sizeof C.master, "%s", m);
    if (!C.ready) {
        C.ready = 1;
        out("ready %s %s %s", aemp_noderef(C.n), C.master, C.port);
    } else {
        out("master %" PRId64 " %s", mono_ns(), C.master);
    }
}

static void on_nodes(aemp_node_t *n, const char *id, int up,
                     const aemp_msg_t *reason, void *user)
{
    (void)n, (void)reason, (void)user;
    if (up || !C.ready || C.global || strcmp(id, C.master))
        return;
    out("lost %" PRId64 " %s", mono_ns(), id);
    C.master[0] = 0;
    uv_timer_start(&C.poll, on_poll, 1, 1);
}

static void on_init(aemp_node_t *n, int status, const char *error, void *user)
{
    (void)n, (void)user;
    if (status) {
        out("error initialise: %s", error ? error : aemp_strerror(status));
        exit(1);
    }
    /* after initialisation renamed the node: the port ID must name it */
    CHECK(aemp_port(C.n, on_other, NULL, &C.port));
    CHECK(aemp_rcv_tag(C.n, C.port, "ping", on_ping, NULL));
    CHECK(aemp_rcv_tag(C.n, C.port, "ack", on_ack, NULL));
    CHECK(aemp_rcv_tag(C.n, C.port, "fwd", on_fwd, NULL));
    uv_timer_start(&C.poll, on_poll, 0, 1);
}

/* ---- probes -------------------------------------------------------------- */

static void record(int64_t seq, int64_t t, int last, int64_t now)
{
    push(&C.lat, &C.nlat, &C.caplat, (double)(now - t) / 1e3);
    if (C.expect_seq >= 0 && seq != C.expect_seq)
        C.gaps++;
    C.expect_seq = seq + 1;
    if (last && C.ackport[0])
        aemp_snd(C.n, C.ackport, "sI", "ack", (int64_t)seq);
}

static void probe_key(const char *k, const aemp_val_t *db, int64_t now)
{
    long long seq, t;
    int last;
    int64_t s64, t64, l64;
    if (strncmp(k, "probe-", 6) == 0) {
        if (sscanf(k + 6, "%lld-%lld-%d", &seq, &t, &last) == 3)
            record(seq, t, last, now);
    } else if (strcmp(k, "k") == 0) {
        const aemp_val_t *v = aemp_map_get(db, "k");
        if (aemp_val_int(aemp_val_at(v, 0), &s64) == 0 &&
            aemp_val_int(aemp_val_at(v, 1), &t64) == 0 &&
            aemp_val_int(aemp_val_at(v, 2), &l64) == 0)
            record(s64, t64, (int)l64, now);
    }
}

static void on_watch(aemp_node_t *n, const char *family, const aemp_val_t *db,
                     const aemp_val_t *added, const aemp_val_t *changed,
                     const aemp_val_t *deleted, void *user)
{
    int64_t now = mono_ns();
    const char *k;
    (void)n, (void)family, (void)deleted, (void)user;
    if (!C.primed) { /* the snapshot */
        C.primed = 1;
        out("watching %zu", aemp_val_len(db));
        return;
    }
    for (size_t i = 0; i < aemp_val_len(added); i++)
        if (aemp_val_str(aemp_val_at(added, i), &k, NULL) == 0)
            probe_key(k, db, now);
    for (size_t i = 0; i < aemp_val_len(changed); i++)
        if (aemp_val_str(aemp_val_at(changed, i), &k, NULL) == 0)
            probe_key(k, db, now);
}

/* ["ping", seq, t, last, ackport] on the work port (tag removed) */
static int on_ping(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    int64_t now = mono_ns(), seq, t;
    int last;
    const char *ack;
    (void)ctx, (void)user;
    if (aemp_msg_unpack(msg, "IIis", &seq, &t, &last, &ack) == 0) {
        snprintf(C.ackport, sizeof C.ackport, "%s", ack);
        record(seq, t, last, now);
    }
    return 0;
}

/* ["fwd", "hop,hop,...,dest", seq, t, last, ackport]: a relay (a global
 * node's work port) passes the probe on, unchanged but for the path. */
static int on_fwd(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    const char *path, *ack;
    int64_t seq, t;
    int last;
    char next[256];
    (void)ctx, (void)user;
    if (aemp_msg_unpack(msg, "sIIis", &path, &seq, &t, &last, &ack) < 0)
        return 0;
    const char *comma = strchr(path, ',');
    if (!comma)
        return aemp_snd(C.n, path, "sIIis", "ping", seq, t, last, ack);
    snprintf(next, sizeof next, "%.*s", (int)(comma - path), path);
    return aemp_snd(C.n, next, "ssIIis", "fwd", comma + 1, seq, t, last, ack);
}

static void send_probe(int last)
{
    int64_t seq = C.seq++, t = mono_ns();
    char key[96];
    C.t_sent = t;
    if (C.mode == S_MSG) {
        /* target: the destination, or relays and the destination */
        const char *comma = strchr(C.target, ',');
        char first[256];
        if (!comma)
            CHECK(
                aemp_snd(C.n, C.target, "sIIis", "ping", seq, t, last, C.port));
        else {
            snprintf(first, sizeof first, "%.*s", (int)(comma - C.target),
                     C.target);
            CHECK(aemp_snd(C.n, first, "ssIIis", "fwd", comma + 1, seq, t, last,
                           C.port));
        }
    } else if (C.keyed) {
        snprintf(key, sizeof key, "probe-%" PRId64 "-%" PRId64 "-%d", seq, t,
                 last);
        CHECK(aemp_db_set(C.n, C.family, key, NULL));
    } else {
        aemp_val_t *v = aemp_arr(aemp_int(seq), aemp_int(t), aemp_int(last));
        CHECK(aemp_db_set(C.n, C.family, "k", &v));
    }
}

/* ["ack", seq] from the monitor: the next probe, or done */
static int on_ack(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    int64_t now = mono_ns();
    (void)ctx, (void)msg, (void)user;
    if (C.mode == S_IDLE)
        return 0;
    if (C.mode == S_BURST) {
        out("done %.6f", (double)(now - C.t_first) / 1e9);
        C.mode = S_IDLE;
        return 0;
    }
    push(&C.rtt, &C.nrtt, &C.caprtt, (double)(now - C.t_sent) / 1e3);
    if (--C.left > 0) {
        send_probe(1);
        return 0;
    }
    double wall = (double)(now - C.t_first) / 1e9;
    double med = quantile(C.rtt, C.nrtt, 0.5),
           p99 = quantile(C.rtt, C.nrtt, 0.99);
    out("done %.6f %zu %.2f %.2f", wall, C.nrtt, med, p99);
    C.nrtt = 0;
    C.mode = S_IDLE;
    return 0;
}

static int on_other(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    (void)ctx, (void)msg, (void)user;
    return 0;
}

/* ---- loads, snapshots, queries ------------------------------------------- */

static void on_loaded(aemp_node_t *n, int status, const aemp_val_t *result,
                      void *user)
{
    (void)n, (void)result;
    if (status)
        out("error barrier: %s", aemp_strerror(status));
    else
        out("%s %.6f %" PRId64, (const char *)user,
            (double)(mono_ns() - C.t0) / 1e9, C.t0);
}

static void on_family(aemp_node_t *n, const char *family, const aemp_val_t *db,
                      const aemp_val_t *added, const aemp_val_t *changed,
                      const aemp_val_t *deleted, void *user)
{
    (void)n, (void)added, (void)changed, (void)deleted, (void)user;
    out("fam %s %" PRId64 " %zu", family, mono_ns(), aemp_val_len(db));
}

/* monsize: the time the family reached its expected size */
static size_t want_size;
static aemp_mon_t *size_guard;

static void on_size(aemp_node_t *n, const char *family, const aemp_val_t *db,
                    const aemp_val_t *added, const aemp_val_t *changed,
                    const aemp_val_t *deleted, void *user)
{
    (void)n, (void)family, (void)added, (void)changed, (void)deleted;
    (void)user;
    if (!C.primed) {
        C.primed = 1;
        out("watching %zu", aemp_val_len(db));
    } else if (want_size && aemp_val_len(db) >= want_size) {
        out("full %" PRId64, mono_ns());
        want_size = 0;
    }
}

static void on_later(uv_timer_t *t)
{
    (void)t;
    aemp_mon_cancel(C.snap);
    C.snap = NULL;
}

static void on_snap(aemp_node_t *n, const char *family, const aemp_val_t *db,
                    const aemp_val_t *added, const aemp_val_t *changed,
                    const aemp_val_t *deleted, void *user)
{
    int64_t now = mono_ns();
    (void)n, (void)family, (void)changed, (void)deleted, (void)user;
    if (C.snapped++)
        return;
    out("snap %.6f %zu %zu", (double)(now - C.t0) / 1e9, aemp_val_len(db),
        aemp_val_len(added));
    uv_timer_start(&C.later, on_later, 0, 0);
}

static void on_query(aemp_node_t *n, int status, const aemp_val_t *result,
                     void *user)
{
    (void)n, (void)user;
    if (status)
        out("error query: %s", aemp_strerror(status));
    else
        out("query %.6f %zu", (double)(mono_ns() - C.t0) / 1e9,
            aemp_val_len(result));
}

/* ---- commands ------------------------------------------------------------ */

static int is(const char *verb, const char *name)
{
    return strcmp(verb, name) == 0;
}

static void command(char *line)
{
    char verb[32] = "", a[256] = "", b[256] = "";
    const char *rest = line + strcspn(line, " ");
    sscanf(line, "%31s", verb);
    long long v = 0;
    aemp_node_t *n = C.n;
    if (is(verb, "set") && sscanf(rest, "%255s %255s %lld", a, b, &v) == 3) {
        aemp_val_t *val = aemp_int(v);
        CHECK(aemp_db_set(n, a, strcmp(b, "-") ? b : aemp_noderef(n), &val));
        out("ok");
    } else if (is(verb, "links")) {
        aemp_msg_t *up = NULL;
        CHECK(aemp_up_nodes(n, &up));
        char buf[8192];
        int len = snprintf(buf, sizeof buf, "links %zu", aemp_msg_len(up));
        for (size_t i = 0; i < aemp_msg_len(up); i++) {
            const char *id;
            if (aemp_val_str(aemp_msg_at(up, i), &id, NULL) == 0 &&
                len < (int)sizeof buf - 100)
                len += snprintf(buf + len, sizeof buf - (size_t)len, " %s", id);
        }
        aemp_msg_unref(up);
        out("%s", buf);
    } else if (is(verb, "mem")) {
        struct mallinfo2 mi = mallinfo2();
        out("mem %zu %ld", mi.uordblks + mi.hblkhd, rss_kb());
    } else if (is(verb, "mon") && sscanf(rest, "%255s", a) == 1) {
        CHECK(aemp_db_mon(n, a, on_family, NULL, NULL));
    } else if (is(verb, "watch") && sscanf(rest, "%255s %255s", a, b) == 2) {
        snprintf(C.ackport, sizeof C.ackport, "%s", b);
        C.primed = 0;
        CHECK(aemp_db_mon(n, a, on_watch, NULL, &C.watch));
    } else if (is(verb, "unwatch")) {
        aemp_mon_cancel(C.watch);
        C.watch = NULL;
        out("ok");
    } else if (is(verb, "report")) {
        double mn = quantile(C.lat, C.nlat, 0);
        out("samples %zu %.2f %.2f %.2f %.2f %" PRId64, C.nlat, mn,
            quantile(C.lat, C.nlat, 0.5), quantile(C.lat, C.nlat, 0.99),
            quantile(C.lat, C.nlat, 1), C.gaps);
        C.nlat = 0;
        C.gaps = 0;
        C.expect_seq = -1; /* the next sample starts a sequence */
    } else if (is(verb, "dbping") &&
               sscanf(rest, "%63s %lld %d", C.family, &v, &C.keyed) == 3) {
        C.mode = S_DB;
        C.left = v;
        C.t_first = mono_ns();
        send_probe(1);
    } else if (is(verb, "msgping") &&
               sscanf(rest, "%1023s %lld", C.target, &v) == 2) {
        C.mode = S_MSG;
        C.left = v;
        C.t_first = mono_ns();
        send_probe(1);
    } else if (is(verb, "dbburst") &&
               sscanf(rest, "%63s %lld", C.family, &v) == 2) {
        C.mode = S_BURST;
        C.keyed = 0;
        C.t_first = mono_ns();
        for (long long i = 0; i < v; i++)
            send_probe(i == v - 1);
    } else if (is(verb, "load") && sscanf(rest, "%255s %lld", a, &v) == 2) {
        C.t0 = mono_ns();
        for (long long i = 0; i < v; i++) {
            char key[32];
            snprintf(key, sizeof key, "key-%06lld", i);
            aemp_val_t *val = aemp_int(i);
            CHECK(aemp_db_set(n, a, key, &val));
        }
        /* answered behind the sets: the global node holds them all */
        CHECK(aemp_db_keys(n, "barrier", 120, on_loaded, "loaded"));
    } else if (is(verb, "reg") && sscanf(rest, "%255s %lld", a, &v) == 2) {
        C.t0 = mono_ns();
        for (long long i = 0; i < v; i++) {
            const char *id;
            CHECK(aemp_port(n, on_other, NULL, &id));
            CHECK(aemp_db_reg(n, a, id, NULL, NULL));
        }
        CHECK(aemp_db_keys(n, "barrier", 120, on_loaded, "registered"));
    } else if (is(verb, "monsize") && sscanf(rest, "%255s %lld", a, &v) == 2) {
        want_size = (size_t)v;
        C.primed = 0;
        CHECK(aemp_db_mon(n, a, on_size, NULL, &size_guard));
    } else if (is(verb, "snap") && sscanf(rest, "%255s", a) == 1) {
        C.snapped = 0;
        C.t0 = mono_ns();
        CHECK(aemp_db_mon(n, a, on_snap, NULL, &C.snap));
    } else if (is(verb, "query") && sscanf(rest, "%255s", a) == 1) {
        C.t0 = mono_ns();
        CHECK(aemp_db_family(n, a, 120, on_query, NULL));
    } else if (is(verb, "quit")) {
        exit(0);
    } else {
        out("error unknown command: %s", line);
    }
}

static void on_stdin(uv_poll_t *h, int status, int events)
{
    (void)events;
    ssize_t got =
        status < 0 ? 0
                   : read(0, C.inbuf + C.inlen, sizeof C.inbuf - C.inlen - 1);
    if (got <= 0 && !(got < 0 && errno == EAGAIN)) {
        uv_poll_stop(h);
        exit(0); /* the driver is gone */
    }
    if (got < 0)
        return;
    C.inlen += (size_t)got;
    char *nl;
    while ((nl = memchr(C.inbuf, '\n', C.inlen))) {
        *nl = 0;
        command(C.inbuf);
        size_t used = (size_t)(nl + 1 - C.inbuf);
        memmove(C.inbuf, nl + 1, C.inlen - used);
        C.inlen -= used;
    }
}

static int node_main(int argc, char **argv)
{
    if (argc != 7)
        return 2;
    int port = atoi(argv[3]);
    C.global = atoi(argv[4]);
    double mt = atof(argv[6]);
    char noderef[64], seedbuf[2048];
    const char *seeds[MAXNODES];
    size_t nseeds = 0;
    snprintf(noderef, sizeof noderef, "127.0.0.1:%d", port);
    snprintf(seedbuf, sizeof seedbuf, "%s", argv[5]);
    static char seedrefs[MAXNODES][32];
    for (char *s = strtok(seedbuf, ","); s && nseeds < MAXNODES;
         s = strtok(NULL, ",")) {
        if (!strcmp(s, "-"))
            continue;
        snprintf(seedrefs[nseeds], sizeof seedrefs[nseeds], "127.0.0.1:%s", s);
        seeds[nseeds] = seedrefs[nseeds];
        nseeds++;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    C.expect_seq = -1;
    uv_loop_init(&C.loop);
    uv_timer_init(&C.loop, &C.poll);
    uv_timer_init(&C.loop, &C.later);
    CHECK(aemp_node_new(&C.n, &C.loop));
    aemp_netconf_t conf = {
        .secret = SECRET, .monitor_timeout = mt, .global = C.global};
    CHECK(aemp_node_configure(C.n, &conf));
    CHECK(aemp_mon_nodes(C.n, on_nodes, NULL, NULL));
    CHECK(aemp_initialise(C.n, NULL, "bench", noderef, seeds, nseeds, on_init,
                          NULL));
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    uv_poll_init(&C.loop, &C.in, 0);
    uv_poll_start(&C.in, UV_READABLE, on_stdin);
    aemp_run(C.n);
    return 0;
}

/* ========================================================================
 * The driver
 * ======================================================================== */

static struct {
    int runs;
    const char *only;
    long samples, keys, ports, mon_keys;
    int nodes, net_runs, early_runs, failover_runs;
    double monitor_timeout, settle;
    const char *pin; /* on, off, both */
} opt = {5, NULL, 2000, 100000, 1000, 5000, 50, 3, 1, 3, 2.0, 3.0, "both"};

static char self_exe[4096];
static int next_port;
static int failures;

typedef struct proc {
    pid_t pid;
    int in, out; /* its stdin, its stdout */
    char buf[65536];
    size_t len;
    char line[8192];
    char name[16];
    int port;
    char id[64];      /* node ID */
    char portid[192]; /* its work port */
    char master[128];
    int global, ready, alive;
    int orphan; /* 3.: attached to the global node that is killed */
} proc_t;

static proc_t *all_procs[MAXNODES * 2];
static int nall;

static void kill_all(void)
{
    for (int i = 0; i < nall; i++)
        if (all_procs[i]->alive) {
            kill(all_procs[i]->pid, SIGKILL);
            waitpid(all_procs[i]->pid, NULL, 0);
            all_procs[i]->alive = 0;
        }
    nall = 0;
}

static void fail(const char *fmt, ...) AEMP_PRINTF(1, 2);
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  FAILED: ");
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    failures++;
}

/* Starts a node process: global or not, seeds a list of ports ("-": none);
 * pin: CPU 0. */
static int spawn_node(proc_t *p, const char *name, int port, int global,
                      const char *seeds, int pin)
{
    int to[2], from[2];
    char portstr[16], mt[32];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->port = port;
    p->global = global;
    snprintf(p->id, sizeof p->id, "127.0.0.1:%d", port);
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(mt, sizeof mt, "%g", opt.monitor_timeout);
    if (pipe(to) < 0 || pipe(from) < 0)
        return -1;
    fflush(stdout);
    p->pid = fork();
    if (p->pid == 0) {
        if (pin) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(0, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[0]), close(to[1]), close(from[0]), close(from[1]);
        char *argv[] = {self_exe,           "--node",      p->name, portstr,
                        global ? "1" : "0", (char *)seeds, mt,      NULL};
        execv(self_exe, argv);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    p->in = to[1];
    p->out = from[0];
    p->alive = 1;
    all_procs[nall++] = p;
    return p->pid > 0 ? 0 : -1;
}

static void cmd(proc_t *p, const char *fmt, ...) AEMP_PRINTF(2, 3);
static void cmd(proc_t *p, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    buf[len++] = '\n';
    if (p->alive && write(p->in, buf, (size_t)len) != len)
        fprintf(stderr, "bench_global: cannot write to %s\n", p->name);
}

/* A complete line in p's buffer moves to p->line: 1; else 0. */
static int take_line(proc_t *p)
{
    char *nl = memchr(p->buf, '\n', p->len);
    if (!nl)
        return 0;
    size_t n = (size_t)(nl - p->buf);
    if (n >= sizeof p->line)
        n = sizeof p->line - 1;
    memcpy(p->line, p->buf, n);
    p->line[n] = 0;
    size_t used = (size_t)(nl + 1 - p->buf);
    memmove(p->buf, nl + 1, p->len - used);
    p->len -= used;
    return 1;
}

/* Reads what p has; 0 at EOF (p is marked dead). */
static int fill(proc_t *p)
{
    ssize_t got = read(p->out, p->buf + p->len, sizeof p->buf - p->len);
    if (got <= 0) {
        p->alive = 0;
        return 0;
    }
    p->len += (size_t)got;
    return 1;
}

/* The next line from any of procs (in ->line), or NULL after timeout_ms. */
static proc_t *next_any(proc_t **procs, int n, int timeout_ms)
{
    int64_t end = mono_ns() + (int64_t)timeout_ms * 1000000;
    struct pollfd pf[MAXNODES];
    for (;;) {
        for (int i = 0; i < n; i++)
            if (procs[i] && take_line(procs[i]))
                return procs[i];
        int k = 0, map[MAXNODES];
        for (int i = 0; i < n; i++)
            if (procs[i] && procs[i]->alive) {
                pf[k] = (struct pollfd){procs[i]->out, POLLIN, 0};
                map[k++] = i;
            }
        int64_t left = (end - mono_ns()) / 1000000;
        if (!k || left <= 0 || poll(pf, (nfds_t)k, (int)left) <= 0)
            return NULL;
        for (int j = 0; j < k; j++)
            if (pf[j].revents)
                fill(procs[map[j]]);
    }
}

/* The next line of p starting with prefix (without it); others are
 * printed.  NULL on timeout or EOF. */
static const char *expect(proc_t *p, const char *prefix, int timeout_ms)
{
    size_t len = strlen(prefix);
    int64_t end = mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int left = (int)((end - mono_ns()) / 1000000);
        proc_t *q = left > 0 ? next_any(&p, 1, left) : NULL;
        if (!q) {
            fail("%s: no \"%s\" within %d ms%s", p->name, prefix, timeout_ms,
                 p->alive ? "" : " (the process ended)");
            return NULL;
        }
        if (strncmp(q->line, prefix, len) == 0)
            return q->line + len;
        printf("    | %s: %s\n", p->name, q->line);
    }
}

static int wait_ready(proc_t *p)
{
    const char *r = expect(p, "ready ", 10000);
    if (!r)
        return -1;
    p->ready = 1;
    if (sscanf(r, "%*s %127s %191s", p->master, p->portid) != 2) {
        fail("%s: bad ready line", p->name);
        return -1;
    }
    return 0;
}

static void print_load(const char *when)
{
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fgets(buf, sizeof buf, f))
        buf[strcspn(buf, "\n")] = 0;
    if (f)
        fclose(f);
    printf("load average at the %s: %s\n", when, buf);
}

/* ---- 1. latency ---------------------------------------------------------- */

/* One variant's figures in one run (us; burst: s). */
typedef struct lat {
    double db_med, db_p99, db_rtt;    /* db_set -> db_mon */
    double msg_med, msg_p99, msg_rtt; /* one hop, S -> M */
    double rel_med, rel_p99, rel_rtt; /* S -> global(s) -> M, relayed */
    double burst_s, burst_med, burst_p99;
} lat_t;

/* "samples N min med p99 max gaps" -> med, p99; checks N. */
static int samples(proc_t *m, long want, double *med, double *p99)
{
    cmd(m, "report");
    const char *r = expect(m, "samples ", 10000);
    long n;
    double mn, mx;
    long long gaps;
    if (!r || sscanf(r, "%ld %lf %lf %lf %lf %lld", &n, &mn, med, p99, &mx,
                     &gaps) != 6)
        return -1;
    if (n != want || gaps) {
        fail("%s: %ld samples (expected %ld), %lld out of sequence", m->name, n,
             want, gaps);
        return -1;
    }
    return 0;
}

/* count paced probes from S, measured on M: db_set in family "lat" (path
 * NULL) or plain messages along path (relays' port IDs, then M's) */
static int paced(proc_t *s, proc_t *m, const char *path, long count,
                 double *med, double *p99, double *rtt)
{
    if (!path)
        cmd(s, "dbping lat %ld 0", count);
    else
        cmd(s, "msgping %s %ld", path, count);
    const char *r = expect(s, "done ", 60000);
    double wall, rp99;
    long n;
    if (!r || sscanf(r, "%lf %ld %lf %lf", &wall, &n, rtt, &rp99) != 4)
        return -1;
    return samples(m, count, med, p99);
}

/* One run of one variant: fresh processes.  replicated: S and M attached
 * to two different global nodes. */
static int latency_run(int replicated, int pin, lat_t *L)
{
    proc_t *g1 = calloc(1, sizeof *g1), *g2 = calloc(1, sizeof *g2),
           *s = calloc(1, sizeof *s), *m = calloc(1, sizeof *m);
    int rc = -1, base = next_port;
    char seeds[64], relay[1024];
    next_port += 4;
    if (replicated) {
        snprintf(seeds, sizeof seeds, "%d,%d", base, base + 1);
        spawn_node(g1, "G1", base, 1, seeds, pin);
        spawn_node(g2, "G2", base + 1, 1, seeds, pin);
        if (wait_ready(g1) || wait_ready(g2))
            goto done;
        for (int i = 0;; i++) { /* the two global nodes are linked */
            cmd(g1, "links");
            const char *l = expect(g1, "links ", 5000);
            if (!l)
                goto done;
            if (atoi(l) >= 1)
                break;
            if (i == 500) {
                fail("G1 and G2 not linked");
                goto done;
            }
            usleep(10000);
        }
        snprintf(seeds, sizeof seeds, "%d", base);
        spawn_node(s, "S", base + 2, 0, seeds, pin);
        snprintf(seeds, sizeof seeds, "%d", base + 1);
        spawn_node(m, "M", base + 3, 0, seeds, pin);
    } else {
        snprintf(seeds, sizeof seeds, "%d", base);
        spawn_node(g1, "G", base, 1, "-", pin);
        if (wait_ready(g1))
            goto done;
        spawn_node(s, "S", base + 2, 0, seeds, pin);
        spawn_node(m, "M", base + 3, 0, seeds, pin);
    }
    if (wait_ready(s) || wait_ready(m))
        goto done;
    const char *want = replicated ? g2->id : g1->id;
    if (strcmp(s->master, g1->id) || strcmp(m->master, want)) {
        fail("S attached to %s (expected %s), M to %s (expected %s)", s->master,
             g1->id, m->master, want);
        goto done;
    }
    if (replicated)
        snprintf(relay, sizeof relay, "%s,%s,%s", g1->portid, g2->portid,
                 m->portid);
    else
        snprintf(relay, sizeof relay, "%s,%s", g1->portid, m->portid);
    cmd(m, "watch lat %s", s->portid);
    if (!expect(m, "watching ", 10000))
        goto done;
    double x, y, z;
    /* warm-up: every link up (M -> S for the acks, S -> M for the pings,
     * S -> G -> M relayed), first-use allocations made */
    if (paced(s, m, NULL, 100, &x, &y, &z) ||
        paced(s, m, m->portid, 100, &x, &y, &z) ||
        paced(s, m, relay, 100, &x, &y, &z))
        goto done;
    if (paced(s, m, NULL, opt.samples, &L->db_med, &L->db_p99, &L->db_rtt) ||
        paced(s, m, m->portid, opt.samples, &L->msg_med, &L->msg_p99,
              &L->msg_rtt) ||
        paced(s, m, relay, opt.samples, &L->rel_med, &L->rel_p99, &L->rel_rtt))
        goto done;
    cmd(s, "dbburst lat %ld", opt.samples);
    const char *r = expect(s, "done ", 60000);
    if (!r || sscanf(r, "%lf", &L->burst_s) != 1 ||
        samples(m, opt.samples, &L->burst_med, &L->burst_p99))
        goto done;
    rc = 0;
done:
    kill_all();
    free(g1), free(g2), free(s), free(m);
    return rc;
}

static double med_of(const double *v, int n)
{
    return median(v, n);
}

/* The median over runs of one field of lat_t. */
#define LMED(L, n, expr)                                                       \
    ({                                                                         \
        double v_[MAX_RUNS];                                                   \
        for (int i_ = 0; i_ < (n); i_++) {                                     \
            const lat_t *l = &(L)[i_];                                         \
            v_[i_] = (expr);                                                   \
        }                                                                      \
        med_of(v_, (n));                                                       \
    })

static void latency(void)
{
    int modes[2], nmodes = 0;
    if (strcmp(opt.pin, "off"))
        modes[nmodes++] = 1;
    if (strcmp(opt.pin, "on"))
        modes[nmodes++] = 0;
    printf("\n== 1. db_set -> db_mon latency (3 nodes on loopback; %ld "
           "samples per run, %d runs)\n",
           opt.samples, opt.runs);
    for (int mi = 0; mi < nmodes; mi++) {
        int pin = modes[mi];
        lat_t L[2][MAX_RUNS];
        int ok[2] = {0, 0};
        printf("-- %s\n", pin ? "all processes on CPU 0" : "unpinned");
        for (int run = 0; run < opt.runs; run++)
            for (int v = 0; v < 2; v++) {
                lat_t *l = &L[v][ok[v]];
                if (latency_run(v, pin, l) < 0)
                    continue;
                printf("  run %d %-10s db_set->db_mon %6.1f us (p99 %6.1f) | "
                       "one hop %5.1f (p99 %5.1f) | relayed %5.1f (p99 %5.1f) "
                       "| burst %.1f ms\n",
                       run + 1, v ? "replicated" : "one global", l->db_med,
                       l->db_p99, l->msg_med, l->msg_p99, l->rel_med,
                       l->rel_p99, l->burst_s * 1e3);
                fflush(stdout);
                ok[v]++;
            }
        for (int v = 0; v < 2; v++) {
            int n = ok[v];
            const lat_t *R = L[v];
            if (!n)
                continue;
            printf("  median of %d runs, %s:\n", n,
                   v ? "replicated, S -> G1 -> G2 -> M"
                     : "one global node, S -> G -> M");
            printf("    db_set -> db_mon, paced:        median %6.1f us, p99 "
                   "%6.1f us (S's round trip to the ack %.1f us)\n",
                   LMED(R, n, l->db_med), LMED(R, n, l->db_p99),
                   LMED(R, n, l->db_rtt));
            printf("    one hop S -> M, aemp_snd:       median %6.1f us, p99 "
                   "%6.1f us (round trip %.1f us)\n",
                   LMED(R, n, l->msg_med), LMED(R, n, l->msg_p99),
                   LMED(R, n, l->msg_rtt));
            printf("    same path relayed, aemp_snd:    median %6.1f us, p99 "
                   "%6.1f us (round trip %.1f us)\n",
                   LMED(R, n, l->rel_med), LMED(R, n, l->rel_p99),
                   LMED(R, n, l->rel_rtt));
            printf("    => db_set -> db_mon = %.2f x one-hop latency (p99 "
                   "%.2f x); = %.2f x the same path as plain messages (p99 "
                   "%.2f x)\n",
                   LMED(R, n, l->db_med / l->msg_med),
                   LMED(R, n, l->db_p99 / l->msg_p99),
                   LMED(R, n, l->db_med / l->rel_med),
                   LMED(R, n, l->db_p99 / l->rel_p99));
            printf("    burst of %ld db_set at once: %.2f ms until M saw the "
                   "last (%.0f k changes/s); one-way median %.0f us, p99 "
                   "%.0f us\n",
                   opt.samples, LMED(R, n, l->burst_s * 1e3),
                   LMED(R, n, (double)opt.samples / l->burst_s / 1e3),
                   LMED(R, n, l->burst_med), LMED(R, n, l->burst_p99));
        }
    }
}

/* ---- 2. snapshot --------------------------------------------------------- */

typedef struct snapfig {
    double load_s, reg_s;
    double heap_per_key, rss_per_key, heap_per_reg, rss_per_reg;
    double snap_s, query_s, query_svc_s, change_med, change_p99;
    double heap0, rss0, heap1, rss1; /* MiB, before and after the keys */
    double monload_g, monload_m;     /* --mon-keys into a monitored family */
} snapfig_t;

static int mem_of(proc_t *g, double *heap, double *rss)
{
    cmd(g, "mem");
    const char *r = expect(g, "mem ", 10000);
    return r && sscanf(r, "%lf %lf", heap, rss) == 2 ? 0 : -1;
}

static int snapshot_run(snapfig_t *F)
{
    proc_t *g = calloc(1, sizeof *g), *r = calloc(1, sizeof *r),
           *m = calloc(1, sizeof *m);
    int rc = -1, base = next_port;
    char seeds[32];
    const char *l;
    double h0, r0, h1, r1, h2, r2;
    size_t size;
    next_port += 3;
    snprintf(seeds, sizeof seeds, "%d", base);
    spawn_node(g, "G", base, 1, "-", 0);
    if (wait_ready(g))
        goto done;
    spawn_node(r, "R", base + 1, 0, seeds, 0);
    spawn_node(m, "M", base + 2, 0, seeds, 0);
    if (wait_ready(r) || wait_ready(m) || mem_of(g, &h0, &r0))
        goto done;
    cmd(r, "load big %ld", opt.keys);
    if (!(l = expect(r, "loaded ", 120000)) ||
        sscanf(l, "%lf", &F->load_s) != 1 || mem_of(g, &h1, &r1))
        goto done;
    cmd(r, "reg svc %ld", opt.ports);
    if (!(l = expect(r, "registered ", 60000)) ||
        sscanf(l, "%lf", &F->reg_s) != 1 || mem_of(g, &h2, &r2))
        goto done;
    F->heap0 = h0 / 1048576, F->rss0 = r0 / 1024;
    F->heap1 = h1 / 1048576, F->rss1 = r1 / 1024;
    F->heap_per_key = (h1 - h0) / (double)opt.keys;
    F->rss_per_key = (r1 - r0) * 1024 / (double)opt.keys;
    F->heap_per_reg = (h2 - h1) / (double)opt.ports;
    F->rss_per_reg = (r2 - r1) * 1024 / (double)opt.ports;
    cmd(m, "snap big");
    if (!(l = expect(m, "snap ", 120000)) ||
        sscanf(l, "%lf %zu", &F->snap_s, &size) != 2)
        goto done;
    if (size != (size_t)opt.keys) {
        fail("snapshot of big: %zu keys, expected %ld", size, opt.keys);
        goto done;
    }
    cmd(m, "query big");
    if (!(l = expect(m, "query ", 120000)) ||
        sscanf(l, "%lf %zu", &F->query_s, &size) != 2)
        goto done;
    if (size != (size_t)opt.keys) {
        fail("db_family big: %zu keys, expected %ld", size, opt.keys);
        goto done;
    }
    cmd(m, "query svc");
    if (!(l = expect(m, "query ", 120000)) ||
        sscanf(l, "%lf %zu", &F->query_svc_s, &size) != 2)
        goto done;
    if (size != (size_t)opt.ports) {
        fail("db_family svc: %zu keys, expected %ld", size, opt.ports);
        goto done;
    }
    /* single changes of the big family, M monitoring it */
    cmd(m, "watch big %s", r->portid);
    if (!expect(m, "watching ", 120000))
        goto done;
    cmd(r, "dbping big 20 1");
    if (!(l = expect(r, "done ", 120000)) ||
        samples(m, 20, &F->change_med, &F->change_p99))
        goto done;
    /* --mon-keys keys loaded into a family M monitors: until G holds them
     * (R's barrier), until M's db_mon saw them all */
    cmd(m, "monsize mon %ld", opt.mon_keys);
    if (!expect(m, "watching ", 10000))
        goto done;
    cmd(r, "load mon %ld", opt.mon_keys);
    long long t_start, t_full;
    if (!(l = expect(r, "loaded ", 120000)) ||
        sscanf(l, "%lf %lld", &F->monload_g, &t_start) != 2 ||
        !(l = expect(m, "full ", 120000)) || sscanf(l, "%lld", &t_full) != 1)
        goto done;
    F->monload_m = (double)(t_full - t_start) / 1e9;
    rc = 0;
done:
    kill_all();
    free(g), free(r), free(m);
    return rc;
}

static void snapshot(void)
{
    snapfig_t F[MAX_RUNS];
    int n = 0;
    printf("\n== 2. a large database: %ld keys in one family (db_set), %ld "
           "ports registered (db_reg) in another; %d runs, fresh processes "
           "each\n",
           opt.keys, opt.ports, opt.runs);
    for (int run = 0; run < opt.runs; run++) {
        snapfig_t *f = &F[n];
        if (snapshot_run(f) < 0)
            continue;
        printf("  run %d  G heap %.1f -> %.1f MiB, RSS %.1f -> %.1f MiB\n",
               run + 1, f->heap0, f->heap1, f->rss0, f->rss1);
        printf("  run %d  load %.3f s, G per key: heap %.0f B, RSS %.0f B; "
               "db_reg of %ld ports %.1f ms, per port: heap %.0f B; "
               "snapshot %.1f ms; db_family %.1f ms (svc %.2f ms); change "
               "of big: median %.2f ms, p99 %.2f; %ld keys into a monitored "
               "family: G %.3f s, M %.3f s\n",
               run + 1, f->load_s, f->heap_per_key, f->rss_per_key, opt.ports,
               f->reg_s * 1e3, f->heap_per_reg, f->snap_s * 1e3,
               f->query_s * 1e3, f->query_svc_s * 1e3, f->change_med / 1e3,
               f->change_p99 / 1e3, opt.mon_keys, f->monload_g, f->monload_m);
        fflush(stdout);
        n++;
    }
    if (!n)
        return;
    double v[13][MAX_RUNS];
    for (int i = 0; i < n; i++) {
        v[0][i] = F[i].load_s, v[1][i] = F[i].heap_per_key;
        v[2][i] = F[i].rss_per_key, v[3][i] = F[i].heap_per_reg;
        v[4][i] = F[i].rss_per_reg, v[5][i] = F[i].snap_s;
        v[6][i] = F[i].query_s, v[7][i] = F[i].query_svc_s;
        v[8][i] = F[i].change_med, v[9][i] = F[i].change_p99;
        v[10][i] = F[i].reg_s;
        v[11][i] = F[i].monload_g, v[12][i] = F[i].monload_m;
    }
    printf("  median of %d runs:\n", n);
    printf("    loading %ld keys from R until G holds them: %.3f s (%.0f k "
           "db_set/s)\n",
           opt.keys, med_of(v[0], n), (double)opt.keys / med_of(v[0], n) / 1e3);
    printf("    memory per entry on the global node: heap %.0f B, RSS %.0f B "
           "(db_set keys); heap %.0f B, RSS %.0f B (db_reg ports)\n",
           med_of(v[1], n), med_of(v[2], n), med_of(v[3], n), med_of(v[4], n));
    printf("    db_reg of %ld ports until G holds them: %.1f ms\n", opt.ports,
           med_of(v[10], n) * 1e3);
    printf("    full snapshot for a new db_mon on M (%ld keys): %.1f ms\n",
           opt.keys, med_of(v[5], n) * 1e3);
    printf("    db_family query from M: %.1f ms (%ld keys), %.2f ms (%ld "
           "ports)\n",
           med_of(v[6], n) * 1e3, opt.keys, med_of(v[7], n) * 1e3, opt.ports);
    printf("    one change of the monitored %ld-key family, db_set on R -> "
           "db_mon on M: median %.2f ms, p99 %.2f ms\n",
           opt.keys, med_of(v[8], n) / 1e3, med_of(v[9], n) / 1e3);
    printf("    %ld keys db_set into a family M monitors: G holds them after "
           "%.3f s, M's db_mon has seen them all after %.3f s\n",
           opt.mon_keys, med_of(v[11], n), med_of(v[12], n));
}

/* 2b. A monitor of the big family loses its master: G1 and G2 global, M
 * attached to one of them (seeds: both), R to the other (seed: that one
 * only) holding --keys keys; M's db_mon("big") has its snapshot; opt.settle
 * seconds after M attached (see 3. for why), M's master is killed
 * (SIGKILL).  Times from the kill: M re-attached (aemp_master), and M's
 * db_mon reporting the new master's view (the difference to the old one:
 * nothing, here).  Returns the two in ms, and the snapshot time through
 * replication (R -> G_R -> G_M -> M). */
static int failover_run(double *reattach_ms, double *view_ms, double *snap_ms)
{
    proc_t *g[2] = {calloc(1, sizeof(proc_t)), calloc(1, sizeof(proc_t))};
    proc_t *r = calloc(1, sizeof *r), *m = calloc(1, sizeof *m);
    int rc = -1, base = next_port;
    char seeds[64];
    const char *l;
    long long t, size;
    next_port += 4;
    snprintf(seeds, sizeof seeds, "%d,%d", base, base + 1);
    spawn_node(g[0], "G1", base, 1, seeds, 0);
    spawn_node(g[1], "G2", base + 1, 1, seeds, 0);
    if (wait_ready(g[0]) || wait_ready(g[1]))
        goto done;
    for (int i = 0;; i++) { /* the two global nodes are linked */
        cmd(g[0], "links");
        if (!(l = expect(g[0], "links ", 5000)))
            goto done;
        if (atoi(l) >= 1)
            break;
        if (i == 500) {
            fail("G1 and G2 not linked");
            goto done;
        }
        usleep(10000);
    }
    spawn_node(m, "M", base + 3, 0, seeds, 0);
    if (wait_ready(m))
        goto done;
    int64_t t_attach = mono_ns();
    int mi = strcmp(m->master, g[0]->id) ? 1 : 0;
    snprintf(seeds, sizeof seeds, "%d", g[1 - mi]->port);
    spawn_node(r, "R", base + 2, 0, seeds, 0);
    if (wait_ready(r))
        goto done;
    cmd(r, "load big %ld", opt.keys);
    if (!expect(r, "loaded ", 120000))
        goto done;
    /* R's master holds them; M's gets them by replication, a little later
     * (eventual consistency): M subscribes once it holds all */
    for (int i = 0;; i++) {
        double qs;
        cmd(g[mi], "query big");
        if (!(l = expect(g[mi], "query ", 120000)) ||
            sscanf(l, "%lf %lld", &qs, &size) != 2)
            goto done;
        if (size == opt.keys)
            break;
        if (i == 3000) {
            fail("%s holds %lld of %ld keys", g[mi]->name, size, opt.keys);
            goto done;
        }
        usleep(10000);
    }
    int64_t t0 = mono_ns();
    cmd(m, "mon big");
    if (!(l = expect(m, "fam big ", 120000)) ||
        sscanf(l, "%lld %lld", &t, &size) != 2)
        goto done;
    *snap_ms = (double)(t - t0) / 1e6;
    if (size != opt.keys) {
        fail("M's snapshot: %lld keys, expected %ld", size, opt.keys);
        goto done;
    }
    int64_t wait = t_attach + (int64_t)(opt.settle * 1e9) - mono_ns();
    if (wait > 0)
        usleep((useconds_t)(wait / 1000));
    int64_t t_kill = mono_ns();
    kill(g[mi]->pid, SIGKILL);
    waitpid(g[mi]->pid, NULL, 0);
    g[mi]->alive = 0;
    if (!expect(m, "lost ", 60000) || !(l = expect(m, "master ", 60000)) ||
        sscanf(l, "%lld", &t) != 1)
        goto done;
    *reattach_ms = (double)(t - t_kill) / 1e6;
    if (!(l = expect(m, "fam big ", 120000)) ||
        sscanf(l, "%lld %lld", &t, &size) != 2)
        goto done;
    *view_ms = (double)(t - t_kill) / 1e6;
    if (size != opt.keys) {
        fail("M's view after the master change: %lld keys, expected %ld", size,
             opt.keys);
        goto done;
    }
    rc = 0;
done:
    kill_all();
    free(g[0]), free(g[1]), free(r), free(m);
    return rc;
}

static void failover(void)
{
    double re[MAX_RUNS], vi[MAX_RUNS], sn[MAX_RUNS];
    int n = 0;
    if (!opt.failover_runs)
        return;
    printf("\n== 2b. a monitor of a %ld-key family whose master is killed "
           "(2 global nodes; %d runs)\n",
           opt.keys, opt.failover_runs);
    for (int run = 0; run < opt.failover_runs; run++) {
        if (failover_run(&re[n], &vi[n], &sn[n]) < 0)
            continue;
        printf("  run %d  snapshot through replication %.1f ms; after the "
               "kill: M re-attached %.1f ms, M's db_mon with the new "
               "master's view %.1f ms\n",
               run + 1, sn[n], re[n], vi[n]);
        fflush(stdout);
        n++;
    }
    if (n)
        printf("  median of %d runs: snapshot (R -> G_R -> G_M -> M) %.1f ms; "
               "after the kill of M's master: re-attached %.1f ms, db_mon's "
               "new view %.1f ms\n",
               n, med_of(sn, n), med_of(re, n), med_of(vi, n));
}

/* ---- 3. network ---------------------------------------------------------- */

typedef struct netfig {
    double up_s;   /* all ordinary nodes attached */
    double full_s; /* the database complete on every global */
    double links_ord_max, links_ord_med, links_glob_med;
    int attached[3], victim, orphans;
    double detect_ms, reattach_ms, db_ms, conv_ms;
    double reattach_first_ms; /* the first orphan's */
    double after_ord_max, after_glob_med;
} netfig_t;

/* "links N ..." of every proc in ps (alive ones) into counts */
static int count_links(proc_t **ps, int n, int *counts)
{
    for (int i = 0; i < n; i++)
        if (ps[i] && ps[i]->alive)
            cmd(ps[i], "links");
    for (int i = 0; i < n; i++) {
        counts[i] = -1;
        if (!ps[i] || !ps[i]->alive)
            continue;
        for (;;) {
            proc_t *q = next_any(&ps[i], 1, 10000);
            if (!q) {
                fail("%s: no links answer", ps[i]->name);
                return -1;
            }
            long long t;
            if (strncmp(q->line, "links ", 6) == 0) {
                counts[i] = atoi(q->line + 6);
                break;
            }
            /* a master change is kept; fam lines are not needed here */
            sscanf(q->line, "master %lld %127s", &t, q->master);
        }
    }
    return 0;
}

static double med_int(const int *v, int n, int skip_neg)
{
    double *d = malloc((size_t)n * sizeof *d);
    size_t k = 0;
    for (int i = 0; i < n; i++)
        if (!skip_neg || v[i] >= 0)
            d[k++] = v[i];
    double r = quantile(d, k, 0.5);
    free(d);
    return r;
}

static int network_run(netfig_t *F, double settle)
{
    int N = opt.nodes, NG = 3, nord = N - NG, rc = -1;
    proc_t **ps = calloc((size_t)N, sizeof *ps);
    int *counts = calloc((size_t)N, sizeof *counts);
    int base = next_port;
    next_port += N;
    for (int i = 0; i < N; i++)
        ps[i] = calloc(1, sizeof *ps[i]);
    char gseeds[3][64];
    for (int r = 0; r < 3; r++)
        snprintf(gseeds[r], sizeof gseeds[r], "%d,%d,%d", base + r,
                 base + (r + 1) % 3, base + (r + 2) % 3);
    for (int i = 0; i < NG; i++) {
        char name[16];
        snprintf(name, sizeof name, "G%d", i);
        spawn_node(ps[i], name, base + i, 1, gseeds[0], 0);
    }
    for (int i = 0; i < NG; i++)
        if (wait_ready(ps[i]))
            goto done;
    for (int i = 0; i < NG; i++) {
        cmd(ps[i], "mon net");
        if (!expect(ps[i], "fam net ", 10000))
            goto done;
    }
    /* the global nodes linked to each other */
    for (int tries = 0;; tries++) {
        if (count_links(ps, NG, counts))
            goto done;
        if (counts[0] >= 2 && counts[1] >= 2 && counts[2] >= 2)
            break;
        if (tries > 500) {
            fail("global nodes not linked to each other: %d %d %d", counts[0],
                 counts[1], counts[2]);
            goto done;
        }
        usleep(10000);
    }
    int64_t t_start = mono_ns();
    for (int i = NG; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "N%d", i);
        spawn_node(ps[i], name, base + i, 0, gseeds[i % 3], 0);
    }
    /* every node's ready line, and the global nodes' family sizes */
    int nready = 0, last[3] = {0, 0, 0};
    int64_t t_full = 0;
    while (nready < nord || last[0] < nord || last[1] < nord ||
           last[2] < nord) {
        proc_t *q = next_any(ps, N, 20000);
        if (!q) {
            fail("network not up: %d of %d ordinary nodes attached, family "
                 "sizes on the global nodes %d %d %d",
                 nready, nord, last[0], last[1], last[2]);
            goto done;
        }
        int gi;
        for (gi = 0; gi < NG && ps[gi] != q; gi++)
            ;
        long long t;
        int size;
        if (strncmp(q->line, "ready ", 6) == 0 && !q->global) {
            sscanf(q->line + 6, "%*s %127s %191s", q->master, q->portid);
            q->ready = 1;
            nready++;
            if (nready == nord)
                F->up_s = (double)(mono_ns() - t_start) / 1e9;
            cmd(q, "set net - %d", q->port - base);
        } else if (gi < NG &&
                   sscanf(q->line, "fam net %lld %d", &t, &size) == 2) {
            last[gi] = size;
            if (size == nord)
                t_full = t;
        } else if (strcmp(q->line, "ok") != 0) {
            printf("    | %s: %s\n", q->name, q->line);
        }
    }
    F->full_s = (double)(t_full - t_start) / 1e9;
    usleep(300000); /* let released seed links close */
    if (count_links(ps, N, counts))
        goto done;
    int ordc[MAXNODES], nordc = 0;
    F->links_ord_max = 0;
    for (int i = NG; i < N; i++) {
        ordc[nordc++] = counts[i];
        if (counts[i] > F->links_ord_max)
            F->links_ord_max = counts[i];
    }
    F->links_ord_med = med_int(ordc, nordc, 0);
    F->links_glob_med = med_int(counts, NG, 0);
    if (settle > 0.3)
        usleep((useconds_t)((settle - 0.3) * 1e6));
    /* who is attached to whom; the victim: the global with the most */
    memset(F->attached, 0, sizeof F->attached);
    for (int i = NG; i < N; i++)
        for (int g = 0; g < NG; g++)
            if (!strcmp(ps[i]->master, ps[g]->id))
                F->attached[g]++;
    int v = 0;
    for (int g = 1; g < NG; g++)
        if (F->attached[g] > F->attached[v])
            v = g;
    F->victim = v;
    F->orphans = F->attached[v];
    char victim_id[64];
    snprintf(victim_id, sizeof victim_id, "%s", ps[v]->id);
    for (int i = NG; i < N; i++)
        ps[i]->orphan = !strcmp(ps[i]->master, victim_id);
    int64_t t_kill = mono_ns();
    kill(ps[v]->pid, SIGKILL);
    waitpid(ps[v]->pid, NULL, 0);
    ps[v]->alive = 0;
    /* orphans: lost and new master; remaining globals: family complete */
    int64_t t_lost_max = 0, t_master_max = 0, t_db = t_kill;
    double det[MAXNODES], rea[MAXNODES];
    int ndet = 0, nrea = 0, pending = F->orphans;
    int64_t quiet_since = 0;
    for (int g = 0; g < NG; g++)
        last[g] = g == v ? nord : last[g];
    for (;;) {
        int done_now = pending == 0;
        for (int g = 0; g < NG; g++)
            done_now &= last[g] == nord;
        if (done_now && !quiet_since)
            quiet_since = mono_ns();
        if (!done_now)
            quiet_since = 0;
        if (done_now && mono_ns() - quiet_since > 500000000)
            break;
        proc_t *q = next_any(ps, N, done_now ? 100 : 30000);
        if (!q) {
            if (done_now)
                continue;
            fail("no convergence after the kill of %s: %d of %d orphans "
                 "without a master, family sizes %d %d %d (want %d)",
                 victim_id, pending, F->orphans, last[0], last[1], last[2],
                 nord);
            goto done;
        }
        int gi;
        for (gi = 0; gi < NG && ps[gi] != q; gi++)
            ;
        long long t;
        int size;
        char id[128];
        if (sscanf(q->line, "lost %lld %127s", &t, id) == 2) {
            if (strcmp(id, victim_id))
                printf("    | %s lost its master %s\n", q->name, id);
            det[ndet++] = (double)(t - t_kill) / 1e6;
            if (t > t_lost_max)
                t_lost_max = t;
        } else if (sscanf(q->line, "master %lld %127s", &t, id) == 2) {
            snprintf(q->master, sizeof q->master, "%s", id);
            if (!q->orphan) {
                printf("    | %s: a new master %s\n", q->name, id);
                continue;
            }
            q->orphan = 0; /* counted once */
            rea[nrea++] = (double)(t - t_kill) / 1e6;
            if (t > t_master_max)
                t_master_max = t;
            pending--;
        } else if (gi < NG &&
                   sscanf(q->line, "fam net %lld %d", &t, &size) == 2) {
            last[gi] = size;
            if (size == nord && t > t_db)
                t_db = t;
        } else {
            printf("    | %s: %s\n", q->name, q->line);
        }
    }
    F->detect_ms = quantile(det, (size_t)ndet, 1);
    F->reattach_ms = quantile(rea, (size_t)nrea, 1);
    F->reattach_first_ms = quantile(rea, (size_t)nrea, 0);
    F->db_ms = (double)(t_db - t_kill) / 1e6;
    F->conv_ms = F->db_ms > F->reattach_ms ? F->db_ms : F->reattach_ms;
    usleep(300000);
    if (count_links(ps, N, counts))
        goto done;
    F->after_ord_max = 0;
    nordc = 0;
    for (int i = NG; i < N; i++) {
        ordc[nordc++] = counts[i];
        if (counts[i] > F->after_ord_max)
            F->after_ord_max = counts[i];
    }
    int gc[3], ngc = 0;
    for (int g = 0; g < NG; g++)
        if (g != v)
            gc[ngc++] = counts[g];
    F->after_glob_med = med_int(gc, ngc, 0);
    for (int i = NG; i < N; i++)
        if (!strcmp(ps[i]->master, victim_id) || !ps[i]->master[0]) {
            fail("%s still has master %s", ps[i]->name, ps[i]->master);
            goto done;
        }
    rc = 0;
done:
    kill_all();
    for (int i = 0; i < N; i++)
        free(ps[i]);
    free(ps);
    free(counts);
    return rc;
}

static void net_print(int run, const netfig_t *f)
{
    printf("  run %d  up %.2f s, db complete %.2f s; links: ordinary median "
           "%.0f max %.0f, global median %.0f; attached %d/%d/%d; killed G%d "
           "(%d attached): loss seen by all after %.1f ms, re-attached "
           "%.1f-%.1f ms, db complete %.1f ms; after: ordinary max %.0f, "
           "global %.0f links\n",
           run, f->up_s, f->full_s, f->links_ord_med, f->links_ord_max,
           f->links_glob_med, f->attached[0], f->attached[1], f->attached[2],
           f->victim, f->orphans, f->detect_ms, f->reattach_first_ms,
           f->reattach_ms, f->db_ms, f->after_ord_max, f->after_glob_med);
    fflush(stdout);
}

static void net_summary(const netfig_t *F, int n, double settle)
{
    double v[11][MAX_RUNS];
    for (int i = 0; i < n; i++) {
        v[0][i] = F[i].links_ord_med, v[1][i] = F[i].links_ord_max;
        v[2][i] = F[i].links_glob_med, v[3][i] = F[i].reattach_ms;
        v[4][i] = F[i].db_ms, v[5][i] = F[i].conv_ms;
        v[6][i] = F[i].up_s, v[7][i] = F[i].detect_ms;
        v[8][i] = F[i].orphans, v[9][i] = F[i].after_ord_max;
        v[10][i] = F[i].after_glob_med;
    }
    printf("  median of %d runs (kill %.1f s after all attached):\n", n,
           settle);
    printf("    links per ordinary node (aemp_up_nodes): median %.0f, max "
           "%.0f (of %d nodes); per global node: median %.0f (the 2 other "
           "globals + its attached nodes)\n",
           med_of(v[0], n), med_of(v[1], n), opt.nodes, med_of(v[2], n));
    printf("    %d processes started until all attached: %.2f s\n", opt.nodes,
           med_of(v[6], n));
    printf("    after SIGKILL of a global node (%.0f nodes attached to it): "
           "loss seen by all %.1f ms, all re-attached %.1f ms, database "
           "complete on both remaining globals %.1f ms => converged %.1f ms\n",
           med_of(v[8], n), med_of(v[7], n), med_of(v[3], n), med_of(v[4], n),
           med_of(v[5], n));
    printf("    links after: ordinary max %.0f, global median %.0f\n",
           med_of(v[9], n), med_of(v[10], n));
}

static void network(void)
{
    netfig_t F[MAX_RUNS];
    int n = 0;
    printf("\n== 3. a network of %d node processes, 3 of them global "
           "(monitor_timeout %g s); %d runs, a fresh network each, the kill "
           "%.1f s after all attached\n",
           opt.nodes, opt.monitor_timeout, opt.net_runs, opt.settle);
    for (int run = 0; run < opt.net_runs; run++)
        if (network_run(&F[n], opt.settle) == 0)
            net_print(run + 1, &F[n++]);
    if (n)
        net_summary(F, n, opt.settle);
    if (!opt.early_runs)
        return;
    /* The same, killed 0.3 s after the network came up: within
     * connect_interval (2 s +-25%) of the moment the ordinary nodes closed
     * their idle links to the other global seeds, whose reconnection
     * back-off then delays the re-attachment (see RESULTS.md). */
    printf("-- the same, the kill 0.3 s after all attached (%d run%s)\n",
           opt.early_runs, opt.early_runs > 1 ? "s" : "");
    n = 0;
    for (int run = 0; run < opt.early_runs; run++)
        if (network_run(&F[n], 0.3) == 0)
            net_print(run + 1, &F[n++]);
    if (n)
        net_summary(F, n, 0.3);
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_global [--runs N] [--only latency|snapshot|network]\n"
            "                    [--samples N] [--keys N] [--ports N] "
            "[--mon-keys N]\n"
            "                    [--failover-runs N] [--nodes N] "
            "[--net-runs N]\n"
            "                    [--early-runs N] [--settle S] "
            "[--monitor-timeout S]\n"
            "                    [--pin on|off|both]\n");
    exit(2);
}

static void parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--runs"))
            opt.runs = atoi(v);
        else if (!strcmp(a, "--only"))
            opt.only = v;
        else if (!strcmp(a, "--samples"))
            opt.samples = atol(v);
        else if (!strcmp(a, "--keys"))
            opt.keys = atol(v);
        else if (!strcmp(a, "--mon-keys"))
            opt.mon_keys = atol(v);
        else if (!strcmp(a, "--ports"))
            opt.ports = atol(v);
        else if (!strcmp(a, "--nodes"))
            opt.nodes = atoi(v);
        else if (!strcmp(a, "--net-runs"))
            opt.net_runs = atoi(v);
        else if (!strcmp(a, "--monitor-timeout"))
            opt.monitor_timeout = atof(v);
        else if (!strcmp(a, "--failover-runs"))
            opt.failover_runs = atoi(v);
        else if (!strcmp(a, "--early-runs"))
            opt.early_runs = atoi(v);
        else if (!strcmp(a, "--settle"))
            opt.settle = atof(v);
        else if (!strcmp(a, "--pin"))
            opt.pin = v;
        else
            usage();
    }
    if (opt.runs < 1 || opt.runs > MAX_RUNS || opt.net_runs < 1 ||
        opt.net_runs > MAX_RUNS || opt.early_runs < 0 ||
        opt.failover_runs < 0 || opt.failover_runs > MAX_RUNS ||
        opt.early_runs > MAX_RUNS || opt.settle < 0.3 || opt.samples < 1 ||
        opt.keys < 1 || opt.ports < 1 || opt.mon_keys < 1 || opt.nodes < 4 ||
        opt.nodes > MAXNODES || opt.monitor_timeout <= 0 ||
        (strcmp(opt.pin, "on") && strcmp(opt.pin, "off") &&
         strcmp(opt.pin, "both")) ||
        (opt.only && strcmp(opt.only, "latency") &&
         strcmp(opt.only, "snapshot") && strcmp(opt.only, "network")))
        usage();
}

/* A random stretch of ports below the kernel's ephemeral ones (as
 * bench_net: listeners there collide with TIME_WAIT sockets). */
static int first_port(void)
{
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f && fscanf(f, "%d %d", &lo, &hi) != 2)
        lo = 32768;
    if (f)
        fclose(f);
    if (lo > 12000)
        return 10000 + rand() % (lo - 12000);
    return hi + 1000 < 64000 ? hi + 1 + rand() % (64000 - hi - 1000) : 1024;
}

static int wanted(const char *part)
{
    return !opt.only || !strcmp(opt.only, part);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--node"))
        return node_main(argc, argv);
    parse(argc, argv);
    ssize_t len = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (len <= 0)
        return 2;
    self_exe[len] = 0;
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    next_port = first_port();
    int64_t t0 = mono_ns();
    printf("bench_global: node processes on 127.0.0.1, hmac_sha3_512 links "
           "(shared secret), CBOR; medians of runs\n");
    print_load("start");
    if (wanted("latency"))
        latency();
    if (wanted("snapshot")) {
        snapshot();
        failover();
    }
    if (wanted("network"))
        network();
    print_load("end");
    printf("total %.1f s\n", (double)(mono_ns() - t0) / 1e9);
    if (failures)
        printf("\n%d FAILURES\n", failures);
    return failures ? 1 : 0;
}
