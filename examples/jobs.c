/* The workers of the job pool (job_pool.c), as a loadable module.  Built
 * as jobs.so, it is loaded by any node that has its directory on the
 * module path (`aemp run --module-path DIR`) the first time a peer spawns
 * "jobs::worker" there: the package name before "::" names the file.
 *
 * "jobs::worker" [<coordinator port>] answers each ["job", <id>, <from>,
 * <to>] with ["result", <its port>, <id>, <primes in [from, to)>].  It
 * monitors the coordinator, so it dies with it: when the coordinator's
 * process ends, no worker is left behind.
 *
 * The module calls the aemp functions of the program that loads it, so it
 * is built without linking the library. */
#include <aemp.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int is_prime(int64_t x)
{
    if (x < 2)
        return 0;
    for (int64_t d = 2; d * d <= x; d++)
        if (x % d == 0)
            return 0;
    return 1;
}

/* A job of a few milliseconds runs right here, on the node's loop; longer
 * ones would go to a thread (uv_queue_work) and answer when done. */
static int on_job(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *coordinator)
{
    int id, from, to, count = 0;
    if (aemp_msg_unpack(msg, "iii", &id, &from, &to) < 0)
        return aemp_die(ctx, "a job is [\"job\", id, from, to]");
    for (int x = from; x < to; x++)
        count += is_prime(x);
    return aemp_snd(aemp_ctx_node(ctx), coordinator, "ssii", "result",
                    aemp_self(ctx), id, count);
}

static int worker_init(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    aemp_node_t *n = aemp_ctx_node(ctx);
    const char *coordinator;
    if (aemp_msg_unpack(args, "s", &coordinator) < 0)
        return aemp_die(ctx, "jobs::worker wants [coordinator port]");
    int rc = aemp_mon_kill(n, coordinator, NULL, NULL); /* die with it */
    if (rc < 0)
        return rc;
    /* args are borrowed: keep a copy of the ID, freed when this port dies */
    char *copy = strdup(coordinator);
    if (!copy)
        return AEMP_ENOMEM;
    if ((rc = aemp_mon_guard(n, aemp_self(ctx), free, copy, NULL)) < 0) {
        free(copy);
        return rc;
    }
    return aemp_rcv_tag(n, aemp_self(ctx), "job", on_job, copy);
}

/* The entry point the node looks for when it loads the module. */
int aemp_module_init(aemp_node_t *n);

int aemp_module_init(aemp_node_t *n)
{
    return aemp_register(n, "jobs::worker", worker_init, NULL);
}
