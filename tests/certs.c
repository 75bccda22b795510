/* Certificates for the tests, made with OpenSSL's API: no files, no
 * openssl binary.  See certs.h. */
#include "certs.h"

#include "helpers.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <stdlib.h>
#include <string.h>

char *nt_make_cert(const char *cn, long from_days, long to_days)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(key);
    assert_non_null(x);
    assert_non_null(b);
    X509_set_version(x, 2);
    /* a serial of its own: certificates of one name must not be taken for
     * one another in a trust store */
    unsigned char serial[8];
    assert_int_equal(RAND_bytes(serial, sizeof serial), 1);
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    assert_non_null(bn);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
    X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    assert_true(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL));
    assert_true(PEM_write_bio_X509(b, x));
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *pem = malloc((size_t)n + 1);
    assert_non_null(pem);
    memcpy(pem, p, (size_t)n);
    pem[n] = 0;
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(key);
    return pem;
}

char *nt_cert_part(const char *pem)
{
    const char *c = strstr(pem, "-----BEGIN CERTIFICATE-----");
    assert_non_null(c);
    char *s = strdup(c);
    assert_non_null(s);
    return s;
}
