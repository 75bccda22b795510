/* The harness of the in-process network tests: nodes on one loop, numbered
 * streams, and raw peers (plain sockets polled by the loop, some of them
 * completing a real handshake with the functions of src/handshake.h). */
#include "net_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- nodes --------------------------------------------------------------- */

const char *nt_tls_cert(void)
{
    static char *pem;
    static int checked, on;
    if (!checked) {
        const char *e = getenv("AEMP_TEST_TLS");
        on = e && *e && strcmp(e, "0");
        checked = 1;
    }
    if (on && !pem)
        pem = nt_make_cert("aemp net test", -1, 30); /* kept to the end */
    return on ? pem : NULL;
}

aemp_netconf_t conf_std(void)
{
    return (aemp_netconf_t){.secret = SECRET,
                            .cert = nt_tls_cert(),
                            .monitor_timeout = 5,
                            .connect_interval = 0.2};
}

/* A node on loop with conf; public: listening on `ref` (NULL: a free port
 * of 127.0.0.1). */
void tnode_init(tnode_t *t, uv_loop_t *loop, const aemp_netconf_t *c,
                bool public_, const char *ref)
{
    memset(t, 0, sizeof *t);
    assert_int_equal(aemp_node_new(&t->n, loop), 0);
    assert_int_equal(aemp_node_configure(t->n, c), 0);
    aemp_node_set_log(t->n, AEMP_LOG_DEBUG, kt_log_rec, &t->log);
    if (!public_) {
        snprintf(t->ref, sizeof t->ref, "%s", aemp_noderef(t->n));
        return;
    }
    nt_listen(loop, t->n, ref, t->ref, sizeof t->ref, 20);
    assert_string_equal(aemp_noderef(t->n), t->ref);
}

void tnode_pub(tnode_t *t, uv_loop_t *loop)
{
    aemp_netconf_t c = conf_std();
    tnode_init(t, loop, &c, true, NULL);
}

void tnode_free(tnode_t *t)
{
    aemp_node_free(t->n);
    t->n = NULL;
    kt_rec_free(&t->log);
}

/* Starts loop with public node a (and b, unless NULL) on it, configured
 * with c (NULL: conf_std()). */
void nodes_start(uv_loop_t *loop, const aemp_netconf_t *c, tnode_t *a,
                 tnode_t *b)
{
    aemp_netconf_t std = conf_std();
    uv_loop_init(loop);
    tnode_init(a, loop, c ? c : &std, true, NULL);
    if (b)
        tnode_init(b, loop, c ? c : &std, true, NULL);
}

/* Frees a, b and rec (those not NULL), then finishes the loop. */
void nodes_finish(uv_loop_t *loop, tnode_t *a, tnode_t *b, kt_rec_t *rec)
{
    tnode_free(a);
    if (b)
        tnode_free(b);
    if (rec)
        kt_rec_free(rec);
    nt_loop_finish(loop);
}

void dump_log(const tnode_t *t)
{
    for (size_t i = 0; i < t->log.n; i++) {
        const char *text = "?";
        aemp_msg_unpack(t->log.ev[i].msg, "-s", &text);
        fprintf(stderr, "  [%s] %s\n", t->ref, text);
    }
}

/* A new port's ID, copied: the library's copy dies with the port, and
 * tests look at ports after their death.  Not inlined: GCC 12 takes the
 * out-parameter for a dangling pointer. */
__attribute__((noinline)) const char *mkport(aemp_node_t *n, aemp_rcv_fn cb,
                                             void *user)
{
    static char ids[1024][128];
    static unsigned next;
    const char *id = NULL;
    assert_int_equal(aemp_port(n, cb, user, &id), 0);
    char *copy = ids[next++ % 1024];
    assert_true(strlen(id) < sizeof ids[0]);
    strcpy(copy, id);
    return copy;
}

/* The part of a port ID after '#'. */
const char *name_of(const char *port)
{
    const char *h = strchr(port, '#');
    assert_non_null(h);
    return h + 1;
}

/* ---- internals we observe ------------------------------------------------ */

aemp__peer_t *peer_of(aemp_node_t *n, const char *id)
{
    return n->net ? aemp__peer_get(n, id, strlen(id), false) : NULL;
}

size_t watchers_of(aemp_node_t *n, const char *peer_id)
{
    aemp__peer_t *p = peer_of(n, peer_id);
    return p ? p->watchers.n : 0;
}

