/*
 * fax-queue: the queue runner. One thread takes the due destination from the spool, hands
 * it to the backend plugin, records the result, and queues it again with a back-off when
 * the line was busy, nobody answered or the call failed (up to max_tries). When every
 * destination of a job is final, notify() is called for it (in the runner's thread); a
 * notification that fails is tried again on the next wake-up.
 *
 * Restart-safe: at start, destinations left "sending" by a crash are queued again, and
 * final jobs not yet notified are notified.
 */
#pragma once

#include "fax-plugin.h"
#include "fax-spool.h"

G_BEGIN_DECLS

typedef struct {
	guint max_tries;       /* attempts per destination, first included: 3 */
	gint64 retry_delay_ms; /* before the 2nd attempt; doubled for each further one */
	const char *station_id;
	gint64 notify_retry_ms; /* a failed notification is tried again after this; 0: 30 s */
} FaxQueueOptions;

/* TRUE when the result mail went out (or need not); FALSE: try again later. */
typedef gboolean (*FaxNotifyFunc)(const FaxJob *job, gpointer user_data);

typedef struct _FaxQueue FaxQueue;

/* Starts the runner thread. plugin_self is the plugin's open() result, owned by the caller. */
FaxQueue *fax_queue_start(FaxSpool *spool, const FaxPlugin *plugin, gpointer plugin_self,
                          const FaxQueueOptions *options, FaxNotifyFunc notify,
                          gpointer notify_data, GError **error);
/* Wakes the runner: a new job, a resend. Thread-safe. */
void fax_queue_kick(FaxQueue *queue);
/* Cancels a job: queued destinations at once, a sending one through the plugin. */
gboolean fax_queue_cancel(FaxQueue *queue, gint64 job, GError **error);
/* Stops the runner (a send in progress is cancelled and queued again) and joins it. */
void fax_queue_stop(FaxQueue *queue);

G_END_DECLS
