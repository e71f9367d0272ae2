/*
 * softmodem-class2: hk-softmodem's Class 2 (EIA-592 draft, "SP-2388") and Class 2.0
 * (ITU-T T.32) fax modem, the one spandsp 0.0.6 does not have. The DTE speaks Class 2 AT
 * commands (+FCLASS, +FLID/+FLI, +FDCC/+FCC, +FDIS/+FIS, +FBOR/+FBO, D, +FDT, +FET,
 * DLE-framed page data); the modem's T.30 is spandsp's own (fax_init as the caller), so
 * what reaches the far end is a real T.30 session with V.17/V.29/V.27ter, ECM and
 * MH/MR/MMR.
 *
 * A real Class 2 modem sends page data to the line while the DTE is still writing it.
 * spandsp's T.30 wants a page whole before it starts it, so this modem stops the line's
 * clock while it waits for the DTE: inside T.30's phase B handler (the far end's DIS is in;
 * the DTE is told +FCON/+FDIS and OK, then gives +FDT and page 1) and phase D handler (the
 * far end confirmed a page; the DTE is told +FPTS/+FPS, then gives the next page). The
 * line, both T.30 engines and their timers stand still meanwhile, so the line time counted
 * is what the call costs on a real line. The page the DTE sent, coded as the +FDCS/+FCS
 * this modem reported, is decoded (spandsp's T.4 decoder) and handed to T.30, which sends
 * it coded as it negotiated: the same, as +FDCS is read off T.30's own choice.
 *
 * Page data is taken from the DTE at the line's rate plus a small buffer, as a modem's
 * buffer drains (the pty holds the DTE back: no XOFF is sent; Class 2 gets its XON after
 * CONNECT). After RTN (the far end of --garble-page) it reports page status 2, takes the
 * page the DTE sends again and lets T.30 retrain and send it again. Not emulated:
 * receiving (+FDR, ATA), EOM (+FET=1, DLE ;), polling, procedure interrupts.
 *
 * Talks to: spandsp (T.30, modems, T.4 codec, through private structures of 0.0.6 where
 * T.30 has no API: the far DIS, the negotiated modem and coding, T.4's page source), the
 * host (softmodem-line.c: the pty, the line, the wait for the DTE), libtiff.
 * Must never: free the fax engine from inside one of its callbacks (a kill is deferred to
 * the next audio chunk), or wait for the DTE without the host's bound.
 */
#define SPANDSP_EXPOSE_INTERNAL_STRUCTURES
#include "softmodem.h"

#include <spandsp/private/t30_dis_dtc_dcs_bits.h>
#include <stdlib.h>
#include <string.h>

#define C2_ID_MAX     20
#define C2_CMD_MAX    256
#define C2_PAGE_MAX   (4 * 1024 * 1024) /* a page of DTE data beyond this is refused */
#define C2_WIDTH      1728
#define C2_BUFFER     128 /* the modem's transmit buffer, bytes */
#define C2_MAX_PARAMS 9   /* VR BR WD LN DF EC BF ST JP */
#define C2_PPM_NONE   (-1)
#define C2_PPM_MPS    0
#define C2_PPM_EOM    1
#define C2_PPM_EOP    2
#define C2_DLE_MPS    0x2c
#define C2_DLE_EOM    0x3b
#define C2_DLE_EOP    0x2e
#define C2_DLE        0x10

/* Class 2 hang-up codes (+FHNG decimal, +FHS the same digits in hex) */
#define HNG_NORMAL       0
#define HNG_ABORTED      2
#define HNG_NO_ANSWER    11
#define HNG_PHASE_B      20
#define HNG_DCS_UNANSWER 25
#define HNG_NO_TRAIN     27
#define HNG_IMAGE_FORMAT 41
#define HNG_PHASE_D      50
#define HNG_MPS_UNANSWER 52
#define HNG_EOP_UNANSWER 54

typedef enum {
	C2_IDLE,    /* on hook, command mode */
	C2_DIALING, /* ATD: the line rings */
	C2_CALL,    /* connected: T.30 runs, or waits for the DTE */
	C2_HANGING, /* T.30 is being freed: its phase E is ours, not the call's */
} C2State;

typedef enum {
	C2_PEND_NONE,
	C2_PEND_DIAL, /* ATD: OK after the far end's DIS */
	C2_PEND_PAGE, /* +FET (Class 2) or DLE MPS/EOP (2.0): +FPTS/+FPS after the far end's answer
	               */
} C2Pending;

struct SmClass2 {
	SmClass2Host host;
	char *work_dir;
	gboolean verbose;
	/* the DTE's view */
	GString *cmd;
	gboolean echo;
	gboolean numeric; /* V0 */
	gboolean quiet;   /* Q1 */
	gboolean v20;     /* a Class 2.0 modem (+FCLASS=? 0,2.0), else Class 2 (0,2) */
	int fclass;       /* 0, or 2 for the modem's fax class (2 or 2.0) */
	char lid[C2_ID_MAX + 1];
	int cap[C2_MAX_PARAMS];
	int session[C2_MAX_PARAMS];
	int bor;
	gboolean data_mode;
	gboolean dle;
	gint64 data_start; /* CONNECT, for the modem's pace */
	gsize data_taken;
	GByteArray *page;
	C2Pending pending;
	/* the call */
	C2State state;
	int call;
	fax_state_t *fax;
	t30_state_t *t30;
	int dcs[C2_MAX_PARAMS]; /* what +FDCS/+FCS said */
	gboolean dcs_told;
	int pages_in;         /* pages the DTE handed over */
	int ppm;              /* of the last of them */
	gboolean waiting;     /* in a phase handler, for the DTE */
	gboolean need_reader; /* T.30 opened page 1: give T.4 the row reader */
	int retrain_rate;     /* after RTN: the rate T.30 trains again at; 0: its first */
	int told_rate;        /* the highest rate +FDCS told in this call */
	TIFF *next;           /* page 2 onwards, read row by row */
	guint32 next_row;
	guint32 next_rows;
	int kill_code; /* >= 0: end the call at the next chunk with this code */
	gboolean told_end;
};

