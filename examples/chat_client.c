/* A chat client: an anonymous node that asks the server's node port where
 * the room is, joins it, and sends each line typed on standard input.
 * It watches the room: if the server goes away, the client says so and
 * exits.  End of input leaves the room.
 *
 *   AEMP_SECRET=s chat_client 127.0.0.1:4050 alice */
#include <aemp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct client {
    aemp_node_t *node;
    const char *me, *nick, *server;
    char *room;
    uv_pipe_t in;
    char line[1024];
    size_t len;
    int status;
};

static void on_room_gone(aemp_node_t *n, const char *port,
                         const aemp_msg_t *reason, void *user)
{
    struct client *c = user;
    char *text = NULL;
    size_t len;
    aemp_msg_encode(reason, AEMP_JSON, &text, &len);
    printf("*** the room is gone: %s\n", text ? text : "?");
    aemp_free(text);
    c->status = 1;
    if (!uv_is_closing((uv_handle_t *)&c->in))
        uv_close((uv_handle_t *)&c->in, NULL);
    aemp_stop(n);
}

static void on_flushed(aemp_node_t *n, int status, void *user)
{
    aemp_stop(n);
}

/* Our port is gone, and the server's monitor of it has been told (its
 * notice was queued first): once that is written, we are done. */
static void on_left(aemp_node_t *n, const char *port, const aemp_msg_t *reason,
                    void *user)
{
    struct client *c = user;
    aemp_flush(n, c->server, on_flushed, c);
}

static int on_room(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct client *c = user;
    const char *room;
    if (aemp_msg_unpack(msg, "s", &room) < 0 || c->room)
        return 0;
    c->room = strdup(room);
    aemp_mon_cb(c->node, room, on_room_gone, c, NULL);
    return aemp_snd(c->node, room, "sss", "join", c->me, c->nick);
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

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    static char chunk[4096];
    *buf = uv_buf_init(chunk, sizeof chunk);
}

static void on_stdin(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct client *c = s->data;
    if (nread < 0) { /* end of input: leave (a normal kill of our port) */
        uv_close((uv_handle_t *)&c->in, NULL);
        aemp_mon_cb(c->node, c->me, on_left, c, NULL);
        aemp_kil(c->node, c->me, NULL);
        return;
    }
    for (ssize_t i = 0; i < nread; i++) {
        char ch = buf->base[i];
        if (ch != '\n' && c->len < sizeof c->line - 1) {
            c->line[c->len++] = ch;
            continue;
        }
        c->line[c->len] = 0;
        if (c->len && c->room)
            aemp_snd(c->node, c->room, "sss", "say", c->me, c->line);
        c->len = 0;
    }
}

int main(int argc, char **argv)
{
    const char *secret = getenv("AEMP_SECRET");
    if (argc != 3 || !secret) {
        fprintf(stderr,
                "usage: AEMP_SECRET=secret chat_client <server> <nick>\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    static struct client c;
    c.server = argv[1];
    c.nick = argv[2];
    aemp_netconf_t conf = {.secret = secret, .monitor_timeout = 5};
    int rc = aemp_node_new(&c.node, NULL);
    if (rc == 0)
        rc = aemp_node_configure(c.node, &conf);
    if (rc == 0)
        rc = aemp_port(c.node, on_event, &c, &c.me);
    if (rc == 0)
        rc = aemp_rcv_tag(c.node, c.me, "room", on_room, &c);
    if (rc == 0) /* the server's node port answers where the room is */
        rc = aemp_snd(c.node, argv[1], "ss", "chat::room", c.me);
    if (rc == 0) /* and tells us if the server cannot be reached */
        rc = aemp_mon_cb(c.node, argv[1], on_room_gone, &c, NULL);
    if (rc < 0) {
        fprintf(stderr, "chat_client: %s\n", aemp_strerror(rc));
        return 1;
    }
    uv_pipe_init(aemp_node_loop(c.node), &c.in, 0);
    uv_pipe_open(&c.in, 0);
    c.in.data = &c;
    uv_read_start((uv_stream_t *)&c.in, on_alloc, on_stdin);
    aemp_run(c.node);
    aemp_node_free(c.node);
    free(c.room);
    return c.status;
}
