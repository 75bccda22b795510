/* One node of the global registry's multi-process tests (test_global.c):
 * a node process configured by its command line and driven by commands,
 * one per line, read from a FIFO (--ctl), printing what happens as lines
 * on standard output, flushed at once.
 *
 *   global_node --listen ADDR --secret S [--seed ADDR]... [--global]
 *               [--monitor-timeout T] [--connect-interval C]
 *               [--keepalive K] [--ctl FIFO] [--name ID] [--client]
 *
 * --client makes an "anon/" client node (it listens nowhere; --listen is
 * not needed).  --name ID gives the node a free-text ID as Perl nodes have
 * one ("perlish-P", no address): it listens on ADDR, renames itself to ID
 * and puts ADDR into its 'l entry itself, as a Perl node does — the tests
 * reach it by that ID through the global node's g_find.  Without --name
 * the node goes through aemp_initialise (seeds, global service).
 *
 * Output (every line ends in LF; each event's lines are flushed together):
 *   ready <noderef>                  initialised
 *   master <id>|-  / global 0|1      whenever aemp_master / is_global change
 *   node up|down <id>                node events
 *   port <name> <id>                 a port was made
 *   recv <name> <json>               a message reached a port
 *   down <port> <json reason>        a monitored port died
 *   rc <command> <AEMP_E* | 0>       what a command returned
 *   result <tag> <0|AEMP_E*> <json>  a query's answer
 *   dbmon <tag> {"family":..,"db":..,"added":..,"changed":..,"deleted":..}
 *   mon <tag> add|changed <key> <json value> / mon <tag> deleted <key>
 *   grpmon <tag> {"group":..,"members":..,"added":..,"removed":..}
 *   grp <tag> add|removed <port>
 *
 * Commands (a <port> is the name of a port made by `port`, or any port ID;
 * JSON values default to null):
 *   port <name>                  kill <name> [reason]
 *   set <family> <key> [json]    del <family> <key>
 *   reg <family> <port> [json]   unreg <family> <port>     (db_reg guard)
 *   grpreg <group> <port>        grpunreg <group> <port>
 *   mon <tag> <family>           unmon <tag>
 *   grpmon <tag> <group>         grpunmon <tag>
 *   family|keys|values|grpget <tag> <family> [timeout]
 *   snd <port> <json array>      monport <port>
 *   quit
 * The end of the FIFO (the test went away), SIGTERM and SIGINT quit too:
 * the node is freed and the program exits 0, so that the sanitizers see
 * the whole life of the node. */
#include "global.h"

#include <aemp.h>

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define MAX_ITEMS 256

typedef struct item {
    char *name; /* port name, "family port" of a guard, or a tag */
    char *id;   /* port ID (ports) */
    aemp_mon_t *guard;
} item_t;

typedef struct table {
    item_t it[MAX_ITEMS];
    size_t n;
} table_t;

static struct {
    uv_loop_t loop;
    aemp_node_t *n;
    uv_pipe_t ctl;
    int ctl_open;
    uv_timer_t poll;
    uv_signal_t sig[2];
    char line[65536];
    size_t len;
    char *last_master;
    int last_global;
    table_t ports, regs, grps, mons;
    char *strings[MAX_ITEMS]; /* user pointers to free at the end */
    size_t nstrings;
    int quitting;
} S;

/* A line of output, not flushed yet / flushed with what came before. */
static void line(const char *fmt, ...) AEMP_PRINTF(1, 2);
static void line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

static void out(const char *fmt, ...) AEMP_PRINTF(1, 2);
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

static _Noreturn void die(const char *fmt, ...) AEMP_PRINTF(1, 2);
static _Noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("global_node: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        die("out of memory");
    return p;
}

static char *keep(const char *s)
{
    if (S.nstrings == MAX_ITEMS)
        die("too many strings");
    return S.strings[S.nstrings++] = xstrdup(s);
}

static item_t *tfind(table_t *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->it[i].name && !strcmp(t->it[i].name, name))
            return &t->it[i];
    return NULL;
}

static item_t *tadd(table_t *t, const char *name)
{
    item_t *it = tfind(t, name);
    if (it)
        return it;
    if (t->n == MAX_ITEMS)
        die("too many items");
    it = &t->it[t->n++];
    it->name = xstrdup(name);
    return it;
}

static void tdrop(item_t *it)
{
    free(it->name);
    free(it->id);
    it->name = it->id = NULL;
    it->guard = NULL;
}

