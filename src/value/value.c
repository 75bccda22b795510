/* Values built by the user (heap trees) and the readers shared with values
 * inside messages. */
#include "value.h"

#include <string.h>

static aemp_val_t *node_new(aemp_type_t type)
{
    aemp_val_t *v = aemp__calloc(1, sizeof *v);
    if (v) {
        v->type = (uint8_t)type;
        v->owned = 1;
    }
    return v;
}

aemp_val_t *aemp_null(void) { return node_new(AEMP_T_NULL); }

aemp_val_t *aemp_bool(int b)
{
    aemp_val_t *v = node_new(AEMP_T_BOOL);
    if (v)
        v->u.i = b != 0;
    return v;
}

aemp_val_t *aemp_int(int64_t i)
{
    aemp_val_t *v = node_new(AEMP_T_INT);
    if (v)
        v->u.i = i;
    return v;
}

aemp_val_t *aemp_double(double d)
{
    aemp_val_t *v = node_new(AEMP_T_DOUBLE);
    if (v)
        v->u.d = d;
    return v;
}

static aemp_val_t *text_new(aemp_type_t type, const void *p, size_t len)
{
    if (len > AEMP__MAX_LEN || (!p && len))
        return NULL;
    aemp_val_t *v = node_new(type);
    if (!v)
        return NULL;
    v->u.s = aemp__strndup(p ? p : "", len);
    if (!v->u.s) {
        aemp__free(v);
        return NULL;
    }
    v->len = (uint32_t)len;
    return v;
}

aemp_val_t *aemp_str(const char *s)
{
    return s ? text_new(AEMP_T_STR, s, strlen(s)) : NULL;
}

aemp_val_t *aemp_strn(const char *s, size_t len)
{
    return text_new(AEMP_T_STR, s, len);
}

aemp_val_t *aemp_bytes(const void *p, size_t len)
{
    return text_new(AEMP_T_BYTES, p, len);
}

aemp_val_t *aemp_arr_new(void) { return node_new(AEMP_T_ARR); }
aemp_val_t *aemp_map_new(void) { return node_new(AEMP_T_MAP); }

/* Frees what v owns below itself (not v). */
static void val_clear(aemp_val_t *v)
{
    if (!v->owned)
        return;
    if (v->type == AEMP_T_STR || v->type == AEMP_T_BYTES) {
        aemp__free(v->u.s);
    } else if (v->type == AEMP_T_ARR || v->type == AEMP_T_MAP) {
        size_t n = v->type == AEMP_T_MAP ? 2 * (size_t)v->len : v->len;
        for (size_t i = 0; i < n; i++)
            val_clear(&v->u.items[i]);
        aemp__free(v->u.items);
    }
}

void aemp_val_free(aemp_val_t *v)
{
    if (!v)
        return;
    val_clear(v);
    aemp__free(v);
}

/* Heap containers grow their node array in powers of two: the capacity is
 * implied by the count, so no field is spent on it.  Whatever allocates an
 * owned node array (copies too) must allocate items_cap() of them. */
static size_t items_cap(size_t used)
{
    size_t cap = used ? 4 : 0;
    while (cap < used)
        cap <<= 1;
    return cap;
}

static int items_reserve(aemp_val_t *c, size_t used, size_t add)
{
    size_t want = used + add;
    if (want > AEMP__MAX_LEN)
        return AEMP_ELIMIT;
    size_t cap = items_cap(used);
    if (want <= cap)
        return 0;
    size_t ncap = cap ? cap : 4;
    while (ncap < want)
        ncap <<= 1;
    aemp_val_t *items = aemp__reallocarray(c->u.items, ncap, sizeof *items);
    if (!items)
        return AEMP_ENOMEM;
    c->u.items = items;
    return 0;
}

/* Moves the node *item into slot (taking the shell). */
static void move_into(aemp_val_t *slot, aemp_val_t *item)
{
    *slot = *item;
    aemp__free(item);
}

aemp_val_t *aemp_arr_push(aemp_val_t *arr, aemp_val_t *item)
{
    if (!arr || !item || arr->type != AEMP_T_ARR || !arr->owned)
        goto fail;
    if (items_reserve(arr, arr->len, 1) < 0)
        goto fail;
    move_into(&arr->u.items[arr->len++], item);
    return arr;
fail:
    aemp_val_free(arr);
    aemp_val_free(item);
    return NULL;
}

aemp_val_t *aemp_arr_of(aemp_val_t *const *items, size_t n)
{
    aemp_val_t *arr = aemp_arr_new();
    size_t i = 0;
    for (; i < n && arr; i++)
        arr = aemp_arr_push(arr, items[i]);
    for (; i < n; i++)
        aemp_val_free(items[i]);
    return arr;
}

