/* The shared test helpers that need the network layer: kept apart from
 * helpers.c so that the kernel's tests link against the kernel alone. */
#include "helpers.h"

#include <jansson.h>
#include <string.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

void nt_listen(uv_loop_t *loop, aemp_node_t *n, const char *ref, char *buf,
               size_t size, int tries)
{
    int rc = AEMP_ESYS;
    for (int k = 0; rc == AEMP_ESYS && k < tries; k++) {
        if (ref)
            snprintf(buf, size, "%s", ref);
        else
            snprintf(buf, size, "127.0.0.1:%d", nt_free_port());
        rc = aemp_node_listen(n, buf);
        if (rc == AEMP_ESYS && ref)
            nt_run_for(loop, 0.05); /* the old listener is still closing */
    }
    assert_int_equal(rc, 0);
}

const char *nt_ip_path(void)
{
    static const char *const paths[] = {"/usr/sbin/ip", "/sbin/ip",
                                        "/usr/bin/ip", "/bin/ip", NULL};
    for (size_t i = 0; paths[i]; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* ---- JSON that commands print ------------------------------------------ */

json_t *nt_json_array(const char *text)
{
    json_error_t e;
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, &e) : NULL;
    if (j && !json_is_array(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

int nt_json_has_str(const json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && !strcmp(json_string_value(v), s))
            return 1;
    }
    return 0;
}

/* ---- network namespaces -------------------------------------------------- */

int nt_ip(const char *first, ...)
{
    const char *argv[24] = {nt_ip_path(), first};
    size_t n = 2;
    va_list ap;
    va_start(ap, first);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 23)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    if (!argv[0])
        return -1;
    cp_result_t r = cp_run(argv[0], argv, 30);
    int rc = r.status || r.signal || r.timed_out ? -1 : 0;
    if (rc) {
        fprintf(stderr, "ip");
        for (size_t i = 1; argv[i]; i++)
            fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, ": exit %d: %s", r.status, r.err);
    }
    cp_result_free(&r);
    return rc;
}

void nt_netns_reap(const char *prefix)
{
    if (!nt_ip_path())
        return;
    const char *argv[] = {nt_ip_path(), "netns", "list", NULL};
    cp_result_t r = cp_run(argv[0], argv, 30);
    char fmt[96];
    snprintf(fmt, sizeof fmt, "%s%%ld-%%*d", prefix);
    for (char *line = r.out; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        long pid;
        char name[64];
        if (sscanf(line, fmt, &pid) == 1 && sscanf(line, "%63s", name) == 1 &&
            pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
            nt_ip("netns", "del", name, (const char *)NULL);
        line = nl ? nl + 1 : NULL;
    }
    cp_result_free(&r);
}
