/* The TLS stream (src/net/tls_stream.c) over the in-memory pipe: two ends
 * on one loop, one the TLS client, the other the server, with
 * certificates made here at run time.  The handshake, data both ways
 * (small and 1 MiB) under writes the pipe takes only in part, writes
 * before the handshake, unwritten() and `drained`, that the pipe never
 * carries the plaintext, hold and release, and failures with their
 * reasons: a certificate from another CA, an expired one, bytes that are
 * not TLS, a peer that hangs up mid-handshake.  Then two nodes whose link
 * switches to TLS after the nonce lines (aemp__link_switch). */
#include "certs.h"
#include "helpers.h"

#include "net.h"
#include "stream.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <stdlib.h>
#include <string.h>

/* ---- certificates -------------------------------------------------------- */

typedef struct ident {
    char *key, *cert; /* PEM */
} ident_t;

/* A self-signed P-256 certificate valid from `from` to `to` days from now
 * (tests/certs.c); the key and the certificate are both in the one PEM
 * text, which OpenSSL reads either from. */
static ident_t make_ident(const char *cn, long from, long to)
{
    char *pem = nt_make_cert(cn, from, to);
    return (ident_t){pem, nt_cert_part(pem)};
}

static ident_t id_a, id_b, id_old; /* a network, another, an expired one */

static int make_idents(void **state)
{
    id_a = make_ident("aemp test a", -1, 30);
    id_b = make_ident("aemp test b", -1, 30);
    id_old = make_ident("aemp test expired", -30, -1);
    return 0;
}

static int free_idents(void **state)
{
    ident_t *all[] = {&id_a, &id_b, &id_old};
    for (int i = 0; i < 3; i++) {
        free(all[i]->key);
        free(all[i]->cert);
    }
    return 0;
}

static aemp__tls_conf_t *conf_new(uv_loop_t *loop, const ident_t *me,
                                  const char *ca)
{
    aemp__tls_conf_t *c = NULL;
    char why[256] = "";
    int rc =
        aemp__tls_conf_new(loop, me->key, me->cert, ca, &c, why, sizeof why);
    if (rc)
        fail_msg("conf: %d %s", rc, why);
    return c;
}

/* ---- a tap: records what passes between the pipe and TLS ----------------- */

typedef struct tap {
    aemp__stream_t s;
    aemp__buf_t rx, tx; /* read from the pipe, written to it */
    size_t reads;       /* data up-calls */
} tap_t;

static void tap_data(aemp__stream_t *inner, void *user, const char *buf,
                     size_t len)
{
    tap_t *t = user;
    t->reads++;
    assert_int_equal(aemp__buf_append(&t->rx, buf, len), 0);
    aemp__stream_data(&t->s, buf, len);
}

static void tap_drained(aemp__stream_t *inner, void *user)
{
    aemp__stream_drained(user);
}

static void tap_failed(aemp__stream_t *inner, void *user, int err,
                       const char *why)
{
    aemp__stream_failed(user, err, why);
}

static void tap_closed(aemp__stream_t *inner, void *user)
{
    tap_t *t = user;
    aemp__stream_closed(&t->s);
    aemp__buf_free(&t->rx);
    aemp__buf_free(&t->tx);
    free(t);
}

static const aemp__stream_up_t tap_up = {tap_data, tap_drained, tap_failed,
                                         tap_closed};

static int tap_start(aemp__stream_t *s)
{
    return aemp__stream_start(s->inner);
}

static int tap_write(aemp__stream_t *s, aemp__buf_t *b)
{
    tap_t *t = (tap_t *)s;
    assert_int_equal(aemp__buf_append(&t->tx, b->data, b->len), 0);
    int rc = aemp__stream_write(s->inner, b);
    s->error = s->inner->error;
    return rc;
}

static size_t tap_unwritten(const aemp__stream_t *s)
{
    return aemp__stream_unwritten(s->inner);
}

static void tap_hold(aemp__stream_t *s)
{
    aemp__stream_hold(s->inner);
}

static int tap_release(aemp__stream_t *s)
{
    return aemp__stream_release(s->inner);
}

static void tap_close(aemp__stream_t *s)
{
    aemp__stream_close(s->inner);
}

static const aemp__stream_ops_t tap_ops = {
    "tap",    tap_start,   tap_write, tap_unwritten,
    tap_hold, tap_release, NULL,      tap_close,
};

static tap_t *tap_new(aemp__stream_t *inner)
{
    tap_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->s.ops = &tap_ops;
    t->s.inner = inner;
    aemp__stream_attach(inner, &tap_up, t);
    return t;
}

