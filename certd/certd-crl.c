/*
 * certd-crl: the CA's certificate revocation list: v2, with a CRL number and the
 * authority key identifier, signed with the CA key, written as PEM and DER, renewed at
 * once on every revocation and halfway through its validity otherwise. ca.crl hands it out.
 *
 * Talks to: the database (revoked certificates, the CRL number), the state directory.
 * Must never: publish a CRL whose number does not grow.
 */
#include "certd.h"
#include "hk-certd-proto.h"

#include <openssl/pem.h>

static const char *const reason_names[] = {
        [CRL_REASON_UNSPECIFIED] = "unspecified",
        [CRL_REASON_KEY_COMPROMISE] = "keyCompromise",
        [CRL_REASON_CA_COMPROMISE] = "cACompromise",
        [CRL_REASON_AFFILIATION_CHANGED] = "affiliationChanged",
        [CRL_REASON_SUPERSEDED] = "superseded",
        [CRL_REASON_CESSATION_OF_OPERATION] = "cessationOfOperation",
        [CRL_REASON_CERTIFICATE_HOLD] = "certificateHold",
        [CRL_REASON_REMOVE_FROM_CRL] = NULL, /* only in delta CRLs */
        [CRL_REASON_PRIVILEGE_WITHDRAWN] = "privilegeWithdrawn",
        [CRL_REASON_AA_COMPROMISE] = "aACompromise",
};

int
certd_crl_reason_code(const char *name)
{
	for (guint i = 0; i < G_N_ELEMENTS(reason_names); i++) {
		if (reason_names[i] != NULL && g_ascii_strcasecmp(reason_names[i], name) == 0)
			return (int)i;
	}
	return -1;
}

const char *
certd_crl_reason_list(void)
{
	return "unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, "
	       "cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise";
}

static gboolean
add_revoked(X509_CRL *crl, const char *serial_hex, gint64 when, const char *reason, GError **error)
{
	g_autoptr(BIGNUM) bn = NULL;
	g_autoptr(ASN1_INTEGER) serial = NULL;
	g_autoptr(ASN1_TIME) date = ASN1_TIME_set(NULL, (time_t)when);
	X509_REVOKED *rev = X509_REVOKED_new();
	int code = reason ? certd_crl_reason_code(reason) : -1;

	if (BN_hex2bn(&bn, serial_hex) == 0 || (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    !X509_REVOKED_set_serialNumber(rev, serial) ||
	    !X509_REVOKED_set_revocationDate(rev, date)) {
		X509_REVOKED_free(rev);
		return hk_ossl_set_error(error, "cannot list serial %s in the CRL", serial_hex);
	}
	if (code > 0) {
		ASN1_ENUMERATED *e = ASN1_ENUMERATED_new();

		ASN1_ENUMERATED_set(e, code);
		X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, e, 0, 0);
		ASN1_ENUMERATED_free(e);
	}
	X509_CRL_add0_revoked(crl, rev);
	return TRUE;
}

static gboolean
add_revoked_from_db(CertdState *state, X509_CRL *crl, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        state->db,
	        "SELECT serial, revoked_at, revoke_reason FROM certs"
	        " WHERE status = 'revoked' AND kind = 'client' AND serial IS NOT NULL",
	        error);

	if (stmt == NULL)
		return FALSE;
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		if (!add_revoked(crl, (const char *)sqlite3_column_text(stmt, 0),
		                 sqlite3_column_int64(stmt, 1),
		                 (const char *)sqlite3_column_text(stmt, 2), error))
			return FALSE;
	}
	return TRUE;
}

static gboolean
crl_set_extensions(CertdState *state, X509_CRL *crl, gint64 number, GError **error)
{
	g_autoptr(ASN1_INTEGER) num = ASN1_INTEGER_new();
	X509V3_CTX ctx;
	X509_EXTENSION *aki;

	ASN1_INTEGER_set_int64(num, number);
	if (!X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0))
		return hk_ossl_set_error(error, "cannot set the CRL number");
	X509V3_set_ctx(&ctx, state->ca_cert, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	if (aki == NULL || !X509_CRL_add_ext(crl, aki, -1)) {
		X509_EXTENSION_free(aki);
		return hk_ossl_set_error(error, "cannot set the CRL's authority key identifier");
	}
	X509_EXTENSION_free(aki);
	return TRUE;
}

static X509_CRL *
crl_build(CertdState *state, gint64 number, gint64 now, gint64 next, GError **error)
{
	g_autoptr(X509_CRL) crl = X509_CRL_new();
	g_autoptr(ASN1_TIME) last_update = ASN1_TIME_set(NULL, (time_t)now);
	g_autoptr(ASN1_TIME) next_update = ASN1_TIME_set(NULL, (time_t)next);

	if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(state->ca_cert)) ||
	    !X509_CRL_set1_lastUpdate(crl, last_update) ||
	    !X509_CRL_set1_nextUpdate(crl, next_update)) {
		hk_ossl_set_error(error, "cannot build the CRL");
		return NULL;
	}
	if (!add_revoked_from_db(state, crl, error) ||
	    !crl_set_extensions(state, crl, number, error))
		return NULL;
	X509_CRL_sort(crl);
	if (X509_CRL_sign(crl, state->ca_key, EVP_sha256()) <= 0) {
		hk_ossl_set_error(error, "cannot sign the CRL");
		return NULL;
	}
	return g_steal_pointer(&crl);
}

