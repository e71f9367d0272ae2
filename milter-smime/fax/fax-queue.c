/*
 * fax-queue: the queue runner (see fax-queue.h).
 *
 * One thread: claims the due destination from the spool, hands it to the backend plugin,
 * records the result, and calls notify() for jobs that became final. Other threads only
 * kick it, cancel a job or stop it; they talk to it through the fields under `lock`.
 *
 * An attempt cut short by fax_queue_stop() does not count: the spool takes it back off
 * the destination's attempts when it is queued again (FAX_RESULT_CANCELED, retry now).
 * One that a crash cut short does count (fax_spool_requeue_interrupted).
 *
 * Must never: hold the lock while a plugin sends, call notify() from another thread than
 * the runner's, or log document content (one line per attempt: job, number, outcome).
 */
#include "fax-queue.h"

#define WAKE_MAX_US          (60 * G_USEC_PER_SEC) /* look at the spool at least this often */
#define NOTIFY_RETRY_MS      30000                 /* default of notify_retry_ms */
#define RETRY_DELAY_MAX_MS   (24 * 3600 * 1000LL)  /* the back-off stops doubling here */
#define STOP_CANCEL_EVERY_US G_USEC_PER_SEC        /* a stop says cancel again this often */

struct _FaxQueue {
	FaxSpool *spool;
	const FaxPlugin *plugin;
	gpointer plugin_self;
	guint max_tries;
	gint64 retry_delay_ms;
	gint64 notify_retry_ms;
	char *station_id;
	FaxNotifyFunc notify;
	gpointer notify_data;
	/* job id -> monotonic time before which a failed notification is not tried again;
	 * the runner's thread only */
	GHashTable *notify_retry;
	GThread *thread;

	GMutex lock; /* the fields below */
	GCond cond;
	gboolean stop;
	gboolean kicked;
	gint64 sending_job;      /* job of the send in progress; 0: none */
	gboolean cancel_sending; /* fax_queue_cancel() was called for it */
};

typedef struct {
	FaxQueue *queue;
	gint64 job;
	const char *number;
} ProgressData;

static const char *const result_names[] = {
        [FAX_RESULT_OK] = "sent",
        [FAX_RESULT_BUSY] = "busy",
        [FAX_RESULT_NO_ANSWER] = "no answer",
        [FAX_RESULT_FAILED] = "failed",
        [FAX_RESULT_REFUSED] = "refused",
        [FAX_RESULT_LOCAL] = "local error",
        [FAX_RESULT_CANCELED] = "canceled",
};

static const char *
result_name(FaxResultCode code)
{
	if ((guint)code >= G_N_ELEMENTS(result_names))
		return "unknown result";
	return result_names[code];
}

/* "5m", "1h30m", "45s", "50ms": for log lines. */
static char *
format_duration(gint64 ms)
{
	GString *out = g_string_new(NULL);
	gint64 s = ms / 1000;

	if (ms < 1000) {
		g_string_printf(out, "%" G_GINT64_FORMAT "ms", ms);
		return g_string_free(out, FALSE);
	}
	if (s >= 3600)
		g_string_append_printf(out, "%" G_GINT64_FORMAT "h", s / 3600);
	if (s % 3600 >= 60)
		g_string_append_printf(out, "%" G_GINT64_FORMAT "m", s % 3600 / 60);
	if (s % 60 != 0)
		g_string_append_printf(out, "%" G_GINT64_FORMAT "s", s % 60);
	return g_string_free(out, FALSE);
}

/* The monotonic time at which the wall clock reads unix_seconds. */
static gint64
monotonic_at(gint64 unix_seconds)
{
	return g_get_monotonic_time() + (unix_seconds * G_USEC_PER_SEC - g_get_real_time());
}

static gboolean
is_stopping(FaxQueue *queue)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&queue->lock);

	return queue->stop;
}

/* ----- notifications ----- */

