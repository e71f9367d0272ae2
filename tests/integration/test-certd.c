/*
 * test-certd: hanko-certd and hankoctl as built, run as processes against real sockets.
 *
 * Each test gets a temporary directory holding its hanko.conf, the sockets and the
 * daemon's stderr (certd.log), which the tests read to assert what was logged. Daemons
 * are started with -f -c CONF by fork+exec; readiness is a ping answered on the socket
 * (the reply comes from the main loop, so the signal handlers are in place by then) or
 * READY=1 on NOTIFY_SOCKET. Every wait is a bounded poll, never a fixed sleep.
 *
 * Talks to: the hanko-certd and hankoctl binaries of the build tree, contrib/hanko.conf.
 * Must never: leave a daemon running. The fixture teardown kills and reaps them; since a
 * failed g_assert aborts before any teardown, each daemon also gets PR_SET_PDEATHSIG.
 * A failed test keeps its directory (and the daemon's log) for a post-mortem.
 */
#include "certd.h"
#include "hk-build-config.h"
#include "hk-certd-proto.h"
#include "hk-json.h"
#include "milter.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define CERTD   HK_TEST_BINDIR "/certd/hanko-certd"
#define CTL     HK_TEST_BINDIR "/certd/hankoctl"
#define EXAMPLE HK_TEST_SRCDIR "/contrib/hanko.conf"

#define WAIT_US (5 * G_USEC_PER_SEC) /* longest wait for anything a daemon does */
#define POLL_US (10 * 1000)

#define EXIT_UNAVAILABLE 69 /* sysexits.h, as hankoctl uses them */
#define EXIT_CONFIG      78

#define LISTEN_FD 3 /* SD_LISTEN_FDS_START */

/* One hanko-certd process. */
typedef struct {
	GPid pid;  /* 0: not running, or already reaped */
	char *log; /* its stdout and stderr */
} Daemon;

typedef struct {
	char *dir;
	char *conf;   /* dir/hanko.conf */
	char *socket; /* dir/certd.sock, the conf's [certd] socket */
	Daemon certd;
	Daemon second; /* a competitor for the same socket */
	int notify_fd; /* our end of NOTIFY_SOCKET; -1: none */
} Fixture;

/* How to start a daemon, beyond -f -c CONF. */
typedef struct {
	const char *notify_socket; /* NOTIFY_SOCKET, or NULL */
	int listen_fd;             /* handed over as fd 3 with LISTEN_*; -1: none */
	gboolean no_g_debug;       /* without the G_DEBUG that ctest sets */
} Launch;

static const Launch plain = {.listen_fd = -1};

/* A finished program: its exit status (128 + signal when killed) and output. */
typedef struct {
	int status;
	char *out;
	char *err;
} Run;

static void
run_clear(Run *run)
{
	g_clear_pointer(&run->out, g_free);
	g_clear_pointer(&run->err, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Run, run_clear)

/* ----- helpers ----- */

static int
shell_status(int wait_status)
{
	if (WIFEXITED(wait_status))
		return WEXITSTATUS(wait_status);
	return 128 + WTERMSIG(wait_status);
}

static void
run_argv(Run *run, const char *const *argv)
{
	g_autoptr(GError) error = NULL;
	int wait_status = 0;

	g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &run->out, &run->err,
	             &wait_status, &error);
	g_assert_no_error(error);
	run->status = shell_status(wait_status);
}

