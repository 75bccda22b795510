/* Tutorial 6: finding each other.  A directory (a global node), workers
 * that register in the group "tut.workers", and a client that finds them
 * there — nobody hard-codes a port ID.
 *
 *   export AEMP_SECRET=a-long-shared-secret
 *   ./06-registry directory 127.0.0.1:4054
 *   ./06-registry worker 127.0.0.1:4055 127.0.0.1:4054
 *   ./06-registry client 127.0.0.1:4054 */
#include <aemp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a worker: one port, registered in the group ------------------------ */

/* ["work", x, reply_port] -> ["done", x + 1, our port] */
static int on_work(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    const char *reply_to;
    int x;
    if (aemp_msg_unpack(m, "is", &x, &reply_to) < 0)
        return aemp_die(ctx, "work wants a number and a port");
    return aemp_snd(aemp_ctx_node(ctx), reply_to, "sis", "done", x + 1,
                    aemp_self(ctx));
}

static int worker(aemp_node_t *n)
{
    const char *port;
    int rc = aemp_port(n, NULL, NULL, &port);
    if (rc == 0)
        rc = aemp_rcv_tag(n, port, "work", on_work, NULL);
    /* the entry goes when the port dies, or when this node is lost */
    if (rc == 0)
        rc = aemp_grp_reg(n, "tut.workers", port, NULL);
    if (rc == 0)
        printf("worker %s registered\n", port);
    return rc;
}

/* ---- the client: watch the group, give each new member a job ------------ */

static int on_done(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    int y;
    const char *by;
    if (aemp_msg_unpack(m, "is", &y, &by) < 0)
        return aemp_die(ctx, "bad answer");
    printf("got %d\n", y);
    aemp_stop(aemp_ctx_node(ctx));
    return 0;
}

static const char *me; /* the client's reply port */

/* First the group as it is (every member "added"), then each change. */
static void on_members(aemp_node_t *n, const char *group,
                       const aemp_val_t *members, const aemp_val_t *added,
                       const aemp_val_t *removed, void *user)
{
    for (size_t i = 0; i < aemp_val_len(added); i++) {
        const char *port;
        if (aemp_val_str(aemp_val_at(added, i), &port, NULL) == 0) {
            printf("found a worker in %s\n", group);
            aemp_snd(n, port, "sis", "work", 41, me);
        }
    }
}

static int client(aemp_node_t *n)
{
    int rc = aemp_port(n, NULL, NULL, &me);
    if (rc == 0)
        rc = aemp_rcv_tag(n, me, "done", on_done, NULL);
    if (rc == 0)
        rc = aemp_grp_mon(n, "tut.workers", on_members, NULL, NULL);
    return rc;
}

int main(int argc, char **argv)
{
    const char *secret = getenv("AEMP_SECRET");
    const char *role = argc > 2 ? argv[1] : "";
    if (!secret || (strcmp(role, "directory") && strcmp(role, "worker") &&
                    strcmp(role, "client"))) {
        fprintf(stderr, "usage: AEMP_SECRET=S 06-registry directory NODEREF"
                        " | worker NODEREF DIRECTORY | client DIRECTORY\n");
        return 2;
    }
    /* the directory is a global node; the others attach to it, their
     * seed, and find everything else through it */
    int directory = !strcmp(role, "directory");
    int is_client = !strcmp(role, "client");
    aemp_netconf_t conf = {.secret = secret, .global = directory};
    const char *noderef = is_client ? "anon/" : argv[2];
    const char *seeds[] = {is_client ? argv[2] : argc > 3 ? argv[3] : NULL};
    aemp_node_t *n;
    int rc = aemp_node_new(&n, NULL);
    if (rc < 0)
        return 1;
    if ((rc = aemp_node_configure(n, &conf)) == 0)
        rc = aemp_initialise_wait(n, NULL, NULL, noderef, seeds,
                                  seeds[0] ? 1 : 0);
    if (rc == 0 && directory)
        printf("directory %s is global\n", aemp_noderef(n));
    if (rc == 0 && !directory)
        rc = is_client ? client(n) : worker(n);
    fflush(stdout);
    if (rc == 0)
        rc = aemp_run(n);
    if (rc < 0)
        fprintf(stderr, "06-registry: %s\n", aemp_strerror(rc));
    aemp_node_free(n);
    return rc < 0;
}
