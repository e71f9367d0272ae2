/*
 * test-certd-client: client and S/MIME certificates (cert.issue, list, show, p12, revoke,
 * lookup) through the built hanko-certd and hankoctl, checked with the tools that consume
 * them: openssl verify/x509/pkcs12/crl and NSS pk12util.
 *
 * Each test gets its own certd with a fresh CA in a temporary directory (hk-test-certd).
 * Users and server-certificate rows, which other parts of certd own, are put straight into
 * the database so these tests depend on nothing but certd-client.c.
 * Talks to: hanko-certd, hankoctl, openssl, certutil and pk12util (libnss3-tools).
 * Must never: skip a check because a tool is missing; it fails and says what to install.
 */
#include "certd.h"
#include "hk-certd-proto.h"
#include "hk-json.h"
#include "hk-test-certd.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PASSWORD_ALPHABET "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789"

typedef struct {
	HkTestCertd *certd;
	char *ca_pem; /* the CA certificate, exported with hankoctl */
	guint files;  /* for unique file names */
} Fx;

/* ----- running programs ----- */

static GPtrArray *
argv_new(const char *first, va_list ap)
{
	GPtrArray *argv = g_ptr_array_new();
	const char *arg;

	g_ptr_array_add(argv, (gpointer)first);
	while ((arg = va_arg(ap, const char *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	g_ptr_array_add(argv, NULL);
	return argv;
}

/* Runs argv; stdout and stderr together in *all. */
static int
run_argv(char **all, const char *const *argv)
{
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	int status = hk_test_runv(NULL, &out, &err, argv);

	/* an empty output comes back as NULL */
	if (all != NULL)
		*all = g_strconcat(out ? out : "", err ? err : "", NULL);
	return status;
}

static G_GNUC_NULL_TERMINATED char *
run_ok(const char *program, ...)
{
	g_autoptr(GPtrArray) argv = NULL;
	char *all = NULL;
	va_list ap;

	va_start(ap, program);
	argv = argv_new(program, ap);
	va_end(ap);
	if (run_argv(&all, (const char *const *)argv->pdata) != 0)
		g_error("%s failed:\n%s", program, all);
	return all;
}

static G_GNUC_NULL_TERMINATED int
run_status(char **all, const char *program, ...)
{
	g_autoptr(GPtrArray) argv = NULL;
	va_list ap;

	va_start(ap, program);
	argv = argv_new(program, ap);
	va_end(ap);
	return run_argv(all, (const char *const *)argv->pdata);
}

/* hankoctl -c CONF ARGS (args NULL-terminated, without the program). */
static int
ctl_argv(Fx *fx, char **out, char **err, const char *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();

	g_ptr_array_add(argv, (gpointer)HK_TEST_CTL_BIN);
	g_ptr_array_add(argv, (gpointer) "-c");
	g_ptr_array_add(argv, fx->certd->conf);
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	return hk_test_runv(NULL, out, err, (const char *const *)argv->pdata);
}

/* Runs hankoctl --json ARGS, asserts it worked, returns the reply's result. */
static json_object *
ctl_json_argv(Fx *fx, const char *const *args)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	g_autoptr(json_object) reply = NULL;
	json_object *result = NULL;
	int status;

	g_ptr_array_add(argv, (gpointer) "--json");
	for (guint i = 0; args[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)args[i]);
	g_ptr_array_add(argv, NULL);
	status = ctl_argv(fx, &out, &err, (const char *const *)argv->pdata);
	if (status != 0)
		g_error("hankoctl %s %s failed (%d): %s%s", args[0], args[1], status, out, err);
	reply = json_tokener_parse(out);
	g_assert_nonnull(reply);
	g_assert_true(hk_json_get_bool(reply, "ok", FALSE));
	g_assert_true(json_object_object_get_ex(reply, "result", &result));
	return json_object_get(result);
}

static G_GNUC_NULL_TERMINATED json_object *
ctl_json(Fx *fx, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	const char *arg;
	va_list ap;

	va_start(ap, fx);
	while ((arg = va_arg(ap, const char *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(ap);
	g_ptr_array_add(argv, NULL);
	return ctl_json_argv(fx, (const char *const *)argv->pdata);
}

/* Runs hankoctl ARGS, which must fail with status 1; returns its stderr. */
static G_GNUC_NULL_TERMINATED char *
ctl_fails(Fx *fx, ...)
{
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autofree char *out = NULL;
	char *err = NULL;
	const char *arg;
	va_list ap;
	int status;

	va_start(ap, fx);
	while ((arg = va_arg(ap, const char *)) != NULL)
		g_ptr_array_add(argv, (gpointer)arg);
	va_end(ap);
	g_ptr_array_add(argv, NULL);
	status = ctl_argv(fx, &out, &err, (const char *const *)argv->pdata);
	if (status != 1)
		g_error("hankoctl %s %s: expected status 1, got %d: %s%s", (char *)argv->pdata[0],
		        (char *)argv->pdata[1], status, out, err);
	return err;
}

static char *
fx_path(Fx *fx, const char *suffix)
{
	return g_strdup_printf("%s/f%u%s", fx->certd->dir, fx->files++, suffix);
}

static void
write_text(const char *path, const char *text)
{
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
}

/* ----- fixture ----- */

static void
fx_start(Fx *fx, const char *extra_conf)
{
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;

	fx->certd = hk_test_certd_start(extra_conf);
	hk_test_certd_ca_init(fx->certd);
	fx->ca_pem = g_build_filename(fx->certd->dir, "ca.pem", NULL);
	g_assert_cmpint(ctl_argv(fx, &out, &err,
	                         (const char *const[]){"ca", "export", "-o", fx->ca_pem, NULL}),
	                ==, 0);
}

static void
fx_setup(Fx *fx, gconstpointer extra_conf)
{
	fx_start(fx, extra_conf);
}

static void
fx_teardown(Fx *fx, gconstpointer data)
{
	hk_test_certd_stop(fx->certd);
	g_free(fx->ca_pem);
}

/* ----- the database, for what other parts of certd own ----- */

static HkDb *
db_open(Fx *fx)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = g_build_filename(fx->certd->state, "certd.db", NULL);
	HkDb *db = hk_db_open(path, certd_db_migrations, 5000, &error);

	g_assert_no_error(error);
	return db;
}

static void
db_exec(Fx *fx, const char *sql)
{
	g_autoptr(HkDb) db = db_open(fx);
	g_autoptr(GError) error = NULL;

	hk_db_exec(db, sql, &error);
	g_assert_no_error(error);
}

static void
add_user(Fx *fx, const char *name, const char *email1, const char *email2)
{
	g_autofree char *sql =
	        g_strdup_printf("INSERT INTO users (name, created, updated) VALUES ('%s', 1, 1);"
	                        "INSERT INTO user_emails (user_id, email) SELECT id, '%s' FROM "
	                        "users WHERE name = '%s';"
	                        "INSERT INTO user_emails (user_id, email) SELECT id, '%s' FROM "
	                        "users WHERE name = '%s';",
	                        name, email1, name, email2, name);

	db_exec(fx, sql);
}

/* ----- issuing ----- */

typedef struct {
	char *serial;
	char *fingerprint;
	char *pubkey_fp;
	char *password;
	char *not_after;
	char *p12; /* path of the P12 hankoctl wrote */
	char *pem; /* path of the certificate, from cert show */
	char *dir; /* certd's folder for it */
} Issued;

static void
issued_clear(Issued *is)
{
	g_free(is->serial);
	g_free(is->fingerprint);
	g_free(is->pubkey_fp);
	g_free(is->password);
	g_free(is->not_after);
	g_free(is->p12);
	g_free(is->pem);
	g_free(is->dir);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Issued, issued_clear)

static void
issued_fetch_pem(Fx *fx, Issued *is)
{
	g_autoptr(json_object) show = ctl_json(fx, "cert", "show", is->serial, NULL);

	is->pem = fx_path(fx, ".pem");
	write_text(is->pem, hk_json_get_string(show, HK_CERTD_KEY_CERT_PEM));
	is->dir = g_strdup(hk_json_get_string(show, HK_CERTD_KEY_DIR));
}

/* hankoctl cert issue --cn CN --email EMAIL -o FILE EXTRA... */
static void
issue(Fx *fx, Issued *is, const char *cn, const char *email, const char *const *extra)
{
	g_autoptr(GPtrArray) args = g_ptr_array_new();
	g_autoptr(json_object) result = NULL;

	is->p12 = fx_path(fx, ".p12");
	g_ptr_array_add(args, (gpointer) "cert");
	g_ptr_array_add(args, (gpointer) "issue");
	g_ptr_array_add(args, (gpointer) "--cn");
	g_ptr_array_add(args, (gpointer)cn);
	g_ptr_array_add(args, (gpointer) "--email");
	g_ptr_array_add(args, (gpointer)email);
	g_ptr_array_add(args, (gpointer) "-o");
	g_ptr_array_add(args, is->p12);
	for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
		g_ptr_array_add(args, (gpointer)extra[i]);
	g_ptr_array_add(args, NULL);
	result = ctl_json_argv(fx, (const char *const *)args->pdata);
	is->serial = g_strdup(hk_json_get_string(result, HK_CERTD_KEY_SERIAL));
	is->fingerprint = g_strdup(hk_json_get_string(result, HK_CERTD_KEY_FINGERPRINT));
	is->pubkey_fp = g_strdup(hk_json_get_string(result, HK_CERTD_KEY_PUBKEY_FP));
	is->password = g_strdup(hk_json_get_string(result, HK_CERTD_KEY_P12_PASSWORD));
	is->not_after = g_strdup(hk_json_get_string(result, HK_CERTD_KEY_NOT_AFTER));
	g_assert_nonnull(is->serial);
	g_assert_nonnull(is->password);
	g_assert_cmpstr(hk_json_get_string(result, HK_CERTD_KEY_CN), ==, cn);
	g_assert_cmpstr(hk_json_get_string(result, HK_CERTD_KEY_EMAIL), ==, email);
	issued_fetch_pem(fx, is);
	g_assert_cmpstr(hk_json_get_string(result, HK_CERTD_KEY_DIR), ==, is->dir);
}

static guint
count_cert_dirs(Fx *fx)
{
	g_autofree char *certs = g_build_filename(fx->certd->state, "certs", NULL);
	g_autoptr(GDir) dir = g_dir_open(certs, 0, NULL);
	guint n = 0;

	while (dir != NULL && g_dir_read_name(dir) != NULL)
		n++;
	return n;
}

static json_object *
list_certs(Fx *fx, const char *const *filter)
{
	const char *args[12] = {"cert", "list"};
	g_autoptr(json_object) result = NULL;
	json_object *certs = NULL;

	for (guint i = 0; filter != NULL && filter[i] != NULL; i++)
		args[2 + i] = filter[i];
	result = ctl_json_argv(fx, args);
	g_assert_true(json_object_object_get_ex(result, HK_CERTD_KEY_CERTS, &certs));
	return json_object_get(certs);
}

static gboolean
list_has(json_object *certs, const char *serial, const char *status)
{
	for (size_t i = 0; i < json_object_array_length(certs); i++) {
		json_object *c = json_object_array_get_idx(certs, i);

		if (g_strcmp0(hk_json_get_string(c, HK_CERTD_KEY_SERIAL), serial) == 0)
			return status == NULL ||
			       g_strcmp0(hk_json_get_string(c, HK_CERTD_KEY_STATUS), status) == 0;
	}
	return FALSE;
}

/* ----- checks with other tools ----- */

static void
assert_password_shape(const char *password)
{
	g_assert_cmpuint(strlen(password), >=, 16);
	g_assert_cmpuint(strspn(password, PASSWORD_ALPHABET), ==, strlen(password));
}

static int
verify_purpose(Fx *fx, const char *pem, const char *purpose)
{
	g_autofree char *all = NULL;

	return run_status(&all, "openssl", "verify", "-CAfile", fx->ca_pem, "-purpose", purpose,
	                  pem, NULL);
}

static char *
pkcs12_info(const Issued *is, gboolean legacy)
{
	g_autofree char *pass = g_strconcat("pass:", is->password, NULL);

	if (legacy)
		return run_ok("openssl", "pkcs12", "-legacy", "-info", "-in", is->p12, "-passin",
		              pass, "-nokeys", NULL);
	return run_ok("openssl", "pkcs12", "-info", "-in", is->p12, "-passin", pass, "-nokeys",
	              NULL);
}

/* Reads the P12 as a program would: key, certificate, chain, and the friendlyName as
 * UTF-8 (openssl pkcs12 -info of OpenSSL 3.0 prints a BMPString's low bytes only). */
static void
check_p12_parse(const Issued *is, const char *cn)
{
	g_autofree char *der = NULL;
	gsize len = 0;
	const guchar *p;
	g_autoptr(PKCS12) p12 = NULL;
	g_autoptr(EVP_PKEY) key = NULL;
	g_autoptr(X509) cert = NULL;
	g_autoptr(HkX509Stack) chain = NULL;
	const guchar *alias;
	int alias_len = 0;

	g_assert_true(g_file_get_contents(is->p12, &der, &len, NULL));
	p = (const guchar *)der;
	p12 = d2i_PKCS12(NULL, &p, (long)len);
	g_assert_nonnull(p12);
	g_assert_true(PKCS12_parse(p12, is->password, &key, &cert, &chain));
	g_assert_cmpint(X509_check_private_key(cert, key), ==, 1);
	g_assert_cmpint(sk_X509_num(chain), ==, 1);
	alias = X509_alias_get0(cert, &alias_len);
	g_assert_nonnull(alias);
	g_assert_cmpmem(alias, alias_len, cn, strlen(cn));
}

static void
require_program(const char *program)
{
	g_autofree char *path = g_find_program_in_path(program);

	if (path == NULL)
		g_error("%s is not installed: install libnss3-tools "
		        "(contrib/scripts/install-deps.sh test)",
		        program);
}

/* Imports the P12 into a new NSS database and finds it there under the CN. */
static void
check_pk12util(Fx *fx, const Issued *is, const char *cn)
{
	g_autofree char *dir = fx_path(fx, ".nssdb");
	g_autofree char *db = g_strconcat("sql:", dir, NULL);
	g_autofree char *created = NULL;
	g_autofree char *imported = NULL;
	g_autofree char *listed = NULL;

	require_program("pk12util");
	require_program("certutil");
	g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
	created = run_ok("certutil", "-N", "-d", db, "--empty-password", NULL);
	imported = run_ok("pk12util", "-i", is->p12, "-d", db, "-W", is->password, NULL);
	hk_assert_contains(imported, "PKCS12 IMPORT SUCCESSFUL");
	listed = run_ok("certutil", "-L", "-d", db, NULL);
	hk_assert_contains(listed, cn);
}

/* ----- 1. issuing with each profile ----- */

typedef struct {
	const char *profile;
	const char *key;
	const char *p12;
	gboolean client; /* -purpose sslclient passes */
	gboolean smime;  /* -purpose smimesign passes */
	const char *key_usage;
} ProfileCase;

static const ProfileCase profile_cases[] = {
        {"client", "ec:p256", "compat", TRUE, FALSE, "Digital Signature\n"},
        {"smime", "rsa:2048", "modern", FALSE, TRUE, "Digital Signature, Key Encipherment\n"},
        {"both", "ec:p384", "compat", TRUE, TRUE, "Digital Signature, Key Agreement\n"},
        {"both", "rsa:2048", "modern", TRUE, TRUE, "Digital Signature, Key Encipherment\n"},
        {"smime", "ec:p256", "modern", FALSE, TRUE, "Digital Signature, Key Agreement\n"},
};

static void
check_extensions(const ProfileCase *pc, const Issued *is, const char *cn, const char *email)
{
	g_autofree char *text = run_ok("openssl", "x509", "-in", is->pem, "-noout", "-text", NULL);
	g_autofree char *subject = g_strdup_printf("Subject: CN = %s\n", cn);
	g_autofree char *san = g_strdup_printf("email:%s\n", email);

	hk_assert_contains(text, "Version: 3 (0x2)");
	hk_assert_contains(text, subject);
	hk_assert_contains(text, "Issuer: CN = hanko Test CA");
	hk_assert_contains(text, "X509v3 Basic Constraints: critical\n                CA:FALSE");
	hk_assert_contains(text, "X509v3 Key Usage: critical");
	hk_assert_contains(text, pc->key_usage);
	hk_assert_contains(text, "X509v3 Extended Key Usage");
	g_assert_true((strstr(text, "TLS Web Client Authentication") != NULL) == pc->client);
	g_assert_true((strstr(text, "E-mail Protection") != NULL) == pc->smime);
	hk_assert_contains(text, san);
	hk_assert_contains(text, "X509v3 Subject Key Identifier");
	hk_assert_contains(text, "X509v3 Authority Key Identifier");
	g_assert_null(strstr(text, "CRL Distribution Points"));
}

static void
check_p12_format(const ProfileCase *pc, const Issued *is, const char *cn)
{
	g_autofree char *info = pkcs12_info(is, FALSE);
	g_autofree char *friendly = g_strdup_printf("friendlyName: %s\n", cn);

	hk_assert_contains(info, friendly);
	hk_assert_contains(info, "subject=CN = ");
	hk_assert_contains(info, "issuer=CN = hanko Test CA");
	if (g_strcmp0(pc->p12, "compat") == 0) {
		g_autofree char *legacy = pkcs12_info(is, TRUE);

		hk_assert_contains(info, "MAC: sha1, Iteration 2048");
		hk_assert_contains(info, "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, "
		                         "Iteration 2048");
		hk_assert_contains(info, "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC");
		hk_assert_contains(legacy, friendly);
	} else {
		hk_assert_contains(info, "MAC: sha256, Iteration 2048");
		hk_assert_contains(info, "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC");
		hk_assert_contains(info, "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC");
		g_assert_null(strstr(info, "TripleDES"));
	}
}

static void
test_issue_profiles(Fx *fx, gconstpointer data)
{
	for (guint i = 0; i < G_N_ELEMENTS(profile_cases); i++) {
		const ProfileCase *pc = &profile_cases[i];
		const char *const extra[] = {"--profile", pc->profile, "--key", pc->key,
		                             "--p12",     pc->p12,     NULL};
		g_autofree char *cn = g_strdup_printf("Sindbad %s %u", pc->profile, i);
		g_autofree char *email = g_strdup_printf("sindbad%u@example.jp", i);
		g_auto(Issued) is = {0};

		g_test_message("%s %s %s", pc->profile, pc->key, pc->p12);
		issue(fx, &is, cn, email, extra);
		assert_password_shape(is.password);
		g_assert_cmpint(verify_purpose(fx, is.pem, "sslclient") == 0, ==, pc->client);
		g_assert_cmpint(verify_purpose(fx, is.pem, "smimesign") == 0, ==, pc->smime);
		check_extensions(pc, &is, cn, email);
		check_p12_format(pc, &is, cn);
		check_p12_parse(&is, cn);
		check_pk12util(fx, &is, cn);
	}
}

/* Defaults come from [certd]; a non-ASCII CN survives as friendlyName and NSS nickname. */
static void
test_issue_defaults_utf8(Fx *fx, gconstpointer data)
{
	const char *cn = "山田 太郎";
	g_auto(Issued) is = {0};
	g_autoptr(json_object) show = NULL;
	g_autofree char *info = NULL;
	g_autofree char *text = NULL;

	issue(fx, &is, cn, "yamada@example.jp", NULL);
	show = ctl_json(fx, "cert", "show", is.serial, NULL);
	/* the test conf sets default_key = ec:p256, default_days = 30, default_profile = client */
	g_assert_cmpstr(hk_json_get_string(show, HK_CERTD_KEY_KEY), ==, "ec:p256");
	g_assert_cmpint(hk_json_get_int(show, HK_CERTD_KEY_DAYS, 0), ==, 30);
	g_assert_cmpstr(hk_json_get_string(show, HK_CERTD_KEY_PROFILE), ==, "client");
	g_assert_cmpint(verify_purpose(fx, is.pem, "smimesign"), !=, 0);
	info = pkcs12_info(&is, FALSE);
	hk_assert_contains(info, "MAC: sha256"); /* p12_format = modern */
	check_p12_parse(&is, cn);
	text = run_ok("openssl", "x509", "-in", is.pem, "-noout", "-text", "-nameopt",
	              "oneline,-esc_msb", NULL);
	hk_assert_contains(text, "CN = 山田 太郎");
	hk_assert_contains(text, "URI:http://ca.example.jp/crl?a=1,b=2");
	check_pk12util(fx, &is, cn);
}

/* ----- 2. bad input ----- */

typedef struct {
	const char *name;
	const char *cn;
	const char *email;
	const char *args[3];
	const char *error; /* hankoctl's whole stderr line, or the start of it */
} BadCase;

static const BadCase bad_cases[] = {
        {"days 826",
         "A",
         "a@example.jp",
         {"--days", "826"},
         "hankoctl: invalid_argument: validity must be 1..825 days\n"},
        {"days 0",
         "A",
         "a@example.jp",
         {"--days", "0"},
         "hankoctl: invalid_argument: validity must be 1..825 days\n"},
        {"days -1",
         "A",
         "a@example.jp",
         {"--days", "-1"},
         "hankoctl: invalid_argument: validity must be 1..825 days\n"},
        {"bad email",
         "A",
         "not-an-address",
         {NULL},
         "hankoctl: invalid_argument: \"not-an-address\" is not a valid e-mail address\n"},
        {"two @", "A", "a@b@example.jp", {NULL}, "hankoctl: invalid_argument: \"a@b@example.jp\""},
        {"empty CN",
         "",
         "a@example.jp",
         {NULL},
         "hankoctl: invalid_argument: a common name (CN) is required\n"},
        {"65-char CN",
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
         "a@example.jp",
         {NULL},
         "hankoctl: invalid_argument: the common name has 65 characters, at most 64 are "
         "allowed\n"},
        {"rsa:1024",
         "A",
         "a@example.jp",
         {"--key", "rsa:1024"},
         "hankoctl: invalid_argument: unsupported key \"rsa:1024\": use one of rsa:2048, "
         "rsa:3072, rsa:4096, ec:p256, ec:p384\n"},
        {"unknown profile",
         "A",
         "a@example.jp",
         {"--profile", "server"},
         "hankoctl: invalid_argument: unknown profile \"server\": use one of client, smime, "
         "both\n"},
        {"unknown p12",
         "A",
         "a@example.jp",
         {"--p12", "rc2"},
         "hankoctl: invalid_argument: unknown p12_format \"rc2\": use one of compat, modern\n"},
        {"unknown user",
         "A",
         "a@example.jp",
         {"--user", "nobody"},
         "hankoctl: not_found: there is no user \"nobody\""},
        {"memo control",
         "A",
         "a@example.jp",
         {"--memo", "a\x1b[2Jb"},
         "hankoctl: invalid_argument: the memo contains a control character\n"},
};

static void
test_issue_bad_input(Fx *fx, gconstpointer data)
{
	g_auto(Issued) good = {0};
	g_autoptr(json_object) before = NULL;
	guint dirs;

	issue(fx, &good, "Good", "good@example.jp", NULL);
	before = list_certs(fx, NULL);
	dirs = count_cert_dirs(fx);
	g_assert_cmpuint(dirs, ==, 1);
	for (guint i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
		const BadCase *bc = &bad_cases[i];
		g_autofree char *p12 = fx_path(fx, ".p12");
		g_autofree char *err = NULL;
		g_autoptr(json_object) after = NULL;

		g_test_message("%s", bc->name);
		err = ctl_fails(fx, "cert", "issue", "--cn", bc->cn, "--email", bc->email, "-o",
		                p12, bc->args[0], bc->args[1], NULL);
		g_assert_true(g_str_has_prefix(err, bc->error));
		g_assert_false(g_file_test(p12, G_FILE_TEST_EXISTS));
		g_assert_cmpuint(count_cert_dirs(fx), ==, dirs);
		after = list_certs(fx, NULL);
		g_assert_true(json_object_equal(before, after));
	}
}

static void
test_issue_no_ca(void)
{
	HkTestCertd *certd = hk_test_certd_start(NULL);
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	int status = hk_test_ctl(certd, NULL, &out, &err, "cert", "issue", "--cn", "A", "--email",
	                         "a@example.jp", NULL);

	g_assert_cmpint(status, ==, 1);
	hk_assert_contains(err, "not_found: there is no CA yet");
	hk_test_certd_stop(certd);
}

/* ----- 3. serial numbers ----- */

static void
test_serials(Fx *fx, gconstpointer data)
{
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (guint i = 0; i < 8; i++) {
		g_autofree char *email = g_strdup_printf("u%u@example.jp", i);
		g_autofree char *shown = NULL;
		g_autofree char *expect = NULL;
		g_auto(Issued) is = {0};

		issue(fx, &is, "Serial", email, NULL);
		/* 32 hex digits, the top one 4..7: 127 random bits, a positive integer */
		g_assert_cmpuint(strlen(is.serial), ==, 32);
		g_assert_true(strchr("4567", is.serial[0]) != NULL);
		g_assert_cmpuint(strspn(is.serial, "0123456789ABCDEF"), ==, 32);
		g_assert_false(g_hash_table_contains(seen, is.serial));
		g_hash_table_add(seen, g_strdup(is.serial));
		shown = run_ok("openssl", "x509", "-in", is.pem, "-noout", "-serial", NULL);
		expect = g_strdup_printf("serial=%s\n", is.serial);
		g_assert_cmpstr(shown, ==, expect);
	}
}

/* ----- 4. revocation ----- */

static HkIpcClient *
watch_events(Fx *fx)
{
	g_autoptr(GError) error = NULL;
	HkIpcClient *client = hk_ipc_client_connect(fx->certd->socket, 10000, &error);
	g_autoptr(json_object) result = NULL;

	g_assert_no_error(error);
	result = hk_ipc_client_call(client, HK_CERTD_OP_EVENTS_WATCH, NULL, &error);
	g_assert_no_error(error);
	return client;
}

/* Reads events until one named event arrives; returns its data. */
static json_object *
wait_event(HkIpcClient *client, const char *event)
{
	for (guint i = 0; i < 10; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *line = hk_ipc_client_read_line(client, &error);
		g_autoptr(json_object) msg = NULL;
		json_object *data = NULL;

		g_assert_no_error(error);
		msg = json_tokener_parse(line);
		if (g_strcmp0(hk_json_get_string(msg, "event"), event) != 0)
			continue;
		g_assert_true(json_object_object_get_ex(msg, "data", &data));
		return json_object_get(data);
	}
	g_error("no %s event", event);
}

static void
check_crl(Fx *fx, const Issued *revoked, const Issued *good)
{
	g_autofree char *crl = fx_path(fx, ".crl");
	g_autofree char *crl_text = NULL;
	g_autofree char *failed = NULL;
	g_autofree char *passed = NULL;
	g_autofree char *serial_line = g_strdup_printf("Serial Number: %s\n", revoked->serial);
	g_autofree char *ctl_out =
	        run_ok(HK_TEST_CTL_BIN, "-c", fx->certd->conf, "ca", "crl", "-o", crl, NULL);

	crl_text = run_ok("openssl", "crl", "-in", crl, "-CAfile", fx->ca_pem, "-noout", "-text",
	                  NULL);
	hk_assert_contains(crl_text, "verify OK");
	hk_assert_contains(crl_text, serial_line);
	hk_assert_contains(crl_text, "Key Compromise");
	g_assert_null(strstr(crl_text, good->serial));
	g_assert_cmpint(run_status(&failed, "openssl", "verify", "-crl_check", "-CAfile",
	                           fx->ca_pem, "-CRLfile", crl, revoked->pem, NULL),
	                !=, 0);
	hk_assert_contains(failed, "certificate revoked");
	g_assert_cmpint(run_status(&passed, "openssl", "verify", "-crl_check", "-CAfile",
	                           fx->ca_pem, "-CRLfile", crl, good->pem, NULL),
	                ==, 0);
}

static void
check_profile_revoked(const Issued *is)
{
	g_autofree char *path = g_build_filename(is->dir, "profile.json", NULL);
	g_autoptr(json_object) profile = json_object_from_file(path);

	g_assert_nonnull(profile);
	g_assert_cmpstr(hk_json_get_string(profile, HK_CERTD_KEY_STATUS), ==, "revoked");
	g_assert_cmpstr(hk_json_get_string(profile, HK_CERTD_KEY_REASON), ==, "keyCompromise");
	g_assert_nonnull(hk_json_get_string(profile, HK_CERTD_KEY_REVOKED_AT));
}

static void
test_revoke(Fx *fx, gconstpointer data)
{
	g_auto(Issued) bad = {0};
	g_auto(Issued) good = {0};
	g_autoptr(HkIpcClient) watch = NULL;
	g_autoptr(json_object) result = NULL;
	g_autoptr(json_object) event = NULL;
	g_autoptr(json_object) list = NULL;
	g_autoptr(json_object) lookup = NULL;
	g_autofree char *err = NULL;
	g_autofree char *lower = NULL;

	add_user(fx, "sindbad", "sindbad@example.jp", "s@example.jp");
	issue(fx, &bad, "Stolen", "sindbad@example.jp",
	      (const char *const[]){"--user", "sindbad", NULL});
	issue(fx, &good, "Kept", "kept@example.jp", NULL);
	watch = watch_events(fx);
	err = ctl_fails(fx, "cert", "revoke", bad.serial, "--reason", "lostIt", NULL);
	hk_assert_contains(err,
	                   "invalid_argument: unknown revocation reason \"lostIt\": use one of "
	                   "unspecified, keyCompromise, cACompromise");
	lower = g_ascii_strdown(bad.serial, -1); /* any case will do */
	result = ctl_json(fx, "cert", "revoke", lower, "--reason", "keycompromise", NULL);
	g_assert_cmpstr(hk_json_get_string(result, HK_CERTD_KEY_STATUS), ==, "revoked");
	g_assert_cmpstr(hk_json_get_string(result, HK_CERTD_KEY_REASON), ==, "keyCompromise");
	event = wait_event(watch, HK_CERTD_EV_CERT_REVOKED);
	g_assert_cmpstr(hk_json_get_string(event, HK_CERTD_KEY_SERIAL), ==, bad.serial);
	g_assert_cmpstr(hk_json_get_string(event, HK_CERTD_KEY_FINGERPRINT), ==, bad.fingerprint);
	g_assert_cmpstr(hk_json_get_string(event, HK_CERTD_KEY_PUBKEY_FP), ==, bad.pubkey_fp);
	g_assert_cmpstr(hk_json_get_string(event, HK_CERTD_KEY_USER), ==, "sindbad");
	check_crl(fx, &bad, &good);
	check_profile_revoked(&bad);
	g_free(err);
	err = ctl_fails(fx, "cert", "revoke", bad.serial, NULL);
	hk_assert_contains(err, "conflict: certificate ");
	hk_assert_contains(err, "was revoked already");
	g_free(err);
	err = ctl_fails(fx, "cert", "revoke", "0123456789ABCDEF", NULL);
	hk_assert_contains(err, "not_found: no certificate has the serial number, fingerprint or "
	                        "name \"0123456789ABCDEF\"");
	list = list_certs(fx, (const char *const[]){"--status", "revoked", NULL});
	g_assert_cmpuint(json_object_array_length(list), ==, 1);
	g_assert_true(list_has(list, bad.serial, "revoked"));
	lookup = ctl_json(fx, "cert", "lookup", "--fingerprint", bad.fingerprint, NULL);
	g_assert_cmpstr(hk_json_get_string(lookup, HK_CERTD_KEY_STATUS), ==, "revoked");
}

/* ----- 5. lookups, as hanko-policyd makes them ----- */

/* "sha256 Fingerprint=AB:CD:..." as openssl x509 -fingerprint prints it */
static char *
openssl_fingerprint(const Issued *is)
{
	g_autofree char *out = run_ok("openssl", "x509", "-in", is->pem, "-noout", "-fingerprint",
	                              "-sha256", NULL);

	return g_strstrip(g_strdup(out));
}

/* SHA-256 of the DER SubjectPublicKeyInfo, "ab:cd:..." as openssl dgst -c prints it */
static char *
openssl_pubkey_fingerprint(Fx *fx, const Issued *is)
{
	g_autofree char *pub = fx_path(fx, ".pub.pem");
	g_autofree char *der = fx_path(fx, ".spki");
	g_autofree char *out = NULL;
	g_autofree char *x =
	        run_ok("openssl", "x509", "-in", is->pem, "-noout", "-pubkey", "-out", pub, NULL);
	g_autofree char *k = run_ok("openssl", "pkey", "-pubin", "-in", pub, "-outform", "DER",
	                            "-out", der, NULL);
	const char *eq;

	out = run_ok("openssl", "dgst", "-sha256", "-c", der, NULL);
	eq = strstr(out, "= ");
	g_assert_nonnull(eq);
	return g_strstrip(g_strdup(eq + 2));
}

static void
assert_emails(json_object *result, const char *const *expect)
{
	json_object *emails = NULL;

	g_assert_true(json_object_object_get_ex(result, HK_CERTD_KEY_EMAILS, &emails));
	g_assert_cmpuint(json_object_array_length(emails), ==, g_strv_length((char **)expect));
	for (guint i = 0; expect[i] != NULL; i++)
		g_assert_cmpstr(json_object_get_string(json_object_array_get_idx(emails, i)), ==,
		                expect[i]);
}

static void
test_lookup(Fx *fx, gconstpointer data)
{
	g_auto(Issued) is = {0};
	g_auto(Issued) lone = {0};
	g_autofree char *fp = NULL;
	g_autofree char *pk = NULL;
	g_autofree char *bare = NULL;
	g_autofree char *err = NULL;
	g_autoptr(json_object) by_fp = NULL;
	g_autoptr(json_object) by_bare = NULL;
	g_autoptr(json_object) by_pk = NULL;
	g_autoptr(json_object) by_lone = NULL;

	add_user(fx, "sindbad", "s@example.jp", "sindbad@example.jp");
	issue(fx, &is, "Sindbad", "sailor@example.jp",
	      (const char *const[]){"--user", "sindbad", NULL});
	issue(fx, &lone, "Nobody", "nobody@example.jp", NULL);
	fp = openssl_fingerprint(&is);
	pk = openssl_pubkey_fingerprint(fx, &is);
	by_fp = ctl_json(fx, "cert", "lookup", "--fingerprint", fp, NULL);
	g_assert_cmpstr(hk_json_get_string(by_fp, HK_CERTD_KEY_SERIAL), ==, is.serial);
	g_assert_cmpstr(hk_json_get_string(by_fp, HK_CERTD_KEY_USER), ==, "sindbad");
	g_assert_cmpstr(hk_json_get_string(by_fp, HK_CERTD_KEY_CN), ==, "Sindbad");
	g_assert_cmpstr(hk_json_get_string(by_fp, HK_CERTD_KEY_STATUS), ==, "valid");
	g_assert_cmpstr(hk_json_get_string(by_fp, HK_CERTD_KEY_KIND), ==, "client");
	g_assert_cmpstr(hk_json_get_string(by_fp, HK_CERTD_KEY_NOT_AFTER), ==, is.not_after);
	assert_emails(by_fp, (const char *const[]){"s@example.jp", "sindbad@example.jp",
	                                           "sailor@example.jp", NULL});
	/* Postfix's form (upper case, colons) and a pasted one (lower case, none) */
	bare = g_ascii_strdown(is.fingerprint, -1);
	g_strdelimit(bare, ":", ' ');
	by_bare = ctl_json(fx, "cert", "lookup", "--fingerprint", bare, NULL);
	g_assert_cmpstr(hk_json_get_string(by_bare, HK_CERTD_KEY_SERIAL), ==, is.serial);
	by_pk = ctl_json(fx, "cert", "lookup", "--pubkey-fingerprint", pk, NULL);
	g_assert_cmpstr(hk_json_get_string(by_pk, HK_CERTD_KEY_SERIAL), ==, is.serial);
	by_lone = ctl_json(fx, "cert", "lookup", "--fingerprint", lone.fingerprint, NULL);
	g_assert_null(hk_json_get_string(by_lone, HK_CERTD_KEY_USER));
	assert_emails(by_lone, (const char *const[]){"nobody@example.jp", NULL});
	err = ctl_fails(fx, "cert", "lookup", "--fingerprint", lone.pubkey_fp, NULL);
	hk_assert_contains(err, "not_found: no certificate has the fingerprint ");
	g_free(err);
	err = ctl_fails(fx, "cert", "lookup", "--fingerprint", "AB:CD", NULL);
	hk_assert_contains(err, "invalid_argument: fingerprint: fingerprint has 2 bytes");
	g_free(err);
	err = ctl_fails(fx, "call", "cert.lookup", "{}", NULL);
	hk_assert_contains(err, "invalid_argument: give exactly one of fingerprint and "
	                        "pubkey_fingerprint");
}

/* ----- 6. show, p12, the password, the files ----- */

static void
check_files(const Issued *is, const char *cn)
{
	static const struct {
		const char *name;
		guint mode;
	} files[] = {{"cert.pem", 0644}, {"cert.p12", 0600}, {"profile.json", 0600}};
	g_autofree char *base = g_path_get_basename(is->dir);
	g_autofree char *path = g_build_filename(is->dir, "profile.json", NULL);
	g_autoptr(json_object) profile = json_object_from_file(path);
	g_autofree char *prefix = g_strndup(is->serial, 8);
	struct stat st;

	/* YYYYMMDD-HHMMSS-<first 8 hex digits of the serial> */
	g_assert_cmpuint(strlen(base), ==, 24);
	g_assert_true(g_str_has_suffix(base, prefix));
	for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autofree char *file = g_build_filename(is->dir, files[i].name, NULL);

		g_assert_cmpint(stat(file, &st), ==, 0);
		g_assert_cmpuint(st.st_mode & 07777, ==, files[i].mode);
	}
	g_assert_cmpstr(hk_json_get_string(profile, HK_CERTD_KEY_CN), ==, cn);
	g_assert_cmpstr(hk_json_get_string(profile, HK_CERTD_KEY_EMAIL), ==, "memo@example.jp");
	g_assert_cmpstr(hk_json_get_string(profile, HK_CERTD_KEY_KEY), ==, "ec:p256");
	g_assert_cmpint(hk_json_get_int(profile, HK_CERTD_KEY_DAYS, 0), ==, 90);
	g_assert_cmpstr(hk_json_get_string(profile, HK_CERTD_KEY_MEMO), ==, "laptop, 2nd floor");
	g_assert_cmpstr(hk_json_get_string(profile, HK_CERTD_KEY_FINGERPRINT), ==, is->fingerprint);
	g_assert_cmpstr(hk_json_get_string(profile, HK_CERTD_KEY_SERIAL), ==, is->serial);
	g_assert_cmpstr(hk_json_get_string(profile, HK_CERTD_KEY_STATUS), ==, "valid");
	g_assert_cmpstr(hk_json_get_string(profile, HK_CERTD_KEY_USER), ==, "memo");
	g_assert_nonnull(hk_json_get_string(profile, HK_CERTD_KEY_CREATED));
	g_assert_null(hk_json_get_string(profile, HK_CERTD_KEY_P12_PASSWORD));
}

static void
test_show_and_p12(Fx *fx, gconstpointer data)
{
	g_auto(Issued) is = {0};
	g_autoptr(json_object) by_fp = NULL;
	g_autoptr(json_object) with_pw = NULL;
	g_autofree char *again = fx_path(fx, ".p12");
	g_autofree char *a = NULL;
	g_autofree char *b = NULL;
	g_autofree char *shown = NULL;
	g_autofree char *log = NULL;
	gsize a_len, b_len;

	add_user(fx, "memo", "memo@example.jp", "memo2@example.jp");
	issue(fx, &is, "Memo Holder", "memo@example.jp",
	      (const char *const[]){"--memo", "laptop, 2nd floor", "--days", "90", "--key",
	                            "ec:p256", "--user", "memo", NULL});
	check_files(&is, "Memo Holder");
	by_fp = ctl_json(fx, "cert", "show", is.fingerprint, NULL);
	g_assert_cmpstr(hk_json_get_string(by_fp, HK_CERTD_KEY_SERIAL), ==, is.serial);
	g_assert_null(hk_json_get_string(by_fp, HK_CERTD_KEY_P12_PASSWORD));
	g_assert_cmpstr(hk_json_get_string(by_fp, HK_CERTD_KEY_MEMO), ==, "laptop, 2nd floor");
	with_pw = ctl_json(fx, "cert", "show", is.serial, "--password", NULL);
	g_assert_cmpstr(hk_json_get_string(with_pw, HK_CERTD_KEY_P12_PASSWORD), ==, is.password);
	shown = run_ok(HK_TEST_CTL_BIN, "-c", fx->certd->conf, "cert", "show", is.serial, NULL);
	g_assert_null(strstr(shown, is.password));
	hk_assert_contains(shown, "-----BEGIN CERTIFICATE-----");
	g_free(shown);
	shown = run_ok(HK_TEST_CTL_BIN, "-c", fx->certd->conf, "cert", "p12", is.serial, "-o",
	               again, NULL);
	g_assert_true(g_file_get_contents(is.p12, &a, &a_len, NULL));
	g_assert_true(g_file_get_contents(again, &b, &b_len, NULL));
	g_assert_cmpmem(a, a_len, b, b_len);
	/* the password never reaches the log, even at debug level */
	log = hk_test_certd_log(fx->certd);
	g_assert_null(strstr(log, is.password));
	hk_assert_contains(log, "issued client certificate");
}

/* Without -o the P12 lands in the current directory as SERIAL.p12, mode 0600, and the
 * text output names everything the user must be given. */
static void
test_issue_text_output(Fx *fx, gconstpointer data)
{
	g_autofree char *cwd = g_get_current_dir();
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	g_autofree char *p12 = NULL;
	g_autofree char *serial = NULL;
	const char *line;
	struct stat st;

	g_assert_cmpint(chdir(fx->certd->dir), ==, 0);
	g_assert_cmpint(hk_test_ctl(fx->certd, NULL, &out, &err, "cert", "issue", "--cn", "Text",
	                            "--email", "text@example.jp", NULL),
	                ==, 0);
	g_assert_cmpint(chdir(cwd), ==, 0);
	g_assert_true(g_str_has_prefix(out, "serial: "));
	serial = g_strndup(out + strlen("serial: "), 32);
	p12 = g_strdup_printf("%s/%s.p12", fx->certd->dir, serial);
	g_assert_cmpint(stat(p12, &st), ==, 0);
	g_assert_cmpuint(st.st_mode & 0777, ==, 0600);
	hk_assert_contains(out, "fingerprint: ");
	hk_assert_contains(out, "not_after: ");
	line = strstr(out, "P12 password: ");
	g_assert_nonnull(line);
	g_assert_cmpuint(strcspn(line + strlen("P12 password: "), "\n"), ==, 20);
}

static void
test_keep_password_off(Fx *fx, gconstpointer data)
{
	g_auto(Issued) is = {0};
	g_autofree char *err = NULL;
	g_autoptr(HkDb) db = NULL;
	g_autoptr(sqlite3_stmt) stmt = NULL;

	issue(fx, &is, "Forgetful", "f@example.jp", NULL);
	assert_password_shape(is.password);
	err = ctl_fails(fx, "cert", "show", is.serial, "--password", NULL);
	hk_assert_contains(err, "not_found: the P12 password of ");
	hk_assert_contains(err, "was not kept");
	db = db_open(fx);
	stmt = hk_db_prepare(db, "SELECT count(*) FROM certs WHERE p12_password IS NOT NULL", NULL);
	g_assert_cmpint(sqlite3_step(stmt), ==, SQLITE_ROW);
	g_assert_cmpint(sqlite3_column_int(stmt, 0), ==, 0);
}

/* ----- 7. list ----- */

static void
add_server_cert(Fx *fx)
{
	db_exec(fx, "INSERT INTO certs (kind, name, cn, key_type, status, not_after, dir, created)"
	            " VALUES ('server', 'mx1', 'mx1.example.jp', 'rsa:2048', 'in_use',"
	            " strftime('%s', 'now') + 20 * 86400, 'server/mx1', 1);"
	            "INSERT INTO assignments (service, cert_id, assigned)"
	            " SELECT 'smtpd', id, 1 FROM certs WHERE name = 'mx1';"
	            "INSERT INTO assignments (service, cert_id, assigned)"
	            " SELECT 'gateway', id, 1 FROM certs WHERE name = 'mx1';");
}

static json_object *
find_in_list(json_object *certs, const char *key, const char *value)
{
	for (size_t i = 0; i < json_object_array_length(certs); i++) {
		json_object *c = json_object_array_get_idx(certs, i);

		if (g_strcmp0(hk_json_get_string(c, key), value) == 0)
			return c;
	}
	return NULL;
}

/* What the filters return, given mine (valid, alice's), old (expired) and mx1. */
static void
check_list_filters(Fx *fx, const Issued *mine, const Issued *old)
{
	g_autoptr(json_object) by_user =
	        list_certs(fx, (const char *const[]){"--user", "alice", NULL});
	g_autoptr(json_object) expired =
	        list_certs(fx, (const char *const[]){"--status", "expired", NULL});
	/* the client certificates run 30 days (default_days), mx1 20 */
	g_autoptr(json_object) soon =
	        list_certs(fx, (const char *const[]){"--expiring", "25d", NULL});
	g_autoptr(json_object) later =
	        list_certs(fx, (const char *const[]){"--expiring", "31", NULL});
	g_autoptr(json_object) in_use = list_certs(
	        fx, (const char *const[]){"--status", "in_use", "--kind", "server", NULL});

	g_assert_cmpuint(json_object_array_length(by_user), ==, 1);
	g_assert_true(list_has(by_user, mine->serial, "valid"));
	g_assert_cmpstr(
	        hk_json_get_string(json_object_array_get_idx(by_user, 0), HK_CERTD_KEY_USER), ==,
	        "alice");
	g_assert_cmpuint(json_object_array_length(expired), ==, 1);
	g_assert_true(list_has(expired, old->serial, NULL));
	g_assert_cmpuint(json_object_array_length(soon), ==, 1);
	g_assert_nonnull(find_in_list(soon, HK_CERTD_KEY_NAME, "mx1"));
	g_assert_cmpuint(json_object_array_length(later), ==, 2);
	g_assert_true(list_has(later, mine->serial, NULL));
	g_assert_cmpuint(json_object_array_length(in_use), ==, 1);
}

static void
check_list_text(Fx *fx, const Issued *mine)
{
	g_autofree char *table =
	        run_ok(HK_TEST_CTL_BIN, "-c", fx->certd->conf, "cert", "list", NULL);
	g_autofree char *err = NULL;

	hk_assert_contains(table, "SERIAL/NAME");
	hk_assert_contains(table, mine->serial);
	hk_assert_contains(table, "gateway,smtpd");
	hk_assert_contains(table, "expired");
	err = ctl_fails(fx, "cert", "list", "--status", "lost", NULL);
	hk_assert_contains(err, "invalid_argument: unknown status \"lost\"");
	g_free(err);
	err = ctl_fails(fx, "cert", "list", "--user", "bob", NULL);
	hk_assert_contains(err, "not_found: there is no user \"bob\"");
}

static void
test_list(Fx *fx, gconstpointer data)
{
	g_auto(Issued) mine = {0};
	g_auto(Issued) old = {0};
	g_autoptr(json_object) all = NULL;
	g_autofree char *sql = NULL;
	json_object *mx1, *services;

	add_user(fx, "alice", "alice@example.jp", "a@example.jp");
	issue(fx, &mine, "Alice", "alice@example.jp",
	      (const char *const[]){"--user", "alice", NULL});
	issue(fx, &old, "Old", "old@example.jp", NULL);
	sql = g_strdup_printf("UPDATE certs SET not_after = strftime('%%s', 'now') - 60"
	                      " WHERE serial = '%s'",
	                      old.serial);
	db_exec(fx, sql);
	add_server_cert(fx);
	all = list_certs(fx, NULL);
	g_assert_cmpuint(json_object_array_length(all), ==, 3);
	g_assert_true(list_has(all, old.serial, "expired"));
	g_assert_true(list_has(all, mine.serial, "valid"));
	mx1 = find_in_list(all, HK_CERTD_KEY_NAME, "mx1");
	g_assert_nonnull(mx1);
	g_assert_cmpstr(hk_json_get_string(mx1, HK_CERTD_KEY_KIND), ==, "server");
	g_assert_cmpstr(hk_json_get_string(mx1, HK_CERTD_KEY_STATUS), ==, "in_use");
	g_assert_true(json_object_object_get_ex(mx1, HK_CERTD_KEY_SERVICES, &services));
	g_assert_cmpuint(json_object_array_length(services), ==, 2);
	g_assert_cmpstr(json_object_get_string(json_object_array_get_idx(services, 0)), ==,
	                "gateway");
	check_list_filters(fx, &mine, &old);
	check_list_text(fx, &mine);
}

/* Server certificates (rows of certd-servercert.c) are revoked the same way, by name. */
static void
test_revoke_server(Fx *fx, gconstpointer data)
{
	g_autoptr(json_object) result = NULL;
	g_autoptr(json_object) revoked = NULL;
	g_autofree char *p12 = fx_path(fx, ".p12");
	g_autofree char *err = NULL;

	add_server_cert(fx);
	db_exec(fx, "INSERT INTO certs (kind, name, cn, key_type, status, dir, created)"
	            " VALUES ('server', 'mx2', 'mx2.example.jp', 'ec:p256', 'requested',"
	            " 'server/mx2', 1)");
	result = ctl_json(fx, "cert", "revoke", "mx1", "--reason", "superseded", NULL);
	g_assert_cmpstr(hk_json_get_string(result, HK_CERTD_KEY_NAME), ==, "mx1");
	g_assert_cmpstr(hk_json_get_string(result, HK_CERTD_KEY_KIND), ==, "server");
	g_assert_cmpstr(hk_json_get_string(result, HK_CERTD_KEY_STATUS), ==, "revoked");
	revoked = list_certs(
	        fx, (const char *const[]){"--status", "revoked", "--kind", "server", NULL});
	g_assert_nonnull(find_in_list(revoked, HK_CERTD_KEY_NAME, "mx1"));
	err = ctl_fails(fx, "cert", "revoke", "mx2", NULL);
	hk_assert_contains(err, "invalid_argument: mx2 is a certificate request: there is no "
	                        "certificate to revoke");
	g_free(err);
	err = ctl_fails(fx, "cert", "p12", "mx1", "-o", p12, NULL);
	hk_assert_contains(err, "invalid_argument: mx1 is a server certificate");
	g_free(err);
	err = ctl_fails(fx, "cert", "show", "mx1", "--password", NULL);
	hk_assert_contains(err, "invalid_argument: mx1 is a server certificate");
}

/* ----- 8. kill -9 during a burst of issuances ----- */

#define BURST 20

static void
burst_start(Fx *fx, GSubprocess **procs)
{
	for (guint i = 0; i < BURST; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *email = g_strdup_printf("burst%u@example.jp", i);
		g_autofree char *p12 = fx_path(fx, ".p12");

		procs[i] = g_subprocess_new(
		        G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error,
		        HK_TEST_CTL_BIN, "-c", fx->certd->conf, "--json", "cert", "issue", "--cn",
		        "Burst", "--email", email, "--key", "rsa:2048", "-o", p12, NULL);
		g_assert_no_error(error);
	}
}

/* Waits for the burst; returns the serials certd acknowledged before it died. */
static GPtrArray *
burst_finish(GSubprocess **procs)
{
	GPtrArray *acked = g_ptr_array_new_with_free_func(g_free);

	for (guint i = 0; i < BURST; i++) {
		g_autoptr(GError) error = NULL;
		g_autofree char *out = NULL;
		g_autoptr(json_object) reply = NULL;
		json_object *result = NULL;

		g_subprocess_communicate_utf8(procs[i], NULL, NULL, &out, NULL, &error);
		g_assert_no_error(error);
		reply = out && *out ? json_tokener_parse(out) : NULL;
		if (hk_json_get_bool(reply, "ok", FALSE) &&
		    json_object_object_get_ex(reply, "result", &result))
			g_ptr_array_add(acked,
			                g_strdup(hk_json_get_string(result, HK_CERTD_KEY_SERIAL)));
		g_object_unref(procs[i]);
	}
	return acked;
}

static void
check_consistent(Fx *fx, GPtrArray *acked)
{
	g_autoptr(json_object) certs = list_certs(fx, NULL);
	g_autoptr(GHashTable) dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autofree char *root = g_build_filename(fx->certd->state, "certs", NULL);
	g_autoptr(GDir) dir = g_dir_open(root, 0, NULL);
	const char *name;

	for (size_t i = 0; i < json_object_array_length(certs); i++) {
		const char *serial = hk_json_get_string(json_object_array_get_idx(certs, i),
		                                        HK_CERTD_KEY_SERIAL);
		g_autoptr(json_object) show = ctl_json(fx, "cert", "show", serial, NULL);
		const char *files[] = {"cert.pem", "cert.p12", "profile.json"};
		char *path = g_strdup(hk_json_get_string(show, HK_CERTD_KEY_DIR));

		for (guint f = 0; f < G_N_ELEMENTS(files); f++) {
			g_autofree char *file = g_build_filename(path, files[f], NULL);

			g_assert_true(g_file_test(file, G_FILE_TEST_IS_REGULAR));
		}
		g_hash_table_add(dirs, path);
	}
	while ((name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *path = g_build_filename(root, name, NULL);

		if (!g_hash_table_contains(dirs, path))
			g_error("%s has no row in cert list", path);
	}
	for (guint i = 0; i < acked->len; i++)
		g_assert_true(list_has(certs, g_ptr_array_index(acked, i), "valid"));
	g_test_message("%zu certificates survived, %u acknowledged",
	               json_object_array_length(certs), acked->len);
}

static void
test_kill9_burst(Fx *fx, gconstpointer data)
{
	GSubprocess *procs[BURST];
	g_autoptr(GPtrArray) acked = NULL;
	gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
	g_auto(Issued) after = {0};
	g_autofree char *log = NULL;
	guint swept = 0;
	/* kill once certd has begun to write certificates, at a point the seed varies */
	guint kill_at = (guint)g_test_rand_int_range(2, 9);

	burst_start(fx, procs);
	while (count_cert_dirs(fx) < kill_at && g_get_monotonic_time() < deadline)
		g_usleep(1000);
	g_assert_cmpint(hk_test_certd_kill(fx->certd, SIGKILL), !=, 0);
	acked = burst_finish(procs);
	g_assert_cmpuint(acked->len, <, BURST);
	hk_test_certd_restart(fx->certd);
	log = hk_test_certd_log(fx->certd);
	for (const char *p = log; (p = strstr(p, "did not finish")) != NULL; p++)
		swept++;
	g_test_message("killed at %u folders; %u unfinished ones swept at the restart", kill_at,
	               swept);
	check_consistent(fx, acked);
	issue(fx, &after, "After", "after@example.jp", NULL);
	g_assert_cmpint(verify_purpose(fx, after.pem, "sslclient"), ==, 0);
}

/* ----- 9. the audit log ----- */

static void
test_audit(Fx *fx, gconstpointer data)
{
	g_auto(Issued) is = {0};
	g_autofree char *err = NULL;
	g_autofree char *audit = NULL;
	g_autoptr(json_object) revoked = NULL;

	issue(fx, &is, "Audited", "audit@example.jp", NULL);
	err = ctl_fails(fx, "cert", "issue", "--cn", "Audited", "--email", "audit@example.jp",
	                "--days", "900", NULL);
	revoked = ctl_json(fx, "cert", "revoke", is.serial, NULL);
	audit = run_ok(HK_TEST_CTL_BIN, "-c", fx->certd->conf, "audit", NULL);
	hk_assert_contains(audit, "cert.issue Audited ok");
	hk_assert_contains(audit,
	                   "cert.issue Audited invalid_argument: validity must be 1..825 days");
	hk_assert_contains(audit, "cert.revoke");
	g_assert_null(strstr(audit, is.password));
}

/* ----- main ----- */

#define CONF_DEFAULTS                                                                              \
	"default_key = ec:p256\ndefault_days = 30\ndefault_profile = client\n"                     \
	"p12_format = modern\ncrl_url = http://ca.example.jp/crl?a=1,b=2\n"

static void
add(const char *path, void (*func)(Fx *, gconstpointer), const char *conf)
{
	g_test_add(path, Fx, conf, fx_setup, func, fx_teardown);
}

int
main(int argc, char **argv)
{
	const char *fast = "default_key = ec:p256\ndefault_days = 30\n";

	g_test_init(&argc, &argv, NULL);
	add("/certd-client/issue/profiles", test_issue_profiles, fast);
	add("/certd-client/issue/defaults-utf8", test_issue_defaults_utf8, CONF_DEFAULTS);
	add("/certd-client/issue/bad-input", test_issue_bad_input, fast);
	g_test_add_func("/certd-client/issue/no-ca", test_issue_no_ca);
	add("/certd-client/issue/text-output", test_issue_text_output, fast);
	add("/certd-client/serials", test_serials, fast);
	add("/certd-client/revoke", test_revoke, fast);
	add("/certd-client/lookup", test_lookup, fast);
	add("/certd-client/show-p12", test_show_and_p12, fast);
	add("/certd-client/keep-password-off", test_keep_password_off,
	    "default_key = ec:p256\nkeep_p12_password = no\n");
	add("/certd-client/list", test_list, fast);
	add("/certd-client/revoke-server", test_revoke_server, fast);
	add("/certd-client/kill9-burst", test_kill9_burst, fast);
	add("/certd-client/audit", test_audit, fast);
	return g_test_run();
}
