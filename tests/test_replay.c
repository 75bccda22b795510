/* Replays of recorded conversations between Perl AnyEvent::MP nodes
 * (tests/replay/: verbatim excerpts of the interop/ recordings beside
 * PROTOCOL.md).
 *
 * The test plays ONE side of a recorded link (mostly the Perl node that
 * dialled; once the one that listened, our node dialling it): it sends
 * the recorded greeting, nonce and authentication lines and then its
 * recorded packets, unchanged, against a real node of ours over real TCP
 * (TLS where the recording had it), on one uv loop.  Our node stands in
 * for the other side: the test hook aemp__hs_test_lines() makes it greet
 * with that side's recorded greeting and nonce lines, so that with the
 * recorded secret its authentication line must equal the recorded one
 * byte for byte, and the player's recorded line must pass its check.
 *
 * After that every packet the recorded side sent is expected from our
 * node, as a value: port IDs that name the recorded side ("A#x", or "A"
 * alone, also as map keys) name our node instead, a time stamp is any
 * number near our clock, what the replay renames (the recorded side's
 * address, the names of the ports it spawned on the player) is ours, and
 * where our node differs from the Perl one on purpose a rule of the
 * replay says so, and why (code we never evaluate, a request only one
 * dialect had, 1.30's groups that we keep apart, hash order).  Our node
 * runs the global service as every initialised node does (2.x's g_*,
 * 1.30's Global::connect); what the recorded side's program did to it
 * (grp_reg), ours does where the recording shows its effect.  Replies may come
 * in any order between two packets of the player that waited for them (a wait
 * point, as the recorded driver waited); a packet nobody expects fails
 * the test, as does a link our node drops.
 *
 * After the recording: barriers (a relayed snd) show that nothing else
 * was sent, the link is still up, every unknown request was logged, and
 * our node speaks the peer's dialect to it: a remote kill (kil1 to 2.x,
 * kil to 1.x), a monitor (mon1) answered by a recorded Perl kil0.
 * Received packets are decoded with jansson (JSON) and libcbor (CBOR),
 * not with the library's reader. */
#include "global.h"
#include "net_harness.h"

#include <cbor.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REPLAY_SECRET "harness-secret" /* of every recording but TLS's */
#define WAIT_S 5.0                     /* for what must come */
#define MAX_STREAMS 4

/* ==== the recordings ==================================================== */

/* One recorded segment: a handshake line or two, a packet, or a FIN. */
typedef struct ev {
    int stream;    /* N of "[sN]"; 1 in files of one stream */
    bool ours;     /* sent by the side our node stands in for */
    bool fin;      /* "[flags FIN]" */
    size_t nbytes; /* the recorded size, 0 if not given */
    int nlines;    /* "| " lines: handshake text, or a packet's wire text */
    char *line[2];
    char *json; /* a JSON packet */
    char *diag; /* a CBOR packet in diagnostic notation ('b' bytes) */
    char *hex;  /* its bytes in hex, "..." at the end when cut */
    int lineno; /* in the replay file */
} ev_t;

/* A line "WIRE-WRITE fd=N <text>" of a node's log (1.30-tls only): what
 * it wrote, before TLS; \x0a stands for LF. */
typedef struct wire_write {
    bool ours;
    char *text;
    int lineno;
} wire_write_t;

typedef struct recording {
    ev_t *ev;
    size_t n, cap;
    wire_write_t ww[128];
    size_t nww;
    char *text; /* the file */
} recording_t;

static char *replay_path(const char *file)
{
    const char *src = __FILE__; /* absolute in CMake builds */
    const char *slash = strrchr(src, '/');
    size_t dirlen = slash ? (size_t)(slash - src) : 1;
    char *p = malloc(dirlen + strlen(file) + 16);
    assert_non_null(p);
    sprintf(p, "%.*s/replay/%s", (int)dirlen, slash ? src : ".", file);
    return p;
}

static ev_t *ev_add(recording_t *r, int lineno)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->ev = realloc(r->ev, r->cap * sizeof *r->ev);
        assert_non_null(r->ev);
    }
    ev_t *e = &r->ev[r->n++];
    memset(e, 0, sizeof *e);
    e->stream = 1;
    e->lineno = lineno;
    return e;
}

/* "  1.209116 [s1] B[127.0.0.1:41174] -> A[127.0.0.1:45667]  209 bytes"
 * (or without [s1], or "[flags FIN]"): a new event, NULL for other lines.
 * ours: the sender's label starts so ("A["). */
static ev_t *parse_header(recording_t *r, char *line, int lineno,
                          const char *ours)
{
    char *arrow = strstr(line, " -> ");
    size_t len = strlen(line);
    bool bytes = len > 6 && !strcmp(line + len - 6, " bytes");
    bool fin = strstr(line, "[flags FIN]") != NULL;
    if (!arrow || strstr(line, "########") || (!bytes && !fin))
        return NULL;
    ev_t *e = ev_add(r, lineno);
    char *from = arrow;
    while (from > line && from[-1] != ' ')
        from--;
    e->ours = !strncmp(from, ours, strlen(ours));
    char *tag = strstr(line, " [s");
    if (tag && tag < from)
        e->stream = atoi(tag + 3);
    e->fin = fin;
    if (bytes) {
        char *num = line + len - 6;
        while (num > line && num[-1] != ' ')
            num--;
        e->nbytes = strtoul(num, NULL, 10);
    }
    return e;
}

/* The text of "json X   # why" without its comment. */
static char *strip_comment(char *s)
{
    char *c = strstr(s, "   # ");
    if (c)
        *c = 0;
    return s;
}

/* Adds a content line ("| text", "json ...", "cbor ...", "hex ...") to e;
 * false if it is none. */
static bool parse_content(ev_t *e, char *line)
{
    while (*line == ' ')
        line++;
    if (!strncmp(line, "| ", 2)) {
        if (e->nlines < 2)
            e->line[e->nlines++] = line + 2;
    } else if (!strncmp(line, "json ", 5)) {
        e->json = strip_comment(line + 5);
    } else if (!strncmp(line, "cbor ", 5)) {
        e->diag = strip_comment(line + 5);
    } else if (!strncmp(line, "hex ", 4)) {
        e->hex = line + 4;
    } else {
        return false;
    }
    return true;
}

/* Keeps a WIRE-WRITE line of the client's (the player's) or the server's
 * log, with \x0a turned into LF. */
static void wire_write(recording_t *r, char *line, int lineno, int section)
{
    char *t = strchr(line + 11, ' ');
    assert_non_null(t);
    assert_true(section && r->nww < sizeof r->ww / sizeof *r->ww);
    r->ww[r->nww++] = (wire_write_t){section == 2, ++t, lineno};
    char *o = t;
    for (char *i = t; *i; i++)
        if (!strncmp(i, "\\x0a", 4)) {
            *o++ = '\n';
            i += 3;
        } else {
            *o++ = *i;
        }
    *o = 0;
}

static void recording_load(recording_t *r, const char *file, const char *ours)
{
    int section = 0; /* of WIRE-WRITE lines: 1 client, 2 server */
    memset(r, 0, sizeof *r);
    char *path = replay_path(file);
    r->text = cp_slurp(path, NULL);
    if (!r->text)
        fail_msg("cannot read %s", path);
    free(path);
    ev_t *cur = NULL;
    int lineno = 0;
    for (char *line = r->text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        lineno++;
        if (line[0] == '#') /* our notes */
            continue;
        if (!strncmp(line, "----", 4))
            section = strstr(line, " client ")   ? 1
                      : strstr(line, " server ") ? 2
                                                 : 0;
        if (!strncmp(line, "WIRE-WRITE fd=", 14)) {
            wire_write(r, line, lineno, section);
            continue;
        }
        ev_t *e = parse_header(r, line, lineno, ours);
        if (e)
            cur = e->fin ? NULL : e;
        else if (!cur || !parse_content(cur, line))
            cur = NULL;
    }
}

static void recording_free(recording_t *r)
{
    free(r->ev);
    free(r->text);
}

/* The packet text of e as recorded (a JSON text, or diagnostic notation). */
static const char *ev_text(const ev_t *e)
{
    if (e->json)
        return e->json;
    if (e->diag)
        return e->diag;
    return e->nlines ? e->line[0] : "";
}

/* ==== CBOR: diagnostic notation, and decoding to JSON values ============= */

typedef struct diag {
    const char *s;
    bool bad;
} diag_t;

static void diag_space(diag_t *d)
{
    while (*d->s == ' ')
        d->s++;
}

static cbor_item_t *diag_value(diag_t *d);

/* Items up to `close`, separated by ',' (pairs by ':' in maps). */
static size_t diag_items(diag_t *d, char close, bool pairs, cbor_item_t **out,
                         size_t max)
{
    size_t n = 0;
    diag_space(d);
    while (!d->bad && *d->s && *d->s != close) {
        if (n + 2 > max) {
            d->bad = true;
            break;
        }
        out[n++] = diag_value(d);
        diag_space(d);
        if (pairs) {
            if (*d->s++ != ':')
                d->bad = true;
            out[n++] = diag_value(d);
            diag_space(d);
        }
        if (*d->s == ',')
            d->s++;
        diag_space(d);
    }
    if (*d->s++ != close)
        d->bad = true;
    return n;
}

static cbor_item_t *diag_container(diag_t *d, bool map)
{
    cbor_item_t *items[64];
    size_t n = diag_items(d, map ? '}' : ']', map, items, 64);
    cbor_item_t *c =
        map ? cbor_new_definite_map(n / 2) : cbor_new_definite_array(n);
    for (size_t i = 0; i < n; i += map ? 2 : 1) {
        if (!items[i] || (map && !items[i + 1])) {
            d->bad = true;
        } else if (map) {
            cbor_map_add(c,
                         (struct cbor_pair){.key = cbor_move(items[i]),
                                            .value = cbor_move(items[i + 1])});
        } else {
            cbor_array_push(c, cbor_move(items[i]));
        }
    }
    return c;
}

/* 'x' is a byte string (what Perl 2.x sends for its own strings), "x" a
 * text string; \ escapes the next character. */
static cbor_item_t *diag_string(diag_t *d)
{
    char q = *d->s++, buf[1024];
    size_t n = 0;
    while (*d->s && *d->s != q && n < sizeof buf) {
        if (*d->s == '\\' && d->s[1])
            d->s++;
        buf[n++] = *d->s++;
    }
    if (*d->s++ != q)
        d->bad = true;
    return q == '\'' ? cbor_build_bytestring((const unsigned char *)buf, n)
                     : cbor_build_stringn(buf, n);
}

/* The smallest head for an integer, as CBOR::XS writes it. */
static cbor_item_t *cbor_int(long long v)
{
    uint64_t u = v < 0 ? (uint64_t)(-1 - v) : (uint64_t)v;
    cbor_item_t *it = u < 256     ? cbor_build_uint8((uint8_t)u)
                      : u < 65536 ? cbor_build_uint16((uint16_t)u)
                      : u >> 32   ? cbor_build_uint64(u)
                                  : cbor_build_uint32((uint32_t)u);
    if (v < 0)
        cbor_mark_negint(it);
    return it;
}

static cbor_item_t *diag_value(diag_t *d)
{
    diag_space(d);
    char c = *d->s;
    if (c == '[' || c == '{') {
        d->s++;
        return diag_container(d, c == '{');
    }
    if (c == '\'' || c == '"')
        return diag_string(d);
    if (!strncmp(d->s, "null", 4)) {
        d->s += 4;
        return cbor_new_null();
    }
    char *end;
    size_t span = strspn(d->s, "-0123456789");
    if (d->s[span] == '.' || d->s[span] == 'e') {
        double x = strtod(d->s, &end);
        d->s = end;
        return cbor_build_float8(x);
    }
    long long v = strtoll(d->s, &end, 10);
    if (end == d->s) {
        d->bad = true;
        return NULL;
    }
    d->s = end;
    return cbor_int(v);
}

