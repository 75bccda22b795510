/* A byte stream under a link: TCP, an in-memory pipe for tests, and TLS
 * wrapping another stream (nng's transport ops, curl's connection
 * filters).  The link above keeps its own output buffer and batching; a
 * stream moves bytes and tells its reader what happened through up-calls.
 *
 * Every count is in the bytes the stream's user sees: a wrapper (TLS)
 * reports plaintext, whatever it sends underneath.  Loop thread only. */
#ifndef AEMP_STREAM_H
#define AEMP_STREAM_H

#include "codec.h"
#include "internal.h"

#include <uv.h>

typedef struct aemp__stream aemp__stream_t;

/* What a stream tells whoever reads it (its `up`), each with the stream
 * and its `user`.  Up-calls come from the loop — from a libuv callback or
 * a wrapped stream's up-call — never from inside a call into the stream
 * (write, start, hold, release, tune, close).  After close(), only
 * `closed` comes. */
typedef struct aemp__stream_up {
    /* Bytes received; borrowed for the call.  The reader may hold, write
     * or close from inside. */
    void (*data)(aemp__stream_t *s, void *user, const char *buf, size_t len);
    /* The write that returned AEMP__STREAM_WAIT has been taken completely:
     * unwritten() is 0 and the next write may come. */
    void (*drained)(aemp__stream_t *s, void *user);
    /* The stream is broken: err 0 is an orderly end of the peer's data
     * (EOF), otherwise an AEMP_E* code; why says it in words (borrowed for
     * the call).  The reader answers with close(): a broken stream
     * moves no more bytes, so nothing but `closed` is to come. */
    void (*failed)(aemp__stream_t *s, void *user, int err, const char *why);
    /* close() is complete: every handle of the stream (and of its inner
     * streams) has closed.  The stream's memory goes right after. */
    void (*closed)(aemp__stream_t *s, void *user);
} aemp__stream_up_t;

/* write() results besides errors. */
enum { AEMP__STREAM_DONE = 0, AEMP__STREAM_WAIT = 1 };

typedef struct aemp__stream_ops {
    const char *name; /* "tcp", "pipe", ...: for logs and tests */
    /* Begins reading: `data` up-calls from the next loop iteration on.
     * 0 or AEMP_ENOMEM / AEMP_ESYS (s->error says why). */
    int (*start)(aemp__stream_t *s);
    /* Takes every byte of *b (b->len is 0 afterwards), either straight to
     * the kernel (AEMP__STREAM_DONE) or into the stream's own keeping,
     * then AEMP__STREAM_WAIT: `drained` follows once they are all out, and
     * no write may come before it.  The stream may exchange b's memory
     * with a spare buffer of its own instead of copying.  A negative
     * AEMP_E* code when the stream is broken (s->error says why; no
     * up-call reports it). */
    int (*write)(aemp__stream_t *s, aemp__buf_t *b);
    /* Bytes taken by write() that have not reached the kernel yet; exact,
     * since aemp_backlog and aemp_flush are built on it.  0 whenever no
     * write waits. */
    size_t (*unwritten)(const aemp__stream_t *s);
    /* Stops reading (no `data` until release): backpressure reaches the
     * peer through the transport's own flow control. */
    void (*hold)(aemp__stream_t *s);
    /* Reads again after hold; 0 or a negative code. */
    int (*release)(aemp__stream_t *s);
    /* The session over the stream is established: tune for interactive
     * traffic, and let the transport probe a silent peer after idle_s
     * seconds (TCP keepalive; 0: no probing).  May be NULL. */
    void (*tune)(aemp__stream_t *s, unsigned idle_s);
    /* Closes the stream in any state (pending writes are dropped, bytes
     * the kernel took still go out).  `closed` follows from the loop. */
    void (*close)(aemp__stream_t *s);
} aemp__stream_ops_t;

struct aemp__stream {
    const aemp__stream_ops_t *ops;
    const aemp__stream_up_t *up; /* NULL: no reader (up-calls dropped) */
    void *user;
    aemp__stream_t *inner; /* the stream this one wraps (owned), or NULL */
    const char *error;     /* why the last call failed: a static text or
                              the stream's own, valid until closed */
    char addr[64]; /* the peer's address for logs ("ip:port"), "" if none */
};

/* Wraps inner (reading, and perhaps with a write waiting) in a new stream
 * *out, which becomes inner's reader and owner: closing *out closes
 * inner.  *out starts out reading, with inner's write (if any) as its own
 * — it passes inner's `drained` on — and copies inner's addr.  0, or a
 * negative code with inner untouched. */
typedef int (*aemp__stream_wrap_fn)(aemp__stream_t *inner, void *arg,
                                    aemp__stream_t **out);

