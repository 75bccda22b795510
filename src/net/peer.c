/* The node table: one record per node we know, with its queue while no
 * link exists, background connecting, the remote ports we monitor there,
 * and the teardown that keeps the no-holes promise when a link is lost. */
#include "net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_peer_timer(uv_timer_t *h);
static void peer_node_up(aemp__peer_t *p);

static bool id_is_address(const char *id, size_t len);

/* Meant as a noderef (aemp_resolve: "host:port", "[v6]:port", "port", "host" —
 * but a bare word is a Perl node ID): it has ':' or ',' or '[', or is
 * all digits (a port of this host), or a numeric IP (port 4040). */
static bool id_is_noderef(const char *id, size_t len)
{
    if ((len >= 5 && !memcmp(id, "anon/", 5)) ||
        (len >= 6 && !memcmp(id, "slave/", 6)))
        return false; /* node IDs ("slave/<id>@<master noderef>") */
    if (!len || memchr(id, ':', len) || memchr(id, ',', len) || id[0] == '[')
        return len > 0;
    size_t digits = 0, dots = 0;
    for (size_t i = 0; i < len; i++) {
        digits += id[i] >= '0' && id[i] <= '9';
        dots += id[i] == '.';
    }
    return digits + dots == len;
}

/* One component of a noderef: "", "port", "host", "host:port",
 * "[v6]:port", with a port in 1..65535 and a host of letters, digits,
 * '.', '-' and '_'. */
static bool component_ok(const char *c, size_t len)
{
    const char *colon = NULL;
    if (len && c[0] == '[') {
        const char *close = memchr(c, ']', len);
        if (!close || close == c + 1 || close + 1 == c + len ||
            close[1] != ':')
            return false;
        colon = close + 1;
    } else {
        for (size_t i = 0; i < len; i++)
            if (c[i] == ':') {
                if (colon)
                    return false;
                colon = c + i;
            } else if (!((c[i] >= 'a' && c[i] <= 'z') ||
                         (c[i] >= 'A' && c[i] <= 'Z') ||
                         (c[i] >= '0' && c[i] <= '9') || c[i] == '.' ||
                         c[i] == '-' || c[i] == '_')) {
                return false;
            }
        if (colon == c)
            return false; /* ":4041": no host */
    }
    const char *port = colon ? colon + 1 : c;
    size_t plen = (size_t)(c + len - port);
    bool digits = plen > 0 && plen <= 5;
    for (size_t i = 0; digits && i < plen; i++)
        digits = port[i] >= '0' && port[i] <= '9';
    if (!colon && !digits)
        return true; /* a host name */
    return digits && atol(port) >= 1 && atol(port) <= 65535;
}

int aemp__id_check(const char *id, size_t len)
{
    if (!id_is_noderef(id, len) || id_is_address(id, len))
        return 0;
    const char *p = id, *end = id + len;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t one = comma ? (size_t)(comma - p) : (size_t)(end - p);
        if (!component_ok(p, one))
            return AEMP_EINVAL;
        p += one + 1;
    }
    return 0;
}

/* Addresses and noderefs (resolved first) are dialled; anon/ and slave/
 * nodes, and Perl nodes whose free-text ID is no address, come to us (or
 * are dialled at the addresses that reached them, `addrs`). */
static bool id_connectable(const char *id, size_t len)
{
    return id_is_address(id, len) || id_is_noderef(id, len);
}

bool aemp__id_is_address(const char *id, size_t len)
{
    return id_is_address(id, len);
}

static bool id_is_address(const char *id, size_t len)
{
    struct sockaddr_storage ss;
    const char *p = id, *end = id + len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t one = comma ? (size_t)(comma - p) : (size_t)(end - p);
        if (aemp__endpoint_parse(p, one, &ss) < 0)
            return false;
        p += one + 1;
    }
    return len > 0;
}

aemp__peer_t *aemp__peer_find(aemp_node_t *n, const char *node_id)
{
    aemp__peer_t *p = n && n->net && node_id
                          ? aemp__peer_get(n, node_id, strlen(node_id), false)
                          : NULL;
    return p && p->alias ? p->alias : p;
}

