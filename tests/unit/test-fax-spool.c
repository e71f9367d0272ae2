/*
 * test-fax-spool: unit tests for the fax spool, the queue runner and the built-in file
 * backend (milter-smime/fax/fax-spool.c, fax-queue.c, fax-plugin.c).
 *
 * Works in a private temporary directory per test, removed at the end. The queue runner is
 * driven by fake backends written here (its own logic is what is under test); the file
 * backend is the real one. Must never touch a file outside the temporary directory.
 */
#include "fax-plugin.h"
#include "fax-queue.h"
#include "fax-spool.h"

#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#define WAIT_MAX_US (30 * G_USEC_PER_SEC)

/* Polls until expr holds, failing the test after WAIT_MAX_US. */
#define WAIT_UNTIL(expr)                                                                           \
	G_STMT_START                                                                               \
	{                                                                                          \
		gint64 wait_end_ = g_get_monotonic_time() + WAIT_MAX_US;                           \
		while (!(expr) && g_get_monotonic_time() < wait_end_)                              \
			g_usleep(10 * 1000);                                                       \
		g_assert_true(expr);                                                               \
	}                                                                                          \
	G_STMT_END

static const char tiff_bytes[] = "II*\0not really a TIFF, but bytes to keep\n";

typedef struct {
	char *dir;
	FaxSpool *spool;
} Fixture;

static void
remove_tree(const char *path)
{
	GDir *dir = g_dir_open(path, 0, NULL);
	const char *name;

	if (dir != NULL) {
		while ((name = g_dir_read_name(dir)) != NULL) {
			g_autofree char *child = g_build_filename(path, name, NULL);

			if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
			    !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
				remove_tree(child);
			else
				g_unlink(child);
		}
		g_dir_close(dir);
	}
	g_rmdir(path);
}

static FaxSpool *
open_spool(const char *dir)
{
	g_autoptr(GError) error = NULL;
	FaxSpool *spool = fax_spool_open(dir, &error);

	g_assert_no_error(error);
	g_assert_nonnull(spool);
	return spool;
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *tmp = g_dir_make_tmp("test-fax-spool-XXXXXX", &error);

	g_assert_no_error(error);
	f->dir = g_build_filename(tmp, "spool", NULL);
	f->spool = open_spool(f->dir);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	g_autofree char *tmp = g_path_get_dirname(f->dir);

	fax_spool_close(f->spool);
	remove_tree(tmp);
	g_free(f->dir);
}

static void
write_file(const char *path, const char *data, gsize len)
{
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, data, (gssize)len, &error);
	g_assert_no_error(error);
}

static char *
stage_job(FaxSpool *spool)
{
	g_autoptr(GError) error = NULL;
	char *staging = fax_spool_stage(spool, &error);
	g_autofree char *tiff = NULL;

	g_assert_no_error(error);
	g_assert_nonnull(staging);
	tiff = g_build_filename(staging, "fax.tif", NULL);
	write_file(tiff, tiff_bytes, sizeof tiff_bytes);
	return staging;
}

/* Commits a staged job to numbers (dial strings "9" + number); returns id and *duplicate. */
static gint64
commit_job(FaxSpool *spool, const char *staging, const char *key, const char *const *numbers,
           gboolean *duplicate)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) dials = g_ptr_array_new_with_free_func(g_free);
	FaxJobSpec spec = {
	        .user = "alice",
	        .sender = "alice@example.jp",
	        .notify = "alice@example.jp",
	        .subject = "/fax=body",
	        .queue_id = "4XyZ1",
	        .dedupe_key = key,
	        .notes = "",
	        .pages = 3,
	        .numbers = numbers,
	};
	gint64 id = 0;

	for (guint i = 0; numbers[i] != NULL; i++)
		g_ptr_array_add(dials, g_strconcat("9", numbers[i], NULL));
	g_ptr_array_add(dials, NULL);
	spec.dials = (const char *const *)dials->pdata;
	g_assert_true(fax_spool_commit(spool, staging, &spec, &id, duplicate, &error));
	g_assert_no_error(error);
	g_assert_cmpint(id, >, 0);
	return id;
}

static gint64
add_job(FaxSpool *spool, const char *key, const char *const *numbers)
{
	g_autofree char *staging = stage_job(spool);
	gboolean duplicate = TRUE;
	gint64 id = commit_job(spool, staging, key, numbers, &duplicate);

	g_assert_false(duplicate);
	return id;
}

static FaxJob *
get_job(FaxSpool *spool, gint64 id)
{
	g_autoptr(GError) error = NULL;
	FaxJob *job = fax_spool_get_job(spool, id, &error);

	g_assert_no_error(error);
	g_assert_nonnull(job);
	return job;
}

static const FaxDestination *
dest_of(const FaxJob *job, guint index)
{
	g_assert_cmpuint(index, <, job->destinations->len);
	return g_ptr_array_index(job->destinations, index);
}

static FaxDestState
dest_state(FaxSpool *spool, gint64 id, guint index)
{
	g_autoptr(FaxJob) job = get_job(spool, id);

	return dest_of(job, index)->state;
}

static char *
job_path(const Fixture *f, gint64 id)
{
	g_autofree char *name = g_strdup_printf("%" G_GINT64_FORMAT, id);

	return g_build_filename(f->dir, "jobs", name, NULL);
}

/* ----- the spool ----- */

