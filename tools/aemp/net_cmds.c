/* The network commands: run, snd, rpc, mon, trace. */
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static void log_stderr(aemp_node_t *n, int level, const char *text, void *u)
{
    fprintf(stderr, "aemp: %s\n", text);
}

/* key's value in the configuration (the --profile's, else the
 * defaults), malloc'd; a list of strings (framing, auth_accept, ...)
 * joined with commas; NULL if absent. */
static char *config_str(const aemp_config_t *c, const cli_opts_t *o,
                        const char *key)
{
    const aemp_val_t *v = aemp_config_get(c, o->profile, key);
    const char *s;
    if (aemp_val_str(v, &s, NULL) == 0)
        return strdup(s);
    if (aemp_val_type(v) != AEMP_T_ARR)
        return NULL;
    size_t len = 1;
    for (size_t i = 0; i < aemp_val_len(v); i++)
        if (aemp_val_str(aemp_val_at(v, i), &s, NULL) == 0)
            len += strlen(s) + 1;
    char *out = malloc(len);
    if (!out)
        return NULL;
    out[0] = 0;
    for (size_t i = 0; i < aemp_val_len(v); i++)
        if (aemp_val_str(aemp_val_at(v, i), &s, NULL) == 0)
            strcat(strcat(out, out[0] ? "," : ""), s);
    return out;
}

int cli_node(const cli_opts_t *o, aemp_node_t **out)
{
    aemp_config_t *c = NULL;
    char *secret = NULL, *cert = NULL, *ca = NULL, *fr = NULL, *acc = NULL,
         *off = NULL;
    /* the node speaks as the configuration says (a network of Perl 1.x
     * nodes may need auth_offer, one of TLS only auth_accept); --secret,
     * $AEMP_SECRET and --framing win over the file */
    if (aemp_config_open(&c, o->config) == 0) {
        secret = o->secret && *o->secret ? NULL : config_str(c, o, "secret");
        cert = config_str(c, o, "cert");
        ca = config_str(c, o, "ca");
        fr = o->framings ? NULL : config_str(c, o, "framing");
        acc = config_str(c, o, "auth_accept");
        off = config_str(c, o, "auth_offer");
    }
    aemp_config_free(c);
    aemp_netconf_t conf = {.secret = o->secret && *o->secret ? o->secret
                                                              : secret,
                           .cert = cert,
                           .ca = ca,
                           .framings = o->framings ? o->framings : fr,
                           .auth_accept = acc,
                           .auth_offer = off,
                           .monitor_timeout = o->timeout};
    aemp_node_t *n = NULL;
    int rc = 0;
    if (!conf.secret && !conf.cert)
        rc = cli_error("no secret and no certificate: give --secret S, set "
                       "AEMP_SECRET, or configure one (aemp gensecret, aemp "
                       "gencert)");
    else if ((rc = aemp_node_new(&n, NULL)) == 0) {
        /* configuring logs why a certificate cannot be used */
        aemp_node_set_log(n, o->loglevel, log_stderr, NULL);
        if ((rc = aemp_node_configure(n, &conf)) < 0)
            aemp_node_free(n);
    }
    free(secret);
    free(cert);
    free(ca);
    free(fr);
    free(acc);
    free(off);
    if (rc > 0)
        return rc;
    if (rc < 0)
        return cli_error("cannot create a node: %s", aemp_strerror(rc));
    *out = n;
    return 0;
}

static const char *digits(const char *s)
{
    const char *start = s;
    while (*s >= '0' && *s <= '9')
        s++;
    return s > start ? s : NULL;
}

/* A number in JSON's syntax (leading zeros allowed): whether it fits is
 * the decoder's business.  Port IDs, addresses and dates ("127.0.0.1:4040#x",
 * "1.2.3", "2024-01-01") are no numbers and stay strings. */
static int looks_like_number(const char *s)
{
    s = digits(s + (*s == '-'));
    if (s && *s == '.')
        s = digits(s + 1);
    if (s && (*s == 'e' || *s == 'E'))
        s = digits(s + 1 + (s[1] == '+' || s[1] == '-'));
    return s && !*s;
}

