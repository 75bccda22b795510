/* Port context and timers: aemp_call_in (psub), aemp_after_snd and
 * aemp_after_call (after). */
#include "helpers.h"

#include <math.h>
#include <string.h>

#define RUN(n) assert_int_equal(aemp_run(n), 0)

/* Receives ["tick", i] and records the loop time of arrival. */
struct ticks {
    uv_loop_t *loop;
    int n;
    int order[8];
    uint64_t at[8];
    const char *self[8];
};

static int on_tick(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct ticks *t = user;
    int i;
    assert_int_equal(aemp_msg_unpack(msg, "si", &(const char *){0}, &i), 0);
    if (t->n < 8) {
        t->order[t->n] = i;
        t->at[t->n] = uv_now(t->loop);
        t->self[t->n] = aemp_self(ctx);
    }
    t->n++;
    return 0;
}

/* ---- after_snd ---------------------------------------------------------- */

static void after_snd_delay(void **state)
{
    aemp_node_t *n = kt_node_new();
    uv_loop_t *loop = aemp_node_loop(n);
    struct ticks t = {loop, 0, {0}, {0}, {0}};
    const char *p = kt_port(n, on_tick, &t);
    uv_update_time(loop);
    uint64_t t0 = uv_now(loop), h0 = kt_now_ms();
    assert_int_equal(aemp_after_snd(n, 0.02, p, "si", "tick", 1), 0);
    assert_int_equal(t.n, 0);
    RUN(n);
    assert_int_equal(t.n, 1);
    assert_true(t.at[0] >= t0 + 20);
    assert_true(kt_now_ms() - h0 >= 19); /* ms granularity of the loop clock */
    assert_ptr_equal(t.self[0], p);
    aemp_node_free(n);
}

static void after_snd_order_and_zero(void **state)
{
    aemp_node_t *n = kt_node_new();
    uv_loop_t *loop = aemp_node_loop(n);
    struct ticks t = {loop, 0, {0}, {0}, {0}};
    const char *p = kt_port(n, on_tick, &t);
    uv_update_time(loop);
    uint64_t t0 = uv_now(loop);
    assert_int_equal(aemp_after_snd(n, 0.06, p, "si", "tick", 3), 0);
    assert_int_equal(aemp_after_snd(n, 0.02, p, "si", "tick", 2), 0);
    assert_int_equal(aemp_after_snd(n, 0.0, p, "si", "tick", 1), 0);
    assert_int_equal(aemp_after_snd(n, -0.0, p, "si", "tick", 0), 0);
    assert_int_equal(t.n, 0); /* even a zero delay is not synchronous */
    RUN(n);
    assert_int_equal(t.n, 4);
    assert_int_equal(t.order[0], 1);
    assert_int_equal(t.order[1], 0);
    assert_int_equal(t.order[2], 2);
    assert_int_equal(t.order[3], 3);
    assert_true(t.at[2] >= t0 + 20);
    assert_true(t.at[3] >= t0 + 60);
    aemp_node_free(n);
}

static void after_snd_dead_port_and_node_port(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct ticks t = {aemp_node_loop(n), 0, {0}, {0}, {0}};
    kt_rec_t log = {0};
    aemp_node_set_log(n, AEMP_LOG_DEBUG, kt_log_rec, &log);
    const char *p = kt_port(n, on_tick, &t);
    char id[256];
    strcpy(id, p);
    assert_int_equal(aemp_after_snd(n, 0.01, id, "si", "tick", 1), 0);
    assert_int_equal(aemp_kil(n, id, NULL), 0);
    /* to a port already dead: accepted, dropped */
    assert_int_equal(aemp_after_snd(n, 0.0, id, "si", "tick", 2), 0);
    /* to the node port */
    assert_int_equal(aemp_after_snd(n, 0.0, aemp_noderef(n), "s", "devnull"),
                     0);
    RUN(n);
    assert_int_equal(t.n, 0);
    aemp_node_free(n);
    kt_rec_free(&log);
}

/* ---- after_call --------------------------------------------------------- */

struct task {
    aemp_node_t *node;
    const char *expect_self;
    uv_loop_t *loop;
    int calls;
    uint64_t at;
    int ret;
    int run_rc;
};

static int task_check(aemp_ctx_t *ctx, void *user)
{
    struct task *t = user;
    t->calls++;
    t->at = uv_now(t->loop);
    assert_ptr_equal(aemp_ctx_node(ctx), t->node);
    assert_string_equal(aemp_self(ctx), t->expect_self);
    t->run_rc = aemp_run(t->node);
    return t->ret ? aemp_die(ctx, "task %d", t->ret) : 0;
}

