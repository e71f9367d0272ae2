/* hankoctl-user: the user commands of hankoctl. */
#include "hankoctl.h"

const CtlCommand ctl_user_commands[] = {
        {0},
};