/* A value as JSON text (static buffer, valid until the next call). */
static const char *js(const aemp_val_t *v)
{
    static char buf[65536];
    char *t = NULL;
    if (aemp_val_to_json(v, &t) < 0) {
        snprintf(buf, sizeof buf, "\"<unprintable>\"");
    } else {
        snprintf(buf, sizeof buf, "%s", t);
        aemp_free(t);
    }
    return buf;
}

/* JSON text -> a value (yours); NULL text: null. */
static aemp_val_t *parse(const char *text)
{
    if (!text || !*text)
        return aemp_null();
    size_t len = strlen(text);
    char *wrap = malloc(len + 3);
    if (!wrap)
        die("out of memory");
    wrap[0] = '[';
    memcpy(wrap + 1, text, len);
    wrap[len + 1] = ']';
    wrap[len + 2] = 0;
    aemp_msg_t *m = NULL;
    int rc = aemp_msg_decode(&m, AEMP_JSON, wrap, len + 2);
    free(wrap);
    if (rc < 0 || aemp_msg_len(m) != 1) {
        aemp_msg_unref(m);
        return NULL;
    }
    aemp_val_t *v = aemp_val_copy(aemp_msg_at(m, 0));
    aemp_msg_unref(m);
    return v;
}

static const char *rcs(int rc)
{
    return rc == 0 ? "0" : aemp_err_name(rc);
}

static const char *port_id(const char *name)
{
    item_t *it = tfind(&S.ports, name);
    return it ? it->id : name;
}

/* ---- callbacks -------------------------------------------------------------
 */

static int on_recv(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    (void)ctx;
    out("recv %s %s", (const char *)user, js(aemp_msg_val(m)));
    return 0;
}

static void on_port_down(aemp_node_t *n, const char *port,
                         const aemp_msg_t *reason, void *user)
{
    (void)n;
    (void)user;
    out("down %s %s", port, js(aemp_msg_val(reason)));
}

static void on_node(aemp_node_t *n, const char *id, int up,
                    const aemp_msg_t *reason, void *user)
{
    (void)n;
    (void)reason;
    (void)user;
    out("node %s %s", up ? "up" : "down", id);
}

static void on_query(aemp_node_t *n, int status, const aemp_val_t *result,
                     void *user)
{
    (void)n;
    out("result %s %s %s", (const char *)user, rcs(status),
        result ? js(result) : "null");
}

static void print_keys(const char *tag, const char *what, const aemp_val_t *db,
                       const aemp_val_t *keys, int with_value)
{
    for (size_t i = 0; i < aemp_val_len(keys); i++) {
        const char *k = "?";
        aemp_val_str(aemp_val_at(keys, i), &k, NULL);
        if (with_value)
            line("mon %s %s %s %s", tag, what, k, js(aemp_map_get(db, k)));
        else
            line("mon %s %s %s", tag, what, k);
    }
}

static void on_db_mon(aemp_node_t *n, const char *family, const aemp_val_t *db,
                      const aemp_val_t *added, const aemp_val_t *changed,
                      const aemp_val_t *deleted, void *user)
{
    (void)n;
    const char *tag = user;
    char *all[4] = {NULL};
    const aemp_val_t *parts[4] = {db, added, changed, deleted};
    for (int i = 0; i < 4; i++)
        if (aemp_val_to_json(parts[i], &all[i]) < 0)
            die("cannot print a monitor's values");
    fprintf(stdout,
            "dbmon %s {\"family\":\"%s\",\"db\":%s,\"added\":%s,"
            "\"changed\":%s,\"deleted\":%s}\n",
            tag, family, all[0], all[1], all[2], all[3]);
    for (int i = 0; i < 4; i++)
        aemp_free(all[i]);
    print_keys(tag, "add", db, added, 1);
    print_keys(tag, "changed", db, changed, 1);
    print_keys(tag, "deleted", db, deleted, 0);
    fflush(stdout);
}

static void on_grp_mon(aemp_node_t *n, const char *group,
                       const aemp_val_t *members, const aemp_val_t *added,
                       const aemp_val_t *removed, void *user)
{
    (void)n;
    const char *tag = user;
    char *all[3] = {NULL};
    const aemp_val_t *parts[3] = {members, added, removed};
    for (int i = 0; i < 3; i++)
        if (aemp_val_to_json(parts[i], &all[i]) < 0)
            die("cannot print a group monitor's values");
    fprintf(stdout,
            "grpmon %s {\"group\":\"%s\",\"members\":%s,\"added\":%s,"
            "\"removed\":%s}\n",
            tag, group, all[0], all[1], all[2]);
    for (int i = 0; i < 3; i++)
        aemp_free(all[i]);
    for (size_t i = 0; i < aemp_val_len(added); i++) {
        const char *k = "?";
        aemp_val_str(aemp_val_at(added, i), &k, NULL);
        fprintf(stdout, "grp %s add %s\n", tag, k);
    }
    for (size_t i = 0; i < aemp_val_len(removed); i++) {
        const char *k = "?";
        aemp_val_str(aemp_val_at(removed, i), &k, NULL);
        fprintf(stdout, "grp %s removed %s\n", tag, k);
    }
    fflush(stdout);
}

