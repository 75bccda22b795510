/* Slave nodes: attaching to a master, and routing through relays — a
 * slave sends everything for other nodes to its master's node port as
 * ["snd", <port ID>, msg...], and other nodes reach a slave the same way
 * through the master named in its ID ("slave/<id>@<master>", with the
 * master's ',' written as '!'). */
#include "net.h"

#include <string.h>

int aemp__slave_candidate(aemp_node_t *n, const char *noderef)
{
    aemp__peer_t *p = aemp__peer_get(n, noderef, strlen(noderef), true);
    if (!p)
        return AEMP_ENOMEM;
    p->master_candidate = true;
    p->seed = true; /* until attached: keep trying */
    aemp__peer_need(p);
    if (p->up)
        aemp__net_link_ready(n, p);
    return 0;
}

int aemp__slave_attach(aemp_node_t *n, aemp__peer_t *master)
{
    aemp__net_t *net = n->net;
    const char *base = n->noderef; /* "slave/<id>" */
    char *name = aemp__asprintf("%s@%s", base, master->id);
    if (!name)
        return AEMP_ENOMEM;
    for (char *c = name; *c; c++)
        if (*c == ',')
            *c = '!';
    int rc = aemp__net_rename(n, name);
    aemp__free(name);
    if (rc < 0)
        return rc;
    net->master = master;
    aemp__log(n, AEMP_LOG_INFO, "attached to master %s as %s", master->id,
              n->noderef);
    size_t i = 0;
    aemp__peer_t *p;
    while ((p = aemp__strmap_next(&net->peers, &i))) {
        if (p == master)
            continue;
        if (p->master_candidate) {
            p->master_candidate = p->seed = false;
            if (p->link)
                aemp__link_close(p->link, "attached to another master");
        }
        p->via = master;
    }
    return aemp__peer_request(master, "ss", "iam", n->noderef);
}

/* "slave/<id>@<master>" -> the master's noderef. */
static char *master_of(const char *id, size_t len)
{
    const char *at = memchr(id, '@', len);
    if (len < 6 || memcmp(id, "slave/", 6) || !at || at + 1 == id + len)
        return NULL;
    char *m = aemp__strndup(at + 1, (size_t)(id + len - at - 1));
    for (char *c = m; c && *c; c++)
        if (*c == '!')
            *c = ',';
    return m;
}

aemp__peer_t *aemp__route_via(aemp_node_t *n, aemp__peer_t *p)
{
    aemp__net_t *net = n->net;
    if (net->master && p != net->master)
        return net->master;
    char *m = master_of(p->id, p->idlen);
    if (!m)
        return NULL;
    aemp__peer_t *via = NULL;
    if (strcmp(m, n->noderef) != 0) /* our own slaves link to us directly */
        via = aemp__peer_get(n, m, strlen(m), true);
    aemp__free(m);
    return via;
}

int aemp__relay(aemp__peer_t *p, const char *name, size_t namelen,
                const aemp_msg_t *m)
{
    aemp_msg_t *head, *req;
    /* the port ID is the node ID, '#', the name (none for the node port) */
    char *id = aemp__asprintf("%s#%.*s", p->id, (int)namelen, name);
    int rc = id ? aemp_msg_new(&head, "ss", "snd", namelen ? id : p->id)
                : AEMP_ENOMEM;
    aemp__free(id);
    if (rc < 0)
        return rc;
    rc = aemp__msg_concat(&req, head, m);
    aemp_msg_unref(head);
    if (rc == 0) {
        rc = aemp__peer_send(p->via, "", 0, req);
        aemp_msg_unref(req);
    }
    return rc;
}

static bool rename_peer(aemp__peer_t *p, const char *id, size_t len)
{
    aemp_node_t *n = p->node;
    char *copy = aemp__strndup(id, len);
    if (!copy)
        return false;
    aemp__strmap_del(&n->net->peers, p->id, p->idlen);
    char *old = p->id;
    p->id = copy;
    p->idlen = len;
    if (aemp__strmap_put(&n->net->peers, p->id, p->idlen, p) < 0) {
        p->id = old; /* keep the old name rather than lose the peer */
        p->idlen = strlen(old);
        aemp__strmap_put(&n->net->peers, p->id, p->idlen, p);
        aemp__free(copy);
        return false;
    }
    aemp__log(n, AEMP_LOG_INFO, "%s is now %s", old, p->id);
    aemp__free(old);
    return true;
}

/* Is id the name the linked slave p takes when it attaches to us? */
static bool our_slave_name(aemp__peer_t *p, const char *id, size_t len)
{
    char *m = NULL;
    bool ok = p->link && p->idlen > 6 && !memcmp(p->id, "slave/", 6) &&
              len > p->idlen + 1 && !memcmp(id, p->id, p->idlen) &&
              id[p->idlen] == '@' && (m = master_of(id, len)) &&
              !strcmp(m, p->node->noderef);
    aemp__free(m);
    return ok;
}

aemp__peer_t *aemp__slave_early(aemp_node_t *n, const char *id, size_t len)
{
    const char *at = memchr(id, '@', len);
    if (!at || len < 6 || memcmp(id, "slave/", 6))
        return NULL;
    aemp__peer_t *p =
        aemp__strmap_get(&n->net->peers, id, (size_t)(at - id));
    return p && our_slave_name(p, id, len) && rename_peer(p, id, len) ? p
                                                                       : NULL;
}

/* A slave that attached to us tells us its new name: it must extend the
 * name it greeted us with by "@<our noderef>", so that no peer can take
 * another's identity.  We may have taken the name already (a message for
 * the slave's new ID got here first: aemp__slave_early). */
void aemp__peer_iam(aemp__peer_t *p, const char *id)
{
    aemp_node_t *n = p->node;
    size_t len = strlen(id);
    if (len == p->idlen && !memcmp(id, p->id, len))
        return;
    if (!our_slave_name(p, id, len) || aemp__peer_get(n, id, len, false)) {
        aemp__log(n, AEMP_LOG_WARN, "refusing iam \"%s\" from %s", id, p->id);
        return;
    }
    rename_peer(p, id, len);
}
