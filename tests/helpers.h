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
/* A TCP port on 127.0.0.1 that was free a moment ago. */
int nt_free_port(void);
/* Closes every handle still open on loop (walk), runs it dry and checks
 * uv_loop_close() returns 0. */
void nt_loop_finish(uv_loop_t *loop);
