/* The promise under faults (PROTOCOL.md §8): once a link is lost, nothing
 * sent to that node's ports is delivered before every monitor of them has
 * fired — whether the sender sends from a timer of its own, an aemp_after
 * callback or a port callback; an honest flush and backlog; and a receiver
 * whose queue stays bounded under a flood (it stops reading instead).
 * Nodes share one loop and talk over real TCP on 127.0.0.1; the tests cut
 * links with the library's own close, from inside user code. */
#include "net_harness.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

/* ==== no holes ===========================================================
 */

#define PRE 1000   /* delivered before the cut */
#define WINDOW 100 /* sent between the cut and the firing: all dropped */
#define AFTER 100  /* sent from the firing callback: all delivered */

typedef struct holes {
    uv_loop_t *loop;
    tnode_t *a, *b;
    const char *pb; /* the receiving port, on b */
    int64_t next;   /* the next sequence number a sends */
    int64_t *got;   /* what pb received, in order */
    size_t ngot;
    int64_t fired_at; /* `next` when the first monitor fired */
    int fired, refired, window_fired, cut;
    aemp_msg_t *reason, *window_reason;
    uv_timer_t timer;
} holes_t;

static holes_t *H; /* for the port callbacks of the sending styles */

static int holes_rcv(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    holes_t *h = user;
    int64_t i;
    assert_int_equal(aemp_msg_unpack(m, "-I", &i), 0);
    h->got[h->ngot++] = i;
    return 0;
}

static void send_some(holes_t *h, int count)
{
    for (int i = 0; i < count; i++)
        assert_int_equal(aemp_snd(h->a->n, h->pb, "sI", "seq", h->next++), 0);
}

static void refired(aemp_node_t *n, const char *port, const aemp_msg_t *reason,
                    void *user)
{
    ((holes_t *)user)->refired++;
}

/* The first monitor: re-arms at once (a new monitor, which must behave
 * normally) and goes on sending from inside the callback. */
static void first_fired(aemp_node_t *n, const char *port,
                        const aemp_msg_t *reason, void *user)
{
    holes_t *h = user;
    h->fired++;
    h->fired_at = h->next;
    h->reason = kt_msg_copy(reason);
    assert_int_equal(aemp_mon_cb(n, h->pb, refired, h, NULL), 0);
    send_some(h, AFTER);
}

static void window_fired(aemp_node_t *n, const char *port,
                         const aemp_msg_t *reason, void *user)
{
    holes_t *h = user;
    h->window_fired++;
    h->window_reason = kt_msg_copy(reason);
}

/* Inside user code: the link goes (as when a write fails), then the sender
 * carries on as if nothing happened, and sets up one more monitor. */
static void cut_and_carry_on(holes_t *h)
{
    aemp__peer_t *p = peer_of(h->a->n, h->b->ref);
    assert_non_null(p);
    assert_non_null(p->link);
    aemp__link_close(p->link, "cut by the test");
    h->cut = 1;
    send_some(h, WINDOW / 2);
    assert_int_equal(aemp_mon_cb(h->a->n, h->pb, window_fired, h, NULL), 0);
    send_some(h, WINDOW - WINDOW / 2);
    assert_int_equal(h->fired, 0); /* nothing fired inside our code */
}

static void from_timer(uv_timer_t *t) { cut_and_carry_on(t->data); }

static int from_port(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    cut_and_carry_on(H);
    return 0;
}

static int from_after(aemp_ctx_t *ctx, void *user)
{
    cut_and_carry_on(H);
    return 0;
}

static int holes_settled(void *arg)
{
    holes_t *h = arg;
    return h->fired && h->window_fired &&
           h->ngot >= (size_t)(PRE + AFTER) &&
           h->got[h->ngot - 1] == h->fired_at + AFTER - 1;
}

enum style { TIMER, PORT_CB, AFTER_CALL };

