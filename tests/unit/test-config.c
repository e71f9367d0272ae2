/*
 * test-config: hk-config against a key table with every type.
 *
 * Loads from strings (and a few real files) only; no daemon, no network. The error messages
 * are asserted word for word because they are what an admin reads: origin, line, section,
 * key and reason.
 */
#include "hk-config.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#define ORIGIN "t.conf"

static const char *const test_levels[] = {"low", "medium", "high", NULL};

static const HkConfKey test_keys[] = {
        {.key = "name", .type = HK_CONF_STRING, .def = "hanko"},
        {.key = "socket", .type = HK_CONF_PATH, .def = "/run/hanko/test.sock"},
        {.key = "port", .type = HK_CONF_INT, .def = "10025", .min = 1, .max = 65535},
        {.key = "offset", .type = HK_CONF_INT, .def = "-5"},
        {.key = "verbose", .type = HK_CONF_BOOL, .def = "no"},
        {.key = "socket_mode", .type = HK_CONF_MODE, .def = "0660", .max = 0770},
        {.key = "umask", .type = HK_CONF_MODE, .def = "022"},
        {.key = "timeout", .type = HK_CONF_DURATION, .def = "30s", .min = 1000, .max = 3600000},
        {.key = "linger", .type = HK_CONF_DURATION, .def = "1500ms"},
        {.key = "max_size", .type = HK_CONF_SIZE, .def = "1M", .min = 1024, .max = 64 << 20},
        {.key = "limit", .type = HK_CONF_SIZE, .def = "2G"},
        {.key = "level", .type = HK_CONF_ENUM, .def = "medium", .choices = test_levels},
        {.key = "domains", .type = HK_CONF_LIST, .def = "example.org, example.net"},
        /* no default: unset */
        {.key = "comment", .type = HK_CONF_STRING},
        {.key = "ca_file", .type = HK_CONF_PATH},
        {.key = "retries", .type = HK_CONF_INT},
        {.key = "enabled", .type = HK_CONF_BOOL},
        {.key = "dir_mode", .type = HK_CONF_MODE},
        {.key = "grace", .type = HK_CONF_DURATION},
        {.key = "quota", .type = HK_CONF_SIZE},
        {.key = "tags", .type = HK_CONF_LIST},
        {.key = NULL},
};

/* A second owned section with a key of the same name, to show keys are per section. */
static const HkConfKey other_keys[] = {
        {.key = "port", .type = HK_CONF_INT, .def = "25"},
        {.key = NULL},
};

static const HkConfSection test_sections[] = {
        {.name = "test", .keys = test_keys},
        {.name = "other", .keys = other_keys},
        {.name = NULL},
};

static const HkConfKey *
test_key(const char *name)
{
	for (const HkConfKey *k = test_keys; k->key != NULL; k++) {
		if (strcmp(k->key, name) == 0)
			return k;
	}
	g_assert_not_reached();
}

/* Any numeric-ish [test] key through the getter of its type. */
static gint64
get_number(HkConfig *config, const char *key)
{
	switch (test_key(key)->type) {
	case HK_CONF_INT:
		return hk_config_get_int(config, "test", key);
	case HK_CONF_BOOL:
		return hk_config_get_bool(config, "test", key);
	case HK_CONF_MODE:
		return hk_config_get_mode(config, "test", key);
	case HK_CONF_DURATION:
		return hk_config_get_duration_ms(config, "test", key);
	case HK_CONF_SIZE:
		return (gint64)hk_config_get_size(config, "test", key);
	default:
		g_assert_not_reached();
	}
}

static HkConfig *
load_ok(const char *data)
{
	g_autoptr(GError) error = NULL;
	HkConfig *config = hk_config_load_data(data, ORIGIN, test_sections, &error);

	g_assert_no_error(error);
	g_assert_nonnull(config);
	return config;
}

