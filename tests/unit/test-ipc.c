/*
 * test-ipc: the JSON-line server and clients over real UNIX sockets.
 *
 * Most tests run the server in a thread of its own iterating the default main context,
 * and talk to it with the synchronous client (or raw lines) from the test thread. The
 * asynchronous client tests run server and client in the test thread's main loop.
 */
#include "hk-ipc.h"
#include "hk-log.h"
#include "hk-socket.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <poll.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ----- the server under test ----- */

typedef struct {
	char *dir;
	char *path;
	HkIpcServer *server;
	HkIpcGroupRoles groups;
	GMainLoop *loop;
	GThread *thread;
} Fixture;

static void
op_echo(HkIpcRequest *req, json_object *params, gpointer user_data)
{
	hk_ipc_request_return(req, json_object_get(params));
}

typedef struct {
	HkIpcRequest *req;
	char *tag;
} Slow;

static gboolean
slow_done(gpointer data)
{
	Slow *slow = data;
	json_object *result = json_object_new_object();

	json_object_object_add(result, "tag", json_object_new_string(slow->tag));
	json_object_object_add(result, "connected",
	                       json_object_new_boolean(hk_ipc_request_is_connected(slow->req)));
	hk_ipc_request_return(slow->req, result);
	g_free(slow->tag);
	g_free(slow);
	return G_SOURCE_REMOVE;
}

/* replies later, from the main loop: an asynchronous handler */
static void
op_slow(HkIpcRequest *req, json_object *params, gpointer user_data)
{
	Slow *slow = g_new0(Slow, 1);
	const char *tag = hk_json_get_string(params, "tag");

	slow->req = req;
	slow->tag = g_strdup(tag ? tag : "");
	g_timeout_add((guint)hk_json_get_int(params, "ms", 0), slow_done, slow);
}

static void
op_admin(HkIpcRequest *req, json_object *params, gpointer user_data)
{
	hk_ipc_request_return(req, NULL);
}

static void
op_stats(HkIpcRequest *req, json_object *params, gpointer user_data)
{
	Fixture *fx = user_data;
	json_object *result = json_object_new_object();

	json_object_object_add(
	        result, "connections",
	        json_object_new_int((int)hk_ipc_server_get_n_connections(fx->server)));
	hk_ipc_request_return(req, result);
}

static void
op_watch(HkIpcRequest *req, json_object *params, gpointer user_data)
{
	hk_ipc_request_subscribe(req);
	hk_ipc_request_return(req, NULL);
}

static void
op_fail(HkIpcRequest *req, json_object *params, gpointer user_data)
{
	hk_ipc_request_return_error(req, HK_IPC_ERR_NOT_FOUND, "no such thing: %s",
	                            hk_json_get_string(params, "what"));
}

static const HkIpcParam echo_params[] = {
        {"text", json_type_string, FALSE},
        {"n", json_type_int, FALSE},
        {"password", json_type_string, FALSE},
        {"pad", json_type_string, FALSE},
        {0},
};
static const HkIpcParam slow_params[] = {
        {"ms", json_type_int, TRUE},
        {"tag", json_type_string, FALSE},
        {0},
};
static const HkIpcParam fail_params[] = {
        {"what", json_type_string, TRUE},
        {0},
};

static const HkIpcOp test_ops[] = {
        {"echo", HK_IPC_ROLE_PUBLIC, echo_params, op_echo},
        {"slow", HK_IPC_ROLE_PUBLIC, slow_params, op_slow},
        {"admin_only", HK_IPC_ROLE_ADMIN, NULL, op_admin},
        {"stats", HK_IPC_ROLE_PUBLIC, NULL, op_stats},
        {"watch", HK_IPC_ROLE_PUBLIC, NULL, op_watch},
        {"fail", HK_IPC_ROLE_PUBLIC, fail_params, op_fail},
        {0},
};

static void
fixture_listen(Fixture *fx, guint cap, guint mode)
{
	g_autoptr(GError) error = NULL;
	HkIpcServerOptions options = {
	        .max_connections_per_uid = cap,
	        .role_func = hk_ipc_roles_from_groups,
	        .role_data = &fx->groups,
	};

	fx->groups.admin_gid = (gid_t)-1; /* only root is admin */
	fx->groups.service_gid = (gid_t)-1;
	fx->server = hk_ipc_server_new(test_ops, fx, &options);
	g_assert_true(hk_ipc_server_listen_path(fx->server, fx->path, mode, (gid_t)-1, &error));
	g_assert_no_error(error);
}

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	fx->dir = g_dir_make_tmp("hanko-ipc-XXXXXX", &error);
	g_assert_no_error(error);
	g_assert_cmpint(chmod(fx->dir, 0755), ==, 0); /* so a dropped-privilege child gets in */
	fx->path = g_build_filename(fx->dir, "test.sock", NULL);
	fx->loop = g_main_loop_new(NULL, FALSE);
}