aemp__peer_t *aemp__peer_get(aemp_node_t *n, const char *id, size_t len,
                             bool create)
{
    aemp__net_t *net = n->net;
    aemp__peer_t *p = aemp__strmap_get(&net->peers, id, len);
    if (p || !create)
        return p;
    if ((p = aemp__slave_early(n, id, len)))
        return p;
    if (!(p = aemp__calloc(1, sizeof *p)) || !(p->id = aemp__strndup(id, len)))
        goto fail;
    p->idlen = len;
    p->node = n;
    p->qtail = &p->qhead;
    p->connectable = id_connectable(id, len);
    p->needs_resolve = p->connectable && !id_is_address(id, len);
    if (aemp__strmap_put(&net->peers, p->id, len, p) < 0)
        goto fail;
    uv_timer_init(n->loop, &p->timer);
    p->timer.data = p;
    p->via = aemp__route_via(n, p);
    return p;
fail:
    if (p)
        aemp__free(p->id);
    aemp__free(p);
    return NULL;
}

static double jitter(double seconds)
{
    /* +-25%, so that nodes that lost each other do not redial in step:
     * from the CSPRNG, as rand() is the program's and unseeded, the same
     * sequence in every process */
    uint32_t r = 0;
    aemp__random(&r, sizeof r);
    return seconds * (0.75 + 0.5 * (double)(r % 1000) / 1000.0);
}

static bool peer_needed(const aemp__peer_t *p)
{
    return p->seed || p->qhead || p->stubs.n || p->flushers;
}

static void timer_at(aemp__peer_t *p, uint64_t when)
{
    uint64_t now = uv_now(p->node->loop);
    uv_timer_start(&p->timer, on_peer_timer, when > now ? when - now : 0, 0);
}

static uint64_t deadline(const aemp__peer_t *p)
{
    return p->wait_since +
           (uint64_t)(p->node->net->conf.monitor_timeout * 1000.0);
}

static void on_peer_resolved(aemp_node_t *n, int status, const char *resolved,
                             const char *error, void *user)
{
    aemp__peer_t *p = user;
    p->resolving = false;
    if (status < 0) {
        char why[200];
        if (error && *error) /* the resolver's own words name the host */
            snprintf(why, sizeof why, "%s", error);
        else
            snprintf(why, sizeof why, "cannot resolve %.80s: %s", p->id,
                     aemp_strerror(status));
        aemp__peer_dial_failed(p, why, true);
        return;
    }
    aemp__free(p->addrs);
    if (!(p->addrs = aemp__strdup(resolved))) {
        aemp__peer_dial_failed(p, "out of memory", true);
        return;
    }
    aemp__log(n, AEMP_LOG_INFO, "%s resolves to %s", p->id, resolved);
    p->next_dial = p->next_ep = 0;
    if (peer_needed(p))
        aemp__peer_need(p);
}

/* An unresolved noderef is resolved before its first dial; meanwhile no
 * attempt is due (the answer calls aemp__peer_need). */
static void resolve(aemp__peer_t *p)
{
    aemp_node_t *n = p->node;
    p->next_dial = deadline(p) + 1;
    if (p->resolving)
        return;
    char *id = aemp__strndup(p->id, p->idlen);
    int rc = id ? aemp_resolve(n, id, on_peer_resolved, p) : AEMP_ENOMEM;
    aemp__free(id);
    if (rc == 0)
        p->resolving = true;
    else
        aemp__peer_dial_failed(p, aemp_strerror(rc), true);
}

