/*
 * fax-plugin: loading backend plugins, and the built-in `file` backend (see fax-plugin.h).
 *
 * Loads hanko-fax-NAME.so from the plugin directory (GModule) and checks its API version.
 * The file backend copies a job's TIFF into [fax_file] outbox as <job>-<number>.tif, whole
 * or not at all; numbers listed in [fax_file] fail_numbers answer busy, so that tests and
 * drills exercise retries through the real code path.
 *
 * Must never: load a module whose name could leave the plugin directory, leave a partial
 * file in the outbox, or log document content.
 */
#include "fax-plugin.h"
#include "hk-file.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <gmodule.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#define FILE_PLUGIN_NAME "file"
#define FILE_KEY_OUTBOX  "outbox"
#define FILE_KEY_FAIL    "fail_numbers"
#define FILE_MODE        0640
#define OUTBOX_MODE      0750
#define PLUGIN_NAME_MAX  64
#define COPY_BUFFER_SIZE 65536

/* ----- the file backend ----- */

typedef struct {
	char *outbox;
	GStrv fail_numbers; /* canonical numbers answered busy */
	gint cancel;        /* atomic: set by cancel, cleared when a send starts */
} FilePlugin;

static GStrv
parse_fail_numbers(const char *value)
{
	g_auto(GStrv) items = g_strsplit(value != NULL ? value : "", ",", -1);
	g_autoptr(GPtrArray) numbers = g_ptr_array_new();

	for (guint i = 0; items[i] != NULL; i++) {
		g_strstrip(items[i]);
		if (*items[i] != '\0')
			g_ptr_array_add(numbers, g_strdup(items[i]));
	}
	g_ptr_array_add(numbers, NULL);
	return (GStrv)g_ptr_array_free(g_steal_pointer(&numbers), FALSE);
}

static gpointer
file_open(const FaxPluginHost *host, GError **error)
{
	const char *outbox = host->get_string(host, FILE_KEY_OUTBOX);
	FilePlugin *self;

	if (outbox == NULL || !g_path_is_absolute(outbox)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "[%s] %s must be an absolute directory", host->section,
		            FILE_KEY_OUTBOX);
		return NULL;
	}
	if (g_mkdir_with_parents(outbox, OUTBOX_MODE) != 0) {
		int err = errno;

		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "create outbox %s: %s",
		            outbox, g_strerror(err));
		return NULL;
	}
	if (access(outbox, W_OK | X_OK) != 0) {
		int err = errno;

		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "outbox %s: %s", outbox,
		            g_strerror(err));
		return NULL;
	}
	self = g_new0(FilePlugin, 1);
	self->outbox = g_strdup(outbox);
	self->fail_numbers = parse_fail_numbers(host->get_string(host, FILE_KEY_FAIL));
	return self;
}

static void
file_close(gpointer data)
{
	FilePlugin *self = data;

	if (self == NULL)
		return;
	g_free(self->outbox);
	g_strfreev(self->fail_numbers);
	g_free(self);
}

static void
file_cancel(gpointer data)
{
	FilePlugin *self = data;

	g_atomic_int_set(&self->cancel, 1);
}

static void
report(FaxProgressFunc progress, gpointer data, FaxPhase phase, guint page, guint pages,
       const char *text)
{
	FaxProgress p = {phase, page, pages, text};

	if (progress != NULL)
		progress(&p, data);
}

static void
set_result(FaxSendResult *result, FaxResultCode code, guint pages_sent, char *text)
{
	result->code = code;
	result->pages_sent = pages_sent;
	result->text = text;
}

/* The number becomes part of a file name: nothing that could leave the outbox. */
static gboolean
number_is_file_safe(const char *number)
{
	if (*number == '\0')
		return FALSE;
	for (const char *p = number; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != '+' && *p != '*' && *p != '#')
			return FALSE;
	}
	return TRUE;
}

static gboolean
write_all(int fd, const guint8 *data, gsize len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return FALSE;
		data += n;
		len -= (gsize)n;
	}
	return TRUE;
}

