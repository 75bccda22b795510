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
#include <unistd.h>

#ifndef AEMP_TOOL_PATH
#error "AEMP_TOOL_PATH must name the aemp binary"
#endif

#define SECRET "cli test secret"

/* ---- children --------------------------------------------------------------
 */

typedef struct child {
    uv_process_t proc;
    uv_pipe_t out, err;
    char *obuf, *ebuf;
    size_t olen, elen;
    int exited, out_eof, err_eof, closing;
    int64_t status;
    int signal;
    uint64_t started_ms, exited_ms;
    char name[64];
} child_t;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

static void append(char **dst, size_t *len, const char *src, size_t n)
{
    *dst = realloc(*dst, *len + n + 1);
    assert_non_null(*dst);
    memcpy(*dst + *len, src, n);
    *len += n;
    (*dst)[*len] = 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    child_t *c = s->data;
    bool is_out = s == (uv_stream_t *)&c->out;
    if (nread > 0)
        append(is_out ? &c->obuf : &c->ebuf, is_out ? &c->olen : &c->elen,
               buf->base, (size_t)nread);
    else if (nread < 0) {
        uv_read_stop(s);
        if (is_out)
            c->out_eof = 1;
        else
            c->err_eof = 1;
    }
    free(buf->base);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    child_t *c = p->data;
    c->exited = 1;
    c->status = status;
    c->signal = sig;
    c->exited_ms = kt_now_ms();
}

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
static child_t *spawn(uv_loop_t *loop, const char *const *args)
{
    child_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)AEMP_TOOL_PATH;
    for (; args[n - 1]; n++) {
        assert_true(n < 31);
        argv[n] = (char *)args[n - 1];
    }
    argv[n] = NULL;
    snprintf(c->name, sizeof c->name, "aemp %s", args[0]);
    uv_pipe_init(loop, &c->out, 0);
    uv_pipe_init(loop, &c->err, 0);
    c->out.data = c->err.data = c->proc.data = c;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
         .data.stream = (uv_stream_t *)&c->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
         .data.stream = (uv_stream_t *)&c->err},
    };
    uv_process_options_t o = {.exit_cb = on_exit_cb,
                              .file = AEMP_TOOL_PATH,
                              .args = argv,
                              .env = child_env(),
                              .stdio = stdio,
                              .stdio_count = 3};
    int rc = uv_spawn(loop, &c->proc, &o);
    if (rc)
        fail_msg("cannot start %s: %s", AEMP_TOOL_PATH, uv_strerror(rc));
    c->started_ms = kt_now_ms();
    uv_read_start((uv_stream_t *)&c->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&c->err, on_alloc, on_read);
    return c;
}

static int child_done(void *arg)
{
    child_t *c = arg;
    return c->exited && c->out_eof && c->err_eof;
}

static void dump(const child_t *c)
{
    fprintf(stderr, "--- %s: exited %d status %lld signal %d\n", c->name,
            c->exited, (long long)c->status, c->signal);
    fprintf(stderr, "stdout: %s\nstderr: %s\n", c->obuf ? c->obuf : "",
            c->ebuf ? c->ebuf : "");
}

/* Runs until c has exited (and its output is in), at most `seconds`;
 * fails (after killing it) if it did not. */
static void await_exit(uv_loop_t *loop, child_t *c, double seconds)
{
    if (!nt_run_until(loop, child_done, c, seconds)) {
        uv_process_kill(&c->proc, SIGKILL);
        nt_run_until(loop, child_done, c, 5);
        dump(c);
        fail_msg("%s did not exit within %.1f s", c->name, seconds);
    }
}

static void child_closed(uv_handle_t *h)
{
    child_t *c = h->data;
    if (--c->closing == 0) {
        free(c->obuf);
        free(c->ebuf);
        free(c);
    }
}

/* Kills it if still running, reaps it, and frees it. */
static void child_free(uv_loop_t *loop, child_t *c)
{
    if (!c->exited) {
        uv_process_kill(&c->proc, SIGKILL);
        nt_run_until(loop, child_done, c, 10);
    }
    c->closing = 3;
    uv_close((uv_handle_t *)&c->proc, child_closed);
    uv_close((uv_handle_t *)&c->out, child_closed);
    uv_close((uv_handle_t *)&c->err, child_closed);
}

