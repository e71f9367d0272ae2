/*
 * certd-smime: S/MIME recipient certificates by mail address (smime.register,
 * smime.lookup, smime.unregister), so hanko-milter can encrypt the notifications it sends.
 *
 * A registered certificate must be valid now, name the address (subjectAltName
 * rfc822Name or, when it has none, subject emailAddress), allow e-mail protection and
 * carry a key mail can be encrypted to. Without one, lookup falls back to a valid client
 * certificate hanko issued for the address with an S/MIME profile.
 * Talks to: the database (smime_certs, certs), the certificate files under state_dir.
 * Must never: accept a certificate it could not encrypt to, or hand out anything but
 * public certificates.
 */
#include "certd.h"
#include "hk-certd-proto.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>

/* ----- checking a certificate ----- */

static X509 *
parse_cert(const char *pem, GError **error)
{
	g_autoptr(BIO) bio = BIO_new_mem_buf(pem, -1);
	X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	if (cert == NULL)
		certd_set_ossl_invalid(error, "cert_pem is not a PEM certificate");
	return cert;
}

static gboolean
check_validity(X509 *cert, GError **error)
{
	gint64 now = certd_now_unix();
	gint64 nb = certd_asn1_time_to_unix(X509_get0_notBefore(cert));
	gint64 na = certd_asn1_time_to_unix(X509_get0_notAfter(cert));

	if (nb > now) {
		g_autofree char *t = certd_time_iso(nb);

		return certd_set_invalid(error, "the certificate is not valid before %s", t);
	}
	if (na <= now) {
		g_autofree char *t = certd_time_iso(na);

		return certd_set_invalid(error, "the certificate expired on %s", t);
	}
	return TRUE;
}

static gboolean
asn1_string_is(const ASN1_STRING *text, const char *email)
{
	gsize len = strlen(email);

	return text != NULL && (gsize)ASN1_STRING_length(text) == len &&
	       g_ascii_strncasecmp((const char *)ASN1_STRING_get0_data(text), email, len) == 0;
}

/* Whether the subjectAltName names email; *any is set when it names an address at all. */
static gboolean
san_has_email(X509 *cert, const char *email, gboolean *any)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	gboolean found = FALSE;

	*any = FALSE;
	for (int i = 0; !found && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);

		if (name->type != GEN_EMAIL)
			continue;
		*any = TRUE;
		found = asn1_string_is(name->d.rfc822Name, email);
	}
	GENERAL_NAMES_free(names);
	return found;
}

static gboolean
subject_has_email(X509 *cert, const char *email)
{
	X509_NAME *subject = X509_get_subject_name(cert);
	int i = -1;

	while ((i = X509_NAME_get_index_by_NID(subject, NID_pkcs9_emailAddress, i)) >= 0) {
		if (asn1_string_is(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)),
		                   email))
			return TRUE;
	}
	return FALSE;
}

/* Mail can be encrypted to RSA (key transport) and EC (key agreement) keys, when
 * keyUsage, if present, allows it. */
static gboolean
check_key(X509 *cert, GError **error)
{
	EVP_PKEY *key = X509_get0_pubkey(cert);
	gboolean has_ku = (X509_get_extension_flags(cert) & EXFLAG_KUSAGE) != 0;
	guint32 ku = X509_get_key_usage(cert);

	if (key == NULL)
		return certd_set_invalid(error, "the certificate's public key cannot be read");
	if (EVP_PKEY_is_a(key, "RSA")) {
		if (has_ku && !(ku & KU_KEY_ENCIPHERMENT))
			return certd_set_invalid(
			        error, "the certificate's keyUsage does not allow "
			               "keyEncipherment, so mail cannot be encrypted to it");
		return TRUE;
	}
	if (EVP_PKEY_is_a(key, "EC")) {
		if (has_ku && !(ku & KU_KEY_AGREEMENT))
			return certd_set_invalid(error,
			                         "the certificate's keyUsage does not allow "
			                         "keyAgreement, so mail cannot be encrypted to it");
		return TRUE;
	}
	return certd_set_invalid(error,
	                         "the certificate has a %s key; mail can be encrypted to RSA or EC "
	                         "keys only",
	                         EVP_PKEY_get0_type_name(key));
}

