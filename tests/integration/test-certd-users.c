/*
 * test-certd-users: the user directory, password checks and S/MIME recipient certificates
 * of hanko-certd (user.*, auth.verify, fax.verify, smime.*), through hankoctl and the raw
 * socket, against the built daemon.
 *
 * Every test ends by checking that none of the passwords it used reached certd's log
 * (which runs with -d, so request parameters are logged) or the audit log.
 * Talks to: hanko-certd and hankoctl of the build tree, openssl(1) and mkpasswd(1)
 * (Debian packages openssl and whois) to make certificates and password hashes.
 * Must never: skip because a tool is missing: it fails and names the package.
 */
#include "certd.h"
#include "hk-certd-proto.h"
#include "hk-test-certd.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOBODY 65534 /* uid of nobody and gid of nogroup on Debian */

/* Every secret a test uses; none may show up in a log. */
static const char *const secrets[] = {
        "correct horse battery", "fax-secret-42", "pw-sha512-Qx", "pw-sha256-Qx", "pw-md5-Qx",
        "pw-bcrypt-Qx",          "pw-yes-Qx",     "pw-des-Q",     "plain pw Qx",  "clear-pw-Qx",
        "wrong-pw-Qx",           "nobody-pw-Qx",  NULL,
};

typedef struct {
	HkTestCertd *certd;
	HkIpcClient *client;
} Fixture;

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

static void
connect_client(Fixture *fx)
{
	g_autoptr(GError) error = NULL;

	fx->client = hk_ipc_client_connect(fx->certd->socket, 30000, &error);
	g_assert_no_error(error);
}

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	fx->certd = hk_test_certd_start(data);
	connect_client(fx);
}

static void
assert_no_secret(const char *what, const char *text)
{
	for (guint i = 0; secrets[i] != NULL; i++) {
		if (strstr(text, secrets[i]) != NULL)
			g_error("the secret \"%s\" appears in %s:\n%s", secrets[i], what, text);
	}
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	g_autofree char *log = hk_test_certd_log(fx->certd);
	g_autofree char *audit = NULL;

	g_assert_cmpint(hk_test_ctl(fx->certd, NULL, &audit, NULL, "--json", "audit", NULL), ==, 0);
	assert_no_secret("certd's log", log);
	assert_no_secret("the audit log", audit);
	g_clear_pointer(&fx->client, hk_ipc_client_free);
	hk_test_certd_stop(fx->certd);
}