static gpointer
server_thread(gpointer data)
{
	g_main_loop_run(data);
	return NULL;
}

/* The server in its own thread: the test thread may block on clients. */
static void
fixture_start_threaded(Fixture *fx, guint cap, guint mode)
{
	fixture_listen(fx, cap, mode);
	fx->thread = g_thread_new("server", server_thread, fx->loop);
}

static gboolean
quit_idle(gpointer loop)
{
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

/* Quits from inside the loop: a quit before the thread reaches g_main_loop_run() would
 * be forgotten. */
static void
stop_thread(Fixture *fx)
{
	g_idle_add(quit_idle, fx->loop);
	g_thread_join(g_steal_pointer(&fx->thread));
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	if (fx->thread != NULL)
		stop_thread(fx);
	hk_ipc_server_free(fx->server);
	/* let the freed sources go */
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_main_loop_unref(fx->loop);
	g_assert_false(g_file_test(fx->path, G_FILE_TEST_EXISTS)); /* server removed it */
	g_rmdir(fx->dir);
	g_free(fx->path);
	g_free(fx->dir);
}

/* ----- helpers ----- */

static HkIpcClient *
connect_client(Fixture *fx)
{
	g_autoptr(GError) error = NULL;
	HkIpcClient *client = hk_ipc_client_connect(fx->path, 10000, &error);

	g_assert_no_error(error);
	return client;
}

static void
send_text(HkIpcClient *client, const char *text)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(hk_ipc_client_send_line(client, text, strlen(text), &error));
	g_assert_no_error(error);
}

/* Reads one reply line and parses it. */
static json_object *
read_reply(HkIpcClient *client)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *line = hk_ipc_client_read_line(client, &error);
	json_object *msg;

	g_assert_no_error(error);
	msg = json_tokener_parse(line);
	g_assert_nonnull(msg);
	return msg;
}

static const char *
error_code(json_object *msg)
{
	json_object *err = hk_json_get_object(msg, "error");

	return err ? hk_json_get_string(err, "code") : NULL;
}

static const char *
error_message(json_object *msg)
{
	json_object *err = hk_json_get_object(msg, "error");

	return err ? hk_json_get_string(err, "message") : NULL;
}

static void
assert_closed(HkIpcClient *client)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *line = hk_ipc_client_read_line(client, &error);

	g_assert_null(line);
	g_assert_error(error, HK_IPC_ERROR, HK_IPC_ERROR_CLOSED);
}

static gint64
stats_connections(Fixture *fx)
{
	g_autoptr(HkIpcClient) client = connect_client(fx);
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) result = hk_ipc_client_call(client, "stats", NULL, &error);

	g_assert_no_error(error);
	return hk_json_get_int(result, "connections", -1);
}

/* ----- tests ----- */

