/* Shared helpers for the cmocka test executables. */
#include "helpers.h"

/* ---- kernel tests (kt_*) ---------------------------------------------- */
#include "value.h" /* aemp__msg_vnew */

#include <stdlib.h>
#include <string.h>

aemp_msg_t *kt_msg_copy(const aemp_msg_t *m)
{
    aemp_val_t *v = aemp_val_copy(aemp_msg_val(m));
    aemp_msg_t *out = NULL;
    if (aemp_msg_from_val(&out, &v) < 0) {
        aemp_val_free(v);
        return NULL;
    }
    return out;
}

void kt_rec_add(kt_rec_t *r, const char *label, const char *port,
                const aemp_msg_t *msg)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->ev = realloc(r->ev, r->cap * sizeof *r->ev);
        assert_non_null(r->ev);
    }
    kt_event_t *e = &r->ev[r->n++];
    e->label = label;
    e->port = port ? strdup(port) : NULL;
    e->msg = msg ? kt_msg_copy(msg) : NULL;
    assert_true(!msg || e->msg);
}

int kt_tap_rcv(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *tap)
{
    kt_tap_t *t = tap;
    kt_rec_add(t->rec, t->label, aemp_self(ctx), msg);
    return t->ret;
}

void kt_tap_mon(aemp_node_t *n, const char *port, const aemp_msg_t *reason,
                void *tap)
{
    kt_tap_t *t = tap;
    assert_non_null(n);
    assert_non_null(reason);
    kt_rec_add(t->rec, t->label, port, reason);
}

void kt_rec_free(kt_rec_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->ev[i].port);
        aemp_msg_unref(r->ev[i].msg);
    }
    free(r->ev);
    memset(r, 0, sizeof *r);
}

static int label_match(const kt_event_t *e, const char *label)
{
    return !label || (e->label && strcmp(e->label, label) == 0);
}

size_t kt_rec_count(const kt_rec_t *r, const char *label)
{
    size_t c = 0;
    for (size_t i = 0; i < r->n; i++)
        c += label_match(&r->ev[i], label);
    return c;
}

long kt_rec_index(const kt_rec_t *r, const char *label, size_t i)
{
    for (size_t k = 0; k < r->n; k++)
        if (label_match(&r->ev[k], label) && i-- == 0)
            return (long)k;
    return -1;
}

const kt_event_t *kt_rec_nth(const kt_rec_t *r, const char *label, size_t i)
{
    long k = kt_rec_index(r, label, i);
    return k < 0 ? NULL : &r->ev[k];
}

void kt_val_print(FILE *f, const aemp_val_t *v)
{
    const char *s;
    int64_t i;
    double d;
    int b;
    switch (aemp_val_type(v)) {
    case AEMP_T_NULL: fputs("null", f); break;
    case AEMP_T_BOOL:
        aemp_val_bool(v, &b);
        fputs(b ? "true" : "false", f);
        break;
    case AEMP_T_INT:
        aemp_val_int(v, &i);
        fprintf(f, "%lld", (long long)i);
        break;
    case AEMP_T_DOUBLE:
        aemp_val_double(v, &d);
        fprintf(f, "%.17g", d);
        break;
    case AEMP_T_STR:
        aemp_val_str(v, &s, NULL);
        fprintf(f, "\"%s\"", s);
        break;
    case AEMP_T_BYTES: fprintf(f, "<%zu bytes>", aemp_val_len(v)); break;
    case AEMP_T_ARR:
        fputc('[', f);
        for (size_t k = 0; k < aemp_val_len(v); k++) {
            if (k)
                fputc(',', f);
            kt_val_print(f, aemp_val_at(v, k));
        }
        fputc(']', f);
        break;
    case AEMP_T_MAP:
        fputc('{', f);
        for (size_t k = 0; k < aemp_val_len(v); k++) {
            const char *key;
            const aemp_val_t *val;
            aemp_map_at(v, k, &key, &val);
            fprintf(f, "%s\"%s\":", k ? "," : "", key);
            kt_val_print(f, val);
        }
        fputc('}', f);
        break;
    }
}

int kt_msg_is(const aemp_msg_t *m, const char *picture, ...)
{
    aemp_msg_t *want = NULL;
    va_list ap;
    va_start(ap, picture);
    int rc = aemp__msg_vnew(&want, picture, ap);
    va_end(ap);
    assert_int_equal(rc, 0);
    int eq = m && aemp_val_equal(aemp_msg_val(m), aemp_msg_val(want));
    if (!eq) {
        fputs("message mismatch: got ", stderr);
        if (m)
            kt_val_print(stderr, aemp_msg_val(m));
        else
            fputs("(none)", stderr);
        fputs(", want ", stderr);
        kt_val_print(stderr, aemp_msg_val(want));
        fputc('\n', stderr);
    }
    aemp_msg_unref(want);
    return eq;
}

void kt_log_rec(aemp_node_t *n, int level, const char *text, void *rec)
{
    aemp_msg_t *m = NULL;
    assert_int_equal(aemp_msg_new(&m, "is", level, text), 0);
    kt_rec_add(rec, "log", aemp_noderef(n), m);
    aemp_msg_unref(m);
}

int kt_log_has(const kt_rec_t *r, const char *needle)
{
    for (size_t i = 0; i < r->n; i++) {
        const char *text;
        if (label_match(&r->ev[i], "log") &&
            aemp_msg_unpack(r->ev[i].msg, "-s", &text) == 0 &&
            strstr(text, needle))
            return 1;
    }
    return 0;
}

