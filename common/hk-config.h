/*
 * hk-config: hanko.conf, one GKeyFile shared by all daemons.
 *
 * Each daemon declares a table of the keys it reads (type, default, range); loading
 * checks every key of the daemon's sections against it and refuses the file on an
 * unknown key or a bad value, naming the file, line, section, key and reason.
 * Sections that belong to another hanko daemon are skipped, not judged.
 * A loaded HkConfig is immutable and reference counted: a reload builds a new one
 * and swaps it in while requests in flight keep the one they started with.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define HK_CONFIG_ERROR (hk_config_error_quark())
GQuark hk_config_error_quark(void);

typedef enum {
	HK_CONFIG_ERROR_IO,      /* file cannot be read */
	HK_CONFIG_ERROR_SYNTAX,  /* not a key file */
	HK_CONFIG_ERROR_UNKNOWN, /* unknown section or key */
	HK_CONFIG_ERROR_VALUE,   /* value of the wrong type or out of range */
} HkConfigError;

typedef enum {
	HK_CONF_STRING,   /* any UTF-8 text */
	HK_CONF_PATH,     /* an absolute path */
	HK_CONF_INT,      /* integer in [min, max] */
	HK_CONF_BOOL,     /* true|false|yes|no|on|off|1|0 */
	HK_CONF_MODE,     /* octal file mode, e.g. 0660; at most max */
	HK_CONF_DURATION, /* 30s, 5m, 2h, 1d (bare number: seconds); stored in ms */
	HK_CONF_SIZE,     /* 512, 64k, 1M, 2G (bytes) in [min, max] */
	HK_CONF_ENUM,     /* one of choices */
	HK_CONF_LIST,     /* comma-separated strings */
} HkConfType;

typedef struct {
	const char *key;
	HkConfType type;
	const char *def;            /* default, written as in the file; NULL: unset */
	gint64 min, max;            /* INT, SIZE, DURATION (ms), MODE (max only); 0/0: unbounded */
	const char *const *choices; /* ENUM: NULL-terminated */
	const char *help;           /* one line, shown in the example file */
} HkConfKey;

typedef struct {
	const char *name;      /* section name, e.g. "certd" */
	const HkConfKey *keys; /* terminated by an entry with key == NULL */
} HkConfSection;

typedef struct _HkConfig HkConfig;

/* Sections owned by some hanko program: a daemon skips those it does not own. */
extern const char *const hk_config_known_sections[];

HkConfig *hk_config_load(const char *path, const HkConfSection *sections, GError **error);
HkConfig *hk_config_load_data(const char *data, const char *origin, const HkConfSection *sections,
                              GError **error);
HkConfig *hk_config_ref(HkConfig *config);
void hk_config_unref(HkConfig *config);
const char *hk_config_get_path(HkConfig *config);

/* Getters return the file's value or the table's default; asking for a key that is not in
 * the table is a programming error (g_critical). */
const char *hk_config_get_string(HkConfig *config, const char *section, const char *key);
gint64 hk_config_get_int(HkConfig *config, const char *section, const char *key);
gboolean hk_config_get_bool(HkConfig *config, const char *section, const char *key);
guint hk_config_get_mode(HkConfig *config, const char *section, const char *key);
gint64 hk_config_get_duration_ms(HkConfig *config, const char *section, const char *key);
guint64 hk_config_get_size(HkConfig *config, const char *section, const char *key);
/* NULL-terminated, owned by the config */
const char *const *hk_config_get_list(HkConfig *config, const char *section, const char *key);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HkConfig, hk_config_unref)

G_END_DECLS