/* aemp_master has no event: it is polled. */
static void on_poll(uv_timer_t *t)
{
    (void)t;
    const char *m = aemp_master(S.n);
    if ((m == NULL) != (S.last_master == NULL) ||
        (m && strcmp(m, S.last_master))) {
        free(S.last_master);
        S.last_master = m ? xstrdup(m) : NULL;
        out("master %s", m ? m : "-");
    }
    int gl = aemp_node_is_global(S.n);
    if (gl != S.last_global) {
        S.last_global = gl;
        out("global %d", gl);
    }
}

/* ---- commands
 * ------------------------------------------------------------------ */

static void quit(void)
{
    if (S.quitting++)
        return;
    aemp_stop(S.n);
}

/* The next space-separated word of *p (NUL-terminated in place), or NULL. */
static char *word(char **p)
{
    char *s = *p;
    while (*s == ' ')
        s++;
    if (!*s)
        return NULL;
    char *e = strchr(s, ' ');
    if (e) {
        *e = 0;
        *p = e + 1;
    } else {
        *p = s + strlen(s);
    }
    return s;
}

static char *rest(char **p)
{
    char *s = *p;
    while (*s == ' ')
        s++;
    return *s ? s : NULL;
}

static void cmd_query(const char *kind, char *args)
{
    char *tag = word(&args), *family = word(&args), *t = word(&args);
    if (!tag || !family) {
        out("rc %s AEMP_EINVAL", kind);
        return;
    }
    double timeout = t ? atof(t) : 5;
    char *user = keep(tag);
    int rc;
    if (!strcmp(kind, "family"))
        rc = aemp_db_family(S.n, family, timeout, on_query, user);
    else if (!strcmp(kind, "keys"))
        rc = aemp_db_keys(S.n, family, timeout, on_query, user);
    else if (!strcmp(kind, "values"))
        rc = aemp_db_values(S.n, family, timeout, on_query, user);
    else
        rc = aemp_grp_get(S.n, family, timeout, on_query, user);
    if (rc < 0)
        out("result %s %s null", tag, rcs(rc));
}

