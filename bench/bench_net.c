/* bench_net: two aemp nodes in two processes on loopback (issue 3), beside
 * a raw-TCP pair, ZeroMQ and distributed Erlang moving the same message,
 * all started from this one invocation as real child processes.
 *
 *   bench_net [--runs N] [--scale X] [--only LIST] [--window BYTES]
 *             [--stall-seconds S] [--flood-seconds S] [--flood-runs N]
 *             [--flood-limit BYTES] [--flood-framings LIST]
 *             [--queue-bound BYTES] [--receiver-wrap "CMD ARGS"]
 *             [--flood-post N] [--tls plain|tls|both] [--setups N]
 *
 * LIST: comma-separated subset of aemp, raw, zmq, erlang, flood, ping,
 * setup, memory, unpaced (default: everything; "flood"/"ping"/"setup"
 * select the kind of figure, the others the contender; memory is aemp's
 * flood of a stopped receiver; unpaced is aemp's receiver under an
 * unpaced flood, issue 7, with the paced one-way figures it is compared
 * with).
 *
 * TLS (issue 9): every aemp figure is measured over plain TCP (a secret,
 * hmac_sha3_512) and over TLS (a certificate, tls_sha3_512) in the same
 * run, the two interleaved run by run, and the ratios TLS / plain are
 * printed per round and as medians (--tls plain or tls: only one kind).
 * The certificate is made at start with OpenSSL (EC P-256, self-signed,
 * as `aemp gencert`) and given to the net_aemp children in the
 * environment (AEMP_BENCH_CERT); no file is written.  "setup" is the rate
 * of authenticated link set-ups (connect, handshake, first message
 * delivered and answered, close), one after the other, --setups per run
 * (default 1000 x scale), for hmac_sha3_512, TLS, and distributed
 * Erlang's connect_node / disconnect_node where erl is installed.
 * Each figure is the median of N runs (default 5), every run printed.  The
 * one-way runs of aemp (CBOR, JSON) and ZeroMQ are interleaved, one of each
 * per round, so that the ratios of a round compare runs made under the same
 * conditions; the spread of a figure is its fastest run / its slowest.
 *
 * The unpaced flood (issue 7): net_aemp floods the receiver for
 * --flood-seconds (default 10 x scale, at least 1) without waiting for
 * anything, staying only under max_backlog (sends while aemp_backlog() <
 * --flood-limit, default 8 MiB; otherwise yields to the loop for 1 ms).
 * The receiver reports its peak RSS (VmHWM), the messages delivered to its
 * port callback while the sender was active and in all, and its CPU time;
 * --flood-runs runs (default: --runs) per framing.  The receiver's callback also
 * sends a local message to its own port every --flood-post messages
 * (default 1024; 0: it only counts), as a receiver that forwards or posts
 * work does: that is what puts arriving packets into the node's dispatch
 * queue (with nothing queued the library delivers each packet straight
 * from the read callback, and the queue never holds any).  --receiver-wrap prefixes the
 * receiver's command line (e.g. "perf record -o FILE --"; the receiver
 * ends by itself after an unpaced flood, so the wrapper sees it exit).
 *
 * Every run also prints the CPU other processes took meanwhile (/proc/stat
 * busy time minus our children's, from wait4), and hypervisor steal if
 * any: on a 2-CPU machine one busy neighbour halves a one-way figure.
 *
 * The contenders are programs next to this one (net_aemp, net_raw,
 * net_zmq) and bench/erlang/net_bench.erl; each client prints
 * "result <wall-s> <CPU-s> ..." lines which are parsed here.  Ping-pong is
 * measured twice: both processes pinned to CPU 0 (sched_setaffinity, as
 * `taskset -c 0`), and unpinned. */
#define _GNU_SOURCE
#include "median.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AEMP_BENCH_ERLANG_NET
#define AEMP_BENCH_ERLANG_NET "bench/erlang/net_bench.erl"
#endif

#define LINE 512
#define TIMEOUT_MS 180000

/* --tls: the aemp figures over plain TCP, over TLS, or both (bits). */
enum { TLS_PLAIN = 1, TLS_ONLY = 2, TLS_BOTH = 3 };

static struct {
    int runs;
    double scale;
    const char *only;
    long window;
    double stall_seconds;
    double flood_seconds; /* 0: 10 x scale */
    int flood_runs; /* 0: --runs */
    long flood_limit;
    const char *flood_framings;
    long queue_bound;
    const char *receiver_wrap;
    long flood_post;
    int tls;     /* TLS_PLAIN, TLS_ONLY or TLS_BOTH */
    long setups; /* 0: 1000 x scale */
} opt = {5, 1.0, NULL, 1 << 20, 3.0, 0, 0, 8 << 20, "cbor,json", 8 << 20,
         NULL, 1024, TLS_BOTH, 0};

/* Which kinds of link the aemp figures are measured over: bit 0 plain,
 * bit 1 TLS. */
static int kind_on(int tls)
{
    return opt.tls & (tls ? TLS_ONLY : TLS_PLAIN);
}

static char bindir[4096];
static int next_port;
static int failures;

/* ---- child processes --------------------------------------------------------- */

typedef struct child {
    pid_t pid;
    FILE *out; /* its standard output */
} child_t;

static void child_exec(char **argv, int pin, int fd)
{
    if (pin) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    dup2(fd, 1);
    execvp(argv[0], argv);
    fprintf(stderr, "bench_net: cannot run %s: %s\n", argv[0],
            strerror(errno));
    _exit(127);
}

/* Starts argv (NULL-terminated) with its stdout on a pipe; pin: CPU 0. */
static child_t spawn(char **argv, int pin)
{
    int p[2];
    child_t c = {-1, NULL};
    if (pipe(p) < 0)
        return c;
    fflush(stdout);
    c.pid = fork();
    if (c.pid == 0) {
        close(p[0]);
        child_exec(argv, pin, p[1]);
    }
    close(p[1]);
    c.out = fdopen(p[0], "r");
    return c;
}

/* What net_aemp says besides its results, kept rather than echoed: the
 * link it used ("link hmac_sha3_512", "link tls_sha3_512 over TLSv1.3")
 * and what a fresh node costs ("nodecost <s>", the set-up figure).  The
 * last of each; reset before each run. */
static char note_link[LINE], note_nodecost[LINE];

static int keep_note(const char *line)
{
    if (strncmp(line, "link ", 5) == 0)
        snprintf(note_link, sizeof note_link, "%s", line + 5);
    else if (strncmp(line, "nodecost ", 9) == 0)
        snprintf(note_nodecost, sizeof note_nodecost, "%s", line + 9);
    else
        return 0;
    return 1;
}

/* The next line the child prints that starts with `prefix` (notes are
 * kept, other lines echoed), without the prefix; NULL on EOF or after
 * timeout_ms without a line.  A NULL prefix reads up to EOF: non-NULL ("")
 * then. */
static char *child_line_t(child_t *c, const char *prefix, char *buf,
                          int timeout_ms)
{
    size_t len = prefix ? strlen(prefix) : 0;
    for (;;) {
        struct pollfd pf = {fileno(c->out), POLLIN, 0};
        if (!(c->out->_IO_read_ptr < c->out->_IO_read_end) &&
            poll(&pf, 1, timeout_ms) <= 0) {
            fprintf(stderr, "bench_net: timeout waiting for \"%s\"\n",
                    prefix ? prefix : "the end");
            return NULL;
        }
        if (!fgets(buf, LINE, c->out)) {
            *buf = 0;
            return prefix ? NULL : buf;
        }
        buf[strcspn(buf, "\n")] = 0;
        if (prefix && strncmp(buf, prefix, len) == 0)
            return buf + len;
        if (!keep_note(buf))
            printf("    | %s\n", buf);
    }
}

static char *child_line(child_t *c, const char *prefix, char *buf)
{
    return child_line_t(c, prefix, buf, TIMEOUT_MS);
}

