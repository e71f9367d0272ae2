/*
 * hk-ipc-server: serves the JSON-line protocol on UNIX stream sockets from the GLib
 * main loop.
 *
 * Talks to: hanko's daemons and hankoctl, through sockets it creates or systemd passed.
 * Must never: block the main loop on a peer, let one connection starve the others,
 * reorder replies on a connection, or run a handler for a peer whose roles do not allow it.
 */
#include "hk-ipc.h"
#include "hk-log.h"
#include "hk-socket.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK        65536
#define READS_PER_WAKEUP  4          /* then let other connections have a turn */
#define OUT_HIGH_WATER    (4u << 20) /* stop reading while this much waits to be sent */
#define DEFAULT_IN_FLIGHT 64

struct _HkIpcServer {
	const HkIpcOp *ops;
	GHashTable *op_index; /* name -> const HkIpcOp* */
	gpointer user_data;
	HkIpcServerOptions options;
	GPtrArray *listeners; /* HkListener* */
	GHashTable *conns;    /* HkIpcConn* set */
	GHashTable *per_uid;  /* uid -> number of connections */
};

typedef struct {
	gint refs;
	HkIpcServer *server; /* NULL once closed */
	int fd;
	HkIpcPeer peer;
	guint roles;
	HkLineReader in;
	GString *out;
	gsize out_sent;
	GQueue pending; /* HkIpcRequest*, in arrival order */
	guint in_source;
	guint out_source;
	gboolean processing; /* inside process_input(): do not re-enter */
	gboolean closing;    /* close once everything queued is sent */
	gboolean subscribed;
} HkIpcConn;

struct _HkIpcRequest {
	HkIpcConn *conn;  /* holds a reference */
	json_object *msg; /* the parsed request; params live inside it */
	json_object *id;
	const HkIpcOp *op;
	char *reply;            /* the reply line, once returned */
	HkIpcFinishFunc finish; /* set for audited ops */
	gpointer finish_data;
};

static void conn_close(HkIpcConn *conn);
static void conn_process_input(HkIpcConn *conn);
static void conn_update_watches(HkIpcConn *conn);

/* ----- connections ----- */

static HkIpcConn *
conn_ref(HkIpcConn *conn)
{
	conn->refs++;
	return conn;
}

static void
conn_unref(HkIpcConn *conn)
{
	if (--conn->refs > 0)
		return;
	hk_line_reader_clear(&conn->in);
	g_string_free(conn->out, TRUE);
	g_free(conn);
}

static void
request_free(HkIpcRequest *req)
{
	json_object_put(req->msg);
	g_free(req->reply);
	conn_unref(req->conn);
	g_free(req);
}

static char *
reply_line(json_object *id, json_object *result, const char *code, const char *message)
{
	g_autoptr(json_object) reply = json_object_new_object();

	json_object_object_add(reply, "id", json_object_get(id));
	json_object_object_add(reply, "ok", json_object_new_boolean(code == NULL));
	if (code == NULL) {
		json_object_object_add(reply, "result",
		                       result ? json_object_get(result) : json_object_new_object());
	} else {
		json_object *err = json_object_new_object();

		json_object_object_add(err, "code", json_object_new_string(code));
		json_object_object_add(err, "message", json_object_new_string(message));
		json_object_object_add(reply, "error", err);
	}
	return hk_json_to_string(reply);
}

static gboolean
conn_write(HkIpcConn *conn)
{
	if (hk_send_pending(conn->fd, conn->out, &conn->out_sent))
		return TRUE;
	g_debug("pid %d: send: %s", (int)conn->peer.pid, g_strerror(errno));
	return FALSE;
}

/* Moves the replies at the head of the queue to the output, in order, and sends. */
static void
conn_flush(HkIpcConn *conn)
{
	HkIpcRequest *head;

	while ((head = g_queue_peek_head(&conn->pending)) != NULL && head->reply != NULL) {
		g_queue_pop_head(&conn->pending);
		g_string_append(conn->out, head->reply);
		g_string_append_c(conn->out, '\n');
		request_free(head);
	}
	if (!conn_write(conn)) {
		conn_close(conn);
		return;
	}
	if (conn->closing && g_queue_is_empty(&conn->pending) && conn->out->len == 0) {
		conn_close(conn);
		return;
	}
	if (!conn->processing)
		conn_process_input(conn);
	if (conn->server != NULL)
		conn_update_watches(conn);
}

