/*
 * milter-mime: reads the MIME structure hanko-milter's S/MIME code needs (header fields,
 * Content-Type, multipart parts as byte ranges, base64 bodies); pure, no I/O.
 *
 * Talks to: nothing (the milter, the unit tests and the fuzz target hand it bytes).
 * Must never: read outside the buffer it was given, copy or change a byte of a body it
 * returns as a span, recurse, or cost more than linear time in the size of its input.
 */
#include "milter-mime.h"

#include <string.h>

/* RFC 2046 5.1.1: a boundary is 1 to 70 characters. */
#define BOUNDARY_MAX 70

/* written out: clang-format would put spaces into G_DEFINE_QUARK's stringified name */
GQuark
milter_mime_error_quark(void)
{
	return g_quark_from_static_string("milter-mime-error-quark");
}

static gboolean
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* data + len, without the undefined NULL + 0 of an empty buffer given as (NULL, 0) */
static const char *
buffer_end(const char *data, gsize len)
{
	return len > 0 ? data + len : data;
}

/* ---- header fields ---- */

static void
header_free(gpointer data)
{
	MilterMimeHeader *field = data;

	g_free(field->name);
	g_free(field->value);
	g_free(field);
}

static MilterMimeHeader *
header_new(const char *name, gsize name_len, const char *value, gsize value_len)
{
	MilterMimeHeader *field = g_new0(MilterMimeHeader, 1);

	while (value_len > 0 && is_blank(*value)) {
		value++;
		value_len--;
	}
	while (value_len > 0 && is_blank(value[value_len - 1]))
		value_len--;
	field->name = g_strndup(name, name_len);
	field->value = g_strndup(value, value_len);
	return field;
}

static MilterMimeEntity *
entity_alloc(const char *data, gsize len)
{
	MilterMimeEntity *entity = g_new0(MilterMimeEntity, 1);

	entity->headers = g_ptr_array_new_with_free_func(header_free);
	entity->raw = (MilterMimeSpan){data, len};
	entity->body = (MilterMimeSpan){buffer_end(data, len), 0};
	return entity;
}

void
milter_mime_entity_free(MilterMimeEntity *entity)
{
	if (entity == NULL)
		return;
	g_ptr_array_unref(entity->headers);
	g_free(entity);
}

/* The field being read: its name and its value so far, continuation lines appended. */
typedef struct {
	const char *name;
	gsize name_len;
	GString *value;
} PendingField;

static void
pending_flush(PendingField *field, MilterMimeEntity *entity)
{
	if (field->name == NULL)
		return;
	g_ptr_array_add(entity->headers, header_new(field->name, field->name_len, field->value->str,
	                                            field->value->len));
	field->name = NULL;
}

/* Checks a line that is not a continuation and returns the length of its field name. */
static gboolean
field_name_check(const char *line, gsize len, guint lineno, gsize *name_len, GError **error)
{
	const char *colon = memchr(line, ':', len);

	if (len >= 5 && memcmp(line, "From ", 5) == 0) {
		g_set_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_HEADER,
		            "header line %u is an mbox \"From \" line, not a field", lineno);
		return FALSE;
	}
	if (colon == NULL) {
		g_set_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_HEADER,
		            "header line %u is not a field (no colon)", lineno);
		return FALSE;
	}
	if (colon == line) {
		g_set_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_HEADER,
		            "header line %u has an empty field name", lineno);
		return FALSE;
	}
	for (const char *c = line; c < colon; c++) {
		guchar b = (guchar)*c;

		/* RFC 5322 ftext: printable US-ASCII but ':' (the colon ends the name) */
		if (b < 33 || b > 126) {
			g_set_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_HEADER,
			            "header line %u is not a field (byte 0x%02X in its name)",
			            lineno, b);
			return FALSE;
		}
	}
	*name_len = (gsize)(colon - line);
	return TRUE;
}

