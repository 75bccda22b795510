/* The in-memory pipe: two stream ends on one loop, for tests of what runs
 * over a stream.  Each end has an idle handle, its pump, which runs while
 * there is work: it moves the end's waiting bytes into the other end (at
 * most max_write per iteration, as a socket buffer drains) and delivers
 * what came in to the end's reader.  So every up-call comes from the
 * loop, never from inside write — as with a socket. */
#include "stream.h"

#include <string.h>

#define CHUNK 16384 /* bytes per delivery, like a socket read */

typedef struct pipe_end {
    aemp__stream_t s;
    struct pipe_end *peer; /* NULL once the other end closed */
    uv_idle_t pump;
    aemp__buf_t rx; /* for our reader: the peer's bytes, injected ones */
    size_t rx_off;  /* rx's bytes delivered */
    aemp__buf_t tx; /* written and not yet taken */
    size_t tx_off;  /* tx's bytes taken */
    uint64_t taken; /* bytes of our writes the pipe took, ever */
    size_t max_write;
    unsigned stall;
    bool reading, waiting, closing;
    bool eof;      /* no more bytes will come: EOF once rx is read */
    bool eof_told; /* the reader heard of it */
    bool hungup;   /* aemp__pipe_hangup: writes fail */
    char chunk[CHUNK];
} pipe_end_t;

static const aemp__stream_ops_t pipe_ops;

static pipe_end_t *end_of(const aemp__stream_t *s)
{
    return (pipe_end_t *)s;
}

static size_t tx_pending(const pipe_end_t *e)
{
    return e->tx.len - e->tx_off;
}

static size_t rx_pending(const pipe_end_t *e)
{
    return e->rx.len - e->rx_off;
}

static bool can_move(const pipe_end_t *e)
{
    return tx_pending(e) && e->peer && !(e->stall & AEMP__PIPE_STALL_WRITE);
}

static bool can_deliver(const pipe_end_t *e)
{
    return e->reading && !(e->stall & AEMP__PIPE_STALL_READ) &&
           (rx_pending(e) || (e->eof && !e->eof_told));
}

static void on_pump(uv_idle_t *h);

/* Runs the pump while it has something to do. */
static void pump_update(pipe_end_t *e)
{
    if (e->closing)
        return;
    if (can_move(e) || can_deliver(e) || (e->waiting && !tx_pending(e)))
        uv_idle_start(&e->pump, on_pump);
    else
        uv_idle_stop(&e->pump);
}

/* Bytes arriving at e's side of the pipe; dropped after a hangup, as a
 * closed socket drops them. */
static int arrive(pipe_end_t *e, const char *data, size_t len)
{
    if (e->eof)
        return 0;
    if (e->rx_off == e->rx.len) {
        e->rx.len = e->rx_off = 0;
    } else if (e->rx_off > CHUNK && e->rx_off > e->rx.len / 2) {
        memmove(e->rx.data, e->rx.data + e->rx_off, rx_pending(e));
        e->rx.len -= e->rx_off;
        e->rx_off = 0;
    }
    int rc = aemp__buf_append(&e->rx, data, len);
    if (rc == 0)
        pump_update(e);
    return rc;
}

/* The "kernel" takes up to one max_write of e's waiting bytes. */
static int move(pipe_end_t *e)
{
    size_t n = tx_pending(e);
    if (e->max_write && n > e->max_write)
        n = e->max_write;
    int rc = arrive(e->peer, e->tx.data + e->tx_off, n);
    if (rc < 0)
        return rc;
    e->tx_off += n;
    e->taken += n;
    if (e->tx_off == e->tx.len)
        e->tx.len = e->tx_off = 0;
    return 0;
}

static void on_pump(uv_idle_t *h)
{
    pipe_end_t *e = h->data;
    if (can_move(e) && move(e) < 0) {
        aemp__stream_failed(&e->s, AEMP_ENOMEM, "out of memory");
        if (e->closing)
            return;
    }
    if (e->waiting && !tx_pending(e)) {
        e->waiting = false;
        aemp__stream_drained(&e->s);
        if (e->closing)
            return;
    }
    if (can_deliver(e)) {
        size_t n = rx_pending(e);
        if (n == 0) {
            e->eof_told = true;
            aemp__stream_failed(&e->s, 0, "end of file");
            if (e->closing)
                return;
        } else {
            /* a copy: the reader may make more bytes arrive here */
            n = n > CHUNK ? CHUNK : n;
            memcpy(e->chunk, e->rx.data + e->rx_off, n);
            e->rx_off += n;
            aemp__stream_data(&e->s, e->chunk, n);
            if (e->closing)
                return;
        }
    }
    pump_update(e);
}

