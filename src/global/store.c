/* The global node: it holds one shard per node (what each of its attached
 * nodes set, and what each other global node's attached nodes set, merged
 * by that node), the merged view of all shards that queries and monitors
 * see, and keeps links to every other global node (PROTOCOL.md §10). */
#include "global.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The monitors of a family: node ID -> its shard. */
typedef struct gmonset {
    aemp__strmap_t nodes;
    size_t flen;
    char family[];
} gmonset_t;

static const char *src_of(aemp_node_t *n, const char *from)
{
    return from ? from : n->noderef;
}

static aemp__gshard_t *shard_get(aemp__global_t *g, const char *id, bool create,
                                 bool slave)
{
    size_t len = strlen(id);
    aemp__gshard_t *s = aemp__strmap_get(&g->shards, id, len);
    if (s || !create)
        return s;
    if (!(s = aemp__calloc(1, sizeof *s + len + 1)))
        return NULL;
    memcpy(s->id, id, len);
    s->idlen = len;
    s->slave = slave;
    s->db.owns_values = true;
    if (aemp__strmap_put(&g->shards, s->id, len, s) < 0) {
        aemp__free(s);
        return NULL;
    }
    return s;
}

/* Another shard than `not` with f/k: one of our attached nodes' first,
 * as 2.x prefers them (their values are the ones we speak for). */
static aemp__dbent_t *other_holder(aemp__global_t *g, aemp__gshard_t * not,
                                   const char *f, size_t flen, const char *k,
                                   size_t klen, bool *slave)
{
    aemp__dbent_t *any = NULL;
    size_t i = 0;
    aemp__gshard_t *s;
    while ((s = aemp__strmap_next(&g->shards, &i))) {
        if (s == not )
            continue;
        aemp__dbent_t *e = aemp__db_get(&s->db, f, flen, k, klen);
        if (!e)
            continue;
        if (s->slave) {
            *slave = true;
            return e;
        }
        if (!any)
            any = e;
    }
    *slave = false;
    return any;
}

static void send_to_monitors(aemp__global_t *g, const char *f, size_t flen,
                             aemp_msg_t *m)
{
    gmonset_t *ms = aemp__strmap_get(&g->gmon, f, flen);
    size_t i = 0;
    aemp__gshard_t *s;
    while (m && ms && (s = aemp__strmap_next(&ms->nodes, &i)))
        aemp__send(g->node, s->id, m);
    aemp_msg_unref(m);
}

static aemp_msg_t *msg_of(aemp_val_t *arr)
{
    aemp_msg_t *m = NULL;
    aemp_msg_from_val(&m, &arr);
    aemp_val_free(arr);
    return m;
}

/* The heart of it (2.x's g_upd): node src sets the keys of `set` and
 * deletes those of `del` in family f.  The merged view follows; what our
 * attached nodes change goes on to the other global nodes; monitors hear
 * what changed in the merged view. */
