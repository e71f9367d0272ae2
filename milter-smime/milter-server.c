/*
 * milter-server: hanko-milter's daemon: the libmilter thread, and in the main loop the
 * configuration, reloads, and what certd says (its CA, the gateway identity), refreshed
 * when certd's event stream reports a change and whenever the stream is re-established.
 *
 * Talks to: hanko-certd (events.watch, ca.export, service.identity), milter-filter.
 * Must never: serve a message with a half-built runtime, or stop serving because certd
 * is down (messages that need it get on_certd_down; the rest pass).
 */
#include "milter-server.h"
#include "hk-certd-proto.h"
#include "hk-ipc.h"
#include "hk-json.h"
#include "hk-ossl.h"
#include "hk-socket.h"
#include "milter-admin.h"
#include "milter-filter.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <unistd.h>

#define WATCH_RETRY_MS 5000

typedef struct {
	HkDaemon *daemon;
	HkConfig *config;
	MilterCertd *certd;
	MilterFax *fax; /* NULL: no fax gateway */
	MilterAdmin *admin;
	GMutex lock;
	MilterRuntime *rt; /* under lock */
	MilterCertdView view;
	HkIpcAsync *events;
	gboolean watching;
	gboolean watch_in_flight;
	guint tick;
	guint timeout_ms;
	GThread *thread;
} MilterServer;

static MilterRuntime *
current_runtime(gpointer data)
{
	MilterServer *server = data;
	MilterRuntime *rt;

	g_mutex_lock(&server->lock);
	rt = milter_runtime_ref(server->rt);
	g_mutex_unlock(&server->lock);
	return rt;
}

static void
view_copy(const MilterCertdView *from, MilterCertdView *to)
{
	to->hanko_ca = from->hanko_ca;
	to->key = from->key;
	to->cert = from->cert;
	if (to->hanko_ca != NULL)
		X509_up_ref(to->hanko_ca);
	if (to->key != NULL)
		EVP_PKEY_up_ref(to->key);
	if (to->cert != NULL)
		X509_up_ref(to->cert);
	to->ca_known = from->ca_known;
	to->identity_error = g_strdup(from->identity_error);
}

/* A new runtime from the current configuration and view, swapped in. */
static gboolean
rebuild(MilterServer *server, HkConfig *config, GError **error)
{
	g_auto(MilterCertdView) view = {0};
	MilterRuntime *rt;
	MilterRuntime *old;

	view_copy(&server->view, &view);
	rt = milter_runtime_new(config, server->certd, &view, error);
	if (rt == NULL)
		return FALSE;
	rt->fax = server->fax;
	if (server->fax != NULL)
		milter_fax_set_identity(server->fax, server->view.key, server->view.cert,
		                        server->view.hanko_ca);
	g_mutex_lock(&server->lock);
	old = server->rt;
	server->rt = rt;
	g_mutex_unlock(&server->lock);
	if (old != NULL)
		milter_runtime_unref(old);
	return TRUE;
}

static void
rebuild_logged(MilterServer *server)
{
	g_autoptr(GError) error = NULL;

	if (!rebuild(server, server->config, &error))
		g_warning("keeping the previous trust settings: %s", error->message);
}

/* ----- what certd says ----- */

static const char *
gateway_address(MilterServer *server)
{
	const char *gateway =
	        hk_config_get_string(server->config, MILTER_SECTION, MILTER_CONF_GATEWAY_ADDRESS);

	return gateway && *gateway ? gateway : NULL;
}

static gboolean
identity_parse(json_object *result, MilterCertdView *view, GError **error)
{
	const char *key_pem = hk_json_get_string(result, HK_CERTD_KEY_KEY_PEM);
	const char *cert_pem = hk_json_get_string(result, HK_CERTD_KEY_CERT_PEM);
	g_autoptr(BIO) key_bio = BIO_new_mem_buf(key_pem ? key_pem : "", -1);
	g_autoptr(BIO) cert_bio = BIO_new_mem_buf(cert_pem ? cert_pem : "", -1);
	g_autoptr(EVP_PKEY) key = PEM_read_bio_PrivateKey(key_bio, NULL, NULL, NULL);
	g_autoptr(X509) cert = PEM_read_bio_X509(cert_bio, NULL, NULL, NULL);

	if (key == NULL || cert == NULL || X509_check_private_key(cert, key) != 1)
		return hk_ossl_set_error(error, "the gateway identity from certd is unusable");
	g_clear_pointer(&view->key, EVP_PKEY_free);
	g_clear_pointer(&view->cert, X509_free);
	view->key = g_steal_pointer(&key);
	view->cert = g_steal_pointer(&cert);
	g_clear_pointer(&view->identity_error, g_free);
	return TRUE;
}

