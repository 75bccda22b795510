/* The authentication-method table and the offering, choosing and token
 * making that go through it.  See auth.h. */
#include "auth.h"

#include "md6.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* ---- token functions ----------------------------------------------------- */

static int token_hmac_sha3_512(const char *secret, const char *text,
                               size_t textlen, char *hex, size_t hexlen)
{
    unsigned char mac[64];
    size_t maclen = 0;
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA3-512", NULL, secret, strlen(secret),
                   (const unsigned char *)text, textlen, mac, sizeof mac,
                   &maclen) ||
        maclen != sizeof mac)
        return AEMP_ESYS;
    return aemp__to_hex(mac, maclen, hex, hexlen);
}

/* tls_sha3_512: no secret, TLS authenticated the peer; the digest binds
 * the greetings (framings, node IDs) to this TLS session's lines. */
static int token_sha3_512(const char *secret, const char *text, size_t textlen,
                          char *hex, size_t hexlen)
{
    AEMP__UNUSED(secret);
    unsigned char md[64];
    size_t mdlen = 0;
    if (!EVP_Q_digest(NULL, "SHA3-512", NULL, text, textlen, md, &mdlen) ||
        mdlen != sizeof md)
        return AEMP_ESYS;
    return aemp__to_hex(md, mdlen, hex, hexlen);
}

/* tls_anon: the certificate TLS verified is the whole proof. */
static int token_empty(const char *secret, const char *text, size_t textlen,
                       char *hex, size_t hexlen)
{
    AEMP__UNUSED(secret);
    AEMP__UNUSED(text);
    AEMP__UNUSED(textlen);
    if (hexlen < 1)
        return AEMP_EINVAL;
    hex[0] = 0;
    return 0;
}

static int token_cleartext(const char *secret, const char *text, size_t textlen,
                           char *hex, size_t hexlen)
{
    AEMP__UNUSED(text);
    AEMP__UNUSED(textlen);
    return aemp__to_hex((const unsigned char *)secret, strlen(secret), hex,
                        hexlen);
}

/* ---- the table ----------------------------------------------------------- */

/* In the order of PROTOCOL.md §2's default list.  A row without a token
 * function (or with `unavailable` set) would be recognised — in
 * configuration and in a peer's greeting — and skipped, never chosen;
 * every method of the protocol is implemented now. */
static const aemp__auth_method_t methods[] = {
    {"tls_sha3_512", AEMP__AUTH_NEEDS_TLS, true, NULL, token_sha3_512},
    {"hmac_sha3_512", AEMP__AUTH_NEEDS_SECRET, true, NULL, token_hmac_sha3_512},
    /* Perl 1.x's (md6.c) */
    {"tls_md6_64_256", AEMP__AUTH_NEEDS_TLS, true, NULL, aemp__md6_token_tls},
    {"hmac_md6_64_256", AEMP__AUTH_NEEDS_SECRET, true, NULL,
     aemp__md6_token_hmac},
    /* the certificate alone: any holder of one the CA signed, whatever
     * node ID it claims (aemp.h, "TLS") */
    {"tls_anon", AEMP__AUTH_NEEDS_TLS, true, NULL, token_empty},
    /* the secret in the clear: accepted if configured, never sent */
    {"cleartext", AEMP__AUTH_NEEDS_SECRET, false, NULL, token_cleartext},
};
#define N_METHODS (sizeof methods / sizeof *methods)

const aemp__auth_method_t *aemp__auth_find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_METHODS; i++)
        if (strlen(methods[i].name) == len &&
            !memcmp(methods[i].name, name, len))
            return &methods[i];
    return NULL;
}

const char *aemp__auth_unusable(const aemp__auth_method_t *m,
                                const aemp__auth_have_t *have)
{
    if (m->unavailable || !m->token)
        return m->unavailable ? m->unavailable : "unavailable in this build";
    if ((m->needs & AEMP__AUTH_NEEDS_TLS) && !have->tls)
        return "needs TLS, and this link has none";
    if ((m->needs & AEMP__AUTH_NEEDS_SECRET) && !have->secret)
        return "needs a shared secret, and none is configured";
    return NULL;
}

