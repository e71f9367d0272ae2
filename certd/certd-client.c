/*
 * certd-client: client and S/MIME certificates for users (seed 001): cert.issue,
 * cert.list, cert.show, cert.p12, cert.revoke, and cert.lookup for hanko-policyd.
 *
 * cert.issue makes the key, the certificate and its PKCS#12 in a worker; back in the main
 * loop it writes state_dir/certs/<YYYYMMDD-HHMMSS>-<serial8>/{cert.pem,cert.p12,profile.json}
 * and then inserts the row, in one transaction, so a crash leaves files without a row
 * (swept at the next start) and never a row without its files. list, show, revoke and
 * lookup also see the server certificates of certd-servercert.c (kind 'server').
 * Talks to: the database (certs, users, user_emails, assignments), the state directory,
 * the CA (certd-ca.c) and the CRL (certd-crl.c).
 * Must never: log a P12 password or a key, hand a P12 password to anyone but an admin, or
 * commit a row before the files it names are on disk.
 */
#include "certd.h"
#include "hk-certd-proto.h"

#include <errno.h>
#include <gio/gio.h>
#include <openssl/pkcs12.h>
#include <string.h>

#define CLIENT_DAYS_MAX  825
#define P12_PASSWORD_LEN 20
#define P12_ITER         2048
#define ISSUE_ATTEMPTS   5 /* serials drawn before giving up (a repeat is 2^-127 likely) */
#define MEMO_MAX         1024
#define ID_MAX           256
#define EXPIRING_MAX     36500
#define DAY_SECONDS      (24 * 3600)

typedef enum {
	PROFILE_CLIENT,
	PROFILE_SMIME,
	PROFILE_BOTH,
} IssueProfile;

static const char *const profile_names[] = {"client", "smime", "both", NULL};
static const char *const p12_names[] = {"compat", "modern", NULL};
static const char *const client_keys[] = {"rsa:2048", "rsa:3072", "rsa:4096",
                                          "ec:p256",  "ec:p384",  NULL};
static const char *const eku_values[] = {
        [PROFILE_CLIENT] = "clientAuth",
        [PROFILE_SMIME] = "emailProtection",
        [PROFILE_BOTH] = "clientAuth,emailProtection",
};
static const char *const list_statuses[] = {
        HK_CERTD_STATUS_VALID,
        HK_CERTD_STATUS_REVOKED,
        HK_CERTD_STATUS_EXPIRED,
        HK_CERTD_STATUS_REQUESTED,
        HK_CERTD_STATUS_UNUSED,
        HK_CERTD_STATUS_IN_USE,
        NULL,
};
static const char *const kinds[] = {"client", "server", NULL};

typedef STACK_OF(PKCS12_SAFEBAG) CertdP12Bags;
typedef STACK_OF(PKCS7) CertdP12Safes;

static void
p12_bags_free(CertdP12Bags *bags)
{
	sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
}

static void
p12_safes_free(CertdP12Safes *safes)
{
	sk_PKCS7_pop_free(safes, PKCS7_free);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CertdP12Bags, p12_bags_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CertdP12Safes, p12_safes_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GENERAL_NAMES, GENERAL_NAMES_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CRL_DIST_POINTS, CRL_DIST_POINTS_free)

/* Index of value in a NULL-terminated list, or a "use one of" error. */
static gboolean
check_choice(const char *what, const char *value, const char *const *choices, int *index,
             GError **error)
{
	g_autofree char *list = g_strjoinv(", ", (char **)choices);

	for (int i = 0; choices[i] != NULL; i++) {
		if (g_strcmp0(choices[i], value) == 0) {
			*index = i;
			return TRUE;
		}
	}
	return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
	                       "unknown %s \"%s\": use one of %s", what, value, list);
}

static const char *
param_or_conf(CertdState *state, json_object *params, const char *param, const char *conf_key)
{
	const char *value = hk_json_get_string(params, param);

	return value ? value : hk_config_get_string(state->config, CERTD_SECTION, conf_key);
}

/* The users row of name -> its id; not_found otherwise. */
static gboolean
find_user(CertdState *state, const char *name, gint64 *user_id, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(state->db, "SELECT id FROM users WHERE name = ?", error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return certd_set_error(error, HK_IPC_ERROR_NOT_FOUND,
		                       "there is no user \"%s\" (add one with hankoctl user add)",
		                       name);
	*user_id = sqlite3_column_int64(stmt, 0);
	return TRUE;
}

static char *
path_in_state(CertdState *state, const char *relative)
{
	return g_build_filename(state->state_dir, relative, NULL);
}

/* ===== cert.issue: the job ===== */

typedef struct {
	/* what was asked for, checked by the handler */
	char *cn;
	char *email;
	char *key_spec;
	char *memo; /* NULL: none */
	char *user; /* NULL: none */
	gint64 user_id;
	guint days;
	IssueProfile profile;
	gboolean modern; /* p12_format */
	gboolean keep_password;
	char *crl_url; /* NULL: none */
	/* what the worker made */
	EVP_PKEY *key;
	char *password; /* secret */
	X509 *cert;
	GBytes *p12;
	char *serial;
	char *fingerprint;
	char *pubkey_fp;
	guint attempts;
} IssueJob;

static void
issue_job_clear_output(IssueJob *job)
{
	g_clear_pointer(&job->cert, X509_free);
	g_clear_pointer(&job->p12, g_bytes_unref);
	g_clear_pointer(&job->serial, g_free);
	g_clear_pointer(&job->fingerprint, g_free);
	g_clear_pointer(&job->pubkey_fp, g_free);
}

static void
issue_job_free(gpointer data)
{
	IssueJob *job = data;

	issue_job_clear_output(job);
	g_free(job->cn);
	g_free(job->email);
	g_free(job->key_spec);
	g_free(job->memo);
	g_free(job->user);
	g_free(job->crl_url);
	EVP_PKEY_free(job->key);
	hk_secret_free(job->password);
	g_free(job);
}

/* ===== cert.issue: the worker ===== */

static const char *
issue_key_usage(const IssueJob *job)
{
	if (EVP_PKEY_is_a(job->key, "RSA"))
		return "critical,digitalSignature,keyEncipherment";
	if (job->profile == PROFILE_CLIENT)
		return "critical,digitalSignature";
	return "critical,digitalSignature,keyAgreement"; /* ECDH for S/MIME encryption */
}

/* One GENERAL_NAME, built directly: the openssl.cnf syntax would split a URL at a comma. */
static GENERAL_NAMES *
general_names_one(int type, const char *text)
{
	g_autoptr(GENERAL_NAMES) names = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *name = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

	if (names == NULL || name == NULL || ia5 == NULL || !ASN1_STRING_set(ia5, text, -1)) {
		GENERAL_NAME_free(name);
		ASN1_IA5STRING_free(ia5);
		return NULL;
	}
	GENERAL_NAME_set0_value(name, type, ia5);
	if (!sk_GENERAL_NAME_push(names, name)) {
		GENERAL_NAME_free(name);
		return NULL;
	}
	return g_steal_pointer(&names);
}

static gboolean
add_san_email(X509 *cert, const char *email, GError **error)
{
	g_autoptr(GENERAL_NAMES) names = general_names_one(GEN_EMAIL, email);

	if (names == NULL || X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, 0) != 1)
		return hk_ossl_set_error(error, "cannot add subjectAltName email:%s", email);
	return TRUE;
}

