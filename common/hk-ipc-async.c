/*
 * hk-ipc-async: the asynchronous JSON-line client that daemons use to talk to certd
 * from their main loop: pipelined calls matched to replies by id, per-call timeouts,
 * events from watch streams, reconnection on the next call after a loss.
 *
 * Talks to: a hanko daemon's UNIX socket.
 * Must never: block the main loop, call a callback twice or not at all, or call one
 * from inside hk_ipc_async_call().
 */
#include "hk-ipc.h"
#include "hk-socket.h"

#include <errno.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct _HkIpcAsync {
	gint refs;
	gboolean freed;
	char *path;
	int fd; /* -1 while disconnected */
	guint in_source, out_source;
	HkLineReader in;
	GString *out;
	gsize out_sent;
	GHashTable *calls; /* id (gint64*) -> Call*: waiting for a reply */
	gint64 next_id;
	HkIpcEventFunc event_func;
	gpointer event_data;
};

typedef struct {
	HkIpcAsync *client; /* not a reference: calls never outlive the client's table */
	gint64 id;
	HkIpcReplyFunc func;
	gpointer data;
	guint timeout_source;
	guint idle_source;
	GError *error; /* set when failed before being sent */
} Call;

static void
call_free(Call *call)
{
	g_clear_handle_id(&call->timeout_source, g_source_remove);
	g_clear_handle_id(&call->idle_source, g_source_remove);
	g_clear_error(&call->error);
	g_free(call);
}

static void
call_complete(Call *call, json_object *result, const GError *error)
{
	call->func(result, error, call->data);
	call_free(call);
}

static HkIpcAsync *
client_ref(HkIpcAsync *client)
{
	client->refs++;
	return client;
}

static void
client_unref(HkIpcAsync *client)
{
	if (--client->refs > 0)
		return;
	g_hash_table_destroy(client->calls);
	hk_line_reader_clear(&client->in);
	g_string_free(client->out, TRUE);
	g_free(client->path);
	g_free(client);
}

/* Fails every waiting call; the table is emptied first so callbacks may make new calls. */
static void
fail_all(HkIpcAsync *client, HkIpcError code, const char *message)
{
	g_autoptr(GError) error = g_error_new_literal(HK_IPC_ERROR, code, message);
	GList *calls = g_hash_table_get_values(client->calls);

	g_hash_table_steal_all(client->calls);
	for (GList *l = calls; l != NULL; l = l->next)
		call_complete(l->data, NULL, error);
	g_list_free(calls);
}

static void
disconnect(HkIpcAsync *client)
{
	if (client->fd < 0)
		return;
	g_clear_handle_id(&client->in_source, g_source_remove);
	g_clear_handle_id(&client->out_source, g_source_remove);
	close(client->fd);
	client->fd = -1;
	hk_line_reader_clear(&client->in);
	hk_line_reader_init(&client->in, HK_IPC_MAX_LINE);
	g_string_truncate(client->out, 0);
	client->out_sent = 0;
}

static void
lose_connection(HkIpcAsync *client, const char *why)
{
	g_autofree char *message = g_strdup_printf("%s: %s", client->path, why);

	g_debug("%s", message);
	disconnect(client);
	fail_all(client, HK_IPC_ERROR_CLOSED, message);
}

static void
handle_reply(HkIpcAsync *client, json_object *msg)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) empty = NULL;
	json_object *id, *result;
	gint64 key;
	Call *call;

	hk_ipc_decode_reply(msg, &id, &result, &error);
	if (id == NULL || !json_object_is_type(id, json_type_int)) {
		/* a refusal before any request (too_many_connections) has no id */
		lose_connection(client, error ? error->message : "reply without an id");
		return;
	}
	key = json_object_get_int64(id);
	call = g_hash_table_lookup(client->calls, &key);
	if (call == NULL) {
		g_debug("%s: reply for request %" G_GINT64_FORMAT " that timed out", client->path,
		        key);
		return;
	}
	g_hash_table_steal(client->calls, &key);
	if (error == NULL && result == NULL)
		result = empty = json_object_new_object();
	call_complete(call, error ? NULL : result, error);
}

static void
handle_line(HkIpcAsync *client, const char *line, gsize len)
{
	g_autoptr(json_object) msg = hk_ipc_parse_line(line, len, NULL);
	const char *event;

	if (msg == NULL) {
		lose_connection(client, "server sent something that is not a JSON object");
		return;
	}
	event = hk_json_get_string(msg, "event");
	if (event != NULL) {
		if (client->event_func != NULL)
			client->event_func(event, hk_json_get_object(msg, "data"),
			                   client->event_data);
		return;
	}
	handle_reply(client, msg);
}

static void
process_lines(HkIpcAsync *client)
{
	const char *line;
	gsize len;

	while (!client->freed && client->fd >= 0) {
		HkLineStatus status = hk_line_reader_next(&client->in, &line, &len);

		if (status == HK_LINE_NEED_MORE)
			return;
		if (status == HK_LINE_TOO_LONG) {
			lose_connection(client, "reply line too long");
			return;
		}
		/* a callback may disconnect, which resets the reader: copy the line first */
		g_autofree char *copy = g_strndup(line, len);

		hk_line_reader_consume(&client->in);
		handle_line(client, copy, len);
	}
}

