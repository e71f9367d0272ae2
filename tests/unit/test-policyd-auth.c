/*
 * test-policyd-auth: policyd's Dovecot authentication protocol server.
 *
 * Tables for the pure parts (base64, PLAIN and LOGIN decoding, AUTH parameters, user names,
 * the penalty arithmetic and table), then the protocol over a real UNIX socket: the test
 * plays Postfix's side (xsasl_dovecot_server.c) line by line, and a fake certd (an
 * hk_ipc_server in the same main loop) answers auth.verify. Everything runs in the test
 * thread: the client helpers iterate the main context while they wait for a line.
 *
 * Every log line is captured: the tests assert the one line per attempt, and that no
 * password, plain or base64, ever reaches the log.
 */
#include "policyd-auth.h"
#include "policyd.h"
#include "hk-certd-proto.h"
#include "hk-json.h"
#include "hk-ossl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PASSWORD "Tr0ub4dor&3"
#define DELAY_MS 200
#define MAX_MS   500
#define SLOW_MS  300

static GString *captured_log;

static void
capture_log(const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
	g_string_append_printf(captured_log, "%s: %s\n", domain ? domain : "-", message);
	if (g_test_verbose())
		g_printerr("[log] %s: %s\n", domain ? domain : "-", message);
}

/* Fails the test unless the captured log holds needle. */
#define hk_assert_log(needle)                                                                      \
	do {                                                                                       \
		if (strstr(captured_log->str, (needle)) == NULL)                                   \
			g_error("%s:%d: expected \"%s\" in the log:\n%s", __FILE__, __LINE__,      \
			        (needle), captured_log->str);                                      \
	} while (0)

/* ===== the pure parts ===== */

static void
test_base64(void)
{
	static const struct {
		const char *text;
		const char *decoded; /* NULL: invalid */
		gsize len;
	} cases[] = {
	        {"", "", 0},        {"=", "", 0},          {"YQ==", "a", 1},
	        {"YWI=", "ab", 2},  {"YWJj", "abc", 3},    {"AGEAYg==", "\0a\0b", 4},
	        {"YQ=", NULL, 0},   {"YQ", NULL, 0},       {"Y!==", NULL, 0},
	        {"YW=j", NULL, 0},  {"YQ==YQ==", NULL, 0}, {"YQ===", NULL, 0},
	        {" YQ==", NULL, 0}, {"YQ==\t", NULL, 0},   {"====", NULL, 0},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		gsize len = 99;
		guint8 *data = policyd_auth_base64_decode(cases[i].text, &len, &error);

		if (cases[i].decoded == NULL) {
			g_assert_null(data);
			g_assert_error(error, POLICYD_AUTH_ERROR, POLICYD_AUTH_ERROR_BASE64);
			continue;
		}
		g_assert_no_error(error);
		g_assert_cmpmem(data, len, cases[i].decoded, cases[i].len);
		g_assert_cmpint(data[len], ==, 0);
		policyd_auth_secret_free(data, len);
	}
}

static void
test_plain(void)
{
	static const struct {
		const char *msg;
		gsize len;
		const char *user; /* NULL: refused */
		const char *password;
	} cases[] = {
#define M(s) s, sizeof(s) - 1
	        {M("\0alice\0secret"), "alice", "secret"},
	        {M("alice\0alice\0secret"), "alice", "secret"},
	        {M("\0alice\0"), "alice", ""},
	        {M("\0\0secret"), "", "secret"}, /* decodes; the user name check refuses it */
	        {M("\0alice\0p\xc3\xa4ss w\xc3\xb6rd"), "alice", "p\xc3\xa4ss w\xc3\xb6rd"},
	        {M("bob\0alice\0secret"), NULL, NULL},  /* another authorization identity */
	        {M("alic\0alice\0secret"), NULL, NULL}, /* a prefix is another one too */
	        {M("alice\0secret"), NULL, NULL},       /* one NUL */
	        {M("alicesecret"), NULL, NULL},         /* none */
	        {M("\0alice\0sec\0ret"), NULL, NULL},   /* three */
	        {M(""), NULL, NULL},
#undef M
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *user = NULL;
		g_autoptr(HkSecret) password = NULL;
		gboolean ok = policyd_auth_decode_plain((const guint8 *)cases[i].msg, cases[i].len,
		                                        &user, &password, &error);

		g_test_message("PLAIN case %u", i);
		if (cases[i].user == NULL) {
			g_assert_false(ok);
			g_assert_error(error, POLICYD_AUTH_ERROR, POLICYD_AUTH_ERROR_MESSAGE);
			g_assert_null(user);
			g_assert_null(password);
			/* the reason names the fault, never the secret */
			g_assert_null(strstr(error->message, "secret"));
			continue;
		}
		g_assert_true(ok);
		g_assert_cmpstr(user, ==, cases[i].user);
		g_assert_cmpstr(password, ==, cases[i].password);
	}
}

static void
test_plain_long_password(void)
{
	gsize len = 2 + 5 + POLICYD_AUTH_MAX_PASSWORD + 1;
	g_autofree guint8 *msg = g_malloc0(len);
	g_autoptr(GError) error = NULL;
	char *user = NULL, *password = NULL;

	memcpy(msg + 1, "alice", 5);
	memset(msg + 7, 'x', POLICYD_AUTH_MAX_PASSWORD + 1);
	g_assert_false(policyd_auth_decode_plain(msg, len, &user, &password, &error));
	g_assert_error(error, POLICYD_AUTH_ERROR, POLICYD_AUTH_ERROR_MESSAGE);
}

static void
test_login_answer(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *user = policyd_auth_decode_login((const guint8 *)"alice", 5, 10, NULL);
	char *bad;

	g_assert_cmpstr(user, ==, "alice");
	bad = policyd_auth_decode_login((const guint8 *)"al\0ice", 6, 10, &error);
	g_assert_null(bad);
	g_assert_error(error, POLICYD_AUTH_ERROR, POLICYD_AUTH_ERROR_MESSAGE);
	g_clear_error(&error);
	bad = policyd_auth_decode_login((const guint8 *)"alice", 5, 4, &error);
	g_assert_null(bad);
	g_assert_error(error, POLICYD_AUTH_ERROR, POLICYD_AUTH_ERROR_MESSAGE);
}

