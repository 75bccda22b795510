/* The local kernel: nodes, port IDs, receive callbacks and tags, snd and
 * its ordering, SELF, callback failure, kil, running and freeing nodes,
 * argument errors and error codes.  Monitors, timers and the node port
 * have their own executables. */
#include "helpers.h"

#include "value.h" /* struct aemp_msg: reference counts of shared messages */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RUN(n) assert_int_equal(aemp_run(n), 0)

static const char *const no_cb_reason =
    "received message on port without callback";

/* Splits "<noderef>#<cookie>.<counter>"; fails the test if malformed. */
static void split_id(const char *id, char *noderef, char *cookie,
                     uint64_t *counter)
{
    const char *hash = strchr(id, '#');
    assert_non_null(hash);
    const char *dot = strchr(hash, '.');
    assert_non_null(dot);
    memcpy(noderef, id, (size_t)(hash - id));
    noderef[hash - id] = 0;
    memcpy(cookie, hash + 1, (size_t)(dot - hash - 1));
    cookie[dot - hash - 1] = 0;
    char *end;
    assert_true(dot[1] >= '1' && dot[1] <= '9'); /* no sign, no leading 0 */
    *counter = strtoull(dot + 1, &end, 10);
    assert_int_equal(*end, 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- nodes -------------------------------------------------------------- */

static void node_owned_loop(void **state)
{
    aemp_node_t *n = kt_node_new();
    const char *ref = aemp_noderef(n);
    assert_non_null(ref);
    assert_int_equal(strncmp(ref, "anon/", 5), 0);
    assert_true(strlen(ref) > 5);
    assert_null(strchr(ref, '#'));
    assert_non_null(aemp_node_loop(n));
    assert_int_equal(aemp_port_exists(n, ref), 1); /* the node port */
    RUN(n);                                        /* nothing to do: returns */
    aemp_node_free(n);
}

static void node_borrowed_loop(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    aemp_node_t *n = NULL;
    assert_int_equal(aemp_node_new(&n, &loop), 0);
    assert_ptr_equal(aemp_node_loop(n), &loop);
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "a", 0};
    const char *p = kt_port(n, kt_tap_rcv, &tap);
    assert_int_equal(aemp_snd(n, p, "si", "hello", 1), 0);
    RUN(n);
    assert_int_equal(rec.n, 1);
    assert_true(kt_msg_is(rec.ev[0].msg, "si", "hello", 1));
    /* driving the borrowed loop directly works as well */
    assert_int_equal(aemp_snd(n, p, "s", "again"), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(rec.n, 2);
    aemp_node_free(n);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    kt_rec_free(&rec);
}

static void node_null_args(void **state)
{
    assert_int_equal(aemp_node_new(NULL, NULL), AEMP_EINVAL);
    aemp_node_free(NULL);
    assert_int_equal(aemp_run(NULL), AEMP_EINVAL);
    aemp_stop(NULL);
    assert_null(aemp_noderef(NULL));
    assert_null(aemp_node_loop(NULL));
    aemp_mon_cancel(NULL);
    aemp_msg_unref(NULL);
}

static void node_of(void **state)
{
    char buf[32];
    assert_int_equal(aemp_node_of("anon/abc#x.1", buf, sizeof buf), 8);
    assert_string_equal(buf, "anon/abc");
    assert_int_equal(aemp_node_of("10.0.0.1:4040,[::1]:4040", buf, sizeof buf),
                     24);
    assert_string_equal(buf, "10.0.0.1:4040,[::1]:4040");
    assert_int_equal(aemp_node_of("a#b#c", buf, sizeof buf), 1);
    assert_string_equal(buf, "a");
    assert_int_equal(aemp_node_of("#x", buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    /* exactly fitting, one too small, zero size */
    assert_int_equal(aemp_node_of("abc#1", buf, 4), 3);
    strcpy(buf, "keep");
    assert_int_equal(aemp_node_of("abcd#1", buf, 4), AEMP_ERANGE);
    assert_string_equal(buf, "keep"); /* untouched on failure */
    assert_int_equal(aemp_node_of("", buf, 0), AEMP_ERANGE);
    assert_int_equal(aemp_node_of(NULL, buf, sizeof buf), AEMP_EINVAL);
    assert_int_equal(aemp_node_of("a#b", NULL, 4), AEMP_EINVAL);

    aemp_node_t *n = kt_node_new();
    const char *p = kt_port(n, NULL, NULL);
    char ref[128];
    assert_int_equal(aemp_node_of(p, ref, sizeof ref),
                     (int)strlen(aemp_noderef(n)));
    assert_string_equal(ref, aemp_noderef(n));
    aemp_node_free(n);
}

/* ---- port IDs ----------------------------------------------------------- */

static void port_id_format(void **state)
{
    aemp_node_t *n = kt_node_new();
    char ref[128], cookie[64], cookie2[64];
    uint64_t c1, c2;
    const char *p1 = kt_port(n, NULL, NULL);
    const char *p2 = kt_port(n, NULL, NULL);
    split_id(p1, ref, cookie, &c1);
    assert_string_equal(ref, aemp_noderef(n));
    assert_true(strlen(cookie) > 0);
    for (const char *c = cookie; *c; c++)
        assert_true((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                    (*c >= '0' && *c <= '9'));
    split_id(p2, ref, cookie2, &c2);
    assert_string_equal(cookie, cookie2); /* one cookie per instance */
    assert_true(c2 > c1);
    assert_string_not_equal(p1, p2);
    assert_int_equal(aemp_port_exists(n, p1), 1);
    assert_int_equal(aemp_port_exists(n, p2), 1);
    aemp_node_free(n);
}

static void port_ids_never_reused(void **state)
{
    enum { N = 1000 };
    aemp_node_t *n = kt_node_new();
    char *ids[3 * N];
    size_t k = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            const char *p = kt_port(n, NULL, NULL);
            ids[k++] = strdup(p);
            if (i % 2 == 0 || round == 1)
                assert_int_equal(aemp_kil(n, p, NULL), 0);
        }
        if (round != 2) /* round 2: created while deaths are still queued */
            RUN(n);
    }
    qsort(ids, k, sizeof ids[0], cmp_str);
    for (size_t i = 1; i < k; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    for (size_t i = 0; i < k; i++)
        free(ids[i]);
    aemp_node_free(n);
}

static void port_ids_across_instances(void **state)
{
    aemp_node_t *a = kt_node_new(), *b = kt_node_new();
    char ref_a[128], ref_b[128], ref_c[128], ck_a[64], ck_b[64], ck_c[64];
    uint64_t ca, cb, cc;
    assert_string_not_equal(aemp_noderef(a), aemp_noderef(b));
    const char *pa = kt_port(a, NULL, NULL);
    const char *pb = kt_port(b, NULL, NULL);
    split_id(pa, ref_a, ck_a, &ca);
    split_id(pb, ref_b, ck_b, &cb);
    assert_string_not_equal(ck_a, ck_b);
    assert_string_not_equal(pa, pb);
    /* a's IDs are not b's ports */
    assert_int_equal(aemp_port_exists(b, pa), 0);

    char old_id[256];
    strcpy(old_id, pa);
    aemp_node_free(a);

    /* a re-created node: a new instance, a new cookie */
    aemp_node_t *c = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "c", 0};
    const char *pc = kt_port(c, kt_tap_rcv, &tap);
    split_id(pc, ref_c, ck_c, &cc);
    assert_string_not_equal(ck_c, ck_a);
    assert_string_not_equal(ck_c, ck_b);
    assert_string_not_equal(ref_c, ref_a);
    assert_string_not_equal(pc, old_id);
    assert_int_equal(aemp_port_exists(c, old_id), 0);

    /* a message to the old instance's port is never delivered here */
    int rc = aemp_snd(c, old_id, "s", "stale");
    assert_true(rc == 0 || rc == AEMP_ENOROUTE);
    /* nor is one to an ID with our noderef but another instance's cookie */
    char forged[256];
    snprintf(forged, sizeof forged, "%s#%s.%llu", aemp_noderef(c), ck_a,
             (unsigned long long)cc);
    assert_int_equal(aemp_snd(c, forged, "s", "forged"), 0);
    assert_int_equal(aemp_port_exists(c, forged), 0);
    /* or to a counter never handed out, or to a garbage name */
    snprintf(forged, sizeof forged, "%s#%s.%llu", aemp_noderef(c), ck_c,
             (unsigned long long)cc + 1000);
    assert_int_equal(aemp_snd(c, forged, "s", "future"), 0);
    snprintf(forged, sizeof forged, "%s#%s.0%llu", aemp_noderef(c), ck_c,
             (unsigned long long)cc);
    assert_int_equal(aemp_snd(c, forged, "s", "leading zero"), 0);
    snprintf(forged, sizeof forged, "%s#garbage", aemp_noderef(c));
    assert_int_equal(aemp_snd(c, forged, "s", "garbage"), 0);
    snprintf(forged, sizeof forged, "%s#", aemp_noderef(c));
    assert_int_equal(aemp_snd(c, forged, "s", "empty name"), 0);
    RUN(c);
    RUN(b);
    assert_int_equal(rec.n, 0);
    aemp_node_free(c);
    aemp_node_free(b);
    kt_rec_free(&rec);
}

/* Random creation and killing, checking every ID ever handed out; the
 * counters wrap around the table many times (collisions, backward-shift
 * deletion). */
static void port_table_churn(void **state)
{
    enum { STEPS = 30000 };
    aemp_node_t *n = kt_node_new();
    char **ids = calloc(STEPS, sizeof *ids);
    unsigned char *alive = calloc(STEPS, 1);
    size_t nids = 0, nalive = 0;
    uint32_t x = 12345;
    for (int step = 0; step < STEPS; step++) {
        x = x * 1103515245u + 12345u;
        uint32_t r = (x >> 8) % 100;
        if (r < 55 || nalive == 0) {
            ids[nids] = strdup(kt_port(n, NULL, NULL));
            alive[nids++] = 1;
            nalive++;
        } else {
            size_t k = ((x >> 4) * 2654435761u) % nids;
            while (!alive[k])
                k = (k + 1) % nids;
            assert_int_equal(aemp_kil(n, ids[k], NULL), 0);
            alive[k] = 0;
            nalive--;
        }
        if (step % 2000 == 1999) {
            for (size_t i = 0; i < nids; i++)
                assert_int_equal(aemp_port_exists(n, ids[i]), alive[i]);
            RUN(n);
        }
    }
    for (size_t i = 0; i < nids; i++)
        assert_int_equal(aemp_port_exists(n, ids[i]), alive[i]);
    /* every live port still gets its messages */
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "t", 0};
    size_t live = 0;
    for (size_t i = 0; i < nids; i++) {
        if (alive[i]) {
            assert_int_equal(aemp_rcv(n, ids[i], kt_tap_rcv, &tap), 0);
            assert_int_equal(aemp_snd(n, ids[i], "i", (int)i), 0);
            live++;
        } else {
            assert_int_equal(aemp_rcv(n, ids[i], kt_tap_rcv, &tap),
                             AEMP_ENOPORT);
            assert_int_equal(aemp_snd(n, ids[i], "i", -1), 0);
        }
    }
    RUN(n);
    assert_int_equal(rec.n, live);
    for (size_t i = 0; i < rec.n; i++) {
        int k;
        assert_int_equal(aemp_msg_unpack(rec.ev[i].msg, "i", &k), 0);
        assert_true(k >= 0 && alive[k]);
        assert_string_equal(rec.ev[i].port, ids[k]);
    }
    kt_rec_free(&rec);
    for (size_t i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);
    free(alive);
    aemp_node_free(n);
}

/* ---- receiving ---------------------------------------------------------- */

static void port_without_callback_dies(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t mon = {&rec, "mon", 0};
    const char *p = kt_port(n, NULL, NULL);
    char id[256];
    strcpy(id, p);
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_snd(n, p, "s", "first"), 0);
    assert_int_equal(aemp_snd(n, p, "s", "second"), 0);
    assert_int_equal(aemp_port_exists(n, id), 1);
    RUN(n);
    assert_int_equal(aemp_port_exists(n, id), 0);
    assert_int_equal(kt_rec_count(&rec, "mon"), 1);
    assert_string_equal(rec.ev[0].port, id);
    assert_true(kt_msg_is(rec.ev[0].msg, "ss", "die", no_cb_reason));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

struct ctx_check {
    aemp_node_t *node;
    const char *expect_self;
    int calls;
};

static int on_ctx_check(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct ctx_check *c = user;
    assert_ptr_equal(aemp_ctx_node(ctx), c->node);
    assert_string_equal(aemp_self(ctx), c->expect_self);
    c->calls++;
    return 0;
}

static void port_default_callback(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "a", 0};
    const char *p = kt_port(n, kt_tap_rcv, &tap);
    assert_int_equal(aemp_snd(n, p, "sinbd[s{i}]", "x", 7, 1, 2.5, "y", "k", 3),
                     0);
    RUN(n);
    assert_int_equal(rec.n, 1);
    assert_string_equal(rec.ev[0].port, p);
    assert_true(
        kt_msg_is(rec.ev[0].msg, "sinbd[s{i}]", "x", 7, 1, 2.5, "y", "k", 3));

    /* SELF and the node in a default callback */
    struct ctx_check cc = {n, NULL, 0};
    const char *q = kt_port(n, on_ctx_check, &cc);
    cc.expect_self = q;
    assert_int_equal(aemp_snd(n, q, ""), 0); /* an empty message */
    RUN(n);
    assert_int_equal(cc.calls, 1);
    aemp_node_free(n);
    kt_rec_free(&rec);
}

static void rcv_replace_and_remove(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t t1 = {&rec, "one", 0}, t2 = {&rec, "two", 0},
             mon = {&rec, "mon", 0};
    const char *p = kt_port(n, kt_tap_rcv, &t1);
    char id[256];
    strcpy(id, p);
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_snd(n, p, "i", 1), 0);
    RUN(n);
    assert_int_equal(aemp_rcv(n, p, kt_tap_rcv, &t2), 0);
    assert_int_equal(aemp_snd(n, p, "i", 2), 0);
    RUN(n);
    assert_int_equal(kt_rec_count(&rec, "one"), 1);
    assert_int_equal(kt_rec_count(&rec, "two"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "two", 0)->msg, "i", 2));
    /* removed: the port behaves like one made without a callback */
    assert_int_equal(aemp_rcv(n, p, NULL, NULL), 0);
    assert_int_equal(aemp_snd(n, p, "i", 3), 0);
    RUN(n);
    assert_int_equal(kt_rec_count(&rec, "two"), 1);
    assert_int_equal(kt_rec_count(&rec, "mon"), 1);
    assert_true(
        kt_msg_is(kt_rec_nth(&rec, "mon", 0)->msg, "ss", "die", no_cb_reason));
    assert_int_equal(aemp_port_exists(n, id), 0);

    /* a port made without a callback can get one */
    const char *q = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_rcv(n, q, kt_tap_rcv, &t1), 0);
    assert_int_equal(aemp_snd(n, q, "i", 4), 0);
    RUN(n);
    assert_int_equal(kt_rec_count(&rec, "one"), 2);
    assert_int_equal(aemp_port_exists(n, q), 1);
    aemp_node_free(n);
    kt_rec_free(&rec);
}

