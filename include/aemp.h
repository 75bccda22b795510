/*
 * aemp — Erlang-inspired, event-based message passing for C.
 *
 * This header is the whole public API and its contract.  Conventions that
 * hold for every function below unless its comment says otherwise:
 *
 * Errors.   Functions that can fail return int: 0 (or a documented positive
 *           value) on success, a negative AEMP_E* code on failure.  Results
 *           come back through out-parameters, which are left untouched on
 *           failure.  aemp_strerror() / aemp_err_name() describe a code.
 *           A failed call changes nothing observable.
 *
 * Ownership. `const T *` results are borrowed: valid for as long as the
 *           comment says, never freed by you.  A `T **` argument hands the
 *           object over: on success the callee owns it and sets your pointer
 *           to NULL; on failure you still own it (except where noted).
 *           Objects you create with a *_new / constructor function are yours
 *           until you hand them over or free them.
 *
 * Threads.  A node and everything reached through it belong to the thread
 *           that runs its libuv loop.  Messages and values are immutable once
 *           built and may be read from any thread; their reference counts
 *           are not atomic, so hand a message to one thread at a time.
 *
 * IDs.      Ports and nodes are named by plain strings (port IDs, noderefs)
 *           because they travel over the network; holding an ID never keeps
 *           anything alive, and using the ID of a dead port is harmless
 *           (messages to it are dropped, monitors fire with no_such_port).
 */
#ifndef AEMP_H
#define AEMP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(AEMP_BUILDING) && defined(__GNUC__)
#define AEMP_API __attribute__((visibility("default")))
#else
#define AEMP_API
#endif

#if defined(__GNUC__)
#define AEMP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define AEMP_PRINTF(f, a)
#endif

#define AEMP_VERSION_MAJOR 0
#define AEMP_VERSION_MINOR 1
#define AEMP_VERSION_PATCH 0
#define AEMP_VERSION_STRING "0.1.0"

/* The library's version string, e.g. "0.1.0" (static storage). */
AEMP_API const char *aemp_version(void);

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

/* X(name, value, description).  Values are never renumbered. */
#define AEMP_ERRNO_MAP(X)                                                      \
    X(ENOMEM, -1, "out of memory")                                             \
    X(EINVAL, -2, "invalid argument")                                          \
    X(ENOPORT, -3, "no such port")                                             \
    X(ENOTLOCAL, -4, "port is not on this node")                               \
    X(EPERM, -5, "operation not permitted")                                    \
    X(ETYPE, -6, "value has another type")                                     \
    X(ERANGE, -7, "value or index out of range")                               \
    X(EPROTO, -8, "malformed data")                                            \
    X(ELIMIT, -9, "configured limit exceeded")                                 \
    X(EDIE, -10, "callback failed")                                            \
    X(ENOROUTE, -11, "no route to node")                                       \
    X(EBUSY, -12, "already in progress or done")                               \
    X(ENOCTX, -13, "not inside a port callback")                               \
    X(ESYS, -14, "system call failed")                                         \
    X(ENOTFOUND, -15, "name does not resolve")                                 \
    X(ETIMEDOUT, -16, "timed out")

enum aemp_errno {
#define AEMP_ERR_ENUM_(name, val, text) AEMP_##name = (val),
    AEMP_ERRNO_MAP(AEMP_ERR_ENUM_)
#undef AEMP_ERR_ENUM_
};

/* Text for an error code ("out of memory"); "unknown error" for others.
 * Static storage.  Any thread. */
AEMP_API const char *aemp_strerror(int err);
/* Symbolic name of an error code ("AEMP_ENOMEM"), or "AEMP_E?" if unknown. */
AEMP_API const char *aemp_err_name(int err);

/* Process-wide allocator, for embedding and for failure-injection tests.
 * Call before any other aemp function, from one thread, or not at all; any
 * argument NULL restores the C library's.  The realloc function must behave
 * like realloc(3) (also for a NULL pointer). */
AEMP_API void aemp_set_allocator(void *(*malloc_fn)(size_t),
                                 void *(*realloc_fn)(void *, size_t),
                                 void (*free_fn)(void *));
/* Frees memory the library handed to you (encoded buffers, strings). */
AEMP_API void aemp_free(void *p);

/* ------------------------------------------------------------------------
 * Values
 *
 * The JSON data model plus byte strings.  Values come in two situations:
 *  - built by you with the constructors below: `aemp_val_t *`, yours until
 *    handed over (to aemp_arr, aemp_map_set, aemp_sndv, ...) or freed with
 *    aemp_val_free();
 *  - read from a message: `const aemp_val_t *`, borrowed from the message,
 *    valid as long as the message is.
 * The readers work on both.
 *
 * Constructors never report errors directly: on allocation failure they
 * return NULL, and every function that takes a value treats NULL as "a
 * constructor failed" — it frees the rest and fails with AEMP_ENOMEM.  So a
 * whole message can be built in one expression and checked once.
 * ------------------------------------------------------------------------ */

typedef struct aemp_val aemp_val_t;

typedef enum aemp_type {
    AEMP_T_NULL = 0,
    AEMP_T_BOOL,
    AEMP_T_INT,    /* int64_t */
    AEMP_T_DOUBLE, /* double */
    AEMP_T_STR,    /* UTF-8 text (NUL allowed inside; length is explicit) */
    AEMP_T_BYTES,  /* binary; in JSON framing sent as a string of code
                      points U+0000..U+00FF and read back as AEMP_T_STR */
    AEMP_T_ARR,
    AEMP_T_MAP /* string keys; insertion order is kept; duplicate keys are
                  replaced when built, kept as received when decoded */
} aemp_type_t;

AEMP_API aemp_val_t *aemp_null(void);
AEMP_API aemp_val_t *aemp_bool(int b);
AEMP_API aemp_val_t *aemp_int(int64_t i);
AEMP_API aemp_val_t *aemp_double(double d);
/* Copies the NUL-terminated string s (NULL s gives NULL). The text is not
 * checked for UTF-8 here; encoders reject invalid UTF-8. */
AEMP_API aemp_val_t *aemp_str(const char *s);
/* Copies len bytes of s (may contain NUL). */
AEMP_API aemp_val_t *aemp_strn(const char *s, size_t len);
/* Copies len bytes of p (p may be NULL when len is 0). */
AEMP_API aemp_val_t *aemp_bytes(const void *p, size_t len);
/* An empty array / map. */
AEMP_API aemp_val_t *aemp_arr_new(void);
AEMP_API aemp_val_t *aemp_map_new(void);
/* An array of the given values, e.g. aemp_arr(aemp_str("x"), aemp_int(1)).
 * Takes every argument; NULL if any argument was NULL (the rest is freed). */
