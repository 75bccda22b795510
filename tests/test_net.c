/* Networking between nodes in one process: several nodes share one uv
 * loop and talk over real TCP on 127.0.0.1, on ports chosen free by the
 * test.  Hostile or broken peers are played by raw sockets in the test
 * (polled by the same loop), some of them completing a real handshake with
 * the functions of src/handshake.h.  The tests reach into src/net.h only to
 * observe (a link's socket, a peer's watchers) or to cut a socket. */
#include "net_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ==== delivery and ordering =================================================
 */

static void bulk_fifo(const char *framings, int64_t total, int64_t window)
{
    uv_loop_t loop;
    aemp_netconf_t c = conf_std();
    c.framings = framings;
    c.monitor_timeout = 30;
    tnode_t a, b;
    nodes_start(&loop, &c, &a, &b);
    seqrx_t rx = {0}, lost = {0};
    const char *pb = mkport(b.n, seq_rcv, &rx);
    /* A watches the receiver: a loss would show here, not as a hang */
    assert_int_equal(aemp_mon_cb(a.n, pb, seq_fired, &lost, NULL), 0);
    pump_t p = {a.n, pb, &rx, total, 0, window, 0, 0};
    uint64_t t0 = kt_now_ms();
    nt_run_until(&loop, pump_done, &p, 240);
    uint64_t ms = kt_now_ms() - t0;
    fprintf(stderr, "  %s: %lld messages in %llu ms\n", framings,
            (long long)rx.count, (unsigned long long)ms);
    if (rx.count != total) {
        dump_log(&a);
        dump_log(&b);
    }
    seqrx_check(&rx, framings);
    assert_int_equal(p.err, 0);
    assert_int_equal(lost.fired, 0);
    assert_int_equal(rx.count, total);
    assert_int_equal(rx.marker, 0);
    /* under AEMP_TEST_TLS the whole flood went through TLS */
    if (c.cert)
        assert_string_equal(peer_of(a.n, b.ref)->link->stream->ops->name,
                            "tls");
    if (!strcmp(framings, "json"))
        assert_int_equal(peer_of(a.n, b.ref)->link->hs.send_framing, AEMP_JSON);
    else
        assert_int_equal(peer_of(a.n, b.ref)->link->hs.send_framing, AEMP_CBOR);
    tnode_free(&a);
    tnode_free(&b);
    aemp_msg_unref(lost.reason);
    nt_loop_finish(&loop);
}

static void fifo_million_cbor(void **state)
{
    bulk_fifo("cbor", 1000000, 100000);
}

static void fifo_100k_json(void **state)
{
    bulk_fifo("json", 100000, 20000);
}

/* Everything sent before the link exists waits in the queue and arrives in
 * order once it is up: 100,000 messages, no window. */
static void fifo_queued_before_link(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    seqrx_t rx = {0};
    const char *pb = mkport(b.n, seq_rcv, &rx);
    for (int64_t i = 0; i < 100000; i++)
        assert_int_equal(aemp_snd(a.n, pb, "sI", "seq", i), 0);
    assert_false(aemp_node_is_up(a.n, b.ref));
    pump_t p = {a.n, pb, &rx, 100000, 100000, 1, 0, 0};
    nt_run_until(&loop, pump_done, &p, 60);
    seqrx_check(&rx, "queued");
    assert_int_equal(rx.count, 100000);
    nodes_finish(&loop, &a, &b, NULL);
}

/* A private node (no listener) reaches a public one; replies come back
 * over the same link.  And a third node hears from both, in order per
 * sender. */
static void three_nodes_snd(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    aemp_netconf_t c = conf_std();
    tnode_t a, b, p;
    tnode_init(&p, &loop, &c, false, NULL); /* private */
    tnode_pub(&a, &loop);
    tnode_pub(&b, &loop);
    assert_non_null(strstr(p.ref, "anon/"));
    kt_rec_t rec = {0};
    kt_tap_t tp = {&rec, "p", 0}, ta = {&rec, "a", 0};
    seqrx_t fromA = {0}, fromB = {0};
    const char *pp = mkport(p.n, kt_tap_rcv, &tp);
    const char *pa = mkport(a.n, kt_tap_rcv, &ta);
    const char *bA = mkport(b.n, seq_rcv, &fromA);
    const char *bB = mkport(b.n, seq_rcv, &fromB);
    /* private -> public, with a value of every type */
    assert_int_equal(aemp_snd(p.n, pa, "snbiIds[i]{i}y", "all", 1, 7,
                              (int64_t)-5000000000LL, 2.5, "text", 1, "k", 2,
                              "\x00\xff", (size_t)2),
                     0);
    /* public asks the private node's node port for its ID: the reply
     * travels over the link the private node made */
    assert_true(await_rec(&loop, &rec, "a", 1, 10));
    assert_true(kt_msg_is(rec.ev[0].msg, "snbiIds[i]{i}y", "all", 1, 7,
                          (int64_t)-5000000000LL, 2.5, "text", 1, "k", 2,
                          "\x00\xff", (size_t)2));
    assert_int_equal(aemp_snd(a.n, p.ref, "sss", "info", pa, "who"), 0);
    assert_true(await_rec(&loop, &rec, "a", 2, 10));
    assert_true(kt_msg_is(rec.ev[1].msg, "ss", "who", p.ref));
    /* A and the private node both stream to B */
    for (int64_t i = 0; i < 5000; i++) {
        assert_int_equal(aemp_snd(a.n, bA, "sI", "seq", i), 0);
        assert_int_equal(aemp_snd(p.n, bB, "sI", "seq", i), 0);
    }
    pump_t pa_ = {a.n, bA, &fromA, 5000, 5000, 1, 0, 0};
    nt_run_until(&loop, pump_done, &pa_, 20);
    pump_t pb_ = {p.n, bB, &fromB, 5000, 5000, 1, 0, 0};
    nt_run_until(&loop, pump_done, &pb_, 20);
    seqrx_check(&fromA, "A->B");
    seqrx_check(&fromB, "P->B");
    assert_int_equal(fromA.count, 5000);
    assert_int_equal(fromB.count, 5000);
    /* B answers the private node over the link it has */
    assert_int_equal(aemp_snd(b.n, pp, "s", "hello private"), 0);
    assert_true(await_rec(&loop, &rec, "p", 1, 10));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "p", 0)->msg, "s", "hello private"));
    assert_true(aemp_node_is_up(b.n, p.ref));
    tnode_free(&a);
    tnode_free(&b);
    tnode_free(&p);
    kt_rec_free(&rec);
    nt_loop_finish(&loop);
}

/* ==== remote monitors =======================================================
 */

/* A port that arms a form-3 monitor (kill SELF) on the port named in the
 * message it gets. */
static int arm_self_monitor(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    const char *target;
    int *armed = user;
    assert_int_equal(aemp_msg_unpack(m, "ss", &(const char *){NULL}, &target),
                     0);
    assert_int_equal(aemp_mon_kill(aemp_ctx_node(ctx), target, NULL, NULL), 0);
    ++*armed;
    return 0;
}

static void remote_mon_forms(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    kt_rec_t rec = {0};
    kt_tap_t t1 = {&rec, "cb-reason", 0}, t2 = {&rec, "cb-normal", 0},
             tv = {&rec, "victim", 0}, tvn = {&rec, "victim-normal", 0},
             ts = {&rec, "self", 0}, tsn = {&rec, "self-normal", 0},
             t4 = {&rec, "form4", 0};
    const char *p[8];
    for (int i = 0; i < 8; i++)
        p[i] = mkport(b.n, NULL, NULL);
    int armed = 0;
    const char *victim = mkport(a.n, NULL, NULL);
    const char *victim_n = mkport(a.n, NULL, NULL);
    const char *self = mkport(a.n, arm_self_monitor, &armed);
    const char *self_n = mkport(a.n, arm_self_monitor, &armed);
    const char *rcv4 = mkport(a.n, kt_tap_rcv, &t4);
    /* local monitors that watch the outcome on A */
    assert_int_equal(aemp_mon_cb(a.n, victim, kt_tap_mon, &tv, NULL), 0);
    assert_int_equal(aemp_mon_cb(a.n, victim_n, kt_tap_mon, &tvn, NULL), 0);
    assert_int_equal(aemp_mon_cb(a.n, self, kt_tap_mon, &ts, NULL), 0);
    assert_int_equal(aemp_mon_cb(a.n, self_n, kt_tap_mon, &tsn, NULL), 0);
    /* form 1 */
    assert_int_equal(aemp_mon_cb(a.n, p[0], kt_tap_mon, &t1, NULL), 0);
    assert_int_equal(aemp_mon_cb(a.n, p[1], kt_tap_mon, &t2, NULL), 0);
    /* form 2 */
    assert_int_equal(aemp_mon_kill(a.n, p[2], victim, NULL), 0);
    assert_int_equal(aemp_mon_kill(a.n, p[3], victim_n, NULL), 0);
    /* form 3: only from inside a callback */
    assert_int_equal(aemp_mon_kill(a.n, p[4], NULL, NULL), AEMP_ENOCTX);
    assert_int_equal(aemp_snd(a.n, self, "ss", "arm", p[4]), 0);
    assert_int_equal(aemp_snd(a.n, self_n, "ss", "arm", p[5]), 0);
    /* form 4 */
    assert_int_equal(aemp_mon_msg(a.n, p[6], rcv4, NULL, "ss", "down", "p6"),
                     0);
    assert_int_equal(aemp_mon_msg(a.n, p[7], rcv4, NULL, "ss", "down", "p7"),
                     0);
    /* all eight monitors are in place on B before anything dies */
    await_watchers(&loop, b.n, a.ref, 8);
    assert_int_equal(armed, 2);
    for (int i = 0; i < 8; i++) {
        if (i % 2)
            assert_int_equal(aemp_kil(b.n, p[i], NULL), 0);
        else
            assert_int_equal(aemp_kil(b.n, p[i], "ss[i{d}]n", "boom",
                                      p[i] + strlen(b.ref), 1, "k", 2.5),
                             0);
    }
    /* the last notice to arrive is the form-4 message for p7 */
    assert_true(await_rec(&loop, &rec, "form4", 2, 10));
    assert_int_equal(kt_rec_count(&rec, "cb-reason"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "cb-reason", 0)->msg, "ss[i{d}]n",
                          "boom", p[0] + strlen(b.ref), 1, "k", 2.5));
    assert_string_equal(kt_rec_nth(&rec, "cb-reason", 0)->port, p[0]);
    assert_int_equal(kt_rec_count(&rec, "cb-normal"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "cb-normal", 0)->msg, ""));
    /* form 2 and 3 kill with the same reason; normal kills do nothing */
    assert_true(await_rec(&loop, &rec, "self", 1, 5));
    assert_true(await_rec(&loop, &rec, "victim", 1, 5));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "victim", 0)->msg, "ss[i{d}]n",
                          "boom", p[2] + strlen(b.ref), 1, "k", 2.5));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "self", 0)->msg, "ss[i{d}]n", "boom",
                          p[4] + strlen(b.ref), 1, "k", 2.5));
    assert_int_equal(aemp_port_exists(a.n, victim_n), 1);
    assert_int_equal(aemp_port_exists(a.n, self_n), 1);
    assert_int_equal(kt_rec_count(&rec, "victim-normal"), 0);
    assert_int_equal(kt_rec_count(&rec, "self-normal"), 0);
    /* form 4: the message, then the reason's elements */
    assert_true(kt_msg_is(kt_rec_nth(&rec, "form4", 0)->msg, "ssss[i{d}]n",
                          "down", "p6", "boom", p[6] + strlen(b.ref), 1, "k",
                          2.5));
    assert_true(
        kt_msg_is(kt_rec_nth(&rec, "form4", 1)->msg, "ss", "down", "p7"));
    /* notices arrive in the order of the deaths */
    assert_true(kt_rec_index(&rec, "cb-reason", 0) <
                kt_rec_index(&rec, "cb-normal", 0));
    assert_true(kt_rec_index(&rec, "form4", 0) <
                kt_rec_index(&rec, "form4", 1));
    /* B forgot the monitors that fired */
    assert_int_equal(watchers_of(b.n, a.ref), 0);
    assert_int_equal(peer_of(a.n, b.ref)->stubs.n, 0);
    nodes_finish(&loop, &a, &b, &rec);
}

