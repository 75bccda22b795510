/* bench_local: what one aemp node does on one thread — message delivery,
 * port churn, memory per idle port, encode/decode — beside the same
 * measurements of Erlang/OTP (bench/erlang/local.erl) when `erl` is on PATH.
 *
 *   bench_local [--runs N] [--scale X] [--only LIST] [--no-erlang]
 *               [--erlang FILE]
 *
 * LIST is a comma-separated subset of flood, shared, pingpong, churn,
 * memory, codec (or only json or cbor) and erlang; default all.  Ratios to
 * Erlang are printed for the figures both sides have.  --scale multiplies
 * every iteration count (use a small one under valgrind).  Each figure is
 * the median of --runs runs (default 5); all runs are printed on the
 * figure's line.
 *
 * Nothing here is tuned for the benchmark: messages are built by aemp_snd
 * from a picture and delivered by the node's loop, exactly as for an
 * application.  Exit status 1 if any run delivered the wrong count or
 * content. */
#include "codec.h"
#include "kernel.h" /* node internals, for the memory breakdown and checks */
#include "median.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AEMP_BENCH_ERLANG
#define AEMP_BENCH_ERLANG "bench/erlang/local.erl"
#endif

#define BATCH 1000 /* messages or ports per driver callback */
#define IDLE_PORTS 100000

static const char TEXT[] = "sixteen-byte-str";
enum { INT_VAL = 12345 };

static struct {
    int runs;
    double scale;
    const char *only;
    int erlang;
    const char *erl_file;
} opt = {5, 1.0, NULL, 1, AEMP_BENCH_ERLANG};

static int failures;

/* ---- helpers ------------------------------------------------------------- */

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }

/* A timed section, in wall-clock and in CPU time.  The figures are
 * wall-clock.  The benchmarks neither sleep nor wait for I/O, so on an idle
 * machine the two agree; when other processes share the CPUs, the rate per
 * CPU second is the better estimate of what an idle machine would do, and
 * the CPU share printed at the end tells how busy the machine was. */
typedef struct span {
    double wall, cpu;
} span_t;

/* A rate measured both ways: per wall second and per CPU second. */
typedef struct rate {
    double wall, cpu;
} rate_t;

static double wall_total, cpu_total;

