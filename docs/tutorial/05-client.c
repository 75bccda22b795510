/* Tutorial 5: configuration and the aemp tool.  A client of a node that
 * `aemp run` started: it reads the secret (or certificate) from the same
 * configuration file as the tool — $AEMP_CONFIG, else
 * ~/.config/aemp/config.json — and calls the node's aemp::echo service.
 *
 *   aemp gensecret && aemp setservices aemp::echo
 *   aemp -v run 127.0.0.1:4053   # prints "service aemp::echo <port ID>"
 *   ./05-client <that port ID> hello */
#include <aemp.h>

#include <stdio.h>

/* aemp_cal's callback: the reply, the service's death, or a timeout */
static void on_reply(aemp_node_t *n, int status, const aemp_msg_t *reply,
                     void *user)
{
    char *text;
    if (status < 0 && !reply)
        printf("no reply: %s\n", aemp_strerror(status));
    else if (aemp_msg_to_json(reply, &text) == 0) {
        printf("%s: %s\n", status < 0 ? "the service died" : "reply", text);
        aemp_free(text);
    }
    *(int *)user = status;
    aemp_stop(n);
}

/* A client node: aemp_initialise with the noderef "anon/" takes the
 * file's network settings (secret or certificate, seeds) but listens
 * nowhere, whatever noderef the file gives the tool's node.  It connects
 * out to whatever it sends to; the node answers on that link.  (The
 * settings could also come from a profile: the third argument.) */
static int client_node(aemp_node_t **out)
{
    aemp_config_t *cfg;
    int rc = aemp_config_open(&cfg, NULL);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", aemp_config_path(cfg),
                aemp_config_error(cfg));
        aemp_config_free(cfg);
        return rc;
    }
    if ((rc = aemp_node_new(out, NULL)) == 0 &&
        (rc = aemp_initialise_wait(*out, cfg, NULL, "anon/", NULL, 0)) < 0)
        aemp_node_free(*out); /* the settings are copied: cfg can go */
    aemp_config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: 05-client SERVICE-PORT TEXT\n");
        return 2;
    }
    aemp_node_t *n;
    int status = 0, rc = client_node(&n);
    if (rc < 0) {
        fprintf(stderr, "05-client: %s\n", aemp_strerror(rc));
        return 1;
    }
    /* aemp::echo answers [..., reply_port] with the rest of the message;
     * aemp_cal appends a fresh reply port and waits up to 5 s */
    rc = aemp_cal(n, argv[1], 5, on_reply, &status, "s", argv[2]);
    if (rc == 0)
        aemp_run(n);
    else
        fprintf(stderr, "05-client: %s\n", aemp_strerror(rc));
    aemp_node_free(n);
    return rc < 0 || status < 0;
}
