/*
 * test-fax: the fax gateway end to end. A real hanko-certd (users, CA, the gateway's
 * identity), hanko-milter with the file backend, and a private Postfix in front of it:
 * requests signed and encrypted by the openssl CLI (tests/fax/make-requests.sh) go in
 * with swaks; the pages land in the outbox as TIFF (read back with libtiff), the result
 * mails go out through Postfix's own sendmail(1) and are held in its queue, where the
 * test reads them with postcat and opens them with openssl cms -decrypt and -verify.
 *
 * Also: every refusal the issue names, retries and resend, NUMBER@fax_domain,
 * certificate registration and unregistration, and a SIGKILL between spooling a job and
 * Postfix's 250 (no job lost, none twice).
 */
#include "hk-json.h"
#include "hk-milter-proto.h"
#include "hk-test-certd.h"
#include "hk-test-postfix.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <json.h>
#include <sys/wait.h>
#include <tiffio.h>
#include <unistd.h>

#define MILTER_BIN    HK_TEST_BINDIR "/milter-smime/hanko-milter"
#define MAKE_REQUESTS HK_TEST_SRCDIR "/tests/fax/make-requests.sh"
#define SOFTMODEM     HK_TEST_BINDIR "/tests/fax/hk-softmodem"
#define MODEM_DIR     HK_TEST_BINDIR "/milter-smime/fax/modem"

static struct {
	HkTestCertd *certd;
	HkTestPostfix *pf;
	char *dir;   /* milter's: config, sockets, spool, outbox */
	char *files; /* requests and PEMs */
	char *conf;
	char *conf_text; /* as written by world_setup */
	char *socket;
	char *admin;
	char *outbox;
	char *log; /* the current run's: milter-N.log */
	guint runs;
	GPid milter;
} w;

/* ----- helpers ----- */

static char *
file_path(const char *name)
{
	return g_build_filename(w.files, name, NULL);
}

static void
ctl_ok(const char *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	g_ptr_array_add(argv, (char *)HK_TEST_CTL_BIN);
	g_ptr_array_add(argv, (char *)"-c");
	g_ptr_array_add(argv, w.certd->conf);
	for (; *args; args++)
		g_ptr_array_add(argv, (char *)*args);
	g_ptr_array_add(argv, NULL);
	hk_test_run_ok("hankoctl", (const char *const *)argv->pdata);
}

/* argv of "hankoctl [--json] fax ARGS... --admin-socket PATH" */
static GPtrArray *
fax_argv(gboolean json, const char *first, va_list ap)
{
	GPtrArray *argv = g_ptr_array_new();

	g_ptr_array_add(argv, (char *)HK_TEST_CTL_BIN);
	if (json)
		g_ptr_array_add(argv, (char *)"--json");
	g_ptr_array_add(argv, (char *)"fax");
	for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
		g_ptr_array_add(argv, (char *)a);
	g_ptr_array_add(argv, (char *)"--admin-socket");
	g_ptr_array_add(argv, w.admin);
	g_ptr_array_add(argv, NULL);
	return argv;
}

/* "hankoctl fax ARGS..."; returns stdout, asserts the exit status. */
static char *
fax_ctl(int expect, const char *first, ...)
{
	g_autoptr(GPtrArray) argv = NULL;
	g_autofree char *err = NULL;
	char *out = NULL;
	va_list ap;
	int status;

	va_start(ap, first);
	argv = fax_argv(FALSE, first, ap);
	va_end(ap);
	status = hk_test_runv(NULL, &out, &err, (const char *const *)argv->pdata);
	if (status != expect)
		g_error("hankoctl fax %s: exit %d, not %d:\n%s%s", first, status, expect, out, err);
	return out;
}

static void
issue_user(const char *name, const char *email)
{
	g_free(hk_test_issue_user(w.certd, w.files, name, email));
}

static char *
milter_log(void)
{
	char *log = NULL;

	g_file_get_contents(w.log, &log, NULL, NULL);
	return log ? log : g_strdup("");
}

static void
wait_log(const char *needle)
{
	for (int i = 0; i < 400; i++) {
		g_autofree char *log = milter_log();

		if (strstr(log, needle) != NULL)
			return;
		g_usleep(25 * 1000);
	}
	{
		g_autofree char *log = milter_log();

		g_error("hanko-milter never logged \"%s\":\n%s", needle, log);
	}
}

