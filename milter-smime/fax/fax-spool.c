/*
 * fax-spool: the durable fax queue (see fax-spool.h).
 *
 * Talks to DIR/spool.db (SQLite, through hk-db) and the job directories DIR/jobs/<id>.
 * Called from the milter's threads (stage, commit), the queue runner's (claim, progress,
 * finish) and the admin server's (cancel, resend, lists): one mutex serialises every use of
 * the one connection.
 *
 * Must never: report a job as committed before its COMMIT, leave a job directory without
 * its rows (or rows without their directory) behind when a call fails, remove anything
 * under DIR but staging directories and job directories that no row owns, or log document
 * content.
 */
#include "fax-spool.h"
#include "fax-plugin.h"
#include "hk-db.h"
#include "hk-file.h"
#include "hk-socket.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#define SPOOL_DB        "spool.db"
#define JOBS_DIR        "jobs"
#define JOB_TIFF        "fax.tif"
#define STAGING_PREFIX  ".new-"
#define DEDUPE_WINDOW   (7 * 24 * 3600) /* seconds a dedupe key is remembered */
#define BUSY_TIMEOUT_MS 10000
#define LIST_NAME_MAX   64

struct _FaxSpool {
	char *dir;      /* absolute */
	char *jobs_dir; /* dir/jobs */
	HkDb *db;
	GMutex lock; /* around every use of db */
};

/*
 * States are stored by name, so that an operator reading spool.db with sqlite3 sees what
 * the admin tool shows. Destinations are addressed by (job, number): a job never has the
 * same number twice.
 */
static const char *const migrations[] = {
        "CREATE TABLE jobs ("
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  user TEXT NOT NULL, sender TEXT NOT NULL, notify TEXT NOT NULL,"
        "  subject TEXT NOT NULL, queue_id TEXT NOT NULL, dedupe_key TEXT,"
        "  notes TEXT NOT NULL, created INTEGER NOT NULL, pages INTEGER NOT NULL,"
        "  canceled INTEGER NOT NULL DEFAULT 0, notified INTEGER NOT NULL DEFAULT 0);"
        "CREATE INDEX jobs_dedupe ON jobs (dedupe_key) WHERE dedupe_key IS NOT NULL;"
        "CREATE TABLE destinations ("
        "  job INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,"
        "  position INTEGER NOT NULL, number TEXT NOT NULL, dial TEXT NOT NULL,"
        "  state TEXT NOT NULL"
        "    CHECK (state IN ('queued', 'sending', 'done', 'failed', 'canceled')),"
        "  attempts INTEGER NOT NULL DEFAULT 0, pages_sent INTEGER NOT NULL DEFAULT 0,"
        "  next_attempt INTEGER NOT NULL, started INTEGER NOT NULL DEFAULT 0,"
        "  finished INTEGER NOT NULL DEFAULT 0, result INTEGER NOT NULL DEFAULT -1,"
        "  result_text TEXT NOT NULL DEFAULT '',"
        "  PRIMARY KEY (job, position), UNIQUE (job, number));"
        "CREATE INDEX destinations_due ON destinations (state, next_attempt);"
        "CREATE TABLE lists (name TEXT PRIMARY KEY);"
        "CREATE TABLE list_members ("
        "  list TEXT NOT NULL REFERENCES lists (name) ON DELETE CASCADE,"
        "  position INTEGER NOT NULL, number TEXT NOT NULL,"
        "  PRIMARY KEY (list, number));",
        NULL,
};

#define JOB_COLUMNS                                                                                \
	"j.id, j.user, j.sender, j.notify, j.subject, j.queue_id, j.created, j.pages, j.notes, "   \
	"j.canceled, j.notified"
#define NOT_FINAL "('queued', 'sending')"

static const char *const state_names[] = {
        [FAX_DEST_QUEUED] = "queued", [FAX_DEST_SENDING] = "sending",   [FAX_DEST_DONE] = "done",
        [FAX_DEST_FAILED] = "failed", [FAX_DEST_CANCELED] = "canceled",
};

const char *
fax_dest_state_name(FaxDestState state)
{
	if ((guint)state >= G_N_ELEMENTS(state_names))
		return "unknown";
	return state_names[state];
}

static FaxDestState
state_from_name(const char *name)
{
	for (guint i = 0; i < G_N_ELEMENTS(state_names); i++) {
		if (g_strcmp0(name, state_names[i]) == 0)
			return (FaxDestState)i;
	}
	/* the CHECK constraint keeps anything else out */
	return FAX_DEST_FAILED;
}

static void
fax_destination_free(gpointer data)
{
	FaxDestination *dest = data;

	g_free(dest->number);
	g_free(dest->dial);
	g_free(dest->result_text);
	g_free(dest);
}

void
fax_job_free(FaxJob *job)
{
	if (job == NULL)
		return;
	g_free(job->user);
	g_free(job->sender);
	g_free(job->notify);
	g_free(job->subject);
	g_free(job->queue_id);
	g_free(job->tiff);
	g_free(job->notes);
	if (job->destinations != NULL)
		g_ptr_array_unref(job->destinations);
	g_free(job);
}

gboolean
fax_job_is_final(const FaxJob *job)
{
	for (guint i = 0; i < job->destinations->len; i++) {
		const FaxDestination *dest = g_ptr_array_index(job->destinations, i);

		if (dest->state == FAX_DEST_QUEUED || dest->state == FAX_DEST_SENDING)
			return FALSE;
	}
	return TRUE;
}

