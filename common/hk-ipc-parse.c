/*
 * hk-ipc-parse: the pure half of the JSON-line protocol. Splits bytes into lines,
 * parses a line into one JSON object, checks a request's envelope and its params
 * against the op's table, maps error codes, maps peers to roles.
 *
 * Talks to nothing: no sockets, no main loop, so the fuzz target drives it directly.
 * Must never: accept a line longer than its limit, or anything but exactly one object.
 */
#include "hk-ipc.h"

#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

/* written out: clang-format would put spaces into G_DEFINE_QUARK's stringified name */
GQuark
hk_ipc_error_quark(void)
{
	return g_quark_from_static_string("hk-ipc-error-quark");
}

static const char *const error_codes[] = {
        [HK_IPC_ERROR_FAILED] = "failed",
        [HK_IPC_ERROR_BAD_REQUEST] = HK_IPC_ERR_BAD_REQUEST,
        [HK_IPC_ERROR_UNKNOWN_OP] = HK_IPC_ERR_UNKNOWN_OP,
        [HK_IPC_ERROR_INVALID_ARGUMENT] = HK_IPC_ERR_INVALID_ARGUMENT,
        [HK_IPC_ERROR_PERMISSION_DENIED] = HK_IPC_ERR_PERMISSION_DENIED,
        [HK_IPC_ERROR_NOT_FOUND] = HK_IPC_ERR_NOT_FOUND,
        [HK_IPC_ERROR_CONFLICT] = HK_IPC_ERR_CONFLICT,
        [HK_IPC_ERROR_LINE_TOO_LONG] = HK_IPC_ERR_LINE_TOO_LONG,
        [HK_IPC_ERROR_TOO_MANY_CONNECTIONS] = HK_IPC_ERR_TOO_MANY_CONNECTIONS,
        [HK_IPC_ERROR_UNAVAILABLE] = HK_IPC_ERR_UNAVAILABLE,
        [HK_IPC_ERROR_INTERNAL] = HK_IPC_ERR_INTERNAL,
        [HK_IPC_ERROR_CONNECT] = "connect",
        [HK_IPC_ERROR_CLOSED] = "closed",
        [HK_IPC_ERROR_TIMEOUT] = "timeout",
        [HK_IPC_ERROR_PROTOCOL] = "protocol",
};

const char *
hk_ipc_error_code_to_string(HkIpcError code)
{
	if ((guint)code >= G_N_ELEMENTS(error_codes))
		return error_codes[HK_IPC_ERROR_FAILED];
	return error_codes[code];
}

HkIpcError
hk_ipc_error_code_from_string(const char *code)
{
	/* only codes a server may send; transport codes are the client's own */
	for (guint i = HK_IPC_ERROR_BAD_REQUEST; i <= HK_IPC_ERROR_INTERNAL; i++) {
		if (g_strcmp0(error_codes[i], code) == 0)
			return (HkIpcError)i;
	}
	return HK_IPC_ERROR_FAILED;
}

/* ----- line framing ----- */

void
hk_line_reader_init(HkLineReader *reader, gsize max_line)
{
	reader->buf = g_byte_array_new();
	reader->start = 0;
	reader->scanned = 0;
	reader->line_end = 0;
	reader->max_line = max_line;
}

void
hk_line_reader_clear(HkLineReader *reader)
{
	g_clear_pointer(&reader->buf, g_byte_array_unref);
}

void
hk_line_reader_feed(HkLineReader *reader, const void *data, gsize len)
{
	if (reader->start > 0) {
		g_byte_array_remove_range(reader->buf, 0, (guint)reader->start);
		reader->scanned -= reader->start;
		reader->start = 0;
	}
	g_byte_array_append(reader->buf, data, (guint)len);
}