static void upd(aemp__global_t *g, const char *src, const char *f,
                const aemp_val_t *set, const aemp_val_t *del)
{
    aemp_node_t *n = g->node;
    aemp__gshard_t *shard = shard_get(g, src, true, false);
    if (!shard) {
        aemp__log(n, AEMP_LOG_ERROR, "global: out of memory for %s", src);
        return;
    }
    size_t flen = strlen(f);
    aemp_val_t *out = aemp_map_new(), *shadow = aemp_map_new();
    aemp_val_t *del_global = aemp_arr_new(), *del_local = aemp_arr_new();
    bool changed = false;
    unsigned full = 0;
    /* an attached node names no other node global ('g: what global nodes
     * send is their attached nodes' and taken as it is).  'l stays open:
     * a node tells the addresses of 1.30 peers it learned (perl130.c) */
    bool own_only = !strcmp(f, "'g") && !aemp__global_is_self(g, src) &&
                    !aemp__strmap_get(&g->globals, src, strlen(src));
    aemp__strmap_t seen = {0}; /* keys in out: a map may repeat a key */
    for (size_t i = 0; i < aemp_val_len(set); i++) {
        const aemp_val_t *v;
        const char *k = aemp__db_key_at(set, i, &v);
        if (!k) {
            if (aemp_map_at(set, i, &k, &v) == 0 && !full++)
                aemp__log(n, AEMP_LOG_WARN,
                          "global: g_upd from %s ignored in part: a key of %s "
                          "has a NUL byte",
                          src, f);
            continue;
        }
        if (own_only && strcmp(k, src)) {
            if (!full++)
                aemp__log(n, AEMP_LOG_WARN,
                          "global: %s may not set %s's %s entry: ignored", src,
                          k, f);
            continue;
        }
        size_t klen = strlen(k);
        bool fresh = !aemp__db_get(&shard->db, f, flen, k, klen);
        if (fresh && shard->count >= AEMP__SHARD_MAX) {
            if (!full++)
                aemp__log(n, AEMP_LOG_WARN,
                          "global: %s holds %zu entries already: more are "
                          "ignored",
                          src, shard->count);
            continue;
        }
        aemp_val_t *copy = aemp_val_copy(v), *old = NULL;
        if (!copy || aemp__db_put(&shard->db, f, flen, k, klen, copy, &old) < 0)
            continue;
        shard->count += fresh;
        aemp__db_put(&g->merged, f, flen, k, klen, copy, NULL);
        aemp_val_free(old);
        size_t at = (size_t)(uintptr_t)aemp__strmap_get(&seen, k, klen);
        if (at && out) { /* repeated: the last value is the one told */
            aemp__map_replace_at(out, at - 1, aemp_val_copy(v));
        } else if (out &&
                   (out = aemp__map_append(out, k, klen, aemp_val_copy(v)))) {
            size_t len;
            const char *key =
                aemp__map_key_at(out, aemp_val_len(out) - 1, &len);
            aemp__strmap_put(&seen, key, len,
                             (void *)(uintptr_t)aemp_val_len(out));
        }
        changed = true;
    }
    aemp__strmap_free(&seen);
    for (size_t i = 0; i < aemp_val_len(del); i++) {
        const char *k;
        bool found, slave;
        if (aemp__db_name(aemp_val_at(del, i), &k) < 0) {
            if (!full++)
                aemp__log(n, AEMP_LOG_WARN,
                          "global: g_upd from %s ignored in part: a deleted "
                          "key of %s is no name",
                          src, f);
            continue;
        }
        size_t klen = strlen(k);
        aemp_val_t *old = aemp__db_take(&shard->db, f, flen, k, klen, &found);
        if (!found)
            continue;
        shard->count--;
        aemp__dbent_t *cur = aemp__db_get(&g->merged, f, flen, k, klen);
        aemp__dbent_t *other = other_holder(g, shard, f, flen, k, klen, &slave);
        if (other) {
            bool same = cur && aemp_val_equal(cur->val, other->val);
            aemp__db_put(&g->merged, f, flen, k, klen, other->val, NULL);
            if (slave) {
                if (!same)
                    out = aemp__map_append(out, k, klen,
                                           aemp_val_copy(other->val));
            } else {
                del_global = aemp_arr_push(del_global, aemp_strn(k, klen));
                if (!same)
                    shadow = aemp__map_append(shadow, k, klen,
                                              aemp_val_copy(other->val));
            }
        } else {
            bool gone;
            aemp__db_take(&g->merged, f, flen, k, klen, &gone);
            del_local = aemp_arr_push(del_local, aemp_strn(k, klen));
            if (shard->slave)
                del_global = aemp_arr_push(del_global, aemp_strn(k, klen));
        }
        aemp_val_free(old);
        changed = true;
    }
    if (!out || !shadow || !del_global || !del_local) {
        aemp__log(n, AEMP_LOG_ERROR, "global: out of memory telling a change");
        goto done;
    }
    if (!changed)
        goto done;
    if (shard->slave && (aemp_val_len(out) || aemp_val_len(del_global))) {
        aemp_msg_t *m =
            msg_of(aemp_arr(aemp_str("g_upd"), aemp_str(f), aemp_val_copy(out),
                            aemp_val_copy(del_global)));
        size_t i = 0;
        const char *id;
        while (m && (id = aemp__strmap_next(&g->globals, &i)))
            if (!aemp__global_is_self(g, id))
                aemp__send(n, id, m);
        aemp_msg_unref(m);
    }
    if (aemp_val_len(out) || aemp_val_len(shadow) || aemp_val_len(del_local)) {
        for (size_t i = 0; out && i < aemp_val_len(shadow); i++) {
            const char *k;
            const aemp_val_t *v;
            aemp_map_at(shadow, i, &k, &v);
            out = aemp_map_set(out, k, aemp_val_copy(v));
        }
        send_to_monitors(g, f, flen,
                         msg_of(out ? aemp_arr(aemp_str("g_chg2"), aemp_str(f),
                                               out, del_local)
                                    : NULL));
        out = del_local = NULL; /* taken */
    }
done:
    aemp_val_free(out);
    aemp_val_free(shadow);
    aemp_val_free(del_global);
    aemp_val_free(del_local);
}

