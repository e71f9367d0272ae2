/*
 * bench-fax-render: hanko-milter's fax rendering (milter-smime/fax/fax-render.c) against
 * ghostscript, the anchor issue 6 names, in one run on one machine:
 *
 *   hanko        fax_render_*() in this process: a 10-page PDF (text, rules, shapes, made
 *                here with cairo) read from disk, rendered at fine resolution and written
 *                as a G3 (MH) TIFF Class F file;
 *   ghostscript  gs -sDEVICE=tiffg3 -r204x196 -sPAPERSIZE=a4 on the same PDF, spawned and
 *                timed as wall time from spawn to exit (process start included: that is
 *                what a gateway that runs gs per fax pays).
 *
 * After one warm-up run of each, HANKO_BENCH_N repetitions (default 5) of each; prints the
 * median times and their ratio. HANKO_BENCH_PAGES sets another page count (gs takes long
 * to start, then is quick per page: the ratio falls as documents grow). Then the pages per
 * second of a Japanese text body (about 20 pages, header line on, fine resolution, MH)
 * through the whole API. A benchmark, not a test: it exits 0 whatever the ratio, and
 * non-zero only when something does not work (a render fails, an output lacks pages).
 * Without gs it measures hanko only.
 *
 * Talks to: fax-render.c, gs from the system, a temporary directory it removes.
 * Must never: wait on gs without it exiting by itself (gs -dBATCH always does), or leave
 * files behind, failing or not.
 */
#include "fax-render.h"
#include "hk-bench.h"

#include <cairo-pdf.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <tiffio.h>

static char *bench_dir; /* removed on every way out */
static guint pdf_pages; /* HANKO_BENCH_PAGES, default 10 */

static const char *const latin[] = {
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor",
        "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud",
        "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure",
        "dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur.",
        "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt.",
};

static const char *const japanese[] = {
        "拝啓　時下ますますご清栄のこととお慶び申し上げます。平素は格別のお引き立てを賜り、"
        "厚く御礼申し上げます。",
        "さて、このたび弊社では新しい製品の販売を開始いたしました。つきましては、下記の通り"
        "ご案内申し上げますので、ご検討くださいますようお願い申し上げます。",
        "納期は受注後二週間、価格は別紙見積書の通りです。ご不明な点がございましたら、"
        "担当までお気軽にお問い合わせください。",
};

static void
dir_remove(const char *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *file = g_build_filename(path, name, NULL);

		g_unlink(file);
	}
	g_rmdir(path);
}

static void G_GNUC_NORETURN G_GNUC_PRINTF(1, 2) die(const char *format, ...)
{
	va_list args;

	if (bench_dir != NULL)
		dir_remove(bench_dir);

	va_start(args, format);
	fprintf(stderr, "bench-fax-render: ");
	vfprintf(stderr, format, args);
	fprintf(stderr, "\n");
	va_end(args);
	exit(1);
}

/* one page of a report: a title, a rule, 48 lines of 10-point text, a table, shapes */
static void
pdf_page(cairo_t *cr, guint page)
{
	g_autofree char *title = g_strdup_printf("Quarterly report, page %u", page + 1);

	cairo_set_source_rgb(cr, 0, 0, 0);
	cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
	cairo_set_font_size(cr, 18);
	cairo_move_to(cr, 56, 70);
	cairo_show_text(cr, title);
	cairo_rectangle(cr, 56, 80, 483, 1.5);
	cairo_fill(cr);
	cairo_select_font_face(cr, "DejaVu Serif", CAIRO_FONT_SLANT_NORMAL,
	                       CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, 10);
	for (guint i = 0; i < 48; i++) {
		cairo_move_to(cr, 56, 104 + i * 12.5);
		cairo_show_text(cr, latin[(i + page) % G_N_ELEMENTS(latin)]);
	}
	cairo_set_line_width(cr, 0.7);
	for (guint i = 0; i <= 5; i++) {
		cairo_move_to(cr, 56, 720 + i * 16);
		cairo_line_to(cr, 300, 720 + i * 16);
		cairo_move_to(cr, 56 + i * 48.8, 720);
		cairo_line_to(cr, 56 + i * 48.8, 800);
	}
	cairo_stroke(cr);
	cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
	cairo_rectangle(cr, 330, 720, 80, 80);
	cairo_fill(cr);
	cairo_set_source_rgb(cr, 0.1, 0.2, 0.6);
	cairo_arc(cr, 480, 760, 40, 0, 2 * G_PI);
	cairo_fill(cr);
	cairo_set_line_width(cr, 2);
	cairo_move_to(cr, 420, 810);
	cairo_curve_to(cr, 450, 700, 500, 830, 539, 720);
	cairo_stroke(cr);
}