static void rcv_errors(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_tap_t tap = {NULL, "x", 0};
    const char *p = kt_port(n, NULL, NULL);
    char dead[256], ghost[256], ck[64], ref[128];
    uint64_t c;
    strcpy(dead, p);
    split_id(p, ref, ck, &c);
    snprintf(ghost, sizeof ghost, "%s#%s.%llu", ref, ck,
             (unsigned long long)c + 99);
    assert_int_equal(aemp_kil(n, p, NULL), 0);
    assert_int_equal(aemp_rcv(n, dead, kt_tap_rcv, &tap), AEMP_ENOPORT);
    RUN(n);
    assert_int_equal(aemp_rcv(n, dead, kt_tap_rcv, &tap), AEMP_ENOPORT);
    assert_int_equal(aemp_rcv(n, ghost, kt_tap_rcv, &tap), AEMP_ENOPORT);
    assert_int_equal(aemp_rcv(n, "other/node#abc.1", kt_tap_rcv, &tap),
                     AEMP_ENOTLOCAL);
    assert_int_equal(aemp_rcv(NULL, dead, kt_tap_rcv, &tap), AEMP_EINVAL);
    assert_int_equal(aemp_rcv(n, NULL, kt_tap_rcv, &tap), AEMP_EINVAL);
    assert_int_equal(aemp_rcv(n, "", kt_tap_rcv, &tap), AEMP_EINVAL);
    assert_int_equal(aemp_rcv(n, "#x", kt_tap_rcv, &tap), AEMP_EINVAL);
    /* the node port's behaviour is fixed */
    int rc = aemp_rcv(n, aemp_noderef(n), kt_tap_rcv, &tap);
    assert_int_equal(rc, AEMP_EPERM);
    aemp_node_free(n);
}

