/*
 * test-softmodem: proves the fax test harness (tests/fax/hk-softmodem) with third-party
 * fax programs before the modem plugin is trusted to it. efax (Debian) sends in Class 1
 * through the soft modem: to the spandsp fax terminal (1 and 3 pages, compared with the
 * source by tests/fax/hk-faxcmp), to a second soft modem where efax -r receives, to a
 * busy line, to a line nobody answers, to a far end that hangs up during page 2, and to
 * a modem that never answers. The harness's Class 2 and 2.0 modems are proved the same
 * way by two programs written against real ones: efax -o2 / -o0 and mgetty's sendfax
 * (pages made G3 by efix), pages compared, plus busy and a hang-up during a page. The
 * harness's --report lines are checked on the way.
 *
 * The audio runs in real time: a page takes seconds, the whole test about two minutes.
 *
 * Talks to: hk-softmodem and hk-faxcmp (the build tree), efax, efix, sendfax and
 * ghostscript (PATH).
 * Must never: leave a harness or efax running (PR_SET_PDEATHSIG, bounded waits), or wait
 * without a bound.
 */
#include "hk-test-certd.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#define SOFTMODEM_BIN HK_TEST_BINDIR "/tests/fax/hk-softmodem"
#define FAXCMP_BIN    HK_TEST_BINDIR "/tests/fax/hk-faxcmp"
#define LSAN_SUPP     "suppressions=" HK_TEST_SRCDIR "/tests/lsan.supp"
#define NUMBER        "0311112222"

static struct {
	char *dir;
	char *pages[3]; /* one TIFF (G3, 204x98 dpi) per page, as efax wants them */
	char *doc;      /* the same 3 pages in one file, for hk-faxcmp */
	guint runs;
} w;

typedef struct {
	GPid pid;
	char *link;
	char *far_link;
	char *rx_dir;
	char *report;
	char *log;
} Softmodem;

/* ----- pages ----- */

static const char page_ps[] =
        "%!PS\n"
        "/Helvetica findfont 28 scalefont setfont\n"
        "1 1 3 {\n"
        "  /p exch def\n"
        "  72 720 moveto (hk-softmodem test page ) show p 3 string cvs show\n"
        "  72 680 moveto (The quick brown fox jumps over the lazy dog.) show\n"
        "  newpath 100 300 moveto 300 0 rlineto 0 200 rlineto -300 0 rlineto closepath\n"
        "  4 setlinewidth stroke\n"
        "  newpath 400 200 p 30 mul 40 add 0 360 arc fill\n"
        "  showpage\n"
        "} for\n";

static void
gs_tiffg3(const char *ps, const char *output)
{
	g_autofree char *out_arg = g_strdup_printf("-sOutputFile=%s", output);
	const char *argv[] = {"gs",        "-q",
	                      "-dNOPAUSE", "-dBATCH",
	                      "-dSAFER",   "-sDEVICE=tiffg3",
	                      "-r204x98",  "-sPAPERSIZE=a4",
	                      out_arg,     ps,
	                      NULL};

	hk_test_run_ok("gs -sDEVICE=tiffg3", argv);
}

static void
make_pages(void)
{
	g_autofree char *ps = g_build_filename(w.dir, "doc.ps", NULL);
	g_autofree char *pattern = g_build_filename(w.dir, "page%d.tif", NULL);

	g_assert_true(g_file_set_contents(ps, page_ps, -1, NULL));
	gs_tiffg3(ps, pattern);
	w.doc = g_build_filename(w.dir, "doc.tif", NULL);
	gs_tiffg3(ps, w.doc);
	for (int i = 0; i < 3; i++) {
		g_autofree char *name = g_strdup_printf("page%d.tif", i + 1);

		w.pages[i] = g_build_filename(w.dir, name, NULL);
		g_assert_true(g_file_test(w.pages[i], G_FILE_TEST_EXISTS));
	}
}

/* ----- the harness ----- */

