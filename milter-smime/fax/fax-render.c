/*
 * fax-render: documents to bilevel A4 fax pages, and those pages to one TIFF Class F file.
 * See fax-render.h.
 *
 * Pages are drawn on a cairo surface whose user space is the page in points (anisotropic
 * for normal resolution, so text keeps its shape), thresholded, halftoned or dithered to
 * 1 bit per pixel and kept packed (216 bytes a row); the header line ("page n/m") and the
 * cover page are drawn when the file is written, once the page count is known. Writing
 * codes the pages on up to CODER_THREADS threads (libtiff, one TIFF in memory each) and
 * copies their strips into the file in order; everything else runs in the caller's thread.
 *
 * Talks to: pango and fontconfig (text), poppler (PDF), gdk-pixbuf (PNG, JPEG), libtiff
 * (TIFF in, TIFF Class F out), the file system (the output file, through a temporary file).
 * Must never: hand an image decoder a picture whose size it has not checked first, let a
 * library's error reach stderr when it can be returned in a GError, or leave a partial
 * file at the output path.
 */
#include "fax-render.h"

#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <poppler.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>

#define FAX_XDPI         204.0
#define PT_PER_INCH      72.0
#define MM_TO_PT(mm)     ((mm) / 25.4 * PT_PER_INCH)
#define ROW_BYTES        (FAX_PAGE_WIDTH / 8)
#define MARGIN           MM_TO_PT(10.0)
#define HEADER_BAND      MM_TO_PT(8.0) /* the header line's band; PDF pages start below */
#define HEADER_BASELINE  MM_TO_PT(6.0)
#define HEADER_FONT_SIZE 8
#define DEFAULT_FONT     "IPAGothic 11"
/* A8 coverage from which a pixel is black: below half, so that thin strokes survive */
#define TEXT_THRESHOLD 100
/* PDF: the darkness (255 - luminance) from which an edge pixel is black, and how much an
 * area's pixels may differ from their neighbours to be halftoned (2^n - 1: the differences
 * are ORed) */
#define PDF_THRESHOLD 96
#define HALFTONE_FLAT 3
/* the loops over every pixel of a PDF page, also built for AVX2 where the compiler can */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define PIXEL_LOOP __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef PIXEL_LOOP
#define PIXEL_LOOP
#endif
/* text is laid out in pieces of about this many bytes, cut after a newline */
#define TEXT_CHUNK 16384
/* text past the page limit: pages counted for the error message before giving up */
#define TEXT_COUNT_MORE 100
/* images: the most pixels decoded, the size assumed without a resolution, the upscaling */
#define IMAGE_MAX_PIXELS  (50u * 1000 * 1000)
#define IMAGE_DEFAULT_DPI 96.0
#define IMAGE_MAX_UPSCALE 2.0
#define TIFF_BAND_ROWS    256
#define TIFF_MAX_ALLOC    ((tmsize_t)256 << 20)
/* threads coding pages at most */
#define CODER_THREADS 4

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PopplerDocument, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PopplerPage, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PangoContext, g_object_unref)

struct _FaxRender {
	FaxCoding coding;
	char *font;
	char *header_from;
	GDateTime *date;
	gboolean cover;
	char *cover_to;
	char *cover_subject;
	guint max_pages;
	guint rows;       /* lines per page */
	double ydpi;      /* vertical resolution */
	double width;     /* the page in points */
	double height;    /* the page in points */
	GPtrArray *pages; /* ROW_BYTES * rows each: 1 black, the leftmost pixel in the MSB */
	guint unknown_glyphs;
};

/* written out: clang-format would put spaces into G_DEFINE_QUARK's stringified name */
GQuark
fax_render_error_quark(void)
{
	return g_quark_from_static_string("fax-render-error-quark");
}

/* A copy of text without the control characters pango would draw as boxes: C0 but tab,
 * newline and form feed, DEL, C1. CR LF and a lone CR become LF. */
static char *
text_clean(const char *text, gsize len)
{
	GString *out = g_string_sized_new(len + 1);

	for (gsize i = 0; i < len; i++) {
		guchar c = (guchar)text[i];

		if (c == '\r') {
			if (i + 1 == len || text[i + 1] != '\n')
				g_string_append_c(out, '\n');
		} else if (c == 0xc2 && i + 1 < len && (guchar)text[i + 1] < 0xa0) {
			i++; /* U+0080 to U+009F */
		} else if (c >= 0x20 ? c != 0x7f : (c == '\t' || c == '\n' || c == '\f')) {
			g_string_append_c(out, (char)c);
		}
	}
	return g_string_free(out, FALSE);
}

/* text from the caller for a layout: valid UTF-8, no control characters, one line if asked */
static char *
text_safe(const char *text, gboolean one_line)
{
	g_autofree char *valid = NULL;
	char *clean;

	if (text == NULL)
		return NULL;
	valid = g_utf8_make_valid(text, -1);
	clean = text_clean(valid, strlen(valid));
	return g_strdelimit(clean, one_line ? "\t\n\f" : "\f", ' ');
}

FaxRender *
fax_render_new(const FaxRenderOptions *options)
{
	FaxRender *render = g_new0(FaxRender, 1);
	gboolean fine = options->resolution != FAX_RES_NORMAL;

	render->coding = options->coding;
	render->font = g_strdup(options->font != NULL ? options->font : DEFAULT_FONT);
	render->header_from = text_safe(options->header_from, TRUE);
	render->date = options->date != NULL ? g_date_time_ref(options->date) : NULL;
	render->cover = options->cover;
	render->cover_to = text_safe(options->cover_to, FALSE);
	render->cover_subject = text_safe(options->cover_subject, TRUE);
	render->max_pages = options->max_pages;
	render->rows = fine ? 2287 : 1143;
	render->ydpi = fine ? 196.0 : 98.0;
	render->width = FAX_PAGE_WIDTH / FAX_XDPI * PT_PER_INCH;
	render->height = render->rows / render->ydpi * PT_PER_INCH;
	render->pages = g_ptr_array_new_with_free_func(g_free);
	return render;
}

void
fax_render_free(FaxRender *render)
{
	if (render == NULL)
		return;
	g_free(render->font);
	g_free(render->header_from);
	g_clear_pointer(&render->date, g_date_time_unref);
	g_free(render->cover_to);
	g_free(render->cover_subject);
	g_ptr_array_unref(render->pages);
	g_free(render);
}

guint
fax_render_get_n_pages(FaxRender *render)
{
	return render->pages->len + (render->cover ? 1 : 0);
}

guint
fax_render_get_unknown_glyphs(FaxRender *render)
{
	return render->unknown_glyphs;
}

static gsize
page_bytes(const FaxRender *render)
{
	return (gsize)ROW_BYTES * render->rows;
}

/* Pages the next document may add: G_MAXUINT without a limit. */
static guint
pages_left(const FaxRender *render)
{
	guint used = fax_render_get_n_pages((FaxRender *)render);

	if (render->max_pages == 0)
		return G_MAXUINT;
	return render->max_pages > used ? render->max_pages - used : 0;
}

static gboolean
too_many(GError **error, const char *more, guint n_pages, guint left)
{
	g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_TOO_MANY,
	            "document has %s%u page%s, at most %u", more, n_pages, n_pages == 1 ? "" : "s",
	            left);
	return FALSE;
}

static gboolean
check_room(const FaxRender *render, guint n_pages, GError **error)
{
	guint left = pages_left(render);

	return n_pages <= left || too_many(error, "", n_pages, left);
}

/* ---- surfaces and pixels ---- */

/* A page-sized (or band-sized) surface whose user space is points from the top left. */
typedef struct {
	cairo_surface_t *surface;
	cairo_t *cr;
} Canvas;

static void
canvas_clear(Canvas *canvas)
{
	if (canvas->cr == NULL)
		return;
	cairo_destroy(canvas->cr);
	cairo_surface_destroy(canvas->surface);
	canvas->cr = NULL;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Canvas, canvas_clear)

