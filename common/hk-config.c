/*
 * hk-config: loads hanko.conf and checks it against a daemon's key table.
 *
 * Talks to nothing but the file system (one read of the config file). Every value is parsed
 * once at load time and kept with its type, so the getters are cheap and cannot fail on a
 * loaded config. Error messages name origin, line, section and key so an admin can fix the
 * file without reading code; they quote at most a short prefix of a value. Never logs and
 * never exits: callers decide what a bad file means (refuse to start, keep the old config).
 */
#include "hk-config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* Quoted values in errors are cut so a pasted blob cannot flood a log line. */
#define HK_CONFIG_QUOTE_MAX 40

/* Joins section and key into one hash key; no section or key name in a table contains it. */
#define HK_CONFIG_KEY_SEP "\x1f"

GQuark
hk_config_error_quark(void)
{
	return g_quark_from_static_string("hk-config-error-quark");
}

const char *const hk_config_known_sections[] = {
        "certd", "hankoctl", "policyd", "milter", "fax", NULL,
};

typedef struct {
	HkConfType type;
	char *raw; /* as written (trimmed); NULL: unset */
	union {
		gint64 i; /* INT, DURATION (ms), SIZE */
		gboolean b;
		guint mode;
		char **list; /* always non-NULL for a LIST */
	} v;
} HkConfValue;

struct _HkConfig {
	grefcount ref;
	char *path;
	GHashTable *values; /* "section\x1fkey" -> HkConfValue */
};

/* What the per-type checks need while walking one file. */
typedef struct {
	const char *data;
	const char *origin;
	GKeyFile *kf;
	const HkConfSection *sections;
	HkConfig *config;
} HkConfLoader;

/* Parses text (already trimmed, valid UTF-8) into v; on failure sets *reason. */
typedef gboolean (*HkConfParser)(const HkConfKey *k, const char *text, HkConfValue *v,
                                 char **reason);

typedef struct {
	const char *suffix;
	gint64 factor;
} HkConfUnit;

/* Suffixes are matched whole, so order only matters to format_scaled(); "" is a bare number. */
static const HkConfUnit duration_units[] = {
        {"ms", 1},           {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000},
        {"d", 86400 * 1000}, {"", 1000},  {NULL, 0},
};

static const HkConfUnit size_units[] = {
        {"", 1},
        {"k", G_GINT64_CONSTANT(1) << 10},
        {"K", G_GINT64_CONSTANT(1) << 10},
        {"M", G_GINT64_CONSTANT(1) << 20},
        {"G", G_GINT64_CONSTANT(1) << 30},
        {NULL, 0},
};

static const char *const bool_true[] = {"true", "yes", "on", "1", NULL};
static const char *const bool_false[] = {"false", "no", "off", "0", NULL};

static void
value_free(gpointer data)
{
	HkConfValue *v = data;

	if (v->type == HK_CONF_LIST)
		g_strfreev(v->v.list);
	g_free(v->raw);
	g_free(v);
}

/* "value" in quotes, cut at HK_CONFIG_QUOTE_MAX characters. */
static char *
quote(const char *text)
{
	if (g_utf8_strlen(text, -1) <= HK_CONFIG_QUOTE_MAX)
		return g_strdup_printf("\"%s\"", text);
	g_autofree char *cut = g_utf8_substring(text, 0, HK_CONFIG_QUOTE_MAX);
	return g_strdup_printf("\"%s...\"", cut);
}

/* The usual reason shape: the quoted value, then what is wrong with it. */
static gboolean
reject(const char *text, char **reason, const char *why)
{
	g_autofree char *q = quote(text);

	*reason = g_strdup_printf("%s: %s", q, why);
	return FALSE;
}

static gboolean
has_range(const HkConfKey *k)
{
	return k->min != 0 || k->max != 0;
}

/* 90000 with duration_units -> "90s": the largest unit that divides exactly (the first of
 * equals, so "s" rather than the bare "" and "k" rather than "K"). */