static double cpu_now(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static span_t span_start(void) { return (span_t){now(), cpu_now()}; }

/* The time since start, both ways. */
static span_t span_since(const span_t *start)
{
    return (span_t){now() - start->wall, cpu_now() - start->cpu};
}

/* Same, for a whole timed run: counted into the CPU share. */
static span_t span_end(const span_t *start)
{
    span_t d = span_since(start);
    wall_total += d.wall;
    cpu_total += d.cpu;
    return d;
}

static rate_t rate_of(double ops, span_t d)
{
    return (rate_t){ops / d.wall, ops / d.cpu};
}

/* Setup calls must not fail; if one does the figures would be meaningless. */
#define CHECK(expr) check_rc((expr), #expr, __LINE__)
static void check_rc(int rc, const char *what, int line)
{
    if (rc < 0) {
        fprintf(stderr, "bench_local:%d: %s: %s\n", line, what,
                aemp_strerror(rc));
        exit(2);
    }
}

static void verify(int ok, const char *what)
{
    if (!ok) {
        printf("  FAILED: %s\n", what);
        failures++;
    }
}

static uint64_t scaled(double base)
{
    double n = base * opt.scale;
    return n < BATCH ? BATCH : (uint64_t)n;
}

static int selected(const char *section)
{
    if (!opt.only)
        return 1;
    size_t len = strlen(section);
    for (const char *p = opt.only; (p = strstr(p, section)); p += len)
        if ((p == opt.only || p[-1] == ',') && (!p[len] || p[len] == ','))
            return 1;
    return 0;
}

static aemp_node_t *node_new(void)
{
    aemp_node_t *n;
    CHECK(aemp_node_new(&n, NULL));
    return n;
}

/* ---- figures --------------------------------------------------------------- */

/* Medians by key, ours and Erlang's ("erl.<key>"), for the ratio table. */
static struct fig {
    char key[48];
    double value;
} figs[64];
static int nfigs;

static void fig_put(const char *key, double value)
{
    if (nfigs == (int)(sizeof figs / sizeof figs[0]))
        return;
    snprintf(figs[nfigs].key, sizeof figs[0].key, "%s", key);
    figs[nfigs++].value = value;
}

static double fig_get(const char *key)
{
    for (int i = 0; i < nfigs; i++)
        if (strcmp(figs[i].key, key) == 0)
            return figs[i].value;
    return NAN;
}

/* A target: at least (higher-is-better) or at most `value`. */
struct target {
    double value;
    int at_most;
    const char *text;
};

static void print_target(double med, const struct target *t)
{
    int met = t->at_most ? med <= t->value : med >= t->value;
    double off = t->at_most ? med / t->value - 1 : 1 - med / t->value;
    if (met)
        printf("  [target %s: met]", t->text);
    else
        printf("  [target %s: MISSED by %.0f%%]", t->text, 100 * off);
}

/* Prints one figure: median, every run, and the target if any. */
static void report(const char *key, const char *label, const char *unit,
                   const double *runs, const struct target *t)
{
    double med = median(runs, opt.runs);
    printf("%-44s %9.3f %-4s runs:", label, med, unit);
    for (int i = 0; i < opt.runs; i++)
        printf(" %.3f", runs[i]);
    if (t)
        print_target(med, t);
    printf("\n");
    fig_put(key, med);
}

/* A rate figure in millions per second: as report(), plus the median per
 * CPU second (key "<key>.cpu"). */
static void report_rate(const char *key, const char *label,
                        const rate_t *runs, const struct target *t)
{
    double wall[MAX_RUNS], cpu[MAX_RUNS];
    char cpu_key[48];
    for (int i = 0; i < opt.runs; i++) {
        wall[i] = runs[i].wall;
        cpu[i] = runs[i].cpu;
    }
    double med = median(wall, opt.runs), cmed = median(cpu, opt.runs);
    printf("%-44s %9.3f M/s  runs:", label, med / 1e6);
    for (int i = 0; i < opt.runs; i++)
        printf(" %.3f", wall[i] / 1e6);
    printf("  | per CPU-s %.3f", cmed / 1e6);
    if (t)
        print_target(med, t);
    printf("\n");
    fig_put(key, med);
    snprintf(cpu_key, sizeof cpu_key, "%s.cpu", key);
    fig_put(cpu_key, cmed);
}

/* ---- (a) local delivery: a driver floods a tagged sink ------------------- */

struct flood {
    aemp_node_t *node;
    const char *sink;
    const aemp_msg_t *shared; /* NULL: build each message with aemp_snd */
    uint64_t total, sent, got;
    int last_ok;
};

static int msg_ok(const aemp_msg_t *msg)
{
    int i;
    const char *s;
    return aemp_msg_unpack(msg, "is", &i, &s) == 0 && i == INT_VAL &&
           strcmp(s, TEXT) == 0;
}

/* The sink's "tag" callback (it gets the message without its tag): counts,
 * and checks the contents of the last message only, as the brief says. */
static int sink_cb(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct flood *f = user;
    (void)ctx;
    if (++f->got == f->total)
        f->last_ok = msg_ok(msg);
    return 0;
}

/* Sends the next batch, then re-arms itself with a message to its own port,
 * which queues behind the batch: the queue stays ~BATCH long, as in a
 * steady stream, instead of holding all `total` messages at once. */
static int driver_cb(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct flood *f = user;
    (void)msg;
    uint64_t n = f->total - f->sent < BATCH ? f->total - f->sent : BATCH;
    for (uint64_t i = 0; i < n; i++) {
        int rc = f->shared ? aemp_snd_msg(f->node, f->sink, f->shared)
                           : aemp_snd(f->node, f->sink, "sis", "tag",
                                      INT_VAL, TEXT);
        if (rc < 0)
            return rc;
    }
    f->sent += n;
    if (f->sent == f->total)
        return 0;
    return aemp_snd(f->node, aemp_self(ctx), "s", "more");
}

static rate_t flood_run(uint64_t total, const aemp_msg_t *shared)
{
    struct flood f = {.node = node_new(), .total = total, .shared = shared};
    const char *driver;
    /* no default callback: an untagged message would kill the sink */
    CHECK(aemp_port(f.node, NULL, NULL, &f.sink));
    CHECK(aemp_rcv_tag(f.node, f.sink, "tag", sink_cb, &f));
    CHECK(aemp_port(f.node, driver_cb, &f, &driver));
    span_t t = span_start();
    CHECK(aemp_snd(f.node, driver, "s", "go"));
    CHECK(aemp_run(f.node));
    span_t d = span_end(&t);
    verify(f.got == total, "flood: delivery count");
    verify(f.last_ok, "flood: contents of the last message");
    aemp_node_free(f.node);
    return rate_of((double)total, d);
}

/* ---- (a') ping-pong: each delivery sends the next ------------------------ */

struct pingpong {
    aemp_node_t *node;
    uint64_t total, got;
    int last_ok;
};

struct pp_end {
    struct pingpong *pp;
    const char *peer;
};

static int pong_cb(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct pp_end *e = user;
    struct pingpong *pp = e->pp;
    (void)ctx;
    if (++pp->got == pp->total) {
        pp->last_ok = msg_ok(msg);
        return 0;
    }
    return aemp_snd(pp->node, e->peer, "sis", "tag", INT_VAL, TEXT);
}

static rate_t pingpong_run(uint64_t total)
{
    struct pingpong pp = {.node = node_new(), .total = total};
    const char *a, *b;
    struct pp_end ends[2] = {{&pp, NULL}, {&pp, NULL}};
    CHECK(aemp_port(pp.node, NULL, NULL, &a));
    CHECK(aemp_port(pp.node, NULL, NULL, &b));
    ends[0].peer = b;
    ends[1].peer = a;
    CHECK(aemp_rcv_tag(pp.node, a, "tag", pong_cb, &ends[0]));
    CHECK(aemp_rcv_tag(pp.node, b, "tag", pong_cb, &ends[1]));
    span_t t = span_start();
    CHECK(aemp_snd(pp.node, a, "sis", "tag", INT_VAL, TEXT));
    CHECK(aemp_run(pp.node));
    span_t d = span_end(&t);
    verify(pp.got == total, "ping-pong: delivery count");
    verify(pp.last_ok, "ping-pong: contents of the last message");
    aemp_node_free(pp.node);
    return rate_of((double)total, d);
}

/* ---- (b) port create + kill --------------------------------------------- */

struct churn {
    aemp_node_t *node;
    uint64_t total, done;
    span_t issue; /* time inside the aemp_port/aemp_kil loops only */
};

static int idle_cb(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    (void)ctx, (void)msg, (void)user;
    return 0;
}

/* Creates and kills a batch of ports, then re-arms itself behind the
 * batch's death notices, so the loop processes those in between. */
static int churn_cb(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *user)
{
    struct churn *c = user;
    (void)msg;
    uint64_t n = c->total - c->done < BATCH ? c->total - c->done : BATCH;
    span_t t = span_start();
    for (uint64_t i = 0; i < n; i++) {
        const char *id;
        int rc = aemp_port(c->node, idle_cb, NULL, &id);
        if (rc < 0 || (rc = aemp_kil(c->node, id, NULL)) < 0)
            return rc;
    }
    span_t d = span_since(&t);
    c->issue.wall += d.wall;
    c->issue.cpu += d.cpu;
    c->done += n;
    if (c->done == c->total)
        return 0;
    return aemp_snd(c->node, aemp_self(ctx), "s", "more");
}

static void churn_run(uint64_t total, rate_t *issued, rate_t *overall)
{
    struct churn c = {.node = node_new(), .total = total};
    const char *driver;
    CHECK(aemp_port(c.node, churn_cb, &c, &driver));
    span_t t = span_start();
    CHECK(aemp_snd(c.node, driver, "s", "go"));
    CHECK(aemp_run(c.node));
    span_t d = span_end(&t);
    verify(c.done == total, "churn: ports created");
    /* every death notice processed: only the driver is left, queue empty */
    verify(c.node->nports == 1 && !c.node->head, "churn: deaths processed");
    aemp_node_free(c.node);
    *issued = rate_of((double)total, c.issue);
    *overall = rate_of((double)total, d);
}

/* ---- (c) memory per idle port -------------------------------------------- */

/* Bytes handed out by malloc: small chunks (uordblks) plus mmapped ones
 * (hblkhd) — the port table outgrows the mmap threshold. */
static double heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (double)(mi.uordblks + mi.hblkhd);
}