static gboolean
canvas_init(Canvas *canvas, const FaxRender *render, cairo_format_t format, guint rows,
            GError **error)
{
	canvas->surface = cairo_image_surface_create(format, FAX_PAGE_WIDTH, (int)rows);
	canvas->cr = cairo_create(canvas->surface);
	if (cairo_status(canvas->cr) != CAIRO_STATUS_SUCCESS) {
		g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_IO, "cannot draw a page: %s",
		            cairo_status_to_string(cairo_status(canvas->cr)));
		canvas_clear(canvas);
		return FALSE;
	}
	cairo_scale(canvas->cr, FAX_XDPI / PT_PER_INCH, render->ydpi / PT_PER_INCH);
	/* coverage adds up the same for our purpose, and pixman has fast paths for ADD to A8
	 * that it lacks for OVER */
	if (format == CAIRO_FORMAT_A8)
		cairo_set_operator(canvas->cr, CAIRO_OPERATOR_ADD);
	return TRUE;
}

/* Blank: white for RGB, no coverage for A8. */
static void
canvas_blank(Canvas *canvas)
{
	cairo_surface_t *surface = canvas->surface;
	int rows = cairo_image_surface_get_height(surface);
	int fill = cairo_image_surface_get_format(surface) == CAIRO_FORMAT_A8 ? 0 : 0xff;

	cairo_surface_flush(surface);
	memset(cairo_image_surface_get_data(surface), fill,
	       (gsize)cairo_image_surface_get_stride(surface) * rows);
	cairo_surface_mark_dirty(surface);
}

/*
 * Eight pixels of 8-bit darkness (little-endian in a word) to one byte of bits, the first
 * pixel in the MSB, without a branch: a byte's top bit is set where it reaches threshold
 * (1 to 128: the low seven bits plus 128 - threshold cannot carry into the next byte), and
 * one multiplication gathers the eight top bits.
 */
static inline guint8
pack8(guint64 eight, guint threshold)
{
	guint64 add = G_GUINT64_CONSTANT(0x0101010101010101) * (128 - threshold);
	guint64 top = (eight | ((eight & G_GUINT64_CONSTANT(0x7f7f7f7f7f7f7f7f)) + add)) &
	              G_GUINT64_CONSTANT(0x8080808080808080);

	return (guint8)(((top >> 7) * G_GUINT64_CONSTANT(0x8040201008040201)) >> 56);
}

/* Rows of an A8 surface (coverage) to packed bits. */
static void
a8_to_bits(cairo_surface_t *surface, guint threshold, guint rows, guint8 *bits)
{
	const guint8 *data;
	int stride;

	g_assert(threshold >= 1 && threshold <= 128);
	cairo_surface_flush(surface);
	data = cairo_image_surface_get_data(surface);
	stride = cairo_image_surface_get_stride(surface);
	for (guint y = 0; y < rows; y++) {
		const guint8 *row = data + (gsize)y * stride;
		guint8 *out = bits + (gsize)y * ROW_BYTES;

		for (guint x = 0; x < ROW_BYTES; x++, row += 8) {
			guint64 eight;

			memcpy(&eight, row, sizeof(eight));
			out[x] = pack8(GUINT64_FROM_LE(eight), threshold);
		}
	}
}

/*
 * One row of RGB 5-6-5 to 8-bit darkness in dark[1 .. FAX_PAGE_WIDTH], its edge pixels
 * repeated in dark[0] and dark[FAX_PAGE_WIDTH + 1], by simple loops the compiler
 * vectorises; FALSE when the row is all white. The row is left white for the next page,
 * while it is in the cache. Pages in colour are drawn with 16 bits a pixel: half the
 * memory of 32 to clear and read back, which is most of what converting costs, and plenty
 * for bilevel.
 */
PIXEL_LOOP static gboolean
rgb16_row_dark(guint16 *restrict px, guint8 *restrict dark)
{
	guint16 all = 0xffff;

	for (guint x = 0; x < FAX_PAGE_WIDTH; x++)
		all &= px[x];
	if (all == 0xffff) {
		memset(dark, 0, FAX_PAGE_WIDTH + 2);
		return FALSE;
	}
	/* the weights 77, 150, 29 scaled from 5, 6 and 5 bits to 8 */
	for (guint x = 0; x < FAX_PAGE_WIDTH; x++) {
		guint p = px[x];

		dark[x + 1] = (guint8)(255 - (((p >> 11) * 633 + (p >> 5 & 0x3f) * 607 +
		                               (p & 0x1f) * 239 + 128) >>
		                              8));
	}
	dark[0] = dark[1];
	dark[FAX_PAGE_WIDTH + 1] = dark[FAX_PAGE_WIDTH];
	memset(px, 0xff, FAX_PAGE_WIDTH * sizeof(*px));
	return TRUE;
}

/* halftone thresholds: the 8x8 Bayer order times 4, plus 2 */
static const guint8 bayer[8][8] = {
        {2, 130, 34, 162, 10, 138, 42, 170},  {194, 66, 226, 98, 202, 74, 234, 106},
        {50, 178, 18, 146, 58, 186, 26, 154}, {242, 114, 210, 82, 250, 122, 218, 90},
        {14, 142, 46, 174, 6, 134, 38, 166},  {206, 78, 238, 110, 198, 70, 230, 102},
        {62, 190, 30, 158, 54, 182, 22, 150}, {254, 126, 222, 94, 246, 118, 214, 86},
};

static inline guint8
absdiff(guint8 a, guint8 b)
{
	return a > b ? (guint8)(a - b) : (guint8)(b - a);
}

/*
 * One row to bits. A pixel whose four neighbours have about its darkness is part of an
 * area (a grey fill, a shading): it gets an ordered halftone, so that a grey box stays
 * grey, and black text on it readable. Any other pixel is an edge (anti-aliased text, a
 * rule) and is thresholded, so that text stays crisp.
 */
PIXEL_LOOP static void
halftone_row(const guint8 *restrict up, const guint8 *restrict row, const guint8 *restrict down,
             guint y, guint8 *restrict out)
{
	guint8 pattern[FAX_PAGE_WIDTH], black[FAX_PAGE_WIDTH];

	for (guint x = 0; x < FAX_PAGE_WIDTH; x += 8)
		memcpy(pattern + x, bayer[y % 8], 8);
	/* bytes only, no && and no branch: the loop vectorises at full width */
	for (guint x = 0; x < FAX_PAGE_WIDTH; x++) {
		guint8 d = row[x + 1];
		guint8 far = (guint8)(absdiff(row[x], d) | absdiff(row[x + 2], d) |
		                      absdiff(up[x + 1], d) | absdiff(down[x + 1], d));
		guint8 threshold = far <= HALFTONE_FLAT ? pattern[x] : PDF_THRESHOLD;

		black[x] = d >= threshold ? 0x80 : 0;
	}
	for (guint x = 0; x < ROW_BYTES; x++) {
		guint64 eight;

		memcpy(&eight, black + 8 * x, sizeof(eight));
		out[x] = pack8(GUINT64_FROM_LE(eight), 128);
	}
}

/* Rows of an RGB16_565 surface to packed bits, each row seen with its neighbours; the
 * surface is white afterwards. */
static void
rgb16_to_bits(cairo_surface_t *surface, guint rows, guint8 *bits)
{
	guint8 buffers[3][FAX_PAGE_WIDTH + 2];
	guint8 *up = buffers[0], *row = buffers[1], *down = buffers[2], *spare;
	gboolean inked, inked_down = FALSE;
	guint8 *data;
	int stride;

	cairo_surface_flush(surface);
	data = cairo_image_surface_get_data(surface);
	stride = cairo_image_surface_get_stride(surface);
	inked = rgb16_row_dark((guint16 *)(void *)data, row);
	memcpy(up, row, sizeof(buffers[0]));
	for (guint y = 0; y < rows; y++) {
		if (y + 1 < rows)
			inked_down = rgb16_row_dark(
			        (guint16 *)(void *)(data + (gsize)(y + 1) * stride), down);
		else
			memcpy(down, row, sizeof(buffers[0]));
		if (inked)
			halftone_row(up, row, down, y, bits + (gsize)y * ROW_BYTES);
		else
			memset(bits + (gsize)y * ROW_BYTES, 0, ROW_BYTES);
		spare = up;
		up = row;
		row = down;
		down = spare;
		inked = inked_down;
	}
	cairo_surface_mark_dirty(surface);
}

