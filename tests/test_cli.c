/* The `aemp` command-line tool as users run it: real processes talking
 * over TCP on 127.0.0.1.  `aemp run` children serve as nodes, `aemp
 * snd/rpc/mon` children as clients; where a port must exist (`aemp run`
 * has no services yet), a node inside this test process plays the server.
 * Children are started with uv_spawn (fork + exec) on the same loop as
 * the in-process node, so the test can wait for either without sleeping.
 * The binary comes from AEMP_TOOL_PATH (tests/CMakeLists.txt). */
#include "helpers.h"

#include "net.h" /* only to see the in-process node's watchers */

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef AEMP_TOOL_PATH
#error "AEMP_TOOL_PATH must name the aemp binary"
#endif

#define SECRET "cli test secret"

/* ---- children --------------------------------------------------------------
 */

static char dir[] = "/tmp/aemp-test-cli-XXXXXX";

/* The children's environment: ours, with a configuration file of their
 * own (absent: defaults), so that a user's settings never leak in. */
static char **child_env(void)
{
    extern char **environ;
    static char **env;
    if (env)
        return env;
    assert_non_null(mkdtemp(dir));
    size_t n = 0;
    while (environ[n])
        n++;
    env = calloc(n + 2, sizeof *env);
    assert_non_null(env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "AEMP_CONFIG=", 12) &&
            strncmp(environ[i], "AEMP_SECRET=", 12))
            env[k++] = environ[i];
    static char cfg[96];
    snprintf(cfg, sizeof cfg, "AEMP_CONFIG=%s/config.json", dir);
    env[k++] = cfg;
    env[k] = NULL;
    return env;
}

/* Starts AEMP_TOOL_PATH with args (NULL-terminated, without argv[0]). */
static cp_child_t *spawn(uv_loop_t *loop, const char *const *args)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = AEMP_TOOL_PATH;
    for (; args[n - 1]; n++) {
        assert_true(n < 31);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    return cp_spawn_env(loop, AEMP_TOOL_PATH, argv, child_env());
}

/* spawn() with one more "NAME=value" in the environment. */
static cp_child_t *spawn_with(uv_loop_t *loop, const char *const *args,
                              const char *extra)
{
    char **base = child_env();
    size_t n = 0;
    while (base[n])
        n++;
    static char *env[512];
    assert_true(n + 2 < 512);
    memcpy(env, base, n * sizeof *env);
    env[n] = (char *)extra;
    env[n + 1] = NULL;
    const char *argv[32];
    int k = 0;
    argv[k++] = AEMP_TOOL_PATH;
    for (; args[k - 1]; k++) {
        assert_true(k < 31);
        argv[k] = args[k - 1];
    }
    argv[k] = NULL;
    return cp_spawn_env(loop, AEMP_TOOL_PATH, argv, env);
}

/* `aemp run 127.0.0.1:<free port>`; *ref gets the noderef it printed. */
static cp_child_t *start_run_env(uv_loop_t *loop, char *ref, size_t size,
                                 const char *extra)
{
    for (int tries = 0; tries < 10; tries++) {
        char want[64];
        snprintf(want, sizeof want, "127.0.0.1:%d", nt_free_port());
        const char *args[] = {"run", want, "--secret", SECRET, NULL};
        cp_child_t *c =
            extra ? spawn_with(loop, args, extra) : spawn(loop, args);
        if (cp_await_stdout(c, "\n", 1, 10)) {
            /* the noderef is the first thing it prints */
            cp_first_line(c, ref, size);
            assert_string_equal(ref, want);
            return c;
        }
        if (!c->exited) {
            cp_dump(c);
            fail_msg("aemp run printed nothing within 10 s");
        }
        /* the port was taken in the meantime: try another */
        cp_expect_exit(c, 5);
        cp_free(c);
    }
    fail_msg("aemp run did not start");
    return NULL;
}

static cp_child_t *start_run(uv_loop_t *loop, char *ref, size_t size)
{
    return start_run_env(loop, ref, size, NULL);
}

/* Runs `aemp <args...>` to completion; returns the child (yours). */
static cp_child_t *run_cmd(uv_loop_t *loop, const char *const *args,
                           double seconds)
{
    cp_child_t *c = spawn(loop, args);
    cp_expect_exit(c, seconds);
    return c;
}

/* Runs `aemp <args...>` to completion; it must exit with status 0. */
static void run_ok(uv_loop_t *loop, const char *const *args, double seconds)
{
    cp_child_t *c = run_cmd(loop, args, seconds);
    cp_expect_status(c, 0);
    cp_free(c);
}

static void expect_failure(cp_child_t *c)
{
    if (c->signal || c->status == 0) {
        cp_dump(c);
        fail_msg("%s: exit status %lld (signal %d), want a failure", c->name,
                 (long long)c->status, c->signal);
    }
}

/* ---- an in-process node -------------------------------------------------- */

typedef struct server {
    aemp_node_t *n;
    char ref[64];
    kt_rec_t rec, log;
    kt_tap_t tap;
} server_t;