HkLineStatus
hk_line_reader_next(HkLineReader *reader, const char **line, gsize *len)
{
	GByteArray *buf = reader->buf;
	guint8 *begin, *nl;

	g_return_val_if_fail(reader->line_end == 0, HK_LINE_NEED_MORE);
	/* only look at bytes not scanned before: a 1 MiB line arriving in 4 KiB reads
	 * must not cost 256 passes over it */
	if (reader->scanned < reader->start)
		reader->scanned = reader->start;
	/* checked before any pointer arithmetic: an empty GByteArray's data is NULL */
	if (reader->scanned >= buf->len ||
	    (nl = memchr(buf->data + reader->scanned, '\n', buf->len - reader->scanned)) == NULL) {
		reader->scanned = buf->len;
		if (buf->len - reader->start > reader->max_line)
			return HK_LINE_TOO_LONG;
		return HK_LINE_NEED_MORE;
	}
	begin = buf->data + reader->start;
	*len = (gsize)(nl - begin);
	if (*len > reader->max_line)
		return HK_LINE_TOO_LONG;
	*nl = '\0';
	*line = (const char *)begin;
	reader->line_end = *len + 1;
	return HK_LINE_READY;
}

void
hk_line_reader_consume(HkLineReader *reader)
{
	g_return_if_fail(reader->line_end > 0);
	reader->start += reader->line_end;
	reader->scanned = reader->start;
	reader->line_end = 0;
}

/* ----- JSON ----- */

json_object *
hk_ipc_parse_line(const char *line, gsize len, GError **error)
{
	g_autoptr(json_object) obj = NULL;
	json_tokener *tok;
	enum json_tokener_error jerr;
	gsize used;

	if (len > 0 && line[len - 1] == '\r')
		len--; /* tolerate CRLF from hand-typed socat sessions */
	if (memchr(line, '\0', len) != NULL) {
		g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_BAD_REQUEST,
		                    "malformed JSON: NUL byte in line");
		return NULL;
	}
	tok = json_tokener_new_ex(32);
	obj = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr != json_tokener_success || obj == NULL) {
		g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_BAD_REQUEST, "malformed JSON: %s",
		            jerr == json_tokener_continue ? "unexpected end of line"
		                                          : json_tokener_error_desc(jerr));
		return NULL;
	}
	for (; used < len; used++) {
		if (!g_ascii_isspace(line[used])) {
			g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_BAD_REQUEST,
			            "malformed JSON: trailing data at byte %zu", used);
			return NULL;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_BAD_REQUEST,
		                    "a request must be a JSON object");
		return NULL;
	}
	return g_steal_pointer(&obj);
}

static gboolean
id_is_valid(json_object *id)
{
	return id == NULL || json_object_is_type(id, json_type_int) ||
	       json_object_is_type(id, json_type_string) || json_object_is_type(id, json_type_null);
}

gboolean
hk_ipc_decode_request(json_object *obj, HkIpcRequestFields *out, GError **error)
{
	json_object *op = NULL;

	memset(out, 0, sizeof(*out));
	json_object_object_get_ex(obj, "id", &out->id);
	if (!id_is_valid(out->id)) {
		out->id = NULL;
		g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_BAD_REQUEST,
		                    "\"id\" must be an integer or a string");
		return FALSE;
	}
	json_object_object_foreach(obj, key, value)
	{
		(void)value;
		if (strcmp(key, "id") != 0 && strcmp(key, "op") != 0 &&
		    strcmp(key, "params") != 0) {
			g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_BAD_REQUEST,
			            "unknown request member \"%s\"", key);
			return FALSE;
		}
	}
	if (!json_object_object_get_ex(obj, "op", &op) ||
	    !json_object_is_type(op, json_type_string)) {
		g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_BAD_REQUEST,
		                    "\"op\" is missing or not a string");
		return FALSE;
	}
	out->op = json_object_get_string(op);
	if (json_object_object_get_ex(obj, "params", &out->params) && out->params != NULL &&
	    !json_object_is_type(out->params, json_type_object)) {
		g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_BAD_REQUEST,
		                    "\"params\" must be an object");
		return FALSE;
	}
	return TRUE;
}