static void dial(aemp__peer_t *p)
{
    if (p->needs_resolve && !p->addrs) {
        resolve(p);
        return;
    }
    /* endpoints are tried in turn, one per attempt */
    const char *eps = p->addrs ? p->addrs : p->id;
    size_t count = 1;
    for (size_t i = 0; eps[i]; i++)
        count += eps[i] == ',';
    size_t k = p->next_ep++ % count;
    const char *ep = eps;
    while (k--)
        ep = strchr(ep, ',') + 1;
    const char *end = strchr(ep, ',');
    char *one = aemp__strndup(ep, end ? (size_t)(end - ep) : strlen(ep));
    int rc = one ? aemp__link_dial(p->node, p, one) : AEMP_ENOMEM;
    aemp__free(one);
    if (rc < 0)
        aemp__peer_dial_failed(p, aemp_strerror(rc), rc == AEMP_EINVAL);
}

static void peer_fail(aemp__peer_t *p, const char *why, bool node_down);

void aemp__peer_need(aemp__peer_t *p)
{
    if (p->link || p->dialing || p->via || p->alias || p->node->freeing)
        return;
    uint64_t now = uv_now(p->node->loop);
    if (!p->wait_since)
        p->wait_since = now ? now : 1;
    aemp__net_t *net = p->node->net;
    /* the global service's lookup, at most once per connect interval (a
     * node nobody knows is asked for again after the back-off, as a dial
     * would be) */
    bool finding = !p->connectable && !p->handshaking && net->find_addr &&
                   (now < p->next_dial || net->find_addr(p->node, p));
    if (!finding && !p->connectable && !p->handshaking && !net->public_) {
        /* no address, and nobody can connect to a node that does not
         * listen: waiting cannot help */
        char why[200];
        snprintf(why, sizeof why,
                 "no address is known for %.80s (it is not an ip:port list) "
                 "and this node does not listen",
                 p->id);
        peer_fail(p, why, false);
        p->wait_since = 0;
        return;
    }
    if (p->connectable && !p->handshaking && now >= p->next_dial) {
        dial(p);
        if (p->dialing || p->link)
            return;
    }
    /* while the peer's own connection is in its handshake, only the
     * deadline: its failure calls us again (a dial time now would spin) */
    uint64_t when = deadline(p);
    if (p->connectable && !p->handshaking && p->next_dial < when)
        when = p->next_dial;
    if (finding && p->next_dial > now && p->next_dial < when)
        when = p->next_dial;
    timer_at(p, when);
}

/* ---- failure ----------------------------------------------------------- */

static aemp_msg_t *transport_error(aemp__peer_t *p, const char *why)
{
    aemp_msg_t *m = NULL;
    aemp_msg_new(&m, "sSs", "transport_error", p->id, p->idlen,
                 why ? why : "link lost");
    return m;
}

static void drop_queue(aemp__peer_t *p)
{
    aemp__qpkt_t *q;
    while ((q = p->qhead)) {
        p->qhead = q->next;
        aemp_msg_unref(q->msg);
        aemp__free(q);
    }
    p->qtail = &p->qhead;
    p->qbytes = 0;
}

static void call_flushers(aemp_node_t *n, aemp__flushw_t *w, int status)
{
    while (w) {
        aemp__flushw_t *next = w->next;
        w->fn(n, status, w->user);
        aemp__free(w);
        w = next;
    }
}

/* The no-holes rule (PROTOCOL.md §8).  The link (or the attempt to make
 * one) failed, and what was queued or in flight is lost.  The monitors of
 * the node's ports cannot fire here — this may be deep inside a user's
 * aemp_snd — so the loss is reported by one step of the node's queue, and
 * until that step the node is unreachable: whatever is sent to it is
 * dropped (the monitors that fire cover it), a monitor set up meanwhile
 * fires with the others, and a link that comes up meanwhile waits.  So no
 * message sent after the first lost one is delivered before every monitor
 * has fired, whoever sends it: port callbacks, timers, the program's own
 * libuv handles. */
static void peer_fail(aemp__peer_t *p, const char *why, bool node_down)
{
    drop_queue(p);
    aemp__remote_forget_watchers(p);
    if (p->in_loss)
        return; /* the pending step reports this failure too; node_down is
                   false: no node-up was told while in loss */
    p->in_loss = true;
    aemp__item_t *it = &p->loss;
    memset(it, 0, sizeof *it);
    it->kind = AEMP__NET_ITEM;
    it->counter = node_down;
    it->msg = transport_error(p, why); /* NULL (no memory) still fires */
    it->u.ptr = p;
    aemp__enqueue(p->node, it);
}

