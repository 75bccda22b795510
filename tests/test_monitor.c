/* Monitors (the four forms of mon and mon_guard), their guards, and the
 * order of deliveries and deaths. */
#include "helpers.h"

#include <string.h>

#define RUN(n) assert_int_equal(aemp_run(n), 0)

static const char *const nsp_text = "cannot monitor nonexistent port";

/* An ID of ours that names no port. */
static void ghost_of(aemp_node_t *n, char *buf, size_t size)
{
    const char *p = kt_port(n, NULL, NULL);
    snprintf(buf, size, "%s999", p);
    assert_int_equal(aemp_kil(n, p, NULL), 0);
}

static int is_no_such_port(const aemp_msg_t *reason, const char *id)
{
    return kt_msg_is(reason, "sss", "no_such_port", nsp_text, id);
}

/* ---- form 1 ------------------------------------------------------------- */

static void mon_cb_normal_and_reason(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t m1 = {&rec, "m1", 0}, m2 = {&rec, "m2", 0};
    const char *a = kt_port(n, NULL, NULL), *b = kt_port(n, NULL, NULL);
    char ida[256], idb[256];
    strcpy(ida, a);
    strcpy(idb, b);
    assert_int_equal(aemp_mon_cb(n, a, kt_tap_mon, &m1, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, b, kt_tap_mon, &m2, NULL), 0);
    assert_int_equal(aemp_kil(n, a, NULL), 0);
    assert_int_equal(aemp_kil(n, b, "ss[i]", "die", "why", 1), 0);
    assert_int_equal(rec.n, 0); /* not inside aemp_kil */
    RUN(n);
    assert_int_equal(rec.n, 2);
    assert_string_equal(rec.ev[0].port, ida);
    assert_true(kt_msg_is(rec.ev[0].msg, ""));
    assert_string_equal(rec.ev[1].port, idb);
    assert_true(kt_msg_is(rec.ev[1].msg, "ss[i]", "die", "why", 1));
    RUN(n); /* one-shot */
    assert_int_equal(rec.n, 2);
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* The port ID handed to the monitor callback is valid during the call; the
 * port's own ID pointer is too ("valid ... until its monitors have
 * fired"). */
struct idcheck {
    const char *id_ptr;
    char copy[256];
    int ok;
};

static void on_mon_idcheck(aemp_node_t *n, const char *port,
                           const aemp_msg_t *reason, void *user)
{
    struct idcheck *c = user;
    c->ok = strcmp(port, c->copy) == 0 && strcmp(c->id_ptr, c->copy) == 0;
}

static void mon_cb_id_valid_until_fired(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct idcheck c = {NULL, "", 0};
    c.id_ptr = kt_port(n, NULL, NULL);
    strcpy(c.copy, c.id_ptr);
    assert_int_equal(aemp_mon_cb(n, c.id_ptr, on_mon_idcheck, &c, NULL), 0);
    assert_int_equal(aemp_kil(n, c.id_ptr, "s", "x"), 0);
    RUN(n);
    assert_int_equal(c.ok, 1);
    aemp_node_free(n);
}

/* ---- forms 2 and 3 ------------------------------------------------------ */

static void mon_kill_other(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t mb = {&rec, "mb", 0}, md = {&rec, "md", 0};
    const char *a = kt_port(n, NULL, NULL), *b = kt_port(n, NULL, NULL);
    const char *c = kt_port(n, NULL, NULL), *d = kt_port(n, NULL, NULL);
    char idb[256], idd[256];
    strcpy(idb, b);
    strcpy(idd, d);
    assert_int_equal(aemp_mon_kill(n, a, b, NULL), 0);
    assert_int_equal(aemp_mon_kill(n, c, d, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, b, kt_tap_mon, &mb, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, d, kt_tap_mon, &md, NULL), 0);
    assert_int_equal(aemp_kil(n, a, NULL), 0);
    assert_int_equal(aemp_kil(n, c, "si", "bad", 2), 0);
    assert_int_equal(aemp_port_exists(n, idd), 1); /* killed from the loop */
    RUN(n);
    assert_int_equal(aemp_port_exists(n, idb), 1);
    assert_int_equal(kt_rec_count(&rec, "mb"), 0);
    assert_int_equal(aemp_port_exists(n, idd), 0);
    assert_int_equal(kt_rec_count(&rec, "md"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "md", 0)->msg, "si", "bad", 2));
    assert_string_equal(kt_rec_nth(&rec, "md", 0)->port, idd);
    aemp_node_free(n);
    kt_rec_free(&rec);
}

