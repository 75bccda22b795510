/* The configuration file (SPEC.md §4): aemp_config_* on files in a fresh
 * temporary directory, and the `aemp` configuration commands run as real
 * processes with --config FILE, the file checked (parsed with jansson)
 * after every command.  The binary comes from AEMP_TOOL_PATH. */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AEMP_TOOL_PATH
#error "AEMP_TOOL_PATH must name the aemp binary"
#endif

typedef struct fx {
    char dir[64];
    char path[128]; /* <dir>/config.json */
    char bak[128];  /* <dir>/config.json.bak */
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/aemp-config-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/config.json", f->dir);
    snprintf(f->bak, sizeof f->bak, "%s/config.json.bak", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    cp_rm_rf(f->dir);
    free(f);
    return 0;
}

/* ---- checks ---------------------------------------------------------------- */

static json_t *json_of_text(const char *text, const char *what)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        fail_msg("%s is not valid JSON (line %d, column %d: %s):\n%s", what,
                 e.line, e.column, e.text, text);
    return j;
}

static json_t *json_of_file(const char *path)
{
    char *text = cp_slurp(path, NULL);
    if (!text)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    json_t *j = json_of_text(text, path);
    free(text);
    if (!json_is_object(j))
        fail_msg("%s: the top level is not an object", path);
    return j;
}

/* The file holds exactly the JSON value `want`. */
static void expect_file(const char *path, const char *want)
{
    json_t *got = json_of_file(path), *w = json_of_text(want, "expected");
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        char *x = json_dumps(w, JSON_SORT_KEYS | JSON_COMPACT);
        fprintf(stderr, "%s holds\n  %s\nwant\n  %s\n", path, g, x);
        free(g);
        free(x);
        json_decref(got);
        json_decref(w);
        fail_msg("unexpected configuration file content");
    }
    json_decref(got);
    json_decref(w);
}

