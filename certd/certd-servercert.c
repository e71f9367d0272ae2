/*
 * certd-servercert: server certificates for Postfix and the S/MIME gateway, after seed 002
 * (IMSVA's certificate replacement guide). csr.create makes a key and a signing request;
 * cert.import takes the CA's answer, or a certificate with its own key, and orders its
 * chain; cert.export hands certificate and key back as PEM or PKCS#12; cert.assign
 * installs them for a service and runs the service's reload command. In-use certificates
 * close to expiry are logged once a day.
 *
 * Files: state_dir/certs/server-<name>/ holds key.pem (0600, PKCS#8), csr.pem (requests),
 * cert.pem (the leaf) and chain.pem (leaf, then intermediates upward). For each assigned
 * service, service_dir/<service>.pem (0600: key, leaf, intermediates) is the one file
 * Postfix's smtpd_tls_chain_files reads.
 *
 * Talks to: OpenSSL, the database, the state and service directories, reload commands.
 *
 * Must never: put a key or a passphrase into a log line, an audit row or an error
 * message; write a key wider than 0600; block the main loop while a reload command runs.
 */
#include "certd.h"
#include "hk-certd-proto.h"

#include <errno.h>
#include <gio/gio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NAME_MAX_LEN      64
#define RELOAD_OUTPUT_MAX 4096 /* bytes of a reload command's output kept for the reply */
#define RELOAD_GRACE_MS   500  /* for its output once the command has exited */
#define EXPIRY_INTERVAL_S (24 * 3600)
#define DAY_S             (24 * 3600)

#define KEY_FILE   "key.pem"
#define CSR_FILE   "csr.pem"
#define CERT_FILE  "cert.pem"  /* the leaf alone */
#define CHAIN_FILE "chain.pem" /* the leaf, then its intermediates upward */

static const char *const csr_key_specs[] = {"rsa:2048", "rsa:4096", "ec:p256", NULL};

typedef struct {
	const char *name;
	const char *reload_key; /* [certd] reload_<service> */
} Service;

static const Service services[] = {
        {"smtpd", CERTD_CONF_RELOAD_SMTPD},
        {"smtp", CERTD_CONF_RELOAD_SMTP},
        {"submission", CERTD_CONF_RELOAD_SUBMISSION},
        {"gateway", CERTD_CONF_RELOAD_GATEWAY},
        {NULL},
};

/* ----- errors ----- */

static gboolean fail(GError **error, HkIpcError code, const char *format, ...) G_GNUC_PRINTF(3, 4);

static gboolean
fail(GError **error, HkIpcError code, const char *format, ...)
{
	g_autofree char *message = NULL;
	va_list args;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error_literal(error, HK_IPC_ERROR, code, message);
	return FALSE;
}

static gboolean ossl_invalid(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* invalid_argument "<what>: <OpenSSL's reasons>", for input OpenSSL refused. */
static gboolean
ossl_invalid(GError **error, const char *format, ...)
{
	g_autoptr(GError) reason = NULL;
	g_autofree char *what = NULL;
	va_list args;

	va_start(args, format);
	what = g_strdup_vprintf(format, args);
	va_end(args);
	hk_ossl_set_error(&reason, "%s", what);
	g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT, reason->message);
	return FALSE;
}

/* ----- small pieces ----- */

static gboolean
check_name(const char *name, GError **error)
{
	gsize len = name ? strlen(name) : 0;

	if (len == 0 || len > NAME_MAX_LEN)
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		            "a certificate name must have 1..%d characters", NAME_MAX_LEN);
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isalnum(name[i]) && strchr("._-", name[i]) == NULL)
			return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
			            "certificate name \"%s\": use only letters, digits, '.', '_' "
			            "and '-'",
			            name);
	}
	return TRUE;
}

static const Service *
find_service(const char *name)
{
	for (const Service *s = services; s->name != NULL; s++) {
		if (g_strcmp0(s->name, name) == 0)
			return s;
	}
	return NULL;
}

/* A DNS name as certificates carry it: letters, digits and hyphens between dots, an
 * optional leading "*." for a wildcard; not an IP address. */
static gboolean
host_name_ok(const char *name)
{
	g_auto(GStrv) labels = NULL;

	if (g_str_has_prefix(name, "*."))
		name += 2;
	if (*name == '\0' || strlen(name) > 253 || g_hostname_is_ip_address(name))
		return FALSE;
	labels = g_strsplit(name, ".", -1);
	for (guint i = 0; labels[i] != NULL; i++) {
		gsize n = strlen(labels[i]);

		if (n == 0 || n > 63 || labels[i][0] == '-' || labels[i][n - 1] == '-')
			return FALSE;
		for (gsize j = 0; j < n; j++) {
			if (!g_ascii_isalnum(labels[i][j]) && labels[i][j] != '-')
				return FALSE;
		}
	}
	return TRUE;
}

/* Copies what a memory BIO holds and wipes the BIO's copy (it may hold a key). */
static char *
bio_take(BIO *bio, gsize *len)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	char *copy = g_malloc((gsize)n + 1);

	memcpy(copy, data, (gsize)n);
	copy[n] = '\0';
	OPENSSL_cleanse(data, (size_t)n);
	if (len != NULL)
		*len = (gsize)n;
	return copy;
}

/* "C = JP, O = Example, CN = mail.example.jp", as openssl x509 -subject shows it, in UTF-8. */
static char *
name_text(const X509_NAME *name)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());

	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) < 0) {
		ERR_clear_error();
		return g_strdup("");
	}
	return bio_take(bio, NULL);
}

/* The first CN of a name in UTF-8; NULL when there is none. */
static char *
name_cn(const X509_NAME *name)
{
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	char *copy;
	int len;

	if (i < 0)
		return NULL;
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (len < 0) {
		ERR_clear_error();
		return NULL;
	}
	copy = g_strndup((const char *)utf8, (gsize)len);
	OPENSSL_free(utf8);
	return copy;
}

static char *
time_text(const ASN1_TIME *time)
{
	return certd_time_iso(certd_asn1_time_to_unix(time));
}

/*
 * The key as PEM: PKCS#8, or with traditional PKCS#1 ("RSA PRIVATE KEY") / SEC1 ("EC
 * PRIVATE KEY"); encrypted with AES-256-CBC when a password is given. A secret.
 */
static char *
key_to_pem(EVP_PKEY *key, gboolean traditional, const char *password, gsize *len, GError **error)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	const EVP_CIPHER *cipher = password ? EVP_aes_256_cbc() : NULL;
	unsigned char *pass = (unsigned char *)password;
	int pass_len = password ? (int)strlen(password) : 0;
	int ok;

	if (traditional)
		ok = PEM_write_bio_PrivateKey_traditional(bio, key, cipher, pass, pass_len, NULL,
		                                          NULL);
	else
		ok = PEM_write_bio_PrivateKey(bio, key, cipher, pass, pass_len, NULL, NULL);
	if (!ok) {
		hk_ossl_set_error(error, "cannot encode the private key");
		return NULL;
	}
	return bio_take(bio, len);
}

static int
refuse_prompt(char *buf, int size, int rwflag, void *u)
{
	return -1; /* an encrypted key without a passphrase: never prompt */
}

/* Finds the first private key block of pem; *encrypted tells whether it needs a passphrase. */
static gboolean
key_block_find(const char *pem, gboolean *encrypted)
{
	g_autoptr(BIO) bio = BIO_new_mem_buf(pem, -1);
	char *label = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len = 0;
	gboolean found = FALSE;

	while (!found && PEM_read_bio(bio, &label, &header, &data, &len)) {
		found = g_str_has_suffix(label, "PRIVATE KEY");
		*encrypted = g_strcmp0(label, PEM_STRING_PKCS8) == 0 ||
		             strstr(header, "ENCRYPTED") != NULL;
		OPENSSL_free(label);
		OPENSSL_free(header);
		OPENSSL_clear_free(data, (size_t)len);
	}
	ERR_clear_error();
	return found;
}

/* Reads a PEM private key in any of the forms seed 002 meets; never prompts. */
static EVP_PKEY *
key_from_pem(const char *pem, const char *passphrase, GError **error)
{
	g_autoptr(BIO) bio = BIO_new_mem_buf(pem, -1);
	gboolean encrypted = FALSE;
	EVP_PKEY *key;

	if (!key_block_find(pem, &encrypted)) {
		fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		     "no private key found in key_pem (expected a PEM block such as "
		     "\"-----BEGIN PRIVATE KEY-----\")");
		return NULL;
	}
	if (encrypted && (passphrase == NULL || *passphrase == '\0')) {
		fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		     "wrong passphrase: key_pem is encrypted and no passphrase was given");
		return NULL;
	}
	if (passphrase != NULL)
		key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)passphrase);
	else
		key = PEM_read_bio_PrivateKey(bio, NULL, refuse_prompt, NULL);
	if (key == NULL && encrypted) {
		ERR_clear_error();
		fail(error, HK_IPC_ERROR_INVALID_ARGUMENT, "wrong passphrase");
	} else if (key == NULL) {
		ossl_invalid(error, "key_pem cannot be read");
	}
	return key;
}

