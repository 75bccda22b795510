/* The node port (PROTOCOL.md §7) as local code uses it: requests sent to
 * the bare noderef. */
#include "helpers.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUN(n) assert_int_equal(aemp_run(n), 0)

struct fx {
    aemp_node_t *n;
    const char *ref; /* the node port */
    kt_rec_t rec;
    kt_rec_t log;
    kt_tap_t tap;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_int_equal(aemp_node_new(&f->n, NULL), 0);
    f->ref = aemp_noderef(f->n);
    f->tap = (kt_tap_t){&f->rec, "rcv", 0};
    aemp_node_set_log(f->n, AEMP_LOG_DEBUG, kt_log_rec, &f->log);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    aemp_node_free(f->n);
    kt_rec_free(&f->rec);
    kt_rec_free(&f->log);
    free(f);
    return 0;
}

static void devnull_ignored(void **state)
{
    struct fx *f = *state;
    const char *p = kt_port(f->n, kt_tap_rcv, &f->tap);
    assert_int_equal(aemp_snd(f->n, f->ref, "ssi", "devnull", p, 1), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "ss", "", p), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "s", "devnull"), 0);
    RUN(f->n);
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(f->log.n, 0); /* not even logged */
    assert_int_equal(aemp_port_exists(f->n, f->ref), 1);
}

static void snd_relay(void **state)
{
    struct fx *f = *state;
    const char *p = kt_port(f->n, kt_tap_rcv, &f->tap);
    assert_int_equal(aemp_snd(f->n, f->ref, "sssi[i]", "snd", p, "x", 1, 2), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "ss", "snd", p), 0); /* empty */
    assert_int_equal(f->rec.n, 0);
    RUN(f->n);
    assert_int_equal(f->rec.n, 2);
    assert_true(kt_msg_is(f->rec.ev[0].msg, "si[i]", "x", 1, 2));
    assert_string_equal(f->rec.ev[0].port, p);
    assert_true(kt_msg_is(f->rec.ev[1].msg, ""));
    /* malformed: no port ID; logged, nothing delivered */
    assert_int_equal(aemp_snd(f->n, f->ref, "s", "snd"), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "si", "snd", 5), 0);
    RUN(f->n);
    assert_int_equal(f->rec.n, 2);
    assert_true(kt_rec_count(&f->log, "log") >= 2);
}

static void snd_multiple_relay(void **state)
{
    struct fx *f = *state;
    kt_tap_t t2 = {&f->rec, "rcv2", 0};
    const char *p = kt_port(f->n, kt_tap_rcv, &f->tap);
    const char *q = kt_port(f->n, kt_tap_rcv, &t2);
    assert_int_equal(aemp_snd(f->n, f->ref, "s[ss][ssi]i[ssi]", "snd_multiple",
                              p, "a", q, "b", 2, 99, p, "c", 3),
                     0);
    RUN(f->n);
    assert_int_equal(kt_rec_count(&f->rec, "rcv"), 2);
    assert_int_equal(kt_rec_count(&f->rec, "rcv2"), 1);
    assert_true(kt_msg_is(kt_rec_nth(&f->rec, "rcv", 0)->msg, "s", "a"));
    assert_true(kt_msg_is(kt_rec_nth(&f->rec, "rcv", 1)->msg, "si", "c", 3));
    assert_true(kt_msg_is(kt_rec_nth(&f->rec, "rcv2", 0)->msg, "si", "b", 2));
}

