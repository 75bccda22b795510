/* The examples, run as real processes: pingpong's count and exit status;
 * a chat room with clients in processes of their own, each spawning its
 * session on the server's node — joining, talking, a client killed with
 * SIGKILL (the others hear it left), a client leaving at end of input,
 * input from a regular file or /dev/null, and the server going away; and
 * the job pool on `aemp run` nodes serving the module jobs.so — every
 * result exactly once, also when a node is killed mid-run, and a node
 * without the module. */
#include "helpers.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef AEMP_TOOL_PATH
#error "AEMP_TOOL_PATH must name the aemp binary"
#endif

#define EXAMPLE(name) AEMP_EXAMPLES_DIR "/" name

static void pingpong_counts(void **state)
{
    const char *argv[] = {"pingpong", "1000", NULL};
    cp_result_t r = cp_run(EXAMPLE("pingpong"), argv, 60);
    if (r.status != 0 || !strstr(r.out, "1000 round trips (2000 messages)"))
        fail_msg("pingpong: status %d, output:\n%s\n%s", r.status, r.out,
                 r.err);
    cp_result_free(&r);
    /* and a bad argument is an error, not a crash */
    const char *bad[] = {"pingpong", "-5", NULL};
    r = cp_run(EXAMPLE("pingpong"), bad, 60);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "usage"));
    cp_result_free(&r);
}

/* ---- chat ------------------------------------------------------------------ */

typedef struct chat {
    uv_loop_t loop;
    char dir[64], ref[64];
    cp_child_t *server;
} chat_t;

/* A client reading its standard input from a FIFO the test writes to. */
typedef struct client {
    cp_child_t *c;
    int fd; /* the FIFO's write side (-1: closed, end of input) */
} client_t;

static int chat_setup(void **state)
{
    chat_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    uv_loop_init(&t->loop);
    snprintf(t->dir, sizeof t->dir, "/tmp/aemp-examples-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    setenv("AEMP_SECRET", "examples-secret", 1);
    snprintf(t->ref, sizeof t->ref, "127.0.0.1:%d", nt_free_port());
    const char *argv[] = {"chat_server", t->ref, NULL};
    t->server = cp_spawn(&t->loop, EXAMPLE("chat_server"), argv);
    if (!cp_await_stdout(t->server, "chat room", 1, 20)) {
        cp_dump(t->server);
        fail_msg("chat_server did not start");
    }
    *state = t;
    return 0;
}

static int chat_teardown(void **state)
{
    chat_t *t = *state;
    cp_free(t->server);
    nt_loop_finish(&t->loop);
    cp_rm_rf(t->dir);
    free(t);
    return 0;
}

static client_t client_start(chat_t *t, const char *nick)
{
    char fifo[128], cmd[512];
    snprintf(fifo, sizeof fifo, "%s/%s.in", t->dir, nick);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* read and write: opening does not wait for the reader */
    client_t cl = {NULL, open(fifo, O_RDWR | O_CLOEXEC)};
    assert_true(cl.fd >= 0);
    snprintf(cmd, sizeof cmd, "exec '%s' '%s' '%s' < '%s'",
             EXAMPLE("chat_client"), t->ref, nick, fifo);
    const char *argv[] = {"sh", "-c", cmd, NULL};
    cl.c = cp_spawn(&t->loop, "/bin/sh", argv);
    return cl;
}

static void client_say(client_t *cl, const char *line)
{
    size_t len = strlen(line);
    assert_int_equal(write(cl->fd, line, len), (ssize_t)len);
    assert_int_equal(write(cl->fd, "\n", 1), 1);
}

static void client_eof(client_t *cl)
{
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
}

static void client_free(client_t *cl)
{
    client_eof(cl);
    cp_free(cl->c);
}

static void expect_out(cp_child_t *c, const char *text)
{
    if (!cp_await_stdout(c, text, 1, 20)) {
        cp_dump(c);
        fail_msg("no \"%s\" in the output of %s", text, c->name);
    }
}

static void chat_room(void **state)
{
    chat_t *t = *state;
    client_t alice = client_start(t, "alice");
    expect_out(t->server, "alice joined");
    client_t bob = client_start(t, "bob");
    expect_out(t->server, "bob joined");
    expect_out(alice.c, "*** bob joined");

    client_say(&alice, "hello from alice");
    expect_out(bob.c, "<alice> hello from alice");
    expect_out(alice.c, "<alice> hello from alice");
    expect_out(t->server, "<alice> hello from alice");
    client_say(&bob, "and bob");
    expect_out(alice.c, "<bob> and bob");

    /* bob's process dies without a word: the room's monitor notices */
    cp_kill(bob.c, SIGKILL);
    expect_out(t->server, "bob left");
    expect_out(alice.c, "*** bob left");

    /* end of input: alice leaves the room and exits cleanly */
    client_eof(&alice);
    expect_out(t->server, "alice left");
    assert_true(cp_await_exit(alice.c, 20));
    assert_int_equal(alice.c->status, 0);

    client_free(&alice);
    client_free(&bob);
}

/* A client started with standard input `input` (a shell redirection). */
static cp_child_t *client_start_from(chat_t *t, const char *nick,
                                     const char *input)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "exec '%s' '%s' '%s' < '%s'",
             EXAMPLE("chat_client"), t->ref, nick, input);
    const char *argv[] = {"sh", "-c", cmd, NULL};
    return cp_spawn(&t->loop, "/bin/sh", argv);
}