static void mon_kill_chain(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t mon = {&rec, "mon", 0};
    char ids[5][256];
    for (int i = 0; i < 5; i++) {
        strcpy(ids[i], kt_port(n, NULL, NULL));
        assert_int_equal(aemp_mon_cb(n, ids[i], kt_tap_mon, &mon, NULL), 0);
    }
    /* ids[i+1] dies when ids[i] dies */
    for (int i = 0; i < 4; i++)
        assert_int_equal(aemp_mon_kill(n, ids[i], ids[i + 1], NULL), 0);
    assert_int_equal(aemp_kil(n, ids[0], "ss", "die", "chain"), 0);
    RUN(n);
    assert_int_equal(rec.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(rec.ev[i].port, ids[i]);
        assert_true(kt_msg_is(rec.ev[i].msg, "ss", "die", "chain"));
        assert_int_equal(aemp_port_exists(n, ids[i]), 0);
    }
    aemp_node_free(n);
    kt_rec_free(&rec);
}

struct linker {
    aemp_node_t *node;
    const char *target;
    int rc;
};

static int on_link_self(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct linker *l = user;
    l->rc = aemp_mon_kill(aemp_ctx_node(ctx), l->target, NULL, NULL);
    return 0;
}

static int task_link_self(aemp_ctx_t *ctx, void *user)
{
    struct linker *l = user;
    l->rc = aemp_mon_kill(aemp_ctx_node(ctx), l->target, NULL, NULL);
    return 0;
}

static void mon_kill_self(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t mon = {&rec, "mon", 0};
    const char *t1 = kt_port(n, NULL, NULL), *t2 = kt_port(n, NULL, NULL);
    const char *t3 = kt_port(n, NULL, NULL);
    struct linker l1 = {n, t1, 1}, l2 = {n, t2, 1}, l3 = {n, t3, 1};
    const char *a = kt_port(n, on_link_self, &l1);
    const char *b = kt_port(n, on_link_self, &l2);
    const char *c = kt_port(n, NULL, NULL);
    char ida[256], idb[256], idc[256];
    strcpy(ida, a), strcpy(idb, b), strcpy(idc, c);
    assert_int_equal(aemp_mon_cb(n, a, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, b, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, c, kt_tap_mon, &mon, NULL), 0);
    /* outside any callback there is no SELF */
    assert_int_equal(aemp_mon_kill(n, t1, NULL, NULL), AEMP_ENOCTX);
    aemp_mon_t *g = (aemp_mon_t *)&g;
    assert_int_equal(aemp_mon_kill(n, t1, NULL, &g), AEMP_ENOCTX);
    assert_ptr_equal(g, (aemp_mon_t *)&g); /* untouched on failure */
    /* inside: a links itself to t1, b to t2, c (via call_in) to t3 */
    assert_int_equal(aemp_snd(n, a, "s", "link"), 0);
    assert_int_equal(aemp_snd(n, b, "s", "link"), 0);
    RUN(n);
    assert_int_equal(l1.rc, 0);
    assert_int_equal(l2.rc, 0);
    assert_int_equal(aemp_call_in(n, c, task_link_self, &l3), 0);
    assert_int_equal(l3.rc, 0);
    /* normal end of t1: a lives; reason for t2, t3: b and c die with it */
    assert_int_equal(aemp_kil(n, t1, NULL), 0);
    assert_int_equal(aemp_kil(n, t2, "ss", "die", "t2"), 0);
    assert_int_equal(aemp_kil(n, t3, "ss", "die", "t3"), 0);
    RUN(n);
    assert_int_equal(aemp_port_exists(n, ida), 1);
    assert_int_equal(aemp_port_exists(n, idb), 0);
    assert_int_equal(aemp_port_exists(n, idc), 0);
    assert_int_equal(rec.n, 2);
    assert_string_equal(kt_rec_nth(&rec, "mon", 0)->port, idb);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "mon", 0)->msg, "ss", "die", "t2"));
    assert_string_equal(kt_rec_nth(&rec, "mon", 1)->port, idc);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "mon", 1)->msg, "ss", "die", "t3"));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* A monitor callback is not a port callback: no SELF there. */
static void on_mon_link_self(aemp_node_t *n, const char *port,
                             const aemp_msg_t *reason, void *user)
{
    struct linker *l = user;
    l->rc = aemp_mon_kill(n, l->target, NULL, NULL);
}

