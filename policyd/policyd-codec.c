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

G_STATIC_ASSERT(G_N_ELEMENTS(attr_fields) == POLICYD_REQUEST_N_FIELDS);
G_STATIC_ASSERT(POLICYD_REQUEST_N_FIELDS <= 32); /* PolicydRequest.owned */

/* The field at offset; through void * because the offsets are of char * members. */
static char **
field_at(PolicydRequest *request, gsize offset)
{
	return (char **)(void *)((char *)request + offset);
}

void
policyd_request_clear(PolicydRequest *request)
{
	for (guint i = 0; i < G_N_ELEMENTS(attr_fields); i++) {
		char **field = field_at(request, attr_fields[i].offset);

		if (request->owned & (1u << i))
			g_free(*field);
		*field = NULL;
	}
	request->owned = 0;
	g_clear_pointer(&request->values, g_free);
}

/* The index of the field named name[0..len), or -1 for the attributes hanko does not
 * read. Most of a request's 29 attributes are not ours: comparing lengths first rejects
 * them cheaply. */
static int
field_index(const char *name, gsize len)
{
	for (guint i = 0; i < G_N_ELEMENTS(attr_fields); i++) {
		if (attr_fields[i].name_len == len && memcmp(attr_fields[i].name, name, len) == 0)
			return (int)i;
	}
	return -1;
}

gboolean
policyd_request_set(PolicydRequest *request, const char *name, const char *value)
{
	int i = field_index(name, strlen(name));
	char **field;

	if (i < 0)
		return FALSE;
	field = field_at(request, attr_fields[i].offset);
	if (request->owned & (1u << i))
		g_free(*field);
	*field = g_strdup(value);
	request->owned |= 1u << i;
	return TRUE;
}

void
policyd_decoder_init(PolicydDecoder *decoder)
{
	memset(decoder, 0, sizeof(*decoder));
	decoder->line = g_string_sized_new(256);
	decoder->values = g_string_sized_new(1024);
}

static void
decoder_reset(PolicydDecoder *decoder)
{
	g_string_truncate(decoder->values, 0);
	memset(decoder->value_at, 0, sizeof(decoder->value_at));
	decoder->dead = 0;
	decoder->n_attrs = 0;
}

void
policyd_decoder_clear(PolicydDecoder *decoder)
{
	if (decoder->line != NULL)
		g_string_free(decoder->line, TRUE);
	if (decoder->values != NULL)
		g_string_free(decoder->values, TRUE);
	memset(decoder, 0, sizeof(*decoder));
}

/* Drops the values that repeats replaced, so that a request repeating a long attribute
 * holds no more than the one value of each field. */
static void
values_compact(PolicydDecoder *decoder)
{
	GString *live = g_string_sized_new(decoder->values->len - decoder->dead);

	for (guint i = 0; i < G_N_ELEMENTS(decoder->value_at); i++) {
		const char *value;

		if (decoder->value_at[i] == 0)
			continue;
		value = decoder->values->str + decoder->value_at[i] - 1;
		decoder->value_at[i] = (guint32)live->len + 1;
		g_string_append_len(live, value, (gssize)strlen(value) + 1);
	}
	g_string_free(decoder->values, TRUE);
	decoder->values = live;
	decoder->dead = 0;
}

/* Keeps the value of field i, replacing an earlier one (the last wins). */
static void
value_set(PolicydDecoder *decoder, int i, const char *value, gsize len)
{
	GString *values = decoder->values;

	len = strnlen(value, len); /* as text: a NUL byte ends the value */
	if (decoder->value_at[i] != 0) {
		decoder->dead += strlen(values->str + decoder->value_at[i] - 1) + 1;
		if (decoder->dead > POLICYD_MAX_LINE * 4)
			values_compact(decoder);
		values = decoder->values;
	}
	decoder->value_at[i] = (guint32)values->len + 1;
	g_string_append_len(values, value, (gssize)len);
	g_string_append_c(values, '\0');
}

/* The request read: one block holding its values, the fields pointing into it. */
static void
decoder_take(PolicydDecoder *decoder, PolicydRequest *out)
{
	memset(out, 0, sizeof(*out));
	out->values = g_memdup2(decoder->values->str, decoder->values->len);
	for (guint i = 0; i < G_N_ELEMENTS(attr_fields); i++) {
		if (decoder->value_at[i] != 0)
			*field_at(out, attr_fields[i].offset) =
			        out->values + decoder->value_at[i] - 1;
	}
	decoder_reset(decoder);
}

/* One complete line (no newline, a trailing CR already removed; not NUL-terminated). */
static gboolean
decode_attr(PolicydDecoder *decoder, const char *line, gsize len, GError **error)
{
	const char *eq = memchr(line, '=', len);
	int field;

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
	field = field_index(line, (gsize)(eq - line));
	if (field >= 0)
		value_set(decoder, field, eq + 1, len - (gsize)(eq + 1 - line));
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
			decoder_take(decoder, out);
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