static char *
format_scaled(gint64 value, const HkConfUnit *units)
{
	const HkConfUnit *best = NULL;

	for (const HkConfUnit *u = units; u->suffix != NULL; u++) {
		if (value % u->factor == 0 && (best == NULL || u->factor > best->factor))
			best = u;
	}
	if (value == 0 || best == NULL)
		return g_strdup_printf("%" G_GINT64_FORMAT, value);
	return g_strdup_printf("%" G_GINT64_FORMAT "%s", value / best->factor, best->suffix);
}

static gboolean
check_range(const HkConfKey *k, gint64 value, const char *text, const HkConfUnit *units,
            char **reason)
{
	if (!has_range(k) || (value >= k->min && value <= k->max))
		return TRUE;
	g_autofree char *lo =
	        units ? format_scaled(k->min, units) : g_strdup_printf("%" G_GINT64_FORMAT, k->min);
	g_autofree char *hi =
	        units ? format_scaled(k->max, units) : g_strdup_printf("%" G_GINT64_FORMAT, k->max);
	g_autofree char *why = g_strdup_printf("must be between %s and %s", lo, hi);
	return reject(text, reason, why);
}

/* Digits, then one of units' suffixes; no sign, no space in between. */
static gboolean
parse_scaled(const char *text, const HkConfUnit *units, gint64 *out)
{
	size_t ndigits = strspn(text, "0123456789");
	guint64 n;

	if (ndigits == 0)
		return FALSE;
	g_autofree char *digits = g_strndup(text, ndigits);
	if (!g_ascii_string_to_unsigned(digits, 10, 0, G_MAXINT64, &n, NULL))
		return FALSE;
	for (const HkConfUnit *u = units; u->suffix != NULL; u++) {
		if (strcmp(text + ndigits, u->suffix) != 0)
			continue;
		if (n > (guint64)(G_MAXINT64 / u->factor))
			return FALSE;
		*out = (gint64)n * u->factor;
		return TRUE;
	}
	return FALSE;
}

/* Any text will do: UTF-8 was checked before dispatch. */
static gboolean
parse_string(G_GNUC_UNUSED const HkConfKey *k, G_GNUC_UNUSED const char *text,
             G_GNUC_UNUSED HkConfValue *v, G_GNUC_UNUSED char **reason)
{
	return TRUE;
}

static gboolean
parse_path(G_GNUC_UNUSED const HkConfKey *k, const char *text, G_GNUC_UNUSED HkConfValue *v,
           char **reason)
{
	if (text[0] != '/')
		return reject(text, reason, "must be an absolute path");
	return TRUE;
}

static gboolean
parse_int(const HkConfKey *k, const char *text, HkConfValue *v, char **reason)
{
	g_autoptr(GError) err = NULL;

	if (!g_ascii_string_to_signed(text, 10, G_MININT64, G_MAXINT64, &v->v.i, &err)) {
		gboolean big = g_error_matches(err, G_NUMBER_PARSER_ERROR,
		                               G_NUMBER_PARSER_ERROR_OUT_OF_BOUNDS);
		return reject(text, reason, big ? "out of range" : "not an integer");
	}
	return check_range(k, v->v.i, text, NULL, reason);
}

static gboolean
parse_bool(G_GNUC_UNUSED const HkConfKey *k, const char *text, HkConfValue *v, char **reason)
{
	for (guint i = 0; bool_true[i] != NULL; i++) {
		if (g_ascii_strcasecmp(text, bool_true[i]) == 0) {
			v->v.b = TRUE;
			return TRUE;
		}
		if (g_ascii_strcasecmp(text, bool_false[i]) == 0) {
			v->v.b = FALSE;
			return TRUE;
		}
	}
	return reject(text, reason, "must be true/false, yes/no, on/off or 1/0");
}

