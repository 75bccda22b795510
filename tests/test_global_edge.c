/* Edge cases of the global service, in this process: callbacks that
 * re-enter the API (db_mon / grp_mon / query callbacks that cancel guards,
 * subscribe, set, delete and query), the node freed with everything still
 * pending, long family names, queries retried from their callback, and
 * the error contract under allocation failure ("a failed call changes
 * nothing observable"; a value handed over stays the caller's on
 * failure).
 *
 * The global node here is one node of this process: configured, listening
 * on 127.0.0.1 and started as global (its own master), so that its
 * requests go through its own node port as everybody's do. */
#include "helpers.h"

#include "global.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "global edge secret"

static void quiet(aemp_node_t *n, int level, const char *text, void *user)
{
    (void)n;
    (void)level;
    (void)text;
    (void)user;
}

/* A node on loop: configured; global (listening, started as its own
 * master) or, if not, without a master. */
static aemp_node_t *node_on(uv_loop_t *loop, bool global)
{
    aemp_node_t *n = NULL;
    assert_int_equal(aemp_node_new(&n, loop), 0);
    aemp_netconf_t conf = {.secret = SECRET, .monitor_timeout = 5};
    assert_int_equal(aemp_node_configure(n, &conf), 0);
    aemp_node_set_log(n, AEMP_LOG_ERROR, quiet, NULL);
    if (global) {
        char ref[128];
        nt_listen(loop, n, NULL, ref, sizeof ref, 20);
        assert_int_equal(aemp__global_start(n, true), 0);
        assert_int_equal(aemp_node_is_global(n), 1);
    }
    return n;
}

static int flag_set(void *arg) { return *(int *)arg != 0; }

/* ---- db_mon / grp_mon callbacks that re-enter ---------------------------- */

typedef struct reent {
    aemp_node_t *n;
    aemp_mon_t *g1, *g2, *g3, *g4, *ggrp;
    int c1, c2, c3, c4, cgrp, q1, q2;
    int done;
} reent_t;

static void q_second(aemp_node_t *n, int status, const aemp_val_t *result,
                     void *user)
{
    (void)n;
    (void)result;
    reent_t *r = user;
    assert_int_equal(status, 0);
    r->q2++;
    r->done = 1;
}

/* a query callback: cancels a subscriber's guard, asks again */
static void q_first(aemp_node_t *n, int status, const aemp_val_t *result,
                    void *user)
{
    reent_t *r = user;
    assert_int_equal(status, 0);
    assert_non_null(result);
    r->q1++;
    aemp_mon_cancel(r->g3);
    r->g3 = NULL;
    assert_int_equal(aemp_db_values(n, "f", 5, q_second, r), 0);
}

static void mon3(aemp_node_t *n, const char *family, const aemp_val_t *db,
                 const aemp_val_t *added, const aemp_val_t *changed,
                 const aemp_val_t *deleted, void *user)
{
    (void)n, (void)family, (void)db, (void)added, (void)changed, (void)deleted;
    ((reent_t *)user)->c3++;
}

static void mon4(aemp_node_t *n, const char *family, const aemp_val_t *db,
                 const aemp_val_t *added, const aemp_val_t *changed,
                 const aemp_val_t *deleted, void *user)
{
    (void)family, (void)added, (void)changed, (void)deleted;
    reent_t *r = user;
    r->c4++;
    assert_int_equal(aemp_val_type(db), AEMP_T_MAP);
    /* the subscriber itself goes from inside its own first call */
    aemp_mon_cancel(r->g4);
    r->g4 = NULL;
    (void)n;
}

/* the first subscriber: on its snapshot it cancels the second one (which
 * has yet to be called in this round), subscribes twice more, sets and
 * deletes entries and asks a question; on a later call it cancels itself */
static void mon1(aemp_node_t *n, const char *family, const aemp_val_t *db,
                 const aemp_val_t *added, const aemp_val_t *changed,
                 const aemp_val_t *deleted, void *user)
{
    (void)db, (void)changed, (void)deleted;
    reent_t *r = user;
    assert_string_equal(family, "f");
    if (r->c1++ == 0) {
        aemp_mon_cancel(r->g2);
        r->g2 = NULL;
        assert_int_equal(aemp_db_mon(n, "f", mon3, r, &r->g3), 0);
        assert_int_equal(aemp_db_mon(n, "f", mon4, r, &r->g4), 0);
        assert_int_equal(aemp_db_set(n, "f", "k2", NULL), 0);
        assert_int_equal(aemp_db_del(n, "f", "k1"), 0);
        assert_int_equal(aemp_db_keys(n, "f", 5, q_first, r), 0);
    } else if (aemp_val_len(added)) {
        aemp_mon_cancel(r->g1);
        r->g1 = NULL;
    }
}

