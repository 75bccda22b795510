/* Tutorial 3: monitoring.  A port that fails dies with a reason, and
 * whoever monitors it hears that reason: the three ways of listening.
 * Run: ./03-monitor */
#include <aemp.h>

#include <stdio.h>

/* A worker that accepts numbers and fails on anything else. */
static int on_work(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    int n;
    if (aemp_msg_unpack(m, "i", &n) < 0)
        return aemp_die(ctx, "not a number"); /* dies: ["die", "not a ..."] */
    printf("worker: %d\n", n);
    return 0;
}

/* mon form 1: a callback with the kill reason (empty for a normal end). */
static void on_death(aemp_node_t *n, const char *port,
                     const aemp_msg_t *reason, void *user)
{
    char *text;
    if (aemp_msg_to_json(reason, &text) == 0) {
        printf("%s died: %s\n", (const char *)user, text);
        aemp_free(text);
    }
}

/* mon form 4: the reason arrives as a message to a port. */
static int on_obituary(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    const char *what, *why;
    if (aemp_msg_unpack(m, "s-s", &what, &why) == 0)
        printf("obituary: %s (%s)\n", what, why);
    return aemp_kil(aemp_ctx_node(ctx), aemp_self(ctx), NULL);
}

int main(void)
{
    aemp_node_t *n;
    const char *worker, *partner, *mourner, *quiet;
    if (aemp_node_new(&n, NULL) < 0)
        return 1;
    aemp_port(n, on_work, NULL, &worker);
    aemp_port(n, on_work, NULL, &partner);
    aemp_port(n, on_obituary, NULL, &mourner);
    aemp_port(n, on_work, NULL, &quiet);

    aemp_mon_cb(n, worker, on_death, "worker", NULL);
    /* forms 2 and 3: partner is killed with worker's reason (a link, as
     * in Erlang: one-way here, mon both ways for a pair) */
    aemp_mon_kill(n, worker, partner, NULL);
    aemp_mon_cb(n, partner, on_death, "partner", NULL);
    aemp_mon_msg(n, worker, mourner, NULL, "s", "worker is gone");
    /* a normal end (no reason) fires monitors with an empty reason and
     * kills no partner */
    aemp_mon_cb(n, quiet, on_death, "quiet", NULL);
    aemp_kil(n, quiet, NULL);

    aemp_snd(n, worker, "i", 1);
    aemp_snd(n, worker, "s", "two"); /* the worker dies of this one */
    aemp_snd(n, worker, "i", 3);     /* dropped: it is dead by then */
    aemp_run(n);
    aemp_node_free(n);
    return 0;
}
