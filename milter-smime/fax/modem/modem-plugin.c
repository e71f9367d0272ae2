/*
 * modem-plugin: the `modem` fax backend (hanko-fax-modem.so), a GModule for hanko-milter.
 *
 * Reads [fax.modem] through the host's accessors, and for each send: locks and opens the
 * serial line, checks the modem answers, picks the fax class (AT+FCLASS=?, or the one
 * configured), runs the class driver, hangs up and releases the line. See
 * docs/fax-modem.md for the keys and the result texts.
 * Talks to: hanko-milter's fax queue (fax-plugin.h), the modem through modem-port.c.
 *
 * Must never: link hanko-common, keep the line open or locked between sends, or leave a
 * send blocked after cancel() beyond MODEM_IDLE_MS plus the hang-up.
 */
#include "modem.h"

#include <gmodule.h>
#include <spandsp.h>
#include <string.h>

#define MODEM_PLUGIN_NAME "modem"

/* [fax.modem] keys: the same names as MILTER_CONF_MODEM_* in milter.h */
#define KEY_DEVICE          "device"
#define KEY_SPEED           "speed"
#define KEY_FLOW            "flow"
#define KEY_LOCK_DIR        "lock_dir"
#define KEY_INIT            "init"
#define KEY_RESET           "reset"
#define KEY_CLASS           "class"
#define KEY_DIAL_COMMAND    "dial_command"
#define KEY_COMMAND_TIMEOUT "command_timeout"
#define KEY_ANSWER_TIMEOUT  "answer_timeout"
#define KEY_PAGE_TIMEOUT    "page_timeout"
#define KEY_STATION_ID      "station_id"
#define KEY_ECM             "ecm"
#define KEY_MAX_RATE        "max_rate"

typedef struct {
	ModemConfig config;
	gint cancel; /* atomic */
} ModemPlugin;

static const struct {
	const char *name;
	ModemFlow flow;
} flows[] = {
        {"rtscts", MODEM_FLOW_RTSCTS},
        {"xonxoff", MODEM_FLOW_XONXOFF},
        {"none", MODEM_FLOW_NONE},
};

static const struct {
	const char *name;
	ModemClass fclass;
} classes[] = {
        {"auto", MODEM_CLASS_AUTO}, {"1", MODEM_CLASS_1},     {"1.0", MODEM_CLASS_1_0},
        {"2", MODEM_CLASS_2},       {"2.0", MODEM_CLASS_2_0},
};

static const char *
host_string(const FaxPluginHost *host, const char *key)
{
	const char *value = host->get_string(host, key);

	return value != NULL ? value : "";
}

static void
config_clear(ModemConfig *config)
{
	g_free(config->device);
	g_free(config->lock_dir);
	g_free(config->init);
	g_free(config->reset);
	g_free(config->dial_command);
	g_free(config->station_id);
}

static gboolean
config_enums(const FaxPluginHost *host, ModemConfig *config, GError **error)
{
	const char *flow = host_string(host, KEY_FLOW);
	const char *fclass = host_string(host, KEY_CLASS);
	gboolean flow_ok = FALSE, class_ok = FALSE;

	for (gsize i = 0; i < G_N_ELEMENTS(flows); i++) {
		if (strcmp(flow, flows[i].name) == 0) {
			config->flow = flows[i].flow;
			flow_ok = TRUE;
		}
	}
	for (gsize i = 0; i < G_N_ELEMENTS(classes); i++) {
		if (strcmp(fclass, classes[i].name) == 0) {
			config->fclass = classes[i].fclass;
			class_ok = TRUE;
		}
	}
	if (!flow_ok || !class_ok) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "[%s] %s",
		            host->section,
		            !flow_ok ? "flow must be rtscts, xonxoff or none"
		                     : "class must be auto, 1, 1.0, 2 or 2.0");
		return FALSE;
	}
	return TRUE;
}

static gboolean
config_read(const FaxPluginHost *host, ModemConfig *config, GError **error)
{
	config->device = g_strdup(host_string(host, KEY_DEVICE));
	config->speed = (guint)host->get_int(host, KEY_SPEED);
	config->lock_dir = g_strdup(host_string(host, KEY_LOCK_DIR));
	config->init = g_strdup(host_string(host, KEY_INIT));
	config->reset = g_strdup(host_string(host, KEY_RESET));
	config->dial_command = g_strdup(host_string(host, KEY_DIAL_COMMAND));
	config->command_timeout_ms = host->get_duration_ms(host, KEY_COMMAND_TIMEOUT);
	config->answer_timeout_ms = host->get_duration_ms(host, KEY_ANSWER_TIMEOUT);
	config->page_timeout_ms = host->get_duration_ms(host, KEY_PAGE_TIMEOUT);
	config->station_id = g_strdup(host_string(host, KEY_STATION_ID));
	config->ecm = host->get_bool(host, KEY_ECM);
	config->max_rate = (guint)host->get_int(host, KEY_MAX_RATE);
	if (!g_path_is_absolute(config->device)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		            "[%s] %s must be an absolute path", host->section, KEY_DEVICE);
		return FALSE;
	}
	if (*config->lock_dir != '\0' && !g_path_is_absolute(config->lock_dir)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		            "[%s] %s must be an absolute path or empty", host->section,
		            KEY_LOCK_DIR);
		return FALSE;
	}
	if (config->command_timeout_ms <= 0 || config->answer_timeout_ms <= 0 ||
	    config->page_timeout_ms <= 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		            "[%s] the timeouts must be positive", host->section);
		return FALSE;
	}
	return config_enums(host, config, error);
}

