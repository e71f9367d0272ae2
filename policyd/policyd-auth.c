/*
 * policyd-auth: the server side of Dovecot's authentication protocol, as Postfix's
 * xsasl_dovecot_server.c and Exim's dovecot authenticator speak it.
 *
 *   S: VERSION 1 2, MECH PLAIN plaintext, MECH LOGIN plaintext, SPID, CUID, COOKIE, DONE
 *   C: VERSION 1 0, CPID pid                       (before or after ours, or not at all)
 *   C: AUTH id PLAIN service=smtp nologin lip=.. rip=.. secured resp=base64
 *   S: CONT id base64 | OK id user=name | FAIL id user=name reason=..
 *   C: CONT id base64 | CANCEL id
 *
 * Passwords go to hanko-certd's auth.verify. A failed login is answered only after a delay
 * that doubles per failure from the same remote address (Dovecot's auth penalty). When certd
 * cannot answer, the connection is closed without a reply: Postfix and Exim ignore the "temp"
 * flag of a FAIL (it would become 535, "wrong password"), but both turn a lost connection
 * into a temporary failure (454 4.7.0), which is what the user should see. The pure parts
 * (parameters, base64, PLAIN and LOGIN, penalty arithmetic) are in policyd-auth-proto.c.
 *
 * Talks to: auth clients on the listening sockets; certd through the caller's HkIpcAsync.
 * Must never: log a password or put one in an error, keep one after its request, tell a
 * client whether a user exists, block the main loop, or touch a connection that has gone.
 */
#include "policyd-auth.h"
#include "policyd-auth-private.h"
#include "policyd.h"
#include "policyd-listen.h"
#include "hk-certd-proto.h"
#include "hk-json.h"
#include "hk-ossl.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROTOCOL_MAJOR   1
#define PROTOCOL_MINOR   2
#define MAX_REQUESTS     32          /* in flight on one connection */
#define CONT_TIMEOUT_S   300         /* a request waiting for the client's CONT */
#define OUT_HIGH_WATER   (64 * 1024) /* stop reading while this much waits to go */
#define SWEEP_INTERVAL_S 60          /* forget old penalties this often */
#define FAIL_REASON      "Authentication failed"
#define PROMPT_USER      "Username:"
#define PROMPT_PASS      "Password:"

struct _PolicydAuth {
	HkConfig *config;
	HkIpcAsync *certd; /* borrowed */
	PolicydListeners listeners;
	GHashTable *conns; /* AuthConn* set */
	PolicydAuthPenalty *penalty;
	guint sweep_source;
	guint next_cuid;
	gboolean at_cap; /* max_connections reached and said so in the log */
};

typedef struct {
	gint refs;
	PolicydAuth *auth; /* NULL once closed */
	int fd;
	guint cuid;
	char *peer; /* for log lines */
	HkLineReader in;
	GString *out;
	gsize out_sent;
	guint in_source, out_source, close_source;
	GHashTable *requests; /* id -> AuthRequest* */
} AuthConn;

typedef enum {
	STEP_PLAIN,      /* waits for the PLAIN message in a CONT */
	STEP_LOGIN_USER, /* waits for the user name */
	STEP_LOGIN_PASS, /* waits for the password */
	STEP_VERIFY,     /* certd is checking */
	STEP_DELAY,      /* the FAIL waits out the failure delay */
} AuthStep;

typedef struct _AuthRequest AuthRequest;

typedef struct {
	const char *name;
	/* data: the initial response, NULL when the client sent none */
	void (*start)(AuthRequest *req, const guint8 *data, gsize len);
	void (*next)(AuthRequest *req, const guint8 *data, gsize len);
} AuthMech;

struct _AuthRequest {
	gint refs;
	AuthConn *conn;   /* NULL once the client has gone or cancelled it */
	HkConfig *config; /* the one in force when the request began */
	PolicydAuthParams params;
	const AuthMech *mech;
	AuthStep step;
	char *user; /* as the client gave it; NULL until known */
	char *fail_line;
	guint timer; /* CONT timeout or failure delay */
};

