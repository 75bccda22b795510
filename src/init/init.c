/* initialise_node: the configuration profile, resolving and binding (public
 * nodes) or attaching to a master (slave nodes), seeds, then services. */
#include "global.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

typedef struct init_job {
    aemp_node_t *node;
    aemp_init_fn fn;
    void *user;
    char *noderef;
    char **seeds;
    size_t nseeds, next_seed;
    aemp_val_t *services; /* array: names or [name, args...] */
    bool slave;
    bool client; /* noderef "anon/": listens nowhere, only connects out */
    bool own_seed; /* one of the seeds is this node */
    uv_timer_t timer; /* slave: the deadline for a master */
    int status;
    char error[300];
} init_job_t;

static void init_done(init_job_t *j, int status, const char *fmt, ...)
    AEMP_PRINTF(3, 4);

/* ---- settings from the configuration --------------------------------- */

/* A string setting, or a list of strings joined with commas (framing,
 * auth_accept, ...), copied into buf; NULL if absent. */
static const char *setting(const aemp_config_t *c, const char *profile,
                           const char *key, char *buf, size_t size)
{
    const aemp_val_t *v = aemp_config_get(c, profile, key);
    const char *s;
    if (aemp_val_str(v, &s, NULL) == 0) {
        snprintf(buf, size, "%s", s);
        return buf;
    }
    if (aemp_val_type(v) != AEMP_T_ARR)
        return NULL;
    buf[0] = 0;
    for (size_t i = 0; i < aemp_val_len(v); i++)
        if (aemp_val_str(aemp_val_at(v, i), &s, NULL) == 0)
            snprintf(buf + strlen(buf), size - strlen(buf), "%s%s",
                     buf[0] ? "," : "", s);
    return buf;
}

static double number(const aemp_config_t *c, const char *profile,
                     const char *key, double def)
{
    double d;
    return aemp_val_double(aemp_config_get(c, profile, key), &d) == 0 ? d : def;
}

/* A positive whole number setting; anything else leaves def. */
static size_t size(const aemp_config_t *c, const char *profile,
                   const char *key, size_t def)
{
    int64_t v;
    return aemp_val_int(aemp_config_get(c, profile, key), &v) == 0 && v > 0 &&
                   (uint64_t)v <= SIZE_MAX
               ? (size_t)v
               : def;
}

/* The node's network settings: the configuration's where it has them, the
 * program's (an earlier aemp_node_configure) otherwise. */
static int apply_config(aemp_node_t *n, const aemp_config_t *c,
                        const char *profile)
{
    char secret[512], fr[128], acc[256], off[256], dns[256], name[256];
    aemp_netconf_t conf = {0};
    if (n->net) {
        conf = n->net->conf;
        conf.secret = n->net->secret;
        conf.framings = n->net->framings;
        conf.auth_accept = n->net->auth_accept;
        conf.auth_offer = n->net->auth_offer;
        conf.cert = n->net->cert;
        conf.ca = n->net->ca;
    }
    conf.nodename = n->nodename;
    conf.dns_servers = n->dns_servers;
    if (c) {
        const char *v;
        if ((v = setting(c, profile, "secret", secret, sizeof secret)))
            conf.secret = v;
        if ((v = setting(c, profile, "framing", fr, sizeof fr)))
            conf.framings = v;
        if ((v = setting(c, profile, "auth_accept", acc, sizeof acc)))
            conf.auth_accept = v;
        if ((v = setting(c, profile, "auth_offer", off, sizeof off)))
            conf.auth_offer = v;
        /* PEM text or a path, as long as it is: no copy */
        if (aemp_val_str(aemp_config_get(c, profile, "cert"), &v, NULL) == 0)
            conf.cert = v;
        if (aemp_val_str(aemp_config_get(c, profile, "ca"), &v, NULL) == 0)
            conf.ca = v;
        if ((v = setting(c, profile, "dns_servers", dns, sizeof dns)))
            conf.dns_servers = v;
        if ((v = setting(c, profile, "nodename", name, sizeof name)))
            conf.nodename = v;
        conf.monitor_timeout =
            number(c, profile, "monitor_timeout", conf.monitor_timeout);
        conf.connect_interval =
            number(c, profile, "connect_interval", conf.connect_interval);
        conf.max_backlog = size(c, profile, "max_backlog", conf.max_backlog);
        conf.max_queued_bytes =
            size(c, profile, "max_queued_bytes", conf.max_queued_bytes);
        conf.max_queued_items =
            size(c, profile, "max_queued_items", conf.max_queued_items);
        int secure, global;
        if (aemp_val_bool(aemp_config_get(c, profile, "secure"), &secure) == 0)
            conf.secure = secure;
        if (aemp_val_bool(aemp_config_get(c, profile, "global"), &global) == 0)
            conf.global = global;
    }
    return aemp_node_configure(n, &conf);
}

