/*
 * certd-config: the [certd] key table. contrib/hanko.conf documents every key listed
 * here (a test checks the two agree).
 */
#include "certd.h"
#include "hk-build-config.h"

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
        {0},
};

const HkConfSection certd_config_sections[] = {
        {CERTD_SECTION, certd_keys},
        {0},
};