/* What the user means as JSON: an array, an object, a quoted string, a
 * number, or one of JSON's three literals. */
static int looks_like_json(const char *a)
{
    if (a[0] && strchr("[{\"", a[0]))
        return 1;
    return looks_like_number(a) || !strcmp(a, "true") || !strcmp(a, "false") ||
           !strcmp(a, "null");
}

/* Why text (len bytes) does not decode, as the streaming reader says it. */
static void json_error(const char *text, size_t len, int rc, char *why,
                       size_t size)
{
    aemp_reader_t *r = NULL;
    aemp_msg_t *m = NULL;
    const char *said = NULL, *at;
    int next = -1;
    unsigned long pos;
    if (aemp_reader_new(&r, AEMP_JSON, NULL) == 0 &&
        aemp_reader_feed(r, text, len) == 0)
        next = aemp_reader_next(r, &m);
    if (next == 0)
        said = "it ends too early";
    else if (next < 0 && r)
        said = aemp_reader_error(r);
    if (!said || !*said)
        said = aemp_strerror(rc);
    /* positions count in the argument, not in the "[...]" around it */
    if ((at = strstr(said, " (at byte ")) &&
        sscanf(at, " (at byte %lu", &pos) == 1 && pos > 0)
        snprintf(why, size, "%.*s (at byte %lu)", (int)(at - said), said,
                 pos - 1);
    else
        snprintf(why, size, "%s", said);
    aemp_msg_unref(m);
    aemp_reader_free(r);
}

/* The argument decoded as the only element of a JSON array: 0 and *out
 * (yours), else -1 with the reason in why. */
static int parse_json_arg(const char *a, aemp_val_t **out, char *why,
                          size_t size)
{
    size_t len = strlen(a);
    char *text = malloc(len + 3);
    aemp_msg_t *m = NULL;
    int rc = AEMP_ENOMEM;
    if (text) {
        snprintf(text, len + 3, "[%s]", a);
        rc = aemp_msg_decode(&m, AEMP_JSON, text, len + 2);
    }
    if (rc == 0 && aemp_msg_len(m) == 1)
        *out = aemp_val_copy(aemp_msg_at(m, 0));
    else if (rc == 0)
        snprintf(why, size, "%s",
                 aemp_msg_len(m) ? "more than one value" : "no value");
    else if (text)
        json_error(text, len + 2, rc, why, size);
    else
        snprintf(why, size, "%s", aemp_strerror(rc));
    aemp_msg_unref(m);
    free(text);
    return rc == 0 && *out ? 0 : -1;
}

int cli_args(const cli_opts_t *o, int argc, char **argv, aemp_val_t **out)
{
    aemp_val_t *arr = aemp_arr_new();
    for (int i = 0; i < argc && arr; i++) {
        aemp_val_t *v = NULL;
        char why[256] = "";
        if (o->raw || !looks_like_json(argv[i])) {
            v = aemp_str(argv[i]);
        } else if (parse_json_arg(argv[i], &v, why, sizeof why) < 0) {
            aemp_val_free(arr);
            cli_error("argument \"%s\" is not valid JSON (%s); to send "
                      "every argument as a string, use --raw",
                      argv[i], why);
            return 2;
        }
        arr = aemp_arr_push(arr, v);
    }
    if (!arr)
        return cli_error("out of memory");
    *out = arr;
    return 0;
}

int cli_print(const aemp_msg_t *m)
{
    char *text;
    size_t len;
    int rc = aemp_msg_encode(m, AEMP_JSON, &text, &len);
    if (rc < 0)
        return cli_error("cannot print the reply: %s", aemp_strerror(rc));
    printf("%s\n", text);
    fflush(stdout);
    aemp_free(text);
    return 0;
}

/* ---- one-shot commands: state shared by their callbacks ---------------- */

typedef struct job {
    aemp_node_t *node;
    int status; /* exit status once done, -1 while running */
    uv_timer_t timer;
    char node_id[1024];
    const char *target; /* rpc: the port asked */
    int print_reason;   /* mon: a fatal death's reason goes to stdout too */
} job_t;