static void remote_mon_nonexistent(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    kt_rec_t rec = {0};
    kt_tap_t t1 = {&rec, "never", 0}, t2 = {&rec, "dead", 0},
             t3 = {&rec, "never-again", 0};
    char never[128], dead[128];
    snprintf(never, sizeof never, "%s#nosuchport.1", b.ref);
    const char *pd = mkport(b.n, NULL, NULL);
    snprintf(dead, sizeof dead, "%s", pd);
    assert_int_equal(aemp_kil(b.n, pd, NULL), 0);
    assert_int_equal(aemp_mon_cb(a.n, never, kt_tap_mon, &t1, NULL), 0);
    assert_int_equal(aemp_mon_cb(a.n, dead, kt_tap_mon, &t2, NULL), 0);
    assert_true(await_rec(&loop, &rec, NULL, 2, 10));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "never", 0)->msg, "sss",
                          "no_such_port", "cannot monitor nonexistent port",
                          never));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "dead", 0)->msg, "sss",
                          "no_such_port", "cannot monitor nonexistent port",
                          dead));
    assert_string_equal(kt_rec_nth(&rec, "never", 0)->port, never);
    /* a second monitor of the same missing port fires again */
    assert_int_equal(aemp_mon_cb(a.n, never, kt_tap_mon, &t3, NULL), 0);
    assert_true(await_rec(&loop, &rec, "never-again", 1, 10));
    assert_int_equal(kt_rec_count(&rec, "never"), 1);
    assert_int_equal(watchers_of(b.n, a.ref), 0);
    nodes_finish(&loop, &a, &b, &rec);
}

/* Round trip A -> B's node port -> A: everything B sent A before it
 * answered has been processed by A when the answer arrives. */
static void round_trip(uv_loop_t *loop, tnode_t *a, const char *bref,
                       kt_rec_t *rec)
{
    static int k;
    char tag[32];
    snprintf(tag, sizeof tag, "rt%d", ++k);
    kt_tap_t *t = malloc(sizeof *t);
    *t = (kt_tap_t){rec, "rt", 0};
    const char *pr = mkport(a->n, kt_tap_rcv, t);
    size_t before = kt_rec_count(rec, "rt");
    assert_int_equal(aemp_snd(a->n, bref, "sss", "info", pr, tag), 0);
    assert_true(await_rec(loop, rec, "rt", before + 1, 10));
    assert_true(kt_msg_is(kt_rec_nth(rec, "rt", before)->msg, "ss", tag, bref));
    assert_int_equal(aemp_kil(a->n, pr, NULL), 0); /* drops the callback */
    free(t);
}

static void guard_cancel_sends_mon0(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    kt_rec_t rec = {0};
    kt_tap_t t1 = {&rec, "cancelled", 0}, t2 = {&rec, "kept", 0},
             t3 = {&rec, "local", 0};
    const char *p1 = mkport(b.n, NULL, NULL);
    const char *p2 = mkport(b.n, NULL, NULL);
    aemp_mon_t *g1, *g2a, *g2b;
    assert_int_equal(aemp_mon_cb(a.n, p1, kt_tap_mon, &t1, &g1), 0);
    /* two monitors of p2: cancelling one keeps the remote monitor */
    assert_int_equal(aemp_mon_cb(a.n, p2, kt_tap_mon, &t1, &g2a), 0);
    assert_int_equal(aemp_mon_cb(a.n, p2, kt_tap_mon, &t2, &g2b), 0);
    await_watchers(&loop, b.n, a.ref, 2);
    aemp_mon_cancel(g1);
    aemp_mon_cancel(g2a);
    /* mon0 reaches B: one watcher left */
    await_watchers(&loop, b.n, a.ref, 1);
    assert_int_equal(aemp_mon_cb(b.n, p1, kt_tap_mon, &t3, NULL), 0);
    assert_int_equal(aemp_kil(b.n, p1, "s", "later"), 0);
    assert_int_equal(aemp_kil(b.n, p2, "s", "later2"), 0);
    assert_true(await_rec(&loop, &rec, "local", 1, 5));
    assert_true(await_rec(&loop, &rec, "kept", 1, 10));
    round_trip(&loop, &a, b.ref, &rec);
    assert_int_equal(kt_rec_count(&rec, "cancelled"), 0);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "kept", 0)->msg, "s", "later2"));
    aemp_mon_cancel(g2b); /* fired: frees it */
    nodes_finish(&loop, &a, &b, &rec);
}

static void remote_kil(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    kt_rec_t rec = {0};
    kt_tap_t t1 = {&rec, "reason", 0}, t2 = {&rec, "normal", 0},
             t3 = {&rec, "remote-mon", 0};
    const char *p1 = mkport(b.n, NULL, NULL);
    const char *p2 = mkport(b.n, NULL, NULL);
    assert_int_equal(aemp_mon_cb(b.n, p1, kt_tap_mon, &t1, NULL), 0);
    assert_int_equal(aemp_mon_cb(b.n, p2, kt_tap_mon, &t2, NULL), 0);
    assert_int_equal(aemp_mon_cb(a.n, p1, kt_tap_mon, &t3, NULL), 0);
    await_watchers(&loop, b.n, a.ref, 1);
    assert_int_equal(aemp_kil(a.n, p1, "ssi", "shutdown", "by A", 3), 0);
    assert_int_equal(aemp_kil(a.n, p2, NULL), 0);
    assert_true(await_rec(&loop, &rec, "normal", 1, 10));
    assert_true(await_rec(&loop, &rec, "remote-mon", 1, 10));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "reason", 0)->msg, "ssi", "shutdown",
                          "by A", 3));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "normal", 0)->msg, ""));
    /* A's own monitor of p1 hears the reason back as kil0 */
    assert_true(kt_msg_is(kt_rec_nth(&rec, "remote-mon", 0)->msg, "ssi",
                          "shutdown", "by A", 3));
    assert_false(aemp_port_exists(b.n, p1));
    assert_false(aemp_port_exists(b.n, p2));
    /* killing B's node port from afar is refused or ignored, never done */
    int rc = aemp_kil(a.n, b.ref, "s", "x");
    assert_true(rc == 0 || rc == AEMP_EPERM);
    round_trip(&loop, &a, b.ref, &rec);
    nodes_finish(&loop, &a, &b, &rec);
}

/* A node whose ID is no address (Perl's are free text: "B"), dialled at
 * its address: what was sent and monitored by the address goes to the
 * node of that name once its link is authenticated; the address stands
 * for it from then on, and it is redialled there. */
