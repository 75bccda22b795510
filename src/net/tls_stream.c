/* The TLS stream: OpenSSL over two memory BIOs, wrapped around another
 * stream (nng's TLS engine, curl's SSL filter).  Ciphertext from inner
 * goes into rbio; what OpenSSL writes to wbio is handed to inner one write
 * at a time, so nothing here blocks and every up-call comes from one of
 * inner's, or from the idle handle that delivers what a hold kept back.
 *
 * unwritten() must be exact in plaintext bytes, though inner counts
 * ciphertext: every record we encrypt is noted with the position its
 * ciphertext ends at (counted over all bytes produced for inner), and a
 * record's plaintext counts as unwritten until inner has that much out.
 * Handshake bytes are in no record: they are no one's plaintext. */
#include "stream.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define RECORD 16384 /* plaintext per SSL_write and per SSL_read */

struct aemp__tls_conf {
    SSL_CTX *ctx;
    uv_loop_t *loop;
};

typedef struct rec {
    uint64_t end; /* where the record's ciphertext ends, in bytes produced */
    size_t plain;
} rec_t;

typedef struct tls_stream {
    aemp__stream_t s;
    SSL *ssl;
    BIO *rbio, *wbio;    /* inner -> OpenSSL, OpenSSL -> inner */
    uv_idle_t pump;      /* delivers after release what a hold kept back */
    aemp__buf_t pending; /* plaintext written before the handshake ended */
    aemp__buf_t out;     /* ciphertext on its way into inner */
    aemp__buf_t recs;    /* rec_t, oldest first, from recs_off */
    size_t recs_off;
    uint64_t handed; /* bytes handed to inner's write, ever */
    bool handshaken, waiting, inner_waiting, held, broken, closing;
    bool heard; /* plaintext came: the peer's handshake is through too */
    bool inner_closed, pump_closed;
    bool eof;    /* inner failed after the handshake: told once read */
    int eof_err; /* ... with this code and text */
    char eof_why[128];
    char why[256]; /* s.error / failed text */
} tls_stream_t;

static const aemp__stream_ops_t tls_ops;

static tls_stream_t *tls_of(const aemp__stream_t *s)
{
    return (tls_stream_t *)s;
}

/* ---- the conf ------------------------------------------------------------ */

/* OpenSSL's reason for the last failure, its error queue emptied. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown error";
}

static int conf_fail(SSL_CTX *ctx, char *why, size_t whylen, const char *what)
{
    if (whylen)
        snprintf(why, whylen, "%s: %s", what, ssl_reason());
    SSL_CTX_free(ctx);
    return AEMP_EINVAL;
}

/* Every certificate in pem into ctx's trust store.  0 or -1. */
static int add_cas(SSL_CTX *ctx, const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    X509 *x;
    if (!b)
        return -1;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        int ok = X509_STORE_add_cert(store, x);
        X509_free(x);
        if (!ok) {
            BIO_free(b);
            return -1;
        }
        n++;
    }
    BIO_free(b);
    if (n == 0)
        return -1;
    ERR_clear_error(); /* the end of the PEM text */
    return 0;
}

static int use_pem(SSL_CTX *ctx, const char *key_pem, const char *cert_pem)
{
    BIO *kb = BIO_new_mem_buf(key_pem, -1), *cb = BIO_new_mem_buf(cert_pem, -1);
    EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    X509 *cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    int ok = key && cert && SSL_CTX_use_certificate(ctx, cert) == 1 &&
             SSL_CTX_use_PrivateKey(ctx, key) == 1 &&
             SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    X509_free(cert);
    BIO_free(kb);
    BIO_free(cb);
    return ok ? 0 : -1;
}

int aemp__tls_conf_new(uv_loop_t *loop, const char *key_pem,
                       const char *cert_pem, const char *ca_pem,
                       aemp__tls_conf_t **out, char *why, size_t whylen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    if (!ctx)
        return AEMP_ENOMEM;
    if (!key_pem || !cert_pem)
        return conf_fail(ctx, why, whylen, "no key or certificate");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* no renegotiation: SSL_write never needs to read; no tickets: no
     * resumption, and no post-handshake bytes nobody asked for */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    if (use_pem(ctx, key_pem, cert_pem) < 0)
        return conf_fail(ctx, why, whylen, "bad key or certificate");
    if (add_cas(ctx, ca_pem ? ca_pem : cert_pem) < 0)
        return conf_fail(ctx, why, whylen, "bad CA certificate");
    aemp__tls_conf_t *c = aemp__calloc(1, sizeof *c);
    if (!c) {
        SSL_CTX_free(ctx);
        return AEMP_ENOMEM;
    }
    c->ctx = ctx;
    c->loop = loop;
    *out = c;
    return 0;
}