static void no_holes(enum style style)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    holes_t h = {.loop = &loop, .a = &a, .b = &b,
                 .got = calloc(4 * PRE, sizeof(int64_t))};
    H = &h;
    h.pb = mkport(b.n, holes_rcv, &h);
    assert_int_equal(aemp_mon_cb(a.n, h.pb, first_fired, &h, NULL), 0);
    send_some(&h, PRE);
    await_watchers(&loop, b.n, a.ref, 1);
    while (h.ngot < PRE)
        uv_run(&loop, UV_RUN_ONCE);
    switch (style) {
    case TIMER:
        uv_timer_init(&loop, &h.timer);
        h.timer.data = &h;
        uv_timer_start(&h.timer, from_timer, 1, 0);
        break;
    case PORT_CB:
        assert_int_equal(aemp_snd(a.n, mkport(a.n, from_port, NULL), "s", "go"),
                         0);
        break;
    case AFTER_CALL:
        assert_int_equal(
            aemp_after_call(a.n, 0.001, mkport(a.n, NULL, NULL), from_after,
                            NULL),
            0);
        break;
    }
    assert_true(nt_run_until(&loop, holes_settled, &h, 20));
    /* stray packets get every chance to show up */
    nt_run_for(&loop, 0.3);
    assert_int_equal(h.fired, 1);
    assert_int_equal(h.window_fired, 1);
    assert_int_equal(h.refired, 0);
    assert_int_equal(h.fired_at, PRE + WINDOW);
    transport_error(h.reason, b.ref);
    transport_error(h.window_reason, b.ref);
    /* 0 .. PRE-1, then what was sent after the firing: the window (and
     * nothing else) is lost */
    assert_int_equal(h.ngot, PRE + AFTER);
    for (size_t i = 0; i < h.ngot; i++)
        assert_int_equal(h.got[i],
                         i < PRE ? (int64_t)i : (int64_t)(i - PRE) + h.fired_at);
    if (style == TIMER)
        uv_close((uv_handle_t *)&h.timer, NULL);
    aemp_msg_unref(h.reason);
    aemp_msg_unref(h.window_reason);
    free(h.got);
    nodes_finish(&loop, &a, &b, NULL);
}

static void no_holes_timer(void **state) { no_holes(TIMER); }
static void no_holes_port_callback(void **state) { no_holes(PORT_CB); }
static void no_holes_after_call(void **state) { no_holes(AFTER_CALL); }

/* A node's monitors fire in the order they were set up, across ports, and
 * the node-down event comes with them. */
typedef struct order {
    char seen[16];
    size_t n;
} order_t;

/* One monitor's user pointer: the recorder and the monitor's letter. */
typedef struct order_tag {
    order_t *o;
    char c;
} order_tag_t;

static void order_mon(aemp_node_t *n, const char *port,
                      const aemp_msg_t *reason, void *user)
{
    order_tag_t *t = user;
    t->o->seen[t->o->n++] = t->c;
}

static void order_node(aemp_node_t *n, const char *id, int up,
                       const aemp_msg_t *reason, void *user)
{
    order_t *o = user;
    if (!up)
        o->seen[o->n++] = 'D';
}

static void fire_in_setup_order(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    order_t o = {{0}, 0};
    const char *p1 = mkport(b.n, NULL, NULL), *p2 = mkport(b.n, NULL, NULL),
               *p3 = mkport(b.n, NULL, NULL);
    order_tag_t tags[5] = {{&o, 'a'}, {&o, 'b'}, {&o, 'c'}, {&o, 'd'}, {&o, 'e'}};
    const char *ports[5] = {p2, p1, p3, p1, p2};
    for (int i = 0; i < 5; i++)
        assert_int_equal(aemp_mon_cb(a.n, ports[i], order_mon, &tags[i], NULL),
                         0);
    await_watchers(&loop, b.n, a.ref, 3);
    assert_int_equal(aemp_mon_nodes(a.n, order_node, &o, NULL), 0);
    aemp__link_close(peer_of(a.n, b.ref)->link, "cut by the test");
    while (o.n < 6)
        uv_run(&loop, UV_RUN_ONCE);
    assert_string_equal(o.seen, "abcdeD");
    nodes_finish(&loop, &a, &b, NULL);
}

/* A link that comes up while the loss is being reported waits for the loss
 * step: the other node dials back at once, while a long queue holds the
 * step back. */
typedef struct comeback {
    tnode_t *a, *b;
    const char *pa, *pb;
    int fired, held_seen, window_sent, bgot_window, bgot_after, agot;
    int64_t next;
    kt_rec_t ev; /* a's node events */
    uv_timer_t btimer;
} comeback_t;

