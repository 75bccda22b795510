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
    "network commands:\n"
    "  run [noderef] [seed...]   run a node until SIGINT or SIGTERM, set up\n"
    "                            from the configuration (profile: --profile,\n"
    "                            else the host's node name); prints its "
    "noderef\n"
    "                            and service ports once listening.  Without a\n"
    "                            secret or certificate, generates and saves a\n"
    "                            secret.\n"
    "  snd <port> <arg...>       send a message; exits 0 once the port's node\n"
    "                            has received it\n"
    "  rpc <port> <arg...>       send with a reply port appended, print the\n"
    "                            first reply as a JSON array\n"
    "  mon <port>                wait until the port dies, print the reason "
    "as\n"
    "                            a JSON array\n"
    "  trace <noderef>           walk the network from that node and print\n"
    "                            which nodes each one knows, which are global\n"
    "                            and whom each is attached to\n"
    "  db <node> get <family> [key] | keys <family> | set <family> <key>\n"
    "     <value> | del <family> <key> | mon <family>\n"
    "                            the shared database, through <node>: print\n"
    "                            a family (a JSON object), a value, the keys;\n"
    "                            set or delete an entry of <node>'s own\n"
    "                            (exits 0 once a global node holds it); mon\n"
    "                            prints [\"add\"|\"chg\",key,value] and\n"
    "                            [\"del\",key] lines\n"
    "  grp <node> get|mon <group>\n"
    "                            a port group: its members (a JSON array), or\n"
    "                            [\"add\",port], [\"del\",port] lines\n"
    "  version                   print the version\n"
    "  help [command]            show this text, or one command's help (also\n"
    "                            aemp <command> --help)\n"
    "\n"
    "configuration commands (change the file, see --config):\n"
    "  gensecret | setsecret S | clrsecret\n"
    "  setnoderef NODEREF | clrnoderef\n"
    "  setseeds SEED... | addseed SEED | delseed SEED\n"
    "  setservices NAME... | addservice NAME | delservice NAME\n"
    "  gencert                         a fresh key and self-signed "
    "certificate\n"
    "                                  (copy it to every node of the network:\n"
    "                                  they then talk TLS, without a secret)\n"
    "  setcert FILE|PEM | clrcert      key and certificate (PEM) for TLS\n"
    "  setca FILE|PEM | clrca          the CA a peer's certificate must "
    "verify\n"
    "                                  against (default: our own certificate)\n"
    "  profile NAME <command...>       the same, for one node's profile\n"
    "  delprofile NAME\n"
    "  showconfig [PROFILE]            effective settings (secret masked\n"
    "                                  unless --show-secret)\n"
    "\n"
    "built-in services (for \"services\"): aemp::echo sends each message\n"
    "whose last element is a port ID back there without it; aemp::sink\n"
    "counts messages and answers [\"count\", <port>] with [\"count\", N].\n"
    "\n"
    "A port is a port ID (<noderef>#<name>) or a noderef (its node port, e.g.\n"
    "`aemp rpc 127.0.0.1:4041 info`).  Arguments that look like JSON (begin\n"
    "with [ { or \", are a number, or true, false or null) are sent as JSON\n"
    "values (42, -7.5, [1,2], {\"a\":1}, \"quoted\") and must parse as JSON;\n"
    "others are sent as strings.  With --raw (-s) every argument is a string.\n"
    "\n"
    "options:\n"
    "  --secret S        the network's shared secret (default: $AEMP_SECRET)\n"
    "  --timeout SECONDS give up after this long (default 10)\n"
    "  --framing LIST    framings to accept, e.g. json (default cbor,json)\n"
    "  --config FILE     the configuration file (default: $AEMP_CONFIG, else\n"
    "                    $XDG_CONFIG_HOME/aemp/config.json or\n"
    "                    ~/.config/aemp/config.json)\n"
    "  --profile NAME    the profile for run (default: the node name)\n"
    "  --global          run: a global node (holds the shared database)\n"
    "  --module-path DIR run: look for modules (a::b::init in DIR/a/b.so,\n"
    "                    then DIR/a.so) here first; repeatable\n"
    "  --show-secret     showconfig prints the secret\n"
    "  -s, --raw         snd, rpc, db set: send every argument as a string\n"
    "  -v, --verbose     log informational messages (links coming up and "
    "going\n"
    "                    down, services) to standard error; -vv also debug\n"
    "                    messages\n"
    "\n"
    "environment: AEMP_SECRET (--secret), AEMP_CONFIG (--config),\n"
    "AEMP_LOGLEVEL: how much to log, 0-9 as AnyEvent::MP's\n"
    "PERL_ANYEVENT_MP_WARNLEVEL (0 nothing, 1 errors, 2-6 warnings too, 7\n"
    "info, 8-9 debug; default 5), or error, warn, info, debug; -v and -vv "
    "win.\n"
    "\n"
    "Errors go to standard error.  Exit status: 0 success, 1 failure, 2 a\n"
    "wrong command line.\n";

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