static void job_done(job_t *j, int status)
{
    if (j->status < 0)
        j->status = status;
    aemp_stop(j->node);
}

static void on_timeout(uv_timer_t *t)
{
    job_t *j = t->data;
    cli_error("timed out: no answer from %s", j->node_id);
    job_done(j, 1);
}

/* A death the command cannot go on from, told the same way whichever
 * monitor hears of it first: a transport error (cannot connect,
 * authentication refused, the link lost) is "cannot reach" the node, a
 * port that does not exist "no such port".  1 if it was one of those. */
static int told_death(job_t *j, const char *port, const aemp_msg_t *reason)
{
    const char *kind = "", *why = "";
    aemp_msg_unpack(reason, "s*", &kind);
    int transport = !strcmp(kind, "transport_error");
    if (!transport && strcmp(kind, "no_such_port"))
        return 0;
    if (j->status < 0) {
        if (j->print_reason)
            cli_print(reason);
        aemp_msg_unpack(reason, "s-s*", &kind, &why);
        if (transport)
            cli_error("cannot reach %s: %s", j->node_id, *why ? why : kind);
        else
            cli_error("no such port: %s", port);
    }
    job_done(j, 1);
    return 1;
}

/* A monitor on the target node's port catches transport errors with
 * their reason. */
static void on_node_trouble(aemp_node_t *n, const char *port,
                            const aemp_msg_t *reason, void *user)
{
    job_t *j = user;
    if (!told_death(j, port, reason) && j->status < 0) {
        cli_error("cannot reach %s", j->node_id);
        job_done(j, 1);
    }
}

static int job_finish(job_t *j)
{
    if (j->status < 0)
        aemp_run(j->node);
    uv_close((uv_handle_t *)&j->timer, NULL);
    aemp_node_free(j->node);
    return j->status < 0 ? 1 : j->status;
}

static int job_start(job_t *j, const cli_opts_t *o, const char *port)
{
    memset(j, 0, sizeof *j);
    j->status = -1;
    int rc = aemp_node_of(port, j->node_id, sizeof j->node_id);
    if (rc <= 0)
        return cli_error("\"%s\" is not a port ID or noderef", port);
    if (cli_node(o, &j->node))
        return 1;
    uv_timer_init(aemp_node_loop(j->node), &j->timer);
    j->timer.data = j;
    /* a second after the monitor timeout, which reports the reason */
    uv_timer_start(&j->timer, on_timeout, (uint64_t)(o->timeout * 1000) + 1000,
                   0);
    rc = aemp_mon_cb(j->node, j->node_id, on_node_trouble, j, NULL);
    if (rc < 0) {
        cli_error("%s: %s", j->node_id, aemp_strerror(rc));
        j->status = 1;
        job_finish(j);
        return 1;
    }
    return 0;
}

/* ---- snd --------------------------------------------------------------- */

/* The target node answered a request sent after the message: it has read
 * the message (packets on a link are handled in order), which is now in
 * its queue for the port.  A flush would only say that our kernel took it
 * — and the process exits right after. */
static int on_acknowledged(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    job_done(user, 0);
    return 0;
}

int cmd_snd(const cli_opts_t *o, int argc, char **argv)
{
    if (argc < 2) {
        cli_error("usage: aemp snd <port> <arg...> (a message of at least "
                  "one element)");
        return 2;
    }
    aemp_val_t *msg;
    int rc = cli_args(o, argc - 1, argv + 1, &msg);
    if (rc)
        return rc;
    job_t j;
    if (job_start(&j, o, argv[0])) {
        aemp_val_free(msg);
        return 1;
    }
    const char *ack;
    rc = aemp_sndv(j.node, argv[0], &msg);
    aemp_val_free(msg);
    /* a failure to reach the node ends the job through the monitor on its
     * node port, with the reason (authentication refused, connection
     * refused, ...) */
    if (rc == 0 && (rc = aemp_port(j.node, on_acknowledged, &j, &ack)) == 0)
        rc = aemp_snd(j.node, j.node_id, "ss", "time", ack);
    if (rc < 0) {
        cli_error("snd %s: %s", argv[0], aemp_strerror(rc));
        j.status = 1;
    }
    return job_finish(&j);
}

