/*
 * policyd-config: the [policyd] key table. contrib/hanko.conf documents every key.
 *
 * Action templates are Postfix access(5) actions; %{user}, %{sender}, %{fingerprint},
 * %{tls} and %{min_tls} are replaced by the request's values.
 */
#include "policyd.h"
#include "hk-build-config.h"

static const char *const state_choices[] = {"RCPT", "END-OF-MESSAGE", NULL};
static const char *const tls_choices[] = {"none", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3", NULL};

static const HkConfKey policyd_keys[] = {
        {POLICYD_CONF_POLICY_LISTEN, HK_CONF_LIST, "unix:" HANKO_RUNSTATEDIR "/policyd.sock", 0, 0,
         NULL, "Where Postfix's check_policy_service connects: unix:PATH or inet:127.0.0.1:PORT"},
        {POLICYD_CONF_AUTH_LISTEN, HK_CONF_LIST, "unix:" HANKO_RUNSTATEDIR "/auth.sock", 0, 0, NULL,
         "Where Postfix's smtpd_sasl_path connects (Dovecot auth protocol); empty: off"},
        {POLICYD_CONF_ADMIN_SOCKET, HK_CONF_PATH, HANKO_RUNSTATEDIR "/policyd-admin.sock", 0, 0,
         NULL, "JSON-line socket for hankoctl policy check"},
        {POLICYD_CONF_SOCKET_MODE, HK_CONF_MODE, "0660", 0, 0666, NULL,
         "Mode of the UNIX sockets policyd creates"},
        {POLICYD_CONF_SOCKET_GROUP, HK_CONF_STRING, "", 0, 0, NULL,
         "Group of those sockets (e.g. postfix); empty keeps the daemon's own"},
        {POLICYD_CONF_ADMIN_GROUP, HK_CONF_STRING, "hanko-admin", 0, 0, NULL,
         "Members may use the admin socket (root always may)"},
        {POLICYD_CONF_CERTD_SOCKET, HK_CONF_PATH, HANKO_RUNSTATEDIR "/certd.sock", 0, 0, NULL,
         "hanko-certd's socket"},
        {POLICYD_CONF_CERTD_TIMEOUT, HK_CONF_DURATION, "2s", 10, 60 * 1000, NULL,
         "Longest wait for certd before answering action_unavailable"},
        {POLICYD_CONF_CACHE_TTL, HK_CONF_DURATION, "5m", 0, 24 * 3600 * 1000, NULL,
         "How long a certificate lookup is cached (revocations invalidate it at once)"},
        {POLICYD_CONF_NEGATIVE_CACHE_TTL, HK_CONF_DURATION, "30s", 0, 3600 * 1000, NULL,
         "How long an unknown fingerprint is cached"},
        {POLICYD_CONF_CACHE_SIZE, HK_CONF_INT, "10000", 0, 10000000, NULL,
         "Entries the cache holds at most"},
        {POLICYD_CONF_PROTOCOL_STATE, HK_CONF_ENUM, "RCPT", 0, 0, state_choices,
         "The protocol_state judged; others get DUNNO"},
        {POLICYD_CONF_MIN_TLS_VERSION, HK_CONF_ENUM, "TLSv1.2", 0, 0, tls_choices,
         "Oldest TLS protocol accepted from a client that presents a certificate"},
        {POLICYD_CONF_CHECK_SENDER, HK_CONF_BOOL, "yes", 0, 0, NULL,
         "Require the envelope sender to be one of the certificate user's addresses"},
        {POLICYD_CONF_ACTION_VALID, HK_CONF_STRING, "OK", 0, 0, NULL,
         "Action for a valid certificate whose user owns the sender"},
        {POLICYD_CONF_ACTION_UNKNOWN, HK_CONF_STRING, "DUNNO", 0, 0, NULL,
         "Action for a certificate hanko does not know"},
        {POLICYD_CONF_ACTION_NO_CERT, HK_CONF_STRING, "DUNNO", 0, 0, NULL,
         "Action when the client presented no certificate"},
        {POLICYD_CONF_ACTION_REVOKED, HK_CONF_STRING,
         "REJECT 5.7.1 certificate of user <%{user}> is revoked", 0, 0, NULL,
         "Action for a revoked certificate"},
        {POLICYD_CONF_ACTION_EXPIRED, HK_CONF_STRING,
         "REJECT 5.7.1 certificate of user <%{user}> has expired", 0, 0, NULL,
         "Action for an expired certificate"},
        {POLICYD_CONF_ACTION_SENDER, HK_CONF_STRING,
         "REJECT 5.7.1 <%{sender}>: sender address not owned by certificate user <%{user}>", 0, 0,
         NULL, "Action when the sender is not one of the user's addresses"},
        {POLICYD_CONF_ACTION_OLD_TLS, HK_CONF_STRING,
         "REJECT 5.7.1 TLS %{tls} is not accepted, use %{min_tls} or newer", 0, 0, NULL,
         "Action for a TLS protocol older than min_tls_version"},
        {POLICYD_CONF_ACTION_UNAVAILABLE, HK_CONF_STRING,
         "DEFER_IF_PERMIT 4.7.0 certificate service unavailable", 0, 0, NULL,
         "Action when certd does not answer in time"},
        {POLICYD_CONF_MAX_CONNECTIONS, HK_CONF_INT, "1000", 1, 100000, NULL,
         "Policy and auth connections open at once"},
        {POLICYD_CONF_AUTH_MECHANISMS, HK_CONF_LIST, "PLAIN, LOGIN", 0, 0, NULL,
         "SASL mechanisms offered: PLAIN and/or LOGIN"},
        {POLICYD_CONF_AUTH_REQUIRE_SECURED, HK_CONF_BOOL, "no", 0, 0, NULL,
         "Refuse authentication unless Postfix says the session is TLS (secured)"},
        {POLICYD_CONF_AUTH_FAILURE_DELAY, HK_CONF_DURATION, "2s", 0, 60 * 1000, NULL,
         "Delay before answering a failed login, doubled per failure from the same IP"},
        {POLICYD_CONF_AUTH_MAX_FAILURE_DELAY, HK_CONF_DURATION, "15s", 0, 300 * 1000, NULL,
         "Upper bound of that delay"},
        {0},
};

const HkConfSection policyd_config_sections[] = {
        {POLICYD_SECTION, policyd_keys},
        {0},
};
