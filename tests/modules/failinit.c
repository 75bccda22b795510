/* A module whose entry point fails: its reason must reach the spawner. */
#include <aemp.h>

int aemp_module_init(aemp_node_t *n);

int aemp_module_init(aemp_node_t *n) { return AEMP_EPERM; }
