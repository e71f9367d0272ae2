/*
 * softmodem-line: hk-softmodem's modems and the simulated telephone line between them.
 * The near modem is spandsp's T.31 (Class 1) on the first pty, or with --class 2 the
 * Class 2/2.0 modem of softmodem-class2.c; ATD places a call that is
 * busy, not answered, or answered by the far end: a spandsp fax terminal receiving into
 * DIR/rx-N.tif, or a second T.31 modem whose program answers RING with ATA. Audio goes
 * both ways in 160-sample chunks, one chunk per 20 ms tick.
 *
 * Talks to: spandsp (T.31, T.30, the modems), the ptys (softmodem-pty.c), the report
 * (softmodem-report.c), stderr.
 * Must never: call t31_call_event() from inside a T.31 callback (events are queued and
 * run after the callback returns), or read more from a pty than T.31 has room for.
 */
#include "softmodem.h"

#include <errno.h>
#include <string.h>
#include <termios.h>

#define SM_READ_CHUNK  256   /* T.31 stops us at 3 KB of its 4 KB buffer: room for this */
#define SM_RING_MS     3000  /* RING cadence on the far modem */
#define SM_DRAIN_MS    600   /* line time the far terminal hears after the caller hangs up */
#define SM_GONE_MS     200   /* the same for modems, on top of the line's delay */
#define SM_FAR_GONE_MS 1000  /* from the far terminal's end of session to its hang-up */
#define SM_LINGER_MS   3000  /* --calls N: after the last call, until the device is closed */
#define SM_DTE_WAIT_MS 60000 /* Class 2: the longest the line waits for the DTE's page */

typedef enum {
	SM_LINE_IDLE,
	SM_LINE_DIALING,   /* ATD seen: busy, no answer or the far terminal, at the deadline */
	SM_LINE_RINGING,   /* far modem: RING to its program until ATA or the deadline */
	SM_LINE_CONNECTED, /* audio flows */
	SM_LINE_DRAIN,     /* the caller hung up: the far end hears the rest of the line */
	SM_LINE_FAR_GONE,  /* the far modem hung up: the caller hears the rest */
} SmLineState;

enum {
	SM_EV_DIAL = 1 << 0,
	SM_EV_NEAR_HANGUP = 1 << 1,
	SM_EV_FAR_ANSWER = 1 << 2,
	SM_EV_FAR_HANGUP = 1 << 3,
	SM_EV_NEAR_RESET = 1 << 4,
	SM_EV_FAR_RESET = 1 << 5,
};

/* One direction of the line: what goes in comes out delay samples later. */
typedef struct {
	int16_t *buf;
	int len; /* samples, a multiple of SM_CHUNK; 0: no delay */
	int pos;
} SmDelay;

typedef struct {
	Softmodem *sm;
	const char *name; /* "near", "far": log tags */
	gboolean is_far;
	SmPty pty;
	t31_state_t *t31;
	SmClass2 *c2; /* instead of t31: the near modem with --class 2 */
} SmPort;

struct Softmodem {
	SmConfig cfg;
	SmPort near;
	SmPort far;
	gboolean has_far; /* --far modem */
	SmLineState state;
	guint events;
	gint64 ticks;
	gint64 deadline; /* in ticks, per state */
	gint64 next_ring;
	int call;
	int calls_done;
	gint64 last_end; /* tick of the last call's end */
	SmAnswer answer;
	gint64 line_samples;
	SmDelay to_far; /* the line's propagation delay, each way */
	SmDelay to_near;
	/* the far terminal of the current call */
	fax_state_t *fax;
	gboolean fax_done;
	int fax_status;
	t30_stats_t fax_stats;
	gint64 far_gone_at; /* 0: not planned */
	gint64 stopped_us;  /* wall time the line stood still for a Class 2 DTE, not yet taken */
	gboolean cut_armed; /* --hangup-after: the page to cut has begun */
	int cut_length;
	SmGarble garble; /* --garble-page */
};

