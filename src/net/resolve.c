/* resolve_node (aemp_resolve in aemp.h): unresolved noderefs to numeric endpoints,
 * through c-ares on the node's loop — the loop never blocks on DNS. */
#include "kernel.h"

#include <sys/select.h> /* ares.h needs fd_set and struct timeval */
#include <sys/time.h>

#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#define DEFAULT_PORT 4040
#define DNS_CLASS_IN 1
#define DNS_TYPE_SRV 33
#define MAX_RESULTS 64

/* One socket c-ares asked us to watch. */
/* Close callbacks run in reverse order of uv_close, so everything closed
 * with the resolver keeps its own node pointer: the resolver may be gone
 * by the time they run. */
typedef struct dns_sock {
    uv_poll_t poll;
    ares_socket_t fd;
    struct dns_sock *next;
    struct aemp__dns *dns;
    aemp_node_t *node;
} dns_sock_t;

typedef struct srv {
    char *target;
    int port, priority, weight;
} srv_t;

/* One aemp_resolve call: components are resolved one after the other. */
typedef struct job {
    struct job *next;
    struct aemp__dns *dns;
    aemp_node_t *node;
    uv_timer_t start; /* defers the first step and the answer to the loop */
    aemp_resolve_fn fn;
    void *user;
    char *input;          /* the noderef, for messages */
    char *work, *cursor;  /* a copy cut into components; the next one */
    char *results[MAX_RESULTS];
    size_t nresults;
    srv_t *srv;
    size_t nsrv, srv_i;
    char host[256];
    int port, family; /* the lookup in flight */
    size_t found;     /* addresses found for the current host */
    int status;
    char error[300];
} job_t;

struct aemp__dns {
    aemp_node_t *node;
    ares_channel ch;
    uv_timer_t timer; /* c-ares' own timeouts */
    dns_sock_t *socks;
    job_t *jobs;
    bool destroying;
};

static void job_step(job_t *j);
static void job_finish(job_t *j);

/* ---- c-ares on libuv --------------------------------------------------- */

static void on_dns_timer(uv_timer_t *t);

static void dns_rearm(struct aemp__dns *d)
{
    struct timeval tv, *tvp = ares_timeout(d->ch, NULL, &tv);
    if (!tvp) {
        uv_timer_stop(&d->timer);
        return;
    }
    uint64_t ms = (uint64_t)tvp->tv_sec * 1000 + (uint64_t)tvp->tv_usec / 1000;
    uv_timer_start(&d->timer, on_dns_timer, ms ? ms : 1, 0);
}

static void on_dns_timer(uv_timer_t *t)
{
    struct aemp__dns *d = t->data;
    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_rearm(d);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    dns_sock_t *s = h->data;
    struct aemp__dns *d = s->dns;
    ares_socket_t r = ARES_SOCKET_BAD, w = ARES_SOCKET_BAD;
    if (status < 0 || (events & UV_READABLE))
        r = s->fd;
    if (status < 0 || (events & UV_WRITABLE))
        w = s->fd;
    ares_process_fd(d->ch, r, w);
    dns_rearm(d);
}

static void on_sock_closed(uv_handle_t *h)
{
    dns_sock_t *s = h->data;
    aemp_node_t *n = s->node;
    aemp__free(s);
    aemp__node_handle_closed(n);
}

static void sock_close(dns_sock_t *s)
{
    aemp__node_close(s->node, (uv_handle_t *)&s->poll, on_sock_closed);
}

/* c-ares opens, watches and closes its sockets through this. */
static void on_sock_state(void *data, ares_socket_t fd, int readable,
                          int writable)
{
    struct aemp__dns *d = data;
    dns_sock_t **pp = &d->socks, *s;
    while ((s = *pp) && s->fd != fd)
        pp = &s->next;
    if (!readable && !writable) {
        if (s) {
            *pp = s->next;
            sock_close(s);
        }
        return;
    }
    if (!s) {
        if (!(s = aemp__calloc(1, sizeof *s)))
            return; /* the query times out instead */
        s->fd = fd;
        s->dns = d;
        s->node = d->node;
        if (uv_poll_init_socket(d->node->loop, &s->poll, fd) != 0) {
            aemp__free(s);
            return;
        }
        s->poll.data = s;
        s->next = d->socks;
        d->socks = s;
    }
    uv_poll_start(&s->poll, (readable ? UV_READABLE : 0) |
                                (writable ? UV_WRITABLE : 0),
                  on_poll);
}

static void dns_free(aemp_node_t *n);