static const char *host_name(aemp_node_t *n, char *buf, size_t size)
{
    /* a copy: configuring the node replaces n->nodename */
    struct utsname u;
    snprintf(buf, size, "%s",
             n->nodename ? n->nodename
                         : uname(&u) == 0 ? u.nodename : "localhost");
    return buf;
}

/* ---- services ---------------------------------------------------------- */

static void start_services(init_job_t *j)
{
    for (size_t i = 0; i < aemp_val_len(j->services); i++) {
        const aemp_val_t *s = aemp_val_at(j->services, i);
        const char *name, *id;
        aemp_msg_t *args = NULL;
        int rc;
        if (aemp_val_str(s, &name, NULL) == 0) {
            rc = aemp_msg_new(&args, "");
        } else if (aemp_val_str(aemp_val_at(s, 0), &name, NULL) == 0) {
            aemp_msg_t *all;
            rc = aemp__msg_of_val(&all, s);
            if (rc == 0) {
                rc = aemp__msg_slice(&args, all, 1);
                aemp_msg_unref(all);
            }
        } else {
            aemp__log(j->node, AEMP_LOG_ERROR, "services[%zu]: not a name", i);
            continue;
        }
        if (rc == 0 && (rc = aemp__start(j->node, name, args, &id)) == 0)
            aemp__log(j->node, AEMP_LOG_INFO, "service %s started: %s", name,
                      id);
        else
            aemp__log(j->node, AEMP_LOG_ERROR, "service %s: %s", name,
                      aemp_strerror(rc));
        aemp_msg_unref(args);
    }
}

/* ---- completion ---------------------------------------------------------- */

static void job_free(init_job_t *j)
{
    for (size_t i = 0; i < j->nseeds; i++)
        aemp__free(j->seeds[i]);
    aemp__free(j->seeds);
    aemp__free(j->noderef);
    aemp_val_free(j->services);
    aemp__free(j);
}

static void on_job_timer_closed(uv_handle_t *h)
{
    init_job_t *j = h->data;
    aemp_node_t *n = j->node;
    job_free(j);
    aemp__node_handle_closed(n);
}

static void init_done(init_job_t *j, int status, const char *fmt, ...)
{
    aemp_node_t *n = j->node;
    j->status = status;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->error, sizeof j->error, fmt, ap);
        va_end(ap);
    }
    if (n->net) {
        n->net->on_link_ready = NULL;
        n->net->on_link_ready_user = NULL;
    }
    if (status == 0 && !j->slave) {
        /* the global service: our addresses to the master, global if
         * configured so or if we are one of our own seeds */
        int rc = aemp__global_start(n, n->net->conf.global || j->own_seed);
        if (rc < 0)
            aemp__log(n, AEMP_LOG_ERROR, "global service: %s",
                      aemp_strerror(rc));
    }
    j->fn(n, status, status ? j->error : NULL, j->user);
    if (status == 0) /* after initialisation, as the profile asks */
        start_services(j);
    aemp__node_close(n, (uv_handle_t *)&j->timer, on_job_timer_closed);
}

/* ---- public nodes ------------------------------------------------------------ */

static void next_seed(init_job_t *j);

