/* A family as a monitoring node sees it (global.h): the map value that
 * db_mon callbacks get as it is, and a hash index of its keys, so that a
 * change costs O(1) and no callback copies the family. */
#include "global.h"

#include <stdint.h>

int aemp__view_init(aemp__view_t *v)
{
    v->index = (aemp__strmap_t){0};
    return (v->map = aemp_map_new()) ? 0 : AEMP_ENOMEM;
}

void aemp__view_free(aemp__view_t *v)
{
    aemp__strmap_free(&v->index);
    aemp_val_free(v->map);
    v->map = NULL;
}

static size_t slot(const aemp__view_t *v, const char *k, size_t klen)
{
    return (size_t)(uintptr_t)aemp__strmap_get(&v->index, k, klen); /* i+1 */
}

bool aemp__view_has(const aemp__view_t *v, const char *k, size_t klen)
{
    return slot(v, k, klen) != 0;
}

int aemp__view_set(aemp__view_t *v, const char *k, size_t klen, aemp_val_t *val,
                   bool *had)
{
    size_t i = slot(v, k, klen);
    *had = i != 0;
    if (!val)
        return AEMP_ENOMEM;
    if (i) {
        aemp__map_replace_at(v->map, i - 1, val);
        return 0;
    }
    aemp_val_t *map = aemp__map_append(v->map, k, klen, val);
    if (!map) { /* the map is gone with the failure: start afresh */
        aemp__strmap_free(&v->index);
        v->map = aemp_map_new();
        return AEMP_ENOMEM;
    }
    size_t n = aemp_val_len(map), len;
    const char *key = aemp__map_key_at(map, n - 1, &len);
    if (aemp__strmap_put(&v->index, key, len, (void *)(uintptr_t)n) < 0) {
        aemp__map_swap_remove(map, n - 1);
        return AEMP_ENOMEM;
    }
    return 0;
}

bool aemp__view_del(aemp__view_t *v, const char *k, size_t klen)
{
    size_t i = slot(v, k, klen);
    if (!i)
        return false;
    aemp__strmap_del(&v->index, k, klen);
    size_t last = aemp_val_len(v->map);
    aemp__map_swap_remove(v->map, i - 1);
    if (i != last) { /* the last pair moved into the hole */
        size_t len;
        const char *moved = aemp__map_key_at(v->map, i - 1, &len);
        aemp__strmap_put(&v->index, moved, len, (void *)(uintptr_t)i);
    }
    return true;
}

aemp_val_t *aemp__view_keys(const aemp__view_t *v)
{
    aemp_val_t *arr = aemp_arr_new();
    for (size_t i = 0; arr && i < aemp_val_len(v->map); i++) {
        size_t len;
        const char *k = aemp__map_key_at(v->map, i, &len);
        arr = aemp_arr_push(arr, aemp_strn(k, len));
    }
    return arr;
}
