/* A link: a session with another node over a byte stream (stream.h) —
 * the handshake lines, then packets in the negotiated framings, written
 * in batches.  Loop thread only. */
#ifndef AEMP_LINK_H
#define AEMP_LINK_H

#include "codec.h"
#include "handshake.h"
#include "kernel.h"
#include "stream.h"

typedef struct aemp__link aemp__link_t;
typedef struct aemp__peer aemp__peer_t;

struct aemp__link {
    aemp__stream_t *stream; /* owned; replaced by a wrapper on a switch */
    uv_timer_t timer; /* handshake deadline, then keepalive / read timeout */
    aemp_node_t *node;
    aemp__peer_t *peer;        /* dialed peer, or the greeting's node */
    aemp__link_t *next, *prev; /* all links of the node */
    aemp__link_t *dirty_next;  /* links with output to flush */
    int state, handles;
    unsigned hold; /* why reading is stopped (AEMP__HOLD_*); 0: reading */
    bool outgoing, dirty, named;
    bool writing;   /* the stream has a write waiting for `drained` */
    bool named_new; /* the greeting's node was unknown before: forget it
                       if the handshake fails */
    bool renamed;   /* dialled an address, reached a node of another ID:
                       once authenticated, the link is that node's */
    bool refused;   /* it ends because one side refused the other (not a
                       timeout or a network fault): waiting will not help */
    aemp__hs_t hs;
    const aemp__framing_t *framing; /* what we send, once up */
    char *line;
    size_t linelen;
    aemp_reader_t *reader;
    aemp__buf_t out;   /* pending, until the next flush */
    uint64_t appended; /* bytes ever put into out */
    uint64_t last_read, last_write;
    unsigned peer_timeout;
    aemp__stream_wrap_fn wrap; /* a switch asked for (aemp__link_switch) */
    void *wrap_arg;
};

/* Dials endpoint ("ip:port") for p over TCP.  0, AEMP_EINVAL, AEMP_ENOMEM
 * or AEMP_ESYS (p->dialing is not set then). */
int aemp__link_dial(aemp_node_t *n, aemp__peer_t *p, const char *endpoint);
/* Accepts a connection of the listener server.  0, AEMP_ENOMEM or
 * AEMP_ESYS. */
int aemp__link_accept(aemp_node_t *n, uv_stream_t *server);
/* Starts a link and its handshake over the stream s (connected, not yet
 * reading), as the side that dialled `dialled` (it becomes p->dialing),
 * or with dialled NULL as the side that accepted.  Takes s on success;
 * on failure (AEMP_ENOMEM, AEMP_ENOROUTE without a network, AEMP_EBUSY
 * if dialled has a link or a dial already) s is still the caller's. */
int aemp__link_over(aemp_node_t *n, aemp__stream_t *s, aemp__peer_t *dialled);
/* Once the greeting and nonce lines have been exchanged, the link's
 * stream becomes wrap(stream, arg) (PROTOCOL.md §4: TLS starts there):
 * the authentication line and everything after it go through the new
 * stream, and so do the bytes read past the peer's nonce line.  Only
 * before the peer's nonce line arrived: AEMP_EBUSY after.  A failing wrap
 * closes the link. */
int aemp__link_switch(aemp__link_t *l, aemp__stream_wrap_fn wrap, void *arg);
/* Appends one packet to the link's output. */
int aemp__link_write(aemp__link_t *l, const char *name, size_t namelen,
                     const aemp_msg_t *m);
void aemp__link_close(aemp__link_t *l, const char *why);
/* Bytes put into the link's output and not yet handed to the kernel. */
size_t aemp__link_unwritten(const aemp__link_t *l);
/* Stops / resumes reading for one reason (AEMP__HOLD_*); reading goes on
 * when no reason is left. */
void aemp__link_hold(aemp__link_t *l, unsigned why);
void aemp__link_release(aemp__link_t *l, unsigned why);
void aemp__links_flush(aemp_node_t *n);

#endif
