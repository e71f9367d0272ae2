/*
 * hk-file: what durable files need: fsync of a file or a directory by name (after a
 * rename, the directory holds the new name only once it is synced).
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* fsync(2) of path, a file or a directory; a G_IO_ERROR naming path on failure. */
gboolean hk_fsync_path(const char *path, GError **error);

G_END_DECLS