static gint64
now_seconds(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

/* ----- files ----- */

/* Every file below dir, then dir itself: what the rename will make part of a job. */
static gboolean
fsync_tree(const char *dir, GError **error)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, error);
	const char *name;

	if (d == NULL)
		return FALSE;
	while ((name = g_dir_read_name(d)) != NULL) {
		g_autofree char *path = g_build_filename(dir, name, NULL);
		struct stat st;

		if (lstat(path, &st) != 0)
			return hk_set_errno_error(error, errno, "stat", path);
		if (S_ISDIR(st.st_mode) && !fsync_tree(path, error))
			return FALSE;
		if (S_ISREG(st.st_mode) && !hk_fsync_path(path, error))
			return FALSE;
	}
	return hk_fsync_path(dir, error);
}

/* rm -r that follows no symbolic link. */
static gboolean
remove_tree(const char *path, GError **error)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? TRUE : hk_set_errno_error(error, errno, "stat", path);
	if (S_ISDIR(st.st_mode)) {
		g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
		g_autoptr(GDir) d = g_dir_open(path, 0, error);
		const char *name;

		if (d == NULL)
			return FALSE;
		/* collected first: removing entries while reading the directory may skip some */
		while ((name = g_dir_read_name(d)) != NULL)
			g_ptr_array_add(names, g_build_filename(path, name, NULL));
		for (guint i = 0; i < names->len; i++) {
			if (!remove_tree(g_ptr_array_index(names, i), error))
				return FALSE;
		}
		if (rmdir(path) != 0)
			return hk_set_errno_error(error, errno, "remove", path);
		return TRUE;
	}
	if (unlink(path) != 0 && errno != ENOENT)
		return hk_set_errno_error(error, errno, "remove", path);
	return TRUE;
}

static void
remove_tree_or_warn(const char *path)
{
	g_autoptr(GError) error = NULL;

	if (!remove_tree(path, &error))
		g_warning("%s", error->message);
}

static char *
job_dir(FaxSpool *spool, gint64 id)
{
	g_autofree char *name = g_strdup_printf("%" G_GINT64_FORMAT, id);

	return g_build_filename(spool->jobs_dir, name, NULL);
}

/* jobs/.new-XXXXXX exactly: the only kind of path discard and commit may move or remove. */
static gboolean
is_staging_path(FaxSpool *spool, const char *path)
{
	gsize len = strlen(spool->jobs_dir);

	return path != NULL && strncmp(path, spool->jobs_dir, len) == 0 && path[len] == '/' &&
	       g_str_has_prefix(path + len + 1, STAGING_PREFIX) &&
	       strchr(path + len + 1, '/') == NULL;
}

/* "12" -> 12; "012", "12a", ".new-x": not a job directory's name. */
static gboolean
parse_job_dir_name(const char *name, gint64 *id)
{
	g_autofree char *again = NULL;

	for (const char *p = name; *p != '\0'; p++) {
		if (!g_ascii_isdigit(*p))
			return FALSE;
	}
	if (!g_ascii_string_to_signed(name, 10, 1, G_MAXINT64, id, NULL))
		return FALSE;
	again = g_strdup_printf("%" G_GINT64_FORMAT, *id);
	return g_str_equal(again, name);
}

/* ----- rows ----- */

static void
bind_text(sqlite3_stmt *stmt, int index, const char *text)
{
	sqlite3_bind_text(stmt, index, text != NULL ? text : "", -1, SQLITE_TRANSIENT);
}

static char *
column_dup(sqlite3_stmt *stmt, int index)
{
	const char *text = (const char *)sqlite3_column_text(stmt, index);

	return g_strdup(text != NULL ? text : "");
}

/* Steps a statement that returns no row. */
static gboolean
step_done(FaxSpool *spool, sqlite3_stmt *stmt, const char *what, GError **error)
{
	if (sqlite3_step(stmt) != SQLITE_DONE)
		return hk_db_set_error(spool->db, error, what);
	return TRUE;
}

static int
changes(FaxSpool *spool)
{
	return sqlite3_changes(hk_db_handle(spool->db));
}

static gboolean
set_no_job_error(GError **error, gint64 id)
{
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no fax job %" G_GINT64_FORMAT, id);
	return FALSE;
}

static gboolean
load_destinations(FaxSpool *spool, FaxJob *job, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        spool->db,
	        "SELECT number, dial, state, attempts, pages_sent, next_attempt, started, finished,"
	        " result, result_text FROM destinations WHERE job = ? ORDER BY position",
	        error);
	int rc;

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, job->id);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		FaxDestination *dest = g_new0(FaxDestination, 1);

		dest->number = column_dup(stmt, 0);
		dest->dial = column_dup(stmt, 1);
		dest->state = state_from_name((const char *)sqlite3_column_text(stmt, 2));
		dest->attempts = (guint)sqlite3_column_int64(stmt, 3);
		dest->pages_sent = (guint)sqlite3_column_int64(stmt, 4);
		dest->next_attempt = sqlite3_column_int64(stmt, 5);
		dest->started = sqlite3_column_int64(stmt, 6);
		dest->finished = sqlite3_column_int64(stmt, 7);
		dest->result = sqlite3_column_int(stmt, 8);
		dest->result_text = column_dup(stmt, 9);
		g_ptr_array_add(job->destinations, dest);
	}
	if (rc != SQLITE_DONE)
		return hk_db_set_error(spool->db, error, "read destinations");
	return TRUE;
}

