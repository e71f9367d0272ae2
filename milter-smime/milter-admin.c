/*
 * milter-admin: hanko-milter's admin socket, for hankoctl fax ...: the fax jobs (list,
 * show, cancel, resend), the destination lists, and mailing the gateway certificate.
 * JSON lines like certd's socket; admin ops need root or [milter] admin_group.
 *
 * Talks to: the fax gateway (milter-fax, fax-spool).
 * Must never: serve admin ops to other users, or show a document's content.
 */
#include "milter-admin.h"
#include "hk-milter-proto.h"
#include "hk-build-config.h"
#include "hk-json.h"

#include <string.h>

struct _MilterAdmin {
	HkIpcServer *ipc;
	HkIpcGroupRoles groups;
	MilterFax *fax;
	HkConfig *config;
};

static void
add_time(json_object *obj, const char *key, gint64 when)
{
	g_autoptr(GDateTime) t = NULL;
	g_autofree char *text = NULL;

	if (when <= 0)
		return;
	t = g_date_time_new_from_unix_utc(when);
	text = g_date_time_format(t, "%Y-%m-%dT%H:%M:%SZ");
	json_object_object_add(obj, key, json_object_new_string(text));
}

static void
add_string(json_object *obj, const char *key, const char *value)
{
	if (value != NULL)
		json_object_object_add(obj, key, json_object_new_string(value));
}

/* The job as a whole: queued, sending, done, failed, partial or canceled. */
static const char *
job_state(const FaxJob *job)
{
	guint n[FAX_DEST_CANCELED + 1] = {0};

	for (guint i = 0; i < job->destinations->len; i++)
		n[((FaxDestination *)job->destinations->pdata[i])->state]++;
	if (n[FAX_DEST_SENDING] > 0)
		return "sending";
	if (n[FAX_DEST_QUEUED] > 0)
		return "queued";
	if (n[FAX_DEST_DONE] == job->destinations->len)
		return "done";
	if (n[FAX_DEST_DONE] > 0)
		return "partial";
	if (n[FAX_DEST_CANCELED] > 0 && n[FAX_DEST_FAILED] == 0)
		return "canceled";
	return "failed";
}

static json_object *
job_json(const FaxJob *job, gboolean full)
{
	json_object *obj = json_object_new_object();
	json_object *dests = json_object_new_array();

	json_object_object_add(obj, HK_MILTER_KEY_ID, json_object_new_int64(job->id));
	add_string(obj, HK_MILTER_KEY_STATE, job_state(job));
	add_string(obj, HK_MILTER_KEY_USER, job->user);
	add_string(obj, HK_MILTER_KEY_SENDER, job->sender);
	add_time(obj, HK_MILTER_KEY_CREATED, job->created);
	json_object_object_add(obj, HK_MILTER_KEY_PAGES, json_object_new_int(job->pages));
	if (full) {
		add_string(obj, HK_MILTER_KEY_NOTIFY, job->notify);
		add_string(obj, HK_MILTER_KEY_SUBJECT, job->subject);
		add_string(obj, HK_MILTER_KEY_QUEUE_ID, job->queue_id);
		add_string(obj, HK_MILTER_KEY_TIFF, job->tiff);
		add_string(obj, HK_MILTER_KEY_NOTES, job->notes);
		json_object_object_add(obj, HK_MILTER_KEY_CANCELED,
		                       json_object_new_boolean(job->canceled));
		json_object_object_add(obj, HK_MILTER_KEY_NOTIFIED,
		                       json_object_new_boolean(job->notified));
	}
	for (guint i = 0; i < job->destinations->len; i++) {
		const FaxDestination *d = job->destinations->pdata[i];
		json_object *o = json_object_new_object();

		add_string(o, HK_MILTER_KEY_NUMBER, d->number);
		add_string(o, HK_MILTER_KEY_STATE, fax_dest_state_name(d->state));
		json_object_object_add(o, HK_MILTER_KEY_ATTEMPTS, json_object_new_int(d->attempts));
		json_object_object_add(o, HK_MILTER_KEY_PAGES_SENT,
		                       json_object_new_int(d->pages_sent));
		if (full) {
			add_string(o, HK_MILTER_KEY_DIAL, d->dial);
			if (d->state == FAX_DEST_QUEUED)
				add_time(o, HK_MILTER_KEY_NEXT_ATTEMPT, d->next_attempt);
			add_time(o, HK_MILTER_KEY_FINISHED, d->finished);
		}
		add_string(o, HK_MILTER_KEY_RESULT, d->result_text);
		json_object_array_add(dests, o);
	}
	json_object_object_add(obj, HK_MILTER_KEY_DESTINATIONS, dests);
	return obj;
}

