/* The global registry (issue 13) between real processes: every node is a
 * global_node process (tests/global_node.c) on the test's loop, driven by
 * commands written to its FIFO, its events read back from its standard
 * output.  Three to five nodes per case: registration and lookup (db_* and
 * grp_*), requests waiting for a master, a registering port dying and a
 * guard cancelled, a registering node killed with SIGKILL or frozen, a
 * global node killed (its attached nodes re-attach to another global
 * node, the database is complete again; it comes back and holds it all),
 * a global node restarting under its attached nodes, a seed made global
 * by the node that attaches to it, a partition between two "hosts"
 * (network namespaces joined by a veth pair; root only: where namespaces
 * are not permitted the case fails, saying why, never passes unrun)
 * healing, a node reached by a free-text ID through the global node's 'l
 * family, and the argument errors (in this process).  AEMP_GLOBAL_TESTS
 * picks cases by name (a glob).
 *
 * db_mon's contract is checked on every call a monitor printed (mon_replay):
 * the first call is the snapshot (every key added, nothing changed or
 * deleted); every later one names each key that appeared (added), stayed
 * with a new value (changed) or went (deleted), so that replaying the
 * reports gives exactly the db the call shows.  grp_mon likewise.
 *
 * Every node runs with monitor_timeout MT (2 s), connect_interval 0.2 s and
 * a keepalive of 2 s; the bounds below derive from them.  Nodes end with
 * "quit": each must exit 0 with nothing from the sanitizers on stderr. */
#include "helpers.h"

#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AEMP_GLOBAL_NODE_PATH
#error "AEMP_GLOBAL_NODE_PATH must name the global_node binary"
#endif

#define SECRET "global test secret"
#define MT 2.0 /* monitor_timeout of every node, seconds */
#define MT_S "2"
#define CI_S "0.2" /* connect_interval */
#define KA 2       /* keepalive */
#define KA_S "2"
#define MAXN 6
#define MAXPORTS 16
#define NS_PREFIX "aemp-glob-"

/* ---- nodes: processes -----------------------------------------------------
 */

typedef struct gnode {
    cp_child_t *c;
    int ctl;  /* our end of its FIFO (read-write: it never sees EOF early) */
    int dead; /* killed by the test */
    char label[16];
    char ref[160]; /* its node ID, from "ready <id>" */
    char fifo[160];
    char pname[MAXPORTS][16], pid[MAXPORTS][192];
    int nports;
} gnode_t;

typedef struct fx {
    uv_loop_t loop;
    char dir[64];
    gnode_t nd[MAXN];
    int nn;
    unsigned qseq;
    int used_ports[16], nused;
    /* the partition case's two hosts */
    char ns[2][48], veth[2][16];
    int ns_made[2], veth_made;
    /* JSON the case holds, released by the teardown whatever failed */
    json_t *held[512];
    int nheld;
} fx_t;

/* Keeps j (taken) until the teardown; returns it, borrowed. */
static json_t *hold(fx_t *f, json_t *j)
{
    assert_true(f->nheld < 512);
    return f->held[f->nheld++] = j;
}

static void fx_dump(fx_t *f)
{
    for (int i = 0; i < f->nn; i++)
        if (f->nd[i].c) {
            fprintf(stderr, "=== node %s (%s)\n", f->nd[i].label, f->nd[i].ref);
            cp_dump(f->nd[i].c);
        }
}

/* Dumps every node and fails.  The message is made first: a caller frees
 * what it formatted from between making it and failing (fx_fail), so that
 * a failing case leaks nothing the leak checker would add to the report. */
static void fx_fail(fx_t *f, const char *msg)
{
    fx_dump(f);
    fail_msg("%s", msg);
}

#define FAIL(f, ...)                                                           \
    do {                                                                       \
        char fail_text_[4096];                                                 \
        snprintf(fail_text_, sizeof fail_text_, __VA_ARGS__);                  \
        fx_dump(f);                                                            \
        fail_msg("%s", fail_text_);                                            \
    } while (0)

static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/aemp-global-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    static int counter;
    int pid = (int)getpid();
    ++counter;
    snprintf(f->ns[0], sizeof f->ns[0], NS_PREFIX "%d-%d", pid, 2 * counter);
    snprintf(f->ns[1], sizeof f->ns[1], NS_PREFIX "%d-%d", pid,
             2 * counter + 1);
    snprintf(f->veth[0], sizeof f->veth[0], "ag%d%da", pid % 1000000,
             counter % 10);
    snprintf(f->veth[1], sizeof f->veth[1], "ag%d%db", pid % 1000000,
             counter % 10);
    return 0;
}

static int fx_teardown(void **state)
{
    fx_t *f = *state;
    /* the end of its FIFO makes a node quit by itself */
    for (int i = 0; i < f->nn; i++)
        if (f->nd[i].ctl >= 0) {
            close(f->nd[i].ctl);
            f->nd[i].ctl = -1;
        }
    for (int i = 0; i < f->nn; i++)
        if (f->nd[i].c) {
            cp_await_exit(f->nd[i].c, 5);
            cp_free(f->nd[i].c);
        }
    for (int i = 0; i < f->nheld; i++)
        json_decref(f->held[i]);
    nt_loop_finish(&f->loop);
    nt_hosts_del((const char *const[]){f->ns[0], f->ns[1]}, f->veth[0],
                 f->ns_made, f->veth_made);
    cp_rm_rf(f->dir);
    free(f);
    return 0;
}

/* "127.0.0.1:<port>" with a port free a moment ago, never one handed out
 * before in this case. */
static const char *addr(fx_t *f, char *buf, size_t size)
{
    for (;;) {
        int p = nt_free_port(), dup = 0;
        for (int i = 0; i < f->nused; i++)
            dup |= f->used_ports[i] == p;
        if (dup)
            continue;
        assert_true(f->nused < 16);
        f->used_ports[f->nused++] = p;
        snprintf(buf, size, "127.0.0.1:%d", p);
        return buf;
    }
}

/* ---- reading what a node printed ------------------------------------------
 */

/* The text after prefix of the nth (from 0) complete line starting with
 * prefix (malloc'd), or NULL. */
static char *line_nth(const char *out, const char *prefix, int nth)
{
    size_t plen = strlen(prefix);
    int k = 0;
    for (const char *p = out; p && *p;) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        if ((size_t)(nl - p) >= plen && !strncmp(p, prefix, plen) &&
            k++ == nth) {
            char *s = strndup(p + plen, (size_t)(nl - p) - plen);
            assert_non_null(s);
            return s;
        }
        p = nl + 1;
    }
    return NULL;
}

static int line_count(const char *out, const char *prefix)
{
    size_t plen = strlen(prefix);
    int k = 0;
    for (const char *p = out; p && *p;) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        k += (size_t)(nl - p) >= plen && !strncmp(p, prefix, plen);
        p = nl + 1;
    }
    return k;
}

static char *line_last(const char *out, const char *prefix)
{
    int n = line_count(out, prefix);
    return n ? line_nth(out, prefix, n - 1) : NULL;
}

typedef struct line_cond {
    gnode_t *g;
    const char *prefix;
    int count;
} line_cond_t;

static int has_lines(void *arg)
{
    line_cond_t *c = arg;
    return line_count(c->g->c->obuf, c->prefix) >= c->count || cp_done(c->g->c);
}

/* Runs until g printed `count` lines starting with prefix; 1 if it did. */
static int await_lines(fx_t *f, gnode_t *g, const char *prefix, int count,
                       double seconds)
{
    line_cond_t c = {g, prefix, count};
    nt_run_until(&f->loop, has_lines, &c, seconds);
    return line_count(g->c->obuf, prefix) >= count;
}

static void expect_lines(fx_t *f, gnode_t *g, const char *prefix, int count,
                         double seconds)
{
    if (!await_lines(f, g, prefix, count, seconds))
        FAIL(f, "%s did not print %d line(s) \"%s...\" within %.1f s", g->label,
             count, prefix, seconds);
}

static void expect_line(fx_t *f, gnode_t *g, const char *line, double seconds)
{
    expect_lines(f, g, line, 1, seconds);
}

typedef struct last_cond {
    gnode_t *g;
    const char *prefix, *want;
} last_cond_t;

static int last_is(void *arg)
{
    last_cond_t *c = arg;
    char *s = line_last(c->g->c->obuf, c->prefix);
    int ok = s && !strcmp(s, c->want);
    free(s);
    return ok || cp_done(c->g->c);
}

/* The last "master ..." line of g says want. */
static void expect_master(fx_t *f, gnode_t *g, const char *want, double seconds)
{
    last_cond_t c = {g, "master ", want};
    nt_run_until(&f->loop, last_is, &c, seconds);
    char *s = line_last(g->c->obuf, "master "), msg[600];
    int ok = s && !strcmp(s, want);
    snprintf(msg, sizeof msg, "%s: master is %s, want %s (after %.1f s)",
             g->label, s ? s : "(none)", want, seconds);
    free(s);
    if (!ok)
        fx_fail(f, msg);
}

/* g has a master (an nt_cond_fn). */
static int has_master(void *arg)
{
    gnode_t *g = arg;
    char *s = line_last(g->c->obuf, "master ");
    int ok = s && strcmp(s, "-");
    free(s);
    return ok || cp_done(g->c);
}

/* g's master now ("-" for none), malloc'd. */
static char *master_of(gnode_t *g)
{
    char *s = line_last(g->c->obuf, "master ");
    return s ? s : strdup("-");
}

static const char *dump(const json_t *j);

/* The nodes g's links are up to now, by its "node up|down" lines (an
 * object of IDs, yours). */
static json_t *links_of(gnode_t *g)
{
    json_t *up = json_object();
    int n = line_count(g->c->obuf, "node ");
    for (int i = 0; i < n; i++) {
        char *s = line_nth(g->c->obuf, "node ", i);
        if (!strncmp(s, "up ", 3))
            json_object_set_new(up, s + 3, json_true());
        else if (!strncmp(s, "down ", 5))
            json_object_del(up, s + 5);
        free(s);
    }
    return up;
}

typedef struct links_cond {
    gnode_t *g;
    const char *want;
} links_cond_t;

static int links_are(void *arg)
{
    links_cond_t *c = arg;
    json_t *up = links_of(c->g);
    int ok = json_object_size(up) == 1 && json_object_get(up, c->want);
    json_decref(up);
    return ok || cp_done(c->g->c);
}