/* ---- two ends ------------------------------------------------------------ */

typedef struct side {
    aemp__stream_t *s;
    aemp__buf_t got;
    int drained, failed, err, closed;
    char why[256];
} side_t;

typedef struct duo {
    uv_loop_t loop;
    aemp__stream_t *pa, *pb; /* the pipe: pa under the client */
    tap_t *tap;              /* between pb and the server */
    side_t c, sv;
} duo_t;

static void on_data(aemp__stream_t *s, void *user, const char *buf, size_t len)
{
    side_t *x = user;
    assert_int_equal(aemp__buf_append(&x->got, buf, len), 0);
}

static void on_drained(aemp__stream_t *s, void *user)
{
    ((side_t *)user)->drained++;
}

static void on_failed(aemp__stream_t *s, void *user, int err, const char *why)
{
    side_t *x = user;
    x->failed++;
    x->err = err;
    snprintf(x->why, sizeof x->why, "%s", why);
}

static void on_closed(aemp__stream_t *s, void *user)
{
    side_t *x = user;
    x->closed++;
    x->s = NULL;
}

static const aemp__stream_up_t side_up = {on_data, on_drained, on_failed,
                                          on_closed};

static void side_attach(side_t *x, aemp__stream_t *s)
{
    x->s = s;
    aemp__stream_attach(s, &side_up, x);
}

/* A pipe (max_write k) with the client's TLS over pa and the server's
 * over a tap over pb; NULL conf: that end stays raw. */
static void duo_open(duo_t *d, const aemp__tls_conf_t *cc,
                     const aemp__tls_conf_t *sc, size_t k)
{
    memset(d, 0, sizeof *d);
    uv_loop_init(&d->loop);
    assert_int_equal(aemp__pipe_pair(&d->loop, &d->pa, &d->pb), 0);
    aemp__pipe_set_max_write(d->pa, k);
    aemp__pipe_set_max_write(d->pb, k);
    aemp__stream_t *s;
    if (cc) {
        assert_int_equal(aemp__tls_wrap(d->pa, cc, true, &s), 0);
        assert_string_equal(s->ops->name, "tls");
        side_attach(&d->c, s);
    } else {
        side_attach(&d->c, d->pa);
    }
    if (sc) {
        d->tap = tap_new(d->pb);
        assert_int_equal(aemp__tls_wrap(&d->tap->s, sc, false, &s), 0);
        side_attach(&d->sv, s);
    } else {
        side_attach(&d->sv, d->pb);
    }
    assert_int_equal(aemp__stream_start(d->c.s), 0);
    assert_int_equal(aemp__stream_start(d->sv.s), 0);
}

static void duo_close(duo_t *d)
{
    side_t *sides[] = {&d->c, &d->sv};
    for (int i = 0; i < 2; i++) {
        if (sides[i]->s)
            aemp__stream_close(sides[i]->s);
    }
    for (int i = 0; i < 2; i++)
        while (!sides[i]->closed)
            uv_run(&d->loop, UV_RUN_ONCE);
    for (int i = 0; i < 2; i++)
        aemp__buf_free(&sides[i]->got);
    nt_loop_finish(&d->loop);
}

static int both_established(void *arg)
{
    duo_t *d = arg;
    return d->c.failed || d->sv.failed ||
           (aemp__tls_established(d->c.s) && aemp__tls_established(d->sv.s));
}

static void await_established(duo_t *d)
{
    nt_run_until(&d->loop, both_established, d, 10);
    if (d->c.failed || d->sv.failed)
        fail_msg("handshake: client \"%s\", server \"%s\"", d->c.why,
                 d->sv.why);
    assert_true(both_established(d));
}

typedef struct want {
    side_t *x;
    size_t len;
} want_t;

static int has_len(void *arg)
{
    want_t *w = arg;
    return w->x->failed || w->x->got.len >= w->len;
}

static int drained_once(void *arg)
{
    side_t *x = arg;
    return x->drained > 0 || x->failed;
}

/* Writes len bytes to `from`, waits for `drained` if it is due. */
static void put(duo_t *d, side_t *from, const char *data, size_t len)
{
    aemp__buf_t b = {0};
    assert_int_equal(aemp__buf_append(&b, data, len), 0);
    int rc = aemp__stream_write(from->s, &b);
    assert_true(rc == AEMP__STREAM_DONE || rc == AEMP__STREAM_WAIT);
    assert_int_equal(b.len, 0);
    aemp__buf_free(&b);
    if (rc == AEMP__STREAM_WAIT) {
        assert_true(aemp__stream_unwritten(from->s) > 0);
        assert_true(aemp__stream_unwritten(from->s) <= len);
        from->drained = 0;
        assert_true(nt_run_until(&d->loop, drained_once, from, 20));
        assert_int_equal(from->failed, 0);
        assert_int_equal(from->drained, 1);
    }
    assert_int_equal(aemp__stream_unwritten(from->s), 0);
}

