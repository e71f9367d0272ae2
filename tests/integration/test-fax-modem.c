/*
 * test-fax-modem: the `modem` fax plugin (hanko-fax-modem.so) against hk-softmodem, a soft
 * Class 1 modem (spandsp's T.31), or its Class 2 / 2.0 modem (T.30 by spandsp), on a pty
 * whose calls reach a spandsp fax terminal over a simulated line in real time.
 *
 * Each test starts its own hk-softmodem in a temporary directory, loads the plugin with
 * fax_plugin_load() and a FaxPluginHost of its own, and sends pages rendered by the fax
 * renderer: they must arrive intact (pages, dimensions, every pixel); busy, no answer,
 * a far end hanging up mid-page, a silent modem, a missing device, a held lock and a
 * cancel must each end with the right result code and a clear text.
 * Talks to: hk-softmodem (spawned, killed), the plugin, libtiff to read what arrived.
 * Must never: leave a softmodem running (die-with-parent, SIGTERM in teardown), or take
 * more than a few minutes: the audio is real time, so the scenarios are kept short.
 */
#include "fax-plugin.h"
#include "fax-render.h"
#include "hk-test-certd.h"
#include "hk-test-faxhost.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <tiffio.h>
#include <unistd.h>

#include <glib/gstdio.h>

#define SOFTMODEM       HK_TEST_BINDIR "/tests/fax/hk-softmodem"
#define PLUGIN_DIR      HK_TEST_BINDIR "/milter-smime/fax/modem"
#define READY_US        (10 * G_USEC_PER_SEC)
#define CANCEL_DELAY_US (2 * G_USEC_PER_SEC)
#define CANCEL_BOUND_US (20 * G_USEC_PER_SEC) /* from cancel() to send() returning */

typedef struct {
	char *dir;
	char *tty;    /* the softmodem's symlink to its pty */
	char *rx_dir; /* rx-N.tif */
	char *report; /* one JSON line per call */
	char *tiff;   /* the pages we send */
	GPid softmodem;
	HkTestFaxHost fh; /* the plugin and its [fax.modem] */
} Fixture;

/* ----- the plugin ----- */

static void
conf_set(Fixture *fx, const char *key, const char *value)
{
	hk_test_faxhost_set(&fx->fh, key, value);
}

static void
plugin_open(Fixture *fx)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(hk_test_faxhost_open(&fx->fh, PLUGIN_DIR, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(fx->fh.plugin->name, ==, "modem");
	g_assert_cmpuint(fx->fh.plugin->api_version, ==, FAX_PLUGIN_API_VERSION);
}

/* ----- the pages ----- */

static void
render_pages(const char *path, guint pages)
{
	FaxRenderOptions options = {.resolution = FAX_RES_FINE,
	                            .coding = FAX_CODING_MR,
	                            .font = "DejaVu Sans 11",
	                            .header_from = "test@example.jp"};
	g_autoptr(FaxRender) render = fax_render_new(&options);
	g_autoptr(GString) text = g_string_new(NULL);
	g_autoptr(GError) error = NULL;

	/* one text document per page: a few lines, each different, so that a page takes
	 * seconds rather than half a minute of real-time audio */
	for (guint page = 0; page < pages; page++) {
		g_string_truncate(text, 0);
		for (guint i = 0; i < 8; i++)
			g_string_append_printf(text, "hanko fax modem test, page %u line %u: %s\n",
			                       page + 1, i,
			                       (page + i) % 3 == 0 ? "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			                                           : "0123456789 ++ -- ## **");
		g_assert_true(fax_render_add_document(render, "text/plain", (guint8 *)text->str,
		                                      text->len, &error));
		g_assert_no_error(error);
	}
	g_assert_cmpuint(fax_render_get_n_pages(render), ==, pages);
	g_assert_true(fax_render_write_tiff(render, path, &error));
	g_assert_no_error(error);
}

typedef struct {
	guint32 width, length;
	GByteArray *pixels; /* rows, 0 = white */
} Page;

static void
page_free(gpointer data)
{
	Page *page = data;

	g_byte_array_unref(page->pixels);
	g_free(page);
}

/* Every page of a TIFF, decoded, white = 0 whatever the file's photometric says. */
static GPtrArray *
tiff_pages(const char *path)
{
	GPtrArray *pages = g_ptr_array_new_with_free_func(page_free);
	TIFF *tif = TIFFOpen(path, "r");

	g_assert_nonnull(tif);
	do {
		Page *page = g_new0(Page, 1);
		guint16 photometric = PHOTOMETRIC_MINISWHITE;
		tmsize_t row_size = TIFFScanlineSize(tif);
		g_autofree guint8 *row = g_malloc(row_size);

		TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &page->width);
		TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &page->length);
		TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric);
		page->pixels = g_byte_array_sized_new((guint)(row_size * page->length));
		for (guint32 y = 0; y < page->length; y++) {
			g_assert_cmpint(TIFFReadScanline(tif, row, y, 0), ==, 1);
			if (photometric == PHOTOMETRIC_MINISBLACK) {
				for (tmsize_t i = 0; i < row_size; i++)
					row[i] = (guint8)~row[i];
			}
			g_byte_array_append(page->pixels, row, (guint)row_size);
		}
		g_ptr_array_add(pages, page);
	} while (TIFFReadDirectory(tif));
	TIFFClose(tif);
	return pages;
}