/* Appends the pair key (copied) -> val (taken, also on failure). */
static int map_push(aemp_val_t *map, const char *key, size_t klen,
                    aemp_val_t *val)
{
    aemp_val_t *k = aemp_strn(key, klen);
    if (!k || items_reserve(map, 2 * (size_t)map->len, 2) < 0) {
        aemp_val_free(k);
        aemp_val_free(val);
        return AEMP_ENOMEM;
    }
    move_into(&map->u.items[2 * (size_t)map->len], k);
    move_into(&map->u.items[2 * (size_t)map->len + 1], val);
    map->len++;
    return 0;
}

int aemp__map_put(aemp_val_t *map, const char *key, aemp_val_t *val)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < map->len; i++) {
        aemp_val_t *k = &map->u.items[2 * i];
        if (k->len == klen && memcmp(k->u.s, key, klen) == 0) {
            val_clear(&map->u.items[2 * i + 1]);
            move_into(&map->u.items[2 * i + 1], val);
            return 0;
        }
    }
    return map_push(map, key, klen, val);
}

aemp_val_t *aemp__map_append(aemp_val_t *map, const char *key, size_t klen,
                             aemp_val_t *val)
{
    if (!map || !val || map->type != AEMP_T_MAP || !map->owned) {
        aemp_val_free(val);
        aemp_val_free(map);
        return NULL;
    }
    if (map_push(map, key, klen, val) < 0) {
        aemp_val_free(map);
        return NULL;
    }
    return map;
}

aemp_val_t *aemp_map_set(aemp_val_t *map, const char *key, aemp_val_t *val)
{
    if (!map || !key || !val || map->type != AEMP_T_MAP || !map->owned) {
        aemp_val_free(val);
        aemp_val_free(map);
        return NULL;
    }
    if (aemp__map_put(map, key, val) < 0) {
        aemp_val_free(map);
        return NULL;
    }
    return map;
}

/* Removes key from an owned map; false if it was not there. */
bool aemp__map_del(aemp_val_t *map, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < map->len; i++) {
        aemp_val_t *k = &map->u.items[2 * i];
        if (k->len != klen || memcmp(k->u.s, key, klen) != 0)
            continue;
        val_clear(k);
        val_clear(k + 1);
        memmove(k, k + 2, (2 * (size_t)map->len - 2 * i - 2) * sizeof *k);
        map->len--;
        return true;
    }
    return false;
}

/* Deep copy of src into the fresh owned node dst. */
static int copy_into(aemp_val_t *dst, const aemp_val_t *src)
{
    *dst = *src;
    dst->owned = 1;
    if (src->type == AEMP_T_STR || src->type == AEMP_T_BYTES) {
        dst->u.s = aemp__strndup(src->u.s, src->len);
        return dst->u.s ? 0 : AEMP_ENOMEM;
    }
    if (src->type != AEMP_T_ARR && src->type != AEMP_T_MAP)
        return 0;
    size_t n = src->type == AEMP_T_MAP ? 2 * (size_t)src->len : src->len;
    dst->len = 0;
    dst->u.items = NULL;
    if (n && !(dst->u.items = aemp__calloc(items_cap(n), sizeof(aemp_val_t))))
        return AEMP_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = copy_into(&dst->u.items[i], &src->u.items[i]);
        if (rc < 0) {
            val_clear(&dst->u.items[i]);
            for (size_t j = 0; j < i; j++)
                val_clear(&dst->u.items[j]);
            aemp__free(dst->u.items);
            dst->type = AEMP_T_NULL;
            return rc;
        }
    }
    dst->len = src->len;
    return 0;
}

aemp_val_t *aemp_val_copy(const aemp_val_t *v)
{
    if (!v)
        return NULL;
    aemp_val_t *c = aemp__malloc(sizeof *c);
    if (c && copy_into(c, v) < 0) {
        aemp__free(c);
        c = NULL;
    }
    return c;
}

aemp_type_t aemp_val_type(const aemp_val_t *v)
{
    return v ? (aemp_type_t)v->type : AEMP_T_NULL;
}

int aemp_val_bool(const aemp_val_t *v, int *out)
{
    if (!v || v->type != AEMP_T_BOOL)
        return AEMP_ETYPE;
    *out = (int)v->u.i;
    return 0;
}

int aemp_val_int(const aemp_val_t *v, int64_t *out)
{
    if (!v || v->type != AEMP_T_INT)
        return AEMP_ETYPE;
    *out = v->u.i;
    return 0;
}

