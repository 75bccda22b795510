/* `aemp db`, `aemp grp`, `aemp run --global` and the global part of
 * `aemp trace` as users run them: real processes on 127.0.0.1, one
 * global node (`aemp run --global`) and two ordinary ones seeded with it,
 * each command a child process that talks to the network through the
 * node it names.  Where a peer must behave as a Perl node does (no answer
 * to aemp::global), a node inside this test process plays it.  Every
 * child runs on the test's loop and every wait has a deadline.  The
 * binary comes from AEMP_TOOL_PATH. */
#include "helpers.h"

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef AEMP_TOOL_PATH
#error "AEMP_TOOL_PATH must name the aemp binary"
#endif

#define SECRET "global cli test secret"

static char dir[] = "/tmp/aemp-test-gcli-XXXXXX";
static char cfg[128]; /* dir/config.json: absent unless a test writes it */

/* ---- children --------------------------------------------------------------
 */

/* The children of the running test: a test that fails leaves them
 * running (`aemp run`, `aemp db mon`), and its teardown ends them (by
 * their IDs).  Each test's loop is static, so that libuv's SIGCHLD
 * handler still finds a failed test's loop where it was. */
static int nodes[512], nnodes;

static int kill_nodes(void **state)
{
    for (int i = 0; i < nnodes; i++)
        kill(nodes[i], SIGKILL);
    nnodes = 0;
    return 0;
}

