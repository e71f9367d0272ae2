/*
 * hk-db: the SQLite database a daemon keeps its state in (see hk-db.h).
 *
 * Talks to SQLite only, through one connection per HkDb used from one thread at a time
 * (SQLITE_OPEN_NOMUTEX). Creates the database file with mode 0600, runs it in WAL mode with
 * synchronous=FULL so that whatever a daemon has acknowledged (a fax job, an issued
 * certificate) survives a crash, and brings the schema up to date with the migrations
 * it is given.
 *
 * Must never: put a bound parameter's value into an error message or a log line (they
 * may be secrets), loosen the mode of an existing file, open a schema newer than the
 * program, or leave a half-applied migration behind.
 */
#include "hk-db.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* How much of a statement's text an error message quotes. SQL text is not secret. */
#define HK_DB_SQL_EXCERPT 60

struct _HkDb {
	sqlite3 *handle;
	char *path;
	int schema_version;
	gboolean in_transaction;
};

/* Spelled out: G_DEFINE_QUARK stringifies its argument, and clang-format puts spaces
 * around the hyphens of "hk-db-error-quark". */
GQuark
hk_db_error_quark(void)
{
	return g_quark_from_static_string("hk-db-error-quark");
}

static HkDbError
error_code(int rc)
{
	/* Extended result codes carry the primary code in the low byte. */
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return HK_DB_ERROR_BUSY;
	case SQLITE_CONSTRAINT:
		return HK_DB_ERROR_CONSTRAINT;
	default:
		return HK_DB_ERROR_FAILED;
	}
}

gboolean
hk_db_set_error(HkDb *db, GError **error, const char *what)
{
	g_return_val_if_fail(db != NULL, FALSE);

	/* sqlite3_errmsg() names columns and constraints, never the values bound to a statement. */
	g_set_error(error, HK_DB_ERROR, error_code(sqlite3_extended_errcode(db->handle)), "%s: %s",
	            what != NULL ? what : "sqlite", sqlite3_errmsg(db->handle));
	return FALSE;
}

/* The start of sql on one line, for error messages: scripts span lines and tabs. */
static char *
sql_excerpt(const char *sql)
{
	gsize len = strlen(sql);
	g_autofree char *head = g_strndup(sql, MIN(len, HK_DB_SQL_EXCERPT));

	g_strdelimit(g_strstrip(head), "\t\r\n", ' ');
	/* The cut may split a UTF-8 sequence; the message must still be valid text. */
	g_autofree char *valid = g_utf8_make_valid(head, -1);
	return g_strdup_printf("\"%s%s\"", valid, len > HK_DB_SQL_EXCERPT ? "..." : "");
}

/* "<verb> "<start of sql>": <sqlite message>" */
static gboolean
set_sql_error(HkDb *db, GError **error, const char *verb, const char *sql)
{
	g_autofree char *excerpt = sql_excerpt(sql);
	g_autofree char *what = g_strdup_printf("%s %s", verb, excerpt);

	return hk_db_set_error(db, error, what);
}

gboolean
hk_db_exec(HkDb *db, const char *sql, GError **error)
{
	g_return_val_if_fail(db != NULL && sql != NULL, FALSE);

	if (sqlite3_exec(db->handle, sql, NULL, NULL, NULL) != SQLITE_OK)
		return set_sql_error(db, error, "exec", sql);
	return TRUE;
}

/* TRUE when tail holds only whitespace and comments, i.e. no further statement. */
static gboolean
is_blank_sql(HkDb *db, const char *tail)
{
	sqlite3_stmt *stmt = NULL;

	if (*tail == '\0')
		return TRUE;
	if (sqlite3_prepare_v2(db->handle, tail, -1, &stmt, NULL) != SQLITE_OK)
		return FALSE;
	sqlite3_finalize(stmt);
	return stmt == NULL;
}

sqlite3_stmt *
hk_db_prepare(HkDb *db, const char *sql, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = NULL;
	const char *tail = NULL;

	g_return_val_if_fail(db != NULL && sql != NULL, NULL);

	if (sqlite3_prepare_v2(db->handle, sql, -1, &stmt, &tail) != SQLITE_OK) {
		set_sql_error(db, error, "prepare", sql);
		return NULL;
	}
	/* A second statement would silently never run: refuse it rather than lose a write. */
	if (stmt == NULL || !is_blank_sql(db, tail)) {
		g_autofree char *excerpt = sql_excerpt(sql);
		g_set_error(error, HK_DB_ERROR, HK_DB_ERROR_FAILED, "prepare %s: %s", excerpt,
		            stmt == NULL ? "no statement" : "more than one statement");
		return NULL;
	}
	return g_steal_pointer(&stmt);
}

/* Runs a one-row, one-column query such as a PRAGMA that reports a value. */
static gboolean
query_int(HkDb *db, const char *sql, int *out, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(db, sql, error);
	int rc;

	if (stmt == NULL)
		return FALSE;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		g_set_error(error, HK_DB_ERROR, HK_DB_ERROR_FAILED, "%s: returned no row", sql);
		return FALSE;
	}
	if (rc != SQLITE_ROW)
		return hk_db_set_error(db, error, sql);
	*out = sqlite3_column_int(stmt, 0);
	return TRUE;
}

