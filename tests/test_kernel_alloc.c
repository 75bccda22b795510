/* Allocation-failure injection on the kernel's main paths: for every n, a
 * scenario runs with the n-th allocation failing (and, separately, every
 * allocation from the n-th on).  Every call must succeed or return
 * AEMP_ENOMEM, nothing may crash, the documented invariants must hold, and
 * at the end every block the library allocated must be freed.  (libuv's
 * own allocations do not go through aemp_set_allocator.) */
#include "helpers.h"

#include <stdio.h>
#include <string.h>

struct sc {
    aemp_node_t *n;
    int got, fired, ghost_fired, released, ghost_released, tasks, logs;
    char ida[256], idc[256];
};

static int ok(int rc)
{
    if (rc != 0 && rc != AEMP_ENOMEM)
        fail_msg("unexpected %s (%d)", aemp_err_name(rc), rc);
    return rc == 0;
}

/* For calls on a port that may not exist (its creation failed, or it died
 * of a failure). */
static int ok_port(int rc)
{
    return ok(rc == AEMP_ENOPORT ? AEMP_ENOMEM : rc);
}

static void quiet_log(aemp_node_t *n, int level, const char *text, void *user)
{
    ((struct sc *)user)->logs++;
}

static int on_msg(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct sc *s = user;
    s->got++;
    const char *tag;
    if (aemp_msg_unpack(msg, "s*", &tag) == 0 && !strcmp(tag, "echo"))
        return 0;
    /* answer to ourselves once per message; a failure kills us */
    int rc = aemp_snd(aemp_ctx_node(ctx), aemp_self(ctx), "s", "echo");
    ok(rc);
    return rc;
}

static int on_tag(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct sc *s = user;
    s->got++;
    return aemp_die(ctx, "tag %zu", aemp_msg_len(msg));
}

static void on_mon(aemp_node_t *n, const char *port, const aemp_msg_t *reason,
                   void *user)
{
    ((struct sc *)user)->fired++;
}

static void on_mon_ghost(aemp_node_t *n, const char *port,
                         const aemp_msg_t *reason, void *user)
{
    ((struct sc *)user)->ghost_fired++;
}

static void on_release(void *res)
{
    ((struct sc *)res)->released++;
}
static void on_release_ghost(void *res)
{
    ((struct sc *)res)->ghost_released++;
}

static int task_link(aemp_ctx_t *ctx, void *user)
{
    struct sc *s = user;
    s->tasks++;
    int rc = aemp_mon_kill(aemp_ctx_node(ctx), s->ida, NULL, NULL);
    ok(rc);
    return rc;
}

/* Returns 1 if the port was made; otherwise id names no port of ours. */
static int port_or_ghost(struct sc *s, aemp_rcv_fn cb, char *id)
{
    const char *p;
    if (ok(aemp_port(s->n, cb, s, &p))) {
        strcpy(id, p);
        return 1;
    }
    snprintf(id, 256, "%s#none", aemp_noderef(s->n));
    return 0;
}