/* Reads a key certd wrote itself (unencrypted PKCS#8). */
static EVP_PKEY *
key_from_file(const char *path, GError **error)
{
	g_autoptr(HkSecret) pem = NULL;
	g_autoptr(BIO) bio = NULL;
	EVP_PKEY *key;

	if (!certd_store_read(path, &pem, NULL, error))
		return NULL;
	bio = BIO_new_mem_buf(pem, -1);
	key = PEM_read_bio_PrivateKey(bio, NULL, refuse_prompt, NULL);
	if (key == NULL)
		hk_ossl_set_error(error, "%s: not a private key", path);
	return key;
}

static gboolean
check_key_type(EVP_PKEY *key, GError **error)
{
	if (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) < 2048)
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		            "the key is RSA with %d bits; at least 2048 are required",
		            EVP_PKEY_get_bits(key));
	if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "EC") ||
	    EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
		return TRUE;
	return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
	            "unsupported key type %s: use RSA (2048 bits or more), EC or Ed25519",
	            EVP_PKEY_get0_type_name(key));
}

static gboolean
is_cert_label(const char *label)
{
	return g_strcmp0(label, PEM_STRING_X509) == 0 ||
	       g_strcmp0(label, PEM_STRING_X509_OLD) == 0 ||
	       g_strcmp0(label, PEM_STRING_X509_TRUSTED) == 0;
}

/* Reads PEM block n: TRUE with *cert set, TRUE with *cert NULL at the end of the input,
 * FALSE when the block is not a certificate. */
static gboolean
next_cert_block(BIO *bio, guint n, X509 **cert, GError **error)
{
	char *label = NULL, *header = NULL;
	unsigned char *data = NULL;
	const unsigned char *p;
	long len = 0;
	gboolean ok = TRUE;

	*cert = NULL;
	if (!PEM_read_bio(bio, &label, &header, &data, &len)) {
		if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE)
			return ossl_invalid(error, "cert_pem: PEM block %u cannot be read", n);
		ERR_clear_error();
		return TRUE;
	}
	if (!is_cert_label(label)) {
		ok = fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		          "cert_pem: PEM block %u is not a certificate: it is a \"%s\" block", n,
		          label);
	} else {
		p = data;
		*cert = d2i_X509_AUX(NULL, &p, len);
		if (*cert == NULL)
			ok = ossl_invalid(error, "cert_pem: PEM block %u is not a certificate", n);
	}
	OPENSSL_free(label);
	OPENSSL_free(header);
	OPENSSL_clear_free(data, (size_t)len);
	return ok;
}

/* Every PEM block of pem, each of which must be a certificate; at least one. */
static HkX509Stack *
certs_from_pem(const char *pem, GError **error)
{
	g_autoptr(BIO) bio = BIO_new_mem_buf(pem, -1);
	g_autoptr(HkX509Stack) certs = sk_X509_new_null();
	X509 *cert = NULL;

	for (guint n = 1;; n++) {
		if (!next_cert_block(bio, n, &cert, error))
			return NULL;
		if (cert == NULL)
			break;
		sk_X509_push(certs, cert);
	}
	if (sk_X509_num(certs) == 0) {
		fail(error, HK_IPC_ERROR_INVALID_ARGUMENT, "no certificate found in cert_pem");
		return NULL;
	}
	return g_steal_pointer(&certs);
}

static char *
certs_to_pem(X509 *leaf, HkX509Stack *chain)
{
	g_autoptr(GString) pem = g_string_new(NULL);

	for (int i = -1; i < sk_X509_num(chain); i++) {
		g_autofree char *one = certd_cert_to_pem(i < 0 ? leaf : sk_X509_value(chain, i));

		g_string_append(pem, one ? one : "");
	}
	return g_string_free(g_steal_pointer(&pem), FALSE);
}

/* ----- the certs table ----- */

/* A server certificate's row, as the ops that act on one need it. */
typedef struct {
	gint64 id;
	char *kind;
	char *status;
	char *dir; /* relative to state_dir */
	gint64 not_after;
} ServerRow;

static void
server_row_clear(ServerRow *row)
{
	g_clear_pointer(&row->kind, g_free);
	g_clear_pointer(&row->status, g_free);
	g_clear_pointer(&row->dir, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ServerRow, server_row_clear)

static char *
column_dup(sqlite3_stmt *stmt, int column)
{
	return g_strdup((const char *)sqlite3_column_text(stmt, column));
}

/* Loads the row named name; FALSE with *error unset when there is none. */
static gboolean
row_find(CertdState *state, const char *name, ServerRow *row, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        state->db, "SELECT id, kind, status, dir, not_after FROM certs WHERE name = ?",
	        error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_TRANSIENT);
	switch (sqlite3_step(stmt)) {
	case SQLITE_ROW:
		break;
	case SQLITE_DONE:
		return FALSE;
	default:
		return hk_db_set_error(state->db, error, "cannot read the certificates");
	}
	row->id = sqlite3_column_int64(stmt, 0);
	row->kind = column_dup(stmt, 1);
	row->status = column_dup(stmt, 2);
	row->dir = column_dup(stmt, 3);
	row->not_after = sqlite3_column_int64(stmt, 4);
	return TRUE;
}

/* Loads a server certificate's row; not_found when there is none. */
static gboolean
row_load(CertdState *state, const char *name, ServerRow *row, GError **error)
{
	g_autoptr(GError) local = NULL;

	if (row_find(state, name, row, &local) && g_strcmp0(row->kind, "server") == 0)
		return TRUE;
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	return fail(error, HK_IPC_ERROR_NOT_FOUND, "no server certificate named \"%s\"", name);
}

/* conflict when a certificate of any kind already has this name. */
static gboolean
name_free(CertdState *state, const char *name, GError **error)
{
	g_auto(ServerRow) row = {0};
	g_autoptr(GError) local = NULL;

	if (row_find(state, name, &row, &local))
		return fail(error, HK_IPC_ERROR_CONFLICT,
		            "a certificate named \"%s\" already exists (status %s)", name,
		            row.status);
	if (local != NULL) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	return TRUE;
}

/* The columns csr.create and cert.import fill in. */
typedef struct {
	char *name;
	char *status;
	char *dir;
	char *serial;
	char *cn;
	char *key_type;
	char *subject;
	char *issuer;
	char *fingerprint;
	char *pubkey_fp;
	gint64 not_before; /* 0: NULL */
	gint64 not_after;
} CertRow;

static void
cert_row_clear(CertRow *row)
{
	char **strings[] = {&row->name,        &row->status,   &row->dir,     &row->serial,
	                    &row->cn,          &row->key_type, &row->subject, &row->issuer,
	                    &row->fingerprint, &row->pubkey_fp};

	for (guint i = 0; i < G_N_ELEMENTS(strings); i++)
		g_clear_pointer(strings[i], g_free);
}

static void
bind_time(sqlite3_stmt *stmt, int index, gint64 value)
{
	if (value != 0)
		sqlite3_bind_int64(stmt, index, value);
	else
		sqlite3_bind_null(stmt, index);
}

/* Binds ?1..?11 the same way for INSERT and UPDATE. */
static void
cert_row_bind(sqlite3_stmt *stmt, const CertRow *row)
{
	sqlite3_bind_text(stmt, 1, row->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, row->serial, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 3, row->cn, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 4, row->key_type, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 5, row->subject, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 6, row->issuer, -1, SQLITE_TRANSIENT);
	bind_time(stmt, 7, row->not_before);
	bind_time(stmt, 8, row->not_after);
	sqlite3_bind_text(stmt, 9, row->fingerprint, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 10, row->pubkey_fp, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 11, row->status, -1, SQLITE_TRANSIENT);
}

static gboolean
row_insert_txn(HkDb *db, gpointer data, GError **error)
{
	const CertRow *row = data;
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        db,
	        "INSERT INTO certs (kind, name, serial, cn, key_type, subject, issuer, not_before,"
	        " not_after, fingerprint, pubkey_fingerprint, status, dir, created)"
	        " VALUES ('server', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	        error);

	if (stmt == NULL)
		return FALSE;
	cert_row_bind(stmt, row);
	sqlite3_bind_text(stmt, 12, row->dir, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 13, g_get_real_time() / G_USEC_PER_SEC);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return hk_db_set_error(db, error, "cannot record the certificate");
	return TRUE;
}

