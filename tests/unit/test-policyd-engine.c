/*
 * test-policyd-engine: every outcome of the policy decision, as a table of request +
 * certd's answer + configuration -> outcome + action.
 *
 * Talks to: policyd-engine.c (and the [policyd] key table). Must never: need certd.
 */
#include "policyd-engine.h"
#include "policyd.h"
#include "hk-json.h"

#include <string.h>

#define FP                                                                                         \
	"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:"  \
	"45:67:89"
#define FP_LOWER_NO_COLONS "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
#define FP_MD5             "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
#define NOW                ((gint64)1800000000) /* 2027-01-15 */

typedef enum {
	LOOKUP_NONE, /* not asked */
	LOOKUP_VALID,
	LOOKUP_REVOKED,
	LOOKUP_EXPIRED,
	LOOKUP_PAST_NOT_AFTER, /* status valid, but not_after has passed */
	LOOKUP_REQUESTED,      /* a certificate that is not a user's client certificate */
	LOOKUP_NOT_FOUND,
	LOOKUP_UNAVAILABLE,
} LookupKind;

typedef struct {
	const char *name;
	const char *conf; /* extra [policyd] lines */
	const char *state, *fp, *pubkey_fp, *sender, *tls;
	LookupKind lookup;
	PolicydOutcome outcome;
	const char *action;
} Case;

