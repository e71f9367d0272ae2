/*
 * softmodem: the pieces of hk-softmodem, the fax test harness. A pty whose slave is the
 * "serial device" a fax program opens, spandsp's T.31 Class 1 modem (or, with --class 2,
 * hanko's Class 2/2.0 modem around spandsp's T.30) on its master side, and a simulated
 * telephone line (8 kHz audio in 160-sample chunks, paced in real time)
 * to a far end: a spandsp fax terminal receiving into TIFF, or a second T.31 modem on a
 * second pty for a third-party program.
 *
 * Talks to: the fax programs on the ptys (AT commands in, responses and data out), the
 * report file (one JSON line per call), stderr (diagnostics).
 * Must never: block on a pty (everything is non-blocking and polled), run audio faster
 * or slower than real time on purpose, or write anything but "ready\n" to stdout.
 */
#pragma once

#include <glib.h>
#include <poll.h>
#include <stdint.h>

#include <tiffio.h>
#include <spandsp.h>

#define SM_SAMPLE_RATE 8000
#define SM_CHUNK       160 /* samples per tick: 20 ms */
#define SM_TICK_US     20000

typedef enum {
	SM_ANSWER_NORMAL,
	SM_ANSWER_BUSY,
	SM_ANSWER_NOANSWER,
} SmAnswer;

typedef enum {
	SM_FAR_TERMINAL,
	SM_FAR_MODEM,
} SmFar;

typedef struct {
	char *link;
	char *far_link;
	char *rx_dir;
	char *report;
	SmFar far;
	SmAnswer *answers; /* n_answers entries; the last one repeats */
	guint n_answers;
	int noanswer_ms;
	int busy_ms;         /* ATD to BUSY */
	int connect_ms;      /* ATD to the far terminal answering */
	int ring_timeout_ms; /* far modem: rings until NO ANSWER */
	int line_delay_ms;   /* propagation delay, each way */
	int hangup_after;    /* -1: never */
	int hangup_rows;     /* rows of page hangup_after+1 the far terminal takes first */
	int calls;           /* 0: unlimited */
	gboolean silent;
	gboolean ecm;
	gboolean verbose;
	int garble_page; /* the far terminal garbles this page's first coming (RTN); 0: none */
	int class2;  /* 2 or 20: the near modem is Class 2 or 2.0 (softmodem-class2.c); 0: T.31 */
	int stop_fd; /* readable: stop (a wait for the DTE gives up); -1: none */
} SmConfig;

/* One side of a pty pair: the master, and whether a program holds the slave open. */
typedef struct {
	int master;
	char *slave_name;
	char *link;
	gboolean dte_open;
	gboolean hold;   /* the modem's transmit buffer is full: stop reading (CTS off) */
	GByteArray *out; /* responses and data not yet taken by the pty */
} SmPty;

/* softmodem-pty.c */
gboolean sm_pty_open(SmPty *pty, const char *link, GError **error);
void sm_pty_close(SmPty *pty);
/* Queues bytes for the DTE; dropped while no program has the device open. */
void sm_pty_write(SmPty *pty, const uint8_t *buf, size_t len);
/* Writes what the pty takes now. */
void sm_pty_flush(SmPty *pty);
/* Reads up to len bytes; 0 when nothing is there, -1 when the slave side is closed. */
gssize sm_pty_read(SmPty *pty, uint8_t *buf, size_t len);
/* Polls the master without waiting: TRUE when a program holds the slave open. */
gboolean sm_pty_probe(SmPty *pty);

typedef struct Softmodem Softmodem;

/* softmodem-line.c */
Softmodem *sm_new(const SmConfig *cfg, GError **error);
void sm_free(Softmodem *sm);
/* The pty(s) to poll: fills up to 2 entries, returns how many. */
int sm_poll_fds(Softmodem *sm, struct pollfd *fds);
/* After poll: reads, writes and notices closed devices. */
void sm_poll_done(Softmodem *sm, const struct pollfd *fds, int n);
/* One 20 ms chunk of line time. */
void sm_tick(Softmodem *sm);
/* The wall time the line stood still (a Class 2 modem waiting for its DTE) since the
 * last call: the real-time schedule moves on by as much. */