static void kil_by_name(void **state)
{
    struct fx *f = *state;
    kt_tap_t mon = {&f->rec, "mon", 0};
    const char *a = kt_port(f->n, NULL, NULL), *b = kt_port(f->n, NULL, NULL);
    const char *c = kt_port(f->n, NULL, NULL);
    char ida[256], idb[256], idc[256];
    strcpy(ida, a), strcpy(idb, b), strcpy(idc, c);
    assert_int_equal(aemp_mon_cb(f->n, a, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_mon_cb(f->n, b, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "ssss", "kil", strchr(ida, '#') + 1,
                              "die", "boom"),
                     0);
    assert_int_equal(aemp_snd(f->n, f->ref, "ss", "kil", strchr(idb, '#') + 1),
                     0);
    /* names that are no port of ours, and a full ID instead of a name */
    assert_int_equal(aemp_snd(f->n, f->ref, "ss", "kil", "nosuch.1"), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "ss", "kil", ""), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "sss", "kil", idc, "x"), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "si", "kil", 1), 0);
    assert_int_equal(aemp_port_exists(f->n, ida), 1); /* from the loop */
    RUN(f->n);
    assert_int_equal(aemp_port_exists(f->n, ida), 0);
    assert_int_equal(aemp_port_exists(f->n, idb), 0);
    assert_int_equal(aemp_port_exists(f->n, idc), 1);
    assert_int_equal(f->rec.n, 2);
    assert_string_equal(f->rec.ev[0].port, ida);
    assert_true(kt_msg_is(f->rec.ev[0].msg, "ss", "die", "boom"));
    assert_string_equal(f->rec.ev[1].port, idb);
    assert_true(kt_msg_is(f->rec.ev[1].msg, ""));
    assert_int_equal(aemp_port_exists(f->n, f->ref), 1);
}

/* Perl 2.x's kil1 kills as kil does; its byte-string port names too. */
static void kil1_and_byte_names(void **state)
{
    struct fx *f = *state;
    kt_tap_t mon = {&f->rec, "mon", 0};
    char ida[256], idb[256];
    strcpy(ida, kt_port(f->n, NULL, NULL));
    strcpy(idb, kt_port(f->n, NULL, NULL));
    assert_int_equal(aemp_mon_cb(f->n, ida, kt_tap_mon, &mon, NULL), 0);
    assert_int_equal(aemp_mon_cb(f->n, idb, kt_tap_mon, &mon, NULL), 0);
    const char *na = strchr(ida, '#') + 1, *nb = strchr(idb, '#') + 1;
    assert_int_equal(aemp_snd(f->n, f->ref, "sss", "kil1", na, "killed_by"), 0);
    /* ["kil1" as bytes, name as bytes, reason] (CBOR::XS's strings) */
    assert_int_equal(aemp_snd(f->n, f->ref, "yys", "kil1", (size_t)4, nb,
                              strlen(nb), "bytes"),
                     0);
    RUN(f->n);
    assert_int_equal(aemp_port_exists(f->n, ida), 0);
    assert_int_equal(aemp_port_exists(f->n, idb), 0);
    assert_int_equal(f->rec.n, 2);
    assert_true(kt_msg_is(f->rec.ev[0].msg, "s", "killed_by"));
    assert_true(kt_msg_is(f->rec.ev[1].msg, "s", "bytes"));
}

/* Perl 2.x's can: "1" for a request we answer (built in — here the
 * kernel's: no network, so no mon1 — or the
 * program's), "" for one we do not, after the reply target. */
static void can_reply(void **state)
{
    struct fx *f = *state;
    const char *p = kt_port(f->n, kt_tap_rcv, &f->tap);
    assert_int_equal(aemp_node_handle(f->n, "myreq", kt_tap_rcv, &f->tap), 0);
    const char *asks[] = {"snd", "kil1", "AnyEvent::MP::_spawn", "myreq",
                          "eval", "g_find", "nosuch"};
    const char *want[] = {"1", "1", "1", "1", "", "", ""};
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(aemp_snd(f->n, f->ref, "ssss", "can", asks[i], p,
                                  asks[i]),
                         0);
    assert_int_equal(aemp_snd(f->n, f->ref, "s", "can"), 0); /* logged */
    RUN(f->n);
    assert_int_equal(f->rec.n, 7);
    for (size_t i = 0; i < 7; i++)
        if (!kt_msg_is(f->rec.ev[i].msg, "ss", asks[i], want[i]))
            fail_msg("can %s: not \"%s\"", asks[i], want[i]);
    assert_true(kt_log_has(&f->log, "can without a request name"));
}

