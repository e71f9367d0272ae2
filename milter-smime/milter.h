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
#define MILTER_CONF_ADMIN_SOCKET              "admin_socket"
#define MILTER_CONF_ADMIN_SOCKET_MODE         "admin_socket_mode"
#define MILTER_CONF_ADMIN_GROUP               "admin_group"

/* [milter] keys of the fax gateway */
#define MILTER_CONF_FAX                    "fax"
#define MILTER_CONF_FAX_DOMAIN             "fax_domain"
#define MILTER_CONF_REGISTRATION_ADDRESS   "registration_address"
#define MILTER_CONF_FAX_SPOOL_DIR          "fax_spool_dir"
#define MILTER_CONF_FAX_BACKEND            "fax_backend"
#define MILTER_CONF_FAX_PLUGIN_DIR         "fax_plugin_dir"
#define MILTER_CONF_FAX_MAX_DESTINATIONS   "fax_max_destinations"
#define MILTER_CONF_FAX_RESOLUTION         "fax_resolution"
#define MILTER_CONF_FAX_CODING             "fax_coding"
#define MILTER_CONF_FAX_FONT               "fax_font"
#define MILTER_CONF_FAX_HEADER             "fax_header"
#define MILTER_CONF_FAX_COVER_PAGE         "fax_cover_page"
#define MILTER_CONF_FAX_MAX_PAGES          "fax_max_pages"
#define MILTER_CONF_FAX_UNSUPPORTED        "fax_unsupported"
#define MILTER_CONF_FAX_MAX_TRIES          "fax_max_tries"
#define MILTER_CONF_FAX_RETRY_DELAY        "fax_retry_delay"
#define MILTER_CONF_FAX_STATION_ID         "fax_station_id"
#define MILTER_CONF_FAX_INTL_PREFIX        "fax_international_prefix"
#define MILTER_CONF_FAX_DIAL_INTL          "fax_dial_international"
#define MILTER_CONF_FAX_LOCAL_PREFIX       "fax_local_prefix"
#define MILTER_CONF_FAX_STRIP_LOCAL_PREFIX "fax_strip_local_prefix"
#define MILTER_CONF_FAX_DIAL_PREFIX        "fax_dial_prefix"
#define MILTER_CONF_FAX_NOTIFY             "fax_notify"
#define MILTER_CONF_FAX_NOTIFY_ADDRESS     "fax_notify_address"
#define MILTER_CONF_FAX_NOTIFY_CIPHER      "fax_notify_cipher"
#define MILTER_CONF_FAX_FROM_NAME          "fax_from_name"
#define MILTER_CONF_FAX_SENDMAIL           "fax_sendmail"

/* [fax.file]: the built-in backend; a plugin NAME has its keys in [fax.NAME] */
#define MILTER_FAX_FILE_SECTION    "fax.file"
#define MILTER_CONF_FILE_OUTBOX    "outbox"
#define MILTER_CONF_FILE_FAIL_LIST "fail_numbers"

/* [fax.modem]: the modem plugin (hanko-fax-modem.so), keys read through FaxPluginHost */
#define MILTER_FAX_MODEM_SECTION         "fax.modem"
#define MILTER_CONF_MODEM_DEVICE         "device"
#define MILTER_CONF_MODEM_SPEED          "speed"
#define MILTER_CONF_MODEM_FLOW           "flow"
#define MILTER_CONF_MODEM_LOCK_DIR       "lock_dir"
#define MILTER_CONF_MODEM_INIT           "init"
#define MILTER_CONF_MODEM_RESET          "reset"
#define MILTER_CONF_MODEM_CLASS          "class"
#define MILTER_CONF_MODEM_DIAL_COMMAND   "dial_command"
#define MILTER_CONF_MODEM_CMD_TIMEOUT    "command_timeout"
#define MILTER_CONF_MODEM_ANSWER_TIMEOUT "answer_timeout"
#define MILTER_CONF_MODEM_PAGE_TIMEOUT   "page_timeout"
#define MILTER_CONF_MODEM_STATION_ID     "station_id"
#define MILTER_CONF_MODEM_ECM            "ecm"
#define MILTER_CONF_MODEM_MAX_RATE       "max_rate"

extern const HkConfSection milter_config_sections[];

G_END_DECLS