/* A pending request gets its certificate. */
static gboolean
row_fulfil_txn(HkDb *db, gpointer data, GError **error)
{
	const CertRow *row = data;
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        db,
	        "UPDATE certs SET serial = ?2, cn = ?3, key_type = ?4, subject = ?5, issuer = ?6,"
	        " not_before = ?7, not_after = ?8, fingerprint = ?9, pubkey_fingerprint = ?10,"
	        " status = ?11 WHERE name = ?1 AND kind = 'server' AND status = 'requested'",
	        error);

	if (stmt == NULL)
		return FALSE;
	cert_row_bind(stmt, row);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return hk_db_set_error(db, error, "cannot record the certificate");
	if (sqlite3_changes(hk_db_handle(db)) != 1)
		return fail(error, HK_IPC_ERROR_CONFLICT, "request \"%s\" is no longer pending",
		            row->name);
	return TRUE;
}

static char *
server_dir_rel(const char *name)
{
	g_autofree char *base = g_strconcat("server-", name, NULL);

	return g_build_filename("certs", base, NULL);
}

static json_object *
changed_event(const char *name, const char *status)
{
	json_object *data = json_object_new_object();

	json_object_object_add(data, HK_CERTD_KEY_KIND, json_object_new_string("server"));
	json_object_object_add(data, HK_CERTD_KEY_NAME, json_object_new_string(name));
	json_object_object_add(data, HK_CERTD_KEY_STATUS, json_object_new_string(status));
	return data;
}

/* ----- csr.create ----- */

typedef struct {
	const char *param;
	const char *field; /* as X509_NAME_add_entry_by_txt knows it */
	int max;           /* characters (RFC 5280 upper bounds) */
} SubjectField;

/* In the order openssl req writes them. */
static const SubjectField subject_fields[] = {
        {HK_CERTD_KEY_COUNTRY, "C", 2},
        {HK_CERTD_KEY_STATE, "ST", 128},
        {HK_CERTD_KEY_LOCALITY, "L", 128},
        {HK_CERTD_KEY_ORG, "O", 64},
        {HK_CERTD_KEY_OU, "OU", 64},
        {HK_CERTD_KEY_CN, "CN", 64},
        {HK_CERTD_KEY_EMAIL, "emailAddress", 128},
};

#define N_SUBJECT  G_N_ELEMENTS(subject_fields)
#define SUBJECT_C  0 /* indexes into subject_fields */
#define SUBJECT_CN 5

typedef struct {
	char *name;
	char *key_spec;
	char *subject[N_SUBJECT]; /* NULL: absent */
	GPtrArray *san;           /* "DNS:host", "IP:addr", "email:addr" */
	/* made by the worker */
	EVP_PKEY *key;
	X509_REQ *req;
} CsrJob;

static void
csr_job_free(gpointer data)
{
	CsrJob *job = data;

	g_free(job->name);
	g_free(job->key_spec);
	for (guint i = 0; i < N_SUBJECT; i++)
		g_free(job->subject[i]);
	g_ptr_array_unref(job->san);
	EVP_PKEY_free(job->key);
	X509_REQ_free(job->req);
	g_free(job);
}

/* Printable UTF-8 of 1..max characters. */
static gboolean
check_text(const char *param, const char *value, int max, GError **error)
{
	if (!g_utf8_validate(value, -1, NULL))
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT, "%s is not valid UTF-8", param);
	if (g_utf8_strlen(value, -1) > max)
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		            "%s has %ld characters, at most %d are allowed", param,
		            (long)g_utf8_strlen(value, -1), max);
	for (const char *p = value; *p != '\0'; p = g_utf8_next_char(p)) {
		if (g_unichar_iscntrl(g_utf8_get_char(p)))
			return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
			            "%s contains a control character", param);
	}
	return TRUE;
}

static gboolean
check_subject_value(const SubjectField *f, const char *value, GError **error)
{
	if (g_strcmp0(f->param, HK_CERTD_KEY_CN) == 0)
		return certd_check_cn(value, error);
	if (g_strcmp0(f->param, HK_CERTD_KEY_EMAIL) == 0)
		return certd_check_email(value, error);
	if (g_strcmp0(f->param, HK_CERTD_KEY_COUNTRY) == 0 &&
	    (strlen(value) != 2 || !g_ascii_isalpha(value[0]) || !g_ascii_isalpha(value[1])))
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		            "country must be two letters (ISO 3166, e.g. JP), not \"%s\"", value);
	return check_text(f->param, value, f->max, error);
}

/* Takes the subject fields from params; an empty optional field counts as absent. */
static gboolean
csr_take_subject(CsrJob *job, json_object *params, GError **error)
{
	for (guint i = 0; i < N_SUBJECT; i++) {
		const SubjectField *f = &subject_fields[i];
		const char *value = hk_json_get_string(params, f->param);

		if ((value == NULL || *value == '\0') && i != SUBJECT_CN)
			continue;
		if (!check_subject_value(f, value, error))
			return FALSE;
		job->subject[i] = i == SUBJECT_C ? g_ascii_strup(value, -1) : g_strdup(value);
	}
	return TRUE;
}

static void
san_add_unique(GPtrArray *san, char *entry)
{
	for (guint i = 0; i < san->len; i++) {
		if (g_ascii_strcasecmp(g_ptr_array_index(san, i), entry) == 0) {
			g_free(entry);
			return;
		}
	}
	g_ptr_array_add(san, entry);
}

/* "DNS:host", "IP:addr" or "email:addr" (prefix in any case), in OpenSSL's spelling. */
static gboolean
san_add(GPtrArray *san, const char *entry, GError **error)
{
	const char *colon = strchr(entry, ':');
	g_autofree char *type = colon ? g_ascii_strdown(entry, colon - entry) : NULL;
	const char *value = colon ? colon + 1 : "";

	if (g_strcmp0(type, "dns") == 0 && host_name_ok(value))
		san_add_unique(san, g_strconcat("DNS:", value, NULL));
	else if (g_strcmp0(type, "ip") == 0 && g_hostname_is_ip_address(value) &&
	         strchr(value, '%') == NULL)
		san_add_unique(san, g_strconcat("IP:", value, NULL));
	else if (g_strcmp0(type, "email") == 0 && certd_check_email(value, NULL))
		san_add_unique(san, g_strconcat("email:", value, NULL));
	else
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		            "san \"%s\": use DNS:host.name, IP:address or email:address", entry);
	return TRUE;
}

/* The CN first when it is a host name (or an address), then the requested names. */
static gboolean
csr_take_san(CsrJob *job, const char *cn, json_object *params, GError **error)
{
	json_object *list = NULL;

	if (host_name_ok(cn))
		san_add_unique(job->san, g_strconcat("DNS:", cn, NULL));
	else if (g_hostname_is_ip_address(cn) && strchr(cn, '%') == NULL)
		san_add_unique(job->san, g_strconcat("IP:", cn, NULL));
	if (!json_object_object_get_ex(params, HK_CERTD_KEY_SAN, &list) || list == NULL)
		return TRUE;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *item = json_object_array_get_idx(list, i);

		if (!json_object_is_type(item, json_type_string))
			return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
			            "san must be an array of strings");
		if (!san_add(job->san, json_object_get_string(item), error))
			return FALSE;
	}
	return TRUE;
}

static gboolean
csr_add_san(X509_REQ *req, GPtrArray *san, GError **error)
{
	g_autoptr(GString) value = g_string_new(NULL);
	STACK_OF(X509_EXTENSION) * exts;
	X509_EXTENSION *ext;
	X509V3_CTX ctx;
	int ok;

	if (san->len == 0)
		return TRUE;
	for (guint i = 0; i < san->len; i++)
		g_string_append_printf(value, "%s%s", i ? "," : "",
		                       (const char *)g_ptr_array_index(san, i));
	X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, value->str);
	if (ext == NULL)
		return hk_ossl_set_error(error, "cannot encode subjectAltName %s", value->str);
	exts = sk_X509_EXTENSION_new_null();
	ok = sk_X509_EXTENSION_push(exts, ext) > 0 && X509_REQ_add_extensions(req, exts);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (!ok)
		return hk_ossl_set_error(error, "cannot add subjectAltName to the request");
	return TRUE;
}

static gboolean
csr_build(CsrJob *job, GError **error)
{
	g_autoptr(X509_REQ) req = X509_REQ_new();
	X509_NAME *subject = X509_REQ_get_subject_name(req);

	for (guint i = 0; i < N_SUBJECT; i++) {
		if (job->subject[i] != NULL &&
		    !X509_NAME_add_entry_by_txt(subject, subject_fields[i].field, MBSTRING_UTF8,
		                                (const guchar *)job->subject[i], -1, -1, 0))
			return hk_ossl_set_error(error, "cannot set %s in the request",
			                         subject_fields[i].param);
	}
	if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) || !X509_REQ_set_pubkey(req, job->key))
		return hk_ossl_set_error(error, "cannot build the request");
	if (!csr_add_san(req, job->san, error))
		return FALSE;
	if (X509_REQ_sign(req, job->key, EVP_sha256()) <= 0)
		return hk_ossl_set_error(error, "cannot sign the request");
	job->req = g_steal_pointer(&req);
	return TRUE;
}

