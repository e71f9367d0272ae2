/*
 * certd-store: the files under certd's state directory, written so that a crash at any
 * moment leaves either the old file or the new one, complete.
 *
 * Talks to: the file system only.
 * Must never: leave a torn file, write a file wider than asked, or follow a symlink
 * planted where it writes.
 */
#include "certd.h"
#include "hk-file.h"
#include "hk-socket.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static gboolean
write_all(int fd, const void *data, gsize len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return FALSE;
		p += n;
		len -= (gsize)n;
	}
	return TRUE;
}

gboolean
certd_store_write(const char *dir, const char *name, const void *data, gsize len, guint mode,
                  GError **error)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autofree char *tmp = g_strdup_printf("%s/.%s.tmp-XXXXXX", dir, name);
	int fd, saved;

	/* mkostemp creates 0600; fchmod sets the final mode before any byte is written */
	fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return hk_set_errno_error(error, errno, "cannot create", tmp);
	if (fchmod(fd, mode) != 0 || !write_all(fd, data, len) || fsync(fd) != 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		return hk_set_errno_error(error, saved, "cannot write", path);
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		saved = errno;
		unlink(tmp);
		return hk_set_errno_error(error, saved, "cannot write", path);
	}
	return hk_fsync_path(dir, error);
}

static gboolean
write_new_file(const char *dir, const CertdStoreFile *file, GError **error)
{
	g_autofree char *path = g_build_filename(dir, file->name, NULL);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int saved;

	if (fd < 0)
		return hk_set_errno_error(error, errno, "cannot create", path);
	if (fchmod(fd, file->mode) != 0 || !write_all(fd, file->data, file->len) ||
	    fsync(fd) != 0) {
		saved = errno;
		close(fd);
		return hk_set_errno_error(error, saved, "cannot write", path);
	}
	if (close(fd) != 0)
		return hk_set_errno_error(error, errno, "cannot write", path);
	return TRUE;
}

gboolean
certd_store_write_dir(const char *dir, const CertdStoreFile *files, guint n, GError **error)
{
	g_autofree char *parent = g_path_get_dirname(dir);

	if (mkdir(dir, 0700) != 0)
		return hk_set_errno_error(error, errno, "cannot create directory", dir);
	/* a new directory: no temporary names needed, nobody knows of it until the row is in */
	for (guint i = 0; i < n; i++) {
		if (!write_new_file(dir, &files[i], error)) {
			certd_store_remove_tree(dir, NULL);
			return FALSE;
		}
	}
	if (!hk_fsync_path(dir, error) || !hk_fsync_path(parent, error)) {
		certd_store_remove_tree(dir, NULL);
		return FALSE;
	}
	return TRUE;
}

gboolean
certd_store_sync_dir(const char *dir, GError **error)
{
	return hk_fsync_path(dir, error);
}

gboolean
certd_store_mkdir(const char *dir, guint mode, GError **error)
{
	if (g_mkdir_with_parents(dir, (int)mode) != 0)
		return hk_set_errno_error(error, errno, "cannot create directory", dir);
	return TRUE;
}

gboolean
certd_store_remove_tree(const char *dir, GError **error)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	if (d == NULL)
		return TRUE; /* already gone */
	while ((name = g_dir_read_name(d)) != NULL) {
		g_autofree char *path = g_build_filename(dir, name, NULL);
		struct stat st;

		if (lstat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (!certd_store_remove_tree(path, error))
				return FALSE;
		} else if (unlink(path) != 0) {
			return hk_set_errno_error(error, errno, "cannot remove", path);
		}
	}
	if (rmdir(dir) != 0 && errno != ENOENT)
		return hk_set_errno_error(error, errno, "cannot remove", dir);
	return TRUE;
}

gboolean
certd_store_read(const char *path, char **data, gsize *len, GError **error)
{
	return g_file_get_contents(path, data, len, error);
}