static void conn_close(AuthConn *conn);
static void conn_update_watches(AuthConn *conn);
static gboolean on_cont_timeout(gpointer data);

/* ----- requests ----- */

static AuthRequest *
request_ref(AuthRequest *req)
{
	req->refs++;
	return req;
}

static void
request_unref(AuthRequest *req)
{
	if (--req->refs > 0)
		return;
	policyd_auth_params_clear(&req->params);
	hk_config_unref(req->config);
	g_free(req->user);
	g_free(req->fail_line);
	g_free(req);
}

/* The destroy notify of conn->requests: the request leaves its connection. */
static void
request_detach(gpointer data)
{
	AuthRequest *req = data;

	g_clear_handle_id(&req->timer, g_source_remove);
	req->conn = NULL;
	request_unref(req);
}

static void
request_finish(AuthRequest *req)
{
	if (req->conn != NULL)
		g_hash_table_remove(req->conn->requests, GUINT_TO_POINTER(req->params.id));
}

static guint
request_cfg_ms(AuthRequest *req, const char *key)
{
	return (guint)hk_config_get_duration_ms(req->config, POLICYD_SECTION, key);
}

/* ----- output ----- */

static gboolean
on_close_later(gpointer data)
{
	AuthConn *conn = data;

	conn->close_source = 0;
	conn_close(conn);
	return G_SOURCE_REMOVE;
}

/* From places that a close must not pull the ground from under (timers, callbacks). */
static void
conn_close_later(AuthConn *conn)
{
	if (conn->close_source == 0 && conn->auth != NULL)
		conn->close_source = g_idle_add(on_close_later, conn);
}

static gboolean
conn_flush(AuthConn *conn)
{
	if (hk_send_pending(conn->fd, conn->out, &conn->out_sent))
		return TRUE;
	g_debug("auth client %s: send: %s", conn->peer, g_strerror(errno));
	return FALSE;
}

static void
conn_send(AuthConn *conn, const char *line)
{
	if (conn->auth == NULL)
		return;
	g_string_append(conn->out, line);
	g_string_append_c(conn->out, '\n');
	if (!conn_flush(conn)) {
		conn_close_later(conn);
		return;
	}
	conn_update_watches(conn);
}

static void
request_send_cont(AuthRequest *req, const char *challenge)
{
	g_autofree char *b64 = g_base64_encode((const guchar *)challenge, strlen(challenge));
	g_autofree char *line = g_strdup_printf("CONT\t%u\t%s", req->params.id, b64);

	conn_send(req->conn, line);
	req->timer = g_timeout_add_seconds(CONT_TIMEOUT_S, on_cont_timeout, req);
}

/* A FAIL that says nothing about the user: protocol trouble, not a wrong password. */
static void
request_fail_now(AuthRequest *req, const char *reason)
{
	g_autofree char *line = g_strdup_printf("FAIL\t%u\treason=%s", req->params.id, reason);

	conn_send(req->conn, line);
	request_finish(req);
}

/* ----- one log line per attempt ----- */

static void
request_log(AuthRequest *req, const char *result, const char *detail)
{
	g_autofree char *user = g_strescape(req->user ? req->user : "", NULL);

	g_message("auth %s user=\"%.80s\" rip=%s service=%s%s: %s%s%s%s", req->params.mech, user,
	          req->params.rip ? req->params.rip : "-", req->params.service,
	          req->params.secured ? " secured" : "", result, detail ? " (" : "",
	          detail ? detail : "", detail ? ")" : "");
}

static gboolean
on_cont_timeout(gpointer data)
{
	AuthRequest *req = data;

	req->timer = 0;
	request_log(req, "aborted", "no continuation from the client");
	request_finish(req);
	return G_SOURCE_REMOVE;
}

/* ----- verdicts ----- */