static void rcv_tag_dispatch(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t def = {&rec, "def", 0}, ta = {&rec, "a", 0}, tb = {&rec, "b", 0},
             t1 = {&rec, "1", 0};
    const char *p = kt_port(n, kt_tap_rcv, &def);
    assert_int_equal(aemp_rcv_tag(n, p, "a", kt_tap_rcv, &ta), 0);
    assert_int_equal(aemp_rcv_tag(n, p, "b", kt_tap_rcv, &tb), 0);
    assert_int_equal(aemp_rcv_tag(n, p, "1", kt_tap_rcv, &t1), 0);
    assert_int_equal(aemp_snd(n, p, "sis", "a", 1, "x"), 0);
    assert_int_equal(aemp_snd(n, p, "s", "b"), 0);
    assert_int_equal(aemp_snd(n, p, "si", "c", 2), 0);
    assert_int_equal(aemp_snd(n, p, "ii", 1, 2), 0); /* not a string */
    assert_int_equal(aemp_snd(n, p, "[s]", "a"), 0); /* not a string */
    assert_int_equal(aemp_snd(n, p, ""), 0);         /* no tag at all */
    /* bytes without a NUL are a tag (Perl 2.x sends its strings so) */
    assert_int_equal(aemp_snd(n, p, "y", "a", (size_t)1), 0);
    assert_int_equal(aemp_snd(n, p, "y", "a\0", (size_t)2), 0); /* not */
    assert_int_equal(aemp_snd(n, p, "S", "a\0b", (size_t)3), 0);
    assert_int_equal(aemp_snd(n, p, "s", "A"), 0); /* case matters */
    RUN(n);
    assert_int_equal(kt_rec_count(&rec, "a"), 2);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "a", 0)->msg, "is", 1, "x"));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "a", 1)->msg, ""));
    assert_string_equal(kt_rec_nth(&rec, "a", 0)->port, p); /* SELF */
    assert_int_equal(kt_rec_count(&rec, "b"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "b", 0)->msg, ""));
    assert_int_equal(kt_rec_count(&rec, "1"), 0);
    assert_int_equal(kt_rec_count(&rec, "def"), 7);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "def", 0)->msg, "si", "c", 2));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "def", 1)->msg, "ii", 1, 2));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "def", 2)->msg, "[s]", "a"));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "def", 3)->msg, ""));
    assert_true(
        kt_msg_is(kt_rec_nth(&rec, "def", 4)->msg, "y", "a\0", (size_t)2));
    assert_true(
        kt_msg_is(kt_rec_nth(&rec, "def", 5)->msg, "S", "a\0b", (size_t)3));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "def", 6)->msg, "s", "A"));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

static void rcv_tag_replace_and_unregister(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t def = {&rec, "def", 0}, a1 = {&rec, "a1", 0}, a2 = {&rec, "a2", 0};
    const char *p = kt_port(n, kt_tap_rcv, &def);
    assert_int_equal(aemp_rcv_tag(n, p, "a", kt_tap_rcv, &a1), 0);
    assert_int_equal(aemp_snd(n, p, "si", "a", 1), 0);
    RUN(n);
    assert_int_equal(aemp_rcv_tag(n, p, "a", kt_tap_rcv, &a2), 0); /* replace */
    assert_int_equal(aemp_snd(n, p, "si", "a", 2), 0);
    RUN(n);
    assert_int_equal(aemp_rcv_tag(n, p, "a", NULL, NULL), 0); /* unregister */
    assert_int_equal(aemp_snd(n, p, "si", "a", 3), 0);
    RUN(n);
    assert_int_equal(kt_rec_count(&rec, "a1"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "a1", 0)->msg, "i", 1));
    assert_int_equal(kt_rec_count(&rec, "a2"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "a2", 0)->msg, "i", 2));
    assert_int_equal(kt_rec_count(&rec, "def"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "def", 0)->msg, "si", "a", 3));
    /* unregistering a tag that is not registered is fine */
    assert_int_equal(aemp_rcv_tag(n, p, "never", NULL, NULL), 0);
    assert_int_equal(aemp_rcv_tag(n, p, "a", NULL, NULL), 0);

    /* many tags: growth, removal from the middle, re-registration */
    enum { T = 40 };
    static const char *labels[T];
    static char names[T][8];
    kt_tap_t taps[T];
    for (int i = 0; i < T; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        labels[i] = names[i];
        taps[i] = (kt_tap_t){&rec, labels[i], 0};
        assert_int_equal(aemp_rcv_tag(n, p, names[i], kt_tap_rcv, &taps[i]), 0);
    }
    for (int i = 0; i < T; i += 3)
        assert_int_equal(aemp_rcv_tag(n, p, names[i], NULL, NULL), 0);
    for (int i = 0; i < T; i += 9)
        assert_int_equal(aemp_rcv_tag(n, p, names[i], kt_tap_rcv, &taps[i]), 0);
    kt_rec_free(&rec);
    for (int i = 0; i < T; i++)
        assert_int_equal(aemp_snd(n, p, "si", names[i], i), 0);
    RUN(n);
    size_t defs = 0;
    for (int i = 0; i < T; i++) {
        int tagged = i % 3 != 0 || i % 9 == 0;
        assert_int_equal(kt_rec_count(&rec, names[i]), tagged);
        if (tagged)
            assert_true(kt_msg_is(kt_rec_nth(&rec, names[i], 0)->msg, "i", i));
        else
            assert_true(kt_msg_is(kt_rec_nth(&rec, "def", defs++)->msg, "si",
                                  names[i], i));
    }
    assert_int_equal(kt_rec_count(&rec, "def"), defs);
    /* remove every tag: all to the default */
    for (int i = 0; i < T; i++)
        assert_int_equal(aemp_rcv_tag(n, p, names[i], NULL, NULL), 0);
    assert_int_equal(aemp_snd(n, p, "s", "t1"), 0);
    RUN(n);
    assert_int_equal(kt_rec_count(&rec, "def"), defs + 1);
    aemp_node_free(n);
    kt_rec_free(&rec);
}

static void rcv_tag_without_default(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t ta = {&rec, "a", 0}, mon = {&rec, "mon", 0};
    const char *p = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_rcv_tag(n, p, "a", kt_tap_rcv, &ta), 0);
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_snd(n, p, "si", "a", 1), 0);
    assert_int_equal(aemp_snd(n, p, "si", "b", 2), 0);
    assert_int_equal(aemp_snd(n, p, "si", "a", 3), 0); /* after the death */
    RUN(n);
    assert_int_equal(kt_rec_count(&rec, "a"), 1);
    assert_int_equal(kt_rec_count(&rec, "mon"), 1);
    assert_true(
        kt_msg_is(kt_rec_nth(&rec, "mon", 0)->msg, "ss", "die", no_cb_reason));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

static void rcv_tag_errors(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_tap_t tap = {NULL, "x", 0};
    const char *p = kt_port(n, NULL, NULL);
    char dead[256];
    strcpy(dead, p);
    assert_int_equal(aemp_rcv_tag(n, p, NULL, kt_tap_rcv, &tap), AEMP_EINVAL);
    assert_int_equal(aemp_rcv_tag(NULL, p, "t", kt_tap_rcv, &tap), AEMP_EINVAL);
    assert_int_equal(aemp_rcv_tag(n, NULL, "t", kt_tap_rcv, &tap), AEMP_EINVAL);
    assert_int_equal(aemp_rcv_tag(n, "", "t", kt_tap_rcv, &tap), AEMP_EINVAL);
    assert_int_equal(aemp_rcv_tag(n, "#x", "t", kt_tap_rcv, &tap), AEMP_EINVAL);
    assert_int_equal(aemp_rcv_tag(n, "other/node#abc.1", "t", kt_tap_rcv, &tap),
                     AEMP_ENOTLOCAL);
    assert_int_equal(aemp_rcv_tag(n, aemp_noderef(n), "t", kt_tap_rcv, &tap),
                     AEMP_EPERM);
    assert_int_equal(aemp_rcv_tag(n, aemp_noderef(n), "t", NULL, NULL),
                     AEMP_EPERM);
    assert_int_equal(aemp_kil(n, p, NULL), 0);
    assert_int_equal(aemp_rcv_tag(n, dead, "t", kt_tap_rcv, &tap),
                     AEMP_ENOPORT);
    RUN(n);
    assert_int_equal(aemp_rcv_tag(n, dead, "t", kt_tap_rcv, &tap),
                     AEMP_ENOPORT);
    assert_int_equal(aemp_rcv_tag(n, dead, "t", NULL, NULL), AEMP_ENOPORT);
    aemp_node_free(n);
}