static void server_start(server_t *s, uv_loop_t *loop)
{
    memset(s, 0, sizeof *s);
    aemp_netconf_t c = {
        .secret = SECRET, .monitor_timeout = 5, .connect_interval = 0.2};
    assert_int_equal(aemp_node_new(&s->n, loop), 0);
    assert_int_equal(aemp_node_configure(s->n, &c), 0);
    aemp_node_set_log(s->n, AEMP_LOG_DEBUG, kt_log_rec, &s->log);
    nt_listen(loop, s->n, NULL, s->ref, sizeof s->ref, 10);
    s->tap = (kt_tap_t){&s->rec, "rcv", 0};
}

static void server_stop(server_t *s)
{
    aemp_node_free(s->n);
    kt_rec_free(&s->rec);
    kt_rec_free(&s->log);
}

static __attribute__((noinline)) void server_port(server_t *s, char *id,
                                                  size_t size)
{
    const char *p = NULL;
    assert_int_equal(aemp_port(s->n, kt_tap_rcv, &s->tap, &p), 0);
    assert_true(strlen(p) < size);
    strcpy(id, p);
}

/* Monitors that peers hold on the server's ports, over all peers. */
static size_t server_watchers(server_t *s)
{
    size_t i = 0, k = 0;
    aemp__peer_t *p;
    while ((p = aemp__strmap_next(&s->n->net->peers, &i)))
        k += p->watchers.n;
    return k;
}

static int server_watched(void *arg)
{
    return server_watchers(arg) > 0;
}

typedef struct both {
    cp_child_t *c;
    const kt_rec_t *rec;
    size_t want;
} both_t;

static int exited_and_received(void *arg)
{
    both_t *b = arg;
    return cp_done(b->c) && kt_rec_count(b->rec, NULL) >= b->want;
}

/* ==== tests
 * ========================================================================= */

static void run_prints_noderef_and_rpc_info(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char ref[64], want[192];
    cp_child_t *r = start_run(&loop, ref, sizeof ref);
    const char *info[] = {"rpc",  ref,         "info", "--secret",
                          SECRET, "--timeout", "5",    NULL};
    cp_child_t *c = run_cmd(&loop, info, 15);
    cp_expect_status(c, 0);
    snprintf(want, sizeof want, "[\"%s\"]\n", ref);
    assert_string_equal(c->obuf, want);
    cp_free(c);
    /* extra leading elements of the reply target come back first */
    const char *time_[] = {"rpc", ref, "time", "--secret", SECRET, NULL};
    c = run_cmd(&loop, time_, 15);
    cp_expect_status(c, 0);
    double t;
    assert_int_equal(sscanf(c->obuf, "[%lf]", &t), 1);
    assert_true(t > 1.6e9);
    cp_free(c);
    /* options may come before the command, secret from the environment */
    const char *up[] = {"--timeout", "5",        "rpc",  ref,
                        "up_nodes",  "--secret", SECRET, NULL};
    c = run_cmd(&loop, up, 15);
    cp_expect_status(c, 0);
    assert_true(c->obuf[0] == '[');
    cp_free(c);
    /* a port that does not exist: a clear error, not a wait */
    char nosuch[128];
    snprintf(nosuch, sizeof nosuch, "%s#nosuch.1", ref);
    const char *gone[] = {"rpc", nosuch, "x", "--secret", SECRET, NULL};
    c = run_cmd(&loop, gone, 15);
    cp_expect_status(c, 1);
    snprintf(want, sizeof want, "aemp: no such port: %s\n", nosuch);
    assert_string_equal(c->ebuf, want);
    assert_string_equal(c->obuf, "");
    assert_true(c->exited_ms - c->started_ms < 3000);
    cp_free(c);
    assert_false(r->exited);
    cp_free(r);
    nt_loop_finish(&loop);
}

static void snd_delivers_json_args(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_t s;
    server_start(&s, &loop);
    char port[128];
    server_port(&s, port, sizeof port);
    const char *args[] = {"snd",   port,        "hello",      "42",
                          "[1,2]", "{\"a\":1}", "\"quoted\"", "plain text",
                          "-7.5",  "--secret",  SECRET,       NULL};
    cp_child_t *c = spawn(&loop, args);
    both_t b = {c, &s.rec, 1};
    nt_run_until(&loop, exited_and_received, &b, 15);
    cp_expect_status(c, 0);
    assert_int_equal(kt_rec_count(&s.rec, NULL), 1);
    assert_true(kt_msg_is(s.rec.ev[0].msg, "si[ii]{i}ssd", "hello", 42, 1, 2,
                          "a", 1, "quoted", "plain text", -7.5));
    cp_free(c);
    /* to a node port: exits 0 once written */
    const char *dn[] = {"snd", s.ref, "devnull", "--secret", SECRET, NULL};
    run_ok(&loop, dn, 15);
    server_stop(&s);
    nt_loop_finish(&loop);
}

static void snd_to_run_node(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char ref[64];
    cp_child_t *r = start_run(&loop, ref, sizeof ref);
    const char *args[] = {"snd", ref, "devnull", "x", "--secret", SECRET, NULL};
    run_ok(&loop, args, 15);
    cp_free(r);
    nt_loop_finish(&loop);
}