static void
wait_ready(int fd, Softmodem *sm)
{
	char buf[64] = "";
	gsize got = 0;
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	while (strchr(buf, '\n') == NULL && got < sizeof(buf) - 1) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (g_get_monotonic_time() > deadline || poll(&pfd, 1, 200) < 0)
			break;
		n = pfd.revents ? read(fd, buf + got, sizeof(buf) - 1 - got) : 0;
		if (pfd.revents && n <= 0)
			break;
		got += (gsize)MAX(n, 0);
	}
	if (strcmp(buf, "ready\n") != 0) {
		g_autofree char *log = NULL;

		g_file_get_contents(sm->log, &log, NULL, NULL);
		g_error("hk-softmodem did not say ready (\"%s\"):\n%s", buf, log ? log : "");
	}
}

/* Starts hk-softmodem --link DIR/modem --report ... plus the extra arguments. */
static void softmodem_free(Softmodem *sm);

static Softmodem *
softmodem_start(const char *const *extra)
{
	Softmodem *sm = g_new0(Softmodem, 1);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_auto(GStrv) env = g_environ_setenv(g_get_environ(), "LSAN_OPTIONS", LSAN_SUPP, FALSE);
	g_autoptr(GError) error = NULL;
	int out[2];
	int log_fd;

	w.runs++;
	sm->link = g_build_filename(w.dir, "modem", NULL);
	sm->far_link = g_build_filename(w.dir, "far", NULL);
	sm->rx_dir = g_strdup_printf("%s/rx%u", w.dir, w.runs);
	sm->report = g_strdup_printf("%s/report%u.jsonl", w.dir, w.runs);
	sm->log = g_strdup_printf("%s/softmodem%u.log", w.dir, w.runs);
	g_assert_cmpint(g_mkdir(sm->rx_dir, 0700), ==, 0);
	for (const char *a0[] = {SOFTMODEM_BIN, "--link", sm->link, "--rx-dir", sm->rx_dir,
	                         "--report", sm->report, NULL},
	                **a = a0;
	     *a; a++)
		g_ptr_array_add(argv, g_strdup(*a));
	for (; extra != NULL && *extra; extra++)
		g_ptr_array_add(argv, g_strdup(*extra));
	g_ptr_array_add(argv, NULL);
	g_assert_cmpint(pipe2(out, O_CLOEXEC), ==, 0);
	log_fd = open(sm->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	g_assert_cmpint(log_fd, >=, 0);
	g_spawn_async_with_fds(w.dir, (char **)argv->pdata, env, G_SPAWN_DO_NOT_REAP_CHILD,
	                       hk_test_die_with_parent, GINT_TO_POINTER(getpid()), &sm->pid, -1,
	                       out[1], log_fd, &error);
	close(out[1]);
	close(log_fd);
	g_assert_no_error(error);
	wait_ready(out[0], sm);
	close(out[0]);
	g_assert_true(g_file_test(sm->link, G_FILE_TEST_IS_SYMLINK));
	return sm;
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Softmodem, softmodem_free)

/* SIGTERM: the harness removes its links and exits 0. */
static void
softmodem_stop(Softmodem *sm)
{
	int status = hk_test_kill(&sm->pid, SIGTERM);

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		g_autofree char *log = NULL;

		g_file_get_contents(sm->log, &log, NULL, NULL);
		g_error("hk-softmodem ended with status %d:\n%s", status, log ? log : "");
	}
	g_assert_false(g_file_test(sm->link, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK));
}

static void
softmodem_free(Softmodem *sm)
{
	if (sm->pid != 0)
		hk_test_kill(&sm->pid, SIGKILL);
	g_free(sm->link);
	g_free(sm->far_link);
	g_free(sm->rx_dir);
	g_free(sm->report);
	g_free(sm->log);
	g_free(sm);
}

/* The call's report line is written once the far end is done, a moment after the
 * program on the near device has closed it. */
static void
wait_report(Softmodem *sm)
{
	for (int i = 0; i < 100 && !g_file_test(sm->report, G_FILE_TEST_EXISTS); i++)
		g_usleep(100 * 1000);
}

static char **
report_lines(Softmodem *sm)
{
	g_autofree char *text = NULL;

	g_assert_true(g_file_get_contents(sm->report, &text, NULL, NULL));
	g_strchomp(text);
	return g_strsplit(text, "\n", -1);
}

/* ----- efax ----- */

