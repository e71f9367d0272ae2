/* hankoctl-servercert: the servercert commands of hankoctl. */
#include "hankoctl.h"

const CtlCommand ctl_servercert_commands[] = {
        {0},
};
