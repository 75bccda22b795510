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
     "With --global (or the configuration key \"global\": true) the node is a\n"
     "global node: it holds the shared database (see aemp help db) and the\n"
     "other nodes attach to it.  A node is also global when it is one of its\n"
     "own seeds, or when another node makes it its master; every other node\n"
     "attaches to the first global node among its seeds.\n"
     "\n"
     "options: --global, --secret S, --framing LIST, --config FILE,\n"
     "--profile NAME, --module-path DIR (repeatable), -v / -vv (or\n"
     "AEMP_LOGLEVEL=0-9).\n"},
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
     "answer), and before that one of\n"
     "  <id> global: yes; attached: <id>...|none; other globals: <id>...|none\n"
     "  <id> global: no; master: <id>|none\n"
     "  <id> global: unknown (...)\n"
     "(from its answer to aemp::global; Perl nodes do not answer: unknown).\n"
     "It visits the masters, attached nodes and global nodes named too.\n"
     "Exits 1 if the first node cannot be reached, or if some node did not\n"
     "answer known_nodes within twice the timeout.\n" NET_OPTIONS},
    {"db",
     "usage: aemp db <node> get <family> [key]\n"
     "       aemp db <node> keys <family>\n"
     "       aemp db <node> set <family> <key> <value>\n"
     "       aemp db <node> del <family> <key>\n"
     "       aemp db <node> mon <family>\n"
     "\n"
     "The shared database of the network (families of key -> value), seen\n"
     "through <node> (a noderef or node ID): the tool attaches to <node> if\n"
     "it is global, else to the global node <node> is attached to.\n"
     "  get <family>        prints the family as one JSON object ({} if none)\n"
     "  get <family> <key>  prints the value as JSON; exit 1 if no such key\n"
     "  keys <family>       prints the keys as a JSON array\n"
     "  set <family> <key> <value>\n"
     "                      makes <node> set an entry of its own; exits 0\n"
     "                      once the global node holds that value (1 after\n"
     "                      the timeout: another node's value shows, or\n"
     "                      <node> is secure and refuses)\n"
     "  del <family> <key>  makes <node> delete its entry; exits 0 once the\n"
     "                      global node no longer has the key\n"
     "  mon <family>        prints [\"add\",key,value] for each entry, then\n"
     "                      [\"ready\"], then a line per change:\n"
     "                      [\"add\",key,value], [\"chg\",key,value] or\n"
     "                      [\"del\",key], until SIGINT or SIGTERM (exit 0)\n"
     "                      or the global node is lost (exit 1)\n"
     "The entries a node sets vanish when it goes down.  Families beginning\n"
     "with ' are the protocol's own (\"'l\": node addresses, \"'g\": global\n"
     "nodes): they can be read, not set.  Byte strings that are UTF-8 print\n"
     "as text (Perl nodes send strings as byte strings); set compares values\n"
     "so, and maps whatever their key order.\n"
     "Exits 1 if <node> cannot be reached, is not global and names no\n"
     "master (\"name a global node\"), or the answer does not come within\n"
     "the timeout (plus one second); 2 for a wrong command line.\n"
     "\n"
     "<value> is JSON if it looks like JSON (begins with [ { or \", is a\n"
     "number, true, false or null) and must parse; else a string; with -s /\n"
     "--raw always a string.\n" NET_OPTIONS},
    {"grp",
     "usage: aemp grp <node> get <group>\n"
     "       aemp grp <node> mon <group>\n"
     "\n"
     "A port group: a family of the shared database whose keys are port IDs\n"
     "(see aemp help db; programs join with aemp_grp_reg).  Through <node>,\n"
     "as for db.\n"
     "  get <group>  prints the members' port IDs as a JSON array\n"
     "  mon <group>  prints [\"add\",port] for each member, then [\"ready\"],\n"
     "               then [\"add\",port] and [\"del\",port] as members come\n"
     "               and go, until SIGINT or SIGTERM (exit 0) or the global\n"
     "               node is lost (exit 1)\n" NET_OPTIONS},
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
