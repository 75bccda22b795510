/* Port groups, as AnyEvent::MP 2.x's compatibility wrappers: a group is a
 * family whose keys are the members' port IDs (values null). */
#include "global.h"

int aemp_grp_reg(aemp_node_t *n, const char *group, const char *port,
                 aemp_mon_t **guard)
{
    return aemp_db_reg(n, group, port, NULL, guard);
}

int aemp_grp_get(aemp_node_t *n, const char *group, double timeout,
                 aemp_db_fn fn, void *user)
{
    return aemp_db_keys(n, group, timeout, fn, user);
}

int aemp_grp_mon(aemp_node_t *n, const char *group, aemp_grp_mon_fn fn,
                 void *user, aemp_mon_t **guard)
{
    return aemp__global_watch_grp(n, group, fn, user, guard);
}
