/* net_raw: the minimal C baseline of bench_net — plain blocking sockets on
 * loopback moving the aemp packet's bytes (net_wire.h), no framing work.
 *
 *   net_raw serve
 *       listens on 127.0.0.1 (any port), prints "port <n>", then serves one
 *       connection: reads the 8-byte run header (count, mode), answers one
 *       byte ("ready"), then either counts count × packet bytes and answers
 *       one byte (mode 0: sink) or echoes count packets one by one (mode 1).
 *   net_raw send PORT COUNT each|batch
 *       one-way: one write() per message (each), or messages packed into
 *       64 KiB writes (batch: what any batching sender can approach).
 *   net_raw ping PORT COUNT
 *       round trips: write one packet, read its echo.
 * Both client modes print "result <wall-s> <CPU-s>", timed from the
 * "ready" byte to the last byte back.  TCP_NODELAY on both ends. */
#include "net_wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void read_full(int fd, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r <= 0)
            die("read");
        got += (size_t)r;
    }
}

static void write_full(int fd, const void *buf, size_t len)
{
    for (size_t done = 0; done < len;) {
        ssize_t w = write(fd, (const char *)buf + done, len - done);
        if (w <= 0)
            die("write");
        done += (size_t)w;
    }
}

static int serve(const char *pkt, size_t len)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(ls, 1) < 0 || getsockname(ls, (struct sockaddr *)&a, &alen))
        die("listen");
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    int fd = accept(ls, NULL, NULL);
    if (fd < 0)
        die("accept");
    nodelay(fd);
    uint64_t hdr[2];
    read_full(fd, hdr, sizeof hdr);
    write_full(fd, "r", 1);
    if (hdr[1] == 1) {
        char *b = malloc(len);
        for (uint64_t i = 0; i < hdr[0]; i++) {
            read_full(fd, b, len);
            write_full(fd, b, len);
        }
        free(b);
    } else {
        static char b[65536];
        uint64_t want = hdr[0] * len, got = 0;
        while (got < want) {
            ssize_t r = read(fd, b, sizeof b);
            if (r <= 0)
                die("read");
            got += (uint64_t)r;
        }
        write_full(fd, "d", 1);
    }
    (void)pkt;
    close(fd);
    close(ls);
    return 0;
}

static int dial(int port, uint64_t count, uint64_t mode)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    nodelay(fd);
    uint64_t hdr[2] = {count, mode};
    char c;
    write_full(fd, hdr, sizeof hdr);
    read_full(fd, &c, 1);
    return fd;
}

static int client(int port, uint64_t count, const char *how, const char *pkt,
                  size_t len)
{
    int ping = strcmp(how, "ping") == 0, batch = strcmp(how, "batch") == 0;
    int fd = dial(port, count, ping);
    char *b = malloc(65536);
    size_t per = 65536 / len, fill = 0;
    for (size_t i = 0; i < per; i++)
        memcpy(b + i * len, pkt, len);
    double t0 = clock_s(CLOCK_MONOTONIC);
    double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (uint64_t i = 0; i < count; i++) {
        if (ping) {
            write_full(fd, pkt, len);
            read_full(fd, b, len);
        } else if (!batch) {
            write_full(fd, pkt, len);
        } else if (++fill == per || i + 1 == count) {
            write_full(fd, b, fill * len);
            fill = 0;
        }
    }
    char c;
    if (!ping)
        read_full(fd, &c, 1);
    double wall = clock_s(CLOCK_MONOTONIC) - t0;
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    if (ping && memcmp(b, pkt, len) != 0) {
        fprintf(stderr, "net_raw: echo differs\n");
        return 1;
    }
    printf("result %.6f %.6f\n", wall, cpu);
    free(b);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    char *pkt;
    size_t len;
    bench_packet(&pkt, &len);
    if (argc == 2 && strcmp(argv[1], "serve") == 0)
        return serve(pkt, len);
    if (argc == 5 && strcmp(argv[1], "send") == 0)
        return client(atoi(argv[2]), strtoull(argv[3], NULL, 10), argv[4],
                      pkt, len);
    if (argc == 4 && strcmp(argv[1], "ping") == 0)
        return client(atoi(argv[2]), strtoull(argv[3], NULL, 10), "ping",
                      pkt, len);
    fprintf(stderr, "usage: net_raw serve | send PORT COUNT each|batch | "
                    "ping PORT COUNT\n");
    return 2;
}
