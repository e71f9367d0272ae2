/*
 * hk-test-postfix: a private Postfix instance for the integration tests.
 *
 * Everything lives under one temporary directory: etc/ (main.cf, master.cf, the server
 * certificate), spool/ (queue_directory), data/ (data_directory, owned by postfix) and
 * maillog. The master daemon runs in the foreground as our child ("master -s -c etc",
 * which is what "postfix -c etc start-fg" ends in) with maillog_file = /dev/stdout and its
 * stdout on dir/maillog, so neither /etc/postfix/main.cf's alternate_config_directories
 * nor maillog_file_prefixes need to change, and the master dies with the test
 * (PR_SET_PDEATHSIG). Mail that is accepted is discarded.
 *
 * Talks to: the Debian postfix package (postfix check, master), the openssl CLI.
 * Must never: touch the system's Postfix instance or its files, or wait without a bound.
 */
#include "hk-test-postfix.h"
#include "hk-test-certd.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define POSTFIX_MASTER "/usr/lib/postfix/sbin/master"
#define WAIT_US        (30 * G_USEC_PER_SEC)

typedef struct {
	HkTestPostfix pub; /* first: the public part */
	GPid master;
} Instance;

/* The services Postfix needs besides smtpd (from Debian's master.cf, chroot off). */
static const char master_base[] =
        "pickup    unix  n       -       n       60      1       pickup\n"
        "cleanup   unix  n       -       n       -       0       cleanup\n"
        "qmgr      unix  n       -       n       300     1       qmgr\n"
        "tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n"
        "rewrite   unix  -       -       n       -       -       trivial-rewrite\n"
        "bounce    unix  -       -       n       -       0       bounce\n"
        "defer     unix  -       -       n       -       0       bounce\n"
        "trace     unix  -       -       n       -       0       bounce\n"
        "verify    unix  -       -       n       -       1       verify\n"
        "flush     unix  n       -       n       1000?   0       flush\n"
        "proxymap  unix  -       -       n       -       -       proxymap\n"
        "showq     unix  n       -       n       -       -       showq\n"
        "error     unix  -       -       n       -       -       error\n"
        "retry     unix  -       -       n       -       -       error\n"
        "discard   unix  -       -       n       -       -       discard\n"
        "anvil     unix  -       -       n       -       1       anvil\n"
        "scache    unix  -       -       n       -       1       scache\n"
        "postlog   unix-dgram n  -       n       -       1       postlogd\n";

static int
free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sin, &len), ==, 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void
write_file(const char *path, const char *text, int mode)
{
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_chmod(path, mode), ==, 0);
}

static void
make_server_cert(HkTestPostfix *pf)
{
	g_autofree char *key = g_build_filename(pf->config_dir, "server.key", NULL);
	g_autofree char *crt = g_build_filename(pf->config_dir, "server.crt", NULL);
	g_autofree char *err = NULL;
	int status = hk_test_run(NULL, NULL, &err, "openssl", "req", "-x509", "-newkey", "ec",
	                         "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
	                         "-out", crt, "-subj", "/CN=localhost", "-days", "2", NULL);

	if (status != 0)
		g_error("openssl req failed (%d): %s", status, err);
}

static char *
main_cf(HkTestPostfix *pf, const char *extra)
{
	return g_strdup_printf("compatibility_level = 3.6\n"
	                       "queue_directory = %s\n"
	                       "data_directory = %s/data\n"
	                       "meta_directory = /etc/postfix\n"
	                       "mail_owner = postfix\n"
	                       "setgid_group = postdrop\n"
	                       "myhostname = localhost\n"
	                       "mydomain = localdomain\n"
	                       "mydestination = localhost\n"
	                       "inet_interfaces = loopback-only\n"
	                       "inet_protocols = ipv4\n"
	                       "mynetworks = 127.0.0.0/8\n"
	                       "maillog_file = /dev/stdout\n"
	                       "default_transport = discard:hanko test\n"
	                       "local_transport = discard:hanko test\n"
	                       "alias_maps =\n"
	                       "alias_database =\n"
	                       "smtpd_tls_chain_files = %s/server.key, %s/server.crt\n"
	                       "smtpd_tls_security_level = may\n"
	                       "smtpd_tls_ask_ccert = yes\n"
	                       "smtpd_tls_fingerprint_digest = sha256\n"
	                       "smtpd_tls_loglevel = 1\n"
	                       "smtpd_tls_received_header = yes\n"
	                       "%s\n",
	                       pf->queue_dir, pf->dir, pf->config_dir, pf->config_dir,
	                       extra ? extra : "");
}

/* "smtp: -o a=b" lines of master_extra that belong to service */
static char *
service_overrides(const char *master_extra, const char *service)
{
	g_auto(GStrv) lines = g_strsplit(master_extra ? master_extra : "", "\n", -1);
	g_autofree char *prefix = g_strconcat(service, ":", NULL);
	GString *out = g_string_new(NULL);

	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_str_has_prefix(lines[i], prefix))
			g_string_append_printf(out, "\n  %s",
			                       g_strstrip(lines[i] + strlen(prefix)));
	}
	return g_string_free(out, FALSE);
}