static gboolean
parse_mode(const HkConfKey *k, const char *text, HkConfValue *v, char **reason)
{
	/* One leading 0 is the usual octal marker; what follows is the 1-4 digit mode. */
	const char *digits = text[0] == '0' && text[1] != '\0' ? text + 1 : text;
	size_t len = strlen(digits);

	if (len < 1 || len > 4 || strspn(digits, "01234567") != len)
		return reject(text, reason, "not an octal file mode (e.g. 0640)");
	v->v.mode = (guint)strtoul(digits, NULL, 8);
	if (k->max != 0 && (v->v.mode & ~(guint)k->max) != 0) {
		*reason = g_strdup_printf("%04o is wider than %04o", v->v.mode, (guint)k->max);
		return FALSE;
	}
	return TRUE;
}

static gboolean
parse_duration(const HkConfKey *k, const char *text, HkConfValue *v, char **reason)
{
	if (!parse_scaled(text, duration_units, &v->v.i))
		return reject(text, reason, "not a duration (e.g. 30s, 5m, 2h)");
	return check_range(k, v->v.i, text, duration_units, reason);
}

static gboolean
parse_size(const HkConfKey *k, const char *text, HkConfValue *v, char **reason)
{
	if (!parse_scaled(text, size_units, &v->v.i))
		return reject(text, reason, "not a size (e.g. 512, 64k, 1M, 2G)");
	return check_range(k, v->v.i, text, size_units, reason);
}

static gboolean
parse_enum(const HkConfKey *k, const char *text, G_GNUC_UNUSED HkConfValue *v, char **reason)
{
	if (k->choices != NULL && g_strv_contains(k->choices, text))
		return TRUE;
	g_autofree char *all = k->choices ? g_strjoinv(", ", (char **)k->choices) : g_strdup("");
	g_autofree char *why = g_strdup_printf("must be one of: %s", all);
	return reject(text, reason, why);
}

static gboolean
parse_list(G_GNUC_UNUSED const HkConfKey *k, const char *text, HkConfValue *v,
           G_GNUC_UNUSED char **reason)
{
	g_auto(GStrv) items = g_strsplit(text, ",", -1);
	g_autoptr(GPtrArray) kept = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; items[i] != NULL; i++) {
		g_strstrip(items[i]);
		if (items[i][0] != '\0')
			g_ptr_array_add(kept, g_strdup(items[i]));
	}
	g_ptr_array_add(kept, NULL);
	v->v.list = (char **)g_ptr_array_free(g_steal_pointer(&kept), FALSE);
	return TRUE;
}

static const HkConfParser parsers[] = {
        [HK_CONF_STRING] = parse_string, [HK_CONF_PATH] = parse_path,
        [HK_CONF_INT] = parse_int,       [HK_CONF_BOOL] = parse_bool,
        [HK_CONF_MODE] = parse_mode,     [HK_CONF_DURATION] = parse_duration,
        [HK_CONF_SIZE] = parse_size,     [HK_CONF_ENUM] = parse_enum,
        [HK_CONF_LIST] = parse_list,
};

/* A new type needs its parser here: the dispatch below trusts the table to be complete. */
G_STATIC_ASSERT(G_N_ELEMENTS(parsers) == HK_CONF_LIST + 1);

/* An unset value still has a usable zero: get_list must hand out an empty array. */
static HkConfValue *
value_new_unset(HkConfType type)
{
	HkConfValue *v = g_new0(HkConfValue, 1);

	v->type = type;
	if (type == HK_CONF_LIST)
		v->v.list = g_new0(char *, 1);
	return v;
}

/* Parses raw for key k; returns NULL and sets *reason when it does not fit. */
static HkConfValue *
value_parse(const HkConfKey *k, const char *raw, char **reason)
{
	if ((guint)k->type >= G_N_ELEMENTS(parsers)) {
		*reason = g_strdup_printf("unknown type %d in the key table", (int)k->type);
		return NULL;
	}
	/* Checked first so that every error message quoting the value is valid UTF-8. */
	if (!g_utf8_validate(raw, -1, NULL)) {
		*reason = g_strdup("not valid UTF-8");
		return NULL;
	}
	HkConfValue *v = g_new0(HkConfValue, 1);
	v->type = k->type;
	/* GKeyFile keeps trailing blanks, which nobody can see in an editor. */
	v->raw = g_strstrip(g_strdup(raw));
	if (!parsers[k->type](k, v->raw, v, reason)) {
		value_free(v);
		return NULL;
	}
	return v;
}

