/* A chat room on a public node.  A client joins by spawning its session
 * port here: "chat::session", registered below, with the client's port and
 * nick.  Session and client monitor each other: the session dies with the
 * client (its process killed, its node lost), and the client notices when
 * its session, that is the server, goes.  The room is the list of sessions;
 * it relays every line to every client.
 *
 *   AEMP_SECRET=s chat_server 127.0.0.1:4050
 *
 * Messages:  ["say", <text>]                    client -> its session
 *            ["joined", <nick>, ""], ["left", <nick>, <why>],
 *            ["said", <nick>, <text>]           room -> every client */
#include <aemp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SESSIONS 256

struct session {
    char *port, *client, *nick;
};

struct room {
    struct session sessions[MAX_SESSIONS];
    int count;
};

/* Sends [what, nick, text] to every client. */
static void broadcast(aemp_node_t *n, struct room *r, const char *what,
                      const char *nick, const char *text)
{
    for (int i = 0; i < r->count; i++)
        aemp_snd(n, r->sessions[i].client, "sss", what, nick, text);
}

static struct session *find(struct room *r, const char *port)
{
    for (int i = 0; i < r->count; i++)
        if (!strcmp(r->sessions[i].port, port))
            return &r->sessions[i];
    return NULL;
}

static void session_free(struct session *s)
{
    free(s->port);
    free(s->client);
    free(s->nick);
}

/* A session died: killed by its client leaving (a normal kill, no reason),
 * or by its monitor of the client, with the reason the client died. */
static void on_session_gone(aemp_node_t *n, const char *port,
                            const aemp_msg_t *reason, void *user)
{
    struct room *r = user;
    struct session *s = find(r, port), gone;
    if (!s)
        return; /* its init failed before it joined */
    const char *why = "quit";
    if (aemp_msg_len(reason))
        aemp_msg_unpack(reason, "s*", &why);
    gone = *s;
    *s = r->sessions[--r->count];
    printf("%s left (%s)\n", gone.nick, why);
    broadcast(n, r, "left", gone.nick, why);
    session_free(&gone);
}

static int on_say(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct room *r = user;
    struct session *s = find(r, aemp_self(ctx));
    const char *text;
    if (!s || aemp_msg_unpack(msg, "s", &text) < 0)
        return 0; /* ignore malformed lines */
    printf("<%s> %s\n", s->nick, text);
    broadcast(aemp_ctx_node(ctx), r, "said", s->nick, text);
    return 0;
}

/* "chat::session" [<client port>, <nick>]: runs in the new port, spawned
 * by the client.  Failing here kills the port, and the client's monitor
 * tells it why. */
static int session_init(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    struct room *r = user;
    aemp_node_t *n = aemp_ctx_node(ctx);
    const char *self = aemp_self(ctx), *client, *nick;
    if (aemp_msg_unpack(args, "ss", &client, &nick) < 0)
        return aemp_die(ctx, "chat::session wants [client port, nick]");
    if (r->count == MAX_SESSIONS)
        return aemp_die(ctx, "the room is full");
    /* die with the client; the room hears of every end of the session */
    int rc = aemp_mon_kill(n, client, NULL, NULL);
    if (rc == 0)
        rc = aemp_mon_cb(n, self, on_session_gone, r, NULL);
    if (rc == 0)
        rc = aemp_rcv_tag(n, self, "say", on_say, r);
    if (rc < 0)
        return rc;
    struct session s = {strdup(self), strdup(client), strdup(nick)};
    if (!s.port || !s.client || !s.nick) {
        session_free(&s);
        return aemp_die(ctx, "out of memory");
    }
    r->sessions[r->count++] = s;
    printf("%s joined from %s\n", nick, client);
    broadcast(n, r, "joined", nick, "");
    return 0;
}

int main(int argc, char **argv)
{
    const char *secret = getenv("AEMP_SECRET");
    if (argc != 2 || !secret) {
        fprintf(stderr, "usage: AEMP_SECRET=secret chat_server <noderef>\n");
        return 2;
    }
    static struct room r;
    aemp_node_t *n;
    /* secure: peers may spawn what we registered and nothing else */
    aemp_netconf_t conf = {.secret = secret, .secure = 1};
    int rc = aemp_node_new(&n, NULL);
    if (rc == 0)
        rc = aemp_node_configure(n, &conf);
    if (rc == 0)
        rc = aemp_node_listen(n, argv[1]);
    if (rc == 0)
        rc = aemp_register(n, "chat::session", session_init, &r);
    if (rc < 0) {
        fprintf(stderr, "chat_server: %s\n", aemp_strerror(rc));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* a line at a time, even to a pipe */
    printf("chat room on node %s\n", aemp_noderef(n));
    aemp_run(n);
    aemp_node_free(n);
    return 0;
}
