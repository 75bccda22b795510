/* The configuration file: a JSON object read with jansson into a value
 * tree, changed in memory, written back atomically. */
#include "value.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct aemp_config {
    char *path;
    aemp_val_t *doc; /* a map */
    bool readonly;   /* unreadable when opened: never overwritten */
    char error[512];
};

static int cfg_fail(aemp_config_t *c, int rc, const char *fmt, ...)
    AEMP_PRINTF(3, 4);
static int cfg_fail(aemp_config_t *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    return rc;
}

static char *default_path(void)
{
    const char *env = getenv("AEMP_CONFIG"), *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    if (env && *env)
        return aemp__strdup(env);
    if (xdg && *xdg)
        return aemp__asprintf("%s/aemp/config.json", xdg);
    if (home && *home)
        return aemp__asprintf("%s/.config/aemp/config.json", home);
    return NULL;
}

/* ---- jansson <-> values ------------------------------------------------ */

static aemp_val_t *from_json(json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        aemp_val_t *m = aemp_map_new();
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) m = aemp_map_set(m, k, from_json(v));
        return m;
    }
    case JSON_ARRAY: {
        aemp_val_t *a = aemp_arr_new();
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) a = aemp_arr_push(a, from_json(v));
        return a;
    }
    case JSON_STRING:
        return aemp_strn(json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        return aemp_int(json_integer_value(j));
    case JSON_REAL:
        return aemp_double(json_real_value(j));
    case JSON_TRUE:
        return aemp_bool(1);
    case JSON_FALSE:
        return aemp_bool(0);
    default:
        return aemp_null();
    }
}

static json_t *to_json(const aemp_val_t *v)
{
    json_t *j = NULL;
    switch ((aemp_type_t)v->type) {
    case AEMP_T_MAP:
        j = json_object();
        for (size_t i = 0; j && i < v->len; i++)
            if (json_object_setn_new(j, v->u.items[2 * i].u.s,
                                     v->u.items[2 * i].len,
                                     to_json(&v->u.items[2 * i + 1])) < 0) {
                json_decref(j);
                return NULL;
            }
        return j;
    case AEMP_T_ARR:
        j = json_array();
        for (size_t i = 0; j && i < v->len; i++)
            if (json_array_append_new(j, to_json(&v->u.items[i])) < 0) {
                json_decref(j);
                return NULL;
            }
        return j;
    case AEMP_T_STR:
    case AEMP_T_BYTES:
        return json_stringn(v->u.s, v->len);
    case AEMP_T_INT:
        return json_integer(v->u.i);
    case AEMP_T_DOUBLE:
        return json_real(v->u.d);
    case AEMP_T_BOOL:
        return json_boolean(v->u.i);
    case AEMP_T_NULL:
        break;
    }
    return json_null();
}

/* ---- opening --------------------------------------------------------------- */

static int load(aemp_config_t *c)
{
    json_error_t err;
    FILE *f = fopen(c->path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 0; /* no file yet: an empty configuration */
        c->readonly = true;
        return cfg_fail(c, AEMP_ESYS, "%s: %s", c->path, strerror(errno));
    }
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &err);
    fclose(f);
    if (!root) {
        c->readonly = true;
        return cfg_fail(c, AEMP_EPROTO, "%s: line %d, column %d: %s", c->path,
                        err.line, err.column, err.text);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        c->readonly = true;
        return cfg_fail(c, AEMP_EPROTO, "%s: not a JSON object", c->path);
    }
    aemp_val_t *doc = from_json(root);
    json_decref(root);
    if (!doc)
        return cfg_fail(c, AEMP_ENOMEM, "out of memory");
    aemp_val_free(c->doc);
    c->doc = doc;
    return 0;
}

int aemp_config_open(aemp_config_t **out, const char *path)
{
    if (!out)
        return AEMP_EINVAL;
    aemp_config_t *c = aemp__calloc(1, sizeof *c);
    if (!c)
        return AEMP_ENOMEM;
    c->path = path ? aemp__strdup(path) : default_path();
    c->doc = aemp_map_new();
    if (!c->doc || !c->path) {
        int rc = c->doc && !path ? AEMP_EINVAL : AEMP_ENOMEM;
        aemp_config_free(c);
        return rc; /* EINVAL: no HOME to find the default file */
    }
    int rc = load(c);
    if (rc == AEMP_ENOMEM) {
        aemp_config_free(c);
        return rc;
    }
    *out = c;
    return rc;
}

void aemp_config_free(aemp_config_t *c)
{
    if (!c)
        return;
    aemp__free(c->path);
    aemp_val_free(c->doc);
    aemp__free(c);
}

const char *aemp_config_path(const aemp_config_t *c)
{
    return c ? c->path : "";
}

const char *aemp_config_error(const aemp_config_t *c)
{
    return c ? c->error : "";
}

/* ---- reading and changing ------------------------------------------------ */

static aemp_val_t *section(const aemp_config_t *c, const char *profile)
{
    if (!profile)
        return c->doc;
    aemp_val_t *all = (aemp_val_t *)aemp_map_get(c->doc, "profile");
    return (aemp_val_t *)aemp_map_get(all, profile);
}

const aemp_val_t *aemp_config_get(const aemp_config_t *c, const char *profile,
                                  const char *key)
{
    if (!c || !key || !strcmp(key, "profile"))
        return NULL;
    const aemp_val_t *v = aemp_map_get(section(c, profile), key);
    return v ? v : aemp_map_get(c->doc, key);
}

