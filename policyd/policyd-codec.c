/*
 * policyd-codec: parses Postfix policy requests and formats replies; pure, no I/O.
 *
 * Talks to: nothing (policyd-policy.c feeds it bytes, tests and the fuzz target too).
 * Must never: read past the input, keep more than one line and one request per
 * connection, or put a line break into a reply.
 */
#include "policyd-codec.h"

#include <stddef.h>
#include <string.h>

G_DEFINE_QUARK(policyd - codec - error - quark, policyd_codec_error)

typedef struct {
	const char *name;
	gsize name_len;
	gsize offset;
} AttrField;

#define FIELD(name)                                                                                \
	{                                                                                          \
#name, sizeof(#name) - 1, offsetof(PolicydRequest, name)                           \
	}

static const AttrField attr_fields[] = {
        FIELD(request),        FIELD(protocol_state),    FIELD(protocol_name),
        FIELD(client_address), FIELD(client_name),       FIELD(helo_name),
        FIELD(queue_id),       FIELD(instance),          FIELD(sender),
        FIELD(recipient),      FIELD(sasl_username),     FIELD(encryption_protocol),
        FIELD(ccert_subject),  FIELD(ccert_fingerprint), FIELD(ccert_pubkey_fingerprint),
};

/* The field at offset; through void * because the offsets are of char * members. */
static char **
field_at(PolicydRequest *request, gsize offset)
{
	return (char **)(void *)((char *)request + offset);
}

void
policyd_request_clear(PolicydRequest *request)
{
	for (guint i = 0; i < G_N_ELEMENTS(attr_fields); i++)
		g_clear_pointer(field_at(request, attr_fields[i].offset), g_free);
}

/* The field named name[0..len), or NULL for the attributes hanko does not read. Most of
 * a request's 29 attributes are not ours: comparing lengths first rejects them cheaply. */
static char **
field_named(PolicydRequest *request, const char *name, gsize len)
{
	for (guint i = 0; i < G_N_ELEMENTS(attr_fields); i++) {
		if (attr_fields[i].name_len == len && memcmp(attr_fields[i].name, name, len) == 0)
			return field_at(request, attr_fields[i].offset);
	}
	return NULL;
}

static gboolean
request_set_len(PolicydRequest *request, const char *name, gsize name_len, const char *value,
                gsize value_len)
{
	char **field = field_named(request, name, name_len);

	if (field == NULL)
		return FALSE;
	g_free(*field);
	*field = g_strndup(value, value_len);
	return TRUE;
}

gboolean
policyd_request_set(PolicydRequest *request, const char *name, const char *value)
{
	char **field = field_named(request, name, strlen(name));

	if (field == NULL)
		return FALSE;
	g_free(*field);
	*field = g_strdup(value);
	return TRUE;
}

void
policyd_decoder_init(PolicydDecoder *decoder)
{
	memset(decoder, 0, sizeof(*decoder));
	decoder->line = g_string_sized_new(256);
}

void
policyd_decoder_clear(PolicydDecoder *decoder)
{
	if (decoder->line != NULL)
		g_string_free(decoder->line, TRUE);
	decoder->line = NULL;
	policyd_request_clear(&decoder->partial);
	decoder->n_attrs = 0;
}

/* One complete line (no newline, a trailing CR already removed; not NUL-terminated). */
static gboolean
decode_attr(PolicydDecoder *decoder, const char *line, gsize len, GError **error)
{
	const char *eq = memchr(line, '=', len);

	/* as text: a NUL byte before the '=' ends the line there */
	if (eq != NULL && memchr(line, '\0', (gsize)(eq - line)) != NULL)
		eq = NULL;
	if (eq == NULL || eq == line) {
		g_set_error(error, POLICYD_CODEC_ERROR, POLICYD_CODEC_ERROR_NO_EQUALS,
		            "line without name=value");
		return FALSE;
	}
	if (++decoder->n_attrs > POLICYD_MAX_ATTRS) {
		g_set_error(error, POLICYD_CODEC_ERROR, POLICYD_CODEC_ERROR_TOO_MANY_ATTRS,
		            "more than %d attributes", POLICYD_MAX_ATTRS);
		return FALSE;
	}
	request_set_len(&decoder->partial, line, (gsize)(eq - line), eq + 1,
	                len - (gsize)(eq + 1 - line));
	return TRUE;
}