static gboolean
add_crl_dp(X509 *cert, const char *url, GError **error)
{
	g_autoptr(CRL_DIST_POINTS) points = sk_DIST_POINT_new_null();
	DIST_POINT *point = DIST_POINT_new();
	GENERAL_NAMES *names = general_names_one(GEN_URI, url);

	if (points == NULL || point == NULL || names == NULL ||
	    (point->distpoint = DIST_POINT_NAME_new()) == NULL) {
		DIST_POINT_free(point);
		GENERAL_NAMES_free(names);
		return hk_ossl_set_error(error, "cannot make the CRL distribution point");
	}
	point->distpoint->type = 0; /* fullName */
	point->distpoint->name.fullname = names;
	if (!sk_DIST_POINT_push(points, point)) {
		DIST_POINT_free(point);
		return hk_ossl_set_error(error, "cannot make the CRL distribution point");
	}
	if (X509_add1_ext_i2d(cert, NID_crl_distribution_points, points, 0, 0) != 1)
		return hk_ossl_set_error(error, "cannot add crlDistributionPoints URI:%s", url);
	return TRUE;
}

static gboolean
issue_add_extensions(CertdState *state, IssueJob *job, X509 *cert, GError **error)
{
	X509 *ca = state->ca_cert;

	if (!certd_cert_add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE", error) ||
	    !certd_cert_add_ext(cert, ca, NID_key_usage, issue_key_usage(job), error) ||
	    !certd_cert_add_ext(cert, ca, NID_ext_key_usage, eku_values[job->profile], error) ||
	    !add_san_email(cert, job->email, error) ||
	    !certd_cert_add_ext(cert, ca, NID_subject_key_identifier, "hash", error) ||
	    !certd_cert_add_ext(cert, ca, NID_authority_key_identifier, "keyid:always", error))
		return FALSE;
	return job->crl_url == NULL || add_crl_dp(cert, job->crl_url, error);
}

static gboolean
issue_build_cert(CertdState *state, IssueJob *job, GError **error)
{
	g_autoptr(X509) cert = X509_new();
	g_autoptr(ASN1_INTEGER) serial = certd_serial_random(error);
	X509_NAME *subject = X509_get_subject_name(cert);

	if (serial == NULL)
		return FALSE;
	if (!X509_set_version(cert, X509_VERSION_3) || !X509_set_serialNumber(cert, serial) ||
	    !X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const guchar *)job->cn, -1,
	                                -1, 0) ||
	    !X509_set_issuer_name(cert, X509_get_subject_name(state->ca_cert)) ||
	    !X509_set_pubkey(cert, job->key))
		return hk_ossl_set_error(error, "cannot build the certificate");
	if (!certd_cert_set_validity(cert, job->days, error) ||
	    !issue_add_extensions(state, job, cert, error) || !certd_ca_sign(state, cert, error))
		return FALSE;
	job->cert = g_steal_pointer(&cert);
	return TRUE;
}

/* friendlyName as UTF-8 (PKCS12_create would read a non-ASCII CN as Latin-1) and the
 * localKeyID that pairs the key with its certificate. */
static gboolean
p12_bag_attrs(PKCS12_SAFEBAG *bag, const char *name, guchar *keyid, guint keyid_len)
{
	return bag != NULL && PKCS12_add_friendlyname_utf8(bag, name, -1) &&
	       PKCS12_add_localkeyid(bag, keyid, (int)keyid_len);
}

static gboolean
p12_add_certs(CertdP12Safes **safes, CertdState *state, IssueJob *job, int nid, guchar *keyid,
              guint keyid_len)
{
	g_autoptr(CertdP12Bags) bags = NULL;
	PKCS12_SAFEBAG *bag = PKCS12_add_cert(&bags, job->cert);

	return p12_bag_attrs(bag, job->cn, keyid, keyid_len) &&
	       PKCS12_add_cert(&bags, state->ca_cert) != NULL &&
	       PKCS12_add_safe_ex(safes, bags, nid, P12_ITER, job->password, NULL, NULL);
}

static gboolean
p12_add_key(CertdP12Safes **safes, IssueJob *job, int nid, guchar *keyid, guint keyid_len)
{
	g_autoptr(CertdP12Bags) bags = NULL;
	PKCS12_SAFEBAG *bag =
	        PKCS12_add_key_ex(&bags, job->key, 0, P12_ITER, nid, job->password, NULL, NULL);

	/* the key bag is shrouded (encrypted) itself; its safe needs no second layer */
	return p12_bag_attrs(bag, job->cn, keyid, keyid_len) &&
	       PKCS12_add_safe_ex(safes, bags, -1, 0, NULL, NULL, NULL);
}

/*
 * compat: pbeWithSHA1And3-KeyTripleDES-CBC and a SHA-1 MAC, what older Windows, macOS
 * Keychain and Android import; modern: PBES2 (PBKDF2, AES-256-CBC) and a SHA-256 MAC.
 */
static gboolean
issue_build_p12(CertdState *state, IssueJob *job, GError **error)
{
	int nid = job->modern ? NID_aes_256_cbc : NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
	const EVP_MD *mac = job->modern ? EVP_sha256() : EVP_sha1();
	g_autoptr(CertdP12Safes) safes = NULL;
	g_autoptr(PKCS12) p12 = NULL;
	guchar keyid[EVP_MAX_MD_SIZE];
	guint keyid_len = 0;
	guchar *der = NULL;
	int len;

	if (!X509_digest(job->cert, EVP_sha1(), keyid, &keyid_len) ||
	    !p12_add_certs(&safes, state, job, nid, keyid, keyid_len) ||
	    !p12_add_key(&safes, job, nid, keyid, keyid_len) ||
	    (p12 = PKCS12_add_safes_ex(safes, 0, NULL, NULL)) == NULL ||
	    !PKCS12_set_mac(p12, job->password, -1, NULL, 0, P12_ITER, mac) ||
	    (len = i2d_PKCS12(p12, &der)) <= 0)
		return hk_ossl_set_error(error, "cannot make the PKCS#12 file");
	job->p12 = g_bytes_new(der, (gsize)len);
	OPENSSL_free(der);
	return TRUE;
}

static gboolean
issue_describe(IssueJob *job, GError **error)
{
	job->serial = certd_serial_to_hex(X509_get0_serialNumber(job->cert));
	job->fingerprint = hk_ossl_fingerprint_cert(job->cert, error);
	if (job->fingerprint == NULL)
		return FALSE;
	job->pubkey_fp = hk_ossl_fingerprint_pubkey(job->cert, error);
	return job->pubkey_fp != NULL;
}

/* Worker: a key (once), then a certificate and its P12 (again after a serial clash). */
static gboolean
issue_work(CertdState *state, gpointer data, GError **error)
{
	IssueJob *job = data;

	if (job->key == NULL && (job->key = certd_key_generate(job->key_spec, error)) == NULL)
		return FALSE;
	if (job->password == NULL)
		job->password = certd_password_generate(P12_PASSWORD_LEN);
	issue_job_clear_output(job);
	job->attempts++;
	return issue_build_cert(state, job, error) && issue_build_p12(state, job, error) &&
	       issue_describe(job, error);
}

/* ===== cert.issue: back in the main loop ===== */

typedef struct {
	CertdState *state;
	IssueJob *job;
	gint64 created;
	gint64 not_before;
	gint64 not_after;
	char *dir;  /* "certs/<name>", as the dir column holds it */
	char *path; /* absolute */
} IssueCommit;

