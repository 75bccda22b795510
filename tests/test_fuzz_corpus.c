/* Runs both reader fuzz targets over every file of the seed corpus
 * (tests/corpus/{json,cbor}/), so that every build exercises them, not
 * only fuzzing runs.  A failed check inside a target aborts. */
#include "helpers.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ENTRY fuzz_json
#include "fuzz_json_reader.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_cbor
#include "fuzz_cbor_reader.c"
#undef FUZZ_ENTRY

#ifndef AEMP_CORPUS_DIR
#error "AEMP_CORPUS_DIR must name tests/corpus"
#endif

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *data = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            data = realloc(data, cap);
            assert_non_null(data);
        }
        got = fread(data + n, 1, cap - n, f);
        n += got;
    } while (got);
    fclose(f);
    *len = n;
    return data;
}

/* Runs fn over every regular file in AEMP_CORPUS_DIR/sub; returns how many. */
static size_t run_dir(const char *sub, int (*fn)(const uint8_t *, size_t))
{
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/%s", AEMP_CORPUS_DIR, sub);
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len;
        uint8_t *data = slurp(path, &len);
        fn(data, len);
        free(data);
        count++;
    }
    closedir(d);
    return count;
}

static void test_json_corpus(void **state)
{
    (void)state;
    assert_true(run_dir("json", fuzz_json) >= 10);
}

static void test_cbor_corpus(void **state)
{
    (void)state;
    assert_true(run_dir("cbor", fuzz_cbor) >= 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_corpus),
        cmocka_unit_test(test_cbor_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
