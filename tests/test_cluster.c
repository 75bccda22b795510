/* Several `aemp run` processes as a user would run them: configured only
 * through one configuration file (aemp --config F ...) with one profile
 * per node, finding each other through their seeds, queried with
 * `aemp rpc` and `aemp trace`.  The last test puts two nodes on two
 * "hosts": network namespaces joined by a veth pair (root only; it fails
 * with the reason where namespaces are not permitted).  Every child is
 * spawned on the test's loop, and every wait has a deadline.  The binary
 * comes from AEMP_TOOL_PATH. */
#include "helpers.h"

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef AEMP_TOOL_PATH
#error "AEMP_TOOL_PATH must name the aemp binary"
#endif

#define SECRET "cluster test secret"
#define NNODES 3

/* ---- running aemp --------------------------------------------------------- */

/* `[ip netns exec <ns>] aemp <args...>` on loop; args NULL-terminated. */

static cp_child_t *aemp_vstart(uv_loop_t *loop, const char *ns, va_list ap)
{
    const char *argv[48];
    size_t n = 0;
    if (ns) {
        argv[n++] = nt_ip_path();
        argv[n++] = "netns";
        argv[n++] = "exec";
        argv[n++] = ns;
    }
    argv[n++] = AEMP_TOOL_PATH;
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 47)
        argv[n++] = a;
    argv[n] = NULL;
    return cp_spawn(loop, argv[0], argv);
}

static cp_child_t *aemp_start(uv_loop_t *loop, const char *ns, ...)
{
    va_list ap;
    va_start(ap, ns);
    cp_child_t *c = aemp_vstart(loop, ns, ap);
    va_end(ap);
    return c;
}

/* Runs a command to completion (at most `seconds`); the child is yours. */
static cp_child_t *aemp_wait(uv_loop_t *loop, double seconds, const char *ns,
                             ...)
{
    va_list ap;
    va_start(ap, ns);
    cp_child_t *c = aemp_vstart(loop, ns, ap);
    va_end(ap);
    cp_expect_exit(c, seconds);
    return c;
}

/* A configuration command that must succeed. */
static void config_cmd(uv_loop_t *loop, const char *cfg, ...)
{
    const char *argv[24] = {AEMP_TOOL_PATH, "--config", cfg};
    size_t n = 3;
    va_list ap;
    va_start(ap, cfg);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 23)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    cp_child_t *c = cp_spawn(loop, AEMP_TOOL_PATH, argv);
    assert_true(cp_await_exit(c, 30));
    cp_expect_status(c, 0);
    cp_free(c);
}

/* ---- nodes ------------------------------------------------------------------- */

typedef struct node {
    cp_child_t *c;
    char profile[16];
    char ref[64];  /* what it printed first */
    char echo[256]; /* the aemp::echo port it printed, if any */
} node_t;

/* Waits until `aemp run` printed its noderef (and, with want_echo, its
 * echo service's port); fails with its output if it did not. */
static void await_running(uv_loop_t *loop, node_t *nd, int want_echo)
{
    if (!cp_await_stdout(nd->c, "\n", 1, 20) ||
        (want_echo && !cp_await_stdout(nd->c, "service aemp::echo ", 1, 10))) {
        cp_dump(nd->c);
        fail_msg("%s did not start", nd->c->name);
    }
    cp_first_line(nd->c, nd->ref, sizeof nd->ref);
    const char *svc = strstr(nd->c->obuf, "service aemp::echo ");
    if (svc) {
        svc += strlen("service aemp::echo ");
        /* the whole line must be there */
        assert_true(cp_await_stdout(nd->c, "\n", 2, 10));
        size_t n = strcspn(svc, "\n");
        assert_true(n < sizeof nd->echo);
        memcpy(nd->echo, svc, n);
        nd->echo[n] = 0;
    }
}

/* The JSON array an `aemp rpc` printed (yours), or NULL. */
static json_t *reply_of(const cp_child_t *c)
{
    return nt_json_array(c->obuf);
}

/* Asks `[ns] aemp rpc <ref> up_nodes` again and again until its answer
 * lists every one of want (NULL-terminated) and none of unwanted, at most
 * `seconds`.  1 if it did; the last output goes to stderr if not. */