static void peer_link_ready(aemp__peer_t *p);

void aemp__peer_loss_step(aemp_node_t *n, aemp__item_t *it)
{
    aemp__peer_t *p = it->u.ptr;
    aemp_msg_t *reason = it->msg;
    bool node_down = it->counter;
    it->msg = NULL;
    /* From here on, what the callbacks below send waits for the next link:
     * none can come up before this step ends. */
    p->in_loss = false;
    aemp__flushw_t *flushers = p->flushers;
    p->flushers = NULL;
    call_flushers(n, flushers, AEMP_ENOROUTE);
    aemp__remote_lost(p, reason);
    if (node_down)
        aemp__nodes_notify(n, p->id, false, reason);
    aemp_msg_unref(reason);
    if (p->link && !p->up)
        peer_link_ready(p); /* it came up while the loss was reported */
    else if (peer_needed(p))
        aemp__peer_need(p);
    else if (!p->connectable)
        aemp__peer_forget(p);
}

void aemp__peer_lost(aemp__peer_t *p, const char *why)
{
    aemp_node_t *n = p->node;
    aemp__log(n, AEMP_LOG_INFO, "link to %s lost: %s", p->id, why);
    bool was_up = p->up;
    p->link = NULL;
    p->up = false;
    peer_fail(p, why, was_up);
    p->wait_since = 0;
    p->next_dial = uv_now(n->loop) +
                   (uint64_t)(jitter(n->net->conf.connect_interval) * 1000.0);
    if (p->seed)
        aemp__peer_need(p);
    else if (!p->connectable)
        /* nodes that only come to us (every `aemp snd` is one) would pile
         * up */
        aemp__peer_forget(p);
}

void aemp__peer_forget(aemp__peer_t *p)
{
    /* at the end of this loop iteration, when no caller up the stack can
     * still hold the pointer, and only if nothing needs it by then */
    if (p->free_pending)
        return;
    p->free_pending = true;
    p->node->net->free_pending++;
    aemp__net_wake(p->node);
}

void aemp__peers_sweep(aemp_node_t *n)
{
    aemp__net_t *net = n->net;
    if (!net->free_pending)
        return;
    net->free_pending = 0;
    size_t i = 0;
    aemp__peer_t *p;
    while ((p = aemp__strmap_next(&net->peers, &i))) {
        if (!p->free_pending)
            continue;
        p->free_pending = false;
        if (p->link || p->dialing || p->handshaking || peer_needed(p) ||
            p->watchers.n || p->in_loss || p->aliased || p->alias ||
            p->resolving)
            continue;
        aemp__strmap_del(&net->peers, p->id, p->idlen);
        aemp__peer_free(p);
        i = 0; /* the deletion may have moved entries */
    }
}

void aemp__peer_alias(aemp__peer_t *d, aemp__peer_t *p)
{
    aemp_node_t *n = d->node;
    aemp__log(n, AEMP_LOG_INFO, "%s is node %s", d->id, p->id);
    d->alias = p;
    p->aliased++;
    if (!p->addrs && !p->connectable &&
        (p->addrs = aemp__strdup(d->id))) /* no memory: not redialled */
        p->connectable = true;
    if (d->seed) {
        p->seed = true;
        d->seed = false;
    }
    if (d->gseed) { /* the global service's candidate too */
        p->gseed = true;
        d->gseed = false;
    }
    aemp__remote_move_stubs(d, p);
    /* the queue in its order, then the flushes that wait for it */
    aemp__qpkt_t *q = d->qhead;
    d->qhead = NULL;
    d->qtail = &d->qhead;
    d->qbytes = 0;
    while (q) {
        aemp__qpkt_t *next = q->next;
        aemp__peer_send(p, q->name, q->namelen, q->msg);
        aemp_msg_unref(q->msg);
        aemp__free(q);
        q = next;
    }
    aemp__flushw_t **tail = &p->flushers, *w;
    while (*tail)
        tail = &(*tail)->next;
    *tail = d->flushers;
    d->flushers = NULL;
    for (w = *tail; w; w = w->next)
        w->upto = p->up ? p->link->appended : UINT64_MAX;
    if (p->up && *tail)
        aemp__peer_written(p);
    uv_timer_stop(&d->timer);
    d->wait_since = 0;
    /* d is kept as long as p (the sweep keeps both): the address goes on
     * naming p, without a new connection each time it is used */
}

