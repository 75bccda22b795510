/* Shared helpers for the cmocka test executables. */
#ifndef AEMP_TEST_HELPERS_H
#define AEMP_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the headers above first */
#include <cmocka.h>

#include <aemp.h>

/* ---- kernel tests (kt_*): recorders, message checks, allocator -------- */
#include <stdio.h>
#include <uv.h>

/* One thing a tap saw: a message (SELF in port) or a death (the dead port
 * in port, the reason in msg).  msg is a private copy, never a view. */
typedef struct kt_event {
    const char *label;
    char *port;
    aemp_msg_t *msg;
} kt_event_t;

/* Every tap writes into one recorder, so the order of events across ports
 * and monitors can be checked. */
typedef struct kt_rec {
    kt_event_t *ev;
    size_t n, cap;
} kt_rec_t;

/* The user pointer of kt_tap_rcv / kt_tap_mon.  ret is what kt_tap_rcv
 * returns (0: success). */
typedef struct kt_tap {
    kt_rec_t *rec;
    const char *label;
    int ret;
} kt_tap_t;

/* aemp_rcv_fn: records (label, SELF, copy of msg). */
int kt_tap_rcv(aemp_ctx_t *ctx, const aemp_msg_t *msg, void *tap);
/* aemp_mon_fn: records (label, port, copy of reason). */
void kt_tap_mon(aemp_node_t *n, const char *port, const aemp_msg_t *reason,
                void *tap);
void kt_rec_add(kt_rec_t *r, const char *label, const char *port,
                const aemp_msg_t *msg);
void kt_rec_free(kt_rec_t *r);
size_t kt_rec_count(const kt_rec_t *r, const char *label);
/* The i-th event with that label (NULL label: any), NULL if none. */
const kt_event_t *kt_rec_nth(const kt_rec_t *r, const char *label, size_t i);
/* Index in r->ev of the i-th event with that label, or -1. */
long kt_rec_index(const kt_rec_t *r, const char *label, size_t i);

/* A deep copy of a message (through the library's allocator). */
aemp_msg_t *kt_msg_copy(const aemp_msg_t *m);
/* 1 if m equals the message built from picture (prints both if not). */
int kt_msg_is(const aemp_msg_t *m, const char *picture, ...);
void kt_val_print(FILE *f, const aemp_val_t *v);

/* A log hook collecting lines into a kt_rec (label "log", msg ["<level>",
 * "<text>"] as ["i", "s"]). */
void kt_log_rec(aemp_node_t *n, int level, const char *text, void *rec);
/* 1 if some recorded log text contains needle. */
int kt_log_has(const kt_rec_t *r, const char *needle);

/* Counting allocator for failure injection.  kt_alloc_install() once, in
 * main() before any other aemp call.  kt_alloc_fail(n, sticky): the n-th
 * allocation from now fails (and with sticky every one after it); 0 never.
 * kt_alloc_live(): blocks allocated through the hook and not yet freed. */
void kt_alloc_install(void);
void kt_alloc_fail(size_t n, int sticky);
/* Stops failing; the counts stay readable. */
void kt_alloc_disarm(void);
size_t kt_alloc_count(void);
size_t kt_alloc_failed(void);
long kt_alloc_live(void);

/* Monotonic milliseconds. */
uint64_t kt_now_ms(void);

/* A new node with a loop of its own; fails the test if it cannot make one. */
aemp_node_t *kt_node_new(void);
/* A new port on n (aemp_port); its ID, the library's copy. */
const char *kt_port(aemp_node_t *n, aemp_rcv_fn cb, void *user);

#endif

/* ---- allocation failure injection (codec/value tests) ----------------- */

/* Installs (aemp_set_allocator) an allocator that fails the n-th
 * allocation from now on (malloc or realloc; n = 0: never fails) and counts
 * live blocks.  helper_alloc_end() restores the C library's allocator and
 * returns the number of blocks still live (leaks). */
void helper_alloc_begin(long fail_at);
/* Allocations attempted since helper_alloc_begin, and whether the planned
 * failure has happened. */
long helper_alloc_attempts(void);
int helper_alloc_failed(void);
long helper_alloc_end(void);
/* Runs run() with its 1st, 2nd, ... allocation failing until a run has
 * no failure left, asserting that no run leaks; returns the number of
 * runs (allocations of a full run + 1). */
long helper_alloc_sweep(void (*run)(void));

/* ---- network tests (nt_*): driving a loop until something happens ------ */

/* A condition checked after every loop iteration. */
typedef int (*nt_cond_fn)(void *arg);

/* Runs loop one iteration at a time until cond(arg) is true or `seconds`
 * have passed (monotonic).  Returns cond(arg) at the end.  A timer wakes
 * the loop at the deadline, so a condition changed only by loop callbacks
 * never needs polling; `tick_ms` > 0 adds a periodic wake-up for conditions
 * that change outside the loop (another process). */
int nt_run_until_tick(uv_loop_t *loop, nt_cond_fn cond, void *arg,
                      double seconds, unsigned tick_ms);
int nt_run_until(uv_loop_t *loop, nt_cond_fn cond, void *arg, double seconds);
/* Until *flag is non-zero. */
int nt_run_flag(uv_loop_t *loop, const int *flag, double seconds);
/* Runs the loop for `seconds`, whatever happens (for "nothing happens
 * within" checks only, never as synchronisation). */
void nt_run_for(uv_loop_t *loop, double seconds);
/* iproute2's `ip` (for network namespaces), NULL if not installed. */
const char *nt_ip_path(void);
/* A TCP port on 127.0.0.1 that was free a moment ago. */
int nt_free_port(void);
/* Closes every handle still open on loop (walk), runs it dry and checks
 * uv_loop_close() returns 0. */
