/* aemp_resolve (SPEC.md §3) against a real DNS server: a dnsmasq that this
 * test starts on 127.0.0.1 with a free port and its own records
 * (--host-record, --srv-host), which the nodes use through
 * aemp_netconf_t.dns_servers.  Names live under aemp.test, which dnsmasq
 * answers authoritatively (--local), so an unknown name is NXDOMAIN at
 * once.  The server is stopped (SIGSTOP) to prove that a lookup in flight
 * never blocks the loop. */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#define NODENAME "self.aemp.test"

/* ---- the DNS server --------------------------------------------------------- */

static struct {
    pid_t pid;
    int port;
    char dir[64];
    char servers[64];
    int stopped;
} dq;

/* Records: "self" is the nodename; svc has SRV targets in scrambled order
 * (priorities 5, 10, 10, 10, 20; weights inside priority 10: 50, 20, 5). */
static const char *const dq_records[] = {
    "--host-record=" NODENAME ",10.9.0.1,fd00:9::1",
    "--host-record=ready.aemp.test,10.9.0.99",
    "--host-record=multi.aemp.test,10.9.0.2,fd00:9::2",
    "--host-record=multi.aemp.test,10.9.0.3,fd00:9::3",
    "--host-record=dup.aemp.test,10.9.0.5",
    "--host-record=t0.aemp.test,10.9.0.10",
    "--host-record=t1.aemp.test,10.9.0.11,fd00:9::11",
    "--host-record=t2.aemp.test,10.9.0.12",
    "--host-record=t3.aemp.test,10.9.0.13",
    "--host-record=t4.aemp.test,10.9.0.14",
    "--host-record=plain.aemp.test,10.9.0.20",
    "--host-record=v6only.aemp.test,fd00:9::6",
    "--srv-host=_aemp._tcp.svc.aemp.test,t3.aemp.test,5003,20,100",
    "--srv-host=_aemp._tcp.svc.aemp.test,t2.aemp.test,5002,10,5",
    "--srv-host=_aemp._tcp.svc.aemp.test,t0.aemp.test,5000,5,1",
    "--srv-host=_aemp._tcp.svc.aemp.test,t1.aemp.test,5001,10,50",
    "--srv-host=_aemp._tcp.svc.aemp.test,t4.aemp.test,5004,10,20",
    /* a SRV target that is itself listed twice, and one that repeats an
     * address of another component: duplicates are dropped */
    "--srv-host=_aemp._tcp.twice.aemp.test,t0.aemp.test,5000,1,1",
    "--srv-host=_aemp._tcp.twice.aemp.test,t0.aemp.test,5000,2,1",
    "--srv-host=_aemp._tcp.twice.aemp.test,plain.aemp.test,4040,3,1",
    NULL};

