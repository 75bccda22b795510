/* Network set-up: configuration, listening, routing port IDs to peers,
 * and teardown with the node. */
#include "net.h"

#include <openssl/crypto.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_flush_prep(uv_prepare_t *h);
static const aemp__net_ops_t net_ops;

static int copy_str(char **dst, const char *src, const char *def)
{
    *dst = aemp__strdup(src && *src ? src : def);
    return *dst ? 0 : AEMP_ENOMEM;
}

/* A copy of src, or NULL for NULL. */
static int copy_opt(char **dst, const char *src)
{
    *dst = src ? aemp__strdup(src) : NULL;
    return src && !*dst ? AEMP_ENOMEM : 0;
}

static void net_strings_free(aemp__net_t *net)
{
    aemp__free(net->secret);
    aemp__free(net->framings);
    aemp__free(net->auth_accept);
    aemp__free(net->auth_offer);
    aemp__free(net->cert);
    aemp__free(net->ca);
    aemp__tls_conf_free(net->tls);
}

/* The most a cert or ca file may hold: a key and a chain of certificates
 * are a few KiB; this only keeps a wrong path from filling memory. */
#define MAX_PEM (1u << 20)

/* A cert / ca setting: PEM text as it is, or the path of a file that
 * holds it, read now.  *out is malloc'd (wipe it: it may hold a key). */
static int pem_text(const char *arg, const char *what, char **out, char *why,
                    size_t whylen)
{
    if (strstr(arg, "-----BEGIN"))
        return (*out = aemp__strdup(arg)) ? 0 : AEMP_ENOMEM;
    FILE *f = fopen(arg, "rb");
    char *buf = f ? aemp__malloc(MAX_PEM + 1) : NULL;
    size_t n = buf ? fread(buf, 1, MAX_PEM + 1, f) : 0;
    int err = f && !ferror(f) ? 0 : errno;
    if (f)
        fclose(f);
    if (!f || err || n > MAX_PEM) {
        snprintf(why, whylen, "%s: cannot read %.200s: %s", what, arg,
                 n > MAX_PEM ? "larger than 1 MiB" : strerror(err ? err : EIO));
        aemp__free(buf);
        return AEMP_EINVAL;
    }
    if (!buf)
        return AEMP_ENOMEM;
    buf[n] = 0;
    *out = buf;
    return 0;
}

static void pem_free(char *pem)
{
    if (pem)
        OPENSSL_cleanse(pem, strlen(pem));
    aemp__free(pem);
}

/* The TLS configuration of c, if it has a certificate: read, checked,
 * and its expiry warned about.  0 (*out NULL without a cert), AEMP_EINVAL
 * with the reason in why, or AEMP_ENOMEM. */
static int tls_load(aemp_node_t *n, const aemp_netconf_t *c,
                    aemp__tls_conf_t **out, char *why, size_t whylen)
{
    *out = NULL;
    if (!c->cert || !*c->cert)
        return 0;
    char *cert = NULL, *ca = NULL, reason[200] = "";
    int rc = pem_text(c->cert, "cert", &cert, why, whylen);
    if (rc == 0 && c->ca && *c->ca)
        rc = pem_text(c->ca, "ca", &ca, why, whylen);
    if (rc == 0 &&
        (rc = aemp__tls_conf_new(n->loop, cert, cert, ca, out, reason,
                                 sizeof reason)) == AEMP_EINVAL)
        snprintf(why, whylen, "cert%s: %s", ca ? " or ca" : "", reason);
    pem_free(cert);
    pem_free(ca);
    if (rc < 0)
        return rc;
    char date[64];
    long long left = aemp__tls_conf_expiry(*out, date, sizeof date);
    if (left < 0)
        aemp__log(n, AEMP_LOG_WARN,
                  "the certificate expired on %s: peers will refuse it", date);
    else if (left < 30LL * 86400)
        aemp__log(n, AEMP_LOG_WARN,
                  "the certificate expires in %lld days (%s): renew it "
                  "(aemp gencert, or setcert)",
                  left / 86400, date);
    return 0;
}