static void
test_user_names(void)
{
	static const struct {
		const char *user;
		gboolean valid;
	} cases[] = {
	        {"alice", TRUE},
	        {"alice@example.org", TRUE},
	        {"\xe5\xb1\xb1\xe7\x94\xb0", TRUE},
	        {"a b", TRUE},
	        {"", FALSE},
	        {"a\tb", FALSE},
	        {"a\nb", FALSE},
	        {"a\rb", FALSE},
	        {"a\x01"
	         "b",
	         FALSE},
	        {"a\x7f", FALSE},
	        {"\xff\xfe", FALSE},
	        {"\xc3", FALSE},
	};
	g_autofree char *longest = g_strnfill(POLICYD_AUTH_MAX_USER, 'a');
	g_autofree char *too_long = g_strnfill(POLICYD_AUTH_MAX_USER + 1, 'a');

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
		g_assert_cmpint(policyd_auth_user_is_valid(cases[i].user, strlen(cases[i].user)),
		                ==, cases[i].valid);
	g_assert_true(policyd_auth_user_is_valid(longest, strlen(longest)));
	g_assert_false(policyd_auth_user_is_valid(too_long, strlen(too_long)));
	g_assert_false(policyd_auth_user_is_valid("al\0ice", 6)); /* a NUL inside */
	g_assert_false(policyd_auth_user_is_valid(NULL, 0));
}

/* ----- AUTH parameters ----- */

