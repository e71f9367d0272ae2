/*
 * milter-filter: hanko-milter's libmilter callbacks and the socket Postfix connects to.
 */
#pragma once

#include "milter-runtime.h"

#include <sys/types.h>

G_BEGIN_DECLS

/* The runtime a new message starts with (a new reference); called from filter threads. */
typedef MilterRuntime *(*MilterFilterRuntimeFunc)(gpointer data);

/* Registers the filter and opens its socket ("unix:/PATH" or "inet:HOST:PORT"). Once. */
gboolean milter_filter_open(const char *listen, guint mode, gid_t group,
                            MilterFilterRuntimeFunc func, gpointer data, GError **error);
/* Runs libmilter's loop in a thread of its own; on_exit is called from the main loop if
 * that loop ends without milter_filter_stop(). */
GThread *milter_filter_start(GSourceFunc on_exit, gpointer data);
/* Stops that loop and waits for it. */
void milter_filter_stop(GThread *thread);

G_END_DECLS