/* The far end got the first n_pages of the n_sent pages, pixel for pixel. */
static void
assert_received_first(Fixture *fx, guint call, guint n_sent, guint n_pages)
{
	g_autofree char *name = g_strdup_printf("rx-%u.tif", call);
	g_autofree char *rx = g_build_filename(fx->rx_dir, name, NULL);
	g_autoptr(GPtrArray) sent = tiff_pages(fx->tiff);
	g_autoptr(GPtrArray) got = tiff_pages(rx);

	g_assert_cmpuint(sent->len, ==, n_sent);
	g_assert_cmpuint(got->len, ==, n_pages);
	for (guint i = 0; i < n_pages; i++) {
		Page *a = g_ptr_array_index(sent, i);
		Page *b = g_ptr_array_index(got, i);

		g_assert_cmpuint(b->width, ==, a->width);
		g_assert_cmpuint(b->length, ==, a->length);
		g_assert_cmpmem(b->pixels->data, b->pixels->len, a->pixels->data, a->pixels->len);
	}
}

static void
assert_received_intact(Fixture *fx, guint call, guint n_pages)
{
	assert_received_first(fx, call, n_pages, n_pages);
}

/* ----- the softmodem ----- */

/* Starts hk-softmodem with the fixture's paths and extra options (NULL-terminated);
 * FALSE when it refuses them (an option it does not have) or never gets ready. */
static gboolean
softmodem_try(Fixture *fx, const char *const *extra)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_autofree char *log = g_build_filename(fx->dir, "softmodem.log", NULL);
	int log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	gboolean ready = FALSE;

	const char *const base[] = {SOFTMODEM,  "--link",   fx->tty,   "--rx-dir",
	                            fx->rx_dir, "--report", fx->report};
	for (gsize i = 0; i < G_N_ELEMENTS(base); i++)
		g_ptr_array_add(argv, (gpointer)base[i]);
	for (gsize i = 0; extra != NULL && extra[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)extra[i]);
	g_ptr_array_add(argv, NULL);
	g_assert_cmpint(log_fd, >=, 0);
	g_spawn_async_with_fds(fx->dir, (char **)argv->pdata, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
	                       hk_test_die_with_parent, GINT_TO_POINTER(getpid()), &fx->softmodem,
	                       -1, log_fd, log_fd, &error);
	g_assert_no_error(error);
	close(log_fd);
	/* "ready" goes to the log (not into our TAP output); the symlink says the same */
	for (gint64 deadline = g_get_monotonic_time() + READY_US;
	     g_get_monotonic_time() < deadline;) {
		int status;

		if (g_file_test(fx->tty, G_FILE_TEST_EXISTS)) {
			ready = TRUE;
			break;
		}
		if (waitpid(fx->softmodem, &status, WNOHANG) == fx->softmodem) {
			fx->softmodem = 0;
			return FALSE;
		}
		g_usleep(20 * 1000);
	}
	return ready;
}

