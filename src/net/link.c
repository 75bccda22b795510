/* One TCP connection to another node: handshake lines (bounded), then
 * packets in the negotiated framings, written in batches — everything sent
 * during one loop iteration goes out in one write. */
#include "net.h"

#include <stdio.h>
#include <string.h>

#define READ_CHUNK 65536
#define TICK_MS 1000
#define EAGER_WRITE (256 * 1024)

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void link_flush(aemp__link_t *l);
static void packets(aemp__link_t *l, const char *data, size_t len);

static aemp__net_t *net_of(aemp__link_t *l) { return l->node->net; }

static void on_link_closed(uv_handle_t *h)
{
    aemp__link_t *l = h->data;
    aemp_node_t *n = l->node;
    if (--l->handles == 0) {
        aemp__hs_free(&l->hs);
        aemp_reader_free(l->reader);
        aemp__buf_free(&l->out);
        aemp__buf_free(&l->inflight);
        aemp__free(l->line);
        aemp__free(l->readbuf);
        aemp__free(l);
    }
    aemp__node_handle_closed(n);
}

static aemp__link_t *link_new(aemp_node_t *n)
{
    aemp__link_t *l = aemp__calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->node = n;
    l->state = AEMP__LINK_CONNECTING;
    uv_tcp_init(n->loop, &l->tcp);
    uv_timer_init(n->loop, &l->timer);
    l->tcp.data = l->timer.data = l;
    l->handles = 2;
    aemp__net_t *net = n->net;
    l->next = net->links;
    if (l->next)
        l->next->prev = l;
    net->links = l;
    return l;
}

static void links_unlink(aemp__link_t *l)
{
    aemp__net_t *net = net_of(l);
    if (l->prev)
        l->prev->next = l->next;
    else
        net->links = l->next;
    if (l->next)
        l->next->prev = l->prev;
    if (l->dirty) {
        aemp__link_t **pp = &net->dirty;
        while (*pp != l)
            pp = &(*pp)->dirty_next;
        *pp = l->dirty_next;
        l->dirty = false;
    }
}

/* Who has to hear about this link going away. */
static void link_detach(aemp__link_t *l, int prev_state, const char *why)
{
    aemp__peer_t *p = l->peer;
    if (!p || !why)
        return;
    if (prev_state == AEMP__LINK_UP && p->link == l) {
        aemp__peer_lost(p, why);
    } else if (p->dialing == l) {
        p->dialing = NULL;
        aemp__peer_dial_failed(p, why);
    } else if (l->named) {
        p->handshaking--;
        aemp__log(l->node, AEMP_LOG_WARN, "handshake with %s failed: %s",
                  p->id, why);
        if (p->qhead || p->stubs.n)
            aemp__peer_need(p);
        else if (l->named_new) /* an unauthenticated claim: not known */
            aemp__peer_forget(p);
    }
}

void aemp__link_close(aemp__link_t *l, const char *why)
{
    if (l->state == AEMP__LINK_CLOSED)
        return;
    int prev = l->state;
    l->state = AEMP__LINK_CLOSED;
    if (l->hold & AEMP__HOLD_QUEUE)
        net_of(l)->queue_holds--;
    l->hold = 0;
    links_unlink(l);
    aemp_node_t *n = l->node;
    if (why && !l->peer)
        aemp__log(n, AEMP_LOG_WARN, "connection from %s refused: %s",
                  l->peeraddr, why);
    n->closing += 2;
    uv_close((uv_handle_t *)&l->tcp, on_link_closed);
    uv_close((uv_handle_t *)&l->timer, on_link_closed);
    link_detach(l, prev, why);
}

/* ---- output ------------------------------------------------------------ */

static void mark_dirty(aemp__link_t *l)
{
    if (l->dirty)
        return;
    aemp__net_t *net = net_of(l);
    l->dirty = true;
    l->dirty_next = net->dirty;
    net->dirty = l;
    aemp__net_wake(l->node);
}