/* A job from a row of JOB_COLUMNS, with its destinations. */
static FaxJob *
job_from_row(FaxSpool *spool, sqlite3_stmt *stmt, GError **error)
{
	g_autoptr(FaxJob) job = g_new0(FaxJob, 1);
	g_autofree char *dir = NULL;

	job->id = sqlite3_column_int64(stmt, 0);
	job->user = column_dup(stmt, 1);
	job->sender = column_dup(stmt, 2);
	job->notify = column_dup(stmt, 3);
	job->subject = column_dup(stmt, 4);
	job->queue_id = column_dup(stmt, 5);
	job->created = sqlite3_column_int64(stmt, 6);
	job->pages = (guint)sqlite3_column_int64(stmt, 7);
	job->notes = column_dup(stmt, 8);
	job->canceled = sqlite3_column_int(stmt, 9) != 0;
	job->notified = sqlite3_column_int(stmt, 10) != 0;
	dir = job_dir(spool, job->id);
	job->tiff = g_build_filename(dir, JOB_TIFF, NULL);
	job->destinations = g_ptr_array_new_with_free_func(fax_destination_free);
	if (!load_destinations(spool, job, error))
		return NULL;
	return g_steal_pointer(&job);
}

/* Runs a query of JOB_COLUMNS (parameters bound by the caller) into a list of jobs. */
static GPtrArray *
jobs_from_query(FaxSpool *spool, sqlite3_stmt *stmt, GError **error)
{
	g_autoptr(GPtrArray) jobs = g_ptr_array_new_with_free_func((GDestroyNotify)fax_job_free);
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		FaxJob *job = job_from_row(spool, stmt, error);

		if (job == NULL)
			return NULL;
		g_ptr_array_add(jobs, job);
	}
	if (rc != SQLITE_DONE) {
		hk_db_set_error(spool->db, error, "read jobs");
		return NULL;
	}
	return g_steal_pointer(&jobs);
}

static FaxJob *
load_job(FaxSpool *spool, gint64 id, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        spool->db, "SELECT " JOB_COLUMNS " FROM jobs j WHERE j.id = ?", error);
	int rc;

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		set_no_job_error(error, id);
		return NULL;
	}
	if (rc != SQLITE_ROW) {
		hk_db_set_error(spool->db, error, "read job");
		return NULL;
	}
	return job_from_row(spool, stmt, error);
}

static gboolean
job_exists(FaxSpool *spool, gint64 id, gboolean *exists, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(spool->db, "SELECT 1 FROM jobs WHERE id = ?", error);
	int rc;

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return hk_db_set_error(spool->db, error, "read job");
	*exists = rc == SQLITE_ROW;
	return TRUE;
}

/* ----- open, close ----- */

/*
 * A crash between staging and COMMIT leaves a .new-* directory, or (after the rename,
 * before the COMMIT) a jobs/<id> directory that no row owns. Neither was acknowledged.
 */
static gboolean
remove_half_jobs(FaxSpool *spool, GError **error)
{
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GDir) d = g_dir_open(spool->jobs_dir, 0, error);
	const char *name;

	if (d == NULL)
		return FALSE;
	while ((name = g_dir_read_name(d)) != NULL)
		g_ptr_array_add(names, g_strdup(name));
	for (guint i = 0; i < names->len; i++) {
		const char *entry = g_ptr_array_index(names, i);
		g_autofree char *path = g_build_filename(spool->jobs_dir, entry, NULL);
		gboolean exists = TRUE;
		gint64 id;

		if (g_str_has_prefix(entry, STAGING_PREFIX)) {
			g_message("%s: removing an unfinished staging directory", path);
		} else if (parse_job_dir_name(entry, &id)) {
			if (!job_exists(spool, id, &exists, error))
				return FALSE;
			if (exists)
				continue;
			g_message("%s: removing the files of job %" G_GINT64_FORMAT
			          ", which was never committed",
			          path, id);
		} else {
			continue;
		}
		if (!remove_tree(path, error))
			return FALSE;
	}
	return TRUE;
}

static gboolean
make_private_dir(const char *path, GError **error)
{
	if (g_mkdir_with_parents(path, 0700) != 0)
		return hk_set_errno_error(error, errno, "create directory", path);
	return TRUE;
}

FaxSpool *
fax_spool_open(const char *dir, GError **error)
{
	g_autoptr(FaxSpool) spool = NULL;
	g_autofree char *db_path = NULL;

	g_return_val_if_fail(dir != NULL && *dir != '\0', NULL);

	spool = g_new0(FaxSpool, 1);
	g_mutex_init(&spool->lock);
	/* job paths handed to plugins and notifications are absolute */
	spool->dir = g_canonicalize_filename(dir, NULL);
	spool->jobs_dir = g_build_filename(spool->dir, JOBS_DIR, NULL);
	if (!make_private_dir(spool->dir, error) || !make_private_dir(spool->jobs_dir, error))
		return NULL;
	db_path = g_build_filename(spool->dir, SPOOL_DB, NULL);
	spool->db = hk_db_open(db_path, migrations, BUSY_TIMEOUT_MS, error);
	if (spool->db == NULL)
		return NULL;
	if (!remove_half_jobs(spool, error)) {
		g_prefix_error(error, "fax spool %s: ", spool->dir);
		return NULL;
	}
	return g_steal_pointer(&spool);
}