/* ---- rpc --------------------------------------------------------------- */

/* The answer, the target's death, or the timeout (aemp_cal: the reply
 * port is appended to the message). */
static void on_answer(aemp_node_t *n, int status, const aemp_msg_t *m,
                      void *user)
{
    job_t *j = user;
    char *text = NULL;
    size_t len;
    if (j->status >= 0) /* the node's trouble was told already */
        return;
    if (status == 0) {
        job_done(j, cli_print(m));
        return;
    }
    if (status == AEMP_ETIMEDOUT) {
        cli_error("timed out: no answer from %s", j->target);
    } else if (told_death(j, j->target, m)) {
        return;
    } else {
        aemp_msg_encode(m, AEMP_JSON, &text, &len);
        cli_error("%s is gone without an answer: %s", j->target,
                  text ? text : "?");
        aemp_free(text);
    }
    job_done(j, 1);
}

int cmd_rpc(const cli_opts_t *o, int argc, char **argv)
{
    if (argc < 1) {
        cli_error("usage: aemp rpc <port> [arg...]");
        return 2;
    }
    aemp_val_t *msg;
    int rc = cli_args(o, argc - 1, argv + 1, &msg);
    if (rc)
        return rc;
    job_t j;
    if (job_start(&j, o, argv[0])) {
        aemp_val_free(msg);
        return 1;
    }
    j.target = argv[0];
    uv_timer_stop(&j.timer); /* aemp_cal times the answer */
    rc = aemp_calv(j.node, argv[0], o->timeout + 1, on_answer, &j, &msg);
    aemp_val_free(msg);
    if (rc < 0) {
        cli_error("rpc %s: %s", argv[0], aemp_strerror(rc));
        j.status = 1;
    }
    return job_finish(&j);
}

/* ---- mon --------------------------------------------------------------- */

static void on_port_death(aemp_node_t *n, const char *port,
                          const aemp_msg_t *reason, void *user)
{
    job_t *j = user;
    if (!told_death(j, port, reason) && j->status < 0)
        job_done(j, cli_print(reason));
}

int cmd_mon(const cli_opts_t *o, int argc, char **argv)
{
    if (argc != 1) {
        cli_error("usage: aemp mon <port>");
        return 2;
    }
    job_t j;
    if (job_start(&j, o, argv[0]))
        return 1;
    /* waiting for a death has no natural end: only connecting is timed */
    uv_timer_stop(&j.timer);
    j.print_reason = 1;
    int rc = aemp_mon_cb(j.node, argv[0], on_port_death, &j, NULL);
    if (rc < 0) {
        cli_error("mon %s: %s", argv[0], aemp_strerror(rc));
        j.status = 1;
    }
    return job_finish(&j);
}

/* ---- run --------------------------------------------------------------- */