static void
return_error(HkIpcRequest *request, const GError *error)
{
	const char *code = HK_IPC_ERR_INTERNAL;

	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
		code = HK_IPC_ERR_NOT_FOUND;
	else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT) ||
	         g_error_matches(error, G_IO_ERROR, G_IO_ERROR_FAILED) ||
	         error->domain != G_IO_ERROR)
		code = HK_IPC_ERR_INVALID_ARGUMENT;
	hk_ipc_request_return_error(request, code, "%s", error->message);
}

static void
op_ping(HkIpcRequest *request, json_object *params, gpointer data)
{
	json_object *result = json_object_new_object();

	add_string(result, HK_MILTER_KEY_DAEMON, "hanko-milter");
	add_string(result, HK_MILTER_KEY_VERSION, HANKO_VERSION);
	hk_ipc_request_return(request, result);
}

static void
op_jobs(HkIpcRequest *request, json_object *params, gpointer data)
{
	MilterAdmin *admin = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) jobs = NULL;
	gint64 limit = hk_json_get_int(params, HK_MILTER_KEY_LIMIT, 50);
	json_object *result;
	json_object *array;

	jobs = fax_spool_list_jobs(milter_fax_get_spool(admin->fax),
	                           (guint)CLAMP(limit, 0, G_MAXINT), &error);
	if (jobs == NULL) {
		return_error(request, error);
		return;
	}
	result = json_object_new_object();
	array = json_object_new_array();
	for (guint i = 0; i < jobs->len; i++)
		json_object_array_add(array, job_json(jobs->pdata[i], FALSE));
	json_object_object_add(result, HK_MILTER_KEY_JOBS, array);
	hk_ipc_request_return(request, result);
}

static void
op_show(HkIpcRequest *request, json_object *params, gpointer data)
{
	MilterAdmin *admin = data;
	g_autoptr(GError) error = NULL;
	g_autoptr(FaxJob) job =
	        fax_spool_get_job(milter_fax_get_spool(admin->fax),
	                          hk_json_get_int(params, HK_MILTER_KEY_ID, 0), &error);

	if (job == NULL)
		return_error(request, error);
	else
		hk_ipc_request_return(request, job_json(job, TRUE));
}

static void
op_cancel(HkIpcRequest *request, json_object *params, gpointer data)
{
	MilterAdmin *admin = data;
	g_autoptr(GError) error = NULL;
	gint64 id = hk_json_get_int(params, HK_MILTER_KEY_ID, 0);
	json_object *result;

	if (!milter_fax_cancel(admin->fax, id, &error)) {
		return_error(request, error);
		return;
	}
	g_message("fax job %" G_GINT64_FORMAT " canceled by uid %u", id,
	          (guint)hk_ipc_request_get_peer(request)->uid);
	result = json_object_new_object();
	json_object_object_add(result, HK_MILTER_KEY_ID, json_object_new_int64(id));
	hk_ipc_request_return(request, result);
}

static void
op_resend(HkIpcRequest *request, json_object *params, gpointer data)
{
	MilterAdmin *admin = data;
	g_autoptr(GError) error = NULL;
	gint64 id = hk_json_get_int(params, HK_MILTER_KEY_ID, 0);
	guint n = 0;
	json_object *result;

	if (!milter_fax_resend(admin->fax, id, &n, &error)) {
		return_error(request, error);
		return;
	}
	g_message("fax job %" G_GINT64_FORMAT ": %u destinations sent again (uid %u)", id, n,
	          (guint)hk_ipc_request_get_peer(request)->uid);
	result = json_object_new_object();
	json_object_object_add(result, HK_MILTER_KEY_ID, json_object_new_int64(id));
	json_object_object_add(result, HK_MILTER_KEY_RESENT, json_object_new_int(n));
	hk_ipc_request_return(request, result);
}

/* A JSON array of strings as a NULL-terminated vector (borrowed strings). */
static const char **
string_array(json_object *array, const char *key, GError **error)
{
	gsize n = array ? json_object_array_length(array) : 0;
	const char **out = g_new0(const char *, n + 1);

	for (gsize i = 0; i < n; i++) {
		json_object *item = json_object_array_get_idx(array, i);

		if (!json_object_is_type(item, json_type_string)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
			            "%s: item %zu is not a string", key, i + 1);
			g_free(out);
			return NULL;
		}
		out[i] = json_object_get_string(item);
	}
	return out;
}