static void
pdf_make(const char *path)
{
	cairo_surface_t *surface = cairo_pdf_surface_create(path, 595, 842);
	cairo_t *cr = cairo_create(surface);

	for (guint i = 0; i < pdf_pages; i++) {
		pdf_page(cr, i);
		cairo_show_page(cr);
	}
	cairo_destroy(cr);
	cairo_surface_finish(surface);
	if (cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS)
		die("cannot write %s", path);
	cairo_surface_destroy(surface);
}

static guint
tiff_pages(const char *path)
{
	TIFF *tif = TIFFOpen(path, "r");
	guint n;

	if (tif == NULL)
		return 0;
	n = TIFFNumberOfDirectories(tif);
	TIFFClose(tif);
	return n;
}

/* the whole path as a gateway runs it: read the file, render, write the TIFF */
static gint64
hanko_run(const char *in, const char *out)
{
	gint64 start = hk_bench_now_ns();
	FaxRenderOptions options = {.resolution = FAX_RES_FINE, .coding = FAX_CODING_MH};
	g_autoptr(FaxRender) render = fax_render_new(&options);
	g_autoptr(GError) error = NULL;
	g_autofree char *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(in, &data, &len, &error) ||
	    !fax_render_add_document(render, "application/pdf", (const guint8 *)data, len,
	                             &error) ||
	    !fax_render_write_tiff(render, out, &error))
		die("hanko: %s", error->message);
	return hk_bench_now_ns() - start;
}

static gint64
gs_run(const char *gs, const char *in, const char *out)
{
	g_autofree char *output = g_strdup_printf("-sOutputFile=%s", out);
	const char *argv[] = {gs,          "-q",
	                      "-dNOPAUSE", "-dBATCH",
	                      "-dSAFER",   "-sDEVICE=tiffg3",
	                      "-r204x196", "-sPAPERSIZE=a4",
	                      output,      in,
	                      NULL};
	g_autoptr(GError) error = NULL;
	g_autofree char *err = NULL;
	int status = 0;
	gint64 start = hk_bench_now_ns();

	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
	                  &err, &status, &error) ||
	    !g_spawn_check_wait_status(status, &error))
		die("gs: %s %s", error->message, err != NULL ? err : "");
	return hk_bench_now_ns() - start;
}

static double
median_ms(gint64 *times, guint n)
{
	HkBenchStats stats;
	double total = 0;

	for (guint i = 0; i < n; i++)
		total += times[i] / 1e9;
	hk_bench_stats(&stats, &times, 1, n, total);
	return stats.p50_ms;
}

