/* net_aemp: the aemp side of bench_net — one node per process, talking
 * over loopback through the public API only.  bench_net starts two of
 * these (a receiver, then a sender that names the receiver's port) and
 * reads the one-line results they print.
 *
 *   net_aemp recv PORT FRAMING
 *       public node on 127.0.0.1:PORT; prints "port <port ID>" when
 *       listening.  Its port's "tag" callback counts; a "hello" message
 *       [hello, reply-port, count, mode] starts a run: mode 0 counts and
 *       sends [done, receiver-CPU-seconds] after `count` messages, mode 1
 *       answers every message (ping-pong), mode 2 stops this process
 *       (SIGSTOP) at the first message: a receiver that reads nothing more,
 *       mode 3 is the unpaced flood (below): it counts, samples its count
 *       against CLOCK_MONOTONIC every 1024 messages, with count N > 0
 *       also sends itself a local ["mark"] every N messages (what a real
 *       receiver does when its callback forwards or posts work locally:
 *       it puts an item in the node's dispatch queue, and while anything
 *       is queued, arriving packets queue behind it instead of being
 *       delivered straight from the read callback), and on
 *       [end, sent, t0, t1] (which comes behind the last message) answers
 *       [fdone, receiver-CPU-s, VmHWM-kB, VmRSS-kB-at-hello, VmRSS-kB,
 *       delivered-by-t1, delivered, time-of-last-delivery, curve], curve
 *       the delivery rate in each tenth of the window (M/s, text); then it
 *       ends itself when the sender's link goes down (so that a profiler
 *       wrapped around it gets to write its data).
 *   net_aemp send PORTID FRAMING COUNT WINDOW
 *       floods COUNT messages ["tag", 12345, "sixteen-byte-str"], pacing
 *       itself: whenever aemp_backlog() exceeds WINDOW bytes it waits for
 *       aemp_flush() (WINDOW 0: no pacing).  Prints
 *       "result <wall-s> <sender-CPU-s> <receiver-CPU-s>".
 *   net_aemp ping PORTID FRAMING COUNT
 *       COUNT round trips of the same message; prints "result <wall-s> ...".
 *   net_aemp flood PORTID FRAMING SECONDS LIMIT POST
 *       the unpaced flood: sends for SECONDS without waiting for anything
 *       from the receiver, keeping only under the library's max_backlog
 *       (where the link would be dropped by design): a batch whenever
 *       aemp_backlog() < LIMIT bytes, otherwise a 1 ms timer (a "yield").
 *       POST is the receiver's N (above; 0: it only counts).
 *       Then [end, ...] and, on [fdone, ...], prints
 *       "flood <window-s> <sender-CPU-s> <sent> <yields> <downs>
 *       <receiver-CPU-s> <VmHWM-kB> <VmRSS0-kB> <VmRSS-kB> <by-t1>
 *       <delivered> <last-delivery-after-t0-s> <curve>".
 *   net_aemp stall PORTID FRAMING SECONDS WINDOW MAX_BACKLOG
 *       floods a receiver that stopped reading for SECONDS, then prints
 *       "mem <VmHWM-kB> <VmRSS-kB> <sent> <backlog> <downs> <reason>".
 *   net_aemp setup PORTID FRAMING COUNT
 *       COUNT authenticated link set-ups, one after the other, each by a
 *       fresh node on one loop: made and configured (not timed), then
 *       timed from its first message, ["knock", its port], through the
 *       dial, the handshake, the delivery and the receiver's ["welcome",
 *       receiver-CPU-s], to the node freed and its link closed.  One
 *       untimed set-up first (its link method is the one reported).
 *       Prints "nodecost <s per node made, configured and freed>" and
 *       "result <wall-s> <CPU-s> <receiver-CPU-s>" of the timed parts.
 *
 * With --tls first (net_aemp --tls recv ...), the node has the key and
 * certificate in the environment variable AEMP_BENCH_CERT (PEM text;
 * bench_net makes one at start) and no secret, and accepts and offers
 * tls_sha3_512 only: every link it makes or takes is TLS.  Without, the
 * node has a secret and no certificate: plain TCP with hmac_sha3_512.
 * The sending modes print "link <method and TLS version>" (from the
 * node's log) before their result, so that bench_net can check which
 * kind of link the figure is of.
 *
 * Timing starts when the receiver answered "hello" (the link is up and
 * the receiver is ready) and stops when the sender gets [done] or the last
 * answer: connection set-up is not measured, every message is (setup is
 * the mode that measures set-ups). */
