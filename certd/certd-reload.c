/*
 * certd-reload: runs a service's reload command after cert.assign installed its
 * certificate ([certd] reload_smtpd ... reload_gateway), and ends the request with the
 * command's exit status and output once it is done.
 *
 * The command runs in its own process group without a shell; its output is read
 * asynchronously (the first RELOAD_OUTPUT_MAX bytes are kept) and it is killed, with
 * everything it started, after [certd] reload_timeout.
 * Talks to: the reload commands (GSubprocess), the IPC request waiting for them.
 * Must never: block the main loop while a command runs, leave a command running past its
 * timeout, or let certd shut down under a command still in flight.
 */
#include "certd.h"
#include "hk-certd-proto.h"

#include <gio/gio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RELOAD_OUTPUT_MAX 4096 /* bytes of a reload command's output kept for the reply */
#define RELOAD_GRACE_MS   500  /* for its output once the command has exited */

/* A reload command in flight; the request waits for its outcome. */
typedef struct {
	CertdState *state;
	HkIpcRequest *req;
	json_object *result;
	char *service;
	char *command;
	GSubprocess *proc;
	pid_t pgid; /* its process group; 0: it ended before we saw it */
	GCancellable *cancel;
	GByteArray *output;
	guint8 buf[1024];
	guint timeout_id;
	guint timeout_s;
	gboolean exited;
	gboolean eof;
	gboolean timed_out;
} Reload;

static void
reload_free(Reload *r)
{
	g_clear_handle_id(&r->timeout_id, g_source_remove);
	json_object_put(r->result);
	g_free(r->service);
	g_free(r->command);
	g_clear_object(&r->proc);
	g_clear_object(&r->cancel);
	g_byte_array_unref(r->output);
	g_free(r);
}

static json_object *
reload_json(const char *command, int status, const char *output, gsize len, gboolean timed_out)
{
	json_object *reload = json_object_new_object();
	g_autofree char *text = g_utf8_make_valid(output ? output : "", (gssize)len);

	json_object_object_add(reload, HK_CERTD_KEY_COMMAND, json_object_new_string(command));
	json_object_object_add(reload, HK_CERTD_KEY_EXIT_STATUS, json_object_new_int(status));
	json_object_object_add(reload, HK_CERTD_KEY_OUTPUT, json_object_new_string(text));
	json_object_object_add(reload, HK_CERTD_KEY_TIMED_OUT, json_object_new_boolean(timed_out));
	return reload;
}

/* 0..255 as the command exited, 128 + n when signal n ended it (as shells report it). */
static int
reload_status(GSubprocess *proc)
{
	if (g_subprocess_get_if_exited(proc))
		return g_subprocess_get_exit_status(proc);
	return 128 + g_subprocess_get_term_sig(proc);
}

static void
reload_log(const Reload *r, int status)
{
	if (r->timed_out)
		g_warning("reload of %s: \"%s\" was killed after %u s", r->service, r->command,
		          r->timeout_s);
	else if (status != 0)
		g_warning("reload of %s: \"%s\" exited with status %d", r->service, r->command,
		          status);
	else
		g_message("reload of %s: \"%s\" succeeded", r->service, r->command);
}

static void
reload_finish(Reload *r)
{
	CertdState *state = r->state;
	int status = reload_status(r->proc);

	reload_log(r, status);
	json_object_object_add(r->result, HK_CERTD_KEY_RELOAD,
	                       reload_json(r->command, status, (const char *)r->output->data,
	                                   r->output->len, r->timed_out));
	hk_ipc_request_return(r->req, g_steal_pointer(&r->result));
	reload_free(r);
	state->work_in_flight--;
}

static void
reload_maybe_finish(Reload *r)
{
	if (r->exited && r->eof)
		reload_finish(r);
}

static void reload_read_next(Reload *r);

static void
reload_on_read(GObject *source, GAsyncResult *res, gpointer data)
{
	Reload *r = data;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), res, NULL);

	if (n > 0) {
		gsize room = RELOAD_OUTPUT_MAX - MIN(r->output->len, RELOAD_OUTPUT_MAX);

		g_byte_array_append(r->output, r->buf, (guint)MIN((gsize)n, room));
		reload_read_next(r); /* the rest is read and dropped, so the command never blocks */
		return;
	}
	r->eof = TRUE; /* end of output, cancelled, or an error: done reading either way */
	reload_maybe_finish(r);
}