/* Runs program with the NULL-terminated arguments and waits for it. */
static G_GNUC_NULL_TERMINATED void
run_prog(Run *run, const char *program, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	const char *arg;
	va_list ap;

	g_ptr_array_add(argv, (gpointer)program);
	va_start(ap, program);
	while ((arg = va_arg(ap, const char *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(ap);
	g_ptr_array_add(argv, NULL);
	run_argv(run, (const char *const *)argv->pdata);
}

static void
assert_contains(const char *haystack, const char *needle)
{
	if (strstr(haystack, needle) == NULL) {
		g_autofree char *msg =
		        g_strdup_printf("\"%s\" not found in:\n%s", needle, haystack);
		g_assertion_message(G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, msg);
	}
}

/* Writes the conf: our socket, mode 0600, no role groups (so no host group matters). */
static void
write_conf(Fixture *fx, const char *extra)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *text = g_strdup_printf("[certd]\nsocket = %s\nsocket_mode = 0600\n"
	                                        "admin_group =\nservice_group =\n%s",
	                                        fx->socket, extra);

	g_file_set_contents(fx->conf, text, -1, &error);
	g_assert_no_error(error);
}

static int
bind_unix(const char *path, int type)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpuint(strlen(path), <, sizeof(sun.sun_path));
	strcpy(sun.sun_path, path);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
	return fd;
}

/* A socket file nobody listens on, as a daemon that died leaves behind. */
static void
make_stale_socket(const char *path)
{
	close(bind_unix(path, SOCK_STREAM));
	g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
}

static gboolean
ping_ok(const char *path)
{
	g_autoptr(HkIpcClient) client = hk_ipc_client_connect(path, 1000, NULL);
	g_autoptr(json_object) result = NULL;

	if (client == NULL)
		return FALSE;
	result = hk_ipc_client_call(client, HK_CERTD_OP_PING, NULL, NULL);
	return hk_json_get_bool(result, HK_CERTD_KEY_PONG, FALSE);
}

/* ----- daemons ----- */

static void
pass_listen_fd(int fd)
{
	char pid[32];

	/* dup2() clears close-on-exec, except onto itself */
	if (fd == LISTEN_FD)
		fcntl(fd, F_SETFD, 0);
	else
		dup2(fd, LISTEN_FD);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDNAMES", "certd", 1);
}

/* In the forked child: only what must happen between fork and exec. */
static G_GNUC_NORETURN void
exec_certd(const char *conf, const char *log, const Launch *launch, pid_t parent)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
		_exit(127);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(127);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (launch->no_g_debug)
		unsetenv("G_DEBUG");
	if (launch->notify_socket != NULL)
		setenv("NOTIFY_SOCKET", launch->notify_socket, 1);
	if (launch->listen_fd >= 0)
		pass_listen_fd(launch->listen_fd);
	execl(CERTD, CERTD, "-f", "-c", conf, (char *)NULL);
	_exit(127);
}

static void
daemon_start(Fixture *fx, Daemon *d, const Launch *launch)
{
	pid_t parent = getpid();
	pid_t pid;

	fflush(NULL); /* nothing buffered may be written twice */
	pid = fork();
	g_assert_cmpint(pid, >=, 0);
	if (pid == 0)
		exec_certd(fx->conf, d->log, launch, parent);
	d->pid = pid;
}

static char *
daemon_log(Daemon *d)
{
	char *text = NULL;

	if (!g_file_get_contents(d->log, &text, NULL, NULL))
		return g_strdup("");
	return text;
}

static G_GNUC_NORETURN void
fail_with_log(Daemon *d, const char *what)
{
	g_autofree char *log = daemon_log(d);
	g_autofree char *msg = g_strdup_printf("%s; hanko-certd's log:\n%s", what, log);

	g_assertion_message(G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, msg);
	abort(); /* not reached: assertions in this program are fatal */
}

/* FALSE (and reaped) once the daemon has exited. */
static gboolean
daemon_alive(Daemon *d, int *status)
{
	int wait_status;

	if (waitpid(d->pid, &wait_status, WNOHANG) != d->pid)
		return TRUE;
	d->pid = 0;
	*status = shell_status(wait_status);
	return FALSE;
}

/* The daemon's exit status, once it has ended. */
static int
daemon_wait(Daemon *d)
{
	gint64 deadline = g_get_monotonic_time() + WAIT_US;
	int status;

	while (daemon_alive(d, &status)) {
		if (g_get_monotonic_time() > deadline)
			fail_with_log(d, "hanko-certd did not exit in time");
		g_usleep(POLL_US);
	}
	return status;
}

static int
daemon_signal(Daemon *d, int sig)
{
	g_assert_cmpint(kill(d->pid, sig), ==, 0);
	return daemon_wait(d);
}

/* Waits until the daemon answers a ping on path. */
static void
daemon_wait_ready(Daemon *d, const char *path)
{
	gint64 deadline = g_get_monotonic_time() + WAIT_US;
	int status;

	while (!ping_ok(path)) {
		if (!daemon_alive(d, &status))
			fail_with_log(d, "hanko-certd exited before it was ready");
		if (g_get_monotonic_time() > deadline)
			fail_with_log(d, "hanko-certd did not answer a ping in time");
		g_usleep(POLL_US);
	}
}

