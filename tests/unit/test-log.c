/* test-log: log routing and the redaction that keeps secrets out of log lines. */
#include "hk-json.h"
#include "hk-log.h"

#include <string.h>

static void
test_secret_keys(void)
{
	static const struct {
		const char *key;
		gboolean secret;
	} cases[] = {
	        {"password", TRUE},     {"new_password", TRUE}, {"Passphrase", TRUE},
	        {"fax_password", TRUE}, {"p12", TRUE},          {"p12_password", TRUE},
	        {"private_key", TRUE},  {"key", TRUE},          {"key_pem", TRUE},
	        {"pin", TRUE},          {"resp", TRUE},         {"secret", TRUE},
	        {"ping", FALSE},        {"keyring", FALSE},     {"user", FALSE},
	        {"fingerprint", FALSE}, {"email", FALSE},       {"op", FALSE},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_test_message("%s", cases[i].key);
		g_assert_cmpint(hk_log_key_is_secret(cases[i].key), ==, cases[i].secret);
	}
}

static void
test_redact(void)
{
	g_autoptr(json_object) obj = json_tokener_parse(
	        "{\"user\":\"sindbad\",\"password\":\"Open-Sesame-1\","
	        "\"nested\":{\"p12_password\":\"AAAbbbCCC\",\"list\":[{\"key\":\"-----BEGIN\"}]},"
	        "\"count\":3}");
	g_autofree char *text = hk_log_redact_json(obj);

	g_assert_nonnull(strstr(text, "\"user\":\"sindbad\""));
	g_assert_nonnull(strstr(text, "\"count\":3"));
	g_assert_null(strstr(text, "Open-Sesame-1"));
	g_assert_null(strstr(text, "AAAbbbCCC"));
	g_assert_null(strstr(text, "-----BEGIN"));
	g_assert_nonnull(strstr(text, "\"password\":\"***\""));
	/* the original is left alone */
	g_assert_cmpstr(hk_json_get_string(obj, "password"), ==, "Open-Sesame-1");
}

static void
test_stderr_target(void)
{
	if (!g_test_subprocess()) {
		g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
		g_test_trap_assert_passed();
		g_test_trap_assert_stderr("*hanko-test[test-log] info: operator message 42*");
		g_test_trap_assert_stderr("*visible debug line*");
		g_test_trap_assert_stderr_unmatched("*hidden debug line*");
		/* hk_log_text(): the same line as g_log() with "%s", no formatting of its own */
		g_test_trap_assert_stderr("*hanko-test[other] info: text 100% as is\n*");
		g_test_trap_assert_stderr("*hanko-test[other] warning: a warning line\n*");
		g_test_trap_assert_stderr_unmatched("*hidden text line*");
		g_test_trap_assert_stderr("*hanko-test[other] debug: visible text line*");
		return;
	}
	g_assert_cmpint(hk_log_init("hanko-test", TRUE), ==, HK_LOG_STDERR);
	g_message("operator message %d", 42);
	g_debug("hidden debug line");
	hk_log_text("other", G_LOG_LEVEL_MESSAGE, "text 100% as is");
	hk_log_text("other", G_LOG_LEVEL_WARNING, "a warning line");
	hk_log_text("other", G_LOG_LEVEL_DEBUG, "hidden text line");
	hk_log_set_debug(TRUE);
	g_debug("visible debug line");
	hk_log_text("other", G_LOG_LEVEL_DEBUG, "visible text line");
}

static gboolean
log_burst(gpointer loop)
{
	for (int i = 1; i <= 3; i++)
		g_message("batched line %d", i);
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

static gboolean
log_more(gpointer data)
{
	g_message("next iteration");
	return G_SOURCE_REMOVE;
}

/* Lines logged inside the main loop are written together; none is lost or reordered,
 * including those still pending when the loop ends. */
static void
test_stderr_batching(void)
{
	g_autoptr(GMainLoop) loop = NULL;

	if (!g_test_subprocess()) {
		g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
		g_test_trap_assert_passed();
		g_test_trap_assert_stderr("*before the loop*next iteration*batched line 1*"
		                          "batched line 2*batched line 3*after the loop*");
		return;
	}
	hk_log_init("hanko-test", TRUE);
	g_message("before the loop");
	loop = g_main_loop_new(NULL, FALSE);
	g_idle_add_full(G_PRIORITY_HIGH, log_more, NULL, NULL);
	g_idle_add(log_burst, loop);
	g_main_loop_run(loop);
	g_message("after the loop"); /* outside the loop: written at once, after the rest */
	hk_log_flush();
}

static void
test_syslog_target(void)
{
	if (!g_test_subprocess()) {
		g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
		g_test_trap_assert_passed();
		g_test_trap_assert_stderr_unmatched("*this goes to syslog*");
		return;
	}
	/* stderr is a pipe to the test, not the journal: a daemon falls back to syslog */
	g_unsetenv("JOURNAL_STREAM");
	g_assert_cmpint(hk_log_init("hanko-test", FALSE), ==, HK_LOG_SYSLOG);
	g_message("this goes to syslog");
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/log/secret-keys", test_secret_keys);
	g_test_add_func("/log/redact", test_redact);
	g_test_add_func("/log/stderr", test_stderr_target);
	g_test_add_func("/log/stderr-batching", test_stderr_batching);
	g_test_add_func("/log/syslog", test_syslog_target);
	return g_test_run();
}