struct mem {
    double per_port, table, block;
};

static struct mem memory_run(void)
{
    aemp_node_t *n = node_new();
    double before = heap_in_use();
    for (int i = 0; i < IDLE_PORTS; i++) {
        const char *id;
        CHECK(aemp_port(n, idle_cb, NULL, &id));
    }
    struct mem m = {(heap_in_use() - before) / IDLE_PORTS, 0, 0};
    /* The breakdown: the slot array, and each port's own block (glibc
     * chunk = usable size + one size word). */
    m.table = (double)(n->nslots * sizeof *n->slots) / IDLE_PORTS;
    for (size_t i = 0; i < n->nslots; i++)
        if (n->slots[i])
            m.block += (double)(malloc_usable_size(n->slots[i]) + sizeof(size_t));
    m.block /= IDLE_PORTS;
    verify(n->nports == IDLE_PORTS, "memory: port count");
    aemp_node_free(n);
    return m;
}

/* ---- (d) codecs ------------------------------------------------------------ */

struct codec {
    const char *name, *section;
    aemp_framing_t framing;
    int (*encode)(aemp__buf_t *, const char *, size_t, const aemp_msg_t *);
    int (*decode)(aemp_msg_t **, const char *, size_t, const aemp_limits_t *,
                  char *, size_t);
};

