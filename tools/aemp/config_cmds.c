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

/* What showconfig says of one certificate: subject, SHA-256 fingerprint,
 * expiry and the days left. */
static aemp_val_t *cert_info(X509 *x)
{
    char subject[256] = "", fp[3 * EVP_MAX_MD_SIZE] = "", date[64] = "";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    BIO *nb = BIO_new(BIO_s_mem());
    if (nb && X509_NAME_print_ex(nb, X509_get_subject_name(x), 0,
                                 XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(nb, subject, sizeof subject - 1);
        subject[n > 0 ? n : 0] = 0;
    }
    BIO_free(nb);
    if (X509_digest(x, EVP_sha256(), md, &mdlen))
        for (unsigned i = 0; i < mdlen; i++)
            snprintf(fp + 3 * i, sizeof fp - 3 * i, "%02X%s", md[i],
                     i + 1 < mdlen ? ":" : "");
    const ASN1_TIME *after = X509_get0_notAfter(x);
    BIO *b = BIO_new(BIO_s_mem());
    if (b && ASN1_TIME_print(b, after) == 1) {
        int n = BIO_read(b, date, sizeof date - 1);
        date[n > 0 ? n : 0] = 0;
    }
    BIO_free(b);
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, NULL, after);
    aemp_val_t *m = aemp_map_new();
    m = aemp_map_set(m, "subject", aemp_str(subject));
    m = aemp_map_set(m, "sha256", aemp_str(fp));
    m = aemp_map_set(m, "expires", aemp_str(date));
    m = aemp_map_set(m, "days_left", aemp_int(days));
    return m;
}

/* A cert or ca setting as showconfig prints it: never the key, but each
 * certificate's cert_info (one map, or an array for several), with the
 * file it came from, or why it cannot be read. */
static aemp_val_t *pem_summary(const char *setting)
{
    int inline_pem = strstr(setting, "-----BEGIN") != NULL;
    char *pem = read_pem(setting);
    BIO *b = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    aemp_val_t *all = aemp_arr_new();
    X509 *x;
    while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        all = aemp_arr_push(all, cert_info(x));
        X509_free(x);
    }
    BIO_free(b);
    free(pem);
    aemp_val_t *out;
    if (aemp_val_len(all) == 1) {
        out = aemp_val_copy(aemp_val_at(all, 0));
    } else if (aemp_val_len(all) == 0) {
        out = aemp_map_set(aemp_map_new(), "error",
                           aemp_str(pem ? "no certificate in it"
                                        : "cannot read the file"));
    } else {
        out = aemp_map_set(aemp_map_new(), "certificates", all);
        all = NULL;
    }
    aemp_val_free(all);
    if (out && !inline_pem)
        out = aemp_map_set(out, "file", aemp_str(setting));
    return out;
}

static aemp_val_t *summarise(aemp_val_t *eff, const char *key)
{
    const char *v;
    if (eff && aemp_val_str(aemp_map_get(eff, key), &v, NULL) == 0)
        eff = aemp_map_set(eff, key, pem_summary(v));
    return eff;
}

/* setcert / setca: the PEM text of the file or argument goes into the
 * configuration, once OpenSSL has read what it needs from it (a key and
 * its certificate for cert, at least one certificate for ca). */
static int set_pem(aemp_config_t *c, const char *profile, const char *key,
                   const char *arg, int need_key)
{
    char *pem = read_pem(arg);
    if (!pem)
        return cli_error("%s: not a readable file or PEM text", arg);
    BIO *b = BIO_new_mem_buf(pem, -1), *b2 = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = need_key && b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)
                                : NULL;
    X509 *x = b2 ? PEM_read_bio_X509(b2, NULL, NULL, NULL) : NULL;
    const char *bad = !x                           ? "no certificate in it"
                      : need_key && !k             ? "no private key in it"
                      : k && X509_check_private_key(x, k) != 1
                          ? "the key does not belong to the certificate"
                          : NULL;
    EVP_PKEY_free(k);
    X509_free(x);
    BIO_free(b);
    BIO_free(b2);
    int rc = bad ? cli_error("%s: %s", arg, bad)
                 : set(c, profile, key, aemp_str(pem));
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
    return rc;
}

static int show(aemp_config_t *c, const char *profile, int secret)
{
    aemp_val_t *eff;
    if (aemp_config_effective(c, profile, &eff) < 0)
        return cli_error("out of memory");
    if (!secret && aemp_map_get(eff, "secret"))
        eff = aemp_map_set(eff, "secret", aemp_str("********"));
    eff = summarise(summarise(eff, "cert"), "ca");
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

/* A service is an init function, named as aemp_spawn wants it: words of
 * letters, digits and '_' joined by "::" (pkg::init, a::b::init), so that
 * a module lookup can find it; in the aemp:: package only the built-ins.
 * Told and 1 if name is none. */
static int bad_service(const char *name)
{
    int words = 0;
    const char *s = name;
    for (;;) {
        size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
                             "TUVWXYZ0123456789_");
        if (!n)
            break;
        words++;
        s += n;
        if (strncmp(s, "::", 2))
            break;
        s += 2;
    }
    if (*s || words < 2)
        return cli_error("\"%s\" is not a service name: services are init "
                         "functions named pkg::init (built in: aemp::echo, "
                         "aemp::sink; others come from modules, see aemp "
                         "help addservice)",
                         name);
    if (!strncmp(name, "aemp::", 6) && strcmp(name, "aemp::echo") &&
        strcmp(name, "aemp::sink"))
        return cli_error("\"%s\" is not a built-in service (those are "
                         "aemp::echo and aemp::sink)",
                         name);
    return 0;
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
    if (!strcmp(cmd, "setservices") || !strcmp(cmd, "addservice"))
        for (int i = 0; i < n; i++)
            if (bad_service(a[i]))
                return 1;
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
    if (!strcmp(cmd, "clrca") && !n)
        return del(c, profile, "ca");
    if ((!strcmp(cmd, "setcert") || !strcmp(cmd, "setca")) && n == 1)
        return set_pem(c, profile, cmd + 3, a[0], !strcmp(cmd, "setcert"));
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
        "setca", "clrca",
        "setnoderef", "clrnoderef", "setseeds", "addseed", "delseed",
        "setservices", "addservice", "delservice", "profile", "delprofile",
        "showconfig", NULL};
    for (int i = 0; cmds[i]; i++)
        if (!strcmp(cmd, cmds[i]))
            return 1;
    return 0;
}