/* One link, not a mesh: g's only link is to want (its master). */
static void expect_one_link(fx_t *f, gnode_t *g, const char *want,
                            double seconds)
{
    links_cond_t c = {g, want};
    nt_run_until(&f->loop, links_are, &c, seconds);
    json_t *up = links_of(g);
    int ok = json_object_size(up) == 1 && json_object_get(up, want);
    char msg[2000];
    snprintf(msg, sizeof msg, "%s is linked to %s, want only its master %s",
             g->label, dump(up), want);
    json_decref(up);
    if (!ok)
        fx_fail(f, msg);
}

/* ---- starting, commanding and ending nodes --------------------------------
 */

/* A node: `[ip netns exec ns] global_node --ctl ... args...`; waits until it
 * is ready. */
static gnode_t *gn_start(fx_t *f, const char *label, const char *ns, ...)
{
    assert_true(f->nn < MAXN);
    gnode_t *g = &f->nd[f->nn++];
    memset(g, 0, sizeof *g);
    g->ctl = -1;
    snprintf(g->label, sizeof g->label, "%s", label);
    snprintf(g->fifo, sizeof g->fifo, "%s/%s.ctl", f->dir, label);
    assert_int_equal(mkfifo(g->fifo, 0600), 0);
    g->ctl = open(g->fifo, O_RDWR | O_CLOEXEC);
    assert_true(g->ctl >= 0);
    const char *argv[48];
    size_t n = 0;
    if (ns) {
        argv[n++] = nt_ip_path();
        argv[n++] = "netns";
        argv[n++] = "exec";
        argv[n++] = ns;
    }
    argv[n++] = AEMP_GLOBAL_NODE_PATH;
    const char *fixed[] = {"--ctl",
                           g->fifo,
                           "--secret",
                           SECRET,
                           "--monitor-timeout",
                           MT_S,
                           "--connect-interval",
                           CI_S,
                           "--keepalive",
                           KA_S};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        argv[n++] = fixed[i];
    va_list ap;
    va_start(ap, ns);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 47)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    g->c = cp_spawn(&f->loop, argv[0], argv);
    expect_line(f, g, "ready ", 20);
    char *ref = line_nth(g->c->obuf, "ready ", 0);
    snprintf(g->ref, sizeof g->ref, "%s", ref);
    free(ref);
    return g;
}

static void gn_cmd(gnode_t *g, const char *fmt, ...) AEMP_PRINTF(2, 3);
static void gn_cmd(gnode_t *g, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    assert_true(len > 0 && (size_t)len < sizeof buf - 1);
    buf[len++] = '\n';
    assert_int_equal(write(g->ctl, buf, (size_t)len), len);
}

/* Runs a command and checks what it returned ("rc <cmd> <want>"). */
static void gn_do(fx_t *f, gnode_t *g, const char *want, const char *fmt, ...)
    AEMP_PRINTF(4, 5);
static void gn_do(fx_t *f, gnode_t *g, const char *want, const char *fmt, ...)
{
    char buf[8000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    int before = line_count(g->c->obuf, "rc ");
    gn_cmd(g, "%s", buf);
    expect_lines(f, g, "rc ", before + 1, 10);
    char *rc = line_nth(g->c->obuf, "rc ", before);
    char cmd[32];
    snprintf(cmd, sizeof cmd, "%.*s", (int)strcspn(buf, " "), buf);
    char wantline[96], msg[9000];
    snprintf(wantline, sizeof wantline, "%s %s", cmd, want);
    int ok = !strcmp(rc, wantline);
    snprintf(msg, sizeof msg, "%s: `%s` gave \"rc %s\", want \"rc %s\"",
             g->label, buf, rc, wantline);
    free(rc);
    if (!ok)
        fx_fail(f, msg);
}

/* A new port on g under name; its ID (kept in g). */
static const char *gn_port(fx_t *f, gnode_t *g, const char *name)
{
    assert_true(g->nports < MAXPORTS);
    gn_do(f, g, "0", "port %s", name);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "port %s ", name);
    char *id = line_nth(g->c->obuf, prefix, 0);
    assert_non_null(id);
    snprintf(g->pname[g->nports], sizeof g->pname[0], "%s", name);
    snprintf(g->pid[g->nports], sizeof g->pid[0], "%s", id);
    free(id);
    return g->pid[g->nports++];
}

static void gn_kill9(fx_t *f, gnode_t *g)
{
    cp_kill(g->c, SIGKILL);
    if (!cp_await_exit(g->c, 10))
        FAIL(f, "%s did not die of SIGKILL", g->label);
    g->dead = 1;
}

/* "quit": the node frees itself and must exit 0, sanitizers silent. */
static void gn_quit(fx_t *f, gnode_t *g)
{
    if (g->dead || g->c->exited)
        return;
    gn_cmd(g, "quit");
    if (!cp_await_exit(g->c, 30))
        FAIL(f, "%s did not quit", g->label);
    if (g->c->signal || g->c->status != 0 || !strstr(g->c->obuf, "\nbye\n") ||
        strstr(g->c->ebuf, "Sanitizer") || strstr(g->c->ebuf, "runtime error"))
        FAIL(f, "%s did not end cleanly (status %lld, signal %d)", g->label,
             (long long)g->c->status, g->c->signal);
}

static void quit_all(fx_t *f)
{
    for (int i = 0; i < f->nn; i++)
        gn_quit(f, &f->nd[i]);
}

/* ---- JSON -------------------------------------------------------------------
 */

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("bad JSON in the test: %s: %s", text, e.text);
    return j;
}

/* j as compact JSON with sorted keys (malloc'd). */
static char *dumps(const json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
                : strdup("(nothing)");
    assert_non_null(s);
    return s;
}

/* The same for messages: one of a few static buffers (cut at 1500
 * bytes), valid for the next three calls. */
static const char *dump(const json_t *j)
{
    static char ring[4][1500];
    static int next;
    char *s = dumps(j), *buf = ring[next++ % 4];
    snprintf(buf, sizeof ring[0], "%s", s);
    free(s);
    return buf;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Two arrays with the same elements, in any order. */
static int same_multiset(const json_t *a, const json_t *b)
{
    if (!json_is_array(a) || !json_is_array(b) ||
        json_array_size(a) != json_array_size(b))
        return 0;
    size_t n = json_array_size(a);
    char **x = calloc(n + 1, sizeof *x), **y = calloc(n + 1, sizeof *y);
    assert_true(x && y);
    for (size_t i = 0; i < n; i++) {
        x[i] = dumps(json_array_get(a, i));
        y[i] = dumps(json_array_get(b, i));
    }
    qsort(x, n, sizeof *x, cmp_str);
    qsort(y, n, sizeof *y, cmp_str);
    int same = 1;
    for (size_t i = 0; i < n; i++) {
        same &= !strcmp(x[i], y[i]);
        free(x[i]);
        free(y[i]);
    }
    free(x);
    free(y);
    return same;
}

/* Objects equal; arrays equal as multisets. */
static int same(const json_t *a, const json_t *b)
{
    if (json_is_array(a))
        return same_multiset(a, b);
    return a && b && json_equal((json_t *)a, (json_t *)b);
}

/* {k1: v1, ...} from pairs of a key and JSON text, NULL-terminated. */
static json_t *obj(const char *k, ...)
{
    json_t *o = json_object();
    va_list ap;
    va_start(ap, k);
    while (k) {
        const char *v = va_arg(ap, const char *);
        json_object_set_new(o, k, J(v));
        k = va_arg(ap, const char *);
    }
    va_end(ap);
    return o;
}

/* An array of strings, NULL-terminated. */
static json_t *strs(const char *s, ...)
{
    json_t *a = json_array();
    va_list ap;
    va_start(ap, s);
    for (; s; s = va_arg(ap, const char *))
        json_array_append_new(a, json_string(s));
    va_end(ap);
    return a;
}

static json_t *keys_of(const json_t *o)
{
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
        json_array_append_new(a, json_string(k));
    return a;
}

static json_t *values_of(const json_t *o)
{
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) json_array_append(a, v);
    return a;
}

/* ---- queries
 * ------------------------------------------------------------------ */

/* kind (family, keys, values, grpget) of family on g: its status into rc
 * and its result (yours; NULL if it was no JSON). */
static json_t *gn_query(fx_t *f, gnode_t *g, const char *kind,
                        const char *family, double timeout, char *rc,
                        size_t rcsize)
{
    char tag[16], prefix[32];
    snprintf(tag, sizeof tag, "q%u", ++f->qseq);
    snprintf(prefix, sizeof prefix, "result %s ", tag);
    gn_cmd(g, "%s %s %s %g", kind, tag, family, timeout);
    expect_lines(f, g, prefix, 1, timeout + 5);
    char *r = line_nth(g->c->obuf, prefix, 0);
    size_t sp = strcspn(r, " ");
    snprintf(rc, rcsize, "%.*s", (int)sp, r);
    json_error_t e;
    json_t *j = r[sp] ? json_loads(r + sp + 1, JSON_DECODE_ANY, &e) : NULL;
    free(r);
    return j;
}

/* Asks again and again until g's answer to kind of family is want (taken;
 * arrays in any order). */
static void await_query(fx_t *f, gnode_t *g, const char *kind,
                        const char *family, json_t *want, double seconds)
{
    uint64_t end = kt_now_ms() + (uint64_t)(seconds * 1000);
    char rc[32] = "";
    json_t *got = NULL;
    hold(f, want);
    for (;;) {
        json_decref(got);
        got = gn_query(f, g, kind, family, 3, rc, sizeof rc);
        if (!strcmp(rc, "0") && same(got, want))
            break;
        if (kt_now_ms() >= end) {
            char msg[4000];
            snprintf(msg, sizeof msg,
                     "%s: %s %s is %s %s, want %s (after "
                     "%.1f s)",
                     g->label, kind, family, rc, dump(got), dump(want),
                     seconds);
            json_decref(got);
            fx_fail(f, msg);
        }
        nt_run_for(&f->loop, 0.1); /* other processes: poll */
    }
    json_decref(got);
}

/* Every one of kind family / keys / values on g, from one family value. */
static void await_family(fx_t *f, gnode_t *g, const char *family, json_t *want,
                         double seconds)
{
    hold(f, want);
    await_query(f, g, "family", family, json_deep_copy(want), seconds);
    /* the family stood: its keys and values now */
    await_query(f, g, "keys", family, keys_of(want), 5);
    await_query(f, g, "values", family, values_of(want), 5);
}