static const char *dnsmasq_path(void)
{
    static const char *const paths[] = {"/usr/sbin/dnsmasq", "/sbin/dnsmasq",
                                        "/usr/bin/dnsmasq", "/bin/dnsmasq",
                                        NULL};
    for (size_t i = 0; paths[i]; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* A port free for both UDP and TCP on 127.0.0.1 a moment ago. */
static int free_dns_port(void)
{
    for (int tries = 0; tries < 50; tries++) {
        int port = nt_free_port();
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        assert_true(fd >= 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return port;
    }
    fail_msg("no free UDP+TCP port");
    return -1;
}

static pid_t dq_spawn(const char *path, int port)
{
    char portarg[32], pidarg[128], logpath[128];
    snprintf(portarg, sizeof portarg, "--port=%d", port);
    snprintf(pidarg, sizeof pidarg, "--pid-file=%s/dnsmasq.pid", dq.dir);
    snprintf(logpath, sizeof logpath, "%s/dnsmasq.log", dq.dir);
    const char *argv[64] = {"dnsmasq",
                            "--keep-in-foreground",
                            portarg,
                            "--listen-address=127.0.0.1",
                            "--bind-interfaces",
                            "--no-resolv",
                            "--no-hosts",
                            "--conf-file=/dev/null",
                            pidarg,
                            "--local=/aemp.test/",
                            "--log-facility=-",
                            "--log-queries"};
    size_t n = 12;
    for (size_t i = 0; dq_records[i]; i++)
        argv[n++] = dq_records[i];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(path, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* ---- a counting allocator that poisons what it frees ------------------- */

/* Freed blocks are overwritten, so that a use after free reads garbage
 * (and crashes) in every build, not only under AddressSanitizer. */
typedef union blk {
    size_t size;
    max_align_t align;
} blk_t;

static long live_blocks;

static void *p_malloc(size_t n)
{
    blk_t *b = malloc(sizeof *b + n);
    if (!b)
        return NULL;
    b->size = n;
    live_blocks++;
    return b + 1;
}

static void p_free(void *p)
{
    if (!p)
        return;
    blk_t *b = (blk_t *)p - 1;
    memset(p, 0x5a, b->size);
    live_blocks--;
    free(b);
}

static void *p_realloc(void *p, size_t n)
{
    if (!p)
        return p_malloc(n);
    blk_t *b = (blk_t *)p - 1;
    void *q = p_malloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, b->size < n ? b->size : n);
    p_free(p);
    return q;
}

/* ---- resolving ----------------------------------------------------------- */

typedef struct res {
    int calls, status;
    char *resolved, *error;
} res_t;

static void on_res(aemp_node_t *n, int status, const char *resolved,
                   const char *error, void *user)
{
    res_t *r = user;
    assert_non_null(n);
    r->calls++;
    r->status = status;
    free(r->resolved);
    free(r->error);
    r->resolved = resolved ? strdup(resolved) : NULL;
    r->error = error ? strdup(error) : NULL;
}

static int res_called(void *arg)
{
    return ((res_t *)arg)->calls > 0;
}

static void res_clear(res_t *r)
{
    free(r->resolved);
    free(r->error);
    memset(r, 0, sizeof *r);
}

/* Resolves ref on n, waiting for the answer (at most `seconds`). */
static res_t resolve_wait(aemp_node_t *n, const char *ref, double seconds)
{
    res_t r = {0};
    assert_int_equal(aemp_resolve(n, ref, on_res, &r), 0);
    /* the answer always comes from the loop, never from inside the call */
    assert_int_equal(r.calls, 0);
    if (!nt_run_until(aemp_node_loop(n), res_called, &r, seconds))
        fail_msg("no answer for \"%s\" within %.1f s", ref, seconds);
    /* once only */
    nt_run_until(aemp_node_loop(n), res_called, &r, 0.0);
    assert_int_equal(r.calls, 1);
    return r;
}

static aemp_node_t *node_new(uv_loop_t *loop, const char *servers)
{
    aemp_node_t *n;
    aemp_netconf_t c = {.nodename = NODENAME, .dns_servers = servers};
    assert_int_equal(aemp_node_new(&n, loop), 0);
    assert_int_equal(aemp_node_configure(n, &c), 0);
    return n;
}

static void expect(aemp_node_t *n, const char *ref, const char *want)
{
    res_t r = resolve_wait(n, ref, 15);
    if (r.status != 0)
        fail_msg("\"%s\": %s (%s), want \"%s\"", ref, aemp_err_name(r.status),
                 r.error ? r.error : "no text", want);
    assert_non_null(r.resolved);
    if (strcmp(r.resolved, want) != 0)
        fail_msg("\"%s\" resolved to \"%s\", want \"%s\"", ref, r.resolved,
                 want);
    res_clear(&r);
}

static void expect_error(aemp_node_t *n, const char *ref, int status,
                         const char *needle)
{
    res_t r = resolve_wait(n, ref, 15);
    if (r.status != status)
        fail_msg("\"%s\": %s (\"%s\" / %s), want %s", ref,
                 aemp_err_name(r.status), r.resolved ? r.resolved : "",
                 r.error ? r.error : "no text", aemp_err_name(status));
    assert_non_null(r.error);
    assert_true(strlen(r.error) > 0);
    if (needle && !strstr(r.error, needle))
        fail_msg("\"%s\": error text \"%s\" does not mention \"%s\"", ref,
                 r.error, needle);
    res_clear(&r);
}

/* ---- fixture -------------------------------------------------------------- */

static void dq_stop_signal(int sig)
{
    if (dq.pid > 0)
        kill(dq.pid, sig);
    dq.stopped = sig == SIGSTOP;
}

static int dq_answers(uv_loop_t *loop)
{
    aemp_node_t *n = node_new(loop, dq.servers);
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        int st;
        if (waitpid(dq.pid, &st, WNOHANG) == dq.pid) {
            dq.pid = -1; /* it died: the port was taken, probably */
            break;
        }
        res_t r = {0};
        assert_int_equal(aemp_resolve(n, "ready.aemp.test:1", on_res, &r), 0);
        nt_run_until(loop, res_called, &r, 5);
        ok = r.calls && r.status == 0 && r.resolved &&
             !strcmp(r.resolved, "10.9.0.99:1");
        res_clear(&r);
        if (!ok)
            nt_run_for(loop, 0.1); /* not up yet: a short pause, then retry */
    }
    aemp_node_free(n);
    nt_loop_finish(loop);
    return ok;
}

static int group_setup(void **state)
{
    const char *path = dnsmasq_path();
    if (!path) {
        fprintf(stderr, "test_resolve: dnsmasq not found (Debian: apt-get "
                        "install dnsmasq-base; scripts/deps.sh does it)\n");
        return -1;
    }
    snprintf(dq.dir, sizeof dq.dir, "/tmp/aemp-resolve-XXXXXX");
    assert_non_null(mkdtemp(dq.dir));
    chmod(dq.dir, 0755); /* dnsmasq drops root for nobody */
    for (int tries = 0; tries < 5; tries++) {
        dq.port = free_dns_port();
        snprintf(dq.servers, sizeof dq.servers, "127.0.0.1:%d", dq.port);
        dq.pid = dq_spawn(path, dq.port);
        uv_loop_t loop;
        uv_loop_init(&loop);
        if (dq_answers(&loop))
            return 0;
        if (dq.pid > 0) {
            kill(dq.pid, SIGKILL);
            waitpid(dq.pid, NULL, 0);
            dq.pid = -1;
        }
    }
    char log[160];
    snprintf(log, sizeof log, "%s/dnsmasq.log", dq.dir);
    char *text = cp_slurp(log, NULL);
    fprintf(stderr, "test_resolve: dnsmasq did not answer; its log:\n%s\n",
            text ? text : "(none)");
    free(text);
    return -1;
}

static int group_teardown(void **state)
{
    if (dq.pid > 0) {
        kill(dq.pid, SIGCONT);
        kill(dq.pid, SIGTERM);
        waitpid(dq.pid, NULL, 0);
    }
    cp_rm_rf(dq.dir);
    return 0;
}

typedef struct fx {
    uv_loop_t loop;
    aemp_node_t *n;
    long live;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->live = live_blocks;
    uv_loop_init(&f->loop);
    f->n = node_new(&f->loop, dq.servers);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    if (dq.stopped)
        dq_stop_signal(SIGCONT);
    aemp_node_free(f->n);
    nt_loop_finish(&f->loop);
    /* everything the library allocated for the node and its lookups */
    assert_int_equal(live_blocks, f->live);
    free(f);
    return 0;
}

/* ==== the rules of aemp_resolve's header comment ========================== */

static void empty_is_nodename_4040(void **state)
{
    fx_t *f = *state;
    /* A then AAAA */
    expect(f->n, "", "10.9.0.1:4040,[fd00:9::1]:4040");
}

static void naked_port(void **state)
{
    fx_t *f = *state;
    expect(f->n, "1234", "10.9.0.1:1234,[fd00:9::1]:1234");
    expect(f->n, "65535", "10.9.0.1:65535,[fd00:9::1]:65535");
}

/* Every A record before every AAAA record (each family in DNS order,
 * which a resolver may sort: compared as sets). */
static void host_port_a_then_aaaa(void **state)
{
    fx_t *f = *state;
    res_t r = resolve_wait(f->n, "multi.aemp.test:7000", 15);
    assert_int_equal(r.status, 0);
    const char *a1 = "10.9.0.2:7000,10.9.0.3:7000,";
    const char *a2 = "10.9.0.3:7000,10.9.0.2:7000,";
    const char *b1 = "[fd00:9::2]:7000,[fd00:9::3]:7000";
    const char *b2 = "[fd00:9::3]:7000,[fd00:9::2]:7000";
    char want[4][128];
    snprintf(want[0], sizeof want[0], "%s%s", a1, b1);
    snprintf(want[1], sizeof want[1], "%s%s", a1, b2);
    snprintf(want[2], sizeof want[2], "%s%s", a2, b1);
    snprintf(want[3], sizeof want[3], "%s%s", a2, b2);
    int ok = 0;
    for (int i = 0; i < 4; i++)
        ok |= !strcmp(r.resolved, want[i]);
    if (!ok)
        fail_msg("multi.aemp.test:7000 -> \"%s\": want both A records, "
                 "then both AAAA records",
                 r.resolved);
    res_clear(&r);
    /* a name with AAAA records only is not an error */
    expect(f->n, "v6only.aemp.test:9", "[fd00:9::6]:9");
    expect(f->n, "self.aemp.test:1", "10.9.0.1:1,[fd00:9::1]:1");
}

static void numeric_unchanged(void **state)
{
    fx_t *f = *state;
    expect(f->n, "127.0.0.1:4041", "127.0.0.1:4041");
    expect(f->n, "[::1]:4041", "[::1]:4041");
    expect(f->n, "[fd00:9::99]:5", "[fd00:9::99]:5");
    expect(f->n, "10.1.2.3:1,[::1]:2,192.168.0.1:65535",
           "10.1.2.3:1,[::1]:2,192.168.0.1:65535");
}

/* Numeric endpoints need no DNS at all: a node whose DNS server does not
 * exist still resolves them, at once. */
static void numeric_needs_no_server(void **state)
{
    fx_t *f = *state;
    char dead[64];
    snprintf(dead, sizeof dead, "127.0.0.1:%d", free_dns_port());
    aemp_node_t *n = node_new(&f->loop, dead);
    uint64_t t0 = kt_now_ms();
    expect(n, "127.0.0.1:4041,[::1]:4042", "127.0.0.1:4041,[::1]:4042");
    assert_true(kt_now_ms() - t0 < 1000);
    aemp_node_free(n);
}

/* localhost is loopback (RFC 6761), answered without a server. */
static void localhost_is_loopback(void **state)
{
    fx_t *f = *state;
    char dead[64];
    snprintf(dead, sizeof dead, "127.0.0.1:%d", free_dns_port());
    aemp_node_t *n = node_new(&f->loop, dead);
    expect(n, "localhost:4041", "127.0.0.1:4041,[::1]:4041");
    expect(n, "LocalHost:1,a.localhost:2",
           "127.0.0.1:1,[::1]:1,127.0.0.1:2,[::1]:2");
    aemp_node_free(n);
}

static void srv_priority_then_weight(void **state)
{
    fx_t *f = *state;
    /* priority 5; then priority 10 by weight 50, 20, 5 (t1 has an AAAA
     * record too, right after its A record); then priority 20 */
    expect(f->n, "svc.aemp.test",
           "10.9.0.10:5000,10.9.0.11:5001,[fd00:9::11]:5001,"
           "10.9.0.14:5004,10.9.0.12:5002,10.9.0.13:5003");
}

static void host_without_srv_is_4040(void **state)
{
    fx_t *f = *state;
    expect(f->n, "plain.aemp.test", "10.9.0.20:4040");
    expect(f->n, NODENAME, "10.9.0.1:4040,[fd00:9::1]:4040");
}

static void duplicates_dropped_order_kept(void **state)
{
    fx_t *f = *state;
    expect(f->n,
           "dup.aemp.test:7000,10.9.0.5:7000,127.0.0.1:9,dup.aemp.test:7000,"
           "[::1]:9,127.0.0.1:9",
           "10.9.0.5:7000,127.0.0.1:9,[::1]:9");
    /* the order of the components, not of the addresses */
    expect(f->n, "plain.aemp.test:1,127.0.0.1:2,self.aemp.test:3",
           "10.9.0.20:1,127.0.0.1:2,10.9.0.1:3,[fd00:9::1]:3");
    expect(f->n, "127.0.0.1:2,plain.aemp.test:1",
           "127.0.0.1:2,10.9.0.20:1");
    /* "", "4040" and the node name with 4040 are one endpoint list */
    expect(f->n, ",4040," NODENAME ":4040,",
           "10.9.0.1:4040,[fd00:9::1]:4040");
    /* SRV targets repeating each other and another component */
    expect(f->n, "plain.aemp.test,twice.aemp.test",
           "10.9.0.20:4040,10.9.0.10:5000");
}

static void errors_unparsable(void **state)
{
    fx_t *f = *state;
    expect_error(f->n, "foo:bar:baz", AEMP_EINVAL, "foo:bar:baz");
    expect_error(f->n, "[::1", AEMP_EINVAL, NULL);
    expect_error(f->n, "[::1]", AEMP_EINVAL, NULL);
    expect_error(f->n, "[]:4040", AEMP_EINVAL, NULL);
    /* one bad component fails the whole noderef */
    expect_error(f->n, "127.0.0.1:1,foo:bar:baz", AEMP_EINVAL, "foo:bar:baz");
}

static void errors_port_range(void **state)
{
    fx_t *f = *state;
    static const char *const bad[] = {
        "plain.aemp.test:0", "plain.aemp.test:65536", "plain.aemp.test:99999",
        "plain.aemp.test:",  "plain.aemp.test:12a",   "plain.aemp.test:-1",
        "127.0.0.1:0",       "127.0.0.1:65536",       "[::1]:0",
        "[::1]:70000",       "0",                     "65536",
        "99999",             "123456",                NULL};
    for (size_t i = 0; bad[i]; i++)
        expect_error(f->n, bad[i], AEMP_EINVAL, NULL);
}

static void errors_empty_host(void **state)
{
    fx_t *f = *state;
    expect_error(f->n, ":4040", AEMP_EINVAL, ":4040");
}

static void errors_not_found(void **state)
{
    fx_t *f = *state;
    expect_error(f->n, "nosuch.aemp.test:4040", AEMP_ENOTFOUND,
                 "nosuch.aemp.test");
    /* no SRV record and no address either */
    expect_error(f->n, "nosuch.aemp.test", AEMP_ENOTFOUND, "nosuch.aemp.test");
    /* found components do not hide one that is not */
    expect_error(f->n, "plain.aemp.test:1,nosuch2.aemp.test:2",
                 AEMP_ENOTFOUND, "nosuch2.aemp.test");
}

static void bad_arguments(void **state)
{
    fx_t *f = *state;
    res_t r = {0};
    assert_int_equal(aemp_resolve(NULL, "", on_res, &r), AEMP_EINVAL);
    assert_int_equal(aemp_resolve(f->n, NULL, on_res, &r), AEMP_EINVAL);
    assert_int_equal(aemp_resolve(f->n, "", NULL, &r), AEMP_EINVAL);
    nt_run_for(&f->loop, 0.05);
    assert_int_equal(r.calls, 0);
    /* a dns_servers setting that is no address list */
    aemp_node_t *n = node_new(&f->loop, "not an address");
    assert_int_equal(aemp_resolve(n, "plain.aemp.test:1", on_res, &r),
                     AEMP_EINVAL);
    aemp_node_free(n);
}

/* Several lookups at once on one node, and on two nodes of one loop. */
static void concurrent_lookups(void **state)
{
    fx_t *f = *state;
    aemp_node_t *m = node_new(&f->loop, dq.servers);
    res_t r[4] = {{0}};
    assert_int_equal(aemp_resolve(f->n, "svc.aemp.test", on_res, &r[0]), 0);
    assert_int_equal(aemp_resolve(f->n, "plain.aemp.test:3", on_res, &r[1]),
                     0);
    assert_int_equal(aemp_resolve(m, "", on_res, &r[2]), 0);
    assert_int_equal(aemp_resolve(m, "nosuch.aemp.test:1", on_res, &r[3]), 0);
    for (int i = 0; i < 4; i++)
        assert_true(nt_run_until(&f->loop, res_called, &r[i], 15));
    assert_int_equal(r[0].status, 0);
    assert_string_equal(r[0].resolved,
                        "10.9.0.10:5000,10.9.0.11:5001,[fd00:9::11]:5001,"
                        "10.9.0.14:5004,10.9.0.12:5002,10.9.0.13:5003");
    assert_string_equal(r[1].resolved, "10.9.0.20:3");
    assert_string_equal(r[2].resolved, "10.9.0.1:4040,[fd00:9::1]:4040");
    assert_int_equal(r[3].status, AEMP_ENOTFOUND);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i].calls, 1);
        res_clear(&r[i]);
    }
    aemp_node_free(m);
}

