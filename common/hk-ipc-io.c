/*
 * hk-ipc-io: the non-blocking send loop the server and the asynchronous client share.
 * Must never: block, or raise SIGPIPE on a peer that left.
 */
#include "hk-ipc-private.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

gboolean
hk_ipc_send_pending(int fd, GString *out, gsize *sent)
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