static int dns_get(aemp_node_t *n, struct aemp__dns **out)
{
    if (n->dns) {
        *out = n->dns;
        return 0;
    }
    struct aemp__dns *d = aemp__calloc(1, sizeof *d);
    if (!d)
        return AEMP_ENOMEM;
    struct ares_options o = {.sock_state_cb = on_sock_state,
                             .sock_state_cb_data = d,
                             .timeout = 2000,
                             .tries = 2};
    int rc = ares_init_options(&d->ch, &o,
                               ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
                                   ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        aemp__free(d);
        return rc == ARES_ENOMEM ? AEMP_ENOMEM : AEMP_ESYS;
    }
    if (n->dns_servers &&
        ares_set_servers_ports_csv(d->ch, n->dns_servers) != ARES_SUCCESS) {
        aemp__log(n, AEMP_LOG_ERROR, "bad dns_servers \"%s\"", n->dns_servers);
        ares_destroy(d->ch);
        aemp__free(d);
        return AEMP_EINVAL;
    }
    if (aemp__node_at_free(n, dns_free) < 0) {
        ares_destroy(d->ch);
        aemp__free(d);
        return AEMP_ENOMEM;
    }
    d->node = n;
    uv_timer_init(n->loop, &d->timer);
    d->timer.data = d;
    n->dns = d;
    *out = d;
    return 0;
}

static void on_dns_timer_closed(uv_handle_t *h)
{
    struct aemp__dns *d = h->data;
    aemp_node_t *n = d->node;
    aemp__free(d);
    aemp__node_handle_closed(n);
}

static void job_free(job_t *j);

static void dns_free(aemp_node_t *n)
{
    struct aemp__dns *d = n->dns;
    if (!d)
        return;
    d->destroying = true;
    ares_destroy(d->ch); /* calls pending callbacks with ARES_EDESTRUCTION */
    while (d->jobs)
        job_free(d->jobs);
    dns_sock_t *s;
    while ((s = d->socks)) {
        d->socks = s->next;
        sock_close(s);
    }
    aemp__node_close(n, (uv_handle_t *)&d->timer, on_dns_timer_closed);
    n->dns = NULL;
}

/* ---- results ------------------------------------------------------------ */

static void add_result(job_t *j, const char *endpoint)
{
    for (size_t i = 0; i < j->nresults; i++)
        if (!strcmp(j->results[i], endpoint))
            return; /* duplicates are dropped, the first place kept */
    if (j->nresults == MAX_RESULTS) {
        j->status = AEMP_ELIMIT;
        snprintf(j->error, sizeof j->error, "more than %d endpoints",
                 MAX_RESULTS);
        return;
    }
    if (!(j->results[j->nresults] = aemp__strdup(endpoint)))
        j->status = AEMP_ENOMEM;
    else
        j->nresults++;
}

static void add_sockaddr(job_t *j, const struct sockaddr *sa, int port)
{
    char ip[INET6_ADDRSTRLEN], ep[INET6_ADDRSTRLEN + 10];
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip,
                  sizeof ip);
        snprintf(ep, sizeof ep, "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip,
                  sizeof ip);
        snprintf(ep, sizeof ep, "[%s]:%d", ip, port);
    } else {
        return;
    }
    add_result(j, ep);
}

static int fail(job_t *j, int status, const char *fmt, const char *arg)
{
    j->status = status;
    snprintf(j->error, sizeof j->error, fmt, arg);
    return status;
}

/* ---- lookups ------------------------------------------------------------ */

static void lookup(job_t *j);

static void on_addrinfo(void *arg, int status, int timeouts,
                        struct ares_addrinfo *res)
{
    job_t *j = arg;
    if (j->dns->destroying) {
        ares_freeaddrinfo(res);
        return;
    }
    for (struct ares_addrinfo_node *a = res ? res->nodes : NULL; a;
         a = a->ai_next) {
        add_sockaddr(j, a->ai_addr, j->port);
        j->found++;
    }
    ares_freeaddrinfo(res);
    if (j->family == AF_INET) { /* A first, then AAAA, each in DNS order */
        j->family = AF_INET6;
        lookup(j);
        return;
    }
    if (!j->found && !j->status)
        fail(j, AEMP_ENOTFOUND, "cannot resolve \"%s\"", j->host);
    job_step(j);
}

static void lookup(job_t *j)
{
    struct ares_addrinfo_hints hints = {.ai_family = j->family};
    ares_getaddrinfo(j->dns->ch, j->host, NULL, &hints, on_addrinfo, j);
    dns_rearm(j->dns);
}

