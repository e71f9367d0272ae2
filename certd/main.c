/* hanko-certd: wires the certd server into the shared daemon skeleton. */
#include "certd.h"

int
main(int argc, char **argv)
{
	return hk_daemon_main(&certd_daemon_spec, argc, argv);
}
