/*
 * test-fax-render: documents to TIFF Class F (milter-smime/fax/fax-render.c), checked by
 * reading the file back with libtiff: tags per resolution and coding, page counts, where
 * the black pixels are (header band, body, blank pages), Japanese drawn with real glyphs.
 * Every input document (PDF, PNG, JPEG, TIFF) is made here, at test time.
 *
 * Talks to: fax-render.c, cairo, gdk-pixbuf and libtiff to make inputs and read outputs, a
 * temporary directory per test.
 * Must never: compare against stored reference bitmaps (fonts and libraries change the
 * pixels); assert properties that hold for any correct rendering instead.
 */
#include "fax-render.h"

#include <cairo-pdf.h>
#include <dlfcn.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <pango/pangocairo.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>

#define ROW_BYTES (FAX_PAGE_WIDTH / 8)
#define JAPANESE  "日本語のテキスト"

/* ---- reading a TIFF back ---- */

typedef struct {
	guint32 width, length, rows_per_strip, subfile, t4options, t6options;
	guint16 bits_per_sample, compression, photometric, fillorder, unit, clean;
	guint16 page, n_pages;
	float xres, yres;
	guint8 *bits; /* ROW_BYTES a row, 1 black */
} Page;

static void
page_free(gpointer data)
{
	Page *page = data;

	g_free(page->bits);
	g_free(page);
}

static Page *
page_read(TIFF *tif)
{
	Page *page = g_new0(Page, 1);
	tmsize_t size;

	g_assert_true(TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &page->width));
	g_assert_true(TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &page->length));
	TIFFGetField(tif, TIFFTAG_ROWSPERSTRIP, &page->rows_per_strip);
	TIFFGetField(tif, TIFFTAG_SUBFILETYPE, &page->subfile);
	TIFFGetField(tif, TIFFTAG_BITSPERSAMPLE, &page->bits_per_sample);
	TIFFGetField(tif, TIFFTAG_COMPRESSION, &page->compression);
	TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &page->photometric);
	TIFFGetField(tif, TIFFTAG_FILLORDER, &page->fillorder);
	TIFFGetField(tif, TIFFTAG_RESOLUTIONUNIT, &page->unit);
	TIFFGetField(tif, TIFFTAG_XRESOLUTION, &page->xres);
	TIFFGetField(tif, TIFFTAG_YRESOLUTION, &page->yres);
	TIFFGetField(tif, TIFFTAG_PAGENUMBER, &page->page, &page->n_pages);
	TIFFGetField(tif, TIFFTAG_CLEANFAXDATA, &page->clean);
	if (page->compression == COMPRESSION_CCITTFAX3)
		g_assert_true(TIFFGetField(tif, TIFFTAG_GROUP3OPTIONS, &page->t4options));
	if (page->compression == COMPRESSION_CCITTFAX4)
		TIFFGetField(tif, TIFFTAG_GROUP4OPTIONS, &page->t6options);
	g_assert_cmpuint(page->width, ==, FAX_PAGE_WIDTH);
	g_assert_cmpuint(TIFFNumberOfStrips(tif), ==, 1);
	size = (tmsize_t)ROW_BYTES * page->length;
	page->bits = g_malloc(size);
	g_assert_cmpint(TIFFReadEncodedStrip(tif, 0, page->bits, size), ==, size);
	return page;
}

static GPtrArray *
tiff_read(const char *path)
{
	GPtrArray *pages = g_ptr_array_new_with_free_func(page_free);
	TIFF *tif = TIFFOpen(path, "r");

	g_assert_nonnull(tif);
	do
		g_ptr_array_add(pages, page_read(tif));
	while (TIFFReadDirectory(tif));
	TIFFClose(tif);
	return pages;
}

/* black pixels in rows [first, last) */
static guint64
black_rows(const Page *page, guint first, guint last)
{
	guint64 n = 0;

	for (gsize i = (gsize)first * ROW_BYTES; i < (gsize)MIN(last, page->length) * ROW_BYTES;
	     i++)
		n += (guint64)__builtin_popcount(page->bits[i]);
	return n;
}

static guint64
black(const Page *page)
{
	return black_rows(page, 0, page->length);
}

/* the rows of the top 9 mm: the header line's band, where body text never goes */
static guint
top_rows(const Page *page)
{
	return (guint)(9.0 / 25.4 * page->yres);
}

static double
black_share(const Page *page)
{
	return (double)black(page) / ((double)FAX_PAGE_WIDTH * page->length);
}

/* ---- rendering into a temporary directory ---- */

typedef struct {
	char *dir;
	char *path;
} Fixture;

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	fx->dir = g_dir_make_tmp("test-fax-render-XXXXXX", NULL);
	g_assert_nonnull(fx->dir);
	fx->path = g_build_filename(fx->dir, "fax.tiff", NULL);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	g_autoptr(GDir) dir = g_dir_open(fx->dir, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *path = g_build_filename(fx->dir, name, NULL);

		g_unlink(path);
	}
	g_rmdir(fx->dir);
	g_free(fx->path);
	g_free(fx->dir);
}

static FaxRenderOptions
options_default(void)
{
	return (FaxRenderOptions){.resolution = FAX_RES_FINE, .coding = FAX_CODING_MH};
}