static gboolean
check_smime_cert(X509 *cert, const char *email, GError **error)
{
	guint32 flags = X509_get_extension_flags(cert);
	gboolean san_emails = FALSE;

	if (!check_validity(cert, error))
		return FALSE;
	/* as X509_check_email(): the subject counts only without rfc822Name alt names */
	if (!san_has_email(cert, email, &san_emails) &&
	    (san_emails || !subject_has_email(cert, email)))
		return certd_set_invalid(
		        error, "the certificate is not for %s (%s does not name it)", email,
		        san_emails ? "its subjectAltName" : "its subject emailAddress");
	if ((flags & EXFLAG_XKUSAGE) &&
	    !(X509_get_extended_key_usage(cert) & (XKU_SMIME | XKU_ANYEKU)))
		return certd_set_invalid(error,
		                         "the certificate's extendedKeyUsage does not include "
		                         "emailProtection");
	return check_key(cert, error);
}

/* ----- the database ----- */

typedef struct {
	char *email; /* as registered or issued */
	char *cert_pem;
	char *fingerprint;
	gint64 not_after;
} SmimeCert;

static void
smime_cert_clear(SmimeCert *c)
{
	g_clear_pointer(&c->email, g_free);
	g_clear_pointer(&c->cert_pem, g_free);
	g_clear_pointer(&c->fingerprint, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SmimeCert, smime_cert_clear)

static gboolean
store_registration(CertdState *state, const char *email, const SmimeCert *c, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        state->db,
	        "INSERT INTO smime_certs (email, cert_pem, fingerprint, not_after, registered)"
	        " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (email) DO UPDATE SET"
	        " cert_pem = ?2, fingerprint = ?3, not_after = ?4, registered = ?5",
	        error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, email, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, c->cert_pem, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 3, c->fingerprint, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 4, c->not_after);
	sqlite3_bind_int64(stmt, 5, certd_now_unix());
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return hk_db_set_error(state->db, error, "smime_certs");
	return TRUE;
}

/* The registered certificate for email; FALSE when there is none. */
static gboolean
find_registered(CertdState *state, const char *email, SmimeCert *c)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        state->db,
	        "SELECT cert_pem, fingerprint, not_after, email FROM smime_certs WHERE email = ?",
	        NULL);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, email, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return FALSE;
	c->cert_pem = g_strdup((const char *)sqlite3_column_text(stmt, 0));
	c->fingerprint = g_strdup((const char *)sqlite3_column_text(stmt, 1));
	c->not_after = sqlite3_column_int64(stmt, 2);
	c->email = g_strdup((const char *)sqlite3_column_text(stmt, 3));
	return TRUE;
}

/* The newest valid client certificate hanko issued for email with an S/MIME profile. */
static gboolean
find_issued(CertdState *state, const char *email, SmimeCert *c)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        state->db,
	        "SELECT dir, fingerprint, not_after, email FROM certs WHERE kind = 'client'"
	        " AND status = 'valid' AND not_after > ? AND profile IN ('smime', 'both')"
	        " AND email = ? COLLATE NOCASE ORDER BY not_after DESC LIMIT 1",
	        NULL);
	g_autofree char *path = NULL;
	g_autoptr(GError) error = NULL;
	gsize len = 0;

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, certd_now_unix());
	sqlite3_bind_text(stmt, 2, email, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return FALSE;
	path = g_build_filename(state->state_dir, (const char *)sqlite3_column_text(stmt, 0),
	                        "cert.pem", NULL);
	if (!certd_store_read(path, &c->cert_pem, &len, &error)) {
		g_warning("smime.lookup: %s", error->message);
		return FALSE;
	}
	c->fingerprint = g_strdup((const char *)sqlite3_column_text(stmt, 1));
	c->not_after = sqlite3_column_int64(stmt, 2);
	c->email = g_strdup((const char *)sqlite3_column_text(stmt, 3));
	return TRUE;
}

