/*
 * bench-policyd: hanko-policyd answering Postfix policy requests on cache hits, against the
 * anchors issue 4 names, in one run on one machine:
 *
 *   hanko-policyd  with a real hanko-certd behind it and a certificate certd issued, so that
 *                  every request is a cache hit that ends in action=OK;
 *   the floor      a trivial server forked from this program (one process, one epoll loop,
 *                  like policyd) that answers action=DUNNO to every request, looking for
 *                  nothing but the empty line;
 *   postfwd2       (Debian package postfwd) with one equivalent rule on ccert_fingerprint.
 *
 * Each is driven by the same load: C parallel connections (HANKO_BENCH_CONNECTIONS, 8),
 * each a client thread that, as Postfix's smtpd does, reuses its socket and waits for each
 * answer in poll() with a deadline before it reads; each sends the RCPT-state requests
 * Postfix 3.7 sends (all attributes, pre-formatted once) and times each answer with the
 * monotonic clock; after a warm-up, HANKO_BENCH_N * 100 requests per
 * connection (a tenth of that for postfwd2, which is much slower). Prints requests/s,
 * p50/p99 latency and the ratios with the targets of issue 4. A benchmark, not a test: it
 * exits 0 whether or not the targets are met, and non-zero only when something does not
 * work (a wrong answer, a daemon that does not start).
 *
 * Talks to: hanko-certd, hanko-policyd and hankoctl of the build tree, postfwd2 from the
 * system. Must never: leave a process running (policyd and the floor die with this
 * process; postfwd2 daemonizes, so every exit path after its start stops it), or wait
 * without a bound.
 */
#include "hk-ipc.h"
#include "hk-bench.h"
#include "hk-test-certd.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLICYD     HK_TEST_BINDIR "/policyd/hanko-policyd"
#define WAIT_US     (10 * G_USEC_PER_SEC)
#define VARIANTS    8 /* requests cycled on one connection: other recipients, queue ids */
#define REPLY_OK    "action=OK\n\n"
#define REPLY_DUNNO "action=DUNNO\n\n"

typedef struct {
	const char *path; /* a UNIX socket, or NULL for 127.0.0.1:port */
	int port;
} Endpoint;

typedef struct {
	char *data;
	gsize len;
} Request;

typedef struct {
	const Endpoint *endpoint;
	const char *expect;      /* the whole reply */
	const Request *requests; /* VARIANTS of them */
	guint warmup, count;
	pthread_barrier_t *start;
	gint64 *latency_ns; /* count of them */
	char *failure;      /* NULL while all goes well */
} Client;

typedef struct {
	const char *name;
	guint connections, count;
	HkBenchStats stats;
} Result;

typedef struct {
	char *dir; /* policyd's sockets and log, the floor's sockets, postfwd2's files */
	HkTestCertd *certd;
	char *fp, *pubkey_fp;
	GPid policyd;
	pid_t floor;
	pid_t postfwd; /* postfwd2's master, once started */
	Endpoint policyd_tcp, policyd_unix, floor_tcp, floor_unix, postfwd_tcp;
} Bench;

static Bench bench;

/* ----- small helpers ----- */

static void stop_postfwd(void);

/* Something does not work: stop what would outlive us, and exit non-zero. */
static G_NORETURN void G_GNUC_PRINTF(1, 2) bench_fail(const char *format, ...)
{
	va_list args;

	va_start(args, format);
	fprintf(stderr, "bench-policyd: ");
	vfprintf(stderr, format, args);
	fprintf(stderr, "\n");
	va_end(args);
	stop_postfwd();
	if (bench.dir != NULL)
		fprintf(stderr, "bench-policyd: logs kept in %s\n", bench.dir);
	exit(1);
}

static int
free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		bench_fail("no free port: %s", g_strerror(errno));
	close(fd);
	return ntohs(sin.sin_port);
}