#define aemp_arr(...)                                                          \
    aemp_arr_of((aemp_val_t *[]){__VA_ARGS__},                                 \
                sizeof((aemp_val_t *[]){__VA_ARGS__}) / sizeof(aemp_val_t *))
AEMP_API aemp_val_t *aemp_arr_of(aemp_val_t *const *items, size_t n);
/* Appends item to arr (both taken).  Returns arr, or NULL on failure, in
 * which case both were freed. */
AEMP_API aemp_val_t *aemp_arr_push(aemp_val_t *arr, aemp_val_t *item);
/* Sets key (copied) to val (taken) in map, replacing an existing entry.
 * Returns map, or NULL on failure (map and val freed). */
AEMP_API aemp_val_t *aemp_map_set(aemp_val_t *map, const char *key,
                                  aemp_val_t *val);
/* Deep copy of any value (built or borrowed).  NULL on failure. */
AEMP_API aemp_val_t *aemp_val_copy(const aemp_val_t *v);
/* Frees a value you own; NULL is fine.  Never call it on a borrowed value. */
AEMP_API void aemp_val_free(aemp_val_t *v);

/* Readers.  They accept NULL and wrong types gracefully, as documented. */
AEMP_API aemp_type_t aemp_val_type(const aemp_val_t *v); /* NULL: T_NULL */
/* 0 and *out set if v has that type (aemp_val_double also converts an
 * AEMP_T_INT); AEMP_ETYPE otherwise.  Strings and bytes: *out borrowed from
 * v, NUL-terminated, *len (may be NULL) its length.  aemp_val_str (and
 * the "s"/"S" of aemp_msg_unpack, and tags) also take a byte string
 * without NUL bytes: Perl 2.x peers send most strings as CBOR bytes. */
AEMP_API int aemp_val_bool(const aemp_val_t *v, int *out);
AEMP_API int aemp_val_int(const aemp_val_t *v, int64_t *out);
AEMP_API int aemp_val_double(const aemp_val_t *v, double *out);
AEMP_API int aemp_val_str(const aemp_val_t *v, const char **out, size_t *len);
AEMP_API int aemp_val_bytes(const aemp_val_t *v, const void **out,
                            size_t *len);
/* Elements of an array, pairs of a map, bytes of a string; 0 otherwise. */
AEMP_API size_t aemp_val_len(const aemp_val_t *v);
/* i-th element of an array (borrowed from v), NULL if out of range. */
AEMP_API const aemp_val_t *aemp_val_at(const aemp_val_t *v, size_t i);
/* i-th pair of a map: key and value borrowed from v.  AEMP_ERANGE/ETYPE. */
AEMP_API int aemp_map_at(const aemp_val_t *v, size_t i, const char **key,
                         const aemp_val_t **val);
/* Value of key in a map (the last one if a decoded map repeats it). */
AEMP_API const aemp_val_t *aemp_map_get(const aemp_val_t *v, const char *key);
/* Deep equality (ints and doubles never compare equal to each other). */
AEMP_API int aemp_val_equal(const aemp_val_t *a, const aemp_val_t *b);

/* ------------------------------------------------------------------------
 * Messages
 *
 * A message is an immutable, reference-counted array of values.  Messages
 * handed to callbacks are borrowed for the duration of the callback; take a
 * reference with aemp_msg_ref() to keep one.
 *
 * Pictures describe values in printf style, one character per value:
 *   n  null                    (no argument)
 *   b  bool                    int
 *   i  integer                 int
 *   I  integer                 int64_t
 *   d  double                  double
 *   s  string                  const char * (NUL-terminated, copied)
 *   S  string with length      const char *, size_t
 *   y  byte string             const void *, size_t
 *   v  any value               const aemp_val_t * (copied; NULL = null)
 *   [ ... ]  nested array      (the values in between)
 *   { ... }  nested map        pairs of key (const char *) and one value
 * For unpacking the same letters take pointers (s: const char **, borrowed;
 * S: const char **, size_t *; y: const void **, size_t *; v: const
 * aemp_val_t **; i: int *, range-checked; d: double *, also from integers),
 * plus `-` (skip one element) and a final `*` (ignore further elements).
 * ------------------------------------------------------------------------ */

typedef struct aemp_msg aemp_msg_t;

/* Builds a message from a picture.  *out is yours (aemp_msg_unref). */
AEMP_API int aemp_msg_new(aemp_msg_t **out, const char *picture, ...);
/* Builds a message from an array value (taken, see the ownership rules; a
 * NULL *arr means a constructor failed: AEMP_ENOMEM).  AEMP_ETYPE if it is
 * not an array. */
AEMP_API int aemp_msg_from_val(aemp_msg_t **out, aemp_val_t **arr);
/* A new reference to m, to keep it beyond a callback: unref it when done.
 * Works on every message, including the borrowed one a tag callback gets
 * (the message without its tag); only for those it allocates, and it
 * returns NULL when that allocation fails. */
AEMP_API aemp_msg_t *aemp_msg_ref(const aemp_msg_t *m);
AEMP_API void aemp_msg_unref(aemp_msg_t *m);            /* NULL is fine */
/* Number of elements, and the i-th (borrowed; NULL if out of range). */
AEMP_API size_t aemp_msg_len(const aemp_msg_t *m);
AEMP_API const aemp_val_t *aemp_msg_at(const aemp_msg_t *m, size_t i);
/* The message as one array value (borrowed). */
AEMP_API const aemp_val_t *aemp_msg_val(const aemp_msg_t *m);
/* Unpacks elements by picture.  AEMP_ETYPE on a type mismatch, AEMP_ERANGE
 * if the element count differs (fewer, or more without a final `*`) or an
 * `i` does not fit an int.  Nothing is written on failure. */
AEMP_API int aemp_msg_unpack(const aemp_msg_t *m, const char *picture, ...);

/* Framings: the encodings of messages on the wire (PROTOCOL.md §6). */
typedef enum aemp_framing { AEMP_JSON = 1, AEMP_CBOR = 2 } aemp_framing_t;

/* Encodes one message.  *buf (yours, aemp_free) gets *len bytes; JSON text
 * is also NUL-terminated.  AEMP_EINVAL for values the framing cannot carry
 * (NaN or infinity in JSON, invalid UTF-8 in a string). */
AEMP_API int aemp_msg_encode(const aemp_msg_t *m, aemp_framing_t f, char **buf,
                             size_t *len);