static void
softmodem_start(Fixture *fx, const char *const *extra)
{
	if (!softmodem_try(fx, extra)) {
		g_autofree char *log = g_build_filename(fx->dir, "softmodem.log", NULL);
		g_autofree char *text = NULL;

		g_file_get_contents(log, &text, NULL, NULL);
		g_error("hk-softmodem did not get ready:\n%s", text != NULL ? text : "");
	}
}

/* What the softmodem said, into the test's output: for a test about to fail. */
static void
softmodem_show_log(Fixture *fx)
{
	g_autofree char *log = g_build_filename(fx->dir, "softmodem.log", NULL);
	g_autofree char *text = NULL;

	g_file_get_contents(log, &text, NULL, NULL);
	g_test_message("hk-softmodem's log:\n%s", text != NULL ? text : "(none)");
}

/* With --calls 1 the softmodem writes its report line and exits once the far end is
 * done with the call, which can be a moment after our side hung up. */
static void
softmodem_wait_exit(Fixture *fx)
{
	gint64 deadline = g_get_monotonic_time() + READY_US;

	while (fx->softmodem != 0 && g_get_monotonic_time() < deadline) {
		int status;

		if (waitpid(fx->softmodem, &status, WNOHANG) == fx->softmodem) {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				softmodem_show_log(fx);
			g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
			fx->softmodem = 0;
			return;
		}
		g_usleep(50 * 1000);
	}
	hk_test_kill(&fx->softmodem, SIGTERM);
	g_assert_not_reached();
}

/* ----- fixture ----- */

static void
fixture_set_up(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_test(SOFTMODEM, G_FILE_TEST_IS_EXECUTABLE));
	fx->dir = g_dir_make_tmp("hk-fax-modem-XXXXXX", &error);
	g_assert_no_error(error);
	fx->tty = g_build_filename(fx->dir, "ttyFAX0", NULL);
	fx->rx_dir = g_build_filename(fx->dir, "rx", NULL);
	fx->report = g_build_filename(fx->dir, "report.jsonl", NULL);
	fx->tiff = g_build_filename(fx->dir, "pages.tif", NULL);
	g_assert_cmpint(g_mkdir(fx->rx_dir, 0700), ==, 0);
	hk_test_faxhost_init(&fx->fh, fx->tty, fx->dir, "HANKO TEST");
}

static void
fixture_tear_down(Fixture *fx, gconstpointer data)
{
	hk_test_faxhost_clear(&fx->fh);
	hk_test_kill(&fx->softmodem, SIGTERM);
	if (fx->dir != NULL && !hk_test_keep_files())
		hk_test_remove_tree(fx->dir);
	else if (fx->dir != NULL)
		g_test_message("files kept in %s", fx->dir);
	g_free(fx->dir);
	g_free(fx->tty);
	g_free(fx->rx_dir);
	g_free(fx->report);
	g_free(fx->tiff);
}

/* ----- sending ----- */

typedef struct {
	GString *phases; /* "D N P1/3 P2/3 P3/3 H" */
	Fixture *fx;
	guint cancel_at_page; /* 0: never */
	GThread *canceler;
	gint64 canceled_at;
} Progress;

static gpointer
cancel_later(gpointer data)
{
	Progress *p = data;

	g_usleep(CANCEL_DELAY_US);
	p->canceled_at = g_get_monotonic_time();
	p->fx->fh.plugin->cancel(p->fx->fh.self);
	return NULL;
}

