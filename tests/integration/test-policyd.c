/*
 * test-policyd: hanko-policyd as built, with a real hanko-certd, over real sockets; and
 * with a real Postfix (Debian package) and swaks, the scenarios of issue 4.
 *
 * Each test gets certd's temporary directory (hanko.conf, which holds the [policyd]
 * section too) and one for policyd (sockets, policyd.log), read back to assert what was
 * logged. Every wait is a bounded poll.
 *
 * Talks to: hanko-certd, hanko-policyd and hankoctl of the build tree; postfix, swaks and
 * openssl from the system. Must never: leave a daemon running (PR_SET_PDEATHSIG, and the
 * teardown kills and reaps), or touch the system's own Postfix.
 */
#include "hk-test-certd.h"
#include "hk-test-postfix.h"
#include "hk-config.h"
#include "hk-ipc.h"
#include "hk-json.h"
#include "policyd.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLICYD HK_TEST_BINDIR "/policyd/hanko-policyd"
#define EXAMPLE HK_TEST_SRCDIR "/contrib/hanko.conf"
#define WAIT_US (10 * G_USEC_PER_SEC)

#define NO_OWNER                                                                                   \
	"REJECT 5.7.1 <bob@example.org>: sender address not owned by certificate user <alice>"

typedef struct {
	HkTestCertd *certd;
	char *dir;    /* policyd's: sockets and log */
	char *policy; /* dir/policy.sock */
	char *admin;  /* dir/admin.sock */
	char *log;    /* dir/policyd.log */
	int inet_port;
	GPid pid;
	char *fp;       /* alice's certificate */
	char *cert_pem; /* dir/alice.crt */
	char *key_pem;  /* dir/alice.key */
} Fixture;

/* ----- processes ----- */

static void
die_with_parent(gpointer parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != GPOINTER_TO_INT(parent))
		_exit(127);
}

static char *
policyd_log(Fixture *fx)
{
	char *log = NULL;

	return g_file_get_contents(fx->log, &log, NULL, NULL) ? log : g_strdup("");
}

static gboolean
admin_answers(Fixture *fx)
{
	g_autoptr(HkIpcClient) client = hk_ipc_client_connect(fx->admin, 2000, NULL);
	g_autoptr(json_object) result = NULL;

	if (client == NULL)
		return FALSE;
	result = hk_ipc_client_call(client, "ping", NULL, NULL);
	return result != NULL;
}

static void
spawn_policyd(Fixture *fx)
{
	const char *argv[] = {POLICYD, "-f", "-d", "-c", fx->certd->conf, NULL};
	g_autoptr(GError) error = NULL;
	int log_fd = open(fx->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	gint64 deadline = g_get_monotonic_time() + WAIT_US;
	int status;

	g_assert_cmpint(log_fd, >=, 0);
	g_spawn_async_with_fds(fx->dir, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
	                       die_with_parent, GINT_TO_POINTER(getpid()), &fx->pid, -1, log_fd,
	                       log_fd, &error);
	close(log_fd);
	g_assert_no_error(error);
	while (!admin_answers(fx)) {
		if (waitpid(fx->pid, &status, WNOHANG) == fx->pid) {
			g_autofree char *log = policyd_log(fx);

			fx->pid = 0;
			g_error("hanko-policyd exited (status %d) at start:\n%s", status, log);
		}
		g_assert_cmpint(g_get_monotonic_time(), <, deadline);
		g_usleep(10 * 1000);
	}
}

static int
free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sin, &len), ==, 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* The [policyd] section, appended to the hanko.conf certd runs on. */
static void
append_policyd_conf(Fixture *fx)
{
	g_autofree char *text = NULL;
	g_autofree char *conf = NULL;

	g_assert_true(g_file_get_contents(fx->certd->conf, &text, NULL, NULL));
	conf = g_strdup_printf("%s\n[policyd]\n"
	                       "policy_listen = unix:%s, inet:127.0.0.1:%d\n"
	                       "auth_listen =\n"
	                       "admin_socket = %s\n"
	                       "admin_group =\n"
	                       "socket_mode = 0666\n"
	                       "certd_socket = %s\n"
	                       "certd_timeout = 1s\n"
	                       "action_no_cert = REJECT 5.7.1 client certificate required\n",
	                       text, fx->policy, fx->inet_port, fx->admin, fx->certd->socket);
	g_assert_true(g_file_set_contents(fx->certd->conf, conf, -1, NULL));
}

