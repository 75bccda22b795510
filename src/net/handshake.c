/* The handshake: greeting and nonce lines, method and framing choice,
 * authentication tokens.  See handshake.h. */
#include "handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hs_fail(aemp__hs_t *hs, const char *fmt, ...) AEMP_PRINTF(2, 3);
static void hs_fail(aemp__hs_t *hs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(hs->error, sizeof hs->error, fmt, ap);
    va_end(ap);
    hs->state = AEMP__HS_FAILED;
}

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

/* The first element of `theirs` that is also in `ours` (and passes
 * `usable`), copied into out.  false if none. */
static bool list_pick(const char *theirs, const char *ours,
                      bool (*usable)(const char *, size_t, const void *),
                      const void *ctx, char *out, size_t outlen)
{
    for (const char *p = theirs; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len < outlen && aemp__list_has(ours, p, len) &&
            (!usable || usable(p, len, ctx))) {
            memcpy(out, p, len);
            out[len] = 0;
            return true;
        }
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* ---- greeting ------------------------------------------------------------ */

void aemp__greeting_free(aemp__greeting_t *g)
{
    aemp__free(g->node_id);
    aemp__free(g->auth);
    aemp__free(g->framings);
    aemp__free(g->provider);
    aemp__free(g->peeraddr);
    memset(g, 0, sizeof *g);
}

/* Splits off the next ';'-separated field of [*p, end). */
static bool next_field(const char **p, const char *end, const char **f,
                       size_t *flen)
{
    if (*p > end)
        return false;
    const char *semi = memchr(*p, ';', (size_t)(end - *p));
    *f = *p;
    *flen = semi ? (size_t)(semi - *p) : (size_t)(end - *p);
    *p = semi ? semi + 1 : end + 1;
    return true;
}

static int greeting_key(aemp__greeting_t *g, const char *f, size_t len)
{
    const char *eq = memchr(f, '=', len);
    size_t klen = eq ? (size_t)(eq - f) : len;
    const char *v = eq ? eq + 1 : f + len;
    size_t vlen = len - klen - (eq ? 1 : 0);
    char **slot = NULL;
    if (klen == 8 && !memcmp(f, "provider", 8))
        slot = &g->provider;
    else if (klen == 8 && !memcmp(f, "peeraddr", 8))
        slot = &g->peeraddr;
    else if (klen == 7 && !memcmp(f, "timeout", 7))
        g->timeout = vlen && vlen < 10 ? (unsigned)strtoul(v, NULL, 10) : 0;
    else if (klen == 3 && !memcmp(f, "tls", 3))
        g->tls = vlen && v[0] == '1';
    if (slot && !*slot && !(*slot = aemp__strndup(v, vlen)))
        return AEMP_ENOMEM;
    return 0; /* unknown keys are ignored */
}

int aemp__greeting_parse(const char *line, size_t len, aemp__greeting_t *g,
                         char *err, size_t errlen)
{
    const char *p = line, *end = line + len, *f;
    size_t flen;
    memset(g, 0, sizeof *g);
    if (!next_field(&p, end, &f, &flen) || flen != 4 || memcmp(f, "aemp", 4)) {
        snprintf(err, errlen, "unparsable greeting");
        return AEMP_EPROTO;
    }
    if (!next_field(&p, end, &f, &flen)) {
        snprintf(err, errlen, "unparsable greeting");
        return AEMP_EPROTO;
    }
    char num[12] = "";
    memcpy(num, f, flen < 11 ? flen : 11);
    g->version = atoi(num);
    if (g->version != AEMP__PROTOCOL_VERSION || flen == 0 || flen > 9) {
        snprintf(err, errlen, "version mismatch (we: %d, they: %.*s)",
                 AEMP__PROTOCOL_VERSION, (int)(flen < 20 ? flen : 20), f);
        return AEMP_EPROTO;
    }
    const char *id, *auth, *fr;
    size_t idlen, authlen, frlen;
    if (!next_field(&p, end, &id, &idlen) || !idlen ||
        memchr(id, '#', idlen) || !next_field(&p, end, &auth, &authlen) ||
        !next_field(&p, end, &fr, &frlen)) {
        snprintf(err, errlen, "unparsable greeting");
        return AEMP_EPROTO;
    }
    g->node_id = aemp__strndup(id, idlen);
    g->auth = aemp__strndup(auth, authlen);
    g->framings = aemp__strndup(fr, frlen);
    int rc = g->node_id && g->auth && g->framings ? 0 : AEMP_ENOMEM;
    while (rc == 0 && next_field(&p, end, &f, &flen))
        rc = flen ? greeting_key(g, f, flen) : 0;
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        aemp__greeting_free(g);
    }
    return rc;
}