static void await_got(duo_t *d, side_t *to, size_t len)
{
    want_t w = {to, len};
    nt_run_until(&d->loop, has_len, &w, 30);
    if (to->failed)
        fail_msg("failed: %s", to->why);
    assert_int_equal(to->got.len, len);
}

static char *pattern(size_t len, unsigned seed)
{
    char *p = malloc(len);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (char)(seed + i * 31 + (i >> 9));
    return p;
}

static bool contains(const aemp__buf_t *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= hay->len; i++)
        if (memcmp(hay->data + i, needle, n) == 0)
            return true;
    return false;
}

/* ---- the good cases ------------------------------------------------------ */

#define MARKER "plaintext marker: never on the wire"

static void exchange(duo_t *d, size_t big)
{
    size_t c0 = d->c.got.len, s0 = d->sv.got.len;
    put(d, &d->c, MARKER, strlen(MARKER));
    put(d, &d->sv, "pong " MARKER, strlen("pong " MARKER));
    await_got(d, &d->sv, s0 + strlen(MARKER));
    await_got(d, &d->c, c0 + strlen("pong " MARKER));
    assert_memory_equal(d->sv.got.data + s0, MARKER, strlen(MARKER));
    char *p = pattern(big, 7), *q = pattern(big, 99);
    put(d, &d->c, p, big);
    put(d, &d->sv, q, big);
    await_got(d, &d->sv, s0 + strlen(MARKER) + big);
    await_got(d, &d->c, c0 + strlen("pong " MARKER) + big);
    assert_memory_equal(d->sv.got.data + s0 + strlen(MARKER), p, big);
    assert_memory_equal(d->c.got.data + c0 + strlen("pong " MARKER), q, big);
    free(p);
    free(q);
}

static void handshake_and_data(void **state)
{
    static const size_t ks[] = {0, 1, 7, 4096};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        duo_t d;
        uv_loop_t *l = &d.loop;
        aemp__tls_conf_t *conf = NULL;
        memset(&d, 0, sizeof d);
        /* the loop's address is all the conf keeps of it */
        conf = conf_new(l, &id_a, NULL);
        duo_open(&d, conf, conf, ks[i]);
        aemp__tls_conf_free(conf); /* the streams keep what they need */
        await_established(&d);
        assert_string_equal(aemp__tls_version(d.c.s), "TLSv1.3");
        assert_string_equal(aemp__tls_version(d.sv.s), "TLSv1.3");
        assert_null(aemp__tls_version(d.pa));
        exchange(&d, (size_t)1 << 20);
        /* the tap saw ciphertext only, both ways */
        assert_true(d.tap->rx.len > strlen(MARKER));
        assert_true(d.tap->tx.len > strlen(MARKER));
        if (ks[i]) /* the pipe moved k bytes at a time (2k at most) */
            assert_true(d.tap->reads * 2 * ks[i] >= d.tap->rx.len);
        assert_false(contains(&d.tap->rx, MARKER));
        assert_false(contains(&d.tap->tx, MARKER));
        assert_false(contains(&d.tap->rx, "never on"));
        assert_false(contains(&d.tap->tx, "never on"));
        assert_int_equal(d.c.failed + d.sv.failed, 0);
        duo_close(&d);
    }
}

/* Written before the handshake: queued, WAIT, all of it unwritten; sent
 * once the handshake is through, then `drained`. */
static void write_before_handshake(void **state)
{
    static const size_t ks[] = {0, 1, 7, 4096};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        duo_t d;
        memset(&d, 0, sizeof d);
        aemp__tls_conf_t *conf = conf_new(&d.loop, &id_a, id_a.cert);
        duo_open(&d, conf, conf, ks[i]);
        size_t big = ks[i] == 1 ? 30000 : 300000;
        char *p = pattern(big, 3);
        side_t *sides[] = {&d.c, &d.sv};
        for (int j = 0; j < 2; j++) {
            aemp__buf_t b = {0};
            assert_int_equal(aemp__buf_append(&b, p, big), 0);
            assert_int_equal(aemp__stream_write(sides[j]->s, &b),
                             AEMP__STREAM_WAIT);
            aemp__buf_free(&b);
            assert_int_equal(aemp__stream_unwritten(sides[j]->s), big);
        }
        assert_false(aemp__tls_established(d.c.s));
        await_got(&d, &d.sv, big);
        await_got(&d, &d.c, big);
        assert_memory_equal(d.sv.got.data, p, big);
        assert_memory_equal(d.c.got.data, p, big);
        for (int j = 0; j < 2; j++) {
            assert_true(nt_run_until(&d.loop, drained_once, sides[j], 10));
            assert_int_equal(sides[j]->drained, 1);
            assert_int_equal(aemp__stream_unwritten(sides[j]->s), 0);
        }
        free(p);
        exchange(&d, 5000);
        duo_close(&d);
        aemp__tls_conf_free(conf);
    }
}