long long aemp__tls_conf_expiry(const aemp__tls_conf_t *conf, char *buf,
                                size_t len)
{
    X509 *x = SSL_CTX_get0_certificate(conf->ctx);
    const ASN1_TIME *after = x ? X509_get0_notAfter(x) : NULL;
    int days = 0, secs = 0;
    if (len)
        buf[0] = 0;
    if (!after || !ASN1_TIME_diff(&days, &secs, NULL, after))
        return 0;
    BIO *b = BIO_new(BIO_s_mem());
    if (b && len && ASN1_TIME_print(b, after) == 1) {
        int n = BIO_read(b, buf, (int)(len - 1 < INT_MAX ? len - 1 : INT_MAX));
        buf[n > 0 ? n : 0] = 0;
    }
    BIO_free(b);
    return (long long)days * 86400 + secs;
}

void *aemp__tls_conf_ctx(aemp__tls_conf_t *conf)
{
    return conf->ctx;
}

void aemp__tls_conf_free(aemp__tls_conf_t *conf)
{
    if (!conf)
        return;
    SSL_CTX_free(conf->ctx); /* each SSL holds its own reference */
    aemp__free(conf);
}

/* ---- failing ------------------------------------------------------------- */

/* The stream is broken: reported once, nothing moves after. */
static void fail(tls_stream_t *t, int err, const char *why)
{
    if (t->broken || t->closing)
        return;
    t->broken = true;
    if (why != t->why)
        snprintf(t->why, sizeof t->why, "%s", why);
    t->s.error = t->why;
    uv_idle_stop(&t->pump);
    aemp__stream_failed(&t->s, err, t->why);
}

/* What OpenSSL's words mean for a node, where they are terse: a
 * certificate from another CA shows up as "self-signed certificate" or
 * "unable to get local issuer certificate" here, and as an "unknown ca"
 * alert on the other side. */
static const char *verify_hint(long v)
{
    switch (v) {
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return " (the peer's certificate is not from our CA)";
    default: return "";
    }
}

static const char *alert_hint(const char *reason)
{
    if (strstr(reason, "unknown ca") || strstr(reason, "bad certificate"))
        return " (the peer refuses our certificate: not from its CA)";
    if (strstr(reason, "certificate expired"))
        return " (the peer refuses our certificate: it has expired)";
    if (strstr(reason, "wrong version number") ||
        strstr(reason, "packet length too long") ||
        strstr(reason, "record layer failure") ||
        strstr(reason, "http request") ||
        strstr(reason, "https proxy request"))
        return " (the peer does not speak TLS)";
    return "";
}

/* Why an SSL call failed, into t->why. */
static void ssl_why(tls_stream_t *t, int rc, const char *what)
{
    long v = SSL_get_verify_result(t->ssl);
    int e = SSL_get_error(t->ssl, rc);
    if (v != X509_V_OK) {
        snprintf(t->why, sizeof t->why, "certificate verify failed: %s%s",
                 X509_verify_cert_error_string(v), verify_hint(v));
        ERR_clear_error();
    } else if (e == SSL_ERROR_SSL) {
        const char *reason = ssl_reason();
        snprintf(t->why, sizeof t->why, "%s: %s%s", what, reason,
                 alert_hint(reason));
    } else {
        snprintf(t->why, sizeof t->why, "%s: OpenSSL error %d", what, e);
        ERR_clear_error();
    }
}

/* ---- writing ------------------------------------------------------------- */

static uint64_t produced(const tls_stream_t *t)
{
    return t->handed + BIO_ctrl_pending(t->wbio);
}

/* Bytes inner has out of its hands (in the kernel, or its own peer's). */
static uint64_t gone(const tls_stream_t *t)
{
    return t->handed - aemp__stream_unwritten(t->s.inner);
}

static int note_record(tls_stream_t *t, uint64_t end, size_t plain)
{
    rec_t r = {end, plain};
    if (t->recs_off == t->recs.len)
        t->recs.len = t->recs_off = 0;
    return aemp__buf_append(&t->recs, &r, sizeof r);
}

