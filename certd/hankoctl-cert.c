/* hankoctl-cert: the cert commands of hankoctl. */
#include "hankoctl.h"

const CtlCommand ctl_cert_commands[] = {
        {0},
};