/* Waits until the daemon's log holds needle. */
static void
daemon_wait_log(Daemon *d, const char *needle)
{
	gint64 deadline = g_get_monotonic_time() + WAIT_US;

	for (;;) {
		g_autofree char *log = daemon_log(d);

		if (strstr(log, needle) != NULL)
			return;
		if (g_get_monotonic_time() > deadline) {
			g_autofree char *what = g_strdup_printf("\"%s\" was not logged", needle);
			fail_with_log(d, what);
		}
		g_usleep(POLL_US);
	}
}

static void
start_certd(Fixture *fx)
{
	daemon_start(fx, &fx->certd, &plain);
	daemon_wait_ready(&fx->certd, fx->socket);
}

static void
daemon_kill(Daemon *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
	}
	g_free(d->log);
}

/* ----- fixture ----- */

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	fx->dir = g_dir_make_tmp("hanko-certd-test-XXXXXX", &error);
	g_assert_no_error(error);
	fx->conf = g_build_filename(fx->dir, "hanko.conf", NULL);
	fx->socket = g_build_filename(fx->dir, "certd.sock", NULL);
	fx->certd.log = g_build_filename(fx->dir, "certd.log", NULL);
	fx->second.log = g_build_filename(fx->dir, "second.log", NULL);
	fx->notify_fd = -1;
}

static void
remove_dir(const char *path)
{
	g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *file = g_build_filename(path, name, NULL);

		g_remove(file);
	}
	g_rmdir(path);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	daemon_kill(&fx->certd);
	daemon_kill(&fx->second);
	if (fx->notify_fd >= 0)
		close(fx->notify_fd);
	remove_dir(fx->dir);
	g_free(fx->socket);
	g_free(fx->conf);
	g_free(fx->dir);
}

/* ----- 1. --version ----- */

static void
test_version(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};

	run_prog(&run, CERTD, "--version", NULL);
	g_assert_cmpint(run.status, ==, 0);
	g_assert_cmpstr(run.out, ==, "hanko-certd " HANKO_VERSION "\n");
}

/* ----- 2. --check-config ----- */

typedef struct {
	const char *name;
	const char *text; /* NULL: there is no file */
	int status;
	const char *expect[5]; /* on stdout for status 0, else on stderr; @CONF@: the path */
} CheckCase;

static const CheckCase check_cases[] = {
        {"good",
         "[certd]\nsocket = /run/hanko-test/certd.sock\nsocket_mode = 0640\n"
         "max_connections_per_uid = 10\n\n[policyd]\nanything = goes\n",
         0,
         {"@CONF@: configuration OK"}},
        {"unknown-key",
         "[certd]\nsocket_mode = 0640\n\n# the next line is a typo\nsokcet = /run/x.sock\n",
         EXIT_CONFIG,
         {"@CONF@:5: ", "[certd]", "sokcet", "unknown key"}},
        {"mode-too-wide",
         "[certd]\nsocket_mode = 0777\n",
         EXIT_CONFIG,
         {"@CONF@:2: ", "[certd] socket_mode", "0777 is wider than 0666"}},
        {"relative-path",
         "[certd]\nsocket = certd.sock\n",
         EXIT_CONFIG,
         {"@CONF@:2: ", "[certd] socket", "must be an absolute path"}},
        {"out-of-range",
         "[certd]\nmax_connections_per_uid = 0\n",
         EXIT_CONFIG,
         {"@CONF@:2: ", "[certd] max_connections_per_uid", "between 1 and 100000"}},
        {"missing-file", NULL, EXIT_CONFIG, {"cannot read @CONF@"}},
        {"unknown-section",
         "[certd]\n\n[nosuch]\nkey = 1\n",
         EXIT_CONFIG,
         {"@CONF@:3: ", "[nosuch]", "unknown section"}},
};

static void
test_check_config(Fixture *fx, gconstpointer data)
{
	const CheckCase *c = data;
	g_autoptr(GError) error = NULL;
	g_auto(Run) run = {0};

	if (c->text != NULL) {
		g_file_set_contents(fx->conf, c->text, -1, &error);
		g_assert_no_error(error);
	}
	run_prog(&run, CERTD, "--check-config", "-c", fx->conf, NULL);
	g_assert_cmpint(run.status, ==, c->status);
	for (guint i = 0; i < G_N_ELEMENTS(c->expect) && c->expect[i] != NULL; i++) {
		g_autoptr(GString) want = g_string_new(c->expect[i]);

		g_string_replace(want, "@CONF@", fx->conf, 0);
		assert_contains(c->status == 0 ? run.out : run.err, want->str);
	}
}