static int busy(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    uint64_t t0 = uv_hrtime();
    while (uv_hrtime() - t0 < 10000) /* 10 us */
        ;
    return 0;
}

static int comeback_b_rcv(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    comeback_t *c = user;
    const char *what;
    assert_int_equal(aemp_msg_unpack(m, "s", &what), 0);
    if (!strcmp(what, "window"))
        c->bgot_window++;
    else
        c->bgot_after++;
    return 0;
}

static int comeback_a_rcv(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    ((comeback_t *)user)->agot++;
    return 0;
}

static void comeback_fired(aemp_node_t *n, const char *port,
                           const aemp_msg_t *reason, void *user)
{
    comeback_t *c = user;
    c->fired++;
    transport_error(reason, c->b->ref);
    assert_int_equal(aemp_snd(n, c->pb, "s", "after"), 0);
}

static void comeback_node(aemp_node_t *n, const char *id, int up,
                          const aemp_msg_t *reason, void *user)
{
    kt_rec_add(user, up ? "up" : "down", id, reason);
}

static void b_keeps_sending(uv_timer_t *t)
{
    comeback_t *c = t->data;
    assert_int_equal(aemp_snd(c->b->n, c->pa, "s", "from b"), 0);
}

static int comeback_settled(void *arg)
{
    comeback_t *c = arg;
    aemp__peer_t *p = peer_of(c->a->n, c->b->ref);
    if (p && p->in_loss) {
        if (p->link)
            c->held_seen = 1;
        /* A's own code goes on sending into the window */
        assert_int_equal(aemp_snd(c->a->n, c->pb, "s", "window"), 0);
        c->window_sent++;
    }
    return c->fired && c->bgot_after && c->agot > 0 &&
           kt_rec_count(&c->ev, "up") == 2;
}

static void link_up_during_loss_waits(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    comeback_t c = {.a = &a, .b = &b};
    c.pa = mkport(a.n, comeback_a_rcv, &c);
    c.pb = mkport(b.n, comeback_b_rcv, &c);
    assert_int_equal(aemp_mon_nodes(a.n, comeback_node, &c.ev, NULL), 0);
    assert_int_equal(aemp_mon_cb(a.n, c.pb, comeback_fired, &c, NULL), 0);
    await_watchers(&loop, b.n, a.ref, 1);
    assert_true(await_up(&loop, a.n, b.ref, 1, 5));
    /* 1.5 s of work queued on A ahead of the loss step */
    const char *slow = mkport(a.n, busy, NULL);
    for (int i = 0; i < 150000; i++)
        assert_int_equal(aemp_snd(a.n, slow, "s", "work"), 0);
    aemp__link_close(peer_of(a.n, b.ref)->link, "cut by the test");
    uv_timer_init(&loop, &c.btimer);
    c.btimer.data = &c;
    uv_timer_start(&c.btimer, b_keeps_sending, 5, 5);
    assert_true(nt_run_until(&loop, comeback_settled, &c, 30));
    nt_run_for(&loop, 0.2);
    fprintf(stderr, "  %d sent into the window; b got %d of them, %d after; "
                    "a got %d from b\n",
            c.window_sent, c.bgot_window, c.bgot_after, c.agot);
    assert_int_equal(c.held_seen, 1); /* the case under test happened */
    assert_int_equal(c.fired, 1);
    assert_true(c.window_sent > 0);
    assert_int_equal(c.bgot_window, 0);
    assert_int_equal(c.bgot_after, 1);
    /* up (before the test), down, up: strictly alternating */
    assert_int_equal(c.ev.n, 3);
    assert_string_equal(c.ev.ev[0].label, "up");
    assert_string_equal(c.ev.ev[1].label, "down");
    assert_string_equal(c.ev.ev[2].label, "up");
    uv_close((uv_handle_t *)&c.btimer, NULL);
    kt_rec_free(&c.ev);
    nodes_finish(&loop, &a, &b, NULL);
}

/* ==== flush and backlog ====================================================
 */

static void flush_cb(aemp_node_t *n, int status, void *user)
{
    int *st = user;
    *st = status == 0 ? 1 : status;
}

static void raw_resume_reading(raw_t *r)
{
    if (!r->polling)
        uv_poll_start(&r->poll, UV_READABLE, raw_on_poll);
    r->polling = true;
}

