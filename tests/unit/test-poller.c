/* test-poller: hk-poller's epoll set behind one main-loop source. */
#include "hk-poller.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
	int fds[2]; /* fds[0] watched, fds[1] the peer */
	HkPollWatch *watch;
	guint calls;
	HkPollEvents last;
	HkPollWatch **remove_on_call; /* a watch the callback removes, or NULL */
	gboolean drain;
} Pair;

static void
pair_open(Pair *pair)
{
	g_assert_no_errno(
	        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair->fds));
}

static void
pair_close(Pair *pair)
{
	for (guint i = 0; i < 2; i++) {
		if (pair->fds[i] >= 0)
			close(pair->fds[i]);
		pair->fds[i] = -1;
	}
}

static void
on_event(int fd, HkPollEvents events, gpointer data)
{
	Pair *pair = data;
	char buf[64];

	g_assert_cmpint(fd, ==, pair->fds[0]);
	pair->calls++;
	pair->last = events;
	if (pair->drain)
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	if (pair->remove_on_call != NULL)
		g_clear_pointer(pair->remove_on_call, hk_poll_watch_remove);
}

/* Runs the default context until nothing is ready; returns how many iterations dispatched. */
static guint
run_ready(void)
{
	guint n = 0;

	while (n < 100 && g_main_context_iteration(NULL, FALSE))
		n++;
	return n;
}

static void
test_readable_writable(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HkPoller) poller = hk_poller_new(&error);
	Pair pair = {.drain = TRUE};

	g_assert_no_error(error);
	pair_open(&pair);
	pair.watch = hk_poller_add(poller, pair.fds[0], HK_POLL_IN, on_event, &pair);
	g_assert_nonnull(pair.watch);
	run_ready();
	g_assert_cmpuint(pair.calls, ==, 0);

	g_assert_cmpint(write(pair.fds[1], "x", 1), ==, 1);
	run_ready();
	g_assert_cmpuint(pair.calls, ==, 1);
	g_assert_cmpint(pair.last, ==, HK_POLL_IN);

	g_assert_true(hk_poll_watch_set(pair.watch, HK_POLL_OUT));
	g_assert_true(g_main_context_iteration(NULL, FALSE));
	g_assert_cmpuint(pair.calls, >=, 2);
	g_assert_cmpint(pair.last, ==, HK_POLL_OUT);

	hk_poll_watch_remove(pair.watch);
	pair_close(&pair);
}

/* Both ends become ready in one batch and each callback removes the other's watch: the
 * second event collected must not be delivered. */
static void
test_remove_in_batch(void)
{
	g_autoptr(HkPoller) poller = hk_poller_new(NULL);
	Pair a = {.drain = TRUE}, b = {.drain = TRUE};
	Pair *survivor;

	pair_open(&a);
	pair_open(&b);
	a.watch = hk_poller_add(poller, a.fds[0], HK_POLL_IN, on_event, &a);
	b.watch = hk_poller_add(poller, b.fds[0], HK_POLL_IN, on_event, &b);
	a.remove_on_call = &b.watch;
	b.remove_on_call = &a.watch;
	g_assert_cmpint(write(a.fds[1], "x", 1), ==, 1);
	g_assert_cmpint(write(b.fds[1], "x", 1), ==, 1);
	g_assert_true(g_main_context_iteration(NULL, FALSE));
	run_ready();
	g_assert_cmpuint(a.calls + b.calls, ==, 1);
	survivor = a.calls == 1 ? &a : &b;
	g_assert_nonnull(survivor->watch);
	g_assert_null((survivor == &a ? &b : &a)->watch);
	/* the survivor goes on being served */
	g_assert_cmpint(write(survivor->fds[1], "y", 1), ==, 1);
	run_ready();
	g_assert_cmpuint(survivor->calls, ==, 2);
	hk_poll_watch_remove(survivor->watch);
	pair_close(&a);
	pair_close(&b);
}

/* A watch that waits for nothing is out of the kernel's set: a hung-up peer does not make
 * it ready over and over. Asking for input then reports the hang-up. */
static void
test_hangup_without_interest(void)
{
	g_autoptr(HkPoller) poller = hk_poller_new(NULL);
	Pair pair = {.drain = TRUE};

	pair_open(&pair);
	pair.watch = hk_poller_add(poller, pair.fds[0], 0, on_event, &pair);
	g_assert_nonnull(pair.watch);
	close(pair.fds[1]);
	pair.fds[1] = -1;
	g_assert_cmpuint(run_ready(), ==, 0);
	g_assert_cmpuint(pair.calls, ==, 0);

	g_assert_true(hk_poll_watch_set(pair.watch, HK_POLL_IN));
	g_assert_true(g_main_context_iteration(NULL, FALSE));
	g_assert_cmpuint(pair.calls, >=, 1);
	g_assert_true(pair.last & HK_POLL_ERR);

	g_assert_true(hk_poll_watch_set(pair.watch, 0));
	pair.calls = 0;
	g_assert_cmpuint(run_ready(), ==, 0);
	g_assert_cmpuint(pair.calls, ==, 0);
	hk_poll_watch_remove(pair.watch);
	pair_close(&pair);
}

static void
test_bad_descriptor(void)
{
	g_autoptr(HkPoller) poller = hk_poller_new(NULL);
	int fds[2];

	g_assert_no_errno(pipe(fds));
	close(fds[0]);
	close(fds[1]);
	errno = 0;
	g_assert_null(hk_poller_add(poller, fds[0], HK_POLL_IN, on_event, NULL));
	g_assert_cmpint(errno, ==, EBADF);
}

static gboolean
on_idle(gpointer data)
{
	*(gboolean *)data = TRUE;
	return G_SOURCE_REMOVE;
}

/* A connection that is always ready (never drained) does not keep the rest of the loop
 * from running: a dispatch looks again only a bounded number of times. */
static void
test_bounded_dispatch(void)
{
	g_autoptr(HkPoller) poller = hk_poller_new(NULL);
	Pair pair = {0};
	gboolean idle_ran = FALSE;

	pair_open(&pair);
	pair.watch = hk_poller_add(poller, pair.fds[0], HK_POLL_IN, on_event, &pair);
	g_assert_cmpint(write(pair.fds[1], "x", 1), ==, 1);
	g_idle_add_full(G_PRIORITY_DEFAULT, on_idle, &idle_ran, NULL);
	for (guint i = 0; i < 10 && !idle_ran; i++)
		g_main_context_iteration(NULL, FALSE);
	g_assert_true(idle_ran);
	g_assert_cmpuint(pair.calls, >, 0);
	g_assert_cmpuint(pair.calls, <, 100);
	hk_poll_watch_remove(pair.watch);
	pair_close(&pair);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/poller/readable-writable", test_readable_writable);
	g_test_add_func("/poller/remove-in-batch", test_remove_in_batch);
	g_test_add_func("/poller/hangup-without-interest", test_hangup_without_interest);
	g_test_add_func("/poller/bad-descriptor", test_bad_descriptor);
	g_test_add_func("/poller/bounded-dispatch", test_bounded_dispatch);
	return g_test_run();
}
