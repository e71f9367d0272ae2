/*
 * hankoctl-fax: "hankoctl fax ...", the fax gateway's jobs and destination lists, and
 * mailing the gateway certificate to users (seed 003's "get the certificate").
 *
 * Talks to: hanko-milter's admin socket (--admin-socket, else [milter] admin_socket of
 * hanko.conf). Must never: change a job itself: the milter owns the spool.
 */
#include "hankoctl.h"
#include "hk-build-config.h"
#include "hk-json.h"
#include "hk-milter-proto.h"
#include "milter.h"

#include <stdlib.h>
#include <string.h>

static char *opt_socket;
static char *opt_to;
static gint opt_limit = 50;

/* --admin-socket, else [milter] admin_socket; a missing default file means defaults. */
static gboolean
use_admin_socket(Ctl *ctl, int *status)
{
	const char *path = ctl->config_path ? ctl->config_path : HANKO_CONFIG_FILE;
	g_autoptr(HkConfig) config = NULL;
	g_autoptr(GError) error = NULL;

	g_free(ctl->socket_path);
	if (opt_socket != NULL) {
		ctl->socket_path = g_strdup(opt_socket);
		return TRUE;
	}
	if (ctl->config_path == NULL && !g_file_test(path, G_FILE_TEST_EXISTS))
		config = hk_config_load_data("", path, milter_config_sections, &error);
	else
		config = hk_config_load(path, milter_config_sections, &error);
	if (config == NULL) {
		fprintf(stderr, "hankoctl: %s\n", error->message);
		*status = CTL_EXIT_CONFIG;
		ctl->socket_path = NULL;
		return FALSE;
	}
	ctl->socket_path =
	        g_strdup(hk_config_get_string(config, MILTER_SECTION, MILTER_CONF_ADMIN_SOCKET));
	return TRUE;
}

static const GOptionEntry socket_entries[] = {
        {"admin-socket", 0, 0, G_OPTION_ARG_FILENAME, &opt_socket,
         "hanko-milter's admin socket (default: [milter] admin_socket)", "PATH"},
        G_OPTION_ENTRY_NULL,
};

/* Options, then the admin socket; FALSE with *status on a usage or config error. */
static gboolean
fax_begin(Ctl *ctl, int *argc, char ***argv, const char *usage, const GOptionEntry *entries,
          int *status)
{
	if (!ctl_parse(argc, argv, usage, entries ? entries : socket_entries, status))
		return FALSE;
	return use_admin_socket(ctl, status);
}

static gboolean
parse_id(const char *text, gint64 *id)
{
	char *end;

	*id = g_ascii_strtoll(text, &end, 10);
	return *text != '\0' && *end == '\0' && *id > 0;
}

static const char *
str(json_object *obj, const char *key)
{
	const char *value = hk_json_get_string(obj, key);

	return value ? value : "";
}

static void
print_destinations(json_object *job, gboolean full)
{
	json_object *dests = NULL;

	json_object_object_get_ex(job, HK_MILTER_KEY_DESTINATIONS, &dests);
	for (gsize i = 0; dests && i < json_object_array_length(dests); i++) {
		json_object *d = json_object_array_get_idx(dests, i);

		printf("  %-20s %-9s attempts %" G_GINT64_FORMAT ", pages %" G_GINT64_FORMAT,
		       str(d, HK_MILTER_KEY_NUMBER), str(d, HK_MILTER_KEY_STATE),
		       hk_json_get_int(d, HK_MILTER_KEY_ATTEMPTS, 0),
		       hk_json_get_int(d, HK_MILTER_KEY_PAGES_SENT, 0));
		if (full && hk_json_get_string(d, HK_MILTER_KEY_NEXT_ATTEMPT) != NULL)
			printf(", next %s", str(d, HK_MILTER_KEY_NEXT_ATTEMPT));
		if (full && hk_json_get_string(d, HK_MILTER_KEY_FINISHED) != NULL)
			printf(", finished %s", str(d, HK_MILTER_KEY_FINISHED));
		if (hk_json_get_string(d, HK_MILTER_KEY_RESULT) != NULL)
			printf(": %s", str(d, HK_MILTER_KEY_RESULT));
		printf("\n");
	}
}