/* CPU seconds of the children reaped so far (their own and their
 * children's), for the share of the machine other processes took. */
static double children_cpu;

static double tv_s(struct timeval t)
{
    return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

/* Ends a child this program started (by its pid) and reaps it. */
static int child_end(child_t *c, int sig)
{
    int st = 0;
    struct rusage ru;
    if (c->pid <= 0)
        return -1;
    if (sig)
        kill(c->pid, sig);
    if (wait4(c->pid, &st, 0, &ru) == c->pid)
        children_cpu += tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
    if (c->out)
        fclose(c->out);
    c->pid = -1;
    return st;
}

static char *prog(const char *name)
{
    static char buf[4][4200];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", bindir, name);
    return b;
}

/* ---- what else ran ------------------------------------------------------------ */

/* Over one run: the CPU the rest of the machine used (busy time from
 * /proc/stat minus what our children used) and the time the hypervisor
 * stole, each as a share of one CPU.  Other processes, or a pair that
 * shares one CPU, are what moves the figures from run to run. */
typedef struct lwin {
    double t, busy, steal, kids;
} lwin_t;

static void machine_cpu(double *busy, double *steal)
{
    unsigned long long v[8] = {0};
    double hz = (double)sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/stat", "r");
    if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                     &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8) {
        *busy = *steal = NAN;
    } else {
        /* user nice system idle iowait irq softirq steal */
        *busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
        *steal = (double)v[7] / hz;
    }
    if (f)
        fclose(f);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static lwin_t lwin_start(void)
{
    lwin_t w;
    machine_cpu(&w.busy, &w.steal);
    w.kids = children_cpu;
    w.t = now_s();
    return w;
}

static void lwin_end(const lwin_t *w, double *other, double *steal)
{
    double busy, st, dt = now_s() - w->t;
    machine_cpu(&busy, &st);
    *other = (busy - w->busy - (children_cpu - w->kids)) / dt;
    if (*other < 0)
        *other = 0; /* /proc/stat counts in ticks */
    *steal = (st - w->steal) / dt;
}

/* ---- figures ------------------------------------------------------------------ */

static struct fig {
    char key[48];
    double value;
} figs[256];
static int nfigs;

static double fig(const char *key)
{
    for (int i = 0; i < nfigs; i++)
        if (strcmp(figs[i].key, key) == 0)
            return figs[i].value;
    return NAN;
}

static void record(const char *key, double value)
{
    if (nfigs < (int)(sizeof figs / sizeof figs[0])) {
        snprintf(figs[nfigs].key, sizeof figs[0].key, "%s", key);
        figs[nfigs++].value = value;
    }
}

/* One scenario's runs: wall seconds and CPU seconds of the client (and of
 * the receiver where it reports them). */
typedef struct runs {
    int n;
    double wall[MAX_RUNS], cpu[MAX_RUNS], rcpu[MAX_RUNS];
    double other[MAX_RUNS], steal[MAX_RUNS]; /* lwin_end */
} runs_t;

static void add_result(runs_t *r, const char *text)
{
    double w = NAN, c = NAN, rc = NAN;
    if (r->n >= MAX_RUNS || sscanf(text, "%lf %lf %lf", &w, &c, &rc) < 2) {
        failures++;
        return;
    }
    r->wall[r->n] = w;
    r->cpu[r->n] = c;
    r->other[r->n] = r->steal[r->n] = NAN;
    r->rcpu[r->n++] = rc;
}

/* What report() prints: a rate in M messages/s (count per run), a round
 * trip in microseconds (count trips per run), or a rate per second (count
 * link set-ups per run). */
enum { RATE_M = 0, LATENCY_US = 1, RATE_1 = 2 };

/* Prints and records a figure of the kind `unit` (above). */
static void report(const char *key, const char *label, const runs_t *r,
                   double count, int unit)
{
    double v[MAX_RUNS], cpu[MAX_RUNS], rcpu[MAX_RUNS];
    int latency = unit == LATENCY_US;
    double per_unit = unit == RATE_1 ? 1 : 1e6;
    for (int i = 0; i < r->n; i++) {
        v[i] = latency ? r->wall[i] / count * 1e6
                       : count / r->wall[i] / per_unit;
        cpu[i] = r->cpu[i] / r->wall[i];
        rcpu[i] = r->rcpu[i] / r->wall[i];
    }
    double med = median(v, r->n), lo = INFINITY, hi = 0;
    for (int i = 0; i < r->n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    double spread = r->n ? hi / lo : NAN;
    printf("%-40s %9.3f %s  runs:", label, med,
           latency ? "us " : unit == RATE_1 ? "/s " : "M/s");
    for (int i = 0; i < r->n; i++)
        printf(" %.3f", v[i]);
    printf("  spread %.2f", spread);
    printf("  | client CPU %.0f%%", 100 * median(cpu, r->n));
    if (r->n && !isnan(r->rcpu[0])) {
        /* the receiver's rate per CPU second it used: what the flood would
         * reach with a whole CPU for the receiver */
        double per[MAX_RUNS];
        for (int i = 0; i < r->n; i++)
            per[i] = count / r->rcpu[i] / per_unit;
        printf(", receiver CPU %.0f%% (%.*f %sper receiver CPU-s)",
               100 * median(rcpu, r->n), unit == RATE_1 ? 0 : 2,
               median(per, r->n), unit == RATE_1 ? "" : "M ");
        char k[48];
        snprintf(k, sizeof k, "%s.percpu", key);
        record(k, median(per, r->n));
    }
    /* run by run: a pair that shares one CPU shows as ~50% + ~50% with
     * nothing else running; other processes show as "other" */
    int has_r = r->n && !isnan(r->rcpu[0]), stolen = 0;
    printf("\n%-40s CPU per run, client/%sother processes:", "",
           has_r ? "receiver/" : "");
    for (int i = 0; i < r->n; i++) {
        printf(" %.0f/", 100 * cpu[i]);
        if (has_r)
            printf("%.0f/", 100 * rcpu[i]);
        if (isnan(r->other[i]))
            printf("-");
        else
            printf("%.0f%%", 100 * r->other[i]);
        stolen |= r->steal[i] > 0.02;
    }
    if (stolen) {
        printf("; stolen by the hypervisor:");
        for (int i = 0; i < r->n; i++)
            printf(" %.0f%%", 100 * r->steal[i]);
    }
    printf("\n");
    if (r->n != opt.runs) {
        printf("  FAILED: %d of %d runs gave a result\n", r->n, opt.runs);
        failures++;
    }
    record(key, med);
    char k[48];
    snprintf(k, sizeof k, "%s.spread", key);
    record(k, spread);
    fflush(stdout);
}

static int selected(const char *what)
{
    if (!opt.only)
        return 1;
    size_t len = strlen(what);
    for (const char *p = opt.only; (p = strstr(p, what)); p += len)
        if ((p == opt.only || p[-1] == ',') && (!p[len] || p[len] == ','))
            return 1;
    return 0;
}

/* A contender's figure kind is run if both its name and the kind are
 * selected, or only one of the two lists mentions anything. */
static int wanted(const char *who, const char *kind)
{
    int any_who = selected("aemp") || selected("raw") || selected("zmq") ||
                  selected("erlang");
    int any_kind = selected("flood") || selected("ping") || selected("setup");
    if (!opt.only)
        return 1;
    return (!any_who || selected(who)) && (!any_kind || selected(kind)) &&
           (any_who || any_kind);
}

static long scaled(double base)
{
    double n = base * opt.scale;
    return n < 100 ? 100 : (long)n;
}

/* ---- C contenders: a server, then a client, per run ------------------------ */

/* `runs` times: start server (argv), read its "port " line, build the
 * client's argv from it with make_client, collect the client's result. */
typedef void (*client_argv_fn)(const char *port, char **argv, void *user);

static void pair_runs(char **server, client_argv_fn make_client, void *user,
                      int pin, int runs, runs_t *r)
{
    char buf[LINE], port[LINE];
    for (int i = 0; i < runs; i++) {
        lwin_t w = lwin_start();
        child_t s = spawn(server, pin);
        const char *p = child_line(&s, "port ", buf);
        if (!p) {
            child_end(&s, SIGKILL);
            continue;
        }
        snprintf(port, sizeof port, "%s", p);
        char *argv[16];
        make_client(port, argv, user);
        child_t c = spawn(argv, pin);
        const char *res = child_line(&c, "result ", buf);
        int n = r->n;
        if (res)
            add_result(r, res);
        child_end(&c, res ? 0 : SIGKILL);
        child_end(&s, SIGKILL);
        if (r->n > n)
            lwin_end(&w, &r->other[n], &r->steal[n]);
    }
}

struct aemp_args {
    const char *mode, *framing;
    char count[32], window[32];
    int tls;
};

/* net_aemp [--tls]: the start of every net_aemp command line; the rest
 * from argv + the returned count. */
static int aemp_argv(char **argv, int tls)
{
    int k = 0;
    argv[k++] = prog("net_aemp");
    if (tls)
        argv[k++] = "--tls";
    return k;
}

static void aemp_client(const char *port, char **argv, void *user)
{
    struct aemp_args *a = user;
    int k = aemp_argv(argv, a->tls);
    argv[k++] = (char *)a->mode;
    argv[k++] = (char *)port;
    argv[k++] = (char *)a->framing;
    argv[k++] = a->count;
    if (strcmp(a->mode, "send") == 0)
        argv[k++] = a->window;
    argv[k] = NULL;
}

/* The links a figure's runs used, as net_aemp said ("link ..."): the
 * first of each kind, for the labels; a TLS run whose link was not TLS
 * (or a plain one that was) is a failure. */
static char link_seen[2][LINE];

static void check_link(int tls)
{
    int is_tls = strstr(note_link, "over TLS") != NULL;
    if (!note_link[0])
        return;
    if (is_tls != tls) {
        printf("  FAILED: a %s run's link was \"%s\"\n",
               tls ? "TLS" : "plain", note_link);
        failures++;
    }
    if (!link_seen[tls][0])
        snprintf(link_seen[tls], sizeof link_seen[tls], "%s", note_link);
}

static void aemp_runs_n(const char *mode, const char *framing, long count,
                        int pin, int runs, int tls, runs_t *r)
{
    struct aemp_args a = {mode, framing, "", "", tls};
    char portarg[16];
    snprintf(a.count, sizeof a.count, "%ld", count);
    snprintf(a.window, sizeof a.window, "%ld", opt.window);
    for (int i = 0; i < runs; i++) {
        /* a fresh port per run: no TIME_WAIT surprises */
        snprintf(portarg, sizeof portarg, "%d", next_port++);
        char *server[8];
        int k = aemp_argv(server, tls);
        server[k++] = "recv";
        server[k++] = portarg;
        server[k++] = (char *)framing;
        server[k] = NULL;
        note_link[0] = 0;
        pair_runs(server, aemp_client, &a, pin, 1, r);
        check_link(tls);
    }
}

static void aemp_runs(const char *mode, const char *framing, long count,
                      int pin, int tls, runs_t *r)
{
    aemp_runs_n(mode, framing, count, pin, opt.runs, tls, r);
}

struct peer_args {
    const char *prog, *mode;
    char count[32];
};

/* net_raw send PORT COUNT MODE / net_raw ping PORT COUNT /
 * net_zmq push DATA ACKS COUNT / net_zmq req EP COUNT */
static void peer_client(const char *port, char **argv, void *user)
{
    struct peer_args *a = user;
    static char ports[LINE];
    int k = 0;
    snprintf(ports, sizeof ports, "%s", port);
    argv[k++] = prog(a->prog);
    if (strcmp(a->mode, "each") == 0 || strcmp(a->mode, "batch") == 0)
        argv[k++] = "send";
    else
        argv[k++] = (char *)a->mode;
    char *sp = strchr(ports, ' ');
    if (sp)
        *sp = 0;
    argv[k++] = ports;
    if (sp)
        argv[k++] = sp + 1;
    argv[k++] = a->count;
    if (strcmp(a->mode, "each") == 0 || strcmp(a->mode, "batch") == 0)
        argv[k++] = (char *)a->mode;
    argv[k] = NULL;
}

static void peer_runs_n(const char *p, const char *server_role,
                        const char *mode, long count, int pin, int runs,
                        runs_t *r)
{
    struct peer_args a = {p, mode, ""};
    snprintf(a.count, sizeof a.count, "%ld", count);
    char *server[] = {prog(p), (char *)server_role, NULL};
    pair_runs(server, peer_client, &a, pin, runs, r);
}

static void peer_runs(const char *p, const char *server_role,
                      const char *mode, long count, int pin, runs_t *r)
{
    peer_runs_n(p, server_role, mode, count, pin, opt.runs, r);
}

/* ---- Erlang ----------------------------------------------------------------- */

static child_t epmd = {-1, NULL};

static const char *erl_missing(void)
{
    if (system("command -v erl >/dev/null 2>&1 && "
               "command -v epmd >/dev/null 2>&1") != 0)
        return "no erl/epmd on PATH (Debian: apt-get install erlang-nox)";
    if (access(AEMP_BENCH_ERLANG_NET, R_OK) != 0)
        return "cannot read " AEMP_BENCH_ERLANG_NET;
    return NULL;
}

/* Our own epmd on a private port (ERL_EPMD_PORT for the erl children), in
 * the foreground, so that it is our child and ends with us. */
static int epmd_start(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", next_port++);
    setenv("ERL_EPMD_PORT", port, 1);
    char *argv[] = {"epmd", "-port", port, NULL};
    epmd = spawn(argv, 0);
    usleep(300000);
    return epmd.pid > 0 ? 0 : -1;
}

static child_t erl(const char *sname, const char *call, int pin)
{
    static char eval[2048];
    snprintf(eval, sizeof eval,
             "{ok,M,B}=compile:file(\"%s\",[binary,report]),"
             "{module,M}=code:load_binary(M,\"net_bench.erl\",B),%s",
             AEMP_BENCH_ERLANG_NET, call);
    char *argv[] = {"erl", "+S", "1", "-noshell", "-sname", (char *)sname,
                    "-setcookie", "aempbench", "-eval", eval, NULL};
    return spawn(argv, pin);
}

static void erlang_runs(const char *mode, long count, int pin, runs_t *r)
{
    char buf[LINE], rname[64], sname[64], call[256];
    static int k;
    snprintf(rname, sizeof rname, "aempr%d_%d", (int)getpid(), k);
    snprintf(sname, sizeof sname, "aemps%d_%d", (int)getpid(), k++);
    child_t s = erl(rname, "net_bench:recv().", pin);
    const char *node = child_line(&s, "port ", buf);
    if (!node) {
        child_end(&s, SIGKILL);
        return;
    }
    snprintf(call, sizeof call, "net_bench:client(%s,'%s',%ld,%d).", mode,
             node, count, opt.runs);
    child_t c = erl(sname, call, pin);
    for (int i = 0; i < opt.runs; i++) {
        const char *res = child_line(&c, "result ", buf);
        if (!res)
            break;
        add_result(r, res);
    }
    child_end(&c, r->n == opt.runs ? 0 : SIGKILL);
    child_end(&s, SIGKILL);
}

/* ---- scenarios --------------------------------------------------------------- */

static const long FLOOD_AEMP = 2000000, FLOOD_JSON = 1000000,
                  FLOOD_EACH = 200000, FLOOD_BATCH = 5000000,
                  FLOOD_ZMQ = 2000000, FLOOD_ERL = 500000, PINGS = 20000;

/* The rate of the run just added to r, if one was. */
static double last_rate(const runs_t *r, int before, double count)
{
    return r->n > before ? count / r->wall[r->n - 1] / 1e6 : NAN;
}

/* Prints a figure's same-round ratios and records their median (failed
 * runs leave NAN in their round: the median skips those). */
static void round_ratios(const char *key, const char *label, const double *x,
                         int n)
{
    double m[MAX_RUNS];
    int k = 0;
    printf("  %-38s", label);
    for (int i = 0; i < n; i++) {
        printf(" %.2f", x[i]);
        if (!isnan(x[i]))
            m[k++] = x[i];
    }
    printf("  median %.2f\n", median(m, k));
    record(key, median(m, k));
}

/* One aemp one-way variant: framing, plain or TLS. */
struct oneway {
    const char *framing, *key, *label;
    long count;
    int tls;
    runs_t r;
    double rate; /* this round's */
};

/* Round by round: aemp CBOR and JSON, each over plain TCP and over TLS,
 * and ZeroMQ (those wanted), and the ratios within each round: aemp /
 * ZeroMQ and TLS / plain. */
static void oneway_rounds(void)
{
    int aemp = wanted("aemp", "flood");
    int zmq = wanted("zmq", "flood") && access(prog("net_zmq"), X_OK) == 0;
    struct oneway v[4] = {
        {.framing = "cbor", .key = "aemp.cbor", .label = "aemp, CBOR framing",
         .count = scaled(FLOOD_AEMP)},
        {.framing = "cbor", .key = "aemp.cbor.tls",
         .label = "aemp, CBOR framing, TLS", .count = scaled(FLOOD_AEMP),
         .tls = 1},
        {.framing = "json", .key = "aemp.json", .label = "aemp, JSON framing",
         .count = scaled(FLOOD_JSON)},
        {.framing = "json", .key = "aemp.json.tls",
         .label = "aemp, JSON framing, TLS", .count = scaled(FLOOD_JSON),
         .tls = 1}};
    runs_t rz = {0};
    double xc[MAX_RUNS], xj[MAX_RUNS], tc[MAX_RUNS], tj[MAX_RUNS];
    int nx = 0, nt = 0;
    if (!aemp && !zmq)
        return;
    for (int i = 0; i < opt.runs; i++) {
        double z = NAN;
        for (int j = 0; aemp && j < 4; j++) {
            v[j].rate = NAN;
            if (!kind_on(v[j].tls))
                continue;
            int n = v[j].r.n;
            aemp_runs_n("send", v[j].framing, v[j].count, 0, 1, v[j].tls,
                        &v[j].r);
            v[j].rate = last_rate(&v[j].r, n, v[j].count);
        }
        if (zmq) {
            int n = rz.n;
            peer_runs_n("net_zmq", "pull", "push", scaled(FLOOD_ZMQ), 0, 1,
                        &rz);
            z = last_rate(&rz, n, scaled(FLOOD_ZMQ));
        }
        if (aemp && zmq && kind_on(0)) {
            xc[nx] = v[0].rate / z;
            xj[nx++] = v[2].rate / z;
        }
        if (aemp && opt.tls == TLS_BOTH) {
            tc[nt] = v[1].rate / v[0].rate;
            tj[nt++] = v[3].rate / v[2].rate;
        }
    }
    for (int j = 0; aemp && j < 4; j++)
        if (kind_on(v[j].tls))
            report(v[j].key, v[j].label, &v[j].r, (double)v[j].count, RATE_M);
    if (zmq)
        report("zmq", "ZeroMQ PUSH/PULL", &rz, scaled(FLOOD_ZMQ), RATE_M);
    if (nx) {
        round_ratios("round.cbor/zmq", "same-round ratios, CBOR/ZeroMQ:", xc,
                     nx);
        round_ratios("round.json/zmq", "same-round ratios, JSON/ZeroMQ:", xj,
                     nx);
    }
    if (nt) {
        round_ratios("round.cbor.tls/plain",
                     "same-round ratios, CBOR TLS/plain:", tc, nt);
        round_ratios("round.json.tls/plain",
                     "same-round ratios, JSON TLS/plain:", tj, nt);
    }
}

static void floods(int erl_ok)
{
    runs_t r;
    printf("\n== one-way throughput (million messages/s)\n");
    oneway_rounds();
    if (wanted("raw", "flood")) {
        r = (runs_t){0};
        peer_runs("net_raw", "serve", "each", scaled(FLOOD_EACH), 0, &r);
        report("raw.each", "raw TCP, one write() per message", &r,
               scaled(FLOOD_EACH), 0);
        r = (runs_t){0};
        peer_runs("net_raw", "serve", "batch", scaled(FLOOD_BATCH), 0, &r);
        report("raw.batch", "raw TCP, 64 KiB writes (bound)", &r,
               scaled(FLOOD_BATCH), 0);
    }
    if (wanted("erlang", "flood") && erl_ok) {
        r = (runs_t){0};
        erlang_runs("flood", scaled(FLOOD_ERL), 0, &r);
        report("erl", "distributed Erlang (+S 1)", &r, scaled(FLOOD_ERL), 0);
    }
}

/* aemp's ping-pong over plain TCP and over TLS, one run of each per
 * round, with the same-round ratios TLS / plain. */
static void aemp_pings(int pin, const char *m, long n)
{
    runs_t r[2] = {{0}, {0}};
    double x[MAX_RUNS];
    int nx = 0;
    char key[48];
    for (int i = 0; i < opt.runs; i++) {
        double us[2] = {NAN, NAN};
        for (int tls = 0; tls < 2; tls++) {
            int before = r[tls].n;
            if (!kind_on(tls))
                continue;
            aemp_runs_n("ping", "cbor", n, pin, 1, tls, &r[tls]);
            if (r[tls].n > before)
                us[tls] = r[tls].wall[r[tls].n - 1] / (double)n * 1e6;
        }
        if (opt.tls == TLS_BOTH)
            x[nx++] = us[1] / us[0];
    }
    for (int tls = 0; tls < 2; tls++) {
        if (!kind_on(tls))
            continue;
        snprintf(key, sizeof key, "aemp.ping.%s%s", m, tls ? ".tls" : "");
        report(key, tls ? "aemp, CBOR framing, TLS" : "aemp, CBOR framing",
               &r[tls], (double)n, LATENCY_US);
    }
    if (nx) {
        snprintf(key, sizeof key, "round.ping.%s.tls/plain", m);
        round_ratios(key, "same-round ratios, TLS/plain:", x, nx);
    }
}

static void pings(int erl_ok)
{
    static const char *const mode[] = {"pinned", "unpinned"};
    char key[48], label[80];
    long n = scaled(PINGS);
    for (int pin = 1; pin >= 0; pin--) {
        const char *m = mode[!pin];
        printf("\n== ping-pong round trip, %s (microseconds)\n",
               pin ? "both processes on CPU 0" : "unpinned");
        if (wanted("aemp", "ping"))
            aemp_pings(pin, m, n);
#define PP(who, text, call)                                                    \
    if (wanted(who, "ping")) {                                                 \
        runs_t r = {0};                                                        \
        call;                                                                  \
        snprintf(key, sizeof key, "%s.ping.%s", who, m);                       \
        snprintf(label, sizeof label, "%s", text);                             \
        report(key, label, &r, (double)n, LATENCY_US);                         \
    }
        PP("raw", "raw TCP (write + read)",
           peer_runs("net_raw", "serve", "ping", n, pin, &r));
        if (access(prog("net_zmq"), X_OK) == 0)
            PP("zmq", "ZeroMQ REQ/REP",
               peer_runs("net_zmq", "rep", "req", n, pin, &r));
        if (erl_ok)
            PP("erlang", "distributed Erlang (+S 1)",
               erlang_runs("ping", n, pin, &r));
#undef PP
    }
}

/* ---- authenticated link set-ups (issue 9) ---------------------------------- */

static long setups_per_run(void)
{
    return opt.setups > 0 ? opt.setups : scaled(1000);
}

/* The set-up figure's extra line: per set-up, the client's and the
 * receiver's CPU, and what the fresh node around each one costs (not
 * timed: it is no part of a link). */
static void setup_costs(const char *key, const runs_t *r, long count,
                        double nodecost)
{
    double c[MAX_RUNS], rc[MAX_RUNS], us[MAX_RUNS];
    char k[48];
    for (int i = 0; i < r->n; i++) {
        us[i] = r->wall[i] / (double)count * 1e6;
        c[i] = r->cpu[i] / (double)count * 1e6;
        rc[i] = r->rcpu[i] / (double)count * 1e6;
    }
    if (!r->n)
        return;
    printf("%-40s %9.1f us per set-up; CPU per set-up: client %.1f us",
           "", median(us, r->n), median(c, r->n));
    if (!isnan(r->rcpu[0]))
        printf(", receiver %.1f us", median(rc, r->n));
    if (!isnan(nodecost))
        printf("; a fresh node (made, configured, freed; not timed) %.1f us",
               nodecost * 1e6);
    printf("\n");
    snprintf(k, sizeof k, "%s.us", key);
    record(k, median(us, r->n));
}

/* Rounds of one hmac_sha3_512 run and one TLS run (those on), then the
 * Erlang runs; each run is setups_per_run() set-ups by a fresh client
 * process against a fresh receiver, both on CPU 0 if pin.  Keys
 * setup.{hmac,tls,erl}.{pinned,unpinned}. */
static void setups_mode(int erl_ok, int pin, const char *m)
{
    long n = setups_per_run();
    runs_t r[2] = {{0}, {0}};
    double x[MAX_RUNS], nodecost[2][MAX_RUNS];
    int nx = 0, nn[2] = {0, 0};
    char key[48];
    printf("\n== authenticated link set-ups per second, %s (one at a time: "
           "connect, handshake, first message delivered and answered, "
           "close; %ld per run)\n",
           pin ? "both processes on CPU 0" : "unpinned", n);
    for (int i = 0; wanted("aemp", "setup") && i < opt.runs; i++) {
        double rate[2] = {NAN, NAN};
        for (int tls = 0; tls < 2; tls++) {
            int before = r[tls].n;
            if (!kind_on(tls))
                continue;
            note_nodecost[0] = 0;
            aemp_runs_n("setup", "cbor", n, pin, 1, tls, &r[tls]);
            if (r[tls].n > before)
                rate[tls] = (double)n / r[tls].wall[r[tls].n - 1];
            if (note_nodecost[0])
                nodecost[tls][nn[tls]++] = atof(note_nodecost);
        }
        if (opt.tls == TLS_BOTH)
            x[nx++] = rate[1] / rate[0];
    }
    for (int tls = 0; wanted("aemp", "setup") && tls < 2; tls++) {
        if (!kind_on(tls))
            continue;
        snprintf(key, sizeof key, "setup.%s.%s", tls ? "tls" : "hmac", m);
        report(key, tls ? "aemp, TLS (tls_sha3_512)" : "aemp, hmac_sha3_512",
               &r[tls], (double)n, RATE_1);
        setup_costs(key, &r[tls], n, median(nodecost[tls], nn[tls]));
    }
    if (nx) {
        snprintf(key, sizeof key, "round.setup.%s.tls/hmac", m);
        round_ratios(key, "same-round ratios, TLS/hmac:", x, nx);
    }
    if (!wanted("erlang", "setup"))
        return;
    if (!erl_ok) {
        const char *why = erl_missing();
        printf("%-40s absent: %s\n", "distributed Erlang (+S 1)",
               why ? why : "its epmd did not start");
        return;
    }
    runs_t re = {0};
    erlang_runs("setup", n, pin, &re);
    snprintf(key, sizeof key, "setup.erl.%s", m);
    report(key, "distributed Erlang (+S 1), cookie", &re, (double)n, RATE_1);
    setup_costs(key, &re, n, NAN);
}

static void setups(int erl_ok)
{
    setups_mode(erl_ok, 1, "pinned");
    setups_mode(erl_ok, 0, "unpinned");
}

/* A sender flooding a receiver that stopped reading (SIGSTOP at the first
 * message): the sender's peak RSS after opt.stall_seconds. */
static void stall(const char *label, long window, long max_backlog, int tls)
{
    char buf[LINE], portarg[16], secs[32], win[32], maxb[32];
    snprintf(portarg, sizeof portarg, "%d", next_port++);
    snprintf(secs, sizeof secs, "%g", opt.stall_seconds);
    snprintf(win, sizeof win, "%ld", window);
    snprintf(maxb, sizeof maxb, "%ld", max_backlog);
    char *server[8];
    int k = aemp_argv(server, tls);
    server[k++] = "recv";
    server[k++] = portarg;
    server[k++] = "cbor";
    server[k] = NULL;
    child_t s = spawn(server, 0);
    const char *p = child_line(&s, "port ", buf);
    if (p) {
        char port[LINE], *client[12];
        snprintf(port, sizeof port, "%s", p);
        k = aemp_argv(client, tls);
        client[k++] = "stall";
        client[k++] = port;
        client[k++] = "cbor";
        client[k++] = secs;
        client[k++] = win;
        client[k++] = maxb;
        client[k] = NULL;
        note_link[0] = 0;
        child_t c = spawn(client, 0);
        const char *m = child_line(&c, "mem ", buf);
        long hwm = 0, rss = 0, backlog = 0;
        long long sent = 0;
        int downs = 0;
        char reason[LINE] = "?";
        if (m && sscanf(m, "%ld %ld %lld %ld %d %511s", &hwm, &rss, &sent,
                        &backlog, &downs, reason) == 6)
            printf("%-44s peak RSS %7.1f MiB, RSS at end %7.1f MiB, "
                   "%lld messages sent, backlog %.1f MiB, link dropped %d "
                   "times (%s)\n",
                   label, hwm / 1024.0, rss / 1024.0, sent,
                   backlog / 1048576.0, downs, reason);
        else
            failures++;
        child_end(&c, m ? 0 : SIGKILL);
        check_link(tls);
    }
    child_end(&s, SIGKILL); /* SIGKILL also ends a stopped process */
}

static void memory(void)
{
    printf("\n== sender memory, flooding a receiver that stopped reading "
           "(%g s)\n", opt.stall_seconds);
    for (int tls = 0; tls < 2; tls++) {
        char label[80];
        const char *t = tls ? ", TLS" : "";
        if (!kind_on(tls))
            continue;
        snprintf(label, sizeof label, "paced (window %ld KiB)%s",
                 opt.window / 1024, t);
        stall(label, opt.window, 0, tls);
        snprintf(label, sizeof label, "unpaced, max_backlog 16 MiB%s", t);
        stall(label, 0, 16 << 20, tls);
        snprintf(label, sizeof label, "unpaced, max_backlog 64 MiB "
                 "(default)%s", t);
        stall(label, 0, 0, tls);
    }
}

/* ---- the receiver under an unpaced flood (issue 7) ------------------------- */

/* What one unpaced flood gave (net_aemp's "flood" line). */
typedef struct flood {
    double window, scpu, rcpu, by_t1, last, other, steal;
    long long sent, yields, hwm, rss0, rss, got;
    int downs;
    char curve[200];
} flood_t;

static double flood_secs(void)
{
    if (opt.flood_seconds > 0)
        return opt.flood_seconds;
    return 10 * opt.scale < 1 ? 1 : 10 * opt.scale;
}

/* Splits opt.receiver_wrap into words (no quoting) in front of argv. */
static int wrap_argv(char **argv, int max, char *words)
{
    int k = 0;
    if (!opt.receiver_wrap)
        return 0;
    snprintf(words, LINE, "%s", opt.receiver_wrap);
    for (char *w = strtok(words, " \t"); w && k < max; w = strtok(NULL, " \t"))
        argv[k++] = w;
    return k;
}

/* One unpaced flood against a fresh receiver; 0 and *f on success. */
static int flood_run(const char *framing, int tls, flood_t *f)
{
    char buf[LINE], port[LINE], portarg[16], secs[32], limit[32], words[LINE],
        post[32];
    char *server[32];
    int k = wrap_argv(server, 24, words), rc = -1;
    lwin_t w = lwin_start();
    snprintf(portarg, sizeof portarg, "%d", next_port++);
    snprintf(secs, sizeof secs, "%g", flood_secs());
    snprintf(limit, sizeof limit, "%ld", opt.flood_limit);
    snprintf(post, sizeof post, "%ld", opt.flood_post);
    k += aemp_argv(server + k, tls);
    server[k++] = "recv";
    server[k++] = portarg;
    server[k++] = (char *)framing;
    server[k] = NULL;
    child_t s = spawn(server, 0);
    const char *p = child_line(&s, "port ", buf);
    if (!p) {
        child_end(&s, SIGKILL);
        return -1;
    }
    snprintf(port, sizeof port, "%s", p);
    char *client[12];
    int kc = aemp_argv(client, tls);
    client[kc++] = "flood";
    client[kc++] = port;
    client[kc++] = (char *)framing;
    client[kc++] = secs;
    client[kc++] = limit;
    client[kc++] = post;
    client[kc] = NULL;
    note_link[0] = 0;
    child_t c = spawn(client, 0);
    /* the drain after the window may take long where the receiver is slow */
    const char *res = child_line_t(&c, "flood ", buf,
                                   TIMEOUT_MS + (int)(flood_secs() * 1000));
    if (res && sscanf(res, "%lf %lf %lld %lld %d %lf %lld %lld %lld %lf %lld "
                           "%lf %199s",
                      &f->window, &f->scpu, &f->sent, &f->yields, &f->downs,
                      &f->rcpu, &f->hwm, &f->rss0, &f->rss, &f->by_t1,
                      &f->got, &f->last, f->curve) == 13 &&
        f->got == f->sent)
        rc = 0;
    int cst = child_end(&c, res ? 0 : SIGKILL);
    if (rc == 0 && cst != 0)
        rc = -1;
    check_link(tls);
    /* the receiver ends by itself once the sender has gone (a wrapper such
     * as perf then writes its data); wait for that a while */
    if (s.pid > 0 && child_line_t(&s, NULL, buf, 60000))
        child_end(&s, 0);
    else
        child_end(&s, SIGKILL);
    lwin_end(&w, &f->other, &f->steal);
    return rc;
}

static double maxd(const double *v, int n)
{
    double m = NAN;
    for (int i = 0; i < n; i++)
        if (isnan(m) || v[i] > m)
            m = v[i];
    return m;
}

static void unpaced_one(const char *framing, int tls)
{
    char key[48], label[80];
    const char *t = tls ? ".tls" : "";
    double active[MAX_RUNS], overall[MAX_RUNS], hwm[MAX_RUNS],
        cpupm[MAX_RUNS], sendr[MAX_RUNS], drain[MAX_RUNS];
    int n = 0;
    /* the unloaded figure: the paced one-way run (measured here unless the
     * one-way section already did) */
    snprintf(key, sizeof key, "aemp.%s%s", framing, t);
    int json = strcmp(framing, "json") == 0;
    long count = scaled(json ? FLOOD_JSON : FLOOD_AEMP);
    if (isnan(fig(key))) {
        runs_t r = {0};
        snprintf(label, sizeof label, "aemp, %s framing%s, paced (unloaded)",
                 json ? "JSON" : "CBOR", tls ? ", TLS" : "");
        aemp_runs("send", framing, count, 0, tls, &r);
        report(key, label, &r, count, RATE_M);
    }
    double unloaded = fig(key);
    printf("%s framing%s, %g s per run:\n", json ? "JSON" : "CBOR",
           tls ? ", TLS" : "", flood_secs());
    for (int i = 0; i < opt.flood_runs; i++) {
        flood_t f = {0};
        if (flood_run(framing, tls, &f) < 0) {
            printf("  run %d: FAILED%s\n", i + 1,
                   f.downs ? " (the link went down)" : "");
            failures++;
            continue;
        }
        active[n] = f.by_t1 / f.window / 1e6;
        overall[n] = (double)f.got / f.last / 1e6;
        hwm[n] = (double)f.hwm / 1024;
        cpupm[n] = f.rcpu / ((double)f.got / 1e6);
        sendr[n] = (double)f.sent / f.window / 1e6;
        drain[n] = f.last - f.window;
        printf("  run %d: sent %.1f M (%.2f M/s, %lld yields); delivered "
               "while sending %.3f M/s, overall %.3f M/s (the last %.1f s "
               "after the sender stopped); receiver peak RSS %.1f MiB "
               "(%.1f at the start, %.1f at the end), %.3f CPU-s per M "
               "(%.0f%% CPU); sender %.0f%% CPU; other processes %.0f%%, "
               "stolen %.0f%%\n",
               i + 1, (double)f.sent / 1e6, sendr[n], f.yields, active[n],
               overall[n], drain[n], hwm[n], f.rss0 / 1024.0, f.rss / 1024.0,
               cpupm[n], 100 * f.rcpu / f.last, 100 * f.scpu / f.last,
               100 * f.other, 100 * f.steal);
        printf("         delivered per tenth of the window (M/s): %s\n",
               f.curve);
        n++;
    }
    if (!n)
        return;
    double a = median(active, n);
    printf("%-40s %9.3f M/s  runs:", "  delivered while the sender is active",
           a);
    for (int i = 0; i < n; i++)
        printf(" %.3f", active[i]);
    printf("\n%-40s %9.3f M/s  (unloaded/paced one-way: %.3f M/s; ratio "
           "%.2f)\n", "  delivered overall", median(overall, n), unloaded,
           a / unloaded);
    printf("%-40s %9.1f MiB  runs:", "  receiver peak RSS (VmHWM)",
           median(hwm, n));
    for (int i = 0; i < n; i++)
        printf(" %.1f", hwm[i]);
    /* per CPU-second of the receiver: what other processes on the machine
     * take from the receiver drops out (the paced figure's own is the
     * unloaded one) */
    snprintf(key, sizeof key, "aemp.%s%s.percpu", framing, t);
    printf("\n%-40s %9.3f       (%.2f M per receiver CPU-s; paced: %.2f, "
           "ratio %.2f)\n",
           "  receiver CPU-s per M messages", median(cpupm, n),
           1 / median(cpupm, n), fig(key), 1 / median(cpupm, n) / fig(key));
    printf("%-40s %9.3f M/s  (the sender's rate; drain after the window "
           "%.2f s)\n", "  sent", median(sendr, n), median(drain, n));
    snprintf(key, sizeof key, "unpaced.%s%s.active", framing, t);
    record(key, a);
    snprintf(key, sizeof key, "unpaced.%s%s.ratio", framing, t);
    record(key, a / unloaded);
    snprintf(key, sizeof key, "unpaced.%s%s.hwm", framing, t);
    record(key, maxd(hwm, n));
    fflush(stdout);
}

static void unpaced(void)
{
    printf("\n== receiving under an unpaced flood (issue 7): the sender sends "
           "for %g s without waiting (only aemp_backlog < %.1f MiB), %d runs "
           "per framing; the receiver posts itself a local message every "
           "%ld\n",
           flood_secs(), opt.flood_limit / 1048576.0, opt.flood_runs,
           opt.flood_post);
    for (int tls = 0; tls < 2; tls++) {
        if (!kind_on(tls))
            continue;
        if (strstr(opt.flood_framings, "cbor"))
            unpaced_one("cbor", tls);
        if (strstr(opt.flood_framings, "json"))
            unpaced_one("json", tls);
    }
}

/* ---- summary ---------------------------------------------------------------- */

static void ratio(const char *label, double ours, double theirs, int lower)
{
    if (isnan(ours) || isnan(theirs))
        return;
    printf("  %-46s %8.3f vs %8.3f  = %.2fx%s\n", label, ours, theirs,
           ours / theirs, lower ? " (lower is better)" : "");
}

static void target(const char *text, int met, double off)
{
    if (isnan(off))
        return;
    printf("  target %-50s %s", text, met ? "met" : "MISSED");
    if (!met)
        printf(" by %.1f%%", 100 * off);
    printf("\n");
}

static void summary_tls(void);

static void summary(void)
{
    double cbor = fig("aemp.cbor"), json = fig("aemp.json");
    printf("\n== aemp as ratios to each contender\n");
    ratio("flood CBOR / raw TCP one write per msg", cbor, fig("raw.each"), 0);
    ratio("flood CBOR / raw TCP 64 KiB writes", cbor, fig("raw.batch"), 0);
    ratio("flood CBOR / ZeroMQ PUSH/PULL", cbor, fig("zmq"), 0);
    ratio("flood CBOR / distributed Erlang", cbor, fig("erl"), 0);
    ratio("flood JSON / ZeroMQ PUSH/PULL", json, fig("zmq"), 0);
    ratio("flood JSON / distributed Erlang", json, fig("erl"), 0);
    static const char *const mode[] = {"pinned", "unpinned"};
    for (int i = 0; i < 2; i++) {
        char k[48], l[80];
        snprintf(k, sizeof k, "aemp.ping.%s", mode[i]);
        double ours = fig(k);
        static const char *const who[] = {"raw", "zmq", "erlang"};
        static const char *const name[] = {"raw TCP", "ZeroMQ REQ/REP",
                                           "distributed Erlang"};
        for (int j = 0; j < 3; j++) {
            char tk[48];
            snprintf(tk, sizeof tk, "%s.ping.%s", who[j], mode[i]);
            snprintf(l, sizeof l, "ping-pong %s / %s", mode[i], name[j]);
            ratio(l, ours, fig(tk), 1);
        }
    }
    printf("\n== issue 3 targets\n");
    target(">= 5 M/s one-way, CBOR:", cbor >= 5, 1 - cbor / 5);
    target(">= 2.5 M/s one-way, JSON:", json >= 2.5, 1 - json / 2.5);
    for (int i = 0; i < 2; i++) {
        char k[48], rk[48], t[80];
        snprintf(k, sizeof k, "aemp.ping.%s", mode[i]);
        snprintf(rk, sizeof rk, "raw.ping.%s", mode[i]);
        double x = fig(k) / fig(rk);
        snprintf(t, sizeof t, "ping-pong <= 1.3 x raw TCP, %s:", mode[i]);
        target(t, x <= 1.3, x / 1.3 - 1);
    }
    printf("\n== issue 7 targets (printed, not asserted)\n");
    double z = fig("zmq");
    target(">= 1.5 x ZeroMQ one-way, CBOR:", cbor / z >= 1.5,
           1 - cbor / z / 1.5);
    target(">= 1.2 x ZeroMQ one-way, JSON:", json / z >= 1.2,
           1 - json / z / 1.2);
    static const char *const fr[] = {"cbor", "json", "zmq"};
    static const char *const frn[] = {"CBOR", "JSON", "ZeroMQ (reference)"};
    for (int i = 0; i < 3; i++) {
        char k[48], t[80];
        snprintf(k, sizeof k, "%s.spread", i < 2 ? (i ? "aemp.json"
                                                      : "aemp.cbor")
                                                 : "zmq");
        double sp = fig(k);
        snprintf(t, sizeof t, "run-to-run spread < 1.15, %s:", frn[i]);
        if (i == 2 && !isnan(sp))
            printf("  %-57s %.2f\n", t, sp);
        else
            target(t, sp < 1.15, sp / 1.15 - 1);
    }
    double bound = opt.queue_bound / 1048576.0;
    for (int i = 0; i < 2; i++) {
        char k[48], t[80];
        snprintf(k, sizeof k, "unpaced.%s.hwm", fr[i]);
        double h = fig(k);
        snprintf(t, sizeof t, "flood receiver peak RSS <= %.0f MiB, %s:",
                 4 * bound, frn[i]);
        target(t, h <= 4 * bound, h / (4 * bound) - 1);
        snprintf(k, sizeof k, "unpaced.%s.ratio", fr[i]);
        double x = fig(k);
        snprintf(t, sizeof t, "flood delivery while active >= 0.8 x "
                 "unloaded, %s:", frn[i]);
        target(t, x >= 0.8, 1 - x / 0.8);
    }
    summary_tls();
}

/* TLS against plain TCP, same run (issue 9). */
static void summary_tls(void)
{
    static const char *const fk[] = {"cbor", "json"};
    static const char *const fn[] = {"CBOR", "JSON"};
    static const char *const mode[] = {"pinned", "unpinned"};
    double one[2], ping[2];
    char k[48], tk[48], l[80];
    if (opt.tls != TLS_BOTH)
        return;
    printf("\n== TLS / plain TCP, this run (issue 9)\n");
    if (link_seen[0][0] || link_seen[1][0])
        printf("  links: plain \"%s\", TLS \"%s\"\n", link_seen[0],
               link_seen[1]);
    for (int i = 0; i < 2; i++) {
        snprintf(k, sizeof k, "aemp.%s", fk[i]);
        snprintf(tk, sizeof tk, "aemp.%s.tls", fk[i]);
        snprintf(l, sizeof l, "one-way %s, TLS / plain (medians)", fn[i]);
        ratio(l, fig(tk), fig(k), 0);
        snprintf(k, sizeof k, "round.%s.tls/plain", fk[i]);
        one[i] = fig(k);
        if (!isnan(one[i]))
            printf("  %-46s %8.2f\n", "  median of the same-round ratios",
                   one[i]);
        snprintf(k, sizeof k, "aemp.%s.percpu", fk[i]);
        snprintf(tk, sizeof tk, "aemp.%s.tls.percpu", fk[i]);
        snprintf(l, sizeof l, "  per receiver CPU-s, TLS / plain");
        ratio(l, fig(tk), fig(k), 0);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(k, sizeof k, "aemp.ping.%s", mode[i]);
        snprintf(tk, sizeof tk, "aemp.ping.%s.tls", mode[i]);
        snprintf(l, sizeof l, "ping-pong %s, TLS / plain (medians)", mode[i]);
        ratio(l, fig(tk), fig(k), 1);
        snprintf(k, sizeof k, "round.ping.%s.tls/plain", mode[i]);
        ping[i] = fig(k);
        if (!isnan(ping[i]))
            printf("  %-46s %8.2f\n", "  median of the same-round ratios",
                   ping[i]);
    }
    for (int i = 0; i < 2; i++) {
        char h[48], e[48];
        snprintf(k, sizeof k, "setup.tls.%s", mode[i]);
        snprintf(h, sizeof h, "setup.hmac.%s", mode[i]);
        snprintf(e, sizeof e, "setup.erl.%s", mode[i]);
        snprintf(l, sizeof l, "link set-ups/s %s, TLS / hmac_sha3_512",
                 mode[i]);
        ratio(l, fig(k), fig(h), 0);
        snprintf(tk, sizeof tk, "round.setup.%s.tls/hmac", mode[i]);
        if (!isnan(fig(tk)))
            printf("  %-46s %8.2f\n", "  median of the same-round ratios",
                   fig(tk));
        snprintf(l, sizeof l, "link set-ups/s %s, hmac_sha3_512 / Erlang",
                 mode[i]);
        ratio(l, fig(h), fig(e), 0);
        snprintf(l, sizeof l, "link set-ups/s %s, TLS / Erlang", mode[i]);
        ratio(l, fig(k), fig(e), 0);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(k, sizeof k, "unpaced.%s.active", fk[i]);
        snprintf(tk, sizeof tk, "unpaced.%s.tls.active", fk[i]);
        snprintf(l, sizeof l, "unpaced flood %s, active, TLS / plain", fn[i]);
        ratio(l, fig(tk), fig(k), 0);
    }
    printf("\n== issue 9 targets (printed, not asserted; same-round "
           "medians)\n");
    for (int i = 0; i < 2; i++) {
        snprintf(l, sizeof l, "one-way over TLS >= 0.70 x plain, %s:", fn[i]);
        target(l, one[i] >= 0.7, 1 - one[i] / 0.7);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(l, sizeof l, "ping-pong over TLS <= 1.2 x plain, %s:",
                 mode[i]);
        target(l, ping[i] <= 1.2, ping[i] / 1.2 - 1);
        /* unpinned round trips on a VM swing with how idle the other CPU
         * is (its wake-up), several-fold from run to run */
        snprintf(k, sizeof k, "aemp.ping.%s.spread", mode[i]);
        snprintf(tk, sizeof tk, "aemp.ping.%s.tls.spread", mode[i]);
        double sp = fig(k) > fig(tk) ? fig(k) : fig(tk);
        if (sp > 1.3)
            printf("  %-57s (runs spread %.1fx: not a measurement of "
                   "TLS)\n", "", sp);
    }
}

/* ---- main ------------------------------------------------------------------- */

/* Other processes on this 2-CPU machine change every figure here. */
static void print_load(const char *when)
{
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fgets(buf, sizeof buf, f))
        buf[strcspn(buf, "\n")] = 0;
    if (f)
        fclose(f);
    printf("load average at the %s: %s\n", when, buf);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_net [--runs N] [--scale X] [--only LIST] "
                    "[--window BYTES] [--stall-seconds S]\n"
                    "                 [--flood-seconds S] [--flood-runs N] "
                    "[--flood-limit BYTES] [--flood-framings LIST]\n"
                    "                 [--queue-bound BYTES] "
                    "[--receiver-wrap \"CMD ARGS\"] [--flood-post N]\n"
                    "                 [--tls plain|tls|both] [--setups N]\n");
    exit(2);
}