static void
on_progress(const FaxProgress *progress, gpointer user_data)
{
	Progress *p = user_data;

	if (p->phases->len > 0)
		g_string_append_c(p->phases, ' ');
	switch (progress->phase) {
	case FAX_PHASE_DIALING:
		g_string_append(p->phases, "D");
		break;
	case FAX_PHASE_NEGOTIATING:
		g_string_append(p->phases, "N");
		break;
	case FAX_PHASE_PAGE:
		g_string_append_printf(p->phases, "P%u/%u", progress->page, progress->pages);
		/* cancel from another thread, as hankoctl fax cancel does, while the page runs */
		if (progress->page == p->cancel_at_page && p->canceler == NULL)
			p->canceler = g_thread_new("cancel", cancel_later, p);
		break;
	case FAX_PHASE_HANGUP:
		g_string_append(p->phases, "H");
		break;
	}
}

static void
send_pages(Fixture *fx, guint pages, Progress *progress, FaxSendResult *result)
{
	FaxSendRequest request = {1, "0312345678", "0312345678", fx->tiff, pages, "", ""};

	progress->phases = g_string_new(NULL);
	progress->fx = fx;
	memset(result, 0, sizeof(*result));
	fx->fh.plugin->send(fx->fh.self, &request, on_progress, progress, result);
	if (progress->canceler != NULL)
		g_thread_join(progress->canceler);
	g_test_message("result %d, %u pages: %s; progress %s", result->code, result->pages_sent,
	               result->text, progress->phases->str);
}

static void
progress_clear(Progress *progress)
{
	g_string_free(progress->phases, TRUE);
}

static char *
report_text(Fixture *fx)
{
	char *text = NULL;

	g_file_get_contents(fx->report, &text, NULL, NULL);
	return text != NULL ? text : g_strdup("");
}

static void
assert_lock_released(Fixture *fx)
{
	g_autofree char *lock = g_build_filename(fx->dir, "LCK..ttyFAX0", NULL);

	g_assert_false(g_file_test(lock, G_FILE_TEST_EXISTS));
}

/* ----- the scenarios ----- */

/* A modem class and what the call must have used. */
typedef struct {
	const char *fclass;      /* [fax.modem] class */
	const char *softmodem;   /* hk-softmodem --class; NULL: 1 */
	gboolean far_ecm;        /* the far terminal offers ECM */
	const char *result_tail; /* the end of the result text */
	const char *report;      /* in the softmodem's report line */
	const char *garble;      /* hk-softmodem --garble-page; NULL: none */
	const char *phases;      /* the progress expected; NULL: each page once */
} ClassCase;

static const ClassCase class1 = {"auto", NULL, FALSE, "ECM off", "\"result\":\"ok\""};

