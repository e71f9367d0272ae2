/*
 * test-db: unit tests for common/hk-db.c.
 *
 * Talks to real SQLite files in a private temporary directory, removed at the end, and
 * checks them behind hk-db's back with plain sqlite3 connections. Must never touch a
 * file outside that directory.
 */
#include "hk-db.h"

#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#define TEST_ERROR (g_quark_from_static_string("test-error"))

static char *tmpdir;

/* A fresh database path per test, so tests do not depend on each other's order. */
static char *
db_path(const char *name)
{
	return g_build_filename(tmpdir, name, NULL);
}

static int
raw_query_int(sqlite3 *handle, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	int value;

	g_assert_cmpint(sqlite3_prepare_v2(handle, sql, -1, &stmt, NULL), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	value = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return value;
}

/* Asks the file itself, through a connection hk-db knows nothing about. */
static int
file_query_int(const char *path, const char *sql)
{
	sqlite3 *handle = NULL;
	int value;

	g_assert_cmpint(sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
	value = raw_query_int(handle, sql);
	sqlite3_close(handle);
	return value;
}

static gboolean
table_exists(const char *path, const char *table)
{
	g_autofree char *sql = g_strdup_printf(
	        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", table);

	return file_query_int(path, sql) == 1;
}

static const char *const migrations_v2[] = {
        "CREATE TABLE job (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);",
        "CREATE TABLE page (job INTEGER NOT NULL REFERENCES job(id), n INTEGER NOT NULL);",
        NULL,
};

static const char *const migrations_v3[] = {
        "CREATE TABLE job (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);",
        "CREATE TABLE page (job INTEGER NOT NULL REFERENCES job(id), n INTEGER NOT NULL);",
        "INSERT INTO job (name) VALUES ('added by migration 3');",
        NULL,
};

static void
test_open_creates_private_file(void)
{
	g_autofree char *path = db_path("open.db");
	g_autofree char *wal = g_strconcat(path, "-wal", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(HkDb) db = hk_db_open(path, migrations_v2, 1234, &error);
	GStatBuf st;
	sqlite3_stmt *stmt = NULL;

	g_assert_no_error(error);
	g_assert_nonnull(db);
	g_assert_cmpint(g_stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0600);
	/* SQLite copies the database's mode to its WAL file, which holds the same data. */
	if (g_stat(wal, &st) == 0)
		g_assert_cmpint(st.st_mode & 07777, ==, 0600);

	g_assert_cmpint(
	        sqlite3_prepare_v2(hk_db_handle(db), "PRAGMA journal_mode", -1, &stmt, NULL), ==,
	        SQLITE_OK);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	g_assert_cmpstr((const char *)sqlite3_column_text(stmt, 0), ==, "wal");
	sqlite3_finalize(stmt);

	g_assert_cmpint(raw_query_int(hk_db_handle(db), "PRAGMA foreign_keys"), ==, 1);
	g_assert_cmpint(raw_query_int(hk_db_handle(db), "PRAGMA synchronous"), ==, 2 /* FULL */);
	g_assert_cmpint(raw_query_int(hk_db_handle(db), "PRAGMA busy_timeout"), ==, 1234);
}

static void
test_open_keeps_existing_mode(void)
{
	g_autofree char *path = db_path("existing.db");
	g_autoptr(GError) error = NULL;
	g_autoptr(HkDb) db = NULL;
	GStatBuf st;

	g_assert_true(g_file_set_contents(path, "", 0, &error));
	g_assert_no_error(error);
	g_assert_cmpint(g_chmod(path, 0640), ==, 0);

	db = hk_db_open(path, migrations_v2, 1000, &error);
	g_assert_no_error(error);
	g_assert_nonnull(db);
	g_assert_cmpint(g_stat(path, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 07777, ==, 0640);
}

static void
test_open_missing_directory(void)
{
	g_autofree char *path = db_path("no-such-dir/x.db");
	g_autoptr(GError) error = NULL;
	g_autoptr(HkDb) db = hk_db_open(path, migrations_v2, 1000, &error);

	g_assert_null(db);
	g_assert_error(error, HK_DB_ERROR, HK_DB_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, path));
	hk_db_close(NULL);
}

static void
test_migrate_initial(void)
{
	g_autofree char *path = db_path("initial.db");
	g_autoptr(GError) error = NULL;
	g_autoptr(HkDb) db = hk_db_open(path, migrations_v2, 1000, &error);

	g_assert_no_error(error);
	g_assert_cmpint(hk_db_schema_version(db), ==, 2);
	g_assert_cmpint(raw_query_int(hk_db_handle(db), "PRAGMA user_version"), ==, 2);
	g_assert_true(table_exists(path, "job"));
	g_assert_true(table_exists(path, "page"));
}

static void
test_migrate_incremental(void)
{
	g_autofree char *path = db_path("incremental.db");
	g_autoptr(GError) error = NULL;
	HkDb *db;

	db = hk_db_open(path, migrations_v2, 1000, &error);
	g_assert_no_error(error);
	hk_db_close(db);

	/* Twice with three migrations: the third must run once, on the first of these. */
	for (int i = 0; i < 2; i++) {
		db = hk_db_open(path, migrations_v3, 1000, &error);
		g_assert_no_error(error);
		g_assert_cmpint(hk_db_schema_version(db), ==, 3);
		hk_db_close(db);
	}
	g_assert_cmpint(file_query_int(path, "SELECT count(*) FROM job"), ==, 1);
	g_assert_cmpint(file_query_int(path, "PRAGMA user_version"), ==, 3);
}

static void
test_migrate_too_new(void)
{
	g_autofree char *path = db_path("too-new.db");
	g_autoptr(GError) error = NULL;
	HkDb *db;

	db = hk_db_open(path, migrations_v3, 1000, &error);
	g_assert_no_error(error);
	hk_db_close(db);

	db = hk_db_open(path, migrations_v2, 1000, &error);
	g_assert_null(db);
	g_assert_error(error, HK_DB_ERROR, HK_DB_ERROR_TOO_NEW);
	g_assert_nonnull(strstr(error->message, path));
	g_assert_nonnull(strstr(error->message, "schema version 3"));
	g_assert_nonnull(strstr(error->message, "knows up to 2"));
	g_assert_cmpint(file_query_int(path, "PRAGMA user_version"), ==, 3);
}

static void
test_migrate_failure_rolls_back(void)
{
	static const char *const broken[] = {
	        "CREATE TABLE job (id INTEGER PRIMARY KEY);",
	        "CREATE TABLE partial (x INTEGER); SELEKT nonsense;",
	        NULL,
	};
	g_autofree char *path = db_path("broken.db");
	g_autofree char *prefix = g_strdup_printf("%s: migration 2 failed: ", path);
	g_autoptr(GError) error = NULL;
	HkDb *db = hk_db_open(path, broken, 1000, &error);

	g_assert_null(db);
	g_assert_error(error, HK_DB_ERROR, HK_DB_ERROR_FAILED);
	g_assert_true(g_str_has_prefix(error->message, prefix));
	g_assert_nonnull(strstr(error->message, "syntax error"));
	g_assert_cmpint(file_query_int(path, "PRAGMA user_version"), ==, 1);
	g_assert_true(table_exists(path, "job"));
	g_assert_false(table_exists(path, "partial"));
}

static gboolean
insert_job(HkDb *db, gpointer user_data, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(db, "INSERT INTO job (name) VALUES (?)", error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_text(stmt, 1, user_data, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return hk_db_set_error(db, error, "insert job");
	return TRUE;
}

static gboolean
insert_job_then_fail(HkDb *db, gpointer user_data, GError **error)
{
	if (!insert_job(db, user_data, error))
		return FALSE;
	g_set_error_literal(error, TEST_ERROR, 42, "changed my mind");
	return FALSE;
}

static void
test_transaction_commit(void)
{
	g_autofree char *path = db_path("commit.db");
	g_autoptr(GError) error = NULL;
	HkDb *db = hk_db_open(path, migrations_v2, 1000, &error);

	g_assert_no_error(error);
	g_assert_true(hk_db_transaction(db, insert_job, (gpointer) "fax-1", &error));
	g_assert_no_error(error);
	hk_db_close(db);
	g_assert_cmpint(file_query_int(path, "SELECT count(*) FROM job WHERE name = 'fax-1'"), ==,
	                1);
}

static void
test_transaction_rollback(void)
{
	g_autofree char *path = db_path("rollback.db");
	g_autoptr(GError) error = NULL;
	g_autoptr(HkDb) db = hk_db_open(path, migrations_v2, 1000, &error);

	g_assert_no_error(error);
	g_assert_false(hk_db_transaction(db, insert_job_then_fail, (gpointer) "fax-1", &error));
	g_assert_error(error, TEST_ERROR, 42);
	g_assert_cmpint(raw_query_int(hk_db_handle(db), "SELECT count(*) FROM job"), ==, 0);
	g_clear_error(&error);

	/* The failed transaction must not leave the connection believing it is in one. */
	g_assert_true(hk_db_transaction(db, insert_job, (gpointer) "fax-2", &error));
	g_assert_no_error(error);
	g_assert_cmpint(raw_query_int(hk_db_handle(db), "SELECT count(*) FROM job"), ==, 1);
}

static void
test_transaction_constraint(void)
{
	g_autofree char *path = db_path("constraint.db");
	g_autoptr(GError) error = NULL;
	g_autoptr(HkDb) db = hk_db_open(path, migrations_v2, 1000, &error);

	g_assert_no_error(error);
	g_assert_true(hk_db_transaction(db, insert_job, (gpointer) "s3cret-value", &error));
	g_assert_false(hk_db_transaction(db, insert_job, (gpointer) "s3cret-value", &error));
	g_assert_error(error, HK_DB_ERROR, HK_DB_ERROR_CONSTRAINT);
	g_assert_nonnull(strstr(error->message, "insert job"));
	/* Bound values may be secrets: the message names the column, not the value. */
	g_assert_null(strstr(error->message, "s3cret"));
	g_assert_cmpint(raw_query_int(hk_db_handle(db), "SELECT count(*) FROM job"), ==, 1);
}

static gboolean
record_call(HkDb *db, gpointer user_data, GError **error)
{
	(void)db;
	(void)error;
	*(gboolean *)user_data = TRUE;
	return TRUE;
}

static gboolean
nest(HkDb *db, gpointer user_data, GError **error)
{
	return hk_db_transaction(db, record_call, user_data, error);
}

/* Ends the outer transaction by hand, so only hk-db's own bookkeeping can refuse the nest. */
static gboolean
commit_then_nest(HkDb *db, gpointer user_data, GError **error)
{
	if (!hk_db_exec(db, "COMMIT", error))
		return FALSE;
	return hk_db_transaction(db, record_call, user_data, error);
}

static void
test_transaction_nested_refused(void)
{
	g_autofree char *path = db_path("nested.db");
	g_autoptr(GError) error = NULL;
	g_autoptr(HkDb) db = hk_db_open(path, migrations_v2, 1000, &error);
	gboolean inner_ran = FALSE;

	g_assert_no_error(error);
	g_assert_false(hk_db_transaction(db, nest, &inner_ran, &error));
	g_assert_error(error, HK_DB_ERROR, HK_DB_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "nested transaction refused"));
	g_assert_false(inner_ran);
	g_assert_true(sqlite3_get_autocommit(hk_db_handle(db)));
	g_clear_error(&error);

	g_assert_false(hk_db_transaction(db, commit_then_nest, &inner_ran, &error));
	g_assert_error(error, HK_DB_ERROR, HK_DB_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "nested transaction refused"));
	g_assert_false(inner_ran);
	g_clear_error(&error);

	/* A transaction begun by hand counts as open too. */
	g_assert_true(hk_db_exec(db, "BEGIN", &error));
	g_assert_false(hk_db_transaction(db, record_call, &inner_ran, &error));
	g_assert_error(error, HK_DB_ERROR, HK_DB_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "nested transaction refused"));
	g_assert_false(inner_ran);
	g_clear_error(&error);
	g_assert_true(hk_db_exec(db, "ROLLBACK", &error));
	g_assert_no_error(error);
}

static void
test_transaction_busy(void)
{
	g_autofree char *path = db_path("busy.db");
	g_autoptr(GError) error = NULL;
	g_autoptr(HkDb) db = hk_db_open(path, migrations_v2, 100, &error);
	sqlite3 *other = NULL;
	gboolean ran = FALSE;
	gint64 start, elapsed_ms;

	g_assert_no_error(error);
	g_assert_cmpint(sqlite3_open(path, &other), ==, SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);

	start = g_get_monotonic_time();
	g_assert_false(hk_db_transaction(db, record_call, &ran, &error));
	elapsed_ms = (g_get_monotonic_time() - start) / 1000;

	g_assert_error(error, HK_DB_ERROR, HK_DB_ERROR_BUSY);
	g_assert_false(ran);
	g_assert_cmpint(elapsed_ms, >=, 90);
	g_assert_cmpint(elapsed_ms, <, 5000);

	sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(other);
}

static void
test_prepare_errors(void)
{
	g_autofree char *path = db_path("prepare.db");
	g_autoptr(GError) error = NULL;
	g_autoptr(HkDb) db = hk_db_open(path, migrations_v2, 1000, &error);
	g_autoptr(sqlite3_stmt) stmt = NULL;

	g_assert_no_error(error);
	stmt = hk_db_prepare(
	        db,
	        "SELECT id FROM no_such_table WHERE name = 'a rather long literal that "
	        "goes past the excerpt'",
	        &error);
	g_assert_null(stmt);
	g_assert_error(error, HK_DB_ERROR, HK_DB_ERROR_FAILED);
	g_assert_nonnull(strstr(error->message, "no such table"));
	g_assert_nonnull(strstr(error->message, "\"SELECT id FROM no_such_table"));
	g_assert_null(strstr(error->message, "past the excerpt"));
	g_clear_error(&error);

	/* The second statement would be dropped without a word. */
	stmt = hk_db_prepare(db, "DELETE FROM page; DELETE FROM job;", &error);
	g_assert_null(stmt);
	g_assert_error(error, HK_DB_ERROR, HK_DB_ERROR_FAILED);
	g_clear_error(&error);

	/* A trailing comment is not a statement. */
	stmt = hk_db_prepare(db, "SELECT 1; -- just a comment", &error);
	g_assert_no_error(error);
	g_assert_nonnull(stmt);
}

static void
remove_tmpdir(void)
{
	g_autoptr(GDir) dir = g_dir_open(tmpdir, 0, NULL);
	const char *name;

	g_assert_nonnull(dir);
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *file = g_build_filename(tmpdir, name, NULL);
		g_assert_cmpint(g_unlink(file), ==, 0);
	}
	g_assert_cmpint(g_rmdir(tmpdir), ==, 0);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int rc;

	g_test_init(&argc, &argv, NULL);
	tmpdir = g_dir_make_tmp("hk-test-db-XXXXXX", &error);
	g_assert_no_error(error);

	g_test_add_func("/db/open/creates-private-file", test_open_creates_private_file);
	g_test_add_func("/db/open/keeps-existing-mode", test_open_keeps_existing_mode);
	g_test_add_func("/db/open/missing-directory", test_open_missing_directory);
	g_test_add_func("/db/migrate/initial", test_migrate_initial);
	g_test_add_func("/db/migrate/incremental", test_migrate_incremental);
	g_test_add_func("/db/migrate/too-new", test_migrate_too_new);
	g_test_add_func("/db/migrate/failure-rolls-back", test_migrate_failure_rolls_back);
	g_test_add_func("/db/transaction/commit", test_transaction_commit);
	g_test_add_func("/db/transaction/rollback", test_transaction_rollback);
	g_test_add_func("/db/transaction/constraint", test_transaction_constraint);
	g_test_add_func("/db/transaction/nested-refused", test_transaction_nested_refused);
	g_test_add_func("/db/transaction/busy", test_transaction_busy);
	g_test_add_func("/db/prepare/errors", test_prepare_errors);

	rc = g_test_run();
	remove_tmpdir();
	g_free(tmpdir);
	return rc;
}
