/* AnyEvent::MP 1.30's Global service, answered well enough that 1.30
 * nodes learn our addresses and we theirs (GLOBAL-NOTES in PROTOCOL.md
 * §10.5).  Placeholder until written: 1.30 peers stay outside. */
#include "global.h"

void aemp__perl130_node_up(aemp__global_t *g, aemp__peer_t *p)
{
}

int aemp__perl130_register(aemp_node_t *n)
{
    return 0;
}