static void
test_commit_get_list(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"0311112222", "0442223333", NULL};
	const char *const one[] = {"0611110000", NULL};
	g_autofree char *staging = stage_job(f->spool);
	g_autoptr(GError) error = NULL;
	g_autoptr(FaxJob) job = NULL;
	g_autoptr(GPtrArray) jobs = NULL;
	g_autofree char *contents = NULL;
	g_autofree char *dir = NULL;
	g_autofree char *expected_tiff = NULL;
	gboolean duplicate = TRUE;
	gsize len = 0;
	struct stat st;
	gint64 id, second;

	g_assert_true(g_str_has_prefix(staging, f->dir));
	g_assert_cmpint(g_stat(staging, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0700);
	id = commit_job(f->spool, staging, "key-1", numbers, &duplicate);
	g_assert_false(duplicate);
	g_assert_false(g_file_test(staging, G_FILE_TEST_EXISTS));

	job = get_job(f->spool, id);
	g_assert_cmpint(job->id, ==, id);
	g_assert_cmpstr(job->user, ==, "alice");
	g_assert_cmpstr(job->sender, ==, "alice@example.jp");
	g_assert_cmpstr(job->notify, ==, "alice@example.jp");
	g_assert_cmpstr(job->subject, ==, "/fax=body");
	g_assert_cmpstr(job->queue_id, ==, "4XyZ1");
	g_assert_cmpstr(job->notes, ==, "");
	g_assert_cmpuint(job->pages, ==, 3);
	g_assert_cmpint(job->created, >, 0);
	g_assert_false(job->canceled);
	g_assert_false(job->notified);
	g_assert_false(fax_job_is_final(job));
	dir = job_path(f, id);
	expected_tiff = g_build_filename(dir, "fax.tif", NULL);
	g_assert_cmpstr(job->tiff, ==, expected_tiff);
	g_assert_true(g_file_get_contents(job->tiff, &contents, &len, NULL));
	g_assert_cmpmem(contents, len, tiff_bytes, sizeof tiff_bytes);
	g_assert_cmpuint(job->destinations->len, ==, 2);
	for (guint i = 0; i < 2; i++) {
		const FaxDestination *dest = dest_of(job, i);
		g_autofree char *dial = g_strconcat("9", numbers[i], NULL);

		g_assert_cmpstr(dest->number, ==, numbers[i]);
		g_assert_cmpstr(dest->dial, ==, dial);
		g_assert_cmpint(dest->state, ==, FAX_DEST_QUEUED);
		g_assert_cmpuint(dest->attempts, ==, 0);
		g_assert_cmpint(dest->result, ==, -1);
		g_assert_cmpint(dest->next_attempt, ==, job->created);
	}

	second = add_job(f->spool, NULL, one);
	g_assert_cmpint(second, >, id);
	jobs = fax_spool_list_jobs(f->spool, 0, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(jobs->len, ==, 2);
	g_assert_cmpint(((FaxJob *)jobs->pdata[0])->id, ==, second);
	g_assert_cmpint(((FaxJob *)jobs->pdata[1])->id, ==, id);
	g_clear_pointer(&jobs, g_ptr_array_unref);
	jobs = fax_spool_list_jobs(f->spool, 1, &error);
	g_assert_cmpuint(jobs->len, ==, 1);
	g_assert_cmpint(((FaxJob *)jobs->pdata[0])->id, ==, second);

	g_clear_pointer(&job, fax_job_free);
	job = fax_spool_get_job(f->spool, 4242, &error);
	g_assert_null(job);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
	g_assert_cmpstr(error->message, ==, "no fax job 4242");
}

static void
test_commit_refuses_bad_spec(Fixture *f, gconstpointer data)
{
	const char *const repeated[] = {"0311112222", "0311112222", NULL};
	g_autofree char *staging = stage_job(f->spool);
	g_autofree char *empty = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) jobs = NULL;
	const char *const dials[] = {"1", "2", NULL};
	FaxJobSpec spec = {.numbers = repeated, .dials = dials};
	gboolean duplicate;
	gint64 id;

	g_assert_false(fax_spool_commit(f->spool, staging, &spec, &id, &duplicate, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	/* nothing was moved: the caller still discards its staging directory */
	g_assert_true(g_file_test(staging, G_FILE_TEST_IS_DIR));
	fax_spool_discard(f->spool, staging);
	g_assert_false(g_file_test(staging, G_FILE_TEST_EXISTS));

	/* a staging directory without fax.tif */
	empty = fax_spool_stage(f->spool, &error);
	g_assert_no_error(error);
	spec.numbers = (const char *const[]){"0311112222", NULL};
	spec.dials = (const char *const[]){"0311112222", NULL};
	g_assert_false(fax_spool_commit(f->spool, empty, &spec, &id, &duplicate, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
	fax_spool_discard(f->spool, empty);
	g_clear_error(&error);
	jobs = fax_spool_list_jobs(f->spool, 0, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(jobs->len, ==, 0);
}

static void
raw_exec(const char *db_path, const char *sql)
{
	sqlite3 *handle = NULL;

	g_assert_cmpint(sqlite3_open_v2(db_path, &handle, SQLITE_OPEN_READWRITE, NULL), ==,
	                SQLITE_OK);
	g_assert_cmpint(sqlite3_exec(handle, sql, NULL, NULL, NULL), ==, SQLITE_OK);
	sqlite3_close(handle);
}

/* A failure after the rename, or at it, leaves neither rows nor a job directory. */
static void
test_commit_failure_leaves_nothing(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"0311112222", NULL};
	const char *const dials[] = {"0311112222", NULL};
	FaxJobSpec spec = {.numbers = numbers, .dials = dials, .pages = 1};
	g_autofree char *db_path = g_build_filename(f->dir, "spool.db", NULL);
	g_autofree char *staging = stage_job(f->spool);
	g_autofree char *first = job_path(f, 1);
	g_autofree char *blocker = g_build_filename(first, "left-over", NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) jobs = NULL;
	gboolean duplicate;
	gint64 id = -1;

	/* the destination rows fail to go in: after the rename */
	raw_exec(db_path, "CREATE TRIGGER fail BEFORE INSERT ON destinations"
	                  " BEGIN SELECT RAISE(ABORT, 'injected'); END");
	g_assert_false(fax_spool_commit(f->spool, staging, &spec, &id, &duplicate, &error));
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "injected"));
	g_clear_error(&error);
	g_assert_true(g_file_test(staging, G_FILE_TEST_IS_DIR));
	g_assert_false(g_file_test(first, G_FILE_TEST_EXISTS));
	raw_exec(db_path, "DROP TRIGGER fail");

	/* the rename itself fails: a directory is in the way */
	g_assert_cmpint(g_mkdir(first, 0700), ==, 0);
	write_file(blocker, "x", 1);
	g_assert_false(fax_spool_commit(f->spool, staging, &spec, &id, &duplicate, &error));
	g_assert_nonnull(error);
	g_clear_error(&error);
	g_assert_true(g_file_test(staging, G_FILE_TEST_IS_DIR));
	jobs = fax_spool_list_jobs(f->spool, 0, &error);
	g_assert_cmpuint(jobs->len, ==, 0);
	g_clear_pointer(&jobs, g_ptr_array_unref);
	remove_tree(first);

	g_assert_true(fax_spool_commit(f->spool, staging, &spec, &id, &duplicate, &error));
	g_assert_no_error(error);
	g_assert_cmpint(id, ==, 1);
	g_assert_false(g_file_test(blocker, G_FILE_TEST_EXISTS));
	jobs = fax_spool_list_jobs(f->spool, 0, &error);
	g_assert_cmpuint(jobs->len, ==, 1);
}

static void
test_dedupe(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"0311112222", NULL};
	g_autofree char *again = stage_job(f->spool);
	g_autoptr(GPtrArray) jobs = NULL;
	g_autoptr(GError) error = NULL;
	gboolean duplicate = FALSE;
	gint64 id = add_job(f->spool, "<msg-1@example.jp>", numbers);
	gint64 dup_id = commit_job(f->spool, again, "<msg-1@example.jp>", numbers, &duplicate);

	g_assert_true(duplicate);
	g_assert_cmpint(dup_id, ==, id);
	g_assert_false(g_file_test(again, G_FILE_TEST_EXISTS));

	/* another key, or none at all, is another job */
	g_assert_cmpint(add_job(f->spool, "<msg-2@example.jp>", numbers), !=, id);
	add_job(f->spool, NULL, numbers);
	add_job(f->spool, NULL, numbers);
	jobs = fax_spool_list_jobs(f->spool, 0, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(jobs->len, ==, 4);
}

static void
test_open_removes_half_jobs(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"0311112222", NULL};
	gint64 id = add_job(f->spool, NULL, numbers);
	g_autofree char *kept = job_path(f, id);
	g_autofree char *staging = g_build_filename(f->dir, "jobs", ".new-x", NULL);
	g_autofree char *staging_file = g_build_filename(staging, "fax.tif", NULL);
	g_autofree char *orphan = job_path(f, 99);
	g_autofree char *orphan_file = g_build_filename(orphan, "fax.tif", NULL);
	g_autofree char *other = g_build_filename(f->dir, "jobs", "README", NULL);
	g_autoptr(FaxJob) job = NULL;

	g_assert_cmpint(g_mkdir(staging, 0700), ==, 0);
	write_file(staging_file, "x", 1);
	g_assert_cmpint(g_mkdir(orphan, 0700), ==, 0);
	write_file(orphan_file, "x", 1);
	write_file(other, "not ours", 8);
	fax_spool_close(f->spool);

	g_test_expect_message("fax", G_LOG_LEVEL_MESSAGE, "*jobs/*removing*");
	g_test_expect_message("fax", G_LOG_LEVEL_MESSAGE, "*jobs/*removing*");
	f->spool = open_spool(f->dir);
	g_test_assert_expected_messages();

	g_assert_false(g_file_test(staging, G_FILE_TEST_EXISTS));
	g_assert_false(g_file_test(orphan, G_FILE_TEST_EXISTS));
	g_assert_true(g_file_test(kept, G_FILE_TEST_IS_DIR));
	g_assert_true(g_file_test(other, G_FILE_TEST_IS_REGULAR));
	job = get_job(f->spool, id);
	g_assert_true(g_file_test(job->tiff, G_FILE_TEST_IS_REGULAR));
}

static void
test_reopen_keeps_everything(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"0311112222", "0442223333", NULL};
	const char *const members[] = {"0311112222", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(FaxJob) job = NULL;
	g_autoptr(FaxJob) claimed = NULL;
	g_auto(GStrv) list = NULL;
	gint64 id = add_job(f->spool, "k", numbers);
	gint64 wake_at;
	guint index;

	g_assert_true(fax_spool_claim(f->spool, G_MAXINT32, &claimed, &index, &wake_at, &error));
	g_assert_true(
	        fax_spool_finish(f->spool, id, "0311112222", FAX_RESULT_OK, "sent", 3, 0, &error));
	g_assert_true(fax_spool_list_add(f->spool, "team", members, &error));
	g_assert_no_error(error);
	fax_spool_close(f->spool);
	f->spool = open_spool(f->dir);

	job = get_job(f->spool, id);
	g_assert_cmpint(dest_of(job, 0)->state, ==, FAX_DEST_DONE);
	g_assert_cmpstr(dest_of(job, 0)->result_text, ==, "sent");
	g_assert_cmpuint(dest_of(job, 0)->pages_sent, ==, 3);
	g_assert_cmpint(dest_of(job, 1)->state, ==, FAX_DEST_QUEUED);
	list = fax_spool_list_get(f->spool, "team");
	g_assert_nonnull(list);
	g_assert_cmpstrv(list, members);
	/* the dedupe key survives too */
	{
		g_autofree char *staging = stage_job(f->spool);
		gboolean duplicate = FALSE;

		g_assert_cmpint(commit_job(f->spool, staging, "k", numbers, &duplicate), ==, id);
		g_assert_true(duplicate);
	}
}

static void
claim(FaxSpool *spool, gint64 now, gint64 expect_job, guint expect_index)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(FaxJob) job = NULL;
	guint index = 99;
	gint64 wake_at = -1;

	g_assert_true(fax_spool_claim(spool, now, &job, &index, &wake_at, &error));
	g_assert_no_error(error);
	g_assert_cmpint(job->id, ==, expect_job);
	g_assert_cmpuint(index, ==, expect_index);
	g_assert_cmpint(dest_of(job, index)->state, ==, FAX_DEST_SENDING);
	g_assert_cmpint(dest_of(job, index)->started, ==, now);
}

