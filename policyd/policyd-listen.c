/*
 * policyd-listen: creates the policy and auth listeners' sockets and watches them.
 *
 * Talks to: the kernel (socket, bind, listen), the file system for UNIX sockets; hands
 * accepted connections to the service that owns the listener.
 * Must never: leave a socket wider than its mode for an instant, or remove a socket
 * another process is serving.
 */
#include "policyd-listen.h"
#include "hk-socket.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int
listen_unix(const char *path, guint mode, gid_t group, GError **error)
{
	struct sockaddr_un sun;

	if (*path != '/' || strlen(path) >= sizeof(sun.sun_path)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "unix:%s: not an absolute path of at most %zu bytes", path,
		            sizeof(sun.sun_path) - 1);
		return -1;
	}
	return hk_unix_listen(path, mode, group, error);
}

/* "HOST:PORT" or "[V6]:PORT" */
static gboolean
split_host_port(const char *text, char **host, char **port, GError **error)
{
	const char *colon = strrchr(text, ':');

	if (colon == NULL || colon == text || colon[1] == '\0') {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "inet:%s: expected HOST:PORT", text);
		return FALSE;
	}
	*host = g_strndup(text, (gsize)(colon - text));
	*port = g_strdup(colon + 1);
	if (**host == '[' && (*host)[strlen(*host) - 1] == ']') {
		char *inner = g_strndup(*host + 1, strlen(*host) - 2);

		g_free(*host);
		*host = inner;
	}
	return TRUE;
}

static int
bind_inet(const struct addrinfo *ai, const char *spec, GError **error)
{
	int one = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
	                ai->ai_protocol);

	if (fd < 0) {
		hk_set_errno_error(error, errno, "socket for", spec);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		hk_set_errno_error(error, errno, "cannot bind", spec);
		close(fd);
		return -1;
	}
	return fd;
}

static int
listen_inet(const char *spec, GError **error)
{
	const char *text = spec + 5;
	g_autofree char *host = NULL;
	g_autofree char *port = NULL;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	int rc, fd;

	if (!split_host_port(text, &host, &port, error))
		return -1;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "inet:%s: %s", text,
		            gai_strerror(rc));
		return -1;
	}
	fd = bind_inet(res, text, error);
	if (fd >= 0 && !(res->ai_family == AF_INET && strncmp(host, "127.", 4) == 0) &&
	    strcmp(host, "::1") != 0 && strcmp(host, "localhost") != 0)
		g_warning("inet:%s is not a loopback address: anyone who reaches it may ask for "
		          "policy decisions",
		          text);
	freeaddrinfo(res);
	if (fd >= 0 && listen(fd, SOMAXCONN) != 0) {
		hk_set_errno_error(error, errno, "cannot listen on", spec);
		close(fd);
		return -1;
	}
	return fd;
}

int
policyd_listen(const char *spec, guint mode, gid_t group, char **path_out, GError **error)
{
	int fd = -1;

	if (path_out != NULL)
		*path_out = NULL;
	if (g_str_has_prefix(spec, "unix:"))
		fd = listen_unix(spec + 5, mode, group, error);
	else if (g_str_has_prefix(spec, "inet:"))
		fd = listen_inet(spec, error);
	else
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "\"%s\": expected unix:PATH or inet:HOST:PORT", spec);
	if (fd >= 0 && path_out != NULL && g_str_has_prefix(spec, "unix:"))
		*path_out = g_strdup(spec + 5);
	return fd;
}

gboolean
policyd_listen_check_fd(int fd, GError **error)
{
	int type = 0, listening = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "fd %d is not a stream socket", fd);
		return FALSE;
	}
	len = sizeof(listening);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "fd %d is not a listening socket", fd);
		return FALSE;
	}
	return g_unix_set_fd_nonblocking(fd, TRUE, error);
}

void
policyd_listeners_init(PolicydListeners *set, const char *name, guint per_wake, HkAcceptFunc accept,
                       gpointer data)
{
	set->name = name;
	set->per_wake = per_wake;
	set->accept = accept;
	set->data = data;
	set->listeners = g_ptr_array_new_with_free_func((GDestroyNotify)hk_listener_free);
}

void
policyd_listeners_clear(PolicydListeners *set)
{
	g_clear_pointer(&set->listeners, g_ptr_array_unref);
}

static void
listeners_watch(PolicydListeners *set, int fd, const char *path)
{
	g_ptr_array_add(set->listeners, hk_listener_new(fd, path, set->name, set->per_wake,
	                                                set->accept, set->data));
}

gboolean
policyd_listeners_add(PolicydListeners *set, const char *spec, guint mode, gid_t group,
                      GError **error)
{
	g_autofree char *path = NULL;
	int fd = policyd_listen(spec, mode, group, &path, error);

	if (fd < 0)
		return FALSE;
	listeners_watch(set, fd, path);
	g_info("%s: listening on %s", set->name, spec);
	return TRUE;
}

gboolean
policyd_listeners_add_fd(PolicydListeners *set, int fd, GError **error)
{
	if (!policyd_listen_check_fd(fd, error))
		return FALSE;
	listeners_watch(set, fd, NULL);
	g_info("%s: listening on socket fd %d from systemd", set->name, fd);
	return TRUE;
}
