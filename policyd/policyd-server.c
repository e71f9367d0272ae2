/*
 * policyd-server: hanko-policyd's life cycle (listeners, certd client, cache, admin
 * socket, the auth module) and policyd_check(), the path of every policy question.
 *
 * Talks to: hanko-certd (one asynchronous client, shared), Postfix (policy and auth
 * listeners), hankoctl (admin socket), systemd (socket activation by FileDescriptorName:
 * policy, auth, admin).
 * Must never: start with an action template it cannot expand, or log a secret (policy
 * requests carry none; the auth module keeps passwords to itself).
 */
#include "policyd-server.h"
#include "hk-log.h"
#include "hk-ossl.h"

#include <gio/gio.h>
#include <string.h>

/* ----- the decision path ----- */

typedef struct {
	PolicydState *state;
	PolicydSettings *settings; /* the one the request started with */
	const PolicydRequest *request;
	const char *origin;
	PolicydCheckFunc func;
	gpointer data;
} Check;

/* Appends text with control characters (the client's) as '?': a log line stays one line. */
static void
append_printable(GString *line, const char *text)
{
	for (const char *p = text ? text : ""; *p != '\0'; p++)
		g_string_append_c(line, (guchar)*p < 0x20 || *p == 0x7f ? '?' : *p);
}

/* "ORIGIN: client=NAME[ADDRESS] " */
static void
append_client(GString *line, const Check *check)
{
	const PolicydRequest *req = check->request;

	g_string_append(line, check->origin);
	g_string_append(line, ": client=");
	append_printable(line, req->client_name ? req->client_name : "unknown");
	g_string_append_c(line, '[');
	append_printable(line, req->client_address);
	g_string_append(line, "] ");
}

/* One line per decision, built by hand: policyd logs one for every request it answers. */
static void
log_decision(const Check *check, const PolicydDecision *decision)
{
	const PolicydRequest *req = check->request;
	GString *line = check->state->log_line;
	const char *fingerprint = decision->fingerprint ? decision->fingerprint : "-";

	g_string_truncate(line, 0);
	if (decision->outcome == POLICYD_OUTCOME_NOT_JUDGED) {
		if (!hk_log_get_debug())
			return;
		append_client(line, check);
		g_string_append(line, "protocol_state=");
		append_printable(line, req->protocol_state);
		g_string_append(line, " not judged: DUNNO");
		hk_log_text(G_LOG_DOMAIN, G_LOG_LEVEL_DEBUG, line->str);
		return;
	}
	append_client(line, check);
	g_string_append(line, "sender=<");
	append_printable(line, req->sender);
	/* the fingerprint's first 11 characters: "AB:CD:EF:01" */
	g_string_append(line, "> fingerprint=");
	g_string_append_len(line, fingerprint, (gssize)strnlen(fingerprint, 11));
	g_string_append(line, " user=");
	append_printable(line, decision->user ? decision->user : "-");
	g_string_append(line, " outcome=");
	g_string_append(line, policyd_outcome_name(decision->outcome));
	g_string_append(line, " action=");
	append_printable(line, decision->action);
	hk_log_text(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, line->str);
}

static void
check_answer(Check *check, const PolicydLookup *lookup)
{
	g_auto(PolicydDecision) decision;

	policyd_decide(check->request, lookup, check->settings, g_get_real_time() / G_USEC_PER_SEC,
	               &decision);
	log_decision(check, &decision);
	check->func(&decision, check->data);
}

static void
check_free(Check *check)
{
	policyd_settings_unref(check->settings);
	g_free(check);
}

static void
on_lookup(const PolicydLookup *lookup, gpointer data)
{
	Check *check = data;

	check_answer(check, lookup);
	check_free(check);
}

/* Asks certd; the check goes on in on_lookup(). */
static void
check_later(const Check *check, const char *fingerprint, gboolean pubkey)
{
	Check *later = g_memdup2(check, sizeof(*check));

	policyd_settings_ref(later->settings);
	policyd_cache_fetch(check->state->cache, fingerprint, pubkey, on_lookup, later);
}