static void
send_and_check(Fixture *fx, guint pages, const ClassCase *cc)
{
	g_autoptr(GPtrArray) extra = g_ptr_array_new();
	FaxSendResult result;
	Progress progress = {0};
	g_autofree char *report = NULL;
	g_autofree char *expect = NULL;
	g_autoptr(GString) phases = g_string_new("D N");

	g_ptr_array_add(extra, (gpointer) "--calls");
	g_ptr_array_add(extra, (gpointer) "1");
	if (cc->softmodem != NULL) {
		g_ptr_array_add(extra, (gpointer) "--class");
		g_ptr_array_add(extra, (gpointer)cc->softmodem);
	}
	if (cc->far_ecm)
		g_ptr_array_add(extra, (gpointer) "--ecm");
	if (cc->garble != NULL) {
		g_ptr_array_add(extra, (gpointer) "--garble-page");
		g_ptr_array_add(extra, (gpointer)cc->garble);
	}
	g_ptr_array_add(extra, NULL);
	render_pages(fx->tiff, pages);
	softmodem_start(fx, (const char *const *)extra->pdata);
	conf_set(fx, "class", cc->fclass);
	plugin_open(fx);
	send_pages(fx, pages, &progress, &result);
	if (result.code != FAX_RESULT_OK)
		softmodem_show_log(fx);
	g_assert_cmpint(result.code, ==, FAX_RESULT_OK);
	g_assert_cmpuint(result.pages_sent, ==, pages);
	expect = g_strdup_printf("sent %u page%s in ", pages, pages == 1 ? "" : "s");
	g_assert_true(g_str_has_prefix(result.text, expect));
	/* rate, coding and ECM are told: spandsp's T.31 has no fast HDLC, so no ECM there */
	g_assert_nonnull(strstr(result.text, " bps, "));
	g_assert_true(g_str_has_suffix(result.text, cc->result_tail));
	for (guint i = 1; i <= pages; i++)
		g_string_append_printf(phases, " P%u/%u", i, pages);
	g_string_append(phases, " H");
	g_assert_cmpstr(progress.phases->str, ==, cc->phases ? cc->phases : phases->str);
	assert_received_intact(fx, 1, pages);
	/* the far end agrees */
	softmodem_wait_exit(fx);
	report = report_text(fx);
	g_test_message("report: %s", report);
	if (cc->garble != NULL) {
		g_autofree char *log_path = g_build_filename(fx->dir, "softmodem.log", NULL);
		g_autofree char *log = NULL;

		g_file_get_contents(log_path, &log, NULL, NULL);
		g_test_message("softmodem: %s", log != NULL && strstr(log, "came garbled") != NULL
		                                        ? strstr(log, "far terminal: page")
		                                        : "(no garbled page)");
	}
	g_assert_nonnull(strstr(report, "\"result\":\"ok\""));
	g_assert_nonnull(strstr(report, cc->report));
	assert_lock_released(fx);
	g_free(result.text);
	progress_clear(&progress);
}

static void
test_one_page(Fixture *fx, gconstpointer data)
{
	send_and_check(fx, 1, &class1);
}

static void
test_three_pages(Fixture *fx, gconstpointer data)
{
	send_and_check(fx, 3, &class1);
}

/* Class 2: the modem runs T.30; the plugin asks for MR at most, without ECM */
static void
test_class2_pages(Fixture *fx, gconstpointer data)
{
	static const ClassCase cc = {"2", "2", TRUE, "MR, ECM off",
	                             "\"coding\":\"MR\",\"line_samples\""};

	send_and_check(fx, 2, &cc);
}

/* Class 2.0 against a far end with ECM: MMR with error correction, end to end */
static void
test_class20_ecm_mmr(Fixture *fx, gconstpointer data)
{
	static const ClassCase cc = {"2.0", "2.0", TRUE, "MMR, ECM on",
	                             "\"coding\":\"MMR\",\"line_samples\""};

	send_and_check(fx, 2, &cc);
}

/* Class 2.0, the far end without ECM: MR, and auto picks 2.0 from +FCLASS=? */
static void
test_class20_auto(Fixture *fx, gconstpointer data)
{
	static const ClassCase cc = {"auto", "2.0", FALSE, "MR, ECM off", "\"ecm\":false"};

	send_and_check(fx, 1, &cc);
}

#define RTN_REPORT                                                                                 \
	"\"rate\":12000,\"ecm\":false,\"t30_status\":0,\"t30_text\":\"OK\",\"garbled\":\"RTN\""

/* RTN: the far end finds page 1 garbled the first time and answers RTN. Class 1: the
 * plugin's T.30 trains again one step lower (12000 bps) and sends the page again; both
 * pages arrive intact. */
static void
test_rtn_class1(Fixture *fx, gconstpointer data)
{
	static const ClassCase cc = {"1",        NULL, FALSE, "12000 bps, MR, ECM off",
	                             RTN_REPORT, "1",  NULL};

	send_and_check(fx, 2, &cc);
}

/* Class 2: the modem says page status 2 (+FPTS:2), the plugin sends the page again (its
 * progress says so), the modem retrains and tells the new rate (+FDCS) */
static void
test_rtn_class2(Fixture *fx, gconstpointer data)
{
	static const ClassCase cc = {
	        "2", "2", FALSE, "12000 bps, MR, ECM off", RTN_REPORT, "1", "D N P1/2 P1/2 P2/2 H"};

	send_and_check(fx, 2, &cc);
}

