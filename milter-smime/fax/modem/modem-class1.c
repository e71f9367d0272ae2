/*
 * modem-class1: sending a fax through a Class 1 / 1.0 modem (ITU-T T.31), for the `modem`
 * fax plugin.
 *
 * The host runs T.30: spandsp's T.30 engine decides what goes on the line (V.27ter, V.29,
 * V.17 fallback, ECM, MH/MR/MMR) and this file carries it over the modem's +FTH, +FRH,
 * +FTM and +FTS commands: HDLC frames DLE-stuffed and ended with DLE ETX, the two FCS
 * bytes the modem appends to received frames stripped, page data paced to the line rate,
 * 80 ms of silence (+FTS=8) before each of our transmissions, and T.30's timers fed from
 * the monotonic clock in 8 kHz samples.
 * Talks to: the modem through modem-port.c, spandsp's t30 API, the caller's progress.
 *
 * Must never: call back into spandsp from inside one of its handlers (they only record
 * what T.30 wants; the loop below acts on it), or wait on the modem without a deadline.
 */
#include "modem.h"

#include <spandsp.h>
#include <stdlib.h>
#include <string.h>

#define V21_MODULATION   3
#define GAP_COMMAND      "AT+FTS=8" /* 80 ms silence: T.30's 75 ms between modulations */
#define FRAME_MAX        260        /* T.30 frames, ECM frames of 256 octets, plus FCS */
#define FRAME_TIMEOUT_MS 6000       /* a V.21 frame lasts at most 3 s */
#define RX_WAIT_MAX_MS   60000      /* a +FRH the T.30 timers did not stop first */
#define DATA_LEAD_MS     500        /* page data written ahead of the line */
#define DATA_CHUNK       256
#define FCS_LEN          2
#define HDLC_FINAL       0x13
#define SAMPLES_PER_SEC  8000
#define FCF_DCS          0x82

typedef struct {
	const ModemCall *call;
	ModemPort *port;
	t30_state_t *t30;
	/* what T.30 asked for, recorded by the handlers */
	int tx_type, tx_rate, tx_short;
	gboolean tx_hdlc;
	gboolean tx_pending; /* a PAUSE or a data transmission not yet carried out */
	int rx_type;
	GQueue frames;      /* GByteArray; an empty one: end of the HDLC transmission */
	gboolean carrier;   /* an +FTH carrier is up, waiting for the next frame */
	gboolean receiving; /* CONNECT of +FRH seen: frames are coming */
	gboolean interruptible;
	gboolean frh_pending; /* +FRH sent, its CONNECT not yet seen: the modem listens */
	gboolean tcf_next;    /* a DCS went out: the next fast data is the training check */
	gboolean dcn_queued;  /* our DCN is among the frames: the call ends after it */
	/* the clock of T.30's timers */
	gint64 clock_us;
	gint64 clock_rest; /* microseconds not yet given as samples, times 8000 */
	/* how it went */
	gboolean finished;
	int completion;
	guint rtn; /* pages the far end asked for again (RTN) */
	t30_stats_t stats;
	gboolean negotiating_reported;
	guint page_reported;
	int modems;    /* T30_SUPPORT_V27TER...: what both the modem and max_rate allow */
	gboolean ecm;  /* ECM offered: configured, and the modem has HDLC at fast rates */
	char *failure; /* the line failed under T.30: text for the result */
	FaxResultCode failure_code;
	gint64 start_us;
} Class1;

/* ----- T.30's handlers: record only ----- */

static void
set_rx_type(void *user_data, int type, int bit_rate, int short_train, int use_hdlc)
{
	Class1 *c = user_data;

	c->rx_type = type;
}

static void
set_tx_type(void *user_data, int type, int bit_rate, int short_train, int use_hdlc)
{
	Class1 *c = user_data;

	c->tx_type = type;
	c->tx_rate = bit_rate;
	c->tx_short = short_train;
	c->tx_hdlc = use_hdlc;
	c->tx_pending =
	        type == T30_MODEM_PAUSE ||
	        ((type == T30_MODEM_V27TER || type == T30_MODEM_V29 || type == T30_MODEM_V17) &&
	         !use_hdlc);
}

static void
send_hdlc(void *user_data, const uint8_t msg[], int len)
{
	Class1 *c = user_data;
	GByteArray *frame = g_byte_array_sized_new(len > 0 ? (guint)len : 1);

	if (msg != NULL && len > 0)
		g_byte_array_append(frame, msg, (guint)len);
	if (len >= 3 && (msg[2] & 0xfe) == T30_DCN)
		c->dcn_queued = TRUE;
	g_queue_push_tail(&c->frames, frame);
}

