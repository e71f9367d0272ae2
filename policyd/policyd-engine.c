/*
 * policyd-engine: decides what Postfix is told about one request.
 *
 * Order of the checks: protocol_state not judged -> DUNNO; no client certificate ->
 * no_cert; a fingerprint that is not SHA-256, or one certd does not know -> unknown_cert;
 * certd unreachable -> unavailable; then, for a certificate hanko issued: TLS older than
 * min_tls_version, revoked, expired, and the envelope sender not among the user's
 * addresses. The TLS minimum applies to hanko's certificates only, so that other MTAs
 * presenting their own certificates on port 25 are judged by the rest of Postfix's
 * restrictions, not by us. The null sender (<>) is accepted from a valid certificate:
 * RFC 8098 requires it for read receipts (MDNs), which mail clients send, and it names
 * no address that could be impersonated.
 *
 * Talks to: nothing. Must never: read a clock, a socket or a global.
 */
#include "policyd-engine.h"
#include "policyd.h"
#include "hk-certd-proto.h"
#include "hk-json.h"
#include "hk-ossl.h"

#include <gio/gio.h>
#include <string.h>

static const char *const outcome_names[POLICYD_N_OUTCOMES] = {
        [POLICYD_OUTCOME_VALID] = "valid",
        [POLICYD_OUTCOME_UNKNOWN_CERT] = "unknown_cert",
        [POLICYD_OUTCOME_NO_CERT] = "no_cert",
        [POLICYD_OUTCOME_REVOKED] = "revoked",
        [POLICYD_OUTCOME_EXPIRED] = "expired",
        [POLICYD_OUTCOME_SENDER_MISMATCH] = "sender_mismatch",
        [POLICYD_OUTCOME_OLD_TLS] = "old_tls",
        [POLICYD_OUTCOME_UNAVAILABLE] = "unavailable",
        [POLICYD_OUTCOME_NOT_JUDGED] = "not_judged",
};

/* The config key of each outcome's action; NOT_JUDGED is always DUNNO. */
static const char *const outcome_keys[POLICYD_N_OUTCOMES] = {
        [POLICYD_OUTCOME_VALID] = POLICYD_CONF_ACTION_VALID,
        [POLICYD_OUTCOME_UNKNOWN_CERT] = POLICYD_CONF_ACTION_UNKNOWN,
        [POLICYD_OUTCOME_NO_CERT] = POLICYD_CONF_ACTION_NO_CERT,
        [POLICYD_OUTCOME_REVOKED] = POLICYD_CONF_ACTION_REVOKED,
        [POLICYD_OUTCOME_EXPIRED] = POLICYD_CONF_ACTION_EXPIRED,
        [POLICYD_OUTCOME_SENDER_MISMATCH] = POLICYD_CONF_ACTION_SENDER,
        [POLICYD_OUTCOME_OLD_TLS] = POLICYD_CONF_ACTION_OLD_TLS,
        [POLICYD_OUTCOME_UNAVAILABLE] = POLICYD_CONF_ACTION_UNAVAILABLE,
};

const char *
policyd_outcome_name(PolicydOutcome outcome)
{
	return outcome < POLICYD_N_OUTCOMES ? outcome_names[outcome] : "?";
}

PolicydTls
policyd_tls_parse(const char *protocol)
{
	guint64 minor = 0;

	if (protocol == NULL || *protocol == '\0')
		return POLICYD_TLS_NONE;
	if (g_str_has_prefix(protocol, "SSLv"))
		return POLICYD_TLS_SSL;
	if (strcmp(protocol, "TLSv1") == 0)
		return POLICYD_TLS_1_0;
	if (g_str_has_prefix(protocol, "TLSv1.") &&
	    g_ascii_string_to_unsigned(protocol + 6, 10, 0, 9, &minor, NULL))
		return (PolicydTls)(POLICYD_TLS_1_0 + (int)minor);
	return POLICYD_TLS_UNKNOWN;
}

/* ----- lookup results ----- */

PolicydLookup *
policyd_lookup_new(PolicydLookupStatus status)
{
	PolicydLookup *lookup = g_new0(PolicydLookup, 1);

	lookup->refs = 1;
	lookup->status = status;
	return lookup;
}