/* For logs and debugging: m (a JSON array) or v as one line of JSON text
 * into *text (NUL-terminated, yours: aemp_free), e.g.
 *     char *t; if (aemp_msg_to_json(m, &t) == 0) { puts(t); aemp_free(t); }
 * Byte strings print as strings (bytes above 0x7f as U+0080..U+00FF, as
 * on the wire).  AEMP_EINVAL
 * for NULL arguments, NaN, infinity or invalid UTF-8; AEMP_ENOMEM. */
AEMP_API int aemp_msg_to_json(const aemp_msg_t *m, char **text);
AEMP_API int aemp_val_to_json(const aemp_val_t *v, char **text);
/* Decodes exactly one message occupying all len bytes (whitespace around a
 * JSON text is allowed).  AEMP_EPROTO for malformed or trailing data,
 * AEMP_ELIMIT beyond the default limits (see aemp_reader_new). */
AEMP_API int aemp_msg_decode(aemp_msg_t **out, aemp_framing_t f,
                             const void *buf, size_t len);

/* A streaming decoder: feed it bytes as they arrive (a chunk may hold
 * several messages and part of one), pull whole messages.  Limits protect
 * the reader from hostile input; 0 selects the default. */
typedef struct aemp_limits {
    size_t max_packet; /* bytes per message, default 16 MiB */
    size_t max_depth;  /* nesting of arrays/maps, default 128 */
    size_t max_items;  /* elements per array or pairs per map, default 1M */
} aemp_limits_t;
typedef struct aemp_reader aemp_reader_t;
AEMP_API int aemp_reader_new(aemp_reader_t **out, aemp_framing_t f,
                             const aemp_limits_t *limits /* NULL: defaults */);
AEMP_API void aemp_reader_free(aemp_reader_t *r);
/* Copies len bytes into the reader.  AEMP_ELIMIT if that would make a
 * single pending message larger than max_packet. */
AEMP_API int aemp_reader_feed(aemp_reader_t *r, const void *buf, size_t len);
/* 1 and *out (yours) when a whole message is available, 0 when more bytes
 * are needed, negative on malformed input; after an error the reader stays
 * failed and aemp_reader_error() tells why (borrowed, valid until the
 * reader is freed). */
AEMP_API int aemp_reader_next(aemp_reader_t *r, aemp_msg_t **out);
AEMP_API const char *aemp_reader_error(const aemp_reader_t *r);

/* ------------------------------------------------------------------------
 * Nodes
 * ------------------------------------------------------------------------ */

typedef struct aemp_node aemp_node_t;
typedef struct aemp_ctx aemp_ctx_t; /* "the port whose callback is running" */
typedef struct aemp_mon aemp_mon_t; /* a monitor guard */
struct uv_loop_s;

/* Creates a private node (local ports only; networking comes with
 * initialisation) on loop, which it borrows (NULL: the node makes and owns
 * one).  Its noderef is "anon/<cookie>" until initialised, the cookie being
 * random per node instance so that no port ID is ever reused. */
AEMP_API int aemp_node_new(aemp_node_t **out, struct uv_loop_s *loop);
/* Kills every port (monitors do not fire), cancels timers and frees the
 * node.  Guards you still hold stay valid for aemp_mon_cancel() only.  With
 * a borrowed loop, part of the memory is released by close callbacks: run
 * the loop once more (uv_run) before uv_loop_close().  Never call it from
 * inside one of the node's callbacks; NULL is fine. */
AEMP_API void aemp_node_free(aemp_node_t *n);
/* The node's loop (borrowed). */
AEMP_API struct uv_loop_s *aemp_node_loop(aemp_node_t *n);
/* Runs the loop until there is nothing left to do or aemp_stop() is called.
 * Returns 0, or AEMP_EBUSY when called from inside a callback of a loop
 * that aemp_run is running (libuv loops are not re-entrant; if you run the
 * loop yourself with uv_run, do not call aemp_run from its callbacks). */
AEMP_API int aemp_run(aemp_node_t *n);
/* Makes aemp_run() return soon: the node dispatches nothing more until the
 * loop runs again. */
AEMP_API void aemp_stop(aemp_node_t *n);

/* The node's noderef (NODE): borrowed, valid until the node is renamed by
 * initialisation or freed. */
AEMP_API const char *aemp_noderef(const aemp_node_t *n);
/* node_of: writes the noderef part of a port ID (everything before the first
 * '#') to buf (size bytes incl. NUL).  Returns its length, AEMP_ERANGE if it
 * does not fit. */
AEMP_API int aemp_node_of(const char *port, char *buf, size_t size);

/* Log messages of a node (refusals, dropped requests, ...).  The default
 * writes levels up to AEMP_LOG_WARN to standard error.  text is borrowed
 * for the call.  fn NULL restores the default; level sets the most verbose
 * level passed on. */
enum { AEMP_LOG_ERROR = 1, AEMP_LOG_WARN, AEMP_LOG_INFO, AEMP_LOG_DEBUG };
typedef void (*aemp_log_fn)(aemp_node_t *n, int level, const char *text,
                            void *user);
AEMP_API void aemp_node_set_log(aemp_node_t *n, int level, aemp_log_fn fn,
                                void *user);

/* Receive callback.  ctx names the receiving port (aemp_self) and its node
 * (aemp_ctx_node); msg is borrowed for the duration of the call.  Return 0,
 * or non-zero to fail: the port is then killed with ["die", <text>], the
 * text from aemp_die(), else aemp_strerror() of the return value ("unknown
 * error" for codes that are not AEMP_E*). */
typedef int (*aemp_rcv_fn)(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user);
/* Callback run in a port's context by aemp_call_in / aemp_after_call; same
 * failure rule. */
typedef int (*aemp_task_fn)(aemp_ctx_t *ctx, void *user);

AEMP_API aemp_node_t *aemp_ctx_node(const aemp_ctx_t *ctx);
/* SELF: the ID of the port whose callback is running (borrowed, valid while
 * that port lives). */
AEMP_API const char *aemp_self(const aemp_ctx_t *ctx);
/* Records why the callback fails and returns AEMP_EDIE, for
 * `return aemp_die(ctx, "bad %s", what);`.  The port dies with
 * ["die", <formatted text>] when the callback returns non-zero. */
AEMP_API int aemp_die(aemp_ctx_t *ctx, const char *fmt, ...) AEMP_PRINTF(2, 3);

/* ------------------------------------------------------------------------
 * Ports
 * ------------------------------------------------------------------------ */