static void free_text_ids(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    char addr[64];
    snprintf(addr, sizeof addr, "%s", b.ref);
    assert_int_equal(aemp__net_rename(b.n, "perlish-B"), 0);
    kt_rec_t rec = {0};
    kt_tap_t tb = {&rec, "at_b", 0}, tm = {&rec, "mon", 0};
    const char *pb = mkport(b.n, kt_tap_rcv, &tb);
    assert_int_equal(strncmp(pb, "perlish-B#", 10), 0);
    char by_addr[160];
    snprintf(by_addr, sizeof by_addr, "%s#%s", addr, name_of(pb));
    /* before any link: queued and monitored under the address */
    assert_int_equal(aemp_mon_cb(a.n, by_addr, kt_tap_mon, &tm, NULL), 0);
    assert_int_equal(aemp_snd(a.n, by_addr, "si", "first", 1), 0);
    assert_int_equal(aemp_snd(a.n, by_addr, "si", "second", 2), 0);
    assert_true(await_rec(&loop, &rec, "at_b", 2, 10));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "at_b", 0)->msg, "si", "first", 1));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "at_b", 1)->msg, "si", "second", 2));
    assert_true(await_up(&loop, a.n, "perlish-B", 1, 10));
    assert_true(kt_log_has(&a.log, " is node perlish-B"));
    assert_int_equal(aemp_node_is_up(a.n, addr), 1); /* the alias */
    /* one node, one link: by name and by address, in the order sent */
    assert_int_equal(aemp_snd(a.n, pb, "si", "by name", 3), 0);
    assert_int_equal(aemp_snd(a.n, by_addr, "si", "by address", 4), 0);
    assert_true(await_rec(&loop, &rec, "at_b", 4, 10));
    assert_true(
        kt_msg_is(kt_rec_nth(&rec, "at_b", 2)->msg, "si", "by name", 3));
    assert_true(
        kt_msg_is(kt_rec_nth(&rec, "at_b", 3)->msg, "si", "by address", 4));
    assert_int_equal(links_all(a.n), 1);
    /* the known nodes are nodes, not addresses */
    aemp_msg_t *known;
    assert_int_equal(aemp_known_nodes(a.n, &known), 0);
    assert_true(msg_has_str(known, "perlish-B"));
    assert_false(msg_has_str(known, addr));
    aemp_msg_unref(known);
    /* the monitor set up by the address fires when the port dies */
    await_watchers(&loop, b.n, a.ref, 1);
    assert_int_equal(aemp_kil(b.n, pb, "s", "gone"), 0);
    assert_true(await_rec(&loop, &rec, "mon", 1, 10));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "mon", 0)->msg, "s", "gone"));
    /* lost and needed again: redialled at the address that reached it */
    aemp__link_close(peer_of(a.n, "perlish-B")->link, "cut by the test");
    assert_true(await_up(&loop, a.n, "perlish-B", 0, 10));
    nt_run_for(&loop, 0.3); /* the loss step: until then sends are lost */
    const char *pb2 = mkport(b.n, kt_tap_rcv, &tb);
    assert_int_equal(aemp_snd(a.n, pb2, "s", "again"), 0);
    if (!await_rec(&loop, &rec, "at_b", 5, 10)) {
        dump_log(&a);
        dump_log(&b);
        fail_msg("not redialled");
    }
    assert_true(await_up(&loop, a.n, "perlish-B", 1, 10));
    /* a name nobody can dial: no attempt, and after monitor_timeout the
     * reason says why */
    kt_tap_t tn = {&rec, "nobody", 0};
    assert_int_equal(aemp_mon_cb(a.n, "no-such-perl-node#x", kt_tap_mon, &tn,
                                 NULL),
                     0);
    assert_true(await_rec(&loop, &rec, "nobody", 1, 15));
    const char *why = transport_error(kt_rec_nth(&rec, "nobody", 0)->msg,
                                      "no-such-perl-node");
    assert_non_null(strstr(why, "no address is known for no-such-perl-node"));
    nodes_finish(&loop, &a, &b, &rec);
}

/* Port IDs fail fast (issue 12): a malformed noderef is AEMP_EINVAL at
 * once; an unresolved one ("localhost:<port>") is resolved on the fly; a
 * name that does not resolve, and a refused connection, fire monitors at
 * once with the reason. */
static void port_ids_fail_fast(void **state)
{
    uv_loop_t loop;
    aemp_netconf_t c = conf_std();
    c.monitor_timeout = 5;
    tnode_t a, b;
    nodes_start(&loop, &c, &a, &b);
    static const char *const bad[] = {
        "127.0.0.1:99999#x", "127.0.0.1:0#x", ":4041#x", "localhost:#x",
        "a b:4040#x", "127.0.0.1:40x#x", "[::1#x", "[::1]4040#x", "#x",
        "99999#x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (aemp_snd(a.n, bad[i], "s", "x") != AEMP_EINVAL)
            fail_msg("aemp_snd to \"%s\" is not AEMP_EINVAL", bad[i]);
        assert_int_equal(aemp_mon_cb(a.n, bad[i], kt_tap_mon, NULL, NULL),
                         AEMP_EINVAL);
        assert_int_equal(aemp_kil(a.n, bad[i], NULL), AEMP_EINVAL);
    }
    /* "localhost:<b's port>#<port>": resolved, then it is b */
    kt_rec_t rec = {0};
    kt_tap_t tb = {&rec, "at_b", 0}, tr = {&rec, "refused", 0};
    const char *pb = mkport(b.n, kt_tap_rcv, &tb);
    char via_name[160];
    snprintf(via_name, sizeof via_name, "localhost:%s",
             strrchr(b.ref, ':') + 1);
    size_t nlen = strlen(via_name);
    snprintf(via_name + nlen, sizeof via_name - nlen, "#%s", name_of(pb));
    uint64_t t0 = kt_now_ms();
    assert_int_equal(aemp_snd(a.n, via_name, "s", "by host name"), 0);
    assert_true(await_rec(&loop, &rec, "at_b", 1, 10));
    assert_true(kt_log_has(&a.log, " resolves to 127.0.0.1:"));
    /* nobody listening: refused, at once */
    char dead[64];
    snprintf(dead, sizeof dead, "127.0.0.1:%d#x", nt_free_port());
    t0 = kt_now_ms();
    assert_int_equal(aemp_mon_cb(a.n, dead, kt_tap_mon, &tr, NULL), 0);
    assert_true(await_rec(&loop, &rec, "refused", 1, 10));
    assert_true(kt_now_ms() - t0 < 3000);
    *strchr(dead, '#') = 0;
    assert_string_equal(transport_error(rec.ev[1].msg, dead),
                        "unable to connect: connection refused");
    nodes_finish(&loop, &a, &b, &rec);
}

/* A name that does not resolve fires its monitors at once with the
 * resolver's reason (a resolver that refuses: no DNS needed). */
static void unresolvable_fails_fast(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    aemp_netconf_t c = conf_std();
    char dns[64];
    snprintf(dns, sizeof dns, "127.0.0.1:%d", nt_free_port());
    c.dns_servers = dns;
    c.monitor_timeout = 20;
    tnode_t a;
    tnode_init(&a, &loop, &c, false, NULL);
    kt_rec_t rec = {0};
    kt_tap_t tm = {&rec, "mon", 0};
    uint64_t t0 = kt_now_ms();
    assert_int_equal(
        aemp_mon_cb(a.n, "no-such-host.test:4040#x", kt_tap_mon, &tm, NULL), 0);
    assert_true(await_rec(&loop, &rec, "mon", 1, 25));
    uint64_t ms = kt_now_ms() - t0;
    const char *why =
        transport_error(rec.ev[0].msg, "no-such-host.test:4040");
    fprintf(stderr, "  after %llu ms: %s\n", (unsigned long long)ms, why);
    assert_string_equal(why,
                        "unable to connect: cannot resolve \"no-such-host.test\"");
    assert_true(ms < 15000); /* before monitor_timeout */
    tnode_free(&a);
    kt_rec_free(&rec);
    nt_loop_finish(&loop);
}

/* ==== the node port over the network =========================================
 */

static void node_port_requests(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    tnode_t a, b, c;
    tnode_pub(&a, &loop);
    tnode_pub(&b, &loop);
    tnode_pub(&c, &loop);
    kt_rec_t rec = {0};
    kt_tap_t ta = {&rec, "a", 0}, tc = {&rec, "c", 0};
    const char *pa = mkport(a.n, kt_tap_rcv, &ta);
    const char *pc = mkport(c.n, kt_tap_rcv, &tc);
    /* the network's requests are not the program's to replace */
    const char *net_requests[] = {"mon1", "mon0", "kil0", "iam", "info"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(aemp_node_handle(a.n, net_requests[i], kt_tap_rcv, &ta),
                         AEMP_EPERM);
    /* C gets to know B first, so that B knows three nodes */
    assert_int_equal(aemp_snd(c.n, b.ref, "s", "devnull"), 0);
    assert_true(await_up(&loop, b.n, c.ref, 1, 10));
    double t0 = (double)time(NULL);
    assert_int_equal(aemp_snd(a.n, b.ref, "ss", "info", pa), 0);
    assert_int_equal(aemp_snd(a.n, b.ref, "sssi", "info", pa, "info", 7), 0);
    assert_int_equal(aemp_snd(a.n, b.ref, "sss", "time", pa, "time"), 0);
    assert_int_equal(aemp_snd(a.n, b.ref, "sss", "known_nodes", pa, "known"),
                     0);
    assert_int_equal(aemp_snd(a.n, b.ref, "sss", "up_nodes", pa, "up"), 0);
    assert_int_equal(aemp_snd(a.n, b.ref, "sssi", "devnull", pa, "devnull", 1),
                     0);
    assert_int_equal(aemp_snd(a.n, b.ref, "ss", "", pa), 0);
    assert_int_equal(aemp_snd(a.n, b.ref, "sssi", "snd", pa, "relayed", 1), 0);
    assert_int_equal(aemp_snd(a.n, b.ref, "sssi", "snd", pc, "relayed", 2), 0);
    assert_int_equal(aemp_snd(a.n, b.ref, "s[ss][ss]s[ss][]", "snd_multiple",
                              pa, "m1", pc, "m2", "junk", pa, "m3"),
                     0);
    assert_int_equal(aemp_snd(a.n, b.ref, "sss", "info", pa, "last"), 0);
    assert_true(await_rec(&loop, &rec, "a", 9, 10));
    assert_true(await_rec(&loop, &rec, "c", 2, 10));
    const kt_event_t *e;
    assert_true(kt_msg_is(kt_rec_nth(&rec, "a", 0)->msg, "s", b.ref));
    assert_true(
        kt_msg_is(kt_rec_nth(&rec, "a", 1)->msg, "sis", "info", 7, b.ref));
    e = kt_rec_nth(&rec, "a", 2);
    double when;
    assert_int_equal(
        aemp_msg_unpack(e->msg, "sd", &(const char *){NULL}, &when), 0);
    assert_int_equal(aemp_val_type(aemp_msg_at(e->msg, 1)), AEMP_T_DOUBLE);
    assert_true(when > t0 - 5 && when < t0 + 5);
    /* known: B itself, A and C; up: A and C, not B */
    e = kt_rec_nth(&rec, "a", 3);
    assert_true(msg_has_str(e->msg, "known"));
    assert_true(msg_has_str(e->msg, a.ref));
    assert_true(msg_has_str(e->msg, b.ref));
    assert_true(msg_has_str(e->msg, c.ref));
    assert_int_equal(aemp_msg_len(e->msg), 4);
    e = kt_rec_nth(&rec, "a", 4);
    assert_true(msg_has_str(e->msg, "up"));
    assert_true(msg_has_str(e->msg, a.ref));
    assert_true(msg_has_str(e->msg, c.ref));
    assert_false(msg_has_str(e->msg, b.ref));
    assert_int_equal(aemp_msg_len(e->msg), 3);
    /* devnull and "" produce nothing; relays arrive in order */
    assert_true(kt_msg_is(kt_rec_nth(&rec, "a", 5)->msg, "si", "relayed", 1));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "a", 6)->msg, "s", "m1"));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "a", 7)->msg, "s", "m3"));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "a", 8)->msg, "ss", "last", b.ref));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "c", 0)->msg, "si", "relayed", 2));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "c", 1)->msg, "s", "m2"));
    assert_int_equal(kt_rec_count(&rec, "a"), 9);
    assert_false(kt_log_has(&b.log, "devnull"));
    /* an unknown request is logged and ignored */
    assert_int_equal(aemp_snd(a.n, b.ref, "si", "frobnicate", 1), 0);
    round_trip(&loop, &a, b.ref, &rec);
    assert_true(kt_log_has(&b.log, "frobnicate"));
    tnode_free(&a);
    tnode_free(&b);
    tnode_free(&c);
    kt_rec_free(&rec);
    nt_loop_finish(&loop);
}