static int
phase_b_handler(t30_state_t *s, void *user_data, int result)
{
	Class1 *c = user_data;

	if (!c->negotiating_reported) {
		const char *ident = t30_get_rx_ident(s);

		c->negotiating_reported = TRUE;
		modem_report(c->call, FAX_PHASE_NEGOTIATING, 0,
		             ident != NULL && *ident != '\0' ? ident : NULL);
	}
	return T30_ERR_OK;
}

/* The far end's answer to a page: only RTN is counted (T.30 itself acts on it). */
static int
phase_d_handler(t30_state_t *s, void *user_data, int fcf)
{
	Class1 *c = user_data;

	if (fcf == T30_RTN)
		c->rtn++;
	return T30_ERR_OK;
}

static void
phase_e_handler(t30_state_t *s, void *user_data, int completion_code)
{
	Class1 *c = user_data;

	c->finished = TRUE;
	c->completion = completion_code;
	t30_get_transfer_statistics(s, &c->stats);
}

static void
span_message(int level, const char *text)
{
	g_debug("t30: %s", g_strchomp((char *)text));
}

/* ----- time ----- */

static void
clock_tick(Class1 *c)
{
	gint64 now = g_get_monotonic_time();
	gint64 scaled = (now - c->clock_us) * SAMPLES_PER_SEC + c->clock_rest;
	gint64 samples = scaled / G_USEC_PER_SEC;

	c->clock_us = now;
	c->clock_rest = scaled % G_USEC_PER_SEC;
	if (samples > 0)
		t30_timer_update(c->t30, (int)MIN(samples, G_MAXINT));
}

/* The port's idle hook: T.30 time passes while we wait; a transmission it asks for stops
 * a receive in progress. */
static gboolean
class1_idle(gpointer data)
{
	Class1 *c = data;

	clock_tick(c);
	if (!c->interruptible)
		return FALSE;
	return c->finished || c->tx_pending || !g_queue_is_empty(&c->frames) ||
	       c->rx_type != T30_MODEM_V21;
}

/* ----- helpers ----- */

static void
fail(Class1 *c, FaxResultCode code, char *text)
{
	if (c->failure == NULL) {
		c->failure = text;
		c->failure_code = code;
	} else {
		g_free(text);
	}
}

static void
fail_wait(Class1 *c, ModemWait wait, const char *doing)
{
	ModemOutcome out = {0};

	modem_wait_outcome(c->call, wait, doing, 0, &out);
	fail(c, out.code, out.text);
}

static const char *
phase_text(Class1 *c)
{
	return c->page_reported > 0 ? "sending a page" : "negotiating";
}

/* A command whose answer must be `expect`; anything else ends the call. */
static gboolean
command_expect(Class1 *c, const char *command, const char *expect, gint64 timeout_ms)
{
	g_autofree char *final = NULL;
	ModemWait wait = modem_port_command(c->port, command, timeout_ms, NULL, &final);

	if (wait != MODEM_WAIT_OK) {
		fail_wait(c, wait, command);
		return FALSE;
	}
	if (strcmp(final, expect) != 0) {
		fail(c, FAX_RESULT_FAILED,
		     g_strdup_printf("%s while %s (the modem answered %s to %s)",
		                     strcmp(final, "NO CARRIER") == 0 ? "the line dropped"
		                                                      : "modem error",
		                     phase_text(c), final, command));
		return FALSE;
	}
	return TRUE;
}

static int
modulation(int type, int bit_rate, gboolean short_train)
{
	switch (type) {
	case T30_MODEM_V21:
		return V21_MODULATION;
	case T30_MODEM_V27TER:
		return bit_rate >= 4800 ? 48 : 24;
	case T30_MODEM_V29:
		return bit_rate >= 9600 ? 96 : 72;
	case T30_MODEM_V17:
		/* 73/74 7200, 97/98 9600, 121/122 12000, 145/146 14400: long/short train */
		return bit_rate / 100 + 1 + (short_train ? 1 : 0);
	default:
		return -1;
	}
}

/* Training time before the first data bit, so that pacing does not run ahead of it. */
static gint64
training_us(int type, gboolean short_train)
{
	switch (type) {
	case T30_MODEM_V17:
		return short_train ? 150000 : 1400000;
	case T30_MODEM_V27TER:
		return 950000;
	default:
		return 260000;
	}
}