/* Standard input that the loop cannot watch, a regular file or /dev/null:
 * the client sends every line (the last one without a newline too), leaves
 * and exits cleanly. */
static void chat_input_not_a_pipe(void **state)
{
    chat_t *t = *state;
    char file[128];
    snprintf(file, sizeof file, "%s/lines", t->dir);
    cp_write_file(file, "hello from a file\nno newline at the end");
    cp_child_t *erin = client_start_from(t, "erin", file);
    expect_out(t->server, "<erin> hello from a file");
    expect_out(t->server, "<erin> no newline at the end");
    expect_out(t->server, "erin left (quit)");
    cp_expect_exit(erin, 20);
    cp_expect_status(erin, 0);
    cp_child_t *frank = client_start_from(t, "frank", "/dev/null");
    expect_out(t->server, "frank joined");
    expect_out(t->server, "frank left (quit)");
    cp_expect_exit(frank, 20);
    cp_expect_status(frank, 0);
    /* closed: as /dev/null (libuv must not get descriptor 0) */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "exec '%s' '%s' gina <&-", EXAMPLE("chat_client"),
             t->ref);
    const char *argv[] = {"sh", "-c", cmd, NULL};
    cp_child_t *gina = cp_spawn(&t->loop, "/bin/sh", argv);
    expect_out(t->server, "gina joined");
    expect_out(t->server, "gina left (quit)");
    cp_expect_exit(gina, 20);
    cp_expect_status(gina, 0);
    cp_free(erin);
    cp_free(frank);
    cp_free(gina);
}

static void chat_server_gone(void **state)
{
    chat_t *t = *state;
    client_t carol = client_start(t, "carol");
    expect_out(t->server, "carol joined");
    cp_kill(t->server, SIGKILL);
    expect_out(carol.c, "*** the room is gone: [\"transport_error\"");
    assert_true(cp_await_exit(carol.c, 20));
    assert_int_equal(carol.c->status, 1);
    client_free(&carol);
}

/* A client whose server is not there gives up within its monitor
 * timeout (5 s in the example) with the reason. */
static void chat_no_server(void **state)
{
    chat_t *t = *state;
    cp_kill(t->server, SIGKILL);
    assert_true(cp_await_exit(t->server, 20));
    client_t dave = client_start(t, "dave");
    expect_out(dave.c, "*** the room is gone: [\"transport_error\"");
    assert_true(cp_await_exit(dave.c, 20));
    assert_int_equal(dave.c->status, 1);
    client_free(&dave);
}

/* ---- job pool ---------------------------------------------------------- */

#define POOL_NODES 3

typedef struct pool {
    uv_loop_t loop;
    char dir[64], cfg[96];
    cp_child_t *nodes[POOL_NODES];
    char refs[POOL_NODES][64];
} pool_t;