/* ==== node events
 * ============================================================== */

static void node_event(aemp_node_t *n, const char *id, int up,
                       const aemp_msg_t *reason, void *user)
{
    kt_rec_t *rec = user;
    kt_rec_add(rec, up ? "up" : "down", id, reason);
}

static void mon_nodes_alternate(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    char bref[64];
    snprintf(bref, sizeof bref, "%s", b.ref);
    kt_rec_t ev = {0}, evb = {0};
    aemp_mon_t *g;
    assert_int_equal(aemp_mon_nodes(a.n, node_event, &ev, &g), 0);
    assert_int_equal(aemp_mon_nodes(b.n, node_event, &evb, NULL), 0);
    assert_int_equal(aemp_node_is_known(a.n, a.ref), 1);
    assert_int_equal(aemp_node_is_up(a.n, a.ref), 0);
    assert_int_equal(aemp_node_is_known(a.n, bref), 0);
    aemp_msg_t *m;
    assert_int_equal(aemp_known_nodes(a.n, &m), 0);
    assert_true(kt_msg_is(m, "s", a.ref));
    aemp_msg_unref(m);
    for (int round = 0; round < 3; round++) {
        assert_int_equal(aemp_snd(a.n, bref, "s", "devnull"), 0);
        assert_int_equal(aemp_node_is_known(a.n, bref), 1);
        assert_true(await_rec(&loop, &ev, NULL, 2 * round + 1, 10));
        assert_int_equal(aemp_node_is_up(a.n, bref), 1);
        assert_int_equal(aemp_up_nodes(a.n, &m), 0);
        assert_true(kt_msg_is(m, "s", bref));
        aemp_msg_unref(m);
        assert_int_equal(aemp_known_nodes(a.n, &m), 0);
        assert_int_equal(aemp_msg_len(m), 2);
        assert_true(msg_has_str(m, a.ref) && msg_has_str(m, bref));
        aemp_msg_unref(m);
        /* B saw A come up */
        assert_true(await_rec(&loop, &evb, "up", 1, 10));
        assert_string_equal(kt_rec_nth(&evb, "up", 0)->port, a.ref);
        /* B goes away: down, with the reason */
        tnode_free(&b);
        kt_rec_free(&evb);
        assert_true(await_rec(&loop, &ev, NULL, 2 * round + 2, 10));
        assert_int_equal(aemp_node_is_up(a.n, bref), 0);
        assert_int_equal(aemp_node_is_known(a.n, bref), 1);
        assert_int_equal(aemp_up_nodes(a.n, &m), 0);
        assert_int_equal(aemp_msg_len(m), 0);
        aemp_msg_unref(m);
        /* a new B on the same address */
        aemp_netconf_t c = conf_std();
        tnode_init(&b, &loop, &c, true, bref);
        assert_int_equal(aemp_mon_nodes(b.n, node_event, &evb, NULL), 0);
    }
    /* strictly alternating, all about B, reasons as documented */
    assert_int_equal(ev.n, 6);
    for (size_t i = 0; i < ev.n; i++) {
        assert_string_equal(ev.ev[i].label, i % 2 ? "down" : "up");
        assert_string_equal(ev.ev[i].port, bref);
        if (i % 2 == 0) {
            assert_true(kt_msg_is(ev.ev[i].msg, ""));
        } else {
            assert_non_null(transport_error(ev.ev[i].msg, bref));
        }
    }
    /* cancelled: no more events */
    aemp_mon_cancel(g);
    assert_int_equal(aemp_snd(a.n, bref, "s", "devnull"), 0);
    assert_true(await_up(&loop, a.n, bref, 1, 10));
    round_trip(&loop, &a, bref, &ev);
    assert_int_equal(kt_rec_count(&ev, "up") + kt_rec_count(&ev, "down"), 6);
    tnode_free(&a);
    tnode_free(&b);
    kt_rec_free(&ev);
    kt_rec_free(&evb);
    nt_loop_finish(&loop);
}

/* ==== refusals
 * =================================================================== */

/* Over real TCP: nodes sharing one certificate and no secret link over
 * TLS with tls_sha3_512; a node with another certificate is refused,
 * whatever secret it knows, and its monitor says why. */
static void tls_certificates(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *net_cert = nt_make_cert("aemp net", -1, 30),
         *other = nt_make_cert("aemp other", -1, 30);
    aemp_netconf_t ca = conf_std(), cx = conf_std();
    ca.secret = NULL;
    ca.cert = net_cert;
    cx.secret = SECRET;
    cx.cert = other;
    cx.monitor_timeout = 2;
    tnode_t a, b, x;
    tnode_init(&a, &loop, &ca, true, NULL);
    tnode_init(&b, &loop, &ca, true, NULL);
    tnode_init(&x, &loop, &cx, true, NULL);
    kt_rec_t rec = {0};
    kt_tap_t ta = {&rec, "at_b", 0}, tx = {&rec, "x_mon", 0};
    const char *pb = mkport(b.n, kt_tap_rcv, &ta);
    assert_int_equal(aemp_snd(a.n, pb, "s", "over tls"), 0);
    assert_true(await_rec(&loop, &rec, "at_b", 1, 10));
    aemp__link_t *l = peer_of(a.n, b.ref)->link;
    assert_string_equal(l->stream->ops->name, "tls");
    assert_string_equal(l->stream->inner->ops->name, "tcp");
    assert_string_equal(l->hs.method, "tls_sha3_512");
    assert_true(kt_log_has(&a.log, "over TLSv1.3"));
    /* x has a secret too, but its certificate is not from the network's
     * CA: refused, on both sides, with the certificate reason */
    assert_int_equal(aemp_mon_cb(x.n, pb, kt_tap_mon, &tx, NULL), 0);
    assert_int_equal(aemp_snd(x.n, pb, "s", "intruder"), 0);
    assert_true(await_rec(&loop, &rec, "x_mon", 1, 10));
    const char *why = transport_error(rec.ev[1].msg, b.ref);
    if (!strstr(why, "certificate")) {
        dump_log(&x);
        fail_msg("reason \"%s\" does not name the certificate", why);
    }
    assert_true(kt_log_has(&b.log, "certificate"));
    assert_int_equal(kt_rec_count(&rec, "at_b"), 1);
    assert_false(aemp_node_is_up(x.n, b.ref));
    tnode_free(&x);
    nodes_finish(&loop, &a, &b, &rec);
    free(net_cert);
    free(other);
}

static void wrong_secret(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    aemp_netconf_t ca = conf_std(), cb = conf_std();
    ca.secret = "alpha";
    cb.secret = "beta";
    ca.monitor_timeout = 1.5;
    /* over TLS (AEMP_TEST_TLS) the shared certificate alone would admit
     * the peer (tls_sha3_512): the secret decides only with HMAC, which
     * then runs inside TLS */
    if (ca.cert)
        ca.auth_accept = ca.auth_offer = cb.auth_accept = cb.auth_offer =
            "hmac_sha3_512";
    tnode_t a, b;
    tnode_init(&a, &loop, &ca, true, NULL);
    tnode_init(&b, &loop, &cb, true, NULL);
    kt_rec_t rec = {0};
    kt_tap_t t = {&rec, "mon", 0};
    const char *pb = mkport(b.n, NULL, NULL);
    uint64_t t0 = kt_now_ms();
    assert_int_equal(aemp_mon_cb(a.n, pb, kt_tap_mon, &t, NULL), 0);
    assert_int_equal(aemp_snd(a.n, pb, "s", "hello"), 0);
    assert_true(await_rec(&loop, &rec, "mon", 1, 10));
    uint64_t ms = kt_now_ms() - t0;
    const char *text = transport_error(rec.ev[0].msg, b.ref);
    if (!strstr(text, "authentication")) {
        dump_log(&a);
        fail_msg("reason \"%s\" does not mention authentication", text);
    }
    /* a refusal is final: the monitor fires at once, not after the
     * monitor_timeout of 1.5 s (issue 12) */
    assert_true(ms < 1000);
    /* both sides say why */
    assert_true(kt_log_has(&a.log, "authentication"));
    if (!kt_log_has(&b.log, "authentication failure/shared secret mismatch")) {
        dump_log(&b);
        fail_msg("B does not log the secret mismatch");
    }
    assert_false(aemp_node_is_up(a.n, b.ref));
    assert_false(aemp_node_is_up(b.n, a.ref));
    assert_int_equal(links_up(a.n), 0);
    assert_int_equal(links_up(b.n), 0);
    nodes_finish(&loop, &a, &b, &rec);
}

