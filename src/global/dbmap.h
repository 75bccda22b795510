/* A database: families of key -> value, two levels of string-keyed hash
 * maps.  Used for a node's own entries, for each node's shard a global
 * node holds, and for the merged view of a global node (whose values are
 * borrowed from the shards: owns_values false). */
#ifndef AEMP_DBMAP_H
#define AEMP_DBMAP_H

#include "strmap.h"
#include "value.h"

typedef struct aemp__dbent {
    aemp_val_t *val; /* owned when the map owns its values */
    size_t klen;
    char key[]; /* NUL-terminated */
} aemp__dbent_t;

typedef struct aemp__dbfam {
    aemp__strmap_t keys; /* key -> aemp__dbent_t */
    size_t flen;
    char name[];
} aemp__dbfam_t;

typedef struct aemp__dbmap {
    aemp__strmap_t fams; /* family -> aemp__dbfam_t */
    bool owns_values;
} aemp__dbmap_t;

aemp__dbfam_t *aemp__db_fam(const aemp__dbmap_t *db, const char *f,
                            size_t flen);
aemp__dbent_t *aemp__db_get(const aemp__dbmap_t *db, const char *f, size_t flen,
                            const char *k, size_t klen);
/* Sets f/k to val (taken when the map owns values, even on failure).  *old
 * (may be NULL) gets the value it replaces, which the caller then owns
 * (owned maps) — NULL if the key was new.  0 or AEMP_ENOMEM. */
int aemp__db_put(aemp__dbmap_t *db, const char *f, size_t flen, const char *k,
                 size_t klen, aemp_val_t *val, aemp_val_t **old);
/* Removes f/k; returns its value (the caller's for owned maps) and sets
 * *found; an emptied family goes too. */
aemp_val_t *aemp__db_take(aemp__dbmap_t *db, const char *f, size_t flen,
                          const char *k, size_t klen, bool *found);
void aemp__db_fam_free(aemp__dbmap_t *db, aemp__dbfam_t *fam);
void aemp__db_free(aemp__dbmap_t *db);
/* The family as a map value (values copied); an empty map if absent. */
aemp_val_t *aemp__db_fam_val(const aemp__dbfam_t *fam);
/* The whole database as {family: {key: value}} (copied). */
aemp_val_t *aemp__db_val(const aemp__dbmap_t *db);
/* A name (family, key, node ID) from a peer: a string (text or bytes)
 * without NUL bytes — a NUL would make it another name here.  0 and *s,
 * or -1. */
int aemp__db_name(const aemp_val_t *v, const char **s);
/* The i-th key of a map value as a name (NULL if it has a NUL byte or is
 * out of range), *v its value. */
const char *aemp__db_key_at(const aemp_val_t *map, size_t i,
                            const aemp_val_t **v);
/* An index of a map value's keys (key -> its value, both borrowed from
 * map): out is zeroed first; 0 or AEMP_ENOMEM (out then holds part of
 * them; free it with aemp__strmap_free either way). */
int aemp__db_index_keys(const aemp_val_t *map, aemp__strmap_t *out);
/* Entries and bytes (its records, keys and values) — for the benchmark's
 * memory figure. */
size_t aemp__db_count(const aemp__dbmap_t *db);

#endif