/* Floyd-Steinberg on A8 darkness, in place: every pixel becomes 0 or 255. */
static void
dither_a8(cairo_surface_t *surface)
{
	int width = cairo_image_surface_get_width(surface);
	int rows = cairo_image_surface_get_height(surface);
	int stride = cairo_image_surface_get_stride(surface);
	guint8 *data;
	/* errors in sixteenths, one spare cell on either side of each row */
	g_autofree int *errors = g_new0(int, 2 * ((gsize)width + 2));
	int *cur = errors + 1, *next = errors + width + 3;

	cairo_surface_flush(surface);
	data = cairo_image_surface_get_data(surface);
	for (int y = 0; y < rows; y++) {
		guint8 *row = data + (gsize)y * stride;
		int *swap;

		memset(next - 1, 0, ((gsize)width + 2) * sizeof(*next));
		for (int x = 0; x < width; x++) {
			int v = row[x] + cur[x] / 16;
			int out = v >= 128 ? 255 : 0;
			int e = v - out;

			row[x] = (guint8)out;
			cur[x + 1] += e * 7;
			next[x - 1] += e * 3;
			next[x] += e * 5;
			next[x + 1] += e;
		}
		swap = cur;
		cur = next;
		next = swap;
	}
	cairo_surface_mark_dirty(surface);
}

static void
page_append(FaxRender *render, guint8 *bits)
{
	g_ptr_array_add(render->pages, bits);
}

/* ---- text ---- */

static PangoFontDescription *
font_new(const FaxRender *render, int points, PangoWeight weight)
{
	PangoFontDescription *font = pango_font_description_from_string(render->font);

	if (points > 0)
		pango_font_description_set_size(font, points * PANGO_SCALE);
	else if (pango_font_description_get_size(font) <= 0)
		pango_font_description_set_size(font, 11 * PANGO_SCALE);
	if (weight != PANGO_WEIGHT_NORMAL)
		pango_font_description_set_weight(font, weight);
	return font;
}

/*
 * A layout in points for any canvas. Its context has the fine resolution's square pixels
 * whatever the canvas: pango lays out wrong under a scale that is not the same both ways,
 * while cairo draws glyphs right under any. Metrics unhinted and positions unrounded, so
 * lines break the same at either resolution and glyphs are not moved to whole points.
 */
static PangoLayout *
layout_new(const FaxRender *render, int points, PangoWeight weight)
{
	cairo_font_options_t *options = cairo_font_options_create();
	g_autoptr(PangoContext) context =
	        pango_font_map_create_context(pango_cairo_font_map_get_default());
	g_autoptr(PangoFontDescription) font = font_new(render, points, weight);
	PangoMatrix matrix = PANGO_MATRIX_INIT;
	PangoLayout *layout;

	pango_matrix_scale(&matrix, FAX_XDPI / PT_PER_INCH, FAX_XDPI / PT_PER_INCH);
	pango_context_set_matrix(context, &matrix);
	cairo_font_options_set_antialias(options, CAIRO_ANTIALIAS_GRAY);
	cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_SLIGHT);
	cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);
	pango_cairo_context_set_font_options(context, options);
	cairo_font_options_destroy(options);
	pango_context_set_round_glyph_positions(context, FALSE);
	layout = pango_layout_new(context);
	pango_layout_set_font_description(layout, font);
	pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR);
	return layout;
}

/*
 * Lines flowing down pages: one document's text. Past the page limit the pages are laid
 * out but not drawn, to say how many there are, up to TEXT_COUNT_MORE of them.
 */
typedef struct {
	FaxRender *render;
	Canvas canvas; /* A8 */
	PangoLayout *layout;
	double y;    /* where the next line goes, in points; negative: no page open */
	guint left;  /* pages the document may add */
	guint pages; /* pages it has, drawn or counted */
	guint unknown_glyphs;
} TextFlow;

static gboolean
flow_drawing(const TextFlow *flow)
{
	return flow->pages < flow->left;
}

static void
flow_close_page(TextFlow *flow)
{
	guint8 *bits;

	if (flow->y < 0)
		return;
	if (flow_drawing(flow)) {
		bits = g_malloc(page_bytes(flow->render));
		a8_to_bits(flow->canvas.surface, TEXT_THRESHOLD, flow->render->rows, bits);
		page_append(flow->render, bits);
	}
	flow->pages++;
	flow->y = -1;
}

static gboolean
flow_open_page(TextFlow *flow, GError **error)
{
	if (!flow_drawing(flow) && flow->pages - flow->left >= TEXT_COUNT_MORE)
		return too_many(error, "more than ", flow->pages, flow->left);
	if (flow_drawing(flow))
		canvas_blank(&flow->canvas);
	flow->y = MARGIN;
	return TRUE;
}

static gboolean
flow_line(TextFlow *flow, PangoLayoutIter *iter, GError **error)
{
	PangoRectangle logical;
	double height, baseline;

	pango_layout_iter_get_line_extents(iter, NULL, &logical);
	height = (double)logical.height / PANGO_SCALE;
	baseline = (double)(pango_layout_iter_get_baseline(iter) - logical.y) / PANGO_SCALE;
	if (flow->y > MARGIN && flow->y + height > flow->render->height - MARGIN)
		flow_close_page(flow);
	if (flow->y < 0 && !flow_open_page(flow, error))
		return FALSE;
	if (flow_drawing(flow)) {
		cairo_move_to(flow->canvas.cr, MARGIN + (double)logical.x / PANGO_SCALE,
		              flow->y + baseline);
		pango_cairo_show_layout_line(flow->canvas.cr,
		                             pango_layout_iter_get_line_readonly(iter));
	}
	flow->y += height;
	return TRUE;
}

/* how much of text to lay out at once: up to a newline after TEXT_CHUNK bytes */
static gsize
chunk_length(const char *text, gsize len)
{
	const char *newline;

	if (len <= TEXT_CHUNK)
		return len;
	newline = memchr(text + TEXT_CHUNK, '\n', len - TEXT_CHUNK);
	return newline != NULL ? (gsize)(newline - text) : len;
}

static gboolean
flow_chunk(TextFlow *flow, const char *text, gsize len, GError **error)
{
	g_autoptr(PangoLayoutIter) iter = NULL;

	pango_layout_set_text(flow->layout, text, (int)len);
	flow->unknown_glyphs += (guint)pango_layout_get_unknown_glyphs_count(flow->layout);
	iter = pango_layout_get_iter(flow->layout);
	do {
		if (!flow_line(flow, iter, error))
			return FALSE;
	} while (pango_layout_iter_next_line(iter));
	return TRUE;
}

/* The text between two form feeds: at least one page. */
static gboolean
flow_section(TextFlow *flow, const char *text, gsize len, GError **error)
{
	gsize pos = 0;

	if (len == 0 && !flow_open_page(flow, error))
		return FALSE;
	while (pos < len) {
		gsize n = chunk_length(text + pos, len - pos);

		if (!flow_chunk(flow, text + pos, n, error))
			return FALSE;
		pos += n + 1; /* and the newline */
	}
	flow_close_page(flow);
	return TRUE;
}

static gsize
trimmed_length(const char *text, gsize len)
{
	while (len > 0 && strchr(" \t\n", text[len - 1]) != NULL)
		len--;
	return len;
}

static gboolean
flow_text(TextFlow *flow, const char *text, GError **error)
{
	g_auto(GStrv) sections = g_strsplit(text, "\f", -1);
	guint n = g_strv_length(sections);

	/* blank pages only between form feeds, not before the first or after the last */
	for (guint i = 0; i < n; i++) {
		gsize len = trimmed_length(sections[i], strlen(sections[i]));

		if (len == 0 && (i == 0 || i + 1 == n))
			continue;
		if (!flow_section(flow, sections[i], len, error))
			return FALSE;
	}
	return TRUE;
}