static int net_apply(aemp_node_t *n, aemp__net_t *net, const aemp_netconf_t *c,
                     char *why, size_t whylen)
{
    aemp__net_t t = *net;
    int rc = tls_load(n, c, &t.tls, why, whylen);
    t.secret = t.framings = t.auth_accept = t.auth_offer = t.cert = t.ca = NULL;
    if (rc || (rc = copy_opt(&t.secret, c->secret)) ||
        (rc = copy_opt(&t.cert, c->cert && *c->cert ? c->cert : NULL)) ||
        (rc = copy_opt(&t.ca, c->ca && *c->ca ? c->ca : NULL)) ||
        (rc = copy_str(&t.framings, c->framings, "cbor,json")) ||
        (rc = copy_str(&t.auth_accept, c->auth_accept, AEMP__AUTH_ACCEPT)) ||
        (rc = copy_str(&t.auth_offer, c->auth_offer, AEMP__AUTH_OFFER))) {
        net_strings_free(&t);
        return rc;
    }
    net_strings_free(net);
    *net = t;
    net->conf = *c;
    /* the strings are ours: nothing points into the caller's */
    net->conf.secret = net->secret;
    net->conf.framings = net->framings;
    net->conf.auth_accept = net->auth_accept;
    net->conf.auth_offer = net->auth_offer;
    net->conf.cert = net->cert;
    net->conf.ca = net->ca;
    net->conf.nodename = net->conf.dns_servers = NULL; /* on the node */
    net->conf.monitor_timeout = c->monitor_timeout > 0 ? c->monitor_timeout : 30;
    net->conf.connect_interval =
        c->connect_interval > 0 ? c->connect_interval : 2;
    net->conf.keepalive = c->keepalive ? c->keepalive : 30;
    net->conf.max_backlog = c->max_backlog ? c->max_backlog : 64u << 20;
    net->conf.max_queued_bytes =
        c->max_queued_bytes ? c->max_queued_bytes : 8u << 20;
    /* about one dispatch pass: the queued packets stay in the CPU's cache
     * and in the recycled blocks (receiver CPU per message under a flood
     * 0.27 -> 0.135 s per million against 32768, bench_net --only
     * unpaced) */
    net->conf.max_queued_items =
        c->max_queued_items ? c->max_queued_items : 4096;
    aemp__limits_resolve(&net->conf.limits);
    net->hs.secret = net->secret;
    net->hs.framings = net->framings;
    net->hs.auth_accept = net->auth_accept;
    net->hs.auth_offer = net->auth_offer;
    net->hs.timeout = net->conf.keepalive;
    net->hs.tls = net->tls != NULL;
    return 0;
}

/* The resolver's settings live on the node: resolving works without a
 * network configuration too. */
static int node_names(aemp_node_t *n, const aemp_netconf_t *c)
{
    char *name = c->nodename ? aemp__strdup(c->nodename) : NULL;
    char *dns = c->dns_servers ? aemp__strdup(c->dns_servers) : NULL;
    if ((c->nodename && !name) || (c->dns_servers && !dns)) {
        aemp__free(name);
        aemp__free(dns);
        return AEMP_ENOMEM;
    }
    aemp__free(n->nodename);
    aemp__free(n->dns_servers);
    n->nodename = name;
    n->dns_servers = dns;
    return 0;
}

/* libuv writes to sockets with write(2)/writev(2), and the kernel raises
 * SIGPIPE when the peer has hung up; its default action would end the
 * whole program for one lost link.  A handler or SIG_IGN the program set
 * itself is left alone. */
static void ignore_sigpipe(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
        !(old.sa_flags & SA_SIGINFO)) {
        struct sigaction ign;
        memset(&ign, 0, sizeof ign);
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        sigaction(SIGPIPE, &ign, NULL);
    }
}

/* Every name of a framing list must be one we speak (a list we could not
 * honour would fail every link later, with a vaguer reason). */
