/* MD6 (Rivest et al., "The MD6 hash function", 2008/2009) in its default
 * mode, and the HMAC over it that Perl AnyEvent::MP 1.x authenticates
 * with (methods hmac_md6_64_256 and tls_md6_64_256, PROTOCOL.md §5).
 * Pure functions: no allocation, no state, callable from any thread. */
#ifndef AEMP_MD6_H
#define AEMP_MD6_H

#include "internal.h"

/* Digest lengths d, in bits, that MD6 defines. */
#define AEMP__MD6_MIN_BITS 1
#define AEMP__MD6_MAX_BITS 512
/* The longest MD6 key, in bytes (the spec's k = 8 words). */
#define AEMP__MD6_MAX_KEY 64
/* MD6-256's digest, and the HMAC's output, in bytes. */
#define AEMP__MD6_256_BYTES 32
/* Room for the 64 hex digits of a 256-bit token and the NUL. */
#define AEMP__MD6_HEX_SIZE 65

/* MD6 with a d-bit digest of the len bytes at msg, keyed with the keylen
 * bytes at key (0 and NULL: unkeyed, as every method here uses it), in the
 * default mode: L = 64 (the 4-ary tree; sequential mode is never reached
 * by an input that fits in memory) and r = 40 + d/4 rounds, at least 80
 * when keyed (104 for d = 256).  Writes the last d bits of the final
 * chaining value to out, (d + 7) / 8 bytes, big-endian and, when d is not
 * a multiple of 8, left-aligned in the last byte (its low bits zero).
 * msg may be NULL when len is 0, key when keylen is 0.
 * 0, or AEMP_EINVAL for d outside 1..512, keylen above 64, a NULL out, or
 * a NULL msg / key with a nonzero length. */
int aemp__md6(unsigned d_bits, const void *key, size_t keylen, const void *msg,
              size_t len, unsigned char *out);

/* HMAC (RFC 2104) over unkeyed MD6-256 with a 64-byte block: a key longer
 * than 64 bytes is replaced by its MD6-256, then zero-padded to 64 bytes;
 * mac = MD6-256((K0 ^ 0x5c..) || MD6-256((K0 ^ 0x36..) || data)).
 * The arguments are in the order of Perl's
 * Digest::HMAC_MD6::hmac_md6_hex($data, $key, 64, 256): DATA FIRST, then
 * the key.  Writes 64 lowercase hex digits and a NUL to hex (hexlen
 * bytes, at least AEMP__MD6_HEX_SIZE).  0, or AEMP_EINVAL for a NULL
 * pointer with a nonzero length, a NULL hex or hexlen too small. */
int aemp__hmac_md6_hex(const void *data, size_t datalen, const void *key,
                       size_t keylen, char *hex, size_t hexlen);

/* The two token functions for auth.c's table (aemp__auth_token_fn's
 * shape and contract: text is G(...) of PROTOCOL.md §5, textlen bytes;
 * the token is 64 lowercase hex digits and a NUL into hex, hexlen bytes).
 * 0, or AEMP_EINVAL if hexlen is below AEMP__MD6_HEX_SIZE, or for
 * hmac_md6_64_256 without a secret.  They never fail otherwise. */

/* hmac_md6_64_256, exactly as Perl 1.x computes it: AnyEvent::MP calls
 * hmac_md6_hex(md6($secret), $text, 64, 256), so in HMAC terms the text
 * is the KEY (hashed first, being longer than a block) and the raw
 * MD6-256 of the secret (strlen bytes) is the message. */
int aemp__md6_token_hmac(const char *secret, const char *text, size_t textlen,
                         char *hex, size_t hexlen);

/* tls_md6_64_256: the hex MD6-256 of the text; the secret is not used
 * (TLS authenticated the peer; the digest binds the greetings). */
int aemp__md6_token_tls(const char *secret, const char *text, size_t textlen,
                        char *hex, size_t hexlen);

#endif