/* RTN for the last page of two: the job fails with one page sent. The far end is
 * spandsp's, whose receiver ends the document at EOP and so takes no page after RTN. */
static void
expect_last_page_rejected(Fixture *fx, const char *fclass, const char *const *extra,
                          const char *text, const char *phases)
{
	FaxSendResult result;
	Progress progress = {0};
	g_autofree char *report = NULL;

	render_pages(fx->tiff, 2);
	softmodem_start(fx, extra);
	conf_set(fx, "class", fclass);
	plugin_open(fx);
	send_pages(fx, 2, &progress, &result);
	g_test_message("result %d, %u pages: %s; progress %s", result.code, result.pages_sent,
	               result.text, progress.phases->str);
	g_assert_cmpint(result.code, ==, FAX_RESULT_FAILED);
	g_assert_cmpuint(result.pages_sent, ==, 1);
	g_assert_cmpstr(result.text, ==, text);
	g_assert_cmpstr(progress.phases->str, ==, phases);
	assert_received_first(fx, 1, 2, 1);
	softmodem_wait_exit(fx);
	report = report_text(fx);
	g_test_message("report: %s", report);
	g_assert_nonnull(strstr(report, "\"pages\":1,"));
	g_assert_nonnull(strstr(report, "\"garbled\":\"RTN\""));
	assert_lock_released(fx);
	g_free(result.text);
	progress_clear(&progress);
}

/* Class 1: spandsp 0.0.6's T.30 does not send a page again after RTN to EOP; it ends the
 * call and calls that a success, which the job must not believe */
static void
test_rtn_class1_last(Fixture *fx, gconstpointer data)
{
	const char *const extra[] = {"--calls", "1", "--garble-page", "2", NULL};

	expect_last_page_rejected(fx, "1", extra,
	                          "the far end rejected the last page (RTN), after 1 of 2 pages "
	                          "at 14400 bps, MR, ECM off",
	                          "D N P1/2 P2/2 H");
}

/* Class 2.0: +FPS:2 after EOP; the plugin sends the page again, which the far end refuses */
static void
test_rtn_class20_last(Fixture *fx, gconstpointer data)
{
	const char *const extra[] = {"--calls", "1", "--class", "2.0", "--garble-page", "2", NULL};

	expect_last_page_rejected(fx, "2.0", extra,
	                          "ending a page: hang-up code 54 (no response to EOP repeated "
	                          "three times), after 1 of 2 pages",
	                          "D N P1/2 P2/2 P2/2 H");
}

static void
expect_no_call(Fixture *fx, const char *const *extra, FaxResultCode code, const char *text)
{
	FaxSendResult result;
	Progress progress = {0};

	render_pages(fx->tiff, 1);
	if (extra != NULL)
		softmodem_start(fx, extra);
	plugin_open(fx);
	send_pages(fx, 1, &progress, &result);
	g_assert_cmpint(result.code, ==, code);
	g_assert_cmpuint(result.pages_sent, ==, 0);
	g_assert_cmpstr(result.text, ==, text);
	assert_lock_released(fx);
	g_free(result.text);
	progress_clear(&progress);
}

static void
test_busy(Fixture *fx, gconstpointer data)
{
	const char *const extra[] = {"--answer", "busy", NULL};

	expect_no_call(fx, extra, FAX_RESULT_BUSY, "busy");
}

static void
test_no_answer(Fixture *fx, gconstpointer data)
{
	const char *const extra[] = {"--answer", "noanswer", "--noanswer-ms", "2000", NULL};

	expect_no_call(fx, extra, FAX_RESULT_NO_ANSWER, "no answer");
}

static void
test_silent(Fixture *fx, gconstpointer data)
{
	const char *const extra[] = {"--silent", NULL};
	g_autofree char *text = NULL;
	gint64 start = g_get_monotonic_time();

	text = g_strdup_printf("modem on %s does not answer AT", fx->tty);
	expect_no_call(fx, extra, FAX_RESULT_LOCAL, text);
	/* a few command timeouts, not a hang */
	g_assert_cmpint(g_get_monotonic_time() - start, <, 15 * G_USEC_PER_SEC);
}