/* Runs hankoctl -c CONF ARGS... with input on its stdin. */
static G_GNUC_NULL_TERMINATED void
ctl(Run *run, Fixture *fx, const char *input, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	const char *arg;
	va_list args;

	g_ptr_array_add(argv, (gpointer)HK_TEST_CTL_BIN);
	g_ptr_array_add(argv, (gpointer) "-c");
	g_ptr_array_add(argv, fx->certd->conf);
	va_start(args, input);
	while ((arg = va_arg(args, const char *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(args);
	g_ptr_array_add(argv, NULL);
	run_clear(run);
	run->status = hk_test_runv(input, &run->out, &run->err, (const char *const *)argv->pdata);
}

#define assert_run_ok(run)                                                                         \
	do {                                                                                       \
		if ((run)->status != 0)                                                            \
			g_error("%s:%d: exit %d\nstdout: %s\nstderr: %s", __FILE__, __LINE__,      \
			        (run)->status, (run)->out, (run)->err);                            \
	} while (0)

static json_object *
call(Fixture *fx, const char *op, json_object *params, GError **error)
{
	return hk_ipc_client_call(fx->client, op, params, error);
}

/* Calls op with params given as JSON text and asserts it worked. */
static json_object *
call_ok(Fixture *fx, const char *op, const char *params_json)
{
	g_autoptr(json_object) params = params_json ? json_tokener_parse(params_json) : NULL;
	g_autoptr(GError) error = NULL;
	json_object *result;

	g_assert_true(params_json == NULL || params != NULL);
	result = call(fx, op, params, &error);
	if (result == NULL)
		g_error("%s %s: %s", op, params_json, error->message);
	return result;
}

/* Calls op and asserts it failed with code and a message containing part. */
static void
call_fails(Fixture *fx, const char *op, const char *params_json, HkIpcError code, const char *part)
{
	g_autoptr(json_object) params = json_tokener_parse(params_json);
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) result = NULL;

	g_assert_nonnull(params);
	result = call(fx, op, params, &error);
	if (result != NULL)
		g_error("%s %s succeeded, expected %s", op, params_json,
		        hk_ipc_error_code_to_string(code));
	g_assert_error(error, HK_IPC_ERROR, (gint)code);
	hk_assert_contains(error->message, part);
}

static void
add_user(Fixture *fx, const char *name, const char *emails)
{
	g_auto(Run) run = {0};

	ctl(&run, fx, NULL, "user", "add", name, "--email", emails, NULL);
	assert_run_ok(&run);
}

static void
set_password(Fixture *fx, const char *name, const char *password)
{
	g_auto(Run) run = {0};
	g_autofree char *input = g_strconcat(password, "\n", NULL);

	ctl(&run, fx, input, "user", "passwd", name, NULL);
	assert_run_ok(&run);
	hk_assert_contains(run.out, "has_password: true");
}

/* auth.verify or fax.verify through the socket: the result object. */
static json_object *
verify(Fixture *fx, const char *op, const char *user, const char *password)
{
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(GError) error = NULL;
	json_object *result;

	json_object_object_add(params, HK_CERTD_KEY_USER, json_object_new_string(user));
	json_object_object_add(params, HK_CERTD_KEY_PASSWORD, json_object_new_string(password));
	result = call(fx, op, params, &error);
	g_assert_no_error(error);
	return result;
}

static void
assert_verify(Fixture *fx, const char *op, const char *user, const char *password,
              const char *reason)
{
	g_autoptr(json_object) result = verify(fx, op, user, password);

	g_assert_cmpint(hk_json_get_bool(result, HK_CERTD_KEY_OK, FALSE), ==, reason == NULL);
	g_assert_cmpstr(hk_json_get_string(result, HK_CERTD_KEY_REASON), ==, reason);
}

static HkDb *
open_db(Fixture *fx)
{
	g_autofree char *path = g_build_filename(fx->certd->state, "certd.db", NULL);
	g_autoptr(GError) error = NULL;
	HkDb *db = hk_db_open(path, certd_db_migrations, 5000, &error);

	g_assert_no_error(error);
	return db;
}

static void
db_exec(Fixture *fx, const char *sql)
{
	g_autoptr(HkDb) db = open_db(fx);
	g_autoptr(GError) error = NULL;

	hk_db_exec(db, sql, &error);
	g_assert_no_error(error);
}

static char *
db_text(Fixture *fx, const char *sql)
{
	g_autoptr(HkDb) db = open_db(fx);
	g_autoptr(sqlite3_stmt) stmt = hk_db_prepare(db, sql, NULL);

	g_assert_nonnull(stmt);
	if (sqlite3_step(stmt) != SQLITE_ROW || sqlite3_column_type(stmt, 0) == SQLITE_NULL)
		return NULL;
	return g_strdup((const char *)sqlite3_column_text(stmt, 0));
}

/* A client certificate row as certd-client.c writes it, plus its cert.pem. */
static void
insert_client_cert(Fixture *fx, const char *user, const char *serial, const char *email,
                   const char *profile, const char *status, gint64 not_after_offset,
                   const char *pem)
{
	g_autofree char *dir = g_strdup_printf("certs/test-%s", serial);
	g_autofree char *path = g_build_filename(fx->certd->state, dir, NULL);
	gint64 now = g_get_real_time() / G_USEC_PER_SEC;
	g_autofree char *sql = g_strdup_printf(
	        "INSERT INTO certs (kind, serial, user_id, cn, email, key_type, profile, "
	        "not_before,"
	        " not_after, fingerprint, status, dir, created) VALUES ('client', '%s',"
	        " (SELECT id FROM users WHERE name = '%s'), 'Test', '%s', 'ec:p256', '%s', "
	        "%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", 'FP:%s', '%s', '%s', %" G_GINT64_FORMAT
	        ")",
	        serial, user, email, profile, now - 86400, now + not_after_offset, serial, status,
	        dir, now);

	g_assert_cmpint(g_mkdir_with_parents(path, 0700), ==, 0);
	if (pem != NULL) {
		g_autofree char *file = g_build_filename(path, "cert.pem", NULL);

		g_assert_true(g_file_set_contents(file, pem, -1, NULL));
	}
	db_exec(fx, sql);
}

/* ----- events ----- */

static HkIpcClient *
watch_start(Fixture *fx)
{
	g_autoptr(GError) error = NULL;
	HkIpcClient *watch = hk_ipc_client_connect(fx->certd->socket, 5000, &error);
	static const char request[] = "{\"id\":1,\"op\":\"events.watch\"}\n";
	g_autofree char *reply = NULL;

	g_assert_no_error(error);
	g_assert_true(hk_ipc_client_send_line(watch, request, strlen(request), &error));
	reply = hk_ipc_client_read_line(watch, &error);
	g_assert_no_error(error);
	hk_assert_contains(reply, "\"ok\":true");
	return watch;
}

/* Reads the next event and asserts its name and one string member of its data. */
static void
watch_expect(HkIpcClient *watch, const char *event, const char *key, const char *value)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *line = hk_ipc_client_read_line(watch, &error);
	g_autoptr(json_object) msg = NULL;

	g_assert_no_error(error);
	msg = json_tokener_parse(line);
	g_assert_nonnull(msg);
	g_assert_cmpstr(hk_json_get_string(msg, "event"), ==, event);
	g_assert_cmpstr(hk_json_get_string(hk_json_get_object(msg, "data"), key), ==, value);
}

/* ----- user.add ----- */

static void
test_add(Fixture *fx, gconstpointer data)
{
	g_autoptr(HkIpcClient) watch = watch_start(fx);
	g_auto(Run) run = {0};

	ctl(&run, fx, NULL, "user", "add", "sindbad", "--email", "s@example.jp,Sailor@Example.jp",
	    NULL);
	assert_run_ok(&run);
	hk_assert_contains(run.out, "name: sindbad");
	hk_assert_contains(run.out, "emails: s@example.jp, Sailor@Example.jp");
	hk_assert_contains(run.out, "has_password: false");
	watch_expect(watch, HK_CERTD_EV_USER_CHANGED, HK_CERTD_KEY_NAME, "sindbad");

	/* the same name, or an address another user owns (in any case) */
	ctl(&run, fx, NULL, "user", "add", "sindbad", "--email", "other@example.jp", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err, "conflict: user \"sindbad\" already exists");
	ctl(&run, fx, NULL, "user", "add", "hindbad", "--email", "h@example.jp", "--email",
	    "SAILOR@example.jp", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err,
	                   "conflict: the address \"SAILOR@example.jp\" already belongs to user "
	                   "\"sindbad\"");
	call_fails(fx, HK_CERTD_OP_USER_SHOW, "{\"name\":\"hindbad\"}", HK_IPC_ERROR_NOT_FOUND,
	           "no user \"hindbad\"");
}

static void
test_add_bad_input(Fixture *fx, gconstpointer data)
{
	static const struct {
		const char *params;
		const char *message;
	} cases[] = {
	        {"{\"name\":\"\",\"emails\":[\"a@example.jp\"]}", "a user name is required"},
	        {"{\"name\":\"-x\",\"emails\":[\"a@example.jp\"]}", "must not start with \"-\""},
	        {"{\"name\":\".x\",\"emails\":[\"a@example.jp\"]}", "must not start with \".\""},
	        {"{\"name\":\"a b\",\"emails\":[\"a@example.jp\"]}", "may hold only letters"},
	        {"{\"name\":\"a/b\",\"emails\":[\"a@example.jp\"]}", "may hold only letters"},
	        {"{\"name\":\"a:b\",\"emails\":[\"a@example.jp\"]}", "may hold only letters"},
	        {"{\"name\":\"j\\u00fcrgen\",\"emails\":[\"a@example.jp\"]}",
	         "may hold only letters"},
	        {"{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
	         "\"emails\":[\"a@example.jp\"]}",
	         "longer than 64 characters"},
	        {"{\"name\":\"ok\",\"emails\":[]}", "at least one e-mail address"},
	        {"{\"name\":\"ok\",\"emails\":[\"not-an-address\"]}",
	         "\"not-an-address\" is not a valid e-mail address"},
	        {"{\"name\":\"ok\",\"emails\":[\"a@localhost\"]}", "is not a valid e-mail address"},
	        {"{\"name\":\"ok\",\"emails\":[\"\"]}", "an e-mail address is required"},
	        {"{\"name\":\"ok\",\"emails\":[7]}", "emails must be an array of strings"},
	        {"{\"name\":\"ok\",\"emails\":[\"a@example.jp\",\"A@EXAMPLE.JP\"]}",
	         "\"A@EXAMPLE.JP\" is given twice"},
	        {"{\"name\":\"ok\",\"emails\":\"a@example.jp\"}", "emails"},
	        {"{\"name\":\"ok\"}", "emails"},
	};
	g_autoptr(json_object) list = NULL;
	g_autoptr(json_object) added = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
		call_fails(fx, HK_CERTD_OP_USER_ADD, cases[i].params, HK_IPC_ERROR_INVALID_ARGUMENT,
		           cases[i].message);
	list = call_ok(fx, HK_CERTD_OP_USER_LIST, NULL);
	g_assert_cmpint(json_object_array_length(json_object_object_get(list, "users")), ==, 0);
	/* the edges that are allowed */
	added = call_ok(fx, HK_CERTD_OP_USER_ADD,
	                "{\"name\":\"A.b_c+d@e-f0123456789012345678901234567890123456789012345678"
	                "9012\",\"emails\":[\"a@example.jp\"]}");
	g_assert_cmpint(strlen(hk_json_get_string(added, HK_CERTD_KEY_NAME)), ==, 64);
}

/* ----- user.passwd, auth.verify ----- */

static gint64
verify_time(Fixture *fx, const char *user, const char *password)
{
	gint64 best = G_MAXINT64;

	for (int i = 0; i < 3; i++) {
		gint64 start = g_get_monotonic_time();
		g_autoptr(json_object) result = verify(fx, HK_CERTD_OP_AUTH_VERIFY, user, password);

		g_assert_false(hk_json_get_bool(result, HK_CERTD_KEY_OK, TRUE));
		best = MIN(best, g_get_monotonic_time() - start);
	}
	return best;
}

/* hankoctl user verify exits 0 or 1; failures are logged with the user, at info level */
static void
verify_with_hankoctl(Fixture *fx)
{
	g_auto(Run) run = {0};

	ctl(&run, fx, "correct horse battery\n", "user", "verify", "s@example.jp", NULL);
	assert_run_ok(&run);
	hk_assert_contains(run.out, "ok: sindbad");
	ctl(&run, fx, "wrong-pw-Qx\n", "user", "verify", "sindbad", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.out, "failed: password mismatch");
	ctl(&run, fx, "wrong-pw-Qx\n", "--json", "user", "verify", "nobody", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.out, "\"reason\":\"unknown user\"");

	/* failures are logged, at info level, with the user and without the password */
	{
		g_autofree char *log = hk_test_certd_log(fx->certd);

		hk_assert_contains(log, "auth.verify: user \"nobody\": unknown user");
		hk_assert_contains(log, "auth.verify: user \"sindbad\": password mismatch");
	}
}

static void
test_passwd_verify(Fixture *fx, gconstpointer data)
{
	g_autoptr(json_object) ok = NULL;
	g_autoptr(json_object) emails = NULL;
	g_autofree char *hash = NULL;

	add_user(fx, "sindbad", "s@example.jp,sailor@example.jp");
	add_user(fx, "hindbad", "h@example.jp");
	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "sindbad", "anything", "no password set");
	set_password(fx, "sindbad", "correct horse battery");
	hash = db_text(fx, "SELECT password_hash FROM users WHERE name = 'sindbad'");
	g_assert_true(g_str_has_prefix(hash, "$y$"));

	ok = verify(fx, HK_CERTD_OP_AUTH_VERIFY, "sindbad", "correct horse battery");
	g_assert_true(hk_json_get_bool(ok, HK_CERTD_KEY_OK, FALSE));
	g_assert_cmpstr(hk_json_get_string(ok, HK_CERTD_KEY_USER), ==, "sindbad");
	emails = json_object_get(json_object_object_get(ok, HK_CERTD_KEY_EMAILS));
	g_assert_cmpint(json_object_array_length(emails), ==, 2);
	/* an address logs in too, in any case; the answer names the user */
	g_clear_pointer(&ok, json_object_put);
	ok = verify(fx, HK_CERTD_OP_AUTH_VERIFY, "SAILOR@example.jp", "correct horse battery");
	g_assert_cmpstr(hk_json_get_string(ok, HK_CERTD_KEY_USER), ==, "sindbad");

	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "sindbad", "wrong-pw-Qx", "password mismatch");
	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "sindbad", "correct horse batter",
	              "password mismatch");
	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "sindbad", "", "password mismatch");
	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "nobody", "wrong-pw-Qx", "unknown user");
	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "nobody@example.jp", "x", "unknown user");
	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "hindbad", "x", "no password set");
	/* the fax password is another one */
	assert_verify(fx, HK_CERTD_OP_FAX_VERIFY, "sindbad", "correct horse battery",
	              "no fax password set");
	{
		/* a NUL must not cut the comparison short */
		g_autoptr(json_object) result = NULL;
		g_autoptr(json_object) params = json_tokener_parse(
		        "{\"user\":\"sindbad\",\"password\":\"correct horse battery\\u0000x\"}");

		result = call(fx, HK_CERTD_OP_AUTH_VERIFY, params, NULL);
		g_assert_false(hk_json_get_bool(result, HK_CERTD_KEY_OK, TRUE));
	}

	verify_with_hankoctl(fx);
}