static int
endpoint_connect(const Endpoint *ep)
{
	struct timeval tv = {.tv_sec = 10};
	int fd;

	if (ep->path != NULL) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};

		g_strlcpy(sun.sun_path, ep->path, sizeof(sun.sun_path));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
			close(fd);
			fd = -1;
		}
	} else {
		struct sockaddr_in sin = {.sin_family = AF_INET,
		                          .sin_port = htons((guint16)ep->port),
		                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return fd;
}

static const char *
endpoint_name(const Endpoint *ep)
{
	return ep->path != NULL ? "unix" : "tcp";
}

/* ----- the requests: what Postfix 3.7's smtpd sends at RCPT TO (SMTPD_POLICY_README) ----- */

static Request
format_request(guint conn, guint v)
{
	Request r;

	r.data = g_strdup_printf("request=smtpd_access_policy\n"
	                         "protocol_state=RCPT\n"
	                         "protocol_name=ESMTP\n"
	                         "helo_name=mua%u.example.org\n"
	                         "queue_id=4F2A%02X%04X\n"
	                         "sender=alice@example.org\n"
	                         "recipient=rcpt%u@example.net\n"
	                         "recipient_count=%u\n"
	                         "client_address=192.0.2.%u\n"
	                         "client_name=mua%u.example.org\n"
	                         "reverse_client_name=mua%u.example.org\n"
	                         "instance=%x.65a1f3c2.%x.%u\n"
	                         "sasl_method=\n"
	                         "sasl_username=\n"
	                         "sasl_sender=\n"
	                         "size=%u\n"
	                         "ccert_subject=Alice\n"
	                         "ccert_issuer=hanko+20Test+20CA\n"
	                         "ccert_fingerprint=%s\n"
	                         "encryption_protocol=TLSv1.3\n"
	                         "encryption_cipher=TLS_AES_256_GCM_SHA384\n"
	                         "encryption_keysize=256\n"
	                         "etrn_domain=\n"
	                         "stress=\n"
	                         "ccert_pubkey_fingerprint=%s\n"
	                         "client_port=%u\n"
	                         "policy_context=\n"
	                         "server_address=198.51.100.25\n"
	                         "server_port=587\n"
	                         "\n",
	                         conn, conn, v, v, v, 10 + conn, conn, conn, 0x1000 + conn,
	                         0x2000 + v, v, 12345 + 1000 * v, bench.fp, bench.pubkey_fp,
	                         40000 + conn);
	r.len = strlen(r.data);
	return r;
}

/* ----- the load: one blocking client per connection ----- */

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

/* smtpd_policy_service_timeout is 100 s; a server that takes 30 s is broken here */
#define ANSWER_TIMEOUT_MS 30000

/* One request and its answer; the latency in ns, or -1 (and c->failure). */
static gint64
exchange(Client *c, int fd, guint i)
{
	const Request *r = &c->requests[i % VARIANTS];
	gsize expect_len = strlen(c->expect), got = 0, sent = 0;
	char buf[256];
	gint64 start = hk_bench_now_ns();

	while (sent < r->len) {
		ssize_t n = send(fd, r->data + sent, r->len - sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			client_failed(c, "send: %s", g_strerror(errno));
			return -1;
		}
		sent += (gsize)n;
	}
	while (got < 2 || buf[got - 1] != '\n' || buf[got - 2] != '\n') {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		/* as smtpd does (timed_read): wait for the answer in poll() with a deadline,
		 * then read */
		if (poll(&pfd, 1, ANSWER_TIMEOUT_MS) == 0) {
			client_failed(c, "no answer within %d s", ANSWER_TIMEOUT_MS / 1000);
			return -1;
		}
		n = got < sizeof(buf) ? recv(fd, buf + got, sizeof(buf) - got, 0) : -2;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			client_failed(c, "reading the answer: %s",
			              n == 0    ? "connection closed"
			              : n == -2 ? "answer too long"
			                        : g_strerror(errno));
			return -1;
		}
		got += (gsize)n;
	}
	if (got != expect_len || memcmp(buf, c->expect, got) != 0) {
		client_failed(c, "answer \"%.*s\", expected \"%s\"", (int)got - 2, buf, c->expect);
		return -1;
	}
	return hk_bench_now_ns() - start;
}

