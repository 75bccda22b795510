/* libFuzzer target for the handshake (src/handshake.h): arbitrary bytes
 * into aemp__greeting_parse, and arbitrary lines into a session started
 * with aemp__hs_start, the way a link feeds them (lines split at LF, at
 * most AEMP__MAX_LINE bytes each).
 *
 * Input layout: the first byte picks a configuration; the rest is split
 * into lines.  Three one-byte lines stand for values the fuzzer cannot
 * guess, so that it can reach every state:
 *   "\x01"  our own greeting line (the echo check)
 *   "\x02"  our own nonce line
 *   "\x03"  a correct authentication line for the current session
 *
 * Build: cmake -DAEMP_BUILD_FUZZ=ON -DCMAKE_C_COMPILER=clang; run
 * ./fuzz_handshake tests/corpus/handshake.  test_fuzz_handshake_corpus
 * replays the corpus in every build (with FUZZ_ENTRY renamed, as
 * test_fuzz_corpus does for the reader targets). */
#include "handshake.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static const aemp__hs_conf_t fuzz_confs[] = {
    {"127.0.0.1:4040", "secret", "hmac_sha3_512", "hmac_sha3_512", "cbor,json",
     30, false},
    {"127.0.0.1:4040", "secret", "hmac_sha3_512,cleartext",
     "cleartext,hmac_sha3_512", "json", 0, false},
    {"anon/fuzz", NULL, "hmac_sha3_512", "hmac_sha3_512", "cbor", 1, false},
    {"slave/x", "s", "tls_sha3_512,tls_anon,hmac_sha3_512,cleartext",
     "tls_anon,hmac_sha3_512", "json,cbor", 5, false},
    /* a certificate: peers greeting with tls=1.0 make it a TLS session */
    {"tls/x", NULL, "tls_sha3_512,tls_anon,hmac_sha3_512",
     "tls_sha3_512,tls_anon", "cbor,json", 30, true},
    /* Perl 1.x's MD6 methods (index 5, 6) */
    {"md6/x", "secret", "hmac_md6_64_256,tls_md6_64_256,tls_anon",
     "hmac_md6_64_256,tls_md6_64_256", "json", 0, false},
    {"md6/tls", "secret",
     "tls_md6_64_256,hmac_md6_64_256,tls_sha3_512,hmac_sha3_512,tls_anon",
     "tls_md6_64_256,hmac_md6_64_256,tls_sha3_512,hmac_sha3_512", "json,cbor",
     12, true},
};

/* A correct auth line of `method` for the session so far (token over
 * G(R1, R2, L1, L2)), or "" if there is none to make: the byte 3 on a
 * line of its own asks for hmac_sha3_512, 4 for hmac_md6_64_256, 5 for
 * tls_md6_64_256 (refused unless the session is TLS). */
static size_t fuzz_auth_line(const aemp__hs_t *hs, const char *method,
                             char *buf, size_t size)
{
    char hex[129];
    if (!hs->r1 || !hs->r2 || !hs->conf->secret ||
        aemp__auth_token(method, hs->conf->secret, hs->r1, hs->r2, hs->l1,
                         hs->l2, hex, sizeof hex) < 0)
        return 0;
    int n = snprintf(buf, size, "%s;%s;json", method, hex);
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

static void fuzz_session(const aemp__hs_conf_t *conf, const char *p, size_t len)
{
    aemp__hs_t hs;
    char *out = NULL;
    size_t outlen = 0;
    if (aemp__hs_start(&hs, conf, "127.0.0.1:1", &out, &outlen) < 0) {
        aemp__hs_free(&hs);
        return;
    }
    aemp_free(out);
    const char *end = p + len;
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        size_t linelen = lf ? (size_t)(lf - p) : (size_t)(end - p);
        if (!lf || linelen + 1 > AEMP__MAX_LINE)
            break; /* the link waits for more, or cuts the peer off */
        const char *line = p;
        char auth[300];
        if (linelen == 1 && (p[0] == 1 || p[0] == 2) && hs.l1) {
            line = p[0] == 1 ? hs.l1 : hs.l2;
            linelen = strlen(line);
        } else if (linelen == 1 && p[0] >= 3 && p[0] <= 5) {
            static const char *const methods[] = {
                "hmac_sha3_512", "hmac_md6_64_256", "tls_md6_64_256"};
            linelen = fuzz_auth_line(&hs, methods[p[0] - 3], auth, sizeof auth);
            line = auth;
        }
        p = lf + 1;
        out = NULL;
        int rc = aemp__hs_line(&hs, line, linelen, &out, &outlen);
        if (rc == 1) {
            if (!out || strlen(out) != outlen || out[outlen - 1] != '\n')
                __builtin_trap();
            aemp_free(out);
        } else if (out) {
            __builtin_trap(); /* output only with rc 1 */
        }
        if (rc < 0 && !hs.error[0] && rc != AEMP_ENOMEM)
            __builtin_trap(); /* every refusal says why */
        if (rc < 0 || rc == 2)
            break;
    }
    if (hs.state == AEMP__HS_DONE &&
        (!hs.send_framing || !hs.recv_framing || !hs.method[0]))
        __builtin_trap();
    aemp__hs_free(&hs);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    aemp__greeting_t g;
    char err[160];
    if (aemp__greeting_parse((const char *)data, size, &g, err, sizeof err) ==
        0)
        aemp__greeting_free(&g);
    else if (!err[0])
        __builtin_trap();
    if (size < 1)
        return 0;
    const aemp__hs_conf_t *conf =
        &fuzz_confs[data[0] % (sizeof fuzz_confs / sizeof *fuzz_confs)];
    fuzz_session(conf, (const char *)data + 1, size - 1);
    return 0;
}
