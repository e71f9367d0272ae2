/*
 * certd-audit: one row per mutating op (who, what, on what, when, how it ended), and
 * audit.list to read them back.
 *
 * Talks to: the database.
 * Must never: store a secret (the subject is a name, serial or address, never a password).
 */
#include "certd.h"
#include "hk-certd-proto.h"

/* The params that name what an op acted on, in order of preference. */
static const char *const subject_keys[] = {
        HK_CERTD_KEY_ID, HK_CERTD_KEY_NAME,  HK_CERTD_KEY_SERIAL,  HK_CERTD_KEY_USER,
        HK_CERTD_KEY_CN, HK_CERTD_KEY_EMAIL, HK_CERTD_KEY_SERVICE, NULL,
};

static const char *
audit_subject(json_object *params)
{
	for (guint i = 0; subject_keys[i] != NULL; i++) {
		const char *value = hk_json_get_string(params, subject_keys[i]);

		if (value != NULL)
			return value;
	}
	return NULL;
}

void
certd_audit_finish(HkIpcRequest *request, json_object *params, const char *code,
                   const char *message, gpointer data)
{
	CertdState *state = data;
	const HkIpcPeer *peer = hk_ipc_request_get_peer(request);
	g_autoptr(GError) error = NULL;
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(state->db,
	                      "INSERT INTO audit (time, uid, pid, op, subject, outcome, message)"
	                      " VALUES (?, ?, ?, ?, ?, ?, ?)",
	                      &error);

	if (stmt == NULL) {
		g_warning("audit: %s", error->message);
		return;
	}
	sqlite3_bind_int64(stmt, 1, g_get_real_time() / G_USEC_PER_SEC);
	sqlite3_bind_int64(stmt, 2, peer->uid);
	sqlite3_bind_int64(stmt, 3, peer->pid);
	sqlite3_bind_text(stmt, 4, hk_ipc_request_get_op(request), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 5, audit_subject(params), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 6, code ? code : "ok", -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 7, message, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		g_warning("audit: %s", sqlite3_errmsg(hk_db_handle(state->db)));
	g_info("audit: uid %u %s %s: %s", (guint)peer->uid, hk_ipc_request_get_op(request),
	       audit_subject(params) ? audit_subject(params) : "-", code ? code : "ok");
}

static json_object *
audit_row(sqlite3_stmt *stmt)
{
	json_object *row = json_object_new_object();
	g_autofree char *time = certd_time_iso(sqlite3_column_int64(stmt, 0));

	json_object_object_add(row, HK_CERTD_KEY_TIME, json_object_new_string(time));
	json_object_object_add(row, HK_CERTD_KEY_UID,
	                       json_object_new_int64(sqlite3_column_int64(stmt, 1)));
	json_object_object_add(row, HK_CERTD_KEY_PID,
	                       json_object_new_int64(sqlite3_column_int64(stmt, 2)));
	json_object_object_add(row, HK_CERTD_KEY_OP,
	                       json_object_new_string((const char *)sqlite3_column_text(stmt, 3)));
	if (sqlite3_column_type(stmt, 4) != SQLITE_NULL)
		json_object_object_add(
		        row, HK_CERTD_KEY_SUBJECT,
		        json_object_new_string((const char *)sqlite3_column_text(stmt, 4)));
	json_object_object_add(row, HK_CERTD_KEY_OUTCOME,
	                       json_object_new_string((const char *)sqlite3_column_text(stmt, 5)));
	if (sqlite3_column_type(stmt, 6) != SQLITE_NULL)
		json_object_object_add(
		        row, HK_CERTD_KEY_MESSAGE,
		        json_object_new_string((const char *)sqlite3_column_text(stmt, 6)));
	return row;
}

static void
op_audit_list(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        state->db,
	        "SELECT time, uid, pid, op, subject, outcome, message FROM"
	        " (SELECT * FROM audit WHERE time >= ? ORDER BY id DESC LIMIT ?) ORDER BY id",
	        &error);
	json_object *entries, *result;

	if (stmt == NULL) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	sqlite3_bind_int64(stmt, 1, hk_json_get_int(params, HK_CERTD_KEY_SINCE, 0));
	sqlite3_bind_int64(stmt, 2, hk_json_get_int(params, HK_CERTD_KEY_LIMIT, 1000));
	entries = json_object_new_array();
	while (sqlite3_step(stmt) == SQLITE_ROW)
		json_object_array_add(entries, audit_row(stmt));
	result = json_object_new_object();
	json_object_object_add(result, HK_CERTD_KEY_ENTRIES, entries);
	hk_ipc_request_return(req, result);
}

static const HkIpcParam audit_list_params[] = {
        {HK_CERTD_KEY_SINCE, json_type_int},
        {HK_CERTD_KEY_LIMIT, json_type_int},
        {0},
};

const HkIpcOp certd_audit_ops[] = {
        {HK_CERTD_OP_AUDIT_LIST, CERTD_ADMIN, audit_list_params, op_audit_list},
        {0},
};
