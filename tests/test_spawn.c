/* spawn, loadable modules and cal: ports created by name on this node and
 * on others (nodes on one loop over real TCP, and an `aemp run` child
 * serving a module), the two-way monitoring idiom, modules that cannot be
 * loaded, `secure`, and cal's reply, timeout and lost destination. */
#include "net_harness.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef AEMP_TEST_MODULE_DIR
#error "AEMP_TEST_MODULE_DIR must name the directory of the test modules"
#endif
#ifndef AEMP_TOOL_PATH
#error "AEMP_TOOL_PATH must name the aemp binary"
#endif

/* ---- an init function of the test's ------------------------------------- */

typedef struct inits {
    int ran;
    char self[160], arg[160];
    kt_rec_t *rec;
    kt_tap_t tap;
} inits_t;

/* "t::init": records its argument (a port ID), sets a recording callback,
 * and kills itself when that port dies (the spawned side of the two-way
 * idiom). */
static int t_init(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    inits_t *t = user;
    const char *arg;
    t->ran++;
    snprintf(t->self, sizeof t->self, "%s", aemp_self(ctx));
    if (aemp_msg_unpack(args, "s*", &arg) == 0) {
        snprintf(t->arg, sizeof t->arg, "%s", arg);
        int rc = aemp_mon_kill(aemp_ctx_node(ctx), arg, NULL, NULL);
        if (rc < 0)
            return rc;
    }
    return aemp_rcv(aemp_ctx_node(ctx), aemp_self(ctx), kt_tap_rcv, &t->tap);
}

static void inits_init(inits_t *t, kt_rec_t *rec)
{
    memset(t, 0, sizeof *t);
    t->rec = rec;
    t->tap = (kt_tap_t){rec, "spawned", 0};
}

/* ["die", <text containing want>] */
static void expect_die(const aemp_msg_t *reason, const char *want)
{
    const char *kind, *text;
    if (aemp_msg_unpack(reason, "ss", &kind, &text) < 0) {
        char *j = NULL;
        size_t jl;
        aemp_msg_encode(reason, AEMP_JSON, &j, &jl);
        fail_msg("not a die reason: %s", j ? j : "?");
    }
    assert_string_equal(kind, "die");
    if (!strstr(text, want))
        fail_msg("die reason \"%s\" does not say \"%s\"", text, want);
}

/* ==== here ================================================================ */

static void spawn_local(void **state)
{
    uv_loop_t loop;
    tnode_t a;
    nodes_start(&loop, NULL, &a, NULL);
    kt_rec_t rec = {0};
    inits_t t;
    inits_init(&t, &rec);
    assert_int_equal(aemp_register(a.n, "t::init", t_init, &t), 0);
    const char *pa = mkport(a.n, kt_tap_rcv, &(kt_tap_t){&rec, "pa", 0});
    char id[200];
    assert_int_equal(aemp_spawn(a.n, a.ref, "t::init", id, sizeof id, "s", pa),
                     0);
    assert_int_equal(t.ran, 0); /* deferred to the loop */
    assert_true(aemp_port_exists(a.n, id));
    for (int i = 0; i < 3; i++)
        assert_int_equal(aemp_snd(a.n, id, "si", "n", i), 0);
    assert_true(await_rec(&loop, &rec, "spawned", 3, 5));
    assert_int_equal(t.ran, 1);
    assert_string_equal(t.self, id);
    assert_string_equal(t.arg, pa);
    for (int i = 0; i < 3; i++)
        assert_true(kt_msg_is(kt_rec_nth(&rec, "spawned", i)->msg, "si", "n",
                              i));
    /* a port ID names its node too */
    char id2[200];
    assert_int_equal(aemp_spawn(a.n, pa, "aemp::echo", id2, sizeof id2, ""), 0);
    assert_int_equal(aemp_snd(a.n, id2, "ss", "echoed", pa), 0);
    assert_true(await_rec(&loop, &rec, "pa", 1, 5));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "pa", 0)->msg, "s", "echoed"));
    /* bad arguments: at once */
    const char *bad[] = {"noqual", "a::..::b", "a/b::c", "::"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(aemp_spawn(a.n, a.ref, bad[i], id, sizeof id, ""),
                         AEMP_EINVAL);
    assert_int_equal(aemp_spawn(a.n, a.ref, "t::init", id, 8, ""),
                     AEMP_ERANGE);
    assert_int_equal(aemp_spawn(a.n, "", "t::init", id, sizeof id, ""),
                     AEMP_EINVAL);
    nodes_finish(&loop, &a, NULL, &rec);
}

