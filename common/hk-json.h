/* hk-json: json-c glue for GLib code (autoptr, small typed getters). */
#pragma once

#include <glib.h>
#include <json-c/json.h>

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

/* Member lookups that return NULL/0/FALSE (or the fallback) when the key is absent or of
 * another type. Callers that need to tell the two apart validate first. */
const char *hk_json_get_string(json_object *obj, const char *key);
gint64 hk_json_get_int(json_object *obj, const char *key, gint64 fallback);
gboolean hk_json_get_bool(json_object *obj, const char *key, gboolean fallback);
json_object *hk_json_get_object(json_object *obj, const char *key);

/* Compact serialisation without escaping '/', as a newly allocated string. */
char *hk_json_to_string(json_object *obj);

G_END_DECLS
