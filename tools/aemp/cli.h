/* Shared pieces of the aemp command-line tool. */
#ifndef AEMP_CLI_H
#define AEMP_CLI_H

#include <aemp.h>

typedef struct cli_opts {
    const char *secret;
    const char *framings;
    const char *config;  /* --config FILE */
    const char *profile; /* --profile NAME (run) */
    double timeout;      /* seconds; also the monitor timeout */
    int verbose, show_secret;
    int loglevel; /* AEMP_LOG_*, 0: nothing (AEMP_LOGLEVEL, -v, -vv) */
    int raw;      /* -s, --raw: message arguments are strings */
    int global;   /* --global (run): a global node */
    const char *module_path[16]; /* --module-path DIR (run), in order */
    int nmodule_path;
} cli_opts_t;

/* Prints "aemp: <fmt>" to standard error; returns 1 (the exit status). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A new node configured from opts (secret required). */
int cli_node(const cli_opts_t *o, aemp_node_t **out);
/* *out: an array value of the arguments, each a string (o->raw), or a
 * JSON value if it looks like one (see the usage text), else a string.
 * An argument that looks like JSON but does not parse is told and gives
 * 2 (a usage error); 1 for other failures. */
int cli_args(const cli_opts_t *o, int argc, char **argv, aemp_val_t **out);
/* Prints one command's help (2 and an error if there is no such command). */
int cli_help(const char *cmd);
/* Writes m as a JSON array line to standard output. */
int cli_print(const aemp_msg_t *m);

/* Opens the configuration (--config, $AEMP_CONFIG or the default); on an
 * unreadable file prints where and returns 1. */
int cli_config(const cli_opts_t *o, aemp_config_t **out);
/* A fresh random secret (malloc'd), or NULL. */
char *cli_gensecret(void);
int cli_is_config_command(const char *cmd);
int cmd_config(const cli_opts_t *o, int argc, char **argv);
int cmd_trace(const cli_opts_t *o, int argc, char **argv);
/* The built-in services aemp::echo and aemp::sink. */
int cmd_run(const cli_opts_t *o, int argc, char **argv);
int cmd_snd(const cli_opts_t *o, int argc, char **argv);
int cmd_rpc(const cli_opts_t *o, int argc, char **argv);
int cmd_mon(const cli_opts_t *o, int argc, char **argv);
/* The shared database and port groups, through the node named first. */
int cmd_db(const cli_opts_t *o, int argc, char **argv);
int cmd_grp(const cli_opts_t *o, int argc, char **argv);

/* The profile `run` (and showconfig) uses: --profile, else the node name
 * (the configuration's "nodename", else the host's). */
void cli_profile(const cli_opts_t *o, const aemp_config_t *c, char *buf,
                 size_t size);

#endif