static void on_seed(aemp_node_t *n, int status, const char *resolved,
                    const char *error, void *user)
{
    init_job_t *j = user;
    if (status < 0) {
        init_done(j, status, "seed %s: %s", j->seeds[j->next_seed - 1], error);
        return;
    }
    if (!j->slave && !strcmp(resolved, n->noderef)) {
        j->own_seed = true; /* a seed that is us: 2.x makes it global */
        next_seed(j);
        return;
    }
    int rc = j->slave ? aemp__slave_candidate(n, resolved)
                      : aemp_node_seed(n, resolved);
    if (rc == 0 && !j->slave)
        aemp__global_seed(n, resolved); /* a candidate master */
    if (rc < 0) {
        init_done(j, rc, "seed %s: %s", resolved, aemp_strerror(rc));
        return;
    }
    next_seed(j);
}

static void next_seed(init_job_t *j)
{
    if (j->next_seed < j->nseeds) {
        int rc = aemp_resolve(j->node, j->seeds[j->next_seed++], on_seed, j);
        if (rc < 0)
            init_done(j, rc, "cannot resolve seeds: %s", aemp_strerror(rc));
        return;
    }
    if (!j->slave)
        init_done(j, 0, NULL); /* slaves finish when a master answers */
}

static void on_noderef(aemp_node_t *n, int status, const char *resolved,
                       const char *error, void *user)
{
    init_job_t *j = user;
    if (status < 0) {
        init_done(j, status, "noderef %s: %s", j->noderef, error);
        return;
    }
    int rc = aemp_node_listen(n, resolved);
    if (rc < 0) {
        init_done(j, rc, "cannot listen on %s: %s", resolved,
                  aemp_strerror(rc));
        return;
    }
    next_seed(j);
}

/* ---- slave nodes ---------------------------------------------------------------- */

static void on_no_master(uv_timer_t *t)
{
    init_job_t *j = t->data;
    init_done(j, AEMP_ENOROUTE, "no master answered within %g s",
              j->node->net->conf.monitor_timeout);
}

/* A link came up while we wait for a master: the first one wins. */
static void on_link_ready(aemp_node_t *n, aemp__peer_t *p, void *user)
{
    init_job_t *j = user;
    if (!j->slave || !p->master_candidate || n->net->master)
        return;
    int rc = aemp__slave_attach(n, p);
    uv_timer_stop(&j->timer);
    if (rc < 0)
        init_done(j, rc, "cannot attach to %s: %s", p->id, aemp_strerror(rc));
    else
        init_done(j, 0, NULL);
}

static int start_slave(init_job_t *j)
{
    aemp_node_t *n = j->node;
    char *name = aemp__asprintf("slave/%s", n->cookie);
    int rc = name ? aemp__net_rename(n, name) : AEMP_ENOMEM;
    aemp__free(name);
    if (rc < 0)
        return rc;
    uv_timer_start(&j->timer, on_no_master,
                   (uint64_t)(n->net->conf.monitor_timeout * 1000.0), 0);
    next_seed(j);
    return 0;
}

/* ---- entry points --------------------------------------------------------------- */

static int job_setup(init_job_t *j, const aemp_config_t *c, const char *profile,
                     const char *noderef, const char *const *seeds,
                     size_t nseeds)
{
    const aemp_val_t *cs = aemp_config_get(c, profile, "seeds");
    const aemp_val_t *nr = aemp_config_get(c, profile, "noderef");
    const char *s;
    /* the profile's noderef overrides, but not an explicit client or slave
     * (a program sharing the tool's file, whose noderef is the tool's) */
    bool kind = noderef && (!strcmp(noderef, "anon/") ||
                            !strncmp(noderef, "slave/", 6));
    if (!kind && aemp_val_str(nr, &s, NULL) == 0)
        noderef = s;
    j->seeds = aemp__calloc(nseeds + aemp_val_len(cs) + 1, sizeof *j->seeds);
    if (!j->seeds)
        return AEMP_ENOMEM;
    for (size_t i = 0; i < nseeds; i++)
        if (!(j->seeds[j->nseeds++] = aemp__strdup(seeds[i])))
            return AEMP_ENOMEM;
    for (size_t i = 0; i < aemp_val_len(cs); i++)
        if (aemp_val_str(aemp_val_at(cs, i), &s, NULL) == 0 &&
            !(j->seeds[j->nseeds++] = aemp__strdup(s)))
            return AEMP_ENOMEM;
    /* module_path: directories, before $AEMP_MODULE_PATH */
    const aemp_val_t *mp = aemp_config_get(c, profile, "module_path");
    for (size_t i = 0; i < aemp_val_len(mp); i++) {
        int rc;
        if (aemp_val_str(aemp_val_at(mp, i), &s, NULL) == 0 &&
            (rc = aemp_module_path_add(j->node, s)) < 0)
            return rc;
    }
    const aemp_val_t *sv = aemp_config_get(c, profile, "services");
    j->services = sv ? aemp_val_copy(sv) : aemp_arr_new();
    char host[256];
    j->noderef = aemp__strdup(noderef ? noderef
                                      : host_name(j->node, host, sizeof host));
    if (!j->services || !j->noderef)
        return AEMP_ENOMEM;
    j->slave = !strncmp(j->noderef, "slave/", 6);
    j->client = !strcmp(j->noderef, "anon/");
    return 0;
}