static void mon2(aemp_node_t *n, const char *family, const aemp_val_t *db,
                 const aemp_val_t *added, const aemp_val_t *changed,
                 const aemp_val_t *deleted, void *user)
{
    (void)n, (void)family, (void)db, (void)added, (void)changed, (void)deleted;
    ((reent_t *)user)->c2++;
}

static void grp1(aemp_node_t *n, const char *group, const aemp_val_t *members,
                 const aemp_val_t *added, const aemp_val_t *removed,
                 void *user)
{
    (void)group, (void)members, (void)added, (void)removed;
    reent_t *r = user;
    r->cgrp++;
    /* a grp_mon callback that cancels itself and subscribes anew */
    aemp_mon_cancel(r->ggrp);
    r->ggrp = NULL;
    if (r->cgrp < 3)
        assert_int_equal(aemp_grp_mon(n, "g", grp1, r, &r->ggrp), 0);
}

static int reent_done(void *arg)
{
    reent_t *r = arg;
    return r->done && r->cgrp >= 3;
}

static void mon_callbacks_reenter(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    reent_t r = {0};
    aemp_node_t *n = r.n = node_on(&loop, true);
    assert_int_equal(aemp_db_set(n, "f", "k1", NULL), 0);
    /* subscribers are called newest first: g2 comes after g1 */
    assert_int_equal(aemp_db_mon(n, "f", mon2, &r, &r.g2), 0);
    assert_int_equal(aemp_db_mon(n, "f", mon1, &r, &r.g1), 0);
    assert_int_equal(aemp_grp_mon(n, "g", grp1, &r, &r.ggrp), 0);
    assert_true(nt_run_until(&loop, reent_done, &r, 5));
    nt_run_for(&loop, 0.1);
    assert_true(r.c1 >= 2);
    assert_int_equal(r.c2, 0); /* cancelled before its turn */
    assert_int_equal(r.c4, 1); /* cancelled itself in its first call */
    /* (g3 may be cancelled by the query's callback before its snapshot:
     * then it is never called) */
    assert_int_equal(r.q1, 1);
    assert_int_equal(r.q2, 1);
    assert_null(r.g1);
    assert_null(r.g3);
    assert_null(r.ggrp);
    aemp_node_free(n);
    nt_loop_finish(&loop);
}

/* ---- the node freed with everything pending ----------------------------- */

static void q_never(aemp_node_t *n, int status, const aemp_val_t *result,
                    void *user)
{
    (void)n, (void)status, (void)result;
    ++*(int *)user;
}

static void mon_count(aemp_node_t *n, const char *family, const aemp_val_t *db,
                      const aemp_val_t *added, const aemp_val_t *changed,
                      const aemp_val_t *deleted, void *user)
{
    (void)n, (void)family, (void)db, (void)added, (void)changed, (void)deleted;
    ++*(int *)user;
}

static void grp_count(aemp_node_t *n, const char *group,
                      const aemp_val_t *members, const aemp_val_t *added,
                      const aemp_val_t *removed, void *user)
{
    (void)n, (void)group, (void)members, (void)added, (void)removed;
    ++*(int *)user;
}

static int rcv_ignore(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    (void)ctx, (void)m, (void)user;
    return 0;
}