static void
milter_start(gboolean crash_after_spool)
{
	const char *argv[] = {MILTER_BIN, "-c", w.conf, "-f", "-d", NULL};
	g_auto(GStrv) env = g_get_environ();
	g_autoptr(GError) error = NULL;
	int fd;

	g_free(w.log);
	w.log = g_strdup_printf("%s/milter-%u.log", w.dir, ++w.runs);
	fd = open(w.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	g_assert_cmpint(fd, >=, 0);
	if (crash_after_spool)
		env = g_environ_setenv(env, "HANKO_TEST_CRASH_AFTER_SPOOL", "1", TRUE);
	else
		env = g_environ_unsetenv(env, "HANKO_TEST_CRASH_AFTER_SPOOL");
	g_spawn_async_with_fds(NULL, (char **)argv, env, G_SPAWN_DO_NOT_REAP_CHILD,
	                       hk_test_die_with_parent, GINT_TO_POINTER(getpid()), &w.milter, -1,
	                       fd, fd, &error);
	close(fd);
	g_assert_no_error(error);
}

static char *
swaks(const char *from, const char *to, const char *name)
{
	g_autofree char *port = g_strdup_printf("%d", w.pf->smtp_port);
	g_autofree char *file = file_path(name);
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;

	hk_test_run(NULL, &out, &err, "swaks", "--server", "127.0.0.1", "--port", port, "--from",
	            from, "--to", to, "--data", file, "--timeout", "60", NULL);
	g_test_message("%s:\n%s%s", name, out, err);
	return g_strconcat(out ? out : "", err ? err : "", NULL);
}

static void
expect_taken(const char *from, const char *to, const char *name)
{
	g_autofree char *t = swaks(from, to, name);

	hk_assert_contains(t, "250 2.0.0 Ok: queued as");
}

static void
expect_refused(const char *from, const char *name, const char *reply)
{
	g_autofree char *t = swaks(from, "send@fax.example.jp", name);

	hk_assert_contains(t, reply);
}

/* "hankoctl --json fax ARGS...": the milter's reply */
static json_object *
fax_json(const char *first, ...)
{
	g_autoptr(GPtrArray) argv = NULL;
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	va_list ap;
	json_object *obj;

	va_start(ap, first);
	argv = fax_argv(TRUE, first, ap);
	va_end(ap);
	g_assert_cmpint(hk_test_runv(NULL, &out, &err, (const char *const *)argv->pdata), ==, 0);
	obj = json_tokener_parse(out);
	g_assert_nonnull(obj);
	return obj;
}

/* The reply line's result object (hankoctl --json prints the daemon's reply). */
static json_object *
result_of(json_object *reply)
{
	json_object *result = NULL;

	g_assert_true(json_object_object_get_ex(reply, "result", &result));
	return result;
}

static gint64
newest_job(void)
{
	g_autoptr(json_object) reply = fax_json("jobs", "-n", "1", NULL);
	json_object *jobs = NULL;

	json_object_object_get_ex(result_of(reply), HK_MILTER_KEY_JOBS, &jobs);
	if (json_object_array_length(jobs) == 0)
		return 0;
	return json_object_get_int64(
	        json_object_object_get(json_object_array_get_idx(jobs, 0), HK_MILTER_KEY_ID));
}

static guint
job_count(void)
{
	g_autoptr(json_object) reply = fax_json("jobs", "-n", "0", NULL);
	json_object *jobs = NULL;

	json_object_object_get_ex(result_of(reply), HK_MILTER_KEY_JOBS, &jobs);
	return (guint)json_object_array_length(jobs);
}

/* Waits until job id reaches state (done, failed, ...) with its result mail sent. */
static json_object *
wait_job_for(gint64 id, const char *state, int seconds)
{
	g_autofree char *ids = g_strdup_printf("%" G_GINT64_FORMAT, id);

	for (int i = 0; i < seconds * 20; i++) {
		g_autoptr(json_object) reply = fax_json("show", ids, NULL);
		json_object *job = result_of(reply);
		const char *now = json_object_get_string(json_object_object_get(job, "state"));

		if (g_strcmp0(now, state) == 0 &&
		    json_object_get_boolean(json_object_object_get(job, "notified")))
			return json_object_get(job);
		g_usleep(50 * 1000);
	}
	{
		g_autofree char *log = milter_log();

		g_error("job %s never became %s:\n%s", ids, state, log);
	}
}

static json_object *
wait_job(gint64 id, const char *state)
{
	return wait_job_for(id, state, 30);
}

static const char *
dest_field(json_object *job, guint i, const char *key)
{
	json_object *dests = json_object_object_get(job, HK_MILTER_KEY_DESTINATIONS);

	return json_object_get_string(
	        json_object_object_get(json_object_array_get_idx(dests, i), key));
}

/* The held message for rcpt whose text has needle; removed from the queue after. */
static char *
held_mail(const char *rcpt, const char *needle)
{
	for (int i = 0; i < 400; i++) {
		g_autofree char *out = NULL;
		g_auto(GStrv) lines = NULL;

		hk_test_run(NULL, &out, NULL, "postqueue", "-c", w.pf->config_dir, "-j", NULL);
		lines = g_strsplit(out ? out : "", "\n", -1);
		for (guint l = 0; lines[l] != NULL; l++) {
			g_autoptr(json_object) entry = json_tokener_parse(lines[l]);
			json_object *rcpts;
			const char *id;
			g_autofree char *msg = NULL;

			if (entry == NULL ||
			    g_strcmp0(json_object_get_string(
			                      json_object_object_get(entry, "queue_name")),
			              "hold") != 0)
				continue;
			rcpts = json_object_object_get(entry, "recipients");
			if (rcpts == NULL || json_object_array_length(rcpts) == 0 ||
			    g_strcmp0(json_object_get_string(json_object_object_get(
			                      json_object_array_get_idx(rcpts, 0), "address")),
			              rcpt) != 0)
				continue;
			id = json_object_get_string(json_object_object_get(entry, "queue_id"));
			hk_test_run(NULL, &msg, NULL, "postcat", "-c", w.pf->config_dir, "-hb",
			            "-q", id, NULL);
			if (msg == NULL || strstr(msg, needle) == NULL)
				continue;
			hk_test_run(NULL, NULL, NULL, "postsuper", "-c", w.pf->config_dir, "-d", id,
			            NULL);
			return g_steal_pointer(&msg);
		}
		g_usleep(50 * 1000);
	}
	g_error("no held mail for %s with \"%s\"", rcpt, needle);
}

/* openssl cms -decrypt with pem, then -verify against the gateway's certificate. */
static char *
open_mail(const char *mail, const char *pem)
{
	g_autofree char *in = file_path("mail.in");
	g_autofree char *mid = file_path("mail.mid");
	g_autofree char *out = file_path("mail.out");
	g_autofree char *gw = file_path("gw.crt");
	g_autofree char *key = file_path(pem);
	char *text = NULL;

	g_assert_true(g_file_set_contents(in, mail, -1, NULL));
	if (key != NULL && strstr(pem, ".pem") != NULL) {
		hk_test_run_ok("openssl cms -decrypt",
		               (const char *[]){"openssl", "cms", "-decrypt", "-in", in, "-recip",
		                                key, "-inkey", key, "-out", mid, NULL});
	} else {
		g_assert_true(g_file_set_contents(mid, mail, -1, NULL));
	}
	hk_test_run_ok("openssl cms -verify",
	               (const char *[]){"openssl", "cms", "-verify", "-in", mid, "-CAfile", gw,
	                                "-purpose", "any", "-out", out, NULL});
	g_assert_true(g_file_get_contents(out, &text, NULL, NULL));
	return text;
}

typedef struct {
	guint pages;
	guint32 width, length;
	float yres;
	guint16 compression;
	gsize black;
} TiffFacts;

static void
tiff_read(const char *path, TiffFacts *f)
{
	TIFF *tif = TIFFOpen(path, "r");
	g_autofree guint8 *row = NULL;

	memset(f, 0, sizeof(*f));
	g_assert_nonnull(tif);
	do {
		f->pages++;
		if (f->pages > 1)
			continue;
		TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &f->width);
		TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &f->length);
		TIFFGetField(tif, TIFFTAG_YRESOLUTION, &f->yres);
		TIFFGetField(tif, TIFFTAG_COMPRESSION, &f->compression);
		row = g_malloc(TIFFScanlineSize(tif));
		for (guint32 y = 0; y < f->length; y++) {
			g_assert_cmpint(TIFFReadScanline(tif, row, y, 0), ==, 1);
			for (tmsize_t x = 0; x < TIFFScanlineSize(tif); x++)
				f->black += (gsize)__builtin_popcount(row[x]);
		}
	} while (TIFFReadDirectory(tif));
	TIFFClose(tif);
}