static void
issue_commit_clear(IssueCommit *c)
{
	g_free(c->dir);
	g_free(c->path);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(IssueCommit, issue_commit_clear)

static void
issue_commit_init(IssueCommit *c, CertdState *state, IssueJob *job)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree char *stamp = g_date_time_format(now, "%Y%m%d-%H%M%S");
	g_autofree char *prefix = g_strndup(job->serial, 8);
	g_autofree char *name = g_strdup_printf("%s-%s", stamp, prefix);

	c->state = state;
	c->job = job;
	c->created = g_date_time_to_unix(now);
	c->not_before = certd_asn1_time_to_unix(X509_get0_notBefore(job->cert));
	c->not_after = certd_asn1_time_to_unix(X509_get0_notAfter(job->cert));
	c->dir = g_build_filename("certs", name, NULL);
	c->path = path_in_state(state, c->dir);
}

/* A serial already in the database (or a folder of that name) means: sign again. */
static gboolean
issue_is_taken(IssueCommit *c, gboolean *taken, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(c->state->db, "SELECT 1 FROM certs WHERE serial = ?", error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, c->job->serial, -1, SQLITE_STATIC);
	*taken = sqlite3_step(stmt) == SQLITE_ROW || g_file_test(c->path, G_FILE_TEST_EXISTS);
	return TRUE;
}

static json_object *
issue_profile_json(IssueCommit *c)
{
	IssueJob *job = c->job;
	json_object *obj = json_object_new_object();

	certd_json_add_string(obj, HK_CERTD_KEY_SERIAL, job->serial);
	certd_json_add_string(obj, HK_CERTD_KEY_CN, job->cn);
	certd_json_add_string(obj, HK_CERTD_KEY_EMAIL, job->email);
	certd_json_add_string(obj, HK_CERTD_KEY_USER, job->user);
	certd_json_add_string(obj, HK_CERTD_KEY_KEY, job->key_spec);
	json_object_object_add(obj, HK_CERTD_KEY_DAYS, json_object_new_int64(job->days));
	certd_json_add_string(obj, HK_CERTD_KEY_PROFILE, profile_names[job->profile]);
	certd_json_add_string(obj, HK_CERTD_KEY_P12_FORMAT, p12_names[job->modern]);
	certd_json_add_string(obj, HK_CERTD_KEY_MEMO, job->memo);
	certd_json_add_time(obj, HK_CERTD_KEY_CREATED, c->created);
	certd_json_add_time(obj, HK_CERTD_KEY_NOT_BEFORE, c->not_before);
	certd_json_add_time(obj, HK_CERTD_KEY_NOT_AFTER, c->not_after);
	certd_json_add_string(obj, HK_CERTD_KEY_FINGERPRINT, job->fingerprint);
	certd_json_add_string(obj, HK_CERTD_KEY_PUBKEY_FP, job->pubkey_fp);
	certd_json_add_string(obj, HK_CERTD_KEY_STATUS, HK_CERTD_STATUS_VALID);
	return obj;
}

/* profile.json's text: pretty, one trailing newline */
static char *
json_file_text(json_object *obj)
{
	return g_strconcat(json_object_to_json_string_ext(
	                           obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE),
	                   "\n", NULL);
}

static gboolean
write_json_file(const char *dir, const char *name, json_object *obj, GError **error)
{
	g_autofree char *text = json_file_text(obj);

	return certd_store_write(dir, name, text, strlen(text), 0600, error);
}

/* cert.pem, cert.p12 and profile.json in a new folder: one fsync a file, one a folder */
static gboolean
issue_write_files(IssueCommit *c, GError **error)
{
	g_autofree char *pem = certd_cert_to_pem(c->job->cert);
	g_autoptr(json_object) profile = issue_profile_json(c);
	g_autofree char *profile_text = json_file_text(profile);
	gsize p12_len = 0;
	const void *p12 = g_bytes_get_data(c->job->p12, &p12_len);
	CertdStoreFile files[3];

	if (pem == NULL)
		return hk_ossl_set_error(error, "cannot encode the certificate");
	files[0] = (CertdStoreFile){"cert.pem", pem, strlen(pem), 0644};
	files[1] = (CertdStoreFile){"cert.p12", p12, p12_len, 0600};
	files[2] = (CertdStoreFile){"profile.json", profile_text, strlen(profile_text), 0600};
	return certd_store_write_dir(c->path, files, G_N_ELEMENTS(files), error);
}

static char *
name_to_string(const X509_NAME *name)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;

	/* RFC 2253, with UTF-8 left as it is rather than escaped */
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
		return g_strdup("");
	len = BIO_get_mem_data(bio, &data);
	return g_strndup(data, (gsize)len);
}

static void
bind_text_or_null(sqlite3_stmt *stmt, int index, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, index);
}

static gboolean
issue_insert_row(HkDb *db, IssueCommit *c, GError **error)
{
	IssueJob *job = c->job;
	g_autofree char *subject = name_to_string(X509_get_subject_name(job->cert));
	g_autofree char *issuer = name_to_string(X509_get_issuer_name(job->cert));
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        db,
	        "INSERT INTO certs (kind, serial, user_id, cn, email, key_type, profile, days, "
	        "memo,"
	        " subject, issuer, not_before, not_after, fingerprint, pubkey_fingerprint, status,"
	        " p12_password, dir, created) VALUES ('client', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
	        " ?10, ?11, ?12, ?13, ?14, 'valid', ?15, ?16, ?17)",
	        error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, job->serial, -1, SQLITE_STATIC);
	if (job->user_id > 0)
		sqlite3_bind_int64(stmt, 2, job->user_id);
	sqlite3_bind_text(stmt, 3, job->cn, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, job->email, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 5, job->key_spec, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 6, profile_names[job->profile], -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 7, job->days);
	bind_text_or_null(stmt, 8, job->memo);
	sqlite3_bind_text(stmt, 9, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 10, issuer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 11, c->not_before);
	sqlite3_bind_int64(stmt, 12, c->not_after);
	sqlite3_bind_text(stmt, 13, job->fingerprint, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 14, job->pubkey_fp, -1, SQLITE_STATIC);
	/* STATIC: SQLite keeps no copy of the password of its own to leave behind */
	bind_text_or_null(stmt, 15, job->keep_password ? job->password : NULL);
	sqlite3_bind_text(stmt, 16, c->dir, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 17, c->created);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return hk_db_set_error(db, error, "cannot record the certificate");
	return TRUE;
}

/* The files first, then the row: the row is the commit point. */
static gboolean
issue_commit_txn(HkDb *db, gpointer data, GError **error)
{
	IssueCommit *c = data;

	return issue_write_files(c, error) && issue_insert_row(db, c, error);
}

static json_object *
issue_event(IssueJob *job)
{
	json_object *data = json_object_new_object();

	certd_json_add_string(data, HK_CERTD_KEY_SERIAL, job->serial);
	certd_json_add_string(data, HK_CERTD_KEY_FINGERPRINT, job->fingerprint);
	certd_json_add_string(data, HK_CERTD_KEY_PUBKEY_FP, job->pubkey_fp);
	certd_json_add_string(data, HK_CERTD_KEY_USER, job->user);
	return data;
}