static gboolean
on_fail_delay(gpointer data)
{
	AuthRequest *req = data;

	req->timer = 0;
	conn_send(req->conn, req->fail_line);
	request_finish(req);
	return G_SOURCE_REMOVE;
}

/* A failed login, whatever the cause: the same reply, sent after the address's penalty. */
static void
request_fail_login(AuthRequest *req, const char *why)
{
	guint delay = policyd_auth_penalty_fail(
	        req->conn->auth->penalty, req->params.rip, g_get_monotonic_time(),
	        request_cfg_ms(req, POLICYD_CONF_AUTH_FAILURE_DELAY),
	        request_cfg_ms(req, POLICYD_CONF_AUTH_MAX_FAILURE_DELAY));
	gboolean echo_user = req->user && policyd_auth_user_is_valid(req->user, strlen(req->user));
	g_autofree char *detail = g_strdup_printf("%s; reply in %u ms", why ? why : "", delay);

	request_log(req, "failed", detail);
	req->fail_line = echo_user
	                         ? g_strdup_printf("FAIL\t%u\tuser=%s\treason=" FAIL_REASON,
	                                           req->params.id, req->user)
	                         : g_strdup_printf("FAIL\t%u\treason=" FAIL_REASON, req->params.id);
	req->step = STEP_DELAY;
	if (delay == 0) {
		on_fail_delay(req);
		return;
	}
	req->timer = g_timeout_add(delay, on_fail_delay, req);
}

static void
request_succeed(AuthRequest *req, const char *canonical)
{
	gboolean renamed = canonical != NULL && strcmp(canonical, req->user) != 0 &&
	                   policyd_auth_user_is_valid(canonical, strlen(canonical));
	const char *user = renamed ? canonical : req->user;
	g_autofree char *line = g_strdup_printf("OK\t%u\tuser=%s", req->params.id, user);
	g_autofree char *detail = renamed ? g_strdup_printf("as %s", user) : NULL;

	policyd_auth_penalty_reset(req->conn->auth->penalty, req->params.rip);
	request_log(req, "ok", detail);
	conn_send(req->conn, line);
	request_finish(req);
}

static void
request_verify_error(AuthRequest *req, const GError *error)
{
	/* certd judged the request itself (a name it will never accept): a failed login */
	if (g_error_matches(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT) ||
	    g_error_matches(error, HK_IPC_ERROR, HK_IPC_ERROR_NOT_FOUND)) {
		request_fail_login(req, error->message);
		return;
	}
	g_warning("auth: certd cannot check passwords: %s", error->message);
	request_log(req, "temporary failure",
	            "certd unavailable; connection closed so the client answers 454");
	conn_close(req->conn);
}

static void
on_verified(json_object *result, const GError *error, gpointer data)
{
	AuthRequest *req = data;

	if (req->conn == NULL)
		request_log(req, "aborted", "cancelled, or the client left before certd answered");
	else if (error != NULL)
		request_verify_error(req, error);
	else if (hk_json_get_bool(result, HK_CERTD_KEY_OK, FALSE))
		request_succeed(req, hk_json_get_string(result, HK_CERTD_KEY_USER));
	else
		request_fail_login(req, hk_json_get_string(result, HK_CERTD_KEY_REASON));
	request_unref(req);
}

/* Asks certd; the password's copy in the request object is cleansed once it is queued. */
static void
request_verify(AuthRequest *req, const char *password)
{
	g_autoptr(json_object) params = NULL;
	json_object *secret;

	if (!policyd_auth_user_is_valid(req->user, strlen(req->user))) {
		request_fail_login(req, "not a valid user name");
		return;
	}
	params = json_object_new_object();
	secret = json_object_new_string(password);
	json_object_object_add(params, HK_CERTD_KEY_USER, json_object_new_string(req->user));
	json_object_object_add(params, HK_CERTD_KEY_PASSWORD, secret);
	req->step = STEP_VERIFY;
	hk_ipc_async_call(req->conn->auth->certd, HK_CERTD_OP_AUTH_VERIFY, params,
	                  request_cfg_ms(req, POLICYD_CONF_CERTD_TIMEOUT), on_verified,
	                  request_ref(req));
	OPENSSL_cleanse((char *)json_object_get_string(secret),
	                (size_t)json_object_get_string_len(secret));
}