static void info_reply(void **state)
{
    struct fx *f = *state;
    const char *p = kt_port(f->n, kt_tap_rcv, &f->tap);
    assert_int_equal(aemp_snd(f->n, f->ref, "sss", "info", p, "tag"), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "sssi", "info", p, "a", 1), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "ss", "info", p), 0);
    RUN(f->n);
    assert_int_equal(f->rec.n, 3);
    assert_true(kt_msg_is(f->rec.ev[0].msg, "ss", "tag", f->ref));
    assert_true(kt_msg_is(f->rec.ev[1].msg, "sis", "a", 1, f->ref));
    assert_true(kt_msg_is(f->rec.ev[2].msg, "s", f->ref));
    /* no reply target: logged, no crash */
    assert_int_equal(aemp_snd(f->n, f->ref, "s", "info"), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "si", "info", 3), 0);
    RUN(f->n);
    assert_int_equal(f->rec.n, 3);
}

static void time_reply(void **state)
{
    struct fx *f = *state;
    const char *p = kt_port(f->n, kt_tap_rcv, &f->tap);
    assert_int_equal(aemp_snd(f->n, f->ref, "sss", "time", p, "now"), 0);
    RUN(f->n);
    assert_int_equal(f->rec.n, 1);
    const aemp_val_t *t = aemp_msg_at(f->rec.ev[0].msg, 1);
    assert_int_equal(aemp_val_type(t), AEMP_T_DOUBLE);
    double now;
    assert_int_equal(
        aemp_msg_unpack(f->rec.ev[0].msg, "sd", &(const char *){0}, &now), 0);
    double wall = (double)time(NULL);
    assert_true(now > wall - 5 && now < wall + 5);
}

/* The reply is snd(target..., ids...): the node IDs follow the reply
 * target as separate elements, as Perl's `snd @_, known_nodes` does. */
static void node_lists_reply(void **state)
{
    struct fx *f = *state;
    const char *p = kt_port(f->n, kt_tap_rcv, &f->tap);
    assert_int_equal(aemp_snd(f->n, f->ref, "sss", "known_nodes", p, "k"), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "sss", "up_nodes", p, "u"), 0);
    RUN(f->n);
    assert_int_equal(f->rec.n, 2);
    const aemp_msg_t *known = f->rec.ev[0].msg, *up = f->rec.ev[1].msg;
    /* a private node is up to nobody; it may know itself */
    assert_true(kt_msg_is(up, "s", "u"));
    if (aemp_msg_len(known) == 1)
        assert_true(kt_msg_is(known, "s", "k"));
    else
        assert_true(kt_msg_is(known, "ss", "k", f->ref));
}

static void unknown_request_logged(void **state)
{
    struct fx *f = *state;
    const char *p = kt_port(f->n, kt_tap_rcv, &f->tap);
    assert_int_equal(aemp_snd(f->n, f->ref, "ssi", "frobnicate", p, 1), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "is", 42, p), 0); /* no name */
    assert_int_equal(aemp_snd(f->n, f->ref, ""), 0);          /* empty */
    assert_int_equal(aemp_snd(f->n, f->ref, "ss", "mon1", "x.1"), 0);
    RUN(f->n);
    assert_int_equal(f->rec.n, 0);
    assert_true(kt_log_has(&f->log, "frobnicate"));
    assert_true(kt_rec_count(&f->log, "log") >= 3);
    assert_int_equal(aemp_port_exists(f->n, f->ref), 1);
    /* at the default level (warnings), an unknown request is not an error
     * worth reporting; with a quiet hook nothing reaches us */
    kt_rec_t quiet = {0};
    aemp_node_set_log(f->n, AEMP_LOG_ERROR, kt_log_rec, &quiet);
    assert_int_equal(aemp_snd(f->n, f->ref, "s", "frobnicate"), 0);
    RUN(f->n);
    assert_int_equal(quiet.n, 0);
    aemp_node_set_log(f->n, AEMP_LOG_DEBUG, kt_log_rec, &f->log);
    kt_rec_free(&quiet);
}