/* ----- 3. contrib/hanko.conf agrees with the key tables ----- */

static GHashTable *
keys_of(GHashTable *sections, const char *name)
{
	GHashTable *keys = g_hash_table_lookup(sections, name);

	if (keys == NULL) {
		keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		g_hash_table_insert(sections, g_strdup(name), keys);
	}
	return keys;
}

/* section -> the set of keys the example documents there, as "#key =" or "key =" */
static GHashTable *
example_keys(const char *text)
{
	g_autoptr(GRegex) section_re = g_regex_new("^\\[([^]]+)\\]", 0, 0, NULL);
	g_autoptr(GRegex) key_re = g_regex_new("^#?([A-Za-z0-9_.-]+)\\s*=", 0, 0, NULL);
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	GHashTable *sections = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
	                                             (GDestroyNotify)g_hash_table_unref);
	GHashTable *keys = NULL;

	for (guint i = 0; lines[i] != NULL; i++) {
		g_autoptr(GMatchInfo) match = NULL;

		if (g_regex_match(section_re, lines[i], 0, &match)) {
			g_autofree char *name = g_match_info_fetch(match, 1);

			keys = keys_of(sections, name);
		} else if (keys != NULL) {
			g_clear_pointer(&match, g_match_info_free);
			if (g_regex_match(key_re, lines[i], 0, &match))
				g_hash_table_add(keys, g_match_info_fetch(match, 1));
		}
	}
	return sections;
}

static const HkConfKey *
table_key(const HkConfSection *sec, const char *name)
{
	for (const HkConfKey *k = sec->keys; k->key != NULL; k++) {
		if (strcmp(k->key, name) == 0)
			return k;
	}
	return NULL;
}

static void
assert_section_agrees(const HkConfSection *sec, GHashTable *documented)
{
	GHashTableIter iter;
	gpointer name;

	for (const HkConfKey *k = sec->keys; k->key != NULL; k++) {
		if (!g_hash_table_contains(documented, k->key)) {
			g_autofree char *msg = g_strdup_printf(
			        "[%s] %s is not in contrib/hanko.conf", sec->name, k->key);
			g_assertion_message(G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, msg);
		}
	}
	g_hash_table_iter_init(&iter, documented);
	while (g_hash_table_iter_next(&iter, &name, NULL)) {
		if (table_key(sec, name) == NULL) {
			g_autofree char *msg = g_strdup_printf("contrib/hanko.conf documents [%s] "
			                                       "%s, which is not in the key table",
			                                       sec->name, (const char *)name);
			g_assertion_message(G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, msg);
		}
	}
}

static void
test_example_conf(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *text = NULL;
	g_autoptr(GHashTable) sections = NULL;
	g_auto(Run) run = {0};

	run_prog(&run, CERTD, "--check-config", "-c", EXAMPLE, NULL);
	g_assert_cmpint(run.status, ==, 0);
	assert_contains(run.out, "configuration OK");

	g_file_get_contents(EXAMPLE, &text, NULL, &error);
	g_assert_no_error(error);
	sections = example_keys(text);
	for (const HkConfSection *sec = certd_config_sections; sec->name != NULL; sec++)
		assert_section_agrees(sec, keys_of(sections, sec->name));
	for (const HkConfSection *sec = milter_config_sections; sec->name != NULL; sec++)
		assert_section_agrees(sec, keys_of(sections, sec->name));
}

/* ----- 4. hankoctl against a running daemon ----- */

static void
assert_json_ping(const char *out)
{
	g_autoptr(json_object) reply = json_tokener_parse(out);
	json_object *result;

	g_assert_nonnull(reply);
	g_assert_true(hk_json_get_bool(reply, "ok", FALSE));
	result = hk_json_get_object(reply, "result");
	g_assert_true(hk_json_get_bool(result, HK_CERTD_KEY_PONG, FALSE));
	g_assert_cmpstr(hk_json_get_string(result, HK_CERTD_KEY_VERSION), ==, HANKO_VERSION);
}