static void expect_mode_0600(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    if ((st.st_mode & 07777) != 0600)
        fail_msg("%s has mode %04o, want 0600", path,
                 (unsigned)(st.st_mode & 07777));
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Names in dir other than . and .., sorted, joined by spaces. */
static void dir_listing(const char *dir, char *buf, size_t size)
{
    char names[16][256];
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && n < 16)
            snprintf(names[n++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    for (int i = 0; i < n; i++)
        for (int k = i + 1; k < n; k++)
            if (strcmp(names[k], names[i]) < 0) {
                char t[256];
                memcpy(t, names[i], sizeof t);
                memcpy(names[i], names[k], sizeof t);
                memcpy(names[k], t, sizeof t);
            }
    buf[0] = 0;
    for (int i = 0; i < n; i++)
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? " " : "",
                 names[i]);
}

static const char *str_of(const aemp_val_t *v)
{
    const char *s = NULL;
    if (aemp_val_str(v, &s, NULL) != 0)
        return NULL;
    return s;
}

static void set_str(aemp_config_t *c, const char *profile, const char *key,
                    const char *s)
{
    aemp_val_t *v = aemp_str(s);
    assert_int_equal(aemp_config_set(c, profile, key, &v), 0);
    assert_null(v); /* taken */
}

/* ==== the library ======================================================== */

static void open_missing_is_empty(void **state)
{
    fx_t *f = *state;
    aemp_config_t *c = NULL;
    aemp_val_t *eff = NULL;
    assert_int_equal(aemp_config_open(&c, f->path), 0);
    assert_non_null(c);
    assert_string_equal(aemp_config_path(c), f->path);
    assert_string_equal(aemp_config_error(c), "");
    assert_null(aemp_config_get(c, NULL, "secret"));
    assert_null(aemp_config_get(c, "p", "noderef"));
    assert_int_equal(aemp_config_effective(c, NULL, &eff), 0);
    assert_int_equal(aemp_val_type(eff), AEMP_T_MAP);
    assert_int_equal(aemp_val_len(eff), 0);
    aemp_val_free(eff);
    assert_int_equal(aemp_config_effective(c, "p", &eff), 0);
    assert_int_equal(aemp_val_len(eff), 0);
    aemp_val_free(eff);
    aemp_config_free(c);
    /* opening created nothing */
    assert_false(exists(f->path));
}

static void set_get_effective(void **state)
{
    fx_t *f = *state;
    aemp_config_t *c;
    assert_int_equal(aemp_config_open(&c, f->path), 0);
    set_str(c, NULL, "noderef", "default:1");
    set_str(c, NULL, "secret", "s3cret");
    aemp_val_t *seeds = aemp_arr(aemp_str("a:1"), aemp_str("b:2"));
    assert_int_equal(aemp_config_set(c, NULL, "seeds", &seeds), 0);
    aemp_val_t *mt = aemp_double(2.5);
    assert_int_equal(aemp_config_set(c, NULL, "monitor_timeout", &mt), 0);
    set_str(c, "p1", "noderef", "p1:1");
    aemp_val_t *ci = aemp_double(0.2);
    assert_int_equal(aemp_config_set(c, "p1", "connect_interval", &ci), 0);

    /* defaults */
    assert_string_equal(str_of(aemp_config_get(c, NULL, "noderef")),
                        "default:1");
    /* the profile overrides, and falls back to the defaults */
    assert_string_equal(str_of(aemp_config_get(c, "p1", "noderef")), "p1:1");
    assert_string_equal(str_of(aemp_config_get(c, "p1", "secret")), "s3cret");
    assert_int_equal(aemp_val_len(aemp_config_get(c, "p1", "seeds")), 2);
    double d = 0;
    assert_int_equal(aemp_val_double(aemp_config_get(c, "p1",
                                                     "connect_interval"),
                                     &d),
                     0);
    assert_true(d == 0.2);
    assert_null(aemp_config_get(c, NULL, "connect_interval"));
    /* a profile that does not exist: the defaults */
    assert_string_equal(str_of(aemp_config_get(c, "nope", "noderef")),
                        "default:1");
    /* "profile" is not a setting */
    assert_null(aemp_config_get(c, NULL, "profile"));
    aemp_val_t *bad = aemp_str("x");
    assert_int_equal(aemp_config_set(c, NULL, "profile", &bad), AEMP_EINVAL);
    assert_non_null(bad); /* still yours */
    aemp_val_free(bad);

    /* effective: defaults merged with the profile, the profile winning */
    aemp_val_t *eff;
    assert_int_equal(aemp_config_effective(c, "p1", &eff), 0);
    assert_string_equal(str_of(aemp_map_get(eff, "noderef")), "p1:1");
    assert_string_equal(str_of(aemp_map_get(eff, "secret")), "s3cret");
    assert_int_equal(aemp_val_len(aemp_map_get(eff, "seeds")), 2);
    assert_non_null(aemp_map_get(eff, "connect_interval"));
    assert_non_null(aemp_map_get(eff, "monitor_timeout"));
    assert_null(aemp_map_get(eff, "profile"));
    assert_int_equal(aemp_val_len(eff), 5);
    aemp_val_free(eff);
    assert_int_equal(aemp_config_effective(c, NULL, &eff), 0);
    assert_string_equal(str_of(aemp_map_get(eff, "noderef")), "default:1");
    assert_null(aemp_map_get(eff, "connect_interval"));
    assert_null(aemp_map_get(eff, "profile"));
    assert_int_equal(aemp_val_len(eff), 4);
    aemp_val_free(eff);

    /* replacing a value */
    set_str(c, "p1", "noderef", "p1:2");
    assert_string_equal(str_of(aemp_config_get(c, "p1", "noderef")), "p1:2");
    aemp_config_free(c);
}

static void delete_key_and_profile(void **state)
{
    fx_t *f = *state;
    aemp_config_t *c;
    aemp_val_t *none = NULL;
    assert_int_equal(aemp_config_open(&c, f->path), 0);
    set_str(c, NULL, "noderef", "d");
    set_str(c, "p1", "noderef", "p");
    set_str(c, "p1", "secret", "ps");
    set_str(c, "p2", "secret", "p2s");
    /* deleting the profile's key uncovers the default */
    assert_int_equal(aemp_config_set(c, "p1", "noderef", &none), 0);
    assert_string_equal(str_of(aemp_config_get(c, "p1", "noderef")), "d");
    /* deleting the default */
    assert_int_equal(aemp_config_set(c, NULL, "noderef", &none), 0);
    assert_null(aemp_config_get(c, "p1", "noderef"));
    assert_null(aemp_config_get(c, NULL, "noderef"));
    /* deleting what is not there is fine */
    assert_int_equal(aemp_config_set(c, NULL, "noderef", &none), 0);
    assert_int_equal(aemp_config_set(c, "ghost", "noderef", &none), 0);
    /* whole profiles */
    assert_string_equal(str_of(aemp_config_get(c, "p1", "secret")), "ps");
    assert_int_equal(aemp_config_del_profile(c, "p1"), 0);
    assert_null(aemp_config_get(c, "p1", "secret"));
    assert_string_equal(str_of(aemp_config_get(c, "p2", "secret")), "p2s");
    assert_int_equal(aemp_config_del_profile(c, "p1"), 0); /* absent: 0 */
    assert_int_equal(aemp_config_save(c), 0);
    aemp_config_free(c);
    expect_file(f->path, "{\"profile\": {\"p2\": {\"secret\": \"p2s\"}}}");
}

/* Saved values read back with their types. */
static void save_round_trip(void **state)
{
    fx_t *f = *state;
    aemp_config_t *c;
    assert_int_equal(aemp_config_open(&c, f->path), 0);
    aemp_val_t *v = aemp_arr(
        aemp_str("x"), aemp_int(-42), aemp_double(0.25), aemp_bool(1),
        aemp_null(),
        aemp_map_set(aemp_map_new(), "k", aemp_str("caf\xc3\xa9 \"q\"\n")));
    assert_int_equal(aemp_config_set(c, "p", "services", &v), 0);
    assert_int_equal(aemp_config_save(c), 0);
    aemp_config_free(c);
    expect_file(f->path, "{\"profile\": {\"p\": {\"services\": [\"x\", -42, "
                         "0.25, true, null, {\"k\": \"caf\\u00e9 \\\"q\\\"\\n\"}"
                         "]}}}");
    assert_int_equal(aemp_config_open(&c, f->path), 0);
    const aemp_val_t *s = aemp_config_get(c, "p", "services");
    aemp_val_t *want = aemp_arr(
        aemp_str("x"), aemp_int(-42), aemp_double(0.25), aemp_bool(1),
        aemp_null(),
        aemp_map_set(aemp_map_new(), "k", aemp_str("caf\xc3\xa9 \"q\"\n")));
    assert_true(aemp_val_equal(s, want));
    aemp_val_free(want);
    aemp_config_free(c);
}

static void save_mode_backup(void **state)
{
    fx_t *f = *state;
    aemp_config_t *c;
    char list[512];
    assert_int_equal(aemp_config_open(&c, f->path), 0);
    set_str(c, NULL, "secret", "one");
    assert_int_equal(aemp_config_save(c), 0);
    expect_mode_0600(f->path);
    expect_file(f->path, "{\"secret\": \"one\"}");
    /* the first save had nothing to keep */
    assert_false(exists(f->bak));
    char *first = cp_slurp(f->path, NULL);

    set_str(c, NULL, "secret", "two");
    assert_int_equal(aemp_config_save(c), 0);
    expect_mode_0600(f->path);
    expect_file(f->path, "{\"secret\": \"two\"}");
    char *bak = cp_slurp(f->bak, NULL);
    assert_non_null(bak);
    assert_string_equal(bak, first); /* the previous contents, exactly */
    free(bak);
    char *second = cp_slurp(f->path, NULL);

    set_str(c, NULL, "secret", "three");
    assert_int_equal(aemp_config_save(c), 0);
    bak = cp_slurp(f->bak, NULL);
    assert_string_equal(bak, second);
    free(bak);
    expect_mode_0600(f->bak); /* it holds a secret too */
    /* exactly one backup, no temporary files left behind */
    dir_listing(f->dir, list, sizeof list);
    assert_string_equal(list, "config.json config.json.bak");
    free(first);
    free(second);
    aemp_config_free(c);
}

/* A file someone made world-readable gets mode 0600 when saved. */
static void save_tightens_mode(void **state)
{
    fx_t *f = *state;
    aemp_config_t *c;
    cp_write_file(f->path, "{\"noderef\": \"a\"}\n");
    assert_int_equal(aemp_config_open(&c, f->path), 0);
    set_str(c, NULL, "secret", "s");
    assert_int_equal(aemp_config_save(c), 0);
    expect_mode_0600(f->path);
    expect_file(f->path, "{\"noderef\": \"a\", \"secret\": \"s\"}");
    expect_file(f->bak, "{\"noderef\": \"a\"}");
    aemp_config_free(c);
}

static void save_creates_directories(void **state)
{
    fx_t *f = *state;
    char path[256], list[512];
    snprintf(path, sizeof path, "%s/a/b/c/config.json", f->dir);
    aemp_config_t *c;
    assert_int_equal(aemp_config_open(&c, path), 0);
    set_str(c, NULL, "noderef", "127.0.0.1:4040");
    assert_int_equal(aemp_config_save(c), 0);
    aemp_config_free(c);
    expect_file(path, "{\"noderef\": \"127.0.0.1:4040\"}");
    expect_mode_0600(path);
    snprintf(path, sizeof path, "%s/a/b/c", f->dir);
    dir_listing(path, list, sizeof list);
    assert_string_equal(list, "config.json");
}

/* A file with a syntax error: open says where, and nothing overwrites it. */
static void syntax_error_read_only(void **state)
{
    fx_t *f = *state;
    const char *text = "{\n  \"a\": 1,\n  \"b\": tru\n}\n";
    cp_write_file(f->path, text);
    aemp_config_t *c = NULL;
    assert_int_equal(aemp_config_open(&c, f->path), AEMP_EPROTO);
    assert_non_null(c); /* set anyway, read-only, to say why */
    const char *err = aemp_config_error(c);
    if (!strstr(err, "line 3, column 10"))
        fail_msg("error \"%s\" does not say \"line 3, column 10\"", err);
    assert_non_null(strstr(err, f->path));
    aemp_val_t *v = aemp_str("x");
    assert_int_equal(aemp_config_set(c, NULL, "secret", &v), AEMP_EPERM);
    assert_non_null(v); /* still ours */
    aemp_val_free(v);
    aemp_val_t *none = NULL;
    assert_int_equal(aemp_config_set(c, NULL, "secret", &none), AEMP_EPERM);
    assert_int_equal(aemp_config_del_profile(c, "p"), AEMP_EPERM);
    assert_int_equal(aemp_config_save(c), AEMP_EPERM);
    assert_true(strlen(aemp_config_error(c)) > 0);
    aemp_config_free(c);
    char *now = cp_slurp(f->path, NULL);
    assert_string_equal(now, text);
    free(now);
    assert_false(exists(f->bak));

    /* the position of other errors too */
    cp_write_file(f->path, "{\n  \"a\": 1,\n  \"b\": [1, 2,\n}\n");
    assert_int_equal(aemp_config_open(&c, f->path), AEMP_EPROTO);
    assert_non_null(strstr(aemp_config_error(c), "line 4, column 1"));
    aemp_config_free(c);
    /* duplicate keys are an error, not a silent choice */
    cp_write_file(f->path, "{\n  \"a\": 1,\n  \"a\": 2\n}\n");
    assert_int_equal(aemp_config_open(&c, f->path), AEMP_EPROTO);
    assert_non_null(strstr(aemp_config_error(c), "line 3, column"));
    aemp_config_free(c);
    /* an empty file is no configuration either */
    cp_write_file(f->path, "");
    assert_int_equal(aemp_config_open(&c, f->path), AEMP_EPROTO);
    assert_int_equal(aemp_config_save(c), AEMP_EPERM);
    aemp_config_free(c);
}

static void non_object_rejected(void **state)
{
    fx_t *f = *state;
    static const char *const texts[] = {"[1, 2]\n", "\"secret\"\n", "42\n",
                                        "null\n", NULL};
    for (size_t i = 0; texts[i]; i++) {
        cp_write_file(f->path, texts[i]);
        aemp_config_t *c = NULL;
        assert_int_equal(aemp_config_open(&c, f->path), AEMP_EPROTO);
        assert_non_null(c);
        assert_true(strlen(aemp_config_error(c)) > 0);
        aemp_val_t *v = aemp_str("x");
        assert_int_equal(aemp_config_set(c, NULL, "secret", &v), AEMP_EPERM);
        aemp_val_free(v);
        assert_int_equal(aemp_config_save(c), AEMP_EPERM);
        aemp_config_free(c);
        char *now = cp_slurp(f->path, NULL);
        assert_string_equal(now, texts[i]);
        free(now);
    }
    assert_false(exists(f->bak));
}

/* A path that cannot be read as a file (a directory): an error, and
 * read-only. */
static void unreadable_path(void **state)
{
    fx_t *f = *state;
    aemp_config_t *c = NULL;
    assert_int_equal(mkdir(f->path, 0700), 0);
    int rc = aemp_config_open(&c, f->path);
    assert_true(rc == AEMP_ESYS || rc == AEMP_EPROTO);
    assert_non_null(c);
    assert_true(strlen(aemp_config_error(c)) > 0);
    aemp_val_t *v = aemp_str("x");
    assert_int_equal(aemp_config_set(c, NULL, "secret", &v), AEMP_EPERM);
    aemp_val_free(v);
    assert_int_equal(aemp_config_save(c), AEMP_EPERM);
    aemp_config_free(c);
}

/* ---- the default path ------------------------------------------------------ */

typedef struct saved_env {
    char *aemp, *xdg, *home;
} saved_env_t;

static char *dup_env(const char *name)
{
    const char *v = getenv(name);
    return v ? strdup(v) : NULL;
}

static void restore_env(const char *name, char *value)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
    free(value);
}