static aemp_val_t *keys_array(const aemp__dbfam_t *fam)
{
    aemp_val_t *arr = aemp_arr_new();
    size_t i = 0;
    aemp__dbent_t *e;
    while (arr && fam && (e = aemp__strmap_next(&fam->keys, &i)))
        arr = aemp_arr_push(arr, aemp_strn(e->key, e->klen));
    return arr;
}

/* The whole of src's shard becomes db ({family: {key: value}}): what it
 * no longer has is deleted, the rest set. */
static void replace(aemp__global_t *g, const char *src, const aemp_val_t *db,
                    bool slave)
{
    aemp__gshard_t *shard = shard_get(g, src, true, slave);
    if (!shard)
        return;
    shard->slave = slave;
    /* families it no longer has (through an index of those it sends) */
    aemp__strmap_t sent_fams;
    bool ok = aemp__db_index_keys(db, &sent_fams) == 0;
    aemp_val_t *gone = ok ? aemp_arr_new() : NULL;
    size_t i = 0;
    aemp__dbfam_t *fam;
    while (gone && (fam = aemp__strmap_next(&shard->db.fams, &i)))
        if (!aemp__strmap_get(&sent_fams, fam->name, fam->flen))
            gone = aemp_arr_push(gone, aemp_strn(fam->name, fam->flen));
    aemp__strmap_free(&sent_fams);
    for (size_t j = 0; j < aemp_val_len(gone); j++) {
        const char *f;
        aemp_val_str(aemp_val_at(gone, j), &f, NULL);
        aemp_val_t *keys = keys_array(aemp__db_fam(&shard->db, f, strlen(f)));
        upd(g, src, f, NULL, keys);
        aemp_val_free(keys);
    }
    aemp_val_free(gone);
    for (size_t j = 0; j < aemp_val_len(db); j++) {
        const aemp_val_t *kv;
        const char *f = aemp__db_key_at(db, j, &kv);
        if (!f || (aemp_val_type(kv) != AEMP_T_MAP &&
                   aemp_val_type(kv) != AEMP_T_NULL)) {
            aemp__log(g->node, AEMP_LOG_WARN,
                      "global: database from %s ignored in part: family %zu "
                      "%s",
                      src, j,
                      f ? "is not a map" : "has a name with a NUL byte");
            continue;
        }
        /* what it no longer has, through an index of the keys it sends
         * (O(n) for a family of n keys) */
        aemp__strmap_t sent;
        aemp_val_t *dels =
            aemp__db_index_keys(kv, &sent) == 0 ? aemp_arr_new() : NULL;
        aemp__dbfam_t *have = aemp__db_fam(&shard->db, f, strlen(f));
        size_t k = 0;
        aemp__dbent_t *e;
        while (dels && have && (e = aemp__strmap_next(&have->keys, &k)))
            if (!aemp__strmap_get(&sent, e->key, e->klen))
                dels = aemp_arr_push(dels, aemp_strn(e->key, e->klen));
        aemp__strmap_free(&sent);
        upd(g, src, f, kv, dels);
        aemp_val_free(dels);
    }
}

static void mons_drop(aemp__global_t *g, aemp__gshard_t *s)
{
    size_t i = 0;
    char *f;
    while ((f = aemp__strmap_next(&s->mons, &i))) {
        gmonset_t *ms = aemp__strmap_get(&g->gmon, f, strlen(f));
        if (ms) {
            aemp__strmap_del(&ms->nodes, s->id, s->idlen);
            if (!ms->nodes.n) {
                aemp__strmap_del(&g->gmon, ms->family, ms->flen);
                aemp__strmap_free(&ms->nodes);
                aemp__free(ms);
            }
        }
        aemp__free(f);
    }
    aemp__strmap_free(&s->mons);
}