static void parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--runs"))
            opt.runs = atoi(v);
        else if (!strcmp(a, "--scale"))
            opt.scale = atof(v);
        else if (!strcmp(a, "--only"))
            opt.only = v;
        else if (!strcmp(a, "--window"))
            opt.window = atol(v);
        else if (!strcmp(a, "--stall-seconds"))
            opt.stall_seconds = atof(v);
        else if (!strcmp(a, "--flood-seconds"))
            opt.flood_seconds = atof(v);
        else if (!strcmp(a, "--flood-runs"))
            opt.flood_runs = atoi(v);
        else if (!strcmp(a, "--flood-limit"))
            opt.flood_limit = atol(v);
        else if (!strcmp(a, "--flood-framings"))
            opt.flood_framings = v;
        else if (!strcmp(a, "--queue-bound"))
            opt.queue_bound = atol(v);
        else if (!strcmp(a, "--receiver-wrap"))
            opt.receiver_wrap = v;
        else if (!strcmp(a, "--flood-post"))
            opt.flood_post = atol(v);
        else if (!strcmp(a, "--tls"))
            opt.tls = !strcmp(v, "plain") ? TLS_PLAIN
                      : !strcmp(v, "tls") ? TLS_ONLY
                      : !strcmp(v, "both") ? TLS_BOTH
                                           : 0;
        else if (!strcmp(a, "--setups"))
            opt.setups = atol(v);
        else
            usage();
        i++;
    }
    if (!opt.flood_runs)
        opt.flood_runs = opt.runs;
    if (opt.runs < 1 || opt.runs > MAX_RUNS || opt.flood_runs < 1 ||
        opt.flood_runs > MAX_RUNS || opt.flood_limit <= 0 ||
        opt.queue_bound <= 0 || !opt.tls || opt.setups < 0)
        usage();
}

