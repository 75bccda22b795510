/* Init functions registered by name (aemp_register), and starting one in a
 * new port — what configured services and spawn requests run. */
#include "kernel.h"

#include <stdio.h>
#include <string.h>

int aemp_register(aemp_node_t *n, const char *name, aemp_rcv_fn fn, void *user)
{
    if (!n || !name || !*name)
        return AEMP_EINVAL;
    return aemp__tags_set(&n->inits, name, fn, user);
}

/* Creates a port and runs the init function `name` in its context with
 * args (a message); an unknown name kills the port with a die reason. */
int aemp__start(aemp_node_t *n, const char *name, const aemp_msg_t *args,
                const char **id)
{
    int rc = aemp_port(n, NULL, NULL, id);
    if (rc < 0)
        return rc;
    aemp__port_t *p;
    aemp__port_find(n, *id, &p);
    const struct aemp__tag *f = aemp__tags_find(n->inits, name, strlen(name));
    if (!f) {
        char text[300];
        snprintf(text, sizeof text, "%s: no such init function", name);
        aemp__kill_die(n, p, text);
        return AEMP_ENOPORT;
    }
    aemp__run_in(n, p, f->cb, NULL, args, f->user);
    return 0;
}