static gboolean
on_conn_writable(gint fd, GIOCondition cond, gpointer data)
{
	HkIpcConn *conn = data;

	conn_ref(conn);
	conn_flush(conn);
	conn_unref(conn);
	return G_SOURCE_CONTINUE;
}

static gboolean on_conn_readable(gint fd, GIOCondition cond, gpointer data);

static gboolean
conn_wants_input(HkIpcConn *conn)
{
	guint limit = conn->server->options.max_in_flight;

	return !conn->closing && g_queue_get_length(&conn->pending) < limit &&
	       conn->out->len < OUT_HIGH_WATER;
}

static void
conn_update_watches(HkIpcConn *conn)
{
	gboolean want_in = conn_wants_input(conn);
	gboolean want_out = conn->out->len > conn->out_sent;

	if (want_in && conn->in_source == 0)
		conn->in_source = hk_fd_watch(conn->fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
		                              on_conn_readable, conn);
	else if (!want_in && conn->in_source != 0)
		g_clear_handle_id(&conn->in_source, g_source_remove);
	if (want_out && conn->out_source == 0)
		conn->out_source = hk_fd_watch(conn->fd, G_IO_OUT, on_conn_writable, conn);
	else if (!want_out && conn->out_source != 0)
		g_clear_handle_id(&conn->out_source, g_source_remove);
}

static void
conn_close(HkIpcConn *conn)
{
	HkIpcServer *server = conn->server;
	HkIpcRequest *req;
	guint count;

	if (server == NULL)
		return;
	g_debug("pid %d uid %u: connection closed", (int)conn->peer.pid, (guint)conn->peer.uid);
	g_clear_handle_id(&conn->in_source, g_source_remove);
	g_clear_handle_id(&conn->out_source, g_source_remove);
	close(conn->fd);
	conn->fd = -1;
	conn->server = NULL;
	/* requests whose handlers are still working stay alive until they return;
	 * they see a closed connection and drop their reply */
	while ((req = g_queue_pop_head(&conn->pending)) != NULL) {
		if (req->reply != NULL)
			request_free(req);
	}
	count = GPOINTER_TO_UINT(
	        g_hash_table_lookup(server->per_uid, GUINT_TO_POINTER(conn->peer.uid)));
	if (count <= 1)
		g_hash_table_remove(server->per_uid, GUINT_TO_POINTER(conn->peer.uid));
	else
		g_hash_table_insert(server->per_uid, GUINT_TO_POINTER(conn->peer.uid),
		                    GUINT_TO_POINTER(count - 1));
	g_hash_table_remove(server->conns, conn); /* drops the table's reference */
}

/* ----- requests ----- */

static HkIpcRequest *
request_new(HkIpcConn *conn, json_object *msg, json_object *id)
{
	HkIpcRequest *req = g_new0(HkIpcRequest, 1);

	req->conn = conn_ref(conn);
	req->msg = msg;
	req->id = id;
	g_queue_push_tail(&conn->pending, req);
	return req;
}

static void
request_finish(HkIpcRequest *req, char *reply)
{
	HkIpcConn *conn = req->conn;

	g_return_if_fail(req->reply == NULL);
	req->reply = reply;
	if (conn->server == NULL) {
		request_free(req); /* the client left; nobody to answer */
		return;
	}
	conn_ref(conn);
	conn_flush(conn);
	conn_unref(conn);
}

/* An error for a line that never became a request (bad JSON, bad envelope...). */
static void
queue_error(HkIpcConn *conn, json_object *msg, json_object *id, const GError *error)
{
	HkIpcRequest *req = request_new(conn, msg, id);

	request_finish(req, reply_line(id, NULL, hk_ipc_error_code_to_string(error->code),
	                               error->message));
}

static const char *
role_names(guint roles)
{
	if (roles & HK_IPC_ROLE_ADMIN)
		return "admin";
	if (roles & HK_IPC_ROLE_SERVICE)
		return "service";
	return "public";
}