static void
config_store(HkConfig *config, const char *section, const char *key, HkConfValue *v)
{
	g_hash_table_replace(config->values, g_strconcat(section, HK_CONFIG_KEY_SEP, key, NULL), v);
}

static void
config_set_defaults(HkConfig *config, const HkConfSection *sec)
{
	for (const HkConfKey *k = sec->keys; k->key != NULL; k++) {
		g_autofree char *reason = NULL;
		HkConfValue *v =
		        k->def ? value_parse(k, k->def, &reason) : value_new_unset(k->type);

		if (v == NULL) {
			/* A bad default is a bug in the daemon, not in the admin's file. */
			g_critical("hk-config: bad default for [%s] %s: %s", sec->name, k->key,
			           reason);
			v = value_new_unset(k->type);
		}
		config_store(config, sec->name, k->key, v);
	}
}

static HkConfig *
config_new(const char *origin, const HkConfSection *sections)
{
	HkConfig *config = g_new0(HkConfig, 1);

	g_ref_count_init(&config->ref);
	config->path = g_strdup(origin);
	config->values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, value_free);
	for (const HkConfSection *sec = sections; sec && sec->name; sec++)
		config_set_defaults(config, sec);
	return config;
}

static const HkConfSection *
find_section(const HkConfSection *sections, const char *name)
{
	for (const HkConfSection *sec = sections; sec && sec->name; sec++) {
		if (strcmp(sec->name, name) == 0)
			return sec;
	}
	return NULL;
}

static const HkConfKey *
find_key(const HkConfSection *sec, const char *name)
{
	for (const HkConfKey *k = sec->keys; k->key != NULL; k++) {
		if (strcmp(k->key, name) == 0)
			return k;
	}
	return NULL;
}

/* Another hanko program's section: not ours to judge. */
static gboolean
is_foreign_section(const char *name)
{
	return g_strv_contains(hk_config_known_sections, name) || g_str_has_prefix(name, "fax.");
}

/* "[name]" on a (left-trimmed) line -> name, as GKeyFile reads it: up to the first ']'. */
static char *
line_group(const char *line)
{
	const char *end;

	if (line[0] != '[' || (end = strchr(line, ']')) == NULL)
		return NULL;
	return g_strndup(line + 1, end - line - 1);
}

static gboolean
line_has_key(const char *line, const char *key)
{
	const char *eq = strchr(line, '=');

	if (eq == NULL)
		return FALSE;
	g_autofree char *name = g_strstrip(g_strndup(line, eq - line));
	return strcmp(name, key) == 0;
}

/*
 * GKeyFile keeps no line numbers, so find them in the text: the first "[section]" header, or
 * with a key, its line inside that section (repeated sections merge in GKeyFile, so all of
 * them count). For a repeated key the last line wins, as it does in GKeyFile. 0: not found.
 */
static guint
find_line(const char *data, const char *section, const char *key)
{
	g_auto(GStrv) lines = g_strsplit(data, "\n", -1);
	gboolean inside = FALSE;
	guint found = 0;

	for (guint i = 0; lines[i] != NULL && (key || !found); i++) {
		const char *line = lines[i] + strspn(lines[i], " \t");
		g_autofree char *group = line_group(line);

		if (group != NULL) {
			inside = strcmp(group, section) == 0;
			if (inside && key == NULL)
				found = i + 1;
		} else if (inside && key != NULL && line[0] != '#' && line_has_key(line, key)) {
			found = i + 1;
		}
	}
	return found;
}