static char *
outbox_file(gint64 job, const char *number)
{
	return g_strdup_printf("%s/%" G_GINT64_FORMAT "-%s.tif", w.outbox, job, number);
}

/* ----- the world ----- */

static void
world_setup(void)
{
	g_autofree char *tmp = g_dir_make_tmp("hanko-fax-XXXXXX", NULL);
	g_autofree char *certd_extra = g_strdup_printf("service_dir = %s/services\n", tmp);
	g_autofree char *hold = NULL;
	g_autofree char *main_extra = NULL;
	g_autofree char *conf = NULL;
	g_autofree char *gw_key = NULL;
	g_autofree char *gw_crt = NULL;

	w.dir = g_steal_pointer(&tmp);
	g_assert_cmpint(g_chmod(w.dir, 0711), ==, 0); /* smtpd (user postfix) reaches the socket */
	w.files = g_build_filename(w.dir, "files", NULL);
	g_assert_cmpint(g_mkdir(w.files, 0700), ==, 0);
	w.conf = g_build_filename(w.dir, "hanko.conf", NULL);
	w.socket = g_build_filename(w.dir, "milter.sock", NULL);
	w.admin = g_build_filename(w.dir, "admin.sock", NULL);
	w.outbox = g_build_filename(w.dir, "outbox", NULL);

	w.certd = hk_test_certd_start(certd_extra);
	hk_test_certd_ca_init(w.certd);
	issue_user("alice", "alice@example.jp");
	issue_user("bob", "bob@example.jp");
	issue_user("dave", "dave@example.jp");
	ctl_ok((const char *[]){"user", "add", "erin", "--email", "erin@example.jp", NULL});
	ctl_ok((const char *[]){"user", "set", "alice", "fax_allowed=yes", NULL});
	ctl_ok((const char *[]){"user", "set", "dave", "fax_allowed=yes", NULL});
	ctl_ok((const char *[]){"user", "set", "erin", "fax_allowed=yes", NULL});
	g_assert_cmpint(hk_test_ctl(w.certd, "password123\n", NULL, NULL, "user", "set", "dave",
	                            "fax_password=-", NULL),
	                ==, 0);
	/* the gateway's identity: a certificate for send@fax.example.jp, assigned in certd */
	gw_key = file_path("gw.key");
	gw_crt = file_path("gw.crt");
	hk_test_run_ok("openssl req",
	               (const char *[]){"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
	                                "-days", "30", "-subj", "/CN=hanko fax gateway", "-addext",
	                                "subjectAltName=email:send@fax.example.jp", "-addext",
	                                "extendedKeyUsage=emailProtection", "-keyout", gw_key,
	                                "-out", gw_crt, NULL});
	ctl_ok((const char *[]){"cert", "import", "--name", "fax-gw", "--cert", gw_crt, "--key",
	                        gw_key, NULL});
	ctl_ok((const char *[]){"cert", "assign", "fax-gw", "--service", "gateway", NULL});
	hk_test_run_ok("make-requests.sh", (const char *[]){MAKE_REQUESTS, w.files, NULL});

	/* Postfix: mail from smtpd and the gateway's result mails stay in the hold queue */
	hold = g_build_filename(w.dir, "hold.regexp", NULL);
	g_assert_true(
	        g_file_set_contents(hold, "/^Auto-Submitted: auto-generated/ HOLD\n", -1, NULL));
	main_extra =
	        g_strdup_printf("smtpd_milters = unix:%s\nmilter_default_action = tempfail\n"
	                        "smtpd_end_of_data_restrictions = check_client_access static:HOLD\n"
	                        "header_checks = regexp:%s\n",
	                        w.socket, hold);
	w.pf = hk_test_postfix_start(main_extra, NULL);

	conf = g_strdup_printf("[milter]\nlisten = unix:%s\nsocket_group = postfix\n"
	                       "certd_socket = %s\ntmp_dir = %s/tmp\nauthserv_id = mx.example.jp\n"
	                       "gateway_address = send@fax.example.jp\n"
	                       "registration_address = digitalid@fax.example.jp\n"
	                       "fax_domain = fax.example.jp\n"
	                       "fax_spool_dir = %s/spool\nadmin_socket = %s\n"
	                       "ca_file = %s/ext-ca.crt\n"
	                       "fax_max_tries = 2\nfax_retry_delay = 2s\n"
	                       "fax_sendmail = /usr/sbin/sendmail -C %s\n"
	                       "[fax.file]\noutbox = %s\nfail_numbers = 0399998888\n",
	                       w.socket, w.certd->socket, w.dir, w.dir, w.admin, w.files,
	                       w.pf->config_dir, w.outbox);
	g_assert_true(g_file_set_contents(w.conf, conf, -1, NULL));
	w.conf_text = g_steal_pointer(&conf);
	milter_start(FALSE);
	wait_log("gateway identity: fax-gw");
	wait_log("admin socket on");
}