static void
check_params_ok(const char *line, guint id, const char *mech, const char *rip, gboolean secured,
                const char *resp)
{
	g_autofree char *copy = g_strdup(line);
	g_autoptr(GError) error = NULL;
	PolicydAuthParams params;

	g_test_message("AUTH %s", line);
	g_assert_true(policyd_auth_params_parse(copy, &params, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(params.id, ==, id);
	g_assert_cmpstr(params.mech, ==, mech);
	g_assert_cmpstr(params.service, ==, "smtp");
	g_assert_cmpstr(params.rip, ==, rip);
	g_assert_cmpint(params.secured, ==, secured);
	g_assert_cmpint(params.has_resp, ==, resp != NULL);
	g_assert_cmpstr(params.resp, ==, resp);
	policyd_auth_params_clear(&params);
}

static void
test_params(void)
{
	/* what Postfix 3.7 sends */
	check_params_ok("1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.7\tsecured\t"
	                "resp=AGFsaWNlAHNlY3JldA==",
	                1, "PLAIN", "192.0.2.7", TRUE, "AGFsaWNlAHNlY3JldA==");
	check_params_ok("42\tLOGIN\tservice=smtp\tnologin\tlip=::1\trip=2001:db8::7", 42, "LOGIN",
	                "2001:db8::7", FALSE, NULL);
	/* what Exim sends: flags in another order, an empty resp= for none */
	check_params_ok("1\tplain\tservice=smtp\tsecured\tvalid-client-cert\trip=192.0.2.8\t"
	                "lip=192.0.2.1\tnologin\tresp=",
	                1, "PLAIN", "192.0.2.8", TRUE, NULL);
	/* unknown parameters, flags and values are ignored; the last of a repeated one wins */
	check_params_ok("4294967295\tPLAIN\tservice=imap\tservice=smtp\tsession=abc\tno-penalty\t"
	                "rip=192.0.2.9\tlport=587\trport=50000\tx=",
	                G_MAXUINT32, "PLAIN", "192.0.2.9", FALSE, NULL);
}

static void
test_params_broken(void)
{
	static const char *const cases[] = {
	        "",                                /* nothing */
	        "1",                               /* no mechanism */
	        "1\t",                             /* empty mechanism */
	        "x\tPLAIN\tservice=smtp",          /* id not a number */
	        "-1\tPLAIN\tservice=smtp",         /* nor negative */
	        "+1\tPLAIN\tservice=smtp",         /* nor signed */
	        "4294967296\tPLAIN\tservice=smtp", /* over 32 bits */
	        "1\tPLAIN\tnologin",               /* no service, which Dovecot requires */
	        "1\tPLAIN\tservice=smtp\tresp=YQ==\tsecured", /* resp= must come last */
	        "1\tPLAIN\tservice=smtp\tlport=x",            /* a port that is not one */
	        "1\tPLAIN\tservice=smtp\trport=65536",
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *copy = g_strdup(cases[i]);
		g_autoptr(GError) error = NULL;
		PolicydAuthParams params;

		g_test_message("broken AUTH \"%s\"", cases[i]);
		g_assert_false(policyd_auth_params_parse(copy, &params, &error));
		g_assert_error(error, POLICYD_AUTH_ERROR, POLICYD_AUTH_ERROR_PROTOCOL);
		policyd_auth_params_clear(&params);
	}
}

static void
test_params_too_many(void)
{
	g_autoptr(GString) line = g_string_new("1\tPLAIN\tservice=smtp");
	g_autoptr(GError) error = NULL;
	PolicydAuthParams params;

	for (guint i = 0; i < 100; i++)
		g_string_append(line, "\tsecured");
	g_assert_false(policyd_auth_params_parse(line->str, &params, &error));
	g_assert_error(error, POLICYD_AUTH_ERROR, POLICYD_AUTH_ERROR_PROTOCOL);
	policyd_auth_params_clear(&params);
}

/* ----- penalty ----- */

static void
test_penalty_delay(void)
{
	static const struct {
		guint base, max, failures, delay;
	} cases[] = {
	        {2000, 15000, 0, 0},
	        {2000, 15000, 1, 2000},
	        {2000, 15000, 2, 4000},
	        {2000, 15000, 3, 8000},
	        {2000, 15000, 4, 15000},
	        {2000, 15000, 1000, 15000},
	        {0, 15000, 5, 0},
	        {2000, 1000, 1, 1000},
	        {2000, 0, 3, 0},
	        {1, 300000, 32, 300000},
	        {60000, 300000, G_MAXUINT, 300000},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
		g_assert_cmpuint(
		        policyd_auth_penalty_delay(cases[i].base, cases[i].max, cases[i].failures),
		        ==, cases[i].delay);
}

static void
test_penalty_key(void)
{
	static const struct {
		const char *rip, *key; /* key NULL: not counted */
	} cases[] = {
	        {"192.0.2.7", "192.0.2.7"},
	        {"::ffff:192.0.2.7", "192.0.2.7"},
	        {"2001:db8:1:2:3:4:5:6", "2001:db8:1::"},
	        {"2001:db8:1:ffff::1", "2001:db8:1::"},
	        {"::1", "::"},
	        {"", NULL},
	        {"localhost", NULL},
	        {"192.0.2.7:25", NULL},
	        {"192.0.2", NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *key = policyd_auth_penalty_key(cases[i].rip);

		g_assert_cmpstr(key, ==, cases[i].key);
	}
	g_assert_null(policyd_auth_penalty_key(NULL));
}

static void
test_penalty_table(void)
{
	g_autoptr(PolicydAuthPenalty) p = policyd_auth_penalty_new();
	gint64 t = 1000 * G_USEC_PER_SEC, hour = POLICYD_AUTH_PENALTY_EXPIRE_US;

	g_assert_cmpuint(policyd_auth_penalty_fail(p, "192.0.2.1", t, 100, 1000), ==, 100);
	g_assert_cmpuint(policyd_auth_penalty_fail(p, "192.0.2.1", t, 100, 1000), ==, 200);
	g_assert_cmpuint(policyd_auth_penalty_fail(p, "192.0.2.1", t, 100, 1000), ==, 400);
	g_assert_cmpuint(policyd_auth_penalty_fail(p, "192.0.2.1", t, 100, 1000), ==, 800);
	g_assert_cmpuint(policyd_auth_penalty_fail(p, "192.0.2.1", t, 100, 1000), ==, 1000);
	g_assert_cmpuint(policyd_auth_penalty_get_failures(p, "192.0.2.1"), ==, 5);
	/* another address has its own count; one /48 shares one */
	g_assert_cmpuint(policyd_auth_penalty_fail(p, "192.0.2.2", t, 100, 1000), ==, 100);
	g_assert_cmpuint(policyd_auth_penalty_fail(p, "2001:db8:1::1", t, 100, 1000), ==, 100);
	g_assert_cmpuint(policyd_auth_penalty_fail(p, "2001:db8:1:9::2", t, 100, 1000), ==, 200);
	/* no address: the base delay, nothing counted */
	g_assert_cmpuint(policyd_auth_penalty_fail(p, NULL, t, 100, 1000), ==, 100);
	g_assert_cmpuint(policyd_auth_penalty_fail(p, "bogus", t, 100, 1000), ==, 100);
	g_assert_cmpuint(policyd_auth_penalty_size(p), ==, 3);
	/* a success forgets */
	policyd_auth_penalty_reset(p, "192.0.2.1");
	g_assert_cmpuint(policyd_auth_penalty_get_failures(p, "192.0.2.1"), ==, 0);
	g_assert_cmpuint(policyd_auth_penalty_fail(p, "192.0.2.1", t, 100, 1000), ==, 100);
	/* an hour later an old entry counts from one again, and the sweep removes it */
	g_assert_cmpuint(policyd_auth_penalty_fail(p, "192.0.2.2", t + hour, 100, 1000), ==, 100);
	policyd_auth_penalty_expire(p, t + hour - 1);
	g_assert_cmpuint(policyd_auth_penalty_size(p), ==, 3);
	policyd_auth_penalty_expire(p, t + hour);
	g_assert_cmpuint(policyd_auth_penalty_size(p), ==, 1); /* 192.0.2.2, failed at t+hour */
	g_assert_cmpuint(policyd_auth_penalty_get_failures(p, "192.0.2.2"), ==, 1);
}

static void
test_penalty_full(void)
{
	g_autoptr(PolicydAuthPenalty) p = policyd_auth_penalty_new();
	gint64 t = 1000 * G_USEC_PER_SEC;

	for (guint i = 0; i < POLICYD_AUTH_PENALTY_MAX_KEYS; i++) {
		g_autofree char *ip =
		        g_strdup_printf("10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);

		policyd_auth_penalty_fail(p, ip, t, 100, 1000);
	}
	g_assert_cmpuint(policyd_auth_penalty_size(p), ==, POLICYD_AUTH_PENALTY_MAX_KEYS);
	/* full of fresh entries: a newcomer gets the base delay, every time, and no entry */
	g_assert_cmpuint(policyd_auth_penalty_fail(p, "192.0.2.1", t, 100, 1000), ==, 100);
	g_assert_cmpuint(policyd_auth_penalty_fail(p, "192.0.2.1", t, 100, 1000), ==, 100);
	g_assert_cmpuint(policyd_auth_penalty_size(p), ==, POLICYD_AUTH_PENALTY_MAX_KEYS);
	/* once they are old, the newcomer makes room */
	g_assert_cmpuint(policyd_auth_penalty_fail(p, "192.0.2.1",
	                                           t + POLICYD_AUTH_PENALTY_EXPIRE_US, 100, 1000),
	                 ==, 100);
	g_assert_cmpuint(policyd_auth_penalty_size(p), ==, 1);
}

/* ===== the protocol, over a socket, against a fake certd ===== */

typedef struct {
	const char *login, *password, *user; /* user: what certd calls them */
} FakeUser;

static const FakeUser fake_users[] = {
        {"alice", PASSWORD, "alice"},
        {"alice@example.org", PASSWORD, "alice"}, /* certd also takes an address */
        {"slow", PASSWORD, "slow"},               /* answered after SLOW_MS */
        {"b\xc3\xb6rje", "p\xc3\xa4ss w\xc3\xb6rd", "b\xc3\xb6rje"},
};

typedef struct {
	HkIpcServer *server;
	guint calls;
} FakeCertd;

typedef struct {
	HkIpcRequest *req;
	json_object *result;
} Later;

static json_object *
fake_verdict(const char *login, const char *password)
{
	json_object *result = json_object_new_object();
	gboolean known = FALSE;

	for (guint i = 0; i < G_N_ELEMENTS(fake_users); i++) {
		if (strcmp(fake_users[i].login, login) != 0)
			continue;
		known = TRUE;
		if (strcmp(fake_users[i].password, password) != 0)
			break;
		json_object_object_add(result, HK_CERTD_KEY_OK, json_object_new_boolean(TRUE));
		json_object_object_add(result, HK_CERTD_KEY_USER,
		                       json_object_new_string(fake_users[i].user));
		json_object_object_add(result, HK_CERTD_KEY_EMAILS, json_object_new_array());
		return result;
	}
	json_object_object_add(result, HK_CERTD_KEY_OK, json_object_new_boolean(FALSE));
	json_object_object_add(
	        result, HK_CERTD_KEY_REASON,
	        json_object_new_string(known ? "password mismatch" : "unknown user"));
	return result;
}

static gboolean
fake_reply_later(gpointer data)
{
	Later *later = data;

	hk_ipc_request_return(later->req, later->result);
	g_free(later);
	return G_SOURCE_REMOVE;
}

static void
fake_auth_verify(HkIpcRequest *req, json_object *params, gpointer data)
{
	FakeCertd *fake = data;
	const char *login = hk_json_get_string(params, HK_CERTD_KEY_USER);
	json_object *result =
	        fake_verdict(login, hk_json_get_string(params, HK_CERTD_KEY_PASSWORD));
	Later *later;

	fake->calls++;
	g_assert_cmpuint(hk_ipc_request_get_roles(req) & HK_IPC_ROLE_SERVICE, !=, 0);
	if (strcmp(login, "slow") != 0) {
		hk_ipc_request_return(req, result);
		return;
	}
	later = g_new0(Later, 1);
	later->req = req;
	later->result = result;
	g_timeout_add(SLOW_MS, fake_reply_later, later);
}

static const HkIpcParam verify_params[] = {
        {HK_CERTD_KEY_USER, json_type_string, TRUE},
        {HK_CERTD_KEY_PASSWORD, json_type_string, TRUE},
        {NULL},
};

static const HkIpcOp fake_ops[] = {
        {HK_CERTD_OP_AUTH_VERIFY, HK_IPC_ROLE_SERVICE, verify_params, fake_auth_verify},
        {NULL},
};

static guint
fake_roles(const HkIpcPeer *peer, gpointer data)
{
	return HK_IPC_ROLE_PUBLIC | HK_IPC_ROLE_SERVICE;
}

/* ----- fixture: certd (fake or absent), the async client, policyd's auth listener ----- */

typedef struct {
	char *dir;
	char *certd_path;
	char *auth_path;
	FakeCertd certd;
	HkIpcAsync *async;
	PolicydAuth *auth;
} Fixture;

static HkConfig *
make_config(const char *extra)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *text = g_strdup_printf(
	        "[policyd]\nauth_failure_delay = %dms\nauth_max_failure_delay = %dms\n"
	        "certd_timeout = 5s\n%s",
	        DELAY_MS, MAX_MS, extra ? extra : "");
	HkConfig *config = hk_config_load_data(text, "test", policyd_config_sections, &error);

	g_assert_no_error(error);
	return config;
}

static void
fixture_start(Fixture *f, const char *extra_conf, gboolean with_certd)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HkConfig) config = make_config(extra_conf);
	g_autofree char *spec = NULL;
	HkIpcServerOptions options = {.role_func = fake_roles};

	f->dir = g_dir_make_tmp("test-policyd-auth-XXXXXX", &error);
	g_assert_no_error(error);
	f->certd_path = g_build_filename(f->dir, "certd.sock", NULL);
	f->auth_path = g_build_filename(f->dir, "auth.sock", NULL);
	if (with_certd) {
		f->certd.server = hk_ipc_server_new(fake_ops, &f->certd, &options);
		g_assert_true(hk_ipc_server_listen_path(f->certd.server, f->certd_path, 0600,
		                                        (gid_t)-1, &error));
		g_assert_no_error(error);
	}
	f->async = hk_ipc_async_new(f->certd_path);
	f->auth = policyd_auth_new(config, f->async);
	spec = g_strconcat("unix:", f->auth_path, NULL);
	g_assert_true(policyd_auth_listen(f->auth, spec, 0600, (gid_t)-1, &error));
	g_assert_no_error(error);
	g_string_truncate(captured_log, 0);
}

static void
fixture_stop(Fixture *f)
{
	g_clear_pointer(&f->auth, policyd_auth_free);
	g_clear_pointer(&f->async, hk_ipc_async_free);
	g_clear_pointer(&f->certd.server, hk_ipc_server_free);
	/* let what the teardown queued run, so the sanitizer sees every free */
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_assert_false(g_file_test(f->auth_path, G_FILE_TEST_EXISTS));
	g_rmdir(f->dir);
	g_free(f->dir);
	g_free(f->certd_path);
	g_free(f->auth_path);
	/* whatever happened, no password went to the log, plain or in base64 */
	g_assert_null(strstr(captured_log->str, PASSWORD));
	g_assert_null(strstr(captured_log->str, "VHIwdWI0ZG9yJj"));
	g_assert_null(strstr(captured_log->str, "p\xc3\xa4ss"));
}

/* ----- the client: Postfix's side, one line at a time ----- */

typedef struct {
	int fd;
	GString *in;
	gboolean eof;
} Client;

static Client *
client_connect(Fixture *f)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	Client *c = g_new0(Client, 1);

	g_strlcpy(sun.sun_path, f->auth_path, sizeof(sun.sun_path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
	c->in = g_string_new(NULL);
	return c;
}

static void
client_free(Client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	g_string_free(c->in, TRUE);
	g_free(c);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Client, client_free)

static void
client_send(Client *c, const char *line)
{
	g_autofree char *text = g_strconcat(line, "\n", NULL);

	g_assert_cmpint(send(c->fd, text, strlen(text), MSG_NOSIGNAL), ==, (gssize)strlen(text));
}

/* Runs the main loop until a poll of the client's socket says there is something. */
static void
client_wait_readable(Client *c, gint64 deadline)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};

	while (g_get_monotonic_time() < deadline) {
		while (g_main_context_iteration(NULL, FALSE))
			;
		if (poll(&pfd, 1, 2) > 0)
			return;
	}
}

/* The next line, or NULL on EOF or after timeout_ms. */
static char *
client_read_line(Client *c, guint timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + timeout_ms * 1000;

	for (;;) {
		char *nl = strchr(c->in->str, '\n');
		char buf[4096];
		ssize_t n;

		if (nl != NULL) {
			char *line = g_strndup(c->in->str, (gsize)(nl - c->in->str));

			g_string_erase(c->in, 0, nl - c->in->str + 1);
			return line;
		}
		if (c->eof || g_get_monotonic_time() >= deadline)
			return NULL;
		client_wait_readable(c, deadline);
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			c->eof = TRUE;
		else if (n > 0)
			g_string_append_len(c->in, buf, n);
	}
}

#define client_expect(c, expected)                                                                 \
	do {                                                                                       \
		g_autofree char *line_ = client_read_line((c), 5000);                              \
		g_assert_cmpstr(line_, ==, (expected));                                            \
	} while (0)

static void
client_expect_eof(Client *c)
{
	g_autofree char *line = client_read_line(c, 5000);

	g_assert_cmpstr(line, ==, NULL);
	g_assert_true(c->eof);
}

/* Postfix's handshake: VERSION and CPID, then reads up to DONE. */
static Client *
client_handshake(Fixture *f)
{
	Client *c = client_connect(f);
	g_autofree char *line = NULL;

	client_send(c, "VERSION\t1\t0");
	client_send(c, "CPID\t4242");
	do {
		g_free(line);
		line = client_read_line(c, 5000);
		g_assert_nonnull(line);
	} while (strcmp(line, "DONE") != 0);
	return c;
}

static char *
plain_b64(const char *authz, const char *user, const char *password)
{
	g_autoptr(GByteArray) msg = g_byte_array_new();

	g_byte_array_append(msg, (const guint8 *)authz, strlen(authz) + 1);
	g_byte_array_append(msg, (const guint8 *)user, strlen(user) + 1);
	g_byte_array_append(msg, (const guint8 *)password, strlen(password));
	return g_base64_encode(msg->data, msg->len);
}

static char *
b64(const char *text)
{
	return g_base64_encode((const guchar *)text, strlen(text));
}

static void
auth_plain(Client *c, guint id, const char *rip, const char *user, const char *password)
{
	g_autofree char *resp = plain_b64("", user, password);
	g_autofree char *line =
	        g_strdup_printf("AUTH\t%u\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=%s\t"
	                        "secured\tresp=%s",
	                        id, rip, resp);

	client_send(c, line);
}

static gint64
elapsed_ms(gint64 start_us)
{
	return (g_get_monotonic_time() - start_us) / 1000;
}

/* ----- the tests ----- */

static void
expect_handshake(Client *c, guint cuid, char **cookie)
{
	g_autofree char *spid = g_strdup_printf("SPID\t%d", (int)getpid());
	g_autofree char *cuid_line = g_strdup_printf("CUID\t%u", cuid);
	g_autofree char *line = NULL;

	/* unprompted and in Dovecot's order: Postfix wants MECH before SPID */
	client_expect(c, "VERSION\t1\t2");
	client_expect(c, "MECH\tPLAIN\tplaintext");
	client_expect(c, "MECH\tLOGIN\tplaintext");
	client_expect(c, spid);
	client_expect(c, cuid_line);
	line = client_read_line(c, 5000);
	g_assert_nonnull(line);
	g_assert_true(g_str_has_prefix(line, "COOKIE\t"));
	g_assert_cmpuint(strlen(line + 7), ==, 32);
	for (const char *p = line + 7; *p != '\0'; p++)
		g_assert_true(g_ascii_isxdigit(*p) && !g_ascii_isupper(*p));
	client_expect(c, "DONE");
	*cookie = g_strdup(line + 7);
}

static void
test_handshake(void)
{
	Fixture f = {0};
	g_autoptr(Client) c1 = NULL, c2 = NULL;
	g_autofree char *cookie1 = NULL, *cookie2 = NULL;

	fixture_start(&f, NULL, TRUE);
	c1 = client_connect(&f);
	expect_handshake(c1, 1, &cookie1);
	/* the client's VERSION and CPID may come after ours */
	client_send(c1, "VERSION\t1\t0");
	client_send(c1, "CPID\t4242");
	auth_plain(c1, 1, "192.0.2.10", "alice", PASSWORD);
	client_expect(c1, "OK\t1\tuser=alice");
	/* or before, as Postfix sends them; and not at all (Exim waits for DONE first) */
	c2 = client_connect(&f);
	client_send(c2, "VERSION\t1\t0");
	client_send(c2, "CPID\t4243");
	expect_handshake(c2, 2, &cookie2);
	g_assert_cmpstr(cookie1, !=, cookie2);
	g_assert_cmpuint(policyd_auth_get_n_connections(f.auth), ==, 2);
	fixture_stop(&f);
}

static void
test_plain_protocol(void)
{
	Fixture f = {0};
	g_autoptr(Client) c = NULL;
	g_autofree char *msg = plain_b64("", "alice", PASSWORD);
	g_autofree char *cont = g_strdup_printf("CONT\t2\t%s", msg);

	fixture_start(&f, NULL, TRUE);
	c = client_handshake(&f);
	auth_plain(c, 1, "192.0.2.10", "alice", PASSWORD);
	client_expect(c, "OK\t1\tuser=alice");
	hk_assert_log("auth PLAIN user=\"alice\" rip=192.0.2.10 service=smtp secured: ok");
	/* no initial response: an empty challenge, then the message in a CONT */
	client_send(c, "AUTH\t2\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.10");
	client_expect(c, "CONT\t2\t");
	client_send(c, cont);
	client_expect(c, "OK\t2\tuser=alice");
	/* certd's name for the user is the one Postfix gets (sasl_username) */
	auth_plain(c, 3, "192.0.2.10", "alice@example.org", PASSWORD);
	client_expect(c, "OK\t3\tuser=alice");
	hk_assert_log(
	        "user=\"alice@example.org\" rip=192.0.2.10 service=smtp secured: ok (as alice)");
	/* UTF-8 in names and passwords */
	auth_plain(c, 4, "192.0.2.10", "b\xc3\xb6rje", "p\xc3\xa4ss w\xc3\xb6rd");
	client_expect(c, "OK\t4\tuser=b\xc3\xb6rje");
	g_assert_cmpuint(f.certd.calls, ==, 4);
	fixture_stop(&f);
}

static void
test_plain_authzid(void)
{
	Fixture f = {0};
	g_autoptr(Client) c = NULL;
	g_autofree char *same = plain_b64("alice", "alice", PASSWORD);
	g_autofree char *other = plain_b64("bob", "alice", PASSWORD);
	g_autofree char *l1 = g_strdup_printf("AUTH\t1\tPLAIN\tservice=smtp\trip=192.0.2.11\t"
	                                      "resp=%s",
	                                      same);
	g_autofree char *l2 = g_strdup_printf("AUTH\t2\tPLAIN\tservice=smtp\trip=192.0.2.11\t"
	                                      "resp=%s",
	                                      other);

	fixture_start(&f, NULL, TRUE);
	c = client_handshake(&f);
	client_send(c, l1);
	client_expect(c, "OK\t1\tuser=alice");
	/* acting as another user is not supported: a failed login, certd never asked */
	client_send(c, l2);
	client_expect(c, "FAIL\t2\treason=Authentication failed");
	hk_assert_log("PLAIN authorization identity differs from the user");
	g_assert_cmpuint(f.certd.calls, ==, 1);
	fixture_stop(&f);
}

static void
test_login_protocol(void)
{
	Fixture f = {0};
	g_autoptr(Client) c = NULL;
	g_autofree char *user = b64("alice"), *pass = b64(PASSWORD);
	g_autofree char *cont_user = g_strdup_printf("CONT\t1\t%s", user);
	g_autofree char *cont_pass = g_strdup_printf("CONT\t1\t%s", pass);
	g_autofree char *with_resp = g_strdup_printf(
	        "AUTH\t2\tLOGIN\tservice=smtp\trip=192.0.2.12\tsecured\tresp=%s", user);
	g_autofree char *cont_pass2 = g_strdup_printf("CONT\t2\t%s", pass);

	fixture_start(&f, NULL, TRUE);
	c = client_handshake(&f);
	/* Dovecot's prompts: "Username:" and "Password:" */
	client_send(c, "AUTH\t1\tLOGIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.12");
	client_expect(c, "CONT\t1\tVXNlcm5hbWU6");
	client_send(c, cont_user);
	client_expect(c, "CONT\t1\tUGFzc3dvcmQ6");
	client_send(c, cont_pass);
	client_expect(c, "OK\t1\tuser=alice");
	hk_assert_log("auth LOGIN user=\"alice\" rip=192.0.2.12 service=smtp: ok");
	/* AUTH LOGIN with the user name on the command line (RFC 4954) */
	client_send(c, with_resp);
	client_expect(c, "CONT\t2\tUGFzc3dvcmQ6");
	client_send(c, cont_pass2);
	client_expect(c, "OK\t2\tuser=alice");
	fixture_stop(&f);
}

static void
test_in_flight(void)
{
	Fixture f = {0};
	g_autoptr(Client) c = NULL;
	g_autofree char *user = b64("alice"), *pass = b64(PASSWORD);
	g_autofree char *cont_user = g_strdup_printf("CONT\t12\t%s", user);
	g_autofree char *cont_pass = g_strdup_printf("CONT\t12\t%s", pass);

	fixture_start(&f, NULL, TRUE);
	c = client_handshake(&f);
	gint64 start = g_get_monotonic_time();

	auth_plain(c, 10, "192.0.2.13", "slow", PASSWORD);
	/* while certd works on 10, a LOGIN goes back and forth on the same connection */
	client_send(c, "AUTH\t12\tLOGIN\tservice=smtp\trip=192.0.2.13");
	client_expect(c, "CONT\t12\tVXNlcm5hbWU6");
	client_send(c, cont_user);
	client_expect(c, "CONT\t12\tUGFzc3dvcmQ6");
	g_assert_cmpint(elapsed_ms(start), <, SLOW_MS);
	client_send(c, cont_pass);
	auth_plain(c, 11, "192.0.2.13", "alice", PASSWORD);
	/* each is answered when certd answers it, keyed by id (certd answers in order) */
	client_expect(c, "OK\t10\tuser=slow");
	g_assert_cmpint(elapsed_ms(start), >=, SLOW_MS);
	client_expect(c, "OK\t12\tuser=alice");
	client_expect(c, "OK\t11\tuser=alice");
	fixture_stop(&f);
}

static gint64
fail_after(Client *c, guint id, const char *rip, const char *user, const char *expected)
{
	gint64 start = g_get_monotonic_time();

	auth_plain(c, id, rip, user, "wrong");
	client_expect(c, expected);
	return elapsed_ms(start);
}

static void
test_failure_delay(void)
{
	Fixture f = {0};
	g_autoptr(Client) a = NULL, b = NULL;
	gint64 start, ms;

	fixture_start(&f, NULL, TRUE);
	a = client_handshake(&f);
	b = client_handshake(&f);
	/* first failure from an address: the base delay; then doubled, up to the maximum */
	ms = fail_after(a, 1, "192.0.2.20", "alice",
	                "FAIL\t1\tuser=alice\treason=Authentication failed");
	g_assert_cmpint(ms, >=, DELAY_MS);
	g_assert_cmpint(ms, <, 2 * DELAY_MS);
	ms = fail_after(a, 2, "192.0.2.20", "alice",
	                "FAIL\t2\tuser=alice\treason=Authentication failed");
	g_assert_cmpint(ms, >=, 2 * DELAY_MS);
	ms = fail_after(a, 3, "192.0.2.20", "alice",
	                "FAIL\t3\tuser=alice\treason=Authentication failed");
	g_assert_cmpint(ms, >=, MAX_MS);
	g_assert_cmpint(ms, <, MAX_MS + DELAY_MS);
	/* an unknown user gets the same answer as a wrong password; another address its own count
	 */
	ms = fail_after(a, 4, "192.0.2.21", "nobody",
	                "FAIL\t4\tuser=nobody\treason=Authentication failed");
	g_assert_cmpint(ms, >=, DELAY_MS);
	g_assert_cmpint(ms, <, 2 * DELAY_MS);
	hk_assert_log("auth PLAIN user=\"alice\" rip=192.0.2.20 service=smtp secured: failed "
	              "(password mismatch; reply in 200 ms)");
	hk_assert_log("user=\"nobody\" rip=192.0.2.21 service=smtp secured: failed (unknown user");
	/* a delayed FAIL holds up nobody else */
	start = g_get_monotonic_time();
	auth_plain(a, 5, "192.0.2.20", "alice", "wrong");
	auth_plain(b, 1, "192.0.2.22", "alice", PASSWORD);
	client_expect(b, "OK\t1\tuser=alice");
	g_assert_cmpint(elapsed_ms(start), <, DELAY_MS);
	client_expect(a, "FAIL\t5\tuser=alice\treason=Authentication failed");
	g_assert_cmpint(elapsed_ms(start), >=, MAX_MS);
	/* a success forgets the address's failures */
	auth_plain(a, 6, "192.0.2.20", "alice", PASSWORD);
	client_expect(a, "OK\t6\tuser=alice");
	ms = fail_after(a, 7, "192.0.2.20", "alice",
	                "FAIL\t7\tuser=alice\treason=Authentication failed");
	g_assert_cmpint(ms, <, 2 * DELAY_MS);
	fixture_stop(&f);
}

static void
test_require_secured(void)
{
	Fixture f = {0};
	g_autoptr(Client) c = NULL;
	g_autoptr(HkConfig) strict = make_config("auth_require_secured = yes\n");
	g_autofree char *resp = plain_b64("", "alice", PASSWORD);
	g_autofree char *plain = g_strdup_printf(
	        "AUTH\t2\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=192.0.2.30\tresp=%s",
	        resp);
	gint64 start;

	fixture_start(&f, NULL, TRUE);
	c = client_handshake(&f);
	/* off by default: no TLS is fine */
	client_send(c, plain);
	client_expect(c, "OK\t2\tuser=alice");
	/* a reload turns it on for the requests that come next */
	policyd_auth_reload(f.auth, strict);
	start = g_get_monotonic_time();
	client_send(c, plain);
	client_expect(c, "FAIL\t2\treason=TLS required");
	g_assert_cmpint(elapsed_ms(start), <, DELAY_MS);
	hk_assert_log("auth PLAIN user=\"\" rip=192.0.2.30 service=smtp: refused (TLS required)");
	auth_plain(c, 3, "192.0.2.30", "alice", PASSWORD); /* says "secured" */
	client_expect(c, "OK\t3\tuser=alice");
	g_assert_cmpuint(f.certd.calls, ==, 2);
	fixture_stop(&f);
}

static void
test_mechanisms_config(void)
{
	Fixture f = {0};
	g_autoptr(Client) c = NULL;
	g_autofree char *line = NULL;

	fixture_start(&f, "auth_mechanisms = login\n", TRUE);
	c = client_connect(&f);
	client_expect(c, "VERSION\t1\t2");
	client_expect(c, "MECH\tLOGIN\tplaintext");
	line = client_read_line(c, 5000);
	g_assert_true(g_str_has_prefix(line, "SPID\t"));
	while (strcmp(line, "DONE") != 0) {
		g_free(line);
		line = client_read_line(c, 5000);
		g_assert_nonnull(line);
	}
	auth_plain(c, 1, "192.0.2.31", "alice", PASSWORD);
	client_expect(c, "FAIL\t1\treason=Unsupported authentication mechanism");
	client_send(c, "AUTH\t2\tCRAM-MD5\tservice=smtp");
	client_expect(c, "FAIL\t2\treason=Unsupported authentication mechanism");
	client_send(c, "AUTH\t3\tLOGIN\tservice=smtp");
	client_expect(c, "CONT\t3\tVXNlcm5hbWU6");
	g_assert_cmpuint(f.certd.calls, ==, 0);
	fixture_stop(&f);
}

static void
test_certd_down(void)
{
	Fixture f = {0};
	g_autoptr(Client) c = NULL, again = NULL;

	fixture_start(&f, NULL, FALSE);
	c = client_handshake(&f);
	auth_plain(c, 1, "192.0.2.40", "alice", PASSWORD);
	/* no reply at all: Postfix then answers 454 4.7.0 "Temporary authentication failure" */
	client_expect_eof(c);
	hk_assert_log("certd cannot check passwords: cannot connect to");
	hk_assert_log("auth PLAIN user=\"alice\" rip=192.0.2.40 service=smtp secured: temporary "
	              "failure");
	/* not a failed login: no penalty for the address */
	again = client_handshake(&f);
	auth_plain(again, 1, "192.0.2.40", "alice", PASSWORD);
	client_expect_eof(again);
	g_assert_null(strstr(captured_log->str, "failed ("));
	fixture_stop(&f);
}

/* Each of these makes policyd close the connection, as Dovecot does. */
static void
test_protocol_violations(void)
{
	g_autofree char *long_line = g_strnfill(POLICYD_AUTH_MAX_LINE + 1, 'A');
	const char *const cases[] = {
	        "HELLO",         /* unknown command */
	        "VERSION\t2\t0", /* another major version */
	        "VERSION",       /* a broken one */
	        "CPID\tx",
	        "AUTH\t1\tPLAIN",               /* no service= */
	        "AUTH\tx\tPLAIN\tservice=smtp", /* no id */
	        "AUTH\t1\tPLAIN\tservice=smtp\tresp=YQ==\tsecured",
	        "CONT\t1", /* no data */
	        "CANCEL\tx",
	        long_line,
	};
	Fixture f = {0};

	fixture_start(&f, NULL, TRUE);
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(Client) c = client_handshake(&f);

		g_test_message("violation %u", i);
		client_send(c, cases[i]);
		client_expect_eof(c);
	}
	hk_assert_log("unknown command \"HELLO\"; closing");
	hk_assert_log("protocol version 2 is not 1; closing");
	hk_assert_log("line longer than 8192 bytes; closing");
	/* what was sent is never logged past the command name */
	g_assert_null(strstr(captured_log->str, "YQ=="));
	g_assert_cmpuint(f.certd.calls, ==, 0);
	fixture_stop(&f);
}

