/* net_zmq: the ZeroMQ contender of bench_net (libzmq, Debian's
 * libzmq3-dev), moving the aemp packet's bytes (net_wire.h) as one ZeroMQ
 * message each, over TCP on loopback.
 *
 *   net_zmq pull      binds a PULL socket (data) and a PUSH socket (acks)
 *                     on 127.0.0.1, prints "port <data> <acks>", then: a
 *                     header message (the count), ack "r", count messages,
 *                     ack "d".
 *   net_zmq push DATA ACKS COUNT
 *                     one-way: zmq_send() per message (libzmq batches them
 *                     on the wire itself).
 *   net_zmq rep       binds a REP socket, prints "port <endpoint>", echoes.
 *   net_zmq req ENDPOINT COUNT
 *                     round trips, after one untimed warm-up.
 * The clients print "result <wall-s> <CPU-s>", timed from the "r" ack
 * (or the warm-up) to the last reply. */
#include "net_wire.h"

#include <stdint.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *sock(void *ctx, int type, const char *connect_to)
{
    void *s = zmq_socket(ctx, type);
    int hwm = 0; /* no ZeroMQ-side message limit: TCP paces the sender */
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    int rc = connect_to ? zmq_connect(s, connect_to)
                        : zmq_bind(s, "tcp://127.0.0.1:*");
    if (rc != 0) {
        fprintf(stderr, "net_zmq: %s\n", zmq_strerror(zmq_errno()));
        exit(2);
    }
    return s;
}

static const char *endpoint(void *s)
{
    static char buf[2][128];
    static int k;
    size_t len = sizeof buf[0];
    char *b = buf[k++ % 2];
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, b, &len);
    return b;
}

static void recv_or_die(void *s, void *buf, size_t len)
{
    if (zmq_recv(s, buf, len, 0) < 0) {
        fprintf(stderr, "net_zmq: recv: %s\n", zmq_strerror(zmq_errno()));
        exit(2);
    }
}

static int pull(void *ctx)
{
    void *data = sock(ctx, ZMQ_PULL, NULL), *acks = sock(ctx, ZMQ_PUSH, NULL);
    printf("port %s %s\n", endpoint(data), endpoint(acks));
    fflush(stdout);
    uint64_t count;
    char buf[256];
    recv_or_die(data, &count, sizeof count);
    zmq_send(acks, "r", 1, 0);
    for (uint64_t i = 0; i < count; i++)
        recv_or_die(data, buf, sizeof buf);
    zmq_send(acks, "d", 1, 0);
    zmq_close(data);
    zmq_close(acks);
    return 0;
}

static int rep(void *ctx)
{
    void *s = sock(ctx, ZMQ_REP, NULL);
    printf("port %s\n", endpoint(s));
    fflush(stdout);
    char buf[256];
    for (;;) {
        int n = zmq_recv(s, buf, sizeof buf, 0);
        if (n < 0 || zmq_send(s, buf, (size_t)n, 0) < 0)
            return 1;
    }
}

static void result(double t0, double c0)
{
    printf("result %.6f %.6f\n", clock_s(CLOCK_MONOTONIC) - t0,
           clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0);
}

static int push(void *ctx, const char *data_ep, const char *acks_ep,
                uint64_t count, const char *pkt, size_t len)
{
    void *data = sock(ctx, ZMQ_PUSH, data_ep), *acks = sock(ctx, ZMQ_PULL, acks_ep);
    char c;
    zmq_send(data, &count, sizeof count, 0);
    recv_or_die(acks, &c, 1);
    double t0 = clock_s(CLOCK_MONOTONIC);
    double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (uint64_t i = 0; i < count; i++)
        zmq_send(data, pkt, len, 0);
    recv_or_die(acks, &c, 1);
    result(t0, c0);
    zmq_close(data);
    zmq_close(acks);
    return 0;
}

static int req(void *ctx, const char *ep, uint64_t count, const char *pkt,
               size_t len)
{
    void *s = sock(ctx, ZMQ_REQ, ep);
    char buf[256];
    zmq_send(s, pkt, len, 0);
    recv_or_die(s, buf, sizeof buf);
    double t0 = clock_s(CLOCK_MONOTONIC);
    double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (uint64_t i = 0; i < count; i++) {
        zmq_send(s, pkt, len, 0);
        recv_or_die(s, buf, sizeof buf);
    }
    result(t0, c0);
    if (memcmp(buf, pkt, len) != 0) {
        fprintf(stderr, "net_zmq: echo differs\n");
        return 1;
    }
    zmq_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    char *pkt;
    size_t len;
    bench_packet(&pkt, &len);
    void *ctx = zmq_ctx_new();
    int rc = 2;
    if (argc == 2 && strcmp(argv[1], "pull") == 0)
        rc = pull(ctx);
    else if (argc == 2 && strcmp(argv[1], "rep") == 0)
        rc = rep(ctx);
    else if (argc == 5 && strcmp(argv[1], "push") == 0)
        rc = push(ctx, argv[2], argv[3], strtoull(argv[4], NULL, 10), pkt, len);
    else if (argc == 4 && strcmp(argv[1], "req") == 0)
        rc = req(ctx, argv[2], strtoull(argv[3], NULL, 10), pkt, len);
    else
        fprintf(stderr, "usage: net_zmq pull | rep | push DATA ACKS COUNT | "
                        "req ENDPOINT COUNT\n");
    aemp_free(pkt);
    zmq_ctx_term(ctx);
    return rc;
}
