/*
 * policyd-cache: cert.lookup results from hanko-certd, cached, shared and invalidated.
 *
 * Talks to: hanko-certd through the daemon's one HkIpcAsync (cert.lookup, events.watch).
 * Must never: serve an entry while the events.watch stream is down (a revocation could
 * have been missed), make a request wait longer than certd_timeout, or log more than
 * one line per certd outage.
 */
#include "policyd-cache.h"
#include "policyd.h"
#include "hk-certd-proto.h"

#include <string.h>

#define CHECK_MS     1000 /* how often the stream is checked while up */
#define MAX_RETRY_MS 5000 /* reconnect backoff: 1 s, 2 s, 4 s, 5 s, 5 s ... */

/* Outlives the cache for calls still in flight when it is freed. */
typedef struct {
	gint refs;
	PolicydCache *cache; /* NULL once freed */
} CacheAlive;

typedef struct {
	char *key;
	PolicydLookup *lookup;
	gint64 expires; /* monotonic, us */
	GList link;     /* in cache->order; data points to this entry */
} Entry;

typedef struct {
	PolicydLookupFunc func;
	gpointer data;
} Waiter;

typedef struct {
	CacheAlive *alive;
	char *key;
	guint64 generation;
	GArray *waiters; /* Waiter */
} Pending;

struct _PolicydCache {
	HkIpcAsync *certd;
	CacheAlive *alive;
	gint64 ttl_us, negative_ttl_us;
	guint max_size;
	guint timeout_ms;
	GHashTable *entries; /* key -> Entry* */
	GQueue order;        /* Entry links, oldest first */
	GHashTable *pending; /* key -> Pending* */
	guint64 generation;  /* bumped by every invalidation */
	gboolean watching;   /* events.watch accepted on the current connection */
	gboolean watch_in_flight;
	gboolean down; /* an outage was logged */
	guint check_source;
	guint retry_ms;
};

static CacheAlive *
alive_ref(CacheAlive *alive)
{
	alive->refs++;
	return alive;
}

static void
alive_unref(CacheAlive *alive)
{
	if (--alive->refs == 0)
		g_free(alive);
}

static void
entry_free(Entry *entry)
{
	g_free(entry->key);
	policyd_lookup_unref(entry->lookup);
	g_free(entry);
}

static char *
cache_key(const char *fingerprint, gboolean pubkey)
{
	return g_strconcat(pubkey ? "p:" : "c:", fingerprint, NULL);
}

static void
remove_entry(PolicydCache *cache, Entry *entry)
{
	g_queue_unlink(&cache->order, &entry->link);
	g_hash_table_remove(cache->entries, entry->key); /* frees it */
}

void
policyd_cache_clear(PolicydCache *cache)
{
	cache->generation++;
	g_queue_init(&cache->order);
	g_hash_table_remove_all(cache->entries);
}

guint
policyd_cache_size(PolicydCache *cache)
{
	return g_hash_table_size(cache->entries);
}

static void
insert(PolicydCache *cache, const char *key, PolicydLookup *lookup)
{
	gint64 ttl =
	        lookup->status == POLICYD_LOOKUP_FOUND ? cache->ttl_us : cache->negative_ttl_us;
	Entry *old = g_hash_table_lookup(cache->entries, key);
	Entry *entry;

	if (old != NULL)
		remove_entry(cache, old);
	if (ttl <= 0 || cache->max_size == 0)
		return;
	while (g_hash_table_size(cache->entries) >= cache->max_size)
		remove_entry(cache, cache->order.head->data);
	entry = g_new0(Entry, 1);
	entry->key = g_strdup(key);
	entry->lookup = policyd_lookup_ref(lookup);
	entry->expires = g_get_monotonic_time() + ttl;
	entry->link.data = entry;
	g_queue_push_tail_link(&cache->order, &entry->link);
	g_hash_table_insert(cache->entries, entry->key, entry);
}

/* ----- certd's health ----- */

static void
note_down(PolicydCache *cache, const char *why)
{
	if (cache->down)
		return;
	cache->down = TRUE;
	g_warning("certd unavailable: %s", why);
}

static void
note_up(PolicydCache *cache)
{
	if (!cache->down)
		return;
	cache->down = FALSE;
	g_message("certd back");
}

/* Losing the stream may have lost events: nothing cached can be trusted any more. */
static void
check_connection(PolicydCache *cache)
{
	if (!cache->watching || hk_ipc_async_is_connected(cache->certd))
		return;
	cache->watching = FALSE;
	policyd_cache_clear(cache);
	note_down(cache, "connection to certd lost");
}