/* The CBOR encoding of a diagnostic text (malloc'd); fails the test if the
 * text does not parse. */
static unsigned char *diag_encode(const char *text, size_t *len)
{
    diag_t d = {text, false};
    cbor_item_t *it = diag_value(&d);
    diag_space(&d);
    if (!it || d.bad || *d.s)
        fail_msg("unparsable CBOR diagnostic text: %s", text);
    unsigned char *buf = NULL;
    size_t size;
    *len = cbor_serialize_alloc(it, &buf, &size);
    cbor_decref(&it);
    assert_true(*len > 0);
    return buf;
}

static json_t *cbor_json(const cbor_item_t *it);

static json_t *cbor_json_str(const cbor_item_t *it)
{
    bool bytes = cbor_isa_bytestring(it);
    if (bytes ? cbor_bytestring_is_definite(it) : cbor_string_is_definite(it))
        return json_stringn((const char *)(bytes ? cbor_bytestring_handle(it)
                                                 : cbor_string_handle(it)),
                            bytes ? cbor_bytestring_length(it)
                                  : cbor_string_length(it));
    return NULL; /* chunked: we never send it, nor does Perl */
}

static json_t *cbor_json_map(const cbor_item_t *it)
{
    json_t *o = json_object();
    struct cbor_pair *p = cbor_map_handle(it);
    for (size_t i = 0; o && i < cbor_map_size(it); i++) {
        json_t *k = cbor_isa_string(p[i].key) || cbor_isa_bytestring(p[i].key)
                        ? cbor_json_str(p[i].key)
                        : NULL;
        json_t *v = cbor_json(p[i].value);
        if (!k || !v || json_object_set_new(o, json_string_value(k), v) < 0) {
            json_decref(o);
            o = NULL;
        }
        json_decref(k);
    }
    return o;
}

/* A CBOR item as a JSON value, byte and text strings alike; NULL for what
 * PROTOCOL.md §6 does not allow (tags, odd keys). */
static json_t *cbor_json(const cbor_item_t *it)
{
    switch (cbor_typeof(it)) {
    case CBOR_TYPE_UINT: return json_integer((json_int_t)cbor_get_int(it));
    case CBOR_TYPE_NEGINT:
        return json_integer(-1 - (json_int_t)cbor_get_int(it));
    case CBOR_TYPE_BYTESTRING:
    case CBOR_TYPE_STRING: return cbor_json_str(it);
    case CBOR_TYPE_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; a && i < cbor_array_size(it); i++) {
            json_t *v = cbor_json(cbor_array_handle(it)[i]);
            if (!v || json_array_append_new(a, v) < 0) {
                json_decref(a);
                a = NULL;
            }
        }
        return a;
    }
    case CBOR_TYPE_MAP: return cbor_json_map(it);
    case CBOR_TYPE_FLOAT_CTRL:
        if (!cbor_float_ctrl_is_ctrl(it))
            return json_real(cbor_float_get_float(it));
        if (cbor_is_null(it))
            return json_null();
        return cbor_is_bool(it) ? json_boolean(cbor_get_bool(it)) : NULL;
    default: return NULL;
    }
}

static json_t *diag_json(const char *text)
{
    size_t len;
    unsigned char *buf = diag_encode(text, &len);
    struct cbor_load_result res;
    cbor_item_t *it = cbor_load(buf, len, &res);
    assert_non_null(it);
    json_t *v = cbor_json(it);
    cbor_decref(&it);
    free(buf);
    if (!v)
        fail_msg("CBOR diagnostic text without a JSON value: %s", text);
    return v;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

/* ==== our values and JSON ============================================== */

static aemp_val_t *json_val(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_STRING:
        return aemp_strn(json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return aemp_int(json_integer_value(j));
    case JSON_REAL: return aemp_double(json_real_value(j));
    case JSON_TRUE: return aemp_bool(1);
    case JSON_FALSE: return aemp_bool(0);
    case JSON_ARRAY: {
        aemp_val_t *a = aemp_arr_new();
        for (size_t i = 0; a && i < json_array_size(j); i++)
            a = aemp_arr_push(a, json_val(json_array_get(j, i)));
        return a;
    }
    case JSON_OBJECT: {
        aemp_val_t *m = aemp_map_new();
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) if (m) m =
            aemp_map_set(m, k, json_val(v));
        return m;
    }
    default: return aemp_null();
    }
}

static json_t *val_json(const aemp_val_t *v)
{
    const char *s;
    size_t len;
    int64_t i;
    double d;
    int b;
    switch (aemp_val_type(v)) {
    case AEMP_T_STR:
    case AEMP_T_BYTES:
        if (aemp_val_str(v, &s, &len) == 0 ||
            aemp_val_bytes(v, (const void **)&s, &len) == 0)
            return json_stringn(s, len);
        return NULL;
    case AEMP_T_INT: return aemp_val_int(v, &i), json_integer(i);
    case AEMP_T_DOUBLE: return aemp_val_double(v, &d), json_real(d);
    case AEMP_T_BOOL: return aemp_val_bool(v, &b), json_boolean(b);
    case AEMP_T_ARR: {
        json_t *a = json_array();
        for (size_t k = 0; k < aemp_val_len(v); k++)
            json_array_append_new(a, val_json(aemp_val_at(v, k)));
        return a;
    }
    case AEMP_T_MAP: {
        json_t *o = json_object();
        for (size_t k = 0; k < aemp_val_len(v); k++) {
            const aemp_val_t *x;
            assert_int_equal(aemp_map_at(v, k, &s, &x), 0);
            json_object_set_new(o, s, val_json(x));
        }
        return o;
    }
    default: return json_null();
    }
}

/* The elements of m from `from` on, as a JSON array. */
static json_t *msg_json(const aemp_msg_t *m, size_t from)
{
    json_t *a = json_array();
    for (size_t k = from; k < aemp_msg_len(m); k++)
        json_array_append_new(a, val_json(aemp_msg_at(m, k)));
    return a;
}

static json_t *json_tail(const json_t *a, size_t from)
{
    json_t *t = json_array();
    for (size_t k = from; k < json_array_size(a); k++)
        json_array_append(t, json_array_get(a, k));
    return t;
}

static char *dump(const json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    return s ? s : strdup("(none)");
}

/* ==== matching a packet of ours against what the recording expects ====== */

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool match(const json_t *want, const json_t *got);

/* "$VAR:<name>" in an expected value: a string our node chose (the name
 * of a port it spawned on the player): the first packet that matches binds
 * it, every later one must have the same.  A match that fails as a whole
 * binds nothing (vars_mark / vars_undo around it). */
static struct {
    char *name[16], *val[16];
    size_t n;
} vars;

static size_t vars_mark(void)
{
    return vars.n;
}

static void vars_undo(size_t mark)
{
    while (vars.n > mark) {
        vars.n--;
        free(vars.name[vars.n]);
        free(vars.val[vars.n]);
    }
}

static bool match_var(const char *name, const json_t *got)
{
    if (!json_is_string(got))
        return false;
    for (size_t i = 0; i < vars.n; i++)
        if (!strcmp(vars.name[i], name))
            return !strcmp(vars.val[i], json_string_value(got));
    assert_true(vars.n < 16);
    vars.name[vars.n] = strdup(name);
    vars.val[vars.n++] = strdup(json_string_value(got));
    return true;
}

/* "$SET" in an expected array: the elements after it may come in any
 * order (a node list). */
static bool match_array(const json_t *want, const json_t *got)
{
    size_t nw = json_array_size(want), ng = json_array_size(got), set = nw;
    for (size_t i = 0; i < nw; i++)
        if (json_is_string(json_array_get(want, i)) &&
            !strcmp(json_string_value(json_array_get(want, i)), "$SET"))
            set = i;
    if (!json_is_array(got) || ng != (set < nw ? nw - 1 : nw))
        return false;
    for (size_t i = 0; i < set; i++)
        if (!match(json_array_get(want, i), json_array_get(got, i)))
            return false;
    bool used[64] = {false};
    for (size_t i = set + 1; i < nw; i++) {
        size_t k = set, mark = vars_mark();
        while (k < ng && (used[k] || !match(json_array_get(want, i),
                                            json_array_get(got, k)))) {
            vars_undo(mark);
            k++;
        }
        if (k == ng || k >= 64)
            return false;
        used[k] = true;
    }
    return true;
}

/* want as the recording (adapted) or a rule has it: "$PREFIX:text" is any
 * string starting so, "$VAR:name" see above; a float beyond 1e9 is a time
 * stamp, any number within a minute of our clock.  Object keys may be
 * "$VAR:name" too (bound already: a port our node spawned). */
static bool match(const json_t *want, const json_t *got)
{
    if (json_is_string(want) && !strncmp(json_string_value(want), "$VAR:", 5))
        return match_var(json_string_value(want) + 5, got);
    if (json_is_string(want) &&
        !strncmp(json_string_value(want), "$PREFIX:", 8)) {
        const char *p = json_string_value(want) + 8;
        return json_is_string(got) &&
               !strncmp(json_string_value(got), p, strlen(p));
    }
    if (json_is_real(want) && json_real_value(want) > 1e9) {
        double t = json_is_number(got) ? json_number_value(got) : 0;
        return t > wall_now() - 60 && t < wall_now() + 60;
    }
    if (json_is_array(want))
        return match_array(want, got);
    if (json_is_object(want)) {
        const char *k;
        json_t *v;
        if (!json_is_object(got) ||
            json_object_size(want) != json_object_size(got))
            return false;
        json_object_foreach(
            (json_t *)want, k,
            v) if (!match(v, json_object_get(got, k))) return false;
        return true;
    }
    return json_equal((json_t *)want, (json_t *)got);
}

/* ==== a connection: the socket (net_harness.c's raw peer), TLS on top === */

typedef struct conn {
    raw_t *raw;
    char *in; /* plaintext received; off: consumed */
    size_t len, cap, off;
    SSL_CTX *ctx;
    SSL *ssl;
    bool tls_error, tls_eof;
} conn_t;

static void plain_append(conn_t *c, const void *p, size_t n)
{
    if (!n)
        return;
    if (c->len + n + 1 > c->cap) {
        c->cap = 2 * (c->len + n + 1) + 4096;
        c->in = realloc(c->in, c->cap);
        assert_non_null(c->in);
    }
    memcpy(c->in + c->len, p, n);
    c->len += n;
}

static void tls_flush(conn_t *c)
{
    char buf[16384];
    int n;
    while ((n = BIO_read(SSL_get_wbio(c->ssl), buf, sizeof buf)) > 0)
        raw_write(c->raw, buf, (size_t)n);
}