static int is_option(const char *a)
{
    static const char *const names[] = {
        "-v",        "-vv",      "--verbose", "--show-secret",
        "-s",        "--raw",    "--secret",  "--timeout",
        "--framing", "--config", "--profile", "--module-path",
        "--global",  NULL};
    for (int i = 0; names[i]; i++)
        if (!strcmp(a, names[i]))
            return 1;
    return 0;
}

static int option(cli_opts_t *o, int *i, int argc, char **argv)
{
    const char *a = argv[*i];
    const char *val = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(a, "-v") || !strcmp(a, "--verbose") || !strcmp(a, "-vv")) {
        /* -v: info, -vv (or -v -v): debug */
        o->verbose += strcmp(a, "-vv") ? 1 : 2;
        o->loglevel = o->verbose > 1 ? AEMP_LOG_DEBUG : AEMP_LOG_INFO;
        return 0;
    }
    if (!strcmp(a, "--show-secret")) {
        o->show_secret = 1;
        return 0;
    }
    if (!strcmp(a, "-s") || !strcmp(a, "--raw")) {
        o->raw = 1;
        return 0;
    }
    if (!strcmp(a, "--global")) {
        o->global = 1;
        return 0;
    }
    if (strcmp(a, "--secret") && strcmp(a, "--timeout") &&
        strcmp(a, "--framing") && strcmp(a, "--config") &&
        strcmp(a, "--profile") && strcmp(a, "--module-path"))
        return cli_error("unknown option %s (try aemp --help)", a);
    if (!val)
        return cli_error("%s needs a value", a);
    ++*i;
    if (!strcmp(a, "--secret")) {
        o->secret = val;
    } else if (!strcmp(a, "--config")) {
        o->config = val;
    } else if (!strcmp(a, "--profile")) {
        o->profile = val;
    } else if (!strcmp(a, "--framing")) {
        o->framings = val;
    } else if (!strcmp(a, "--module-path")) {
        if (o->nmodule_path == (int)(sizeof o->module_path /
                                     sizeof *o->module_path))
            return cli_error("too many --module-path");
        o->module_path[o->nmodule_path++] = val;
    } else {
        char *end;
        o->timeout = strtod(val, &end);
        if (*end || !(o->timeout > 0) || o->timeout > 1e6)
            return cli_error("--timeout wants a positive number of seconds");
    }
    return 0;
}

/* AEMP_LOGLEVEL: AnyEvent::MP's 0-9 (PERL_ANYEVENT_MP_WARNLEVEL: 0 only
 * what is always logged, 1 errors, 2 warnings, 7 connectivity and
 * services, 8 debugging, 9 tracing; default 5) onto our four levels, or
 * one of their names.  Anything else is warned about and ignored. */
static int env_loglevel(void)
{
    static const char *const names[] = {"none", "error", "warn", "info",
                                        "debug"};
    static const int of_digit[] = {0,
                                   AEMP_LOG_ERROR,
                                   AEMP_LOG_WARN,
                                   AEMP_LOG_WARN,
                                   AEMP_LOG_WARN,
                                   AEMP_LOG_WARN,
                                   AEMP_LOG_WARN,
                                   AEMP_LOG_INFO,
                                   AEMP_LOG_DEBUG,
                                   AEMP_LOG_DEBUG};
    const char *v = getenv("AEMP_LOGLEVEL");
    if (!v || !*v)
        return AEMP_LOG_WARN;
    if (v[0] >= '0' && v[0] <= '9' && !v[1])
        return of_digit[v[0] - '0'];
    for (int i = 0; i < 5; i++)
        if (!strcmp(v, names[i]))
            return i;
    cli_error("AEMP_LOGLEVEL=%s: want 0-9 or none, error, warn, info, debug "
              "(using 5, warnings)",
              v);
    return AEMP_LOG_WARN;
}

int main(int argc, char **argv)
{
    cli_opts_t o = {.secret = getenv("AEMP_SECRET"), .timeout = 10};
    if (o.secret && !*o.secret) /* set but empty: as if unset */
        o.secret = NULL;
    o.loglevel = env_loglevel();
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
        if (!strcmp(argv[k], "--")) { /* the rest are arguments */
            while (++k < argc)
                args[nargs++] = argv[k];
            break;
        }
        if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h"))
            return cli_help(cmd);
        /* only known names: PEM text ("-----BEGIN...") is an argument */
        if (is_option(argv[k])) {
            if (option(&o, &k, argc, argv))
                return 2;
            continue;
        }
        args[nargs++] = argv[k];
    }
    if (!strcmp(cmd, "help")) {
        if (nargs > 1) {
            cli_error("usage: aemp help [command]");
            return 2;
        }
        if (nargs == 1)
            return cli_help(args[0]);
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
    if (!strcmp(cmd, "trace"))
        return cmd_trace(&o, nargs, args);
    if (!strcmp(cmd, "db"))
        return cmd_db(&o, nargs, args);
    if (!strcmp(cmd, "grp"))
        return cmd_grp(&o, nargs, args);
    if (cli_is_config_command(cmd)) {
        args[-1] = (char *)cmd; /* the command is argv[0] of its arguments */
        return cmd_config(&o, nargs + 1, args - 1);
    }
    cli_error("unknown command \"%s\" (try aemp --help)", cmd);
    return 2;
}