static int has_line(void *arg)
{
    child_t *c = arg;
    return (c->obuf && strchr(c->obuf, '\n')) || c->exited;
}

typedef struct text_cond {
    child_t *c;
    const char *needle;
    int count;
} text_cond_t;

static int count_in(const char *hay, const char *needle)
{
    int k = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)); p++)
        k++;
    return k;
}

static int stderr_has(void *arg)
{
    text_cond_t *t = arg;
    return count_in(t->c->ebuf, t->needle) >= t->count || t->c->exited;
}

/* `aemp run 127.0.0.1:<free port>`; *ref gets the noderef it printed. */
static child_t *start_run(uv_loop_t *loop, char *ref, size_t size)
{
    for (int tries = 0; tries < 10; tries++) {
        char want[64];
        snprintf(want, sizeof want, "127.0.0.1:%d", nt_free_port());
        const char *args[] = {"run", want, "--secret", SECRET, NULL};
        child_t *c = spawn(loop, args);
        nt_run_until(loop, has_line, c, 10);
        if (c->obuf && strchr(c->obuf, '\n')) {
            /* the noderef is the first thing it prints */
            size_t n = (size_t)(strchr(c->obuf, '\n') - c->obuf);
            assert_true(n < size);
            memcpy(ref, c->obuf, n);
            ref[n] = 0;
            assert_string_equal(ref, want);
            return c;
        }
        if (!c->exited) {
            dump(c);
            fail_msg("aemp run printed nothing within 10 s");
        }
        /* the port was taken in the meantime: try another */
        await_exit(loop, c, 5);
        child_free(loop, c);
    }
    fail_msg("aemp run did not start");
    return NULL;
}

/* Runs `aemp <args...>` to completion; returns the child (yours). */
static child_t *run_cmd(uv_loop_t *loop, const char *const *args,
                        double seconds)
{
    child_t *c = spawn(loop, args);
    await_exit(loop, c, seconds);
    return c;
}

static void expect_exit(child_t *c, int status)
{
    if (c->signal || c->status != status) {
        dump(c);
        fail_msg("%s: exit status %lld (signal %d), want %d", c->name,
                 (long long)c->status, c->signal, status);
    }
}