/* efax -oOPT -h "" -t NUMBER files... through the harness's device; its exit status. */
static int
efax_send_class(Softmodem *sm, const char *opt, const char *const *files, char **log)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	for (const char *a0[] = {"timeout", "150", "efax", "-d", sm->link, opt, "-h", "", "-v",
	                         "ewinchmt", "-t", NUMBER, NULL},
	                **a = a0;
	     *a; a++)
		g_ptr_array_add(argv, (gpointer)*a);
	for (; *files; files++)
		g_ptr_array_add(argv, (gpointer)*files);
	g_ptr_array_add(argv, NULL);
	return hk_test_runv(NULL, NULL, log, (const char *const *)argv->pdata);
}

static int
efax_send(Softmodem *sm, const char *const *files, char **log)
{
	return efax_send_class(sm, "-o1", files, log);
}

static void
assert_same_pages(const char *source, const char *const *received, guint n)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autofree char *out = NULL;
	int status;

	g_ptr_array_add(argv, (gpointer)FAXCMP_BIN);
	g_ptr_array_add(argv, (gpointer) "--trim");
	g_ptr_array_add(argv, (gpointer)source);
	for (guint i = 0; i < n; i++)
		g_ptr_array_add(argv, (gpointer)received[i]);
	g_ptr_array_add(argv, NULL);
	status = hk_test_runv(NULL, &out, NULL, (const char *const *)argv->pdata);
	g_test_message("hk-faxcmp:\n%s", out);
	if (status != 0)
		g_error("pages received differ from the source:\n%s", out);
}

/* ----- tests ----- */

/* The first n (1 or 2) source pages as one file, to compare a received fax with. */
static char *
first_pages(guint n)
{
	char *two = g_build_filename(w.dir, "first-two.tif", NULL);

	if (n == 1) {
		g_free(two);
		return g_strdup(w.pages[0]);
	}
	if (!g_file_test(two, G_FILE_TEST_EXISTS))
		hk_test_run_ok("tiffcp",
		               (const char *[]){"tiffcp", w.pages[0], w.pages[1], two, NULL});
	return two;
}

/* The one report line of a call that went through: its result, pages and line time. */
static void
assert_ok_report(Softmodem *sm, int pages)
{
	g_auto(GStrv) lines = report_lines(sm);
	g_autofree char *expect = g_strdup_printf("\"result\":\"ok\",\"pages\":%d,", pages);

	g_test_message("report: %s", lines[0]);
	g_assert_cmpuint(g_strv_length(lines), ==, 1);
	hk_assert_contains(lines[0], "{\"call\":1,\"answer\":\"normal\",");
	hk_assert_contains(lines[0], expect);
	hk_assert_contains(lines[0], ",\"rate\":14400,\"ecm\":false,\"t30_status\":0,"
	                             "\"t30_text\":\"OK\"}");
	g_assert_null(strstr(lines[0], "\"line_samples\":0,"));
}

static void
send_pages(guint n)
{
	const char *extra[] = {"--calls", "1", NULL};
	g_autoptr(Softmodem) sm = softmodem_start(extra);
	const char *files[] = {w.pages[0], w.pages[1], w.pages[2], NULL};
	g_autofree char *log = NULL;
	g_autofree char *rx = g_build_filename(sm->rx_dir, "rx-1.tif", NULL);
	g_autofree char *source = n == 1 ? g_strdup(w.pages[0]) : g_strdup(w.doc);
	int status;

	files[n] = NULL;
	status = efax_send(sm, files, &log);
	if (status != 0)
		g_error("efax exited %d:\n%s", status, log);
	hk_assert_contains(log, "done, returning 0");
	softmodem_stop(sm);
	assert_same_pages(source, (const char *[]){rx}, 1);
	assert_ok_report(sm, (int)n);
}

static void
test_efax_one_page(void)
{
	send_pages(1);
}

static void
test_efax_three_pages(void)
{
	send_pages(3);
}