/* Creates a local port.  With cb NULL the first message kills it with
 * ["die", "received message on port without callback"].  *id: the new port
 * ID "<noderef>#<cookie>.<counter>", borrowed, valid while the port lives
 * and until its monitors have fired; copy it to keep it longer. */
AEMP_API int aemp_port(aemp_node_t *n, aemp_rcv_fn cb, void *user,
                       const char **id);
/* Sets (cb non-NULL) or removes the default callback of a local port.
 * AEMP_ENOPORT if it does not exist, AEMP_ENOTLOCAL if it is not ours,
 * AEMP_EPERM for the node port (the same for every function below that
 * takes a local port). */
AEMP_API int aemp_rcv(aemp_node_t *n, const char *port, aemp_rcv_fn cb,
                      void *user);
/* Registers (or replaces) the callback for messages whose first element is
 * the string tag (or those bytes, see aemp_val_str); a NULL cb unregisters
 * it.  The callback receives the
 * message without its tag.  Messages whose tag has no callback go to the
 * default callback.  Errors as aemp_rcv; AEMP_EINVAL for a NULL tag. */
AEMP_API int aemp_rcv_tag(aemp_node_t *n, const char *port, const char *tag,
                          aemp_rcv_fn cb, void *user);
/* reg (the 2009 seed's): names local port `port` `name` on this node, so
 * that messages to "<noderef>#<name>" reach it — until it dies or *guard
 * is cancelled with aemp_mon_cancel() (guard may be NULL).  A name is
 * this node's only; to be found across the network a port joins a group
 * (aemp_grp_reg).  AEMP_EINVAL for an empty name, one with '#' or in the
 * form of our own port names; AEMP_EBUSY if it names a port already;
 * AEMP_ENOPORT / AEMP_ENOTLOCAL / AEMP_EPERM as aemp_rcv. */
AEMP_API int aemp_reg(aemp_node_t *n, const char *name, const char *port,
                      aemp_mon_t **guard);
/* 1 if the local port exists, 0 if not. */
AEMP_API int aemp_port_exists(aemp_node_t *n, const char *port);

/* Sends a message built from picture to port, local or remote.  Never
 * blocks and never delivers synchronously: local delivery happens from the
 * loop, in order per sender and destination.  A message to a local port
 * that does not exist is dropped (that is not an error).  A message to a
 * remote port is queued for its node (see Networking).  AEMP_EINVAL for a
 * malformed port ID or picture, AEMP_ENOROUTE for a remote port when the
 * node has no network configuration (no secret). */
AEMP_API int aemp_snd(aemp_node_t *n, const char *port, const char *picture,
                      ...);
/* Sends an array value: taken on success, yours on failure (a NULL *msg
 * means a constructor failed: AEMP_ENOMEM). */
AEMP_API int aemp_sndv(aemp_node_t *n, const char *port, aemp_val_t **msg);
/* Sends an existing message (shared, not copied; the caller keeps its
 * reference). */
AEMP_API int aemp_snd_msg(aemp_node_t *n, const char *port,
                          const aemp_msg_t *msg);

/* Kills port with a reason built from picture (NULL or "" for a normal end,
 * no reason).  The port's callbacks are removed at once; its monitors fire
 * later, from the loop.  Killing a port that does not exist is not an error
 * (it may have died already).  AEMP_EPERM for the node port. */
AEMP_API int aemp_kil(aemp_node_t *n, const char *port, const char *picture,
                      ...);
/* Same with an array value as the reason (taken on success, yours on
 * failure; an empty array is a normal end). */
AEMP_API int aemp_kilv(aemp_node_t *n, const char *port, aemp_val_t **reason);

/* Registers fn for node-port requests ["<request>", args...] (local or from
 * peers): fn gets the arguments without the request name, in the node
 * port's context (aemp_self is the noderef).  A failing fn is logged; the
 * node port never dies.  fn NULL unregisters.  Built-in requests (info,
 * snd, mon1, ...) cannot be replaced: AEMP_EPERM.  Names are copied. */
AEMP_API int aemp_node_handle(aemp_node_t *n, const char *request,
                              aemp_rcv_fn fn, void *user);

/* ------------------------------------------------------------------------
 * Monitors.  One-shot; they fire from the loop (never inside aemp_kil or
 * aemp_snd), in the order they were set up.  After aemp_mon_* returned, the
 * port either gets every message sent to it, or the monitor fires.  A port
 * that does not exist fires at once (from the loop) with
 * ["no_such_port", "cannot monitor nonexistent port", <port ID>], as Perl
 * nodes report it.
 *
 * Monitoring the node port (a bare noderef) is allowed: it can only fire for
 * a remote node, on a transport error.
 *
 * Ports reached through a relay (a slave's ports from any node but its
 * master, and other nodes' ports from a slave, except its master's) cannot
 * be monitored: AEMP_ENOROUTE.  The relay would have to watch the link on
 * the far side for us to keep the guarantee above, and the protocol has no
 * request for that; messages do pass through relays.
 *
 * Each form takes `aemp_mon_t **guard`: pass NULL if you never cancel.  A
 * guard you asked for is yours: release it with aemp_mon_cancel() exactly
 * once, before the monitor fired (cancelling it) or after (freeing it).
 * ------------------------------------------------------------------------ */

/* Form 1: cb(node, port, reason, user) is called with the kill reason
 * (borrowed; an empty message for a normal kill). */
typedef void (*aemp_mon_fn)(aemp_node_t *n, const char *port,
                            const aemp_msg_t *reason, void *user);
AEMP_API int aemp_mon_cb(aemp_node_t *n, const char *port, aemp_mon_fn cb,
                         void *user, aemp_mon_t **guard);
/* Forms 2 and 3: when port dies with a reason, kill other with the same
 * reason (a normal kill does nothing).  other NULL means SELF: then it must
 * be called from inside a port callback (AEMP_ENOCTX otherwise).  As in
 * AnyEvent::MP, the monitor belongs to port, not to other: it stays (and a
 * remote port's node keeps its watcher) until port dies or the guard is
 * cancelled, even if other died first — a port that watches a long-lived
 * one should keep the guard and cancel it when it ends.  A node that is
 * lost counts as a death with a reason (["transport_error", ...]). */
AEMP_API int aemp_mon_kill(aemp_node_t *n, const char *port, const char *other,
                           aemp_mon_t **guard);
/* Form 4: when port dies, send to rcvport the message built from picture
 * followed by the reason's elements. */