size_t links_up(aemp_node_t *n)
{
    size_t k = 0;
    for (aemp__link_t *l = n->net->links; l; l = l->next)
        k += l->state == AEMP__LINK_UP;
    return k;
}

size_t links_all(aemp_node_t *n)
{
    size_t k = 0;
    for (aemp__link_t *l = n->net->links; l; l = l->next)
        k++;
    return k;
}

int link_fd(aemp_node_t *n, const char *peer_id)
{
    aemp__peer_t *p = peer_of(n, peer_id);
    assert_non_null(p);
    assert_non_null(p->link);
    uv_os_fd_t fd;
    uv_handle_t *h = (uv_handle_t *)&aemp__tcp_of(p->link->stream)->tcp;
    assert_int_equal(uv_fileno(h, &fd), 0);
    return fd;
}

/* ---- conditions ------------------------------------------------------------
 */

int watchers_are(void *arg)
{
    watch_cond_t *w = arg;
    return watchers_of(w->n, w->peer) == w->want;
}

/* Runs until n has exactly `want` monitors set by peer. */
void await_watchers(uv_loop_t *loop, aemp_node_t *n, const char *peer,
                    size_t want)
{
    watch_cond_t w = {n, peer, want};
    if (!nt_run_until(loop, watchers_are, &w, 10))
        fail_msg("%s: %zu watchers of %s, want %zu", aemp_noderef(n),
                 watchers_of(n, peer), peer, want);
}

int rec_has(void *arg)
{
    rec_cond_t *c = arg;
    return kt_rec_count(c->rec, c->label) >= c->want;
}

int await_rec(uv_loop_t *loop, const kt_rec_t *rec, const char *label,
              size_t want, double seconds)
{
    rec_cond_t c = {rec, label, want};
    return nt_run_until(loop, rec_has, &c, seconds);
}

int is_up_as(void *arg)
{
    up_cond_t *c = arg;
    return aemp_node_is_up(c->n, c->peer) == c->want;
}

int await_up(uv_loop_t *loop, aemp_node_t *n, const char *peer, int want,
             double seconds)
{
    up_cond_t c = {n, peer, want};
    return nt_run_until(loop, is_up_as, &c, seconds);
}

/* 1 if some element of m is the string s. */
int msg_has_str(const aemp_msg_t *m, const char *s)
{
    for (size_t i = 0; i < aemp_msg_len(m); i++) {
        const char *e;
        if (aemp_val_str(aemp_msg_at(m, i), &e, NULL) == 0 && !strcmp(e, s))
            return 1;
    }
    return 0;
}

/* Checks that m is ["transport_error", id, text] (any id if id is NULL);
 * returns the text. */
const char *transport_error(const aemp_msg_t *m, const char *id)
{
    const char *kind = NULL, *mid = NULL, *text = NULL;
    assert_int_equal(aemp_msg_unpack(m, "sss", &kind, &mid, &text), 0);
    assert_string_equal(kind, "transport_error");
    if (id)
        assert_string_equal(mid, id);
    return text;
}

/* How many nodes n knows (aemp_known_nodes). */
size_t known_count(aemp_node_t *n)
{
    aemp_msg_t *m;
    assert_int_equal(aemp_known_nodes(n, &m), 0);
    size_t known = aemp_msg_len(m);
    aemp_msg_unref(m);
    return known;
}

/* ---- numbered streams ---------------------------------------------------- */

int seq_rcv(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    seqrx_t *r = user;
    const char *tag;
    int64_t i;
    if (r->fired)
        r->after_fire++;
    if (aemp_msg_unpack(m, "sI", &tag, &i) < 0 || strcmp(tag, "seq")) {
        r->marker++;
        return 0;
    }
    if (i != r->next && !r->bad) {
        r->bad = 1;
        r->bad_got = i;
        r->bad_want = r->next;
    }
    r->next = i + 1;
    r->count++;
    if (r->cut_at && r->count == r->cut_at && !r->cut_done) {
        /* from inside the delivery: more of this stream is in the node's
         * queue, its read buffer, the kernel and the sender's buffers */
        assert_int_equal(shutdown(r->cut_fd, SHUT_RDWR), 0);
        r->cut_done = 1;
    }
    return 0;
}

void seq_fired(aemp_node_t *n, const char *port, const aemp_msg_t *reason,
               void *user)
{
    seqrx_t *r = user;
    r->fired++;
    aemp_msg_unref(r->reason);
    r->reason = kt_msg_copy(reason);
}