static const struct codec codecs[] = {
    {"JSON", "json", AEMP_JSON, aemp__json_encode, aemp__json_decode},
    {"CBOR", "cbor", AEMP_CBOR, aemp__cbor_encode, aemp__cbor_decode},
};

/* State of one codec loop: the message, a reused buffer, one encoding. */
struct codec_state {
    const struct codec *c;
    aemp_msg_t *msg;
    aemp__buf_t buf;
    aemp_limits_t lim;
};

typedef int (*codec_op)(struct codec_state *);

static int op_encode(struct codec_state *s)
{
    s->buf.len = 0;
    return s->c->encode(&s->buf, NULL, 0, s->msg);
}

static int op_decode(struct codec_state *s)
{
    aemp_msg_t *out;
    char err[128];
    int rc = s->c->decode(&out, s->buf.data, s->buf.len, &s->lim, err,
                          sizeof err);
    if (rc == 0)
        aemp_msg_unref(out);
    return rc;
}

static int op_both(struct codec_state *s)
{
    int rc = op_encode(s);
    return rc < 0 ? rc : op_decode(s);
}

static int op_pub_encode(struct codec_state *s)
{
    char *p;
    size_t len;
    int rc = aemp_msg_encode(s->msg, s->c->framing, &p, &len);
    if (rc == 0)
        aemp_free(p);
    return rc;
}