AEMP_API int aemp_mon_msg(aemp_node_t *n, const char *port, const char *rcvport,
                          aemp_mon_t **guard, const char *picture, ...);
/* mon_guard: release(resource) runs when port dies, or soon if the port does
 * not exist — from the loop in both cases.  aemp_mon_cancel() before that
 * unties the resource and releases it then.  aemp_node_free() releases what
 * is still tied; a release function must not call into a node being
 * freed.  On failure nothing is tied: resource stays yours, release is not
 * called. */
AEMP_API int aemp_mon_guard(aemp_node_t *n, const char *port,
                            void (*release)(void *resource), void *resource,
                            aemp_mon_t **guard);
/* Cancels (if it has not fired) and frees a guard; NULL is fine. */
AEMP_API void aemp_mon_cancel(aemp_mon_t *guard);

/* ------------------------------------------------------------------------
 * Networking (PROTOCOL.md).  A node talks to other nodes over TCP once it
 * has a configuration with a secret.  Private nodes connect out (their
 * peers answer over the same link); public nodes also listen.  Remote
 * snd/mon/kil work like local ones: messages to a node without a link wait
 * in its queue while the node connects in the background; when a link is
 * lost or cannot be made within monitor_timeout, the queue is dropped and
 * every monitor of that node's ports fires with
 * ["transport_error", <node ID>, <text>].
 *
 * No holes.  After mon, either every message sent to the port arrives, in
 * order, or the monitor fires; and no message sent after the first lost one
 * arrives before the monitor has fired.  How: a lost link is reported by
 * one step of the node's queue (after what the link delivered before it
 * was lost), which fires every monitor of that node's ports in the order
 * they were set up, then the node-down event (aemp_mon_nodes), and fails
 * the pending flushes.  From the loss until that step the node counts as
 * unreachable: whatever is sent to its ports is dropped as lost with the
 * link — from port callbacks, aemp_after_* and aemp_call_in callbacks, or
 * the program's own libuv handles alike — a monitor set up meanwhile fires
 * in that step too, and a new link that comes up meanwhile is used only
 * after it.  What the monitor callbacks themselves send, and monitors they
 * set up, belong to the next link.
 * ------------------------------------------------------------------------ */

typedef struct aemp_netconf {
    const char *secret;      /* shared secret (copied); NULL: none */
    double monitor_timeout;  /* seconds to connect/handshake, default 30 */
    double connect_interval; /* seconds between attempts, default 2; each
                                wait is jittered by +-25% */
    unsigned keepalive;      /* the timeout= we announce (seconds), default
                                30; 0: none (TCP keepalive only) */
    const char *framings;    /* we accept, preferred first; "cbor,json" */
    const char *auth_accept; /* methods we accept, our preference first;
                                default "tls_sha3_512,hmac_sha3_512,
                                tls_md6_64_256,hmac_md6_64_256,tls_anon"
                                (both Perl dialects'; add "cleartext"
                                only on trusted networks) */
    const char *auth_offer;  /* methods we may send, default the same
                                without tls_anon; each peer gets the
                                first of its own list we can make */
    size_t max_backlog;      /* bytes of unsent output per peer, default
                                64 MiB; beyond it the link is dropped as a
                                transport error ("send queue overflow") */
    aemp_limits_t limits;    /* for decoding packets from peers */
    const char *nodename;    /* this host's node name for resolving "" and
                                naked ports; default: uname's nodename */
    const char *dns_servers; /* "ip[:port],..." for the resolver instead of
                                the system's (tests use a local server) */
    /* Receiving: packets read from links wait in the node's queue for their
     * port callbacks.  While it holds max_queued_bytes (default 8 MiB,
     * counting each packet's memory) or max_queued_items (default 4096)
     * or more, the node stops reading from its links and resumes once it
     * is below half; TCP's flow control then carries the pressure back to
     * the senders, whose aemp_backlog() grows. */
    size_t max_queued_bytes;
    size_t max_queued_items;
    /* 1: peers may spawn only registered functions (aemp_register) and
     * never make this node load a module (aemp_module_path_add).  Default
     * 0, as in AnyEvent::MP, which trusts every node that authenticates.
     * Either way a peer reaches no code by name but what the program
     * registered or put on its module path: the node port evaluates
     * nothing, and its handlers (aemp_node_handle) are the program's. */
    int secure;
    /* TLS (see "TLS" below): cert is this node's private key and
     * certificate, PEM text (both blocks, any order) or the path of a file
     * holding it; NULL: no TLS.  ca: the certificates a peer's must
     * verify against, PEM text or a path; NULL: cert's own certificate (a
     * network sharing one self-signed certificate admits nobody else). */
    const char *cert;
    const char *ca;
    /* 1: a global node (see "Global nodes" below); also configuration key
     * "global" and `aemp run --global`.  0: global on demand only. */
    int global;
} aemp_netconf_t;

/* TLS.  A node with a certificate says so in its greeting; when both
 * sides have one, the link becomes TLS (1.2 at least, 1.3 preferred)
 * right after the greeting lines or fails: each side requires the other's
 * certificate and verifies it against its CA (no host-name check), and a
 * peer whose certificate does not verify is refused even if it knows the
 * secret.  Inside TLS the methods are, by default, tls_sha3_512 (a digest
 * of both greetings: no secret needed; tls_md6_64_256 for Perl 1.x) and,
 * accepted, tls_anon (nothing but the certificate).  Either way what is trusted is the CA: whoever
 * holds a certificate it signed is admitted and may claim any node ID,
 * as in AnyEvent::MP.  A node with a certificate and a secret still talks
 * hmac_sha3_512 to peers without one; to admit certificate holders only,
 * set auth_accept to "tls_sha3_512,tls_md6_64_256,tls_anon".  A node with a certificate
 * and no secret talks to TLS peers only.  A certificate that expires
 * within 30 days is warned about when configured. */

/* Sets the network configuration (copied); zero fields take defaults.
 * Call before the node's first network activity.  AEMP_EBUSY after;
 * AEMP_EINVAL for an unknown authentication method or framing name, or a
 * cert / ca that cannot be read or used (the reason is logged).
 * Process-wide effect: if SIGPIPE still has its default action, it is set
 * to SIG_IGN (a peer that hangs up while we write would otherwise end the
 * program); a disposition the program chose itself is kept. */