/* Asks until g's family holds exactly the keys of `others` with their
 * values plus key, whose value is one of `choices` (an array); the value
 * it holds (JSON text into buf). */
static void await_one_of(fx_t *f, gnode_t *g, const char *family,
                         const json_t *others, const char *key,
                         const json_t *choices, char *buf, size_t size,
                         double seconds)
{
    uint64_t end = kt_now_ms() + (uint64_t)(seconds * 1000);
    char rc[32];
    for (;;) {
        json_t *got = gn_query(f, g, "family", family, 3, rc, sizeof rc);
        json_t *v = json_incref(json_object_get(got, key)), *rest = NULL;
        int ok = 0;
        if (v && json_is_object(got)) {
            rest = json_deep_copy(got);
            json_object_del(rest, key);
            size_t i;
            json_t *c;
            json_array_foreach(choices, i, c) ok |= json_equal(c, v);
            ok = ok && json_equal(rest, (json_t *)others);
        }
        snprintf(buf, size, "%s", dump(ok ? v : got));
        json_decref(rest);
        json_decref(v);
        json_decref(got);
        if (ok)
            return;
        if (kt_now_ms() >= end)
            FAIL(f, "%s: %s is %s, want %s plus %s: one of %s", g->label,
                 family, buf, dump(others), key, dump(choices));
        nt_run_for(&f->loop, 0.1);
    }
}

/* ---- monitors --------------------------------------------------------------
 */

static int in(const json_t *o, const char *k)
{
    return json_object_get(o, k) != NULL;
}

/* Every key of arr once, and in none of the other arrays seen so far;
 * else the reason into err. */
static int check_unique(const json_t *arr, json_t *seen, const char *where,
                        char *err, size_t errsize)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v)) {
            snprintf(err, errsize, "%s: a key that is no string", where);
            return 0;
        }
        if (in(seen, json_string_value(v))) {
            snprintf(err, errsize, "%s: key %s reported twice", where,
                     json_string_value(v));
            return 0;
        }
        json_object_set_new(seen, json_string_value(v), json_true());
    }
    return 1;
}

/* One call of a db_mon (o: its line's object) after prev (NULL: the
 * first); 1 if it keeps the contract, else 0 and the reason into err. */
static int mon_call_ok(const json_t *o, const json_t *prev, const char *where,
                       char *err, size_t errsize)
{
    json_t *db = json_object_get(o, "db"), *a = json_object_get(o, "added"),
           *c = json_object_get(o, "changed"),
           *d = json_object_get(o, "deleted");
    if (!json_is_object(db) || !json_is_array(a) || !json_is_array(c) ||
        !json_is_array(d)) {
        snprintf(err, errsize, "%s: db is no map or a list is no array", where);
        return 0;
    }
    json_t *seen = json_object();
    int ok = check_unique(a, seen, where, err, errsize) &&
             check_unique(c, seen, where, err, errsize) &&
             check_unique(d, seen, where, err, errsize);
    json_decref(seen);
    if (!ok)
        return 0;
    if (!prev) {
        json_t *all = keys_of(db);
        ok = !json_array_size(c) && !json_array_size(d) && same(a, all);
        json_decref(all);
        if (!ok)
            snprintf(err, errsize,
                     "%s: the snapshot does not add every key "
                     "and only those",
                     where);
        return ok;
    }
    json_t *next = json_deep_copy(prev);
    size_t j;
    json_t *v;
    json_array_foreach(a, j, v)
    {
        const char *k = json_string_value(v);
        if (ok && (in(prev, k) || !in(db, k))) {
            snprintf(err, errsize, "%s: %s added but it %s", where, k,
                     in(prev, k) ? "was there" : "is not in db");
            ok = 0;
        }
        json_object_set(next, k, json_object_get(db, k));
    }
    json_array_foreach(c, j, v)
    {
        const char *k = json_string_value(v);
        if (ok && (!in(prev, k) || !in(db, k))) {
            snprintf(err, errsize, "%s: %s changed but it %s", where, k,
                     in(prev, k) ? "is not in db" : "was not there");
            ok = 0;
        }
        json_object_set(next, k, json_object_get(db, k));
    }
    json_array_foreach(d, j, v)
    {
        const char *k = json_string_value(v);
        if (ok && (!in(prev, k) || in(db, k))) {
            snprintf(err, errsize, "%s: %s deleted but it %s", where, k,
                     in(prev, k) ? "is still in db" : "was not there");
            ok = 0;
        }
        json_object_del(next, k);
    }
    if (ok && !json_equal(next, db)) {
        snprintf(err, errsize,
                 "%s: the reports give %s, the db is %s (a "
                 "change was not reported)",
                 where, dump(next), dump(db));
        ok = 0;
    }
    json_decref(next);
    return ok;
}

/* Replays every call g's db_mon `tag` printed, failing where the calls
 * break the contract (see the top); the last db (yours) and the number of
 * calls. */
static json_t *mon_replay(fx_t *f, gnode_t *g, const char *tag, int *calls)
{
    char prefix[64], err[4000] = "";
    snprintf(prefix, sizeof prefix, "dbmon %s ", tag);
    int n = line_count(g->c->obuf, prefix);
    json_t *prev = NULL;
    for (int i = 0; i < n && !*err; i++) {
        char *text = line_nth(g->c->obuf, prefix, i), where[128];
        snprintf(where, sizeof where, "%s: db_mon %s, call %d", g->label, tag,
                 i + 1);
        json_error_t e;
        json_t *o = json_loads(text, 0, &e);
        if (!o)
            snprintf(err, sizeof err, "%s: not JSON: %s", where, text);
        free(text);
        if (o && mon_call_ok(o, prev, where, err, sizeof err)) {
            json_decref(prev);
            prev = json_deep_copy(json_object_get(o, "db"));
        }
        json_decref(o);
    }
    if (*err) {
        json_decref(prev);
        fx_fail(f, err);
    }
    if (calls)
        *calls = n;
    return prev;
}

/* The db of the last call g's db_mon `tag` printed (yours), or NULL. */
static json_t *mon_last_db(gnode_t *g, const char *tag)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "dbmon %s ", tag);
    char *text = line_last(g->c->obuf, prefix);
    json_error_t e;
    json_t *o = text ? json_loads(text, 0, &e) : NULL;
    free(text);
    json_t *db = json_incref(json_object_get(o, "db"));
    json_decref(o);
    return db;
}

typedef struct mon_cond {
    gnode_t *g;
    const char *tag, *prefix;
    const json_t *want;
    const char *field;
} mon_cond_t;

static int mon_is(void *arg)
{
    mon_cond_t *c = arg;
    char *text = line_last(c->g->c->obuf, c->prefix);
    json_error_t e;
    json_t *o = text ? json_loads(text, 0, &e) : NULL;
    free(text);
    int ok = same(json_object_get(o, c->field), c->want);
    json_decref(o);
    return ok || cp_done(c->g->c);
}

/* Runs until g's db_mon `tag` last showed want (taken), then checks the
 * whole history of its calls. */
static void await_mon(fx_t *f, gnode_t *g, const char *tag, json_t *want,
                      double seconds)
{
    char prefix[64], msg[4000];
    snprintf(prefix, sizeof prefix, "dbmon %s ", tag);
    mon_cond_t c = {g, tag, prefix, want, "db"};
    nt_run_until(&f->loop, mon_is, &c, seconds);
    hold(f, want);
    json_t *got = mon_last_db(g, tag);
    int ok = same(got, want);
    snprintf(msg, sizeof msg, "%s: db_mon %s shows %s, want %s (after %.1f s)",
             g->label, tag, dump(got), dump(want), seconds);
    json_decref(got);
    if (!ok)
        fx_fail(f, msg);
    json_t *replayed = mon_replay(f, g, tag, NULL);
    ok = json_equal(replayed, want);
    json_decref(replayed);
    if (!ok)
        FAIL(f, "%s: db_mon %s: its calls replayed do not give %s", g->label,
             tag, dump(want));
}

/* One call of a grp_mon after prev (its members as an object; NULL: the
 * first): the first adds every member; later ones add what was not a
 * member and remove what was.  Its members (as an object, yours) or NULL
 * and the reason in err. */
static json_t *grp_call_ok(const json_t *o, const json_t *prev,
                           const char *where, char *err, size_t errsize)
{
    json_t *m = json_object_get(o, "members"), *a = json_object_get(o, "added"),
           *r = json_object_get(o, "removed");
    if (!json_is_array(m) || !json_is_array(a) || !json_is_array(r)) {
        snprintf(err, errsize, "%s: members, added or removed is no array",
                 where);
        return NULL;
    }
    json_t *seen = json_object(), *mset = json_object();
    int ok = check_unique(m, mset, where, err, errsize) &&
             check_unique(a, seen, where, err, errsize) &&
             check_unique(r, seen, where, err, errsize);
    json_decref(seen);
    if (ok && !prev && (json_array_size(r) || !same(a, m))) {
        snprintf(err, errsize, "%s: the first call does not add every member",
                 where);
        ok = 0;
    }
    if (ok && prev) {
        json_t *next = json_deep_copy(prev);
        size_t j;
        json_t *v;
        json_array_foreach(a, j, v)
        {
            const char *k = json_string_value(v);
            if (ok && (in(prev, k) || !in(mset, k))) {
                snprintf(err, errsize, "%s: %s added but it %s", where, k,
                         in(prev, k) ? "was a member" : "is no member");
                ok = 0;
            }
            json_object_set_new(next, k, json_true());
        }
        json_array_foreach(r, j, v)
        {
            const char *k = json_string_value(v);
            if (ok && (!in(prev, k) || in(mset, k))) {
                snprintf(err, errsize, "%s: %s removed but it %s", where, k,
                         in(prev, k) ? "is still a member" : "was none");
                ok = 0;
            }
            json_object_del(next, k);
        }
        if (ok && !json_equal(next, mset)) {
            snprintf(err, errsize, "%s: the reports do not give the members",
                     where);
            ok = 0;
        }
        json_decref(next);
    }
    if (!ok) {
        json_decref(mset);
        return NULL;
    }
    return mset;
}

/* Replays g's grp_mon `tag`, failing where it breaks the contract; its
 * members now (an array, yours; NULL if it never called). */