static void
assert_load_fails(const char *data, HkConfigError code, const char *message)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HkConfig) config = hk_config_load_data(data, ORIGIN, test_sections, &error);

	g_assert_null(config);
	g_assert_error(error, HK_CONFIG_ERROR, (gint)code);
	g_assert_cmpstr(error->message, ==, message);
}

static void
assert_list(const char *const *got, const char *const *want)
{
	g_assert_nonnull(got);
	g_assert_cmpuint(g_strv_length((char **)got), ==, g_strv_length((char **)want));
	for (guint i = 0; want[i] != NULL; i++)
		g_assert_cmpstr(got[i], ==, want[i]);
}

static void
assert_defaults(HkConfig *config)
{
	const char *const domains[] = {"example.org", "example.net", NULL};
	const char *const none[] = {NULL};

	g_assert_cmpstr(hk_config_get_string(config, "test", "name"), ==, "hanko");
	g_assert_cmpstr(hk_config_get_string(config, "test", "socket"), ==, "/run/hanko/test.sock");
	g_assert_cmpint(hk_config_get_int(config, "test", "port"), ==, 10025);
	g_assert_cmpint(hk_config_get_int(config, "test", "offset"), ==, -5);
	g_assert_false(hk_config_get_bool(config, "test", "verbose"));
	g_assert_cmpuint(hk_config_get_mode(config, "test", "socket_mode"), ==, 0660);
	g_assert_cmpuint(hk_config_get_mode(config, "test", "umask"), ==, 022);
	g_assert_cmpint(hk_config_get_duration_ms(config, "test", "timeout"), ==, 30000);
	g_assert_cmpint(hk_config_get_duration_ms(config, "test", "linger"), ==, 1500);
	g_assert_cmpuint(hk_config_get_size(config, "test", "max_size"), ==, 1 << 20);
	g_assert_cmpuint(hk_config_get_size(config, "test", "limit"), ==,
	                 G_GUINT64_CONSTANT(2) << 30);
	g_assert_cmpstr(hk_config_get_string(config, "test", "level"), ==, "medium");
	assert_list(hk_config_get_list(config, "test", "domains"), domains);
	g_assert_cmpint(hk_config_get_int(config, "other", "port"), ==, 25);

	g_assert_null(hk_config_get_string(config, "test", "comment"));
	g_assert_null(hk_config_get_string(config, "test", "ca_file"));
	g_assert_cmpint(hk_config_get_int(config, "test", "retries"), ==, 0);
	g_assert_false(hk_config_get_bool(config, "test", "enabled"));
	g_assert_cmpuint(hk_config_get_mode(config, "test", "dir_mode"), ==, 0);
	g_assert_cmpint(hk_config_get_duration_ms(config, "test", "grace"), ==, 0);
	g_assert_cmpuint(hk_config_get_size(config, "test", "quota"), ==, 0);
	assert_list(hk_config_get_list(config, "test", "tags"), none);
}

static void
test_defaults_empty_file(void)
{
	g_autoptr(HkConfig) config = load_ok("");

	assert_defaults(config);
	g_assert_cmpstr(hk_config_get_path(config), ==, ORIGIN);
}

static void
test_defaults_empty_section(void)
{
	g_autoptr(HkConfig) config = load_ok("# nothing set\n[test]\n\n[other]\n");

	assert_defaults(config);
}

