/*
 * milter-certd: pooled synchronous certd connections for the filter threads.
 */
#include "milter-certd.h"
#include "hk-ipc.h"

#define POOL_MAX 16 /* idle connections kept; more threads simply open their own */

struct _MilterCertd {
	char *socket;
	guint timeout_ms;
	GMutex lock;
	GPtrArray *idle; /* HkIpcClient */
	gboolean down;   /* an outage has been logged and not yet its end */
};

MilterCertd *
milter_certd_new(const char *socket, guint timeout_ms)
{
	MilterCertd *certd = g_new0(MilterCertd, 1);

	certd->socket = g_strdup(socket);
	certd->timeout_ms = timeout_ms;
	g_mutex_init(&certd->lock);
	certd->idle = g_ptr_array_new_with_free_func((GDestroyNotify)hk_ipc_client_free);
	return certd;
}

void
milter_certd_free(MilterCertd *certd)
{
	if (certd == NULL)
		return;
	g_ptr_array_unref(certd->idle);
	g_mutex_clear(&certd->lock);
	g_free(certd->socket);
	g_free(certd);
}

void
milter_certd_note(MilterCertd *certd, gboolean up, const char *why)
{
	gboolean changed;

	g_mutex_lock(&certd->lock);
	changed = certd->down == up;
	certd->down = !up;
	g_mutex_unlock(&certd->lock);
	if (changed && up)
		g_message("hanko-certd answers again");
	else if (changed)
		g_warning("hanko-certd unavailable: %s", why);
}

static HkIpcClient *
take(MilterCertd *certd, GError **error)
{
	HkIpcClient *client = NULL;

	g_mutex_lock(&certd->lock);
	if (certd->idle->len > 0)
		client = g_ptr_array_steal_index_fast(certd->idle, certd->idle->len - 1);
	g_mutex_unlock(&certd->lock);
	if (client == NULL)
		client = hk_ipc_client_connect(certd->socket, certd->timeout_ms, error);
	return client;
}

static void
give_back(MilterCertd *certd, HkIpcClient *client)
{
	g_mutex_lock(&certd->lock);
	if (certd->idle->len < POOL_MAX) {
		g_ptr_array_add(certd->idle, client);
		client = NULL;
	}
	g_mutex_unlock(&certd->lock);
	hk_ipc_client_free(client);
}

/* certd's own error replies come in HK_IPC_ERROR; anything else is the transport. */
static gboolean
answered(const GError *error)
{
	return error->domain == HK_IPC_ERROR && error->code < HK_IPC_ERROR_CONNECT &&
	       error->code != HK_IPC_ERROR_TOO_MANY_CONNECTIONS &&
	       error->code != HK_IPC_ERROR_UNAVAILABLE;
}

json_object *
milter_certd_call(MilterCertd *certd, const char *op, json_object *params, gboolean *unavailable,
                  GError **error)
{
	g_autoptr(GError) local = NULL;
	HkIpcClient *client;
	json_object *result = NULL;

	*unavailable = FALSE;
	/* a pooled connection may have been closed by a certd restart: one retry, fresh */
	for (int attempt = 0; attempt < 2; attempt++) {
		g_clear_error(&local);
		client = take(certd, &local);
		if (client == NULL)
			break;
		result = hk_ipc_client_call(client, op, params, &local);
		if (result != NULL || answered(local)) {
			give_back(certd, client);
			break;
		}
		hk_ipc_client_free(client);
	}
	if (result != NULL || answered(local)) {
		milter_certd_note(certd, TRUE, NULL);
		if (local != NULL)
			g_propagate_error(error, g_steal_pointer(&local));
		return result;
	}
	*unavailable = TRUE;
	milter_certd_note(certd, FALSE, local ? local->message : "no answer");
	g_propagate_error(error, g_steal_pointer(&local));
	return NULL;
}
