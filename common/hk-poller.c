/*
 * hk-poller: an epoll set behind one GLib source.
 *
 * Talks to: the kernel (epoll), the thread-default GMainContext (one source, the epoll
 * descriptor its only fd).
 * Must never: deliver an event to a watch removed earlier in the same batch, keep a
 * descriptor in the set that waits for nothing (a hung-up socket would then be reported
 * forever), or hold the loop for more than a bounded number of rounds.
 */
#include "hk-poller.h"
#include "hk-socket.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EVENTS_PER_ROUND 64
/* Rounds of epoll_wait() per dispatch: a client answered in the first round has often
 * sent its next request by the time the round ends, and looking again is cheaper than a
 * trip through the main loop. Bounded so that timers and other sources still run. */
#define ROUNDS_PER_DISPATCH 4

struct _HkPollWatch {
	HkPoller *poller;
	HkPollWatch *prev, *next; /* the poller's live watches, or its removed ones */
	int fd;
	HkPollEvents events;
	gboolean in_set; /* registered with the kernel: waits for something */
	gboolean removed;
	HkPollFunc func;
	gpointer user_data;
};

struct _HkPoller {
	GSource *source;
	int epfd;
	HkPollWatch *watches;
	HkPollWatch *removed; /* during a dispatch: freed when its batch ends */
	gboolean dispatching;
};

typedef struct {
	GSource base;
	HkPoller *poller;
} PollerSource;

static void
list_push(HkPollWatch **head, HkPollWatch *watch)
{
	watch->prev = NULL;
	watch->next = *head;
	if (*head != NULL)
		(*head)->prev = watch;
	*head = watch;
}

static void
list_unlink(HkPollWatch **head, HkPollWatch *watch)
{
	if (watch->prev != NULL)
		watch->prev->next = watch->next;
	else
		*head = watch->next;
	if (watch->next != NULL)
		watch->next->prev = watch->prev;
	watch->prev = watch->next = NULL;
}

static guint32
epoll_mask(HkPollEvents events)
{
	return ((events & HK_POLL_IN) ? EPOLLIN : 0) | ((events & HK_POLL_OUT) ? EPOLLOUT : 0);
}

static HkPollEvents
poll_events(guint32 mask)
{
	return ((mask & EPOLLIN) ? HK_POLL_IN : 0) | ((mask & EPOLLOUT) ? HK_POLL_OUT : 0) |
	       ((mask & (EPOLLERR | EPOLLHUP)) ? HK_POLL_ERR : 0);
}

/* Puts the kernel's interest list in line with watch->events. On failure the watch waits
 * for nothing, and FALSE is returned with errno set. */
static gboolean
watch_sync(HkPollWatch *watch)
{
	struct epoll_event ev = {.events = epoll_mask(watch->events), .data.ptr = watch};
	int epfd = watch->poller->epfd;
	int err;

	if (watch->events == 0) {
		/* fails only for a descriptor closed under its watch, which left the set then */
		if (watch->in_set)
			epoll_ctl(epfd, EPOLL_CTL_DEL, watch->fd, NULL);
		watch->in_set = FALSE;
		return TRUE;
	}
	if (epoll_ctl(epfd, watch->in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, watch->fd, &ev) == 0) {
		watch->in_set = TRUE;
		return TRUE;
	}
	err = errno;
	watch->events = 0;
	watch_sync(watch);
	errno = err;
	return FALSE;
}

static void
free_removed(HkPoller *poller)
{
	HkPollWatch *watch;

	while ((watch = poller->removed) != NULL) {
		list_unlink(&poller->removed, watch);
		g_free(watch);
	}
}

/* One epoll_wait(); returns how many events it delivered. */
static int
poller_round(HkPoller *poller)
{
	struct epoll_event events[EVENTS_PER_ROUND];
	int n = epoll_wait(poller->epfd, events, EVENTS_PER_ROUND, 0);

	if (n < 0) {
		if (errno != EINTR)
			g_warning("epoll_wait: %s", g_strerror(errno));
		return 0;
	}
	poller->dispatching = TRUE;
	for (int i = 0; i < n; i++) {
		HkPollWatch *watch = events[i].data.ptr;

		if (!watch->removed)
			watch->func(watch->fd, poll_events(events[i].events), watch->user_data);
	}
	poller->dispatching = FALSE;
	free_removed(poller);
	return n;
}

static gboolean
poller_dispatch(GSource *source, GSourceFunc callback, gpointer data)
{
	HkPoller *poller = ((PollerSource *)source)->poller;

	for (guint round = 0; round < ROUNDS_PER_DISPATCH; round++) {
		if (poller_round(poller) == 0)
			break;
	}
	return G_SOURCE_CONTINUE;
}

static GSourceFuncs poller_funcs = {
        .dispatch = poller_dispatch,
};

HkPoller *
hk_poller_new(GError **error)
{
	HkPoller *poller;
	int epfd = epoll_create1(EPOLL_CLOEXEC);

	if (epfd < 0) {
		hk_set_errno_error(error, errno, "cannot create", "an epoll set");
		return NULL;
	}
	poller = g_new0(HkPoller, 1);
	poller->epfd = epfd;
	poller->source = g_source_new(&poller_funcs, sizeof(PollerSource));
	((PollerSource *)poller->source)->poller = poller;
	/* callbacks never run a nested loop; without this GLib would take the epoll fd out
	 * of the poll set and back for every dispatch */
	g_source_set_can_recurse(poller->source, TRUE);
	g_source_set_name(poller->source, "hk-poller");
	g_source_add_unix_fd(poller->source, epfd, G_IO_IN);
	g_source_attach(poller->source, g_main_context_get_thread_default());
	return poller;
}

void
hk_poller_free(HkPoller *poller)
{
	if (poller == NULL)
		return;
	g_return_if_fail(!poller->dispatching);
	while (poller->watches != NULL)
		hk_poll_watch_remove(poller->watches);
	g_source_destroy(poller->source);
	g_source_unref(poller->source);
	close(poller->epfd);
	g_free(poller);
}

HkPollWatch *
hk_poller_add(HkPoller *poller, int fd, HkPollEvents events, HkPollFunc func, gpointer user_data)
{
	HkPollWatch *watch = g_new0(HkPollWatch, 1);

	watch->poller = poller;
	watch->fd = fd;
	watch->events = events & (HK_POLL_IN | HK_POLL_OUT);
	watch->func = func;
	watch->user_data = user_data;
	if (!watch_sync(watch)) {
		int err = errno;

		g_free(watch);
		errno = err;
		return NULL;
	}
	list_push(&poller->watches, watch);
	return watch;
}

gboolean
hk_poll_watch_set(HkPollWatch *watch, HkPollEvents events)
{
	events &= HK_POLL_IN | HK_POLL_OUT;
	if (watch->removed || watch->events == events)
		return TRUE;
	watch->events = events;
	return watch_sync(watch);
}

void
hk_poll_watch_remove(HkPollWatch *watch)
{
	HkPoller *poller;

	if (watch == NULL || watch->removed)
		return;
	poller = watch->poller;
	watch->events = 0;
	watch_sync(watch);
	watch->removed = TRUE;
	list_unlink(&poller->watches, watch);
	if (poller->dispatching)
		list_push(&poller->removed, watch);
	else
		g_free(watch);
}
