/*
 * hk-test-certd: shared scaffolding for integration tests that need a running
 * hanko-certd (the built binary) in a temporary directory, and for running hankoctl and
 * third-party tools (openssl, pk12util) as processes.
 */
#pragma once

#include <glib.h>
#include <signal.h>
#include <string.h>

G_BEGIN_DECLS

#define HK_TEST_CERTD_BIN HK_TEST_BINDIR "/certd/hanko-certd"
#define HK_TEST_CTL_BIN   HK_TEST_BINDIR "/certd/hankoctl"

typedef struct {
	char *dir;    /* temporary directory; removed by stop unless the test failed */
	char *conf;   /* dir/hanko.conf */
	char *socket; /* dir/certd.sock */
	char *state;  /* dir/state: [certd] state_dir */
	char *log;    /* dir/certd.log: the daemon's stderr */
	GPid pid;     /* 0 when not running */
} HkTestCertd;

/*
 * Writes a hanko.conf ([certd] socket, state_dir, no admin/service groups, then the
 * extra lines, which may be NULL) and starts hanko-certd -f -d on it; returns once it
 * answers ping. The daemon dies with the test process (PR_SET_PDEATHSIG).
 */
HkTestCertd *hk_test_certd_start(const char *extra_conf);
/* Starts the daemon again on the same directory (after hk_test_certd_kill). */
void hk_test_certd_restart(HkTestCertd *certd);
/* Sends sig and reaps the daemon; returns its wait status. */
int hk_test_certd_kill(HkTestCertd *certd, int sig);
/* SIGTERM, reap, remove the directory. NULL-safe. */
void hk_test_certd_stop(HkTestCertd *certd);
/* GSpawnChildSetupFunc for daemons a test starts: SIGKILL when the test process (its pid
 * in parent, GINT_TO_POINTER(getpid())) dies, and no start at all if it already has. */
void hk_test_die_with_parent(gpointer parent);
/* Sends sig to *pid (when running), reaps it, clears *pid; returns its wait status. */
int hk_test_kill(GPid *pid, int sig);
/* TRUE inside a test that has failed: its directories stay for a post-mortem. (GLib's
 * g_test_failed() alone says TRUE outside any test once g_test_run() has returned.) */
gboolean hk_test_keep_files(void);
/* rm -rf path. */
void hk_test_remove_tree(const char *path);
/* The daemon's log so far. */
char *hk_test_certd_log(HkTestCertd *certd);

/*
 * Runs "hankoctl -c CONF ARGS..." (NULL-terminated) with stdin_data (may be NULL) on its
 * standard input; returns its exit status (0..255) and its output in *out and *err (may be
 * NULL to discard).
 */
int hk_test_ctl(HkTestCertd *certd, const char *stdin_data, char **out, char **err,
                ...) G_GNUC_NULL_TERMINATED;
/* Same for any program, found in PATH: argv NULL-terminated, argv[0] the program. */
int hk_test_run(const char *stdin_data, char **out, char **err, const char *program,
                ...) G_GNUC_NULL_TERMINATED;
int hk_test_runv(const char *stdin_data, char **out, char **err, const char *const *argv);

/* Runs argv and fails the test (naming what) unless it exits 0. */
void hk_test_run_ok(const char *what, const char *const *argv);

/*
 * A hanko user NAME with address email and a certificate (cert issue), whose key and
 * certificate go to DIR/NAME.pem (PEM, unencrypted). Returns the certificate's fingerprint.
 */
char *hk_test_issue_user(HkTestCertd *certd, const char *dir, const char *name, const char *email);

/* Runs "hankoctl ca init --cn 'hanko Test CA' --key ec:p256" and asserts it worked. */
void hk_test_certd_ca_init(HkTestCertd *certd);

/* Fails the test unless haystack contains needle, showing both. */
#define hk_assert_contains(haystack, needle)                                                       \
	do {                                                                                       \
		const char *h_ = (haystack), *n_ = (needle);                                       \
		if (h_ == NULL || strstr(h_, n_) == NULL)                                          \
			g_error("%s:%d: expected \"%s\" in:\n%s", __FILE__, __LINE__, n_,          \
			        h_ ? h_ : "(null)");                                               \
	} while (0)

G_END_DECLS