static gint64
ms_to_ticks(int ms)
{
	return (ms + 19) / 20;
}

static void sm_log(Softmodem *sm, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
sm_log(Softmodem *sm, const char *fmt, ...)
{
	g_autofree char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_printerr("hk-softmodem: %7.2fs call %d: %s\n",
	           (double)sm->ticks * SM_CHUNK / SM_SAMPLE_RATE, sm->call, msg);
}

/* ----- T.31 callbacks: they only queue bytes and events ----- */

static int
at_tx(at_state_t *at, void *user_data, const uint8_t *buf, size_t len)
{
	SmPort *port = user_data;

	if (!port->sm->cfg.silent || port->is_far)
		sm_pty_write(&port->pty, buf, len);
	return (int)len;
}

static int
modem_control(t31_state_t *t31, void *user_data, int op, const char *num)
{
	SmPort *port = user_data;
	Softmodem *sm = port->sm;

	switch (op) {
	case AT_MODEM_CONTROL_CALL:
		if (port->is_far)
			return -1; /* the far modem only answers */
		sm->events |= SM_EV_DIAL;
		break;
	case AT_MODEM_CONTROL_ANSWER:
		if (port->is_far)
			sm->events |= SM_EV_FAR_ANSWER;
		break;
	case AT_MODEM_CONTROL_HANGUP:
		sm->events |= port->is_far ? SM_EV_FAR_HANGUP : SM_EV_NEAR_HANGUP;
		break;
	case AT_MODEM_CONTROL_CTS:
		/* no CTS line on a pty: stop reading until T.31 has room again */
		port->pty.hold = (num == NULL);
		break;
	default:
		break;
	}
	return 0;
}

/* ----- the Class 2 modem's host ----- */

static void read_dte(SmPort *port);

static void
c2_write(gpointer data, const uint8_t *buf, size_t len)
{
	at_tx(NULL, data, buf, len);
}

static void
c2_control(gpointer data, int op)
{
	modem_control(NULL, data, op, NULL);
}

/* Inside T.30's phase B or D handler: the line stands still while the DTE gives the page
 * (bounded; a SIGTERM or the device being closed ends the wait, and so the call). */
static void
c2_wait_dte(gpointer data)
{
	SmPort *port = data;
	int stop_fd = port->sm->cfg.stop_fd;
	gint64 start = g_get_monotonic_time();
	gint64 deadline = start + SM_DTE_WAIT_MS * 1000;

	while (sm_class2_waiting(port->c2)) {
		gboolean room = sm_class2_room(port->c2) > 0;
		struct pollfd fds[2] = {
		        {.fd = port->pty.master,
		         .events = (room ? POLLIN : 0) | (port->pty.out->len > 0 ? POLLOUT : 0)},
		        {.fd = stop_fd, .events = POLLIN},
		};

		if (g_get_monotonic_time() > deadline) {
			sm_log(port->sm, "Class 2: no page from the DTE in %d s",
			       SM_DTE_WAIT_MS / 1000);
			sm_class2_abort_wait(port->c2);
			break;
		}
		if (poll(fds, stop_fd >= 0 ? 2 : 1, room ? 100 : 10) < 0 && errno != EINTR)
			break;
		if (stop_fd >= 0 && fds[1].revents != 0) {
			sm_class2_abort_wait(port->c2); /* the main loop reads the signal */
			break;
		}
		if (fds[0].revents & POLLOUT)
			sm_pty_flush(&port->pty);
		if (fds[0].revents & (POLLIN | POLLHUP | POLLERR))
			read_dte(port);
		if (!port->pty.dte_open) {
			sm_class2_abort_wait(port->c2);
			break;
		}
	}
	sm_pty_flush(&port->pty);
	port->sm->stopped_us += g_get_monotonic_time() - start;
}

/* ----- the near modem, whichever it is ----- */

static void
port_at_rx(SmPort *port, const uint8_t *buf, size_t len)
{
	if (port->c2 != NULL)
		sm_class2_at_rx(port->c2, buf, len);
	else
		t31_at_rx(port->t31, (const char *)buf, (int)len);
}

static int
port_tx(SmPort *port, int16_t *amp, int len)
{
	return port->c2 != NULL ? sm_class2_tx(port->c2, amp, len) : t31_tx(port->t31, amp, len);
}

static void
port_rx(SmPort *port, int16_t *amp, int len)
{
	if (port->c2 != NULL)
		sm_class2_rx(port->c2, amp, len);
	else
		t31_rx(port->t31, amp, len);
}

static void
port_call_event(SmPort *port, int event)
{
	if (port->c2 != NULL)
		sm_class2_call_event(port->c2, event);
	else
		t31_call_event(port->t31, event);
}

static void
set_logging(logging_state_t *log, const char *tag, gboolean verbose)
{
	if (!verbose)
		return;
	span_log_set_level(log, SPAN_LOG_FLOW | SPAN_LOG_SHOW_TAG | SPAN_LOG_SHOW_SAMPLE_TIME);
	span_log_set_tag(log, tag);
}

static gboolean
port_start_modem(SmPort *port, GError **error)
{
	if (!port->is_far && port->sm->cfg.class2) {
		SmClass2Host host = {c2_write, c2_control, c2_wait_dte, port};

		port->c2 = sm_class2_new(&host, port->sm->cfg.class2 == 20, port->sm->cfg.rx_dir,
		                         port->sm->cfg.verbose);
		return TRUE;
	}
	port->t31 = t31_init(NULL, at_tx, port, modem_control, port, NULL, NULL);
	if (port->t31 == NULL) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "t31_init failed");
		return FALSE;
	}
	set_logging(t31_get_logging_state(port->t31), port->name, port->sm->cfg.verbose);
	return TRUE;
}