int aemp_val_double(const aemp_val_t *v, double *out)
{
    if (v && v->type == AEMP_T_DOUBLE)
        *out = v->u.d;
    else if (v && v->type == AEMP_T_INT)
        *out = (double)v->u.i;
    else
        return AEMP_ETYPE;
    return 0;
}

static int text_of(const aemp_val_t *v, aemp_type_t t, const char **out,
                   size_t *len)
{
    if (!v || v->type != t)
        return AEMP_ETYPE;
    *out = v->u.s;
    if (len)
        *len = v->len;
    return 0;
}

int aemp_val_str(const aemp_val_t *v, const char **out, size_t *len)
{
    return text_of(v, v && aemp__val_is_text(v) ? v->type : AEMP_T_STR, out,
                   len);
}

int aemp_val_bytes(const aemp_val_t *v, const void **out, size_t *len)
{
    const char *s;
    int rc = text_of(v, AEMP_T_BYTES, &s, len);
    if (rc == 0)
        *out = s;
    return rc;
}

size_t aemp_val_len(const aemp_val_t *v)
{
    if (!v || v->type < AEMP_T_STR)
        return 0;
    return v->len;
}

const aemp_val_t *aemp_val_at(const aemp_val_t *v, size_t i)
{
    if (!v || v->type != AEMP_T_ARR || i >= v->len)
        return NULL;
    return &v->u.items[i];
}

int aemp_map_at(const aemp_val_t *v, size_t i, const char **key,
                const aemp_val_t **val)
{
    if (!v || v->type != AEMP_T_MAP)
        return AEMP_ETYPE;
    if (i >= v->len)
        return AEMP_ERANGE;
    if (key)
        *key = v->u.items[2 * i].u.s;
    if (val)
        *val = &v->u.items[2 * i + 1];
    return 0;
}

const aemp_val_t *aemp_map_get(const aemp_val_t *v, const char *key)
{
    if (!v || v->type != AEMP_T_MAP || !key)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = v->len; i-- > 0;) {
        const aemp_val_t *k = &v->u.items[2 * i];
        if (k->len == klen && memcmp(k->u.s, key, klen) == 0)
            return &v->u.items[2 * i + 1];
    }
    return NULL;
}

int aemp_val_equal(const aemp_val_t *a, const aemp_val_t *b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return 0;
    switch ((aemp_type_t)a->type) {
    case AEMP_T_NULL:
        return 1;
    case AEMP_T_BOOL:
    case AEMP_T_INT:
        return a->u.i == b->u.i;
    case AEMP_T_DOUBLE:
        return memcmp(&a->u.d, &b->u.d, sizeof a->u.d) == 0 || a->u.d == b->u.d;
    case AEMP_T_STR:
    case AEMP_T_BYTES:
        return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
    case AEMP_T_ARR:
    case AEMP_T_MAP:
        break;
    }
    if (a->len != b->len)
        return 0;
    size_t n = a->type == AEMP_T_MAP ? 2 * (size_t)a->len : a->len;
    for (size_t i = 0; i < n; i++)
        if (!aemp_val_equal(&a->u.items[i], &b->u.items[i]))
            return 0;
    return 1;
}

bool aemp__utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            /* mostly ASCII: step over 8 bytes at a time while we can */
            uint64_t w;
            while (len - i >= 8 && (memcpy(&w, s + i, 8),
                                    !(w & UINT64_C(0x8080808080808080))))
                i += 8;
            if (i < len && s[i] < 0x80)
                i++;
            continue;
        }
        size_t n;
        unsigned min, cp;
        if ((c & 0xe0) == 0xc0)
            n = 1, min = 0x80, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            n = 2, min = 0x800, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
            n = 3, min = 0x10000, cp = c & 0x07;
        else
            return false;
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* ---- owned maps with an index beside them (the global service's views) -- */

const char *aemp__map_key_at(const aemp_val_t *map, size_t i, size_t *len)
{
    const aemp_val_t *k = &map->u.items[2 * i];
    *len = k->len;
    return k->u.s;
}

void aemp__map_replace_at(aemp_val_t *map, size_t i, aemp_val_t *val)
{
    val_clear(&map->u.items[2 * i + 1]);
    move_into(&map->u.items[2 * i + 1], val);
}

void aemp__map_swap_remove(aemp_val_t *map, size_t i)
{
    size_t last = (size_t)map->len - 1;
    val_clear(&map->u.items[2 * i]);
    val_clear(&map->u.items[2 * i + 1]);
    if (i != last) {
        map->u.items[2 * i] = map->u.items[2 * last];
        map->u.items[2 * i + 1] = map->u.items[2 * last + 1];
    }
    map->len--;
}