static void log_run(aemp_node_t *n, int level, const char *text, void *most)
{
    char name[256], port[1024];
    if (level == AEMP_LOG_INFO &&
        sscanf(text, "service %255s started: %1023s", name, port) == 2) {
        printf("service %s %s\n", name, port);
        fflush(stdout);
    }
    if (level <= (int)(intptr_t)most)
        log_stderr(n, level, text, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    aemp_node_t *n = s->data;
    fprintf(stderr, "aemp: %s, shutting down\n",
            signum == SIGINT ? "SIGINT" : "SIGTERM");
    aemp_stop(n);
}

static void on_node_event(aemp_node_t *n, const char *id, int up,
                          const aemp_msg_t *reason, void *user)
{
    const char *why = "";
    if (!up)
        aemp_msg_unpack(reason, "--s*", &why);
    fprintf(stderr, "aemp: node %s %s%s%s\n", id, up ? "up" : "down",
            up ? "" : ": ", why);
}

/* key = text in the profile, in memory only: it wins over the file. */
static void run_override(aemp_config_t *c, const char *profile,
                         const char *key, const char *text)
{
    aemp_val_t *v = aemp_str(text);
    if (aemp_config_set(c, profile, key, &v) < 0)
        aemp_val_free(v);
}

/* Command-line settings win over the file; a missing secret is generated
 * and saved (in the defaults), so a fresh machine just works. */
static int run_config(const cli_opts_t *o, aemp_config_t *c,
                      const char *profile, const char *noderef)
{
    /* a node with a certificate joins a TLS network without a secret */
    if (!o->secret && !aemp_config_get(c, profile, "secret") &&
        !aemp_config_get(c, profile, "cert")) {
        char *s = cli_gensecret();
        aemp_val_t *v = s ? aemp_str(s) : NULL;
        free(s);
        if (!v || aemp_config_set(c, NULL, "secret", &v) < 0 ||
            aemp_config_save(c) < 0) {
            aemp_val_free(v);
            return cli_error("no secret configured, and cannot save a new "
                             "one: %s", aemp_config_error(c));
        }
        fprintf(stderr, "aemp: no secret was configured: generated one and "
                        "saved it in %s\n", aemp_config_path(c));
    }
    if (o->secret)
        run_override(c, profile, "secret", o->secret);
    if (o->framings)
        run_override(c, profile, "framing", o->framings);
    if (noderef)
        run_override(c, profile, "noderef", noderef);
    aemp_val_t *global = o->global ? aemp_bool(1) : NULL;
    if (global && aemp_config_set(c, profile, "global", &global) < 0) {
        aemp_val_free(global);
        return cli_error("--global: %s", aemp_config_error(c));
    }
    return 0;
}

struct run_state {
    int status;
    int done;
};

static void on_initialised(aemp_node_t *n, int status, const char *error,
                           void *user)
{
    struct run_state *r = user;
    r->done = 1;
    r->status = status;
    if (status < 0) {
        cli_error("cannot start the node: %s", error);
        aemp_stop(n);
        return;
    }
    printf("%s\n", aemp_noderef(n));
    fflush(stdout);
}

int cmd_run(const cli_opts_t *o, int argc, char **argv)
{
    aemp_config_t *c;
    aemp_node_t *n;
    if (cli_config(o, &c))
        return 1;
    char profile[256];
    cli_profile(o, c, profile, sizeof profile);
    /* a noderef on the command line; else the profile's; else the node
     * name with port 4040 (the empty component) */
    const char *noderef = argc > 0 ? argv[0] : NULL;
    if (!noderef && !aemp_config_get(c, profile, "noderef"))
        noderef = "";
    int rc = run_config(o, c, profile, noderef);
    if (rc == 0 && (rc = aemp_node_new(&n, NULL)) < 0)
        rc = cli_error("%s", aemp_strerror(rc));
    if (rc) {
        aemp_config_free(c);
        return 1;
    }
    /* the log's "service <name> started: <port>" lines go to stdout too,
     * as "service <name> <port>": how scripts find a service's port */
    aemp_node_set_log(n,
                      o->loglevel > AEMP_LOG_INFO ? o->loglevel : AEMP_LOG_INFO,
                      log_run, (void *)(intptr_t)o->loglevel);
    struct run_state r = {0, 0};
    rc = aemp_mon_nodes(n, on_node_event, NULL, NULL);
    for (int k = 0; rc == 0 && k < o->nmodule_path; k++)
        rc = aemp_module_path_add(n, o->module_path[k]);
    if (rc == 0)
        rc = aemp_initialise(n, c, profile, noderef,
                             (const char *const *)argv + (argc > 0),
                             argc > 0 ? (size_t)argc - 1 : 0, on_initialised,
                             &r);
    aemp_config_free(c);
    if (rc < 0) {
        aemp_node_free(n);
        return cli_error("cannot start the node: %s", aemp_strerror(rc));
    }
    uv_signal_t sigint, sigterm;
    uv_signal_init(aemp_node_loop(n), &sigint);
    uv_signal_init(aemp_node_loop(n), &sigterm);
    sigint.data = sigterm.data = n;
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    aemp_run(n);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sigterm, NULL);
    aemp_node_free(n);
    return r.status < 0 || !r.done;
}