/* Unknown users and users without a password take as long as a wrong password. */
static void
test_verify_timing(Fixture *fx, gconstpointer data)
{
	gint64 known, unknown, no_password;

	add_user(fx, "sindbad", "s@example.jp");
	add_user(fx, "hindbad", "h@example.jp");
	set_password(fx, "sindbad", "correct horse battery");
	known = verify_time(fx, "sindbad", "wrong-pw-Qx");
	unknown = verify_time(fx, "nobody", "wrong-pw-Qx");
	no_password = verify_time(fx, "hindbad", "wrong-pw-Qx");
	g_test_message("auth.verify: wrong password %" G_GINT64_FORMAT
	               " us, unknown user %" G_GINT64_FORMAT " us, no password %" G_GINT64_FORMAT
	               " us",
	               known, unknown, no_password);
	g_assert_cmpint(unknown, >=, known / 2);
	g_assert_cmpint(no_password, >=, known / 2);
}

static void
test_passwd_bad_input(Fixture *fx, gconstpointer data)
{
	g_autofree char *long_pw = g_strnfill(512, 'x');
	g_autofree char *long_params =
	        g_strdup_printf("{\"name\":\"sindbad\",\"password\":\"%s\"}", long_pw);
	g_autofree char *max_params = NULL;
	g_autoptr(json_object) result = NULL;
	g_auto(Run) run = {0};

	add_user(fx, "sindbad", "s@example.jp");
	call_fails(fx, HK_CERTD_OP_USER_PASSWD, "{\"name\":\"sindbad\",\"password\":\"\"}",
	           HK_IPC_ERROR_INVALID_ARGUMENT, "the password must not be empty");
	call_fails(fx, HK_CERTD_OP_USER_PASSWD, "{\"name\":\"sindbad\",\"password\":\"a\\nb\"}",
	           HK_IPC_ERROR_INVALID_ARGUMENT, "must not contain a NUL, CR or LF");
	call_fails(fx, HK_CERTD_OP_USER_PASSWD, "{\"name\":\"sindbad\",\"password\":\"a\\rb\"}",
	           HK_IPC_ERROR_INVALID_ARGUMENT, "must not contain a NUL, CR or LF");
	call_fails(fx, HK_CERTD_OP_USER_PASSWD, "{\"name\":\"sindbad\",\"password\":\"a\\u0000b\"}",
	           HK_IPC_ERROR_INVALID_ARGUMENT, "must not contain a NUL, CR or LF");
	call_fails(fx, HK_CERTD_OP_USER_PASSWD, long_params, HK_IPC_ERROR_INVALID_ARGUMENT,
	           "longer than 511 bytes");
	call_fails(fx, HK_CERTD_OP_USER_PASSWD, "{\"name\":\"nobody\",\"password\":\"x\"}",
	           HK_IPC_ERROR_NOT_FOUND, "no user \"nobody\"");
	call_fails(fx, HK_CERTD_OP_USER_PASSWD, "{\"name\":\"sindbad\"}",
	           HK_IPC_ERROR_INVALID_ARGUMENT, "password");
	/* 511 bytes are fine (libxcrypt's limit) */
	long_pw[511] = '\0';
	max_params = g_strdup_printf("{\"name\":\"sindbad\",\"password\":\"%s\"}", long_pw);
	result = call_ok(fx, HK_CERTD_OP_USER_PASSWD, max_params);
	g_assert_true(hk_json_get_bool(result, HK_CERTD_KEY_HAS_PASSWORD, FALSE));
	/* hankoctl with nothing on stdin */
	ctl(&run, fx, "", "user", "passwd", "sindbad", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err, "the password must not be empty");
}

/* ----- user.set, fax.verify, user.lookup ----- */

static void
assert_flag(Fixture *fx, const char *name, const char *key, gboolean value)
{
	g_autofree char *params = g_strdup_printf("{\"name\":\"%s\"}", name);
	g_autoptr(json_object) user = call_ok(fx, HK_CERTD_OP_USER_LOOKUP, params);

	g_assert_cmpint(hk_json_get_bool(user, key, !value), ==, value);
}

static void
test_set(Fixture *fx, gconstpointer data)
{
	static const char *const yes[] = {"yes", "true", "on", "1", "YES", NULL};
	static const char *const no[] = {"no", "false", "off", "0", "Off", NULL};
	g_autoptr(HkIpcClient) watch = watch_start(fx);
	g_auto(Run) run = {0};

	add_user(fx, "sindbad", "s@example.jp");
	watch_expect(watch, HK_CERTD_EV_USER_CHANGED, HK_CERTD_KEY_NAME, "sindbad");
	for (guint i = 0; yes[i] != NULL; i++) {
		g_autofree char *on = g_strdup_printf("require_signature=%s", yes[i]);
		g_autofree char *off = g_strdup_printf("fax_allowed=%s", no[i]);

		ctl(&run, fx, NULL, "user", "set", "sindbad", on, NULL);
		assert_run_ok(&run);
		assert_flag(fx, "sindbad", HK_CERTD_KEY_REQUIRE_SIG, TRUE);
		ctl(&run, fx, NULL, "user", "set", "sindbad", "fax_allowed=yes", NULL);
		assert_flag(fx, "sindbad", HK_CERTD_KEY_FAX_ALLOWED, TRUE);
		ctl(&run, fx, NULL, "user", "set", "sindbad", off, NULL);
		assert_run_ok(&run);
		assert_flag(fx, "sindbad", HK_CERTD_KEY_FAX_ALLOWED, FALSE);
	}
	watch_expect(watch, HK_CERTD_EV_USER_CHANGED, HK_CERTD_KEY_NAME, "sindbad");

	ctl(&run, fx, NULL, "user", "set", "sindbad", "colour=blue", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err, "invalid_argument: unknown attribute \"colour\": use "
	                            "require_signature, fax_allowed or fax_password");
	ctl(&run, fx, NULL, "user", "set", "sindbad", "require_signature=maybe", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err, "\"maybe\" is not one of yes, no");
	ctl(&run, fx, NULL, "user", "set", "sindbad", "require_signature", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err, "is not KEY=VALUE");
	ctl(&run, fx, NULL, "user", "set", "nobody", "fax_allowed=yes", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err, "not_found: no user \"nobody\"");
	call_fails(fx, HK_CERTD_OP_USER_SET,
	           "{\"name\":\"sindbad\",\"key\":\"fax_password\",\"value\":\"x\"}",
	           HK_IPC_ERROR_INVALID_ARGUMENT, "as \"password\", not as \"value\"");
	call_fails(fx, HK_CERTD_OP_USER_SET, "{\"name\":\"sindbad\",\"key\":\"fax_allowed\"}",
	           HK_IPC_ERROR_INVALID_ARGUMENT, "fax_allowed takes a value");
}