/* Bytes of ours the peer's socket took. */
static void link_wrote(aemp__link_t *l)
{
    l->last_write = uv_now(l->node->loop);
    if (l->state == AEMP__LINK_UP && l->peer && l->peer->link == l)
        aemp__peer_written(l->peer);
}

size_t aemp__link_unwritten(const aemp__link_t *l)
{
    /* libuv counts what its write requests have yet to write */
    return l->out.len + uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp);
}

static void on_write(uv_write_t *req, int status)
{
    aemp__link_t *l = req->data;
    l->writing = false;
    l->inflight.len = l->inflight_off = 0;
    if (l->inflight.cap > 4 * EAGER_WRITE) /* a backlog drained: give the
                                              memory back */
        aemp__buf_free(&l->inflight);
    if (l->state == AEMP__LINK_CLOSED)
        return;
    if (status < 0) {
        aemp__link_close(l, uv_strerror(status));
        return;
    }
    link_wrote(l);
    if (l->out.len)
        link_flush(l);
}

/* Writes out what is pending: first straight to the socket (uv_try_write:
 * no request, no completion callback — a write request's completion costs
 * libuv an extra loop iteration and an epoll_ctl, which a ping-pong pays
 * on every message), then what the socket did not take with uv_write,
 * which waits for room. */
static void link_flush(aemp__link_t *l)
{
    if (l->writing || !l->out.len || l->state == AEMP__LINK_CONNECTING)
        return;
    uv_buf_t b = uv_buf_init(l->out.data, (unsigned)l->out.len);
    int n = uv_try_write((uv_stream_t *)&l->tcp, &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
        aemp__link_close(l, uv_strerror(n));
        return;
    }
    size_t done = n > 0 ? (size_t)n : 0;
    if (done == l->out.len) {
        l->out.len = 0;
        link_wrote(l);
        return;
    }
    aemp__buf_t t = l->inflight;
    l->inflight = l->out;
    l->inflight_off = done;
    l->out = t;
    l->out.len = 0;
    b = uv_buf_init(l->inflight.data + done,
                    (unsigned)(l->inflight.len - done));
    l->wreq.data = l;
    int err = uv_write(&l->wreq, (uv_stream_t *)&l->tcp, &b, 1, on_write);
    if (err) {
        aemp__link_close(l, uv_strerror(err));
        return;
    }
    l->writing = true;
    if (done)
        link_wrote(l);
}

void aemp__links_flush(aemp_node_t *n)
{
    aemp__net_t *net = n->net;
    aemp__link_t *l;
    while ((l = net->dirty)) {
        net->dirty = l->dirty_next;
        l->dirty = false;
        link_flush(l);
    }
}

static int write_raw(aemp__link_t *l, const char *text, size_t len)
{
    int rc = aemp__buf_append(&l->out, text, len);
    if (rc == 0) {
        l->appended += len;
        mark_dirty(l);
    }
    return rc;
}

int aemp__link_write(aemp__link_t *l, const char *name, size_t namelen,
                     const aemp_msg_t *m)
{
    if (aemp__link_unwritten(l) > net_of(l)->conf.max_backlog)
        return AEMP_ELIMIT;
    size_t before = l->out.len;
    int rc = l->hs.send_framing == AEMP_CBOR
                 ? aemp__cbor_encode(&l->out, name, namelen, m)
                 : aemp__json_encode(&l->out, name, namelen, m);
    if (rc < 0)
        return rc;
    l->appended += l->out.len - before;
    /* batches go out at the end of the loop iteration, or as soon as one
     * is big enough: a long dispatch pass must not hold everything back */
    if (l->out.len >= EAGER_WRITE && !l->writing)
        link_flush(l);
    else
        mark_dirty(l);
    return 0;
}

/* ---- handshake ------------------------------------------------------------- */

/* The greeting named the peer: decide whether this link may proceed
 * (PROTOCOL.md §8).  Racing dials are settled by the node IDs alone, so
 * both sides reach the same answer before either sends data. */
