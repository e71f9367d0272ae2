/*
 * hk-log: where log lines go.
 *
 * GLib structured logging, sent to the journal when the daemon runs under systemd
 * (JOURNAL_STREAM names our stderr), to syslog(3) otherwise, to stderr in the
 * foreground. Every module sets its own G_LOG_DOMAIN. g_debug is for developers,
 * g_info/g_message for operators, g_warning for trouble; never g_error in a request path.
 *
 * Secrets never reach a log line: whatever logs a request goes through
 * hk_log_redact_json(), which masks the values of secret-looking keys.
 */
#pragma once

#include <glib.h>
#include <json-c/json.h>

G_BEGIN_DECLS

typedef enum {
	HK_LOG_STDERR,
	HK_LOG_SYSLOG,
	HK_LOG_JOURNAL,
} HkLogTarget;

/* ident: "hanko-certd"; foreground forces stderr. Returns the target chosen. */
HkLogTarget hk_log_init(const char *ident, gboolean foreground);
void hk_log_set_debug(gboolean debug);
/*
 * Logs a message that is already text, as g_log(domain, level, "%s", message) would,
 * but straight to the structured writer (hanko's, after hk_log_init()), without GLib's
 * formatting pass and handler lookup: for a line per request.
 */
void hk_log_text(const char *domain, GLogLevelFlags level, const char *message);
/* Writes out stderr lines batched during the current main loop iteration. */
void hk_log_flush(void);
gboolean hk_log_get_debug(void);

/* TRUE for key names that hold secrets: password, passphrase, secret, private_key, p12, ... */
gboolean hk_log_key_is_secret(const char *key);
/* A compact JSON text of obj with every secret value (at any depth) replaced by "***". */
char *hk_log_redact_json(json_object *obj);

G_END_DECLS