/* A tag callback's message is the message without its tag; a reference
 * taken on it (as the header allows for any callback message) must be that
 * same message, not the tagged original. */
struct keep {
    aemp_msg_t *kept;
    size_t len_seen;
};

static int on_tag_keep(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct keep *k = user;
    k->len_seen = aemp_msg_len(msg);
    k->kept = aemp_msg_ref(msg);
    return 0;
}

static void rcv_tag_message_ref(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct keep k = {NULL, 0};
    const char *p = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_rcv_tag(n, p, "t", on_tag_keep, &k), 0);
    assert_int_equal(aemp_snd(n, p, "sis", "t", 1, "x"), 0);
    RUN(n);
    aemp_node_free(n);
    assert_int_equal(k.len_seen, 2);
    assert_non_null(k.kept);
    /* checked after cleaning up, so that a failure leaks nothing */
    size_t kept_len = aemp_msg_len(k.kept);
    int same = kt_msg_is(k.kept, "is", 1, "x");
    aemp_msg_unref(k.kept);
    assert_int_equal(kept_len, 2);
    assert_true(same);
}

/* Forwarding what a tag callback received sends what it received. */
struct fwd {
    aemp_node_t *node;
    const char *to;
};

static int on_tag_forward(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct fwd *f = user;
    return aemp_snd_msg(f->node, f->to, msg);
}

static void rcv_tag_message_forward(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "dst", 0};
    struct fwd f = {n, kt_port(n, kt_tap_rcv, &tap)};
    const char *p = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_rcv_tag(n, p, "t", on_tag_forward, &f), 0);
    assert_int_equal(aemp_snd(n, p, "sis", "t", 1, "x"), 0);
    RUN(n);
    aemp_node_free(n);
    size_t got = rec.n;
    int same = got == 1 && kt_msg_is(rec.ev[0].msg, "is", 1, "x");
    kt_rec_free(&rec);
    assert_int_equal(got, 1);
    assert_true(same);
}

/* A tag callback that rearranges the port's tags while it runs (the tag
 * table grows and its own entry goes away), then fails. */
struct retag {
    aemp_node_t *node;
    kt_tap_t *tap;
    int calls;
};

static int on_retag(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct retag *r = user;
    char name[16];
    r->calls++;
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "n%d", i);
        assert_int_equal(
            aemp_rcv_tag(r->node, aemp_self(ctx), name, kt_tap_rcv, r->tap), 0);
    }
    assert_int_equal(aemp_rcv_tag(r->node, aemp_self(ctx), "a", NULL, NULL), 0);
    assert_int_equal(aemp_rcv(r->node, aemp_self(ctx), kt_tap_rcv, r->tap), 0);
    return 0;
}

static int on_tag_kill_self(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    assert_int_equal(
        aemp_kil(aemp_ctx_node(ctx), aemp_self(ctx), "s", "tagkill"), 0);
    return aemp_die(ctx, "ignored: already dead");
}

static void rcv_tag_changed_inside_callback(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "t", 0}, mon = {&rec, "mon", 0};
    struct retag r = {n, &tap, 0};
    const char *p = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_rcv_tag(n, p, "a", on_retag, &r), 0);
    assert_int_equal(aemp_rcv_tag(n, p, "k", on_tag_kill_self, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_snd(n, p, "si", "a", 1), 0);
    assert_int_equal(aemp_snd(n, p, "si", "a", 2), 0);  /* now: default */
    assert_int_equal(aemp_snd(n, p, "si", "n7", 3), 0); /* a new tag */
    assert_int_equal(aemp_snd(n, p, "s", "k"), 0);
    assert_int_equal(aemp_snd(n, p, "si", "n7", 4), 0); /* after death */
    RUN(n);
    assert_int_equal(r.calls, 1);
    assert_int_equal(kt_rec_count(&rec, "t"), 2);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "t", 0)->msg, "si", "a", 2));
    assert_true(kt_msg_is(kt_rec_nth(&rec, "t", 1)->msg, "i", 3));
    assert_int_equal(kt_rec_count(&rec, "mon"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "mon", 0)->msg, "s", "tagkill"));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* ---- snd ---------------------------------------------------------------- */

static void snd_is_asynchronous(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "a", 0};
    const char *p = kt_port(n, kt_tap_rcv, &tap);
    assert_int_equal(aemp_snd(n, p, "s", "x"), 0);
    assert_int_equal(rec.n, 0);
    aemp_val_t *v = aemp_arr(aemp_str("v"));
    assert_int_equal(aemp_sndv(n, p, &v), 0);
    aemp_msg_t *m = NULL;
    assert_int_equal(aemp_msg_new(&m, "s", "m"), 0);
    assert_int_equal(aemp_snd_msg(n, p, m), 0);
    aemp_msg_unref(m);
    assert_int_equal(rec.n, 0);
    RUN(n);
    assert_int_equal(rec.n, 3);
    assert_true(kt_msg_is(rec.ev[0].msg, "s", "x"));
    assert_true(kt_msg_is(rec.ev[1].msg, "s", "v"));
    assert_true(kt_msg_is(rec.ev[2].msg, "s", "m"));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

struct seq {
    int next;
    int bad;
};

static int on_seq(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct seq *s = user;
    int i;
    if (aemp_msg_unpack(msg, "i", &i) < 0 || i != s->next)
        s->bad++;
    s->next++;
    return 0;
}

static void snd_fifo_one_port(void **state)
{
    enum { N = 100000 };
    aemp_node_t *n = kt_node_new();
    struct seq s = {0, 0};
    const char *p = kt_port(n, on_seq, &s);
    for (int i = 0; i < N; i++)
        assert_int_equal(aemp_snd(n, p, "i", i), 0);
    assert_int_equal(s.next, 0);
    RUN(n);
    assert_int_equal(s.next, N);
    assert_int_equal(s.bad, 0);
    aemp_node_free(n);
}

static void snd_fifo_interleaved(void **state)
{
    enum { P = 7, N = 20000 };
    aemp_node_t *n = kt_node_new();
    struct seq s[P];
    const char *ids[P];
    for (int k = 0; k < P; k++) {
        s[k] = (struct seq){0, 0};
        ids[k] = kt_port(n, on_seq, &s[k]);
    }
    int sent[P] = {0};
    uint32_t x = 7;
    for (int i = 0; i < P * N; i++) {
        x = x * 1664525u + 1013904223u;
        int k = (int)((x >> 16) % P);
        if (sent[k] == N)
            k = (k + 1) % P;
        while (sent[k] == N)
            k = (k + 1) % P;
        assert_int_equal(aemp_snd(n, ids[k], "i", sent[k]++), 0);
    }
    RUN(n);
    for (int k = 0; k < P; k++) {
        assert_int_equal(s[k].next, N);
        assert_int_equal(s[k].bad, 0);
    }
    aemp_node_free(n);
}

struct selfsend {
    long count, limit;
    int depth, maxdepth, bad;
    uintptr_t fmin, fmax;
};

static int on_selfsend(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct selfsend *s = user;
    if (++s->depth > s->maxdepth)
        s->maxdepth = s->depth;
    uintptr_t f = (uintptr_t)__builtin_frame_address(0);
    if (!s->fmin || f < s->fmin)
        s->fmin = f;
    if (f > s->fmax)
        s->fmax = f;
    int i;
    if (aemp_msg_unpack(msg, "i", &i) < 0 || i != s->count)
        s->bad++;
    int rc = 0;
    if (++s->count < s->limit)
        rc = aemp_snd(aemp_ctx_node(ctx), aemp_self(ctx), "i", (int)s->count);
    s->depth--;
    return rc;
}

static void snd_self_no_recursion(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct selfsend s = {0, 1000000, 0, 0, 0, 0, 0};
    const char *p = kt_port(n, on_selfsend, &s);
    assert_int_equal(aemp_snd(n, p, "i", 0), 0);
    RUN(n);
    assert_int_equal(s.count, s.limit);
    assert_int_equal(s.maxdepth, 1);
    assert_int_equal(s.depth, 0);
    assert_int_equal(s.bad, 0);
    assert_true(s.fmax - s.fmin < 1024); /* the stack did not grow */
    assert_int_equal(aemp_port_exists(n, p), 1);
    aemp_node_free(n);
}