/* ---- trace --------------------------------------------------------------- */

#define TRACE_MAX 256

struct trace;

/* A node visited: asked known_nodes, and aemp::global before that. */
struct tnode {
    struct trace *t;
    char *id;
    int asked, told; /* aemp::global sent / its line printed */
};

struct trace {
    aemp_node_t *node;
    const char *me, *gme, *start; /* gme: for the answers to aemp::global */
    struct tnode seen[TRACE_MAX];
    int nseen, pending, gpending, ending;
    uv_timer_t timer;
};

static struct tnode *trace_find(struct trace *t, const char *id)
{
    for (int i = 0; i < t->nseen; i++)
        if (!strcmp(t->seen[i].id, id))
            return &t->seen[i];
    return NULL;
}

static void trace_check_end(struct trace *t)
{
    if (t->pending == 0 && t->gpending == 0) {
        t->ending = 1;
        aemp_stop(t->node);
    }
}

/* Starts tn's "<id> global: " line, once (0 if it was printed). */
static int trace_settle(struct tnode *tn)
{
    if (tn->told || !tn->asked)
        return 0;
    tn->told = 1;
    tn->t->gpending--;
    printf("%s global: ", tn->id);
    return 1;
}

static void trace_unknown(struct tnode *tn, const char *why)
{
    if (trace_settle(tn))
        printf("unknown (%s)\n", why);
}

static void trace_visit(struct trace *t, const char *id);

/* " a b c" of an array of IDs, or " none". */
static void trace_ids(const aemp_val_t *ids)
{
    const char *id;
    if (!aemp_val_len(ids))
        printf(" none");
    for (size_t i = 0; i < aemp_val_len(ids); i++)
        if (aemp_val_str(aemp_val_at(ids, i), &id, NULL) == 0)
            printf(" %s", id);
}

static void trace_visit_ids(struct trace *t, const aemp_val_t *ids)
{
    const char *id;
    for (size_t i = 0; i < aemp_val_len(ids); i++)
        if (aemp_val_str(aemp_val_at(ids, i), &id, NULL) == 0)
            trace_visit(t, id);
}

/* Reply [<node asked>, {"global", "master", "attached", "globals"}] to
 * aemp::global.  Perl nodes do not answer. */
static int on_global_info(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    struct trace *t = user;
    const aemp_val_t *info = aemp_msg_at(m, 1);
    const char *id, *master = NULL;
    int global = 0;
    if (t->ending || aemp_msg_unpack(m, "s*", &id) < 0)
        return 0;
    struct tnode *tn = trace_find(t, id);
    if (!tn || tn->told)
        return 0;
    if (aemp_val_type(info) != AEMP_T_MAP) {
        trace_unknown(tn, "its answer to aemp::global is no map");
        trace_check_end(t);
        return 0;
    }
    aemp_val_bool(aemp_map_get(info, "global"), &global);
    aemp_val_str(aemp_map_get(info, "master"), &master, NULL);
    trace_settle(tn);
    if (global) {
        printf("yes; attached:");
        trace_ids(aemp_map_get(info, "attached"));
        printf("; other globals:");
        trace_ids(aemp_map_get(info, "globals"));
    } else {
        printf("no; master: %s", master ? master : "none");
    }
    printf("\n");
    if (master)
        trace_visit(t, master);
    trace_visit_ids(t, aemp_map_get(info, "attached"));
    trace_visit_ids(t, aemp_map_get(info, "globals"));
    trace_check_end(t);
    return 0;
}

/* Asks node id whether it is global, then whom it knows; slaves (ours
 * included) are asked through their masters' relays like any node,
 * anonymous nodes cannot be.  Both answers name the node asked (the reply
 * target's extra element).  A node answers in order: one that answers
 * known_nodes but has said nothing to aemp::global does not know it. */
