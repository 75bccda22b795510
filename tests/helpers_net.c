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

void nt_hosts_make(const char *who, const char *const ns[2],
                   const char *const veth[2], const char *const addr[2],
                   int ns_made[2], int *veth_made)
{
    if (!nt_ip_path())
        fail_msg("%s: no `ip` (iproute2) found", who);
    if (nt_ip("netns", "add", ns[0], (const char *)NULL) < 0)
        fail_msg("%s: network namespaces are not permitted here (ip netns "
                 "add failed; the suite runs as root)",
                 who);
    ns_made[0] = 1;
    assert_int_equal(nt_ip("netns", "add", ns[1], (const char *)NULL), 0);
    ns_made[1] = 1;
    assert_int_equal(nt_ip("link", "add", veth[0], "type", "veth", "peer",
                           "name", veth[1], (const char *)NULL),
                     0);
    *veth_made = 1;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            nt_ip("link", "set", veth[i], "netns", ns[i], (const char *)NULL),
            0);
        assert_int_equal(nt_ip("-n", ns[i], "addr", "add", addr[i], "dev",
                               veth[i], (const char *)NULL),
                         0);
        assert_int_equal(nt_ip("-n", ns[i], "link", "set", veth[i], "up",
                               (const char *)NULL),
                         0);
        assert_int_equal(
            nt_ip("-n", ns[i], "link", "set", "lo", "up", (const char *)NULL),
            0);
    }
}

void nt_hosts_del(const char *const ns[2], const char *veth0,
                  const int ns_made[2], int veth_made)
{
    if (veth_made && !ns_made[0] && !ns_made[1])
        nt_ip("link", "del", veth0, (const char *)NULL);
    for (int i = 0; i < 2; i++)
        if (ns_made[i])
            nt_ip("netns", "del", ns[i], (const char *)NULL);
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
