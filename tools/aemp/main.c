/* aemp — the command-line tool.  Uses the public API only. */
#include <aemp.h>

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: aemp <command> [arguments...]\n"
    "\n"
    "Erlang-style message passing between C programs (libaemp %s).\n"
    "\n"
    "commands:\n"
    "  --help, help       show this text\n"
    "  --version, version print the version of aemp and libaemp\n"
    "\n"
    "Network commands (run, snd, rpc, mon, trace) and the configuration\n"
    "commands arrive with the networking release; see README.md.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, usage, aemp_version());
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        printf(usage, aemp_version());
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("aemp %s (libaemp %s)\n", AEMP_VERSION_STRING, aemp_version());
        return 0;
    }
    fprintf(stderr, "aemp: unknown command \"%s\" (try aemp --help)\n", cmd);
    return 2;
}