static void
pdf_compare(const char *dir, guint n)
{
	g_autofree char *in = g_build_filename(dir, "report.pdf", NULL);
	g_autofree char *out_hanko = g_build_filename(dir, "hanko.tiff", NULL);
	g_autofree char *out_gs = g_build_filename(dir, "gs.tiff", NULL);
	g_autofree char *gs = g_find_program_in_path("gs");
	g_autofree gint64 *hanko_ns = g_new0(gint64, n);
	g_autofree gint64 *gs_ns = g_new0(gint64, n);
	double hanko_ms, gs_ms;

	pdf_make(in);
	hanko_run(in, out_hanko); /* warm-up: fonts, caches, page cache */
	if (gs != NULL)
		gs_run(gs, in, out_gs);
	for (guint i = 0; i < n; i++) {
		hanko_ns[i] = hanko_run(in, out_hanko);
		if (gs != NULL)
			gs_ns[i] = gs_run(gs, in, out_gs);
	}
	if (tiff_pages(out_hanko) != pdf_pages || (gs != NULL && tiff_pages(out_gs) != pdf_pages))
		die("an output does not have %u pages", pdf_pages);
	hanko_ms = median_ms(hanko_ns, n);
	printf("%u-page PDF to fine G3 (MH) TIFF, %u runs each, median wall time:\n", pdf_pages, n);
	printf("  hanko        %8.1f ms  (%.1f ms a page)\n", hanko_ms, hanko_ms / pdf_pages);
	if (gs == NULL) {
		printf("  ghostscript  not installed: no ratio\n");
		return;
	}
	gs_ms = median_ms(gs_ns, n);
	printf("  ghostscript  %8.1f ms  (%.1f ms a page, process start included)\n", gs_ms,
	       gs_ms / pdf_pages);
	printf("hanko/gs speed ratio: %.2fx (>1 means hanko faster)\n", gs_ms / hanko_ms);
}

static GString *
japanese_text(void)
{
	GString *text = g_string_new(NULL);

	for (guint i = 0; i < 180; i++) {
		g_string_append_printf(text, "%u. ", i + 1);
		for (guint j = 0; j < 3; j++)
			g_string_append(text, japanese[(i + j) % G_N_ELEMENTS(japanese)]);
		g_string_append(text, "\n\n");
	}
	return text;
}

static guint
text_run(const GString *text, const char *out, gint64 *ns)
{
	gint64 start = hk_bench_now_ns();
	g_autoptr(GDateTime) date = g_date_time_new_now_local();
	FaxRenderOptions options = {.resolution = FAX_RES_FINE,
	                            .coding = FAX_CODING_MH,
	                            .header_from = "営業部 <sales@example.jp>",
	                            .date = date};
	g_autoptr(FaxRender) render = fax_render_new(&options);
	g_autoptr(GError) error = NULL;
	guint pages;

	if (!fax_render_add_document(render, "text/plain", (const guint8 *)text->str, text->len,
	                             &error) ||
	    !fax_render_write_tiff(render, out, &error))
		die("hanko text: %s", error->message);
	if (fax_render_get_unknown_glyphs(render) != 0)
		die("hanko text: %u characters without a glyph",
		    fax_render_get_unknown_glyphs(render));
	pages = fax_render_get_n_pages(render);
	*ns = hk_bench_now_ns() - start;
	return pages;
}

static void
text_measure(const char *dir, guint n)
{
	g_autoptr(GString) text = japanese_text();
	g_autofree char *out = g_build_filename(dir, "text.tiff", NULL);
	g_autofree gint64 *ns = g_new0(gint64, n);
	guint pages = text_run(text, out, &ns[0]); /* warm-up */
	double ms;

	for (guint i = 0; i < n; i++)
		text_run(text, out, &ns[i]);
	ms = median_ms(ns, n);
	printf("Japanese text, %" G_GSIZE_FORMAT
	       " bytes, header line, fine MH: %u pages in %.1f ms median, "
	       "%.1f pages/s\n",
	       text->len, pages, ms, pages / (ms / 1000));
}

int
main(void)
{
	guint n = hk_bench_env_uint("HANKO_BENCH_N", 5);

	pdf_pages = hk_bench_env_uint("HANKO_BENCH_PAGES", 10);

	bench_dir = g_dir_make_tmp("bench-fax-render-XXXXXX", NULL);
	if (bench_dir == NULL)
		die("cannot make a temporary directory");
	pdf_compare(bench_dir, n);
	text_measure(bench_dir, n);
	dir_remove(bench_dir);
	g_free(bench_dir);
	return 0;
}