static void *
client_run(void *data)
{
	Client *c = data;
	int fd = endpoint_connect(c->endpoint);

	if (fd < 0)
		client_failed(c, "connect: %s", g_strerror(errno));
	for (guint i = 0; fd >= 0 && c->failure == NULL && i < c->warmup; i++)
		exchange(c, fd, i);
	pthread_barrier_wait(c->start); /* every thread gets here, or the others wait forever */
	for (guint i = 0; fd >= 0 && c->failure == NULL && i < c->count; i++)
		c->latency_ns[i] = exchange(c, fd, c->warmup + i);
	if (fd >= 0)
		close(fd);
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

/* Drives one subject with `connections` clients; fails the benchmark on a wrong answer. */
static void
measure(Result *res, const Endpoint *ep, const char *expect, guint connections, guint count)
{
	g_autofree Client *clients = g_new0(Client, connections);
	g_autofree pthread_t *threads = g_new(pthread_t, connections);
	g_autofree Request *requests = g_new(Request, (gsize)connections * VARIANTS);
	pthread_barrier_t start;
	gint64 t0;
	double seconds;

	res->connections = connections;
	res->count = count;
	pthread_barrier_init(&start, NULL, connections + 1);
	for (guint i = 0; i < connections; i++) {
		for (guint v = 0; v < VARIANTS; v++)
			requests[i * VARIANTS + v] = format_request(i, v);
		clients[i] = (Client){ep,    expect, &requests[i * VARIANTS], MAX(10, count / 10),
		                      count, &start, g_new0(gint64, count),   NULL};
		pthread_create(&threads[i], NULL, client_run, &clients[i]);
	}
	pthread_barrier_wait(&start);
	t0 = hk_bench_now_ns();
	for (guint i = 0; i < connections; i++)
		pthread_join(threads[i], NULL);
	seconds = (hk_bench_now_ns() - t0) / 1e9;
	pthread_barrier_destroy(&start);
	for (guint i = 0; i < connections; i++) {
		if (clients[i].failure != NULL)
			bench_fail("%s (%s): connection %u: %s", res->name, endpoint_name(ep), i,
			           clients[i].failure);
	}
	summarize(res, clients, seconds);
	for (guint i = 0; i < connections; i++)
		g_free(clients[i].latency_ns);
	for (guint i = 0; i < connections * VARIANTS; i++)
		g_free(requests[i].data);
}

/* ----- the floor: answers every request, parsing nothing but the empty line ----- */

static int
listen_on(const Endpoint *ep)
{
	int fd;

	if (ep->path != NULL) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};

		g_strlcpy(sun.sun_path, ep->path, sizeof(sun.sun_path));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
			bench_fail("floor: bind %s: %s", ep->path, g_strerror(errno));
	} else {
		struct sockaddr_in sin = {.sin_family = AF_INET,
		                          .sin_port = htons((guint16)ep->port),
		                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int one = 1;

		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
			bench_fail("floor: bind port %d: %s", ep->port, g_strerror(errno));
	}
	if (listen(fd, 128) != 0)
		bench_fail("floor: listen: %s", g_strerror(errno));
	return fd;
}

/* A connection's bytes: counts the requests ended (an empty line: "\n\n", the first
 * newline possibly in an earlier read) and answers each. */
static gboolean
floor_serve_conn(int fd, gboolean *after_nl)
{
	static const char reply[] = REPLY_DUNNO;
	char in[16384], out[sizeof(in) / 2 * (sizeof(reply) - 1)];
	ssize_t n = read(fd, in, sizeof(in));
	gsize replies = 0, len = 0;

	if (n <= 0)
		return n < 0 && errno == EAGAIN;
	for (ssize_t i = 0; i < n; i++) {
		if (in[i] != '\n')
			*after_nl = FALSE;
		else if (*after_nl) {
			replies++;
			*after_nl = FALSE;
		} else
			*after_nl = TRUE;
	}
	for (gsize i = 0; i < replies; i++, len += sizeof(reply) - 1)
		memcpy(out + len, reply, sizeof(reply) - 1);
	for (gsize sent = 0; sent < len;) {
		ssize_t w = write(fd, out + sent, len - sent);

		if (w < 0 && errno != EINTR && errno != EAGAIN)
			return FALSE;
		sent += w > 0 ? (gsize)w : 0;
	}
	return TRUE;
}

