/*
 * test-milter: hanko-milter driven by miltertest (opendkim's libmilter test client) with
 * one Lua scenario per feature (tests/milter/t-*.lua), each against a milter started
 * with its own small configuration, a real hanko-certd, and messages signed and
 * encrypted by the openssl CLI (tests/milter/make-files.sh).
 *
 * The world (certd, its CA, users alice, bob and carol, their certificates, the
 * gateway's RSA and EC identities and the messages) is built once for all scenarios.
 * The last test puts a private Postfix in front of the milter and sends with swaks;
 * accepted mail is held in Postfix's queue and read back with postcat, milter changes
 * and all.
 */
#include "hk-test-certd.h"
#include "hk-test-postfix.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MILTER_BIN HK_TEST_BINDIR "/milter-smime/hanko-milter"
#define LUA_DIR    HK_TEST_SRCDIR "/tests/milter"

typedef struct {
	HkTestCertd *certd;
	char *dir;   /* the certd's directory: files/, services/ */
	char *files; /* messages and PEMs */
} World;

static World world;

typedef struct {
	char *dir;
	char *conf;
	char *socket;
	char *log;
	GPid pid;
} Milter;

/* ----- the world ----- */

/* A hanko user with a certificate, as key+certificate PEM in files/NAME.pem. */
static char *
issue_user(const char *name, const char *email)
{
	return hk_test_issue_user(world.certd, world.files, name, email);
}

/* A self-signed gateway certificate (RSA or EC), imported into certd as NAME. */
static void
make_gateway(const char *name, gboolean ec)
{
	g_autofree char *key = g_strdup_printf("%s/%s.key", world.files, name);
	g_autofree char *crt = g_strdup_printf("%s/%s.crt", world.files, name);
	const char *rsa_argv[] = {"openssl", "req", "-x509", "-newkey", "rsa:2048", NULL};
	const char *ec_argv[] = {
	        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
	        NULL};
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	for (const char *const *a = ec ? ec_argv : rsa_argv; *a; a++)
		g_ptr_array_add(argv, (char *)*a);
	for (const char *
	             a[] = {"-nodes", "-days", "30", "-subj", "/CN=fax.example.jp", "-addext",
	                    "subjectAltName=email:send@fax.example.jp", "-addext",
	                    "extendedKeyUsage=emailProtection", "-keyout", key, "-out", crt, NULL},
	            **p = a;
	     *p; p++)
		g_ptr_array_add(argv, (char *)*p);
	g_ptr_array_add(argv, NULL);
	hk_test_run_ok("openssl req", (const char *const *)argv->pdata);
	g_assert_cmpint(hk_test_ctl(world.certd, NULL, NULL, NULL, "cert", "import", "--name", name,
	                            "--cert", crt, "--key", key, NULL),
	                ==, 0);
}

static void
assign_gateway(const char *name)
{
	g_assert_cmpint(hk_test_ctl(world.certd, NULL, NULL, NULL, "cert", "assign", name,
	                            "--service", "gateway", NULL),
	                ==, 0);
}

static void
world_setup(void)
{
	g_autofree char *tmp = g_dir_make_tmp("hanko-milter-world-XXXXXX", NULL);
	g_autofree char *extra = g_strdup_printf("service_dir = %s/services\n", tmp);
	g_autofree char *carol = NULL;
	const char *make[] = {LUA_DIR "/make-files.sh", NULL, NULL};

	world.certd = hk_test_certd_start(extra);
	world.dir = g_steal_pointer(&tmp);
	world.files = g_build_filename(world.dir, "files", NULL);
	g_assert_cmpint(g_mkdir(world.files, 0700), ==, 0);
	hk_test_certd_ca_init(world.certd);
	g_free(issue_user("alice", "alice@example.jp"));
	g_free(issue_user("bob", "bob@example.jp"));
	carol = issue_user("carol", "carol@example.jp");
	g_assert_cmpint(hk_test_ctl(world.certd, NULL, NULL, NULL, "user", "set", "bob",
	                            "require_signature=yes", NULL),
	                ==, 0);
	g_assert_cmpint(hk_test_ctl(world.certd, NULL, NULL, NULL, "cert", "revoke", carol, NULL),
	                ==, 0);
	make_gateway("gw-rsa", FALSE);
	make_gateway("gw-ec", TRUE);
	assign_gateway("gw-rsa");
	{
		g_autofree char *ca = g_build_filename(world.files, "ca.crt", NULL);

		g_assert_cmpint(
		        hk_test_ctl(world.certd, NULL, NULL, NULL, "ca", "export", "-o", ca, NULL),
		        ==, 0);
	}
	make[1] = world.files;
	hk_test_run_ok("make-files.sh", make);
}

