/*
 * certd-server: hanko-certd's life cycle (state, database, CA, socket), ping and
 * events.watch, and the registry of every part's op table.
 *
 * Talks to: its clients over the JSON-line socket (hk-ipc), its state directory.
 * Must never: run an op for a peer whose role does not allow it (hk-ipc checks each
 * table's roles before any handler runs), or start on a state it cannot trust.
 */
#include "certd.h"
#include "hk-build-config.h"
#include "hk-certd-proto.h"

#include <errno.h>
#include <gio/gio.h>
#include <sys/stat.h>

static const HkIpcOp *const op_tables[] = {
        certd_core_ops,       certd_audit_ops, certd_ca_ops,    certd_client_ops,
        certd_servercert_ops, certd_user_ops,  certd_smime_ops, NULL,
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
	CertdState *state = user_data;
	json_object *result = json_object_new_object();
	gint64 uptime = (g_get_monotonic_time() - state->started) / G_USEC_PER_SEC;

	json_object_object_add(result, HK_CERTD_KEY_PONG, json_object_new_boolean(TRUE));
	json_object_object_add(result, HK_CERTD_KEY_DAEMON, json_object_new_string("hanko-certd"));
	json_object_object_add(result, HK_CERTD_KEY_VERSION, json_object_new_string(HANKO_VERSION));
	json_object_object_add(result, HK_CERTD_KEY_UPTIME, json_object_new_int64(uptime));
	json_object_object_add(result, HK_CERTD_KEY_ROLES,
	                       roles_array(hk_ipc_request_get_roles(req)));
	hk_ipc_request_return(req, result);
}

static void
op_events_watch(HkIpcRequest *req, json_object *params, gpointer user_data)
{
	hk_ipc_request_subscribe(req);
	hk_ipc_request_return(req, NULL);
}

const HkIpcOp certd_core_ops[] = {
        {HK_CERTD_OP_PING, CERTD_PUBLIC, NULL, op_ping},
        {HK_CERTD_OP_EVENTS_WATCH, CERTD_SERVICE, NULL, op_events_watch},
        {0},
};

void
certd_emit(CertdState *state, const char *event, json_object *data)
{
	if (state->ipc != NULL)
		hk_ipc_server_emit(state->ipc, event, data);
	json_object_put(data);
}

/* ----- state ----- */

/* Certificate folders without a database row are what a crash between writing the files
 * and committing the row leaves: nobody was told of them, so they go. */
static void
remove_orphan_dirs(CertdState *state)
{
	g_autofree char *certs = g_build_filename(state->state_dir, "certs", NULL);
	g_autoptr(GDir) dir = g_dir_open(certs, 0, NULL);
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(state->db, "SELECT 1 FROM certs WHERE dir = ?", NULL);
	const char *name;

	while (dir != NULL && stmt != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *rel = g_build_filename("certs", name, NULL);
		g_autofree char *path = g_build_filename(certs, name, NULL);
		g_autoptr(GError) error = NULL;
		gboolean known;

		sqlite3_reset(stmt);
		sqlite3_bind_text(stmt, 1, rel, -1, SQLITE_TRANSIENT);
		known = sqlite3_step(stmt) == SQLITE_ROW;
		if (known)
			continue;
		g_message("removing %s, left by an operation that did not finish", path);
		if (!certd_store_remove_tree(path, &error))
			g_warning("%s", error->message);
	}
}