/* efax -r answers on the far soft modem (RING, ATA) and receives what efax sends. */
static void
test_far_modem(void)
{
	const char *extra[] = {"--far", "modem", "--far-link", NULL, NULL};
	g_autoptr(Softmodem) sm = NULL;
	g_autofree char *far = g_build_filename(w.dir, "far", NULL);
	g_autofree char *prefix = g_build_filename(w.dir, "efax-rx", NULL);
	g_autofree char *rx_log = g_build_filename(w.dir, "efax-r.log", NULL);
	g_autofree char *rx1 = g_strdup_printf("%s.001", prefix);
	g_autofree char *rx2 = g_strdup_printf("%s.002", prefix);
	const char *files[] = {w.pages[0], w.pages[1], NULL};
	const char *rx_argv[] = {"efax", "-d", far, "-o1", "-v", "ewinchmr", "-r", prefix, NULL};
	g_autofree char *log = NULL;
	g_autofree char *two = NULL;
	g_autoptr(GError) error = NULL;
	GPid rx_pid = 0;
	int rx_status = -1;
	int log_fd;

	extra[3] = far;
	sm = softmodem_start(extra);
	log_fd = open(rx_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	g_spawn_async_with_fds(w.dir, (char **)rx_argv, NULL,
	                       G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_SEARCH_PATH,
	                       hk_test_die_with_parent, GINT_TO_POINTER(getpid()), &rx_pid, -1,
	                       log_fd, log_fd, &error);
	close(log_fd);
	g_assert_no_error(error);
	g_usleep(G_USEC_PER_SEC); /* efax -r: initialised and waiting for RING */
	g_assert_cmpint(efax_send(sm, files, &log), ==, 0);
	for (int i = 0; i < 100 && waitpid(rx_pid, &rx_status, WNOHANG) == 0; i++)
		g_usleep(100 * 1000);
	if (!WIFEXITED(rx_status) || WEXITSTATUS(rx_status) != 0) {
		g_autofree char *text = NULL;

		hk_test_kill(&rx_pid, SIGKILL);
		g_file_get_contents(rx_log, &text, NULL, NULL);
		g_error("efax -r ended with %d:\n%s", rx_status, text);
	}
	g_spawn_close_pid(rx_pid);
	softmodem_stop(sm);
	/* the first two pages of doc.tif, as one file, are what efax -r must have */
	two = first_pages(2);
	assert_same_pages(two, (const char *[]){rx1, rx2}, 2);
	{
		g_auto(GStrv) lines = report_lines(sm);

		g_assert_cmpuint(g_strv_length(lines), ==, 1);
		hk_assert_contains(lines[0], "\"answer\":\"normal\",\"result\":\"ok\"");
	}
}

/* busy, then no answer, then a call that goes through: what efax says, what the report says */
static void
test_busy_noanswer(void)
{
	const char *extra[] = {"--answer", "busy,noanswer,normal", "--noanswer-ms", "1500", NULL};
	g_autoptr(Softmodem) sm = softmodem_start(extra);
	const char *files[] = {w.pages[0], NULL};
	g_autofree char *busy_log = NULL;
	g_autofree char *noanswer_log = NULL;
	g_auto(GStrv) lines = NULL;

	g_assert_cmpint(efax_send(sm, files, &busy_log), ==, 1); /* 1: busy, try again */
	hk_assert_contains(busy_log, "[<CR><LF>BUSY<CR><LF>]");
	hk_assert_contains(busy_log, "number is busy");
	g_assert_cmpint(efax_send(sm, files, &noanswer_log), ==, 2);
	hk_assert_contains(noanswer_log, "[<CR><LF>NO ANSWER<CR><LF>]");
	softmodem_stop(sm);
	lines = report_lines(sm);
	g_assert_cmpuint(g_strv_length(lines), ==, 2);
	g_assert_cmpstr(lines[0], ==,
	                "{\"call\":1,\"answer\":\"busy\",\"result\":\"busy\",\"pages\":0,"
	                "\"coding\":\"\",\"line_samples\":0,\"line_seconds\":0.000,\"rate\":0,"
	                "\"ecm\":false,"
	                "\"t30_status\":-1,\"t30_text\":\"busy\"}");
	hk_assert_contains(lines[1],
	                   "{\"call\":2,\"answer\":\"noanswer\",\"result\":\"noanswer\",");
}

/* The far terminal hangs up once page 2 has begun: NO CARRIER to efax, a failed call. */
static void
test_hangup_mid_page(void)
{
	const char *extra[] = {"--hangup-after", "1", NULL};
	g_autoptr(Softmodem) sm = softmodem_start(extra);
	const char *files[] = {w.pages[0], w.pages[1], NULL};
	g_autofree char *log = NULL;
	g_auto(GStrv) lines = NULL;

	/* efax 0.9a dies of SIGFPE after the NO CARRIER (exit 5): anything but 0 */
	g_assert_cmpint(efax_send(sm, files, &log), !=, 0);
	hk_assert_contains(log, "NO CARRIER");
	hk_assert_contains(log, "failed -> ");
	softmodem_stop(sm);
	lines = report_lines(sm);
	g_assert_cmpuint(g_strv_length(lines), ==, 1);
	hk_assert_contains(lines[0], "\"result\":\"failed\",\"pages\":1,");
	hk_assert_contains(lines[0], "\"t30_text\":\"The call dropped prematurely\"}");
}

/* A modem that never answers: efax gives up with 4 (no response from modem). */
static void
test_silent(void)
{
	const char *extra[] = {"--silent", NULL};
	g_autoptr(Softmodem) sm = softmodem_start(extra);
	const char *files[] = {w.pages[0], NULL};
	g_autofree char *log = NULL;

	g_assert_cmpint(efax_send(sm, files, &log), ==, 4);
	hk_assert_contains(log, "modem not responding");
	softmodem_stop(sm);
}

/* ----- Class 2 and 2.0 ----- */

/* The report line of a Class 2 call: MH (what efax and sendfax send), no ECM. */
static void
assert_class2_report(Softmodem *sm, int pages)
{
	g_auto(GStrv) lines = report_lines(sm);
	g_autofree char *expect =
	        g_strdup_printf("\"result\":\"ok\",\"pages\":%d,\"coding\":\"MH\",", pages);

	g_test_message("report: %s", lines[0]);
	g_assert_cmpuint(g_strv_length(lines), ==, 1);
	hk_assert_contains(lines[0], expect);
	hk_assert_contains(lines[0], ",\"rate\":14400,\"ecm\":false,\"t30_status\":0,");
}

/* After a Class 2 program's fax of n pages: the harness's report, what arrived. */
static void
class2_check(Softmodem *sm, guint n)
{
	g_autofree char *rx = g_build_filename(sm->rx_dir, "rx-1.tif", NULL);
	g_autofree char *source = first_pages(n);

	wait_report(sm);
	softmodem_stop(sm);
	assert_same_pages(source, (const char *[]){rx}, 1);
	assert_class2_report(sm, (int)n);
}

static void
efax_class2(const char *fclass, const char *opt, guint n)
{
	const char *extra[] = {"--calls", "1", "--class", fclass, NULL};
	g_autoptr(Softmodem) sm = softmodem_start(extra);
	const char *files[] = {w.pages[0], w.pages[1], w.pages[2], NULL};
	g_autofree char *log = NULL;
	int status;

	files[n] = NULL;
	status = efax_send_class(sm, opt, files, &log);
	if (status != 0)
		g_error("efax %s exited %d:\n%s", opt, status, log);
	/* efax checks the modem's pace (a modem that takes data too fast fails flow control) */
	g_assert_null(strstr(log, "flow control did not work"));
	hk_assert_contains(log, "done, returning 0");
	class2_check(sm, n);
}

static void
test_efax_class2(void)
{
	efax_class2("2", "-o2", 2);
}

static void
test_efax_class20(void)
{
	efax_class2("2.0", "-o0", 1);
}

/* The pages as raw G3 (efix), the format mgetty's sendfax sends. */
static char *
g3_page(guint i)
{
	g_autofree char *name = g_strdup_printf("page%u.g3", i + 1);
	char *g3 = g_build_filename(w.dir, name, NULL);

	if (!g_file_test(g3, G_FILE_TEST_EXISTS))
		hk_test_run_ok("efix",
		               (const char *[]){"efix", "-ofax", "-n", g3, w.pages[i], NULL});
	return g3;
}

/* sendfax wants its device under /dev: the pty itself, which the link points at. */
static void
sendfax_class2(const char *fclass, guint n)
{
	const char *extra[] = {"--calls", "1", "--class", fclass, NULL};
	g_autoptr(Softmodem) sm = softmodem_start(extra);
	g_autofree char *tty = g_file_read_link(sm->link, NULL);
	g_autofree char *g3_1 = g3_page(0);
	g_autofree char *g3_2 = g3_page(1);
	const char *argv[] = {"timeout", "150",  "sendfax", "-v", "-l",
	                      tty,       NUMBER, g3_1,      g3_2, NULL};
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	int status;

	g_assert_nonnull(tty);
	g_assert_true(g_str_has_prefix(tty, "/dev/"));
	if (n == 1)
		argv[8] = NULL;
	status = hk_test_runv(NULL, &out, &err, argv);
	if (status != 0)
		g_error("sendfax exited %d:\n%s%s", status, out, err);
	class2_check(sm, n);
}

static void
test_sendfax_class2(void)
{
	sendfax_class2("2", 2);
}

static void
test_sendfax_class20(void)
{
	sendfax_class2("2.0", 1);
}

/* Busy in Class 2.0: efax hears BUSY after the dial, as from any modem */
static void
test_class20_busy(void)
{
	const char *extra[] = {"--class", "2.0", "--answer", "busy", NULL};
	g_autoptr(Softmodem) sm = softmodem_start(extra);
	const char *files[] = {w.pages[0], NULL};
	g_autofree char *log = NULL;

	g_assert_cmpint(efax_send_class(sm, "-o0", files, &log), ==, 1);
	hk_assert_contains(log, "[<CR><LF>BUSY<CR><LF>]");
	softmodem_stop(sm);
}

/* The far end hangs up during page 2 of 3: the Class 2 modem reports +FHNG:52 (no
 * response to MPS), which efax explains as a phase D hang-up. */
static void
test_class2_hangup_mid_page(void)
{
	const char *extra[] = {"--class", "2", "--hangup-after", "1", NULL};
	g_autoptr(Softmodem) sm = softmodem_start(extra);
	const char *files[] = {w.pages[0], w.pages[1], w.pages[2], NULL};
	g_autofree char *log = NULL;
	g_auto(GStrv) lines = NULL;

	g_assert_cmpint(efax_send_class(sm, "-o2", files, &log), !=, 0);
	hk_assert_contains(log, "+FHNG:52");
	hk_assert_contains(log, "No response to MPS repeated 3 times");
	wait_report(sm);
	softmodem_stop(sm);
	lines = report_lines(sm);
	g_assert_cmpuint(g_strv_length(lines), ==, 1);
	hk_assert_contains(lines[0], "\"result\":\"failed\",\"pages\":1,");
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int status;

	g_test_init(&argc, &argv, NULL);
	w.dir = g_dir_make_tmp("hanko-softmodem-XXXXXX", &error);
	g_assert_no_error(error);
	make_pages();
	g_test_add_func("/softmodem/efax/one-page", test_efax_one_page);
	g_test_add_func("/softmodem/efax/three-pages", test_efax_three_pages);
	g_test_add_func("/softmodem/efax/far-modem", test_far_modem);
	g_test_add_func("/softmodem/efax/busy-noanswer", test_busy_noanswer);
	g_test_add_func("/softmodem/efax/hangup-mid-page", test_hangup_mid_page);
	g_test_add_func("/softmodem/efax/silent", test_silent);
	g_test_add_func("/softmodem/class2/efax", test_efax_class2);
	g_test_add_func("/softmodem/class2/sendfax", test_sendfax_class2);
	g_test_add_func("/softmodem/class2/hangup-mid-page", test_class2_hangup_mid_page);
	g_test_add_func("/softmodem/class2.0/efax", test_efax_class20);
	g_test_add_func("/softmodem/class2.0/sendfax", test_sendfax_class20);
	g_test_add_func("/softmodem/class2.0/busy", test_class20_busy);
	status = g_test_run();
	if (status == 0)
		hk_test_remove_tree(w.dir);
	else
		g_printerr("test-softmodem: files kept in %s\n", w.dir);
	for (int i = 0; i < 3; i++)
		g_free(w.pages[i]);
	g_free(w.doc);
	g_free(w.dir);
	return status;
}
