/*
 * certd-users: the user directory (user.add, user.passwd, user.list, user.show, user.del,
 * user.set, user.import), the lookup the other daemons make (user.lookup) and the password
 * checks they ask for (auth.verify for SMTP AUTH, fax.verify for the fax gateway).
 *
 * Passwords are kept as crypt(3) hashes: yescrypt for those set here, imported ones
 * (SHA512-CRYPT, BLF-CRYPT ...) as they came. Hashing is slow on purpose, so it runs in a
 * worker (certd-work.c); the database is read and written in the main loop only.
 * Talks to: the database (users, user_emails, certs), libxcrypt.
 * Must never: log, return or audit a password or a hash, or let the time a check takes
 * tell whether a user exists.
 */
#include "certd.h"
#include "hk-certd-proto.h"

#include <crypt.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define USER_NAME_MAX 64
/* libxcrypt refuses longer passphrases (ERANGE) */
#define PASSWORD_MAX (CRYPT_MAX_PASSPHRASE_SIZE - 1)

/* A yescrypt hash of a random password nobody knows, at the default cost: unknown users
 * and users without a password are checked against it, so they take as long as the rest. */
static const char dummy_hash[] =
        "$y$j9T$BQl5iXPoiVkgjq6kYUMrk/$HWHB4ypRbRpS2tHFICOIzshrR.RfFRd4WdeoDMnk6.4";

static const char reason_unknown_user[] = "unknown user";
static const char reason_no_password[] = "no password set";
static const char reason_no_fax_password[] = "no fax password set";
static const char reason_mismatch[] = "password mismatch";

/* ----- input checks ----- */

static gboolean
check_user_name(const char *name, GError **error)
{
	g_autofree char *shown = NULL;
	gsize len = name ? strlen(name) : 0;

	if (len == 0)
		return certd_set_invalid(error, "a user name is required");
	shown = g_strescape(name, NULL);
	if (len > USER_NAME_MAX)
		return certd_set_invalid(error,
		                         "the user name \"%.70s...\" is longer than %d characters",
		                         shown, USER_NAME_MAX);
	if (name[0] == '-' || name[0] == '.')
		return certd_set_invalid(error, "the user name \"%s\" must not start with \"%c\"",
		                         shown, name[0]);
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isalnum(name[i]) && strchr("._@+-", name[i]) == NULL)
			return certd_set_invalid(
			        error,
			        "the user name \"%s\" may hold only letters, digits and . _ @ "
			        "+ -",
			        shown);
	}
	return TRUE;
}

/* Passwords travel in line-based protocols (Dovecot auth, fax directives): no NUL, CR, LF. */
static gboolean
check_secret(const char *text, gsize len, const char *what, GError **error)
{
	if (text == NULL || len == 0)
		return certd_set_invalid(error, "the %s must not be empty", what);
	if (len > PASSWORD_MAX)
		return certd_set_invalid(error, "the %s is longer than %d bytes", what,
		                         PASSWORD_MAX);
	if (memchr(text, '\0', len) != NULL || memchr(text, '\n', len) != NULL ||
	    memchr(text, '\r', len) != NULL)
		return certd_set_invalid(error, "the %s must not contain a NUL, CR or LF character",
		                         what);
	return TRUE;
}

/* A copy of the string param key after check_secret(); NULL with an error otherwise. */
static char *
get_secret(json_object *params, const char *key, const char *what, GError **error)
{
	json_object *value = NULL;

	json_object_object_get_ex(params, key, &value);
	if (!check_secret(json_object_get_string(value),
	                  (gsize)MAX(json_object_get_string_len(value), 0), what, error))
		return NULL;
	return g_strdup(json_object_get_string(value));
}

static gboolean
parse_bool(const char *text, gboolean *value)
{
	static const char *const yes[] = {"yes", "true", "on", "1", NULL};
	static const char *const no[] = {"no", "false", "off", "0", NULL};

	for (guint i = 0; yes[i] != NULL; i++) {
		if (g_ascii_strcasecmp(text, yes[i]) == 0 || g_ascii_strcasecmp(text, no[i]) == 0) {
			*value = g_ascii_strcasecmp(text, yes[i]) == 0;
			return TRUE;
		}
	}
	return FALSE;
}

/* ----- hashes ----- */

/* A yescrypt hash of password with a fresh salt. Slow: workers only. */
static char *
hash_password(const char *password, GError **error)
{
	char *setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
	void *scratch = NULL;
	int size = 0;
	const char *hash;
	char *copy = NULL;

	if (setting == NULL) {
		g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_INTERNAL, "cannot make a salt: %s",
		            g_strerror(errno));
		return NULL;
	}
	hash = crypt_ra(password, setting, &scratch, &size);
	if (hash != NULL && hash[0] == '$')
		copy = g_strdup(hash);
	else
		g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_INTERNAL,
		            "cannot hash the password: %s", g_strerror(errno));
	if (scratch != NULL)
		OPENSSL_cleanse(scratch, (size_t)size);
	free(scratch);
	free(setting);
	return copy;
}

/* Whether password hashes to hash, compared in constant time. Slow: workers only. */
static gboolean
password_matches(const char *password, const char *hash)
{
	struct crypt_data *scratch = g_new0(struct crypt_data, 1);
	const char *out = crypt_rn(password, hash, scratch, (int)sizeof(*scratch));
	gsize len = strlen(hash);
	gboolean ok = out != NULL && out[0] != '*' && strlen(out) == len &&
	              CRYPTO_memcmp(out, hash, len) == 0;

	OPENSSL_cleanse(scratch, sizeof(*scratch));
	g_free(scratch);
	return ok;
}

/* ----- the database ----- */

typedef struct {
	gint64 id;
	char *name;
	gboolean has_password;
	gboolean require_signature;
	gboolean fax_allowed;
	gboolean has_fax_password;
	gint64 created;
} UserRow;