static gboolean
csr_work(CertdState *state, gpointer data, GError **error)
{
	CsrJob *job = data;

	job->key = certd_key_generate(job->key_spec, error);
	return job->key != NULL && csr_build(job, error);
}

static char *
req_to_pem(X509_REQ *req)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());

	if (!PEM_write_bio_X509_REQ(bio, req))
		return NULL;
	return bio_take(bio, NULL);
}

/* The SHA-256 of the request's SubjectPublicKeyInfo, as the certificate will have it. */
static char *
req_pubkey_fingerprint(X509_REQ *req)
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(X509_REQ_get0_pubkey(req), &der);
	char *fp;

	if (len <= 0)
		return NULL;
	fp = hk_ossl_fingerprint_der(der, (gsize)len);
	OPENSSL_free(der);
	return fp;
}

/* Writes the request's folder, then its row; on failure removes the folder again. */
static gboolean
csr_store(CertdState *state, CsrJob *job, const char *csr_pem, GError **error)
{
	CertRow row = {
	        .name = g_strdup(job->name),
	        .status = g_strdup(HK_CERTD_STATUS_REQUESTED),
	        .dir = server_dir_rel(job->name),
	        .cn = g_strdup(job->subject[SUBJECT_CN]),
	        .key_type = certd_key_describe(job->key),
	        .subject = name_text(X509_REQ_get_subject_name(job->req)),
	        .pubkey_fp = req_pubkey_fingerprint(job->req),
	};
	g_autofree char *dir = g_build_filename(state->state_dir, row.dir, NULL);
	gsize key_len = 0;
	g_autoptr(HkSecret) key_pem = key_to_pem(job->key, FALSE, NULL, &key_len, error);
	gboolean ok = key_pem != NULL && certd_store_mkdir(dir, 0700, error) &&
	              certd_store_write(dir, KEY_FILE, key_pem, key_len, 0600, error) &&
	              certd_store_write(dir, CSR_FILE, csr_pem, strlen(csr_pem), 0644, error) &&
	              hk_db_transaction(state->db, row_insert_txn, &row, error);

	if (!ok && key_pem != NULL)
		certd_store_remove_tree(dir, NULL);
	cert_row_clear(&row);
	return ok;
}

static void
csr_done(CertdState *state, HkIpcRequest *req, gpointer data, const GError *work_error)
{
	CsrJob *job = data;
	g_autoptr(GError) error = NULL;
	g_autofree char *csr_pem = NULL;
	json_object *result;

	if (work_error != NULL) {
		hk_ipc_request_return_gerror(req, work_error);
		return;
	}
	csr_pem = req_to_pem(job->req);
	if (csr_pem == NULL) {
		hk_ossl_set_error(&error, "cannot encode the request");
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	/* checked again: another request may have taken the name while the key was made */
	if (!name_free(state, job->name, &error) || !csr_store(state, job, csr_pem, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	g_message("server certificate request %s created (CN=%s, %s)", job->name,
	          job->subject[SUBJECT_CN], job->key_spec);
	certd_emit(state, HK_CERTD_EV_CERT_CHANGED,
	           changed_event(job->name, HK_CERTD_STATUS_REQUESTED));
	result = json_object_new_object();
	json_object_object_add(result, HK_CERTD_KEY_NAME, json_object_new_string(job->name));
	json_object_object_add(result, HK_CERTD_KEY_STATUS,
	                       json_object_new_string(HK_CERTD_STATUS_REQUESTED));
	json_object_object_add(result, HK_CERTD_KEY_KEY, json_object_new_string(job->key_spec));
	json_object_object_add(result, HK_CERTD_KEY_CSR_PEM, json_object_new_string(csr_pem));
	hk_ipc_request_return(req, result);
}

static gboolean
csr_check(CertdState *state, CsrJob *job, json_object *params, GError **error)
{
	return check_name(job->name, error) &&
	       certd_key_spec_check(job->key_spec, csr_key_specs, error) &&
	       csr_take_subject(job, params, error) &&
	       csr_take_san(job, hk_json_get_string(params, HK_CERTD_KEY_CN), params, error) &&
	       name_free(state, job->name, error);
}

static void
op_csr_create(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	const char *key = hk_json_get_string(params, HK_CERTD_KEY_KEY);
	CsrJob *job = g_new0(CsrJob, 1);

	job->name = g_strdup(hk_json_get_string(params, HK_CERTD_KEY_NAME));
	job->key_spec = g_strdup(key ? key : "rsa:2048");
	job->san = g_ptr_array_new_with_free_func(g_free);
	if (!csr_check(state, job, params, &error)) {
		csr_job_free(job);
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	certd_work_start(state, req, csr_work, csr_done, job, csr_job_free);
}

/* ----- cert.import ----- */

typedef struct {
	char *name;
	char *cert_pem;
	HkSecret *key_pem;    /* NULL: the certificate answers the pending request */
	HkSecret *passphrase; /* of key_pem */
	char *request_key;    /* the pending request's key.pem */
	/* made by the worker */
	EVP_PKEY *key;
	X509 *leaf;
	HkX509Stack *chain; /* intermediates, leaf's issuer first */
	GPtrArray *warnings;
} ImportJob;

static void
import_job_free(gpointer data)
{
	ImportJob *job = data;

	g_free(job->name);
	g_free(job->cert_pem);
	hk_secret_free(job->key_pem);
	hk_secret_free(job->passphrase);
	g_free(job->request_key);
	EVP_PKEY_free(job->key);
	X509_free(job->leaf);
	hk_ossl_x509_stack_free(job->chain);
	g_ptr_array_unref(job->warnings);
	g_free(job);
}

/* Takes out of certs the first certificate for key. */
static X509 *
take_leaf(HkX509Stack *certs, EVP_PKEY *key)
{
	for (int i = 0; i < sk_X509_num(certs); i++) {
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(certs, i)), key) == 1)
			return sk_X509_delete(certs, i);
	}
	ERR_clear_error();
	return NULL;
}

static gboolean
issued_by(X509 *subject, X509 *issuer)
{
	EVP_PKEY *key = X509_get0_pubkey(issuer);
	gboolean ok = X509_check_issued(issuer, subject) == X509_V_OK && key != NULL &&
	              X509_verify(subject, key) == 1;

	ERR_clear_error();
	return ok;
}

/* Takes out of certs the one that issued and signed cert. */
static X509 *
take_issuer(HkX509Stack *certs, X509 *cert)
{
	for (int i = 0; i < sk_X509_num(certs); i++) {
		if (issued_by(cert, sk_X509_value(certs, i)))
			return sk_X509_delete(certs, i);
	}
	return NULL;
}

static void warn(GPtrArray *warnings, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void
warn(GPtrArray *warnings, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	g_ptr_array_add(warnings, g_strdup_vprintf(format, args));
	va_end(args);
}

/* Links the leaf up to a self-signed root through the certificates given; what does not
 * fit is left out with a warning, and so is a chain that stops short of a root. */
static HkX509Stack *
chain_order(X509 *leaf, HkX509Stack *rest, GPtrArray *warnings)
{
	HkX509Stack *chain = sk_X509_new_null();
	X509 *cert = leaf;
	X509 *next;

	while (X509_self_signed(cert, 1) != 1) {
		ERR_clear_error();
		next = take_issuer(rest, cert);
		if (next == NULL) {
			g_autofree char *issuer = name_text(X509_get_issuer_name(cert));

			warn(warnings, "missing intermediate: no certificate for issuer %s",
			     issuer);
			break;
		}
		sk_X509_push(chain, next);
		cert = next;
	}
	for (int i = 0; i < sk_X509_num(rest); i++) {
		g_autofree char *subject = name_text(X509_get_subject_name(sk_X509_value(rest, i)));

		warn(warnings, "certificate %s is not part of the chain; it was left out", subject);
	}
	return chain;
}

/* "expired on ..." or "is not valid before ..."; NULL when valid now. */
static char *
validity_problem(X509 *cert)
{
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
		g_autofree char *date = time_text(X509_get0_notAfter(cert));

		return g_strdup_printf("expired on %s", date);
	}
	if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
		g_autofree char *date = time_text(X509_get0_notBefore(cert));

		return g_strdup_printf("is not valid before %s", date);
	}
	return NULL;
}

/* The leaf must be valid now; intermediates out of date are warned about. */
static gboolean
check_dates(ImportJob *job, GError **error)
{
	g_autofree char *problem = validity_problem(job->leaf);

	if (problem != NULL)
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT, "the certificate %s", problem);
	for (int i = 0; i < sk_X509_num(job->chain); i++) {
		X509 *cert = sk_X509_value(job->chain, i);
		g_autofree char *late = validity_problem(cert);
		g_autofree char *subject = NULL;

		if (late == NULL)
			continue;
		subject = name_text(X509_get_subject_name(cert));
		warn(job->warnings, "intermediate %s %s", subject, late);
	}
	return TRUE;
}