static int await_up_nodes(uv_loop_t *loop, const char *ns, const char *cfg,
                          const char *ref, const char *const *want,
                          const char *unwanted, double seconds)
{
    uint64_t end = kt_now_ms() + (uint64_t)(seconds * 1000);
    char *last = NULL;
    for (;;) {
        cp_child_t *c = aemp_wait(loop, 30, ns, "rpc", ref, "up_nodes",
                                  "--config", cfg, "--timeout", "3",
                                  (const char *)NULL);
        json_t *j = c->status == 0 ? reply_of(c) : NULL;
        int ok = j != NULL;
        for (size_t i = 0; ok && want[i]; i++)
            ok = nt_json_has_str(j, want[i]);
        if (ok && unwanted)
            ok = !nt_json_has_str(j, unwanted);
        json_decref(j);
        free(last);
        last = strdup(c->obuf[0] ? c->obuf : c->ebuf);
        cp_free(c);
        if (ok) {
            free(last);
            return 1;
        }
        if (kt_now_ms() >= end)
            break;
        nt_run_for(loop, 0.2); /* another process: poll */
    }
    fprintf(stderr, "up_nodes of %s: %s\n", ref, last ? last : "");
    free(last);
    return 0;
}

/* ---- the three-node cluster -------------------------------------------------- */

typedef struct fx {
    uv_loop_t loop;
    char dir[64], cfg[128];
    node_t nodes[NNODES];
    int port[NNODES];
    /* namespaces (multi_host) */
    char ns[2][32], veth[2][16];
    int ns_made[2], veth_made;
    cp_child_t *ns_nodes[2];
} fx_t;

static void node_start(fx_t *f, int i)
{
    node_t *nd = &f->nodes[i];
    nd->c = aemp_start(&f->loop, NULL, "--config", f->cfg, "--profile",
                       nd->profile, "run", (const char *)NULL);
    await_running(&f->loop, nd, 1);
}

/* A ring of seeds: n1 -> n2 -> n3 -> n1, so that every pair is linked
 * once, and every node is somebody's seed. */
static int cluster_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    uv_loop_init(&f->loop);
    snprintf(f->dir, sizeof f->dir, "/tmp/aemp-cluster-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->cfg, sizeof f->cfg, "%s/config.json", f->dir);
    config_cmd(&f->loop, f->cfg, "setsecret", SECRET, (const char *)NULL);
    config_cmd(&f->loop, f->cfg, "setservices", "aemp::echo",
               (const char *)NULL);
    char ref[NNODES][64];
    for (int i = 0; i < NNODES; i++) {
        f->port[i] = nt_free_port();
        snprintf(ref[i], sizeof ref[i], "127.0.0.1:%d", f->port[i]);
        snprintf(f->nodes[i].profile, sizeof f->nodes[i].profile, "n%d",
                 i + 1);
    }
    for (int i = 0; i < NNODES; i++) {
        config_cmd(&f->loop, f->cfg, "profile", f->nodes[i].profile,
                   "setnoderef", ref[i], (const char *)NULL);
        config_cmd(&f->loop, f->cfg, "profile", f->nodes[i].profile,
                   "setseeds", ref[(i + 1) % NNODES], (const char *)NULL);
    }
    /* no command sets these: the file is edited through the library */
    aemp_config_t *c;
    assert_int_equal(aemp_config_open(&c, f->cfg), 0);
    aemp_val_t *v = aemp_double(0.3);
    assert_int_equal(aemp_config_set(c, NULL, "connect_interval", &v), 0);
    v = aemp_double(3);
    assert_int_equal(aemp_config_set(c, NULL, "monitor_timeout", &v), 0);
    assert_int_equal(aemp_config_save(c), 0);
    aemp_config_free(c);
    for (int i = 0; i < NNODES; i++) {
        node_start(f, i);
        assert_string_equal(f->nodes[i].ref, ref[i]);
    }
    return 0;
}

static int cluster_teardown(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < NNODES; i++)
        cp_free(f->nodes[i].c);
    nt_loop_finish(&f->loop);
    cp_rm_rf(f->dir);
    free(f);
    return 0;
}

/* Every node lists the two others as up. */
static void await_full_mesh(fx_t *f)
{
    for (int i = 0; i < NNODES; i++) {
        const char *want[NNODES] = {NULL};
        size_t k = 0;
        for (int j = 0; j < NNODES; j++)
            if (j != i)
                want[k++] = f->nodes[j].ref;
        if (!await_up_nodes(&f->loop, NULL, f->cfg, f->nodes[i].ref, want,
                            NULL, 20)) {
            for (int j = 0; j < NNODES; j++)
                cp_dump(f->nodes[j].c);
            fail_msg("%s does not see the others up", f->nodes[i].ref);
        }
    }
}

static void nodes_find_each_other(void **state)
{
    fx_t *f = *state;
    await_full_mesh(f);
}

