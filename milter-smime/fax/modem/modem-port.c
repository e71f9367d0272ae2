/*
 * modem-port: the serial line to a fax modem, for the `modem` fax plugin.
 *
 * Takes a UUCP lock file (LCK..ttyS0 holding the ASCII pid, a stale one of a dead process
 * removed), opens the device without making it our controlling tty, sets it raw 8N1 at the
 * configured speed and flow control, and speaks AT commands: result lines, DLE-framed data.
 * Talks to: the device, the lock directory, and the idle hook of the class driver (T.30
 * timers) while it waits.
 *
 * Must never: wait without a deadline, ignore a cancel for longer than MODEM_IDLE_MS, take
 * a lock held by a live process, or remove a lock that is not ours.
 */
#include "modem.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define LOCK_MODE      0644
#define LINE_MAX_LEN   256
#define PROBE_TRIES    3
#define HANGUP_DTR_MS  500
#define GUARD_TIME_MS  1100
#define PROBE_QUIET_MS 200

gint64
modem_deadline(gint64 timeout_ms)
{
	return g_get_monotonic_time() + timeout_ms * 1000;
}

/* ----- the lock file ----- */

static gboolean
lock_owner_alive(const char *path, long *pid_out)
{
	g_autofree char *contents = NULL;
	long pid;

	*pid_out = 0;
	if (!g_file_get_contents(path, &contents, NULL, NULL))
		return FALSE;
	pid = strtol(g_strstrip(contents), NULL, 10);
	*pid_out = pid;
	if (pid <= 0)
		return FALSE;
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static gboolean
write_lock_temp(const char *tmp, char **error)
{
	char text[16];
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, LOCK_MODE);
	int len = g_snprintf(text, sizeof text, "%10ld\n", (long)getpid());
	gboolean ok;

	if (fd < 0) {
		*error = g_strdup_printf("cannot create lock file %s: %s", tmp, g_strerror(errno));
		return FALSE;
	}
	/* the mode must not depend on the umask: uucp tools read it */
	ok = fchmod(fd, LOCK_MODE) == 0 && write(fd, text, (size_t)len) == len;
	if (close(fd) != 0)
		ok = FALSE;
	if (!ok) {
		*error = g_strdup_printf("cannot write lock file %s: %s", tmp, g_strerror(errno));
		unlink(tmp);
	}
	return ok;
}

static gboolean
port_lock(ModemPort *port, char **error)
{
	const ModemConfig *config = port->config;
	g_autofree char *base = g_path_get_basename(config->device);
	g_autofree char *name = g_strdup_printf("LCK..%s", base);
	g_autofree char *tmp_name = g_strdup_printf("LTMP.%ld", (long)getpid());
	g_autofree char *path = g_build_filename(config->lock_dir, name, NULL);
	g_autofree char *tmp = g_build_filename(config->lock_dir, tmp_name, NULL);

	if (!write_lock_temp(tmp, error))
		return FALSE;
	/* link() is atomic where O_EXCL over NFS was not: the classic uucp dance */
	for (int attempt = 0; attempt < 2; attempt++) {
		long pid;

		if (link(tmp, path) == 0) {
			unlink(tmp);
			port->lock_path = g_steal_pointer(&path);
			return TRUE;
		}
		if (errno != EEXIST)
			break;
		if (lock_owner_alive(path, &pid)) {
			unlink(tmp);
			*error = g_strdup_printf("%s is locked by process %ld (%s)", config->device,
			                         pid, path);
			return FALSE;
		}
		g_info("removing stale lock %s of process %ld", path, pid);
		unlink(path);
	}
	*error = g_strdup_printf("cannot create lock file %s: %s", path, g_strerror(errno));
	unlink(tmp);
	return FALSE;
}

static void
port_unlock(ModemPort *port)
{
	long pid;

	if (port->lock_path == NULL)
		return;
	/* only our own: an operator may have removed it and someone else taken the line */
	lock_owner_alive(port->lock_path, &pid);
	if (pid == (long)getpid())
		unlink(port->lock_path);
	g_clear_pointer(&port->lock_path, g_free);
}

/* ----- termios ----- */

static const struct {
	guint rate;
	speed_t speed;
} speeds[] = {
        {1200, B1200},   {2400, B2400},   {4800, B4800},     {9600, B9600},     {19200, B19200},
        {38400, B38400}, {57600, B57600}, {115200, B115200}, {230400, B230400},
};

