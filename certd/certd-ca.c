/*
 * certd-ca: hanko's private CA: creating or importing it (ca.init, ca.import), showing
 * and exporting its certificate (ca.show, ca.export), and signing for the other parts.
 *
 * Files: state_dir/ca/ca.key (0600, PKCS#8), ca.crt, crl.pem, crl.der. A new CA is
 * written to ca.new/ and renamed into place, so a crash leaves the old state or the new.
 * Talks to: OpenSSL, the state directory.
 * Must never: let the CA key leave this process, be logged, or be written wider than 0600.
 */
#include "certd.h"
#include "hk-certd-proto.h"

#include <errno.h>
#include <gio/gio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <sys/stat.h>

#define CA_DAYS_DEFAULT 3650
#define CA_DAYS_MAX     9125 /* 25 years */

static const char *const ca_keys[] = {"rsa:3072", "rsa:4096", "ec:p256", "ec:p384", NULL};

static char *
ca_dir(CertdState *state, const char *name)
{
	return g_build_filename(state->state_dir, name, NULL);
}

gboolean
certd_ca_require(CertdState *state, GError **error)
{
	if (state->ca_cert != NULL && state->ca_key != NULL)
		return TRUE;
	g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_NOT_FOUND,
	                    "there is no CA yet: create one with \"hankoctl ca init --cn NAME\" "
	                    "or import one with \"hankoctl ca import\"");
	return FALSE;
}

gboolean
certd_ca_sign(CertdState *state, X509 *cert, GError **error)
{
	if (!certd_ca_require(state, error))
		return FALSE;
	if (X509_sign(cert, state->ca_key, EVP_sha256()) <= 0)
		return hk_ossl_set_error(error, "cannot sign the certificate");
	return TRUE;
}

static EVP_PKEY *
read_key_file(const char *path, GError **error)
{
	g_autofree char *data = NULL;
	gsize len = 0;
	g_autoptr(BIO) bio = NULL;
	EVP_PKEY *key;

	if (!g_file_get_contents(path, &data, &len, error))
		return NULL;
	bio = BIO_new_mem_buf(data, (int)len);
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	OPENSSL_cleanse(data, len);
	if (key == NULL)
		hk_ossl_set_error(error, "%s: not a private key", path);
	return key;
}

/* An unfinished ca.init/ca.import leaves ca.new/ beside (or instead of) ca/. */
static void
remove_unfinished(CertdState *state)
{
	g_autofree char *tmp = ca_dir(state, "ca.new");
	g_autoptr(GError) error = NULL;

	if (!g_file_test(tmp, G_FILE_TEST_EXISTS))
		return;
	g_message("removing %s, left by a CA operation that did not finish", tmp);
	if (!certd_store_remove_tree(tmp, &error))
		g_warning("%s", error->message);
}

gboolean
certd_ca_load(CertdState *state, GError **error)
{
	g_autofree char *dir = ca_dir(state, "ca");
	g_autofree char *cert_path = g_build_filename(dir, "ca.crt", NULL);
	g_autofree char *key_path = g_build_filename(dir, "ca.key", NULL);
	struct stat st;

	remove_unfinished(state);
	if (!g_file_test(cert_path, G_FILE_TEST_EXISTS)) {
		g_message("no CA yet; create one with hankoctl ca init");
		return TRUE;
	}
	if (stat(key_path, &st) == 0 && (st.st_mode & 077) != 0) {
		g_warning("%s had mode %04o; setting 0600", key_path, st.st_mode & 07777);
		chmod(key_path, 0600);
	}
	state->ca_cert = hk_ossl_load_cert_file(cert_path, error);
	if (state->ca_cert == NULL)
		return FALSE;
	state->ca_key = read_key_file(key_path, error);
	if (state->ca_key == NULL)
		return FALSE;
	if (X509_check_private_key(state->ca_cert, state->ca_key) != 1)
		return hk_ossl_set_error(error, "%s does not belong to %s", key_path, cert_path);
	return TRUE;
}

/* ----- making a CA ----- */

typedef struct {
	char *cn;
	char *key_spec;
	guint days;
	char *cert_pem; /* ca.import */
	char *key_pem;  /* ca.import; cleansed on free */
	char *passphrase;
	X509 *cert;
	EVP_PKEY *key;
} CaJob;

static void
ca_job_free(gpointer data)
{
	CaJob *job = data;

	g_free(job->cn);
	g_free(job->key_spec);
	g_free(job->cert_pem);
	hk_secret_free(job->key_pem);
	hk_secret_free(job->passphrase);
	X509_free(job->cert);
	EVP_PKEY_free(job->key);
	g_free(job);
}