static const Case decision_cases[] = {
        {"valid", "", "RCPT", FP, NULL, "alice@example.org", "TLSv1.3", LOOKUP_VALID,
         POLICYD_OUTCOME_VALID, "OK"},
        {"valid, second address, other case", "", "rcpt", FP, NULL, "Alice.Smith@EXAMPLE.org",
         "TLSv1.2", LOOKUP_VALID, POLICYD_OUTCOME_VALID, "OK"},
        {"valid by public key", "", "RCPT", NULL, FP, "alice@example.org", "TLSv1.3", LOOKUP_VALID,
         POLICYD_OUTCOME_VALID, "OK"},
        {"fingerprint as people paste it", "", "RCPT", FP_LOWER_NO_COLONS, NULL,
         "alice@example.org", "TLSv1.3", LOOKUP_VALID, POLICYD_OUTCOME_VALID, "OK"},
        {"null sender (MDN)", "", "RCPT", FP, NULL, "", "TLSv1.3", LOOKUP_VALID,
         POLICYD_OUTCOME_VALID, "OK"},
        {"unknown certificate", "", "RCPT", FP, NULL, "alice@example.org", "TLSv1.3",
         LOOKUP_NOT_FOUND, POLICYD_OUTCOME_UNKNOWN_CERT, "DUNNO"},
        {"not a user certificate", "", "RCPT", FP, NULL, "alice@example.org", "TLSv1.3",
         LOOKUP_REQUESTED, POLICYD_OUTCOME_UNKNOWN_CERT, "DUNNO"},
        {"MD5 fingerprint (digest not sha256)", "", "RCPT", FP_MD5, NULL, "alice@example.org",
         "TLSv1.3", LOOKUP_NONE, POLICYD_OUTCOME_UNKNOWN_CERT, "DUNNO"},
        {"no certificate", "", "RCPT", NULL, NULL, "alice@example.org", "TLSv1.3", LOOKUP_NONE,
         POLICYD_OUTCOME_NO_CERT, "DUNNO"},
        {"no certificate, empty attributes", "", "RCPT", "", "", "alice@example.org", "",
         LOOKUP_NONE, POLICYD_OUTCOME_NO_CERT, "DUNNO"},
        {"no certificate, configured", "action_no_cert = REJECT 5.7.1 certificate required\n",
         "RCPT", NULL, NULL, "x@y", "", LOOKUP_NONE, POLICYD_OUTCOME_NO_CERT,
         "REJECT 5.7.1 certificate required"},
        {"revoked", "", "RCPT", FP, NULL, "alice@example.org", "TLSv1.3", LOOKUP_REVOKED,
         POLICYD_OUTCOME_REVOKED, "REJECT 5.7.1 certificate of user <alice> is revoked"},
        {"expired", "", "RCPT", FP, NULL, "alice@example.org", "TLSv1.3", LOOKUP_EXPIRED,
         POLICYD_OUTCOME_EXPIRED, "REJECT 5.7.1 certificate of user <alice> has expired"},
        {"expired by not_after", "", "RCPT", FP, NULL, "alice@example.org", "TLSv1.3",
         LOOKUP_PAST_NOT_AFTER, POLICYD_OUTCOME_EXPIRED,
         "REJECT 5.7.1 certificate of user <alice> has expired"},
        {"sender not owned", "", "RCPT", FP, NULL, "bob@example.org", "TLSv1.3", LOOKUP_VALID,
         POLICYD_OUTCOME_SENDER_MISMATCH,
         "REJECT 5.7.1 <bob@example.org>: sender address not owned by certificate user <alice>"},
        {"sender not checked", "check_sender = no\n", "RCPT", FP, NULL, "bob@example.org",
         "TLSv1.3", LOOKUP_VALID, POLICYD_OUTCOME_VALID, "OK"},
        {"TLS 1.1 < 1.2", "", "RCPT", FP, NULL, "alice@example.org", "TLSv1.1", LOOKUP_VALID,
         POLICYD_OUTCOME_OLD_TLS, "REJECT 5.7.1 TLS TLSv1.1 is not accepted, use TLSv1.2 or newer"},
        {"TLS 1 < 1.2", "", "RCPT", FP, NULL, "alice@example.org", "TLSv1", LOOKUP_VALID,
         POLICYD_OUTCOME_OLD_TLS, "REJECT 5.7.1 TLS TLSv1 is not accepted, use TLSv1.2 or newer"},
        {"no TLS reported", "", "RCPT", FP, NULL, "alice@example.org", "", LOOKUP_VALID,
         POLICYD_OUTCOME_OLD_TLS, "REJECT 5.7.1 TLS none is not accepted, use TLSv1.2 or newer"},
        {"TLS 1.2 < 1.3", "min_tls_version = TLSv1.3\n", "RCPT", FP, NULL, "alice@example.org",
         "TLSv1.2", LOOKUP_VALID, POLICYD_OUTCOME_OLD_TLS,
         "REJECT 5.7.1 TLS TLSv1.2 is not accepted, use TLSv1.3 or newer"},
        {"TLS minimum off", "min_tls_version = none\n", "RCPT", FP, NULL, "alice@example.org",
         "TLSv1", LOOKUP_VALID, POLICYD_OUTCOME_VALID, "OK"},
        {"old TLS, unknown certificate: not ours to judge", "", "RCPT", FP, NULL, "x@y", "TLSv1.1",
         LOOKUP_NOT_FOUND, POLICYD_OUTCOME_UNKNOWN_CERT, "DUNNO"},
        {"certd unreachable", "", "RCPT", FP, NULL, "alice@example.org", "TLSv1.3",
         LOOKUP_UNAVAILABLE, POLICYD_OUTCOME_UNAVAILABLE,
         "DEFER_IF_PERMIT 4.7.0 certificate service unavailable"},
        {"other state", "", "END-OF-MESSAGE", FP, NULL, "bob@example.org", "TLSv1.3", LOOKUP_NONE,
         POLICYD_OUTCOME_NOT_JUDGED, "DUNNO"},
        {"no state", "", NULL, FP, NULL, "bob@example.org", "TLSv1.3", LOOKUP_NONE,
         POLICYD_OUTCOME_NOT_JUDGED, "DUNNO"},
        {"END-OF-MESSAGE judged", "protocol_state = END-OF-MESSAGE\n", "END-OF-MESSAGE", FP, NULL,
         "bob@example.org", "TLSv1.3", LOOKUP_VALID, POLICYD_OUTCOME_SENDER_MISMATCH,
         "REJECT 5.7.1 <bob@example.org>: sender address not owned by certificate user <alice>"},
        {"RCPT not judged then", "protocol_state = END-OF-MESSAGE\n", "RCPT", FP, NULL,
         "bob@example.org", "TLSv1.3", LOOKUP_NONE, POLICYD_OUTCOME_NOT_JUDGED, "DUNNO"},
        {"templated", "action_valid = OK %{user} %{sender} %{tls} %{min_tls}\n", "RCPT", FP, NULL,
         "alice@example.org", "TLSv1.3", LOOKUP_VALID, POLICYD_OUTCOME_VALID,
         "OK alice alice@example.org TLSv1.3 TLSv1.2"},
        {"fingerprint in a template",
         "action_unknown_cert = PREPEND X-Hanko-Unknown: %{fingerprint}\n", "RCPT",
         FP_LOWER_NO_COLONS, NULL, "x@y", "TLSv1.3", LOOKUP_NOT_FOUND, POLICYD_OUTCOME_UNKNOWN_CERT,
         "PREPEND X-Hanko-Unknown: " FP},
        {"control characters from the client do not reach the reply",
         "action_sender_mismatch = REJECT %{sender}\n", "RCPT", FP, NULL, "bad\001@x", "TLSv1.3",
         LOOKUP_VALID, POLICYD_OUTCOME_SENDER_MISMATCH, "REJECT bad?@x"},
};

