/* hk-json: json-c glue for GLib code. Pure helpers, no I/O. */
#include "hk-json.h"

const char *
hk_json_get_string(json_object *obj, const char *key)
{
	json_object *member = NULL;

	if (!json_object_object_get_ex(obj, key, &member) ||
	    !json_object_is_type(member, json_type_string))
		return NULL;
	return json_object_get_string(member);
}

gint64
hk_json_get_int(json_object *obj, const char *key, gint64 fallback)
{
	json_object *member = NULL;

	if (!json_object_object_get_ex(obj, key, &member) ||
	    !json_object_is_type(member, json_type_int))
		return fallback;
	return json_object_get_int64(member);
}

gboolean
hk_json_get_bool(json_object *obj, const char *key, gboolean fallback)
{
	json_object *member = NULL;

	if (!json_object_object_get_ex(obj, key, &member) ||
	    !json_object_is_type(member, json_type_boolean))
		return fallback;
	return json_object_get_boolean(member);
}

json_object *
hk_json_get_object(json_object *obj, const char *key)
{
	json_object *member = NULL;

	if (!json_object_object_get_ex(obj, key, &member) ||
	    !json_object_is_type(member, json_type_object))
		return NULL;
	return member;
}

char *
hk_json_to_string(json_object *obj)
{
	return g_strdup(json_object_to_json_string_ext(
	        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}
