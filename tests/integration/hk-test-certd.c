/*
 * hk-test-certd: a hanko-certd of the build tree in a temporary directory, and a way to
 * run hankoctl and third-party tools as processes, for the integration tests.
 *
 * Must never: leave a daemon running (PR_SET_PDEATHSIG, and stop() kills and reaps), or
 * wait without a bound.
 */
#include "hk-test-certd.h"
#include "hk-ipc.h"

#include <gio/gio.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_US (10 * G_USEC_PER_SEC)

void
hk_test_die_with_parent(gpointer parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != GPOINTER_TO_INT(parent))
		_exit(127); /* the test died before we got here */
}

static gboolean
answers_ping(const char *socket)
{
	g_autoptr(HkIpcClient) client = hk_ipc_client_connect(socket, 2000, NULL);
	g_autoptr(json_object) result = NULL;

	if (client == NULL)
		return FALSE;
	result = hk_ipc_client_call(client, "ping", NULL, NULL);
	return result != NULL;
}

static void
spawn_certd(HkTestCertd *certd)
{
	const char *argv[] = {HK_TEST_CERTD_BIN, "-f", "-d", "-c", certd->conf, NULL};
	g_autoptr(GError) error = NULL;
	int log_fd = open(certd->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	gint64 deadline = g_get_monotonic_time() + WAIT_US;

	g_assert_cmpint(log_fd, >=, 0);
	g_spawn_async_with_fds(certd->dir, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
	                       hk_test_die_with_parent, GINT_TO_POINTER(getpid()), &certd->pid, -1,
	                       log_fd, log_fd, &error);
	close(log_fd);
	g_assert_no_error(error);
	while (!answers_ping(certd->socket)) {
		int status;

		if (waitpid(certd->pid, &status, WNOHANG) == certd->pid) {
			g_autofree char *log = hk_test_certd_log(certd);

			certd->pid = 0;
			g_error("hanko-certd exited (status %d) at start:\n%s", status, log);
		}
		if (g_get_monotonic_time() > deadline)
			g_error("hanko-certd did not answer ping within 10 s");
		g_usleep(10 * 1000);
	}
}

HkTestCertd *
hk_test_certd_start(const char *extra_conf)
{
	g_autoptr(GError) error = NULL;
	HkTestCertd *certd = g_new0(HkTestCertd, 1);
	g_autofree char *conf = NULL;

	certd->dir = g_dir_make_tmp("hanko-certd-XXXXXX", &error);
	g_assert_no_error(error);
	certd->conf = g_build_filename(certd->dir, "hanko.conf", NULL);
	certd->socket = g_build_filename(certd->dir, "certd.sock", NULL);
	certd->state = g_build_filename(certd->dir, "state", NULL);
	certd->log = g_build_filename(certd->dir, "certd.log", NULL);
	conf = g_strdup_printf("[certd]\nsocket = %s\nstate_dir = %s\nadmin_group =\n"
	                       "service_group =\n%s\n",
	                       certd->socket, certd->state, extra_conf ? extra_conf : "");
	g_assert_true(g_file_set_contents(certd->conf, conf, -1, NULL));
	spawn_certd(certd);
	return certd;
}

void
hk_test_certd_restart(HkTestCertd *certd)
{
	g_assert_cmpint(certd->pid, ==, 0);
	spawn_certd(certd);
}

int
hk_test_kill(GPid *pid, int sig)
{
	int status = 0;

	if (*pid == 0)
		return 0;
	kill(*pid, sig);
	while (waitpid(*pid, &status, 0) < 0 && errno == EINTR)
		;
	g_spawn_close_pid(*pid);
	*pid = 0;
	return status;
}

int
hk_test_certd_kill(HkTestCertd *certd, int sig)
{
	return hk_test_kill(&certd->pid, sig);
}

gboolean
hk_test_keep_files(void)
{
	const char *path = g_test_get_path();

	return path != NULL && *path != '\0' && g_test_failed();
}

void
hk_test_remove_tree(const char *path)
{
	const char *argv[] = {"rm", "-rf", path, NULL};

	g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
	             NULL);
}

void
hk_test_certd_stop(HkTestCertd *certd)
{
	int status;

	if (certd == NULL)
		return;
	status = hk_test_certd_kill(certd, SIGTERM);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		g_autofree char *log = hk_test_certd_log(certd);

		g_error("hanko-certd did not stop cleanly (status %d):\n%s", status, log);
	}
	if (!hk_test_keep_files())
		hk_test_remove_tree(certd->dir);
	g_free(certd->dir);
	g_free(certd->conf);
	g_free(certd->socket);
	g_free(certd->state);
	g_free(certd->log);
	g_free(certd);
}