static void
test_fax_password(Fixture *fx, gconstpointer data)
{
	g_auto(Run) run = {0};
	g_autofree char *hash = NULL;

	add_user(fx, "sindbad", "s@example.jp");
	assert_verify(fx, HK_CERTD_OP_FAX_VERIFY, "sindbad", "fax-secret-42",
	              "no fax password set");
	ctl(&run, fx, "fax-secret-42\n", "user", "set", "sindbad", "fax_password=-", NULL);
	assert_run_ok(&run);
	hk_assert_contains(run.out, "has_fax_password: true");
	hash = db_text(fx, "SELECT fax_password_hash FROM users WHERE name = 'sindbad'");
	g_assert_true(g_str_has_prefix(hash, "$y$"));
	assert_verify(fx, HK_CERTD_OP_FAX_VERIFY, "sindbad", "fax-secret-42", NULL);
	assert_verify(fx, HK_CERTD_OP_FAX_VERIFY, "s@example.jp", "fax-secret-42", NULL);
	assert_verify(fx, HK_CERTD_OP_FAX_VERIFY, "sindbad", "wrong-pw-Qx", "password mismatch");
	assert_verify(fx, HK_CERTD_OP_FAX_VERIFY, "nobody", "fax-secret-42", "unknown user");
	/* it is not the login password */
	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "sindbad", "fax-secret-42", "no password set");
	ctl(&run, fx, "", "user", "set", "sindbad", "fax_password=-", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err, "the fax password must not be empty");
	/* an empty value clears it */
	ctl(&run, fx, NULL, "user", "set", "sindbad", "fax_password=", NULL);
	assert_run_ok(&run);
	hk_assert_contains(run.out, "has_fax_password: false");
	assert_verify(fx, HK_CERTD_OP_FAX_VERIFY, "sindbad", "fax-secret-42",
	              "no fax password set");
}

static void
test_lookup(Fixture *fx, gconstpointer data)
{
	g_autoptr(json_object) by_name = NULL;
	g_autoptr(json_object) by_email = NULL;
	g_auto(Run) run = {0};

	add_user(fx, "sindbad", "s@example.jp,sailor@example.jp");
	ctl(&run, fx, NULL, "user", "set", "sindbad", "require_signature=yes", NULL);
	assert_run_ok(&run);
	by_name = call_ok(fx, HK_CERTD_OP_USER_LOOKUP, "{\"name\":\"sindbad\"}");
	by_email = call_ok(fx, HK_CERTD_OP_USER_LOOKUP, "{\"email\":\"Sailor@EXAMPLE.jp\"}");
	g_assert_true(json_object_equal(by_name, by_email));
	g_assert_cmpstr(hk_json_get_string(by_name, HK_CERTD_KEY_NAME), ==, "sindbad");
	g_assert_true(hk_json_get_bool(by_name, HK_CERTD_KEY_REQUIRE_SIG, FALSE));
	g_assert_false(hk_json_get_bool(by_name, HK_CERTD_KEY_FAX_ALLOWED, TRUE));
	g_assert_false(hk_json_get_bool(by_name, HK_CERTD_KEY_HAS_FAX_PASSWORD, TRUE));
	g_assert_cmpint(json_object_array_length(json_object_object_get(by_name, "emails")), ==, 2);
	/* nothing a service does not need */
	g_assert_false(json_object_object_get_ex(by_name, HK_CERTD_KEY_HAS_PASSWORD, NULL));
	call_fails(fx, HK_CERTD_OP_USER_LOOKUP, "{\"name\":\"nobody\"}", HK_IPC_ERROR_NOT_FOUND,
	           "no user");
	call_fails(fx, HK_CERTD_OP_USER_LOOKUP, "{\"email\":\"x@example.jp\"}",
	           HK_IPC_ERROR_NOT_FOUND, "no user");
	call_fails(fx, HK_CERTD_OP_USER_LOOKUP, "{}", HK_IPC_ERROR_INVALID_ARGUMENT,
	           "exactly one of name and email");
	call_fails(fx, HK_CERTD_OP_USER_LOOKUP, "{\"name\":\"sindbad\",\"email\":\"s@example.jp\"}",
	           HK_IPC_ERROR_INVALID_ARGUMENT, "exactly one of name and email");
}

/* ----- user.list, user.show, user.del ----- */

static void
test_list_show(Fixture *fx, gconstpointer data)
{
	g_autoptr(json_object) list = NULL;
	g_autoptr(json_object) show = NULL;
	json_object *certs;
	g_auto(Run) run = {0};

	add_user(fx, "sindbad", "s@example.jp");
	add_user(fx, "aladdin", "a@example.jp");
	set_password(fx, "aladdin", "correct horse battery");
	insert_client_cert(fx, "sindbad", "AA01", "s@example.jp", "both", "valid", 86400, NULL);
	insert_client_cert(fx, "sindbad", "AA02", "s@example.jp", "both", "valid", -86400, NULL);
	insert_client_cert(fx, "sindbad", "AA03", "s@example.jp", "both", "revoked", 86400, NULL);

	list = call_ok(fx, HK_CERTD_OP_USER_LIST, NULL);
	g_assert_cmpint(json_object_array_length(json_object_object_get(list, "users")), ==, 2);
	ctl(&run, fx, NULL, "user", "list", NULL);
	assert_run_ok(&run);
	hk_assert_contains(run.out, "NAME");
	g_assert_true(g_regex_match_simple("aladdin +yes +no +no +a@example.jp", run.out, 0, 0));
	g_assert_true(g_regex_match_simple("sindbad +no +no +no +s@example.jp", run.out, 0, 0));
	g_assert_cmpint(strstr(run.out, "aladdin") - strstr(run.out, "sindbad"), <, 0);

	show = call_ok(fx, HK_CERTD_OP_USER_SHOW, "{\"name\":\"sindbad\"}");
	certs = json_object_object_get(show, HK_CERTD_KEY_CERTS);
	g_assert_cmpint(json_object_array_length(certs), ==, 3);
	g_assert_cmpstr(hk_json_get_string(json_object_array_get_idx(certs, 0), "status"), ==,
	                "valid");
	g_assert_cmpstr(hk_json_get_string(json_object_array_get_idx(certs, 1), "status"), ==,
	                "expired");
	g_assert_cmpstr(hk_json_get_string(json_object_array_get_idx(certs, 2), "status"), ==,
	                "revoked");
	g_assert_nonnull(hk_json_get_string(show, HK_CERTD_KEY_CREATED));
	ctl(&run, fx, NULL, "user", "show", "sindbad", NULL);
	assert_run_ok(&run);
	hk_assert_contains(run.out, "certificates:");
	hk_assert_contains(run.out, "AA02  expired");
	ctl(&run, fx, NULL, "user", "show", "nobody", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err, "not_found: no user \"nobody\"");
}

