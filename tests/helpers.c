/* Shared helpers for the cmocka test executables. */
#include "helpers.h"
