/*
 * milter-filter: the libmilter glue. Each callback hands its data to milter-message and
 * milter_filter_eom() applies the verdict with smfi_*; nothing is decided here.
 *
 * libmilter runs its own accept loop and a thread per connection; milter-server.c runs
 * smfi_main() in a thread of its own and keeps the GLib main loop (signals, reload, certd
 * events) in the main thread. libmilter's signal thread would stop the filter on SIGHUP:
 * the main thread keeps SIGHUP, SIGTERM and SIGINT unblocked with GLib's handlers, and
 * Linux hands a process-directed signal to the main thread when it does not block it.
 *
 * Talks to: Postfix (through libmilter), milter-message.
 * Must never: return from a callback without a verdict Postfix understands, or leave a
 * message's state behind after abort or close.
 */
#include "milter-filter.h"
#include "hk-socket.h"
#include "milter-message.h"

#include <errno.h>
#include <gio/gio.h>
#include <libmilter/mfapi.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPLACE_CHUNK 65535

typedef struct {
	unsigned long no_reply; /* the SMFIP_NR_* steps negotiated */
	MilterMessage *msg;
	gboolean failed; /* spooling failed: on_internal_error decides at the end */
} Conn;

static MilterFilterRuntimeFunc runtime_func;
static gpointer runtime_data;

static Conn *
conn_get(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

static void
conn_reset(Conn *conn)
{
	g_clear_pointer(&conn->msg, milter_message_free);
	conn->failed = FALSE;
}

/* The reply for a step: none at all when the MTA said it does not wait for one. */
static sfsistat
step_done(Conn *conn, unsigned long step)
{
	return conn->no_reply & step ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static Conn *
conn_ensure(SMFICTX *ctx)
{
	Conn *conn = smfi_getpriv(ctx);

	if (conn == NULL) {
		conn = g_new0(Conn, 1);
		smfi_setpriv(ctx, conn);
	}
	return conn;
}

static sfsistat
on_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr)
{
	return step_done(conn_ensure(ctx), SMFIP_NR_CONN);
}

static sfsistat
on_envfrom(SMFICTX *ctx, char **argv)
{
	Conn *conn = conn_get(ctx);
	g_autoptr(MilterRuntime) rt = runtime_func(runtime_data);

	conn_reset(conn);
	conn->msg = milter_message_new(rt);
	milter_message_set_sender(conn->msg, argv[0]);
	return SMFIS_CONTINUE;
}

/* smfi_setreply takes a printf-like text: a literal % must be doubled, CR/LF cannot be. */
static void
set_reply(SMFICTX *ctx, const char *rcode, const char *xcode, const char *text)
{
	GString *safe = g_string_new(NULL);

	for (const char *p = text; *p; p++) {
		if (*p == '%')
			g_string_append(safe, "%%");
		else if (*p != '\r' && *p != '\n')
			g_string_append_c(safe, *p);
	}
	smfi_setreply(ctx, (char *)rcode, (char *)xcode, safe->str);
	g_string_free(safe, TRUE);
}

static sfsistat
on_envrcpt(SMFICTX *ctx, char **argv)
{
	Conn *conn = conn_get(ctx);
	g_autofree char *why = NULL;

	if (conn->msg == NULL)
		return SMFIS_CONTINUE;
	if (!milter_message_add_rcpt(conn->msg, argv[0], &why)) {
		set_reply(ctx, "452", "4.5.3", why);
		return SMFIS_TEMPFAIL;
	}
	return SMFIS_CONTINUE;
}

static sfsistat
on_header(SMFICTX *ctx, char *name, char *value)
{
	Conn *conn = conn_get(ctx);

	if (conn->msg != NULL)
		milter_message_add_header(conn->msg, name, value);
	return step_done(conn, SMFIP_NR_HDR);
}

static sfsistat
on_body(SMFICTX *ctx, unsigned char *data, size_t len)
{
	Conn *conn = conn_get(ctx);
	g_autoptr(GError) error = NULL;

	if (conn->msg != NULL && !conn->failed &&
	    !milter_message_add_body(conn->msg, data, len, &error)) {
		g_warning("%s", error->message);
		conn->failed = TRUE;
	}
	return step_done(conn, SMFIP_NR_BODY);
}

static void
apply_changes(SMFICTX *ctx, const MilterVerdict *v)
{
	gsize len = 0;
	const guint8 *body = v->new_body ? g_bytes_get_data(v->new_body, &len) : NULL;

	for (guint i = 0; i < v->remove->len; i++) {
		const MilterHeaderRef *ref = &g_array_index(v->remove, MilterHeaderRef, i);

		smfi_chgheader(ctx, ref->name, (int)ref->index, NULL);
	}
	for (guint i = 0; v->add != NULL && i < v->add->len; i++) {
		const MilterMimeHeader *h = v->add->pdata[i];

		smfi_addheader(ctx, h->name, h->value);
	}
	if (v->auth_results != NULL)
		smfi_insheader(ctx, 0, (char *)"Authentication-Results", v->auth_results);
	for (gsize done = 0; v->new_body != NULL && (done < len || len == 0);) {
		gsize n = MIN(len - done, REPLACE_CHUNK);

		smfi_replacebody(ctx, (unsigned char *)body + done, (int)n);
		done += n;
		if (len == 0)
			break;
	}
}

static sfsistat
on_eom(SMFICTX *ctx)
{
	Conn *conn = conn_get(ctx);
	g_autoptr(MilterVerdict) v = NULL;
	sfsistat status = SMFIS_CONTINUE;

	if (conn->msg == NULL)
		return SMFIS_CONTINUE;
	milter_message_set_queue_id(conn->msg, smfi_getsymval(ctx, (char *)"i"));
	if (conn->failed)
		milter_message_mark_failed(conn->msg);
	v = milter_message_finish(conn->msg);
	g_message("%s", v->log);
	switch (v->action) {
	case MILTER_VERDICT_ACCEPT:
		apply_changes(ctx, v);
		break;
	case MILTER_VERDICT_REJECT:
		set_reply(ctx, v->rcode, v->xcode, v->text);
		status = SMFIS_REJECT;
		break;
	case MILTER_VERDICT_TEMPFAIL:
		set_reply(ctx, v->rcode, v->xcode, v->text);
		status = SMFIS_TEMPFAIL;
		break;
	case MILTER_VERDICT_DISCARD:
		status = SMFIS_DISCARD;
		break;
	}
	conn_reset(conn);
	return status;
}

static sfsistat
on_abort(SMFICTX *ctx)
{
	Conn *conn = conn_get(ctx);

	if (conn != NULL)
		conn_reset(conn);
	return SMFIS_CONTINUE;
}

static sfsistat
on_close(SMFICTX *ctx)
{
	Conn *conn = conn_get(ctx);

	if (conn != NULL) {
		conn_reset(conn);
		g_free(conn);
		smfi_setpriv(ctx, NULL);
	}
	return SMFIS_CONTINUE;
}

/*
 * Asks Postfix not to wait for a reply where hanko never has one to give (header fields,
 * body chunks, connect) and not to send what it does not look at (HELO, EOH, DATA,
 * unknown commands): fewer round trips per message. Only what the MTA offers is taken.
 */
static sfsistat
on_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2, unsigned long f3,
             unsigned long *pf0, unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	const unsigned long wanted = SMFIP_NR_HDR | SMFIP_NR_BODY | SMFIP_NR_CONN | SMFIP_NOHELO |
	                             SMFIP_NOEOH | SMFIP_NODATA | SMFIP_NOUNKNOWN;
	const unsigned long actions = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY;

	if ((f0 & actions) != actions)
		return SMFIS_REJECT; /* the MTA cannot apply what the checks need */
	*pf0 = actions;
	*pf1 = f1 & wanted;
	conn_ensure(ctx)->no_reply = *pf1 & (SMFIP_NR_HDR | SMFIP_NR_BODY | SMFIP_NR_CONN);
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

static struct smfiDesc filter = {
        .xxfi_name = (char *)"hanko-milter",
        .xxfi_version = SMFI_VERSION,
        .xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY,
        .xxfi_connect = on_connect,
        .xxfi_envfrom = on_envfrom,
        .xxfi_envrcpt = on_envrcpt,
        .xxfi_header = on_header,
        .xxfi_body = on_body,
        .xxfi_eom = on_eom,
        .xxfi_abort = on_abort,
        .xxfi_close = on_close,
        .xxfi_negotiate = on_negotiate,
};

/* ----- the socket ----- */

/* "unix:PATH" or "inet:HOST:PORT" as hanko.conf writes it, in libmilter's words. */
static char *
conn_spec(const char *listen, char **path, GError **error)
{
	const char *colon;

	*path = NULL;
	if (g_str_has_prefix(listen, "unix:") && listen[5] == '/') {
		*path = g_strdup(listen + 5);
		return g_strdup(listen);
	}
	if (g_str_has_prefix(listen, "inet:") && (colon = strrchr(listen + 5, ':')) != NULL &&
	    colon > listen + 5 && colon[1] != '\0') {
		g_autofree char *host = g_strndup(listen + 5, (gsize)(colon - listen - 5));

		return g_strdup_printf("inet:%s@%s", colon + 1, host);
	}
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
	            "[milter] listen: \"%s\" is neither unix:/PATH nor inet:HOST:PORT", listen);
	return NULL;
}