static void forget_records(tls_stream_t *t)
{
    uint64_t g = gone(t);
    while (t->recs_off < t->recs.len) {
        rec_t r;
        memcpy(&r, t->recs.data + t->recs_off, sizeof r);
        if (r.end > g)
            break;
        t->recs_off += sizeof r;
    }
}

/* What OpenSSL produced, into inner when inner takes a write.  0 or a
 * negative code (t->why says it). */
static int flush_out(tls_stream_t *t)
{
    size_t n = BIO_ctrl_pending(t->wbio);
    if (t->inner_waiting || n == 0)
        return 0;
    t->out.len = 0;
    if (aemp__buf_reserve(&t->out, n) < 0) {
        snprintf(t->why, sizeof t->why, "out of memory");
        return AEMP_ENOMEM;
    }
    int got = BIO_read(t->wbio, t->out.data, (int)n);
    t->out.len = got > 0 ? (size_t)got : 0;
    t->handed += t->out.len;
    int rc = aemp__stream_write(t->s.inner, &t->out);
    if (rc < 0) {
        snprintf(t->why, sizeof t->why, "%s",
                 t->s.inner->error ? t->s.inner->error : aemp_strerror(rc));
        return rc;
    }
    t->inner_waiting = rc == AEMP__STREAM_WAIT;
    return 0;
}

/* The plaintext waiting for the handshake, encrypted record by record. */
static int encrypt_pending(tls_stream_t *t)
{
    size_t off = 0;
    while (off < t->pending.len) {
        size_t n = t->pending.len - off;
        n = n > RECORD ? RECORD : n;
        ERR_clear_error();
        int rc = SSL_write(t->ssl, t->pending.data + off, (int)n);
        if (rc <= 0) {
            ssl_why(t, rc, "TLS write failed");
            return AEMP_EPROTO;
        }
        if (note_record(t, produced(t), (size_t)rc) < 0) {
            snprintf(t->why, sizeof t->why, "out of memory");
            return AEMP_ENOMEM;
        }
        off += (size_t)rc;
    }
    t->pending.len = 0;
    return 0;
}

/* Our write waits no more: `drained` is due. */
static bool write_done(const tls_stream_t *t)
{
    return !t->pending.len && !t->inner_waiting && !BIO_ctrl_pending(t->wbio);
}

static int tls_write(aemp__stream_t *s, aemp__buf_t *b)
{
    tls_stream_t *t = tls_of(s);
    if (t->broken) {
        s->error = t->why[0] ? t->why : "TLS stream failed";
        return AEMP_ESYS;
    }
    int rc = 0;
    if (!t->pending.len) { /* b's memory becomes ours, b gets the spare */
        aemp__buf_t spare = t->pending;
        t->pending = *b;
        *b = spare;
    } else if (aemp__buf_append(&t->pending, b->data, b->len) < 0) {
        s->error = "out of memory";
        return AEMP_ENOMEM;
    }
    b->len = 0;
    if (t->handshaken &&
        ((rc = encrypt_pending(t)) < 0 || (rc = flush_out(t)) < 0)) {
        t->broken = true;
        s->error = t->why;
        return rc;
    }
    forget_records(t);
    if (write_done(t))
        return AEMP__STREAM_DONE;
    t->waiting = true;
    return AEMP__STREAM_WAIT;
}

static size_t tls_unwritten(const aemp__stream_t *s)
{
    const tls_stream_t *t = tls_of(s);
    uint64_t g = gone(t);
    size_t n = t->pending.len;
    for (size_t off = t->recs_off; off < t->recs.len; off += sizeof(rec_t)) {
        rec_t r;
        memcpy(&r, t->recs.data + off, sizeof r);
        if (r.end > g)
            n += r.plain;
    }
    return n;
}

/* ---- reading ------------------------------------------------------------- */

/* Stops at a hold, a close or a failure; true if it may go on. */
static bool alive(const tls_stream_t *t)
{
    return !t->closing && !t->broken;
}

static void handshake_done(tls_stream_t *t)
{
    t->handshaken = true;
    int rc = encrypt_pending(t);
    if (rc == 0)
        rc = flush_out(t);
    if (rc < 0) {
        fail(t, rc, t->why);
        return;
    }
    forget_records(t);
    if (t->waiting && write_done(t)) {
        t->waiting = false;
        aemp__stream_drained(&t->s);
    }
}