static const char *on_greeting(aemp__link_t *l)
{
    aemp_node_t *n = l->node;
    const char *id = l->hs.peer.node_id;
    aemp__peer_t *p = aemp__peer_get(n, id, strlen(id), false);
    l->named_new = !p;
    if (!p && !l->outgoing)
        p = aemp__peer_get(n, id, strlen(id), true);
    if (l->outgoing)
        return p == l->peer ? NULL : "reached a different node than dialled";
    if (!p)
        return "out of memory";
    if (p->link)
        return "already connected";
    if (p->handshaking)
        return "already handshaking";
    if (p->dialing) {
        if (strcmp(n->noderef, id) < 0)
            return "simultaneous connect, keeping ours";
        aemp__link_t *ours = p->dialing;
        p->dialing = NULL;
        ours->peer = NULL; /* abandoned, not failed */
        aemp__link_close(ours, "simultaneous connect, taking theirs");
    }
    l->peer = p;
    l->named = true;
    p->handshaking++;
    return NULL;
}

static void on_tick(uv_timer_t *h);
static uint64_t tick_ms(aemp__link_t *l);

static void link_established(aemp__link_t *l)
{
    aemp__peer_t *p = l->peer;
    aemp__net_t *net = net_of(l);
    if (l->named)
        p->handshaking--;
    if (p->dialing == l)
        p->dialing = NULL;
    l->named = false;
    if (aemp_reader_new(&l->reader, l->hs.recv_framing, &net->conf.limits) < 0) {
        aemp__link_close(l, "out of memory");
        return;
    }
    aemp__reader_set_blocks(l->reader, &l->node->blocks);
    l->state = AEMP__LINK_UP;
    l->peer_timeout = l->hs.peer.timeout;
    aemp__free(l->line);
    l->line = NULL;
    uv_tcp_nodelay(&l->tcp, 1);
    /* peers that promise no keepalive (Perl 1.x) are watched by TCP */
    uv_tcp_keepalive(&l->tcp, 1,
                     (unsigned)(net->conf.monitor_timeout / 3 + 1));
    l->last_read = l->last_write = uv_now(l->node->loop);
    uv_timer_start(&l->timer, on_tick, tick_ms(l), tick_ms(l));
    aemp__log(l->node, AEMP_LOG_INFO, "link to %s up (%s, sending %s)", p->id,
              l->hs.method, l->hs.send_framing == AEMP_CBOR ? "cbor" : "json");
    aemp__peer_link_up(p, l);
}

/* One complete line during the handshake. */
static int hs_line(aemp__link_t *l, const char *line, size_t len)
{
    char *out = NULL;
    size_t outlen;
    int before = l->hs.state;
    int rc = aemp__hs_line(&l->hs, line, len, &out, &outlen);
    if (rc < 0) {
        aemp__link_close(l, l->hs.error[0] ? l->hs.error : aemp_strerror(rc));
        return rc;
    }
    if (before == AEMP__HS_GREETING) {
        const char *refusal = on_greeting(l);
        if (refusal) {
            aemp__link_close(l, refusal);
            return AEMP_EPROTO;
        }
    }
    if (rc == 1) {
        rc = write_raw(l, out, outlen);
        aemp__free(out);
        return rc;
    }
    if (rc == 2)
        link_established(l);
    return 0;
}

/* Splits handshake bytes into lines; what follows the last handshake line
 * belongs to the data phase. */
static void hs_bytes(aemp__link_t *l, const char *data, size_t len)
{
    while (len && l->state == AEMP__LINK_HANDSHAKE) {
        const char *lf = memchr(data, '\n', len);
        size_t take = lf ? (size_t)(lf - data) : len;
        if (l->linelen + take + (lf ? 1 : 0) > AEMP__MAX_LINE) {
            aemp__link_close(l, "handshake line too long");
            return;
        }
        memcpy(l->line + l->linelen, data, take);
        l->linelen += take;
        if (!lf)
            return;
        data += take + 1;
        len -= take + 1;
        size_t linelen = l->linelen;
        l->linelen = 0;
        if (hs_line(l, l->line, linelen) < 0)
            return;
    }
    if (len && l->state == AEMP__LINK_UP)
        packets(l, data, len);
}

