/*
 * milter-server: hanko-milter's start, reload and stop hooks for the daemon skeleton.
 */
#pragma once

#include "milter.h"

extern const HkDaemonSpec milter_daemon_spec;
