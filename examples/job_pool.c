/* A job pool.  This process, the coordinator, spawns workers on the nodes
 * given, hands each one job at a time and collects the results.  Each
 * worker monitors the coordinator (it dies with this process); the
 * coordinator monitors each worker: when one dies (its node killed or
 * unreachable, or the worker failed), its job goes back in the queue and a
 * new worker takes its place, on the next node that is up.  Every job's
 * result is printed exactly once, then a summary.  It gives up (status 1)
 * when no node is up or workers keep dying.
 *
 * Job i counts the primes in [i * 100000, (i + 1) * 100000), so the
 * summary's total is the number of primes below JOBS * 100000.  The
 * workers ("jobs::worker", jobs.c) come from the module jobs.so, which any
 * `aemp run` node with its directory on the module path serves; name the
 * nodes as they name themselves (the noderef `aemp run` prints):
 *
 *   export AEMP_SECRET=s
 *   aemp run 127.0.0.1:4061 --module-path build/examples &
 *   aemp run 127.0.0.1:4062 --module-path build/examples &
 *   job_pool [-j JOBS] [-w WORKERS] 127.0.0.1:4061 127.0.0.1:4062
 *
 * Messages:  ["job", <id>, <from>, <to>]           coordinator -> worker
 *            ["result", <worker>, <id>, <count>]   worker -> coordinator */
#include <aemp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RANGE 100000
#define MAX_JOBS 20000 /* the ranges stay below 2^31 */
#define MAX_WORKERS 64
#define MAX_DEATHS 10 /* more, and the nodes are likely misconfigured */

enum { PENDING, RUNNING, DONE };

struct worker {
    char port[256];
    int node; /* index into pool.nodes */
    int job;  /* the job it is doing, or -1 */
};

struct pool {
    aemp_node_t *node;
    const char *me;
    char **nodes;
    int nnodes, nworkers, njobs, done, deaths, status;
    long total;
    struct worker workers[MAX_WORKERS];
    unsigned char state[MAX_JOBS];
};

static struct worker *find(struct pool *p, const char *port)
{
    for (int i = 0; i < p->nworkers; i++)
        if (!strcmp(p->workers[i].port, port))
            return &p->workers[i];
    return NULL;
}

/* Gives a pending job to every worker that has none. */
static void dispatch(struct pool *p)
{
    int j = 0;
    for (int i = 0; i < p->nworkers; i++) {
        struct worker *w = &p->workers[i];
        while (j < p->njobs && p->state[j] != PENDING)
            j++;
        if (w->job >= 0 || j == p->njobs)
            continue;
        p->state[j] = RUNNING;
        w->job = j;
        aemp_snd(p->node, w->port, "siii", "job", j, j * RANGE,
                 (j + 1) * RANGE);
    }
}

static void on_worker_death(aemp_node_t *n, const char *port,
                            const aemp_msg_t *reason, void *user);

/* A new worker on nodes[node], for w's place.  Its ID comes at once: we
 * monitor it and send it work before it even exists. */
static int start_worker(struct pool *p, struct worker *w, int node)
{
    w->node = node;
    w->job = -1;
    int rc = aemp_spawn(p->node, p->nodes[node], "jobs::worker", w->port,
                        sizeof w->port, "s", p->me);
    if (rc == 0)
        rc = aemp_mon_cb(p->node, w->port, on_worker_death, p, NULL);
    if (rc == 0)
        printf("worker %s starts on %s\n", w->port, p->nodes[node]);
    return rc;
}

/* The node after `node` (or that node itself) whose link is up, or -1. */
static int next_node(struct pool *p, int node)
{
    for (int k = 1; k <= p->nnodes; k++) {
        int i = (node + k) % p->nnodes;
        if (aemp_node_is_up(p->node, p->nodes[i]))
            return i;
    }
    return -1;
}

static void give_up(struct pool *p, const char *why)
{
    fprintf(stderr, "job_pool: giving up: %s\n", why);
    p->status = 1;
    aemp_stop(p->node);
}