void
fax_spool_close(FaxSpool *spool)
{
	if (spool == NULL)
		return;
	hk_db_close(spool->db);
	g_mutex_clear(&spool->lock);
	g_free(spool->dir);
	g_free(spool->jobs_dir);
	g_free(spool);
}

/* ----- staging and commit ----- */

char *
fax_spool_stage(FaxSpool *spool, GError **error)
{
	g_autofree char *path = g_build_filename(spool->jobs_dir, STAGING_PREFIX "XXXXXX", NULL);

	if (g_mkdtemp_full(path, 0700) == NULL) {
		hk_set_errno_error(error, errno, "create staging directory in", spool->jobs_dir);
		return NULL;
	}
	return g_steal_pointer(&path);
}

void
fax_spool_discard(FaxSpool *spool, const char *staging)
{
	g_return_if_fail(is_staging_path(spool, staging));

	remove_tree_or_warn(staging);
}

static gboolean
check_spec(const FaxJobSpec *spec, GError **error)
{
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	guint n = spec->numbers != NULL ? g_strv_length((char **)spec->numbers) : 0;

	if (n == 0) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		                    "a fax job needs at least one destination");
		return FALSE;
	}
	if (spec->dials == NULL || g_strv_length((char **)spec->dials) != n) {
		g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		                    "a fax job needs one dial string per number");
		return FALSE;
	}
	for (guint i = 0; i < n; i++) {
		if (*spec->numbers[i] == '\0' ||
		    !g_hash_table_add(seen, (gpointer)spec->numbers[i])) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			            "destination %u of a fax job is empty or repeated", i + 1);
			return FALSE;
		}
	}
	return TRUE;
}

typedef struct {
	FaxSpool *spool;
	const char *staging;
	const FaxJobSpec *spec;
	gint64 now;
	gint64 id;
	gboolean duplicate;
	char *job_dir; /* set once staging has been renamed to it */
} CommitTxn;

static gboolean
find_duplicate(CommitTxn *txn, GError **error)
{
	const char *key = txn->spec->dedupe_key;
	g_autoptr(sqlite3_stmt) stmt = NULL;
	int rc;

	if (key == NULL || *key == '\0')
		return TRUE;
	stmt = hk_db_prepare(txn->spool->db,
	                     "SELECT id FROM jobs WHERE dedupe_key = ? AND created >= ?"
	                     " ORDER BY id DESC LIMIT 1",
	                     error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, key);
	sqlite3_bind_int64(stmt, 2, txn->now - DEDUPE_WINDOW);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		txn->duplicate = TRUE;
		txn->id = sqlite3_column_int64(stmt, 0);
		return TRUE;
	}
	if (rc != SQLITE_DONE)
		return hk_db_set_error(txn->spool->db, error, "look up dedupe key");
	return TRUE;
}

static gboolean
insert_job(CommitTxn *txn, GError **error)
{
	const FaxJobSpec *spec = txn->spec;
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        txn->spool->db,
	        "INSERT INTO jobs (user, sender, notify, subject, queue_id, dedupe_key, notes,"
	        " created, pages) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	        error);

	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, spec->user);
	bind_text(stmt, 2, spec->sender);
	bind_text(stmt, 3, spec->notify);
	bind_text(stmt, 4, spec->subject);
	bind_text(stmt, 5, spec->queue_id);
	if (spec->dedupe_key != NULL && *spec->dedupe_key != '\0')
		bind_text(stmt, 6, spec->dedupe_key);
	else
		sqlite3_bind_null(stmt, 6);
	bind_text(stmt, 7, spec->notes);
	sqlite3_bind_int64(stmt, 8, txn->now);
	sqlite3_bind_int64(stmt, 9, spec->pages);
	if (!step_done(txn->spool, stmt, "insert job", error))
		return FALSE;
	txn->id = sqlite3_last_insert_rowid(hk_db_handle(txn->spool->db));
	return TRUE;
}

static gboolean
insert_destinations(CommitTxn *txn, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        txn->spool->db,
	        "INSERT INTO destinations (job, position, number, dial, state, next_attempt)"
	        " VALUES (?, ?, ?, ?, 'queued', ?)",
	        error);

	if (stmt == NULL)
		return FALSE;
	for (guint i = 0; txn->spec->numbers[i] != NULL; i++) {
		sqlite3_reset(stmt);
		sqlite3_bind_int64(stmt, 1, txn->id);
		sqlite3_bind_int64(stmt, 2, i);
		bind_text(stmt, 3, txn->spec->numbers[i]);
		bind_text(stmt, 4, txn->spec->dials[i]);
		sqlite3_bind_int64(stmt, 5, txn->now);
		if (!step_done(txn->spool, stmt, "insert destination", error))
			return FALSE;
	}
	return TRUE;
}

/* The rows go in with the directory renamed: the COMMIT makes both the job at once. */
static gboolean
commit_txn(HkDb *db, gpointer data, GError **error)
{
	CommitTxn *txn = data;
	g_autofree char *dir = NULL;

	if (!find_duplicate(txn, error))
		return FALSE;
	if (txn->duplicate)
		return TRUE;
	if (!insert_job(txn, error))
		return FALSE;
	dir = job_dir(txn->spool, txn->id);
	if (rename(txn->staging, dir) != 0)
		return hk_set_errno_error(error, errno, "rename staging directory to", dir);
	txn->job_dir = g_steal_pointer(&dir);
	/* the rename must be on disk before the rows that say the job exists */
	return hk_fsync_path(txn->spool->jobs_dir, error) && insert_destinations(txn, error);
}