static int check_framings(const char *list, char *why, size_t whylen)
{
    const char *p = list, *name;
    size_t len;
    if (!list || !*list)
        return 0; /* the default */
    while (aemp__list_next(&p, &name, &len))
        if (!aemp__framing_named(name, len)) {
            snprintf(why, whylen,
                     "unknown framing \"%.*s\" in \"%.80s\" (known: cbor, "
                     "json)",
                     (int)(len < 40 ? len : 40), name, list);
            return AEMP_EINVAL;
        }
    return 0;
}

int aemp_node_configure(aemp_node_t *n, const aemp_netconf_t *conf)
{
    if (!n || !conf || n->freeing)
        return AEMP_EINVAL;
    if (n->net && n->net->active)
        return AEMP_EBUSY;
    char why[320];
    if (aemp__auth_check_list(conf->auth_accept, why, sizeof why) < 0 ||
        aemp__auth_check_list(conf->auth_offer, why, sizeof why) < 0 ||
        check_framings(conf->framings, why, sizeof why) < 0) {
        aemp__log(n, AEMP_LOG_ERROR, "aemp_node_configure: %s", why);
        return AEMP_EINVAL;
    }
    aemp__net_t *net = n->net;
    bool fresh = !net;
    if (fresh && !(net = aemp__calloc(1, sizeof *net)))
        return AEMP_ENOMEM;
    ignore_sigpipe();
    int rc = net_apply(n, net, conf, why, sizeof why);
    if (rc < 0) {
        if (rc == AEMP_EINVAL)
            aemp__log(n, AEMP_LOG_ERROR, "aemp_node_configure: %s", why);
        if (fresh)
            aemp__free(net);
        return rc;
    }
    if (fresh) {
        uv_prepare_init(n->loop, &net->flush_prep);
        net->flush_prep.data = n;
        net->node = n;
        n->net = net;
        n->net_ops = &net_ops;
        n->net_requests = aemp__net_requests;
    }
    net->hs.node_id = n->noderef;
    n->secure = conf->secure != 0;
    return node_names(n, conf);
}

int aemp__net_rename(aemp_node_t *n, const char *noderef)
{
    int rc = aemp__node_rename(n, noderef);
    if (rc == 0)
        n->net->hs.node_id = n->noderef; /* the greeting's node ID */
    return rc;
}

void aemp__net_link_ready(aemp_node_t *n, aemp__peer_t *p)
{
    if (n->net->on_link_ready)
        n->net->on_link_ready(n, p, n->net->on_link_ready_user);
}

static int net_get(aemp_node_t *n, aemp__net_t **out)
{
    if (!n->net)
        return AEMP_ENOROUTE;
    *out = n->net;
    return 0;
}

int aemp__net_route(aemp_node_t *n, const char *port, aemp__peer_t **peer,
                    const char **name)
{
    aemp__net_t *net;
    int rc = net_get(n, &net);
    if (rc < 0)
        return rc;
    const char *hash = strchr(port, '#');
    size_t idlen = hash ? (size_t)(hash - port) : strlen(port);
    /* a known node was checked when it became known: every send to it
     * looks it up only; a malformed noderef fails now, not after
     * monitor_timeout */
    *peer = idlen ? aemp__peer_get(n, port, idlen, false) : NULL;
    if (!*peer) {
        if (!idlen || memchr(port, ';', idlen) ||
            aemp__id_check(port, idlen) < 0)
            return AEMP_EINVAL;
        if (!(*peer = aemp__peer_get(n, port, idlen, true)))
            return AEMP_ENOMEM;
    }
    if ((*peer)->alias) /* an address that turned out to be another ID */
        *peer = (*peer)->alias;
    *name = hash ? hash + 1 : "";
    net->active = true;
    return 0;
}

/* ---- flushing: once per loop iteration, after all callbacks ---------- */

void aemp__net_wake(aemp_node_t *n)
{
    if (!uv_is_active((uv_handle_t *)&n->net->flush_prep))
        uv_prepare_start(&n->net->flush_prep, on_flush_prep);
}

