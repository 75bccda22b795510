/* A string-keyed hash map for the node table (peers by node ID, remote
 * port stubs by port name, ...).  Keys are borrowed from the values: an
 * entry's key must stay valid while it is in the map. */
#ifndef AEMP_STRMAP_H
#define AEMP_STRMAP_H

#include "internal.h"

typedef struct aemp__strmap_slot {
    const char *key; /* NULL: empty */
    size_t len;
    uint64_t hash;
    void *val;
} aemp__strmap_slot_t;

typedef struct aemp__strmap {
    aemp__strmap_slot_t *slots;
    size_t cap, n;
} aemp__strmap_t;

void *aemp__strmap_get(const aemp__strmap_t *m, const char *key, size_t len);
/* Inserts or replaces.  0 or AEMP_ENOMEM (map unchanged). */
int aemp__strmap_put(aemp__strmap_t *m, const char *key, size_t len,
                     void *val);
/* Removes and returns the value, or NULL. */
void *aemp__strmap_del(aemp__strmap_t *m, const char *key, size_t len);
void aemp__strmap_free(aemp__strmap_t *m);

/* Iteration: call with *i = 0; returns values until NULL.  Deleting an
 * entry may move later ones back: restart from 0 after a deletion. */
void *aemp__strmap_next(const aemp__strmap_t *m, size_t *i);

#endif
