/*
 * modem-class2: sending a fax through a Class 2 (EIA-592 draft, "SP-2388") or Class 2.0
 * (ITU-T T.32) modem, for the `modem` fax plugin.
 *
 * The modem runs T.30; the host sets the session (+FDCC/+FCC, +FLID/+FLI, +FBOR/+FBO),
 * dials, and for each page asks +FDT, reads the negotiated +FDCS/+FCS, sends the page
 * coded as negotiated (spandsp's T.4 encoder re-codes the TIFF's rows to MH, MR or MMR)
 * with DLE stuffing, then ends it: DLE ETX and +FET=n in Class 2, DLE with the post-page
 * code in Class 2.0. +FPTS/+FPS say how the page went, +FHNG (decimal) / +FHS (hex) why
 * the call ended.
 * Talks to: the modem through modem-port.c, spandsp's t4_tx, the caller's progress.
 *
 * Must never: send a page in another resolution than negotiated, or wait on the modem
 * without a deadline.
 */
#include "modem.h"

#include <spandsp.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_RETRIES  2 /* resends of a page the far end answered RTN */
#define DATA_CHUNK    512
#define POST_PAGE_MPS 0
#define POST_PAGE_EOM 1
#define POST_PAGE_EOP 2

/* Class 2.0's end-of-page marks: DLE then one of these (T.32) */
#define DLE_MPS 0x2c
#define DLE_EOM 0x3b
#define DLE_EOP 0x2e

/* +FDCS / +FCS: VR,BR,WD,LN,DF,EC,BF,ST */
typedef struct {
	int vr, br, wd, ln, df, ec, bf, st;
} Class2Params;

typedef struct {
	const ModemCall *call;
	ModemPort *port;
	gboolean v20;        /* Class 2.0 */
	Class2Params params; /* the session's, from +FDCS/+FCS */
	int hangup;          /* +FHNG / +FHS, as a Class 2 (decimal) code; -1: none */
	char *remote_id;
	t4_tx_state_t *t4;
	guint pages_sent;
} Class2;

/* ----- hang-up codes ----- */

static const struct {
	guint code;
	const char *text;
} hangup_codes[] = {
        {0, "normal end of call"},
        {1, "ring detected without a successful handshake"},
        {2, "call aborted"},
        {3, "no loop current"},
        {4, "ringback detected, no answer"},
        {5, "ringback detected, no answer without CED"},
        {10, "unspecified phase A error"},
        {11, "no answer (T.30 T1 timeout)"},
        {20, "unspecified transmit phase B error"},
        {21, "remote cannot receive or send"},
        {22, "COMREC error in transmit phase B"},
        {23, "COMREC invalid command received"},
        {24, "RSPREC error"},
        {25, "DCS sent three times without response"},
        {26, "DIS/DTC received three times; DCS not recognized"},
        {27, "failure to train at 2400 bps or the lowest speed allowed"},
        {28, "RSPREC invalid response received"},
        {40, "unspecified transmit phase C error"},
        {41, "unspecified image format error"},
        {42, "image conversion error"},
        {43, "DTE to DCE data underflow"},
        {44, "unrecognized transparent data command"},
        {45, "image error, line length wrong"},
        {46, "image error, page length wrong"},
        {47, "image error, wrong compression code"},
        {50, "unspecified transmit phase D error"},
        {51, "RSPREC error"},
        {52, "no response to MPS repeated three times"},
        {53, "invalid response to MPS"},
        {54, "no response to EOP repeated three times"},
        {55, "invalid response to EOP"},
        {56, "no response to EOM repeated three times"},
        {57, "invalid response to EOM"},
        {58, "unable to continue after PIN or PIP"},
        {70, "unspecified receive phase B error"},
        {71, "RSPREC error"},
        {72, "COMREC error"},
        {73, "T.30 T2 timeout, expected page not received"},
        {74, "T.30 T1 timeout after EOM received"},
        {90, "unspecified receive phase C error"},
        {91, "missing EOL after 5 seconds"},
        {93, "DCE to DTE buffer overflow"},
        {94, "bad CRC or frame (ECM mode)"},
        {100, "unspecified receive phase D error"},
        {101, "RSPREC invalid response received"},
        {102, "COMREC invalid response received"},
        {103, "unable to continue after PIN or PIP"},
};

/* T.32 writes the same codes in hex digits ("+FHS:25" is Class 2's 25), and phase D of a
 * receive as A0..A3: back to Class 2's numbers. */
