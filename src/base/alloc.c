/* The one allocation path of the library (see aemp_set_allocator). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *(*alloc_malloc)(size_t) = malloc;
static void *(*alloc_realloc)(void *, size_t) = realloc;
static void (*alloc_free)(void *) = free;

void aemp_set_allocator(void *(*malloc_fn)(size_t),
                        void *(*realloc_fn)(void *, size_t),
                        void (*free_fn)(void *))
{
    if (!malloc_fn || !realloc_fn || !free_fn) {
        malloc_fn = malloc;
        realloc_fn = realloc;
        free_fn = free;
    }
    alloc_malloc = malloc_fn;
    alloc_realloc = realloc_fn;
    alloc_free = free_fn;
}

void *aemp__malloc(size_t size) { return alloc_malloc(size ? size : 1); }

void *aemp__calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = aemp__malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *aemp__realloc(void *p, size_t size)
{
    return alloc_realloc(p, size ? size : 1);
}

void *aemp__reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    return aemp__realloc(p, n * size);
}

void aemp__free(void *p)
{
    if (p)
        alloc_free(p);
}

void aemp_free(void *p) { aemp__free(p); }

char *aemp__strndup(const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *d = aemp__malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = 0;
    }
    return d;
}

char *aemp__strdup(const char *s) { return aemp__strndup(s, strlen(s)); }

char *aemp__vasprintf(const char *fmt, va_list ap)
{
    /* one pass into a stack buffer for what fits: glibc's size-only pass,
     * vsnprintf(NULL, 0, ...), goes through its slow overflow path (a
     * quarter of an hmac_sha3_512 handshake's instructions) */
    char tmp[512];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = aemp__malloc((size_t)n + 1);
    if (s && (size_t)n < sizeof tmp)
        memcpy(s, tmp, (size_t)n + 1);
    else if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *aemp__asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = aemp__vasprintf(fmt, ap);
    va_end(ap);
    return s;
}

int aemp__to_hex(const unsigned char *d, size_t n, char *hex, size_t hexlen)
{
    static const char digits[] = "0123456789abcdef";
    if (!hex || !hexlen || n > (hexlen - 1) / 2) /* 2n digits and the NUL */
        return AEMP_EINVAL;
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[2 * n] = 0;
    return 0;
}
