/*
 * certd-users: the user directory: user.*, auth.verify and fax.verify.
 */
#include "certd.h"
#include "hk-certd-proto.h"

const HkIpcOp certd_user_ops[] = {
        {0},
};