static gboolean
ca_build_cert(CaJob *job, GError **error)
{
	g_autoptr(X509) cert = X509_new();
	g_autoptr(ASN1_INTEGER) serial = certd_serial_random(error);
	X509_NAME *name = X509_get_subject_name(cert);

	if (serial == NULL)
		return FALSE;
	if (!X509_set_version(cert, X509_VERSION_3) || !X509_set_serialNumber(cert, serial) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const guchar *)job->cn, -1, -1,
	                                0) ||
	    !X509_set_issuer_name(cert, name) || !X509_set_pubkey(cert, job->key))
		return hk_ossl_set_error(error, "cannot build the CA certificate");
	if (!certd_cert_set_validity(cert, job->days, error) ||
	    !certd_cert_add_ext(cert, NULL, NID_basic_constraints, "critical,CA:TRUE", error) ||
	    !certd_cert_add_ext(cert, NULL, NID_key_usage, "critical,keyCertSign,cRLSign", error) ||
	    !certd_cert_add_ext(cert, NULL, NID_subject_key_identifier, "hash", error) ||
	    !certd_cert_add_ext(cert, NULL, NID_authority_key_identifier, "keyid:always", error))
		return FALSE;
	if (X509_sign(cert, job->key, EVP_sha256()) <= 0)
		return hk_ossl_set_error(error, "cannot sign the CA certificate");
	job->cert = g_steal_pointer(&cert);
	return TRUE;
}

static gboolean
ca_init_work(CertdState *state, gpointer data, GError **error)
{
	CaJob *job = data;

	job->key = certd_key_generate(job->key_spec, error);
	return job->key != NULL && ca_build_cert(job, error);
}

static char *
key_to_pem(EVP_PKEY *key, gsize *len)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	char *copy;
	long n;

	if (!PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL))
		return NULL;
	n = BIO_get_mem_data(bio, &data);
	copy = g_malloc(n + 1);
	memcpy(copy, data, n);
	copy[n] = '\0';
	OPENSSL_cleanse(data, n);
	*len = (gsize)n;
	return copy;
}

/* Writes ca.new/{ca.key,ca.crt} and renames ca.new to ca. */
static gboolean
ca_write(CertdState *state, X509 *cert, EVP_PKEY *key, GError **error)
{
	g_autofree char *tmp = ca_dir(state, "ca.new");
	g_autofree char *dir = ca_dir(state, "ca");
	g_autofree char *cert_pem = certd_cert_to_pem(cert);
	gsize key_len = 0;
	g_autoptr(HkSecret) key_pem = key_to_pem(key, &key_len);

	CertdStoreFile files[2];

	if (cert_pem == NULL || key_pem == NULL)
		return hk_ossl_set_error(error, "cannot encode the CA");
	files[0] = (CertdStoreFile){"ca.key", key_pem, key_len, 0600};
	files[1] = (CertdStoreFile){"ca.crt", cert_pem, strlen(cert_pem), 0644};
	if (!certd_store_write_dir(tmp, files, G_N_ELEMENTS(files), error))
		return FALSE;
	if (rename(tmp, dir) != 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "cannot rename %s: %s",
		            tmp, g_strerror(errno));
		return FALSE;
	}
	return certd_store_sync_dir(state->state_dir, error);
}

static json_object *
ca_describe(CertdState *state)
{
	json_object *result = json_object_new_object();
	X509 *cert = state->ca_cert;
	char cn[256] = "";
	g_autofree char *fp = hk_ossl_fingerprint_cert(cert, NULL);
	g_autofree char *serial = certd_serial_to_hex(X509_get0_serialNumber(cert));
	g_autofree char *key = certd_key_describe(state->ca_key);
	g_autofree char *nb = certd_time_iso(certd_asn1_time_to_unix(X509_get0_notBefore(cert)));
	g_autofree char *na = certd_time_iso(certd_asn1_time_to_unix(X509_get0_notAfter(cert)));
	g_autofree char *subject = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);

	X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
	json_object_object_add(result, HK_CERTD_KEY_CN, json_object_new_string(cn));
	json_object_object_add(result, HK_CERTD_KEY_SUBJECT, json_object_new_string(subject));
	json_object_object_add(result, HK_CERTD_KEY_KEY, json_object_new_string(key));
	json_object_object_add(result, HK_CERTD_KEY_SERIAL, json_object_new_string(serial));
	json_object_object_add(result, HK_CERTD_KEY_FINGERPRINT,
	                       json_object_new_string(fp ? fp : ""));
	json_object_object_add(result, HK_CERTD_KEY_NOT_BEFORE, json_object_new_string(nb));
	json_object_object_add(result, HK_CERTD_KEY_NOT_AFTER, json_object_new_string(na));
	return result;
}

