/* The two ends of the fault-injection test (test_faults.c): a receiver that
 * checks a numbered stream for holes, duplicates and reorderings, and a
 * sender that streams to it under a monitor and says when that monitor
 * fired.  They run as separate processes so that the test can cut their
 * TCP connection from outside (ss -K, nftables) while both keep running.
 *
 *   fault_peer recv <noderef> <secret> [--keepalive K]
 *              [--stall MS --stall-every MS]
 *   fault_peer send <port-id> <secret> --style tick|after|timer
 *              [--seconds S] [--keepalive K] [--batch N]
 *              [--monitor-timeout T] [--connect-interval C]
 *
 * recv prints its port ID as its first line, then "fin L" when the sender's
 * end marker arrives; on SIGTERM/SIGINT (or a ["report"] message) it prints
 * the report between "report" and "end" and exits:
 *   count C   messages delivered        max M    highest seq seen
 *   fin L     the sender's last seq     dups D   seqs <= the previous one
 *   gaps G    followed by G lines "gap A B" (A..B never arrived, B+1 did)
 *   dup S     the first few duplicates or reorderings
 * With --stall it blocks its loop for MS milliseconds every so often, as a
 * busy consumer does: the stream then backs up in the socket buffers, and
 * a cut loses what is in them.
 *
 * send prints "link up" / "link down <reason>" for link events,
 * "fired L <reason>" whenever its monitor of the receiver fires (L: the seq
 * of the last message sent before the firing) and re-arms the monitor from
 * that callback; after S seconds (0: never) or on SIGUSR1/SIGTERM/SIGINT it
 * stops numbering, waits until the link is up and quiet, sends ["fin", L]
 * and, once that is written, prints "sent L" and exits.  Should aemp_flush
 * not call back although nothing is left to write, it says so ("flush did
 * not call back") and ends all the same, so that the stream can still be
 * judged. */
#include <aemp.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

/* Above this much unsent output the sender skips a batch: the guarantee
 * under test is about lost links, and a send queue overflow (which the
 * library turns into one) would only add firings of another kind. */
#define PACE_BYTES (1u << 20)
/* The link must stay up and drained this long before the end marker. */
#define QUIET_MS 300
/* How long a flush may lag behind an empty backlog. */
#define FLUSH_GRACE_MS 3000
#define MAX_DUP_LINES 20

typedef struct opts {
    const char *role, *target, *secret, *style;
    double seconds, monitor_timeout, connect_interval;
    unsigned keepalive, batch, stall_ms, stall_every_ms;
} opts_t;

static _Noreturn void usage(void)
{
    fputs("usage: fault_peer recv <noderef> <secret> [--keepalive K]\n"
          "                  [--stall MS --stall-every MS]\n"
          "       fault_peer send <port-id> <secret> --style tick|after|timer\n"
          "                  [--seconds S] [--keepalive K] [--batch N]\n"
          "                  [--monitor-timeout T] [--connect-interval C]\n",
          stderr);
    exit(2);
}

static void parse_opts(opts_t *o, int argc, char **argv)
{
    if (argc < 4)
        usage();
    *o = (opts_t){.role = argv[1],
                  .target = argv[2],
                  .secret = argv[3],
                  .style = "tick",
                  .keepalive = 30,
                  .batch = 20,
                  .monitor_timeout = 5,
                  .connect_interval = 0.05};
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--style"))
            o->style = v;
        else if (!strcmp(a, "--seconds"))
            o->seconds = atof(v);
        else if (!strcmp(a, "--keepalive"))
            o->keepalive = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--batch"))
            o->batch = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--monitor-timeout"))
            o->monitor_timeout = atof(v);
        else if (!strcmp(a, "--connect-interval"))
            o->connect_interval = atof(v);
        else if (!strcmp(a, "--stall"))
            o->stall_ms = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--stall-every"))
            o->stall_every_ms = (unsigned)strtoul(v, NULL, 10);
        else
            usage();
        i++;
    }
    if (!o->batch || (o->stall_ms && !o->stall_every_ms))
        usage();
}

static aemp_node_t *node_make(uv_loop_t *loop, const opts_t *o)
{
    aemp_node_t *n = NULL;
    aemp_netconf_t c = {.secret = o->secret,
                        .keepalive = o->keepalive,
                        .monitor_timeout = o->monitor_timeout,
                        .connect_interval = o->connect_interval};
    int rc = aemp_node_new(&n, loop);
    if (rc == 0 && (rc = aemp_node_configure(n, &c)) < 0)
        aemp_node_free(n);
    if (rc < 0) {
        fprintf(stderr, "fault_peer: node: %s\n", aemp_strerror(rc));
        exit(1);
    }
    return n;
}