static void snd_to_dead_port_dropped(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "a", 0};
    const char *p = kt_port(n, kt_tap_rcv, &tap);
    char id[256];
    strcpy(id, p);
    assert_int_equal(aemp_snd(n, id, "i", 1), 0);
    assert_int_equal(aemp_kil(n, id, NULL), 0);
    assert_int_equal(aemp_snd(n, id, "i", 2), 0); /* killed, not yet reaped */
    RUN(n);
    assert_int_equal(aemp_snd(n, id, "i", 3), 0); /* long dead */
    aemp_val_t *v = aemp_arr(aemp_int(4));
    assert_int_equal(aemp_sndv(n, id, &v), 0);
    assert_null(v);
    RUN(n);
    assert_int_equal(rec.n, 0); /* even the one sent before the kill */
    aemp_node_free(n);
    kt_rec_free(&rec);
}

static void sndv_value_form(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "a", 0};
    const char *p = kt_port(n, kt_tap_rcv, &tap);
    aemp_val_t *v = aemp_arr(aemp_str("data"), aemp_bytes("\0\1\2", 3),
                             aemp_map_set(aemp_map_new(), "k", aemp_int(-5)),
                             aemp_double(0.5), aemp_null(), aemp_bool(1));
    assert_non_null(v);
    assert_int_equal(aemp_sndv(n, p, &v), 0);
    assert_null(v);
    /* NULL: a constructor failed */
    aemp_val_t *none = NULL;
    assert_int_equal(aemp_sndv(n, p, &none), AEMP_ENOMEM);
    /* not an array: refused, still ours */
    aemp_val_t *scalar = aemp_int(3);
    assert_int_equal(aemp_sndv(n, p, &scalar), AEMP_ETYPE);
    assert_non_null(scalar);
    aemp_val_free(scalar);
    assert_int_equal(aemp_sndv(NULL, p, &v), AEMP_EINVAL);
    RUN(n);
    assert_int_equal(rec.n, 1);
    assert_true(kt_msg_is(rec.ev[0].msg, "sy{i}dnb", "data", "\0\1\2",
                          (size_t)3, "k", -5, 0.5, 1));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* "A failed call changes nothing observable" and "on failure you still own
 * it": a value refused because of the port ID stays the caller's. */
static void sndv_failure_keeps_value(void **state)
{
    aemp_node_t *n = kt_node_new();
    aemp_val_t *v = aemp_arr(aemp_str("x"));
    int rc1 = aemp_sndv(n, "", &v);
    int kept1 = v != NULL;
    if (!v)
        v = aemp_arr(aemp_str("x"));
    int rc2 = aemp_sndv(n, "other/node#abc.1", &v);
    int kept2 = v != NULL;
    aemp_val_free(v);
    aemp_node_free(n);
    assert_int_equal(rc1, AEMP_EINVAL);
    assert_int_equal(rc2, AEMP_ENOROUTE);
    assert_true(kept1);
    assert_true(kept2);
}

struct ptrs {
    const aemp_msg_t *seen[4];
    int n;
};

static int on_ptr(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct ptrs *p = user;
    if (p->n < 4)
        p->seen[p->n] = msg;
    p->n++;
    return 0;
}

static void snd_msg_shared(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct ptrs seen = {{0}, 0};
    const char *a = kt_port(n, on_ptr, &seen), *b = kt_port(n, on_ptr, &seen);
    aemp_msg_t *m = NULL;
    assert_int_equal(aemp_msg_new(&m, "si", "shared", 1), 0);
    assert_int_equal(aemp_snd_msg(n, a, m), 0);
    assert_int_equal(aemp_snd_msg(n, b, m), 0);
    assert_int_equal(m->refs, 3); /* shared, not copied */
    RUN(n);
    assert_int_equal(seen.n, 2);
    assert_ptr_equal(seen.seen[0], m);
    assert_ptr_equal(seen.seen[1], m);
    assert_int_equal(m->refs, 1);
    aemp_msg_unref(m);

    /* the sender may drop its reference at once */
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "c", 0};
    const char *c = kt_port(n, kt_tap_rcv, &tap);
    assert_int_equal(aemp_msg_new(&m, "s[ii]", "gone", 1, 2), 0);
    assert_int_equal(aemp_snd_msg(n, c, m), 0);
    aemp_msg_unref(m);
    RUN(n);
    assert_int_equal(rec.n, 1);
    assert_true(kt_msg_is(rec.ev[0].msg, "s[ii]", "gone", 1, 2));
    kt_rec_free(&rec);
    aemp_node_free(n);
}

static void snd_errors(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "a", 0};
    const char *p = kt_port(n, kt_tap_rcv, &tap);
    assert_int_equal(aemp_snd(NULL, p, "i", 1), AEMP_EINVAL);
    assert_int_equal(aemp_snd(n, NULL, "i", 1), AEMP_EINVAL);
    assert_int_equal(aemp_snd(n, "", "i", 1), AEMP_EINVAL);
    assert_int_equal(aemp_snd(n, "#x", "i", 1), AEMP_EINVAL);
    /* bad pictures */
    assert_int_equal(aemp_snd(n, p, "q", 1), AEMP_EINVAL);
    assert_int_equal(aemp_snd(n, p, "[i", 1), AEMP_EINVAL);
    assert_int_equal(aemp_snd(n, p, "i]", 1), AEMP_EINVAL);
    assert_int_equal(aemp_snd(n, p, "{i]", "k", 1), AEMP_EINVAL);
    assert_int_equal(aemp_snd(n, p, "s", (const char *)NULL), AEMP_EINVAL);
    assert_int_equal(aemp_snd(n, p, "{i}", (const char *)NULL, 1), AEMP_EINVAL);
    assert_int_equal(aemp_snd(n, p, "S", (const char *)NULL, (size_t)2),
                     AEMP_EINVAL);
    /* remote while private */
    assert_int_equal(aemp_snd(n, "other/node#abc.1", "i", 1), AEMP_ENOROUTE);
    assert_int_equal(aemp_snd(n, "other/node", "i", 1), AEMP_ENOROUTE);
    /* snd_msg */
    aemp_msg_t *m = NULL;
    assert_int_equal(aemp_msg_new(&m, "i", 1), 0);
    assert_int_equal(aemp_snd_msg(n, p, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_snd_msg(NULL, p, m), AEMP_EINVAL);
    assert_int_equal(aemp_snd_msg(n, NULL, m), AEMP_EINVAL);
    assert_int_equal(aemp_snd_msg(n, "", m), AEMP_EINVAL);
    assert_int_equal(aemp_snd_msg(n, "other/node#abc.1", m), AEMP_ENOROUTE);
    assert_int_equal(m->refs, 1); /* failures keep no reference */
    aemp_msg_unref(m);
    RUN(n);
    assert_int_equal(rec.n, 0); /* none of the failed sends did anything */
    /* A NULL picture is not documented for snd (aemp_kil documents it as
     * "no elements"); either reading is acceptable. */
    int rc = aemp_snd(n, p, NULL);
    assert_true(rc == 0 || rc == AEMP_EINVAL);
    RUN(n);
    assert_int_equal(rec.n, rc == 0 ? 1 : 0);
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* ---- failure in a callback -------------------------------------------- */

struct failer {
    int mode;
    aemp_node_t *node;
    int calls;
};

static int on_fail(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct failer *f = user;
    f->calls++;
    switch (f->mode) {
    case 0: return AEMP_ERANGE;
    case 1: return aemp_die(ctx, "fmt %d", 3);
    case 2: /* dies, changes its mind */ aemp_die(ctx, "not really"); return 0;
    case 3: /* kills itself, succeeds */
        assert_int_equal(aemp_kil(f->node, aemp_self(ctx), "si", "custom", 9),
                         0);
        assert_int_equal(aemp_port_exists(f->node, aemp_self(ctx)), 0);
        return 0;
    case 4: /* kills itself, then fails anyway */
        assert_int_equal(aemp_kil(f->node, aemp_self(ctx), "si", "custom", 10),
                         0);
        return aemp_die(ctx, "ignored");
    case 5: return 1; /* positive: still a failure */
    case 6:           /* aemp_die twice: the last text counts */
        aemp_die(ctx, "first");
        return aemp_die(ctx, "second %s", "text");
    case 7: /* kills itself normally, then fails */
        assert_int_equal(aemp_kil(f->node, aemp_self(ctx), NULL), 0);
        return AEMP_EINVAL;
    case 8: { /* a long text is kept whole */
        char big[3001];
        memset(big, 'x', 3000);
        big[3000] = 0;
        return aemp_die(ctx, "%s!", big);
    }
    }
    return 0;
}

/* Sends one message to a port running on_fail in `mode` and returns the
 * death reason seen by a monitor (NULL: did not die).  *rec owns it. */
static const aemp_msg_t *fail_with(aemp_node_t *n, kt_rec_t *rec, int mode)
{
    static kt_tap_t mon;
    static struct failer f;
    mon = (kt_tap_t){rec, "mon", 0};
    f = (struct failer){mode, n, 0};
    const char *p = kt_port(n, on_fail, &f);
    char id[256];
    strcpy(id, p);
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_snd(n, p, "s", "go"), 0);
    assert_int_equal(aemp_snd(n, p, "s", "again"), 0);
    size_t before = kt_rec_count(rec, "mon");
    RUN(n);
    int died = kt_rec_count(rec, "mon") > before;
    assert_int_equal(aemp_port_exists(n, id), !died);
    assert_int_equal(f.calls, died ? 1 : 2); /* nothing after the death */
    if (!died) {
        assert_int_equal(aemp_kil(n, id, NULL), 0);
        RUN(n);
        return NULL;
    }
    assert_string_equal(kt_rec_nth(rec, "mon", before)->port, id);
    return kt_rec_nth(rec, "mon", before)->msg;
}