/* The section for profile, created when missing. */
static aemp_val_t *section_make(aemp_config_t *c, const char *profile)
{
    aemp_val_t *s = section(c, profile);
    if (s || !profile)
        return s;
    aemp_val_t *all = (aemp_val_t *)aemp_map_get(c->doc, "profile");
    if (!all && aemp__map_put(c->doc, "profile", aemp_map_new()) == 0)
        all = (aemp_val_t *)aemp_map_get(c->doc, "profile");
    if (aemp_val_type(all) != AEMP_T_MAP ||
        aemp__map_put(all, profile, aemp_map_new()) < 0)
        return NULL;
    return (aemp_val_t *)aemp_map_get(all, profile);
}

int aemp_config_set(aemp_config_t *c, const char *profile, const char *key,
                    aemp_val_t **val)
{
    if (!c || !key || !val || !strcmp(key, "profile"))
        return AEMP_EINVAL;
    if (c->readonly)
        return cfg_fail(c, AEMP_EPERM, "%s could not be read: not changing it",
                        c->path);
    aemp_val_t *s = section(c, profile);
    if (!*val) {
        if (s)
            aemp__map_del(s, key);
        return 0;
    }
    aemp_val_t *v = aemp_val_copy(*val); /* *val stays yours on failure */
    if (!v || !(s = section_make(c, profile)) || aemp__map_put(s, key, v) < 0) {
        if (!s)
            aemp_val_free(v);
        return AEMP_ENOMEM;
    }
    aemp_val_free(*val);
    *val = NULL;
    return 0;
}

int aemp_config_del_profile(aemp_config_t *c, const char *profile)
{
    if (!c || !profile)
        return AEMP_EINVAL;
    if (c->readonly)
        return AEMP_EPERM;
    aemp_val_t *all = (aemp_val_t *)aemp_map_get(c->doc, "profile");
    if (aemp_val_type(all) == AEMP_T_MAP)
        aemp__map_del(all, profile);
    return 0;
}

int aemp_config_effective(const aemp_config_t *c, const char *profile,
                          aemp_val_t **out)
{
    if (!c || !out)
        return AEMP_EINVAL;
    aemp_val_t *m = aemp_map_new();
    const aemp_val_t *sec[2] = {c->doc, profile ? section(c, profile) : NULL};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; sec[s] && m && i < sec[s]->len; i++) {
            const char *k = sec[s]->u.items[2 * i].u.s;
            if (strcmp(k, "profile") != 0)
                m = aemp_map_set(m, k,
                                 aemp_val_copy(&sec[s]->u.items[2 * i + 1]));
        }
    if (!m)
        return AEMP_ENOMEM;
    *out = m;
    return 0;
}

/* ---- saving ------------------------------------------------------------------ */

static int mkdirs(char *dir)
{
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        int rc = mkdir(dir, 0700);
        *p = '/';
        if (rc < 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(dir, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int backup(aemp_config_t *c, const char *tmp)
{
    char *ln = aemp__asprintf("%s.bak", tmp);
    char *bak = aemp__asprintf("%s.bak", c->path);
    int rc = 0;
    if (!ln || !bak)
        rc = cfg_fail(c, AEMP_ENOMEM, "out of memory");
    else if (link(c->path, ln) < 0) {
        if (errno != ENOENT) /* no file yet: nothing to keep */
            rc = cfg_fail(c, AEMP_ESYS, "%s: %s", ln, strerror(errno));
    } else if (rename(ln, bak) < 0) {
        rc = cfg_fail(c, AEMP_ESYS, "%s: %s", bak, strerror(errno));
    }
    if (ln)
        unlink(ln);
    aemp__free(ln);
    aemp__free(bak);
    return rc;
}

int aemp_config_save(aemp_config_t *c)
{
    if (!c)
        return AEMP_EINVAL;
    if (c->readonly)
        return cfg_fail(c, AEMP_EPERM, "%s could not be read: not overwriting "
                        "it", c->path);
    json_t *root = to_json(c->doc);
    char *text = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
    json_decref(root);
    char *dir = aemp__strdup(c->path), *slash = dir ? strrchr(dir, '/') : NULL;
    char *tmp = aemp__asprintf("%s.tmp.%ld", c->path, (long)getpid());
    int rc = text && dir && tmp ? 0 : AEMP_ENOMEM, fd = -1;
    if (rc == 0 && slash && slash != dir) {
        *slash = 0;
        if (mkdirs(dir) < 0)
            rc = cfg_fail(c, AEMP_ESYS, "%s: %s", dir, strerror(errno));
    }
    if (rc == 0 && (fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
        rc = cfg_fail(c, AEMP_ESYS, "%s: %s", tmp, strerror(errno));
    if (rc == 0 && (write_all(fd, text, strlen(text)) < 0 ||
                    write_all(fd, "\n", 1) < 0 || fsync(fd) < 0))
        rc = cfg_fail(c, AEMP_ESYS, "%s: %s", tmp, strerror(errno));
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = cfg_fail(c, AEMP_ESYS, "%s: %s", tmp, strerror(errno));
    /* the old file stays reachable as .bak (linked under a private name,
     * then renamed, so concurrent saves cannot trip over each other); the
     * final rename is the commit */
    if (rc == 0)
        rc = backup(c, tmp);
    if (rc == 0 && rename(tmp, c->path) < 0)
        rc = cfg_fail(c, AEMP_ESYS, "%s: %s", c->path, strerror(errno));
    if (rc < 0 && tmp)
        unlink(tmp);
    if (rc == 0 && slash && (fd = open(dir, O_RDONLY)) >= 0) {
        fsync(fd); /* the rename itself */
        close(fd);
    }
    free(text);
    aemp__free(dir);
    aemp__free(tmp);
    return rc;
}