static void on_flush_prep(uv_prepare_t *h)
{
    aemp_node_t *n = h->data;
    aemp__links_flush(n);
    aemp__peers_check_flushers(n);
    aemp__peers_sweep(n);
    if (!n->net->dirty && !n->net->flush_checks && !n->net->free_pending)
        uv_prepare_stop(h);
}

/* ---- backpressure: reading follows the queue ------------------------------ */

bool aemp__net_queue_full(const aemp_node_t *n)
{
    const aemp_netconf_t *c = &n->net->conf;
    return n->qbytes >= c->max_queued_bytes || n->qitems >= c->max_queued_items;
}

static void net_queue_drained(aemp_node_t *n)
{
    aemp__net_t *net = n->net;
    if (!net->queue_holds || n->qbytes > net->conf.max_queued_bytes / 2 ||
        n->qitems > net->conf.max_queued_items / 2)
        return;
    /* a released link may fill the queue again at once: it holds again
     * and the rest wait for the next pass */
    aemp__link_t *l, *next;
    for (l = net->links; l && !aemp__net_queue_full(n); l = next) {
        next = l->next;
        if (l->hold & AEMP__HOLD_QUEUE)
            aemp__link_release(l, AEMP__HOLD_QUEUE);
    }
}

/* ---- listening -------------------------------------------------------- */

int aemp__endpoint_parse(const char *ep, size_t len,
                         struct sockaddr_storage *addr)
{
    char host[64];
    const char *colon = NULL;
    for (size_t i = len; i-- > 0;)
        if (ep[i] == ':') {
            colon = ep + i;
            break;
        }
    if (!colon || (size_t)(colon - ep) >= sizeof host || colon + 1 == ep + len)
        return AEMP_EINVAL;
    size_t hlen = (size_t)(colon - ep);
    memcpy(host, ep, hlen);
    host[hlen] = 0;
    char portstr[8];
    size_t plen = (size_t)(ep + len - colon - 1);
    if (plen >= sizeof portstr)
        return AEMP_EINVAL;
    memcpy(portstr, colon + 1, plen);
    portstr[plen] = 0;
    char *end;
    long port = strtol(portstr, &end, 10);
    if (*end || port <= 0 || port > 65535)
        return AEMP_EINVAL;
    memset(addr, 0, sizeof *addr);
    if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
        host[hlen - 1] = 0;
        if (uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)addr))
            return AEMP_EINVAL;
    } else if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr)) {
        return AEMP_EINVAL;
    }
    return 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    aemp_node_t *n = server->data;
    if (status < 0) {
        aemp__log(n, AEMP_LOG_WARN, "accept: %s", uv_strerror(status));
        return;
    }
    int rc = aemp__link_accept(n, server);
    if (rc < 0)
        aemp__log(n, AEMP_LOG_WARN, "accept: %s", aemp_strerror(rc));
}

static void on_listener_closed(uv_handle_t *h)
{
    aemp_node_t *n = h->data;
    aemp__free(h);
    aemp__node_handle_closed(n);
}

static void listeners_close(aemp_node_t *n, aemp__net_t *net)
{
    for (size_t i = 0; i < net->nlisteners; i++) {
        aemp__node_close(n, (uv_handle_t *)net->listeners[i], on_listener_closed);
    }
    aemp__free(net->listeners);
    net->listeners = NULL;
    net->nlisteners = 0;
}

/* Binds one endpoint into the next listener slot. */
static int listen_one(aemp_node_t *n, aemp__net_t *net, const char *ep,
                      size_t len)
{
    struct sockaddr_storage addr;
    if (aemp__endpoint_parse(ep, len, &addr) < 0) {
        aemp__log(n, AEMP_LOG_ERROR, "listen: \"%.*s\" is not a resolved "
                  "endpoint (ip:port or [ipv6]:port)", (int)len, ep);
        return AEMP_EINVAL;
    }
    uv_tcp_t *t = aemp__malloc(sizeof *t);
    if (!t)
        return AEMP_ENOMEM;
    uv_tcp_init(n->loop, t);
    t->data = n;
    net->listeners[net->nlisteners++] = t;
    int err = uv_tcp_bind(t, (struct sockaddr *)&addr, 0);
    if (!err)
        err = uv_listen((uv_stream_t *)t, 128, on_connection);
    if (err) {
        aemp__log(n, AEMP_LOG_ERROR, "listen on %.*s: %s", (int)len, ep,
                  uv_strerror(err));
        return AEMP_ESYS;
    }
    return 0;
}

