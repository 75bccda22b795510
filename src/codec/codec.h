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
/* Appends v as JSON text (nothing on failure: AEMP_EINVAL for NaN,
 * infinity or invalid UTF-8, AEMP_ENOMEM). */
int aemp__json_value(aemp__buf_t *b, const aemp_val_t *v);
int aemp__json_encode(aemp__buf_t *b, const char *prefix, size_t prefix_len,
                      const aemp_msg_t *m);
int aemp__cbor_encode(aemp__buf_t *b, const char *prefix, size_t prefix_len,
                      const aemp_msg_t *m);

/* Decoding of one complete packet of exactly len bytes into a message
 * (JSON: whitespace around it allowed).  lim must be resolved (see
 * aemp__limits_resolve); max_packet is the caller's business.  On failure
 * errbuf (may be NULL) receives the reason, with the byte position where
 * known.  AEMP_EPROTO / AEMP_ELIMIT / AEMP_ENOMEM. */
int aemp__json_decode(aemp_msg_t **out, const char *buf, size_t len,
                      const aemp_limits_t *lim, char *errbuf, size_t errlen);
int aemp__cbor_decode(aemp_msg_t **out, const char *buf, size_t len,
                      const aemp_limits_t *lim, char *errbuf, size_t errlen);
/* The same, with the message's block from bc (a node's recycled blocks;
 * NULL: malloc) — a link's reader decodes millions of small packets. */
int aemp__json_decode_from(aemp__blocks_t *bc, aemp_msg_t **out,
                           const char *buf, size_t len,
                           const aemp_limits_t *lim, char *errbuf,
                           size_t errlen);
int aemp__cbor_decode_from(aemp__blocks_t *bc, aemp_msg_t **out,
                           const char *buf, size_t len,
                           const aemp_limits_t *lim, char *errbuf,
                           size_t errlen);
/* Internal to the reader: decoded messages take their blocks from bc,
 * which must outlive the reader (a link's reader uses its node's). */
struct aemp_reader;
void aemp__reader_set_blocks(struct aemp_reader *r, aemp__blocks_t *bc);

/* The defaults of aemp_limits_t filled into the zero fields of *lim, and
 * max_depth / max_items clamped to what the decoders can honour. */
void aemp__limits_resolve(aemp_limits_t *lim);

/* JSON whitespace (RFC 8259), all the decoder and scanner allow. */
static inline bool aemp__json_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* The decoders recurse once per nesting level; the JSON decoder counts
 * values as jansson did (scalars included). */
#define AEMP__DEPTH_CAP 2048

/* ---- packet boundaries, for the streaming reader ----------------------- */

/* One open container of the CBOR scanner. */
typedef struct aemp__scan_frame {
    uint64_t n; /* definite: items still to come; indefinite: items seen */
    bool indef, map;
} aemp__scan_frame_t;

/* Resumable search for the end of one packet in a buffer that grows between
 * calls.  Offsets are relative to the buffer start the caller passes, which
 * must stay the same (same bytes) until the scanner is reset. */
typedef struct aemp__scan {
    size_t start; /* first byte of the packet (JSON: after whitespace) */
    size_t off;   /* bytes examined so far */
    size_t depth; /* open containers */
    bool started, done;
    bool in_str, esc;  /* JSON: inside a string, after a backslash */
    bool tagged;       /* CBOR: a tag waits for its item */
    uint8_t str_major; /* CBOR: inside an indefinite string of this type */
    uint64_t skip;     /* CBOR: string bytes still to pass over */
    aemp__scan_frame_t *stack; /* CBOR: max_depth frames */
} aemp__scan_t;

/* Both: 1 when the packet [start, off) is complete (and again on every
 * later call until reset), 0 when more bytes are needed, AEMP_EPROTO or
 * AEMP_ELIMIT with a static reason in *why.  Leading whitespace is passed
 * over (start moves) so that the caller can drop it. */
int aemp__json_scan(aemp__scan_t *s, const char *buf, size_t len,
                    const aemp_limits_t *lim, const char **why);
int aemp__cbor_scan(aemp__scan_t *s, const char *buf, size_t len,
                    const aemp_limits_t *lim, const char **why);

/* ---- the framings: one table (PROTOCOL.md §6) --------------------------- */

/* Everything that differs between JSON and CBOR, so that callers look a
 * framing up instead of switching on it.  A reader for one is made with
 * aemp_reader_new(&r, fr->id, limits), which runs fr->scan and
 * fr->decode. */
typedef struct aemp__framing {
    aemp_framing_t id;
    const char *name; /* in greetings and authentication lines */
    /* appends one packet; see aemp__json_encode */
    int (*encode)(aemp__buf_t *b, const char *prefix, size_t prefix_len,
                  const aemp_msg_t *m);
    /* decodes one complete packet; see aemp__json_decode_from */
    int (*decode)(aemp__blocks_t *bc, aemp_msg_t **out, const char *buf,
                  size_t len, const aemp_limits_t *lim, char *errbuf,
                  size_t errlen);
    /* finds where a packet ends; see aemp__json_scan */
    int (*scan)(aemp__scan_t *s, const char *buf, size_t len,
                const aemp_limits_t *lim, const char **why);
    bool scan_stack; /* the scanner needs aemp__scan_t.stack (max_depth) */
    /* the keepalive packet: the empty array, written as is */
    const char *keepalive;
    size_t keepalive_len;
} aemp__framing_t;

/* Indexed by aemp_framing_t; entries without a name are not framings. */
#define AEMP__FRAMINGS 3
extern const aemp__framing_t aemp__framing_table[AEMP__FRAMINGS];

/* The row of f, NULL if f is not a framing.  Inline: the link looks its
 * framing up for every packet it writes. */
static inline const aemp__framing_t *aemp__framing(aemp_framing_t f)
{
    unsigned i = (unsigned)f;
    return i < AEMP__FRAMINGS && aemp__framing_table[i].name
               ? &aemp__framing_table[i]
               : NULL;
}

/* The row whose name is the len bytes at name, NULL if none. */
const aemp__framing_t *aemp__framing_named(const char *name, size_t len);

#endif
