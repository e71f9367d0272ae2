/*
 * policyd-listen: listening sockets from "unix:PATH" and "inet:HOST:PORT" specs, with
 * the hygiene of hk-ipc's server: the umask tightened around bind, then chmod/chown; a
 * stale socket file replaced, a live one refused.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

/*
 * A non-blocking, close-on-exec listening socket. For unix: *path_out (may be NULL) gets
 * the path to unlink at shutdown. inet: a host other than loopback is allowed but logged:
 * the policy protocol has no authentication of its own.
 */
int policyd_listen(const char *spec, guint mode, gid_t group, char **path_out, GError **error);

/* Checks that fd is a listening stream socket and makes it non-blocking. */
gboolean policyd_listen_check_fd(int fd, GError **error);

G_END_DECLS