static gpointer
modem_open(const FaxPluginHost *host, GError **error)
{
	ModemPlugin *self = g_new0(ModemPlugin, 1);

	if (!config_read(host, &self->config, error)) {
		config_clear(&self->config);
		g_free(self);
		return NULL;
	}
	g_info("fax modem on %s at %u bps, class %s", self->config.device, self->config.speed,
	       host_string(host, KEY_CLASS));
	return self;
}

static void
modem_close(gpointer data)
{
	ModemPlugin *self = data;

	if (self == NULL)
		return;
	config_clear(&self->config);
	g_free(self);
}

static void
modem_cancel(gpointer data)
{
	ModemPlugin *self = data;

	g_atomic_int_set(&self->cancel, 1);
}

/* ----- helpers of the class drivers ----- */

void
modem_report(const ModemCall *call, FaxPhase phase, guint page, const char *text)
{
	FaxProgress progress = {phase, page, call->request->pages, text};

	if (call->progress != NULL)
		call->progress(&progress, call->progress_data);
}

void
modem_outcome_set(ModemOutcome *out, FaxResultCode code, guint pages, char *text)
{
	g_free(out->text);
	out->code = code;
	out->pages_sent = pages;
	out->text = text;
}

const char *
modem_coding_name(int t4_compression)
{
	switch (t4_compression) {
	case T4_COMPRESSION_ITU_T4_1D:
		return "MH";
	case T4_COMPRESSION_ITU_T4_2D:
		return "MR";
	case T4_COMPRESSION_ITU_T6:
		return "MMR";
	default:
		return "uncompressed";
	}
}

void
modem_dial_outcome(const ModemCall *call, const char *final, ModemWait wait, ModemOutcome *out)
{
	if (wait != MODEM_WAIT_OK) {
		if (wait == MODEM_WAIT_TIMEOUT) {
			modem_outcome_set(out, FAX_RESULT_NO_ANSWER, 0,
			                  g_strdup_printf("no answer within %" G_GINT64_FORMAT " s",
			                                  call->config->answer_timeout_ms / 1000));
			return;
		}
		modem_wait_outcome(call, wait, "dialing", 0, out);
		return;
	}
	if (strcmp(final, "BUSY") == 0)
		modem_outcome_set(out, FAX_RESULT_BUSY, 0, g_strdup("busy"));
	else if (strcmp(final, "NO ANSWER") == 0)
		modem_outcome_set(out, FAX_RESULT_NO_ANSWER, 0, g_strdup("no answer"));
	else if (strcmp(final, "NO CARRIER") == 0)
		modem_outcome_set(out, FAX_RESULT_NO_ANSWER, 0,
		                  g_strdup("no fax answered (NO CARRIER)"));
	else if (strcmp(final, "NO DIALTONE") == 0 || strcmp(final, "NO DIAL TONE") == 0)
		modem_outcome_set(out, FAX_RESULT_LOCAL, 0,
		                  g_strdup("no dial tone: is the modem's line plugged in?"));
	else if (strcmp(final, "ERROR") == 0)
		modem_outcome_set(out, FAX_RESULT_REFUSED, 0,
		                  g_strdup_printf("the modem refuses to dial %s (ERROR)",
		                                  call->request->dial));
	else if (strcmp(final, "BLACKLISTED") == 0 || strcmp(final, "DELAYED") == 0)
		modem_outcome_set(out, FAX_RESULT_LOCAL, 0,
		                  g_strdup_printf("the modem will not dial now (%s)", final));
	else
		modem_outcome_set(out, FAX_RESULT_FAILED, 0,
		                  g_strdup_printf("dialing failed: %s", final));
}

void
modem_wait_outcome(const ModemCall *call, ModemWait wait, const char *doing, guint pages,
                   ModemOutcome *out)
{
	switch (wait) {
	case MODEM_WAIT_CANCELED:
		modem_outcome_set(out, FAX_RESULT_CANCELED, pages, g_strdup("canceled"));
		break;
	case MODEM_WAIT_IO:
		modem_outcome_set(out, FAX_RESULT_LOCAL, pages,
		                  g_strdup_printf("%s: %s", doing,
		                                  call->port->error != NULL ? call->port->error
		                                                            : "the line is gone"));
		break;
	default:
		modem_outcome_set(out, FAX_RESULT_FAILED, pages,
		                  g_strdup_printf("%s: the modem stopped answering", doing));
		break;
	}
}

/* ----- choosing the class ----- */

