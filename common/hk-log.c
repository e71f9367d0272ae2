/*
 * hk-log: routes GLib's structured log records to the journal, syslog or stderr.
 *
 * Talks to: journald (native protocol, through GLib), syslog(3), stderr.
 * Must never: print a secret. Request parameters are logged only through
 * hk_log_redact_json().
 */
#include "hk-log.h"

#include <errno.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static HkLogTarget log_target = HK_LOG_STDERR;
static gboolean log_debug;

/* A key is secret when it contains one of these ... */
static const char *const secret_key_parts[] = {
        "password", "passwd", "passphrase", "secret", "private", "pem",
        "p12",      "pkcs12", "cookie",     "token",  NULL,
};
/* ... or is one of these (too short to match inside other words: "ping", "keyring"). */
static const char *const secret_keys[] = {"key", "pin", "resp", NULL};

gboolean
hk_log_key_is_secret(const char *key)
{
	g_autofree char *lower = g_ascii_strdown(key, -1);

	for (guint i = 0; secret_key_parts[i] != NULL; i++) {
		if (strstr(lower, secret_key_parts[i]) != NULL)
			return TRUE;
	}
	return g_strv_contains(secret_keys, lower);
}

static json_object *
redact_copy(json_object *obj)
{
	json_object *copy;

	switch (json_object_get_type(obj)) {
	case json_type_object:
		copy = json_object_new_object();
		json_object_object_foreach(obj, key, value)
		{
			json_object_object_add(copy, key,
			                       hk_log_key_is_secret(key)
			                               ? json_object_new_string("***")
			                               : redact_copy(value));
		}
		return copy;
	case json_type_array:
		copy = json_object_new_array();
		for (size_t i = 0; i < json_object_array_length(obj); i++)
			json_object_array_add(copy, redact_copy(json_object_array_get_idx(obj, i)));
		return copy;
	default:
		return json_object_get(obj);
	}
}

char *
hk_log_redact_json(json_object *obj)
{
	json_object *copy = redact_copy(obj);
	char *text = g_strdup(json_object_to_json_string_ext(copy, JSON_C_TO_STRING_PLAIN));

	json_object_put(copy);
	return text;
}

static int
syslog_priority(GLogLevelFlags level)
{
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_FLAG_FATAL))
		return LOG_CRIT;
	if (level & G_LOG_LEVEL_CRITICAL)
		return LOG_ERR;
	if (level & G_LOG_LEVEL_WARNING)
		return LOG_WARNING;
	if (level & G_LOG_LEVEL_MESSAGE)
		return LOG_NOTICE;
	if (level & G_LOG_LEVEL_INFO)
		return LOG_INFO;
	return LOG_DEBUG;
}

static const char *
field_string(const GLogField *fields, gsize n_fields, const char *name)
{
	for (gsize i = 0; i < n_fields; i++) {
		if (g_strcmp0(fields[i].key, name) == 0)
			return fields[i].length < 0 ? fields[i].value : NULL;
	}
	return NULL;
}

static GLogWriterOutput
write_syslog(GLogLevelFlags level, const GLogField *fields, gsize n_fields)
{
	const char *message = field_string(fields, n_fields, "MESSAGE");

	syslog(syslog_priority(level), "%s", message ? message : "(no message)");
	return G_LOG_WRITER_HANDLED;
}

/* Resolved once: GLib 2.74 looks the local zone up again (stat, readlink) on every
 * g_time_zone_new_local(), which the decision log line of every request would pay. */
static GTimeZone *
local_zone(void)
{
	static GTimeZone *zone;

	if (g_once_init_enter(&zone))
		g_once_init_leave(&zone, g_time_zone_new_local());
	return zone;
}

static const char *
level_label(GLogLevelFlags level)
{
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		return "error";
	if (level & G_LOG_LEVEL_WARNING)
		return "warning";
	if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
		return "info";
	return "debug";
}

static char *
put_digits(char *p, guint value, guint width)
{
	for (guint i = width; i > 0; i--) {
		p[i - 1] = (char)('0' + value % 10);
		value /= 10;
	}
	return p + width;
}

/* "HH:MM:SS.mmm " in local time (milliseconds are enough to read), without the
 * allocation and the formatting of a GDateTime. */
static gsize
format_stamp(char stamp[static 16])
{
	GTimeZone *zone = local_zone();
	gint64 now = g_get_real_time();
	gint64 secs = now / G_USEC_PER_SEC;
	gint interval = g_time_zone_find_interval(zone, G_TIME_TYPE_UNIVERSAL, secs);
	gint64 local = secs + (interval >= 0 ? g_time_zone_get_offset(zone, interval) : 0);
	guint of_day = (guint)(((local % 86400) + 86400) % 86400);
	char *p = stamp;

	p = put_digits(p, of_day / 3600, 2);
	*p++ = ':';
	p = put_digits(p, of_day / 60 % 60, 2);
	*p++ = ':';
	p = put_digits(p, of_day % 60, 2);
	*p++ = '.';
	p = put_digits(p, (guint)(now % G_USEC_PER_SEC / 1000), 3);
	*p++ = ' ';
	*p = '\0';
	return (gsize)(p - stamp);
}

