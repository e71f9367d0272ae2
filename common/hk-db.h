/*
 * hk-db: the SQLite database a daemon keeps its state in.
 *
 * Opened in WAL mode with a busy timeout and foreign keys on, created with mode 0600.
 * The schema is a list of migrations applied in order, each in its own transaction,
 * and PRAGMA user_version counts how many are in; a database newer than the program
 * is refused rather than guessed at. Only the daemon that owns a database writes it.
 */
#pragma once

#include <glib.h>
#include <sqlite3.h>

G_BEGIN_DECLS

#define HK_DB_ERROR (hk_db_error_quark())
GQuark hk_db_error_quark(void);

typedef enum {
	HK_DB_ERROR_FAILED,     /* SQLite reported an error */
	HK_DB_ERROR_BUSY,       /* still locked after the busy timeout */
	HK_DB_ERROR_CONSTRAINT, /* a UNIQUE/FOREIGN KEY/CHECK constraint failed */
	HK_DB_ERROR_TOO_NEW,    /* schema newer than this program knows */
} HkDbError;

typedef struct _HkDb HkDb;

/* migrations: NULL-terminated SQL scripts; migrations[i] moves user_version i -> i+1. */
HkDb *
hk_db_open(const char *path, const char *const *migrations, guint busy_timeout_ms, GError **error);
void hk_db_close(HkDb *db);
sqlite3 *hk_db_handle(HkDb *db);
int hk_db_schema_version(HkDb *db);

/* Runs one or more statements without results. */
gboolean hk_db_exec(HkDb *db, const char *sql, GError **error);
/* Prepares one statement; finalize it with g_autoptr(sqlite3_stmt). */
sqlite3_stmt *hk_db_prepare(HkDb *db, const char *sql, GError **error);
/* Sets *error from the handle's last error, prefixed with what failed; returns FALSE. */
gboolean hk_db_set_error(HkDb *db, GError **error, const char *what);

/*
 * Runs func inside BEGIN IMMEDIATE ... COMMIT; when func returns FALSE (with *error set)
 * or the commit fails, rolls back and returns FALSE. Nested calls are refused.
 */
typedef gboolean (*HkDbTxnFunc)(HkDb *db, gpointer user_data, GError **error);
gboolean hk_db_transaction(HkDb *db, HkDbTxnFunc func, gpointer user_data, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HkDb, hk_db_close)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sqlite3_stmt, sqlite3_finalize)

G_END_DECLS
