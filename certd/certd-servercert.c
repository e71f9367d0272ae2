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
 * PEM parsing, chain ordering and checks are in certd-chain.c; reload commands run in
 * certd-reload.c.
 *
 * Talks to: OpenSSL, the database, the state and service directories, reload commands.
 *
 * Must never: put a key or a passphrase into a log line, an audit row or an error
 * message; write a key wider than 0600; block the main loop while a reload command runs.
 */
#include "certd.h"
#include "hk-certd-proto.h"

#include <gio/gio.h>
#include <openssl/pem.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#define NAME_MAX_LEN      64
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

/* ----- small pieces ----- */

static gboolean
check_name(const char *name, GError **error)
{
	gsize len = name ? strlen(name) : 0;

	if (len == 0 || len > NAME_MAX_LEN)
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "a certificate name must have 1..%d characters",
		                       NAME_MAX_LEN);
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isalnum(name[i]) && strchr("._-", name[i]) == NULL)
			return certd_set_error(
			        error, HK_IPC_ERROR_INVALID_ARGUMENT,
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
	if (g_str_has_prefix(name, "*."))
		name += 2;
	if (*name == '\0' || strlen(name) > 253 || g_hostname_is_ip_address(name))
		return FALSE;
	return certd_dns_labels_ok(name);
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
	return certd_set_error(error, HK_IPC_ERROR_NOT_FOUND, "no server certificate named \"%s\"",
	                       name);
}

/* conflict when a certificate of any kind already has this name. */
static gboolean
name_free(CertdState *state, const char *name, GError **error)
{
	g_auto(ServerRow) row = {0};
	g_autoptr(GError) local = NULL;

	if (row_find(state, name, &row, &local))
		return certd_set_error(error, HK_IPC_ERROR_CONFLICT,
		                       "a certificate named \"%s\" already exists (status %s)",
		                       name, row.status);
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
	sqlite3_bind_int64(stmt, 13, certd_now_unix());
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
		return certd_set_error(error, HK_IPC_ERROR_CONFLICT,
		                       "request \"%s\" is no longer pending", row->name);
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
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "%s is not valid UTF-8", param);
	if (g_utf8_strlen(value, -1) > max)
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "%s has %ld characters, at most %d are allowed", param,
		                       (long)g_utf8_strlen(value, -1), max);
	for (const char *p = value; *p != '\0'; p = g_utf8_next_char(p)) {
		if (g_unichar_iscntrl(g_utf8_get_char(p)))
			return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
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
		return certd_set_error(
		        error, HK_IPC_ERROR_INVALID_ARGUMENT,
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
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "san \"%s\": use DNS:host.name, IP:address or email:address",
		                       entry);
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
			return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
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
	return certd_bio_take(bio, NULL);
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
	        .subject = certd_name_text(X509_REQ_get_subject_name(job->req)),
	        .pubkey_fp = req_pubkey_fingerprint(job->req),
	};
	g_autofree char *dir = g_build_filename(state->state_dir, row.dir, NULL);
	gsize key_len = 0;
	g_autoptr(HkSecret) key_pem = certd_key_to_pem(job->key, FALSE, NULL, &key_len, error);
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

static gboolean
import_key(ImportJob *job, GError **error)
{
	if (job->key_pem == NULL)
		job->key = certd_key_from_file(job->request_key, error);
	else
		job->key = certd_key_from_pem(job->key_pem, job->passphrase, error);
	return job->key != NULL && certd_key_check_type(job->key, error);
}

static gboolean
import_work(CertdState *state, gpointer data, GError **error)
{
	ImportJob *job = data;
	g_autoptr(HkX509Stack) certs = certd_certs_from_pem(job->cert_pem, error);

	if (certs == NULL || !import_key(job, error))
		return FALSE;
	job->leaf = certd_chain_take_leaf(certs, job->key);
	if (job->leaf == NULL && job->key_pem == NULL)
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "the certificate does not match the key of request %s",
		                       job->name);
	if (job->leaf == NULL)
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "no certificate in cert_pem matches the key in key_pem");
	job->chain = certd_chain_order(job->leaf, certs, job->warnings);
	certd_chain_check_purpose(job->leaf, job->warnings);
	return certd_chain_check_dates(job->leaf, job->chain, job->warnings, error);
}

