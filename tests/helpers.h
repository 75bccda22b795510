/* Shared helpers for the cmocka test executables. */
#ifndef AEMP_TEST_HELPERS_H
#define AEMP_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <aemp.h>

#endif