/* Nothing is due at now; returns wake_at. */
static gint64
claim_none(FaxSpool *spool, gint64 now)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(FaxJob) job = NULL;
	guint index;
	gint64 wake_at = -1;

	g_assert_false(fax_spool_claim(spool, now, &job, &index, &wake_at, &error));
	g_assert_no_error(error);
	g_assert_null(job);
	return wake_at;
}

static void
finish(FaxSpool *spool, gint64 id, const char *number, int result, gint64 retry_at)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(fax_spool_finish(spool, id, number, result, "text", 1, retry_at, &error));
	g_assert_no_error(error);
}

static void
test_claim_order(Fixture *f, gconstpointer data)
{
	const char *const two[] = {"0311112222", "0442223333", NULL};
	const char *const one[] = {"0611110000", NULL};
	gint64 a = add_job(f->spool, NULL, two);
	gint64 b = add_job(f->spool, NULL, one);
	g_autoptr(FaxJob) job_a = get_job(f->spool, a);
	gint64 t = job_a->created + 1000;

	/* not yet due: told when */
	g_assert_cmpint(claim_none(f->spool, job_a->created - 10), ==, job_a->created);
	claim(f->spool, t, a, 0);
	claim(f->spool, t, a, 1);
	claim(f->spool, t, b, 0);
	g_assert_cmpint(claim_none(f->spool, t), ==, 0);

	/* the earliest next_attempt first, whatever the job */
	finish(f->spool, a, "0311112222", FAX_RESULT_BUSY, t + 100);
	finish(f->spool, b, "0611110000", FAX_RESULT_BUSY, t + 50);
	g_assert_cmpint(claim_none(f->spool, t), ==, t + 50);
	claim(f->spool, t + 200, b, 0);
	claim(f->spool, t + 200, a, 0);
	{
		g_autoptr(FaxJob) again = get_job(f->spool, a);

		g_assert_cmpuint(dest_of(again, 0)->attempts, ==, 2);
		g_assert_cmpuint(dest_of(again, 1)->attempts, ==, 1);
	}
}