static json_t *grp_replay(fx_t *f, gnode_t *g, const char *tag)
{
    char prefix[64], err[4000] = "";
    snprintf(prefix, sizeof prefix, "grpmon %s ", tag);
    int n = line_count(g->c->obuf, prefix);
    json_t *prev = NULL;
    for (int i = 0; i < n && !*err; i++) {
        char *text = line_nth(g->c->obuf, prefix, i), where[128];
        snprintf(where, sizeof where, "%s: grp_mon %s, call %d", g->label, tag,
                 i + 1);
        json_error_t e;
        json_t *o = json_loads(text, 0, &e);
        if (!o)
            snprintf(err, sizeof err, "%s: not JSON: %s", where, text);
        free(text);
        json_t *mset = o ? grp_call_ok(o, prev, where, err, sizeof err) : NULL;
        if (mset) {
            json_decref(prev);
            prev = mset;
        }
        json_decref(o);
    }
    json_t *members = prev ? keys_of(prev) : NULL;
    json_decref(prev);
    if (*err) {
        json_decref(members);
        fx_fail(f, err);
    }
    return members;
}

static void await_grp(fx_t *f, gnode_t *g, const char *tag, json_t *want,
                      double seconds)
{
    char prefix[64], msg[4000];
    snprintf(prefix, sizeof prefix, "grpmon %s ", tag);
    mon_cond_t c = {g, tag, prefix, want, "members"};
    nt_run_until(&f->loop, mon_is, &c, seconds);
    hold(f, want);
    json_t *got = grp_replay(f, g, tag);
    int ok = same(got, want);
    snprintf(msg, sizeof msg, "%s: grp_mon %s shows %s, want %s (after %.1f s)",
             g->label, tag, dump(got), dump(want), seconds);
    json_decref(got);
    if (!ok)
        fx_fail(f, msg);
}

/* "mon <tag> <what> <key>[ <json>]" lines of g. */
static int mon_lines(gnode_t *g, const char *tag, const char *what,
                     const char *key)
{
    char prefix[300];
    snprintf(prefix, sizeof prefix, "mon %s %s %s", tag, what, key);
    char with_space[304];
    snprintf(with_space, sizeof with_space, "%s ", prefix);
    /* "deleted <key>" ends the line; the others go on with the value */
    if (!strcmp(what, "deleted")) {
        int k = 0;
        for (int i = 0; i < line_count(g->c->obuf, prefix); i++) {
            char *s = line_nth(g->c->obuf, prefix, i);
            k += !*s;
            free(s);
        }
        return k;
    }
    return line_count(g->c->obuf, with_space);
}

/* ---- the cases
 * ---------------------------------------------------------------- */

/* A global node G, and B and C with G as their seed, attached to it. */
static void start_gbc(fx_t *f, gnode_t **G, gnode_t **B, gnode_t **C)
{
    char ga[64], ba[64], ca[64];
    *G = gn_start(f, "G", NULL, "--listen", addr(f, ga, sizeof ga), "--global",
                  (const char *)NULL);
    *B = gn_start(f, "B", NULL, "--listen", addr(f, ba, sizeof ba), "--seed",
                  ga, (const char *)NULL);
    *C = gn_start(f, "C", NULL, "--listen", addr(f, ca, sizeof ca), "--seed",
                  ga, (const char *)NULL);
    assert_string_equal((*G)->ref, ga);
    expect_master(f, *G, ga, 5);
    expect_line(f, *G, "global 1", 5);
    expect_master(f, *B, ga, 10);
    expect_master(f, *C, ga, 10);
    assert_int_equal(line_count((*B)->c->obuf, "global 1"), 0);
    assert_int_equal(line_count((*C)->c->obuf, "global 1"), 0);
    expect_one_link(f, *B, ga, 5);
    expect_one_link(f, *C, ga, 5);
}

/* Case 1: what B registers and sets, C finds by query and by monitor. */
static void registration_and_lookup(void **state)
{
    fx_t *f = *state;
    gnode_t *G, *B, *C;
    start_gbc(f, &G, &B, &C);
    /* monitors first: their snapshots are empty */
    gn_do(f, C, "0", "mon m1 workers");
    gn_do(f, C, "0", "mon m2 cfg");
    gn_do(f, C, "0", "grpmon g1 team");
    await_mon(f, C, "m1", json_object(), 5);
    await_mon(f, C, "m2", json_object(), 5);
    /* (g1's empty snapshot is checked at the end) */
    await_family(f, C, "workers", json_object(), 5);
    await_query(f, C, "grpget", "team", json_array(), 5);

    const char *w1 = gn_port(f, B, "w1"), *w2 = gn_port(f, B, "w2");
    gn_do(f, B, "0", "reg workers w1 {\"n\":1}");
    gn_do(f, B, "0", "reg workers w2 [2,\"two\"]");
    gn_do(f, B, "0", "set cfg color \"blue\"");
    gn_do(f, B, "0", "grpreg team w1");
    gn_do(f, B, "0", "grpreg team w2");
    json_t *workers = hold(f, obj(w1, "{\"n\":1}", w2, "[2,\"two\"]", NULL));
    await_mon(f, C, "m1", json_deep_copy(workers), 10);
    await_mon(f, C, "m2", obj("color", "\"blue\"", NULL), 10);
    await_grp(f, C, "g1", strs(w1, w2, NULL), 10);
    /* each key once, with its value */
    assert_int_equal(mon_lines(C, "m1", "add", w1), 1);
    assert_int_equal(mon_lines(C, "m1", "add", w2), 1);
    char line[400];
    snprintf(line, sizeof line, "mon m1 add %s {\"n\":1}", w1);
    assert_int_equal(line_count(C->c->obuf, line), 1);
    expect_line(f, C, "mon m2 add color \"blue\"", 1);
    snprintf(line, sizeof line, "grp g1 add %s", w1);
    assert_int_equal(line_count(C->c->obuf, line), 1);
    /* queries, from C and from the global node itself */
    await_family(f, C, "workers", json_deep_copy(workers), 10);
    await_family(f, G, "workers", json_deep_copy(workers), 10);
    await_family(f, B, "workers", json_deep_copy(workers), 10);
    await_family(f, C, "cfg", obj("color", "\"blue\"", NULL), 10);
    await_query(f, C, "grpget", "team", strs(w1, w2, NULL), 10);
    await_query(f, G, "grpget", "team", strs(w1, w2, NULL), 10);
    /* a family nobody has: empty */
    await_family(f, C, "nobody", json_object(), 5);
    await_query(f, C, "grpget", "nobody", json_array(), 5);

    /* changed, unchanged, added, deleted */
    gn_do(f, B, "0", "set cfg color \"red\"");
    await_mon(f, C, "m2", obj("color", "\"red\"", NULL), 10);
    expect_line(f, C, "mon m2 changed color \"red\"", 1);
    gn_do(f, B, "0", "set cfg color \"red\""); /* already so: sends nothing */
    gn_do(f, B, "0", "set cfg size 3");
    await_mon(f, C, "m2", obj("color", "\"red\"", "size", "3", NULL), 10);
    assert_int_equal(mon_lines(C, "m2", "changed", "color"), 1);
    assert_int_equal(mon_lines(C, "m2", "add", "size"), 1);
    gn_do(f, B, "0", "del cfg color");
    await_mon(f, C, "m2", obj("size", "3", NULL), 10);
    assert_int_equal(mon_lines(C, "m2", "deleted", "color"), 1);
    gn_do(f, B, "0", "del cfg color"); /* not set: no error */
    gn_do(f, B, "0", "del cfg never-set");
    await_family(f, C, "cfg", obj("size", "3", NULL), 10);
    /* two nodes set one key: one value stands; deleted by one, the
     * other's stays */
    gn_do(f, B, "0", "set cfg shared \"b\"");
    gn_do(f, C, "0", "set cfg shared \"c\"");
    char held[64];
    json_t *size3 = hold(f, obj("size", "3", NULL));
    json_t *bc = hold(f, J("[\"b\",\"c\"]"));
    await_one_of(f, C, "cfg", size3, "shared", bc, held, sizeof held, 10);
    await_one_of(f, B, "cfg", size3, "shared", bc, held, sizeof held, 10);
    gn_do(f, C, "0", "del cfg shared");
    await_family(f, B, "cfg", obj("size", "3", "shared", "\"b\"", NULL), 10);
    await_family(f, C, "cfg", obj("size", "3", "shared", "\"b\"", NULL), 10);
    await_mon(f, C, "m2", obj("size", "3", "shared", "\"b\"", NULL), 10);
    gn_do(f, B, "0", "del cfg shared");
    await_family(f, C, "cfg", obj("size", "3", NULL), 10);
    await_mon(f, C, "m2", obj("size", "3", NULL), 10);

    /* a second monitor of a family C already watches: a snapshot of its
     * own, and nothing new for the first */
    int calls1;
    json_decref(mon_replay(f, C, "m1", &calls1));
    gn_do(f, C, "0", "mon m3 workers");
    await_mon(f, C, "m3", json_deep_copy(workers), 5);
    int calls3;
    json_decref(mon_replay(f, C, "m3", &calls3));
    assert_int_equal(calls3, 1);
    nt_run_for(&f->loop, 0.3);
    int calls1b;
    json_decref(mon_replay(f, C, "m1", &calls1b));
    assert_int_equal(calls1b, calls1);
    /* and the global node monitors like anybody */
    gn_do(f, G, "0", "mon gm workers");
    await_mon(f, G, "gm", json_deep_copy(workers), 5);
    gn_do(f, G, "0", "grpmon gg team");
    await_grp(f, G, "gg", strs(w1, w2, NULL), 5);
    quit_all(f);
    /* grp_mon calls like db_mon: its first call is the snapshot, which
     * comes even for an empty group — before w1 and w2 were added */
    char *first = line_nth(C->c->obuf, "grpmon g1 ", 0), got[1000];
    const char *empty =
        "{\"group\":\"team\",\"members\":[],\"added\":[],\"removed\":[]}";
    snprintf(got, sizeof got, "%s", first ? first : "(nothing)");
    free(first);
    if (strcmp(got, empty))
        FAIL(f,
             "C's grp_mon of the empty group \"team\" began with %s, "
             "want the empty snapshot %s",
             got, empty);
}

/* Requests made before there is a master wait for one and are sent to it
 * when it comes: entries, monitors, queries. */