static void scenario(size_t fail_at, int sticky, int borrowed, struct sc *out)
{
    uv_loop_t loop;
    if (borrowed)
        assert_int_equal(uv_loop_init(&loop), 0);
    struct sc s;
    memset(&s, 0, sizeof s);
    char idb[256], ghost[256];
    aemp_mon_t *g1 = NULL, *g2 = NULL, *g3 = NULL;
    int mon_ok = 0, guard_ok = 0, ghost_ok = 0, ghost_mon_ok = 0, kil_ok = 0;

    kt_alloc_fail(fail_at, sticky);
    if (!ok(aemp_node_new(&s.n, borrowed ? &loop : NULL)))
        goto closed;
    aemp_node_set_log(s.n, AEMP_LOG_DEBUG, quiet_log, &s);
    port_or_ghost(&s, on_msg, s.ida);
    port_or_ghost(&s, NULL, idb);
    port_or_ghost(&s, NULL, s.idc);
    snprintf(ghost, sizeof ghost, "%s#nope", aemp_noderef(s.n));

    ok_port(aemp_rcv_tag(s.n, s.ida, "t1", on_tag, &s));
    ok_port(aemp_rcv_tag(s.n, s.ida, "t2", on_tag, &s));
    ok_port(aemp_rcv_tag(s.n, s.ida, "t3", on_tag, &s));
    ok_port(aemp_rcv_tag(s.n, s.ida, "t1", NULL, NULL));
    ok_port(aemp_rcv(s.n, s.idc, on_msg, &s));

    ok(aemp_snd(s.n, s.ida, "s", "plain"));
    ok(aemp_snd(s.n, s.ida, "s[i{s}]", "nested", 1, "k", "v"));
    aemp_val_t *v = aemp_arr(aemp_str("value"), aemp_int(2));
    if (!ok(aemp_sndv(s.n, s.ida, &v)))
        aemp_val_free(v);
    aemp_msg_t *m = NULL;
    if (ok(aemp_msg_new(&m, "si", "shared", 3))) {
        ok(aemp_snd_msg(s.n, s.idc, m));
        aemp_msg_unref(m);
    }
    ok(aemp_snd(s.n, idb, "s", "kills b"));
    ok(aemp_snd(s.n, aemp_noderef(s.n), "sss", "info", s.idc, "info"));
    ok(aemp_snd(s.n, aemp_noderef(s.n), "sss", "snd", s.idc, "relayed"));

    mon_ok = ok(aemp_mon_cb(s.n, s.ida, on_mon, &s, &g1));
    ok(aemp_mon_kill(s.n, s.ida, idb, &g2));
    ok(aemp_mon_msg(s.n, s.ida, s.idc, &g3, "s", "down"));
    guard_ok = ok(aemp_mon_guard(s.n, s.ida, on_release, &s, NULL));
    ghost_mon_ok = ok(aemp_mon_cb(s.n, ghost, on_mon_ghost, &s, NULL));
    ghost_ok = ok(aemp_mon_guard(s.n, ghost, on_release_ghost, &s, NULL));
    ok(aemp_mon_msg(s.n, ghost, s.idc, NULL, "s", "ghost down"));
    ok_port(aemp_call_in(s.n, s.idc, task_link, &s));
    ok(aemp_after_snd(s.n, 0.0, s.ida, "s", "late"));
    ok_port(aemp_after_call(s.n, 0.0, s.idc, task_link, &s));
    assert_int_equal(aemp_run(s.n), 0);      /* deliveries, node port, timers */
    ok(aemp_snd(s.n, s.ida, "si", "t2", 1)); /* a dies of it */
    assert_int_equal(aemp_run(s.n), 0);
    kil_ok = ok(aemp_kil(s.n, s.ida, "ss", "die", "scenario"));
    assert_int_equal(aemp_run(s.n), 0);

    /* a killed port's monitors fire; a nonexistent port's at once */
    if (mon_ok && kil_ok)
        assert_int_equal(s.fired, 1);
    assert_int_equal(s.ghost_fired, ghost_mon_ok);
    aemp_mon_cancel(g1);
    aemp_mon_cancel(g2);
    aemp_mon_cancel(g3);
    ok(aemp_kil(s.n, s.idc, NULL));
    assert_int_equal(aemp_run(s.n), 0);
    aemp_node_free(s.n);
    if (borrowed)
        uv_run(&loop, UV_RUN_DEFAULT);
closed:
    if (borrowed)
        assert_int_equal(uv_loop_close(&loop), 0);
    kt_alloc_disarm();
    /* each guard released exactly once, whenever it was set up */
    assert_int_equal(s.released, guard_ok);
    assert_int_equal(s.ghost_released, ghost_ok);
    assert_true(s.fired <= 1);
    assert_true(s.ghost_fired <= 1);
    if (kt_alloc_live() != 0)
        fail_msg("fail_at %zu sticky %d borrowed %d: %ld blocks leaked",
                 fail_at, sticky, borrowed, kt_alloc_live());
    if (out)
        *out = s;
}

static void run_all(int sticky, int borrowed)
{
    size_t n;
    for (n = 1; n < 100000; n++) {
        scenario(n, sticky, borrowed, NULL);
        if (kt_alloc_failed() == 0)
            break; /* the whole scenario ran without reaching the n-th */
    }
    /* a sanity check that the scenario does allocate a fair amount */
    assert_true(n > 40);
    print_message("%s, %s loop: %zu allocation points\n",
                  sticky ? "failing from the n-th on" : "failing the n-th",
                  borrowed ? "borrowed" : "own", n - 1);
}

static void alloc_fail_once_owned(void **state)
{
    run_all(0, 0);
}
static void alloc_fail_once_borrowed(void **state)
{
    run_all(0, 1);
}
static void alloc_fail_from_n_owned(void **state)
{
    run_all(1, 0);
}
static void alloc_fail_from_n_borrowed(void **state)
{
    run_all(1, 1);
}

/* The scenario without failures: everything it promises happens. */
static void alloc_no_failure(void **state)
{
    struct sc s;
    scenario(0, 0, 0, &s);
    assert_true(kt_alloc_count() > 40);
    assert_int_equal(kt_alloc_failed(), 0);
    assert_int_equal(s.fired, 1);
    assert_int_equal(s.ghost_fired, 1);
    assert_int_equal(s.released, 1);
    assert_int_equal(s.ghost_released, 1);
    assert_int_equal(s.tasks, 2);
    assert_true(s.got >= 14);
}

int main(void)
{
    kt_alloc_install(); /* before any other aemp call */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(alloc_no_failure),
        cmocka_unit_test(alloc_fail_once_owned),
        cmocka_unit_test(alloc_fail_once_borrowed),
        cmocka_unit_test(alloc_fail_from_n_owned),
        cmocka_unit_test(alloc_fail_from_n_borrowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