static void command(char *line)
{
    char *p = line;
    char *cmd = word(&p);
    if (!cmd)
        return;
    int rc = 0;
    if (!strcmp(cmd, "quit")) {
        quit();
        return;
    } else if (!strcmp(cmd, "port")) {
        char *name = word(&p);
        const char *id;
        item_t *it = name ? tadd(&S.ports, name) : NULL;
        if (!it || it->id) {
            rc = AEMP_EINVAL;
        } else if ((rc = aemp_port(S.n, on_recv, it->name, &id)) == 0) {
            it->id = xstrdup(id);
            out("port %s %s", name, id);
        }
    } else if (!strcmp(cmd, "kill")) {
        char *name = word(&p), *why = rest(&p);
        rc = name ? why ? aemp_kil(S.n, port_id(name), "s", why)
                        : aemp_kil(S.n, port_id(name), NULL)
                  : AEMP_EINVAL;
    } else if (!strcmp(cmd, "set")) {
        char *f = word(&p), *k = word(&p), *j = rest(&p);
        aemp_val_t *v = parse(j);
        rc = f && k && v ? aemp_db_set(S.n, f, k, &v) : AEMP_EINVAL;
        aemp_val_free(v);
    } else if (!strcmp(cmd, "del")) {
        char *f = word(&p), *k = word(&p);
        rc = f && k ? aemp_db_del(S.n, f, k) : AEMP_EINVAL;
    } else if (!strcmp(cmd, "reg") || !strcmp(cmd, "grpreg")) {
        int grp = cmd[0] == 'g';
        char *f = word(&p), *name = word(&p), *j = rest(&p);
        aemp_val_t *v = grp ? NULL : parse(j);
        if (!f || !name || (!grp && !v)) {
            rc = AEMP_EINVAL;
        } else {
            char key[1024];
            snprintf(key, sizeof key, "%s %s", f, name);
            table_t *t = grp ? &S.grps : &S.regs;
            aemp_mon_t *guard = NULL;
            rc = grp ? aemp_grp_reg(S.n, f, port_id(name), &guard)
                     : aemp_db_reg(S.n, f, port_id(name), &v, &guard);
            if (rc == 0) {
                item_t *it = tadd(t, key);
                aemp_mon_cancel(it->guard); /* a second reg: the old goes */
                it->guard = guard;
            }
        }
        aemp_val_free(v);
    } else if (!strcmp(cmd, "unreg") || !strcmp(cmd, "grpunreg")) {
        char *f = word(&p), *name = word(&p);
        char key[1024];
        snprintf(key, sizeof key, "%s %s", f ? f : "", name ? name : "");
        item_t *it = tfind(cmd[0] == 'g' ? &S.grps : &S.regs, key);
        if (!it) {
            rc = AEMP_EINVAL;
        } else {
            aemp_mon_cancel(it->guard);
            tdrop(it);
        }
    } else if (!strcmp(cmd, "mon") || !strcmp(cmd, "grpmon")) {
        int grp = cmd[0] == 'g';
        char *tag = word(&p), *f = word(&p);
        if (!tag || !f || tfind(&S.mons, tag)) {
            rc = AEMP_EINVAL;
        } else {
            item_t *it = tadd(&S.mons, tag);
            rc = grp ? aemp_grp_mon(S.n, f, on_grp_mon, it->name, &it->guard)
                     : aemp_db_mon(S.n, f, on_db_mon, it->name, &it->guard);
            if (rc < 0)
                tdrop(it);
        }
    } else if (!strcmp(cmd, "unmon") || !strcmp(cmd, "grpunmon")) {
        char *tag = word(&p);
        item_t *it = tag ? tfind(&S.mons, tag) : NULL;
        if (!it) {
            rc = AEMP_EINVAL;
        } else {
            aemp_mon_cancel(it->guard); /* no callback after this */
            tdrop(it);
        }
    } else if (!strcmp(cmd, "family") || !strcmp(cmd, "keys") ||
               !strcmp(cmd, "values") || !strcmp(cmd, "grpget")) {
        cmd_query(cmd, p);
        return;
    } else if (!strcmp(cmd, "snd")) {
        char *to = word(&p), *j = rest(&p);
        aemp_val_t *v = parse(j);
        rc = to && v ? aemp_sndv(S.n, port_id(to), &v) : AEMP_EINVAL;
        aemp_val_free(v);
    } else if (!strcmp(cmd, "monport")) {
        char *to = word(&p);
        rc = to ? aemp_mon_cb(S.n, port_id(to), on_port_down, NULL, NULL)
                : AEMP_EINVAL;
    } else {
        rc = AEMP_EINVAL;
    }
    out("rc %s %s", cmd, rcs(rc));
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = S.line + S.len;
    buf->len = sizeof S.line - 1 - S.len;
}

static void on_ctl(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0) { /* the test went away */
        uv_read_stop(s);
        quit();
        return;
    }
    S.len += (size_t)nread;
    S.line[S.len] = 0;
    char *nl;
    while ((nl = memchr(S.line, '\n', S.len))) {
        *nl = 0;
        command(S.line);
        size_t used = (size_t)(nl + 1 - S.line);
        memmove(S.line, nl + 1, S.len - used);
        S.len -= used;
        S.line[S.len] = 0;
    }
    if (S.len == sizeof S.line - 1)
        die("command line too long");
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    (void)signum;
    quit();
}

static void on_init(aemp_node_t *n, int status, const char *error, void *user)
{
    (void)user;
    if (status < 0)
        die("initialisation: %s: %s", aemp_strerror(status),
            error ? error : "");
    out("ready %s", aemp_noderef(n));
}

static void on_log(aemp_node_t *n, int level, const char *text, void *user)
{
    (void)n;
    (void)user;
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    fprintf(stderr, "%lld.%03d [%d] %s\n", (long long)tv.tv_sec,
            (int)(tv.tv_usec / 1000), level, text);
}

static void on_close(uv_handle_t *h)
{
    (void)h;
}

/* ---- main
 * ------------------------------------------------------------------------ */

