/* A loadable module for the spawn tests: "tmod::echo" answers its first
 * argument (a port ID) with ["ready", SELF, args...] and then echoes every
 * message back to the sender named in it; "tmod::fails" fails its init. */
#include <aemp.h>

static int echo_rcv(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    const char *to;
    if (aemp_msg_unpack(m, "s*", &to) < 0)
        return aemp_die(ctx, "echo wants [port, ...]");
    return aemp_snd_msg(aemp_ctx_node(ctx), to, m);
}

static int echo_init(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    aemp_node_t *n = aemp_ctx_node(ctx);
    const char *spawner;
    int rc = aemp_msg_unpack(args, "s*", &spawner);
    if (rc == 0)
        rc = aemp_rcv(n, aemp_self(ctx), echo_rcv, NULL);
    if (rc == 0)
        rc = aemp_snd(n, spawner, "ss", "ready", aemp_self(ctx));
    return rc;
}

static int fails_init(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    return aemp_die(ctx, "tmod::fails failed on purpose");
}

int aemp_module_init(aemp_node_t *n);

int aemp_module_init(aemp_node_t *n)
{
    int rc = aemp_register(n, "tmod::echo", echo_init, NULL);
    return rc < 0 ? rc : aemp_register(n, "tmod::fails", fails_init, NULL);
}