static void
test_del(Fixture *fx, gconstpointer data)
{
	g_autoptr(HkIpcClient) watch = NULL;
	g_autofree char *owner = NULL;
	g_autofree char *emails = NULL;
	g_auto(Run) run = {0};

	add_user(fx, "sindbad", "s@example.jp");
	insert_client_cert(fx, "sindbad", "BB01", "s@example.jp", "both", "valid", 86400, NULL);
	insert_client_cert(fx, "sindbad", "BB02", "s@example.jp", "both", "valid", -86400, NULL);
	watch = watch_start(fx);
	ctl(&run, fx, NULL, "user", "del", "sindbad", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err, "conflict: user \"sindbad\" still has 1 valid certificate(s) "
	                            "(serial BB01): revoke them first with \"hankoctl cert "
	                            "revoke SERIAL\"");
	db_exec(fx, "UPDATE certs SET status = 'revoked' WHERE serial = 'BB01'");
	ctl(&run, fx, NULL, "user", "del", "sindbad", NULL);
	assert_run_ok(&run);
	hk_assert_contains(run.out, "user sindbad deleted");
	watch_expect(watch, HK_CERTD_EV_USER_CHANGED, HK_CERTD_KEY_NAME, "sindbad");
	/* addresses go with the user; certificates stay, without an owner */
	emails = db_text(fx, "SELECT count(*) FROM user_emails");
	g_assert_cmpstr(emails, ==, "0");
	owner = db_text(fx, "SELECT user_id FROM certs WHERE serial = 'BB01'");
	g_assert_null(owner);
	ctl(&run, fx, NULL, "user", "del", "sindbad", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err, "not_found");
	/* the address is free again */
	add_user(fx, "hindbad", "s@example.jp");
}

/* ----- user.import ----- */

/* Runs a tool that makes a password hash; a missing tool fails the test, naming its
 * Debian package. */
static char *
make_hash(const char *package, const char *input, const char *program, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autofree char *path = g_find_program_in_path(program);
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	const char *arg;
	va_list args;
	int status;

	if (path == NULL)
		g_error("%s not found: install the Debian package %s (contrib/scripts/"
		        "install-deps.sh does)",
		        program, package);
	g_ptr_array_add(argv, path);
	va_start(args, program);
	while ((arg = va_arg(args, const char *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(args);
	g_ptr_array_add(argv, NULL);
	status = hk_test_runv(input, &out, &err, (const char *const *)argv->pdata);
	if (status != 0)
		g_error("%s failed (%d): %s", program, status, err);
	return g_strdup(g_strstrip(out));
}

static char *
passwd_file(void)
{
	g_autofree char *h6 =
	        make_hash("openssl", NULL, "openssl", "passwd", "-6", "pw-sha512-Qx", NULL);
	g_autofree char *h5 =
	        make_hash("openssl", NULL, "openssl", "passwd", "-5", "pw-sha256-Qx", NULL);
	g_autofree char *h1 =
	        make_hash("openssl", NULL, "openssl", "passwd", "-1", "pw-md5-Qx", NULL);
	g_autofree char *hb =
	        make_hash("whois", "pw-bcrypt-Qx\n", "mkpasswd", "-m", "bcrypt", "-s", NULL);
	g_autofree char *hy =
	        make_hash("whois", "pw-yes-Qx\n", "mkpasswd", "-m", "yescrypt", "-s", NULL);
	g_autofree char *hd =
	        make_hash("whois", "pw-des-Q\n", "mkpasswd", "-m", "descrypt", "-s", NULL);

	return g_strdup_printf(
	        "# a Dovecot passwd-file\r\n"
	        "u6:{SHA512-CRYPT}%s:1000:1000::/home/u6::userdb_mail=maildir:~/Maildir\r\n"
	        "u5@example.org:{SHA256-CRYPT}%s:::::\n"
	        "u1:{MD5-CRYPT}%s\n"
	        "ub:{BLF-CRYPT}%s::::::userdb_mail=ub@example.org\n"
	        "uy:%s\n"
	        "ud:{CRYPT}%s\n"
	        "\n"
	        "   # indented comment\n"
	        "up:{PLAIN}plain pw Qx:::::\n"
	        "uc:{cleartext}clear-pw-Qx::::::mail=uc@example.org quota_rule=*:storage=1G\n"
	        "bad1:{SSHA}c2VjcmV0\n"
	        "bad2:{SHA512-CRYPT}%s\n"
	        "wrong-pw-Qx\n"
	        "-bad4:{PLAIN}x\n"
	        "bad5:{PLAIN}\n"
	        "bad6:nohash\n"
	        "ub2:{PLAIN}x::::::mail=UB@example.org\n"
	        "bad8:{PLAIN\n"
	        "nopw:\n",
	        h6, h5, h1, hb, hy, hd, h5);
}

static void
assert_import_errors(json_object *result)
{
	static const struct {
		int line;
		const char *message;
	} expected[] = {
	        {12, "unsupported password scheme {SSHA}"},
	        {13, "does not start with $6$"},
	        {14, "expected user:password"},
	        {15, "must not start with \"-\""},
	        {16, "the {PLAIN} password must not be empty"},
	        {17, "not of a kind crypt(3) can check"},
	        {18, "the address \"UB@example.org\" already belongs to user \"ub\""},
	        {19, "no {SCHEME}"},
	};
	json_object *errors = json_object_object_get(result, HK_CERTD_KEY_ERRORS);

	g_assert_cmpint(json_object_array_length(errors), ==, G_N_ELEMENTS(expected));
	for (guint i = 0; i < G_N_ELEMENTS(expected); i++) {
		json_object *e = json_object_array_get_idx(errors, i);

		g_assert_cmpint(hk_json_get_int(e, HK_CERTD_KEY_LINE, 0), ==, expected[i].line);
		hk_assert_contains(hk_json_get_string(e, HK_CERTD_KEY_MESSAGE),
		                   expected[i].message);
	}
}

static void
assert_imported_logins(Fixture *fx)
{
	static const char *const logins[][2] = {
	        {"u6", "pw-sha512-Qx"},
	        {"u5@example.org", "pw-sha256-Qx"},
	        {"u1", "pw-md5-Qx"},
	        {"ub", "pw-bcrypt-Qx"},
	        {"ub@example.org", "pw-bcrypt-Qx"},
	        {"uy", "pw-yes-Qx"},
	        {"ud", "pw-des-Q"},
	        {"up", "plain pw Qx"},
	        {"uc", "clear-pw-Qx"},
	        {"uc@example.org", "clear-pw-Qx"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(logins); i++) {
		assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, logins[i][0], logins[i][1], NULL);
		assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, logins[i][0], "wrong-pw-Qx",
		              "password mismatch");
	}
	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "nopw", "x", "no password set");
	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "bad1", "x", "unknown user");
}