/* ---- lists --------------------------------------------------------------- */

bool aemp__list_has(const char *list, const char *item, size_t itemlen)
{
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == itemlen && memcmp(p, item, len) == 0)
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

bool aemp__list_next(const char **p, const char **item, size_t *len)
{
    if (!*p || !**p)
        return false;
    const char *e = strchr(*p, ',');
    *item = *p;
    *len = e ? (size_t)(e - *p) : strlen(*p);
    *p = e ? e + 1 : NULL;
    return true;
}

const aemp__auth_method_t *aemp__auth_choose(const char *theirs,
                                             const char *offer,
                                             const aemp__auth_have_t *have,
                                             char *err, size_t errlen)
{
    const aemp__auth_method_t *common = NULL; /* in both, but not usable */
    const char *p = theirs, *name;
    size_t len;
    while (aemp__list_next(&p, &name, &len)) {
        const aemp__auth_method_t *m = aemp__auth_find(name, len);
        if (!m || !m->offer || !aemp__list_has(offer, name, len))
            continue;
        if (!aemp__auth_unusable(m, have))
            return m;
        if (!common)
            common = m;
    }
    int n = snprintf(err, errlen,
                     "no common authentication method (we offer: %.80s; "
                     "they accept: %.80s)",
                     offer ? offer : "", theirs ? theirs : "");
    if (common && n > 0 && (size_t)n < errlen)
        snprintf(err + n, errlen - (size_t)n, "; %s %s", common->name,
                 aemp__auth_unusable(common, have));
    return NULL;
}

/* "unknown authentication method "<name>" (known: a, b, ...)" into err. */
static void unknown_method(char *err, size_t errlen, const char *name,
                           size_t len)
{
    int n = snprintf(err, errlen,
                     "unknown authentication method \"%.*s\" "
                     "(known:",
                     (int)(len < 64 ? len : 64), name);
    for (size_t i = 0; i < N_METHODS && n > 0 && (size_t)n < errlen; i++)
        n += snprintf(err + n, errlen - (size_t)n, "%s%s", i ? ", " : " ",
                      methods[i].name);
    if (n > 0 && (size_t)n < errlen)
        snprintf(err + n, errlen - (size_t)n, ")");
}

int aemp__auth_check_list(const char *list, char *err, size_t errlen)
{
    const char *p = list, *name;
    size_t len, total = list ? strlen(list) : 0;
    bool empty = total && list[total - 1] == ','; /* the loop skips that one */
    while (!empty && aemp__list_next(&p, &name, &len)) {
        if (!len) {
            empty = true;
        } else if (!aemp__auth_find(name, len)) {
            unknown_method(err, errlen, name, len);
            return AEMP_EINVAL;
        }
    }
    if (empty) {
        snprintf(err, errlen,
                 "empty entry in authentication method list \"%.80s\"", list);
        return AEMP_EINVAL;
    }
    return 0;
}

/* ---- tokens -------------------------------------------------------------- */

int aemp__auth_token(const char *method, const char *secret, const char *a,
                     const char *b, const char *c, const char *d, char *hex,
                     size_t hexlen)
{
    const aemp__auth_method_t *m = aemp__auth_find(method, strlen(method));
    /* TLS is the link's business: the token is computable without it */
    aemp__auth_have_t have = {secret, true};
    if (!m || aemp__auth_unusable(m, &have) || !hex || !hexlen)
        return AEMP_EINVAL;
    char *text = aemp__asprintf("%s\n%s\n%s\n%s\n", a, b, c, d);
    if (!text)
        return AEMP_ENOMEM;
    int rc = m->token(secret, text, strlen(text), hex, hexlen);
    aemp__free(text);
    if (rc < 0)
        hex[0] = 0;
    return rc;
}