static void free_with_everything_pending(bool global)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    aemp_node_t *n = node_on(&loop, global);
    const char *p;
    assert_int_equal(aemp_port(n, rcv_ignore, NULL, &p), 0);
    char port[256];
    snprintf(port, sizeof port, "%s", p);
    int calls = 0;
    aemp_mon_t *gm = NULL, *gm2 = NULL, *gg = NULL, *gr = NULL, *gr2 = NULL;
    aemp_val_t *v = aemp_str("v");
    assert_int_equal(aemp_db_reg(n, "f", port, &v, &gr), 0);
    assert_null(v);
    assert_int_equal(aemp_grp_reg(n, "g", port, &gr2), 0);
    assert_int_equal(aemp_db_mon(n, "f", mon_count, &calls, &gm), 0);
    assert_int_equal(aemp_db_mon(n, "f", mon_count, &calls, &gm2), 0);
    assert_int_equal(aemp_grp_mon(n, "g", grp_count, &calls, &gg), 0);
    if (global) /* primed: the next subscriber's snapshot is due */
        nt_run_for(&loop, 0.1);
    int before = calls;
    aemp_mon_t *late = NULL;
    assert_int_equal(aemp_db_mon(n, "f", mon_count, &calls, &late), 0);
    assert_int_equal(aemp_db_keys(n, "f", 100, q_never, &calls), 0);
    assert_int_equal(aemp_db_family(n, "nothing", 0, q_never, &calls), 0);
    aemp_mon_cancel(gm2); /* one gone before */
    aemp_node_free(n);
    /* after the node: every guard may only be freed */
    aemp_mon_cancel(gm);
    aemp_mon_cancel(gg);
    aemp_mon_cancel(gr);
    aemp_mon_cancel(gr2);
    aemp_mon_cancel(late);
    nt_loop_finish(&loop);
    assert_int_equal(calls, before); /* nothing called from the free */
}

static void node_free_pending_global(void **state)
{
    (void)state;
    free_with_everything_pending(true);
}

static void node_free_pending_attached(void **state)
{
    (void)state;
    free_with_everything_pending(false);
}

/* ---- long family names --------------------------------------------------- */

typedef struct fam_calls {
    int a, b;
} fam_calls_t;

static void mon_a(aemp_node_t *n, const char *family, const aemp_val_t *db,
                  const aemp_val_t *added, const aemp_val_t *changed,
                  const aemp_val_t *deleted, void *user)
{
    (void)n, (void)family, (void)db, (void)added, (void)changed, (void)deleted;
    ((fam_calls_t *)user)->a++;
}

static void mon_b(aemp_node_t *n, const char *family, const aemp_val_t *db,
                  const aemp_val_t *added, const aemp_val_t *changed,
                  const aemp_val_t *deleted, void *user)
{
    (void)n, (void)family, (void)db, (void)added, (void)changed;
    fam_calls_t *c = user;
    c->b++;
    assert_int_equal(aemp_val_len(deleted), 0);
    assert_non_null(aemp_map_get(db, "kb"));
}

static int both_called(void *arg)
{
    fam_calls_t *c = arg;
    return c->a && c->b;
}

/* Two families whose names share their first 300 bytes are two families:
 * monitoring both gets both snapshots (the pending request's key used to
 * be cut at 300 bytes, so the second family's g_mon1 was never sent). */
static void long_family_names(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    aemp_node_t *n = node_on(&loop, true);
    char fa[400], fb[400];
    memset(fa, 'x', sizeof fa - 1);
    fa[sizeof fa - 1] = 0;
    memcpy(fb, fa, sizeof fb);
    fa[sizeof fa - 2] = 'a';
    fb[sizeof fb - 2] = 'b';
    assert_int_equal(aemp_db_set(n, fa, "ka", NULL), 0);
    assert_int_equal(aemp_db_set(n, fb, "kb", NULL), 0);
    fam_calls_t c = {0};
    aemp_mon_t *ga = NULL, *gb = NULL;
    assert_int_equal(aemp_db_mon(n, fa, mon_a, &c, &ga), 0);
    assert_int_equal(aemp_db_mon(n, fb, mon_b, &c, &gb), 0);
    nt_run_until(&loop, both_called, &c, 2);
    if (!c.a || !c.b)
        fail_msg("snapshots: %d of the first family, %d of the second", c.a,
                 c.b);
    aemp_mon_cancel(ga);
    aemp_mon_cancel(gb);
    aemp_node_free(n);
    nt_loop_finish(&loop);
}

/* ---- a query retried from its timeout callback -------------------------- */

typedef struct retry {
    int calls;
    uint64_t iterations; /* loop iterations (a prepare handle counts) */
    uint64_t first_at, last_at;
    int done;
} retry_t;

static void on_prepare(uv_prepare_t *h)
{
    ((retry_t *)h->data)->iterations++;
}

static void q_retry(aemp_node_t *n, int status, const aemp_val_t *result,
                    void *user)
{
    (void)result;
    retry_t *r = user;
    assert_int_equal(status, AEMP_ETIMEDOUT);
    if (r->calls++ == 0)
        r->first_at = r->iterations;
    r->last_at = r->iterations;
    if (r->calls < 200) /* ask again, as a caller that retries does */
        assert_int_equal(aemp_db_keys(n, "f", 0.0001, q_retry, r), 0);
    else
        r->done = 1;
}