static int op_pub_decode(struct codec_state *s)
{
    aemp_msg_t *out;
    int rc = aemp_msg_decode(&out, s->c->framing, s->buf.data, s->buf.len);
    if (rc == 0)
        aemp_msg_unref(out);
    return rc;
}

static int op_pub_both(struct codec_state *s)
{
    char *p;
    size_t len;
    aemp_msg_t *out;
    int rc = aemp_msg_encode(s->msg, s->c->framing, &p, &len);
    if (rc < 0)
        return rc;
    rc = aemp_msg_decode(&out, s->c->framing, p, len);
    aemp_free(p);
    if (rc == 0)
        aemp_msg_unref(out);
    return rc;
}

static rate_t codec_rate(codec_op op, struct codec_state *s, uint64_t iters)
{
    span_t t = span_start();
    for (uint64_t i = 0; i < iters; i++)
        CHECK(op(s));
    return rate_of((double)iters, span_end(&t));
}

/* Before timing: both paths must give back the message they were given,
 * and the buffer must hold one encoding for the decode-only loops. */
static void codec_check(struct codec_state *s)
{
    char what[64], *p;
    size_t len;
    aemp_msg_t *out;
    CHECK(op_encode(s));
    CHECK(s->c->decode(&out, s->buf.data, s->buf.len, &s->lim, NULL, 0));
    snprintf(what, sizeof what, "%s: internal round trip", s->c->name);
    verify(aemp_val_equal(aemp_msg_val(out), aemp_msg_val(s->msg)), what);
    aemp_msg_unref(out);
    CHECK(aemp_msg_encode(s->msg, s->c->framing, &p, &len));
    CHECK(aemp_msg_decode(&out, s->c->framing, p, len));
    snprintf(what, sizeof what, "%s: public round trip", s->c->name);
    verify(len == s->buf.len && memcmp(p, s->buf.data, len) == 0 &&
               aemp_val_equal(aemp_msg_val(out), aemp_msg_val(s->msg)),
           what);
    aemp_msg_unref(out);
    aemp_free(p);
}

static const struct {
    const char *key, *label;
    codec_op op;
} codec_ops[] = {
    {"encode", "encode (aemp__*_encode, reused buf)", op_encode},
    {"decode", "decode (aemp__*_decode)", op_decode},
    {"encdec", "encode+decode (internal)", op_both},
    {"pub_encode", "encode (aemp_msg_encode + aemp_free)", op_pub_encode},
    {"pub_decode", "decode (aemp_msg_decode + unref)", op_pub_decode},
    {"pub_encdec", "encode+decode (public)", op_pub_both},
};

static void codec_bench(const struct codec *c)
{
    static const struct target cbor_target = {5e6, 0, ">= 5 M/s"};
    struct codec_state s = {.c = c};
    CHECK(aemp_msg_new(&s.msg, "sis", "tag", INT_VAL, TEXT));
    aemp__limits_resolve(&s.lim);
    codec_check(&s);
    printf("%s: %zu bytes per message\n", c->name, s.buf.len);
    uint64_t iters = scaled(2e6);
    for (size_t k = 0; k < sizeof codec_ops / sizeof codec_ops[0]; k++) {
        rate_t runs[MAX_RUNS];
        char key[48], label[80];
        for (int r = 0; r < opt.runs; r++)
            runs[r] = codec_rate(codec_ops[k].op, &s, iters);
        snprintf(key, sizeof key, "%s_%s", c->name, codec_ops[k].key);
        snprintf(label, sizeof label, "  %s %s", c->name, codec_ops[k].label);
        int targeted = c->framing == AEMP_CBOR &&
                       strcmp(codec_ops[k].key, "encdec") == 0;
        report_rate(key, label, runs, targeted ? &cbor_target : NULL);
    }
    aemp__buf_free(&s.buf);
    aemp_msg_unref(s.msg);
}

/* ---- sections -------------------------------------------------------------- */

/* Not the target path: the same flood with one prebuilt message shared by
 * aemp_snd_msg (a reference count, no building), to tell the kernel's
 * share of the cost from the picture builder's. */