static json_object *
issue_result(IssueCommit *c)
{
	IssueJob *job = c->job;
	json_object *result = json_object_new_object();
	gsize p12_len = 0;
	const void *p12 = g_bytes_get_data(job->p12, &p12_len);

	certd_json_add_string(result, HK_CERTD_KEY_SERIAL, job->serial);
	certd_json_add_string(result, HK_CERTD_KEY_FINGERPRINT, job->fingerprint);
	certd_json_add_string(result, HK_CERTD_KEY_PUBKEY_FP, job->pubkey_fp);
	certd_json_add_time(result, HK_CERTD_KEY_NOT_BEFORE, c->not_before);
	certd_json_add_time(result, HK_CERTD_KEY_NOT_AFTER, c->not_after);
	certd_json_add_string(result, HK_CERTD_KEY_CN, job->cn);
	certd_json_add_string(result, HK_CERTD_KEY_EMAIL, job->email);
	certd_json_add_string(result, HK_CERTD_KEY_USER, job->user);
	certd_json_add_string(result, HK_CERTD_KEY_KEY, job->key_spec);
	certd_json_add_string(result, HK_CERTD_KEY_PROFILE, profile_names[job->profile]);
	certd_json_add_string(result, HK_CERTD_KEY_P12_FORMAT, p12_names[job->modern]);
	json_object_object_add(result, HK_CERTD_KEY_P12_BASE64, certd_json_base64(p12, p12_len));
	certd_json_add_string(result, HK_CERTD_KEY_P12_PASSWORD, job->password);
	certd_json_add_string(result, HK_CERTD_KEY_DIR, c->path);
	return result;
}

static void
issue_done(CertdState *state, HkIpcRequest *req, gpointer data, const GError *work_error);

/* Hands the job's contents to a new work item (the finished one frees its own data). */
static void
issue_again(CertdState *state, HkIpcRequest *req, IssueJob *job)
{
	IssueJob *again = g_memdup2(job, sizeof(*job));

	memset(job, 0, sizeof(*job));
	g_message("serial %s is taken; signing again with a new serial", again->serial);
	certd_work_start(state, req, issue_work, issue_done, again, issue_job_free);
}

static void
issue_done(CertdState *state, HkIpcRequest *req, gpointer data, const GError *work_error)
{
	IssueJob *job = data;
	g_auto(IssueCommit) c = {0};
	g_autoptr(GError) error = NULL;
	gboolean taken = FALSE;

	if (work_error != NULL) {
		hk_ipc_request_return_gerror(req, work_error);
		return;
	}
	issue_commit_init(&c, state, job);
	if (!issue_is_taken(&c, &taken, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	if (taken && job->attempts < ISSUE_ATTEMPTS) {
		issue_again(state, req, job);
		return;
	}
	if (taken || !hk_db_transaction(state->db, issue_commit_txn, &c, &error)) {
		g_autoptr(GError) cleanup = NULL;

		if (!taken && !certd_store_remove_tree(c.path, &cleanup))
			g_warning("%s", cleanup->message);
		hk_ipc_request_return_error(req, HK_IPC_ERR_INTERNAL,
		                            "cannot store the certificate: %s",
		                            error ? error->message : "no free serial number");
		return;
	}
	g_message("issued client certificate %s (CN=%s, %s, %s, %u days) in %s", job->serial,
	          job->cn, job->email, job->key_spec, job->days, c.dir);
	certd_emit(state, HK_CERTD_EV_CERT_ISSUED, issue_event(job));
	hk_ipc_request_return(req, issue_result(&c));
}

/* ===== cert.issue: the handler ===== */

static gboolean
check_days(gint64 days, GError **error)
{
	if (days < 1 || days > CLIENT_DAYS_MAX)
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "validity must be 1..%d days", CLIENT_DAYS_MAX);
	return TRUE;
}

static gboolean
check_memo(const char *memo, GError **error)
{
	if (memo == NULL)
		return TRUE;
	if (strlen(memo) > MEMO_MAX)
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "the memo has %zu bytes, at most %d are allowed",
		                       strlen(memo), MEMO_MAX);
	if (!g_utf8_validate(memo, -1, NULL))
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "the memo is not valid UTF-8");
	for (const char *p = memo; *p != '\0'; p = g_utf8_next_char(p)) {
		if (g_unichar_iscntrl(g_utf8_get_char(p)))
			return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
			                       "the memo contains a control character");
	}
	return TRUE;
}

typedef struct {
	const char *cn, *email, *key, *memo, *user, *profile, *format;
	gint64 days, user_id;
	int profile_index, format_index;
} IssueParams;

static gboolean
issue_check(CertdState *state, IssueParams *p, GError **error)
{
	return certd_ca_require(state, error) && certd_check_cn(p->cn, error) &&
	       certd_check_email(p->email, error) &&
	       certd_key_spec_check(p->key, client_keys, error) && check_days(p->days, error) &&
	       check_choice("profile", p->profile, profile_names, &p->profile_index, error) &&
	       check_choice("p12_format", p->format, p12_names, &p->format_index, error) &&
	       check_memo(p->memo, error) &&
	       (p->user == NULL || find_user(state, p->user, &p->user_id, error));
}

static IssueJob *
issue_job_new(CertdState *state, json_object *params, GError **error)
{
	HkConfig *config = state->config;
	const char *crl_url = hk_config_get_string(config, CERTD_SECTION, CERTD_CONF_CRL_URL);
	IssueParams p = {
	        .cn = hk_json_get_string(params, HK_CERTD_KEY_CN),
	        .email = hk_json_get_string(params, HK_CERTD_KEY_EMAIL),
	        .key = param_or_conf(state, params, HK_CERTD_KEY_KEY, CERTD_CONF_DEFAULT_KEY),
	        .memo = hk_json_get_string(params, HK_CERTD_KEY_MEMO),
	        .user = hk_json_get_string(params, HK_CERTD_KEY_USER),
	        .profile = param_or_conf(state, params, HK_CERTD_KEY_PROFILE,
	                                 CERTD_CONF_DEFAULT_PROFILE),
	        .format = param_or_conf(state, params, HK_CERTD_KEY_P12_FORMAT,
	                                CERTD_CONF_P12_FORMAT),
	        .days = hk_json_get_int(
	                params, HK_CERTD_KEY_DAYS,
	                hk_config_get_int(config, CERTD_SECTION, CERTD_CONF_DEFAULT_DAYS)),
	};
	IssueJob *job;

	if (!issue_check(state, &p, error))
		return NULL;
	job = g_new0(IssueJob, 1);
	job->cn = g_strdup(p.cn);
	job->email = g_strdup(p.email);
	job->key_spec = g_strdup(p.key);
	job->memo = p.memo && *p.memo ? g_strdup(p.memo) : NULL;
	job->user = g_strdup(p.user);
	job->user_id = p.user_id;
	job->days = (guint)p.days;
	job->profile = (IssueProfile)p.profile_index;
	job->modern = p.format_index == 1;
	job->keep_password =
	        hk_config_get_bool(config, CERTD_SECTION, CERTD_CONF_KEEP_P12_PASSWORD);
	job->crl_url = crl_url && *crl_url ? g_strdup(crl_url) : NULL;
	return job;
}

static void
op_cert_issue(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	IssueJob *job = issue_job_new(state, params, &error);

	if (job == NULL) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	certd_work_start(state, req, issue_work, issue_done, job, issue_job_free);
}

/* ===== reading certificates back ===== */

/* Revoked stays revoked; anything else past its notAfter is expired. ?1 is now. */
#define SHOWN_STATUS                                                                               \
	"CASE WHEN c.status != 'revoked' AND c.not_after IS NOT NULL AND c.not_after < ?1"         \
	" THEN 'expired' ELSE c.status END"

