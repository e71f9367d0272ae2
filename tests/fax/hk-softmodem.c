/*
 * hk-softmodem: the fax test harness. A soft fax modem on a pty (spandsp's T.31, Class 1;
 * or Class 2 / 2.0, softmodem-class2.c) whose calls go over a simulated line, in real
 * time, to a spandsp fax terminal or to a second soft modem that a third-party program
 * (efax -r) answers. Tests and the benchmark point the modem plugin, efax or sendfax at
 * the pty's symlink.
 *
 *   hk-softmodem --link PATH [--class 1|2|2.0] [--far terminal|modem] [--far-link PATH2]
 *                [--rx-dir DIR] [--answer normal,busy,noanswer...] [--noanswer-ms MS]
 *                [--hangup-after N] [--garble-page N] [--silent] [--ecm]
 *                [--report FILE] [--calls N] [-v]
 *
 * Prints "ready" on stdout once PATH exists; serves calls one after another until
 * SIGTERM or --calls N (then once the programs have closed the devices, or 3 s), then
 * removes PATH and exits 0. Also: --busy-ms (ATD to BUSY, 1000), --connect-ms (ATD to
 * the far terminal's answer, 500), --ring-timeout-ms (far modem: RING every 3 s until
 * ATA or this, 30000), --line-delay-ms (each way, 100), --hangup-rows (100).
 *
 * What the program on PATH sees: spandsp's T.31 (AT+FCLASS=? gives 0,1,1.0), or with
 * --class 2 / 2.0 a Class 2 (0,2) or Class 2.0 (0,2.0) modem whose T.30 is spandsp's,
 * described in softmodem-class2.c. Verbose result codes framed by CR LF: BUSY and
 * NO ANSWER after ATD; NO CARRIER when the far end hangs up while the modem is in a data
 * or wait state, after which it is on hook (+FTH/+FRH answer ERROR). No CTS or XON on a
 * pty: when T.31's buffer is 3/4 full the harness stops reading, and the DTE's writes
 * block once the pty's own buffer is full. Closing the device is DTR drop: the call is
 * hung up and the modem starts afresh (as after ATZ). The far terminal ends the call
 * 1 s after its T.30 session ends if the caller has not hung up by then.
 *
 * Talks to: the ptys, the report file, stderr (diagnostics), stdout ("ready" only).
 * Must never: outlive a SIGTERM by more than a tick, or leave its symlinks behind on a
 * clean exit.
 */
#include "softmodem.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define SM_MAX_BURST 10                            /* ticks run back to back to catch up */
#define SM_RESYNC_US (200 * G_USEC_PER_SEC / 1000) /* further behind: skip ahead */

typedef struct {
	char *link;
	char *far_link;
	char *far;
	char *class;
	char *rx_dir;
	char *answer;
	char *report;
	int noanswer_ms;
	int busy_ms;
	int connect_ms;
	int ring_timeout_ms;
	int line_delay_ms;
	int hangup_after;
	int hangup_rows;
	int garble_page;
	int calls;
	gboolean silent;
	gboolean ecm;
	gboolean verbose;
} SmOptions;

static gboolean
parse_answers(const char *list, SmConfig *cfg, GError **error)
{
	g_auto(GStrv) items = g_strsplit(list, ",", -1);

	cfg->n_answers = g_strv_length(items);
	cfg->answers = g_new0(SmAnswer, MAX(cfg->n_answers, 1));
	for (guint i = 0; i < cfg->n_answers; i++) {
		const char *a = g_strstrip(items[i]);

		if (strcmp(a, "normal") == 0)
			cfg->answers[i] = SM_ANSWER_NORMAL;
		else if (strcmp(a, "busy") == 0)
			cfg->answers[i] = SM_ANSWER_BUSY;
		else if (strcmp(a, "noanswer") == 0)
			cfg->answers[i] = SM_ANSWER_NOANSWER;
		else {
			g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			            "--answer: unknown \"%s\" (normal, busy, noanswer)", a);
			return FALSE;
		}
	}
	return TRUE;
}