static void
notify_one(FaxQueue *queue, const FaxJob *job, gint64 now)
{
	g_autoptr(GError) error = NULL;
	gint64 *not_before = g_hash_table_lookup(queue->notify_retry, &job->id);

	if (not_before != NULL && *not_before > now)
		return;
	if (queue->notify != NULL && !queue->notify(job, queue->notify_data)) {
		gint64 key = job->id;
		gint64 when = now + queue->notify_retry_ms * 1000;
		g_autofree char *delay = format_duration(queue->notify_retry_ms);

		g_message("job %" G_GINT64_FORMAT
		          ": result notification failed, trying again in %s",
		          job->id, delay);
		g_hash_table_replace(queue->notify_retry, g_memdup2(&key, sizeof key),
		                     g_memdup2(&when, sizeof when));
		return;
	}
	g_hash_table_remove(queue->notify_retry, &job->id);
	if (!fax_spool_set_notified(queue->spool, job->id, TRUE, &error))
		g_warning("job %" G_GINT64_FORMAT ": %s", job->id, error->message);
}

/* Calls notify() for every final job whose result mail has not gone out. */
static void
notify_finished(FaxQueue *queue)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) jobs = fax_spool_list_unnotified(queue->spool, &error);
	gint64 now = g_get_monotonic_time();

	if (jobs == NULL) {
		g_warning("fax queue: %s", error->message);
		return;
	}
	for (guint i = 0; i < jobs->len; i++)
		notify_one(queue, g_ptr_array_index(jobs, i), now);
}

/* The earliest monotonic time a failed notification may be tried again; 0: none waits. */
static gint64
next_notify_retry(FaxQueue *queue)
{
	GHashTableIter iter;
	gpointer value;
	gint64 first = 0;

	g_hash_table_iter_init(&iter, queue->notify_retry);
	while (g_hash_table_iter_next(&iter, NULL, &value)) {
		gint64 when = *(gint64 *)value;

		if (first == 0 || when < first)
			first = when;
	}
	return first;
}

/* ----- one attempt ----- */

static void
on_progress(const FaxProgress *progress, gpointer user_data)
{
	ProgressData *data = user_data;
	FaxQueue *queue = data->queue;
	gboolean cancel;

	if (progress->phase == FAX_PHASE_PAGE) {
		g_autoptr(GError) error = NULL;
		guint done = progress->page > 0 ? progress->page - 1 : 0;

		g_debug("job %" G_GINT64_FORMAT " to %s: page %u of %u", data->job, data->number,
		        progress->page, progress->pages);
		if (!fax_spool_progress(queue->spool, data->job, data->number, done, &error))
			g_warning("job %" G_GINT64_FORMAT ": %s", data->job, error->message);
	}
	/* A cancel that came just before the plugin started, and so was lost, is said again
	 * once the send is under way. */
	g_mutex_lock(&queue->lock);
	cancel = queue->stop || queue->cancel_sending;
	g_mutex_unlock(&queue->lock);
	if (cancel)
		queue->plugin->cancel(queue->plugin_self);
}

static gboolean
job_canceled(FaxQueue *queue, gint64 id)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(FaxJob) job = fax_spool_get_job(queue->spool, id, &error);

	if (job == NULL) {
		g_warning("job %" G_GINT64_FORMAT ": %s", id, error->message);
		return FALSE;
	}
	return job->canceled;
}