static void
test_import(Fixture *fx, gconstpointer data)
{
	g_autofree char *content = passwd_file();
	g_autofree char *file = g_build_filename(fx->certd->dir, "passwd", NULL);
	g_autofree char *plain = NULL;
	g_autofree char *u6 = NULL;
	g_autoptr(json_object) result = NULL;
	g_autoptr(json_object) params = json_object_new_object();
	g_auto(Run) run = {0};

	g_assert_true(g_file_set_contents(file, content, -1, NULL));
	ctl(&run, fx, NULL, "user", "import", file, NULL);
	g_assert_cmpint(run.status, ==, 1); /* some lines were refused */
	hk_assert_contains(run.out, "added: 9, updated: 0, unchanged: 0, refused: 8");
	hk_assert_contains(run.err, "line 12: unsupported password scheme {SSHA}");
	assert_imported_logins(fx);

	/* crypt hashes are stored as they came, {PLAIN} ones hashed with yescrypt */
	u6 = db_text(fx, "SELECT password_hash FROM users WHERE name = 'u6'");
	g_assert_true(g_str_has_prefix(u6, "$6$"));
	plain = db_text(fx, "SELECT password_hash FROM users WHERE name = 'up'");
	g_assert_true(g_str_has_prefix(plain, "$y$"));
	g_assert_null(strstr(plain, "plain pw"));
	/* a mail location is not an address */
	g_assert_null(db_text(fx, "SELECT email FROM user_emails WHERE email LIKE '%Maildir%'"));

	/* again, through the socket: nothing changes, the same lines are refused */
	json_object_object_add(params, HK_CERTD_KEY_PASSWD_FILE, json_object_new_string(content));
	result = call(fx, HK_CERTD_OP_USER_IMPORT, params, NULL);
	g_assert_nonnull(result);
	g_assert_cmpint(hk_json_get_int(result, HK_CERTD_KEY_ADDED, -1), ==, 0);
	g_assert_cmpint(hk_json_get_int(result, HK_CERTD_KEY_UPDATED, -1), ==, 0);
	g_assert_cmpint(hk_json_get_int(result, HK_CERTD_KEY_SKIPPED, -1), ==, 9);
	assert_import_errors(result);
	for (guint i = 0; secrets[i] != NULL; i++)
		g_assert_null(strstr(json_object_to_json_string(result), secrets[i]));
}

static void
test_import_update(Fixture *fx, gconstpointer data)
{
	g_autofree char *h6 =
	        make_hash("openssl", NULL, "openssl", "passwd", "-6", "pw-sha512-Qx", NULL);
	g_autofree char *content =
	        g_strdup_printf("sindbad:{SHA512-CRYPT}%s::::::userdb_mail=new@example.jp\n"
	                        "aladdin:{PLAIN}correct horse battery\n",
	                        h6);
	g_autoptr(HkIpcClient) watch = NULL;
	g_auto(Run) run = {0};

	add_user(fx, "sindbad", "s@example.jp");
	add_user(fx, "aladdin", "a@example.jp");
	set_password(fx, "aladdin", "correct horse battery");
	watch = watch_start(fx);
	ctl(&run, fx, content, "user", "import", "-", NULL);
	assert_run_ok(&run);
	/* aladdin's stored hash already matches: left alone */
	hk_assert_contains(run.out, "added: 0, updated: 1, unchanged: 1, refused: 0");
	watch_expect(watch, HK_CERTD_EV_USER_CHANGED, HK_CERTD_KEY_NAME, "sindbad");
	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "new@example.jp", "pw-sha512-Qx", NULL);
	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "s@example.jp", "pw-sha512-Qx", NULL);
	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "aladdin", "correct horse battery", NULL);
	/* an empty file is fine */
	ctl(&run, fx, "# nothing\n", "user", "import", "-", NULL);
	assert_run_ok(&run);
	hk_assert_contains(run.out, "added: 0, updated: 0, unchanged: 0, refused: 0");
}

/* ----- S/MIME recipient certificates ----- */

typedef struct {
	const char *key;   /* "EC", "RSA", "ED25519" */
	const char *san;   /* "email:a@b" or NULL */
	const char *email; /* subject emailAddress or NULL */
	const char *eku;   /* or NULL */
	const char *ku;    /* or NULL */
	long from_days;    /* notBefore, days from now */
	long to_days;      /* notAfter */
} CertSpec;

static X509 *
make_x509(const CertSpec *spec, EVP_PKEY *key)
{
	g_autoptr(X509) cert = X509_new();
	X509_NAME *name = X509_get_subject_name(cert);
	g_autoptr(GError) error = NULL;

	X509_set_version(cert, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), g_random_int_range(1, G_MAXINT32));
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const guchar *)"Test", -1, -1, 0);
	if (spec->email != NULL)
		X509_NAME_add_entry_by_NID(name, NID_pkcs9_emailAddress, MBSTRING_ASC,
		                           (const guchar *)spec->email, -1, -1, 0);
	X509_set_issuer_name(cert, name);
	X509_set_pubkey(cert, key);
	X509_gmtime_adj(X509_getm_notBefore(cert), spec->from_days * 86400);
	X509_gmtime_adj(X509_getm_notAfter(cert), spec->to_days * 86400);
	if ((spec->san &&
	     !certd_cert_add_ext(cert, NULL, NID_subject_alt_name, spec->san, &error)) ||
	    (spec->eku && !certd_cert_add_ext(cert, NULL, NID_ext_key_usage, spec->eku, &error)) ||
	    (spec->ku && !certd_cert_add_ext(cert, NULL, NID_key_usage, spec->ku, &error)))
		g_error("%s", error->message);
	g_assert_cmpint(
	        X509_sign(cert, key, g_str_equal(spec->key, "ED25519") ? NULL : EVP_sha256()), >,
	        0);
	return g_steal_pointer(&cert);
}

static char *
make_cert(const CertSpec *spec)
{
	g_autoptr(EVP_PKEY) key = NULL;
	g_autoptr(X509) cert = NULL;

	if (g_str_equal(spec->key, "RSA"))
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else if (g_str_equal(spec->key, "EC"))
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else
		key = EVP_PKEY_Q_keygen(NULL, NULL, spec->key);
	g_assert_nonnull(key);
	cert = make_x509(spec, key);
	return certd_cert_to_pem(cert);
}

static json_object *
smime_register(Fixture *fx, const char *email, const char *pem, GError **error)
{
	g_autoptr(json_object) params = json_object_new_object();

	json_object_object_add(params, HK_CERTD_KEY_EMAIL, json_object_new_string(email));
	json_object_object_add(params, HK_CERTD_KEY_CERT_PEM, json_object_new_string(pem));
	return call(fx, HK_CERTD_OP_SMIME_REGISTER, params, error);
}

static void
test_smime_refused(Fixture *fx, gconstpointer data)
{
	static const struct {
		CertSpec spec;
		const char *message;
	} cases[] = {
	        {{"EC", "email:bob@example.org", NULL, NULL, NULL, -2, -1},
	         "the certificate expired on"},
	        {{"EC", "email:bob@example.org", NULL, NULL, NULL, 1, 30},
	         "the certificate is not valid before"},
	        {{"EC", "email:carol@example.org", "bob@example.org", NULL, NULL, 0, 30},
	         "the certificate is not for bob@example.org"},
	        {{"EC", NULL, "carol@example.org", NULL, NULL, 0, 30},
	         "the certificate is not for bob@example.org"},
	        {{"EC", "email:bob@example.org", NULL, "clientAuth", NULL, 0, 30},
	         "extendedKeyUsage does not include emailProtection"},
	        {{"ED25519", "email:bob@example.org", NULL, NULL, NULL, 0, 30},
	         "mail can be encrypted to RSA or EC keys only"},
	        {{"EC", "email:bob@example.org", NULL, NULL, "digitalSignature", 0, 30},
	         "does not allow keyAgreement"},
	        {{"RSA", "email:bob@example.org", NULL, NULL, "digitalSignature", 0, 30},
	         "does not allow keyEncipherment"},
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) result = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *pem = make_cert(&cases[i].spec);

		result = smime_register(fx, "bob@example.org", pem, &error);
		if (result != NULL)
			g_error("case %u (%s) was accepted", i, cases[i].message);
		g_assert_error(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT);
		hk_assert_contains(error->message, cases[i].message);
		g_clear_error(&error);
	}
	result = smime_register(fx, "bob@example.org",
	                        "-----BEGIN CERTIFICATE-----\nnonsense\n"
	                        "-----END CERTIFICATE-----\n",
	                        &error);
	g_assert_error(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT);
	hk_assert_contains(error->message, "cert_pem is not a PEM certificate: ");
	g_clear_error(&error);
	result = smime_register(fx, "bob@example.org", "garbage", &error);
	g_assert_error(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT);
	hk_assert_contains(error->message, "cert_pem is not a PEM certificate");
	g_clear_error(&error);
	result = smime_register(fx, "not-an-address", "garbage", &error);
	g_assert_error(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT);
	hk_assert_contains(error->message, "is not a valid e-mail address");
	g_clear_error(&error);
	call_fails(fx, HK_CERTD_OP_SMIME_LOOKUP, "{\"email\":\"bob@example.org\"}",
	           HK_IPC_ERROR_NOT_FOUND, "no valid S/MIME certificate for bob@example.org");
}