static void spawn_unknown_dies(void **state)
{
    uv_loop_t loop;
    tnode_t a;
    nodes_start(&loop, NULL, &a, NULL);
    kt_rec_t rec = {0};
    kt_tap_t tm = {&rec, "mon", 0};
    char id[200];
    assert_int_equal(aemp_spawn(a.n, a.ref, "t::nope", id, sizeof id, ""), 0);
    assert_int_equal(aemp_mon_cb(a.n, id, kt_tap_mon, &tm, NULL), 0);
    assert_true(await_rec(&loop, &rec, "mon", 1, 5));
    expect_die(rec.ev[0].msg, "unable to resolve 't::nope'");
    expect_die(rec.ev[0].msg, "no module for it");
    assert_true(kt_log_has(&a.log, "unable to resolve 't::nope'"));
    nodes_finish(&loop, &a, NULL, &rec);
}

/* ==== there =================================================================
 */

static void spawn_remote_two_way(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    kt_rec_t rec = {0};
    kt_tap_t tm = {&rec, "mon", 0}, tk = {&rec, "killed", 0};
    inits_t t;
    inits_init(&t, &rec);
    assert_int_equal(aemp_register(b.n, "t::init", t_init, &t), 0);
    const char *pa = mkport(a.n, NULL, NULL);
    char id[200];
    assert_int_equal(aemp_spawn(a.n, b.ref, "t::init", id, sizeof id, "s", pa),
                     0);
    assert_true(strncmp(id, b.ref, strlen(b.ref)) == 0);
    /* before the port exists: monitored, and sent to, in order */
    assert_int_equal(aemp_mon_cb(a.n, id, kt_tap_mon, &tm, NULL), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(aemp_snd(a.n, id, "si", "n", i), 0);
    assert_true(await_rec(&loop, &rec, "spawned", 100, 10));
    for (int i = 0; i < 100; i++)
        assert_true(kt_msg_is(kt_rec_nth(&rec, "spawned", i)->msg, "si", "n",
                              i));
    assert_string_equal(t.self, id);
    /* the spawner goes (once the spawned port's monitor of it is in place
     * on our side): the spawned port follows, and its monitor says so */
    await_watchers(&loop, a.n, b.ref, 1);
    assert_int_equal(aemp_kil(a.n, pa, "ss", "die", "spawner gone"), 0);
    assert_true(await_rec(&loop, &rec, "mon", 1, 10));
    expect_die(kt_rec_nth(&rec, "mon", 0)->msg, "spawner gone");
    assert_false(aemp_port_exists(b.n, id));
    /* a spawned port killed by the spawner: the monitor fires */
    const char *pa2 = mkport(a.n, NULL, NULL);
    char id2[200];
    assert_int_equal(
        aemp_spawn(a.n, b.ref, "t::init", id2, sizeof id2, "s", pa2), 0);
    assert_int_equal(aemp_mon_cb(a.n, id2, kt_tap_mon, &tk, NULL), 0);
    assert_int_equal(aemp_kil(a.n, id2, "ss", "die", "stop"), 0);
    assert_true(await_rec(&loop, &rec, "killed", 1, 10));
    expect_die(kt_rec_nth(&rec, "killed", 0)->msg, "stop");
    nodes_finish(&loop, &a, &b, &rec);
}

/* A peer's spawn request whose port name we would give out ourselves, or
 * that is taken, creates nothing. */
static void spawn_names_checked(void **state)
{
    uv_loop_t loop;
    tnode_t a;
    nodes_start(&loop, NULL, &a, NULL);
    const char *p = mkport(a.n, NULL, NULL);
    const char *ours = strchr(p, '#') + 1; /* "<cookie>.<n>" */
    char theirs[64];
    snprintf(theirs, sizeof theirs, "%.*s.999", 10, ours);
    raw_t *r = raw_handshaken(&loop, a.ref, "cbor", 0);
    raw_send(r, "ssss", "", "AnyEvent::MP::_spawn", theirs, "aemp::echo");
    raw_send(r, "ssss", "", "AnyEvent::MP::_spawn", "foreign.1", "aemp::echo");
    raw_send(r, "ssss", "", "AnyEvent::MP::_spawn", "foreign.1", "aemp::sink");
    raw_send(r, "ssss", "", "AnyEvent::MP::_spawn", "foreign.2", "../x::y");
    char id[200];
    snprintf(id, sizeof id, "%s#foreign.1", a.ref);
    for (int i = 0; i < 50 && !kt_log_has(&a.log, "foreign.2"); i++)
        uv_run(&loop, UV_RUN_ONCE);
    nt_run_for(&loop, 0.1);
    assert_true(kt_log_has(&a.log, "name taken"));
    assert_true(aemp_port_exists(a.n, id)); /* the first one */
    char mine[200];
    snprintf(mine, sizeof mine, "%s#%s", a.ref, theirs);
    assert_false(aemp_port_exists(a.n, mine));
    snprintf(id, sizeof id, "%s#foreign.2", a.ref);
    assert_false(aemp_port_exists(a.n, id));
    assert_true(kt_log_has(&a.log, "not a fully qualified name"));
    raw_close(r);
    nodes_finish(&loop, &a, NULL, NULL);
}

typedef struct answer {
    int status, calls;
    aemp_msg_t *msg;
} answer_t;

static void on_answer(aemp_node_t *n, int status, const aemp_msg_t *msg,
                      void *user)
{
    answer_t *a = user;
    a->calls++;
    a->status = status;
    a->msg = msg ? kt_msg_copy(msg) : NULL;
}

/* ==== modules =============================================================
 */

static void spawn_modules(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    assert_int_equal(aemp_module_path_add(b.n, "/nonexistent"), 0);
    assert_int_equal(aemp_module_path_add(b.n, AEMP_TEST_MODULE_DIR), 0);
    kt_rec_t rec = {0};
    const char *pa = mkport(a.n, kt_tap_rcv, &(kt_tap_t){&rec, "pa", 0});
    struct {
        const char *init, *answer, *die; /* die NULL: it answers */
    } cases[] = {
        {"tmod::echo", "ready", NULL},
        {"tpkg::sub::init", "sub", NULL},
        {"tmod::fails", NULL, "failed on purpose"},
        {"tmod::nothere", NULL, "tmod.so does not register it"},
        {"noentry::x", NULL, "has no aemp_module_init"},
        {"failinit::x", NULL, "aemp_module_init failed: operation not permitted"},
        {"garbage::x", NULL, "cannot load"},
        {"absent::x", NULL, "no module for it"},
    };
    char garbage[512];
    snprintf(garbage, sizeof garbage, "%s/garbage.so", AEMP_TEST_MODULE_DIR);
    cp_write_file(garbage, "not a shared object\n");
    size_t ncases = sizeof cases / sizeof *cases, answers = 0;
    kt_tap_t taps[sizeof cases / sizeof *cases];
    for (size_t i = 0; i < ncases; i++) {
        char id[200];
        kt_tap_t *tm = &taps[i];
        *tm = (kt_tap_t){&rec, cases[i].init, 0};
        assert_int_equal(
            aemp_spawn(a.n, b.ref, cases[i].init, id, sizeof id, "s", pa), 0);
        assert_int_equal(aemp_mon_cb(a.n, id, kt_tap_mon, tm, NULL), 0);
        if (!cases[i].die) {
            assert_true(await_rec(&loop, &rec, "pa", ++answers, 10));
            const char *what, *self;
            assert_int_equal(aemp_msg_unpack(kt_rec_nth(&rec, "pa", answers - 1)
                                                 ->msg,
                                             "ss", &what, &self),
                             0);
            assert_string_equal(what, cases[i].answer);
            assert_string_equal(self, id);
        } else {
            assert_true(await_rec(&loop, &rec, cases[i].init, 1, 10));
            expect_die(kt_rec_nth(&rec, cases[i].init, 0)->msg, cases[i].die);
        }
    }
    /* the node goes on */
    answer_t info = {0};
    assert_int_equal(aemp_cal(a.n, b.ref, 5, on_answer, &info, "s", "info"), 0);
    assert_true(nt_run_flag(&loop, &info.calls, 10));
    assert_int_equal(info.status, 0);
    aemp_msg_unref(info.msg);
    unlink(garbage);
    nodes_finish(&loop, &a, &b, &rec);
}

/* secure: a peer may spawn what the node registered, and nothing that
 * would load a module; the node itself may. */
static void spawn_secure(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    aemp_netconf_t c = conf_std();
    uv_loop_init(&loop);
    tnode_init(&a, &loop, &c, true, NULL);
    c.secure = 1;
    tnode_init(&b, &loop, &c, true, NULL);
    assert_int_equal(aemp_module_path_add(b.n, AEMP_TEST_MODULE_DIR), 0);
    kt_rec_t rec = {0};
    kt_tap_t tm = {&rec, "mon", 0};
    inits_t t;
    inits_init(&t, &rec);
    assert_int_equal(aemp_register(b.n, "t::init", t_init, &t), 0);
    const char *pa = mkport(a.n, kt_tap_rcv, &(kt_tap_t){&rec, "pa", 0});
    char id[200];
    assert_int_equal(
        aemp_spawn(a.n, b.ref, "tmod::echo", id, sizeof id, "s", pa), 0);
    assert_int_equal(aemp_mon_cb(a.n, id, kt_tap_mon, &tm, NULL), 0);
    assert_true(await_rec(&loop, &rec, "mon", 1, 10));
    expect_die(rec.ev[0].msg, "this node loads no module for a peer");
    assert_int_equal(aemp_spawn(a.n, b.ref, "t::init", id, sizeof id, "s", pa),
                     0);
    assert_int_equal(aemp_snd(a.n, id, "s", "hello"), 0);
    assert_true(await_rec(&loop, &rec, "spawned", 1, 10));
    /* b itself may load the module */
    const char *pb = mkport(b.n, kt_tap_rcv, &(kt_tap_t){&rec, "pb", 0});
    assert_int_equal(
        aemp_spawn(b.n, b.ref, "tmod::echo", id, sizeof id, "s", pb), 0);
    assert_true(await_rec(&loop, &rec, "pb", 1, 10));
    nodes_finish(&loop, &a, &b, &rec);
}

/* ==== cal =================================================================
 */

static void cal_forms(void **state)
{
    uv_loop_t loop;
    tnode_t a, b;
    nodes_start(&loop, NULL, &a, &b);
    char echo[200], silent[200];
    assert_int_equal(aemp_spawn(b.n, b.ref, "aemp::echo", echo, sizeof echo,
                                ""),
                     0);
    assert_int_equal(aemp_spawn(b.n, b.ref, "aemp::sink", silent,
                                sizeof silent, ""),
                     0);
    /* the reply */
    answer_t r = {0};
    assert_int_equal(aemp_cal(a.n, echo, 5, on_answer, &r, "si", "ping", 7), 0);
    assert_true(nt_run_flag(&loop, &r.calls, 10));
    assert_int_equal(r.status, 0);
    assert_true(kt_msg_is(r.msg, "si", "ping", 7));
    /* the node port answers the same way */
    answer_t info = {0};
    assert_int_equal(aemp_cal(a.n, b.ref, 5, on_answer, &info, "s", "info"), 0);
    assert_true(nt_run_flag(&loop, &info.calls, 10));
    assert_int_equal(info.status, 0);
    assert_true(kt_msg_is(info.msg, "s", b.ref));
    /* no answer: the timeout */
    answer_t t = {0};
    uint64_t t0 = kt_now_ms();
    assert_int_equal(aemp_cal(a.n, silent, 0.3, on_answer, &t, "s", "x"), 0);
    assert_true(nt_run_flag(&loop, &t.calls, 10));
    assert_int_equal(t.status, AEMP_ETIMEDOUT);
    assert_null(t.msg);
    assert_true(kt_now_ms() - t0 >= 250);
    /* the destination goes: its death */
    answer_t d = {0};
    assert_int_equal(aemp_cal(a.n, silent, 30, on_answer, &d, "s", "x"), 0);
    nt_run_for(&loop, 0.1);
    assert_int_equal(aemp_kil(b.n, silent, "ss", "die", "gone"), 0);
    assert_true(nt_run_flag(&loop, &d.calls, 10));
    assert_int_equal(d.status, AEMP_ENOPORT);
    expect_die(d.msg, "gone");
    /* the destination's node goes: a transport error */
    answer_t l = {0};
    assert_int_equal(aemp_cal(a.n, echo, 30, on_answer, &l, "s", "x"), 0);
    aemp__link_close(peer_of(a.n, b.ref)->link, "cut by the test");
    assert_true(nt_run_flag(&loop, &l.calls, 10));
    assert_int_equal(l.status, AEMP_ENOPORT);
    transport_error(l.msg, b.ref);
    nt_run_for(&loop, 0.4); /* once only: the timeouts are gone with them */
    assert_int_equal(r.calls + info.calls + t.calls + d.calls + l.calls, 5);
    assert_int_equal(aemp_cal(a.n, echo, -1, on_answer, &l, "s", "x"),
                     AEMP_EINVAL);
    aemp_msg_unref(r.msg);
    aemp_msg_unref(info.msg);
    aemp_msg_unref(d.msg);
    aemp_msg_unref(l.msg);
    nodes_finish(&loop, &a, &b, NULL);
}

/* ==== across processes: aemp run --module-path ============================
 */

static void run_serves_module(void **state)
{
    uv_loop_t loop;
    tnode_t a;
    nodes_start(&loop, NULL, &a, NULL);
    char want[64], ref[128];
    snprintf(want, sizeof want, "127.0.0.1:%d", nt_free_port());
    char cfgdir[] = "/tmp/aemp-test-spawn-XXXXXX", cfg[128];
    assert_non_null(mkdtemp(cfgdir));
    snprintf(cfg, sizeof cfg, "%s/config.json", cfgdir);
    const char *argv[] = {AEMP_TOOL_PATH, "run",    want, "--secret",
                          SECRET,         "--config", cfg, "--module-path",
                          AEMP_TEST_MODULE_DIR,      NULL};
    cp_child_t *c = cp_spawn(&loop, AEMP_TOOL_PATH, argv);
    assert_true(cp_await_stdout(c, "\n", 1, 10));
    cp_first_line(c, ref, sizeof ref);
    assert_string_equal(ref, want);
    kt_rec_t rec = {0};
    const char *pa = mkport(a.n, kt_tap_rcv, &(kt_tap_t){&rec, "pa", 0});
    char id[200];
    assert_int_equal(aemp_spawn(a.n, ref, "tmod::echo", id, sizeof id, "s", pa),
                     0);
    assert_int_equal(aemp_snd(a.n, id, "ss", pa, "hello"), 0);
    assert_true(await_rec(&loop, &rec, "pa", 2, 10));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "pa", 0)->msg, "ss", "ready", id));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "pa", 1)->msg, "ss", pa, "hello"));
    cp_kill(c, SIGTERM);
    cp_expect_exit(c, 10);
    cp_free(c);
    cp_rm_rf(cfgdir);
    nodes_finish(&loop, &a, NULL, &rec);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        ISOLATED(spawn_local, 60),
        ISOLATED(spawn_unknown_dies, 60),
        ISOLATED(spawn_remote_two_way, 60),
        ISOLATED(spawn_names_checked, 60),
        ISOLATED(spawn_modules, 60),
        ISOLATED(spawn_secure, 60),
        ISOLATED(cal_forms, 60),
        ISOLATED(run_serves_module, 60),
    };
    const char *filter = getenv("AEMP_TEST_FILTER");
    if (filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
