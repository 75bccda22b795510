/* Open addressing with linear probing and backward-shift deletion. */
#include "strmap.h"

#include <string.h>

static uint64_t hash_of(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static size_t find(const aemp__strmap_t *m, const char *key, size_t len,
                   uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const aemp__strmap_slot_t *s = &m->slots[i];
        if (!s->key || (s->hash == h && s->len == len &&
                        memcmp(s->key, key, len) == 0))
            return i;
    }
}

void *aemp__strmap_get(const aemp__strmap_t *m, const char *key, size_t len)
{
    if (!m->cap)
        return NULL;
    size_t i = find(m, key, len, hash_of(key, len));
    return m->slots[i].key ? m->slots[i].val : NULL;
}

static int grow(aemp__strmap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    aemp__strmap_slot_t *old = m->slots;
    aemp__strmap_slot_t *slots = aemp__calloc(cap, sizeof *slots);
    if (!slots)
        return AEMP_ENOMEM;
    size_t oldcap = m->cap;
    m->slots = slots;
    m->cap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].key)
            m->slots[find(m, old[i].key, old[i].len, old[i].hash)] = old[i];
    aemp__free(old);
    return 0;
}

int aemp__strmap_put(aemp__strmap_t *m, const char *key, size_t len, void *val)
{
    if ((m->n + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return AEMP_ENOMEM;
    uint64_t h = hash_of(key, len);
    aemp__strmap_slot_t *s = &m->slots[find(m, key, len, h)];
    if (!s->key)
        m->n++;
    *s = (aemp__strmap_slot_t){key, len, h, val};
    return 0;
}

void *aemp__strmap_del(aemp__strmap_t *m, const char *key, size_t len)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1, i = find(m, key, len, hash_of(key, len));
    if (!m->slots[i].key)
        return NULL;
    void *val = m->slots[i].val;
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = (size_t)m->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = NULL;
    m->n--;
    return val;
}

void *aemp__strmap_next(const aemp__strmap_t *m, size_t *i)
{
    for (; *i < m->cap; ++*i)
        if (m->slots[*i].key)
            return m->slots[(*i)++].val;
    return NULL;
}

void aemp__strmap_free(aemp__strmap_t *m)
{
    aemp__free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}