static void
user_row_clear(UserRow *row)
{
	g_clear_pointer(&row->name, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(UserRow, user_row_clear)

#define USER_COLUMNS                                                                               \
	"id, name, password_hash IS NOT NULL, require_signature, fax_allowed,"                     \
	" fax_password_hash IS NOT NULL, created"
#define SQL_USER_BY_NAME "SELECT " USER_COLUMNS " FROM users WHERE name = ?"
#define SQL_USER_BY_EMAIL                                                                          \
	"SELECT " USER_COLUMNS " FROM users WHERE id ="                                            \
	" (SELECT user_id FROM user_emails WHERE email = ?)"

static void
user_row_read(sqlite3_stmt *stmt, UserRow *row)
{
	row->id = sqlite3_column_int64(stmt, 0);
	row->name = g_strdup((const char *)sqlite3_column_text(stmt, 1));
	row->has_password = sqlite3_column_int(stmt, 2) != 0;
	row->require_signature = sqlite3_column_int(stmt, 3) != 0;
	row->fax_allowed = sqlite3_column_int(stmt, 4) != 0;
	row->has_fax_password = sqlite3_column_int(stmt, 5) != 0;
	row->created = sqlite3_column_int64(stmt, 6);
}

/* Finds the user by name (SQL_USER_BY_NAME) or address (SQL_USER_BY_EMAIL); not_found
 * when there is none. */
static gboolean
user_query(CertdState *state, const char *sql, const char *key, UserRow *row, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(state->db, sql, error);
	int rc;

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		user_row_read(stmt, row);
		return TRUE;
	}
	if (rc != SQLITE_DONE)
		return hk_db_set_error(state->db, error, "users");
	g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_NOT_FOUND, "no user \"%s\"", key);
	return FALSE;
}

static gboolean
user_by_id(CertdState *state, gint64 id, UserRow *row)
{
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(state->db, "SELECT " USER_COLUMNS " FROM users WHERE id = ?", NULL);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, id);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return FALSE;
	user_row_read(stmt, row);
	return TRUE;
}

static gboolean
user_by_name(CertdState *state, const char *name, UserRow *row, GError **error)
{
	return user_query(state, SQL_USER_BY_NAME, name, row, error);
}

/* A login is a user name or one of the user's addresses. */
static gboolean
user_by_login(CertdState *state, const char *login, UserRow *row, GError **error)
{
	g_autoptr(GError) local = NULL;

	if (user_query(state, SQL_USER_BY_NAME, login, row, &local))
		return TRUE;
	if (!g_error_matches(local, HK_IPC_ERROR, HK_IPC_ERROR_NOT_FOUND)) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	return user_query(state, SQL_USER_BY_EMAIL, login, row, error);
}

/* The stored hash in column (password_hash or fax_password_hash), or NULL. */
static char *
user_hash(CertdState *state, gint64 id, gboolean fax)
{
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(state->db,
	                      fax ? "SELECT fax_password_hash FROM users WHERE id = ?"
	                          : "SELECT password_hash FROM users WHERE id = ?",
	                      NULL);

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, id);
	if (sqlite3_step(stmt) != SQLITE_ROW || sqlite3_column_type(stmt, 0) == SQLITE_NULL)
		return NULL;
	return g_strdup((const char *)sqlite3_column_text(stmt, 0));
}

static json_object *
user_emails(CertdState *state, gint64 id)
{
	json_object *emails = json_object_new_array();
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        state->db, "SELECT email FROM user_emails WHERE user_id = ? ORDER BY rowid", NULL);

	if (stmt == NULL)
		return emails;
	sqlite3_bind_int64(stmt, 1, id);
	while (sqlite3_step(stmt) == SQLITE_ROW)
		json_object_array_add(
		        emails, json_object_new_string((const char *)sqlite3_column_text(stmt, 0)));
	return emails;
}

/* The name of the user who owns email, or NULL. */
static char *
email_owner(CertdState *state, const char *email)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(state->db,
	                                             "SELECT u.name FROM user_emails e JOIN users "
	                                             "u ON u.id = e.user_id WHERE e.email = ?",
	                                             NULL);

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_text(stmt, 1, email, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return NULL;
	return g_strdup((const char *)sqlite3_column_text(stmt, 0));
}

/* The user's certificates: serial, status (expired when past not_after), not_after. */
static json_object *
user_certs(CertdState *state, gint64 id)
{
	json_object *certs = json_object_new_array();
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        state->db,
	        "SELECT serial, CASE WHEN status = 'valid' AND not_after <= ? THEN 'expired'"
	        " ELSE status END, not_after FROM certs WHERE user_id = ? ORDER BY created",
	        NULL);

	if (stmt == NULL)
		return certs;
	sqlite3_bind_int64(stmt, 1, certd_now_unix());
	sqlite3_bind_int64(stmt, 2, id);
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		json_object *cert = json_object_new_object();
		g_autofree char *na = certd_time_iso(sqlite3_column_int64(stmt, 2));

		json_object_object_add(
		        cert, HK_CERTD_KEY_SERIAL,
		        json_object_new_string((const char *)sqlite3_column_text(stmt, 0)));
		json_object_object_add(
		        cert, HK_CERTD_KEY_STATUS,
		        json_object_new_string((const char *)sqlite3_column_text(stmt, 1)));
		json_object_object_add(cert, HK_CERTD_KEY_NOT_AFTER, json_object_new_string(na));
		json_object_array_add(certs, cert);
	}
	return certs;
}

typedef enum {
	DESCRIBE_LOOKUP = 0,     /* what the other daemons need */
	DESCRIBE_ADMIN = 1 << 0, /* + has_password, created */
	DESCRIBE_CERTS = 1 << 1, /* + the user's certificates */
} DescribeFlags;

static json_object *
user_describe(CertdState *state, const UserRow *row, guint flags)
{
	json_object *user = json_object_new_object();

	json_object_object_add(user, HK_CERTD_KEY_NAME, json_object_new_string(row->name));
	json_object_object_add(user, HK_CERTD_KEY_EMAILS, user_emails(state, row->id));
	if (flags & DESCRIBE_ADMIN)
		json_object_object_add(user, HK_CERTD_KEY_HAS_PASSWORD,
		                       json_object_new_boolean(row->has_password));
	json_object_object_add(user, HK_CERTD_KEY_REQUIRE_SIG,
	                       json_object_new_boolean(row->require_signature));
	json_object_object_add(user, HK_CERTD_KEY_FAX_ALLOWED,
	                       json_object_new_boolean(row->fax_allowed));
	json_object_object_add(user, HK_CERTD_KEY_HAS_FAX_PASSWORD,
	                       json_object_new_boolean(row->has_fax_password));
	if (flags & DESCRIBE_ADMIN) {
		g_autofree char *created = certd_time_iso(row->created);

		json_object_object_add(user, HK_CERTD_KEY_CREATED, json_object_new_string(created));
	}
	if (flags & DESCRIBE_CERTS)
		json_object_object_add(user, HK_CERTD_KEY_CERTS, user_certs(state, row->id));
	return user;
}