static json_object *
list_json(const char *name, char **numbers)
{
	json_object *result = json_object_new_object();
	json_object *array = json_object_new_array();

	add_string(result, HK_MILTER_KEY_NAME, name);
	for (guint i = 0; numbers && numbers[i]; i++)
		json_object_array_add(array, json_object_new_string(numbers[i]));
	json_object_object_add(result, HK_MILTER_KEY_NUMBERS, array);
	return result;
}

static void
op_list_add(HkIpcRequest *request, json_object *params, gpointer data)
{
	MilterAdmin *admin = data;
	g_autoptr(GError) error = NULL;
	g_autofree const char **written = NULL;
	g_auto(GStrv) numbers = NULL;
	g_auto(GStrv) all = NULL;
	const char *name = hk_json_get_string(params, HK_MILTER_KEY_NAME);
	json_object *array = NULL;

	json_object_object_get_ex(params, HK_MILTER_KEY_NUMBERS, &array);
	if ((written = string_array(array, HK_MILTER_KEY_NUMBERS, &error)) == NULL ||
	    (numbers = milter_fax_canonical_numbers(admin->config, written, &error)) == NULL ||
	    !fax_spool_list_add(milter_fax_get_spool(admin->fax), name,
	                        (const char *const *)numbers, &error)) {
		return_error(request, error);
		return;
	}
	all = fax_spool_list_get(milter_fax_get_spool(admin->fax), name);
	g_message("fax list %s: %u numbers added, %u in all", name, g_strv_length(numbers),
	          all ? g_strv_length(all) : 0);
	hk_ipc_request_return(request, list_json(name, all));
}

static void
op_list_show(HkIpcRequest *request, json_object *params, gpointer data)
{
	MilterAdmin *admin = data;
	FaxSpool *spool = milter_fax_get_spool(admin->fax);
	const char *name = hk_json_get_string(params, HK_MILTER_KEY_NAME);
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) names = NULL;
	json_object *result;
	json_object *lists;

	if (name != NULL) {
		g_auto(GStrv) numbers = fax_spool_list_get(spool, name);

		if (numbers == NULL)
			hk_ipc_request_return_error(request, HK_IPC_ERR_NOT_FOUND, "no list %s",
			                            name);
		else
			hk_ipc_request_return(request, list_json(name, numbers));
		return;
	}
	if ((names = fax_spool_list_names(spool, &error)) == NULL) {
		return_error(request, error);
		return;
	}
	result = json_object_new_object();
	lists = json_object_new_array();
	for (guint i = 0; names[i] != NULL; i++) {
		g_auto(GStrv) numbers = fax_spool_list_get(spool, names[i]);

		json_object_array_add(lists, list_json(names[i], numbers));
	}
	json_object_object_add(result, HK_MILTER_KEY_LISTS, lists);
	hk_ipc_request_return(request, result);
}

static void
op_list_del(HkIpcRequest *request, json_object *params, gpointer data)
{
	MilterAdmin *admin = data;
	g_autoptr(GError) error = NULL;
	const char *name = hk_json_get_string(params, HK_MILTER_KEY_NAME);
	json_object *result;

	if (!fax_spool_list_del(milter_fax_get_spool(admin->fax), name, &error)) {
		return_error(request, error);
		return;
	}
	g_message("fax list %s deleted", name);
	result = json_object_new_object();
	add_string(result, HK_MILTER_KEY_NAME, name);
	hk_ipc_request_return(request, result);
}

