/* hk-ipc-private: pieces the IPC server and clients share; not for daemons. */
#pragma once

#include <glib.h>

/*
 * Sends as much of out (from *sent on) as the non-blocking socket takes. Returns TRUE
 * when all of it went (out is then emptied and *sent reset) or the socket would block;
 * FALSE with errno set when the peer is gone. Never raises SIGPIPE.
 */
gboolean hk_ipc_send_pending(int fd, GString *out, gsize *sent);
