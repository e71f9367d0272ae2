/*
 * milter-mime: the small MIME reader hanko-milter's S/MIME code needs: an entity's header
 * fields and body, Content-Type with its parameters, the parts of a multipart body as
 * byte ranges of the original, and the base64 of a transfer-encoded body.
 *
 * Spans point into the caller's buffer and are never copied or altered: a detached
 * signature is verified over exactly the bytes the sender signed, CRLF line ends included
 * (Postfix hands a milter the body with CRLF).
 *
 * Talks to: nothing (pure; the fuzz target and the unit tests call it directly).
 * Must never: read outside the buffer it was given, recurse without a bound, or accept a
 * multipart body whose closing delimiter is missing as if it were complete.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MILTER_MIME_ERROR (milter_mime_error_quark())
GQuark milter_mime_error_quark(void);

typedef enum {
	MILTER_MIME_ERROR_HEADER,    /* a header line that is not "name: value" */
	MILTER_MIME_ERROR_MULTIPART, /* no boundary, no parts, or no closing delimiter */
	MILTER_MIME_ERROR_ENCODING,  /* bad base64, or an encoding S/MIME parts cannot have */
	MILTER_MIME_ERROR_LIMIT,     /* more header fields or parts than allowed */
} MilterMimeError;

/* Limits that keep a hostile message from costing more than its size. */
#define MILTER_MIME_MAX_HEADERS 1000 /* header fields of one entity */
#define MILTER_MIME_MAX_PARTS   1000 /* parts of one multipart */

typedef struct {
	const char *data;
	gsize len;
} MilterMimeSpan;

typedef struct {
	char *name;  /* as written (compare with g_ascii_strcasecmp) */
	char *value; /* unfolded (CRLF + WSP becomes WSP), leading and trailing blanks removed */
} MilterMimeHeader;

typedef struct {
	GPtrArray *headers; /* of MilterMimeHeader, in order */
	MilterMimeSpan raw; /* the whole entity: header, blank line, body */
	MilterMimeSpan body;
} MilterMimeEntity;

/*
 * Splits data into header fields and body. The header ends at the first empty line
 * (CRLF or bare LF); an entity without one is all header and an empty body. A line that is
 * neither a field ("name:" with a name of printable ASCII but ':') nor a continuation
 * (starting with a space or tab) is an error naming the line.
 */
MilterMimeEntity *milter_mime_entity_parse(const char *data, gsize len, GError **error);
/* An entity whose fields come from elsewhere (the milter's header callbacks); takes
 * nothing: the fields are copied. raw is set to the body. */
MilterMimeEntity *milter_mime_entity_new(const MilterMimeHeader *fields, guint n_fields,
                                         const char *body, gsize body_len);
void milter_mime_entity_free(MilterMimeEntity *entity);
/* The value of the first field called name (any case), or NULL. */
const char *milter_mime_entity_header(const MilterMimeEntity *entity, const char *name);

typedef struct {
	char *type;         /* lower case: "multipart" */
	char *subtype;      /* lower case: "signed" */
	GHashTable *params; /* lower-case name -> value, quotes and backslash escapes removed */
} MilterMimeContentType;

/*
 * Parses a Content-Type value (RFC 2045: type "/" subtype *(";" attribute "=" value), with
 * quoted strings and comments). NULL or unparsable input gives text/plain, as RFC 2045
 * says a missing or broken Content-Type means; it never fails.
 */
MilterMimeContentType *milter_mime_content_type_parse(const char *value);
void milter_mime_content_type_free(MilterMimeContentType *ct);
/* TRUE if the type is type/subtype (any case). */
gboolean
milter_mime_content_type_is(const MilterMimeContentType *ct, const char *type, const char *subtype);
/* A parameter's value, or NULL. */
const char *milter_mime_content_type_param(const MilterMimeContentType *ct, const char *name);

/*
 * The parts of a multipart body delimited by boundary (RFC 2046 5.1.1): each span runs from
 * after the CRLF that ends a delimiter line to before the CRLF that precedes the next
 * delimiter (that CRLF belongs to the delimiter). Preamble and epilogue are left out.
 * Delimiter lines may carry trailing blanks; bare LF line ends are accepted. Errors: an
 * empty boundary or one over 70 characters, no part, no closing delimiter, more than
 * MILTER_MIME_MAX_PARTS parts. Returns an array of MilterMimeSpan.
 */
GArray *milter_mime_multipart_split(MilterMimeSpan body, const char *boundary, GError **error);

/*
 * The decoded content of an entity's body by its Content-Transfer-Encoding: base64
 * (whitespace and line breaks ignored, bad characters or length an error), or 7bit, 8bit
 * and binary (the bytes as they are). quoted-printable and anything else is an error: no
 * S/MIME agent writes CMS data so.
 */
GBytes *milter_mime_entity_decode(const MilterMimeEntity *entity, GError **error);

/*
 * The address in a From/Sender/Reply-To style value: the addr-spec inside the first
 * <...>, or else the first word with an '@', with comments and quotes around it dropped;
 * lower-cased domain, local part as written. NULL when there is none.
 */
char *milter_mime_address(const char *value);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MilterMimeEntity, milter_mime_entity_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MilterMimeContentType, milter_mime_content_type_free)

G_END_DECLS
