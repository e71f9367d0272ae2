/*
 * hk-poller: many connections' descriptors in one epoll set, watched by a single source
 * of the GLib main loop.
 *
 * GLib's own fd watches cost every loop iteration a pass over all of them (prepare, a
 * poll(2) that asks each socket again, check); a listener that keeps hundreds of
 * connections open pays that per request. Here the kernel keeps the interest list, the
 * main loop sees one descriptor, and one dispatch serves what is ready, then looks again
 * a bounded number of times before it lets the rest of the loop run.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _HkPoller HkPoller;
typedef struct _HkPollWatch HkPollWatch;

/* What a watch waits for and what it got: a mask of these. */
typedef enum {
	HK_POLL_IN = 1 << 0,  /* readable, or the peer closed its side */
	HK_POLL_OUT = 1 << 1, /* writable */
	HK_POLL_ERR = 1 << 2, /* error or hang-up: reported whatever was asked */
} HkPollEvents;

/* Called from the main loop with the events that are ready. It may modify or remove any
 * watch, its own included, and add new ones. */
typedef void (*HkPollFunc)(int fd, HkPollEvents events, gpointer user_data);

/* A poller attached to the thread-default main context. NULL with error if the kernel
 * refuses an epoll set (descriptor limit). */
HkPoller *hk_poller_new(GError **error);
/* Removes every watch still there (their descriptors stay open) and the source. NULL-safe. */
void hk_poller_free(HkPoller *poller);

/* Watches fd for events (HK_POLL_IN and/or HK_POLL_OUT, or none for errors only). The
 * descriptor stays the caller's; remove the watch before closing it. NULL with errno set
 * if the kernel refuses it. */
HkPollWatch *
hk_poller_add(HkPoller *poller, int fd, HkPollEvents events, HkPollFunc func, gpointer user_data);
/* Changes what a watch waits for; a no-op when it waits for that already. FALSE with
 * errno set if the kernel refuses it (the watch then waits for nothing). */
gboolean hk_poll_watch_set(HkPollWatch *watch, HkPollEvents events);
/* Stops a watch; events already collected for it are not delivered. NULL-safe. */
void hk_poll_watch_remove(HkPollWatch *watch);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HkPoller, hk_poller_free)

G_END_DECLS