static void
test_duplicate_and_early_cont(void)
{
	Fixture f = {0};
	g_autoptr(Client) c = NULL, d = NULL;

	fixture_start(&f, NULL, TRUE);
	/* the same id twice while the first is in flight */
	c = client_handshake(&f);
	client_send(c, "AUTH\t5\tLOGIN\tservice=smtp");
	client_expect(c, "CONT\t5\tVXNlcm5hbWU6");
	client_send(c, "AUTH\t5\tLOGIN\tservice=smtp");
	client_expect_eof(c);
	/* a CONT for a request that waits for certd, not for the client */
	d = client_handshake(&f);
	auth_plain(d, 1, "192.0.2.50", "slow", PASSWORD);
	client_send(d, "CONT\t1\tYQ==");
	client_expect_eof(d);
	fixture_stop(&f);
}

static void
test_bad_data(void)
{
	Fixture f = {0};
	g_autoptr(Client) c = NULL;
	g_autofree char *one_nul = g_base64_encode((const guchar *)"alice\0x", 7);
	g_autofree char *tab_user = b64("al\tice");
	g_autofree char *l1 = g_strdup_printf("AUTH\t3\tPLAIN\tservice=smtp\tresp=%s", one_nul);
	g_autofree char *l2 = g_strdup_printf("CONT\t4\t%s", tab_user);

	fixture_start(&f, NULL, TRUE);
	c = client_handshake(&f);
	/* malformed base64 fails at once; the connection goes on */
	client_send(c, "AUTH\t1\tPLAIN\tservice=smtp\tresp=!!!!");
	client_expect(c, "FAIL\t1\treason=Invalid base64 data in initial response");
	client_send(c, "AUTH\t2\tPLAIN\tservice=smtp");
	client_expect(c, "CONT\t2\t");
	client_send(c, "CONT\t2\tYQ=");
	client_expect(c, "FAIL\t2\treason=Invalid base64 data in continued response");
	/* a PLAIN message that does not decode is a failed login: delayed, no user */
	client_send(c, l1);
	client_expect(c, "FAIL\t3\treason=Authentication failed");
	/* a user name that cannot be echoed is not */
	client_send(c, "AUTH\t4\tLOGIN\tservice=smtp");
	client_expect(c, "CONT\t4\tVXNlcm5hbWU6");
	client_send(c, l2);
	client_expect(c, "CONT\t4\tUGFzc3dvcmQ6");
	client_send(c, "CONT\t4\tYQ==");
	client_expect(c, "FAIL\t4\treason=Authentication failed");
	hk_assert_log("user=\"al\\tice\" rip=- service=smtp: failed (not a valid user name");
	/* a CONT for a request that is no more */
	client_send(c, "CONT\t99\tYQ==");
	client_expect(c, "FAIL\t99\treason=Authentication request timed out");
	auth_plain(c, 5, "192.0.2.51", "alice", PASSWORD);
	client_expect(c, "OK\t5\tuser=alice");
	g_assert_cmpuint(f.certd.calls, ==, 1);
	fixture_stop(&f);
}