AEMP_API int aemp_node_configure(aemp_node_t *n, const aemp_netconf_t *conf);
/* Makes the node public on a resolved noderef ("127.0.0.1:4041,[::1]:4041"):
 * binds and listens on every endpoint, and renames the node to noderef
 * (ports made before keep their IDs and stay reachable locally).
 * AEMP_EINVAL for an unresolved or malformed noderef, AEMP_ESYS if an
 * endpoint cannot be bound (nothing is left listening then; the text is
 * logged), AEMP_EBUSY if already public. */
AEMP_API int aemp_node_listen(aemp_node_t *n, const char *noderef);
/* Connects to the node noderef (resolved) and keeps reconnecting forever,
 * with jittered intervals. */
AEMP_API int aemp_node_seed(aemp_node_t *n, const char *noderef);

/* Node events: fn(node, node_id, up, reason, user); up 1 = a link came up,
 * 0 = it went down (reason: ["transport_error", id, text]; empty when up).
 * Up and down strictly alternate per node.  Runs from the loop.  Cancel and
 * free with aemp_mon_cancel(*guard). */
typedef void (*aemp_node_fn)(aemp_node_t *n, const char *node_id, int up,
                             const aemp_msg_t *reason, void *user);
AEMP_API int aemp_mon_nodes(aemp_node_t *n, aemp_node_fn fn, void *user,
                            aemp_mon_t **guard);
/* 1 if a link to node_id is up / the node is known (we have heard of it,
 * or it is ourselves), 0 otherwise. */
AEMP_API int aemp_node_is_up(aemp_node_t *n, const char *node_id);
AEMP_API int aemp_node_is_known(aemp_node_t *n, const char *node_id);
/* The known / connected node IDs as a message of strings (yours). */
AEMP_API int aemp_known_nodes(aemp_node_t *n, aemp_msg_t **out);
AEMP_API int aemp_up_nodes(aemp_node_t *n, aemp_msg_t **out);

/* Bytes sent to node_id that the kernel has not taken yet (queued while
 * connecting, or buffered behind a slow peer — a receiver that stops
 * reading because its own queue is full, see max_queued_bytes); 0 for
 * unknown nodes.  snd never blocks, so a sender that produces faster than
 * the network and the receiver drain paces itself with this: at
 * max_backlog the link is dropped as a transport error (monitors fire;
 * nothing is lost silently). */
AEMP_API size_t aemp_backlog(aemp_node_t *n, const char *node_id);

/* resolve_node: turns an unresolved noderef into a resolved one,
 * component by component, keeping order and dropping duplicates:
 *   ""            -> the node name (nodename), port 4040
 *   "1234"        -> the node name, that port
 *   "host:port", "[v6]:port" -> A then AAAA records of host, that port
 *   "host"        -> SRV records of _aemp._tcp.host (priority, then weight
 *                    order), each target's A and AAAA; without SRV, port 4040
 *   numeric endpoints pass unchanged.
 * Asynchronous (c-ares on the node's loop): fn(node, status, resolved,
 * error, user) runs from the loop with status 0 and the resolved noderef
 * (borrowed for the call), or AEMP_EINVAL (unparsable component, port out
 * of range, empty host) / AEMP_ENOTFOUND / AEMP_ENOMEM with error text. */
typedef void (*aemp_resolve_fn)(aemp_node_t *n, int status,
                                const char *resolved, const char *error,
                                void *user);
AEMP_API int aemp_resolve(aemp_node_t *n, const char *noderef,
                          aemp_resolve_fn fn, void *user);

/* Calls fn(node, status, user) from the loop once every byte of every
 * message sent to node_id before the call has been handed to the kernel
 * on one link (status 0) — which is not delivery: the peer may still lose
 * it with the link, as its monitors would tell — or when that can no
 * longer happen (AEMP_ENOROUTE: the link was lost, or none came up within
 * monitor_timeout; it fails in the loss step, see "No holes" above).
 * Without a link, the flush waits for one.  AEMP_EINVAL for a port ID. */
typedef void (*aemp_flush_fn)(aemp_node_t *n, int status, void *user);
AEMP_API int aemp_flush(aemp_node_t *n, const char *node_id, aemp_flush_fn fn,
                        void *user);

/* ------------------------------------------------------------------------
 * Global nodes and the shared database (AnyEvent::MP 2.x's design, and its
 * g_* wire protocol: C and Perl 2.x nodes share one database).
 *
 * A node is global when configured so (aemp_netconf_t.global, the
 * configuration key "global", `aemp run --global`), when it is one of its
 * own seeds, or when another node makes it its master (as in 2.x, where
 * every seed becomes global on demand).  Global nodes keep links to every
 * other global node they learn of and replicate the database among
 * themselves.  Every other node attaches to one global node, its master:
 * the first of its seeds whose link comes up (then its other seed links
 * are closed: one link, not a mesh), another seed or known global node
 * when that link is lost.  Through its master a node also learns the
 * addresses of the nodes it sends to: sending to a node by its ID works
 * once any global node knows it.
 *
 * The database: families of key -> value (any value).  Each node owns the
 * entries it sets; its master holds them, and the global nodes hold the
 * union of every node's.
 *
 * Consistency (as Erlang's pg, eventual): a node's own changes reach its
 * master in the order they were made, and the other global nodes in that
 * order; there is no order between changes of different nodes.  Queries
 * and db_mon answer from the master's view, which may lag another global
 * node's.  A node's entries vanish from every global node when its link to
 * its master is lost (its master's link to the other global nodes, for
 * them) and come back when it attaches again: it sends all of them anew.
 * A global node that restarts, or a partition that heals, converges: the
 * global nodes exchange everything their attached nodes hold.  When two
 * nodes set the same key, each global node keeps one of the values (no
 * rule says whose); deleting it on one node keeps the other's.
 *
 * Names: family and key are strings; families starting with "'" are the
 * protocol's own ("'l": node ID -> its addresses, "'g": the global nodes)
 * and may be read but not written: AEMP_EPERM.  Every function here needs
 * a network configuration (AEMP_ENOROUTE otherwise) and returns AEMP_EINVAL
 * for NULL or empty names at once.
 * ------------------------------------------------------------------------ */

/* db_set: sets family/key to *value (taken on success; NULL value: null),
 * which reaches the master now or when one is attached.  Setting what is
 * already set sends nothing. */
AEMP_API int aemp_db_set(aemp_node_t *n, const char *family, const char *key,
                         aemp_val_t **value);
/* db_del: removes this node's entry (not being set is not an error). */
AEMP_API int aemp_db_del(aemp_node_t *n, const char *family, const char *key);
/* db_reg: db_set(family, port, *value) for a local port (value taken; NULL:
 * null), deleted again when the port dies or *guard is cancelled with
 * aemp_mon_cancel() (guard may be NULL), and by the global nodes when
 * this node goes down.  AEMP_ENOTLOCAL for a remote port, AEMP_ENOPORT for
 * a dead one. */