static gboolean
copy_fd(int from, int to)
{
	guint8 buffer[COPY_BUFFER_SIZE];

	for (;;) {
		ssize_t n = read(from, buffer, sizeof buffer);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return FALSE;
		if (n == 0)
			return TRUE;
		if (!write_all(to, buffer, (gsize)n))
			return FALSE;
	}
}

/* Copies source into a new hidden temporary file in dir, synced; returns its path. A
 * watcher of the outbox that skips dot files never sees a partial fax. */
static char *
copy_to_temp(const char *source, const char *dir, const char *name, GError **error)
{
	g_autofree char *tmp_name = g_strdup_printf(".%s.XXXXXX", name);
	g_autofree char *tmp = g_build_filename(dir, tmp_name, NULL);
	int in = open(source, O_RDONLY | O_CLOEXEC);
	int out;
	int err = 0;

	if (in < 0) {
		err = errno;
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "open %s: %s", source,
		            g_strerror(err));
		return NULL;
	}
	out = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, FILE_MODE);
	if (out < 0) {
		err = errno;
		close(in);
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "create %s: %s", tmp,
		            g_strerror(err));
		return NULL;
	}
	/* the umask must not decide who may read the outbox */
	if (fchmod(out, FILE_MODE) != 0 || !copy_fd(in, out) || fsync(out) != 0)
		err = errno;
	close(in);
	if (close(out) != 0 && err == 0)
		err = errno;
	if (err != 0) {
		g_unlink(tmp);
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "write %s: %s", tmp,
		            g_strerror(err));
		return NULL;
	}
	return g_steal_pointer(&tmp);
}

/* The "pages" go out one by one, so that a cancel lands between two of them. */
static gboolean
send_pages(FilePlugin *self, const FaxSendRequest *request, FaxProgressFunc progress, gpointer data,
           guint *sent)
{
	for (guint page = 1; page <= request->pages; page++) {
		if (g_atomic_int_get(&self->cancel))
			return FALSE;
		report(progress, data, FAX_PHASE_PAGE, page, request->pages, NULL);
		*sent = page;
	}
	return !g_atomic_int_get(&self->cancel);
}

static void
file_send(gpointer data, const FaxSendRequest *request, FaxProgressFunc progress,
          gpointer progress_data, FaxSendResult *result)
{
	FilePlugin *self = data;
	g_autofree char *name = NULL;
	g_autofree char *target = NULL;
	g_autofree char *tmp = NULL;
	g_autoptr(GError) error = NULL;
	guint sent = 0;

	/* a cancel is for the send in progress, not for the next one */
	g_atomic_int_set(&self->cancel, 0);
	report(progress, progress_data, FAX_PHASE_DIALING, 0, request->pages, request->dial);
	if (g_strv_contains((const char *const *)self->fail_numbers, request->number)) {
		set_result(result, FAX_RESULT_BUSY, 0, g_strdup("busy (fail_numbers)"));
		return;
	}
	if (!number_is_file_safe(request->number)) {
		set_result(result, FAX_RESULT_REFUSED, 0,
		           g_strdup("the number cannot be a file name"));
		return;
	}
	name = g_strdup_printf("%" G_GINT64_FORMAT "-%s.tif", request->job, request->number);
	target = g_build_filename(self->outbox, name, NULL);
	tmp = copy_to_temp(request->tiff, self->outbox, name, &error);
	if (tmp == NULL) {
		set_result(result, FAX_RESULT_LOCAL, 0, g_strdup(error->message));
		return;
	}
	if (!send_pages(self, request, progress, progress_data, &sent)) {
		g_unlink(tmp);
		set_result(result, FAX_RESULT_CANCELED, sent, g_strdup("canceled"));
		return;
	}
	if (g_rename(tmp, target) != 0) {
		int err = errno;

		g_unlink(tmp);
		set_result(result, FAX_RESULT_LOCAL, 0,
		           g_strdup_printf("rename to %s: %s", target, g_strerror(err)));
		return;
	}
	if (!hk_fsync_path(self->outbox, &error)) {
		set_result(result, FAX_RESULT_LOCAL, 0, g_strdup(error->message));
		return;
	}
	report(progress, progress_data, FAX_PHASE_HANGUP, 0, request->pages, NULL);
	/* the text reaches the sender's result mail: the file's name, not the server's path */
	{
		g_autofree char *base = g_path_get_basename(target);

		set_result(result, FAX_RESULT_OK, request->pages,
		           g_strdup_printf("written to the outbox as %s", base));
	}
}