static void after_call_in_port_context(void **state)
{
    aemp_node_t *n = kt_node_new();
    uv_loop_t *loop = aemp_node_loop(n);
    const char *p = kt_port(n, NULL, NULL);
    struct task t = {n, p, loop, 0, 0, 0, 0};
    uv_update_time(loop);
    uint64_t t0 = uv_now(loop);
    assert_int_equal(aemp_after_call(n, 0.02, p, task_check, &t), 0);
    assert_int_equal(t.calls, 0);
    RUN(n);
    assert_int_equal(t.calls, 1);
    assert_true(t.at >= t0 + 20);
    assert_int_equal(t.run_rc, AEMP_EBUSY); /* inside a callback */
    assert_int_equal(aemp_port_exists(n, p), 1);
    aemp_node_free(n);
}

static void after_call_port_dies_first(void **state)
{
    aemp_node_t *n = kt_node_new();
    const char *p = kt_port(n, NULL, NULL), *q = kt_port(n, NULL, NULL);
    const char *r = kt_port(n, NULL, NULL);
    struct task tp = {n, p, aemp_node_loop(n), 0, 0, 0, 0};
    struct task tq = {n, q, aemp_node_loop(n), 0, 0, 0, 0};
    struct task tr = {n, r, aemp_node_loop(n), 0, 0, 0, 0};
    assert_int_equal(aemp_after_call(n, 0.01, p, task_check, &tp), 0);
    assert_int_equal(aemp_after_call(n, 0.03, q, task_check, &tq), 0);
    assert_int_equal(aemp_after_call(n, 0.03, r, task_check, &tr), 0);
    assert_int_equal(aemp_kil(n, p, NULL), 0);     /* killed directly */
    assert_int_equal(aemp_snd(n, q, "s", "x"), 0); /* dies from the loop */
    RUN(n);
    assert_int_equal(tp.calls, 0);
    assert_int_equal(tq.calls, 0);
    assert_int_equal(tr.calls, 1);
    aemp_node_free(n);
}

static void after_call_failure_kills(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t mon = {&rec, "mon", 0};
    const char *p = kt_port(n, NULL, NULL);
    char id[256];
    strcpy(id, p);
    struct task t = {n, p, aemp_node_loop(n), 0, 0, 7, 0};
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_after_call(n, 0.0, p, task_check, &t), 0);
    RUN(n);
    assert_int_equal(t.calls, 1);
    assert_int_equal(aemp_port_exists(n, id), 0);
    assert_int_equal(rec.n, 1);
    assert_true(kt_msg_is(rec.ev[0].msg, "ss", "die", "task 7"));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* A task that re-arms itself: a periodic timer in port context. */
struct periodic {
    int left, calls;
};

static int task_periodic(aemp_ctx_t *ctx, void *user)
{
    struct periodic *p = user;
    p->calls++;
    if (--p->left > 0)
        return aemp_after_call(aemp_ctx_node(ctx), 0.001, aemp_self(ctx),
                               task_periodic, p);
    return aemp_kil(aemp_ctx_node(ctx), aemp_self(ctx), NULL);
}

static void after_call_rearms(void **state)
{
    aemp_node_t *n = kt_node_new();
    const char *p = kt_port(n, NULL, NULL);
    char id[256];
    strcpy(id, p);
    struct periodic pr = {5, 0};
    assert_int_equal(aemp_after_call(n, 0.0, p, task_periodic, &pr), 0);
    RUN(n);
    assert_int_equal(pr.calls, 5);
    assert_int_equal(aemp_port_exists(n, id), 0);
    aemp_node_free(n);
}

/* A zero-delay timer that re-arms itself with delay 0 must leave the loop
 * its other turns: another timer, due in 20 ms, fires while the chain is
 * still short (in libuv's timer phase a timer re-armed for "now" runs
 * again at once, so a 0 ms chain used to run all of its rounds first). */
struct zero_chain {
    int rounds, limit, rounds_when_other_fired;
    uv_timer_t other;
};

static int task_zero_chain(aemp_ctx_t *ctx, void *user)
{
    struct zero_chain *z = user;
    if (++z->rounds < z->limit)
        return aemp_after_call(aemp_ctx_node(ctx), 0.0, aemp_self(ctx),
                               task_zero_chain, z);
    return aemp_kil(aemp_ctx_node(ctx), aemp_self(ctx), NULL);
}

static void on_other_timer(uv_timer_t *h)
{
    struct zero_chain *z = h->data;
    z->rounds_when_other_fired = z->rounds;
    uv_close((uv_handle_t *)h, NULL);
}