static PolicydLookup *
make_lookup(LookupKind kind)
{
	PolicydLookup *lookup;

	if (kind == LOOKUP_NONE)
		return NULL;
	if (kind == LOOKUP_NOT_FOUND)
		return policyd_lookup_new(POLICYD_LOOKUP_NOT_FOUND);
	if (kind == LOOKUP_UNAVAILABLE)
		return policyd_lookup_new(POLICYD_LOOKUP_UNAVAILABLE);
	lookup = policyd_lookup_new(POLICYD_LOOKUP_FOUND);
	lookup->user = g_strdup("alice");
	lookup->emails = g_strsplit("alice@example.org,alice.smith@example.org", ",", -1);
	lookup->not_after = kind == LOOKUP_PAST_NOT_AFTER ? NOW - 1 : NOW + 86400;
	lookup->cert_status = kind == LOOKUP_REVOKED     ? POLICYD_CERT_REVOKED
	                      : kind == LOOKUP_EXPIRED   ? POLICYD_CERT_EXPIRED
	                      : kind == LOOKUP_REQUESTED ? POLICYD_CERT_OTHER
	                                                 : POLICYD_CERT_VALID;
	return lookup;
}

static PolicydSettings *
settings_for(const char *extra, GError **error)
{
	g_autofree char *text = g_strdup_printf("[policyd]\n%s", extra);
	g_autoptr(HkConfig) config =
	        hk_config_load_data(text, "test.conf", policyd_config_sections, error);

	return config ? policyd_settings_new(config, error) : NULL;
}

static void
test_table(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(decision_cases); i++) {
		const Case *c = &decision_cases[i];
		g_autoptr(GError) error = NULL;
		g_autoptr(PolicydSettings) settings = settings_for(c->conf, &error);
		g_autoptr(PolicydLookup) lookup = make_lookup(c->lookup);
		g_auto(PolicydRequest) req = {0};
		g_auto(PolicydDecision) decision;

		g_test_message("case %u: %s", i, c->name);
		g_assert_no_error(error);
		policyd_request_set(&req, "protocol_state", c->state);
		policyd_request_set(&req, "ccert_fingerprint", c->fp);
		policyd_request_set(&req, "ccert_pubkey_fingerprint", c->pubkey_fp);
		policyd_request_set(&req, "sender", c->sender);
		policyd_request_set(&req, "encryption_protocol", c->tls);
		/* the engine asks for a lookup exactly when the table gives one */
		if (c->lookup != LOOKUP_NONE)
			g_assert_true(policyd_needs_lookup(&req, settings));
		policyd_decide(&req, lookup, settings, NOW, &decision);
		if (decision.outcome != c->outcome)
			g_error("case \"%s\": outcome %s, expected %s", c->name,
			        policyd_outcome_name(decision.outcome),
			        policyd_outcome_name(c->outcome));
		g_assert_cmpstr(decision.action, ==, c->action);
	}
}

static void
test_fingerprint_choice(void)
{
	g_auto(PolicydRequest) req = {0};
	g_autoptr(GError) error = NULL;
	g_autofree char *fp = NULL;
	g_autofree char *md5 = NULL;
	gboolean pubkey = TRUE;

	policyd_request_set(&req, "ccert_fingerprint", FP_LOWER_NO_COLONS);
	policyd_request_set(&req, "ccert_pubkey_fingerprint", "00");
	fp = policyd_request_fingerprint(&req, &pubkey, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(fp, ==, FP);
	g_assert_false(pubkey);

	policyd_request_set(&req, "ccert_fingerprint", FP_MD5);
	md5 = policyd_request_fingerprint(&req, &pubkey, &error);
	g_assert_null(md5);
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "ccert_fingerprint"));
}