#define FLOOR_MAX_FD 4096

static G_NORETURN void
floor_main(int tcp, int unx)
{
	static gboolean after_nl[FLOOR_MAX_FD];
	struct epoll_event ev = {.events = EPOLLIN}, events[64];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	ev.data.fd = tcp;
	epoll_ctl(ep, EPOLL_CTL_ADD, tcp, &ev);
	ev.data.fd = unx;
	epoll_ctl(ep, EPOLL_CTL_ADD, unx, &ev);
	for (;;) {
		int n = epoll_wait(ep, events, G_N_ELEMENTS(events), -1);

		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;

			if (fd == tcp || fd == unx) {
				int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (c < 0 || c >= FLOOR_MAX_FD) {
					if (c >= 0)
						close(c);
					continue;
				}
				after_nl[c] = FALSE;
				ev.data.fd = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
			} else if (!floor_serve_conn(fd, &after_nl[fd])) {
				close(fd); /* also leaves the epoll set */
			}
		}
	}
}

/* Forked before any thread exists; it dies with us (PR_SET_PDEATHSIG). */
static void
start_floor(void)
{
	pid_t parent = getpid();
	int tcp = listen_on(&bench.floor_tcp), unx = listen_on(&bench.floor_unix);

	bench.floor = fork();
	if (bench.floor < 0)
		bench_fail("fork: %s", g_strerror(errno));
	if (bench.floor == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		floor_main(tcp, unx);
	}
	close(tcp);
	close(unx);
}

static void
stop_floor(void)
{
	hk_test_kill(&bench.floor, SIGTERM);
}

/* ----- hanko: certd, a certificate, policyd ----- */

static char *
ctl_field(const char *out, const char *name)
{
	g_autofree char *prefix = g_strdup_printf("%s: ", name);
	const char *p = strstr(out, prefix);

	if (p == NULL)
		bench_fail("no \"%s\" in hankoctl's output:\n%s", name, out);
	p += strlen(prefix);
	return g_strndup(p, strcspn(p, "\n"));
}