static void callback_failure(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    assert_true(kt_msg_is(fail_with(n, &rec, 0), "ss", "die",
                          aemp_strerror(AEMP_ERANGE)));
    assert_true(kt_msg_is(fail_with(n, &rec, 1), "ss", "die", "fmt 3"));
    assert_null(fail_with(n, &rec, 2));
    assert_true(kt_msg_is(fail_with(n, &rec, 3), "si", "custom", 9));
    assert_true(kt_msg_is(fail_with(n, &rec, 4), "si", "custom", 10));
    const aemp_msg_t *r = fail_with(n, &rec, 5);
    const char *text;
    assert_non_null(r);
    assert_int_equal(aemp_msg_unpack(r, "ss", &text, &text), 0);
    assert_true(kt_msg_is(r, "ss", "die", text));
    assert_true(kt_msg_is(fail_with(n, &rec, 6), "ss", "die", "second text"));
    assert_true(kt_msg_is(fail_with(n, &rec, 7), ""));
    r = fail_with(n, &rec, 8);
    size_t len = 0;
    assert_int_equal(aemp_msg_unpack(r, "sS", &text, &text, &len), 0);
    assert_int_equal(len, 3001);
    assert_int_equal(text[3000], '!');
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* ---- kil ---------------------------------------------------------------- */

static void kil_normal_and_reason(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t ma = {&rec, "ma", 0}, mb = {&rec, "mb", 0}, mc = {&rec, "mc", 0},
             md = {&rec, "md", 0};
    const char *a = kt_port(n, NULL, NULL), *b = kt_port(n, NULL, NULL);
    const char *c = kt_port(n, NULL, NULL), *d = kt_port(n, NULL, NULL);
    char ida[256], idb[256], idc[256], idd[256];
    strcpy(ida, a), strcpy(idb, b), strcpy(idc, c), strcpy(idd, d);
    /* b is linked to a; d is linked to c */
    assert_int_equal(aemp_mon_kill(n, a, b, NULL), 0);
    assert_int_equal(aemp_mon_kill(n, c, d, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, a, kt_tap_mon, &ma, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, b, kt_tap_mon, &mb, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, c, kt_tap_mon, &mc, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, d, kt_tap_mon, &md, NULL), 0);

    assert_int_equal(aemp_kil(n, ida, NULL), 0); /* normal end */
    assert_int_equal(aemp_kil(n, idc, "ssi", "die", "reason", 5), 0);
    assert_int_equal(rec.n, 0); /* monitors wait for the loop */
    RUN(n);
    assert_int_equal(kt_rec_count(&rec, "ma"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "ma", 0)->msg, ""));
    assert_string_equal(kt_rec_nth(&rec, "ma", 0)->port, ida);
    assert_int_equal(kt_rec_count(&rec, "mb"), 0); /* not killed */
    assert_int_equal(aemp_port_exists(n, idb), 1);
    assert_true(
        kt_msg_is(kt_rec_nth(&rec, "mc", 0)->msg, "ssi", "die", "reason", 5));
    assert_int_equal(kt_rec_count(&rec, "md"), 1); /* same reason */
    assert_true(
        kt_msg_is(kt_rec_nth(&rec, "md", 0)->msg, "ssi", "die", "reason", 5));
    assert_string_equal(kt_rec_nth(&rec, "md", 0)->port, idd);
    assert_int_equal(aemp_port_exists(n, idd), 0);
    /* "" is a normal end too */
    assert_int_equal(aemp_kil(n, idb, ""), 0);
    RUN(n);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "mb", 0)->msg, ""));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

static void kil_edge_cases(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t mon = {&rec, "mon", 0}, tap = {&rec, "msg", 0};
    const char *p = kt_port(n, kt_tap_rcv, &tap);
    char id[256];
    strcpy(id, p);
    assert_int_equal(aemp_mon_cb(n, p, kt_tap_mon, &mon, NULL), 0);
    /* failed kills change nothing */
    assert_int_equal(aemp_kil(NULL, id, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_kil(n, NULL, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_kil(n, "", NULL), AEMP_EINVAL);
    assert_int_equal(aemp_kil(n, "#x", NULL), AEMP_EINVAL);
    assert_int_equal(aemp_kil(n, id, "q"), AEMP_EINVAL);
    assert_int_equal(aemp_kil(n, id, "s", (const char *)NULL), AEMP_EINVAL);
    assert_int_equal(aemp_kil(n, aemp_noderef(n), NULL), AEMP_EPERM);
    assert_int_equal(aemp_kil(n, aemp_noderef(n), "ss", "die", "x"),
                     AEMP_EPERM);
    assert_int_equal(aemp_port_exists(n, id), 1);
    assert_int_equal(aemp_port_exists(n, aemp_noderef(n)), 1);
    RUN(n);
    assert_int_equal(rec.n, 0);

    /* callbacks go at once: messages already queued are not delivered */
    assert_int_equal(aemp_snd(n, id, "i", 1), 0);
    assert_int_equal(aemp_kil(n, id, "s", "first"), 0);
    assert_int_equal(aemp_port_exists(n, id), 0);
    assert_int_equal(aemp_rcv(n, id, kt_tap_rcv, &tap), AEMP_ENOPORT);
    /* killing again (dead, not yet reaped; and long dead) is not an error
     * and does not change the reason */
    assert_int_equal(aemp_kil(n, id, "s", "second"), 0);
    RUN(n);
    assert_int_equal(aemp_kil(n, id, "s", "third"), 0);
    RUN(n);
    assert_int_equal(kt_rec_count(&rec, "msg"), 0);
    assert_int_equal(kt_rec_count(&rec, "mon"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&rec, "mon", 0)->msg, "s", "first"));
    /* never existed */
    char ghost[300];
    snprintf(ghost, sizeof ghost, "%s.999999", id);
    assert_int_equal(aemp_kil(n, ghost, NULL), 0);
    aemp_node_free(n);
    kt_rec_free(&rec);
}

static void kilv_value_form(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t mon = {&rec, "mon", 0};
    const char *a = kt_port(n, NULL, NULL), *b = kt_port(n, NULL, NULL);
    assert_int_equal(aemp_mon_cb(n, a, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, b, kt_tap_mon, &mon, NULL), 0);
    aemp_val_t *r = aemp_arr(aemp_str("die"), aemp_int(1));
    assert_int_equal(aemp_kilv(n, a, &r), 0);
    assert_null(r);
    aemp_val_t *empty = aemp_arr_new();
    assert_int_equal(aemp_kilv(n, b, &empty), 0);
    assert_null(empty);
    aemp_val_t *none = NULL;
    assert_int_equal(aemp_kilv(n, a, &none), AEMP_ENOMEM);
    aemp_val_t *scalar = aemp_str("x");
    assert_int_equal(aemp_kilv(n, a, &scalar), AEMP_ETYPE);
    assert_non_null(scalar);
    aemp_val_free(scalar);
    RUN(n);
    assert_int_equal(rec.n, 2);
    assert_true(kt_msg_is(rec.ev[0].msg, "si", "die", 1));
    assert_true(kt_msg_is(rec.ev[1].msg, ""));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* "on failure you still own it" for aemp_kilv as well. */
static void kilv_failure_keeps_value(void **state)
{
    aemp_node_t *n = kt_node_new();
    aemp_val_t *r = aemp_arr(aemp_str("die"));
    int rc1 = aemp_kilv(n, aemp_noderef(n), &r);
    int kept1 = r != NULL;
    if (!r)
        r = aemp_arr(aemp_str("die"));
    int rc2 = aemp_kilv(n, "", &r);
    int kept2 = r != NULL;
    aemp_val_free(r);
    aemp_node_free(n);
    assert_int_equal(rc1, AEMP_EPERM);
    assert_int_equal(rc2, AEMP_EINVAL);
    assert_true(kept1);
    assert_true(kept2);
}

/* ---- running ------------------------------------------------------------ */

struct runner {
    aemp_node_t *node;
    long count, stop_at;
    int run_rc;
};

static int on_run_inside(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct runner *r = user;
    r->run_rc = aemp_run(r->node);
    r->count++;
    return 0;
}

static void on_mon_run_inside(aemp_node_t *n, const char *port,
                              const aemp_msg_t *reason, void *user)
{
    struct runner *r = user;
    r->run_rc = aemp_run(n);
    r->count++;
}

static int task_run_inside(aemp_ctx_t *ctx, void *user)
{
    struct runner *r = user;
    r->run_rc = aemp_run(r->node);
    r->count++;
    return 0;
}

static void run_from_callback_is_busy(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct runner r = {n, 0, 0, 0};
    const char *p = kt_port(n, on_run_inside, &r);
    assert_int_equal(aemp_snd(n, p, "s", "x"), 0);
    RUN(n);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.run_rc, AEMP_EBUSY);
    r.run_rc = 0;
    assert_int_equal(aemp_call_in(n, p, task_run_inside, &r), 0);
    assert_int_equal(r.run_rc, AEMP_EBUSY);
    r.run_rc = 0;
    assert_int_equal(aemp_mon_cb(n, p, on_mon_run_inside, &r, NULL), 0);
    assert_int_equal(aemp_kil(n, p, NULL), 0);
    RUN(n);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.run_rc, AEMP_EBUSY);
    aemp_node_free(n);
}

