/*
 * hk-test-postfix: a private Postfix instance for integration tests: its own config and
 * queue directories under a temporary directory, listening on free loopback ports. The
 * master daemon runs in the foreground as the test's child ("master -s -c DIR", what
 * "postfix -c DIR start-fg" runs), logging to stdout (maillog_file = /dev/stdout) which
 * goes to DIR/maillog, and dies with the test. "postfix -c DIR start" would need
 * DIR in /etc/postfix/main.cf's alternate_config_directories and maillog_file_prefixes;
 * this way the system's Postfix files are never touched (they need not even exist).
 * Needs root (Postfix's master) and the Debian packages postfix and openssl.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
	char *dir;           /* temporary directory; removed by stop unless the test failed */
	char *config_dir;    /* dir/etc: main.cf, master.cf, certificates */
	char *queue_dir;     /* dir/spool */
	char *maillog;       /* dir/maillog (maillog_file) */
	int smtp_port;       /* smtpd, plain with STARTTLS offered */
	int submission_port; /* smtpd, STARTTLS required, SASL */
	int smtps_port;      /* smtpd, implicit TLS (smtpd_tls_wrappermode), SASL */
} HkTestPostfix;

/*
 * Writes main.cf (myhostname localhost, mydestination localhost, relay nowhere,
 * a server certificate made with the openssl CLI, smtpd_tls_security_level = may,
 * smtpd_tls_ask_ccert = yes, the given extra lines appended) and master.cf (the three
 * smtpd services above, with -o overrides appended from master_extra per service when
 * given as "smtp|submission|smtps: -o key=value" lines), and starts Postfix. Returns once
 * the smtp port answers with a 220 greeting.
 */
HkTestPostfix *hk_test_postfix_start(const char *main_extra, const char *master_extra);
void hk_test_postfix_stop(HkTestPostfix *postfix);
/* The maillog so far. */
char *hk_test_postfix_log(HkTestPostfix *postfix);

G_END_DECLS