gint64 sm_take_stopped_us(Softmodem *sm);
/* TRUE once --calls N calls have finished. */
gboolean sm_finished(Softmodem *sm);

/* softmodem-class2.c: the Class 2 / 2.0 modem. Its host moves the bytes and the line. */
typedef struct SmClass2 SmClass2;

typedef struct {
	void (*write)(gpointer data, const uint8_t *buf, size_t len); /* to the DTE */
	void (*control)(gpointer data, int op); /* AT_MODEM_CONTROL_CALL / _HANGUP */
	/* Serves the DTE, the line's clock stopped, while sm_class2_waiting() (or a bound) */
	void (*wait_dte)(gpointer data);
	gpointer data;
} SmClass2Host;

/* v20: a Class 2.0 modem (T.32), else a Class 2 one (SP-2388) */
SmClass2 *
sm_class2_new(const SmClass2Host *host, gboolean v20, const char *work_dir, gboolean verbose);
void sm_class2_free(SmClass2 *c2);
void sm_class2_at_rx(SmClass2 *c2, const uint8_t *buf, size_t len);
/* How many bytes the modem takes from the DTE now (page data goes at the line's rate). */
size_t sm_class2_room(SmClass2 *c2);
int sm_class2_tx(SmClass2 *c2, int16_t *amp, int len);
void sm_class2_rx(SmClass2 *c2, int16_t *amp, int len);
/* AT_CALL_EVENT_CONNECTED, _BUSY, _NO_ANSWER, _HANGUP (the far end went away) */
void sm_class2_call_event(SmClass2 *c2, int event);
gboolean sm_class2_waiting(SmClass2 *c2);
/* The DTE went away or the harness stops: the call ends after the wait. */
void sm_class2_abort_wait(SmClass2 *c2);
/* What +FDCS/+FCS told the DTE of the last call: T.4 coding (T4_COMPRESSION_*), ECM, the
 * highest signalling rate in bit/s (a retrain after RTN tells a lower one); FALSE when it
 * told nothing. */
gboolean sm_class2_dcs(SmClass2 *c2, int *encoding, gboolean *ecm, int *bit_rate);

/* softmodem-garble.c: the far terminal garbles a page's image data once (--garble-page). */
typedef struct {
	fax_state_t *fax;
	int page; /* 1-based; 0: nothing is garbled */
	t30_set_handler_t *set_rx_type;
	void *set_rx_type_data;
	int bit_rate;
	guint64 bits;     /* image bits since the fast carrier trained */
	gboolean touched; /* bits of the page now arriving were inverted */
	gboolean done;
	gboolean judging;    /* the far end's answer to the garbled page is due */
	const char *verdict; /* that answer: "RTN" (or "MCF", "RTP"); NULL: none yet */
} SmGarble;

/* Hooks g into the far terminal fax (its set_rx_type handler and phase D handler). */
void sm_garble_attach(SmGarble *g, fax_state_t *fax, int page);
/* The far end's answer to the page it got garbled; NULL if none was garbled. */
const char *sm_garble_verdict(SmGarble *g);

/* softmodem-report.c */
typedef struct {
	int call;
	SmAnswer answer;
	const char *result; /* ok, failed, busy, noanswer */
	int pages;
	gint64 line_samples;
	int rate;
	gboolean ecm;
	int t30_status;
	const char *t30_text;
	const char *coding;  /* MH, MR, MMR; "" when no page came */
	const char *garbled; /* --garble-page: the far end's answer ("": none); NULL: not asked */
} SmReport;

const char *sm_answer_name(SmAnswer answer);
char *sm_report_json(const SmReport *report);
void sm_report_append(const char *path, const SmReport *report);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Softmodem, sm_free)
