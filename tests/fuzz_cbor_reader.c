/* libFuzzer target: the cbor reader (see fuzz_reader.h).  Compiled into
 * test_fuzz_corpus with FUZZ_ENTRY renamed. */
#include "fuzz_reader.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    return fuzz_reader_run(AEMP_CBOR, data, size);
}