static void requests_wait_for_master(void **state)
{
    fx_t *f = *state;
    char ga[64], ca[64];
    addr(f, ga, sizeof ga);
    gnode_t *C = gn_start(f, "C", NULL, "--listen", addr(f, ca, sizeof ca),
                          "--seed", ga, (const char *)NULL);
    const char *w = gn_port(f, C, "w");
    gn_do(f, C, "0", "set cfg early 1");
    gn_do(f, C, "0", "reg workers w \"early\"");
    gn_do(f, C, "0", "mon m workers");
    gn_cmd(C, "family q-early workers 15");
    nt_run_for(&f->loop, 0.5);
    assert_int_equal(line_count(C->c->obuf, "result q-early "), 0);
    assert_int_equal(line_count(C->c->obuf, "dbmon m "), 0);
    assert_int_equal(line_count(C->c->obuf, "master "), 0);
    gnode_t *G =
        gn_start(f, "G", NULL, "--listen", ga, "--global", (const char *)NULL);
    expect_master(f, C, G->ref, 10);
    expect_lines(f, C, "result q-early ", 1, 10);
    /* sent after our entries: it sees them */
    char *r = line_nth(C->c->obuf, "result q-early ", 0), want[300], got[600];
    snprintf(want, sizeof want, "0 {\"%s\":\"early\"}", w);
    snprintf(got, sizeof got, "%s", r);
    free(r);
    if (strcmp(got, want))
        FAIL(f, "the waiting query says \"%s\", want \"%s\"", got, want);
    await_mon(f, C, "m", obj(w, "\"early\"", NULL), 10);
    await_family(f, G, "cfg", obj("early", "1", NULL), 10);
    await_family(f, G, "workers", obj(w, "\"early\"", NULL), 10);
    quit_all(f);
}

/* Case 2: a registering port that dies, a db_reg / grp_reg guard
 * cancelled: the entry goes, on C's monitors and in its queries. */
static void registering_port_dies(void **state)
{
    fx_t *f = *state;
    gnode_t *G, *B, *C;
    start_gbc(f, &G, &B, &C);
    gn_do(f, C, "0", "mon m workers");
    gn_do(f, C, "0", "grpmon g team");
    const char *w1 = gn_port(f, B, "w1"), *w2 = gn_port(f, B, "w2"),
               *w3 = gn_port(f, B, "w3");
    gn_do(f, B, "0", "reg workers w1 \"alive\"");
    gn_do(f, B, "0", "reg workers w2 2");
    gn_do(f, B, "0", "grpreg team w1");
    gn_do(f, B, "0", "grpreg team w3");
    await_mon(f, C, "m", obj(w1, "\"alive\"", w2, "2", NULL), 10);
    await_grp(f, C, "g", strs(w1, w3, NULL), 10);

    /* w1 dies: gone from the family and the group */
    gn_do(f, B, "0", "kill w1 crashed");
    await_mon(f, C, "m", obj(w2, "2", NULL), 10);
    assert_int_equal(mon_lines(C, "m", "deleted", w1), 1);
    await_grp(f, C, "g", strs(w3, NULL), 10);
    char line[300];
    snprintf(line, sizeof line, "grp g removed %s", w1);
    assert_int_equal(line_count(C->c->obuf, line), 1);
    await_family(f, C, "workers", obj(w2, "2", NULL), 10);
    await_query(f, C, "grpget", "team", strs(w3, NULL), 10);

    /* w2's guard cancelled: the entry goes, the port lives on */
    gn_do(f, B, "0", "unreg workers w2");
    await_mon(f, C, "m", json_object(), 10);
    assert_int_equal(mon_lines(C, "m", "deleted", w2), 1);
    await_family(f, C, "workers", json_object(), 10);
    gn_do(f, B, "0", "snd w2 [\"still here\"]");
    expect_line(f, B, "recv w2 [\"still here\"]", 5);
    /* and may register again */
    gn_do(f, B, "0", "reg workers w2 \"again\"");
    await_mon(f, C, "m", obj(w2, "\"again\"", NULL), 10);
    if (mon_lines(C, "m", "add", w2) != 2)
        FAIL(f, "C's monitor did not report %s added twice", w2);

    /* grp_reg's guard likewise */
    gn_do(f, B, "0", "grpunreg team w3");
    await_grp(f, C, "g", json_array(), 10);
    await_query(f, C, "grpget", "team", json_array(), 10);

    /* a normal end of a port (no reason) counts as its death too */
    gn_do(f, B, "0", "kill w2");
    await_mon(f, C, "m", json_object(), 10);
    /* the guards of dead ports may still be released, once */
    gn_do(f, B, "0", "unreg workers w1");
    gn_do(f, B, "0", "unreg workers w2");
    gn_do(f, B, "0", "grpunreg team w1");
    await_family(f, C, "workers", json_object(), 5);

    /* a cancelled monitor hears no more */
    gn_do(f, C, "0", "unmon m");
    int before = line_count(C->c->obuf, "dbmon m ");
    const char *w4 = gn_port(f, B, "w4");
    gn_do(f, B, "0", "reg workers w4 4");
    await_family(f, G, "workers", obj(w4, "4", NULL), 10);
    await_family(f, C, "workers", obj(w4, "4", NULL), 10);
    assert_int_equal(line_count(C->c->obuf, "dbmon m "), before);
    quit_all(f);
}

/* Case 3: a registering node killed with SIGKILL: its entries vanish at
 * the global node and on C's monitors within the monitor timeout; one
 * frozen (SIGSTOP) vanishes when the keepalive notices, and comes back
 * with its entries when it thaws and attaches again. */
static void registering_node_killed(void **state)
{
    fx_t *f = *state;
    gnode_t *G, *B, *C;
    start_gbc(f, &G, &B, &C);
    char da[64];
    gnode_t *D = gn_start(f, "D", NULL, "--listen", addr(f, da, sizeof da),
                          "--seed", G->ref, (const char *)NULL);
    expect_master(f, D, G->ref, 10);
    gn_do(f, C, "0", "mon m workers");
    gn_do(f, C, "0", "mon n cfg");
    const char *b1 = gn_port(f, B, "b1"), *b2 = gn_port(f, B, "b2");
    const char *c1 = gn_port(f, C, "c1"), *d1 = gn_port(f, D, "d1");
    gn_do(f, B, "0", "reg workers b1 \"b1\"");
    gn_do(f, B, "0", "reg workers b2 \"b2\"");
    gn_do(f, B, "0", "set cfg color \"blue\"");
    gn_do(f, C, "0", "reg workers c1 \"c1\"");
    gn_do(f, D, "0", "reg workers d1 \"d1\"");
    gn_do(f, D, "0", "set cfg d 1");
    await_mon(f, C, "m",
              obj(b1, "\"b1\"", b2, "\"b2\"", c1, "\"c1\"", d1, "\"d1\"", NULL),
              10);
    await_mon(f, C, "n", obj("color", "\"blue\"", "d", "1", NULL), 10);

    uint64_t t0 = kt_now_ms();
    gn_kill9(f, B);
    json_t *without_b = hold(f, obj(c1, "\"c1\"", d1, "\"d1\"", NULL));
    await_mon(f, C, "m", json_deep_copy(without_b), MT + 1);
    await_mon(f, C, "n", obj("d", "1", NULL), MT + 1);
    uint64_t took = kt_now_ms() - t0;
    fprintf(stderr, "  B's entries vanished %llu ms after its SIGKILL\n",
            (unsigned long long)took);
    /* the bound: the monitor timeout (a killed process's kernel closes
     * its connections at once; MT is the most a lost link may take) */
    if (took > (uint64_t)(MT * 1000))
        FAIL(f,
             "B's entries took %llu ms to vanish, more than the monitor "
             "timeout (%g s)",
             (unsigned long long)took, MT);
    assert_int_equal(mon_lines(C, "m", "deleted", b1), 1);
    assert_int_equal(mon_lines(C, "m", "deleted", b2), 1);
    assert_int_equal(mon_lines(C, "n", "deleted", "color"), 1);
    await_family(f, G, "workers", json_deep_copy(without_b), 5);
    await_family(f, C, "cfg", obj("d", "1", NULL), 5);
    /* its addresses too */
    char rc[32];
    json_t *l = hold(f, gn_query(f, G, "family", "'l", 3, rc, sizeof rc));
    assert_string_equal(rc, "0");
    if (json_object_get(l, B->ref) || !json_object_get(l, C->ref) ||
        !json_object_get(l, D->ref))
        FAIL(f, "'l after B's death: %s", dump(l));

    /* D frozen: only the keepalive can tell (KA s without a word) */
    t0 = kt_now_ms();
    cp_kill(D->c, SIGSTOP);
    await_mon(f, C, "m", obj(c1, "\"c1\"", NULL), 3 * KA + 1);
    took = kt_now_ms() - t0;
    fprintf(stderr, "  frozen D's entries vanished after %llu ms\n",
            (unsigned long long)took);
    await_mon(f, C, "n", json_object(), 2);
    /* thawed, it finds its link gone, attaches again and sends everything
     * anew */
    cp_kill(D->c, SIGCONT);
    await_mon(f, C, "m", json_deep_copy(without_b), 3 * MT + 2);
    await_mon(f, C, "n", obj("d", "1", NULL), 5);
    assert_int_equal(mon_lines(C, "m", "add", d1), 2);
    await_family(f, G, "workers", json_deep_copy(without_b), 5);
    quit_all(f);
}

/* Case 4: three global nodes replicate what their attached nodes hold; one
 * killed, the nodes attached to it re-attach to another (their second
 * seed) and the database is complete again, without the dead node's own
 * entries. */