static int
cmd_fax_jobs(Ctl *ctl, int argc, char **argv)
{
	const GOptionEntry entries[] = {
	        {"limit", 'n', 0, G_OPTION_ARG_INT, &opt_limit, "Newest N jobs (0: all)", "N"},
	        {"admin-socket", 0, 0, G_OPTION_ARG_FILENAME, &opt_socket,
	         "hanko-milter's admin socket (default: [milter] admin_socket)", "PATH"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	json_object *jobs = NULL;
	gboolean printed;
	int status;

	if (!fax_begin(ctl, &argc, &argv, "fax jobs [-n N]", entries, &status))
		return status;
	if (argc != 1)
		return ctl_usage("fax jobs [-n N]");
	json_object_object_add(params, HK_MILTER_KEY_LIMIT, json_object_new_int(opt_limit));
	result = ctl_call(ctl, HK_MILTER_OP_FAX_JOBS, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (printed)
		return CTL_EXIT_OK;
	json_object_object_get_ex(result, HK_MILTER_KEY_JOBS, &jobs);
	printf("%-6s %-9s %-20s %-5s %-6s %s\n", "ID", "STATE", "CREATED", "PAGES", "DESTS",
	       "SENDER");
	for (gsize i = 0; jobs && i < json_object_array_length(jobs); i++) {
		json_object *job = json_object_array_get_idx(jobs, i);
		json_object *dests = NULL;

		json_object_object_get_ex(job, HK_MILTER_KEY_DESTINATIONS, &dests);
		printf("%-6" G_GINT64_FORMAT " %-9s %-20s %-5" G_GINT64_FORMAT " %-6zu %s\n",
		       hk_json_get_int(job, HK_MILTER_KEY_ID, 0), str(job, HK_MILTER_KEY_STATE),
		       str(job, HK_MILTER_KEY_CREATED),
		       hk_json_get_int(job, HK_MILTER_KEY_PAGES, 0),
		       dests ? json_object_array_length(dests) : 0, str(job, HK_MILTER_KEY_SENDER));
	}
	return CTL_EXIT_OK;
}

/* fax show|cancel|resend ID */
static int
job_op(Ctl *ctl, int argc, char **argv, const char *op, const char *usage, json_object **out)
{
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(GError) error = NULL;
	gboolean printed;
	gint64 id;
	int status;

	if (!fax_begin(ctl, &argc, &argv, usage, NULL, &status))
		return status;
	if (argc != 2 || !parse_id(argv[1], &id))
		return ctl_usage(usage);
	json_object_object_add(params, HK_MILTER_KEY_ID, json_object_new_int64(id));
	*out = ctl_call(ctl, op, params, &printed, &error);
	if (*out == NULL)
		return ctl_fail(error);
	if (printed)
		g_clear_pointer(out, json_object_put);
	return CTL_EXIT_OK;
}

static int
cmd_fax_show(Ctl *ctl, int argc, char **argv)
{
	static const char *const keys[] = {HK_MILTER_KEY_ID,
	                                   HK_MILTER_KEY_STATE,
	                                   HK_MILTER_KEY_USER,
	                                   HK_MILTER_KEY_SENDER,
	                                   HK_MILTER_KEY_NOTIFY,
	                                   HK_MILTER_KEY_SUBJECT,
	                                   HK_MILTER_KEY_CREATED,
	                                   HK_MILTER_KEY_QUEUE_ID,
	                                   HK_MILTER_KEY_PAGES,
	                                   HK_MILTER_KEY_TIFF,
	                                   HK_MILTER_KEY_NOTES,
	                                   HK_MILTER_KEY_NOTIFIED,
	                                   NULL};
	g_autoptr(json_object) job = NULL;
	int status = job_op(ctl, argc, argv, HK_MILTER_OP_FAX_SHOW, "fax show ID", &job);

	if (job == NULL)
		return status;
	ctl_print_object(job, keys);
	printf("destinations:\n");
	print_destinations(job, TRUE);
	return CTL_EXIT_OK;
}

static int
cmd_fax_cancel(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(json_object) result = NULL;
	int status = job_op(ctl, argc, argv, HK_MILTER_OP_FAX_CANCEL, "fax cancel ID", &result);

	if (result != NULL)
		printf("job %" G_GINT64_FORMAT " canceled\n",
		       hk_json_get_int(result, HK_MILTER_KEY_ID, 0));
	return status;
}

static int
cmd_fax_resend(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(json_object) result = NULL;
	int status = job_op(ctl, argc, argv, HK_MILTER_OP_FAX_RESEND, "fax resend ID", &result);

	if (result != NULL)
		printf("job %" G_GINT64_FORMAT ": %" G_GINT64_FORMAT
		       " destination(s) queued again\n",
		       hk_json_get_int(result, HK_MILTER_KEY_ID, 0),
		       hk_json_get_int(result, HK_MILTER_KEY_RESENT, 0));
	return status;
}

static void
print_list(json_object *list)
{
	json_object *numbers = NULL;

	json_object_object_get_ex(list, HK_MILTER_KEY_NUMBERS, &numbers);
	printf("%s:", str(list, HK_MILTER_KEY_NAME));
	for (gsize i = 0; numbers && i < json_object_array_length(numbers); i++)
		printf(" %s", json_object_get_string(json_object_array_get_idx(numbers, i)));
	printf("\n");
}

#define LIST_USAGE "fax list add NAME NUMBER... | fax list show [NAME] | fax list del NAME"

static int
cmd_fax_list(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	const char *op;
	gboolean printed;
	int status;

	if (!fax_begin(ctl, &argc, &argv, LIST_USAGE, NULL, &status))
		return status;
	if (argc >= 4 && strcmp(argv[1], "add") == 0) {
		json_object *numbers = json_object_new_array();

		for (int i = 3; i < argc; i++)
			json_object_array_add(numbers, json_object_new_string(argv[i]));
		json_object_object_add(params, HK_MILTER_KEY_NUMBERS, numbers);
		op = HK_MILTER_OP_FAX_LIST_ADD;
	} else if ((argc == 2 || argc == 3) && strcmp(argv[1], "show") == 0) {
		op = HK_MILTER_OP_FAX_LIST_SHOW;
	} else if (argc == 3 && strcmp(argv[1], "del") == 0) {
		op = HK_MILTER_OP_FAX_LIST_DEL;
	} else {
		return ctl_usage(LIST_USAGE);
	}
	if (argc >= 3)
		json_object_object_add(params, HK_MILTER_KEY_NAME, json_object_new_string(argv[2]));
	result = ctl_call(ctl, op, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (printed)
		return CTL_EXIT_OK;
	if (strcmp(op, HK_MILTER_OP_FAX_LIST_DEL) == 0) {
		printf("list %s deleted\n", argv[2]);
	} else if (argc == 2) {
		json_object *lists = NULL;

		json_object_object_get_ex(result, HK_MILTER_KEY_LISTS, &lists);
		for (gsize i = 0; lists && i < json_object_array_length(lists); i++)
			print_list(json_object_array_get_idx(lists, i));
	} else {
		print_list(result);
	}
	return CTL_EXIT_OK;
}

static int
cmd_fax_send_cert(Ctl *ctl, int argc, char **argv)
{
	const GOptionEntry entries[] = {
	        {"to", 0, 0, G_OPTION_ARG_STRING, &opt_to, "Addresses, comma-separated", "A,B"},
	        {"admin-socket", 0, 0, G_OPTION_ARG_FILENAME, &opt_socket,
	         "hanko-milter's admin socket (default: [milter] admin_socket)", "PATH"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	g_auto(GStrv) to = NULL;
	json_object *array = json_object_new_array();
	gboolean printed;
	int status;

	json_object_object_add(params, HK_MILTER_KEY_TO, array);
	if (!fax_begin(ctl, &argc, &argv, "fax send-cert --to A[,B...]", entries, &status))
		return status;
	if (argc != 1 || opt_to == NULL)
		return ctl_usage("fax send-cert --to A[,B...]");
	to = g_strsplit(opt_to, ",", -1);
	for (guint i = 0; to[i] != NULL; i++) {
		g_strstrip(to[i]);
		if (*to[i] != '\0')
			json_object_array_add(array, json_object_new_string(to[i]));
	}
	result = ctl_call(ctl, HK_MILTER_OP_FAX_SEND_CERT, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (!printed)
		printf("the gateway certificate was mailed to %s\n", opt_to);
	return CTL_EXIT_OK;
}

const CtlCommand ctl_fax_commands[] = {
        {"fax", "jobs", "[-n N]", "the fax gateway's jobs, newest first", cmd_fax_jobs},
        {"fax", "show", "ID", "one fax job with its destinations", cmd_fax_show},
        {"fax", "cancel", "ID", "stop a fax job's queued and running sends", cmd_fax_cancel},
        {"fax", "resend", "ID", "send a job's failed destinations again", cmd_fax_resend},
        {"fax", "list", "add NAME NUMBER... | show [NAME] | del NAME",
         "destination lists (!*list=NAME*! in a request)", cmd_fax_list},
        {"fax", "send-cert", "--to A[,B...]",
         "mail the gateway certificate (signed, attached) to users", cmd_fax_send_cert},
        {0},
};