AEMP_API int aemp_db_reg(aemp_node_t *n, const char *family, const char *port,
                         aemp_val_t **value, aemp_mon_t **guard);

/* Query callback: status 0 and result (borrowed for the call), or
 * AEMP_ETIMEDOUT (result NULL) when no master answered within timeout. */
typedef void (*aemp_db_fn)(aemp_node_t *n, int status,
                           const aemp_val_t *result, void *user);
/* db_family / db_keys / db_values: asks the master for the whole family
 * (a map; empty if there is none), its keys or its values (arrays), and
 * calls fn once from the loop.  Without a master the question waits for
 * one; timeout in seconds (0: 30).  A global node answers itself. */
AEMP_API int aemp_db_family(aemp_node_t *n, const char *family, double timeout,
                            aemp_db_fn fn, void *user);
AEMP_API int aemp_db_keys(aemp_node_t *n, const char *family, double timeout,
                          aemp_db_fn fn, void *user);
AEMP_API int aemp_db_values(aemp_node_t *n, const char *family, double timeout,
                            aemp_db_fn fn, void *user);

/* db_mon: fn(node, family, db, added, changed, deleted, user) from the loop
 * whenever the family changes in the master's view: db the whole family
 * now (a map), added/changed/deleted arrays of keys (all borrowed for the
 * call).  The first call is the snapshot (every key added; it comes even
 * for an empty family).  After the master changes, the next call reports
 * the difference to the new master's view.  Until *guard is cancelled
 * (aemp_mon_cancel; NULL: for the node's life). */
typedef void (*aemp_db_mon_fn)(aemp_node_t *n, const char *family,
                               const aemp_val_t *db, const aemp_val_t *added,
                               const aemp_val_t *changed,
                               const aemp_val_t *deleted, void *user);
AEMP_API int aemp_db_mon(aemp_node_t *n, const char *family, aemp_db_mon_fn fn,
                         void *user, aemp_mon_t **guard);

/* Port groups, as 2.x's wrappers: a group is a family whose keys are port
 * IDs.  grp_reg = db_reg(group, port, null); grp_get = the keys of the
 * family (an array, empty for no members; 2.x gives undef); grp_mon calls
 * fn(node, group, members, added, removed, user) like db_mon (arrays of
 * port IDs, borrowed for the call). */
AEMP_API int aemp_grp_reg(aemp_node_t *n, const char *group, const char *port,
                          aemp_mon_t **guard);
AEMP_API int aemp_grp_get(aemp_node_t *n, const char *group, double timeout,
                          aemp_db_fn fn, void *user);
typedef void (*aemp_grp_mon_fn)(aemp_node_t *n, const char *group,
                                const aemp_val_t *members,
                                const aemp_val_t *added,
                                const aemp_val_t *removed, void *user);
AEMP_API int aemp_grp_mon(aemp_node_t *n, const char *group,
                          aemp_grp_mon_fn fn, void *user, aemp_mon_t **guard);

/* 1 if this node is global now, 0 if not.  The master's node ID (borrowed,
 * valid until the master changes) for an attached node, our own for a
 * global one, NULL without a master. */
AEMP_API int aemp_node_is_global(aemp_node_t *n);
AEMP_API const char *aemp_master(aemp_node_t *n);

/* ------------------------------------------------------------------------
 * Configuration: one JSON file (aemp(1), CONFIGURATION FILE).  Top-level
 * keys are defaults; "profile": {"<name>": {...}} holds per-node
 * overrides; a node's settings are the defaults merged with its profile.  Keys: noderef, secret, cert,
 * ca, seeds, services, module_path, secure, monitor_timeout, connect_interval,
 * max_backlog, max_queued_bytes, max_queued_items, framing, auth_accept,
 * auth_offer, dns_servers, nodename, global.
 * ------------------------------------------------------------------------ */

typedef struct aemp_config aemp_config_t;

/* Opens the configuration at path, or when path is NULL at $AEMP_CONFIG,
 * else $XDG_CONFIG_HOME/aemp/config.json, else ~/.config/aemp/config.json.
 * A missing file is an empty configuration.  A file that cannot be read or
 * parsed gives AEMP_EPROTO (or AEMP_ESYS) and still sets *out, read-only,
 * so that aemp_config_error() can say where ("line 3, column 7: ...") and
 * nothing ever overwrites it.  *out is yours: aemp_config_free(). */
AEMP_API int aemp_config_open(aemp_config_t **out, const char *path);
AEMP_API void aemp_config_free(aemp_config_t *c);
/* The file's path / the last error's text (borrowed, "" if none). */
AEMP_API const char *aemp_config_path(const aemp_config_t *c);
AEMP_API const char *aemp_config_error(const aemp_config_t *c);
/* key's effective value for profile (NULL: the defaults only): the
 * profile's own, else the default.  Borrowed until the next change. */
AEMP_API const aemp_val_t *aemp_config_get(const aemp_config_t *c,
                                           const char *profile,
                                           const char *key);
/* Sets key in profile (NULL: the defaults) to *val (taken on success; yours
 * on failure); *val NULL deletes the key.  AEMP_EPERM if read-only. */
AEMP_API int aemp_config_set(aemp_config_t *c, const char *profile,
                             const char *key, aemp_val_t **val);
/* Removes a whole profile (absent: nothing to do, 0). */
AEMP_API int aemp_config_del_profile(aemp_config_t *c, const char *profile);
/* The effective settings of profile as a map (yours: aemp_val_free). */
AEMP_API int aemp_config_effective(const aemp_config_t *c, const char *profile,
                                   aemp_val_t **out);
/* Writes the file atomically: a temporary file in the same directory with
 * mode 0600 (it holds the secret), fsync, the previous file kept as
 * <path>.bak, rename.  AEMP_EPERM if the file could not be read when
 * opened, AEMP_ESYS with aemp_config_error() text on I/O errors. */
AEMP_API int aemp_config_save(aemp_config_t *c);

/* ------------------------------------------------------------------------
 * initialise_node and services
 * ------------------------------------------------------------------------ */

/* Registers an init function under a fully qualified name
 * ("chat::server::init") for services and spawn: it runs in the context of
 * a new port with the arguments, and typically sets that port's callbacks.
 * A failure kills the new port.  NULL fn unregisters. */
AEMP_API int aemp_register(aemp_node_t *n, const char *name, aemp_rcv_fn fn,
                           void *user);

