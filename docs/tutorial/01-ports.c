/* Tutorial 1: ports and messages.  One node, two ports: "counter" keeps a
 * running total; the program's own port asks it for the total and prints
 * the answer.  Run: ./01-ports */
#include <aemp.h>

#include <stdio.h>

static int total; /* the counter's state (one counter, so a global) */

/* ["add", n]: the tag callback gets the message without its tag */
static int on_add(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    int n;
    if (aemp_msg_unpack(m, "i", &n) < 0)
        return aemp_die(ctx, "add wants a number"); /* kills the port */
    total += n;
    return 0;
}

/* ["get", reply_port]: answer with ["total", n] */
static int on_get(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    const char *reply_to;
    if (aemp_msg_unpack(m, "s", &reply_to) < 0)
        return aemp_die(ctx, "get wants a reply port");
    return aemp_snd(aemp_ctx_node(ctx), reply_to, "si", "total", total);
}

/* The program's own port: every message, whatever its first element. */
static int on_reply(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    char *text;
    if (aemp_msg_to_json(m, &text) == 0) {
        printf("got %s\n", text);
        aemp_free(text);
    }
    /* done: a port that is killed stops the loop once nothing is left */
    aemp_kil(aemp_ctx_node(ctx), aemp_self(ctx), NULL);
    aemp_kil(aemp_ctx_node(ctx), (const char *)user, NULL);
    return 0;
}

int main(void)
{
    aemp_node_t *n;
    const char *counter, *me;
    if (aemp_node_new(&n, NULL) < 0) /* NULL: the node makes its own loop */
        return 1;
    aemp_port(n, NULL, NULL, &counter); /* no default callback ... */
    aemp_rcv_tag(n, counter, "add", on_add, NULL); /* ... tags instead */
    aemp_rcv_tag(n, counter, "get", on_get, NULL);
    aemp_port(n, on_reply, (void *)counter, &me);

    /* snd never blocks and never delivers at once: the messages wait in
     * the node's queue, in order, until the loop runs */
    aemp_snd(n, counter, "si", "add", 20);
    aemp_snd(n, counter, "si", "add", 22);
    aemp_snd(n, counter, "ss", "get", me);
    printf("sent 3 messages\n");

    aemp_run(n); /* until nothing is left to do */
    printf("total was %d\n", total);
    aemp_node_free(n);
    return 0;
}
