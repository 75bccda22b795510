/* The handshake: greeting and nonce lines, method and framing choice and
 * the check of the peer's token.  The methods themselves are the table in
 * auth.c, the framings the one in codec.h.  See handshake.h. */
#include "handshake.h"

#include "codec.h"

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
    else if (klen == 6 && (!memcmp(f, "mproto", 6) || !memcmp(f, "gproto", 6)))
        g->mproto = true;
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

enum aemp__dialect aemp__greeting_dialect(const aemp__greeting_t *g)
{
    const char *pv = g->provider ? g->provider : "";
    if (!strncmp(pv, "aemp-c-", 7))
        return AEMP__DIALECT_AEMP;
    /* 2.x: its protocol keys, its SHA3 methods or its provider name (the
     * version field is 1 in both) */
    if (g->mproto || !strncmp(pv, "AE-2.", 5) ||
        aemp__list_has(g->auth, "hmac_sha3_512", 13) ||
        aemp__list_has(g->auth, "tls_sha3_512", 12))
        return AEMP__DIALECT_PERL2;
    return AEMP__DIALECT_PERL1;
}

/* ---- the session --------------------------------------------------------- */

/* aemp__hs_test_lines: the lines every session greets with instead of its
 * own while set (tests only; empty strings: not set). */
static char test_l1[AEMP__MAX_LINE], test_l2[AEMP__MAX_LINE];

static bool test_line_ok(const char *l)
{
    size_t len = strlen(l);
    return len && len < AEMP__MAX_LINE && !strpbrk(l, "\r\n");
}

int aemp__hs_test_lines(const char *l1, const char *l2)
{
    if (!l1 || !l2) {
        test_l1[0] = test_l2[0] = 0;
        return 0;
    }
    if (!test_line_ok(l1) || !test_line_ok(l2))
        return AEMP_EINVAL;
    snprintf(test_l1, sizeof test_l1, "%s", l1);
    snprintf(test_l2, sizeof test_l2, "%s", l2);
    return 0;
}

/* Our own greeting and nonce lines into hs->l1 and hs->l2 (PROTOCOL.md
 * §2, §3); NULL where memory ran out. */
static int own_lines(aemp__hs_t *hs, const aemp__hs_conf_t *conf,
                     const char *peeraddr)
{
    unsigned char nonce[AEMP__NONCE_BYTES];
    char b64[4 * AEMP__NONCE_BYTES / 3 + 1];
    int rc = aemp__random(nonce, sizeof nonce);
    if (rc < 0) {
        hs_fail(hs, "no random bytes for the nonce");
        return rc;
    }
    EVP_EncodeBlock((unsigned char *)b64, nonce, sizeof nonce);
    char tmo[32] = "";
    if (conf->timeout)
        snprintf(tmo, sizeof tmo, ";timeout=%u", conf->timeout);
    hs->l1 = aemp__asprintf(
        "aemp;%d;%s;%s;%s;provider=aemp-c-%s%s%s%s%s", AEMP__PROTOCOL_VERSION,
        conf->node_id, conf->auth_accept, conf->framings, AEMP_VERSION_STRING,
        conf->tls ? ";tls=1.0" : "", peeraddr ? ";peeraddr=" : "",
        peeraddr ? peeraddr : "", tmo);
    hs->l2 = aemp__strdup(b64);
    return 0;
}

int aemp__hs_start(aemp__hs_t *hs, const aemp__hs_conf_t *conf,
                   const char *peeraddr, char **out, size_t *outlen)
{
    memset(hs, 0, sizeof *hs);
    hs->conf = conf;
    *out = NULL;
    if (test_l1[0]) { /* a replay test stands in for a recorded side */
        hs->l1 = aemp__strdup(test_l1);
        hs->l2 = aemp__strdup(test_l2);
    } else {
        int rc = own_lines(hs, conf, peeraddr);
        if (rc < 0)
            return rc;
    }
    *out = hs->l1 && hs->l2 ? aemp__asprintf("%s\n%s\n", hs->l1, hs->l2) : NULL;
    if (!*out) {
        hs_fail(hs, "out of memory");
        return AEMP_ENOMEM;
    }
    *outlen = strlen(*out);
    return 0;
}

/* What this side has to authenticate the link with.  hs->tls means the
 * authentication lines travel inside TLS that both sides verified (the
 * link closes when the TLS handshake fails, and no line gets through
 * before it is done). */
static aemp__auth_have_t hs_have(const aemp__hs_t *hs)
{
    return (aemp__auth_have_t){hs->conf->secret, hs->tls};
}

/* The framing we send: the first of the peer's list that we can write
 * (whatever we accept ourselves), NULL if none. */
static const aemp__framing_t *pick_framing(const char *theirs)
{
    const char *p = theirs, *name;
    size_t len;
    while (aemp__list_next(&p, &name, &len)) {
        const aemp__framing_t *fr = aemp__framing_named(name, len);
        if (fr)
            return fr;
    }
    return NULL;
}

