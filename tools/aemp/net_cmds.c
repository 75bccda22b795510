/* The network commands: run, snd, rpc, mon. */
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

int cli_node(const cli_opts_t *o, aemp_node_t **out)
{
    if (!o->secret || !*o->secret)
        return cli_error("no secret: give --secret S or set AEMP_SECRET");
    aemp_netconf_t conf = {.secret = o->secret,
                           .framings = o->framings,
                           .monitor_timeout = o->timeout};
    aemp_node_t *n;
    int rc = aemp_node_new(&n, NULL);
    if (rc == 0 && (rc = aemp_node_configure(n, &conf)) < 0)
        aemp_node_free(n);
    if (rc < 0)
        return cli_error("cannot create a node: %s", aemp_strerror(rc));
    aemp_node_set_log(n, o->verbose ? AEMP_LOG_INFO : AEMP_LOG_WARN,
                      log_stderr, NULL);
    *out = n;
    return 0;
}

aemp_val_t *cli_args(int argc, char **argv)
{
    aemp_val_t *arr = aemp_arr_new();
    for (int i = 0; i < argc && arr; i++) {
        /* a JSON value is whatever decodes as the only element of [...] */
        size_t len = strlen(argv[i]);
        char *wrapped = malloc(len + 3);
        aemp_msg_t *m = NULL;
        if (wrapped) {
            snprintf(wrapped, len + 3, "[%s]", argv[i]);
            if (aemp_msg_decode(&m, AEMP_JSON, wrapped, len + 2) < 0 ||
                aemp_msg_len(m) != 1) {
                aemp_msg_unref(m);
                m = NULL;
            }
        }
        arr = aemp_arr_push(arr, m ? aemp_val_copy(aemp_msg_at(m, 0))
                                   : aemp_str(argv[i]));
        aemp_msg_unref(m);
        free(wrapped);
    }
    return arr;
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

/* A monitor on the target node's port catches transport errors (cannot
 * connect, authentication refused) with their reason. */
static void on_node_trouble(aemp_node_t *n, const char *port,
                            const aemp_msg_t *reason, void *user)
{
    job_t *j = user;
    const char *kind = "", *why = "";
    aemp_msg_unpack(reason, "s-s*", &kind, &why);
    if (j->status < 0) {
        cli_error("cannot reach %s: %s", j->node_id, *why ? why : kind);
        job_done(j, 1);
    }
}

static int job_start(job_t *j, const cli_opts_t *o, const char *port)
{
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
    if (rc < 0)
        return cli_error("%s: %s", j->node_id, aemp_strerror(rc));
    return 0;
}

static int job_finish(job_t *j)
{
    if (j->status < 0)
        aemp_run(j->node);
    uv_close((uv_handle_t *)&j->timer, NULL);
    aemp_node_free(j->node);
    return j->status < 0 ? 1 : j->status;
}

/* ---- snd --------------------------------------------------------------- */

static void on_flushed(aemp_node_t *n, int status, void *user)
{
    job_t *j = user;
    if (status < 0 && j->status < 0)
        cli_error("message to %s not delivered: %s", j->node_id,
                  aemp_strerror(status));
    job_done(j, status < 0);
}

int cmd_snd(const cli_opts_t *o, int argc, char **argv)
{
    if (argc < 1)
        return cli_error("usage: aemp snd <port> <arg...>");
    job_t j;
    if (job_start(&j, o, argv[0]))
        return 1;
    aemp_val_t *msg = cli_args(argc - 1, argv + 1);
    int rc = aemp_sndv(j.node, argv[0], &msg);
    aemp_val_free(msg);
    if (rc == 0)
        rc = aemp_flush(j.node, j.node_id, on_flushed, &j);
    if (rc < 0) {
        cli_error("snd %s: %s", argv[0], aemp_strerror(rc));
        j.status = 1;
    }
    return job_finish(&j);
}

/* ---- rpc --------------------------------------------------------------- */

static int on_reply(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    job_t *j = user;
    j->status = cli_print(m);
    aemp_stop(j->node);
    return 0;
}

int cmd_rpc(const cli_opts_t *o, int argc, char **argv)
{
    if (argc < 1)
        return cli_error("usage: aemp rpc <port> <arg...>");
    job_t j;
    if (job_start(&j, o, argv[0]))
        return 1;
    const char *reply;
    aemp_val_t *msg = cli_args(argc - 1, argv + 1);
    int rc = aemp_port(j.node, on_reply, &j, &reply);
    if (rc == 0)
        msg = aemp_arr_push(msg, aemp_str(reply));
    if (rc == 0 && (rc = aemp_sndv(j.node, argv[0], &msg)) == 0 &&
        strchr(argv[0], '#'))
        rc = aemp_mon_cb(j.node, argv[0], on_node_trouble, &j, NULL);
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
    job_done(j, cli_print(reason));
}

int cmd_mon(const cli_opts_t *o, int argc, char **argv)
{
    if (argc != 1)
        return cli_error("usage: aemp mon <port>");
    job_t j;
    if (job_start(&j, o, argv[0]))
        return 1;
    /* waiting for a death has no natural end: only connecting is timed */
    uv_timer_stop(&j.timer);
    int rc = aemp_mon_cb(j.node, argv[0], on_port_death, &j, NULL);
    if (rc < 0) {
        cli_error("mon %s: %s", argv[0], aemp_strerror(rc));
        j.status = 1;
    }
    return job_finish(&j);
}

/* ---- run --------------------------------------------------------------- */

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

int cmd_run(const cli_opts_t *o, int argc, char **argv)
{
    if (argc < 1)
        return cli_error("usage: aemp run <noderef> [seed...]");
    aemp_node_t *n;
    if (cli_node(o, &n))
        return 1;
    int rc = aemp_node_listen(n, argv[0]);
    for (int i = 1; rc == 0 && i < argc; i++)
        if ((rc = aemp_node_seed(n, argv[i])) < 0)
            cli_error("seed %s: %s", argv[i], aemp_strerror(rc));
    if (rc == 0)
        rc = aemp_mon_nodes(n, on_node_event, NULL, NULL);
    if (rc < 0) {
        aemp_node_free(n);
        return cli_error("cannot run %s: %s", argv[0], aemp_strerror(rc));
    }
    printf("%s\n", aemp_noderef(n));
    fflush(stdout);
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
    return 0;
}