/* Moves the handshake on.  true once it is through and t alive. */
static bool shake(tls_stream_t *t)
{
    if (t->handshaken)
        return true;
    ERR_clear_error();
    int rc = SSL_do_handshake(t->ssl);
    if (rc == 1) {
        handshake_done(t);
        return alive(t);
    }
    int e = SSL_get_error(t->ssl, rc);
    bool more = e == SSL_ERROR_WANT_READ;
    if (!more)
        ssl_why(t, rc, "TLS handshake failed");
    /* an alert we send on failure goes out too (best effort) */
    char why[sizeof t->why];
    memcpy(why, t->why, sizeof why);
    if (flush_out(t) < 0 && more) {
        fail(t, AEMP_ESYS, t->why);
        return false;
    }
    if (!more)
        fail(t, AEMP_EPROTO, why);
    return false;
}

static bool has_buffered(const tls_stream_t *t)
{
    return SSL_pending(t->ssl) > 0 || BIO_ctrl_pending(t->rbio) > 0;
}

/* Plaintext to the reader while it reads; then, once no whole record is
 * left, a deferred end (a record cut short by it is dropped). */
static void deliver(tls_stream_t *t)
{
    char buf[RECORD];
    bool dry = false;
    while (!t->held && alive(t)) {
        ERR_clear_error();
        int rc = SSL_read(t->ssl, buf, sizeof buf);
        if (rc > 0) {
            t->heard = true;
            aemp__stream_data(&t->s, buf, (size_t)rc);
            continue;
        }
        int e = SSL_get_error(t->ssl, rc);
        if (e == SSL_ERROR_WANT_READ) {
            dry = true;
            break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            fail(t, 0, "end of file (TLS close)");
            return;
        }
        /* TLS 1.3: the client is through before the server has checked
         * its certificate; a rejection comes as an alert after */
        ssl_why(t, rc, t->heard ? "TLS failed" : "TLS handshake failed");
        fail(t, AEMP_EPROTO, t->why);
        return;
    }
    /* whatever OpenSSL has to answer (alerts, key updates) */
    if (alive(t) && flush_out(t) < 0)
        fail(t, AEMP_ESYS, t->why);
    if (alive(t) && dry && t->eof)
        fail(t, t->eof_err, t->eof_why);
}

static void advance(tls_stream_t *t)
{
    if (alive(t) && shake(t))
        deliver(t);
}

static void on_pump(uv_idle_t *h)
{
    tls_stream_t *t = h->data;
    uv_idle_stop(h);
    advance(t);
}

/* ---- inner's up-calls ---------------------------------------------------- */

