/* aemp_node_free and the user code it runs: guard release functions are
 * called from inside aemp_node_free.  The header forbids calling
 * aemp_node_free from a callback, but says nothing against a release
 * function using the node that is going away (asking whether a port
 * exists, sending, killing, monitoring).  Whatever the answer, it must not
 * touch freed memory or leak. */
#include "helpers.h"

#include <string.h>

enum { PEEK_EXISTS, PEEK_KIL, PEEK_SND, PEEK_MON, PEEK_AFTER, PEEK_PORT };

struct peek {
    aemp_node_t *node;
    int what;
    char other[256];
    int rc;
    int calls;
};

static void on_mon_never(aemp_node_t *n, const char *port,
                         const aemp_msg_t *reason, void *user)
{
    (*(int *)user)++;
}

static int mon_calls;

static void on_release_peek(void *res)
{
    struct peek *p = res;
    const char *id;
    p->calls++;
    switch (p->what) {
    case PEEK_EXISTS: p->rc = aemp_port_exists(p->node, p->other); break;
    case PEEK_KIL: p->rc = aemp_kil(p->node, p->other, "s", "bye"); break;
    case PEEK_SND: p->rc = aemp_snd(p->node, p->other, "s", "late"); break;
    case PEEK_MON:
        p->rc = aemp_mon_cb(p->node, p->other, on_mon_never, &mon_calls, NULL);
        break;
    case PEEK_AFTER:
        p->rc = aemp_after_snd(p->node, 0.0, p->other, "s", "late");
        break;
    case PEEK_PORT: p->rc = aemp_port(p->node, NULL, NULL, &id); break;
    }
}

/* Port a is destroyed before port b (lower counter); b's guard release
 * then uses a, or a later port c when `later`. */
static void release_uses_node(int what, int later, uv_loop_t *loop)
{
    aemp_node_t *n = NULL;
    assert_int_equal(aemp_node_new(&n, loop), 0);
    struct peek pk = {n, what, "", -100, 0};
    const char *a, *b, *c;
    assert_int_equal(aemp_port(n, NULL, NULL, &a), 0);
    assert_int_equal(aemp_port(n, NULL, NULL, &b), 0);
    assert_int_equal(aemp_port(n, NULL, NULL, &c), 0);
    strcpy(pk.other, later ? c : a);
    assert_int_equal(aemp_mon_guard(n, b, on_release_peek, &pk, NULL), 0);
    mon_calls = 0;
    aemp_node_free(n);
    if (loop) {
        uv_run(loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(loop), 0);
    }
    assert_int_equal(pk.calls, 1);
    assert_int_equal(mon_calls, 0); /* monitors never fire at node free */
    assert_true(pk.rc >= -14 && pk.rc <= 1);
}

static void release_snd(void **state)
{
    release_uses_node(PEEK_SND, 0, NULL);
}
static void release_after(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    release_uses_node(PEEK_AFTER, 0, &loop);
    release_uses_node(PEEK_AFTER, 0, NULL);
}
static void release_port(void **state)
{
    release_uses_node(PEEK_PORT, 0, NULL);
}
static void release_kil_later(void **state)
{
    release_uses_node(PEEK_KIL, 1, NULL);
}
static void release_mon_later(void **state)
{
    release_uses_node(PEEK_MON, 1, NULL);
}
static void release_exists_earlier(void **state)
{
    release_uses_node(PEEK_EXISTS, 0, NULL);
}
static void release_kil_earlier(void **state)
{
    release_uses_node(PEEK_KIL, 0, NULL);
}
static void release_mon_earlier(void **state)
{
    release_uses_node(PEEK_MON, 0, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(release_snd),
        cmocka_unit_test(release_after),
        cmocka_unit_test(release_port),
        cmocka_unit_test(release_kil_later),
        cmocka_unit_test(release_mon_later),
        /* these reach a port already destroyed by aemp_node_free */
        cmocka_unit_test(release_exists_earlier),
        cmocka_unit_test(release_kil_earlier),
        cmocka_unit_test(release_mon_earlier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
