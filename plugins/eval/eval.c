/* The eval plugin is the sh plugin built with EVAL: see ../sh/sh.c. */
#define EVAL 1
#include "../sh/sh.c"