static gboolean
speed_lookup(guint rate, speed_t *speed)
{
	for (gsize i = 0; i < G_N_ELEMENTS(speeds); i++) {
		if (speeds[i].rate == rate) {
			*speed = speeds[i].speed;
			return TRUE;
		}
	}
	return FALSE;
}

static gboolean
port_setup(ModemPort *port, char **error)
{
	const ModemConfig *config = port->config;
	struct termios tio;
	speed_t speed;
	int bits = TIOCM_DTR | TIOCM_RTS;

	if (!speed_lookup(config->speed, &speed)) {
		*error = g_strdup_printf("unsupported speed %u", config->speed);
		return FALSE;
	}
	if (tcgetattr(port->fd, &tio) != 0) {
		*error = g_strdup_printf("%s is not a serial line: %s", config->device,
		                         g_strerror(errno));
		return FALSE;
	}
	cfmakeraw(&tio);
	tio.c_cflag &= ~(CSIZE | PARENB | CSTOPB | CRTSCTS);
	/* HUPCL: closing the line drops DTR, which hangs up a modem left off-hook */
	tio.c_cflag |= CS8 | CREAD | CLOCAL | HUPCL;
	if (config->flow == MODEM_FLOW_RTSCTS)
		tio.c_cflag |= CRTSCTS;
	/* XON/XOFF only while page data goes out: received frames hold 0x11 and 0x13 */
	tio.c_iflag &= ~(IXON | IXOFF | IXANY);
	tio.c_cc[VMIN] = 0;
	tio.c_cc[VTIME] = 0;
	cfsetispeed(&tio, speed);
	cfsetospeed(&tio, speed);
	if (tcsetattr(port->fd, TCSANOW, &tio) != 0) {
		*error = g_strdup_printf("cannot set up %s: %s", config->device, g_strerror(errno));
		return FALSE;
	}
	/* a pty has no modem lines: not an error */
	(void)ioctl(port->fd, TIOCMBIS, &bits);
	tcflush(port->fd, TCIOFLUSH);
	return TRUE;
}

void
modem_port_set_xon(ModemPort *port, gboolean on)
{
	struct termios tio;

	if (port->config->flow != MODEM_FLOW_XONXOFF || port->xon_active == on)
		return;
	if (tcgetattr(port->fd, &tio) != 0)
		return;
	if (on)
		tio.c_iflag |= IXON;
	else
		tio.c_iflag &= ~IXON;
	if (tcsetattr(port->fd, TCSANOW, &tio) == 0)
		port->xon_active = on;
}

gboolean
modem_port_open(ModemPort *port, const ModemConfig *config, gint *cancel, char **error)
{
	memset(port, 0, sizeof(*port));
	port->config = config;
	port->cancel = cancel;
	port->fd = -1;
	if (*config->lock_dir != '\0' && !port_lock(port, error))
		return FALSE;
	port->fd = open(config->device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (port->fd < 0) {
		*error = g_strdup_printf("cannot open %s: %s", config->device, g_strerror(errno));
		port_unlock(port);
		return FALSE;
	}
	if (!port_setup(port, error)) {
		modem_port_close(port);
		return FALSE;
	}
	return TRUE;
}

void
modem_port_close(ModemPort *port)
{
	if (port->fd >= 0)
		close(port->fd);
	port->fd = -1;
	port_unlock(port);
	g_clear_pointer(&port->error, g_free);
}

/* ----- bounded waits ----- */

static void
port_set_error(ModemPort *port, const char *what, int err)
{
	g_free(port->error);
	port->error = g_strdup_printf("%s on %s: %s", what, port->config->device,
	                              err != 0 ? g_strerror(err) : "the line is gone");
}

/* Waits for events on the line until the deadline, MODEM_IDLE_MS at a time. */
static ModemWait
port_poll(ModemPort *port, short events, gint64 deadline_us)
{
	for (;;) {
		struct pollfd pfd = {port->fd, events, 0};
		gint64 left = deadline_us - g_get_monotonic_time();
		int timeout = (int)CLAMP(left / 1000, 0, MODEM_IDLE_MS);
		int n;

		if (!port->winding_up && g_atomic_int_get(port->cancel))
			return MODEM_WAIT_CANCELED;
		if (port->idle != NULL && port->idle(port->idle_data))
			return MODEM_WAIT_INTERRUPTED;
		if (left <= 0)
			return MODEM_WAIT_TIMEOUT;
		n = poll(&pfd, 1, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			port_set_error(port, "poll", errno);
			return MODEM_WAIT_IO;
		}
		if (n == 0)
			continue;
		if (pfd.revents & events)
			return MODEM_WAIT_OK;
		if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) {
			port_set_error(port, "hang-up", 0);
			return MODEM_WAIT_IO;
		}
	}
}

