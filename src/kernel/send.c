/* snd: turning a port ID and a message into a delivery. */
#include "kernel.h"

#include <string.h>

/* Takes m (one reference). */
static int send_take(aemp_node_t *n, const char *port, aemp_msg_t *m)
{
    uint64_t counter;
    int rc = aemp__port_locate(n, port, &counter);
    if (rc == 1) {
        if (counter == UINT64_MAX) {
            aemp_msg_unref(m); /* an old instance's port: dropped */
            return 0;
        }
        aemp__item_t *it = aemp__item_new(n, AEMP__DELIVER);
        if (!it) {
            aemp_msg_unref(m);
            return AEMP_ENOMEM;
        }
        it->counter = counter;
        it->msg = m;
        aemp__enqueue(n, it);
        return 0;
    }
    if (rc == 0)
        rc = n->net_ops ? n->net_ops->send(n, port, m) : AEMP_ENOROUTE;
    aemp_msg_unref(m);
    return rc;
}

int aemp__send(aemp_node_t *n, const char *port, const aemp_msg_t *m)
{
    aemp_msg_t *r = aemp__msg_ref(m);
    return r ? send_take(n, port, r) : AEMP_ENOMEM;
}

int aemp_snd(aemp_node_t *n, const char *port, const char *picture, ...)
{
    if (!n || !port)
        return AEMP_EINVAL;
    aemp_msg_t *m;
    va_list ap;
    va_start(ap, picture);
    int rc = aemp__msg_vnew_from(&n->blocks, &m, picture, ap);
    va_end(ap);
    return rc < 0 ? rc : send_take(n, port, m);
}

int aemp_sndv(aemp_node_t *n, const char *port, aemp_val_t **msg)
{
    if (!n || !port || !msg)
        return AEMP_EINVAL;
    aemp_msg_t *m;
    int rc = aemp__msg_of_val(&m, *msg);
    if (rc == 0 && (rc = send_take(n, port, m)) == 0) {
        aemp_val_free(*msg); /* taken only on success */
        *msg = NULL;
    }
    return rc;
}

int aemp_snd_msg(aemp_node_t *n, const char *port, const aemp_msg_t *msg)
{
    if (!n || !port || !msg)
        return AEMP_EINVAL;
    return aemp__send(n, port, msg);
}
