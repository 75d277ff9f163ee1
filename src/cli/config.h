/* config.h - hardware profiles (configs/NAME.conf): key = value lines that
 * pre-set long options; command-line flags given later override them.
 * Owns: config_* only. */
#ifndef MS_CONFIG_H
#define MS_CONFIG_H

#include <stddef.h>

typedef struct config_entry {
    char key[32];
    char value[96];
} config_entry;

typedef struct config {
    config_entry e[32];
    int n;
} config;

/* Loads NAME (looked up as NAME.conf in $MOESTREAM_CONFIG_DIR, configs/ next
 * to the binary, PREFIX/share/moestream/configs for a binary installed in
 * PREFIX/bin, then ./configs) or a path.
 * Returns 0 or -errno with a message naming file and line. */
int config_load(config *c, const char *name_or_path, const char *argv0, char *err, size_t errlen);

/* Value for key or NULL. */
const char *config_get(const config *c, const char *key);

/* Builds an argv-style list "--key value ..." from the profile, so the
 * normal option parser handles it; *out points into c-owned storage of
 * at most 2*n entries.  Returns the count. */
int config_to_args(const config *c, char **out, int cap);

#endif