/* After each refusal the node still serves: a full round trip works. */
static void still_serving(uv_loop_t *loop, tnode_t *b)
{
    tnode_t a;
    tnode_pub(&a, loop);
    kt_rec_t rec = {0};
    round_trip(loop, &a, b->ref, &rec);
    tnode_free(&a);
    kt_rec_free(&rec);
}

static void echo_attack(void **state)
{
    uv_loop_t loop;
    tnode_t b;
    nodes_start(&loop, NULL, &b, NULL);
    raw_t *r = raw_connect(&loop, b.ref);
    assert_true(await_raw_lines(r, 2));
    assert_int_equal(strncmp(r->in, "aemp;1;", 7), 0);
    /* everything it said, back verbatim */
    raw_write(r, r->in, r->len);
    assert_true(await_raw_eof(r, 10));
    if (!kt_log_has(&b.log, "echo attack")) {
        dump_log(&b);
        fail_msg("no \"echo attack\" in the log");
    }
    /* no authentication line was ever sent to the attacker */
    assert_int_equal(raw_lines(r), 2);
    raw_close(r);
    still_serving(&loop, &b);
    /* the node did not take its own ID for a peer */
    size_t known = known_count(b.n);
    assert_null(peer_of(b.n, b.ref));
    assert_int_equal(known, 2); /* itself and the node of still_serving */
    nodes_finish(&loop, &b, NULL, NULL);
}

/* A node that gets its own ID in a greeting (another nonce). */
static void refuses_itself(void **state)
{
    uv_loop_t loop;
    tnode_t b;
    nodes_start(&loop, NULL, &b, NULL);
    raw_t *r = raw_greet(&loop, b.ref, b.ref, "json");
    assert_true(await_raw_eof(r, 10));
    assert_true(kt_log_has(&b.log, "refusing to talk to myself"));
    raw_close(r);
    still_serving(&loop, &b);
    assert_null(peer_of(b.n, b.ref));
    nodes_finish(&loop, &b, NULL, NULL);
}

/* Raw bytes that get the connection closed with `why` in the log. */
static void refused_with(const char *bytes, size_t len, const char *why)
{
    uv_loop_t loop;
    tnode_t b;
    nodes_start(&loop, NULL, &b, NULL);
    raw_t *r = raw_connect(&loop, b.ref);
    raw_write(r, bytes, len);
    if (!await_raw_eof(r, 10))
        fail_msg("connection not closed after \"%.40s\"", bytes);
    if (!kt_log_has(&b.log, why)) {
        dump_log(&b);
        fail_msg("no \"%s\" in the log", why);
    }
    raw_close(r);
    still_serving(&loop, &b);
    nodes_finish(&loop, &b, NULL, NULL);
}

static void long_greeting(void **state)
{
    char *buf = malloc(5000);
    memset(buf, 'a', 5000);
    memcpy(buf, "aemp;1;", 7);
    refused_with(buf, 5000, "too long");
    free(buf);
}

static void version_mismatch(void **state)
{
    const char g[] = "aemp;2;127.0.0.1:1;hmac_sha3_512;cbor,json\nbm9uY2U=\n";
    refused_with(g, sizeof g - 1, "version mismatch (we: 1, they: 2)");
}

static void unparsable_greeting(void **state)
{
    const char g[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    refused_with(g, sizeof g - 1, "unparsable greeting");
}

/* A connection that says nothing is closed at the handshake deadline. */
static void silent_connection_times_out(void **state)
{
    uv_loop_t loop;
    aemp_netconf_t c = conf_std();
    c.monitor_timeout = 0.5;
    tnode_t b;
    nodes_start(&loop, &c, &b, NULL);
    raw_t *r = raw_connect(&loop, b.ref);
    uint64_t t0 = kt_now_ms();
    assert_true(await_raw_eof(r, 10));
    uint64_t ms = r->eof_at - t0;
    assert_true(ms >= 400 && ms < 3000);
    assert_true(kt_log_has(&b.log, "handshake timeout"));
    /* a greeting alone does not buy more time */
    raw_close(r);
    r = raw_connect(&loop, b.ref);
    const char g[] = "aemp;1;10.9.9.9:1;hmac_sha3_512;json\n";
    raw_write(r, g, sizeof g - 1);
    t0 = kt_now_ms();
    assert_true(await_raw_eof(r, 10));
    assert_true(r->eof_at - t0 < 3000);
    raw_close(r);
    still_serving(&loop, &b);
    nodes_finish(&loop, &b, NULL, NULL);
}

/* Node IDs that peers claim before authenticating are not taken for
 * known nodes (and cannot grow the node table without bound). */
static void unauthenticated_ids_not_remembered(void **state)
{
    uv_loop_t loop;
    tnode_t b;
    nodes_start(&loop, NULL, &b, NULL);
    for (int k = 1; k <= 50; k++) {
        char id[32];
        snprintf(id, sizeof id, "10.255.0.%d:1", k);
        raw_t *r = raw_greet(&loop, b.ref, id, "json");
        /* B answered with its auth line: the greeting was accepted */
        assert_true(await_raw_lines(r, 3));
        raw_close(r);
    }
    still_serving(&loop, &b);
    assert_int_equal(aemp_node_is_known(b.n, "10.255.0.1:1"), 0);
    size_t known = known_count(b.n);
    if (known != 2)
        fail_msg("%zu known nodes after 50 unauthenticated greetings, "
                 "want 2 (itself and one real peer)",
                 known);
    nodes_finish(&loop, &b, NULL, NULL);
}

/* Packets beyond the configured limits close that link with a reason. */
static void packet_limits(void **state)
{
    uv_loop_t loop;
    aemp_netconf_t c = conf_std();
    c.limits.max_packet = 4096;
    c.limits.max_depth = 8;
    tnode_t b;
    nodes_start(&loop, &c, &b, NULL);
    kt_rec_t rec = {0};
    kt_tap_t tb = {&rec, "b", 0};
    const char *pb = mkport(b.n, kt_tap_rcv, &tb);
    /* within the limits: delivered */
    raw_t *r = raw_handshaken(&loop, b.ref, "json", 0);
    char *big = malloc(9000);
    memset(big, 'x', 9000);
    raw_send(r, "sS", name_of(pb), big, (size_t)3000);
    assert_true(await_rec(&loop, &rec, "b", 1, 10));
    /* too large */
    raw_send(r, "sS", name_of(pb), big, (size_t)9000);
    assert_true(await_raw_eof(r, 10));
    raw_close(r);
    assert_true(kt_log_has(&b.log, "too large") || kt_log_has(&b.log, "limit"));
    /* too deep */
    r = raw_handshaken(&loop, b.ref, "json", 0);
    raw_send(r, "s[[[[[[[[[[[[i]]]]]]]]]]]]", name_of(pb), 1);
    assert_true(await_raw_eof(r, 10));
    raw_close(r);
    assert_int_equal(kt_rec_count(&rec, "b"), 1);
    still_serving(&loop, &b);
    free(big);
    nodes_finish(&loop, &b, NULL, &rec);
}

/* A peer that authenticates, then sends garbage: that link closes, the
 * monitors of that peer's ports fire, other links live on. */
static void garbage_after_auth(const char *framings, const char *garbage,
                               size_t glen)
{
    uv_loop_t loop;
    aemp_netconf_t c = conf_std();
    c.framings = framings;
    tnode_t a, b;
    nodes_start(&loop, &c, &a, &b);
    kt_rec_t rec = {0};
    kt_tap_t tm = {&rec, "raw-port", 0}, ta = {&rec, "a-mon", 0},
             tb = {&rec, "b-port", 0};
    const char *pb = mkport(b.n, kt_tap_rcv, &tb);
    /* A has a link to B and monitors a port there */
    assert_int_equal(aemp_mon_cb(a.n, pb, kt_tap_mon, &ta, NULL), 0);
    assert_int_equal(aemp_snd(a.n, pb, "s", "before"), 0);
    assert_true(await_rec(&loop, &rec, "b-port", 1, 10));
    raw_t *r = raw_handshaken(&loop, b.ref, framings, 0);
    /* B monitors a port of the raw peer: mon1 arrives on the wire */
    char rawport[96];
    snprintf(rawport, sizeof rawport, "%s#x.1", r->node_id);
    assert_int_equal(aemp_mon_cb(b.n, rawport, kt_tap_mon, &tm, NULL), 0);
    assert_true(await_raw_pkts(r, 1, 10));
    assert_true(kt_msg_is(r->pkts[0], "sss", "", "mon1", "x.1"));
    raw_write(r, garbage, glen);
    assert_true(await_raw_eof(r, 10));
    assert_true(await_rec(&loop, &rec, "raw-port", 1, 10));
    const aemp_msg_t *reason = kt_rec_nth(&rec, "raw-port", 0)->msg;
    assert_non_null(strstr(transport_error(reason, r->node_id), "malformed"));
    assert_true(kt_log_has(&b.log, "malformed"));
    raw_close(r);
    /* the A-B link was not touched */
    assert_int_equal(aemp_snd(a.n, pb, "s", "after"), 0);
    assert_true(await_rec(&loop, &rec, "b-port", 2, 10));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "b-port", 1)->msg, "s", "after"));
    assert_int_equal(kt_rec_count(&rec, "a-mon"), 0);
    assert_true(aemp_node_is_up(a.n, b.ref));
    assert_true(aemp_node_is_up(b.n, a.ref));
    nodes_finish(&loop, &a, &b, &rec);
}

static void garbage_after_auth_cbor(void **state)
{
    /* 0xff outside an indefinite item; a map where an array must be */
    garbage_after_auth("cbor,json", "\xff\xff\xff\xff", 4);
}

static void garbage_after_auth_json(void **state)
{
    garbage_after_auth("json", "[\"x\" }{{{ nonsense", 18);
}

/* A packet that is no array, and one without a port name. */
static void garbage_not_array(void **state)
{
    garbage_after_auth("json", "{\"a\":1}", 7);
}

static void garbage_no_port_name(void **state)
{
    garbage_after_auth("json", "[1,2,3]", 7);
}