/* A query asked again from its own timeout callback is not answered in the
 * same turn of the loop: each timeout comes from the loop (with a timeout
 * under 1 ms the deadline was "now", and the timer callback, which starts
 * over after every callback, ran the new query's callback at once — a
 * callback that always retries never gave the loop back). */
static void query_retry_from_callback(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    aemp_node_t *n = node_on(&loop, false); /* no master: queries time out */
    retry_t r = {0};
    uv_prepare_t prep;
    uv_prepare_init(&loop, &prep);
    prep.data = &r;
    uv_prepare_start(&prep, on_prepare);
    assert_int_equal(aemp_db_keys(n, "f", 0.0001, q_retry, &r), 0);
    nt_run_until(&loop, flag_set, &r.done, 5);
    assert_int_equal(r.calls, 200);
    if (r.last_at - r.first_at < 100)
        fail_msg("200 timeouts of retried queries in %llu loop iterations: "
                 "the retries starve the loop",
                 (unsigned long long)(r.last_at - r.first_at));
    uv_prepare_stop(&prep);
    uv_close((uv_handle_t *)&prep, NULL);
    aemp_node_free(n);
    nt_loop_finish(&loop);
}

/* ---- a subscriber that subscribes anew from its snapshot ---------------- */

typedef struct resub {
    aemp_mon_t *guard;
    int calls, done;
    uint64_t iterations, first_at, last_at;
} resub_t;

static void on_prepare_resub(uv_prepare_t *h)
{
    ((resub_t *)h->data)->iterations++;
}

static void mon_resub(aemp_node_t *n, const char *family, const aemp_val_t *db,
                      const aemp_val_t *added, const aemp_val_t *changed,
                      const aemp_val_t *deleted, void *user)
{
    (void)db, (void)added, (void)changed, (void)deleted;
    resub_t *r = user;
    if (r->calls++ == 0)
        r->first_at = r->iterations;
    r->last_at = r->iterations;
    aemp_mon_cancel(r->guard);
    r->guard = NULL;
    if (r->calls < 200)
        assert_int_equal(aemp_db_mon(n, family, mon_resub, r, &r->guard), 0);
    else
        r->done = 1;
}

/* A db_mon callback that replaces its subscription with a new one gets the
 * new one's snapshot from the loop, not in the same turn (the snapshot
 * idle callback started over after every family and served the new
 * subscriber at once: one that always re-subscribes never gave the loop
 * back). */
static void resubscribe_from_snapshot(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    aemp_node_t *n = node_on(&loop, true);
    assert_int_equal(aemp_db_set(n, "f", "k", NULL), 0);
    resub_t r = {0};
    uv_prepare_t prep;
    uv_prepare_init(&loop, &prep);
    prep.data = &r;
    uv_prepare_start(&prep, on_prepare_resub);
    assert_int_equal(aemp_db_mon(n, "f", mon_resub, &r, &r.guard), 0);
    nt_run_until(&loop, flag_set, &r.done, 5);
    assert_int_equal(r.calls, 200);
    if (r.last_at - r.first_at < 100)
        fail_msg("200 snapshots of re-made subscriptions in %llu loop "
                 "iterations: the re-subscriptions starve the loop",
                 (unsigned long long)(r.last_at - r.first_at));
    assert_null(r.guard);
    uv_prepare_stop(&prep);
    uv_close((uv_handle_t *)&prep, NULL);
    aemp_node_free(n);
    nt_loop_finish(&loop);
}

/* ---- the error contract under allocation failure ------------------------- */

/* db_set: a value handed over stays the caller's when the call fails (the
 * caller frees it: no double free), and nothing is set. */