static void
stuff(GByteArray *out, const guint8 *data, gsize len)
{
	for (gsize i = 0; i < len; i++) {
		if (data[i] == MODEM_DLE)
			g_byte_array_append(out, &data[i], 1);
		g_byte_array_append(out, &data[i], 1);
	}
}

static void
report_page(Class1 *c)
{
	t30_stats_t stats;
	guint page;

	t30_get_transfer_statistics(c->t30, &stats);
	page = (guint)stats.pages_tx + 1;
	if (page == c->page_reported || page > c->call->request->pages)
		return;
	c->page_reported = page;
	modem_report(c->call, FAX_PHASE_PAGE, page, NULL);
}

/* ----- transmitting ----- */

static gboolean
class1_tx_start(Class1 *c)
{
	g_autofree char *command = NULL;
	int mod = modulation(c->tx_type, c->tx_rate, c->tx_short);

	if (mod < 0) {
		fail(c, FAX_RESULT_LOCAL,
		     g_strdup_printf("T.30 asked for HDLC on modem type %d", c->tx_type));
		return FALSE;
	}
	if (!command_expect(c, GAP_COMMAND, "OK", c->call->config->command_timeout_ms))
		return FALSE;
	command = g_strdup_printf("AT+FTH=%d", mod);
	if (!command_expect(c, command, "CONNECT", c->call->config->command_timeout_ms))
		return FALSE;
	c->carrier = TRUE;
	if (mod != V21_MODULATION)
		report_page(c);
	return TRUE;
}

static gboolean
class1_tx_frame(Class1 *c, GByteArray *frame)
{
	g_autoptr(GByteArray) out = g_byte_array_sized_new(frame->len * 2 + 2);
	static const guint8 end[] = {MODEM_DLE, MODEM_ETX};
	g_autofree char *final = NULL;
	/* V.21 is 37.5 octets a second; a fast carrier's frames are quicker */
	gint64 timeout_ms = frame->len * 1000 / 30 + c->call->config->command_timeout_ms;
	gint64 deadline = modem_deadline(timeout_ms);
	ModemWait wait;

	if (frame->len >= 3 && c->tx_type == T30_MODEM_V21)
		c->tcf_next = (frame->data[2] & 0xfe) == FCF_DCS;
	stuff(out, frame->data, frame->len);
	g_byte_array_append(out, end, sizeof end);
	wait = modem_port_write(c->port, out->data, out->len, deadline);
	if (wait == MODEM_WAIT_OK)
		wait = modem_port_wait_final(c->port, deadline, NULL, &final);
	if (wait != MODEM_WAIT_OK) {
		fail_wait(c, wait, "sending a T.30 frame");
		return FALSE;
	}
	/* CONNECT: ready for the next frame; OK: that was the final one, the carrier is off */
	if (strcmp(final, "CONNECT") == 0)
		return TRUE;
	if (strcmp(final, "OK") == 0) {
		c->carrier = FALSE;
		return TRUE;
	}
	fail(c, FAX_RESULT_FAILED,
	     g_strdup_printf("the line dropped while %s (%s after a frame)", phase_text(c), final));
	return FALSE;
}

/* One of T.30's HDLC steps: a frame, or the end of the transmission (an empty one). */
static gboolean
class1_tx_step(Class1 *c)
{
	g_autoptr(GByteArray) frame = g_queue_pop_head(&c->frames);

	if (frame->len == 0) {
		/* the final frame's OK already saw the carrier off */
		c->carrier = FALSE;
	} else {
		if (!c->carrier && !class1_tx_start(c))
			return FALSE;
		if (!class1_tx_frame(c, frame))
			return FALSE;
	}
	t30_front_end_status(c->t30, T30_FRONT_END_SEND_STEP_COMPLETE);
	return TRUE;
}

/* Writes what the line has had time to take, plus a lead; TRUE when T.30 has no more. */
static ModemWait
data_tx_feed(Class1 *c, gint64 start_us, gint64 *written, gboolean *done)
{
	gint64 rate = c->tx_rate > 0 ? c->tx_rate / 8 : 300;
	gint64 lead = MAX(rate * DATA_LEAD_MS / 1000, 128);
	gint64 elapsed = g_get_monotonic_time() - start_us - training_us(c->tx_type, c->tx_short);
	gint64 allowed = lead + (elapsed > 0 ? rate * elapsed / G_USEC_PER_SEC : 0);
	g_autoptr(GByteArray) out = g_byte_array_sized_new(DATA_CHUNK * 2);
	gint64 count = 0;

	while (*written + count < allowed && count < DATA_CHUNK) {
		int byte = t30_non_ecm_get_byte(c->t30);
		guint8 b = (guint8)byte;

		if (byte >= 0x100) {
			*done = TRUE;
			break;
		}
		if (b == MODEM_DLE)
			g_byte_array_append(out, &b, 1);
		g_byte_array_append(out, &b, 1);
		count++;
	}
	*written += count;
	if (out->len == 0) {
		if (!*done)
			g_usleep(MODEM_IDLE_MS * 1000 / 2);
		return g_atomic_int_get(c->call->cancel) ? MODEM_WAIT_CANCELED : MODEM_WAIT_OK;
	}
	return modem_port_write(c->port, out->data, out->len,
	                        modem_deadline(c->call->config->command_timeout_ms));
}