static void
add_ok(FaxRender *render, const char *type, const void *data, gsize len)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(fax_render_add_document(render, type, data, len, &error));
	g_assert_no_error(error);
}

static void
add_text(FaxRender *render, const char *text)
{
	add_ok(render, "text/plain", text, strlen(text));
}

static GPtrArray *
write_read(Fixture *fx, FaxRender *render)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(fax_render_write_tiff(render, fx->path, &error));
	g_assert_no_error(error);
	return tiff_read(fx->path);
}

/* renders one text/plain document with options and reads the file back */
static GPtrArray *
render_text(Fixture *fx, const FaxRenderOptions *options, const char *text)
{
	g_autoptr(FaxRender) render = fax_render_new(options);

	add_text(render, text);
	return write_read(fx, render);
}

/* ---- making documents ---- */

static cairo_status_t
bytes_write(void *closure, const unsigned char *data, unsigned int length)
{
	g_byte_array_append(closure, data, length);
	return CAIRO_STATUS_SUCCESS;
}

/* A PDF of n pages, each with its number, a line of text and a filled shape; every third
 * page landscape. */
static GBytes *
pdf_make(guint n)
{
	GByteArray *out = g_byte_array_new();
	cairo_surface_t *surface = cairo_pdf_surface_create_for_stream(bytes_write, out, 595, 842);
	cairo_t *cr = cairo_create(surface);

	for (guint i = 0; i < n; i++) {
		g_autofree char *text = g_strdup_printf("Page %u of %u: hanko fax test", i + 1, n);
		gboolean landscape = i % 3 == 2;

		cairo_pdf_surface_set_size(surface, landscape ? 842 : 595, landscape ? 595 : 842);
		cairo_set_source_rgb(cr, 0, 0, 0);
		cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
		                       CAIRO_FONT_WEIGHT_BOLD);
		cairo_set_font_size(cr, 28);
		cairo_move_to(cr, 72, 144);
		cairo_show_text(cr, text);
		cairo_rectangle(cr, 72, 200, 200 + 40 * i, 120);
		cairo_fill(cr);
		cairo_set_source_rgb(cr, 0.1, 0.2, 0.7); /* dark blue: black on a fax */
		cairo_arc(cr, 300, 500, 80, 0, 2 * G_PI);
		cairo_fill(cr);
		cairo_show_page(cr);
	}
	cairo_destroy(cr);
	cairo_surface_finish(surface);
	g_assert_cmpint(cairo_surface_status(surface), ==, CAIRO_STATUS_SUCCESS);
	cairo_surface_destroy(surface);
	return g_byte_array_free_to_bytes(out);
}

/* a 320x240 picture: a horizontal grey ramp with a black bar and a white hole */
static GdkPixbuf *
picture_make(gboolean alpha)
{
	GdkPixbuf *pixbuf = gdk_pixbuf_new(GDK_COLORSPACE_RGB, alpha, 8, 320, 240);
	int channels = gdk_pixbuf_get_n_channels(pixbuf);
	int stride = gdk_pixbuf_get_rowstride(pixbuf);
	guint8 *pixels = gdk_pixbuf_get_pixels(pixbuf);

	for (int y = 0; y < 240; y++) {
		for (int x = 0; x < 320; x++) {
			guint8 *p = pixels + y * stride + x * channels;
			guint8 v = (guint8)(x * 255 / 319);

			if (y >= 100 && y < 140)
				v = x < 160 ? 0 : 255;
			p[0] = p[1] = p[2] = v;
			if (alpha)
				p[3] = 255;
		}
	}
	return pixbuf;
}

static GBytes *
picture_encode(const char *format)
{
	g_autoptr(GdkPixbuf) pixbuf = picture_make(strcmp(format, "png") == 0);
	g_autoptr(GError) error = NULL;
	gchar *data = NULL;
	gsize len = 0;

	g_assert_true(gdk_pixbuf_save_to_buffer(pixbuf, &data, &len, format, &error, NULL));
	g_assert_no_error(error);
	return g_bytes_new_take(data, len);
}

static void
add_bytes(FaxRender *render, const char *type, GBytes *bytes)
{
	gsize len = 0;
	const void *data = g_bytes_get_data(bytes, &len);

	add_ok(render, type, data, len);
}

static void
add_fails(FaxRender *render, const char *type, const void *data, gsize len, int code)
{
	g_autoptr(GError) error = NULL;
	guint before = fax_render_get_n_pages(render);

	g_assert_false(fax_render_add_document(render, type, data, len, &error));
	g_assert_error(error, FAX_RENDER_ERROR, code);
	g_test_message("%s: %s", type, error->message);
	g_assert_cmpuint(fax_render_get_n_pages(render), ==, before);
}

/* ---- tests ---- */

static void
test_supports(void)
{
	const char *yes[] = {"text/plain", "application/pdf", "image/png", "image/jpeg",
	                     "image/tiff"};
	const char *no[] = {"text/html",
	                    "image/gif",
	                    "application/octet-stream",
	                    "TEXT/PLAIN",
	                    "text/plain; charset=utf-8",
	                    "",
	                    NULL};

	for (gsize i = 0; i < G_N_ELEMENTS(yes); i++)
		g_assert_true(fax_render_supports(yes[i]));
	for (gsize i = 0; i < G_N_ELEMENTS(no); i++)
		g_assert_false(fax_render_supports(no[i]));
}