/* Where this run's receivers listen: a random stretch below the kernel's
 * ephemeral ports.  Inside them, a listener collides with the TIME_WAIT
 * sockets of earlier connections (thousands after the set-up figures):
 * those did not set SO_REUSEADDR, so bind() fails with EADDRINUSE. */
static int first_port(void)
{
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f && fscanf(f, "%d %d", &lo, &hi) != 2)
        lo = 32768;
    if (f)
        fclose(f);
    /* a run uses a few hundred ports */
    if (lo > 12000)
        return 10000 + rand() % (lo - 12000);
    return hi + 1000 < 64000 ? hi + 1 + rand() % (64000 - hi - 1000) : 1024;
}

/* The TLS figures' key and certificate, PEM text (malloc'd; NULL on
 * failure): EC P-256, self-signed, CN "aemp", valid ten years, as `aemp
 * gencert` makes them.  Both nodes of a pair have it: the certificate is
 * its own CA (aemp_netconf_t.ca NULL). */
static char *gen_cert(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIO *bio = BIO_new(BIO_s_mem());
    X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
    unsigned char serial[16];
    char *pem = NULL, *data;
    BIGNUM *bn = NULL;
    if (!key || !x || !bio || !name || RAND_bytes(serial, sizeof serial) != 1)
        goto done;
    serial[0] &= 0x7f; /* a positive serial number */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
        !X509_set_version(x, 2) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"aemp", -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key) ||
        !X509_sign(x, key, EVP_sha256()) ||
        !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_X509(bio, x))
        goto done;
    long len = BIO_get_mem_data(bio, &data);
    if (len > 0 && (pem = malloc((size_t)len + 1))) {
        memcpy(pem, data, (size_t)len);
        pem[len] = 0;
    }