/* TCF or a page, non-ECM: +FTM, the bytes, DLE ETX, OK once the modem has sent them. */
static gboolean
data_tx(Class1 *c)
{
	g_autofree char *command = NULL;
	g_autofree char *final = NULL;
	static const guint8 end[] = {MODEM_DLE, MODEM_ETX};
	int mod = modulation(c->tx_type, c->tx_rate, c->tx_short);
	gboolean done = FALSE;
	gint64 written = 0;
	gint64 start;
	ModemWait wait = MODEM_WAIT_OK;

	c->tx_pending = FALSE;
	if (!c->tcf_next)
		report_page(c);
	c->tcf_next = FALSE;
	if (!command_expect(c, GAP_COMMAND, "OK", c->call->config->command_timeout_ms))
		return FALSE;
	command = g_strdup_printf("AT+FTM=%d", mod);
	if (!command_expect(c, command, "CONNECT", c->call->config->command_timeout_ms))
		return FALSE;
	start = g_get_monotonic_time();
	modem_port_set_xon(c->port, TRUE);
	while (!done && wait == MODEM_WAIT_OK) {
		clock_tick(c);
		wait = data_tx_feed(c, start, &written, &done);
	}
	if (wait == MODEM_WAIT_CANCELED) {
		/* DLE ETX ends the data (the modem sends what it holds), then ATH0 can follow */
		c->port->winding_up = TRUE;
		modem_port_write(c->port, end, sizeof end,
		                 modem_deadline(c->call->config->command_timeout_ms));
		modem_port_set_xon(c->port, FALSE);
		modem_port_wait_final(c->port, modem_deadline(c->call->config->command_timeout_ms),
		                      NULL, &final);
		c->port->winding_up = FALSE;
		fail_wait(c, wait, phase_text(c));
		return FALSE;
	}
	if (wait == MODEM_WAIT_OK)
		wait = modem_port_write(c->port, end, sizeof end,
		                        modem_deadline(c->call->config->command_timeout_ms));
	modem_port_set_xon(c->port, FALSE);
	if (wait == MODEM_WAIT_OK) {
		gint64 rate = c->tx_rate > 0 ? c->tx_rate / 8 : 300;
		gint64 drain_ms = written * 1000 / rate + c->call->config->command_timeout_ms;

		wait = modem_port_wait_final(c->port, modem_deadline(drain_ms), NULL, &final);
	}
	g_debug("modem: %" G_GINT64_FORMAT " octets at %d bps in %" G_GINT64_FORMAT " ms", written,
	        c->tx_rate, (g_get_monotonic_time() - start) / 1000);
	if (wait != MODEM_WAIT_OK) {
		fail_wait(c, wait, phase_text(c));
		return FALSE;
	}
	if (strcmp(final, "OK") != 0) {
		fail(c, FAX_RESULT_FAILED,
		     g_strdup_printf("the line dropped while %s (%s)", phase_text(c), final));
		return FALSE;
	}
	t30_front_end_status(c->t30, T30_FRONT_END_SEND_STEP_COMPLETE);
	return TRUE;
}

static gboolean
pause_tx(Class1 *c)
{
	gint64 until = g_get_monotonic_time() + (gint64)c->tx_short * 1000;

	c->tx_pending = FALSE;
	while (g_get_monotonic_time() < until) {
		if (g_atomic_int_get(c->call->cancel)) {
			fail_wait(c, MODEM_WAIT_CANCELED, "hanging up");
			return FALSE;
		}
		g_usleep(MODEM_IDLE_MS * 1000);
		clock_tick(c);
	}
	t30_front_end_status(c->t30, T30_FRONT_END_SEND_STEP_COMPLETE);
	return TRUE;
}

/* ----- receiving ----- */