/* Main loop: the new CA goes to disk, into the state, and a first CRL is made. */
static void
ca_install_done(CertdState *state, HkIpcRequest *req, gpointer data, const GError *work_error)
{
	CaJob *job = data;
	g_autoptr(GError) error = NULL;
	json_object *result;

	if (work_error != NULL) {
		hk_ipc_request_return_gerror(req, work_error);
		return;
	}
	if (state->ca_cert != NULL) { /* another ca.init finished first */
		hk_ipc_request_return_error(req, HK_IPC_ERR_CONFLICT, "a CA already exists");
		return;
	}
	if (!ca_write(state, job->cert, job->key, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	state->ca_cert = g_steal_pointer(&job->cert);
	state->ca_key = g_steal_pointer(&job->key);
	if (!certd_crl_update(state, &error))
		g_warning("first CRL: %s", error->message);
	certd_crl_schedule(state);
	result = ca_describe(state);
	g_message("CA installed: %s, %s, fingerprint %s",
	          hk_json_get_string(result, HK_CERTD_KEY_SUBJECT),
	          hk_json_get_string(result, HK_CERTD_KEY_KEY),
	          hk_json_get_string(result, HK_CERTD_KEY_FINGERPRINT));
	certd_emit(state, HK_CERTD_EV_CA_CHANGED, NULL);
	hk_ipc_request_return(req, result);
}

static gboolean
refuse_if_ca_exists(CertdState *state, HkIpcRequest *req)
{
	char cn[256] = "";

	if (state->ca_cert == NULL)
		return FALSE;
	X509_NAME_get_text_by_NID(X509_get_subject_name(state->ca_cert), NID_commonName, cn,
	                          sizeof(cn));
	hk_ipc_request_return_error(req, HK_IPC_ERR_CONFLICT,
	                            "a CA already exists (CN=%s); every certificate hanko issued "
	                            "depends on it, so it is not replaced",
	                            cn);
	return TRUE;
}

static void
op_ca_init(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	const char *cn = hk_json_get_string(params, HK_CERTD_KEY_CN);
	const char *key = hk_json_get_string(params, HK_CERTD_KEY_KEY);
	gint64 days = hk_json_get_int(params, HK_CERTD_KEY_DAYS, CA_DAYS_DEFAULT);
	CaJob *job;

	if (refuse_if_ca_exists(state, req))
		return;
	if (key == NULL)
		key = "rsa:3072";
	if (!certd_check_cn(cn, &error) || !certd_key_spec_check(key, ca_keys, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	if (days < 1 || days > CA_DAYS_MAX) {
		certd_return_invalid(req, "CA validity must be 1..%d days", CA_DAYS_MAX);
		return;
	}
	job = g_new0(CaJob, 1);
	job->cn = g_strdup(cn);
	job->key_spec = g_strdup(key);
	job->days = (guint)days;
	certd_work_start(state, req, ca_init_work, ca_install_done, job, ca_job_free);
}

static int
refuse_prompt(char *buf, int size, int rwflag, void *u)
{
	return -1; /* an encrypted key without a passphrase: never prompt */
}

/* Parses what ca.import was given: a CA certificate and its key. */
static gboolean
ca_import_work(CertdState *state, gpointer data, GError **error)
{
	CaJob *job = data;
	g_autoptr(BIO) cbio = BIO_new_mem_buf(job->cert_pem, -1);
	g_autoptr(BIO) kbio = BIO_new_mem_buf(job->key_pem, -1);
	BASIC_CONSTRAINTS *bc;
	gboolean is_ca;

	job->cert = PEM_read_bio_X509(cbio, NULL, NULL, NULL);
	if (job->cert == NULL)
		return hk_ossl_set_error(error, "the CA certificate is not a PEM certificate");
	bc = X509_get_ext_d2i(job->cert, NID_basic_constraints, NULL, NULL);
	is_ca = bc != NULL && bc->ca;
	BASIC_CONSTRAINTS_free(bc);
	if (!is_ca) {
		g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT,
		                    "the certificate is not a CA certificate (basicConstraints "
		                    "CA:TRUE is missing)");
		return FALSE;
	}
	job->key = job->passphrase ? PEM_read_bio_PrivateKey(kbio, NULL, NULL, job->passphrase)
	                           : PEM_read_bio_PrivateKey(kbio, NULL, refuse_prompt, NULL);
	if (job->key == NULL) {
		g_autoptr(GError) reason = NULL;

		hk_ossl_set_error(&reason, "cannot read the CA key (wrong passphrase, or not a PEM "
		                           "private key)");
		g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT,
		                    reason->message);
		return FALSE;
	}
	if (X509_check_private_key(job->cert, job->key) != 1) {
		ERR_clear_error();
		g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT,
		                    "the key does not belong to the CA certificate");
		return FALSE;
	}
	return TRUE;
}

static void
op_ca_import(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	CaJob *job;

	if (refuse_if_ca_exists(state, req))
		return;
	job = g_new0(CaJob, 1);
	job->cert_pem = g_strdup(hk_json_get_string(params, HK_CERTD_KEY_CERT_PEM));
	job->key_pem = g_strdup(hk_json_get_string(params, HK_CERTD_KEY_KEY_PEM));
	job->passphrase = g_strdup(hk_json_get_string(params, HK_CERTD_KEY_PASSPHRASE));
	certd_work_start(state, req, ca_import_work, ca_install_done, job, ca_job_free);
}

static void
op_ca_show(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;

	if (!certd_ca_require(state, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	hk_ipc_request_return(req, ca_describe(state));
}

static json_object *
ca_export(CertdState *state, const char *format, GError **error)
{
	json_object *result = json_object_new_object();
	g_autofree char *pem = certd_cert_to_pem(state->ca_cert);

	if (g_strcmp0(format, "der") == 0) {
		guchar *der = NULL;
		int len = i2d_X509(state->ca_cert, &der);

		json_object_object_add(result, HK_CERTD_KEY_DER_BASE64,
		                       certd_json_base64(der, (gsize)MAX(len, 0)));
		OPENSSL_free(der);
	} else if (g_strcmp0(format, "bundle") == 0) {
		g_autofree char *subject =
		        X509_NAME_oneline(X509_get_subject_name(state->ca_cert), NULL, 0);
		g_autofree char *bundle =
		        g_strdup_printf("# hanko CA\n# subject=%s\n%s", subject, pem);

		json_object_object_add(result, HK_CERTD_KEY_PEM, json_object_new_string(bundle));
	} else {
		json_object_object_add(result, HK_CERTD_KEY_PEM, json_object_new_string(pem));
	}
	json_object_object_add(result, HK_CERTD_KEY_FORMAT, json_object_new_string(format));
	return result;
}

static void
op_ca_export(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	const char *format = hk_json_get_string(params, HK_CERTD_KEY_FORMAT);

	if (format == NULL)
		format = "pem";
	if (!certd_ca_require(state, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	if (g_strcmp0(format, "pem") != 0 && g_strcmp0(format, "der") != 0 &&
	    g_strcmp0(format, "bundle") != 0) {
		certd_return_invalid(req, "format must be pem, der or bundle, not \"%s\"", format);
		return;
	}
	hk_ipc_request_return(req, ca_export(state, format, &error));
}

static const HkIpcParam ca_init_params[] = {
        {HK_CERTD_KEY_CN, json_type_string, TRUE},
        {HK_CERTD_KEY_KEY, json_type_string},
        {HK_CERTD_KEY_DAYS, json_type_int},
        {0},
};
static const HkIpcParam ca_import_params[] = {
        {HK_CERTD_KEY_CERT_PEM, json_type_string, TRUE},
        {HK_CERTD_KEY_KEY_PEM, json_type_string, TRUE},
        {HK_CERTD_KEY_PASSPHRASE, json_type_string},
        {0},
};
static const HkIpcParam ca_export_params[] = {
        {HK_CERTD_KEY_FORMAT, json_type_string},
        {0},
};

const HkIpcOp certd_ca_ops[] = {
        {HK_CERTD_OP_CA_INIT, CERTD_ADMIN, ca_init_params, op_ca_init, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_CA_IMPORT, CERTD_ADMIN, ca_import_params, op_ca_import, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_CA_SHOW, CERTD_SERVICE, NULL, op_ca_show},
        {HK_CERTD_OP_CA_EXPORT, CERTD_SERVICE, ca_export_params, op_ca_export},
        {HK_CERTD_OP_CA_CRL, CERTD_SERVICE, NULL, certd_op_ca_crl},
        {0},
};