static size_t kt_count, kt_fail_at, kt_failed;
static int kt_sticky;
static long kt_live;

static int kt_should_fail(void)
{
    kt_count++;
    if (kt_fail_at &&
        (kt_count == kt_fail_at || (kt_sticky && kt_count > kt_fail_at))) {
        kt_failed++;
        return 1;
    }
    return 0;
}

static void *kt_malloc(size_t n)
{
    if (kt_should_fail())
        return NULL;
    void *p = malloc(n);
    kt_live += p != NULL;
    return p;
}

static void *kt_realloc(void *old, size_t n)
{
    if (kt_should_fail())
        return NULL;
    void *p = realloc(old, n);
    kt_live += p && !old;
    return p;
}

static void kt_free(void *p)
{
    kt_live -= p != NULL;
    free(p);
}

void kt_alloc_install(void)
{
    aemp_set_allocator(kt_malloc, kt_realloc, kt_free);
}

void kt_alloc_fail(size_t n, int sticky)
{
    kt_count = 0;
    kt_failed = 0;
    kt_fail_at = n;
    kt_sticky = sticky;
}

void kt_alloc_disarm(void)
{
    kt_fail_at = 0;
}

size_t kt_alloc_count(void)
{
    return kt_count;
}
size_t kt_alloc_failed(void)
{
    return kt_failed;
}
long kt_alloc_live(void)
{
    return kt_live;
}

uint64_t kt_now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* ---- allocation failure injection ------------------------------------- */

#include <stdlib.h>
#include <string.h>

/* Every block carries a header so that live blocks can be counted without
 * relying on the sanitizer (which is not in every build). */
typedef union helper_hdr {
    size_t size;
    max_align_t align;
} helper_hdr_t;

static long fail_at_n, attempts, live;
static int failed;

static int should_fail(void)
{
    attempts++;
    if (fail_at_n && attempts == fail_at_n) {
        failed = 1;
        return 1;
    }
    return 0;
}

static void *helper_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    helper_hdr_t *h = malloc(sizeof *h + size);
    if (!h)
        return NULL;
    h->size = size;
    live++;
    return h + 1;
}

static void helper_free(void *p)
{
    if (!p)
        return;
    live--;
    free((helper_hdr_t *)p - 1);
}

static void *helper_realloc(void *p, size_t size)
{
    if (!p)
        return helper_malloc(size);
    if (should_fail())
        return NULL;
    helper_hdr_t *h = realloc((helper_hdr_t *)p - 1, sizeof *h + size);
    if (!h)
        return NULL;
    h->size = size;
    return h + 1;
}

void helper_alloc_begin(long fail_at)
{
    fail_at_n = fail_at;
    attempts = live = 0;
    failed = 0;
    aemp_set_allocator(helper_malloc, helper_realloc, helper_free);
}

long helper_alloc_attempts(void)
{
    return attempts;
}
int helper_alloc_failed(void)
{
    return failed;
}

long helper_alloc_end(void)
{
    aemp_set_allocator(NULL, NULL, NULL);
    return live;
}

/* ---- network tests (nt_*) --------------------------------------------- */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static void nt_deadline_cb(uv_timer_t *t) { *(int *)t->data = 1; }
static void nt_tick_cb(uv_timer_t *t) { (void)t; }
static void nt_free_handle(uv_handle_t *h) { free(h); }

int nt_run_until_tick(uv_loop_t *loop, nt_cond_fn cond, void *arg,
                      double seconds, unsigned tick_ms)
{
    /* heap handles: they may still be closing when we return */
    uv_timer_t *deadline = calloc(1, sizeof *deadline);
    uv_timer_t *tick = tick_ms ? calloc(1, sizeof *tick) : NULL;
    int expired = 0;
    assert_non_null(deadline);
    uv_timer_init(loop, deadline);
    deadline->data = &expired;
    uv_timer_start(deadline, nt_deadline_cb, (uint64_t)(seconds * 1000.0), 0);
    if (tick) {
        uv_timer_init(loop, tick);
        uv_timer_start(tick, nt_tick_cb, tick_ms, tick_ms);
    }
    while (!cond(arg) && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)deadline, nt_free_handle);
    if (tick)
        uv_close((uv_handle_t *)tick, nt_free_handle);
    return cond(arg);
}

int nt_run_until(uv_loop_t *loop, nt_cond_fn cond, void *arg, double seconds)
{
    return nt_run_until_tick(loop, cond, arg, seconds, 0);
}

static int nt_flag_set(void *flag) { return *(const int *)flag != 0; }

int nt_run_flag(uv_loop_t *loop, const int *flag, double seconds)
{
    return nt_run_until(loop, nt_flag_set, (void *)flag, seconds);
}

static int nt_never(void *arg)
{
    (void)arg;
    return 0;
}

void nt_run_for(uv_loop_t *loop, double seconds)
{
    nt_run_until(loop, nt_never, NULL, seconds);
}

int nt_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void nt_close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        fprintf(stderr, "nt_loop_finish: handle of type %s still open\n",
                uv_handle_type_name(uv_handle_get_type(h)));
        uv_close(h, NULL);
    }
}

void nt_loop_finish(uv_loop_t *loop)
{
    /* bounded: a handle left active by mistake must fail, not hang */
    uint64_t end = uv_hrtime() + 5000000000u;
    while (uv_run(loop, UV_RUN_NOWAIT) && uv_hrtime() < end)
        ;
    int rc = uv_loop_close(loop);
    if (rc != 0) {
        uv_walk(loop, nt_close_walk, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
    }
    assert_int_equal(rc, 0);
}