/* "0,1,1.0,2,2.0,8" or "(0,1,2)" -> the best class we drive. */
static ModemClass
class_from_list(const char *list)
{
	g_auto(GStrv) items = g_strsplit_set(list, "(),", -1);
	gboolean have[5] = {FALSE};

	for (guint i = 0; items[i] != NULL; i++) {
		const char *item = g_strstrip(items[i]);

		for (gsize k = 1; k < G_N_ELEMENTS(classes); k++) {
			if (strcmp(item, classes[k].name) == 0)
				have[classes[k].fclass] = TRUE;
		}
	}
	if (have[MODEM_CLASS_1_0])
		return MODEM_CLASS_1_0;
	if (have[MODEM_CLASS_1])
		return MODEM_CLASS_1;
	if (have[MODEM_CLASS_2_0])
		return MODEM_CLASS_2_0;
	if (have[MODEM_CLASS_2])
		return MODEM_CLASS_2;
	return MODEM_CLASS_AUTO;
}

static ModemClass
class_choose(ModemPort *port, char **error)
{
	g_autoptr(GPtrArray) info = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *final = NULL;
	ModemClass found;

	if (port->config->fclass != MODEM_CLASS_AUTO)
		return port->config->fclass;
	if (modem_port_command(port, "AT+FCLASS=?", port->config->command_timeout_ms, info,
	                       &final) != MODEM_WAIT_OK ||
	    strcmp(final, "OK") != 0 || info->len == 0) {
		*error = g_strdup_printf("modem on %s does not tell its fax classes (AT+FCLASS=?)",
		                         port->config->device);
		return MODEM_CLASS_AUTO;
	}
	found = class_from_list(g_ptr_array_index(info, 0));
	if (found == MODEM_CLASS_AUTO)
		*error = g_strdup_printf("modem on %s is no fax modem (classes %s)",
		                         port->config->device,
		                         (const char *)g_ptr_array_index(info, 0));
	return found;
}

static void
send_on_line(ModemPlugin *self, ModemPort *port, ModemCall *call, ModemOutcome *out)
{
	g_autofree char *error = NULL;
	ModemClass fclass;

	if (!modem_port_probe(port, &error)) {
		modem_outcome_set(out,
		                  g_atomic_int_get(&self->cancel) ? FAX_RESULT_CANCELED
		                                                  : FAX_RESULT_LOCAL,
		                  0, g_steal_pointer(&error));
		return;
	}
	fclass = class_choose(port, &error);
	if (fclass == MODEM_CLASS_AUTO) {
		modem_outcome_set(out, FAX_RESULT_LOCAL, 0, g_steal_pointer(&error));
		return;
	}
	call->class_1_0 = fclass == MODEM_CLASS_1_0 || fclass == MODEM_CLASS_2_0;
	if (fclass == MODEM_CLASS_1 || fclass == MODEM_CLASS_1_0)
		modem_class1_send(call, out);
	else
		modem_class2_send(call, out);
}

static void
modem_send(gpointer data, const FaxSendRequest *request, FaxProgressFunc progress,
           gpointer progress_data, FaxSendResult *result)
{
	ModemPlugin *self = data;
	ModemPort port;
	ModemOutcome out = {FAX_RESULT_LOCAL, 0, NULL};
	ModemCall call = {&port,         &self->config, request, progress,
	                  progress_data, &self->cancel, FALSE};
	g_autofree char *error = NULL;

	/* a cancel is for the send in progress, not for the next one */
	g_atomic_int_set(&self->cancel, 0);
	if (!modem_port_open(&port, &self->config, &self->cancel, &error)) {
		result->code = FAX_RESULT_LOCAL;
		result->pages_sent = 0;
		result->text = g_steal_pointer(&error);
		return;
	}
	send_on_line(self, &port, &call, &out);
	modem_port_hangup(&port);
	modem_port_close(&port);
	modem_report(&call, FAX_PHASE_HANGUP, out.pages_sent, out.text);
	if (out.code != FAX_RESULT_OK && g_atomic_int_get(&self->cancel)) {
		out.code = FAX_RESULT_CANCELED;
		g_free(out.text);
		out.text = g_strdup_printf("canceled after %u page%s", out.pages_sent,
		                           out.pages_sent == 1 ? "" : "s");
	}
	g_info("fax job %" G_GINT64_FORMAT " to %s: %s", request->job, request->number,
	       out.text != NULL ? out.text : "");
	result->code = out.code;
	result->pages_sent = out.pages_sent;
	result->text = out.text != NULL ? out.text : g_strdup("");
}

static const FaxPlugin modem_plugin = {
        .api_version = FAX_PLUGIN_API_VERSION,
        .name = MODEM_PLUGIN_NAME,
        .open = modem_open,
        .send = modem_send,
        .cancel = modem_cancel,
        .close = modem_close,
};

G_MODULE_EXPORT const FaxPlugin *hanko_fax_plugin(void);

G_MODULE_EXPORT const FaxPlugin *
hanko_fax_plugin(void)
{
	return &modem_plugin;
}
