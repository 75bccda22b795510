/* Address lists as the global service carries them: an 'l entry (and
 * 1.30's addr/nodes) is an array of "ip:port" strings, a peer record holds
 * "ip:port,ip:port" (global.h). */
#include "global.h"

#include <string.h>

aemp_val_t *aemp__addrs_split(const char *s, size_t len)
{
    aemp_val_t *arr = aemp_arr_new();
    const char *p = s, *end = s + len;
    while (arr && p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t one = c ? (size_t)(c - p) : (size_t)(end - p);
        if (one)
            arr = aemp_arr_push(arr, aemp_strn(p, one));
        p += one + 1;
    }
    return arr;
}

char *aemp__addrs_join(const aemp_val_t *arr)
{
    size_t total = 1, n = aemp_val_len(arr);
    if (aemp_val_type(arr) != AEMP_T_ARR || !n)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *a;
        size_t len;
        if (aemp_val_str(aemp_val_at(arr, i), &a, &len) < 0 || !len ||
            memchr(a, ',', len))
            return NULL;
        total += len + 1;
    }
    char *buf = aemp__malloc(total), *p = buf;
    for (size_t i = 0; buf && i < n; i++) {
        const char *a;
        size_t len;
        aemp_val_str(aemp_val_at(arr, i), &a, &len);
        if (i)
            *p++ = ',';
        memcpy(p, a, len);
        p += len;
    }
    if (!buf)
        return NULL;
    *p = 0;
    if (!aemp__id_is_address(buf, (size_t)(p - buf))) {
        aemp__free(buf);
        return NULL;
    }
    return buf;
}

aemp_val_t *aemp__addrs_ours(aemp_node_t *n)
{
    if (!n->net || !n->net->public_)
        return aemp_arr_new();
    return aemp__addrs_split(n->noderef, n->noderef_len);
}