static void node_port_protected(void **state)
{
    struct fx *f = *state;
    assert_int_equal(aemp_kil(f->n, f->ref, NULL), AEMP_EPERM);
    assert_int_equal(aemp_kil(f->n, f->ref, "ss", "die", "x"), AEMP_EPERM);
    assert_int_equal(aemp_rcv(f->n, f->ref, kt_tap_rcv, &f->tap), AEMP_EPERM);
    assert_int_equal(aemp_rcv_tag(f->n, f->ref, "info", kt_tap_rcv, &f->tap),
                     AEMP_EPERM);
    /* a port that kills itself by asking the node port to kill the node
     * port: nothing happens */
    assert_int_equal(aemp_snd(f->n, f->ref, "ss", "kil", ""), 0);
    RUN(f->n);
    assert_int_equal(aemp_port_exists(f->n, f->ref), 1);
    const char *p = kt_port(f->n, kt_tap_rcv, &f->tap);
    assert_int_equal(aemp_snd(f->n, f->ref, "sss", "info", p, "still"), 0);
    RUN(f->n);
    assert_int_equal(f->rec.n, 1);
}

/* The program's own requests; the kernel's names are not for it. */
static void program_requests(void **state)
{
    struct fx *f = *state;
    const char *reserved[] = {"", "devnull", "snd", "snd_multiple", "kil",
                              "kil1", "can", "info", "time", "known_nodes",
                              "up_nodes", "AnyEvent::MP::_spawn"};
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        assert_int_equal(
            aemp_node_handle(f->n, reserved[i], kt_tap_rcv, &f->tap),
            AEMP_EPERM);
    assert_int_equal(aemp_node_handle(f->n, "myreq", kt_tap_rcv, &f->tap), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "ssi", "myreq", "a", 7), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "ss", "info", "x"), 0);
    RUN(f->n);
    assert_int_equal(f->rec.n, 1); /* without the request's name */
    assert_true(kt_msg_is(f->rec.ev[0].msg, "si", "a", 7));
    assert_string_equal(f->rec.ev[0].port, f->ref); /* in the node port */
    assert_int_equal(aemp_node_handle(f->n, "myreq", NULL, NULL), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "s", "myreq"), 0);
    RUN(f->n);
    assert_int_equal(f->rec.n, 1);
    assert_true(kt_log_has(&f->log, "myreq"));
}

/* Requests are asynchronous like every snd. */
static void requests_asynchronous(void **state)
{
    struct fx *f = *state;
    kt_tap_t mon = {&f->rec, "mon", 0};
    const char *p = kt_port(f->n, kt_tap_rcv, &f->tap);
    const char *k = kt_port(f->n, NULL, NULL);
    assert_int_equal(aemp_mon_cb(f->n, k, kt_tap_mon, &mon, NULL), 0);
    char name[256];
    strcpy(name, strchr(k, '#') + 1);
    assert_int_equal(aemp_snd(f->n, f->ref, "sss", "info", p, "i"), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "sss", "snd", p, "relayed"), 0);
    assert_int_equal(aemp_snd(f->n, f->ref, "ss", "kil", name), 0);
    assert_int_equal(f->rec.n, 0);
    RUN(f->n);
    assert_int_equal(kt_rec_count(&f->rec, "rcv"), 2);
    assert_int_equal(kt_rec_count(&f->rec, "mon"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(devnull_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(snd_relay, setup, teardown),
        cmocka_unit_test_setup_teardown(snd_multiple_relay, setup, teardown),
        cmocka_unit_test_setup_teardown(kil_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(info_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(time_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(node_lists_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_request_logged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(node_port_protected, setup, teardown),
        cmocka_unit_test_setup_teardown(requests_asynchronous, setup, teardown),
        cmocka_unit_test_setup_teardown(program_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(kil1_and_byte_names, setup, teardown),
        cmocka_unit_test_setup_teardown(can_reply, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