static void
run_main_loop_ms(guint ms)
{
	gint64 end = g_get_monotonic_time() + ms * 1000;

	while (g_get_monotonic_time() < end) {
		while (g_main_context_iteration(NULL, FALSE))
			;
		g_usleep(2000);
	}
}

static void
test_client_leaves(void)
{
	Fixture f = {0};
	g_autoptr(Client) c = NULL, d = NULL, e = NULL;

	fixture_start(&f, NULL, TRUE);
	/* gone while certd checks: the answer is dropped */
	c = client_handshake(&f);
	auth_plain(c, 1, "192.0.2.60", "slow", PASSWORD);
	run_main_loop_ms(50);
	g_clear_pointer(&c, client_free);
	/* gone while the FAIL waits out its delay */
	d = client_handshake(&f);
	auth_plain(d, 1, "192.0.2.61", "alice", "wrong");
	run_main_loop_ms(50);
	g_clear_pointer(&d, client_free);
	run_main_loop_ms(SLOW_MS + DELAY_MS);
	hk_assert_log("auth PLAIN user=\"slow\" rip=192.0.2.60 service=smtp secured: aborted");
	g_assert_cmpuint(policyd_auth_get_n_connections(f.auth), ==, 0);
	/* CANCEL drops a request; a CONT for it finds nothing */
	e = client_handshake(&f);
	client_send(e, "AUTH\t7\tLOGIN\tservice=smtp");
	client_expect(e, "CONT\t7\tVXNlcm5hbWU6");
	client_send(e, "CANCEL\t7");
	client_send(e, "CONT\t7\tYQ==");
	client_expect(e, "FAIL\t7\treason=Authentication request timed out");
	fixture_stop(&f);
}