#define ROW_SELECT                                                                                 \
	"SELECT c.id, c.kind, c.name, c.serial, c.cn, c.email, u.name, c.key_type, c.profile,"     \
	" c.days, c.memo, c.subject, c.issuer, c.not_before, c.not_after, c.fingerprint,"          \
	" c.pubkey_fingerprint, " SHOWN_STATUS ", c.revoked_at, c.revoke_reason, c.dir,"           \
	" c.created, (SELECT group_concat(a.service) FROM assignments a WHERE a.cert_id = c.id)"   \
	" FROM certs c LEFT JOIN users u ON u.id = c.user_id"

enum {
	COL_ID,
	COL_KIND,
	COL_NAME,
	COL_SERIAL,
	COL_CN,
	COL_EMAIL,
	COL_USER,
	COL_KEY,
	COL_PROFILE,
	COL_DAYS,
	COL_MEMO,
	COL_SUBJECT,
	COL_ISSUER,
	COL_NOT_BEFORE,
	COL_NOT_AFTER,
	COL_FINGERPRINT,
	COL_PUBKEY_FP,
	COL_STATUS,
	COL_REVOKED_AT,
	COL_REASON,
	COL_DIR,
	COL_CREATED,
	COL_SERVICES,
};

typedef enum {
	FIELD_TEXT,
	FIELD_INT,
	FIELD_TIME,
} FieldType;

typedef struct {
	int column;
	const char *key;
	FieldType type;
} RowField;

/* cert.show: everything (dir, services and cert_pem are added apart). */
static const RowField show_fields[] = {
        {COL_SERIAL, HK_CERTD_KEY_SERIAL, FIELD_TEXT},
        {COL_NAME, HK_CERTD_KEY_NAME, FIELD_TEXT},
        {COL_KIND, HK_CERTD_KEY_KIND, FIELD_TEXT},
        {COL_CN, HK_CERTD_KEY_CN, FIELD_TEXT},
        {COL_EMAIL, HK_CERTD_KEY_EMAIL, FIELD_TEXT},
        {COL_USER, HK_CERTD_KEY_USER, FIELD_TEXT},
        {COL_STATUS, HK_CERTD_KEY_STATUS, FIELD_TEXT},
        {COL_KEY, HK_CERTD_KEY_KEY, FIELD_TEXT},
        {COL_PROFILE, HK_CERTD_KEY_PROFILE, FIELD_TEXT},
        {COL_DAYS, HK_CERTD_KEY_DAYS, FIELD_INT},
        {COL_MEMO, HK_CERTD_KEY_MEMO, FIELD_TEXT},
        {COL_SUBJECT, HK_CERTD_KEY_SUBJECT, FIELD_TEXT},
        {COL_ISSUER, HK_CERTD_KEY_ISSUER, FIELD_TEXT},
        {COL_NOT_BEFORE, HK_CERTD_KEY_NOT_BEFORE, FIELD_TIME},
        {COL_NOT_AFTER, HK_CERTD_KEY_NOT_AFTER, FIELD_TIME},
        {COL_FINGERPRINT, HK_CERTD_KEY_FINGERPRINT, FIELD_TEXT},
        {COL_PUBKEY_FP, HK_CERTD_KEY_PUBKEY_FP, FIELD_TEXT},
        {COL_REVOKED_AT, HK_CERTD_KEY_REVOKED_AT, FIELD_TIME},
        {COL_REASON, HK_CERTD_KEY_REASON, FIELD_TEXT},
        {COL_CREATED, HK_CERTD_KEY_CREATED, FIELD_TIME},
        {-1},
};

/* cert.list: one line's worth. */
static const RowField list_fields[] = {
        {COL_SERIAL, HK_CERTD_KEY_SERIAL, FIELD_TEXT},
        {COL_NAME, HK_CERTD_KEY_NAME, FIELD_TEXT},
        {COL_KIND, HK_CERTD_KEY_KIND, FIELD_TEXT},
        {COL_CN, HK_CERTD_KEY_CN, FIELD_TEXT},
        {COL_EMAIL, HK_CERTD_KEY_EMAIL, FIELD_TEXT},
        {COL_USER, HK_CERTD_KEY_USER, FIELD_TEXT},
        {COL_STATUS, HK_CERTD_KEY_STATUS, FIELD_TEXT},
        {COL_NOT_AFTER, HK_CERTD_KEY_NOT_AFTER, FIELD_TIME},
        {COL_FINGERPRINT, HK_CERTD_KEY_FINGERPRINT, FIELD_TEXT},
        {-1},
};

static const char *
column_text(sqlite3_stmt *stmt, int column)
{
	return (const char *)sqlite3_column_text(stmt, column);
}

static int
compare_strings(const void *a, const void *b)
{
	return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

/* "smtpd,gateway" (group_concat's order is SQLite's) -> ["gateway", "smtpd"] */
static json_object *
services_array(const char *joined)
{
	g_auto(GStrv) names = g_strsplit(joined ? joined : "", ",", -1);
	json_object *array = json_object_new_array();

	qsort(names, g_strv_length(names), sizeof(char *), compare_strings);
	for (guint i = 0; names[i] != NULL; i++) {
		if (*names[i] != '\0')
			json_object_array_add(array, json_object_new_string(names[i]));
	}
	return array;
}

/* One row of ROW_SELECT; NULL columns are left out. */
static json_object *
row_to_json(CertdState *state, sqlite3_stmt *stmt, const RowField *fields)
{
	json_object *obj = json_object_new_object();
	g_autofree char *dir = path_in_state(state, column_text(stmt, COL_DIR));

	for (const RowField *f = fields; f->column >= 0; f++) {
		gint64 number = sqlite3_column_int64(stmt, f->column);

		if (sqlite3_column_type(stmt, f->column) == SQLITE_NULL)
			continue;
		if (f->type == FIELD_TEXT)
			certd_json_add_string(obj, f->key, column_text(stmt, f->column));
		else if (f->type == FIELD_INT)
			json_object_object_add(obj, f->key, json_object_new_int64(number));
		else
			certd_json_add_time(obj, f->key, number);
	}
	json_object_object_add(obj, HK_CERTD_KEY_SERVICES,
	                       services_array(column_text(stmt, COL_SERVICES)));
	certd_json_add_string(obj, HK_CERTD_KEY_DIR, dir);
	return obj;
}

/* A serial as people paste it ("serial=4A3B..", "4a:3b:..") in certd_serial_to_hex's form. */
static char *
serial_normalize(const char *text)
{
	g_autoptr(GString) hex = g_string_new(NULL);
	g_autoptr(BIGNUM) bn = NULL;
	char *bn_hex;
	char *serial;

	if (g_ascii_strncasecmp(text, "serial=", 7) == 0)
		text += 7;
	for (const char *p = text; *p != '\0'; p++) {
		if (g_ascii_isxdigit(*p))
			g_string_append_c(hex, *p);
		else if (*p != ':' && *p != ' ')
			return NULL;
	}
	if (hex->len == 0 || hex->len > 128 || BN_hex2bn(&bn, hex->str) == 0)
		return NULL;
	bn_hex = BN_bn2hex(bn);
	serial = g_strdup(bn_hex);
	OPENSSL_free(bn_hex);
	return serial;
}

/* 1: found (*rowid set), 0: not found, -1: error. */
static int
find_by(CertdState *state, const char *sql, const char *value, gint64 *rowid, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(state->db, sql, error);

	if (stmt == NULL)
		return -1;
	sqlite3_bind_text(stmt, 1, value, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return 0;
	*rowid = sqlite3_column_int64(stmt, 0);
	return 1;
}

/* id: a serial number, a certificate fingerprint (any form) or a server certificate name. */
static gboolean
cert_find(CertdState *state, const char *id, gint64 *rowid, GError **error)
{
	static const char *const sql[] = {
	        "SELECT id FROM certs WHERE serial = ?",
	        "SELECT id FROM certs WHERE fingerprint = ?",
	        "SELECT id FROM certs WHERE name = ?",
	};
	g_autofree char *serial = NULL;
	g_autofree char *fingerprint = NULL;
	const char *values[G_N_ELEMENTS(sql)];

	if (strlen(id) > ID_MAX)
		return certd_set_error(
		        error, HK_IPC_ERROR_INVALID_ARGUMENT,
		        "the id is longer than %d bytes: give a serial number, a fingerprint or "
		        "a name",
		        ID_MAX);
	values[0] = serial = serial_normalize(id);
	values[1] = fingerprint = hk_ossl_fingerprint_normalize(id, NULL);
	values[2] = id;
	for (guint i = 0; i < G_N_ELEMENTS(sql); i++) {
		int found = values[i] ? find_by(state, sql[i], values[i], rowid, error) : 0;

		if (found != 0)
			return found > 0;
	}
	return certd_set_error(error, HK_IPC_ERROR_NOT_FOUND,
	                       "no certificate has the serial number, fingerprint or name \"%s\"",
	                       id);
}

static json_object *
cert_load(CertdState *state, gint64 rowid, const RowField *fields, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(state->db, ROW_SELECT " WHERE c.id = ?2", error);

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, certd_now_unix());
	sqlite3_bind_int64(stmt, 2, rowid);
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		certd_set_error(error, HK_IPC_ERROR_NOT_FOUND, "the certificate is gone");
		return NULL;
	}
	return row_to_json(state, stmt, fields);
}