/* openssl makes the certificate, hankoctl registers it and gets it back, and openssl
 * encrypts to what came back and decrypts with the key. */
static void
test_smime_openssl(Fixture *fx, gconstpointer data)
{
	g_autofree char *key = g_build_filename(fx->certd->dir, "bob.key", NULL);
	g_autofree char *cert = g_build_filename(fx->certd->dir, "bob.pem", NULL);
	g_autofree char *back = g_build_filename(fx->certd->dir, "back.pem", NULL);
	g_autofree char *enc = g_build_filename(fx->certd->dir, "msg.p7m", NULL);
	g_autofree char *fp = NULL;
	g_autofree char *out = NULL;
	g_autoptr(HkIpcClient) watch = watch_start(fx);
	g_auto(Run) run = {0};

	g_assert_cmpint(hk_test_run(NULL, NULL, NULL, "openssl", "req", "-x509", "-newkey", "ec",
	                            "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
	                            "-out", cert, "-days", "30", "-subj", "/CN=Bob", "-addext",
	                            "subjectAltName=email:Bob@Example.org", "-addext",
	                            "extendedKeyUsage=emailProtection", NULL),
	                ==, 0);
	ctl(&run, fx, NULL, "smime", "register", "bob@example.org", cert, NULL);
	assert_run_ok(&run);
	hk_assert_contains(run.out, "email: bob@example.org");
	watch_expect(watch, HK_CERTD_EV_SMIME_CHANGED, HK_CERTD_KEY_EMAIL, "bob@example.org");
	ctl(&run, fx, NULL, "smime", "show", "BOB@EXAMPLE.ORG", "-o", back, NULL);
	assert_run_ok(&run);
	g_assert_cmpint(hk_test_run(NULL, &fp, NULL, "openssl", "x509", "-in", back, "-noout",
	                            "-fingerprint", "-sha256", NULL),
	                ==, 0);
	{
		const char *line = strstr(run.out, "fingerprint: ") + strlen("fingerprint: ");
		g_autofree char *ours = g_strndup(line, strcspn(line, "\n"));

		hk_assert_contains(fp, ours);
	}
	g_assert_cmpint(hk_test_run("hello bob\n", NULL, NULL, "openssl", "cms", "-encrypt",
	                            "-aes256", "-recip", back, "-out", enc, NULL),
	                ==, 0);
	g_assert_cmpint(hk_test_run(NULL, &out, NULL, "openssl", "cms", "-decrypt", "-in", enc,
	                            "-inkey", key, "-recip", back, NULL),
	                ==, 0);
	hk_assert_contains(out, "hello bob");

	ctl(&run, fx, NULL, "smime", "unregister", "bob@example.org", NULL);
	assert_run_ok(&run);
	watch_expect(watch, HK_CERTD_EV_SMIME_CHANGED, HK_CERTD_KEY_EMAIL, "bob@example.org");
	ctl(&run, fx, NULL, "smime", "unregister", "bob@example.org", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err, "not_found: no S/MIME certificate is registered for "
	                            "bob@example.org");
	ctl(&run, fx, NULL, "smime", "show", "bob@example.org", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err, "not_found");
}

static const char *
lookup_fingerprint(Fixture *fx, const char *email, json_object **keep)
{
	g_autofree char *params = g_strdup_printf("{\"email\":\"%s\"}", email);

	*keep = call_ok(fx, HK_CERTD_OP_SMIME_LOOKUP, params);
	return hk_json_get_string(*keep, HK_CERTD_KEY_FINGERPRINT);
}