gboolean
milter_filter_open(const char *listen, guint mode, gid_t group, MilterFilterRuntimeFunc func,
                   gpointer data, GError **error)
{
	g_autofree char *path = NULL;
	g_autofree char *spec = conn_spec(listen, &path, error);
	mode_t old;
	int rc;

	if (spec == NULL || (path != NULL && !hk_unix_remove_stale(path, error)))
		return FALSE;
	runtime_func = func;
	runtime_data = data;
	if (smfi_register(filter) != MI_SUCCESS || smfi_setconn(spec) != MI_SUCCESS) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "libmilter refused %s", spec);
		return FALSE;
	}
	/* never wider than mode, not even between bind and chmod */
	old = umask(0177);
	rc = smfi_opensocket(true);
	umask(old);
	if (rc != MI_SUCCESS) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot listen on %s", listen);
		return FALSE;
	}
	if (path != NULL && group != (gid_t)-1 && chown(path, (uid_t)-1, group) != 0)
		return hk_set_errno_error(error, errno, "chown", path);
	if (path != NULL && chmod(path, mode) != 0)
		return hk_set_errno_error(error, errno, "chmod", path);
	return TRUE;
}

static gint stopping;
static GSourceFunc exit_func;
static gpointer exit_data;

static gpointer
run(gpointer data)
{
	int rc = smfi_main();

	/* not asked to stop: libmilter's signal thread took a signal meant for the main
	 * thread, or its listener failed; the main loop must know */
	if (!g_atomic_int_get(&stopping))
		g_main_context_invoke(NULL, exit_func, exit_data);
	return GINT_TO_POINTER(rc);
}

GThread *
milter_filter_start(GSourceFunc on_exit, gpointer data)
{
	exit_func = on_exit;
	exit_data = data;
	return g_thread_new("milter", run, NULL);
}

void
milter_filter_stop(GThread *thread)
{
	g_atomic_int_set(&stopping, 1);
	smfi_stop();
	g_thread_join(thread);
}