static void
on_identity(json_object *result, const GError *error, gpointer data)
{
	MilterServer *server = data;
	g_autoptr(GError) local = NULL;

	if (result != NULL && identity_parse(result, &server->view, &local)) {
		g_message("gateway identity: %s", hk_json_get_string(result, HK_CERTD_KEY_NAME));
	} else if (result != NULL ||
	           (error->domain == HK_IPC_ERROR && error->code < HK_IPC_ERROR_CONNECT)) {
		/* certd answered: there is none, or we may not have it */
		const char *why = result != NULL ? local->message : error->message;

		g_warning("no gateway identity: %s", why);
		g_clear_pointer(&server->view.key, EVP_PKEY_free);
		g_clear_pointer(&server->view.cert, X509_free);
		g_free(server->view.identity_error);
		server->view.identity_error = g_strdup(why);
	}
	rebuild_logged(server);
}

static void
on_ca(json_object *result, const GError *error, gpointer data)
{
	MilterServer *server = data;
	const char *pem = result ? hk_json_get_string(result, HK_CERTD_KEY_PEM) : NULL;

	if (pem != NULL) {
		g_autoptr(BIO) bio = BIO_new_mem_buf(pem, -1);
		X509 *ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);

		if (ca != NULL) {
			char *subject = X509_NAME_oneline(X509_get_subject_name(ca), NULL, 0);

			g_message("hanko CA: %s", subject);
			OPENSSL_free(subject);
			g_clear_pointer(&server->view.hanko_ca, X509_free);
			server->view.hanko_ca = ca;
			server->view.ca_known = TRUE;
		}
	} else if (g_error_matches(error, HK_IPC_ERROR, HK_IPC_ERROR_NOT_FOUND)) {
		g_clear_pointer(&server->view.hanko_ca, X509_free);
		server->view.ca_known = TRUE; /* certd has no CA yet */
		g_message("hanko CA: none yet (%s)", error->message);
	}
	if (gateway_address(server) != NULL) {
		g_autoptr(json_object) params = json_object_new_object();

		json_object_object_add(params, HK_CERTD_KEY_SERVICE,
		                       json_object_new_string("gateway"));
		hk_ipc_async_call(server->events, HK_CERTD_OP_SERVICE_IDENTITY, params,
		                  server->timeout_ms, on_identity, server);
		return;
	}
	rebuild_logged(server);
}

static void
refresh(MilterServer *server)
{
	hk_ipc_async_call(server->events, HK_CERTD_OP_CA_EXPORT, NULL, server->timeout_ms, on_ca,
	                  server);
}

static void
on_event(const char *event, json_object *data, gpointer user_data)
{
	MilterServer *server = user_data;

	if (g_strcmp0(event, HK_CERTD_EV_CA_CHANGED) == 0 ||
	    (g_strcmp0(event, HK_CERTD_EV_CERT_ASSIGNED) == 0 &&
	     g_strcmp0(hk_json_get_string(data, HK_CERTD_KEY_SERVICE), "gateway") == 0)) {
		g_info("certd: %s; fetching the CA and the gateway identity again", event);
		refresh(server);
	}
}

static void
on_watch(json_object *result, const GError *error, gpointer data)
{
	MilterServer *server = data;

	server->watch_in_flight = FALSE;
	if (result == NULL) {
		milter_certd_note(server->certd, FALSE, error->message);
		return;
	}
	milter_certd_note(server->certd, TRUE, NULL);
	server->watching = TRUE;
	refresh(server); /* changes while the stream was down were not heard */
}

static void
watch(MilterServer *server)
{
	if (server->watch_in_flight)
		return;
	server->watch_in_flight = TRUE;
	hk_ipc_async_call(server->events, HK_CERTD_OP_EVENTS_WATCH, NULL, server->timeout_ms,
	                  on_watch, server);
}

static gboolean
on_tick(gpointer data)
{
	MilterServer *server = data;

	if (!hk_ipc_async_is_connected(server->events))
		server->watching = FALSE;
	if (!server->watching)
		watch(server);
	return G_SOURCE_CONTINUE;
}

/* ----- the daemon ----- */

/* The spool directory must take unlinked files (O_TMPFILE): find out now, not per message. */
static gboolean
tmp_dir_ready(const char *dir, GError **error)
{
	int fd;

	if (g_mkdir_with_parents(dir, 0700) != 0)
		return hk_set_errno_error(error, errno, "mkdir", dir);
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return hk_set_errno_error(error, errno, "[milter] tmp_dir: cannot create a file in",
		                          dir);
	close(fd);
	return TRUE;
}

