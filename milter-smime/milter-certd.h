/*
 * milter-certd: hanko-milter's synchronous calls to hanko-certd from libmilter's
 * connection threads. A small pool of connections, each used by one thread at a time;
 * a broken one is dropped and replaced on the next call.
 *
 * An outage is logged once when it begins and once when certd answers again, not per
 * message.
 *
 * Talks to: hanko-certd (cert.lookup, user.lookup).
 * Must never: block a thread longer than the configured timeout per call, or log a
 * message per failed call during an outage.
 */
#pragma once

#include <glib.h>
#include <json.h>

G_BEGIN_DECLS

typedef struct _MilterCertd MilterCertd;

MilterCertd *milter_certd_new(const char *socket, guint timeout_ms);
void milter_certd_free(MilterCertd *certd);

/*
 * Calls op. NULL with an HK_IPC_ERROR when certd answered with an error (not_found ...);
 * NULL with *unavailable set when it could not be reached or did not answer in time.
 * Thread-safe.
 */
json_object *milter_certd_call(MilterCertd *certd, const char *op, json_object *params,
                               gboolean *unavailable, GError **error);

/* Notes an outage seen by someone else (the event stream), or its end. Thread-safe. */
void milter_certd_note(MilterCertd *certd, gboolean up, const char *why);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MilterCertd, milter_certd_free)

G_END_DECLS