static void global_node_killed(void **state)
{
    fx_t *f = *state;
    char a1[64], a2[64], a3[64], ba[64], ca[64];
    addr(f, a1, sizeof a1);
    addr(f, a2, sizeof a2);
    addr(f, a3, sizeof a3);
    gnode_t *G1 = gn_start(f, "G1", NULL, "--listen", a1, "--global", "--seed",
                           a2, "--seed", a3, (const char *)NULL);
    /* B comes while only G1 runs: G1 is its master */
    gnode_t *B = gn_start(f, "B", NULL, "--listen", addr(f, ba, sizeof ba),
                          "--seed", a1, "--seed", a2, (const char *)NULL);
    expect_master(f, B, a1, 10);
    gnode_t *G2 = gn_start(f, "G2", NULL, "--listen", a2, "--global", "--seed",
                           a1, "--seed", a3, (const char *)NULL);
    gnode_t *G3 = gn_start(f, "G3", NULL, "--listen", a3, "--global", "--seed",
                           a1, "--seed", a2, (const char *)NULL);
    gnode_t *C = gn_start(f, "C", NULL, "--listen", addr(f, ca, sizeof ca),
                          "--seed", a2, "--seed", a3, (const char *)NULL);
    /* C attaches to G2 or G3, which are the ones it knows */
    nt_run_until(&f->loop, has_master, C, 10);
    char *m = master_of(C), cm[160];
    snprintf(cm, sizeof cm, "%s", m);
    free(m);
    if (strcmp(cm, a2) && strcmp(cm, a3))
        FAIL(f, "C's master is %s, want G2 or G3", cm);
    gnode_t *CM = !strcmp(cm, a2) ? G2 : G3;

    const char *wb = gn_port(f, B, "wb"), *wc = gn_port(f, C, "wc"),
               *wg = gn_port(f, G1, "wg");
    gn_do(f, B, "0", "reg workers wb \"b\"");
    gn_do(f, B, "0", "set cfg b 1");
    gn_do(f, C, "0", "reg workers wc \"c\"");
    gn_do(f, C, "0", "set cfg c 1");
    gn_do(f, G1, "0", "reg workers wg \"g1\""); /* a global node's own */
    gn_do(f, G1, "0", "set cfg g1 1");
    gn_do(f, B, "0", "mon m workers");
    gn_do(f, C, "0", "mon m workers");
    gn_do(f, C, "0", "mon g 'g");
    json_t *all = hold(f, obj(wb, "\"b\"", wc, "\"c\"", wg, "\"g1\"", NULL));
    json_t *cfg = hold(f, obj("b", "1", "c", "1", "g1", "1", NULL));
    gnode_t *everybody[] = {B, C, G1, G2, G3};
    for (size_t i = 0; i < 5; i++) {
        await_family(f, everybody[i], "workers", json_deep_copy(all), 10);
        await_family(f, everybody[i], "cfg", json_deep_copy(cfg), 10);
    }
    await_mon(f, B, "m", json_deep_copy(all), 5);
    await_mon(f, C, "m", json_deep_copy(all), 5);
    await_mon(f, C, "g", obj(a1, "null", a2, "null", a3, "null", NULL), 10);
    /* B stayed with G1 when G2 came */
    expect_master(f, B, a1, 0);

    uint64_t t0 = kt_now_ms();
    gn_kill9(f, G1);
    expect_master(f, B, a2, 2 * MT + 1);
    fprintf(stderr, "  B re-attached to G2 %llu ms after G1's SIGKILL\n",
            (unsigned long long)(kt_now_ms() - t0));
    /* C's master is unchanged */
    expect_master(f, C, CM->ref, 0);
    all = hold(f, obj(wb, "\"b\"", wc, "\"c\"", NULL));
    cfg = hold(f, obj("b", "1", "c", "1", NULL));
    gnode_t *alive[] = {B, C, G2, G3};
    for (size_t i = 0; i < 4; i++) {
        await_family(f, alive[i], "workers", json_deep_copy(all), 10);
        await_family(f, alive[i], "cfg", json_deep_copy(cfg), 10);
    }
    fprintf(stderr, "  database complete again %llu ms after the SIGKILL\n",
            (unsigned long long)(kt_now_ms() - t0));
    await_mon(f, B, "m", json_deep_copy(all), 5);
    await_mon(f, C, "m", json_deep_copy(all), 5);
    await_mon(f, C, "g", obj(a2, "null", a3, "null", NULL), 10);
    /* the dead node's addresses are gone, the others' are there */
    char rc[32];
    gnode_t *globals[] = {G2, G3};
    for (size_t i = 0; i < 2; i++) {
        json_t *l =
            hold(f, gn_query(f, globals[i], "family", "'l", 3, rc, sizeof rc));
        assert_string_equal(rc, "0");
        if (json_object_get(l, a1) || !json_object_get(l, a2) ||
            !json_object_get(l, a3) || !json_object_get(l, B->ref) ||
            !json_object_get(l, C->ref))
            FAIL(f, "'l on %s after G1's death: %s", globals[i]->label,
                 dump(l));
    }
    /* and it goes on: a change after the failover reaches everybody */
    gn_do(f, B, "0", "set cfg after 2");
    json_object_set_new(cfg, "after", json_integer(2));
    for (size_t i = 0; i < 4; i++)
        await_family(f, alive[i], "cfg", json_deep_copy(cfg), 10);
    /* the same key from nodes of two global nodes: each global node keeps
     * one of the values; deleted on one node, the other's stays
     * everywhere */
    gn_do(f, B, "0", "set cfg shared \"b\"");
    gn_do(f, C, "0", "set cfg shared \"c\"");
    json_t *bc = hold(f, J("[\"b\",\"c\"]"));
    char held[64];
    for (size_t i = 0; i < 4; i++)
        await_one_of(f, alive[i], "cfg", cfg, "shared", bc, held, sizeof held,
                     10);
    gn_do(f, C, "0", "del cfg shared");
    json_t *cfg_b = hold(f, json_deep_copy(cfg));
    json_object_set_new(cfg_b, "shared", json_string("b"));
    for (size_t i = 0; i < 4; i++)
        await_family(f, alive[i], "cfg", json_deep_copy(cfg_b), 10);

    /* G1 comes back (the same address, a new process): it joins the other
     * global nodes and holds everything again; B stays with G2 */
    t0 = kt_now_ms();
    gnode_t *G1b = gn_start(f, "G1b", NULL, "--listen", a1, "--global",
                            "--seed", a2, "--seed", a3, (const char *)NULL);
    await_family(f, G1b, "workers", json_deep_copy(all), 10);
    await_family(f, G1b, "cfg", json_deep_copy(cfg_b), 10);
    await_mon(f, C, "g", obj(a1, "null", a2, "null", a3, "null", NULL), 10);
    fprintf(stderr,
            "  the restarted G1 holds everything %llu ms after its "
            "start\n",
            (unsigned long long)(kt_now_ms() - t0));
    /* what is set on G1 now reaches the others */
    gn_do(f, G1b, "0", "set cfg back 3");
    json_object_set_new(cfg_b, "back", json_integer(3));
    for (size_t i = 0; i < 4; i++)
        await_family(f, alive[i], "cfg", json_deep_copy(cfg_b), 10);
    expect_master(f, B, a2, 0);
    /* attached, an ordinary node keeps one link: to its master */
    expect_one_link(f, B, a2, 5);
    expect_one_link(f, C, CM->ref, 5);
    quit_all(f);
}

/* ---- case 5: two hosts and a partition ----------------------------------- */

#define H1 "10.233.0.1"
#define H2 "10.233.0.2"

static void hosts_make(fx_t *f)
{
    static const char *const a[2] = {H1 "/24", H2 "/24"};
    nt_netns_reap(NS_PREFIX);
    nt_hosts_make("partition", (const char *const[]){f->ns[0], f->ns[1]},
                  (const char *const[]){f->veth[0], f->veth[1]}, a,
                  f->ns_made, &f->veth_made);
}

/* Host 1 runs G1 and B (attached to G1), host 2 G2 and C (attached to G2).
 * The link between the hosts goes down: each side loses the other's
 * entries (when the keepalive notices) but keeps its own; what changes
 * meanwhile, and everything else, is on both sides again once it is up. */
static void partition_heals(void **state)
{
    fx_t *f = *state;
    hosts_make(f);
    gnode_t *G1 =
        gn_start(f, "G1", f->ns[0], "--listen", H1 ":4040", "--global",
                 "--seed", H2 ":4040", (const char *)NULL);
    gnode_t *G2 =
        gn_start(f, "G2", f->ns[1], "--listen", H2 ":4040", "--global",
                 "--seed", H1 ":4040", (const char *)NULL);
    gnode_t *B = gn_start(f, "B", f->ns[0], "--listen", H1 ":4041", "--seed",
                          H1 ":4040", (const char *)NULL);
    gnode_t *C = gn_start(f, "C", f->ns[1], "--listen", H2 ":4041", "--seed",
                          H2 ":4040", (const char *)NULL);
    expect_master(f, B, H1 ":4040", 10);
    expect_master(f, C, H2 ":4040", 10);
    const char *wb = gn_port(f, B, "wb"), *wc = gn_port(f, C, "wc");
    gn_do(f, B, "0", "reg workers wb \"b\"");
    gn_do(f, B, "0", "set cfg b 1");
    gn_do(f, C, "0", "reg workers wc \"c\"");
    gn_do(f, C, "0", "set cfg c 1");
    gn_do(f, B, "0", "mon m workers");
    gn_do(f, C, "0", "mon m workers");
    gn_do(f, B, "0", "mon g 'g");
    json_t *both = hold(f, obj(wb, "\"b\"", wc, "\"c\"", NULL));
    json_t *globals =
        hold(f, obj(H1 ":4040", "null", H2 ":4040", "null", NULL));
    await_mon(f, B, "m", json_deep_copy(both), 15);
    await_mon(f, C, "m", json_deep_copy(both), 15);
    await_mon(f, B, "g", json_deep_copy(globals), 10);
    await_family(f, B, "cfg", obj("b", "1", "c", "1", NULL), 10);
    await_family(f, C, "cfg", obj("b", "1", "c", "1", NULL), 10);

    /* the cable is pulled */
    uint64_t t0 = kt_now_ms();
    assert_int_equal(nt_ip("-n", f->ns[0], "link", "set", f->veth[0], "down",
                           (const char *)NULL),
                     0);
    /* nothing tells them but the keepalive */
    await_mon(f, B, "m", obj(wb, "\"b\"", NULL), 3 * KA + 2);
    await_mon(f, C, "m", obj(wc, "\"c\"", NULL), 3 * KA + 2);
    fprintf(stderr, "  both sides lost the other's entries after %llu ms\n",
            (unsigned long long)(kt_now_ms() - t0));
    await_mon(f, B, "g", obj(H1 ":4040", "null", NULL), 5);
    await_family(f, B, "cfg", obj("b", "1", NULL), 5);
    await_family(f, C, "cfg", obj("c", "1", NULL), 5);
    /* each keeps its own master */
    expect_master(f, B, H1 ":4040", 0);
    expect_master(f, C, H2 ":4040", 0);
    /* changes while apart */
    gn_do(f, B, "0", "set cfg during \"b\"");
    gn_do(f, C, "0", "del cfg c");
    gn_do(f, C, "0", "set cfg c2 2");
    await_family(f, B, "cfg", obj("b", "1", "during", "\"b\"", NULL), 5);
    await_family(f, C, "cfg", obj("c2", "2", NULL), 5);
    nt_run_for(&f->loop, 0.5);

    /* the cable is back */
    t0 = kt_now_ms();
    assert_int_equal(nt_ip("-n", f->ns[0], "link", "set", f->veth[0], "up",
                           (const char *)NULL),
                     0);
    await_mon(f, B, "m", json_deep_copy(both), 15);
    await_mon(f, C, "m", json_deep_copy(both), 15);
    json_t *cfg = hold(f, obj("b", "1", "during", "\"b\"", "c2", "2", NULL));
    await_family(f, B, "cfg", json_deep_copy(cfg), 10);
    await_family(f, C, "cfg", json_deep_copy(cfg), 10);
    await_family(f, G1, "cfg", json_deep_copy(cfg), 10);
    await_family(f, G2, "cfg", json_deep_copy(cfg), 10);
    await_family(f, G1, "workers", json_deep_copy(both), 10);
    await_family(f, G2, "workers", json_deep_copy(both), 10);
    await_mon(f, B, "g", json_deep_copy(globals), 10);
    fprintf(stderr, "  converged %llu ms after the link came back\n",
            (unsigned long long)(kt_now_ms() - t0));
    expect_master(f, B, H1 ":4040", 0);
    expect_master(f, C, H2 ":4040", 0);
    quit_all(f);
}