static gboolean
port_open(Softmodem *sm, SmPort *port, const char *name, const char *link, GError **error)
{
	port->sm = sm;
	port->name = name;
	port->is_far = port == &sm->far;
	port->pty.master = -1;
	return sm_pty_open(&port->pty, link, error) && port_start_modem(port, error);
}

static void
port_close(SmPort *port)
{
	if (port->t31 != NULL)
		t31_free(port->t31);
	port->t31 = NULL;
	g_clear_pointer(&port->c2, sm_class2_free);
	if (port->pty.out != NULL)
		sm_pty_close(&port->pty);
}

/* DTR drop: a fresh modem, as after ATZ, for the next program that opens the device. */
static void
port_reset(SmPort *port)
{
	if (port->t31 != NULL)
		t31_free(port->t31);
	port->t31 = NULL;
	g_clear_pointer(&port->c2, sm_class2_free);
	port->pty.hold = FALSE;
	g_byte_array_set_size(port->pty.out, 0);
	if (!port_start_modem(port, NULL))
		g_error("cannot restart the %s modem", port->name);
}

/* ----- the line's delay ----- */

static void
delay_init(SmDelay *d, int ms)
{
	d->len = (int)ms_to_ticks(ms) * SM_CHUNK;
	d->buf = g_new0(int16_t, MAX(d->len, 1));
	d->pos = 0;
}

static void
delay_clear(SmDelay *d)
{
	memset(d->buf, 0, sizeof(int16_t) * d->len);
}

/* Puts a chunk in, takes the chunk from delay samples ago out (in place). */
static void
delay_pass(SmDelay *d, int16_t *amp)
{
	int16_t old[SM_CHUNK];

	if (d->len == 0)
		return;
	memcpy(old, d->buf + d->pos, sizeof(old));
	memcpy(d->buf + d->pos, amp, sizeof(old));
	memcpy(amp, old, sizeof(old));
	d->pos = (d->pos + SM_CHUNK) % d->len;
}

