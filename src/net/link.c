/* A link is a session over a byte stream (stream.h): handshake lines
 * (bounded), then packets in the negotiated framings, written in batches
 * — everything sent during one loop iteration goes out in one write.  The
 * stream is TCP (dial, accept) or whatever aemp__link_over is given; the
 * link never looks below the stream interface. */
#include "net.h"

#include <stdio.h>
#include <string.h>

#define TICK_MS 1000
#define EAGER_WRITE (256 * 1024)

static const aemp__stream_up_t link_up;
static void link_flush(aemp__link_t *l);
static void packets(aemp__link_t *l, const char *data, size_t len);

static aemp__net_t *net_of(aemp__link_t *l)
{
    return l->node->net;
}

/* The link's two handles are its timer and its stream; the memory goes
 * with the last of them. */
static void link_handle_closed(aemp__link_t *l)
{
    aemp_node_t *n = l->node;
    if (--l->handles == 0) {
        aemp__hs_free(&l->hs);
        aemp_reader_free(l->reader);
        aemp__buf_free(&l->out);
        aemp__free(l->line);
        aemp__free(l);
    }
    aemp__node_handle_closed(n);
}

static void on_timer_closed(uv_handle_t *h)
{
    link_handle_closed(h->data);
}

static void on_stream_closed(aemp__stream_t *s, void *user)
{
    aemp__link_t *l = user;
    l->stream = NULL; /* its memory goes now; the timer may still close */
    l->writing = false;
    link_handle_closed(l);
}

/* Makes l (zeroed) a link of n over s, which it owns from here on: every
 * failure after this closes the link. */
static void link_init(aemp__link_t *l, aemp_node_t *n, aemp__stream_t *s)
{
    l->node = n;
    l->state = AEMP__LINK_CONNECTING;
    l->stream = s;
    aemp__stream_attach(s, &link_up, l);
    uv_timer_init(n->loop, &l->timer);
    l->timer.data = l;
    l->handles = 2;
    aemp__net_t *net = n->net;
    l->next = net->links;
    if (l->next)
        l->next->prev = l;
    net->links = l;
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
        aemp__peer_dial_failed(p, why, l->refused);
    } else if (l->named) {
        p->handshaking--;
        aemp__log(l->node, AEMP_LOG_WARN, "handshake with %s failed: %s", p->id,
                  why);
        if (p->qhead || p->stubs.n)
            aemp__peer_need(p);
        else if (l->named_new) /* an unauthenticated claim: not known */
            aemp__peer_forget(p);
    }
}

/* The peer's address for logs. */
static const char *addr_of(const aemp__link_t *l)
{
    return l->stream->addr[0] ? l->stream->addr : l->stream->ops->name;
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
    if (why && !l->peer) /* two nodes that dial each other: expected */
        aemp__log(n,
                  strncmp(why, "simultaneous", 12) ? AEMP_LOG_WARN
                                                   : AEMP_LOG_INFO,
                  "connection from %s refused: %s", addr_of(l), why);
    n->closing++; /* the stream: its `closed` up-call counts it off */
    aemp__stream_close(l->stream);
    aemp__node_close(n, (uv_handle_t *)&l->timer, on_timer_closed);
    link_detach(l, prev, why);
}

/* ---- output -------------------------------------------------------------- */

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

/* Bytes of ours went into the stream: flushes may be done. */
static void link_wrote(aemp__link_t *l)
{
    l->last_write = uv_now(l->node->loop);
    if (l->state == AEMP__LINK_UP && l->peer && l->peer->link == l)
        aemp__peer_written(l->peer);
}

size_t aemp__link_unwritten(const aemp__link_t *l)
{
    /* a stream has nothing of ours unwritten unless a write waits: the
     * common case costs no call */
    return l->out.len + (l->writing ? aemp__stream_unwritten(l->stream) : 0);
}

