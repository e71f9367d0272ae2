/*
 * policyd: hanko-policyd's shared declarations.
 *
 * Two listeners in one daemon: Postfix's SMTP access policy delegation protocol
 * (policyd-policy.c, deciding with the pure engine in policyd-engine.c and certd lookups
 * cached by policyd-cache.c), and the Dovecot authentication protocol, server side
 * (policyd-auth.c), so that smtpd_sasl_type = dovecot authenticates against hanko.
 * An admin socket (JSON lines) answers policy.check for "hankoctl policy check".
 */
#pragma once

#include "hk-config.h"
#include "hk-daemon.h"
#include "hk-ipc.h"

G_BEGIN_DECLS

#define POLICYD_SECTION "policyd"

/* [policyd] keys */
#define POLICYD_CONF_POLICY_LISTEN          "policy_listen"
#define POLICYD_CONF_AUTH_LISTEN            "auth_listen"
#define POLICYD_CONF_ADMIN_SOCKET           "admin_socket"
#define POLICYD_CONF_SOCKET_MODE            "socket_mode"
#define POLICYD_CONF_SOCKET_GROUP           "socket_group"
#define POLICYD_CONF_ADMIN_GROUP            "admin_group"
#define POLICYD_CONF_CERTD_SOCKET           "certd_socket"
#define POLICYD_CONF_CERTD_TIMEOUT          "certd_timeout"
#define POLICYD_CONF_CACHE_TTL              "cache_ttl"
#define POLICYD_CONF_NEGATIVE_CACHE_TTL     "negative_cache_ttl"
#define POLICYD_CONF_CACHE_SIZE             "cache_size"
#define POLICYD_CONF_PROTOCOL_STATE         "protocol_state"
#define POLICYD_CONF_MIN_TLS_VERSION        "min_tls_version"
#define POLICYD_CONF_CHECK_SENDER           "check_sender"
#define POLICYD_CONF_ACTION_VALID           "action_valid"
#define POLICYD_CONF_ACTION_UNKNOWN         "action_unknown_cert"
#define POLICYD_CONF_ACTION_NO_CERT         "action_no_cert"
#define POLICYD_CONF_ACTION_REVOKED         "action_revoked"
#define POLICYD_CONF_ACTION_EXPIRED         "action_expired"
#define POLICYD_CONF_ACTION_SENDER          "action_sender_mismatch"
#define POLICYD_CONF_ACTION_OLD_TLS         "action_old_tls"
#define POLICYD_CONF_ACTION_UNAVAILABLE     "action_unavailable"
#define POLICYD_CONF_MAX_CONNECTIONS        "max_connections"
#define POLICYD_CONF_AUTH_MECHANISMS        "auth_mechanisms"
#define POLICYD_CONF_AUTH_REQUIRE_SECURED   "auth_require_secured"
#define POLICYD_CONF_AUTH_FAILURE_DELAY     "auth_failure_delay"
#define POLICYD_CONF_AUTH_MAX_FAILURE_DELAY "auth_max_failure_delay"

extern const HkConfSection policyd_config_sections[];

G_END_DECLS
