/*
 * policyd-listen: creates the policy listeners' sockets.
 *
 * Talks to: the kernel (socket, bind, listen), the file system for UNIX sockets.
 * Must never: leave a socket wider than its mode for an instant, or remove a socket
 * another process is serving.
 */
#include "policyd-listen.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static gboolean
set_errno_error(GError **error, int err, const char *what, const char *where)
{
	g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "%s %s: %s", what, where,
	            g_strerror(err));
	return FALSE;
}

static gboolean
remove_stale(const char *path, const struct sockaddr_un *sun, GError **error)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) != 0)
		return TRUE;
	if (!S_ISSOCK(st.st_mode)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
		            "%s exists and is not a socket; not replacing it", path);
		return FALSE;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rc = fd >= 0 ? connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) : -1;
	if (fd >= 0)
		close(fd);
	if (rc == 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
		            "%s: another process is already listening there", path);
		return FALSE;
	}
	if (unlink(path) != 0 && errno != ENOENT)
		return set_errno_error(error, errno, "cannot remove stale socket", path);
	return TRUE;
}

static gboolean
bind_unix(int fd, const char *path, const struct sockaddr_un *sun, guint mode, gid_t group,
          GError **error)
{
	mode_t old = umask(0777 & ~mode);
	int rc = bind(fd, (const struct sockaddr *)sun, sizeof(*sun));
	int saved = errno;

	umask(old);
	if (rc != 0)
		return set_errno_error(error, saved, "cannot bind", path);
	if ((group != (gid_t)-1 && chown(path, (uid_t)-1, group) != 0) || chmod(path, mode) != 0) {
		saved = errno;
		unlink(path);
		return set_errno_error(error, saved, "cannot set owner/mode of", path);
	}
	return TRUE;
}

static int
listen_unix(const char *path, guint mode, gid_t group, GError **error)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (*path != '/' || strlen(path) >= sizeof(sun.sun_path)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "unix:%s: not an absolute path of at most %zu bytes", path,
		            sizeof(sun.sun_path) - 1);
		return -1;
	}
	strcpy(sun.sun_path, path);
	if (!remove_stale(path, &sun, error))
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		set_errno_error(error, errno, "socket for", path);
		return -1;
	}
	if (!bind_unix(fd, path, &sun, mode, group, error)) {
		close(fd);
		return -1;
	}
	return fd;
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
		set_errno_error(error, errno, "socket for", spec);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		set_errno_error(error, errno, "cannot bind", spec);
		close(fd);
		return -1;
	}
	return fd;
}

static int
listen_inet(const char *text, GError **error)
{
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
		fd = listen_inet(spec + 5, error);
	else
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "\"%s\": expected unix:PATH or inet:HOST:PORT", spec);
	if (fd < 0)
		return -1;
	if (listen(fd, SOMAXCONN) != 0) {
		set_errno_error(error, errno, "cannot listen on", spec);
		close(fd);
		if (g_str_has_prefix(spec, "unix:"))
			unlink(spec + 5);
		return -1;
	}
	if (path_out != NULL && g_str_has_prefix(spec, "unix:"))
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
