/* Links over the in-memory pipe stream (src/net/pipe_stream.c): two nodes
 * on one loop, no sockets.  The handshake from either side, both framings
 * and mixed ones, writes the stream takes only in part, flush and backlog
 * against the pipe's own count, a peer that hangs up inside a packet,
 * garbage after the handshake, the stream switch after the nonce lines
 * (with a wrapper that XORs every byte), and an allocation-failure sweep
 * over a link's whole life. */
#include "certs.h"
#include "helpers.h"

#include "net.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET "link test secret"

/* With a certificate (the TLS tests set it), links over the pipe become
 * TLS after the nonce lines, authenticated by it alone: no secret. */
static char *link_cert;

static aemp_netconf_t conf_of(const char *framings)
{
    return (aemp_netconf_t){.secret = link_cert ? NULL : SECRET,
                            .cert = link_cert,
                            .monitor_timeout = 5,
                            .framings = framings};
}

/* ---- two nodes and a pipe ------------------------------------------------ */

typedef struct duo {
    uv_loop_t loop;
    aemp_node_t *a, *b;
    aemp__stream_t *sa, *sb; /* the pipe's ends: valid while their links
                                live */
    kt_rec_t rec, log_a, log_b;
} duo_t;

static aemp_node_t *node_new(uv_loop_t *loop, const char *framings,
                             kt_rec_t *log)
{
    aemp_node_t *n = NULL;
    aemp_netconf_t c = conf_of(framings);
    assert_int_equal(aemp_node_new(&n, loop), 0);
    assert_int_equal(aemp_node_configure(n, &c), 0);
    aemp_node_set_log(n, AEMP_LOG_DEBUG, kt_log_rec, log);
    return n;
}

static aemp__peer_t *peer_of(aemp_node_t *n, aemp_node_t *other)
{
    const char *id = aemp_noderef(other);
    return aemp__peer_get(n, id, strlen(id), false);
}

static aemp__link_t *link_of(aemp_node_t *n, aemp_node_t *other)
{
    aemp__peer_t *p = peer_of(n, other);
    return p ? p->link : NULL;
}

/* A new pipe between the nodes, and a link over each end: `dialler`
 * dials (a or b), the other accepts.  k: max_write of both ends. */
static void duo_link(duo_t *d, aemp_node_t *dialler, size_t k)
{
    aemp_node_t *other = dialler == d->a ? d->b : d->a;
    assert_int_equal(aemp__pipe_pair(&d->loop, &d->sa, &d->sb), 0);
    aemp__pipe_set_max_write(d->sa, k);
    aemp__pipe_set_max_write(d->sb, k);
    const char *id = aemp_noderef(other);
    aemp__peer_t *p = aemp__peer_get(dialler, id, strlen(id), true);
    assert_non_null(p);
    aemp__stream_t *mine = dialler == d->a ? d->sa : d->sb;
    aemp__stream_t *theirs = dialler == d->a ? d->sb : d->sa;
    assert_int_equal(aemp__link_over(dialler, mine, p), 0);
    assert_int_equal(aemp__link_over(other, theirs, NULL), 0);
}

static void duo_init(duo_t *d, const char *fa, const char *fb)
{
    memset(d, 0, sizeof *d);
    uv_loop_init(&d->loop);
    d->a = node_new(&d->loop, fa, &d->log_a);
    d->b = node_new(&d->loop, fb, &d->log_b);
}

static void dump(const kt_rec_t *log)
{
    for (size_t i = 0; i < log->n; i++) {
        const char *text = "?";
        aemp_msg_unpack(log->ev[i].msg, "-s", &text);
        fprintf(stderr, "  [%s] %s\n", log->ev[i].port, text);
    }
}

static int both_up(void *arg)
{
    duo_t *d = arg;
    return aemp_node_is_up(d->a, aemp_noderef(d->b)) &&
           aemp_node_is_up(d->b, aemp_noderef(d->a));
}

static void await_up(duo_t *d)
{
    if (!nt_run_until(&d->loop, both_up, d, 10)) {
        dump(&d->log_a);
        dump(&d->log_b);
        fail_msg("the link did not come up");
    }
}

static void duo_finish(duo_t *d)
{
    aemp_node_free(d->a);
    aemp_node_free(d->b);
    kt_rec_free(&d->rec);
    kt_rec_free(&d->log_a);
    kt_rec_free(&d->log_b);
    nt_loop_finish(&d->loop);
}

typedef struct rec_cond {
    const kt_rec_t *rec;
    const char *label;
    size_t want;
} rec_cond_t;

static int rec_has(void *arg)
{
    rec_cond_t *c = arg;
    return kt_rec_count(c->rec, c->label) >= c->want;
}