static void
test_max_connections(void)
{
	Fixture f = {0};
	g_autoptr(Client) a = NULL, b = NULL, c = NULL, d = NULL;

	fixture_start(&f, "max_connections = 2\n", TRUE);
	a = client_handshake(&f);
	b = client_handshake(&f);
	c = client_connect(&f);
	client_expect_eof(c);
	hk_assert_log("2 connections open (max_connections); refusing more");
	g_clear_pointer(&a, client_free);
	while (policyd_auth_get_n_connections(f.auth) > 1)
		g_main_context_iteration(NULL, TRUE);
	d = client_handshake(&f);
	auth_plain(d, 1, "192.0.2.70", "alice", PASSWORD);
	client_expect(d, "OK\t1\tuser=alice");
	fixture_stop(&f);
}

static int
free_tcp_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sin, &len), ==, 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void
test_inet_listener(void)
{
	Fixture f = {0};
	g_autoptr(GError) error = NULL;
	int port = free_tcp_port();
	g_autofree char *spec = g_strdup_printf("inet:127.0.0.1:%d", port);
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons((guint16)port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	g_autoptr(Client) c = g_new0(Client, 1);

	fixture_start(&f, NULL, TRUE);
	g_assert_true(policyd_auth_listen(f.auth, spec, 0, (gid_t)-1, &error));
	g_assert_no_error(error);
	g_assert_false(policyd_auth_listen(f.auth, "tcp:127.0.0.1:1", 0, (gid_t)-1, &error));
	g_assert_nonnull(error);
	c->in = g_string_new(NULL);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
	client_expect(c, "VERSION\t1\t2");
	fixture_stop(&f);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* warnings are part of what the tests check, not a reason to abort */
	g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	captured_log = g_string_new(NULL);
	g_log_set_default_handler(capture_log, NULL);

	g_test_add_func("/policyd-auth/base64", test_base64);
	g_test_add_func("/policyd-auth/plain", test_plain);
	g_test_add_func("/policyd-auth/plain-long-password", test_plain_long_password);
	g_test_add_func("/policyd-auth/login-answer", test_login_answer);
	g_test_add_func("/policyd-auth/user-names", test_user_names);
	g_test_add_func("/policyd-auth/params", test_params);
	g_test_add_func("/policyd-auth/params-broken", test_params_broken);
	g_test_add_func("/policyd-auth/params-too-many", test_params_too_many);
	g_test_add_func("/policyd-auth/penalty-delay", test_penalty_delay);
	g_test_add_func("/policyd-auth/penalty-key", test_penalty_key);
	g_test_add_func("/policyd-auth/penalty-table", test_penalty_table);
	g_test_add_func("/policyd-auth/penalty-full", test_penalty_full);
	g_test_add_func("/policyd-auth/handshake", test_handshake);
	g_test_add_func("/policyd-auth/plain-protocol", test_plain_protocol);
	g_test_add_func("/policyd-auth/plain-authzid", test_plain_authzid);
	g_test_add_func("/policyd-auth/login-protocol", test_login_protocol);
	g_test_add_func("/policyd-auth/in-flight", test_in_flight);
	g_test_add_func("/policyd-auth/failure-delay", test_failure_delay);
	g_test_add_func("/policyd-auth/require-secured", test_require_secured);
	g_test_add_func("/policyd-auth/mechanisms-config", test_mechanisms_config);
	g_test_add_func("/policyd-auth/certd-down", test_certd_down);
	g_test_add_func("/policyd-auth/protocol-violations", test_protocol_violations);
	g_test_add_func("/policyd-auth/duplicate-and-early-cont", test_duplicate_and_early_cont);
	g_test_add_func("/policyd-auth/bad-data", test_bad_data);
	g_test_add_func("/policyd-auth/client-leaves", test_client_leaves);
	g_test_add_func("/policyd-auth/max-connections", test_max_connections);
	g_test_add_func("/policyd-auth/inet-listener", test_inet_listener);
	return g_test_run();
}