static void
test_all_types(void)
{
	const char *data = "# every type once\n"
	                   "[test]\n"
	                   "name = mail gateway \n"
	                   "socket = /run/hanko/other.sock\n"
	                   "port = 2525\n"
	                   "offset = -42\n"
	                   "verbose = Yes\n"
	                   "socket_mode = 0640\n"
	                   "umask = 077\n"
	                   "timeout = 5m\n"
	                   "linger = 250ms\n"
	                   "max_size = 10M\n"
	                   "limit = 512k\n"
	                   "level = high\n"
	                   "domains = a.example, b.example ,, c.example,\n"
	                   "comment = only text\n"
	                   "ca_file = /etc/hanko/ca.pem\n"
	                   "retries = 3\n"
	                   "enabled = on\n"
	                   "dir_mode = 2750\n"
	                   "grace = 2d\n"
	                   "quota = 3G\n"
	                   "tags = ,,\n"
	                   "[other]\n"
	                   "port = 587\n";
	const char *const domains[] = {"a.example", "b.example", "c.example", NULL};
	const char *const none[] = {NULL};
	g_autoptr(HkConfig) config = load_ok(data);

	g_assert_cmpstr(hk_config_get_string(config, "test", "name"), ==, "mail gateway");
	g_assert_cmpstr(hk_config_get_string(config, "test", "socket"), ==,
	                "/run/hanko/other.sock");
	g_assert_cmpint(hk_config_get_int(config, "test", "port"), ==, 2525);
	g_assert_cmpint(hk_config_get_int(config, "test", "offset"), ==, -42);
	g_assert_true(hk_config_get_bool(config, "test", "verbose"));
	g_assert_cmpuint(hk_config_get_mode(config, "test", "socket_mode"), ==, 0640);
	g_assert_cmpuint(hk_config_get_mode(config, "test", "umask"), ==, 077);
	g_assert_cmpint(hk_config_get_duration_ms(config, "test", "timeout"), ==, 300000);
	g_assert_cmpint(hk_config_get_duration_ms(config, "test", "linger"), ==, 250);
	g_assert_cmpuint(hk_config_get_size(config, "test", "max_size"), ==, 10 << 20);
	g_assert_cmpuint(hk_config_get_size(config, "test", "limit"), ==, 512 << 10);
	g_assert_cmpstr(hk_config_get_string(config, "test", "level"), ==, "high");
	assert_list(hk_config_get_list(config, "test", "domains"), domains);
	g_assert_cmpstr(hk_config_get_string(config, "test", "comment"), ==, "only text");
	g_assert_cmpstr(hk_config_get_string(config, "test", "ca_file"), ==, "/etc/hanko/ca.pem");
	g_assert_cmpint(hk_config_get_int(config, "test", "retries"), ==, 3);
	g_assert_true(hk_config_get_bool(config, "test", "enabled"));
	g_assert_cmpuint(hk_config_get_mode(config, "test", "dir_mode"), ==, 02750);
	g_assert_cmpint(hk_config_get_duration_ms(config, "test", "grace"), ==, 2 * 86400000);
	g_assert_cmpuint(hk_config_get_size(config, "test", "quota"), ==,
	                 G_GUINT64_CONSTANT(3) << 30);
	assert_list(hk_config_get_list(config, "test", "tags"), none);
	g_assert_cmpint(hk_config_get_int(config, "other", "port"), ==, 587);
}

typedef struct {
	const char *key;
	const char *text;
	gint64 want;
} GoodValue;

static const GoodValue good_values[] = {
        {"port", "1", 1},
        {"port", "65535", 65535},
        {"port", "  25 \t", 25},
        {"offset", "-9223372036854775808", G_MININT64},
        {"verbose", "true", TRUE},
        {"verbose", "TRUE", TRUE},
        {"verbose", "yes", TRUE},
        {"verbose", "On", TRUE},
        {"verbose", "1", TRUE},
        {"verbose", "false", FALSE},
        {"verbose", "NO", FALSE},
        {"verbose", "off", FALSE},
        {"verbose", "0", FALSE},
        {"socket_mode", "0", 0},
        {"socket_mode", "770", 0770},
        {"socket_mode", "0660", 0660},
        {"socket_mode", "00770", 0770},
        {"umask", "7777", 07777},
        {"umask", "07777", 07777},
        {"umask", "2", 02},
        {"timeout", "1s", 1000},
        {"timeout", "1500ms", 1500},
        {"timeout", "90", 90000},
        {"timeout", "5m", 300000},
        {"timeout", "1h", 3600000},
        {"linger", "0", 0},
        {"linger", "0ms", 0},
        {"linger", "1d", 86400000},
        {"max_size", "1k", 1024},
        {"max_size", "1K", 1024},
        {"max_size", "2048", 2048},
        {"max_size", "64M", 64 << 20},
        {"limit", "0", 0},
        {"limit", "2G", G_GINT64_CONSTANT(2) << 30},
};