static _Noreturn void usage(void)
{
    fputs("usage: global_node --listen ADDR --secret S [--seed ADDR]... "
          "[--global]\n"
          "         [--monitor-timeout T] [--connect-interval C] "
          "[--keepalive K]\n"
          "         [--ctl FIFO] [--name ID] [--client]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *listen = NULL, *secret = NULL, *ctl = NULL, *name = NULL;
    const char *seeds[16];
    size_t nseeds = 0;
    int client = 0;
    aemp_netconf_t conf = {
        .monitor_timeout = 2, .connect_interval = 0.2, .keepalive = 2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--global")) {
            conf.global = 1;
            continue;
        }
        if (!strcmp(a, "--client")) {
            client = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--listen"))
            listen = v;
        else if (!strcmp(a, "--secret"))
            secret = v;
        else if (!strcmp(a, "--seed") && nseeds < 16)
            seeds[nseeds++] = v;
        else if (!strcmp(a, "--monitor-timeout"))
            conf.monitor_timeout = atof(v);
        else if (!strcmp(a, "--connect-interval"))
            conf.connect_interval = atof(v);
        else if (!strcmp(a, "--keepalive"))
            conf.keepalive = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--ctl"))
            ctl = v;
        else if (!strcmp(a, "--name"))
            name = v;
        else
            usage();
    }
    if ((!listen && !client) || !secret || (name && client))
        usage();
    conf.secret = secret;
    /* fully buffered, flushed once per event: the lines of one monitor
     * call reach the test together */
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    if (uv_loop_init(&S.loop))
        die("uv_loop_init");
    int rc = aemp_node_new(&S.n, &S.loop);
    if (rc == 0)
        rc = aemp_node_configure(S.n, &conf);
    if (rc < 0)
        die("node: %s", aemp_strerror(rc));
    aemp_node_set_log(S.n, AEMP_LOG_INFO, on_log, NULL);
    aemp_mon_t *nodes = NULL;
    if ((rc = aemp_mon_nodes(S.n, on_node, NULL, &nodes)) < 0)
        die("aemp_mon_nodes: %s", aemp_strerror(rc));
    if (name) {
        /* as a Perl node with a free-text ID: its addresses in 'l */
        if ((rc = aemp_node_listen(S.n, listen)) < 0 ||
            (rc = aemp__net_rename(S.n, name)) < 0)
            die("listen / rename: %s", aemp_strerror(rc));
        for (size_t i = 0; i < nseeds; i++)
            if ((rc = aemp_node_seed(S.n, seeds[i])) < 0)
                die("seed %s: %s", seeds[i], aemp_strerror(rc));
        aemp__global_t *g = aemp__global_get(S.n);
        aemp_val_t *l = aemp_arr(aemp_str(listen));
        if (!g || !l || aemp__global_set(g, "'l", name, l) < 0)
            die("'l entry");
        for (size_t i = 0; i < nseeds; i++)
            aemp__global_seed(S.n, seeds[i]);
        out("ready %s", aemp_noderef(S.n));
    } else if ((rc = aemp_initialise(S.n, NULL, NULL, client ? "anon/" : listen,
                                     seeds, nseeds, on_init, NULL)) < 0) {
        die("aemp_initialise: %s", aemp_strerror(rc));
    }
    uv_timer_init(&S.loop, &S.poll);
    uv_timer_start(&S.poll, on_poll, 0, 20);
    int sigs[2] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; i++) {
        uv_signal_init(&S.loop, &S.sig[i]);
        uv_signal_start(&S.sig[i], on_signal, sigs[i]);
    }
    if (ctl) {
        int fd = open(ctl, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            die("cannot open %s", ctl);
        uv_pipe_init(&S.loop, &S.ctl, 0);
        if (uv_pipe_open(&S.ctl, fd))
            die("uv_pipe_open %s", ctl);
        S.ctl_open = 1;
        uv_read_start((uv_stream_t *)&S.ctl, on_alloc, on_ctl);
    }
    aemp_run(S.n);

    /* the end: our handles, the node (guards after it, which is allowed),
     * then the loop must close */
    uv_close((uv_handle_t *)&S.poll, on_close);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&S.sig[i], on_close);
    if (S.ctl_open)
        uv_close((uv_handle_t *)&S.ctl, on_close);
    aemp_node_free(S.n);
    aemp_mon_cancel(nodes);
    table_t *tables[] = {&S.ports, &S.regs, &S.grps, &S.mons};
    for (size_t t = 0; t < 4; t++)
        for (size_t i = 0; i < tables[t]->n; i++) {
            aemp_mon_cancel(tables[t]->it[i].guard);
            tdrop(&tables[t]->it[i]);
        }
    while (uv_run(&S.loop, UV_RUN_DEFAULT))
        ;
    rc = uv_loop_close(&S.loop);
    for (size_t i = 0; i < S.nstrings; i++)
        free(S.strings[i]);
    free(S.last_master);
    if (rc) {
        fprintf(stderr, "global_node: the loop did not close: %s\n",
                uv_strerror(rc));
        return 1;
    }
    out("bye");
    return 0;
}