/* One header line (without its line end): a new field or a continuation of the last. */
static gboolean
header_line(MilterMimeEntity *entity, PendingField *field, const char *line, gsize len,
            guint lineno, GError **error)
{
	gsize name_len = 0;

	/* values are C strings: a NUL would cut one short without anyone noticing */
	if (memchr(line, '\0', len) != NULL) {
		g_set_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_HEADER,
		            "header line %u contains a NUL byte", lineno);
		return FALSE;
	}
	if (is_blank(line[0])) {
		if (field->name == NULL) {
			g_set_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_HEADER,
			            "header line %u is a continuation with no field before it",
			            lineno);
			return FALSE;
		}
		/* unfolding drops the line break and keeps the blank that starts the line */
		g_string_append_len(field->value, line, (gssize)len);
		return TRUE;
	}
	if (!field_name_check(line, len, lineno, &name_len, error))
		return FALSE;
	pending_flush(field, entity);
	if (entity->headers->len >= MILTER_MIME_MAX_HEADERS) {
		g_set_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_LIMIT,
		            "more than %u header fields", MILTER_MIME_MAX_HEADERS);
		return FALSE;
	}
	field->name = line;
	field->name_len = name_len;
	g_string_truncate(field->value, 0);
	g_string_append_len(field->value, line + name_len + 1, (gssize)(len - name_len - 1));
	return TRUE;
}

MilterMimeEntity *
milter_mime_entity_parse(const char *data, gsize len, GError **error)
{
	g_autoptr(MilterMimeEntity) entity = NULL;
	g_autoptr(GString) value = g_string_new(NULL);
	PendingField field = {NULL, 0, value};
	const char *p = data, *end = buffer_end(data, len);
	guint lineno = 0;

	g_return_val_if_fail(data != NULL || len == 0, NULL);
	entity = entity_alloc(data, len);
	while (p < end) {
		const char *nl = memchr(p, '\n', (gsize)(end - p));
		const char *next = nl != NULL ? nl + 1 : end;
		gsize n = (gsize)((nl != NULL ? nl : end) - p);

		if (n > 0 && p[n - 1] == '\r')
			n--;
		lineno++;
		if (n == 0) {
			entity->body = (MilterMimeSpan){next, (gsize)(end - next)};
			break;
		}
		if (!header_line(entity, &field, p, n, lineno, error))
			return NULL;
		p = next;
	}
	pending_flush(&field, entity);
	return g_steal_pointer(&entity);
}

MilterMimeEntity *
milter_mime_entity_new(const MilterMimeHeader *fields, guint n_fields, const char *body,
                       gsize body_len)
{
	MilterMimeEntity *entity;

	g_return_val_if_fail(fields != NULL || n_fields == 0, NULL);
	g_return_val_if_fail(body != NULL || body_len == 0, NULL);
	entity = entity_alloc(body, body_len);
	entity->body = entity->raw;
	for (guint i = 0; i < n_fields; i++) {
		MilterMimeHeader *copy = g_new0(MilterMimeHeader, 1);

		copy->name = g_strdup(fields[i].name != NULL ? fields[i].name : "");
		copy->value = g_strdup(fields[i].value != NULL ? fields[i].value : "");
		g_ptr_array_add(entity->headers, copy);
	}
	return entity;
}

const char *
milter_mime_entity_header(const MilterMimeEntity *entity, const char *name)
{
	g_return_val_if_fail(entity != NULL && name != NULL, NULL);
	for (guint i = 0; i < entity->headers->len; i++) {
		const MilterMimeHeader *field = g_ptr_array_index(entity->headers, i);

		if (g_ascii_strcasecmp(field->name, name) == 0)
			return field->value;
	}
	return NULL;
}

/* ---- Content-Type ---- */

/* Skips white space and RFC 822 comments, nested ones too, without recursing. */
static void
skip_cfws(const char **pp)
{
	const char *p = *pp;

	for (;;) {
		gsize depth = 0;

		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			break;
		for (; *p != '\0'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
		}
	}
	*pp = p;
}