static void bench_shared(void)
{
    rate_t runs[MAX_RUNS];
    aemp_msg_t *m;
    CHECK(aemp_msg_new(&m, "sis", "tag", INT_VAL, TEXT));
    for (int r = 0; r < opt.runs; r++)
        runs[r] = flood_run(scaled(4e6), m);
    aemp_msg_unref(m);
    report_rate("delivery_shared", "    same, aemp_snd_msg of a prebuilt msg",
                runs, NULL);
}

static void bench_delivery(void)
{
    static const struct target t = {25e6, 0, ">= 25 M/s"};
    rate_t runs[MAX_RUNS];
    if (selected("flood")) {
        for (int r = 0; r < opt.runs; r++)
            runs[r] = flood_run(scaled(4e6), NULL);
        report_rate("delivery", "(a) local snd->callback, batches of 1000",
                    runs, &t);
    }
    if (selected("shared"))
        bench_shared();
    if (selected("pingpong")) {
        for (int r = 0; r < opt.runs; r++)
            runs[r] = pingpong_run(scaled(2e6));
        report_rate("pingpong", "(a) ping-pong, one message in flight", runs,
                    NULL);
    }
}

static void bench_churn(void)
{
    static const struct target t = {5e6, 0, ">= 5 M/s"};
    rate_t issued[MAX_RUNS], overall[MAX_RUNS];
    for (int r = 0; r < opt.runs; r++)
        churn_run(scaled(1e6), &issued[r], &overall[r]);
    report_rate("churn_issued", "(b) port create+kill, issued", issued, &t);
    report_rate("churn_total", "(b) port create+kill, incl. death processing",
                overall, &t);
}

static void bench_memory(void)
{
    static const struct target t = {128, 1, "<= 128 B"};
    double per[MAX_RUNS] = {0}, table[MAX_RUNS] = {0}, block[MAX_RUNS] = {0};
    for (int r = 0; r < opt.runs; r++) {
        struct mem m = memory_run();
        per[r] = m.per_port;
        table[r] = m.table;
        block[r] = m.block;
    }
    report("bytes_per_port", "(c) heap bytes per idle port (100,000)", "B",
           per, &t);
    report("table_per_port", "      of which port table slots", "B", table,
           NULL);
    report("block_per_port", "      of which the port's own block", "B",
           block, NULL);
}

static void bench_codecs(void)
{
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (selected("codec") || selected(codecs[i].section))
            codec_bench(&codecs[i]);
}

/* ---- Erlang ---------------------------------------------------------------- */

/* Reads "RESULT <key> <median> runs: ..." lines; echoes everything. */
static void erlang_parse(FILE *p)
{
    char line[512], key[48];
    double v;
    while (fgets(line, sizeof line, p)) {
        printf("  erl| %s", line);
        if (sscanf(line, "RESULT %40s %lf", key + 4, &v) == 2) {
            memcpy(key, "erl.", 4);
            fig_put(key, v);
        }
    }
}

/* Why the comparison cannot run, or NULL if it can. */
static const char *erlang_missing(void)
{
    if (!opt.erlang)
        return "--no-erlang";
    if (system("command -v erl >/dev/null 2>&1") != 0)
        return "no `erl` on PATH (Debian: apt-get install erlang-nox)";
    if (access(opt.erl_file, R_OK) != 0)
        return "cannot read the Erlang program (see --erlang)";
    return NULL;
}

/* Runs local.erl in a fresh VM on one scheduler; 1 if it succeeded.  The
 * module is compiled in memory, so nothing is written next to it, and a
 * failing VM writes no crash dump. */