static void shard_free(aemp__global_t *g, aemp__gshard_t *s)
{
    mons_drop(g, s);
    aemp__strmap_del(&g->shards, s->id, s->idlen);
    aemp__db_free(&s->db);
    aemp__free(s);
}

/* Frees a family of shard s without telling anyone (out of memory): the
 * merged view must not keep pointing at its values. */
static void forget_family(aemp__global_t *g, aemp__gshard_t *s,
                          aemp__dbfam_t *fam)
{
    size_t i = 0;
    aemp__dbent_t *e;
    while ((e = aemp__strmap_next(&fam->keys, &i))) {
        aemp__dbent_t *cur =
            aemp__db_get(&g->merged, fam->name, fam->flen, e->key, e->klen);
        bool gone;
        if (cur && cur->val == e->val) /* (the family's own keys stay) */
            aemp__db_take(&g->merged, fam->name, fam->flen, e->key, e->klen,
                          &gone);
        s->count--;
    }
    aemp__db_fam_free(&s->db, fam);
}

/* Node id is gone (its link was lost), or said it turned global: what it
 * held goes, with its monitors (2.x's g_disconnect). */
static void disconnect(aemp__global_t *g, const char *id)
{
    aemp__free(aemp__strmap_del(&g->globals, id, strlen(id)));
    aemp__global_del(g, "'g", id);
    aemp__global_del(g, "'l", id);
    aemp__gshard_t *s = shard_get(g, id, false, false);
    if (!s)
        return;
    mons_drop(g, s);
    /* its families' names first: walking the map while upd() empties it
     * would restart from its first slot each time (quadratic) */
    aemp_val_t *fams = aemp_arr_new();
    size_t i = 0;
    aemp__dbfam_t *fam;
    while (fams && (fam = aemp__strmap_next(&s->db.fams, &i)))
        fams = aemp_arr_push(fams, aemp_strn(fam->name, fam->flen));
    for (size_t j = 0; j < aemp_val_len(fams); j++) {
        const char *f;
        aemp_val_str(aemp_val_at(fams, j), &f, NULL);
        if (!(fam = aemp__db_fam(&s->db, f, strlen(f))))
            continue;
        aemp_val_t *keys = keys_array(fam);
        if (keys)
            upd(g, id, f, NULL, keys);
        else /* no memory: drop the family unannounced */
            forget_family(g, s, fam);
        aemp_val_free(keys);
    }
    aemp_val_free(fams);
    while ((i = 0, fam = aemp__strmap_next(&s->db.fams, &i)))
        forget_family(g, s, fam); /* what no memory left to list */
    shard_free(g, s);
}

/* {family: {key: value}} of every attached node's shard, for another
 * global node (2.x's g_set). */
static aemp_val_t *slaves_merged(aemp__global_t *g)
{
    aemp__dbmap_t all = {.owns_values = false};
    size_t i = 0;
    aemp__gshard_t *s;
    while ((s = aemp__strmap_next(&g->shards, &i))) {
        if (!s->slave)
            continue;
        size_t j = 0;
        aemp__dbfam_t *fam;
        while ((fam = aemp__strmap_next(&s->db.fams, &j))) {
            size_t k = 0;
            aemp__dbent_t *e;
            while ((e = aemp__strmap_next(&fam->keys, &k)))
                aemp__db_put(&all, fam->name, fam->flen, e->key, e->klen,
                             e->val, NULL);
        }
    }
    aemp_val_t *v = aemp__db_val(&all);
    aemp__db_free(&all);
    return v;
}

static void global_connect(aemp__global_t *g, const char *id)
{
    aemp__global_set(g, "'g", id, aemp_null());
    aemp_val_t *db = slaves_merged(g);
    aemp__global_snd(g, id,
                     msg_of(db ? aemp_arr(aemp_str("g_set"), db) : NULL));
}

/* ---- the global node's requests -------------------------------------------
 */

