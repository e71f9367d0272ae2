/*
 * fuzz-mime: libFuzzer target for the MIME reader (milter-smime/milter-mime.c).
 *
 * Reads the input as an entity the way hanko-milter walks a message: header fields,
 * Content-Type, the parts of a multipart body (each again an entity, 8 levels deep),
 * the decoded body, the From address; and the same input as a bare Content-Type or address
 * value. Traps when a span leaves its parent, parts overlap or run backwards, a limit is
 * exceeded, or a copy made with milter_mime_entity_new() reads differently.
 */
#include "milter-mime.h"

#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(gboolean ok)
{
	if (!ok)
		__builtin_trap();
}

static gboolean
within(MilterMimeSpan inner, MilterMimeSpan outer)
{
	return inner.data >= outer.data && inner.data + inner.len <= outer.data + outer.len;
}

static void
check_content_type(const MilterMimeContentType *ct)
{
	g_autofree char *type = g_ascii_strdown(ct->type, -1);
	g_autofree char *subtype = g_ascii_strdown(ct->subtype, -1);

	check(*ct->type != '\0' && *ct->subtype != '\0');
	check(strcmp(type, ct->type) == 0 && strcmp(subtype, ct->subtype) == 0);
	check(milter_mime_content_type_is(ct, ct->type, ct->subtype));
}

static void
check_address(const char *value)
{
	g_autofree char *address = milter_mime_address(value);

	check(address == NULL || (strchr(address, '@') != NULL && *address != '@'));
}

/* The entity again, built from its own fields: every lookup must read the same. */
static void
check_copy(const MilterMimeEntity *entity)
{
	g_autofree MilterMimeHeader *fields = g_new0(MilterMimeHeader, entity->headers->len + 1);
	g_autoptr(MilterMimeEntity) copy = NULL;

	for (guint i = 0; i < entity->headers->len; i++)
		fields[i] = *(MilterMimeHeader *)g_ptr_array_index(entity->headers, i);
	copy = milter_mime_entity_new(fields, entity->headers->len, entity->body.data,
	                              entity->body.len);
	check(copy->headers->len == entity->headers->len);
	check(copy->body.data == entity->body.data && copy->raw.len == entity->body.len);
	for (guint i = 0; i < entity->headers->len; i++)
		check(strcmp(milter_mime_entity_header(copy, fields[i].name),
		             milter_mime_entity_header(entity, fields[i].name)) == 0);
}

static void
check_decode(const MilterMimeEntity *entity)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) bytes = milter_mime_entity_decode(entity, &error);

	check((bytes == NULL) == (error != NULL));
	check(bytes == NULL || g_bytes_get_size(bytes) <= entity->body.len);
}

static void walk(const char *data, gsize len, guint depth);

static void
walk_parts(const MilterMimeEntity *entity, const char *boundary, guint depth)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) parts = milter_mime_multipart_split(entity->body, boundary, &error);
	const char *last_end = entity->body.data;

	check((parts == NULL) == (error != NULL));
	if (parts == NULL)
		return;
	check(parts->len >= 1 && parts->len <= MILTER_MIME_MAX_PARTS);
	for (guint i = 0; i < parts->len; i++) {
		MilterMimeSpan part = g_array_index(parts, MilterMimeSpan, i);

		check(within(part, entity->body) && part.data >= last_end);
		last_end = part.data + part.len;
		walk(part.data, part.len, depth + 1);
	}
}

/* Recursion is bounded by MAX_DEPTH, as hanko-milter bounds its own. */
static void
walk(const char *data, gsize len, guint depth)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MilterMimeEntity) entity = milter_mime_entity_parse(data, len, &error);
	g_autoptr(MilterMimeContentType) ct = NULL;

	check((entity == NULL) == (error != NULL));
	if (entity == NULL)
		return;
	check(entity->raw.data == data && entity->raw.len == len);
	check(within(entity->body, entity->raw));
	check(entity->body.data + entity->body.len == data + len);
	check(entity->headers->len <= MILTER_MIME_MAX_HEADERS);
	for (guint i = 0; i < entity->headers->len; i++) {
		const MilterMimeHeader *field = g_ptr_array_index(entity->headers, i);
		gsize n = strlen(field->value);

		check(*field->name != '\0' && strchr(field->value, '\n') == NULL);
		check(n == 0 || (field->value[0] != ' ' && field->value[n - 1] != ' '));
	}
	ct = milter_mime_content_type_parse(milter_mime_entity_header(entity, "Content-Type"));
	check_content_type(ct);
	check_copy(entity);
	check_decode(entity);
	check_address(milter_mime_entity_header(entity, "From"));
	if (depth < MAX_DEPTH && milter_mime_content_type_is(ct, "multipart", ct->subtype))
		walk_parts(entity, milter_mime_content_type_param(ct, "boundary"), depth);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autofree char *text = g_strndup((const char *)data, size);
	g_autoptr(MilterMimeContentType) ct = milter_mime_content_type_parse(text);

	/* the whole input as one header value, too: the value parsers see more that way */
	check_content_type(ct);
	check_address(text);
	walk((const char *)data, size, 0);
	return 0;
}
