/*
 * hankoctl-policy: "hankoctl policy check", what hanko-policyd would answer Postfix for a
 * certificate fingerprint and a sender, asked on policyd's admin socket.
 *
 * Talks to: hanko-policyd's admin socket (--admin-socket, else [policyd] admin_socket of
 * hanko.conf). Must never: guess an answer itself: the decision is policyd's, made by the
 * same engine and cache that answer Postfix.
 */
#include "hankoctl.h"
#include "hk-build-config.h"
#include "hk-policyd-proto.h"
#include "policyd.h"

typedef struct {
	char *fingerprint, *pubkey, *sender, *tls, *state, *client, *socket;
} CheckOptions;

static void
check_options_clear(CheckOptions *o)
{
	g_free(o->fingerprint);
	g_free(o->pubkey);
	g_free(o->sender);
	g_free(o->tls);
	g_free(o->state);
	g_free(o->client);
	g_free(o->socket);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CheckOptions, check_options_clear)

/* --admin-socket, else [policyd] admin_socket; a missing default file means defaults. */
static char *
admin_socket(Ctl *ctl, const char *given, GError **error)
{
	const char *path = ctl->config_path ? ctl->config_path : HANKO_CONFIG_FILE;
	g_autoptr(HkConfig) config = NULL;

	if (given != NULL)
		return g_strdup(given);
	if (ctl->config_path == NULL && !g_file_test(path, G_FILE_TEST_EXISTS))
		config = hk_config_load_data("", path, policyd_config_sections, error);
	else
		config = hk_config_load(path, policyd_config_sections, error);
	if (config == NULL)
		return NULL;
	return g_strdup(hk_config_get_string(config, POLICYD_SECTION, POLICYD_CONF_ADMIN_SOCKET));
}

static void
add_param(json_object *params, const char *key, const char *value)
{
	if (value != NULL)
		json_object_object_add(params, key, json_object_new_string(value));
}

static json_object *
check_params(const CheckOptions *o)
{
	json_object *params = json_object_new_object();

	add_param(params, HK_POLICYD_KEY_FINGERPRINT, o->fingerprint);
	add_param(params, HK_POLICYD_KEY_PUBKEY_FP, o->pubkey);
	add_param(params, HK_POLICYD_KEY_SENDER, o->sender);
	add_param(params, HK_POLICYD_KEY_TLS_PROTOCOL, o->tls);
	add_param(params, HK_POLICYD_KEY_STATE, o->state);
	add_param(params, HK_POLICYD_KEY_CLIENT_ADDRESS, o->client);
	return params;
}

static int
cmd_policy_check(Ctl *ctl, int argc, char **argv)
{
	g_auto(CheckOptions) o = {0};
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) params = NULL;
	g_autoptr(json_object) result = NULL;
	static const char *const keys[] = {HK_POLICYD_KEY_OUTCOME, HK_POLICYD_KEY_ACTION,
	                                   HK_POLICYD_KEY_USER, HK_POLICYD_KEY_FINGERPRINT, NULL};
	const GOptionEntry entries[] = {
	        {"fingerprint", 0, 0, G_OPTION_ARG_STRING, &o.fingerprint,
	         "SHA-256 fingerprint of the client certificate (ccert_fingerprint)", "FP"},
	        {"pubkey-fingerprint", 0, 0, G_OPTION_ARG_STRING, &o.pubkey,
	         "SHA-256 fingerprint of its public key (ccert_pubkey_fingerprint)", "FP"},
	        {"sender", 0, 0, G_OPTION_ARG_STRING, &o.sender, "Envelope sender (\"\": <>)",
	         "ADDR"},
	        {"tls", 0, 0, G_OPTION_ARG_STRING, &o.tls,
	         "TLS protocol as Postfix reports it (default TLSv1.3; \"\": no TLS)", "TLSv1.2"},
	        {"state", 0, 0, G_OPTION_ARG_STRING, &o.state,
	         "protocol_state (default: the one policyd judges)", "RCPT"},
	        {"client-address", 0, 0, G_OPTION_ARG_STRING, &o.client,
	         "SMTP client address, for the log line", "ADDR"},
	        {"admin-socket", 0, 0, G_OPTION_ARG_FILENAME, &o.socket,
	         "policyd's admin socket (default: [policyd] admin_socket)", "PATH"},
	        G_OPTION_ENTRY_NULL,
	};
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv,
	               "policy check --fingerprint FP [--pubkey-fingerprint FP] --sender ADDR "
	               "[--tls TLSv1.2] [--state RCPT]",
	               entries, &status))
		return status;
	if (argc != 1 || o.sender == NULL) {
		fprintf(stderr, "hankoctl: usage: hankoctl policy check --fingerprint FP "
		                "[--pubkey-fingerprint FP] --sender ADDR [--tls TLSv1.2] "
		                "[--state RCPT]\n");
		return CTL_EXIT_USAGE;
	}
	g_free(ctl->socket_path);
	ctl->socket_path = admin_socket(ctl, o.socket, &error);
	if (ctl->socket_path == NULL) {
		fprintf(stderr, "hankoctl: %s\n", error->message);
		return CTL_EXIT_CONFIG;
	}
	params = check_params(&o);
	result = ctl_call(ctl, HK_POLICYD_OP_POLICY_CHECK, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (!printed)
		ctl_print_object(result, keys);
	return CTL_EXIT_OK;
}

const CtlCommand ctl_policy_commands[] = {
        {"policy", "check", "--fingerprint FP --sender ADDR [--tls TLSv1.2] [--state RCPT]",
         "what hanko-policyd would answer Postfix (its admin socket)", cmd_policy_check},
        {0},
};