/* An `aemp run` node on a free port of 127.0.0.1 with the examples'
 * directory (jobs.so) on its module path, or none; ref gets its noderef. */
static cp_child_t *node_start(pool_t *t, int with_module, char *ref,
                              size_t size)
{
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", nt_free_port());
    const char *argv[] = {"aemp",
                          "run",
                          want,
                          "--config",
                          t->cfg,
                          with_module ? "--module-path" : NULL,
                          AEMP_EXAMPLES_DIR,
                          NULL};
    cp_child_t *c = cp_spawn(&t->loop, AEMP_TOOL_PATH, argv);
    if (!cp_await_stdout(c, "\n", 1, 20)) {
        cp_dump(c);
        fail_msg("aemp run %s did not start", want);
    }
    cp_first_line(c, ref, size);
    return c;
}

static int pool_setup(void **state)
{
    pool_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    uv_loop_init(&t->loop);
    snprintf(t->dir, sizeof t->dir, "/tmp/aemp-examples-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    /* the secret from the environment, nothing from the user's files */
    setenv("AEMP_SECRET", "examples-secret", 1);
    unsetenv("AEMP_MODULE_PATH");
    snprintf(t->cfg, sizeof t->cfg, "%s/config.json", t->dir);
    for (int i = 0; i < POOL_NODES; i++)
        t->nodes[i] = node_start(t, 1, t->refs[i], sizeof t->refs[i]);
    *state = t;
    return 0;
}

static int pool_teardown(void **state)
{
    pool_t *t = *state;
    for (int i = 0; i < POOL_NODES; i++)
        cp_free(t->nodes[i]);
    nt_loop_finish(&t->loop);
    cp_rm_rf(t->dir);
    free(t);
    return 0;
}

/* job_pool -j jobs -w workers <every node> */
static cp_child_t *pool_start(pool_t *t, int jobs, int workers)
{
    char j[16], w[16];
    snprintf(j, sizeof j, "%d", jobs);
    snprintf(w, sizeof w, "%d", workers);
    const char *argv[] = {"job_pool", "-j",       j,          "-w", w,
                          t->refs[0], t->refs[1], t->refs[2], NULL};
    return cp_spawn(&t->loop, EXAMPLE("job_pool"), argv);
}

/* The line after l's, NULL after the last. */
static const char *next_line(const char *l)
{
    l = strchr(l, '\n');
    return l ? l + 1 : NULL;
}

/* The output of a finished run: every job 0..jobs-1 reported exactly once
 * with the number of primes in its range (checked against a sieve), and
 * the summary's total, the number of primes below jobs' end. */
static void check_results(const char *out, int jobs)
{
    int below = 0;
    long total = 0;
    const char *summary = strstr(out, "done: ");
    if (!summary || sscanf(summary, "done: %*d jobs, %ld primes below %d",
                           &total, &below) != 2)
        fail_msg("no summary in:\n%s", out);
    assert_true(below > 0 && below <= 100000000);
    /* pi[x]: primes below x */
    unsigned char *composite = calloc((size_t)below + 1, 1);
    int *pi = calloc((size_t)below + 1, sizeof *pi);
    int *seen = calloc((size_t)jobs, sizeof *seen);
    assert_true(composite && pi && seen);
    for (long x = 2; x * x <= below; x++)
        for (long y = x * x; !composite[x] && y <= below; y += x)
            composite[y] = 1;
    for (int x = 1; x <= below; x++)
        pi[x] = pi[x - 1] + (x - 1 >= 2 && !composite[x - 1]);
    long sum = 0;
    for (const char *l = out; l; l = next_line(l)) {
        int id, count, from, to;
        if (sscanf(l, "job %d: %d primes in [%d, %d)", &id, &count, &from,
                   &to) != 4)
            continue;
        assert_true(id >= 0 && id < jobs && from >= 0 && to <= below);
        assert_int_equal(count, pi[to] - pi[from]);
        seen[id]++;
        sum += count;
    }
    for (int i = 0; i < jobs; i++)
        if (seen[i] != 1)
            fail_msg("job %d reported %d times in:\n%s", i, seen[i], out);
    assert_int_equal(sum, total);
    assert_int_equal(total, pi[below]);
    free(composite);
    free(pi);
    free(seen);
}

static void pool_completes(void **state)
{
    pool_t *t = *state;
    cp_child_t *c = pool_start(t, 30, 6);
    cp_expect_exit(c, 60);
    cp_expect_status(c, 0);
    check_results(c->obuf, 30);
    assert_non_null(strstr(c->obuf, "done: 30 jobs, 216816 primes below "
                                    "3000000, 0 worker(s) replaced"));
    for (int i = 0; i < POOL_NODES; i++) { /* the work was shared */
        char on[96];
        snprintf(on, sizeof on, "on %s\n", t->refs[i]);
        assert_true(cp_count(c->obuf, on) > 0);
    }
    /* no worker outlives the coordinator: `aemp mon` ends, with "no such
     * port" (status 1) for one that is gone already (it would time out on
     * a port that lives) */
    char worker[160];
    const char *line = strstr(c->obuf, "\nworker ");
    assert_non_null(line);
    assert_int_equal(sscanf(line, "\nworker %159s", worker), 1);
    const char *argv[] = {"aemp", "mon", worker, "--config", t->cfg, NULL};
    cp_result_t r = cp_run(AEMP_TOOL_PATH, argv, 30);
    if (r.status != 0 && (r.status != 1 || !strstr(r.err, "no such port: ")))
        fail_msg("%s lives on: status %d\n%s%s", worker, r.status, r.out,
                 r.err);
    cp_result_free(&r);
    cp_free(c);
}

/* A node killed while it works: its workers' jobs are redone on the
 * others, and nothing it did after its death is counted. */
static void pool_node_killed(void **state)
{
    pool_t *t = *state;
    cp_child_t *c = pool_start(t, 60, 6);
    char on1[96], died[160];
    /* node 1 is at work: a result from it (")" ends the job's range, so
     * that "worker ... starts on <node 1>" does not count) */
    snprintf(on1, sizeof on1, ") on %s\n", t->refs[1]);
    expect_out(c, on1);
    cp_kill(t->nodes[1], SIGKILL);
    cp_expect_exit(c, 60);
    cp_expect_status(c, 0);
    check_results(c->obuf, 60);
    snprintf(died, sizeof died, "died: [\"transport_error\",\"%s\"",
             t->refs[1]);
    if (cp_count(c->obuf, died) != 2 ||
        cp_count(c->obuf, "goes back in the queue") < 1)
        fail_msg("node 1's two workers should have died with jobs:\n%s",
                 c->obuf);
    assert_null(strstr(strstr(c->obuf, died), on1));
    assert_non_null(strstr(c->obuf, "2 worker(s) replaced"));
    cp_free(c);
}

/* A node that has not got the module: the workers die with the reason,
 * and the coordinator gives up instead of trying forever. */
static void pool_no_module(void **state)
{
    pool_t *t = *state;
    char ref[64];
    cp_child_t *bare = node_start(t, 0, ref, sizeof ref);
    const char *argv[] = {"job_pool", "-j", "3", ref, NULL};
    cp_child_t *c = cp_spawn(&t->loop, EXAMPLE("job_pool"), argv);
    cp_expect_exit(c, 60);
    cp_expect_status(c, 1);
    assert_non_null(strstr(c->obuf, "unable to resolve 'jobs::worker'"));
    assert_non_null(strstr(c->ebuf, "giving up: too many workers died"));
    cp_free(c);
    cp_free(bare);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pingpong_counts),
        cmocka_unit_test_setup_teardown(chat_room, chat_setup, chat_teardown),
        cmocka_unit_test_setup_teardown(chat_input_not_a_pipe, chat_setup,
                                        chat_teardown),
        cmocka_unit_test_setup_teardown(chat_server_gone, chat_setup,
                                        chat_teardown),
        cmocka_unit_test_setup_teardown(chat_no_server, chat_setup,
                                        chat_teardown),
        cmocka_unit_test_setup_teardown(pool_completes, pool_setup,
                                        pool_teardown),
        cmocka_unit_test_setup_teardown(pool_node_killed, pool_setup,
                                        pool_teardown),
        cmocka_unit_test_setup_teardown(pool_no_module, pool_setup,
                                        pool_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