/* ==== the wire: mon1 / kil0 / mon0 / replies as a raw peer sees them ===== */

static void wire_monitor_protocol(void **state)
{
    uv_loop_t loop;
    tnode_t b;
    nodes_start(&loop, NULL, &b, NULL);
    kt_rec_t rec = {0};
    kt_tap_t tb = {&rec, "b", 0};
    const char *p1 = mkport(b.n, kt_tap_rcv, &tb);
    const char *p2 = mkport(b.n, NULL, NULL);
    raw_t *r = raw_handshaken(&loop, b.ref, "json", 0);
    char reply[96];
    snprintf(reply, sizeof reply, "%s#r.1", r->node_id);
    /* a packet to a port */
    raw_send(r, "ssi", name_of(p1), "hi", 1);
    assert_true(await_rec(&loop, &rec, "b", 1, 10));
    assert_true(kt_msg_is(rec.ev[0].msg, "si", "hi", 1));
    /* monitor p1 and p2, unmonitor p2, monitor a missing port */
    raw_send(r, "sss", "", "mon1", name_of(p1));
    raw_send(r, "sss", "", "mon1", name_of(p2));
    raw_send(r, "sss", "", "mon0", name_of(p2));
    raw_send(r, "sss", "", "mon1", "nosuch.7");
    raw_send(r, "ssss", "", "info", reply, "i1");
    assert_true(await_raw_pkts(r, 2, 10));
    char missing[96];
    snprintf(missing, sizeof missing, "%s#nosuch.7", b.ref);
    /* the kil0 for the missing port and the reply, in either order */
    int k = kt_msg_is(r->pkts[0], "sss", "r.1", "i1", b.ref) ? 1 : 0;
    assert_true(kt_msg_is(r->pkts[k], "ssssss", "", "kil0", "nosuch.7",
                          "no_such_port", "cannot monitor nonexistent port",
                          missing));
    assert_true(kt_msg_is(r->pkts[1 - k], "sss", "r.1", "i1", b.ref));
    assert_int_equal(watchers_of(b.n, r->node_id), 1);
    /* the reason travels as kil0 */
    assert_int_equal(aemp_kil(b.n, p2, "s", "p2 dies"), 0);
    assert_int_equal(aemp_kil(b.n, p1, "ss{i}", "p1 dies", "why", "n", 5), 0);
    raw_send(r, "ssss", "", "info", reply, "i2");
    assert_true(await_raw_pkts(r, 4, 10));
    assert_true(kt_msg_is(r->pkts[2], "sssss{i}", "", "kil0", name_of(p1),
                          "p1 dies", "why", "n", 5));
    assert_true(kt_msg_is(r->pkts[3], "sss", "r.1", "i2", b.ref));
    /* nothing about p2 (mon0) */
    assert_int_equal(r->npkts, 4);
    assert_int_equal(r->reader_rc, 0);
    /* kil from the peer, with and without a reason */
    kt_tap_t t3 = {&rec, "p3", 0}, t4 = {&rec, "p4", 0};
    const char *p3 = mkport(b.n, NULL, NULL), *p4 = mkport(b.n, NULL, NULL);
    assert_int_equal(aemp_mon_cb(b.n, p3, kt_tap_mon, &t3, NULL), 0);
    assert_int_equal(aemp_mon_cb(b.n, p4, kt_tap_mon, &t4, NULL), 0);
    raw_send(r, "ssss", "", "kil", name_of(p3), "bye");
    raw_send(r, "sss", "", "kil", name_of(p4));
    assert_true(await_rec(&loop, &rec, "p4", 1, 10));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "p3", 0)->msg, "s", "bye"));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "p4", 0)->msg, ""));
    /* [] is a keepalive: ignored */
    raw_send(r, "");
    raw_send(r, "ssss", "", "info", reply, "i3");
    assert_true(await_raw_pkts(r, 5, 10));
    assert_true(kt_msg_is(r->pkts[4], "sss", "r.1", "i3", b.ref));
    assert_true(aemp_node_is_up(b.n, r->node_id));
    char raw_id[64];
    snprintf(raw_id, sizeof raw_id, "%s", r->node_id);
    raw_close(r);
    assert_true(await_up(&loop, b.n, raw_id, 0, 10));
    nodes_finish(&loop, &b, NULL, &rec);
}

/* ==== racing dials
 * ================================================================ */

typedef struct race {
    seqrx_t rxa, rxb;   /* what A / B received */
    seqrx_t mona, monb; /* A's monitor of pb / B's monitor of pa fired */
} race_t;

static int race_settled(void *arg)
{
    race_t *r = arg;
    return (r->rxb.count == 200 || r->mona.fired) &&
           (r->rxa.count == 200 || r->monb.fired);
}

typedef struct links_cond {
    aemp_node_t *a, *b;
} links_cond_t;

static int one_link_each(void *arg)
{
    links_cond_t *c = arg;
    return links_all(c->a) == 1 && links_all(c->b) == 1;
}

static void simultaneous_connects(void **state)
{
    int fired_rounds = 0;
    for (int round = 0; round < 20; round++) {
        uv_loop_t loop;
        tnode_t a, b;
        nodes_start(&loop, NULL, &a, &b);
        race_t r;
        memset(&r, 0, sizeof r);
        const char *pa = mkport(a.n, seq_rcv, &r.rxa);
        const char *pb = mkport(b.n, seq_rcv, &r.rxb);
        /* both dial in the same loop iteration */
        assert_int_equal(aemp_mon_cb(a.n, pb, seq_fired, &r.mona, NULL), 0);
        assert_int_equal(aemp_mon_cb(b.n, pa, seq_fired, &r.monb, NULL), 0);
        for (int64_t i = 0; i < 100; i++) {
            assert_int_equal(aemp_snd(a.n, pb, "sI", "seq", i), 0);
            assert_int_equal(aemp_snd(b.n, pa, "sI", "seq", i), 0);
        }
        assert_non_null(peer_of(a.n, b.ref)->dialing);
        assert_non_null(peer_of(b.n, a.ref)->dialing);
        /* and more once something happened */
        nt_run_for(&loop, 0.001);
        for (int64_t i = 100; i < 200; i++) {
            assert_int_equal(aemp_snd(a.n, pb, "sI", "seq", i), 0);
            assert_int_equal(aemp_snd(b.n, pa, "sI", "seq", i), 0);
        }
        if (!nt_run_until(&loop, race_settled, &r, 15)) {
            dump_log(&a);
            dump_log(&b);
            fail_msg("round %d: A got %lld, B got %lld, monitors %d/%d", round,
                     (long long)r.rxa.count, (long long)r.rxb.count,
                     r.mona.fired, r.monb.fired);
        }
        seqrx_check(&r.rxa, "B->A");
        seqrx_check(&r.rxb, "A->B");
        if (r.mona.fired || r.monb.fired)
            fired_rounds++;
        /* exactly one link survives, the same connection on both sides */
        links_cond_t lc = {a.n, b.n};
        if (!nt_run_until(&loop, one_link_each, &lc, 5))
            fail_msg("round %d: %zu links on A, %zu on B", round,
                     links_all(a.n), links_all(b.n));
        assert_int_equal(links_up(a.n), 1);
        assert_int_equal(links_up(b.n), 1);
        assert_true(aemp_node_is_up(a.n, b.ref));
        assert_true(aemp_node_is_up(b.n, a.ref));
        struct sockaddr_storage la, pb_;
        int len = sizeof la;
        uv_tcp_t *ta = &aemp__tcp_of(a.n->net->links->stream)->tcp;
        uv_tcp_t *tb = &aemp__tcp_of(b.n->net->links->stream)->tcp;
        assert_int_equal(uv_tcp_getsockname(ta,
                                            (struct sockaddr *)&la, &len),
                         0);
        len = sizeof pb_;
        assert_int_equal(uv_tcp_getpeername(tb,
                                            (struct sockaddr *)&pb_, &len),
                         0);
        assert_int_equal(((struct sockaddr_in *)&la)->sin_port,
                         ((struct sockaddr_in *)&pb_)->sin_port);
        /* the surviving link carries traffic both ways */
        assert_int_equal(aemp_snd(a.n, pb, "s", "marker"), 0);
        assert_int_equal(aemp_snd(b.n, pa, "s", "marker"), 0);
        assert_true(nt_run_flag(&loop, &r.rxb.marker, 5));
        assert_true(nt_run_flag(&loop, &r.rxa.marker, 5));
        tnode_free(&a);
        tnode_free(&b);
        aemp_msg_unref(r.mona.reason);
        aemp_msg_unref(r.monb.reason);
        nt_loop_finish(&loop);
    }
    if (fired_rounds)
        fprintf(stderr, "  %d of 20 rounds lost the race with a monitor\n",
                fired_rounds);
}

/* A node whose peer is in the middle of a handshake (its greeting named
 * the peer, no link yet) and that sends to that peer must keep serving. */
static void send_during_handshake(void **state)
{
    uv_loop_t loop;
    tnode_t b;
    nodes_start(&loop, NULL, &b, NULL);
    char x[64], port[96];
    snprintf(x, sizeof x, "127.0.0.1:%d", nt_free_port());
    raw_t *r = raw_greet(&loop, b.ref, x, "cbor,json");
    /* greeting, nonce and B's authentication line: the link is named */
    assert_true(await_raw_lines(r, 3));
    assert_int_equal(peer_of(b.n, x)->handshaking, 1);
    snprintf(port, sizeof port, "%s#p.1", x);
    assert_int_equal(aemp_snd(b.n, port, "s", "while handshaking"), 0);
    still_serving(&loop, &b);
    raw_close(r);
    nodes_finish(&loop, &b, NULL, NULL);
}

/* ==== a link cut under load
 * ===================================================== */

/* B's port counts ["seq", i]; its first message ["watch", port] makes it
 * monitor that port with form 3 (kill SELF). */
static int watch_then_count(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    const char *tag, *target;
    if (aemp_msg_unpack(m, "ss", &tag, &target) == 0 && !strcmp(tag, "watch"))
        return aemp_mon_kill(aemp_ctx_node(ctx), target, NULL, NULL);
    return seq_rcv(ctx, m, user);
}