/* ----- certificates ----- */

static char *
field_of(const char *out, const char *name)
{
	g_autofree char *prefix = g_strdup_printf("%s: ", name);
	const char *p = strstr(out, prefix);

	g_assert_nonnull(p);
	p += strlen(prefix);
	return g_strndup(p, strcspn(p, "\n"));
}

static void
ctl_ok(Fixture *fx, char **out, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autofree char *err = NULL;
	g_autofree char *local = NULL;
	const char *arg;
	va_list args;
	int status;

	g_ptr_array_add(argv, (gpointer)HK_TEST_CTL_BIN);
	g_ptr_array_add(argv, (gpointer) "-c");
	g_ptr_array_add(argv, fx->certd->conf);
	va_start(args, out);
	while ((arg = va_arg(args, const char *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(args);
	g_ptr_array_add(argv, NULL);
	status = hk_test_runv(NULL, &local, &err, (const char *const *)argv->pdata);
	if (status != 0)
		g_error("hankoctl %s failed (%d): %s%s", (char *)argv->pdata[3], status, local,
		        err);
	if (out != NULL)
		*out = g_steal_pointer(&local);
}

static void
p12_to_pem(const char *p12, const char *password, const char *out, const char *what)
{
	g_autofree char *pass = g_strconcat("pass:", password, NULL);
	g_autofree char *err = NULL;
	int status = hk_test_run(NULL, NULL, &err, "openssl", "pkcs12", "-in", p12, "-passin", pass,
	                         "-nodes", what, "-out", out, NULL);

	if (status != 0) /* RC2-encrypted P12s need the legacy provider */
		status = hk_test_run(NULL, NULL, &err, "openssl", "pkcs12", "-legacy", "-in", p12,
		                     "-passin", pass, "-nodes", what, "-out", out, NULL);
	if (status != 0)
		g_error("openssl pkcs12 %s failed: %s", what, err);
}

/* Users alice and bob; a certificate for alice, as PEM files for swaks. */
static void
issue_alice(Fixture *fx)
{
	g_autofree char *out = NULL;
	g_autofree char *p12 = g_build_filename(fx->dir, "alice.p12", NULL);
	g_autofree char *password = NULL;

	ctl_ok(fx, NULL, "user", "add", "alice", "--email",
	       "alice@example.org,Alice.Smith@example.org", NULL);
	ctl_ok(fx, NULL, "user", "add", "bob", "--email", "bob@example.org", NULL);
	ctl_ok(fx, &out, "cert", "issue", "--cn", "Alice", "--email", "alice@example.org", "--user",
	       "alice", "--key", "ec:p256", "-o", p12, NULL);
	fx->fp = field_of(out, "fingerprint");
	password = field_of(out, "P12 password");
	fx->cert_pem = g_build_filename(fx->dir, "alice.crt", NULL);
	fx->key_pem = g_build_filename(fx->dir, "alice.key", NULL);
	p12_to_pem(p12, password, fx->cert_pem, "-clcerts");
	p12_to_pem(p12, password, fx->key_pem, "-nocerts");
}

/* ----- fixture ----- */

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	fx->dir = g_dir_make_tmp("hanko-policyd-XXXXXX", &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_chmod(fx->dir, 0755), ==, 0); /* Postfix's smtpd connects from inside */
	fx->policy = g_build_filename(fx->dir, "policy.sock", NULL);
	fx->admin = g_build_filename(fx->dir, "admin.sock", NULL);
	fx->log = g_build_filename(fx->dir, "policyd.log", NULL);
	fx->inet_port = free_port();
	fx->certd = hk_test_certd_start(NULL);
	hk_test_certd_ca_init(fx->certd);
	append_policyd_conf(fx);
	issue_alice(fx);
	spawn_policyd(fx);
}

static int
kill_policyd(Fixture *fx, int sig)
{
	return hk_test_kill(&fx->pid, sig);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	int status = kill_policyd(fx, SIGTERM);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		g_autofree char *log = policyd_log(fx);

		g_error("hanko-policyd did not stop cleanly (status %d):\n%s", status, log);
	}
	hk_test_certd_stop(fx->certd);
	if (!g_test_failed())
		hk_test_remove_tree(fx->dir);
	else
		g_test_message("policyd's directory kept: %s", fx->dir);
	g_free(fx->dir);
	g_free(fx->policy);
	g_free(fx->admin);
	g_free(fx->log);
	g_free(fx->fp);
	g_free(fx->cert_pem);
	g_free(fx->key_pem);
}

/* ----- the policy protocol, spoken directly ----- */

static int
connect_unix(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 5};

	g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	g_assert_cmpint(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int
connect_inet(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons((guint16)port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 5};

	g_assert_cmpint(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void
send_all(int fd, const char *text)
{
	gsize len = strlen(text);

	g_assert_cmpint(send(fd, text, len, MSG_NOSIGNAL), ==, (gssize)len);
}

/* One reply ("action=...\n\n") -> the action; NULL when the connection closed. */
static char *
read_reply(int fd)
{
	GString *in = g_string_new(NULL);
	char c;

	while (!g_str_has_suffix(in->str, "\n\n")) {
		ssize_t n = recv(fd, &c, 1, 0);

		if (n <= 0) {
			g_assert_cmpuint(in->len, ==, 0);
			g_string_free(in, TRUE);
			return NULL;
		}
		g_string_append_c(in, c);
	}
	g_assert_true(g_str_has_prefix(in->str, "action="));
	g_string_truncate(in, in->len - 2);
	g_string_erase(in, 0, 7);
	return g_string_free(in, FALSE);
}

static char *
request(const char *fp, const char *sender, const char *tls)
{
	return g_strdup_printf("request=smtpd_access_policy\nprotocol_state=RCPT\n"
	                       "protocol_name=ESMTP\nclient_address=192.0.2.7\n"
	                       "client_name=mua.example\nsender=%s\nrecipient=x@example.net\n"
	                       "x_unknown_attribute=1\nccert_fingerprint=%s\n"
	                       "encryption_protocol=%s\n\n",
	                       sender, fp ? fp : "", tls);
}

static char *
ask(int fd, const char *fp, const char *sender, const char *tls)
{
	g_autofree char *req = request(fp, sender, tls);

	send_all(fd, req);
	return read_reply(fd);
}

/* policyd writes the lines of one main-loop iteration when the loop goes back to wait,
 * which can be just after the answer that iteration sent has reached us. */
static void
assert_log_has(Fixture *fx, const char *needle)
{
	g_autofree char *log = policyd_log(fx);

	for (int i = 0; i < 100 && strstr(log, needle) == NULL; i++) {
		g_usleep(20 * 1000);
		g_free(log);
		log = policyd_log(fx);
	}
	hk_assert_contains(log, needle);
}

/* Polls until the policy answer for alice's own sender is want (bounded by max_us). */
static gint64
wait_for_action(Fixture *fx, const char *want, gint64 max_us)
{
	gint64 start = g_get_monotonic_time();

	for (;;) {
		int fd = connect_unix(fx->policy);
		g_autofree char *action = ask(fd, fx->fp, "alice@example.org", "TLSv1.3");

		close(fd);
		if (g_strcmp0(action, want) == 0)
			return g_get_monotonic_time() - start;
		if (g_get_monotonic_time() - start > max_us)
			g_error("policyd answered \"%s\", not \"%s\", for %" G_GINT64_FORMAT " ms",
			        action, want, max_us / 1000);
		g_usleep(20 * 1000);
	}
}

static void
test_protocol(Fixture *fx, gconstpointer data)
{
	int fd = connect_unix(fx->policy);
	int in = connect_inet(fx->inet_port);
	g_autofree char *a1 = ask(fd, fx->fp, "alice@example.org", "TLSv1.3");
	g_autofree char *a2 = ask(fd, fx->fp, "Alice.Smith@EXAMPLE.org", "TLSv1.2");
	g_autofree char *a3 = ask(fd, fx->fp, "bob@example.org", "TLSv1.3");
	g_autofree char *a4 = ask(fd, NULL, "alice@example.org", "TLSv1.3");
	g_autofree char *a5 = ask(in, fx->fp, "alice@example.org", "TLSv1.1");
	g_autofree char *a6 = ask(in, "00:11", "alice@example.org", "TLSv1.3");
	/* a control character from the client reaches neither the reply nor the log as such */
	g_autofree char *a7 = ask(fd, fx->fp, "eve\033[1m@example.org", "TLSv1.3");
	g_autofree char *pipelined = NULL;

	g_assert_cmpstr(a1, ==, "OK");
	g_assert_cmpstr(a2, ==, "OK");
	g_assert_cmpstr(a3, ==, NO_OWNER);
	g_assert_cmpstr(a4, ==, "REJECT 5.7.1 client certificate required");
	g_assert_cmpstr(a5, ==, "REJECT 5.7.1 TLS TLSv1.1 is not accepted, use TLSv1.2 or newer");
	g_assert_cmpstr(a6, ==, "DUNNO");
	g_assert_cmpstr(a7, ==,
	                "REJECT 5.7.1 <eve?[1m@example.org>: sender address not owned by "
	                "certificate user <alice>");
	/* two requests in one write: two replies, in order */
	{
		g_autofree char *r1 = request(fx->fp, "bob@example.org", "TLSv1.3");
		g_autofree char *r2 = request(fx->fp, "alice@example.org", "TLSv1.3");
		g_autofree char *both = g_strconcat(r1, r2, NULL);
		g_autofree char *b1 = NULL;

		send_all(fd, both);
		b1 = read_reply(fd);
		pipelined = read_reply(fd);
		g_assert_cmpstr(b1, ==, NO_OWNER);
		g_assert_cmpstr(pipelined, ==, "OK");
	}
	/* a malformed request closes that connection only */
	send_all(in, "this line has no equals sign\n\n");
	g_assert_null(read_reply(in));
	close(in);
	{
		g_autofree char *again = ask(fd, fx->fp, "alice@example.org", "TLSv1.3");

		g_assert_cmpstr(again, ==, "OK");
	}
	close(fd);
	assert_log_has(fx, "policy: client=mua.example[192.0.2.7] sender=<alice@example.org> "
	                   "fingerprint=");
	assert_log_has(fx, "user=alice outcome=valid action=OK");
	assert_log_has(fx, "outcome=sender_mismatch action=" NO_OWNER);
	assert_log_has(fx, "outcome=no_cert");
	assert_log_has(fx, "outcome=old_tls");
	assert_log_has(fx, "sender=<eve?[1m@example.org> fingerprint=");
	assert_log_has(fx, "action=REJECT 5.7.1 <eve?[1m@example.org>: sender address");
	assert_log_has(fx, "malformed request (line without name=value)");
	assert_log_has(fx, "hanko needs smtpd_tls_fingerprint_digest = sha256");
}

static void
test_ctl_check(Fixture *fx, gconstpointer data)
{
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	int status;

	ctl_ok(fx, &out, "policy", "check", "--fingerprint", fx->fp, "--sender", "bob@example.org",
	       NULL);
	hk_assert_contains(out, "outcome: sender_mismatch\n");
	hk_assert_contains(out, "action: " NO_OWNER "\n");
	hk_assert_contains(out, "user: alice\n");
	g_clear_pointer(&out, g_free);
	ctl_ok(fx, &out, "policy", "check", "--fingerprint", fx->fp, "--sender",
	       "alice@example.org", "--tls", "TLSv1.1", NULL);
	hk_assert_contains(out, "outcome: old_tls\n");
	g_clear_pointer(&out, g_free);
	ctl_ok(fx, &out, "--json", "policy", "check", "--fingerprint", fx->fp, "--sender",
	       "alice@example.org", NULL);
	hk_assert_contains(out, "\"outcome\":\"valid\"");
	g_clear_pointer(&out, g_free);
	status = hk_test_ctl(fx->certd, NULL, &out, &err, "policy", "check", "--fingerprint",
	                     fx->fp, NULL);
	g_assert_cmpint(status, ==, 64); /* --sender is required */
	assert_log_has(fx, "check: client=hankoctl[] sender=<bob@example.org>");
}

static void
test_revoke_and_outage(Fixture *fx, gconstpointer data)
{
	gint64 took;

	wait_for_action(fx, "OK", 0); /* cached now */
	ctl_ok(fx, NULL, "cert", "revoke", fx->fp, NULL);
	took = wait_for_action(fx, "REJECT 5.7.1 certificate of user <alice> is revoked",
	                       G_USEC_PER_SEC);
	g_test_message("revocation seen after %" G_GINT64_FORMAT " ms", took / 1000);

	hk_test_certd_kill(fx->certd, SIGTERM);
	wait_for_action(fx, "DEFER_IF_PERMIT 4.7.0 certificate service unavailable",
	                2 * G_USEC_PER_SEC);
	hk_test_certd_restart(fx->certd);
	wait_for_action(fx, "REJECT 5.7.1 certificate of user <alice> is revoked",
	                5 * G_USEC_PER_SEC);
	assert_log_has(fx, "certd unavailable");
	assert_log_has(fx, "certd back");
	{
		g_autofree char *log = policyd_log(fx);
		const char *first = strstr(log, "certd unavailable");

		/* one line per outage, however many requests failed */
		g_assert_null(strstr(first + 1, "certd unavailable"));
	}
}

/* The example file documents every [policyd] key, and the daemon accepts it. */
static void
test_example_conf(void)
{
	g_autofree char *out = NULL;
	g_autofree char *text = NULL;
	g_autoptr(GRegex) key_re = g_regex_new("^#?([a-z0-9_]+) =", G_REGEX_MULTILINE, 0, NULL);
	g_autoptr(GMatchInfo) match = NULL;
	g_autoptr(GHashTable) documented =
	        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	const char *section;
	const char *end;

	g_assert_cmpint(
	        hk_test_run(NULL, &out, NULL, POLICYD, "--check-config", "-c", EXAMPLE, NULL), ==,
	        0);
	hk_assert_contains(out, "configuration OK");
	g_assert_true(g_file_get_contents(EXAMPLE, &text, NULL, NULL));
	section = strstr(text, "\n[policyd]\n");
	g_assert_nonnull(section);
	end = strstr(section + 1, "\n[");
	{
		g_autofree char *body =
		        end ? g_strndup(section, (gsize)(end - section)) : g_strdup(section);

		g_regex_match(key_re, body, 0, &match);
		while (g_match_info_matches(match)) {
			g_hash_table_add(documented, g_match_info_fetch(match, 1));
			g_match_info_next(match, NULL);
		}
	}
	for (const HkConfKey *k = policyd_config_sections[0].keys; k->key != NULL; k++) {
		if (!g_hash_table_remove(documented, k->key))
			g_error("[policyd] %s is not in contrib/hanko.conf", k->key);
	}
	g_assert_cmpuint(g_hash_table_size(documented), ==, 0);
}

/* ----- with Postfix and swaks ----- */

typedef struct {
	int status;
	char *out;
} Swaks;

static void
swaks_clear(Swaks *s)
{
	g_free(s->out);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Swaks, swaks_clear)

/* A transaction up to RCPT on smtpd's port with STARTTLS; with alice's certificate when
 * cert is TRUE; extra: more swaks arguments (NULL-terminated) */
static void
swaks(Swaks *s, HkTestPostfix *pf, Fixture *fx, gboolean cert, const char *from, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *err = NULL;
	const char *arg;
	va_list args;

	g_ptr_array_add(argv, g_strdup("swaks"));
	g_ptr_array_add(argv, g_strdup("--server"));
	g_ptr_array_add(argv, g_strdup_printf("127.0.0.1:%d", pf->smtp_port));
	g_ptr_array_add(argv, g_strdup("--from"));
	g_ptr_array_add(argv, g_strdup(from));
	g_ptr_array_add(argv, g_strdup("--to"));
	g_ptr_array_add(argv, g_strdup("someone@example.net"));
	g_ptr_array_add(argv, g_strdup("--tls"));
	g_ptr_array_add(argv, g_strdup("--quit-after"));
	g_ptr_array_add(argv, g_strdup("RCPT"));
	g_ptr_array_add(argv, g_strdup("--timeout"));
	g_ptr_array_add(argv, g_strdup("20"));
	if (cert) {
		g_ptr_array_add(argv, g_strdup("--tls-cert"));
		g_ptr_array_add(argv, g_strdup(fx->cert_pem));
		g_ptr_array_add(argv, g_strdup("--tls-key"));
		g_ptr_array_add(argv, g_strdup(fx->key_pem));
	}
	va_start(args, from);
	while ((arg = va_arg(args, const char *)) != NULL)
		g_ptr_array_add(argv, g_strdup(arg));
	va_end(args);
	g_ptr_array_add(argv, NULL);
	s->status = hk_test_runv(NULL, &s->out, &err, (const char *const *)argv->pdata);
	g_test_message("swaks exit %d:\n%s%s", s->status, s->out, err);
}

/* swaks exits 0 when the recipient was accepted, 24 when RCPT TO failed; Postfix puts
 * "<rcpt>: Recipient address rejected: " between the code and the policy's text */
static void
assert_rcpt(const Swaks *s, int status, const char *code, const char *text)
{
	if (s->status != status || strstr(s->out, code) == NULL || strstr(s->out, text) == NULL)
		g_error("swaks: expected exit %d, \"%s\" and \"%s\"; got exit %d:\n%s", status,
		        code, text, s->status, s->out);
}

static gboolean
have_postfix(void)
{
	g_autofree char *swaks_path = g_find_program_in_path("swaks");

	if (getuid() != 0) {
		g_test_skip("Postfix's master needs root");
		return FALSE;
	}
	/* contrib/scripts/install-deps.sh installs them: missing, the setup is broken */
	if (!g_file_test("/usr/lib/postfix/sbin/master", G_FILE_TEST_IS_EXECUTABLE) ||
	    swaks_path == NULL)
		g_error("swaks or Postfix is missing: run contrib/scripts/install-deps.sh test");
	return TRUE;
}

static HkTestPostfix *
start_postfix(Fixture *fx)
{
	g_autofree char *main_extra = g_strdup_printf(
	        "smtpd_recipient_restrictions = check_policy_service unix:%s, "
	        "permit_mynetworks, reject\n"
	        /* TLS 1.1 must reach policyd, so that it is policyd that refuses it */
	        "tls_medium_cipherlist = DEFAULT:@SECLEVEL=0\n"
	        "smtpd_tls_protocols = >=TLSv1\n",
	        fx->policy);

	return hk_test_postfix_start(main_extra, NULL);
}

static void
test_postfix(Fixture *fx, gconstpointer data)
{
	HkTestPostfix *pf;
	g_auto(Swaks) own = {0};
	g_auto(Swaks) other = {0};
	g_auto(Swaks) none = {0};
	g_auto(Swaks) old = {0};

	if (!have_postfix())
		return;
	pf = start_postfix(fx);
	swaks(&own, pf, fx, TRUE, "alice@example.org", NULL);
	assert_rcpt(&own, 0, "<~  250 2.1.5 Ok", "");
	swaks(&other, pf, fx, TRUE, "bob@example.org", NULL);
	assert_rcpt(&other, 24, "<~* 554 5.7.1 <someone@example.net>: Recipient address rejected",
	            ": <bob@example.org>: sender address not owned by certificate user <alice>\n");
	swaks(&none, pf, fx, FALSE, "alice@example.org", NULL);
	assert_rcpt(&none, 24, "<~* 554 5.7.1", "rejected: client certificate required\n");
	swaks(&old, pf, fx, TRUE, "alice@example.org", "--tls-protocol", "tlsv1_1", "--tls-cipher",
	      "DEFAULT:@SECLEVEL=0", NULL);
	assert_rcpt(&old, 24, "<~* 554 5.7.1",
	            "rejected: TLS TLSv1.1 is not accepted, use TLSv1.2 or newer\n");
	{
		g_autofree char *log = hk_test_postfix_log(pf);

		hk_assert_contains(log, "TLSv1.1 with cipher");
	}
	hk_test_postfix_stop(pf);
}

static void
test_postfix_revoke_outage(Fixture *fx, gconstpointer data)
{
	HkTestPostfix *pf;
	gint64 t0;

	if (!have_postfix())
		return;
	pf = start_postfix(fx);
	{
		g_auto(Swaks) before = {0};

		swaks(&before, pf, fx, TRUE, "alice@example.org", NULL);
		assert_rcpt(&before, 0, "<~  250 2.1.5 Ok", "");
	}
	/* certd stopped: the configured tempfail; back: answers again, no restart of policyd */
	hk_test_certd_kill(fx->certd, SIGTERM);
	{
		g_auto(Swaks) down = {0};

		swaks(&down, pf, fx, TRUE, "alice@example.org", NULL);
		assert_rcpt(&down, 24, "<~* 450 4.7.0",
		            "rejected: certificate service unavailable\n");
	}
	hk_test_certd_restart(fx->certd);
	{
		g_auto(Swaks) back = {0};

		swaks(&back, pf, fx, TRUE, "alice@example.org", NULL);
		assert_rcpt(&back, 0, "<~  250 2.1.5 Ok", "");
	}
	/* a revocation rejects the next transaction within a second, without a restart */
	ctl_ok(fx, NULL, "cert", "revoke", fx->fp, NULL);
	t0 = g_get_monotonic_time();
	{
		g_auto(Swaks) revoked = {0};

		swaks(&revoked, pf, fx, TRUE, "alice@example.org", NULL);
		assert_rcpt(&revoked, 24, "<~* 554 5.7.1",
		            "rejected: certificate of user <alice> is revoked\n");
	}
	g_test_message("revoked transaction rejected %" G_GINT64_FORMAT " ms after the revoke",
	               (g_get_monotonic_time() - t0) / 1000);
	hk_test_postfix_stop(pf);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/policyd/example-conf", test_example_conf);
	g_test_add("/policyd/protocol", Fixture, NULL, fixture_setup, test_protocol,
	           fixture_teardown);
	g_test_add("/policyd/ctl-check", Fixture, NULL, fixture_setup, test_ctl_check,
	           fixture_teardown);
	g_test_add("/policyd/revoke-and-outage", Fixture, NULL, fixture_setup,
	           test_revoke_and_outage, fixture_teardown);
	g_test_add("/policyd/postfix/decisions", Fixture, NULL, fixture_setup, test_postfix,
	           fixture_teardown);
	g_test_add("/policyd/postfix/revoke-outage", Fixture, NULL, fixture_setup,
	           test_postfix_revoke_outage, fixture_teardown);
	return g_test_run();
}
