/*
 * certd-server: hanko-certd's life cycle and its op table.
 *
 * Talks to: its clients over the JSON-line socket (hk-ipc).
 * Must never: run an op for a peer whose role does not allow it (hk-ipc checks the
 * table's roles before any handler here runs).
 */
#include "certd.h"
#include "hk-build-config.h"
#include "hk-certd-proto.h"

#include <gio/gio.h>

struct _CertdServer {
	HkIpcServer *ipc;
	HkIpcGroupRoles groups;
	gint64 started; /* monotonic, us */
};

static json_object *
roles_array(guint roles)
{
	json_object *array = json_object_new_array();

	if (roles & HK_IPC_ROLE_PUBLIC)
		json_object_array_add(array, json_object_new_string("public"));
	if (roles & HK_IPC_ROLE_SERVICE)
		json_object_array_add(array, json_object_new_string("service"));
	if (roles & HK_IPC_ROLE_ADMIN)
		json_object_array_add(array, json_object_new_string("admin"));
	return array;
}

static void
op_ping(HkIpcRequest *req, json_object *params, gpointer user_data)
{
	CertdServer *server = user_data;
	json_object *result = json_object_new_object();
	gint64 uptime = (g_get_monotonic_time() - server->started) / G_USEC_PER_SEC;

	json_object_object_add(result, HK_CERTD_KEY_PONG, json_object_new_boolean(TRUE));
	json_object_object_add(result, HK_CERTD_KEY_DAEMON, json_object_new_string("hanko-certd"));
	json_object_object_add(result, HK_CERTD_KEY_VERSION, json_object_new_string(HANKO_VERSION));
	json_object_object_add(result, HK_CERTD_KEY_UPTIME, json_object_new_int64(uptime));
	json_object_object_add(result, HK_CERTD_KEY_ROLES,
	                       roles_array(hk_ipc_request_get_roles(req)));
	hk_ipc_request_return(req, result);
}

const HkIpcOp certd_ops[] = {
        {HK_CERTD_OP_PING, HK_IPC_ROLE_PUBLIC, NULL, op_ping},
        {0},
};

/* A missing admin or service group narrows who may do what; it does not stop certd. */
static gid_t
role_group(HkConfig *config, const char *key)
{
	const char *name = hk_config_get_string(config, CERTD_SECTION, key);
	g_autoptr(GError) error = NULL;
	gid_t gid;

	if (!hk_daemon_lookup_group(name, &gid, &error)) {
		g_warning("[certd] %s: %s; no one but root has that role", key, error->message);
		return (gid_t)-1;
	}
	return gid;
}

static gboolean
certd_listen(HkDaemon *daemon, CertdServer *server, GError **error)
{
	HkConfig *config = hk_daemon_get_config(daemon);
	int fd = hk_daemon_take_listen_fd(daemon, "certd");
	gid_t group;

	if (fd >= 0)
		return hk_ipc_server_listen_fd(server->ipc, fd, error);
	if (!hk_daemon_lookup_group(
	            hk_config_get_string(config, CERTD_SECTION, CERTD_CONF_SOCKET_GROUP), &group,
	            error)) {
		g_prefix_error(error, "[certd] %s: ", CERTD_CONF_SOCKET_GROUP);
		return FALSE;
	}
	return hk_ipc_server_listen_path(
	        server->ipc, hk_config_get_string(config, CERTD_SECTION, CERTD_CONF_SOCKET),
	        hk_config_get_mode(config, CERTD_SECTION, CERTD_CONF_SOCKET_MODE), group, error);
}

static gboolean
certd_start(HkDaemon *daemon, GError **error)
{
	HkConfig *config = hk_daemon_get_config(daemon);
	CertdServer *server = g_new0(CertdServer, 1);
	HkIpcServerOptions options = {
	        .max_connections_per_uid = (guint)hk_config_get_int(config, CERTD_SECTION,
	                                                            CERTD_CONF_MAX_CONN_PER_UID),
	        .role_func = hk_ipc_roles_from_groups,
	        .role_data = &server->groups,
	};

	server->started = g_get_monotonic_time();
	server->groups.admin_gid = role_group(config, CERTD_CONF_ADMIN_GROUP);
	server->groups.service_gid = role_group(config, CERTD_CONF_SERVICE_GROUP);
	server->ipc = hk_ipc_server_new(certd_ops, server, &options);
	if (!certd_listen(daemon, server, error)) {
		hk_ipc_server_free(server->ipc);
		g_free(server);
		return FALSE;
	}
	hk_daemon_set_data(daemon, server);
	return TRUE;
}

/* Role groups may change on reload; the socket's path and mode need a restart. */
static gboolean
certd_reload(HkDaemon *daemon, HkConfig *config, GError **error)
{
	CertdServer *server = hk_daemon_get_data(daemon);
	HkConfig *old = hk_daemon_get_config(daemon);

	if (g_strcmp0(hk_config_get_string(old, CERTD_SECTION, CERTD_CONF_SOCKET),
	              hk_config_get_string(config, CERTD_SECTION, CERTD_CONF_SOCKET)) != 0)
		g_message("[certd] %s changed; it takes effect at the next restart",
		          CERTD_CONF_SOCKET);
	server->groups.admin_gid = role_group(config, CERTD_CONF_ADMIN_GROUP);
	server->groups.service_gid = role_group(config, CERTD_CONF_SERVICE_GROUP);
	return TRUE;
}

static void
certd_stop(HkDaemon *daemon)
{
	CertdServer *server = hk_daemon_get_data(daemon);

	hk_ipc_server_free(server->ipc);
	g_free(server);
}

const HkDaemonSpec certd_daemon_spec = {
        .name = "hanko-certd",
        .summary = "hanko's private CA: users, certificates, revocation, CRLs.",
        .sections = certd_config_sections,
        .start = certd_start,
        .reload = certd_reload,
        .stop = certd_stop,
};
