/*
 * fuzz-jsonline: libFuzzer target for the JSON-line decoder, the path every byte a
 * peer sends to a hanko socket goes through: line framing, JSON parsing, the request
 * envelope, parameter checking against an op table, reply decoding and log redaction.
 *
 * Must never find: a crash, a leak, undefined behaviour, or a line over the limit
 * handed out as READY.
 */
#include "hk-ipc.h"
#include "hk-log.h"

#include <string.h>

#define FUZZ_MAX_LINE 4096 /* small, so the too-long path is reached often */

static void
op_none(HkIpcRequest *request, json_object *params, gpointer user_data)
{
}

static const HkIpcParam lookup_params[] = {
        {"fingerprint", json_type_string, TRUE},
        {"limit", json_type_int, FALSE},
        {"strict", json_type_boolean, FALSE},
        {"filter", json_type_object, FALSE},
        {"emails", json_type_array, FALSE},
        {"any", json_type_null, FALSE},
        {0},
};

static const HkIpcOp ops[] = {
        {"ping", HK_IPC_ROLE_PUBLIC, NULL, op_none},
        {"cert.lookup", HK_IPC_ROLE_SERVICE, lookup_params, op_none},
        {0},
};

static void
decode_one(const char *line, gsize len)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) msg = hk_ipc_parse_line(line, len, &error);
	HkIpcRequestFields fields;
	json_object *id, *result;

	if (msg == NULL) {
		g_assert_nonnull(error);
		return;
	}
	g_free(hk_log_redact_json(msg));
	/* the same bytes read as a reply, as a client would */
	hk_ipc_decode_reply(msg, &id, &result, NULL);
	if (!hk_ipc_decode_request(msg, &fields, NULL))
		return;
	for (const HkIpcOp *op = ops; op->name != NULL; op++) {
		if (strcmp(op->name, fields.op) == 0)
			hk_ipc_check_params(op, fields.params, NULL);
	}
}

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
	HkLineReader reader;
	const char *line;
	gsize len;
	/* the first byte picks how the input is cut into reads, as a socket would cut it */
	gsize chunk = size > 0 ? (gsize)data[0] % 64 + 1 : 1;

	hk_line_reader_init(&reader, FUZZ_MAX_LINE);
	for (gsize off = size > 0 ? 1 : 0; off < size; off += chunk) {
		HkLineStatus status;

		hk_line_reader_feed(&reader, data + off, MIN(chunk, size - off));
		while ((status = hk_line_reader_next(&reader, &line, &len)) == HK_LINE_READY) {
			g_assert_cmpuint(len, <=, FUZZ_MAX_LINE);
			g_assert_cmpuint(strlen(line), <=, len);
			decode_one(line, len);
			hk_line_reader_consume(&reader);
		}
		if (status == HK_LINE_TOO_LONG)
			break; /* the server closes the connection here */
	}
	hk_line_reader_clear(&reader);
	return 0;
}