/* unwritten() counts plaintext while the pipe takes nothing, and goes to
 * 0 as the pipe drains. */
static void unwritten_counts_plaintext(void **state)
{
    duo_t d;
    memset(&d, 0, sizeof d);
    aemp__tls_conf_t *conf = conf_new(&d.loop, &id_a, NULL);
    duo_open(&d, conf, conf, 0);
    await_established(&d);
    aemp__pipe_stall(d.pa, AEMP__PIPE_STALL_WRITE);
    size_t big = 100000;
    char *p = pattern(big, 5);
    aemp__buf_t b = {0};
    assert_int_equal(aemp__buf_append(&b, p, big), 0);
    assert_int_equal(aemp__stream_write(d.c.s, &b), AEMP__STREAM_WAIT);
    assert_int_equal(aemp__stream_unwritten(d.c.s), big);
    nt_run_for(&d.loop, 0.05);
    assert_int_equal(aemp__stream_unwritten(d.c.s), big);
    assert_int_equal(d.c.drained, 0);
    /* a little at a time: every value on the way is a count of whole
     * records' plaintext, never more than was written */
    aemp__pipe_set_max_write(d.pa, 1000);
    aemp__pipe_stall(d.pa, 0);
    size_t last = big;
    while (!d.c.drained) {
        uv_run(&d.loop, UV_RUN_ONCE);
        size_t u = aemp__stream_unwritten(d.c.s);
        assert_true(u <= last);
        assert_true(u % 16384 == 0 || u == big % 16384 + (u / 16384) * 16384);
        last = u;
    }
    assert_int_equal(aemp__stream_unwritten(d.c.s), 0);
    await_got(&d, &d.sv, big);
    assert_memory_equal(d.sv.got.data, p, big);
    aemp__buf_free(&b);
    free(p);
    duo_close(&d);
    aemp__tls_conf_free(conf);
}

/* hold passes down: nothing is delivered until release, then all. */
static void hold_and_release(void **state)
{
    duo_t d;
    memset(&d, 0, sizeof d);
    aemp__tls_conf_t *conf = conf_new(&d.loop, &id_a, NULL);
    duo_open(&d, conf, conf, 0);
    await_established(&d);
    aemp__stream_hold(d.sv.s);
    size_t big = 200000;
    char *p = pattern(big, 11);
    put(&d, &d.c, p, big);
    nt_run_for(&d.loop, 0.05);
    assert_int_equal(d.sv.got.len, 0);
    assert_int_equal(aemp__stream_release(d.sv.s), 0);
    await_got(&d, &d.sv, big);
    assert_memory_equal(d.sv.got.data, p, big);
    free(p);
    duo_close(&d);
    aemp__tls_conf_free(conf);
}

/* ---- failures ------------------------------------------------------------ */

static int both_failed(void *arg)
{
    duo_t *d = arg;
    return d->c.failed && d->sv.failed;
}

static int side_failed(void *arg)
{
    return ((side_t *)arg)->failed;
}

static int client_failed(void *arg)
{
    return ((duo_t *)arg)->c.failed;
}

static void assert_prefix(const char *s, const char *prefix)
{
    if (strncmp(s, prefix, strlen(prefix)) != 0)
        fail_msg("\"%s\" does not start with \"%s\"", s, prefix);
}

