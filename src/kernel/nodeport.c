/* The node port (PROTOCOL.md §7): requests ["<request>", args...] sent to
 * the bare noderef, by local code or by peers (`from` names the sending
 * node; NULL for local senders). */
#include "kernel.h"

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

/* The request named name (len bytes) in table t ({NULL}-ended; t may be
 * NULL), or NULL. */
static const aemp__request_t *table_find(const aemp__request_t *t,
                                         const char *name, size_t len)
{
    for (const aemp__request_t *r = t; r && r->name; r++)
        if (strlen(r->name) == len && !memcmp(r->name, name, len))
            return r;
    return NULL;
}

/* A request for a node port that a peer asks us to pass on (snd): what
 * arrives relayed looks as if we sent it, so a peer's relayed request to
 * our own node port, or one of the global service's to any node port,
 * would speak with our voice (entries in our name, a master's changes).
 * Those are refused; messages to ports pass as they always did. */
static bool relay_refused(aemp_node_t *n, const char *port,
                          const aemp_msg_t *msg)
{
    if (strchr(port, '#'))
        return false;
    uint64_t counter;
    if (aemp__port_locate(n, port, &counter) == 1)
        return true; /* our own node port */
    const char *name;
    size_t len;
    return aemp_val_str(aemp_msg_at(msg, 0), &name, &len) == 0 &&
           table_find(n->global_requests, name, len);
}

static void relay(aemp_node_t *n, const aemp_msg_t *req, size_t at,
                  const char *from)
{
    const char *port;
    aemp_msg_t *msg;
    if (aemp_val_str(aemp_msg_at(req, at), &port, NULL) < 0) {
        aemp__log(n, AEMP_LOG_WARN, "node port: snd without a port ID");
        return;
    }
    if (aemp__msg_slice(&msg, req, at + 1) < 0)
        return;
    int rc = 0;
    if (from && relay_refused(n, port, msg))
        aemp__log(n, AEMP_LOG_WARN,
                  "node port: %s asked us to relay a node-port request to "
                  "%s: refused (it would come from us)",
                  from, port);
    else
        rc = aemp__send(n, port, msg);
    if (rc < 0)
        aemp__log(n, AEMP_LOG_WARN, "node port: relay to %s: %s", port,
                  aemp_strerror(rc));
    aemp_msg_unref(msg);
}

static void req_snd(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    relay(n, req, 1, from);
}

static void req_snd_multiple(aemp_node_t *n, const aemp_msg_t *req,
                             const char *from)
{
    for (size_t i = 1; i < aemp_msg_len(req); i++) {
        aemp_msg_t *one;
        if (aemp__msg_of_val(&one, aemp_msg_at(req, i)) == 0) {
            relay(n, one, 0, from);
            aemp_msg_unref(one);
        }
    }
}

static void req_kil(aemp_node_t *n, const aemp_msg_t *req, const char *from)
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
    if (arr && n->net_ops)
        arr = n->net_ops->nodes(n, arr, up_only);
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

/* A request the program registered with aemp_node_handle; code sent by a
 * peer is never evaluated, unknown names are only logged. */
static void user_request(aemp_node_t *n, const char *req, const aemp_msg_t *m,
                         const char *from)
{
    const struct aemp__tag *h = aemp__tags_find(n->handlers, req, strlen(req));
    if (!h) {
        aemp__log(n, AEMP_LOG_INFO, "node port: unknown request \"%s\" from %s",
                  req, from ? from : "this node");
        return;
    }
    aemp_msg_t view;
    aemp__msg_view_tail(m, &view);
    aemp__run_in(n, n->node_port, h->cb, NULL, &view, h->user);
}

static void req_ignore(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
}

static void req_info(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    reply(n, req, 1, result_of("s", n->noderef));
}

static void req_time(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    reply(n, req, 1, result_of("d", wall_time()));
}

static void req_known_nodes(aemp_node_t *n, const aemp_msg_t *req,
                            const char *from)
{
    reply(n, req, 1, node_list(n, false));
}

static void req_up_nodes(aemp_node_t *n, const aemp_msg_t *req,
                         const char *from)
{
    reply(n, req, 1, node_list(n, true));
}

static void req_can(aemp_node_t *n, const aemp_msg_t *req, const char *from);

/* The kernel's requests; the network layer adds its own (n->net_requests:
 * mon1, mon0, kil0, iam), then come the program's (aemp_node_handle). */
static const aemp__request_t kernel_requests[] = {
    {"", req_ignore, false, false},
    {"devnull", req_ignore, false, false},
    {"snd", req_snd, false, false},
    {"snd_multiple", req_snd_multiple, false, false},
    {"kil", req_kil, false, false},
    {"kil1", req_kil, false, false}, /* Perl 2.x's name for it */
    {"can", req_can, false, false},  /* Perl 2.x */
    {"info", req_info, false, false},
    {"time", req_time, false, false},
    {"known_nodes", req_known_nodes, false, false},
    {"up_nodes", req_up_nodes, false, false},
    {"AnyEvent::MP::_spawn", aemp__spawn_request, false, true}, /* spawn.c */
    {NULL, NULL, false, false},
};

const aemp__request_t *aemp__nodeport_find(const aemp_node_t *n,
                                           const char *name, size_t len)
{
    const aemp__request_t *r = table_find(kernel_requests, name, len);
    if (!r)
        r = table_find(n->net_requests, name, len);
    return r ? r : table_find(n->global_requests, name, len);
}

void aemp__nodeport_dispatch(aemp_node_t *n, const aemp_msg_t *m,
                             const char *from)
{
    const char *req;
    if (aemp_val_str(aemp_msg_at(m, 0), &req, NULL) < 0) {
        aemp__log(n, AEMP_LOG_WARN, "node port: request without a name");
        return;
    }
    const aemp__request_t *r = aemp__nodeport_find(n, req, strlen(req));
    if (!r) {
        user_request(n, req, m, from);
    } else if (r->peer_only && !from) {
        aemp__log(n, AEMP_LOG_WARN, "node port: %s is for peers only", req);
    } else {
        r->fn(n, m, from);
    }
}

/* ["can", request, reply target...]: whether we answer that request
 * (built in or registered), as Perl 2.x replies: "1" or "" (its booleans
 * in JSON). */
static void req_can(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    const char *name;
    size_t len;
    if (aemp_val_str(aemp_msg_at(req, 1), &name, &len) < 0) {
        aemp__log(n, AEMP_LOG_WARN, "node port: can without a request name");
        return;
    }
    bool known = aemp__nodeport_find(n, name, len) ||
                 aemp__tags_find(n->handlers, name, len);
    reply(n, req, 2, result_of("s", known ? "1" : ""));
}

int aemp_node_handle(aemp_node_t *n, const char *request, aemp_rcv_fn fn,
                     void *user)
{
    if (!n || !request)
        return AEMP_EINVAL;
    if (aemp__nodeport_find(n, request, strlen(request)))
        return AEMP_EPERM;
    return aemp__tags_set(&n->handlers, request, fn, user);
}