ModemWait
modem_port_getc(ModemPort *port, gint64 deadline_us, int *c)
{
	while (port->in_pos >= port->in_len) {
		ModemWait wait = port_poll(port, POLLIN, deadline_us);
		ssize_t n;

		if (wait != MODEM_WAIT_OK)
			return wait;
		n = read(port->fd, port->in, sizeof port->in);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			port_set_error(port, "read", n < 0 ? errno : 0);
			return MODEM_WAIT_IO;
		}
		port->in_len = (gsize)n;
		port->in_pos = 0;
	}
	*c = port->in[port->in_pos++];
	return MODEM_WAIT_OK;
}

ModemWait
modem_port_write(ModemPort *port, const void *data, gsize len, gint64 deadline_us)
{
	const guint8 *p = data;

	while (len > 0) {
		ModemWait wait;
		ssize_t n = write(port->fd, p, len);

		if (n > 0) {
			p += n;
			len -= (gsize)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			port_set_error(port, "write", errno);
			return MODEM_WAIT_IO;
		}
		wait = port_poll(port, POLLOUT, deadline_us);
		if (wait != MODEM_WAIT_OK)
			return wait;
	}
	return MODEM_WAIT_OK;
}

ModemWait
modem_port_write_str(ModemPort *port, const char *text, gint64 deadline_us)
{
	return modem_port_write(port, text, strlen(text), deadline_us);
}

void
modem_port_flush_input(ModemPort *port)
{
	port->in_len = port->in_pos = 0;
	tcflush(port->fd, TCIFLUSH);
}

/* One non-empty line, without its CR LF; binary noise before it is dropped. */
ModemWait
modem_port_read_line(ModemPort *port, gint64 deadline_us, char **line)
{
	g_autoptr(GString) text = g_string_new(NULL);

	for (;;) {
		int c;
		ModemWait wait = modem_port_getc(port, deadline_us, &c);

		if (wait != MODEM_WAIT_OK)
			return wait;
		if (c == '\r' || c == '\n') {
			if (text->len == 0)
				continue;
			*line = g_string_free(g_steal_pointer(&text), FALSE);
			return MODEM_WAIT_OK;
		}
		if (c == MODEM_XON || c == 0x13 || c < 0x20 || c > 0x7e)
			continue;
		if (text->len < LINE_MAX_LEN)
			g_string_append_c(text, (char)c);
	}
}

static const char *const final_codes[] = {
        "OK",        "ERROR",    "NO CARRIER", "BUSY",        "NO DIALTONE", "NO DIAL TONE",
        "NO ANSWER", "+FCERROR", "DELAYED",    "BLACKLISTED", "+F4",         NULL,
};

gboolean
modem_is_final(const char *line)
{
	if (g_str_has_prefix(line, "CONNECT"))
		return TRUE;
	for (gsize i = 0; final_codes[i] != NULL; i++) {
		if (strcmp(line, final_codes[i]) == 0)
			return TRUE;
	}
	return FALSE;
}

/* Reads lines up to a final result code; the others go to info (when given). */
ModemWait
modem_port_wait_final(ModemPort *port, gint64 deadline_us, GPtrArray *info, char **final)
{
	for (;;) {
		char *line = NULL;
		ModemWait wait = modem_port_read_line(port, deadline_us, &line);

		if (wait != MODEM_WAIT_OK)
			return wait;
		g_debug("modem: <- %s", line);
		if (modem_is_final(line)) {
			*final = line;
			return MODEM_WAIT_OK;
		}
		if (info != NULL)
			g_ptr_array_add(info, line);
		else
			g_free(line);
	}
}

ModemWait
modem_port_command(ModemPort *port, const char *command, gint64 timeout_ms, GPtrArray *info,
                   char **final)
{
	gint64 deadline = modem_deadline(timeout_ms);
	g_autofree char *line = g_strdup_printf("%s\r", command);
	ModemWait wait;

	*final = NULL;
	g_debug("modem: -> %s", command);
	wait = modem_port_write_str(port, line, deadline);
	if (wait != MODEM_WAIT_OK)
		return wait;
	for (;;) {
		g_autofree char *got = NULL;

		wait = modem_port_wait_final(port, deadline, info, &got);
		if (wait != MODEM_WAIT_OK)
			return wait;
		/* an echo of the command (ATE1 at power-up) is not its answer */
		if (g_ascii_strcasecmp(got, command) == 0)
			continue;
		*final = g_steal_pointer(&got);
		return MODEM_WAIT_OK;
	}
}