static void rpc_wrong_secret(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char ref[64];
    cp_child_t *r = start_run(&loop, ref, sizeof ref);
    const char *args[] = {
        "rpc",       ref, "info", "--secret", "not the secret",
        "--timeout", "2", NULL};
    cp_child_t *c = run_cmd(&loop, args, 15);
    expect_failure(c);
    if (!strstr(c->ebuf, "authentication")) {
        cp_dump(c);
        fail_msg("the error does not mention authentication");
    }
    assert_true(c->exited_ms - c->started_ms < 6000);
    /* the node says so too */
    assert_true(cp_await_stderr(r, "authentication", 1, 5));
    cp_free(c);
    /* and trace (a plain client now: no "no master answered") */
    args[0] = "trace";
    args[2] = "--secret";
    args[3] = "not the secret";
    args[4] = "--timeout";
    args[5] = "2";
    args[6] = NULL;
    c = run_cmd(&loop, args, 15);
    expect_failure(c);
    if (!strstr(c->ebuf, "cannot reach") ||
        !strstr(c->ebuf, "authentication")) {
        cp_dump(c);
        fail_msg("trace's error does not say why");
    }
    assert_true(c->exited_ms - c->started_ms < 6000);
    cp_free(c);
    args[2] = "info";
    args[3] = "--secret";
    args[4] = "not the secret";
    args[5] = "--timeout";
    args[6] = "2";
    /* and snd, which only waits for the message to be written */
    args[0] = "snd";
    c = run_cmd(&loop, args, 15);
    expect_failure(c);
    if (!strstr(c->ebuf, "authentication")) {
        cp_dump(c);
        fail_msg("snd's error does not mention authentication");
    }
    assert_true(c->exited_ms - c->started_ms < 6000);
    cp_free(c);
    cp_free(r);
    nt_loop_finish(&loop);
}

/* The client commands speak as the configuration file says: its
 * auth_offer (here Perl 1.x's MD6 method, which `aemp run` accepts by
 * default) and framing are used, and a wrong name is refused at once. */
static void client_uses_config(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char ref[64], path[128];
    cp_child_t *r = start_run(&loop, ref, sizeof ref);
    snprintf(path, sizeof path, "%s/client.json", dir);
    cp_write_file(path, "{\"secret\": \"" SECRET "\", \"auth_offer\": "
                        "[\"hmac_md6_64_256\"], \"framing\": \"json\"}");
    const char *args[] = {"-v",  "--config", path, "rpc", ref, "info",
                          "--timeout", "5", NULL};
    cp_child_t *c = run_cmd(&loop, args, 15);
    cp_expect_status(c, 0);
    if (!strstr(c->ebuf, "up (hmac_md6_64_256, sending cbor)")) {
        cp_dump(c);
        fail_msg("the client did not authenticate with its configured method");
    }
    cp_free(c);
    cp_write_file(path, "{\"secret\": \"" SECRET "\", \"framing\": "
                        "[\"cbor\", \"xml\"]}");
    c = run_cmd(&loop, args, 15);
    expect_failure(c);
    if (!strstr(c->ebuf, "unknown framing \"xml\"")) {
        cp_dump(c);
        fail_msg("a wrong framing name is not refused with its name");
    }
    assert_true(c->exited_ms - c->started_ms < 2000);
    cp_free(c);
    unlink(path);
    cp_free(r);
    nt_loop_finish(&loop);
}

static void snd_nobody_listening(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char port[96];
    snprintf(port, sizeof port, "127.0.0.1:%d#x.1", nt_free_port());
    const char *args[] = {"snd",  port,        "hi", "--secret",
                          SECRET, "--timeout", "1",  NULL};
    cp_child_t *c = run_cmd(&loop, args, 15);
    expect_failure(c);
    uint64_t ms = c->exited_ms - c->started_ms;
    fprintf(stderr, "  snd gave up after %llu ms: %s", (unsigned long long)ms,
            *c->ebuf ? c->ebuf : "(nothing)\n");
    assert_true(ms < 3500);
    assert_non_null(strstr(c->ebuf, "connection refused"));
    cp_free(c);
    nt_loop_finish(&loop);
}

static void mon_prints_kill_reason(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_t s;
    server_start(&s, &loop);
    char port[128];
    server_port(&s, port, sizeof port);
    const char *mon[] = {"mon", port, "--secret", SECRET, NULL};
    cp_child_t *m = spawn(&loop, mon);
    /* its mon1 reached us */
    if (!nt_run_until(&loop, server_watched, &s, 15)) {
        cp_dump(m);
        fail_msg("aemp mon did not set up its monitor");
    }
    assert_false(m->exited);
    /* the node port's kil takes the port name (after '#') */
    const char *kil[] = {"snd",    s.ref, "kil",      strchr(port, '#') + 1,
                         "reason", "x",   "--secret", SECRET,
                         NULL};
    run_ok(&loop, kil, 15);
    cp_expect_exit(m, 15);
    cp_expect_status(m, 0);
    assert_string_equal(m->obuf, "[\"reason\",\"x\"]\n");
    assert_false(aemp_port_exists(s.n, port));
    cp_free(m);
    server_stop(&s);
    nt_loop_finish(&loop);
}