char *
hk_test_certd_log(HkTestCertd *certd)
{
	char *log = NULL;

	if (!g_file_get_contents(certd->log, &log, NULL, NULL))
		return g_strdup("");
	return log;
}

/* "" rather than NULL for no output: callers search it */
static char *
bytes_to_string(GBytes *bytes)
{
	gsize len = 0;
	const char *data = bytes ? g_bytes_get_data(bytes, &len) : NULL;

	return data ? g_strndup(data, len) : g_strdup("");
}

int
hk_test_runv(const char *stdin_data, char **out, char **err, const char *const *argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocess) proc = NULL;
	/* always a pipe: a program that reads stdin gets EOF, not the test's terminal */
	g_autoptr(GBytes) in =
	        g_bytes_new(stdin_data ? stdin_data : "", stdin_data ? strlen(stdin_data) : 0);
	g_autoptr(GBytes) out_bytes = NULL;
	g_autoptr(GBytes) err_bytes = NULL;
	GSubprocessFlags flags = G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE |
	                         G_SUBPROCESS_FLAGS_STDIN_PIPE;

	proc = g_subprocess_newv(argv, flags, &error);
	if (proc == NULL)
		g_error("cannot run %s: %s", argv[0], error->message);
	if (!g_subprocess_communicate(proc, in, NULL, &out_bytes, &err_bytes, &error))
		g_error("%s: %s", argv[0], error->message);
	if (out != NULL)
		*out = bytes_to_string(out_bytes);
	if (err != NULL)
		*err = bytes_to_string(err_bytes);
	if (!g_subprocess_get_if_exited(proc))
		return 128 + g_subprocess_get_term_sig(proc);
	return g_subprocess_get_exit_status(proc);
}

static int
run_va(const char *stdin_data, char **out, char **err, GPtrArray *argv, va_list args)
{
	const char *arg;

	while ((arg = va_arg(args, const char *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	g_ptr_array_add(argv, NULL);
	return hk_test_runv(stdin_data, out, err, (const char *const *)argv->pdata);
}

int
hk_test_ctl(HkTestCertd *certd, const char *stdin_data, char **out, char **err, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	va_list args;
	int status;

	g_ptr_array_add(argv, (gpointer)HK_TEST_CTL_BIN);
	g_ptr_array_add(argv, (gpointer) "-c");
	g_ptr_array_add(argv, certd->conf);
	va_start(args, err);
	status = run_va(stdin_data, out, err, argv, args);
	va_end(args);
	return status;
}

int
hk_test_run(const char *stdin_data, char **out, char **err, const char *program, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	va_list args;
	int status;

	g_ptr_array_add(argv, (gpointer)program);
	va_start(args, program);
	status = run_va(stdin_data, out, err, argv, args);
	va_end(args);
	return status;
}

void
hk_test_certd_ca_init(HkTestCertd *certd)
{
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	int status = hk_test_ctl(certd, NULL, &out, &err, "ca", "init", "--cn", "hanko Test CA",
	                         "--key", "ec:p256", NULL);

	if (status != 0)
		g_error("hankoctl ca init failed (%d): %s%s", status, out, err);
}

void
hk_test_run_ok(const char *what, const char *const *argv)
{
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	int status = hk_test_runv(NULL, &out, &err, argv);

	if (status != 0)
		g_error("%s failed (%d):\n%s%s", what, status, out, err);
}

char *
hk_test_issue_user(HkTestCertd *certd, const char *dir, const char *name, const char *email)
{
	g_autofree char *p12 = g_strdup_printf("%s/%s.p12", dir, name);
	g_autofree char *pem = g_strdup_printf("%s/%s.pem", dir, name);
	g_autofree char *out = NULL;
	g_autofree char *pass = NULL;
	g_autofree char *passin = NULL;
	const char *p;

	g_assert_cmpint(
	        hk_test_ctl(certd, NULL, NULL, NULL, "user", "add", name, "--email", email, NULL),
	        ==, 0);
	g_assert_cmpint(hk_test_ctl(certd, NULL, &out, NULL, "cert", "issue", "--cn", name,
	                            "--email", email, "--user", name, "-o", p12, NULL),
	                ==, 0);
	p = strstr(out, "P12 password: ");
	g_assert_nonnull(p);
	pass = g_strndup(p + 14, strcspn(p + 14, "\n"));
	passin = g_strconcat("pass:", pass, NULL);
	hk_test_run_ok("openssl pkcs12",
	               (const char *const[]){"openssl", "pkcs12", "-in", p12, "-passin", passin,
	                                     "-nodes", "-out", pem, NULL});
	p = strstr(out, "fingerprint: ");
	g_assert_nonnull(p);
	return g_strndup(p + 13, strcspn(p + 13, "\n"));
}