static void mon_kill_self_not_in_mon_callback(void **state)
{
    aemp_node_t *n = kt_node_new();
    const char *t = kt_port(n, NULL, NULL), *a = kt_port(n, NULL, NULL);
    struct linker l = {n, t, 1};
    assert_int_equal(aemp_mon_cb(n, a, on_mon_link_self, &l, NULL), 0);
    assert_int_equal(aemp_kil(n, a, NULL), 0);
    RUN(n);
    assert_int_equal(l.rc, AEMP_ENOCTX);
    aemp_node_free(n);
}

/* ---- form 4 ------------------------------------------------------------- */

static void mon_msg_form(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "rcv", 0};
    const char *r = kt_port(n, kt_tap_rcv, &tap);
    const char *a = kt_port(n, NULL, NULL), *b = kt_port(n, NULL, NULL);
    const char *c = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_mon_msg(n, a, r, NULL, "si", "down", 7), 0);
    assert_int_equal(aemp_mon_msg(n, b, r, NULL, "si", "down", 8), 0);
    assert_int_equal(aemp_mon_msg(n, c, r, NULL, ""), 0);
    assert_int_equal(aemp_kil(n, a, "ss", "die", "x"), 0);
    assert_int_equal(aemp_kil(n, b, NULL), 0);
    assert_int_equal(aemp_kil(n, c, "[i]", 1), 0);
    RUN(n);
    assert_int_equal(rec.n, 3);
    assert_true(kt_msg_is(rec.ev[0].msg, "siss", "down", 7, "die", "x"));
    assert_true(kt_msg_is(rec.ev[1].msg, "si", "down", 8));
    assert_true(kt_msg_is(rec.ev[2].msg, "[i]", 1));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* ---- order, timing, one-shot ------------------------------------------- */

static void on_release_rec(void *res)
{
    kt_tap_t *t = res;
    kt_rec_add(t->rec, t->label, NULL, NULL);
}

static void mon_order(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t m[6];
    static const char *labels[6] = {"0", "1", "2", "3", "4", "5"};
    for (int i = 0; i < 6; i++)
        m[i] = (kt_tap_t){&rec, labels[i], 0};
    const char *p = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &m[0], NULL), 0);
    assert_int_equal(aemp_mon_guard(n, p, on_release_rec, &m[1], NULL), 0);
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &m[2], NULL), 0);
    aemp_mon_t *g = NULL;
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &m[3], &g), 0);
    assert_int_equal(aemp_mon_guard(n, p, on_release_rec, &m[4], NULL), 0);
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &m[5], NULL), 0);
    assert_int_equal(aemp_kil(n, p, "s", "x"), 0);
    RUN(n);
    assert_int_equal(rec.n, 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(rec.ev[i].label, labels[i]);
    aemp_mon_cancel(g);
    aemp_node_free(n);
    kt_rec_free(&rec);
}

struct flag {
    int fired;
};

static void on_mon_flag(aemp_node_t *n, const char *port,
                        const aemp_msg_t *reason, void *user)
{
    ((struct flag *)user)->fired++;
}

static void mon_not_inside_kil_or_snd(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct flag f = {0}, g = {0};
    const char *p = kt_port(n, NULL, NULL); /* dies of its first message */
    const char *q = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_mon_cb(n, p, on_mon_flag, &f, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, q, on_mon_flag, &g, NULL), 0);
    assert_int_equal(aemp_snd(n, p, "s", "boom"), 0);
    assert_int_equal(f.fired, 0);
    assert_int_equal(aemp_kil(n, q, "s", "x"), 0);
    assert_int_equal(g.fired, 0);
    RUN(n);
    assert_int_equal(f.fired, 1);
    assert_int_equal(g.fired, 1);
    aemp_node_free(n);
}

