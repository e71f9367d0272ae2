/*
 * bench-fax-modem: line time per page of the `modem` fax plugin (hanko-fax-modem.so)
 * against efax, the anchor issue 7 names, sending the same pages through the same soft
 * modem in one run:
 *
 *   hanko  the plugin, loaded with fax_plugin_load() and a FaxPluginHost of our own whose
 *          [fax.modem] points at the pty of tests/fax/hk-softmodem, sending one
 *          multi-page TIFF (fax_render_*(): text pages, MH, normal resolution);
 *   efax   efax -d TTY -o1 -h "" -t NUMBER page-1.tif page-2.tif ... (Debian's efax 0.9a,
 *          which wants one single-strip TIFF per page: the same strips, copied raw);
 *   hanko-ecm  the plugin again, class = 2.0, through hk-softmodem --class 2.0 to a far
 *          terminal that offers ECM: what a capable receiver gets, ECM and MMR.
 *
 * Each fax goes to a fresh hk-softmodem --calls 1, whose far end is a spandsp fax terminal
 * (MH, MR and MMR; ECM only for hanko-ecm); its --report line gives the line time, counted
 * in 8 kHz audio samples while the call is up (not our wall time), the pages received, the
 * rate, ECM, the coding on the line.
 * HANKO_BENCH_N rounds (default 3) of one fax each way, HANKO_BENCH_PAGES pages (default
 * 2), HANKO_BENCH_FINE=1 for fine resolution (twice the rows: slow in real time),
 * HANKO_BENCH_KEEP=1 to keep the files (efax's and the softmodem's logs, what arrived).
 * Prints each round and the medians of line seconds per page, and their ratio (efax/hanko).
 *
 * ECM cannot be measured in Class 1 here: spandsp 0.0.6's T.31 soft modem has no HDLC at
 * fast rates (AT+FTH=? lists V.21 only), so the plugin turns ECM, and with it MMR, off
 * against it; hence the Class 2.0 run, where the modem (spandsp's T.30) does the ECM.
 *
 * A benchmark, not a test: it exits 0 whatever the ratio, non-zero only when a fax does
 * not go through (a send fails, the far end did not get every page).
 * Talks to: hk-softmodem and the plugin of the build tree, efax (PATH), libtiff, a
 * temporary directory.
 * Must never: leave hk-softmodem or efax running (die-with-parent, bounded waits, SIGTERM
 * on every way out), or leave files behind unless a fax failed or HANKO_BENCH_KEEP=1
 * (then they stay, named).
 */
#include "fax-plugin.h"
#include "fax-render.h"
#include "hk-bench.h"
#include "hk-test-certd.h"
#include "hk-test-faxhost.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <tiffio.h>
#include <unistd.h>

#define SOFTMODEM      HK_TEST_BINDIR "/tests/fax/hk-softmodem"
#define PLUGIN_DIR     HK_TEST_BINDIR "/milter-smime/fax/modem"
#define NUMBER         "0311112222"
#define READY_US       (10 * G_USEC_PER_SEC)
#define EXIT_US        (15 * G_USEC_PER_SEC) /* --calls 1: exits 3 s after the hang-up */
#define EFAX_TIMEOUT   "600"                 /* seconds, through timeout(1) */
#define LINE_RATE      8000.0                /* audio samples per second of line time */
#define LINES_PER_PAGE 40

typedef enum {
	SENDER_HANKO,
	SENDER_EFAX,
	SENDER_HANKO_ECM,
	N_SENDERS,
} Sender;

static const char *const sender_names[] = {"hanko", "efax", "hanko-ecm"};

/* One fax: what the softmodem's report says, and what the sender said. */
typedef struct {
	gint64 line_samples;
	int pages;
	int rate;
	gboolean ecm;
	char *coding;      /* MH, MR, MMR: the plugin's result text; efax codes 1-D only */
	char *line_coding; /* the far end's view */
	double wall_s;
} Call;