static void rpc_echo(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < NNODES; i++) {
        node_t *nd = &f->nodes[i];
        char prefix[80];
        snprintf(prefix, sizeof prefix, "%s#", nd->ref);
        /* a port of that node */
        assert_int_equal(strncmp(nd->echo, prefix, strlen(prefix)), 0);
        cp_child_t *c = aemp_wait(&f->loop, 30, NULL, "rpc", nd->echo, "hello",
                                  "1", "--config", f->cfg, "--timeout", "5",
                                  (const char *)NULL);
        cp_expect_status(c, 0);
        assert_string_equal(c->obuf, "[\"hello\",1]\n");
        cp_free(c);
    }
    /* JSON arguments stay JSON, others are strings */
    cp_child_t *c = aemp_wait(&f->loop, 30, NULL, "rpc", f->nodes[0].echo,
                              "[1,{\"a\":true}]", "plain text", "--config",
                              f->cfg, "--timeout", "5", (const char *)NULL);
    cp_expect_status(c, 0);
    assert_string_equal(c->obuf, "[[1,{\"a\":true}],\"plain text\"]\n");
    cp_free(c);
}

static void trace_lists_all(void **state)
{
    fx_t *f = *state;
    await_full_mesh(f);
    cp_child_t *c = aemp_wait(&f->loop, 30, NULL, "trace", f->nodes[0].ref,
                              "--config", f->cfg, "--timeout", "5",
                              (const char *)NULL);
    cp_expect_status(c, 0);
    for (int i = 0; i < NNODES; i++) {
        char line[96];
        snprintf(line, sizeof line, "%s knows:", f->nodes[i].ref);
        if (cp_count(c->obuf, line) != 1) {
            cp_dump(c);
            fail_msg("trace does not print \"%s\" once", line);
        }
        /* and every node knows every other */
        const char *at = strstr(c->obuf, line);
        size_t len = strcspn(at, "\n");
        for (int j = 0; j < NNODES; j++) {
            char *known = strstr(at + strlen(line), f->nodes[j].ref);
            if (j != i && (!known || known > at + len)) {
                cp_dump(c);
                fail_msg("trace: %s does not list %s", f->nodes[i].ref,
                         f->nodes[j].ref);
            }
        }
    }
    cp_free(c);
}

/* n1 is n3's seed (and nobody else's): killed, it drops out; restarted,
 * n3 joins it again by itself. */
static void seed_restarted_is_rejoined(void **state)
{
    fx_t *f = *state;
    await_full_mesh(f);
    node_t *n1 = &f->nodes[0], *n3 = &f->nodes[2];
    char before[64];
    snprintf(before, sizeof before, "%s", n1->ref);
    cp_kill(n1->c, SIGKILL);
    assert_true(cp_await_exit(n1->c, 10));
    cp_free(n1->c);
    n1->c = NULL;
    const char *none[] = {NULL};
    if (!await_up_nodes(&f->loop, NULL, f->cfg, n3->ref, none, n1->ref, 20))
        fail_msg("%s still lists the killed %s as up", n3->ref, n1->ref);
    /* down for a few of n3's connect intervals */
    nt_run_for(&f->loop, 1.0);
    node_start(f, 0);
    assert_string_equal(n1->ref, before); /* the same place */
    const char *want_n1[] = {n1->ref, NULL};
    if (!await_up_nodes(&f->loop, NULL, f->cfg, n3->ref, want_n1, NULL, 20)) {
        cp_dump(n3->c);
        fail_msg("%s did not re-join its restarted seed %s", n3->ref,
                 n1->ref);
    }
    await_full_mesh(f);
    /* the restarted node serves again */
    cp_child_t *c = aemp_wait(&f->loop, 30, NULL, "rpc", n1->echo, "again",
                              "--config", f->cfg, "--timeout", "5",
                              (const char *)NULL);
    cp_expect_status(c, 0);
    assert_string_equal(c->obuf, "[\"again\"]\n");
    cp_free(c);
}

/* SIGTERM (and SIGINT) shut `aemp run` down cleanly: exit status 0. */
static void run_stops_on_signal(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < NNODES; i++) {
        cp_kill(f->nodes[i].c, i == 0 ? SIGINT : SIGTERM);
        if (!cp_await_exit(f->nodes[i].c, 15)) {
            cp_dump(f->nodes[i].c);
            fail_msg("aemp run did not stop on a signal");
        }
        if (f->nodes[i].c->signal || f->nodes[i].c->status != 0) {
            cp_dump(f->nodes[i].c);
            fail_msg("aemp run did not stop cleanly");
        }
    }
}

/* `aemp run <noderef>`: the command line's noderef, not the profile's
 * (tools/aemp/net_cmds.c, cmd_run: "a noderef on the command line; else
 * the profile's; else the node name"). */