static void mon_nonexistent(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t mon = {&rec, "mon", 0}, tap = {&rec, "rcv", 0},
             mk = {&rec, "killed", 0}, rel = {&rec, "released", 0};
    char never[256], dead[256], dying[256];
    ghost_of(n, never, sizeof never);
    strcpy(dead, kt_port(n, NULL, NULL));
    assert_int_equal(aemp_kil(n, dead, NULL), 0);
    RUN(n);
    strcpy(dying, kt_port(n, NULL, NULL));
    assert_int_equal(aemp_kil(n, dying, NULL), 0); /* not yet reaped */
    const char *r = kt_port(n, kt_tap_rcv, &tap);
    const char *k = kt_port(n, NULL, NULL);
    char idk[256];
    strcpy(idk, k);
    assert_int_equal(aemp_mon_cb(n, k, kt_tap_mon, &mk, NULL), 0);

    assert_int_equal(aemp_mon_cb(n, never, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, dead, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, dying, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_mon_msg(n, never, r, NULL, "s", "down"), 0);
    assert_int_equal(aemp_mon_guard(n, never, on_release_rec, &rel, NULL), 0);
    assert_int_equal(aemp_mon_kill(n, never, k, NULL), 0);
    assert_int_equal(rec.n, 0); /* from the loop, not synchronously */
    RUN(n);
    assert_int_equal(kt_rec_count(&rec, "mon"), 3);
    assert_string_equal(kt_rec_nth(&rec, "mon", 0)->port, never);
    assert_true(is_no_such_port(kt_rec_nth(&rec, "mon", 0)->msg, never));
    assert_string_equal(kt_rec_nth(&rec, "mon", 1)->port, dead);
    assert_true(is_no_such_port(kt_rec_nth(&rec, "mon", 1)->msg, dead));
    /* a port killed but not yet reaped: either its reason or no_such_port */
    const kt_event_t *e = kt_rec_nth(&rec, "mon", 2);
    assert_string_equal(e->port, dying);
    assert_true(aemp_msg_len(e->msg) == 0 || is_no_such_port(e->msg, dying));
    assert_int_equal(kt_rec_count(&rec, "rcv"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "rcv", 0)->msg, "ssss", "down",
                          "no_such_port", nsp_text, never));
    assert_int_equal(kt_rec_count(&rec, "released"), 1);
    /* the no_such_port reason is a reason: linked ports die of it */
    assert_int_equal(kt_rec_count(&rec, "killed"), 1);
    assert_true(is_no_such_port(kt_rec_nth(&rec, "killed", 0)->msg, never));
    assert_int_equal(aemp_port_exists(n, idk), 0);
    RUN(n); /* one-shot */
    assert_int_equal(kt_rec_count(&rec, "mon"), 3);
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* ---- guards ------------------------------------------------------------- */

static void guard_cancel_before_fire(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t mon = {&rec, "mon", 0}, tap = {&rec, "rcv", 0};
    const char *r = kt_port(n, kt_tap_rcv, &tap);
    const char *a = kt_port(n, NULL, NULL), *b = kt_port(n, NULL, NULL);
    const char *l = kt_port(n, NULL, NULL);
    char never[256], idl[256];
    strcpy(idl, l);
    ghost_of(n, never, sizeof never);
    aemp_mon_t *g[8] = {0};
    /* armed on a live port, then cancelled; the port dies later */
    assert_int_equal(aemp_mon_cb(n, a, kt_tap_mon, &mon, &g[0]), 0);
    assert_int_equal(aemp_mon_msg(n, a, r, &g[1], "s", "down"), 0);
    assert_int_equal(aemp_mon_kill(n, a, l, &g[2]), 0);
    aemp_mon_cancel(g[0]);
    aemp_mon_cancel(g[1]);
    aemp_mon_cancel(g[2]);
    assert_int_equal(aemp_kil(n, a, "s", "x"), 0);
    /* the port is dead but its monitors not yet fired: cancel still wins */
    assert_int_equal(aemp_mon_cb(n, b, kt_tap_mon, &mon, &g[3]), 0);
    assert_int_equal(aemp_mon_msg(n, b, r, &g[4], "s", "down"), 0);
    assert_int_equal(aemp_kil(n, b, "s", "y"), 0);
    aemp_mon_cancel(g[3]);
    aemp_mon_cancel(g[4]);
    /* a no_such_port notice queued, then cancelled */
    assert_int_equal(aemp_mon_cb(n, never, kt_tap_mon, &mon, &g[5]), 0);
    assert_int_equal(aemp_mon_kill(n, never, l, &g[6]), 0);
    aemp_mon_cancel(g[5]);
    aemp_mon_cancel(g[6]);
    RUN(n);
    assert_int_equal(rec.n, 0);
    assert_int_equal(aemp_port_exists(n, idl), 1);
    aemp_node_free(n);
    kt_rec_free(&rec);
}

static void guard_cancel_after_fire(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t mon = {&rec, "mon", 0}, tap = {&rec, "rcv", 0};
    const char *r = kt_port(n, kt_tap_rcv, &tap);
    const char *a = kt_port(n, NULL, NULL), *l = kt_port(n, NULL, NULL);
    char never[256];
    ghost_of(n, never, sizeof never);
    aemp_mon_t *g[5] = {0};
    assert_int_equal(aemp_mon_cb(n, a, kt_tap_mon, &mon, &g[0]), 0);
    assert_int_equal(aemp_mon_msg(n, a, r, &g[1], "s", "down"), 0);
    assert_int_equal(aemp_mon_kill(n, a, l, &g[2]), 0);
    assert_int_equal(aemp_mon_cb(n, never, kt_tap_mon, &mon, &g[3]), 0);
    assert_int_equal(aemp_mon_msg(n, never, r, &g[4], "s", "down"), 0);
    assert_int_equal(aemp_kil(n, a, "s", "x"), 0);
    RUN(n);
    assert_int_equal(kt_rec_count(&rec, "mon"), 2);
    assert_int_equal(kt_rec_count(&rec, "rcv"), 2);
    for (int i = 0; i < 3; i++)
        aemp_mon_cancel(g[i]); /* frees only (leaks show under ASan) */
    RUN(n);
    assert_int_equal(rec.n, 4);
    aemp_node_free(n);
    /* fired guards stay valid for aemp_mon_cancel after the node is gone */
    aemp_mon_cancel(g[3]);
    aemp_mon_cancel(g[4]);
    assert_int_equal(rec.n, 4);
    kt_rec_free(&rec);
}

struct selfcancel {
    aemp_mon_t *guard;
    int fired;
    kt_rec_t *rec;
};

static void on_mon_selfcancel(aemp_node_t *n, const char *port,
                              const aemp_msg_t *reason, void *user)
{
    struct selfcancel *s = user;
    s->fired++;
    aemp_mon_cancel(s->guard);
    s->guard = NULL;
}

static void guard_cancel_inside_own_callback(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct selfcancel s1 = {NULL, 0, NULL}, s2 = {NULL, 0, NULL};
    const char *a = kt_port(n, NULL, NULL);
    char never[256];
    ghost_of(n, never, sizeof never);
    assert_int_equal(aemp_mon_cb(n, a, on_mon_selfcancel, &s1, &s1.guard), 0);
    assert_int_equal(aemp_mon_cb(n, never, on_mon_selfcancel, &s2, &s2.guard),
                     0);
    assert_non_null(s1.guard);
    assert_non_null(s2.guard);
    assert_int_equal(aemp_kil(n, a, "s", "x"), 0);
    RUN(n);
    assert_int_equal(s1.fired, 1);
    assert_int_equal(s2.fired, 1);
    aemp_node_free(n);
}

/* One monitor's callback cancels the next monitor of the same port. */
struct cancel_other {
    aemp_mon_t *other;
};

static void on_mon_cancel_other(aemp_node_t *n, const char *port,
                                const aemp_msg_t *reason, void *user)
{
    struct cancel_other *c = user;
    aemp_mon_cancel(c->other);
    c->other = NULL;
}

static void guard_cancel_sibling_inside_callback(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct cancel_other c = {NULL};
    struct flag f = {0}, last = {0};
    const char *a = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_mon_cb(n, a, on_mon_cancel_other, &c, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, a, on_mon_flag, &f, &c.other), 0);
    assert_int_equal(aemp_mon_cb(n, a, on_mon_flag, &last, NULL), 0);
    assert_int_equal(aemp_kil(n, a, NULL), 0);
    RUN(n);
    assert_int_equal(f.fired, 0);
    assert_int_equal(last.fired, 1);
    assert_null(c.other);
    aemp_node_free(n);
}