static gboolean
begin_immediate(HkDb *db, GError **error)
{
	/* IMMEDIATE takes the write lock now, so a busy database fails here, after the busy
	 * timeout, rather than halfway through the work with SQLITE_BUSY and no retry. */
	if (sqlite3_exec(db->handle, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		g_autofree char *what = g_strdup_printf("%s: begin transaction", db->path);
		return hk_db_set_error(db, error, what);
	}
	return TRUE;
}

static gboolean
commit(HkDb *db, GError **error)
{
	if (sqlite3_exec(db->handle, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		g_autofree char *what = g_strdup_printf("%s: commit", db->path);
		return hk_db_set_error(db, error, what);
	}
	return TRUE;
}

static void
rollback(HkDb *db)
{
	/* After some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM) SQLite has already
	 * rolled back; a second ROLLBACK would only log a misleading failure. */
	if (sqlite3_get_autocommit(db->handle))
		return;
	if (sqlite3_exec(db->handle, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		g_warning("%s: rollback failed: %s", db->path, sqlite3_errmsg(db->handle));
}

static gboolean
run_and_commit(HkDb *db, HkDbTxnFunc func, gpointer user_data, GError **error)
{
	GError *local = NULL;

	if (!func(db, user_data, &local)) {
		/* The caller must learn why; a func that forgot to say still failed. */
		if (local == NULL)
			local = g_error_new(HK_DB_ERROR, HK_DB_ERROR_FAILED,
			                    "%s: transaction function failed without an error",
			                    db->path);
		rollback(db);
		g_propagate_error(error, local);
		return FALSE;
	}
	if (!commit(db, error)) {
		rollback(db);
		return FALSE;
	}
	return TRUE;
}

gboolean
hk_db_transaction(HkDb *db, HkDbTxnFunc func, gpointer user_data, GError **error)
{
	gboolean ok;

	g_return_val_if_fail(db != NULL && func != NULL, FALSE);

	/* SQLite has no nested BEGIN; an inner COMMIT or ROLLBACK would end the outer
	 * transaction behind its back. A transaction begun by hand through hk_db_exec()
	 * counts too. */
	if (db->in_transaction || !sqlite3_get_autocommit(db->handle)) {
		g_set_error(
		        error, HK_DB_ERROR, HK_DB_ERROR_FAILED,
		        "%s: nested transaction refused: one is already open on this connection",
		        db->path);
		return FALSE;
	}
	if (!begin_immediate(db, error))
		return FALSE;
	db->in_transaction = TRUE;
	ok = run_and_commit(db, func, user_data, error);
	db->in_transaction = FALSE;
	return ok;
}

/*
 * SQLite creates files with 0644 & ~umask, but a daemon's state is nobody else's business.
 * Creating the file ourselves avoids changing the process-wide umask, which other threads
 * would see. O_EXCL leaves an existing file, and its mode, alone. SQLite gives the -wal and
 * -shm files the mode of the database file.
 */
static gboolean
create_private_file(const char *path, GError **error)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0 && errno != EEXIST) {
		int saved_errno = errno;
		g_set_error(error, HK_DB_ERROR, HK_DB_ERROR_FAILED, "create %s: %s", path,
		            g_strerror(saved_errno));
		return FALSE;
	}
	if (fd >= 0)
		close(fd);
	return TRUE;
}

static gboolean
open_handle(HkDb *db, guint busy_timeout_ms, GError **error)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;

	/* On failure SQLite still hands back a handle, which carries the message. */
	if (sqlite3_open_v2(db->path, &db->handle, flags, NULL) != SQLITE_OK) {
		g_autofree char *what = g_strdup_printf("open %s", db->path);
		return hk_db_set_error(db, error, what);
	}
	/* SQLite falls back to read-only without saying so when it cannot write the file. */
	if (sqlite3_db_readonly(db->handle, "main") == 1) {
		g_set_error(error, HK_DB_ERROR, HK_DB_ERROR_FAILED, "open %s: file is read-only",
		            db->path);
		return FALSE;
	}
	sqlite3_busy_timeout(db->handle, (int)MIN(busy_timeout_ms, (guint)G_MAXINT));
	return TRUE;
}

static gboolean
enable_wal(HkDb *db, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(db, "PRAGMA journal_mode=WAL", error);
	const char *mode;

	if (stmt == NULL)
		return FALSE;
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return hk_db_set_error(db, error, "set journal_mode");
	/* SQLite keeps the old mode, and says which, when it cannot switch (e.g. no shared
	 * memory on the filesystem); readers and the writer would then block each other. */
	mode = (const char *)sqlite3_column_text(stmt, 0);
	if (mode == NULL || g_ascii_strcasecmp(mode, "wal") != 0) {
		g_set_error(error, HK_DB_ERROR, HK_DB_ERROR_FAILED,
		            "journal_mode is \"%s\", not \"wal\"", mode != NULL ? mode : "");
		return FALSE;
	}
	return TRUE;
}

static gboolean
configure(HkDb *db, GError **error)
{
	int foreign_keys = 0;

	if (!enable_wal(db, error))
		return FALSE;
	/* FULL: with WAL, NORMAL may lose the last commits on power failure, and a daemon
	 * acknowledges work (a fax job) only once it is committed. */
	if (!hk_db_exec(db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL", error))
		return FALSE;
	/* A SQLite built without foreign keys accepts the pragma and ignores it. */
	if (!query_int(db, "PRAGMA foreign_keys", &foreign_keys, error))
		return FALSE;
	if (foreign_keys != 1) {
		g_set_error_literal(error, HK_DB_ERROR, HK_DB_ERROR_FAILED,
		                    "foreign keys cannot be enabled");
		return FALSE;
	}
	return TRUE;
}

static gboolean
migration_step(HkDb *db, int version, const char *sql, GError **error)
{
	g_autofree char *bump = g_strdup_printf("PRAGMA user_version = %d", version + 1);

	if (sqlite3_exec(db->handle, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db->handle, bump, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db->handle, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		g_autofree char *what =
		        g_strdup_printf("%s: migration %d failed", db->path, version + 1);
		/* Take the message before ROLLBACK replaces it. */
		hk_db_set_error(db, error, what);
		rollback(db);
		return FALSE;
	}
	g_info("%s: applied schema migration %d", db->path, version + 1);
	return TRUE;
}

/*
 * Applies the migration after *version. The version is read again under the write lock:
 * another process may have migrated meanwhile, and running a migration twice would fail
 * or, worse, do its work twice. *version is updated to what the database now holds.
 */
static gboolean
apply_next_migration(HkDb *db, const char *const *migrations, int *version, GError **error)
{
	int current = 0;

	if (!begin_immediate(db, error))
		return FALSE;
	if (!query_int(db, "PRAGMA user_version", &current, error)) {
		g_prefix_error(error, "%s: ", db->path);
		rollback(db);
		return FALSE;
	}
	if (current != *version) {
		rollback(db);
		*version = current;
		return TRUE;
	}
	if (!migration_step(db, current, migrations[current], error))
		return FALSE;
	*version = current + 1;
	return TRUE;
}

static gboolean
migrate(HkDb *db, const char *const *migrations, GError **error)
{
	int known = migrations != NULL ? (int)g_strv_length((char **)migrations) : 0;
	int version = 0;

	if (!query_int(db, "PRAGMA user_version", &version, error)) {
		g_prefix_error(error, "%s: ", db->path);
		return FALSE;
	}
	while (version != known) {
		if (version > known) {
			g_set_error(
			        error, HK_DB_ERROR, HK_DB_ERROR_TOO_NEW,
			        "database %s has schema version %d, this program knows up to %d",
			        db->path, version, known);
			return FALSE;
		}
		/* user_version is any 32-bit integer; a negative one is not ours. */
		if (version < 0) {
			g_set_error(error, HK_DB_ERROR, HK_DB_ERROR_FAILED,
			            "database %s has invalid schema version %d", db->path, version);
			return FALSE;
		}
		if (!apply_next_migration(db, migrations, &version, error))
			return FALSE;
	}
	db->schema_version = version;
	return TRUE;
}

HkDb *
hk_db_open(const char *path, const char *const *migrations, guint busy_timeout_ms, GError **error)
{
	g_autoptr(HkDb) db = NULL;

	g_return_val_if_fail(path != NULL && *path != '\0', NULL);
	g_return_val_if_fail(error == NULL || *error == NULL, NULL);

	/* WAL needs a file; ":memory:" would also create a stray file by that name. */
	if (g_str_equal(path, ":memory:")) {
		g_set_error_literal(error, HK_DB_ERROR, HK_DB_ERROR_FAILED,
		                    "in-memory databases are not supported");
		return NULL;
	}
	db = g_new0(HkDb, 1);
	db->path = g_strdup(path);
	if (!create_private_file(path, error) || !open_handle(db, busy_timeout_ms, error))
		return NULL;
	if (!configure(db, error)) {
		g_prefix_error(error, "%s: ", path);
		return NULL;
	}
	if (!migrate(db, migrations, error))
		return NULL;
	return g_steal_pointer(&db);
}

void
hk_db_close(HkDb *db)
{
	if (db == NULL)
		return;
	/* close_v2 defers the close until the last statement is finalized; say so, since a
	 * leaked statement keeps the file and its WAL open. */
	if (db->handle != NULL && sqlite3_next_stmt(db->handle, NULL) != NULL)
		g_warning("%s: closed with statements not finalized", db->path);
	sqlite3_close_v2(db->handle);
	g_free(db->path);
	g_free(db);
}

sqlite3 *
hk_db_handle(HkDb *db)
{
	g_return_val_if_fail(db != NULL, NULL);
	return db->handle;
}

int
hk_db_schema_version(HkDb *db)
{
	g_return_val_if_fail(db != NULL, -1);
	return db->schema_version;
}