static gboolean
prepare_state_dir(const char *dir, GError **error)
{
	g_autofree char *certs = g_build_filename(dir, "certs", NULL);

	if (!certd_store_mkdir(dir, 0700, error) || !certd_store_mkdir(certs, 0700, error))
		return FALSE;
	/* the directory holds the CA key: nobody else may even look inside */
	if (chmod(dir, 0700) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
		            "cannot set mode 0700 on %s: %s", dir, g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

CertdState *
certd_state_open(HkConfig *config, GError **error)
{
	g_autoptr(GError) local = NULL;
	CertdState *state = g_new0(CertdState, 1);
	g_autofree char *db_path = NULL;

	state->config = config;
	state->started = g_get_monotonic_time();
	state->state_dir =
	        g_strdup(hk_config_get_string(config, CERTD_SECTION, CERTD_CONF_STATE_DIR));
	db_path = g_build_filename(state->state_dir, "certd.db", NULL);
	if (!prepare_state_dir(state->state_dir, &local) ||
	    (state->db = hk_db_open(db_path, certd_db_migrations, 5000, &local)) == NULL ||
	    !certd_ca_load(state, &local)) {
		g_propagate_error(error, g_steal_pointer(&local));
		certd_state_free(state);
		return NULL;
	}
	remove_orphan_dirs(state);
	return state;
}

void
certd_state_free(CertdState *state)
{
	if (state == NULL)
		return;
	certd_work_drain(state);
	if (state->workers != NULL)
		g_thread_pool_free(state->workers, FALSE, TRUE);
	g_clear_handle_id(&state->crl_timer, g_source_remove);
	g_clear_handle_id(&state->expiry_timer, g_source_remove);
	g_clear_pointer(&state->ipc, hk_ipc_server_free);
	g_clear_pointer(&state->db, hk_db_close);
	g_clear_pointer(&state->ca_cert, X509_free);
	g_clear_pointer(&state->ca_key, EVP_PKEY_free);
	g_free(state->state_dir);
	g_free(state);
}

/* ----- the daemon ----- */

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
certd_listen(HkDaemon *daemon, CertdState *state, GError **error)
{
	HkConfig *config = state->config;
	int fd = hk_daemon_take_listen_fd(daemon, "certd");
	gid_t group;

	if (fd >= 0)
		return hk_ipc_server_listen_fd(state->ipc, fd, error);
	if (!hk_daemon_lookup_group(
	            hk_config_get_string(config, CERTD_SECTION, CERTD_CONF_SOCKET_GROUP), &group,
	            error)) {
		g_prefix_error(error, "[certd] %s: ", CERTD_CONF_SOCKET_GROUP);
		return FALSE;
	}
	return hk_ipc_server_listen_path(
	        state->ipc, hk_config_get_string(config, CERTD_SECTION, CERTD_CONF_SOCKET),
	        hk_config_get_mode(config, CERTD_SECTION, CERTD_CONF_SOCKET_MODE), group, error);
}

static void
certd_serve(CertdState *state)
{
	HkIpcServerOptions options = {
	        .max_connections_per_uid = (guint)hk_config_get_int(state->config, CERTD_SECTION,
	                                                            CERTD_CONF_MAX_CONN_PER_UID),
	        .role_func = hk_ipc_roles_from_groups,
	        .role_data = &state->groups,
	        .finish_func = certd_audit_finish,
	        .finish_data = state,
	};

	state->groups.admin_gid = role_group(state->config, CERTD_CONF_ADMIN_GROUP);
	state->groups.service_gid = role_group(state->config, CERTD_CONF_SERVICE_GROUP);
	state->ipc = hk_ipc_server_new(op_tables[0], state, &options);
	for (guint i = 1; op_tables[i] != NULL; i++)
		hk_ipc_server_add_ops(state->ipc, op_tables[i]);
}

static gboolean
certd_start(HkDaemon *daemon, GError **error)
{
	CertdState *state = certd_state_open(hk_daemon_get_config(daemon), error);

	if (state == NULL)
		return FALSE;
	state->daemon = daemon;
	certd_serve(state);
	if (!certd_listen(daemon, state, error)) {
		certd_state_free(state);
		return FALSE;
	}
	certd_crl_schedule(state);
	certd_servercert_schedule(state);
	hk_daemon_set_data(daemon, state);
	return TRUE;
}

/* Role groups and the CA's policy keys follow a reload; the socket and the state
 * directory need a restart. */
static gboolean
certd_reload(HkDaemon *daemon, HkConfig *config, GError **error)
{
	CertdState *state = hk_daemon_get_data(daemon);
	static const char *const restart_keys[] = {CERTD_CONF_SOCKET, CERTD_CONF_STATE_DIR, NULL};

	for (guint i = 0; restart_keys[i] != NULL; i++) {
		if (g_strcmp0(hk_config_get_string(state->config, CERTD_SECTION, restart_keys[i]),
		              hk_config_get_string(config, CERTD_SECTION, restart_keys[i])) != 0)
			g_message("[certd] %s changed; it takes effect at the next restart",
			          restart_keys[i]);
	}
	state->config = config;
	state->groups.admin_gid = role_group(config, CERTD_CONF_ADMIN_GROUP);
	state->groups.service_gid = role_group(config, CERTD_CONF_SERVICE_GROUP);
	certd_crl_schedule(state);
	return TRUE;
}

static void
certd_stop(HkDaemon *daemon)
{
	certd_state_free(hk_daemon_get_data(daemon));
}

const HkDaemonSpec certd_daemon_spec = {
        .name = "hanko-certd",
        .summary = "hanko's private CA: users, certificates, revocation, CRLs.",
        .sections = certd_config_sections,
        .start = certd_start,
        .reload = certd_reload,
        .stop = certd_stop,
};