/* Is anybody there? AT, a few times, then the init string and our own settings. */
gboolean
modem_port_probe(ModemPort *port, char **error)
{
	const ModemConfig *config = port->config;
	gboolean answered = FALSE;

	for (int i = 0; i < PROBE_TRIES && !answered; i++) {
		g_autofree char *final = NULL;
		ModemWait wait;

		modem_port_flush_input(port);
		wait = modem_port_command(port, "AT", config->command_timeout_ms / PROBE_TRIES + 1,
		                          NULL, &final);
		if (wait == MODEM_WAIT_CANCELED || wait == MODEM_WAIT_IO)
			break;
		answered = wait == MODEM_WAIT_OK && strcmp(final, "OK") == 0;
	}
	if (g_atomic_int_get(port->cancel)) {
		*error = g_strdup("canceled");
		return FALSE;
	}
	if (!answered) {
		*error = port->error != NULL ? g_strdup(port->error)
		                             : g_strdup_printf("modem on %s does not answer AT",
		                                               config->device);
		return FALSE;
	}
	const char *const commands[] = {config->init, "ATE0V1Q0", NULL};
	for (gsize i = 0; commands[i] != NULL; i++) {
		g_autofree char *final = NULL;

		if (*commands[i] == '\0')
			continue;
		if (modem_port_command(port, commands[i], config->command_timeout_ms, NULL,
		                       &final) != MODEM_WAIT_OK ||
		    strcmp(final, "OK") != 0) {
			*error = g_strdup_printf("modem on %s answers %s to %s", config->device,
			                         final != NULL ? final : "nothing", commands[i]);
			return FALSE;
		}
		/* ATZ restarts some modems: let them settle before the next command */
		if (g_str_has_prefix(commands[i], "ATZ"))
			g_usleep(PROBE_QUIET_MS * 1000);
	}
	modem_port_flush_input(port);
	port->alive = TRUE;
	return TRUE;
}

static void
port_drop_dtr(ModemPort *port)
{
	int bits = TIOCM_DTR;

	if (ioctl(port->fd, TIOCMBIC, &bits) != 0)
		return;
	g_usleep(HANGUP_DTR_MS * 1000);
	(void)ioctl(port->fd, TIOCMBIS, &bits);
}

/* Puts the line on-hook whatever state the modem is in; the cancel flag is ignored here,
 * since hanging up is what a cancel wants. */
void
modem_port_hangup(ModemPort *port)
{
	ModemIdleFunc idle = port->idle;
	g_autofree char *final = NULL;
	ModemWait wait;

	/* a modem that never answered has no call to end, and would not hear ATH0 either */
	if (port->fd < 0 || !port->alive)
		return;
	port->winding_up = TRUE;
	port->idle = NULL;
	modem_port_set_xon(port, FALSE);
	modem_port_flush_input(port);
	wait = modem_port_command(port, "ATH0", port->config->command_timeout_ms, NULL, &final);
	/* the far end's hang-up may still be reported just before ATH0's own answer */
	if (wait == MODEM_WAIT_OK && strcmp(final, "NO CARRIER") == 0) {
		g_clear_pointer(&final, g_free);
		wait = modem_port_wait_final(port, modem_deadline(port->config->command_timeout_ms),
		                             NULL, &final);
	}
	if (wait != MODEM_WAIT_OK || strcmp(final, "OK") != 0) {
		g_autofree char *again = NULL;

		/* still in data mode: the escape with its guard times, then ATH0 again */
		g_usleep(GUARD_TIME_MS * 1000);
		modem_port_write_str(port, "+++", modem_deadline(port->config->command_timeout_ms));
		g_usleep(GUARD_TIME_MS * 1000);
		modem_port_flush_input(port);
		wait = modem_port_command(port, "ATH0", port->config->command_timeout_ms, NULL,
		                          &again);
		if (wait != MODEM_WAIT_OK || strcmp(again, "OK") != 0)
			port_drop_dtr(port);
	}
	if (*port->config->reset != '\0') {
		g_autofree char *reset = NULL;

		modem_port_command(port, port->config->reset, port->config->command_timeout_ms,
		                   NULL, &reset);
	}
	port->winding_up = FALSE;
	port->idle = idle;
}