static void cut_under_load(bool form3, bool cut_receiver)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    seqrx_t rx = {0};
    kt_rec_t rec = {0};
    kt_tap_t tdeath = {&rec, "pb-death", 0};
    const char *pa = mkport(a.n, NULL, NULL); /* the sender */
    const char *pb = mkport(b.n, form3 ? watch_then_count : seq_rcv, &rx);
    assert_int_equal(aemp_mon_cb(b.n, pb, kt_tap_mon, &tdeath, NULL), 0);
    if (form3)
        assert_int_equal(aemp_snd(a.n, pb, "ss", "watch", pa), 0);
    else
        assert_int_equal(aemp_mon_cb(b.n, pa, seq_fired, &rx, NULL), 0);
    /* the monitor is in place on A before the stream starts */
    await_watchers(&loop, a.n, b.ref, 1);
    rx.cut_fd = cut_receiver ? link_fd(b.n, a.ref) : link_fd(a.n, b.ref);
    rx.cut_at = 30011;
    pump_t p = {a.n, pb, &rx, 100000, 0, 20000, 0, 0};
    nt_run_until(&loop, pump_done, &p, 60);
    assert_int_equal(rx.cut_done, 1);
    assert_int_equal(rx.fired, 0);
    int64_t sent = p.sent;
    if (form3)
        assert_true(await_rec(&loop, &rec, "pb-death", 1, 10));
    else
        assert_true(nt_run_flag(&loop, &rx.fired, 10));
    int64_t at_fire = rx.count;
    /* A notices too; then give stray packets every chance to show up */
    assert_true(await_up(&loop, a.n, b.ref, 0, 10));
    assert_true(await_up(&loop, b.n, a.ref, 0, 10));
    still_serving(&loop, &b);
    fprintf(stderr, "  cut (%s, %s side): %lld sent, %lld delivered\n",
            form3 ? "form 3" : "callback", cut_receiver ? "receiver" : "sender",
            (long long)sent, (long long)rx.count);
    seqrx_check(&rx, "cut stream");
    assert_int_equal(rx.count, at_fire); /* nothing after the monitor */
    assert_true(rx.count <= sent);
    assert_int_equal(rx.after_fire, 0);
    const aemp_msg_t *reason =
        form3 ? kt_rec_nth(&rec, "pb-death", 0)->msg : rx.reason;
    transport_error(reason, a.ref);
    if (form3)
        assert_false(aemp_port_exists(b.n, pb));
    else
        assert_int_equal(kt_rec_count(&rec, "pb-death"), 0);
    tnode_free(&a);
    tnode_free(&b);
    aemp_msg_unref(rx.reason);
    kt_rec_free(&rec);
    nt_loop_finish(&loop);
}

static void cut_receiver_form3(void **state)
{
    cut_under_load(true, true);
}
static void cut_sender_callback(void **state)
{
    cut_under_load(false, false);
}
static void cut_receiver_callback(void **state)
{
    cut_under_load(false, true);
}

/* ==== unreachable and restarted nodes
 * ============================================ */

static void flushed(aemp_node_t *n, int status, void *user)
{
    int *st = user;
    *st = status == 0 ? 1 : status;
}

static void unreachable_queue_dropped(void **state)
{
    uv_loop_t loop;
    aemp_netconf_t c = conf_std();
    c.monitor_timeout = 0.5;
    c.connect_interval = 0.1;
    tnode_t a;
    nodes_start(&loop, &c, &a, NULL);
    char dead[64];
    snprintf(dead, sizeof dead, "127.0.0.1:%d", nt_free_port());
    kt_rec_t rec = {0};
    kt_tap_t tm = {&rec, "mon", 0}, ta = {&rec, "a", 0};
    const char *pa = mkport(a.n, kt_tap_rcv, &ta);
    uint64_t t0 = kt_now_ms();
    assert_int_equal(aemp_mon_cb(a.n, dead, kt_tap_mon, &tm, NULL), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(aemp_snd(a.n, dead, "sssi", "snd", pa, "old", i), 0);
    int fl = 0;
    assert_int_equal(aemp_flush(a.n, dead, flushed, &fl), 0);
    assert_true(await_rec(&loop, &rec, "mon", 1, 10));
    uint64_t ms = kt_now_ms() - t0;
    /* nobody listens: the refused connection fails everything at once,
     * well before monitor_timeout (0.5 s) */
    assert_true(ms < 400);
    const char *text = transport_error(rec.ev[0].msg, dead);
    assert_string_equal(text, "unable to connect: connection refused");
    fprintf(stderr, "  unreachable after %llu ms: %s\n", (unsigned long long)ms,
            text);
    assert_true(nt_run_flag(&loop, &fl, 5));
    assert_int_equal(fl, AEMP_ENOROUTE);
    /* the queue is gone */
    aemp__peer_t *peer = peer_of(a.n, dead);
    assert_null(peer->qhead);
    assert_int_equal(peer->qbytes, 0);
    /* the node appears: nothing old is retransmitted */
    tnode_t b;
    tnode_init(&b, &loop, &c, true, dead);
    assert_int_equal(aemp_snd(a.n, dead, "ssss", "snd", pa, "new", "x"), 0);
    round_trip(&loop, &a, dead, &rec);
    assert_int_equal(kt_rec_count(&rec, "a"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "a", 0)->msg, "ss", "new", "x"));
    nodes_finish(&loop, &a, &b, &rec);
}

static void restarted_node(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    char bref[64], old[128];
    snprintf(bref, sizeof bref, "%s", b.ref);
    kt_rec_t rec = {0};
    kt_tap_t t1 = {&rec, "b1", 0}, t2 = {&rec, "b2", 0},
             tm1 = {&rec, "mon-old", 0}, tm2 = {&rec, "mon-old-again", 0};
    snprintf(old, sizeof old, "%s", mkport(b.n, kt_tap_rcv, &t1));
    assert_int_equal(aemp_mon_cb(a.n, old, kt_tap_mon, &tm1, NULL), 0);
    assert_int_equal(aemp_snd(a.n, old, "s", "to b1"), 0);
    assert_true(await_rec(&loop, &rec, "b1", 1, 10));
    tnode_free(&b);
    assert_true(await_rec(&loop, &rec, "mon-old", 1, 10));
    transport_error(kt_rec_nth(&rec, "mon-old", 0)->msg, bref);
    /* B comes back on the same address: new instance, new port IDs */
    aemp_netconf_t c = conf_std();
    tnode_init(&b, &loop, &c, true, bref);
    const char *pb2 = mkport(b.n, kt_tap_rcv, &t2);
    assert_string_not_equal(pb2, old);
    assert_int_equal(strncmp(pb2, bref, strlen(bref)), 0);
    assert_int_equal(aemp_snd(a.n, old, "s", "to the old ID"), 0);
    assert_int_equal(aemp_mon_cb(a.n, old, kt_tap_mon, &tm2, NULL), 0);
    assert_int_equal(aemp_snd(a.n, pb2, "s", "to b2"), 0);
    assert_true(await_rec(&loop, &rec, "b2", 1, 10));
    assert_true(await_rec(&loop, &rec, "mon-old-again", 1, 10));
    round_trip(&loop, &a, bref, &rec);
    assert_int_equal(kt_rec_count(&rec, "b2"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "b2", 0)->msg, "s", "to b2"));
    assert_int_equal(kt_rec_count(&rec, "b1"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "mon-old-again", 0)->msg, "sss",
                          "no_such_port", "cannot monitor nonexistent port",
                          old));
    nodes_finish(&loop, &a, &b, &rec);
}

/* ==== keepalive
 * ====================================================================== */

static int link_dropped(void *arg)
{
    up_cond_t *c = arg;
    return !aemp_node_is_up(c->n, c->peer);
}

static void keepalive_idle_for(unsigned keepalive, double idle)
{
    uv_loop_t loop;
    aemp_netconf_t c = conf_std();
    c.keepalive = keepalive;
    tnode_t a, b;
    nodes_start(&loop, &c, &a, &b);
    kt_rec_t ev = {0};
    assert_int_equal(aemp_mon_nodes(a.n, node_event, &ev, NULL), 0);
    assert_int_equal(aemp_snd(a.n, b.ref, "s", "devnull"), 0);
    assert_true(await_up(&loop, a.n, b.ref, 1, 10));
    assert_true(await_up(&loop, b.n, a.ref, 1, 10));
    uint64_t read_a = peer_of(a.n, b.ref)->link->last_read;
    uint64_t read_b = peer_of(b.n, a.ref)->link->last_read;
    /* idle for 3 seconds: the link must stay up the whole time */
    up_cond_t down_a = {a.n, b.ref, 0}, down_b = {b.n, a.ref, 0};
    uint64_t t0 = kt_now_ms();
    int dropped = nt_run_until(&loop, link_dropped, &down_a, idle);
    dropped |= link_dropped(&down_b);
    if (dropped) {
        dump_log(&a);
        dump_log(&b);
        fail_msg("idle link with keepalive=%u dropped after %llu ms", keepalive,
                 (unsigned long long)(kt_now_ms() - t0));
    }
    assert_int_equal(ev.n, 1); /* the up event only */
    /* and it was kept up by traffic: both sides read something */
    assert_true(peer_of(a.n, b.ref)->link->last_read > read_a);
    assert_true(peer_of(b.n, a.ref)->link->last_read > read_b);
    nodes_finish(&loop, &a, &b, &ev);
}

/* keepalive=1: [] packets keep an idle link up for 3 s. */
static void keepalive_idle(void **state)
{
    keepalive_idle_for(1, 3);
}

/* The same with keepalive=2 for 5 s (where the tick has room). */
static void keepalive_idle_2s(void **state)
{
    keepalive_idle_for(2, 5);
}