static void await_rec(duo_t *d, const char *label, size_t want)
{
    rec_cond_t c = {&d->rec, label, want};
    if (!nt_run_until(&d->loop, rec_has, &c, 10)) {
        dump(&d->log_a);
        dump(&d->log_b);
        fail_msg("%zu events \"%s\", want %zu", kt_rec_count(&d->rec, label),
                 label, want);
    }
}

/* A port's ID, copied: it outlives the library's copy. */
static char *port_on(aemp_node_t *n, kt_tap_t *tap)
{
    const char *id;
    assert_int_equal(aemp_port(n, kt_tap_rcv, tap, &id), 0);
    return strdup(id);
}

/* Messages both ways, one of them bigger than any write the pipe takes. */
static void exchange(duo_t *d, size_t big)
{
    kt_tap_t ta = {&d->rec, "at_a", 0}, tb = {&d->rec, "at_b", 0};
    char *pa = port_on(d->a, &ta), *pb = port_on(d->b, &tb);
    /* text: JSON carries it as it is (byte strings become text there) */
    char *blob = malloc(big);
    for (size_t i = 0; i < big; i++)
        blob[i] = (char)('a' + i * 7 % 26);
    size_t before_a = kt_rec_count(&d->rec, "at_a");
    size_t before_b = kt_rec_count(&d->rec, "at_b");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(aemp_snd(d->a, pb, "si", "n", i), 0);
        assert_int_equal(aemp_snd(d->b, pa, "si", "n", i), 0);
    }
    assert_int_equal(aemp_snd(d->a, pb, "sS", "blob", blob, big), 0);
    assert_int_equal(aemp_snd(d->b, pa, "sS", "blob", blob, big), 0);
    await_rec(d, "at_a", before_a + 4);
    await_rec(d, "at_b", before_b + 4);
    for (int side = 0; side < 2; side++) {
        const char *label = side ? "at_b" : "at_a";
        size_t first = side ? before_b : before_a;
        for (int i = 0; i < 3; i++)
            assert_true(kt_msg_is(kt_rec_nth(&d->rec, label, first + i)->msg,
                                  "si", "n", i));
        assert_true(kt_msg_is(kt_rec_nth(&d->rec, label, first + 3)->msg, "sS",
                              "blob", blob, big));
    }
    free(blob);
    aemp_kil(d->a, pa, NULL);
    aemp_kil(d->b, pb, NULL);
    free(pa);
    free(pb);
}

/* ---- the handshake from either side -------------------------------------- */

static void handshake_both_ways(void **state)
{
    for (int dir = 0; dir < 2; dir++) {
        duo_t d;
        duo_init(&d, NULL, NULL);
        duo_link(&d, dir ? d.b : d.a, 0);
        await_up(&d);
        aemp__link_t *la = link_of(d.a, d.b), *lb = link_of(d.b, d.a);
        assert_non_null(la);
        assert_non_null(lb);
        assert_int_equal(la->outgoing, !dir);
        assert_int_equal(lb->outgoing, dir);
        assert_string_equal(la->stream->ops->name, "pipe");
        /* the default lists hold both Perl dialects' methods; between
         * our nodes it is still SHA3 and CBOR */
        assert_non_null(strstr(la->hs.l1, "hmac_md6_64_256"));
        assert_string_equal(la->hs.method, "hmac_sha3_512");
        assert_string_equal(lb->hs.method, "hmac_sha3_512");
        assert_int_equal(la->hs.send_framing, AEMP_CBOR);
        assert_int_equal(lb->hs.send_framing, AEMP_CBOR);
        exchange(&d, 1000);
        duo_finish(&d);
    }
}

/* ---- framings ------------------------------------------------------------ */

static void framings(void **state)
{
    static const struct {
        const char *fa, *fb;
        aemp_framing_t a_sends, b_sends;
    } cases[] = {
        {NULL, NULL, AEMP_CBOR, AEMP_CBOR},
        {"json", "json", AEMP_JSON, AEMP_JSON},
        {"cbor", "cbor", AEMP_CBOR, AEMP_CBOR},
        /* each side sends the first of the other's list */
        {"json", "cbor", AEMP_CBOR, AEMP_JSON},
        {"cbor", "json,cbor", AEMP_JSON, AEMP_CBOR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        duo_t d;
        duo_init(&d, cases[i].fa, cases[i].fb);
        duo_link(&d, d.a, 0);
        await_up(&d);
        aemp__link_t *la = link_of(d.a, d.b), *lb = link_of(d.b, d.a);
        assert_int_equal(la->hs.send_framing, cases[i].a_sends);
        assert_int_equal(la->hs.recv_framing, cases[i].b_sends);
        assert_int_equal(lb->hs.send_framing, cases[i].b_sends);
        assert_int_equal(lb->hs.recv_framing, cases[i].a_sends);
        exchange(&d, 5000);
        duo_finish(&d);
    }
}

/* ---- writes the stream takes only in part -------------------------------- */

static void partial_writes(void **state)
{
    static const size_t ks[] = {1, 7, 4096};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        for (int json = 0; json < 2; json++) {
            duo_t d;
            duo_init(&d, json ? "json" : NULL, json ? "json" : NULL);
            duo_link(&d, d.a, ks[i]);
            await_up(&d);
            /* a message of many writes' worth */
            exchange(&d, ks[i] == 1 ? 3000 : 100000);
            duo_finish(&d);
        }
    }
}