/* After a failed transaction: the files go back to staging, where the caller discards them. */
static void
undo_rename(CommitTxn *txn)
{
	if (txn->job_dir == NULL)
		return;
	if (rename(txn->job_dir, txn->staging) != 0) {
		g_warning("%s: cannot move back to %s (%s); removing it", txn->job_dir,
		          txn->staging, g_strerror(errno));
		remove_tree_or_warn(txn->job_dir);
	}
}

gboolean
fax_spool_commit(FaxSpool *spool, const char *staging, const FaxJobSpec *spec, gint64 *id,
                 gboolean *duplicate, GError **error)
{
	CommitTxn txn = {.spool = spool, .staging = staging, .spec = spec};
	g_autofree char *tiff = NULL;
	gboolean ok;

	g_return_val_if_fail(is_staging_path(spool, staging), FALSE);
	g_return_val_if_fail(spec != NULL && id != NULL && duplicate != NULL, FALSE);

	*id = 0;
	*duplicate = FALSE;
	if (!check_spec(spec, error))
		return FALSE;
	tiff = g_build_filename(staging, JOB_TIFF, NULL);
	if (!g_file_test(tiff, G_FILE_TEST_IS_REGULAR)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s: no such file", tiff);
		return FALSE;
	}
	/* outside the lock: syncing pages may take a while */
	if (!fsync_tree(staging, error))
		return FALSE;
	g_mutex_lock(&spool->lock);
	txn.now = now_seconds();
	ok = hk_db_transaction(spool->db, commit_txn, &txn, error);
	if (!ok)
		undo_rename(&txn);
	g_mutex_unlock(&spool->lock);
	g_free(txn.job_dir);
	if (!ok)
		return FALSE;
	if (txn.duplicate)
		remove_tree_or_warn(staging);
	*id = txn.id;
	*duplicate = txn.duplicate;
	return TRUE;
}

/* ----- reading ----- */

FaxJob *
fax_spool_get_job(FaxSpool *spool, gint64 id, GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&spool->lock);

	return load_job(spool, id, error);
}

GPtrArray *
fax_spool_list_jobs(FaxSpool *spool, guint limit, GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&spool->lock);
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        spool->db, "SELECT " JOB_COLUMNS " FROM jobs j ORDER BY j.id DESC LIMIT ?", error);

	if (stmt == NULL)
		return NULL;
	sqlite3_bind_int64(stmt, 1, limit > 0 ? (gint64)limit : -1);
	return jobs_from_query(spool, stmt, error);
}

/* ----- the queue runner ----- */

typedef struct {
	FaxSpool *spool;
	gint64 now;
	FaxJob *job; /* NULL: nothing due */
	guint index;
	gint64 wake_at;
} ClaimTxn;

static gboolean
next_wake(ClaimTxn *txn, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        txn->spool->db,
	        "SELECT min(d.next_attempt) FROM destinations d JOIN jobs j ON j.id = d.job"
	        " WHERE d.state = 'queued' AND j.canceled = 0",
	        error);

	if (stmt == NULL)
		return FALSE;
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return hk_db_set_error(txn->spool->db, error, "read next attempt");
	txn->wake_at = sqlite3_column_int64(stmt, 0); /* NULL reads as 0: nothing queued */
	return TRUE;
}

static gboolean
claim_txn(HkDb *db, gpointer data, GError **error)
{
	ClaimTxn *txn = data;
	g_autoptr(sqlite3_stmt) pick = hk_db_prepare(
	        db,
	        "SELECT d.job, d.position FROM destinations d JOIN jobs j ON j.id = d.job"
	        " WHERE d.state = 'queued' AND j.canceled = 0 AND d.next_attempt <= ?"
	        " ORDER BY d.next_attempt, d.job, d.position LIMIT 1",
	        error);
	g_autoptr(sqlite3_stmt) take = NULL;
	gint64 id, position;
	int rc;

	if (pick == NULL)
		return FALSE;
	sqlite3_bind_int64(pick, 1, txn->now);
	rc = sqlite3_step(pick);
	if (rc == SQLITE_DONE)
		return next_wake(txn, error);
	if (rc != SQLITE_ROW)
		return hk_db_set_error(db, error, "pick destination");
	id = sqlite3_column_int64(pick, 0);
	position = sqlite3_column_int64(pick, 1);
	take = hk_db_prepare(db,
	                     "UPDATE destinations SET state = 'sending', attempts = attempts + 1,"
	                     " started = ?, finished = 0 WHERE job = ? AND position = ?",
	                     error);
	if (take == NULL)
		return FALSE;
	sqlite3_bind_int64(take, 1, txn->now);
	sqlite3_bind_int64(take, 2, id);
	sqlite3_bind_int64(take, 3, position);
	if (!step_done(txn->spool, take, "claim destination", error))
		return FALSE;
	txn->job = load_job(txn->spool, id, error);
	if (txn->job == NULL)
		return FALSE;
	/* positions are 0..n-1 in order: the position is the index */
	txn->index = (guint)position;
	return TRUE;
}

