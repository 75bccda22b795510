/* cal: the simple RPC — send a request with a fresh reply port appended,
 * and hear once: the reply, the destination's death (its monitor), or the
 * timeout.  Then the reply port is gone. */
#include "kernel.h"

#include <string.h>

typedef struct cal {
    aemp_cal_fn cb;
    void *user;
    aemp_mon_t *dest; /* our monitor of the destination */
    char *reply;      /* the reply port's ID */
    bool done;
} cal_t;

/* The one answer: the callback, then the reply port and the monitor go
 * (the reply port's guard frees c). */
static void finish(aemp_node_t *n, cal_t *c, int status,
                   const aemp_msg_t *msg)
{
    if (c->done)
        return;
    c->done = true;
    aemp_mon_cancel(c->dest);
    c->dest = NULL;
    c->cb(n, status, msg, c->user);
    aemp_kil(n, c->reply, NULL);
}

static int on_reply(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    finish(aemp_ctx_node(ctx), user, 0, m);
    return 0;
}

static void on_dest_gone(aemp_node_t *n, const char *port,
                         const aemp_msg_t *reason, void *user)
{
    finish(n, user, AEMP_ENOPORT, reason);
}

static int on_timeout(aemp_ctx_t *ctx, void *user)
{
    finish(aemp_ctx_node(ctx), user, AEMP_ETIMEDOUT, NULL);
    return 0;
}

static void cal_free(void *p)
{
    cal_t *c = p;
    /* still pending (the node is freed, or the reply port was killed by
     * someone else): the destination's monitor goes with it */
    aemp_mon_cancel(c->dest);
    aemp__free(c->reply);
    aemp__free(c);
}

static int cal_msg(aemp_node_t *n, const char *port, double timeout,
                   aemp_cal_fn cb, void *user, aemp_msg_t *req)
{
    const char *reply;
    aemp_msg_t *tail = NULL, *full = NULL;
    cal_t *c = aemp__calloc(1, sizeof *c);
    int rc = c ? aemp_port(n, on_reply, c, &reply) : AEMP_ENOMEM;
    if (rc < 0) {
        aemp__free(c);
        aemp_msg_unref(req);
        return rc;
    }
    c->cb = cb;
    c->user = user;
    if (!(c->reply = aemp__strdup(reply)) ||
        (rc = aemp_mon_guard(n, reply, cal_free, c, NULL)) < 0) {
        aemp__free(c->reply);
        aemp__free(c);
        aemp_kil(n, reply, NULL);
        aemp_msg_unref(req);
        return rc < 0 ? rc : AEMP_ENOMEM;
    }
    /* from here the reply port's death frees c */
    if ((rc = aemp_msg_new(&tail, "s", reply)) < 0 ||
        (rc = aemp__msg_concat(&full, req, tail)) < 0 ||
        (rc = aemp_mon_cb(n, port, on_dest_gone, c, &c->dest)) < 0 ||
        (timeout > 0 &&
         (rc = aemp_after_call(n, timeout, reply, on_timeout, c)) < 0) ||
        (rc = aemp__send(n, port, full)) < 0) {
        c->done = true; /* no callback: the caller hears rc */
        aemp_mon_cancel(c->dest);
        c->dest = NULL;
        aemp_kil(n, reply, NULL);
    }
    aemp_msg_unref(tail);
    aemp_msg_unref(full);
    aemp_msg_unref(req);
    return rc;
}

int aemp_cal(aemp_node_t *n, const char *port, double timeout, aemp_cal_fn cb,
             void *user, const char *picture, ...)
{
    if (!n || !port || !cb || timeout < 0 || timeout > 1e9)
        return AEMP_EINVAL;
    aemp_msg_t *req;
    va_list ap;
    va_start(ap, picture);
    int rc = aemp__msg_vnew(&req, picture, ap);
    va_end(ap);
    return rc < 0 ? rc : cal_msg(n, port, timeout, cb, user, req);
}

int aemp_calv(aemp_node_t *n, const char *port, double timeout, aemp_cal_fn cb,
              void *user, aemp_val_t **msg)
{
    if (!n || !port || !cb || !msg || timeout < 0 || timeout > 1e9)
        return AEMP_EINVAL;
    aemp_msg_t *req;
    int rc = aemp__msg_of_val(&req, *msg);
    if (rc == 0 && (rc = cal_msg(n, port, timeout, cb, user, req)) == 0) {
        aemp_val_free(*msg); /* taken only on success */
        *msg = NULL;
    }
    return rc;
}
