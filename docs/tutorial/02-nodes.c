/* Tutorial 2: nodes and noderefs.  Two processes: a public node that
 * listens on a noderef and answers greetings, and a private node that
 * sends it one and prints the answer.  Both need the same secret.
 *
 *   export AEMP_SECRET=a-long-shared-secret
 *   ./02-nodes serve 127.0.0.1:4051       # prints its port ID, then waits
 *   ./02-nodes greet '127.0.0.1:4051#...' # that port ID */
#include <aemp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ["hello", name, reply_port] -> ["welcome", name, our node's noderef] */
static int on_hello(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    aemp_node_t *n = aemp_ctx_node(ctx);
    const char *name, *reply_to;
    if (aemp_msg_unpack(m, "ss", &name, &reply_to) < 0)
        return aemp_die(ctx, "bad hello");
    char from[256];
    aemp_node_of(reply_to, from, sizeof from); /* the sender's node */
    printf("hello from %s on %s\n", name, from);
    fflush(stdout);
    return aemp_snd(n, reply_to, "sss", "welcome", name, aemp_noderef(n));
}

static int on_welcome(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    const char *name, *node;
    if (aemp_msg_unpack(m, "-ss", &name, &node) < 0)
        return aemp_die(ctx, "bad welcome");
    printf("%s was welcomed by %s\n", name, node);
    aemp_stop(aemp_ctx_node(ctx)); /* the link would keep the loop busy */
    return 0;
}

static int serve(aemp_node_t *n, const char *noderef)
{
    /* a public node: resolves noderef, listens on every endpoint and
     * takes it as its name (the program's ports are named after it) */
    int rc = aemp_initialise_wait(n, NULL, NULL, noderef, NULL, 0);
    if (rc < 0)
        return rc;
    const char *port;
    if ((rc = aemp_port(n, NULL, NULL, &port)) < 0 ||
        (rc = aemp_rcv_tag(n, port, "hello", on_hello, NULL)) < 0)
        return rc;
    printf("%s\n", port); /* what other nodes need to talk to us */
    fflush(stdout);
    return aemp_run(n); /* until killed */
}

static int greet(aemp_node_t *n, const char *server)
{
    /* a private node: no noderef of its own to listen on; it connects
     * out when it first sends, and the answer comes back on that link */
    const char *me;
    int rc = aemp_port(n, on_welcome, NULL, &me);
    if (rc == 0)
        rc = aemp_snd(n, server, "sss", "hello", "alice", me);
    if (rc == 0)
        rc = aemp_run(n);
    return rc;
}

int main(int argc, char **argv)
{
    const char *secret = getenv("AEMP_SECRET");
    if (argc != 3 || !secret) {
        fprintf(stderr, "usage: AEMP_SECRET=S 02-nodes serve NODEREF | "
                        "greet PORT\n");
        return 2;
    }
    aemp_node_t *n;
    aemp_netconf_t conf = {.secret = secret, .monitor_timeout = 5};
    int rc = aemp_node_new(&n, NULL);
    if (rc < 0)
        return 1;
    if ((rc = aemp_node_configure(n, &conf)) == 0)
        rc = strcmp(argv[1], "serve") == 0 ? serve(n, argv[2])
                                           : greet(n, argv[2]);
    if (rc < 0)
        fprintf(stderr, "02-nodes: %s\n", aemp_strerror(rc));
    aemp_node_free(n);
    return rc < 0;
}