/* A message as one line of JSON (for reasons). */
static void print_msg(const aemp_msg_t *m)
{
    char *text = NULL;
    size_t len;
    if (aemp_msg_encode(m, AEMP_JSON, &text, &len) == 0)
        fputs(text, stdout);
    else
        fputs("[\"?\"]", stdout);
    aemp_free(text);
}

/* ==== recv ================================================================ */

typedef struct recv_st {
    aemp_node_t *n;
    uv_signal_t sig[2];
    uv_timer_t stall;
    unsigned stall_ms;
    uint64_t last, count, dups, fin;
    int have_fin, reported;
    uint64_t (*gap)[2];
    size_t ngaps, gapcap;
    uint64_t dup_seen[MAX_DUP_LINES];
} recv_st_t;

static void add_gap(recv_st_t *r, uint64_t a, uint64_t b)
{
    if (r->ngaps == r->gapcap) {
        size_t cap = r->gapcap ? 2 * r->gapcap : 64;
        void *p = realloc(r->gap, cap * sizeof *r->gap);
        if (!p) {
            fputs("fault_peer: out of memory\n", stderr);
            exit(1);
        }
        r->gap = p;
        r->gapcap = cap;
    }
    r->gap[r->ngaps][0] = a;
    r->gap[r->ngaps][1] = b;
    r->ngaps++;
}

static int on_num(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    recv_st_t *r = user;
    int64_t s;
    if (aemp_msg_unpack(m, "I", &s) < 0 || s < 1)
        return aemp_die(ctx, "malformed numbered message");
    uint64_t seq = (uint64_t)s;
    r->count++;
    if (seq <= r->last) {
        if (r->dups < MAX_DUP_LINES)
            r->dup_seen[r->dups] = seq;
        r->dups++;
        return 0; /* keep `last`: a late one must not hide later gaps */
    }
    if (seq > r->last + 1)
        add_gap(r, r->last + 1, seq - 1);
    r->last = seq;
    return 0;
}

static int on_fin(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    recv_st_t *r = user;
    int64_t s;
    if (aemp_msg_unpack(m, "I", &s) < 0 || s < 0)
        return aemp_die(ctx, "malformed fin");
    r->fin = (uint64_t)s;
    r->have_fin = 1;
    printf("fin %" PRIu64 "\n", r->fin);
    return 0;
}

static void recv_report(recv_st_t *r)
{
    if (r->reported++)
        return;
    printf("report\ncount %" PRIu64 "\nmax %" PRIu64 "\n", r->count, r->last);
    if (r->have_fin)
        printf("fin %" PRIu64 "\n", r->fin);
    printf("dups %" PRIu64 "\ngaps %zu\n", r->dups, r->ngaps);
    for (size_t i = 0; i < r->ngaps; i++)
        printf("gap %" PRIu64 " %" PRIu64 "\n", r->gap[i][0], r->gap[i][1]);
    for (uint64_t i = 0; i < r->dups && i < MAX_DUP_LINES; i++)
        printf("dup %" PRIu64 "\n", r->dup_seen[i]);
    puts("end");
    fflush(stdout);
    for (int i = 0; i < 2; i++)
        uv_signal_stop(&r->sig[i]);
    uv_timer_stop(&r->stall);
    aemp_stop(r->n);
}

static int on_report(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    recv_report(user);
    return 0;
}

static void on_recv_signal(uv_signal_t *h, int signum)
{
    recv_report(h->data);
}