static gboolean
is_token_char(char c, gboolean eight_bit)
{
	guchar b = (guchar)c;

	if (b >= 0x80)
		return eight_bit;
	return b > 32 && b < 127 && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* An RFC 2045 token, lower-cased or not; NULL if there is none at *pp. Raw 8-bit bytes
 * are let into parameter values because some mailers write file names so. */
static char *
take_token(const char **pp, gboolean eight_bit, gboolean lower)
{
	const char *start = *pp, *p = start;

	while (is_token_char(*p, eight_bit))
		p++;
	if (p == start)
		return NULL;
	*pp = p;
	return lower ? g_ascii_strdown(start, p - start) : g_strndup(start, (gsize)(p - start));
}

/* A quoted-string's content with its backslash escapes removed; NULL if unterminated. */
static char *
take_quoted(const char **pp)
{
	g_autoptr(GString) out = g_string_new(NULL);
	const char *p = *pp + 1;

	for (; *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		if (*p == '\0')
			return NULL;
		g_string_append_c(out, *p);
	}
	*pp = p + 1;
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* Reads "; attribute = value" pairs into params until the end or the first broken one. */
static void
parse_params(const char *p, GHashTable *params)
{
	for (;;) {
		g_autofree char *name = NULL;
		char *value;

		skip_cfws(&p);
		if (*p != ';')
			return;
		p++;
		skip_cfws(&p);
		if (*p == '\0' || *p == ';')
			continue; /* a stray or trailing ';' costs nothing */
		name = take_token(&p, FALSE, TRUE);
		if (name == NULL)
			return;
		skip_cfws(&p);
		if (*p != '=')
			return;
		p++;
		skip_cfws(&p);
		value = *p == '"' ? take_quoted(&p) : take_token(&p, TRUE, FALSE);
		if (value == NULL)
			return;
		if (g_hash_table_contains(params, name))
			g_free(value); /* the first one wins */
		else
			g_hash_table_insert(params, g_steal_pointer(&name), value);
	}
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Appends an RFC 2231 extended value: %XX escapes decoded, charset'language' prefix
 * dropped from the first section. FALSE for a %00 a C string cannot hold. */
static gboolean
append_extended(GString *out, const char *value, gboolean first)
{
	const char *p = value;

	if (first) {
		const char *q1 = strchr(p, '\'');
		const char *q2 = q1 != NULL ? strchr(q1 + 1, '\'') : NULL;

		if (q2 != NULL)
			p = q2 + 1;
	}
	for (; *p != '\0'; p++) {
		int hi = p[0] == '%' ? hex_value(p[1]) : -1;
		int lo = hi >= 0 ? hex_value(p[2]) : -1;

		if (lo < 0) {
			g_string_append_c(out, *p);
			continue;
		}
		if (hi == 0 && lo == 0)
			return FALSE;
		g_string_append_c(out, (char)(hi * 16 + lo));
		p += 2;
	}
	return TRUE;
}

/* The sections name*0, name*1 ... (each maybe extended, "name*1*") joined in order. */
static char *
join_sections(GHashTable *params, const char *base)
{
	g_autoptr(GString) out = g_string_new(NULL);
	guint n = g_hash_table_size(params);

	for (guint i = 0; i < n; i++) {
		g_autofree char *plain = g_strdup_printf("%s*%u", base, i);
		g_autofree char *extended = g_strconcat(plain, "*", NULL);
		const char *value = g_hash_table_lookup(params, plain);

		if (value != NULL) {
			g_string_append(out, value);
			continue;
		}
		value = g_hash_table_lookup(params, extended);
		if (value == NULL)
			break;
		if (!append_extended(out, value, i == 0))
			return NULL;
	}
	return out->len > 0 ? g_string_free(g_steal_pointer(&out), FALSE) : NULL;
}

/*
 * RFC 2231 parameters (name*=utf-8''x, name*0=..., name*1*=...) are also entered under
 * their plain name, unless the plain name was given: the first one written still wins.
 * The charset is not converted; the bytes are what the sender wrote.
 */
static void
join_rfc2231(GHashTable *params)
{
	/* a set: name*0 ... name*999 are one name to join once, not a thousand times */
	g_autoptr(GHashTable) bases = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTableIter iter;
	gpointer key;

	g_hash_table_iter_init(&iter, params);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		const char *star = strchr(key, '*');

		if (star != NULL && star != (const char *)key)
			g_hash_table_add(bases, g_strndup(key, (gsize)(star - (const char *)key)));
	}
	g_hash_table_iter_init(&iter, bases);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		const char *base = key;
		g_autofree char *single = g_strconcat(base, "*", NULL);
		const char *value = g_hash_table_lookup(params, single);
		char *joined = NULL;

		if (g_hash_table_contains(params, base))
			continue;
		if (value != NULL) {
			g_autoptr(GString) out = g_string_new(NULL);

			if (append_extended(out, value, TRUE))
				joined = g_string_free(g_steal_pointer(&out), FALSE);
		} else {
			joined = join_sections(params, base);
		}
		if (joined != NULL)
			g_hash_table_insert(params, g_strdup(base), joined);
	}
}

MilterMimeContentType *
milter_mime_content_type_parse(const char *value)
{
	MilterMimeContentType *ct = g_new0(MilterMimeContentType, 1);
	g_autofree char *type = NULL;
	g_autofree char *subtype = NULL;
	const char *p = value != NULL ? value : "";

	ct->params = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	skip_cfws(&p);
	type = take_token(&p, FALSE, TRUE);
	skip_cfws(&p);
	if (type != NULL && *p == '/') {
		p++;
		skip_cfws(&p);
		subtype = take_token(&p, FALSE, TRUE);
	}
	if (subtype == NULL) {
		/* RFC 2045 5.2: a missing or broken Content-Type is text/plain */
		ct->type = g_strdup("text");
		ct->subtype = g_strdup("plain");
		return ct;
	}
	ct->type = g_steal_pointer(&type);
	ct->subtype = g_steal_pointer(&subtype);
	parse_params(p, ct->params);
	join_rfc2231(ct->params);
	return ct;
}

void
milter_mime_content_type_free(MilterMimeContentType *ct)
{
	if (ct == NULL)
		return;
	g_free(ct->type);
	g_free(ct->subtype);
	g_hash_table_unref(ct->params);
	g_free(ct);
}

gboolean
milter_mime_content_type_is(const MilterMimeContentType *ct, const char *type, const char *subtype)
{
	g_return_val_if_fail(ct != NULL && type != NULL && subtype != NULL, FALSE);
	return g_ascii_strcasecmp(ct->type, type) == 0 &&
	       g_ascii_strcasecmp(ct->subtype, subtype) == 0;
}

const char *
milter_mime_content_type_param(const MilterMimeContentType *ct, const char *name)
{
	g_autofree char *lower = NULL;

	g_return_val_if_fail(ct != NULL && name != NULL, NULL);
	lower = g_ascii_strdown(name, -1);
	return g_hash_table_lookup(ct->params, lower);
}

/* ---- multipart ---- */

typedef enum {
	LINE_TEXT,
	LINE_DELIMITER,
	LINE_CLOSE,
} LineKind;

static gboolean
all_blank(const char *p, const char *end)
{
	for (; p < end; p++) {
		if (!is_blank(*p))
			return FALSE;
	}
	return TRUE;
}

/* What the line [p, end) (its line end included, if any) is for this boundary. */
static LineKind
line_kind(const char *p, const char *end, const char *boundary, gsize blen)
{
	const char *rest = p + 2 + blen;

	if (end > p && end[-1] == '\n')
		end--;
	if (end > p && end[-1] == '\r')
		end--;
	if ((gsize)(end - p) < 2 + blen || p[0] != '-' || p[1] != '-' ||
	    memcmp(p + 2, boundary, blen) != 0)
		return LINE_TEXT;
	if (end - rest >= 2 && rest[0] == '-' && rest[1] == '-' && all_blank(rest + 2, end))
		return LINE_CLOSE;
	/* "--abcdef" is text when the boundary is "abc" */
	return all_blank(rest, end) ? LINE_DELIMITER : LINE_TEXT;
}

/* The part from start to the delimiter line at delim, without the line end before it,
 * which belongs to the delimiter. */
static MilterMimeSpan
part_span(const char *start, const char *delim)
{
	const char *end = delim;

	if (end > start)
		end--; /* the '\n': delim starts a line */
	if (end > start && end[-1] == '\r')
		end--;
	return (MilterMimeSpan){start, (gsize)(end - start)};
}

GArray *
milter_mime_multipart_split(MilterMimeSpan body, const char *boundary, GError **error)
{
	g_autoptr(GArray) parts = g_array_new(FALSE, FALSE, sizeof(MilterMimeSpan));
	gsize blen = boundary != NULL ? strlen(boundary) : 0;
	const char *p = body.data, *end = buffer_end(body.data, body.len);
	const char *part = NULL; /* where the current part starts; NULL in the preamble */

	g_return_val_if_fail(body.data != NULL || body.len == 0, NULL);
	if (blen == 0 || blen > BOUNDARY_MAX) {
		g_set_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_MULTIPART,
		            "multipart boundary must be 1 to %d characters, not %" G_GSIZE_FORMAT,
		            BOUNDARY_MAX, blen);
		return NULL;
	}
	/* line by line, so each byte is looked at a bounded number of times */
	while (p < end) {
		const char *nl = memchr(p, '\n', (gsize)(end - p));
		const char *next = nl != NULL ? nl + 1 : end;
		LineKind kind = line_kind(p, next, boundary, blen);

		if (kind != LINE_TEXT && part != NULL) {
			MilterMimeSpan span = part_span(part, p);

			if (parts->len >= MILTER_MIME_MAX_PARTS) {
				g_set_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_LIMIT,
				            "multipart body has more than %u parts",
				            MILTER_MIME_MAX_PARTS);
				return NULL;
			}
			g_array_append_val(parts, span);
		}
		if (kind == LINE_CLOSE) {
			if (parts->len == 0) {
				g_set_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_MULTIPART,
				            "multipart body has no parts before --%s--", boundary);
				return NULL;
			}
			return g_steal_pointer(&parts);
		}
		if (kind == LINE_DELIMITER)
			part = next;
		p = next;
	}
	if (part == NULL)
		g_set_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_MULTIPART,
		            "multipart body has no delimiter line --%s", boundary);
	else
		g_set_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_MULTIPART,
		            "multipart body ends without its closing delimiter --%s--", boundary);
	return NULL;
}