int aemp_node_listen(aemp_node_t *n, const char *noderef)
{
    aemp__net_t *net;
    if (!n || !noderef || !*noderef || strchr(noderef, '#') ||
        strchr(noderef, ';'))
        return AEMP_EINVAL;
    int rc = net_get(n, &net);
    if (rc < 0)
        return rc;
    if (net->public_)
        return AEMP_EBUSY;
    size_t count = 1;
    for (const char *p = noderef; *p; p++)
        count += *p == ',';
    if (!(net->listeners = aemp__calloc(count, sizeof *net->listeners)))
        return AEMP_ENOMEM;
    for (const char *p = noderef; rc == 0;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        rc = listen_one(n, net, p, len);
        if (!e)
            break;
        p = e + 1;
    }
    if (rc == 0)
        rc = aemp__net_rename(n, noderef);
    if (rc < 0) {
        listeners_close(n, net);
        return rc;
    }
    net->public_ = net->active = true;
    return 0;
}

int aemp_node_seed(aemp_node_t *n, const char *noderef)
{
    aemp__peer_t *peer;
    const char *name;
    if (!n || !noderef || strchr(noderef, '#'))
        return AEMP_EINVAL;
    int rc = aemp__net_route(n, noderef, &peer, &name);
    if (rc < 0)
        return rc;
    peer->seed = true;
    aemp__peer_need(peer);
    return 0;
}

int aemp_node_is_up(aemp_node_t *n, const char *node_id)
{
    aemp__peer_t *p = aemp__peer_find(n, node_id);
    return p && p->up;
}

int aemp_node_is_known(aemp_node_t *n, const char *node_id)
{
    if (!n || !node_id)
        return 0;
    if (!strcmp(node_id, n->noderef))
        return 1;
    return aemp__peer_find(n, node_id) != NULL;
}

/* ---- teardown --------------------------------------------------------- */

/* The net struct holds the prepare handle, so it goes last. */
static void on_prep_closed(uv_handle_t *h)
{
    aemp__net_t *net = h->data;
    aemp_node_t *n = net->node;
    aemp__free(net);
    aemp__node_handle_closed(n);
}

static void net_close(aemp_node_t *n)
{
    aemp__net_t *net = n->net;
    if (!net)
        return;
    listeners_close(n, net);
    while (net->links)
        aemp__link_close(net->links, NULL);
    size_t i = 0;
    aemp__peer_t *p;
    while ((i = 0, p = aemp__strmap_next(&net->peers, &i))) {
        aemp__strmap_del(&net->peers, p->id, p->idlen);
        aemp__peer_free(p);
    }
    aemp__strmap_free(&net->peers);
    net_strings_free(net);
    n->net = NULL;
    n->net_ops = NULL;
    n->net_requests = NULL;
    net->flush_prep.data = net;
    aemp__node_close(n, (uv_handle_t *)&net->flush_prep, on_prep_closed);
}

/* ---- the kernel's network operations ------------------------------------ */

static int net_send(aemp_node_t *n, const char *port, const aemp_msg_t *m)
{
    aemp__peer_t *peer;
    const char *name;
    int rc = aemp__net_route(n, port, &peer, &name);
    return rc < 0 ? rc : aemp__peer_send(peer, name, strlen(name), m);
}

static const aemp__net_ops_t net_ops = {
    .send = net_send,
    .kill = aemp__remote_kill,
    .monitor = aemp__remote_monitor,
    .stub_idle = aemp__remote_stub_idle,
    .watch_fired = aemp__remote_watch_fired,
    .nodes = aemp__peer_ids,
    .run_item = aemp__peer_loss_step,
    .queue_drained = net_queue_drained,
    .close = net_close,
};