/* ----- talking to the DTE ----- */

static void c2_log(SmClass2 *c2, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
c2_log(SmClass2 *c2, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	if (!c2->verbose)
		return;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_printerr("hk-softmodem: class2: %s\n", msg);
}

static void
dte_write(SmClass2 *c2, const void *buf, size_t len)
{
	c2->host.write(c2->host.data, buf, len);
}

/* An information line: +FCON, +FDIS:..., framed by CR LF as with V1. */
static void dte_info(SmClass2 *c2, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
dte_info(SmClass2 *c2, const char *fmt, ...)
{
	g_autofree char *text = NULL;
	g_autofree char *framed = NULL;
	va_list ap;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	c2_log(c2, "-> %s", text);
	framed = g_strdup_printf("\r\n%s\r\n", text);
	dte_write(c2, framed, strlen(framed));
}

static void
dte_result(SmClass2 *c2, const char *code)
{
	static const struct {
		const char *verbose;
		const char *numeric;
	} codes[] = {
	        {"OK", "0"},    {"CONNECT", "1"}, {"RING", "2"},      {"NO CARRIER", "3"},
	        {"ERROR", "4"}, {"BUSY", "7"},    {"NO ANSWER", "8"}, {"NO DIALTONE", "6"},
	};

	if (c2->quiet)
		return;
	if (c2->numeric) {
		for (gsize i = 0; i < G_N_ELEMENTS(codes); i++) {
			if (strcmp(codes[i].verbose, code) == 0) {
				g_autofree char *n = g_strdup_printf("%s\r", codes[i].numeric);

				c2_log(c2, "-> %s", code);
				dte_write(c2, n, strlen(n));
				return;
			}
		}
	}
	dte_info(c2, "%s", code);
}

/* +FHNG:25 in Class 2, +FHS:25 (the same digits, read as hex) in 2.0. */
static void
dte_hangup_code(SmClass2 *c2, int code)
{
	if (c2->v20)
		dte_info(c2, "+FHS:%02d", code);
	else
		dte_info(c2, "+FHNG:%d", code);
}

/* ----- session parameters ----- */

/* what a modem says before the DTE sets anything: MH, no ECM (efax relies on it) */
static const int c2_defaults[C2_MAX_PARAMS] = {1, 5, 0, 2, 0, 0, 0, 0, 0};
static const int c2_limits[C2_MAX_PARAMS] = {1, 5, 4, 2, 3, 2, 1, 7, 0};

static char *
params_text(const int *p, gboolean v20)
{
	/* Class 2.0 writes them in hex, which for these ranges is the same digits */
	return g_strdup_printf(v20 ? "%X,%X,%X,%X,%X,%X,%X,%X" : "%d,%d,%d,%d,%d,%d,%d,%d", p[0],
	                       p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
}

/* "1,5,,2" sets the first, second and fourth; an empty place keeps its value. */
static gboolean
params_set(int *p, const char *value)
{
	int n = 0;
	const char *s = value;

	while (*s != '\0' && n < C2_MAX_PARAMS) {
		if (*s != ',') {
			char *end;
			long v = strtol(s, &end, 16);

			if (end == s || v < 0 || v > c2_limits[n])
				return FALSE;
			p[n] = (int)v;
			s = end;
		}
		n++;
		if (*s == ',')
			s++;
		else if (*s != '\0')
			return FALSE;
	}
	return *s == '\0';
}

/* ----- the far end's DIS, as +FDIS/+FIS values ----- */

static gboolean
dis_bit(const t30_state_t *t30, int bit)
{
	return (t30->far_dis_dtc_frame[3 + (bit - 1) / 8] & (1 << ((bit - 1) % 8))) != 0;
}

/* bits 21-23 of DIS to the Class 2 ST code (normal/fine pairs: 0 0/0 ... 7 40/40) */
static int
dis_scan_time(const t30_state_t *t30)
{
	static const int st[8] = {5, 1, 3, 4, 7, 6, 2, 0};
	int field = (t30->far_dis_dtc_frame[5] >> 4) & 7;

	return st[field];
}

static int
dis_rate(const t30_state_t *t30)
{
	int bits = t30->far_dis_dtc_frame[4] & 0x3c; /* bits 11-14 */

	if (bits == 0x2c)
		return 5; /* V.17 */
	if (bits & 0x04)
		return 3; /* V.29 */
	return (bits & 0x08) ? 1 : 0;
}

static void
far_caps(const t30_state_t *t30, int *p)
{
	p[0] = dis_bit(t30, T30_DIS_BIT_200_200_CAPABLE) ? 1 : 0;
	p[1] = dis_rate(t30);
	p[2] = 0;
	p[3] = 2;
	p[4] = dis_bit(t30, T30_DIS_BIT_T6_CAPABLE)   ? 3
	       : dis_bit(t30, T30_DIS_BIT_2D_CAPABLE) ? 1
	                                              : 0;
	p[5] = dis_bit(t30, T30_DIS_BIT_ECM_CAPABLE) ? 2 : 0;
	p[6] = 0;
	p[7] = dis_scan_time(t30);
	p[8] = 0;
}

/* What T.30 chose from the far DIS and our settings (read, not guessed), plus the
 * resolution the DTE's pages will have. */
static void
negotiated(SmClass2 *c2, int *p)
{
	const t30_state_t *t30 = c2->t30;
	int caps[C2_MAX_PARAMS];

	far_caps(t30, caps);
	memcpy(p, c2->session, sizeof(int) * C2_MAX_PARAMS);
	p[0] = c2->session[0] && caps[0];
	if (t30->current_permitted_modems & T30_SUPPORT_V17)
		p[1] = 5;
	else if (t30->current_permitted_modems & T30_SUPPORT_V29)
		p[1] = 3;
	else
		p[1] = 1;
	if (c2->retrain_rate > 0)
		p[1] = c2->retrain_rate / 2400 - 1;
	p[2] = 0;
	p[3] = MIN(c2->session[3], caps[3]);
	switch (t30->line_encoding) {
	case T4_COMPRESSION_ITU_T6:
		p[4] = 3;
		break;
	case T4_COMPRESSION_ITU_T4_2D:
		p[4] = 1;
		break;
	default:
		p[4] = 0;
		break;
	}
	p[5] = t30->error_correcting_mode ? MAX(c2->session[5], 1) : 0;
	p[6] = 0;
	p[7] = p[4] == 3 ? 0 : caps[7];
}

/* spandsp 0.0.6's order of fallback (t30.c's fallback_sequence), modem and rate */
static const struct {
	int modem;
	int rate;
} fallbacks[] = {
        {T30_SUPPORT_V17, 14400},   {T30_SUPPORT_V17, 12000},   {T30_SUPPORT_V17, 9600},
        {T30_SUPPORT_V29, 9600},    {T30_SUPPORT_V17, 7200},    {T30_SUPPORT_V29, 7200},
        {T30_SUPPORT_V27TER, 4800}, {T30_SUPPORT_V27TER, 2400},
};

/* The rate T.30 trains again at after RTN (its step_fallback_entry()); 0: none is left. */
static int
fallback_rate(const t30_state_t *t30)
{
	for (guint i = (guint)t30->current_fallback + 1; i < G_N_ELEMENTS(fallbacks); i++) {
		if (fallbacks[i].modem & t30->current_permitted_modems)
			return fallbacks[i].rate;
	}
	return 0;
}

/* BR of +FDCS in bit/s: 0 2400, 1 4800 ... 5 14400 */
static int
dcs_bit_rate(const SmClass2 *c2)
{
	return (c2->dcs[1] + 1) * 2400;
}

/* ----- the call's T.30 ----- */

static int
encoding_of(int df)
{
	return df == 3   ? T4_COMPRESSION_ITU_T6
	       : df == 1 ? T4_COMPRESSION_ITU_T4_2D
	                 : T4_COMPRESSION_ITU_T4_1D;
}

static char *
page_path(SmClass2 *c2, int page)
{
	g_autofree char *name = g_strdup_printf("c2-call%d-page%d.tif", c2->call, page);

	return g_build_filename(c2->work_dir, name, NULL);
}

static guint8
reverse_bits(guint8 b)
{
	b = (guint8)((b & 0xf0) >> 4 | (b & 0x0f) << 4);
	b = (guint8)((b & 0xcc) >> 2 | (b & 0x33) << 2);
	return (guint8)((b & 0xaa) >> 1 | (b & 0x55) << 1);
}

/* The DTE's page data, coded per +FDCS, decoded into page-N.tif; FALSE if it holds no
 * image. */
static gboolean
decode_page(SmClass2 *c2, int page)
{
	g_autofree char *path = page_path(c2, page);
	t4_rx_state_t *t4 = t4_rx_init(NULL, path, T4_COMPRESSION_ITU_T6);
	gboolean reversed = c2->bor == 1 || c2->bor == 3;
	t4_stats_t stats;
	int rc;

	if (t4 == NULL)
		return FALSE;
	if (reversed) {
		for (guint i = 0; i < c2->page->len; i++)
			c2->page->data[i] = reverse_bits(c2->page->data[i]);
	}
	t4_rx_set_rx_encoding(t4, encoding_of(c2->dcs[4]));
	t4_rx_set_image_width(t4, C2_WIDTH);
	t4_rx_set_x_resolution(t4, T4_X_RESOLUTION_R8);
	t4_rx_set_y_resolution(t4, c2->dcs[0] ? T4_Y_RESOLUTION_FINE : T4_Y_RESOLUTION_STANDARD);
	t4_rx_start_page(t4);
	t4_rx_put_chunk(t4, c2->page->data, (int)c2->page->len);
	rc = t4_rx_end_page(t4);
	t4_rx_get_transfer_statistics(t4, &stats);
	t4_rx_free(t4);
	c2_log(c2, "page %d from the DTE: %u bytes, %d rows, %d bad", page, c2->page->len,
	       stats.length, stats.bad_rows);
	g_byte_array_set_size(c2->page, 0);
	return rc == 0 && stats.length > 0;
}

/* T.4's page source from page 2 on: the rows of the page the DTE just gave. */
static int
read_row(void *user_data, uint8_t buf[], size_t len)
{
	SmClass2 *c2 = user_data;

	if (c2->next == NULL || c2->next_row >= c2->next_rows ||
	    (size_t)TIFFScanlineSize(c2->next) > len)
		return 0;
	if (TIFFReadScanline(c2->next, buf, c2->next_row++, 0) != 1)
		return -1;
	return (int)len;
}

/* After +FET / DLE MPS|EOP: T.4 says "more pages" exactly when the DTE said MPS. */
static void
set_more_pages(SmClass2 *c2)
{
	t4_tx_state_t *t4 = &c2->t30->t4.tx;

	t4->tiff.stop_page = c2->ppm == C2_PPM_MPS ? INT_MAX : t4->current_page;
}

/* The line stands still while the DTE brings the next page and says what follows it. */
static gboolean
wait_for_page(SmClass2 *c2)
{
	c2->ppm = C2_PPM_NONE;
	c2->waiting = TRUE;
	c2->host.wait_dte(c2->host.data);
	c2->waiting = FALSE;
	return c2->ppm != C2_PPM_NONE && c2->kill_code < 0;
}

static int
hangup_code_for_stage(SmClass2 *c2)
{
	if (c2->pages_in == 0)
		return HNG_DCS_UNANSWER;
	return c2->ppm == C2_PPM_EOP ? HNG_EOP_UNANSWER : HNG_MPS_UNANSWER;
}

static void
kill_call(SmClass2 *c2, int code)
{
	if (c2->kill_code < 0)
		c2->kill_code = code;
}

static int
on_phase_b(t30_state_t *t30, void *user_data, int result)
{
	SmClass2 *c2 = user_data;
	int caps[C2_MAX_PARAMS];
	g_autofree char *text = NULL;
	const char *ident = t30_get_rx_ident(t30);

	if (result != T30_DIS || c2->pending != C2_PEND_DIAL)
		return T30_ERR_OK;
	far_caps(t30, caps);
	text = params_text(caps, c2->v20);
	dte_info(c2, c2->v20 ? "+FCO" : "+FCON");
	if (ident != NULL && *ident != '\0')
		dte_info(c2, "%s:\"%s\"", c2->v20 ? "+FCI" : "+FCSI", ident);
	dte_info(c2, "%s:%s", c2->v20 ? "+FIS" : "+FDIS", text);
	c2->pending = C2_PEND_NONE;
	dte_result(c2, "OK");
	if (!wait_for_page(c2)) {
		kill_call(c2, HNG_ABORTED);
		return T30_ERR_CALLDROPPED;
	}
	if (!decode_page(c2, 1)) {
		kill_call(c2, HNG_IMAGE_FORMAT);
		return T30_ERR_FILEERROR;
	}
	c2->need_reader = TRUE;
	return T30_ERR_OK;
}

static void
tell_page_status(SmClass2 *c2, int status)
{
	dte_info(c2, "%s:%d", c2->v20 ? "+FPS" : "+FPTS", status);
	if (c2->ppm == C2_PPM_EOP && (status == 1 || status == 3)) {
		dte_hangup_code(c2, HNG_NORMAL);
		c2->told_end = TRUE;
	}
	c2->pending = C2_PEND_NONE;
	dte_result(c2, "OK");
}

/* RTN: T.30 (retransmit-capable) trains again and sends the page again from its own copy.
 * As Class 2 has it, the DTE sends the page again too, after +FPTS:2 / +FPS:2: that copy
 * is taken and checked, and must still hold an image. */
static int
take_page_again(SmClass2 *c2)
{
	/* the retrain's DCS goes out after this returns: +FDCS tells it with the next +FDT */
	c2->retrain_rate = fallback_rate(c2->t30);
	c2->dcs_told = FALSE;
	if (!wait_for_page(c2)) {
		kill_call(c2, HNG_ABORTED);
		return 0;
	}
	c2_log(c2, "the DTE sends the page again after RTN");
	if (!decode_page(c2, c2->pages_in)) {
		kill_call(c2, HNG_IMAGE_FORMAT);
		return 0;
	}
	set_more_pages(c2);
	return 0;
}

static int
on_phase_d(t30_state_t *t30, void *user_data, int fcf)
{
	SmClass2 *c2 = user_data;
	g_autofree char *path = NULL;
	int status;

	switch (fcf) {
	case T30_MCF:
		status = 1;
		break;
	case T30_RTP:
		status = 3;
		break;
	case T30_RTN:
		status = 2;
		break;
	default:
		/* PIN, PIP: procedure interrupts are not emulated */
		c2_log(c2, "phase D: %s is not emulated", t30_frametype(fcf));
		kill_call(c2, HNG_PHASE_D);
		return 0;
	}
	tell_page_status(c2, status);
	if (status == 2)
		return take_page_again(c2);
	if (c2->ppm != C2_PPM_MPS)
		return 0;
	if (!wait_for_page(c2)) {
		kill_call(c2, HNG_ABORTED);
		return 0;
	}
	if (c2->next != NULL)
		TIFFClose(c2->next);
	c2->next = NULL;
	if (!decode_page(c2, c2->pages_in)) {
		kill_call(c2, HNG_IMAGE_FORMAT);
		return 0;
	}
	path = page_path(c2, c2->pages_in);
	c2->next = TIFFOpen(path, "r");
	c2->next_row = 0;
	c2->next_rows = 0;
	if (c2->next != NULL)
		TIFFGetField(c2->next, TIFFTAG_IMAGELENGTH, &c2->next_rows);
	set_more_pages(c2);
	return 0;
}

static int
hangup_code_of(SmClass2 *c2, int status)
{
	switch (status) {
	case T30_ERR_OK:
		return HNG_NORMAL;
	case T30_ERR_T0_EXPIRED:
	case T30_ERR_T1_EXPIRED:
		return HNG_NO_ANSWER;
	case T30_ERR_CANNOT_TRAIN:
		return HNG_NO_TRAIN;
	case T30_ERR_TX_PHBDEAD:
		return HNG_DCS_UNANSWER;
	case T30_ERR_FILEERROR:
		return HNG_IMAGE_FORMAT;
	default:
		return c2->pages_in == 0 ? HNG_PHASE_B : hangup_code_for_stage(c2);
	}
}

static void
on_phase_e(t30_state_t *t30, void *user_data, int status)
{
	SmClass2 *c2 = user_data;

	c2_log(c2, "T.30 ended: %s", t30_completion_code_to_str(status));
	if (c2->state == C2_CALL)
		kill_call(c2, hangup_code_of(c2, status));
}

static void
start_t30(SmClass2 *c2)
{
	g_autofree char *page1 = NULL;
	int modems = T30_SUPPORT_V27TER;
	int codings = T30_SUPPORT_T4_1D_COMPRESSION;

	c2->call++;
	page1 = page_path(c2, 1);
	c2->fax = fax_init(NULL, TRUE);
	c2->t30 = fax_get_t30_state(c2->fax);
	if (c2->session[1] >= 3)
		modems |= T30_SUPPORT_V29;
	if (c2->session[1] >= 4)
		modems |= T30_SUPPORT_V17;
	if (c2->session[4] >= 1)
		codings |= T30_SUPPORT_T4_2D_COMPRESSION;
	if (c2->session[4] >= 3)
		codings |= T30_SUPPORT_T6_COMPRESSION;
	t30_set_tx_ident(c2->t30, c2->lid);
	t30_set_tx_file(c2->t30, page1, -1, -1);
	t30_set_supported_modems(c2->t30, modems);
	t30_set_supported_compressions(c2->t30, codings);
	t30_set_ecm_capability(c2->t30, c2->session[5] > 0);
	/* after RTN, send the page again rather than the next one (0.0.6 has no API for it) */
	c2->t30->retransmit_capable = TRUE;
	t30_set_phase_b_handler(c2->t30, on_phase_b, c2);
	t30_set_phase_d_handler(c2->t30, on_phase_d, c2);
	t30_set_phase_e_handler(c2->t30, on_phase_e, c2);
	fax_set_transmit_on_idle(c2->fax, TRUE);
	if (c2->verbose) {
		span_log_set_level(t30_get_logging_state(c2->t30),
		                   SPAN_LOG_FLOW | SPAN_LOG_SHOW_TAG | SPAN_LOG_SHOW_SAMPLE_TIME);
		span_log_set_tag(t30_get_logging_state(c2->t30), "near-t30");
	}
	c2->pages_in = 0;
	c2->ppm = C2_PPM_NONE;
	c2->kill_code = -1;
	c2->dcs_told = FALSE;
	c2->told_end = FALSE;
	c2->need_reader = FALSE;
	c2->retrain_rate = 0;
	c2->told_rate = 0;
	c2->state = C2_CALL;
}

static void
stop_t30(SmClass2 *c2)
{
	if (c2->fax != NULL) {
		c2->state = C2_HANGING; /* phase E from the terminate is ours: ignore it */
		t30_terminate(c2->t30);
		fax_free(c2->fax);
	}
	c2->fax = NULL;
	c2->t30 = NULL;
	if (c2->next != NULL)
		TIFFClose(c2->next);
	c2->next = NULL;
	c2->data_mode = FALSE;
	g_byte_array_set_size(c2->page, 0);
}

/* The call is over: the DTE hears why (if it did not already), the line is hung up. */
static void
end_call(SmClass2 *c2, int code, gboolean tell_line)
{
	stop_t30(c2);
	c2->state = C2_IDLE;
	if (!c2->told_end || code != HNG_NORMAL)
		dte_hangup_code(c2, code);
	if (c2->pending != C2_PEND_NONE)
		dte_result(c2, code == HNG_NORMAL ? "OK" : "ERROR");
	c2->pending = C2_PEND_NONE;
	if (tell_line)
		c2->host.control(c2->host.data, AT_MODEM_CONTROL_HANGUP);
}

/* ----- page data from the DTE ----- */

/* What follows the page (Class 2: +FET=n; 2.0: the DLE code after the data): the wait for
 * the DTE is over, the far end's verdict is due. */
static void
set_ppm(SmClass2 *c2, int ppm)
{
	c2->ppm = ppm;
	c2->pending = C2_PEND_PAGE;
	if (ppm == C2_PPM_EOM) {
		c2_log(c2, "EOM is not emulated");
		kill_call(c2, HNG_PHASE_D);
	}
}

static void
page_ends(SmClass2 *c2, int ppm)
{
	c2->data_mode = FALSE;
	c2->pages_in++;
	if (c2->v20)
		set_ppm(c2, ppm);
	else
		dte_result(c2, "OK"); /* Class 2: OK now, and +FET says what follows */
}

static void
data_byte(SmClass2 *c2, guint8 b)
{
	static const guint8 dle_dle[] = {C2_DLE, C2_DLE};

	if (!c2->dle) {
		if (b == C2_DLE)
			c2->dle = TRUE;
		else if (c2->page->len < C2_PAGE_MAX)
			g_byte_array_append(c2->page, &b, 1);
		return;
	}
	c2->dle = FALSE;
	switch (b) {
	case C2_DLE:
		g_byte_array_append(c2->page, &b, 1);
		break;
	case 0x1a: /* DLE SUB: two DLEs (T.32) */
		g_byte_array_append(c2->page, dle_dle, 2);
		break;
	case 0x03: /* DLE ETX */
		page_ends(c2, C2_PPM_EOP);
		break;
	case C2_DLE_MPS:
		page_ends(c2, C2_PPM_MPS);
		break;
	case C2_DLE_EOM:
		page_ends(c2, C2_PPM_EOM);
		break;
	case C2_DLE_EOP:
		page_ends(c2, C2_PPM_EOP);
		break;
	case 0x18: /* DLE CAN: the DTE abandons the page */
		c2_log(c2, "DLE CAN: page abandoned");
		c2->data_mode = FALSE;
		kill_call(c2, HNG_ABORTED);
		break;
	default:
		break;
	}
}

/* ----- AT commands ----- */

typedef enum { Q_SET, Q_READ, Q_TEST, Q_ACTION } C2Query;

/* The identity queries and the parameters a Class 2 DTE sets and forgets: accepted. */
static const char *const benign[] = {
        "FCR",     "FAA",   "FAXERR", "FBUG",    "FPHCTO", "FCQ",  "FTBC", "FMINSP", "FRBC",
        "FVRFC",   "FWDFC", "FLNFC",  "FDFFC",   "FECM",   "FNR",  "FIE",  "FPP",    "FLO",
        "FPR",     "FAP",   "FCT",    "FREL",    "FSPL",   "FLPL", "FCIG", "FNS",    "FPI",
        "FPA",     "FSA",   "FPW",    "FCTCRTY", "FRY",    "FMS",  "FBS",  "FND",    "FEA",
        "FFC",     "FIP",   "FBU",    "FCRC",    "FHS",    "FHNG", "FPTS", "FPS",    "FBADLIN",
        "FBADMUL", "FRQ",   "FSP",    "FPN",     "FLP",    "FAR",  "FDD",  NULL,
};

static gboolean
is_benign(const char *name)
{
	for (const char *const *b = benign; *b != NULL; b++) {
		if (strcmp(*b, name) == 0)
			return TRUE;
	}
	return FALSE;
}

static gboolean
cmd_identity(SmClass2 *c2, const char *name, C2Query q)
{
	const char *value = NULL;

	if (strcmp(name, "FMFR") == 0 || strcmp(name, "FMI") == 0)
		value = "hanko";
	else if (strcmp(name, "FMDL") == 0 || strcmp(name, "FMM") == 0)
		value = "hk-softmodem Class 2/2.0 (spandsp T.30)";
	else if (strcmp(name, "FREV") == 0 || strcmp(name, "FMR") == 0)
		value = "1";
	if (value == NULL || q != Q_READ)
		return FALSE;
	dte_info(c2, "%s", value);
	return TRUE;
}

static gboolean
cmd_fclass(SmClass2 *c2, C2Query q, const char *value)
{
	switch (q) {
	case Q_TEST:
		dte_info(c2, c2->v20 ? "0,2.0" : "0,2");
		return TRUE;
	case Q_READ:
		dte_info(c2, "%s", c2->fclass == 0 ? "0" : c2->v20 ? "2.0" : "2");
		return TRUE;
	case Q_SET:
		if (strcmp(value, "0") == 0) {
			c2->fclass = 0;
			return TRUE;
		}
		if (strcmp(value, c2->v20 ? "2.0" : "2") == 0) {
			c2->fclass = 2;
			return TRUE;
		}
		return FALSE;
	default:
		return FALSE;
	}
}

static gboolean
cmd_lid(SmClass2 *c2, C2Query q, const char *value)
{
	gsize len;

	switch (q) {
	case Q_TEST:
		dte_info(c2, "(20),(32-127)");
		return TRUE;
	case Q_READ:
		dte_info(c2, "\"%s\"", c2->lid);
		return TRUE;
	case Q_SET:
		len = strlen(value);
		if (len >= 2 && value[0] == '"' && value[len - 1] == '"') {
			value++;
			len -= 2;
		}
		if (len > C2_ID_MAX)
			return FALSE;
		memcpy(c2->lid, value, len);
		c2->lid[len] = '\0';
		return TRUE;
	default:
		return FALSE;
	}
}

static gboolean
cmd_params(SmClass2 *c2, int *target, gboolean both, C2Query q, const char *value)
{
	g_autofree char *text = NULL;

	switch (q) {
	case Q_TEST:
		dte_info(c2, "(0,1),(0-5),(0-4),(0-2),(0-3),(0-2),(0,1),(0-7)");
		return TRUE;
	case Q_READ:
		text = params_text(target, c2->v20);
		dte_info(c2, "%s", text);
		return TRUE;
	case Q_SET:
		if (!params_set(target, value))
			return FALSE;
		if (both) /* +FDCC / +FCC set the session too */
			memcpy(c2->session, target, sizeof(c2->session));
		return TRUE;
	default:
		return FALSE;
	}
}

static gboolean
cmd_bor(SmClass2 *c2, C2Query q, const char *value)
{
	switch (q) {
	case Q_TEST:
		dte_info(c2, "(0-3)");
		return TRUE;
	case Q_READ:
		dte_info(c2, "%d", c2->bor);
		return TRUE;
	case Q_SET:
		if (strlen(value) != 1 || value[0] < '0' || value[0] > '3')
			return FALSE;
		c2->bor = value[0] - '0';
		return TRUE;
	default:
		return FALSE;
	}
}

/* The DTE may have narrowed the session (+FDIS/+FIS) after the far end's DIS: T.30,
 * which chose its coding then, follows (its modem choice stands: +FDCS reports it). */
static void
apply_session(SmClass2 *c2)
{
	t30_state_t *t30 = c2->t30;

	if (c2->session[4] < 3 && t30->line_encoding == T4_COMPRESSION_ITU_T6)
		t30->line_encoding = T4_COMPRESSION_ITU_T4_2D;
	if (c2->session[4] < 1 && t30->line_encoding == T4_COMPRESSION_ITU_T4_2D)
		t30->line_encoding = T4_COMPRESSION_ITU_T4_1D;
	if (c2->session[5] == 0 && t30->error_correcting_mode) {
		t30->error_correcting_mode = FALSE;
		if (t30->line_encoding == T4_COMPRESSION_ITU_T6)
			t30->line_encoding = T4_COMPRESSION_ITU_T4_2D;
	}
}

/* +FDT: the next page. Said once the call is up and no page is on its way. */
static gboolean
cmd_fdt(SmClass2 *c2, C2Query q)
{
	static const guint8 xon = 0x11;

	if (q != Q_ACTION || c2->state != C2_CALL || !c2->waiting || c2->pending != C2_PEND_NONE)
		return FALSE;
	if (!c2->dcs_told) {
		g_autofree char *text = NULL;

		apply_session(c2);
		negotiated(c2, c2->dcs);
		text = params_text(c2->dcs, c2->v20);
		dte_info(c2, "%s:%s", c2->v20 ? "+FCS" : "+FDCS", text);
		c2->dcs_told = TRUE;
		c2->told_rate = MAX(c2->told_rate, dcs_bit_rate(c2));
	}
	dte_result(c2, "CONNECT");
	c2->data_start = g_get_monotonic_time();
	if (!c2->v20)
		dte_write(c2, &xon, 1);
	c2->data_mode = TRUE;
	c2->data_taken = 0;
	c2->dle = FALSE;
	g_byte_array_set_size(c2->page, 0);
	return TRUE;
}

/* +FET=n (Class 2): what follows the page just sent. */
static gboolean
cmd_fet(SmClass2 *c2, C2Query q, const char *value)
{
	if (q != Q_SET || c2->v20 || c2->state != C2_CALL || !c2->waiting || c2->pages_in == 0 ||
	    strlen(value) != 1 || value[0] < '0' || value[0] > '2')
		return FALSE;
	set_ppm(c2, value[0] - '0');
	return TRUE;
}

/* One +F command; FALSE for ERROR. *final is set to FALSE when the answer comes later. */
static gboolean
cmd_extended(SmClass2 *c2, const char *name, C2Query q, const char *value, gboolean *final)
{
	if (strcmp(name, "FCLASS") == 0)
		return cmd_fclass(c2, q, value);
	if (c2->fclass != 2)
		return FALSE;
	if (strcmp(name, c2->v20 ? "FLI" : "FLID") == 0)
		return cmd_lid(c2, q, value);
	if (strcmp(name, c2->v20 ? "FCC" : "FDCC") == 0)
		return cmd_params(c2, c2->cap, TRUE, q, value);
	if (strcmp(name, c2->v20 ? "FIS" : "FDIS") == 0)
		return cmd_params(c2, c2->session, FALSE, q, value);
	if (strcmp(name, c2->v20 ? "FBO" : "FBOR") == 0)
		return cmd_bor(c2, q, value);
	if (strcmp(name, "FDT") == 0)
		return cmd_fdt(c2, q);
	if (strcmp(name, "FET") == 0) {
		*final = FALSE;
		return cmd_fet(c2, q, value);
	}
	if (strcmp(name, c2->v20 ? "FKS" : "FK") == 0 || strcmp(name, "FKSR") == 0) {
		if (c2->state == C2_CALL)
			kill_call(c2, HNG_ABORTED);
		return TRUE;
	}
	if (cmd_identity(c2, name, q))
		return TRUE;
	if (is_benign(name)) {
		if (q == Q_READ || q == Q_TEST)
			dte_info(c2, "%s", q == Q_READ ? "0" : "(0-255)");
		return TRUE;
	}
	return FALSE; /* +FDR, +FTM and the rest of Class 1: not this modem */
}

static void
reset_modem(SmClass2 *c2)
{
	c2->echo = TRUE;
	c2->numeric = FALSE;
	c2->quiet = FALSE;
	c2->fclass = 0;
	c2->bor = 0;
	c2->lid[0] = '\0';
	memcpy(c2->cap, c2_defaults, sizeof(c2->cap));
	memcpy(c2->session, c2_defaults, sizeof(c2->session));
}

/* ATD: only a fax call, only on hook. */
static gboolean
cmd_dial(SmClass2 *c2, const char *number)
{
	if (c2->fclass != 2 || c2->state != C2_IDLE || *number == '\0')
		return FALSE;
	c2_log(c2, "dialing %s", number);
	c2->state = C2_DIALING;
	c2->pending = C2_PEND_DIAL;
	c2->host.control(c2->host.data, AT_MODEM_CONTROL_CALL);
	return TRUE;
}

/* Parses "+NAME", "+NAME=value", "+NAME?", "+NAME=?" up to ';' or the end. */
static const char *
parse_extended(SmClass2 *c2, const char *s, gboolean *ok, gboolean *final)
{
	const char *end = strchr(s, ';');
	g_autofree char *item = end ? g_strndup(s, end - s) : g_strdup(s);
	char *eq = strchr(item, '=');
	char *qm = strchr(item, '?');
	C2Query q = Q_ACTION;
	const char *value = "";
	g_autofree char *name = NULL;

	if (eq != NULL && eq[1] == '?' && eq[2] == '\0') {
		q = Q_TEST;
		*eq = '\0';
	} else if (eq != NULL) {
		q = Q_SET;
		*eq = '\0';
		value = eq + 1;
	} else if (qm != NULL && qm[1] == '\0') {
		q = Q_READ;
		*qm = '\0';
	}
	name = g_ascii_strup(item, -1);
	*ok = cmd_extended(c2, name, q, value, final);
	return end != NULL ? end + 1 : s + strlen(s);
}

static void
skip_digits(const char **s)
{
	while (g_ascii_isdigit(**s))
		(*s)++;
}

/* ATH, ATZ: inside a wait for the DTE the engine is in use: the hang-up comes after it. */
static void
dte_hangs_up(SmClass2 *c2)
{
	if (c2->told_end)
		return; /* +FHNG:0 said: the modem is hanging up by itself (DCN, then on hook) */
	if (c2->waiting)
		kill_call(c2, HNG_ABORTED);
	else if (c2->state != C2_IDLE)
		end_call(c2, HNG_ABORTED, TRUE);
}

/* A basic command (a letter and its digits); FALSE for ERROR. */
static gboolean
cmd_basic(SmClass2 *c2, char c, const char **s, gboolean *final)
{
	gboolean on = **s == '1';

	switch (c) {
	case ' ':
		return TRUE;
	case 'D':
		while (strchr("TtPpWw ", **s) != NULL && **s != '\0')
			(*s)++;
		*final = FALSE;
		if (!cmd_dial(c2, *s))
			return FALSE;
		*s += strlen(*s);
		return TRUE;
	case 'H':
	case 'Z':
		skip_digits(s);
		dte_hangs_up(c2);
		if (c == 'Z')
			reset_modem(c2);
		return TRUE;
	case 'E':
	case 'V':
	case 'Q':
		skip_digits(s);
		if (c == 'E')
			c2->echo = on;
		else if (c == 'V')
			c2->numeric = !on;
		else
			c2->quiet = on;
		return TRUE;
	case 'I':
		skip_digits(s);
		dte_info(c2, "hk-softmodem Class 2/2.0");
		return TRUE;
	case 'L':
	case 'M':
	case 'X':
	case 'B':
	case 'W':
		skip_digits(s);
		return TRUE;
	case '&':
		if (**s != '\0')
			(*s)++;
		skip_digits(s);
		return TRUE;
	case 'S':
		skip_digits(s);
		if (**s == '?') {
			dte_info(c2, "000");
			(*s)++;
		} else if (**s == '=') {
			(*s)++;
			skip_digits(s);
		}
		return TRUE;
	default:
		return FALSE; /* A (answer) and anything unknown */
	}
}

static void
run_command_line(SmClass2 *c2, const char *line)
{
	const char *s = line + 2;
	gboolean ok = TRUE;
	gboolean final = TRUE;

	c2_log(c2, "<- %s", line);
	if (g_ascii_strncasecmp(line, "AT", 2) != 0)
		return;
	while (ok && *s != '\0') {
		char c = g_ascii_toupper(*s++);

		if (c == '+')
			s = parse_extended(c2, s, &ok, &final);
		else
			ok = cmd_basic(c2, c, &s, &final);
	}
	if (!ok)
		dte_result(c2, "ERROR");
	else if (final && !c2->data_mode)
		dte_result(c2, "OK");
}

static void
command_byte(SmClass2 *c2, guint8 b)
{
	if (c2->echo)
		dte_write(c2, &b, 1);
	if (b == '\r') {
		g_autofree char *line = g_strdup(g_strstrip(c2->cmd->str));

		g_string_truncate(c2->cmd, 0);
		if (*line != '\0')
			run_command_line(c2, line);
	} else if (b == '\b' || b == 0x7f) {
		if (c2->cmd->len > 0)
			g_string_truncate(c2->cmd, c2->cmd->len - 1);
	} else if (b != '\n' && c2->cmd->len < C2_CMD_MAX) {
		g_string_append_c(c2->cmd, (char)b);
	}
}

/* ----- the host's side ----- */

/* Page data is taken at the line's rate, as a modem's buffer drains to the line (the DTE
 * is held back as by CTS or XOFF): a DTE sees a page take as long as it does. */
size_t
sm_class2_room(SmClass2 *c2)
{
	gint64 elapsed;
	gint64 allowed;

	if (!c2->data_mode)
		return G_MAXSIZE;
	elapsed = g_get_monotonic_time() - c2->data_start;
	allowed = C2_BUFFER + elapsed * (dcs_bit_rate(c2) / 8) / G_USEC_PER_SEC;
	return allowed > (gint64)c2->data_taken ? (size_t)(allowed - (gint64)c2->data_taken) : 0;
}

void
sm_class2_at_rx(SmClass2 *c2, const uint8_t *buf, size_t len)
{
	if (c2->data_mode)
		c2->data_taken += len;
	for (size_t i = 0; i < len; i++) {
		if (c2->data_mode)
			data_byte(c2, buf[i]);
		else
			command_byte(c2, buf[i]);
	}
}

gboolean
sm_class2_waiting(SmClass2 *c2)
{
	return c2->waiting && c2->ppm == C2_PPM_NONE && c2->kill_code < 0;
}

void
sm_class2_abort_wait(SmClass2 *c2)
{
	kill_call(c2, HNG_ABORTED);
}

/* Work that may not run inside T.30's callbacks, before each chunk of audio. */
static void
between_chunks(SmClass2 *c2)
{
	if (c2->state != C2_CALL)
		return;
	if (c2->need_reader && c2->kill_code < 0) {
		/* T.30 has opened page 1 (start_sending_document): pages 2.. come from us */
		t4_tx_set_row_read_handler(&c2->t30->t4.tx, read_row, c2);
		set_more_pages(c2);
		c2->need_reader = FALSE;
	}
	if (c2->kill_code >= 0) {
		int code = c2->kill_code;

		c2_log(c2, "call ends, hang-up code %d", code);
		end_call(c2, code, TRUE);
	}
}

int
sm_class2_tx(SmClass2 *c2, int16_t *amp, int len)
{
	between_chunks(c2);
	if (c2->fax == NULL || c2->state != C2_CALL)
		return 0;
	return fax_tx(c2->fax, amp, len);
}

void
sm_class2_rx(SmClass2 *c2, int16_t *amp, int len)
{
	if (c2->fax != NULL && c2->state == C2_CALL)
		fax_rx(c2->fax, amp, len);
}

void
sm_class2_call_event(SmClass2 *c2, int event)
{
	switch (event) {
	case AT_CALL_EVENT_CONNECTED:
		if (c2->state == C2_DIALING)
			start_t30(c2);
		break;
	case AT_CALL_EVENT_BUSY:
	case AT_CALL_EVENT_NO_ANSWER:
		if (c2->state == C2_DIALING) {
			c2->state = C2_IDLE;
			c2->pending = C2_PEND_NONE;
			dte_result(c2, event == AT_CALL_EVENT_BUSY ? "BUSY" : "NO ANSWER");
		}
		break;
	case AT_CALL_EVENT_HANGUP:
		/* the far end is gone: T.30 would find out by its timeouts; say what it would */
		if (c2->state == C2_CALL)
			end_call(c2,
			         c2->pending == C2_PEND_DIAL ? HNG_NO_ANSWER
			                                     : hangup_code_for_stage(c2),
			         FALSE);
		else if (c2->state == C2_DIALING)
			end_call(c2, HNG_NO_ANSWER, FALSE);
		break;
	default:
		break;
	}
}

gboolean
sm_class2_dcs(SmClass2 *c2, int *encoding, gboolean *ecm, int *bit_rate)
{
	if (c2->told_rate == 0)
		return FALSE;
	*encoding = encoding_of(c2->dcs[4]);
	*ecm = c2->dcs[5] > 0;
	*bit_rate = c2->told_rate;
	return TRUE;
}

SmClass2 *
sm_class2_new(const SmClass2Host *host, gboolean v20, const char *work_dir, gboolean verbose)
{
	SmClass2 *c2 = g_new0(SmClass2, 1);

	c2->v20 = v20;
	c2->host = *host;
	c2->work_dir = g_strdup(work_dir);
	c2->verbose = verbose;
	c2->cmd = g_string_new(NULL);
	c2->page = g_byte_array_new();
	c2->kill_code = -1;
	reset_modem(c2);
	return c2;
}

void
sm_class2_free(SmClass2 *c2)
{
	if (c2 == NULL)
		return;
	stop_t30(c2);
	g_string_free(c2->cmd, TRUE);
	g_byte_array_unref(c2->page);
	g_free(c2->work_dir);
	g_free(c2);
}