static void
import_fill_row(ImportJob *job, CertRow *row)
{
	X509 *leaf = job->leaf;

	row->name = g_strdup(job->name);
	row->status = g_strdup(HK_CERTD_STATUS_UNUSED);
	row->dir = server_dir_rel(job->name);
	row->serial = certd_serial_to_hex(X509_get0_serialNumber(leaf));
	row->cn = certd_name_cn(X509_get_subject_name(leaf));
	if (row->cn == NULL)
		row->cn = g_strdup(job->name);
	row->key_type = certd_key_describe(job->key);
	row->subject = certd_name_text(X509_get_subject_name(leaf));
	row->issuer = certd_name_text(X509_get_issuer_name(leaf));
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
		return certd_set_error(error, HK_IPC_ERROR_CONFLICT,
		                       "this certificate is already in certd as \"%s\"", same);
	serial = holder_of(state, "SELECT coalesce(name, serial) FROM certs WHERE serial = ?",
	                   row->serial);
	if (serial != NULL)
		return certd_set_error(error, HK_IPC_ERROR_CONFLICT,
		                       "serial number %s is already used by certificate \"%s\"",
		                       row->serial, serial);
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
		return certd_set_error(error, HK_IPC_ERROR_CONFLICT,
		                       "request \"%s\" is no longer pending", job->name);
	return TRUE;
}

