/*
 * certd-work: runs the slow part of an op (key generation, signing, PKCS#12) in a worker
 * thread, so one RSA 4096 key does not stall every lookup queued behind it.
 *
 * Talks to: the GLib thread pool and the main loop.
 * Must never: let a worker touch the database or the IPC server; only the done function,
 * back in the main loop, does.
 */
#include "certd.h"

typedef struct {
	CertdState *state;
	HkIpcRequest *request;
	CertdWorkFunc work;
	CertdDoneFunc done;
	gpointer data;
	GDestroyNotify free_data;
	GError *error;
} CertdWork;

static gboolean
work_done(gpointer user_data)
{
	CertdWork *w = user_data;

	w->done(w->state, w->request, w->data, w->error);
	w->state->work_in_flight--;
	if (w->free_data != NULL)
		w->free_data(w->data);
	g_clear_error(&w->error);
	g_free(w);
	return G_SOURCE_REMOVE;
}

static void
work_run(gpointer item, gpointer pool_data)
{
	CertdWork *w = item;

	if (!w->work(w->state, w->data, &w->error) && w->error == NULL)
		g_set_error_literal(&w->error, HK_IPC_ERROR, HK_IPC_ERROR_INTERNAL,
		                    "the operation failed without saying why");
	g_idle_add(work_done, w);
}

void
certd_work_start(CertdState *state, HkIpcRequest *request, CertdWorkFunc work, CertdDoneFunc done,
                 gpointer data, GDestroyNotify free_data)
{
	CertdWork *w = g_new0(CertdWork, 1);

	w->state = state;
	w->request = request;
	w->work = work;
	w->done = done;
	w->data = data;
	w->free_data = free_data;
	if (state->workers == NULL)
		state->workers = g_thread_pool_new(
		        work_run, NULL, (int)MAX(2, g_get_num_processors()), FALSE, NULL);
	state->work_in_flight++;
	g_thread_pool_push(state->workers, w, NULL);
}

void
certd_work_drain(CertdState *state)
{
	while (state->work_in_flight > 0)
		g_main_context_iteration(NULL, TRUE);
}
