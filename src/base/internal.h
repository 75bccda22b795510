/* Internal declarations shared by the library's files (never installed). */
#ifndef AEMP_INTERNAL_H
#define AEMP_INTERNAL_H

#include "aemp.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AEMP__UNUSED(x) ((void)(x))

/* All allocation goes through these, so aemp_set_allocator() and the
 * failure-injection tests see every one of them. */
void *aemp__malloc(size_t size);
void *aemp__calloc(size_t n, size_t size); /* overflow-checked, zeroed */
void *aemp__realloc(void *p, size_t size);
/* realloc of an array of n elements of size bytes, overflow-checked. */
void *aemp__reallocarray(void *p, size_t n, size_t size);
void aemp__free(void *p);
char *aemp__strndup(const char *s, size_t len);
char *aemp__strdup(const char *s);
/* malloc'd printf; NULL on failure. */
char *aemp__vasprintf(const char *fmt, va_list ap);
char *aemp__asprintf(const char *fmt, ...) AEMP_PRINTF(1, 2);
/* The n bytes at d as 2n lowercase hex digits and a NUL into hex (hexlen
 * bytes); 0, or AEMP_EINVAL if they do not fit (or hex is NULL). */
int aemp__to_hex(const unsigned char *d, size_t n, char *hex, size_t hexlen);

/* memcmp(a, b, n) == 0 for the short strings of the hot paths (node
 * names, tags): inline 8-byte loads instead of a library call. */
static inline bool aemp__same(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        __builtin_memcpy(&x, a, 8);
        __builtin_memcpy(&y, b, 8);
        if (x != y)
            return false;
    }
    for (; n; n--)
        if (*a++ != *b++)
            return false;
    return true;
}

/* Fills buf with n bytes from OpenSSL's CSPRNG.  0 or AEMP_ESYS. */
int aemp__random(void *buf, size_t n);

#endif