/* Our authentication line for method m and framing fr into *out. */
static int auth_line(aemp__hs_t *hs, const aemp__auth_method_t *m,
                     const aemp__framing_t *fr, char **out, size_t *outlen)
{
    char token[AEMP__AUTH_TOKEN_MAX];
    int rc = aemp__auth_token(m->name, hs->conf->secret, hs->l1, hs->l2, hs->r1,
                              hs->r2, token, sizeof token);
    if (rc == 0 &&
        !(*out = aemp__asprintf("%s;%s;%s\n", m->name, token, fr->name)))
        rc = AEMP_ENOMEM;
    if (rc < 0) {
        hs_fail(hs, "cannot compute the %s token: %s", m->name,
                aemp_strerror(rc));
        return rc;
    }
    *outlen = strlen(*out);
    return 0;
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
    /* PROTOCOL.md §4: both want TLS, so it must be TLS; the lower nonce
     * line is the client */
    hs->tls = hs->conf->tls && hs->peer.tls;
    hs->tls_client = strcmp(hs->l2, hs->r2) < 0;
    aemp__auth_have_t have = hs_have(hs);
    if (!have.secret && !have.tls) { /* what every method needs one of */
        if (hs->conf->tls)
            hs_fail(hs, "the peer has no certificate (its greeting asks for "
                        "no TLS) and we have no shared secret");
        else
            hs_fail(hs, "unable to handshake TLS and no shared secret "
                        "configured");
        return AEMP_EPROTO;
    }
    const aemp__auth_method_t *m =
        aemp__auth_choose(hs->peer.auth, hs->conf->auth_offer, &have, hs->error,
                          sizeof hs->error);
    if (!m) {
        hs->state = AEMP__HS_FAILED;
        return AEMP_EPROTO;
    }
    const aemp__framing_t *fr = pick_framing(hs->peer.framings);
    if (!fr) {
        hs_fail(hs, "no common framing (they accept: %.80s)",
                hs->peer.framings);
        return AEMP_EPROTO;
    }
    int rc = auth_line(hs, m, fr, out, outlen);
    if (rc < 0)
        return rc;
    snprintf(hs->method, sizeof hs->method, "%s", m->name);
    hs->send_framing = fr->id;
    hs->state = AEMP__HS_AUTH;
    return 1;
}

/* Compares the peer's token for method m with the one we expect, in
 * constant time: 1 if it matches, 0 if not, or a negative error. */
static int token_check(const aemp__hs_t *hs, const aemp__auth_method_t *m,
                       const char *tok, size_t toklen)
{
    char want[AEMP__AUTH_TOKEN_MAX];
    int rc = aemp__auth_token(m->name, hs->conf->secret, hs->r1, hs->r2, hs->l1,
                              hs->l2, want, sizeof want);
    if (rc == AEMP_EINVAL)
        return 0; /* too long for any line (a huge cleartext secret) */
    if (rc < 0)
        return rc;
    size_t n = strlen(want);
    rc = toklen == n && CRYPTO_memcmp(want, tok, n) == 0;
    OPENSSL_cleanse(want, n); /* cleartext's is the secret */
    return rc;
}

/* The method of the peer's auth line: one we accept and can check. */
static const aemp__auth_method_t *peer_method(aemp__hs_t *hs,
                                              const char *method, size_t len)
{
    const aemp__auth_method_t *m = aemp__auth_find(method, len);
    if (!m || !aemp__list_has(hs->conf->auth_accept, method, len)) {
        hs_fail(hs, "peer authenticates with \"%s\", which we do not accept",
                method);
        return NULL;
    }
    aemp__auth_have_t have = hs_have(hs);
    const char *why = aemp__auth_unusable(m, &have);
    if (why) {
        hs_fail(hs, "peer authenticates with %s, which we cannot check: %s",
                m->name, why);
        return NULL;
    }
    return m;
}

/* The peer's "<method>;<token>;<framing>" line. */
static int hs_verify(aemp__hs_t *hs, const char *line, size_t len)
{
    const char *s1 = memchr(line, ';', len);
    const char *s2 =
        s1 ? memchr(s1 + 1, ';', (size_t)(line + len - s1 - 1)) : NULL;
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
    const aemp__auth_method_t *m = peer_method(hs, method, mlen);
    if (!m)
        return AEMP_EPROTO;
    int rc = token_check(hs, m, s1 + 1, (size_t)(s2 - s1 - 1));
    if (rc <= 0) {
        if (rc < 0)
            hs_fail(hs, "cannot check the %s token: %s", m->name,
                    aemp_strerror(rc));
        else
            hs_fail(hs, "authentication failure/shared secret mismatch");
        return rc < 0 ? rc : AEMP_EPROTO;
    }
    const aemp__framing_t *fr = aemp__framing_named(framing, flen);
    if (!fr || !aemp__list_has(hs->conf->framings, framing, flen)) {
        hs_fail(hs, "peer wants to send framing \"%s\" that we do not accept",
                framing);
        return AEMP_EPROTO;
    }
    hs->recv_framing = fr->id;
    hs->state = AEMP__HS_DONE;
    return 2;
}

/* The peer's greeting line. */
static int hs_greeting(aemp__hs_t *hs, const char *line, size_t len)
{
    int rc =
        aemp__greeting_parse(line, len, &hs->peer, hs->error, sizeof hs->error);
    if (rc == 0 && !(hs->r1 = aemp__strndup(line, len))) {
        hs_fail(hs, "out of memory");
        rc = AEMP_ENOMEM;
    }
    hs->state = rc < 0 ? AEMP__HS_FAILED : AEMP__HS_NONCE;
    return rc;
}

int aemp__hs_line(aemp__hs_t *hs, const char *line, size_t len, char **out,
                  size_t *outlen)
{
    *out = NULL;
    if (len && line[len - 1] == '\r')
        len--;
    switch (hs->state) {
    case AEMP__HS_GREETING: return hs_greeting(hs, line, len);
    case AEMP__HS_NONCE:
        if (!(hs->r2 = aemp__strndup(line, len))) {
            hs_fail(hs, "out of memory");
            return AEMP_ENOMEM;
        }
        return hs_respond(hs, out, outlen);
    case AEMP__HS_AUTH: return hs_verify(hs, line, len);
    default:
        if (!hs->error[0])
            snprintf(hs->error, sizeof hs->error, "handshake already over");
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
