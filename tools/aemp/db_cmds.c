/* The shared database commands, db and grp: each talks to the network
 * through the node named first.  The tool's own node attaches to a global
 * node as any node does (it takes as its master a global node that tells
 * it g_global when their link comes up): the named node if it is global,
 * else the master that node names when asked aemp::global. */
#include "cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static const char db_usage[] =
    "usage: aemp db <node> get <family> [key]\n"
    "       aemp db <node> keys <family>\n"
    "       aemp db <node> set <family> <key> <value>\n"
    "       aemp db <node> del <family> <key>\n"
    "       aemp db <node> mon <family>\n";

static const char grp_usage[] = "usage: aemp grp <node> get <group>\n"
                                "       aemp grp <node> mon <group>\n";

enum op { OP_GET, OP_KEYS, OP_SET, OP_DEL, OP_MON, OP_GRP_GET, OP_GRP_MON };

static const struct sub {
    const char *name;
    int grp; /* a grp subcommand, else a db one */
    enum op op;
    int min, max; /* arguments after the subcommand */
} subs[] = {
    {"get", 0, OP_GET, 1, 2},     {"keys", 0, OP_KEYS, 1, 1},
    {"set", 0, OP_SET, 3, 3},     {"del", 0, OP_DEL, 2, 2},
    {"mon", 0, OP_MON, 1, 1},     {"get", 1, OP_GRP_GET, 1, 1},
    {"mon", 1, OP_GRP_MON, 1, 1},
};

typedef struct gjob {
    aemp_node_t *node;
    const cli_opts_t *o;
    enum op op;
    const char *cmd;       /* "db set", "grp mon", ... */
    const char *via;       /* the node named, as named */
    char via_id[1024];     /* its node ID */
    char via_master[1024]; /* the master it named, "" if none */
    const char *family, *key;
    aemp_val_t *want; /* set: the value */
    aemp_val_t *seen; /* set: the master's value of key, or NULL */
    int held;         /* set: the master holds want; del: key */
    int acked;        /* set, del: the node has read the request */
    int primed;       /* the monitor's first call has come */
    int status;       /* the exit status once done, -1 before */
    uv_timer_t timer; /* set, del, mon: the deadline */
    uv_signal_t sigint, sigterm;
} gjob_t;

/* ---- values as the user sees them -------------------------------------- */