/* Stops a +FRH the modem is waiting in: any character does, and it answers OK. */
static gboolean
rx_abort(Class1 *c)
{
	static const guint8 can = MODEM_CAN;
	gint64 deadline = modem_deadline(c->call->config->command_timeout_ms);
	ModemIdleFunc idle = c->port->idle;
	gboolean ok = FALSE;

	c->port->idle = NULL;
	if (modem_port_write(c->port, &can, 1, deadline) == MODEM_WAIT_OK) {
		for (;;) {
			g_autofree char *final = NULL;

			if (modem_port_wait_final(c->port, deadline, NULL, &final) != MODEM_WAIT_OK)
				break;
			/* a frame that raced the abort: its CONNECT, then its end */
			if (strcmp(final, "OK") == 0 || strcmp(final, "NO CARRIER") == 0 ||
			    strcmp(final, "ERROR") == 0) {
				ok = TRUE;
				break;
			}
		}
	}
	c->port->idle = idle;
	c->receiving = FALSE;
	c->frh_pending = FALSE;
	if (!ok)
		fail(c, FAX_RESULT_LOCAL,
		     g_strdup_printf("modem on %s does not stop receiving",
		                     c->call->config->device));
	return ok;
}

/* Reads a frame up to DLE ETX, unstuffed. */
static ModemWait
rx_frame_bytes(Class1 *c, GByteArray *frame)
{
	gint64 deadline = modem_deadline(FRAME_TIMEOUT_MS + c->call->config->command_timeout_ms);
	gboolean dle = FALSE;

	for (;;) {
		int ch;
		guint8 b;
		ModemWait wait = modem_port_getc(c->port, deadline, &ch);

		if (wait != MODEM_WAIT_OK)
			return wait;
		b = (guint8)ch;
		if (dle) {
			dle = FALSE;
			if (b == MODEM_ETX)
				return MODEM_WAIT_OK;
			if (b == MODEM_SUB) {
				static const guint8 two[] = {MODEM_DLE, MODEM_DLE};

				g_byte_array_append(frame, two, 2);
			} else if (b == MODEM_DLE) {
				g_byte_array_append(frame, &b, 1);
			}
			continue;
		}
		if (b == MODEM_DLE)
			dle = TRUE;
		else if (frame->len == 0 && (b == '\r' || b == '\n'))
			continue; /* the end of CONNECT's line: frames start with 0xff */
		else if (frame->len < FRAME_MAX * 2)
			g_byte_array_append(frame, &b, 1);
	}
}

/* A frame after CONNECT: its bytes, then OK (good FCS) or ERROR (bad). */
static gboolean
rx_frame(Class1 *c)
{
	g_autoptr(GByteArray) frame = g_byte_array_sized_new(FRAME_MAX);
	g_autofree char *final = NULL;
	gboolean ok;
	ModemWait wait;

	c->interruptible = FALSE;
	wait = rx_frame_bytes(c, frame);
	if (wait == MODEM_WAIT_OK)
		wait = modem_port_wait_final(
		        c->port,
		        modem_deadline(FRAME_TIMEOUT_MS + c->call->config->command_timeout_ms),
		        NULL, &final);
	if (wait != MODEM_WAIT_OK) {
		fail_wait(c, wait, "receiving a T.30 frame");
		return FALSE;
	}
	if (strcmp(final, "NO CARRIER") == 0) {
		/* the carrier went before the frame ended */
		c->receiving = FALSE;
		t30_front_end_status(c->t30, T30_FRONT_END_RECEIVE_COMPLETE);
		return TRUE;
	}
	ok = strcmp(final, "OK") == 0;
	if (frame->len > FCS_LEN)
		t30_hdlc_accept(c->t30, frame->data, (int)(frame->len - FCS_LEN), ok);
	/* after OK the modem waits for our next +FRH; after a good final frame its OK came
	 * with the carrier's end */
	c->receiving = FALSE;
	if (ok && frame->len > 1 && frame->data[1] == HDLC_FINAL)
		t30_front_end_status(c->t30, T30_FRONT_END_RECEIVE_COMPLETE);
	return TRUE;
}