/* cert_find + cert_load for the handlers that take an id. */
static json_object *
cert_get(CertdState *state, json_object *params, const RowField *fields, gint64 *rowid,
         GError **error)
{
	if (!cert_find(state, hk_json_get_string(params, HK_CERTD_KEY_ID), rowid, error))
		return NULL;
	return cert_load(state, *rowid, fields, error);
}

/* How messages name a certificate: its serial, or a request's name. */
static const char *
cert_label(json_object *cert)
{
	const char *serial = hk_json_get_string(cert, HK_CERTD_KEY_SERIAL);

	return serial ? serial : hk_json_get_string(cert, HK_CERTD_KEY_NAME);
}

static gboolean
cert_is_client(json_object *cert)
{
	return g_strcmp0(hk_json_get_string(cert, HK_CERTD_KEY_KIND), "client") == 0;
}

/* ===== cert.show, cert.p12 ===== */

static gboolean
read_cert_file(json_object *cert, const char *name, char **data, gsize *len, GError **error)
{
	g_autofree char *path =
	        g_build_filename(hk_json_get_string(cert, HK_CERTD_KEY_DIR), name, NULL);
	g_autoptr(GError) local = NULL;

	if (certd_store_read(path, data, len, &local))
		return TRUE;
	return certd_set_error(error, HK_IPC_ERROR_INTERNAL,
	                       "the files of certificate %s are damaged: %s", cert_label(cert),
	                       local->message);
}

/* Server certificates keep their files as certd-servercert.c lays them out; a request
 * has no certificate at all. */
static gboolean
show_add_pem(json_object *cert, GError **error)
{
	g_autofree char *pem = NULL;
	gsize len = 0;

	if (!cert_is_client(cert)) {
		g_autofree char *path = g_build_filename(hk_json_get_string(cert, HK_CERTD_KEY_DIR),
		                                         "cert.pem", NULL);

		if (g_file_get_contents(path, &pem, NULL, NULL))
			certd_json_add_string(cert, HK_CERTD_KEY_CERT_PEM, pem);
		return TRUE;
	}
	if (!read_cert_file(cert, "cert.pem", &pem, &len, error))
		return FALSE;
	certd_json_add_string(cert, HK_CERTD_KEY_CERT_PEM, pem);
	return TRUE;
}

static gboolean
show_add_password(CertdState *state, gint64 rowid, json_object *cert, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;

	if (!cert_is_client(cert))
		return certd_set_error(
		        error, HK_IPC_ERROR_INVALID_ARGUMENT,
		        "%s is a server certificate: only client certificates have a generated "
		        "P12 password",
		        cert_label(cert));
	stmt = hk_db_prepare(state->db, "SELECT p12_password FROM certs WHERE id = ?", error);
	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, rowid);
	if (sqlite3_step(stmt) != SQLITE_ROW || sqlite3_column_type(stmt, 0) == SQLITE_NULL)
		return certd_set_error(
		        error, HK_IPC_ERROR_NOT_FOUND,
		        "the P12 password of %s was not kept ([certd] keep_p12_password was "
		        "off when it was issued); issue a new certificate if it is lost",
		        cert_label(cert));
	certd_json_add_string(cert, HK_CERTD_KEY_P12_PASSWORD, column_text(stmt, 0));
	return TRUE;
}

static void
op_cert_show(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) cert = NULL;
	gint64 rowid = 0;

	cert = cert_get(state, params, show_fields, &rowid, &error);
	if (cert == NULL || !show_add_pem(cert, &error) ||
	    (hk_json_get_bool(params, HK_CERTD_KEY_PASSWORD, FALSE) &&
	     !show_add_password(state, rowid, cert, &error))) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	hk_ipc_request_return(req, g_steal_pointer(&cert));
}

static void
op_cert_p12(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) cert = NULL;
	g_autofree char *p12 = NULL;
	json_object *result;
	gint64 rowid = 0;
	gsize len = 0;

	cert = cert_get(state, params, list_fields, &rowid, &error);
	if (cert != NULL && !cert_is_client(cert))
		certd_set_error(&error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                "%s is a server certificate: export it with hankoctl cert export",
		                cert_label(cert));
	if (error != NULL || !read_cert_file(cert, "cert.p12", &p12, &len, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	result = json_object_new_object();
	certd_json_add_string(result, HK_CERTD_KEY_SERIAL, cert_label(cert));
	certd_json_add_string(result, HK_CERTD_KEY_CN, hk_json_get_string(cert, HK_CERTD_KEY_CN));
	json_object_object_add(result, HK_CERTD_KEY_P12_BASE64, certd_json_base64(p12, len));
	hk_ipc_request_return(req, result);
}

/* ===== cert.list ===== */

typedef struct {
	const char *user;
	const char *status;
	const char *kind;
	gint64 expiring_days; /* -1: no filter */
} ListFilter;

static gboolean
list_check(CertdState *state, json_object *params, ListFilter *f, GError **error)
{
	gint64 user_id = 0;
	int index;

	f->user = hk_json_get_string(params, HK_CERTD_KEY_USER);
	f->status = hk_json_get_string(params, HK_CERTD_KEY_STATUS);
	f->kind = hk_json_get_string(params, HK_CERTD_KEY_KIND);
	f->expiring_days = hk_json_get_int(params, HK_CERTD_KEY_EXPIRING, -1);
	if (f->status != NULL && !check_choice("status", f->status, list_statuses, &index, error))
		return FALSE;
	if (f->kind != NULL && !check_choice("kind", f->kind, kinds, &index, error))
		return FALSE;
	if (json_object_object_get_ex(params, HK_CERTD_KEY_EXPIRING, NULL) &&
	    (f->expiring_days < 0 || f->expiring_days > EXPIRING_MAX))
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "expiring_days must be 0..%d", EXPIRING_MAX);
	return f->user == NULL || find_user(state, f->user, &user_id, error);
}