static struct {
	char *dir;
	char *tty;
	char *doc;    /* the pages in one file, for the plugin */
	char **pages; /* the same, one file a page, for efax (NULL-terminated) */
	guint n_pages;
	gboolean fine;
	GPid softmodem;
	HkTestFaxHost fh[2]; /* the plugin: class auto (Class 1 here), class 2.0 */
} bench;

static void G_GNUC_NORETURN G_GNUC_PRINTF(1, 2) die(const char *format, ...)
{
	va_list args;

	hk_test_kill(&bench.softmodem, SIGTERM);
	va_start(args, format);
	fprintf(stderr, "bench-fax-modem: ");
	vfprintf(stderr, format, args);
	fprintf(stderr, "\n");
	va_end(args);
	if (bench.dir != NULL)
		fprintf(stderr, "bench-fax-modem: files kept in %s\n", bench.dir);
	exit(1);
}

/* ----- the pages ----- */

/* lines short enough not to wrap: a page of a letter, about as dense as one */
static const char *const latin[] = {
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do",
        "eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut",
        "enim ad minim veniam, quis nostrud exercitation ullamco laboris",
        "nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in",
        "reprehenderit in voluptate velit esse cillum dolore eu fugiat.",
        "Excepteur sint occaecat cupidatat non proident, sunt in culpa.",
};

/* A letter's page of text: a title and LINES_PER_PAGE lines, as one document. */
static void
add_page(FaxRender *render, guint page)
{
	g_autoptr(GString) text = g_string_new(NULL);
	g_autoptr(GError) error = NULL;

	g_string_append_printf(text, "bench-fax-modem, page %u of %u\n\n", page + 1, bench.n_pages);
	for (guint i = 0; i < LINES_PER_PAGE; i++)
		g_string_append_printf(text, "%2u  %s\n", i + 1,
		                       latin[(i + page) % G_N_ELEMENTS(latin)]);
	if (!fax_render_add_document(render, "text/plain", (const guint8 *)text->str, text->len,
	                             &error))
		die("fax_render_add_document: %s", error->message);
}

static void
render_document(void)
{
	/* a fixed date in the header line: the same pages, byte for byte, in every run */
	g_autoptr(GDateTime) date = g_date_time_new_utc(2026, 11, 23, 9, 0, 0);
	FaxRenderOptions options = {.resolution = bench.fine ? FAX_RES_FINE : FAX_RES_NORMAL,
	                            .coding = FAX_CODING_MH, /* efax sends 1-D only */
	                            .font = "DejaVu Sans 10",
	                            .header_from = "bench@example.jp",
	                            .date = date};
	g_autoptr(FaxRender) render = fax_render_new(&options);
	g_autoptr(GError) error = NULL;

	for (guint page = 0; page < bench.n_pages; page++)
		add_page(render, page);
	if (fax_render_get_n_pages(render) != bench.n_pages)
		die("%u pages of text became %u fax pages", bench.n_pages,
		    fax_render_get_n_pages(render));
	if (!fax_render_write_tiff(render, bench.doc, &error))
		die("fax_render_write_tiff: %s", error->message);
}