static void
test_unsupported(void)
{
	FaxRenderOptions options = options_default();
	g_autoptr(FaxRender) render = fax_render_new(&options);

	add_fails(render, "text/html", "<p>x</p>", 8, FAX_RENDER_ERROR_UNSUPPORTED);
	add_fails(render, "image/gif", "GIF89a", 6, FAX_RENDER_ERROR_UNSUPPORTED);
	add_fails(render, NULL, "x", 1, FAX_RENDER_ERROR_UNSUPPORTED);
}

/* the TIFF Class F tags, every resolution and coding */
typedef struct {
	FaxResolution resolution;
	FaxCoding coding;
	guint32 length;
	float yres;
	guint16 compression;
	guint32 t4options;
} TagCase;

static const TagCase tag_cases[] = {
        {FAX_RES_FINE, FAX_CODING_MH, 2287, 196, COMPRESSION_CCITTFAX3, 0},
        {FAX_RES_FINE, FAX_CODING_MR, 2287, 196, COMPRESSION_CCITTFAX3, GROUP3OPT_2DENCODING},
        {FAX_RES_FINE, FAX_CODING_MMR, 2287, 196, COMPRESSION_CCITTFAX4, 0},
        {FAX_RES_NORMAL, FAX_CODING_MH, 1143, 98, COMPRESSION_CCITTFAX3, 0},
        {FAX_RES_NORMAL, FAX_CODING_MR, 1143, 98, COMPRESSION_CCITTFAX3, GROUP3OPT_2DENCODING},
        {FAX_RES_NORMAL, FAX_CODING_MMR, 1143, 98, COMPRESSION_CCITTFAX4, 0},
};

static void
tags_check(const Page *page, const TagCase *c, guint index, guint n_pages)
{
	g_assert_cmpuint(page->width, ==, 1728);
	g_assert_cmpuint(page->length, ==, c->length);
	g_assert_cmpuint(page->rows_per_strip, ==, c->length);
	g_assert_cmpuint(page->subfile, ==, FILETYPE_PAGE);
	g_assert_cmpuint(page->bits_per_sample, ==, 1);
	g_assert_cmpuint(page->photometric, ==, PHOTOMETRIC_MINISWHITE);
	g_assert_cmpuint(page->fillorder, ==, FILLORDER_LSB2MSB);
	g_assert_cmpuint(page->unit, ==, RESUNIT_INCH);
	g_assert_cmpfloat(page->xres, ==, 204);
	g_assert_cmpfloat(page->yres, ==, c->yres);
	g_assert_cmpuint(page->compression, ==, c->compression);
	if (c->compression == COMPRESSION_CCITTFAX3)
		g_assert_cmpuint(page->t4options, ==, c->t4options);
	else
		g_assert_cmpuint(page->t6options, ==, 0);
	g_assert_cmpuint(page->clean, ==, CLEANFAXDATA_CLEAN);
	g_assert_cmpuint(page->page, ==, index);
	g_assert_cmpuint(page->n_pages, ==, n_pages);
}

static void
test_tags(Fixture *fx, gconstpointer data)
{
	for (gsize i = 0; i < G_N_ELEMENTS(tag_cases); i++) {
		const TagCase *c = &tag_cases[i];
		FaxRenderOptions options = {.resolution = c->resolution, .coding = c->coding};
		g_autoptr(GPtrArray) pages =
		        render_text(fx, &options, "Hello, fax.\nSecond line.\fPage two.");

		g_assert_cmpuint(pages->len, ==, 2);
		for (guint p = 0; p < pages->len; p++) {
			const Page *page = pages->pdata[p];

			tags_check(page, c, p, 2);
			/* a line or two of 11-point text: some hundreds of pixels, not more */
			g_assert_cmpuint(black(page), >, 300);
			g_assert_cmpfloat(black_share(page), <, 0.01);
		}
	}
}

