/* The framing table (src/codec/codec.h: aemp__framing) and the CBOR
 * decoder under failing allocations: the streaming reader over
 * multi-packet inputs, and aemp_msg_decode on each packet. */
#include "helpers.h"

#include "codec.h"

#include <stdlib.h>
#include <string.h>

static const aemp_framing_t both[] = {AEMP_JSON, AEMP_CBOR};

/* ---- the table ----------------------------------------------------------- */

static void framing_rows(void **state)
{
    const char *names[] = {"json", "cbor"};
    for (size_t k = 0; k < 2; k++) {
        const aemp__framing_t *fr = aemp__framing(both[k]);
        assert_non_null(fr);
        assert_int_equal(fr->id, both[k]);
        assert_string_equal(fr->name, names[k]);
        assert_ptr_equal(aemp__framing_named(names[k], 4), fr);
        assert_non_null(fr->encode);
        assert_non_null(fr->decode);
        assert_non_null(fr->scan);
    }
    assert_null(aemp__framing((aemp_framing_t)0));
    assert_null(aemp__framing((aemp_framing_t)3));
    assert_null(aemp__framing((aemp_framing_t)-1));
    assert_null(aemp__framing_named("xml", 3));
    assert_null(aemp__framing_named("", 0));
    assert_null(aemp__framing_named("cbor", 3)); /* "cbo" */
    assert_null(aemp__framing_named("jsonx", 5));
    assert_null(aemp__framing_named("CBOR", 4));
}

/* The keepalive is the empty array: what encoding the empty message
 * gives, and what decodes (one-shot and streamed) to it. */
static void framing_keepalive(void **state)
{
    assert_memory_equal(aemp__framing(AEMP_CBOR)->keepalive, "\x80", 1);
    assert_int_equal(aemp__framing(AEMP_CBOR)->keepalive_len, 1);
    assert_memory_equal(aemp__framing(AEMP_JSON)->keepalive, "[]", 2);
    assert_int_equal(aemp__framing(AEMP_JSON)->keepalive_len, 2);
    aemp_msg_t *empty;
    assert_int_equal(aemp_msg_new(&empty, ""), 0);
    for (size_t k = 0; k < 2; k++) {
        const aemp__framing_t *fr = aemp__framing(both[k]);
        aemp__buf_t b = {NULL, 0, 0};
        assert_int_equal(fr->encode(&b, NULL, 0, empty), 0);
        assert_int_equal(b.len, fr->keepalive_len);
        assert_memory_equal(b.data, fr->keepalive, b.len);
        aemp__buf_free(&b);
        aemp_msg_t *m;
        assert_int_equal(
            aemp_msg_decode(&m, fr->id, fr->keepalive, fr->keepalive_len), 0);
        assert_int_equal(aemp_msg_len(m), 0);
        aemp_msg_unref(m);
        /* three in a row through a reader */
        aemp_reader_t *r;
        assert_int_equal(aemp_reader_new(&r, fr->id, NULL), 0);
        for (int i = 0; i < 3; i++)
            assert_int_equal(
                aemp_reader_feed(r, fr->keepalive, fr->keepalive_len), 0);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(aemp_reader_next(r, &m), 1);
            assert_int_equal(aemp_msg_len(m), 0);
            aemp_msg_unref(m);
        }
        assert_int_equal(aemp_reader_next(r, &m), 0);
        aemp_reader_free(r);
    }
    aemp_msg_unref(empty);
}

/* ---- CBOR decoding under failing allocations ---------------------------- */

typedef struct packet {
    const char *bytes;
    size_t len;
} packet_t;

#define PKT(lit)                                                               \
    {                                                                          \
        lit, sizeof(lit) - 1                                                   \
    }

/* Hand-made packets: the shapes a Perl 2.x peer sends (byte strings
 * where strings are expected, indefinite lengths, maps, tags, floats). */
static const packet_t cbor_packets[] = {
    PKT("\x80"), /* [] keepalive */
    PKT("\x83\x61"
        "a\x01\x82\x02\x03"), /* ["a",1,[2,3]] */
    PKT("\x9f\x7f\x62"
        "ab\x61"
        "c\xff\x01\xff"),                    /* ["abc",1] indefinite */
    PKT("\x82\x61p\xa2\x61k\x61v\x61n\xf6"), /* ["p",{"k":"v","n":null}] */
    PKT("\x83\x40\x44\x01\x02\x03\x04\x5f\x41x\x41y\xff"), /* byte strings */
    PKT("\x84\xf9\x3c\x00\xfb\x3f\xd0\x00\x00\x00\x00\x00\x00\xf5\xf4"),
    PKT("\x82\xc1\x1a\x00\x00\x00\x01\xd8\x20\x61u"),    /* tags are ignored */
    PKT("\x81\x81\x81\x81\x81\x81\x81\x81\x81\x81\x80"), /* nested */
    /* [INT64_MIN, INT64_MAX, -1] */
    PKT("\x83\x3b\x7f\xff\xff\xff\xff\xff\xff\xff\x1b\x7f\xff\xff\xff\xff"
        "\xff\xff\xff\x20"),
};
#define N_CBOR (sizeof cbor_packets / sizeof *cbor_packets)

