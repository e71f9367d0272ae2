/*
 * hk-socket: the socket plumbing every hanko listener shares: a UNIX listening socket
 * created with the control-socket hygiene (stale file replaced, live one refused, umask
 * tightened around bind, then chown/chmod), an accept loop in the GLib main loop, and the
 * non-blocking send of a buffered output.
 */
#pragma once

#include <glib.h>
#include <glib-unix.h>
#include <sys/resource.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* Sets a G_IO_ERROR from errno err, "WHAT WHERE: strerror", and returns FALSE. */
gboolean hk_set_errno_error(GError **error, int err, const char *what, const char *where);

/*
 * A non-blocking, close-on-exec socket listening on path with the given mode (and group,
 * unless (gid_t)-1), never wider than mode for an instant. A stale socket file (nobody
 * answers) is replaced; a live one or a file that is not a socket is an error. -1 on error.
 */
int hk_unix_listen(const char *path, guint mode, gid_t group, GError **error);

/*
 * Raises the soft limit on open files to the hard one (systemd starts services with a soft
 * limit of 1024 and leaves raising it to programs that poll() rather than select()).
 * Returns the limit now in force; 0 if it cannot be read.
 */
rlim_t hk_raise_file_limit(void);

/*
 * What hk_unix_listen() does before it binds, for sockets someone else creates (libmilter):
 * a stale socket file (nobody answers) is removed; a live one, or a file that is not a
 * socket, is an error.
 */
gboolean hk_unix_remove_stale(const char *path, GError **error);

/* Called with each accepted connection (non-blocking, close-on-exec); it owns the fd. */
typedef void (*HkAcceptFunc)(int fd, gpointer user_data);

typedef struct _HkListener HkListener;

/*
 * Accepts connections on the listening socket fd from the main loop and hands each to func.
 * name prefixes the log lines ("NAME: accept: ..."; NULL for none); per_wake bounds the
 * accepts per wakeup (0: all that wait). path, unless NULL, is a socket file removed when
 * the listener is freed. Takes fd.
 */
HkListener *hk_listener_new(int fd, const char *path, const char *name, guint per_wake,
                            HkAcceptFunc func, gpointer user_data);
/* Stops watching, closes the socket and removes its file. NULL-safe. */
void hk_listener_free(HkListener *listener);

/*
 * Sends as much of out (from *sent on) as the non-blocking socket takes. Returns TRUE
 * when all of it went (out is then wiped, emptied and *sent reset) or the socket would
 * block; FALSE with errno set when the peer is gone. Never raises SIGPIPE.
 */
gboolean hk_send_pending(int fd, GString *out, gsize *sent);

/*
 * g_unix_fd_add() for a connection's watch, but allowed to recurse: GLib otherwise blocks
 * a dispatching source by taking its fd out of the poll set and putting it back, waking
 * the loop twice per request. No hanko daemon runs a nested main loop.
 */
guint hk_fd_watch(int fd, GIOCondition condition, GUnixFDSourceFunc func, gpointer data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HkListener, hk_listener_free)

G_END_DECLS