/* T.30 listens: +FRH=3 until CONNECT, which T.30's own timers may cut short. */
static gboolean
class1_rx(Class1 *c)
{
	g_autofree char *final = NULL;
	g_autofree char *command = g_strdup_printf("AT+FRH=%d", V21_MODULATION);
	ModemWait wait;

	if (c->receiving)
		return rx_frame(c);
	wait = modem_port_write_str(c->port, "AT+FRH=3\r",
	                            modem_deadline(c->call->config->command_timeout_ms));
	c->interruptible = TRUE;
	c->frh_pending = wait == MODEM_WAIT_OK;
	if (wait == MODEM_WAIT_OK)
		wait = modem_port_wait_final(c->port, modem_deadline(RX_WAIT_MAX_MS), NULL, &final);
	c->interruptible = FALSE;
	if (wait == MODEM_WAIT_OK)
		c->frh_pending = FALSE;
	if (wait == MODEM_WAIT_INTERRUPTED)
		return rx_abort(c);
	if (wait != MODEM_WAIT_OK) {
		fail_wait(c, wait, "waiting for the far end");
		return FALSE;
	}
	if (strcmp(final, "CONNECT") == 0) {
		c->receiving = TRUE;
		t30_front_end_status(c->t30, T30_FRONT_END_SIGNAL_PRESENT);
		return rx_frame(c);
	}
	if (strcmp(final, "+FCERROR") == 0 || strcmp(final, "NO CARRIER") == 0 ||
	    strcmp(final, "OK") == 0) {
		/* another carrier, or none for the modem's own timeout: listen again, T.30's
		 * timers decide when to give up */
		return TRUE;
	}
	fail(c, FAX_RESULT_FAILED,
	     g_strdup_printf("modem error while %s (%s to %s)", phase_text(c), final, command));
	return FALSE;
}

/* ----- the call ----- */

static gboolean
class1_step(Class1 *c)
{
	if (g_atomic_int_get(c->call->cancel)) {
		fail_wait(c, MODEM_WAIT_CANCELED, "canceled");
		return FALSE;
	}
	if (!g_queue_is_empty(&c->frames))
		return class1_tx_step(c);
	if (c->tx_pending && c->tx_type == T30_MODEM_PAUSE && c->dcn_queued && !c->carrier) {
		/* T.30's final pause lets a DCN drain from buffers downstream; the modem's OK
		 * after the frame said it is on the line: end the call now, as efax does */
		t30_terminate(c->t30);
		return !c->finished;
	}
	if (c->tx_pending && c->tx_type == T30_MODEM_PAUSE)
		return pause_tx(c);
	if (c->tx_pending)
		return data_tx(c);
	if (c->rx_type == T30_MODEM_V21)
		return class1_rx(c);
	if (c->rx_type != T30_MODEM_NONE && c->rx_type != T30_MODEM_DONE) {
		fail(c, FAX_RESULT_FAILED,
		     g_strdup_printf("the far end wants to send (receive modem type %d): "
		                     "polling is not supported",
		                     c->rx_type));
		return FALSE;
	}
	/* nothing to do until a timer fires */
	g_usleep(MODEM_IDLE_MS * 1000);
	clock_tick(c);
	return TRUE;
}

static int
supported_modems(guint max_rate)
{
	if (max_rate >= 12000)
		return T30_SUPPORT_V27TER | T30_SUPPORT_V29 | T30_SUPPORT_V17;
	if (max_rate >= 7200)
		return T30_SUPPORT_V27TER | T30_SUPPORT_V29;
	return T30_SUPPORT_V27TER;
}

/* "3,24,48,72,73,74,96,97,98,121,122,145,146" (or in parentheses) -> does it hold mod? */
static gboolean
list_has(const char *list, int mod)
{
	g_auto(GStrv) items = g_strsplit_set(list, "(), ", -1);

	for (guint i = 0; items[i] != NULL; i++) {
		if (*items[i] != '\0' && atoi(items[i]) == mod)
			return TRUE;
	}
	return FALSE;
}

/* The first informational line of a "=?" query, or NULL. */
static char *
class1_query(Class1 *c, const char *command)
{
	g_autoptr(GPtrArray) info = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *final = NULL;

	if (modem_port_command(c->port, command, c->call->config->command_timeout_ms, info,
	                       &final) != MODEM_WAIT_OK ||
	    strcmp(final, "OK") != 0 || info->len == 0)
		return NULL;
	return g_strdup(g_ptr_array_index(info, 0));
}

/* What the modem can do (+FTM=?, +FTH=?) narrows what T.30 may offer: spandsp's own
 * T.31 modem, for one, has no HDLC at fast rates and so no ECM. */
static void
class1_capabilities(Class1 *c)
{
	const ModemConfig *config = c->call->config;
	g_autofree char *ftm = class1_query(c, "AT+FTM=?");
	g_autofree char *fth = class1_query(c, "AT+FTH=?");
	int modems = supported_modems(config->max_rate);

	if (ftm != NULL) {
		if (!list_has(ftm, 145))
			modems &= ~T30_SUPPORT_V17;
		if (!list_has(ftm, 96))
			modems &= ~T30_SUPPORT_V29;
		if (modems == 0)
			modems = T30_SUPPORT_V27TER;
	}
	c->modems = modems;
	c->ecm = config->ecm && fth != NULL &&
	         (list_has(fth, 146) || list_has(fth, 96) || list_has(fth, 48));
	if (config->ecm && !c->ecm)
		g_info("modem on %s has no HDLC at fast rates (AT+FTH=? says %s): ECM off",
		       config->device, fth != NULL ? fth : "nothing");
}

