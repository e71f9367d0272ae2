/*
 * policyd-admin: hanko-policyd's JSON-line admin socket: ping, and policy.check for
 * "hankoctl policy check", answered by the same path Postfix's requests take.
 *
 * Talks to: hankoctl (hk-ipc server; roles from SO_PEERCRED: root or admin_group).
 * Must never: answer policy.check for a peer that is not admin (hk-ipc checks the table's
 * roles before the handler runs), or differ from what the policy listener would answer.
 */
#include "policyd-server.h"
#include "hk-build-config.h"
#include "hk-json.h"
#include "hk-policyd-proto.h"

typedef struct {
	HkIpcRequest *request;
	PolicydRequest policy;
} AdminCheck;

static void
op_ping(HkIpcRequest *req, json_object *params, gpointer user_data)
{
	PolicydState *state = user_data;
	json_object *result = json_object_new_object();

	json_object_object_add(result, HK_POLICYD_KEY_PONG, json_object_new_boolean(TRUE));
	json_object_object_add(result, HK_POLICYD_KEY_DAEMON,
	                       json_object_new_string("hanko-policyd"));
	json_object_object_add(result, HK_POLICYD_KEY_VERSION,
	                       json_object_new_string(HANKO_VERSION));
	json_object_object_add(
	        result, HK_POLICYD_KEY_CERTD,
	        json_object_new_string(hk_ipc_async_is_connected(state->certd) ? "up" : "down"));
	json_object_object_add(result, HK_POLICYD_KEY_CACHE_SIZE,
	                       json_object_new_int64(policyd_cache_size(state->cache)));
	json_object_object_add(
	        result, HK_POLICYD_KEY_POLICY_CONN,
	        json_object_new_int64(policyd_policy_get_n_connections(state->policy)));
	hk_ipc_request_return(req, result);
}

static void
on_checked(const PolicydDecision *decision, gpointer data)
{
	AdminCheck *check = data;
	json_object *result = json_object_new_object();

	json_object_object_add(result, HK_POLICYD_KEY_OUTCOME,
	                       json_object_new_string(policyd_outcome_name(decision->outcome)));
	json_object_object_add(result, HK_POLICYD_KEY_ACTION,
	                       json_object_new_string(decision->action));
	if (decision->user != NULL)
		json_object_object_add(result, HK_POLICYD_KEY_USER,
		                       json_object_new_string(decision->user));
	if (decision->fingerprint != NULL)
		json_object_object_add(result, HK_POLICYD_KEY_FINGERPRINT,
		                       json_object_new_string(decision->fingerprint));
	hk_ipc_request_return(check->request, result);
	policyd_request_clear(&check->policy);
	g_free(check);
}

/* JSON param -> Postfix attribute of the same meaning */
static const struct {
	const char *param, *attr;
} param_attrs[] = {
        {HK_POLICYD_KEY_FINGERPRINT, "ccert_fingerprint"},
        {HK_POLICYD_KEY_PUBKEY_FP, "ccert_pubkey_fingerprint"},
        {HK_POLICYD_KEY_SENDER, "sender"},
        {HK_POLICYD_KEY_TLS_PROTOCOL, "encryption_protocol"},
        {HK_POLICYD_KEY_STATE, "protocol_state"},
        {HK_POLICYD_KEY_CLIENT_ADDRESS, "client_address"},
};

static void
op_policy_check(HkIpcRequest *req, json_object *params, gpointer user_data)
{
	PolicydState *state = user_data;
	AdminCheck *check = g_new0(AdminCheck, 1);

	check->request = req;
	policyd_request_set(&check->policy, "request", "smtpd_access_policy");
	policyd_request_set(&check->policy, "protocol_state", state->settings->protocol_state);
	policyd_request_set(&check->policy, "encryption_protocol", "TLSv1.3");
	policyd_request_set(&check->policy, "client_name", "hankoctl");
	for (guint i = 0; i < G_N_ELEMENTS(param_attrs); i++) {
		const char *value = hk_json_get_string(params, param_attrs[i].param);

		if (value != NULL)
			policyd_request_set(&check->policy, param_attrs[i].attr, value);
	}
	policyd_check(state, &check->policy, "check", on_checked, check);
}

static const HkIpcParam check_params[] = {
        {HK_POLICYD_KEY_FINGERPRINT, json_type_string, FALSE},
        {HK_POLICYD_KEY_PUBKEY_FP, json_type_string, FALSE},
        {HK_POLICYD_KEY_SENDER, json_type_string, FALSE},
        {HK_POLICYD_KEY_TLS_PROTOCOL, json_type_string, FALSE},
        {HK_POLICYD_KEY_STATE, json_type_string, FALSE},
        {HK_POLICYD_KEY_CLIENT_ADDRESS, json_type_string, FALSE},
        {NULL},
};

static const HkIpcOp admin_ops[] = {
        {HK_POLICYD_OP_PING, HK_IPC_ROLE_PUBLIC, NULL, op_ping},
        {HK_POLICYD_OP_POLICY_CHECK, HK_IPC_ROLE_ADMIN, check_params, op_policy_check},
        {0},
};

HkIpcServer *
policyd_admin_new(PolicydState *state)
{
	HkIpcServerOptions options = {
	        .max_connections_per_uid = 16,
	        .role_func = hk_ipc_roles_from_groups,
	        .role_data = &state->admin_roles,
	};

	return hk_ipc_server_new(admin_ops, state, &options);
}
