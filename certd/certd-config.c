/*
 * certd-config: the [certd] key table. contrib/hanko.conf documents every key listed
 * here (test-certd checks the two agree).
 */
#include "certd.h"
#include "hk-build-config.h"

static const char *const key_choices[] = {"rsa:2048", "rsa:3072", "rsa:4096",
                                          "ec:p256",  "ec:p384",  NULL};
static const char *const profile_choices[] = {"client", "smime", "both", NULL};
static const char *const p12_choices[] = {"compat", "modern", NULL};

#define DAY_MS (24 * 3600 * G_GINT64_CONSTANT(1000))

static const HkConfKey certd_keys[] = {
        {CERTD_CONF_SOCKET, HK_CONF_PATH, HANKO_RUNSTATEDIR "/certd.sock", 0, 0, NULL,
         "UNIX socket that hankoctl, hanko-policyd and hanko-milter connect to"},
        {CERTD_CONF_SOCKET_MODE, HK_CONF_MODE, "0660", 0, 0666, NULL,
         "Mode of the socket; connecting needs write permission"},
        {CERTD_CONF_SOCKET_GROUP, HK_CONF_STRING, "", 0, 0, NULL,
         "Group of the socket; empty keeps the daemon's own group"},
        {CERTD_CONF_ADMIN_GROUP, HK_CONF_STRING, "hanko-admin", 0, 0, NULL,
         "Members may run every admin operation (root always may)"},
        {CERTD_CONF_SERVICE_GROUP, HK_CONF_STRING, "hanko", 0, 0, NULL,
         "Members (hanko-policyd, hanko-milter) may run lookups and register operations"},
        {CERTD_CONF_MAX_CONN_PER_UID, HK_CONF_INT, "64", 1, 100000, NULL,
         "Connections one user id may hold open at once"},
        {CERTD_CONF_STATE_DIR, HK_CONF_PATH, HANKO_STATEDIR "/certd", 0, 0, NULL,
         "Where certd keeps its database, the CA and every certificate's files"},
        {CERTD_CONF_DEFAULT_KEY, HK_CONF_ENUM, "rsa:2048", 0, 0, key_choices,
         "Key of client certificates when cert issue has no --key"},
        {CERTD_CONF_DEFAULT_DAYS, HK_CONF_INT, "365", 1, 825, NULL,
         "Validity of client certificates when cert issue has no --days"},
        {CERTD_CONF_DEFAULT_PROFILE, HK_CONF_ENUM, "both", 0, 0, profile_choices,
         "What client certificates are for: client (TLS), smime, or both"},
        {CERTD_CONF_P12_FORMAT, HK_CONF_ENUM, "compat", 0, 0, p12_choices,
         "PKCS#12 encryption: compat (3DES, SHA-1 MAC) or modern (AES-256, SHA-256 MAC)"},
        {CERTD_CONF_KEEP_P12_PASSWORD, HK_CONF_BOOL, "yes", 0, 0, NULL,
         "Keep generated P12 passwords so admins can read them again later"},
        {CERTD_CONF_CRL_URL, HK_CONF_STRING, "", 0, 0, NULL,
         "CRL distribution point put into issued certificates; empty: none"},
        {CERTD_CONF_CRL_VALIDITY, HK_CONF_DURATION, "7d", 3600 * 1000, 365 * DAY_MS, NULL,
         "How long a CRL is valid (its nextUpdate); it is renewed halfway"},
        {CERTD_CONF_SERVICE_DIR, HK_CONF_PATH, HANKO_STATEDIR "/certd/services", 0, 0, NULL,
         "Where cert assign writes each service's key and chain file"},
        {CERTD_CONF_RELOAD_SMTPD, HK_CONF_STRING, "/usr/sbin/postfix reload", 0, 0, NULL,
         "Command run after a certificate is assigned to smtpd; empty: none"},
        {CERTD_CONF_RELOAD_SMTP, HK_CONF_STRING, "/usr/sbin/postfix reload", 0, 0, NULL,
         "Command run after a certificate is assigned to smtp; empty: none"},
        {CERTD_CONF_RELOAD_SUBMISSION, HK_CONF_STRING, "/usr/sbin/postfix reload", 0, 0, NULL,
         "Command run after a certificate is assigned to submission; empty: none"},
        {CERTD_CONF_RELOAD_GATEWAY, HK_CONF_STRING, "", 0, 0, NULL,
         "Command run after a certificate is assigned to the S/MIME gateway; empty: none"},
        {CERTD_CONF_RELOAD_TIMEOUT, HK_CONF_DURATION, "60s", 1000, 3600 * 1000, NULL,
         "How long a reload command may run before it is killed"},
        {CERTD_CONF_IDENTITY_USERS, HK_CONF_LIST, "hanko-milter", 0, 0, NULL,
         "Users (besides root) that may fetch the gateway's private key: hanko-milter's"},
        {CERTD_CONF_EXPIRY_WARNING_DAYS, HK_CONF_INT, "30", 1, 365, NULL,
         "Warn daily about in-use certificates expiring within this many days"},
        {0},
};

const HkConfSection certd_config_sections[] = {
        {CERTD_SECTION, certd_keys},
        {0},
};