static sqlite3_stmt *
list_query(CertdState *state, const ListFilter *f, GError **error)
{
	gint64 now = certd_now_unix();
	sqlite3_stmt *stmt = hk_db_prepare(
	        state->db,
	        ROW_SELECT " WHERE (?2 IS NULL OR u.name = ?2) AND (?3 IS NULL OR c.kind = ?3)"
	                   " AND (?4 IS NULL OR " SHOWN_STATUS " = ?4)"
	                   " AND (?5 IS NULL OR (c.status != 'revoked' AND c.not_after >= ?1"
	                   " AND c.not_after <= ?5)) ORDER BY c.id",
	        error);

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, now);
	bind_text_or_null(stmt, 2, f->user);
	bind_text_or_null(stmt, 3, f->kind);
	bind_text_or_null(stmt, 4, f->status);
	if (f->expiring_days >= 0)
		sqlite3_bind_int64(stmt, 5, now + f->expiring_days * DAY_SECONDS);
	return stmt;
}

static void
op_cert_list(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(sqlite3_stmt) stmt = NULL;
	ListFilter filter;
	json_object *certs, *result;

	if (!list_check(state, params, &filter, &error) ||
	    (stmt = list_query(state, &filter, &error)) == NULL) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	certs = json_object_new_array();
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		json_object *item = row_to_json(state, stmt, list_fields);

		json_object_object_del(item, HK_CERTD_KEY_DIR);
		json_object_array_add(certs, item);
	}
	result = json_object_new_object();
	json_object_object_add(result, HK_CERTD_KEY_CERTS, certs);
	hk_ipc_request_return(req, result);
}

/* ===== cert.revoke ===== */

typedef struct {
	gint64 rowid;
	gint64 when;
	const char *reason;
} RevokeTxn;

static gboolean
revoke_txn(HkDb *db, gpointer data, GError **error)
{
	RevokeTxn *t = data;
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        db,
	        "UPDATE certs SET status = 'revoked', revoked_at = ?1, revoke_reason = ?2"
	        " WHERE id = ?3 AND status != 'revoked'",
	        error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, t->when);
	sqlite3_bind_text(stmt, 2, t->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, t->rowid);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return hk_db_set_error(db, error, "cannot revoke the certificate");
	if (sqlite3_changes(hk_db_handle(db)) != 1)
		return certd_set_error(error, HK_IPC_ERROR_CONFLICT,
		                       "the certificate is revoked already");
	return TRUE;
}

/* "keycompromise" -> "keyCompromise", as the CRL code and the database spell it. */
static char *
reason_canonical(const char *name)
{
	g_auto(GStrv) names = g_strsplit(certd_crl_reason_list(), ", ", -1);

	for (guint i = 0; names[i] != NULL; i++) {
		if (g_ascii_strcasecmp(names[i], name) == 0)
			return g_strdup(names[i]);
	}
	return NULL;
}

static gboolean
revoke_check(json_object *cert, GError **error)
{
	const char *status = hk_json_get_string(cert, HK_CERTD_KEY_STATUS);

	if (g_strcmp0(status, HK_CERTD_STATUS_REVOKED) == 0)
		return certd_set_error(error, HK_IPC_ERROR_CONFLICT,
		                       "certificate %s was revoked already at %s", cert_label(cert),
		                       hk_json_get_string(cert, HK_CERTD_KEY_REVOKED_AT));
	if (g_strcmp0(status, HK_CERTD_STATUS_REQUESTED) == 0)
		return certd_set_error(
		        error, HK_IPC_ERROR_INVALID_ARGUMENT,
		        "%s is a certificate request: there is no certificate to revoke",
		        cert_label(cert));
	return TRUE;
}

/* profile.json follows the database, which stays the source of truth if this fails. */
static void
revoke_update_profile(json_object *cert, const RevokeTxn *t, json_object *warnings)
{
	const char *dir = hk_json_get_string(cert, HK_CERTD_KEY_DIR);
	g_autofree char *path = g_build_filename(dir, "profile.json", NULL);
	g_autoptr(json_object) profile = NULL;
	g_autoptr(GError) error = NULL;

	if (!g_file_test(path, G_FILE_TEST_EXISTS))
		return;
	profile = json_object_from_file(path);
	if (profile == NULL || !json_object_is_type(profile, json_type_object))
		g_set_error(&error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s is not a JSON object",
		            path);
	if (error == NULL) {
		certd_json_add_string(profile, HK_CERTD_KEY_STATUS, HK_CERTD_STATUS_REVOKED);
		certd_json_add_time(profile, HK_CERTD_KEY_REVOKED_AT, t->when);
		certd_json_add_string(profile, HK_CERTD_KEY_REASON, t->reason);
		write_json_file(dir, "profile.json", profile, &error);
	}
	if (error != NULL) {
		g_warning("revoked %s, but %s", cert_label(cert), error->message);
		json_object_array_add(warnings, json_object_new_string(error->message));
	}
}

/* Client certificates go into the CRL at once; server certificates are not listed. */
static void
revoke_publish(CertdState *state, json_object *cert, json_object *warnings)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *message = NULL;

	if (!cert_is_client(cert) || certd_crl_update(state, &error))
		return;
	message = g_strdup_printf("the CRL could not be renewed: %s", error->message);
	g_warning("revoked %s, but %s", cert_label(cert), message);
	json_object_array_add(warnings, json_object_new_string(message));
}

static json_object *
revoke_event(json_object *cert)
{
	static const char *const keys[] = {HK_CERTD_KEY_SERIAL, HK_CERTD_KEY_FINGERPRINT,
	                                   HK_CERTD_KEY_PUBKEY_FP, HK_CERTD_KEY_USER, NULL};
	json_object *data = json_object_new_object();

	for (guint i = 0; keys[i] != NULL; i++)
		certd_json_add_string(data, keys[i], hk_json_get_string(cert, keys[i]));
	return data;
}

static json_object *
revoke_result(json_object *cert, const RevokeTxn *t, json_object *warnings)
{
	json_object *result = json_object_new_object();

	certd_json_add_string(result, HK_CERTD_KEY_SERIAL,
	                      hk_json_get_string(cert, HK_CERTD_KEY_SERIAL));
	certd_json_add_string(result, HK_CERTD_KEY_NAME,
	                      hk_json_get_string(cert, HK_CERTD_KEY_NAME));
	certd_json_add_string(result, HK_CERTD_KEY_KIND,
	                      hk_json_get_string(cert, HK_CERTD_KEY_KIND));
	certd_json_add_string(result, HK_CERTD_KEY_FINGERPRINT,
	                      hk_json_get_string(cert, HK_CERTD_KEY_FINGERPRINT));
	certd_json_add_string(result, HK_CERTD_KEY_STATUS, HK_CERTD_STATUS_REVOKED);
	certd_json_add_time(result, HK_CERTD_KEY_REVOKED_AT, t->when);
	certd_json_add_string(result, HK_CERTD_KEY_REASON, t->reason);
	json_object_object_add(result, HK_CERTD_KEY_WARNINGS, warnings);
	return result;
}

