/*
 * certd-smime: S/MIME recipient certificates by mail address: smime.register,
 * smime.lookup, smime.unregister.
 */
#include "certd.h"
#include "hk-certd-proto.h"

const HkIpcOp certd_smime_ops[] = {
        {0},
};