/* spawn: creates a port on `node` (a noderef or node ID, or any port ID:
 * that port's node; this node too) that runs the init function `init`
 * ("pkg::init", fully qualified) with the picture's arguments, and writes
 * its port ID into id (idsize bytes) at once: the spawner chooses the
 * name, unique as every port ID.  Messages and monitors may go to it at
 * once — they reach it in order once it exists; if the init function
 * cannot be found or fails, the port dies with ["die", text] and its
 * monitors hear that.  On this node the port is made now and its init runs
 * from the loop (after aemp_spawn returns).  On the wire: the node-port
 * request ["AnyEvent::MP::_spawn", name, init, args...] (PROTOCOL.md §7),
 * which Perl nodes send and answer too.  The remote node looks init up
 * among its registered functions (aemp_register), the built-in ones
 * (aemp::echo, aemp::sink), then its loadable modules — unless it is
 * configured `secure`, when a peer may spawn registered functions only.
 * AEMP_EINVAL (not a qualified name, bad node), AEMP_ERANGE (id too
 * small), AEMP_ENOROUTE (no network for a remote node). */
AEMP_API int aemp_spawn(aemp_node_t *n, const char *node, const char *init,
                        char *id, size_t idsize, const char *picture, ...);
/* The same with an array value of arguments (taken on success). */
AEMP_API int aemp_spawnv(aemp_node_t *n, const char *node, const char *init,
                         char *id, size_t idsize, aemp_val_t **args);

/* Loadable modules: an init function "a::b::init" that is not registered
 * is looked for in a/b.so, then a.so, in each directory of the module path
 * — the node's, in the order added (also the configuration key module_path
 * and `aemp run --module-path`), then $AEMP_MODULE_PATH (':'-separated).
 * A module is loaded once per node (dlopen) and must export
 *     int aemp_module_init(aemp_node_t *n);
 * which registers its functions with aemp_register (0, or an AEMP_E* code
 * that is reported).  What cannot be loaded is told in the die reason of
 * the port that needed it ("unable to resolve 'a::b::init': ...") and in
 * the log; the node goes on.  Trust: a module runs with the program's
 * rights, so only directories the program's owner controls belong in the
 * path; a peer that may spawn can make the node load any module on it
 * (configure `secure` to allow registered functions only).  The directory
 * is copied. */
AEMP_API int aemp_module_path_add(aemp_node_t *n, const char *dir);

/* cal: sends the picture's message with a fresh reply port's ID appended
 * to port, and calls cb(node, status, msg, user) once, from the loop:
 * status 0 with the reply; AEMP_ENOPORT with the destination's death
 * reason (it died, or its node was lost: ["transport_error", ...]);
 * AEMP_ETIMEDOUT (msg NULL) after `timeout` seconds (0: none).  Then the
 * reply port is gone.  msg is borrowed for the call.  An error returned
 * here means cb is never called. */
typedef void (*aemp_cal_fn)(aemp_node_t *n, int status, const aemp_msg_t *msg,
                            void *user);
AEMP_API int aemp_cal(aemp_node_t *n, const char *port, double timeout,
                      aemp_cal_fn cb, void *user, const char *picture, ...);
AEMP_API int aemp_calv(aemp_node_t *n, const char *port, double timeout,
                       aemp_cal_fn cb, void *user, aemp_val_t **msg);

/* initialise_node: once per node.  The profile (profile, else the node
 * name) of cfg (NULL: no file) supplies network settings, may override
 * noderef (not "anon/" or "slave/"), adds seeds and services.  Client node
 * (noderef "anon/"): listens nowhere, keeps its private anon/ ID, and
 * connects to the seeds (kept forever) and to whatever it sends to — a
 * program that reads its secret from the tool's file; fn runs once the
 * seeds are resolved.  Public node: noderef (NULL: the node
 * name) is resolved, bound on every endpoint, seeds are connected forever
 * — except that once the node attached to a global seed as its master,
 * its idle links to the other global seeds are closed until the master is
 * lost (see "Global nodes").  The global service starts: this node's
 * listen endpoints go into the database ("'l"), and it is global if
 * configured so or one of its seeds is itself.
 * Slave node (noderef "slave/"): connects to every seed, attaches to the
 * first that completes the handshake, renames itself
 * "slave/<id>@<master>" and routes through it; AEMP_ENOROUTE (via fn) when
 * no master within monitor_timeout.  Then services start.  fn(node, status,
 * error, user) runs from the loop when done.  AEMP_EBUSY if called twice;
 * AEMP_EINVAL when the node would have neither a secret nor a certificate
 * (nobody could authenticate it) or the settings are wrong (logged). */
typedef void (*aemp_init_fn)(aemp_node_t *n, int status, const char *error,
                             void *user);
AEMP_API int aemp_initialise(aemp_node_t *n, const aemp_config_t *cfg,
                             const char *profile, const char *noderef,
                             const char *const *seeds, size_t nseeds,
                             aemp_init_fn fn, void *user);
/* The same, blocking: runs the loop until initialisation is done.  Not from
 * inside a callback.  The error text (if any) is logged. */
AEMP_API int aemp_initialise_wait(aemp_node_t *n, const aemp_config_t *cfg,
                                  const char *profile, const char *noderef,
                                  const char *const *seeds, size_t nseeds);

/* ------------------------------------------------------------------------
 * Port context and timers (psub / after)
 * ------------------------------------------------------------------------ */

/* Runs fn(ctx, user) now, in the context of local port `port` (SELF is set
 * and a failure kills the port) — what psub gives a callback that runs
 * later, e.g. from your own libuv handle.  AEMP_ENOPORT if the port is dead
 * (fn is not called). */
AEMP_API int aemp_call_in(aemp_node_t *n, const char *port, aemp_task_fn fn,
                          void *user);
/* after: sends the picture message to port in `seconds` (0 to 1e9; a delay
 * under a millisecond is rounded, 0 fires on a later loop iteration, never
 * within the current one).  AEMP_EINVAL for other delays. */
AEMP_API int aemp_after_snd(aemp_node_t *n, double seconds, const char *port,
                            const char *picture, ...);
/* after: calls fn in the context of local port `port` in `seconds` (as
 * for aemp_after_snd); the timer is dropped silently if the port dies
 * first. */
AEMP_API int aemp_after_call(aemp_node_t *n, double seconds, const char *port,
                             aemp_task_fn fn, void *user);

#ifdef __cplusplus
}
#endif
#endif /* AEMP_H */