static void expect_failure(child_t *c)
{
    if (c->signal || c->status == 0) {
        dump(c);
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
    int rc = AEMP_ESYS;
    for (int tries = 0; rc == AEMP_ESYS && tries < 10; tries++) {
        snprintf(s->ref, sizeof s->ref, "127.0.0.1:%d", nt_free_port());
        rc = aemp_node_listen(s->n, s->ref);
    }
    assert_int_equal(rc, 0);
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
    child_t *c;
    const kt_rec_t *rec;
    size_t want;
} both_t;

static int exited_and_received(void *arg)
{
    both_t *b = arg;
    return child_done(b->c) && kt_rec_count(b->rec, NULL) >= b->want;
}

/* ==== tests
 * ========================================================================= */

static void run_prints_noderef_and_rpc_info(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char ref[64], want[96];
    child_t *r = start_run(&loop, ref, sizeof ref);
    const char *info[] = {"rpc",  ref,         "info", "--secret",
                          SECRET, "--timeout", "5",    NULL};
    child_t *c = run_cmd(&loop, info, 15);
    expect_exit(c, 0);
    snprintf(want, sizeof want, "[\"%s\"]\n", ref);
    assert_string_equal(c->obuf ? c->obuf : "", want);
    child_free(&loop, c);
    /* extra leading elements of the reply target come back first */
    const char *time_[] = {"rpc", ref, "time", "--secret", SECRET, NULL};
    c = run_cmd(&loop, time_, 15);
    expect_exit(c, 0);
    double t;
    assert_int_equal(sscanf(c->obuf, "[%lf]", &t), 1);
    assert_true(t > 1.6e9);
    child_free(&loop, c);
    /* options may come before the command, secret from the environment */
    const char *up[] = {"--timeout", "5",        "rpc",  ref,
                        "up_nodes",  "--secret", SECRET, NULL};
    c = run_cmd(&loop, up, 15);
    expect_exit(c, 0);
    assert_true(c->obuf && c->obuf[0] == '[');
    child_free(&loop, c);
    assert_false(r->exited);
    child_free(&loop, r);
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
    child_t *c = spawn(&loop, args);
    both_t b = {c, &s.rec, 1};
    nt_run_until(&loop, exited_and_received, &b, 15);
    expect_exit(c, 0);
    assert_int_equal(kt_rec_count(&s.rec, NULL), 1);
    assert_true(kt_msg_is(s.rec.ev[0].msg, "si[ii]{i}ssd", "hello", 42, 1, 2,
                          "a", 1, "quoted", "plain text", -7.5));
    child_free(&loop, c);
    /* to a node port: exits 0 once written */
    const char *dn[] = {"snd", s.ref, "devnull", "--secret", SECRET, NULL};
    c = run_cmd(&loop, dn, 15);
    expect_exit(c, 0);
    child_free(&loop, c);
    server_stop(&s);
    nt_loop_finish(&loop);
}

static void snd_to_run_node(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char ref[64];
    child_t *r = start_run(&loop, ref, sizeof ref);
    const char *args[] = {"snd", ref, "devnull", "x", "--secret", SECRET, NULL};
    child_t *c = run_cmd(&loop, args, 15);
    expect_exit(c, 0);
    child_free(&loop, c);
    child_free(&loop, r);
    nt_loop_finish(&loop);
}

static void rpc_wrong_secret(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char ref[64];
    child_t *r = start_run(&loop, ref, sizeof ref);
    const char *args[] = {
        "rpc",       ref, "info", "--secret", "not the secret",
        "--timeout", "2", NULL};
    child_t *c = run_cmd(&loop, args, 15);
    expect_failure(c);
    if (!c->ebuf || !strstr(c->ebuf, "authentication")) {
        dump(c);
        fail_msg("the error does not mention authentication");
    }
    assert_true(c->exited_ms - c->started_ms < 6000);
    /* the node says so too */
    text_cond_t t = {r, "authentication", 1};
    assert_true(nt_run_until(&loop, stderr_has, &t, 5));
    child_free(&loop, c);
    child_free(&loop, r);
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
    child_t *c = run_cmd(&loop, args, 15);
    expect_failure(c);
    uint64_t ms = c->exited_ms - c->started_ms;
    fprintf(stderr, "  snd gave up after %llu ms: %s", (unsigned long long)ms,
            c->ebuf ? c->ebuf : "(nothing)\n");
    assert_true(ms < 3500);
    assert_true(c->ebuf && strlen(c->ebuf) > 0);
    child_free(&loop, c);
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
    child_t *m = spawn(&loop, mon);
    /* its mon1 reached us */
    if (!nt_run_until(&loop, server_watched, &s, 15)) {
        dump(m);
        fail_msg("aemp mon did not set up its monitor");
    }
    assert_false(m->exited);
    /* the node port's kil takes the port name (after '#') */
    const char *kil[] = {"snd",    s.ref, "kil",      strchr(port, '#') + 1,
                         "reason", "x",   "--secret", SECRET,
                         NULL};
    child_t *k = run_cmd(&loop, kil, 15);
    expect_exit(k, 0);
    await_exit(&loop, m, 15);
    expect_exit(m, 0);
    assert_string_equal(m->obuf ? m->obuf : "", "[\"reason\",\"x\"]\n");
    assert_false(aemp_port_exists(s.n, port));
    child_free(&loop, k);
    child_free(&loop, m);
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
    child_t *r = start_run(&loop, ref, sizeof ref);
    streamer_t st = {s.n, ref, 0, 0, NULL};
    assert_int_equal(aemp_mon_cb(s.n, ref, on_fired, &st, NULL), 0);
    const char *mon[] = {"mon",       ref, "--secret", SECRET,
                         "--timeout", "3", NULL};
    child_t *m = spawn(&loop, mon);
    /* both are connected: the node logs each one coming up */
    text_cond_t t = {r, " up", 2};
    nt_run_until(&loop, sent_enough, &st, 15);
    if (!nt_run_until(&loop, stderr_has, &t, 15)) {
        dump(r);
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
    await_exit(&loop, m, 10);
    fprintf(stderr, "  aemp mon ended %llu ms after the kill: %s%s",
            (unsigned long long)(m->exited_ms - t0), m->obuf ? m->obuf : "",
            m->ebuf ? m->ebuf : "");
    assert_true(m->exited_ms - t0 < 6000);
    assert_int_equal(m->signal, 0);
    /* it reports the loss, as a reason or as an error */
    assert_true((m->obuf && strstr(m->obuf, "transport_error")) ||
                (m->ebuf && strstr(m->ebuf, ref)));
    await_exit(&loop, r, 5);
    assert_int_equal(r->signal, SIGKILL);
    aemp_msg_unref(st.reason);
    child_free(&loop, m);
    child_free(&loop, r);
    server_stop(&s);
    nt_loop_finish(&loop);
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
    child_t *r1 = start_run(&loop, r1ref, sizeof r1ref);
    child_t *r2 = start_run(&loop, r2ref, sizeof r2ref);
    /* ["snd", r2, "devnull", i] to r1: r1 relays to r2's node port */
    long sent = 0;
    text_cond_t up = {r2, " up", 1};
    for (int round = 0; round < 200 && !stderr_has(&up); round++) {
        for (int i = 0; i < 100; i++, sent++)
            aemp_snd(s.n, r1ref, "sssi", "snd", r2ref, "devnull", (int)sent);
        nt_run_for(&loop, 0.01);
    }
    assert_true(stderr_has(&up));
    assert_int_equal(uv_process_kill(&r2->proc, SIGKILL), 0);
    /* keep relaying into the dead node for a while */
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 200; i++, sent++)
            aemp_snd(s.n, r1ref, "sssi", "snd", r2ref, "devnull", (int)sent);
        nt_run_for(&loop, 0.01);
    }
    await_exit(&loop, r2, 5);
    if (r1->exited) {
        dump(r1);
        fail_msg("aemp run died (signal %d%s) when the node it relayed to "
                 "went away",
                 r1->signal, r1->signal == SIGPIPE ? ": SIGPIPE" : "");
    }
    const char *info[] = {"rpc", r1ref, "info", "--secret", SECRET, NULL};
    child_t *c = run_cmd(&loop, info, 15);
    expect_exit(c, 0);
    child_free(&loop, c);
    child_free(&loop, r1);
    child_free(&loop, r2);
    server_stop(&s);
    nt_loop_finish(&loop);
}