static void
server_free(MilterServer *server)
{
	g_clear_handle_id(&server->tick, g_source_remove);
	g_clear_pointer(&server->events, hk_ipc_async_free);
	g_clear_pointer(&server->admin, milter_admin_free);
	g_clear_pointer(&server->rt, milter_runtime_unref);
	g_clear_pointer(&server->fax, milter_fax_free);
	milter_certd_view_clear(&server->view);
	milter_certd_free(server->certd);
	g_mutex_clear(&server->lock);
	hk_config_unref(server->config);
	g_free(server);
}

/* Serving stopped on its own: exit with a failure so that systemd restarts the milter. */
static gboolean
on_filter_exit(gpointer data)
{
	MilterServer *server = data;

	g_warning("libmilter stopped serving by itself; exiting for a restart");
	hk_daemon_quit(server->daemon, 1);
	return G_SOURCE_REMOVE;
}

/* The fax gateway and the admin socket, when gateway_address is set and fax is on. */
static gboolean
fax_start(MilterServer *server, HkConfig *config, GError **error)
{
	if (gateway_address(server) == NULL ||
	    !hk_config_get_bool(config, MILTER_SECTION, MILTER_CONF_FAX))
		return TRUE;
	server->fax = milter_fax_new(config, server->certd, error);
	if (server->fax == NULL)
		return FALSE;
	server->admin = milter_admin_new(config, server->fax, error);
	if (server->admin == NULL)
		return FALSE;
	g_message("admin socket on %s",
	          hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_ADMIN_SOCKET));
	return TRUE;
}

static gboolean
server_start(HkDaemon *daemon, GError **error)
{
	HkConfig *config = hk_daemon_get_config(daemon);
	MilterServer *server = g_new0(MilterServer, 1);
	const char *socket = hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_CERTD_SOCKET);
	gid_t group;

	server->daemon = daemon;
	server->config = hk_config_ref(config);
	g_mutex_init(&server->lock);
	server->timeout_ms =
	        (guint)hk_config_get_duration_ms(config, MILTER_SECTION, MILTER_CONF_CERTD_TIMEOUT);
	server->certd = milter_certd_new(socket, server->timeout_ms);
	if (!tmp_dir_ready(hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_TMP_DIR),
	                   error) ||
	    !fax_start(server, config, error) || !rebuild(server, config, error) ||
	    !hk_daemon_lookup_group(
	            hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_SOCKET_GROUP), &group,
	            error) ||
	    !milter_filter_open(hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_LISTEN),
	                        hk_config_get_mode(config, MILTER_SECTION, MILTER_CONF_SOCKET_MODE),
	                        group, current_runtime, server, error)) {
		server_free(server);
		return FALSE;
	}
	server->events = hk_ipc_async_new(socket);
	hk_ipc_async_set_event_func(server->events, on_event, server);
	watch(server);
	server->tick = g_timeout_add(WATCH_RETRY_MS, on_tick, server);
	server->thread = milter_filter_start(on_filter_exit, server);
	g_message("listening on %s",
	          hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_LISTEN));
	hk_daemon_set_data(daemon, server);
	return TRUE;
}

static gboolean
server_reload(HkDaemon *daemon, HkConfig *config, GError **error)
{
	MilterServer *server = hk_daemon_get_data(daemon);

	if (g_strcmp0(hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_LISTEN),
	              hk_config_get_string(server->config, MILTER_SECTION, MILTER_CONF_LISTEN)) !=
	    0)
		g_warning("[milter] listen changed: restart hanko-milter to move the socket");
	if ((server->fax != NULL) !=
	    (hk_config_get_bool(config, MILTER_SECTION, MILTER_CONF_FAX) &&
	     *hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_GATEWAY_ADDRESS) != '\0'))
		g_warning("the fax gateway is switched on or off: restart hanko-milter to apply");
	if (!rebuild(server, config, error))
		return FALSE;
	hk_config_unref(server->config);
	server->config = hk_config_ref(config);
	if (server->admin != NULL)
		milter_admin_set_config(server->admin, config);
	refresh(server); /* gateway_address may have changed */
	return TRUE;
}

static void
server_stop(HkDaemon *daemon)
{
	MilterServer *server = hk_daemon_get_data(daemon);

	milter_filter_stop(server->thread);
	server_free(server);
}

const HkDaemonSpec milter_daemon_spec = {
        .name = "hanko-milter",
        .summary = "S/MIME milter for Postfix: signatures, required signing, gateway decryption",
        .sections = milter_config_sections,
        .start = server_start,
        .reload = server_reload,
        .stop = server_stop,
};
