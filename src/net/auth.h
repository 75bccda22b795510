/* The authentication methods of PROTOCOL.md §5 as one table: what each
 * needs, whether we may send it, and how its token is made.  Offering,
 * choosing and checking all go through it, so a new method is a row and a
 * token function.  Pure functions: no link, no node. */
#ifndef AEMP_AUTH_H
#define AEMP_AUTH_H

#include "internal.h"

/* The default lists (PROTOCOL.md §9): the union of both Perl dialects',
 * so that 2.x finds its SHA3 methods and 1.x its MD6 ones in our
 * greeting; each peer is then sent the first of its own list we can make.
 * tls_anon is accepted (the certificate alone), not sent; cleartext
 * neither. */
#define AEMP__AUTH_ACCEPT                                                      \
    "tls_sha3_512,hmac_sha3_512,tls_md6_64_256,hmac_md6_64_256,tls_anon"
#define AEMP__AUTH_OFFER                                                       \
    "tls_sha3_512,hmac_sha3_512,tls_md6_64_256,hmac_md6_64_256"

/* What a method needs from the link (bits of aemp__auth_method_t.needs). */
#define AEMP__AUTH_NEEDS_SECRET 1u
#define AEMP__AUTH_NEEDS_TLS 2u

/* Room for any token we check (hex digits and the NUL): a peer's token
 * arrives in one line of at most 4096 bytes (PROTOCOL.md §1), and the
 * longest, cleartext's, is as long as the secret's hex. */
#define AEMP__AUTH_TOKEN_MAX 4096

/* What this side has to authenticate one link with. */
typedef struct aemp__auth_have {
    const char *secret; /* the shared secret, NULL: none */
    bool tls;           /* TLS is up and the peer's certificate verified */
} aemp__auth_have_t;

/* A method's token over text (G(...) of PROTOCOL.md §5, textlen bytes),
 * as lowercase hex into hex (hexlen bytes, NUL included).  Called only
 * when the method's needs are met.  0, AEMP_EINVAL if it does not fit,
 * AEMP_ESYS if OpenSSL fails. */
typedef int aemp__auth_token_fn(const char *secret, const char *text,
                                size_t textlen, char *hex, size_t hexlen);

typedef struct aemp__auth_method {
    const char *name;
    unsigned needs;          /* AEMP__AUTH_NEEDS_* */
    bool offer;              /* may be sent; false: only accepted */
    const char *unavailable; /* why this build cannot use it, or NULL */
    aemp__auth_token_fn *token;
} aemp__auth_method_t;

/* The row of the method called name (len bytes), NULL if unknown. */
const aemp__auth_method_t *aemp__auth_find(const char *name, size_t len);

/* Why m cannot authenticate a link that has `have` (the row is marked
 * unavailable — a seam for a method a build may lack; no row is today —
 * or something it needs is missing), or NULL if it can.  Sending it
 * additionally needs m->offer. */
const char *aemp__auth_unusable(const aemp__auth_method_t *m,
                                const aemp__auth_have_t *have);

/* The method we send (PROTOCOL.md §5): the first of the peer's accepted
 * methods (`theirs`, its preference order) that `offer` lists and that we
 * can send with `have`.  Names we do not know or cannot compute are
 * skipped, never an error.  NULL if there is none, with err saying so and
 * listing both sides' methods. */
const aemp__auth_method_t *aemp__auth_choose(const char *theirs,
                                             const char *offer,
                                             const aemp__auth_have_t *have,
                                             char *err, size_t errlen);

/* Checks a configured method list (auth_accept or auth_offer:
 * comma-separated names).  NULL or "" is fine (the default applies).
 * 0, or AEMP_EINVAL with err naming the unknown or empty entry.  Methods
 * this build cannot use yet are known names and pass. */
int aemp__auth_check_list(const char *list, char *err, size_t errlen);

/* The token `method` sends over G(a,b,c,d), as lowercase hex into hex
 * (hexlen bytes; 129 hold every HMAC token, cleartext needs twice the
 * secret's length plus one).  AEMP_EINVAL for an unknown method, one this
 * build cannot compute, one that needs a secret we do not have, or a hex
 * buffer too small; AEMP_ENOMEM; AEMP_ESYS. */
int aemp__auth_token(const char *method, const char *secret, const char *a,
                     const char *b, const char *c, const char *d, char *hex,
                     size_t hexlen);

/* true if `item` (itemlen bytes) is an element of the comma-separated
 * list (NULL: empty). */
bool aemp__list_has(const char *list, const char *item, size_t itemlen);
/* Steps through a comma-separated list (*p: NULL or the rest of it): the
 * next element in *item / *len, and *p moved past it; false at the end.
 * An empty element is one (len 0), except after a trailing comma. */
bool aemp__list_next(const char **p, const char **item, size_t *len);

#endif