/* ----- mechanisms ----- */

static void
plain_message(AuthRequest *req, const guint8 *data, gsize len)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HkSecret) password = NULL;
	char *user = NULL;

	if (!policyd_auth_decode_plain(data, len, &user, &password, &error)) {
		request_fail_login(req, error->message);
		return;
	}
	g_free(req->user);
	req->user = user;
	request_verify(req, password);
}

static void
plain_start(AuthRequest *req, const guint8 *data, gsize len)
{
	if (data != NULL) {
		plain_message(req, data, len);
		return;
	}
	req->step = STEP_PLAIN; /* Dovecot asks for the message with an empty challenge */
	request_send_cont(req, "");
}

static void
login_user(AuthRequest *req, const guint8 *data, gsize len)
{
	g_autoptr(GError) error = NULL;
	char *user = policyd_auth_decode_login(data, len, POLICYD_AUTH_MAX_USER, &error);

	if (user == NULL) {
		request_fail_login(req, error->message);
		return;
	}
	g_free(req->user);
	req->user = user;
	req->step = STEP_LOGIN_PASS;
	request_send_cont(req, PROMPT_PASS);
}

static void
login_start(AuthRequest *req, const guint8 *data, gsize len)
{
	if (data != NULL) {
		login_user(req, data, len); /* AUTH LOGIN <user> (RFC 4954 initial response) */
		return;
	}
	req->step = STEP_LOGIN_USER;
	request_send_cont(req, PROMPT_USER);
}

static void
login_next(AuthRequest *req, const guint8 *data, gsize len)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HkSecret) password = NULL;

	if (req->step == STEP_LOGIN_USER) {
		login_user(req, data, len);
		return;
	}
	password = policyd_auth_decode_login(data, len, POLICYD_AUTH_MAX_PASSWORD, &error);
	if (password == NULL) {
		request_fail_login(req, error->message);
		return;
	}
	request_verify(req, password);
}

static const AuthMech auth_mechs[] = {
        {"PLAIN", plain_start, plain_message},
        {"LOGIN", login_start, login_next},
};

static const AuthMech *
mech_find(const char *name)
{
	for (guint i = 0; i < G_N_ELEMENTS(auth_mechs); i++) {
		if (g_ascii_strcasecmp(auth_mechs[i].name, name) == 0)
			return &auth_mechs[i];
	}
	return NULL;
}

static gboolean
mech_offered(HkConfig *config, const AuthMech *mech)
{
	const char *const *names =
	        hk_config_get_list(config, POLICYD_SECTION, POLICYD_CONF_AUTH_MECHANISMS);

	for (guint i = 0; names != NULL && names[i] != NULL; i++) {
		if (mech_find(names[i]) == mech)
			return TRUE;
	}
	return FALSE;
}

/* ----- requests begin ----- */

static void
request_refuse(AuthRequest *req, const char *why, const char *reason)
{
	request_log(req, "refused", why);
	request_fail_now(req, reason);
}

typedef void (*MechStep)(AuthRequest *req, const guint8 *data, gsize len);

/* Decodes a client response (which: "initial" or "continued") for the mechanism's step;
 * the decoded copy is cleansed once the step has it. */
static void
request_feed(AuthRequest *req, const char *text, MechStep step, const char *which)
{
	gsize len;
	guint8 *data = policyd_auth_base64_decode(text, &len, NULL);

	if (data == NULL) {
		g_autofree char *reason =
		        g_strdup_printf("Invalid base64 data in %s response", which);

		request_refuse(req, "invalid base64", reason);
		return;
	}
	step(req, data, len);
	policyd_auth_secret_free(data, len);
}