/* A peer that promised timeout=1 and then says nothing is cut off. */
static void keepalive_read_timeout(void **state)
{
    uv_loop_t loop;
    tnode_t b;
    nodes_start(&loop, NULL, &b, NULL);
    kt_rec_t rec = {0};
    kt_tap_t tm = {&rec, "mon", 0};
    raw_t *r = raw_handshaken(&loop, b.ref, "json", 1);
    char rawport[96];
    snprintf(rawport, sizeof rawport, "%s#x.1", r->node_id);
    assert_int_equal(aemp_mon_cb(b.n, rawport, kt_tap_mon, &tm, NULL), 0);
    uint64_t t0 = kt_now_ms();
    assert_true(await_raw_eof(r, 10));
    uint64_t ms = r->eof_at - t0;
    fprintf(stderr, "  silent peer cut off after %llu ms\n",
            (unsigned long long)ms);
    assert_true(ms >= 900 && ms < 3500);
    assert_true(kt_log_has(&b.log, "keepalive timeout"));
    assert_true(await_rec(&loop, &rec, "mon", 1, 5));
    assert_string_equal(transport_error(rec.ev[0].msg, NULL),
                        "keepalive timeout");
    /* B itself sent keepalives meanwhile? (it announced 30 s: not yet) */
    raw_close(r);
    nodes_finish(&loop, &b, NULL, &rec);
}

/* ==== backpressure
 * ==================================================================== */

typedef struct flood {
    aemp_node_t *n;
    const char *to;
    char *blob;
    size_t blob_len, sent_bytes, max_buffered, max_queued;
    seqrx_t *mon;
    const char *peer;
} flood_t;

static int flood_step(void *arg)
{
    flood_t *f = arg;
    for (int i = 0; i < 64; i++) {
        assert_int_equal(
            aemp_snd(f->n, f->to, "sy", "blob", f->blob, f->blob_len), 0);
        f->sent_bytes += f->blob_len;
    }
    aemp__peer_t *p = peer_of(f->n, f->peer);
    if (p && p->link) {
        size_t b = p->link->out.cap +
                   aemp__tcp_of(p->link->stream)->inflight.cap;
        if (b > f->max_buffered)
            f->max_buffered = b;
    }
    if (p && p->qbytes > f->max_queued)
        f->max_queued = p->qbytes;
    return f->mon->fired || f->sent_bytes > (512u << 20);
}

/* One callback that sends far more than a batch to a peer: the batch
 * goes to the socket while the callback still runs, not only when the
 * dispatch pass is over (a long pass would hold everything back). */
struct big_sender {
    const char *to, *peer;
    int started_writing;
};

static int send_big(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    struct big_sender *s = user;
    aemp_node_t *n = aemp_ctx_node(ctx);
    static char blob[1024];
    aemp__peer_t *p = peer_of(n, s->peer);
    assert_non_null(p);
    assert_non_null(p->link);
    for (int i = 0; i < 2048; i++) /* 2 MiB */
        assert_int_equal(aemp_snd(n, s->to, "sy", "blob", blob, sizeof blob),
                         0);
    /* the socket took some, or is taking it (a write request) */
    s->started_writing =
        p->link && (aemp__link_unwritten(p->link) < p->link->appended ||
                    p->link->writing);
    return 0;
}

static void big_batch_written_during_pass(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    kt_rec_t rec = {0};
    nodes_start(&loop, NULL, &a, &b);
    kt_tap_t tap = {&rec, "blob", 0};
    const char *pb = mkport(b.n, kt_tap_rcv, &tap);
    struct big_sender s = {pb, b.ref, 0};
    const char *pa = mkport(a.n, send_big, &s);
    assert_int_equal(aemp_snd(a.n, b.ref, "s", "devnull"), 0);
    assert_true(await_up(&loop, a.n, b.ref, 1, 10));
    assert_int_equal(aemp_snd(a.n, pa, "s", "go"), 0);
    assert_true(await_rec(&loop, &rec, "blob", 2048, 30));
    assert_true(s.started_writing);
    nodes_finish(&loop, &a, &b, &rec);
}

static void flood_nonreader(void **state)
{
    uv_loop_t loop;
    aemp_netconf_t c = conf_std();
    c.max_backlog = 1u << 20;
    tnode_t a;
    nodes_start(&loop, &c, &a, NULL);
    raw_t *r = raw_handshaken(&loop, a.ref, "cbor", 0);
    assert_true(await_up(&loop, a.n, r->node_id, 1, 10));
    raw_stop_reading(r);
    char target[96];
    snprintf(target, sizeof target, "%s#x.1", r->node_id);
    seqrx_t mon = {0};
    assert_int_equal(aemp_mon_cb(a.n, target, seq_fired, &mon, NULL), 0);
    flood_t f = {a.n, target, malloc(4096), 4096, 0, 0, 0, &mon, r->node_id};
    memset(f.blob, 'z', f.blob_len);
    /* the loop has nothing to wait for once the socket is full: tick */
    nt_run_until_tick(&loop, flood_step, &f, 60, 1);
    /* go on flooding: now into the queue, which must stay bounded too */
    for (int i = 0; i < 50; i++) {
        flood_step(&f);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    fprintf(stderr,
            "  flood: %zu MiB sent, max %zu KiB buffered on the link,"
            " max %zu KiB queued\n",
            f.sent_bytes >> 20, f.max_buffered >> 10, f.max_queued >> 10);
    assert_int_equal(mon.fired, 1);
    assert_string_equal(transport_error(mon.reason, NULL),
                        "send queue overflow");
    assert_false(aemp_node_is_up(a.n, r->node_id));
    /* memory stayed bounded: the link's buffers and the queue after it */
    assert_true(f.max_buffered <= (4u << 20));
    assert_true(f.max_queued <= (1u << 20) + 8192);
    free(f.blob);
    raw_close(r);
    tnode_free(&a);
    aemp_msg_unref(mon.reason);
    nt_loop_finish(&loop);
}

/* ==== SIGPIPE
 * ========================================================================= */

/* A peer that hangs up while a node is writing to it must not kill the
 * process: a write to a socket the peer has reset raises SIGPIPE unless
 * the library (or the program) prevents it.  Runs in a child process with
 * the default disposition, since SIGPIPE kills the whole test otherwise. */
static int sigpipe_child(void)
{
    signal(SIGPIPE, SIG_DFL);
    alarm(60);
    int fired_total = 0;
    for (int round = 0; round < 10; round++) {
        uv_loop_t loop;
        tnode_t a;
        nodes_start(&loop, NULL, &a, NULL);
        raw_t *r = raw_handshaken(&loop, a.ref, "cbor", 0);
        char target[96];
        snprintf(target, sizeof target, "%s#x.1", r->node_id);
        seqrx_t mon = {0};
        aemp_mon_cb(a.n, target, seq_fired, &mon, NULL);
        flood_t f = {a.n, target, malloc(16384), 16384,     0,
                     0,   0,      &mon,          r->node_id};
        memset(f.blob, 'q', f.blob_len);
        /* the peer reads for a while, then hangs up in the middle */
        for (int i = 0; i < 20 && !mon.fired; i++) {
            flood_step(&f);
            uv_run(&loop, UV_RUN_NOWAIT);
        }
        shutdown(r->fd, SHUT_RDWR);
        nt_run_until_tick(&loop, flood_step, &f, 10, 1);
        fired_total += mon.fired;
        free(f.blob);
        raw_close(r);
        tnode_free(&a);
        aemp_msg_unref(mon.reason);
        nt_loop_finish(&loop);
    }
    return fired_total == 10 ? 0 : 3;
}

static void peer_hangup_no_sigpipe(void **state)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(sigpipe_child());
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st))
        fail_msg("the process died of signal %d (%s) when a peer hung up",
                 WTERMSIG(st), WTERMSIG(st) == SIGPIPE ? "SIGPIPE" : "?");
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* ==== running
 * ========================================================================= */

int main(void)
{
    /* SIGPIPE is tested by peer_hangup_no_sigpipe in a child of its own;
     * elsewhere it would end the run */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        ISOLATED(three_nodes_snd, 60),
        ISOLATED(fifo_queued_before_link, 60),
        ISOLATED(fifo_100k_json, 60),
        ISOLATED(fifo_million_cbor, 240),
        ISOLATED(remote_mon_forms, 60),
        ISOLATED(remote_mon_nonexistent, 60),
        ISOLATED(guard_cancel_sends_mon0, 60),
        ISOLATED(remote_kil, 60),
        ISOLATED(free_text_ids, 60),
        ISOLATED(port_ids_fail_fast, 60),
        ISOLATED(unresolvable_fails_fast, 60),
        ISOLATED(node_port_requests, 60),
        ISOLATED(mon_nodes_alternate, 60),
        ISOLATED(tls_certificates, 60),
        ISOLATED(wrong_secret, 60),
        ISOLATED(echo_attack, 60),
        ISOLATED(refuses_itself, 60),
        ISOLATED(long_greeting, 60),
        ISOLATED(version_mismatch, 60),
        ISOLATED(unparsable_greeting, 60),
        ISOLATED(silent_connection_times_out, 60),
        ISOLATED(unauthenticated_ids_not_remembered, 60),
        ISOLATED(packet_limits, 60),
        ISOLATED(garbage_after_auth_cbor, 60),
        ISOLATED(garbage_after_auth_json, 60),
        ISOLATED(garbage_not_array, 60),
        ISOLATED(garbage_no_port_name, 60),
        ISOLATED(wire_monitor_protocol, 60),
        ISOLATED(simultaneous_connects, 60),
        ISOLATED(send_during_handshake, 30),
        ISOLATED(cut_receiver_form3, 60),
        ISOLATED(cut_sender_callback, 60),
        ISOLATED(cut_receiver_callback, 60),
        ISOLATED(unreachable_queue_dropped, 60),
        ISOLATED(restarted_node, 60),
        ISOLATED(keepalive_idle, 60),
        ISOLATED(keepalive_idle_2s, 60),
        ISOLATED(keepalive_read_timeout, 60),
        ISOLATED(flood_nonreader, 120),
        ISOLATED(big_batch_written_during_pass, 60),
        ISOLATED(peer_hangup_no_sigpipe, 60),
    };
    /* a cmocka filter from the environment, e.g. AEMP_TEST_FILTER=cut_* */
    const char *filter = getenv("AEMP_TEST_FILTER");
    if (filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