static void
test_round_trip(Fixture *fx, gconstpointer data)
{
	g_autoptr(HkIpcClient) client = NULL;
	g_autoptr(json_object) params = json_tokener_parse("{\"text\":\"判子 ok\",\"n\":7}");
	g_autoptr(json_object) result = NULL;
	g_autoptr(json_object) msg = NULL;
	g_autoptr(GError) error = NULL;

	fixture_start_threaded(fx, 0, 0660);
	client = connect_client(fx);
	result = hk_ipc_client_call(client, "echo", params, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(hk_json_get_string(result, "text"), ==, "判子 ok");
	g_assert_cmpint(hk_json_get_int(result, "n", 0), ==, 7);

	/* string ids come back as they went */
	send_text(client, "{\"id\":\"req-α\",\"op\":\"echo\",\"params\":{\"n\":1}}\n");
	msg = read_reply(client);
	g_assert_cmpstr(hk_json_get_string(msg, "id"), ==, "req-α");
	g_assert_true(hk_json_get_bool(msg, "ok", FALSE));

	/* an error reply reaches the caller with its code and message */
	g_clear_pointer(&result, json_object_put);
	g_clear_pointer(&params, json_object_put);
	params = json_tokener_parse("{\"what\":\"widget\"}");
	result = hk_ipc_client_call(client, "fail", params, &error);
	g_assert_null(result);
	g_assert_error(error, HK_IPC_ERROR, HK_IPC_ERROR_NOT_FOUND);
	g_assert_cmpstr(error->message, ==, "no such thing: widget");
}

static void
test_socket_mode(Fixture *fx, gconstpointer data)
{
	struct stat st;

	fixture_start_threaded(fx, 0, 0660);
	g_assert_cmpint(stat(fx->path, &st), ==, 0);
	g_assert_true(S_ISSOCK(st.st_mode));
	g_assert_cmpint(st.st_mode & 07777, ==, 0660);
}

static void
test_stale_and_live_socket(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	HkIpcServer *second;
	int fd;

	/* a socket file left behind by a dead daemon is replaced */
	g_strlcpy(sun.sun_path, fx->path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
	close(fd);
	g_assert_true(g_file_test(fx->path, G_FILE_TEST_EXISTS));
	fixture_start_threaded(fx, 0, 0600);
	g_assert_cmpint(stats_connections(fx), ==, 1);

	/* a live one is not */
	second = hk_ipc_server_new(test_ops, fx, NULL);
	g_assert_false(hk_ipc_server_listen_path(second, fx->path, 0600, (gid_t)-1, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
	hk_ipc_server_free(second);
	g_assert_cmpint(stats_connections(fx), ==, 1); /* and the first still serves */
}

static void
test_not_a_socket(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	g_assert_true(g_file_set_contents(fx->path, "important", -1, NULL));
	fx->server = hk_ipc_server_new(test_ops, fx, NULL);
	g_assert_false(hk_ipc_server_listen_path(fx->server, fx->path, 0600, (gid_t)-1, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS);
	g_assert_nonnull(strstr(error->message, "not a socket"));
	unlink(fx->path);
}

static void
test_pipelining(Fixture *fx, gconstpointer data)
{
	g_autoptr(HkIpcClient) client = NULL;
	g_autoptr(GString) burst = g_string_new(NULL);
	const char *tags[] = {"a", "b", "c"};

	fixture_start_threaded(fx, 0, 0660);
	client = connect_client(fx);
	/* the slowest first: replies must still come back in request order */
	send_text(client, "{\"id\":1,\"op\":\"slow\",\"params\":{\"ms\":150,\"tag\":\"a\"}}\n"
	                  "{\"id\":2,\"op\":\"echo\",\"params\":{\"text\":\"b\"}}\n"
	                  "{\"id\":3,\"op\":\"slow\",\"params\":{\"ms\":10,\"tag\":\"c\"}}\n");
	for (int i = 0; i < 3; i++) {
		g_autoptr(json_object) msg = read_reply(client);
		json_object *result = hk_json_get_object(msg, "result");
		const char *tag = hk_json_get_string(result, i == 1 ? "text" : "tag");

		g_assert_cmpint(hk_json_get_int(msg, "id", -1), ==, i + 1);
		g_assert_cmpstr(tag, ==, tags[i]);
	}
	/* far more than the server reads ahead (64): it pauses reading, nothing is lost */
	for (int i = 0; i < 2000; i++)
		g_string_append_printf(burst, "{\"id\":%d,\"op\":\"echo\",\"params\":{\"n\":%d}}\n",
		                       i, i * 3);
	send_text(client, burst->str);
	for (int i = 0; i < 2000; i++) {
		g_autoptr(json_object) msg = read_reply(client);

		g_assert_cmpint(hk_json_get_int(msg, "id", -1), ==, i);
		g_assert_cmpint(hk_json_get_int(hk_json_get_object(msg, "result"), "n", -1), ==,
		                i * 3);
	}
}

/* A request line of exactly len bytes (without the newline). */
static char *
echo_line_of_length(gsize len)
{
	const char *head = "{\"id\":9,\"op\":\"echo\",\"params\":{\"pad\":\"";
	const char *tail = "\"}}";
	gsize fill = len - strlen(head) - strlen(tail);
	GString *line = g_string_sized_new(len + 2);

	g_string_append(line, head);
	for (gsize i = 0; i < fill; i++)
		g_string_append_c(line, 'x');
	g_string_append(line, tail);
	g_assert_cmpuint(line->len, ==, len);
	g_string_append_c(line, '\n');
	return g_string_free(line, FALSE);
}

static void
test_max_line(Fixture *fx, gconstpointer data)
{
	g_autoptr(HkIpcClient) client = NULL;
	g_autofree char *fits = echo_line_of_length(HK_IPC_MAX_LINE);
	g_autofree char *too_long = echo_line_of_length(HK_IPC_MAX_LINE + 1);
	g_autoptr(json_object) ok = NULL;
	g_autoptr(json_object) refused = NULL;
	g_autoptr(GError) error = NULL;

	fixture_start_threaded(fx, 0, 0660);
	client = connect_client(fx);
	/* exactly 1 MiB is allowed ... */
	send_text(client, fits);
	ok = read_reply(client);
	g_assert_true(hk_json_get_bool(ok, "ok", FALSE));
	g_assert_cmpuint(strlen(hk_json_get_string(hk_json_get_object(ok, "result"), "pad")), >,
	                 HK_IPC_MAX_LINE - 100);
	/* ... one byte more gets an error, and the connection is closed */
	hk_ipc_client_send_line(client, too_long, strlen(too_long), &error);
	refused = read_reply(client);
	g_assert_false(hk_json_get_bool(refused, "ok", TRUE));
	g_assert_cmpstr(error_code(refused), ==, HK_IPC_ERR_LINE_TOO_LONG);
	assert_closed(client);
	/* the server goes on */
	g_assert_cmpint(stats_connections(fx), ==, 1);
}

static void
test_malformed(Fixture *fx, gconstpointer data)
{
	static const struct {
		const char *line;
		const char *code;
		const char *message_part;
	} cases[] = {
	        {"{not json", HK_IPC_ERR_BAD_REQUEST, "malformed JSON"},
	        {"{\"op\":\"echo\"", HK_IPC_ERR_BAD_REQUEST, "malformed JSON"},
	        {"[1,2]", HK_IPC_ERR_BAD_REQUEST, "must be a JSON object"},
	        {"\"echo\"", HK_IPC_ERR_BAD_REQUEST, "must be a JSON object"},
	        {"{\"op\":\"echo\"} trailing", HK_IPC_ERR_BAD_REQUEST, "trailing data"},
	        {"{\"id\":1}", HK_IPC_ERR_BAD_REQUEST, "\"op\" is missing"},
	        {"{\"id\":1,\"op\":5}", HK_IPC_ERR_BAD_REQUEST,
	         "\"op\" is missing or not a string"},
	        {"{\"id\":{},\"op\":\"echo\"}", HK_IPC_ERR_BAD_REQUEST, "\"id\" must be"},
	        {"{\"id\":1,\"op\":\"echo\",\"params\":[]}", HK_IPC_ERR_BAD_REQUEST,
	         "\"params\" must be an object"},
	        {"{\"id\":1,\"op\":\"echo\",\"extra\":1}", HK_IPC_ERR_BAD_REQUEST,
	         "unknown request member \"extra\""},
	        {"{\"id\":1,\"op\":\"frobnicate\"}", HK_IPC_ERR_UNKNOWN_OP, "\"frobnicate\""},
	        {"{\"id\":1,\"op\":\"echo\",\"params\":{\"bogus\":1}}", HK_IPC_ERR_INVALID_ARGUMENT,
	         "echo: unknown parameter \"bogus\""},
	        {"{\"id\":1,\"op\":\"echo\",\"params\":{\"n\":\"seven\"}}",
	         HK_IPC_ERR_INVALID_ARGUMENT, "echo: parameter \"n\" must be an integer"},
	        {"{\"id\":1,\"op\":\"slow\",\"params\":{}}", HK_IPC_ERR_INVALID_ARGUMENT,
	         "slow: missing parameter \"ms\""},
	};
	g_autoptr(HkIpcClient) client = NULL;

	fixture_start_threaded(fx, 0, 0660);
	client = connect_client(fx);
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *line = g_strconcat(cases[i].line, "\n", NULL);
		g_autoptr(json_object) msg = NULL;
		g_autoptr(json_object) ok = NULL;

		g_test_message("%s", cases[i].line);
		send_text(client, line);
		msg = read_reply(client);
		g_assert_false(hk_json_get_bool(msg, "ok", TRUE));
		g_assert_cmpstr(error_code(msg), ==, cases[i].code);
		g_assert_nonnull(strstr(error_message(msg), cases[i].message_part));
		/* the connection stays usable */
		send_text(client, "{\"id\":77,\"op\":\"echo\",\"params\":{\"n\":77}}\n");
		ok = read_reply(client);
		g_assert_true(hk_json_get_bool(ok, "ok", FALSE));
		g_assert_cmpint(hk_json_get_int(ok, "id", 0), ==, 77);
	}
}

static void
test_error_ids(Fixture *fx, gconstpointer data)
{
	g_autoptr(HkIpcClient) client = NULL;
	g_autoptr(json_object) msg = NULL;
	json_object *id = NULL;

	fixture_start_threaded(fx, 0, 0660);
	client = connect_client(fx);
	/* errors about a request that parsed carry its id; unparsable ones carry null */
	send_text(client, "{\"id\":41,\"op\":\"nope\"}\n");
	msg = read_reply(client);
	g_assert_cmpint(hk_json_get_int(msg, "id", 0), ==, 41);
	g_clear_pointer(&msg, json_object_put);
	send_text(client, "{garbage\n");
	msg = read_reply(client);
	g_assert_true(json_object_object_get_ex(msg, "id", &id));
	g_assert_null(id);
}

/* Runs in a child process: drops to nobody when root, then tries an admin op. */
static void
denied_child(void)
{
	g_autoptr(HkIpcClient) client = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) result = NULL;

	if (getuid() == 0) {
		g_assert_cmpint(setgroups(0, NULL), ==, 0);
		g_assert_cmpint(setgid(65534), ==, 0);
		g_assert_cmpint(setuid(65534), ==, 0);
	}
	client = hk_ipc_client_connect(g_getenv("HK_TEST_SOCKET"), 5000, &error);
	g_assert_no_error(error);
	result = hk_ipc_client_call(client, "admin_only", NULL, &error);
	g_assert_null(result);
	g_assert_error(error, HK_IPC_ERROR, HK_IPC_ERROR_PERMISSION_DENIED);
	g_assert_nonnull(strstr(error->message, "admin_only: not permitted for uid"));
	g_clear_error(&error);
	/* public ops still work for the same peer */
	result = hk_ipc_client_call(client, "echo", NULL, &error);
	g_assert_no_error(error);
	g_print("child uid %u denied as expected\n", (guint)getuid());
}

static void
test_peer_credentials(Fixture *fx, gconstpointer data)
{
	g_autoptr(HkIpcClient) client = NULL;
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;

	if (g_test_subprocess()) {
		/* this process's fixture made a directory that nobody could remove later */
		g_rmdir(fx->dir);
		denied_child();
		return;
	}
	g_setenv("HK_TEST_SOCKET", fx->path, TRUE); /* before the server thread starts */
	fixture_start_threaded(fx, 0, 0666);
	g_test_trap_subprocess(NULL, 20 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
	g_test_trap_assert_passed();
	g_test_trap_assert_stdout("*denied as expected*");
	/* the positive control: root is admin (when the test runs as root) */
	if (getuid() == 0) {
		client = connect_client(fx);
		result = hk_ipc_client_call(client, "admin_only", NULL, &error);
		g_assert_no_error(error);
	}
}

static void
test_disconnect_mid_request(Fixture *fx, gconstpointer data)
{
	fixture_start_threaded(fx, 0, 0660);
	for (int i = 0; i < 20; i++) {
		HkIpcClient *gone = connect_client(fx);
		HkIpcClient *half = connect_client(fx);

		/* a request whose handler is still running when the client leaves */
		send_text(gone, "{\"id\":1,\"op\":\"slow\",\"params\":{\"ms\":100}}\n");
		/* half a line, then gone */
		send_text(half, "{\"id\":2,\"op\":\"ec");
		hk_ipc_client_free(gone);
		hk_ipc_client_free(half);
	}
	g_usleep(300 * 1000); /* the slow handlers reply to nobody */
	g_assert_cmpint(stats_connections(fx), ==, 1);
}

static void
test_concurrent_clients(Fixture *fx, gconstpointer data)
{
	enum { MAX_N = 200 };
	HkIpcClient *clients[MAX_N];
	struct rlimit lim;
	int N = MAX_N;
	gint64 start;
	double elapsed;

	/* each connection costs two descriptors in this process (client and server end):
	 * under a tight file limit fewer clients prove the same thing */
	g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &lim), ==, 0);
	if (lim.rlim_cur < 2 * MAX_N + 64)
		N = (int)(lim.rlim_cur - 64) / 2;
	g_test_message("%d clients (open file limit %lu)", N, (unsigned long)lim.rlim_cur);
	g_assert_cmpint(N, >=, 20);
	fixture_start_threaded(fx, 0, 0660);
	for (int i = 0; i < N; i++)
		clients[i] = connect_client(fx);
	start = g_get_monotonic_time();
	/* each request takes 50 ms in its handler: served one after another 200 would take
	 * 10 s; served concurrently, about 50 ms */
	for (int i = 0; i < N; i++) {
		g_autofree char *line = g_strdup_printf(
		        "{\"id\":%d,\"op\":\"slow\",\"params\":{\"ms\":50,\"tag\":\"c%d\"}}\n", i,
		        i);

		send_text(clients[i], line);
	}
	for (int i = 0; i < N; i++) {
		g_autoptr(json_object) msg = read_reply(clients[i]);
		g_autofree char *tag = g_strdup_printf("c%d", i);

		g_assert_cmpint(hk_json_get_int(msg, "id", -1), ==, i);
		g_assert_cmpstr(hk_json_get_string(hk_json_get_object(msg, "result"), "tag"), ==,
		                tag);
	}
	elapsed = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
	g_test_message("%d concurrent slow requests answered in %.3f s", N, elapsed);
	g_assert_cmpfloat(elapsed, <, 3.0);
	g_assert_cmpint(stats_connections(fx), ==, N + 1);
	for (int i = 0; i < N; i++)
		hk_ipc_client_free(clients[i]);
}

/* Connects and makes a call; NULL (with *refused set) when the server turned us away. */
static HkIpcClient *
try_connect(Fixture *fx, gboolean *refused)
{
	g_autoptr(HkIpcClient) client = connect_client(fx);
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) result = hk_ipc_client_call(client, "echo", NULL, &error);

	*refused = g_error_matches(error, HK_IPC_ERROR, HK_IPC_ERROR_TOO_MANY_CONNECTIONS);
	if (error != NULL && !*refused)
		g_error("unexpected: %s", error->message);
	return *refused ? NULL : g_steal_pointer(&client);
}

static void
test_connection_cap(Fixture *fx, gconstpointer data)
{
	HkIpcClient *held[4];
	g_autoptr(HkIpcClient) fifth = NULL;
	g_autoptr(HkIpcClient) again = NULL;
	g_autoptr(json_object) refusal = NULL;
	gboolean refused = FALSE;

	fixture_start_threaded(fx, 4, 0660);
	for (int i = 0; i < 4; i++) {
		held[i] = try_connect(fx, &refused);
		g_assert_false(refused);
	}
	/* the fifth gets a reply saying why, then the connection is closed */
	fifth = connect_client(fx);
	refusal = read_reply(fifth);
	g_assert_cmpstr(error_code(refusal), ==, HK_IPC_ERR_TOO_MANY_CONNECTIONS);
	g_assert_nonnull(strstr(error_message(refusal), "already has 4 connections"));
	assert_closed(fifth);
	/* closing one makes room again, once the server has seen it go */
	hk_ipc_client_free(held[0]);
	for (int tries = 0; again == NULL && tries < 100; tries++) {
		again = try_connect(fx, &refused);
		if (again == NULL)
			g_usleep(20 * 1000);
	}
	g_assert_nonnull(again);
	for (int i = 1; i < 4; i++)
		hk_ipc_client_free(held[i]);
}

/* ----- request logging ----- */

static GMutex log_lock;
static GString *log_capture;

static GLogWriterOutput
capture_writer(GLogLevelFlags level, const GLogField *fields, gsize n, gpointer data)
{
	g_mutex_lock(&log_lock);
	if (log_capture != NULL) {
		for (gsize i = 0; i < n; i++) {
			if (g_strcmp0(fields[i].key, "MESSAGE") == 0) {
				g_string_append(log_capture, fields[i].value);
				g_string_append_c(log_capture, '\n');
			}
		}
	}
	g_mutex_unlock(&log_lock);
	if (level & G_LOG_LEVEL_DEBUG)
		return G_LOG_WRITER_HANDLED;
	return g_log_writer_default(level, fields, n, data);
}

static void
test_logging_redacts(Fixture *fx, gconstpointer data)
{
	g_autoptr(HkIpcClient) client = NULL;
	g_autoptr(json_object) params =
	        json_tokener_parse("{\"text\":\"visible\",\"password\":\"Open-Sesame-42\"}");
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *logged = NULL;

	hk_log_set_debug(TRUE);
	g_mutex_lock(&log_lock);
	log_capture = g_string_new(NULL);
	g_mutex_unlock(&log_lock);
	fixture_start_threaded(fx, 0, 0660);
	client = connect_client(fx);
	result = hk_ipc_client_call(client, "echo", params, &error);
	g_assert_no_error(error);
	stop_thread(fx);
	g_mutex_lock(&log_lock);
	logged = g_string_free(g_steal_pointer(&log_capture), FALSE);
	g_mutex_unlock(&log_lock);
	hk_log_set_debug(FALSE);
	g_test_message("%s", logged);
	g_assert_nonnull(strstr(logged, "echo"));
	g_assert_nonnull(strstr(logged, "visible"));
	g_assert_null(strstr(logged, "Open-Sesame-42"));
}

/* The lowest descriptor number free now: the next socket or accept gets it. */
static int
lowest_free_fd(void)
{
	int fd = dup(0);

	g_assert_cmpint(fd, >=, 0);
	close(fd);
	return fd;
}

static void
raw_roundtrip(int fd, int id)
{
	g_autofree char *line = g_strdup_printf("{\"id\":%d,\"op\":\"echo\"}\n", id);
	g_autofree char *expect = g_strdup_printf("\"id\":%d", id);
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char reply[256];
	ssize_t n;

	g_assert_cmpint(write(fd, line, strlen(line)), ==, (ssize_t)strlen(line));
	g_assert_cmpint(poll(&pfd, 1, 5000), ==, 1);
	n = read(fd, reply, sizeof(reply) - 1);
	g_assert_cmpint(n, >, 0);
	reply[n] = '\0';
	g_assert_nonnull(strstr(reply, expect));
	g_assert_nonnull(strstr(reply, "\"ok\":true"));
}

/*
 * Out of descriptors, the server stops accepting for a moment instead of spinning on the
 * listening socket (one warning per pause, not thousands), and serves every connection
 * that waited once descriptors are free again.
 */
static void
test_out_of_files(Fixture *fx, gconstpointer data)
{
	enum { N = 8 };
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct rlimit saved, low;
	int socks[N];
	g_autofree char *logged = NULL;
	GLogLevelFlags fatal;
	guint pauses = 0;

	fixture_start_threaded(fx, 0, 0660);
	g_strlcpy(sun.sun_path, fx->path, sizeof(sun.sun_path));
	for (int i = 0; i < N; i++) {
		socks[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		g_assert_cmpint(socks[i], >=, 0);
	}
	g_mutex_lock(&log_lock);
	log_capture = g_string_new(NULL);
	g_mutex_unlock(&log_lock);
	fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK); /* the warning is the point */
	g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &saved), ==, 0);
	low = saved;
	low.rlim_cur = (rlim_t)lowest_free_fd(); /* no new descriptor anywhere in the process */
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &low), ==, 0);
	for (int i = 0; i < N; i++) /* queued by the kernel: the backlog holds them */
		g_assert_cmpint(connect(socks[i], (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
	g_usleep(350 * 1000);
	g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &saved), ==, 0);
	for (int i = 0; i < N; i++) {
		raw_roundtrip(socks[i], i + 1);
		close(socks[i]);
	}
	g_log_set_always_fatal(fatal);
	g_mutex_lock(&log_lock);
	logged = g_string_free(g_steal_pointer(&log_capture), FALSE);
	g_mutex_unlock(&log_lock);
	for (const char *p = logged; (p = strstr(p, "Too many open files; pausing")) != NULL; p++)
		pauses++;
	g_test_message("%u pauses in 350 ms", pauses);
	g_assert_cmpuint(pauses, >=, 1);
	g_assert_cmpuint(pauses, <=, 6);
}

