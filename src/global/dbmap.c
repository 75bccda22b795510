/* Families of key -> value (dbmap.h). */
#include "dbmap.h"

#include <string.h>

aemp__dbfam_t *aemp__db_fam(const aemp__dbmap_t *db, const char *f, size_t flen)
{
    return aemp__strmap_get(&db->fams, f, flen);
}

aemp__dbent_t *aemp__db_get(const aemp__dbmap_t *db, const char *f, size_t flen,
                            const char *k, size_t klen)
{
    aemp__dbfam_t *fam = aemp__db_fam(db, f, flen);
    return fam ? aemp__strmap_get(&fam->keys, k, klen) : NULL;
}

static aemp__dbfam_t *fam_new(aemp__dbmap_t *db, const char *f, size_t flen)
{
    aemp__dbfam_t *fam = aemp__calloc(1, sizeof *fam + flen + 1);
    if (!fam)
        return NULL;
    memcpy(fam->name, f, flen);
    fam->flen = flen;
    if (aemp__strmap_put(&db->fams, fam->name, flen, fam) < 0) {
        aemp__free(fam);
        return NULL;
    }
    return fam;
}

int aemp__db_put(aemp__dbmap_t *db, const char *f, size_t flen, const char *k,
                 size_t klen, aemp_val_t *val, aemp_val_t **old)
{
    if (old)
        *old = NULL;
    aemp__dbfam_t *fam = aemp__db_fam(db, f, flen);
    bool fresh = !fam;
    if (!fam && !(fam = fam_new(db, f, flen)))
        goto nomem;
    aemp__dbent_t *e = aemp__strmap_get(&fam->keys, k, klen);
    if (e) {
        if (old)
            *old = e->val;
        else if (db->owns_values)
            aemp_val_free(e->val);
        e->val = val;
        return 0;
    }
    if (!(e = aemp__malloc(sizeof *e + klen + 1)))
        goto nomem_fam;
    memcpy(e->key, k, klen);
    e->key[klen] = 0;
    e->klen = klen;
    e->val = val;
    if (aemp__strmap_put(&fam->keys, e->key, klen, e) < 0) {
        aemp__free(e);
        goto nomem_fam;
    }
    return 0;
nomem_fam:
    if (fresh)
        aemp__db_fam_free(db, fam);
nomem:
    if (db->owns_values)
        aemp_val_free(val);
    return AEMP_ENOMEM;
}

aemp_val_t *aemp__db_take(aemp__dbmap_t *db, const char *f, size_t flen,
                          const char *k, size_t klen, bool *found)
{
    aemp__dbfam_t *fam = aemp__db_fam(db, f, flen);
    aemp__dbent_t *e = fam ? aemp__strmap_del(&fam->keys, k, klen) : NULL;
    *found = e != NULL;
    if (!e)
        return NULL;
    aemp_val_t *v = e->val;
    aemp__free(e);
    if (!fam->keys.n)
        aemp__db_fam_free(db, fam);
    return v;
}

void aemp__db_fam_free(aemp__dbmap_t *db, aemp__dbfam_t *fam)
{
    aemp__strmap_del(&db->fams, fam->name, fam->flen);
    size_t i = 0;
    aemp__dbent_t *e;
    while ((e = aemp__strmap_next(&fam->keys, &i))) {
        if (db->owns_values)
            aemp_val_free(e->val);
        aemp__free(e);
    }
    aemp__strmap_free(&fam->keys);
    aemp__free(fam);
}

void aemp__db_free(aemp__dbmap_t *db)
{
    size_t i;
    aemp__dbfam_t *fam;
    while ((i = 0, fam = aemp__strmap_next(&db->fams, &i)))
        aemp__db_fam_free(db, fam);
    aemp__strmap_free(&db->fams);
}

aemp_val_t *aemp__db_fam_val(const aemp__dbfam_t *fam)
{
    aemp_val_t *map = aemp_map_new();
    size_t i = 0;
    aemp__dbent_t *e;
    while (map && fam && (e = aemp__strmap_next(&fam->keys, &i)))
        map = aemp__map_append(map, e->key, e->klen,
                               e->val ? aemp_val_copy(e->val) : aemp_null());
    return map;
}

aemp_val_t *aemp__db_val(const aemp__dbmap_t *db)
{
    aemp_val_t *map = aemp_map_new();
    size_t i = 0;
    aemp__dbfam_t *fam;
    while (map && (fam = aemp__strmap_next(&db->fams, &i)))
        map =
            aemp__map_append(map, fam->name, fam->flen, aemp__db_fam_val(fam));
    return map;
}

size_t aemp__db_count(const aemp__dbmap_t *db)
{
    size_t i = 0, count = 0;
    aemp__dbfam_t *fam;
    while ((fam = aemp__strmap_next(&db->fams, &i)))
        count += fam->keys.n;
    return count;
}

int aemp__db_index_keys(const aemp_val_t *map, aemp__strmap_t *out)
{
    *out = (aemp__strmap_t){0};
    for (size_t i = 0; i < aemp_val_len(map); i++) {
        const aemp_val_t *v;
        const char *k = aemp__db_key_at(map, i, &v);
        if (k && aemp__strmap_put(out, k, strlen(k), (void *)v) < 0)
            return AEMP_ENOMEM;
    }
    return 0;
}

int aemp__db_name(const aemp_val_t *v, const char **s)
{
    size_t len;
    return aemp_val_str(v, s, &len) == 0 && strlen(*s) == len ? 0 : -1;
}

const char *aemp__db_key_at(const aemp_val_t *map, size_t i,
                            const aemp_val_t **v)
{
    const char *k;
    if (aemp_map_at(map, i, &k, v) < 0)
        return NULL;
    size_t len;
    aemp__map_key_at(map, i, &len);
    return strlen(k) == len ? k : NULL;
}
