/*
 * hk-daemon: the shared skeleton of hanko's daemons (options, configuration, logging,
 * signals, systemd readiness and socket activation, the main loop).
 *
 * Talks to: systemd (sd_notify, LISTEN_FDS), the daemon's own start/reload/stop hooks.
 * Must never: start with a configuration it has not checked, or let a bad reload
 * replace a good running configuration.
 *
 * The daemons do not fork into the background: run them under systemd (contrib/systemd)
 * or another supervisor. -f keeps the log on stderr instead of the journal or syslog.
 */
#include "hk-daemon.h"
#include "hk-build-config.h"
#include "hk-log.h"
#include "hk-socket.h"

#include <gio/gio.h>
#include <glib-unix.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define EXIT_USAGE  64 /* sysexits.h EX_USAGE */
#define EXIT_CONFIG 78 /* sysexits.h EX_CONFIG */

struct _HkDaemon {
	const HkDaemonSpec *spec;
	char *config_path;
	HkConfig *config;
	GMainLoop *loop;
	int status;
	gpointer data;
	int n_listen_fds;
	char **listen_names; /* from sd_listen_fds_with_names() */
	gboolean *listen_taken;
};

typedef struct {
	char *config_path;
	gboolean foreground;
	gboolean check_config;
	gboolean version;
	gboolean debug;
} HkDaemonOptions;

static gboolean
parse_options(const HkDaemonSpec *spec, int *argc, char ***argv, HkDaemonOptions *opts,
              GError **error)
{
	const GOptionEntry entries[] = {
	        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &opts->config_path,
	         "Configuration file (default " HANKO_CONFIG_FILE ")", "FILE"},
	        {"foreground", 'f', 0, G_OPTION_ARG_NONE, &opts->foreground,
	         "Log to stderr instead of the journal or syslog", NULL},
	        {"check-config", 0, 0, G_OPTION_ARG_NONE, &opts->check_config,
	         "Check the configuration and exit", NULL},
	        {"debug", 'd', 0, G_OPTION_ARG_NONE, &opts->debug, "Log debug messages", NULL},
	        {"version", 'V', 0, G_OPTION_ARG_NONE, &opts->version, "Print the version and exit",
	         NULL},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GOptionContext) context = g_option_context_new(NULL);

	g_option_context_set_summary(context, spec->summary);
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, argc, argv, error))
		return FALSE;
	if (*argc > 1) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		            "unexpected argument \"%s\"", (*argv)[1]);
		return FALSE;
	}
	if (opts->config_path == NULL)
		opts->config_path = g_strdup(HANKO_CONFIG_FILE);
	return TRUE;
}

static void
notify(const char *state)
{
	/* a no-op (returning 0) when NOTIFY_SOCKET is unset */
	int rc = sd_notify(0, state);

	if (rc < 0)
		g_warning("sd_notify: %s", g_strerror(-rc));
}

static gboolean
on_quit_signal(gpointer data)
{
	HkDaemon *daemon = data;

	g_message("shutting down");
	hk_daemon_quit(daemon, 0);
	return G_SOURCE_CONTINUE;
}

static void
reload(HkDaemon *daemon)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HkConfig) config = NULL;

	notify("RELOADING=1");
	config = hk_config_load(daemon->config_path, daemon->spec->sections, &error);
	if (config == NULL) {
		g_warning("reload failed, keeping the running configuration: %s", error->message);
	} else if (daemon->spec->reload != NULL && !daemon->spec->reload(daemon, config, &error)) {
		g_warning("reload failed, keeping the running configuration: %s", error->message);
	} else {
		hk_config_unref(daemon->config);
		daemon->config = g_steal_pointer(&config);
		g_message("configuration reloaded from %s", daemon->config_path);
	}
	notify("READY=1");
}

static gboolean
on_hup(gpointer data)
{
	reload(data);
	return G_SOURCE_CONTINUE;
}

static void
take_systemd_fds(HkDaemon *daemon)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names); /* 1: unset LISTEN_* for children */

	if (n < 0) {
		g_warning("socket activation: %s", g_strerror(-n));
		n = 0;
	}
	daemon->n_listen_fds = n;
	daemon->listen_names = names;
	daemon->listen_taken = g_new0(gboolean, MAX(n, 1));
}