static guint
hangup_from_hex(guint hex)
{
	if ((hex >> 4) <= 9 && (hex & 0xf) <= 9)
		return (hex >> 4) * 10 + (hex & 0xf);
	if (hex >= 0xa0 && hex <= 0xaf)
		return 100 + (hex - 0xa0);
	return hex + 1000; /* unknown */
}

const char *
modem_class2_hangup_text(guint code, gboolean hex)
{
	guint value = hex ? hangup_from_hex(code) : code;

	for (gsize i = 0; i < G_N_ELEMENTS(hangup_codes); i++) {
		if (hangup_codes[i].code == value)
			return hangup_codes[i].text;
	}
	return "unknown hang-up code";
}

/* Is this hang-up the far end's lack of ability (never works) rather than the line? */
static FaxResultCode
hangup_result(int code)
{
	switch (code) {
	case 0:
		return FAX_RESULT_OK;
	case 11:
		return FAX_RESULT_NO_ANSWER;
	case 4:
	case 5:
		return FAX_RESULT_NO_ANSWER;
	case 21:
		return FAX_RESULT_REFUSED;
	case 41:
	case 42:
	case 45:
	case 46:
	case 47:
		return FAX_RESULT_LOCAL;
	default:
		return FAX_RESULT_FAILED;
	}
}

/* ----- reading the modem's reports ----- */