done:
    BN_free(bn);
    BIO_free(bio);
    X509_free(x);
    EVP_PKEY_free(key);
    return pem;
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    ssize_t len = readlink("/proc/self/exe", bindir, sizeof bindir - 1);
    if (len <= 0)
        return 2;
    bindir[len] = 0;
    *strrchr(bindir, '/') = 0;
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    next_port = first_port();
    printf("bench_net: %d runs per figure, medians; ping-pong %ld round "
           "trips per run\n", opt.runs, scaled(PINGS));
    print_load("start");
    if (kind_on(1)) {
        char *pem = gen_cert();
        if (!pem || setenv("AEMP_BENCH_CERT", pem, 1) < 0) {
            fprintf(stderr, "bench_net: cannot make a certificate\n");
            return 2;
        }
        free(pem);
        printf("aemp links: %s%s\n", kind_on(0) ? "plain TCP with a secret "
               "(hmac_sha3_512)" : "",
               kind_on(0) ? ", and TLS with a certificate made now (EC P-256, "
               "self-signed; tls_sha3_512), interleaved run by run"
               : "TLS only, with a certificate made now (EC P-256, "
                 "self-signed; tls_sha3_512)");
    }
    if (access(prog("net_zmq"), X_OK) != 0)
        printf("ZeroMQ comparison skipped: net_zmq not built (libzmq3-dev)\n");
    const char *why = erl_missing();
    int erl_ok = !why &&
                 (wanted("erlang", "flood") || wanted("erlang", "ping") ||
                  wanted("erlang", "setup")) &&
                 epmd_start() == 0;
    if (why)
        printf("Erlang comparison skipped: %s\n", why);
    floods(erl_ok);
    pings(erl_ok);
    if (wanted("aemp", "setup") || wanted("erlang", "setup"))
        setups(erl_ok);
    if (selected("memory") || !opt.only)
        memory();
    if (selected("unpaced") || !opt.only)
        unpaced();
    summary();
    print_load("end");
    if (epmd.pid > 0)
        child_end(&epmd, SIGTERM);
    if (failures)
        printf("\n%d FAILURES\n", failures);
    return failures ? 1 : 0;
}