static void
test_file(Fixture *fx, gconstpointer data)
{
	FaxRenderOptions options = options_default();
	g_autoptr(FaxRender) render = fax_render_new(&options);
	g_autoptr(GError) error = NULL;
	g_autofree char *missing = g_build_filename(fx->dir, "no", "such", "fax.tiff", NULL);
	g_autoptr(GDir) dir = NULL;
	GStatBuf st;

	/* nothing to write */
	g_assert_false(fax_render_write_tiff(render, fx->path, &error));
	g_assert_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_IO);
	g_clear_error(&error);
	add_text(render, "x");
	g_assert_false(fax_render_write_tiff(render, missing, &error));
	g_assert_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_IO);
	g_clear_error(&error);
	/* over an older file: replaced, 0600, nothing else left in the directory */
	g_assert_true(g_file_set_contents(fx->path, "old", 3, NULL));
	g_assert_true(fax_render_write_tiff(render, fx->path, &error));
	g_assert_no_error(error);
	g_assert_cmpint(g_stat(fx->path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	g_assert_cmpint(st.st_size, >, 100);
	dir = g_dir_open(fx->dir, 0, NULL);
	g_assert_cmpstr(g_dir_read_name(dir), ==, "fax.tiff");
	g_assert_null(g_dir_read_name(dir));
	/* written twice, same pages */
	g_assert_true(fax_render_write_tiff(render, fx->path, &error));
	g_ptr_array_unref(tiff_read(fx->path));
}

static void
test_header(Fixture *fx, gconstpointer data)
{
	FaxResolution resolutions[] = {FAX_RES_FINE, FAX_RES_NORMAL};

	for (gsize r = 0; r < G_N_ELEMENTS(resolutions); r++) {
		FaxRenderOptions options = {.resolution = resolutions[r]};
		g_autoptr(GPtrArray) bare = render_text(fx, &options, "one\ftwo");
		g_autoptr(GPtrArray) headed = NULL;
		g_autoptr(GDateTime) date = g_date_time_new_utc(2026, 11, 23, 9, 30, 0);
		const Page *p1, *p2;

		for (guint i = 0; i < bare->len; i++) {
			const Page *page = bare->pdata[i];

			g_assert_cmpuint(black_rows(page, 0, top_rows(page)), ==, 0);
			g_assert_cmpuint(black(page), >, 0);
		}
		options.header_from = "Alice Example <alice@example.com>";
		options.date = date;
		headed = render_text(fx, &options, "one\ftwo");
		g_assert_cmpuint(headed->len, ==, 2);
		p1 = headed->pdata[0];
		p2 = headed->pdata[1];
		/* a line of 8-point text in the band on every page */
		g_assert_cmpuint(black_rows(p1, 0, top_rows(p1)), >, 500);
		g_assert_cmpuint(black_rows(p2, 0, top_rows(p2)), >, 500);
		/* ... the same on the left (date, sender), not where it says page 1/2, 2/2 */
		for (guint y = 0; y < top_rows(p1); y++)
			g_assert_cmpmem(p1->bits + y * ROW_BYTES, ROW_BYTES / 2,
			                p2->bits + y * ROW_BYTES, ROW_BYTES / 2);
		g_assert_true(memcmp(p1->bits, p2->bits, (gsize)ROW_BYTES * top_rows(p1)) != 0);
		/* and the body is the same as without */
		g_assert_cmpmem(p1->bits + ROW_BYTES * top_rows(p1),
		                (gsize)ROW_BYTES * (p1->length - top_rows(p1)),
		                ((Page *)bare->pdata[0])->bits + ROW_BYTES * top_rows(p1),
		                (gsize)ROW_BYTES * (p1->length - top_rows(p1)));
	}
}

static GPtrArray *
render_japanese(Fixture *fx, const char *text, guint *unknown)
{
	FaxRenderOptions options = options_default();
	g_autoptr(FaxRender) render = fax_render_new(&options);

	add_text(render, text);
	*unknown = fax_render_get_unknown_glyphs(render);
	return write_read(fx, render);
}

static void
test_japanese(Fixture *fx, gconstpointer data)
{
	guint unknown = 99;
	g_autoptr(GPtrArray) a = render_japanese(fx, JAPANESE, &unknown);
	g_autoptr(GPtrArray) a2 = NULL, b = NULL, c = NULL;
	const Page *pa, *pb;

	g_assert_cmpuint(unknown, ==, 0);
	b = render_japanese(fx, "東京都千代田区丸の内", &unknown);
	g_assert_cmpuint(unknown, ==, 0);
	a2 = render_japanese(fx, JAPANESE, &unknown);
	pa = a->pdata[0];
	pb = b->pdata[0];
	/* drawn glyphs: ink, different for different text, the same for the same */
	g_assert_cmpuint(black(pa), >, 1000);
	g_assert_cmpuint(black(pb), >, 1000);
	g_assert_true(memcmp(pa->bits, pb->bits, (gsize)ROW_BYTES * pa->length) != 0);
	g_assert_cmpmem(pa->bits, (gsize)ROW_BYTES * pa->length, ((Page *)a2->pdata[0])->bits,
	                (gsize)ROW_BYTES * pa->length);
	/* and the count is real: a character no font has */
	c = render_japanese(fx, "\xf4\x8f\xbf\xbd", &unknown); /* U+10FFFD */
	g_assert_cmpuint(unknown, >=, 1);
}

static void
test_japanese_font(Fixture *fx, gconstpointer data)
{
	/* another font asked for: fontconfig falls back for the kanji */
	FaxRenderOptions options = options_default();
	g_autoptr(FaxRender) render = NULL;

	options.font = "DejaVu Sans 10";
	render = fax_render_new(&options);
	add_text(render, "Mixed: " JAPANESE " and English");
	g_assert_cmpuint(fax_render_get_unknown_glyphs(render), ==, 0);
}

static GString *
long_text(guint lines)
{
	GString *text = g_string_new(NULL);

	for (guint i = 0; i < lines; i++)
		g_string_append_printf(text, "%u\tline of the long text, %s, and so on.\n", i,
		                       i % 2 ? JAPANESE : "in English");
	return text;
}

static void
test_long_text(Fixture *fx, gconstpointer data)
{
	g_autoptr(GString) text = long_text(300);
	FaxRenderOptions options = options_default();
	g_autoptr(GPtrArray) fine = render_text(fx, &options, text->str);
	g_autoptr(GPtrArray) normal = NULL;

	/* about 60 lines a page */
	g_assert_cmpuint(fine->len, >=, 4);
	g_assert_cmpuint(fine->len, <=, 7);
	for (guint i = 0; i < fine->len; i++)
		g_assert_cmpuint(black(fine->pdata[i]), >, 10000);
	/* the same layout at normal resolution: the same pages */
	options.resolution = FAX_RES_NORMAL;
	normal = render_text(fx, &options, text->str);
	g_assert_cmpuint(normal->len, ==, fine->len);
	g_assert_cmpuint(((Page *)normal->pdata[0])->length, ==, 1143);
	/* one long line wraps, no page gets wider */
	g_string_truncate(text, 0);
	for (guint i = 0; i < 400; i++)
		g_string_append(text, i % 3 ? "word " : JAPANESE);
	g_ptr_array_unref(render_text(fx, &options, text->str));
}

typedef struct {
	const char *text;
	guint pages;
	int blank; /* index of a page without ink, or -1 */
} FormFeedCase;

static const FormFeedCase form_feed_cases[] = {
        {"page one\fpage two\fpage three", 3, -1},
        {"one\f", 1, -1},
        {"one\n\f\n", 1, -1},
        {"\fone", 1, -1},
        {"one\f\ftwo", 3, 1},
        {"one\f   \ntwo", 2, -1},
        {"a\r\nb\rc\x01\x1b[0m\xc2\x85", 1, -1},
};

static void
test_form_feed(Fixture *fx, gconstpointer data)
{
	FaxRenderOptions options = options_default();

	for (gsize i = 0; i < G_N_ELEMENTS(form_feed_cases); i++) {
		const FormFeedCase *c = &form_feed_cases[i];
		g_autoptr(FaxRender) render = fax_render_new(&options);
		g_autoptr(GPtrArray) pages = NULL;

		add_text(render, c->text);
		g_assert_cmpuint(fax_render_get_unknown_glyphs(render), ==, 0);
		pages = write_read(fx, render);
		g_assert_cmpuint(pages->len, ==, c->pages);
		for (guint p = 0; p < pages->len; p++) {
			if ((int)p == c->blank)
				g_assert_cmpuint(black(pages->pdata[p]), ==, 0);
			else
				g_assert_cmpuint(black(pages->pdata[p]), >, 100);
		}
	}
}

static void
test_empty_text(void)
{
	FaxRenderOptions options = options_default();
	g_autoptr(FaxRender) render = fax_render_new(&options);

	add_ok(render, "text/plain", "", 0);
	add_text(render, "\n\n  \n");
	g_assert_cmpuint(fax_render_get_n_pages(render), ==, 0);
	add_fails(render, "text/plain", "bad \xff byte", 10, FAX_RENDER_ERROR_DAMAGED);
	add_fails(render, "text/plain", "nul\0byte", 8, FAX_RENDER_ERROR_DAMAGED);
}

static void
test_pdf(Fixture *fx, gconstpointer data)
{
	g_autoptr(GBytes) pdf = pdf_make(3);
	FaxRenderOptions options = options_default();
	g_autoptr(FaxRender) render = fax_render_new(&options);
	g_autoptr(GPtrArray) pages = NULL;

	add_bytes(render, "application/pdf", pdf);
	g_assert_cmpuint(fax_render_get_n_pages(render), ==, 3);
	pages = write_read(fx, render);
	g_assert_cmpuint(pages->len, ==, 3);
	for (guint i = 0; i < pages->len; i++) {
		const Page *page = pages->pdata[i];

		tags_check(page, &tag_cases[0], i, 3);
		/* a bar, a disc and a line of text: a few percent of the page */
		g_assert_cmpfloat(black_share(page), >, 0.01);
		g_assert_cmpfloat(black_share(page), <, 0.25);
		g_assert_cmpuint(black_rows(page, 0, top_rows(page)), ==, 0);
	}
}

static void
test_pdf_normal_header(Fixture *fx, gconstpointer data)
{
	g_autoptr(GBytes) pdf = pdf_make(2);
	FaxRenderOptions options = {.resolution = FAX_RES_NORMAL, .coding = FAX_CODING_MMR};
	g_autoptr(FaxRender) render = NULL;
	g_autoptr(GPtrArray) pages = NULL;

	options.header_from = "bob@example.com";
	render = fax_render_new(&options);
	add_bytes(render, "application/pdf", pdf);
	pages = write_read(fx, render);
	g_assert_cmpuint(pages->len, ==, 2);
	for (guint i = 0; i < pages->len; i++) {
		const Page *page = pages->pdata[i];

		tags_check(page, &tag_cases[5], i, 2);
		g_assert_cmpfloat(black_share(page), >, 0.01);
		g_assert_cmpuint(black_rows(page, 0, top_rows(page)), >, 100);
	}
}

static void
test_pdf_damaged(void)
{
	g_autoptr(GBytes) pdf = pdf_make(2);
	FaxRenderOptions options = options_default();
	g_autoptr(FaxRender) render = fax_render_new(&options);
	gsize len = 0;
	const guint8 *data = g_bytes_get_data(pdf, &len);
	const char *garbage = "%PDF-1.4\n1 0 obj << /Type /Catalog >>\nendobj\n%%EOF\n";

	add_fails(render, "application/pdf", garbage, strlen(garbage), FAX_RENDER_ERROR_DAMAGED);
	add_fails(render, "application/pdf", "", 0, FAX_RENDER_ERROR_DAMAGED);
	add_fails(render, "application/pdf", data, len / 3, FAX_RENDER_ERROR_DAMAGED);
}

/* an encrypted PDF, made by ghostscript when it is installed */
static void
test_pdf_encrypted(Fixture *fx, gconstpointer data)
{
	g_autoptr(GBytes) pdf = pdf_make(1);
	g_autofree char *gs = g_find_program_in_path("gs");
	g_autofree char *in = g_build_filename(fx->dir, "in.pdf", NULL);
	g_autofree char *out = g_build_filename(fx->dir, "locked.pdf", NULL);
	g_autofree char *output = g_strdup_printf("-sOutputFile=%s", out);
	const char *argv[] = {gs,
	                      "-q",
	                      "-dNOPAUSE",
	                      "-dBATCH",
	                      "-dSAFER",
	                      "-sDEVICE=pdfwrite",
	                      "-sOwnerPassword=owner",
	                      "-sUserPassword=user",
	                      output,
	                      in,
	                      NULL};
	FaxRenderOptions options = options_default();
	g_autoptr(FaxRender) render = fax_render_new(&options);
	g_autoptr(GError) error = NULL;
	g_autofree char *locked = NULL;
	gsize len = 0;
	int status = -1;

	if (gs == NULL) {
		g_test_skip("no ghostscript to encrypt a PDF with");
		return;
	}
	g_assert_true(g_file_set_contents(in, g_bytes_get_data(pdf, NULL),
	                                  (gssize)g_bytes_get_size(pdf), NULL));
	g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL,
	                           NULL, &status, &error));
	g_assert_no_error(error);
	g_assert_true(g_spawn_check_wait_status(status, NULL));
	g_assert_true(g_file_get_contents(out, &locked, &len, NULL));
	g_assert_false(fax_render_add_document(render, "application/pdf", (const guint8 *)locked,
	                                       len, &error));
	g_assert_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_DAMAGED);
	g_assert_nonnull(strstr(error->message, "encrypted"));
}