/* ----- asynchronous client ----- */

typedef struct {
	int replies;
	int errors;
	int expected;
	GError *last_error;
	json_object *last_result;
	GMainLoop *loop;
	GPtrArray *events;
	gboolean in_call;
} AsyncState;

static void
on_reply(json_object *result, const GError *error, gpointer data)
{
	AsyncState *st = data;

	g_assert_false(st->in_call);
	g_assert_true((result == NULL) != (error == NULL));
	if (error != NULL) {
		st->errors++;
		g_clear_error(&st->last_error);
		st->last_error = g_error_copy(error);
	} else {
		st->replies++;
		g_clear_pointer(&st->last_result, json_object_put);
		st->last_result = json_object_get(result);
	}
	if (st->replies + st->errors == st->expected)
		g_main_loop_quit(st->loop);
}

static void
on_event(const char *event, json_object *data, gpointer user_data)
{
	AsyncState *st = user_data;

	g_ptr_array_add(st->events, g_strdup(event));
	g_main_loop_quit(st->loop);
}

static void
async_call(HkIpcAsync *client, AsyncState *st, const char *op, const char *params_json,
           guint timeout)
{
	g_autoptr(json_object) params = params_json ? json_tokener_parse(params_json) : NULL;

	st->in_call = TRUE;
	hk_ipc_async_call(client, op, params, timeout, on_reply, st);
	st->in_call = FALSE;
}