static aemp__global_t *serving(aemp_node_t *n, const aemp_msg_t *req,
                               const char *from)
{
    aemp__global_t *g = n->global;
    if (g && g->global)
        return g;
    const char *name = "?";
    aemp_val_str(aemp_msg_at(req, 0), &name, NULL);
    aemp__log(n, AEMP_LOG_INFO,
              "global: %s from %s ignored: this node is not global", name,
              src_of(n, from));
    return NULL;
}

/* A malformed request from a peer: dropped, and said so. */
static void malformed(aemp_node_t *n, const aemp_msg_t *req, const char *from,
                      const char *what)
{
    const char *name = "?";
    aemp_val_str(aemp_msg_at(req, 0), &name, NULL);
    aemp__log(n, AEMP_LOG_WARN, "global: %s from %s ignored: %s", name,
              src_of(n, from), what);
}

/* ["g_slave"] starts the service here; ["g_slave", db]: the sender
 * attaches to us with its entries (null: as none, as 2.x's seeds send
 * it). */
void aemp__g_slave(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = n->global;
    if (!g)
        return;
    if (!g->global) {
        aemp__log(n, AEMP_LOG_INFO, "global: %s asks us to be global",
                  src_of(n, from));
        aemp__store_become_global(g);
    }
    const aemp_val_t *db = aemp_msg_at(req, 1);
    if (aemp_msg_len(req) < 2 || aemp_val_type(db) == AEMP_T_NULL)
        return;
    if (aemp_val_type(db) != AEMP_T_MAP) {
        malformed(n, req, from, "its database is not a map");
        return;
    }
    replace(g, src_of(n, from), db, true);
}

/* ["g_set", db] from another global node: its attached nodes' entries. */
void aemp__g_set(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = serving(n, req, from);
    if (!g || !from)
        return;
    const aemp_val_t *db = aemp_msg_at(req, 1);
    if (!aemp__strmap_get(&g->globals, from, strlen(from))) {
        malformed(n, req, from, "it did not say it is global (g_global)");
        return;
    }
    if (aemp_val_type(db) != AEMP_T_MAP) {
        malformed(n, req, from, "its database is not a map");
        return;
    }
    const aemp_val_t *l = aemp_map_get(aemp_map_get(db, "'l"), from);
    aemp_val_t *binds = l ? aemp_val_copy(l) : NULL;
    replace(g, from, db, false);
    /* its own addresses, mirrored so that global nodes find each other */
    if (binds)
        aemp__global_set(g, "'l", from, binds);
}

/* ["g_upd", family, {set} | null, [deleted] | null] */
void aemp__g_upd(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = serving(n, req, from);
    const char *f;
    if (!g)
        return;
    const aemp_val_t *set = aemp_msg_at(req, 2), *del = aemp_msg_at(req, 3);
    if (aemp__db_name(aemp_msg_at(req, 1), &f) < 0)
        malformed(n, req, from, "no family name");
    else if (set && aemp_val_type(set) != AEMP_T_MAP &&
             aemp_val_type(set) != AEMP_T_NULL)
        malformed(n, req, from, "what it sets is not a map");
    else if (del && aemp_val_type(del) != AEMP_T_ARR &&
             aemp_val_type(del) != AEMP_T_NULL)
        malformed(n, req, from, "what it deletes is not an array");
    else
        upd(g, src_of(n, from), f, set, del);
}

char *aemp__store_addrs(aemp__global_t *g, const char *id)
{
    aemp__dbent_t *e = aemp__db_get(&g->merged, "'l", 2, id, strlen(id));
    return e ? aemp__addrs_join(e->val) : NULL;
}

/* ["g_find", node] -> ["g_found", node, [addresses] | null] */
void aemp__g_find(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = serving(n, req, from);
    const char *id;
    if (!g)
        return;
    if (aemp__db_name(aemp_msg_at(req, 1), &id) < 0) {
        malformed(n, req, from, "no node ID");
        return;
    }
    aemp__dbent_t *e = aemp__db_get(&g->merged, "'l", 2, id, strlen(id));
    aemp__global_snd(g, src_of(n, from),
                     msg_of(aemp_arr(aemp_str("g_found"), aemp_str(id),
                                     e ? aemp_val_copy(e->val) : aemp_null())));
}

/* ["g_db_family" | "g_db_keys" | "g_db_values", family, id] ->
 * ["g_reply", id, result] */