static void
test_images(Fixture *fx, gconstpointer data)
{
	const char *formats[][2] = {{"png", "image/png"}, {"jpeg", "image/jpeg"}};

	for (gsize i = 0; i < G_N_ELEMENTS(formats); i++) {
		g_autoptr(GBytes) image = picture_encode(formats[i][0]);
		FaxRenderOptions options = options_default();
		g_autoptr(FaxRender) render = fax_render_new(&options);
		g_autoptr(GPtrArray) pages = NULL;
		const Page *page;

		add_bytes(render, formats[i][1], image);
		pages = write_read(fx, render);
		g_assert_cmpuint(pages->len, ==, 1);
		page = pages->pdata[0];
		tags_check(page, &tag_cases[0], 0, 1);
		/* a ramp dithered (half ink), a black bar: 320x240 at 96 dpi twice as large is
		 * 6.7x5 inches, about 40% of the page, half of it black */
		g_assert_cmpfloat(black_share(page), >, 0.1);
		g_assert_cmpfloat(black_share(page), <, 0.4);
	}
}

static void
test_image_dither(Fixture *fx, gconstpointer data)
{
	/* a flat mid grey: about half the pixels black, not all and not none */
	g_autoptr(GdkPixbuf) pixbuf = gdk_pixbuf_new(GDK_COLORSPACE_RGB, FALSE, 8, 200, 200);
	gchar *buf = NULL;
	gsize len = 0;
	g_autoptr(GBytes) png = NULL;
	FaxRenderOptions options = options_default();
	g_autoptr(FaxRender) render = fax_render_new(&options);
	g_autoptr(GPtrArray) pages = NULL;
	const Page *page;
	guint64 ink;
	guint first = 0, last = 0;

	gdk_pixbuf_fill(pixbuf, 0x808080ff);
	g_assert_true(gdk_pixbuf_save_to_buffer(pixbuf, &buf, &len, "png", NULL, NULL));
	png = g_bytes_new_take(buf, len);
	add_bytes(render, "image/png", png);
	pages = write_read(fx, render);
	page = pages->pdata[0];
	for (guint y = 0; y < page->length; y++) {
		if (black_rows(page, y, y + 1) == 0)
			continue;
		first = first ? first : y;
		last = y;
	}
	/* 200 pixels at 96 dpi, twice: 4.2 inches, 816 rows at 196 dpi */
	g_assert_cmpuint(last - first, >, 790);
	g_assert_cmpuint(last - first, <, 840);
	ink = black_rows(page, first, last);
	g_assert_cmpfloat((double)ink / (852.0 * (last - first)), >, 0.4);
	g_assert_cmpfloat((double)ink / (852.0 * (last - first)), <, 0.6);
}

