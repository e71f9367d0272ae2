/* hanko-policyd: wires the policy and auth server into the shared daemon skeleton. */
#include "policyd-server.h"

int
main(int argc, char **argv)
{
	return hk_daemon_main(&policyd_daemon_spec, argc, argv);
}