static void
dispatch(HkIpcConn *conn, json_object *msg, const HkIpcRequestFields *fields)
{
	HkIpcServer *server = conn->server;
	const HkIpcOp *op = g_hash_table_lookup(server->op_index, fields->op);
	g_autoptr(GError) error = NULL;
	HkIpcRequest *req;

	if (op == NULL) {
		g_set_error(&error, HK_IPC_ERROR, HK_IPC_ERROR_UNKNOWN_OP, "unknown op \"%s\"",
		            fields->op);
	} else if ((op->roles & conn->roles) == 0) {
		g_set_error(&error, HK_IPC_ERROR, HK_IPC_ERROR_PERMISSION_DENIED,
		            "%s: not permitted for uid %u (role %s)", op->name,
		            (guint)conn->peer.uid, role_names(op->roles));
		g_message("denied %s to pid %d uid %u", op->name, (int)conn->peer.pid,
		          (guint)conn->peer.uid);
	} else {
		hk_ipc_check_params(op, fields->params, &error);
	}
	if (error != NULL) {
		queue_error(conn, msg, fields->id, error);
		return;
	}
	if (hk_log_get_debug()) {
		g_autofree char *shown =
		        fields->params ? hk_log_redact_json(fields->params) : g_strdup("{}");
		g_debug("pid %d uid %u: %s %s", (int)conn->peer.pid, (guint)conn->peer.uid,
		        op->name, shown);
	}
	req = request_new(conn, msg, fields->id);
	req->op = op;
	if (op->flags & HK_IPC_OP_AUDIT) {
		req->finish = server->options.finish_func;
		req->finish_data = server->options.finish_data;
	}
	if (fields->params == NULL)
		json_object_object_add(msg, "params", json_object_new_object());
	op->handler(req, json_object_object_get(msg, "params"), server->user_data);
}

static void
conn_handle_line(HkIpcConn *conn, const char *line, gsize len)
{
	g_autoptr(GError) error = NULL;
	HkIpcRequestFields fields;
	json_object *msg;

	msg = hk_ipc_parse_line(line, len, &error);
	if (msg == NULL) {
		queue_error(conn, NULL, NULL, error);
		return;
	}
	if (!hk_ipc_decode_request(msg, &fields, &error)) {
		queue_error(conn, msg, fields.id, error);
		return;
	}
	dispatch(conn, msg, &fields);
}

static void
conn_line_too_long(HkIpcConn *conn)
{
	g_autoptr(GError) error =
	        g_error_new(HK_IPC_ERROR, HK_IPC_ERROR_LINE_TOO_LONG,
	                    "request line longer than %zu bytes", conn->in.max_line);

	g_message("pid %d uid %u: request line over %zu bytes, closing", (int)conn->peer.pid,
	          (guint)conn->peer.uid, conn->in.max_line);
	conn->closing = TRUE;
	queue_error(conn, NULL, NULL, error);
}

static void
conn_process_input(HkIpcConn *conn)
{
	const char *line;
	gsize len;

	conn->processing = TRUE;
	while (conn->server != NULL && conn_wants_input(conn)) {
		HkLineStatus status = hk_line_reader_next(&conn->in, &line, &len);

		if (status == HK_LINE_NEED_MORE)
			break;
		if (status == HK_LINE_TOO_LONG) {
			conn_line_too_long(conn);
			break;
		}
		conn_handle_line(conn, line, len);
		hk_line_reader_consume(&conn->in);
	}
	conn->processing = FALSE;
}

static gboolean
conn_read(HkIpcConn *conn)
{
	char buf[READ_CHUNK];

	for (int i = 0; i < READS_PER_WAKEUP; i++) {
		ssize_t n = recv(conn->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return TRUE;
		if (n <= 0)
			return FALSE; /* EOF or reset: the client is gone */
		hk_line_reader_feed(&conn->in, buf, (gsize)n);
		if ((gsize)n < sizeof(buf))
			return TRUE;
	}
	return TRUE;
}

static gboolean
on_conn_readable(gint fd, GIOCondition cond, gpointer data)
{
	HkIpcConn *conn = data;

	conn_ref(conn);
	if (!conn_read(conn)) {
		conn->in_source = 0; /* returning REMOVE below drops it */
		conn_close(conn);
		conn_unref(conn);
		return G_SOURCE_REMOVE;
	}
	conn_process_input(conn);
	if (conn->server != NULL)
		conn_flush(conn);
	conn_unref(conn);
	return G_SOURCE_CONTINUE;
}

/* ----- accepting ----- */

static void
refuse(int fd, const char *code, const char *message)
{
	g_autofree char *line = reply_line(NULL, NULL, code, message);
	g_autofree char *text = g_strconcat(line, "\n", NULL);

	/* best effort: a fresh socket has room for one short line */
	if (send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		g_debug("refuse: %s", g_strerror(errno));
	close(fd);
}

static gboolean
read_peer(int fd, HkIpcPeer *peer)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
		g_warning("SO_PEERCRED: %s", g_strerror(errno));
		return FALSE;
	}
	peer->pid = cred.pid;
	peer->uid = cred.uid;
	peer->gid = cred.gid;
	return TRUE;
}