static void after_zero_rearm_lets_loop_run(void **state)
{
    aemp_node_t *n = kt_node_new();
    const char *p = kt_port(n, NULL, NULL);
    struct zero_chain z = {0, 200000, -1, {0}};
    uv_timer_init(aemp_node_loop(n), &z.other);
    z.other.data = &z;
    uv_timer_start(&z.other, on_other_timer, 20, 0);
    assert_int_equal(aemp_after_call(n, 0.0, p, task_zero_chain, &z), 0);
    /* stop the chain early once the other timer got its turn */
    while (z.rounds_when_other_fired < 0 && z.rounds < z.limit)
        uv_run(aemp_node_loop(n), UV_RUN_ONCE);
    assert_true(z.rounds_when_other_fired >= 0);
    assert_true(z.rounds_when_other_fired < 1000);
    aemp_node_free(n);
}

static int task_never(aemp_ctx_t *ctx, void *user)
{
    (*(int *)user)++;
    return 0;
}

static void after_errors(void **state)
{
    aemp_node_t *n = kt_node_new();
    int called = 0;
    struct ticks t = {aemp_node_loop(n), 0, {0}, {0}, {0}};
    const char *p = kt_port(n, on_tick, &t);
    const char *q = kt_port(n, NULL, NULL);
    char dead[256];
    strcpy(dead, q);
    assert_int_equal(aemp_kil(n, q, NULL), 0);
    const double bad[] = {-1.0, -1e-9, NAN, -INFINITY, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(aemp_after_snd(n, bad[i], p, "si", "tick", 1),
                         AEMP_EINVAL);
        assert_int_equal(aemp_after_call(n, bad[i], p, task_never, &called),
                         AEMP_EINVAL);
    }
    assert_int_equal(aemp_after_snd(NULL, 0.0, p, "si", "tick", 1),
                     AEMP_EINVAL);
    assert_int_equal(aemp_after_snd(n, 0.0, NULL, "si", "tick", 1),
                     AEMP_EINVAL);
    assert_int_equal(aemp_after_snd(n, 0.0, "", "si", "tick", 1), AEMP_EINVAL);
    assert_int_equal(aemp_after_snd(n, 0.0, "#x", "si", "tick", 1),
                     AEMP_EINVAL);
    assert_int_equal(aemp_after_snd(n, 0.0, p, "q"), AEMP_EINVAL);
    assert_int_equal(aemp_after_snd(n, 0.0, p, "s", (const char *)NULL),
                     AEMP_EINVAL);
    assert_int_equal(aemp_after_call(NULL, 0.0, p, task_never, &called),
                     AEMP_EINVAL);
    assert_int_equal(aemp_after_call(n, 0.0, p, NULL, &called), AEMP_EINVAL);
    assert_int_equal(aemp_after_call(n, 0.0, NULL, task_never, &called),
                     AEMP_EINVAL);
    assert_int_equal(aemp_after_call(n, 0.0, "#x", task_never, &called),
                     AEMP_EINVAL);
    assert_int_equal(aemp_after_call(n, 0.0, dead, task_never, &called),
                     AEMP_ENOPORT);
    assert_int_equal(
        aemp_after_call(n, 0.0, "other/node#abc.1", task_never, &called),
        AEMP_ENOTLOCAL);
    assert_true(aemp_after_call(n, 0.0, aemp_noderef(n), task_never, &called) <
                0);
    RUN(n);
    assert_int_equal(t.n, 0);
    assert_int_equal(called, 0);
    aemp_node_free(n);
}

/* Timers still pending when the node is freed are cancelled and freed. */
static void pending_timers(aemp_node_t *n)
{
    int called = 0;
    struct ticks t = {aemp_node_loop(n), 0, {0}, {0}, {0}};
    const char *p = kt_port(n, on_tick, &t);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(aemp_after_snd(n, 10.0 + i, p, "si", "tick", i), 0);
        assert_int_equal(aemp_after_call(n, 10.0 + i, p, task_never, &called),
                         0);
    }
    /* one that fired and is being closed, one that is due now */
    assert_int_equal(aemp_after_snd(n, 0.0, p, "si", "tick", 99), 0);
    assert_int_equal(uv_run(aemp_node_loop(n), UV_RUN_NOWAIT) >= 0, 1);
    assert_int_equal(aemp_after_snd(n, 0.0, p, "si", "tick", 100), 0);
    aemp_node_free(n);
    assert_int_equal(called, 0);
    assert_true(t.n <= 1);
}

static void timers_pending_at_free_owned(void **state)
{
    pending_timers(kt_node_new());
}

