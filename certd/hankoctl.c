/*
 * hankoctl: the administrator's client of hanko-certd's socket.
 *
 *   hankoctl [-c FILE] [-s SOCKET] [--json] [-t MS] COMMAND [ARGS]
 *
 * Talks to: hanko-certd (the socket named by [certd] socket in hanko.conf, or -s).
 * Must never: print a secret it was not asked for, or guess: errors name the socket,
 * the op and the daemon's reason.
 */
#include "hankoctl.h"
#include "hk-build-config.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>
#include <unistd.h>

static const CtlCommand *const command_tables[] = {
        ctl_core_commands, ctl_ca_commands,     ctl_cert_commands, ctl_servercert_commands,
        ctl_user_commands, ctl_policy_commands, ctl_fax_commands,  NULL,
};

static void
ctl_clear(Ctl *ctl)
{
	g_clear_pointer(&ctl->client, hk_ipc_client_free);
	g_clear_pointer(&ctl->config_path, g_free);
	g_clear_pointer(&ctl->socket_path, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Ctl, ctl_clear)

/* ----- helpers for commands ----- */

int
ctl_fail(const GError *error)
{
	if (error->domain == HK_IPC_ERROR && error->code <= HK_IPC_ERROR_INTERNAL)
		fprintf(stderr, "hankoctl: %s: %s\n", hk_ipc_error_code_to_string(error->code),
		        error->message);
	else
		fprintf(stderr, "hankoctl: %s\n", error->message);
	if (error->domain == HK_IPC_ERROR &&
	    (error->code == HK_IPC_ERROR_CONNECT || error->code == HK_IPC_ERROR_CLOSED ||
	     error->code == HK_IPC_ERROR_TIMEOUT))
		return CTL_EXIT_UNAVAILABLE;
	return CTL_EXIT_FAILED;
}

int
ctl_fail_local(const char *format, ...)
{
	g_autofree char *message = NULL;
	va_list args;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	fprintf(stderr, "hankoctl: %s\n", message);
	return CTL_EXIT_FAILED;
}

int
ctl_usage(const char *usage)
{
	fprintf(stderr, "hankoctl: usage: hankoctl %s\n", usage);
	return CTL_EXIT_USAGE;
}

void
ctl_add_string(json_object *params, const char *key, const char *value)
{
	if (value != NULL)
		json_object_object_add(params, key, json_object_new_string(value));
}

gboolean
ctl_add_pem_files(json_object *params, const char *cert_path, const char *key_path,
                  const char *pass_path, GError **error)
{
	g_autofree char *cert_pem = NULL;
	g_autoptr(HkSecret) key_pem = NULL;
	g_autoptr(HkSecret) passphrase = NULL;
	gsize len;

	if ((cert_pem = ctl_read_file(cert_path, &len, error)) == NULL ||
	    (key_path && (key_pem = ctl_read_file(key_path, &len, error)) == NULL) ||
	    (pass_path && (passphrase = ctl_read_secret(pass_path, error)) == NULL))
		return FALSE;
	ctl_add_string(params, HK_CERTD_KEY_CERT_PEM, cert_pem);
	ctl_add_string(params, HK_CERTD_KEY_KEY_PEM, key_pem);
	ctl_add_string(params, HK_CERTD_KEY_PASSPHRASE, passphrase);
	return TRUE;
}

int
ctl_show_result(json_object *result, gboolean printed, const GError *error, const char *const *keys)
{
	if (result == NULL)
		return ctl_fail(error);
	if (!printed)
		ctl_print_object(result, keys);
	return CTL_EXIT_OK;
}

int
ctl_call_say(Ctl *ctl, const char *op, json_object *params, const char *format, ...)
{
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	va_list args;

	result = ctl_call(ctl, op, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (printed)
		return CTL_EXIT_OK;
	va_start(args, format);
	vprintf(format, args);
	va_end(args);
	return CTL_EXIT_OK;
}

void
ctl_print_warnings(FILE *out, const char *prefix, json_object *result)
{
	json_object *warnings = NULL;

	json_object_object_get_ex(result, HK_CERTD_KEY_WARNINGS, &warnings);
	for (size_t i = 0; warnings && i < json_object_array_length(warnings); i++)
		fprintf(out, "%s%s\n", prefix,
		        json_object_get_string(json_object_array_get_idx(warnings, i)));
}

static gboolean
ctl_connect(Ctl *ctl, GError **error)
{
	if (ctl->client == NULL)
		ctl->client =
		        hk_ipc_client_connect(ctl->socket_path, (guint)ctl->timeout_ms, error);
	return ctl->client != NULL;
}

static json_object *
call_raw(Ctl *ctl, const char *op, json_object *params, GError **error)
{
	g_autoptr(json_object) req = json_object_new_object();
	g_autofree char *line = NULL;
	g_autofree char *reply = NULL;
	g_autoptr(json_object) msg = NULL;
	json_object *id, *result;

	json_object_object_add(req, "id", json_object_new_int(1));
	json_object_object_add(req, "op", json_object_new_string(op));
	if (params != NULL)
		json_object_object_add(req, "params", json_object_get(params));
	line = g_strconcat(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN), "\n", NULL);
	if (!hk_ipc_client_send_line(ctl->client, line, strlen(line), error))
		return NULL;
	reply = hk_ipc_client_read_line(ctl->client, error);
	if (reply == NULL)
		return NULL;
	printf("%s\n", reply);
	msg = hk_ipc_parse_line(reply, strlen(reply), error);
	if (msg == NULL || !hk_ipc_decode_reply(msg, &id, &result, error))
		return NULL;
	return result ? json_object_get(result) : json_object_new_object();
}

json_object *
ctl_call(Ctl *ctl, const char *op, json_object *params, gboolean *printed, GError **error)
{
	*printed = FALSE;
	if (!ctl_connect(ctl, error))
		return NULL;
	if (!ctl->json)
		return hk_ipc_client_call(ctl->client, op, params, error);
	*printed = TRUE;
	return call_raw(ctl, op, params, error);
}

gboolean
ctl_parse(int *argc, char ***argv, const char *usage, const GOptionEntry *entries, int *status)
{
	g_autoptr(GOptionContext) context = g_option_context_new(usage);
	g_autoptr(GError) error = NULL;

	g_option_context_set_help_enabled(context, TRUE);
	if (entries != NULL)
		g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, argc, argv, &error)) {
		fprintf(stderr, "hankoctl: %s\nusage: hankoctl %s\n", error->message, usage);
		*status = CTL_EXIT_USAGE;
		return FALSE;
	}
	return TRUE;
}