static void guard_null_is_fine(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct flag f = {0};
    const char *r = kt_port(n, NULL, NULL);
    const char *a = kt_port(n, NULL, NULL), *l = kt_port(n, NULL, NULL);
    char never[256];
    ghost_of(n, never, sizeof never);
    assert_int_equal(aemp_mon_cb(n, a, on_mon_flag, &f, NULL), 0);
    assert_int_equal(aemp_mon_kill(n, a, l, NULL), 0);
    assert_int_equal(aemp_mon_msg(n, a, r, NULL, "s", "x"), 0);
    assert_int_equal(aemp_mon_cb(n, never, on_mon_flag, &f, NULL), 0);
    assert_int_equal(aemp_mon_msg(n, never, r, NULL, "s", "x"), 0);
    assert_int_equal(aemp_mon_kill(n, never, l, NULL), 0); /* kills l */
    /* and some that never fire, freed with the node */
    const char *alive = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_mon_cb(n, alive, on_mon_flag, &f, NULL), 0);
    assert_int_equal(aemp_mon_msg(n, alive, r, NULL, "s", "x"), 0);
    assert_int_equal(aemp_mon_kill(n, alive, r, NULL), 0);
    assert_int_equal(aemp_kil(n, a, NULL), 0);
    RUN(n);
    assert_int_equal(f.fired, 2);
    aemp_node_free(n);
}

