/*
 * milter-config: the [milter] key table. contrib/hanko.conf documents every key.
 */
#include "milter.h"
#include "hk-build-config.h"

static const char *const oversize_choices[] = {"accept", "tempfail", "reject", NULL};
static const char *const match_choices[] = {"from", "from_and_sender", "none", NULL};
static const char *const failure_choices[] = {"tempfail", "accept", NULL};

static const HkConfKey milter_keys[] = {
        {MILTER_CONF_LISTEN, HK_CONF_STRING, "unix:" HANKO_RUNSTATEDIR "/milter.sock", 0, 0, NULL,
         "Where Postfix's smtpd_milters connects: unix:PATH or inet:127.0.0.1:PORT"},
        {MILTER_CONF_SOCKET_MODE, HK_CONF_MODE, "0660", 0, 0666, NULL,
         "Mode of the milter's UNIX socket"},
        {MILTER_CONF_SOCKET_GROUP, HK_CONF_STRING, "", 0, 0, NULL,
         "Group of that socket (e.g. postfix); empty keeps the daemon's own"},
        {MILTER_CONF_CERTD_SOCKET, HK_CONF_PATH, HANKO_RUNSTATEDIR "/certd.sock", 0, 0, NULL,
         "hanko-certd's socket"},
        {MILTER_CONF_CERTD_TIMEOUT, HK_CONF_DURATION, "5s", 10, 60 * 1000, NULL,
         "Longest wait for certd before on_certd_down applies"},
        {MILTER_CONF_AUTHSERV_ID, HK_CONF_STRING, "", 0, 0, NULL,
         "authserv-id of the Authentication-Results header; empty: the host name"},
        {MILTER_CONF_TMP_DIR, HK_CONF_PATH, HANKO_STATEDIR "/milter/tmp", 0, 0, NULL,
         "Where message bodies over 256 KiB are spooled while they are checked (unlinked files)"},
        {MILTER_CONF_MAX_SIZE, HK_CONF_SIZE, "25M", 1024, G_GINT64_CONSTANT(1) << 31, NULL,
         "Largest message the S/MIME checks take on"},
        {MILTER_CONF_ON_OVERSIZE, HK_CONF_ENUM, "accept", 0, 0, oversize_choices,
         "What happens to a larger one (a required signature or the gateway: always reject)"},
        {MILTER_CONF_MAX_DEPTH, HK_CONF_INT, "8", 1, 32, NULL,
         "Deepest S/MIME and multipart nesting looked into"},
        {MILTER_CONF_TRUST_HANKO_CA, HK_CONF_BOOL, "yes", 0, 0, NULL,
         "Trust signers certified by hanko's CA (status checked with certd)"},
        {MILTER_CONF_CA_FILE, HK_CONF_STRING, "", 0, 0, NULL,
         "PEM file of further trusted CAs (external issuers); empty: none"},
        {MILTER_CONF_CA_PATH, HK_CONF_STRING, "", 0, 0, NULL,
         "Hashed directory (c_rehash) of further CAs and their CRLs; empty: none"},
        {MILTER_CONF_CRL_FILE, HK_CONF_STRING, "", 0, 0, NULL,
         "PEM file of CRLs of external issuers; an issuer with a CRL is checked against it"},
        {MILTER_CONF_ALLOW_SHA1, HK_CONF_BOOL, "no", 0, 0, NULL, "Count SHA-1 signatures as valid"},
        {MILTER_CONF_SIGNER_MATCH, HK_CONF_ENUM, "from", 0, 0, match_choices,
         "The signer certificate must name the From address (and the envelope sender)"},
        {MILTER_CONF_REQUIRE_RECIPIENTS, HK_CONF_LIST, "", 0, 0, NULL,
         "Mail to these addresses must be signed"},
        {MILTER_CONF_REQUIRE_SENDERS, HK_CONF_LIST, "", 0, 0, NULL,
         "Mail from these addresses or @domains must be signed"},
        {MILTER_CONF_REQUIRE_USERS, HK_CONF_BOOL, "yes", 0, 0, NULL,
         "Honour certd's per-user require_signature attribute"},
        {MILTER_CONF_GATEWAY_ADDRESS, HK_CONF_STRING, "", 0, 0, NULL,
         "The S/MIME gateway's address (decrypted with certd's gateway identity); empty: none"},
        {MILTER_CONF_GATEWAY_REQUIRE_SIGNATURE, HK_CONF_BOOL, "yes", 0, 0, NULL,
         "Mail to the gateway address must be signed"},
        {MILTER_CONF_ON_INTERNAL_ERROR, HK_CONF_ENUM, "tempfail", 0, 0, failure_choices,
         "What an internal error does to a message"},
        {MILTER_CONF_ON_CERTD_DOWN, HK_CONF_ENUM, "tempfail", 0, 0, failure_choices,
         "What happens when certd is needed but does not answer"},
        {0},
};

const HkConfSection milter_config_sections[] = {
        {MILTER_SECTION, milter_keys},
        {0},
};