static int erlang_run(void)
{
    const char *why = erlang_missing();
    if (why) {
        printf("\nErlang comparison skipped: %s\n", why);
        return 0;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "ERL_CRASH_DUMP_SECONDS=0 erl +S 1 -noshell -eval "
             "'{ok,M,B}=compile:file(\"%s\",[binary,report]),"
             " {module,M}=code:load_binary(M,\"local.erl\",B),"
             " M:main([%d, %g]), halt().' 2>&1",
             opt.erl_file, opt.runs, opt.scale);
    printf("\nErlang/OTP, same machine: erl +S 1 -noshell, %s\n",
           opt.erl_file);
    FILE *p = popen(cmd, "r");
    if (!p) {
        printf("Erlang comparison skipped: cannot start erl\n");
        return 0;
    }
    erlang_parse(p);
    int rc = pclose(p);
    if (rc != 0)
        printf("Erlang comparison failed: erl exited with status %d\n",
               WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
    return rc == 0;
}

/* aemp's median over Erlang's for one figure key, NAN if either is missing. */
static double ratio_of(const char *ours, const char *theirs, const char *sfx)
{
    char a[64], e[64];
    snprintf(a, sizeof a, "%s%s", ours, sfx);
    snprintf(e, sizeof e, "erl.%s%s", theirs, sfx);
    return fig_get(a) / fig_get(e);
}

/* Rates: the ratio per wall-clock second, and per CPU second (the one to
 * trust when the machine was busy). */
static void ratio(const char *label, const char *ours, const char *theirs,
                  int is_rate)
{
    double wall = ratio_of(ours, theirs, "");
    if (isnan(wall))
        return;
    printf("%-42s aemp/erlang = %6.2fx", label, wall);
    if (is_rate)
        printf("  (per CPU-s %.2fx; higher is better)\n",
               ratio_of(ours, theirs, ".cpu"));
    else
        printf("  (lower is better)\n");
}

static void ratios(void)
{
    printf("\nRatios of medians (aemp / Erlang):\n");
    ratio("local delivery, flood", "delivery", "delivery_per_s", 1);
    ratio("ping-pong", "pingpong", "pingpong_per_s", 1);
    ratio("create+kill / spawn+kill, issued", "churn_issued",
          "spawn_kill_issued_per_s", 1);
    ratio("create+kill / spawn+kill, until all gone", "churn_total",
          "spawn_kill_total_per_s", 1);
    ratio("bytes per idle port / per idle process", "bytes_per_port",
          "bytes_per_idle_process", 0);
}

/* ---- main ------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: bench_local [--runs N] [--scale X] [--only LIST]"
                    " [--no-erlang] [--erlang FILE]\n"
                    "  LIST: flood,shared,pingpong,churn,memory,codec|json|cbor,"
                    "erlang\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-erlang") == 0)
            opt.erlang = 0;
        else if (strcmp(a, "--runs") == 0 && v && ++i)
            opt.runs = atoi(v);
        else if (strcmp(a, "--scale") == 0 && v && ++i)
            opt.scale = atof(v);
        else if (strcmp(a, "--only") == 0 && v && ++i)
            opt.only = v;
        else if (strcmp(a, "--erlang") == 0 && v && ++i)
            opt.erl_file = v;
        else
            usage();
    }
    if (opt.runs < 1 || opt.runs > MAX_RUNS || !(opt.scale > 0))
        usage();
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    printf("aemp %s bench_local: median of %d runs, scale %g\n",
           aemp_version(), opt.runs, opt.scale);
    bench_delivery();
    if (selected("churn"))
        bench_churn();
    if (selected("memory"))
        bench_memory();
    bench_codecs();
    if (wall_total > 0)
        printf("CPU share of the timed sections: %.0f%%%s\n",
               100 * cpu_total / wall_total,
               cpu_total < 0.95 * wall_total
                   ? " (the machine was busy: figures are pessimistic)" : "");
    if (!selected("erlang"))
        printf("\nErlang comparison skipped: not in --only\n");
    else if (erlang_run())
        ratios();
    if (failures)
        printf("\n%d check(s) FAILED: the figures above are not valid\n",
               failures);
    return failures ? 1 : 0;
}