static void start_handshake(aemp__link_t *l)
{
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    char ip[48] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &sslen) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(l->peeraddr, sizeof l->peeraddr,
             ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
    char *out;
    size_t outlen;
    l->state = AEMP__LINK_HANDSHAKE;
    l->line = aemp__malloc(AEMP__MAX_LINE);
    l->readbuf = aemp__malloc(READ_CHUNK);
    int rc = l->line && l->readbuf ? aemp__hs_start(&l->hs, &net_of(l)->hs,
                                                    l->peeraddr, &out, &outlen)
                                   : AEMP_ENOMEM;
    if (rc == 0) {
        rc = write_raw(l, out, outlen);
        aemp__free(out);
    }
    if (rc == 0 && uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read) != 0)
        rc = AEMP_ESYS;
    if (rc < 0) {
        aemp__link_close(l, aemp_strerror(rc));
        return;
    }
    link_flush(l);
}

/* ---- data phase -------------------------------------------------------------- */

/* Backpressure: a node whose queue is full stops reading, TCP's window
 * closes, and the sender's backlog grows until it paces itself (or hits
 * max_backlog).  What was read already waits in the reader. */
void aemp__link_hold(aemp__link_t *l, unsigned why)
{
    if (l->hold & why)
        return;
    if (!l->hold && l->state != AEMP__LINK_CLOSED)
        uv_read_stop((uv_stream_t *)&l->tcp);
    l->hold |= why;
    if (why == AEMP__HOLD_QUEUE)
        net_of(l)->queue_holds++;
}

void aemp__link_release(aemp__link_t *l, unsigned why)
{
    if (!(l->hold & why))
        return;
    l->hold &= ~why;
    if (why == AEMP__HOLD_QUEUE)
        net_of(l)->queue_holds--;
    if (l->hold || l->state != AEMP__LINK_UP)
        return;
    l->last_read = uv_now(l->node->loop); /* not silent: we did not look */
    packets(l, NULL, 0); /* what waits in the reader first */
    if (!l->hold && l->state == AEMP__LINK_UP &&
        uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read) != 0)
        aemp__link_close(l, "cannot read");
}