static void expect_default_path(const char *want)
{
    aemp_config_t *c = NULL;
    assert_int_equal(aemp_config_open(&c, NULL), 0);
    assert_string_equal(aemp_config_path(c), want);
    aemp_config_free(c);
}

static void default_path_from_environment(void **state)
{
    fx_t *f = *state;
    saved_env_t s = {dup_env("AEMP_CONFIG"), dup_env("XDG_CONFIG_HOME"),
                     dup_env("HOME")};
    char want[256], xdg[160], home[160];
    snprintf(xdg, sizeof xdg, "%s/xdg", f->dir);
    snprintf(home, sizeof home, "%s/home", f->dir);

    setenv("AEMP_CONFIG", f->path, 1);
    setenv("XDG_CONFIG_HOME", xdg, 1);
    setenv("HOME", home, 1);
    expect_default_path(f->path); /* $AEMP_CONFIG first */

    unsetenv("AEMP_CONFIG");
    snprintf(want, sizeof want, "%s/aemp/config.json", xdg);
    expect_default_path(want);
    setenv("AEMP_CONFIG", "", 1); /* empty: as if unset */
    expect_default_path(want);

    unsetenv("XDG_CONFIG_HOME");
    snprintf(want, sizeof want, "%s/.config/aemp/config.json", home);
    expect_default_path(want);
    setenv("XDG_CONFIG_HOME", "", 1);
    expect_default_path(want);

    /* and it is the file that is read and written */
    aemp_config_t *c;
    assert_int_equal(aemp_config_open(&c, NULL), 0);
    set_str(c, NULL, "secret", "from-home");
    assert_int_equal(aemp_config_save(c), 0);
    aemp_config_free(c);
    expect_file(want, "{\"secret\": \"from-home\"}");
    assert_int_equal(aemp_config_open(&c, NULL), 0);
    assert_string_equal(str_of(aemp_config_get(c, NULL, "secret")),
                        "from-home");
    aemp_config_free(c);

    /* nowhere to look */
    unsetenv("AEMP_CONFIG");
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("HOME");
    c = NULL;
    assert_int_equal(aemp_config_open(&c, NULL), AEMP_EINVAL);
    assert_null(c);

    restore_env("AEMP_CONFIG", s.aemp);
    restore_env("XDG_CONFIG_HOME", s.xdg);
    restore_env("HOME", s.home);
}