/* ---- flush and backlog --------------------------------------------------- */

typedef struct flushing {
    duo_t *d;
    uint64_t target; /* the pipe's count the flush must wait for */
    int done, status;
    uint64_t taken_at_done;
} flushing_t;

static void on_flushed(aemp_node_t *n, int status, void *user)
{
    flushing_t *f = user;
    f->done++;
    f->status = status;
    f->taken_at_done = aemp__pipe_taken(f->d->sa);
}

/* aemp_backlog is exactly what the pipe has not taken of the link's
 * bytes (the link's and the pipe's counts both start with the greeting). */
static void check_backlog(duo_t *d)
{
    aemp__link_t *l = link_of(d->a, d->b);
    assert_non_null(l);
    uint64_t expect = l->appended - aemp__pipe_taken(d->sa);
    assert_int_equal(aemp_backlog(d->a, aemp_noderef(d->b)), expect);
    assert_int_equal(aemp__link_unwritten(l), expect);
}

static int flush_step(void *arg)
{
    flushing_t *f = arg;
    check_backlog(f->d); /* at every loop iteration */
    return f->done;
}

static void flush_and_backlog(void **state)
{
    duo_t d;
    duo_init(&d, NULL, NULL);
    duo_link(&d, d.a, 0);
    await_up(&d);
    kt_tap_t tb = {&d.rec, "at_b", 0};
    char *pb = port_on(d.b, &tb);
    const char *bref = aemp_noderef(d.b);
    static char blob[2000];

    /* a pipe that takes nothing: everything sent is backlog, and a flush
     * waits */
    aemp__pipe_stall(d.sa, AEMP__PIPE_STALL_WRITE);
    for (int i = 0; i < 50; i++)
        assert_int_equal(aemp_snd(d.a, pb, "sy", "b", blob, sizeof blob), 0);
    assert_true(aemp_backlog(d.a, bref) > 50 * sizeof blob);
    check_backlog(&d);
    flushing_t f = {&d, 0, 0, 0, 0};
    f.target = link_of(d.a, d.b)->appended;
    assert_int_equal(aemp_flush(d.a, bref, on_flushed, &f), 0);
    for (int i = 0; i < 50; i++) {
        uv_run(&d.loop, UV_RUN_NOWAIT);
        check_backlog(&d);
    }
    assert_true(link_of(d.a, d.b)->writing);
    assert_true(aemp_backlog(d.a, bref) > 50 * sizeof blob);
    assert_int_equal(f.done, 0);

    /* now 100 bytes per loop iteration: the flush completes when the
     * pipe has taken every byte sent before it, not one iteration early */
    aemp__pipe_set_max_write(d.sa, 100);
    aemp__pipe_stall(d.sa, 0);
    assert_true(nt_run_until(&d.loop, flush_step, &f, 20));
    assert_int_equal(f.status, 0);
    assert_true(f.taken_at_done >= f.target);
    check_backlog(&d);
    await_rec(&d, "at_b", 50);

    /* while the pipe drains slowly, a second flush waits for its own
     * target only */
    for (int i = 0; i < 20; i++)
        assert_int_equal(aemp_snd(d.a, pb, "sy", "b", blob, sizeof blob), 0);
    flushing_t g = {&d, link_of(d.a, d.b)->appended, 0, 0, 0};
    assert_int_equal(aemp_flush(d.a, bref, on_flushed, &g), 0);
    assert_true(nt_run_until(&d.loop, flush_step, &g, 20));
    assert_true(g.taken_at_done >= g.target);
    assert_int_equal(aemp_backlog(d.a, bref), 0);

    /* with nothing to write, a flush is done at once */
    flushing_t h = {&d, 0, 0, 0, 0};
    assert_int_equal(aemp_flush(d.a, bref, on_flushed, &h), 0);
    assert_true(nt_run_until(&d.loop, flush_step, &h, 5));
    free(pb);
    duo_finish(&d);
}

/* ---- a peer that hangs up inside a packet -------------------------------- */