/* `aemp --config <cfg> --secret SECRET <args...>` (args NULL-terminated). */
static cp_child_t *tool_v(uv_loop_t *loop, const char *const *args)
{
    const char *argv[40] = {AEMP_TOOL_PATH, "--config", cfg, "--secret",
                            SECRET};
    size_t n = 5;
    for (size_t i = 0; args[i]; i++) {
        assert_true(n < 39);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    cp_child_t *c = cp_spawn(loop, AEMP_TOOL_PATH, argv);
    if (nnodes < 512)
        nodes[nnodes++] = c->pid;
    return c;
}

#define TOOL(loop, ...) tool_v(loop, (const char *const[]){__VA_ARGS__, NULL})

/* Runs `aemp <args...>` to completion (at most 20 s); the child is yours. */
static cp_child_t *done_v(uv_loop_t *loop, const char *const *args)
{
    cp_child_t *c = tool_v(loop, args);
    cp_expect_exit(c, 20);
    return c;
}

#define DONE(loop, ...) done_v(loop, (const char *const[]){__VA_ARGS__, NULL})

/* The command must exit with status and print exactly out (NULL: any). */
static void expect(cp_child_t *c, int status, const char *out)
{
    cp_expect_status(c, status);
    if (out && strcmp(c->obuf, out)) {
        cp_dump(c);
        fail_msg("stdout: want %s", out);
    }
    cp_free(c);
}

/* The same for one line of JSON, equal to want as JSON (an object's keys
 * come in no particular order). */
static void expect_json(cp_child_t *c, int status, const char *want)
{
    cp_expect_status(c, status);
    json_error_t e;
    json_t *got = json_loads(c->obuf, JSON_DECODE_ANY, &e);
    json_t *w = json_loads(want, JSON_DECODE_ANY, &e);
    assert_non_null(w);
    if (!got || !json_equal(got, w) || cp_count(c->obuf, "\n") != 1) {
        cp_dump(c);
        fail_msg("stdout: want %s", want);
    }
    json_decref(got);
    json_decref(w);
    cp_free(c);
}

static void expect_err(cp_child_t *c, int status, const char *needle)
{
    cp_expect_status(c, status);
    if (!strstr(c->ebuf, needle)) {
        cp_dump(c);
        fail_msg("stderr: want %s", needle);
    }
    cp_free(c);
}

/* `aemp run 127.0.0.1:<free port> [seed] [extra...]`; *ref its noderef. */
static cp_child_t *start_node(uv_loop_t *loop, char *ref, size_t size,
                              const char *seed, const char *extra,
                              const char *extra2)
{
    for (int tries = 0; tries < 10; tries++) {
        char want[64];
        snprintf(want, sizeof want, "127.0.0.1:%d", nt_free_port());
        const char *args[6] = {"run", want};
        size_t n = 2;
        if (seed)
            args[n++] = seed;
        if (extra)
            args[n++] = extra;
        if (extra2)
            args[n++] = extra2;
        args[n] = NULL;
        cp_child_t *c = tool_v(loop, args);
        if (cp_await_stdout(c, "\n", 1, 10)) {
            cp_first_line(c, ref, size);
            assert_string_equal(ref, want);
            return c;
        }
        if (!c->exited) {
            cp_dump(c);
            fail_msg("aemp run printed nothing within 10 s");
        }
        cp_expect_exit(c, 5); /* the port was taken: another */
        cp_free(c);
    }
    fail_msg("aemp run did not start");
    return NULL;
}

/* One global node G and two ordinary nodes A and B seeded with it. */
typedef struct net {
    uv_loop_t *loop;
    cp_child_t *g, *a, *b;
    char gref[64], aref[64], bref[64];
} net_t;

/* Waits until the global node holds node id's addresses ('l): then id is
 * attached to it. */
static void await_attached(net_t *t, const char *id)
{
    char want[128];
    snprintf(want, sizeof want, "[\"add\",\"%s\",", id);
    cp_child_t *c = TOOL(t->loop, "db", t->gref, "mon", "'l");
    if (!cp_await_stdout(c, want, 1, 15)) {
        cp_dump(c);
        fail_msg("%s did not attach to %s", id, t->gref);
    }
    cp_kill(c, SIGTERM);
    cp_expect_exit(c, 10);
    expect(c, 0, NULL);
}

static void net_start(net_t *t, uv_loop_t *loop)
{
    memset(t, 0, sizeof *t);
    t->loop = loop;
    t->g = start_node(loop, t->gref, sizeof t->gref, NULL, "--global", NULL);
    t->a = start_node(loop, t->aref, sizeof t->aref, t->gref, NULL, NULL);
    t->b = start_node(loop, t->bref, sizeof t->bref, t->gref, NULL, NULL);
    await_attached(t, t->aref);
    await_attached(t, t->bref);
}

static void net_stop(net_t *t)
{
    cp_free(t->a);
    cp_free(t->b);
    cp_free(t->g);
}

/* ---- tests ------------------------------------------------------------------
 */

/* set through A, read through B and G: the family, one value, the keys;
 * del; values as JSON, strings, --raw. */
static void db_set_get_keys_del(void **state)
{
    static uv_loop_t loop; /* outlives a failed test: see kill_nodes */
    uv_loop_init(&loop);
    net_t t;
    net_start(&t, &loop);
    cp_child_t *c = DONE(&loop, "db", t.aref, "set", "f", "k", "v");
    expect(c, 0, "");
    expect(DONE(&loop, "db", t.bref, "get", "f"), 0, "{\"k\":\"v\"}\n");
    expect(DONE(&loop, "db", t.bref, "get", "f", "k"), 0, "\"v\"\n");
    expect(DONE(&loop, "db", t.gref, "get", "f", "k"), 0, "\"v\"\n");
    c = DONE(&loop, "db", t.bref, "get", "f", "nokey");
    assert_string_equal(c->ebuf, "aemp: no key \"nokey\" in family \"f\"\n");
    expect(c, 1, "");
    expect(DONE(&loop, "db", t.gref, "keys", "f"), 0, "[\"k\"]\n");
    /* values: JSON, and strings (also what looks like JSON, with -s) */
    expect(DONE(&loop, "db", t.aref, "set", "f", "j", "{\"a\":[1,2.5,null]}"),
           0, "");
    expect(DONE(&loop, "db", t.bref, "get", "f", "j"), 0,
           "{\"a\":[1,2.5,null]}\n");
    expect(DONE(&loop, "db", t.aref, "set", "f", "n", "-s", "42"), 0, "");
    expect(DONE(&loop, "db", t.bref, "get", "f", "n"), 0, "\"42\"\n");
    expect(DONE(&loop, "db", t.aref, "set", "f", "n", "42"), 0, "");
    expect(DONE(&loop, "db", t.bref, "get", "f", "n"), 0, "42\n");
    expect_json(DONE(&loop, "db", t.bref, "get", "f"), 0,
                "{\"k\":\"v\",\"j\":{\"a\":[1,2.5,null]},\"n\":42}");
    /* an empty family */
    expect(DONE(&loop, "db", t.bref, "get", "nothing"), 0, "{}\n");
    expect(DONE(&loop, "db", t.bref, "keys", "nothing"), 0, "[]\n");
    /* the addresses every node registers ('l) can be read */
    c = DONE(&loop, "db", t.bref, "get", "'l", t.aref);
    char want[128];
    snprintf(want, sizeof want, "[\"%s\"]\n", t.aref);
    expect(c, 0, want);
    /* del through B, which holds no f/k: the key stays, and del says so */
    c = DONE(&loop, "db", t.bref, "del", "f", "k", "--timeout", "1");
    expect_err(c, 1, "still holds f/k");
    /* through A, which set it */
    expect(DONE(&loop, "db", t.aref, "del", "f", "k"), 0, "");
    expect_err(DONE(&loop, "db", t.bref, "get", "f", "k"), 1,
               "no key \"k\" in family \"f\"");
    /* deleting what is not set is no error */
    expect(DONE(&loop, "db", t.aref, "del", "f", "k"), 0, "");
    /* set through the global node itself */
    expect(DONE(&loop, "db", t.gref, "set", "f", "g", "true"), 0, "");
    expect(DONE(&loop, "db", t.aref, "get", "f", "g"), 0, "true\n");
    /* a node's entries go with it */
    cp_child_t *mon = TOOL(&loop, "db", t.bref, "mon", "f");
    assert_true(cp_await_stdout(mon, "[\"ready\"]\n", 1, 10));
    cp_kill(t.a, SIGTERM);
    cp_expect_exit(t.a, 10);
    if (!cp_await_stdout(mon, "[\"del\",\"n\"]\n", 1, 10) ||
        !cp_await_stdout(mon, "[\"del\",\"j\"]\n", 1, 10)) {
        cp_dump(mon);
        fail_msg("A's entries did not vanish with A");
    }
    cp_kill(mon, SIGINT);
    cp_expect_exit(mon, 10);
    expect(mon, 0, NULL);
    expect(DONE(&loop, "db", t.bref, "get", "f"), 0, "{\"g\":true}\n");
    net_stop(&t);
    nt_loop_finish(&loop);
    nnodes = 0; /* all ended */
}

/* set exits 0 only once the global node holds the value: a value another
 * node holds already counts; a timeout says what the global node holds. */
static void db_set_waits_for_master(void **state)
{
    static uv_loop_t loop; /* outlives a failed test: see kill_nodes */
    uv_loop_init(&loop);
    net_t t;
    net_start(&t, &loop);
    expect(DONE(&loop, "db", t.aref, "set", "cfg", "color", "blue"), 0, "");
    /* B sets the same: held at once; A's deletion leaves B's */
    expect(DONE(&loop, "db", t.bref, "set", "cfg", "color", "blue"), 0, "");
    expect_err(
        DONE(&loop, "db", t.aref, "del", "cfg", "color", "--timeout", "1"), 1,
        "still holds cfg/color");
    expect(DONE(&loop, "db", t.bref, "get", "cfg", "color"), 0, "\"blue\"\n");
    /* the only holder now: B's new value is held at once */
    expect(DONE(&loop, "db", t.bref, "set", "cfg", "color", "red"), 0, "");
    expect(DONE(&loop, "db", t.aref, "get", "cfg", "color"), 0, "\"red\"\n");
    /* a secure node refuses to set entries for peers: set times out,
     * saying what the global node holds */
    cp_write_file(cfg, "{\"profile\": {\"s\": {\"secure\": true}}}\n");
    char sref[64];
    cp_child_t *sec =
        start_node(&loop, sref, sizeof sref, t.gref, "--profile", "s");
    await_attached(&t, sref);
    cp_child_t *c = DONE(&loop, "db", sref, "set", "cfg", "color", "green",
                         "--timeout", "1");
    char want[256];
    snprintf(want, sizeof want,
             "aemp: timed out: global node %s holds cfg/color = \"red\", not "
             "\"green\"\n",
             t.gref);
    assert_string_equal(c->ebuf, want);
    expect(c, 1, "");
    c = DONE(&loop, "db", sref, "set", "cfg", "shape", "round", "--timeout",
             "1");
    snprintf(want, sizeof want,
             "aemp: timed out: global node %s does not hold cfg/shape\n",
             t.gref);
    assert_string_equal(c->ebuf, want);
    expect(c, 1, "");
    unlink(cfg);
    cp_free(sec);
    net_stop(&t);
    nt_loop_finish(&loop);
    nnodes = 0; /* all ended */
}

/* mon: the snapshot (add lines), ["ready"], then a line per change while
 * other tools set and delete; SIGINT and SIGTERM end it with 0. */
static void db_mon_lines(void **state)
{
    static uv_loop_t loop; /* outlives a failed test: see kill_nodes */
    uv_loop_init(&loop);
    net_t t;
    net_start(&t, &loop);
    cp_child_t *mon = TOOL(&loop, "db", t.bref, "mon", "f2");
    if (!cp_await_stdout(mon, "[\"ready\"]\n", 1, 10)) {
        cp_dump(mon);
        fail_msg("no snapshot of an empty family");
    }
    assert_string_equal(mon->obuf, "[\"ready\"]\n");
    expect(DONE(&loop, "db", t.aref, "set", "f2", "x", "1"), 0, "");
    assert_true(cp_await_stdout(mon, "[\"add\",\"x\",1]\n", 1, 10));
    expect(DONE(&loop, "db", t.gref, "set", "f2", "y", "[\"a\"]"), 0, "");
    expect(DONE(&loop, "db", t.aref, "set", "f2", "x", "2"), 0, "");
    assert_true(cp_await_stdout(mon, "[\"chg\",\"x\",2]\n", 1, 10));
    /* a second monitor: the snapshot first */
    cp_child_t *mon2 = TOOL(&loop, "db", t.aref, "mon", "f2");
    assert_true(cp_await_stdout(mon2, "[\"ready\"]\n", 1, 10));
    assert_string_equal(mon2->obuf,
                        "[\"add\",\"x\",2]\n[\"add\",\"y\",[\"a\"]]\n"
                        "[\"ready\"]\n");
    expect(DONE(&loop, "db", t.aref, "del", "f2", "x"), 0, "");
    assert_true(cp_await_stdout(mon, "[\"del\",\"x\"]\n", 1, 10));
    assert_true(cp_await_stdout(mon2, "[\"del\",\"x\"]\n", 1, 10));
    cp_kill(mon, SIGINT);
    cp_expect_exit(mon, 10);
    expect(mon, 0,
           "[\"ready\"]\n[\"add\",\"x\",1]\n[\"add\",\"y\",[\"a\"]]\n"
           "[\"chg\",\"x\",2]\n[\"del\",\"x\"]\n");
    cp_kill(mon2, SIGTERM);
    cp_expect_exit(mon2, 10);
    expect(mon2, 0, NULL);
    /* the global node goes: the monitor cannot go on */
    mon = TOOL(&loop, "db", t.aref, "mon", "f2");
    assert_true(cp_await_stdout(mon, "[\"ready\"]\n", 1, 10));
    cp_kill(t.g, SIGTERM);
    cp_expect_exit(mon, 15);
    expect_err(mon, 1, "lost global node");
    net_stop(&t);
    nt_loop_finish(&loop);
    nnodes = 0; /* all ended */
}

/* grp get / grp mon of a group whose members a node set. */
static void grp_get_mon(void **state)
{
    static uv_loop_t loop; /* outlives a failed test: see kill_nodes */
    uv_loop_init(&loop);
    net_t t;
    net_start(&t, &loop);
    char p1[96], p2[96], want[256];
    snprintf(p1, sizeof p1, "%s#worker.1", t.aref);
    snprintf(p2, sizeof p2, "%s#worker.2", t.bref);
    expect(DONE(&loop, "db", t.aref, "set", "workers", p1, "null"), 0, "");
    snprintf(want, sizeof want, "[\"%s\"]\n", p1);
    expect(DONE(&loop, "grp", t.bref, "get", "workers"), 0, want);
    cp_child_t *mon = TOOL(&loop, "grp", t.gref, "mon", "workers");
    snprintf(want, sizeof want, "[\"add\",\"%s\"]\n[\"ready\"]\n", p1);
    if (!cp_await_stdout(mon, "[\"ready\"]\n", 1, 10) ||
        strcmp(mon->obuf, want)) {
        cp_dump(mon);
        fail_msg("grp mon: want the snapshot %s", want);
    }
    expect(DONE(&loop, "db", t.bref, "set", "workers", p2, "null"), 0, "");
    snprintf(want, sizeof want, "[\"add\",\"%s\"]\n", p2);
    assert_true(cp_await_stdout(mon, want, 1, 10));
    expect(DONE(&loop, "db", t.aref, "del", "workers", p1), 0, "");
    snprintf(want, sizeof want, "[\"del\",\"%s\"]\n", p1);
    assert_true(cp_await_stdout(mon, want, 1, 10));
    snprintf(want, sizeof want, "[\"%s\"]\n", p2);
    expect(DONE(&loop, "grp", t.aref, "get", "workers"), 0, want);
    expect(DONE(&loop, "grp", t.aref, "get", "nobody"), 0, "[]\n");
    cp_kill(mon, SIGINT);
    cp_expect_exit(mon, 10);
    expect(mon, 0, NULL);
    net_stop(&t);
    nt_loop_finish(&loop);
    nnodes = 0; /* all ended */
}

/* grp mon of a group without members: the snapshot is only ["ready"]. */
static void grp_mon_empty_group(void **state)
{
    static uv_loop_t loop; /* outlives a failed test: see kill_nodes */
    uv_loop_init(&loop);
    net_t t;
    net_start(&t, &loop);
    cp_child_t *mon = TOOL(&loop, "grp", t.bref, "mon", "empty");
    if (!cp_await_stdout(mon, "[\"ready\"]\n", 1, 10)) {
        cp_dump(mon);
        fail_msg("grp mon of an empty group: no snapshot (aemp_grp_mon's "
                 "first call)");
    }
    char p[96], want[128];
    snprintf(p, sizeof p, "%s#w.1", t.aref);
    expect(DONE(&loop, "db", t.aref, "set", "empty", p, "null"), 0, "");
    snprintf(want, sizeof want, "[\"ready\"]\n[\"add\",\"%s\"]\n", p);
    assert_true(cp_await_stdout(mon, "add", 1, 10));
    cp_kill(mon, SIGTERM);
    cp_expect_exit(mon, 10);
    expect(mon, 0, want);
    net_stop(&t);
    nt_loop_finish(&loop);
    nnodes = 0; /* all ended */
}

/* trace says which nodes are global and who is attached to whom; the
 * configuration key "global" makes a global node as --global does. */
static void trace_shows_global(void **state)
{
    static uv_loop_t loop; /* outlives a failed test: see kill_nodes */
    uv_loop_init(&loop);
    net_t t;
    net_start(&t, &loop);
    cp_child_t *c = DONE(&loop, "trace", t.aref);
    cp_expect_status(c, 0);
    char want[256];
    snprintf(want, sizeof want, "%s global: no; master: %s\n", t.aref, t.gref);
    const char *line = strstr(c->obuf, want);
    snprintf(want, sizeof want, "%s global: no; master: %s\n", t.bref, t.gref);
    const char *bline = strstr(c->obuf, want);
    snprintf(want, sizeof want, "%s global: yes; attached: ", t.gref);
    const char *gline = strstr(c->obuf, want);
    const char *gend = gline ? strchr(gline, '\n') : NULL;
    char a[80], b[80];
    snprintf(a, sizeof a, " %s", t.aref);
    snprintf(b, sizeof b, " %s", t.bref);
    const char *ga = gline ? strstr(gline, a) : NULL;
    const char *gb = gline ? strstr(gline, b) : NULL;
    if (!line || !bline || !gend || !ga || ga > gend || !gb || gb > gend ||
        !strstr(gline, "; other globals: none\n")) {
        cp_dump(c);
        fail_msg("trace does not show who is global and attached");
    }
    /* and still whom each knows */
    snprintf(want, sizeof want, "%s knows: %s", t.aref, t.aref);
    if (!strstr(c->obuf, want)) {
        cp_dump(c);
        fail_msg("trace lost its knows lines");
    }
    assert_int_equal(cp_count(c->obuf, " knows: "), 3);
    assert_int_equal(cp_count(c->obuf, " global: "), 3);
    cp_free(c);
    net_stop(&t);
    /* "global": true in the profile */
    char text[256];
    snprintf(text, sizeof text,
             "{\"profile\": {\"g\": {\"global\": true}, \"o\": {}}}\n");
    cp_write_file(cfg, text);
    char gref[64], oref[64];
    cp_child_t *g =
        start_node(&loop, gref, sizeof gref, NULL, "--profile", "g");
    cp_child_t *o =
        start_node(&loop, oref, sizeof oref, NULL, "--profile", "o");
    c = DONE(&loop, "trace", gref);
    snprintf(want, sizeof want, "%s global: yes; attached: none", gref);
    if (!strstr(c->obuf, want)) {
        cp_dump(c);
        fail_msg("the configuration key global does not make a global node");
    }
    cp_free(c);
    /* an ordinary node without seeds is neither global nor attached */
    c = DONE(&loop, "trace", oref);
    snprintf(want, sizeof want, "%s global: no; master: none\n", oref);
    if (!strstr(c->obuf, want)) {
        cp_dump(c);
        fail_msg("trace: want %s", want);
    }
    cp_free(c);
    cp_free(o);
    cp_free(g);
    unlink(cfg);
    nt_loop_finish(&loop);
    nnodes = 0; /* all ended */
}

/* A node that is neither global nor attached: a clear error at once. */
static void db_node_without_master(void **state)
{
    static uv_loop_t loop; /* outlives a failed test: see kill_nodes */
    uv_loop_init(&loop);
    char ref[64], want[256];
    cp_child_t *r = start_node(&loop, ref, sizeof ref, NULL, NULL, NULL);
    static const char *const subs[][4] = {
        {"get", "f", NULL}, {"set", "f", "k", "v"}, {"mon", "f", NULL}};
    snprintf(want, sizeof want,
             "aemp: %s is not a global node and has no master (it is "
             "attached to no global node); name a global node\n",
             ref);
    for (size_t i = 0; i < 3; i++) {
        const char *args[] = {"db",       ref,        subs[i][0], subs[i][1],
                              subs[i][2], subs[i][3], NULL};
        if (!subs[i][2])
            args[4] = NULL;
        cp_child_t *c = done_v(&loop, args);
        assert_string_equal(c->ebuf, want);
        assert_true(c->exited_ms - c->started_ms < 5000);
        expect(c, 1, "");
    }
    cp_child_t *c = DONE(&loop, "grp", ref, "get", "g");
    assert_string_equal(c->ebuf, want);
    expect(c, 1, "");
    cp_free(r);
    /* nobody there */
    c = DONE(&loop, "db", ref, "get", "f", "--timeout", "2");
    snprintf(want, sizeof want, "aemp: cannot reach %s: ", ref);
    expect_err(c, 1, want);
    nt_loop_finish(&loop);
    nnodes = 0; /* all ended */
}

/* ---- nodes as Perl's behave ------------------------------------------------
 */

/* A node in this process: it never starts the global service, so it does
 * not know aemp::global (a Perl node does not either).  As a Perl 2.x
 * global node it tells g_global to each node whose link comes up and
 * answers g_db_family with a family whose strings are byte strings. */
typedef struct perlish {
    aemp_node_t *n;
    char ref[64], peer[256];
    int global;
} perlish_t;

static void perlish_up(aemp_node_t *n, const char *id, int up,
                       const aemp_msg_t *reason, void *user)
{
    perlish_t *p = user;
    if (!up || !p->global)
        return;
    snprintf(p->peer, sizeof p->peer, "%s", id);
    assert_int_equal(aemp_snd(n, id, "s", "g_global"), 0);
}

/* ["g_db_family", family, id] -> ["g_reply", id, {"k": b"v\xc3\xa9"}] */
static int perlish_family(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    perlish_t *p = user;
    const char *id;
    if (aemp_msg_unpack(args, "-s*", &id) < 0)
        return 0;
    aemp_val_t *fam =
        aemp_map_set(aemp_map_new(), "k", aemp_bytes("v\xc3\xa9", 3));
    aemp_val_t *m = aemp_arr(aemp_str("g_reply"), aemp_str(id), fam);
    assert_int_equal(aemp_sndv(p->n, p->peer, &m), 0);
    return 0;
}

static void perlish_start(perlish_t *p, uv_loop_t *loop, int global)
{
    memset(p, 0, sizeof *p);
    p->global = global;
    aemp_netconf_t c = {.secret = SECRET, .monitor_timeout = 5};
    assert_int_equal(aemp_node_new(&p->n, loop), 0);
    assert_int_equal(aemp_node_configure(p->n, &c), 0);
    assert_int_equal(aemp_mon_nodes(p->n, perlish_up, p, NULL), 0);
    assert_int_equal(aemp_node_handle(p->n, "g_db_family", perlish_family, p),
                     0);
    nt_listen(loop, p->n, NULL, p->ref, sizeof p->ref, 10);
}

/* A global node that does not answer aemp::global told us g_global when
 * our link came up: the command works at once. */
static void db_through_perl_global(void **state)
{
    static uv_loop_t loop; /* outlives a failed test: see kill_nodes */
    uv_loop_init(&loop);
    perlish_t p;
    perlish_start(&p, &loop, 1);
    /* byte strings that are UTF-8 print as text */
    cp_child_t *c = DONE(&loop, "db", p.ref, "get", "f");
    assert_true(c->exited_ms - c->started_ms < 5000);
    expect(c, 0, "{\"k\":\"v\xc3\xa9\"}\n");
    expect(DONE(&loop, "db", p.ref, "get", "f", "k"), 0, "\"v\xc3\xa9\"\n");
    aemp_node_free(p.n);
    nt_loop_finish(&loop);
    nnodes = 0; /* all ended */
}

/* A node that is not global and does not answer aemp::global: an error
 * after the timeout; trace says "unknown". */
static void db_through_perl_node(void **state)
{
    static uv_loop_t loop; /* outlives a failed test: see kill_nodes */
    uv_loop_init(&loop);
    perlish_t p;
    perlish_start(&p, &loop, 0);
    cp_child_t *c;
    c = DONE(&loop, "db", p.ref, "get", "f", "--timeout", "2");
    char want[256];
    snprintf(want, sizeof want,
             "aemp: %s is not a global node and does not name its master; "
             "name a global node\n",
             p.ref);
    assert_string_equal(c->ebuf, want);
    assert_true(c->exited_ms - c->started_ms >= 1900);
    expect(c, 1, "");
    /* trace: it answers known_nodes, not aemp::global */
    c = DONE(&loop, "trace", p.ref);
    snprintf(want, sizeof want,
             "%s global: unknown (no answer to aemp::global)\n", p.ref);
    if (!strstr(c->obuf, want)) {
        cp_dump(c);
        fail_msg("trace: want %s", want);
    }
    assert_true(c->exited_ms - c->started_ms < 5000);
    expect(c, 0, NULL);
    aemp_node_free(p.n);
    nt_loop_finish(&loop);
    nnodes = 0; /* all ended */
}

/* Wrong command lines: exit 2 with the usage; reserved families. */
static void db_usage_errors(void **state)
{
    static uv_loop_t loop; /* outlives a failed test: see kill_nodes */
    uv_loop_init(&loop);
    static const char *const bad[][6] = {
        {"db", NULL},
        {"db", "127.0.0.1:1", NULL},
        {"db", "127.0.0.1:1", "frob", "f", NULL},
        {"db", "127.0.0.1:1", "get", NULL},
        {"db", "127.0.0.1:1", "get", "f", "k", "x"},
        {"db", "127.0.0.1:1", "set", "f", "k", NULL},
        {"db", "127.0.0.1:1", "del", "f", NULL},
        {"db", "127.0.0.1:1", "keys", "f", "k", NULL},
        {"db", "127.0.0.1:1", "get", "", NULL},
        {"db", "127.0.0.1:1", "set", "f", "", "v"},
        {"grp", "127.0.0.1:1", "keys", "g", NULL},
        {"grp", "127.0.0.1:1", "get", NULL},
        {"grp", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *args[7] = {0};
        memcpy(args, bad[i], sizeof bad[i]);
        cp_child_t *c = done_v(&loop, args);
        const char *usage = strcmp(bad[i][0], "db") ? "usage: aemp grp <node> "
                                                      "get <group>\n"
                                                    : "usage: aemp db <node> "
                                                      "get <family> [key]\n";
        if (c->status != 2 || strncmp(c->ebuf, "aemp: ", 6) ||
            !strstr(c->ebuf, usage) || *c->obuf) {
            cp_dump(c);
            fail_msg("case %zu: want exit 2 with the usage", i);
        }
        cp_free(c);
    }
    cp_child_t *c = DONE(&loop, "db", "127.0.0.1:1", "frob", "f");
    assert_true(strstr(c->ebuf, "aemp: db: unknown subcommand \"frob\"\n") ==
                c->ebuf);
    cp_free(c);
    /* a value that looks like JSON and is not */
    expect_err(DONE(&loop, "db", "127.0.0.1:1", "set", "f", "k", "[1,"), 2,
               "is not valid JSON");
    /* the protocol's families are read-only, told before connecting */
    c = DONE(&loop, "db", "127.0.0.1:1", "set", "'l", "k", "v");
    assert_string_equal(c->ebuf,
                        "aemp: db set: families beginning with ' are the "
                        "protocol's own and read-only (operation not "
                        "permitted)\n");
    expect(c, 1, "");
    expect_err(DONE(&loop, "db", "127.0.0.1:1", "del", "'g", "k"), 1,
               "read-only");
    expect_err(DONE(&loop, "db", "anon/x", "get", "f"), 1,
               "anon/x is a private node");
    /* help */
    static const char *const cmds[][2] = {
        {"db", "usage: aemp db <node> get <family> [key]\n"},
        {"grp", "usage: aemp grp <node> get <group>\n"},
    };
    for (size_t i = 0; i < 2; i++) {
        cp_child_t *a = DONE(&loop, "help", cmds[i][0]);
        cp_child_t *b = DONE(&loop, cmds[i][0], "--help");
        cp_expect_status(a, 0);
        cp_expect_status(b, 0);
        assert_string_equal(a->obuf, b->obuf);
        assert_true(!strncmp(a->obuf, cmds[i][1], strlen(cmds[i][1])));
        cp_free(a);
        cp_free(b);
    }
    c = DONE(&loop, "help", "run");
    assert_non_null(strstr(c->obuf, "--global"));
    expect(c, 0, NULL);
    c = DONE(&loop, "help");
    assert_non_null(strstr(c->obuf, "  db <node> get <family>"));
    assert_non_null(strstr(c->obuf, "  grp <node> get|mon <group>"));
    expect(c, 0, NULL);
    nt_loop_finish(&loop);
    nnodes = 0; /* all ended */
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    assert_non_null(mkdtemp(dir));
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(db_set_get_keys_del, kill_nodes),
        cmocka_unit_test_teardown(db_set_waits_for_master, kill_nodes),
        cmocka_unit_test_teardown(db_mon_lines, kill_nodes),
        cmocka_unit_test_teardown(grp_get_mon, kill_nodes),
        cmocka_unit_test_teardown(grp_mon_empty_group, kill_nodes),
        cmocka_unit_test_teardown(trace_shows_global, kill_nodes),
        cmocka_unit_test_teardown(db_node_without_master, kill_nodes),
        cmocka_unit_test_teardown(db_through_perl_global, kill_nodes),
        cmocka_unit_test_teardown(db_through_perl_node, kill_nodes),
        cmocka_unit_test_teardown(db_usage_errors, kill_nodes),
    };
    const char *filter = getenv("AEMP_TEST_FILTER");
    if (filter)
        cmocka_set_test_filter(filter);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cp_rm_rf(dir);
    return rc;
}