/* a TIFF of two 8-bit grey pages, the second 204x98 dpi like a normal fax */
static GBytes *
tiff_make(const char *path)
{
	TIFF *tif = TIFFOpen(path, "w");
	g_autofree guint8 *row = g_malloc(400);
	gchar *data = NULL;
	gsize len = 0;

	for (guint p = 0; p < 2; p++) {
		TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, 400);
		TIFFSetField(tif, TIFFTAG_IMAGELENGTH, 300);
		TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
		TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
		TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
		TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
		TIFFSetField(tif, TIFFTAG_XRESOLUTION, p == 0 ? 100.0 : 204.0);
		TIFFSetField(tif, TIFFTAG_YRESOLUTION, p == 0 ? 100.0 : 98.0);
		TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
		for (guint y = 0; y < 300; y++) {
			for (guint x = 0; x < 400; x++)
				row[x] = (x / 40 + y / 40) % 2 ? 255 : 0; /* checkers */
			g_assert_cmpint(TIFFWriteScanline(tif, row, y, 0), ==, 1);
		}
		TIFFWriteDirectory(tif);
	}
	TIFFClose(tif);
	g_assert_true(g_file_get_contents(path, &data, &len, NULL));
	g_unlink(path);
	return g_bytes_new_take(data, len);
}