static void
world_teardown(void)
{
	hk_test_certd_stop(world.certd);
	if (!hk_test_keep_files())
		hk_test_remove_tree(world.dir);
	g_free(world.dir);
	g_free(world.files);
}

/* ----- the milter ----- */

static char *
milter_log(Milter *m)
{
	char *log = NULL;

	g_file_get_contents(m->log, &log, NULL, NULL);
	return log ? log : g_strdup("");
}

/* Waits until the log has needle (the milter said it is ready for what the test does).
 * 15 s: libmilter's listener notices that its loop was told to stop only when its 5 s
 * select() times out, and a loaded machine adds to that. */
static void
milter_wait_log(Milter *m, const char *needle)
{
	for (int i = 0; i < 600; i++) {
		g_autofree char *log = milter_log(m);

		if (strstr(log, needle) != NULL)
			return;
		g_usleep(25 * 1000);
	}
	{
		g_autofree char *log = milter_log(m);

		g_error("hanko-milter never logged \"%s\":\n%s", needle, log);
	}
}

static Milter *
milter_start_mode(const char *extra_conf, gboolean for_postfix)
{
	Milter *m = g_new0(Milter, 1);
	g_autofree char *conf = NULL;
	g_autoptr(GError) error = NULL;
	const char *argv[] = {MILTER_BIN, "-c", NULL, "-f", "-d", NULL};
	int log_fd;

	m->dir = g_dir_make_tmp("hanko-milter-XXXXXX", &error);
	g_assert_no_error(error);
	m->conf = g_build_filename(m->dir, "hanko.conf", NULL);
	m->socket = g_build_filename(m->dir, "milter.sock", NULL);
	m->log = g_build_filename(m->dir, "milter.log", NULL);
	conf = g_strdup_printf("[milter]\nlisten = unix:%s\ncertd_socket = %s\ntmp_dir = %s/tmp\n"
	                       "authserv_id = mx.example.jp\n%s%s\n",
	                       m->socket, world.certd->socket, m->dir,
	                       for_postfix ? "socket_group = postfix\n" : "",
	                       extra_conf ? extra_conf : "");
	/* Postfix's smtpd (user postfix) must reach the socket inside */
	if (for_postfix)
		g_assert_cmpint(g_chmod(m->dir, 0711), ==, 0);
	g_assert_true(g_file_set_contents(m->conf, conf, -1, NULL));
	argv[2] = m->conf;
	log_fd = open(m->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	g_assert_cmpint(log_fd, >=, 0);
	g_spawn_async_with_fds(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
	                       hk_test_die_with_parent, GINT_TO_POINTER(getpid()), &m->pid, -1,
	                       log_fd, log_fd, &error);
	close(log_fd);
	g_assert_no_error(error);
	milter_wait_log(m, "hanko CA: ");
	return m;
}

static Milter *
milter_start(const char *extra_conf)
{
	return milter_start_mode(extra_conf, FALSE);
}

/* Runs tests/milter/t-NAME.lua against the milter; the scenario's output goes to the log. */
static void
milter_run(Milter *m, const char *name)
{
	g_autofree char *script = g_strdup_printf("%s/t-%s.lua", LUA_DIR, name);
	g_autofree char *sock = g_strconcat("unix:", m->socket, NULL);
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	int status;

	g_setenv("HANKO_SRC", HK_TEST_SRCDIR, TRUE);
	g_setenv("HANKO_MILTER", sock, TRUE);
	g_setenv("HANKO_FILES", world.files, TRUE);
	status = hk_test_run(NULL, &out, &err, "miltertest", "-s", script, NULL);
	g_test_message("t-%s.lua:\n%s%s", name, out, err);
	if (status != 0) {
		g_autofree char *log = milter_log(m);

		g_error("t-%s.lua failed (%d):\n%s%s\nmilter log:\n%s", name, status, out, err,
		        log);
	}
	hk_assert_contains(out, "ok");
}

static void
milter_free(Milter *m)
{
	if (!hk_test_keep_files())
		hk_test_remove_tree(m->dir);
	g_free(m->dir);
	g_free(m->conf);
	g_free(m->socket);
	g_free(m->log);
	g_free(m);
}

/* SIGTERM: the milter must stop cleanly; returns its log. */
static char *
milter_stop(Milter *m)
{
	int status = hk_test_kill(&m->pid, SIGTERM);
	char *log = milter_log(m);

	g_test_message("milter log:\n%s", log);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 0);
	milter_free(m);
	return log;
}