static void in_data(aemp__stream_t *inner, void *user, const char *buf,
                    size_t len)
{
    tls_stream_t *t = user;
    if (!alive(t))
        return;
    while (len) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        if (BIO_write(t->rbio, buf, n) != n) {
            fail(t, AEMP_ENOMEM, "out of memory");
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
    advance(t);
}

static void in_drained(aemp__stream_t *inner, void *user)
{
    tls_stream_t *t = user;
    t->inner_waiting = false;
    if (!alive(t))
        return;
    if (flush_out(t) < 0) {
        fail(t, AEMP_ESYS, t->why);
        return;
    }
    forget_records(t);
    if (t->waiting && write_done(t)) {
        t->waiting = false;
        aemp__stream_drained(&t->s);
    }
}

static void in_failed(aemp__stream_t *inner, void *user, int err,
                      const char *why)
{
    tls_stream_t *t = user;
    if (!alive(t))
        return;
    if (!t->handshaken) {
        char w[sizeof t->why];
        /* a TLS client that rejects our certificate may just close,
         * without an alert: say what it most likely means */
        snprintf(w, sizeof w, "TLS handshake failed: %s",
                 err ? why
                     : "the peer hung up (it may not accept our "
                       "certificate: not from its CA, or expired)");
        fail(t, AEMP_EPROTO, w);
        return;
    }
    /* the records that came before the end are read first */
    t->eof = true;
    t->eof_err = err;
    snprintf(t->eof_why, sizeof t->eof_why, "%s", why);
    if (!t->held)
        deliver(t);
}

static void maybe_free(tls_stream_t *t)
{
    if (!t->inner_closed || !t->pump_closed)
        return;
    aemp__stream_closed(&t->s);
    SSL_free(t->ssl); /* and both BIOs */
    aemp__buf_free(&t->pending);
    aemp__buf_free(&t->out);
    aemp__buf_free(&t->recs);
    aemp__free(t);
}

static void in_closed(aemp__stream_t *inner, void *user)
{
    tls_stream_t *t = user;
    t->inner_closed = true;
    maybe_free(t);
}

static const aemp__stream_up_t tls_up = {in_data, in_drained, in_failed,
                                         in_closed};

/* ---- the other operations ------------------------------------------------ */

static int tls_start(aemp__stream_t *s)
{
    return aemp__stream_start(s->inner);
}

static void tls_hold(aemp__stream_t *s)
{
    tls_stream_t *t = tls_of(s);
    t->held = true;
    uv_idle_stop(&t->pump);
    aemp__stream_hold(s->inner);
}

static int tls_release(aemp__stream_t *s)
{
    tls_stream_t *t = tls_of(s);
    t->held = false;
    if (alive(t) && (has_buffered(t) || t->eof))
        uv_idle_start(&t->pump, on_pump);
    int rc = aemp__stream_release(s->inner);
    if (rc < 0)
        s->error = s->inner->error;
    return rc;
}

static void tls_tune(aemp__stream_t *s, unsigned idle_s)
{
    aemp__stream_tune(s->inner, idle_s);
}

static void on_pump_closed(uv_handle_t *h)
{
    tls_stream_t *t = h->data;
    t->pump_closed = true;
    maybe_free(t);
}

static void tls_close(aemp__stream_t *s)
{
    tls_stream_t *t = tls_of(s);
    t->closing = true;
    uv_close((uv_handle_t *)&t->pump, on_pump_closed);
    aemp__stream_close(s->inner);
}

static const aemp__stream_ops_t tls_ops = {
    .name = "tls",
    .start = tls_start,
    .write = tls_write,
    .unwritten = tls_unwritten,
    .hold = tls_hold,
    .release = tls_release,
    .tune = tls_tune,
    .close = tls_close,
};

/* ---- wrapping ------------------------------------------------------------ */

static tls_stream_t *tls_new(const aemp__tls_conf_t *conf, bool client)
{
    tls_stream_t *t = aemp__calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ssl = SSL_new(conf->ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        aemp__free(t);
        return NULL;
    }
    /* an empty memory BIO is "retry later", not EOF */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (client)
        SSL_set_connect_state(t->ssl);
    else
        SSL_set_accept_state(t->ssl);
    t->s.ops = &tls_ops;
    return t;
}

int aemp__tls_wrap(aemp__stream_t *inner, const aemp__tls_conf_t *conf,
                   bool client, aemp__stream_t **out)
{
    ERR_clear_error();
    tls_stream_t *t = tls_new(conf, client);
    if (!t) {
        ERR_clear_error();
        return AEMP_ENOMEM;
    }
    int rc = AEMP_ENOMEM;
    t->s.inner = inner;
    memcpy(t->s.addr, inner->addr, sizeof t->s.addr);
    /* inner's waiting write is ours: its bytes are plaintext to the
     * writer, a record of their own */
    size_t u = aemp__stream_unwritten(inner);
    if (u) {
        t->handed = u;
        t->inner_waiting = t->waiting = true;
        if (note_record(t, u, u) < 0)
            goto fail;
    }
    if (client) { /* the ClientHello (OpenSSL fails here only for memory) */
        ERR_clear_error();
        int hs = SSL_do_handshake(t->ssl);
        if (SSL_get_error(t->ssl, hs) != SSL_ERROR_WANT_READ)
            goto fail;
        if ((rc = flush_out(t)) < 0) /* inner->error says why */
            goto fail;
    }
    uv_idle_init(conf->loop, &t->pump);
    t->pump.data = t;
    aemp__stream_attach(inner, &tls_up, t);
    *out = &t->s;
    return 0;
fail:
    ERR_clear_error();
    aemp__buf_free(&t->recs);
    aemp__buf_free(&t->out);
    SSL_free(t->ssl); /* and its BIOs */
    aemp__free(t);
    return rc;
}

int aemp__tls_wrap_client(aemp__stream_t *inner, void *conf,
                          aemp__stream_t **out)
{
    return aemp__tls_wrap(inner, conf, true, out);
}

int aemp__tls_wrap_server(aemp__stream_t *inner, void *conf,
                          aemp__stream_t **out)
{
    return aemp__tls_wrap(inner, conf, false, out);
}

bool aemp__tls_established(const aemp__stream_t *s)
{
    return s->ops == &tls_ops && tls_of(s)->handshaken;
}

const char *aemp__tls_version(const aemp__stream_t *s)
{
    return s->ops == &tls_ops ? SSL_get_version(tls_of(s)->ssl) : NULL;
}
