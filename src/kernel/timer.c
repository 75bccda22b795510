/* after / call_in: running code later, in a port's context. */
#include "kernel.h"

#include <string.h>

struct aemp__timer {
    uv_timer_t h;
    aemp_node_t *node;
    struct aemp__timer *next, *prev;
    char *dst;       /* after_snd: destination */
    aemp_msg_t *msg; /* after_snd: message */
    uint64_t counter; /* after_call: port */
    aemp_task_fn fn;
    void *user;
};

static void timer_unlink(aemp_node_t *n, struct aemp__timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        n->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct aemp__timer *t = h->data;
    aemp_node_t *n = t->node;
    aemp__free(t->dst);
    aemp_msg_unref(t->msg);
    aemp__free(t);
    aemp__node_handle_closed(n);
}

static void timer_close(struct aemp__timer *t)
{
    aemp__node_close(t->node, (uv_handle_t *)&t->h, on_timer_closed);
}

static void on_timer(uv_timer_t *h)
{
    struct aemp__timer *t = h->data;
    aemp_node_t *n = t->node;
    timer_unlink(n, t);
    if (t->msg) {
        int rc = aemp__send(n, t->dst, t->msg);
        if (rc < 0)
            aemp__log(n, AEMP_LOG_WARN, "after: cannot send to %s: %s",
                      t->dst, aemp_strerror(rc));
    } else {
        aemp__port_t *p = aemp__port_get(n, t->counter);
        if (p)
            aemp__run_in(n, p, NULL, t->fn, NULL, t->user);
    }
    timer_close(t);
}

static int timer_start(aemp_node_t *n, double seconds, struct aemp__timer *t)
{
    if (!(seconds >= 0) || seconds > 1e9) {
        aemp__free(t->dst);
        aemp_msg_unref(t->msg);
        aemp__free(t);
        return AEMP_EINVAL;
    }
    uv_timer_init(n->loop, &t->h);
    t->h.data = t;
    t->node = n;
    t->next = n->timers;
    if (t->next)
        t->next->prev = t;
    n->timers = t;
    /* at least 1 ms: libuv runs a timer re-armed for "now" from a timer
     * callback in the same pass, so a zero-delay timer that re-arms
     * itself would never let the loop go on */
    uint64_t ms = (uint64_t)(seconds * 1000.0 + 0.5);
    uv_timer_start(&t->h, on_timer, ms ? ms : 1, 0);
    return 0;
}

int aemp_after_snd(aemp_node_t *n, double seconds, const char *port,
                   const char *picture, ...)
{
    if (!n || !port)
        return AEMP_EINVAL;
    uint64_t counter;
    int rc = aemp__port_locate(n, port, &counter);
    if (rc < 0)
        return rc;
    struct aemp__timer *t = aemp__calloc(1, sizeof *t);
    if (!t || !(t->dst = aemp__strdup(port))) {
        aemp__free(t);
        return AEMP_ENOMEM;
    }
    va_list ap;
    va_start(ap, picture);
    rc = aemp__msg_vnew(&t->msg, picture, ap);
    va_end(ap);
    if (rc < 0) {
        aemp__free(t->dst);
        aemp__free(t);
        return rc;
    }
    return timer_start(n, seconds, t);
}

int aemp_after_call(aemp_node_t *n, double seconds, const char *port,
                    aemp_task_fn fn, void *user)
{
    aemp__port_t *p;
    if (!n || !fn)
        return AEMP_EINVAL;
    int rc = aemp__port_find(n, port, &p);
    if (rc < 0)
        return rc;
    struct aemp__timer *t = aemp__calloc(1, sizeof *t);
    if (!t)
        return AEMP_ENOMEM;
    t->counter = p->counter;
    t->fn = fn;
    t->user = user;
    return timer_start(n, seconds, t);
}

int aemp_call_in(aemp_node_t *n, const char *port, aemp_task_fn fn, void *user)
{
    aemp__port_t *p;
    if (!n || !fn)
        return AEMP_EINVAL;
    int rc = aemp__port_find(n, port, &p);
    if (rc < 0)
        return rc;
    aemp__run_in(n, p, NULL, fn, NULL, user);
    return 0;
}

void aemp__timers_close(aemp_node_t *n)
{
    struct aemp__timer *t;
    while ((t = n->timers)) {
        timer_unlink(n, t);
        timer_close(t);
    }
}
