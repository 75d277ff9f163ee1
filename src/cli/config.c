/* config.c - profile files: "key = value" lines, '#' comments.
 * Invariant: keys and values are bounded copies; a line that does not fit
 * or does not parse is an error naming file and line, never truncated. */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = 0;
    return s;
}

static int parse_file(config *c, FILE *f, const char *path, char *err, size_t errlen)
{
    char line[256];
    int ln = 0;
    c->n = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s:%d: line too long", path, ln);
            return -EINVAL;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected 'key = value'", path, ln);
            return -EINVAL;
        }
        *eq = 0;
        char *k = trim(s), *v = trim(eq + 1);
        if (!*k || !*v || strlen(k) >= sizeof c->e[0].key || strlen(v) >= sizeof c->e[0].value) {
            snprintf(err, errlen, "%s:%d: empty or oversized key/value", path, ln);
            return -EINVAL;
        }
        if (c->n == (int)(sizeof c->e / sizeof c->e[0])) {
            snprintf(err, errlen, "%s:%d: too many entries", path, ln);
            return -EINVAL;
        }
        strcpy(c->e[c->n].key, k);
        strcpy(c->e[c->n].value, v);
        c->n++;
    }
    return 0;
}

int config_load(config *c, const char *name, const char *argv0, char *err, size_t errlen)
{
    char path[4096];
    FILE *f = NULL;
    if (strchr(name, '/') || strstr(name, ".conf")) {
        snprintf(path, sizeof path, "%s", name);
        f = fopen(path, "r");
    } else {
        /* $MOESTREAM_CONFIG_DIR/NAME.conf, then configs/ next to the binary
         * (the repository root for ./moestream), then an installed
         * PREFIX/share/moestream/configs (the binary in PREFIX/bin, so any
         * PREFIX works without a rebuild), then ./configs */
        char bindir[4096 + 16] = "", share[4096 + 32] = "", tmp[4096];
        ssize_t l = readlink("/proc/self/exe", tmp, sizeof tmp - 1);
        (void)argv0;
        if (l > 0) {
            tmp[l] = 0;
            snprintf(bindir, sizeof bindir, "%s/configs", dirname(tmp));
            /* dirname() cut tmp down to the binary's directory */
            snprintf(share, sizeof share, "%s/../share/moestream/configs", tmp);
        }
        const char *env = getenv("MOESTREAM_CONFIG_DIR");
        const char *dirs[4] = {env && *env ? env : NULL, l > 0 ? bindir : NULL, l > 0 ? share : NULL,
                               "./configs"};
        for (int i = 0; i < 4 && !f; i++) {
            if (!dirs[i])
                continue;
            snprintf(path, sizeof path, "%s/%s.conf", dirs[i], name);
            f = fopen(path, "r");
        }
    }
    if (!f) {
        snprintf(err, errlen,
                 "config '%s' not found (looked for %s.conf in $MOESTREAM_CONFIG_DIR, configs/ beside "
                 "the binary, PREFIX/share/moestream/configs, ./configs)",
                 name, name);
        return -ENOENT;
    }
    int rc = parse_file(c, f, path, err, errlen);
    fclose(f);
    return rc;
}

const char *config_get(const config *c, const char *key)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].key, key))
            return c->e[i].value;
    return NULL;
}

int config_to_args(const config *c, char **out, int cap)
{
    static _Thread_local char keys[32][40];
    int n = 0;
    for (int i = 0; i < c->n && n + 2 <= cap; i++) {
        snprintf(keys[i], sizeof keys[i], "--%s", c->e[i].key);
        out[n++] = keys[i];
        out[n++] = (char *)c->e[i].value;
    }
    return n;
}
