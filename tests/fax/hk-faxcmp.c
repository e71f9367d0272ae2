/*
 * hk-faxcmp: compares the pages of a fax sent with the pages received, for the fax tests.
 *
 *   hk-faxcmp [--max-rows N] [--trim] SOURCE.tif RECEIVED [RECEIVED...]
 *
 * The received pages may be spread over several files (efax -r writes one per page);
 * their pages are taken in order. Both sides are decoded with libtiff (any compression it
 * reads: T.4 1-D/2-D, T.6, none) and compared page by page: page count, width, length,
 * and the rows themselves. Prints one line per page
 *   page 1: 1728x1146 1728x1146 black 40210 40210 rows-differing 0
 * and exits 0 when the pages match (at most N differing rows per page, default 0), 1 when
 * they do not, 2 when a file cannot be read. --trim drops white rows at the top and bottom
 * of every page before comparing, and then lets the lengths differ: efax puts a header
 * (blank with -h "") above each page and leaves out the white rows at its foot.
 *
 * Talks to: the TIFF files (read only), stdout, stderr.
 * Must never: write to its inputs.
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <tiffio.h>

typedef struct {
	guint32 width;
	guint32 length;
	guint64 black;
	GPtrArray *rows; /* of GBytes: 1 = black, packed MSB first */
} FaxPage;

static gboolean trim;

static void
page_free(gpointer data)
{
	FaxPage *page = data;

	g_ptr_array_unref(page->rows);
	g_free(page);
}

static guint
popcount_row(const guint8 *row, gsize len)
{
	guint n = 0;

	for (gsize i = 0; i < len; i++)
		n += (guint)__builtin_popcount(row[i]);
	return n;
}

static FaxPage *
read_page(TIFF *tif)
{
	FaxPage *page = g_new0(FaxPage, 1);
	guint16 photometric = PHOTOMETRIC_MINISWHITE;
	tmsize_t len = TIFFScanlineSize(tif);
	g_autofree guint8 *buf = g_malloc0(len);

	TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &page->width);
	TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &page->length);
	TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photometric);
	page->rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	for (guint32 r = 0; r < page->length; r++) {
		if (TIFFReadScanline(tif, buf, r, 0) < 0)
			break;
		if (photometric == PHOTOMETRIC_MINISBLACK)
			for (tmsize_t i = 0; i < len; i++)
				buf[i] = (guint8)~buf[i];
		page->black += popcount_row(buf, len);
		g_ptr_array_add(page->rows, g_bytes_new(buf, len));
	}
	return page;
}

static gboolean
read_pages(const char *path, GPtrArray *pages)
{
	TIFF *tif = TIFFOpen(path, "r");

	if (tif == NULL) {
		fprintf(stderr, "hk-faxcmp: cannot open %s\n", path);
		return FALSE;
	}
	do
		g_ptr_array_add(pages, read_page(tif));
	while (TIFFReadDirectory(tif));
	TIFFClose(tif);
	return TRUE;
}

static gboolean
row_is_white(GBytes *row)
{
	gsize len;
	const guint8 *p = g_bytes_get_data(row, &len);

	return popcount_row(p, len) == 0;
}

/* The rows to compare: all of them, or (--trim) from the first to the last black one. */
static void
row_span(const FaxPage *page, guint *first, guint *end)
{
	*first = 0;
	*end = page->rows->len;
	if (!trim)
		return;
	while (*first < *end && row_is_white(page->rows->pdata[*first]))
		(*first)++;
	while (*end > *first && row_is_white(page->rows->pdata[*end - 1]))
		(*end)--;
}

static guint
rows_differing(const FaxPage *a, const FaxPage *b)
{
	guint a0, a1, b0, b1, common, n = 0;

	row_span(a, &a0, &a1);
	row_span(b, &b0, &b1);
	common = MIN(a1 - a0, b1 - b0);
	for (guint r = 0; r < common; r++)
		if (!g_bytes_equal(a->rows->pdata[a0 + r], b->rows->pdata[b0 + r]))
			n++;
	return n + MAX(a1 - a0, b1 - b0) - common;
}

static gboolean
compare(GPtrArray *src, GPtrArray *rx, guint max_rows)
{
	gboolean same = src->len == rx->len;

	if (!same)
		printf("pages %u %u\n", src->len, rx->len);
	for (guint i = 0; i < MIN(src->len, rx->len); i++) {
		const FaxPage *a = src->pdata[i];
		const FaxPage *b = rx->pdata[i];
		guint diff = rows_differing(a, b);

		printf("page %u: %ux%u %ux%u black %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
		       " rows-differing %u\n",
		       i + 1, a->width, a->length, b->width, b->length, a->black, b->black, diff);
		if (a->width != b->width || (!trim && a->length != b->length) || diff > max_rows)
			same = FALSE;
	}
	return same;
}

int
main(int argc, char **argv)
{
	int max_rows = 0;
	GOptionEntry entries[] = {
	        {"max-rows", 0, 0, G_OPTION_ARG_INT, &max_rows, "Differing rows allowed per page",
	         "N"},
	        {"trim", 0, 0, G_OPTION_ARG_NONE, &trim, "Ignore white rows at top and bottom",
	         NULL},
	        {NULL},
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("SOURCE.tif RECEIVED...");
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) src = g_ptr_array_new_with_free_func(page_free);
	g_autoptr(GPtrArray) rx = g_ptr_array_new_with_free_func(page_free);

	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &error) || argc < 3) {
		fprintf(stderr, "hk-faxcmp: %s\n",
		        error ? error->message : "usage: hk-faxcmp SOURCE.tif RECEIVED...");
		return 2;
	}
	TIFFSetWarningHandler(NULL);
	if (!read_pages(argv[1], src))
		return 2;
	for (int i = 2; i < argc; i++)
		if (!read_pages(argv[i], rx))
			return 2;
	return compare(src, rx, (guint)MAX(max_rows, 0)) ? 0 : 1;
}