static void
ctl_ok(char **out, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autofree char *local = NULL;
	g_autofree char *err = NULL;
	const char *arg;
	va_list args;

	g_ptr_array_add(argv, (gpointer)HK_TEST_CTL_BIN);
	g_ptr_array_add(argv, (gpointer) "-c");
	g_ptr_array_add(argv, bench.certd->conf);
	va_start(args, out);
	while ((arg = va_arg(args, const char *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(args);
	g_ptr_array_add(argv, NULL);
	if (hk_test_runv(NULL, &local, &err, (const char *const *)argv->pdata) != 0)
		bench_fail("hankoctl %s failed: %s%s", (char *)argv->pdata[3], local, err);
	if (out != NULL)
		*out = g_steal_pointer(&local);
}

/* "AB:CD:..." as Postfix writes fingerprints */
static char *
colon_hex(const unsigned char *md, unsigned int len)
{
	GString *hex = g_string_new(NULL);

	for (unsigned int i = 0; i < len; i++)
		g_string_append_printf(hex, i ? ":%02X" : "%02X", md[i]);
	return g_string_free(hex, FALSE);
}

/* The SHA-256 of the certificate's public key (ccert_pubkey_fingerprint), from the
 * cert.pem certd keeps whose own fingerprint is bench.fp. */
static char *
pubkey_fingerprint(void)
{
	g_autofree char *certs = g_build_filename(bench.certd->state, "certs", NULL);
	g_autoptr(GDir) dir = g_dir_open(certs, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *path = g_build_filename(certs, name, "cert.pem", NULL);
		FILE *f = fopen(path, "r");
		X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
		unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
		unsigned int len = 0;
		g_autofree char *fp = NULL;
		char *pubkey = NULL;
		int der_len;

		if (f != NULL)
			fclose(f);
		if (x == NULL)
			continue;
		X509_digest(x, EVP_sha256(), md, &len);
		fp = colon_hex(md, len);
		der_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
		if (g_ascii_strcasecmp(fp, bench.fp) == 0 && der_len > 0 &&
		    EVP_Digest(der, (size_t)der_len, md, &len, EVP_sha256(), NULL))
			pubkey = colon_hex(md, len);
		OPENSSL_free(der);
		X509_free(x);
		if (pubkey != NULL)
			return pubkey;
	}
	bench_fail("no cert.pem with fingerprint %s under %s", bench.fp, certs);
}

/* A user and a certificate for her, issued by certd: its two fingerprints. */
static void
issue_certificate(void)
{
	g_autofree char *p12 = g_build_filename(bench.dir, "alice.p12", NULL);
	g_autofree char *out = NULL;

	ctl_ok(NULL, "user", "add", "alice", "--email", "alice@example.org", NULL);
	ctl_ok(&out, "cert", "issue", "--cn", "Alice", "--email", "alice@example.org", "--user",
	       "alice", "--key", "ec:p256", "-o", p12, NULL);
	bench.fp = ctl_field(out, "fingerprint");
	bench.pubkey_fp = pubkey_fingerprint();
}

static void
write_policyd_conf(const char *admin)
{
	g_autofree char *text = NULL;
	g_autofree char *conf = NULL;

	if (!g_file_get_contents(bench.certd->conf, &text, NULL, NULL))
		bench_fail("cannot read %s", bench.certd->conf);
	conf = g_strdup_printf("%s\n[policyd]\n"
	                       "policy_listen = unix:%s, inet:127.0.0.1:%d\n"
	                       "auth_listen =\n"
	                       "admin_socket = %s\n"
	                       "admin_group =\n"
	                       "certd_socket = %s\n",
	                       text, bench.policyd_unix.path, bench.policyd_tcp.port, admin,
	                       bench.certd->socket);
	if (!g_file_set_contents(bench.certd->conf, conf, -1, NULL))
		bench_fail("cannot write %s", bench.certd->conf);
}

static gboolean
admin_answers(const char *admin)
{
	g_autoptr(HkIpcClient) client = hk_ipc_client_connect(admin, 2000, NULL);
	g_autoptr(json_object) result = NULL;

	if (client == NULL)
		return FALSE;
	result = hk_ipc_client_call(client, "ping", NULL, NULL);
	return result != NULL;
}

/* In the foreground, without -d: logs as in production, one line per decision. */
static void
start_policyd(void)
{
	g_autofree char *admin = g_build_filename(bench.dir, "admin.sock", NULL);
	g_autofree char *log = g_build_filename(bench.dir, "policyd.log", NULL);
	const char *argv[] = {POLICYD, "-f", "-c", bench.certd->conf, NULL};
	g_autoptr(GError) error = NULL;
	int log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	gint64 deadline = g_get_monotonic_time() + WAIT_US;
	int status;

	write_policyd_conf(admin);
	if (log_fd < 0 ||
	    !g_spawn_async_with_fds(bench.dir, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
	                            hk_test_die_with_parent, GINT_TO_POINTER(getpid()),
	                            &bench.policyd, -1, log_fd, log_fd, &error))
		bench_fail("cannot start hanko-policyd: %s", error ? error->message : log);
	close(log_fd);
	while (!admin_answers(admin)) {
		if (waitpid(bench.policyd, &status, WNOHANG) == bench.policyd)
			bench_fail("hanko-policyd exited at start (status %d); see %s", status,
			           log);
		if (g_get_monotonic_time() > deadline)
			bench_fail("hanko-policyd did not answer within 10 s; see %s", log);
		g_usleep(10 * 1000);
	}
}

static void
stop_policyd(void)
{
	int status = hk_test_kill(&bench.policyd, SIGTERM);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		bench_fail("hanko-policyd did not stop cleanly (status %d)", status);
}

/* ----- postfwd2: one rule, as equivalent as its syntax allows ----- */

static pid_t
read_pidfile(const char *path)
{
	g_autofree char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return 0;
	return (pid_t)atoi(text);
}

static gboolean
process_gone(pid_t pid)
{
	g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", (int)pid);
	g_autofree char *stat = NULL;
	const char *end;

	if (kill(pid, 0) != 0)
		return TRUE;
	/* a zombie whose parent (here, often a PID 1 that does not reap) has not reaped it */
	if (!g_file_get_contents(stat_path, &stat, NULL, NULL))
		return TRUE;
	end = strrchr(stat, ')');
	return end != NULL && end[1] == ' ' && end[2] == 'Z';
}

/* postfwd2 daemonizes (its --nodaemon mode reads requests from stdin, it does not
 * listen): its launcher exits and the master's pid is in its pid file. */
static void
start_postfwd(const char *postfwd2)
{
	g_autofree char *rules = g_build_filename(bench.dir, "postfwd.cf", NULL);
	g_autofree char *rule =
	        g_strdup_printf("id=HANKO; ccert_fingerprint==%s; action=OK\n", bench.fp);
	g_autofree char *pidfile = g_build_filename(bench.dir, "postfwd2.pid", NULL);
	g_autofree char *cache = g_strdup_printf("unix::%s/postfwd2-cache.sock", bench.dir);
	g_autofree char *server = g_strdup_printf("tcp:127.0.0.1:%d", bench.postfwd_tcp.port);
	g_autofree char *log = g_build_filename(bench.dir, "postfwd2.log", NULL);
	struct group *gr = getgrgid(getgid());
	const char *argv[] = {postfwd2,
	                      "--file",
	                      rules,
	                      "--nodns",
	                      "--server_socket",
	                      server,
	                      "--cache_socket",
	                      cache,
	                      "--pidfile",
	                      pidfile,
	                      "--user",
	                      g_get_user_name(),
	                      "--group",
	                      gr ? gr->gr_name : "nogroup",
	                      NULL};
	g_autoptr(GError) error = NULL;
	int log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	gint64 deadline = g_get_monotonic_time() + WAIT_US;
	GPid launcher;
	int status, fd;

	if (!g_file_set_contents(rules, rule, -1, NULL))
		bench_fail("cannot write %s", rules);
	if (log_fd < 0 ||
	    !g_spawn_async_with_fds(bench.dir, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL,
	                            NULL, &launcher, -1, log_fd, log_fd, &error))
		bench_fail("cannot start postfwd2: %s", error ? error->message : log);
	close(log_fd);
	while (waitpid(launcher, &status, WNOHANG) != launcher) {
		if (g_get_monotonic_time() > deadline) {
			kill(launcher, SIGKILL);
			bench_fail("postfwd2 did not daemonize within 10 s; see %s", log);
		}
		g_usleep(10 * 1000);
	}
	g_spawn_close_pid(launcher);
	while ((bench.postfwd = read_pidfile(pidfile)) == 0 ||
	       (fd = endpoint_connect(&bench.postfwd_tcp)) < 0) {
		if (g_get_monotonic_time() > deadline)
			bench_fail(
			        "postfwd2 did not listen within 10 s (launcher status %d); see %s",
			        status, log);
		g_usleep(20 * 1000);
	}
	close(fd);
}

/* TERM to the master, which stops its cache and policy daemons; KILL to its session
 * (it called setsid) if that does not end it within 10 s. */
static void
stop_postfwd(void)
{
	gint64 deadline = g_get_monotonic_time() + WAIT_US;
	pid_t pid = bench.postfwd;

	if (pid <= 0)
		return;
	bench.postfwd = 0;
	kill(pid, SIGTERM);
	while (!process_gone(pid)) {
		if (g_get_monotonic_time() > deadline) {
			fprintf(stderr, "bench-policyd: postfwd2 ignored SIGTERM; killing it\n");
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			return;
		}
		g_usleep(20 * 1000);
	}
}

/* ----- the run ----- */

static void
report(const Result *r, const Endpoint *ep)
{
	printf("%-14s %-4s %5u %8u %8.2f %10.0f %8.3f %8.3f\n", r->name, endpoint_name(ep),
	       r->connections, r->connections * r->count, r->stats.seconds, r->stats.rate,
	       r->stats.p50_ms, r->stats.p99_ms);
}

static const char *
met(gboolean yes)
{
	return yes ? "met" : "NOT met";
}

static void
setup_endpoints(void)
{
	bench.policyd_unix.path = g_build_filename(bench.dir, "policy.sock", NULL);
	bench.floor_unix.path = g_build_filename(bench.dir, "floor.sock", NULL);
	bench.policyd_tcp.port = free_port();
	bench.floor_tcp.port = free_port();
	bench.postfwd_tcp.port = free_port();
}

int
main(int argc, char **argv)
{
	guint conns = hk_bench_env_uint("HANKO_BENCH_CONNECTIONS", 8);
	guint count = hk_bench_env_uint("HANKO_BENCH_N", 100) * 100, count_pf = MAX(20, count / 10);
	g_autofree char *postfwd2 = g_find_program_in_path("postfwd2");
	g_autoptr(GError) error = NULL;
	Result hanko_tcp = {"hanko-policyd"}, hanko_unix = {"hanko-policyd"};
	Result floor_tcp = {"floor"}, floor_unix = {"floor"}, postfwd = {"postfwd2"};
	double r_floor, r_floor_unix, r_postfwd;

	g_test_init(&argc, &argv, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* contrib/scripts/install-deps.sh test installs it: missing, the setup is broken */
	if (postfwd2 == NULL)
		bench_fail("postfwd2 is missing: install the Debian package postfwd "
		           "(contrib/scripts/install-deps.sh test)");
	bench.dir = g_dir_make_tmp("hanko-bench-policyd-XXXXXX", &error);
	if (bench.dir == NULL)
		bench_fail("%s", error->message);
	setup_endpoints();
	start_floor(); /* first: forked before any thread exists */
	bench.certd = hk_test_certd_start(NULL);
	hk_test_certd_ca_init(bench.certd);
	issue_certificate();
	start_policyd();

	/* the cache warms in the warm-up of the first measurement: policyd must say OK */
	measure(&floor_tcp, &bench.floor_tcp, REPLY_DUNNO, conns, count);
	measure(&hanko_tcp, &bench.policyd_tcp, REPLY_OK, conns, count);
	measure(&floor_unix, &bench.floor_unix, REPLY_DUNNO, conns, count);
	measure(&hanko_unix, &bench.policyd_unix, REPLY_OK, conns, count);
	start_postfwd(postfwd2);
	measure(&postfwd, &bench.postfwd_tcp, REPLY_OK, conns, count_pf);
	stop_postfwd();

	stop_policyd();
	stop_floor();
	hk_test_certd_stop(bench.certd);

	printf("%-14s %-4s %5s %8s %8s %10s %8s %8s\n", "server", "via", "conns", "requests",
	       "seconds", "req/s", "p50 ms", "p99 ms");
	report(&floor_tcp, &bench.floor_tcp);
	report(&hanko_tcp, &bench.policyd_tcp);
	report(&floor_unix, &bench.floor_unix);
	report(&hanko_unix, &bench.policyd_unix);
	report(&postfwd, &bench.postfwd_tcp);
	r_floor = hanko_tcp.stats.rate / floor_tcp.stats.rate;
	r_floor_unix = hanko_unix.stats.rate / floor_unix.stats.rate;
	r_postfwd = hanko_tcp.stats.rate / postfwd.stats.rate;
	printf("hanko-policyd / floor throughput (tcp): %.2fx (target >= 0.7x: %s)\n", r_floor,
	       met(r_floor >= 0.7));
	printf("hanko-policyd / floor throughput (unix): %.2fx (target >= 0.7x: %s)\n",
	       r_floor_unix, met(r_floor_unix >= 0.7));
	printf("hanko-policyd / postfwd2 throughput (tcp): %.1fx (target >= 10x: %s)\n", r_postfwd,
	       met(r_postfwd >= 10));
	printf("hanko-policyd p99 at %u connections: %.3f ms tcp, %.3f ms unix (target < 1 ms: "
	       "%s)\n",
	       conns, hanko_tcp.stats.p99_ms, hanko_unix.stats.p99_ms,
	       met(hanko_tcp.stats.p99_ms < 1 && hanko_unix.stats.p99_ms < 1));
	hk_test_remove_tree(bench.dir);
	return 0;
}