/* The text of a ["transport_error", node, text] monitor reason. */
static const char *reason_of(const aemp_msg_t *m)
{
    const char *kind = NULL, *node = NULL, *text = NULL;
    assert_int_equal(aemp_msg_unpack(m, "sss", &kind, &node, &text), 0);
    assert_string_equal(kind, "transport_error");
    return text;
}

static void peer_closes_mid_packet(void **state)
{
    duo_t d;
    duo_init(&d, NULL, NULL);
    duo_link(&d, d.a, 0);
    await_up(&d);
    kt_tap_t tb = {&d.rec, "at_b", 0}, ta = {&d.rec, "at_a", 0};
    kt_tap_t mon_a = {&d.rec, "mon_a", 0}, mon_b = {&d.rec, "mon_b", 0};
    char *pb = port_on(d.b, &tb), *pa = port_on(d.a, &ta);
    assert_int_equal(aemp_mon_cb(d.a, pb, kt_tap_mon, &mon_a, NULL), 0);
    assert_int_equal(aemp_mon_cb(d.b, pa, kt_tap_mon, &mon_b, NULL), 0);
    /* the monitor requests have gone across */
    assert_int_equal(aemp_snd(d.a, pb, "s", "ping"), 0);
    assert_int_equal(aemp_snd(d.b, pa, "s", "ping"), 0);
    await_rec(&d, "at_b", 1);
    await_rec(&d, "at_a", 1);

    /* half of a real packet for pa, then the end */
    aemp_msg_t *m = NULL;
    assert_int_equal(aemp_msg_new(&m, "ss", "hello", "world, a long text"), 0);
    aemp__buf_t buf = {0};
    const char *name = strchr(pa, '#') + 1;
    assert_int_equal(aemp__cbor_encode(&buf, name, strlen(name), m), 0);
    aemp_msg_unref(m);
    assert_int_equal(aemp__pipe_inject(d.sa, buf.data, buf.len / 2), 0);
    aemp__buf_free(&buf);
    aemp__pipe_hangup(d.sa);

    await_rec(&d, "mon_a", 1);
    const aemp_msg_t *why = kt_rec_nth(&d.rec, "mon_a", 0)->msg;
    assert_true(kt_msg_is(why, "sss", "transport_error", aemp_noderef(d.b),
                          "link closed by peer"));
    assert_false(aemp_node_is_up(d.a, aemp_noderef(d.b)));
    assert_int_equal(kt_rec_count(&d.rec, "at_a"), 1); /* not the half */
    /* the other side loses its link too, when its end goes */
    await_rec(&d, "mon_b", 1);
    assert_string_equal(reason_of(kt_rec_nth(&d.rec, "mon_b", 0)->msg),
                        "link closed by peer");
    free(pa);
    free(pb);
    duo_finish(&d);
}

/* ---- garbage after the handshake ----------------------------------------- */

static int no_links(void *arg)
{
    duo_t *d = arg;
    return !d->a->net->links && !d->b->net->links;
}

static void garbage_after_handshake(void **state)
{
    for (int json = 0; json < 2; json++) {
        duo_t d;
        duo_init(&d, json ? "json" : NULL, json ? "json" : NULL);
        duo_link(&d, d.a, 0);
        await_up(&d);
        kt_tap_t mon = {&d.rec, "mon", 0}, tb = {&d.rec, "at_b", 0};
        char *pb = port_on(d.b, &tb);
        assert_int_equal(aemp_mon_cb(d.a, pb, kt_tap_mon, &mon, NULL), 0);
        /* CBOR: a break code where a packet starts; JSON: a stray '}' */
        const char *junk = json ? "}}}" : "\xff\xff\xff";
        assert_int_equal(aemp__pipe_inject(d.sa, junk, 3), 0);
        await_rec(&d, "mon", 1);
        const char *text = reason_of(kt_rec_nth(&d.rec, "mon", 0)->msg);
        if (strncmp(text, "malformed packet: ", 18) != 0)
            fail_msg("reason: %s", text);
        assert_true(kt_log_has(&d.log_a, "malformed packet: "));
        /* the node lives: once both old links are gone, a new link
         * carries messages */
        assert_false(aemp_node_is_up(d.a, aemp_noderef(d.b)));
        assert_true(nt_run_until(&d.loop, no_links, &d, 10));
        duo_link(&d, d.a, 0);
        await_up(&d);
        assert_int_equal(aemp_snd(d.a, pb, "s", "again"), 0);
        await_rec(&d, "at_b", 1);
        free(pb);
        duo_finish(&d);
    }
}

/* ---- the stream switch --------------------------------------------------- */

/* A wrapper that XORs every byte both ways: what the link writes reaches
 * the pipe changed, and only a peer that switched too can read it. */
typedef struct xor_stream {
    aemp__stream_t s;
    aemp__buf_t tmp;
    uint64_t *count; /* bytes decoded, for the test */
} xor_stream_t;