/* Unix seconds, rounded up, after the back-off for an attempt that was the n-th. */
static gint64
retry_time(FaxQueue *queue, guint attempts, gint64 *delay_ms)
{
	guint doublings = MIN(attempts > 0 ? attempts - 1 : 0, 30);
	gint64 delay = queue->retry_delay_ms;

	for (guint i = 0; i < doublings && delay < RETRY_DELAY_MAX_MS; i++)
		delay *= 2;
	*delay_ms = MIN(delay, RETRY_DELAY_MAX_MS);
	return (g_get_real_time() + *delay_ms * 1000 + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC;
}

typedef struct {
	FaxResultCode code;
	gint64 retry_at; /* 0: final */
	char *log;       /* what happened, for the log line */
} Outcome;

static void
decide_retry(FaxQueue *queue, const FaxDestination *dest, const char *what, Outcome *out)
{
	gint64 delay_ms;

	if (out->code == FAX_RESULT_REFUSED) {
		out->log = g_strdup_printf("%s, not retried", what);
	} else if (dest->attempts < queue->max_tries) {
		g_autofree char *delay = NULL;

		out->retry_at = retry_time(queue, dest->attempts, &delay_ms);
		delay = format_duration(delay_ms);
		out->log = g_strdup_printf("%s, retry in %s (attempt %u/%u)", what, delay,
		                           dest->attempts, queue->max_tries);
	} else {
		out->log = g_strdup_printf("%s, failed after %u attempt%s", what, dest->attempts,
		                           dest->attempts == 1 ? "" : "s");
	}
}

static void
decide(FaxQueue *queue, const FaxJob *job, const FaxDestination *dest, const FaxSendResult *result,
       gboolean canceled, gboolean stopping, Outcome *out)
{
	const char *what = result->text != NULL && *result->text != '\0'
	                           ? result->text
	                           : result_name(result->code);

	out->code = result->code;
	out->retry_at = 0;
	if (result->code == FAX_RESULT_OK) {
		out->log = g_strdup_printf("sent, %u page%s", result->pages_sent,
		                           result->pages_sent == 1 ? "" : "s");
		return;
	}
	if (result->code != FAX_RESULT_REFUSED && (canceled || job_canceled(queue, job->id))) {
		out->code = FAX_RESULT_CANCELED;
		out->log = g_strdup("canceled");
		return;
	}
	if (result->code == FAX_RESULT_CANCELED && stopping) {
		/* queued again at once; the spool does not count the attempt */
		out->retry_at = g_get_real_time() / G_USEC_PER_SEC;
		out->log = g_strdup("interrupted by the queue stopping, queued again");
		return;
	}
	/* a plugin that stops without being asked to has failed, and is retried as such */
	if (result->code == FAX_RESULT_CANCELED)
		out->code = FAX_RESULT_FAILED;
	decide_retry(queue, dest, what, out);
}

static void
record(FaxQueue *queue, const FaxJob *job, const FaxDestination *dest, const FaxSendResult *result,
       gboolean canceled, gboolean stopping)
{
	g_autoptr(GError) error = NULL;
	Outcome out = {0};

	decide(queue, job, dest, result, canceled, stopping, &out);
	g_message("job %" G_GINT64_FORMAT " to %s: %s", job->id, dest->number, out.log);
	g_free(out.log);
	if (!fax_spool_finish(queue->spool, job->id, dest->number, out.code,
	                      result->text != NULL ? result->text : "", result->pages_sent,
	                      out.retry_at, &error))
		g_warning("job %" G_GINT64_FORMAT " to %s: %s", job->id, dest->number,
		          error->message);
}

/* Marks the send as under way; FALSE when the queue is stopping. */
static gboolean
begin_send(FaxQueue *queue, gint64 job)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&queue->lock);

	if (queue->stop)
		return FALSE;
	queue->sending_job = job;
	queue->cancel_sending = FALSE;
	return TRUE;
}

static void
end_send(FaxQueue *queue, gboolean *canceled, gboolean *stopping)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&queue->lock);

	queue->sending_job = 0;
	*canceled = queue->cancel_sending;
	*stopping = queue->stop;
	/* fax_queue_stop() waits for this */
	g_cond_broadcast(&queue->cond);
}

static void
attempt(FaxQueue *queue, const FaxJob *job, guint index)
{
	const FaxDestination *dest = g_ptr_array_index(job->destinations, index);
	FaxSendRequest request = {job->id,    dest->number,      dest->dial, job->tiff,
	                          job->pages, queue->station_id, ""};
	FaxSendResult result = {FAX_RESULT_CANCELED, 0, NULL};
	ProgressData data = {queue, job->id, dest->number};
	gboolean canceled = FALSE;
	gboolean stopping = TRUE;

	/* The job may have been canceled between the claim and begin_send(), when no cancel
	 * could reach the plugin: look again before dialing. */
	if (begin_send(queue, job->id)) {
		if (job_canceled(queue, job->id))
			result.text = g_strdup("canceled");
		else
			queue->plugin->send(queue->plugin_self, &request, on_progress, &data,
			                    &result);
		end_send(queue, &canceled, &stopping);
	}
	record(queue, job, dest, &result, canceled, stopping);
	g_free(result.text);
}

/* Claims and sends the destination due first; FALSE, with *wake_at, when none is due. */
static gboolean
attempt_next(FaxQueue *queue, gint64 *wake_at)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(FaxJob) job = NULL;
	guint index = 0;

	if (!fax_spool_claim(queue->spool, g_get_real_time() / G_USEC_PER_SEC, &job, &index,
	                     wake_at, &error)) {
		if (error != NULL)
			g_warning("fax queue: %s", error->message);
		return FALSE;
	}
	attempt(queue, job, index);
	return TRUE;
}