static void
async_wait(AsyncState *st, int expected)
{
	st->expected = expected;
	st->replies = st->errors = 0;
	g_main_loop_run(st->loop);
}

static void
test_async(Fixture *fx, gconstpointer data)
{
	AsyncState st = {.loop = fx->loop, .events = g_ptr_array_new_with_free_func(g_free)};
	g_autoptr(HkIpcAsync) client = hk_ipc_async_new(fx->path);

	/* no server yet: the failure arrives from the main loop, not from inside the call */
	async_call(client, &st, "echo", NULL, 1000);
	g_assert_cmpint(st.errors, ==, 0);
	async_wait(&st, 1);
	g_assert_error(st.last_error, HK_IPC_ERROR, HK_IPC_ERROR_CONNECT);

	fixture_listen(fx, 0, 0660);
	hk_ipc_async_set_event_func(client, on_event, &st);
	/* 100 pipelined calls, all answered */
	for (int i = 0; i < 100; i++)
		async_call(client, &st, "echo", "{\"n\":5}", 5000);
	async_wait(&st, 100);
	g_assert_cmpint(st.replies, ==, 100);
	g_assert_cmpint(hk_json_get_int(st.last_result, "n", 0), ==, 5);

	/* a server error keeps its code */
	async_call(client, &st, "nope", NULL, 5000);
	async_wait(&st, 1);
	g_assert_error(st.last_error, HK_IPC_ERROR, HK_IPC_ERROR_UNKNOWN_OP);

	/* a slow reply times out; the late reply that follows is dropped quietly */
	async_call(client, &st, "slow", "{\"ms\":400}", 50);
	async_wait(&st, 1);
	g_assert_error(st.last_error, HK_IPC_ERROR, HK_IPC_ERROR_TIMEOUT);

	/* events on a watch stream */
	async_call(client, &st, "watch", NULL, 5000);
	async_wait(&st, 1);
	g_assert_cmpint(st.replies, ==, 1);
	hk_ipc_server_emit(fx->server, "cert.revoked", NULL);
	g_main_loop_run(st.loop);
	g_assert_cmpuint(st.events->len, ==, 1);
	g_assert_cmpstr(g_ptr_array_index(st.events, 0), ==, "cert.revoked");

	/* the server goes away with a call in flight: the call fails, the next reconnects */
	async_call(client, &st, "slow", "{\"ms\":5000}", 10000);
	g_main_context_iteration(NULL, FALSE);
	hk_ipc_server_free(g_steal_pointer(&fx->server));
	async_wait(&st, 1);
	g_assert_error(st.last_error, HK_IPC_ERROR, HK_IPC_ERROR_CLOSED);
	g_assert_false(hk_ipc_async_is_connected(client));
	fixture_listen(fx, 0, 0660);
	async_call(client, &st, "echo", "{\"n\":9}", 5000);
	async_wait(&st, 1);
	g_assert_cmpint(hk_json_get_int(st.last_result, "n", 0), ==, 9);

	g_clear_error(&st.last_error);
	g_clear_pointer(&st.last_result, json_object_put);
	g_ptr_array_free(st.events, TRUE);
}

