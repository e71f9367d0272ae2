/*
 * hk-log: routes GLib's structured log records to the journal, syslog or stderr.
 *
 * Talks to: journald (native protocol, through GLib), syslog(3), stderr.
 * Must never: print a secret. Request parameters are logged only through
 * hk_log_redact_json().
 */
#include "hk-log.h"

#include <stdio.h>
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

static GLogWriterOutput
write_stderr(GLogLevelFlags level, const GLogField *fields, gsize n_fields)
{
	const char *message = field_string(fields, n_fields, "MESSAGE");
	const char *domain = field_string(fields, n_fields, "GLIB_DOMAIN");
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	g_autofree char *stamp = g_date_time_format(now, "%H:%M:%S.%f");
	const char *label = "debug";

	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		label = "error";
	else if (level & G_LOG_LEVEL_WARNING)
		label = "warning";
	else if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
		label = "info";
	/* stamp has microseconds; milliseconds are enough to read */
	if (strlen(stamp) > 12)
		stamp[12] = '\0';
	fprintf(stderr, "%s %s[%s] %s: %s\n", stamp, g_get_prgname() ? g_get_prgname() : "hanko",
	        domain ? domain : "hanko", label, message ? message : "");
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

HkLogTarget
hk_log_init(const char *ident, gboolean foreground)
{
	g_set_prgname(ident);
	if (foreground)
		log_target = HK_LOG_STDERR;
	else if (g_log_writer_is_journald(STDERR_FILENO))
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
