/* A shared object without aemp_module_init: loading it must fail clearly. */
int noentry_something(void);

int noentry_something(void) { return 42; }
