/* Per-node logging through a user hook (default: standard error). */
#include "kernel.h"

#include <stdio.h>

static void log_stderr(aemp_node_t *n, int level, const char *text,
                       void *user)
{
    static const char *const names[] = {"?", "error", "warn", "info", "debug"};
    fprintf(stderr, "aemp[%s] %s: %s\n", aemp_noderef(n),
            names[level >= 1 && level <= 4 ? level : 0], text);
}

void aemp_node_set_log(aemp_node_t *n, int level, aemp_log_fn fn, void *user)
{
    n->log_fn = fn ? fn : log_stderr;
    n->log_user = fn ? user : NULL;
    n->log_level = level;
}

void aemp__log(aemp_node_t *n, int level, const char *fmt, ...)
{
    if (level > n->log_level)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    n->log_fn(n, level, buf, n->log_user);
}
