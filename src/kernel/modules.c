/* Loadable modules: C's answer to Perl loading the package of an init
 * function by name.  "a::b::init" is looked for as a/b.so, then a.so
 * (longest package first) in each directory of the module path — the
 * node's (aemp_module_path_add, configuration key module_path, aemp run
 * --module-path), then $AEMP_MODULE_PATH — and a module found is loaded
 * once per node and must export aemp_module_init(node), which registers
 * its init functions with aemp_register. */
#include "kernel.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MODULE_ENTRY "aemp_module_init"

struct aemp__modules {
    char **dirs;
    size_t ndirs;
    char **loaded; /* paths whose aemp_module_init ran for this node */
    void **handles;
    size_t nloaded;
};

static struct aemp__modules *modules_of(aemp_node_t *n)
{
    if (!n->modules && (n->modules = aemp__calloc(1, sizeof *n->modules)) &&
        aemp__node_at_free(n, aemp__modules_free) < 0) {
        aemp__free(n->modules);
        n->modules = NULL;
    }
    return n->modules;
}

int aemp_module_path_add(aemp_node_t *n, const char *dir)
{
    if (!n || !dir || !*dir)
        return AEMP_EINVAL;
    struct aemp__modules *m = modules_of(n);
    char **dirs = m ? aemp__reallocarray(m->dirs, m->ndirs + 1, sizeof *dirs)
                    : NULL;
    if (!dirs)
        return AEMP_ENOMEM;
    m->dirs = dirs;
    if (!(m->dirs[m->ndirs] = aemp__strdup(dir)))
        return AEMP_ENOMEM;
    m->ndirs++;
    return 0;
}

void aemp__modules_free(aemp_node_t *n)
{
    struct aemp__modules *m = n->modules;
    if (!m)
        return;
    /* dlopen counts: another node of the process keeps its own hold */
    for (size_t i = 0; i < m->ndirs; i++)
        aemp__free(m->dirs[i]);
    for (size_t i = 0; i < m->nloaded; i++) {
        dlclose(m->handles[i]);
        aemp__free(m->loaded[i]);
    }
    aemp__free(m->dirs);
    aemp__free(m->loaded);
    aemp__free(m->handles);
    aemp__free(m);
    n->modules = NULL;
}

static bool loaded(const struct aemp__modules *m, const char *path)
{
    for (size_t i = 0; i < m->nloaded; i++)
        if (!strcmp(m->loaded[i], path))
            return true;
    return false;
}

/* Loads path and runs its entry point for n.  0, or an error with why. */
static int load(aemp_node_t *n, struct aemp__modules *m, const char *path,
                char *why, size_t whylen)
{
    char **l = aemp__reallocarray(m->loaded, m->nloaded + 1, sizeof *l);
    if (l)
        m->loaded = l;
    void **h = l ? aemp__reallocarray(m->handles, m->nloaded + 1, sizeof *h)
                 : NULL;
    if (h)
        m->handles = h;
    char *copy = h ? aemp__strdup(path) : NULL;
    if (!copy)
        return AEMP_ENOMEM;
    dlerror();
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(why, whylen, "cannot load %s: %s", path, dlerror());
        aemp__free(copy);
        return AEMP_ESYS;
    }
    int (*entry)(aemp_node_t *);
    *(void **)&entry = dlsym(handle, MODULE_ENTRY);
    if (!entry) {
        snprintf(why, whylen, "%s has no %s: %s", path, MODULE_ENTRY,
                 dlerror());
        dlclose(handle);
        aemp__free(copy);
        return AEMP_EPROTO;
    }
    /* once per node, whatever the entry point says: it may have
     * registered some functions before failing */
    m->loaded[m->nloaded] = copy;
    m->handles[m->nloaded++] = handle;
    aemp__log(n, AEMP_LOG_INFO, "module %s loaded", path);
    int rc = entry(n);
    if (rc < 0) {
        snprintf(why, whylen, "%s: %s failed: %s", path, MODULE_ENTRY,
                 aemp_strerror(rc));
        return rc;
    }
    return 0;
}

/* Tries dir/<file> for every directory of the path. */
static int try_dirs(aemp_node_t *n, struct aemp__modules *m, const char *file,
                    char *why, size_t whylen)
{
    const char *env = getenv("AEMP_MODULE_PATH");
    size_t ndirs = m->ndirs;
    for (size_t i = 0;; i++) {
        char path[4096];
        const char *dir;
        size_t dirlen;
        if (i < ndirs) {
            dir = m->dirs[i];
            dirlen = strlen(dir);
        } else if (env && *env) {
            dir = env;
            const char *colon = strchr(env, ':');
            dirlen = colon ? (size_t)(colon - env) : strlen(env);
            env = colon ? colon + 1 : NULL;
            if (!dirlen)
                continue;
        } else {
            return AEMP_ENOTFOUND;
        }
        if ((size_t)snprintf(path, sizeof path, "%.*s/%s", (int)dirlen, dir,
                             file) >= sizeof path ||
            access(path, F_OK) != 0)
            continue;
        if (loaded(m, path)) {
            snprintf(why, whylen, "%s does not register it", path);
            return 1; /* loaded before: the name is not in it */
        }
        return load(n, m, path, why, whylen);
    }
}

int aemp__module_load(aemp_node_t *n, const char *name, char *why,
                      size_t whylen)
{
    struct aemp__modules *m = modules_of(n);
    if (!m) {
        snprintf(why, whylen, "out of memory");
        return AEMP_ENOMEM;
    }
    /* "a::b::init" -> "a/b" (then "a"): the packages, '/'-separated */
    char pkg[1024];
    const char *last = NULL;
    for (const char *s = strstr(name, "::"); s; s = strstr(s + 2, "::"))
        last = s;
    if (!last || (size_t)(last - name) >= sizeof pkg - 4) {
        snprintf(why, whylen, "not a fully qualified name");
        return AEMP_EINVAL;
    }
    size_t len = 0;
    for (const char *s = name; s < last;) {
        if (!strncmp(s, "::", 2)) {
            pkg[len++] = '/';
            s += 2;
        } else {
            pkg[len++] = *s++;
        }
    }
    pkg[len] = 0;
    for (;;) {
        char file[1100];
        snprintf(file, sizeof file, "%s.so", pkg);
        int rc = try_dirs(n, m, file, why, whylen);
        if (rc == 1)
            return AEMP_ENOTFOUND; /* why says which module */
        if (rc != AEMP_ENOTFOUND)
            return rc;
        char *slash = strrchr(pkg, '/');
        if (!slash)
            break;
        *slash = 0;
    }
    snprintf(why, whylen, "no module for it on the module path");
    return AEMP_ENOTFOUND;
}