PolicydLookup *
policyd_lookup_ref(PolicydLookup *lookup)
{
	g_atomic_int_inc(&lookup->refs);
	return lookup;
}

void
policyd_lookup_unref(PolicydLookup *lookup)
{
	if (lookup == NULL || !g_atomic_int_dec_and_test(&lookup->refs))
		return;
	g_free(lookup->user);
	g_strfreev(lookup->emails);
	g_free(lookup);
}

static PolicydCertStatus
cert_status_parse(const char *status)
{
	if (g_strcmp0(status, HK_CERTD_STATUS_VALID) == 0)
		return POLICYD_CERT_VALID;
	if (g_strcmp0(status, HK_CERTD_STATUS_REVOKED) == 0)
		return POLICYD_CERT_REVOKED;
	if (g_strcmp0(status, HK_CERTD_STATUS_EXPIRED) == 0)
		return POLICYD_CERT_EXPIRED;
	return POLICYD_CERT_OTHER;
}

static char **
emails_from_json(json_object *array)
{
	GPtrArray *emails = g_ptr_array_new();

	for (size_t i = 0; array != NULL && i < json_object_array_length(array); i++) {
		json_object *item = json_object_array_get_idx(array, i);

		if (json_object_is_type(item, json_type_string))
			g_ptr_array_add(emails, g_strdup(json_object_get_string(item)));
	}
	g_ptr_array_add(emails, NULL);
	return (char **)g_ptr_array_free(emails, FALSE);
}

PolicydLookup *
policyd_lookup_from_json(json_object *result, GError **error)
{
	g_autoptr(PolicydLookup) lookup = policyd_lookup_new(POLICYD_LOOKUP_FOUND);
	const char *status = hk_json_get_string(result, HK_CERTD_KEY_STATUS);
	const char *not_after = hk_json_get_string(result, HK_CERTD_KEY_NOT_AFTER);
	const char *user;
	json_object *emails = NULL;

	if (status == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
		            "cert.lookup result without %s", HK_CERTD_KEY_STATUS);
		return NULL;
	}
	lookup->cert_status = cert_status_parse(status);
	if (g_strcmp0(hk_json_get_string(result, HK_CERTD_KEY_KIND), "server") == 0)
		lookup->cert_status = POLICYD_CERT_OTHER; /* a server's certificate names no user */
	/* a client certificate issued without --user stands for its holder: its CN names
	 * them and its own address is among the emails */
	user = hk_json_get_string(result, HK_CERTD_KEY_USER);
	lookup->user = g_strdup(user ? user : hk_json_get_string(result, HK_CERTD_KEY_CN));
	if (json_object_object_get_ex(result, HK_CERTD_KEY_EMAILS, &emails) &&
	    !json_object_is_type(emails, json_type_array))
		emails = NULL;
	lookup->emails = emails_from_json(emails);
	if (not_after != NULL) {
		g_autoptr(GDateTime) t = g_date_time_new_from_iso8601(not_after, NULL);

		lookup->not_after = t ? g_date_time_to_unix(t) : 0;
	}
	return g_steal_pointer(&lookup);
}

/* ----- templates ----- */

static const char *const template_fields[] = {"user", "sender",  "fingerprint",
                                              "tls",  "min_tls", NULL};

static const char *
field_value(const PolicydFields *fields, const char *name, gsize len)
{
	const char *values[] = {fields->user, fields->sender, fields->fingerprint, fields->tls,
	                        fields->min_tls};

	for (guint i = 0; template_fields[i] != NULL; i++) {
		if (strlen(template_fields[i]) == len &&
		    strncmp(template_fields[i], name, len) == 0)
			return values[i] ? values[i] : "";
	}
	return NULL;
}

/* Values come from the SMTP client: nothing in them may end Postfix's reply line. */
static void
append_value(GString *out, const char *value)
{
	for (const char *p = value; *p != '\0'; p++)
		g_string_append_c(out, (guchar)*p < 0x20 || *p == 0x7f ? '?' : *p);
}