/* The request is in its connection's table; it ends there too. */
static void
request_begin(AuthRequest *req)
{
	req->mech = mech_find(req->params.mech);
	if (req->mech == NULL || !mech_offered(req->config, req->mech)) {
		request_refuse(req, "mechanism not offered",
		               "Unsupported authentication mechanism");
		return;
	}
	if (hk_config_get_bool(req->config, POLICYD_SECTION, POLICYD_CONF_AUTH_REQUIRE_SECURED) &&
	    !req->params.secured) {
		request_refuse(req, "TLS required", "TLS required");
		return;
	}
	if (!req->params.has_resp) {
		req->mech->start(req, NULL, 0);
		return;
	}
	request_feed(req, req->params.resp, req->mech->start, "initial");
	g_clear_pointer(&req->params.resp, hk_secret_free);
}

/* ----- commands ----- */

static gboolean
cmd_version(AuthConn *conn, char *args, GError **error)
{
	char *tab = strchr(args, '\t');
	guint major;

	if (tab != NULL)
		*tab = '\0';
	if (!policyd_auth_parse_uint(args, G_MAXUINT32, &major))
		return policyd_auth_protocol_error(error, "broken VERSION");
	if (major != PROTOCOL_MAJOR)
		return policyd_auth_protocol_error(error, "protocol version %u is not %d", major,
		                                   PROTOCOL_MAJOR);
	return TRUE;
}

static gboolean
cmd_cpid(AuthConn *conn, char *args, GError **error)
{
	guint pid;
	char *peer;

	if (!policyd_auth_parse_uint(args, G_MAXINT32, &pid))
		return policyd_auth_protocol_error(error, "broken CPID");
	peer = g_strdup_printf("%s cpid %u", conn->peer, pid);
	g_free(conn->peer);
	conn->peer = peer;
	return TRUE;
}

static gboolean
cmd_auth(AuthConn *conn, char *args, GError **error)
{
	AuthRequest *req = g_new0(AuthRequest, 1);
	gpointer key;

	req->refs = 1;
	req->config = hk_config_ref(conn->auth->config);
	if (!policyd_auth_params_parse(args, &req->params, error)) {
		request_unref(req);
		return FALSE;
	}
	key = GUINT_TO_POINTER(req->params.id);
	if (g_hash_table_contains(conn->requests, key) ||
	    g_hash_table_size(conn->requests) >= MAX_REQUESTS) {
		policyd_auth_protocol_error(
		        error, "AUTH %u: a duplicate id, or over %d requests in flight",
		        req->params.id, MAX_REQUESTS);
		request_unref(req);
		return FALSE;
	}
	req->conn = conn;
	g_hash_table_insert(conn->requests, key, req);
	request_ref(req);
	request_begin(req);
	request_unref(req);
	return TRUE;
}

static void
request_continue(AuthRequest *req, const char *text)
{
	g_clear_handle_id(&req->timer, g_source_remove);
	request_feed(req, text, req->mech->next, "continued");
}

static gboolean
cmd_cont(AuthConn *conn, char *args, GError **error)
{
	char *text = strchr(args, '\t');
	AuthRequest *req;
	guint id;

	if (text == NULL)
		return policyd_auth_protocol_error(error, "broken CONT");
	*text++ = '\0';
	if (!policyd_auth_parse_uint(args, G_MAXUINT32, &id))
		return policyd_auth_protocol_error(error, "broken CONT");
	req = g_hash_table_lookup(conn->requests, GUINT_TO_POINTER(id));
	if (req == NULL) {
		g_autofree char *line =
		        g_strdup_printf("FAIL\t%u\treason=Authentication request timed out", id);

		conn_send(conn, line);
		return TRUE;
	}
	if (req->step != STEP_PLAIN && req->step != STEP_LOGIN_USER && req->step != STEP_LOGIN_PASS)
		return policyd_auth_protocol_error(error,
		                                   "CONT for request %u, which waits for none", id);
	request_ref(req);
	request_continue(req, text);
	request_unref(req);
	return TRUE;
}