static void bad_arguments(void **state)
{
    fx_t *f = *state;
    aemp_config_t *c;
    assert_int_equal(aemp_config_open(NULL, f->path), AEMP_EINVAL);
    assert_int_equal(aemp_config_open(&c, f->path), 0);
    aemp_val_t *v = aemp_str("x");
    assert_int_equal(aemp_config_set(c, NULL, NULL, &v), AEMP_EINVAL);
    assert_int_equal(aemp_config_set(c, NULL, "k", NULL), AEMP_EINVAL);
    assert_int_equal(aemp_config_set(NULL, NULL, "k", &v), AEMP_EINVAL);
    aemp_val_free(v);
    assert_int_equal(aemp_config_del_profile(c, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_config_effective(c, NULL, NULL), AEMP_EINVAL);
    assert_int_equal(aemp_config_save(NULL), AEMP_EINVAL);
    assert_null(aemp_config_get(NULL, NULL, "k"));
    assert_null(aemp_config_get(c, NULL, NULL));
    aemp_config_free(c);
    aemp_config_free(NULL);
}

/* ==== the aemp configuration commands ===================================== */

/* Runs `aemp [--config <cfg>] args...` (the args up to a NULL) to
 * completion. */
static cp_result_t aemp_vcmd(const char *cfg, va_list ap)
{
    const char *argv[40];
    size_t n = 0;
    argv[n++] = AEMP_TOOL_PATH;
    if (cfg) {
        argv[n++] = "--config";
        argv[n++] = cfg;
    }
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 39)
        argv[n++] = a;
    argv[n] = NULL;
    cp_result_t r = cp_run(AEMP_TOOL_PATH, argv, 30);
    assert_false(r.timed_out);
    return r;
}

