/*
 * policyd-cache: certd's cert.lookup answers, kept in process.
 *
 * Found certificates are kept for cache_ttl, unknown fingerprints for negative_cache_ttl,
 * at most cache_size entries (the oldest go first). Entries are trusted only while the
 * events.watch stream to certd is up: any certificate, user or CA event empties the cache,
 * and so does losing the stream (events may have been missed). Concurrent lookups of one
 * fingerprint share one certd call; none waits longer than certd_timeout.
 */
#pragma once

#include <glib.h>

#include "hk-config.h"
#include "hk-ipc.h"
#include "policyd-engine.h"

G_BEGIN_DECLS

typedef struct _PolicydCache PolicydCache;

/* lookup: transfer none, valid during the call. */
typedef void (*PolicydLookupFunc)(const PolicydLookup *lookup, gpointer user_data);

/* Takes over certd's event function; certd must outlive the cache. */
PolicydCache *policyd_cache_new(HkIpcAsync *certd, HkConfig *config);
void policyd_cache_free(PolicydCache *cache);
/* TTLs, size and timeout from a new configuration. */
void policyd_cache_configure(PolicydCache *cache, HkConfig *config);

/* A fresh entry (transfer none, valid until the main loop runs again) or NULL. */
const PolicydLookup *
policyd_cache_get(PolicydCache *cache, const char *fingerprint, gboolean pubkey);
/* Asks certd (joining a call in flight for the same key); func runs later, from the main
 * loop, exactly once. */
void policyd_cache_fetch(PolicydCache *cache, const char *fingerprint, gboolean pubkey,
                         PolicydLookupFunc func, gpointer user_data);

/* Empties the cache. */
void policyd_cache_clear(PolicydCache *cache);
guint policyd_cache_size(PolicydCache *cache);

G_END_DECLS