#define XOR_KEY 0x5a

static void xor_data(aemp__stream_t *inner, void *user, const char *buf,
                     size_t len)
{
    xor_stream_t *x = user;
    x->tmp.len = 0;
    if (aemp__buf_reserve(&x->tmp, len) < 0) {
        aemp__stream_failed(&x->s, AEMP_ENOMEM, "out of memory");
        return;
    }
    for (size_t i = 0; i < len; i++)
        x->tmp.data[i] = (char)(buf[i] ^ XOR_KEY);
    x->tmp.len = len;
    *x->count += len;
    aemp__stream_data(&x->s, x->tmp.data, len);
}

static void xor_drained(aemp__stream_t *inner, void *user)
{
    aemp__stream_drained(user);
}

static void xor_failed(aemp__stream_t *inner, void *user, int err,
                       const char *why)
{
    aemp__stream_failed(user, err, why);
}

static void xor_closed(aemp__stream_t *inner, void *user)
{
    xor_stream_t *x = user;
    aemp__stream_closed(&x->s);
    aemp__buf_free(&x->tmp);
    aemp__free(x);
}

static const aemp__stream_up_t xor_up = {xor_data, xor_drained, xor_failed,
                                         xor_closed};

static int xor_start(aemp__stream_t *s)
{
    return aemp__stream_start(s->inner);
}

static int xor_write(aemp__stream_t *s, aemp__buf_t *b)
{
    for (size_t i = 0; i < b->len; i++)
        b->data[i] ^= XOR_KEY;
    int rc = aemp__stream_write(s->inner, b);
    s->error = s->inner->error;
    return rc;
}

static size_t xor_unwritten(const aemp__stream_t *s)
{
    return aemp__stream_unwritten(s->inner);
}

static void xor_hold(aemp__stream_t *s)
{
    aemp__stream_hold(s->inner);
}

static int xor_release(aemp__stream_t *s)
{
    return aemp__stream_release(s->inner);
}

static void xor_tune(aemp__stream_t *s, unsigned idle_s)
{
    aemp__stream_tune(s->inner, idle_s);
}

static void xor_close(aemp__stream_t *s)
{
    aemp__stream_close(s->inner);
}

static const aemp__stream_ops_t xor_ops = {
    "xor",    xor_start,   xor_write, xor_unwritten,
    xor_hold, xor_release, xor_tune,  xor_close,
};

static int xor_wrap(aemp__stream_t *inner, void *arg, aemp__stream_t **out)
{
    /* the library's allocator: the sweep counts this too */
    xor_stream_t *x = aemp__calloc(1, sizeof *x);
    if (!x)
        return AEMP_ENOMEM;
    x->s.ops = &xor_ops;
    x->s.inner = inner;
    x->count = arg;
    memcpy(x->s.addr, inner->addr, sizeof x->s.addr);
    aemp__stream_attach(inner, &xor_up, x);
    *out = &x->s;
    return 0;
}

/* The newest link of n (aemp__link_over puts it first). */
static aemp__link_t *newest_link(aemp_node_t *n)
{
    return n->net->links;
}

/* b has read a's nonce and handed its authentication line to the pipe. */
static int b_sent_auth(void *arg)
{
    duo_t *d = arg;
    aemp__link_t *l = newest_link(d->b);
    return l && l->hs.state >= AEMP__HS_AUTH && !l->out.len && !l->writing;
}

static void stream_switch(void **state)
{
    static const size_t ks[] = {0, 1, 7};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        for (int early = 0; early < 2; early++) {
            duo_t d;
            uint64_t na = 0, nb = 0;
            duo_init(&d, NULL, NULL);
            duo_link(&d, d.a, ks[i]);
            aemp__link_t *la = newest_link(d.a), *lb = newest_link(d.b);
            assert_int_equal(aemp__link_switch(la, xor_wrap, &na), 0);
            assert_int_equal(aemp__link_switch(lb, xor_wrap, &nb), 0);
            if (early) {
                /* a reads nothing until b's greeting, nonce and (switched)
                 * authentication line all wait for it: what a reads past
                 * b's nonce line in that one read is the wrapper's */
                aemp__pipe_stall(d.sa, AEMP__PIPE_STALL_READ);
                assert_true(nt_run_until(&d.loop, b_sent_auth, &d, 10));
                assert_true(aemp__pipe_readable(d.sa) > 100);
                aemp__pipe_stall(d.sa, 0);
            }
            await_up(&d);
            assert_string_equal(link_of(d.a, d.b)->stream->ops->name, "xor");
            assert_string_equal(link_of(d.b, d.a)->stream->ops->name, "xor");
            assert_string_equal(link_of(d.a, d.b)->stream->inner->ops->name,
                                "pipe");
            assert_true(na > 0 && nb > 0); /* authentication lines at least */
            /* too late once the nonce lines are through */
            assert_int_equal(aemp__link_switch(la, xor_wrap, &na), AEMP_EBUSY);
            uint64_t na0 = na, nb0 = nb;
            exchange(&d, ks[i] == 1 ? 2000 : 50000);
            assert_true(na > na0 + 1000 && nb > nb0 + 1000);
            duo_finish(&d);
        }
    }
}

