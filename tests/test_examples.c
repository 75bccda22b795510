/* The examples, run as real processes: pingpong's count and exit status,
 * and a chat room with clients in processes of their own — joining,
 * talking, a client killed with SIGKILL (the others hear it left), a
 * client leaving at end of input, and the server going away. */
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

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pingpong_counts),
        cmocka_unit_test_setup_teardown(chat_room, chat_setup, chat_teardown),
        cmocka_unit_test_setup_teardown(chat_server_gone, chat_setup,
                                        chat_teardown),
        cmocka_unit_test_setup_teardown(chat_no_server, chat_setup,
                                        chat_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
