/*
 * hk-daemon: the skeleton every hanko daemon's main() hands control to.
 *
 * Parses -c/--config, -f/--foreground, --check-config, --version, -d/--debug; loads and
 * checks the configuration; sets up logging; runs the daemon's start hook; tells systemd
 * READY=1 when NOTIFY_SOCKET is set; reloads on SIGHUP (a bad new file is logged and the
 * old configuration kept); shuts down cleanly on SIGTERM/SIGINT.
 */
#pragma once

#include <glib.h>

#include "hk-config.h"

G_BEGIN_DECLS

typedef struct _HkDaemon HkDaemon;

typedef struct {
	const char *name;              /* program name, e.g. "hanko-certd" */
	const char *summary;           /* one line for --help */
	const HkConfSection *sections; /* sections this daemon reads */
	/* Builds state and listeners from the config. Called once. */
	gboolean (*start)(HkDaemon *daemon, GError **error);
	/* A new, valid configuration. Returning FALSE keeps the old one. May be NULL. */
	gboolean (*reload)(HkDaemon *daemon, HkConfig *config, GError **error);
	/* Tears down what start built. May be NULL. */
	void (*stop)(HkDaemon *daemon);
} HkDaemonSpec;

int hk_daemon_main(const HkDaemonSpec *spec, int argc, char **argv);

HkConfig *hk_daemon_get_config(HkDaemon *daemon);
void hk_daemon_set_data(HkDaemon *daemon, gpointer data);
gpointer hk_daemon_get_data(HkDaemon *daemon);
/* Asks the main loop to stop (as SIGTERM does); exit status as given. */
void hk_daemon_quit(HkDaemon *daemon, int status);

/*
 * The listening socket systemd passed for this name (FileDescriptorName=, or the only
 * one when there is a single unnamed fd), or -1 when not socket-activated. Each fd is
 * handed out once.
 */
int hk_daemon_take_listen_fd(HkDaemon *daemon, const char *name);

/* Resolves a group name ("" or NULL: (gid_t)-1) with an error naming it. */
gboolean hk_daemon_lookup_group(const char *name, gid_t *gid, GError **error);

G_END_DECLS