/* ----- calls ----- */

static SmAnswer
answer_for(const SmConfig *cfg, int call)
{
	guint i = MIN((guint)call - 1, cfg->n_answers - 1);

	return cfg->n_answers == 0 ? SM_ANSWER_NORMAL : cfg->answers[i];
}

static const char *
coding_name(int encoding)
{
	switch (encoding) {
	case T4_COMPRESSION_ITU_T4_1D:
		return "MH";
	case T4_COMPRESSION_ITU_T4_2D:
		return "MR";
	case T4_COMPRESSION_ITU_T6:
		return "MMR";
	default:
		return "other";
	}
}

/* Class 2: did the line carry what +FDCS/+FCS told the DTE? (It is read off T.30's own
 * choice, so a difference is a bug of the emulator, and the call is reported as such.) */
static gboolean
class2_told_the_truth(Softmodem *sm)
{
	const t30_stats_t *line = &sm->fax_stats;
	int encoding, bit_rate;
	gboolean ecm;

	if (sm->near.c2 == NULL || !sm_class2_dcs(sm->near.c2, &encoding, &ecm, &bit_rate))
		return TRUE;
	if (encoding == line->encoding && ecm == (line->error_correcting_mode != 0) &&
	    bit_rate >= line->bit_rate)
		return TRUE;
	sm_log(sm, "Class 2 said %s, ECM %s, %d bps; the line carried %s, ECM %s, %d bps",
	       coding_name(encoding), ecm ? "on" : "off", bit_rate, coding_name(line->encoding),
	       line->error_correcting_mode ? "on" : "off", line->bit_rate);
	return FALSE;
}

static void
end_call(Softmodem *sm, const char *result, const char *text)
{
	SmReport r = {
	        .call = sm->call,
	        .answer = sm->answer,
	        .result = result,
	        .line_samples = sm->line_samples,
	        .t30_status = -1,
	        .t30_text = text,
	        .garbled = sm->cfg.garble_page <= 0 ? NULL : "",
	};

	if (sm->fax != NULL) {
		const char *verdict = sm_garble_verdict(&sm->garble);

		if (r.garbled != NULL && verdict != NULL)
			r.garbled = verdict;
		r.pages = sm->fax_stats.pages_rx;
		r.rate = r.pages > 0 ? sm->fax_stats.bit_rate : 0;
		r.ecm = sm->fax_stats.error_correcting_mode != 0;
		r.coding = r.pages > 0 ? coding_name(sm->fax_stats.encoding) : "";
		r.t30_status = sm->fax_status;
		r.t30_text = t30_completion_code_to_str(sm->fax_status);
		r.result = sm->fax_status == T30_ERR_OK && r.pages > 0 ? "ok" : "failed";
		if (r.pages > 0 && !class2_told_the_truth(sm))
			r.result = "fdcs-mismatch";
		fax_free(sm->fax);
		sm->fax = NULL;
	}
	sm_report_append(sm->cfg.report, &r);
	sm->state = SM_LINE_IDLE;
	sm->far_gone_at = 0;
	sm->calls_done++;
	sm->last_end = sm->ticks;
}

static void
on_phase_e(t30_state_t *t30, void *user_data, int status)
{
	Softmodem *sm = user_data;

	sm->fax_done = TRUE;
	sm->fax_status = status;
	t30_get_transfer_statistics(t30, &sm->fax_stats);
	sm_log(sm, "far terminal: end of session: %s (%d pages)",
	       t30_completion_code_to_str(status), sm->fax_stats.pages_rx);
	if (sm->state == SM_LINE_CONNECTED && sm->far_gone_at == 0)
		sm->far_gone_at = sm->ticks + ms_to_ticks(SM_FAR_GONE_MS);
}