static gboolean
cmd_cancel(AuthConn *conn, char *args, GError **error)
{
	guint id;

	if (!policyd_auth_parse_uint(args, G_MAXUINT32, &id))
		return policyd_auth_protocol_error(error, "broken CANCEL");
	g_hash_table_remove(conn->requests, GUINT_TO_POINTER(id));
	return TRUE;
}

typedef gboolean (*CommandFunc)(AuthConn *conn, char *args, GError **error);

static const struct {
	const char *name;
	CommandFunc func;
} commands[] = {
        {"VERSION", cmd_version}, {"CPID", cmd_cpid},     {"AUTH", cmd_auth},
        {"CONT", cmd_cont},       {"CANCEL", cmd_cancel},
};

/* Unknown commands and broken ones close the connection, as Dovecot does. */
static void
conn_handle_line(AuthConn *conn, char *line)
{
	g_autoptr(GError) error = NULL;
	char *args = strchr(line, '\t');

	if (args != NULL)
		*args++ = '\0';
	else
		args = line + strlen(line);
	for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
		if (strcmp(commands[i].name, line) == 0) {
			if (commands[i].func(conn, args, &error))
				return;
			g_message("auth client %s: %s; closing", conn->peer, error->message);
			conn_close(conn);
			return;
		}
	}
	g_autofree char *shown = g_strescape(line, NULL);

	g_message("auth client %s: unknown command \"%.40s\"; closing", conn->peer, shown);
	conn_close(conn);
}

/* ----- connections ----- */

static AuthConn *
conn_ref(AuthConn *conn)
{
	conn->refs++;
	return conn;
}

static void
conn_unref(gpointer data)
{
	AuthConn *conn = data;

	if (--conn->refs > 0)
		return;
	g_hash_table_destroy(conn->requests);
	hk_line_reader_clear(&conn->in);
	g_string_free(conn->out, TRUE);
	g_free(conn->peer);
	g_free(conn);
}

static void
conn_close(AuthConn *conn)
{
	PolicydAuth *auth = conn->auth;

	if (auth == NULL)
		return;
	conn->auth = NULL;
	g_clear_handle_id(&conn->in_source, g_source_remove);
	g_clear_handle_id(&conn->out_source, g_source_remove);
	g_clear_handle_id(&conn->close_source, g_source_remove);
	close(conn->fd);
	conn->fd = -1;
	if (g_hash_table_size(conn->requests) > 0)
		g_debug("auth client %s: closed with %u requests in flight", conn->peer,
		        g_hash_table_size(conn->requests));
	g_hash_table_remove_all(conn->requests);
	g_hash_table_remove(auth->conns, conn); /* drops the table's reference */
}

/* Every line is copied out of the reader and both copies are cleansed: lines carry
 * passwords in base64. */
static void
conn_process_input(AuthConn *conn)
{
	const char *line;
	gsize len;

	while (conn->auth != NULL && conn->out->len < OUT_HIGH_WATER) {
		HkLineStatus status = hk_line_reader_next(&conn->in, &line, &len);
		char *copy;

		if (status == HK_LINE_NEED_MORE)
			return;
		if (status == HK_LINE_TOO_LONG) {
			g_message("auth client %s: line longer than %d bytes; closing", conn->peer,
			          POLICYD_AUTH_MAX_LINE);
			conn_close(conn);
			return;
		}
		copy = g_memdup2(line, len + 1);
		OPENSSL_cleanse((char *)line, len);
		hk_line_reader_consume(&conn->in);
		conn_handle_line(conn, copy);
		policyd_auth_secret_free((guint8 *)copy, len);
	}
}