/* cert.pem (the leaf alone, as client certificates have it) and chain.pem (leaf first). */
static gboolean
write_cert_files(const char *dir, ImportJob *job, GError **error)
{
	g_autofree char *leaf_pem = certd_cert_to_pem(job->leaf);
	g_autofree char *chain_pem = certd_certs_to_pem(job->leaf, job->chain);

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
	g_autoptr(HkSecret) key_pem = certd_key_to_pem(job->key, FALSE, NULL, &key_len, error);
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
			return certd_set_error(
			        error, HK_IPC_ERROR_CONFLICT,
			        "\"%s\" is a pending request: import the CA's certificate for "
			        "it without a key, or choose another name",
			        job->name);
		return name_free(state, job->name, error);
	}
	if (!row_load(state, job->name, &row, error))
		return FALSE;
	if (g_strcmp0(row.status, HK_CERTD_STATUS_REQUESTED) != 0)
		return certd_set_error(
		        error, HK_IPC_ERROR_CONFLICT,
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
	g_autoptr(EVP_PKEY) key = certd_key_from_file(key_path, error);
	g_autoptr(HkX509Stack) certs = NULL;

	if (key == NULL || !certd_store_read(chain_path, &job->chain_pem, NULL, error))
		return FALSE;
	if (job->p12) {
		certs = certd_certs_from_pem(job->chain_pem, error);
		return certs != NULL && export_p12(job, key, certs, error);
	}
	if (job->pkcs1 && !EVP_PKEY_is_a(key, "RSA") && !EVP_PKEY_is_a(key, "EC"))
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "a %s key has no PKCS#1 form; use key_format pkcs8",
		                       EVP_PKEY_get0_type_name(key));
	job->key_pem = certd_key_to_pem(key, job->pkcs1, job->password, NULL, error);
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
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "format must be pem or p12, not \"%s\"", format);
	job->p12 = g_strcmp0(format, "p12") == 0;
	if (key_format != NULL && job->p12)
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "key_format applies to the pem format only");
	if (key_format != NULL && g_strcmp0(key_format, "pkcs1") != 0 &&
	    g_strcmp0(key_format, "pkcs8") != 0)
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "key_format must be pkcs1 or pkcs8, not \"%s\"", key_format);
	job->pkcs1 = g_strcmp0(key_format, "pkcs1") == 0;
	if (password != NULL && *password == '\0')
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "the password must not be empty");
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
		return certd_set_error(
		        error, HK_IPC_ERROR_CONFLICT,
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
	sqlite3_bind_int64(set, 3, certd_now_unix());
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
	gint64 now = certd_now_unix();

	if (g_strcmp0(row->status, HK_CERTD_STATUS_REQUESTED) == 0)
		return certd_set_error(
		        error, HK_IPC_ERROR_CONFLICT,
		        "\"%s\" is a request without a certificate yet: import the CA's "
		        "certificate first",
		        name);
	if (g_strcmp0(row->status, HK_CERTD_STATUS_UNUSED) != 0 &&
	    g_strcmp0(row->status, HK_CERTD_STATUS_IN_USE) != 0)
		return certd_set_error(error, HK_IPC_ERROR_CONFLICT,
		                       "\"%s\" is %s and cannot be assigned", name, row->status);
	if (row->not_after != 0 && row->not_after < now) {
		g_autofree char *date = certd_time_iso(row->not_after);

		return certd_set_error(error, HK_IPC_ERROR_CONFLICT, "\"%s\" expired on %s", name,
		                       date);
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
	certd_reload_start(state, req, service->name, service->reload_key,
	                   assign_result(name, service->name, path));
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
	gint64 now = certd_now_unix();
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

/* ----- service.identity: the gateway's key for hanko-milter ----- */

/* The server certificate assigned to service; not_found when none is. */
static char *
assigned_name(CertdState *state, const char *service, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(state->db,
	                      "SELECT c.name FROM assignments a JOIN certs c ON c.id = a.cert_id"
	                      " WHERE a.service = ?",
	                      error);

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_text(stmt, 1, service, -1, SQLITE_TRANSIENT);
	switch (sqlite3_step(stmt)) {
	case SQLITE_ROW:
		return column_dup(stmt, 0);
	case SQLITE_DONE:
		certd_set_error(error, HK_IPC_ERROR_NOT_FOUND,
		                "no certificate is assigned to %s: use \"hankoctl cert assign NAME"
		                " --service %s\"",
		                service, service);
		return NULL;
	default:
		hk_db_set_error(state->db, error, "cannot read the assignments");
		return NULL;
	}
}

/* Root, or a user named in [certd] identity_users: the service group alone is not enough
 * to read a private key. */
static gboolean
identity_reader_ok(CertdState *state, const HkIpcPeer *peer, GError **error)
{
	const char *const *users =
	        hk_config_get_list(state->config, CERTD_SECTION, CERTD_CONF_IDENTITY_USERS);
	struct passwd *pw;

	if (peer->uid == 0)
		return TRUE;
	pw = getpwuid(peer->uid);
	if (pw != NULL && g_strv_contains(users, pw->pw_name))
		return TRUE;
	return certd_set_error(error, HK_IPC_ERROR_PERMISSION_DENIED,
	                       "uid %u may not read a service's private key (see [certd] %s)",
	                       (guint)peer->uid, CERTD_CONF_IDENTITY_USERS);
}

static json_object *
identity_result(CertdState *state, const char *service, const char *name, GError **error)
{
	g_auto(ServerRow) row = {0};
	g_autofree char *key_path = NULL;
	g_autofree char *chain_path = NULL;
	g_autoptr(HkSecret) key = NULL;
	g_autofree char *chain = NULL;
	json_object *result;

	if (!row_load(state, name, &row, error))
		return NULL;
	key_path = g_build_filename(state->state_dir, row.dir, KEY_FILE, NULL);
	chain_path = g_build_filename(state->state_dir, row.dir, CHAIN_FILE, NULL);
	if (!certd_store_read(key_path, &key, NULL, error) ||
	    !certd_store_read(chain_path, &chain, NULL, error))
		return NULL;
	result = json_object_new_object();
	json_object_object_add(result, HK_CERTD_KEY_SERVICE, json_object_new_string(service));
	json_object_object_add(result, HK_CERTD_KEY_NAME, json_object_new_string(name));
	json_object_object_add(result, HK_CERTD_KEY_CERT_PEM, json_object_new_string(chain));
	json_object_object_add(result, HK_CERTD_KEY_KEY_PEM, json_object_new_string(key));
	return result;
}

static void
op_service_identity(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	const char *service = hk_json_get_string(params, HK_CERTD_KEY_SERVICE);
	g_autofree char *name = NULL;
	json_object *result = NULL;

	if (g_strcmp0(service, "gateway") != 0) {
		hk_ipc_request_return_error(req, HK_IPC_ERR_INVALID_ARGUMENT,
		                            "only the gateway's identity is handed out, not %s's",
		                            service);
		return;
	}
	if (identity_reader_ok(state, hk_ipc_request_get_peer(req), &error) &&
	    (name = assigned_name(state, service, &error)) != NULL)
		result = identity_result(state, service, name, &error);
	if (result == NULL) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	hk_ipc_request_return(req, result);
}

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

static const HkIpcParam service_identity_params[] = {
        {HK_CERTD_KEY_SERVICE, json_type_string, TRUE},
        {0},
};

const HkIpcOp certd_servercert_ops[] = {
        {HK_CERTD_OP_CSR_CREATE, CERTD_ADMIN, csr_create_params, op_csr_create, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_CERT_IMPORT, CERTD_ADMIN, cert_import_params, op_cert_import, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_CERT_EXPORT, CERTD_ADMIN, cert_export_params, op_cert_export, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_CERT_ASSIGN, CERTD_ADMIN, cert_assign_params, op_cert_assign, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_SERVICE_IDENTITY, CERTD_SERVICE, service_identity_params, op_service_identity,
         HK_IPC_OP_AUDIT},
        {0},
};