static void on_worker_death(aemp_node_t *n, const char *port,
                            const aemp_msg_t *reason, void *user)
{
    struct pool *p = user;
    struct worker *w = find(p, port);
    if (!w || p->status) /* a node's workers die together: once is enough */
        return;
    char *text = NULL;
    size_t len;
    aemp_msg_encode(reason, AEMP_JSON, &text, &len);
    printf("worker %s died: %s\n", port, text ? text : "?");
    aemp_free(text);
    if (w->job >= 0) {
        printf("job %d goes back in the queue\n", w->job);
        p->state[w->job] = PENDING;
    }
    int node = next_node(p, w->node);
    if (node < 0)
        give_up(p, "no node is up");
    else if (++p->deaths > MAX_DEATHS)
        give_up(p, "too many workers died");
    else if (start_worker(p, w, node) < 0)
        give_up(p, "cannot start a worker");
    else
        dispatch(p);
}

static int on_result(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct pool *p = user;
    const char *port;
    int id, count;
    struct worker *w;
    if (aemp_msg_unpack(msg, "sii", &port, &id, &count) < 0 ||
        !(w = find(p, port)) || w->job != id)
        return 0; /* not an answer we are waiting for */
    p->state[id] = DONE;
    p->done++;
    p->total += count;
    w->job = -1;
    printf("job %d: %d primes in [%d, %d) on %s\n", id, count, id * RANGE,
           (id + 1) * RANGE, p->nodes[w->node]);
    if (p->done < p->njobs) {
        dispatch(p);
        return 0;
    }
    printf("done: %d jobs, %ld primes below %d, %d worker(s) replaced\n",
           p->njobs, p->total, p->njobs * RANGE, p->deaths);
    /* no need to stop the workers: they die with our node (their
     * aemp_mon_kill of our port) when the process ends */
    aemp_stop(p->node);
    return 0;
}

int main(int argc, char **argv)
{
    static struct pool p;
    int opt;
    p.njobs = 40;
    while ((opt = getopt(argc, argv, "j:w:")) != -1)
        if (opt == 'j')
            p.njobs = atoi(optarg);
        else if (opt == 'w')
            p.nworkers = atoi(optarg);
        else
            p.njobs = 0; /* an unknown option: the usage below */
    p.nodes = argv + optind;
    p.nnodes = argc - optind;
    if (!p.nworkers) /* two per node by default */
        p.nworkers = 2 * p.nnodes < MAX_WORKERS ? 2 * p.nnodes : MAX_WORKERS;
    const char *secret = getenv("AEMP_SECRET");
    if (!secret || p.nnodes < 1 || p.njobs < 1 || p.njobs > MAX_JOBS ||
        p.nworkers < 1 || p.nworkers > MAX_WORKERS) {
        fprintf(stderr,
                "usage: AEMP_SECRET=secret job_pool [-j jobs 1..%d] "
                "[-w workers 1..%d] <node ip:port>...\n",
                MAX_JOBS, MAX_WORKERS);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* 5 s to reach a node, instead of the default 30 */
    aemp_netconf_t conf = {.secret = secret, .monitor_timeout = 5};
    int rc = aemp_node_new(&p.node, NULL);
    if (rc == 0)
        rc = aemp_node_configure(p.node, &conf);
    if (rc == 0)
        rc = aemp_port(p.node, NULL, NULL, &p.me);
    if (rc == 0)
        rc = aemp_rcv_tag(p.node, p.me, "result", on_result, &p);
    if (rc == 0)
        printf("%d jobs for %d worker(s) on %d node(s)\n", p.njobs, p.nworkers,
               p.nnodes);
    for (int i = 0; rc == 0 && i < p.nworkers; i++)
        rc = start_worker(&p, &p.workers[i], i % p.nnodes);
    if (rc < 0) {
        fprintf(stderr, "job_pool: %s\n", aemp_strerror(rc));
        return 1;
    }
    dispatch(&p);
    aemp_run(p.node);
    aemp_node_free(p.node);
    return p.status;
}