gboolean
fax_spool_claim(FaxSpool *spool, gint64 now, FaxJob **job, guint *dest_index, gint64 *wake_at,
                GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&spool->lock);
	ClaimTxn txn = {.spool = spool, .now = now};

	*job = NULL;
	*dest_index = 0;
	*wake_at = 0;
	if (!hk_db_transaction(spool->db, claim_txn, &txn, error)) {
		fax_job_free(txn.job);
		return FALSE;
	}
	*wake_at = txn.wake_at;
	if (txn.job == NULL)
		return FALSE;
	*job = txn.job;
	*dest_index = txn.index;
	return TRUE;
}

static gboolean
set_no_destination_error(GError **error, gint64 job, const char *number)
{
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
	            "fax job %" G_GINT64_FORMAT " has no destination %s", job, number);
	return FALSE;
}

gboolean
fax_spool_progress(FaxSpool *spool, gint64 job, const char *number, guint pages_sent,
                   GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&spool->lock);
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        spool->db, "UPDATE destinations SET pages_sent = ? WHERE job = ? AND number = ?",
	        error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, pages_sent);
	sqlite3_bind_int64(stmt, 2, job);
	bind_text(stmt, 3, number);
	if (!step_done(spool, stmt, "record progress", error))
		return FALSE;
	return changes(spool) > 0 || set_no_destination_error(error, job, number);
}

typedef struct {
	FaxSpool *spool;
	gint64 job;
	const char *number;
	int result;
	const char *text;
	guint pages_sent;
	gint64 retry_at;
	gint64 now;
} FinishTxn;

static gboolean
job_canceled(FaxSpool *spool, gint64 id, gboolean *canceled, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(spool->db, "SELECT canceled FROM jobs WHERE id = ?", error);
	int rc;

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, id);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE)
		return set_no_job_error(error, id);
	if (rc != SQLITE_ROW)
		return hk_db_set_error(spool->db, error, "read job");
	*canceled = sqlite3_column_int(stmt, 0) != 0;
	return TRUE;
}

static FaxDestState
finish_state(const FinishTxn *txn, gboolean canceled)
{
	if (txn->retry_at > 0)
		/* a retry of a job canceled meanwhile would stay queued forever: claim skips it */
		return canceled ? FAX_DEST_CANCELED : FAX_DEST_QUEUED;
	if (txn->result == FAX_RESULT_OK)
		return FAX_DEST_DONE;
	if (txn->result == FAX_RESULT_CANCELED)
		return FAX_DEST_CANCELED;
	return FAX_DEST_FAILED;
}

static gboolean
finish_txn(HkDb *db, gpointer data, GError **error)
{
	FinishTxn *txn = data;
	gboolean canceled = FALSE;
	FaxDestState state;
	g_autoptr(sqlite3_stmt) stmt = NULL;

	if (!job_canceled(txn->spool, txn->job, &canceled, error))
		return FALSE;
	state = finish_state(txn, canceled);
	/* An attempt cancelled and queued again (the queue stopping) does not count. */
	stmt = hk_db_prepare(db,
	                     "UPDATE destinations SET state = ?1, result = ?2, result_text = ?3,"
	                     " pages_sent = ?4,"
	                     " next_attempt = CASE WHEN ?5 > 0 THEN ?5 ELSE next_attempt END,"
	                     " finished = ?6, attempts = max(attempts - ?7, 0)"
	                     " WHERE job = ?8 AND number = ?9",
	                     error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, fax_dest_state_name(state));
	sqlite3_bind_int(stmt, 2, txn->result);
	bind_text(stmt, 3, txn->text);
	sqlite3_bind_int64(stmt, 4, txn->pages_sent);
	sqlite3_bind_int64(stmt, 5, txn->retry_at);
	sqlite3_bind_int64(stmt, 6, state == FAX_DEST_QUEUED ? 0 : txn->now);
	sqlite3_bind_int(stmt, 7,
	                 state == FAX_DEST_QUEUED && txn->result == FAX_RESULT_CANCELED ? 1 : 0);
	sqlite3_bind_int64(stmt, 8, txn->job);
	bind_text(stmt, 9, txn->number);
	if (!step_done(txn->spool, stmt, "finish attempt", error))
		return FALSE;
	return changes(txn->spool) > 0 || set_no_destination_error(error, txn->job, txn->number);
}

gboolean
fax_spool_finish(FaxSpool *spool, gint64 job, const char *number, int result, const char *text,
                 guint pages_sent, gint64 retry_at, GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&spool->lock);
	FinishTxn txn = {spool, job, number, result, text, pages_sent, retry_at, now_seconds()};

	return hk_db_transaction(spool->db, finish_txn, &txn, error);
}

gboolean
fax_spool_requeue_interrupted(FaxSpool *spool, GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&spool->lock);
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(spool->db,
	                                             "UPDATE destinations SET state = 'queued', "
	                                             "next_attempt = ? WHERE state = 'sending'",
	                                             error);
	int n;

	if (stmt == NULL)
		return FALSE;
	/* The interrupted attempt counts: a fax that crashes the sender must not loop forever. */
	sqlite3_bind_int64(stmt, 1, now_seconds());
	if (!step_done(spool, stmt, "requeue interrupted destinations", error))
		return FALSE;
	n = changes(spool);
	if (n > 0)
		g_message("fax spool %s: %d interrupted destination%s queued again", spool->dir, n,
		          n == 1 ? "" : "s");
	return TRUE;
}