static void
test_good_values(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(good_values); i++) {
		const GoodValue *t = &good_values[i];
		g_autofree char *data = g_strdup_printf("[test]\n%s = %s\n", t->key, t->text);
		g_autoptr(HkConfig) config = NULL;

		g_test_message("%s = '%s'", t->key, t->text);
		config = load_ok(data);
		g_assert_cmpint(get_number(config, t->key), ==, t->want);
	}
}

typedef struct {
	const char *line;
	const char *message;
} BadValue;

/* Each line lands on line 4 of "# test / [test] / name = x / <line>". */
static const BadValue bad_values[] = {
        {"port = 0", "t.conf:4: [test] port: \"0\": must be between 1 and 65535"},
        {"port = 65536", "t.conf:4: [test] port: \"65536\": must be between 1 and 65535"},
        {"port = 12x", "t.conf:4: [test] port: \"12x\": not an integer"},
        {"port = 0x10", "t.conf:4: [test] port: \"0x10\": not an integer"},
        {"port =", "t.conf:4: [test] port: \"\": not an integer"},
        {"port = 1234567890123456789012345678901234567890 is a long value",
         "t.conf:4: [test] port: \"1234567890123456789012345678901234567890...\": not an integer"},
        {"offset = 99999999999999999999",
         "t.conf:4: [test] offset: \"99999999999999999999\": out of range"},
        {"verbose = maybe",
         "t.conf:4: [test] verbose: \"maybe\": must be true/false, yes/no, on/off or 1/0"},
        {"verbose =", "t.conf:4: [test] verbose: \"\": must be true/false, yes/no, on/off or 1/0"},
        {"socket_mode = 0777", "t.conf:4: [test] socket_mode: 0777 is wider than 0770"},
        {"socket_mode = 777", "t.conf:4: [test] socket_mode: 0777 is wider than 0770"},
        {"socket_mode = 2770", "t.conf:4: [test] socket_mode: 2770 is wider than 0770"},
        {"umask = 0999", "t.conf:4: [test] umask: \"0999\": not an octal file mode (e.g. 0640)"},
        {"umask = 017777",
         "t.conf:4: [test] umask: \"017777\": not an octal file mode (e.g. 0640)"},
        {"umask = u=rw", "t.conf:4: [test] umask: \"u=rw\": not an octal file mode (e.g. 0640)"},
        {"umask =", "t.conf:4: [test] umask: \"\": not an octal file mode (e.g. 0640)"},
        {"timeout = 5x", "t.conf:4: [test] timeout: \"5x\": not a duration (e.g. 30s, 5m, 2h)"},
        {"timeout = -5s", "t.conf:4: [test] timeout: \"-5s\": not a duration (e.g. 30s, 5m, 2h)"},
        {"timeout = 5 s", "t.conf:4: [test] timeout: \"5 s\": not a duration (e.g. 30s, 5m, 2h)"},
        {"timeout = s", "t.conf:4: [test] timeout: \"s\": not a duration (e.g. 30s, 5m, 2h)"},
        {"timeout = 500ms", "t.conf:4: [test] timeout: \"500ms\": must be between 1s and 1h"},
        {"timeout = 2h", "t.conf:4: [test] timeout: \"2h\": must be between 1s and 1h"},
        {"linger = 999999999999999d",
         "t.conf:4: [test] linger: \"999999999999999d\": not a duration (e.g. 30s, 5m, 2h)"},
        {"max_size = 1T", "t.conf:4: [test] max_size: \"1T\": not a size (e.g. 512, 64k, 1M, 2G)"},
        {"max_size = 1.5M",
         "t.conf:4: [test] max_size: \"1.5M\": not a size (e.g. 512, 64k, 1M, 2G)"},
        {"max_size = 65M", "t.conf:4: [test] max_size: \"65M\": must be between 1k and 64M"},
        {"max_size = 512", "t.conf:4: [test] max_size: \"512\": must be between 1k and 64M"},
        {"level = extreme",
         "t.conf:4: [test] level: \"extreme\": must be one of: low, medium, high"},
        {"level = Low", "t.conf:4: [test] level: \"Low\": must be one of: low, medium, high"},
        {"socket = run/x.sock",
         "t.conf:4: [test] socket: \"run/x.sock\": must be an absolute path"},
        {"ca_file =", "t.conf:4: [test] ca_file: \"\": must be an absolute path"},
        {"comment = caf\xc3\x28", "t.conf:4: [test] comment: not valid UTF-8"},
};