static void
test_tiff(Fixture *fx, gconstpointer data)
{
	g_autofree char *in = g_build_filename(fx->dir, "in.tiff", NULL);
	g_autoptr(GBytes) tiff = tiff_make(in);
	FaxRenderOptions options = options_default();
	g_autoptr(FaxRender) render = fax_render_new(&options);
	g_autoptr(FaxRender) again = fax_render_new(&options);
	g_autoptr(GPtrArray) pages = NULL;
	g_autofree char *out = NULL;
	gsize len = 0;

	add_bytes(render, "image/tiff", tiff);
	g_assert_cmpuint(fax_render_get_n_pages(render), ==, 2);
	pages = write_read(fx, render);
	for (guint i = 0; i < 2; i++) {
		/* checkers: half black */
		g_assert_cmpfloat(black_share(pages->pdata[i]), >, 0.05);
		g_assert_cmpfloat(black_share(pages->pdata[i]), <, 0.5);
	}
	/* our own output, a bilevel G3 fax, goes back in */
	g_assert_true(g_file_get_contents(fx->path, &out, &len, NULL));
	add_ok(again, "image/tiff", out, len);
	g_assert_cmpuint(fax_render_get_n_pages(again), ==, 2);
	add_fails(again, "image/tiff", out, 100, FAX_RENDER_ERROR_DAMAGED);
	add_fails(again, "image/tiff", "II*\0garbage", 11, FAX_RENDER_ERROR_DAMAGED);
}

static void
test_images_damaged(void)
{
	FaxRenderOptions options = options_default();
	g_autoptr(FaxRender) render = fax_render_new(&options);
	g_autoptr(GBytes) png = picture_encode("png");
	g_autoptr(GBytes) jpeg = picture_encode("jpeg");
	gsize png_len = 0, jpeg_len = 0;
	g_autofree guint8 *huge = g_memdup2(g_bytes_get_data(png, &png_len), 64);
	const guint8 *jpeg_data = g_bytes_get_data(jpeg, &jpeg_len);

	add_fails(render, "image/png", "not a png", 9, FAX_RENDER_ERROR_DAMAGED);
	add_fails(render, "image/jpeg", "not a jpeg", 10, FAX_RENDER_ERROR_DAMAGED);
	add_fails(render, "image/png", huge, 64 - 20, FAX_RENDER_ERROR_DAMAGED);
	add_fails(render, "image/jpeg", jpeg_data, 200, FAX_RENDER_ERROR_DAMAGED);
	/* 100000 x 100000 in the header: refused before anything is decoded */
	memcpy(huge + 16, "\0\1\x86\xa0\0\1\x86\xa0", 8);
	add_fails(render, "image/png", huge, 64, FAX_RENDER_ERROR_DAMAGED);
	/* a document that fails adds nothing; one that works still does */
	add_bytes(render, "image/jpeg", jpeg);
	g_assert_cmpuint(fax_render_get_n_pages(render), ==, 1);
}

static void
test_max_pages(void)
{
	g_autoptr(GBytes) pdf = pdf_make(3);
	g_autoptr(GString) text = long_text(400);
	FaxRenderOptions options = options_default();
	g_autoptr(FaxRender) render = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 0;
	const void *data = g_bytes_get_data(pdf, &len);

	options.max_pages = 2;
	render = fax_render_new(&options);
	g_assert_false(fax_render_add_document(render, "application/pdf", data, len, &error));
	g_assert_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_TOO_MANY);
	g_assert_cmpstr(error->message, ==, "document has 3 pages, at most 2");
	g_clear_error(&error);
	g_assert_cmpuint(fax_render_get_n_pages(render), ==, 0);
	/* text past the limit: counted, not kept */
	add_text(render, "first page");
	g_assert_false(fax_render_add_document(render, "text/plain", (const guint8 *)text->str,
	                                       text->len, &error));
	g_assert_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_TOO_MANY);
	g_assert_true(g_str_has_suffix(error->message, " pages, at most 1"));
	g_assert_true(g_str_has_prefix(error->message, "document has "));
	g_clear_error(&error);
	g_assert_cmpuint(fax_render_get_n_pages(render), ==, 1);
	add_text(render, "second page");
	g_assert_false(
	        fax_render_add_document(render, "text/plain", (const guint8 *)"a\fb", 3, &error));
	g_assert_cmpstr(error->message, ==, "document has 2 pages, at most 0");
	g_clear_error(&error);
	g_assert_cmpuint(fax_render_get_n_pages(render), ==, 2);
	/* far past the limit: not all laid out */
	g_string_append_len(text, "\f\f\f\f\f\f\f\f\f\f", 10);
	for (guint i = 0; i < 4; i++)
		g_string_append_len(text, text->str, text->len);
	add_fails(render, "text/plain", text->str, text->len, FAX_RENDER_ERROR_TOO_MANY);
	g_assert_cmpuint(fax_render_get_n_pages(render), ==, 2);
	/* the cover page counts */
	options.cover = TRUE;
	fax_render_free(g_steal_pointer(&render));
	render = fax_render_new(&options);
	g_assert_cmpuint(fax_render_get_n_pages(render), ==, 1);
	add_text(render, "one");
	add_fails(render, "text/plain", "two", 3, FAX_RENDER_ERROR_TOO_MANY);
}