static gboolean
line_too_long(gsize len, gsize limit, GError **error)
{
	if (len <= limit)
		return FALSE;
	g_set_error(error, POLICYD_CODEC_ERROR, POLICYD_CODEC_ERROR_LINE_TOO_LONG,
	            "line longer than %d bytes", POLICYD_MAX_LINE);
	return TRUE;
}

/* Part of a line whose end has not arrived yet. */
static gboolean
append_line(PolicydDecoder *decoder, const char *data, gsize len, GError **error)
{
	/* + 1: a CR before the LF */
	if (line_too_long(decoder->line->len + len, POLICYD_MAX_LINE + 1, error))
		return FALSE;
	g_string_append_len(decoder->line, data, (gssize)len);
	return TRUE;
}

/* A complete line, without its newline: TRUE and *done when it ended the request. */
static gboolean
finish_line(PolicydDecoder *decoder, const char *line, gsize len, gboolean *done, GError **error)
{
	if (line_too_long(len, POLICYD_MAX_LINE + 1, error))
		return FALSE;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (line_too_long(len, POLICYD_MAX_LINE, error))
		return FALSE;
	*done = len == 0;
	return *done || decode_attr(decoder, line, len, error);
}

/* The line ending at data[chunk] (a newline): read in place when none of it came before,
 * else completed in decoder->line. */
static gboolean
read_line(PolicydDecoder *decoder, const char *data, gsize chunk, gboolean *done, GError **error)
{
	GString *line = decoder->line;

	if (line->len == 0)
		return finish_line(decoder, data, chunk, done, error);
	if (!append_line(decoder, data, chunk, error) ||
	    !finish_line(decoder, line->str, line->len, done, error))
		return FALSE;
	g_string_truncate(line, 0);
	return TRUE;
}

PolicydDecodeStatus
policyd_decoder_feed(PolicydDecoder *decoder, const char *data, gsize len, gsize *consumed,
                     PolicydRequest *out, GError **error)
{
	gsize pos = 0;

	*consumed = 0;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		gboolean done = FALSE;

		if (nl == NULL) {
			if (!append_line(decoder, data + pos, len - pos, error))
				return POLICYD_DECODE_ERROR;
			pos = len;
			break;
		}
		if (!read_line(decoder, data + pos, (gsize)(nl - (data + pos)), &done, error))
			return POLICYD_DECODE_ERROR;
		pos = (gsize)(nl - data) + 1; /* after the newline */
		if (done) {
			*out = decoder->partial;
			memset(&decoder->partial, 0, sizeof(decoder->partial));
			decoder->n_attrs = 0;
			*consumed = pos;
			return POLICYD_DECODE_READY;
		}
	}
	*consumed = pos;
	return POLICYD_DECODE_NEED_MORE;
}

gboolean
policyd_request_parse(const char *data, gsize len, PolicydRequest *out, GError **error)
{
	g_auto(PolicydDecoder) decoder = {0};
	gsize consumed = 0;
	PolicydDecodeStatus status;

	policyd_decoder_init(&decoder);
	status = policyd_decoder_feed(&decoder, data, len, &consumed, out, error);
	if (status == POLICYD_DECODE_NEED_MORE)
		g_set_error(error, POLICYD_CODEC_ERROR, POLICYD_CODEC_ERROR_INCOMPLETE,
		            "request does not end with an empty line");
	return status == POLICYD_DECODE_READY;
}

void
policyd_reply_append(GString *out, const char *action)
{
	g_string_append(out, "action=");
	for (const char *p = action; *p != '\0'; p++)
		g_string_append_c(out, (guchar)*p < 0x20 || *p == 0x7f ? ' ' : *p);
	g_string_append(out, "\n\n");
}

char *
policyd_reply_format(const char *action)
{
	GString *reply = g_string_sized_new(strlen(action) + 10);

	policyd_reply_append(reply, action);
	return g_string_free(reply, FALSE);
}