static gboolean
text_add(FaxRender *render, const char *type, const guint8 *data, gsize len, GError **error)
{
	const char *bad = NULL;
	g_autofree char *text = NULL;
	TextFlow flow = {.render = render, .y = -1, .left = pages_left(render)};
	gboolean ok;

	if (!g_utf8_validate_len((const char *)data, len, &bad)) {
		g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_DAMAGED,
		            "text is not UTF-8 (byte %" G_GSIZE_FORMAT ")",
		            (gsize)(bad - (const char *)data));
		return FALSE;
	}
	text = text_clean((const char *)data, len);
	if (!canvas_init(&flow.canvas, render, CAIRO_FORMAT_A8, render->rows, error))
		return FALSE;
	flow.layout = layout_new(render, 0, PANGO_WEIGHT_NORMAL);
	pango_layout_set_width(flow.layout, (int)((render->width - 2 * MARGIN) * PANGO_SCALE));
	ok = flow_text(&flow, text, error);
	if (ok && flow.pages > flow.left)
		ok = too_many(error, "", flow.pages, flow.left);
	render->unknown_glyphs += flow.unknown_glyphs;
	g_object_unref(flow.layout);
	canvas_clear(&flow.canvas);
	return ok;
}

/* ---- PDF ---- */

/* draws on a white canvas: blank at first, left white by rgb16_to_bits() after each page */
static gboolean
pdf_page_draw(Canvas *canvas, const FaxRender *render, PopplerPage *page, GError **error)
{
	cairo_t *cr = canvas->cr;
	double pw = 0, ph = 0, top = render->header_from != NULL ? HEADER_BAND : 0;
	double box = render->height - top, scale, w, h;
	gboolean landscape;

	poppler_page_get_size(page, &pw, &ph);
	if (!(pw >= 1 && ph >= 1 && pw < 1e6 && ph < 1e6)) {
		g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_DAMAGED,
		            "PDF page %d has no size", poppler_page_get_index(page) + 1);
		return FALSE;
	}
	/* landscape pages are turned: they come out larger */
	landscape = pw > ph;
	w = landscape ? ph : pw;
	h = landscape ? pw : ph;
	scale = MIN(render->width / w, box / h);
	cairo_save(cr);
	cairo_translate(cr, (render->width - w * scale) / 2, top);
	cairo_scale(cr, scale, scale);
	if (landscape) {
		cairo_translate(cr, 0, pw);
		cairo_rotate(cr, -G_PI / 2);
	}
	cairo_rectangle(cr, 0, 0, pw, ph);
	cairo_clip(cr);
	poppler_page_render_for_printing(page, cr);
	cairo_restore(cr);
	return TRUE;
}

static gboolean
pdf_add(FaxRender *render, const char *type, const guint8 *data, gsize len, GError **error)
{
	g_autoptr(GBytes) bytes = g_bytes_new_static(data, len);
	g_autoptr(GError) local = NULL;
	g_autoptr(PopplerDocument) document = NULL;
	g_auto(Canvas) canvas = {0};
	int n;

	document = poppler_document_new_from_bytes(bytes, NULL, &local);
	if (document == NULL) {
		g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_DAMAGED,
		            "the PDF cannot be read: %s", local->message);
		return FALSE;
	}
	n = poppler_document_get_n_pages(document);
	if (n <= 0) {
		g_set_error_literal(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_DAMAGED,
		                    "PDF has no pages");
		return FALSE;
	}
	if (!check_room(render, (guint)n, error) ||
	    !canvas_init(&canvas, render, CAIRO_FORMAT_RGB16_565, render->rows, error))
		return FALSE;
	canvas_blank(&canvas);
	for (int i = 0; i < n; i++) {
		g_autoptr(PopplerPage) page = poppler_document_get_page(document, i);
		guint8 *bits;

		if (page == NULL) {
			g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_DAMAGED,
			            "PDF page %d cannot be read", i + 1);
			return FALSE;
		}
		if (!pdf_page_draw(&canvas, render, page, error))
			return FALSE;
		bits = g_malloc(page_bytes(render));
		rgb16_to_bits(canvas.surface, render->rows, bits);
		page_append(render, bits);
	}
	return TRUE;
}

/* ---- images ---- */

/* A decoded image as A8 darkness (0 white, 255 black) and its size on paper. */
typedef struct {
	cairo_surface_t *dark;
	double width; /* points */
	double height;
} Picture;

static void
picture_clear(Picture *picture)
{
	g_clear_pointer(&picture->dark, cairo_surface_destroy);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Picture, picture_clear)

static double
dpi_sane(double dpi)
{
	return dpi >= 20 && dpi <= 4800 ? dpi : IMAGE_DEFAULT_DPI;
}

static void
picture_set_size(Picture *picture, guint width, guint height, double xdpi, double ydpi)
{
	picture->width = width / dpi_sane(xdpi) * PT_PER_INCH;
	picture->height = height / dpi_sane(ydpi) * PT_PER_INCH;
}

static gboolean
picture_alloc(Picture *picture, guint width, guint height, GError **error)
{
	picture->dark = cairo_image_surface_create(CAIRO_FORMAT_A8, (int)width, (int)height);
	if (cairo_surface_status(picture->dark) != CAIRO_STATUS_SUCCESS) {
		g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_DAMAGED,
		            "image of %ux%u pixels: %s", width, height,
		            cairo_status_to_string(cairo_surface_status(picture->dark)));
		picture_clear(picture);
		return FALSE;
	}
	cairo_surface_flush(picture->dark);
	return TRUE;
}

static gboolean
image_size_check(const char *what, guint width, guint height, GError **error)
{
	if (width > 0 && height > 0 && (guint64)width * height <= IMAGE_MAX_PIXELS)
		return TRUE;
	g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_DAMAGED,
	            "%s image of %ux%u pixels (at most %u pixels)", what, width, height,
	            IMAGE_MAX_PIXELS);
	return FALSE;
}

/* The picture fitted into the margins on a blank page, then dithered. */
static void
picture_draw(Canvas *canvas, const FaxRender *render, const Picture *picture)
{
	cairo_t *cr = canvas->cr;
	double box_w = render->width - 2 * MARGIN, box_h = render->height - 2 * MARGIN;
	double scale = MIN(IMAGE_MAX_UPSCALE, MIN(box_w / picture->width, box_h / picture->height));
	double w = picture->width * scale, h = picture->height * scale;
	int iw = cairo_image_surface_get_width(picture->dark);
	int ih = cairo_image_surface_get_height(picture->dark);

	canvas_blank(canvas);
	cairo_save(cr);
	cairo_translate(cr, (render->width - w) / 2, MARGIN);
	cairo_scale(cr, w / iw, h / ih);
	cairo_set_source_surface(cr, picture->dark, 0, 0);
	cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
	cairo_rectangle(cr, 0, 0, iw, ih);
	cairo_fill(cr);
	cairo_restore(cr);
	dither_a8(canvas->surface);
}

static gboolean
picture_add(FaxRender *render, const Picture *picture, GError **error)
{
	g_auto(Canvas) canvas = {0};
	guint8 *bits;

	if (!canvas_init(&canvas, render, CAIRO_FORMAT_A8, render->rows, error))
		return FALSE;
	picture_draw(&canvas, render, picture);
	bits = g_malloc(page_bytes(render));
	a8_to_bits(canvas.surface, 128, render->rows, bits);
	page_append(render, bits);
	return TRUE;
}

static guint
be16(const guint8 *p)
{
	return (guint)p[0] << 8 | p[1];
}

static guint
be32(const guint8 *p)
{
	return (guint)p[0] << 24 | (guint)p[1] << 16 | (guint)p[2] << 8 | p[3];
}

/* The size in a JPEG's frame header, read before anything is decoded. */
static gboolean
jpeg_size(const guint8 *data, gsize len, guint *width, guint *height)
{
	gsize i = 2;

	if (len < 4 || data[0] != 0xff || data[1] != 0xd8)
		return FALSE;
	while (i + 4 <= len && data[i] == 0xff) {
		guint marker = data[i + 1];

		if (marker == 0xff || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
			i += marker == 0xff ? 1 : 2; /* fill byte, or a marker without a segment */
			continue;
		}
		if (marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 &&
		    marker != 0xcc) {
			if (i + 9 > len)
				return FALSE;
			*height = be16(data + i + 5);
			*width = be16(data + i + 7);
			return TRUE;
		}
		if (marker == 0xda || marker == 0xd9 || be16(data + i + 2) < 2)
			return FALSE;
		i += 2 + be16(data + i + 2);
	}
	return FALSE;
}