static cp_result_t aemp_cmd(const char *cfg, ...)
{
    va_list ap;
    va_start(ap, cfg);
    cp_result_t r = aemp_vcmd(cfg, ap);
    va_end(ap);
    return r;
}

#define AEMP(...) aemp_cmd(__VA_ARGS__, (const char *)NULL)

static void ok(cp_result_t r, const char *what)
{
    if (r.signal || r.status != 0) {
        fprintf(stderr, "aemp %s: exit status %d (signal %d)\nstdout: %s\n"
                "stderr: %s\n", what, r.status, r.signal, r.out, r.err);
        cp_result_free(&r); /* fail_msg does not return */
        fail_msg("aemp %s failed", what);
    }
}

/* ok(), then frees r. */
static void ok_free(cp_result_t r, const char *what)
{
    ok(r, what);
    cp_result_free(&r);
}

/* Runs a command on f's file that must succeed. */
#define RUN_OK(...) ok_free(AEMP(f->path, __VA_ARGS__), #__VA_ARGS__)

/* Runs a command that must succeed, then checks the file's content. */
#define STEP(want, ...)                                                        \
    do {                                                                       \
        RUN_OK(__VA_ARGS__);                                                   \
        expect_file(f->path, want);                                            \
        expect_mode_0600(f->path);                                             \
    } while (0)