/*
 * stderr lines read "<stamp> <prgname>[<domain>] <label>: <message>". Lines logged while the main
 * loop dispatches go out together just before it waits again: one write per loop iteration instead
 * of one per line (a busy policyd logs a line per request). Only the thread running the default
 * main context batches; warnings, other threads and lines logged outside a running loop are written
 * at once, after whatever is pending, so the order of lines always holds.
 */
#define PENDING_MAX (64 * 1024)

static GMutex pending_lock;
static GString *pending;
static GSource *flusher;

static void
write_all(const char *data, gsize len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nowhere left to report it */
		data += n;
		len -= (gsize)n;
	}
}

static void
flush_locked(void)
{
	if (pending == NULL || pending->len == 0)
		return;
	write_all(pending->str, pending->len);
	g_string_truncate(pending, 0);
}

void
hk_log_flush(void)
{
	g_mutex_lock(&pending_lock);
	flush_locked();
	g_mutex_unlock(&pending_lock);
}

static gboolean
flusher_prepare(GSource *source, gint *timeout)
{
	*timeout = -1;
	hk_log_flush();
	return FALSE;
}

static gboolean
flusher_dispatch(GSource *source, GSourceFunc callback, gpointer data)
{
	return G_SOURCE_CONTINUE; /* never ready: it only flushes in prepare */
}

static GSourceFuncs flusher_funcs = {
        .prepare = flusher_prepare,
        .dispatch = flusher_dispatch,
};

static void
start_batching(void)
{
	if (flusher != NULL)
		return;
	pending = g_string_sized_new(4096);
	flusher = g_source_new(&flusher_funcs, sizeof(GSource));
	/* the highest priority: GLib skips preparing lower ones once a higher one is ready */
	g_source_set_priority(flusher, G_MININT);
	g_source_set_name(flusher, "hk-log flusher");
	g_source_attach(flusher, NULL);
}

static gboolean
may_batch(GLogLevelFlags level)
{
	return flusher != NULL &&
	       !(level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING |
	                  G_LOG_FLAG_FATAL)) &&
	       g_main_context_is_owner(g_main_context_default());
}

/* One line appended to the pending text, written now or at the end of the iteration. */
static GLogWriterOutput
write_stderr(GLogLevelFlags level, const GLogField *fields, gsize n_fields)
{
	const char *message = field_string(fields, n_fields, "MESSAGE");
	const char *domain = field_string(fields, n_fields, "GLIB_DOMAIN");
	const char *prgname = g_get_prgname();
	char stamp[16];
	gsize stamp_len = format_stamp(stamp);

	g_mutex_lock(&pending_lock);
	if (pending == NULL)
		pending = g_string_sized_new(4096);
	g_string_append_len(pending, stamp, (gssize)stamp_len);
	g_string_append(pending, prgname ? prgname : "hanko");
	g_string_append_c(pending, '[');
	g_string_append(pending, domain ? domain : "hanko");
	g_string_append(pending, "] ");
	g_string_append(pending, level_label(level));
	g_string_append(pending, ": ");
	g_string_append(pending, message ? message : "");
	g_string_append_c(pending, '\n');
	if (!may_batch(level) || pending->len > PENDING_MAX)
		flush_locked();
	g_mutex_unlock(&pending_lock);
	return G_LOG_WRITER_HANDLED;
}

static GLogWriterOutput
hk_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
	if ((level & G_LOG_LEVEL_DEBUG) && !log_debug)
		return G_LOG_WRITER_HANDLED;
	switch (log_target) {
	case HK_LOG_JOURNAL:
		if (g_log_writer_journald(level, fields, n_fields, data) == G_LOG_WRITER_HANDLED)
			return G_LOG_WRITER_HANDLED;
		return write_syslog(level, fields, n_fields);
	case HK_LOG_SYSLOG:
		return write_syslog(level, fields, n_fields);
	case HK_LOG_STDERR:
	default:
		return write_stderr(level, fields, n_fields);
	}
}

void
hk_log_text(const char *domain, GLogLevelFlags level, const char *message)
{
	/* what g_log() passes its writer: the journal needs PRIORITY */
	static const char *const priorities[] = {"0", "1", "2", "3", "4", "5", "6", "7"};
	const GLogField fields[] = {
	        {"GLIB_DOMAIN", domain, -1},
	        {"MESSAGE", message, -1},
	        {"PRIORITY", priorities[syslog_priority(level) & 7], -1},
	};

	g_log_structured_array(level, fields, G_N_ELEMENTS(fields));
}

HkLogTarget
hk_log_init(const char *ident, gboolean foreground)
{
	g_set_prgname(ident);
	local_zone();
	if (foreground) {
		log_target = HK_LOG_STDERR;
		start_batching();
	} else if (g_log_writer_is_journald(STDERR_FILENO))
		log_target = HK_LOG_JOURNAL;
	else
		log_target = HK_LOG_SYSLOG;
	if (log_target == HK_LOG_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	g_log_set_writer_func(hk_log_writer, NULL, NULL);
	return log_target;
}

void
hk_log_set_debug(gboolean debug)
{
	log_debug = debug;
}

gboolean
hk_log_get_debug(void)
{
	return log_debug;
}