static gboolean
png_size(const guint8 *data, gsize len, guint *width, guint *height)
{
	static const guint8 signature[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

	if (len < 24 || memcmp(data, signature, sizeof(signature)) != 0 ||
	    memcmp(data + 12, "IHDR", 4) != 0)
		return FALSE;
	*width = be32(data + 16);
	*height = be32(data + 20);
	return TRUE;
}

/* gdk-pixbuf's RGB or RGBA rows to darkness, composed over white */
static void
pixbuf_to_dark(GdkPixbuf *pixbuf, cairo_surface_t *dark)
{
	int width = gdk_pixbuf_get_width(pixbuf), height = gdk_pixbuf_get_height(pixbuf);
	int channels = gdk_pixbuf_get_n_channels(pixbuf);
	int stride = gdk_pixbuf_get_rowstride(pixbuf);
	gboolean alpha = gdk_pixbuf_get_has_alpha(pixbuf);
	const guint8 *pixels = gdk_pixbuf_read_pixels(pixbuf);
	guint8 *out = cairo_image_surface_get_data(dark);
	int out_stride = cairo_image_surface_get_stride(dark);

	for (int y = 0; y < height; y++) {
		const guint8 *p = pixels + (gsize)y * stride;
		guint8 *o = out + (gsize)y * out_stride;

		for (int x = 0; x < width; x++, p += channels) {
			guint d = 255 - ((p[0] * 77 + p[1] * 150 + p[2] * 29) >> 8);

			o[x] = (guint8)(alpha ? d * p[3] / 255 : d);
		}
	}
	cairo_surface_mark_dirty(dark);
}

/* A JPEG much larger than a page decodes at 1/2, 1/4 or 1/8 of its size when asked. */
static void
loader_shrink(GdkPixbufLoader *loader, guint width, guint height)
{
	/* a page is at most this many pixels either way, whichever way the picture turns */
	double most = 2287.0;
	double scale = MAX(most / width, most / height);

	if (scale < 0.5)
		gdk_pixbuf_loader_set_size(loader, (int)ceil(width * scale),
		                           (int)ceil(height * scale));
}

static GdkPixbuf *
pixbuf_load(const char *type, const guint8 *data, gsize len, guint width, guint height,
            GError **error)
{
	g_autoptr(GdkPixbufLoader) loader = gdk_pixbuf_loader_new_with_mime_type(type, error);
	GdkPixbuf *pixbuf;

	if (loader == NULL)
		return NULL;
	if (strcmp(type, "image/jpeg") == 0)
		loader_shrink(loader, width, height);
	if (!gdk_pixbuf_loader_write(loader, data, len, error)) {
		gdk_pixbuf_loader_close(loader, NULL);
		return NULL;
	}
	if (!gdk_pixbuf_loader_close(loader, error))
		return NULL;
	pixbuf = gdk_pixbuf_loader_get_pixbuf(loader);
	if (pixbuf == NULL || gdk_pixbuf_get_bits_per_sample(pixbuf) != 8 ||
	    gdk_pixbuf_get_n_channels(pixbuf) < 3) {
		g_set_error_literal(error, GDK_PIXBUF_ERROR, GDK_PIXBUF_ERROR_CORRUPT_IMAGE,
		                    "no 8-bit RGB image");
		return NULL;
	}
	return g_object_ref(pixbuf);
}

static double
pixbuf_dpi(GdkPixbuf *pixbuf, const char *key)
{
	const char *value = gdk_pixbuf_get_option(pixbuf, key);

	return value != NULL ? g_ascii_strtod(value, NULL) : 0;
}

static gboolean
pixbuf_add(FaxRender *render, const char *type, const guint8 *data, gsize len, GError **error)
{
	gboolean png = strcmp(type, "image/png") == 0;
	const char *what = png ? "PNG" : "JPEG";
	guint width = 0, height = 0;
	g_autoptr(GError) local = NULL;
	g_autoptr(GdkPixbuf) loaded = NULL, pixbuf = NULL;
	g_auto(Picture) picture = {0};
	const char *orientation;
	double xdpi, ydpi;

	if (!(png ? png_size(data, len, &width, &height) : jpeg_size(data, len, &width, &height))) {
		g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_DAMAGED, "not a %s image",
		            what);
		return FALSE;
	}
	if (!image_size_check(what, width, height, error) || !check_room(render, 1, error))
		return FALSE;
	loaded = pixbuf_load(type, data, len, width, height, &local);
	if (loaded == NULL) {
		g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_DAMAGED, "%s: %s", what,
		            local->message);
		return FALSE;
	}
	xdpi = pixbuf_dpi(loaded, "x-dpi");
	ydpi = pixbuf_dpi(loaded, "y-dpi");
	if (ydpi <= 0)
		ydpi = xdpi;
	/* Exif orientations 5 to 8 turn the picture a quarter */
	orientation = gdk_pixbuf_get_option(loaded, "orientation");
	if (orientation != NULL && orientation[0] >= '5' && orientation[0] <= '8') {
		guint t = width;
		double d = xdpi;

		width = height;
		height = t;
		xdpi = ydpi;
		ydpi = d;
	}
	pixbuf = gdk_pixbuf_apply_embedded_orientation(loaded);
	if (!picture_alloc(&picture, (guint)gdk_pixbuf_get_width(pixbuf),
	                   (guint)gdk_pixbuf_get_height(pixbuf), error))
		return FALSE;
	pixbuf_to_dark(pixbuf, picture.dark);
	picture_set_size(&picture, width, height, xdpi, ydpi);
	return picture_add(render, &picture, error);
}

/* ---- TIFF in ---- */

/* libtiff reading from memory; its first error kept for the GError */
typedef struct {
	const guint8 *data;
	gsize len;
	gsize pos;
	char *error;
} TiffSource;

static int
tiff_error_cb(TIFF *tif, void *user_data, const char *module, const char *fmt, va_list ap)
{
	char **message = user_data;

	if (*message == NULL)
		*message = g_strdup_vprintf(fmt, ap);
	return 1;
}

static int
tiff_warning_cb(TIFF *tif, void *user_data, const char *module, const char *fmt, va_list ap)
{
	return 1;
}

static TIFFOpenOptions *
tiff_options_new(char **message)
{
	TIFFOpenOptions *options = TIFFOpenOptionsAlloc();

	TIFFOpenOptionsSetMaxSingleMemAlloc(options, TIFF_MAX_ALLOC);
	TIFFOpenOptionsSetErrorHandlerExtR(options, tiff_error_cb, message);
	TIFFOpenOptionsSetWarningHandlerExtR(options, tiff_warning_cb, NULL);
	return options;
}

static tmsize_t
source_read(thandle_t handle, void *buf, tmsize_t size)
{
	TiffSource *source = handle;
	gsize n = MIN((gsize)size, source->len - source->pos);

	memcpy(buf, source->data + source->pos, n);
	source->pos += n;
	return (tmsize_t)n;
}

static tmsize_t
source_write(thandle_t handle, void *buf, tmsize_t size)
{
	return -1;
}

static toff_t
source_seek(thandle_t handle, toff_t offset, int whence)
{
	TiffSource *source = handle;
	toff_t base = whence == SEEK_CUR ? source->pos : whence == SEEK_END ? source->len : 0;

	if (offset > G_MAXSIZE - base || base + offset > source->len)
		return (toff_t)-1;
	source->pos = base + offset;
	return source->pos;
}

static int
tiff_close_nothing(thandle_t handle)
{
	return 0;
}

static toff_t
source_size(thandle_t handle)
{
	return ((TiffSource *)handle)->len;
}

static int
source_map(thandle_t handle, void **base, toff_t *size)
{
	TiffSource *source = handle;

	*base = (void *)source->data;
	*size = source->len;
	return 1;
}