static void tls_pump(conn_t *c)
{
    raw_t *r = c->raw;
    if (r->len > r->off)
        BIO_write(SSL_get_rbio(c->ssl), r->in + r->off, (int)(r->len - r->off));
    r->off = r->len;
    if (!SSL_is_init_finished(c->ssl)) {
        int rc = SSL_do_handshake(c->ssl);
        int e = rc == 1 ? 0 : SSL_get_error(c->ssl, rc);
        if (e && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            c->tls_error = true;
    }
    char buf[16384];
    int n;
    while (SSL_is_init_finished(c->ssl) &&
           (n = SSL_read(c->ssl, buf, sizeof buf)) > 0)
        plain_append(c, buf, (size_t)n);
    if (SSL_is_init_finished(c->ssl) &&
        SSL_get_error(c->ssl, 0) == SSL_ERROR_ZERO_RETURN)
        c->tls_eof = true;
    tls_flush(c);
}

/* Moves what the socket got into c->in (through TLS once it is on). */
static void conn_pump(conn_t *c)
{
    if (c->ssl) {
        tls_pump(c);
        return;
    }
    raw_t *r = c->raw;
    plain_append(c, r->in + r->off, r->len - r->off);
    r->off = r->len;
}

static bool conn_eof(const conn_t *c)
{
    return c->raw->eof || c->tls_eof || c->tls_error;
}

static void conn_write(conn_t *c, const void *p, size_t n)
{
    if (!c->ssl) {
        raw_write(c->raw, p, n);
        return;
    }
    assert_int_equal(SSL_write(c->ssl, p, (int)n), (int)n);
    tls_flush(c);
}

static size_t conn_lines(conn_t *c)
{
    conn_pump(c);
    size_t k = 0;
    for (size_t i = c->off; i < c->len; i++)
        k += c->in[i] == '\n';
    return k;
}

/* The next line (malloc'd, without LF). */
static char *conn_pop_line(conn_t *c)
{
    char *lf = memchr(c->in + c->off, '\n', c->len - c->off);
    assert_non_null(lf);
    size_t n = (size_t)(lf - (c->in + c->off));
    char *line = strndup(c->in + c->off, n);
    c->off += n + 1;
    return line;
}

/* TLS on the connection, as the recorded side did it: its certificate
 * (the one the node has: PEM, key and certificate), the peer's verified
 * against it, client or server by the nonce lines (PROTOCOL.md §4). */
static void conn_tls(conn_t *c, const char *pem, bool client)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    b = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(key);
    assert_non_null(x);
    c->ctx = SSL_CTX_new(client ? TLS_client_method() : TLS_server_method());
    assert_non_null(c->ctx);
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_use_certificate(c->ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(c->ctx, key), 1);
    assert_int_equal(X509_STORE_add_cert(SSL_CTX_get_cert_store(c->ctx), x), 1);
    SSL_CTX_set_verify(c->ctx,
                       SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    X509_free(x);
    EVP_PKEY_free(key);
    c->ssl = SSL_new(c->ctx);
    SSL_set_bio(c->ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    if (client)
        SSL_set_connect_state(c->ssl);
    else
        SSL_set_accept_state(c->ssl);
    /* what came after the nonce line already is TLS */
    BIO_write(SSL_get_rbio(c->ssl), c->in + c->off, (int)(c->len - c->off));
    c->len = c->off;
}

static void conn_close(conn_t *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    if (c->raw)
        raw_close(c->raw);
    free(c->in);
    memset(c, 0, sizeof *c);
}

/* ==== what a replay is ================================================== */

enum rule_kind {
    R_SKIP,    /* a packet of the recorded side that our node does not send */
    R_INSTEAD, /* ... that it sends otherwise: `json` */
    R_SEND,    /* ... that the recorded side's program sent: ours sends it
                  (aemp_sndv), and the wire must show it */
    R_CALL,    /* ... that the recorded side sent because its program
                  called something: ours makes the call `json` says
                  ("grp_reg <group> <port name>", see program_call), and
                  the packet (as recorded, adapted) must follow */
    R_SERVICE, /* ... that a service of the recorded side sent by itself
                  where our side dialled (we_dial: the rest is what its
                  program sent): expected as recorded, nothing is sent */
    R_AFTER,   /* a packet of the player after which ours sends `json`,
                  where the recorded side sent nothing */
    R_PLAY     /* a packet of the player that it sends otherwise: `json`,
                  in the player's notation (JSON, or CBOR diagnostic) */
};

typedef struct rule {
    enum rule_kind kind;
    const char *match; /* a part of the packet's recorded text */
    const char *json;  /* R_INSTEAD, R_AFTER, R_PLAY; "$NODE": our
                          noderef; "$VAR:name" see match_var; R_CALL */
    const char *why;
} rule_t;

/* A string of the recorded side's packets that ours has otherwise, in
 * every packet of ours it is in (as a whole string, array element, map
 * value or key): `to` is "$NODE" (our noderef) or "$VAR:name" (one our
 * node chose, the same every time). */
typedef struct rename {
    const char *from, *to, *why;
} rename_t;

/* A port of the recorded side's program that the player's packets go to;
 * our node makes it before the replay: spawn `init` as `name` (on our own
 * node port, the way peers spawn) with the string argument arg. */
typedef struct app_port {
    const char *name, *init, *arg;
} app_port_t;

typedef struct replay {
    const char *file;
    const char *ours;         /* sender label of the side our node replaces */
    const char *our_id;       /* that side's recorded node ID */
    int streams[MAX_STREAMS]; /* the links to play (0-terminated) */
    int fin_stream;           /* its player leaves where the recording says */
    bool tls;                 /* 1.30-tls: built by tls_events() */
    bool we_dial;             /* our side dialled: the player listens, and what
                                 our side sent is our program's (R_SEND) */
    int dialect;              /* what our node must take the players for */
    const char *kill_req;     /* our remote kill as the first player sees it */
    const char *kill_port;    /* a port name of the first player's */
    const char *kil0;         /* a recorded Perl kil0 the first player sends
                                 for a port our node monitors */
    bool global;              /* our node runs the global service, as every
                                 initialised node does (the replay makes
                                 its node without aemp_initialise) */
    const rule_t *rules;
    const rename_t *renames;
    const app_port_t *apps;
} replay_t;

/* ==== one replay's state =============================================== */

typedef struct expect {
    json_t *v;
    int lineno; /* of the recorded packet or the rule's trigger */
} expect_t;

typedef struct strm {
    int id;
    conn_t c;
    bool open, left; /* connected; the player hung up (recorded FIN) */
    char player[128];
    char nonce[128];    /* the player's */
    int plines, olines; /* handshake lines played, checked */
    bool data;          /* past both authentication lines */
    bool waited;        /* our side sent something since the player's last
                           packet: the player's next one is a wait point */
    aemp_framing_t ours_fr, theirs_fr;
    expect_t exp[64];
    size_t nexp;
    json_t **got;
    size_t ngot, used, keepalives;
} strm_t;

typedef struct rs {
    const replay_t *rp;
    uv_loop_t loop;
    aemp_node_t *n;
    char ref[64];
    kt_rec_t log, apps, nodes, mons;
    aemp_mon_t *nodes_guard;
    recording_t rec;
    strm_t s[MAX_STREAMS];
    size_t ns;
    int hits[32];  /* per rule */
    int rhits[16]; /* per rename */
    char *unknown[64];
    size_t nunknown;
    char *pem;              /* TLS */
    bool player_tls_client; /* as recorded */
    int lfd;                /* the player's listening socket (we_dial) */
    char laddr[64];         /* its address */
} rs_t;

static void dump_node_log(const rs_t *rs)
{
    for (size_t i = 0; i < rs->log.n; i++) {
        const char *text = "?";
        aemp_msg_unpack(rs->log.ev[i].msg, "-s", &text);
        fprintf(stderr, "  [our node] %s\n", text);
    }
}

#define replay_fail(rs, ...)                                                   \
    do {                                                                       \
        dump_node_log(rs);                                                     \
        fail_msg(__VA_ARGS__);                                                 \
    } while (0)

/* What the string s of a recorded packet of the side we replace is in
 * ours (malloc'd), NULL if the same: a rename's, or — naming that side by
 * its recorded ID, alone or as a port's node — our node instead.  At the
 * top (v[0], the destination) it is the player's own port name: renamed
 * only. */
static char *adapt_str(rs_t *rs, const char *s, bool top)
{
    const rename_t *r = rs->rp->renames;
    for (size_t i = 0; r && r[i].from; i++)
        if (!strcmp(s, r[i].from)) {
            rs->rhits[i]++;
            return strdup(strcmp(r[i].to, "$NODE") ? r[i].to : rs->ref);
        }
    const char *id = rs->rp->our_id;
    size_t idlen = strlen(id);
    if (top || !(!strcmp(s, id) || (!strncmp(s, id, idlen) && s[idlen] == '#')))
        return NULL;
    char *t = malloc(strlen(rs->ref) + strlen(s) + 1);
    sprintf(t, "%s%s", rs->ref, s + idlen);
    return t;
}

/* The strings of v (a recorded packet of the side we replace, or a part of
 * it), keys of maps included, adapted. */
static json_t *adapt(rs_t *rs, json_t *v, bool top)
{
    if (json_is_string(v)) {
        char *t = adapt_str(rs, json_string_value(v), top);
        if (t)
            json_string_set(v, t);
        free(t);
    }
    for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++)
        adapt(rs, json_array_get(v, i), top && i == 0);
    if (json_is_object(v)) {
        json_t *o = json_object(), *x;
        const char *k;
        json_object_foreach(v, k, x)
        {
            char *t = adapt_str(rs, k, false);
            json_object_set(o, t ? t : k, adapt(rs, x, false));
            free(t);
        }
        json_object_clear(v);
        json_object_update(v, o);
        json_decref(o);
    }
    return v;
}

/* A recorded packet as a JSON value. */
static json_t *ev_value(const ev_t *e)
{
    if (e->diag)
        return diag_json(e->diag);
    json_error_t err;
    json_t *v = json_loads(ev_text(e), 0, &err);
    if (!v)
        fail_msg("line %d: unparsable recorded JSON %s: %s", e->lineno,
                 ev_text(e), err.text);
    return v;
}

/* text with $NODE replaced by our noderef, into buf. */
static void subst_node(const rs_t *rs, const char *text, char *buf, size_t size)
{
    size_t n = 0;
    for (const char *p = text; *p && n + 64 < size;) {
        if (!strncmp(p, "$NODE", 5)) {
            n += (size_t)snprintf(buf + n, size - n, "%s", rs->ref);
            p += 5;
        } else {
            buf[n++] = *p++;
        }
    }
    buf[n] = 0;
}

/* A rule's JSON with $NODE replaced by our noderef. */
static json_t *rule_value(const rs_t *rs, const char *text)
{
    char buf[2048];
    subst_node(rs, text, buf, sizeof buf);
    json_error_t err;
    json_t *v = json_loads(buf, 0, &err);
    if (!v)
        fail_msg("unparsable rule JSON %s: %s", buf, err.text);
    return v;
}

/* The rule for e, counted as applied (every rule must apply somewhere).
 * A match "[sN] text" applies on stream N only. */
static const rule_t *rule_for(rs_t *rs, const ev_t *e)
{
    const rule_t *r = rs->rp->rules;
    for (size_t i = 0; r && r[i].match; i++) {
        bool theirs = r[i].kind == R_AFTER || r[i].kind == R_PLAY;
        bool kind_ok = e->ours ? !theirs : theirs;
        const char *text = r[i].match;
        int stream, used = 0;
        if (sscanf(text, "[s%d] %n", &stream, &used) == 1 && used) {
            kind_ok = kind_ok && stream == e->stream;
            text += used;
        }
        if (kind_ok && strstr(ev_text(e), text)) {
            rs->hits[i]++;
            return &r[i];
        }
    }
    return NULL;
}

static void expect_add(strm_t *s, json_t *v, int lineno)
{
    assert_true(s->nexp < sizeof s->exp / sizeof *s->exp);
    s->exp[s->nexp++] = (expect_t){v, lineno};
}

/* ==== reading our node's packets ======================================= */

/* 1 and *v with the next JSON text of [p, p+avail), 0 if incomplete. */
static int next_json(const rs_t *rs, const char *p, size_t avail, json_t **v,
                     size_t *used)
{
    size_t ws = 0;
    while (ws < avail && strchr(" \t\r\n", p[ws]))
        ws++;
    if (ws == avail)
        return 0;
    if (p[ws] != '[')
        replay_fail(rs,
                    "our node sent a JSON packet not starting with '[': "
                    "%.40s",
                    p + ws);
    json_error_t err;
    *v = json_loadb(p + ws, avail - ws, JSON_DISABLE_EOF_CHECK, &err);
    if (!*v && json_error_code(&err) == json_error_premature_end_of_input)
        return 0;
    if (!*v)
        replay_fail(rs, "our node sent malformed JSON: %s (%.60s)", err.text,
                    p + ws);
    *used = ws + err.position;
    return 1;
}

static int next_cbor(const rs_t *rs, const char *p, size_t avail, json_t **v,
                     size_t *used)
{
    unsigned char head = (unsigned char)p[0];
    if (head < 0x80 || head > 0x9f) /* every packet is an array */
        replay_fail(rs,
                    "our node sent a CBOR packet that is no array "
                    "(first byte 0x%02x)",
                    head);
    struct cbor_load_result res;
    cbor_item_t *it = cbor_load((cbor_data)p, avail, &res);
    if (!it && res.error.code == CBOR_ERR_NOTENOUGHDATA)
        return 0;
    if (!it)
        replay_fail(rs, "our node sent malformed CBOR (error %d at %zu)",
                    (int)res.error.code, res.error.position);
    *v = cbor_json(it);
    cbor_decref(&it);
    if (!*v)
        replay_fail(rs, "our node sent CBOR with no JSON equivalent");
    *used = res.read;
    return 1;
}

/* Decodes what our node sent on s since the last call. */
static void strm_read(rs_t *rs, strm_t *s)
{
    conn_pump(&s->c);
    conn_t *c = &s->c;
    while (s->data && c->off < c->len) {
        json_t *v = NULL;
        size_t used = 0;
        int rc =
            s->ours_fr == AEMP_JSON
                ? next_json(rs, c->in + c->off, c->len - c->off, &v, &used)
                : next_cbor(rs, c->in + c->off, c->len - c->off, &v, &used);
        if (!rc)
            break;
        c->off += used;
        if (json_array_size(v) == 0) { /* [] is a keepalive, any time */
            s->keepalives++;
            json_decref(v);
            continue;
        }
        s->got = realloc(s->got, (s->ngot + 1) * sizeof *s->got);
        assert_non_null(s->got);
        s->got[s->ngot++] = v;
    }
}

typedef struct wait_cond {
    rs_t *rs;
    strm_t *s;
    size_t want; /* packets, or lines if lines */
    bool lines;
} wait_cond_t;

static int enough(void *arg)
{
    wait_cond_t *w = arg;
    if (w->lines)
        return conn_lines(&w->s->c) >= w->want || conn_eof(&w->s->c);
    strm_read(w->rs, w->s);
    return w->s->ngot - w->s->used >= w->want || conn_eof(&w->s->c);
}

static void print_pending(const strm_t *s)
{
    for (size_t i = 0; i < s->nexp; i++) {
        char *t = dump(s->exp[i].v);
        fprintf(stderr, "  still expected (recording line %d): %s\n",
                s->exp[i].lineno, t);
        free(t);
    }
}

/* A kil0 of ours says our port is dead: it must be. */
static void check_kil0(rs_t *rs, const json_t *got)
{
    const char *req = json_string_value(json_array_get(got, 1));
    const char *name = json_string_value(json_array_get(got, 2));
    if (!req || strcmp(req, "kil0") || !name ||
        json_string_length(json_array_get(got, 0)))
        return;
    char id[256];
    snprintf(id, sizeof id, "%s#%s", rs->ref, name);
    if (aemp_port_exists(rs->n, id))
        replay_fail(rs, "our node told kil0 for %s, which still exists", id);
}

/* A wait point: everything expected on s must come, in any order, and
 * nothing else. */
static void settle(rs_t *rs, strm_t *s)
{
    if (!s->nexp)
        return;
    wait_cond_t w = {rs, s, s->nexp, false};
    nt_run_until(&rs->loop, enough, &w, WAIT_S);
    while (s->nexp) {
        if (s->used == s->ngot) {
            print_pending(s);
            replay_fail(rs,
                        "stream %d: our node sent %s (%zu packets "
                        "missing after %.0f s)",
                        s->id,
                        conn_eof(&s->c) ? "nothing more and closed the link"
                                        : "nothing more",
                        s->nexp, WAIT_S);
        }
        json_t *got = s->got[s->used++];
        size_t i = 0, mark = vars_mark();
        while (i < s->nexp && !match(s->exp[i].v, got)) {
            vars_undo(mark);
            i++;
        }
        if (i == s->nexp) {
            char *t = dump(got);
            print_pending(s);
            replay_fail(rs, "stream %d: unexpected packet from our node: %s",
                        s->id, t);
        }
        check_kil0(rs, got);
        json_decref(s->exp[i].v);
        s->exp[i] = s->exp[--s->nexp];
    }
}

/* ==== the recorded side's program: inits and handlers ================== */

static const app_port_t *app_of(const rs_t *rs, const char *self)
{
    const char *name = strchr(self, '#') + 1;
    for (const app_port_t *a = rs->rp->apps; a && a->name; a++)
        if (!strcmp(a->name, name))
            return a;
    return NULL;
}

/* The harness's echo_srv: tells the spawner it exists, answers pings,
 * dies on request (by kil, or by an error: Perl's die). */
static int echo_rcv(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    aemp_node_t *n = aemp_ctx_node(ctx);
    const char *tag = "", *to;
    aemp_val_str(aemp_msg_at(m, 0), &tag, NULL);
    if (!strcmp(tag, "ping") &&
        aemp_val_str(aemp_msg_at(m, 1), &to, NULL) == 0) {
        json_t *rest = msg_json(m, 2);
        aemp_val_t *reply = aemp_arr(aemp_str("pong"));
        for (size_t i = 0; i < json_array_size(rest); i++)
            reply = aemp_arr_push(reply, json_val(json_array_get(rest, i)));
        json_decref(rest);
        return aemp_sndv(n, to, &reply);
    }
    if (!strcmp(tag, "die_please")) {
        json_t *rest = msg_json(m, 1);
        aemp_val_t *why = json_val(rest);
        json_decref(rest);
        return aemp_kilv(n, aemp_self(ctx), &why);
    }
    if (!strcmp(tag, "die_perl"))
        return aemp_die(ctx, "echo port died on request");
    return 0;
}

/* The harness's cal_srv: ["add", a, b, reply] -> reply ["sum", a+b]. */
static int cal_rcv(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    int64_t a, b;
    const char *to;
    if (aemp_msg_unpack(m, "-IIs", &a, &b, &to) < 0)
        return 0;
    return aemp_snd(aemp_ctx_node(ctx), to, "sI", "sum", a + b);
}

static int spawned_init(aemp_ctx_t *ctx, const aemp_msg_t *args,
                        aemp_rcv_fn rcv)
{
    const char *to;
    aemp_node_t *n = aemp_ctx_node(ctx);
    int rc = aemp_rcv(n, aemp_self(ctx), rcv, NULL);
    if (rc == 0 && aemp_msg_unpack(args, "s", &to) == 0)
        rc = aemp_snd(n, to, "ss", "spawned", aemp_self(ctx));
    return rc;
}

static int echo_init(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    return spawned_init(ctx, args, echo_rcv);
}

static int cal_init(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    return spawned_init(ctx, args, cal_rcv);
}

/* The recorded program's own ports (app_port_t): every message is
 * recorded; a worker answers ["ping", reply, x] with ["pong", name, x]
 * and ends on ["quit", reason...]. */
static int app_rcv(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    rs_t *rs = user;
    aemp_node_t *n = aemp_ctx_node(ctx);
    kt_rec_add(&rs->apps, "app", aemp_self(ctx), m);
    const app_port_t *app = app_of(rs, aemp_self(ctx));
    const char *tag = "", *to, *x;
    aemp_val_str(aemp_msg_at(m, 0), &tag, NULL);
    if (!app || strcmp(app->init, "AEMPHarness::worker"))
        return 0;
    if (!strcmp(tag, "ping") && aemp_msg_unpack(m, "-ss", &to, &x) == 0)
        return aemp_snd(n, to, "sss", "pong", app->arg, x);
    if (!strcmp(tag, "quit")) {
        json_t *rest = msg_json(m, 1);
        aemp_val_t *why = json_val(rest);
        json_decref(rest);
        return aemp_kilv(n, aemp_self(ctx), &why);
    }
    return 0;
}

static int app_init(aemp_ctx_t *ctx, const aemp_msg_t *args, void *user)
{
    return aemp_rcv(aemp_ctx_node(ctx), aemp_self(ctx), app_rcv, user);
}

/* The harness's node-port function AEMPHarness::hello (a call by name
 * that the program registered): reply ["hello_from", NODE, args...]. */
static int hello(aemp_ctx_t *ctx, const aemp_msg_t *m, void *user)
{
    const char *to, *x;
    aemp_node_t *n = aemp_ctx_node(ctx);
    if (aemp_msg_unpack(m, "ss", &to, &x) < 0)
        return AEMP_EPROTO;
    return aemp_snd(n, to, "sss", "hello_from", aemp_noderef(n), x);
}

static void on_node(aemp_node_t *n, const char *id, int up,
                    const aemp_msg_t *reason, void *user)
{
    rs_t *rs = user;
    kt_rec_add(&rs->nodes, up ? "up" : "down", id, reason);
}

static void on_mon(aemp_node_t *n, const char *port, const aemp_msg_t *reason,
                   void *user)
{
    kt_rec_add(&((rs_t *)user)->mons, "fired", port, reason);
}

static int app_exists(void *arg)
{
    rs_t *rs = arg;
    for (const app_port_t *a = rs->rp->apps; a && a->name; a++) {
        char id[256];
        snprintf(id, sizeof id, "%s#%s", rs->ref, a->name);
        if (!aemp_port_exists(rs->n, id))
            return 0;
    }
    return 1;
}

static void player_listen(rs_t *rs);

static void node_start(rs_t *rs)
{
    assert_int_equal(uv_loop_init(&rs->loop), 0);
    assert_int_equal(aemp_node_new(&rs->n, &rs->loop), 0);
    aemp_netconf_t c = {.secret = REPLAY_SECRET, .monitor_timeout = 10};
    if (rs->rp->tls) { /* as recorded: a certificate, no secret */
        rs->pem = nt_make_cert("aemp replay", -1, 30);
        c.secret = NULL;
        c.cert = rs->pem;
    }
    assert_int_equal(aemp_node_configure(rs->n, &c), 0);
    aemp_node_set_log(rs->n, AEMP_LOG_DEBUG, kt_log_rec, &rs->log);
    nt_listen(&rs->loop, rs->n, NULL, rs->ref, sizeof rs->ref, 20);
    assert_int_equal(aemp_mon_nodes(rs->n, on_node, rs, &rs->nodes_guard), 0);
    assert_int_equal(
        aemp_register(rs->n, "AEMPHarness::echo_srv", echo_init, rs), 0);
    assert_int_equal(aemp_register(rs->n, "AEMPHarness::cal_srv", cal_init, rs),
                     0);
    assert_int_equal(aemp_register(rs->n, "AEMPHarness::worker", app_init, rs),
                     0);
    assert_int_equal(
        aemp_register(rs->n, "AEMPHarness::collector", app_init, rs), 0);
    assert_int_equal(aemp_node_handle(rs->n, "AEMPHarness::hello", hello, rs),
                     0);
    for (const app_port_t *a = rs->rp->apps; a && a->name; a++)
        assert_int_equal(aemp_snd(rs->n, rs->ref, "ssss",
                                  "AnyEvent::MP::_spawn", a->name, a->init,
                                  a->arg ? a->arg : ""),
                         0);
    assert_true(nt_run_until(&rs->loop, app_exists, rs, WAIT_S));
    if (rs->rp->global) /* as aemp_initialise starts it: not global */
        assert_int_equal(aemp__global_start(rs->n, false), 0);
    if (rs->rp->we_dial)
        player_listen(rs);
}

/* ==== playing the recording ============================================= */

static strm_t *strm_of(rs_t *rs, int id)
{
    for (size_t i = 0; i < rs->ns; i++)
        if (rs->s[i].id == id)
            return &rs->s[i];
    assert_true(rs->ns < MAX_STREAMS);
    strm_t *s = &rs->s[rs->ns++];
    s->id = id;
    return s;
}

static bool wanted(const replay_t *rp, int stream)
{
    if (!rp->streams[0])
        return true;
    for (int i = 0; i < MAX_STREAMS && rp->streams[i]; i++)
        if (rp->streams[i] == stream)
            return true;
    return false;
}

/* The handshake lines our node is to greet with on stream s: the recorded
 * side's, from the first of its events there. */
static const ev_t *our_greeting(const rs_t *rs, int stream)
{
    for (size_t i = 0; i < rs->rec.n; i++) {
        const ev_t *e = &rs->rec.ev[i];
        if (e->stream == stream && e->ours && e->nlines == 2)
            return e;
    }
    fail_msg("no recorded greeting of our side on stream %d", stream);
    return NULL;
}

static void check_size(const ev_t *e, size_t len)
{
    if (e->nbytes && e->nbytes != len)
        fail_msg("line %d: %zu bytes, the recording says %zu", e->lineno, len,
                 e->nbytes);
}

/* The player's listening socket, for a replay in which our side dialled. */
static void player_listen(rs_t *rs)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    rs->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(rs->lfd >= 0);
    assert_int_equal(bind(rs->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(rs->lfd, 4), 0);
    assert_int_equal(getsockname(rs->lfd, (struct sockaddr *)&sa, &len), 0);
    snprintf(rs->laddr, sizeof rs->laddr, "127.0.0.1:%d", ntohs(sa.sin_port));
}

typedef struct accept_cond {
    rs_t *rs;
    int fd;
} accept_cond_t;

static int accepted(void *arg)
{
    accept_cond_t *a = arg;
    if (a->fd < 0)
        a->fd = accept(a->rs->lfd, NULL, NULL);
    return a->fd >= 0;
}

/* Our node dials the player's address (a seed, whose node ID it learns
 * from the greeting: Perl's are free text), greeting with the recorded
 * lines of the side that dialled. */
static void dial_in(rs_t *rs, strm_t *s, const ev_t *greeting)
{
    assert_int_equal(aemp__hs_test_lines(greeting->line[0], greeting->line[1]),
                     0);
    assert_int_equal(aemp_node_seed(rs->n, rs->laddr), 0);
    accept_cond_t a = {rs, -1};
    if (!nt_run_until(&rs->loop, accepted, &a, WAIT_S))
        replay_fail(rs, "our node did not dial %s", rs->laddr);
    raw_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->loop = &rs->loop;
    r->fd = a.fd;
    assert_int_equal(fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK),
                     0);
    assert_int_equal(uv_poll_init(&rs->loop, &r->poll, r->fd), 0);
    r->poll.data = r;
    assert_int_equal(uv_poll_start(&r->poll, UV_READABLE, raw_on_poll), 0);
    r->polling = true;
    s->c.raw = r;
    s->open = true;
}