static void on_drained(aemp__stream_t *s, void *user)
{
    aemp__link_t *l = user;
    l->writing = false;
    link_wrote(l);
    if (l->out.len)
        link_flush(l);
}

/* Hands what is pending to the stream, which takes all of it (and, when
 * it cannot write it all now, the buffer's memory: out gets a spare). */
static void link_flush(aemp__link_t *l)
{
    if (l->writing || !l->out.len || l->state == AEMP__LINK_CONNECTING ||
        l->state == AEMP__LINK_CLOSED)
        return;
    int rc = aemp__stream_write(l->stream, &l->out);
    if (rc < 0) {
        aemp__link_close(l, l->stream->error ? l->stream->error
                                             : aemp_strerror(rc));
        return;
    }
    l->writing = rc == AEMP__STREAM_WAIT;
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
    int rc = l->framing->encode(&l->out, name, namelen, m);
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

/* ---- handshake ----------------------------------------------------------- */

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
    if (l->outgoing) {
        if (p == l->peer)
            return NULL;
        /* a node's ID need not be its address (Perl's are free text, and
         * seeds are addresses): dialled by address, the link becomes the
         * named node's once it is authenticated */
        if (l->peer->alias ||
            !(l->peer->addrs ||
              aemp__id_is_address(l->peer->id, l->peer->idlen)))
            return "reached a different node than dialled";
        l->renamed = true;
        return NULL;
    }
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

/* l, dialled for an address, reached the node its greeting names: it is
 * that node's link now, and the address stands for that node.  false if
 * the link was closed instead (that node has a link already). */
static bool link_rename(aemp__link_t *l)
{
    aemp__peer_t *d = l->peer;
    const char *id = l->hs.peer.node_id;
    aemp__peer_t *p = aemp__peer_get(l->node, id, strlen(id), true);
    if (!p) {
        aemp__link_close(l, "out of memory");
        return false;
    }
    d->dialing = NULL;
    l->peer = p;
    if (p->dialing) { /* our other attempt at it: this one won */
        aemp__link_t *other = p->dialing;
        p->dialing = NULL;
        other->peer = NULL; /* abandoned, not failed */
        aemp__link_close(other, "simultaneous connect, taking another");
    }
    if (p->link) {
        l->peer = NULL;
        aemp__link_close(l, "already connected");
        aemp__peer_alias(d, p);
        return false;
    }
    p->dialing = l;
    aemp__peer_alias(d, p);
    return l->state != AEMP__LINK_CLOSED;
}

static void link_established(aemp__link_t *l)
{
    if (l->renamed && !link_rename(l))
        return;
    aemp__peer_t *p = l->peer;
    aemp__net_t *net = net_of(l);
    if (p->link && p->link != l) { /* another link made it first */
        if (l->named)
            p->handshaking--;
        if (p->dialing == l)
            p->dialing = NULL;
        l->named = false;
        l->peer = NULL;
        aemp__link_close(l, "already connected");
        return;
    }
    if (l->named)
        p->handshaking--;
    if (p->dialing == l)
        p->dialing = NULL;
    l->named = false;
    if (aemp_reader_new(&l->reader, l->hs.recv_framing, &net->conf.limits) <
        0) {
        aemp__link_close(l, "out of memory");
        return;
    }
    aemp__reader_set_blocks(l->reader, &l->node->blocks);
    l->state = AEMP__LINK_UP;
    l->framing = aemp__framing(l->hs.send_framing); /* chosen from ours */
    l->peer_timeout = l->hs.peer.timeout;
    p->dialect = (uint8_t)aemp__greeting_dialect(&l->hs.peer);
    aemp__free(l->line);
    l->line = NULL;
    /* peers that promise no keepalive (Perl 1.x) are watched by TCP */
    aemp__stream_tune(l->stream, (unsigned)(net->conf.monitor_timeout / 3 + 1));
    l->last_read = l->last_write = uv_now(l->node->loop);
    uv_timer_start(&l->timer, on_tick, tick_ms(l), tick_ms(l));
    const char *tls = aemp__tls_version(l->stream);
    aemp__log(l->node, AEMP_LOG_INFO, "link to %s up (%s%s%s, sending %s)",
              p->id, l->hs.method, tls ? " over " : "", tls ? tls : "",
              l->framing->name);
    aemp__peer_link_up(p, l);
}

int aemp__link_switch(aemp__link_t *l, aemp__stream_wrap_fn wrap, void *arg)
{
    if (l->state > AEMP__LINK_HANDSHAKE || l->hs.state > AEMP__HS_NONCE)
        return AEMP_EBUSY;
    l->wrap = wrap;
    l->wrap_arg = arg;
    return 0;
}

/* Both greetings and nonces are through: the stream becomes the wrapper.
 * Our own lines so far went into the old stream whole (a write takes all
 * it is given; one still waiting finishes under the wrapper, which passes
 * its `drained` on).  Returns the old stream, to replay what was read
 * past the peer's nonce line to, or NULL with the link closed. */
static aemp__stream_t *link_switch_now(aemp__link_t *l)
{
    aemp__stream_t *inner = l->stream, *s;
    aemp__stream_wrap_fn wrap = l->wrap;
    l->wrap = NULL;
    link_flush(l); /* nothing for the new stream may be pending yet */
    if (l->state == AEMP__LINK_CLOSED)
        return NULL;
    int rc = wrap(inner, l->wrap_arg, &s);
    if (rc < 0) {
        char why[96];
        snprintf(why, sizeof why, "cannot switch the stream: %s",
                 aemp_strerror(rc));
        aemp__link_close(l, why);
        return NULL;
    }
    l->stream = s;
    aemp__stream_attach(s, &link_up, l);
    return inner;
}

/* One complete line during the handshake.  *switched: the stream was
 * replaced after it (the old one, to replay the rest of the read to). */
static int hs_line(aemp__link_t *l, const char *line, size_t len,
                   aemp__stream_t **switched)
{
    char *out = NULL;
    size_t outlen;
    int before = l->hs.state;
    /* tls_* methods are sound only inside TLS that verified the peer: no
     * authentication line is taken through a TLS stream before that */
    if (before == AEMP__HS_AUTH && l->hs.tls &&
        !aemp__tls_established(l->stream)) {
        aemp__link_close(l, "authentication line before TLS was established");
        return AEMP_EPROTO;
    }
    int rc = aemp__hs_line(&l->hs, line, len, &out, &outlen);
    if (rc < 0) {
        l->refused = rc == AEMP_EPROTO; /* not out of memory */
        aemp__link_close(l, l->hs.error[0] ? l->hs.error : aemp_strerror(rc));
        return rc;
    }
    if (before == AEMP__HS_GREETING) {
        const char *refusal = on_greeting(l);
        if (refusal) {
            aemp__free(out);
            l->refused = true;
            aemp__link_close(l, refusal);
            return AEMP_EPROTO;
        }
    }
    /* PROTOCOL.md §4: TLS when both greetings asked for it, right after
     * the nonce lines, before the authentication line; the lower nonce
     * line is the client */
    if (before == AEMP__HS_NONCE && l->hs.tls && !l->wrap) {
        l->wrap = l->hs.tls_client ? aemp__tls_wrap_client
                                   : aemp__tls_wrap_server;
        l->wrap_arg = net_of(l)->tls;
    }
    if (before == AEMP__HS_NONCE && l->wrap &&
        !(*switched = link_switch_now(l))) {
        aemp__free(out);
        return AEMP_EPROTO;
    }
    if (rc == 1) {
        rc = write_raw(l, out, outlen);
        aemp__free(out);
        if (rc < 0)
            aemp__link_close(l, aemp_strerror(rc));
        return rc;
    }
    if (rc == 2)
        link_established(l);
    return 0;
}

/* Splits handshake bytes into lines; what follows the last handshake line
 * belongs to the data phase, or to a new stream after a switch. */
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
        aemp__stream_t *old = NULL;
        if (hs_line(l, l->line, linelen, &old) < 0)
            return;
        if (old) { /* the last step here: the wrapper takes it from now */
            if (len)
                aemp__stream_replay(old, data, len);
            return;
        }
    }
    if (len && l->state == AEMP__LINK_UP)
        packets(l, data, len);
}