static void on_count(void *res)
{
    (*(int *)res)++;
}

static void mon_guard_release(void **state)
{
    aemp_node_t *n = kt_node_new();
    int r_dies = 0, r_ghost = 0, r_cancel = 0, r_free = 0, r_held = 0,
        r_twice = 0, r_node = 0;
    const char *a = kt_port(n, NULL, NULL), *b = kt_port(n, NULL, NULL);
    const char *c = kt_port(n, NULL, NULL);
    char never[256];
    ghost_of(n, never, sizeof never);
    aemp_mon_t *g_cancel = NULL, *g_held = NULL, *g_node = NULL;
    assert_int_equal(aemp_mon_guard(n, a, on_count, &r_dies, NULL), 0);
    assert_int_equal(aemp_mon_guard(n, never, on_count, &r_ghost, NULL), 0);
    assert_int_equal(aemp_mon_guard(n, b, on_count, &r_cancel, &g_cancel), 0);
    assert_int_equal(aemp_mon_guard(n, c, on_count, &r_free, NULL), 0);
    assert_int_equal(aemp_mon_guard(n, c, on_count, &r_held, &g_held), 0);
    assert_int_equal(aemp_mon_guard(n, a, on_count, &r_twice, NULL), 0);
    assert_int_equal(aemp_mon_guard(n, a, on_count, &r_twice, NULL), 0);
    assert_int_equal(
        aemp_mon_guard(n, aemp_noderef(n), on_count, &r_node, &g_node), 0);
    assert_int_equal(r_ghost, 0); /* "at once" means from the loop */
    assert_int_equal(aemp_kil(n, a, NULL), 0);
    assert_int_equal(r_dies, 0); /* not inside aemp_kil */
    aemp_mon_cancel(g_cancel);   /* cancelled before death: released now */
    assert_int_equal(r_cancel, 1);
    assert_int_equal(aemp_kil(n, b, "s", "x"), 0);
    RUN(n);
    assert_int_equal(r_dies, 1);
    assert_int_equal(r_ghost, 1);
    assert_int_equal(r_cancel, 1);
    assert_int_equal(r_twice, 2);
    assert_int_equal(r_free + r_held + r_node, 0);
    RUN(n);
    assert_int_equal(r_dies + r_ghost + r_cancel, 3);
    aemp_node_free(n); /* c and the node port still alive: released now */
    assert_int_equal(r_free, 1);
    assert_int_equal(r_held, 1);
    assert_int_equal(r_node, 1);
    aemp_mon_cancel(g_held); /* after node free: frees, releases nothing */
    aemp_mon_cancel(g_node);
    assert_int_equal(r_held, 1);
    assert_int_equal(r_node, 1);
}

/* The node port never dies; its monitors are dropped at node free. */
static void mon_node_port(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct flag f = {0};
    aemp_mon_t *g = NULL;
    assert_int_equal(aemp_mon_cb(n, aemp_noderef(n), on_mon_flag, &f, &g), 0);
    assert_int_equal(aemp_mon_cb(n, aemp_noderef(n), on_mon_flag, &f, NULL), 0);
    assert_int_equal(aemp_snd(n, aemp_noderef(n), "s", "devnull"), 0);
    RUN(n);
    assert_int_equal(f.fired, 0);
    aemp_node_free(n);
    assert_int_equal(f.fired, 0);
    aemp_mon_cancel(g);
}

/* ---- reentrancy from monitor callbacks --------------------------------- */

struct busy {
    const char *next; /* port to kill from the callback */
    const char *rcv;  /* port to send to */
    kt_tap_t *late;   /* monitors the dying port again */
    int rc[4];
};

static void on_mon_busy(aemp_node_t *n, const char *port,
                        const aemp_msg_t *reason, void *user)
{
    struct busy *b = user;
    const char *id;
    b->rc[0] = aemp_snd(n, b->rcv, "ss", "from-mon", port);
    b->rc[1] = aemp_mon_cb(n, port, kt_tap_mon, b->late, NULL);
    b->rc[2] = aemp_kil(n, b->next, "s", "cascade");
    b->rc[3] = aemp_port(n, NULL, NULL, &id);
}

