/* The median of a benchmark's runs, shared by bench_local and bench_net. */
#ifndef AEMP_BENCH_MEDIAN_H
#define AEMP_BENCH_MEDIAN_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RUNS 15

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* n runs (at most MAX_RUNS); NAN for none. */
static double median(const double *runs, int n)
{
    double s[MAX_RUNS];
    if (n <= 0 || n > MAX_RUNS)
        return NAN;
    memcpy(s, runs, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

#endif