static const FaxPlugin file_plugin = {
        .api_version = FAX_PLUGIN_API_VERSION,
        .name = FILE_PLUGIN_NAME,
        .open = file_open,
        .send = file_send,
        .cancel = file_cancel,
        .close = file_close,
};

const FaxPlugin *
fax_plugin_file(void)
{
	return &file_plugin;
}

/* ----- loading ----- */

typedef const FaxPlugin *(*FaxPluginEntry)(void);

static gboolean
plugin_name_ok(const char *name)
{
	gsize len = name != NULL ? strlen(name) : 0;

	if (len == 0 || len > PLUGIN_NAME_MAX)
		return FALSE;
	for (const char *p = name; *p != '\0'; p++) {
		if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '_' && *p != '-')
			return FALSE;
	}
	return TRUE;
}

static gboolean
check_plugin(const FaxPlugin *plugin, const char *name, const char *path, GError **error)
{
	if (plugin == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s: %s() returned nothing", path,
		            FAX_PLUGIN_SYMBOL);
		return FALSE;
	}
	if (plugin->api_version != FAX_PLUGIN_API_VERSION) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
		            "%s: fax plugin API version %u, hanko-milter needs version %u", path,
		            plugin->api_version, FAX_PLUGIN_API_VERSION);
		return FALSE;
	}
	if (g_strcmp0(plugin->name, name) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
		            "%s: the plugin calls itself \"%s\", not \"%s\"", path,
		            plugin->name != NULL ? plugin->name : "", name);
		return FALSE;
	}
	if (plugin->open == NULL || plugin->send == NULL || plugin->cancel == NULL ||
	    plugin->close == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
		            "%s: the plugin lacks one of open, send, cancel, close", path);
		return FALSE;
	}
	return TRUE;
}

const FaxPlugin *
fax_plugin_load(const char *name, const char *dir, GError **error)
{
	g_autofree char *file = NULL;
	g_autofree char *path = NULL;
	GModule *module;
	gpointer symbol = NULL;
	const FaxPlugin *plugin;

	if (g_strcmp0(name, FILE_PLUGIN_NAME) == 0)
		return fax_plugin_file();
	if (!plugin_name_ok(name)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "invalid fax plugin name \"%s\": use a-z 0-9 _ -",
		            name != NULL ? name : "");
		return NULL;
	}
	file = g_strdup_printf("hanko-fax-%s.so", name);
	path = g_build_filename(dir != NULL ? dir : ".", file, NULL);
	if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
		            "fax plugin %s: no such file %s", name, path);
		return NULL;
	}
	module = g_module_open(path, G_MODULE_BIND_LOCAL);
	if (module == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "fax plugin %s: %s", name,
		            g_module_error());
		return NULL;
	}
	if (!g_module_symbol(module, FAX_PLUGIN_SYMBOL, &symbol) || symbol == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "fax plugin %s: %s", name,
		            g_module_error());
		g_module_close(module);
		return NULL;
	}
	plugin = ((FaxPluginEntry)symbol)();
	if (!check_plugin(plugin, name, path, error)) {
		g_module_close(module);
		return NULL;
	}
	/* the FaxPlugin lives in the module: it must never be unloaded */
	g_module_make_resident(module);
	g_info("loaded fax plugin %s from %s", name, path);
	return plugin;
}