static void mon_callback_may_use_node(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "rcv", 0}, late = {&rec, "late", 0},
             mnext = {&rec, "next", 0};
    const char *r = kt_port(n, kt_tap_rcv, &tap);
    const char *a = kt_port(n, NULL, NULL), *b = kt_port(n, NULL, NULL);
    char ida[256], idb[256];
    strcpy(ida, a);
    strcpy(idb, b);
    struct busy bz = {idb, r, &late, {1, 1, 1, 1}};
    assert_int_equal(aemp_mon_cb(n, a, on_mon_busy, &bz, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, b, kt_tap_mon, &mnext, NULL), 0);
    assert_int_equal(aemp_kil(n, a, "s", "x"), 0);
    RUN(n);
    for (int i = 0; i < 4; i++)
        assert_int_equal(bz.rc[i], 0);
    assert_int_equal(kt_rec_count(&rec, "rcv"), 1);
    assert_true(
        kt_msg_is(kt_rec_nth(&rec, "rcv", 0)->msg, "ss", "from-mon", ida));
    /* monitoring the port whose monitors are firing: it no longer exists */
    assert_int_equal(kt_rec_count(&rec, "late"), 1);
    assert_true(is_no_such_port(kt_rec_nth(&rec, "late", 0)->msg, ida));
    assert_int_equal(kt_rec_count(&rec, "next"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "next", 0)->msg, "s", "cascade"));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* ---- ordering ----------------------------------------------------------- */

struct sender {
    aemp_node_t *node;
    const char *to;
};

static int on_send_then_die(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct sender *s = user;
    assert_int_equal(aemp_snd(s->node, s->to, "ss", "from", aemp_self(ctx)), 0);
    return aemp_die(ctx, "after sending");
}

static void order_message_before_death_notice(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tc = {&rec, "c-rcv", 0}, mc = {&rec, "c-mon", 0};
    const char *c = kt_port(n, kt_tap_rcv, &tc);
    struct sender s = {n, c};
    const char *a = kt_port(n, on_send_then_die, &s);
    const char *b = kt_port(n, NULL, NULL);
    char ida[256], idb[256];
    strcpy(ida, a);
    strcpy(idb, b);
    assert_int_equal(aemp_mon_cb(n, a, kt_tap_mon, &mc, NULL), 0);
    assert_int_equal(aemp_mon_msg(n, a, c, NULL, "s", "a-down"), 0);
    /* a sends to c from its callback, then dies */
    assert_int_equal(aemp_snd(n, a, "s", "go"), 0);
    /* b: killed from outside after messages were sent to c */
    assert_int_equal(aemp_mon_cb(n, b, kt_tap_mon, &mc, NULL), 0);
    assert_int_equal(aemp_mon_msg(n, b, c, NULL, "s", "b-down"), 0);
    assert_int_equal(aemp_snd(n, c, "s", "before-b-died"), 0);
    assert_int_equal(aemp_kil(n, b, "s", "b-reason"), 0);
    RUN(n);
    /* c got a's message before the notice of a's death */
    long msg_a = -1, mon_a = -1, down_a = -1, before_b = -1, mon_b = -1;
    for (size_t i = 0; i < rec.n; i++) {
        const aemp_msg_t *m = rec.ev[i].msg;
        const char *s0;
        if (aemp_msg_unpack(m, "s*", &s0) < 0)
            s0 = "";
        if (!strcmp(rec.ev[i].label, "c-mon")) {
            if (!strcmp(rec.ev[i].port, ida))
                mon_a = (long)i;
            else if (!strcmp(rec.ev[i].port, idb))
                mon_b = (long)i;
        } else if (!strcmp(s0, "from")) {
            msg_a = (long)i;
        } else if (!strcmp(s0, "a-down")) {
            down_a = (long)i;
        } else if (!strcmp(s0, "before-b-died")) {
            before_b = (long)i;
        }
    }
    assert_true(msg_a >= 0 && mon_a >= 0 && down_a >= 0);
    assert_true(msg_a < mon_a);
    assert_true(msg_a < down_a);
    assert_true(before_b >= 0 && mon_b >= 0);
    assert_true(before_b < mon_b);
    aemp_node_free(n);
    kt_rec_free(&rec);
}