static gboolean on_conn_readable(gint fd, GIOCondition cond, gpointer data);
static gboolean on_conn_writable(gint fd, GIOCondition cond, gpointer data);

static void
conn_update_watches(AuthConn *conn)
{
	gboolean want_in = conn->out->len < OUT_HIGH_WATER;
	gboolean want_out = conn->out->len > 0;

	if (conn->auth == NULL)
		return;
	if (want_in && conn->in_source == 0)
		conn->in_source = hk_fd_watch(conn->fd, G_IO_IN, on_conn_readable, conn);
	else if (!want_in)
		g_clear_handle_id(&conn->in_source, g_source_remove);
	if (want_out && conn->out_source == 0)
		conn->out_source = hk_fd_watch(conn->fd, G_IO_OUT, on_conn_writable, conn);
	else if (!want_out)
		g_clear_handle_id(&conn->out_source, g_source_remove);
}

static gboolean
on_conn_writable(gint fd, GIOCondition cond, gpointer data)
{
	AuthConn *conn = data;

	conn_ref(conn);
	if (!conn_flush(conn))
		conn_close(conn);
	else {
		conn_process_input(conn); /* lines held back while the output was full */
		conn_update_watches(conn);
	}
	conn_unref(conn);
	return G_SOURCE_CONTINUE; /* or removed already: then this is ignored */
}

static gboolean
on_conn_readable(gint fd, GIOCondition cond, gpointer data)
{
	AuthConn *conn = data;
	char buf[4096];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return G_SOURCE_CONTINUE;
	conn_ref(conn);
	if (n <= 0) {
		g_debug("auth client %s: %s", conn->peer, n == 0 ? "closed" : g_strerror(errno));
		conn_close(conn);
	} else {
		hk_line_reader_feed(&conn->in, buf, (gsize)n);
		OPENSSL_cleanse(buf, (gsize)n);
		conn_process_input(conn);
		conn_update_watches(conn);
	}
	conn_unref(conn);
	return G_SOURCE_CONTINUE;
}

static void
conn_send_handshake(AuthConn *conn)
{
	g_autoptr(GString) hs = g_string_new(NULL);
	const char *const *names = hk_config_get_list(conn->auth->config, POLICYD_SECTION,
	                                              POLICYD_CONF_AUTH_MECHANISMS);
	guint8 cookie[16];

	if (RAND_bytes(cookie, sizeof(cookie)) != 1)
		for (guint i = 0; i < sizeof(cookie); i++)
			cookie[i] = (guint8)g_random_int();
	g_string_append_printf(hs, "VERSION\t%d\t%d\n", PROTOCOL_MAJOR, PROTOCOL_MINOR);
	for (guint i = 0; names != NULL && names[i] != NULL; i++) {
		const AuthMech *mech = mech_find(names[i]);

		if (mech != NULL)
			g_string_append_printf(hs, "MECH\t%s\tplaintext\n", mech->name);
	}
	g_string_append_printf(hs, "SPID\t%d\nCUID\t%u\nCOOKIE\t", (int)getpid(), conn->cuid);
	for (guint i = 0; i < sizeof(cookie); i++)
		g_string_append_printf(hs, "%02x", cookie[i]);
	g_string_append(hs, "\nDONE");
	conn_send(conn, hs->str);
}

static char *
describe_peer(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[NI_MAXHOST], port[NI_MAXSERV];
	struct ucred cred;
	socklen_t clen = sizeof(cred);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return g_strdup("(unknown)");
	if (ss.ss_family == AF_UNIX) {
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0)
			return g_strdup("(unix)");
		return g_strdup_printf("pid %d uid %u", (int)cred.pid, (guint)cred.uid);
	}
	if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host), port, sizeof(port),
	                NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return g_strdup("(inet)");
	return g_strdup_printf("[%s]:%s", host, port);
}

