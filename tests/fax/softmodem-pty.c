/*
 * softmodem-pty: the "serial device" of hk-softmodem. A pty pair whose slave is reached
 * through a symlink (the path a fax program is given), read and written on the master.
 * The slave being closed is how the harness sees DTR drop: the modem hangs up.
 *
 * Talks to: the kernel's pty driver, the file system (the symlink).
 * Must never: block (the master is non-blocking), remove a link it did not make, or
 * hand bytes queued for one program to the next one that opens the device.
 */
#include "softmodem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define SM_OUT_MAX (256 * 1024) /* a DTE that stops reading loses what goes beyond */

static gboolean
make_raw(int fd, GError **error)
{
	struct termios tio;

	if (tcgetattr(fd, &tio) < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "tcgetattr: %s",
		            g_strerror(errno));
		return FALSE;
	}
	cfmakeraw(&tio);
	tio.c_cflag |= CLOCAL | CREAD;
	return tcsetattr(fd, TCSANOW, &tio) == 0;
}

/* A stale symlink of ours (left by a killed harness) may go; anything else stays. */
static gboolean
clear_link(const char *link, GError **error)
{
	struct stat st;

	if (lstat(link, &st) < 0)
		return TRUE;
	if (!S_ISLNK(st.st_mode)) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
		            "%s exists and is not a symlink", link);
		return FALSE;
	}
	unlink(link);
	return TRUE;
}

gboolean
sm_pty_open(SmPty *pty, const char *link, GError **error)
{
	char name[128];

	memset(pty, 0, sizeof(*pty));
	pty->out = g_byte_array_new();
	pty->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (pty->master < 0 || grantpt(pty->master) < 0 || unlockpt(pty->master) < 0 ||
	    ptsname_r(pty->master, name, sizeof(name)) != 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "pty: %s",
		            g_strerror(errno));
		return FALSE;
	}
	pty->slave_name = g_strdup(name);
	if (!make_raw(pty->master, error) || !clear_link(link, error))
		return FALSE;
	if (symlink(pty->slave_name, link) < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "symlink %s: %s",
		            link, g_strerror(errno));
		return FALSE;
	}
	pty->link = g_strdup(link);
	return TRUE;
}

void
sm_pty_close(SmPty *pty)
{
	if (pty->link != NULL)
		unlink(pty->link);
	if (pty->master >= 0)
		close(pty->master);
	pty->master = -1;
	g_clear_pointer(&pty->link, g_free);
	g_clear_pointer(&pty->slave_name, g_free);
	g_clear_pointer(&pty->out, g_byte_array_unref);
}

void
sm_pty_write(SmPty *pty, const uint8_t *buf, size_t len)
{
	if (!pty->dte_open || pty->out->len + len > SM_OUT_MAX)
		return;
	g_byte_array_append(pty->out, buf, len);
	sm_pty_flush(pty);
}

void
sm_pty_flush(SmPty *pty)
{
	while (pty->out->len > 0) {
		ssize_t n = write(pty->master, pty->out->data, pty->out->len);

		if (n <= 0)
			return; /* EAGAIN: the DTE is behind; EIO: it went away */
		g_byte_array_remove_range(pty->out, 0, n);
	}
}

gssize
sm_pty_read(SmPty *pty, uint8_t *buf, size_t len)
{
	ssize_t n = read(pty->master, buf, len);

	if (n > 0)
		return n;
	if (n < 0 && errno == EAGAIN)
		return 0;
	return -1; /* EIO: nobody holds the slave */
}

gboolean
sm_pty_probe(SmPty *pty)
{
	struct pollfd pfd = {.fd = pty->master, .events = POLLIN};

	if (poll(&pfd, 1, 0) < 0)
		return pty->dte_open;
	return (pfd.revents & POLLHUP) == 0;
}