static void
check_purpose(ImportJob *job)
{
	if (X509_check_purpose(job->leaf, X509_PURPOSE_SSL_SERVER, 0) != 1)
		warn(job->warnings, "the certificate's key usage does not allow a TLS server");
	ERR_clear_error();
}

static gboolean
import_key(ImportJob *job, GError **error)
{
	if (job->key_pem == NULL)
		job->key = key_from_file(job->request_key, error);
	else
		job->key = key_from_pem(job->key_pem, job->passphrase, error);
	return job->key != NULL && check_key_type(job->key, error);
}

static gboolean
import_work(CertdState *state, gpointer data, GError **error)
{
	ImportJob *job = data;
	g_autoptr(HkX509Stack) certs = certs_from_pem(job->cert_pem, error);

	if (certs == NULL || !import_key(job, error))
		return FALSE;
	job->leaf = take_leaf(certs, job->key);
	if (job->leaf == NULL && job->key_pem == NULL)
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		            "the certificate does not match the key of request %s", job->name);
	if (job->leaf == NULL)
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		            "no certificate in cert_pem matches the key in key_pem");
	job->chain = chain_order(job->leaf, certs, job->warnings);
	check_purpose(job);
	return check_dates(job, error);
}

static void
import_fill_row(ImportJob *job, CertRow *row)
{
	X509 *leaf = job->leaf;

	row->name = g_strdup(job->name);
	row->status = g_strdup(HK_CERTD_STATUS_UNUSED);
	row->dir = server_dir_rel(job->name);
	row->serial = certd_serial_to_hex(X509_get0_serialNumber(leaf));
	row->cn = name_cn(X509_get_subject_name(leaf));
	if (row->cn == NULL)
		row->cn = g_strdup(job->name);
	row->key_type = certd_key_describe(job->key);
	row->subject = name_text(X509_get_subject_name(leaf));
	row->issuer = name_text(X509_get_issuer_name(leaf));
	row->fingerprint = hk_ossl_fingerprint_cert(leaf, NULL);
	row->pubkey_fp = hk_ossl_fingerprint_pubkey(leaf, NULL);
	row->not_before = certd_asn1_time_to_unix(X509_get0_notBefore(leaf));
	row->not_after = certd_asn1_time_to_unix(X509_get0_notAfter(leaf));
}

/* Which row already holds this value in column (fingerprint or serial); NULL: none. */
static char *
holder_of(CertdState *state, const char *sql, const char *value)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(state->db, sql, NULL);

	if (stmt == NULL || value == NULL)
		return NULL;
	sqlite3_bind_text(stmt, 1, value, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return NULL;
	return column_dup(stmt, 0);
}

static gboolean
import_check_unique(CertdState *state, const CertRow *row, GError **error)
{
	g_autofree char *same =
	        holder_of(state, "SELECT coalesce(name, serial) FROM certs WHERE fingerprint = ?",
	                  row->fingerprint);
	g_autofree char *serial = NULL;

	if (same != NULL)
		return fail(error, HK_IPC_ERROR_CONFLICT,
		            "this certificate is already in certd as \"%s\"", same);
	serial = holder_of(state, "SELECT coalesce(name, serial) FROM certs WHERE serial = ?",
	                   row->serial);
	if (serial != NULL)
		return fail(error, HK_IPC_ERROR_CONFLICT,
		            "serial number %s is already used by certificate \"%s\"", row->serial,
		            serial);
	return TRUE;
}

/* The name is still what the handler saw: a pending request, or free. */
static gboolean
import_recheck(CertdState *state, ImportJob *job, GError **error)
{
	g_auto(ServerRow) row = {0};

	if (job->key_pem != NULL)
		return name_free(state, job->name, error);
	if (!row_load(state, job->name, &row, error))
		return FALSE;
	if (g_strcmp0(row.status, HK_CERTD_STATUS_REQUESTED) != 0)
		return fail(error, HK_IPC_ERROR_CONFLICT, "request \"%s\" is no longer pending",
		            job->name);
	return TRUE;
}

/* cert.pem (the leaf alone, as client certificates have it) and chain.pem (leaf first). */
static gboolean
write_cert_files(const char *dir, ImportJob *job, GError **error)
{
	g_autofree char *leaf_pem = certd_cert_to_pem(job->leaf);
	g_autofree char *chain_pem = certs_to_pem(job->leaf, job->chain);

	if (leaf_pem == NULL)
		return hk_ossl_set_error(error, "cannot encode the certificate");
	return certd_store_write(dir, CERT_FILE, leaf_pem, strlen(leaf_pem), 0644, error) &&
	       certd_store_write(dir, CHAIN_FILE, chain_pem, strlen(chain_pem), 0644, error);
}

static void
remove_cert_files(const char *dir)
{
	g_autofree char *cert = g_build_filename(dir, CERT_FILE, NULL);
	g_autofree char *chain = g_build_filename(dir, CHAIN_FILE, NULL);

	unlink(cert);
	unlink(chain);
}

/* A certificate for a pending request: its files beside the request's key, then the row. */
static gboolean
import_store_answer(CertdState *state, ImportJob *job, const CertRow *row, GError **error)
{
	g_autofree char *dir = g_build_filename(state->state_dir, row->dir, NULL);

	if (write_cert_files(dir, job, error) &&
	    hk_db_transaction(state->db, row_fulfil_txn, (gpointer)row, error))
		return TRUE;
	remove_cert_files(dir);
	return FALSE;
}

/* A certificate with its own key: a new folder with the key and the certificate files,
 * then the row. */
static gboolean
import_store_new(CertdState *state, ImportJob *job, const CertRow *row, GError **error)
{
	g_autofree char *dir = g_build_filename(state->state_dir, row->dir, NULL);
	gsize key_len = 0;
	g_autoptr(HkSecret) key_pem = key_to_pem(job->key, FALSE, NULL, &key_len, error);
	gboolean ok = key_pem != NULL && certd_store_mkdir(dir, 0700, error) &&
	              certd_store_write(dir, KEY_FILE, key_pem, key_len, 0600, error) &&
	              write_cert_files(dir, job, error) &&
	              hk_db_transaction(state->db, row_insert_txn, (gpointer)row, error);

	if (!ok && key_pem != NULL)
		certd_store_remove_tree(dir, NULL);
	return ok;
}

static json_object *
import_result(ImportJob *job, const CertRow *row)
{
	json_object *result = json_object_new_object();
	json_object *warnings = json_object_new_array();
	g_autofree char *not_after = certd_time_iso(row->not_after);

	for (guint i = 0; i < job->warnings->len; i++)
		json_object_array_add(warnings,
		                      json_object_new_string(g_ptr_array_index(job->warnings, i)));
	json_object_object_add(result, HK_CERTD_KEY_NAME, json_object_new_string(row->name));
	json_object_object_add(result, HK_CERTD_KEY_STATUS, json_object_new_string(row->status));
	json_object_object_add(result, HK_CERTD_KEY_SUBJECT, json_object_new_string(row->subject));
	json_object_object_add(result, HK_CERTD_KEY_ISSUER, json_object_new_string(row->issuer));
	json_object_object_add(result, HK_CERTD_KEY_FINGERPRINT,
	                       json_object_new_string(row->fingerprint ? row->fingerprint : ""));
	json_object_object_add(result, HK_CERTD_KEY_NOT_AFTER, json_object_new_string(not_after));
	json_object_object_add(result, HK_CERTD_KEY_WARNINGS, warnings);
	return result;
}

static gboolean
import_store(CertdState *state, ImportJob *job, const CertRow *row, GError **error)
{
	if (!import_recheck(state, job, error) || !import_check_unique(state, row, error))
		return FALSE;
	if (job->key_pem == NULL)
		return import_store_answer(state, job, row, error);
	return import_store_new(state, job, row, error);
}

static void
import_log(ImportJob *job, const CertRow *row)
{
	g_autofree char *not_after = certd_time_iso(row->not_after);

	g_message("server certificate %s imported: %s, issued by %s, expires %s", row->name,
	          row->subject, row->issuer, not_after);
	for (guint i = 0; i < job->warnings->len; i++)
		g_message("server certificate %s: %s", row->name,
		          (const char *)g_ptr_array_index(job->warnings, i));
}

static void
import_done(CertdState *state, HkIpcRequest *req, gpointer data, const GError *work_error)
{
	ImportJob *job = data;
	g_autoptr(GError) error = NULL;
	CertRow row = {0};

	if (work_error != NULL) {
		hk_ipc_request_return_gerror(req, work_error);
		return;
	}
	import_fill_row(job, &row);
	if (!import_store(state, job, &row, &error)) {
		hk_ipc_request_return_gerror(req, error);
		cert_row_clear(&row);
		return;
	}
	import_log(job, &row);
	certd_emit(state, HK_CERTD_EV_CERT_CHANGED, changed_event(row.name, row.status));
	hk_ipc_request_return(req, import_result(job, &row));
	cert_row_clear(&row);
}