static void db_set_alloc_failure(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    aemp_node_t *n = node_on(&loop, false);
    assert_int_equal(aemp_db_set(n, "f", "warm", NULL), 0);
    aemp__global_t *g = n->global;
    assert_non_null(g);
    int failures = 0;
    for (size_t at = 1; at < 200; at++) {
        char key[32];
        snprintf(key, sizeof key, "k%zu", at);
        aemp_val_t *v = aemp_str("value");
        assert_non_null(v);
        kt_alloc_fail(at, 0);
        int rc = aemp_db_set(n, "f", key, &v);
        size_t attempts = kt_alloc_count();
        kt_alloc_disarm();
        if (rc == 0) {
            assert_null(v);
            if (attempts < at)
                break; /* no failure left to inject */
            continue;
        }
        failures++;
        assert_int_equal(rc, AEMP_ENOMEM);
        /* still ours: freeing it must be fine */
        assert_non_null(v);
        aemp_val_free(v);
        assert_null(aemp__db_get(&g->local, "f", 1, key, strlen(key)));
    }
    assert_true(failures > 0);
    aemp_node_free(n);
    nt_loop_finish(&loop);
}

/* db_del: a failed call leaves the entry where it was (it was deleted
 * here and never told to the master). */
static void db_del_alloc_failure(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    aemp_node_t *n = node_on(&loop, false);
    assert_int_equal(aemp_db_set(n, "f", "k", NULL), 0);
    aemp__global_t *g = n->global;
    int failures = 0;
    for (size_t at = 1; at < 100; at++) {
        kt_alloc_fail(at, 0);
        int rc = aemp_db_del(n, "f", "k");
        size_t attempts = kt_alloc_count();
        kt_alloc_disarm();
        bool there = aemp__db_get(&g->local, "f", 1, "k", 1) != NULL;
        if (rc == 0) {
            assert_false(there);
            if (attempts < at)
                break;
            assert_int_equal(aemp_db_set(n, "f", "k", NULL), 0);
            continue;
        }
        failures++;
        assert_int_equal(rc, AEMP_ENOMEM);
        if (!there)
            fail_msg("db_del failed (%s) with allocation %zu failing, yet "
                     "the entry is gone",
                     aemp_err_name(rc), at);
    }
    assert_true(failures > 0);
    aemp_node_free(n);
    nt_loop_finish(&loop);
}

/* db_reg: a failed call leaves an entry that was set before as it was. */
static void db_reg_alloc_failure(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    aemp_node_t *n = node_on(&loop, false);
    const char *p;
    assert_int_equal(aemp_port(n, rcv_ignore, NULL, &p), 0);
    char port[256];
    snprintf(port, sizeof port, "%s", p);
    aemp_val_t *old = aemp_str("old");
    assert_int_equal(aemp_db_set(n, "f", port, &old), 0);
    aemp__global_t *g = n->global;
    int failures = 0;
    for (size_t at = 1; at < 200; at++) {
        aemp_val_t *v = aemp_str("new");
        aemp_mon_t *guard = NULL;
        kt_alloc_fail(at, 0);
        int rc = aemp_db_reg(n, "f", port, &v, &guard);
        size_t attempts = kt_alloc_count();
        kt_alloc_disarm();
        if (rc == 0) {
            assert_null(v);
            aemp_mon_cancel(guard); /* the entry goes with it */
            if (attempts < at)
                break;
            old = aemp_str("old");
            assert_int_equal(aemp_db_set(n, "f", port, &old), 0);
            continue;
        }
        failures++;
        assert_int_equal(rc, AEMP_ENOMEM);
        assert_null(guard);
        assert_non_null(v);
        aemp_val_free(v);
        aemp__dbent_t *e =
            aemp__db_get(&g->local, "f", 1, port, strlen(port));
        const char *s = NULL;
        if (!e || aemp_val_str(e->val, &s, NULL) < 0 || strcmp(s, "old"))
            fail_msg("db_reg failed (%s) with allocation %zu failing, and "
                     "the entry set before is %s",
                     aemp_err_name(rc), at, e ? s ? s : "another" : "gone");
    }
    assert_true(failures > 0);
    aemp_node_free(n);
    nt_loop_finish(&loop);
}

int main(void)
{
    kt_alloc_install(); /* before any other aemp call */
    const char *e = getenv("AEMP_GLOBAL_EDGE_TESTS");
    if (e)
        cmocka_set_test_filter(e);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mon_callbacks_reenter),
        cmocka_unit_test(node_free_pending_global),
        cmocka_unit_test(node_free_pending_attached),
        cmocka_unit_test(long_family_names),
        cmocka_unit_test(query_retry_from_callback),
        cmocka_unit_test(resubscribe_from_snapshot),
        cmocka_unit_test(db_set_alloc_failure),
        cmocka_unit_test(db_del_alloc_failure),
        cmocka_unit_test(db_reg_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