void nt_loop_finish(uv_loop_t *loop);
/* Makes n listen on ref, or with ref NULL on a free port of 127.0.0.1,
 * and writes the noderef it listens on into buf.  While the address is
 * taken (AEMP_ESYS) it tries again, up to `tries` times in all (a new free
 * port each time; for a fixed ref after a pause, in case its previous
 * listener is still closing).  Fails the test if it cannot listen. */
void nt_listen(uv_loop_t *loop, aemp_node_t *n, const char *ref, char *buf,
               size_t size, int tries);

/* ---- child processes (cp_*): spawn, capture output, wait with deadlines -- */
#ifndef AEMP_TEST_HELPERS_CP_H
#define AEMP_TEST_HELPERS_CP_H
#include <uv.h>

/* A child started with uv_spawn on a loop; stdout and stderr are collected
 * into NUL-terminated buffers (obuf/ebuf, never NULL) as the loop runs. */
typedef struct cp_child {
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_loop_t *loop;
    char *obuf, *ebuf;
    size_t olen, elen;
    int exited, out_eof, err_eof, closing;
    int64_t status;
    int signal;
    int pid;
    uint64_t started_ms, exited_ms; /* kt_now_ms() after spawn / at exit */
    char name[160];
} cp_child_t;

/* Starts file (looked up in PATH) with argv (argv[0] first, NULL-terminated)
 * on loop; fails the test if it cannot start. */
cp_child_t *cp_spawn(uv_loop_t *loop, const char *file,
                     const char *const *argv);
/* The same with the environment env (NULL-terminated "NAME=value"; NULL:
 * ours). */
cp_child_t *cp_spawn_env(uv_loop_t *loop, const char *file,
                         const char *const *argv, char **env);
/* 1 once the child exited and both pipes reached EOF (an nt_cond_fn). */
int cp_done(void *child);
/* Runs the loop until the child is done or `seconds` passed; 1 if done. */
int cp_await_exit(cp_child_t *c, double seconds);
/* Like cp_await_exit, but a child still running after `seconds` is killed,
 * dumped and fails the test. */
void cp_expect_exit(cp_child_t *c, double seconds);
/* Fails the test (after dumping the child) unless it exited with status,
 * without a signal. */
void cp_expect_status(const cp_child_t *c, int status);
/* The first line of the child's stdout (without LF) into buf; fails the
 * test if there is no complete line or it does not fit. */
void cp_first_line(const cp_child_t *c, char *buf, size_t size);
/* Runs the loop until stdout holds `count` copies of needle (or the child
 * exited); 1 if it does. */
int cp_await_stdout(cp_child_t *c, const char *needle, int count,
                    double seconds);
int cp_await_stderr(cp_child_t *c, const char *needle, int count,
                    double seconds);
/* Occurrences of needle in hay (NULL hay: 0). */
int cp_count(const char *hay, const char *needle);
/* Prints the child's name, exit status and output to stderr. */
void cp_dump(const cp_child_t *c);
/* Sends a signal (if it still runs). */
void cp_kill(cp_child_t *c, int signum);
/* SIGKILLs it if still running, reaps it, closes its handles; the memory
 * goes when the loop runs the close callbacks (nt_loop_finish does). */
void cp_free(cp_child_t *c);

/* A finished command: status/signal and its whole output (malloc'd). */
typedef struct cp_result {
    int status, signal, timed_out;
    char *out, *err;
} cp_result_t;
/* Runs file argv to completion on a private loop, killing it after
 * `seconds`.  Free with cp_result_free. */
cp_result_t cp_run(const char *file, const char *const *argv, double seconds);
void cp_result_free(cp_result_t *r);
/* Reads a whole file (malloc'd, NUL-terminated; *len may be NULL), NULL if
 * it cannot be read. */
char *cp_slurp(const char *path, size_t *len);
/* Writes text to path (mode 0644), fails the test on error. */
void cp_write_file(const char *path, const char *text);
/* Removes a directory tree (rm -rf); missing is fine. */
void cp_rm_rf(const char *path);
/* Sets LC_NUMERIC to a locale whose decimal point is ',' (dir receives a
 * directory made for it, or ""), failing the test if there is none;
 * kt_comma_locale_done restores "C" and removes dir. */
void kt_comma_locale(char *dir, size_t dirlen);
void kt_comma_locale_done(const char *dir);

/* ---- network namespaces (iproute2; root) --------------------------------- */

/* Runs `ip args...` (NULL-terminated); 0 on success, else -1 with the
 * command and its error on standard error. */
int nt_ip(const char *first, ...);
/* Deletes the namespaces "<prefix><pid>-<n>" whose creating process is
 * gone (runs that died before their teardown). */
void nt_netns_reap(const char *prefix);
/* Two hosts: namespaces ns[0] and ns[1] joined by the veth pair veth[0]
 * (in ns[0], with address addr[0], "ip/len") and veth[1] (ns[1],
 * addr[1]), both up, and lo up in each.  What was made is marked in
 * ns_made / *veth_made for nt_hosts_del; a failure fails the test saying
 * why (`who`: the test's name), never skips it. */
void nt_hosts_make(const char *who, const char *const ns[2],
                   const char *const veth[2], const char *const addr[2],
                   int ns_made[2], int *veth_made);
/* Deletes what nt_hosts_make made (a namespace takes its veth end, and so
 * the pair, with it). */
void nt_hosts_del(const char *const ns[2], const char *veth0,
                  const int ns_made[2], int veth_made);

/* ---- JSON that commands print (jansson) ----------------------------------- */

typedef struct json_t json_t;
/* The JSON array text holds (yours: json_decref), or NULL. */
json_t *nt_json_array(const char *text);
/* 1 if some element of the array a is the string s. */
int nt_json_has_str(const json_t *a, const char *s);

#endif
