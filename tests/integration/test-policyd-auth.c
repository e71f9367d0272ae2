/*
 * test-policyd-auth: SMTP AUTH through the real Postfix, against hanko's users.
 *
 * A private Postfix (hk-test-postfix) with smtpd_sasl_type = dovecot pointing at the auth
 * socket of the built hanko-policyd, which asks the built hanko-certd, whose users are made
 * with hankoctl. swaks plays the mail client: AUTH PLAIN and LOGIN, good and bad passwords,
 * on submission (STARTTLS) and submissions (implicit TLS); then certd is stopped (454, a
 * temporary failure) and started again (235 once more, no restart of anything else).
 *
 * Needs root (Postfix's master) and the Debian packages postfix, swaks and openssl.
 */
#include "hk-test-certd.h"
#include "hk-test-postfix.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLICYD_BIN HK_TEST_BINDIR "/policyd/hanko-policyd"
#define PASSWORD    "S3cret-Pw!x"
#define WAIT_US     (10 * G_USEC_PER_SEC)

typedef struct {
	HkTestCertd *certd;
	char *dir; /* policyd's: config, sockets, log; 0755 so Postfix's smtpd reaches them */
	char *conf;
	char *auth_socket;
	char *log;
	GPid policyd;
	HkTestPostfix *postfix;
} Fixture;

static Fixture fx;

static void
die_with_parent(gpointer parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != GPOINTER_TO_INT(parent))
		_exit(127);
}

/* TRUE once the socket answers with the protocol's first line. */
static gboolean
auth_answers(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 2};
	char buf[64] = "";
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	gboolean ok = FALSE;

	g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		ok = recv(fd, buf, sizeof(buf) - 1, 0) > 0 && g_str_has_prefix(buf, "VERSION\t1\t");
	close(fd);
	return ok;
}

static char *
policyd_log(void)
{
	char *log = NULL;

	if (!g_file_get_contents(fx.log, &log, NULL, NULL))
		return g_strdup("");
	return log;
}

static void
write_policyd_conf(void)
{
	g_autofree char *text = g_strdup_printf("[policyd]\n"
	                                        "policy_listen = unix:%s/policy.sock\n"
	                                        "auth_listen = unix:%s\n"
	                                        "admin_socket = %s/admin.sock\n"
	                                        "admin_group =\n"
	                                        "certd_socket = %s\n"
	                                        "socket_mode = 0666\n"
	                                        "auth_require_secured = yes\n"
	                                        "auth_failure_delay = 100ms\n"
	                                        "auth_max_failure_delay = 400ms\n",
	                                        fx.dir, fx.auth_socket, fx.dir, fx.certd->socket);

	g_assert_true(g_file_set_contents(fx.conf, text, -1, NULL));
}