static void packets(aemp__link_t *l, const char *data, size_t len)
{
    aemp_node_t *n = l->node;
    /* a failed feed still leaves the packets before the bad one to take */
    int fed = aemp_reader_feed(l->reader, data, len);
    aemp_msg_t *m;
    int rc = 0;
    /* while held, the fed bytes wait in the reader, undecoded */
    while (!l->hold && (rc = aemp_reader_next(l->reader, &m)) == 1) {
        /* [] is a keepalive */
        rc = aemp_msg_len(m) ? aemp__deliver_packet(n, l->peer->id, m) : 0;
        aemp__msg_release(&n->blocks, m); /* the next packet's block */
        if (rc == AEMP_EPROTO) {
            aemp__link_close(l, "malformed packet: no destination port name");
            return;
        }
        if (l->state == AEMP__LINK_CLOSED)
            return; /* by what a callback did: the rest is lost with it */
        if (aemp__net_queue_full(n))
            aemp__link_hold(l, AEMP__HOLD_QUEUE);
    }
    if (rc == 0 && fed < 0)
        rc = fed;
    if (rc < 0) {
        char why[200];
        const char *text = aemp_reader_error(l->reader);
        snprintf(why, sizeof why, "%s: %s",
                 rc == AEMP_ENOMEM ? "out of memory reading a packet"
                 : rc == AEMP_ELIMIT ? "packet beyond the limits"
                                     : "malformed packet",
                 *text ? text : aemp_strerror(rc));
        aemp__link_close(l, why);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    aemp__link_t *l = h->data;
    *buf = uv_buf_init(l->readbuf, READ_CHUNK);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    aemp__link_t *l = s->data;
    if (nread == 0 || l->state == AEMP__LINK_CLOSED)
        return;
    if (nread < 0) {
        const char *why = uv_strerror((int)nread);
        if (nread == UV_EOF)
            why = l->state == AEMP__LINK_UP ? "Unexpected end-of-file"
                  : l->hs.state == AEMP__HS_AUTH
                      ? "connection closed during authentication "
                        "(wrong secret, or refused by the peer)"
                      : "connection closed during the handshake";
        aemp__link_close(l, why);
        return;
    }
    l->last_read = uv_now(l->node->loop);
    if (l->state == AEMP__LINK_HANDSHAKE)
        hs_bytes(l, buf->base, (size_t)nread);
    else
        packets(l, buf->base, (size_t)nread);
}

/* Keepalive: write [] before our promise runs out; give up on a peer that
 * promised to write and has been silent for its whole timeout. */
/* The tick runs four times per the shorter keepalive period (at most
 * once a second), so that [] goes out a tick before the peer's deadline
 * and a silent peer is noticed within a quarter period. */
static uint64_t tick_ms(aemp__link_t *l)
{
    unsigned ours = net_of(l)->conf.keepalive;
    unsigned t = ours && l->peer_timeout && l->peer_timeout < ours
                     ? l->peer_timeout
                     : ours;
    uint64_t ms = (uint64_t)t * 250;
    return ms < 50 ? 50 : ms > TICK_MS ? TICK_MS : ms;
}

static void on_tick(uv_timer_t *h)
{
    aemp__link_t *l = h->data;
    uint64_t now = uv_now(l->node->loop);
    uint64_t ours = (uint64_t)net_of(l)->conf.keepalive * 1000;
    uint64_t tick = tick_ms(l);
    if (ours && now - l->last_write + 2 * tick >= ours && !l->writing &&
        !l->out.len) {
        /* [] in either framing: CBOR 0x80 is the empty array */
        if (l->hs.send_framing == AEMP_CBOR)
            write_raw(l, "\x80", 1);
        else
            write_raw(l, "[]", 2);
        link_flush(l);
    }
    if (ours && l->peer_timeout && !l->hold &&
        now - l->last_read >= (uint64_t)l->peer_timeout * 1000)
        aemp__link_close(l, "keepalive timeout");
}

static void on_deadline(uv_timer_t *h)
{
    aemp__link_close(h->data, "handshake timeout");
}

/* ---- dialling and accepting -------------------------------------------------- */

static void on_connect(uv_connect_t *req, int status)
{
    aemp__link_t *l = req->data;
    if (l->state == AEMP__LINK_CLOSED)
        return;
    if (status < 0) {
        aemp__link_close(l, uv_strerror(status));
        return;
    }
    start_handshake(l);
}

static void arm_deadline(aemp__link_t *l)
{
    uv_timer_start(&l->timer, on_deadline,
                   (uint64_t)(net_of(l)->conf.monitor_timeout * 1000.0), 0);
}

int aemp__link_dial(aemp_node_t *n, aemp__peer_t *p, const char *endpoint)
{
    struct sockaddr_storage addr;
    if (aemp__endpoint_parse(endpoint, strlen(endpoint), &addr) < 0)
        return AEMP_EINVAL;
    aemp__link_t *l = link_new(n);
    if (!l)
        return AEMP_ENOMEM;
    l->outgoing = true;
    l->peer = p;
    p->dialing = l;
    snprintf(l->peeraddr, sizeof l->peeraddr, "%s", endpoint);
    l->creq.data = l;
    arm_deadline(l);
    int err = uv_tcp_connect(&l->creq, &l->tcp, (struct sockaddr *)&addr,
                             on_connect);
    if (err) {
        p->dialing = NULL;
        l->peer = NULL;
        aemp__link_close(l, uv_strerror(err));
        return AEMP_ESYS;
    }
    return 0;
}

int aemp__link_accept(aemp_node_t *n, uv_stream_t *server)
{
    aemp__link_t *l = link_new(n);
    if (!l)
        return AEMP_ENOMEM;
    if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0) {
        aemp__link_close(l, NULL);
        return AEMP_ESYS;
    }
    arm_deadline(l);
    start_handshake(l);
    return 0;
}