static void
server_add_conn(HkIpcServer *server, int fd, const HkIpcPeer *peer)
{
	HkIpcConn *conn = g_new0(HkIpcConn, 1);
	guint count =
	        GPOINTER_TO_UINT(g_hash_table_lookup(server->per_uid, GUINT_TO_POINTER(peer->uid)));

	conn->refs = 1; /* the server's conns table */
	conn->server = server;
	conn->fd = fd;
	conn->peer = *peer;
	conn->roles = server->options.role_func
	                      ? server->options.role_func(peer, server->options.role_data)
	                      : HK_IPC_ROLE_PUBLIC;
	hk_line_reader_init(&conn->in, HK_IPC_MAX_LINE);
	conn->out = g_string_new(NULL);
	g_queue_init(&conn->pending);
	g_hash_table_add(server->conns, conn);
	g_hash_table_insert(server->per_uid, GUINT_TO_POINTER(peer->uid),
	                    GUINT_TO_POINTER(count + 1));
	g_debug("pid %d uid %u: connected (%s)", (int)peer->pid, (guint)peer->uid,
	        role_names(conn->roles));
	conn_update_watches(conn);
}

static void
server_accept_one(int fd, gpointer data)
{
	HkIpcServer *server = data;
	HkIpcPeer peer;
	guint count, cap = server->options.max_connections_per_uid;

	if (!read_peer(fd, &peer)) {
		close(fd);
		return;
	}
	count = GPOINTER_TO_UINT(g_hash_table_lookup(server->per_uid, GUINT_TO_POINTER(peer.uid)));
	if (cap > 0 && count >= cap) {
		g_autofree char *msg = g_strdup_printf("uid %u already has %u connections",
		                                       (guint)peer.uid, count);

		g_message("refusing pid %d: %s", (int)peer.pid, msg);
		refuse(fd, HK_IPC_ERR_TOO_MANY_CONNECTIONS, msg);
		return;
	}
	server_add_conn(server, fd, &peer);
}

/* ----- server ----- */

HkIpcServer *
hk_ipc_server_new(const HkIpcOp *ops, gpointer user_data, const HkIpcServerOptions *options)
{
	HkIpcServer *server = g_new0(HkIpcServer, 1);

	server->ops = ops;
	server->user_data = user_data;
	if (options != NULL)
		server->options = *options;
	if (server->options.max_in_flight == 0)
		server->options.max_in_flight = DEFAULT_IN_FLIGHT;
	server->op_index = g_hash_table_new(g_str_hash, g_str_equal);
	hk_ipc_server_add_ops(server, ops);
	server->listeners = g_ptr_array_new_with_free_func((GDestroyNotify)hk_listener_free);
	server->conns = g_hash_table_new_full(NULL, NULL, (GDestroyNotify)conn_unref, NULL);
	server->per_uid = g_hash_table_new(NULL, NULL);
	return server;
}

void
hk_ipc_server_free(HkIpcServer *server)
{
	GList *conns;

	if (server == NULL)
		return;
	g_ptr_array_free(server->listeners, TRUE); /* hk_listener_free() each */
	/* conn_close() takes each connection out of the table, so not under an iterator */
	conns = g_hash_table_get_keys(server->conns);
	for (GList *l = conns; l != NULL; l = l->next) {
		HkIpcConn *conn = conn_ref(l->data);

		conn_close(conn);
		conn_unref(conn);
	}
	g_list_free(conns);
	g_hash_table_destroy(server->conns);
	g_hash_table_destroy(server->per_uid);
	g_hash_table_destroy(server->op_index);
	g_free(server);
}

