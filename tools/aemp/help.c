/* Per-command help: `aemp help <command>` and `aemp <command> --help`. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

/* What every network command shares. */
#define NET_OPTIONS                                                            \
    "\n"                                                                       \
    "options: --secret S (default $AEMP_SECRET, else the configured "          \
    "secret),\n"                                                               \
    "--timeout SECONDS (default 10), --framing LIST, --config FILE,\n"         \
    "--profile NAME, -v / -vv (or AEMP_LOGLEVEL=0-9) to log more.\n"

#define ARGS_ARE_JSON                                                          \
    "Arguments that look like JSON (begin with [ { or \", are a number, or\n"  \
    "are true, false or null) are sent as JSON values and must parse as\n"     \
    "JSON (99999999999999999999 and 1e400 do not); others, such as port "      \
    "IDs,\n"                                                                   \
    "are sent as strings.  -s / --raw sends every argument as a string.\n"

#define CONFIG_TEXT                                                            \
    "\n"                                                                       \
    "Changes one setting among the defaults of the configuration file\n"       \
    "(--config FILE, else $AEMP_CONFIG, else ~/.config/aemp/config.json) "     \
    "and\n"                                                                    \
    "saves it; `aemp profile NAME <command...>` changes that profile's\n"      \
    "instead.  `aemp --help` lists all configuration commands.\n"

static const struct help {
    const char *names; /* the commands it describes, ' '-separated */
    const char *text;
} helps[] = {
    {"run",
     "usage: aemp run [noderef [seed...]]\n"
     "\n"
     "Runs a node until SIGINT or SIGTERM, set up from the configuration\n"
     "(profile: --profile, else the host's node name).  Its noderef is the\n"
     "argument, else the configured one, else the node name with port 4040.\n"
     "Prints its resolved noderef once listening, then \"service <name>\n"
     "<port>\" for each configured service.  Without a secret or a\n"
     "certificate it generates a secret and saves it.  Reports nodes coming\n"
     "up and going down on standard error.  Exit status 0 after a signal, 1\n"
     "if the node cannot start.\n"
     "\n"
     "options: --secret S, --framing LIST, --config FILE, --profile NAME,\n"
     "--module-path DIR (repeatable), -v / -vv (or AEMP_LOGLEVEL=0-9).\n"},
    {"snd",
     "usage: aemp snd <port> <arg...>\n"
     "\n"
     "Sends the message made of the arguments to <port> (a port ID\n"
     "<noderef>#<name>, or a noderef: its node port) and exits 0 once the\n"
     "port's node has received it: that node answers a request sent after\n"
     "the message.  A message to a port that does not exist is dropped by\n"
     "its node.  Exits 1 if the node cannot be reached and authenticated\n"
     "(\"cannot reach <node>: <reason>\") or does not answer within the\n"
     "timeout, 2 without a message.\n"
     "\n" ARGS_ARE_JSON NET_OPTIONS},
    {"rpc",
     "usage: aemp rpc <port> [arg...]\n"
     "\n"
     "Sends the message made of the arguments with a reply port's ID\n"
     "appended, prints the first reply as a JSON array and exits 0, e.g.\n"
     "`aemp rpc 127.0.0.1:4040 info`.  Exits 1 if the node cannot be\n"
     "reached (\"cannot reach <node>: <reason>\"), the port does not exist\n"
     "(\"no such port: <port>\") or dies first, or no answer comes within the\n"
     "timeout plus one second.\n"
     "\n" ARGS_ARE_JSON NET_OPTIONS},
    {"mon",
     "usage: aemp mon <port>\n"
     "\n"
     "Waits until <port> is killed, prints the kill reason as a JSON array\n"
     "and exits 0 ([] for a normal end).  Exits 1 with \"no such port:\n"
     "<port>\" if it does not exist, and with \"cannot reach <node>:\n"
     "<reason>\" if its node cannot be reached or the connection is lost\n"
     "(the reason is printed then too).\n"
     "Only connecting is limited by --timeout.\n" NET_OPTIONS},
    {"trace",
     "usage: aemp trace <noderef>\n"
     "\n"
     "Walks the network from that node: prints \"<id> knows: <id>...\" for\n"
     "each node it reaches, asking each one once (Perl 2.x nodes do not\n"
     "answer).  Exits 1 if the first node cannot be reached, or if some\n"
     "node did not answer within twice the timeout.\n" NET_OPTIONS},
    {"version", "usage: aemp version\n\nPrints the tool's and the library's "
                "versions.\n"},
    {"help", "usage: aemp help [command]\n\nPrints the summary of every "
             "command, or the help of one.\n"},
    {"gensecret", "usage: aemp gensecret\n\nStores a fresh random shared "
                  "secret.\n" CONFIG_TEXT},
    {"setsecret", "usage: aemp setsecret SECRET\n" CONFIG_TEXT},
    {"clrsecret", "usage: aemp clrsecret\n" CONFIG_TEXT},
    {"setnoderef clrnoderef",
     "usage: aemp setnoderef NODEREF | aemp clrnoderef\n\nThe noderef "
     "`aemp run` listens on, e.g. 10.0.0.1:4040 or :4040.\n" CONFIG_TEXT},
    {"setseeds addseed delseed",
     "usage: aemp setseeds SEED... | addseed SEED | delseed SEED\n\nThe "
     "noderefs `aemp run` connects to and keeps connected.\n" CONFIG_TEXT},
    {"setservices addservice delservice",
     "usage: aemp setservices NAME... | addservice NAME | delservice NAME\n"
     "\n"
     "The services `aemp run` starts, each in a port of its own: init\n"
     "functions named pkg::init (or pkg::sub::init), built in (aemp::echo,\n"
     "aemp::sink) or found in a loadable module on the module path.  Other\n"
     "names are refused.\n" CONFIG_TEXT},
    {"gencert", "usage: aemp gencert\n\nStores a fresh key and self-signed "
                "certificate; copy it to every node of\nthe network: they "
                "then talk TLS, without a secret.\n" CONFIG_TEXT},
    {"setcert clrcert",
     "usage: aemp setcert FILE|PEM | aemp clrcert\n\nThe node's private key "
     "and certificate (PEM) for TLS.\n" CONFIG_TEXT},
    {"setca clrca",
     "usage: aemp setca FILE|PEM | aemp clrca\n\nThe CA a peer's certificate "
     "must verify against (default: our own\ncertificate).\n" CONFIG_TEXT},
    {"profile", "usage: aemp profile NAME <command...>\n\nRuns a "
                "configuration command on the profile NAME.\n" CONFIG_TEXT},
    {"delprofile", "usage: aemp delprofile NAME\n" CONFIG_TEXT},
    {"showconfig",
     "usage: aemp showconfig [PROFILE]\n\nPrints the effective settings of "
     "PROFILE (default: the one `aemp run`\nuses); the secret masked unless "
     "--show-secret.\n"},
};

static int names_have(const char *names, const char *cmd)
{
    size_t len = strlen(cmd);
    for (const char *s = names; *s;) {
        const char *e = strchr(s, ' ');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == len && !memcmp(s, cmd, n))
            return 1;
        s += n + (e != NULL);
    }
    return 0;
}

int cli_help(const char *cmd)
{
    for (size_t i = 0; i < sizeof helps / sizeof *helps; i++)
        if (names_have(helps[i].names, cmd)) {
            fputs(helps[i].text, stdout);
            return 0;
        }
    cli_error("no help for \"%s\": not a command (try aemp --help)", cmd);
    return 2;
}