/* ---- transfer encodings ---- */

static int
base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static GBytes *
base64_error(GError **error, const char *message)
{
	g_set_error_literal(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_ENCODING, message);
	return NULL;
}

/*
 * Strict base64: g_base64_decode() skips what it does not know, and a signature that
 * decodes from a damaged body should fail as damaged, not as a wrong signature.
 */
static GBytes *
base64_decode(MilterMimeSpan in, GError **error)
{
	g_autofree guchar *out = g_malloc(in.len / 4 * 3 + 3);
	gsize n_out = 0, n_chars = 0, n_pad = 0;
	guint32 quad = 0;

	for (gsize i = 0; i < in.len; i++) {
		char c = in.data[i];
		int v = c == '=' ? 0 : base64_value(c);
		g_autofree char *message = NULL;

		if (c == '\r' || c == '\n' || is_blank(c))
			continue;
		if (v < 0)
			message = g_strdup_printf(
			        "invalid base64 character 0x%02X at offset %" G_GSIZE_FORMAT,
			        (guchar)c, i);
		else if (c == '=' && n_chars % 4 < 2)
			/* padding only fills the last one or two places of the last quad */
			message = g_strdup_printf(
			        "base64 padding out of place at offset %" G_GSIZE_FORMAT, i);
		else if (c != '=' && n_pad > 0)
			message = g_strdup_printf(
			        "base64 data after padding at offset %" G_GSIZE_FORMAT, i);
		if (message != NULL)
			return base64_error(error, message);
		n_pad += c == '=';
		quad = quad << 6 | (guint32)v;
		if (++n_chars % 4 != 0)
			continue;
		out[n_out++] = (guchar)(quad >> 16);
		out[n_out++] = (guchar)(quad >> 8);
		out[n_out++] = (guchar)quad;
		n_out -= n_pad;
		quad = 0;
	}
	if (n_chars % 4 != 0) {
		g_autofree char *message = g_strdup_printf(
		        "base64 length %" G_GSIZE_FORMAT " is not a multiple of 4", n_chars);

		return base64_error(error, message);
	}
	return g_bytes_new_take(g_steal_pointer(&out), n_out);
}