static void
copy_tags(TIFF *in, TIFF *out)
{
	static const ttag_t u16_tags[] = {TIFFTAG_BITSPERSAMPLE,  TIFFTAG_SAMPLESPERPIXEL,
	                                  TIFFTAG_PHOTOMETRIC,    TIFFTAG_FILLORDER,
	                                  TIFFTAG_PLANARCONFIG,   TIFFTAG_ORIENTATION,
	                                  TIFFTAG_RESOLUTIONUNIT, TIFFTAG_COMPRESSION};
	guint32 width = 0, length = 0, t4 = 0;
	float xres = 0, yres = 0;

	for (gsize i = 0; i < G_N_ELEMENTS(u16_tags); i++) {
		guint16 value;

		if (TIFFGetFieldDefaulted(in, u16_tags[i], &value))
			TIFFSetField(out, u16_tags[i], value);
	}
	TIFFGetField(in, TIFFTAG_IMAGEWIDTH, &width);
	TIFFGetField(in, TIFFTAG_IMAGELENGTH, &length);
	TIFFGetField(in, TIFFTAG_XRESOLUTION, &xres);
	TIFFGetField(in, TIFFTAG_YRESOLUTION, &yres);
	TIFFGetField(in, TIFFTAG_GROUP3OPTIONS, &t4);
	TIFFSetField(out, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
	TIFFSetField(out, TIFFTAG_IMAGEWIDTH, width);
	TIFFSetField(out, TIFFTAG_IMAGELENGTH, length);
	TIFFSetField(out, TIFFTAG_ROWSPERSTRIP, length);
	TIFFSetField(out, TIFFTAG_XRESOLUTION, xres);
	TIFFSetField(out, TIFFTAG_YRESOLUTION, yres);
	TIFFSetField(out, TIFFTAG_GROUP3OPTIONS, t4);
	TIFFSetField(out, TIFFTAG_PAGENUMBER, (guint16)0, (guint16)1);
}

/* The current page of in as a file of its own: same tags, the coded strip as it is. */
static void
split_page(TIFF *in, const char *path)
{
	TIFF *out = TIFFOpen(path, "w");
	tmsize_t size;
	g_autofree guint8 *strip = NULL;

	if (out == NULL)
		die("cannot write %s", path);
	if (TIFFNumberOfStrips(in) != 1)
		die("%s: a page of %u strips (efax takes one)", bench.doc, TIFFNumberOfStrips(in));
	size = (tmsize_t)TIFFGetStrileByteCount(in, 0);
	strip = g_malloc(MAX(size, 1));
	copy_tags(in, out);
	if (TIFFReadRawStrip(in, 0, strip, size) != size ||
	    TIFFWriteRawStrip(out, 0, strip, size) != size || !TIFFWriteDirectory(out))
		die("cannot copy a page of %s to %s", bench.doc, path);
	TIFFClose(out);
}

static void
split_document(void)
{
	TIFF *in = TIFFOpen(bench.doc, "r");
	guint page = 0;

	if (in == NULL)
		die("cannot read %s", bench.doc);
	bench.pages = g_new0(char *, bench.n_pages + 1);
	do {
		g_autofree char *name = g_strdup_printf("page-%u.tif", page + 1);

		if (page >= bench.n_pages)
			die("%s has more than %u pages", bench.doc, bench.n_pages);
		bench.pages[page] = g_build_filename(bench.dir, name, NULL);
		split_page(in, bench.pages[page]);
		page++;
	} while (TIFFReadDirectory(in));
	TIFFClose(in);
	if (page != bench.n_pages)
		die("%s has %u pages, not %u", bench.doc, page, bench.n_pages);
}

/* ----- the soft modem ----- */

static void
wait_ready(int fd, const char *log)
{
	char buf[64] = "";
	gsize got = 0;
	gint64 deadline = g_get_monotonic_time() + READY_US;

	while (strchr(buf, '\n') == NULL && got < sizeof(buf) - 1 &&
	       g_get_monotonic_time() < deadline) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 200) < 0)
			break;
		n = pfd.revents ? read(fd, buf + got, sizeof(buf) - 1 - got) : 0;
		if (pfd.revents && n <= 0)
			break;
		got += (gsize)MAX(n, 0);
	}
	if (strcmp(buf, "ready\n") != 0) {
		g_autofree char *text = NULL;

		g_file_get_contents(log, &text, NULL, NULL);
		die("hk-softmodem did not say ready:\n%s", text != NULL ? text : "");
	}
}

