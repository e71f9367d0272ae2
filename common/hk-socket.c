/*
 * hk-socket: UNIX listening sockets, the accept loop and the non-blocking send loop that
 * hk-ipc's server and client and hanko-policyd's listeners share.
 *
 * Talks to: the kernel (socket, bind, listen, accept, send) and the file system for the
 * socket files.
 * Must never: leave a socket wider than its mode for an instant, remove a socket another
 * process is serving, block, or raise SIGPIPE on a peer that left.
 */
#include "hk-socket.h"
#include "hk-ipc.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct _HkListener {
	int fd;
	guint source;
	char *path; /* unlinked when the listener goes: we created it */
	char *name; /* for log lines; NULL for none */
	guint per_wake;
	guint pause; /* the timeout that resumes accepting after EMFILE and friends */
	HkAcceptFunc func;
	gpointer user_data;
};

/* ----- creating ----- */

static gboolean
fill_sockaddr(struct sockaddr_un *sun, const char *path, GError **error)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_CONNECT,
		            "socket path %s is longer than %zu bytes", path,
		            sizeof(sun->sun_path) - 1);
		return FALSE;
	}
	strcpy(sun->sun_path, path);
	return TRUE;
}

gboolean
hk_set_errno_error(GError **error, int err, const char *what, const char *where)
{
	g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "%s %s: %s", what, where,
	            g_strerror(err));
	return FALSE;
}

/* A socket file left by a daemon that died is removed; one that answers is not ours. */
static gboolean
remove_stale_socket(const char *path, const struct sockaddr_un *sun, GError **error)
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
		return hk_set_errno_error(error, errno, "cannot remove stale socket", path);
	return TRUE;
}

gboolean
hk_unix_remove_stale(const char *path, GError **error)
{
	struct sockaddr_un sun;

	return fill_sockaddr(&sun, path, error) && remove_stale_socket(path, &sun, error);
}

static gboolean
bind_tight(int fd, const char *path, const struct sockaddr_un *sun, guint mode, gid_t group,
           GError **error)
{
	mode_t old = umask(0777 & ~mode);
	int rc = bind(fd, (const struct sockaddr *)sun, sizeof(*sun));
	int saved = errno;

	umask(old);
	if (rc != 0)
		return hk_set_errno_error(error, saved, "cannot bind", path);
	if ((group != (gid_t)-1 && chown(path, (uid_t)-1, group) != 0) || chmod(path, mode) != 0) {
		saved = errno;
		unlink(path);
		return hk_set_errno_error(error, saved, "cannot set owner/mode of", path);
	}
	return TRUE;
}

int
hk_unix_listen(const char *path, guint mode, gid_t group, GError **error)
{
	struct sockaddr_un sun;
	int fd;

	if (!fill_sockaddr(&sun, path, error) || !remove_stale_socket(path, &sun, error))
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "socket: %s",
		            g_strerror(errno));
		return -1;
	}
	if (!bind_tight(fd, path, &sun, mode, group, error)) {
		close(fd);
		return -1;
	}
	if (listen(fd, SOMAXCONN) != 0) {
		int saved = errno;

		close(fd);
		unlink(path);
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(saved), "listen on %s: %s",
		            path, g_strerror(saved));
		return -1;
	}
	return fd;
}

rlim_t
hk_raise_file_limit(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
		return 0;
	if (lim.rlim_cur < lim.rlim_max) {
		rlim_t old = lim.rlim_cur;

		lim.rlim_cur = lim.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
			lim.rlim_cur = old;
	}
	return lim.rlim_cur;
}

/* ----- accepting ----- */

/* How long accepting pauses when the process or system is out of descriptors or memory:
 * retrying at once would spin the loop on a connection that cannot be taken yet. */
#define HK_ACCEPT_PAUSE_MS 100

static gboolean on_listener_readable(gint lfd, GIOCondition cond, gpointer data);

static gboolean
on_accept_resume(gpointer data)
{
	HkListener *listener = data;

	listener->pause = 0;
	listener->source = g_unix_fd_add(listener->fd, G_IO_IN, on_listener_readable, listener);
	return G_SOURCE_REMOVE;
}

/* Out of descriptors: say so (once per pause), stop watching the socket and come back
 * later. The waiting connections stay queued in the kernel; none is lost. */
static void
pause_accepting(HkListener *listener, int err)
{
	g_warning("%s%saccept: %s; pausing %d ms", listener->name ? listener->name : "",
	          listener->name ? ": " : "", g_strerror(err), HK_ACCEPT_PAUSE_MS);
	listener->source = 0; /* the caller returns G_SOURCE_REMOVE */
	listener->pause = g_timeout_add(HK_ACCEPT_PAUSE_MS, on_accept_resume, listener);
}

static gboolean
on_listener_readable(gint lfd, GIOCondition cond, gpointer data)
{
	HkListener *listener = data;

	for (guint i = 0; listener->per_wake == 0 || i < listener->per_wake; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			pause_accepting(listener, errno);
			return G_SOURCE_REMOVE;
		}
		listener->func(fd, listener->user_data);
	}
	return G_SOURCE_CONTINUE;
}

HkListener *
hk_listener_new(int fd, const char *path, const char *name, guint per_wake, HkAcceptFunc func,
                gpointer user_data)
{
	HkListener *listener = g_new0(HkListener, 1);

	listener->fd = fd;
	listener->path = g_strdup(path);
	listener->name = g_strdup(name);
	listener->per_wake = per_wake;
	listener->func = func;
	listener->user_data = user_data;
	listener->source = g_unix_fd_add(fd, G_IO_IN, on_listener_readable, listener);
	return listener;
}

void
hk_listener_free(HkListener *listener)
{
	if (listener == NULL)
		return;
	g_clear_handle_id(&listener->source, g_source_remove);
	g_clear_handle_id(&listener->pause, g_source_remove);
	if (listener->fd >= 0)
		close(listener->fd);
	if (listener->path != NULL)
		unlink(listener->path);
	g_free(listener->path);
	g_free(listener->name);
	g_free(listener);
}

/* ----- sending ----- */

gboolean
hk_send_pending(int fd, GString *out, gsize *sent)
{
	while (*sent < out->len) {
		ssize_t n =
		        send(fd, out->str + *sent, out->len - *sent, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return TRUE;
		if (n < 0)
			return FALSE;
		*sent += (gsize)n;
	}
	/* requests may carry passwords (auth.verify): do not leave them in freed memory */
	explicit_bzero(out->str, out->len);
	g_string_truncate(out, 0);
	*sent = 0;
	return TRUE;
}

guint
hk_fd_watch(int fd, GIOCondition condition, GUnixFDSourceFunc func, gpointer data)
{
	GSource *source = g_unix_fd_source_new(fd, condition);
	guint id;

	g_source_set_can_recurse(source, TRUE);
	g_source_set_callback(source, G_SOURCE_FUNC(func), data, NULL);
	id = g_source_attach(source, NULL);
	g_source_unref(source);
	return id;
}