/* Ends req with the user as it is now in the database. */
static void
return_user(CertdState *state, HkIpcRequest *req, gint64 id, guint flags)
{
	g_auto(UserRow) row = {0};

	if (!user_by_id(state, id, &row)) {
		certd_return_not_found(req, "the user was deleted meanwhile");
		return;
	}
	hk_ipc_request_return(req, user_describe(state, &row, flags));
}

static void
emit_user_changed(CertdState *state, const char *name)
{
	certd_emit(state, HK_CERTD_EV_USER_CHANGED,
	           certd_json_object_with(HK_CERTD_KEY_NAME, name));
}

static gboolean
insert_email(HkDb *db, gint64 id, const char *email, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(db, "INSERT INTO user_emails (user_id, email) VALUES (?, ?)", error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_text(stmt, 2, email, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return hk_db_set_error(db, error, "user_emails");
	return TRUE;
}

/* Inserts a user (hash may be NULL) and returns its id, 0 on error. */
static gint64
insert_user(HkDb *db, const char *name, const char *hash, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        db, "INSERT INTO users (name, password_hash, created, updated) VALUES (?, ?, ?, ?)",
	        error);

	if (stmt == NULL)
		return 0;
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(stmt, 2, hash, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(stmt, 3, certd_now_unix());
	sqlite3_bind_int64(stmt, 4, certd_now_unix());
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		hk_db_set_error(db, error, "users");
		return 0;
	}
	return sqlite3_last_insert_rowid(hk_db_handle(db));
}

/* Runs an UPDATE of one user (bound: ?1 the value, ?2 now, ?3 the id). text NULL binds
 * number instead. Not finding the user is not_found. */
static gboolean
update_user(CertdState *state, const char *sql, gint64 id, const char *text, gint64 number,
            GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(state->db, sql, error);

	if (stmt == NULL)
		return FALSE;
	if (text != NULL)
		sqlite3_bind_text(stmt, 1, text, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_int64(stmt, 1, number);
	sqlite3_bind_int64(stmt, 2, certd_now_unix());
	sqlite3_bind_int64(stmt, 3, id);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return hk_db_set_error(state->db, error, "users");
	if (sqlite3_changes(hk_db_handle(state->db)) == 0) {
		g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_NOT_FOUND,
		                    "the user was deleted meanwhile");
		return FALSE;
	}
	return TRUE;
}

#define SQL_SET_PASSWORD     "UPDATE users SET password_hash = ?1, updated = ?2 WHERE id = ?3"
#define SQL_SET_FAX_PASSWORD "UPDATE users SET fax_password_hash = ?1, updated = ?2 WHERE id = ?3"
#define SQL_CLEAR_FAX_PASSWORD                                                                     \
	"UPDATE users SET fax_password_hash = NULL, updated = ?2 WHERE id = ?3"

/* ----- user.add ----- */

/* The emails param: at least one, each valid, none twice. Borrowed strings. */
static GPtrArray *
emails_from_params(json_object *params, GError **error)
{
	json_object *array = NULL;
	g_autoptr(GPtrArray) emails = g_ptr_array_new();
	gsize n;

	json_object_object_get_ex(params, HK_CERTD_KEY_EMAILS, &array);
	n = json_object_array_length(array);
	if (n == 0) {
		certd_set_invalid(error, "a user needs at least one e-mail address");
		return NULL;
	}
	for (gsize i = 0; i < n; i++) {
		json_object *item = json_object_array_get_idx(array, i);
		const char *email = json_object_get_string(item);

		if (!json_object_is_type(item, json_type_string)) {
			certd_set_invalid(error, "emails must be an array of strings");
			return NULL;
		}
		if (!certd_check_email(email, error))
			return NULL;
		for (guint j = 0; j < emails->len; j++) {
			if (g_ascii_strcasecmp(emails->pdata[j], email) == 0) {
				certd_set_invalid(error, "the address \"%s\" is given twice",
				                  email);
				return NULL;
			}
		}
		g_ptr_array_add(emails, (gpointer)email);
	}
	return g_steal_pointer(&emails);
}

static gboolean
refuse_owned_emails(CertdState *state, GPtrArray *emails, const char *name, GError **error)
{
	for (guint i = 0; i < emails->len; i++) {
		g_autofree char *owner = email_owner(state, emails->pdata[i]);

		if (owner != NULL && g_strcmp0(owner, name) != 0) {
			g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_CONFLICT,
			            "the address \"%s\" already belongs to user \"%s\"",
			            (const char *)emails->pdata[i], owner);
			return FALSE;
		}
	}
	return TRUE;
}

typedef struct {
	const char *name;
	GPtrArray *emails;
	gint64 id;
} AddTxn;

static gboolean
add_txn(HkDb *db, gpointer data, GError **error)
{
	AddTxn *txn = data;

	txn->id = insert_user(db, txn->name, NULL, error);
	if (txn->id == 0)
		return FALSE;
	for (guint i = 0; i < txn->emails->len; i++) {
		if (!insert_email(db, txn->id, txn->emails->pdata[i], error))
			return FALSE;
	}
	return TRUE;
}

static gboolean
check_new_user(CertdState *state, const char *name, GPtrArray *emails, GError **error)
{
	g_auto(UserRow) row = {0};
	g_autoptr(GError) local = NULL;

	if (user_by_name(state, name, &row, &local)) {
		g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_CONFLICT,
		            "user \"%s\" already exists", name);
		return FALSE;
	}
	if (!g_error_matches(local, HK_IPC_ERROR, HK_IPC_ERROR_NOT_FOUND)) {
		g_propagate_error(error, g_steal_pointer(&local));
		return FALSE;
	}
	return refuse_owned_emails(state, emails, NULL, error);
}