/* What a request needs from certd. */
typedef struct {
	const char *fingerprint; /* canonical; NULL when none is needed or usable */
	char *normalized;        /* fingerprint, when it had to be normalized */
	gboolean pubkey;
	const PolicydLookup *hit; /* the cache's answer for it */
} Needed;

/* TRUE when the request can be decided now: it needs no lookup, its fingerprint is of no
 * use (logged), or the cache has the answer (needed->hit). */
static gboolean
find_needed(PolicydState *state, const PolicydRequest *request, const char *origin, Needed *needed)
{
	g_autoptr(GError) error = NULL;
	const char *fingerprint;

	if (!policyd_needs_lookup(request, state->settings))
		return TRUE;
	/* Postfix sends the canonical form: a cache hit then allocates nothing here */
	fingerprint = policyd_request_fingerprint_text(request, &needed->pubkey);
	if (!hk_ossl_fingerprint_is_canonical(fingerprint))
		fingerprint = needed->normalized =
		        policyd_request_fingerprint(request, &needed->pubkey, &error);
	if (fingerprint == NULL) {
		g_warning("%s: %s (hanko needs smtpd_tls_fingerprint_digest = sha256)", origin,
		          error->message);
		return TRUE;
	}
	needed->fingerprint = fingerprint;
	needed->hit = policyd_cache_get(state->cache, fingerprint, needed->pubkey);
	return needed->hit != NULL;
}

gboolean
policyd_check_now(PolicydState *state, const PolicydRequest *request, const char *origin,
                  PolicydCheckFunc func, gpointer user_data)
{
	Check check = {state, state->settings, request, origin, func, user_data};
	Needed needed = {0};
	gboolean now = find_needed(state, request, origin, &needed);

	if (now)
		check_answer(&check, needed.hit);
	g_free(needed.normalized);
	return now;
}

void
policyd_check(PolicydState *state, const PolicydRequest *request, const char *origin,
              PolicydCheckFunc func, gpointer user_data)
{
	Check check = {state, state->settings, request, origin, func, user_data};
	Needed needed = {0};

	if (find_needed(state, request, origin, &needed))
		check_answer(&check, needed.hit);
	else
		check_later(&check, needed.fingerprint, needed.pubkey);
	g_free(needed.normalized);
}

/* ----- listeners ----- */

static gboolean
socket_group(HkConfig *config, gid_t *gid, GError **error)
{
	if (hk_daemon_lookup_group(
	            hk_config_get_string(config, POLICYD_SECTION, POLICYD_CONF_SOCKET_GROUP), gid,
	            error))
		return TRUE;
	g_prefix_error(error, "[%s] %s: ", POLICYD_SECTION, POLICYD_CONF_SOCKET_GROUP);
	return FALSE;
}

