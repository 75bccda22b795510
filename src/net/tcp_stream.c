/* The TCP stream: a uv_tcp_t with a write fast path (uv_try_write) and one
 * write request at a time for what the socket did not take. */
#include "stream.h"

#include <stdio.h>

#define READ_CHUNK 65536
/* An in-flight buffer this big was a backlog that has drained: its memory
 * goes back rather than staying with an idle link. */
#define KEEP_INFLIGHT ((size_t)1 << 20)

static const aemp__stream_ops_t tcp_ops;

static aemp__tcp_stream_t *tcp_of(const aemp__stream_t *s)
{
    return (aemp__tcp_stream_t *)s;
}

static int sys_error(aemp__stream_t *s, int uverr)
{
    s->error = uv_strerror(uverr);
    return AEMP_ESYS;
}

int aemp__tcp_new(uv_loop_t *loop, aemp__stream_t **out)
{
    aemp__tcp_stream_t *t = aemp__calloc(1, sizeof *t);
    if (!t)
        return AEMP_ENOMEM;
    t->s.ops = &tcp_ops;
    uv_tcp_init(loop, &t->tcp);
    t->tcp.data = t->creq.data = t->wreq.data = t;
    *out = &t->s;
    return 0;
}

aemp__tcp_stream_t *aemp__tcp_of(aemp__stream_t *s)
{
    while (s && s->ops != &tcp_ops)
        s = s->inner;
    return (aemp__tcp_stream_t *)s;
}

/* ---- connecting ---------------------------------------------------------- */

static void peer_addr(aemp__tcp_stream_t *t)
{
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    char ip[48] = "?";
    int port = 0;
    ss.ss_family = AF_INET;
    if (uv_tcp_getpeername(&t->tcp, (struct sockaddr *)&ss, &sslen) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(t->s.addr, sizeof t->s.addr,
             ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

static void on_connect(uv_connect_t *req, int status)
{
    aemp__tcp_stream_t *t = req->data;
    if (t->closing)
        return;
    int err = 0;
    if (status < 0)
        err = sys_error(&t->s, status);
    else
        peer_addr(t);
    t->on_connect(&t->s, t->s.user, err);
}

int aemp__tcp_connect(aemp__stream_t *s, const struct sockaddr *addr,
                      const char *endpoint, aemp__tcp_connect_cb cb)
{
    aemp__tcp_stream_t *t = tcp_of(s);
    snprintf(s->addr, sizeof s->addr, "%s", endpoint);
    t->on_connect = cb;
    int err = uv_tcp_connect(&t->creq, &t->tcp, addr, on_connect);
    return err ? sys_error(s, err) : 0;
}

int aemp__tcp_accept(aemp__stream_t *s, uv_stream_t *server)
{
    aemp__tcp_stream_t *t = tcp_of(s);
    int err = uv_accept(server, (uv_stream_t *)&t->tcp);
    if (err)
        return sys_error(s, err);
    peer_addr(t);
    return 0;
}

/* ---- reading ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    aemp__tcp_stream_t *t = h->data;
    *buf = uv_buf_init(t->readbuf, READ_CHUNK);
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    aemp__tcp_stream_t *t = h->data;
    if (nread == 0 || t->closing)
        return;
    if (nread < 0) {
        uv_read_stop(h); /* libuv would report EOF again and again */
        aemp__stream_failed(&t->s, nread == UV_EOF ? 0 : AEMP_ESYS,
                            uv_strerror((int)nread));
        return;
    }
    aemp__stream_data(&t->s, buf->base, (size_t)nread);
}

static int tcp_release(aemp__stream_t *s)
{
    aemp__tcp_stream_t *t = tcp_of(s);
    int err = uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_read);
    return err ? sys_error(s, err) : 0;
}

static int tcp_start(aemp__stream_t *s)
{
    aemp__tcp_stream_t *t = tcp_of(s);
    if (!t->readbuf && !(t->readbuf = aemp__malloc(READ_CHUNK))) {
        s->error = aemp_strerror(AEMP_ENOMEM);
        return AEMP_ENOMEM;
    }
    return tcp_release(s);
}

static void tcp_hold(aemp__stream_t *s)
{
    uv_read_stop((uv_stream_t *)&tcp_of(s)->tcp);
}

/* ---- writing ------------------------------------------------------------- */

static size_t tcp_unwritten(const aemp__stream_t *s)
{
    /* libuv counts what its write requests have yet to write */
    return uv_stream_get_write_queue_size((const uv_stream_t *)&tcp_of(s)->tcp);
}

static void on_write(uv_write_t *req, int status)
{
    aemp__tcp_stream_t *t = req->data;
    t->writing = false;
    t->inflight.len = t->inflight_off = 0;
    if (t->inflight.cap > KEEP_INFLIGHT)
        aemp__buf_free(&t->inflight);
    if (t->closing)
        return;
    if (status < 0)
        aemp__stream_failed(&t->s, AEMP_ESYS, uv_strerror(status));
    else
        aemp__stream_drained(&t->s);
}

/* First straight to the socket (uv_try_write: no request, no completion
 * callback — a write request's completion costs libuv an extra loop
 * iteration and an epoll_ctl, which a ping-pong pays on every message),
 * then what the socket did not take with uv_write, which waits for room.
 * The caller's buffer becomes the in-flight one (no copy); it gets the
 * previous in-flight buffer's memory back. */
static int tcp_write(aemp__stream_t *s, aemp__buf_t *b)
{
    aemp__tcp_stream_t *t = tcp_of(s);
    uv_buf_t ub = uv_buf_init(b->data, (unsigned)b->len);
    int n = uv_try_write((uv_stream_t *)&t->tcp, &ub, 1);
    if (n < 0 && n != UV_EAGAIN)
        return sys_error(s, n);
    size_t done = n > 0 ? (size_t)n : 0;
    if (done == b->len) {
        b->len = 0;
        return AEMP__STREAM_DONE;
    }
    aemp__buf_t spare = t->inflight;
    t->inflight = *b;
    t->inflight_off = done;
    *b = spare;
    b->len = 0;
    ub = uv_buf_init(t->inflight.data + done,
                     (unsigned)(t->inflight.len - done));
    int err = uv_write(&t->wreq, (uv_stream_t *)&t->tcp, &ub, 1, on_write);
    if (err)
        return sys_error(s, err);
    t->writing = true;
    return AEMP__STREAM_WAIT;
}

static void tcp_tune(aemp__stream_t *s, unsigned idle_s)
{
    aemp__tcp_stream_t *t = tcp_of(s);
    uv_tcp_nodelay(&t->tcp, 1);
    uv_tcp_keepalive(&t->tcp, idle_s > 0, idle_s);
}

/* ---- closing ------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    aemp__tcp_stream_t *t = h->data;
    aemp__stream_closed(&t->s);
    aemp__buf_free(&t->inflight);
    aemp__free(t->readbuf);
    aemp__free(t);
}

static void tcp_close(aemp__stream_t *s)
{
    aemp__tcp_stream_t *t = tcp_of(s);
    t->closing = true;
    uv_close((uv_handle_t *)&t->tcp, on_closed);
}

static const aemp__stream_ops_t tcp_ops = {
    .name = "tcp",
    .start = tcp_start,
    .write = tcp_write,
    .unwritten = tcp_unwritten,
    .hold = tcp_hold,
    .release = tcp_release,
    .tune = tcp_tune,
    .close = tcp_close,
};