static void link_start(aemp__link_t *l)
{
    aemp__stream_t *s = l->stream;
    char *out;
    size_t outlen;
    l->state = AEMP__LINK_HANDSHAKE;
    l->line = aemp__malloc(AEMP__MAX_LINE);
    int rc = l->line
                 ? aemp__hs_start(&l->hs, &net_of(l)->hs,
                                  s->addr[0] ? s->addr : NULL, &out, &outlen)
                 : AEMP_ENOMEM;
    if (rc == 0) {
        rc = write_raw(l, out, outlen);
        aemp__free(out);
    }
    if (rc == 0)
        rc = aemp__stream_start(s);
    if (rc < 0) {
        aemp__link_close(l, rc == AEMP_ESYS && s->error ? s->error
                                                        : aemp_strerror(rc));
        return;
    }
    link_flush(l);
}

/* ---- data phase ---------------------------------------------------------- */

/* Backpressure: a node whose queue is full stops reading, the transport's
 * flow control closes its window, and the sender's backlog grows until it
 * paces itself (or hits max_backlog).  What was read already waits in the
 * reader. */
void aemp__link_hold(aemp__link_t *l, unsigned why)
{
    if (l->hold & why)
        return;
    if (!l->hold && l->state != AEMP__LINK_CLOSED)
        aemp__stream_hold(l->stream);
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
    packets(l, NULL, 0);                  /* what waits in the reader first */
    if (!l->hold && l->state == AEMP__LINK_UP &&
        aemp__stream_release(l->stream) < 0)
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
                 rc == AEMP_ENOMEM   ? "out of memory reading a packet"
                 : rc == AEMP_ELIMIT ? "packet beyond the limits"
                                     : "malformed packet",
                 *text ? text : aemp_strerror(rc));
        aemp__link_close(l, why);
    }
}