static void on_watch_reply(json_object *result, const GError *error, gpointer data);

static void
start_watch(PolicydCache *cache)
{
	if (cache->watching || cache->watch_in_flight)
		return;
	cache->watch_in_flight = TRUE;
	hk_ipc_async_call(cache->certd, HK_CERTD_OP_EVENTS_WATCH, NULL, cache->timeout_ms,
	                  on_watch_reply, alive_ref(cache->alive));
}

static gboolean on_check(gpointer data);

static void
schedule_check(PolicydCache *cache)
{
	guint ms = CHECK_MS;

	if (!cache->watching) {
		cache->retry_ms =
		        cache->retry_ms ? MIN(cache->retry_ms * 2, MAX_RETRY_MS) : CHECK_MS;
		ms = cache->retry_ms;
	}
	g_clear_handle_id(&cache->check_source, g_source_remove);
	cache->check_source = g_timeout_add(ms, on_check, cache);
}

static gboolean
on_check(gpointer data)
{
	PolicydCache *cache = data;

	cache->check_source = 0;
	check_connection(cache);
	start_watch(cache);
	schedule_check(cache);
	return G_SOURCE_REMOVE;
}

static void
on_watch_reply(json_object *result, const GError *error, gpointer data)
{
	CacheAlive *alive = data;
	PolicydCache *cache = alive->cache;

	alive_unref(alive);
	if (cache == NULL)
		return;
	cache->watch_in_flight = FALSE;
	if (error != NULL) {
		note_down(cache, error->message);
		return;
	}
	/* entries from before this stream began may predate events we never saw */
	policyd_cache_clear(cache);
	cache->watching = TRUE;
	cache->retry_ms = 0;
	note_up(cache);
}

static void
on_event(const char *event, json_object *data, gpointer user_data)
{
	PolicydCache *cache = user_data;
	static const char *const invalidating[] = {
	        HK_CERTD_EV_CERT_REVOKED, HK_CERTD_EV_CERT_CHANGED, HK_CERTD_EV_CERT_ISSUED,
	        HK_CERTD_EV_USER_CHANGED, HK_CERTD_EV_CA_CHANGED,   NULL,
	};

	if (!g_strv_contains(invalidating, event))
		return;
	g_debug("certd event %s: cache of %u entries emptied", event,
	        g_hash_table_size(cache->entries));
	policyd_cache_clear(cache);
}

/* ----- lookups ----- */

const PolicydLookup *
policyd_cache_get(PolicydCache *cache, const char *fingerprint, gboolean pubkey)
{
	char key[160];
	gsize len = strlen(fingerprint);
	Entry *entry;

	check_connection(cache);
	if (!cache->watching || len > sizeof(key) - 3)
		return NULL; /* longer than any canonical fingerprint: never stored */
	/* the key of cache_key(), on the stack: a hit allocates nothing */
	memcpy(key, pubkey ? "p:" : "c:", 2);
	memcpy(key + 2, fingerprint, len + 1);
	entry = g_hash_table_lookup(cache->entries, key);
	if (entry == NULL)
		return NULL;
	if (entry->expires <= g_get_monotonic_time()) {
		remove_entry(cache, entry);
		return NULL;
	}
	return entry->lookup;
}

static PolicydLookup *
lookup_from_reply(PolicydCache *cache, json_object *result, const GError *error)
{
	g_autoptr(GError) local = NULL;
	PolicydLookup *lookup;

	if (error != NULL && g_error_matches(error, HK_IPC_ERROR, HK_IPC_ERROR_NOT_FOUND))
		return policyd_lookup_new(POLICYD_LOOKUP_NOT_FOUND);
	if (error != NULL) {
		if (cache != NULL)
			note_down(cache, error->message);
		return policyd_lookup_new(POLICYD_LOOKUP_UNAVAILABLE);
	}
	lookup = policyd_lookup_from_json(result, &local);
	if (lookup == NULL) {
		g_warning("certd: %s", local->message);
		return policyd_lookup_new(POLICYD_LOOKUP_UNAVAILABLE);
	}
	return lookup;
}

static void
pending_free(Pending *pending)
{
	alive_unref(pending->alive);
	g_free(pending->key);
	g_array_free(pending->waiters, TRUE);
	g_free(pending);
}

static void
pending_answer(Pending *pending, const PolicydLookup *lookup)
{
	for (guint i = 0; i < pending->waiters->len; i++) {
		Waiter *w = &g_array_index(pending->waiters, Waiter, i);

		w->func(lookup, w->data);
	}
	g_array_set_size(pending->waiters, 0);
}

