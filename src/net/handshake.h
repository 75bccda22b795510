/* The text handshake of PROTOCOL.md §2–5 as pure functions over lines:
 * no sockets, so tests and the fuzzer drive it directly.  A link feeds
 * the peer's lines in and writes out what this produces. */
#ifndef AEMP_HANDSHAKE_H
#define AEMP_HANDSHAKE_H

#include "auth.h" /* the methods, their tokens, comma lists */

#define AEMP__PROTOCOL_VERSION 1
#define AEMP__MAX_LINE 4096 /* bytes per line before authentication */
#define AEMP__NONCE_BYTES 66

/* What this side offers and accepts. */
typedef struct aemp__hs_conf {
    const char *node_id;
    const char *secret;      /* NULL: none */
    const char *auth_accept; /* comma list, our preference order */
    const char *auth_offer;  /* comma list of methods we may send */
    const char *framings;    /* comma list we accept, preferred first */
    unsigned timeout;        /* keepalive promise in seconds, 0 = none */
    bool tls; /* we have a certificate: greet with tls=1.0 (PROTOCOL.md §4) */
} aemp__hs_conf_t;

typedef struct aemp__greeting {
    int version;
    char *node_id;
    char *auth;     /* the methods list, as sent */
    char *framings; /* the framings list, as sent */
    char *provider;
    char *peeraddr;
    unsigned timeout; /* 0 if absent */
    bool tls;
    bool mproto; /* mproto= or gproto= keys: Perl 2.x */
} aemp__greeting_t;

/* Who is at the other end (PROTOCOL.md §9): the node-port vocabulary
 * differs per dialect (remote kill is kil1 in Perl 2.x, kil elsewhere). */
enum aemp__dialect {
    AEMP__DIALECT_UNKNOWN, /* no link yet */
    AEMP__DIALECT_AEMP,    /* ours: provider=aemp-c-... */
    AEMP__DIALECT_PERL1,   /* AnyEvent::MP 1.x: MD6, JSON, Global */
    AEMP__DIALECT_PERL2    /* AnyEvent::MP 2.x: SHA3, CBOR, g_* */
};

/* The dialect of the node that sent greeting g. */
enum aemp__dialect aemp__greeting_dialect(const aemp__greeting_t *g);

enum aemp__hs_state {
    AEMP__HS_GREETING,
    AEMP__HS_NONCE,
    AEMP__HS_AUTH,
    AEMP__HS_DONE,
    AEMP__HS_FAILED
};

typedef struct aemp__hs {
    const aemp__hs_conf_t *conf;
    int state;
    char *l1, *l2, *r1, *r2; /* our and the peer's greeting and nonce */
    aemp__greeting_t peer;
    char method[32];             /* the one we send (aemp__auth_find) */
    aemp_framing_t send_framing; /* what we write (aemp__framing) */
    aemp_framing_t recv_framing; /* what the peer writes */
    /* Both greetings asked for TLS (set with the nonce line): the link
     * must switch to TLS right after the nonce lines (our authentication
     * line goes inside it) or fail; tls_client says which role we take,
     * the side whose nonce line sorts lower being the client. */
    bool tls, tls_client;
    char error[320];             /* why it failed: room for both sides'
                                    method lists */
} aemp__hs_t;

/* Builds our greeting and nonce lines into *out (malloc'd, both lines
 * LF-terminated).  peeraddr: the peer's address as we see it (may be
 * NULL).  0, AEMP_ENOMEM or AEMP_ESYS (no randomness); aemp__hs_free()
 * afterwards in either case. */
int aemp__hs_start(aemp__hs_t *hs, const aemp__hs_conf_t *conf,
                   const char *peeraddr, char **out, size_t *outlen);
/* Feeds one line from the peer (without its line end).  Returns 0 when
 * more lines are needed, 1 when *out holds a line to send (our
 * authentication line; malloc'd, LF-terminated; when hs->tls is set, it
 * is to go through TLS, and the peer's line will arrive through it
 * too, so tls_* methods count as usable), 2 when the handshake is
 * complete, or a negative error (AEMP_EPROTO, AEMP_ENOMEM, AEMP_ESYS) with
 * hs->error saying why.  After an error the session is AEMP__HS_FAILED
 * and refuses every further line.  *out is NULL unless 1. */
int aemp__hs_line(aemp__hs_t *hs, const char *line, size_t len, char **out,
                  size_t *outlen);
void aemp__hs_free(aemp__hs_t *hs);

/* TEST ONLY (tests/test_replay.c): from now on every aemp__hs_start of
 * this process greets with l1 and l2 (a greeting and a nonce line, without
 * line ends) instead of building its own lines, so that a test can replay
 * a recorded conversation whose authentication tokens cover the recorded
 * lines of the side our node stands in for.  Only the lines change: what
 * the session accepts, offers and checks still comes from its conf (the
 * recorded greeting's node ID and tls key are text to the peer, nothing
 * more).  Both lines are copied.  NULL for either clears the hook (lines
 * are built again).  AEMP_EINVAL (hook unchanged) if a line is empty,
 * holds CR or LF, or does not fit AEMP__MAX_LINE with its end.  Process-
 * global and not thread-safe: never call it outside a test. */
int aemp__hs_test_lines(const char *l1, const char *l2);

/* Parses a greeting line.  0, or AEMP_EPROTO / AEMP_ENOMEM with err
 * filled and nothing left in *g. */
int aemp__greeting_parse(const char *line, size_t len, aemp__greeting_t *g,
                         char *err, size_t errlen);
void aemp__greeting_free(aemp__greeting_t *g);

#endif