static void
test_ctl_ping(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};

	write_conf(fx, "");
	start_certd(fx);
	run_prog(&run, CTL, "-c", fx->conf, "ping", NULL);
	g_assert_cmpint(run.status, ==, 0);
	g_assert_true(g_str_has_prefix(run.out, "pong from hanko-certd " HANKO_VERSION));
	run_clear(&run);

	run_prog(&run, CTL, "-c", fx->conf, "--json", "ping", NULL);
	g_assert_cmpint(run.status, ==, 0);
	g_assert_true(strchr(run.out, '\n') == run.out + strlen(run.out) - 1); /* one line */
	assert_json_ping(run.out);
	run_clear(&run);

	run_prog(&run, CTL, "-s", fx->socket, "ping", NULL);
	g_assert_cmpint(run.status, ==, 0);
	g_assert_true(g_str_has_prefix(run.out, "pong from hanko-certd"));
}

static void
test_ctl_unreachable(Fixture *fx, gconstpointer data)
{
	g_autofree char *nobody = g_build_filename(fx->dir, "nobody.sock", NULL);
	g_auto(Run) run = {0};

	make_stale_socket(nobody);
	run_prog(&run, CTL, "-s", nobody, "ping", NULL);
	g_assert_cmpint(run.status, ==, EXIT_UNAVAILABLE);
	assert_contains(run.err, "cannot connect");
	assert_contains(run.err, nobody);
}

static void
test_ctl_call(Fixture *fx, gconstpointer data)
{
	g_autoptr(json_object) result = NULL;
	g_auto(Run) run = {0};

	write_conf(fx, "");
	start_certd(fx);
	run_prog(&run, CTL, "-c", fx->conf, "call", "ping", NULL);
	g_assert_cmpint(run.status, ==, 0);
	result = json_tokener_parse(run.out);
	g_assert_true(hk_json_get_bool(result, HK_CERTD_KEY_PONG, FALSE));
	run_clear(&run);

	run_prog(&run, CTL, "-c", fx->conf, "call", "nosuchop", NULL);
	g_assert_cmpint(run.status, ==, 1);
	assert_contains(run.err, HK_IPC_ERR_UNKNOWN_OP);
	run_clear(&run);

	run_prog(&run, CTL, "-c", fx->conf, "call", "ping", "{\"x\":1}", NULL);
	g_assert_cmpint(run.status, ==, 1);
	assert_contains(run.err, HK_IPC_ERR_INVALID_ARGUMENT);
	assert_contains(run.err, "\"x\"");
}

/* ----- 5. socket mode, SIGTERM ----- */

static void
test_socket_mode_and_stop(Fixture *fx, gconstpointer data)
{
	g_autofree char *log = NULL;
	struct stat st;

	write_conf(fx, "");
	start_certd(fx);
	g_assert_cmpint(stat(fx->socket, &st), ==, 0);
	g_assert_true(S_ISSOCK(st.st_mode));
	g_assert_cmpint(st.st_mode & 07777, ==, 0600);

	g_assert_cmpint(daemon_signal(&fx->certd, SIGTERM), ==, 0);
	g_assert_false(g_file_test(fx->socket, G_FILE_TEST_EXISTS));
	log = daemon_log(&fx->certd);
	assert_contains(log, "hanko-certd stopped");
}

/* ----- 6. stale socket, second instance ----- */

static void
test_stale_and_second_instance(Fixture *fx, gconstpointer data)
{
	/* "cannot start" is a g_critical(), which ctest's G_DEBUG=fatal-criticals would turn
	 * into a trap: run the loser as it runs in production */
	const Launch second = {.listen_fd = -1, .no_g_debug = TRUE};
	g_autofree char *log = NULL;

	write_conf(fx, "");
	make_stale_socket(fx->socket);
	start_certd(fx);

	daemon_start(fx, &fx->second, &second);
	g_assert_cmpint(daemon_wait(&fx->second), ==, 1);
	log = daemon_log(&fx->second);
	assert_contains(log, "another process is already listening");
	g_assert_true(ping_ok(fx->socket));
	g_assert_true(g_file_test(fx->socket, G_FILE_TEST_EXISTS)); /* the loser left it */
}

/* ----- 7. SIGHUP ----- */

static void
test_reload(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};

	write_conf(fx, "");
	start_certd(fx);
	write_conf(fx, "max_connections_per_uid = 8\n");
	g_assert_cmpint(kill(fx->certd.pid, SIGHUP), ==, 0);
	daemon_wait_log(&fx->certd, "configuration reloaded");

	write_conf(fx, "no_such_key = 1\n");
	g_assert_cmpint(kill(fx->certd.pid, SIGHUP), ==, 0);
	daemon_wait_log(&fx->certd, "keeping the running configuration");
	daemon_wait_log(&fx->certd, "no_such_key");
	run_prog(&run, CTL, "-c", fx->conf, "ping", NULL); /* the bad file still names the socket */
	g_assert_cmpint(run.status, ==, EXIT_CONFIG);
	run_clear(&run);
	run_prog(&run, CTL, "-s", fx->socket, "ping", NULL);
	g_assert_cmpint(run.status, ==, 0);
}