/* ---- tokens -------------------------------------------------------------- */

static void to_hex(const unsigned char *d, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[2 * n] = 0;
}

int aemp__auth_token(const char *method, const char *secret, const char *a,
                     const char *b, const char *c, const char *d, char *hex,
                     size_t hexlen)
{
    if (strcmp(method, "hmac_sha3_512") != 0 || !secret || hexlen < 129)
        return AEMP_EINVAL;
    char *text = aemp__asprintf("%s\n%s\n%s\n%s\n", a, b, c, d);
    if (!text)
        return AEMP_ENOMEM;
    unsigned char mac[64];
    size_t maclen = 0;
    const unsigned char *mac_ok =
        EVP_Q_mac(NULL, "HMAC", NULL, "SHA3-512", NULL, secret, strlen(secret),
                  (const unsigned char *)text, strlen(text), mac, sizeof mac,
                  &maclen);
    OPENSSL_cleanse(text, strlen(text));
    aemp__free(text);
    if (!mac_ok || maclen != sizeof mac)
        return AEMP_ESYS;
    to_hex(mac, maclen, hex);
    return 0;
}

/* ---- the session ----------------------------------------------------------- */

int aemp__hs_start(aemp__hs_t *hs, const aemp__hs_conf_t *conf,
                   const char *peeraddr, char **out, size_t *outlen)
{
    memset(hs, 0, sizeof *hs);
    hs->conf = conf;
    unsigned char nonce[AEMP__NONCE_BYTES];
    char b64[4 * AEMP__NONCE_BYTES / 3 + 1];
    int rc = aemp__random(nonce, sizeof nonce);
    if (rc < 0)
        return rc;
    EVP_EncodeBlock((unsigned char *)b64, nonce, sizeof nonce);
    char tmo[32] = "";
    if (conf->timeout)
        snprintf(tmo, sizeof tmo, ";timeout=%u", conf->timeout);
    hs->l1 = aemp__asprintf("aemp;%d;%s;%s;%s;provider=aemp-c-%s%s%s%s",
                            AEMP__PROTOCOL_VERSION, conf->node_id,
                            conf->auth_accept, conf->framings,
                            AEMP_VERSION_STRING, peeraddr ? ";peeraddr=" : "",
                            peeraddr ? peeraddr : "", tmo);
    hs->l2 = aemp__strdup(b64);
    *out = hs->l1 && hs->l2 ? aemp__asprintf("%s\n%s\n", hs->l1, hs->l2) : NULL;
    if (!*out)
        return AEMP_ENOMEM;
    *outlen = strlen(*out);
    return 0;
}

static bool offer_usable(const char *m, size_t len, const void *ctx)
{
    const aemp__hs_t *hs = ctx;
    /* TLS methods need TLS (a later milestone); cleartext is never sent */
    if (len >= 4 && !memcmp(m, "tls_", 4))
        return false;
    if (len == 9 && !memcmp(m, "cleartext", 9))
        return false;
    return hs->conf->secret != NULL;
}

static aemp_framing_t framing_of(const char *name)
{
    return !strcmp(name, "cbor") ? AEMP_CBOR
           : !strcmp(name, "json") ? AEMP_JSON
                                   : 0;
}

/* Both greeting lines are in: check them and produce our auth line. */
static int hs_respond(aemp__hs_t *hs, char **out, size_t *outlen)
{
    if (!strcmp(hs->r1, hs->l1) && !strcmp(hs->r2, hs->l2)) {
        hs_fail(hs, "authentication error, echo attack?");
        return AEMP_EPROTO;
    }
    if (!strcmp(hs->peer.node_id, hs->conf->node_id)) {
        hs_fail(hs, "refusing to talk to myself");
        return AEMP_EPROTO;
    }
    if (!hs->conf->secret) {
        hs_fail(hs, "unable to handshake TLS and no shared secret configured");
        return AEMP_EPROTO;
    }
    char framing[16];
    if (!list_pick(hs->peer.auth, hs->conf->auth_offer, offer_usable, hs,
                   hs->method, sizeof hs->method)) {
        hs_fail(hs, "no common authentication method (they accept: %.80s)",
                hs->peer.auth);
        return AEMP_EPROTO;
    }
    if (!list_pick(hs->peer.framings, "cbor,json", NULL, NULL, framing,
                   sizeof framing)) {
        hs_fail(hs, "no common framing (they accept: %.80s)",
                hs->peer.framings);
        return AEMP_EPROTO;
    }
    hs->send_framing = framing_of(framing);
    char token[129];
    int rc = aemp__auth_token(hs->method, hs->conf->secret, hs->l1, hs->l2,
                              hs->r1, hs->r2, token, sizeof token);
    if (rc == 0 && !(*out = aemp__asprintf("%s;%s;%s\n", hs->method, token,
                                           framing)))
        rc = AEMP_ENOMEM;
    if (rc < 0) {
        hs_fail(hs, "cannot compute authentication token: %s",
                aemp_strerror(rc));
        return rc;
    }
    *outlen = strlen(*out);
    hs->state = AEMP__HS_AUTH;
    return 1;
}