/* A command that must fail and leave the file as it was. */
#define REFUSED(...)                                                           \
    do {                                                                       \
        char *before_ = cp_slurp(f->path, NULL);                               \
        cp_result_t r_ = AEMP(f->path, __VA_ARGS__);                           \
        if (r_.status == 0 && !r_.signal)                                      \
            fail_msg("aemp %s succeeded, want a failure", #__VA_ARGS__);       \
        assert_true(strlen(r_.err) > 0);                                       \
        cp_result_free(&r_);                                                   \
        char *after_ = cp_slurp(f->path, NULL);                                \
        assert_true((!before_ && !after_) ||                                   \
                    (before_ && after_ && !strcmp(before_, after_)));          \
        free(before_);                                                         \
        free(after_);                                                          \
    } while (0)

/* The string at key in the file (a profile when profile is not NULL);
 * malloc'd, NULL if absent. */
static char *file_str(const char *path, const char *profile, const char *key)
{
    json_t *j = json_of_file(path), *sec = j;
    if (profile)
        sec = json_object_get(json_object_get(j, "profile"), profile);
    const char *s = json_string_value(json_object_get(sec, key));
    char *copy = s ? strdup(s) : NULL;
    json_decref(j);
    return copy;
}

/* The string at key in the file (in profile unless NULL) is want. */
static void expect_file_str(const char *path, const char *profile,
                            const char *key, const char *want)
{
    char *s = file_str(path, profile, key);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static void expect_secret_shape(const char *s)
{
    assert_non_null(s);
    /* 33 random bytes in URL-safe base64: 44 characters, no padding */
    assert_int_equal(strlen(s), 44);
    for (const char *p = s; *p; p++)
        if (!(*p >= 'A' && *p <= 'Z') && !(*p >= 'a' && *p <= 'z') &&
            !(*p >= '0' && *p <= '9') && *p != '-' && *p != '_')
            fail_msg("generated secret \"%s\" has '%c'", s, *p);
}

static void cli_secrets(void **state)
{
    fx_t *f = *state;
    STEP("{\"secret\": \"hunter2\"}", "setsecret", "hunter2");
    RUN_OK("gensecret");
    char *s1 = file_str(f->path, NULL, "secret");
    expect_secret_shape(s1);
    assert_string_not_equal(s1, "hunter2");
    RUN_OK("gensecret");
    char *s2 = file_str(f->path, NULL, "secret");
    expect_secret_shape(s2);
    assert_string_not_equal(s1, s2); /* random each time */
    /* the backup holds the one before */
    char *b = file_str(f->bak, NULL, "secret");
    assert_string_equal(b, s1);
    free(s1);
    free(s2);
    free(b);
    STEP("{}", "clrsecret");
    STEP("{}", "clrsecret"); /* nothing to clear: still fine */
    /* options may follow the command as well */
    ok_free(AEMP(NULL, "setsecret", "after", "--config", f->path),
            "setsecret after --config");
    expect_file(f->path, "{\"secret\": \"after\"}");
    REFUSED("setsecret");
    REFUSED("setsecret", "a", "b");
    REFUSED("clrsecret", "x");
}

static void cli_noderef_seeds_services(void **state)
{
    fx_t *f = *state;
    STEP("{\"noderef\": \"10.0.0.1:4040,[::1]:4040\"}", "setnoderef",
         "10.0.0.1:4040,[::1]:4040");
    STEP("{}", "clrnoderef");
    REFUSED("setnoderef");

    STEP("{\"seeds\": [\"a:1\", \"b:2\", \"c:3\"]}", "setseeds", "a:1", "b:2",
         "c:3");
    STEP("{\"seeds\": [\"a:1\", \"b:2\", \"c:3\", \"d:4\"]}", "addseed",
         "d:4");
    /* already there: no second copy */
    STEP("{\"seeds\": [\"a:1\", \"b:2\", \"c:3\", \"d:4\"]}", "addseed",
         "b:2");
    STEP("{\"seeds\": [\"a:1\", \"c:3\", \"d:4\"]}", "delseed", "b:2");
    REFUSED("delseed", "zz:9"); /* not in the list */
    REFUSED("addseed");
    STEP("{\"seeds\": [\"x:1\"]}", "setseeds", "x:1");
    STEP("{\"seeds\": []}", "setseeds");

    STEP("{\"seeds\": [], \"services\": [\"aemp::echo\", \"my::svc\"]}",
         "setservices", "aemp::echo", "my::svc");
    STEP("{\"seeds\": [], \"services\": [\"aemp::echo\", \"my::svc\", "
         "\"aemp::sink\"]}",
         "addservice", "aemp::sink");
    STEP("{\"seeds\": [], \"services\": [\"aemp::echo\", \"aemp::sink\"]}",
         "delservice", "my::svc");
    REFUSED("delservice", "my::svc");
    REFUSED("delseed", "x:1");
    /* a list made by adding */
    STEP("{\"seeds\": [\"e:5\"], \"services\": [\"aemp::echo\", "
         "\"aemp::sink\"]}",
         "addseed", "e:5");
}

/* A real ed25519 key and self-signed certificate (CN=aemp-test, valid
 * until 2126): setcert checks what it is given. */
static const char pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIAGXiBs6G0R1L2Ms5vJO6yBuKqFJHJEDlL+Eax8pwVEJ\n"
    "-----END PRIVATE KEY-----\n"
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBPjCB8aADAgECAhRhIjkdX/MEbXWlfiCz+8Y1ulTDCDAFBgMrZXAwFDESMBAG\n"
    "A1UEAwwJYWVtcC10ZXN0MCAXDTI2MTIwMTExMjczOFoYDzIxMjYxMTA3MTEyNzM4\n"
    "WjAUMRIwEAYDVQQDDAlhZW1wLXRlc3QwKjAFBgMrZXADIQBWpEPTGYN7BLn9GaeL\n"
    "+3+xUK/jDM7Qn1rh9A7n5Uy6dqNTMFEwHQYDVR0OBBYEFFr2hT2BdECfzm2EFi1h\n"
    "aLBNHsewMB8GA1UdIwQYMBaAFFr2hT2BdECfzm2EFi1haLBNHsewMA8GA1UdEwEB\n"
    "/wQFMAMBAf8wBQYDK2VwA0EAqSO/H0JnDdtzz00DDfy/Q7rhek9AhVXFTNp+aXC/\n"
    "v+nw9OgG6dTivHfaXV6xroqQs6x+xsOWcq3LKalMW/jSCw==\n"
    "-----END CERTIFICATE-----\n";

/* Writes pem into <f's dir>/name; its path into buf. */
static void pem_file(const fx_t *f, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", f->dir, name);
    cp_write_file(buf, pem);
}

static void cli_cert_file(void **state)
{
    fx_t *f = *state;
    char pemfile[160];
    pem_file(f, "node.pem", pemfile, sizeof pemfile);
    RUN_OK("setcert", pemfile);
    /* the file's content, not its name */
    expect_file_str(f->path, NULL, "cert", pem);
    expect_mode_0600(f->path);
    RUN_OK("clrcert");
    expect_file(f->path, "{}");
    REFUSED("setcert", "/nonexistent/not-pem");
    REFUSED("setcert");
    /* PEM that OpenSSL cannot use is refused, and the file keeps none */
    REFUSED("setcert", "-----BEGIN CERTIFICATE-----\nnot base64\n"
                       "-----END CERTIFICATE-----\n");
    REFUSED("setcert", strstr(pem, "-----BEGIN CERTIFICATE")); /* no key */
    expect_file(f->path, "{}");
    /* setca: certificates only; clrca */
    RUN_OK("setca", pemfile);
    expect_file_str(f->path, NULL, "ca", pem);
    RUN_OK("clrca");
    expect_file(f->path, "{}");
}

/* PEM text on the command line (what `aemp setcert "$(cat f)"` does). */
static void cli_cert_pem_text(void **state)
{
    fx_t *f = *state;
    RUN_OK("setcert", pem);
    expect_file_str(f->path, NULL, "cert", pem);
    STEP("{}", "clrcert");
}

/* SPEC.md §4 lists gencert: a fresh key and self-signed certificate. */
static void cli_gencert(void **state)
{
    fx_t *f = *state;
    RUN_OK("gencert");
    char *c = file_str(f->path, NULL, "cert");
    assert_non_null(c);
    assert_non_null(strstr(c, "-----BEGIN CERTIFICATE-----"));
    assert_non_null(strstr(c, "PRIVATE KEY-----"));
    free(c);
    expect_mode_0600(f->path);
}

static void cli_profiles(void **state)
{
    fx_t *f = *state;
    STEP("{\"secret\": \"top\"}", "setsecret", "top");
    STEP("{\"secret\": \"top\", \"profile\": {\"n1\": "
         "{\"noderef\": \"127.0.0.1:4041\"}}}",
         "profile", "n1", "setnoderef", "127.0.0.1:4041");
    STEP("{\"secret\": \"top\", \"profile\": {\"n1\": "
         "{\"noderef\": \"127.0.0.1:4041\", \"seeds\": [\"127.0.0.1:4042\"]}}}",
         "profile", "n1", "addseed", "127.0.0.1:4042");
    STEP("{\"secret\": \"top\", \"profile\": {\"n1\": "
         "{\"noderef\": \"127.0.0.1:4041\", \"seeds\": [\"127.0.0.1:4042\"], "
         "\"secret\": \"own\"}}}",
         "profile", "n1", "setsecret", "own");
    STEP("{\"secret\": \"top\", \"profile\": {\"n1\": "
         "{\"noderef\": \"127.0.0.1:4041\", \"seeds\": [\"127.0.0.1:4042\"], "
         "\"secret\": \"own\"}, \"n2\": {\"services\": [\"aemp::echo\"]}}}",
         "profile", "n2", "setservices", "aemp::echo");
    STEP("{\"secret\": \"top\", \"profile\": {\"n1\": "
         "{\"noderef\": \"127.0.0.1:4041\", \"seeds\": [\"127.0.0.1:4042\"]}, "
         "\"n2\": {\"services\": [\"aemp::echo\"]}}}",
         "profile", "n1", "clrsecret");
    STEP("{\"secret\": \"top\", \"profile\": {\"n1\": "
         "{\"seeds\": [\"127.0.0.1:4042\"]}, "
         "\"n2\": {\"services\": [\"aemp::echo\"]}}}",
         "profile", "n1", "clrnoderef");
    STEP("{\"secret\": \"top\", \"profile\": {\"n1\": "
         "{\"seeds\": [\"127.0.0.1:4042\", \"127.0.0.1:4043\"]}, "
         "\"n2\": {\"services\": [\"aemp::echo\"]}}}",
         "profile", "n1", "addseed", "127.0.0.1:4043");
    STEP("{\"secret\": \"top\", \"profile\": {\"n1\": "
         "{\"seeds\": [\"127.0.0.1:4043\"]}, "
         "\"n2\": {\"services\": [\"aemp::echo\"]}}}",
         "profile", "n1", "delseed", "127.0.0.1:4042");
    STEP("{\"secret\": \"top\", \"profile\": {\"n1\": "
         "{\"seeds\": [\"127.0.0.1:4043\"]}, "
         "\"n2\": {\"services\": [\"aemp::echo\", \"aemp::sink\"]}}}",
         "profile", "n2", "addservice", "aemp::sink");
    STEP("{\"secret\": \"top\", \"profile\": {\"n1\": "
         "{\"seeds\": [\"127.0.0.1:4043\"]}, "
         "\"n2\": {\"services\": [\"aemp::sink\"]}}}",
         "profile", "n2", "delservice", "aemp::echo");
    STEP("{\"secret\": \"top\", \"profile\": {\"n1\": "
         "{\"seeds\": [\"a:1\", \"b:2\"]}, "
         "\"n2\": {\"services\": [\"aemp::sink\"]}}}",
         "profile", "n1", "setseeds", "a:1", "b:2");
    /* a profile's gensecret goes into the profile */
    RUN_OK("profile", "n2", "gensecret");
    char *s = file_str(f->path, "n2", "secret");
    expect_secret_shape(s);
    free(s);
    expect_file_str(f->path, NULL, "secret", "top");
    /* profile certs */
    char pemfile[160];
    pem_file(f, "n1.pem", pemfile, sizeof pemfile);
    RUN_OK("profile", "n1", "setcert", pemfile);
    expect_file_str(f->path, "n1", "cert", pem);
    RUN_OK("profile", "n2", "clrsecret");
    STEP("{\"secret\": \"top\", \"profile\": {\"n1\": "
         "{\"seeds\": [\"a:1\", \"b:2\"]}, "
         "\"n2\": {\"services\": [\"aemp::sink\"]}}}",
         "profile", "n1", "clrcert");

    STEP("{\"secret\": \"top\", \"profile\": {"
         "\"n2\": {\"services\": [\"aemp::sink\"]}}}",
         "delprofile", "n1");
    STEP("{\"secret\": \"top\", \"profile\": {"
         "\"n2\": {\"services\": [\"aemp::sink\"]}}}",
         "delprofile", "n1"); /* absent: nothing to do */
    REFUSED("profile", "n2");
    REFUSED("profile", "n2", "nosuchcommand");
    REFUSED("profile", "n2", "profile", "n3", "setsecret", "x");
    REFUSED("profile", "n2", "delprofile", "n2");
    REFUSED("delprofile");
    STEP("{\"secret\": \"top\", \"profile\": {}}", "delprofile", "n2");
}

/* showconfig's output as JSON (yours). */
static json_t *show(const char *path, ...)
{
    va_list ap;
    va_start(ap, path);
    cp_result_t r = aemp_vcmd(path, ap);
    va_end(ap);
    ok(r, "showconfig");
    json_t *j = json_of_text(r.out, "showconfig's output");
    cp_result_free(&r);
    assert_true(json_is_object(j));
    return j;
}

static void expect_json(json_t *got, const char *want)
{
    json_t *w = json_of_text(want, "expected");
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        fail_msg("got %s\nwant %s", g, want);
    }
    json_decref(w);
    json_decref(got);
}

static void cli_showconfig(void **state)
{
    fx_t *f = *state;
    expect_json(show(f->path, "showconfig", NULL), "{}");
    /* showconfig must not create the file */
    assert_false(exists(f->path));
    RUN_OK("setsecret", "topsecret");
    RUN_OK("setseeds", "a:1");
    RUN_OK("profile", "n1", "setnoderef", "127.0.0.1:4041");
    RUN_OK("profile", "n1", "setsecret", "n1secret");
    char pemfile[160];
    pem_file(f, "n.pem", pemfile, sizeof pemfile);
    RUN_OK("profile", "n2", "setcert", pemfile);
    char *before = cp_slurp(f->path, NULL);

    expect_json(show(f->path, "showconfig", NULL),
                "{\"secret\": \"********\", \"seeds\": [\"a:1\"]}");
    expect_json(show(f->path, "showconfig", "--show-secret", NULL),
                "{\"secret\": \"topsecret\", \"seeds\": [\"a:1\"]}");
    /* a profile: the defaults merged with it */
    expect_json(show(f->path, "showconfig", "n1", NULL),
                "{\"secret\": \"********\", \"seeds\": [\"a:1\"], "
                "\"noderef\": \"127.0.0.1:4041\"}");
    expect_json(show(f->path, "--show-secret", "showconfig", "n1", NULL),
                "{\"secret\": \"n1secret\", \"seeds\": [\"a:1\"], "
                "\"noderef\": \"127.0.0.1:4041\"}");
    expect_json(show(f->path, "profile", "n1", "showconfig", NULL),
                "{\"secret\": \"********\", \"seeds\": [\"a:1\"], "
                "\"noderef\": \"127.0.0.1:4041\"}");
    /* without a name: the profile `run` would use (--profile here) */
    expect_json(show(f->path, "--profile", "n1", "showconfig", NULL),
                "{\"secret\": \"********\", \"seeds\": [\"a:1\"], "
                "\"noderef\": \"127.0.0.1:4041\"}");
    /* the PEM data is not dumped either: the certificate's subject,
     * fingerprint and expiry instead */
    json_t *n2 = show(f->path, "showconfig", "n2", NULL);
    json_t *cert = json_object_get(n2, "cert");
    assert_true(json_is_object(cert));
    char *dump = json_dumps(n2, 0);
    assert_null(strstr(dump, "PRIVATE KEY"));
    assert_null(strstr(dump, "BEGIN"));
    free(dump);
    assert_string_equal(json_string_value(json_object_get(cert, "subject")),
                        "CN=aemp-test");
    const char *fp = json_string_value(json_object_get(cert, "sha256"));
    assert_non_null(fp);
    assert_int_equal(strlen(fp), 32 * 3 - 1); /* AB:CD:... */
    assert_non_null(
        strstr(json_string_value(json_object_get(cert, "expires")), "2126"));
    assert_true(json_integer_value(json_object_get(cert, "days_left")) >
                36000);
    json_decref(n2);
    /* an unknown profile: the defaults */
    expect_json(show(f->path, "showconfig", "nobody", NULL),
                "{\"secret\": \"********\", \"seeds\": [\"a:1\"]}");
    /* showing changes nothing */
    char *after = cp_slurp(f->path, NULL);
    assert_string_equal(before, after);
    free(before);
    free(after);
    REFUSED("showconfig", "a", "b");
}

/* The default file through $AEMP_CONFIG, as users would set it. */
static void cli_config_from_environment(void **state)
{
    fx_t *f = *state;
    char *saved = dup_env("AEMP_CONFIG");
    setenv("AEMP_CONFIG", f->path, 1);
    cp_result_t r = AEMP(NULL, "setsecret", "env");
    restore_env("AEMP_CONFIG", saved);
    ok_free(r, "setsecret (AEMP_CONFIG)");
    expect_file(f->path, "{\"secret\": \"env\"}");
}

/* A file that cannot be parsed: every command says where, fails, and
 * leaves the file alone. */
static void cli_unreadable_file(void **state)
{
    fx_t *f = *state;
    const char *text = "{\n  \"secret\": \"s\",\n  \"seeds\": [1 2]\n}\n";
    cp_write_file(f->path, text);
    static const char *const cmds[][6] = {
        {"setsecret", "x"},
        {"gensecret"},
        {"clrsecret"},
        {"setnoderef", "a:1"},
        {"clrnoderef"},
        {"setseeds", "a:1"},
        {"addseed", "a:1"},
        {"delseed", "a:1"},
        {"setservices", "s"},
        {"addservice", "s"},
        {"delservice", "s"},
        {"clrcert"},
        {"profile", "p", "setsecret", "x"},
        {"delprofile", "p"},
        {"showconfig"},
        {"run", "127.0.0.1:1"},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const char *argv[10] = {AEMP_TOOL_PATH, "--config", f->path};
        size_t n = 3;
        for (size_t k = 0; k < 6 && cmds[i][k]; k++)
            argv[n++] = cmds[i][k];
        argv[n] = NULL;
        cp_result_t r = cp_run(AEMP_TOOL_PATH, argv, 30);
        if (r.status == 0 || r.signal)
            fail_msg("aemp %s on a broken file: exit %d signal %d", cmds[i][0],
                     r.status, r.signal);
        if (!strstr(r.err, "line 3, column"))
            fail_msg("aemp %s: stderr does not say where: %s", cmds[i][0],
                     r.err);
        cp_result_free(&r);
        char *now = cp_slurp(f->path, NULL);
        assert_string_equal(now, text);
        free(now);
        assert_false(exists(f->bak));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(open_missing_is_empty, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(set_get_effective, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_key_and_profile, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(save_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(save_mode_backup, setup, teardown),
        cmocka_unit_test_setup_teardown(save_tightens_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(save_creates_directories, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(syntax_error_read_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(non_object_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(unreadable_path, setup, teardown),
        cmocka_unit_test_setup_teardown(default_path_from_environment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(cli_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(cli_noderef_seeds_services, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cli_cert_file, setup, teardown),
        cmocka_unit_test_setup_teardown(cli_cert_pem_text, setup, teardown),
        cmocka_unit_test_setup_teardown(cli_gencert, setup, teardown),
        cmocka_unit_test_setup_teardown(cli_profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(cli_showconfig, setup, teardown),
        cmocka_unit_test_setup_teardown(cli_config_from_environment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cli_unreadable_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