/* hk-softmodem --calls 1 for one fax; its report and log are named after the fax. */
static void
softmodem_start(Sender sender, const char *report, const char *rx_dir, const char *log)
{
	gboolean ecm = sender == SENDER_HANKO_ECM;
	const char *argv[] = {SOFTMODEM,  "--link", bench.tty, "--rx-dir", rx_dir,
	                      "--report", report,   "--calls", "1",        ecm ? "--class" : NULL,
	                      "2.0",      "--ecm",  NULL};
	g_autoptr(GError) error = NULL;
	int out[2];
	int log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (log_fd < 0 || pipe2(out, O_CLOEXEC) < 0 || g_mkdir(rx_dir, 0700) < 0)
		die("cannot set up %s: %s", log, g_strerror(errno));
	if (!g_spawn_async_with_fds(bench.dir, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
	                            hk_test_die_with_parent, GINT_TO_POINTER(getpid()),
	                            &bench.softmodem, -1, out[1], log_fd, &error))
		die("cannot run %s: %s", SOFTMODEM, error->message);
	close(out[1]);
	close(log_fd);
	wait_ready(out[0], log);
	close(out[0]);
}

/* With --calls 1 it writes its report and exits once the far end is done with the call. */
static void
softmodem_finish(const char *log)
{
	for (gint64 deadline = g_get_monotonic_time() + EXIT_US;
	     g_get_monotonic_time() < deadline;) {
		int status;

		if (waitpid(bench.softmodem, &status, WNOHANG) == bench.softmodem) {
			g_spawn_close_pid(bench.softmodem);
			bench.softmodem = 0;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				die("hk-softmodem ended with status %d, see %s", status, log);
			return;
		}
		g_usleep(50 * 1000);
	}
	die("hk-softmodem did not exit after its call, see %s", log);
}

/* The integer after "key": in a report line; -1 when it is not there. */
static gint64
json_int(const char *line, const char *key)
{
	g_autofree char *needle = g_strdup_printf("\"%s\":", key);
	const char *at = strstr(line, needle);

	return at != NULL ? g_ascii_strtoll(at + strlen(needle), NULL, 10) : -1;
}

/* The string after "key": in a report line (no escapes in the values we read). */
static char *
json_string(const char *line, const char *key)
{
	g_autofree char *needle = g_strdup_printf("\"%s\":\"", key);
	const char *at = strstr(line, needle);
	const char *end = at != NULL ? strchr(at + strlen(needle), '"') : NULL;

	return end != NULL ? g_strndup(at + strlen(needle), (gsize)(end - at - strlen(needle)))
	                   : g_strdup("?");
}

static void
read_report(const char *path, Call *call)
{
	g_autofree char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		die("no report in %s", path);
	g_strchomp(text);
	if (strchr(text, '\n') != NULL || strstr(text, "\"result\":\"ok\"") == NULL)
		die("the call did not go through: %s", text);
	call->line_samples = json_int(text, "line_samples");
	call->pages = (int)json_int(text, "pages");
	call->rate = (int)json_int(text, "rate");
	call->ecm = strstr(text, "\"ecm\":true") != NULL;
	call->line_coding = json_string(text, "coding");
	if (call->pages != (int)bench.n_pages || call->line_samples <= 0)
		die("the far end got %d of %u pages: %s", call->pages, bench.n_pages, text);
}

/* ----- hanko: the plugin ----- */

/* instance 0 picks its class (Class 1 here), instance 1 is set to Class 2.0 */
static void
plugin_open(guint instance)
{
	g_autoptr(GError) error = NULL;
	HkTestFaxHost *fh = &bench.fh[instance];

	hk_test_faxhost_init(fh, bench.tty, bench.dir, "HANKO BENCH");
	if (instance == 1)
		hk_test_faxhost_set(fh, "class", "2.0");
	if (!hk_test_faxhost_open(fh, PLUGIN_DIR, &error))
		die("the modem plugin (%s): %s", PLUGIN_DIR, error->message);
}