#include <aemp.h>

#include <uv.h>

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 1000 /* messages per driver callback */

static const char TEXT[] = "sixteen-byte-str";
enum { INT_VAL = 12345 };

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define CHECK(expr) check_rc((expr), #expr, __LINE__)
static void check_rc(int rc, const char *what, int line)
{
    if (rc < 0) {
        fprintf(stderr, "net_aemp:%d: %s: %s\n", line, what,
                aemp_strerror(rc));
        exit(2);
    }
}

/* --tls: the certificate (AEMP_BENCH_CERT); NULL: plain links. */
static const char *tls_cert;

/* "hmac_sha3_512" or "tls_sha3_512 over TLSv1.3": the first link's, from
 * the log line "link to <node> up (<method>[ over <TLS>], sending ...)". */
static char link_info[128];

static void on_log(aemp_node_t *n, int level, const char *text, void *user)
{
    const char *p = strstr(text, " up (");
    (void)n, (void)user;
    if (level <= AEMP_LOG_WARN)
        fprintf(stderr, "net_aemp: %s\n", text);
    else if (!link_info[0] && p && strncmp(text, "link to ", 8) == 0)
        snprintf(link_info, sizeof link_info, "%.*s",
                 (int)strcspn(p + 5, ",)"), p + 5);
}

static aemp_node_t *net_node_on(uv_loop_t *loop, const char *framing,
                                size_t max_backlog, int log)
{
    aemp_node_t *n;
    aemp_netconf_t conf = {.secret = "aemp-bench",
                           .framings = framing,
                           .max_backlog = max_backlog};
    if (tls_cert) {
        conf.secret = NULL;
        conf.cert = tls_cert;
        conf.auth_accept = conf.auth_offer = "tls_sha3_512";
    }
    CHECK(aemp_node_new(&n, loop));
    if (log)
        aemp_node_set_log(n, AEMP_LOG_INFO, on_log, NULL);
    CHECK(aemp_node_configure(n, &conf));
    return n;
}

static aemp_node_t *net_node(const char *framing, size_t max_backlog)
{
    return net_node_on(NULL, framing, max_backlog, 1);
}

/* A field of /proc/self/status in kB (VmHWM, VmRSS); -1 if not there. */
static long status_kb(const char *field)
{
    char line[256];
    long kb = -1;
    size_t len = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':')
            kb = strtol(line + len + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* ---- receiver -------------------------------------------------------------- */

/* The unpaced flood's count samples: (CLOCK_MONOTONIC, delivered so far). */
#define SAMPLE_EVERY 1024
#define CURVE 10

struct sample {
    double t;
    int64_t got;
};

struct recv {
    aemp_node_t *node;
    char reply[256];
    int64_t want, got;
    int mode;
    double cpu0;
    /* mode 3 */
    const char *self;
    int64_t post, marks;
    struct sample *samples;
    size_t nsamples, cap;
    long rss0;
    int finished;
};

static void sample(struct recv *r)
{
    if (r->nsamples == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 4096;
        struct sample *s = realloc(r->samples, cap * sizeof *s);
        if (!s) {
            fprintf(stderr, "net_aemp: out of memory for samples\n");
            exit(2);
        }
        r->samples = s;
        r->cap = cap;
    }
    r->samples[r->nsamples++] =
        (struct sample){clock_s(CLOCK_MONOTONIC), r->got};
}

/* Messages delivered by time t (linear between the samples around it). */
static double delivered_by(const struct recv *r, double t)
{
    const struct sample *s = r->samples;
    size_t n = r->nsamples;
    if (!n || t < s[0].t)
        return 0;
    size_t lo = 0, hi = n; /* the last sample at or before t: lo */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (s[mid].t <= t)
            lo = mid;
        else
            hi = mid;
    }
    if (lo + 1 == n || s[lo + 1].t <= s[lo].t)
        return (double)s[lo].got;
    double f = (t - s[lo].t) / (s[lo + 1].t - s[lo].t);
    return (double)s[lo].got + f * (double)(s[lo + 1].got - s[lo].got);
}

static int recv_hello(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct recv *r = user;
    const char *reply;
    int64_t want;
    int mode;
    (void)ctx;
    int rc = aemp_msg_unpack(msg, "sIi", &reply, &want, &mode);
    if (rc < 0)
        return rc;
    snprintf(r->reply, sizeof r->reply, "%s", reply);
    r->want = want;
    r->mode = mode;
    r->got = 0;
    r->nsamples = 0;
    r->finished = 0;
    r->post = mode == 3 ? want : 0;
    r->marks = 0;
    r->rss0 = status_kb("VmRSS");
    r->cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    return aemp_snd(r->node, r->reply, "s", "ready");
}

static int recv_tag(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct recv *r = user;
    (void)ctx, (void)msg;
    r->got++;
    if (r->mode == 3) {
        if (r->got % SAMPLE_EVERY == 1)
            sample(r);
        if (r->post && r->got % r->post == 0)
            return aemp_snd(r->node, r->self, "s", "mark");
        return 0;
    }
    if (r->mode == 1)
        return aemp_snd(r->node, r->reply, "sis", "tag", INT_VAL, TEXT);
    if (r->mode == 2 && r->got == 1)
        raise(SIGSTOP);
    if (r->got != r->want)
        return 0;
    int i;
    const char *s;
    int ok = aemp_msg_unpack(msg, "is", &i, &s) == 0 && i == INT_VAL &&
             strcmp(s, TEXT) == 0;
    return aemp_snd(r->node, r->reply, "sdi", "done",
                    clock_s(CLOCK_PROCESS_CPUTIME_ID) - r->cpu0, ok);
}

/* [knock, reply-port]: a link set-up's first message. */
static int recv_knock(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct recv *r = user;
    const char *reply;
    (void)ctx;
    int rc = aemp_msg_unpack(msg, "s", &reply);
    if (rc < 0)
        return rc;
    return aemp_snd(r->node, reply, "sd", "welcome",
                    clock_s(CLOCK_PROCESS_CPUTIME_ID));
}

static int recv_mark(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct recv *r = user;
    (void)ctx, (void)msg;
    r->marks++;
    return 0;
}

/* [end, sent, t0, t1]: the unpaced flood's last message. */
static int recv_end(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct recv *r = user;
    int64_t sent;
    double t0, t1;
    (void)ctx;
    int rc = aemp_msg_unpack(msg, "Idd", &sent, &t0, &t1);
    if (rc < 0)
        return rc;
    sample(r); /* the last delivery: now */
    double last = r->samples[r->nsamples - 1].t;
    double rcpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - r->cpu0;
    char curve[CURVE * 16] = "", *p = curve;
    for (int i = 0; i < CURVE; i++) {
        double a = t0 + (t1 - t0) * i / CURVE, b = t0 + (t1 - t0) * (i + 1) / CURVE;
        double rate = (delivered_by(r, b) - delivered_by(r, a)) / (b - a) / 1e6;
        p += snprintf(p, sizeof curve - (size_t)(p - curve), "%s%.3f",
                      i ? "," : "", rate);
    }
    /* (the marks posted by the last deliveries may still be queued: the
     * [end] packet was queued when it was read) */
    if (sent != r->got)
        fprintf(stderr, "net_aemp: flood: %lld sent, %lld delivered\n",
                (long long)sent, (long long)r->got);
    r->finished = 1;
    return aemp_snd(r->node, r->reply, "sdIIIdIds", "fdone", rcpu,
                    (int64_t)status_kb("VmHWM"), (int64_t)r->rss0,
                    (int64_t)status_kb("VmRSS"), delivered_by(r, t1),
                    r->got, last - t0, curve);
}

/* After the unpaced flood the receiver ends when the sender goes. */
static void recv_node(aemp_node_t *n, const char *id, int up,
                      const aemp_msg_t *reason, void *user)
{
    struct recv *r = user;
    (void)id, (void)reason;
    if (!up && r->mode == 3)
        aemp_stop(n);
}

static int run_recv(const char *port, const char *framing)
{
    struct recv r = {.node = net_node(framing, 0)};
    char ref[64];
    const char *id;
    snprintf(ref, sizeof ref, "127.0.0.1:%s", port);
    CHECK(aemp_node_listen(r.node, ref));
    CHECK(aemp_port(r.node, NULL, NULL, &id));
    CHECK(aemp_rcv_tag(r.node, id, "hello", recv_hello, &r));
    CHECK(aemp_rcv_tag(r.node, id, "tag", recv_tag, &r));
    CHECK(aemp_rcv_tag(r.node, id, "end", recv_end, &r));
    CHECK(aemp_rcv_tag(r.node, id, "mark", recv_mark, &r));
    CHECK(aemp_rcv_tag(r.node, id, "knock", recv_knock, &r));
    r.self = id;
    CHECK(aemp_mon_nodes(r.node, recv_node, &r, NULL));
    printf("port %s\n", id);
    fflush(stdout);
    CHECK(aemp_run(r.node));
    free(r.samples);
    return 0;
}

/* ---- sender ---------------------------------------------------------------- */

struct send {
    aemp_node_t *node;
    const char *to, *self;
    char to_node[200];
    int64_t total, sent, got;
    size_t window;
    double t0, cpu0, wall, cpu, rcpu;
    int mode, ok;
    /* stall and flood modes */
    double seconds;
    int downs;
    char reason[200];
    /* flood mode */
    size_t limit;
    double t1;
    int64_t yields;
    int ended;
    double f_rcpu, f_by_t1, f_last;
    int64_t f_hwm, f_rss0, f_rss, f_got;
    char curve[200];
};

static int send_batch(struct send *s)
{
    int64_t n = s->total - s->sent < BATCH ? s->total - s->sent : BATCH;
    for (int64_t i = 0; i < n; i++)
        CHECK(aemp_snd(s->node, s->to, "sis", "tag", INT_VAL, TEXT));
    s->sent += n;
    return 0;
}

static void on_flushed(aemp_node_t *n, int status, void *user)
{
    struct send *s = user;
    if (status < 0) {
        fprintf(stderr, "net_aemp: flush: %s\n", aemp_strerror(status));
        exit(2);
    }
    CHECK(aemp_snd(n, s->self, "s", "more"));
}

static int stall_more(aemp_ctx_t *ctx, void *user);
static int flood_more(struct send *s);

/* One batch, then either straight on or, above WINDOW bytes of backlog,
 * after the link has written what is queued: the sender's memory stays
 * ~WINDOW.  Straight on is a message to itself, except against a stopped
 * receiver (mode 2), where it is a 1 ms timer with 10 batches per tick
 * (up to 10 M messages/s).  Why not a message: the node dispatches up to
 * its dispatch budget of queued items before the loop polls again (65536
 * when this was written, 4096 since), so a producer that re-arms itself by
 * message runs millions of sends before any I/O or timer.  Why
 * not a 0 s timer: libuv 1.44 runs a timer started from a timer callback
 * with timeout 0 in the same pass, forever (see RESULTS.md). */
static int send_more(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct send *s = user;
    (void)ctx, (void)msg;
    if (s->mode == 3)
        return flood_more(s);
    for (int i = 0; i < (s->mode == 2 ? 10 : 1); i++)
        send_batch(s);
    if (s->sent == s->total)
        return 0;
    if (s->window && aemp_backlog(s->node, s->to_node) > s->window)
        return aemp_flush(s->node, s->to_node, on_flushed, s);
    if (s->mode == 2)
        return aemp_after_call(s->node, 0.001, s->self, stall_more, s);
    return aemp_snd(s->node, s->self, "s", "more");
}

static int stall_more(aemp_ctx_t *ctx, void *user)
{
    return send_more(ctx, NULL, user);
}

static int flood_yield(aemp_ctx_t *ctx, void *user)
{
    (void)ctx;
    return flood_more(user);
}

/* The unpaced flood: a batch whenever the backlog is under the limit,
 * re-armed by a message to itself (the node runs up to its dispatch budget
 * of them before the loop polls again; the backlog check stops it first);
 * above the limit a 1 ms timer lets the loop write.  At the deadline
 * [end, sent, t0, t1] goes behind the last message. */
static int flood_more(struct send *s)
{
    double now = clock_s(CLOCK_MONOTONIC);
    if (s->ended)
        return 0;
    if (now >= s->t0 + s->seconds) {
        s->ended = 1;
        s->t1 = now;
        return aemp_snd(s->node, s->to, "sIdd", "end", s->sent, s->t0, now);
    }
    if (aemp_backlog(s->node, s->to_node) >= s->limit) {
        s->yields++;
        return aemp_after_call(s->node, 0.001, s->self, flood_yield, s);
    }
    send_batch(s);
    return aemp_snd(s->node, s->self, "s", "more");
}

static void finish(struct send *s)
{
    s->wall = clock_s(CLOCK_MONOTONIC) - s->t0;
    s->cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - s->cpu0;
    aemp_stop(s->node);
}

static int send_ready(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct send *s = user;
    (void)ctx, (void)msg;
    s->t0 = clock_s(CLOCK_MONOTONIC);
    s->cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    if (s->mode == 1) {
        s->sent = 1;
        return aemp_snd(s->node, s->to, "sis", "tag", INT_VAL, TEXT);
    }
    if (s->mode == 2)
        s->t0 += s->seconds; /* the deadline, checked by stall_tick */
    return aemp_snd(s->node, s->self, "s", "more");
}

static int send_fdone(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct send *s = user;
    const char *curve;
    (void)ctx;
    CHECK(aemp_msg_unpack(msg, "dIIIdIds", &s->f_rcpu, &s->f_hwm, &s->f_rss0,
                          &s->f_rss, &s->f_by_t1, &s->f_got, &s->f_last,
                          &curve));
    snprintf(s->curve, sizeof s->curve, "%s", curve);
    s->ok = s->f_got == s->sent;
    s->cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - s->cpu0;
    aemp_stop(s->node);
    return 0;
}

static int send_done(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct send *s = user;
    (void)ctx;
    CHECK(aemp_msg_unpack(msg, "di", &s->rcpu, &s->ok));
    finish(s);
    return 0;
}

/* Ping-pong: each answer sends the next message. */
static int send_pong(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct send *s = user;
    (void)ctx;
    if (++s->got < s->total) {
        s->sent++;
        return aemp_snd(s->node, s->to, "sis", "tag", INT_VAL, TEXT);
    }
    int i;
    const char *str;
    s->ok = aemp_msg_unpack(msg, "is", &i, &str) == 0 && i == INT_VAL &&
            strcmp(str, TEXT) == 0;
    finish(s);
    return 0;
}

static struct send *send_new(const char *to, const char *framing,
                             int64_t total, size_t window, size_t max_backlog,
                             int mode)
{
    static struct send s;
    s.node = net_node(framing, max_backlog);
    s.to = to;
    s.total = total;
    s.window = window;
    s.mode = mode;
    CHECK(aemp_node_of(to, s.to_node, sizeof s.to_node));
    CHECK(aemp_port(s.node, send_more, &s, &s.self));
    CHECK(aemp_rcv_tag(s.node, s.self, "ready", send_ready, &s));
    CHECK(aemp_rcv_tag(s.node, s.self, "done", send_done, &s));
    CHECK(aemp_rcv_tag(s.node, s.self, "tag", send_pong, &s));
    CHECK(aemp_rcv_tag(s.node, s.self, "fdone", send_fdone, &s));
    CHECK(aemp_snd(s.node, to, "ssIi", "hello", s.self, (int64_t)total, mode));
    return &s;
}

static int run_send(int ping, const char *to, const char *framing,
                    int64_t total, size_t window)
{
    struct send *s = send_new(to, framing, total, window, 0, ping);
    CHECK(aemp_run(s->node));
    if (!s->ok) {
        fprintf(stderr, "net_aemp: wrong count or contents\n");
        return 1;
    }
    printf("link %s\n", link_info[0] ? link_info : "?");
    if (ping)
        printf("result %.6f %.6f\n", s->wall, s->cpu);
    else
        printf("result %.6f %.6f %.6f\n", s->wall, s->cpu, s->rcpu);
    return 0;
}

/* ---- sender against a receiver that stopped reading ------------------------ */

static void on_node(aemp_node_t *n, const char *id, int up,
                    const aemp_msg_t *reason, void *user)
{
    struct send *s = user;
    const char *text;
    (void)id;
    if (up)
        return;
    s->downs++;
    if (aemp_msg_unpack(reason, "--s", &text) == 0)
        snprintf(s->reason, sizeof s->reason, "%s", text);
    if (s->mode == 3)
        aemp_stop(n); /* the flood has failed: nothing more to wait for */
}

/* Every 100 ms: the deadline. */
static int stall_tick(aemp_ctx_t *ctx, void *user)
{
    struct send *s = user;
    (void)ctx;
    if (s->t0 && clock_s(CLOCK_MONOTONIC) >= s->t0) {
        aemp_stop(s->node);
        return 0;
    }
    return aemp_after_call(s->node, 0.1, s->self, stall_tick, s);
}

static int run_stall(const char *to, const char *framing, double seconds,
                     size_t window, size_t max_backlog)
{
    /* "never" as the count: the flood lasts until the deadline */
    struct send *s = send_new(to, framing, INT64_MAX / 2, window,
                              max_backlog, 2);
    s->seconds = seconds;
    snprintf(s->reason, sizeof s->reason, "-");
    CHECK(aemp_mon_nodes(s->node, on_node, s, NULL));
    CHECK(aemp_after_call(s->node, 0.1, s->self, stall_tick, s));
    CHECK(aemp_run(s->node));
    for (char *p = s->reason; *p; p++)
        if (*p == ' ')
            *p = '_';
    printf("link %s\n", link_info[0] ? link_info : "?");
    printf("mem %ld %ld %lld %zu %d %s\n", status_kb("VmHWM"),
           status_kb("VmRSS"), (long long)s->sent,
           aemp_backlog(s->node, s->to_node), s->downs, s->reason);
    return 0;
}

/* ---- the unpaced flood ------------------------------------------------------ */

static int run_flood(const char *to, const char *framing, double seconds,
                     size_t limit, int64_t post)
{
    /* the hello's count is the receiver's POST */
    struct send *s = send_new(to, framing, post, 0, 0, 3);
    s->total = INT64_MAX / 2; /* the flood ends at the deadline */
    s->seconds = seconds;
    s->limit = limit;
    snprintf(s->reason, sizeof s->reason, "-");
    CHECK(aemp_mon_nodes(s->node, on_node, s, NULL));
    CHECK(aemp_run(s->node));
    if (!s->ended || s->downs) {
        fprintf(stderr, "net_aemp: flood: the link went down (%s)\n",
                s->reason);
        return 1;
    }
    if (!s->ok)
        fprintf(stderr, "net_aemp: flood: %lld sent, %lld delivered\n",
                (long long)s->sent, (long long)s->f_got);
    printf("link %s\n", link_info[0] ? link_info : "?");
    printf("flood %.6f %.6f %lld %lld %d %.6f %lld %lld %lld %.0f %lld %.6f "
           "%s\n",
           s->t1 - s->t0, s->cpu, (long long)s->sent, (long long)s->yields,
           s->downs, s->f_rcpu, (long long)s->f_hwm, (long long)s->f_rss0,
           (long long)s->f_rss, s->f_by_t1, (long long)s->f_got, s->f_last,
           s->curve);
    return s->ok ? 0 : 1;
}

/* ---- link set-ups ----------------------------------------------------------- */

struct knock {
    aemp_node_t *node;
    double rcpu; /* the receiver's CPU clock when it answered */
    int answered;
};

static int setup_welcome(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct knock *k = user;
    (void)ctx;
    CHECK(aemp_msg_unpack(msg, "d", &k->rcpu));
    k->answered = 1;
    aemp_stop(k->node);
    return 0;
}

/* Frees n and runs loop until n's handles (its link's socket among them)
 * have closed: nothing else runs on it. */
static void node_gone(uv_loop_t *loop, aemp_node_t *n)
{
    aemp_node_free(n);
    uv_run(loop, UV_RUN_DEFAULT);
}

/* One set-up by a fresh node on loop; adds the seconds (wall and CPU)
 * from its first message to its link closed to *wall and *cpu and returns
 * the receiver's CPU clock in the answer. */
static double setup_one(uv_loop_t *loop, const char *to, const char *framing,
                        int log, double *wall, double *cpu)
{
    struct knock k = {net_node_on(loop, framing, 0, log), 0, 0};
    const char *self;
    CHECK(aemp_port(k.node, NULL, NULL, &self));
    CHECK(aemp_rcv_tag(k.node, self, "welcome", setup_welcome, &k));
    double t0 = clock_s(CLOCK_MONOTONIC);
    double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    CHECK(aemp_snd(k.node, to, "ss", "knock", self));
    CHECK(aemp_run(k.node));
    if (!k.answered) {
        fprintf(stderr, "net_aemp: setup: no answer\n");
        exit(2);
    }
    node_gone(loop, k.node);
    *wall += clock_s(CLOCK_MONOTONIC) - t0;
    *cpu += clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    return k.rcpu;
}

/* What the set-ups do not time: a node made, configured (the certificate
 * parsed, an SSL_CTX made) and freed, per node. */
static double node_cost(uv_loop_t *loop, const char *framing, int count)
{
    double t0 = clock_s(CLOCK_MONOTONIC);
    for (int i = 0; i < count; i++) {
        const char *self;
        aemp_node_t *n = net_node_on(loop, framing, 0, 0);
        CHECK(aemp_port(n, NULL, NULL, &self));
        node_gone(loop, n);
    }
    return (clock_s(CLOCK_MONOTONIC) - t0) / count;
}

static int run_setup(const char *to, const char *framing, int64_t count)
{
    uv_loop_t loop;
    double wall = 0, cpu = 0, w0 = 0, c0 = 0, r1 = 0;
    if (uv_loop_init(&loop) != 0)
        return 2;
    double r0 = setup_one(&loop, to, framing, 1, &w0, &c0);
    for (int64_t i = 0; i < count; i++)
        r1 = setup_one(&loop, to, framing, 0, &wall, &cpu);
    printf("nodecost %.9f\n", node_cost(&loop, framing, 200));
    printf("link %s\n", link_info[0] ? link_info : "?");
    printf("result %.6f %.6f %.6f\n", wall, cpu, r1 - r0);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "--tls") == 0) {
        if (!(tls_cert = getenv("AEMP_BENCH_CERT")) || !*tls_cert) {
            fprintf(stderr, "net_aemp: --tls needs AEMP_BENCH_CERT (PEM "
                            "text of a key and its certificate)\n");
            return 2;
        }
        argc--, argv++;
    }
    if (argc == 4 && strcmp(argv[1], "recv") == 0)
        return run_recv(argv[2], argv[3]);
    if (argc == 6 && strcmp(argv[1], "send") == 0)
        return run_send(0, argv[2], argv[3], atoll(argv[4]),
                        (size_t)atoll(argv[5]));
    if (argc == 5 && strcmp(argv[1], "ping") == 0)
        return run_send(1, argv[2], argv[3], atoll(argv[4]), 0);
    if (argc == 7 && strcmp(argv[1], "flood") == 0)
        return run_flood(argv[2], argv[3], atof(argv[4]),
                         (size_t)atoll(argv[5]), atoll(argv[6]));
    if (argc == 5 && strcmp(argv[1], "setup") == 0)
        return run_setup(argv[2], argv[3], atoll(argv[4]));
    if (argc == 7 && strcmp(argv[1], "stall") == 0)
        return run_stall(argv[2], argv[3], atof(argv[4]),
                         (size_t)atoll(argv[5]), (size_t)atoll(argv[6]));
    fprintf(stderr, "usage: net_aemp [--tls] recv PORT FRAMING\n"
                    "       net_aemp send PORTID FRAMING COUNT WINDOW\n"
                    "       net_aemp ping PORTID FRAMING COUNT\n"
                    "       net_aemp flood PORTID FRAMING SECONDS LIMIT POST\n"
                    "       net_aemp stall PORTID FRAMING SECONDS WINDOW "
                    "MAX_BACKLOG\n"
                    "       net_aemp setup PORTID FRAMING COUNT\n"
                    "(--tls: every link TLS, with the certificate in "
                    "AEMP_BENCH_CERT)\n");
    return 2;
}