GBytes *
milter_mime_entity_decode(const MilterMimeEntity *entity, GError **error)
{
	const char *cte;
	g_autofree char *name = NULL;
	g_autofree char *shown = NULL;

	g_return_val_if_fail(entity != NULL, NULL);
	cte = milter_mime_entity_header(entity, "Content-Transfer-Encoding");
	if (cte == NULL)
		return g_bytes_new(entity->body.data, entity->body.len);
	name = g_strstrip(g_strdup(cte));
	if (g_ascii_strcasecmp(name, "base64") == 0)
		return base64_decode(entity->body, error);
	if (g_ascii_strcasecmp(name, "7bit") == 0 || g_ascii_strcasecmp(name, "8bit") == 0 ||
	    g_ascii_strcasecmp(name, "binary") == 0)
		return g_bytes_new(entity->body.data, entity->body.len);
	/* the value is the sender's: keep it short and printable in a log line */
	shown = g_strescape(name, NULL);
	g_set_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_ENCODING,
	            "Content-Transfer-Encoding %.64s is not allowed here", shown);
	return NULL;
}

/* ---- addresses ---- */

/* Skips the quoted string at p; returns where it ends (its closing quote or the NUL). */
static const char *
skip_quoted(const char *p, const char *end)
{
	for (p++; p < end && *p != '"'; p++) {
		if (*p == '\\' && p + 1 < end)
			p++;
	}
	return p;
}