/* "sent 2 pages in 41 s at 14400 bps, MR, ECM off": the coding */
static char *
coding_of(const char *text)
{
	const char *bps = strstr(text, " bps, ");
	const char *end = bps != NULL ? strchr(bps + 6, ',') : NULL;

	return end != NULL ? g_strndup(bps + 6, (gsize)(end - bps - 6)) : g_strdup("?");
}

static void
hanko_send(guint instance, Call *call)
{
	FaxSendRequest request = {1, NUMBER, NUMBER, bench.doc, bench.n_pages, "", ""};
	FaxSendResult result = {0};

	bench.fh[instance].plugin->send(bench.fh[instance].self, &request, NULL, NULL, &result);
	if (result.code != FAX_RESULT_OK || result.pages_sent != bench.n_pages)
		die("the plugin: %s (%u pages sent)", result.text, result.pages_sent);
	call->coding = coding_of(result.text);
	g_free(result.text);
}

/* ----- efax ----- */

/* "efax: 12:34:56 ... 1-D": efax 0.9a codes 1-D only, but say what its log says. */
static void
efax_send(Call *call, const char *log)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_autofree char *err = NULL;
	int status = 0;

	for (const char *a0[] = {"timeout", EFAX_TIMEOUT, "efax", "-d", bench.tty, "-o1", "-h", "",
	                         "-v", "ewinchmt", "-t", NUMBER, NULL},
	                **a = a0;
	     *a; a++)
		g_ptr_array_add(argv, (gpointer)*a);
	for (char **page = bench.pages; *page != NULL; page++)
		g_ptr_array_add(argv, *page);
	g_ptr_array_add(argv, NULL);
	if (!g_spawn_sync(bench.dir, (char **)argv->pdata, NULL,
	                  G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, hk_test_die_with_parent,
	                  GINT_TO_POINTER(getpid()), NULL, &err, &status, &error))
		die("cannot run efax: %s", error->message);
	g_file_set_contents(log, err != NULL ? err : "", -1, NULL);
	if (!g_spawn_check_wait_status(status, &error))
		die("efax: %s, see %s", error->message, log);
	call->coding = g_strdup(err != NULL && strstr(err, "2-D") != NULL ? "MR" : "MH");
}

/* ----- a round ----- */

static void
one_fax(Sender sender, guint round, Call *call)
{
	g_autofree char *stem = g_strdup_printf("%s-%u", sender_names[sender], round);
	g_autofree char *report = g_strdup_printf("%s/%s.jsonl", bench.dir, stem);
	g_autofree char *rx_dir = g_strdup_printf("%s/%s-rx", bench.dir, stem);
	g_autofree char *log = g_strdup_printf("%s/%s-softmodem.log", bench.dir, stem);
	g_autofree char *sender_log = g_strdup_printf("%s/%s.log", bench.dir, stem);
	gint64 start;

	softmodem_start(sender, report, rx_dir, log);
	start = hk_bench_now_ns();
	if (sender == SENDER_EFAX)
		efax_send(call, sender_log);
	else
		hanko_send(sender == SENDER_HANKO_ECM ? 1 : 0, call);
	call->wall_s = (hk_bench_now_ns() - start) / 1e9;
	softmodem_finish(log);
	read_report(report, call);
}

static double
per_page(const Call *call)
{
	return call->line_samples / LINE_RATE / call->pages;
}

