/*
 * hankoctl: the administrator's client of hanko-certd's socket.
 *
 *   hankoctl [-c FILE] [-s SOCKET] [--json] [-t MS] COMMAND [ARGS]
 *
 * Talks to: hanko-certd (the socket named by [certd] socket in hanko.conf, or -s).
 * Must never: print a secret it was not asked for, or guess: errors name the socket,
 * the op and the daemon's reason.
 */
#include "certd.h"
#include "hk-build-config.h"
#include "hk-certd-proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define EXIT_FAILED      1  /* the daemon answered with an error */
#define EXIT_USAGE       64 /* sysexits.h EX_USAGE */
#define EXIT_UNAVAILABLE 69 /* sysexits.h EX_UNAVAILABLE: cannot reach the daemon */
#define EXIT_CONFIG      78 /* sysexits.h EX_CONFIG */

typedef struct {
	char *config_path;
	char *socket_path;
	gboolean json;
	gint timeout_ms;
	HkIpcClient *client;
} Ctl;

static void
ctl_clear(Ctl *ctl)
{
	g_clear_pointer(&ctl->client, hk_ipc_client_free);
	g_clear_pointer(&ctl->config_path, g_free);
	g_clear_pointer(&ctl->socket_path, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Ctl, ctl_clear)

typedef int (*CtlFunc)(Ctl *ctl, int argc, char **argv);

typedef struct {
	const char *name;
	const char *args;
	const char *help;
	CtlFunc func;
} CtlCommand;

static int
exit_status_for(const GError *error)
{
	if (error->domain == HK_IPC_ERROR &&
	    (error->code == HK_IPC_ERROR_CONNECT || error->code == HK_IPC_ERROR_CLOSED ||
	     error->code == HK_IPC_ERROR_TIMEOUT))
		return EXIT_UNAVAILABLE;
	return EXIT_FAILED;
}

static int
fail(const GError *error)
{
	if (error->domain == HK_IPC_ERROR && error->code <= HK_IPC_ERROR_INTERNAL)
		fprintf(stderr, "hankoctl: %s: %s\n", hk_ipc_error_code_to_string(error->code),
		        error->message);
	else
		fprintf(stderr, "hankoctl: %s\n", error->message);
	return exit_status_for(error);
}

static gboolean
ctl_connect(Ctl *ctl, GError **error)
{
	if (ctl->client == NULL)
		ctl->client =
		        hk_ipc_client_connect(ctl->socket_path, (guint)ctl->timeout_ms, error);
	return ctl->client != NULL;
}

/*
 * Calls op; with --json prints the daemon's reply line as it came and returns NULL with
 * *printed set, so commands print their own text only without --json.
 */
static json_object *
ctl_call(Ctl *ctl, const char *op, json_object *params, gboolean *printed, GError **error)
{
	g_autoptr(json_object) req = NULL;
	g_autofree char *line = NULL;
	g_autofree char *reply = NULL;
	g_autoptr(json_object) msg = NULL;
	json_object *id, *result;

	*printed = FALSE;
	if (!ctl_connect(ctl, error))
		return NULL;
	if (!ctl->json)
		return hk_ipc_client_call(ctl->client, op, params, error);
	req = json_object_new_object();
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
	*printed = TRUE;
	msg = hk_ipc_parse_line(reply, strlen(reply), error);
	if (msg == NULL || !hk_ipc_decode_reply(msg, &id, &result, error))
		return NULL;
	return NULL;
}

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

	if (argc != 0) {
		fprintf(stderr, "hankoctl: ping takes no arguments\n");
		return EXIT_USAGE;
	}
	result = ctl_call(ctl, HK_CERTD_OP_PING, NULL, &printed, &error);
	if (error != NULL)
		return fail(error);
	if (printed)
		return 0;
	json_object_object_get_ex(result, HK_CERTD_KEY_ROLES, &roles_json);
	roles = join_roles(roles_json);
	printf("pong from %s %s at %s in %.2f ms (up %" G_GINT64_FORMAT " s; your roles: %s)\n",
	       hk_json_get_string(result, HK_CERTD_KEY_DAEMON),
	       hk_json_get_string(result, HK_CERTD_KEY_VERSION), ctl->socket_path,
	       (double)(g_get_monotonic_time() - start) / 1000.0,
	       hk_json_get_int(result, HK_CERTD_KEY_UPTIME, 0), roles);
	return 0;
}

static int
cmd_call(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) params = NULL;
	g_autoptr(json_object) result = NULL;
	gboolean printed;

	if (argc < 1 || argc > 2) {
		fprintf(stderr, "hankoctl: usage: hankoctl call OP ['{\"param\": value}']\n");
		return EXIT_USAGE;
	}
	if (argc == 2) {
		params = hk_ipc_parse_line(argv[1], strlen(argv[1]), &error);
		if (params == NULL) {
			fprintf(stderr, "hankoctl: params: %s\n", error->message);
			return EXIT_USAGE;
		}
	}
	result = ctl_call(ctl, argv[0], params, &printed, &error);
	if (error != NULL)
		return fail(error);
	if (!printed)
		printf("%s\n", json_object_to_json_string_ext(
		                       result, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
	return 0;
}

static const CtlCommand commands[] = {
        {"ping", "", "check that hanko-certd answers, and show your roles", cmd_ping},
        {"call", "OP [JSON]", "call any op of certd's socket with JSON params", cmd_call},
        {0},
};

static char *
commands_help(void)
{
	GString *text = g_string_new("Commands:\n");

	for (const CtlCommand *c = commands; c->name != NULL; c++)
		g_string_append_printf(text, "  %-6s %-10s %s\n", c->name, c->args, c->help);
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

static int
dispatch(Ctl *ctl, int argc, char **argv)
{
	for (const CtlCommand *c = commands; c->name != NULL; c++) {
		if (strcmp(c->name, argv[0]) == 0)
			return c->func(ctl, argc - 1, argv + 1);
	}
	fprintf(stderr, "hankoctl: unknown command \"%s\" (try --help)\n", argv[0]);
	return EXIT_USAGE;
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_auto(Ctl) ctl = {.timeout_ms = 30000};

	if (!parse_options(&ctl, &argc, &argv, &error)) {
		fprintf(stderr, "hankoctl: %s (try --help)\n", error->message);
		return EXIT_USAGE;
	}
	if (argc < 2) {
		fprintf(stderr, "hankoctl: no command given (try --help)\n");
		return EXIT_USAGE;
	}
	if (ctl.timeout_ms < 0) {
		fprintf(stderr, "hankoctl: --timeout must not be negative\n");
		return EXIT_USAGE;
	}
	if (!resolve_socket(&ctl, &error)) {
		fprintf(stderr, "hankoctl: %s\n", error->message);
		return EXIT_CONFIG;
	}
	return dispatch(&ctl, argc - 1, argv + 1);
}