/* "localhost" and "*.localhost" are the loopback addresses (RFC 6761)
 * without asking anyone — and c-ares 1.18 (Debian 12) leaks its copy of
 * the name when it answers them itself. */
static bool is_localhost(const char *host)
{
    size_t len = strlen(host);
    return !strcasecmp(host, "localhost") ||
           (len > 10 && !strcasecmp(host + len - 10, ".localhost"));
}

static void lookup_host(job_t *j, const char *host, int port)
{
    if (host != j->host)
        snprintf(j->host, sizeof j->host, "%s", host);
    j->port = port;
    j->family = AF_INET;
    j->found = 0;
    if (is_localhost(j->host)) {
        struct sockaddr_in v4 = {.sin_family = AF_INET};
        struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
        v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        v6.sin6_addr = in6addr_loopback;
        add_sockaddr(j, (struct sockaddr *)&v4, port);
        add_sockaddr(j, (struct sockaddr *)&v6, port);
        j->found = 2;
        job_step(j);
        return;
    }
    lookup(j);
}

static int srv_order(const void *a, const void *b)
{
    const srv_t *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority - y->priority; /* lower priority first */
    return y->weight - x->weight;         /* then heavier first */
}

static void srv_free(job_t *j)
{
    for (size_t i = 0; i < j->nsrv; i++)
        aemp__free(j->srv[i].target);
    aemp__free(j->srv);
    j->srv = NULL;
    j->nsrv = j->srv_i = 0;
}

static void on_srv(void *arg, int status, int timeouts, unsigned char *abuf,
                   int alen)
{
    job_t *j = arg;
    struct ares_srv_reply *reply = NULL;
    if (j->dns->destroying)
        return;
    if (status == ARES_SUCCESS &&
        ares_parse_srv_reply(abuf, alen, &reply) == ARES_SUCCESS) {
        size_t n = 0;
        for (struct ares_srv_reply *r = reply; r; r = r->next)
            n++;
        j->srv = aemp__calloc(n ? n : 1, sizeof *j->srv);
        for (struct ares_srv_reply *r = reply; j->srv && r; r = r->next)
            j->srv[j->nsrv++] = (srv_t){aemp__strdup(r->host), r->port,
                                        r->priority, r->weight};
        ares_free_data(reply);
        if (!j->srv)
            fail(j, AEMP_ENOMEM, "%s", "out of memory");
        else
            qsort(j->srv, j->nsrv, sizeof *j->srv, srv_order);
    }
    if (!j->nsrv && !j->status) /* no SRV record: the default port */
        lookup_host(j, j->host, DEFAULT_PORT);
    else
        job_step(j);
}

/* ---- components ---------------------------------------------------------- */