/* "<origin>:<line>: [<section>] <key>: <reason>", ":<line>" only when it can be found. */
static gboolean
fail(const HkConfLoader *ld, GError **error, HkConfigError code, const char *section,
     const char *key, const char *reason)
{
	guint line = find_line(ld->data, section, key);
	g_autofree char *where =
	        line ? g_strdup_printf("%s:%u", ld->origin, line) : g_strdup(ld->origin);

	if (key != NULL)
		g_set_error(error, HK_CONFIG_ERROR, code, "%s: [%s] %s: %s", where, section, key,
		            reason);
	else
		g_set_error(error, HK_CONFIG_ERROR, code, "%s: [%s]: %s", where, section, reason);
	return FALSE;
}

static gboolean
load_key(const HkConfLoader *ld, const HkConfSection *sec, const char *name, GError **error)
{
	const HkConfKey *k = find_key(sec, name);
	g_autofree char *raw = NULL;
	g_autofree char *reason = NULL;
	HkConfValue *v;

	if (k == NULL)
		return fail(ld, error, HK_CONFIG_ERROR_UNKNOWN, sec->name, name, "unknown key");
	raw = g_key_file_get_value(ld->kf, sec->name, name, NULL);
	v = value_parse(k, raw ? raw : "", &reason);
	if (v == NULL)
		return fail(ld, error, HK_CONFIG_ERROR_VALUE, sec->name, name, reason);
	config_store(ld->config, sec->name, k->key, v);
	return TRUE;
}

static gboolean
load_section(const HkConfLoader *ld, const HkConfSection *sec, GError **error)
{
	g_auto(GStrv) keys = g_key_file_get_keys(ld->kf, sec->name, NULL, NULL);

	for (guint i = 0; keys && keys[i] != NULL; i++) {
		if (!load_key(ld, sec, keys[i], error))
			return FALSE;
	}
	return TRUE;
}

static gboolean
load_groups(const HkConfLoader *ld, GError **error)
{
	g_auto(GStrv) groups = g_key_file_get_groups(ld->kf, NULL);

	for (guint i = 0; groups[i] != NULL; i++) {
		const HkConfSection *sec = find_section(ld->sections, groups[i]);

		if (sec != NULL) {
			if (!load_section(ld, sec, error))
				return FALSE;
		} else if (!is_foreign_section(groups[i])) {
			return fail(ld, error, HK_CONFIG_ERROR_UNKNOWN, groups[i], NULL,
			            "unknown section");
		}
	}
	return TRUE;
}

/* sections: terminated by an entry with name == NULL; NULL owns no section. */
HkConfig *
hk_config_load_data(const char *data, const char *origin, const HkConfSection *sections,
                    GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GError) local = NULL;

	g_return_val_if_fail(data != NULL, NULL);
	g_return_val_if_fail(origin != NULL, NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	if (!g_key_file_load_from_data(kf, data, (gsize)-1, G_KEY_FILE_NONE, &local)) {
		g_set_error(error, HK_CONFIG_ERROR, HK_CONFIG_ERROR_SYNTAX, "%s: %s", origin,
		            local->message);
		return NULL;
	}
	g_autoptr(HkConfig) config = config_new(origin, sections);
	HkConfLoader ld = {
	        .data = data, .origin = origin, .kf = kf, .sections = sections, .config = config};
	if (!load_groups(&ld, error))
		return NULL;
	return g_steal_pointer(&config);
}

static gboolean
set_io_error(const char *path, int errsv, GError **error)
{
	g_set_error(error, HK_CONFIG_ERROR, HK_CONFIG_ERROR_IO, "cannot read %s: %s", path,
	            g_strerror(errsv));
	return FALSE;
}

/* Plain read(2) rather than g_file_get_contents so the reason is strerror, without a second,
 * translated copy of the path in the message. */
static char *
read_text(const char *path, GError **error)
{
	g_autoptr(GString) buf = g_string_new(NULL);
	char chunk[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		set_io_error(path, errno, error);
		return NULL;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int errsv = errno;
			close(fd);
			set_io_error(path, errsv, error);
			return NULL;
		}
		g_string_append_len(buf, chunk, n);
	}
	close(fd);
	return g_string_free(g_steal_pointer(&buf), FALSE);
}

