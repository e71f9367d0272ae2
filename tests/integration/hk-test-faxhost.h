/*
 * hk-test-faxhost: a FaxPluginHost whose [fax.modem] comes from a hash table, for the
 * test and the benchmark that load the modem plugin (hanko-fax-modem.so) themselves.
 *
 * Talks to: fax-plugin.c (fax_plugin_load), the plugin's open().
 * Must never: hand the plugin a key the caller did not set (asking for one aborts: the
 * plugin's key list and the defaults here must agree).
 */
#pragma once

#include "fax-plugin.h"

#include <glib.h>

typedef struct {
	GHashTable *conf; /* [fax.modem]: key -> value */
	FaxPluginHost host;
	const FaxPlugin *plugin;
	gpointer self; /* the plugin's instance once opened */
} HkTestFaxHost;

/* milter-config.c's defaults for [fax.modem], short timeouts, and the given device, lock
 * directory and station id. */
void hk_test_faxhost_init(HkTestFaxHost *fh, const char *device, const char *lock_dir,
                          const char *station_id);
void hk_test_faxhost_set(HkTestFaxHost *fh, const char *key, const char *value);
/* Loads the plugin from plugin_dir (once) and opens an instance with the settings. */
gboolean hk_test_faxhost_open(HkTestFaxHost *fh, const char *plugin_dir, GError **error);
/* Closes the instance (if open) and frees the settings. */
void hk_test_faxhost_clear(HkTestFaxHost *fh);
