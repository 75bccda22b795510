/* The configuration commands: gensecret, setsecret, ..., showconfig. */
#include "cli.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

int cli_config(const cli_opts_t *o, aemp_config_t **out)
{
    int rc = aemp_config_open(out, o->config);
    if (rc == AEMP_EINVAL)
        return cli_error("no configuration file: set HOME, AEMP_CONFIG or "
                         "use --config FILE");
    if (rc < 0) {
        cli_error("%s", aemp_config_error(*out));
        aemp_config_free(*out);
        return 1;
    }
    return 0;
}

char *cli_gensecret(void)
{
    unsigned char raw[33];
    char *b64 = malloc(4 * sizeof raw / 3 + 1);
    if (!b64 || RAND_bytes(raw, sizeof raw) != 1) {
        free(b64);
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)b64, raw, sizeof raw);
    for (char *c = b64; *c; c++) /* URL-safe: no '/' or '+' in shells */
        *c = *c == '/' ? '_' : *c == '+' ? '-' : *c;
    return b64;
}

static int save(aemp_config_t *c)
{
    int rc = aemp_config_save(c);
    if (rc < 0)
        cli_error("cannot save: %s", aemp_config_error(c));
    return rc < 0;
}

static int set(aemp_config_t *c, const char *profile, const char *key,
               aemp_val_t *v)
{
    if (!v)
        return cli_error("out of memory");
    int rc = aemp_config_set(c, profile, key, &v);
    aemp_val_free(v);
    if (rc < 0)
        return cli_error("%s: %s", key, *aemp_config_error(c)
                                            ? aemp_config_error(c)
                                            : aemp_strerror(rc));
    return save(c);
}

static int del(aemp_config_t *c, const char *profile, const char *key)
{
    aemp_val_t *none = NULL;
    int rc = aemp_config_set(c, profile, key, &none);
    return rc < 0 ? cli_error("%s", aemp_config_error(c)) : save(c);
}

static aemp_val_t *str_list(int argc, char **argv)
{
    aemp_val_t *a = aemp_arr_new();
    for (int i = 0; i < argc && a; i++)
        a = aemp_arr_push(a, aemp_str(argv[i]));
    return a;
}

/* The list with item added (if missing) or its first copy removed. */
static int list_edit(aemp_config_t *c, const char *profile, const char *key,
                     const char *item, int add)
{
    const aemp_val_t *cur = aemp_config_get(c, profile, key);
    aemp_val_t *a = aemp_arr_new();
    int present = 0, removed = 0;
    for (size_t i = 0; a && i < aemp_val_len(cur); i++) {
        const char *s = "";
        aemp_val_str(aemp_val_at(cur, i), &s, NULL);
        if (!strcmp(s, item)) {
            present = 1;
            if (!add && !removed) {
                removed = 1;
                continue;
            }
        }
        a = aemp_arr_push(a, aemp_val_copy(aemp_val_at(cur, i)));
    }
    if (add && !present)
        a = aemp_arr_push(a, aemp_str(item));
    if (!add && !removed) {
        aemp_val_free(a);
        return cli_error("%s is not in %s", item, key);
    }
    return set(c, profile, key, a);
}

static char *read_pem(const char *arg)
{
    FILE *f = fopen(arg, "rb");
    if (!f)
        return strstr(arg, "-----BEGIN") ? strdup(arg) : NULL;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = 0;
    return buf;
}

/* A fresh P-256 key and a self-signed certificate for it (CN=aemp, ten
 * years), both PEM, key first: what "cert" holds.  Made with OpenSSL's API
 * so that no openssl binary is needed.  Returns NULL on failure. */
static char *gen_cert(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIO *bio = BIO_new(BIO_s_mem());
    X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
    unsigned char serial[16];
    char *pem = NULL;
    BIGNUM *bn = NULL;
    if (!key || !x || !bio || !name ||
        RAND_bytes(serial, sizeof serial) != 1)
        goto out;
    serial[0] &= 0x7f; /* a positive serial number */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
        !X509_set_version(x, 2) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    (const unsigned char *)"aemp", -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key) ||
        !X509_sign(x, key, EVP_sha256()) ||
        !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_X509(bio, x))
        goto out;
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    pem = len > 0 ? malloc((size_t)len + 1) : NULL;
    if (pem) {
        memcpy(pem, data, (size_t)len);
        pem[len] = 0;
    }
out:
    BN_free(bn);
    BIO_free(bio);
    X509_free(x);
    EVP_PKEY_free(key);
    return pem;
}

