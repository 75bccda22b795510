/* libFuzzer target: the hand-written JSON decoder against the jansson-based
 * one it replaced (tests/json_ref.h); aborts when they disagree on
 * acceptance, error code, values, or the old converter's reasons.
 *
 * Input: two bytes choosing max_depth and max_items, then one packet.  The
 * same layout as the reader targets' (two bytes of chunk sizes, then the
 * stream), so tests/corpus/json seeds both.  Depths up to AEMP__DEPTH_CAP
 * need inputs of a few KiB: run with -max_len=8192 or more, e.g.
 *   build-fuzz/tests/fuzz_json_diff -max_len=8192 tests/corpus/json
 * Compiled into test_json_fast with FUZZ_ENTRY renamed, which replays the
 * corpus. */
#include "json_ref.h"

#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

/* Limits around the edges: tiny ones that a few bytes exceed, the
 * defaults, and the cap. */
static void fuzz_diff_limits(const uint8_t *data, aemp_limits_t *lim)
{
    static const size_t depth[8] = {1, 2, 3, 4, 32, 128, 2047, 2048};
    static const size_t items[8] = {1, 2, 3, 8, 9, 17, 64, 1 << 20};
    lim->max_packet = 0;
    lim->max_depth = depth[data[0] & 7];
    lim->max_items = items[data[1] & 7];
    aemp__limits_resolve(lim);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    aemp_limits_t lim;
    fuzz_diff_limits(data, &lim);
    char what[700];
    int rc =
        json_diff((const char *)data + 2, size - 2, &lim, what, sizeof what);
    if (rc < 0) {
        fprintf(stderr, "fuzz_json_diff: max_depth %zu max_items %zu: %s\n",
                lim.max_depth, lim.max_items, what);
        abort();
    }
    return 0;
}