static t30_state_t *
class1_t30_new(Class1 *c)
{
	const ModemCall *call = c->call;
	const char *ident = *call->request->station_id != '\0' ? call->request->station_id
	                                                       : call->config->station_id;
	t30_state_t *t30 = t30_init(NULL, TRUE, set_rx_type, c, set_tx_type, c, send_hdlc, c);

	if (t30 == NULL)
		return NULL;
	if (g_getenv("G_MESSAGES_DEBUG") != NULL) {
		logging_state_t *logging = t30_get_logging_state(t30);

		span_log_set_message_handler(logging, span_message);
		span_log_set_level(logging, SPAN_LOG_FLOW | SPAN_LOG_SHOW_TAG);
	}
	t30_set_tx_file(t30, call->request->tiff, -1, -1);
	if (*ident != '\0')
		t30_set_tx_ident(t30, ident);
	t30_set_ecm_capability(t30, c->ecm);
	t30_set_supported_compressions(t30, T30_SUPPORT_T4_1D_COMPRESSION |
	                                            T30_SUPPORT_T4_2D_COMPRESSION |
	                                            T30_SUPPORT_T6_COMPRESSION);
	t30_set_supported_modems(t30, c->modems);
	t30_set_phase_b_handler(t30, phase_b_handler, c);
	t30_set_phase_d_handler(t30, phase_d_handler, c);
	t30_set_phase_e_handler(t30, phase_e_handler, c);
	return t30;
}

/* Which completion codes can never work with this number and this document. */
static FaxResultCode
completion_result(int code)
{
	switch (code) {
	case T30_ERR_OK:
		return FAX_RESULT_OK;
	case T30_ERR_INCOMPATIBLE:
	case T30_ERR_RX_INCAPABLE:
	case T30_ERR_NORESSUPPORT:
	case T30_ERR_NOSIZESUPPORT:
		return FAX_RESULT_REFUSED;
	case T30_ERR_FILEERROR:
	case T30_ERR_NOPAGE:
	case T30_ERR_BADTIFF:
	case T30_ERR_BADPAGE:
	case T30_ERR_BADTAG:
	case T30_ERR_BADTIFFHDR:
	case T30_ERR_NOMEM:
		return FAX_RESULT_LOCAL;
	default:
		return FAX_RESULT_FAILED;
	}
}

static char *
line_text(Class1 *c)
{
	const t30_stats_t *s = &c->stats;

	if (s->bit_rate <= 0 || (c->page_reported == 0 && s->pages_tx <= 0))
		return g_strdup("");
	return g_strdup_printf(" at %d bps, %s, ECM %s", s->bit_rate,
	                       modem_coding_name(s->encoding),
	                       s->error_correcting_mode ? "on" : "off");
}

static void
class1_outcome(Class1 *c, ModemOutcome *out)
{
	guint pages = c->stats.pages_tx > 0 ? (guint)c->stats.pages_tx : 0;
	gint64 secs = (g_get_monotonic_time() - c->start_us) / G_USEC_PER_SEC;
	g_autofree char *line = line_text(c);
	FaxResultCode code = completion_result(c->completion);

	if (code == FAX_RESULT_OK && pages < c->call->request->pages) {
		/* spandsp 0.0.6 does not send a page again after RTN to EOP: it ends the call,
		 * and T.30 calls that a success */
		modem_outcome_set(
		        out, FAX_RESULT_FAILED, pages,
		        g_strdup_printf("%s, after %u of %u pages%s",
		                        c->rtn > 0 ? "the far end rejected the last page (RTN)"
		                                   : "the call ended early",
		                        pages, c->call->request->pages, line));
		return;
	}
	if (code == FAX_RESULT_OK) {
		modem_outcome_set(out, FAX_RESULT_OK, pages,
		                  g_strdup_printf("sent %u page%s in %" G_GINT64_FORMAT " s%s",
		                                  pages, pages == 1 ? "" : "s", secs, line));
		return;
	}
	modem_outcome_set(out, code, pages,
	                  g_strdup_printf("T.30 error %d (%s) after %u of %u pages%s",
	                                  c->completion, t30_completion_code_to_str(c->completion),
	                                  pages, c->call->request->pages, line));
}

