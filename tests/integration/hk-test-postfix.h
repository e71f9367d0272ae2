/*
 * hk-test-postfix: a private Postfix instance for integration tests: its own config and
 * queue directories under a temporary directory, listening on free loopback ports, started
 * with "postfix -c DIR start" and stopped with "postfix -c DIR stop". The Debian package's
 * /etc/postfix/main.cf must list the directory in alternate_config_directories (and
 * maillog_file_prefixes): the harness adds that line itself when it is missing.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
	char *dir;        /* temporary directory; removed by stop unless the test failed */
	char *config_dir; /* dir/etc: main.cf, master.cf, certificates */
	char *queue_dir;  /* dir/spool */
	char *maillog;    /* dir/maillog (maillog_file) */
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
