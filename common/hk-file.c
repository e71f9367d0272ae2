/*
 * hk-file: durable files. See hk-file.h.
 */
#include "hk-file.h"
#include "hk-socket.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

gboolean
hk_fsync_path(const char *path, GError **error)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int err;

	if (fd < 0)
		return hk_set_errno_error(error, errno, "cannot open", path);
	if (fsync(fd) != 0) {
		err = errno;
		close(fd);
		return hk_set_errno_error(error, err, "cannot sync", path);
	}
	close(fd);
	return TRUE;
}
