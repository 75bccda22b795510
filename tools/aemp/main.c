/* aemp — the command-line tool.  Uses the public API only. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: aemp [options] <command> [arguments...]\n"
    "\n"
    "Erlang-style message passing between programs (libaemp %s).\n"
    "\n"
    "commands:\n"
    "  run <noderef> [seed...]   run a public node on a resolved noderef\n"
    "                            (e.g. 127.0.0.1:4041,[::1]:4041) until SIGINT\n"
    "                            or SIGTERM; prints the noderef once listening\n"
    "  snd <port> <arg...>       send a message; exits 0 once it is written to\n"
    "                            the peer\n"
    "  rpc <port> <arg...>       send with a reply port appended, print the\n"
    "                            first reply as a JSON array\n"
    "  mon <port>                wait until the port dies, print the reason as\n"
    "                            a JSON array\n"
    "  version                   print the version\n"
    "  help                      show this text\n"
    "\n"
    "A port is a port ID (<noderef>#<name>) or a noderef (its node port, e.g.\n"
    "`aemp rpc 127.0.0.1:4041 info`).  Arguments that parse as JSON are sent\n"
    "as JSON values (42, [1,2], {\"a\":1}, \"quoted\"), others as strings.\n"
    "\n"
    "options:\n"
    "  --secret S        the network's shared secret (default: $AEMP_SECRET)\n"
    "  --timeout SECONDS give up after this long (default 10)\n"
    "  --framing LIST    framings to accept, e.g. json (default cbor,json)\n"
    "  -v, --verbose     log link events to standard error\n"
    "\n"
    "Errors go to standard error; the exit status is non-zero on failure.\n";

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("aemp: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int option(cli_opts_t *o, int *i, int argc, char **argv)
{
    const char *a = argv[*i];
    const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
        o->verbose = 1;
        return 0;
    }
    if (strcmp(a, "--secret") && strcmp(a, "--timeout") &&
        strcmp(a, "--framing"))
        return cli_error("unknown option %s (try aemp --help)", a);
    if (!val)
        return cli_error("%s needs a value", a);
    ++*i;
    if (!strcmp(a, "--secret")) {
        o->secret = val;
    } else if (!strcmp(a, "--framing")) {
        o->framings = val;
    } else {
        char *end;
        o->timeout = strtod(val, &end);
        if (*end || !(o->timeout > 0) || o->timeout > 1e6)
            return cli_error("--timeout wants a positive number of seconds");
    }
    return 0;
}

int main(int argc, char **argv)
{
    cli_opts_t o = {.secret = getenv("AEMP_SECRET"), .timeout = 10};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf(usage, aemp_version());
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("aemp %s (libaemp %s)\n", AEMP_VERSION_STRING,
                   aemp_version());
            return 0;
        }
        if (option(&o, &i, argc, argv))
            return 2;
    }
    if (i >= argc) {
        fprintf(stderr, usage, aemp_version());
        return 2;
    }
    const char *cmd = argv[i++];
    /* options may also follow the command */
    int nargs = 0;
    char **args = argv + i;
    for (int k = i; k < argc; k++) {
        if ((argv[k][0] == '-' && argv[k][1] == '-' && argv[k][2]) ||
            !strcmp(argv[k], "-v")) {
            if (option(&o, &k, argc, argv))
                return 2;
            continue;
        }
        args[nargs++] = argv[k];
    }
    if (!strcmp(cmd, "help")) {
        printf(usage, aemp_version());
        return 0;
    }
    if (!strcmp(cmd, "version")) {
        printf("aemp %s (libaemp %s)\n", AEMP_VERSION_STRING, aemp_version());
        return 0;
    }
    if (!strcmp(cmd, "run"))
        return cmd_run(&o, nargs, args);
    if (!strcmp(cmd, "snd"))
        return cmd_snd(&o, nargs, args);
    if (!strcmp(cmd, "rpc"))
        return cmd_rpc(&o, nargs, args);
    if (!strcmp(cmd, "mon"))
        return cmd_mon(&o, nargs, args);
    cli_error("unknown command \"%s\" (try aemp --help)", cmd);
    return 2;
}