static void start_tls(rs_t *rs, strm_t *s, const char *our_nonce);

/* The player's greeting (it connects first, as the recorded one did) or
 * its authentication line, sent as recorded. */
static void player_lines(rs_t *rs, strm_t *s, const ev_t *e)
{
    char buf[2 * AEMP__MAX_LINE];
    size_t len = 0;
    for (int i = 0; i < e->nlines; i++)
        len +=
            (size_t)snprintf(buf + len, sizeof buf - len, "%s\n", e->line[i]);
    check_size(e, len);
    if (s->plines++ == 0 && !s->open) {
        assert_int_equal(e->nlines, 2);
        const ev_t *g = our_greeting(rs, s->id);
        assert_int_equal(aemp__hs_test_lines(g->line[0], g->line[1]), 0);
        s->c.raw = raw_connect(&rs->loop, rs->ref);
        /* each recorded segment goes out at once, as the Perl node's did:
         * no Nagle delay makes one arrive after the node looked */
        int one = 1;
        assert_int_equal(setsockopt(s->c.raw->fd, IPPROTO_TCP, TCP_NODELAY,
                                    &one, sizeof one),
                         0);
        s->open = true;
    }
    if (s->plines == 1) {
        const char *id = e->line[0];
        for (int k = 0; k < 2; k++)
            id = strchr(id, ';') + 1;
        snprintf(s->player, sizeof s->player, "%.*s",
                 (int)(strchr(id, ';') - id), id);
        snprintf(s->nonce, sizeof s->nonce, "%s", e->line[1]);
    } else {
        const char *fr = strrchr(e->line[0], ';') + 1;
        s->theirs_fr = !strcmp(fr, "cbor") ? AEMP_CBOR : AEMP_JSON;
        if (rs->rp->tls && !s->c.ssl)
            start_tls(rs, s, our_greeting(rs, s->id)->line[1]);
        s->data = s->olines == 2;
    }
    conn_write(&s->c, buf, len);
}