/* How many endpoints p is dialled at. */
static size_t endpoint_count(const aemp__peer_t *p)
{
    const char *eps = p->addrs ? p->addrs : p->id;
    size_t count = 1;
    for (size_t i = 0; eps[i]; i++)
        count += eps[i] == ',';
    return count;
}

void aemp__peer_dial_failed(aemp__peer_t *p, const char *why, bool definitive)
{
    aemp_node_t *n = p->node;
    aemp__log(n, AEMP_LOG_INFO, "cannot connect to %s: %s", p->id, why);
    snprintf(p->last_error, sizeof p->last_error, "%s", why);
    uint64_t now = uv_now(n->loop);
    p->next_dial =
        now + (uint64_t)(jitter(n->net->conf.connect_interval) * 1000.0);
    /* A refused connection is definitive once every endpoint refused;
     * a refusal by the peer itself at once.  Then what waits fails now,
     * with that reason, and only seeds (and what is sent or monitored
     * from now on) make us try again. */
    bool refused = !strcmp(why, uv_strerror(UV_ECONNREFUSED));
    p->refusals = refused ? p->refusals + 1 : 0;
    if (refused)
        definitive = p->refusals >= endpoint_count(p);
    if (refused && !definitive)
        p->next_dial = now; /* the next endpoint at once */
    if (p->wait_since && (definitive || now >= deadline(p))) {
        /* worded as on_peer_timer does when the deadline passes between
         * attempts */
        char text[sizeof p->last_error + 32];
        snprintf(text, sizeof text, "unable to connect: %s", why);
        peer_fail(p, text, false);
        p->wait_since = 0;
    }
    if (peer_needed(p))
        aemp__peer_need(p);
}

static void on_peer_timer(uv_timer_t *h)
{
    aemp__peer_t *p = h->data;
    if (p->link)
        return;
    uint64_t now = uv_now(p->node->loop);
    if (p->wait_since && now >= deadline(p) && !p->dialing) {
        char why[200];
        if (!p->connectable)
            snprintf(why, sizeof why,
                     "no link came up in time (no address is known for "
                     "%.80s: it is not an ip:port list, and it did not "
                     "connect to us)",
                     p->id);
        else if (p->last_error[0])
            snprintf(why, sizeof why, "unable to connect: %s", p->last_error);
        else
            snprintf(why, sizeof why, "unable to connect");
        peer_fail(p, why, false);
        p->wait_since = 0;
    }
    if (peer_needed(p))
        aemp__peer_need(p);
    else
        p->wait_since = 0;
}

/* ---- sending ------------------------------------------------------------- */

/* The memory a queued packet holds: its record and the message's block
 * (counted whole even when shared, so that the bound holds). */
static size_t queued_size(const aemp_msg_t *m, size_t namelen)
{
    return sizeof(aemp__qpkt_t) + namelen + 1 + aemp__msg_footprint(m);
}