/* Only one side switches: neither can read the other's authentication
 * line (no line end survives the XOR), and the handshake times out. */
static void switch_one_side_fails(void **state)
{
    duo_t d;
    uint64_t na = 0;
    duo_init(&d, NULL, NULL);
    aemp_netconf_t c = conf_of(NULL);
    c.monitor_timeout = 0.5; /* the handshake's deadline */
    assert_int_equal(aemp_node_configure(d.a, &c), 0);
    assert_int_equal(aemp_node_configure(d.b, &c), 0);
    duo_link(&d, d.a, 0);
    assert_int_equal(aemp__link_switch(newest_link(d.a), xor_wrap, &na), 0);
    assert_true(nt_run_until(&d.loop, no_links, &d, 10));
    assert_true(kt_log_has(&d.log_b, "handshake timeout"));
    assert_false(aemp_node_is_up(d.a, aemp_noderef(d.b)));
    assert_false(aemp_node_is_up(d.b, aemp_noderef(d.a)));
    assert_true(na > 0);
    assert_true(kt_log_has(&d.log_b, "handshake with") ||
                kt_log_has(&d.log_b, "refused"));
    duo_finish(&d);
}

/* ---- allocation failures over a link's whole life ------------------------ */

typedef struct life {
    uv_loop_t loop;
    aemp_node_t *a, *b;
    int got_a, got_b, sent_a, sent_b;
} life_t;

static int count_rcv(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    (*(int *)user)++;
    return 0;
}

static void quiet(aemp_node_t *n, int level, const char *text, void *user) {}

static aemp_node_t *life_node(uv_loop_t *loop)
{
    aemp_node_t *n = NULL;
    aemp_netconf_t c = conf_of(NULL);
    c.monitor_timeout = 1;
    if (aemp_node_new(&n, loop) < 0)
        return NULL;
    aemp_node_set_log(n, AEMP_LOG_DEBUG, quiet, NULL);
    if (aemp_node_configure(n, &c) < 0) {
        aemp_node_free(n);
        return NULL;
    }
    return n;
}

static int life_links(const life_t *f)
{
    return (f->a->net->links != NULL) + (f->b->net->links != NULL);
}

static int life_settled(void *arg)
{
    life_t *f = arg;
    return life_links(f) < 2 || (aemp_node_is_up(f->a, aemp_noderef(f->b)) &&
                                 aemp_node_is_up(f->b, aemp_noderef(f->a)));
}

static int life_received(void *arg)
{
    life_t *f = arg;
    return life_links(f) < 2 ||
           (f->got_a >= f->sent_b && f->got_b >= f->sent_a);
}

static bool life_switch; /* both sides wrap their pipe end in XOR */

static void life_once(void)
{
    life_t f = {0};
    uint64_t xa = 0, xb = 0;
    uv_loop_init(&f.loop);
    f.a = life_node(&f.loop);
    f.b = f.a ? life_node(&f.loop) : NULL;
    aemp__stream_t *sa = NULL, *sb = NULL;
    aemp__peer_t *p = NULL;
    if (!f.b || aemp__pipe_pair(&f.loop, &sa, &sb) < 0)
        goto done;
    aemp__pipe_set_max_write(sa, 1000);
    p = aemp__peer_get(f.a, aemp_noderef(f.b), strlen(aemp_noderef(f.b)), true);
    if (!p || aemp__link_over(f.a, sa, p) < 0)
        aemp__stream_close(sa);              /* still ours */
    else if (life_switch && f.a->net->links) /* not closed at once */
        assert_int_equal(aemp__link_switch(f.a->net->links, xor_wrap, &xa), 0);
    if (aemp__link_over(f.b, sb, NULL) < 0)
        aemp__stream_close(sb);
    else if (life_switch && f.b->net->links)
        assert_int_equal(aemp__link_switch(f.b->net->links, xor_wrap, &xb), 0);
    nt_run_until(&f.loop, life_settled, &f, 3);
    const char *pa = NULL, *pb = NULL;
    if (aemp_port(f.a, count_rcv, &f.got_a, &pa) < 0 ||
        aemp_port(f.b, count_rcv, &f.got_b, &pb) < 0)
        goto done;
    static char blob[3000];
    for (int i = 0; i < 3; i++) {
        f.sent_a += aemp_snd(f.a, pb, "sy", "x", blob, sizeof blob) == 0;
        f.sent_b += aemp_snd(f.b, pa, "si", "y", i) == 0;
    }
    /* a packet dropped for want of memory on delivery is not waited for
     * beyond the deadline */
    nt_run_until(&f.loop, life_received, &f, 0.3);
done:
    if (f.a && f.b && life_links(&f) == 2 && f.got_b == f.sent_a &&
        f.got_a == f.sent_b && kt_alloc_failed() == 0) {
        assert_int_equal(f.sent_a, 3);
        assert_int_equal(f.sent_b, 3);
    }
    aemp_node_free(f.a);
    aemp_node_free(f.b);
    nt_loop_finish(&f.loop);
}