/* ----- the pure parts ----- */

static void
test_line_reader(void)
{
	HkLineReader reader;
	const char *line;
	gsize len;

	hk_line_reader_init(&reader, 8);
	hk_line_reader_feed(&reader, "ab\ncd", 5);
	g_assert_cmpint(hk_line_reader_next(&reader, &line, &len), ==, HK_LINE_READY);
	g_assert_cmpstr(line, ==, "ab");
	hk_line_reader_consume(&reader);
	g_assert_cmpint(hk_line_reader_next(&reader, &line, &len), ==, HK_LINE_NEED_MORE);
	hk_line_reader_feed(&reader, "efgh\n", 5);
	g_assert_cmpint(hk_line_reader_next(&reader, &line, &len), ==, HK_LINE_READY);
	g_assert_cmpstr(line, ==, "cdefgh");
	g_assert_cmpuint(len, ==, 6);
	hk_line_reader_consume(&reader);
	hk_line_reader_feed(&reader, "12345678\n", 9); /* exactly the limit */
	g_assert_cmpint(hk_line_reader_next(&reader, &line, &len), ==, HK_LINE_READY);
	hk_line_reader_consume(&reader);
	hk_line_reader_feed(&reader, "123456789", 9); /* over it, before any newline */
	g_assert_cmpint(hk_line_reader_next(&reader, &line, &len), ==, HK_LINE_TOO_LONG);
	hk_line_reader_clear(&reader);
}

