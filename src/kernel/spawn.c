/* spawn: a port created on another node (or this one) running an init
 * function named by the spawner.  The spawner chooses the port's name, so
 * it knows the port ID at once and may send to and monitor the port before
 * it exists: on the wire the request ["AnyEvent::MP::_spawn", name, init,
 * args...] to the node port comes first, and the node creates the port as
 * soon as it reads the request — before the packets behind it are looked
 * at — and runs the init function from its queue, ahead of them. */
#include "kernel.h"

#include <stdio.h>
#include <string.h>

#define SPAWN_REQUEST "AnyEvent::MP::_spawn"

/* Fully qualified ("pkg::init"), and nothing a module lookup could turn
 * into another path. */
static bool init_name_ok(const char *name)
{
    return strstr(name, "::") && !strstr(name, "..") && !strchr(name, '/');
}

/* Queues the init of port p (the item runs it in p's context). */
static int queue_init(aemp_node_t *n, aemp__port_t *p, const char *init,
                      aemp_msg_t *args, bool registered_only)
{
    aemp__item_t *it = aemp__item_new(n, AEMP__SPAWN);
    if (!it || !(it->id = aemp__strdup(init))) {
        aemp__free(it);
        aemp_msg_unref(args);
        return AEMP_ENOMEM;
    }
    it->counter = p->counter;
    it->msg = args;
    it->skip = registered_only;
    aemp__enqueue(n, it);
    return 0;
}

void aemp__process_spawn(aemp_node_t *n, aemp__item_t *it)
{
    aemp__port_t *p = aemp__port_get(n, it->counter);
    if (p) /* not killed meanwhile */
        aemp__run_init(n, p, it->id, it->msg, it->skip);
    aemp_msg_unref(it->msg);
    aemp__free(it->id);
}

void aemp__spawn_request(aemp_node_t *n, const aemp_msg_t *req,
                         const char *from)
{
    const char *name, *init;
    aemp_msg_t *args;
    aemp__port_t *p;
    if (aemp_val_str(aemp_msg_at(req, 1), &name, NULL) < 0 ||
        aemp_val_str(aemp_msg_at(req, 2), &init, NULL) < 0) {
        aemp__log(n, AEMP_LOG_WARN, "spawn from %s: malformed request",
                  from ? from : "a local port");
        return;
    }
    int rc = aemp__port_new(n, name, &p);
    if (rc < 0) {
        /* its monitors, if any, hear "no such port" */
        aemp__log(n, AEMP_LOG_WARN, "spawn of %s from %s refused: %s", name,
                  from ? from : "a local port",
                  rc == AEMP_EBUSY ? "name taken" : aemp_strerror(rc));
        return;
    }
    if (!init_name_ok(init)) {
        char why[300];
        snprintf(why, sizeof why,
                 "unable to resolve '%s': not a fully qualified name", init);
        aemp__log(n, AEMP_LOG_WARN, "spawn of %s: %s", name, why);
        aemp__kill_die(n, p, why);
        return;
    }
    if ((rc = aemp__msg_slice(&args, req, 3)) < 0 ||
        (rc = queue_init(n, p, init, args, from && n->secure)) < 0)
        aemp__kill_die(n, p, aemp_strerror(rc));
}

/* ---- the spawner's side ------------------------------------------------- */

static int spawn_msg(aemp_node_t *n, const char *node, const char *init,
                     char *id, size_t idsize, aemp_msg_t *args)
{
    char nid[1024];
    int len = aemp_node_of(node, nid, sizeof nid);
    int rc = len <= 0 ? AEMP_EINVAL : 0;
    uint64_t counter;
    if (rc == 0 && !init_name_ok(init))
        rc = AEMP_EINVAL;
    if (rc == 0 && (rc = aemp__port_locate(n, nid, &counter)) == 1) {
        /* here: the port now, its init from the queue, so that we return
         * first and what is sent to it meanwhile queues behind */
        aemp__port_t *p;
        if ((size_t)snprintf(id, idsize, "%s#%s.%llu", n->noderef, n->cookie,
                             (unsigned long long)n->next_counter) >= idsize)
            rc = AEMP_ERANGE; /* the ID the port is about to get */
        else if ((rc = aemp__port_new(n, NULL, &p)) == 0) {
            rc = queue_init(n, p, init, args, false);
            args = NULL;
            if (rc < 0)
                aemp__kill_die(n, p, aemp_strerror(rc));
        }
    } else if (rc == 0) {
        /* there: a name of ours is unique on every node (the cookie) */
        char name[AEMP__COOKIE_LEN + 24];
        snprintf(name, sizeof name, "%s.%llu", n->cookie,
                 (unsigned long long)n->next_counter);
        aemp_msg_t *head = NULL, *req = NULL;
        if ((size_t)snprintf(id, idsize, "%s#%s", nid, name) >= idsize)
            rc = AEMP_ERANGE;
        else if ((rc = aemp_msg_new(&head, "sss", SPAWN_REQUEST, name,
                                    init)) == 0 &&
                 (rc = aemp__msg_concat(&req, head, args)) == 0 &&
                 (rc = aemp__send(n, nid, req)) == 0)
            n->next_counter++;
        aemp_msg_unref(head);
        aemp_msg_unref(req);
    }
    aemp_msg_unref(args);
    if (rc < 0 && idsize)
        *id = 0;
    return rc;
}

int aemp_spawn(aemp_node_t *n, const char *node, const char *init, char *id,
               size_t idsize, const char *picture, ...)
{
    if (!n || !node || !init || !id)
        return AEMP_EINVAL;
    aemp_msg_t *args;
    va_list ap;
    va_start(ap, picture);
    int rc = aemp__msg_vnew(&args, picture, ap);
    va_end(ap);
    return rc < 0 ? rc : spawn_msg(n, node, init, id, idsize, args);
}

int aemp_spawnv(aemp_node_t *n, const char *node, const char *init, char *id,
                size_t idsize, aemp_val_t **args)
{
    aemp_msg_t *m;
    if (!n || !node || !init || !id || !args)
        return AEMP_EINVAL;
    int rc = aemp__msg_of_val(&m, *args);
    if (rc == 0 && (rc = spawn_msg(n, node, init, id, idsize, m)) == 0) {
        aemp_val_free(*args); /* taken only on success */
        *args = NULL;
    }
    return rc;
}