static gboolean
on_readable(gint fd, GIOCondition cond, gpointer data)
{
	HkIpcAsync *client = data;
	char buf[65536];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return G_SOURCE_CONTINUE;
	if (n <= 0) {
		client->in_source = 0;
		lose_connection(client,
		                n == 0 ? "connection closed by the server" : g_strerror(errno));
		return G_SOURCE_REMOVE;
	}
	client_ref(client);
	hk_line_reader_feed(&client->in, buf, (gsize)n);
	process_lines(client);
	client_unref(client);
	return G_SOURCE_CONTINUE;
}

static gboolean
on_writable(gint fd, GIOCondition cond, gpointer data)
{
	HkIpcAsync *client = data;

	if (!hk_send_pending(client->fd, client->out, &client->out_sent)) {
		client->out_source = 0;
		lose_connection(client, g_strerror(errno));
		return G_SOURCE_REMOVE;
	}
	if (client->out->len > 0)
		return G_SOURCE_CONTINUE;
	client->out_source = 0;
	return G_SOURCE_REMOVE;
}

static gboolean
ensure_connected(HkIpcAsync *client, GError **error)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (client->fd >= 0)
		return TRUE;
	g_strlcpy(sun.sun_path, client->path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	/* a UNIX connect completes at once or fails (EAGAIN: backlog full) */
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int saved = errno;

		if (fd >= 0)
			close(fd);
		g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_CONNECT, "cannot connect to %s: %s",
		            client->path, g_strerror(saved));
		return FALSE;
	}
	client->fd = fd;
	client->in_source = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, client);
	return TRUE;
}

HkIpcAsync *
hk_ipc_async_new(const char *path)
{
	HkIpcAsync *client = g_new0(HkIpcAsync, 1);

	client->refs = 1;
	client->path = g_strdup(path);
	client->fd = -1;
	client->next_id = 1;
	hk_line_reader_init(&client->in, HK_IPC_MAX_LINE);
	client->out = g_string_new(NULL);
	client->calls =
	        g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, (GDestroyNotify)call_free);
	return client;
}

void
hk_ipc_async_free(HkIpcAsync *client)
{
	if (client == NULL)
		return;
	client->freed = TRUE;
	disconnect(client);
	fail_all(client, HK_IPC_ERROR_CLOSED, "client closed");
	client_unref(client);
}

void
hk_ipc_async_set_event_func(HkIpcAsync *client, HkIpcEventFunc func, gpointer user_data)
{
	client->event_func = func;
	client->event_data = user_data;
}

gboolean
hk_ipc_async_is_connected(HkIpcAsync *client)
{
	return client->fd >= 0;
}

static gboolean
on_call_timeout(gpointer data)
{
	Call *call = data;
	HkIpcAsync *client = call->client;
	g_autoptr(GError) error = g_error_new(HK_IPC_ERROR, HK_IPC_ERROR_TIMEOUT,
	                                      "%s: no reply within the timeout", client->path);

	call->timeout_source = 0;
	g_hash_table_steal(client->calls, &call->id);
	call_complete(call, NULL, error);
	return G_SOURCE_REMOVE;
}

static gboolean
on_call_failed_early(gpointer data)
{
	Call *call = data;

	call->idle_source = 0;
	g_hash_table_steal(call->client->calls, &call->id);
	call_complete(call, NULL, call->error);
	return G_SOURCE_REMOVE;
}

static void
queue_request(HkIpcAsync *client, Call *call, const char *op, json_object *params)
{
	g_autoptr(json_object) req = json_object_new_object();
	g_autofree char *line = NULL;

	json_object_object_add(req, "id", json_object_new_int64(call->id));
	json_object_object_add(req, "op", json_object_new_string(op));
	if (params != NULL)
		json_object_object_add(req, "params", json_object_get(params));
	line = hk_json_to_string(req);
	g_string_append(client->out, line);
	g_string_append_c(client->out, '\n');
	explicit_bzero(line, strlen(line)); /* it may hold a password */
	if (client->out_source == 0)
		client->out_source = g_unix_fd_add(client->fd, G_IO_OUT, on_writable, client);
}

void
hk_ipc_async_call(HkIpcAsync *client, const char *op, json_object *params, guint timeout_ms,
                  HkIpcReplyFunc func, gpointer user_data)
{
	Call *call = g_new0(Call, 1);

	call->client = client;
	call->id = client->next_id++;
	call->func = func;
	call->data = user_data;
	g_hash_table_insert(client->calls, &call->id, call);
	if (!ensure_connected(client, &call->error)) {
		call->idle_source = g_idle_add(on_call_failed_early, call);
		return;
	}
	if (timeout_ms > 0)
		call->timeout_source = g_timeout_add(timeout_ms, on_call_timeout, call);
	queue_request(client, call, op, params);
}