/* Skips the comment at p, nested ones too; returns where it ends. */
static const char *
skip_comment(const char *p, const char *end)
{
	gsize depth = 0;

	for (; p < end; p++) {
		if (*p == '\\' && p + 1 < end)
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			break;
	}
	return p;
}

static gboolean
is_word_separator(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ';' ||
	       c == ':' || c == '<' || c == '>' || c == '(';
}

/* The end of the word at p: quoted strings and [domain literals] are part of it. */
static const char *
word_end(const char *p, const char *end)
{
	while (p < end && !is_word_separator(*p)) {
		if (*p == '"')
			p = skip_quoted(p, end);
		else if (*p == '[')
			while (p < end && *p != ']')
				p++;
		if (p < end)
			p++;
	}
	return p;
}

/* word as local@domain with the domain lower-cased, or NULL if it is not one. */
static char *
word_address(const char *word, gsize len)
{
	const char *at = NULL, *end = word + len;
	g_autofree char *domain = NULL;

	/* a whole word in quotes, "a@b" or 'a@b', is the address in quotes */
	if (len >= 2 && ((word[0] == '"' && skip_quoted(word, end) == end - 1) ||
	                 (word[0] == '\'' && word[len - 1] == '\''))) {
		word++;
		end--;
	}
	/* the first '@' outside quotes: a local part has no other, a domain literal may */
	for (const char *p = word; p < end && at == NULL; p++) {
		if (*p == '"')
			p = skip_quoted(p, end);
		else if (*p == '@')
			at = p;
	}
	if (at == NULL || at == word || at + 1 >= end ||
	    memchr(at + 1, '"', (gsize)(end - at - 1)) ||
	    (at[1] != '[' && memchr(at + 1, '@', (gsize)(end - at - 1))))
		return NULL;
	domain = g_ascii_strdown(at + 1, end - at - 1);
	return g_strdup_printf("%.*s@%s", (int)(at - word), word, domain);
}

/* The first word with an address in [p, end); comments and separators are skipped. */
static char *
first_address(const char *p, const char *end)
{
	while (p < end) {
		const char *stop;
		char *address;

		if (*p == '(') {
			p = skip_comment(p, end);
			p += p < end;
			continue;
		}
		if (is_word_separator(*p)) {
			p++;
			continue;
		}
		stop = word_end(p, end);
		address = word_address(p, (gsize)(stop - p));
		if (address != NULL)
			return address;
		p = stop;
	}
	return NULL;
}

char *
milter_mime_address(const char *value)
{
	const char *end, *p;

	if (value == NULL)
		return NULL;
	end = value + strlen(value);
	/* the first mailbox ends at the first ',' outside quotes, comments and <...> */
	for (p = value; p < end && *p != ',' && *p != '<'; p++) {
		if (*p == '"')
			p = skip_quoted(p, end);
		else if (*p == '(')
			p = skip_comment(p, end);
		if (p >= end)
			break;
	}
	if (p < end && *p == '<') {
		const char *close = p + 1;

		while (close < end && *close != '>') {
			if (*close == '"')
				close = skip_quoted(close, end);
			if (close < end)
				close++;
		}
		/* "<>" is the null address: no falling back on the display name */
		return first_address(p + 1, close);
	}
	return first_address(value, p);
}