/* Sticky and single failures; without TLS also with the XOR switch. */
static void sweep_links(int kinds)
{
    for (int k = 0; k < kinds; k++) {
        int sticky = k & 1;
        life_switch = k >> 1;
        size_t n;
        for (n = 1;; n++) {
            long live = kt_alloc_live();
            kt_alloc_fail(n, sticky);
            life_once();
            size_t failed = kt_alloc_failed();
            kt_alloc_disarm();
            if (kt_alloc_live() != live)
                fail_msg("failing allocation %zu%s: %ld blocks leaked", n,
                         sticky ? " and after" : "", kt_alloc_live() - live);
            if (!failed)
                break;
        }
        fprintf(stderr, "  %s%s%s: %zu runs\n", sticky ? "sticky" : "one",
                life_switch ? ", switched" : "", link_cert ? ", TLS" : "", n);
    }
    life_switch = false;
}

static void alloc_sweep(void **state)
{
    sweep_links(4);
}

/* A TLS link's life (the TLS stream's own buffers included) under every
 * failing allocation: no crash, no leak, and a full run when none fails. */
static void tls_alloc_sweep(void **state)
{
    sweep_links(2);
}

/* ---- configuration is checked when it is set ------------------------------ */

static int configure_logged(aemp_netconf_t *c, kt_rec_t *log)
{
    aemp_node_t *n = NULL;
    assert_int_equal(aemp_node_new(&n, NULL), 0);
    aemp_node_set_log(n, AEMP_LOG_DEBUG, kt_log_rec, log);
    int rc = aemp_node_configure(n, c);
    aemp_node_free(n);
    return rc;
}

static void expect_refused(aemp_netconf_t c, const char *needle)
{
    kt_rec_t log = {0};
    assert_int_equal(configure_logged(&c, &log), AEMP_EINVAL);
    if (!kt_log_has(&log, needle))
        fail_msg("no log line says \"%s\"", needle);
    kt_rec_free(&log);
}

static void configure_checks(void **state)
{
    aemp_netconf_t c = conf_of(NULL);
    c.framings = "cbor,xml";
    expect_refused(c, "unknown framing \"xml\"");
    c = conf_of(NULL);
    c.auth_offer = "hmac_sha3_512,hmac_md5";
    expect_refused(c, "unknown authentication method \"hmac_md5\"");
    c = conf_of(NULL);
    c.cert = "/nonexistent/node.pem";
    expect_refused(c, "cert: cannot read /nonexistent/node.pem");
    c.cert = "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n";
    expect_refused(c, "cert: ");
    /* a key and certificate, from a file; a ca that is no certificate */
    char *pem = nt_make_cert("aemp configure", -1, 365);
    char path[] = "/tmp/aemp-link-cert-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
    close(fd);
    c.cert = path;
    kt_rec_t log = {0};
    assert_int_equal(configure_logged(&c, &log), 0);
    assert_false(kt_log_has(&log, "expire"));
    kt_rec_free(&log);
    c.ca = "/nonexistent/ca.pem";
    expect_refused(c, "ca: cannot read /nonexistent/ca.pem");
    c.ca = NULL;
    unlink(path);
    free(pem);
    /* expiring soon, and expired: configured, with a warning */
    pem = nt_make_cert("aemp soon", -1, 10);
    c.cert = pem;
    assert_int_equal(configure_logged(&c, &log), 0);
    assert_true(kt_log_has(&log, "the certificate expires in 9 days") ||
                kt_log_has(&log, "the certificate expires in 10 days"));
    kt_rec_free(&log);
    free(pem);
    pem = nt_make_cert("aemp old", -30, -1);
    c.cert = pem;
    assert_int_equal(configure_logged(&c, &log), 0);
    assert_true(kt_log_has(&log, "the certificate expired on"));
    kt_rec_free(&log);
    free(pem);
}

/* ---- the same over TLS ------------------------------------------------- */

static int tls_on(void **state)
{
    link_cert = nt_make_cert("aemp link test", -1, 30);
    return 0;
}