void aemp__g_query(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = serving(n, req, from);
    const char *name, *f;
    const aemp_val_t *id = aemp_msg_at(req, 2);
    if (!g || aemp_val_str(aemp_msg_at(req, 0), &name, NULL) < 0)
        return;
    if (aemp__db_name(aemp_msg_at(req, 1), &f) < 0 || !id) {
        malformed(n, req, from, "no family name or no request ID");
        return;
    }
    aemp__dbfam_t *fam = aemp__db_fam(&g->merged, f, strlen(f));
    aemp_val_t *res;
    if (!strcmp(name, "g_db_family")) {
        res = aemp__db_fam_val(fam);
    } else {
        bool keys = !strcmp(name, "g_db_keys");
        res = aemp_arr_new();
        size_t i = 0;
        aemp__dbent_t *e;
        while (res && fam && (e = aemp__strmap_next(&fam->keys, &i)))
            res = aemp_arr_push(res, keys     ? aemp_strn(e->key, e->klen)
                                     : e->val ? aemp_val_copy(e->val)
                                              : aemp_null());
    }
    aemp__global_snd(
        g, src_of(n, from),
        msg_of(res ? aemp_arr(aemp_str("g_reply"), aemp_val_copy(id), res)
                   : NULL));
}

/* ["g_mon1", family] -> ["g_chg1", family, {all} | null]; ["g_mon0",
 * family] ends it. */
void aemp__g_mon(aemp_node_t *n, const aemp_msg_t *req, const char *from)
{
    aemp__global_t *g = serving(n, req, from);
    const char *name, *f;
    if (!g || aemp_val_str(aemp_msg_at(req, 0), &name, NULL) < 0)
        return;
    if (aemp__db_name(aemp_msg_at(req, 1), &f) < 0) {
        malformed(n, req, from, "no family name");
        return;
    }
    const char *src = src_of(n, from);
    size_t flen = strlen(f);
    bool on = !strcmp(name, "g_mon1");
    aemp__gshard_t *s = shard_get(g, src, on, true);
    if (!s)
        return;
    gmonset_t *ms = aemp__strmap_get(&g->gmon, f, flen);
    if (!on) {
        if (ms && aemp__strmap_del(&ms->nodes, s->id, s->idlen) &&
            !ms->nodes.n) {
            aemp__strmap_del(&g->gmon, ms->family, ms->flen);
            aemp__strmap_free(&ms->nodes);
            aemp__free(ms);
        }
        aemp__free(aemp__strmap_del(&s->mons, f, flen));
        return;
    }
    if (!aemp__strmap_get(&s->mons, f, flen) && s->mons.n >= AEMP__MONS_MAX) {
        aemp__log(n, AEMP_LOG_WARN,
                  "global: %s monitors %zu families already: g_mon1 %s "
                  "ignored",
                  src, s->mons.n, f);
        return;
    }
    if (!ms) {
        if (!(ms = aemp__calloc(1, sizeof *ms + flen + 1)))
            return;
        memcpy(ms->family, f, flen);
        ms->flen = flen;
        if (aemp__strmap_put(&g->gmon, ms->family, flen, ms) < 0) {
            aemp__free(ms);
            return;
        }
    }
    char *fcopy =
        aemp__strmap_get(&s->mons, f, flen) ? NULL : aemp__strndup(f, flen);
    if (fcopy && aemp__strmap_put(&s->mons, fcopy, flen, fcopy) < 0)
        aemp__free(fcopy);
    aemp__strmap_put(&ms->nodes, s->id, s->idlen, s);
    aemp__dbfam_t *fam = aemp__db_fam(&g->merged, f, flen);
    aemp__global_snd(
        g, src,
        msg_of(aemp_arr(aemp_str("g_chg1"), aemp_str(f),
                        fam ? aemp__db_fam_val(fam) : aemp_null())));
}

/* ---- becoming global, node events --------------------------------------- */