static void
test_finish_transitions(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"01", "02", "03", "04", "05", NULL};
	gint64 id = add_job(f->spool, NULL, numbers);
	g_autoptr(FaxJob) job = NULL;
	g_autoptr(GPtrArray) unnotified = NULL;
	g_autoptr(GError) error = NULL;
	gint64 t = g_get_real_time() / G_USEC_PER_SEC + 1000;

	for (guint i = 0; i < 5; i++)
		claim(f->spool, t, id, i);
	g_assert_true(fax_spool_progress(f->spool, id, "01", 2, &error));
	g_assert_no_error(error);
	g_assert_false(fax_spool_progress(f->spool, id, "99", 2, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
	g_clear_error(&error);
	finish(f->spool, id, "01", FAX_RESULT_OK, 0);
	finish(f->spool, id, "02", FAX_RESULT_NO_ANSWER, 0);
	finish(f->spool, id, "03", FAX_RESULT_CANCELED, 0);
	finish(f->spool, id, "04", FAX_RESULT_BUSY, t + 60);
	/* cancelled and queued again: the attempt does not count */
	finish(f->spool, id, "05", FAX_RESULT_CANCELED, t);
	job = get_job(f->spool, id);
	g_assert_cmpint(dest_of(job, 0)->state, ==, FAX_DEST_DONE);
	g_assert_cmpint(dest_of(job, 0)->result, ==, FAX_RESULT_OK);
	g_assert_cmpstr(dest_of(job, 0)->result_text, ==, "text");
	g_assert_cmpint(dest_of(job, 0)->finished, >, 0);
	g_assert_cmpint(dest_of(job, 1)->state, ==, FAX_DEST_FAILED);
	g_assert_cmpint(dest_of(job, 1)->result, ==, FAX_RESULT_NO_ANSWER);
	g_assert_cmpint(dest_of(job, 2)->state, ==, FAX_DEST_CANCELED);
	g_assert_cmpint(dest_of(job, 3)->state, ==, FAX_DEST_QUEUED);
	g_assert_cmpint(dest_of(job, 3)->next_attempt, ==, t + 60);
	g_assert_cmpuint(dest_of(job, 3)->attempts, ==, 1);
	g_assert_cmpint(dest_of(job, 3)->finished, ==, 0);
	g_assert_cmpint(dest_of(job, 4)->state, ==, FAX_DEST_QUEUED);
	g_assert_cmpuint(dest_of(job, 4)->attempts, ==, 0);
	g_assert_false(fax_job_is_final(job));
	g_assert_cmpstr(fax_dest_state_name(FAX_DEST_QUEUED), ==, "queued");
	g_assert_cmpstr(fax_dest_state_name(FAX_DEST_SENDING), ==, "sending");
	g_assert_cmpstr(fax_dest_state_name(FAX_DEST_DONE), ==, "done");
	g_assert_cmpstr(fax_dest_state_name(FAX_DEST_FAILED), ==, "failed");
	g_assert_cmpstr(fax_dest_state_name(FAX_DEST_CANCELED), ==, "canceled");

	unnotified = fax_spool_list_unnotified(f->spool, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(unnotified->len, ==, 0);
	g_clear_pointer(&unnotified, g_ptr_array_unref);
	/* "05" is due at t, "04" at t + 60 */
	claim(f->spool, t + 100, id, 4);
	claim(f->spool, t + 100, id, 3);
	finish(f->spool, id, "04", FAX_RESULT_OK, 0);
	finish(f->spool, id, "05", FAX_RESULT_REFUSED, 0);
	unnotified = fax_spool_list_unnotified(f->spool, &error);
	g_assert_cmpuint(unnotified->len, ==, 1);
	g_assert_true(fax_job_is_final(unnotified->pdata[0]));
	g_clear_pointer(&unnotified, g_ptr_array_unref);
	g_assert_true(fax_spool_set_notified(f->spool, id, TRUE, &error));
	unnotified = fax_spool_list_unnotified(f->spool, &error);
	g_assert_cmpuint(unnotified->len, ==, 0);
	g_assert_false(fax_spool_set_notified(f->spool, 4242, TRUE, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
}

static void
test_requeue_interrupted(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"0311112222", NULL};
	gint64 id = add_job(f->spool, NULL, numbers);
	g_autoptr(GError) error = NULL;
	g_autoptr(FaxJob) job = NULL;

	claim(f->spool, G_MAXINT32, id, 0);
	g_assert_cmpint(dest_state(f->spool, id, 0), ==, FAX_DEST_SENDING);
	g_test_expect_message("fax", G_LOG_LEVEL_MESSAGE, "*1 interrupted destination*");
	g_assert_true(fax_spool_requeue_interrupted(f->spool, &error));
	g_test_assert_expected_messages();
	g_assert_no_error(error);
	job = get_job(f->spool, id);
	g_assert_cmpint(dest_of(job, 0)->state, ==, FAX_DEST_QUEUED);
	/* a crash mid-send still counts as an attempt */
	g_assert_cmpuint(dest_of(job, 0)->attempts, ==, 1);
	claim(f->spool, G_MAXINT32, id, 0);
}

static void
test_cancel(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"0311112222", "0442223333", NULL};
	gint64 id = add_job(f->spool, NULL, numbers);
	g_autoptr(GError) error = NULL;
	g_autoptr(FaxJob) job = NULL;

	claim(f->spool, G_MAXINT32, id, 0);
	g_assert_true(fax_spool_cancel(f->spool, id, &error));
	g_assert_no_error(error);
	job = get_job(f->spool, id);
	g_assert_true(job->canceled);
	g_assert_cmpint(dest_of(job, 0)->state, ==, FAX_DEST_SENDING);
	g_assert_cmpint(dest_of(job, 1)->state, ==, FAX_DEST_CANCELED);
	g_assert_cmpint(claim_none(f->spool, G_MAXINT32), ==, 0);
	/* the sending one comes back busy: it is not queued again for a canceled job */
	finish(f->spool, id, "0311112222", FAX_RESULT_BUSY, G_MAXINT32);
	g_assert_cmpint(dest_state(f->spool, id, 0), ==, FAX_DEST_CANCELED);

	g_assert_false(fax_spool_cancel(f->spool, 12345, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
	g_assert_cmpstr(error->message, ==, "no fax job 12345");
}

static void
test_resend(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"01", "02", "03", NULL};
	gint64 id = add_job(f->spool, NULL, numbers);
	g_autoptr(GError) error = NULL;
	g_autoptr(FaxJob) job = NULL;
	guint n = 0;

	for (guint i = 0; i < 3; i++)
		claim(f->spool, G_MAXINT32, id, i);
	finish(f->spool, id, "01", FAX_RESULT_OK, 0);
	finish(f->spool, id, "02", FAX_RESULT_BUSY, 0);
	finish(f->spool, id, "03", FAX_RESULT_CANCELED, 0);
	g_assert_true(fax_spool_set_notified(f->spool, id, TRUE, &error));

	g_assert_true(fax_spool_resend(f->spool, id, &n, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(n, ==, 2);
	job = get_job(f->spool, id);
	g_assert_false(job->notified);
	g_assert_false(job->canceled);
	g_assert_cmpint(dest_of(job, 0)->state, ==, FAX_DEST_DONE);
	for (guint i = 1; i < 3; i++) {
		g_assert_cmpint(dest_of(job, i)->state, ==, FAX_DEST_QUEUED);
		g_assert_cmpuint(dest_of(job, i)->attempts, ==, 0);
		g_assert_cmpint(dest_of(job, i)->next_attempt, <=,
		                g_get_real_time() / G_USEC_PER_SEC);
	}

	g_assert_false(fax_spool_resend(f->spool, id, &n, &error));
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "has no failed destinations"));
	g_clear_error(&error);
	g_assert_false(fax_spool_resend(f->spool, 4242, &n, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
}

static void
test_lists(Fixture *f, gconstpointer data)
{
	const char *const first[] = {"0311112222", "0442223333", NULL};
	const char *const more[] = {"0442223333", "0611110000", NULL};
	const char *const team[] = {"0311112222", "0442223333", "0611110000", NULL};
	const char *const alpha[] = {"01", NULL};
	const char *const both[] = {"alpha", "team", NULL};
	const char *const bad[] = {"", "a b", "x/y", "../etc", "ü", NULL};
	g_autofree char *longest = g_strnfill(64, 'a');
	g_autofree char *too_long = g_strnfill(65, 'a');
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) got = NULL;
	g_auto(GStrv) names = NULL;

	g_assert_true(fax_spool_list_add(f->spool, "team", first, &error));
	g_assert_true(fax_spool_list_add(f->spool, "team", more, &error));
	g_assert_true(fax_spool_list_add(f->spool, "alpha", alpha, &error));
	g_assert_true(fax_spool_list_add(f->spool, longest, alpha, &error));
	g_assert_true(fax_spool_list_add(f->spool, "Dept_2.fax-x", alpha, &error));
	g_assert_no_error(error);
	got = fax_spool_list_get(f->spool, "team");
	g_assert_cmpstrv(got, team);
	g_assert_null(fax_spool_list_get(f->spool, "nobody"));
	g_assert_null(fax_spool_list_get(f->spool, "a b"));
	g_assert_true(fax_spool_list_del(f->spool, longest, &error));
	g_assert_true(fax_spool_list_del(f->spool, "Dept_2.fax-x", &error));
	names = fax_spool_list_names(f->spool, &error);
	g_assert_no_error(error);
	g_assert_cmpstrv(names, both);

	g_assert_true(fax_spool_list_del(f->spool, "team", &error));
	g_assert_null(fax_spool_list_get(f->spool, "team"));
	g_assert_false(fax_spool_list_del(f->spool, "team", &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
	g_clear_error(&error);

	for (guint i = 0; bad[i] != NULL; i++) {
		g_assert_false(fax_spool_list_add(f->spool, bad[i], alpha, &error));
		g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
		g_assert_nonnull(strstr(error->message, "list name"));
		g_clear_error(&error);
	}
	g_assert_false(fax_spool_list_add(f->spool, too_long, alpha, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_false(fax_spool_list_del(f->spool, "a/b", &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

/* ----- the queue, with fake backends ----- */

typedef struct {
	GMutex lock;
	GCond cond;
	GHashTable *busy_left; /* number -> how many more sends answer busy */
	gboolean block;        /* send waits for cancel */
	gboolean sending;
	gboolean canceled;
	guint sends;
	char *station_id;
} FakeBackend;

static void
fake_send(gpointer self, const FaxSendRequest *request, FaxProgressFunc progress,
          gpointer progress_data, FaxSendResult *result)
{
	FakeBackend *fake = self;
	guint busy;

	g_mutex_lock(&fake->lock);
	fake->sends++;
	fake->sending = TRUE;
	fake->canceled = FALSE;
	g_free(fake->station_id);
	fake->station_id = g_strdup(request->station_id);
	g_cond_broadcast(&fake->cond);
	busy = GPOINTER_TO_UINT(g_hash_table_lookup(fake->busy_left, request->number));
	if (busy > 0)
		g_hash_table_insert(fake->busy_left, g_strdup(request->number),
		                    GUINT_TO_POINTER(busy - 1));
	while (fake->block && !fake->canceled)
		g_cond_wait(&fake->cond, &fake->lock);
	fake->sending = FALSE;
	if (fake->block) {
		result->code = FAX_RESULT_CANCELED;
		result->text = g_strdup("canceled");
	} else if (busy > 0) {
		result->code = FAX_RESULT_BUSY;
		result->text = g_strdup("busy");
	} else {
		result->code = FAX_RESULT_OK;
		result->pages_sent = request->pages;
		result->text = g_strdup("sent");
	}
	g_mutex_unlock(&fake->lock);
	for (guint page = 1; result->code == FAX_RESULT_OK && page <= request->pages; page++) {
		FaxProgress p = {FAX_PHASE_PAGE, page, request->pages, NULL};

		progress(&p, progress_data);
	}
}

static void
fake_cancel(gpointer self)
{
	FakeBackend *fake = self;

	g_mutex_lock(&fake->lock);
	fake->canceled = TRUE;
	g_cond_broadcast(&fake->cond);
	g_mutex_unlock(&fake->lock);
}

static const FaxPlugin fake_plugin = {
        .api_version = FAX_PLUGIN_API_VERSION,
        .name = "fake",
        .send = fake_send,
        .cancel = fake_cancel,
};

static FakeBackend *
fake_new(gboolean block)
{
	FakeBackend *fake = g_new0(FakeBackend, 1);

	g_mutex_init(&fake->lock);
	g_cond_init(&fake->cond);
	fake->busy_left = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	fake->block = block;
	return fake;
}

static void
fake_free(FakeBackend *fake)
{
	g_hash_table_unref(fake->busy_left);
	g_mutex_clear(&fake->lock);
	g_cond_clear(&fake->cond);
	g_free(fake->station_id);
	g_free(fake);
}

static void
fake_wait_sending(FakeBackend *fake)
{
	gint64 end = g_get_monotonic_time() + WAIT_MAX_US;

	g_mutex_lock(&fake->lock);
	while (!fake->sending && g_cond_wait_until(&fake->cond, &fake->lock, end))
		;
	g_assert_true(fake->sending);
	g_mutex_unlock(&fake->lock);
}

/* What notify() saw: calls per job id, and how many calls fail first. */
typedef struct {
	GMutex lock;
	GHashTable *calls; /* gint64 id -> guint */
	guint fail_first;
	guint total;
} Notifications;

static gboolean
record_notify(const FaxJob *job, gpointer user_data)
{
	Notifications *n = user_data;
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&n->lock);
	guint calls = GPOINTER_TO_UINT(g_hash_table_lookup(n->calls, &job->id));

	g_assert_true(fax_job_is_final(job));
	g_hash_table_insert(n->calls, g_memdup2(&job->id, sizeof job->id),
	                    GUINT_TO_POINTER(calls + 1));
	n->total++;
	if (n->fail_first > 0) {
		n->fail_first--;
		return FALSE;
	}
	return TRUE;
}

static void
notifications_init(Notifications *n, guint fail_first)
{
	memset(n, 0, sizeof(*n));
	g_mutex_init(&n->lock);
	n->calls = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	n->fail_first = fail_first;
}

static void
notifications_clear(Notifications *n)
{
	g_hash_table_unref(n->calls);
	g_mutex_clear(&n->lock);
}

static guint
notify_calls(Notifications *n, gint64 id)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&n->lock);

	return GPOINTER_TO_UINT(g_hash_table_lookup(n->calls, &id));
}

static gboolean
job_notified(FaxSpool *spool, gint64 id)
{
	g_autoptr(FaxJob) job = get_job(spool, id);

	return job->notified;
}

static FaxQueue *
start_queue(FaxSpool *spool, const FaxPlugin *plugin, gpointer self, Notifications *n)
{
	FaxQueueOptions options = {
	        .max_tries = 3,
	        .retry_delay_ms = 50,
	        .station_id = "+81 3 1111 2222",
	        .notify_retry_ms = 100,
	};
	g_autoptr(GError) error = NULL;
	FaxQueue *queue = fax_queue_start(spool, plugin, self, &options, record_notify, n, &error);

	g_assert_no_error(error);
	g_assert_nonnull(queue);
	return queue;
}

static void
test_queue_retries(Fixture *f, gconstpointer data)
{
	const char *const lucky[] = {"0311112222", NULL};
	const char *const hopeless[] = {"0442223333", NULL};
	FakeBackend *fake = fake_new(FALSE);
	Notifications n;
	FaxQueue *queue;
	gint64 a, b;

	notifications_init(&n, 0);
	g_hash_table_insert(fake->busy_left, g_strdup("0311112222"), GUINT_TO_POINTER(2));
	g_hash_table_insert(fake->busy_left, g_strdup("0442223333"), GUINT_TO_POINTER(100));
	a = add_job(f->spool, NULL, lucky);
	b = add_job(f->spool, NULL, hopeless);
	queue = start_queue(f->spool, &fake_plugin, fake, &n);
	WAIT_UNTIL(job_notified(f->spool, a) && job_notified(f->spool, b));
	/* nothing more to do: a kick and a moment change nothing */
	fax_queue_kick(queue);
	g_usleep(200 * 1000);
	fax_queue_stop(queue);

	{
		g_autoptr(FaxJob) ja = get_job(f->spool, a);
		g_autoptr(FaxJob) jb = get_job(f->spool, b);

		g_assert_cmpint(dest_of(ja, 0)->state, ==, FAX_DEST_DONE);
		g_assert_cmpuint(dest_of(ja, 0)->attempts, ==, 3);
		g_assert_cmpuint(dest_of(ja, 0)->pages_sent, ==, 3);
		g_assert_cmpint(dest_of(ja, 0)->result, ==, FAX_RESULT_OK);
		g_assert_cmpint(dest_of(jb, 0)->state, ==, FAX_DEST_FAILED);
		g_assert_cmpuint(dest_of(jb, 0)->attempts, ==, 3);
		g_assert_cmpint(dest_of(jb, 0)->result, ==, FAX_RESULT_BUSY);
		g_assert_cmpstr(dest_of(jb, 0)->result_text, ==, "busy");
	}
	g_assert_cmpuint(fake->sends, ==, 6);
	g_assert_cmpstr(fake->station_id, ==, "+81 3 1111 2222");
	g_assert_cmpuint(notify_calls(&n, a), ==, 1);
	g_assert_cmpuint(notify_calls(&n, b), ==, 1);
	notifications_clear(&n);
	fake_free(fake);
}

static void
test_queue_notify_retried(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"0311112222", NULL};
	FakeBackend *fake = fake_new(FALSE);
	Notifications n;
	FaxQueue *queue;
	gint64 id;

	notifications_init(&n, 1);
	id = add_job(f->spool, NULL, numbers);
	g_test_expect_message("fax", G_LOG_LEVEL_MESSAGE, "*sent, 3 pages");
	g_test_expect_message("fax", G_LOG_LEVEL_MESSAGE, "*notification failed*");
	queue = start_queue(f->spool, &fake_plugin, fake, &n);
	WAIT_UNTIL(job_notified(f->spool, id));
	g_test_assert_expected_messages();
	fax_queue_stop(queue);
	g_assert_cmpuint(notify_calls(&n, id), ==, 2);
	notifications_clear(&n);
	fake_free(fake);
}

static void
test_queue_picks_up_restart(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"0311112222", NULL};
	FakeBackend *fake = fake_new(FALSE);
	Notifications n;
	FaxQueue *queue;
	gint64 sending = add_job(f->spool, NULL, numbers);
	gint64 done = add_job(f->spool, NULL, numbers);

	/* as a crash leaves them: one destination sending, one job final but not notified */
	notifications_init(&n, 0);
	claim(f->spool, G_MAXINT32, sending, 0);
	claim(f->spool, G_MAXINT32, done, 0);
	finish(f->spool, done, "0311112222", FAX_RESULT_OK, 0);
	queue = start_queue(f->spool, &fake_plugin, fake, &n);
	WAIT_UNTIL(job_notified(f->spool, sending) && job_notified(f->spool, done));
	fax_queue_stop(queue);
	g_assert_cmpint(dest_state(f->spool, sending, 0), ==, FAX_DEST_DONE);
	g_assert_cmpuint(fake->sends, ==, 1);
	notifications_clear(&n);
	fake_free(fake);
}

static void
test_queue_stop_mid_send(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"0311112222", NULL};
	FakeBackend *fake = fake_new(TRUE);
	Notifications n;
	FaxQueue *queue;
	gint64 id;

	notifications_init(&n, 0);
	queue = start_queue(f->spool, &fake_plugin, fake, &n);
	id = add_job(f->spool, NULL, numbers);
	fax_queue_kick(queue);
	fake_wait_sending(fake);
	g_assert_cmpint(dest_state(f->spool, id, 0), ==, FAX_DEST_SENDING);
	fax_queue_stop(queue);

	{
		g_autoptr(FaxJob) job = get_job(f->spool, id);

		g_assert_cmpint(dest_of(job, 0)->state, ==, FAX_DEST_QUEUED);
		g_assert_cmpuint(dest_of(job, 0)->attempts, ==, 0);
		g_assert_false(job->notified);
	}
	g_assert_cmpuint(n.total, ==, 0);
	notifications_clear(&n);
	fake_free(fake);
}

/* A stop at any moment (before the claim, between claim and send, as the send starts)
 * leaves the destination queued, its attempt not counted. */
static void
test_queue_stop_any_time(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"0311112222", NULL};

	for (guint i = 0; i < 5; i++) {
		FakeBackend *fake = fake_new(TRUE);
		Notifications n;
		FaxQueue *queue;
		gint64 id = add_job(f->spool, NULL, numbers);

		notifications_init(&n, 0);
		queue = start_queue(f->spool, &fake_plugin, fake, &n);
		g_usleep(i * 300);
		fax_queue_stop(queue);
		{
			g_autoptr(FaxJob) job = get_job(f->spool, id);

			g_assert_cmpint(dest_of(job, 0)->state, ==, FAX_DEST_QUEUED);
			g_assert_cmpuint(dest_of(job, 0)->attempts, ==, 0);
		}
		g_assert_true(fax_spool_cancel(f->spool, id, NULL));
		notifications_clear(&n);
		fake_free(fake);
	}
}

static void
test_queue_cancel_mid_send(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"0311112222", "0442223333", NULL};
	FakeBackend *fake = fake_new(TRUE);
	g_autoptr(GError) error = NULL;
	Notifications n;
	FaxQueue *queue;
	gint64 id;

	notifications_init(&n, 0);
	id = add_job(f->spool, NULL, numbers);
	queue = start_queue(f->spool, &fake_plugin, fake, &n);
	fake_wait_sending(fake);
	g_assert_true(fax_queue_cancel(queue, id, &error));
	g_assert_no_error(error);
	WAIT_UNTIL(job_notified(f->spool, id));
	fax_queue_stop(queue);

	{
		g_autoptr(FaxJob) job = get_job(f->spool, id);

		g_assert_true(job->canceled);
		g_assert_cmpint(dest_of(job, 0)->state, ==, FAX_DEST_CANCELED);
		g_assert_cmpint(dest_of(job, 1)->state, ==, FAX_DEST_CANCELED);
	}
	g_assert_cmpuint(fake->sends, ==, 1);
	g_assert_cmpuint(notify_calls(&n, id), ==, 1);
	notifications_clear(&n);
	fake_free(fake);
}

/* ----- the file backend ----- */

typedef struct {
	FaxPluginHost host;
	GHashTable *values;
} TestHost;

static const char *
host_get_string(const FaxPluginHost *host, const char *key)
{
	return g_hash_table_lookup(host->host_data, key);
}

static gint64
host_get_int(const FaxPluginHost *host, const char *key)
{
	return 0;
}

static gboolean
host_get_bool(const FaxPluginHost *host, const char *key)
{
	return FALSE;
}

static void
test_host_init(TestHost *t, const char *outbox, const char *fail_numbers)
{
	t->values = g_hash_table_new(g_str_hash, g_str_equal);
	g_hash_table_insert(t->values, (gpointer) "outbox", (gpointer)outbox);
	if (fail_numbers != NULL)
		g_hash_table_insert(t->values, (gpointer) "fail_numbers", (gpointer)fail_numbers);
	t->host = (FaxPluginHost){
	        .section = "fax_file",
	        .get_string = host_get_string,
	        .get_int = host_get_int,
	        .get_bool = host_get_bool,
	        .get_duration_ms = host_get_int,
	        .host_data = t->values,
	};
}

typedef struct {
	GString *phases; /* "D P1 P2 P3 H" */
	const FaxPlugin *plugin;
	gpointer self;
	guint cancel_at_page; /* 0: never */
} ProgressLog;

static void
log_progress(const FaxProgress *progress, gpointer user_data)
{
	ProgressLog *log = user_data;

	switch (progress->phase) {
	case FAX_PHASE_DIALING:
		g_string_append(log->phases, "D");
		break;
	case FAX_PHASE_NEGOTIATING:
		g_string_append(log->phases, " N");
		break;
	case FAX_PHASE_PAGE:
		g_string_append_printf(log->phases, " P%u/%u", progress->page, progress->pages);
		if (progress->page == log->cancel_at_page)
			log->plugin->cancel(log->self);
		break;
	case FAX_PHASE_HANGUP:
		g_string_append(log->phases, " H");
		break;
	}
}

static void
test_file_plugin(Fixture *f, gconstpointer data)
{
	g_autofree char *tmp = g_path_get_dirname(f->dir);
	g_autofree char *outbox = g_build_filename(tmp, "out", "box", NULL);
	g_autofree char *tiff = g_build_filename(tmp, "pages.tif", NULL);
	g_autofree char *target = g_build_filename(outbox, "7-0312345678.tif", NULL);
	const char *written = "written to the outbox as 7-0312345678.tif";
	g_autofree char *contents = NULL;
	g_autoptr(GError) error = NULL;
	const FaxPlugin *plugin = fax_plugin_file();
	FaxSendRequest request = {7, "0312345678", "90312345678", tiff, 3, "", ""};
	FaxSendResult result = {0};
	ProgressLog log = {g_string_new(NULL), plugin, NULL, 0};
	TestHost host;
	gpointer self;
	struct stat st;
	gsize len = 0;

	write_file(tiff, tiff_bytes, sizeof tiff_bytes);
	test_host_init(&host, outbox, " 0399998888 ,0311112222,");
	g_assert_cmpstr(plugin->name, ==, "file");
	g_assert_cmpuint(plugin->api_version, ==, FAX_PLUGIN_API_VERSION);
	self = plugin->open(&host.host, &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_stat(outbox, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0750);
	log.self = self;

	plugin->send(self, &request, log_progress, &log, &result);
	g_assert_cmpint(result.code, ==, FAX_RESULT_OK);
	g_assert_cmpuint(result.pages_sent, ==, 3);
	g_assert_cmpstr(result.text, ==, written);
	g_assert_cmpstr(log.phases->str, ==, "D P1/3 P2/3 P3/3 H");
	g_assert_true(g_file_get_contents(target, &contents, &len, NULL));
	g_assert_cmpmem(contents, len, tiff_bytes, sizeof tiff_bytes);
	g_assert_cmpint(g_stat(target, &st), ==, 0);
	g_assert_cmpint(st.st_mode & 0777, ==, 0640);
	g_clear_pointer(&result.text, g_free);

	/* a number in fail_numbers is busy, and nothing is written */
	request.number = "0311112222";
	plugin->send(self, &request, log_progress, &log, &result);
	g_assert_cmpint(result.code, ==, FAX_RESULT_BUSY);
	g_assert_cmpstr(result.text, ==, "busy (fail_numbers)");
	g_clear_pointer(&result.text, g_free);

	/* cancelled after page 1: no file, not even a partial one */
	request.number = "0655554444";
	log.cancel_at_page = 1;
	plugin->send(self, &request, log_progress, &log, &result);
	g_assert_cmpint(result.code, ==, FAX_RESULT_CANCELED);
	g_assert_cmpuint(result.pages_sent, ==, 1);
	g_clear_pointer(&result.text, g_free);
	{
		g_autoptr(GDir) dir = g_dir_open(outbox, 0, NULL);
		guint files = 0;

		while (g_dir_read_name(dir) != NULL)
			files++;
		g_assert_cmpuint(files, ==, 1);
	}
	/* a later send is not cancelled by it */
	log.cancel_at_page = 0;
	plugin->send(self, &request, log_progress, &log, &result);
	g_assert_cmpint(result.code, ==, FAX_RESULT_OK);
	g_clear_pointer(&result.text, g_free);

	plugin->close(self);
	g_string_free(log.phases, TRUE);
	g_hash_table_unref(host.values);
}

static void
test_file_plugin_refuses_bad_outbox(Fixture *f, gconstpointer data)
{
	const FaxPlugin *plugin = fax_plugin_file();
	g_autoptr(GError) error = NULL;
	TestHost host;

	test_host_init(&host, "relative/outbox", NULL);
	g_assert_null(plugin->open(&host.host, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, "outbox"));
	g_hash_table_unref(host.values);
}

/* The real backend behind the real queue: fail_numbers drive a retry to failure. */
static void
test_queue_with_file_plugin(Fixture *f, gconstpointer data)
{
	const char *const numbers[] = {"0311112222", "0442223333", NULL};
	g_autofree char *tmp = g_path_get_dirname(f->dir);
	g_autofree char *outbox = g_build_filename(tmp, "outbox", NULL);
	g_autoptr(GError) error = NULL;
	const FaxPlugin *plugin = NULL;
	Notifications n;
	FaxQueueOptions options = {.max_tries = 2, .retry_delay_ms = 10};
	FaxQueue *queue;
	TestHost host;
	gpointer self;
	gint64 id;

	plugin = fax_plugin_load("file", "/nonexistent", &error);
	g_assert_no_error(error);
	g_assert_true(plugin == fax_plugin_file());
	test_host_init(&host, outbox, "0442223333");
	self = plugin->open(&host.host, &error);
	g_assert_no_error(error);
	notifications_init(&n, 0);
	id = add_job(f->spool, NULL, numbers);
	queue = fax_queue_start(f->spool, plugin, self, &options, record_notify, &n, &error);
	g_assert_no_error(error);
	WAIT_UNTIL(job_notified(f->spool, id));
	fax_queue_stop(queue);

	{
		g_autoptr(FaxJob) job = get_job(f->spool, id);
		g_autofree char *name = g_strdup_printf("%" G_GINT64_FORMAT "-0311112222.tif", id);
		g_autofree char *target = g_build_filename(outbox, name, NULL);
		g_autofree char *contents = NULL;
		gsize len = 0;

		g_assert_cmpint(dest_of(job, 0)->state, ==, FAX_DEST_DONE);
		g_assert_cmpuint(dest_of(job, 0)->pages_sent, ==, 3);
		g_assert_cmpint(dest_of(job, 1)->state, ==, FAX_DEST_FAILED);
		g_assert_cmpuint(dest_of(job, 1)->attempts, ==, 2);
		g_assert_cmpstr(dest_of(job, 1)->result_text, ==, "busy (fail_numbers)");
		g_assert_true(g_file_get_contents(target, &contents, &len, NULL));
		g_assert_cmpmem(contents, len, tiff_bytes, sizeof tiff_bytes);
	}
	g_assert_cmpuint(notify_calls(&n, id), ==, 1);
	plugin->close(self);
	notifications_clear(&n);
	g_hash_table_unref(host.values);
}

static void
test_plugin_load_errors(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GError) missing = NULL;
	g_autofree char *dir = g_dir_make_tmp("test-fax-plugin-XXXXXX", NULL);

	g_assert_null(fax_plugin_load("../evil", dir, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
	g_clear_error(&error);
	g_assert_null(fax_plugin_load("Modem", dir, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
	g_assert_null(fax_plugin_load("modem", dir, &missing));
	g_assert_error(missing, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
	g_assert_nonnull(strstr(missing->message, "hanko-fax-modem.so"));
	g_rmdir(dir);
}

#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/fax-spool/commit-get-list", test_commit_get_list);
	ADD("/fax-spool/commit-refuses-bad-spec", test_commit_refuses_bad_spec);
	ADD("/fax-spool/commit-failure-leaves-nothing", test_commit_failure_leaves_nothing);
	ADD("/fax-spool/dedupe", test_dedupe);
	ADD("/fax-spool/open-removes-half-jobs", test_open_removes_half_jobs);
	ADD("/fax-spool/reopen", test_reopen_keeps_everything);
	ADD("/fax-spool/claim-order", test_claim_order);
	ADD("/fax-spool/finish", test_finish_transitions);
	ADD("/fax-spool/requeue-interrupted", test_requeue_interrupted);
	ADD("/fax-spool/cancel", test_cancel);
	ADD("/fax-spool/resend", test_resend);
	ADD("/fax-spool/lists", test_lists);
	ADD("/fax-queue/retries", test_queue_retries);
	ADD("/fax-queue/notify-retried", test_queue_notify_retried);
	ADD("/fax-queue/restart", test_queue_picks_up_restart);
	ADD("/fax-queue/stop-mid-send", test_queue_stop_mid_send);
	ADD("/fax-queue/stop-any-time", test_queue_stop_any_time);
	ADD("/fax-queue/cancel-mid-send", test_queue_cancel_mid_send);
	ADD("/fax-queue/file-plugin", test_queue_with_file_plugin);
	ADD("/fax-plugin/file", test_file_plugin);
	ADD("/fax-plugin/file-bad-outbox", test_file_plugin_refuses_bad_outbox);
	g_test_add_func("/fax-plugin/load-errors", test_plugin_load_errors);
	return g_test_run();
}
