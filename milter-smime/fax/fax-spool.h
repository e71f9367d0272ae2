/*
 * fax-spool: the durable fax queue. One SQLite database (spool.db: jobs, destinations,
 * lists) and one directory per job (jobs/<id>/fax.tif) under the spool directory.
 *
 * A job is staged in a fresh directory, then committed in one step: the files are
 * fsynced, the directory renamed to jobs/<id> and fsynced, and the rows inserted in one
 * transaction (synchronous=FULL). That COMMIT is the moment the job exists: the milter
 * answers 250 only after it. A crash before it leaves a directory without rows, which
 * fax_spool_open removes; a crash after it loses nothing. A message sent again after
 * such a crash (the client saw no 250) carries the same dedupe key and is not queued
 * twice.
 *
 * Thread-safe: one lock around the database.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum {
	FAX_DEST_QUEUED,
	FAX_DEST_SENDING,
	FAX_DEST_DONE,
	FAX_DEST_FAILED,
	FAX_DEST_CANCELED,
} FaxDestState;

const char *fax_dest_state_name(FaxDestState state); /* "queued" ... */

typedef struct {
	char *number; /* canonical */
	char *dial;
	FaxDestState state;
	guint attempts;
	guint pages_sent;
	gint64 next_attempt; /* unix seconds */
	gint64 started;      /* of the last attempt, or 0 */
	gint64 finished;     /* or 0 */
	int result;          /* FaxResultCode of the last attempt, -1: none yet */
	char *result_text;
} FaxDestination;

typedef struct {
	gint64 id;
	char *user;     /* hanko user name */
	char *sender;   /* the From address */
	char *notify;   /* where the result mail goes */
	char *subject;  /* the request's Subject */
	char *queue_id; /* Postfix's */
	gint64 created;
	guint pages;
	char *tiff;  /* absolute path */
	char *notes; /* what the intake skipped, for the notification; "" */
	gboolean canceled;
	gboolean notified;
	GPtrArray *destinations; /* FaxDestination* */
} FaxJob;

void fax_job_free(FaxJob *job);
/* TRUE when no destination is queued or sending. */
gboolean fax_job_is_final(const FaxJob *job);

typedef struct _FaxSpool FaxSpool;

/* Creates dir (0700) if needed, opens spool.db, removes half-written jobs. */
FaxSpool *fax_spool_open(const char *dir, GError **error);
void fax_spool_close(FaxSpool *spool);

/* A fresh empty staging directory for one job's files (the caller writes fax.tif). */
char *fax_spool_stage(FaxSpool *spool, GError **error);
/* Removes a staging directory that will not be committed. */
void fax_spool_discard(FaxSpool *spool, const char *staging);

typedef struct {
	const char *user;
	const char *sender;
	const char *notify;
	const char *subject;
	const char *queue_id;
	const char *dedupe_key; /* NULL: none */
	const char *notes;
	guint pages;
	const char *const *numbers; /* canonical */
	const char *const *dials;   /* same length */
} FaxJobSpec;

/*
 * Commits the staged files (fax.tif inside staging) as a new job. When dedupe_key matches
 * a job of the last 7 days, staging is removed, *duplicate is set and *id is that job's.
 */
gboolean fax_spool_commit(FaxSpool *spool, const char *staging, const FaxJobSpec *spec, gint64 *id,
                          gboolean *duplicate, GError **error);

FaxJob *fax_spool_get_job(FaxSpool *spool, gint64 id, GError **error); /* G_IO_ERROR_NOT_FOUND */
/* Newest first; limit 0: all. */
GPtrArray *fax_spool_list_jobs(FaxSpool *spool, guint limit, GError **error);

/* ----- for the queue runner ----- */

/*
 * Claims the destination due first (queued, next_attempt <= now, job not canceled):
 * it becomes sending, attempts + 1. FALSE without error when none is due; *wake_at then
 * gets the next next_attempt (0: nothing queued).
 */
gboolean fax_spool_claim(FaxSpool *spool, gint64 now, FaxJob **job, guint *dest_index,
                         gint64 *wake_at, GError **error);
gboolean fax_spool_progress(FaxSpool *spool, gint64 job, const char *number, guint pages_sent,
                            GError **error);
/* Ends an attempt: retry_at > 0 queues it again for then, 0 makes the state final. An
 * attempt ended FAX_RESULT_CANCELED and queued again (the queue stopping) does not count:
 * attempts goes back down. */
gboolean fax_spool_finish(FaxSpool *spool, gint64 job, const char *number, int result,
                          const char *text, guint pages_sent, gint64 retry_at, GError **error);
/* Destinations left sending by a crash go back to queued (at start-up). */
gboolean fax_spool_requeue_interrupted(FaxSpool *spool, GError **error);
/* Jobs whose destinations are all final and whose result mail is not sent yet. */
GPtrArray *fax_spool_list_unnotified(FaxSpool *spool, GError **error);
gboolean fax_spool_set_notified(FaxSpool *spool, gint64 id, gboolean notified, GError **error);

/* ----- for the admin ----- */

/* Queued destinations become canceled; a sending one is left to the queue to stop. */
gboolean fax_spool_cancel(FaxSpool *spool, gint64 id, GError **error);
/* Failed (and canceled) destinations are queued again now, attempts reset; *n gets how
 * many. The job's result mail is sent again when they are final. */
gboolean fax_spool_resend(FaxSpool *spool, gint64 id, guint *n, GError **error);

/* Lists of numbers (canonical), by name ([A-Za-z0-9_.-]{1,64}). */
gboolean
fax_spool_list_add(FaxSpool *spool, const char *name, const char *const *numbers, GError **error);
GStrv fax_spool_list_get(FaxSpool *spool, const char *name); /* NULL: no such list */
gboolean fax_spool_list_del(FaxSpool *spool, const char *name, GError **error);
GStrv fax_spool_list_names(FaxSpool *spool, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(FaxJob, fax_job_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FaxSpool, fax_spool_close)

G_END_DECLS
