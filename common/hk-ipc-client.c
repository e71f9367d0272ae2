/*
 * hk-ipc-client: the synchronous JSON-line client, for hankoctl and tests.
 *
 * Talks to: a hanko daemon's UNIX socket.
 * Must never: wait for a reply longer than its timeout, or hand a caller a reply that
 * belongs to another request.
 */
#include "hk-ipc.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct _HkIpcClient {
	int fd;
	char *path;
	guint timeout_ms;
	gint64 next_id;
	HkLineReader in;
};

HkIpcClient *
hk_ipc_client_connect(const char *path, guint timeout_ms, GError **error)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	HkIpcClient *client;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_CONNECT, "socket path too long: %s",
		            path);
		return NULL;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int saved = errno;

		if (fd >= 0)
			close(fd);
		g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_CONNECT, "cannot connect to %s: %s",
		            path, g_strerror(saved));
		return NULL;
	}
	client = g_new0(HkIpcClient, 1);
	client->fd = fd;
	client->path = g_strdup(path);
	client->timeout_ms = timeout_ms;
	client->next_id = 1;
	hk_line_reader_init(&client->in, HK_IPC_MAX_LINE);
	return client;
}

void
hk_ipc_client_free(HkIpcClient *client)
{
	if (client == NULL)
		return;
	close(client->fd);
	hk_line_reader_clear(&client->in);
	g_free(client->path);
	g_free(client);
}

int
hk_ipc_client_get_fd(HkIpcClient *client)
{
	return client->fd;
}

/* Waits for fd to become ready; the timeout counts from deadline (monotonic us). */
static gboolean
wait_fd(HkIpcClient *client, short events, gint64 deadline, GError **error)
{
	for (;;) {
		struct pollfd pfd = {.fd = client->fd, .events = events};
		int timeout = -1, rc;

		if (deadline > 0)
			timeout = (int)MAX(0, (deadline - g_get_monotonic_time()) / 1000);
		rc = poll(&pfd, 1, timeout);
		if (rc > 0)
			return TRUE;
		if (rc == 0) {
			g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_TIMEOUT,
			            "%s: no reply within %u ms", client->path, client->timeout_ms);
			return FALSE;
		}
		if (errno != EINTR) {
			g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_CLOSED, "%s: poll: %s",
			            client->path, g_strerror(errno));
			return FALSE;
		}
	}
}

static gint64
deadline_from_now(HkIpcClient *client)
{
	return client->timeout_ms ? g_get_monotonic_time() + client->timeout_ms * (gint64)1000 : 0;
}

gboolean
hk_ipc_client_send_line(HkIpcClient *client, const char *line, gsize len, GError **error)
{
	gint64 deadline = deadline_from_now(client);
	gsize sent = 0;

	while (sent < len) {
		ssize_t n;

		if (!wait_fd(client, POLLOUT, deadline, error))
			return FALSE;
		n = send(client->fd, line + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n < 0) {
			g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_CLOSED, "%s: send: %s",
			            client->path, g_strerror(errno));
			return FALSE;
		}
		sent += (gsize)n;
	}
	return TRUE;
}

static gboolean
fill(HkIpcClient *client, gint64 deadline, GError **error)
{
	char buf[65536];
	ssize_t n;

	if (!wait_fd(client, POLLIN, deadline, error))
		return FALSE;
	n = recv(client->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return TRUE;
	if (n <= 0) {
		g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_CLOSED, "%s: connection closed%s%s",
		            client->path, n < 0 ? ": " : " by the server",
		            n < 0 ? g_strerror(errno) : "");
		return FALSE;
	}
	hk_line_reader_feed(&client->in, buf, (gsize)n);
	return TRUE;
}

char *
hk_ipc_client_read_line(HkIpcClient *client, GError **error)
{
	gint64 deadline = deadline_from_now(client);

	for (;;) {
		const char *line;
		gsize len;
		char *copy;

		switch (hk_line_reader_next(&client->in, &line, &len)) {
		case HK_LINE_READY:
			copy = g_strndup(line, len);
			hk_line_reader_consume(&client->in);
			return copy;
		case HK_LINE_TOO_LONG:
			g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_PROTOCOL,
			            "%s: reply longer than %d bytes", client->path,
			            HK_IPC_MAX_LINE);
			return NULL;
		case HK_LINE_NEED_MORE:
		default:
			if (!fill(client, deadline, error))
				return NULL;
		}
	}
}

static char *
request_line(gint64 id, const char *op, json_object *params)
{
	g_autoptr(json_object) req = json_object_new_object();

	json_object_object_add(req, "id", json_object_new_int64(id));
	json_object_object_add(req, "op", json_object_new_string(op));
	if (params != NULL)
		json_object_object_add(req, "params", json_object_get(params));
	return hk_json_to_string(req);
}

json_object *
hk_ipc_client_call(HkIpcClient *client, const char *op, json_object *params, GError **error)
{
	gint64 id = client->next_id++;
	g_autofree char *line = request_line(id, op, params);
	g_autofree char *framed = g_strconcat(line, "\n", NULL);

	if (!hk_ipc_client_send_line(client, framed, strlen(framed), error))
		return NULL;
	for (;;) {
		g_autofree char *text = hk_ipc_client_read_line(client, error);
		g_autoptr(json_object) msg = NULL;
		json_object *rid, *result;

		if (text == NULL)
			return NULL;
		msg = hk_ipc_parse_line(text, strlen(text), NULL);
		if (msg == NULL) {
			g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_PROTOCOL,
			            "%s: reply is not a JSON object", client->path);
			return NULL;
		}
		if (json_object_object_get_ex(msg, "event", NULL))
			continue; /* a watch stream's event: not our reply */
		if (!hk_ipc_decode_reply(msg, &rid, &result, error))
			return NULL;
		if (rid == NULL || !json_object_is_type(rid, json_type_int) ||
		    json_object_get_int64(rid) != id) {
			g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_PROTOCOL,
			            "%s: reply for another request", client->path);
			return NULL;
		}
		return result ? json_object_get(result) : json_object_new_object();
	}
}