static void
test_tls_parse(void)
{
	static const struct {
		const char *text;
		PolicydTls tls;
	} cases[] = {
	        {NULL, POLICYD_TLS_NONE},      {"", POLICYD_TLS_NONE},
	        {"SSLv3", POLICYD_TLS_SSL},    {"TLSv1", POLICYD_TLS_1_0},
	        {"TLSv1.1", POLICYD_TLS_1_1},  {"TLSv1.2", POLICYD_TLS_1_2},
	        {"TLSv1.3", POLICYD_TLS_1_3},  {"TLSv1.4", (PolicydTls)14},
	        {"QUIC", POLICYD_TLS_UNKNOWN}, {"TLSv1.x", POLICYD_TLS_UNKNOWN},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
		g_assert_cmpint(policyd_tls_parse(cases[i].text), ==, cases[i].tls);
}

static void
test_bad_template(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(PolicydSettings) settings =
	        settings_for("action_revoked = REJECT %{usr} is revoked\n", &error);

	g_assert_null(settings);
	g_assert_error(error, HK_CONFIG_ERROR, HK_CONFIG_ERROR_VALUE);
	g_assert_nonnull(strstr(error->message, "action_revoked"));
	g_assert_nonnull(strstr(error->message, "%{usr}"));
}

static void
test_expand(void)
{
	const PolicydFields fields = {.user = "alice", .sender = NULL, .tls = "TLSv1.3"};
	static const struct {
		const char *template_, *out;
	} cases[] = {
	        {"%{user}", "alice"},
	        {"<%{sender}>", "<>"},
	        {"100% %{tls}", "100% TLSv1.3"},
	        {"%{user", "%{user"},
	        {"%{nope} %{user}", "%{nope} alice"},
	        {"%s", "%s"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *out = policyd_expand(cases[i].template_, &fields);

		g_assert_cmpstr(out, ==, cases[i].out);
	}
}

static void
test_lookup_from_json(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) result = json_tokener_parse(
	        "{\"serial\": \"0A\", \"cn\": \"Alice\", \"user\": \"alice\", \"emails\": "
	        "[\"alice@example.org\", 7], \"status\": \"revoked\", \"not_after\": "
	        "\"2027-01-15T08:00:00Z\", \"kind\": \"client\"}");
	g_autoptr(json_object) bad = json_tokener_parse("{\"user\": \"alice\"}");
	g_autoptr(PolicydLookup) lookup = policyd_lookup_from_json(result, &error);
	g_autoptr(PolicydLookup) none = NULL;

	g_assert_no_error(error);
	g_assert_cmpint(lookup->status, ==, POLICYD_LOOKUP_FOUND);
	g_assert_cmpstr(lookup->user, ==, "alice");
	g_assert_cmpuint(g_strv_length(lookup->emails), ==, 1);
	g_assert_cmpint(lookup->cert_status, ==, POLICYD_CERT_REVOKED);
	g_assert_cmpint(lookup->not_after, ==, NOW);
	{
		g_autoptr(json_object) userless = json_tokener_parse(
		        "{\"cn\": \"Carol\", \"emails\": [\"carol@example.org\"], \"status\": "
		        "\"valid\", \"kind\": \"client\"}");
		g_autoptr(json_object) server =
		        json_tokener_parse("{\"cn\": \"mx.example.org\", \"status\": \"valid\", "
		                           "\"kind\": \"server\"}");
		g_autoptr(PolicydLookup) carol = policyd_lookup_from_json(userless, NULL);
		g_autoptr(PolicydLookup) mx = policyd_lookup_from_json(server, NULL);

		g_assert_cmpstr(carol->user, ==, "Carol");
		g_assert_cmpint(carol->cert_status, ==, POLICYD_CERT_VALID);
		g_assert_cmpint(mx->cert_status, ==, POLICYD_CERT_OTHER);
	}
	none = policyd_lookup_from_json(bad, &error);
	g_assert_null(none);
	g_assert_nonnull(error);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/policyd/engine/table", test_table);
	g_test_add_func("/policyd/engine/fingerprint-choice", test_fingerprint_choice);
	g_test_add_func("/policyd/engine/tls-parse", test_tls_parse);
	g_test_add_func("/policyd/engine/bad-template", test_bad_template);
	g_test_add_func("/policyd/engine/expand", test_expand);
	g_test_add_func("/policyd/engine/lookup-from-json", test_lookup_from_json);
	return g_test_run();
}