static void
print_call(const char *name, const Call *call)
{
	printf("  %-9s %6.2f s line, %5.2f s/page, %5d bps, %s (on the line %s), ECM %s "
	       "(wall %.1f s)\n",
	       name, call->line_samples / LINE_RATE, per_page(call), call->rate, call->coding,
	       call->line_coding, call->ecm ? "on" : "off", call->wall_s);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *values, guint n)
{
	qsort(values, n, sizeof(*values), cmp_double);
	return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

static void
run_rounds(guint n)
{
	double *per[N_SENDERS] = {g_new(double, n), g_new(double, n), g_new(double, n)};
	double h, e, x;

	for (guint round = 0; round < n; round++) {
		Call calls[N_SENDERS] = {{0}};

		printf("run %u: %u page%s\n", round + 1, bench.n_pages,
		       bench.n_pages == 1 ? "" : "s");
		for (Sender s = 0; s < N_SENDERS; s++) {
			one_fax(s, round + 1, &calls[s]);
			per[s][round] = per_page(&calls[s]);
			print_call(sender_names[s], &calls[s]);
			g_free(calls[s].coding);
			g_free(calls[s].line_coding);
		}
		printf("  efax/hanko line time per page: %.2fx; efax/hanko-ecm: %.2fx\n",
		       per[SENDER_EFAX][round] / per[SENDER_HANKO][round],
		       per[SENDER_EFAX][round] / per[SENDER_HANKO_ECM][round]);
		fflush(stdout);
	}
	h = median(per[SENDER_HANKO], n);
	e = median(per[SENDER_EFAX], n);
	x = median(per[SENDER_HANKO_ECM], n);
	printf("median over %u run%s: hanko %.2f s/page, efax %.2f s/page, hanko-ecm %.2f s/page\n",
	       n, n == 1 ? "" : "s", h, e, x);
	printf("efax/hanko line time per page: %.2fx (>= 1 means hanko uses no more line time)\n",
	       e / h);
	printf("efax/hanko-ecm line time per page: %.2fx (> 1 means less line time with ECM and "
	       "MMR to a capable receiver)\n",
	       e / x);
	for (Sender s = 0; s < N_SENDERS; s++)
		g_free(per[s]);
}

int
main(void)
{
	guint n = hk_bench_env_uint("HANKO_BENCH_N", 3);
	g_autoptr(GError) error = NULL;

	bench.n_pages = hk_bench_env_uint("HANKO_BENCH_PAGES", 2);
	bench.fine = g_strcmp0(g_getenv("HANKO_BENCH_FINE"), "1") == 0;
	if (!g_file_test(SOFTMODEM, G_FILE_TEST_IS_EXECUTABLE))
		die("%s is not built (ninja hk-softmodem)", SOFTMODEM);
	bench.dir = g_dir_make_tmp("bench-fax-modem-XXXXXX", &error);
	if (bench.dir == NULL)
		die("cannot make a temporary directory: %s", error->message);
	bench.tty = g_build_filename(bench.dir, "ttyFAX0", NULL);
	bench.doc = g_build_filename(bench.dir, "doc.tif", NULL);
	render_document();
	split_document();
	plugin_open(0);
	plugin_open(1);
	printf("bench-fax-modem: %u page%s of text, %s resolution, MH TIFF; %u run%s of one fax "
	       "each way through hk-softmodem (spandsp T.31, real-time audio) to a spandsp fax "
	       "terminal\n",
	       bench.n_pages, bench.n_pages == 1 ? "" : "s", bench.fine ? "fine" : "normal", n,
	       n == 1 ? "" : "s");
	printf("note: spandsp 0.0.6's T.31 soft modem has no HDLC at fast rates, so in Class 1 the "
	       "plugin turns ECM (and so MMR) off; hanko-ecm sends in Class 2.0 through "
	       "hk-softmodem --class 2.0 (T.30 by spandsp, ECM) to a far end with ECM\n");
	fflush(stdout);
	run_rounds(n);
	for (guint i = 0; i < 2; i++)
		hk_test_faxhost_clear(&bench.fh[i]);
	if (g_strcmp0(g_getenv("HANKO_BENCH_KEEP"), "1") == 0)
		printf("files kept in %s\n", bench.dir);
	else
		hk_test_remove_tree(bench.dir);
	g_strfreev(bench.pages);
	g_free(bench.doc);
	g_free(bench.tty);
	g_free(bench.dir);
	return 0;
}