static void run_command_line_noderef_wins(void **state)
{
    fx_t *f = *state;
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", nt_free_port());
    /* profile n1's noderef is taken by the running n1 */
    cp_child_t *c = aemp_start(&f->loop, NULL, "--config", f->cfg,
                               "--profile", "n1", "run", want,
                               (const char *)NULL);
    node_t nd = {.c = c};
    if (!cp_await_stdout(c, "\n", 1, 20)) {
        cp_dump(c);
        cp_free(c);
        fail_msg("aemp run %s --profile n1 did not start", want);
    }
    cp_first_line(c, nd.ref, sizeof nd.ref);
    cp_free(c);
    assert_string_equal(nd.ref, want);
}

/* ---- two hosts: network namespaces -------------------------------------------- */


static int hosts_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    uv_loop_init(&f->loop);
    snprintf(f->dir, sizeof f->dir, "/tmp/aemp-hosts-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->cfg, sizeof f->cfg, "%s/config.json", f->dir);
    int pid = (int)getpid();
    snprintf(f->ns[0], sizeof f->ns[0], "aemp-t1-%d", pid);
    snprintf(f->ns[1], sizeof f->ns[1], "aemp-t2-%d", pid);
    snprintf(f->veth[0], sizeof f->veth[0], "ae%da", pid % 10000000);
    snprintf(f->veth[1], sizeof f->veth[1], "ae%db", pid % 10000000);
    return 0;
}

static int hosts_teardown(void **state)
{
    fx_t *f = *state;
    for (int i = 0; i < 2; i++)
        cp_free(f->ns_nodes[i]);
    nt_loop_finish(&f->loop);
    nt_hosts_del((const char *const[]){f->ns[0], f->ns[1]}, f->veth[0],
                 f->ns_made, f->veth_made);
    cp_rm_rf(f->dir);
    free(f);
    return 0;
}

static void multi_host(void **state)
{
    fx_t *f = *state;
    static const char *const addr[2] = {"10.231.0.1/24", "10.231.0.2/24"};
    nt_hosts_make("multi_host", (const char *const[]){f->ns[0], f->ns[1]},
                  (const char *const[]){f->veth[0], f->veth[1]}, addr,
                  f->ns_made, &f->veth_made);
    config_cmd(&f->loop, f->cfg, "setsecret", SECRET, (const char *)NULL);
    aemp_config_t *c;
    assert_int_equal(aemp_config_open(&c, f->cfg), 0);
    aemp_val_t *v = aemp_double(0.3);
    assert_int_equal(aemp_config_set(c, NULL, "connect_interval", &v), 0);
    assert_int_equal(aemp_config_save(c), 0);
    aemp_config_free(c);

    /* host 1, and host 2 with host 1 as its seed */
    node_t h1 = {0}, h2 = {0};
    f->ns_nodes[0] = h1.c =
        aemp_start(&f->loop, f->ns[0], "run", "10.231.0.1:4040", "--config",
                   f->cfg, (const char *)NULL);
    await_running(&f->loop, &h1, 0);
    assert_string_equal(h1.ref, "10.231.0.1:4040");
    f->ns_nodes[1] = h2.c =
        aemp_start(&f->loop, f->ns[1], "run", "10.231.0.2:4040",
                   "10.231.0.1:4040", "--config", f->cfg, (const char *)NULL);
    await_running(&f->loop, &h2, 0);
    assert_string_equal(h2.ref, "10.231.0.2:4040");

    /* asked from inside host 2, host 1 lists host 2 as up */
    const char *want[] = {"10.231.0.2:4040", NULL};
    if (!await_up_nodes(&f->loop, f->ns[1], f->cfg, "10.231.0.1:4040", want,
                        NULL, 20)) {
        cp_dump(h1.c);
        cp_dump(h2.c);
        fail_msg("the two hosts did not link up");
    }
    /* and the other way round */
    const char *want1[] = {"10.231.0.1:4040", NULL};
    assert_true(await_up_nodes(&f->loop, f->ns[0], f->cfg, "10.231.0.2:4040",
                               want1, NULL, 20));
    /* the hosts are really apart from this one: host 1 cannot be reached
     * from the test's own namespace, only through the veth pair */
    cp_child_t *r = aemp_wait(&f->loop, 30, NULL, "rpc", "10.231.0.1:4040",
                              "info", "--config", f->cfg, "--timeout", "1",
                              (const char *)NULL);
    assert_true(r->status != 0);
    cp_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nodes_find_each_other, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(rpc_echo, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(trace_lists_all, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(seed_restarted_is_rejoined,
                                        cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(run_stops_on_signal, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(run_command_line_noderef_wins,
                                        cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(multi_host, hosts_setup,
                                        hosts_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