static int on_forever(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct runner *r = user;
    if (++r->count == r->stop_at)
        aemp_stop(r->node);
    return aemp_snd(r->node, aemp_self(ctx), "s", "again");
}

static void run_stop(void **state)
{
    aemp_node_t *n = kt_node_new();
    struct runner r = {n, 0, 10, 0};
    const char *p = kt_port(n, on_forever, &r);
    assert_int_equal(aemp_snd(n, p, "s", "go"), 0);
    RUN(n); /* endless work: only aemp_stop ends this */
    assert_true(r.count >= 10);
    long at_stop = r.count;
    r.stop_at = at_stop + 5;
    RUN(n); /* the work is still there and continues */
    assert_true(r.count >= at_stop + 5);
    assert_int_equal(aemp_kil(n, p, NULL), 0);
    RUN(n);
    aemp_node_free(n);
}

static void shared_loop_nodes_independent(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    aemp_node_t *a = NULL, *b = NULL;
    assert_int_equal(aemp_node_new(&a, &loop), 0);
    assert_int_equal(aemp_node_new(&b, &loop), 0);
    assert_string_not_equal(aemp_noderef(a), aemp_noderef(b));
    kt_rec_t rec = {0};
    kt_tap_t ta = {&rec, "a", 0}, tb = {&rec, "b", 0}, mb = {&rec, "mb", 0};
    const char *pa = kt_port(a, kt_tap_rcv, &ta);
    const char *pb = kt_port(b, kt_tap_rcv, &tb);
    assert_int_equal(aemp_mon_cb(b, pb, kt_tap_mon, &mb, NULL), 0);
    /* each node only knows its own ports */
    assert_int_equal(aemp_snd(a, pb, "s", "x"), AEMP_ENOROUTE);
    assert_int_equal(aemp_kil(a, pb, "s", "x"), AEMP_ENOROUTE);
    assert_int_equal(aemp_rcv(a, pb, kt_tap_rcv, &ta), AEMP_ENOTLOCAL);
    assert_int_equal(aemp_port_exists(a, pb), 0);
    assert_int_equal(aemp_snd(a, pa, "s", "to a"), 0);
    assert_int_equal(aemp_snd(b, pb, "s", "to b"), 0);
    RUN(a); /* the loop is shared: b's work runs too */
    assert_int_equal(kt_rec_count(&rec, "a"), 1);
    assert_int_equal(kt_rec_count(&rec, "b"), 1);
    /* freeing a leaves b intact */
    aemp_node_free(a);
    assert_int_equal(aemp_snd(b, pb, "s", "still"), 0);
    RUN(b);
    assert_int_equal(kt_rec_count(&rec, "b"), 2);
    assert_int_equal(kt_rec_count(&rec, "mb"), 0);
    aemp_node_free(b);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    kt_rec_free(&rec);
}

/* libuv's uv_run is not reentrant: a node's aemp_run from inside a callback
 * of another node on the same loop is "called from inside a callback" as
 * well, and must not run the loop (which would re-enter the first node's
 * dispatcher). */
struct other_run {
    aemp_node_t *other;
    int depth, maxdepth, calls, rc;
};

static int on_run_other(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct other_run *o = user;
    if (++o->depth > o->maxdepth)
        o->maxdepth = o->depth;
    if (++o->calls == 1) {
        assert_int_equal(aemp_snd(aemp_ctx_node(ctx), aemp_self(ctx), "s", "2"),
                         0);
        o->rc = aemp_run(o->other);
    }
    o->depth--;
    return 0;
}

static void run_other_node_inside_callback(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    aemp_node_t *a = NULL, *b = NULL;
    assert_int_equal(aemp_node_new(&a, &loop), 0);
    assert_int_equal(aemp_node_new(&b, &loop), 0);
    struct other_run o = {b, 0, 0, 0, 1};
    const char *p = kt_port(a, on_run_other, &o);
    assert_int_equal(aemp_snd(a, p, "s", "1"), 0);
    RUN(a);
    aemp_node_free(a);
    aemp_node_free(b);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(o.calls, 2);
    assert_int_equal(o.maxdepth, 1);
    assert_int_equal(o.rc, AEMP_EBUSY);
}

/* A callback may switch its port's default callback for the next message. */
struct switcher {
    aemp_node_t *node;
    kt_tap_t *next;
    int calls;
};

static int on_switch(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct switcher *s = user;
    s->calls++;
    return aemp_rcv(s->node, aemp_self(ctx), kt_tap_rcv, s->next);
}

static void rcv_replaced_inside_callback(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "next", 0};
    struct switcher sw = {n, &tap, 0};
    const char *p = kt_port(n, on_switch, &sw);
    assert_int_equal(aemp_snd(n, p, "i", 1), 0);
    assert_int_equal(aemp_snd(n, p, "i", 2), 0);
    assert_int_equal(aemp_snd(n, p, "i", 3), 0);
    RUN(n);
    assert_int_equal(sw.calls, 1);
    assert_int_equal(rec.n, 2);
    assert_true(kt_msg_is(rec.ev[0].msg, "i", 2));
    aemp_node_free(n);
    kt_rec_free(&rec);
}

/* ---- freeing with work pending ----------------------------------------- */

static void on_release(void *res)
{
    (*(int *)res)++;
}

