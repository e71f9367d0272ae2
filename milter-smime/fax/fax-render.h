/*
 * fax-render: documents to fax pages. text/plain (UTF-8; any script, Japanese included,
 * through pango and fontconfig), application/pdf (poppler), image/png, image/jpeg
 * (gdk-pixbuf) and image/tiff (libtiff, every page) become A4 pages 1728 pixels wide at
 * fine (204x196 dpi) or normal (204x98 dpi) resolution, bilevel (text and PDF
 * thresholded, grey areas of a PDF halftoned, photos dithered), written as one multi-page
 * TIFF Class F file coded MH, MR or MMR.
 *
 * Each page gets a header line as fax machines print it (sender, date, "page n/m")
 * in the top margin; an optional cover page comes first.
 *
 * Not thread-safe per FaxRender; separate FaxRenders may run in separate threads.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define FAX_RENDER_ERROR (fax_render_error_quark())
GQuark fax_render_error_quark(void);

typedef enum {
	FAX_RENDER_ERROR_UNSUPPORTED, /* a content type the renderer does not take */
	FAX_RENDER_ERROR_DAMAGED,     /* the document cannot be read (broken PDF, image) */
	FAX_RENDER_ERROR_TOO_MANY,    /* more than max_pages pages */
	FAX_RENDER_ERROR_IO,          /* the TIFF cannot be written */
} FaxRenderError;

typedef enum {
	FAX_RES_FINE,   /* 204x196 dpi, 2287 lines per A4 page */
	FAX_RES_NORMAL, /* 204x98 dpi, 1143 lines */
} FaxResolution;

typedef enum {
	FAX_CODING_MH,  /* T.4 one-dimensional (TIFF Compression 3, T4Options 0) */
	FAX_CODING_MR,  /* T.4 two-dimensional (T4Options 1) */
	FAX_CODING_MMR, /* T.6 (Compression 4) */
} FaxCoding;

#define FAX_PAGE_WIDTH 1728

typedef struct {
	FaxResolution resolution;
	FaxCoding coding;
	const char *font;        /* pango font description of text: "IPAGothic 10" ... */
	const char *header_from; /* the header line's sender; NULL: no header line */
	GDateTime *date;         /* the header line's date; NULL: now */
	gboolean cover;          /* add a cover page */
	const char *cover_to;    /* cover page: destinations, free text */
	const char *cover_subject;
	guint max_pages; /* 0: no limit */
} FaxRenderOptions;

typedef struct _FaxRender FaxRender;

/* The options are copied. */
FaxRender *fax_render_new(const FaxRenderOptions *options);
void fax_render_free(FaxRender *render);

/* TRUE if content_type (lower case, no parameters) is one add_document takes. */
gboolean fax_render_supports(const char *content_type);

/*
 * Adds the pages of one document. text/plain must be UTF-8 (the caller converts the
 * charset); other types are the decoded bytes of the part. FAX_RENDER_ERROR_UNSUPPORTED
 * for any other type, FAX_RENDER_ERROR_DAMAGED naming what is wrong.
 */
gboolean fax_render_add_document(FaxRender *render, const char *content_type, const guint8 *data,
                                 gsize len, GError **error);

/* The pages the TIFF would have now, the cover page included. */
guint fax_render_get_n_pages(FaxRender *render);

/* Writes every page (cover first), header lines drawn, to path (mode 0600), fsynced. */
gboolean fax_render_write_tiff(FaxRender *render, const char *path, GError **error);

/* Whether pango found a glyph for every character of the text added so far. */
guint fax_render_get_unknown_glyphs(FaxRender *render);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(FaxRender, fax_render_free)

G_END_DECLS