char *
policyd_expand(const char *template_, const PolicydFields *fields)
{
	GString *out = g_string_sized_new(strlen(template_) + 64);
	const char *p = template_;

	while (*p != '\0') {
		const char *end = g_str_has_prefix(p, "%{") ? strchr(p + 2, '}') : NULL;
		const char *value = end ? field_value(fields, p + 2, (gsize)(end - p - 2)) : NULL;

		if (value == NULL) {
			g_string_append_c(out, *p++);
			continue;
		}
		append_value(out, value);
		p = end + 1;
	}
	return g_string_free(out, FALSE);
}

gboolean
policyd_template_check(const char *template_, GError **error)
{
	const PolicydFields empty = {0};

	for (const char *p = strstr(template_, "%{"); p != NULL; p = strstr(p + 2, "%{")) {
		const char *end = strchr(p + 2, '}');

		if (end == NULL || field_value(&empty, p + 2, (gsize)(end - p - 2)) == NULL) {
			g_set_error(
			        error, HK_CONFIG_ERROR, HK_CONFIG_ERROR_VALUE,
			        "\"%s\": unknown field at \"%.20s\" (known: %%{user}, %%{sender}, "
			        "%%{fingerprint}, %%{tls}, %%{min_tls})",
			        template_, p);
			return FALSE;
		}
	}
	return TRUE;
}

/* ----- settings ----- */

PolicydSettings *
policyd_settings_new(HkConfig *config, GError **error)
{
	g_autoptr(PolicydSettings) s = g_new0(PolicydSettings, 1);
	const char *min_tls =
	        hk_config_get_string(config, POLICYD_SECTION, POLICYD_CONF_MIN_TLS_VERSION);

	s->refs = 1;
	s->protocol_state = g_strdup(
	        hk_config_get_string(config, POLICYD_SECTION, POLICYD_CONF_PROTOCOL_STATE));
	s->min_tls =
	        g_strcmp0(min_tls, "none") == 0 ? POLICYD_TLS_NONE : policyd_tls_parse(min_tls);
	s->check_sender = hk_config_get_bool(config, POLICYD_SECTION, POLICYD_CONF_CHECK_SENDER);
	for (guint i = 0; i < POLICYD_N_OUTCOMES; i++) {
		const char *action = outcome_keys[i] ? hk_config_get_string(config, POLICYD_SECTION,
		                                                            outcome_keys[i])
		                                     : "DUNNO";

		if (!policyd_template_check(action, error)) {
			g_prefix_error(error, "[%s] %s: ", POLICYD_SECTION, outcome_keys[i]);
			return NULL;
		}
		s->actions[i] = g_strdup(*action ? action : "DUNNO");
	}
	return g_steal_pointer(&s);
}

PolicydSettings *
policyd_settings_ref(PolicydSettings *settings)
{
	g_atomic_int_inc(&settings->refs);
	return settings;
}

void
policyd_settings_unref(PolicydSettings *settings)
{
	if (settings == NULL || !g_atomic_int_dec_and_test(&settings->refs))
		return;
	g_free(settings->protocol_state);
	for (guint i = 0; i < POLICYD_N_OUTCOMES; i++)
		g_free(settings->actions[i]);
	g_free(settings);
}

/* ----- the decision ----- */

const char *
policyd_request_fingerprint_text(const PolicydRequest *request, gboolean *pubkey)
{
	const char *fp = request->ccert_fingerprint;

	*pubkey = FALSE;
	if (fp == NULL || *fp == '\0') {
		fp = request->ccert_pubkey_fingerprint;
		*pubkey = TRUE;
	}
	return fp == NULL || *fp == '\0' ? NULL : fp;
}

char *
policyd_request_fingerprint(const PolicydRequest *request, gboolean *pubkey, GError **error)
{
	const char *fp = policyd_request_fingerprint_text(request, pubkey);
	char *canonical;

	if (fp == NULL)
		return NULL;
	canonical = hk_ossl_fingerprint_normalize(fp, error);
	if (canonical == NULL)
		g_prefix_error(error,
		               "%s: ", *pubkey ? "ccert_pubkey_fingerprint" : "ccert_fingerprint");
	return canonical;
}

static gboolean
has_certificate(const PolicydRequest *request)
{
	return (request->ccert_fingerprint != NULL && *request->ccert_fingerprint != '\0') ||
	       (request->ccert_pubkey_fingerprint != NULL &&
	        *request->ccert_pubkey_fingerprint != '\0');
}