HkConfig *
hk_config_load(const char *path, const HkConfSection *sections, GError **error)
{
	g_return_val_if_fail(path != NULL, NULL);

	g_autofree char *data = read_text(path, error);
	if (data == NULL)
		return NULL;
	return hk_config_load_data(data, path, sections, error);
}

HkConfig *
hk_config_ref(HkConfig *config)
{
	g_return_val_if_fail(config != NULL, NULL);
	g_ref_count_inc(&config->ref);
	return config;
}

void
hk_config_unref(HkConfig *config)
{
	g_return_if_fail(config != NULL);
	if (!g_ref_count_dec(&config->ref))
		return;
	g_hash_table_unref(config->values);
	g_free(config->path);
	g_free(config);
}

const char *
hk_config_get_path(HkConfig *config)
{
	g_return_val_if_fail(config != NULL, NULL);
	return config->path;
}

#define HK_CONF_BIT(t) (1u << (t))

/* The stored value if the key is in the table and has one of the types in mask. */
static const HkConfValue *
lookup(HkConfig *config, const char *section, const char *key, guint mask, const char *getter)
{
	g_return_val_if_fail(config != NULL && section != NULL && key != NULL, NULL);

	g_autofree char *id = g_strconcat(section, HK_CONFIG_KEY_SEP, key, NULL);
	const HkConfValue *v = g_hash_table_lookup(config->values, id);
	if (v == NULL) {
		g_critical("hk-config: [%s] %s is not in the key table", section, key);
		return NULL;
	}
	if ((mask & HK_CONF_BIT(v->type)) == 0) {
		g_critical("hk-config: [%s] %s: %s() does not match its type", section, key,
		           getter);
		return NULL;
	}
	return v;
}

const char *
hk_config_get_string(HkConfig *config, const char *section, const char *key)
{
	guint mask =
	        HK_CONF_BIT(HK_CONF_STRING) | HK_CONF_BIT(HK_CONF_PATH) | HK_CONF_BIT(HK_CONF_ENUM);
	const HkConfValue *v = lookup(config, section, key, mask, G_STRFUNC);

	return v ? v->raw : NULL;
}

gint64
hk_config_get_int(HkConfig *config, const char *section, const char *key)
{
	const HkConfValue *v = lookup(config, section, key, HK_CONF_BIT(HK_CONF_INT), G_STRFUNC);

	return v ? v->v.i : 0;
}

gboolean
hk_config_get_bool(HkConfig *config, const char *section, const char *key)
{
	const HkConfValue *v = lookup(config, section, key, HK_CONF_BIT(HK_CONF_BOOL), G_STRFUNC);

	return v ? v->v.b : FALSE;
}

guint
hk_config_get_mode(HkConfig *config, const char *section, const char *key)
{
	const HkConfValue *v = lookup(config, section, key, HK_CONF_BIT(HK_CONF_MODE), G_STRFUNC);

	return v ? v->v.mode : 0;
}

gint64
hk_config_get_duration_ms(HkConfig *config, const char *section, const char *key)
{
	const HkConfValue *v =
	        lookup(config, section, key, HK_CONF_BIT(HK_CONF_DURATION), G_STRFUNC);

	return v ? v->v.i : 0;
}

guint64
hk_config_get_size(HkConfig *config, const char *section, const char *key)
{
	const HkConfValue *v = lookup(config, section, key, HK_CONF_BIT(HK_CONF_SIZE), G_STRFUNC);

	return v ? (guint64)v->v.i : 0;
}

const char *const *
hk_config_get_list(HkConfig *config, const char *section, const char *key)
{
	static const char *const empty[] = {NULL};
	const HkConfValue *v = lookup(config, section, key, HK_CONF_BIT(HK_CONF_LIST), G_STRFUNC);

	return v ? (const char *const *)v->v.list : empty;
}