int aemp_initialise(aemp_node_t *n, const aemp_config_t *cfg,
                    const char *profile, const char *noderef,
                    const char *const *seeds, size_t nseeds, aemp_init_fn fn,
                    void *user)
{
    char host[256];
    if (!n || !fn || (nseeds && !seeds) || n->freeing)
        return AEMP_EINVAL;
    if (n->initialised)
        return AEMP_EBUSY;
    if (!profile)
        profile = host_name(n, host, sizeof host);
    int rc = apply_config(n, cfg, profile); /* no such profile: defaults */
    if (rc < 0)
        return rc;
    if (!n->net->secret && !n->net->tls)
        return AEMP_EINVAL; /* nobody could authenticate us */
    init_job_t *j = aemp__calloc(1, sizeof *j);
    if (!j)
        return AEMP_ENOMEM;
    j->node = n;
    j->fn = fn;
    j->user = user;
    if ((rc = job_setup(j, cfg, profile, noderef, seeds, nseeds)) < 0 ||
        (j->slave && !j->nseeds)) {
        job_free(j);
        return rc < 0 ? rc : AEMP_EINVAL; /* a slave needs a master */
    }
    /* the global service listens from the start: a global peer's g_global
     * may come as soon as a seed's link is up */
    if (!j->slave && !aemp__global_get(n)) {
        job_free(j);
        return AEMP_ENOMEM;
    }
    uv_timer_init(n->loop, &j->timer);
    j->timer.data = j;
    n->initialised = true;
    n->net->on_link_ready = on_link_ready;
    n->net->on_link_ready_user = j;
    n->net->active = true;
    if (j->slave)
        rc = start_slave(j);
    else if (j->client)
        next_seed(j); /* done once the seeds are resolved and dialled */
    else
        rc = aemp_resolve(n, j->noderef, on_noderef, j);
    if (rc < 0) {
        n->initialised = false;
        n->net->on_link_ready = NULL;
        n->net->on_link_ready_user = NULL;
        aemp__node_close(n, (uv_handle_t *)&j->timer, on_job_timer_closed);
    }
    return rc;
}

struct waiter {
    bool done;
    int status;
};

static void on_waited(aemp_node_t *n, int status, const char *error, void *u)
{
    struct waiter *w = u;
    w->done = true;
    w->status = status;
    if (error)
        aemp__log(n, AEMP_LOG_ERROR, "initialise: %s", error);
}

int aemp_initialise_wait(aemp_node_t *n, const aemp_config_t *cfg,
                         const char *profile, const char *noderef,
                         const char *const *seeds, size_t nseeds)
{
    struct waiter w = {false, 0};
    if (n && (n->dispatching || n->cur))
        return AEMP_EBUSY;
    int rc = aemp_initialise(n, cfg, profile, noderef, seeds, nseeds,
                             on_waited, &w);
    while (rc == 0 && !w.done)
        uv_run(n->loop, UV_RUN_ONCE);
    return rc < 0 ? rc : w.status;
}