static void
conn_new(PolicydAuth *auth, int fd)
{
	AuthConn *conn = g_new0(AuthConn, 1);

	conn->refs = 1; /* auth->conns */
	conn->auth = auth;
	conn->fd = fd;
	conn->cuid = ++auth->next_cuid;
	conn->peer = describe_peer(fd);
	hk_line_reader_init(&conn->in, POLICYD_AUTH_MAX_LINE);
	conn->out = g_string_new(NULL);
	conn->requests = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, request_detach);
	g_hash_table_add(auth->conns, conn);
	g_debug("auth client %s: connected (cuid %u)", conn->peer, conn->cuid);
	conn_send_handshake(conn);
	conn_update_watches(conn);
}

/* ----- listeners ----- */

static void
listener_accept_one(int fd, gpointer data)
{
	PolicydAuth *auth = data;
	guint max = (guint)hk_config_get_int(auth->config, POLICYD_SECTION,
	                                     POLICYD_CONF_MAX_CONNECTIONS);

	if (g_hash_table_size(auth->conns) >= max) {
		if (!auth->at_cap)
			g_warning("auth: %u connections open (max_connections); refusing more",
			          max);
		auth->at_cap = TRUE;
		close(fd);
		return;
	}
	auth->at_cap = FALSE;
	conn_new(auth, fd);
}

/* ----- the object ----- */

static gboolean
on_sweep(gpointer data)
{
	PolicydAuth *auth = data;

	policyd_auth_penalty_expire(auth->penalty, g_get_monotonic_time());
	return G_SOURCE_CONTINUE;
}

static void
check_mechanisms(HkConfig *config)
{
	const char *const *names =
	        hk_config_get_list(config, POLICYD_SECTION, POLICYD_CONF_AUTH_MECHANISMS);

	for (guint i = 0; names != NULL && names[i] != NULL; i++) {
		if (mech_find(names[i]) == NULL)
			g_warning("auth: %s: mechanism %s is not supported (PLAIN and LOGIN are)",
			          POLICYD_CONF_AUTH_MECHANISMS, names[i]);
	}
}

PolicydAuth *
policyd_auth_new(HkConfig *config, HkIpcAsync *certd)
{
	PolicydAuth *auth = g_new0(PolicydAuth, 1);

	auth->config = hk_config_ref(config);
	auth->certd = certd;
	policyd_listeners_init(&auth->listeners, "auth", 0, listener_accept_one, auth);
	auth->conns = g_hash_table_new_full(g_direct_hash, g_direct_equal, conn_unref, NULL);
	auth->penalty = policyd_auth_penalty_new();
	auth->sweep_source = g_timeout_add_seconds(SWEEP_INTERVAL_S, on_sweep, auth);
	check_mechanisms(config);
	return auth;
}

gboolean
policyd_auth_listen(PolicydAuth *auth, const char *spec, guint mode, gid_t group, GError **error)
{
	return policyd_listeners_add(&auth->listeners, spec, mode, group, error);
}

gboolean
policyd_auth_listen_fd(PolicydAuth *auth, int fd, GError **error)
{
	return policyd_listeners_add_fd(&auth->listeners, fd, error);
}

void
policyd_auth_reload(PolicydAuth *auth, HkConfig *config)
{
	check_mechanisms(config);
	hk_config_unref(auth->config);
	auth->config = hk_config_ref(config);
}

guint
policyd_auth_get_n_connections(PolicydAuth *auth)
{
	return g_hash_table_size(auth->conns);
}

void
policyd_auth_free(PolicydAuth *auth)
{
	GList *conns;

	if (auth == NULL)
		return;
	policyd_listeners_clear(&auth->listeners);
	conns = g_hash_table_get_keys(auth->conns);
	for (GList *l = conns; l != NULL; l = l->next)
		conn_close(l->data);
	g_list_free(conns);
	g_hash_table_destroy(auth->conns);
	g_clear_handle_id(&auth->sweep_source, g_source_remove);
	policyd_auth_penalty_free(auth->penalty);
	hk_config_unref(auth->config);
	g_free(auth);
}