/* Sleeps until wake_at (unix seconds; 0: nothing queued), a kick, a stop or a
 * notification retry is due, WAKE_MAX_US at most. */
static void
wait_for_work(FaxQueue *queue, gint64 wake_at)
{
	gint64 deadline = g_get_monotonic_time() + WAKE_MAX_US;
	gint64 notify_at = next_notify_retry(queue);

	if (wake_at > 0)
		deadline = MIN(deadline, monotonic_at(wake_at));
	if (notify_at > 0)
		deadline = MIN(deadline, notify_at);
	g_mutex_lock(&queue->lock);
	while (!queue->stop && !queue->kicked) {
		if (!g_cond_wait_until(&queue->cond, &queue->lock, deadline))
			break;
	}
	queue->kicked = FALSE;
	g_mutex_unlock(&queue->lock);
}

static gpointer
run(gpointer user_data)
{
	FaxQueue *queue = user_data;

	while (!is_stopping(queue)) {
		gint64 wake_at = 0;
		gboolean sent = attempt_next(queue, &wake_at);

		if (is_stopping(queue))
			break;
		notify_finished(queue);
		if (!sent)
			wait_for_work(queue, wake_at);
	}
	return NULL;
}

/* ----- the API ----- */

static void
queue_free(FaxQueue *queue)
{
	g_hash_table_unref(queue->notify_retry);
	g_free(queue->station_id);
	g_mutex_clear(&queue->lock);
	g_cond_clear(&queue->cond);
	g_free(queue);
}

FaxQueue *
fax_queue_start(FaxSpool *spool, const FaxPlugin *plugin, gpointer plugin_self,
                const FaxQueueOptions *options, FaxNotifyFunc notify, gpointer notify_data,
                GError **error)
{
	FaxQueue *queue;

	g_return_val_if_fail(spool != NULL && plugin != NULL && options != NULL, NULL);

	if (!fax_spool_requeue_interrupted(spool, error))
		return NULL;
	queue = g_new0(FaxQueue, 1);
	queue->spool = spool;
	queue->plugin = plugin;
	queue->plugin_self = plugin_self;
	queue->max_tries = MAX(options->max_tries, 1);
	queue->retry_delay_ms = MAX(options->retry_delay_ms, 0);
	queue->notify_retry_ms =
	        options->notify_retry_ms > 0 ? options->notify_retry_ms : NOTIFY_RETRY_MS;
	queue->station_id = g_strdup(options->station_id != NULL ? options->station_id : "");
	queue->notify = notify;
	queue->notify_data = notify_data;
	queue->notify_retry = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	g_mutex_init(&queue->lock);
	g_cond_init(&queue->cond);
	queue->thread = g_thread_try_new("fax-queue", run, queue, error);
	if (queue->thread == NULL) {
		queue_free(queue);
		return NULL;
	}
	return queue;
}

void
fax_queue_kick(FaxQueue *queue)
{
	g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&queue->lock);

	queue->kicked = TRUE;
	g_cond_broadcast(&queue->cond);
}

gboolean
fax_queue_cancel(FaxQueue *queue, gint64 job, GError **error)
{
	g_autoptr(GMutexLocker) locker = NULL;

	if (!fax_spool_cancel(queue->spool, job, error))
		return FALSE;
	g_message("job %" G_GINT64_FORMAT ": canceled", job);
	locker = g_mutex_locker_new(&queue->lock);
	if (queue->sending_job == job) {
		queue->cancel_sending = TRUE;
		queue->plugin->cancel(queue->plugin_self);
	}
	/* the job may be final now: its notification is due */
	queue->kicked = TRUE;
	g_cond_broadcast(&queue->cond);
	return TRUE;
}

void
fax_queue_stop(FaxQueue *queue)
{
	if (queue == NULL)
		return;
	g_mutex_lock(&queue->lock);
	queue->stop = TRUE;
	/* said again until the send returns: a cancel just before the plugin started may be
	 * lost, and a stop must not wait for a whole fax */
	while (queue->sending_job != 0) {
		queue->plugin->cancel(queue->plugin_self);
		g_cond_wait_until(&queue->cond, &queue->lock,
		                  g_get_monotonic_time() + STOP_CANCEL_EVERY_US);
	}
	g_cond_broadcast(&queue->cond);
	g_mutex_unlock(&queue->lock);
	g_thread_join(queue->thread);
	queue_free(queue);
}
