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

aemp_node_t *kt_node_new(void)
{
    aemp_node_t *n = NULL;
    assert_int_equal(aemp_node_new(&n, NULL), 0);
    assert_non_null(n);
    return n;
}

const char *kt_port(aemp_node_t *n, aemp_rcv_fn cb, void *user)
{
    const char *id = NULL;
    assert_int_equal(aemp_port(n, cb, user, &id), 0);
    assert_non_null(id);
    return id;
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

long helper_alloc_sweep(void (*run)(void))
{
    long n;
    for (n = 1;; n++) {
        helper_alloc_begin(n);
        run();
        int hit = helper_alloc_failed();
        assert_int_equal(helper_alloc_end(), 0);
        if (!hit)
            return n; /* every allocation of a full run failed once */
    }
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

/* ---- child processes (cp_*) -------------------------------------------- */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

static void cp_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

static void cp_append(char **dst, size_t *len, const char *src, size_t n)
{
    char *p = realloc(*dst, *len + n + 1);
    assert_non_null(p);
    *dst = p;
    memcpy(p + *len, src, n);
    *len += n;
    p[*len] = 0;
}

static void cp_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    cp_child_t *c = s->data;
    int is_out = s == (uv_stream_t *)&c->out;
    if (nread > 0)
        cp_append(is_out ? &c->obuf : &c->ebuf, is_out ? &c->olen : &c->elen,
                  buf->base, (size_t)nread);
    else if (nread < 0) {
        uv_read_stop(s);
        if (is_out)
            c->out_eof = 1;
        else
            c->err_eof = 1;
    }
    free(buf->base);
}

static void cp_on_exit(uv_process_t *p, int64_t status, int sig)
{
    cp_child_t *c = p->data;
    c->exited = 1;
    c->status = status;
    c->signal = sig;
    c->exited_ms = kt_now_ms();
}

cp_child_t *cp_spawn(uv_loop_t *loop, const char *file,
                     const char *const *argv)
{
    return cp_spawn_env(loop, file, argv, NULL);
}

cp_child_t *cp_spawn_env(uv_loop_t *loop, const char *file,
                         const char *const *argv, char **env)
{
    cp_child_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->loop = loop;
    c->obuf = calloc(1, 1);
    c->ebuf = calloc(1, 1);
    assert_true(c->obuf && c->ebuf);
    size_t used = 0;
    for (size_t i = 0; argv[i] && used + 2 < sizeof c->name; i++)
        used += (size_t)snprintf(c->name + used, sizeof c->name - used,
                                 "%s%s", i ? " " : "", argv[i]);
    uv_pipe_init(loop, &c->out, 0);
    uv_pipe_init(loop, &c->err, 0);
    c->out.data = c->err.data = c->proc.data = c;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
         .data.stream = (uv_stream_t *)&c->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
         .data.stream = (uv_stream_t *)&c->err},
    };
    uv_process_options_t o = {.exit_cb = cp_on_exit,
                              .file = file,
                              .args = (char **)argv,
                              .env = env,
                              .stdio = stdio,
                              .stdio_count = 3};
    int rc = uv_spawn(loop, &c->proc, &o);
    if (rc) {
        c->closing = 3;
        fail_msg("cannot start %s: %s", file, uv_strerror(rc));
    }
    c->pid = c->proc.pid;
    c->started_ms = kt_now_ms();
    uv_read_start((uv_stream_t *)&c->out, cp_on_alloc, cp_on_read);
    uv_read_start((uv_stream_t *)&c->err, cp_on_alloc, cp_on_read);
    return c;
}

int cp_done(void *child)
{
    cp_child_t *c = child;
    return c->exited && c->out_eof && c->err_eof;
}

int cp_await_exit(cp_child_t *c, double seconds)
{
    return nt_run_until(c->loop, cp_done, c, seconds);
}

void cp_expect_exit(cp_child_t *c, double seconds)
{
    if (!cp_await_exit(c, seconds)) {
        cp_kill(c, SIGKILL);
        cp_await_exit(c, 5);
        cp_dump(c);
        fail_msg("%s did not exit within %.1f s", c->name, seconds);
    }
}

void cp_expect_status(const cp_child_t *c, int status)
{
    if (c->signal || c->status != status) {
        cp_dump(c);
        fail_msg("%s: exit status %lld (signal %d), want %d", c->name,
                 (long long)c->status, c->signal, status);
    }
}

void cp_first_line(const cp_child_t *c, char *buf, size_t size)
{
    const char *nl = strchr(c->obuf, '\n');
    assert_non_null(nl);
    size_t n = (size_t)(nl - c->obuf);
    assert_true(n < size);
    memcpy(buf, c->obuf, n);
    buf[n] = 0;
}