static int show(aemp_config_t *c, const char *profile, int secret)
{
    aemp_val_t *eff;
    if (aemp_config_effective(c, profile, &eff) < 0)
        return cli_error("out of memory");
    if (!secret && aemp_map_get(eff, "secret"))
        eff = aemp_map_set(eff, "secret", aemp_str("********"));
    if (eff && aemp_map_get(eff, "cert"))
        eff = aemp_map_set(eff, "cert", aemp_str("(PEM data)"));
    aemp_msg_t *m = NULL;
    aemp_val_t *wrap = aemp_arr(eff);
    int rc = aemp_msg_from_val(&m, &wrap);
    aemp_val_free(wrap);
    char *text = NULL;
    size_t len;
    if (rc == 0 && aemp_msg_encode(m, AEMP_JSON, &text, &len) == 0) {
        text[len - 1] = 0; /* drop the [ ] around the one map */
        printf("%s\n", text + 1);
    }
    aemp_free(text);
    aemp_msg_unref(m);
    return rc < 0;
}

static int command(aemp_config_t *c, const char *profile, int argc,
                   char **argv, int show_secret)
{
    const char *cmd = argv[0];
    int n = argc - 1;
    char **a = argv + 1;
    if (!strcmp(cmd, "gensecret")) {
        char *s = cli_gensecret();
        int rc = s ? set(c, profile, "secret", aemp_str(s))
                   : cli_error("no randomness");
        free(s);
        return rc;
    }
    if (!strcmp(cmd, "setsecret") && n == 1)
        return set(c, profile, "secret", aemp_str(a[0]));
    if (!strcmp(cmd, "setnoderef") && n == 1)
        return set(c, profile, "noderef", aemp_str(a[0]));
    if (!strcmp(cmd, "setseeds"))
        return set(c, profile, "seeds", str_list(n, a));
    if (!strcmp(cmd, "setservices"))
        return set(c, profile, "services", str_list(n, a));
    if ((!strcmp(cmd, "addseed") || !strcmp(cmd, "delseed")) && n == 1)
        return list_edit(c, profile, "seeds", a[0], cmd[0] == 'a');
    if ((!strcmp(cmd, "addservice") || !strcmp(cmd, "delservice")) && n == 1)
        return list_edit(c, profile, "services", a[0], cmd[0] == 'a');
    if (!strcmp(cmd, "clrsecret") && !n)
        return del(c, profile, "secret");
    if (!strcmp(cmd, "clrnoderef") && !n)
        return del(c, profile, "noderef");
    if (!strcmp(cmd, "gencert") && !n) {
        char *pem = gen_cert();
        int rc = pem ? set(c, profile, "cert", aemp_str(pem))
                     : cli_error("cannot make a key and certificate");
        free(pem);
        return rc;
    }
    if (!strcmp(cmd, "clrcert") && !n)
        return del(c, profile, "cert");
    if (!strcmp(cmd, "setcert") && n == 1) {
        char *pem = read_pem(a[0]);
        if (!pem)
            return cli_error("%s: not a readable file or PEM text", a[0]);
        int rc = set(c, profile, "cert", aemp_str(pem));
        free(pem);
        return rc;
    }
    if (!strcmp(cmd, "showconfig") && n <= 1)
        return show(c, n ? a[0] : profile, show_secret);
    if (!strcmp(cmd, "delprofile") && n == 1 && !profile)
        return aemp_config_del_profile(c, a[0]) < 0
                   ? cli_error("%s", aemp_config_error(c))
                   : save(c);
    if (!strcmp(cmd, "profile") && n >= 2 && !profile)
        return command(c, a[0], n - 1, a + 1, show_secret);
    return -1;
}

/* The profile `run` uses: --profile, else the node name (the
 * configuration's "nodename", else the host's). */
void cli_profile(const cli_opts_t *o, const aemp_config_t *c, char *buf,
                 size_t size)
{
    const char *name = o->profile;
    struct utsname u;
    if (!name && aemp_val_str(aemp_config_get(c, NULL, "nodename"), &name,
                              NULL) < 0)
        name = uname(&u) == 0 ? u.nodename : "localhost";
    snprintf(buf, size, "%s", name);
}

int cmd_config(const cli_opts_t *o, int argc, char **argv)
{
    aemp_config_t *c;
    if (cli_config(o, &c))
        return 1;
    /* showconfig alone: the settings `run` would use */
    char profile[256];
    cli_profile(o, c, profile, sizeof profile);
    int rc = argc == 1 && !strcmp(argv[0], "showconfig")
                 ? show(c, profile, o->show_secret)
                 : command(c, NULL, argc, argv, o->show_secret);
    aemp_config_free(c);
    if (rc < 0)
        return cli_error("%s: wrong arguments (try aemp --help)", argv[0]);
    return rc;
}

int cli_is_config_command(const char *cmd)
{
    static const char *const cmds[] = {
        "gensecret", "setsecret", "clrsecret", "gencert", "setcert", "clrcert",
        "setnoderef", "clrnoderef", "setseeds", "addseed", "delseed",
        "setservices", "addservice", "delservice", "profile", "delprofile",
        "showconfig", NULL};
    for (int i = 0; cmds[i]; i++)
        if (!strcmp(cmd, cmds[i]))
            return 1;
    return 0;
}