static gboolean
parse_params(const char *text, Class2Params *p)
{
	int v[8] = {0};
	int n = 0;
	const char *s = text;

	while (n < 8 && *s != '\0') {
		char *end;

		v[n++] = (int)strtol(s, &end, 16);
		s = strchr(end, ',');
		if (s == NULL)
			break;
		s++;
	}
	if (n < 5)
		return FALSE;
	*p = (Class2Params){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
	return TRUE;
}

/* Looks at one informational line: the parameters, the far end's id, a hang-up code. */
static void
class2_info(Class2 *c, const char *line)
{
	const char *value = strchr(line, ':');

	if (value == NULL)
		return;
	value++;
	while (*value == ' ')
		value++;
	if (g_str_has_prefix(line, "+FHNG")) {
		c->hangup = atoi(value);
	} else if (g_str_has_prefix(line, "+FHS")) {
		c->hangup = (int)hangup_from_hex((guint)strtoul(value, NULL, 16));
	} else if (g_str_has_prefix(line, "+FDCS") || g_str_has_prefix(line, "+FCS")) {
		parse_params(value, &c->params);
	} else if (g_str_has_prefix(line, "+FCSI") || g_str_has_prefix(line, "+FCI")) {
		g_free(c->remote_id);
		c->remote_id = g_strstrip(g_strdelimit(g_strdup(value), "\"", ' '));
	}
}

static void
class2_infos(Class2 *c, GPtrArray *info)
{
	for (guint i = 0; i < info->len; i++)
		class2_info(c, g_ptr_array_index(info, i));
}

/* A command and its informational lines; the final result code is returned. */
static ModemWait
class2_command(Class2 *c, const char *command, gint64 timeout_ms, char **final)
{
	g_autoptr(GPtrArray) info = g_ptr_array_new_with_free_func(g_free);
	ModemWait wait = modem_port_command(c->port, command, timeout_ms, info, final);

	class2_infos(c, info);
	return wait;
}

static gboolean
class2_expect_ok(Class2 *c, const char *command, ModemOutcome *out)
{
	g_autofree char *final = NULL;
	ModemWait wait = class2_command(c, command, c->call->config->command_timeout_ms, &final);

	if (wait != MODEM_WAIT_OK) {
		modem_wait_outcome(c->call, wait, command, c->pages_sent, out);
		return FALSE;
	}
	if (strcmp(final, "OK") != 0) {
		modem_outcome_set(out, FAX_RESULT_LOCAL, c->pages_sent,
		                  g_strdup_printf("modem on %s answers %s to %s",
		                                  c->call->config->device, final, command));
		return FALSE;
	}
	return TRUE;
}

static void
hangup_outcome(Class2 *c, const char *doing, const char *final, ModemOutcome *out)
{
	FaxResultCode code;

	if (c->hangup < 0) {
		modem_outcome_set(out, FAX_RESULT_FAILED, c->pages_sent,
		                  g_strdup_printf("%s: the modem answered %s, after %u of %u pages",
		                                  doing, final != NULL ? final : "nothing",
		                                  c->pages_sent, c->call->request->pages));
		return;
	}
	code = hangup_result(c->hangup);
	if (code == FAX_RESULT_OK)
		code = FAX_RESULT_FAILED; /* a normal end before the last page is no success */
	modem_outcome_set(out, code, c->pages_sent,
	                  g_strdup_printf("%s: hang-up code %d (%s), after %u of %u pages", doing,
	                                  c->hangup,
	                                  modem_class2_hangup_text((guint)c->hangup, FALSE),
	                                  c->pages_sent, c->call->request->pages));
}

/* ----- setting up and dialing ----- */

static int
max_br(guint max_rate)
{
	/* BR: 0 2400, 1 4800, 2 7200, 3 9600, 4 12000, 5 14400 */
	return (int)CLAMP(max_rate / 2400, 1, 6) - 1;
}

static gboolean
class2_setup(Class2 *c, ModemOutcome *out)
{
	const ModemConfig *config = c->call->config;
	const FaxSendRequest *request = c->call->request;
	const char *ident = *request->station_id != '\0' ? request->station_id : config->station_id;
	g_autofree char *fclass = g_strdup_printf("AT+FCLASS=%s", c->v20 ? "2.0" : "2");
	g_autofree char *lid = NULL;
	g_autofree char *cc = NULL;
	g_autofree char *safe_id = g_strndup(ident, 20);

	/* the id goes inside quotes: nothing that could end them */
	g_strdelimit(safe_id, "\";\r\n", ' ');
	lid = g_strdup_printf("AT+%s=\"%s\"", c->v20 ? "FLI" : "FLID", safe_id);
	/* VR fine, BR up to max_rate, WD 1728, LN unlimited, DF MH..MR (2.0: up to MMR), EC */
	cc = g_strdup_printf("AT+%s=1,%d,0,2,%d,%d,0,0", c->v20 ? "FCC" : "FDCC",
	                     max_br(config->max_rate), c->v20 ? 3 : 1,
	                     config->ecm && c->v20 ? 2 : 0);
	if (!class2_expect_ok(c, fclass, out) || !class2_expect_ok(c, lid, out))
		return FALSE;
	if (!class2_expect_ok(c, cc, out)) {
		/* an older modem without MR or ECM: the plain MH session */
		g_autofree char *plain =
		        g_strdup_printf("AT+%s=1,%d,0,2,0,0,0,0", c->v20 ? "FCC" : "FDCC",
		                        max_br(config->max_rate));

		if (!class2_expect_ok(c, plain, out))
			return FALSE;
	}
	/* direct bit order: the first bit on the line is each octet's least significant one */
	return class2_expect_ok(c, c->v20 ? "AT+FBO=0" : "AT+FBOR=0", out);
}

static gboolean
class2_dial(Class2 *c, ModemOutcome *out)
{
	const ModemCall *call = c->call;
	g_autofree char *dial =
	        g_strdup_printf("%s%s", call->config->dial_command, call->request->dial);
	g_autofree char *final = NULL;
	ModemWait wait;

	modem_report(call, FAX_PHASE_DIALING, 0, call->request->dial);
	wait = class2_command(c, dial, call->config->answer_timeout_ms, &final);
	if (wait == MODEM_WAIT_OK && strcmp(final, "OK") == 0 && c->hangup < 0)
		return TRUE;
	if (wait == MODEM_WAIT_OK && c->hangup >= 0) {
		hangup_outcome(c, "negotiating", final, out);
		return FALSE;
	}
	modem_dial_outcome(call, final, wait, out);
	return FALSE;
}

/* ----- pages ----- */

static int
t4_encoding(int df)
{
	switch (df) {
	case 1:
		return T4_COMPRESSION_ITU_T4_2D;
	case 3:
		return T4_COMPRESSION_ITU_T6;
	default:
		return T4_COMPRESSION_ITU_T4_1D;
	}
}

static int
bit_rate(int br)
{
	return (br + 1) * 2400;
}

/* ST: the minimum scan line time in ms (the second value of a pair for fine) */
static int
scan_time_ms(int st, int vr)
{
	static const int normal[] = {0, 5, 10, 10, 20, 20, 40, 40};
	static const int fine[] = {0, 5, 5, 10, 10, 20, 20, 40};

	if (st < 0 || st > 7)
		return 0;
	return vr ? fine[st] : normal[st];
}

static gboolean
class2_page_fits(Class2 *c, ModemOutcome *out)
{
	int y = t4_tx_get_y_resolution(c->t4);
	gboolean fine = y >= T4_Y_RESOLUTION_FINE;

	if (fine && c->params.vr == 0) {
		modem_outcome_set(out, FAX_RESULT_REFUSED, c->pages_sent,
		                  g_strdup("the far end takes only normal resolution (98 dpi), "
		                           "the pages are fine"));
		return FALSE;
	}
	return TRUE;
}

/* Class 2 waits for the modem's XON after CONNECT; 2.0 may send at once. */
static ModemWait
class2_wait_xon(Class2 *c)
{
	gint64 deadline = modem_deadline(c->call->config->command_timeout_ms);

	for (;;) {
		int ch;
		ModemWait wait = modem_port_getc(c->port, deadline, &ch);

		if (wait != MODEM_WAIT_OK || ch == MODEM_XON)
			return wait;
	}
}

static ModemWait
class2_page_data(Class2 *c)
{
	gint64 deadline = modem_deadline(c->call->config->page_timeout_ms);
	guint8 chunk[DATA_CHUNK];
	guint8 stuffed[DATA_CHUNK * 2];
	int len;

	modem_port_set_xon(c->port, TRUE);
	while ((len = t4_tx_get_chunk(c->t4, chunk, sizeof chunk)) > 0) {
		gsize n = 0;
		ModemWait wait;

		for (int i = 0; i < len; i++) {
			if (chunk[i] == MODEM_DLE)
				stuffed[n++] = MODEM_DLE;
			stuffed[n++] = chunk[i];
		}
		wait = modem_port_write(c->port, stuffed, n, deadline);
		if (wait != MODEM_WAIT_OK) {
			modem_port_set_xon(c->port, FALSE);
			return wait;
		}
	}
	return MODEM_WAIT_OK;
}

/* After the data: the post-page message, and the far end's verdict (+FPTS / +FPS). */
static ModemWait
class2_post_page(Class2 *c, int ppm, int *status, char **final)
{
	static const guint8 marks[] = {DLE_MPS, DLE_EOM, DLE_EOP};
	const ModemConfig *config = c->call->config;
	g_autoptr(GPtrArray) info = g_ptr_array_new_with_free_func(g_free);
	guint8 end[2] = {MODEM_DLE, c->v20 ? marks[ppm] : MODEM_ETX};
	ModemWait wait = modem_port_write(c->port, end, sizeof end,
	                                  modem_deadline(config->command_timeout_ms));

	modem_port_set_xon(c->port, FALSE);
	*status = -1;
	if (wait == MODEM_WAIT_OK && !c->v20) {
		g_autofree char *fet = g_strdup_printf("AT+FET=%d", ppm);
		g_autofree char *ok = NULL;

		/* Class 2: OK once the page has gone, then +FET says what follows */
		wait = modem_port_wait_final(c->port, modem_deadline(config->page_timeout_ms), info,
		                             &ok);
		if (wait == MODEM_WAIT_OK && strcmp(ok, "OK") != 0) {
			class2_infos(c, info);
			*final = g_steal_pointer(&ok);
			return wait;
		}
		class2_infos(c, info);
		g_ptr_array_set_size(info, 0);
		if (wait == MODEM_WAIT_OK)
			wait = modem_port_command(c->port, fet, config->page_timeout_ms, info,
			                          final);
	} else if (wait == MODEM_WAIT_OK) {
		wait = modem_port_wait_final(c->port, modem_deadline(config->page_timeout_ms), info,
		                             final);
	}
	class2_infos(c, info);
	for (guint i = 0; i < info->len; i++) {
		const char *line = g_ptr_array_index(info, i);

		if (g_str_has_prefix(line, "+FPTS:") || g_str_has_prefix(line, "+FPS:"))
			*status = atoi(strchr(line, ':') + 1);
	}
	return wait;
}

static int
post_page_message(Class2 *c, guint page)
{
	return page < c->call->request->pages ? POST_PAGE_MPS : POST_PAGE_EOP;
}

/* One attempt at one page: +FDT, CONNECT, data, end; the page status or -1. */
static gboolean
class2_send_page(Class2 *c, guint page, int *status, ModemOutcome *out)
{
	const ModemConfig *config = c->call->config;
	g_autofree char *final = NULL;
	ModemWait wait = class2_command(c, "AT+FDT", config->answer_timeout_ms, &final);

	if (wait == MODEM_WAIT_OK && strcmp(final, "CONNECT") != 0) {
		hangup_outcome(c, "starting a page", final, out);
		return FALSE;
	}
	if (wait == MODEM_WAIT_OK) {
		int rate = bit_rate(c->params.br);

		/* coded now, as just negotiated; a page sent again (RTN) is coded again, since
		 * the rate and so the scan line padding may have fallen back */
		t4_tx_set_tx_encoding(c->t4, t4_encoding(c->params.df));
		t4_tx_set_min_bits_per_row(c->t4,
		                           scan_time_ms(c->params.st, c->params.vr) * rate / 1000);
		if (t4_tx_start_page(c->t4) != 0) {
			modem_outcome_set(
			        out, FAX_RESULT_LOCAL, c->pages_sent,
			        g_strdup_printf("cannot read page %u of the document", page));
			return FALSE;
		}
		if (!class2_page_fits(c, out))
			return FALSE;
		if (!c->v20)
			wait = class2_wait_xon(c);
	}
	if (wait == MODEM_WAIT_OK) {
		modem_report(c->call, FAX_PHASE_PAGE, page, NULL);
		wait = class2_page_data(c);
	}
	g_clear_pointer(&final, g_free);
	if (wait == MODEM_WAIT_OK)
		wait = class2_post_page(c, post_page_message(c, page), status, &final);
	if (wait != MODEM_WAIT_OK) {
		if (wait == MODEM_WAIT_CANCELED) {
			static const guint8 can[] = {MODEM_DLE, MODEM_CAN};

			/* DLE CAN: the modem abandons the page and hangs up */
			modem_port_write(c->port, can, sizeof can,
			                 modem_deadline(config->command_timeout_ms));
		}
		modem_wait_outcome(c->call, wait, "sending a page", c->pages_sent, out);
		return FALSE;
	}
	if (strcmp(final, "OK") != 0 || *status < 0) {
		hangup_outcome(c, "ending a page", final, out);
		return FALSE;
	}
	return TRUE;
}

static gboolean
class2_pages(Class2 *c, ModemOutcome *out)
{
	for (guint page = 1; page <= c->call->request->pages; page++) {
		int tries = 0;

		for (;;) {
			int status = -1;

			if (!class2_send_page(c, page, &status, out))
				return FALSE;
			/* 1 MCF, 3 RTP: the page is good; 2 RTN: send it again */
			if (status == 1 || status == 3) {
				t4_tx_end_page(c->t4);
				break;
			}
			if (status != 2 || ++tries > PAGE_RETRIES) {
				modem_outcome_set(out, FAX_RESULT_FAILED, c->pages_sent,
				                  g_strdup_printf("the far end rejected page %u "
				                                  "(page status %d)",
				                                  page, status));
				return FALSE;
			}
			/* the same page again: the next start_page codes it anew */
		}
		c->pages_sent = page;
	}
	return TRUE;
}

static void
class2_success(Class2 *c, gint64 start_us, ModemOutcome *out)
{
	gint64 secs = (g_get_monotonic_time() - start_us) / G_USEC_PER_SEC;

	modem_outcome_set(
	        out, FAX_RESULT_OK, c->pages_sent,
	        g_strdup_printf(
	                "sent %u page%s in %" G_GINT64_FORMAT " s at %d bps, %s, ECM %s",
	                c->pages_sent, c->pages_sent == 1 ? "" : "s", secs, bit_rate(c->params.br),
	                modem_coding_name(t4_encoding(c->params.df)), c->params.ec ? "on" : "off"));
}

void
modem_class2_send(const ModemCall *call, ModemOutcome *out)
{
	Class2 c = {0};
	gint64 start = g_get_monotonic_time();

	c.call = call;
	c.port = call->port;
	c.v20 = call->class_1_0;
	c.hangup = -1;
	c.t4 = t4_tx_init(NULL, call->request->tiff, -1, -1);
	if (c.t4 == NULL) {
		modem_outcome_set(
		        out, FAX_RESULT_LOCAL, 0,
		        g_strdup_printf("cannot read the document %s", call->request->tiff));
		return;
	}
	if (class2_setup(&c, out) && class2_dial(&c, out)) {
		modem_report(call, FAX_PHASE_NEGOTIATING, 0, c.remote_id);
		if (class2_pages(&c, out))
			class2_success(&c, start, out);
	}
	t4_tx_free(c.t4);
	g_free(c.remote_id);
}