/* Compares the peer's token with the one we expect, in constant time. */
static bool token_matches(aemp__hs_t *hs, const char *method, const char *tok,
                          size_t toklen)
{
    char want[129];
    if (!strcmp(method, "cleartext")) {
        const char *s = hs->conf->secret;
        size_t n = strlen(s);
        if (toklen != 2 * n || 2 * n >= sizeof want)
            return false;
        to_hex((const unsigned char *)s, n, want);
    } else if (aemp__auth_token(method, hs->conf->secret, hs->r1, hs->r2,
                                hs->l1, hs->l2, want, sizeof want) < 0 ||
               toklen != strlen(want)) {
        return false;
    }
    return CRYPTO_memcmp(want, tok, toklen) == 0;
}

/* The peer's "<method>;<token>;<framing>" line. */
static int hs_verify(aemp__hs_t *hs, const char *line, size_t len)
{
    const char *s1 = memchr(line, ';', len);
    const char *s2 = s1 ? memchr(s1 + 1, ';', (size_t)(line + len - s1 - 1))
                        : NULL;
    char method[32], framing[16];
    size_t mlen = s1 ? (size_t)(s1 - line) : 0;
    size_t flen = s2 ? (size_t)(line + len - s2 - 1) : 0;
    if (!s2 || mlen >= sizeof method || flen >= sizeof framing) {
        hs_fail(hs, "unparsable authentication line");
        return AEMP_EPROTO;
    }
    memcpy(method, line, mlen);
    method[mlen] = 0;
    memcpy(framing, s2 + 1, flen);
    framing[flen] = 0;
    if (!aemp__list_has(hs->conf->auth_accept, method, mlen) ||
        !hs->conf->secret ||
        !token_matches(hs, method, s1 + 1, (size_t)(s2 - s1 - 1))) {
        hs_fail(hs, "authentication failure/shared secret mismatch");
        return AEMP_EPROTO;
    }
    if (!aemp__list_has(hs->conf->framings, framing, flen) ||
        !framing_of(framing)) {
        hs_fail(hs, "peer wants to send framing \"%s\" that we do not accept",
                framing);
        return AEMP_EPROTO;
    }
    hs->recv_framing = framing_of(framing);
    hs->state = AEMP__HS_DONE;
    return 2;
}

int aemp__hs_line(aemp__hs_t *hs, const char *line, size_t len, char **out,
                  size_t *outlen)
{
    if (len && line[len - 1] == '\r')
        len--;
    switch (hs->state) {
    case AEMP__HS_GREETING:
        if (aemp__greeting_parse(line, len, &hs->peer, hs->error,
                                 sizeof hs->error) < 0) {
            hs->state = AEMP__HS_FAILED;
            return AEMP_EPROTO;
        }
        if (!(hs->r1 = aemp__strndup(line, len)))
            return AEMP_ENOMEM;
        hs->state = AEMP__HS_NONCE;
        return 0;
    case AEMP__HS_NONCE:
        if (!(hs->r2 = aemp__strndup(line, len)))
            return AEMP_ENOMEM;
        return hs_respond(hs, out, outlen);
    case AEMP__HS_AUTH:
        return hs_verify(hs, line, len);
    default:
        return AEMP_EPROTO;
    }
}

void aemp__hs_free(aemp__hs_t *hs)
{
    aemp__free(hs->l1);
    aemp__free(hs->l2);
    aemp__free(hs->r1);
    aemp__free(hs->r2);
    aemp__greeting_free(&hs->peer);
    hs->l1 = hs->l2 = hs->r1 = hs->r2 = NULL;
}