void seqrx_check(const seqrx_t *r, const char *what)
{
    if (r->bad)
        fail_msg("%s: hole or reordering: got %lld, expected %lld", what,
                 (long long)r->bad_got, (long long)r->bad_want);
}

void pump_fill(pump_t *p)
{
    while (!p->stop && !p->rx->cut_done && !p->err && p->sent < p->total &&
           p->sent - p->rx->count < p->window)
        if (aemp_snd(p->from, p->to, "sI", "seq", (int64_t)p->sent++) < 0)
            p->err = 1;
}

int pump_done(void *arg)
{
    pump_t *p = arg;
    pump_fill(p);
    return p->rx->count >= p->total || p->rx->bad || p->rx->fired ||
           p->rx->cut_done || p->err;
}

/* ---- raw peers: plain sockets polled by the loop
 * ----------------------------- */

void raw_drain(raw_t *r)
{
    if (!r->reader || r->off == r->len)
        return;
    if (aemp_reader_feed(r->reader, r->in + r->off, r->len - r->off) < 0)
        r->reader_rc = -1;
    r->off = r->len;
    aemp_msg_t *m;
    int rc;
    while ((rc = aemp_reader_next(r->reader, &m)) == 1) {
        if (r->npkts == r->cappkts) {
            r->cappkts = r->cappkts ? 2 * r->cappkts : 16;
            r->pkts = realloc(r->pkts, r->cappkts * sizeof *r->pkts);
            assert_non_null(r->pkts);
        }
        r->pkts[r->npkts++] = m;
    }
    if (rc < 0)
        r->reader_rc = rc;
}

void raw_on_poll(uv_poll_t *h, int status, int events)
{
    raw_t *r = h->data;
    for (;;) {
        if (r->cap - r->len < 65536) {
            r->cap = r->cap ? 2 * r->cap : 131072;
            r->in = realloc(r->in, r->cap);
            assert_non_null(r->in);
        }
        ssize_t got = recv(r->fd, r->in + r->len, r->cap - r->len, 0);
        if (got > 0) {
            r->len += (size_t)got;
            continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (got < 0 && errno == EINTR)
            continue;
        r->eof = true; /* 0 or an error such as ECONNRESET */
        r->eof_at = kt_now_ms();
        uv_poll_stop(h);
        r->polling = false;
        break;
    }
    raw_drain(r);
}

raw_t *raw_connect(uv_loop_t *loop, const char *ref)
{
    raw_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->loop = loop;
    const char *colon = strrchr(ref, ':');
    assert_non_null(colon);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    /* the kernel completes a loopback connect before the node accepts */
    assert_int_equal(connect(r->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK),
                     0);
    assert_int_equal(uv_poll_init(loop, &r->poll, r->fd), 0);
    r->poll.data = r;
    assert_int_equal(uv_poll_start(&r->poll, UV_READABLE, raw_on_poll), 0);
    r->polling = true;
    return r;
}

/* Writes everything (small amounts: the socket buffer takes them). */
void raw_write(raw_t *r, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(r->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            nt_run_for(r->loop, 0.01);
            continue;
        }
        if (n < 0)
            return; /* the node hung up: the caller checks for EOF */
        p += n;
        len -= (size_t)n;
    }
}

void raw_stop_reading(raw_t *r)
{
    if (r->polling)
        uv_poll_stop(&r->poll);
    r->polling = false;
}

void raw_closed(uv_handle_t *h)
{
    raw_t *r = h->data;
    close(r->fd);
    for (size_t i = 0; i < r->npkts; i++)
        aemp_msg_unref(r->pkts[i]);
    free(r->pkts);
    aemp_reader_free(r->reader);
    aemp__hs_free(&r->hs);
    free(r->in);
    free(r);
}

void raw_close(raw_t *r)
{
    raw_stop_reading(r);
    uv_close((uv_handle_t *)&r->poll, raw_closed);
}

/* Complete lines received and not consumed. */
size_t raw_lines(const raw_t *r)
{
    size_t k = 0;
    for (size_t i = r->off; i < r->len; i++)
        k += r->in[i] == '\n';
    return k;
}

/* Pops the next line (without LF) into buf; its length. */
size_t raw_pop_line(raw_t *r, char *buf, size_t size)
{
    const char *lf = memchr(r->in + r->off, '\n', r->len - r->off);
    assert_non_null(lf);
    size_t n = (size_t)(lf - (r->in + r->off));
    assert_true(n < size);
    memcpy(buf, r->in + r->off, n);
    buf[n] = 0;
    r->off += n + 1;
    return n;
}

