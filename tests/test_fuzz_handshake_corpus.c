/* Replays the handshake fuzz corpus (tests/corpus/handshake/) through the
 * fuzz target in every build, so that a crash the fuzzer once found stays
 * fixed even where libFuzzer is not available. */
#include "helpers.h"

#define FUZZ_ENTRY fuzz_handshake
#include "fuzz_handshake.c"
#undef FUZZ_ENTRY

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AEMP_HS_CORPUS_DIR
#error "AEMP_HS_CORPUS_DIR must name tests/corpus/handshake"
#endif

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static void replay_corpus(void **state)
{
    DIR *d = opendir(AEMP_HS_CORPUS_DIR);
    assert_non_null(d);
    struct dirent *e;
    size_t files = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", AEMP_HS_CORPUS_DIR, e->d_name);
        size_t len;
        unsigned char *buf = slurp(path, &len);
        fuzz_handshake(buf, len);
        /* every prefix too: a link sees the bytes in pieces */
        for (size_t k = 0; k < len && k < 512; k += 7)
            fuzz_handshake(buf, k);
        free(buf);
        files++;
    }
    closedir(d);
    assert_true(files >= 10);
}

/* Inputs that reach every state: the corpus must keep covering them. */
static void reaches_done(void **state)
{
    /* conf 0: a greeting, a nonce, then a correct auth line (\x03) */
    const char in[] = "\x00"
                      "aemp;1;10.0.0.1:1;hmac_sha3_512;json\n"
                      "nonce\n"
                      "\x03\n";
    aemp__hs_t hs;
    char *out;
    size_t outlen;
    assert_int_equal(aemp__hs_start(&hs, &fuzz_confs[0], NULL, &out, &outlen),
                     0);
    aemp_free(out);
    assert_int_equal(aemp__hs_line(&hs, "aemp;1;10.0.0.1:1;hmac_sha3_512;json",
                                   36, &out, &outlen),
                     0);
    assert_int_equal(aemp__hs_line(&hs, "nonce", 5, &out, &outlen), 1);
    aemp_free(out);
    char auth[300];
    size_t n = fuzz_auth_line(&hs, "hmac_sha3_512", auth, sizeof auth);
    assert_true(n > 0);
    assert_int_equal(aemp__hs_line(&hs, auth, n, &out, &outlen), 2);
    aemp__hs_free(&hs);
    fuzz_handshake((const uint8_t *)in, sizeof in - 1);
    /* conf 5 (MD6): a Perl 1.30 greeting, then its hmac_md6_64_256 line */
    static const char g130[] = "aemp;1;A;tls_md6_64_256,hmac_md6_64_256,"
                               "tls_anon,cleartext;json,storable;"
                               "provider=AE-1.30";
    assert_int_equal(aemp__hs_start(&hs, &fuzz_confs[5], NULL, &out, &outlen),
                     0);
    aemp_free(out);
    assert_int_equal(aemp__hs_line(&hs, g130, strlen(g130), &out, &outlen), 0);
    assert_int_equal(aemp__hs_line(&hs, "nonce", 5, &out, &outlen), 1);
    assert_non_null(strstr(out, "hmac_md6_64_256;"));
    aemp_free(out);
    n = fuzz_auth_line(&hs, "hmac_md6_64_256", auth, sizeof auth);
    assert_true(n > 0);
    assert_int_equal(aemp__hs_line(&hs, auth, n, &out, &outlen), 2);
    assert_string_equal(hs.method, "hmac_md6_64_256");
    aemp__hs_free(&hs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replay_corpus),
        cmocka_unit_test(reaches_done),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