static void another_ca(void **state)
{
    duo_t d;
    memset(&d, 0, sizeof d);
    aemp__tls_conf_t *ca = conf_new(&d.loop, &id_a, NULL);
    aemp__tls_conf_t *cb = conf_new(&d.loop, &id_b, NULL);
    duo_open(&d, ca, cb, 0);
    const char *plain = "secret before the handshake";
    aemp__buf_t b = {0};
    assert_int_equal(aemp__buf_append(&b, plain, strlen(plain)), 0);
    assert_int_equal(aemp__stream_write(d.c.s, &b), AEMP__STREAM_WAIT);
    aemp__buf_free(&b);
    assert_true(nt_run_until(&d.loop, both_failed, &d, 10));
    print_message("client: %s\nserver: %s\n", d.c.why, d.sv.why);
    /* the client sees the server's certificate first */
    assert_prefix(d.c.why, "certificate verify failed: ");
    assert_non_null(strstr(d.c.why, "self"));
    assert_non_null(strstr(d.c.why, "(the peer's certificate is not from our "
                                    "CA)"));
    assert_int_equal(d.c.err, AEMP_EPROTO);
    assert_prefix(d.sv.why, "TLS handshake failed: ");
    assert_non_null(strstr(d.sv.why, "not from its CA"));
    assert_int_equal(d.sv.err, AEMP_EPROTO);
    assert_int_equal(d.sv.got.len, 0);
    assert_false(contains(&d.tap->rx, plain));
    /* a broken stream takes no more writes */
    assert_int_equal(aemp__buf_append(&b, "x", 1), 0);
    assert_true(aemp__stream_write(d.c.s, &b) < 0);
    assert_non_null(d.c.s->error);
    aemp__buf_free(&b);
    duo_close(&d);
    aemp__tls_conf_free(ca);
    aemp__tls_conf_free(cb);
}

/* Each side trusts the other's certificate, but the server's (then the
 * client's) has expired. */
static void expired(void **state)
{
    for (int who = 0; who < 2; who++) {
        duo_t d;
        memset(&d, 0, sizeof d);
        const ident_t *ci = who ? &id_old : &id_a, *si = who ? &id_a : &id_old;
        aemp__tls_conf_t *cc = conf_new(&d.loop, ci, si->cert);
        aemp__tls_conf_t *sc = conf_new(&d.loop, si, ci->cert);
        duo_open(&d, cc, sc, 7);
        assert_true(nt_run_until(&d.loop, both_failed, &d, 10));
        print_message("client: %s\nserver: %s\n", d.c.why, d.sv.why);
        side_t *rejecter = who ? &d.sv : &d.c, *rejected = who ? &d.c : &d.sv;
        assert_string_equal(rejecter->why,
                            "certificate verify failed: certificate has "
                            "expired");
        /* (TLS 1.3: the client hears of it after its own handshake) */
        assert_string_equal(rejected->why,
                            "TLS handshake failed: sslv3 alert certificate "
                            "expired (the peer refuses our certificate: it "
                            "has expired)");
        assert_int_equal(rejected->err, AEMP_EPROTO);
        duo_close(&d);
        aemp__tls_conf_free(cc);
        aemp__tls_conf_free(sc);
    }
}

/* Bytes that are not TLS where the server's hello should be, and where
 * the client's should be. */