/* A stream from the in-process node to an `aemp run` node that is killed
 * with SIGKILL: monitors in this process and in an `aemp mon` process
 * fire within the monitor timeout. */
typedef struct streamer {
    aemp_node_t *n;
    const char *to;
    long sent;
    int fired;
    aemp_msg_t *reason;
} streamer_t;

static int stream_step(void *arg)
{
    streamer_t *s = arg;
    for (int i = 0; i < 200 && !s->fired; i++, s->sent++)
        assert_int_equal(aemp_snd(s->n, s->to, "si", "devnull", (int)s->sent),
                         0);
    return s->fired;
}

static void on_fired(aemp_node_t *n, const char *port, const aemp_msg_t *r,
                     void *user)
{
    streamer_t *s = user;
    s->fired = 1;
    s->reason = kt_msg_copy(r);
}

static int sent_enough(void *arg)
{
    streamer_t *s = arg;
    stream_step(s);
    return s->sent >= 20000 || s->fired;
}

static void sigkill_mid_stream(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_t s;
    server_start(&s, &loop);
    char ref[64];
    cp_child_t *r = start_run(&loop, ref, sizeof ref);
    streamer_t st = {s.n, ref, 0, 0, NULL};
    assert_int_equal(aemp_mon_cb(s.n, ref, on_fired, &st, NULL), 0);
    const char *mon[] = {"mon",       ref, "--secret", SECRET,
                         "--timeout", "3", NULL};
    cp_child_t *m = spawn(&loop, mon);
    /* both are connected: the node logs each one coming up */
    nt_run_until(&loop, sent_enough, &st, 15);
    if (!cp_await_stderr(r, " up", 2, 15)) {
        cp_dump(r);
        fail_msg("the two clients did not come up");
    }
    assert_false(st.fired);
    assert_int_equal(uv_process_kill(&r->proc, SIGKILL), 0);
    uint64_t t0 = kt_now_ms();
    assert_true(nt_run_until(&loop, stream_step, &st, 10));
    uint64_t ms = kt_now_ms() - t0;
    fprintf(stderr, "  in-process monitor fired after %llu ms (%ld sent)\n",
            (unsigned long long)ms, st.sent);
    assert_true(ms < 6000);
    const char *kind = NULL, *id = NULL, *text = NULL;
    assert_int_equal(aemp_msg_unpack(st.reason, "sss", &kind, &id, &text), 0);
    assert_string_equal(kind, "transport_error");
    assert_string_equal(id, ref);
    /* and in the other process */
    cp_expect_exit(m, 10);
    fprintf(stderr, "  aemp mon ended %llu ms after the kill: %s%s",
            (unsigned long long)(m->exited_ms - t0), m->obuf, m->ebuf);
    assert_true(m->exited_ms - t0 < 6000);
    assert_int_equal(m->signal, 0);
    /* it reports the loss, as a reason or as an error */
    assert_true(strstr(m->obuf, "transport_error") || strstr(m->ebuf, ref));
    cp_expect_exit(r, 5);
    assert_int_equal(r->signal, SIGKILL);
    aemp_msg_unref(st.reason);
    cp_free(m);
    cp_free(r);
    server_stop(&s);
    nt_loop_finish(&loop);
}

/* `count` messages ["snd", to, "devnull", i] from s to the node via (which
 * relays them to to's node port), then the loop runs for 10 ms. */
static void relay_round(uv_loop_t *loop, server_t *s, const char *via,
                        const char *to, int count, long *sent)
{
    for (int i = 0; i < count; i++, ++*sent)
        aemp_snd(s->n, via, "sssi", "snd", to, "devnull", (int)*sent);
    nt_run_for(loop, 0.01);
}

/* A node relaying a stream to another that dies keeps running (a write
 * to a reset connection must not kill it with SIGPIPE). */
static void relay_survives_peer_death(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_t s;
    server_start(&s, &loop);
    char r1ref[64], r2ref[64];
    cp_child_t *r1 = start_run(&loop, r1ref, sizeof r1ref);
    cp_child_t *r2 = start_run(&loop, r2ref, sizeof r2ref);
    /* ["snd", r2, "devnull", i] to r1: r1 relays to r2's node port */
    long sent = 0;
    for (int round = 0;
         round < 200 && !r2->exited && !cp_count(r2->ebuf, " up"); round++)
        relay_round(&loop, &s, r1ref, r2ref, 100, &sent);
    assert_true(cp_count(r2->ebuf, " up") >= 1);
    assert_int_equal(uv_process_kill(&r2->proc, SIGKILL), 0);
    /* keep relaying into the dead node for a while */
    for (int round = 0; round < 100; round++)
        relay_round(&loop, &s, r1ref, r2ref, 200, &sent);
    cp_expect_exit(r2, 5);
    if (r1->exited) {
        cp_dump(r1);
        fail_msg("aemp run died (signal %d%s) when the node it relayed to "
                 "went away",
                 r1->signal, r1->signal == SIGPIPE ? ": SIGPIPE" : "");
    }
    const char *info[] = {"rpc", r1ref, "info", "--secret", SECRET, NULL};
    run_ok(&loop, info, 15);
    cp_free(r1);
    cp_free(r2);
    server_stop(&s);
    nt_loop_finish(&loop);
}