/* ==== the loop never blocks ============================================== */

typedef struct ticker {
    uv_timer_t t;
    int ticks;
    uint64_t last, max_gap;
} ticker_t;

static void on_tick(uv_timer_t *t)
{
    ticker_t *k = t->data;
    uint64_t now = kt_now_ms();
    if (k->last && now - k->last > k->max_gap)
        k->max_gap = now - k->last;
    k->last = now;
    k->ticks++;
}

typedef struct tick_wait {
    ticker_t *k;
    res_t *r;
    int want;
} tick_wait_t;

static int ticks_or_answer(void *arg)
{
    tick_wait_t *w = arg;
    return w->k->ticks >= w->want || w->r->calls;
}

static void on_ticker_closed(uv_handle_t *h)
{
    *(int *)h->data = 1;
}

static void ticker_start(ticker_t *k, uv_loop_t *loop)
{
    memset(k, 0, sizeof *k);
    uv_timer_init(loop, &k->t);
    k->t.data = k;
    uv_timer_start(&k->t, on_tick, 20, 20);
}

static void lookup_with_server_stopped(fx_t *f, const char *ref,
                                       const char *want)
{
    ticker_t k;
    res_t r = {0};
    ticker_start(&k, &f->loop);
    dq_stop_signal(SIGSTOP);
    assert_int_equal(aemp_resolve(f->n, ref, on_res, &r), 0);
    tick_wait_t w = {&k, &r, 15};
    nt_run_until(&f->loop, ticks_or_answer, &w, 10);
    /* the timer kept firing (every 20 ms) while the lookup waited */
    if (r.calls)
        fail_msg("\"%s\" answered (%s) while the DNS server was stopped", ref,
                 aemp_err_name(r.status));
    assert_true(k.ticks >= 15);
    assert_true(k.max_gap < 500);
    dq_stop_signal(SIGCONT);
    /* now it completes (or fails, if the resolver gave up meanwhile) */
    assert_true(nt_run_until(&f->loop, res_called, &r, 30));
    assert_int_equal(r.calls, 1);
    if (r.status == 0)
        assert_string_equal(r.resolved, want);
    else
        assert_true(r.error && *r.error);
    /* the timer lives on this stack frame: wait for its close callback */
    int closed = 0;
    k.t.data = &closed;
    uv_close((uv_handle_t *)&k.t, on_ticker_closed);
    assert_true(nt_run_flag(&f->loop, &closed, 5));
    res_clear(&r);
}

