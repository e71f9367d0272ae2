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
	gsize offset;
} AttrField;

#define FIELD(name)                                                                                \
	{                                                                                          \
#name, offsetof(PolicydRequest, name)                                              \
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

gboolean
policyd_request_set(PolicydRequest *request, const char *name, const char *value)
{
	for (guint i = 0; i < G_N_ELEMENTS(attr_fields); i++) {
		char **field = field_at(request, attr_fields[i].offset);

		if (strcmp(attr_fields[i].name, name) != 0)
			continue;
		g_free(*field);
		*field = g_strdup(value);
		return TRUE;
	}
	return FALSE;
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

/* One complete line (no newline, a trailing CR already removed). */
static gboolean
decode_attr(PolicydDecoder *decoder, char *line, GError **error)
{
	char *eq = strchr(line, '=');

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
	*eq = '\0';
	policyd_request_set(&decoder->partial, line, eq + 1);
	return TRUE;
}

static gboolean
append_line(PolicydDecoder *decoder, const char *data, gsize len, GError **error)
{
	if (decoder->line->len + len > POLICYD_MAX_LINE + 1) { /* + 1: a CR before the LF */
		g_set_error(error, POLICYD_CODEC_ERROR, POLICYD_CODEC_ERROR_LINE_TOO_LONG,
		            "line longer than %d bytes", POLICYD_MAX_LINE);
		return FALSE;
	}
	g_string_append_len(decoder->line, data, (gssize)len);
	return TRUE;
}

/* The line is complete: TRUE and *done when it ended the request. */
static gboolean
finish_line(PolicydDecoder *decoder, gboolean *done, GError **error)
{
	GString *line = decoder->line;

	if (line->len > 0 && line->str[line->len - 1] == '\r')
		g_string_truncate(line, line->len - 1);
	if (line->len > POLICYD_MAX_LINE) {
		g_set_error(error, POLICYD_CODEC_ERROR, POLICYD_CODEC_ERROR_LINE_TOO_LONG,
		            "line longer than %d bytes", POLICYD_MAX_LINE);
		return FALSE;
	}
	*done = line->len == 0;
	if (!*done && !decode_attr(decoder, line->str, error))
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
		gsize chunk = nl ? (gsize)(nl - (data + pos)) : len - pos;
		gboolean done = FALSE;

		if (!append_line(decoder, data + pos, chunk, error))
			return POLICYD_DECODE_ERROR;
		pos += chunk;
		if (nl == NULL)
			break;
		pos++; /* the newline */
		if (!finish_line(decoder, &done, error))
			return POLICYD_DECODE_ERROR;
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

char *
policyd_reply_format(const char *action)
{
	GString *reply = g_string_sized_new(strlen(action) + 10);

	g_string_append(reply, "action=");
	for (const char *p = action; *p != '\0'; p++)
		g_string_append_c(reply, (guchar)*p < 0x20 || *p == 0x7f ? ' ' : *p);
	g_string_append(reply, "\n\n");
	return g_string_free(reply, FALSE);
}