/* ---- the stream's up-calls ----------------------------------------------- */

static void on_data(aemp__stream_t *s, void *user, const char *buf, size_t len)
{
    aemp__link_t *l = user;
    if (l->state == AEMP__LINK_CLOSED)
        return;
    l->last_read = uv_now(l->node->loop);
    if (l->state == AEMP__LINK_HANDSHAKE)
        hs_bytes(l, buf, len);
    else
        packets(l, buf, len);
}

static void on_failed(aemp__stream_t *s, void *user, int err, const char *why)
{
    aemp__link_t *l = user;
    /* a peer that refuses us while our line is still unread in its socket
     * resets the connection rather than closing it: the same news */
    bool reset = l->state != AEMP__LINK_UP && err == AEMP_ESYS && why &&
                 !strcmp(why, uv_strerror(UV_ECONNRESET));
    /* refused by the peer's TLS (an alert, a certificate that does not
     * verify): no later attempt will do better.  A bare end or reset is
     * no refusal — the peer may have died mid-handshake, and a refusing
     * peer of ours says why in the log */
    l->refused = l->state == AEMP__LINK_HANDSHAKE && err == AEMP_EPROTO &&
                 why && !strstr(why, "the peer hung up");
    if (err == 0 || reset) /* the peer ended the stream */
        why = l->state == AEMP__LINK_UP ? "link closed by peer"
              : l->hs.state == AEMP__HS_AUTH && l->hs.peer.tls &&
                      !net_of(l)->hs.tls
                  ? "connection closed during authentication (the peer "
                    "wants TLS and we have no certificate, or it has no "
                    "secret, or a different one)"
              : l->hs.state == AEMP__HS_AUTH
                  ? "connection closed during authentication "
                    "(wrong secret, or refused by the peer)"
                  : "connection closed during the handshake";
    aemp__link_close(l, why);
}