int raw_has_lines(void *arg)
{
    raw_cond_t *c = arg;
    return raw_lines(c->r) >= c->want || c->r->eof;
}

int raw_has_pkts(void *arg)
{
    raw_cond_t *c = arg;
    return c->r->npkts >= c->want || c->r->eof;
}

int raw_at_eof(void *arg)
{
    return ((raw_t *)arg)->eof;
}

int await_raw_lines(raw_t *r, size_t want)
{
    raw_cond_t c = {r, want};
    nt_run_until(r->loop, raw_has_lines, &c, 10);
    return raw_lines(r) >= want;
}

int await_raw_pkts(raw_t *r, size_t want, double seconds)
{
    raw_cond_t c = {r, want};
    nt_run_until(r->loop, raw_has_pkts, &c, seconds);
    return r->npkts >= want;
}

int await_raw_eof(raw_t *r, double seconds)
{
    return nt_run_until(r->loop, raw_at_eof, r, seconds);
}

static int raw_counter;

/* Connects to ref and completes a real handshake as node "anon/raw<k>",
 * announcing timeout (0: none) and accepting `framings`. */
raw_t *raw_handshaken(uv_loop_t *loop, const char *ref, const char *framings,
                      unsigned timeout)
{
    raw_t *r = raw_connect(loop, ref);
    snprintf(r->node_id, sizeof r->node_id, "anon/raw%d", ++raw_counter);
    r->conf = (aemp__hs_conf_t){r->node_id,      SECRET,   "hmac_sha3_512",
                                "hmac_sha3_512", framings, timeout, false};
    char *out, line[AEMP__MAX_LINE + 1];
    size_t outlen;
    assert_int_equal(aemp__hs_start(&r->hs, &r->conf, NULL, &out, &outlen), 0);
    raw_write(r, out, outlen);
    aemp_free(out);
    assert_true(await_raw_lines(r, 2));
    size_t n = raw_pop_line(r, line, sizeof line);
    assert_int_equal(aemp__hs_line(&r->hs, line, n, &out, &outlen), 0);
    n = raw_pop_line(r, line, sizeof line);
    assert_int_equal(aemp__hs_line(&r->hs, line, n, &out, &outlen), 1);
    raw_write(r, out, outlen);
    aemp_free(out);
    assert_true(await_raw_lines(r, 1));
    n = raw_pop_line(r, line, sizeof line);
    int rc = aemp__hs_line(&r->hs, line, n, &out, &outlen);
    if (rc != 2)
        fail_msg("raw handshake: %d %s", rc, r->hs.error);
    assert_int_equal(aemp_reader_new(&r->reader, r->hs.recv_framing, NULL), 0);
    raw_drain(r); /* what followed the auth line is data */
    return r;
}

/* Connects to ref and sends a greeting as node `id` accepting `framings`,
 * and a nonce: the start of a handshake. */
raw_t *raw_greet(uv_loop_t *loop, const char *ref, const char *id,
                 const char *framings)
{
    raw_t *r = raw_connect(loop, ref);
    char hello[256];
    int n = snprintf(hello, sizeof hello,
                     "aemp;1;%s;hmac_sha3_512;%s\nbm9uY2U=\n", id, framings);
    raw_write(r, hello, (size_t)n);
    return r;
}

/* Sends one packet built from picture (the port name first). */
void raw_send(raw_t *r, const char *picture, ...)
{
    aemp_msg_t *m;
    va_list ap;
    va_start(ap, picture);
    assert_int_equal(aemp__msg_vnew(&m, picture, ap), 0);
    va_end(ap);
    char *buf;
    size_t len;
    assert_int_equal(aemp_msg_encode(m, r->hs.send_framing, &buf, &len), 0);
    raw_write(r, buf, len);
    aemp_free(buf);
    aemp_msg_unref(m);
}

void run_isolated(void **state)
{
    const isolated_t *t = *state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(t->secs);
        const struct CMUnitTest one[] = {{t->name, t->fn, NULL, NULL, NULL}};
        exit(_cmocka_run_group_tests(t->name, one, 1, NULL, NULL));
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st))
        fail_msg("%s: killed by signal %d%s", t->name, WTERMSIG(st),
                 WTERMSIG(st) == SIGALRM ? " (hung past its deadline)" : "");
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) != 0)
        fail_msg("%s failed in its child process", t->name);
}