/* A global node that restarts (the same address, a new process): its
 * attached nodes lose their master, dial it again, attach and send all
 * their entries anew; a query asked meanwhile waits and is answered by
 * the new process. */
static void global_node_restarts(void **state)
{
    fx_t *f = *state;
    gnode_t *G, *B, *C;
    start_gbc(f, &G, &B, &C);
    char ga[160];
    snprintf(ga, sizeof ga, "%s", G->ref);
    const char *wb = gn_port(f, B, "wb"), *wc = gn_port(f, C, "wc");
    gn_do(f, B, "0", "reg workers wb \"b\"");
    gn_do(f, B, "0", "set cfg b 1");
    gn_do(f, C, "0", "reg workers wc \"c\"");
    gn_do(f, C, "0", "mon m workers");
    json_t *both = hold(f, obj(wb, "\"b\"", wc, "\"c\"", NULL));
    await_mon(f, C, "m", json_deep_copy(both), 10);

    gn_kill9(f, G);
    expect_master(f, B, "-", MT + 1);
    expect_master(f, C, "-", MT + 1);
    /* no master: a query waits, a change is kept for the next one */
    gn_cmd(C, "family q-down workers 20");
    gn_do(f, C, "0", "set cfg c 1");
    nt_run_for(&f->loop, 0.5);
    assert_int_equal(line_count(C->c->obuf, "result q-down "), 0);

    uint64_t t0 = kt_now_ms();
    gnode_t *G2 = gn_start(f, "Gnew", NULL, "--listen", ga, "--global",
                           (const char *)NULL);
    expect_master(f, B, ga, 5 * MT);
    expect_master(f, C, ga, 5 * MT);
    expect_lines(f, C, "result q-down ", 1, 10);
    char *r = line_nth(C->c->obuf, "result q-down ", 0), got[600];
    snprintf(got, sizeof got, "%s", r);
    free(r);
    if (strncmp(got, "0 {", 3))
        FAIL(f, "the query asked while G was down says \"%s\"", got);
    await_family(f, G2, "workers", json_deep_copy(both), 10);
    await_family(f, G2, "cfg", obj("b", "1", "c", "1", NULL), 10);
    await_family(f, B, "workers", json_deep_copy(both), 10);
    await_mon(f, C, "m", json_deep_copy(both), 10);
    fprintf(stderr,
            "  the restarted global node holds everything %llu ms "
            "after its start\n",
            (unsigned long long)(kt_now_ms() - t0));
    quit_all(f);
}

/* A node that is another's seed becomes global when that node makes it
 * its master (as 2.x's seeds do), although it is attached to a global
 * node itself: then it is global and meshes with the global node, and
 * what its attached node holds reaches the nodes of the other. */
static void seed_becomes_global(void **state)
{
    fx_t *f = *state;
    char ga[64], na[64], xa[64], ya[64];
    gnode_t *G = gn_start(f, "G", NULL, "--listen", addr(f, ga, sizeof ga),
                          "--global", (const char *)NULL);
    gnode_t *N = gn_start(f, "N", NULL, "--listen", addr(f, na, sizeof na),
                          "--seed", ga, (const char *)NULL);
    expect_master(f, N, ga, 10);
    gnode_t *Y = gn_start(f, "Y", NULL, "--listen", addr(f, ya, sizeof ya),
                          "--seed", ga, (const char *)NULL);
    expect_master(f, Y, ga, 10);
    gn_do(f, N, "0", "set cfg n 1");
    gn_do(f, Y, "0", "set cfg y 1");
    await_family(f, Y, "cfg", obj("n", "1", "y", "1", NULL), 10);
    /* X's seed is N */
    gnode_t *X = gn_start(f, "X", NULL, "--listen", addr(f, xa, sizeof xa),
                          "--seed", na, (const char *)NULL);
    expect_line(f, N, "global 1", 10);
    expect_master(f, N, na, 5);
    expect_master(f, X, na, 10);
    gn_do(f, X, "0", "set cfg x 1");
    json_t *cfg = hold(f, obj("n", "1", "x", "1", "y", "1", NULL));
    gnode_t *all[] = {G, N, X, Y};
    for (size_t i = 0; i < 4; i++)
        await_family(f, all[i], "cfg", json_deep_copy(cfg), 10);
    await_family(f, Y, "'g", obj(ga, "null", na, "null", NULL), 10);
    await_family(f, X, "'g", obj(ga, "null", na, "null", NULL), 10);
    quit_all(f);
}

/* Case 6: a node whose ID is no address (free text, as Perl's are) is
 * reached through the global node's 'l family (g_find / g_found), from a
 * public node and from an anon/ client; 'l holds every node's addresses;
 * an ID nobody knows fails with the reason. */
static void free_text_ids(void **state)
{
    fx_t *f = *state;
    char ga[64], ba[64], pa[64];
    gnode_t *G = gn_start(f, "G", NULL, "--listen", addr(f, ga, sizeof ga),
                          "--global", (const char *)NULL);
    gnode_t *B = gn_start(f, "B", NULL, "--listen", addr(f, ba, sizeof ba),
                          "--seed", ga, (const char *)NULL);
    gnode_t *P =
        gn_start(f, "P", NULL, "--listen", addr(f, pa, sizeof pa), "--name",
                 "perlish-P", "--seed", ga, (const char *)NULL);
    gnode_t *A =
        gn_start(f, "A", NULL, "--client", "--seed", ga, (const char *)NULL);
    assert_string_equal(P->ref, "perlish-P");
    assert_int_equal(strncmp(A->ref, "anon/", 5), 0);
    expect_master(f, B, ga, 10);
    expect_master(f, P, ga, 10);
    expect_master(f, A, ga, 10);
    json_t *want = hold(f, json_object());
    json_object_set_new(want, ga, strs(ga, NULL));
    json_object_set_new(want, ba, strs(ba, NULL));
    json_object_set_new(want, "perlish-P", strs(pa, NULL));
    json_object_set_new(want, A->ref, json_array()); /* listens nowhere */
    await_query(f, B, "family", "'l", json_deep_copy(want), 10);
    await_query(f, A, "family", "'l", json_deep_copy(want), 10);
    await_query(f, G, "family", "'l", json_deep_copy(want), 10);
    /* 'l may be read, not written */
    gn_do(f, B, "AEMP_EPERM", "set 'l %s [\"1.2.3.4:5\"]", ba);
    gn_do(f, B, "AEMP_EPERM", "del 'l %s", ba);

    const char *x = gn_port(f, P, "x");
    assert_int_equal(strncmp(x, "perlish-P#", 10), 0);
    gn_do(f, B, "0", "snd %s [\"hello\",\"from B\"]", x);
    expect_line(f, P, "recv x [\"hello\",\"from B\"]", MT + 2);
    char log[128];
    snprintf(log, sizeof log, "global: perlish-P is at %s", pa);
    if (!strstr(B->c->ebuf, log))
        FAIL(f, "B's log does not say \"%s\"", log);
    gn_do(f, A, "0", "snd %s [\"hello\",\"from A\"]", x);
    expect_line(f, P, "recv x [\"hello\",\"from A\"]", MT + 2);
    /* and the way back, by the senders' IDs */
    const char *rb = gn_port(f, B, "rb");
    gn_do(f, P, "0", "snd %s [\"back\"]", rb);
    expect_line(f, B, "recv rb [\"back\"]", MT + 2);

    /* nobody knows "nobody-X": the monitor says so, within the timeout */
    uint64_t t0 = kt_now_ms();
    gn_do(f, B, "0", "monport nobody-X#p");
    expect_line(f, B, "down nobody-X#p ", MT + 2);
    uint64_t took = kt_now_ms() - t0;
    char *reason = line_nth(B->c->obuf, "down nobody-X#p ", 0), why[600];
    snprintf(why, sizeof why, "%s", reason);
    free(reason);
    char text[200];
    snprintf(text, sizeof text,
             "no address is known for nobody-X (global node %s does not know "
             "it)",
             ga);
    if (!strstr(why, "[\"transport_error\",\"nobody-X\",") ||
        !strstr(why, "no address is known for nobody-X"))
        FAIL(f, "the monitor of nobody-X#p fired with %s", why);
    if (took > (uint64_t)(MT * 1000) + 500)
        FAIL(f, "nobody-X failed after %llu ms, beyond the monitor timeout",
             (unsigned long long)took);
    /* what B asked G meanwhile, and was told: G does not know it */
    if (!strstr(B->c->ebuf, text))
        FAIL(f, "B's log does not say \"%s\"", text);
    quit_all(f);
    /* and B asked at the pace of its connect interval, not in a busy
     * loop: at most one g_find per attempt (MT / CI of them), with slack */
    int asked = cp_count(B->c->ebuf, "cannot connect to nobody-X");
    fprintf(stderr, "  B tried nobody-X %d times in %llu ms\n", asked,
            (unsigned long long)took);
    if (asked > 2 * (int)(MT / 0.2) + 5) {
        /* the whole log is no use here: its end */
        size_t len = strlen(B->c->ebuf);
        fprintf(stderr, "B's log ends: %s\n",
                B->c->ebuf + (len > 2000 ? len - 2000 : 0));
        fail_msg("B asked G about nobody-X %d times within %llu ms (a busy "
                 "loop of g_find / g_found)",
                 asked, (unsigned long long)took);
    }
}