/* Without key_pem the name must be a pending request; with it, a new name. */
static gboolean
import_prepare(CertdState *state, ImportJob *job, GError **error)
{
	g_auto(ServerRow) row = {0};

	if (!check_name(job->name, error))
		return FALSE;
	if (job->key_pem != NULL) {
		if (row_find(state, job->name, &row, NULL) &&
		    g_strcmp0(row.status, HK_CERTD_STATUS_REQUESTED) == 0)
			return fail(error, HK_IPC_ERROR_CONFLICT,
			            "\"%s\" is a pending request: import the CA's certificate for "
			            "it without a key, or choose another name",
			            job->name);
		return name_free(state, job->name, error);
	}
	if (!row_load(state, job->name, &row, error))
		return FALSE;
	if (g_strcmp0(row.status, HK_CERTD_STATUS_REQUESTED) != 0)
		return fail(error, HK_IPC_ERROR_CONFLICT,
		            "\"%s\" already has a certificate (status %s); a key is needed to "
		            "import another one under a new name",
		            job->name, row.status);
	job->request_key = g_build_filename(state->state_dir, row.dir, KEY_FILE, NULL);
	return TRUE;
}

static void
op_cert_import(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	ImportJob *job = g_new0(ImportJob, 1);

	job->name = g_strdup(hk_json_get_string(params, HK_CERTD_KEY_NAME));
	job->cert_pem = g_strdup(hk_json_get_string(params, HK_CERTD_KEY_CERT_PEM));
	job->key_pem = g_strdup(hk_json_get_string(params, HK_CERTD_KEY_KEY_PEM));
	job->passphrase = g_strdup(hk_json_get_string(params, HK_CERTD_KEY_PASSPHRASE));
	job->warnings = g_ptr_array_new_with_free_func(g_free);
	if (!import_prepare(state, job, &error)) {
		import_job_free(job);
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	certd_work_start(state, req, import_work, import_done, job, import_job_free);
}

/* ----- cert.export ----- */

typedef struct {
	char *name;
	char *dir; /* absolute */
	gboolean p12;
	gboolean pkcs1;
	HkSecret *password; /* PEM: encrypts the key; P12: protects the file */
	gboolean generated;
	/* made by the worker */
	HkSecret *key_pem;
	char *chain_pem;
	GBytes *p12_der;
} ExportJob;

static void
export_job_free(gpointer data)
{
	ExportJob *job = data;

	g_free(job->name);
	g_free(job->dir);
	hk_secret_free(job->password);
	hk_secret_free(job->key_pem);
	g_free(job->chain_pem);
	g_clear_pointer(&job->p12_der, g_bytes_unref);
	g_free(job);
}

static gboolean
export_p12(ExportJob *job, EVP_PKEY *key, HkX509Stack *certs, GError **error)
{
	g_autoptr(X509) leaf = sk_X509_shift(certs);
	g_autoptr(PKCS12) p12 = NULL;
	unsigned char *der = NULL;
	int len;

	/* AES-256-CBC with PBKDF2 for key and certificates; no MAC yet: it is set below */
	p12 = PKCS12_create(job->password, job->name, key, leaf, certs, NID_aes_256_cbc,
	                    NID_aes_256_cbc, PKCS12_DEFAULT_ITER, -1, 0);
	if (p12 == NULL ||
	    !PKCS12_set_mac(p12, job->password, -1, NULL, 0, PKCS12_DEFAULT_ITER, EVP_sha256()))
		return hk_ossl_set_error(error, "cannot build the PKCS#12 file");
	len = i2d_PKCS12(p12, &der);
	if (len <= 0)
		return hk_ossl_set_error(error, "cannot encode the PKCS#12 file");
	job->p12_der = g_bytes_new(der, (gsize)len);
	OPENSSL_clear_free(der, (size_t)len);
	return TRUE;
}

static gboolean
export_work(CertdState *state, gpointer data, GError **error)
{
	ExportJob *job = data;
	g_autofree char *key_path = g_build_filename(job->dir, KEY_FILE, NULL);
	g_autofree char *chain_path = g_build_filename(job->dir, CHAIN_FILE, NULL);
	g_autoptr(EVP_PKEY) key = key_from_file(key_path, error);
	g_autoptr(HkX509Stack) certs = NULL;

	if (key == NULL || !certd_store_read(chain_path, &job->chain_pem, NULL, error))
		return FALSE;
	if (job->p12) {
		certs = certs_from_pem(job->chain_pem, error);
		return certs != NULL && export_p12(job, key, certs, error);
	}
	if (job->pkcs1 && !EVP_PKEY_is_a(key, "RSA") && !EVP_PKEY_is_a(key, "EC"))
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		            "a %s key has no PKCS#1 form; use key_format pkcs8",
		            EVP_PKEY_get0_type_name(key));
	job->key_pem = key_to_pem(key, job->pkcs1, job->password, NULL, error);
	return job->key_pem != NULL;
}

static void
export_done(CertdState *state, HkIpcRequest *req, gpointer data, const GError *work_error)
{
	ExportJob *job = data;
	json_object *result;

	if (work_error != NULL) {
		hk_ipc_request_return_gerror(req, work_error);
		return;
	}
	result = json_object_new_object();
	json_object_object_add(result, HK_CERTD_KEY_NAME, json_object_new_string(job->name));
	json_object_object_add(result, HK_CERTD_KEY_FORMAT,
	                       json_object_new_string(job->p12 ? "p12" : "pem"));
	if (job->p12) {
		gsize len = 0;
		gconstpointer der = g_bytes_get_data(job->p12_der, &len);

		json_object_object_add(result, HK_CERTD_KEY_P12_BASE64,
		                       certd_json_base64(der, len));
		if (job->generated)
			json_object_object_add(result, HK_CERTD_KEY_P12_PASSWORD,
			                       json_object_new_string(job->password));
	} else {
		json_object_object_add(result, HK_CERTD_KEY_KEY_PEM,
		                       json_object_new_string(job->key_pem));
		json_object_object_add(result, HK_CERTD_KEY_CERT_PEM,
		                       json_object_new_string(job->chain_pem));
	}
	g_message("server certificate %s exported as %s", job->name, job->p12 ? "PKCS#12" : "PEM");
	hk_ipc_request_return(req, result);
}

static gboolean
export_options(ExportJob *job, json_object *params, GError **error)
{
	const char *format = hk_json_get_string(params, HK_CERTD_KEY_FORMAT);
	const char *key_format = hk_json_get_string(params, HK_CERTD_KEY_KEY_FORMAT);
	const char *password = hk_json_get_string(params, HK_CERTD_KEY_PASSWORD);

	if (format != NULL && g_strcmp0(format, "pem") != 0 && g_strcmp0(format, "p12") != 0)
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		            "format must be pem or p12, not \"%s\"", format);
	job->p12 = g_strcmp0(format, "p12") == 0;
	if (key_format != NULL && job->p12)
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		            "key_format applies to the pem format only");
	if (key_format != NULL && g_strcmp0(key_format, "pkcs1") != 0 &&
	    g_strcmp0(key_format, "pkcs8") != 0)
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		            "key_format must be pkcs1 or pkcs8, not \"%s\"", key_format);
	job->pkcs1 = g_strcmp0(key_format, "pkcs1") == 0;
	if (password != NULL && *password == '\0')
		return fail(error, HK_IPC_ERROR_INVALID_ARGUMENT, "the password must not be empty");
	job->generated = password == NULL && job->p12;
	job->password = job->generated ? certd_password_generate(20) : g_strdup(password);
	return TRUE;
}

/* A request has no certificate to export yet. */
static gboolean
export_prepare(CertdState *state, ExportJob *job, GError **error)
{
	g_auto(ServerRow) row = {0};

	if (!row_load(state, job->name, &row, error))
		return FALSE;
	if (g_strcmp0(row.status, HK_CERTD_STATUS_REQUESTED) == 0)
		return fail(error, HK_IPC_ERROR_CONFLICT,
		            "\"%s\" is a request without a certificate yet: import the CA's "
		            "certificate first",
		            job->name);
	job->dir = g_build_filename(state->state_dir, row.dir, NULL);
	return TRUE;
}