void
hk_ipc_server_add_ops(HkIpcServer *server, const HkIpcOp *ops)
{
	for (const HkIpcOp *op = ops; op != NULL && op->name != NULL; op++) {
		if (!g_hash_table_insert(server->op_index, (gpointer)op->name, (gpointer)op))
			g_critical("op %s is defined twice", op->name);
	}
}

static gboolean
add_listener(HkIpcServer *server, int fd, const char *path)
{
	g_ptr_array_add(server->listeners,
	                hk_listener_new(fd, path, NULL, 0, server_accept_one, server));
	return TRUE;
}

gboolean
hk_ipc_server_listen_path(HkIpcServer *server, const char *path, guint mode, gid_t group,
                          GError **error)
{
	int fd = hk_unix_listen(path, mode, group, error);

	if (fd < 0)
		return FALSE;
	g_info("listening on %s (mode %04o)", path, mode);
	return add_listener(server, fd, path);
}

gboolean
hk_ipc_server_listen_fd(HkIpcServer *server, int fd, GError **error)
{
	int type = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "fd %d is not a stream socket", fd);
		return FALSE;
	}
	if (!g_unix_set_fd_nonblocking(fd, TRUE, error))
		return FALSE;
	g_info("listening on socket fd %d from systemd", fd);
	return add_listener(server, fd, NULL);
}

guint
hk_ipc_server_get_n_connections(HkIpcServer *server)
{
	return g_hash_table_size(server->conns);
}

void
hk_ipc_server_emit(HkIpcServer *server, const char *event, json_object *data)
{
	g_autoptr(json_object) msg = json_object_new_object();
	g_autofree char *line = NULL;
	GHashTableIter iter;
	gpointer key;

	json_object_object_add(msg, "event", json_object_new_string(event));
	json_object_object_add(msg, "data",
	                       data ? json_object_get(data) : json_object_new_object());
	line = hk_json_to_string(msg);
	g_hash_table_iter_init(&iter, server->conns);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		HkIpcConn *conn = key;

		if (!conn->subscribed || conn->closing)
			continue;
		g_string_append(conn->out, line);
		g_string_append_c(conn->out, '\n');
		conn_update_watches(conn); /* sent when writable; never from under the iterator */
	}
}

/* ----- request API ----- */

const char *
hk_ipc_request_get_op(HkIpcRequest *request)
{
	return request->op ? request->op->name : NULL;
}

const HkIpcPeer *
hk_ipc_request_get_peer(HkIpcRequest *request)
{
	return &request->conn->peer;
}

guint
hk_ipc_request_get_roles(HkIpcRequest *request)
{
	return request->conn->roles;
}

gboolean
hk_ipc_request_is_connected(HkIpcRequest *request)
{
	return request->conn->server != NULL;
}

void
hk_ipc_request_subscribe(HkIpcRequest *request)
{
	request->conn->subscribed = TRUE;
}

/* Tells the server's finish_func how an audited op ended, whether or not its client
 * is still there to read the reply: the op happened either way. */
static void
request_audit(HkIpcRequest *request, const char *code, const char *message)
{
	if (request->finish == NULL)
		return;
	request->finish(request, json_object_object_get(request->msg, "params"), code, message,
	                request->finish_data);
}

void
hk_ipc_request_return(HkIpcRequest *request, json_object *result)
{
	request_audit(request, NULL, NULL);
	request_finish(request, reply_line(request->id, result, NULL, NULL));
	json_object_put(result);
}

void
hk_ipc_request_return_error(HkIpcRequest *request, const char *code, const char *format, ...)
{
	g_autofree char *message = NULL;
	va_list args;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	request_audit(request, code, message);
	request_finish(request, reply_line(request->id, NULL, code, message));
}

void
hk_ipc_request_return_gerror(HkIpcRequest *request, const GError *error)
{
	const char *code = HK_IPC_ERR_INTERNAL;

	if (error->domain == HK_IPC_ERROR)
		code = hk_ipc_error_code_to_string(error->code);
	hk_ipc_request_return_error(request, code, "%s", error->message);
}