static gboolean
listen_policy(PolicydState *state, GError **error)
{
	HkConfig *config = state->config;
	const char *const *specs =
	        hk_config_get_list(config, POLICYD_SECTION, POLICYD_CONF_POLICY_LISTEN);
	guint mode = hk_config_get_mode(config, POLICYD_SECTION, POLICYD_CONF_SOCKET_MODE);
	gboolean activated = FALSE;
	gid_t group;
	int fd;

	while ((fd = hk_daemon_take_listen_fd(state->daemon, "policy")) >= 0) {
		activated = TRUE;
		if (!policyd_policy_listen_fd(state->policy, fd, error))
			return FALSE;
	}
	if (activated)
		return TRUE;
	if (!socket_group(config, &group, error))
		return FALSE;
	for (guint i = 0; specs != NULL && specs[i] != NULL; i++) {
		if (!policyd_policy_listen(state->policy, specs[i], mode, group, error)) {
			g_prefix_error(error, "[%s] %s: ", POLICYD_SECTION,
			               POLICYD_CONF_POLICY_LISTEN);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
listen_auth(PolicydState *state, GError **error)
{
	HkConfig *config = state->config;
	const char *const *specs =
	        hk_config_get_list(config, POLICYD_SECTION, POLICYD_CONF_AUTH_LISTEN);
	guint mode = hk_config_get_mode(config, POLICYD_SECTION, POLICYD_CONF_SOCKET_MODE);
	int fd = hk_daemon_take_listen_fd(state->daemon, "auth");
	gid_t group;

	if (fd < 0 && (specs == NULL || specs[0] == NULL))
		return TRUE; /* no authentication service wanted */
	state->auth = policyd_auth_new(config, state->certd);
	if (fd >= 0) {
		do {
			if (!policyd_auth_listen_fd(state->auth, fd, error))
				return FALSE;
		} while ((fd = hk_daemon_take_listen_fd(state->daemon, "auth")) >= 0);
		return TRUE;
	}
	if (!socket_group(config, &group, error))
		return FALSE;
	for (guint i = 0; specs[i] != NULL; i++) {
		if (!policyd_auth_listen(state->auth, specs[i], mode, group, error)) {
			g_prefix_error(error, "[%s] %s: ", POLICYD_SECTION,
			               POLICYD_CONF_AUTH_LISTEN);
			return FALSE;
		}
	}
	return TRUE;
}

/* A missing admin group leaves the admin socket to root; it does not stop policyd. */
static gid_t
admin_gid(HkConfig *config)
{
	const char *name = hk_config_get_string(config, POLICYD_SECTION, POLICYD_CONF_ADMIN_GROUP);
	g_autoptr(GError) error = NULL;
	gid_t gid;

	if (!hk_daemon_lookup_group(name, &gid, &error)) {
		g_warning("[%s] %s: %s; only root may use the admin socket", POLICYD_SECTION,
		          POLICYD_CONF_ADMIN_GROUP, error->message);
		return (gid_t)-1;
	}
	return gid;
}

static gboolean
listen_admin(PolicydState *state, GError **error)
{
	const char *path =
	        hk_config_get_string(state->config, POLICYD_SECTION, POLICYD_CONF_ADMIN_SOCKET);
	int fd = hk_daemon_take_listen_fd(state->daemon, "admin");

	state->admin_roles.admin_gid = admin_gid(state->config);
	state->admin_roles.service_gid = (gid_t)-1;
	state->admin = policyd_admin_new(state);
	if (fd >= 0)
		return hk_ipc_server_listen_fd(state->admin, fd, error);
	if (path == NULL || *path == '\0')
		return TRUE;
	if (hk_ipc_server_listen_path(state->admin, path, 0660, state->admin_roles.admin_gid,
	                              error))
		return TRUE;
	g_prefix_error(error, "[%s] %s: ", POLICYD_SECTION, POLICYD_CONF_ADMIN_SOCKET);
	return FALSE;
}

/* ----- the daemon ----- */

static void
state_free(PolicydState *state)
{
	if (state == NULL)
		return;
	/* the cache answers the lookups still waiting, so whoever asked must still be there */
	g_clear_pointer(&state->policy, policyd_policy_free);
	g_clear_pointer(&state->cache, policyd_cache_free);
	g_clear_pointer(&state->admin, hk_ipc_server_free);
	g_clear_pointer(&state->auth, policyd_auth_free);
	g_clear_pointer(&state->certd, hk_ipc_async_free);
	g_clear_pointer(&state->settings, policyd_settings_unref);
	if (state->log_line != NULL)
		g_string_free(state->log_line, TRUE);
	g_free(state);
}

static gboolean
policyd_start(HkDaemon *daemon, GError **error)
{
	PolicydState *state = g_new0(PolicydState, 1);
	HkConfig *config = hk_daemon_get_config(daemon);

	state->daemon = daemon;
	state->config = config;
	state->log_line = g_string_sized_new(256);
	state->settings = policyd_settings_new(config, error);
	if (state->settings == NULL) {
		state_free(state);
		return FALSE;
	}
	state->certd = hk_ipc_async_new(
	        hk_config_get_string(config, POLICYD_SECTION, POLICYD_CONF_CERTD_SOCKET));
	state->cache = policyd_cache_new(state->certd, config);
	state->policy = policyd_policy_new(state, error);
	if (state->policy == NULL) {
		state_free(state);
		return FALSE;
	}
	policyd_policy_set_max_connections(
	        state->policy,
	        (guint)hk_config_get_int(config, POLICYD_SECTION, POLICYD_CONF_MAX_CONNECTIONS));
	if (!listen_policy(state, error) || !listen_auth(state, error) ||
	    !listen_admin(state, error)) {
		state_free(state);
		return FALSE;
	}
	hk_daemon_set_data(daemon, state);
	return TRUE;
}

static gboolean
restart_key_changed(HkConfig *old, HkConfig *config, const char *key)
{
	if (g_strcmp0(key, POLICYD_CONF_POLICY_LISTEN) == 0 ||
	    g_strcmp0(key, POLICYD_CONF_AUTH_LISTEN) == 0)
		return !g_strv_equal(
		        (const char *const *)hk_config_get_list(old, POLICYD_SECTION, key),
		        (const char *const *)hk_config_get_list(config, POLICYD_SECTION, key));
	if (g_strcmp0(key, POLICYD_CONF_SOCKET_MODE) == 0)
		return hk_config_get_mode(old, POLICYD_SECTION, key) !=
		       hk_config_get_mode(config, POLICYD_SECTION, key);
	return g_strcmp0(hk_config_get_string(old, POLICYD_SECTION, key),
	                 hk_config_get_string(config, POLICYD_SECTION, key)) != 0;
}

/* Templates, the TLS minimum, the judged state, TTLs, the cache size, the certd timeout,
 * the connection cap and the admin group follow a reload; sockets need a restart. */
static gboolean
policyd_reload(HkDaemon *daemon, HkConfig *config, GError **error)
{
	PolicydState *state = hk_daemon_get_data(daemon);
	static const char *const restart_keys[] = {
	        POLICYD_CONF_POLICY_LISTEN,
	        POLICYD_CONF_AUTH_LISTEN,
	        POLICYD_CONF_ADMIN_SOCKET,
	        POLICYD_CONF_SOCKET_MODE,
	        POLICYD_CONF_SOCKET_GROUP,
	        POLICYD_CONF_CERTD_SOCKET,
	        NULL,
	};
	PolicydSettings *settings = policyd_settings_new(config, error);

	if (settings == NULL)
		return FALSE;
	for (guint i = 0; restart_keys[i] != NULL; i++) {
		if (restart_key_changed(state->config, config, restart_keys[i]))
			g_message("[%s] %s changed; it takes effect at the next restart",
			          POLICYD_SECTION, restart_keys[i]);
	}
	/* checks in flight keep the settings they started with (they hold a reference) */
	g_clear_pointer(&state->settings, policyd_settings_unref);
	state->settings = settings;
	state->config = config;
	policyd_cache_configure(state->cache, config);
	policyd_policy_set_max_connections(
	        state->policy,
	        (guint)hk_config_get_int(config, POLICYD_SECTION, POLICYD_CONF_MAX_CONNECTIONS));
	state->admin_roles.admin_gid = admin_gid(config);
	if (state->auth != NULL)
		policyd_auth_reload(state->auth, config);
	return TRUE;
}

static void
policyd_stop(HkDaemon *daemon)
{
	state_free(hk_daemon_get_data(daemon));
}

const HkDaemonSpec policyd_daemon_spec = {
        .name = "hanko-policyd",
        .summary = "hanko's Postfix policy service (client certificates) and Dovecot-protocol "
                   "SMTP AUTH backend.",
        .sections = policyd_config_sections,
        .start = policyd_start,
        .reload = policyd_reload,
        .stop = policyd_stop,
};