static void
test_cover(Fixture *fx, gconstpointer data)
{
	FaxRenderOptions options = options_default();
	g_autoptr(GBytes) pdf = pdf_make(2);
	g_autoptr(FaxRender) render = NULL;
	g_autoptr(GPtrArray) pages = NULL;
	char *to = g_strdup("大阪支店 +81 6 1234 5678");

	options.cover = TRUE;
	options.cover_to = to;
	options.cover_subject = "見積書 (quote)";
	options.header_from = "Sender\r\nBcc: \xff <sender@example.jp>"; /* made one line */
	options.coding = FAX_CODING_MR;
	render = fax_render_new(&options);
	g_free(to); /* copied */
	add_text(render, "body");
	add_bytes(render, "application/pdf", pdf);
	g_assert_cmpuint(fax_render_get_n_pages(render), ==, 4);
	pages = write_read(fx, render);
	g_assert_cmpuint(pages->len, ==, 4);
	for (guint i = 0; i < pages->len; i++) {
		const Page *page = pages->pdata[i];

		tags_check(page, &tag_cases[1], i, 4);
		g_assert_cmpuint(black_rows(page, 0, top_rows(page)), >, 100);
	}
	/* title, rule and five fields: more ink than a one-word page */
	g_assert_cmpuint(black(pages->pdata[0]), >, 3 * black(pages->pdata[1]));
}

int
main(int argc, char **argv)
{
	void (*fc_fini)(void);
	int status;

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/fax-render/supports", test_supports);
	g_test_add_func("/fax-render/unsupported", test_unsupported);
	g_test_add("/fax-render/tags", Fixture, NULL, fixture_setup, test_tags, fixture_teardown);
	g_test_add("/fax-render/file", Fixture, NULL, fixture_setup, test_file, fixture_teardown);
	g_test_add("/fax-render/header", Fixture, NULL, fixture_setup, test_header,
	           fixture_teardown);
	g_test_add("/fax-render/japanese", Fixture, NULL, fixture_setup, test_japanese,
	           fixture_teardown);
	g_test_add("/fax-render/japanese-font", Fixture, NULL, fixture_setup, test_japanese_font,
	           fixture_teardown);
	g_test_add("/fax-render/long-text", Fixture, NULL, fixture_setup, test_long_text,
	           fixture_teardown);
	g_test_add("/fax-render/form-feed", Fixture, NULL, fixture_setup, test_form_feed,
	           fixture_teardown);
	g_test_add_func("/fax-render/empty-text", test_empty_text);
	g_test_add("/fax-render/pdf", Fixture, NULL, fixture_setup, test_pdf, fixture_teardown);
	g_test_add("/fax-render/pdf-normal-header", Fixture, NULL, fixture_setup,
	           test_pdf_normal_header, fixture_teardown);
	g_test_add_func("/fax-render/pdf-damaged", test_pdf_damaged);
	g_test_add("/fax-render/pdf-encrypted", Fixture, NULL, fixture_setup, test_pdf_encrypted,
	           fixture_teardown);
	g_test_add("/fax-render/images", Fixture, NULL, fixture_setup, test_images,
	           fixture_teardown);
	g_test_add("/fax-render/image-dither", Fixture, NULL, fixture_setup, test_image_dither,
	           fixture_teardown);
	g_test_add("/fax-render/tiff", Fixture, NULL, fixture_setup, test_tiff, fixture_teardown);
	g_test_add_func("/fax-render/images-damaged", test_images_damaged);
	g_test_add_func("/fax-render/max-pages", test_max_pages);
	g_test_add("/fax-render/cover", Fixture, NULL, fixture_setup, test_cover, fixture_teardown);
	status = g_test_run();
	/* pango's fonts and fontconfig's caches live as long as the process; drop them so that
	 * LeakSanitizer reports only what the renderer leaks (fontconfig is pango's dependency,
	 * not ours: looked up, not linked) */
	pango_cairo_font_map_set_default(NULL);
	cairo_debug_reset_static_data();
	fc_fini = (void (*)(void))dlsym(RTLD_DEFAULT, "FcFini");
	if (fc_fini != NULL)
		fc_fini();
	return status;
}