static void
test_bad_values(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(bad_values); i++) {
		const BadValue *t = &bad_values[i];
		g_autofree char *data = g_strdup_printf("# test\n[test]\nname = x\n%s\n", t->line);

		g_autofree char *shown = g_strescape(t->line, NULL);

		g_test_message("%s", shown);
		assert_load_fails(data, HK_CONFIG_ERROR_VALUE, t->message);
	}
}

static void
test_unknown_key(void)
{
	assert_load_fails("[test]\nport = 25\n\n  sokcet = /x\n", HK_CONFIG_ERROR_UNKNOWN,
	                  "t.conf:4: [test] sokcet: unknown key");
	/* [other] has a port but no socket: keys are per section */
	assert_load_fails("[test]\nsocket = /x\n[other]\nport = 1\nsocket = /x\n",
	                  HK_CONFIG_ERROR_UNKNOWN, "t.conf:5: [other] socket: unknown key");
}

static void
test_unknown_section(void)
{
	assert_load_fails("[test]\nport = 25\n\n[milterr]\nsocket = x\n", HK_CONFIG_ERROR_UNKNOWN,
	                  "t.conf:4: [milterr]: unknown section");
	/* "fax" alone is known, "faxx" is not and "fax." needs a plugin name after it */
	assert_load_fails("[faxx]\n", HK_CONFIG_ERROR_UNKNOWN, "t.conf:1: [faxx]: unknown section");
}

static void
test_foreign_sections(void)
{
	const char *data = "[certd]\nwhatever = 1\n"
	                   "[policyd]\nport = not a number\nsocket_mode = 0777\nbogus = x\n"
	                   "[milter]\nx = y\n"
	                   "[hankoctl]\ny = z\n"
	                   "[fax]\nplugins = modem\n"
	                   "[fax.modem]\ndevice = /dev/ttyS0\nbaud = fast\n"
	                   "[test]\nport = 26\n";
	g_autoptr(HkConfig) config = load_ok(data);

	g_assert_cmpint(hk_config_get_int(config, "test", "port"), ==, 26);
}

typedef struct {
	const char *data;
	HkConfigError code;
	const char *message;
} LineCase;

static const LineCase line_cases[] = {
        /* GKeyFile merges a repeated section; the key is found in the second one, not in the
         * comment nor in another section with the same key */
        {"[test]\nport = 25\n[policyd]\nverbose = maybe\n[test]\n# verbose = yes\n"
         "  verbose  = maybe\n",
         HK_CONFIG_ERROR_VALUE,
         "t.conf:7: [test] verbose: \"maybe\": must be true/false, yes/no, on/off or 1/0"},
        /* the last of a repeated key is the one GKeyFile keeps and the one reported */
        {"[test]\nport = 25\nport = 0\n", HK_CONFIG_ERROR_VALUE,
         "t.conf:3: [test] port: \"0\": must be between 1 and 65535"},
        {"[other]\nport = 1\n[test]\nport = 0\n", HK_CONFIG_ERROR_VALUE,
         "t.conf:4: [test] port: \"0\": must be between 1 and 65535"},
        {"[test]\r\nport = 0\r\n", HK_CONFIG_ERROR_VALUE,
         "t.conf:2: [test] port: \"0\": must be between 1 and 65535"},
        {"\n\n  [nope]  \n", HK_CONFIG_ERROR_UNKNOWN, "t.conf:3: [nope]: unknown section"},
};