static void
world_teardown(void)
{
	if (w.milter != 0) {
		int status = hk_test_kill(&w.milter, SIGTERM);
		g_autofree char *log = milter_log();

		g_test_message("milter log:\n%s", log);
		g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	hk_test_postfix_stop(w.pf);
	hk_test_certd_stop(w.certd);
	if (!hk_test_keep_files())
		hk_test_remove_tree(w.dir);
}

/* ----- scenarios ----- */

/* Seed 003's first way: destinations in the (encoded, full-width) Subject; Japanese text
 * and a PDF become fax pages; the result mail is signed and encrypted for alice. */
static void
test_subject(void)
{
	g_autoptr(json_object) job = NULL;
	g_autofree char *tif = NULL;
	g_autofree char *mail = NULL;
	g_autofree char *text = NULL;
	TiffFacts f;
	gint64 id;

	expect_taken("alice@example.jp", "send@fax.example.jp", "subject.eml");
	id = newest_job();
	g_assert_cmpint(id, >, 0);
	job = wait_job(id, "done");
	g_assert_cmpstr(dest_field(job, 0, HK_MILTER_KEY_NUMBER), ==, "0311112222");
	g_assert_cmpstr(dest_field(job, 1, HK_MILTER_KEY_NUMBER), ==, "0622223333");
	tif = outbox_file(id, "0311112222");
	tiff_read(tif, &f);
	/* one page of text, two of PDF */
	g_assert_cmpuint(f.pages, ==, 3);
	g_assert_cmpuint(f.width, ==, 1728);
	g_assert_cmpuint(f.length, ==, 2287);
	g_assert_cmpfloat(f.yres, ==, 196.0);
	g_assert_cmpuint(f.compression, ==, COMPRESSION_CCITTFAX3);
	g_assert_cmpuint(f.black, >, 2000); /* the Japanese text and the header line */
	g_free(tif);
	tif = outbox_file(id, "0622223333");
	g_assert_true(g_file_test(tif, G_FILE_TEST_EXISTS));

	mail = held_mail("alice@example.jp", "Subject: Fax sent: job");
	hk_assert_contains(mail, "application/pkcs7-mime");
	text = open_mail(mail, "alice.pem");
	hk_assert_contains(text, "was sent to all 2 destinations");
	hk_assert_contains(text, "0311112222");
	hk_assert_contains(text, "0622223333");
}

/* The second way: the body names a list and a number after the fax password. */
static void
test_body(void)
{
	g_autofree char *out =
	        fax_ctl(0, "list", "add", "members", "03-1234-5678", "03-1111-2222", NULL);
	g_autoptr(json_object) job = NULL;
	g_autofree char *mail = NULL;

	hk_assert_contains(out, "members: 0312345678 0311112222");
	expect_taken("dave@example.jp", "send@fax.example.jp", "body.eml");
	job = wait_job(newest_job(), "done");
	g_assert_cmpstr(dest_field(job, 0, HK_MILTER_KEY_NUMBER), ==, "0312345678");
	g_assert_cmpstr(dest_field(job, 1, HK_MILTER_KEY_NUMBER), ==, "0311112222");
	g_assert_null(dest_field(job, 2, HK_MILTER_KEY_NUMBER));
	mail = held_mail("dave@example.jp", "Auto-Submitted");
	/* the password never reaches a log line */
	{
		g_autofree char *log = milter_log();

		g_assert_null(strstr(log, "password123"));
	}
}

/* Every refusal says what is wrong, at SMTP time, and queues nothing. */
static void
test_refusals(void)
{
	guint before = job_count();

	expect_refused("dave@example.jp", "wrongpw.eml", "550 5.7.1 Wrong fax password");
	expect_refused("alice@example.jp", "unknownlist.eml", "550 5.1.1 unknown list members2");
	expect_refused("alice@example.jp", "toomany.eml",
	               "550 5.5.3 101 destinations, at most 100");
	expect_refused("alice@example.jp", "nodirective.eml", "550 5.1.3 No recipients found");
	expect_refused("bob@example.jp", "notallowed.eml",
	               "550 5.7.1 bob@example.jp may not send faxes");
	expect_refused("alice@example.jp", "unsigned.eml",
	               "550 5.7.1 Cannot authenticate - signature not found");
	g_assert_cmpuint(job_count(), ==, before);
}

/* A busy line is tried fax_max_tries times, then fails; resend tries again. */
static void
test_retry(void)
{
	g_autoptr(json_object) job = NULL;
	g_autoptr(json_object) again = NULL;
	g_autofree char *held = NULL;
	g_autofree char *mail = NULL;
	g_autofree char *out = NULL;
	g_autofree char *ids = NULL;
	gint64 id;

	expect_taken("alice@example.jp", "send@fax.example.jp", "busy.eml");
	id = newest_job();
	job = wait_job(id, "failed");
	g_assert_cmpstr(dest_field(job, 0, HK_MILTER_KEY_ATTEMPTS), ==, "2");
	held = held_mail("alice@example.jp", "Subject: Fax failed");
	mail = open_mail(held, "alice.pem");
	hk_assert_contains(mail, "0399998888");
	ids = g_strdup_printf("%" G_GINT64_FORMAT, id);
	out = fax_ctl(0, "resend", ids, NULL);
	hk_assert_contains(out, "1 destination(s) queued again");
	again = wait_job(id, "failed");
	g_assert_cmpstr(dest_field(again, 0, HK_MILTER_KEY_ATTEMPTS), ==, "2");
	g_free(held_mail("alice@example.jp", "Auto-Submitted"));
	g_free(fax_ctl(1, "resend", "999999", NULL));
}

/* A job waiting for its next attempt is canceled at once. */
static void
test_cancel(void)
{
	g_autoptr(json_object) job = NULL;
	g_autofree char *ids = NULL;
	g_autofree char *out = NULL;
	g_autofree char *mail = NULL;
	gint64 id;

	expect_taken("alice@example.jp", "send@fax.example.jp", "cancel.eml");
	id = newest_job();
	ids = g_strdup_printf("%" G_GINT64_FORMAT, id);
	out = fax_ctl(0, "cancel", ids, NULL);
	hk_assert_contains(out, "canceled");
	job = wait_job(id, "canceled");
	g_assert_cmpstr(dest_field(job, 0, HK_MILTER_KEY_STATE), ==, "canceled");
	mail = held_mail("alice@example.jp", "Subject: Fax canceled");
}

/* The list commands, and seed 003's "get the certificate" mail. */
static void
test_admin(void)
{
	g_autofree char *shown = fax_ctl(0, "list", "show", NULL);
	g_autofree char *err = NULL;
	g_autofree char *sent = NULL;
	g_autofree char *mail = NULL;
	g_autofree char *text = NULL;
	g_autofree char *bob = NULL;

	hk_assert_contains(shown, "members: 0312345678 0311112222");
	g_free(fax_ctl(1, "list", "add", "bad list", "0311112222", NULL));
	g_free(fax_ctl(1, "list", "add", "other", "03-ABC", NULL));
	g_free(fax_ctl(0, "list", "add", "other", "+44 20 7946 0000", NULL));
	g_free(shown);
	shown = fax_ctl(0, "list", "show", "other", NULL);
	hk_assert_contains(shown, "other: 00442079460000");
	g_free(fax_ctl(0, "list", "del", "other", NULL));
	g_free(fax_ctl(1, "list", "show", "other", NULL));
	g_free(fax_ctl(1, "show", "999999", NULL));

	sent = fax_ctl(0, "send-cert", "--to", "alice@example.jp, bob@example.jp", NULL);
	hk_assert_contains(sent, "mailed");
	mail = held_mail("alice@example.jp", "Subject: The fax gateway's certificate");
	text = open_mail(mail, "alice.pem");
	hk_assert_contains(text, "gateway.cer");
	hk_assert_contains(text, "application/pkix-cert");
	bob = held_mail("bob@example.jp", "Subject: The fax gateway's certificate");
}

static void
test_direct(void)
{
	g_autoptr(json_object) job = NULL;

	expect_taken("alice@example.jp", "0311112222@fax.example.jp", "direct.eml");
	job = wait_job(newest_job(), "done");
	g_assert_cmpstr(dest_field(job, 0, HK_MILTER_KEY_NUMBER), ==, "0311112222");
	g_free(held_mail("alice@example.jp", "Auto-Submitted"));
}

/* Seed 003's digitalid@ address: erin's outside certificate is registered by a signed
 * mail (her result mails are encrypted from then on) and unregistered by an unsigned one. */
static void
test_registration(void)
{
	g_autofree char *plain = NULL;
	g_autofree char *confirm = NULL;
	g_autofree char *secret = NULL;
	g_autofree char *text = NULL;
	g_autofree char *again = NULL;

	expect_taken("erin@example.jp", "send@fax.example.jp", "erinfax1.eml");
	json_object_put(wait_job(newest_job(), "done"));
	plain = held_mail("erin@example.jp", "Subject: Fax sent");
	g_assert_null(strstr(plain, "application/pkcs7-mime"));

	expect_taken("erin@example.jp", "digitalid@fax.example.jp", "register.eml");
	confirm = held_mail("erin@example.jp", "Subject: Certificate registered");
	hk_assert_contains(confirm, "application/pkcs7-mime");
	text = open_mail(confirm, "erin.pem");
	hk_assert_contains(text, "certificate you signed");

	expect_taken("erin@example.jp", "send@fax.example.jp", "erinfax2.eml");
	json_object_put(wait_job(newest_job(), "done"));
	secret = held_mail("erin@example.jp", "Subject: Fax sent");
	hk_assert_contains(secret, "application/pkcs7-mime");
	g_free(text);
	text = open_mail(secret, "erin.pem");
	hk_assert_contains(text, "was sent to");

	expect_taken("erin@example.jp", "digitalid@fax.example.jp", "unregister.eml");
	g_free(held_mail("erin@example.jp", "Subject: Certificate unregistered"));
	expect_taken("erin@example.jp", "send@fax.example.jp", "erinfax3.eml");
	json_object_put(wait_job(newest_job(), "done"));
	again = held_mail("erin@example.jp", "Subject: Fax sent");
	g_assert_null(strstr(again, "application/pkcs7-mime"));
}

/* SIGKILL after the job is committed, before Postfix hears the milter: the client gets a
 * 4xx and sends again; the job is sent once. */
static void
test_crash(void)
{
	guint before = job_count();
	g_autofree char *t = NULL;
	g_autofree char *log = NULL;
	g_autoptr(json_object) job = NULL;
	int status = 0;
	gint64 id;

	hk_test_kill(&w.milter, SIGTERM);
	milter_start(TRUE);
	wait_log("gateway identity: fax-gw");
	t = swaks("alice@example.jp", "send@fax.example.jp", "crash.eml");
	hk_assert_contains(t, "451 4.7.1");
	for (int i = 0; i < 400 && waitpid(w.milter, &status, WNOHANG) == 0; i++)
		g_usleep(25 * 1000);
	g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	w.milter = 0;

	milter_start(FALSE);
	wait_log("gateway identity: fax-gw");
	/* the spooled job survived the crash and is sent */
	id = newest_job();
	g_assert_cmpuint(job_count(), ==, before + 1);
	job = wait_job(id, "done");
	g_free(held_mail("alice@example.jp", "Auto-Submitted"));
	/* the client's second try is recognised, not queued again */
	expect_taken("alice@example.jp", "send@fax.example.jp", "crash.eml");
	g_assert_cmpuint(job_count(), ==, before + 1);
	log = milter_log();
	hk_assert_contains(log, "fax=duplicate");
}

/* The same gateway with the modem backend: the request goes out through a Class 1
 * soft modem (spandsp's T.31, tests/fax/hk-softmodem) to a fax terminal that receives
 * it, and the result mail says so. */
static void
test_modem(void)
{
	g_autofree char *tty = g_build_filename(w.dir, "ttyFAX0", NULL);
	g_autofree char *rx = g_build_filename(w.dir, "rx", NULL);
	g_autofree char *rx1 = g_build_filename(rx, "rx-1.tif", NULL);
	g_autofree char *log = g_build_filename(w.dir, "softmodem.log", NULL);
	g_autofree char *modem_conf = NULL;
	g_autofree char *mail = NULL;
	g_autofree char *text = NULL;
	g_autoptr(json_object) job = NULL;
	g_autoptr(GError) error = NULL;
	const char *argv[] = {SOFTMODEM,  "--link", tty,       "--far", "terminal",
	                      "--rx-dir", rx,       "--calls", "1",     NULL};
	const char *file_section = strstr(w.conf_text, "[fax.file]");
	GPid softmodem = 0;
	TiffFacts f;
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	g_assert_cmpint(g_mkdir(rx, 0700), ==, 0);
	g_spawn_async_with_fds(w.dir, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
	                       hk_test_die_with_parent, GINT_TO_POINTER(getpid()), &softmodem, -1,
	                       fd, fd, &error);
	close(fd);
	g_assert_no_error(error);
	for (int i = 0; i < 500 && !g_file_test(tty, G_FILE_TEST_EXISTS); i++)
		g_usleep(20 * 1000);
	g_assert_true(g_file_test(tty, G_FILE_TEST_EXISTS));

	/* hanko-milter again, now with fax_backend = modem on the soft modem's pty */
	g_assert_nonnull(file_section);
	modem_conf = g_strdup_printf("%.*sfax_backend = modem\nfax_plugin_dir = %s\n"
	                             "[fax.modem]\ndevice = %s\nlock_dir = %s\n"
	                             "init = AT\nreset = AT\n%s",
	                             (int)(file_section - w.conf_text), w.conf_text, MODEM_DIR, tty,
	                             w.dir, file_section);
	g_assert_true(g_file_set_contents(w.conf, modem_conf, -1, NULL));
	hk_test_kill(&w.milter, SIGTERM);
	milter_start(FALSE);
	wait_log("fax gateway: backend modem");
	wait_log("admin socket on");

	expect_taken("alice@example.jp", "send@fax.example.jp", "modem.eml");
	job = wait_job_for(newest_job(), "done", 240);
	hk_assert_contains(dest_field(job, 0, HK_MILTER_KEY_RESULT), "bps");
	tiff_read(rx1, &f);
	g_assert_cmpuint(f.pages, ==, 1);
	g_assert_cmpuint(f.width, ==, 1728);
	g_assert_cmpuint(f.black, >, 1000);
	mail = held_mail("alice@example.jp", "Subject: Fax sent");
	text = open_mail(mail, "alice.pem");
	hk_assert_contains(text, "0311112222");
	hk_test_kill(&softmodem, SIGTERM);
}

int
main(int argc, char **argv)
{
	int status;

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/fax/subject", test_subject);
	g_test_add_func("/fax/body", test_body);
	g_test_add_func("/fax/refusals", test_refusals);
	g_test_add_func("/fax/retry", test_retry);
	g_test_add_func("/fax/cancel", test_cancel);
	g_test_add_func("/fax/admin", test_admin);
	g_test_add_func("/fax/direct", test_direct);
	g_test_add_func("/fax/registration", test_registration);
	g_test_add_func("/fax/crash", test_crash);
	g_test_add_func("/fax/modem", test_modem);
	world_setup();
	status = g_test_run();
	world_teardown();
	return status;
}