GPtrArray *
fax_spool_list_unnotified(FaxSpool *spool, GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&spool->lock);
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        spool->db,
	        "SELECT " JOB_COLUMNS " FROM jobs j WHERE j.notified = 0 AND NOT EXISTS"
	        " (SELECT 1 FROM destinations d WHERE d.job = j.id AND d.state IN " NOT_FINAL ")"
	        " ORDER BY j.id",
	        error);

	if (stmt == NULL)
		return NULL;
	return jobs_from_query(spool, stmt, error);
}

gboolean
fax_spool_set_notified(FaxSpool *spool, gint64 id, gboolean notified, GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&spool->lock);
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(spool->db, "UPDATE jobs SET notified = ? WHERE id = ?", error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int(stmt, 1, notified ? 1 : 0);
	sqlite3_bind_int64(stmt, 2, id);
	if (!step_done(spool, stmt, "set notified", error))
		return FALSE;
	return changes(spool) > 0 || set_no_job_error(error, id);
}

/* ----- the admin ----- */

typedef struct {
	FaxSpool *spool;
	gint64 id;
	gint64 now;
	guint n;
} AdminTxn;

/* Runs one statement with the job id as ?1 and now as ?2 (when it uses it). */
static gboolean
run_for_job(AdminTxn *txn, const char *sql, const char *what, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(txn->spool->db, sql, error);

	if (stmt == NULL)
		return FALSE;
	sqlite3_bind_int64(stmt, 1, txn->id);
	if (sqlite3_bind_parameter_count(stmt) >= 2)
		sqlite3_bind_int64(stmt, 2, txn->now);
	if (!step_done(txn->spool, stmt, what, error))
		return FALSE;
	txn->n = (guint)changes(txn->spool);
	return TRUE;
}

static gboolean
cancel_txn(HkDb *db, gpointer data, GError **error)
{
	AdminTxn *txn = data;

	if (!run_for_job(txn, "UPDATE jobs SET canceled = 1 WHERE id = ?1", "cancel job", error))
		return FALSE;
	if (txn->n == 0)
		return set_no_job_error(error, txn->id);
	/* a sending destination is the queue's to stop; it ends canceled through finish */
	return run_for_job(txn,
	                   "UPDATE destinations SET state = 'canceled', finished = ?2"
	                   " WHERE job = ?1 AND state = 'queued'",
	                   "cancel destinations", error);
}

gboolean
fax_spool_cancel(FaxSpool *spool, gint64 id, GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&spool->lock);
	AdminTxn txn = {spool, id, now_seconds(), 0};

	return hk_db_transaction(spool->db, cancel_txn, &txn, error);
}

static gboolean
resend_txn(HkDb *db, gpointer data, GError **error)
{
	AdminTxn *txn = data;
	gboolean exists = FALSE;
	guint n;

	if (!job_exists(txn->spool, txn->id, &exists, error))
		return FALSE;
	if (!exists)
		return set_no_job_error(error, txn->id);
	if (!run_for_job(
	            txn,
	            "UPDATE destinations SET state = 'queued', next_attempt = ?2, attempts = 0,"
	            " pages_sent = 0, started = 0, finished = 0, result = -1, result_text = ''"
	            " WHERE job = ?1 AND state IN ('failed', 'canceled')",
	            "resend destinations", error))
		return FALSE;
	n = txn->n;
	if (n == 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
		            "job %" G_GINT64_FORMAT " has no failed destinations", txn->id);
		return FALSE;
	}
	/* the result mail goes out again once the resent destinations are final */
	if (!run_for_job(txn, "UPDATE jobs SET canceled = 0, notified = 0 WHERE id = ?1",
	                 "resend job", error))
		return FALSE;
	txn->n = n;
	return TRUE;
}

gboolean
fax_spool_resend(FaxSpool *spool, gint64 id, guint *n, GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&spool->lock);
	AdminTxn txn = {spool, id, now_seconds(), 0};

	if (n != NULL)
		*n = 0;
	if (!hk_db_transaction(spool->db, resend_txn, &txn, error))
		return FALSE;
	if (n != NULL)
		*n = txn.n;
	return TRUE;
}

/* ----- lists ----- */

/* Takes the array of strings and makes it a GStrv. */
static GStrv
strv_from_array(GPtrArray *strings)
{
	g_ptr_array_set_free_func(strings, NULL);
	g_ptr_array_add(strings, NULL);
	return (GStrv)g_ptr_array_free(strings, FALSE);
}

static gboolean
list_name_ok(const char *name)
{
	gsize len = name != NULL ? strlen(name) : 0;

	if (len == 0 || len > LIST_NAME_MAX)
		return FALSE;
	for (const char *p = name; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != '_' && *p != '.' && *p != '-')
			return FALSE;
	}
	return TRUE;
}

static gboolean
check_list_name(const char *name, GError **error)
{
	if (list_name_ok(name))
		return TRUE;
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
	            "invalid list name: use 1 to %d of A-Z a-z 0-9 _ . -", LIST_NAME_MAX);
	return FALSE;
}

typedef struct {
	FaxSpool *spool;
	const char *name;
	const char *const *numbers;
} ListAddTxn;