static void
start_terminal(Softmodem *sm)
{
	g_autofree char *name = g_strdup_printf("rx-%d.tif", sm->call);
	g_autofree char *path = g_build_filename(sm->cfg.rx_dir, name, NULL);
	t30_state_t *t30;

	sm->fax = fax_init(NULL, FALSE);
	t30 = fax_get_t30_state(sm->fax);
	t30_set_rx_file(t30, path, -1);
	t30_set_tx_ident(t30, "0311112222");
	t30_set_supported_modems(t30, T30_SUPPORT_V27TER | T30_SUPPORT_V29 | T30_SUPPORT_V17);
	t30_set_supported_compressions(t30, T30_SUPPORT_T4_1D_COMPRESSION |
	                                            T30_SUPPORT_T4_2D_COMPRESSION |
	                                            T30_SUPPORT_T6_COMPRESSION);
	t30_set_ecm_capability(t30, sm->cfg.ecm);
	t30_set_phase_e_handler(t30, on_phase_e, sm);
	sm_garble_attach(&sm->garble, sm->fax, sm->cfg.garble_page);
	fax_set_transmit_on_idle(sm->fax, TRUE);
	set_logging(fax_get_logging_state(sm->fax), "far-fax", sm->cfg.verbose);
	set_logging(t30_get_logging_state(t30), "far-t30", sm->cfg.verbose);
	sm->fax_done = FALSE;
	sm->fax_status = T30_ERR_CALLDROPPED;
	memset(&sm->fax_stats, 0, sizeof(sm->fax_stats));
	sm->cut_armed = sm->cfg.hangup_after == 0;
	sm->cut_length = 0;
	delay_clear(&sm->to_far);
	delay_clear(&sm->to_near);
	sm_log(sm, "far terminal answers, receiving into %s", path);
}

static void
on_dial(Softmodem *sm)
{
	if (sm->cfg.silent || sm->state != SM_LINE_IDLE)
		return;
	sm->call++;
	sm->answer = answer_for(&sm->cfg, sm->call);
	sm->line_samples = 0;
	sm_log(sm, "ATD: the line will be %s", sm_answer_name(sm->answer));
	sm->state = SM_LINE_DIALING;
	switch (sm->answer) {
	case SM_ANSWER_BUSY:
		sm->deadline = sm->ticks + ms_to_ticks(sm->cfg.busy_ms);
		break;
	case SM_ANSWER_NOANSWER:
		sm->deadline = sm->ticks + ms_to_ticks(sm->cfg.noanswer_ms);
		break;
	case SM_ANSWER_NORMAL:
		sm->deadline = sm->ticks + ms_to_ticks(sm->cfg.connect_ms);
		if (sm->has_far) {
			sm->state = SM_LINE_RINGING;
			sm->next_ring = sm->ticks;
			sm->deadline = sm->ticks + ms_to_ticks(sm->cfg.ring_timeout_ms);
		}
		break;
	}
}

static void
on_far_answer(Softmodem *sm)
{
	if (sm->state != SM_LINE_RINGING)
		return;
	sm_log(sm, "far modem answers (ATA)");
	delay_clear(&sm->to_far);
	delay_clear(&sm->to_near);
	t31_call_event(sm->far.t31, AT_CALL_EVENT_ANSWERED);
	port_call_event(&sm->near, AT_CALL_EVENT_CONNECTED);
	sm->state = SM_LINE_CONNECTED;
}

static void
on_near_hangup(Softmodem *sm)
{
	int delay = sm->cfg.line_delay_ms;

	switch (sm->state) {
	case SM_LINE_IDLE:
	case SM_LINE_DRAIN:
		break;
	case SM_LINE_RINGING:
		t31_call_event(sm->far.t31, AT_CALL_EVENT_HANGUP);
		/* fall through */
	case SM_LINE_DIALING:
		sm_log(sm, "caller hangs up before the answer");
		end_call(sm, "failed", "the caller hung up before the answer");
		break;
	case SM_LINE_CONNECTED:
		/* what is still on the line (its delay) reaches the far end before the loss does */
		sm_log(sm, "caller hangs up");
		sm->state = SM_LINE_DRAIN;
		sm->deadline =
		        sm->ticks + ms_to_ticks(delay + (sm->has_far ? SM_GONE_MS : SM_DRAIN_MS));
		break;
	case SM_LINE_FAR_GONE:
		end_call(sm, "ok", "far end is a modem: no T.30 view");
		break;
	}
}