static void
test_smime_upsert_and_issued(Fixture *fx, gconstpointer data)
{
	const CertSpec rsa = {"RSA", NULL, "bob@example.org", "emailProtection", NULL, 0, 30};
	const CertSpec ec = {"EC", "email:bob@example.org", NULL, NULL, NULL, 0, 30};
	const CertSpec issued = {"EC", "email:sindbad@example.jp", NULL, NULL, NULL, 0, 30};
	g_autofree char *rsa_pem = make_cert(&rsa);
	g_autofree char *ec_pem = make_cert(&ec);
	g_autofree char *issued_pem = make_cert(&issued);
	g_autoptr(json_object) first = NULL;
	g_autoptr(json_object) second = NULL;
	g_autoptr(json_object) a = NULL;
	g_autoptr(json_object) b = NULL;
	g_autoptr(json_object) c = NULL;
	g_autoptr(GError) error = NULL;

	/* register, then replace: one certificate per address */
	first = smime_register(fx, "bob@example.org", rsa_pem, &error);
	g_assert_no_error(error);
	second = smime_register(fx, "Bob@Example.org", ec_pem, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(lookup_fingerprint(fx, "bob@example.org", &a), ==,
	                hk_json_get_string(second, HK_CERTD_KEY_FINGERPRINT));
	g_assert_cmpstr(hk_json_get_string(a, HK_CERTD_KEY_CERT_PEM), ==, ec_pem);
	g_assert_nonnull(hk_json_get_string(a, HK_CERTD_KEY_NOT_AFTER));

	/* none registered: a valid hanko-issued S/MIME certificate answers */
	add_user(fx, "sindbad", "sindbad@example.jp");
	insert_client_cert(fx, "sindbad", "CC01", "sindbad@example.jp", "client", "valid", 86400,
	                   "not this one");
	insert_client_cert(fx, "sindbad", "CC02", "sindbad@example.jp", "both", "revoked", 86400,
	                   "not this one");
	insert_client_cert(fx, "sindbad", "CC03", "sindbad@example.jp", "smime", "valid", -60,
	                   "not this one");
	call_fails(fx, HK_CERTD_OP_SMIME_LOOKUP, "{\"email\":\"sindbad@example.jp\"}",
	           HK_IPC_ERROR_NOT_FOUND, "no valid S/MIME certificate");
	insert_client_cert(fx, "sindbad", "CC04", "sindbad@example.jp", "smime", "valid", 86400,
	                   issued_pem);
	g_assert_cmpstr(lookup_fingerprint(fx, "SINDBAD@example.jp", &b), ==, "FP:CC04");
	g_assert_cmpstr(hk_json_get_string(b, HK_CERTD_KEY_CERT_PEM), ==, issued_pem);
	/* a registered one comes first */
	g_clear_pointer(&first, json_object_put);
	first = smime_register(fx, "sindbad@example.jp", issued_pem, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(lookup_fingerprint(fx, "sindbad@example.jp", &c), ==,
	                hk_json_get_string(first, HK_CERTD_KEY_FINGERPRINT));
}

/* With certificates hanko-certd issued itself (cert issue --user): user.show lists them,
 * user.del waits for their revocation, smime.lookup falls back to them. */
static void
test_issued_certs(Fixture *fx, gconstpointer data)
{
	g_autoptr(json_object) lookup = NULL;
	g_autoptr(json_object) show = NULL;
	g_auto(Run) run = {0};
	const char *serial;

	hk_test_certd_ca_init(fx->certd);
	add_user(fx, "sindbad", "s@example.jp");
	ctl(&run, fx, NULL, "cert", "issue", "--cn", "Sindbad the Sailor", "--email",
	    "s@example.jp", "--key", "ec:p256", "--user", "sindbad", "--profile", "smime", NULL);
	assert_run_ok(&run);
	show = call_ok(fx, HK_CERTD_OP_USER_SHOW, "{\"name\":\"sindbad\"}");
	serial = hk_json_get_string(
	        json_object_array_get_idx(json_object_object_get(show, HK_CERTD_KEY_CERTS), 0),
	        HK_CERTD_KEY_SERIAL);
	g_assert_nonnull(serial);
	lookup = call_ok(fx, HK_CERTD_OP_SMIME_LOOKUP, "{\"email\":\"S@example.jp\"}");
	hk_assert_contains(hk_json_get_string(lookup, HK_CERTD_KEY_CERT_PEM),
	                   "-----BEGIN CERTIFICATE-----");
	hk_assert_contains(run.out, hk_json_get_string(lookup, HK_CERTD_KEY_FINGERPRINT));

	ctl(&run, fx, NULL, "user", "del", "sindbad", NULL);
	g_assert_cmpint(run.status, ==, 1);
	hk_assert_contains(run.err, serial);
	ctl(&run, fx, NULL, "cert", "revoke", serial, NULL);
	assert_run_ok(&run);
	call_fails(fx, HK_CERTD_OP_SMIME_LOOKUP, "{\"email\":\"s@example.jp\"}",
	           HK_IPC_ERROR_NOT_FOUND, "no valid S/MIME certificate");
	ctl(&run, fx, NULL, "user", "del", "sindbad", NULL);
	assert_run_ok(&run);
}

/* ----- audit, roles ----- */

static void
test_audit(Fixture *fx, gconstpointer data)
{
	static const char *const expected[] = {
	        "user.add sindbad ok",
	        "user.add sindbad conflict: user \"sindbad\" already exists",
	        "user.passwd sindbad ok",
	        "user.set sindbad ok",
	        "user.import - ok",
	        "user.del sindbad ok",
	        NULL,
	};
	g_auto(Run) run = {0};

	add_user(fx, "sindbad", "s@example.jp");
	ctl(&run, fx, NULL, "user", "add", "sindbad", "--email", "t@example.jp", NULL);
	set_password(fx, "sindbad", "correct horse battery");
	ctl(&run, fx, "fax-secret-42\n", "user", "set", "sindbad", "fax_password=-", NULL);
	assert_run_ok(&run);
	ctl(&run, fx, "sindbad:{PLAIN}correct horse battery\n", "user", "import", "-", NULL);
	assert_run_ok(&run);
	assert_verify(fx, HK_CERTD_OP_AUTH_VERIFY, "sindbad", "correct horse battery", NULL);
	ctl(&run, fx, NULL, "user", "del", "sindbad", NULL);
	assert_run_ok(&run);

	ctl(&run, fx, NULL, "audit", NULL);
	assert_run_ok(&run);
	for (guint i = 0; expected[i] != NULL; i++)
		hk_assert_contains(run.out, expected[i]);
	/* lookups and checks are not changes */
	g_assert_null(strstr(run.out, "auth.verify"));
}

static void
drop_to_nobody(gpointer data)
{
	if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
		_exit(126);
}

/* Runs hankoctl -s SOCKET ARGS... as nobody:nogroup. */
static G_GNUC_NULL_TERMINATED int
ctl_as_nobody(Fixture *fx, const char *input, char **out, char **err, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(
	        G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
	        G_SUBPROCESS_FLAGS_STDERR_PIPE);
	g_autoptr(GSubprocess) proc = NULL;
	const char *arg;
	va_list args;

	g_ptr_array_add(argv, (gpointer)HK_TEST_CTL_BIN);
	g_ptr_array_add(argv, (gpointer) "-s");
	g_ptr_array_add(argv, fx->certd->socket);
	va_start(args, err);
	while ((arg = va_arg(args, const char *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(args);
	g_ptr_array_add(argv, NULL);
	g_subprocess_launcher_set_child_setup(launcher, drop_to_nobody, NULL, NULL);
	proc = g_subprocess_launcher_spawnv(launcher, (const char *const *)argv->pdata, &error);
	g_assert_no_error(error);
	g_subprocess_communicate_utf8(proc, input ? input : "", NULL, out, err, &error);
	g_assert_no_error(error);
	return g_subprocess_get_exit_status(proc);
}

static void
test_service_role(Fixture *fx, gconstpointer data)
{
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;

	if (getuid() != 0) {
		g_test_skip("needs root to run hankoctl as nobody");
		return;
	}
	g_assert_cmpint(chmod(fx->certd->dir, 0711), ==, 0); /* nobody may reach the socket */
	add_user(fx, "sindbad", "s@example.jp");
	set_password(fx, "sindbad", "nobody-pw-Qx");

	g_assert_cmpint(ctl_as_nobody(fx, NULL, &out, &err, "ping", NULL), ==, 0);
	hk_assert_contains(out, "your roles: public, service)");
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(
	        ctl_as_nobody(fx, "nobody-pw-Qx\n", &out, &err, "user", "verify", "sindbad", NULL),
	        ==, 0);
	hk_assert_contains(out, "ok: sindbad");
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(ctl_as_nobody(fx, NULL, &out, &err, "call", "user.lookup",
	                              "{\"email\":\"s@example.jp\"}", NULL),
	                ==, 0);
	hk_assert_contains(out, "\"sindbad\"");
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(ctl_as_nobody(fx, NULL, &out, &err, "user", "list", NULL), ==, 1);
	hk_assert_contains(err, "permission_denied");
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);
	g_assert_cmpint(ctl_as_nobody(fx, "x\n", &out, &err, "user", "passwd", "sindbad", NULL), ==,
	                1);
	hk_assert_contains(err, "permission_denied");
}

int
main(int argc, char **argv)
{
	static const char service_conf[] = "socket_mode = 0666\nservice_group = nogroup\n";

	g_test_init(&argc, &argv, NULL);
	g_test_add("/certd-users/add", Fixture, NULL, fixture_setup, test_add, fixture_teardown);
	g_test_add("/certd-users/add-bad-input", Fixture, NULL, fixture_setup, test_add_bad_input,
	           fixture_teardown);
	g_test_add("/certd-users/passwd-verify", Fixture, NULL, fixture_setup, test_passwd_verify,
	           fixture_teardown);
	g_test_add("/certd-users/verify-timing", Fixture, NULL, fixture_setup, test_verify_timing,
	           fixture_teardown);
	g_test_add("/certd-users/passwd-bad-input", Fixture, NULL, fixture_setup,
	           test_passwd_bad_input, fixture_teardown);
	g_test_add("/certd-users/set", Fixture, NULL, fixture_setup, test_set, fixture_teardown);
	g_test_add("/certd-users/fax-password", Fixture, NULL, fixture_setup, test_fax_password,
	           fixture_teardown);
	g_test_add("/certd-users/lookup", Fixture, NULL, fixture_setup, test_lookup,
	           fixture_teardown);
	g_test_add("/certd-users/list-show", Fixture, NULL, fixture_setup, test_list_show,
	           fixture_teardown);
	g_test_add("/certd-users/del", Fixture, NULL, fixture_setup, test_del, fixture_teardown);
	g_test_add("/certd-users/import", Fixture, NULL, fixture_setup, test_import,
	           fixture_teardown);
	g_test_add("/certd-users/import-update", Fixture, NULL, fixture_setup, test_import_update,
	           fixture_teardown);
	g_test_add("/certd-users/smime-refused", Fixture, NULL, fixture_setup, test_smime_refused,
	           fixture_teardown);
	g_test_add("/certd-users/smime-openssl", Fixture, NULL, fixture_setup, test_smime_openssl,
	           fixture_teardown);
	g_test_add("/certd-users/smime-upsert-issued", Fixture, NULL, fixture_setup,
	           test_smime_upsert_and_issued, fixture_teardown);
	g_test_add("/certd-users/issued-certs", Fixture, NULL, fixture_setup, test_issued_certs,
	           fixture_teardown);
	g_test_add("/certd-users/audit", Fixture, NULL, fixture_setup, test_audit,
	           fixture_teardown);
	g_test_add("/certd-users/service-role", Fixture, service_conf, fixture_setup,
	           test_service_role, fixture_teardown);
	return g_test_run();
}