static void
op_cert_export(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	ExportJob *job = g_new0(ExportJob, 1);

	job->name = g_strdup(hk_json_get_string(params, HK_CERTD_KEY_ID));
	if (!export_options(job, params, &error) || !export_prepare(state, job, &error)) {
		export_job_free(job);
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	certd_work_start(state, req, export_work, export_done, job, export_job_free);
}

/* ----- cert.assign ----- */

typedef struct {
	const char *service;
	gint64 cert_id;
	const char *dir;  /* service_dir */
	const char *file; /* <service>.pem */
	const char *data; /* key, leaf, chain: a secret */
	gsize len;
} AssignTxn;

/*
 * One service, one certificate: the assignment moves, this certificate is in use, and
 * any server certificate no service uses any more is unused again. The file is written
 * last, inside the transaction, so a failed write leaves the database as it was.
 */
static gboolean
assign_txn(HkDb *db, gpointer data, GError **error)
{
	const AssignTxn *a = data;
	g_autoptr(sqlite3_stmt) set = hk_db_prepare(
	        db,
	        "INSERT INTO assignments (service, cert_id, assigned) VALUES (?, ?, ?)"
	        " ON CONFLICT (service) DO UPDATE SET cert_id = excluded.cert_id,"
	        " assigned = excluded.assigned",
	        error);
	g_autoptr(sqlite3_stmt) use = NULL;

	if (set == NULL)
		return FALSE;
	sqlite3_bind_text(set, 1, a->service, -1, SQLITE_STATIC);
	sqlite3_bind_int64(set, 2, a->cert_id);
	sqlite3_bind_int64(set, 3, g_get_real_time() / G_USEC_PER_SEC);
	if (sqlite3_step(set) != SQLITE_DONE)
		return hk_db_set_error(db, error, "cannot record the assignment");
	use = hk_db_prepare(db, "UPDATE certs SET status = 'in_use' WHERE id = ?", error);
	if (use == NULL)
		return FALSE;
	sqlite3_bind_int64(use, 1, a->cert_id);
	if (sqlite3_step(use) != SQLITE_DONE)
		return hk_db_set_error(db, error, "cannot update the certificate's status");
	if (!hk_db_exec(db,
	                "UPDATE certs SET status = 'unused' WHERE kind = 'server' AND"
	                " status = 'in_use' AND id NOT IN (SELECT cert_id FROM assignments)",
	                error))
		return FALSE;
	return certd_store_mkdir(a->dir, 0700, error) &&
	       certd_store_write(a->dir, a->file, a->data, a->len, 0600, error);
}

/* Only a certificate that is imported, current and not revoked can serve. */
static gboolean
assign_check(const char *name, const ServerRow *row, GError **error)
{
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;

	if (g_strcmp0(row->status, HK_CERTD_STATUS_REQUESTED) == 0)
		return fail(error, HK_IPC_ERROR_CONFLICT,
		            "\"%s\" is a request without a certificate yet: import the CA's "
		            "certificate first",
		            name);
	if (g_strcmp0(row->status, HK_CERTD_STATUS_UNUSED) != 0 &&
	    g_strcmp0(row->status, HK_CERTD_STATUS_IN_USE) != 0)
		return fail(error, HK_IPC_ERROR_CONFLICT, "\"%s\" is %s and cannot be assigned",
		            name, row->status);
	if (row->not_after != 0 && row->not_after < now) {
		g_autofree char *date = certd_time_iso(row->not_after);

		return fail(error, HK_IPC_ERROR_CONFLICT, "\"%s\" expired on %s", name, date);
	}
	return TRUE;
}

/* What Postfix's smtpd_tls_chain_files takes in one file: the key, then leaf and chain. */
static char *
assign_contents(CertdState *state, const ServerRow *row, GError **error)
{
	g_autofree char *key_path = g_build_filename(state->state_dir, row->dir, KEY_FILE, NULL);
	g_autofree char *chain_path =
	        g_build_filename(state->state_dir, row->dir, CHAIN_FILE, NULL);
	g_autoptr(HkSecret) key = NULL;
	g_autofree char *chain = NULL;

	if (!certd_store_read(key_path, &key, NULL, error) ||
	    !certd_store_read(chain_path, &chain, NULL, error))
		return NULL;
	return g_strconcat(key, g_str_has_suffix(key, "\n") ? "" : "\n", chain, NULL);
}

static json_object *
assign_result(const char *name, const char *service, const char *path)
{
	json_object *result = json_object_new_object();
	json_object *files = json_object_new_array();

	json_object_array_add(files, json_object_new_string(path));
	json_object_object_add(result, HK_CERTD_KEY_NAME, json_object_new_string(name));
	json_object_object_add(result, HK_CERTD_KEY_SERVICE, json_object_new_string(service));
	json_object_object_add(result, HK_CERTD_KEY_STATUS,
	                       json_object_new_string(HK_CERTD_STATUS_IN_USE));
	json_object_object_add(result, HK_CERTD_KEY_FILES, files);
	return result;
}

static void
reload_start(CertdState *state, HkIpcRequest *req, const Service *service, json_object *result);

static gboolean
assign_apply(CertdState *state, const char *name, const Service *service, char **path,
             GError **error)
{
	g_auto(ServerRow) row = {0};
	g_autofree char *file = g_strconcat(service->name, ".pem", NULL);
	const char *dir =
	        hk_config_get_string(state->config, CERTD_SECTION, CERTD_CONF_SERVICE_DIR);
	g_autoptr(HkSecret) contents = NULL;
	AssignTxn txn = {.service = service->name, .dir = dir, .file = file};

	if (!row_load(state, name, &row, error) || !assign_check(name, &row, error) ||
	    (contents = assign_contents(state, &row, error)) == NULL)
		return FALSE;
	txn.cert_id = row.id;
	txn.data = contents;
	txn.len = strlen(contents);
	if (!hk_db_transaction(state->db, assign_txn, &txn, error))
		return FALSE;
	*path = g_build_filename(dir, file, NULL);
	return TRUE;
}

static void
op_cert_assign(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	const char *name = hk_json_get_string(params, HK_CERTD_KEY_ID);
	const char *service_name = hk_json_get_string(params, HK_CERTD_KEY_SERVICE);
	const Service *service = find_service(service_name);
	g_autofree char *path = NULL;
	json_object *event;

	if (service == NULL) {
		certd_return_invalid(req,
		                     "service must be smtpd, smtp, submission or gateway, not "
		                     "\"%s\"",
		                     service_name);
		return;
	}
	if (!assign_apply(state, name, service, &path, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	g_message("server certificate %s assigned to %s (%s)", name, service->name, path);
	event = json_object_new_object();
	json_object_object_add(event, HK_CERTD_KEY_SERVICE, json_object_new_string(service->name));
	json_object_object_add(event, HK_CERTD_KEY_NAME, json_object_new_string(name));
	certd_emit(state, HK_CERTD_EV_CERT_ASSIGNED, event);
	reload_start(state, req, service, assign_result(name, service->name, path));
}

/* ----- reload commands ----- */

/* A reload command in flight; the request waits for its outcome. */
typedef struct {
	CertdState *state;
	HkIpcRequest *req;
	json_object *result;
	char *service;
	char *command;
	GSubprocess *proc;
	pid_t pgid; /* its process group; 0: it ended before we saw it */
	GCancellable *cancel;
	GByteArray *output;
	guint8 buf[1024];
	guint timeout_id;
	guint timeout_s;
	gboolean exited;
	gboolean eof;
	gboolean timed_out;
} Reload;

static void
reload_free(Reload *r)
{
	g_clear_handle_id(&r->timeout_id, g_source_remove);
	json_object_put(r->result);
	g_free(r->service);
	g_free(r->command);
	g_clear_object(&r->proc);
	g_clear_object(&r->cancel);
	g_byte_array_unref(r->output);
	g_free(r);
}

static json_object *
reload_json(const char *command, int status, const char *output, gsize len, gboolean timed_out)
{
	json_object *reload = json_object_new_object();
	g_autofree char *text = g_utf8_make_valid(output ? output : "", (gssize)len);

	json_object_object_add(reload, HK_CERTD_KEY_COMMAND, json_object_new_string(command));
	json_object_object_add(reload, HK_CERTD_KEY_EXIT_STATUS, json_object_new_int(status));
	json_object_object_add(reload, HK_CERTD_KEY_OUTPUT, json_object_new_string(text));
	json_object_object_add(reload, HK_CERTD_KEY_TIMED_OUT, json_object_new_boolean(timed_out));
	return reload;
}

/* 0..255 as the command exited, 128 + n when signal n ended it (as shells report it). */
static int
reload_status(GSubprocess *proc)
{
	if (g_subprocess_get_if_exited(proc))
		return g_subprocess_get_exit_status(proc);
	return 128 + g_subprocess_get_term_sig(proc);
}

static void
reload_log(const Reload *r, int status)
{
	if (r->timed_out)
		g_warning("reload of %s: \"%s\" was killed after %u s", r->service, r->command,
		          r->timeout_s);
	else if (status != 0)
		g_warning("reload of %s: \"%s\" exited with status %d", r->service, r->command,
		          status);
	else
		g_message("reload of %s: \"%s\" succeeded", r->service, r->command);
}

static void
reload_finish(Reload *r)
{
	CertdState *state = r->state;
	int status = reload_status(r->proc);

	reload_log(r, status);
	json_object_object_add(r->result, HK_CERTD_KEY_RELOAD,
	                       reload_json(r->command, status, (const char *)r->output->data,
	                                   r->output->len, r->timed_out));
	hk_ipc_request_return(r->req, g_steal_pointer(&r->result));
	reload_free(r);
	state->work_in_flight--;
}

static void
reload_maybe_finish(Reload *r)
{
	if (r->exited && r->eof)
		reload_finish(r);
}

static void reload_read_next(Reload *r);

static void
reload_on_read(GObject *source, GAsyncResult *res, gpointer data)
{
	Reload *r = data;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, NULL);

	if (n > 0) {
		gsize room = RELOAD_OUTPUT_MAX - MIN(r->output->len, RELOAD_OUTPUT_MAX);

		g_byte_array_append(r->output, r->buf, (guint)MIN((gsize)n, room));
		reload_read_next(r); /* the rest is read and dropped, so the command never blocks */
		return;
	}
	r->eof = TRUE; /* end of output, cancelled, or an error: done reading either way */
	reload_maybe_finish(r);
}

static void
reload_read_next(Reload *r)
{
	g_input_stream_read_async(g_subprocess_get_stdout_pipe(r->proc), r->buf, sizeof(r->buf),
	                          G_PRIORITY_DEFAULT, r->cancel, reload_on_read, r);
}

static gboolean reload_on_timeout(gpointer data);

static void
reload_on_exit(GObject *source, GAsyncResult *res, gpointer data)
{
	Reload *r = data;

	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	r->exited = TRUE;
	if (!r->eof) {
		/* something it started in the background may keep the pipe open: read what is
		 * there, but do not wait for that */
		g_clear_handle_id(&r->timeout_id, g_source_remove);
		r->timeout_id = g_timeout_add(RELOAD_GRACE_MS, reload_on_timeout, r);
	}
	reload_maybe_finish(r);
}

/* The command overran: kill its whole process group and stop waiting for its output
 * (a child it left behind could hold the pipe open). */
static gboolean
reload_on_timeout(gpointer data)
{
	Reload *r = data;

	r->timeout_id = 0;
	if (!r->exited && r->pgid > 0) {
		r->timed_out = TRUE;
		kill(-r->pgid, SIGKILL);
	}
	g_cancellable_cancel(r->cancel);
	return G_SOURCE_REMOVE;
}

static void
reload_child_setup(gpointer data)
{
	setpgid(0, 0); /* its own process group, so a timeout kills everything it started */
}

static gboolean
reload_spawn(Reload *r, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
	        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_auto(GStrv) argv = NULL;
	const char *id;

	if (!g_shell_parse_argv(r->command, NULL, &argv, error))
		return FALSE;
	g_subprocess_launcher_set_child_setup(launcher, reload_child_setup, NULL, NULL);
	r->proc = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv, error);
	if (r->proc == NULL)
		return FALSE;
	/* no identifier: GLib has reaped it already, there is nothing left to kill */
	id = g_subprocess_get_identifier(r->proc);
	r->pgid = id != NULL ? (pid_t)atoi(id) : 0;
	return TRUE;
}

/* A command that cannot even start is reported as a shell would: status 127. */
static void
reload_fail(Reload *r, const GError *error)
{
	g_autofree char *output = g_strdup_printf("cannot run the command: %s", error->message);

	g_warning("reload of %s: %s", r->service, output);
	json_object_object_add(r->result, HK_CERTD_KEY_RELOAD,
	                       reload_json(r->command, 127, output, strlen(output), FALSE));
	hk_ipc_request_return(r->req, g_steal_pointer(&r->result));
	reload_free(r);
}

/* Runs [certd] reload_<service> and replies once it ended; none configured: reload null. */
static void
reload_start(CertdState *state, HkIpcRequest *req, const Service *service, json_object *result)
{
	const char *command =
	        hk_config_get_string(state->config, CERTD_SECTION, service->reload_key);
	g_autoptr(GError) error = NULL;
	Reload *r;

	if (command == NULL || strspn(command, " \t") == strlen(command)) {
		json_object_object_add(result, HK_CERTD_KEY_RELOAD, NULL);
		hk_ipc_request_return(req, result);
		return;
	}
	r = g_new0(Reload, 1);
	r->state = state;
	r->req = req;
	r->result = result;
	r->service = g_strdup(service->name);
	r->command = g_strdup(command);
	r->output = g_byte_array_new();
	r->cancel = g_cancellable_new();
	r->timeout_s = (guint)(hk_config_get_duration_ms(state->config, CERTD_SECTION,
	                                                 CERTD_CONF_RELOAD_TIMEOUT) /
	                       1000);
	if (!reload_spawn(r, &error)) {
		reload_fail(r, error);
		return;
	}
	/* certd_work_drain() at shutdown waits for the command, so state outlives it */
	state->work_in_flight++;
	r->timeout_id = g_timeout_add_seconds(MAX(r->timeout_s, 1), reload_on_timeout, r);
	reload_read_next(r);
	g_subprocess_wait_async(r->proc, NULL, reload_on_exit, r);
}

/* ----- the daily expiry check ----- */

static void
expiry_warn(const char *name, gint64 not_after, const char *services_text, gint64 now)
{
	g_autofree char *date = certd_time_iso(not_after);

	if (not_after <= now)
		g_warning("certificate %s (in use for %s) expired on %s", name, services_text,
		          date);
	else
		g_warning("certificate %s (in use for %s) expires on %s, in %d days", name,
		          services_text, date, (int)((not_after - now) / DAY_S));
}

static void
expiry_check(CertdState *state)
{
	gint64 days =
	        hk_config_get_int(state->config, CERTD_SECTION, CERTD_CONF_EXPIRY_WARNING_DAYS);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autoptr(GError) error = NULL;
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        state->db,
	        "SELECT c.name, c.not_after, group_concat(a.service, ', ') FROM certs c"
	        " JOIN (SELECT * FROM assignments ORDER BY service) a ON a.cert_id = c.id"
	        " WHERE c.kind = 'server' AND c.status = 'in_use' AND c.not_after <= ?"
	        " GROUP BY c.id ORDER BY c.not_after",
	        &error);

	if (stmt == NULL) {
		g_warning("expiry check: %s", error->message);
		return;
	}
	sqlite3_bind_int64(stmt, 1, now + days * DAY_S);
	while (sqlite3_step(stmt) == SQLITE_ROW)
		expiry_warn((const char *)sqlite3_column_text(stmt, 0),
		            sqlite3_column_int64(stmt, 1),
		            (const char *)sqlite3_column_text(stmt, 2), now);
}