static void
test_line_numbers(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(line_cases); i++) {
		g_test_message("case %u", i);
		assert_load_fails(line_cases[i].data, line_cases[i].code, line_cases[i].message);
	}
}

static void
test_syntax_error(void)
{
	const char *const bad[] = {"port = 25\n", "[test\nport = 25\n", "[test]\njunk\n", NULL};

	for (guint i = 0; bad[i] != NULL; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(HkConfig) config =
		        hk_config_load_data(bad[i], ORIGIN, test_sections, &error);

		g_assert_null(config);
		g_assert_error(error, HK_CONFIG_ERROR, HK_CONFIG_ERROR_SYNTAX);
		g_assert_true(g_str_has_prefix(error->message, ORIGIN ": "));
		g_assert_cmpuint(strlen(error->message), >, strlen(ORIGIN ": "));
	}
}

static void
test_missing_file(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("hanko-test-XXXXXX", &error);
	g_autofree char *path = NULL;
	g_autofree char *want = NULL;
	g_autoptr(HkConfig) config = NULL;

	g_assert_no_error(error);
	path = g_build_filename(dir, "hanko.conf", NULL);
	config = hk_config_load(path, test_sections, &error);
	g_assert_null(config);
	g_assert_error(error, HK_CONFIG_ERROR, HK_CONFIG_ERROR_IO);
	want = g_strdup_printf("cannot read %s: %s", path, g_strerror(ENOENT));
	g_assert_cmpstr(error->message, ==, want);
	g_clear_error(&error);

	/* a directory opens fine and fails on read */
	config = hk_config_load(dir, test_sections, &error);
	g_assert_null(config);
	g_assert_error(error, HK_CONFIG_ERROR, HK_CONFIG_ERROR_IO);
	g_free(want);
	want = g_strdup_printf("cannot read %s: %s", dir, g_strerror(EISDIR));
	g_assert_cmpstr(error->message, ==, want);
	g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* Writes data to a new temp file; returns its path. */
static char *
write_temp(const char *data)
{
	g_autoptr(GError) error = NULL;
	char *path = NULL;
	int fd = g_file_open_tmp("hanko-test-XXXXXX.conf", &path, &error);

	g_assert_no_error(error);
	g_assert_cmpint(fd, >=, 0);
	g_assert_true(g_close(fd, NULL));
	g_file_set_contents(path, data, -1, &error);
	g_assert_no_error(error);
	return path;
}

static void
test_load_file(void)
{
	g_autofree char *path = write_temp("[test]\nport = 2526\nlevel = low\n");
	g_autoptr(GError) error = NULL;
	g_autoptr(HkConfig) config = hk_config_load(path, test_sections, &error);

	g_assert_no_error(error);
	g_assert_nonnull(config);
	g_assert_cmpstr(hk_config_get_path(config), ==, path);
	g_assert_cmpint(hk_config_get_int(config, "test", "port"), ==, 2526);
	g_assert_cmpstr(hk_config_get_string(config, "test", "level"), ==, "low");
	g_assert_cmpint(g_unlink(path), ==, 0);
}

static void
test_load_file_error_names_path(void)
{
	g_autofree char *path = write_temp("[test]\n\nsocket_mode = 0777\n");
	g_autofree char *want =
	        g_strdup_printf("%s:3: [test] socket_mode: 0777 is wider than 0770", path);
	g_autoptr(GError) error = NULL;
	g_autoptr(HkConfig) config = hk_config_load(path, test_sections, &error);

	g_assert_null(config);
	g_assert_error(error, HK_CONFIG_ERROR, HK_CONFIG_ERROR_VALUE);
	g_assert_cmpstr(error->message, ==, want);
	g_assert_cmpint(g_unlink(path), ==, 0);
}

static void
test_refcount(void)
{
	HkConfig *config = load_ok("[test]\nport = 99\n");
	HkConfig *ref = hk_config_ref(config);

	g_assert_true(ref == config);
	hk_config_unref(config);
	/* still alive through the second reference, as for a request in flight after reload */
	g_assert_cmpint(hk_config_get_int(ref, "test", "port"), ==, 99);
	g_assert_cmpstr(hk_config_get_path(ref), ==, ORIGIN);
	hk_config_unref(ref);
}

/* Criticals are fatal under g_test_init; the subprocess makes them non-fatal so the zero
 * values can be checked, and the parent checks what was logged. */
static void
test_wrong_getter(void)
{
	if (g_test_subprocess()) {
		g_autoptr(HkConfig) config = load_ok("[test]\nname = x\n");

		g_log_set_always_fatal(G_LOG_FATAL_MASK);
		g_assert_cmpint(hk_config_get_int(config, "test", "name"), ==, 0);
		g_assert_null(hk_config_get_string(config, "test", "port"));
		g_assert_null(hk_config_get_string(config, "test", "nope"));
		g_assert_false(hk_config_get_bool(config, "policyd", "verbose"));
		g_assert_null(hk_config_get_list(config, "test", "port")[0]);
		return;
	}
	g_test_trap_subprocess(NULL, 0, 0);
	g_test_trap_assert_passed();
	g_test_trap_assert_stderr("*[test] name: hk_config_get_int() does not match its type*"
	                          "*[test] port: hk_config_get_string() does not match its type*"
	                          "*[test] nope is not in the key table*"
	                          "*[policyd] verbose is not in the key table*"
	                          "*[test] port: hk_config_get_list() does not match its type*");
}

static void
test_bad_default(void)
{
	static const HkConfKey bad_keys[] = {
	        {.key = "port", .type = HK_CONF_INT, .def = "many", .min = 1, .max = 10},
	        {.key = NULL},
	};
	static const HkConfSection bad_sections[] = {
	        {.name = "bad", .keys = bad_keys},
	        {.name = NULL},
	};

	if (g_test_subprocess()) {
		g_autoptr(GError) error = NULL;
		g_autoptr(HkConfig) config = NULL;

		g_log_set_always_fatal(G_LOG_FATAL_MASK);
		config = hk_config_load_data("", ORIGIN, bad_sections, &error);
		g_assert_no_error(error);
		g_assert_cmpint(hk_config_get_int(config, "bad", "port"), ==, 0);
		return;
	}
	g_test_trap_subprocess(NULL, 0, 0);
	g_test_trap_assert_passed();
	g_test_trap_assert_stderr("*bad default for [bad] port: \"many\": not an integer*");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/config/defaults/empty-file", test_defaults_empty_file);
	g_test_add_func("/config/defaults/empty-section", test_defaults_empty_section);
	g_test_add_func("/config/all-types", test_all_types);
	g_test_add_func("/config/good-values", test_good_values);
	g_test_add_func("/config/bad-values", test_bad_values);
	g_test_add_func("/config/unknown-key", test_unknown_key);
	g_test_add_func("/config/unknown-section", test_unknown_section);
	g_test_add_func("/config/foreign-sections", test_foreign_sections);
	g_test_add_func("/config/line-numbers", test_line_numbers);
	g_test_add_func("/config/syntax-error", test_syntax_error);
	g_test_add_func("/config/missing-file", test_missing_file);
	g_test_add_func("/config/load-file", test_load_file);
	g_test_add_func("/config/load-file-error-names-path", test_load_file_error_names_path);
	g_test_add_func("/config/refcount", test_refcount);
	g_test_add_func("/config/wrong-getter", test_wrong_getter);
	g_test_add_func("/config/bad-default", test_bad_default);

	return g_test_run();
}
