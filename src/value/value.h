/* The in-memory form of values and messages, shared by the value API, the
 * message builders and the codecs. */
#ifndef AEMP_VALUE_H
#define AEMP_VALUE_H

#include "internal.h"

#include <string.h>

/* One value in 16 bytes.  Containers point to a contiguous run of child
 * nodes (maps: key, value, key, value, ...), so indexing is O(1).
 * Strings and bytes are always NUL-terminated in storage. */
struct aemp_val {
    uint8_t type;  /* aemp_type_t */
    uint8_t owned; /* built by the user: children and text are separate heap
                      blocks, freed with the node; 0 inside a message */
    uint16_t pad;
    uint32_t len; /* str/bytes: bytes; arr: elements; map: pairs */
    union {
        int64_t i;
        double d;
        char *s;
        struct aemp_val *items;
    } u;
};

#define AEMP__MAX_LEN UINT32_MAX

/* v reads as a string: text, or a byte string without a NUL byte — Perl
 * 2.x (CBOR::XS) sends every string it made itself as CBOR bytes, so
 * port names, tags, request names and user strings from it arrive so. */
static inline bool aemp__val_is_text(const struct aemp_val *v)
{
    return v->type == AEMP_T_STR ||
           (v->type == AEMP_T_BYTES && !memchr(v->u.s, 0, v->len));
}

/* A message: one allocation holding this header, the root's child nodes,
 * all nested nodes, then all text (a "block": owner == base == itself).
 * Two other shapes share the header:
 *  - a view: on the stack, for a tag callback (the message without its
 *    tag) — owner NULL, base the block it looks into;
 *  - a slice: a view made durable by aemp_msg_ref — its own small heap
 *    header (owner itself) holding a reference on base. */
struct aemp_msg {
    struct aemp_msg *owner; /* carries the reference count; NULL: a view */
    struct aemp_msg *base;  /* the block holding the values */
    uint32_t refs;
    uint32_t flags; /* AEMP__MSG_RECYCLE */
    struct aemp_val root; /* AEMP_T_ARR */
};

/* The block is AEMP__BLOCK_SIZE bytes and only ever referenced from its
 * node's thread, so its node may recycle it.  aemp_msg_ref() (the user
 * keeping a message, perhaps for another thread) clears the flag. */
#define AEMP__MSG_RECYCLE 1u
#define AEMP__BLOCK_SIZE 256
/* Blocks kept for reuse: as many as a full receive queue holds (the
 * network's default bound, 4096 packets, twice over), so that a receiver
 * under a flood recycles instead of going to malloc for every packet. */
#define AEMP__BLOCK_CACHE 8192

/* A node's free message blocks: most messages are small, and recycling them
 * on the loop thread is several times cheaper than malloc + free. */
typedef struct aemp__blocks {
    void *head;
    size_t n;
} aemp__blocks_t;

/* A bump allocator over a freshly allocated message block. */
typedef struct aemp__fill {
    struct aemp_val *node; /* next free node */
    char *text;            /* next free text byte */
} aemp__fill_t;

/* Allocates a message with room for `nodes` value nodes (the root's
 * elements included) and `text` bytes, root.len = 0, and a filler
 * positioned after the root's `nroot` element slots. */
int aemp__msg_alloc(aemp_msg_t **out, size_t nodes, size_t text, size_t nroot,
                    aemp__fill_t *fill);
/* The same, recycling blocks through bc (NULL: plain allocation). */
int aemp__msg_alloc_from(aemp__blocks_t *bc, aemp_msg_t **out, size_t nodes,
                         size_t text, size_t nroot, aemp__fill_t *fill);
/* Internal reference that keeps the block recyclable.  NULL only for a
 * view when its slice cannot be allocated. */
aemp_msg_t *aemp__msg_ref(const aemp_msg_t *m);
/* Drops a reference on the node's thread, recycling the block into bc. */
void aemp__msg_release(aemp__blocks_t *bc, aemp_msg_t *m);
/* Bytes of memory the block behind m holds (an upper bound). */
size_t aemp__msg_footprint(const aemp_msg_t *m);
void aemp__blocks_free(aemp__blocks_t *bc);
/* Copies len bytes to the block's text area (NUL-terminated). */
char *aemp__fill_text(aemp__fill_t *f, const void *p, size_t len);
/* Takes n consecutive nodes. */
struct aemp_val *aemp__fill_nodes(aemp__fill_t *f, size_t n);

/* Size needed to flatten v into a block: nodes below v (not v itself) and
 * text bytes.  Fails with AEMP_ELIMIT if beyond what a block can hold. */
int aemp__val_measure(const struct aemp_val *v, size_t *nodes, size_t *text);
/* Copies v's contents into dst (already holding v's type), children taken
 * from the filler.  Never fails: the filler was sized by measure. */
void aemp__val_flatten(struct aemp_val *dst, const struct aemp_val *v,
                       aemp__fill_t *f);

/* A borrowed view of m without its first element, for tag callbacks. */
void aemp__msg_view_tail(const aemp_msg_t *m, aemp_msg_t *view);
/* A message that is the concatenation of a's and b's elements. */
int aemp__msg_concat(aemp_msg_t **out, const aemp_msg_t *a,
                     const aemp_msg_t *b);
/* A copy of m's elements from index `from` on. */
int aemp__msg_slice(aemp_msg_t **out, const aemp_msg_t *m, size_t from);
/* A message of v's elements (v must be an array), v left untouched. */
int aemp__msg_of_val(aemp_msg_t **out, const aemp_val_t *v);
/* Builds a message from a picture and a va_list (the engine of every
 * picture function). */
int aemp__msg_vnew(aemp_msg_t **out, const char *picture, va_list ap);
int aemp__msg_vnew_from(aemp__blocks_t *bc, aemp_msg_t **out,
                        const char *picture, va_list ap);

/* Sets key (copied) to val (taken, also on failure) in an owned map; the
 * map itself is left as it was on failure (AEMP_ENOMEM).  Works on maps
 * nested inside other owned values. */
int aemp__map_put(aemp_val_t *map, const char *key, aemp_val_t *val);
bool aemp__map_del(aemp_val_t *map, const char *key);
/* aemp_map_set for a key known to be new (from a hash map): no search, so
 * that building a map of n keys costs O(n), not O(n^2). */
aemp_val_t *aemp__map_append(aemp_val_t *map, const char *key, size_t klen,
                             aemp_val_t *val);
/* For an index kept beside an owned map: the i-th key (its text stays where
 * it is while the pair lives, also when the map grows or pairs move), the
 * i-th value replaced (val taken), the i-th pair removed by moving the last
 * pair into its place (order is not kept). */
const char *aemp__map_key_at(const aemp_val_t *map, size_t i, size_t *len);
void aemp__map_replace_at(aemp_val_t *map, size_t i, aemp_val_t *val);
void aemp__map_swap_remove(aemp_val_t *map, size_t i);

/* UTF-8 validity (RFC 3629: no surrogates, no overlongs, <= U+10FFFF). */
bool aemp__utf8_valid(const char *s, size_t len);

#endif
