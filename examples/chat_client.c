/* A chat client: an anonymous node that joins the room by spawning its
 * session port on the server's node ("chat::session", with our port and
 * nick), sends it each line read from standard input, and prints what the
 * room relays to our port.  The session monitors us, so it dies with this
 * process; we monitor the session: if it goes (the server killed, or never
 * reachable) we say so and exit with status 1.  End of input leaves the
 * room: we end the session, and exit with status 0 once it is gone.
 *
 *   AEMP_SECRET=s chat_client 127.0.0.1:4050 alice */
#include <aemp.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

struct client {
    aemp_node_t *node;
    char session[256];
    int leaving, status;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tty_t tty;
    } in;
    int watching; /* in is open: standard input is a terminal or a pipe */
    char line[1024];
    size_t len;
};

static void stop_reading(struct client *c)
{
    if (c->watching && !uv_is_closing(&c->in.handle))
        uv_close(&c->in.handle, NULL);
}

/* Our session died: after we ended it (no reason), or for a reason of its
 * own ("transport_error": the server's node is lost or was never reached;
 * "die": the server refused us). */
static void on_session_gone(aemp_node_t *n, const char *port,
                            const aemp_msg_t *reason, void *user)
{
    struct client *c = user;
    if (!c->leaving || aemp_msg_len(reason)) {
        char *text = NULL;
        size_t len;
        aemp_msg_encode(reason, AEMP_JSON, &text, &len);
        printf("*** the room is gone: %s\n", text ? text : "?");
        aemp_free(text);
        c->status = 1;
    }
    stop_reading(c);
    aemp_stop(n);
}

static int on_event(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    const char *what, *nick, *text;
    if (aemp_msg_unpack(msg, "sss", &what, &nick, &text) < 0)
        return 0;
    if (!strcmp(what, "said"))
        printf("<%s> %s\n", nick, text);
    else
        printf("*** %s %s%s%s\n", nick, what, *text ? ": " : "", text);
    return 0;
}

/* Sends every line of input to the session (a long one in pieces). */
static void got_input(struct client *c, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (data[i] != '\n')
            c->line[c->len++] = data[i];
        if (data[i] == '\n' || c->len == sizeof c->line - 1) {
            c->line[c->len] = 0;
            if (c->len)
                aemp_snd(c->node, c->session, "ss", "say", c->line);
            c->len = 0;
        }
    }
}

/* End of input: the last line, even without a newline, then a normal kill
 * of the session, which the room reports as "quit"; our monitor fires once
 * the server has done it. */
static void leave(struct client *c)
{
    got_input(c, "\n", 1);
    c->leaving = 1;
    stop_reading(c);
    aemp_kil(c->node, c->session, NULL);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    static char chunk[4096];
    *buf = uv_buf_init(chunk, sizeof chunk);
}

static void on_stdin(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0)
        leave(s->data);
    else
        got_input(s->data, buf->base, (size_t)nread);
}

/* A regular file or /dev/null never blocks: read it through at once. */
static void read_through(struct client *c)
{
    char chunk[4096];
    ssize_t n;
    while ((n = read(0, chunk, sizeof chunk)) > 0)
        got_input(c, chunk, (size_t)n);
    leave(c);
}

/* The loop can watch standard input if it is a terminal or a pipe, but not
 * a regular file or /dev/null (epoll refuses them, and libuv would abort).
 * Returns 0 or a libuv error code. */
static int read_input(struct client *c)
{
    uv_loop_t *loop = aemp_node_loop(c->node);
    uv_handle_type type = uv_guess_handle(0);
    int rc;
    if (type == UV_TTY) {
        rc = uv_tty_init(loop, &c->in.tty, 0, 0);
    } else if (type == UV_NAMED_PIPE || type == UV_TCP) {
        rc = uv_pipe_init(loop, &c->in.pipe, 0);
        if (rc == 0 && (rc = uv_pipe_open(&c->in.pipe, 0)) < 0)
            uv_close(&c->in.handle, NULL);
    } else {
        read_through(c);
        return 0;
    }
    if (rc == 0) {
        c->watching = 1;
        c->in.stream.data = c;
        rc = uv_read_start(&c->in.stream, on_alloc, on_stdin);
    }
    return rc;
}

/* A closed standard input (or output) would give its descriptor to the
 * first socket or epoll instance libuv opens, which libuv then refuses to
 * close (it aborts): put /dev/null there first, which reads as EOF. */
static void open_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 &&
            open("/dev/null", fd ? O_WRONLY : O_RDONLY) != fd)
            exit(2);
}

int main(int argc, char **argv)
{
    open_std_fds();
    const char *secret = getenv("AEMP_SECRET");
    if (argc != 3 || !secret) {
        fprintf(stderr,
                "usage: AEMP_SECRET=secret chat_client <server> <nick>\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    static struct client c;
    const char *me;
    /* 5 s to reach the server, instead of the default 30 */
    aemp_netconf_t conf = {.secret = secret, .monitor_timeout = 5};
    int rc = aemp_node_new(&c.node, NULL);
    if (rc == 0)
        rc = aemp_node_configure(c.node, &conf);
    if (rc == 0)
        rc = aemp_port(c.node, on_event, &c, &me);
    if (rc == 0) /* its ID at once: we may send to it and monitor it now */
        rc = aemp_spawn(c.node, argv[1], "chat::session", c.session,
                        sizeof c.session, "ss", me, argv[2]);
    if (rc == 0)
        rc = aemp_mon_cb(c.node, c.session, on_session_gone, &c, NULL);
    if (rc < 0) {
        fprintf(stderr, "chat_client: %s\n", aemp_strerror(rc));
        return 1;
    }
    if ((rc = read_input(&c)) < 0)
        fprintf(stderr, "chat_client: standard input: %s\n", uv_strerror(rc));
    else
        aemp_run(c.node);
    stop_reading(&c);
    aemp_node_free(c.node);
    return rc < 0 ? 1 : c.status;
}