static inline void aemp__stream_attach(aemp__stream_t *s,
                                       const aemp__stream_up_t *up, void *user)
{
    s->up = up;
    s->user = user;
}

static inline int aemp__stream_start(aemp__stream_t *s)
{
    return s->ops->start(s);
}

static inline int aemp__stream_write(aemp__stream_t *s, aemp__buf_t *b)
{
    return s->ops->write(s, b);
}

static inline size_t aemp__stream_unwritten(const aemp__stream_t *s)
{
    return s->ops->unwritten(s);
}

static inline void aemp__stream_hold(aemp__stream_t *s)
{
    s->ops->hold(s);
}

static inline int aemp__stream_release(aemp__stream_t *s)
{
    return s->ops->release(s);
}

static inline void aemp__stream_tune(aemp__stream_t *s, unsigned idle_s)
{
    if (s->ops->tune)
        s->ops->tune(s, idle_s);
}

static inline void aemp__stream_close(aemp__stream_t *s)
{
    s->ops->close(s);
}

/* ---- for implementations: the up-calls, skipped without a reader --------- */

static inline void aemp__stream_data(aemp__stream_t *s, const char *buf,
                                     size_t len)
{
    if (s->up)
        s->up->data(s, s->user, buf, len);
}

static inline void aemp__stream_drained(aemp__stream_t *s)
{
    if (s->up)
        s->up->drained(s, s->user);
}

static inline void aemp__stream_failed(aemp__stream_t *s, int err,
                                       const char *why)
{
    if (s->up)
        s->up->failed(s, s->user, err, why);
}

static inline void aemp__stream_closed(aemp__stream_t *s)
{
    if (s->up)
        s->up->closed(s, s->user);
}

/* Bytes s delivered before it was wrapped that belong to the wrapper (the
 * reader's leftovers past the switch point): handed to s's reader now,
 * exactly as s's own `data` up-call would.  Only from inside one of s's
 * up-calls, as its last step: the wrapper's up-calls come from inside. */
static inline void aemp__stream_replay(aemp__stream_t *s, const char *buf,
                                       size_t len)
{
    aemp__stream_data(s, buf, len);
}

/* ---- TCP (tcp_stream.c) -------------------------------------------------- */

typedef void (*aemp__tcp_connect_cb)(aemp__stream_t *s, void *user, int err);

/* Exposed for the tests, which look at the socket and the buffers. */
typedef struct aemp__tcp_stream {
    aemp__stream_t s;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    aemp__tcp_connect_cb on_connect;
    aemp__buf_t inflight; /* being written by wreq */
    size_t inflight_off;  /* inflight's bytes written before wreq */
    char *readbuf;
    bool writing, closing;
} aemp__tcp_stream_t;

/* A TCP stream on loop, not yet connected.  0 or AEMP_ENOMEM. */
int aemp__tcp_new(uv_loop_t *loop, aemp__stream_t **out);
/* Connects s to addr (endpoint: its text, the address until connected);
 * cb(s, s->user, 0 or AEMP_ESYS) follows from the loop unless closed
 * first.  0, or AEMP_ESYS with s->error. */
int aemp__tcp_connect(aemp__stream_t *s, const struct sockaddr *addr,
                      const char *endpoint, aemp__tcp_connect_cb cb);
/* Accepts the pending connection of server into s.  0 or AEMP_ESYS. */
int aemp__tcp_accept(aemp__stream_t *s, uv_stream_t *server);
/* The TCP stream at the bottom of s (through wrappers), NULL if none. */
aemp__tcp_stream_t *aemp__tcp_of(aemp__stream_t *s);

/* ---- the in-memory pipe (pipe_stream.c), for tests ----------------------- */

/* Two connected ends on one loop.  What one end writes the other reads,
 * always through the loop: the "kernel" between them takes at most
 * max_write bytes per write and per loop iteration, so writes wait and
 * drain as on a socket.  0 or AEMP_ENOMEM. */
int aemp__pipe_pair(uv_loop_t *loop, aemp__stream_t **a, aemp__stream_t **b);
/* At most k bytes of end's writes move per write and per loop iteration
 * (0: no limit, the default). */
void aemp__pipe_set_max_write(aemp__stream_t *end, size_t k);
enum { AEMP__PIPE_STALL_WRITE = 1, AEMP__PIPE_STALL_READ = 2 };
/* While stalled, the pipe takes none of end's bytes (WRITE: a full socket
 * buffer) and/or delivers nothing to end's reader (READ: the bytes wait
 * in the pipe).  0: runs normally. */
void aemp__pipe_stall(aemp__stream_t *end, unsigned what);
/* end reads these bytes next, as if its peer had written them.  0 or
 * AEMP_ENOMEM. */
