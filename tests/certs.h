/* Certificates for the tests (certs.c). */
#ifndef AEMP_TEST_CERTS_H
#define AEMP_TEST_CERTS_H

/* A fresh self-signed P-256 key and certificate named cn, valid from
 * from_days to to_days days from now (negative: in the past), as PEM
 * text, key first (what the `cert` setting holds).  Yours to free(). */
char *nt_make_cert(const char *cn, long from_days, long to_days);
/* The certificate block(s) of such a text, without the key (a `ca`
 * setting), malloc'd. */
char *nt_cert_part(const char *pem);

#endif