static int tls_done(void *arg)
{
    conn_t *c = arg;
    conn_pump(c);
    return SSL_is_init_finished(c->ssl) || conn_eof(c);
}

/* TLS right after both nonce lines, when the recording had it; the role
 * from the nonce lines. */
static void start_tls(rs_t *rs, strm_t *s, const char *our_nonce)
{
    bool client = strcmp(s->nonce, our_nonce) < 0; /* PROTOCOL.md §4 */
    assert_int_equal(client, rs->player_tls_client);
    conn_tls(&s->c, rs->pem, client);
    nt_run_until(&rs->loop, tls_done, &s->c, WAIT_S);
    if (!SSL_is_init_finished(s->c.ssl)) {
        ERR_print_errors_fp(stderr);
        replay_fail(rs, "TLS as %s with our node failed",
                    client ? "client" : "server");
    }
    assert_int_equal(SSL_get_verify_result(s->c.ssl), X509_V_OK);
    assert_non_null(SSL_get0_peer_certificate(s->c.ssl));
    fprintf(stderr, "  stream %d: TLS (%s), the player is the %s\n", s->id,
            SSL_get_version(s->c.ssl), client ? "client" : "server");
}

/* Our node's greeting (the recorded one, from the hook) or its
 * authentication line, which must be the recorded one byte for byte. */
static void our_lines(rs_t *rs, strm_t *s, const ev_t *e)
{
    if (!s->open && rs->rp->we_dial)
        dial_in(rs, s, e);
    assert_true(s->open);
    int want = s->olines == 0 ? 2 : 1;
    if (s->olines == 1 && rs->rp->tls && !s->c.ssl)
        start_tls(rs, s, our_greeting(rs, s->id)->line[1]);
    wait_cond_t w = {rs, s, (size_t)want, true};
    nt_run_until(&rs->loop, enough, &w, WAIT_S);
    if (conn_lines(&s->c) < (size_t)want)
        replay_fail(rs, "stream %d: our node sent no %s line (%s)", s->id,
                    want == 2 ? "greeting" : "authentication",
                    conn_eof(&s->c) ? "it closed the link" : "timeout");
    size_t len = 0;
    for (int i = 0; i < want; i++) {
        char *line = conn_pop_line(&s->c);
        len += strlen(line) + 1;
        if (strcmp(line, e->line[i]))
            replay_fail(rs,
                        "stream %d, line %d: our node sent\n    %s\nthe "
                        "recorded side sent\n    %s",
                        s->id, e->lineno, line, e->line[i]);
        free(line);
    }
    check_size(e, len);
    if (s->olines++ == 1) {
        const char *fr = strrchr(e->line[0], ';') + 1;
        s->ours_fr = !strcmp(fr, "cbor") ? AEMP_CBOR : AEMP_JSON;
        s->data = s->plines == 2;
        fprintf(stderr,
                "  stream %d: our authentication line is the "
                "recorded one: %.40s...\n",
                s->id, e->line[0]);
    }
}

/* The bytes of a recorded packet: JSON as recorded; CBOR from its
 * diagnostic text, which must encode to the recorded bytes (or their
 * start, where the recording cut them). */
static unsigned char *ev_bytes(const ev_t *e, size_t *len)
{
    if (!e->diag) {
        const char *t = e->nlines ? e->line[0] : e->json;
        *len = strlen(t);
        check_size(e, *len);
        return (unsigned char *)strdup(t);
    }
    unsigned char *buf = diag_encode(e->diag, len);
    check_size(e, *len);
    size_t hexlen = e->hex ? strspn(e->hex, "0123456789abcdef") : 0;
    bool cut = e->hex && !strcmp(e->hex + hexlen, "...");
    if (!e->hex || hexlen % 2 || (!cut && hexlen != 2 * *len) ||
        hexlen > 2 * *len)
        fail_msg("line %d: recorded bytes do not fit %s", e->lineno, e->diag);
    for (size_t i = 0; i < hexlen / 2; i++)
        if (buf[i] != hexval(e->hex[2 * i]) * 16 + hexval(e->hex[2 * i + 1]))
            fail_msg("line %d: %s does not encode to the recorded bytes "
                     "(byte %zu)",
                     e->lineno, e->diag, i);
    return buf;
}

/* What our node answers itself (PROTOCOL.md §7 and what the test's
 * program registered; with the global service its g_* requests, §10); the
 * rest must be logged as unknown. */
static bool known_request(const rs_t *rs, const char *name)
{
    static const char ours[] =
        "|devnull|snd|snd_multiple|kil|kil1|can|info|time|known_nodes|"
        "up_nodes|AnyEvent::MP::_spawn|mon1|mon0|kil0|iam|AEMPHarness::hello|";
    static const char global[] =
        "|g_slave|g_set|g_upd|g_find|g_found|g_db_family|g_db_keys|"
        "g_db_values|g_reply|g_mon1|g_mon0|g_chg1|g_chg2|g_global|";
    char key[256];
    snprintf(key, sizeof key, "|%s|", name);
    return !*name || strstr(ours, key) ||
           (rs->rp->global && strstr(global, key));
}

/* Requests our node does not know must be logged (never evaluated). */
static void note_request(rs_t *rs, const json_t *v)
{
    const char *to = json_string_value(json_array_get(v, 0));
    const char *req = json_string_value(json_array_get(v, 1));
    if (!to || *to || !req || known_request(rs, req))
        return;
    for (size_t i = 0; i < rs->nunknown; i++)
        if (!strcmp(rs->unknown[i], req))
            return;
    assert_true(rs->nunknown < 64);
    rs->unknown[rs->nunknown++] = strdup(req);
}

static void player_packet(rs_t *rs, strm_t *s, const ev_t *e)
{
    if (s->waited) /* the recorded player waited for these */
        settle(rs, s);
    s->waited = false;
    size_t len;
    unsigned char *bytes = ev_bytes(e, &len);
    if ((s->theirs_fr == AEMP_CBOR) != (e->diag != NULL))
        fail_msg("line %d: not in the framing the player announced", e->lineno);
    json_t *v = ev_value(e);
    const rule_t *r = rule_for(rs, e);
    if (r && r->kind == R_PLAY) { /* the recorded bytes were checked */
        char text[2048];
        subst_node(rs, r->json, text, sizeof text);
        free(bytes);
        json_decref(v);
        if (e->diag) {
            bytes = diag_encode(text, &len);
            v = diag_json(text);
        } else {
            bytes = (unsigned char *)strdup(text);
            len = strlen(text);
            v = rule_value(rs, r->json);
        }
    }
    conn_write(&s->c, bytes, len);
    free(bytes);
    note_request(rs, v);
    json_decref(v);
    if (r && r->kind == R_AFTER)
        expect_add(s, rule_value(rs, r->json), e->lineno);
}