/* Leaves the modem in command mode whatever it was doing when the call ended early. */
static void
class1_quiesce(Class1 *c)
{
	c->port->winding_up = TRUE;
	if (c->carrier) {
		static const guint8 end[] = {MODEM_DLE, MODEM_ETX};
		g_autofree char *final = NULL;
		gint64 deadline = modem_deadline(c->call->config->command_timeout_ms);

		/* DLE ETX without a frame: the modem drops the HDLC carrier and answers OK */
		c->port->idle = NULL;
		if (modem_port_write(c->port, end, sizeof end, deadline) == MODEM_WAIT_OK)
			modem_port_wait_final(c->port, deadline, NULL, &final);
		c->carrier = FALSE;
	}
	if (c->receiving || c->frh_pending)
		rx_abort(c);
	c->port->winding_up = FALSE;
}

static void
class1_run(Class1 *c, ModemOutcome *out)
{
	c->port->idle = class1_idle;
	c->port->idle_data = c;
	c->clock_us = g_get_monotonic_time();
	/* ATD's CONNECT: the modem already listens for the answerer's V.21 (DIS) */
	c->receiving = TRUE;
	t30_front_end_status(c->t30, T30_FRONT_END_SIGNAL_PRESENT);
	while (!c->finished && c->failure == NULL && class1_step(c))
		;
	c->port->idle = NULL;
	if (c->failure != NULL) {
		t30_stats_t stats;
		guint pages;

		t30_get_transfer_statistics(c->t30, &stats);
		pages = stats.pages_tx > 0 ? (guint)stats.pages_tx : 0;
		class1_quiesce(c);
		modem_outcome_set(out, c->failure_code, pages,
		                  c->failure_code == FAX_RESULT_CANCELED
		                          ? g_strdup_printf("canceled after %u page%s", pages,
		                                            pages == 1 ? "" : "s")
		                          : g_strdup_printf("%s, after %u of %u pages", c->failure,
		                                            pages, c->call->request->pages));
		return;
	}
	class1_outcome(c, out);
}

/* +FCLASS=1.0 or 1, then the dial; TRUE once a fax answered (CONNECT). */
static gboolean
class1_dial(Class1 *c, ModemOutcome *out)
{
	const ModemCall *call = c->call;
	g_autofree char *final = NULL;
	g_autofree char *dial = NULL;
	ModemWait wait;

	if (call->class_1_0) {
		wait = modem_port_command(c->port, "AT+FCLASS=1.0",
		                          call->config->command_timeout_ms, NULL, &final);
		if (wait == MODEM_WAIT_OK && strcmp(final, "OK") != 0)
			g_clear_pointer(&final, g_free);
	}
	if (final == NULL &&
	    (modem_port_command(c->port, "AT+FCLASS=1", call->config->command_timeout_ms, NULL,
	                        &final) != MODEM_WAIT_OK ||
	     strcmp(final, "OK") != 0)) {
		modem_outcome_set(
		        out, FAX_RESULT_LOCAL, 0,
		        g_strdup_printf("modem on %s refuses fax class 1", call->config->device));
		return FALSE;
	}
	g_clear_pointer(&final, g_free);
	class1_capabilities(c);
	dial = g_strdup_printf("%s%s", call->config->dial_command, call->request->dial);
	modem_report(call, FAX_PHASE_DIALING, 0, call->request->dial);
	wait = modem_port_command(c->port, dial, call->config->answer_timeout_ms, NULL, &final);
	if (wait == MODEM_WAIT_OK && strcmp(final, "CONNECT") == 0)
		return TRUE;
	modem_dial_outcome(call, final, wait, out);
	return FALSE;
}

void
modem_class1_send(const ModemCall *call, ModemOutcome *out)
{
	Class1 c = {0};

	c.call = call;
	c.port = call->port;
	c.start_us = g_get_monotonic_time();
	g_queue_init(&c.frames);
	if (!class1_dial(&c, out))
		return;
	c.t30 = class1_t30_new(&c);
	if (c.t30 == NULL) {
		modem_outcome_set(out, FAX_RESULT_LOCAL, 0, g_strdup("cannot start T.30"));
		return;
	}
	class1_run(&c, out);
	/* t30_terminate() reports through the phase E handler: keep the first verdict */
	if (!c.finished)
		t30_terminate(c.t30);
	t30_free(c.t30);
	g_queue_clear_full(&c.frames, (GDestroyNotify)g_byte_array_unref);
	g_free(c.failure);
}