char *
ctl_read_file(const char *path, gsize *len, GError **error)
{
	char *data = NULL;

	if (g_strcmp0(path, "-") != 0) {
		if (!g_file_get_contents(path, &data, len, error))
			return NULL;
		return data;
	}
	{
		GString *in = g_string_new(NULL);
		char buf[8192];
		size_t n;

		while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
			g_string_append_len(in, buf, (gssize)n);
		*len = in->len;
		return g_string_free(in, FALSE);
	}
}

char *
ctl_read_secret(const char *path, GError **error)
{
	gsize len = 0;
	char *data = ctl_read_file(path, &len, error);

	if (data == NULL)
		return NULL;
	/* a secret is the first line: files written by editors end in a newline */
	data[strcspn(data, "\r\n")] = '\0';
	return data;
}

gboolean
ctl_write_file(const char *path, const void *data, gsize len, guint mode, GError **error)
{
	g_autofree char *dir = NULL;
	g_autofree char *base = NULL;

	if (g_strcmp0(path, "-") == 0) {
		if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot write to stdout");
			return FALSE;
		}
		return TRUE;
	}
	dir = g_path_get_dirname(path);
	base = g_path_get_basename(path);
	return certd_store_write(dir, base, data, len, mode, error);
}

gboolean
ctl_write_base64(json_object *result, const char *key, const char *path, guint mode, GError **error)
{
	const char *text = hk_json_get_string(result, key);
	g_autofree guchar *data = NULL;
	gsize len = 0;

	if (text == NULL) {
		g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_PROTOCOL, "the reply has no %s", key);
		return FALSE;
	}
	data = g_base64_decode(text, &len);
	return ctl_write_file(path, data, len, mode, error);
}

static void
print_value(const char *key, json_object *value)
{
	if (json_object_is_type(value, json_type_array)) {
		printf("%s:", key);
		for (size_t i = 0; i < json_object_array_length(value); i++)
			printf("%s%s", i ? ", " : " ",
			       json_object_get_string(json_object_array_get_idx(value, i)));
		printf("\n");
	} else if (!json_object_is_type(value, json_type_object)) {
		printf("%s: %s\n", key, json_object_get_string(value));
	}
}

void
ctl_print_object(json_object *obj, const char *const *keys)
{
	json_object *value;

	if (keys == NULL) {
		json_object_object_foreach(obj, key, member) print_value(key, member);
		return;
	}
	for (guint i = 0; keys[i] != NULL; i++) {
		if (json_object_object_get_ex(obj, keys[i], &value) && value != NULL)
			print_value(keys[i], value);
	}
}

/* ----- core commands ----- */

static char *
join_roles(json_object *roles)
{
	g_autoptr(GString) text = g_string_new(NULL);

	for (size_t i = 0; roles && i < json_object_array_length(roles); i++) {
		if (i > 0)
			g_string_append(text, ", ");
		g_string_append(text, json_object_get_string(json_object_array_get_idx(roles, i)));
	}
	return g_string_free(g_steal_pointer(&text), FALSE);
}