static json_object *
describe(const SmimeCert *c, gboolean with_pem)
{
	json_object *result = json_object_new_object();
	g_autofree char *na = certd_time_iso(c->not_after);

	json_object_object_add(result, HK_CERTD_KEY_EMAIL, json_object_new_string(c->email));
	if (with_pem)
		json_object_object_add(result, HK_CERTD_KEY_CERT_PEM,
		                       json_object_new_string(c->cert_pem));
	json_object_object_add(result, HK_CERTD_KEY_FINGERPRINT,
	                       json_object_new_string(c->fingerprint));
	json_object_object_add(result, HK_CERTD_KEY_NOT_AFTER, json_object_new_string(na));
	return result;
}

static void
emit_changed(CertdState *state, const char *email)
{
	certd_emit(state, HK_CERTD_EV_SMIME_CHANGED,
	           certd_json_object_with(HK_CERTD_KEY_EMAIL, email));
}

/* ----- ops ----- */

/* Checks the certificate and fills c with what is stored (the leaf alone, re-encoded). */
static gboolean
prepare_registration(const char *email, const char *pem, SmimeCert *c, GError **error)
{
	g_autoptr(X509) cert = NULL;

	if (!certd_check_email(email, error) || (cert = parse_cert(pem, error)) == NULL ||
	    !check_smime_cert(cert, email, error))
		return FALSE;
	c->email = g_strdup(email);
	c->cert_pem = certd_cert_to_pem(cert);
	c->fingerprint = hk_ossl_fingerprint_cert(cert, error);
	c->not_after = certd_asn1_time_to_unix(X509_get0_notAfter(cert));
	return c->cert_pem != NULL && c->fingerprint != NULL;
}

static void
op_smime_register(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_auto(SmimeCert) c = {0};
	const char *email = hk_json_get_string(params, HK_CERTD_KEY_EMAIL);

	if (!prepare_registration(email, hk_json_get_string(params, HK_CERTD_KEY_CERT_PEM), &c,
	                          &error) ||
	    !store_registration(state, email, &c, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	g_message("S/MIME certificate registered for %s: %s", email, c.fingerprint);
	emit_changed(state, email);
	hk_ipc_request_return(req, describe(&c, FALSE));
}

static void
op_smime_lookup(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_auto(SmimeCert) c = {0};
	const char *email = hk_json_get_string(params, HK_CERTD_KEY_EMAIL);

	if (find_registered(state, email, &c)) {
		if (c.not_after > certd_now_unix()) {
			hk_ipc_request_return(req, describe(&c, TRUE));
			return;
		}
		smime_cert_clear(&c); /* expired: an issued one may do */
	}
	if (find_issued(state, email, &c)) {
		hk_ipc_request_return(req, describe(&c, TRUE));
		return;
	}
	certd_return_not_found(req, "no valid S/MIME certificate for %s", email);
}

static void
op_smime_unregister(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	const char *email = hk_json_get_string(params, HK_CERTD_KEY_EMAIL);
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(state->db, "DELETE FROM smime_certs WHERE email = ?", &error);

	if (stmt == NULL) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	sqlite3_bind_text(stmt, 1, email, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		hk_db_set_error(state->db, &error, "smime_certs");
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	if (sqlite3_changes(hk_db_handle(state->db)) == 0) {
		certd_return_not_found(req, "no S/MIME certificate is registered for %s", email);
		return;
	}
	g_message("S/MIME certificate for %s unregistered", email);
	emit_changed(state, email);
	hk_ipc_request_return(req, certd_json_object_with(HK_CERTD_KEY_EMAIL, email));
}

static const HkIpcParam register_params[] = {
        {HK_CERTD_KEY_EMAIL, json_type_string, TRUE},
        {HK_CERTD_KEY_CERT_PEM, json_type_string, TRUE},
        {0},
};
static const HkIpcParam email_params[] = {
        {HK_CERTD_KEY_EMAIL, json_type_string, TRUE},
        {0},
};

const HkIpcOp certd_smime_ops[] = {
        {HK_CERTD_OP_SMIME_REGISTER, CERTD_SERVICE, register_params, op_smime_register,
         HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_SMIME_LOOKUP, CERTD_SERVICE, email_params, op_smime_lookup},
        {HK_CERTD_OP_SMIME_UNREGISTER, CERTD_SERVICE, email_params, op_smime_unregister,
         HK_IPC_OP_AUDIT},
        {0},
};
