/* MD6, written here from its specification (R. Rivest et al., "The MD6
 * hash function: a proposal to NIST for SHA-3", 2008, revised 2009)
 * because Perl AnyEvent::MP 1.x authenticates with it and no Debian
 * package provides a library for it.  Only what the spec calls the
 * default mode is here: w = 64-bit words, L = 64, r = 40 + d/4 rounds.
 * Checked against the known answers in tests/test_md6.c and, for every
 * length up to 2100 bytes, against an independent implementation (the npm
 * package node-md6, tests/md6_reference.sh).  See md6.h. */
#include "md6.h"

#include <string.h>

/* The spec's sizes, in 64-bit words: a compression reads n = 89 words
 * (Q, key, U, V, then a b = 64-word data block) and returns c = 16. */
enum {
    MD6_N = 89,
    MD6_C = 16,
    MD6_B = 64,
    MD6_Q = 15,
    MD6_K = 8,
    MD6_U = MD6_Q + MD6_K, /* index of the node ID word */
    MD6_V = MD6_U + 1,     /* index of the control word */
    MD6_DATA = MD6_V + 1,  /* index of the data block */
    MD6_BLOCK = MD6_B * 8, /* a data block in bytes */
    MD6_CHUNK = MD6_C * 8, /* a compression's output in bytes */
    MD6_L = 64,            /* mode parameter: levels of the tree */
    MD6_STEPS = 16,        /* steps of one round */
    MD6_WINDOW = MD6_N + 16 * MD6_STEPS, /* compression buffer, in words */
};

/* Q: the first 960 bits of the fractional part of sqrt(6) (spec 2.1.1;
 * recomputed with bc(1) when this was written). */
static const uint64_t md6_q[MD6_Q] = {
    0x7311c2812425cfa0, 0x6432286434aac8e7, 0xb60450e9ef68b7c1,
    0xe8fb23908d9f06f1, 0xdd2e76cba691e5bf, 0x0cd0d63b2c30bc41,
    0x1f8ccf6823058f8a, 0x54e5ed5b88e3775d, 0x4ad12aae0a6d6031,
    0x3e7f16bb88222e0d, 0x8af8671d3fb50c2c, 0x995ad1178bd25c31,
    0xc878c1dd04c4b633, 0x3b72066c7a1552ac, 0x0d6f3522631effcb,
};

/* The shift amounts r_j and l_j of step j of every round (spec 2.2.3). */
static const unsigned char md6_rs[MD6_STEPS] = {10, 5,  13, 10, 11, 12, 2, 7,
                                                14, 15, 7,  13, 11, 7,  6, 12};
static const unsigned char md6_ls[MD6_STEPS] = {11, 24, 9,  16, 15, 9, 27, 15,
                                                6,  2,  29, 8,  15, 5, 31, 9};

/* The round constant: S'_0, and S* of S'_{j+1} = (S'_j <<< 1) ^ (S'_j & S*). */
#define MD6_S0 0x0123456789abcdefu
#define MD6_SSTAR 0x7311c2812425cfa0u

/* The compression function f (spec 2.2): 16 * rounds steps of the
 * feedback shift register A, whose taps are t0..t5 = 17, 18, 21, 31, 67,
 * 89.  Only the last 89 words are ever read, so A lives in a window that
 * slides back every 16 rounds instead of taking 89 + 16r words. */
static void md6_compress(const uint64_t in[MD6_N], unsigned rounds,
                         uint64_t out[MD6_C])
{
    uint64_t a[MD6_WINDOW];
    uint64_t s = MD6_S0;
    size_t i = MD6_N;
    memcpy(a, in, MD6_N * sizeof *a);
    for (unsigned round = 0; round < rounds; round++) {
        if (i + MD6_STEPS > MD6_WINDOW) {
            memmove(a, a + i - MD6_N, MD6_N * sizeof *a);
            i = MD6_N;
        }
        for (unsigned j = 0; j < MD6_STEPS; j++, i++) {
            uint64_t x = s ^ a[i - 89] ^ a[i - 17] ^ (a[i - 18] & a[i - 21]) ^
                         (a[i - 31] & a[i - 67]);
            x ^= x >> md6_rs[j];
            a[i] = x ^ (x << md6_ls[j]);
        }
        s = ((s << 1) | (s >> 63)) ^ (s & MD6_SSTAR);
    }
    memcpy(out, a + i - MD6_C, MD6_C * sizeof *a);
}