static gboolean
crl_write(CertdState *state, X509_CRL *crl, GError **error)
{
	g_autofree char *dir = g_build_filename(state->state_dir, "ca", NULL);
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	guchar *der = NULL;
	char *pem = NULL;
	long pem_len;
	int der_len;
	gboolean ok;

	if (!PEM_write_bio_X509_CRL(bio, crl) || (der_len = i2d_X509_CRL(crl, &der)) <= 0)
		return hk_ossl_set_error(error, "cannot encode the CRL");
	pem_len = BIO_get_mem_data(bio, &pem);
	ok = certd_store_write(dir, "crl.pem", pem, (gsize)pem_len, 0644, error) &&
	     certd_store_write(dir, "crl.der", der, (gsize)der_len, 0644, error);
	OPENSSL_free(der);
	return ok;
}

static gboolean
crl_next_number(HkDb *db, gpointer data, GError **error)
{
	gint64 *times = data; /* [0] number out, [1] now, [2] next update */
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        db,
	        "INSERT INTO crl (id, number, this_update, next_update) VALUES (1, 1, ?1, ?2)"
	        " ON CONFLICT (id) DO UPDATE SET number = number + 1, this_update = ?1,"
	        " next_update = ?2 RETURNING number",
	        error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, times[1]);
	sqlite3_bind_int64(stmt, 2, times[2]);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return hk_db_set_error(db, error, "cannot count the CRL");
	times[0] = sqlite3_column_int64(stmt, 0);
	return TRUE;
}

gboolean
certd_crl_update(CertdState *state, GError **error)
{
	gint64 validity =
	        hk_config_get_duration_ms(state->config, CERTD_SECTION, CERTD_CONF_CRL_VALIDITY) /
	        1000;
	gint64 times[3] = {0, g_get_real_time() / G_USEC_PER_SEC, 0};
	g_autoptr(X509_CRL) crl = NULL;

	if (!certd_ca_require(state, error))
		return FALSE;
	times[2] = times[1] + validity;
	/* the number is taken first: a crash after this leaves a gap, never a repeat */
	if (!hk_db_transaction(state->db, crl_next_number, times, error))
		return FALSE;
	crl = crl_build(state, times[0], times[1], times[2], error);
	if (crl == NULL || !crl_write(state, crl, error))
		return FALSE;
	g_info("CRL %" G_GINT64_FORMAT " published, next update in %" G_GINT64_FORMAT " s",
	       times[0], validity);
	certd_emit(state, HK_CERTD_EV_CRL_UPDATED, NULL);
	return TRUE;
}

static gboolean
on_crl_timer(gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;

	state->crl_timer = 0;
	if (!certd_crl_update(state, &error))
		g_warning("cannot renew the CRL: %s", error->message);
	certd_crl_schedule(state);
	return G_SOURCE_REMOVE;
}

void
certd_crl_schedule(CertdState *state)
{
	gint64 validity =
	        hk_config_get_duration_ms(state->config, CERTD_SECTION, CERTD_CONF_CRL_VALIDITY) /
	        1000;
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	gint64 this_update = 0, due;
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_clear_handle_id(&state->crl_timer, g_source_remove);
	if (state->ca_cert == NULL)
		return;
	stmt = hk_db_prepare(state->db, "SELECT this_update FROM crl WHERE id = 1", NULL);
	if (stmt != NULL && sqlite3_step(stmt) == SQLITE_ROW)
		this_update = sqlite3_column_int64(stmt, 0);
	/* renewed halfway through, so a CRL never lapses while certd runs */
	due = this_update + validity / 2;
	state->crl_timer =
	        g_timeout_add_seconds((guint)CLAMP(due - now, 0, G_MAXINT32), on_crl_timer, state);
}

void
certd_op_ca_crl(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_build_filename(state->state_dir, "ca", NULL);
	g_autofree char *pem_path = g_build_filename(dir, "crl.pem", NULL);
	g_autofree char *der_path = g_build_filename(dir, "crl.der", NULL);
	g_autofree char *pem = NULL;
	g_autofree char *der = NULL;
	gsize pem_len, der_len;
	g_autoptr(sqlite3_stmt) stmt = NULL;
	json_object *result;

	if (!certd_ca_require(state, &error) ||
	    !certd_store_read(pem_path, &pem, &pem_len, &error) ||
	    !certd_store_read(der_path, &der, &der_len, &error) ||
	    (stmt = hk_db_prepare(state->db,
	                          "SELECT number, this_update, next_update FROM crl WHERE id = 1",
	                          &error)) == NULL) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	result = json_object_new_object();
	json_object_object_add(result, HK_CERTD_KEY_CRL_PEM, json_object_new_string(pem));
	json_object_object_add(result, HK_CERTD_KEY_DER_BASE64, certd_json_base64(der, der_len));
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		g_autofree char *tu = certd_time_iso(sqlite3_column_int64(stmt, 1));
		g_autofree char *nu = certd_time_iso(sqlite3_column_int64(stmt, 2));

		json_object_object_add(result, HK_CERTD_KEY_CRL_NUMBER,
		                       json_object_new_int64(sqlite3_column_int64(stmt, 0)));
		json_object_object_add(result, HK_CERTD_KEY_THIS_UPDATE,
		                       json_object_new_string(tu));
		json_object_object_add(result, HK_CERTD_KEY_NEXT_UPDATE,
		                       json_object_new_string(nu));
	}
	hk_ipc_request_return(req, result);
}