static int queue_packet(aemp__peer_t *p, const char *name, size_t namelen,
                        const aemp_msg_t *m)
{
    size_t size = queued_size(m, namelen);
    if (p->qbytes + size > p->node->net->conf.max_backlog) {
        peer_fail(p, "send queue overflow", false);
        p->wait_since = 0;
        return 0; /* lost with the queue; the monitors tell */
    }
    aemp__qpkt_t *q = aemp__malloc(sizeof *q + namelen + 1);
    if (!q)
        return AEMP_ENOMEM;
    q->next = NULL;
    q->msg = aemp__msg_ref(m);
    q->namelen = namelen;
    memcpy(q->name, name, namelen);
    q->name[namelen] = 0;
    *p->qtail = q;
    p->qtail = &q->next;
    p->qbytes += size;
    aemp__peer_need(p);
    return 0;
}

/* m is the node-port request `req`. */
static bool is_request(const aemp_msg_t *m, const char *req)
{
    const char *s;
    size_t len;
    return aemp_val_str(aemp_msg_at(m, 0), &s, &len) == 0 &&
           len == strlen(req) && !memcmp(s, req, len);
}

/* Perl 2.x spells remote kill kil1 (its kil is a function that refuses
 * node ports): m, a ["kil", ...] request, is written so. */
static int write_kil1(aemp__link_t *l, const aemp_msg_t *m)
{
    aemp_msg_t *head = NULL, *args = NULL, *req = NULL;
    int rc = aemp_msg_new(&head, "s", "kil1");
    if (rc == 0 && (rc = aemp__msg_slice(&args, m, 1)) == 0 &&
        (rc = aemp__msg_concat(&req, head, args)) == 0)
        rc = aemp__link_write(l, "", 0, req);
    aemp_msg_unref(head);
    aemp_msg_unref(args);
    aemp_msg_unref(req);
    return rc;
}

int aemp__peer_send(aemp__peer_t *p, const char *name, size_t namelen,
                    const aemp_msg_t *m)
{
    if (p->in_loss)
        return 0; /* lost with the link: the loss step's monitors tell */
    if (!p->link && p->via)
        return aemp__relay(p, name, namelen, m);
    if (!p->up) /* no link yet, or one waiting for the loss step */
        return queue_packet(p, name, namelen, m);
    /* requests are ours until here: the dialect is known once linked */
    int rc = !namelen && p->dialect == AEMP__DIALECT_PERL2 &&
                     is_request(m, "kil")
                 ? write_kil1(p->link, m)
                 : aemp__link_write(p->link, name, namelen, m);
    if (rc == AEMP_ELIMIT) {
        /* the peer does not keep up: a transport error, not a hole */
        aemp__link_close(p->link, "send queue overflow");
        return 0;
    }
    return rc;
}

int aemp__peer_request(aemp__peer_t *p, const char *pic, ...)
{
    aemp_msg_t *m;
    va_list ap;
    va_start(ap, pic);
    int rc = aemp__msg_vnew(&m, pic, ap);
    va_end(ap);
    if (rc == 0) {
        rc = aemp__peer_send(p, "", 0, m);
        aemp_msg_unref(m);
    }
    return rc;
}

void aemp__peer_link_up(aemp__peer_t *p, aemp__link_t *l)
{
    p->link = l;
    p->wait_since = 0;
    uv_timer_stop(&p->timer);
    if (p->in_loss)
        aemp__link_hold(l, AEMP__HOLD_LOSS); /* ready after the loss step */
    else
        peer_link_ready(p);
}

/* The link is the peer's: users hear of it, the queue goes onto it. */
static void peer_link_ready(aemp__peer_t *p)
{
    aemp__link_t *l = p->link;
    p->up = true;
    aemp__link_release(l, AEMP__HOLD_LOSS);
    peer_node_up(p);
    aemp__net_link_ready(p->node, p);
    aemp__qpkt_t *q;
    while ((q = p->qhead) && p->up) {
        p->qhead = q->next;
        aemp__peer_send(p, q->name, q->namelen, q->msg);
        aemp_msg_unref(q->msg);
        aemp__free(q);
    }
    if (!p->qhead)
        p->qtail = &p->qhead;
    p->qbytes = 0;
    if (!p->up)
        return;
    for (aemp__flushw_t *w = p->flushers; w; w = w->next)
        if (w->upto == UINT64_MAX)
            w->upto = l->appended;
    if (p->flushers)
        aemp__peer_written(p);
}

