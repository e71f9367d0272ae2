/*
 * policyd-listen: listening sockets from "unix:PATH" and "inet:HOST:PORT" specs, with
 * the hygiene of hk-ipc's server (hk_unix_listen): the umask tightened around bind, then
 * chmod/chown; a stale socket file replaced, a live one refused. And the set of listeners
 * of one service (policy, auth), each handing accepted connections to the service.
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "hk-socket.h"

G_BEGIN_DECLS

/*
 * A non-blocking, close-on-exec listening socket. For unix: *path_out (may be NULL) gets
 * the path to unlink at shutdown. inet: a host other than loopback is allowed but logged:
 * the policy protocol has no authentication of its own.
 */
int policyd_listen(const char *spec, guint mode, gid_t group, char **path_out, GError **error);

/* Checks that fd is a listening stream socket and makes it non-blocking. */
gboolean policyd_listen_check_fd(int fd, GError **error);

/* The listening sockets of one service; each accepted connection goes to accept. */
typedef struct {
	const char *name; /* "policy" or "auth": the prefix of log lines */
	guint per_wake;   /* accepts per wakeup; 0: all that wait */
	HkAcceptFunc accept;
	gpointer data;
	GPtrArray *listeners; /* HkListener* */
} PolicydListeners;

void policyd_listeners_init(PolicydListeners *set, const char *name, guint per_wake,
                            HkAcceptFunc accept, gpointer data);
/* Closes the sockets, removing the socket files it created. */
void policyd_listeners_clear(PolicydListeners *set);
/* Listens on spec (see policyd_listen()). */
gboolean policyd_listeners_add(PolicydListeners *set, const char *spec, guint mode, gid_t group,
                               GError **error);
/* A listening socket systemd passed; taken on success, left to the caller on error. */
gboolean policyd_listeners_add_fd(PolicydListeners *set, int fd, GError **error);

G_END_DECLS