static void
test_error_codes(void)
{
	for (int code = HK_IPC_ERROR_BAD_REQUEST; code <= HK_IPC_ERROR_INTERNAL; code++)
		g_assert_cmpint(hk_ipc_error_code_from_string(hk_ipc_error_code_to_string(code)),
		                ==, code);
	g_assert_cmpint(hk_ipc_error_code_from_string("martian"), ==, HK_IPC_ERROR_FAILED);
}

static void
add(const char *path, void (*func)(Fixture *, gconstpointer))
{
	g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	hk_raise_file_limit();
	g_log_set_writer_func(capture_writer, NULL, NULL);
	g_test_add_func("/ipc/line-reader", test_line_reader);
	g_test_add_func("/ipc/error-codes", test_error_codes);
	add("/ipc/round-trip", test_round_trip);
	add("/ipc/socket-mode", test_socket_mode);
	add("/ipc/stale-and-live-socket", test_stale_and_live_socket);
	add("/ipc/not-a-socket", test_not_a_socket);
	add("/ipc/pipelining", test_pipelining);
	add("/ipc/max-line", test_max_line);
	add("/ipc/malformed", test_malformed);
	add("/ipc/error-ids", test_error_ids);
	add("/ipc/peer-credentials", test_peer_credentials);
	add("/ipc/disconnect-mid-request", test_disconnect_mid_request);
	add("/ipc/concurrent-clients", test_concurrent_clients);
	add("/ipc/connection-cap", test_connection_cap);
	add("/ipc/logging-redacts", test_logging_redacts);
	add("/ipc/out-of-files", test_out_of_files);
	add("/ipc/async", test_async);
	return g_test_run();
}
