/*
 * certd-client: client and S/MIME certificates for users (seed 001): cert.issue,
 * cert.list, cert.show, cert.p12, cert.revoke, and cert.lookup for hanko-policyd.
 */
#include "certd.h"
#include "hk-certd-proto.h"

const HkIpcOp certd_client_ops[] = {
        {0},
};
