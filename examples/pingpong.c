/* Two ports on one node play ping-pong N times and report the rate.
 *
 *   pingpong [N]      (default 1,000,000 round trips)
 *
 * The "ping" port answers each ["ping", <reply-port>, <i>] with
 * ["pong", <i>]; the "pong" port counts and sends the next ping until N
 * round trips are done, then kills both ports — which is when the loop has
 * nothing left to do and aemp_run() returns. */
#include <aemp.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct game {
    aemp_node_t *node;
    const char *ping, *pong;
    long rounds, done;
};

static int on_ping(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    const char *reply_to;
    int i;
    if (aemp_msg_unpack(msg, "si", &reply_to, &i) < 0)
        return aemp_die(ctx, "malformed ping");
    return aemp_snd(aemp_ctx_node(ctx), reply_to, "si", "pong", i);
}

static int on_pong(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct game *g = user;
    int i;
    if (aemp_msg_unpack(msg, "i", &i) < 0 || i != (int)g->done)
        return aemp_die(ctx, "pong out of order");
    if (++g->done == g->rounds) {
        aemp_kil(g->node, g->ping, NULL);
        return aemp_kil(g->node, aemp_self(ctx), NULL);
    }
    return aemp_snd(g->node, g->ping, "ssi", "ping", aemp_self(ctx),
                    (int)g->done);
}

static void on_death(aemp_node_t *n, const char *port, const aemp_msg_t *reason,
                     void *user)
{
    char *text = NULL;
    size_t len;
    if (aemp_msg_len(reason) &&
        aemp_msg_encode(reason, AEMP_JSON, &text, &len) == 0)
        printf("port %s died: %s\n", port, text);
    else
        printf("port %s finished\n", port);
    aemp_free(text);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct game g = {.rounds = argc > 1 ? atol(argv[1]) : 1000000};
    if (g.rounds <= 0 || g.rounds > 2000000000L) {
        fprintf(stderr, "usage: pingpong [rounds]\n");
        return 2;
    }
    int rc = aemp_node_new(&g.node, NULL);
    if (rc == 0)
        rc = aemp_port(g.node, NULL, NULL, &g.ping);
    if (rc == 0)
        rc = aemp_rcv_tag(g.node, g.ping, "ping", on_ping, &g);
    if (rc == 0)
        rc = aemp_port(g.node, NULL, NULL, &g.pong);
    if (rc == 0)
        rc = aemp_rcv_tag(g.node, g.pong, "pong", on_pong, &g);
    if (rc == 0)
        rc = aemp_mon_cb(g.node, g.pong, on_death, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "pingpong: %s\n", aemp_strerror(rc));
        return 1;
    }
    printf("node %s\nping port %s\npong port %s\nplaying %ld rounds...\n",
           aemp_noderef(g.node), g.ping, g.pong, g.rounds);
    double t0 = now();
    aemp_snd(g.node, g.ping, "ssi", "ping", g.pong, 0);
    aemp_run(g.node);
    double dt = now() - t0;
    printf("%ld round trips (%ld messages) in %.3f s: %.0f messages/s\n",
           g.done, 2 * g.done, dt, 2 * g.done / dt);
    aemp_node_free(g.node);
    return g.done == g.rounds ? 0 : 1;
}