static void order_queued_messages_to_killed_port_dropped(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tb = {&rec, "b", 0}, mb = {&rec, "mon", 0};
    const char *b = kt_port(n, kt_tap_rcv, &tb);
    assert_int_equal(aemp_mon_cb(n, b, kt_tap_mon, &mb, NULL), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(aemp_snd(n, b, "i", i), 0);
    assert_int_equal(aemp_kil(n, b, "s", "x"), 0);
    RUN(n);
    assert_int_equal(kt_rec_count(&rec, "b"), 0);
    assert_int_equal(kt_rec_count(&rec, "mon"), 1);
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* "After aemp_mon_* returned, the port either gets every message sent to
 * it, or the monitor fires": a port that dies of its third message. */
struct dies_at {
    int n, at;
};

static int on_dies_at(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct dies_at *d = user;
    return ++d->n == d->at ? aemp_die(ctx, "at %d", d->at) : 0;
}

static void order_every_message_or_monitor(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t mon = {&rec, "mon", 0};
    struct dies_at d = {0, 3};
    const char *p = kt_port(n, on_dies_at, &d);
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &mon, NULL), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(aemp_snd(n, p, "i", i), 0);
    RUN(n);
    assert_int_equal(d.n, 3);
    assert_int_equal(rec.n, 1);
    assert_true(kt_msg_is(rec.ev[0].msg, "ss", "die", "at 3"));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* ---- argument errors ---------------------------------------------------- */

static void on_count_void(void *res)
{
    (*(int *)res)++;
}

static void mon_args(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct flag f = {0};
    int r = 0;
    const char *p = kt_port(n, NULL, NULL);
    aemp_mon_t *sentinel = (aemp_mon_t *)&f, *g = sentinel;
    assert_int_equal(aemp_mon_cb(NULL, p, on_mon_flag, &f, &g), AEMP_EINVAL);
    assert_int_equal(aemp_mon_cb(n, p, NULL, &f, &g), AEMP_EINVAL);
    assert_int_equal(aemp_mon_cb(n, NULL, on_mon_flag, &f, &g), AEMP_EINVAL);
    assert_int_equal(aemp_mon_cb(n, "", on_mon_flag, &f, &g), AEMP_EINVAL);
    assert_int_equal(aemp_mon_cb(n, "#x", on_mon_flag, &f, &g), AEMP_EINVAL);
    assert_int_equal(aemp_mon_kill(NULL, p, p, &g), AEMP_EINVAL);
    assert_int_equal(aemp_mon_kill(n, "", p, &g), AEMP_EINVAL);
    assert_int_equal(aemp_mon_msg(NULL, p, p, &g, "s", "x"), AEMP_EINVAL);
    assert_int_equal(aemp_mon_msg(n, p, NULL, &g, "s", "x"), AEMP_EINVAL);
    assert_int_equal(aemp_mon_msg(n, "", p, &g, "s", "x"), AEMP_EINVAL);
    assert_int_equal(aemp_mon_msg(n, p, p, &g, "q"), AEMP_EINVAL);
    assert_int_equal(aemp_mon_msg(n, p, p, &g, "s", (const char *)NULL),
                     AEMP_EINVAL);
    assert_int_equal(aemp_mon_guard(NULL, p, on_count_void, &r, &g),
                     AEMP_EINVAL);
    assert_int_equal(aemp_mon_guard(n, p, NULL, &r, &g), AEMP_EINVAL);
    assert_int_equal(aemp_mon_guard(n, "#x", on_count_void, &r, &g),
                     AEMP_EINVAL);
    assert_ptr_equal(g, sentinel); /* untouched by every failure */
    /* failed calls set up nothing */
    assert_int_equal(aemp_kil(n, p, "s", "x"), 0);
    RUN(n);
    assert_int_equal(f.fired, 0);
    assert_int_equal(r, 0);
    aemp_node_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mon_cb_normal_and_reason),
        cmocka_unit_test(mon_cb_id_valid_until_fired),
        cmocka_unit_test(mon_kill_other),
        cmocka_unit_test(mon_kill_chain),
        cmocka_unit_test(mon_kill_self),
        cmocka_unit_test(mon_kill_self_not_in_mon_callback),
        cmocka_unit_test(mon_msg_form),
        cmocka_unit_test(mon_order),
        cmocka_unit_test(mon_not_inside_kil_or_snd),
        cmocka_unit_test(mon_nonexistent),
        cmocka_unit_test(guard_cancel_before_fire),
        cmocka_unit_test(guard_cancel_after_fire),
        cmocka_unit_test(guard_cancel_inside_own_callback),
        cmocka_unit_test(guard_cancel_sibling_inside_callback),
        cmocka_unit_test(guard_null_is_fine),
        cmocka_unit_test(mon_guard_release),
        cmocka_unit_test(mon_node_port),
        cmocka_unit_test(mon_callback_may_use_node),
        cmocka_unit_test(order_message_before_death_notice),
        cmocka_unit_test(order_queued_messages_to_killed_port_dropped),
        cmocka_unit_test(order_every_message_or_monitor),
        cmocka_unit_test(mon_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