static void sigterm_clean_exit_sig(int sig)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char ref[64];
    child_t *r = start_run(&loop, ref, sizeof ref);
    /* with a link up, so that there is something to shut down */
    server_t s;
    server_start(&s, &loop);
    assert_int_equal(aemp_snd(s.n, ref, "s", "devnull"), 0);
    text_cond_t t = {r, " up", 1};
    assert_true(nt_run_until(&loop, stderr_has, &t, 10));
    assert_int_equal(uv_process_kill(&r->proc, sig), 0);
    await_exit(&loop, r, 10);
    expect_exit(r, 0);
    assert_non_null(strstr(r->ebuf, sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    assert_true(r->exited_ms - r->started_ms < 20000);
    child_free(&loop, r);
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
    child_t *c = run_cmd(&loop, help, 10);
    expect_exit(c, 0);
    assert_non_null(strstr(c->obuf, "usage"));
    child_free(&loop, c);
    const char *bad[] = {"run", "127.0.0.1:99999", "--secret", SECRET, NULL};
    c = run_cmd(&loop, bad, 10);
    expect_failure(c); /* no such port */
    child_free(&loop, c);
    /* no secret anywhere (the environment's is not passed on) */
    const char *nosecret[] = {"snd",       "127.0.0.1:1", "x",
                              "--timeout", "2",           NULL};
    c = run_cmd(&loop, nosecret, 10);
    expect_failure(c);
    assert_non_null(strstr(c->ebuf, "secret"));
    child_free(&loop, c);
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
        cmocka_unit_test(snd_nobody_listening),
        cmocka_unit_test(mon_prints_kill_reason),
        cmocka_unit_test(sigkill_mid_stream),
        cmocka_unit_test(relay_survives_peer_death),
        cmocka_unit_test(sigterm_clean_exit),
        cmocka_unit_test(sigint_clean_exit),
        cmocka_unit_test(usage_errors),
    };
    const char *filter = getenv("AEMP_TEST_FILTER");
    if (filter)
        cmocka_set_test_filter(filter);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (strcmp(dir, "/tmp/aemp-test-cli-XXXXXX") != 0)
        rmdir(dir); /* the children write nothing there */
    return rc;
}