/* ----- 8. NOTIFY_SOCKET ----- */

/* The next datagram the daemon sent to NOTIFY_SOCKET. */
static char *
notify_next(Fixture *fx)
{
	struct pollfd pfd = {.fd = fx->notify_fd, .events = POLLIN};
	char buf[4096];
	ssize_t n;

	if (poll(&pfd, 1, (int)(WAIT_US / 1000)) != 1)
		fail_with_log(&fx->certd, "nothing arrived on NOTIFY_SOCKET in time");
	n = recv(fx->notify_fd, buf, sizeof(buf), 0);
	g_assert_cmpint(n, >, 0);
	return g_strndup(buf, (gsize)n);
}

static void
expect_notify(Fixture *fx, const char *state)
{
	g_autofree char *msg = notify_next(fx);

	assert_contains(msg, state);
}

static void
test_notify(Fixture *fx, gconstpointer data)
{
	g_autofree char *path = g_build_filename(fx->dir, "notify.sock", NULL);
	Launch launch = {.notify_socket = path, .listen_fd = -1};

	fx->notify_fd = bind_unix(path, SOCK_DGRAM);
	write_conf(fx, "");
	daemon_start(fx, &fx->certd, &launch);
	expect_notify(fx, "READY=1");
	g_assert_true(ping_ok(fx->socket)); /* ready means ready */

	g_assert_cmpint(kill(fx->certd.pid, SIGHUP), ==, 0);
	expect_notify(fx, "RELOADING=1");
	expect_notify(fx, "READY=1");

	g_assert_cmpint(kill(fx->certd.pid, SIGTERM), ==, 0);
	expect_notify(fx, "STOPPING=1");
	g_assert_cmpint(daemon_wait(&fx->certd), ==, 0);
}

/* ----- 9. socket activation ----- */

static void
test_socket_activation(Fixture *fx, gconstpointer data)
{
	g_autofree char *path = g_build_filename(fx->dir, "activated.sock", NULL);
	Launch launch = {.listen_fd = bind_unix(path, SOCK_STREAM)};
	g_auto(Run) run = {0};

	g_assert_cmpint(listen(launch.listen_fd, SOMAXCONN), ==, 0);
	write_conf(fx, "");
	daemon_start(fx, &fx->certd, &launch);
	close(launch.listen_fd); /* the daemon's now, as with systemd */
	daemon_wait_ready(&fx->certd, path);

	run_prog(&run, CTL, "-s", path, "ping", NULL);
	g_assert_cmpint(run.status, ==, 0);
	g_assert_true(g_str_has_prefix(run.out, "pong from hanko-certd"));
	g_assert_false(g_file_test(fx->socket, G_FILE_TEST_EXISTS));

	g_assert_cmpint(daemon_signal(&fx->certd, SIGTERM), ==, 0);
	g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS)); /* systemd's to remove, not ours */
}

/* ----- main ----- */

static void
add(const char *path, gconstpointer data, void (*func)(Fixture *, gconstpointer))
{
	g_test_add(path, Fixture, data, fixture_setup, func, fixture_teardown);
}

static void
add_check_cases(void)
{
	for (guint i = 0; i < G_N_ELEMENTS(check_cases); i++) {
		g_autofree char *path =
		        g_strdup_printf("/certd/check-config/%s", check_cases[i].name);

		add(path, &check_cases[i], test_check_config);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	add("/certd/version", NULL, test_version);
	add_check_cases();
	add("/certd/example-conf", NULL, test_example_conf);
	add("/certd/ctl/ping", NULL, test_ctl_ping);
	add("/certd/ctl/unreachable", NULL, test_ctl_unreachable);
	add("/certd/ctl/call", NULL, test_ctl_call);
	add("/certd/socket-mode-and-stop", NULL, test_socket_mode_and_stop);
	add("/certd/stale-and-second-instance", NULL, test_stale_and_second_instance);
	add("/certd/reload", NULL, test_reload);
	add("/certd/notify", NULL, test_notify);
	add("/certd/socket-activation", NULL, test_socket_activation);
	return g_test_run();
}
