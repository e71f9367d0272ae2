/* hanko-milter: wires the S/MIME filter into the shared daemon skeleton. */
#include "milter-server.h"

int
main(int argc, char **argv)
{
	return hk_daemon_main(&milter_daemon_spec, argc, argv);
}