static void
tiff_unmap_nothing(thandle_t handle, void *base, toff_t size)
{
}

static gboolean
tiff_fail(TiffSource *source, const char *what, GError **error)
{
	g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_DAMAGED, "TIFF: %s",
	            source->error != NULL ? source->error : what);
	return FALSE;
}

/* the page's size on paper from its resolution (only a ratio without a unit) */
static void
tiff_picture_size(TIFF *tif, Picture *picture, guint width, guint height)
{
	float xres = 0, yres = 0;
	guint16 unit = RESUNIT_INCH;
	double xdpi, ydpi;

	TIFFGetField(tif, TIFFTAG_XRESOLUTION, &xres);
	TIFFGetField(tif, TIFFTAG_YRESOLUTION, &yres);
	TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &unit);
	xdpi = unit == RESUNIT_CENTIMETER ? xres * 2.54 : xres;
	ydpi = unit == RESUNIT_CENTIMETER ? yres * 2.54 : yres;
	if (unit == RESUNIT_NONE || !(xdpi > 0 && ydpi > 0)) {
		ydpi = xres > 0 && yres > 0 ? IMAGE_DEFAULT_DPI * yres / xres : 0;
		xdpi = IMAGE_DEFAULT_DPI;
	}
	picture_set_size(picture, width, height, xdpi, ydpi > 0 ? ydpi : xdpi);
}

/* RGBA rows (libtiff's ABGR words) to darkness; flipped as the TIFF's orientation says */
static void
tiff_rows_to_dark(const guint32 *raster, guint width, guint rows, guint first, guint height,
                  guint16 orientation, cairo_surface_t *dark)
{
	guint8 *out = cairo_image_surface_get_data(dark);
	int stride = cairo_image_surface_get_stride(dark);
	gboolean flip_x =
	        orientation == ORIENTATION_TOPRIGHT || orientation == ORIENTATION_BOTRIGHT;
	gboolean flip_y = orientation == ORIENTATION_BOTRIGHT || orientation == ORIENTATION_BOTLEFT;

	for (guint r = 0; r < rows; r++) {
		const guint32 *p = raster + (gsize)r * width;
		guint y = flip_y ? height - 1 - (first + r) : first + r;
		guint8 *o = out + (gsize)y * stride;

		for (guint x = 0; x < width; x++) {
			guint32 v = p[x];
			guint d = 255 -
			          ((TIFFGetR(v) * 77 + TIFFGetG(v) * 150 + TIFFGetB(v) * 29) >> 8);

			o[flip_x ? width - 1 - x : x] = (guint8)(d * TIFFGetA(v) / 255);
		}
	}
}

/* One TIFF directory into a picture, a band of rows at a time. */
static gboolean
tiff_read_picture(TIFF *tif, TiffSource *source, Picture *picture, GError **error)
{
	char message[1024] = "cannot read this kind of TIFF";
	TIFFRGBAImage image;
	g_autofree guint32 *band = NULL;
	gboolean ok = TRUE;

	if (!TIFFRGBAImageOK(tif, message) || !TIFFRGBAImageBegin(&image, tif, 0, message))
		return tiff_fail(source, message, error);
	if (!image_size_check("TIFF", image.width, image.height, error) ||
	    !picture_alloc(picture, image.width, image.height, error)) {
		TIFFRGBAImageEnd(&image);
		return FALSE;
	}
	/* rows as stored; the flips happen while converting */
	image.req_orientation = image.orientation;
	band = g_new(guint32, (gsize)image.width * TIFF_BAND_ROWS);
	for (guint y = 0; ok && y < image.height; y += TIFF_BAND_ROWS) {
		guint rows = MIN(TIFF_BAND_ROWS, image.height - y);

		image.row_offset = (int)y;
		image.col_offset = 0;
		ok = TIFFRGBAImageGet(&image, band, image.width, rows) != 0;
		if (ok)
			tiff_rows_to_dark(band, image.width, rows, y, image.height,
			                  image.orientation, picture->dark);
	}
	cairo_surface_mark_dirty(picture->dark);
	tiff_picture_size(tif, picture, image.width, image.height);
	TIFFRGBAImageEnd(&image);
	return ok ? TRUE : tiff_fail(source, "cannot decode the image", error);
}

static gboolean
tiff_pages_add(FaxRender *render, TIFF *tif, TiffSource *source, GError **error)
{
	guint n = TIFFNumberOfDirectories(tif);

	if (n == 0)
		return tiff_fail(source, "no image", error);
	if (!check_room(render, n, error))
		return FALSE;
	for (guint i = 0; i < n; i++) {
		g_auto(Picture) picture = {0};

		if (!TIFFSetDirectory(tif, (tdir_t)i))
			return tiff_fail(source, "cannot read a directory", error);
		if (!tiff_read_picture(tif, source, &picture, error) ||
		    !picture_add(render, &picture, error))
			return FALSE;
	}
	return TRUE;
}

static gboolean
tiff_add(FaxRender *render, const char *type, const guint8 *data, gsize len, GError **error)
{
	TiffSource source = {.data = data, .len = len};
	TIFFOpenOptions *options = tiff_options_new(&source.error);
	TIFF *tif = TIFFClientOpenExt("image", "r", &source, source_read, source_write, source_seek,
	                              tiff_close_nothing, source_size, source_map,
	                              tiff_unmap_nothing, options);
	gboolean ok;

	TIFFOpenOptionsFree(options);
	ok = tif != NULL ? tiff_pages_add(render, tif, &source, error)
	                 : tiff_fail(&source, "not a TIFF file", error);
	if (tif != NULL)
		TIFFClose(tif);
	g_free(source.error);
	return ok;
}

/* ---- documents ---- */

typedef gboolean (*AddFunc)(FaxRender *render, const char *type, const guint8 *data, gsize len,
                            GError **error);

static const struct {
	const char *type;
	AddFunc add;
} handlers[] = {
        {"text/plain", text_add},   {"application/pdf", pdf_add}, {"image/png", pixbuf_add},
        {"image/jpeg", pixbuf_add}, {"image/tiff", tiff_add},
};

static AddFunc
handler_find(const char *content_type)
{
	for (gsize i = 0; content_type != NULL && i < G_N_ELEMENTS(handlers); i++)
		if (strcmp(handlers[i].type, content_type) == 0)
			return handlers[i].add;
	return NULL;
}

gboolean
fax_render_supports(const char *content_type)
{
	return handler_find(content_type) != NULL;
}

gboolean
fax_render_add_document(FaxRender *render, const char *content_type, const guint8 *data, gsize len,
                        GError **error)
{
	AddFunc add = handler_find(content_type);
	guint pages = render->pages->len, unknown = render->unknown_glyphs;

	if (add == NULL) {
		g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_UNSUPPORTED, "cannot fax %s",
		            content_type != NULL ? content_type : "(no type)");
		return FALSE;
	}
	if (add(render, content_type, data, len, error))
		return TRUE;
	/* all of the document or nothing */
	g_ptr_array_set_size(render->pages, (int)pages);
	render->unknown_glyphs = unknown;
	return FALSE;
}

/* ---- header line and cover page ---- */

static char *
date_format(const FaxRender *render)
{
	g_autoptr(GDateTime) now =
	        render->date != NULL ? g_date_time_ref(render->date) : g_date_time_new_now_local();

	return g_date_time_format(now, "%Y-%m-%d %H:%M");
}

/* The header band, drawn for one page at a time. */
typedef struct {
	Canvas canvas; /* A8, the band */
	PangoLayout *left;
	PangoLayout *right;
	guint rows;
	guint8 *bits;
} Header;

static void
header_clear(Header *header)
{
	g_clear_object(&header->left);
	g_clear_object(&header->right);
	g_clear_pointer(&header->bits, g_free);
	canvas_clear(&header->canvas);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Header, header_clear)

