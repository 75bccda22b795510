/* Encoders and decoders of the two framings (PROTOCOL.md §6).  Pure
 * functions over memory: no I/O, no node, fuzzable directly. */
#ifndef AEMP_CODEC_H
#define AEMP_CODEC_H

#include "value.h"

/* A growable byte buffer that encoders append to. */
typedef struct aemp__buf {
    char *data;
    size_t len, cap;
} aemp__buf_t;

/* Makes room for `add` more bytes.  0 or AEMP_ENOMEM. */
int aemp__buf_reserve(aemp__buf_t *b, size_t add);
int aemp__buf_append(aemp__buf_t *b, const void *p, size_t len);
void aemp__buf_free(aemp__buf_t *b);

/* Appends one packet: an array whose elements are `prefix` (a string of
 * prefix_len bytes, only if prefix is non-NULL — the destination port name
 * on the wire) followed by the elements of m.  On failure b->len is
 * unchanged.  AEMP_EINVAL for values the framing cannot carry. */
int aemp__json_encode(aemp__buf_t *b, const char *prefix, size_t prefix_len,
                      const aemp_msg_t *m);
int aemp__cbor_encode(aemp__buf_t *b, const char *prefix, size_t prefix_len,
                      const aemp_msg_t *m);

/* Decoding of one complete packet of exactly len bytes into a message.
 * err (may be NULL) gets a static or malloc'd-into-errbuf reason text.
 * AEMP_EPROTO / AEMP_ELIMIT / AEMP_ENOMEM. */
int aemp__json_decode(aemp_msg_t **out, const char *buf, size_t len,
                      const aemp_limits_t *lim, char *errbuf, size_t errlen);
int aemp__cbor_decode(aemp_msg_t **out, const char *buf, size_t len,
                      const aemp_limits_t *lim, char *errbuf, size_t errlen);

/* The defaults of aemp_limits_t filled into the zero fields of *lim. */
void aemp__limits_resolve(aemp_limits_t *lim);

#endif