/* The inputs the sweep reads: the hand-made packets, then messages
 * encoded by aemp__cbor_encode with a port-name prefix, as a link writes
 * them; all back to back. */
static char *stream;
static size_t stream_len;
static size_t n_packets;
static size_t packet_off[N_CBOR + 8], packet_len[N_CBOR + 8];
static aemp_msg_t *expected[N_CBOR + 8];

static void add_packet(aemp__buf_t *b, const char *p, size_t len)
{
    packet_off[n_packets] = b->len;
    packet_len[n_packets] = len;
    assert_int_equal(aemp__buf_append(b, p, len), 0);
    assert_int_equal(aemp_msg_decode(&expected[n_packets], AEMP_CBOR, p, len),
                     0);
    n_packets++;
}

static void add_encoded(aemp__buf_t *b, aemp_msg_t *m)
{
    aemp__buf_t one = {NULL, 0, 0};
    assert_int_equal(aemp__cbor_encode(&one, "port", 4, m), 0);
    add_packet(b, one.data, one.len);
    aemp__buf_free(&one);
    aemp_msg_unref(m);
}

static int stream_setup(void **state)
{
    aemp__buf_t b = {NULL, 0, 0};
    n_packets = 0;
    for (size_t i = 0; i < N_CBOR; i++)
        add_packet(&b, cbor_packets[i].bytes, cbor_packets[i].len);
    aemp_msg_t *m;
    assert_int_equal(aemp_msg_new(&m, "sis", "tag", 12345, "sixteen"), 0);
    add_encoded(&b, m);
    assert_int_equal(
        aemp_msg_new(&m, "s[i[s]]{sn}", "a", 1, "b", "k", "v", "k2"), 0);
    add_encoded(&b, m);
    char big[300];
    memset(big, 'x', sizeof big);
    assert_int_equal(
        aemp_msg_new(&m, "S[]{}y", big, sizeof big, "\x01\x02", (size_t)2), 0);
    add_encoded(&b, m);
    stream = b.data;
    stream_len = b.len;
    return 0;
}

static int stream_teardown(void **state)
{
    for (size_t i = 0; i < n_packets; i++)
        aemp_msg_unref(expected[i]);
    aemp_free(stream);
    stream = NULL;
    return 0;
}

/* Reads the whole stream in chunks of `chunk` bytes with the limits lim,
 * checking every message against the expected one. */
static void sweep_read(size_t chunk, const aemp_limits_t *lim)
{
    aemp_reader_t *r;
    int rc = aemp_reader_new(&r, AEMP_CBOR, lim);
    if (rc == AEMP_ENOMEM)
        return;
    assert_int_equal(rc, 0);
    size_t got = 0;
    for (size_t off = 0; off < stream_len; off += chunk) {
        size_t k = stream_len - off < chunk ? stream_len - off : chunk;
        /* on AEMP_ENOMEM the reader promises that nothing changed: the
         * same call again (the failure is not sticky) goes on as if it
         * had not failed */
        rc = aemp_reader_feed(r, stream + off, k);
        if (rc == AEMP_ENOMEM)
            rc = aemp_reader_feed(r, stream + off, k);
        assert_int_equal(rc, 0);
        aemp_msg_t *m;
        for (;;) {
            rc = aemp_reader_next(r, &m);
            if (rc == AEMP_ENOMEM)
                rc = aemp_reader_next(r, &m);
            if (rc != 1)
                break;
            assert_true(got < n_packets);
            if (!aemp_val_equal(aemp_msg_val(m), aemp_msg_val(expected[got])))
                fail_msg("chunk %zu: packet %zu differs", chunk, got);
            got++;
            aemp_msg_unref(m);
        }
        assert_int_equal(rc, 0);
    }
    assert_int_equal(got, n_packets);
    aemp_reader_free(r);
}

static void cbor_sweep_run(void)
{
    /* max_packet below the stream's length: feed's look-ahead scanner
     * runs too */
    aemp_limits_t small = {.max_packet = 400};
    sweep_read(stream_len, NULL);
    sweep_read(7, &small);
    sweep_read(1, NULL);
    for (size_t i = 0; i < n_packets; i++) {
        aemp_msg_t *m;
        int rc = aemp_msg_decode(&m, AEMP_CBOR, stream + packet_off[i],
                                 packet_len[i]);
        if (rc == AEMP_ENOMEM)
            continue;
        assert_int_equal(rc, 0);
        assert_true(aemp_val_equal(aemp_msg_val(m), aemp_msg_val(expected[i])));
        aemp_msg_unref(m);
    }
}

static void cbor_alloc_sweep(void **state)
{
    assert_true(stream_len > 400); /* so that `small` means something */
    long runs = helper_alloc_sweep(cbor_sweep_run);
    assert_true(runs > 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(framing_rows),
        cmocka_unit_test(framing_keepalive),
        cmocka_unit_test_setup_teardown(cbor_alloc_sweep, stream_setup,
                                        stream_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