static gboolean
state_judged(const PolicydRequest *request, const PolicydSettings *settings)
{
	return request->protocol_state != NULL &&
	       g_ascii_strcasecmp(request->protocol_state, settings->protocol_state) == 0;
}

gboolean
policyd_needs_lookup(const PolicydRequest *request, const PolicydSettings *settings)
{
	return state_judged(request, settings) && has_certificate(request);
}

static gboolean
sender_owned(const char *sender, char *const *emails)
{
	if (sender == NULL || *sender == '\0')
		return TRUE; /* the null sender: see the file's header */
	for (guint i = 0; emails != NULL && emails[i] != NULL; i++) {
		if (g_ascii_strcasecmp(sender, emails[i]) == 0)
			return TRUE;
	}
	return FALSE;
}

/* The outcome for a certificate certd found. */
static PolicydOutcome
judge_certificate(const PolicydRequest *request, const PolicydLookup *lookup,
                  const PolicydSettings *settings, gint64 now)
{
	PolicydTls tls = policyd_tls_parse(request->encryption_protocol);

	if (lookup->user == NULL || lookup->cert_status == POLICYD_CERT_OTHER)
		return POLICYD_OUTCOME_UNKNOWN_CERT;
	if (settings->min_tls != POLICYD_TLS_NONE &&
	    (tls == POLICYD_TLS_UNKNOWN || tls < settings->min_tls))
		return POLICYD_OUTCOME_OLD_TLS;
	if (lookup->cert_status == POLICYD_CERT_REVOKED)
		return POLICYD_OUTCOME_REVOKED;
	if (lookup->cert_status == POLICYD_CERT_EXPIRED ||
	    (lookup->not_after > 0 && lookup->not_after < now))
		return POLICYD_OUTCOME_EXPIRED;
	if (settings->check_sender && !sender_owned(request->sender, lookup->emails))
		return POLICYD_OUTCOME_SENDER_MISMATCH;
	return POLICYD_OUTCOME_VALID;
}

static PolicydOutcome
judge(const PolicydRequest *request, const PolicydLookup *lookup, const PolicydSettings *settings,
      const char *fingerprint, gint64 now)
{
	if (!state_judged(request, settings))
		return POLICYD_OUTCOME_NOT_JUDGED;
	if (!has_certificate(request))
		return POLICYD_OUTCOME_NO_CERT;
	if (fingerprint == NULL || lookup == NULL || lookup->status == POLICYD_LOOKUP_NOT_FOUND)
		return POLICYD_OUTCOME_UNKNOWN_CERT;
	if (lookup->status == POLICYD_LOOKUP_UNAVAILABLE)
		return POLICYD_OUTCOME_UNAVAILABLE;
	return judge_certificate(request, lookup, settings, now);
}

static const char *const tls_names[] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};

static const char *
min_tls_name(PolicydTls tls)
{
	if (tls >= POLICYD_TLS_1_0 && tls <= POLICYD_TLS_1_3)
		return tls_names[tls - POLICYD_TLS_1_0];
	return "none";
}

void
policyd_decide(const PolicydRequest *request, const PolicydLookup *lookup,
               const PolicydSettings *settings, gint64 now, PolicydDecision *out)
{
	gboolean pubkey;
	const char *tls = request->encryption_protocol;
	PolicydFields fields;

	memset(out, 0, sizeof(*out));
	out->fingerprint = policyd_request_fingerprint(request, &pubkey, NULL);
	out->outcome = judge(request, lookup, settings, out->fingerprint, now);
	if (lookup != NULL && lookup->status == POLICYD_LOOKUP_FOUND)
		out->user = g_strdup(lookup->user);
	fields = (PolicydFields){
	        .user = out->user,
	        .sender = request->sender,
	        .fingerprint = out->fingerprint,
	        .tls = tls && *tls ? tls : "none",
	        .min_tls = min_tls_name(settings->min_tls),
	};
	out->action = policyd_expand(settings->actions[out->outcome], &fields);
}

void
policyd_decision_clear(PolicydDecision *decision)
{
	g_clear_pointer(&decision->action, g_free);
	g_clear_pointer(&decision->user, g_free);
	g_clear_pointer(&decision->fingerprint, g_free);
}