/* ---- the stream operations ----------------------------------------------- */

static int pipe_release(aemp__stream_t *s)
{
    pipe_end_t *e = end_of(s);
    e->reading = true;
    pump_update(e);
    return 0;
}

static void pipe_hold(aemp__stream_t *s)
{
    pipe_end_t *e = end_of(s);
    e->reading = false;
    pump_update(e);
}

static int pipe_write(aemp__stream_t *s, aemp__buf_t *b)
{
    pipe_end_t *e = end_of(s);
    if (!e->peer || e->hungup) {
        s->error = "broken pipe";
        return AEMP_ESYS;
    }
    int rc = 0;
    if (tx_pending(e)) {
        /* the caller did not wait for `drained`: queue behind */
        rc = aemp__buf_append(&e->tx, b->data, b->len);
    } else {
        size_t n = e->stall & AEMP__PIPE_STALL_WRITE ? 0 : b->len;
        if (e->max_write && n > e->max_write)
            n = e->max_write;
        rc = arrive(e->peer, b->data, n);
        if (rc == 0) {
            e->taken += n;
            /* the rest waits in tx: b's memory, b gets tx's */
            aemp__buf_t spare = e->tx;
            e->tx = *b;
            e->tx_off = n;
            *b = spare;
            if (e->tx_off == e->tx.len)
                e->tx.len = e->tx_off = 0;
        }
    }
    if (rc < 0) {
        s->error = "out of memory";
        return rc;
    }
    b->len = 0;
    if (!tx_pending(e))
        return AEMP__STREAM_DONE;
    e->waiting = true;
    pump_update(e);
    return AEMP__STREAM_WAIT;
}

static size_t pipe_unwritten(const aemp__stream_t *s)
{
    return tx_pending(end_of(s));
}

static void on_pump_closed(uv_handle_t *h)
{
    pipe_end_t *e = h->data;
    aemp__stream_closed(&e->s);
    aemp__buf_free(&e->rx);
    aemp__buf_free(&e->tx);
    aemp__free(e);
}

static void pipe_close(aemp__stream_t *s)
{
    pipe_end_t *e = end_of(s);
    if (e->peer) { /* the other end reads what it has, then EOF */
        e->peer->peer = NULL;
        e->peer->eof = true;
        pump_update(e->peer);
        e->peer = NULL;
    }
    e->closing = true;
    uv_close((uv_handle_t *)&e->pump, on_pump_closed);
}

static const aemp__stream_ops_t pipe_ops = {
    .name = "pipe",
    .start = pipe_release,
    .write = pipe_write,
    .unwritten = pipe_unwritten,
    .hold = pipe_hold,
    .release = pipe_release,
    .close = pipe_close,
};

/* ---- making and steering a pipe ------------------------------------------ */

static pipe_end_t *end_new(uv_loop_t *loop)
{
    pipe_end_t *e = aemp__calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->s.ops = &pipe_ops;
    uv_idle_init(loop, &e->pump);
    e->pump.data = e;
    return e;
}

int aemp__pipe_pair(uv_loop_t *loop, aemp__stream_t **a, aemp__stream_t **b)
{
    pipe_end_t *x = end_new(loop), *y = x ? end_new(loop) : NULL;
    if (!y) {
        if (x) /* its handle closes through the loop, without a reader */
            pipe_close(&x->s);
        return AEMP_ENOMEM;
    }
    x->peer = y;
    y->peer = x;
    *a = &x->s;
    *b = &y->s;
    return 0;
}

void aemp__pipe_set_max_write(aemp__stream_t *end, size_t k)
{
    end_of(end)->max_write = k;
}

void aemp__pipe_stall(aemp__stream_t *end, unsigned what)
{
    pipe_end_t *e = end_of(end);
    e->stall = what;
    pump_update(e);
}

int aemp__pipe_inject(aemp__stream_t *end, const void *data, size_t len)
{
    return arrive(end_of(end), data, len);
}

void aemp__pipe_hangup(aemp__stream_t *end)
{
    pipe_end_t *e = end_of(end);
    e->eof = e->hungup = true;
    pump_update(e);
}

uint64_t aemp__pipe_taken(const aemp__stream_t *end)
{
    return end_of(end)->taken;
}

size_t aemp__pipe_readable(const aemp__stream_t *end)
{
    return rx_pending(end_of(end));
}