static gboolean
check_options(const SmOptions *o, GError **error)
{
	const char *why = NULL;

	if (o->link == NULL)
		why = "--link PATH is required";
	else if (o->class != NULL && strcmp(o->class, "1") != 0 && strcmp(o->class, "1.0") != 0 &&
	         strcmp(o->class, "2") != 0 && strcmp(o->class, "2.0") != 0)
		why = "--class: 1 (Class 1/1.0, spandsp's T.31), 2 or 2.0 (T.30 by spandsp)";
	else if (o->far != NULL && strcmp(o->far, "terminal") != 0 && strcmp(o->far, "modem") != 0)
		why = "--far: terminal or modem";
	else if (o->far != NULL && strcmp(o->far, "modem") == 0 && o->far_link == NULL)
		why = "--far modem needs --far-link PATH2";
	if (why != NULL)
		g_set_error_literal(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, why);
	return why == NULL;
}

static gboolean
parse_options(int *argc, char ***argv, SmOptions *o, SmConfig *cfg, GError **error)
{
	GOptionEntry entries[] = {
	        {"link", 0, 0, G_OPTION_ARG_FILENAME, &o->link, "Symlink to the modem's pty",
	         "PATH"},
	        {"class", 0, 0, G_OPTION_ARG_STRING, &o->class,
	         "Modem class: 1 (Class 1/1.0), 2 or 2.0", "1|2|2.0"},
	        {"far", 0, 0, G_OPTION_ARG_STRING, &o->far, "What answers: terminal or modem",
	         "WHAT"},
	        {"far-link", 0, 0, G_OPTION_ARG_FILENAME, &o->far_link,
	         "Symlink to the far modem's pty", "PATH2"},
	        {"rx-dir", 0, 0, G_OPTION_ARG_FILENAME, &o->rx_dir,
	         "Far terminal: pages go to DIR/rx-N.tif", "DIR"},
	        {"answer", 0, 0, G_OPTION_ARG_STRING, &o->answer,
	         "One per call, the last repeats: normal, busy, noanswer", "LIST"},
	        {"noanswer-ms", 0, 0, G_OPTION_ARG_INT, &o->noanswer_ms, "ATD to NO ANSWER", "MS"},
	        {"busy-ms", 0, 0, G_OPTION_ARG_INT, &o->busy_ms, "ATD to BUSY", "MS"},
	        {"connect-ms", 0, 0, G_OPTION_ARG_INT, &o->connect_ms,
	         "ATD to the far terminal answering", "MS"},
	        {"ring-timeout-ms", 0, 0, G_OPTION_ARG_INT, &o->ring_timeout_ms,
	         "Far modem: ring this long before NO ANSWER", "MS"},
	        {"line-delay-ms", 0, 0, G_OPTION_ARG_INT, &o->line_delay_ms,
	         "The line's delay each way", "MS"},
	        {"hangup-after", 0, 0, G_OPTION_ARG_INT, &o->hangup_after,
	         "Far terminal hangs up during page N+1", "N"},
	        {"hangup-rows", 0, 0, G_OPTION_ARG_INT, &o->hangup_rows,
	         "... once this many rows of it have arrived", "ROWS"},
	        {"garble-page", 0, 0, G_OPTION_ARG_INT, &o->garble_page,
	         "Far terminal gets page N garbled the first time (answers RTN; not with ECM)",
	         "N"},
	        {"silent", 0, 0, G_OPTION_ARG_NONE, &o->silent, "Never answer on the pty", NULL},
	        {"ecm", 0, 0, G_OPTION_ARG_NONE, &o->ecm, "The far terminal offers ECM", NULL},
	        {"report", 0, 0, G_OPTION_ARG_FILENAME, &o->report,
	         "Append one JSON line per call to FILE", "FILE"},
	        {"calls", 0, 0, G_OPTION_ARG_INT, &o->calls, "Exit after N calls", "N"},
	        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &o->verbose, "spandsp's logs on stderr",
	         NULL},
	        {NULL},
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("- soft fax modem on a pty");

	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, argc, argv, error) || !check_options(o, error))
		return FALSE;
	*cfg = (SmConfig){
	        .link = o->link,
	        .far_link = o->far_link,
	        .rx_dir = o->rx_dir != NULL ? o->rx_dir : (char *)".",
	        .report = o->report,
	        .far = g_strcmp0(o->far, "modem") == 0 ? SM_FAR_MODEM : SM_FAR_TERMINAL,
	        .noanswer_ms = o->noanswer_ms,
	        .busy_ms = o->busy_ms,
	        .connect_ms = o->connect_ms,
	        .ring_timeout_ms = o->ring_timeout_ms,
	        .line_delay_ms = CLAMP(o->line_delay_ms, 0, 2000),
	        .hangup_after = o->hangup_after,
	        .hangup_rows = MAX(o->hangup_rows, 1),
	        .garble_page = MAX(o->garble_page, 0),
	        .calls = o->calls,
	        .silent = o->silent,
	        .ecm = o->ecm,
	        .verbose = o->verbose,
	        .class2 = g_strcmp0(o->class, "2") == 0     ? 2
	                  : g_strcmp0(o->class, "2.0") == 0 ? 20
	                                                    : 0,
	        .stop_fd = -1,
	};
	return parse_answers(o->answer != NULL ? o->answer : "normal", cfg, error);
}