static void
on_far_hangup(Softmodem *sm)
{
	if (sm->state == SM_LINE_DRAIN && sm->has_far) {
		end_call(sm, "ok", "far end is a modem: no T.30 view");
	} else if (sm->state == SM_LINE_CONNECTED) {
		sm_log(sm, "far modem hangs up");
		sm->state = SM_LINE_FAR_GONE;
		sm->deadline = sm->ticks + ms_to_ticks(sm->cfg.line_delay_ms + SM_GONE_MS);
	}
}

static void
run_events(Softmodem *sm)
{
	while (sm->events != 0) {
		guint ev = sm->events;

		sm->events = 0;
		if (ev & SM_EV_DIAL)
			on_dial(sm);
		if (ev & SM_EV_FAR_ANSWER)
			on_far_answer(sm);
		if (ev & (SM_EV_NEAR_HANGUP | SM_EV_NEAR_RESET))
			on_near_hangup(sm);
		if (ev & (SM_EV_FAR_HANGUP | SM_EV_FAR_RESET))
			on_far_hangup(sm);
		if (ev & SM_EV_NEAR_RESET)
			port_reset(&sm->near);
		if (ev & SM_EV_FAR_RESET)
			port_reset(&sm->far);
	}
}

/* ----- the far end disconnects ----- */

static void
far_disconnects(Softmodem *sm, const char *why)
{
	sm_log(sm, "far end hangs up: %s", why);
	if (sm->fax != NULL && !sm->fax_done)
		t30_terminate(fax_get_t30_state(sm->fax));
	port_call_event(&sm->near, AT_CALL_EVENT_HANGUP);
	end_call(sm, "failed", why);
}

/* --hangup-after N: once page N+1 has begun to arrive (its first rows decoded), cut. */
static gboolean
cut_due(Softmodem *sm)
{
	t30_stats_t st;

	if (sm->cfg.hangup_after < 0 || sm->fax_done)
		return FALSE;
	t30_get_transfer_statistics(fax_get_t30_state(sm->fax), &st);
	if (st.pages_rx < sm->cfg.hangup_after)
		return FALSE;
	if (!sm->cut_armed) {
		/* rows still counts page N until page N+1 starts: wait for it to restart */
		if (sm->cut_length == 0 || st.length >= sm->cut_length) {
			sm->cut_length = MAX(st.length, 1);
			return FALSE;
		}
		sm->cut_armed = TRUE;
	}
	return st.length >= sm->cfg.hangup_rows;
}