static void
test_missing_device(Fixture *fx, gconstpointer data)
{
	g_autofree char *text = NULL;

	text = g_strdup_printf("cannot open %s: No such file or directory", fx->tty);
	expect_no_call(fx, NULL, FAX_RESULT_LOCAL, text);
}

/* A lock of a live process keeps us off the line; a dead one's is removed. */
static void
test_lock(Fixture *fx, gconstpointer data)
{
	g_autofree char *lock = NULL;
	g_autofree char *text = NULL;
	g_autofree char *live = NULL;
	FaxSendResult result;
	Progress progress = {0};

	lock = g_build_filename(fx->dir, "LCK..ttyFAX0", NULL);
	live = g_strdup_printf("%10d\n", (int)getppid());
	g_assert_true(g_file_set_contents(lock, live, -1, NULL));
	render_pages(fx->tiff, 1);
	plugin_open(fx);
	send_pages(fx, 1, &progress, &result);
	g_assert_cmpint(result.code, ==, FAX_RESULT_LOCAL);
	text = g_strdup_printf("%s is locked by process %d (%s)", fx->tty, (int)getppid(), lock);
	g_assert_cmpstr(result.text, ==, text);
	/* not ours: left alone */
	g_assert_true(g_file_test(lock, G_FILE_TEST_EXISTS));
	g_clear_pointer(&result.text, g_free);
	progress_clear(&progress);

	/* a process that is gone (pid_max is below 2^22) */
	g_assert_true(g_file_set_contents(lock, "   4194304\n", -1, NULL));
	send_pages(fx, 1, &progress, &result);
	g_clear_pointer(&text, g_free);
	text = g_strdup_printf("cannot open %s: No such file or directory", fx->tty);
	g_assert_cmpstr(result.text, ==, text);
	assert_lock_released(fx);
	g_free(result.text);
	progress_clear(&progress);
}

static void
test_hangup_mid_page(Fixture *fx, gconstpointer data)
{
	const char *const extra[] = {"--hangup-after", "1", NULL};
	FaxSendResult result;
	Progress progress = {0};

	render_pages(fx->tiff, 2);
	softmodem_start(fx, extra);
	plugin_open(fx);
	send_pages(fx, 2, &progress, &result);
	g_assert_cmpint(result.code, ==, FAX_RESULT_FAILED);
	g_assert_cmpuint(result.pages_sent, ==, 1);
	/* the reason, and how far it got */
	g_assert_nonnull(strstr(result.text, "after 1 of 2 pages"));
	g_assert_true(g_str_has_prefix(result.text, "T.30 error ") ||
	              g_str_has_prefix(result.text, "the line dropped"));
	g_assert_true(g_str_has_prefix(progress.phases->str, "D N P1/2 P2/2"));
	assert_lock_released(fx);
	g_free(result.text);
	progress_clear(&progress);
}

/* Class 2.0: the far end hangs up during the last page; the modem's hang-up code says why */
static void
test_class20_hangup_mid_page(Fixture *fx, gconstpointer data)
{
	const char *const extra[] = {"--class", "2.0", "--hangup-after", "1", NULL};
	FaxSendResult result;
	Progress progress = {0};

	render_pages(fx->tiff, 2);
	softmodem_start(fx, extra);
	conf_set(fx, "class", "2.0");
	plugin_open(fx);
	send_pages(fx, 2, &progress, &result);
	g_assert_cmpint(result.code, ==, FAX_RESULT_FAILED);
	g_assert_cmpuint(result.pages_sent, ==, 1);
	g_assert_cmpstr(result.text, ==,
	                "ending a page: hang-up code 54 (no response to EOP repeated three "
	                "times), after 1 of 2 pages");
	g_assert_true(g_str_has_prefix(progress.phases->str, "D N P1/2 P2/2"));
	assert_lock_released(fx);
	g_free(result.text);
	progress_clear(&progress);
}

