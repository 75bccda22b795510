/* What the raw-TCP and ZeroMQ peers of bench_net send: the bytes of the
 * aemp packet that carries the benchmark message, so that every contender
 * moves the same frame.  A packet is [<port name>, <message>...]
 * (PROTOCOL.md §6); the name has the length of a real port name
 * (10-character cookie, ".", counter). */
#ifndef AEMP_BENCH_NET_WIRE_H
#define AEMP_BENCH_NET_WIRE_H

#include <aemp.h>

#include <stdio.h>
#include <stdlib.h>

/* The CBOR packet ["abcdefghij.1", "tag", 12345, "sixteen-byte-str"]
 * (37 bytes); *buf is the caller's (aemp_free).  Exits on failure. */
static inline void bench_packet(char **buf, size_t *len)
{
    aemp_msg_t *m;
    if (aemp_msg_new(&m, "ssis", "abcdefghij.1", "tag", 12345,
                     "sixteen-byte-str") < 0 ||
        aemp_msg_encode(m, AEMP_CBOR, buf, len) < 0) {
        fprintf(stderr, "bench: cannot encode the packet\n");
        exit(2);
    }
    aemp_msg_unref(m);
}

#endif