static int
block_signals(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Real time: one tick per 20 ms of the monotonic clock, poll()ing the ptys in between. */
static void
run(Softmodem *sm, int sigfd)
{
	gint64 next = g_get_monotonic_time() + SM_TICK_US;

	while (!sm_finished(sm)) {
		struct pollfd fds[3];
		int n = sm_poll_fds(sm, fds);
		gint64 now = g_get_monotonic_time();
		int burst = 0;

		fds[n] = (struct pollfd){.fd = sigfd, .events = POLLIN};
		if (poll(fds, n + 1, next > now ? (int)((next - now + 999) / 1000) : 0) < 0 &&
		    errno != EINTR)
			g_error("poll: %s", g_strerror(errno));
		if (fds[n].revents & POLLIN)
			return;
		sm_poll_done(sm, fds, n);
		now = g_get_monotonic_time();
		for (; now >= next && burst < SM_MAX_BURST && !sm_finished(sm); burst++) {
			sm_tick(sm);
			next += SM_TICK_US + sm_take_stopped_us(sm);
		}
		if (now - next > SM_RESYNC_US) {
			g_printerr("hk-softmodem: %" G_GINT64_FORMAT " ms behind real time\n",
			           (now - next) / 1000);
			next = now + SM_TICK_US;
		}
	}
}

int
main(int argc, char **argv)
{
	SmOptions o = {
	        .noanswer_ms = 2000,
	        .busy_ms = 1000,
	        .connect_ms = 500,
	        .ring_timeout_ms = 30000,
	        .line_delay_ms = 100,
	        .hangup_after = -1,
	        .hangup_rows = 100,
	};
	SmConfig cfg;
	g_autoptr(GError) error = NULL;
	g_autoptr(Softmodem) sm = NULL;
	int sigfd;

	if (!parse_options(&argc, &argv, &o, &cfg, &error)) {
		g_printerr("hk-softmodem: %s\n", error->message);
		return 2;
	}
	sigfd = block_signals();
	cfg.stop_fd = sigfd;
	sm = sm_new(&cfg, &error);
	if (sm == NULL) {
		g_printerr("hk-softmodem: %s\n", error->message);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	run(sm, sigfd);
	g_clear_pointer(&sm, sm_free);
	close(sigfd);
	g_free(cfg.answers);
	g_free(o.link);
	g_free(o.far_link);
	g_free(o.far);
	g_free(o.class);
	g_free(o.rx_dir);
	g_free(o.answer);
	g_free(o.report);
	return 0;
}