static guint
count(const char *haystack, const char *needle)
{
	guint n = 0;

	for (const char *p = haystack; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* ----- scenarios ----- */

/* Detached and opaque signatures pass; tampering, SHA-1, a revoked signer and a signer
 * who is not the From address fail; unsigned is none. Then SIGHUP: same again. */
static void
test_verify(void)
{
	Milter *m = milter_start(NULL);
	g_autofree char *log = NULL;

	milter_run(m, "verify");
	kill(m->pid, SIGHUP);
	milter_wait_log(m, "configuration reloaded");
	milter_run(m, "verify");
	log = milter_stop(m);
	hk_assert_contains(log, "TESTQID: from=<alice@example.jp> sender=<alice@example.jp> "
	                        "required=no signer=<alice@example.jp> smime=pass");
	hk_assert_contains(log, "smime=fail reason=certificate revoked");
}

static void
test_require(void)
{
	Milter *m = milter_start("require_signature_recipients = secure@example.jp\n"
	                         "require_signature_senders = @signed.example.jp\n");
	g_autofree char *log = NULL;

	milter_run(m, "require");
	log = milter_stop(m);
	hk_assert_contains(log, "required=user");
	hk_assert_contains(log, "required=recipient");
	hk_assert_contains(log, "required=sender");
}

static void
test_sender(void)
{
	Milter *m = milter_start("signer_address_match = from_and_sender\n");

	milter_run(m, "sender");
	g_free(milter_stop(m));
}

/* An issuer other than hanko's, trusted with ca_file, and its CRL. */
static void
test_external(void)
{
	g_autofree char *conf = g_strdup_printf("ca_file = %s/ext-ca.crt\ncrl_file = %s/ext.crl\n",
	                                        world.files, world.files);
	Milter *m = milter_start(conf);

	milter_run(m, "external");
	g_free(milter_stop(m));
}

static void
test_gateway(void)
{
	Milter *m = milter_start("gateway_address = send@fax.example.jp\nfax = no\n"
	                         "gateway_require_signature = no\n");
	Milter *strict = NULL;
	g_autofree char *log = NULL;
	g_autofree char *strict_log = NULL;

	milter_wait_log(m, "gateway identity: gw-rsa");
	milter_run(m, "gateway");
	/* certd assigns the EC identity: the milter hears it and decrypts with that one */
	assign_gateway("gw-ec");
	milter_wait_log(m, "gateway identity: gw-ec");
	milter_run(m, "gateway-ec");
	assign_gateway("gw-rsa");
	milter_wait_log(m, "gateway identity: gw-rsa\n");
	log = milter_stop(m);
	strict = milter_start("gateway_address = send@fax.example.jp\nfax = no\n");
	milter_wait_log(strict, "gateway identity: gw-rsa");
	milter_run(strict, "gateway-require");
	strict_log = milter_stop(strict);
	hk_assert_contains(strict_log, "required=gateway signer=<> smime=none decrypt=ok "
	                               "action=reject");
	hk_assert_contains(log, "decrypt=wrong-key action=reject");
	hk_assert_contains(log, "decrypt=corrupt action=reject");
}

/* certd stops: what needs it is tempfailed, said once in the log; it comes back alone. */
static void
test_certd_down(void)
{
	Milter *m = milter_start(NULL);
	g_autofree char *log = NULL;

	hk_test_certd_kill(world.certd, SIGTERM);
	milter_run(m, "certd-down");
	hk_test_certd_restart(world.certd);
	milter_run(m, "certd-back");
	log = milter_stop(m);
	g_assert_cmpuint(count(log, "warning: hanko-certd unavailable"), ==, 1);
	hk_assert_contains(log, "hanko-certd answers again");
}

static void
test_limits(void)
{
	Milter *m = milter_start("gateway_address = send@fax.example.jp\nfax = no\n"
	                         "require_signature_recipients = secure@example.jp\n"
	                         "max_smime_size = 1k\n");
	g_autofree char *log = NULL;

	milter_run(m, "limits");
	log = milter_stop(m);
	hk_assert_contains(log, "over max_smime_size: not checked, action=accept");
	hk_assert_contains(log, "over max_smime_size: not checked, action=reject");
}

/* The thread of the milter process blocked in sigwait(): libmilter's signal thread. */
static long
sigwait_thread(GPid pid)
{
	g_autofree char *tasks = g_strdup_printf("/proc/%d/task", pid);
	g_autoptr(GDir) dir = g_dir_open(tasks, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *path = g_strdup_printf("%s/%s/wchan", tasks, name);
		g_autofree char *wchan = NULL;

		if (g_file_get_contents(path, &wchan, NULL, NULL) &&
		    strstr(wchan, "sigtimedwait") != NULL)
			return strtol(name, NULL, 10);
	}
	return -1;
}

/* Should libmilter's own signal thread get a SIGHUP (its loop then ends), the milter
 * must not linger without serving: it exits 1 for its supervisor to restart it. */
static void
test_libmilter_stops(void)
{
	Milter *m = milter_start(NULL);
	long tid = sigwait_thread(m->pid);
	int status = 0;
	g_autofree char *log = NULL;

	g_assert_cmpint(tid, >, 0);
	g_assert_cmpint(syscall(SYS_tgkill, m->pid, tid, SIGHUP), ==, 0);
	milter_wait_log(m, "libmilter stopped serving by itself");
	for (int i = 0; i < 200 && waitpid(m->pid, &status, WNOHANG) == 0; i++)
		g_usleep(25 * 1000);
	g_assert_true(WIFEXITED(status));
	g_assert_cmpint(WEXITSTATUS(status), ==, 1);
	m->pid = 0;
	log = milter_log(m);
	hk_assert_contains(log, "hanko-milter stopped");
	milter_free(m);
}

/* ----- through the real Postfix ----- */

/* swaks sends files/NAME; returns the transcript. */
static char *
swaks_send(HkTestPostfix *pf, const char *from, const char *to, const char *name)
{
	g_autofree char *port = g_strdup_printf("%d", pf->smtp_port);
	g_autofree char *file = g_build_filename(world.files, name, NULL);
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;

	hk_test_run(NULL, &out, &err, "swaks", "--server", "127.0.0.1", "--port", port, "--from",
	            from, "--to", to, "--data", file, "--timeout", "30", NULL);
	return g_strconcat(out ? out : "", err ? err : "", NULL);
}

/* The held message's header and body as Postfix queued it (postcat -hb). */
static char *
queued(HkTestPostfix *pf, const char *transcript)
{
	const char *p = strstr(transcript, "queued as ");
	g_autofree char *id = NULL;
	g_autofree char *out = NULL;

	g_assert_nonnull(p);
	id = g_strndup(p + 10, strcspn(p + 10, " \r\n"));
	g_assert_cmpint(hk_test_run(NULL, &out, NULL, "postcat", "-c", pf->config_dir, "-hb", "-q",
	                            id, NULL),
	                ==, 0);
	return g_steal_pointer(&out);
}

static char *
expect_queued(HkTestPostfix *pf, const char *to, const char *name)
{
	g_autofree char *transcript = swaks_send(pf, "alice@example.jp", to, name);

	g_test_message("%s to %s:\n%s", name, to, transcript);
	hk_assert_contains(transcript, "250 2.0.0 Ok: queued as ");
	return queued(pf, transcript);
}

static void
expect_refused(HkTestPostfix *pf, const char *from, const char *to, const char *name,
               const char *reply)
{
	g_autofree char *transcript = swaks_send(pf, from, to, name);

	g_test_message("%s to %s:\n%s", name, to, transcript);
	hk_assert_contains(transcript, reply);
}

/* What the issue asks of real mail: openssl's detached and opaque signatures, gpgsm's, gateway
 * mail encrypted with AES-256-CBC and AES-128-GCM arrives decrypted with its signature
 * verified, tampering and a revoked signer fail, unsigned gateway mail is refused. */
static void
test_postfix(void)
{
	Milter *m = milter_start_mode("gateway_address = send@fax.example.jp\nfax = no\n"
	                              "require_signature_recipients = secure@example.jp\n",
	                              TRUE);
	g_autofree char *main_extra = g_strdup_printf(
	        "smtpd_milters = unix:%s\nmilter_default_action = tempfail\n"
	        "smtpd_end_of_data_restrictions = check_client_access static:HOLD\n",
	        m->socket);
	HkTestPostfix *pf = hk_test_postfix_start(main_extra, NULL);
	g_autofree char *log = NULL;

	milter_wait_log(m, "gateway identity: gw-rsa");
	for (const char *const *f =
	             (const char *const[]){"signed.eml", "opaque.eml", "gpgsm.eml", NULL};
	     *f; f++) {
		g_autofree char *msg = expect_queued(pf, "bob@example.jp", *f);

		hk_assert_contains(msg, "Authentication-Results: mx.example.jp; smime=pass");
		hk_assert_contains(msg, "body.smime-identifier=alice@example.jp");
	}
	for (const char *const *f =
	             (const char *const[]){"enc-cbc.eml", "enc-gcm.eml", "enc-signed.eml", NULL};
	     *f; f++) {
		g_autofree char *msg = expect_queued(pf, "send@fax.example.jp", *f);

		hk_assert_contains(msg, "smime=pass");
		/* the decrypted entity: its header fields and the signed text */
		hk_assert_contains(msg, "FAX test: 03-1111-2222");
		g_assert_null(strstr(msg, "smime-type=enveloped-data"));
	}
	expect_refused(pf, "alice@example.jp", "secure@example.jp", "tampered.eml",
	               "550 5.7.1 S/MIME signature invalid: the signature does not match the "
	               "content");
	expect_refused(pf, "carol@example.jp", "secure@example.jp", "revoked.eml",
	               "550 5.7.1 S/MIME signature invalid: certificate revoked");
	expect_refused(pf, "alice@example.jp", "send@fax.example.jp", "unsigned-alice.eml",
	               "550 5.7.1 Cannot authenticate - signature not found");
	hk_test_postfix_stop(pf);
	log = milter_stop(m);
	g_assert_cmpuint(count(log, "decrypt=ok action=accept"), ==, 3);
}

int
main(int argc, char **argv)
{
	int status;

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/milter/verify", test_verify);
	g_test_add_func("/milter/require", test_require);
	g_test_add_func("/milter/sender", test_sender);
	g_test_add_func("/milter/external", test_external);
	g_test_add_func("/milter/gateway", test_gateway);
	g_test_add_func("/milter/certd-down", test_certd_down);
	g_test_add_func("/milter/limits", test_limits);
	g_test_add_func("/milter/libmilter-stops", test_libmilter_stops);
	g_test_add_func("/milter/postfix", test_postfix);
	world_setup();
	status = g_test_run();
	world_teardown();
	return status;
}
