/* The node port (PROTOCOL.md §7): requests ["<request>", args...] sent to
 * the bare noderef, by local code or by peers (`from` names the sending
 * node; NULL for local senders). */
#include "net.h"

#include <string.h>
#include <time.h>

/* snd(target..., result): target is the request's elements from `at` on:
 * a port ID and leading message elements. */
static void reply(aemp_node_t *n, const aemp_msg_t *req, size_t at,
                  aemp_msg_t *result)
{
    const char *port;
    aemp_msg_t *head = NULL, *msg = NULL;
    int rc = AEMP_ENOMEM;
    if (!result)
        goto done;
    if (aemp_val_str(aemp_msg_at(req, at), &port, NULL) < 0) {
        rc = AEMP_EPROTO;
        goto done;
    }
    if ((rc = aemp__msg_slice(&head, req, at + 1)) < 0 ||
        (rc = aemp__msg_concat(&msg, head, result)) < 0)
        goto done;
    rc = aemp__send(n, port, msg);
done:
    if (rc < 0)
        aemp__log(n, AEMP_LOG_WARN, "node port: cannot reply: %s",
                  aemp_strerror(rc));
    aemp_msg_unref(head);
    aemp_msg_unref(msg);
    aemp_msg_unref(result);
}

static void relay(aemp_node_t *n, const aemp_msg_t *req, size_t at)
{
    const char *port;
    aemp_msg_t *msg;
    if (aemp_val_str(aemp_msg_at(req, at), &port, NULL) < 0) {
        aemp__log(n, AEMP_LOG_WARN, "node port: snd without a port ID");
        return;
    }
    if (aemp__msg_slice(&msg, req, at + 1) < 0)
        return;
    int rc = aemp__send(n, port, msg);
    if (rc < 0)
        aemp__log(n, AEMP_LOG_WARN, "node port: relay to %s: %s", port,
                  aemp_strerror(rc));
    aemp_msg_unref(msg);
}

static void relay_multiple(aemp_node_t *n, const aemp_msg_t *req)
{
    for (size_t i = 1; i < aemp_msg_len(req); i++) {
        aemp_msg_t *one;
        if (aemp__msg_of_val(&one, aemp_msg_at(req, i)) == 0) {
            relay(n, one, 0);
            aemp_msg_unref(one);
        }
    }
}

static void kill_named(aemp_node_t *n, const aemp_msg_t *req)
{
    const char *name;
    aemp_msg_t *reason;
    if (aemp_val_str(aemp_msg_at(req, 1), &name, NULL) < 0 ||
        aemp__msg_slice(&reason, req, 2) < 0)
        return;
    char *id = aemp__asprintf("%s#%s", n->noderef, name);
    aemp__port_t *p;
    if (id && aemp__port_find(n, id, &p) == 0)
        aemp__port_kill(n, p, aemp__msg_ref(reason)); /* a block: never NULL */
    aemp__free(id);
    aemp_msg_unref(reason);
}

static aemp_msg_t *result_of(const char *pic, ...)
{
    aemp_msg_t *m = NULL;
    va_list ap;
    va_start(ap, pic);
    aemp__msg_vnew(&m, pic, ap);
    va_end(ap);
    return m;
}

static double wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A message of the node IDs we know (up_only: with a link). */
static aemp_msg_t *node_list(aemp_node_t *n, bool up_only)
{
    aemp_msg_t *m = NULL;
    /* we know ourselves, but are not "up" to ourselves */
    aemp_val_t *arr = up_only ? aemp_arr_new() : aemp_arr(aemp_str(n->noderef));
    size_t i = 0;
    aemp__peer_t *p;
    while (arr && n->net && (p = aemp__strmap_next(&n->net->peers, &i)))
        if (!up_only || p->up)
            arr = aemp_arr_push(arr, aemp_strn(p->id, p->idlen));
    aemp_msg_from_val(&m, &arr);
    aemp_val_free(arr);
    return m;
}