static int
run(HkDaemon *daemon)
{
	g_autoptr(GError) error = NULL;
	guint sources[3];

	g_debug("open file limit: %lu", (unsigned long)hk_raise_file_limit());
	take_systemd_fds(daemon);
	daemon->loop = g_main_loop_new(NULL, FALSE);
	/* before start(): a signal that comes as soon as the socket exists must find its
	 * handler, not the default action; GLib holds it until the loop runs */
	sources[0] = g_unix_signal_add(SIGTERM, on_quit_signal, daemon);
	sources[1] = g_unix_signal_add(SIGINT, on_quit_signal, daemon);
	sources[2] = g_unix_signal_add(SIGHUP, on_hup, daemon);
	if (daemon->spec->start(daemon, &error)) {
		g_message("%s %s started", daemon->spec->name, HANKO_VERSION);
		notify("READY=1\nSTATUS=running");
		g_main_loop_run(daemon->loop);
		notify("STOPPING=1");
		if (daemon->spec->stop != NULL)
			daemon->spec->stop(daemon);
		g_message("%s stopped", daemon->spec->name);
	} else {
		/* not g_critical: that is for programming errors, and fatal under G_DEBUG */
		g_warning("cannot start: %s", error->message);
		daemon->status = 1;
	}
	for (guint i = 0; i < G_N_ELEMENTS(sources); i++)
		g_source_remove(sources[i]);
	return daemon->status;
}

static void
daemon_clear(HkDaemon *daemon)
{
	for (int i = 0; i < daemon->n_listen_fds; i++) {
		if (!daemon->listen_taken[i])
			close(SD_LISTEN_FDS_START + i);
	}
	g_strfreev(daemon->listen_names);
	g_free(daemon->listen_taken);
	g_clear_pointer(&daemon->loop, g_main_loop_unref);
	g_clear_pointer(&daemon->config, hk_config_unref);
	g_free(daemon->config_path);
}

int
hk_daemon_main(const HkDaemonSpec *spec, int argc, char **argv)
{
	HkDaemonOptions opts = {0};
	g_autoptr(GError) error = NULL;
	HkDaemon daemon = {.spec = spec};
	int status;

	g_set_prgname(spec->name);
	if (!parse_options(spec, &argc, &argv, &opts, &error)) {
		fprintf(stderr, "%s: %s (try --help)\n", spec->name, error->message);
		g_free(opts.config_path);
		return EXIT_USAGE;
	}
	daemon.config_path = opts.config_path; /* freed by daemon_clear() */
	if (opts.version) {
		printf("%s %s\n", spec->name, HANKO_VERSION);
		daemon_clear(&daemon);
		return 0;
	}
	daemon.config = hk_config_load(daemon.config_path, spec->sections, &error);
	if (daemon.config == NULL) {
		fprintf(stderr, "%s: %s\n", spec->name, error->message);
		daemon_clear(&daemon);
		return EXIT_CONFIG;
	}
	if (opts.check_config) {
		printf("%s: %s: configuration OK\n", spec->name, daemon.config_path);
		daemon_clear(&daemon);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	hk_log_init(spec->name, opts.foreground);
	hk_log_set_debug(opts.debug);
	status = run(&daemon);
	daemon_clear(&daemon);
	hk_log_flush();
	return status;
}

HkConfig *
hk_daemon_get_config(HkDaemon *daemon)
{
	return daemon->config;
}

void
hk_daemon_set_data(HkDaemon *daemon, gpointer data)
{
	daemon->data = data;
}

gpointer
hk_daemon_get_data(HkDaemon *daemon)
{
	return daemon->data;
}

void
hk_daemon_quit(HkDaemon *daemon, int status)
{
	daemon->status = status;
	g_main_loop_quit(daemon->loop);
}

int
hk_daemon_take_listen_fd(HkDaemon *daemon, const char *name)
{
	int only = -1;

	for (int i = 0; i < daemon->n_listen_fds; i++) {
		if (daemon->listen_taken[i])
			continue;
		if (daemon->listen_names && g_strcmp0(daemon->listen_names[i], name) == 0)
			only = i;
	}
	/* an unnamed socket unit passes its unit name; with one fd there is no doubt */
	if (only < 0 && daemon->n_listen_fds == 1 && !daemon->listen_taken[0])
		only = 0;
	if (only < 0)
		return -1;
	daemon->listen_taken[only] = TRUE;
	return SD_LISTEN_FDS_START + only;
}

gboolean
hk_daemon_lookup_group(const char *name, gid_t *gid, GError **error)
{
	struct group gr, *res = NULL;
	char buf[4096];
	guint64 number;

	*gid = (gid_t)-1;
	if (name == NULL || *name == '\0')
		return TRUE;
	if (g_ascii_string_to_unsigned(name, 10, 0, G_MAXUINT32 - 1, &number, NULL)) {
		*gid = (gid_t)number;
		return TRUE;
	}
	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || res == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "group \"%s\" does not exist",
		            name);
		return FALSE;
	}
	*gid = gr.gr_gid;
	return TRUE;
}