static void
reload_read_next(Reload *r)
{
	g_input_stream_read_async(g_subprocess_get_stdout_pipe(r->proc), r->buf, sizeof(r->buf),
	                          G_PRIORITY_DEFAULT, r->cancel, reload_on_read, r);
}

static gboolean reload_on_timeout(gpointer data);

static void
reload_on_exit(GObject *source, GAsyncResult *res, gpointer data)
{
	Reload *r = data;

	g_subprocess_wait_finish(G_SUBPROCESS(source), res, NULL);
	r->exited = TRUE;
	if (!r->eof) {
		/* something it started in the background may keep the pipe open: read what is
		 * there, but do not wait for that */
		g_clear_handle_id(&r->timeout_id, g_source_remove);
		r->timeout_id = g_timeout_add(RELOAD_GRACE_MS, reload_on_timeout, r);
	}
	reload_maybe_finish(r);
}

/* The command overran: kill its whole process group and stop waiting for its output
 * (a child it left behind could hold the pipe open). */
static gboolean
reload_on_timeout(gpointer data)
{
	Reload *r = data;

	r->timeout_id = 0;
	if (!r->exited && r->pgid > 0) {
		r->timed_out = TRUE;
		kill(-r->pgid, SIGKILL);
	}
	g_cancellable_cancel(r->cancel);
	return G_SOURCE_REMOVE;
}

static void
reload_child_setup(gpointer data)
{
	setpgid(0, 0); /* its own process group, so a timeout kills everything it started */
}

static gboolean
reload_spawn(Reload *r, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
	        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
	g_auto(GStrv) argv = NULL;
	const char *id;

	if (!g_shell_parse_argv(r->command, NULL, &argv, error))
		return FALSE;
	g_subprocess_launcher_set_child_setup(launcher, reload_child_setup, NULL, NULL);
	r->proc = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv, error);
	if (r->proc == NULL)
		return FALSE;
	/* no identifier: GLib has reaped it already, there is nothing left to kill */
	id = g_subprocess_get_identifier(r->proc);
	r->pgid = id != NULL ? (pid_t)atoi(id) : 0;
	return TRUE;
}

/* A command that cannot even start is reported as a shell would: status 127. */
static void
reload_fail(Reload *r, const GError *error)
{
	g_autofree char *output = g_strdup_printf("cannot run the command: %s", error->message);

	g_warning("reload of %s: %s", r->service, output);
	json_object_object_add(r->result, HK_CERTD_KEY_RELOAD,
	                       reload_json(r->command, 127, output, strlen(output), FALSE));
	hk_ipc_request_return(r->req, g_steal_pointer(&r->result));
	reload_free(r);
}

void
certd_reload_start(CertdState *state, HkIpcRequest *req, const char *service,
                   const char *reload_key, json_object *result)
{
	const char *command = hk_config_get_string(state->config, CERTD_SECTION, reload_key);
	g_autoptr(GError) error = NULL;
	Reload *r;

	if (command == NULL || strspn(command, " \t") == strlen(command)) {
		json_object_object_add(result, HK_CERTD_KEY_RELOAD, NULL);
		hk_ipc_request_return(req, result);
		return;
	}
	r = g_new0(Reload, 1);
	r->state = state;
	r->req = req;
	r->result = result;
	r->service = g_strdup(service);
	r->command = g_strdup(command);
	r->output = g_byte_array_new();
	r->cancel = g_cancellable_new();
	r->timeout_s = (guint)(hk_config_get_duration_ms(state->config, CERTD_SECTION,
	                                                 CERTD_CONF_RELOAD_TIMEOUT) /
	                       1000);
	if (!reload_spawn(r, &error)) {
		reload_fail(r, error);
		return;
	}
	/* certd_work_drain() at shutdown waits for the command, so state outlives it */
	state->work_in_flight++;
	r->timeout_id = g_timeout_add_seconds(MAX(r->timeout_s, 1), reload_on_timeout, r);
	reload_read_next(r);
	g_subprocess_wait_async(r->proc, NULL, reload_on_exit, r);
}