static int
cmd_ping(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) result = NULL;
	g_autofree char *roles = NULL;
	gint64 start = g_get_monotonic_time();
	json_object *roles_json = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "ping", NULL, &status))
		return status;
	if (argc != 1)
		return ctl_fail_local("ping takes no arguments");
	result = ctl_call(ctl, HK_CERTD_OP_PING, NULL, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (printed)
		return CTL_EXIT_OK;
	json_object_object_get_ex(result, HK_CERTD_KEY_ROLES, &roles_json);
	roles = join_roles(roles_json);
	printf("pong from %s %s at %s in %.2f ms (up %" G_GINT64_FORMAT " s; your roles: %s)\n",
	       hk_json_get_string(result, HK_CERTD_KEY_DAEMON),
	       hk_json_get_string(result, HK_CERTD_KEY_VERSION), ctl->socket_path,
	       (double)(g_get_monotonic_time() - start) / 1000.0,
	       hk_json_get_int(result, HK_CERTD_KEY_UPTIME, 0), roles);
	return CTL_EXIT_OK;
}

static int
cmd_call(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) params = NULL;
	g_autoptr(json_object) result = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "call OP [JSON]", NULL, &status))
		return status;
	if (argc < 2 || argc > 3)
		return ctl_usage("call OP ['{\"param\": value}']");
	if (argc == 3) {
		params = hk_ipc_parse_line(argv[2], strlen(argv[2]), &error);
		if (params == NULL) {
			fprintf(stderr, "hankoctl: params: %s\n", error->message);
			return CTL_EXIT_USAGE;
		}
	}
	result = ctl_call(ctl, argv[1], params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (!printed)
		printf("%s\n", json_object_to_json_string_ext(
		                       result, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
	return CTL_EXIT_OK;
}

static int
cmd_audit(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autofree char *since = NULL;
	gint limit = 0;
	gboolean printed;
	int status;
	const GOptionEntry entries[] = {
	        {"since", 0, 0, G_OPTION_ARG_STRING, &since,
	         "Entries from this time on (2026-11-23, 2026-11-23T07:00:00Z, or 7d ago)", "TIME"},
	        {"limit", 0, 0, G_OPTION_ARG_INT, &limit, "At most this many (the newest)", "N"},
	        G_OPTION_ENTRY_NULL,
	};
	json_object *entries_json;

	if (!ctl_parse(&argc, &argv, "audit [--since TIME] [--limit N]", entries, &status))
		return status;
	if (since != NULL) {
		g_autoptr(GDateTime) t = g_date_time_new_from_iso8601(since, NULL);
		g_autofree char *with_time = g_strconcat(since, "T00:00:00Z", NULL);
		gint64 days = 0;
		char *end = NULL;

		if (t == NULL)
			t = g_date_time_new_from_iso8601(with_time, NULL);
		if (t == NULL && (days = g_ascii_strtoll(since, &end, 10)) > 0 &&
		    g_strcmp0(end, "d") == 0)
			t = g_date_time_add_days(g_date_time_new_now_utc(), (gint)-days);
		if (t == NULL)
			return ctl_fail_local("--since: \"%s\" is not a date, a time or Nd", since);
		json_object_object_add(params, HK_CERTD_KEY_SINCE,
		                       json_object_new_int64(g_date_time_to_unix(t)));
	}
	if (limit > 0)
		json_object_object_add(params, HK_CERTD_KEY_LIMIT, json_object_new_int(limit));
	result = ctl_call(ctl, HK_CERTD_OP_AUDIT_LIST, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (printed)
		return CTL_EXIT_OK;
	json_object_object_get_ex(result, HK_CERTD_KEY_ENTRIES, &entries_json);
	for (size_t i = 0; entries_json && i < json_object_array_length(entries_json); i++) {
		json_object *e = json_object_array_get_idx(entries_json, i);
		const char *subject = hk_json_get_string(e, HK_CERTD_KEY_SUBJECT);
		const char *message = hk_json_get_string(e, HK_CERTD_KEY_MESSAGE);

		printf("%s uid=%" G_GINT64_FORMAT " %s %s %s%s%s\n",
		       hk_json_get_string(e, HK_CERTD_KEY_TIME),
		       hk_json_get_int(e, HK_CERTD_KEY_UID, -1),
		       hk_json_get_string(e, HK_CERTD_KEY_OP), subject ? subject : "-",
		       hk_json_get_string(e, HK_CERTD_KEY_OUTCOME), message ? ": " : "",
		       message ? message : "");
	}
	return CTL_EXIT_OK;
}

const CtlCommand ctl_core_commands[] = {
        {NULL, "ping", "", "check that hanko-certd answers, and show your roles", cmd_ping},
        {NULL, "call", "OP [JSON]", "call any op of certd's socket with JSON params", cmd_call},
        {NULL, "audit", "[--since TIME] [--limit N]", "show the audit log of changes", cmd_audit},
        {0},
};

/* ----- main ----- */

static char *
commands_help(void)
{
	GString *text = g_string_new("Commands:\n");

	for (guint t = 0; command_tables[t] != NULL; t++) {
		for (const CtlCommand *c = command_tables[t]; c->name != NULL; c++) {
			g_autofree char *name =
			        c->group ? g_strdup_printf("%s %s", c->group, c->name)
			                 : g_strdup(c->name);

			g_string_append_printf(text, "  %-16s %s\n", name, c->help);
		}
	}
	g_string_append(text, "\n\"hankoctl COMMAND --help\" shows a command's options.");
	return g_string_free(text, FALSE);
}

static gboolean
parse_options(Ctl *ctl, int *argc, char ***argv, GError **error)
{
	const GOptionEntry entries[] = {
	        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &ctl->config_path,
	         "Configuration file (default " HANKO_CONFIG_FILE ")", "FILE"},
	        {"socket", 's', 0, G_OPTION_ARG_FILENAME, &ctl->socket_path,
	         "certd's socket (default: [certd] socket)", "PATH"},
	        {"json", 'j', 0, G_OPTION_ARG_NONE, &ctl->json, "Print the daemon's raw JSON reply",
	         NULL},
	        {"timeout", 't', 0, G_OPTION_ARG_INT, &ctl->timeout_ms,
	         "Milliseconds to wait for a reply (default 30000)", "MS"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GOptionContext) context = g_option_context_new("COMMAND [ARGS...]");
	g_autofree char *help = commands_help();

	g_option_context_set_summary(context, "Administer hanko through hanko-certd's socket.");
	g_option_context_set_description(context, help);
	g_option_context_add_main_entries(context, entries, NULL);
	g_option_context_set_strict_posix(context, TRUE); /* options end at the command */
	return g_option_context_parse(context, argc, argv, error);
}

/* The socket path from -s, else hanko.conf; a missing default file means defaults. */
static gboolean
resolve_socket(Ctl *ctl, GError **error)
{
	g_autoptr(HkConfig) config = NULL;
	const char *path = ctl->config_path ? ctl->config_path : HANKO_CONFIG_FILE;

	if (ctl->socket_path != NULL)
		return TRUE;
	if (ctl->config_path == NULL && !g_file_test(path, G_FILE_TEST_EXISTS))
		config = hk_config_load_data("", path, certd_config_sections, error);
	else
		config = hk_config_load(path, certd_config_sections, error);
	if (config == NULL)
		return FALSE;
	ctl->socket_path = g_strdup(hk_config_get_string(config, CERTD_SECTION, CERTD_CONF_SOCKET));
	return TRUE;
}

static const CtlCommand *
find_command(int argc, char **argv, gboolean *grouped)
{
	for (guint t = 0; command_tables[t] != NULL; t++) {
		for (const CtlCommand *c = command_tables[t]; c->name != NULL; c++) {
			if (c->group == NULL && strcmp(c->name, argv[0]) == 0) {
				*grouped = FALSE;
				return c;
			}
			if (c->group != NULL && argc > 1 && strcmp(c->group, argv[0]) == 0 &&
			    strcmp(c->name, argv[1]) == 0) {
				*grouped = TRUE;
				return c;
			}
		}
	}
	return NULL;
}

static int
dispatch(Ctl *ctl, int argc, char **argv)
{
	gboolean grouped = FALSE;
	const CtlCommand *c = find_command(argc, argv, &grouped);

	if (c == NULL) {
		fprintf(stderr, "hankoctl: unknown command \"%s%s%s\" (try --help)\n", argv[0],
		        argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
		return CTL_EXIT_USAGE;
	}
	/* the command sees its own name as argv[0] */
	return grouped ? c->func(ctl, argc - 1, argv + 1) : c->func(ctl, argc, argv);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_auto(Ctl) ctl = {.timeout_ms = 30000};

	if (!parse_options(&ctl, &argc, &argv, &error)) {
		fprintf(stderr, "hankoctl: %s (try --help)\n", error->message);
		return CTL_EXIT_USAGE;
	}
	if (argc < 2) {
		fprintf(stderr, "hankoctl: no command given (try --help)\n");
		return CTL_EXIT_USAGE;
	}
	if (ctl.timeout_ms < 0) {
		fprintf(stderr, "hankoctl: --timeout must not be negative\n");
		return CTL_EXIT_USAGE;
	}
	if (!resolve_socket(&ctl, &error)) {
		fprintf(stderr, "hankoctl: %s\n", error->message);
		return CTL_EXIT_CONFIG;
	}
	return dispatch(&ctl, argc - 1, argv + 1);
}
