/* The shared test helpers that need the network layer: kept apart from
 * helpers.c so that the kernel's tests link against the kernel alone. */
#include "helpers.h"

#include <jansson.h>
#include <string.h>

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
