/* A chat room on a public node.  Clients find the room by asking the node
 * port ("chat::room"), join with their own port and are monitored: when a
 * client's process goes away, everyone hears that it left.
 *
 *   AEMP_SECRET=s chat_server 127.0.0.1:4050
 *
 * Messages:  ["join", <client port>, <nick>]   client -> room
 *            ["say", <client port>, <text>]    client -> room
 *            ["joined", <nick>, ""], ["left", <nick>, <why>],
 *            ["said", <nick>, <text>]          room -> every client */
#include <aemp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MEMBERS 256

struct member {
    char *port, *nick;
};

struct room {
    aemp_node_t *node;
    const char *port;
    struct member members[MAX_MEMBERS];
    int count;
};

/* Sends [what, nick, text] to every member. */
static void broadcast(struct room *r, const char *what, const char *nick,
                      const char *text)
{
    for (int i = 0; i < r->count; i++)
        aemp_snd(r->node, r->members[i].port, "sss", what, nick, text);
}

static struct member *find(struct room *r, const char *port)
{
    for (int i = 0; i < r->count; i++)
        if (!strcmp(r->members[i].port, port))
            return &r->members[i];
    return NULL;
}

/* A member's port died: a normal kill (it typed EOF) or a lost link. */
static void on_member_gone(aemp_node_t *n, const char *port,
                           const aemp_msg_t *reason, void *user)
{
    struct room *r = user;
    struct member *m = find(r, port);
    if (!m)
        return;
    const char *why = "quit";
    if (aemp_msg_len(reason))
        aemp_msg_unpack(reason, "s*", &why);
    char *nick = m->nick;
    free(m->port);
    *m = r->members[--r->count];
    printf("%s left (%s)\n", nick, why);
    broadcast(r, "left", nick, why);
    free(nick);
}

static int on_join(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct room *r = user;
    const char *port, *nick;
    if (aemp_msg_unpack(msg, "ss", &port, &nick) < 0)
        return 0; /* ignore malformed requests: the room must not die */
    if (find(r, port) || r->count == MAX_MEMBERS)
        return 0;
    struct member *m = &r->members[r->count];
    if (!(m->port = strdup(port)) || !(m->nick = strdup(nick))) {
        free(m->port);
        return aemp_die(ctx, "out of memory");
    }
    r->count++;
    aemp_mon_cb(r->node, port, on_member_gone, r, NULL);
    printf("%s joined from %s\n", nick, port);
    broadcast(r, "joined", nick, "");
    return 0;
}

static int on_say(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct room *r = user;
    const char *port, *text;
    struct member *m;
    if (aemp_msg_unpack(msg, "ss", &port, &text) < 0 || !(m = find(r, port)))
        return 0;
    printf("<%s> %s\n", m->nick, text);
    broadcast(r, "said", m->nick, text);
    return 0;
}

/* Node-port request ["chat::room", <reply port>]: tell where the room is. */
static int on_where(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct room *r = user;
    const char *reply;
    if (aemp_msg_unpack(msg, "s", &reply) < 0)
        return aemp_die(ctx, "chat::room wants a reply port");
    return aemp_snd(r->node, reply, "ss", "room", r->port);
}

int main(int argc, char **argv)
{
    const char *secret = getenv("AEMP_SECRET");
    if (argc != 2 || !secret) {
        fprintf(stderr, "usage: AEMP_SECRET=secret chat_server <noderef>\n");
        return 2;
    }
    static struct room r;
    aemp_netconf_t conf = {.secret = secret};
    int rc = aemp_node_new(&r.node, NULL);
    if (rc == 0)
        rc = aemp_node_configure(r.node, &conf);
    if (rc == 0)
        rc = aemp_node_listen(r.node, argv[1]);
    if (rc == 0)
        rc = aemp_port(r.node, NULL, NULL, &r.port);
    if (rc == 0)
        rc = aemp_rcv_tag(r.node, r.port, "join", on_join, &r);
    if (rc == 0)
        rc = aemp_rcv_tag(r.node, r.port, "say", on_say, &r);
    if (rc == 0)
        rc = aemp_node_handle(r.node, "chat::room", on_where, &r);
    if (rc < 0) {
        fprintf(stderr, "chat_server: %s\n", aemp_strerror(rc));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* a line at a time, even to a pipe */
    printf("chat room %s on node %s\n", r.port, aemp_noderef(r.node));
    aemp_run(r.node);
    aemp_node_free(r.node);
    return 0;
}