static void on_stall(uv_timer_t *t)
{
    recv_st_t *r = t->data;
    struct timespec ts = {.tv_sec = r->stall_ms / 1000,
                          .tv_nsec = (long)(r->stall_ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static int run_recv(uv_loop_t *loop, const opts_t *o)
{
    recv_st_t r = {0};
    r.n = node_make(loop, o);
    const char *id;
    int rc = aemp_node_listen(r.n, o->target);
    if (rc == 0)
        rc = aemp_port(r.n, NULL, NULL, &id);
    if (rc == 0)
        rc = aemp_rcv_tag(r.n, id, "n", on_num, &r);
    if (rc == 0)
        rc = aemp_rcv_tag(r.n, id, "fin", on_fin, &r);
    if (rc == 0)
        rc = aemp_rcv_tag(r.n, id, "report", on_report, &r);
    if (rc < 0) {
        fprintf(stderr, "fault_peer recv: %s\n", aemp_strerror(rc));
        aemp_node_free(r.n);
        return 1;
    }
    printf("%s\n", id);
    static const int sigs[2] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; i++) {
        uv_signal_init(loop, &r.sig[i]);
        r.sig[i].data = &r;
        uv_signal_start(&r.sig[i], on_recv_signal, sigs[i]);
    }
    uv_timer_init(loop, &r.stall);
    r.stall.data = &r;
    r.stall_ms = o->stall_ms;
    if (o->stall_ms)
        uv_timer_start(&r.stall, on_stall, o->stall_every_ms,
                       o->stall_every_ms);
    aemp_run(r.n);
    aemp_node_free(r.n);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&r.sig[i], NULL);
    uv_close((uv_handle_t *)&r.stall, NULL);
    free(r.gap);
    return 0;
}

/* ==== send ================================================================ */

typedef struct send_st {
    aemp_node_t *n;
    const opts_t *o;
    char port[512], node_id[512];
    const char *self; /* the local port of the tick and after styles */
    uint64_t next;    /* the seq the next numbered message gets */
    uint64_t quiet_since, fin_sent_at;
    int stopping, fin_pending, done, failed;
    uv_signal_t sig[3];
    uv_timer_t pump, end, quiet;
    aemp_mon_t *nodes;
} send_st_t;

static void on_fired(aemp_node_t *n, const char *port, const aemp_msg_t *reason,
                     void *user);

static void arm(send_st_t *s)
{
    int rc = aemp_mon_cb(s->n, s->port, on_fired, s, NULL);
    if (rc < 0) {
        /* without a monitor nothing here means anything: give up loudly */
        fprintf(stderr, "fault_peer send: aemp_mon_cb: %s\n",
                aemp_strerror(rc));
        s->failed = 1;
        aemp_stop(s->n);
    }
}

static void on_fired(aemp_node_t *n, const char *port, const aemp_msg_t *reason,
                     void *user)
{
    send_st_t *s = user;
    printf("fired %" PRIu64 " ", s->next - 1);
    print_msg(reason);
    putchar('\n');
    s->quiet_since = 0;
    arm(s); /* a new monitor, from the callback: what the test relies on */
}

static void on_node(aemp_node_t *n, const char *node_id, int up,
                    const aemp_msg_t *reason, void *user)
{
    send_st_t *s = user;
    if (strcmp(node_id, s->node_id))
        return;
    if (up) {
        puts("link up");
        return;
    }
    fputs("link down ", stdout);
    print_msg(reason);
    putchar('\n');
}

/* One batch of numbered messages, unless the link is backed up. */
static void send_batch(send_st_t *s)
{
    if (s->stopping || aemp_backlog(s->n, s->node_id) > PACE_BYTES)
        return;
    for (unsigned i = 0; i < s->o->batch; i++) {
        int rc = aemp_snd(s->n, s->port, "sI", "n", (int64_t)s->next);
        if (rc < 0) {
            /* not sent, so not numbered: a gap here would be ours */
            fprintf(stderr, "fault_peer send: aemp_snd: %s\n",
                    aemp_strerror(rc));
            return;
        }
        s->next++;
    }
}

static int on_tick(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    send_st_t *s = user;
    send_batch(s);
    return s->stopping ? 0 : aemp_snd(s->n, aemp_self(ctx), "s", "tick");
}

static int on_after(aemp_ctx_t *ctx, void *user)
{
    send_st_t *s = user;
    send_batch(s);
    if (s->stopping)
        return 0;
    /* alternately the next loop iteration and a millisecond later */
    return aemp_after_call(s->n, (s->next / s->o->batch) % 2 ? 0.001 : 0,
                           aemp_self(ctx), on_after, s);
}

static void on_pump(uv_timer_t *t)
{
    send_batch(t->data);
}

static void send_done(send_st_t *s)
{
    printf("sent %" PRIu64 "\n", s->next - 1);
    s->done = 1;
    aemp_stop(s->n);
}

static void on_flushed(aemp_node_t *n, int status, void *user)
{
    send_st_t *s = user;
    if (s->done)
        return;
    s->fin_pending = 0;
    if (status < 0) {
        /* the link went before the marker was written: send it again on
         * the next one (the receiver keeps the last "fin") */
        printf("fin lost: %s\n", aemp_strerror(status));
        s->quiet_since = 0;
        return;
    }
    send_done(s);
}

/* The marker went out but the flush is still pending: fine while output
 * waits; with nothing left to write it is the flush that is stuck. */
static void check_fin(send_st_t *s, uint64_t now)
{
    if (!aemp_node_is_up(s->n, s->node_id) ||
        aemp_backlog(s->n, s->node_id) != 0)
        s->fin_sent_at = now;
    else if (now - s->fin_sent_at >= FLUSH_GRACE_MS) {
        puts("flush did not call back");
        send_done(s);
    }
}

static void on_quiet_check(uv_timer_t *t)
{
    send_st_t *s = t->data;
    uint64_t now = uv_now(t->loop);
    if (s->fin_pending) {
        check_fin(s, now);
        return;
    }
    if (!aemp_node_is_up(s->n, s->node_id) ||
        aemp_backlog(s->n, s->node_id) != 0) {
        s->quiet_since = 0;
        return;
    }
    if (!s->quiet_since)
        s->quiet_since = now;
    if (now - s->quiet_since < QUIET_MS)
        return;
    int rc = aemp_snd(s->n, s->port, "sI", "fin", (int64_t)(s->next - 1));
    if (rc == 0)
        rc = aemp_flush(s->n, s->node_id, on_flushed, s);
    if (rc < 0) {
        fprintf(stderr, "fault_peer send: fin: %s\n", aemp_strerror(rc));
        return;
    }
    s->fin_pending = 1;
    s->fin_sent_at = now;
}

static void send_stop(send_st_t *s)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    uv_timer_stop(&s->pump);
    uv_timer_start(&s->quiet, on_quiet_check, 20, 20);
}