/* Sends 16 MiB of blobs to the raw peer's port x at once (below
 * max_backlog, 64 MiB): the socket takes what fits in the kernel, and the
 * rest of that buffer waits in a write request, partly written. */
static void fill_socket(uv_loop_t *loop, aemp_node_t *n, raw_t *r)
{
    char target[96];
    snprintf(target, sizeof target, "%s#x", r->node_id);
    static char blob[16384];
    for (int i = 0; i < 1024; i++)
        assert_int_equal(aemp_snd(n, target, "sy", "b", blob, sizeof blob), 0);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* Bytes in the kernel between our socket and the raw peer's reads: not
 * sent yet on our side, or received and not read on theirs (on loopback,
 * what was sent is in their queue at once; counting our unacknowledged
 * bytes as well would count those twice). */
static size_t in_kernel(int ours, int theirs)
{
    int outq = 0, inq = 0;
    assert_int_equal(ioctl(ours, SIOCOUTQNSD, &outq), 0);
    assert_int_equal(ioctl(theirs, SIOCINQ, &inq), 0);
    return (size_t)outq + (size_t)inq;
}

static void flush_and_backlog_honest(void **state)
{
    uv_loop_t loop;
    tnode_t a;
    nodes_start(&loop, NULL, &a, NULL);
    raw_t *r = raw_handshaken(&loop, a.ref, "cbor", 0);
    assert_true(await_up(&loop, a.n, r->node_id, 1, 10));
    aemp__peer_t *p = peer_of(a.n, r->node_id);
    raw_stop_reading(r);
    fill_socket(&loop, a.n, r);
    /* the peer reads 2 MiB behind the raw harness's back, and the socket
     * takes as much more: the buffer being written goes out in part */
    size_t stolen = 0;
    static char scratch[65536];
    while (stolen < (2u << 20)) {
        ssize_t got = recv(r->fd, scratch, sizeof scratch, 0);
        if (got > 0)
            stolen += (size_t)got;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    /* backlog: exactly what the kernel has not taken */
    size_t backlog = aemp_backlog(a.n, r->node_id);
    size_t taken =
        r->len + stolen + in_kernel(link_fd(a.n, r->node_id), r->fd);
    fprintf(stderr, "  backlog %zu KiB, appended %llu KiB, in the kernel or "
                    "read %zu KiB\n",
            backlog >> 10, (unsigned long long)(p->link->appended >> 10),
            taken >> 10);
    assert_true(backlog > (8u << 20));
    /* the case is there: the buffer being written went out in part */
    assert_true(p->link->writing);
    aemp__tcp_stream_t *tcp = aemp__tcp_of(p->link->stream);
    fprintf(stderr, "  (buffers %zu KiB + %zu KiB, %zu KiB written)\n",
            p->link->out.len >> 10, tcp->inflight.len >> 10,
            tcp->inflight_off >> 10);
    assert_true(p->link->out.len + tcp->inflight.len > backlog + (1u << 20));
    size_t expect = p->link->appended - taken;
    assert_true(backlog + (64u << 10) >= expect &&
                expect + (64u << 10) >= backlog);
    /* a flush is not done while bytes wait */
    int st = 0;
    assert_int_equal(aemp_flush(a.n, r->node_id, flush_cb, &st), 0);
    nt_run_for(&loop, 0.3);
    assert_int_equal(st, 0);
    /* the peer reads: it is done, with nothing left */
    raw_resume_reading(r);
    assert_true(nt_run_flag(&loop, &st, 30));
    assert_int_equal(st, 1);
    assert_int_equal(aemp_backlog(a.n, r->node_id), 0);
    /* a flush with nothing to write is done soon */
    st = 0;
    assert_int_equal(aemp_flush(a.n, r->node_id, flush_cb, &st), 0);
    assert_true(nt_run_flag(&loop, &st, 5));
    assert_int_equal(st, 1);
    /* stuck again, then the link goes: the flush fails at once */
    raw_stop_reading(r);
    fill_socket(&loop, a.n, r);
    st = 0;
    assert_int_equal(aemp_flush(a.n, r->node_id, flush_cb, &st), 0);
    nt_run_for(&loop, 0.1);
    assert_int_equal(st, 0);
    aemp__link_close(p->link, "cut by the test");
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(st, AEMP_ENOROUTE);
    raw_close(r);
    nodes_finish(&loop, &a, NULL, NULL);
}

/* After a lost link, a flush on the next link works. */
static void flush_after_loss(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "b", 0};
    const char *pb = mkport(b.n, kt_tap_rcv, &tap);
    assert_int_equal(aemp_snd(a.n, pb, "s", "one"), 0);
    int st = 0;
    assert_int_equal(aemp_flush(a.n, b.ref, flush_cb, &st), 0);
    assert_true(nt_run_flag(&loop, &st, 10));
    assert_int_equal(st, 1);
    assert_true(await_rec(&loop, &rec, "b", 1, 10));
    aemp__link_close(peer_of(a.n, b.ref)->link, "cut by the test");
    assert_true(await_up(&loop, a.n, b.ref, 0, 5));
    nt_run_for(&loop, 0.05); /* the loss step */
    for (int round = 0; round < 3; round++) {
        assert_int_equal(aemp_snd(a.n, pb, "s", "again"), 0);
        st = 0;
        assert_int_equal(aemp_flush(a.n, b.ref, flush_cb, &st), 0);
        assert_true(nt_run_flag(&loop, &st, 10));
        assert_int_equal(st, 1);
        assert_int_equal(aemp_backlog(a.n, b.ref), 0);
    }
    assert_true(await_rec(&loop, &rec, "b", 4, 10));
    nodes_finish(&loop, &a, &b, &rec);
}

/* ==== backpressure ========================================================
 */

#define FLOOD 300000

typedef struct flood2 {
    tnode_t *a, *b;
    const char *to, *sink;
    int64_t sent, got, bad;
    size_t max_items;
    int held;
} flood2_t;

/* Every delivery forwards to a local sink, so that the queue is in use
 * (a packet is delivered straight from the read only when nothing waits). */
static int flood_forward(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    flood2_t *f = user;
    return aemp_snd_msg(aemp_ctx_node(ctx), f->sink, m);
}

static int flood_sink(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    flood2_t *f = user;
    int64_t i;
    if (aemp_msg_unpack(m, "-I", &i) < 0 || i != f->got)
        f->bad++;
    f->got++;
    return 0;
}

static int flood_pump(void *arg)
{
    flood2_t *f = arg;
    aemp_node_t *b = f->b->n;
    if (b->qitems > f->max_items)
        f->max_items = b->qitems;
    if (b->net->queue_holds)
        f->held++;
    while (f->sent < FLOOD && aemp_backlog(f->a->n, f->b->ref) < (4u << 20))
        assert_int_equal(aemp_snd(f->a->n, f->to, "sI", "n", f->sent++), 0);
    return f->got == FLOOD || f->bad;
}

static void receiver_bounded(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    aemp_netconf_t c = conf_std();
    c.max_queued_items = 2000;
    nodes_start(&loop, &c, &a, &b);
    flood2_t f = {.a = &a, .b = &b};
    f.sink = mkport(b.n, flood_sink, &f);
    f.to = mkport(b.n, flood_forward, &f);
    assert_true(nt_run_until_tick(&loop, flood_pump, &f, 60, 1));
    fprintf(stderr, "  %lld delivered, queue at most %zu items, held in %d "
                    "loop iterations\n",
            (long long)f.got, f.max_items, f.held);
    assert_int_equal(f.bad, 0);
    assert_int_equal(f.got, FLOOD);
    assert_true(f.held > 0);
    assert_true(f.max_items <= 2000);
    /* drained: reading again */
    assert_int_equal(b.n->qitems, 0);
    assert_int_equal(b.n->net->queue_holds, 0);
    nodes_finish(&loop, &a, &b, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ISOLATED(no_holes_timer, 60),
        ISOLATED(no_holes_port_callback, 60),
        ISOLATED(no_holes_after_call, 60),
        ISOLATED(fire_in_setup_order, 60),
        ISOLATED(link_up_during_loss_waits, 60),
        ISOLATED(flush_and_backlog_honest, 120),
        ISOLATED(flush_after_loss, 60),
        ISOLATED(receiver_bounded, 120),
    };
    const char *filter = getenv("AEMP_TEST_FILTER");
    if (filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