static void loop_not_blocked(void **state)
{
    fx_t *f = *state;
    lookup_with_server_stopped(f, "self.aemp.test:1",
                               "10.9.0.1:1,[fd00:9::1]:1");
    lookup_with_server_stopped(
        f, "svc.aemp.test",
        "10.9.0.10:5000,10.9.0.11:5001,[fd00:9::11]:5001,"
        "10.9.0.14:5004,10.9.0.12:5002,10.9.0.13:5003");
    /* and the resolver still works afterwards */
    expect(f->n, "plain.aemp.test:2", "10.9.0.20:2");
}

/* ==== node freed while a lookup is pending ================================ */

static void freed_while_pending(void **state)
{
    fx_t *f = *state;
    res_t r[3] = {{0}}, other = {0};
    aemp_node_t *m = node_new(&f->loop, dq.servers);
    dq_stop_signal(SIGSTOP);
    assert_int_equal(aemp_resolve(f->n, "self.aemp.test:1", on_res, &r[0]), 0);
    assert_int_equal(aemp_resolve(f->n, "svc.aemp.test", on_res, &r[1]), 0);
    assert_int_equal(aemp_resolve(m, "plain.aemp.test:5", on_res, &other), 0);
    /* let the queries go out: they are in flight, unanswered */
    nt_run_for(&f->loop, 0.2);
    assert_int_equal(r[0].calls + r[1].calls + other.calls, 0);
    aemp_node_free(f->n);
    f->n = NULL;
    /* a lookup started and freed before the loop ever ran */
    aemp_node_t *q = node_new(&f->loop, dq.servers);
    assert_int_equal(aemp_resolve(q, "plain.aemp.test:6", on_res, &r[2]), 0);
    aemp_node_free(q);
    dq_stop_signal(SIGCONT);
    /* the other node on the same loop still gets its answer */
    assert_true(nt_run_until(&f->loop, res_called, &other, 30));
    assert_int_equal(other.status, 0);
    assert_string_equal(other.resolved, "10.9.0.20:5");
    nt_run_for(&f->loop, 0.2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].calls, 0);
    aemp_node_free(m);
    res_clear(&other);
    /* teardown: the loop closes cleanly and nothing is left allocated */
}

/* The usual way to use a resolver: get the answer, then free the node.
 * The job's handle is still closing then (the answer arrives in the last
 * timer phase of a loop iteration), and libuv runs close callbacks in
 * reverse order: nothing may reach the resolver from them. */
static void freed_right_after_answer(void **state)
{
    fx_t *f = *state;
    res_t r = resolve_wait(f->n, "plain.aemp.test:7", 15);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.resolved, "10.9.0.20:7");
    res_clear(&r);
    aemp_node_free(f->n);
    f->n = NULL;
    nt_run_for(&f->loop, 0.05);
}

int main(void)
{
    aemp_set_allocator(p_malloc, p_realloc, p_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(empty_is_nodename_4040, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(naked_port, setup, teardown),
        cmocka_unit_test_setup_teardown(host_port_a_then_aaaa, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(numeric_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(numeric_needs_no_server, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(localhost_is_loopback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(srv_priority_then_weight, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(host_without_srv_is_4040, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(duplicates_dropped_order_kept, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(errors_unparsable, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_port_range, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_empty_host, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(loop_not_blocked, setup, teardown),
        cmocka_unit_test_setup_teardown(freed_while_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(freed_right_after_answer, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
