/*
 * policyd-engine: the policy decision, a pure function of a Postfix request, what certd
 * said about its certificate and the settings taken from [policyd].
 *
 * No sockets, no clock, no cache: the caller passes "now" and the lookup result, so
 * tests/unit/test-policyd-engine.c runs every outcome as a table.
 */
#pragma once

#include <glib.h>

#include "hk-config.h"
#include <json-c/json.h>
#include "policyd-codec.h"

G_BEGIN_DECLS

typedef enum {
	POLICYD_OUTCOME_VALID,
	POLICYD_OUTCOME_UNKNOWN_CERT,
	POLICYD_OUTCOME_NO_CERT,
	POLICYD_OUTCOME_REVOKED,
	POLICYD_OUTCOME_EXPIRED,
	POLICYD_OUTCOME_SENDER_MISMATCH,
	POLICYD_OUTCOME_OLD_TLS,
	POLICYD_OUTCOME_UNAVAILABLE,
	POLICYD_OUTCOME_NOT_JUDGED, /* another protocol_state: always DUNNO */
	POLICYD_N_OUTCOMES,
} PolicydOutcome;

/* "valid", "unknown_cert", ... as logged and sent by policy.check */
const char *policyd_outcome_name(PolicydOutcome outcome);

/* TLS protocol versions, ordered. */
typedef enum {
	POLICYD_TLS_NONE = 0, /* no TLS, or min_tls_version = none */
	POLICYD_TLS_SSL = 1,  /* SSLv2, SSLv3 */
	POLICYD_TLS_1_0 = 10, /* TLSv1; TLSv1.N is 10 + N */
	POLICYD_TLS_1_1 = 11,
	POLICYD_TLS_1_2 = 12,
	POLICYD_TLS_1_3 = 13,
	POLICYD_TLS_UNKNOWN = -1, /* something Postfix would not send */
} PolicydTls;

/* Postfix's encryption_protocol ("TLSv1.2"; NULL or empty: no TLS). */
PolicydTls policyd_tls_parse(const char *encryption_protocol);

typedef enum {
	POLICYD_LOOKUP_FOUND,
	POLICYD_LOOKUP_NOT_FOUND,
	POLICYD_LOOKUP_UNAVAILABLE,
} PolicydLookupStatus;

typedef enum {
	POLICYD_CERT_VALID,
	POLICYD_CERT_REVOKED,
	POLICYD_CERT_EXPIRED,
	POLICYD_CERT_OTHER, /* requested, unused, in_use: not a user's client certificate */
} PolicydCertStatus;

/* What certd's cert.lookup said (immutable once built; the cache shares it). */
typedef struct {
	gint refs;
	PolicydLookupStatus status;
	char *user;    /* FOUND only */
	char **emails; /* FOUND only; NULL-terminated */
	PolicydCertStatus cert_status;
	gint64 not_after; /* unix seconds; 0: unknown */
} PolicydLookup;

PolicydLookup *policyd_lookup_new(PolicydLookupStatus status);
/* From a cert.lookup result object; NULL with an error when it lacks what we need. */
PolicydLookup *policyd_lookup_from_json(json_object *result, GError **error);
PolicydLookup *policyd_lookup_ref(PolicydLookup *lookup);
void policyd_lookup_unref(PolicydLookup *lookup);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PolicydLookup, policyd_lookup_unref)

/* The [policyd] keys the decision reads, checked once (templates) per configuration. */
typedef struct {
	gint refs;
	char *protocol_state;
	PolicydTls min_tls;
	gboolean check_sender;
	char *actions[POLICYD_N_OUTCOMES];
} PolicydSettings;

/* Fails on an action template with an unknown %{field}. */
PolicydSettings *policyd_settings_new(HkConfig *config, GError **error);
PolicydSettings *policyd_settings_ref(PolicydSettings *settings);
void policyd_settings_unref(PolicydSettings *settings);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PolicydSettings, policyd_settings_unref)

/*
 * The canonical fingerprint to look up: ccert_fingerprint, else ccert_pubkey_fingerprint
 * (*pubkey set). NULL without one (*error unset) or when it is not a SHA-256 fingerprint
 * (*error says why: Postfix's smtpd_tls_fingerprint_digest must be sha256).
 */
char *policyd_request_fingerprint(const PolicydRequest *request, gboolean *pubkey, GError **error);
/* The same attribute as sent (not normalized), or NULL; *pubkey as above. */
const char *policyd_request_fingerprint_text(const PolicydRequest *request, gboolean *pubkey);

/* FALSE when the decision does not depend on certd (other state, no certificate). */
gboolean policyd_needs_lookup(const PolicydRequest *request, const PolicydSettings *settings);

typedef struct {
	PolicydOutcome outcome;
	char *action;      /* expanded template */
	char *user;        /* NULL when unknown */
	char *fingerprint; /* canonical, NULL when none or malformed */
} PolicydDecision;

void policyd_decision_clear(PolicydDecision *decision);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PolicydDecision, policyd_decision_clear)

/*
 * The decision. lookup: what certd said about policyd_request_fingerprint()'s result
 * (NULL when policyd_needs_lookup() was FALSE or the fingerprint was malformed).
 */
void policyd_decide(const PolicydRequest *request, const PolicydLookup *lookup,
                    const PolicydSettings *settings, gint64 now, PolicydDecision *out);

/* Expands %{user} %{sender} %{fingerprint} %{tls} %{min_tls}; NULL values expand to "". */
typedef struct {
	const char *user, *sender, *fingerprint, *tls, *min_tls;
} PolicydFields;
char *policyd_expand(const char *template_, const PolicydFields *fields);
/* FALSE with an error naming an unknown %{field}. */
gboolean policyd_template_check(const char *template_, GError **error);

G_END_DECLS
