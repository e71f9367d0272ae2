/* hk-json: json-c glue for GLib code. Pure helpers, no I/O. */
#include "hk-json.h"

/* The member key of obj when it has the given type, else NULL. */
static json_object *
member(json_object *obj, const char *key, json_type type)
{
	json_object *value = NULL;

	if (!json_object_object_get_ex(obj, key, &value) || !json_object_is_type(value, type))
		return NULL;
	return value;
}

const char *
hk_json_get_string(json_object *obj, const char *key)
{
	json_object *value = member(obj, key, json_type_string);

	return value ? json_object_get_string(value) : NULL;
}

gint64
hk_json_get_int(json_object *obj, const char *key, gint64 fallback)
{
	json_object *value = member(obj, key, json_type_int);

	return value ? json_object_get_int64(value) : fallback;
}

gboolean
hk_json_get_bool(json_object *obj, const char *key, gboolean fallback)
{
	json_object *value = member(obj, key, json_type_boolean);

	return value ? json_object_get_boolean(value) : fallback;
}

json_object *
hk_json_get_object(json_object *obj, const char *key)
{
	return member(obj, key, json_type_object);
}

char *
hk_json_to_string(json_object *obj)
{
	return g_strdup(json_object_to_json_string_ext(
	        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}