static void
on_lookup_reply(json_object *result, const GError *error, gpointer data)
{
	Pending *pending = data;
	PolicydCache *cache = pending->alive->cache;
	g_autoptr(PolicydLookup) lookup = lookup_from_reply(cache, result, error);

	if (cache != NULL) {
		g_hash_table_steal(cache->pending, pending->key);
		if (lookup->status != POLICYD_LOOKUP_UNAVAILABLE)
			note_up(cache);
		if (lookup->status != POLICYD_LOOKUP_UNAVAILABLE && cache->watching &&
		    pending->generation == cache->generation)
			insert(cache, pending->key, lookup);
	}
	pending_answer(pending, lookup);
	pending_free(pending);
}

void
policyd_cache_fetch(PolicydCache *cache, const char *fingerprint, gboolean pubkey,
                    PolicydLookupFunc func, gpointer user_data)
{
	g_autofree char *key = cache_key(fingerprint, pubkey);
	Pending *pending = g_hash_table_lookup(cache->pending, key);
	Waiter waiter = {func, user_data};
	g_autoptr(json_object) params = NULL;

	if (pending != NULL) {
		g_array_append_val(pending->waiters, waiter);
		return;
	}
	check_connection(cache);
	start_watch(cache); /* pipelined before the lookup on the same connection */
	pending = g_new0(Pending, 1);
	pending->alive = alive_ref(cache->alive);
	pending->key = g_steal_pointer(&key);
	pending->generation = cache->generation;
	pending->waiters = g_array_new(FALSE, FALSE, sizeof(Waiter));
	g_array_append_val(pending->waiters, waiter);
	g_hash_table_insert(cache->pending, pending->key, pending);
	params = json_object_new_object();
	json_object_object_add(params, pubkey ? HK_CERTD_KEY_PUBKEY_FP : HK_CERTD_KEY_FINGERPRINT,
	                       json_object_new_string(fingerprint));
	hk_ipc_async_call(cache->certd, HK_CERTD_OP_CERT_LOOKUP, params, cache->timeout_ms,
	                  on_lookup_reply, pending);
}

/* ----- life cycle ----- */

void
policyd_cache_configure(PolicydCache *cache, HkConfig *config)
{
	cache->ttl_us =
	        hk_config_get_duration_ms(config, POLICYD_SECTION, POLICYD_CONF_CACHE_TTL) * 1000;
	cache->negative_ttl_us = hk_config_get_duration_ms(config, POLICYD_SECTION,
	                                                   POLICYD_CONF_NEGATIVE_CACHE_TTL) *
	                         1000;
	cache->max_size =
	        (guint)hk_config_get_int(config, POLICYD_SECTION, POLICYD_CONF_CACHE_SIZE);
	cache->timeout_ms = (guint)hk_config_get_duration_ms(config, POLICYD_SECTION,
	                                                     POLICYD_CONF_CERTD_TIMEOUT);
	policyd_cache_clear(cache); /* entries were made under the old TTLs */
}

PolicydCache *
policyd_cache_new(HkIpcAsync *certd, HkConfig *config)
{
	PolicydCache *cache = g_new0(PolicydCache, 1);

	cache->certd = certd;
	cache->alive = g_new0(CacheAlive, 1);
	cache->alive->refs = 1;
	cache->alive->cache = cache;
	cache->entries =
	        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)entry_free);
	cache->pending = g_hash_table_new(g_str_hash, g_str_equal);
	g_queue_init(&cache->order);
	policyd_cache_configure(cache, config);
	hk_ipc_async_set_event_func(certd, on_event, cache);
	start_watch(cache);
	schedule_check(cache);
	return cache;
}

void
policyd_cache_free(PolicydCache *cache)
{
	g_autoptr(PolicydLookup) gone = NULL;
	GList *pendings;

	if (cache == NULL)
		return;
	gone = policyd_lookup_new(POLICYD_LOOKUP_UNAVAILABLE);
	hk_ipc_async_set_event_func(cache->certd, NULL, NULL);
	g_clear_handle_id(&cache->check_source, g_source_remove);
	/* calls in flight end later, in certd's client: they must not find the cache */
	cache->alive->cache = NULL;
	pendings = g_hash_table_get_values(cache->pending);
	g_hash_table_steal_all(cache->pending);
	for (GList *l = pendings; l != NULL; l = l->next)
		pending_answer(l->data, gone);
	g_list_free(pendings);
	g_hash_table_destroy(cache->pending);
	policyd_cache_clear(cache);
	g_hash_table_destroy(cache->entries);
	alive_unref(cache->alive);
	g_free(cache);
}