/* ---- the tree (mode of operation, spec 2.4) ------------------------------ */

/* One hash: a message given as two pieces (the HMAC's pad and its data,
 * hashed without copying them together), and the parameters. */
typedef struct md6_job {
    const unsigned char *piece[2];
    size_t piecelen[2];
    size_t len; /* of the whole message */
    uint64_t key[MD6_K];
    unsigned d, rounds, keylen;
} md6_job_t;

static uint64_t load_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Words b[0..63] from the message's bytes off..off+n-1 (n <= 512), then
 * zeros: the spec's padding. */
static void load_block(const md6_job_t *job, size_t off, size_t n,
                       uint64_t b[MD6_B])
{
    unsigned char bytes[MD6_BLOCK] = {0};
    size_t done = 0;
    for (size_t k = 0; k < 2 && done < n; k++) {
        if (off >= job->piecelen[k]) {
            off -= job->piecelen[k];
            continue;
        }
        size_t take = job->piecelen[k] - off;
        if (take > n - done)
            take = n - done;
        memcpy(bytes + done, job->piece[k] + off, take);
        done += take;
        off = 0;
    }
    for (size_t w = 0; w < MD6_B; w++)
        b[w] = load_be64(bytes + 8 * w);
}

/* How many compressions level ell (1: the one reading the message) has:
 * one per started 512-byte block of the level below, at least one. */
static uint64_t level_nodes(size_t len, unsigned ell)
{
    uint64_t n = len ? (len - 1) / MD6_BLOCK + 1 : 1;
    while (--ell)
        n = (n + 3) / 4; /* four 16-word chunks fill a block */
    return n;
}

/* Chunk i of level ell into out: the compression of the message's block
 * i (ell = 1) or of the up to four chunks below it, zero-padded; z: it
 * is the root (the spec's final-compression flag).  The recursion is as
 * deep as the tree: at most 29 levels for 2^64 bytes, so level L + 1
 * (sequential mode, for inputs above 4^64 blocks) cannot occur and needs
 * no code. */
static void md6_node(const md6_job_t *job, unsigned ell, uint64_t i, bool z,
                     uint64_t out[MD6_C])
{
    uint64_t in[MD6_N];
    size_t used; /* data bytes in the block; the rest is padding */
    memcpy(in, md6_q, sizeof md6_q);
    memcpy(in + MD6_Q, job->key, sizeof job->key);
    if (ell == 1) {
        size_t off = (size_t)i * MD6_BLOCK;
        used = job->len - off < MD6_BLOCK ? job->len - off : MD6_BLOCK;
        load_block(job, off, used, in + MD6_DATA);
    } else {
        uint64_t below = level_nodes(job->len, ell - 1);
        size_t k = 0;
        for (; k < 4 && 4 * i + k < below; k++)
            md6_node(job, ell - 1, 4 * i + k, false, in + MD6_DATA + 16 * k);
        memset(in + MD6_DATA + 16 * k, 0, (4 - k) * MD6_CHUNK);
        used = k * MD6_CHUNK;
    }
    uint64_t pad_bits = 8 * (MD6_BLOCK - used);
    in[MD6_U] = (uint64_t)ell << 56 | i;
    /* V: r (12 bits), L (8), z (4), p (16), keylen (8), d (12) */
    in[MD6_V] = (uint64_t)job->rounds << 48 | (uint64_t)MD6_L << 40 |
                (uint64_t)z << 36 | pad_bits << 20 |
                (uint64_t)job->keylen << 12 | job->d;
    md6_compress(in, job->rounds, out);
}

/* The last d bits of the root chunk, as bytes, left-aligned. */
static void md6_output(const uint64_t root[MD6_C], unsigned d,
                       unsigned char *out)
{
    unsigned char bytes[MD6_CHUNK];
    for (int w = 0; w < MD6_C; w++)
        for (int b = 0; b < 8; b++)
            bytes[8 * w + b] = (unsigned char)(root[w] >> (56 - 8 * b));
    unsigned start = 8 * MD6_CHUNK - d; /* first bit of the digest */
    for (unsigned j = 0; j < (d + 7) / 8; j++) {
        unsigned bit = start + 8 * j, at = bit / 8, sh = bit % 8;
        unsigned v = (unsigned)bytes[at] << sh;
        if (sh && at + 1 < MD6_CHUNK)
            v |= bytes[at + 1] >> (8 - sh);
        out[j] = (unsigned char)v;
    }
}