static gboolean
header_init(Header *header, const FaxRender *render, const char *date, GError **error)
{
	double width = render->width - 2 * MARGIN;
	g_autofree char *left = g_strdup_printf("%s   From: %s", date, render->header_from);

	header->rows = (guint)ceil(HEADER_BAND * render->ydpi / PT_PER_INCH);
	if (!canvas_init(&header->canvas, render, CAIRO_FORMAT_A8, header->rows, error))
		return FALSE;
	header->bits = g_malloc((gsize)ROW_BYTES * header->rows);
	header->left = layout_new(render, HEADER_FONT_SIZE, PANGO_WEIGHT_NORMAL);
	header->right = layout_new(render, HEADER_FONT_SIZE, PANGO_WEIGHT_NORMAL);
	/* the sender gives way to the page number */
	pango_layout_set_width(header->left, (int)(width * 0.8 * PANGO_SCALE));
	pango_layout_set_ellipsize(header->left, PANGO_ELLIPSIZE_END);
	pango_layout_set_text(header->left, left, -1);
	pango_layout_set_width(header->right, (int)(width * PANGO_SCALE));
	pango_layout_set_alignment(header->right, PANGO_ALIGN_RIGHT);
	return TRUE;
}

static void
header_draw(Header *header, guint page, guint n_pages)
{
	cairo_t *cr = header->canvas.cr;
	g_autofree char *right = g_strdup_printf("page %u/%u", page, n_pages);
	int baseline = pango_layout_get_baseline(header->left);

	canvas_blank(&header->canvas);
	pango_layout_set_text(header->right, right, -1);
	cairo_move_to(cr, MARGIN, HEADER_BASELINE - (double)baseline / PANGO_SCALE);
	pango_cairo_show_layout(cr, header->left);
	cairo_move_to(cr, MARGIN,
	              HEADER_BASELINE -
	                      (double)pango_layout_get_baseline(header->right) / PANGO_SCALE);
	pango_cairo_show_layout(cr, header->right);
	a8_to_bits(header->canvas.surface, TEXT_THRESHOLD, header->rows, header->bits);
}

/* draws text at y in a layout, returns the y under it */
static double
cover_text(Canvas *canvas, PangoLayout *layout, double x, double y, const char *text)
{
	int height = 0;

	pango_layout_set_text(layout, text, -1);
	pango_layout_get_size(layout, NULL, &height);
	cairo_move_to(canvas->cr, x, y);
	pango_cairo_show_layout(canvas->cr, layout);
	return y + (double)height / PANGO_SCALE;
}

static void
cover_draw(Canvas *canvas, const FaxRender *render, const char *date, guint n_pages)
{
	const double label_w = MM_TO_PT(30.0), width = render->width - 2 * MARGIN;
	g_autoptr(PangoLayout) title = layout_new(render, 36, PANGO_WEIGHT_BOLD);
	g_autoptr(PangoLayout) label = layout_new(render, 14, PANGO_WEIGHT_BOLD);
	g_autoptr(PangoLayout) value = layout_new(render, 14, PANGO_WEIGHT_NORMAL);
	g_autofree char *pages = g_strdup_printf("%u (with this page)", n_pages);
	const char *fields[][2] = {
	        {"To:", render->cover_to}, {"From:", render->header_from},
	        {"Date:", date},           {"Subject:", render->cover_subject},
	        {"Pages:", pages},
	};
	double y = cover_text(canvas, title, MARGIN, MM_TO_PT(25.0), "FAX");

	cairo_rectangle(canvas->cr, MARGIN, y + MM_TO_PT(2.0), width, MM_TO_PT(0.8));
	cairo_fill(canvas->cr);
	y += MM_TO_PT(10.0);
	pango_layout_set_width(value, (int)((width - label_w) * PANGO_SCALE));
	for (gsize i = 0; i < G_N_ELEMENTS(fields); i++) {
		if (fields[i][1] == NULL)
			continue;
		cover_text(canvas, label, MARGIN, y, fields[i][0]);
		y = cover_text(canvas, value, MARGIN + label_w, y, fields[i][1]) + MM_TO_PT(4.0);
	}
}

static guint8 *
cover_render(const FaxRender *render, const char *date, guint n_pages, GError **error)
{
	g_auto(Canvas) canvas = {0};
	guint8 *bits;

	if (!canvas_init(&canvas, render, CAIRO_FORMAT_A8, render->rows, error))
		return NULL;
	canvas_blank(&canvas);
	cover_draw(&canvas, render, date, n_pages);
	bits = g_malloc(page_bytes(render));
	a8_to_bits(canvas.surface, TEXT_THRESHOLD, render->rows, bits);
	return bits;
}

/* ---- TIFF Class F out ---- */

static void
tiff_set_fields(TIFF *tif, const FaxRender *render, guint index, guint n_pages)
{
	TIFFSetField(tif, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
	TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (guint32)FAX_PAGE_WIDTH);
	TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (guint32)render->rows);
	TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 1);
	TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
	TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE);
	TIFFSetField(tif, TIFFTAG_FILLORDER, FILLORDER_LSB2MSB);
	TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
	TIFFSetField(tif, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
	TIFFSetField(tif, TIFFTAG_XRESOLUTION, FAX_XDPI);
	TIFFSetField(tif, TIFFTAG_YRESOLUTION, render->ydpi);
	TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
	TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, (guint32)render->rows);
	/* TIFF 6.0: the first page is page 0 */
	TIFFSetField(tif, TIFFTAG_PAGENUMBER, (guint16)index, (guint16)n_pages);
	TIFFSetField(tif, TIFFTAG_SOFTWARE, "hanko");
	if (render->coding == FAX_CODING_MMR) {
		TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_CCITTFAX4);
		TIFFSetField(tif, TIFFTAG_GROUP4OPTIONS, 0);
	} else {
		TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_CCITTFAX3);
		TIFFSetField(tif, TIFFTAG_GROUP3OPTIONS,
		             render->coding == FAX_CODING_MR ? GROUP3OPT_2DENCODING : 0);
		TIFFSetField(tif, TIFFTAG_FAXMODE, FAXMODE_CLASSF);
	}
	TIFFSetField(tif, TIFFTAG_CLEANFAXDATA, CLEANFAXDATA_CLEAN);
}

/* A TIFF in memory: libtiff's coder run on one page, for the strip it makes. */
typedef struct {
	GByteArray *data;
	gsize pos;
} TiffSink;

static tmsize_t
sink_read(thandle_t handle, void *buf, tmsize_t size)
{
	TiffSink *sink = handle;
	gsize n = sink->pos < sink->data->len ? MIN((gsize)size, sink->data->len - sink->pos) : 0;

	memcpy(buf, sink->data->data + sink->pos, n);
	sink->pos += n;
	return (tmsize_t)n;
}

static tmsize_t
sink_write(thandle_t handle, void *buf, tmsize_t size)
{
	TiffSink *sink = handle;

	if (sink->pos + (gsize)size > sink->data->len)
		g_byte_array_set_size(sink->data, (guint)(sink->pos + (gsize)size));
	memcpy(sink->data->data + sink->pos, buf, (gsize)size);
	sink->pos += (gsize)size;
	return size;
}

static toff_t
sink_seek(thandle_t handle, toff_t offset, int whence)
{
	TiffSink *sink = handle;
	toff_t base = whence == SEEK_CUR ? sink->pos : whence == SEEK_END ? sink->data->len : 0;

	if (offset > G_MAXUINT32 - base)
		return (toff_t)-1;
	sink->pos = base + offset;
	return sink->pos;
}

static toff_t
sink_size(thandle_t handle)
{
	return ((TiffSink *)handle)->data->len;
}

static int
sink_map(thandle_t handle, void **base, toff_t *size)
{
	return 0;
}