static void
line_timers(Softmodem *sm)
{
	switch (sm->state) {
	case SM_LINE_DIALING:
		if (sm->ticks < sm->deadline)
			break;
		if (sm->answer == SM_ANSWER_BUSY) {
			port_call_event(&sm->near, AT_CALL_EVENT_BUSY);
			end_call(sm, "busy", "busy");
		} else if (sm->answer == SM_ANSWER_NOANSWER) {
			port_call_event(&sm->near, AT_CALL_EVENT_NO_ANSWER);
			end_call(sm, "noanswer", "no answer");
		} else {
			start_terminal(sm);
			port_call_event(&sm->near, AT_CALL_EVENT_CONNECTED);
			sm->state = SM_LINE_CONNECTED;
		}
		break;
	case SM_LINE_RINGING:
		if (sm->ticks >= sm->deadline) {
			t31_call_event(sm->far.t31, AT_CALL_EVENT_HANGUP);
			port_call_event(&sm->near, AT_CALL_EVENT_NO_ANSWER);
			end_call(sm, "noanswer", "the far modem did not answer");
		} else if (sm->ticks >= sm->next_ring) {
			sm_log(sm, "RING on the far modem");
			t31_call_event(sm->far.t31, AT_CALL_EVENT_ALERTING);
			sm->next_ring = sm->ticks + ms_to_ticks(SM_RING_MS);
		}
		break;
	case SM_LINE_CONNECTED:
		if (sm->fax == NULL)
			break;
		if (sm->far_gone_at != 0 && sm->ticks >= sm->far_gone_at)
			far_disconnects(sm, t30_completion_code_to_str(sm->fax_status));
		else if (cut_due(sm))
			far_disconnects(sm, "the far end hung up during a page (--hangup-after)");
		break;
	case SM_LINE_DRAIN:
		if (sm->has_far && sm->ticks >= sm->deadline) {
			t31_call_event(sm->far.t31, AT_CALL_EVENT_HANGUP);
			end_call(sm, "ok", "far end is a modem: no T.30 view");
		} else if (!sm->has_far && (sm->fax_done || sm->ticks >= sm->deadline)) {
			if (!sm->fax_done)
				t30_terminate(fax_get_t30_state(sm->fax));
			end_call(sm, "ok", "");
		}
		break;
	case SM_LINE_FAR_GONE:
		if (sm->ticks >= sm->deadline) {
			port_call_event(&sm->near, AT_CALL_EVENT_HANGUP);
			end_call(sm, "ok", "far end is a modem: no T.30 view");
		}
		break;
	case SM_LINE_IDLE:
		break;
	}
}

/* ----- audio ----- */

static void
pad(int16_t *amp, int len)
{
	if (len < SM_CHUNK)
		memset(amp + MAX(len, 0), 0, sizeof(int16_t) * (SM_CHUNK - MAX(len, 0)));
}

static void
exchange_audio(Softmodem *sm)
{
	int16_t near_out[SM_CHUNK];
	int16_t far_out[SM_CHUNK];
	int16_t silence[SM_CHUNK] = {0};
	gboolean near_talks = sm->state == SM_LINE_CONNECTED || sm->state == SM_LINE_FAR_GONE;
	gboolean far_talks = sm->state == SM_LINE_CONNECTED || sm->state == SM_LINE_DRAIN;
	gboolean up = near_talks || far_talks;

	pad(near_out, port_tx(&sm->near, near_out, SM_CHUNK));
	if (!near_talks)
		memset(near_out, 0, sizeof(near_out));
	delay_pass(&sm->to_far, near_out);
	memset(far_out, 0, sizeof(far_out));
	if (sm->has_far) {
		pad(far_out, t31_tx(sm->far.t31, far_out, SM_CHUNK));
		if (!far_talks)
			memset(far_out, 0, sizeof(far_out));
		t31_rx(sm->far.t31, up ? near_out : silence, SM_CHUNK);
	} else if (sm->fax != NULL && far_talks) {
		pad(far_out, fax_tx(sm->fax, far_out, SM_CHUNK));
		fax_rx(sm->fax, near_out, SM_CHUNK);
	}
	delay_pass(&sm->to_near, far_out);
	port_rx(&sm->near, up ? far_out : silence, SM_CHUNK);
	if (sm->state == SM_LINE_CONNECTED)
		sm->line_samples += SM_CHUNK;
}

/* ----- the ptys ----- */

static void
notice_dte(SmPort *port)
{
	if (port->pty.dte_open || !sm_pty_probe(&port->pty))
		return;
	/* nothing queued for the last program goes to this one */
	tcflush(port->pty.master, TCIOFLUSH);
	g_byte_array_set_size(port->pty.out, 0);
	port->pty.dte_open = TRUE;
	sm_log(port->sm, "%s device opened", port->name);
}