/* Whether s is UTF-8 (no overlong forms, no surrogates, at most U+10FFFF). */
static int utf8_ok(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i], more;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            more = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            more = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            more = 3, cp = c & 0x07;
        else
            return 0;
        if (len - i <= more)
            return 0;
        for (unsigned k = 1; k <= more; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((more == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (more == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += more + 1;
    }
    return 1;
}

/* A copy of v in which byte strings that are UTF-8 are text: Perl 2.x
 * nodes send their strings as CBOR byte strings, which JSON would show
 * byte by byte (U+0080..U+00FF). */
static aemp_val_t *as_text(const aemp_val_t *v)
{
    const void *p;
    const char *k;
    const aemp_val_t *e;
    size_t len, n = aemp_val_len(v);
    aemp_val_t *out;
    switch (aemp_val_type(v)) {
    case AEMP_T_BYTES:
        aemp_val_bytes(v, &p, &len);
        return utf8_ok(p, len) ? aemp_strn(p, len) : aemp_val_copy(v);
    case AEMP_T_ARR:
        out = aemp_arr_new();
        for (size_t i = 0; out && i < n; i++)
            out = aemp_arr_push(out, as_text(aemp_val_at(v, i)));
        return out;
    case AEMP_T_MAP:
        out = aemp_map_new();
        for (size_t i = 0; out && i < n; i++)
            if (aemp_map_at(v, i, &k, &e) == 0)
                out = aemp_map_set(out, k, as_text(e));
        return out;
    default: return aemp_val_copy(v);
    }
}

static int is_text(const aemp_val_t *v, const void **p, size_t *len)
{
    if (aemp_val_type(v) == AEMP_T_STR)
        return aemp_val_str(v, (const char **)p, len) == 0;
    return aemp_val_bytes(v, p, len) == 0;
}

/* Whether the master's value a is the value b: strings by their bytes
 * (text or byte string alike), numbers by value, maps whatever the order
 * of their keys (a Perl node's hashes keep none). */
static int val_same(const aemp_val_t *a, const aemp_val_t *b)
{
    const void *pa, *pb;
    size_t la, lb;
    int64_t ia, ib;
    double da, db;
    if (is_text(a, &pa, &la) && is_text(b, &pb, &lb))
        return la == lb && !memcmp(pa, pb, la);
    if (aemp_val_int(a, &ia) == 0 && aemp_val_int(b, &ib) == 0)
        return ia == ib;
    if (aemp_val_double(a, &da) == 0 && aemp_val_double(b, &db) == 0)
        return da == db;
    aemp_type_t t = aemp_val_type(a);
    if (t != aemp_val_type(b) || (t != AEMP_T_ARR && t != AEMP_T_MAP))
        return aemp_val_equal(a, b);
    size_t n = aemp_val_len(a);
    if (n != aemp_val_len(b))
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        const aemp_val_t *e;
        if (t == AEMP_T_ARR
                ? !val_same(aemp_val_at(a, i), aemp_val_at(b, i))
                : aemp_map_at(a, i, &k, &e) < 0 || !aemp_map_get(b, k) ||
                      !val_same(e, aemp_map_get(b, k)))
            return 0;
    }
    return 1;
}

/* v as JSON text (yours: aemp_free), as print_val shows it. */
static int json_of(const aemp_val_t *v, char **out)
{
    aemp_val_t *text = as_text(v);
    int rc = text ? aemp_val_to_json(text, out) : AEMP_ENOMEM;
    aemp_val_free(text);
    return rc;
}

/* Prints v (taken) as one line of JSON.  0, or 1 after saying why. */
static int print_val(aemp_val_t *v)
{
    char *json = NULL;
    int rc = v ? json_of(v, &json) : AEMP_ENOMEM;
    aemp_val_free(v);
    if (rc < 0)
        return cli_error("cannot print the value: %s", aemp_strerror(rc));
    printf("%s\n", json);
    fflush(stdout);
    aemp_free(json);
    return 0;
}

/* ---- the job ---------------------------------------------------------------
 */

static void done(gjob_t *j, int status)
{
    if (j->status < 0) {
        j->status = status;
        aemp_stop(j->node);
    }
}

static void fail(gjob_t *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(gjob_t *j, const char *fmt, ...)
{
    if (j->status >= 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("aemp: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    done(j, 1);
}

/* A cal ended with status ENOPORT: the node's link failed, with reason. */
static void unreachable(gjob_t *j, const char *who, const aemp_msg_t *reason)
{
    const char *kind = "", *id = "", *why = "";
    aemp_msg_unpack(reason, "s*", &kind);
    aemp_msg_unpack(reason, "sss*", &kind, &id, &why);
    fail(j, "cannot reach %s: %s", who, *why ? why : *kind ? kind : "gone");
}

/* set and del end when the node has read the request and the master's
 * view shows its effect. */
static void check_done(gjob_t *j)
{
    if (j->acked && j->primed &&
        (j->op == OP_SET   ? j->held
         : j->op == OP_DEL ? !j->held
                           : 0))
        done(j, 0);
}

/* ---- finding a master --------------------------------------------------- */

static int info_of(const aemp_msg_t *m, int *global, const char **master)
{
    const aemp_val_t *info = aemp_msg_at(m, 0);
    *global = 0;
    *master = NULL;
    if (aemp_val_type(info) != AEMP_T_MAP)
        return -1;
    aemp_val_bool(aemp_map_get(info, "global"), global);
    aemp_val_str(aemp_map_get(info, "master"), master, NULL);
    return 0;
}

/* The master the named node named: its link coming up brings its
 * g_global, before this answer. */
static void on_master_info(aemp_node_t *n, int status, const aemp_msg_t *m,
                           void *user)
{
    gjob_t *j = user;
    if (j->status >= 0 || aemp_master(n))
        return;
    if (status == AEMP_ENOPORT) {
        char who[2200];
        snprintf(who, sizeof who, "%s (the master of %s)", j->via_master,
                 j->via_id);
        unreachable(j, who, m);
    } else if (status == AEMP_ETIMEDOUT) {
        fail(j, "%s, the master of %s, did not answer", j->via_master,
             j->via_id);
    } else {
        fail(j, "%s, the master of %s, is not a global node", j->via_master,
             j->via_id);
    }
}

/* The named node's answer to aemp::global. */
static void on_via_info(aemp_node_t *n, int status, const aemp_msg_t *m,
                        void *user)
{
    gjob_t *j = user;
    int global;
    const char *master;
    if (j->status >= 0)
        return;
    if (status == AEMP_ENOPORT) {
        unreachable(j, j->via_id, m);
        return;
    }
    if (status == AEMP_ETIMEDOUT || info_of(m, &global, &master) < 0) {
        /* a Perl node: it attached us itself if it is global */
        if (!aemp_master(n))
            fail(j,
                 "%s is not a global node and does not name its master; "
                 "name a global node",
                 j->via);
        return;
    }
    if (global || aemp_master(n))
        return; /* its g_global made it our master */
    if (!master) {
        fail(j,
             "%s is not a global node and has no master (it is attached "
             "to no global node); name a global node",
             j->via);
        return;
    }
    snprintf(j->via_master, sizeof j->via_master, "%s", master);
    /* a master whose ID is no address (a Perl node's free text) is reached
     * at the addresses the named node knows for it: its g_global then
     * attaches us */
    const char *at = NULL;
    aemp_val_str(aemp_map_get(aemp_msg_at(m, 0), "master_at"), &at, NULL);
    int rc = aemp_cal(n, at && *at ? at : j->via_master, j->o->timeout,
                      on_master_info, j, "s", "aemp::global");
    if (rc < 0)
        fail(j, "%s: %s", j->via_master, aemp_strerror(rc));
}

/* ---- answers ------------------------------------------------------------- */

/* Queries: the master answered, or no master did in time. */
static int query_failed(gjob_t *j, int status)
{
    if (status == 0)
        return 0;
    if (status == AEMP_ETIMEDOUT && aemp_master(j->node))
        fail(j, "timed out: global node %s did not answer",
             aemp_master(j->node));
    else if (status == AEMP_ETIMEDOUT)
        fail(j, "timed out: no global node took us through %s", j->via);
    else
        fail(j, "%s: %s", j->cmd, aemp_strerror(status));
    return 1;
}

static void on_family(aemp_node_t *n, int status, const aemp_val_t *fam,
                      void *user)
{
    gjob_t *j = user;
    if (j->status >= 0 || query_failed(j, status))
        return;
    if (!j->key) {
        done(j, print_val(aemp_val_copy(fam)));
        return;
    }
    const aemp_val_t *v = aemp_map_get(fam, j->key);
    if (v)
        done(j, print_val(aemp_val_copy(v)));
    else
        fail(j, "no key \"%s\" in family \"%s\"", j->key, j->family);
}

static void on_array(aemp_node_t *n, int status, const aemp_val_t *arr,
                     void *user)
{
    gjob_t *j = user;
    if (j->status < 0 && !query_failed(j, status))
        done(j, print_val(aemp_val_copy(arr)));
}

/* ["add", key, value] / ["chg", key, value] / ["del", key] per key. */
static void print_changes(const char *kind, const aemp_val_t *keys,
                          const aemp_val_t *db)
{
    for (size_t i = 0; i < aemp_val_len(keys); i++) {
        const char *k;
        if (aemp_val_str(aemp_val_at(keys, i), &k, NULL) < 0)
            continue;
        const aemp_val_t *v = aemp_map_get(db, k);
        aemp_val_t *line = aemp_arr(aemp_str(kind), aemp_str(k));
        if (line && *kind != 'd')
            line = aemp_arr_push(line, v ? aemp_val_copy(v) : aemp_null());
        print_val(line);
    }
}

static void print_ready(gjob_t *j)
{
    if (!j->primed) {
        j->primed = 1;
        uv_timer_stop(&j->timer);
        print_val(aemp_arr(aemp_str("ready")));
    }
}

static void on_db_change(aemp_node_t *n, const char *family,
                         const aemp_val_t *db, const aemp_val_t *added,
                         const aemp_val_t *changed, const aemp_val_t *deleted,
                         void *user)
{
    gjob_t *j = user;
    if (j->status >= 0)
        return;
    if (j->op == OP_MON) {
        print_changes("add", added, db);
        print_changes("chg", changed, db);
        print_changes("del", deleted, db);
        print_ready(j);
        return;
    }
    const aemp_val_t *v = aemp_map_get(db, j->key);
    aemp_val_free(j->seen);
    j->seen = v ? aemp_val_copy(v) : NULL;
    j->held = j->op == OP_SET ? v && val_same(v, j->want) : v != NULL;
    j->primed = 1;
    check_done(j);
}

static void on_grp_change(aemp_node_t *n, const char *group,
                          const aemp_val_t *members, const aemp_val_t *added,
                          const aemp_val_t *removed, void *user)
{
    gjob_t *j = user;
    if (j->status >= 0)
        return;
    for (size_t i = 0; i < aemp_val_len(added); i++)
        print_val(
            aemp_arr(aemp_str("add"), aemp_val_copy(aemp_val_at(added, i))));
    for (size_t i = 0; i < aemp_val_len(removed); i++)
        print_val(
            aemp_arr(aemp_str("del"), aemp_val_copy(aemp_val_at(removed, i))));
    print_ready(j);
}

/* set, del: the node answered "time", sent after the request. */
static void on_ack(aemp_node_t *n, int status, const aemp_msg_t *m, void *user)
{
    gjob_t *j = user;
    if (j->status >= 0)
        return;
    if (status == AEMP_ENOPORT) {
        unreachable(j, j->via_id, m);
    } else if (status == AEMP_ETIMEDOUT) {
        fail(j, "timed out: no answer from %s", j->via_id);
    } else {
        j->acked = 1;
        check_done(j);
    }
}

/* set, del, mon: what is still missing at the deadline. */
static void on_deadline(uv_timer_t *t)
{
    gjob_t *j = t->data;
    const char *m = aemp_master(j->node);
    char *seen = NULL, *want = NULL;
    if (!m)
        fail(j, "timed out: no global node took us through %s", j->via);
    else if (!j->acked && (j->op == OP_SET || j->op == OP_DEL))
        fail(j, "timed out: no answer from %s", j->via_id);
    else if (!j->primed || j->op == OP_MON || j->op == OP_GRP_MON)
        fail(j, "timed out: global node %s sent no snapshot of %s", m,
             j->family);
    else if (j->op == OP_DEL)
        fail(j,
             "timed out: global node %s still holds %s/%s (another node "
             "holds it too?)",
             m, j->family, j->key);
    else if (j->seen && json_of(j->seen, &seen) == 0 &&
             json_of(j->want, &want) == 0)
        fail(j, "timed out: global node %s holds %s/%s = %s, not %s", m,
             j->family, j->key, seen, want);
    else
        fail(j, "timed out: global node %s does not hold %s/%s", m, j->family,
             j->key);
    aemp_free(want);
    aemp_free(seen);
}

/* mon: a signal ends it (0); so does the loss of the master (1). */
static void on_signal(uv_signal_t *s, int signum)
{
    done(s->data, 0);
}

static void on_node(aemp_node_t *n, const char *id, int up,
                    const aemp_msg_t *reason, void *user)
{
    gjob_t *j = user;
    const char *m = aemp_master(n), *kind, *nid, *why = "";
    if (up || !j->primed || !(j->op == OP_MON || j->op == OP_GRP_MON) ||
        (m && strcmp(m, id)))
        return;
    aemp_msg_unpack(reason, "sss*", &kind, &nid, &why);
    fail(j, "lost global node %s%s%s", id, *why ? ": " : "", why);
}

/* ---- starting ---------------------------------------------------------------
 */

/* The operation first: it starts the global service, which must be there
 * when the first global node's g_global comes. */
static int start_op(gjob_t *j)
{
    aemp_node_t *n = j->node;
    double t = j->o->timeout + 1; /* the aemp::global answer comes first */
    switch (j->op) {
    case OP_GET: return aemp_db_family(n, j->family, t, on_family, j);
    case OP_KEYS: return aemp_db_keys(n, j->family, t, on_array, j);
    case OP_GRP_GET: return aemp_grp_get(n, j->family, t, on_array, j);
    case OP_GRP_MON: return aemp_grp_mon(n, j->family, on_grp_change, j, NULL);
    default: return aemp_db_mon(n, j->family, on_db_change, j, NULL);
    }
}

/* set, del: ask the named node to set or delete an entry of its own, then
 * "time", whose answer says that it has read the request. */
static int send_request(gjob_t *j)
{
    aemp_val_t *req =
        aemp_arr(aemp_str(j->op == OP_SET ? "AnyEvent::MP::Kernel::db_set"
                                          : "AnyEvent::MP::Kernel::db_del"),
                 aemp_str(j->family), aemp_str(j->key));
    if (req && j->op == OP_SET)
        req = aemp_arr_push(req, aemp_val_copy(j->want));
    if (!req)
        return AEMP_ENOMEM;
    int rc = aemp_sndv(j->node, j->via_id, &req);
    aemp_val_free(req);
    return rc < 0 ? rc
                  : aemp_cal(j->node, j->via_id, j->o->timeout, on_ack, j, "s",
                             "time");
}

static int start(gjob_t *j)
{
    int rc = start_op(j);
    if (rc == 0 && (j->op == OP_SET || j->op == OP_DEL))
        rc = send_request(j);
    if (rc == 0)
        rc = aemp_cal(j->node, j->via_id, j->o->timeout, on_via_info, j, "s",
                      "aemp::global");
    if (rc == 0)
        rc = aemp_mon_nodes(j->node, on_node, j, NULL);
    if (rc < 0)
        fail(j, "%s: %s", j->cmd, aemp_strerror(rc));
    return rc;
}

static void run_job(gjob_t *j)
{
    uv_loop_t *loop = aemp_node_loop(j->node);
    uv_timer_init(loop, &j->timer);
    uv_signal_init(loop, &j->sigint);
    uv_signal_init(loop, &j->sigterm);
    j->timer.data = j->sigint.data = j->sigterm.data = j;
    if (j->op != OP_GET && j->op != OP_KEYS && j->op != OP_GRP_GET)
        uv_timer_start(&j->timer, on_deadline,
                       (uint64_t)(j->o->timeout * 1000) + 1000, 0);
    if (j->op == OP_MON || j->op == OP_GRP_MON) {
        uv_signal_start(&j->sigint, on_signal, SIGINT);
        uv_signal_start(&j->sigterm, on_signal, SIGTERM);
    }
    if (start(j) == 0)
        aemp_run(j->node);
    uv_close((uv_handle_t *)&j->timer, NULL);
    uv_close((uv_handle_t *)&j->sigint, NULL);
    uv_close((uv_handle_t *)&j->sigterm, NULL);
    aemp_node_free(j->node);
}

/* ---- the command line ------------------------------------------------------
 */

static int usage(int grp, const char *fmt, const char *arg)
{
    fprintf(stderr, "aemp: %s", grp ? "grp" : "db");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    fputs(grp ? grp_usage : db_usage, stderr);
    return 2;
}

static const struct sub *find_sub(int grp, const char *name)
{
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++)
        if (subs[i].grp == grp && !strcmp(subs[i].name, name))
            return &subs[i];
    return NULL;
}

/* Checks the arguments into j (2: a usage error, 1: another). */
static int parse(gjob_t *j, int grp, int argc, char **argv)
{
    static char cmd[16];
    if (argc < 2)
        return usage(grp, ": want a node and a subcommand%s", "");
    const struct sub *s = find_sub(grp, argv[1]);
    if (!s)
        return usage(grp, ": unknown subcommand \"%s\"", argv[1]);
    snprintf(cmd, sizeof cmd, "%s %s", grp ? "grp" : "db", s->name);
    if (argc - 2 < s->min || argc - 2 > s->max)
        return usage(grp, " %s: wrong number of arguments", s->name);
    *j = (gjob_t){.op = s->op,
                  .cmd = cmd,
                  .via = argv[0],
                  .status = -1,
                  .family = argv[2],
                  .key = argc > 3 ? argv[3] : NULL};
    if (!*j->family || (j->key && !*j->key))
        return usage(grp, " %s: empty names are not allowed", s->name);
    if ((s->op == OP_SET || s->op == OP_DEL) && j->family[0] == '\'')
        return cli_error("%s: families beginning with ' are the protocol's "
                         "own and read-only (%s)",
                         cmd, aemp_strerror(AEMP_EPERM));
    int rc = aemp_node_of(j->via, j->via_id, sizeof j->via_id);
    if (rc <= 0)
        return cli_error("\"%s\" is not a noderef or a node ID", j->via);
    if (!strncmp(j->via_id, "anon/", 5))
        return cli_error("%s is a private node: nobody can connect to it; "
                         "name a node that listens",
                         j->via_id);
    return 0;
}

static int cmd_global(const cli_opts_t *o, int grp, int argc, char **argv)
{
    gjob_t j;
    int rc = parse(&j, grp, argc, argv);
    if (rc)
        return rc;
    j.o = o;
    if (j.op == OP_SET) {
        aemp_val_t *args;
        if ((rc = cli_args(o, 1, argv + 4, &args)))
            return rc;
        j.want = aemp_val_copy(aemp_val_at(args, 0));
        aemp_val_free(args);
        if (!j.want)
            return cli_error("out of memory");
    }
    if (cli_node(o, &j.node) == 0)
        run_job(&j);
    aemp_val_free(j.want);
    aemp_val_free(j.seen);
    return j.status < 0 ? 1 : j.status;
}

int cmd_db(const cli_opts_t *o, int argc, char **argv)
{
    return cmd_global(o, 0, argc, argv);
}

int cmd_grp(const cli_opts_t *o, int argc, char **argv)
{
    return cmd_global(o, 1, argc, argv);
}
