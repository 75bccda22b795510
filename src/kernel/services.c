/* Init functions by name — registered (aemp_register), built in, or from a
 * loadable module — and running one in a port: what configured services
 * and spawn requests do. */
#include "kernel.h"

#include <stdio.h>
#include <string.h>

int aemp_register(aemp_node_t *n, const char *name, aemp_rcv_fn fn, void *user)
{
    if (!n || !name || !*name)
        return AEMP_EINVAL;
    return aemp__tags_set(&n->inits, name, fn, user);
}

/* ---- built in: aemp::echo and aemp::sink ---------------------------------- */

/* aemp::echo: a message whose last element is a port ID goes back there,
 * without that element. */
static int on_echo(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    size_t n = aemp_msg_len(m);
    const char *to;
    if (!n || aemp_val_str(aemp_msg_at(m, n - 1), &to, NULL) < 0 ||
        !strchr(to, '#'))
        return 0; /* nothing to answer: ignored, the service stays */
    aemp_val_t *reply = aemp_arr_new();
    for (size_t i = 0; i + 1 < n && reply; i++)
        reply = aemp_arr_push(reply, aemp_val_copy(aemp_msg_at(m, i)));
    int rc = aemp_sndv(aemp_ctx_node(ctx), to, &reply);
    aemp_val_free(reply);
    return rc == AEMP_EINVAL ? 0 : rc;
}

/* aemp::sink: counts; ["count", <port>] reports ["count", N] there.  The
 * count lives in the port's user pointer: no memory to free. */
static int on_sink(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    const char *tag, *to;
    aemp__port_t *p = ctx->port;
    if (aemp_msg_unpack(m, "ss", &tag, &to) == 0 && !strcmp(tag, "count"))
        return aemp_snd(aemp_ctx_node(ctx), to, "sI", "count",
                        (int64_t)(uintptr_t)p->user);
    p->user = (void *)((uintptr_t)p->user + 1);
    return 0;
}

static int start_echo(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    return aemp_rcv(aemp_ctx_node(ctx), aemp_self(ctx), on_echo, NULL);
}

static int start_sink(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    return aemp_rcv(aemp_ctx_node(ctx), aemp_self(ctx), on_sink, NULL);
}

static const struct aemp__tag builtin_inits[] = {
    {"aemp::echo", 10, start_echo, NULL},
    {"aemp::sink", 10, start_sink, NULL},
};

static const struct aemp__tag *init_find(const aemp_node_t *n,
                                         const char *name)
{
    size_t len = strlen(name);
    const struct aemp__tag *f = aemp__tags_find(n->inits, name, len);
    for (size_t i = 0; !f && i < sizeof builtin_inits / sizeof *builtin_inits;
         i++)
        if (builtin_inits[i].len == len && !memcmp(builtin_inits[i].tag, name, len))
            f = &builtin_inits[i];
    return f;
}

/* ---- running one ----------------------------------------------------------- */

void aemp__run_init(aemp_node_t *n, aemp__port_t *p, const char *name,
                    const aemp_msg_t *args, bool registered_only)
{
    char why[512] = "";
    const struct aemp__tag *f = init_find(n, name);
    if (!f && registered_only)
        snprintf(why, sizeof why, ": this node loads no module for a peer");
    else if (!f) {
        char text[400] = "";
        int rc = aemp__module_load(n, name, text, sizeof text);
        if (rc == 0)
            f = init_find(n, name);
        if (!f)
            snprintf(why, sizeof why, ": %s",
                     rc == 0 ? "its module does not register it" : text);
    }
    if (!f) {
        char text[700];
        snprintf(text, sizeof text, "unable to resolve '%s'%s", name, why);
        aemp__log(n, AEMP_LOG_WARN, "%s", text);
        aemp__kill_die(n, p, text);
        return;
    }
    aemp_msg_t *none = NULL;
    if (!args && aemp_msg_new(&none, "") < 0) {
        aemp__kill_die(n, p, "out of memory");
        return;
    }
    aemp__run_in(n, p, f->cb, NULL, args ? args : none, f->user);
    aemp_msg_unref(none);
}

int aemp__start(aemp_node_t *n, const char *name, const aemp_msg_t *args,
                const char **id)
{
    aemp__port_t *p;
    int rc = aemp__port_new(n, NULL, &p);
    if (rc < 0)
        return rc;
    *id = p->id;
    aemp__run_init(n, p, name, args, false);
    return p->dead ? AEMP_ENOPORT : 0;
}