int cp_count(const char *hay, const char *needle)
{
    int k = 0;
    size_t step = strlen(needle) ? strlen(needle) : 1;
    for (const char *p = hay; p && (p = strstr(p, needle)); p += step)
        k++;
    return k;
}

typedef struct cp_text_cond {
    cp_child_t *c;
    const char *needle;
    int count, err;
} cp_text_cond_t;

static int cp_text_has(void *arg)
{
    cp_text_cond_t *t = arg;
    return cp_count(t->err ? t->c->ebuf : t->c->obuf, t->needle) >= t->count ||
           cp_done(t->c);
}

int cp_await_stdout(cp_child_t *c, const char *needle, int count,
                    double seconds)
{
    cp_text_cond_t t = {c, needle, count, 0};
    nt_run_until(c->loop, cp_text_has, &t, seconds);
    return cp_count(c->obuf, needle) >= count;
}

int cp_await_stderr(cp_child_t *c, const char *needle, int count,
                    double seconds)
{
    cp_text_cond_t t = {c, needle, count, 1};
    nt_run_until(c->loop, cp_text_has, &t, seconds);
    return cp_count(c->ebuf, needle) >= count;
}

void cp_dump(const cp_child_t *c)
{
    fprintf(stderr,
            "--- %s (pid %d): exited %d status %lld signal %d\n"
            "--- stdout:\n%s\n--- stderr:\n%s\n---\n",
            c->name, c->pid, c->exited, (long long)c->status, c->signal,
            c->obuf, c->ebuf);
}

void cp_kill(cp_child_t *c, int signum)
{
    if (!c->exited)
        uv_process_kill(&c->proc, signum);
}

static void cp_closed(uv_handle_t *h)
{
    cp_child_t *c = h->data;
    if (--c->closing == 0) {
        free(c->obuf);
        free(c->ebuf);
        free(c);
    }
}

void cp_free(cp_child_t *c)
{
    if (!c)
        return;
    if (!c->exited) {
        uv_process_kill(&c->proc, SIGKILL);
        nt_run_until(c->loop, cp_done, c, 10);
    }
    c->closing = 3;
    uv_close((uv_handle_t *)&c->proc, cp_closed);
    uv_close((uv_handle_t *)&c->out, cp_closed);
    uv_close((uv_handle_t *)&c->err, cp_closed);
}

cp_result_t cp_run(const char *file, const char *const *argv, double seconds)
{
    uv_loop_t loop;
    cp_result_t r = {0};
    uv_loop_init(&loop);
    cp_child_t *c = cp_spawn(&loop, file, argv);
    if (!cp_await_exit(c, seconds)) {
        r.timed_out = 1;
        cp_dump(c);
    }
    r.status = (int)c->status;
    r.signal = c->signal;
    r.out = strdup(c->obuf);
    r.err = strdup(c->ebuf);
    assert_true(r.out && r.err);
    cp_free(c);
    nt_loop_finish(&loop);
    return r;
}

void cp_result_free(cp_result_t *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

char *cp_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            char *p = realloc(buf, cap);
            assert_non_null(p);
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

void cp_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0644), 0);
}

void cp_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            size_t len = strlen(path) + strlen(e->d_name) + 2;
            char *sub = malloc(len);
            assert_non_null(sub);
            snprintf(sub, len, "%s/%s", path, e->d_name);
            cp_rm_rf(sub);
            free(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* ---- a locale with ',' for a decimal point -------------------------------- */

#include <locale.h>

/* An installed one, else one built for the test with localedef (Debian's
 * locales package has the sources), found through LOCPATH. */
void kt_comma_locale(char *dir, size_t dirlen)
{
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8",
                           "fr_FR.utf8"};
    const char *set = NULL;
    *dir = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names && !set; i++)
        set = setlocale(LC_NUMERIC, names[i]);
    if (!set) {
        char cmd[256];
        snprintf(dir, dirlen, "/tmp/aemp-locale-XXXXXX");
        if (!mkdtemp(dir))
            fail_msg("mkdtemp: %s", strerror(errno));
        snprintf(cmd, sizeof cmd,
                 "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1",
                 dir);
        if (system(cmd) == 0) {
            setenv("LOCPATH", dir, 1);
            set = setlocale(LC_NUMERIC, "de_DE.UTF-8");
        }
    }
    if (!set)
        fail_msg("no locale with ',' for a decimal point, and localedef "
                 "could not make one (Debian package: locales)");
    assert_string_equal(localeconv()->decimal_point, ",");
}

void kt_comma_locale_done(const char *dir)
{
    setlocale(LC_NUMERIC, "C");
    if (*dir) {
        cp_rm_rf(dir);
        unsetenv("LOCPATH");
    }
}