static void
test_cancel(Fixture *fx, gconstpointer data)
{
	const char *const extra[] = {NULL};
	FaxSendResult result;
	Progress progress = {.cancel_at_page = 1};
	gint64 returned;

	render_pages(fx->tiff, 2);
	softmodem_start(fx, extra);
	plugin_open(fx);
	send_pages(fx, 2, &progress, &result);
	returned = g_get_monotonic_time();
	g_assert_cmpint(result.code, ==, FAX_RESULT_CANCELED);
	g_assert_cmpuint(result.pages_sent, ==, 0);
	g_assert_cmpstr(result.text, ==, "canceled after 0 pages");
	g_assert_cmpint(progress.canceled_at, >, 0);
	g_assert_cmpint(returned - progress.canceled_at, <, CANCEL_BOUND_US);
	g_assert_true(g_str_has_suffix(progress.phases->str, " H"));
	assert_lock_released(fx);
	g_free(result.text);
	progress_clear(&progress);

	/* the next send is not canceled by the last one's cancel: the line answers busy */
	hk_test_kill(&fx->softmodem, SIGTERM);
	{
		const char *const busy[] = {"--answer", "busy", NULL};

		softmodem_start(fx, busy);
		send_pages(fx, 2, &progress, &result);
		g_assert_cmpint(result.code, ==, FAX_RESULT_BUSY);
		g_free(result.text);
		progress_clear(&progress);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/fax-modem/missing-device", Fixture, NULL, fixture_set_up, test_missing_device,
	           fixture_tear_down);
	g_test_add("/fax-modem/lock", Fixture, NULL, fixture_set_up, test_lock, fixture_tear_down);
	g_test_add("/fax-modem/silent", Fixture, NULL, fixture_set_up, test_silent,
	           fixture_tear_down);
	g_test_add("/fax-modem/busy", Fixture, NULL, fixture_set_up, test_busy, fixture_tear_down);
	g_test_add("/fax-modem/no-answer", Fixture, NULL, fixture_set_up, test_no_answer,
	           fixture_tear_down);
	g_test_add("/fax-modem/one-page", Fixture, NULL, fixture_set_up, test_one_page,
	           fixture_tear_down);
	g_test_add("/fax-modem/three-pages", Fixture, NULL, fixture_set_up, test_three_pages,
	           fixture_tear_down);
	g_test_add("/fax-modem/rtn/class1", Fixture, NULL, fixture_set_up, test_rtn_class1,
	           fixture_tear_down);
	g_test_add("/fax-modem/rtn/class2", Fixture, NULL, fixture_set_up, test_rtn_class2,
	           fixture_tear_down);
	g_test_add("/fax-modem/rtn/class2.0-last-page", Fixture, NULL, fixture_set_up,
	           test_rtn_class20_last, fixture_tear_down);
	g_test_add("/fax-modem/rtn/class1-last-page", Fixture, NULL, fixture_set_up,
	           test_rtn_class1_last, fixture_tear_down);
	g_test_add("/fax-modem/class2/two-pages", Fixture, NULL, fixture_set_up, test_class2_pages,
	           fixture_tear_down);
	g_test_add("/fax-modem/class2.0/ecm-mmr", Fixture, NULL, fixture_set_up,
	           test_class20_ecm_mmr, fixture_tear_down);
	g_test_add("/fax-modem/class2.0/auto", Fixture, NULL, fixture_set_up, test_class20_auto,
	           fixture_tear_down);
	g_test_add("/fax-modem/class2.0/hangup-mid-page", Fixture, NULL, fixture_set_up,
	           test_class20_hangup_mid_page, fixture_tear_down);
	g_test_add("/fax-modem/hangup-mid-page", Fixture, NULL, fixture_set_up,
	           test_hangup_mid_page, fixture_tear_down);
	g_test_add("/fax-modem/cancel", Fixture, NULL, fixture_set_up, test_cancel,
	           fixture_tear_down);
	return g_test_run();
}