gboolean
hk_ipc_decode_reply(json_object *msg, json_object **id, json_object **result, GError **error)
{
	json_object *ok = NULL, *err = NULL;
	const char *code, *message;

	*id = NULL;
	*result = NULL;
	json_object_object_get_ex(msg, "id", id);
	if (!json_object_object_get_ex(msg, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean)) {
		g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_PROTOCOL,
		                    "reply without a boolean \"ok\"");
		return FALSE;
	}
	if (json_object_get_boolean(ok)) {
		if (!json_object_object_get_ex(msg, "result", result))
			*result = NULL;
		return TRUE;
	}
	err = hk_json_get_object(msg, "error");
	code = err ? hk_json_get_string(err, "code") : NULL;
	message = err ? hk_json_get_string(err, "message") : NULL;
	if (code == NULL) {
		g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_PROTOCOL,
		                    "error reply without an error code");
		return FALSE;
	}
	g_set_error_literal(error, HK_IPC_ERROR, hk_ipc_error_code_from_string(code),
	                    message ? message : code);
	return FALSE;
}

static const char *
json_type_label(json_type type)
{
	switch (type) {
	case json_type_string:
		return "a string";
	case json_type_int:
		return "an integer";
	case json_type_boolean:
		return "a boolean";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_double:
		return "a number";
	case json_type_null:
	default:
		return "null";
	}
}

static const HkIpcParam *
find_param(const HkIpcOp *op, const char *name)
{
	for (const HkIpcParam *p = op->params; p != NULL && p->name != NULL; p++) {
		if (strcmp(p->name, name) == 0)
			return p;
	}
	return NULL;
}

gboolean
hk_ipc_check_params(const HkIpcOp *op, json_object *params, GError **error)
{
	if (params != NULL) {
		json_object_object_foreach(params, key, value)
		{
			const HkIpcParam *p = find_param(op, key);

			if (p == NULL) {
				g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT,
				            "%s: unknown parameter \"%s\"", op->name, key);
				return FALSE;
			}
			if (p->type != json_type_null && !json_object_is_type(value, p->type)) {
				g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT,
				            "%s: parameter \"%s\" must be %s", op->name, key,
				            json_type_label(p->type));
				return FALSE;
			}
		}
	}
	for (const HkIpcParam *p = op->params; p != NULL && p->name != NULL; p++) {
		if (p->required &&
		    (params == NULL || !json_object_object_get_ex(params, p->name, NULL))) {
			g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT,
			            "%s: missing parameter \"%s\"", op->name, p->name);
			return FALSE;
		}
	}
	return TRUE;
}

/* ----- roles ----- */

static gboolean
uid_in_group(uid_t uid, gid_t primary, gid_t group)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	gid_t groups[256];
	int n = G_N_ELEMENTS(groups);

	if (group == (gid_t)-1)
		return FALSE;
	if (primary == group)
		return TRUE;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return FALSE;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		n = G_N_ELEMENTS(groups); /* more groups than we look at: check those we got */
	for (int i = 0; i < n; i++) {
		if (groups[i] == group)
			return TRUE;
	}
	return FALSE;
}

guint
hk_ipc_roles_from_groups(const HkIpcPeer *peer, gpointer group_roles)
{
	const HkIpcGroupRoles *g = group_roles;
	guint roles = HK_IPC_ROLE_PUBLIC;

	if (peer->uid == 0)
		return HK_IPC_ROLE_PUBLIC | HK_IPC_ROLE_SERVICE | HK_IPC_ROLE_ADMIN;
	if (uid_in_group(peer->uid, peer->gid, g->admin_gid))
		roles |= HK_IPC_ROLE_ADMIN;
	if (uid_in_group(peer->uid, peer->gid, g->service_gid))
		roles |= HK_IPC_ROLE_SERVICE;
	return roles;
}