static const char *node_name(aemp_node_t *n, char *buf, size_t size)
{
    struct utsname u;
    if (n->nodename)
        return n->nodename;
    if (uname(&u) == 0)
        snprintf(buf, size, "%s", u.nodename);
    else
        snprintf(buf, size, "localhost");
    return buf;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static int parse_port(job_t *j, const char *s, const char *comp)
{
    long port = all_digits(s) && strlen(s) <= 5 ? strtol(s, NULL, 10) : -1;
    if (port <= 0 || port > 65535)
        return fail(j, AEMP_EINVAL, "bad port in \"%s\"", comp);
    return (int)port;
}

/* Starts the lookups for one component; 1 if that completed it already. */
static int component(job_t *j, char *comp)
{
    char name[256], orig[256];
    snprintf(orig, sizeof orig, "%s", comp); /* comp gets cut below */
    struct in6_addr a6;
    struct in_addr a4;
    if (!*comp || all_digits(comp)) { /* "", naked port: our node name */
        int port = *comp ? parse_port(j, comp, comp) : DEFAULT_PORT;
        if (port < 0)
            return 1;
        lookup_host(j, node_name(j->dns->node, name, sizeof name), port);
        return 0;
    }
    char *colon = strrchr(comp, ':');
    if (comp[0] == '[') { /* [v6]:port */
        char *close = strchr(comp, ']');
        if (!close || close[1] != ':' || close == comp + 1)
            return fail(j, AEMP_EINVAL, "unparsable component \"%s\"", comp),
                   1;
        colon = close + 1;
        *close = 0;
        int port = parse_port(j, colon + 1, orig);
        if (port >= 0 && inet_pton(AF_INET6, comp + 1, &a6) == 1) {
            char ep[300];
            snprintf(ep, sizeof ep, "[%s]:%d", comp + 1, port);
            add_result(j, ep); /* numeric: unchanged */
            return 1;
        }
        if (port >= 0)
            lookup_host(j, comp + 1, port);
        return port < 0;
    }
    if (!colon) { /* host alone: SRV, falling back to the default port */
        snprintf(j->host, sizeof j->host, "%s", comp);
        char q[300];
        snprintf(q, sizeof q, "_aemp._tcp.%s", comp);
        ares_query(j->dns->ch, q, DNS_CLASS_IN, DNS_TYPE_SRV, on_srv, j);
        dns_rearm(j->dns);
        return 0;
    }
    if (colon == comp)
        return fail(j, AEMP_EINVAL, "empty host in \"%s\"", comp), 1;
    if (strchr(comp, ':') != colon)
        return fail(j, AEMP_EINVAL, "unparsable component \"%s\"", comp), 1;
    *colon = 0;
    int port = parse_port(j, colon + 1, orig);
    if (port < 0)
        return 1;
    if (inet_pton(AF_INET, comp, &a4) == 1) {
        char ep[300];
        snprintf(ep, sizeof ep, "%s:%d", comp, port);
        add_result(j, ep);
        return 1;
    }
    lookup_host(j, comp, port);
    return 0;
}

/* Next SRV target, next component, or the answer. */
static void job_step(job_t *j)
{
    while (!j->status) {
        if (j->srv_i < j->nsrv) {
            srv_t *s = &j->srv[j->srv_i++];
            lookup_host(j, s->target, s->port);
            return;
        }
        srv_free(j);
        if (!j->cursor) {
            job_finish(j);
            return;
        }
        char *comp = j->cursor, *comma = strchr(comp, ',');
        if (comma)
            *comma = 0;
        j->cursor = comma ? comma + 1 : NULL;
        if (!component(j, comp))
            return; /* a lookup is in flight; it calls us again */
    }
    job_finish(j);
}

/* ---- jobs --------------------------------------------------------------- */

static void on_job_closed(uv_handle_t *h)
{
    job_t *j = h->data;
    aemp_node_t *n = j->node;
    aemp__free(j);
    aemp__node_handle_closed(n);
}

static void job_free(job_t *j)
{
    struct aemp__dns *d = j->dns;
    job_t **pp = &d->jobs;
    while (*pp != j)
        pp = &(*pp)->next;
    *pp = j->next;
    for (size_t i = 0; i < j->nresults; i++)
        aemp__free(j->results[i]);
    srv_free(j);
    aemp__free(j->input);
    aemp__free(j->work);
    aemp__node_close(d->node, (uv_handle_t *)&j->start, on_job_closed);
}

static void on_answer(uv_timer_t *t)
{
    job_t *j = t->data;
    char *joined = NULL;
    if (!j->status) {
        size_t len = 1;
        for (size_t i = 0; i < j->nresults; i++)
            len += strlen(j->results[i]) + 1;
        if ((joined = aemp__malloc(len))) {
            joined[0] = 0;
            for (size_t i = 0; i < j->nresults; i++) {
                if (i)
                    strcat(joined, ",");
                strcat(joined, j->results[i]);
            }
        } else {
            fail(j, AEMP_ENOMEM, "%s", "out of memory");
        }
    }
    j->fn(j->dns->node, j->status, joined, j->status ? j->error : NULL,
          j->user);
    aemp__free(joined);
    job_free(j);
}

static void job_finish(job_t *j)
{
    if (!j->status && !j->nresults)
        fail(j, AEMP_ENOTFOUND, "\"%s\" resolves to nothing", j->input);
    uv_timer_start(&j->start, on_answer, 0, 0);
}

static void on_start(uv_timer_t *t)
{
    job_step(t->data);
}

int aemp_resolve(aemp_node_t *n, const char *noderef, aemp_resolve_fn fn,
                 void *user)
{
    struct aemp__dns *d;
    if (!n || !noderef || !fn || n->freeing)
        return AEMP_EINVAL;
    int rc = dns_get(n, &d);
    if (rc < 0)
        return rc;
    job_t *j = aemp__calloc(1, sizeof *j);
    if (!j || !(j->input = aemp__strdup(noderef)) ||
        !(j->work = aemp__strdup(noderef))) {
        if (j)
            aemp__free(j->input);
        aemp__free(j);
        return AEMP_ENOMEM;
    }
    j->cursor = j->work;
    j->dns = d;
    j->node = n;
    j->fn = fn;
    j->user = user;
    j->next = d->jobs;
    d->jobs = j;
    uv_timer_init(n->loop, &j->start);
    j->start.data = j;
    uv_timer_start(&j->start, on_start, 0, 0);
    return 0;
}
