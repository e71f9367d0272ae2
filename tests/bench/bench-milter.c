/*
 * bench-milter: hanko-milter verifying S/MIME signatures against the anchor the issue
 * names, opendkim (Debian package opendkim) verifying DKIM signatures, in one run on one
 * machine. Both do about one RSA-2048 verification and one SHA-256 body hash per message:
 *
 *   hanko-milter  with a real hanko-certd behind it; the messages are signed by
 *                 `openssl cms -sign -md sha256` with an RSA-2048 key and a certificate
 *                 certd issued to alice@example.jp, and must come out smime=pass;
 *   opendkim      in verify mode (Mode v) with the public key in a TestPublicKeys file;
 *                 the same plain messages, signed beforehand by a second opendkim in sign
 *                 mode (relaxed/relaxed, 2048-bit key from opendkim-genkey), must come
 *                 out dkim=pass.
 *
 * The load is this program's own milter client (the MTA's side of the milter protocol,
 * version 6, honouring the filter's SMFIP_NO* and SMFIP_NR_* choices): C parallel
 * connections (HANKO_BENCH_CONNECTIONS, 8), each a thread sending messages back to back
 * and timing each from MAIL to the final reply. For messages of about 4 KB and 1 MB, and
 * hanko-milter and opendkim alternately: a warm-up, then HANKO_BENCH_N * 50 (4 KB) or
 * HANKO_BENCH_N * 2 (1 MB) messages per connection. Prints messages/s, p50/p99 latency
 * and the ratio hanko-milter / opendkim per size with the target (>= 1). A benchmark, not a
 * test: it exits 0 whether or not the target is met, and non-zero only when something does
 * not work (a daemon that does not start, a rejected message, a result other than pass).
 *
 * Talks to: hanko-certd, hanko-milter and hankoctl of the build tree; openssl, opendkim
 * and opendkim-genkey from the system.
 * Must never: leave a process running (every daemon runs in the foreground as a child
 * that dies with this process), or wait without a bound.
 */
#include "hk-bench.h"
#include "hk-test-certd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmilter/mfdef.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MILTER      HK_TEST_BINDIR "/milter-smime/hanko-milter"
#define WAIT_US     (10 * G_USEC_PER_SEC)
#define IO_TIMEOUT  30 /* s, one send or recv: 1 MB through an ASan build */
#define VARIANTS    4  /* messages cycled on one connection: other Message-IDs and bodies */
#define SMALL       (4 * 1024)
#define LARGE       (1024 * 1024)
#define FLUSH_AT    (256 * 1024) /* queued bytes sent before more body chunks are queued */
#define MAX_REPLY   (16 * 1024 * 1024)
#define AR_HEADER   "Authentication-Results"
#define DKIM_HEADER "DKIM-Signature"
/* every protocol step and no-reply flag this client honours (not SMFIP_HDR_LEADSPC, not
 * larger body chunks) */
#define PROTO_OFFER (SMFI_CURR_PROT & ~SMFIP_HDR_LEADSPC)

typedef struct {
	char *name;
	char *value; /* without the leading space, folded lines joined with "\n" */
} Header;

typedef struct {
	GPtrArray *headers; /* Header */
	char *body;         /* CRLF lines */
	gsize body_len;
	gsize octets; /* as a file: header lines, the empty line, the body */
} Message;

/* One filter as the load sees it. */
typedef struct {
	const char *name;
	char *socket;
	const char *expect; /* in the Authentication-Results it inserts */
} Target;

/* The MTA's end of one milter connection. */
typedef struct {
	int fd;
	guint32 pflags;  /* the filter's protocol flags, from its SMFIC_OPTNEG reply */
	GByteArray *out; /* packets queued, sent before the next read */
	GByteArray *pkt; /* the last reply's data, without its command byte */
	char cmd;        /* the last reply's command */
	guint8 in[16384];
	gsize in_pos, in_len;
	char *error; /* NULL while all goes well */
} Wire;

typedef struct {
	const Target *target;
	const Message *messages; /* VARIANTS of them */
	guint index;
	guint warmup, count;
	pthread_barrier_t *start;
	gint64 *latency_ns; /* count of them */
	char *failure;      /* NULL while all goes well */
} Client;

typedef struct {
	const char *name, *size;
	guint connections, count;
	gsize octets; /* average message size */
	HkBenchStats stats;
} Result;

typedef struct {
	char *dir;  /* configurations, sockets, keys, logs */
	char *ddir; /* opendkim's configurations, keys and logs: see make_dkim_dir() */
	HkTestCertd *certd;
	char *opendkim;
	GPid milter, dkim_sign, dkim_verify;
	char *milter_log;
	Target hanko, verify, sign;
	Message plain[2][VARIANTS], smime[2][VARIANTS], dkim[2][VARIANTS];
} Bench;

static Bench bench;

/* ----- small helpers ----- */

/* KILL and reap: without a reaping PID 1 (containers), a child that merely dies with us
 * stays a zombie. */
static void
kill_child(GPid *pid)
{
	if (*pid != 0)
		hk_test_kill(pid, SIGKILL);
}

/* Something does not work: stop the daemons, exit non-zero. */
static G_NORETURN void G_GNUC_PRINTF(1, 2) bench_fail(const char *format, ...)
{
	va_list args;

	va_start(args, format);
	fprintf(stderr, "bench-milter: ");
	vfprintf(stderr, format, args);
	fprintf(stderr, "\n");
	va_end(args);
	kill_child(&bench.milter);
	kill_child(&bench.dkim_sign);
	kill_child(&bench.dkim_verify);
	if (bench.certd != NULL)
		kill_child(&bench.certd->pid);
	if (bench.dir != NULL)
		fprintf(stderr, "bench-milter: files and logs kept in %s\n", bench.dir);
	if (bench.ddir != NULL)
		fprintf(stderr, "bench-milter: opendkim's files and logs kept in %s\n", bench.ddir);
	if (bench.certd != NULL)
		fprintf(stderr, "bench-milter: hanko-certd's files and log kept in %s\n",
		        bench.certd->dir);
	exit(1);
}