/* One page coded MH, MR or MMR: the strip as TIFFWriteRawStrip() takes it. */
static GBytes *
page_encode(const FaxRender *render, guint8 *page, guint index, guint n_pages, char **message)
{
	TiffSink sink = {.data = g_byte_array_new()};
	TIFFOpenOptions *options = tiff_options_new(message);
	TIFF *tif = TIFFClientOpenExt("page", "w", &sink, sink_read, sink_write, sink_seek,
	                              tiff_close_nothing, sink_size, sink_map, tiff_unmap_nothing,
	                              options);
	guint64 *offsets = NULL, *counts = NULL;
	GBytes *strip = NULL;

	TIFFOpenOptionsFree(options);
	if (tif != NULL) {
		tiff_set_fields(tif, render, index, n_pages);
		if (TIFFWriteEncodedStrip(tif, 0, page, (tmsize_t)page_bytes(render)) >= 0 &&
		    TIFFGetField(tif, TIFFTAG_STRIPOFFSETS, &offsets) &&
		    TIFFGetField(tif, TIFFTAG_STRIPBYTECOUNTS, &counts) &&
		    offsets[0] + counts[0] <= sink.data->len)
			strip = g_bytes_new(sink.data->data + offsets[0], counts[0]);
		TIFFClose(tif);
	}
	g_byte_array_unref(sink.data);
	return strip;
}

/* What goes into the file: the pages, coded by several threads, written by one. */
typedef struct {
	const FaxRender *render;
	guint n_pages;
	guint8 *cover;    /* NULL: none */
	guint8 **headers; /* each page's header band, NULL: no header line */
	guint header_rows;
	GBytes **strips; /* each page coded */
	gint next;       /* atomic: the next page to code */
	char *error;     /* atomic: the first coder's failure */
} TiffOut;

/* page i as sent: the cover or a document's page, the header line drawn over it */
static void
page_compose(const TiffOut *out, guint i, guint8 *page)
{
	guint first = out->cover != NULL ? 1 : 0;
	const guint8 *src = i < first ? out->cover : out->render->pages->pdata[i - first];

	memcpy(page, src, page_bytes(out->render));
	for (gsize b = 0; out->headers != NULL && b < (gsize)ROW_BYTES * out->header_rows; b++)
		page[b] |= out->headers[i][b];
}

static gpointer
coder_run(gpointer data)
{
	TiffOut *out = data;
	g_autofree guint8 *page = g_malloc(page_bytes(out->render));
	guint i;

	while ((i = (guint)g_atomic_int_add(&out->next, 1)) < out->n_pages) {
		char *message = NULL;

		page_compose(out, i, page);
		out->strips[i] = page_encode(out->render, page, i, out->n_pages, &message);
		if (out->strips[i] != NULL) {
			g_free(message);
			continue;
		}
		if (message == NULL)
			message = g_strdup("no data");
		if (!g_atomic_pointer_compare_and_exchange(&out->error, NULL, message))
			g_free(message);
	}
	return NULL;
}

/* Codes every page: MH, MR and MMR coding is most of the time it takes to write a fax,
 * and pages are coded independently. */
static gboolean
tiff_encode(TiffOut *out, GError **error)
{
	guint n_threads = MIN(MIN(g_get_num_processors(), CODER_THREADS), out->n_pages);
	g_autoptr(GPtrArray) threads = g_ptr_array_new();

	out->strips = g_new0(GBytes *, out->n_pages);
	for (guint t = 1; t < n_threads; t++) {
		GThread *thread = g_thread_try_new("fax-coder", coder_run, out, NULL);

		if (thread != NULL)
			g_ptr_array_add(threads, thread);
	}
	coder_run(out);
	for (guint t = 0; t < threads->len; t++)
		g_thread_join(threads->pdata[t]);
	if (out->error == NULL)
		return TRUE;
	g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_IO, "cannot code a page: %s",
	            out->error);
	return FALSE;
}

static gboolean
tiff_write_pages(TIFF *tif, TiffOut *out)
{
	for (guint i = 0; i < out->n_pages; i++) {
		gsize len = 0;
		const void *data = g_bytes_get_data(out->strips[i], &len);

		tiff_set_fields(tif, out->render, i, out->n_pages);
		if (TIFFWriteRawStrip(tif, 0, (void *)data, (tmsize_t)len) < 0 ||
		    !TIFFWriteDirectory(tif))
			return FALSE;
	}
	return TRUE;
}

static gboolean
tiff_write_fd(TiffOut *out, int fd, const char *name, GError **error)
{
	g_autofree char *message = NULL;
	TIFFOpenOptions *options = tiff_options_new(&message);
	int copy = dup(fd); /* TIFFClose closes it; fd stays open for fsync */
	TIFF *tif = copy >= 0 ? TIFFFdOpenExt(copy, name, "w", options) : NULL;
	gboolean ok = tif != NULL && tiff_write_pages(tif, out);

	TIFFOpenOptionsFree(options);
	if (tif != NULL) {
		ok = TIFFFlush(tif) && ok;
		TIFFClose(tif);
	} else if (copy >= 0) {
		close(copy);
	}
	if (!ok)
		g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_IO, "cannot write %s: %s",
		            name, message != NULL ? message : g_strerror(errno));
	return ok;
}

static gboolean
io_error(GError **error, const char *what, const char *path)
{
	int saved = errno;

	g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_IO, "cannot %s %s: %s", what, path,
	            g_strerror(saved));
	return FALSE;
}

static gboolean
dir_sync(const char *path, GError **error)
{
	g_autofree char *dir = g_path_get_dirname(path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	gboolean ok = fd >= 0 && fsync(fd) == 0;

	if (!ok)
		io_error(error, "sync", dir);
	if (fd >= 0)
		close(fd);
	return ok;
}

/* through a temporary file beside path: path has all of the fax or what it had before */
static gboolean
file_write(TiffOut *out, const char *path, GError **error)
{
	g_autofree char *dir = g_path_get_dirname(path);
	g_autofree char *base = g_path_get_basename(path);
	g_autofree char *tmp = g_strdup_printf("%s/.%s.XXXXXX", dir, base);
	int fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0600);
	gboolean ok;

	if (fd < 0)
		return io_error(error, "create a file in", dir);
	ok = tiff_write_fd(out, fd, tmp, error);
	if (ok && fsync(fd) != 0)
		ok = io_error(error, "sync", tmp);
	if (close(fd) != 0 && ok)
		ok = io_error(error, "close", tmp);
	if (ok && rename(tmp, path) != 0)
		ok = io_error(error, "rename to", path);
	if (!ok)
		unlink(tmp);
	return ok && dir_sync(path, error);
}

/* every page's header band, drawn here: pango is not for sharing between threads */
static gboolean
headers_draw(TiffOut *out, const char *date, GError **error)
{
	g_auto(Header) header = {0};
	gsize band;

	if (out->render->header_from == NULL)
		return TRUE;
	if (!header_init(&header, out->render, date, error))
		return FALSE;
	band = (gsize)ROW_BYTES * header.rows;
	out->header_rows = header.rows;
	out->headers = g_new0(guint8 *, out->n_pages);
	for (guint i = 0; i < out->n_pages; i++) {
		header_draw(&header, i + 1, out->n_pages);
		out->headers[i] = g_memdup2(header.bits, band);
	}
	return TRUE;
}

static void
tiff_out_clear(TiffOut *out)
{
	for (guint i = 0; i < out->n_pages; i++) {
		if (out->headers != NULL)
			g_free(out->headers[i]);
		if (out->strips != NULL && out->strips[i] != NULL)
			g_bytes_unref(out->strips[i]);
	}
	g_free(out->headers);
	g_free(out->strips);
	g_free(out->cover);
	g_free(out->error);
}

gboolean
fax_render_write_tiff(FaxRender *render, const char *path, GError **error)
{
	TiffOut out = {.render = render, .n_pages = fax_render_get_n_pages(render)};
	g_autofree char *date = date_format(render);
	gboolean ok;

	if (out.n_pages == 0) {
		g_set_error_literal(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_IO,
		                    "no pages to write");
		return FALSE;
	}
	if (out.n_pages > G_MAXUINT16) {
		g_set_error(error, FAX_RENDER_ERROR, FAX_RENDER_ERROR_IO,
		            "%u pages, a TIFF numbers at most %u", out.n_pages, G_MAXUINT16);
		return FALSE;
	}
	ok = (!render->cover ||
	      (out.cover = cover_render(render, date, out.n_pages, error)) != NULL) &&
	     headers_draw(&out, date, error) && tiff_encode(&out, error) &&
	     file_write(&out, path, error);
	tiff_out_clear(&out);
	return ok;
}