/* ---- case 7: argument errors, in this process ------------------------------
 */

typedef struct qres {
    int calls, status, null_result;
    uint64_t at;
} qres_t;

static void on_q(aemp_node_t *n, int status, const aemp_val_t *result,
                 void *user)
{
    (void)n;
    qres_t *q = user;
    q->calls++;
    q->status = status;
    q->null_result = result == NULL;
    q->at = kt_now_ms();
}

static void on_mon_never(aemp_node_t *n, const char *family,
                         const aemp_val_t *db, const aemp_val_t *added,
                         const aemp_val_t *changed, const aemp_val_t *deleted,
                         void *user)
{
    (void)n;
    (void)family;
    (void)db;
    (void)added;
    (void)changed;
    (void)deleted;
    ++*(int *)user;
}

static void on_grp_never(aemp_node_t *n, const char *group,
                         const aemp_val_t *members, const aemp_val_t *added,
                         const aemp_val_t *removed, void *user)
{
    (void)n;
    (void)group;
    (void)members;
    (void)added;
    (void)removed;
    ++*(int *)user;
}

static int q_done(void *arg)
{
    qres_t *q = arg;
    for (int i = 0; i < 4; i++)
        if (!q[i].calls)
            return 0;
    return 1;
}

static void argument_errors(void **state)
{
    (void)state;
    /* without a network configuration: AEMP_ENOROUTE for every one */
    aemp_node_t *n = kt_node_new();
    const char *p = kt_port(n, NULL, NULL);
    aemp_val_t *v = aemp_str("x");
    qres_t q = {0};
    int calls = 0;
    aemp_mon_t *guard = NULL;
    assert_int_equal(aemp_db_set(n, "f", "k", &v), AEMP_ENOROUTE);
    assert_non_null(v); /* still ours */
    assert_int_equal(aemp_db_del(n, "f", "k"), AEMP_ENOROUTE);
    assert_int_equal(aemp_db_reg(n, "f", p, &v, &guard), AEMP_ENOROUTE);
    assert_non_null(v);
    assert_null(guard);
    assert_int_equal(aemp_db_family(n, "f", 1, on_q, &q), AEMP_ENOROUTE);
    assert_int_equal(aemp_db_keys(n, "f", 1, on_q, &q), AEMP_ENOROUTE);
    assert_int_equal(aemp_db_values(n, "f", 1, on_q, &q), AEMP_ENOROUTE);
    assert_int_equal(aemp_db_mon(n, "f", on_mon_never, &calls, &guard),
                     AEMP_ENOROUTE);
    assert_int_equal(aemp_grp_reg(n, "g", p, &guard), AEMP_ENOROUTE);
    assert_int_equal(aemp_grp_get(n, "g", 1, on_q, &q), AEMP_ENOROUTE);
    assert_int_equal(aemp_grp_mon(n, "g", on_grp_never, &calls, &guard),
                     AEMP_ENOROUTE);
    assert_null(guard);
    assert_int_equal(aemp_node_is_global(n), 0);
    assert_null(aemp_master(n));
    nt_run_for(aemp_node_loop(n), 0.05);
    assert_int_equal(q.calls + calls, 0);
    aemp_node_free(n);

    /* configured, never initialised, no seed: a node without a master */
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(aemp_node_new(&n, &loop), 0);
    aemp_netconf_t conf = {.secret = SECRET, .monitor_timeout = MT};
    assert_int_equal(aemp_node_configure(n, &conf), 0);
    p = kt_port(n, NULL, NULL);
    char port[192];
    snprintf(port, sizeof port, "%s", p);
    /* NULL and empty names: AEMP_EINVAL, whatever else is wrong */
    const char *bad[] = {NULL, ""};
    for (int i = 0; i < 2; i++) {
        const char *b = bad[i];
        assert_int_equal(aemp_db_set(n, b, "k", &v), AEMP_EINVAL);
        assert_int_equal(aemp_db_set(n, "f", b, &v), AEMP_EINVAL);
        assert_int_equal(aemp_db_del(n, b, "k"), AEMP_EINVAL);
        assert_int_equal(aemp_db_del(n, "f", b), AEMP_EINVAL);
        assert_int_equal(aemp_db_reg(n, b, port, &v, &guard), AEMP_EINVAL);
        assert_int_equal(aemp_db_reg(n, "f", b, &v, &guard), AEMP_EINVAL);
        assert_int_equal(aemp_db_family(n, b, 1, on_q, &q), AEMP_EINVAL);
        assert_int_equal(aemp_db_keys(n, b, 1, on_q, &q), AEMP_EINVAL);
        assert_int_equal(aemp_db_values(n, b, 1, on_q, &q), AEMP_EINVAL);
        assert_int_equal(aemp_db_mon(n, b, on_mon_never, &calls, &guard),
                         AEMP_EINVAL);
        assert_int_equal(aemp_grp_reg(n, b, port, &guard), AEMP_EINVAL);
        assert_int_equal(aemp_grp_reg(n, "g", b, &guard), AEMP_EINVAL);
        assert_int_equal(aemp_grp_get(n, b, 1, on_q, &q), AEMP_EINVAL);
        assert_int_equal(aemp_grp_mon(n, b, on_grp_never, &calls, &guard),
                         AEMP_EINVAL);
        assert_non_null(v);
        assert_null(guard);
    }
    /* no callback, a bad timeout */
    assert_int_equal(aemp_db_family(n, "f", 1, NULL, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_grp_get(n, "g", 1, NULL, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_db_keys(n, "f", -1, on_q, &q), AEMP_EINVAL);
    assert_int_equal(aemp_db_mon(n, "f", NULL, NULL, &guard), AEMP_EINVAL);
    assert_int_equal(aemp_grp_mon(n, "g", NULL, NULL, &guard), AEMP_EINVAL);
    assert_null(guard);
    /* the protocol's own families: read, never written */
    assert_int_equal(aemp_db_set(n, "'l", "k", &v), AEMP_EPERM);
    assert_int_equal(aemp_db_set(n, "'g", "k", NULL), AEMP_EPERM);
    assert_int_equal(aemp_db_del(n, "'l", "k"), AEMP_EPERM);
    assert_int_equal(aemp_db_reg(n, "'x", port, &v, &guard), AEMP_EPERM);
    assert_int_equal(aemp_grp_reg(n, "'x", port, &guard), AEMP_EPERM);
    assert_non_null(v);
    assert_null(guard);
    /* db_reg needs a live local port */
    assert_int_equal(aemp_db_reg(n, "f", "127.0.0.1:9#x", &v, &guard),
                     AEMP_ENOTLOCAL);
    assert_int_equal(aemp_grp_reg(n, "g", "127.0.0.1:9#x", &guard),
                     AEMP_ENOTLOCAL);
    assert_int_equal(aemp_kil(n, port, NULL), 0);
    nt_run_for(&loop, 0.05);
    assert_int_equal(aemp_db_reg(n, "f", port, &v, &guard), AEMP_ENOPORT);
    assert_int_equal(aemp_grp_reg(n, "g", port, &guard), AEMP_ENOPORT);
    assert_non_null(v);
    assert_null(guard);
    /* what needs no answer works without a master */
    assert_int_equal(aemp_db_set(n, "f", "k", &v), 0);
    assert_null(v); /* taken */
    assert_int_equal(aemp_db_set(n, "f", "n", NULL), 0);
    assert_int_equal(aemp_db_del(n, "f", "n"), 0);
    assert_int_equal(aemp_db_del(n, "f", "never"), 0);
    assert_int_equal(aemp_db_mon(n, "f", on_mon_never, &calls, &guard), 0);
    assert_non_null(guard);
    assert_int_equal(aemp_node_is_global(n), 0);
    assert_null(aemp_master(n));

    /* queries time out, each after its own timeout, from the loop */
    qres_t qs[4] = {{0}};
    uint64_t t0 = kt_now_ms();
    assert_int_equal(aemp_db_family(n, "f", 0.2, on_q, &qs[0]), 0);
    assert_int_equal(aemp_db_keys(n, "f", 0.4, on_q, &qs[1]), 0);
    assert_int_equal(aemp_db_values(n, "f", 0.6, on_q, &qs[2]), 0);
    assert_int_equal(aemp_grp_get(n, "g", 0.8, on_q, &qs[3]), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(qs[i].calls, 0);
    nt_run_until(&loop, q_done, qs, 5);
    for (int i = 0; i < 4; i++) {
        uint64_t after = qs[i].at - t0, want = 200 * (uint64_t)(i + 1);
        if (qs[i].calls != 1 || qs[i].status != AEMP_ETIMEDOUT ||
            !qs[i].null_result || after + 20 < want || after > want + 1000)
            fail_msg("query %d: %d calls, status %s, after %llu ms (want "
                     "AEMP_ETIMEDOUT with no result after %llu ms)",
                     i, qs[i].calls, aemp_err_name(qs[i].status),
                     (unsigned long long)after, (unsigned long long)want);
    }
    nt_run_for(&loop, 0.1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(qs[i].calls, 1); /* once */
    assert_int_equal(calls, 0);           /* no master, no snapshot */
    aemp_node_free(n);
    aemp_mon_cancel(guard); /* after the node: allowed */
    nt_loop_finish(&loop);
}

int main(void)
{
    const char *e = getenv("AEMP_GLOBAL_TESTS");
    if (e)
        cmocka_set_test_filter(e);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(argument_errors),
        cmocka_unit_test_setup_teardown(registration_and_lookup, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(requests_wait_for_master, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(registering_port_dies, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(registering_node_killed, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(global_node_killed, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(global_node_restarts, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(seed_becomes_global, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(partition_heals, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(free_text_ids, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