/* The global nodes we know ('g): keep links to all of them. */
static void on_globals(aemp_node_t *n, const char *family, const aemp_val_t *db,
                       const aemp_val_t *added, const aemp_val_t *changed,
                       const aemp_val_t *deleted, void *user)
{
    aemp__global_t *g = user;
    for (size_t i = 0; i < aemp_val_len(added); i++) {
        const char *id;
        if (aemp_val_str(aemp_val_at(added, i), &id, NULL) < 0 ||
            aemp__global_is_self(g, id) || aemp__id_check(id, strlen(id)) < 0)
            continue;
        aemp__peer_t *p = aemp__peer_get(n, id, strlen(id), true);
        if (p && !p->seed) {
            aemp__log(n, AEMP_LOG_INFO, "global: keeping a link to %s", id);
            p->seed = true;
            aemp__peer_need(p);
        }
    }
    for (size_t i = 0; i < aemp_val_len(deleted); i++) {
        const char *id;
        if (aemp_val_str(aemp_val_at(deleted, i), &id, NULL) < 0)
            continue;
        aemp__peer_t *p = aemp__peer_find(n, id);
        if (p && !p->gseed)
            p->seed = false;
    }
}

void aemp__store_become_global(aemp__global_t *g)
{
    aemp_node_t *n = g->node;
    if (g->global)
        return;
    g->global = true;
    g->merged.owns_values = false;
    aemp__log(n, AEMP_LOG_INFO, "global: this node is global now");
    aemp__global_attach_self(g);
    aemp__global_set(g, "'g", n->noderef, aemp_null());
    aemp_msg_t *up = NULL;
    aemp_up_nodes(n, &up);
    for (size_t i = 0; i < aemp_msg_len(up); i++) {
        const char *id;
        if (aemp_val_str(aemp_msg_at(up, i), &id, NULL) == 0)
            aemp__store_node_up(g, id);
    }
    aemp_msg_unref(up);
    aemp_db_mon(n, "'g", on_globals, g, NULL);
}

/* A link to id came up: tell it we are global; a global one gets our
 * attached nodes' entries. */
void aemp__store_node_up(aemp__global_t *g, const char *id)
{
    aemp__peer_t *p = aemp__peer_find(g->node, id);
    if (!p || p->dialect == AEMP__DIALECT_PERL1)
        return; /* 1.30 has no g_global ("unable to resolve") */
    aemp_msg_t *m = NULL;
    aemp_msg_new(&m, "s", "g_global");
    aemp__global_snd(g, id, m);
    if (aemp__strmap_get(&g->globals, id, strlen(id)))
        global_connect(g, id);
}

/* ["g_global"] on a global node: the sender is global too; what it held
 * as our attached node goes, and we exchange our attached nodes'. */
void aemp__store_hello(aemp__global_t *g, const char *id)
{
    disconnect(g, id);
    char *copy = aemp__strdup(id);
    if (copy && aemp__strmap_put(&g->globals, copy, strlen(copy), copy) < 0)
        aemp__free(copy);
    global_connect(g, id);
}

void aemp__store_node_down(aemp__global_t *g, const char *id)
{
    disconnect(g, id);
}

void aemp__store_free(aemp__global_t *g)
{
    size_t i;
    aemp__gshard_t *s;
    while ((i = 0, s = aemp__strmap_next(&g->shards, &i)))
        shard_free(g, s);
    aemp__strmap_free(&g->shards);
    gmonset_t *ms;
    while ((i = 0, ms = aemp__strmap_next(&g->gmon, &i))) {
        aemp__strmap_del(&g->gmon, ms->family, ms->flen);
        aemp__strmap_free(&ms->nodes);
        aemp__free(ms);
    }
    aemp__strmap_free(&g->gmon);
    aemp__db_free(&g->merged);
    char *id;
    while ((i = 0, id = aemp__strmap_next(&g->globals, &i))) {
        aemp__strmap_del(&g->globals, id, strlen(id));
        aemp__free(id);
    }
    aemp__strmap_free(&g->globals);
}

void aemp__store_lists(aemp__global_t *g, aemp_val_t **attached,
                       aemp_val_t **globals)
{
    size_t i = 0;
    aemp__gshard_t *s;
    while (*attached && (s = aemp__strmap_next(&g->shards, &i)))
        if (s->slave && !aemp__global_is_self(g, s->id) && s->db.fams.n)
            *attached = aemp_arr_push(*attached, aemp_strn(s->id, s->idlen));
    i = 0;
    const char *id;
    while (*globals && (id = aemp__strmap_next(&g->globals, &i)))
        *globals = aemp_arr_push(*globals, aemp_str(id));
}