static void garbage(void **state)
{
    static const char junk[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    for (int at_server = 0; at_server < 2; at_server++) {
        duo_t d;
        memset(&d, 0, sizeof d);
        aemp__tls_conf_t *conf = conf_new(&d.loop, &id_a, NULL);
        duo_open(&d, at_server ? NULL : conf, at_server ? conf : NULL, 0);
        side_t *victim = at_server ? &d.sv : &d.c;
        assert_int_equal(
            aemp__pipe_inject(at_server ? d.pb : d.pa, junk, sizeof junk - 1),
            0);
        assert_true(nt_run_until(&d.loop, side_failed, victim, 10));
        side_t *x = victim;
        print_message("%s: %s\n", at_server ? "server" : "client", x->why);
        assert_int_equal(x->failed, 1);
        assert_int_equal(x->err, AEMP_EPROTO);
        assert_prefix(x->why, "TLS handshake failed: ");
        assert_non_null(strstr(x->why, "(the peer does not speak TLS)"));
        duo_close(&d);
        aemp__tls_conf_free(conf);
    }
}

/* The server hangs up after the client's hello. */
static void hangup_mid_handshake(void **state)
{
    duo_t d;
    memset(&d, 0, sizeof d);
    aemp__tls_conf_t *conf = conf_new(&d.loop, &id_a, NULL);
    duo_open(&d, conf, NULL, 0);
    want_t w = {&d.sv, 1};
    assert_true(nt_run_until(&d.loop, has_len, &w, 10)); /* the hello */
    aemp__pipe_hangup(d.pa);
    assert_true(nt_run_until(&d.loop, client_failed, &d, 10));
    assert_prefix(d.c.why, "TLS handshake failed: the peer hung up (it may not "
                            "accept our certificate");
    assert_int_equal(d.c.err, AEMP_EPROTO);
    duo_close(&d);
    aemp__tls_conf_free(conf);
}

static void bad_conf(void **state)
{
    aemp__tls_conf_t *c = NULL;
    char why[256] = "";
    assert_int_equal(aemp__tls_conf_new(NULL, "not a key", id_a.cert, NULL, &c,
                                        why, sizeof why),
                     AEMP_EINVAL);
    assert_prefix(why, "bad key or certificate: ");
    /* a key that is not the certificate's */
    assert_int_equal(aemp__tls_conf_new(NULL, id_b.key, id_a.cert, NULL, &c,
                                        why, sizeof why),
                     AEMP_EINVAL);
    assert_int_equal(aemp__tls_conf_new(NULL, id_a.key, id_a.cert, "junk", &c,
                                        why, sizeof why),
                     AEMP_EINVAL);
    assert_prefix(why, "bad CA certificate");
    assert_null(c);
}

/* A server that speaks TLS 1.2 at most: the client goes down to it; the
 * certificates are checked during the handshake on both sides.  A peer
 * of TLS 1.1 at most is refused. */
static void tls12(void **state)
{
    for (int step = 0; step < 3; step++) {
        duo_t d;
        memset(&d, 0, sizeof d);
        const ident_t *ci = step == 1 ? &id_old : &id_a;
        aemp__tls_conf_t *cc = conf_new(&d.loop, ci, id_a.cert);
        aemp__tls_conf_t *sc = conf_new(&d.loop, &id_a, ci->cert);
        SSL_CTX_set_max_proto_version(aemp__tls_conf_ctx(sc),
                                      step == 2 ? TLS1_1_VERSION
                                                : TLS1_2_VERSION);
        if (step == 2) /* (for the refusal to be ours, not the policy's) */
            SSL_CTX_set_min_proto_version(aemp__tls_conf_ctx(sc),
                                          TLS1_1_VERSION);
        duo_open(&d, cc, sc, 7);
        if (step == 0) {
            await_established(&d);
            assert_string_equal(aemp__tls_version(d.c.s), "TLSv1.2");
            exchange(&d, 100000);
        } else {
            assert_true(nt_run_until(&d.loop, both_failed, &d, 10));
            print_message("client: %s\nserver: %s\n", d.c.why, d.sv.why);
            if (step == 1) {
                assert_string_equal(d.sv.why, "certificate verify failed: "
                                              "certificate has expired");
                assert_prefix(d.c.why, "TLS handshake failed: sslv3 "
                                       "alert certificate expired");
            } else {
                assert_prefix(d.c.why, "TLS handshake failed: ");
                assert_prefix(d.sv.why, "TLS handshake failed: ");
            }
        }
        duo_close(&d);
        aemp__tls_conf_free(cc);
        aemp__tls_conf_free(sc);
    }
}

/* ---- inner's waiting write, after the handshake -------------------------- */

/* A raw reader that switches its end to the TLS server after a line, as a
 * link does after the nonce lines, and replays what followed the line. */
static const aemp__tls_conf_t *switch_conf;
static side_t *switch_side;

static void switch_data(aemp__stream_t *s, void *user, const char *buf,
                        size_t len)
{
    const char *nl = memchr(buf, '\n', len);
    assert_non_null(nl); /* the line comes whole: max_write is the client's */
    aemp__stream_t *tls;
    assert_int_equal(aemp__tls_wrap(s, switch_conf, false, &tls), 0);
    side_attach(switch_side, tls);
    aemp__stream_replay(s, nl + 1, len - (size_t)(nl + 1 - buf));
}

static const aemp__stream_up_t switch_up = {switch_data, on_drained, on_failed,
                                            on_closed};

/* The client's end has a write waiting when it is wrapped: the wrapper
 * counts it and passes its `drained` on; the ClientHello follows it. */
static void wraps_a_waiting_write(void **state)
{
    duo_t d;
    memset(&d, 0, sizeof d);
    aemp__tls_conf_t *conf = conf_new(&d.loop, &id_a, NULL);
    uv_loop_init(&d.loop);
    assert_int_equal(aemp__pipe_pair(&d.loop, &d.pa, &d.pb), 0);
    aemp__pipe_stall(d.pa, AEMP__PIPE_STALL_WRITE);
    side_attach(&d.c, d.pa);
    switch_conf = conf;
    switch_side = &d.sv;
    aemp__stream_attach(d.pb, &switch_up, NULL);
    assert_int_equal(aemp__stream_start(d.pa), 0);
    assert_int_equal(aemp__stream_start(d.pb), 0);
    aemp__buf_t b = {0};
    assert_int_equal(aemp__buf_append(&b, "nonce line\n", 11), 0);
    assert_int_equal(aemp__stream_write(d.pa, &b), AEMP__STREAM_WAIT);
    aemp__buf_free(&b);
    aemp__stream_t *tls;
    assert_int_equal(aemp__tls_wrap(d.pa, conf, true, &tls), 0);
    side_attach(&d.c, tls);
    assert_int_equal(aemp__stream_unwritten(tls), 11);
    nt_run_for(&d.loop, 0.02);
    assert_int_equal(aemp__stream_unwritten(tls), 11);
    aemp__pipe_stall(d.pa, 0);
    assert_true(nt_run_until(&d.loop, drained_once, &d.c, 10));
    assert_int_equal(d.c.drained, 1);
    assert_int_equal(aemp__stream_unwritten(tls), 0);
    await_established(&d);
    exchange(&d, 100000);
    duo_close(&d);
    aemp__tls_conf_free(conf);
}

/* Once established: bytes that are not a record are an error, the
 * peer's close is an orderly end (err 0). */
static void after_the_handshake(void **state)
{
    for (int junk = 0; junk < 2; junk++) {
        duo_t d;
        memset(&d, 0, sizeof d);
        aemp__tls_conf_t *conf = conf_new(&d.loop, &id_a, NULL);
        duo_open(&d, conf, conf, 0);
        await_established(&d);
        exchange(&d, 1000);
        if (junk) {
            static const char rec[] = "\x17\x03\x03\x00\x20"
                                      "0123456789abcdef0123456789abcdef";
            assert_int_equal(aemp__pipe_inject(d.pa, rec, sizeof rec - 1), 0);
        } else {
            aemp__stream_t *s = d.sv.s;
            d.sv.s = NULL; /* duo_close: closing already */
            aemp__stream_close(s);
        }
        assert_true(nt_run_until(&d.loop, client_failed, &d, 10));
        print_message("client: %s\n", d.c.why);
        if (junk) {
            assert_prefix(d.c.why, "TLS failed: ");
            assert_int_equal(d.c.err, AEMP_EPROTO);
        } else {
            assert_int_equal(d.c.err, 0);
        }
        assert_int_equal(d.c.failed, 1);
        duo_close(&d);
        aemp__tls_conf_free(conf);
    }
}

/* ---- under a link: the switch after the nonce lines ---------------------- */

typedef struct nodes {
    uv_loop_t loop;
    aemp_node_t *a, *b;
    aemp__stream_t *sa, *sb;
    kt_rec_t rec, log_a, log_b;
} nodes_t;

static aemp_node_t *node_new(uv_loop_t *loop, kt_rec_t *log)
{
    aemp_node_t *n = NULL;
    aemp_netconf_t c = {.secret = "tls test secret", .monitor_timeout = 5};
    assert_int_equal(aemp_node_new(&n, loop), 0);
    assert_int_equal(aemp_node_configure(n, &c), 0);
    aemp_node_set_log(n, AEMP_LOG_DEBUG, kt_log_rec, log);
    return n;
}

static int nodes_up(void *arg)
{
    nodes_t *d = arg;
    return aemp_node_is_up(d->a, aemp_noderef(d->b)) &&
           aemp_node_is_up(d->b, aemp_noderef(d->a));
}

static int got_two(void *arg)
{
    nodes_t *d = arg;
    return kt_rec_count(&d->rec, "at_a") >= 2 &&
           kt_rec_count(&d->rec, "at_b") >= 2;
}

static void dump(const kt_rec_t *log)
{
    for (size_t i = 0; i < log->n; i++) {
        const char *text = "?";
        aemp_msg_unpack(log->ev[i].msg, "-s", &text);
        fprintf(stderr, "  [%s] %s\n", log->ev[i].port, text);
    }
}

/* a (the client) has switched and its ClientHello waits for b. */
static int hello_waits(void *arg)
{
    nodes_t *d = arg;
    aemp__link_t *la = d->a->net->links;
    return la && aemp__tls_version(la->stream) &&
           !aemp__stream_unwritten(d->sa) && aemp__pipe_readable(d->sb) > 200;
}

/* early: b reads a's greeting, nonce and ClientHello in one read, so the
 * link replays the hello past the nonce line to the TLS server. */
static void under_a_link(void **state)
{
    static const size_t ks[] = {0, 1, 7, 0, 7};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        bool early = i >= 3;
        nodes_t d;
        memset(&d, 0, sizeof d);
        uv_loop_init(&d.loop);
        aemp__tls_conf_t *conf = conf_new(&d.loop, &id_a, NULL);
        d.a = node_new(&d.loop, &d.log_a);
        d.b = node_new(&d.loop, &d.log_b);
        assert_int_equal(aemp__pipe_pair(&d.loop, &d.sa, &d.sb), 0);
        aemp__pipe_set_max_write(d.sa, ks[i]);
        aemp__pipe_set_max_write(d.sb, ks[i]);
        const char *idb = aemp_noderef(d.b);
        aemp__peer_t *p = aemp__peer_get(d.a, idb, strlen(idb), true);
        assert_non_null(p);
        assert_int_equal(aemp__link_over(d.a, d.sa, p), 0);
        assert_int_equal(aemp__link_over(d.b, d.sb, NULL), 0);
        aemp__link_t *la = d.a->net->links, *lb = d.b->net->links;
        assert_int_equal(aemp__link_switch(la, aemp__tls_wrap_client, conf), 0);
        assert_int_equal(aemp__link_switch(lb, aemp__tls_wrap_server, conf), 0);
        if (early) {
            aemp__pipe_stall(d.sb, AEMP__PIPE_STALL_READ);
            assert_true(nt_run_until(&d.loop, hello_waits, &d, 10));
            assert_string_equal(lb->stream->ops->name, "pipe");
            aemp__pipe_stall(d.sb, 0);
        }
        if (!nt_run_until(&d.loop, nodes_up, &d, 10)) {
            dump(&d.log_a);
            dump(&d.log_b);
            fail_msg("the link did not come up");
        }
        const char *ida = aemp_noderef(d.a);
        aemp__peer_t *pa = aemp__peer_get(d.b, ida, strlen(ida), false);
        assert_string_equal(p->link->stream->ops->name, "tls");
        assert_string_equal(pa->link->stream->ops->name, "tls");
        assert_true(aemp__tls_established(p->link->stream));
        kt_tap_t ta = {&d.rec, "at_a", 0}, tb = {&d.rec, "at_b", 0};
        const char *id;
        assert_int_equal(aemp_port(d.a, kt_tap_rcv, &ta, &id), 0);
        char *porta = strdup(id);
        assert_int_equal(aemp_port(d.b, kt_tap_rcv, &tb, &id), 0);
        char *portb = strdup(id);
        size_t big = ks[i] == 1 ? 3000 : 200000;
        char *blob = malloc(big);
        assert_non_null(blob);
        for (size_t j = 0; j < big; j++)
            blob[j] = (char)('a' + j * 7 % 26);
        assert_int_equal(aemp_snd(d.a, portb, "si", "n", 1), 0);
        assert_int_equal(aemp_snd(d.b, porta, "si", "n", 2), 0);
        assert_int_equal(aemp_snd(d.a, portb, "sS", "blob", blob, big), 0);
        assert_int_equal(aemp_snd(d.b, porta, "sS", "blob", blob, big), 0);
        assert_true(nt_run_until(&d.loop, got_two, &d, 20));
        assert_true(
            kt_msg_is(kt_rec_nth(&d.rec, "at_b", 0)->msg, "si", "n", 1));
        assert_true(
            kt_msg_is(kt_rec_nth(&d.rec, "at_a", 0)->msg, "si", "n", 2));
        assert_true(kt_msg_is(kt_rec_nth(&d.rec, "at_b", 1)->msg, "sS", "blob",
                              blob, big));
        assert_true(kt_msg_is(kt_rec_nth(&d.rec, "at_a", 1)->msg, "sS", "blob",
                              blob, big));
        free(blob);
        free(porta);
        free(portb);
        aemp_node_free(d.a);
        aemp_node_free(d.b);
        kt_rec_free(&d.rec);
        kt_rec_free(&d.log_a);
        kt_rec_free(&d.log_b);
        nt_loop_finish(&d.loop);
        aemp__tls_conf_free(conf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_and_data),
        cmocka_unit_test(write_before_handshake),
        cmocka_unit_test(unwritten_counts_plaintext),
        cmocka_unit_test(hold_and_release),
        cmocka_unit_test(another_ca),
        cmocka_unit_test(expired),
        cmocka_unit_test(garbage),
        cmocka_unit_test(hangup_mid_handshake),
        cmocka_unit_test(bad_conf),
        cmocka_unit_test(tls12),
        cmocka_unit_test(wraps_a_waiting_write),
        cmocka_unit_test(after_the_handshake),
        cmocka_unit_test(under_a_link),
    };
    return cmocka_run_group_tests(tests, make_idents, free_idents);
}