static void
read_dte(SmPort *port)
{
	uint8_t buf[SM_READ_CHUNK];

	while (!port->pty.hold) {
		size_t room =
		        port->c2 != NULL ? MIN(sizeof(buf), sm_class2_room(port->c2)) : sizeof(buf);
		gssize n = room > 0 ? sm_pty_read(&port->pty, buf, room) : 0;

		if (n <= 0) {
			if (n < 0 && port->pty.dte_open) {
				port->pty.dte_open = FALSE;
				sm_log(port->sm, "%s device closed (DTR drop): modem reset",
				       port->name);
				port->sm->events |=
				        port->is_far ? SM_EV_FAR_RESET : SM_EV_NEAR_RESET;
			}
			return;
		}
		port_at_rx(port, buf, (size_t)n);
	}
}

int
sm_poll_fds(Softmodem *sm, struct pollfd *fds)
{
	SmPort *ports[] = {&sm->near, sm->has_far ? &sm->far : NULL};
	int n = 0;

	for (guint i = 0; i < G_N_ELEMENTS(ports); i++) {
		SmPort *port = ports[i];

		if (port == NULL || !port->pty.dte_open)
			continue;
		fds[n].fd = port->pty.master;
		fds[n].events = (port->pty.hold ? 0 : POLLIN) | (port->pty.out->len ? POLLOUT : 0);
		fds[n].revents = 0;
		n++;
	}
	return n;
}

void
sm_poll_done(Softmodem *sm, const struct pollfd *fds, int n)
{
	for (int i = 0; i < n; i++) {
		SmPort *port = fds[i].fd == sm->near.pty.master ? &sm->near : &sm->far;

		if (fds[i].revents & POLLOUT)
			sm_pty_flush(&port->pty);
		if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
			read_dte(port);
	}
	run_events(sm);
}

void
sm_tick(Softmodem *sm)
{
	sm->ticks++;
	notice_dte(&sm->near);
	if (sm->has_far)
		notice_dte(&sm->far);
	exchange_audio(sm);
	run_events(sm);
	line_timers(sm);
	run_events(sm);
	sm_pty_flush(&sm->near.pty);
	if (sm->has_far)
		sm_pty_flush(&sm->far.pty);
}

gint64
sm_take_stopped_us(Softmodem *sm)
{
	gint64 us = sm->stopped_us;

	sm->stopped_us = 0;
	return us;
}

/* After the last call the programs get to say ATH and close the devices (or 3 s). */
gboolean
sm_finished(Softmodem *sm)
{
	if (sm->cfg.calls <= 0 || sm->calls_done < sm->cfg.calls)
		return FALSE;
	if (!sm->near.pty.dte_open && !(sm->has_far && sm->far.pty.dte_open))
		return TRUE;
	return sm->ticks - sm->last_end >= ms_to_ticks(SM_LINGER_MS);
}

Softmodem *
sm_new(const SmConfig *cfg, GError **error)
{
	g_autoptr(Softmodem) sm = g_new0(Softmodem, 1);

	sm->cfg = *cfg;
	sm->has_far = cfg->far == SM_FAR_MODEM;
	sm->near.pty.master = -1;
	sm->far.pty.master = -1;
	delay_init(&sm->to_far, cfg->line_delay_ms);
	delay_init(&sm->to_near, cfg->line_delay_ms);
	if (!port_open(sm, &sm->near, "near", cfg->link, error))
		return NULL;
	if (sm->has_far && !port_open(sm, &sm->far, "far", cfg->far_link, error))
		return NULL;
	return g_steal_pointer(&sm);
}

void
sm_free(Softmodem *sm)
{
	if (sm == NULL)
		return;
	if (sm->fax != NULL)
		fax_free(sm->fax);
	port_close(&sm->near);
	port_close(&sm->far);
	g_free(sm->to_far.buf);
	g_free(sm->to_near.buf);
	g_free(sm);
}
