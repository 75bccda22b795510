/* Installed as tpkg/sub.so: "tpkg::sub::init" answers ["sub", SELF] to its
 * first argument — the longest package prefix is looked up first. */
#include <aemp.h>

static int sub_init(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    const char *spawner;
    int rc = aemp_msg_unpack(args, "s*", &spawner);
    return rc < 0 ? rc
                  : aemp_snd(aemp_ctx_node(ctx), spawner, "ss", "sub",
                             aemp_self(ctx));
}

int aemp_module_init(aemp_node_t *n);

int aemp_module_init(aemp_node_t *n)
{
    return aemp_register(n, "tpkg::sub::init", sub_init, NULL);
}