static void timers_pending_at_free_borrowed(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    aemp_node_t *n = NULL;
    assert_int_equal(aemp_node_new(&n, &loop), 0);
    pending_timers(n);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- call_in ------------------------------------------------------------ */

static void call_in_synchronous(void **state)
{
    aemp_node_t *n = kt_node_new();
    const char *p = kt_port(n, NULL, NULL);
    struct task t = {n, p, aemp_node_loop(n), 0, 0, 0, 0};
    assert_int_equal(aemp_call_in(n, p, task_check, &t), 0);
    assert_int_equal(t.calls, 1); /* ran before aemp_call_in returned */
    assert_int_equal(t.run_rc, AEMP_EBUSY);
    assert_int_equal(aemp_port_exists(n, p), 1);
    RUN(n);
    assert_int_equal(t.calls, 1);
    aemp_node_free(n);
}

static void call_in_failure_kills(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t mon = {&rec, "mon", 0};
    const char *p = kt_port(n, NULL, NULL);
    char id[256];
    strcpy(id, p);
    struct task t = {n, p, aemp_node_loop(n), 0, 0, 3, 0};
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_call_in(n, p, task_check, &t), 0);
    assert_int_equal(aemp_port_exists(n, id), 0); /* killed at once */
    assert_int_equal(rec.n, 0);                   /* monitors: from the loop */
    RUN(n);
    assert_int_equal(rec.n, 1);
    assert_true(kt_msg_is(rec.ev[0].msg, "ss", "die", "task 3"));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

static void call_in_dead_port(void **state)
{
    aemp_node_t *n = kt_node_new();
    int called = 0;
    const char *p = kt_port(n, NULL, NULL);
    char id[256];
    strcpy(id, p);
    assert_int_equal(aemp_kil(n, p, NULL), 0);
    assert_int_equal(aemp_call_in(n, id, task_never, &called), AEMP_ENOPORT);
    RUN(n);
    assert_int_equal(aemp_call_in(n, id, task_never, &called), AEMP_ENOPORT);
    assert_int_equal(aemp_call_in(NULL, id, task_never, &called), AEMP_EINVAL);
    assert_int_equal(aemp_call_in(n, NULL, task_never, &called), AEMP_EINVAL);
    assert_int_equal(aemp_call_in(n, "", task_never, &called), AEMP_EINVAL);
    assert_int_equal(aemp_call_in(n, "other/node#abc.1", task_never, &called),
                     AEMP_ENOTLOCAL);
    assert_true(aemp_call_in(n, aemp_noderef(n), task_never, &called) < 0);
    const char *q = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_call_in(n, q, NULL, &called), AEMP_EINVAL);
    assert_int_equal(called, 0);
    aemp_node_free(n);
}

/* call_in from inside another port's callback: SELF is the inner port
 * during the call and the outer one again afterwards. */
struct nest {
    aemp_node_t *node;
    const char *outer, *inner;
    int ok_inner, ok_after, link_rc;
};

static int task_inner(aemp_ctx_t *ctx, void *user)
{
    struct nest *s = user;
    s->ok_inner = strcmp(aemp_self(ctx), s->inner) == 0;
    return 0;
}

static int on_outer(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct nest *s = user;
    assert_int_equal(aemp_call_in(s->node, s->inner, task_inner, s), 0);
    s->ok_after = strcmp(aemp_self(ctx), s->outer) == 0;
    return 0;
}

static void call_in_nested(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct nest s = {n, NULL, NULL, 0, 0, 0};
    s.outer = kt_port(n, on_outer, &s);
    s.inner = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_snd(n, s.outer, "s", "go"), 0);
    RUN(n);
    assert_int_equal(s.ok_inner, 1);
    assert_int_equal(s.ok_after, 1);
    aemp_node_free(n);
}

/* The callback kills its own port from inside call_in. */
static int task_kill_self(aemp_ctx_t *ctx, void *user)
{
    return aemp_kil(aemp_ctx_node(ctx), aemp_self(ctx), "s", "bye");
}

static void call_in_kills_self(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t mon = {&rec, "mon", 0};
    const char *p = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_call_in(n, p, task_kill_self, NULL), 0);
    RUN(n);
    assert_int_equal(rec.n, 1);
    assert_true(kt_msg_is(rec.ev[0].msg, "s", "bye"));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(after_snd_delay),
        cmocka_unit_test(after_snd_order_and_zero),
        cmocka_unit_test(after_snd_dead_port_and_node_port),
        cmocka_unit_test(after_call_in_port_context),
        cmocka_unit_test(after_call_port_dies_first),
        cmocka_unit_test(after_call_failure_kills),
        cmocka_unit_test(after_call_rearms),
        cmocka_unit_test(after_zero_rearm_lets_loop_run),
        cmocka_unit_test(after_errors),
        cmocka_unit_test(timers_pending_at_free_owned),
        cmocka_unit_test(timers_pending_at_free_borrowed),
        cmocka_unit_test(call_in_synchronous),
        cmocka_unit_test(call_in_failure_kills),
        cmocka_unit_test(call_in_dead_port),
        cmocka_unit_test(call_in_nested),
        cmocka_unit_test(call_in_kills_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