static gboolean
on_expiry_timer(gpointer data)
{
	expiry_check(data);
	return G_SOURCE_CONTINUE;
}

void
certd_servercert_schedule(CertdState *state)
{
	g_clear_handle_id(&state->expiry_timer, g_source_remove);
	expiry_check(state);
	state->expiry_timer = g_timeout_add_seconds(EXPIRY_INTERVAL_S, on_expiry_timer, state);
}

/* ----- the op table ----- */

static const HkIpcParam csr_create_params[] = {
        {HK_CERTD_KEY_NAME, json_type_string, TRUE},
        {HK_CERTD_KEY_CN, json_type_string, TRUE},
        {HK_CERTD_KEY_KEY, json_type_string},
        {HK_CERTD_KEY_COUNTRY, json_type_string},
        {HK_CERTD_KEY_STATE, json_type_string},
        {HK_CERTD_KEY_LOCALITY, json_type_string},
        {HK_CERTD_KEY_ORG, json_type_string},
        {HK_CERTD_KEY_OU, json_type_string},
        {HK_CERTD_KEY_EMAIL, json_type_string},
        {HK_CERTD_KEY_SAN, json_type_array},
        {0},
};
static const HkIpcParam cert_import_params[] = {
        {HK_CERTD_KEY_NAME, json_type_string, TRUE},
        {HK_CERTD_KEY_CERT_PEM, json_type_string, TRUE},
        {HK_CERTD_KEY_KEY_PEM, json_type_string},
        {HK_CERTD_KEY_PASSPHRASE, json_type_string},
        {0},
};
static const HkIpcParam cert_export_params[] = {
        {HK_CERTD_KEY_ID, json_type_string, TRUE},
        {HK_CERTD_KEY_FORMAT, json_type_string},
        {HK_CERTD_KEY_PASSWORD, json_type_string},
        {HK_CERTD_KEY_KEY_FORMAT, json_type_string},
        {0},
};
static const HkIpcParam cert_assign_params[] = {
        {HK_CERTD_KEY_ID, json_type_string, TRUE},
        {HK_CERTD_KEY_SERVICE, json_type_string, TRUE},
        {0},
};

const HkIpcOp certd_servercert_ops[] = {
        {HK_CERTD_OP_CSR_CREATE, CERTD_ADMIN, csr_create_params, op_csr_create, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_CERT_IMPORT, CERTD_ADMIN, cert_import_params, op_cert_import, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_CERT_EXPORT, CERTD_ADMIN, cert_export_params, op_cert_export, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_CERT_ASSIGN, CERTD_ADMIN, cert_assign_params, op_cert_assign, HK_IPC_OP_AUDIT},
        {0},
};