static void
op_user_add(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) emails = NULL;
	AddTxn txn = {.name = hk_json_get_string(params, HK_CERTD_KEY_NAME)};

	if (!check_user_name(txn.name, &error) ||
	    (txn.emails = emails = emails_from_params(params, &error)) == NULL ||
	    !check_new_user(state, txn.name, emails, &error) ||
	    !hk_db_transaction(state->db, add_txn, &txn, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	g_message("user %s added with %u address(es)", txn.name, emails->len);
	emit_user_changed(state, txn.name);
	return_user(state, req, txn.id, DESCRIBE_ADMIN);
}

/* ----- user.passwd, and fax_password of user.set: hashing in a worker ----- */

typedef struct {
	gint64 id;
	char *name;
	gboolean fax; /* the fax password, not the login password */
	char *password;
	char *hash;
} HashJob;

static void
hash_job_free(gpointer data)
{
	HashJob *job = data;

	g_free(job->name);
	hk_secret_free(job->password);
	hk_secret_free(job->hash);
	g_free(job);
}

static gboolean
hash_work(CertdState *state, gpointer data, GError **error)
{
	HashJob *job = data;

	job->hash = hash_password(job->password, error);
	return job->hash != NULL;
}

static void
hash_done(CertdState *state, HkIpcRequest *req, gpointer data, const GError *work_error)
{
	HashJob *job = data;
	g_autoptr(GError) error = NULL;

	if (work_error != NULL) {
		hk_ipc_request_return_gerror(req, work_error);
		return;
	}
	if (!update_user(state, job->fax ? SQL_SET_FAX_PASSWORD : SQL_SET_PASSWORD, job->id,
	                 job->hash, 0, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	g_message("user %s: %s set", job->name, job->fax ? "fax password" : "password");
	emit_user_changed(state, job->name);
	return_user(state, req, job->id, DESCRIBE_ADMIN);
}

static void
start_hash_job(CertdState *state, HkIpcRequest *req, const UserRow *row, gboolean fax,
               char *password)
{
	HashJob *job = g_new0(HashJob, 1);

	job->id = row->id;
	job->name = g_strdup(row->name);
	job->fax = fax;
	job->password = password;
	certd_work_start(state, req, hash_work, hash_done, job, hash_job_free);
}

static void
op_user_passwd(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_auto(UserRow) row = {0};
	const char *name = hk_json_get_string(params, HK_CERTD_KEY_NAME);
	char *password;

	if (!user_by_name(state, name, &row, &error) ||
	    (password = get_secret(params, HK_CERTD_KEY_PASSWORD, "password", &error)) == NULL) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	start_hash_job(state, req, &row, FALSE, password);
}

/* ----- user.list, user.show, user.lookup ----- */

static void
op_user_list(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        state->db, "SELECT " USER_COLUMNS " FROM users ORDER BY name", &error);
	json_object *users, *result;

	if (stmt == NULL) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	users = json_object_new_array();
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		g_auto(UserRow) row = {0};

		user_row_read(stmt, &row);
		json_object_array_add(users, user_describe(state, &row, DESCRIBE_ADMIN));
	}
	result = json_object_new_object();
	json_object_object_add(result, HK_CERTD_KEY_USERS, users);
	hk_ipc_request_return(req, result);
}

static void
op_user_show(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_auto(UserRow) row = {0};

	if (!user_by_name(state, hk_json_get_string(params, HK_CERTD_KEY_NAME), &row, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	hk_ipc_request_return(req, user_describe(state, &row, DESCRIBE_ADMIN | DESCRIBE_CERTS));
}

static void
op_user_lookup(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_auto(UserRow) row = {0};
	const char *name = hk_json_get_string(params, HK_CERTD_KEY_NAME);
	const char *email = hk_json_get_string(params, HK_CERTD_KEY_EMAIL);

	if ((name == NULL) == (email == NULL)) {
		certd_return_invalid(req, "give exactly one of name and email");
		return;
	}
	if (!(name ? user_by_name(state, name, &row, &error)
	           : user_query(state, SQL_USER_BY_EMAIL, email, &row, &error))) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	hk_ipc_request_return(req, user_describe(state, &row, DESCRIBE_LOOKUP));
}

/* ----- user.del ----- */

/* The serials of the user's certificates that are neither revoked nor expired. */
static GPtrArray *
valid_cert_serials(CertdState *state, gint64 id, GError **error)
{
	g_autoptr(GPtrArray) serials = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(state->db,
	                      "SELECT serial FROM certs WHERE user_id = ? AND status = 'valid'"
	                      " AND (not_after IS NULL OR not_after > ?) ORDER BY created",
	                      error);

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, certd_now_unix());
	while (sqlite3_step(stmt) == SQLITE_ROW)
		g_ptr_array_add(serials, g_strdup((const char *)sqlite3_column_text(stmt, 0)));
	return g_steal_pointer(&serials);
}

static gboolean
refuse_valid_certs(CertdState *state, const UserRow *row, GError **error)
{
	g_autoptr(GPtrArray) serials = valid_cert_serials(state, row->id, error);
	g_autofree char *list = NULL;

	if (serials == NULL)
		return FALSE;
	if (serials->len == 0)
		return TRUE;
	g_ptr_array_add(serials, NULL);
	list = g_strjoinv(", ", (char **)serials->pdata);
	g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_CONFLICT,
	            "user \"%s\" still has %u valid certificate(s) (serial %s): revoke them first "
	            "with \"hankoctl cert revoke SERIAL\"",
	            row->name, serials->len - 1, list);
	return FALSE;
}

static gboolean
delete_user(CertdState *state, gint64 id, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(state->db, "DELETE FROM users WHERE id = ?", error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, id);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return hk_db_set_error(state->db, error, "users");
	return TRUE;
}

static void
op_user_del(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_auto(UserRow) row = {0};

	if (!user_by_name(state, hk_json_get_string(params, HK_CERTD_KEY_NAME), &row, &error) ||
	    !refuse_valid_certs(state, &row, &error) || !delete_user(state, row.id, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	g_message("user %s deleted", row.name);
	emit_user_changed(state, row.name);
	hk_ipc_request_return(req, certd_json_object_with(HK_CERTD_KEY_NAME, row.name));
}

/* ----- user.set ----- */

static gboolean
set_flag(CertdState *state, const UserRow *row, const char *attr, const char *value, GError **error)
{
	gboolean on = FALSE;
	const char *sql =
	        g_str_equal(attr, HK_CERTD_KEY_REQUIRE_SIG)
	                ? "UPDATE users SET require_signature = ?1, updated = ?2 WHERE id = ?3"
	                : "UPDATE users SET fax_allowed = ?1, updated = ?2 WHERE id = ?3";

	if (!parse_bool(value, &on)) {
		g_autofree char *shown = g_strescape(value, NULL);

		return certd_set_invalid(
		        error, "%s: \"%.40s\" is not one of yes, no, true, false, on, off, 1, 0",
		        attr, shown);
	}
	return update_user(state, sql, row->id, NULL, on, error);
}

static gboolean
check_attr(const char *attr, GError **error)
{
	g_autofree char *shown = NULL;

	if (g_str_equal(attr, HK_CERTD_KEY_REQUIRE_SIG) ||
	    g_str_equal(attr, HK_CERTD_KEY_FAX_ALLOWED) ||
	    g_str_equal(attr, HK_CERTD_KEY_FAX_PASSWORD))
		return TRUE;
	shown = g_strescape(attr, NULL);
	return certd_set_invalid(
	        error,
	        "unknown attribute \"%.40s\": use require_signature, fax_allowed or "
	        "fax_password",
	        shown);
}

/* Flags take value; fax_password takes password to set it (a "password" param is
 * masked in the debug log, a "value" is not) or an empty value to clear it. */
static gboolean
check_set_params(const char *attr, const char *value, gboolean has_password, GError **error)
{
	if (!check_attr(attr, error))
		return FALSE;
	if (!g_str_equal(attr, HK_CERTD_KEY_FAX_PASSWORD)) {
		if (value == NULL || has_password)
			return certd_set_invalid(error, "%s takes a value (and no password)", attr);
		return TRUE;
	}
	if (value != NULL && *value != '\0')
		return certd_set_invalid(error,
		                         "send the fax password as \"password\", not as \"value\"");
	if ((value != NULL) == has_password)
		return certd_set_invalid(
		        error, "fax_password takes a password to set it, or an empty value "
		               "to clear it");
	return TRUE;
}

static void
op_user_set(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	g_autoptr(GError) error = NULL;
	g_auto(UserRow) row = {0};
	const char *attr = hk_json_get_string(params, HK_CERTD_KEY_ATTR);
	const char *value = hk_json_get_string(params, HK_CERTD_KEY_VALUE);
	gboolean set_fax = json_object_object_get_ex(params, HK_CERTD_KEY_PASSWORD, NULL);
	char *password = NULL;

	if (!check_set_params(attr, value, set_fax, &error) ||
	    !user_by_name(state, hk_json_get_string(params, HK_CERTD_KEY_NAME), &row, &error) ||
	    (set_fax && (password = get_secret(params, HK_CERTD_KEY_PASSWORD, "fax password",
	                                       &error)) == NULL)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	if (set_fax) {
		start_hash_job(state, req, &row, TRUE, password);
		return;
	}
	if (g_str_equal(attr, HK_CERTD_KEY_FAX_PASSWORD)
	            ? !update_user(state, SQL_CLEAR_FAX_PASSWORD, row.id, NULL, 0, &error)
	            : !set_flag(state, &row, attr, value, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	g_message("user %s: %s = %s", row.name, attr, *value ? value : "(none)");
	emit_user_changed(state, row.name);
	return_user(state, req, row.id, DESCRIBE_ADMIN);
}

/* ----- auth.verify, fax.verify ----- */

typedef struct {
	const char *op;
	char *login;        /* as the caller gave it, for the log */
	char *password;     /* cleansed on free */
	char *hash;         /* the stored hash; NULL: unknown user or none set */
	const char *reason; /* why it fails whatever the password is, or NULL */
	gint64 id;
	gboolean fax;
	gboolean ok;
} VerifyJob;

static void
verify_job_free(gpointer data)
{
	VerifyJob *job = data;

	g_free(job->login);
	hk_secret_free(job->password);
	hk_secret_free(job->hash);
	g_free(job);
}

static gboolean
verify_work(CertdState *state, gpointer data, GError **error)
{
	VerifyJob *job = data;
	/* always hash, so a missing user or password costs what a wrong one costs */
	gboolean match = password_matches(job->password, job->hash ? job->hash : dummy_hash);

	job->ok = match && job->hash != NULL && job->reason == NULL;
	return TRUE;
}

static json_object *
verify_result(CertdState *state, VerifyJob *job)
{
	json_object *result = json_object_new_object();
	g_auto(UserRow) row = {0};

	json_object_object_add(result, HK_CERTD_KEY_OK, json_object_new_boolean(job->ok));
	if (!job->ok) {
		json_object_object_add(
		        result, HK_CERTD_KEY_REASON,
		        json_object_new_string(job->reason ? job->reason : reason_mismatch));
		return result;
	}
	if (job->fax)
		return result;
	/* the user may have changed while the hash ran: report what is there now */
	if (user_by_id(state, job->id, &row)) {
		json_object_object_add(result, HK_CERTD_KEY_USER, json_object_new_string(row.name));
		json_object_object_add(result, HK_CERTD_KEY_EMAILS, user_emails(state, row.id));
	}
	return result;
}

static void
verify_done(CertdState *state, HkIpcRequest *req, gpointer data, const GError *work_error)
{
	VerifyJob *job = data;
	g_autofree char *shown = g_strescape(job->login, NULL);

	if (job->ok)
		g_debug("%s: user \"%.80s\" ok", job->op, shown);
	else
		g_info("%s: user \"%.80s\": %s", job->op, shown,
		       job->reason ? job->reason : reason_mismatch);
	hk_ipc_request_return(req, verify_result(state, job));
}

/* Main loop: what the worker needs to check a password for job->login. */
static gboolean
verify_prepare(CertdState *state, VerifyJob *job, GError **error)
{
	g_auto(UserRow) row = {0};
	g_autoptr(GError) local = NULL;

	if (!user_by_login(state, job->login, &row, &local)) {
		if (!g_error_matches(local, HK_IPC_ERROR, HK_IPC_ERROR_NOT_FOUND)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return FALSE;
		}
		job->reason = reason_unknown_user;
		return TRUE;
	}
	job->id = row.id;
	job->hash = user_hash(state, row.id, job->fax);
	if (job->hash == NULL)
		job->reason = job->fax ? reason_no_fax_password : reason_no_password;
	return TRUE;
}

static void
op_verify(HkIpcRequest *req, json_object *params, CertdState *state, gboolean fax)
{
	g_autoptr(GError) error = NULL;
	json_object *value = NULL;
	VerifyJob *job = g_new0(VerifyJob, 1);
	gsize len;

	json_object_object_get_ex(params, HK_CERTD_KEY_PASSWORD, &value);
	len = (gsize)MAX(json_object_get_string_len(value), 0);
	job->op = hk_ipc_request_get_op(req);
	job->fax = fax;
	job->login = g_strdup(hk_json_get_string(params, HK_CERTD_KEY_USER));
	job->password = g_strndup(json_object_get_string(value), len);
	if (!verify_prepare(state, job, &error)) {
		verify_job_free(job);
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	/* an embedded NUL would let a prefix of the password match */
	if (job->reason == NULL && (strlen(job->password) != len || len > PASSWORD_MAX))
		job->reason = reason_mismatch;
	certd_work_start(state, req, verify_work, verify_done, job, verify_job_free);
}

static void
op_auth_verify(HkIpcRequest *req, json_object *params, gpointer data)
{
	op_verify(req, params, data, FALSE);
}

static void
op_fax_verify(HkIpcRequest *req, json_object *params, gpointer data)
{
	op_verify(req, params, data, TRUE);
}

/* ----- user.import: a Dovecot passwd-file ----- */

typedef enum {
	IMPORT_NO_PASSWORD, /* empty password field: the user's password is left alone */
	IMPORT_CRYPT,       /* a crypt(3) hash, stored as it is */
	IMPORT_PLAIN,       /* {PLAIN}/{CLEARTEXT}: hashed with yescrypt, never stored */
} ImportKind;

typedef struct {
	guint line;
	char *name;
	ImportKind kind;
	char *secret;    /* the crypt hash, or the plain password; cleansed on free */
	char *new_hash;  /* IMPORT_PLAIN: made by the worker */
	char *old_hash;  /* IMPORT_PLAIN: the stored hash when the import began */
	gboolean old_ok; /* IMPORT_PLAIN: old_hash already matches the password */
	GPtrArray *emails;
} ImportEntry;

static void
import_entry_free(gpointer data)
{
	ImportEntry *e = data;

	g_free(e->name);
	hk_secret_free(e->secret);
	hk_secret_free(e->new_hash);
	hk_secret_free(e->old_hash);
	g_clear_pointer(&e->emails, g_ptr_array_unref);
	g_free(e);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImportEntry, import_entry_free)

/* Dovecot's crypt(3) schemes and what their hashes start with ("" for CRYPT: any). */
static const struct {
	const char *scheme;
	const char *prefix;
} crypt_schemes[] = {
        {"CRYPT", ""},       {"SHA512-CRYPT", "$6$"}, {"SHA256-CRYPT", "$5$"},
        {"BLF-CRYPT", "$2"}, {"MD5-CRYPT", "$1$"},    {NULL},
};

/* A hash crypt(3) can check: "$id$..." or a 13-character DES hash. Never shows it. */
static gboolean
check_crypt_hash(const char *hash, const char *prefix, GError **error)
{
	gsize len = strlen(hash);
	int salt = crypt_checksalt(hash);

	if (len == 0)
		return certd_set_invalid(error, "the password hash is empty");
	if (!g_str_has_prefix(hash, prefix))
		return certd_set_invalid(
		        error, "the hash does not start with %s as its scheme requires", prefix);
	if (len >= CRYPT_OUTPUT_SIZE || strspn(hash, "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                             "abcdefghijklmnopqrstuvwxyz$=,-") != len)
		return certd_set_invalid(error,
		                         "the password hash holds characters no crypt(3) hash has");
	if ((hash[0] != '$' && len != 13) ||
	    (salt != CRYPT_SALT_OK && salt != CRYPT_SALT_METHOD_LEGACY))
		return certd_set_invalid(
		        error, "the password hash is not of a kind crypt(3) can check here");
	return TRUE;
}

static gboolean
parse_scheme(const char *field, ImportEntry *e, GError **error)
{
	const char *end = strchr(field, '}');
	g_autofree char *scheme = NULL;
	const char *rest;

	if (end == NULL || end - field > 32)
		return certd_set_invalid(error, "the password field has no {SCHEME}");
	scheme = g_ascii_strup(field + 1, end - field - 1);
	rest = end + 1;
	if (g_str_equal(scheme, "PLAIN") || g_str_equal(scheme, "CLEARTEXT")) {
		e->kind = IMPORT_PLAIN;
		e->secret = g_strdup(rest);
		return check_secret(rest, strlen(rest), "{PLAIN} password", error);
	}
	for (guint i = 0; crypt_schemes[i].scheme != NULL; i++) {
		if (g_str_equal(scheme, crypt_schemes[i].scheme)) {
			e->kind = IMPORT_CRYPT;
			e->secret = g_strdup(rest);
			return check_crypt_hash(rest, crypt_schemes[i].prefix, error);
		}
	}
	g_strcanon(scheme, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", '?');
	return certd_set_invalid(
	        error,
	        "unsupported password scheme {%s}: use CRYPT, SHA512-CRYPT, SHA256-CRYPT, "
	        "BLF-CRYPT, MD5-CRYPT or PLAIN",
	        scheme);
}

static gboolean
parse_password_field(const char *field, ImportEntry *e, GError **error)
{
	if (*field == '\0') {
		e->kind = IMPORT_NO_PASSWORD;
		return TRUE;
	}
	if (*field == '{')
		return parse_scheme(field, e, error);
	/* passwd-file's default scheme is CRYPT */
	e->kind = IMPORT_CRYPT;
	e->secret = g_strdup(field);
	return check_crypt_hash(field, "", error);
}

static void
add_import_email(ImportEntry *e, const char *email)
{
	if (!certd_check_email(email, NULL))
		return; /* userdb_mail is often a mail location (maildir:~/Maildir), not an address
		         */
	for (guint i = 0; i < e->emails->len; i++) {
		if (g_ascii_strcasecmp(e->emails->pdata[i], email) == 0)
			return;
	}
	g_ptr_array_add(e->emails, g_strdup(email));
}

/* Extra fields: space-separated key=value; mail= and userdb_mail= may name an address. */
static void
parse_extra_fields(const char *text, ImportEntry *e)
{
	g_auto(GStrv) fields = g_strsplit_set(text, " \t", -1);

	for (guint i = 0; fields[i] != NULL; i++) {
		if (g_str_has_prefix(fields[i], "userdb_mail="))
			add_import_email(e, fields[i] + strlen("userdb_mail="));
		else if (g_str_has_prefix(fields[i], "mail="))
			add_import_email(e, fields[i] + strlen("mail="));
	}
}

/* Parses one non-comment line: user:password[:uid:gid:gecos:home:shell:extra_fields]. */
static ImportEntry *
parse_passwd_line(const char *line, guint number, GError **error)
{
	g_autoptr(ImportEntry) e = g_new0(ImportEntry, 1);
	g_auto(GStrv) fields = g_strsplit(line, ":", 8);

	e->line = number;
	e->emails = g_ptr_array_new_with_free_func(g_free);
	if (g_strv_length(fields) < 2) {
		certd_set_invalid(error, "expected user:password:..., found no \":\"");
		return NULL;
	}
	e->name = g_strdup(fields[0]);
	if (!check_user_name(e->name, error) || !parse_password_field(fields[1], e, error))
		return NULL;
	if (strchr(e->name, '@') != NULL)
		add_import_email(e, e->name);
	if (g_strv_length(fields) == 8)
		parse_extra_fields(fields[7], e);
	return g_steal_pointer(&e);
}

typedef struct {
	CertdState *state;
	GPtrArray *entries;  /* ImportEntry */
	json_object *errors; /* [{line, message}] */
	GPtrArray *changed;  /* names, for user.changed */
	guint added, updated, skipped;
} ImportJob;

static void
import_job_free(gpointer data)
{
	ImportJob *job = data;

	g_ptr_array_unref(job->entries);
	json_object_put(job->errors);
	g_ptr_array_unref(job->changed);
	g_free(job);
}

static void
import_error(ImportJob *job, guint line, const char *message)
{
	json_object *e = json_object_new_object();

	json_object_object_add(e, HK_CERTD_KEY_LINE, json_object_new_int((int)line));
	json_object_object_add(e, HK_CERTD_KEY_MESSAGE, json_object_new_string(message));
	json_object_array_add(job->errors, e);
}

static void
import_parse(ImportJob *job, const char *content)
{
	g_auto(GStrv) lines = g_strsplit(content, "\n", -1);

	for (guint i = 0; lines[i] != NULL; i++) {
		g_autoptr(GError) error = NULL;
		char *line = lines[i];
		gsize len = strlen(line);
		ImportEntry *e;

		if (len > 0 && line[len - 1] == '\r') /* CRLF files */
			line[len - 1] = '\0';
		line += strspn(line, " \t");
		if (*line == '\0' || *line == '#')
			continue;
		if ((e = parse_passwd_line(line, i + 1, &error)) == NULL)
			import_error(job, i + 1, error->message);
		else
			g_ptr_array_add(job->entries, e);
	}
	/* the lines held passwords too */
	for (guint i = 0; lines[i] != NULL; i++)
		OPENSSL_cleanse(lines[i], strlen(lines[i]));
}

/* Main loop: the stored hashes of existing users, so the worker can tell whether a
 * {PLAIN} password is already the user's. */
static void
import_snapshot(CertdState *state, ImportJob *job)
{
	for (guint i = 0; i < job->entries->len; i++) {
		ImportEntry *e = job->entries->pdata[i];
		g_auto(UserRow) row = {0};

		if (e->kind == IMPORT_PLAIN && user_by_name(state, e->name, &row, NULL))
			e->old_hash = user_hash(state, row.id, FALSE);
	}
}

static gboolean
import_work(CertdState *state, gpointer data, GError **error)
{
	ImportJob *job = data;

	for (guint i = 0; i < job->entries->len; i++) {
		ImportEntry *e = job->entries->pdata[i];

		if (e->kind != IMPORT_PLAIN)
			continue;
		e->old_ok = e->old_hash != NULL && password_matches(e->secret, e->old_hash);
		if ((e->new_hash = hash_password(e->secret, error)) == NULL)
			return FALSE;
	}
	return TRUE;
}

/* The hash to store for e given the stored one, or NULL to keep what is there. */
static const char *
import_hash(ImportEntry *e, const char *stored)
{
	switch (e->kind) {
	case IMPORT_CRYPT:
		return e->secret;
	case IMPORT_PLAIN:
		if (e->old_ok && g_strcmp0(stored, e->old_hash) == 0)
			return NULL;
		return e->new_hash;
	default:
		return NULL;
	}
}

/* Adds e's addresses the user does not have yet; *added counts them. */
static gboolean
import_emails(CertdState *state, ImportEntry *e, gint64 id, guint *added, GError **error)
{
	for (guint i = 0; i < e->emails->len; i++) {
		g_autofree char *owner = email_owner(state, e->emails->pdata[i]);

		if (owner != NULL)
			continue; /* import_check() made sure it is this user */
		if (!insert_email(state->db, id, e->emails->pdata[i], error))
			return FALSE;
		(*added)++;
	}
	return TRUE;
}

static gboolean
import_update(CertdState *state, ImportJob *job, ImportEntry *e, const UserRow *row, GError **error)
{
	g_autoptr(HkSecret) stored = user_hash(state, row->id, FALSE);
	const char *hash = import_hash(e, stored);
	guint new_emails = 0;

	if (hash != NULL && g_strcmp0(hash, stored) == 0)
		hash = NULL;
	if ((hash != NULL && !update_user(state, SQL_SET_PASSWORD, row->id, hash, 0, error)) ||
	    !import_emails(state, e, row->id, &new_emails, error))
		return FALSE;
	if (hash == NULL && new_emails == 0) {
		job->skipped++;
		return TRUE;
	}
	job->updated++;
	g_ptr_array_add(job->changed, g_strdup(e->name));
	return TRUE;
}

static gboolean
import_add(CertdState *state, ImportJob *job, ImportEntry *e, GError **error)
{
	guint new_emails = 0;
	gint64 id = insert_user(state->db, e->name, import_hash(e, NULL), error);

	if (id == 0 || !import_emails(state, e, id, &new_emails, error))
		return FALSE;
	job->added++;
	g_ptr_array_add(job->changed, g_strdup(e->name));
	return TRUE;
}

static gboolean
import_txn(HkDb *db, gpointer data, GError **error)
{
	ImportJob *job = data;
	CertdState *state = job->state;

	for (guint i = 0; i < job->entries->len; i++) {
		ImportEntry *e = job->entries->pdata[i];
		g_autoptr(GError) conflict = NULL;
		g_auto(UserRow) row = {0};
		gboolean exists = user_by_name(state, e->name, &row, NULL);

		/* an address of another user refuses the line, before anything of it is written */
		if (!refuse_owned_emails(state, e->emails, e->name, &conflict)) {
			import_error(job, e->line, conflict->message);
			continue;
		}
		if (!(exists ? import_update(state, job, e, &row, error)
		             : import_add(state, job, e, error)))
			return FALSE;
	}
	return TRUE;
}

static int
error_line_cmp(const void *a, const void *b)
{
	json_object *const *ea = a, *const *eb = b;

	return (int)(hk_json_get_int(*ea, HK_CERTD_KEY_LINE, 0) -
	             hk_json_get_int(*eb, HK_CERTD_KEY_LINE, 0));
}

static json_object *
import_result(ImportJob *job)
{
	json_object *result = json_object_new_object();

	json_object_array_sort(job->errors, error_line_cmp);
	json_object_object_add(result, HK_CERTD_KEY_ADDED, json_object_new_int((int)job->added));
	json_object_object_add(result, HK_CERTD_KEY_UPDATED,
	                       json_object_new_int((int)job->updated));
	json_object_object_add(result, HK_CERTD_KEY_SKIPPED,
	                       json_object_new_int((int)job->skipped));
	json_object_object_add(result, HK_CERTD_KEY_ERRORS, json_object_get(job->errors));
	return result;
}

static void
import_done(CertdState *state, HkIpcRequest *req, gpointer data, const GError *work_error)
{
	ImportJob *job = data;
	g_autoptr(GError) error = NULL;

	if (work_error != NULL) {
		hk_ipc_request_return_gerror(req, work_error);
		return;
	}
	if (!hk_db_transaction(state->db, import_txn, job, &error)) {
		hk_ipc_request_return_gerror(req, error);
		return;
	}
	g_message("user.import: %u added, %u updated, %u unchanged, %u line(s) refused", job->added,
	          job->updated, job->skipped, (guint)json_object_array_length(job->errors));
	for (guint i = 0; i < job->changed->len; i++)
		emit_user_changed(state, job->changed->pdata[i]);
	hk_ipc_request_return(req, import_result(job));
}

static void
op_user_import(HkIpcRequest *req, json_object *params, gpointer data)
{
	CertdState *state = data;
	ImportJob *job = g_new0(ImportJob, 1);

	job->state = state;
	job->entries = g_ptr_array_new_with_free_func(import_entry_free);
	job->errors = json_object_new_array();
	job->changed = g_ptr_array_new_with_free_func(g_free);
	import_parse(job, hk_json_get_string(params, HK_CERTD_KEY_PASSWD_FILE));
	import_snapshot(state, job);
	certd_work_start(state, req, import_work, import_done, job, import_job_free);
}

/* ----- the op table ----- */

static const HkIpcParam user_add_params[] = {
        {HK_CERTD_KEY_NAME, json_type_string, TRUE},
        {HK_CERTD_KEY_EMAILS, json_type_array, TRUE},
        {0},
};
static const HkIpcParam user_passwd_params[] = {
        {HK_CERTD_KEY_NAME, json_type_string, TRUE},
        {HK_CERTD_KEY_PASSWORD, json_type_string, TRUE},
        {0},
};
static const HkIpcParam user_name_params[] = {
        {HK_CERTD_KEY_NAME, json_type_string, TRUE},
        {0},
};
static const HkIpcParam user_set_params[] = {
        {HK_CERTD_KEY_NAME, json_type_string, TRUE},
        {HK_CERTD_KEY_ATTR, json_type_string, TRUE},
        {HK_CERTD_KEY_VALUE, json_type_string},
        {HK_CERTD_KEY_PASSWORD, json_type_string},
        {0},
};
static const HkIpcParam user_import_params[] = {
        {HK_CERTD_KEY_PASSWD_FILE, json_type_string, TRUE},
        {0},
};
static const HkIpcParam user_lookup_params[] = {
        {HK_CERTD_KEY_NAME, json_type_string},
        {HK_CERTD_KEY_EMAIL, json_type_string},
        {0},
};
static const HkIpcParam verify_params[] = {
        {HK_CERTD_KEY_USER, json_type_string, TRUE},
        {HK_CERTD_KEY_PASSWORD, json_type_string, TRUE},
        {0},
};

const HkIpcOp certd_user_ops[] = {
        {HK_CERTD_OP_USER_ADD, CERTD_ADMIN, user_add_params, op_user_add, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_USER_PASSWD, CERTD_ADMIN, user_passwd_params, op_user_passwd, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_USER_LIST, CERTD_ADMIN, NULL, op_user_list},
        {HK_CERTD_OP_USER_SHOW, CERTD_ADMIN, user_name_params, op_user_show},
        {HK_CERTD_OP_USER_DEL, CERTD_ADMIN, user_name_params, op_user_del, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_USER_SET, CERTD_ADMIN, user_set_params, op_user_set, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_USER_IMPORT, CERTD_ADMIN, user_import_params, op_user_import, HK_IPC_OP_AUDIT},
        {HK_CERTD_OP_USER_LOOKUP, CERTD_SERVICE, user_lookup_params, op_user_lookup},
        {HK_CERTD_OP_AUTH_VERIFY, CERTD_SERVICE, verify_params, op_auth_verify},
        {HK_CERTD_OP_FAX_VERIFY, CERTD_SERVICE, verify_params, op_fax_verify},
        {0},
};
