/* Error codes, their names and texts: generated from AEMP_ERRNO_MAP. */
#include "internal.h"


const char *aemp_strerror(int err)
{
    switch (err) {
#define X(name, val, text)                                                     \
    case AEMP_##name:                                                          \
        return text;
        AEMP_ERRNO_MAP(X)
#undef X
    case 0:
        return "success";
    }
    return "unknown error";
}

const char *aemp_err_name(int err)
{
    switch (err) {
#define X(name, val, text)                                                     \
    case AEMP_##name:                                                          \
        return "AEMP_" #name;
        AEMP_ERRNO_MAP(X)
#undef X
    case 0:
        return "AEMP_OK";
    }
    return "AEMP_E?";
}

const char *aemp_version(void) { return AEMP_VERSION_STRING; }