/* What the recorded side's program sent, our node sends (R_SEND). */
static void our_program_sends(rs_t *rs, strm_t *s, const json_t *v)
{
    char to[256];
    const char *name = json_string_value(json_array_get(v, 0));
    snprintf(to, sizeof to, "%s%s%s", s->player, *name ? "#" : "", name);
    json_t *tail = json_tail(v, 1);
    aemp_val_t *m = json_val(tail);
    json_decref(tail);
    assert_int_equal(aemp_sndv(rs->n, to, &m), 0);
}

/* What our node is to send for the recorded side's packet e (rule r). */
static json_t *expectation(rs_t *rs, const ev_t *e, const rule_t *r)
{
    if (r && r->kind == R_INSTEAD)
        return rule_value(rs, r->json);
    return adapt(rs, ev_value(e), true);
}

/* What the recorded side's program called (R_CALL), ours calls:
 * "grp_reg <group> <port name>" registers our port of that name. */
static void program_call(rs_t *rs, const char *what)
{
    char group[64], name[64], port[256];
    if (sscanf(what, "grp_reg %63s %63s", group, name) == 2) {
        snprintf(port, sizeof port, "%s#%s", rs->ref, name);
        assert_int_equal(aemp_grp_reg(rs->n, group, port, NULL), 0);
        return;
    }
    fail_msg("unknown program call %s", what);
}

static void our_packet(rs_t *rs, strm_t *s, const ev_t *e)
{
    const rule_t *r = rule_for(rs, e);
    if (!r || r->kind != R_SKIP)
        s->waited = true; /* the player's next packet comes after this */
    if (r && r->kind == R_SKIP)
        return;
    json_t *v = expectation(rs, e, r);
    if ((r && r->kind == R_SEND) || (!r && rs->rp->we_dial))
        our_program_sends(rs, s, v);
    if (r && r->kind == R_CALL) {
        settle(rs, s); /* the recorded program called after those came */
        program_call(rs, r->json);
    }
    expect_add(s, v, e->lineno);
}

/* The player hangs up (a recorded FIN of its side). */
static void player_leaves(rs_t *rs, strm_t *s)
{
    settle(rs, s);
    s->left = true;
    conn_close(&s->c);
}

static void play(rs_t *rs)
{
    for (size_t i = 0; i < rs->rec.n; i++) {
        const ev_t *e = &rs->rec.ev[i];
        if (!wanted(rs->rp, e->stream))
            continue;
        strm_t *s = strm_of(rs, e->stream);
        if (e->fin) {
            if (!e->ours && e->stream == rs->rp->fin_stream && !s->left)
                player_leaves(rs, s);
        } else if (s->left) {
            fail_msg("line %d: a packet after the player left", e->lineno);
        } else if (!s->data) {
            if (e->ours)
                our_lines(rs, s, e);
            else
                player_lines(rs, s, e);
        } else if (e->ours) {
            our_packet(rs, s, e);
        } else {
            player_packet(rs, s, e);
        }
    }
    for (size_t i = 0; i < rs->ns; i++)
        settle(rs, &rs->s[i]);
}

/* ==== after the recording =============================================== */

/* A relayed snd from the player to itself (PROTOCOL.md §7, both Perl
 * versions have it) whose answer comes after whatever our node still had
 * to send: then nothing else may have come. */
static void barrier(rs_t *rs, strm_t *s, int k)
{
    char text[512];
    if (s->theirs_fr == AEMP_CBOR) {
        snprintf(text, sizeof text,
                 "['', 'snd', '%s#replay.barrier', 'barrier', %d]", s->player,
                 k);
        size_t len;
        unsigned char *b = diag_encode(text, &len);
        conn_write(&s->c, b, len);
        free(b);
    } else {
        int len =
            snprintf(text, sizeof text,
                     "[\"\",\"snd\",\"%s#replay.barrier\",\"barrier\",%d]",
                     s->player, k);
        conn_write(&s->c, text, (size_t)len);
    }
    snprintf(text, sizeof text, "[\"replay.barrier\",\"barrier\",%d]", k);
    expect_add(s, rule_value(rs, text), 0);
    settle(rs, s);
}

static void check_logged(rs_t *rs)
{
    for (size_t i = 0; i < rs->nunknown; i++) {
        char needle[300];
        snprintf(needle, sizeof needle, "unknown request \"%s\"",
                 rs->unknown[i]);
        if (!kt_log_has(&rs->log, needle))
            replay_fail(rs, "the request \"%s\" was not logged as unknown",
                        rs->unknown[i]);
    }
}

/* The k-th message the recorded program's port id got, as JSON (NULL if
 * it got fewer). */
static json_t *app_msg(const rs_t *rs, const char *id, size_t k)
{
    for (size_t j = 0; j < rs->apps.n; j++)
        if (!strcmp(rs->apps.ev[j].port, id) && k-- == 0)
            return msg_json(rs->apps.ev[j].msg, 0);
    return NULL;
}

/* The player's packets to the recorded program's ports reached ours, in
 * order. */
static void check_apps(rs_t *rs)
{
    for (const app_port_t *a = rs->rp->apps; a && a->name; a++) {
        char id[256];
        snprintf(id, sizeof id, "%s#%s", rs->ref, a->name);
        size_t k = 0;
        for (size_t i = 0; i < rs->rec.n; i++) {
            const ev_t *e = &rs->rec.ev[i];
            if (e->ours || e->fin || !wanted(rs->rp, e->stream) ||
                (!e->json && !e->diag))
                continue;
            json_t *v = ev_value(e);
            const char *to = json_string_value(json_array_get(v, 0));
            if (to && !strcmp(to, a->name)) {
                json_t *want = json_tail(v, 1), *got = app_msg(rs, id, k++);
                if (!got || !json_equal(want, got))
                    replay_fail(rs, "line %d: %s did not get %s", e->lineno, id,
                                dump(want));
                json_decref(want);
                json_decref(got);
            }
            json_decref(v);
        }
    }
}

static bool went_down(const rs_t *rs, const char *id)
{
    for (size_t i = 0; i < rs->nodes.n; i++)
        if (!strcmp(rs->nodes.ev[i].label, "down") &&
            !strcmp(rs->nodes.ev[i].port, id))
            return true;
    return false;
}

typedef struct down_cond {
    rs_t *rs;
    const char *id;
} down_cond_t;

static int is_down(void *arg)
{
    down_cond_t *d = arg;
    return went_down(d->rs, d->id);
}

/* Every link the recording kept is up, speaking the player's dialect; a
 * player that left was seen leaving. */
static void check_links(rs_t *rs)
{
    for (size_t i = 0; i < rs->ns; i++) {
        strm_t *s = &rs->s[i];
        if (s->left) {
            down_cond_t d = {rs, s->player};
            if (!nt_run_until(&rs->loop, is_down, &d, WAIT_S))
                replay_fail(rs, "%s left, our node did not notice", s->player);
            continue;
        }
        if (conn_eof(&s->c) || went_down(rs, s->player) ||
            !aemp_node_is_up(rs->n, s->player))
            replay_fail(rs, "our node dropped the link to %s", s->player);
        aemp__peer_t *p = peer_of(rs->n, s->player);
        assert_true(p && p->link);
        if (p->dialect != rs->rp->dialect)
            replay_fail(rs, "our node takes %s for dialect %d, not %d",
                        s->player, p->dialect, rs->rp->dialect);
        assert_int_equal(p->link->hs.send_framing, s->ours_fr);
        assert_int_equal(p->link->hs.tls, rs->rp->tls);
        if (rs->rp->tls) /* our node took the other role */
            assert_int_equal(p->link->hs.tls_client, !rs->player_tls_client);
        if (s->keepalives)
            fprintf(stderr, "  stream %d: %zu keepalives\n", s->id,
                    s->keepalives);
    }
}

/* Our node kills a port of the first player's: the request is the one
 * its dialect understands. */
static void our_kill(rs_t *rs, strm_t *s)
{
    char port[256], want[512];
    snprintf(port, sizeof port, "%s#%s", s->player, rs->rp->kill_port);
    assert_int_equal(aemp_kil(rs->n, port, "ss", "replay_kill", "by aemp"), 0);
    snprintf(want, sizeof want,
             "[\"\",\"%s\",\"%s\",\"replay_kill\",\"by aemp\"]",
             rs->rp->kill_req, rs->rp->kill_port);
    expect_add(s, rule_value(rs, want), 0);
    settle(rs, s);
}

static const ev_t *find_event(const rs_t *rs, const char *text)
{
    for (size_t i = 0; i < rs->rec.n; i++)
        if (!rs->rec.ev[i].fin && (rs->rec.ev[i].json || rs->rec.ev[i].diag) &&
            strstr(ev_text(&rs->rec.ev[i]), text))
            return &rs->rec.ev[i];
    fail_msg("no recorded packet %s", text);
    return NULL;
}

/* Our node monitors a port of the first player's (mon1 on the wire); the
 * player answers with a kil0 that a Perl node recorded, unchanged: our
 * monitor fires with its reason. */
static void our_monitor(rs_t *rs, strm_t *s)
{
    const ev_t *k = find_event(rs, rs->rp->kil0);
    json_t *v = ev_value(k);
    const char *name = json_string_value(json_array_get(v, 2));
    char port[256], want[512];
    snprintf(port, sizeof port, "%s#%s", s->player, name);
    aemp_mon_t *g = NULL;
    assert_int_equal(aemp_mon_cb(rs->n, port, on_mon, rs, &g), 0);
    snprintf(want, sizeof want, "[\"\",\"mon1\",\"%s\"]", name);
    expect_add(s, rule_value(rs, want), 0);
    settle(rs, s);
    size_t len;
    unsigned char *bytes = ev_bytes(k, &len);
    conn_write(&s->c, bytes, len);
    free(bytes);
    if (!await_rec(&rs->loop, &rs->mons, "fired", 1, WAIT_S))
        replay_fail(rs, "the recorded kil0 did not fire our monitor of %s",
                    port);
    json_t *reason = msg_json(kt_rec_nth(&rs->mons, "fired", 0)->msg, 0);
    json_t *wanted_reason = json_tail(v, 3);
    if (!json_equal(reason, wanted_reason)) {
        char *a = dump(reason), *b = dump(wanted_reason);
        replay_fail(rs, "our monitor of %s fired with %s, not %s", port, a, b);
    }
    assert_string_equal(kt_rec_nth(&rs->mons, "fired", 0)->port, port);
    json_decref(reason);
    json_decref(wanted_reason);
    json_decref(v);
    aemp_mon_cancel(g);
}

static void after_recording(rs_t *rs)
{
    for (size_t i = 0; i < rs->ns; i++)
        if (!rs->s[i].left) {
            barrier(rs, &rs->s[i], 1);
            barrier(rs, &rs->s[i], 2);
        }
    const rule_t *r = rs->rp->rules;
    for (size_t i = 0; r && r[i].match; i++)
        if (!rs->hits[i])
            fail_msg("rule never applied: %s", r[i].match);
    const rename_t *rn = rs->rp->renames;
    for (size_t i = 0; rn && rn[i].from; i++)
        if (!rs->rhits[i])
            fail_msg("rename never applied: %s", rn[i].from);
    check_logged(rs);
    check_apps(rs);
    check_links(rs);
    strm_t *first = &rs->s[0];
    if (rs->rp->kill_port)
        our_kill(rs, first);
    if (rs->rp->kil0)
        our_monitor(rs, first);
    barrier(rs, first, 3);
    check_links(rs);
}

