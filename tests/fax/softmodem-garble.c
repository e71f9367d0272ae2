/*
 * softmodem-garble: --garble-page N. The far terminal receives the image data of page N
 * with every 16th bit inverted, the first time that page comes, so that its copy-quality
 * check finds most rows bad and it answers RTN, as a fax machine on a noisy line does. The
 * page sent again after the retrain comes through clean.
 *
 * Only the page data is touched: the first two seconds after a fast carrier trains are
 * left alone, which covers the training check (TCF, 1.5 s), and so are HDLC frames; with
 * ECM nothing is garbled (ECM repairs frames without RTN). The hook sits between spandsp's
 * fast modems and the far T.30 (t30_non_ecm_put_bit), through 0.0.6's private structures:
 * fax_state_t's modems and T.30's set_rx_type handler, which T.30 calls each time it
 * switches receivers.
 *
 * Talks to: the far terminal's fax_state_t. Must never: garble a page the caller sends
 * again, or anything but image data.
 */
#define SPANDSP_EXPOSE_INTERNAL_STRUCTURES
#include "softmodem.h"

#include <string.h>

#define GARBLE_EVERY      16
#define GARBLE_GRACE_SECS 2

static gboolean
garbling(const SmGarble *g)
{
	const t30_state_t *t30 = &g->fax->t30;

	return !g->done && !t30->error_correcting_mode && t30->rx_page_number == g->page - 1;
}

static void
garble_put_bit(void *user_data, int bit)
{
	SmGarble *g = user_data;

	if (bit == SIG_STATUS_TRAINING_SUCCEEDED || bit == SIG_STATUS_CARRIER_UP)
		g->bits = 0;
	else if (bit >= 0 && garbling(g) && ++g->bits > (guint64)g->bit_rate * GARBLE_GRACE_SECS &&
	         g->bits % GARBLE_EVERY == 0) {
		bit ^= 1;
		g->touched = TRUE;
	}
	t30_non_ecm_put_bit(&g->fax->t30, bit);
}

/* T.30 switches the far receiver: spandsp's own switch, then the fast modem's bits through
 * garble_put_bit() when they are image data. */
static void
garble_set_rx_type(void *user_data, int type, int bit_rate, int short_train, int use_hdlc)
{
	SmGarble *g = user_data;
	fax_modems_state_t *m = &g->fax->modems;

	sm_garble_verdict(g);
	g->set_rx_type(g->set_rx_type_data, type, bit_rate, short_train, use_hdlc);
	if (use_hdlc)
		return;
	g->bit_rate = bit_rate;
	g->bits = 0;
	switch (type) {
	case T30_MODEM_V17:
		v17_rx_set_put_bit(&m->fast_modems.v17_rx, garble_put_bit, g);
		break;
	case T30_MODEM_V29:
		v29_rx_set_put_bit(&m->fast_modems.v29_rx, garble_put_bit, g);
		break;
	case T30_MODEM_V27TER:
		v27ter_rx_set_put_bit(&m->fast_modems.v27ter_rx, garble_put_bit, g);
		break;
	default:
		break;
	}
}

/* The far end judges the garbled page now (its answer goes out after this returns): a page
 * garbled once is not garbled again. */
static int
garble_phase_d(t30_state_t *t30, void *user_data, int fcf)
{
	SmGarble *g = user_data;

	if (g->touched && !g->done) {
		t4_stats_t st;

		t4_rx_get_transfer_statistics(&t30->t4.rx, &st);
		g_printerr("hk-softmodem: far terminal: page %d came garbled: %d of %d rows bad\n",
		           g->page, st.bad_rows, st.length);
		g->done = TRUE;
		g->judging = TRUE;
	}
	return 0;
}

const char *
sm_garble_verdict(SmGarble *g)
{
	if (g->judging) {
		/* the answer to the garbled page, read once it has been given */
		g->verdict = t30_frametype((uint8_t)g->fax->t30.last_rx_page_result);
		g->judging = FALSE;
	}
	return g->verdict;
}

void
sm_garble_attach(SmGarble *g, fax_state_t *fax, int page)
{
	t30_state_t *t30 = &fax->t30;

	memset(g, 0, sizeof(*g));
	if (page <= 0)
		return;
	g->fax = fax;
	g->page = page;
	g->set_rx_type = t30->set_rx_type_handler;
	g->set_rx_type_data = t30->set_rx_type_user_data;
	t30->set_rx_type_handler = garble_set_rx_type;
	t30->set_rx_type_user_data = g;
	t30_set_phase_d_handler(t30, garble_phase_d, g);
}