static gboolean
list_next_position(ListAddTxn *txn, gint64 *position, GError **error)
{
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(
	        txn->spool->db,
	        "SELECT coalesce(max(position) + 1, 0) FROM list_members WHERE list = ?", error);

	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, txn->name);
	if (sqlite3_step(stmt) != SQLITE_ROW)
		return hk_db_set_error(txn->spool->db, error, "read list");
	*position = sqlite3_column_int64(stmt, 0);
	return TRUE;
}

static gboolean
list_add_txn(HkDb *db, gpointer data, GError **error)
{
	ListAddTxn *txn = data;
	g_autoptr(sqlite3_stmt) create =
	        hk_db_prepare(db, "INSERT OR IGNORE INTO lists (name) VALUES (?)", error);
	g_autoptr(sqlite3_stmt) add = NULL;
	gint64 position = 0;

	if (create == NULL)
		return FALSE;
	bind_text(create, 1, txn->name);
	if (!step_done(txn->spool, create, "create list", error) ||
	    !list_next_position(txn, &position, error))
		return FALSE;
	add = hk_db_prepare(
	        db, "INSERT OR IGNORE INTO list_members (list, position, number) VALUES (?, ?, ?)",
	        error);
	if (add == NULL)
		return FALSE;
	for (guint i = 0; txn->numbers != NULL && txn->numbers[i] != NULL; i++) {
		sqlite3_reset(add);
		bind_text(add, 1, txn->name);
		sqlite3_bind_int64(add, 2, position);
		bind_text(add, 3, txn->numbers[i]);
		if (!step_done(txn->spool, add, "add list member", error))
			return FALSE;
		/* a number already in the list keeps its place */
		position += changes(txn->spool);
	}
	return TRUE;
}

gboolean
fax_spool_list_add(FaxSpool *spool, const char *name, const char *const *numbers, GError **error)
{
	ListAddTxn txn = {spool, name, numbers};
	g_autoptr(GMutexLocker) locker = NULL;

	if (!check_list_name(name, error))
		return FALSE;
	for (guint i = 0; numbers != NULL && numbers[i] != NULL; i++) {
		if (*numbers[i] == '\0' || !g_utf8_validate(numbers[i], -1, NULL)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			            "list %s: number %u is empty or not text", name, i + 1);
			return FALSE;
		}
	}
	locker = g_mutex_locker_new(&spool->lock);
	return hk_db_transaction(spool->db, list_add_txn, &txn, error);
}

static GStrv
list_members(FaxSpool *spool, const char *name, GError **error)
{
	g_autoptr(sqlite3_stmt) exists =
	        hk_db_prepare(spool->db, "SELECT 1 FROM lists WHERE name = ?", error);
	g_autoptr(sqlite3_stmt) members = NULL;
	g_autoptr(GPtrArray) numbers = g_ptr_array_new_with_free_func(g_free);
	int rc;

	if (exists == NULL)
		return NULL;
	bind_text(exists, 1, name);
	rc = sqlite3_step(exists);
	if (rc == SQLITE_DONE)
		return NULL;
	if (rc != SQLITE_ROW) {
		hk_db_set_error(spool->db, error, "read list");
		return NULL;
	}
	members = hk_db_prepare(spool->db,
	                        "SELECT number FROM list_members WHERE list = ? ORDER BY position",
	                        error);
	if (members == NULL)
		return NULL;
	bind_text(members, 1, name);
	while ((rc = sqlite3_step(members)) == SQLITE_ROW)
		g_ptr_array_add(numbers, column_dup(members, 0));
	if (rc != SQLITE_DONE) {
		hk_db_set_error(spool->db, error, "read list members");
		return NULL;
	}
	return strv_from_array(g_steal_pointer(&numbers));
}

GStrv
fax_spool_list_get(FaxSpool *spool, const char *name)
{
	g_autoptr(GMutexLocker) locker = NULL;
	g_autoptr(GError) error = NULL;
	GStrv numbers;

	if (!list_name_ok(name))
		return NULL;
	locker = g_mutex_locker_new(&spool->lock);
	numbers = list_members(spool, name, &error);
	if (error != NULL)
		g_warning("fax spool %s: list %s: %s", spool->dir, name, error->message);
	return numbers;
}

gboolean
fax_spool_list_del(FaxSpool *spool, const char *name, GError **error)
{
	g_autoptr(GMutexLocker) locker = NULL;
	g_autoptr(sqlite3_stmt) stmt = NULL;

	if (!check_list_name(name, error))
		return FALSE;
	locker = g_mutex_locker_new(&spool->lock);
	/* the members go with it: ON DELETE CASCADE */
	stmt = hk_db_prepare(spool->db, "DELETE FROM lists WHERE name = ?", error);
	if (stmt == NULL)
		return FALSE;
	bind_text(stmt, 1, name);
	if (!step_done(spool, stmt, "delete list", error))
		return FALSE;
	if (changes(spool) == 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no fax list %s", name);
		return FALSE;
	}
	return TRUE;
}

GStrv
fax_spool_list_names(FaxSpool *spool, GError **error)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&spool->lock);
	g_autoptr(sqlite3_stmt) stmt =
	        hk_db_prepare(spool->db, "SELECT name FROM lists ORDER BY name", error);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	int rc;

	if (stmt == NULL)
		return NULL;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		g_ptr_array_add(names, column_dup(stmt, 0));
	if (rc != SQLITE_DONE) {
		hk_db_set_error(spool->db, error, "read list names");
		return NULL;
	}
	return strv_from_array(g_steal_pointer(&names));
}