static void rs_free(rs_t *rs)
{
    assert_int_equal(aemp__hs_test_lines(NULL, NULL), 0);
    for (size_t i = 0; i < rs->ns; i++) {
        strm_t *s = &rs->s[i];
        for (size_t k = 0; k < s->ngot; k++)
            json_decref(s->got[k]);
        free(s->got);
        for (size_t k = 0; k < s->nexp; k++)
            json_decref(s->exp[k].v);
        if (s->c.raw)
            conn_close(&s->c);
    }
    for (size_t i = 0; i < rs->nunknown; i++)
        free(rs->unknown[i]);
    aemp_mon_cancel(rs->nodes_guard);
    aemp_node_free(rs->n);
    kt_rec_free(&rs->log);
    kt_rec_free(&rs->apps);
    kt_rec_free(&rs->nodes);
    kt_rec_free(&rs->mons);
    recording_free(&rs->rec);
    free(rs->pem);
    if (rs->rp->we_dial)
        close(rs->lfd);
    nt_loop_finish(&rs->loop);
}

static void tls_events(rs_t *rs);

static void replay(const replay_t *rp)
{
    rs_t *rs = calloc(1, sizeof *rs);
    assert_non_null(rs);
    rs->rp = rp;
    vars_undo(0);
    recording_load(&rs->rec, rp->file, rp->ours);
    if (rp->tls)
        tls_events(rs);
    node_start(rs);
    play(rs);
    after_recording(rs);
    size_t got = 0, sent = 0;
    for (size_t i = 0; i < rs->ns; i++)
        got += rs->s[i].ngot;
    for (size_t i = 0; i < rs->rec.n; i++)
        sent += wanted(rp, rs->rec.ev[i].stream) && !rs->rec.ev[i].ours &&
                (rs->rec.ev[i].json || rs->rec.ev[i].diag);
    fprintf(stderr,
            "  %s: %zu recorded packets played, %zu packets of our "
            "node checked\n",
            rp->file, sent, got);
    rs_free(rs);
    free(rs);
    vars_undo(0);
}

/* ==== 1.30 over TLS ===================================================== */

/* The TLS recording shows the wire only up to the encryption; what each
 * node wrote inside it is in its log ("WIRE-WRITE fd=6 <text>", \x0a for
 * LF).  The events to play: the greetings from the wire, then inside TLS
 * the authentication lines and the packets from the logs — all of the
 * player's, then all of ours (one wait point: the logs do not say how they
 * interleaved). */
static void tls_events(rs_t *rs)
{
    recording_t *r = &rs->rec;
    assert_true(r->n >= 3 && r->ev[0].nlines == 2 && r->ev[1].nlines == 2);
    /* who sent the first TLS record (the ClientHello) is the client */
    rs->player_tls_client = !r->ev[2].ours;
    r->n = 2; /* the greetings; the rest of the wire is TLS records */
    for (int pass = 0; pass < 3; pass++) /* auth lines, player's, ours */
        for (size_t i = 0; i < r->nww; i++) {
            wire_write_t *w = &r->ww[i];
            char *lf = strchr(w->text, '\n');
            if (!strncmp(w->text, "aemp;", 5)) { /* as on the wire */
                const ev_t *g = &r->ev[w->ours ? 1 : 0];
                assert_true(lf &&
                            !strncmp(w->text, g->line[0], strlen(g->line[0])));
                continue;
            }
            bool packet = w->text[0] == '[';
            if (pass == 0 ? packet : !packet || w->ours != (pass == 2))
                continue;
            ev_t *e = ev_add(r, w->lineno);
            e->ours = w->ours;
            if (lf)
                *lf = 0;
            if (packet)
                e->json = w->text;
            else
                e->line[e->nlines++] = w->text;
        }
    /* the player's authentication line comes first */
    if (r->n >= 4 && r->ev[2].ours) {
        ev_t t = r->ev[2];
        r->ev[2] = r->ev[3];
        r->ev[3] = t;
    }
}

/* ==== the replays ======================================================= */

static const rule_t rules_2x[] = {
    {R_PLAY, "[\"\",\"g_find\",\"A\"]", "[\"\",\"g_find\",\"$NODE\"]",
     "B asks its master for A's address by the ID A greeted with (the "
     "recorded greeting, which our node repeats): our node's ID is its "
     "noderef"},
    {R_CALL, "[\"\",\"g_chg2\",\"workers\",{\"A#sOCRjDEwub\":null},[]]",
     "grp_reg workers sOCRjDEwub",
     "A's program grp_regs a port of its own: B monitors workers"},
    {R_INSTEAD, "[\"sZCbBOqXjd\",\"\"]", "[\"sZCbBOqXjd\",\"1\"]",
     "can info: we answer info (1.x's) to every peer"},
    {R_SKIP, "[\"sZCbBOqXjf\",\"\",3]", NULL, "eval: never evaluated"},
    {R_SKIP, "[\"sZCbBOqXju\",\"\",42]", NULL, "eval: never evaluated"},
    {R_AFTER, "[\"\",\"info\",\"B#sZCbBOqXji\"]", "[\"sZCbBOqXji\",\"$NODE\"]",
     "info: answered (2.x has it no more)"},
    {R_AFTER, "[\"\",\"kil\",\"pwiEUsZLjGn\",\"old_style\"]",
     "[\"\",\"kil0\",\"pwiEUsZLjGn\",\"old_style\"]",
     "kil kills whatever the dialect (PROTOCOL.md §9: accept both); B "
     "monitors the port"},
    {R_SKIP, "[\"sZCbBOqXjo\",\"pong\",\"still-alive\"]", NULL,
     "the port died of the 1.x kil"},
    {R_SKIP, "[\"\",\"kil0\",\"pwiEUsZLjGn\",\"custom\",\"reason\"]", NULL,
     "the port died of the 1.x kil"},
    {0, NULL, NULL, NULL},
};

static const rename_t renames_2x[] = {
    {"127.0.0.1:45667", "$NODE", "A's address ('l): ours is our noderef"},
    {NULL, NULL, NULL},
};

static const app_port_t apps_2x[] = {
    {"sOCRjDEwub", "AEMPHarness::worker", "A-w1"},
    {NULL, NULL, NULL},
};

static void replay_2x(void **state)
{
    replay(&(replay_t){.file = "2.02-functest.txt",
                       .ours = "A[",
                       .our_id = "A",
                       .dialect = AEMP__DIALECT_PERL2,
                       .kill_req = "kil1",
                       .kill_port = "sZCbBOqXjab",
                       .kil0 = "[\"\",\"kil0\",\"pwiEUsZLjGq\",\"die\"",
                       .global = true,
                       .rules = rules_2x,
                       .renames = renames_2x,
                       .apps = apps_2x});
}

static const rule_t rules_2x_db[] = {
    {R_PLAY, "['', 'g_find', 'A']", "['', 'g_find', '$NODE']",
     "B and C ask their master for A's address by the ID A greeted with "
     "(the recorded greeting, which our node repeats): our node's ID is its "
     "noderef"},
    {R_CALL, "'g_chg2', 'workers', {'A#ygJpieZAZb': null}, []]",
     "grp_reg workers ygJpieZAZb",
     "A's program grp_regs its worker A-w1: the change reaches B, who "
     "monitors workers"},
    {R_INSTEAD, "['', 'g_reply', 'b', [",
     "[\"\",\"g_reply\",\"b\",[\"$SET\",\"$NODE#ygJpieZAZb\","
     "\"B#ysJ168wGnc\",\"B#ysJ168wGnb\"]]",
     "db_keys: the keys in hash order, Perl's and ours differ"},
    {R_INSTEAD, "['', 'g_reply', 'd', [",
     "[\"\",\"g_reply\",\"d\",[\"$SET\",null,\"cpu=4\",\"cpu=2\"]]",
     "db_values: in the keys' hash order"},
    {R_INSTEAD, "['', 'g_reply', 'g', [",
     "[\"\",\"g_reply\",\"g\",[\"$SET\",\"B#ysJ168wGnc\",\"C#zaKrzkTlSb\","
     "\"$NODE#ygJpieZAZb\"]]",
     "db_keys: the keys in hash order"},
    {0, NULL, NULL, NULL},
};

static const rename_t renames_2x_db[] = {
    {"127.0.0.1:35981", "$NODE", "A's address ('l): ours is our noderef"},
    {NULL, NULL, NULL},
};

static const app_port_t apps_2x_db_a[] = {
    {"ygJpieZAZb", "AEMPHarness::worker", "A-w1"},
    {NULL, NULL, NULL},
};

/* A, the global node of the 2.x database recording, for its slaves B (s1)
 * and C (s2): every request of theirs is a g_* one but C's ping.  Our node
 * turns global on B's g_slave, as A did, and answers as A: g_global,
 * g_found, g_chg1/g_chg2 to the monitors, g_reply to the queries, and the
 * entries of C go when C leaves. */
static void replay_2x_db_global(void **state)
{
    replay(&(replay_t){.file = "2.02-db-functest.txt",
                       .ours = "A[",
                       .our_id = "A",
                       .streams = {1, 2},
                       .fin_stream = 2,
                       .dialect = AEMP__DIALECT_PERL2,
                       .kill_req = "kil1",
                       .kill_port = "ysJ168wGnb",
                       .kil0 = "['', 'kil0', 'CaIJJ7NATNh', 'killed_by_C']",
                       .global = true,
                       .rules = rules_2x_db,
                       .renames = renames_2x_db,
                       .apps = apps_2x_db_a});
}

static const app_port_t apps_2x_db_b[] = {
    {"ysJ168wGnb", "AEMPHarness::worker", "B-w1"},
    {"ysJ168wGnc", "AEMPHarness::worker", "B-w2"},
    {NULL, NULL, NULL},
};

/* B, a slave in the 2.x database recording, as C reached it directly
 * (s3): pings, spawn, kil1, time, all CBOR with byte strings. */
static void replay_2x_db_slave(void **state)
{
    replay(&(replay_t){.file = "2.02-db-functest.txt",
                       .ours = "B[",
                       .our_id = "B",
                       .streams = {3},
                       .dialect = AEMP__DIALECT_PERL2,
                       .kill_req = "kil1",
                       .kill_port = "zaKrzkTlSc",
                       .kil0 = "['', 'kil0', 'CaIJJ7NATNh', 'killed_by_C']",
                       .global = true,
                       .apps = apps_2x_db_b});
}

static const rule_t rules_130_named[] = {
    {R_INSTEAD, "\"r_known_nodes\"",
     "[\"OEweBqTh.a\",\"r_known_nodes\",\"$SET\",\"$NODE\",\"B\",\"A\"]",
     "known_nodes: ourselves, B and A, each once (Perl's list has A twice): "
     "B's Global told us where the recorded A is, a node we are not"},
    {R_SKIP, "\"r_eval\"", NULL, "eval: never evaluated"},
    {0, NULL, NULL, NULL},
};

/* A's Global (GLOBAL-NOTES §2): ours spawns it on B under a name of ours,
 * and tells our address. */
static const rename_t renames_130_named[] = {
    {"IQzDqIJ6Wje8VGqh.a", "$VAR:gport",
     "our Global port on B: a name our node chose"},
    {"127.0.0.1:4040", "$NODE", "A's address: ours is our noderef"},
    {NULL, NULL, NULL},
};