static void
op_cert_revoke(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) cert = NULL;
	const char *asked = hk_json_get_string(params, HK_CERTD_KEY_REASON);
	g_autofree char *reason = reason_canonical(asked ? asked : "unspecified");
	RevokeTxn t = {.when = certd_now_unix(), .reason = reason};
	json_object *warnings;

	if (reason == NULL) {
		certd_return_invalid(req, "unknown revocation reason \"%s\": use one of %s", asked,
		                     certd_crl_reason_list());
		return;
	}
	cert = cert_get(state, params, show_fields, &t.rowid, &error);
	if (cert == NULL || !revoke_check(cert, &error) ||
	    !hk_db_transaction(state->db, revoke_txn, &t, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	g_message("revoked %s certificate %s (%s)", hk_json_get_string(cert, HK_CERTD_KEY_KIND),
	          cert_label(cert), reason);
	warnings = json_object_new_array();
	revoke_update_profile(cert, &t, warnings);
	revoke_publish(state, cert, warnings);
	certd_emit(state, HK_CERTD_EV_CERT_REVOKED, revoke_event(cert));
	hk_ipc_request_return(req, revoke_result(cert, &t, warnings));
}

/* ===== cert.lookup: hanko-policyd's hot path, one indexed query ===== */

#define LOOKUP_SELECT                                                                              \
	"SELECT c.serial, c.cn, u.name, c.email, " SHOWN_STATUS ", c.not_after, c.kind,"           \
	" (SELECT group_concat(e.email, char(10)) FROM user_emails e WHERE e.user_id = c.user_id)" \
	" FROM certs c LEFT JOIN users u ON u.id = c.user_id"

/* The newest certificate for a key: a key certified twice answers for its latest. */
static const char lookup_by_cert_sql[] = LOOKUP_SELECT " WHERE c.fingerprint = ?2";
static const char lookup_by_key_sql[] =
        LOOKUP_SELECT " WHERE c.pubkey_fingerprint = ?2 AND c.fingerprint IS NOT NULL"
                      " ORDER BY c.id DESC LIMIT 1";

static char *
lookup_param(json_object *params, gboolean *by_key, GError **error)
{
	const char *fp = hk_json_get_string(params, HK_CERTD_KEY_FINGERPRINT);
	const char *pk = hk_json_get_string(params, HK_CERTD_KEY_PUBKEY_FP);
	g_autoptr(GError) local = NULL;
	char *normal;

	if ((fp == NULL) == (pk == NULL)) {
		certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                "give exactly one of " HK_CERTD_KEY_FINGERPRINT
		                " and " HK_CERTD_KEY_PUBKEY_FP);
		return NULL;
	}
	*by_key = pk != NULL;
	normal = hk_ossl_fingerprint_normalize(fp ? fp : pk, &local);
	if (normal == NULL)
		certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT, "%s: %s",
		                fp ? HK_CERTD_KEY_FINGERPRINT : HK_CERTD_KEY_PUBKEY_FP,
		                local->message);
	return normal;
}

/* The user's addresses, then the certificate's own unless it is one of them. */
static json_object *
lookup_emails(const char *user_emails, const char *own)
{
	g_auto(GStrv) emails = g_strsplit(user_emails ? user_emails : "", "\n", -1);
	json_object *array = json_object_new_array();
	gboolean have_own = own == NULL;

	for (guint i = 0; emails[i] != NULL; i++) {
		if (*emails[i] == '\0')
			continue;
		json_object_array_add(array, json_object_new_string(emails[i]));
		have_own = have_own || g_ascii_strcasecmp(emails[i], own) == 0;
	}
	if (!have_own)
		json_object_array_add(array, json_object_new_string(own));
	return array;
}

static json_object *
lookup_result(sqlite3_stmt *stmt)
{
	json_object *result = json_object_new_object();

	certd_json_add_string(result, HK_CERTD_KEY_SERIAL, column_text(stmt, 0));
	certd_json_add_string(result, HK_CERTD_KEY_CN, column_text(stmt, 1));
	certd_json_add_string(result, HK_CERTD_KEY_USER, column_text(stmt, 2));
	json_object_object_add(result, HK_CERTD_KEY_EMAILS,
	                       lookup_emails(column_text(stmt, 7), column_text(stmt, 3)));
	certd_json_add_string(result, HK_CERTD_KEY_STATUS, column_text(stmt, 4));
	if (sqlite3_column_type(stmt, 5) != SQLITE_NULL)
		certd_json_add_time(result, HK_CERTD_KEY_NOT_AFTER, sqlite3_column_int64(stmt, 5));
	certd_json_add_string(result, HK_CERTD_KEY_KIND, column_text(stmt, 6));
	return result;
}

static void
op_cert_lookup(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(sqlite3_stmt) stmt = NULL;
	gboolean by_key = FALSE;
	g_autofree char *fingerprint = lookup_param(params, &by_key, &error);

	if (fingerprint == NULL ||
	    (stmt = hk_db_prepare(state->db, by_key ? lookup_by_key_sql : lookup_by_cert_sql,
	                          &error)) == NULL) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	sqlite3_bind_int64(stmt, 1, certd_now_unix());
	sqlite3_bind_text(stmt, 2, fingerprint, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		certd_return_not_found(req, "no certificate has the %s %s",
		                       by_key ? "public key fingerprint" : "fingerprint",
		                       fingerprint);
		return;
	}
	hk_ipc_request_return(req, lookup_result(stmt));
}

/* ===== the table ===== */

static const HkIpcParam issue_params[] = {
        {HK_CERTD_KEY_CN, json_type_string, TRUE},
        {HK_CERTD_KEY_EMAIL, json_type_string, TRUE},
        {HK_CERTD_KEY_KEY, json_type_string},
        {HK_CERTD_KEY_DAYS, json_type_int},
        {HK_CERTD_KEY_MEMO, json_type_string},
        {HK_CERTD_KEY_USER, json_type_string},
        {HK_CERTD_KEY_PROFILE, json_type_string},
        {HK_CERTD_KEY_P12_FORMAT, json_type_string},
        {0},
};
static const HkIpcParam list_params[] = {
        {HK_CERTD_KEY_USER, json_type_string},
        {HK_CERTD_KEY_STATUS, json_type_string},
        {HK_CERTD_KEY_EXPIRING, json_type_int},
        {HK_CERTD_KEY_KIND, json_type_string},
        {0},
};
static const HkIpcParam show_params[] = {
        {HK_CERTD_KEY_ID, json_type_string, TRUE},
        {HK_CERTD_KEY_PASSWORD, json_type_boolean},
        {0},
};
static const HkIpcParam p12_params[] = {
        {HK_CERTD_KEY_ID, json_type_string, TRUE},
        {0},
};
static const HkIpcParam revoke_params[] = {
        {HK_CERTD_KEY_ID, json_type_string, TRUE},
        {HK_CERTD_KEY_REASON, json_type_string},
        {0},
};
static const HkIpcParam lookup_params[] = {
        {HK_CERTD_KEY_FINGERPRINT, json_type_string},
        {HK_CERTD_KEY_PUBKEY_FP, json_type_string},
        {0},
};

const HkIpcOp certd_client_ops[] = {
        {HK_CERTD_OP_CERT_ISSUE, CERTD_ADMIN, issue_params, op_cert_issue, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_CERT_LIST, CERTD_ADMIN, list_params, op_cert_list},
        {HK_CERTD_OP_CERT_SHOW, CERTD_ADMIN, show_params, op_cert_show},
        {HK_CERTD_OP_CERT_P12, CERTD_ADMIN, p12_params, op_cert_p12},
        {HK_CERTD_OP_CERT_REVOKE, CERTD_ADMIN, revoke_params, op_cert_revoke, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_CERT_LOOKUP, CERTD_SERVICE, lookup_params, op_cert_lookup},
        {0},
};