static void
start_policyd(void)
{
	const char *argv[] = {POLICYD_BIN, "-f", "-d", "-c", fx.conf, NULL};
	g_autoptr(GError) error = NULL;
	int log_fd = open(fx.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	gint64 deadline = g_get_monotonic_time() + WAIT_US;
	int status;

	g_assert_cmpint(log_fd, >=, 0);
	g_spawn_async_with_fds(fx.dir, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
	                       die_with_parent, GINT_TO_POINTER(getpid()), &fx.policyd, -1, log_fd,
	                       log_fd, &error);
	close(log_fd);
	g_assert_no_error(error);
	while (!auth_answers(fx.auth_socket)) {
		if (waitpid(fx.policyd, &status, WNOHANG) == fx.policyd) {
			g_autofree char *log = policyd_log();

			fx.policyd = 0;
			g_error("hanko-policyd exited (status %d) at start:\n%s", status, log);
		}
		if (g_get_monotonic_time() > deadline)
			g_error("hanko-policyd's auth socket did not answer within 10 s");
		g_usleep(20 * 1000);
	}
}

static void
add_user(const char *name, const char *email, const char *password)
{
	g_autofree char *err = NULL;
	g_autofree char *input = g_strconcat(password, "\n", NULL);

	if (hk_test_ctl(fx.certd, NULL, NULL, &err, "user", "add", name, "--email", email, NULL))
		g_error("hankoctl user add %s: %s", name, err);
	g_clear_pointer(&err, g_free);
	if (hk_test_ctl(fx.certd, input, NULL, &err, "user", "passwd", name, NULL))
		g_error("hankoctl user passwd %s: %s", name, err);
}

static void
fixture_start(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *main_extra = NULL;

	fx.certd = hk_test_certd_start(NULL);
	add_user("alice", "alice@example.org", PASSWORD);
	add_user("bob", "bob@example.org", "another-Pw-7");
	fx.dir = g_dir_make_tmp("hanko-policyd-XXXXXX", &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_chmod(fx.dir, 0755), ==, 0);
	fx.conf = g_build_filename(fx.dir, "hanko.conf", NULL);
	fx.auth_socket = g_build_filename(fx.dir, "auth.sock", NULL);
	fx.log = g_build_filename(fx.dir, "policyd.log", NULL);
	write_policyd_conf();
	start_policyd();
	main_extra = g_strdup_printf("smtpd_sasl_type = dovecot\n"
	                             "smtpd_sasl_path = unix:%s\n"
	                             "smtpd_tls_auth_only = yes\n",
	                             fx.auth_socket);
	fx.postfix = hk_test_postfix_start(main_extra, NULL);
}

static void
fixture_stop(void)
{
	if (fx.dir == NULL)
		return;
	hk_test_postfix_stop(fx.postfix);
	hk_test_kill(&fx.policyd, SIGTERM);
	hk_test_certd_stop(fx.certd);
	if (!g_test_failed())
		hk_test_remove_tree(fx.dir);
	g_clear_pointer(&fx.dir, g_free);
	g_free(fx.conf);
	g_free(fx.auth_socket);
	g_free(fx.log);
}

/* swaks' transcript of EHLO, TLS, AUTH and QUIT. tls: "--tls" (STARTTLS) or "--tlsc". */
static char *
swaks_auth(int port, const char *tls, const char *mech, const char *user, const char *password)
{
	g_autofree char *port_text = g_strdup_printf("%d", port);
	g_autofree char *out = NULL, *err = NULL;

	hk_test_run(NULL, &out, &err, "swaks", "--server", "127.0.0.1", "--port", port_text, tls,
	            "--ehlo", "client.example", "--auth", mech, "--auth-user", user,
	            "--auth-password", password, "--quit-after", "AUTH", "--timeout", "30", NULL);
	return g_strconcat(out ? out : "", err ? err : "", NULL);
}

#define OK_235   "235 2.7.0 Authentication successful"
#define FAIL_535 "535 5.7.8 Error: authentication failed: Authentication failed"
#define TEMP_454 "454 4.7.0 Temporary authentication failure"

static void
expect_auth(int port, const char *tls, const char *mech, const char *user, const char *password,
            const char *expected)
{
	g_autofree char *transcript = swaks_auth(port, tls, mech, user, password);

	g_test_message("swaks %s --auth %s %s on port %d: expecting %s", tls, mech, user, port,
	               expected);
	hk_assert_contains(transcript, expected);
}

static void
test_submission(void)
{
	int port = fx.postfix->submission_port;
	g_autofree char *log = NULL;

	expect_auth(port, "--tls", "PLAIN", "alice", PASSWORD, OK_235);
	expect_auth(port, "--tls", "LOGIN", "alice", PASSWORD, OK_235);
	expect_auth(port, "--tls", "PLAIN", "alice@example.org", PASSWORD, OK_235);
	expect_auth(port, "--tls", "PLAIN", "alice", "wrong-password", FAIL_535);
	expect_auth(port, "--tls", "LOGIN", "alice", "wrong-password", FAIL_535);
	expect_auth(port, "--tls", "PLAIN", "nobody", PASSWORD, FAIL_535);
	expect_auth(port, "--tls", "LOGIN", "bob", "another-Pw-7", OK_235);
	log = policyd_log();
	/* Postfix said "secured" (auth_require_secured is on) and where the client came from */
	hk_assert_contains(log, "auth PLAIN user=\"alice\" rip=127.0.0.1 service=smtp secured: ok");
	hk_assert_contains(log, "auth LOGIN user=\"alice\" rip=127.0.0.1 service=smtp secured: "
	                        "failed (password mismatch");
	hk_assert_contains(log, "user=\"alice@example.org\" rip=127.0.0.1 service=smtp secured: ok "
	                        "(as alice)");
}

static void
test_submissions(void)
{
	int port = fx.postfix->smtps_port;

	expect_auth(port, "--tlsc", "PLAIN", "alice", PASSWORD, OK_235);
	expect_auth(port, "--tlsc", "LOGIN", "alice", PASSWORD, OK_235);
	expect_auth(port, "--tlsc", "PLAIN", "alice", "wrong-password", FAIL_535);
	expect_auth(port, "--tlsc", "LOGIN", "bob", "wrong-password", FAIL_535);
	expect_auth(port, "--tlsc", "LOGIN", "bob", "another-Pw-7", OK_235);
}

static void
test_certd_stopped(void)
{
	g_autofree char *log = NULL;

	hk_test_certd_kill(fx.certd, SIGTERM);
	expect_auth(fx.postfix->submission_port, "--tls", "PLAIN", "alice", PASSWORD, TEMP_454);
	expect_auth(fx.postfix->smtps_port, "--tlsc", "LOGIN", "alice", PASSWORD, TEMP_454);
	log = policyd_log();
	hk_assert_contains(log, "certd cannot check passwords");
	hk_assert_contains(log, "secured: temporary failure");
	/* back again: policyd reconnects by itself, Postfix to policyd too */
	hk_test_certd_restart(fx.certd);
	expect_auth(fx.postfix->submission_port, "--tls", "PLAIN", "alice", PASSWORD, OK_235);
	expect_auth(fx.postfix->smtps_port, "--tlsc", "LOGIN", "alice", PASSWORD, OK_235);
}

static void
test_no_password_logged(void)
{
	g_autofree char *log = policyd_log();
	g_autofree char *maillog = hk_test_postfix_log(fx.postfix);
	g_autofree char *certd_log = hk_test_certd_log(fx.certd);

	g_assert_null(strstr(log, PASSWORD));
	g_assert_null(strstr(log, "wrong-password"));
	g_assert_null(strstr(maillog, PASSWORD));
	g_assert_null(strstr(certd_log, PASSWORD));
	/* what Postfix made of policyd's answers */
	hk_assert_contains(maillog, "SASL PLAIN authentication failed: Authentication failed, "
	                            "sasl_username=alice");
	hk_assert_contains(maillog, "SASL LOGIN authentication failed: Connection lost to "
	                            "authentication server");
}

static void
test_needs_root(void)
{
	g_test_skip("Postfix's master needs root (CI runs as root)");
}

int
main(int argc, char **argv)
{
	g_autofree char *swaks = g_find_program_in_path("swaks");
	int status;

	g_test_init(&argc, &argv, NULL);
	if (getuid() != 0) {
		g_test_add_func("/policyd-auth/postfix", test_needs_root);
		return g_test_run();
	}
	/* contrib/scripts/install-deps.sh installs them: missing, the setup is broken */
	if (swaks == NULL || !g_file_test("/usr/lib/postfix/sbin/master", G_FILE_TEST_EXISTS))
		g_error("swaks or Postfix is missing: run contrib/scripts/install-deps.sh test");
	g_test_add_func("/policyd-auth/postfix/submission", test_submission);
	g_test_add_func("/policyd-auth/postfix/submissions", test_submissions);
	g_test_add_func("/policyd-auth/postfix/certd-stopped", test_certd_stopped);
	g_test_add_func("/policyd-auth/postfix/no-password-logged", test_no_password_logged);
	/* last, so the harnesses' g_test_failed() still speaks of a test (after g_test_run()
	 * it says TRUE even when all passed, and they would keep their directories) */
	g_test_add_func("/policyd-auth/postfix/stop", fixture_stop);
	fixture_start();
	status = g_test_run();
	fixture_stop(); /* when -p left out the last test */
	return status;
}