static void md6_run(md6_job_t *job, unsigned char *out)
{
    unsigned top = 1;
    while (level_nodes(job->len, top) > 1)
        top++;
    uint64_t root[MD6_C];
    md6_node(job, top, 0, true, root);
    md6_output(root, job->d, out);
}

/* A job for d bits over pieces a and b (alen + blen bytes, which the
 * caller has checked fit a size_t), keyed with keylen <= 64 bytes. */
static void md6_init(md6_job_t *job, unsigned d, const void *key, size_t keylen,
                     const void *a, size_t alen, const void *b, size_t blen)
{
    unsigned char k[AEMP__MD6_MAX_KEY] = {0};
    if (keylen)
        memcpy(k, key, keylen);
    for (size_t w = 0; w < MD6_K; w++)
        job->key[w] = load_be64(k + 8 * w);
    job->piece[0] = a;
    job->piecelen[0] = alen;
    job->piece[1] = b;
    job->piecelen[1] = blen;
    job->len = alen + blen;
    job->d = d;
    job->keylen = (unsigned)keylen;
    /* 40 + d/4, and at least 80 when keyed (node-md6 agrees) */
    job->rounds = 40 + d / 4;
    if (keylen && job->rounds < 80)
        job->rounds = 80;
}

int aemp__md6(unsigned d_bits, const void *key, size_t keylen, const void *msg,
              size_t len, unsigned char *out)
{
    if (d_bits < AEMP__MD6_MIN_BITS || d_bits > AEMP__MD6_MAX_BITS ||
        keylen > AEMP__MD6_MAX_KEY || (!key && keylen) || (!msg && len) || !out)
        return AEMP_EINVAL;
    md6_job_t job;
    md6_init(&job, d_bits, key, keylen, msg, len, NULL, 0);
    md6_run(&job, out);
    return 0;
}

/* MD6-256 of a || b, unkeyed; both checked by the caller. */
static void md6_256_pair(const void *a, size_t alen, const void *b, size_t blen,
                         unsigned char out[AEMP__MD6_256_BYTES])
{
    md6_job_t job;
    md6_init(&job, 256, NULL, 0, a, alen, b, blen);
    md6_run(&job, out);
}

/* ---- HMAC and the tokens ------------------------------------------------- */

enum { HMAC_BLOCK = 64 };

int aemp__hmac_md6_hex(const void *data, size_t datalen, const void *key,
                       size_t keylen, char *hex, size_t hexlen)
{
    if ((!data && datalen) || (!key && keylen) || !hex ||
        hexlen < AEMP__MD6_HEX_SIZE || datalen > SIZE_MAX - HMAC_BLOCK)
        return AEMP_EINVAL;
    unsigned char k0[HMAC_BLOCK] = {0}, pad[HMAC_BLOCK];
    unsigned char inner[AEMP__MD6_256_BYTES], mac[AEMP__MD6_256_BYTES];
    if (keylen > HMAC_BLOCK)
        md6_256_pair(key, keylen, NULL, 0, k0);
    else if (keylen)
        memcpy(k0, key, keylen);
    for (int i = 0; i < HMAC_BLOCK; i++)
        pad[i] = k0[i] ^ 0x36;
    md6_256_pair(pad, sizeof pad, data, datalen, inner);
    for (int i = 0; i < HMAC_BLOCK; i++)
        pad[i] = k0[i] ^ 0x5c;
    md6_256_pair(pad, sizeof pad, inner, sizeof inner, mac);
    return aemp__to_hex(mac, sizeof mac, hex, hexlen);
}

int aemp__md6_token_hmac(const char *secret, const char *text, size_t textlen,
                         char *hex, size_t hexlen)
{
    if (!secret)
        return AEMP_EINVAL;
    unsigned char key[AEMP__MD6_256_BYTES]; /* Perl's md6($secret) */
    md6_256_pair(secret, strlen(secret), NULL, 0, key);
    /* Perl's argument order: its "key" in the data slot, the text as key */
    return aemp__hmac_md6_hex(key, sizeof key, text, textlen, hex, hexlen);
}

int aemp__md6_token_tls(const char *secret, const char *text, size_t textlen,
                        char *hex, size_t hexlen)
{
    AEMP__UNUSED(secret);
    unsigned char md[AEMP__MD6_256_BYTES];
    if (!text && textlen)
        return AEMP_EINVAL;
    md6_256_pair(text, textlen, NULL, 0, md);
    return aemp__to_hex(md, sizeof md, hex, hexlen);
}