static void on_send_signal(uv_signal_t *h, int signum)
{
    send_stop(h->data);
}

static void on_end(uv_timer_t *t)
{
    send_stop(t->data);
}

static int start_style(send_st_t *s)
{
    const char *st = s->o->style;
    if (!strcmp(st, "timer")) {
        uv_timer_start(&s->pump, on_pump, 1, 1);
        return 0;
    }
    int tick = !strcmp(st, "tick");
    if (!tick && strcmp(st, "after"))
        return AEMP_EINVAL;
    int rc = aemp_port(s->n, NULL, NULL, &s->self);
    if (rc == 0 && tick)
        rc = aemp_rcv_tag(s->n, s->self, "tick", on_tick, s);
    if (rc == 0)
        rc = tick ? aemp_snd(s->n, s->self, "s", "tick")
                  : aemp_after_call(s->n, 0, s->self, on_after, s);
    return rc;
}

static void send_handles(send_st_t *s, uv_loop_t *loop)
{
    static const int sigs[3] = {SIGUSR1, SIGTERM, SIGINT};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(loop, &s->sig[i]);
        s->sig[i].data = s;
        uv_signal_start(&s->sig[i], on_send_signal, sigs[i]);
    }
    uv_timer_t *t[3] = {&s->pump, &s->end, &s->quiet};
    for (int i = 0; i < 3; i++) {
        uv_timer_init(loop, t[i]);
        t[i]->data = s;
    }
    if (s->o->seconds > 0)
        uv_timer_start(&s->end, on_end, (uint64_t)(s->o->seconds * 1000), 0);
}

static void send_close(send_st_t *s)
{
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&s->sig[i], NULL);
    uv_close((uv_handle_t *)&s->pump, NULL);
    uv_close((uv_handle_t *)&s->end, NULL);
    uv_close((uv_handle_t *)&s->quiet, NULL);
}

static int run_send(uv_loop_t *loop, const opts_t *o)
{
    send_st_t s = {.o = o, .next = 1};
    if (snprintf(s.port, sizeof s.port, "%s", o->target) >=
            (int)sizeof s.port ||
        aemp_node_of(o->target, s.node_id, sizeof s.node_id) < 0 ||
        !strchr(o->target, '#'))
        usage();
    s.n = node_make(loop, o);
    send_handles(&s, loop);
    int rc = aemp_mon_nodes(s.n, on_node, &s, &s.nodes);
    if (rc == 0) {
        arm(&s);
        rc = s.failed ? AEMP_EINVAL : start_style(&s);
    }
    if (rc < 0)
        fprintf(stderr, "fault_peer send: %s\n", aemp_strerror(rc));
    else
        aemp_run(s.n);
    aemp_node_free(s.n);
    aemp_mon_cancel(s.nodes);
    send_close(&s);
    return rc < 0 || s.failed || !s.done;
}

int main(int argc, char **argv)
{
    opts_t o;
    parse_opts(&o, argc, argv);
    /* the test reads these lines while we run: no block buffering */
    setvbuf(stdout, NULL, _IOLBF, 0);
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return 1;
    int rc;
    if (!strcmp(o.role, "recv"))
        rc = run_recv(&loop, &o);
    else if (!strcmp(o.role, "send"))
        rc = run_send(&loop, &o);
    else
        usage();
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        fputs("fault_peer: handles left open on the loop\n", stderr);
        rc = 1;
    }
    return rc;
}
