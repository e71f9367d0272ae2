/*
 * milter: hanko-milter's shared declarations.
 *
 * A libmilter filter for Postfix's smtpd_milters. Per message it verifies S/MIME
 * signatures (milter-smime.c, a pure engine over the MIME reader of milter-mime.c),
 * decides whether a signature was required (milter-policy.c), decrypts mail for the
 * gateway address with the identity certd assigned to the gateway, and writes the result
 * into Authentication-Results (RFC 7281). milter-filter.c is the libmilter glue;
 * milter-certd.c the connections to hanko-certd; milter-server.c ties them to the daemon
 * skeleton.
 */
#pragma once

#include "hk-config.h"
#include "hk-daemon.h"

G_BEGIN_DECLS

#define MILTER_SECTION "milter"

/* [milter] keys */
#define MILTER_CONF_LISTEN                    "listen"
#define MILTER_CONF_SOCKET_MODE               "socket_mode"
#define MILTER_CONF_SOCKET_GROUP              "socket_group"
#define MILTER_CONF_CERTD_SOCKET              "certd_socket"
#define MILTER_CONF_CERTD_TIMEOUT             "certd_timeout"
#define MILTER_CONF_AUTHSERV_ID               "authserv_id"
#define MILTER_CONF_TMP_DIR                   "tmp_dir"
#define MILTER_CONF_MAX_SIZE                  "max_smime_size"
#define MILTER_CONF_ON_OVERSIZE               "on_oversize"
#define MILTER_CONF_MAX_DEPTH                 "max_mime_depth"
#define MILTER_CONF_TRUST_HANKO_CA            "trust_hanko_ca"
#define MILTER_CONF_CA_FILE                   "ca_file"
#define MILTER_CONF_CA_PATH                   "ca_path"
#define MILTER_CONF_CRL_FILE                  "crl_file"
#define MILTER_CONF_ALLOW_SHA1                "allow_sha1"
#define MILTER_CONF_SIGNER_MATCH              "signer_address_match"
#define MILTER_CONF_REQUIRE_RECIPIENTS        "require_signature_recipients"
#define MILTER_CONF_REQUIRE_SENDERS           "require_signature_senders"
#define MILTER_CONF_REQUIRE_USERS             "require_signature_users"
#define MILTER_CONF_GATEWAY_ADDRESS           "gateway_address"
#define MILTER_CONF_GATEWAY_REQUIRE_SIGNATURE "gateway_require_signature"
#define MILTER_CONF_ON_INTERNAL_ERROR         "on_internal_error"
#define MILTER_CONF_ON_CERTD_DOWN             "on_certd_down"

extern const HkConfSection milter_config_sections[];

G_END_DECLS