/* ---- flushing ------------------------------------------------------------ */

void aemp__peer_written(aemp__peer_t *p)
{
    if (p->flushers) {
        p->node->net->flush_checks++;
        aemp__net_wake(p->node);
    }
}

void aemp__peers_check_flushers(aemp_node_t *n)
{
    if (!n->net->flush_checks)
        return;
    n->net->flush_checks = 0;
    size_t i = 0;
    aemp__peer_t *p;
    while ((p = aemp__strmap_next(&n->net->peers, &i))) {
        if (!p->flushers || !p->up)
            continue;
        /* every byte put into the link's output before the target was
         * taken has been handed to the kernel */
        uint64_t written = p->link->appended - aemp__link_unwritten(p->link);
        aemp__flushw_t **wp = &p->flushers, *w, *done = NULL;
        while ((w = *wp)) {
            if (w->upto > written) {
                wp = &w->next;
                continue;
            }
            *wp = w->next;
            w->next = done;
            done = w;
        }
        /* callbacks last: they may send, flush, or drop the link */
        call_flushers(n, done, 0);
    }
}

int aemp_flush(aemp_node_t *n, const char *node_id, aemp_flush_fn fn,
               void *user)
{
    aemp__peer_t *p;
    const char *name;
    if (!n || !node_id || !fn || strchr(node_id, '#'))
        return AEMP_EINVAL;
    int rc = aemp__net_route(n, node_id, &p, &name);
    if (rc < 0)
        return rc;
    aemp__flushw_t *w = aemp__malloc(sizeof *w);
    if (!w)
        return AEMP_ENOMEM;
    /* with a ready link, everything sent so far is in its output; without
     * one the target is fixed when the queue moves onto the link */
    w->upto = p->up ? p->link->appended : UINT64_MAX;
    w->fn = fn;
    w->user = user;
    w->next = p->flushers;
    p->flushers = w;
    n->net->flush_checks++;
    aemp__net_wake(n);
    aemp__peer_need(p);
    return 0;
}

size_t aemp_backlog(aemp_node_t *n, const char *node_id)
{
    aemp__peer_t *p = aemp__peer_find(n, node_id);
    if (!p)
        return 0;
    return p->qbytes + (p->link ? aemp__link_unwritten(p->link) : 0);
}

/* ---- remote monitors ---------------------------------------------------------- */

aemp_val_t *aemp__peer_ids(aemp_node_t *n, aemp_val_t *arr, bool up_only)
{
    size_t i = 0;
    aemp__peer_t *p;
    while (arr && (p = aemp__strmap_next(&n->net->peers, &i)))
        if ((!up_only || p->up) && !p->alias) /* an alias is no node */
            arr = aemp_arr_push(arr, aemp_strn(p->id, p->idlen));
    return arr;
}

static void peer_node_up(aemp__peer_t *p)
{
    aemp_msg_t *reason = NULL;
    if (aemp_msg_new(&reason, "") == 0)
        aemp__queue_node_event(p->node, p->id, true, reason);
}

/* ---- teardown (node free): nothing fires ---------------------------------- */

static void on_peer_closed(uv_handle_t *h)
{
    aemp__peer_t *p = h->data;
    aemp_node_t *n = p->node;
    aemp__free(p->addrs);
    aemp__free(p->id);
    aemp__free(p);
    aemp__node_handle_closed(n);
}

void aemp__peer_free(aemp__peer_t *p)
{
    aemp_node_t *n = p->node;
    if (p->in_loss) { /* node free: the step never runs */
        aemp__dequeue_item(n, &p->loss);
        aemp_msg_unref(p->loss.msg);
        p->in_loss = false;
    }
    drop_queue(p);
    aemp__remote_free(p);
    aemp__flushw_t *w;
    while ((w = p->flushers)) {
        p->flushers = w->next;
        aemp__free(w);
    }
    aemp__node_close(n, (uv_handle_t *)&p->timer, on_peer_closed);
}