static void
op_send_cert(HkIpcRequest *request, json_object *params, gpointer data)
{
	MilterAdmin *admin = data;
	g_autoptr(GError) error = NULL;
	g_autofree const char **to = NULL;
	json_object *array = NULL;
	json_object *result;

	json_object_object_get_ex(params, HK_MILTER_KEY_TO, &array);
	if ((to = string_array(array, HK_MILTER_KEY_TO, &error)) == NULL) {
		return_error(request, error);
		return;
	}
	if (to[0] == NULL) {
		hk_ipc_request_return_error(request, HK_IPC_ERR_INVALID_ARGUMENT,
		                            "to: name at least one address");
		return;
	}
	for (guint i = 0; to[i] != NULL; i++) {
		if (strchr(to[i], '@') == NULL || strpbrk(to[i], " \t\r\n<>,;") != NULL) {
			hk_ipc_request_return_error(request, HK_IPC_ERR_INVALID_ARGUMENT,
			                            "to: \"%s\" is not a mail address", to[i]);
			return;
		}
	}
	if (!milter_fax_send_cert(admin->fax, admin->config, to, &error)) {
		return_error(request, error);
		return;
	}
	result = json_object_new_object();
	json_object_object_add(result, HK_MILTER_KEY_SENT, json_object_get(array));
	hk_ipc_request_return(request, result);
}

static const HkIpcParam id_params[] = {{HK_MILTER_KEY_ID, json_type_int, TRUE}, {NULL}};
static const HkIpcParam jobs_params[] = {{HK_MILTER_KEY_LIMIT, json_type_int, FALSE}, {NULL}};
static const HkIpcParam list_add_params[] = {{HK_MILTER_KEY_NAME, json_type_string, TRUE},
                                             {HK_MILTER_KEY_NUMBERS, json_type_array, TRUE},
                                             {NULL}};
static const HkIpcParam list_show_params[] = {{HK_MILTER_KEY_NAME, json_type_string, FALSE},
                                              {NULL}};
static const HkIpcParam name_params[] = {{HK_MILTER_KEY_NAME, json_type_string, TRUE}, {NULL}};
static const HkIpcParam send_cert_params[] = {{HK_MILTER_KEY_TO, json_type_array, TRUE}, {NULL}};

static const HkIpcOp admin_ops[] = {
        {HK_MILTER_OP_PING, HK_IPC_ROLE_PUBLIC, NULL, op_ping},
        {HK_MILTER_OP_FAX_JOBS, HK_IPC_ROLE_ADMIN, jobs_params, op_jobs},
        {HK_MILTER_OP_FAX_SHOW, HK_IPC_ROLE_ADMIN, id_params, op_show},
        {HK_MILTER_OP_FAX_CANCEL, HK_IPC_ROLE_ADMIN, id_params, op_cancel},
        {HK_MILTER_OP_FAX_RESEND, HK_IPC_ROLE_ADMIN, id_params, op_resend},
        {HK_MILTER_OP_FAX_LIST_ADD, HK_IPC_ROLE_ADMIN, list_add_params, op_list_add},
        {HK_MILTER_OP_FAX_LIST_SHOW, HK_IPC_ROLE_ADMIN, list_show_params, op_list_show},
        {HK_MILTER_OP_FAX_LIST_DEL, HK_IPC_ROLE_ADMIN, name_params, op_list_del},
        {HK_MILTER_OP_FAX_SEND_CERT, HK_IPC_ROLE_ADMIN, send_cert_params, op_send_cert},
        {NULL},
};

MilterAdmin *
milter_admin_new(HkConfig *config, MilterFax *fax, GError **error)
{
	g_autoptr(MilterAdmin) admin = g_new0(MilterAdmin, 1);
	const char *group_name =
	        hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_ADMIN_GROUP);
	HkIpcServerOptions options = {
	        .role_func = hk_ipc_roles_from_groups,
	        .role_data = &admin->groups,
	};
	gid_t group = (gid_t)-1;

	if (!hk_daemon_lookup_group(group_name, &group, error))
		return NULL;
	admin->groups.admin_gid = group;
	admin->groups.service_gid = (gid_t)-1;
	admin->fax = fax;
	admin->config = hk_config_ref(config);
	admin->ipc = hk_ipc_server_new(admin_ops, admin, &options);
	if (!hk_ipc_server_listen_path(
	            admin->ipc,
	            hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_ADMIN_SOCKET),
	            hk_config_get_mode(config, MILTER_SECTION, MILTER_CONF_ADMIN_SOCKET_MODE),
	            group, error))
		return NULL;
	return g_steal_pointer(&admin);
}

void
milter_admin_set_config(MilterAdmin *admin, HkConfig *config)
{
	hk_config_unref(admin->config);
	admin->config = hk_config_ref(config);
}

void
milter_admin_free(MilterAdmin *admin)
{
	if (admin == NULL)
		return;
	g_clear_pointer(&admin->ipc, hk_ipc_server_free);
	g_clear_pointer(&admin->config, hk_config_unref);
	g_free(admin);
}
