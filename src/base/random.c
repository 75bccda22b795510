/* Random bytes for what must not be guessed or repeated: nonces, secrets,
 * the node's instance cookie. */
#include "internal.h"

#include <openssl/rand.h>

int aemp__random(void *buf, size_t n)
{
    if (n > INT32_MAX || RAND_bytes(buf, (int)n) != 1)
        return AEMP_ESYS;
    return 0;
}