static void sigterm_clean_exit_sig(int sig)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char ref[64];
    cp_child_t *r = start_run(&loop, ref, sizeof ref);
    /* with a link up, so that there is something to shut down */
    server_t s;
    server_start(&s, &loop);
    assert_int_equal(aemp_snd(s.n, ref, "s", "devnull"), 0);
    assert_true(cp_await_stderr(r, " up", 1, 10));
    assert_int_equal(uv_process_kill(&r->proc, sig), 0);
    cp_expect_exit(r, 10);
    cp_expect_status(r, 0);
    assert_non_null(strstr(r->ebuf, sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    assert_true(r->exited_ms - r->started_ms < 20000);
    cp_free(r);
    server_stop(&s);
    nt_loop_finish(&loop);
}

static void sigterm_clean_exit(void **state)
{
    sigterm_clean_exit_sig(SIGTERM);
}
static void sigint_clean_exit(void **state)
{
    sigterm_clean_exit_sig(SIGINT);
}

static void usage_errors(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *help[] = {"--help", NULL};
    cp_child_t *c = run_cmd(&loop, help, 10);
    cp_expect_status(c, 0);
    assert_non_null(strstr(c->obuf, "usage"));
    cp_free(c);
    const char *bad[] = {"run", "127.0.0.1:99999", "--secret", SECRET, NULL};
    c = run_cmd(&loop, bad, 10);
    expect_failure(c); /* no such port */
    cp_free(c);
    /* no secret anywhere (the environment's is not passed on) */
    const char *nosecret[] = {"snd",       "127.0.0.1:1", "x",
                              "--timeout", "2",           NULL};
    c = run_cmd(&loop, nosecret, 10);
    expect_failure(c);
    assert_non_null(strstr(c->ebuf, "secret"));
    cp_free(c);
    /* a name that is no address, from a node that does not listen: at
     * once, saying why (nobody could ever connect to it) */
    const char *byname[] = {"rpc",  "no-such-node", "info",    "--secret",
                            SECRET, "--timeout",    "5",       NULL};
    c = run_cmd(&loop, byname, 10);
    expect_failure(c);
    if (!strstr(c->ebuf, "cannot reach no-such-node: no address is known for "
                         "no-such-node")) {
        cp_dump(c);
        fail_msg("a node name is not refused with the reason");
    }
    assert_true(c->exited_ms - c->started_ms < 2000);
    cp_free(c);
    nt_loop_finish(&loop);
}

/* ==== exit codes and messages (issue 12) ================================== */

/* A peer that writes first, as a Perl node does (it starts its services and
 * talks to the new node at once): the server sends a devnull request to
 * every node the moment its link comes up.  snd must still deliver, exit 0
 * once the server has the message, and hang up cleanly (no reset: the
 * server reads the close as an end of file). */
/* Once the packet is out, the server is busy for a while, as a Perl node
 * starting its services may be: the client's message waits unread in the
 * server's socket.  A client that hung up now with our packet unread
 * would reset the connection, and the server's kernel would throw the
 * message away. */
static void be_busy(aemp_node_t *n, int status, void *user)
{
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static void on_up_write(aemp_node_t *n, const char *id, int up,
                        const aemp_msg_t *reason, void *user)
{
    int *sent = user;
    static char text[16384];
    memset(text, 'x', sizeof text - 1);
    /* a lot: the client reads for a while */
    int rc = 0;
    for (int i = 0; up && rc == 0 && i < 64; i++)
        rc = aemp_snd(n, id, "ss", "devnull", text);
    if (up && rc == 0 && aemp_flush(n, id, be_busy, NULL) == 0)
        ++*sent;
}

static void snd_peer_writes_first(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_t s;
    server_start(&s, &loop);
    int sent = 0;
    aemp_mon_t *g = NULL;
    assert_int_equal(aemp_mon_nodes(s.n, on_up_write, &sent, &g), 0);
    char port[128];
    server_port(&s, port, sizeof port);
    for (int round = 0; round < 5; round++) {
        const char *args[] = {"snd", port, "round", "--secret", SECRET, NULL};
        cp_child_t *c = spawn(&loop, args);
        both_t b = {c, &s.rec, (size_t)round + 1};
        nt_run_until(&loop, exited_and_received, &b, 15);
        cp_expect_status(c, 0);
        assert_string_equal(c->ebuf, "");
        assert_true(c->exited_ms - c->started_ms < 3000);
        assert_int_equal(kt_rec_count(&s.rec, NULL), round + 1);
        assert_true(kt_msg_is(s.rec.ev[round].msg, "s", "round"));
        cp_free(c);
    }
    assert_int_equal(sent, 5);
    /* the five links went down as closed, never reset */
    nt_run_for(&loop, 0.1);
    assert_false(kt_log_has(&s.log, "reset"));
    aemp_mon_cancel(g);
    server_stop(&s);
    nt_loop_finish(&loop);
}

static void snd_usage_and_json_errors(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_t s;
    server_start(&s, &loop);
    char port[128], want[512];
    server_port(&s, port, sizeof port);
    /* no message */
    const char *none[] = {"snd", port, "--secret", SECRET, NULL};
    cp_child_t *c = run_cmd(&loop, none, 10);
    cp_expect_status(c, 2);
    assert_string_equal(c->ebuf, "aemp: usage: aemp snd <port> <arg...> (a "
                                 "message of at least one element)\n");
    cp_free(c);
    /* JSON-looking arguments that are not JSON */
    static const char *const bad[][2] = {
        {"{bad json", "it ends too early"},
        {"99999999999999999999", "JSON: too big integer (at byte 20)"},
        {"1e400", "JSON: real number overflow (at byte 0)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *args[] = {"snd",      port,   "x", bad[i][0],
                              "--secret", SECRET, NULL};
        c = run_cmd(&loop, args, 10);
        cp_expect_status(c, 2);
        snprintf(want, sizeof want,
                 "aemp: argument \"%s\" is not valid JSON (%s); to send every "
                 "argument as a string, use --raw\n",
                 bad[i][0], bad[i][1]);
        assert_string_equal(c->ebuf, want);
        assert_true(c->exited_ms - c->started_ms < 3000);
        cp_free(c);
    }
    /* and rpc too */
    const char *rpc[] = {"rpc", port, "1e400", "--secret", SECRET, NULL};
    c = run_cmd(&loop, rpc, 10);
    cp_expect_status(c, 2);
    assert_non_null(strstr(c->ebuf, "\"1e400\" is not valid JSON"));
    cp_free(c);
    /* --raw and -s: every argument a string */
    const char *raw[] = {"snd",  port,       "--raw", "{bad json", "42",
                         "true", "--secret", SECRET,  NULL};
    c = spawn(&loop, raw);
    both_t b = {c, &s.rec, 1};
    nt_run_until(&loop, exited_and_received, &b, 15);
    cp_expect_status(c, 0);
    cp_free(c);
    const char *raw2[] = {
        "-s",       "snd",  port, "[1", "99999999999999999999",
        "--secret", SECRET, NULL};
    c = spawn(&loop, raw2);
    b = (both_t){c, &s.rec, 2};
    nt_run_until(&loop, exited_and_received, &b, 15);
    cp_expect_status(c, 0);
    cp_free(c);
    /* port IDs, addresses, versions and dates are no numbers: strings */
    const char *words[] = {"snd",      port,         "127.0.0.1:4040#x.1",
                           "1.2.3",    "2024-01-01", "-x",
                           "--secret", SECRET,       NULL};
    c = spawn(&loop, words);
    b = (both_t){c, &s.rec, 3};
    nt_run_until(&loop, exited_and_received, &b, 15);
    cp_expect_status(c, 0);
    cp_free(c);
    assert_true(kt_msg_is(s.rec.ev[2].msg, "ssss", "127.0.0.1:4040#x.1",
                          "1.2.3", "2024-01-01", "-x"));
    /* nothing of the refused ones arrived */
    assert_int_equal(kt_rec_count(&s.rec, NULL), 3);
    assert_true(kt_msg_is(s.rec.ev[0].msg, "sss", "{bad json", "42", "true"));
    assert_true(kt_msg_is(s.rec.ev[1].msg, "ss", "[1", "99999999999999999999"));
    server_stop(&s);
    nt_loop_finish(&loop);
}

/* mon: a kill reason is printed (exit 0, tested above); a port that does
 * not exist and a lost node are errors, each time the same one. */
static void mon_exit_codes(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server_t s;
    server_start(&s, &loop);
    char nosuch[160], want[256];
    snprintf(nosuch, sizeof nosuch, "%s#nosuch.1", s.ref);
    const char *args[] = {"mon", nosuch, "--secret", SECRET, NULL};
    cp_child_t *c = run_cmd(&loop, args, 10);
    cp_expect_status(c, 1);
    snprintf(want, sizeof want, "aemp: no such port: %s\n", nosuch);
    assert_string_equal(c->ebuf, want);
    /* the reason on stdout too, as for any death */
    snprintf(want, sizeof want,
             "[\"no_such_port\",\"cannot monitor nonexistent port\",\"%s\"]\n",
             nosuch);
    assert_string_equal(c->obuf, want);
    assert_true(c->exited_ms - c->started_ms < 3000);
    cp_free(c);
    server_stop(&s);
    /* the node goes away while mon waits: "cannot reach", every time (both
     * the port's monitor and the one on its node fire) */
    for (int round = 0; round < 4; round++) {
        server_start(&s, &loop);
        char port[128];
        server_port(&s, port, sizeof port);
        args[1] = port;
        c = spawn(&loop, args);
        if (!nt_run_until(&loop, server_watched, &s, 15)) {
            cp_dump(c);
            fail_msg("aemp mon did not set up its monitor");
        }
        char ref[64];
        strcpy(ref, s.ref);
        server_stop(&s);
        cp_expect_exit(c, 10);
        cp_expect_status(c, 1);
        snprintf(want, sizeof want, "aemp: cannot reach %s: ", ref);
        if (strncmp(c->ebuf, want, strlen(want)) ||
            cp_count(c->ebuf, "\n") != 1) {
            cp_dump(c);
            fail_msg("want one line \"%s...\"", want);
        }
        snprintf(want, sizeof want, "[\"transport_error\",\"%s\",", ref);
        if (strncmp(c->obuf, want, strlen(want))) {
            cp_dump(c);
            fail_msg("stdout: want %s...", want);
        }
        cp_free(c);
    }
    nt_loop_finish(&loop);
}

static void help_per_command(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    static const char *const cmds[][2] = {
        {"snd", "usage: aemp snd <port> <arg...>\n"},
        {"rpc", "usage: aemp rpc <port> [arg...]\n"},
        {"mon", "usage: aemp mon <port>\n"},
        {"run", "usage: aemp run [noderef [seed...]]\n"},
        {"trace", "usage: aemp trace <noderef>\n"},
        {"addservice", "usage: aemp setservices NAME... | addservice NAME | "
                       "delservice NAME\n"},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        const char *help[] = {"help", cmds[i][0], NULL};
        cp_child_t *a = run_cmd(&loop, help, 10);
        cp_expect_status(a, 0);
        const char *dash[] = {cmds[i][0], "--help", NULL};
        cp_child_t *b = run_cmd(&loop, dash, 10);
        cp_expect_status(b, 0);
        assert_string_equal(a->obuf, b->obuf);
        if (strncmp(a->obuf, cmds[i][1], strlen(cmds[i][1]))) {
            cp_dump(a);
            fail_msg("aemp help %s does not begin with %s", cmds[i][0],
                     cmds[i][1]);
        }
        /* that command's help, not everything */
        assert_null(strstr(a->obuf, "network commands:"));
        assert_null(strstr(a->obuf, "usage: aemp [options]"));
        cp_free(a);
        cp_free(b);
    }
    const char *nosuch[] = {"help", "frobnicate", NULL};
    cp_child_t *c = run_cmd(&loop, nosuch, 10);
    cp_expect_status(c, 2);
    assert_string_equal(c->ebuf, "aemp: no help for \"frobnicate\": not a "
                                 "command (try aemp --help)\n");
    cp_free(c);
    /* the summary documents the logging and --raw */
    const char *all[] = {"help", NULL};
    c = run_cmd(&loop, all, 10);
    cp_expect_status(c, 0);
    assert_non_null(strstr(c->obuf, "usage: aemp [options]"));
    assert_non_null(strstr(c->obuf, "AEMP_LOGLEVEL"));
    assert_non_null(strstr(c->obuf, "-vv"));
    assert_non_null(strstr(c->obuf, "--raw"));
    cp_free(c);
    nt_loop_finish(&loop);
}

/* addservice / setservices take init function names only. */
static void addservice_checks_names(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char path[128], cfg[160];
    snprintf(path, sizeof path, "%s/services.json", dir);
    snprintf(cfg, sizeof cfg, "--config=%s", path);
    static const char *const bad[][2] = {
        {"echo", "aemp: \"echo\" is not a service name: services are init "
                 "functions named pkg::init (built in: aemp::echo, "
                 "aemp::sink; others come from modules, see aemp help "
                 "addservice)\n"},
        {"a::", NULL},
        {"::init", NULL},
        {"a b::c", NULL},
        {"aemp::ecoh", "aemp: \"aemp::ecoh\" is not a built-in service "
                       "(those are aemp::echo and aemp::sink)\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *args[] = {"--config", path, "addservice", bad[i][0], NULL};
        cp_child_t *c = run_cmd(&loop, args, 10);
        cp_expect_status(c, 1);
        if (bad[i][1])
            assert_string_equal(c->ebuf, bad[i][1]);
        else
            assert_non_null(strstr(c->ebuf, "is not a service name"));
        cp_free(c);
    }
    const char *set[] = {"--config",   path,   "setservices",
                         "aemp::sink", "nope", NULL};
    cp_child_t *c = run_cmd(&loop, set, 10);
    cp_expect_status(c, 1);
    cp_free(c);
    /* nothing was saved */
    assert_null(cp_slurp(path, NULL));
    const char *good[] = {"aemp::echo", "aemp::sink", "chat::server::init",
                          "my_pkg::init2"};
    for (size_t i = 0; i < 4; i++) {
        const char *args[] = {"--config", path, "addservice", good[i], NULL};
        run_ok(&loop, args, 10);
    }
    char *text = cp_slurp(path, NULL);
    assert_non_null(strstr(text, "chat::server::init"));
    free(text);
    unlink(path);
    snprintf(cfg, sizeof cfg, "%s.bak", path);
    unlink(cfg);
    nt_loop_finish(&loop);
}

/* AEMP_LOGLEVEL (0-9 as PERL_ANYEVENT_MP_WARNLEVEL) and -v / -vv. */
static void log_levels(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char ref[64];
    /* a node that logs errors only: it does not warn of a handshake that
     * failed */
    cp_child_t *quiet =
        start_run_env(&loop, ref, sizeof ref, "AEMP_LOGLEVEL=1");
    const char *wrong[] = {"rpc",   ref,         "info", "--secret",
                           "wrong", "--timeout", "2",    NULL};
    cp_child_t *c = run_cmd(&loop, wrong, 15);
    cp_expect_status(c, 1);
    cp_free(c);
    const char *info[] = {"rpc", ref, "info", "--secret", SECRET, NULL};
    run_ok(&loop, info, 10);
    nt_run_for(&loop, 0.2);
    assert_null(strstr(quiet->ebuf, "handshake"));
    cp_free(quiet);
    /* the default (5) warns of it */
    cp_child_t *r = start_run(&loop, ref, sizeof ref);
    wrong[1] = info[1] = ref;
    c = run_cmd(&loop, wrong, 15);
    cp_free(c);
    assert_true(cp_await_stderr(r, "handshake with", 1, 5));
    /* clients: silent by default, link events at 7, -v and -vv */
    static const char *const env[] = {NULL,
                                      "AEMP_LOGLEVEL=7",
                                      "AEMP_LOGLEVEL=info",
                                      "AEMP_LOGLEVEL=9",
                                      "AEMP_LOGLEVEL=5",
                                      "AEMP_LOGLEVEL=0"};
    for (size_t i = 0; i < 6; i++) {
        c = env[i] ? spawn_with(&loop, info, env[i]) : spawn(&loop, info);
        cp_expect_exit(c, 10);
        cp_expect_status(c, 0);
        int loud = i >= 1 && i <= 3;
        if (loud != (strstr(c->ebuf, "up (hmac_sha3_512") != NULL)) {
            cp_dump(c);
            fail_msg("%s: link events %sexpected", env[i] ? env[i] : "default",
                     loud ? "" : "not ");
        }
        cp_free(c);
    }
    const char *v[] = {"-v", "rpc", ref, "info", "--secret", SECRET, NULL};
    const char *vv[] = {"rpc", ref, "info", "-vv", "--secret", SECRET, NULL};
    for (int k = 0; k < 2; k++) {
        /* the command line wins over the environment */
        c = spawn_with(&loop, k ? vv : v, "AEMP_LOGLEVEL=0");
        cp_expect_exit(c, 10);
        cp_expect_status(c, 0);
        assert_non_null(strstr(c->ebuf, "up (hmac_sha3_512"));
        cp_free(c);
    }
    c = spawn_with(&loop, info, "AEMP_LOGLEVEL=loud");
    cp_expect_exit(c, 10);
    cp_expect_status(c, 0);
    assert_string_equal(c->ebuf, "aemp: AEMP_LOGLEVEL=loud: want 0-9 or none, "
                                 "error, warn, info, debug (using 5, "
                                 "warnings)\n");
    cp_free(c);
    cp_free(r);
    nt_loop_finish(&loop);
}

/* A request the node does not know: the node says so, naming the sender. */
static void unknown_request_logged(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char ref[64];
    cp_child_t *r = start_run_env(&loop, ref, sizeof ref, "AEMP_LOGLEVEL=7");
    const char *args[] = {"rpc",  ref,         "frobnicate", "--secret",
                          SECRET, "--timeout", "1",          NULL};
    cp_child_t *c = run_cmd(&loop, args, 10);
    cp_expect_status(c, 1);
    assert_true(cp_await_stderr(r,
                                "node port: unknown request \"frobnicate\" "
                                "from anon/",
                                1, 5));
    cp_free(c);
    cp_free(r);
    nt_loop_finish(&loop);
}

int main(void)
{
    /* a write to a child's closed pipe must not end the test run */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(run_prints_noderef_and_rpc_info),
        cmocka_unit_test(snd_delivers_json_args),
        cmocka_unit_test(snd_to_run_node),
        cmocka_unit_test(rpc_wrong_secret),
        cmocka_unit_test(client_uses_config),
        cmocka_unit_test(snd_nobody_listening),
        cmocka_unit_test(mon_prints_kill_reason),
        cmocka_unit_test(sigkill_mid_stream),
        cmocka_unit_test(relay_survives_peer_death),
        cmocka_unit_test(sigterm_clean_exit),
        cmocka_unit_test(sigint_clean_exit),
        cmocka_unit_test(usage_errors),
        cmocka_unit_test(snd_peer_writes_first),
        cmocka_unit_test(snd_usage_and_json_errors),
        cmocka_unit_test(mon_exit_codes),
        cmocka_unit_test(help_per_command),
        cmocka_unit_test(addservice_checks_names),
        cmocka_unit_test(log_levels),
        cmocka_unit_test(unknown_request_logged),
    };
    const char *filter = getenv("AEMP_TEST_FILTER");
    if (filter)
        cmocka_set_test_filter(filter);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (strcmp(dir, "/tmp/aemp-test-cli-XXXXXX") != 0)
        rmdir(dir); /* the children write nothing there */
    return rc;
}