static void trace_visit(struct trace *t, const char *id)
{
    if (trace_find(t, id) || t->nseen == TRACE_MAX ||
        !strncmp(id, "anon/", 5) || !strcmp(id, aemp_noderef(t->node)))
        return;
    struct tnode *tn = &t->seen[t->nseen];
    if (!(tn->id = strdup(id)))
        return;
    tn->t = t;
    t->nseen++;
    if (aemp_snd(t->node, id, "sss", "aemp::global", t->gme, id) == 0) {
        tn->asked = 1;
        t->gpending++;
    }
    if (aemp_snd(t->node, id, "sss", "known_nodes", t->me, id) == 0)
        t->pending++;
}

/* Reply [<node asked>, <known node IDs>...]. */
static int on_known(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    struct trace *t = user;
    const char *from, *id;
    if (t->ending || aemp_msg_unpack(m, "s*", &from) < 0)
        return 0;
    printf("%s knows:", from);
    for (size_t i = 1; i < aemp_msg_len(m); i++)
        if (aemp_val_str(aemp_msg_at(m, i), &id, NULL) == 0)
            printf(" %s", id);
    printf("\n");
    struct tnode *tn = trace_find(t, from);
    if (tn)
        trace_unknown(tn, "no answer to aemp::global");
    for (size_t i = 1; i < aemp_msg_len(m); i++)
        if (aemp_val_str(aemp_msg_at(m, i), &id, NULL) == 0)
            trace_visit(t, id);
    t->pending--;
    trace_check_end(t);
    return 0;
}

static void on_trace_timeout(uv_timer_t *h)
{
    struct trace *t = h->data;
    for (int i = 0; i < t->nseen; i++)
        trace_unknown(&t->seen[i], "no answer in time");
    if (t->pending)
        cli_error("%d node(s) did not answer known_nodes in time (Perl 2.x "
                  "nodes do not know that request)",
                  t->pending);
    t->ending = 1;
    aemp_stop(t->node);
}

/* The node we start from cannot be reached (or its link failed). */
static void on_start_lost(aemp_node_t *n, const char *port,
                          const aemp_msg_t *reason, void *user)
{
    struct trace *t = user;
    const char *kind = "", *id = "", *why = "";
    if (t->ending)
        return;
    aemp_msg_unpack(reason, "sss*", &kind, &id, &why);
    cli_error("cannot reach %s: %s", t->start, *why ? why : kind);
    t->pending = -1;
    t->ending = 1;
    aemp_stop(n);
}

int cmd_trace(const cli_opts_t *o, int argc, char **argv)
{
    if (argc != 1)
        return cli_error("usage: aemp trace <noderef>");
    struct trace t = {.start = argv[0]};
    if (cli_node(o, &t.node))
        return 1;
    uv_timer_init(aemp_node_loop(t.node), &t.timer);
    t.timer.data = &t;
    /* a plain client, as Perl nodes of either version understand it:
     * slaves answer through their masters' relays, which reach us over
     * our link to them */
    int rc = aemp_port(t.node, on_known, &t, &t.me);
    if (rc == 0)
        rc = aemp_port(t.node, on_global_info, &t, &t.gme);
    if (rc == 0)
        rc = aemp_mon_cb(t.node, t.start, on_start_lost, &t, NULL);
    if (rc < 0) {
        cli_error("%s: %s", t.start, aemp_strerror(rc));
    } else {
        /* reaching the first node may take the whole timeout (then its
         * monitor says why); the walk gets as long again */
        uv_timer_start(&t.timer, on_trace_timeout,
                       (uint64_t)(2 * o->timeout * 1000), 0);
        trace_visit(&t, t.start);
        if (t.pending || t.gpending)
            aemp_run(t.node);
    }
    int status = t.pending != 0 || rc < 0;
    t.ending = 1;
    uv_close((uv_handle_t *)&t.timer, NULL);
    aemp_node_free(t.node);
    for (int i = 0; i < t.nseen; i++)
        free(t.seen[i].id);
    return status;
}
