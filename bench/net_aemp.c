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
 *       (SIGSTOP) at the first message: a receiver that reads nothing more.
 *   net_aemp send PORTID FRAMING COUNT WINDOW
 *       floods COUNT messages ["tag", 12345, "sixteen-byte-str"], pacing
 *       itself: whenever aemp_backlog() exceeds WINDOW bytes it waits for
 *       aemp_flush() (WINDOW 0: no pacing).  Prints
 *       "result <wall-s> <sender-CPU-s> <receiver-CPU-s>".
 *   net_aemp ping PORTID FRAMING COUNT
 *       COUNT round trips of the same message; prints "result <wall-s> ...".
 *   net_aemp stall PORTID FRAMING SECONDS WINDOW MAX_BACKLOG
 *       floods a receiver that stopped reading for SECONDS, then prints
 *       "mem <VmHWM-kB> <VmRSS-kB> <sent> <backlog> <downs> <reason>".
 *
 * Timing starts when the receiver answered "hello" (the link is up and
 * the receiver is ready) and stops when the sender gets [done] or the last
 * answer: connection set-up is not measured, every message is. */
#include <aemp.h>

#include <signal.h>
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

static aemp_node_t *net_node(const char *framing, size_t max_backlog)
{
    aemp_node_t *n;
    aemp_netconf_t conf = {.secret = "aemp-bench",
                           .framings = framing,
                           .max_backlog = max_backlog};
    CHECK(aemp_node_new(&n, NULL));
    CHECK(aemp_node_configure(n, &conf));
    return n;
}

/* ---- receiver -------------------------------------------------------------- */

struct recv {
    aemp_node_t *node;
    char reply[256];
    int64_t want, got;
    int mode;
    double cpu0;
};

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
    r->cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    return aemp_snd(r->node, r->reply, "s", "ready");
}

static int recv_tag(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct recv *r = user;
    (void)ctx, (void)msg;
    r->got++;
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
    printf("port %s\n", id);
    fflush(stdout);
    CHECK(aemp_run(r.node));
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
    /* stall mode */
    double seconds;
    int downs;
    char reason[200];
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

/* One batch, then either straight on or, above WINDOW bytes of backlog,
 * after the link has written what is queued: the sender's memory stays
 * ~WINDOW.  Straight on is a message to itself, except against a stopped
 * receiver (mode 2), where it is a 1 ms timer with 10 batches per tick
 * (up to 10 M messages/s).  Why not a message: the node dispatches up to
 * 65536 queued items before the loop polls again, so a producer that
 * re-arms itself by message runs 65 M sends before any I/O or timer.  Why
 * not a 0 s timer: libuv 1.44 runs a timer started from a timer callback
 * with timeout 0 in the same pass, forever (see RESULTS.md). */
static int send_more(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct send *s = user;
    (void)ctx, (void)msg;
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
    if (ping)
        printf("result %.6f %.6f\n", s->wall, s->cpu);
    else
        printf("result %.6f %.6f %.6f\n", s->wall, s->cpu, s->rcpu);
    return 0;
}

/* ---- sender against a receiver that stopped reading ------------------------ */

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

static void on_node(aemp_node_t *n, const char *id, int up,
                    const aemp_msg_t *reason, void *user)
{
    struct send *s = user;
    const char *text;
    (void)n, (void)id;
    if (up)
        return;
    s->downs++;
    if (aemp_msg_unpack(reason, "--s", &text) == 0)
        snprintf(s->reason, sizeof s->reason, "%s", text);
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
    printf("mem %ld %ld %lld %zu %d %s\n", status_kb("VmHWM"),
           status_kb("VmRSS"), (long long)s->sent,
           aemp_backlog(s->node, s->to_node), s->downs, s->reason);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && strcmp(argv[1], "recv") == 0)
        return run_recv(argv[2], argv[3]);
    if (argc == 6 && strcmp(argv[1], "send") == 0)
        return run_send(0, argv[2], argv[3], atoll(argv[4]),
                        (size_t)atoll(argv[5]));
    if (argc == 5 && strcmp(argv[1], "ping") == 0)
        return run_send(1, argv[2], argv[3], atoll(argv[4]), 0);
    if (argc == 7 && strcmp(argv[1], "stall") == 0)
        return run_stall(argv[2], argv[3], atof(argv[4]),
                         (size_t)atoll(argv[5]), (size_t)atoll(argv[6]));
    fprintf(stderr, "usage: net_aemp recv PORT FRAMING\n"
                    "       net_aemp send PORTID FRAMING COUNT WINDOW\n"
                    "       net_aemp ping PORTID FRAMING COUNT\n"
                    "       net_aemp stall PORTID FRAMING SECONDS WINDOW "
                    "MAX_BACKLOG\n");
    return 2;
}
