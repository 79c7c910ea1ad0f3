#include "_XVector_stubs.c"