static void free_with_pending_work(aemp_node_t *n, uv_loop_t *loop)
{
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "msg", 0}, mon = {&rec, "mon", 0};
    int res_alive = 0, res_dying = 0, res_ghost = 0, res_free = 0;
    const char *a = kt_port(n, kt_tap_rcv, &tap);
    const char *b = kt_port(n, kt_tap_rcv, &tap);
    char idb[256], ghost[300];
    strcpy(idb, b);
    snprintf(ghost, sizeof ghost, "%s0", idb);
    aemp_mon_t *g1 = NULL, *g2 = NULL, *g3 = NULL, *g4 = NULL, *g5 = NULL;
    /* held and unheld guards and monitors on a live port, a dying port
     * and a nonexistent one */
    assert_int_equal(aemp_mon_guard(n, a, on_release, &res_alive, &g1), 0);
    assert_int_equal(aemp_mon_guard(n, b, on_release, &res_dying, &g2), 0);
    assert_int_equal(aemp_mon_guard(n, ghost, on_release, &res_ghost, &g3), 0);
    assert_int_equal(aemp_mon_guard(n, a, on_release, &res_free, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, a, kt_tap_mon, &mon, &g4), 0);
    assert_int_equal(aemp_mon_cb(n, b, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_mon_cb(n, ghost, kt_tap_mon, &mon, &g5), 0);
    assert_int_equal(aemp_mon_msg(n, b, a, NULL, "s", "down"), 0);
    assert_int_equal(aemp_mon_kill(n, b, a, NULL), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(aemp_snd(n, a, "i", i), 0);
    assert_int_equal(aemp_kil(n, b, "s", "dying"), 0);
    assert_int_equal(aemp_after_snd(n, 10.0, a, "s", "late"), 0);
    /* nothing ran */
    assert_int_equal(res_alive + res_dying + res_ghost + res_free, 0);
    aemp_node_free(n);
    if (loop) {
        uv_run(loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(loop), 0);
    }
    /* no message, no monitor callback; each guard released exactly once */
    assert_int_equal(rec.n, 0);
    assert_int_equal(res_alive, 1);
    assert_int_equal(res_dying, 1);
    assert_int_equal(res_ghost, 1);
    assert_int_equal(res_free, 1);
    /* held guards stay cancellable; cancelling releases nothing again */
    aemp_mon_cancel(g1);
    aemp_mon_cancel(g2);
    aemp_mon_cancel(g3);
    aemp_mon_cancel(g4);
    aemp_mon_cancel(g5);
    assert_int_equal(res_alive + res_dying + res_ghost + res_free, 4);
    assert_int_equal(rec.n, 0);
    kt_rec_free(&rec);
}

static void node_free_pending_owned(void **state)
{
    free_with_pending_work(kt_node_new(), NULL);
}

static void node_free_pending_borrowed(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    aemp_node_t *n = NULL;
    assert_int_equal(aemp_node_new(&n, &loop), 0);
    free_with_pending_work(n, &loop);
}

/* ---- argument errors and error codes ---------------------------------- */

static void port_args(void **state)
{
    aemp_node_t *n = kt_node_new();
    const char *id = (const char *)&id; /* a sentinel */
    assert_int_equal(aemp_port(NULL, NULL, NULL, &id), AEMP_EINVAL);
    assert_ptr_equal(id, (const char *)&id); /* untouched on failure */
    assert_int_equal(aemp_port(n, NULL, NULL, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_port_exists(NULL, aemp_noderef(n)), 0);
    assert_int_equal(aemp_port_exists(n, NULL), 0);
    assert_int_equal(aemp_port_exists(n, ""), 0);
    assert_int_equal(aemp_port_exists(n, "#x"), 0);
    assert_int_equal(aemp_port_exists(n, "other/node#abc.1"), 0);
    aemp_node_free(n);
}

static void error_codes(void **state)
{
    struct {
        int code;
        const char *name, *text;
    } all[] = {
#define X(name, val, text) {AEMP_##name, "AEMP_" #name, text},
        AEMP_ERRNO_MAP(X)
#undef X
    };
    size_t n = sizeof all / sizeof all[0];
    assert_int_equal(n, 16);
    for (size_t i = 0; i < n; i++) {
        assert_true(all[i].code < 0);
        assert_int_equal(all[i].code, -(int)(i + 1)); /* never renumbered */
        assert_string_equal(aemp_err_name(all[i].code), all[i].name);
        assert_string_equal(aemp_strerror(all[i].code), all[i].text);
        assert_true(strlen(all[i].text) > 0);
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(all[i].code, all[j].code);
            assert_string_not_equal(all[i].text, all[j].text);
        }
    }
    assert_int_equal(AEMP_ENOMEM, -1);
    assert_int_equal(AEMP_ESYS, -14);
    assert_string_equal(aemp_strerror(AEMP_ENOPORT), "no such port");
    assert_string_equal(aemp_strerror(-999), "unknown error");
    assert_string_equal(aemp_strerror(12345), "unknown error");
    assert_string_equal(aemp_err_name(-999), "AEMP_E?");
    assert_non_null(aemp_strerror(0));
    assert_non_null(aemp_err_name(0));
    assert_string_equal(aemp_version(), AEMP_VERSION_STRING);
}


/* ---- reg: local names ---------------------------------------------------- */

static void reg_names_a_port(void **state)
{
    aemp_node_t *n = kt_node_new();
    kt_rec_t rec = {0};
    kt_tap_t tap = {&rec, "a", 0};
    const char *p = kt_port(n, kt_tap_rcv, &tap);
    char named[256], other[256];
    snprintf(named, sizeof named, "%s#service", aemp_noderef(n));
    aemp_mon_t *g = NULL;
    assert_int_equal(aemp_reg(n, "service", p, &g), 0);
    assert_int_equal(aemp_port_exists(n, named), 1);
    assert_int_equal(aemp_snd(n, named, "s", "by name"), 0);
    RUN(n);
    assert_int_equal(rec.n, 1);
    assert_true(kt_msg_is(rec.ev[0].msg, "s", "by name"));
    /* taken; malformed names; ports that cannot have one */
    const char *q = kt_port(n, kt_tap_rcv, &tap);
    assert_int_equal(aemp_reg(n, "service", q, NULL), AEMP_EBUSY);
    assert_int_equal(aemp_reg(n, "", q, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_reg(n, "a#b", q, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_reg(n, NULL, q, NULL), AEMP_EINVAL);
    snprintf(other, sizeof other, "%.*s.99", 10, strchr(q, '#') + 1);
    assert_int_equal(aemp_reg(n, other, q, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_reg(n, "x", aemp_noderef(n), NULL), AEMP_EPERM);
    assert_int_equal(aemp_reg(n, "x", "elsewhere:1#y", NULL), AEMP_ENOTLOCAL);
    /* the guard gives the name up; then it is free again */
    aemp_mon_cancel(g);
    assert_int_equal(aemp_port_exists(n, named), 0);
    assert_int_equal(aemp_reg(n, "service", q, NULL), 0);
    /* and the name goes with its port */
    assert_int_equal(aemp_kil(n, q, NULL), 0);
    RUN(n);
    assert_int_equal(aemp_port_exists(n, named), 0);
    assert_int_equal(aemp_snd(n, named, "s", "nobody"), 0);
    RUN(n);
    assert_int_equal(rec.n, 1);
    assert_int_equal(aemp_reg(n, "service", p, NULL), 0);
    aemp_node_free(n); /* a name still held is released with the node */
    kt_rec_free(&rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(node_owned_loop),
        cmocka_unit_test(node_borrowed_loop),
        cmocka_unit_test(node_null_args),
        cmocka_unit_test(node_of),
        cmocka_unit_test(port_id_format),
        cmocka_unit_test(port_ids_never_reused),
        cmocka_unit_test(port_ids_across_instances),
        cmocka_unit_test(port_table_churn),
        cmocka_unit_test(port_without_callback_dies),
        cmocka_unit_test(port_default_callback),
        cmocka_unit_test(rcv_replace_and_remove),
        cmocka_unit_test(rcv_errors),
        cmocka_unit_test(rcv_tag_dispatch),
        cmocka_unit_test(rcv_tag_replace_and_unregister),
        cmocka_unit_test(rcv_tag_without_default),
        cmocka_unit_test(rcv_tag_errors),
        cmocka_unit_test(rcv_tag_changed_inside_callback),
        cmocka_unit_test(rcv_replaced_inside_callback),
        cmocka_unit_test(rcv_tag_message_ref),
        cmocka_unit_test(rcv_tag_message_forward),
        cmocka_unit_test(snd_is_asynchronous),
        cmocka_unit_test(snd_fifo_one_port),
        cmocka_unit_test(snd_fifo_interleaved),
        cmocka_unit_test(snd_self_no_recursion),
        cmocka_unit_test(snd_to_dead_port_dropped),
        cmocka_unit_test(sndv_value_form),
        cmocka_unit_test(sndv_failure_keeps_value),
        cmocka_unit_test(snd_msg_shared),
        cmocka_unit_test(snd_errors),
        cmocka_unit_test(callback_failure),
        cmocka_unit_test(kil_normal_and_reason),
        cmocka_unit_test(kil_edge_cases),
        cmocka_unit_test(kilv_value_form),
        cmocka_unit_test(kilv_failure_keeps_value),
        cmocka_unit_test(run_from_callback_is_busy),
        cmocka_unit_test(run_stop),
        cmocka_unit_test(shared_loop_nodes_independent),
        cmocka_unit_test(run_other_node_inside_callback),
        cmocka_unit_test(node_free_pending_owned),
        cmocka_unit_test(node_free_pending_borrowed),
        cmocka_unit_test(port_args),
        cmocka_unit_test(error_codes),
        cmocka_unit_test(reg_names_a_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