static char *
find_program(const char *name)
{
	char *path = g_find_program_in_path(name);
	g_autofree char *sbin = g_build_filename("/usr/sbin", name, NULL);

	if (path == NULL && g_file_test(sbin, G_FILE_TEST_IS_EXECUTABLE))
		path = g_steal_pointer(&sbin);
	if (path == NULL)
		bench_fail("%s is missing: install the Debian packages opendkim and "
		           "opendkim-tools (contrib/scripts/install-deps.sh test)",
		           name);
	return path;
}

static void
run_ok(const char *const *argv)
{
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	int status = hk_test_runv(NULL, &out, &err, argv);

	if (status != 0)
		bench_fail("%s failed (%d): %s%s", argv[0], status, out, err);
}

static void
write_file(const char *path, const char *text)
{
	if (!g_file_set_contents(path, text, -1, NULL))
		bench_fail("cannot write %s", path);
}

static char *
read_file(const char *path)
{
	char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return g_strdup("");
	return text;
}

static gboolean
socket_answers(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	gboolean ok;

	g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* A daemon in the foreground, stdout and stderr to log; it dies with us. */
static GPid
spawn_daemon(const char *what, const char *const *argv, const char *log)
{
	g_autoptr(GError) error = NULL;
	int log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	GPid pid = 0;

	if (log_fd < 0 ||
	    !g_spawn_async_with_fds(bench.dir, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
	                            hk_test_die_with_parent, GINT_TO_POINTER(getpid()), &pid, -1,
	                            log_fd, log_fd, &error))
		bench_fail("cannot start %s: %s", what, error ? error->message : log);
	close(log_fd);
	return pid;
}

/* Waits until ready() says so, or fails if the daemon exits or 10 s pass. */
static void
wait_ready(const char *what, GPid *pid, const char *log, gboolean (*ready)(const char *),
           const char *arg)
{
	gint64 deadline = g_get_monotonic_time() + WAIT_US;
	int status;

	while (!ready(arg)) {
		if (waitpid(*pid, &status, WNOHANG) == *pid) {
			g_autofree char *text = read_file(log);

			*pid = 0;
			bench_fail("%s exited at start (status %d):\n%s", what, status, text);
		}
		if (g_get_monotonic_time() > deadline)
			bench_fail("%s was not ready within 10 s; see %s", what, log);
		g_usleep(10 * 1000);
	}
}

/* SIGTERM, then SIGKILL if it has not exited within 10 s; the wait status. */
static int
stop_daemon(const char *what, GPid *pid)
{
	gint64 deadline = g_get_monotonic_time() + WAIT_US;
	int status = 0;

	if (*pid == 0)
		return 0;
	kill(*pid, SIGTERM);
	while (waitpid(*pid, &status, WNOHANG) != *pid) {
		if (g_get_monotonic_time() > deadline) {
			fprintf(stderr, "bench-milter: %s ignored SIGTERM; killing it\n", what);
			kill(*pid, SIGKILL);
			while (waitpid(*pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		g_usleep(10 * 1000);
	}
	g_spawn_close_pid(*pid);
	*pid = 0;
	return status;
}

/* ----- messages ----- */

static void
header_free(gpointer data)
{
	Header *h = data;

	g_free(h->name);
	g_free(h->value);
	g_free(h);
}

static void
message_add_header(Message *m, const char *name, const char *value)
{
	Header *h = g_new(Header, 1);

	h->name = g_strdup(name);
	h->value = g_strdup(value);
	g_ptr_array_add(m->headers, h);
}

static void
message_clear(Message *m)
{
	g_clear_pointer(&m->headers, g_ptr_array_unref);
	g_clear_pointer(&m->body, g_free);
}

/* Header lines as in a file, the empty line, the body. */
static void
message_count_octets(Message *m)
{
	m->octets = 2 + m->body_len;
	for (guint i = 0; i < m->headers->len; i++) {
		const Header *h = m->headers->pdata[i];

		m->octets += strlen(h->name) + 2 + strlen(h->value) + 2;
	}
}

static char *
lf_to_crlf(const char *text, gsize len, gsize *out_len)
{
	GString *s = g_string_sized_new(len + len / 32);

	for (gsize i = 0; i < len; i++) {
		if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r'))
			g_string_append_c(s, '\r');
		g_string_append_c(s, text[i]);
	}
	*out_len = s->len;
	return g_string_free(s, FALSE);
}

/* Text lines (LF) of about len bytes. */
static char *
text_lines(gsize len, guint variant)
{
	GString *s = g_string_sized_new(len + 128);

	for (guint line = 0; s->len < len; line++)
		g_string_append_printf(s,
		                       "%06u/%u The quick brown fox jumps over the lazy dog; "
		                       "0123456789 abcdefghijklmnopqrstuvwxyz.\n",
		                       line, variant);
	return g_string_free(s, FALSE);
}

static void
add_envelope_headers(Message *m, const char *size, guint variant)
{
	g_autofree char *subject = g_strdup_printf("bench message %u (%s)", variant, size);
	g_autofree char *id = g_strdup_printf("<bench-%s-%u@example.jp>", size, variant);

	message_add_header(m, "From", "Alice <alice@example.jp>");
	message_add_header(m, "To", "Bob <bob@example.jp>");
	message_add_header(m, "Subject", subject);
	message_add_header(m, "Date", "Mon, 06 Jan 2025 09:00:00 +0900");
	message_add_header(m, "Message-ID", id);
}

/* Splits a CRLF message into fields and body, as an MTA hands them to a milter. */
static void
message_parse(Message *m, const char *text, gsize len)
{
	const char *p = text, *end = text + len;

	while (p < end && !(end - p >= 2 && p[0] == '\r' && p[1] == '\n')) {
		const char *eol = g_strstr_len(p, end - p, "\r\n");
		g_autofree char *line = NULL;

		if (eol == NULL)
			bench_fail("a message without a body:\n%.*s", (int)len, text);
		line = g_strndup(p, eol - p);
		p = eol + 2;
		if ((line[0] == ' ' || line[0] == '\t') && m->headers->len > 0) {
			Header *h = m->headers->pdata[m->headers->len - 1];
			char *value = g_strconcat(h->value, "\n", line, NULL);

			g_free(h->value);
			h->value = value;
		} else {
			char *colon = strchr(line, ':');
			const char *value;

			if (colon == NULL)
				bench_fail("not a header field: \"%s\"", line);
			*colon = '\0';
			for (value = colon + 1; *value == ' ' || *value == '\t'; value++)
				;
			message_add_header(m, line, value);
		}
	}
	p += 2;
	m->body = g_memdup2(p, end - p);
	m->body_len = end - p;
}

static void
make_plain(Message *m, gsize size, const char *label, guint variant)
{
	g_autofree char *lf = text_lines(size - 400, variant);

	m->headers = g_ptr_array_new_with_free_func(header_free);
	add_envelope_headers(m, label, variant);
	message_add_header(m, "MIME-Version", "1.0");
	message_add_header(m, "Content-Type", "text/plain; charset=us-ascii");
	message_add_header(m, "Content-Transfer-Encoding", "7bit");
	m->body = lf_to_crlf(lf, strlen(lf), &m->body_len);
	message_count_octets(m);
}

/* The same text signed by openssl cms (multipart/signed); openssl's MIME-Version and
 * Content-Type become the message's. */
static void
make_smime(Message *m, const char *signer, gsize size, const char *label, guint variant)
{
	g_autofree char *lf = text_lines(size - 400, variant);
	g_autofree char *inner = g_strdup_printf("%s/smime-%s-%u.in", bench.dir, label, variant);
	g_autofree char *signed_path =
	        g_strdup_printf("%s/smime-%s-%u.eml", bench.dir, label, variant);
	g_autofree char *entity = g_strconcat("Content-Type: text/plain; charset=us-ascii\n"
	                                      "Content-Transfer-Encoding: 7bit\n\n",
	                                      lf, NULL);
	const char *argv[] = {"openssl", "cms", "-sign", "-md",  "sha256",    "-signer",
	                      signer,    "-in", inner,   "-out", signed_path, NULL};
	g_autofree char *out = NULL;
	g_autofree char *crlf = NULL;
	gsize len;

	write_file(inner, entity);
	run_ok(argv);
	out = read_file(signed_path);
	crlf = lf_to_crlf(out, strlen(out), &len);
	m->headers = g_ptr_array_new_with_free_func(header_free);
	add_envelope_headers(m, label, variant);
	message_parse(m, crlf, len);
	message_count_octets(m);
	unlink(inner);
	unlink(signed_path);
}

static void
make_dkim(Message *m, const Message *plain, const char *signature)
{
	m->headers = g_ptr_array_new_with_free_func(header_free);
	message_add_header(m, DKIM_HEADER, signature);
	for (guint i = 0; i < plain->headers->len; i++) {
		const Header *h = plain->headers->pdata[i];

		message_add_header(m, h->name, h->value);
	}
	m->body = g_memdup2(plain->body, plain->body_len);
	m->body_len = plain->body_len;
	message_count_octets(m);
}

/* ----- the milter protocol, MTA side ----- */

static gboolean G_GNUC_PRINTF(2, 3) wire_fail(Wire *w, const char *format, ...)
{
	va_list args;

	if (w->error == NULL) {
		va_start(args, format);
		w->error = g_strdup_vprintf(format, args);
		va_end(args);
	}
	return FALSE;
}

/* A packet: uint32 length (network order, counting the command byte), command, data. */
static gsize
wire_begin(Wire *w, char cmd)
{
	gsize at = w->out->len;
	guint8 head[5] = {0, 0, 0, 0, (guint8)cmd};

	g_byte_array_append(w->out, head, sizeof(head));
	return at;
}

static void
wire_add(Wire *w, const void *data, gsize len)
{
	g_byte_array_append(w->out, data, (guint)len);
}

/* With its NUL, as the protocol sends strings. */
static void
wire_add_str(Wire *w, const char *s)
{
	wire_add(w, s, strlen(s) + 1);
}

static void
wire_end(Wire *w, gsize at)
{
	guint32 len = htonl((guint32)(w->out->len - at - 4));

	memcpy(w->out->data + at, &len, sizeof(len));
}

static void
wire_put(Wire *w, char cmd, const char *str)
{
	gsize at = wire_begin(w, cmd);

	if (str != NULL)
		wire_add_str(w, str);
	wire_end(w, at);
}

static gboolean
wire_flush(Wire *w)
{
	for (gsize sent = 0; sent < w->out->len;) {
		ssize_t n = send(w->fd, w->out->data + sent, w->out->len - sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return wire_fail(w, "send: %s", g_strerror(errno));
		sent += (gsize)n;
	}
	g_byte_array_set_size(w->out, 0);
	return TRUE;
}

static gboolean
wire_read_bytes(Wire *w, guint8 *dst, gsize len)
{
	while (len > 0) {
		gsize n;

		if (w->in_pos == w->in_len) {
			ssize_t got = recv(w->fd, w->in, sizeof(w->in), 0);

			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				return wire_fail(w, "reading a reply: %s",
				                 got == 0 ? "connection closed"
				                          : g_strerror(errno));
			w->in_pos = 0;
			w->in_len = (gsize)got;
		}
		n = MIN(len, w->in_len - w->in_pos);
		memcpy(dst, w->in + w->in_pos, n);
		w->in_pos += n;
		dst += n;
		len -= n;
	}
	return TRUE;
}

/* Sends what is queued, then reads one reply into w->cmd and w->pkt. */
static gboolean
wire_read(Wire *w)
{
	guint32 len;
	guint8 cmd;

	if (!wire_flush(w) || !wire_read_bytes(w, (guint8 *)&len, sizeof(len)))
		return FALSE;
	len = ntohl(len);
	if (len < 1 || len > MAX_REPLY)
		return wire_fail(w, "a reply of %u bytes", len);
	if (!wire_read_bytes(w, &cmd, 1))
		return FALSE;
	g_byte_array_set_size(w->pkt, len - 1);
	if (!wire_read_bytes(w, w->pkt->data, len - 1))
		return FALSE;
	w->cmd = (char)cmd;
	return TRUE;
}

/* The filter's answer to the command just queued: SMFIR_CONTINUE when it asked for none
 * (no_reply in its protocol flags), 0 when the connection broke. */
static char
wire_reply(Wire *w, guint32 no_reply)
{
	if ((w->pflags & no_reply) != 0)
		return SMFIR_CONTINUE;
	return wire_read(w) ? w->cmd : 0;
}

static guint32
get_u32(const guint8 *p)
{
	guint32 v;

	memcpy(&v, p, sizeof(v));
	return ntohl(v);
}

/* Option negotiation, then connect and helo as Postfix sends them. */
static Wire *
wire_open(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = IO_TIMEOUT};
	Wire *w = g_new0(Wire, 1);
	guint32 offer[3] = {htonl(SMFI_PROT_VERSION), htonl(SMFI_CURR_ACTS), htonl(PROTO_OFFER)};
	guint16 port = htons(40025);
	gsize at;
	char v;

	w->out = g_byte_array_new();
	w->pkt = g_byte_array_new();
	g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	w->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (w->fd < 0 || connect(w->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		wire_fail(w, "connect %s: %s", path, g_strerror(errno));
		return w;
	}
	setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(w->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

	at = wire_begin(w, SMFIC_OPTNEG);
	wire_add(w, offer, sizeof(offer));
	wire_end(w, at);
	if (!wire_read(w))
		return w;
	if (w->cmd != SMFIC_OPTNEG || w->pkt->len < MILTER_OPTLEN) {
		wire_fail(w, "option negotiation: reply '%c' of %u bytes", w->cmd, w->pkt->len);
		return w;
	}
	w->pflags = get_u32(w->pkt->data + 8);
	if ((w->pflags & ~(guint32)PROTO_OFFER) != 0) {
		wire_fail(w, "the filter asks for protocol flags 0x%x, not offered",
		          w->pflags & ~(guint32)PROTO_OFFER);
		return w;
	}

	if ((w->pflags & SMFIP_NOCONNECT) == 0) {
		at = wire_begin(w, SMFIC_MACRO);
		wire_add(w, (const char[]){SMFIC_CONNECT}, 1);
		wire_add_str(w, "j");
		wire_add_str(w, "mx.example.jp");
		wire_add_str(w, "{daemon_name}");
		wire_add_str(w, "bench");
		wire_end(w, at);
		at = wire_begin(w, SMFIC_CONNECT);
		wire_add_str(w, "localhost");
		wire_add(w, (const char[]){SMFIA_INET}, 1);
		wire_add(w, &port, sizeof(port));
		wire_add_str(w, "127.0.0.1");
		wire_end(w, at);
		v = wire_reply(w, SMFIP_NR_CONN);
		if (v != SMFIR_CONTINUE) {
			if (v != 0)
				wire_fail(w, "connect: reply '%c'", v);
			return w;
		}
	}
	if ((w->pflags & SMFIP_NOHELO) == 0) {
		wire_put(w, SMFIC_HELO, "client.example.jp");
		v = wire_reply(w, SMFIP_NR_HELO);
		if (v != SMFIR_CONTINUE && v != 0)
			wire_fail(w, "helo: reply '%c'", v);
	}
	return w;
}

static void
wire_close(Wire *w)
{
	if (w->fd >= 0 && w->error == NULL) {
		wire_put(w, SMFIC_QUIT, NULL);
		wire_flush(w);
	}
	if (w->fd >= 0)
		close(w->fd);
	g_byte_array_unref(w->out);
	g_byte_array_unref(w->pkt);
	g_free(w->error);
	g_free(w);
}

/* An added or inserted field ('h': name\0value\0; 'i': uint32 index, name\0value\0):
 * its value into *captured when it is the first named capture. */
static gboolean
note_header(Wire *w, gsize skip, const char *capture, char **captured)
{
	const char *name = (const char *)w->pkt->data + skip;
	gsize len = w->pkt->len;
	const char *nul = len > skip ? memchr(name, '\0', len - skip) : NULL;

	if (nul == NULL ||
	    memchr(nul + 1, '\0', len - (nul + 1 - (const char *)w->pkt->data)) == NULL)
		return wire_fail(w, "a malformed header reply '%c'", w->cmd);
	if (capture != NULL && *captured == NULL && g_ascii_strcasecmp(name, capture) == 0)
		*captured = g_strdup(nul + 1);
	return TRUE;
}

/* Replies after the end of the message: modifications, progress, then the verdict. */
static char
read_verdict(Wire *w, const char *capture, char **captured)
{
	for (;;) {
		if (!wire_read(w))
			return 0;
		switch (w->cmd) {
		case SMFIR_ADDHEADER:
			if (!note_header(w, 0, capture, captured))
				return 0;
			break;
		case SMFIR_INSHEADER:
			if (!note_header(w, 4, capture, captured))
				return 0;
			break;
		case SMFIR_CHGHEADER:
		case SMFIR_REPLBODY:
		case SMFIR_ADDRCPT:
		case SMFIR_ADDRCPT_PAR:
		case SMFIR_DELRCPT:
		case SMFIR_CHGFROM:
		case SMFIR_QUARANTINE:
		case SMFIR_PROGRESS:
			break;
		case SMFIR_ACCEPT:
		case SMFIR_CONTINUE:
		case SMFIR_REJECT:
		case SMFIR_TEMPFAIL:
		case SMFIR_DISCARD:
		case SMFIR_REPLYCODE:
		case SMFIR_CONN_FAIL:
		case SMFIR_SHUTDOWN:
			return w->cmd;
		default:
			wire_fail(w, "reply '%c' after the end of the message", w->cmd);
			return 0;
		}
	}
}

/* The filter ended the message before its end: tell it the transaction is over. */
static char
end_early(Wire *w, char verdict)
{
	if (verdict != 0)
		wire_put(w, SMFIC_ABORT, NULL);
	return verdict;
}

static char
send_body(Wire *w, const Message *m)
{
	for (gsize done = 0; done < m->body_len;) {
		gsize n = MIN(m->body_len - done, MILTER_CHUNK_SIZE),
		      at = wire_begin(w, SMFIC_BODY);
		char v;

		wire_add(w, m->body + done, n);
		wire_end(w, at);
		done += n;
		if (w->out->len >= FLUSH_AT && !wire_flush(w))
			return 0;
		v = wire_reply(w, SMFIP_NR_BODY);
		if (v == SMFIR_SKIP)
			break;
		if (v != SMFIR_CONTINUE)
			return v;
	}
	return SMFIR_CONTINUE;
}

/*
 * One message, from MAIL to the verdict: the final reply (SMFIR_*), or 0 when the
 * connection broke (w->error). The value of the first field named capture that the
 * filter adds or inserts goes to *captured.
 */
static char
send_message(Wire *w, const Message *m, const char *qid, const char *capture, char **captured)
{
	gsize at;
	char v = SMFIR_CONTINUE;

	if ((w->pflags & SMFIP_NOMAIL) == 0) {
		at = wire_begin(w, SMFIC_MACRO);
		wire_add(w, (const char[]){SMFIC_MAIL}, 1);
		wire_add_str(w, "i");
		wire_add_str(w, qid);
		wire_end(w, at);
		wire_put(w, SMFIC_MAIL, "<alice@example.jp>");
		if ((v = wire_reply(w, SMFIP_NR_MAIL)) != SMFIR_CONTINUE)
			return end_early(w, v);
	}
	if ((w->pflags & SMFIP_NORCPT) == 0) {
		wire_put(w, SMFIC_RCPT, "<bob@example.jp>");
		if ((v = wire_reply(w, SMFIP_NR_RCPT)) != SMFIR_CONTINUE)
			return end_early(w, v);
	}
	if ((w->pflags & SMFIP_NODATA) == 0) {
		wire_put(w, SMFIC_DATA, NULL);
		if ((v = wire_reply(w, SMFIP_NR_DATA)) != SMFIR_CONTINUE)
			return end_early(w, v);
	}
	for (guint i = 0; (w->pflags & SMFIP_NOHDRS) == 0 && i < m->headers->len; i++) {
		const Header *h = m->headers->pdata[i];

		at = wire_begin(w, SMFIC_HEADER);
		wire_add_str(w, h->name);
		wire_add_str(w, h->value);
		wire_end(w, at);
		if ((v = wire_reply(w, SMFIP_NR_HDR)) != SMFIR_CONTINUE)
			return end_early(w, v);
	}
	if ((w->pflags & SMFIP_NOEOH) == 0) {
		wire_put(w, SMFIC_EOH, NULL);
		if ((v = wire_reply(w, SMFIP_NR_EOH)) != SMFIR_CONTINUE)
			return end_early(w, v);
	}
	if ((w->pflags & SMFIP_NOBODY) == 0 && (v = send_body(w, m)) != SMFIR_CONTINUE)
		return end_early(w, v);
	wire_put(w, SMFIC_BODYEOB, NULL);
	return read_verdict(w, capture, captured);
}

static gboolean
accepted(char verdict)
{
	return verdict == SMFIR_ACCEPT || verdict == SMFIR_CONTINUE;
}

/* "'r'", or "'y' 550 5.7.1 ..." with the reply's text */
static char *
verdict_text(const Wire *w, char verdict)
{
	if (verdict == SMFIR_REPLYCODE && w->cmd == SMFIR_REPLYCODE)
		return g_strdup_printf("'y' %.*s", (int)w->pkt->len, (const char *)w->pkt->data);
	return g_strdup_printf("'%c'", verdict);
}

/* ----- the load: one blocking client thread per connection ----- */

static void client_failed(Client *c, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void
client_failed(Client *c, const char *format, ...)
{
	va_list args;

	if (c->failure != NULL)
		return;
	va_start(args, format);
	c->failure = g_strdup_vprintf(format, args);
	va_end(args);
}

/* One message and its verdict; the latency in ns, or -1 (and c->failure). */
static gint64
exchange(Client *c, Wire *w, guint i)
{
	const Message *m = &c->messages[i % VARIANTS];
	g_autofree char *ar = NULL;
	char qid[32];
	gint64 start = hk_bench_now_ns(), latency;
	char v;

	g_snprintf(qid, sizeof(qid), "B%02X%07X", c->index, i);
	v = send_message(w, m, qid, AR_HEADER, &ar);
	latency = hk_bench_now_ns() - start;
	if (v == 0) {
		client_failed(c, "%s", w->error);
		return -1;
	}
	if (!accepted(v)) {
		g_autofree char *text = verdict_text(w, v);

		client_failed(c, "message %s: verdict %s", qid, text);
		return -1;
	}
	if (ar == NULL || strstr(ar, c->target->expect) == NULL) {
		client_failed(c, "message %s: %s: %s, expected %s", qid, AR_HEADER,
		              ar ? ar : "(none)", c->target->expect);
		return -1;
	}
	return latency;
}

static void *
client_run(void *data)
{
	Client *c = data;
	Wire *w = wire_open(c->target->socket);

	if (w->error != NULL)
		client_failed(c, "%s", w->error);
	for (guint i = 0; c->failure == NULL && i < c->warmup; i++)
		exchange(c, w, i);
	pthread_barrier_wait(c->start); /* every thread gets here, or the others wait forever */
	for (guint i = 0; c->failure == NULL && i < c->count; i++)
		c->latency_ns[i] = exchange(c, w, c->warmup + i);
	wire_close(w);
	return NULL;
}

static void
summarize(Result *res, Client *clients, double seconds)
{
	g_autofree gint64 **latencies = g_new(gint64 *, res->connections);

	for (guint i = 0; i < res->connections; i++)
		latencies[i] = clients[i].latency_ns;
	hk_bench_stats(&res->stats, latencies, res->connections, res->count, seconds);
}

/* Drives one filter with `connections` clients; fails the benchmark on a wrong verdict. */
static void
measure(Result *res, const Target *t, const Message *messages, guint connections, guint count,
        guint warmup)
{
	g_autofree Client *clients = g_new0(Client, connections);
	g_autofree pthread_t *threads = g_new(pthread_t, connections);
	pthread_barrier_t start;
	gint64 t0;
	double seconds;

	res->name = t->name;
	res->connections = connections;
	res->count = count;
	res->octets = 0;
	for (guint v = 0; v < VARIANTS; v++)
		res->octets += messages[v].octets / VARIANTS;
	pthread_barrier_init(&start, NULL, connections + 1);
	for (guint i = 0; i < connections; i++) {
		clients[i] = (Client){
		        t, messages, i, warmup, count, &start, g_new0(gint64, count), NULL};
		if (pthread_create(&threads[i], NULL, client_run, &clients[i]) != 0)
			bench_fail("pthread_create failed");
	}
	pthread_barrier_wait(&start);
	t0 = hk_bench_now_ns();
	for (guint i = 0; i < connections; i++)
		pthread_join(threads[i], NULL);
	seconds = (hk_bench_now_ns() - t0) / 1e9;
	pthread_barrier_destroy(&start);
	for (guint i = 0; i < connections; i++) {
		if (clients[i].failure != NULL)
			bench_fail("%s, %s: connection %u: %s", t->name, res->size, i,
			           clients[i].failure);
	}
	summarize(res, clients, seconds);
	for (guint i = 0; i < connections; i++)
		g_free(clients[i].latency_ns);
}

/* One message on a connection of its own: the Authentication-Results value, checked. */
static void
probe(const Target *t, const Message *m)
{
	Wire *w = wire_open(t->socket);
	g_autofree char *ar = NULL;
	char v = w->error ? 0 : send_message(w, m, "PROBE", AR_HEADER, &ar);

	if (v == 0)
		bench_fail("%s: %s", t->name, w->error);
	if (!accepted(v)) {
		g_autofree char *text = verdict_text(w, v);

		bench_fail("%s: the first message got verdict %s", t->name, text);
	}
	if (ar == NULL || strstr(ar, t->expect) == NULL)
		bench_fail("%s: the first message's %s is \"%s\", without %s", t->name, AR_HEADER,
		           ar ? ar : "(none)", t->expect);
	printf("%s: protocol flags 0x%05x; %s: %s\n", t->name, w->pflags, AR_HEADER, ar);
	wire_close(w);
}

/* ----- hanko: certd, alice's certificate, hanko-milter ----- */

/* alice@example.jp with an RSA-2048 certificate certd issued: key and certificate PEM. */
static char *
issue_alice(void)
{
	g_autofree char *p12 = g_build_filename(bench.dir, "alice.p12", NULL);
	char *pem = g_build_filename(bench.dir, "alice.pem", NULL);
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	g_autofree char *pass = NULL;
	g_autofree char *passin = NULL;
	const char *p;

	if (hk_test_ctl(bench.certd, NULL, &out, &err, "user", "add", "alice", "--email",
	                "alice@example.jp", NULL) != 0)
		bench_fail("hankoctl user add failed: %s%s", out, err);
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);
	if (hk_test_ctl(bench.certd, NULL, &out, &err, "cert", "issue", "--cn", "Alice", "--email",
	                "alice@example.jp", "--user", "alice", "--key", "rsa:2048", "-o", p12,
	                NULL) != 0)
		bench_fail("hankoctl cert issue failed: %s%s", out, err);
	p = strstr(out, "P12 password: ");
	if (p == NULL)
		bench_fail("no \"P12 password: \" in hankoctl's output:\n%s", out);
	pass = g_strndup(p + 14, strcspn(p + 14, "\n"));
	passin = g_strconcat("pass:", pass, NULL);
	{
		const char *argv[] = {"openssl", "pkcs12", "-in",  p12, "-passin",
		                      passin,    "-nodes", "-out", pem, NULL};

		run_ok(argv);
	}
	return pem;
}

static gboolean
milter_ready(const char *log)
{
	g_autofree char *text = read_file(log);

	return strstr(text, "hanko CA: ") != NULL;
}

static void
start_milter(void)
{
	g_autofree char *conf = g_build_filename(bench.dir, "hanko.conf", NULL);
	g_autofree char *tmp = g_build_filename(bench.dir, "tmp", NULL);
	g_autofree char *text = NULL;
	const char *argv[] = {MILTER, "-c", conf, "-f", NULL};

	bench.hanko.name = "hanko-milter";
	bench.hanko.socket = g_build_filename(bench.dir, "milter.sock", NULL);
	bench.hanko.expect = "smime=pass";
	bench.milter_log = g_build_filename(bench.dir, "milter.log", NULL);
	if (mkdir(tmp, 0700) != 0)
		bench_fail("mkdir %s: %s", tmp, g_strerror(errno));
	text = g_strdup_printf("[milter]\nlisten = unix:%s\ncertd_socket = %s\ntmp_dir = %s\n"
	                       "authserv_id = bench.example.jp\n",
	                       bench.hanko.socket, bench.certd->socket, tmp);
	write_file(conf, text);
	bench.milter = spawn_daemon("hanko-milter", argv, bench.milter_log);
	wait_ready("hanko-milter", &bench.milter, bench.milter_log, milter_ready, bench.milter_log);
	wait_ready("hanko-milter", &bench.milter, bench.milter_log, socket_answers,
	           bench.hanko.socket);
}

/* ----- opendkim: a signer that makes the DKIM corpus, a verifier under load ----- */

/* "bench._domainkey.example.jp v=DKIM1; ..." from opendkim-genkey's bench.txt, whose
 * record is split into quoted strings. */
static void
write_test_keys(const char *txt, const char *keys)
{
	g_autofree char *zone = read_file(txt);
	GString *record = g_string_new("bench._domainkey.example.jp ");
	const char *p = zone;

	while ((p = strchr(p, '"')) != NULL) {
		const char *end = strchr(p + 1, '"');

		if (end == NULL)
			break;
		g_string_append_len(record, p + 1, end - p - 1);
		p = end + 1;
	}
	if (strstr(record->str, "p=") == NULL)
		bench_fail("no public key in %s:\n%s", txt, zone);
	g_string_append_c(record, '\n');
	write_file(keys, record->str);
	g_string_free(record, TRUE);
}

static GPid
start_opendkim(Target *t, const char *mode, const char *settings)
{
	g_autofree char *conf = g_strdup_printf("%s/opendkim-%s.conf", bench.ddir, mode);
	g_autofree char *log = g_strdup_printf("%s/opendkim-%s.log", bench.ddir, mode);
	g_autofree char *text = NULL;
	const char *argv[] = {bench.opendkim, "-f", "-x", conf, NULL};
	GPid pid;

	t->socket = g_strdup_printf("%s/opendkim-%s.sock", bench.dir, mode);
	text = g_strdup_printf("Mode %s\nSocket local:%s\nPidFile %s/opendkim-%s.pid\n"
	                       "Syslog false\nBackground false\nUMask 077\n"
	                       "Canonicalization relaxed/relaxed\n"
	                       "AuthservID bench.example.jp\n%s",
	                       mode, t->socket, bench.ddir, mode, settings);
	write_file(conf, text);
	pid = spawn_daemon(t->name, argv, log);
	wait_ready(t->name, &pid, log, socket_answers, t->socket);
	return pid;
}

/* opendkim refuses a configuration or key file under a directory others may write to,
 * as /tmp is: its files go in the build tree (the sockets stay in bench.dir, whose path is
 * short enough for sun_path). */
static void
make_dkim_dir(void)
{
	bench.ddir = g_strdup(HK_TEST_BINDIR "/tests/bench/bench-milter-dkim-XXXXXX");
	if (g_mkdtemp_full(bench.ddir, 0700) == NULL)
		bench_fail("mkdtemp %s: %s", bench.ddir, g_strerror(errno));
}

static void
start_opendkim_all(void)
{
	g_autofree char *keydir = g_build_filename(bench.ddir, "keys", NULL);
	g_autofree char *genkey = find_program("opendkim-genkey");
	g_autofree char *keys = g_build_filename(keydir, "keys.txt", NULL);
	g_autofree char *txt = g_build_filename(keydir, "bench.txt", NULL);
	g_autofree char *sign = NULL;
	g_autofree char *verify = NULL;
	const char *argv[] = {genkey, "-b",    "2048", "-d",   "example.jp",
	                      "-s",   "bench", "-D",   keydir, NULL};

	bench.opendkim = find_program("opendkim");
	if (mkdir(keydir, 0700) != 0)
		bench_fail("mkdir %s: %s", keydir, g_strerror(errno));
	run_ok(argv);
	write_test_keys(txt, keys);
	sign = g_strdup_printf("Domain example.jp\nSelector bench\nKeyFile %s/bench.private\n",
	                       keydir);
	verify = g_strdup_printf("TestPublicKeys %s\n", keys);
	bench.sign.name = "opendkim (sign)";
	bench.verify.name = "opendkim";
	bench.verify.expect = "dkim=pass";
	bench.dkim_sign = start_opendkim(&bench.sign, "s", sign);
	bench.dkim_verify = start_opendkim(&bench.verify, "v", verify);
}

/* The plain messages through the signer: its DKIM-Signature makes the DKIM corpus. */
static void
sign_corpus(void)
{
	Wire *w = wire_open(bench.sign.socket);

	for (guint s = 0; s < 2; s++) {
		for (guint v = 0; v < VARIANTS && w->error == NULL; v++) {
			g_autofree char *sig = NULL;
			char verdict =
			        send_message(w, &bench.plain[s][v], "SIGN", DKIM_HEADER, &sig);

			if (verdict != 0 && !accepted(verdict))
				bench_fail("opendkim (sign): verdict '%c'", verdict);
			if (verdict != 0 && sig == NULL)
				bench_fail("opendkim (sign) added no %s; see its log in %s",
				           DKIM_HEADER, bench.ddir);
			if (verdict != 0)
				make_dkim(&bench.dkim[s][v], &bench.plain[s][v], sig);
		}
	}
	if (w->error != NULL)
		bench_fail("opendkim (sign): %s", w->error);
	wire_close(w);
}

/* ----- the run ----- */

static void
report(const Result *r)
{
	printf("%-13s %-5s %8zu %5u %8u %8.2f %9.1f %8.2f %8.2f\n", r->name, r->size, r->octets,
	       r->connections, r->connections * r->count, r->stats.seconds, r->stats.rate,
	       r->stats.p50_ms, r->stats.p99_ms);
}

static const char *
met(gboolean yes)
{
	return yes ? "met" : "NOT met";
}

static void
build_corpus(const char *signer)
{
	static const gsize sizes[2] = {SMALL, LARGE};
	static const char *const labels[2] = {"4KB", "1MB"};

	for (guint s = 0; s < 2; s++) {
		for (guint v = 0; v < VARIANTS; v++) {
			make_plain(&bench.plain[s][v], sizes[s], labels[s], v);
			make_smime(&bench.smime[s][v], signer, sizes[s], labels[s], v);
		}
	}
}

static void
free_corpus(void)
{
	for (guint s = 0; s < 2; s++) {
		for (guint v = 0; v < VARIANTS; v++) {
			message_clear(&bench.plain[s][v]);
			message_clear(&bench.smime[s][v]);
			message_clear(&bench.dkim[s][v]);
		}
	}
}

static void
stop_all(void)
{
	int status = stop_daemon("hanko-milter", &bench.milter);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		bench_fail("hanko-milter did not stop cleanly (status %d); see %s", status,
		           bench.milter_log);
	stop_daemon("opendkim (sign)", &bench.dkim_sign);
	status = stop_daemon("opendkim", &bench.dkim_verify);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		bench_fail("opendkim did not stop cleanly (status %d)", status);
	hk_test_certd_stop(bench.certd);
	bench.certd = NULL;
}

int
main(int argc, char **argv)
{
	guint conns = hk_bench_env_uint("HANKO_BENCH_CONNECTIONS", 8),
	      n = hk_bench_env_uint("HANKO_BENCH_N", 10);
	guint count[2] = {n * 50, n * 2}, warmup[2] = {MAX(5, n * 5), 1};
	g_autoptr(GError) error = NULL;
	g_autofree char *signer = NULL;
	Result hanko[2] = {{.size = "4KB"}, {.size = "1MB"}};
	Result dkim[2] = {{.size = "4KB"}, {.size = "1MB"}};

	g_test_init(&argc, &argv, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench.dir = g_dir_make_tmp("hanko-bench-milter-XXXXXX", &error);
	if (bench.dir == NULL)
		bench_fail("%s", error->message);
	bench.certd = hk_test_certd_start(NULL);
	hk_test_certd_ca_init(bench.certd);
	signer = issue_alice();
	build_corpus(signer);
	make_dkim_dir();
	start_opendkim_all();
	sign_corpus();
	stop_daemon("opendkim (sign)", &bench.dkim_sign);
	start_milter();
	probe(&bench.hanko, &bench.smime[0][0]);
	probe(&bench.verify, &bench.dkim[0][0]);

	/* alternately, each size: hanko-milter, then opendkim */
	for (guint s = 0; s < 2; s++) {
		measure(&hanko[s], &bench.hanko, bench.smime[s], conns, count[s], warmup[s]);
		measure(&dkim[s], &bench.verify, bench.dkim[s], conns, count[s], warmup[s]);
	}
	stop_all();

	printf("%-13s %-5s %8s %5s %8s %8s %9s %8s %8s\n", "filter", "size", "octets", "conns",
	       "messages", "seconds", "msg/s", "p50 ms", "p99 ms");
	for (guint s = 0; s < 2; s++) {
		report(&hanko[s]);
		report(&dkim[s]);
	}
	for (guint s = 0; s < 2; s++) {
		double ratio = hanko[s].stats.rate / dkim[s].stats.rate;

		printf("hanko-milter / opendkim throughput, %s: %.2fx (target >= 1.0x: %s)\n",
		       hanko[s].size, ratio, met(ratio >= 1.0));
	}
	free_corpus();
	g_free(bench.hanko.socket);
	g_free(bench.verify.socket);
	g_free(bench.sign.socket);
	g_free(bench.opendkim);
	g_free(bench.milter_log);
	hk_test_remove_tree(bench.dir);
	hk_test_remove_tree(bench.ddir);
	g_free(bench.dir);
	g_free(bench.ddir);
	return 0;
}
