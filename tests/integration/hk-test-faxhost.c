/*
 * hk-test-faxhost: the modem plugin's host for test-fax-modem and bench-fax-modem.
 */
#include "hk-test-faxhost.h"

#include <string.h>

static const char *
host_string(const FaxPluginHost *host, const char *key)
{
	const char *value = g_hash_table_lookup(host->host_data, key);

	if (value == NULL)
		g_error("the plugin asked for [fax.modem] %s, which the test host does not set",
		        key);
	return value;
}

static gint64
host_int(const FaxPluginHost *host, const char *key)
{
	return g_ascii_strtoll(host_string(host, key), NULL, 10);
}

static gboolean
host_bool(const FaxPluginHost *host, const char *key)
{
	return strcmp(host_string(host, key), "yes") == 0;
}

void
hk_test_faxhost_set(HkTestFaxHost *fh, const char *key, const char *value)
{
	g_hash_table_replace(fh->conf, g_strdup(key), g_strdup(value));
}

void
hk_test_faxhost_init(HkTestFaxHost *fh, const char *device, const char *lock_dir,
                     const char *station_id)
{
	static const char *const defaults[][2] = {
	        {"speed", "19200"},
	        {"flow", "none"},
	        {"init", "ATZ"},
	        {"reset", "ATZ"},
	        {"class", "auto"},
	        {"dial_command", "ATDT"},
	        {"command_timeout", "3000"},
	        {"answer_timeout", "30000"},
	        {"page_timeout", "180000"},
	        {"ecm", "yes"},
	        {"max_rate", "14400"},
	};

	memset(fh, 0, sizeof(*fh));
	fh->conf = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	for (gsize i = 0; i < G_N_ELEMENTS(defaults); i++)
		hk_test_faxhost_set(fh, defaults[i][0], defaults[i][1]);
	hk_test_faxhost_set(fh, "device", device);
	hk_test_faxhost_set(fh, "lock_dir", lock_dir);
	hk_test_faxhost_set(fh, "station_id", station_id);
}

gboolean
hk_test_faxhost_open(HkTestFaxHost *fh, const char *plugin_dir, GError **error)
{
	if (fh->plugin == NULL)
		fh->plugin = fax_plugin_load("modem", plugin_dir, error);
	if (fh->plugin == NULL)
		return FALSE;
	fh->host = (FaxPluginHost){
	        .section = "fax.modem",
	        .get_string = host_string,
	        .get_int = host_int,
	        .get_bool = host_bool,
	        .get_duration_ms = host_int,
	        .host_data = fh->conf,
	};
	fh->self = fh->plugin->open(&fh->host, error);
	return fh->self != NULL;
}

void
hk_test_faxhost_clear(HkTestFaxHost *fh)
{
	if (fh->self != NULL)
		fh->plugin->close(fh->self);
	fh->self = NULL;
	g_clear_pointer(&fh->conf, g_hash_table_unref);
}
