/* Tutorial 4: spawn.  A worker port is created on another node, monitored
 * by the process that spawned it, and monitors that process in turn.
 *
 *   export AEMP_SECRET=a-long-shared-secret
 *   ./04-spawn node 127.0.0.1:4052     # a node that offers tut::square
 *   ./04-spawn boss 127.0.0.1:4052     # spawns a worker there, uses it */
#include <aemp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the node side ---------------------------------------------------- */

/* ["square", x, reply_port] -> ["squared", x, x * x]; anything else is a
 * bug in the caller, and the worker dies of it. */
static int on_square(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    const char *reply_to;
    int x;
    if (aemp_msg_unpack(m, "is", &x, &reply_to) < 0)
        return aemp_die(ctx, "square wants a number and a port");
    return aemp_snd(aemp_ctx_node(ctx), reply_to, "sii", "squared", x, x * x);
}

/* The init function: runs in the context of the new port, with the
 * spawner's arguments (here: the boss's port). */
static int square_init(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    aemp_node_t *n = aemp_ctx_node(ctx);
    const char *boss;
    if (aemp_msg_unpack(args, "s", &boss) < 0)
        return aemp_die(ctx, "tut::square wants its boss's port");
    printf("worker %s started for %s\n", aemp_self(ctx), boss);
    fflush(stdout);
    /* die with the boss (other NULL: this port), so that nothing is left
     * behind when the boss's process goes away */
    int rc = aemp_mon_kill(n, boss, NULL, NULL);
    if (rc == 0)
        rc = aemp_rcv_tag(n, aemp_self(ctx), "square", on_square, NULL);
    return rc;
}

static int node(aemp_node_t *n, const char *noderef)
{
    int rc = aemp_register(n, "tut::square", square_init, NULL);
    if (rc == 0)
        rc = aemp_initialise_wait(n, NULL, NULL, noderef, NULL, 0);
    if (rc == 0) {
        printf("node %s offers tut::square\n", aemp_noderef(n));
        fflush(stdout);
        rc = aemp_run(n);
    }
    return rc;
}

/* ---- the boss side ---------------------------------------------------- */

static int on_squared(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    int x, y;
    if (aemp_msg_unpack(m, "ii", &x, &y) < 0)
        return aemp_die(ctx, "bad answer");
    printf("%d squared is %d\n", x, y);
    return 0;
}

static void on_worker_death(aemp_node_t *n, const char *port,
                            const aemp_msg_t *reason, void *user)
{
    char *text;
    if (aemp_msg_to_json(reason, &text) == 0) {
        printf("worker died: %s\n", text);
        aemp_free(text);
    }
    aemp_stop(n);
}

static int boss(aemp_node_t *n, const char *where)
{
    const char *me;
    char worker[256];
    int rc = aemp_port(n, NULL, NULL, &me);
    if (rc == 0)
        rc = aemp_rcv_tag(n, me, "squared", on_squared, NULL);
    /* the worker's ID comes back at once: we may send to it and monitor
     * it before it exists on the other node */
    if (rc == 0)
        rc = aemp_spawn(n, where, "tut::square", worker, sizeof worker, "s",
                        me);
    if (rc == 0)
        rc = aemp_mon_cb(n, worker, on_worker_death, NULL, NULL);
    if (rc < 0)
        return rc;
    printf("spawned a worker on %s\n", where);
    aemp_snd(n, worker, "sis", "square", 3, me);
    aemp_snd(n, worker, "sis", "square", 4, me);
    aemp_snd(n, worker, "sss", "square", "five", me); /* kills it */
    return aemp_run(n);
}

int main(int argc, char **argv)
{
    const char *secret = getenv("AEMP_SECRET");
    if (argc != 3 || !secret) {
        fprintf(stderr, "usage: AEMP_SECRET=S 04-spawn node|boss NODEREF\n");
        return 2;
    }
    aemp_node_t *n;
    aemp_netconf_t conf = {.secret = secret, .monitor_timeout = 5};
    int rc = aemp_node_new(&n, NULL);
    if (rc < 0)
        return 1;
    if ((rc = aemp_node_configure(n, &conf)) == 0)
        rc = strcmp(argv[1], "node") == 0 ? node(n, argv[2])
                                          : boss(n, argv[2]);
    if (rc < 0)
        fprintf(stderr, "04-spawn: %s\n", aemp_strerror(rc));
    aemp_node_free(n);
    return rc < 0;
}
