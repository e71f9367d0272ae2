/*
 * certd-servercert: server certificates (seed 002): csr.create, cert.import,
 * cert.export, cert.assign.
 */
#include "certd.h"
#include "hk-certd-proto.h"

const HkIpcOp certd_servercert_ops[] = {
        {0},
};