int aemp_known_nodes(aemp_node_t *n, aemp_msg_t **out)
{
    if (!n || !out)
        return AEMP_EINVAL;
    return (*out = node_list(n, false)) ? 0 : AEMP_ENOMEM;
}

int aemp_up_nodes(aemp_node_t *n, aemp_msg_t **out)
{
    if (!n || !out)
        return AEMP_EINVAL;
    return (*out = node_list(n, true)) ? 0 : AEMP_ENOMEM;
}

/* Requests only a peer can make: they are about the link to it. */
static bool peer_request(aemp_node_t *n, const char *req, const aemp_msg_t *m,
                         const char *from)
{
    aemp__peer_t *peer =
        from ? aemp__peer_get(n, from, strlen(from), false) : NULL;
    const char *name;
    if (strcmp(req, "mon1") && strcmp(req, "mon0") && strcmp(req, "kil0") &&
        strcmp(req, "iam"))
        return false;
    if (!peer || aemp_val_str(aemp_msg_at(m, 1), &name, NULL) < 0) {
        aemp__log(n, AEMP_LOG_WARN, "node port: malformed %s from %s", req,
                  from ? from : "a local port");
        return true;
    }
    if (!strcmp(req, "mon1"))
        aemp__peer_watch(peer, name);
    else if (!strcmp(req, "mon0"))
        aemp__peer_unwatch(peer, name);
    else if (!strcmp(req, "kil0"))
        aemp__peer_kil0(peer, m);
    else
        aemp__peer_iam(peer, name);
    return true;
}

/* A request the program registered with aemp_node_handle; code sent by a
 * peer is never evaluated, unknown names are only logged. */
static void user_request(aemp_node_t *n, const char *req, const aemp_msg_t *m)
{
    const struct aemp__tag *h = aemp__tags_find(n->handlers, req, strlen(req));
    if (!h) {
        aemp__log(n, AEMP_LOG_INFO, "node port: unknown request \"%s\"", req);
        return;
    }
    aemp_msg_t view;
    aemp__msg_view_tail(m, &view);
    aemp__run_in(n, n->node_port, h->cb, NULL, &view, h->user);
}

void aemp__nodeport_dispatch(aemp_node_t *n, const aemp_msg_t *m,
                             const char *from)
{
    const char *req;
    if (aemp_val_str(aemp_msg_at(m, 0), &req, NULL) < 0) {
        aemp__log(n, AEMP_LOG_WARN, "node port: request without a name");
        return;
    }
    if (!*req || !strcmp(req, "devnull"))
        return;
    if (!strcmp(req, "snd"))
        relay(n, m, 1);
    else if (!strcmp(req, "snd_multiple"))
        relay_multiple(n, m);
    else if (!strcmp(req, "kil"))
        kill_named(n, m);
    else if (!strcmp(req, "info"))
        reply(n, m, 1, result_of("s", n->noderef));
    else if (!strcmp(req, "time"))
        reply(n, m, 1, result_of("d", wall_time()));
    else if (!strcmp(req, "known_nodes"))
        reply(n, m, 1, node_list(n, false));
    else if (!strcmp(req, "up_nodes"))
        reply(n, m, 1, node_list(n, true));
    else if (peer_request(n, req, m, from))
        ;
    else
        user_request(n, req, m);
}

static const char *const builtin[] = {
    "", "devnull", "snd", "snd_multiple", "kil", "info", "time", "known_nodes",
    "up_nodes", "mon1", "mon0", "kil0", "iam", "AnyEvent::MP::_spawn", NULL};

int aemp_node_handle(aemp_node_t *n, const char *request, aemp_rcv_fn fn,
                     void *user)
{
    if (!n || !request)
        return AEMP_EINVAL;
    for (size_t i = 0; builtin[i]; i++)
        if (!strcmp(request, builtin[i]))
            return AEMP_EPERM;
    return aemp__tags_set(&n->handlers, request, fn, user);
}