int aemp__pipe_inject(aemp__stream_t *end, const void *data, size_t len);
/* The peer hangs up on end: end reads what is in the pipe, then EOF; its
 * writes fail. */
void aemp__pipe_hangup(aemp__stream_t *end);
/* Bytes of end's writes the pipe has taken so far. */
uint64_t aemp__pipe_taken(const aemp__stream_t *end);
/* Bytes waiting in the pipe for end's reader. */
size_t aemp__pipe_readable(const aemp__stream_t *end);

/* ---- TLS over another stream (tls_stream.c) ------------------------------ */

/* What a TLS stream needs: this side's key and certificate, the CA that
 * every peer's certificate must verify against (PROTOCOL.md §4), and the
 * loop the streams run on (a stream held with decrypted bytes waiting
 * delivers them from the loop after release, and the inner stream does
 * not say which loop it is on).  One conf serves both roles and any
 * number of streams; each stream keeps what it needs, so the conf may be
 * freed while they live.  Loop thread only. */
typedef struct aemp__tls_conf aemp__tls_conf_t;

/* A conf from PEM text (NUL-terminated): key_pem a private key, cert_pem
 * its certificate, ca_pem one or more CA certificates, or NULL for
 * cert_pem itself (one shared self-signed certificate: a closed network).
 * TLS 1.2 at least, 1.3 preferred; the peer's certificate is required and
 * verified both ways; no host-name check.  0, or AEMP_EINVAL with the
 * reason (OpenSSL's) in why (whylen bytes, may be 0), or AEMP_ENOMEM. */
int aemp__tls_conf_new(uv_loop_t *loop, const char *key_pem,
                       const char *cert_pem, const char *ca_pem,
                       aemp__tls_conf_t **out, char *why, size_t whylen);
void aemp__tls_conf_free(aemp__tls_conf_t *conf);
/* Seconds until conf's own certificate expires (negative: it has), with
 * the date as OpenSSL prints it ("Jan  2 03:04:05 2036 GMT") into buf
 * (len bytes, may be 0); 0 and "" if it cannot be read. */
long long aemp__tls_conf_expiry(const aemp__tls_conf_t *conf, char *buf,
                                size_t len);

/* Wraps inner in a TLS stream *out (the rules of aemp__stream_wrap_fn):
 * the TLS client if `client`, else the server; the client's first
 * handshake bytes go to inner at once (after inner's waiting write, if
 * any).  write() takes plaintext: bytes written before the handshake
 * completes wait and go once it has; DONE only when their ciphertext is
 * all in inner's hands and inner's write completed.  unwritten() counts
 * plaintext, the bytes of each TLS record until all of its ciphertext is
 * out of inner.  A handshake that fails (a certificate that does not
 * verify, bytes that are not TLS, a peer that hangs up) is `failed` with
 * AEMP_EPROTO and the reason: "certificate verify failed: <OpenSSL's
 * verify error>" when ours rejected the peer's certificate, else "TLS
 * handshake failed: <OpenSSL's reason>" (also for the alert a TLS 1.3
 * client gets when the server rejects its certificate, which comes after
 * the client's own handshake is through; "TLS failed: <reason>" once
 * plaintext has come; err 0 for an end of the peer's data).  hold, release and
 * tune pass through; close closes inner.  0 or AEMP_ENOMEM / AEMP_ESYS (inner's
 * write failed), with inner untouched but for that write. */
int aemp__tls_wrap(aemp__stream_t *inner, const aemp__tls_conf_t *conf,
                   bool client, aemp__stream_t **out);
/* aemp__tls_wrap as an aemp__stream_wrap_fn, arg the conf (for
 * aemp__link_switch: PROTOCOL.md §4 says which side is the client). */
int aemp__tls_wrap_client(aemp__stream_t *inner, void *conf,
                          aemp__stream_t **out);
int aemp__tls_wrap_server(aemp__stream_t *inner, void *conf,
                          aemp__stream_t **out);
/* s (a TLS stream) has completed its own side of the handshake: the peer's
 * certificate verified (TLS 1.3: the peer may still reject ours). */
bool aemp__tls_established(const aemp__stream_t *s);
/* The protocol version s runs ("TLSv1.3"; static text), for logs; NULL if
 * s is not a TLS stream. */
const char *aemp__tls_version(const aemp__stream_t *s);
/* conf's SSL_CTX (void: OpenSSL's headers stay out of here), for tests
 * that restrict it, e.g. to TLS 1.2.  Streams made after see the change. */
void *aemp__tls_conf_ctx(aemp__tls_conf_t *conf);

#endif