static void replay_130_named(void **state)
{
    replay(&(replay_t){.file = "1.30-named-functest.txt",
                       .ours = "A[",
                       .our_id = "A",
                       .dialect = AEMP__DIALECT_PERL1,
                       .kill_req = "kil",
                       .kill_port = "OEweBqTh.a",
                       .kil0 = "[\"\",\"kil0\",\"0XdM0cRBTVMugUSv.e\",\"die\"",
                       .global = true,
                       .rules = rules_130_named,
                       .renames = renames_130_named});
}

static const rule_t rules_130_named_b[] = {
    {R_SERVICE, "0XdM0cRBTVMugUSv.b", NULL,
     "B's Global (its spawn on A, the traffic to its rendezvous port there): "
     "our node's own Global service sends it, not its program"},
    {0, NULL, NULL, NULL},
};

static const rename_t renames_130_named_b[] = {
    {"0XdM0cRBTVMugUSv.b", "$VAR:gport",
     "our Global port on A: a name our node chose"},
    {"127.0.0.1:4041", "$NODE", "B's address: ours is our noderef"},
    {NULL, NULL, NULL},
};

static const app_port_t apps_130_named_b[] = {
    {"OEweBqTh.a", "AEMPHarness::collector", NULL},
    {NULL, NULL, NULL},
};

/* The other way round: our node is B, dials A (the player, listening),
 * and its program sends what B's did — node-port requests, spawns, pings,
 * monitors, a kil — with B#OEweBqTh.a (ours) for the replies; A's answers
 * reach that port.  Its Global service talks to A's as B's did. */
static void replay_130_named_dialling(void **state)
{
    replay(&(replay_t){.file = "1.30-named-functest.txt",
                       .ours = "[127.0.0.1:54916]",
                       .our_id = "B",
                       .we_dial = true,
                       .dialect = AEMP__DIALECT_PERL1,
                       .kill_req = "kil",
                       .kill_port = "0XdM0cRBTVMugUSv.h",
                       .kil0 = "[\"\",\"kil0\",\"0XdM0cRBTVMugUSv.e\",\"die\"",
                       .global = true,
                       .rules = rules_130_named_b,
                       .renames = renames_130_named_b,
                       .apps = apps_130_named_b});
}

static const rule_t rules_130_anon[] = {
    {R_SKIP, "\"nodes\",{\"anon/ODkbfEp3TLx1kkKfX\":[]}", NULL,
     "A answers the anon node's seedme1 with the anon node and no address: "
     "we tell nobody of a node it could not dial (nothing, here)"},
    {R_INSTEAD, "\"r_known_nodes\"",
     "[\"OjoeHnjg.a\",\"r_known_nodes\",\"$SET\",\"$NODE\","
     "\"anon/ODkbfEp3TLx1kkKfX\",\"A\"]",
     "known_nodes: ourselves, the anon node and A, each once: the anon "
     "node's Global told us where the recorded A is, a node we are not"},
    {R_SKIP, "\"r_eval\"", NULL, "eval: never evaluated"},
    {0, NULL, NULL, NULL},
};

static const rename_t renames_130_anon[] = {
    {"Bhx1Metx2QCL3bqNpR.a", "$VAR:gport",
     "our Global port on the anon node: a name our node chose"},
    {"127.0.0.1:4040", "$NODE", "A's address: ours is our noderef"},
    {NULL, NULL, NULL},
};

/* The listener-less node: its ID anon/..., its ports anon/...#x; its
 * Global tells `addr []`. */
static void replay_130_anon(void **state)
{
    replay(&(replay_t){.file = "1.30-anon-functest.txt",
                       .ours = "A[",
                       .our_id = "A",
                       .dialect = AEMP__DIALECT_PERL1,
                       .kill_req = "kil",
                       .kill_port = "OjoeHnjg.a",
                       .kil0 = "[\"\",\"kil0\",\"ODkbfEp3TLx1kkKfX.e\",\"die\"",
                       .global = true,
                       .rules = rules_130_anon,
                       .renames = renames_130_anon});
}

static const rule_t rules_130_global_a[] = {
    {R_SKIP, "\"set\",{\"control\"", NULL,
     "A's program registered a port in group control: 1.30's groups stay "
     "apart from our database (perl130.c), ours are not told to 1.30 "
     "nodes"},
    {R_SKIP, "[\"uItx1cgJYWdDx0q0Gf.b\",\"find\",\"C\"]", NULL,
     "C went down and A asks its master B for C's address (to redial at "
     "once): we keep no 1.30 master and connect on use"},
    {R_AFTER, "[\"FYx1J6NMsHkoCLVKZ.a\",\"find\",\"C\"]",
     "[\"$VAR:gB\",\"nodes\",{\"C\":[\"127.0.0.1:36599\"]}]",
     "B asks us for C's address: we still know the address C told us (A had "
     "forgotten it)"},
    {R_AFTER, "[\"RUtdEcd7E9z5BrdJ.a\",\"setup\"]", "[\"$VAR:gC\",\"seedme1\"]",
     "we ask every 1.30 node to relay the addresses it learns (seedme1): we "
     "have no single 1.30 master (A's is B)"},
    {R_SEND, "\"work\"", NULL, "A's program sends work to the group members"},
    {R_SEND, "\"quit\"", NULL, "A's program tells B-w1 to quit"},
    {0, NULL, NULL, NULL},
};

static const rename_t renames_130_global_a[] = {
    {"uItx1cgJYWdDx0q0Gf.b", "$VAR:gB",
     "our Global port on B: a name our node chose"},
    {"uItx1cgJYWdDx0q0Gf.c", "$VAR:gC",
     "our Global port on C: a name our node chose"},
    {"127.0.0.1:40111", "$NODE", "A's address: ours is our noderef"},
    {NULL, NULL, NULL},
};

static const app_port_t apps_130_global_a[] = {
    {"OXeJzL4y.d", "AEMPHarness::collector", NULL},
    {NULL, NULL, NULL},
};

/* A, the seed of the Global recording, for B (s1) and C (s2, who leaves
 * half-way): the per-link Global handshake both ways, C learns B's address
 * from ours (nodes at link start, and as the answer to seedme1), 2-3 s
 * after each addr our node relays it to B and C; the work/done exchange
 * of the program goes through. */
static void replay_130_global(void **state)
{
    replay(&(replay_t){.file = "1.30-global-functest.txt",
                       .ours = "A[",
                       .our_id = "A",
                       .streams = {1, 2},
                       .fin_stream = 2,
                       .dialect = AEMP__DIALECT_PERL1,
                       .kill_req = "kil",
                       .kill_port = "OYWJzPTC.c",
                       .global = true,
                       .rules = rules_130_global_a,
                       .renames = renames_130_global_a,
                       .apps = apps_130_global_a});
}

static const rule_t rules_130_global_b[] = {
    {R_SKIP, "\"nodes\",{\"A\":[\"127.0.0.1:40111\"]}", NULL,
     "B knew A (its seed) when C came: our node knows no other node"},
    {R_SKIP, "\"set\",{\"workers\"", NULL,
     "B's program's group members: 1.30's groups stay apart from our "
     "database"},
    {R_SKIP, "\"reg0\"", NULL, "1.30's groups stay apart from our database"},
    {R_AFTER, "[\"RUtdEcd7E9z5BrdJ.b\",\"setup\"]",
     "[\"$VAR:gport\",\"seedme1\"]",
     "we ask every 1.30 node to relay the addresses it learns (seedme1): we "
     "have no single 1.30 master (B's is A)"},
    {R_SEND, "\"work\"", NULL, "B's program sends work to C-w1"},
    {0, NULL, NULL, NULL},
};

static const rename_t renames_130_global_b[] = {
    {"FYx1J6NMsHkoCLVKZ.d", "$VAR:gport",
     "our Global port on C: a name our node chose"},
    {"127.0.0.1:39621", "$NODE", "B's address: ours is our noderef"},
    {NULL, NULL, NULL},
};

static const app_port_t apps_130_global_b[] = {
    {"OYWJzPTC.e", "AEMPHarness::collector", NULL},
    {NULL, NULL, NULL},
};

/* B of the Global recording, dialled by C (s3): B authenticates first. */
static void replay_130_global_b(void **state)
{
    replay(&(replay_t){.file = "1.30-global-functest.txt",
                       .ours = "B[",
                       .our_id = "B",
                       .streams = {3},
                       .dialect = AEMP__DIALECT_PERL1,
                       .kill_req = "kil",
                       .kill_port = "OaOJzMmg.c",
                       .global = true,
                       .rules = rules_130_global_b,
                       .renames = renames_130_global_b,
                       .apps = apps_130_global_b});
}

static const rule_t rules_130_tls[] = {
    {R_INSTEAD, "\"r_known_nodes\"",
     "[\"PXMeigLu.a\",\"r_known_nodes\",\"$SET\",\"$NODE\",\"B\",\"A\"]",
     "known_nodes: ourselves, B and A, each once: B's Global told us where "
     "the recorded A is, a node we are not"},
    {R_SKIP, "\"r_eval\"", NULL, "eval: never evaluated"},
    {0, NULL, NULL, NULL},
};

static const rename_t renames_130_tls[] = {
    {"d9BsUQKPGnBEMXtY.a", "$VAR:gport",
     "our Global port on B: a name our node chose"},
    {"127.0.0.1:4040", "$NODE", "A's address: ours is our noderef"},
    {NULL, NULL, NULL},
};

static void replay_130_tls(void **state)
{
    replay(&(replay_t){.file = "1.30-tls-functest.txt",
                       .ours = "A[",
                       .our_id = "A",
                       .tls = true,
                       .dialect = AEMP__DIALECT_PERL1,
                       .kill_req = "kil",
                       .kill_port = "PXMeigLu.a",
                       .kil0 = "[\"\",\"kil0\",\"7paHlmA5Uax1CSf3Q.e\",\"die\"",
                       .global = true,
                       .rules = rules_130_tls,
                       .renames = renames_130_tls});
}

/* The hook itself: lines it refuses, and clearing. */
static void hook_lines(void **state)
{
    assert_int_equal(aemp__hs_test_lines("a\nb", "n"), AEMP_EINVAL);
    assert_int_equal(aemp__hs_test_lines("a", "n\r"), AEMP_EINVAL);
    assert_int_equal(aemp__hs_test_lines("", "n"), AEMP_EINVAL);
    aemp__hs_conf_t conf = {"X", NULL, "hmac_sha3_512", "hmac_sha3_512", "cbor",
                            0,   false};
    aemp__hs_t hs;
    char *out;
    size_t len;
    assert_int_equal(aemp__hs_test_lines("aemp;1;R;x;json", "bm9uY2U="), 0);
    assert_int_equal(aemp__hs_start(&hs, &conf, NULL, &out, &len), 0);
    assert_string_equal(out, "aemp;1;R;x;json\nbm9uY2U=\n");
    aemp_free(out);
    aemp__hs_free(&hs);
    assert_int_equal(aemp__hs_test_lines(NULL, "x"), 0);
    assert_int_equal(aemp__hs_start(&hs, &conf, NULL, &out, &len), 0);
    assert_true(
        !strncmp(out, "aemp;1;X;hmac_sha3_512;cbor;provider=aemp-c-", 44));
    aemp_free(out);
    aemp__hs_free(&hs);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    unsetenv("AEMP_MODULE_PATH"); /* no module for what the players spawn */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hook_lines),
        ISOLATED(replay_2x, 25),
        ISOLATED(replay_2x_db_global, 25),
        ISOLATED(replay_2x_db_slave, 25),
        ISOLATED(replay_130_named, 25),
        ISOLATED(replay_130_named_dialling, 25),
        ISOLATED(replay_130_anon, 25),
        ISOLATED(replay_130_global, 25),
        ISOLATED(replay_130_global_b, 25),
        ISOLATED(replay_130_tls, 25),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