static const aemp__stream_up_t link_up = {
    .data = on_data,
    .drained = on_drained,
    .failed = on_failed,
    .closed = on_stream_closed,
};

/* ---- keepalive ----------------------------------------------------------- */

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
        write_raw(l, l->framing->keepalive, l->framing->keepalive_len);
        link_flush(l);
    }
    if (ours && l->peer_timeout && !l->hold &&
        now - l->last_read >= (uint64_t)l->peer_timeout * 1000)
        aemp__link_close(l, "keepalive timeout");
}

static void on_deadline(uv_timer_t *h)
{
    aemp__link_t *l = h->data;
    aemp__link_close(l, l->hs.tls && !aemp__tls_established(l->stream)
                            ? "TLS handshake timeout"
                            : "handshake timeout");
}

/* ---- making links: over any stream, dialling and accepting TCP ----------- */

static void arm_deadline(aemp__link_t *l)
{
    uv_timer_start(&l->timer, on_deadline,
                   (uint64_t)(net_of(l)->conf.monitor_timeout * 1000.0), 0);
}

int aemp__link_over(aemp_node_t *n, aemp__stream_t *s, aemp__peer_t *dialled)
{
    if (!n->net)
        return AEMP_ENOROUTE;
    if (dialled && (dialled->link || dialled->dialing))
        return AEMP_EBUSY;
    aemp__link_t *l = aemp__calloc(1, sizeof *l);
    if (!l)
        return AEMP_ENOMEM;
    link_init(l, n, s);
    if (dialled) {
        l->outgoing = true;
        l->peer = dialled;
        dialled->dialing = l;
    }
    arm_deadline(l);
    link_start(l);
    return 0;
}

static void on_connect(aemp__stream_t *s, void *user, int err)
{
    aemp__link_t *l = user;
    if (l->state == AEMP__LINK_CLOSED)
        return;
    if (err < 0) {
        aemp__link_close(l, s->error);
        return;
    }
    link_start(l);
}

/* A link over a new TCP stream; the link is allocated first, so that a
 * failure leaves no handle behind. */
static aemp__link_t *tcp_link_new(aemp_node_t *n)
{
    aemp__stream_t *s;
    aemp__link_t *l = aemp__calloc(1, sizeof *l);
    if (!l)
        return NULL;
    if (aemp__tcp_new(n->loop, &s) < 0) {
        aemp__free(l);
        return NULL;
    }
    link_init(l, n, s);
    return l;
}

int aemp__link_dial(aemp_node_t *n, aemp__peer_t *p, const char *endpoint)
{
    struct sockaddr_storage addr;
    if (aemp__endpoint_parse(endpoint, strlen(endpoint), &addr) < 0)
        return AEMP_EINVAL;
    aemp__link_t *l = tcp_link_new(n);
    if (!l)
        return AEMP_ENOMEM;
    l->outgoing = true;
    l->peer = p;
    p->dialing = l;
    arm_deadline(l);
    if (aemp__tcp_connect(l->stream, (struct sockaddr *)&addr, endpoint,
                          on_connect) < 0) {
        p->dialing = NULL;
        l->peer = NULL;
        aemp__link_close(l, l->stream->error);
        return AEMP_ESYS;
    }
    return 0;
}

int aemp__link_accept(aemp_node_t *n, uv_stream_t *server)
{
    aemp__link_t *l = tcp_link_new(n);
    if (!l)
        return AEMP_ENOMEM;
    if (aemp__tcp_accept(l->stream, server) < 0) {
        aemp__link_close(l, NULL);
        return AEMP_ESYS;
    }
    arm_deadline(l);
    link_start(l);
    return 0;
}