static int tls_off(void **state)
{
    free(link_cert);
    link_cert = NULL;
    return 0;
}

static void tls_link_checks(duo_t *d)
{
    aemp__link_t *la = link_of(d->a, d->b), *lb = link_of(d->b, d->a);
    assert_string_equal(la->stream->ops->name, "tls");
    assert_string_equal(la->stream->inner->ops->name, "pipe");
    assert_string_equal(lb->stream->ops->name, "tls");
    assert_string_equal(la->hs.method, "tls_sha3_512");
    assert_string_equal(lb->hs.method, "tls_sha3_512");
    assert_true(la->hs.tls_client != lb->hs.tls_client);
}

/* Handshakes from either side, both framings, and writes the pipe takes
 * a byte, 7 bytes or 4 KiB at a time: TLS records cut anywhere. */
static void tls_partial_writes(void **state)
{
    static const size_t ks[] = {0, 1, 7, 4096};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        for (int json = 0; json < 2; json++) {
            duo_t d;
            duo_init(&d, json ? "json" : NULL, json ? "json" : NULL);
            duo_link(&d, (i + json) & 1 ? d.b : d.a, ks[i]);
            await_up(&d);
            tls_link_checks(&d);
            exchange(&d, ks[i] == 1 ? 3000 : 100000);
            duo_finish(&d);
        }
    }
}

/* Backlog and flush count plaintext: what the link handed to TLS and
 * TLS has not yet got into the pipe, whatever the records' overhead. */
static void tls_flush_and_backlog(void **state)
{
    duo_t d;
    duo_init(&d, NULL, NULL);
    duo_link(&d, d.a, 0);
    await_up(&d);
    tls_link_checks(&d);
    kt_tap_t tb = {&d.rec, "at_b", 0};
    char *pb = port_on(d.b, &tb);
    const char *bref = aemp_noderef(d.b);
    static char blob[2000];
    aemp__link_t *l = link_of(d.a, d.b);
    uint64_t taken0 = aemp__pipe_taken(d.sa);
    aemp__pipe_stall(d.sa, AEMP__PIPE_STALL_WRITE);
    uint64_t appended0 = l->appended;
    for (int i = 0; i < 50; i++)
        assert_int_equal(aemp_snd(d.a, pb, "sy", "b", blob, sizeof blob), 0);
    flushing_t f = {&d, 0, 0, 0, 0};
    assert_int_equal(aemp_flush(d.a, bref, on_flushed, &f), 0);
    for (int i = 0; i < 20; i++)
        uv_run(&d.loop, UV_RUN_NOWAIT);
    /* nothing got through: every plaintext byte is backlog, exactly */
    assert_int_equal(aemp__pipe_taken(d.sa), taken0);
    assert_int_equal(aemp_backlog(d.a, bref), l->appended - appended0);
    assert_int_equal(aemp__link_unwritten(l), l->appended - appended0);
    assert_int_equal(f.done, 0);
    /* drained 100 bytes per iteration: the backlog falls in record steps
     * and never grows; the flush is done when it is 0 */
    aemp__pipe_set_max_write(d.sa, 100);
    aemp__pipe_stall(d.sa, 0);
    size_t last = aemp_backlog(d.a, bref);
    for (int i = 0; !f.done; i++) {
        assert_true(i < 100000);
        uv_run(&d.loop, UV_RUN_NOWAIT);
        size_t now = aemp_backlog(d.a, bref);
        assert_true(now <= last);
        if (f.done)
            assert_int_equal(now, 0);
        last = now;
    }
    assert_int_equal(f.status, 0);
    assert_true(aemp__pipe_taken(d.sa) > taken0 + 50 * sizeof blob);
    await_rec(&d, "at_b", 50);
    free(pb);
    duo_finish(&d);
}

int main(void)
{
    kt_alloc_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_both_ways),
        cmocka_unit_test(framings),
        cmocka_unit_test(partial_writes),
        cmocka_unit_test(flush_and_backlog),
        cmocka_unit_test(peer_closes_mid_packet),
        cmocka_unit_test(garbage_after_handshake),
        cmocka_unit_test(stream_switch),
        cmocka_unit_test(switch_one_side_fails),
        cmocka_unit_test(alloc_sweep),
        cmocka_unit_test(configure_checks),
        cmocka_unit_test_setup_teardown(tls_partial_writes, tls_on, tls_off),
        cmocka_unit_test_setup_teardown(tls_flush_and_backlog, tls_on,
                                        tls_off),
        cmocka_unit_test_setup_teardown(tls_alloc_sweep, tls_on, tls_off),
    };
    /* e.g. TEST_LINK_ONLY=stream_switch */
    const char *only = getenv("TEST_LINK_ONLY");
    if (only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