static char *
master_cf(HkTestPostfix *pf, const char *extra)
{
	g_autofree char *smtp = service_overrides(extra, "smtp");
	g_autofree char *submission = service_overrides(extra, "submission");
	g_autofree char *smtps = service_overrides(extra, "smtps");

	return g_strdup_printf("127.0.0.1:%d inet n - n - - smtpd%s\n"
	                       "127.0.0.1:%d inet n - n - - smtpd\n"
	                       "  -o syslog_name=postfix/submission\n"
	                       "  -o smtpd_tls_security_level=encrypt\n"
	                       "  -o smtpd_sasl_auth_enable=yes%s\n"
	                       "127.0.0.1:%d inet n - n - - smtpd\n"
	                       "  -o syslog_name=postfix/smtps\n"
	                       "  -o smtpd_tls_wrappermode=yes\n"
	                       "  -o smtpd_sasl_auth_enable=yes%s\n"
	                       "%s",
	                       pf->smtp_port, smtp, pf->submission_port, submission, pf->smtps_port,
	                       smtps, master_base);
}

static void
prepare_dirs(HkTestPostfix *pf)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *data = NULL;
	struct passwd *pw = getpwnam("postfix");

	pf->dir = g_dir_make_tmp("hanko-postfix-XXXXXX", &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_chmod(pf->dir, 0755), ==, 0); /* postfix's processes look inside */
	pf->config_dir = g_build_filename(pf->dir, "etc", NULL);
	pf->queue_dir = g_build_filename(pf->dir, "spool", NULL);
	pf->maillog = g_build_filename(pf->dir, "maillog", NULL);
	data = g_build_filename(pf->dir, "data", NULL);
	g_assert_cmpint(g_mkdir(pf->config_dir, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(pf->queue_dir, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(data, 0700), ==, 0);
	g_assert_nonnull(pw);
	g_assert_cmpint(chown(data, pw->pw_uid, pw->pw_gid), ==, 0);
}

static void
master_child_setup(gpointer parent)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != GPOINTER_TO_INT(parent))
		_exit(127);
}

static gboolean
smtp_greets(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons((guint16)port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char buf[256] = "";
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 5};
	ssize_t n = -1;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n > 0)
		(void)!write(fd, "QUIT\r\n", 6);
	close(fd);
	return n > 0 && g_str_has_prefix(buf, "220");
}

static void
start_master(Instance *pf)
{
	const char *argv[] = {POSTFIX_MASTER, "-s", "-c", pf->pub.config_dir, NULL};
	g_autoptr(GError) error = NULL;
	int log_fd = open(pf->pub.maillog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	gint64 deadline = g_get_monotonic_time() + WAIT_US;
	int status;

	g_assert_cmpint(log_fd, >=, 0);
	g_spawn_async_with_fds(pf->pub.dir, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
	                       master_child_setup, GINT_TO_POINTER(getpid()), &pf->master, -1,
	                       log_fd, log_fd, &error);
	close(log_fd);
	g_assert_no_error(error);
	while (!smtp_greets(pf->pub.smtp_port)) {
		if (waitpid(pf->master, &status, WNOHANG) == pf->master) {
			g_autofree char *log = hk_test_postfix_log(&pf->pub);

			pf->master = 0;
			g_error("postfix master exited (status %d) at start:\n%s", status, log);
		}
		if (g_get_monotonic_time() > deadline)
			g_error("postfix did not greet on port %d within 30 s", pf->pub.smtp_port);
		g_usleep(50 * 1000);
	}
}

HkTestPostfix *
hk_test_postfix_start(const char *main_extra, const char *master_extra)
{
	Instance *pf = g_new0(Instance, 1);
	g_autofree char *main_path = NULL;
	g_autofree char *master_path = NULL;
	g_autofree char *main_text = NULL;
	g_autofree char *master_text = NULL;
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;

	prepare_dirs(&pf->pub);
	pf->pub.smtp_port = free_port();
	pf->pub.submission_port = free_port();
	pf->pub.smtps_port = free_port();
	make_server_cert(&pf->pub);
	main_path = g_build_filename(pf->pub.config_dir, "main.cf", NULL);
	master_path = g_build_filename(pf->pub.config_dir, "master.cf", NULL);
	main_text = main_cf(&pf->pub, main_extra);
	master_text = master_cf(&pf->pub, master_extra);
	write_file(main_path, main_text, 0644);
	write_file(master_path, master_text, 0644);
	/* creates the queue's subdirectories with the owners and modes Postfix wants */
	if (hk_test_run(NULL, &out, &err, "postfix", "-c", pf->pub.config_dir, "check", NULL) != 0)
		g_error("postfix check failed:\n%s%s", out, err);
	start_master(pf);
	return &pf->pub;
}

void
hk_test_postfix_stop(HkTestPostfix *postfix)
{
	Instance *pf = (Instance *)postfix;

	if (pf == NULL)
		return;
	hk_test_kill(&pf->master, SIGTERM);
	if (!hk_test_keep_files())
		hk_test_remove_tree(postfix->dir);
	g_free(postfix->dir);
	g_free(postfix->config_dir);
	g_free(postfix->queue_dir);
	g_free(postfix->maillog);
	g_free(pf);
}

char *
hk_test_postfix_log(HkTestPostfix *postfix)
{
	char *log = NULL;

	if (!g_file_get_contents(postfix->maillog, &log, NULL, NULL))
		return g_strdup("");
	return log;
}
