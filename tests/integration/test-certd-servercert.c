/*
 * test-certd-servercert: server certificates (seed 002) through a running hanko-certd and
 * hankoctl. An external CA (root -> intermediate) made with the openssl CLI signs what
 * certd requests or what the test brings with its own key; openssl reads back what certd
 * exports and what cert assign installs for Postfix.
 *
 * Talks to: hanko-certd and hankoctl of the build tree (hk-test-certd), openssl(1),
 * pk12util(1) when installed, a private Postfix instance (hk-test-postfix) that serves
 * what cert assign wrote. certd's own code is linked for the expiry check, which runs
 * in-process against the daemon's state directory once the daemon has stopped.
 * Must never: leave a daemon running, or touch the system's Postfix instance.
 */
#include "certd.h"
#include "hk-certd-proto.h"
#include "hk-test-certd.h"
#include "hk-test-postfix.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* certd-servercert.c exports it for certd-server.c's start(). */

#define PASSPHRASE "hunter2 hunter2"

typedef struct {
	char *dir; /* the external CA's files, the services directory, exports */
	HkTestCertd *certd;
	HkIpcClient *client;
} Fixture;

/* ----- helpers ----- */

static void sh(Fixture *fx, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* Runs a shell command in fx->dir; it must succeed. */
static void
sh(Fixture *fx, const char *format, ...)
{
	g_autofree char *command = NULL;
	g_autofree char *script = NULL;
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	va_list args;
	int status;

	va_start(args, format);
	command = g_strdup_vprintf(format, args);
	va_end(args);
	script = g_strdup_printf("cd '%s' && %s", fx->dir, command);
	status = hk_test_run(NULL, &out, &err, "/bin/sh", "-c", script, NULL);
	if (status != 0)
		g_error("%s: exit %d\n%s%s", command, status, out, err);
}

/* Runs a shell command in fx->dir and returns its status, stdout and stderr together. */
static int
sh_output(Fixture *fx, char **output, const char *command)
{
	g_autofree char *script = g_strdup_printf("cd '%s' && (%s) 2>&1", fx->dir, command);

	return hk_test_run(NULL, output, NULL, "/bin/sh", "-c", script, NULL);
}

static char *
path_in(Fixture *fx, const char *name)
{
	return g_build_filename(fx->dir, name, NULL);
}

static char *
read_in(Fixture *fx, const char *name)
{
	g_autofree char *path = path_in(fx, name);
	char *data = NULL;

	g_assert_true(g_file_get_contents(path, &data, NULL, NULL));
	return data;
}

static guint
file_mode(const char *path)
{
	struct stat st;

	g_assert_cmpint(stat(path, &st), ==, 0);
	return st.st_mode & 07777;
}

static gboolean
exists_in_state(Fixture *fx, const char *rel)
{
	g_autofree char *path = g_build_filename(fx->certd->state, rel, NULL);

	return g_file_test(path, G_FILE_TEST_EXISTS);
}

/* Starts certd with the services directory under fx->dir, no reload commands but those
 * the extra lines set, and the extra lines. */
static void
start(Fixture *fx, const char *extra)
{
	static const char *const reload_keys[] = {"reload_smtpd", "reload_smtp",
	                                          "reload_submission", NULL};
	g_autoptr(GString) conf = g_string_new(NULL);
	g_autoptr(GError) error = NULL;

	g_string_append_printf(conf, "service_dir = %s/services\n", fx->dir);
	for (guint i = 0; reload_keys[i] != NULL; i++) {
		g_autofree char *key = g_strconcat(reload_keys[i], " =", NULL);

		if (extra == NULL || strstr(extra, key) == NULL)
			g_string_append_printf(conf, "%s\n", key);
	}
	g_string_append(conf, extra ? extra : "");
	fx->certd = hk_test_certd_start(conf->str);
	fx->client = hk_ipc_client_connect(fx->certd->socket, 30000, &error);
	g_assert_no_error(error);
}

/* {"k1": "v1", ...} from NULL-terminated pairs; a NULL value leaves its key out. */
static G_GNUC_NULL_TERMINATED json_object *
params_new(const char *key, ...)
{
	json_object *params = json_object_new_object();
	va_list args;

	va_start(args, key);
	for (; key != NULL; key = va_arg(args, const char *)) {
		const char *value = va_arg(args, const char *);

		if (value != NULL)
			json_object_object_add(params, key, json_object_new_string(value));
	}
	va_end(args);
	return params;
}

/* Calls op; params: transfer full. */
static json_object *
call(Fixture *fx, const char *op, json_object *params, GError **error)
{
	json_object *result = hk_ipc_client_call(fx->client, op, params, error);

	json_object_put(params);
	return result;
}

static json_object *
call_ok(Fixture *fx, const char *op, json_object *params)
{
	g_autoptr(GError) error = NULL;
	json_object *result = call(fx, op, params, &error);

	g_assert_no_error(error);
	return result;
}

static void
call_fails(Fixture *fx, const char *op, json_object *params, HkIpcError code, const char *text)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) result = call(fx, op, params, &error);

	g_assert_null(result);
	g_assert_error(error, HK_IPC_ERROR, (gint)code);
	hk_assert_contains(error->message, text);
}

/* The raw status of a server certificate, read from certd's database. */
static char *
db_status(Fixture *fx, const char *name)
{
	g_autofree char *path = g_build_filename(fx->certd->state, "certd.db", NULL);
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	char *status = NULL;

	g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
	g_assert_cmpint(
	        sqlite3_prepare_v2(db, "SELECT status FROM certs WHERE name = ?", -1, &stmt, NULL),
	        ==, SQLITE_OK);
	sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) == SQLITE_ROW)
		status = g_strdup((const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return status;
}

static void
assert_status(Fixture *fx, const char *name, const char *expected)
{
	g_autofree char *status = db_status(fx, name);

	g_assert_cmpstr(status, ==, expected);
}

/* The CNs of the certificates in pem, in order, joined by " > ". */
static char *
pem_cns(const char *pem)
{
	g_autoptr(BIO) bio = BIO_new_mem_buf(pem, -1);
	g_autoptr(GString) cns = g_string_new(NULL);
	X509 *cert;

	while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		char cn[256] = "";

		X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
		                          sizeof(cn));
		g_string_append_printf(cns, "%s%s", cns->len ? " > " : "", cn);
		X509_free(cert);
	}
	ERR_clear_error();
	return g_string_free(g_steal_pointer(&cns), FALSE);
}

/* ----- the external CA ----- */

static const char ca_ext[] = "basicConstraints = critical,CA:TRUE\n"
                             "keyUsage = critical,keyCertSign,cRLSign\n"
                             "subjectKeyIdentifier = hash\n"
                             "authorityKeyIdentifier = keyid:always\n";

/* root.crt (CN=Test Root) -> int.crt (CN=Test Intermediate), EC keys: quick to make. */
static void
make_external_ca(Fixture *fx)
{
	g_autofree char *ext = path_in(fx, "ca.ext");

	g_assert_true(g_file_set_contents(ext, ca_ext, -1, NULL));
	sh(fx, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
	       " -keyout root.key -subj '/CN=Test Root' -days 3650 -out root.crt"
	       " -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null");
	sh(fx, "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key"
	       " -subj '/CN=Test Intermediate' -out int.csr 2>/dev/null");
	sh(fx, "openssl x509 -req -in int.csr -CA root.crt -CAkey root.key -CAcreateserial"
	       " -days 1000 -extfile ca.ext -out int.crt 2>/dev/null");
}

/* The intermediate signs NAME.csr into NAME.crt for days, with serverAuth and the SANs. */
static void
sign_csr(Fixture *fx, const char *name, const char *san, int days)
{
	sh(fx,
	   "printf 'basicConstraints = CA:FALSE\\nkeyUsage = critical,digitalSignature,"
	   "keyEncipherment\\nextendedKeyUsage = serverAuth\\nsubjectAltName = %s\\n' > %s.ext"
	   " && openssl x509 -req -in %s.csr -CA int.crt -CAkey int.key -CAcreateserial"
	   " -days %d -extfile %s.ext -out %s.crt 2>/dev/null",
	   san, name, name, days, name, name);
}

/* NAME.key (PKCS#8; RSA 2048 or EC P-256) and NAME.crt for CN NAME.example.jp. */
static void
make_leaf(Fixture *fx, const char *name, gboolean ec, int days)
{
	g_autofree char *san = g_strdup_printf("DNS:%s.example.jp", name);

	if (ec)
		sh(fx, "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s.key",
		   name);
	else
		sh(fx, "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s.key",
		   name);
	sh(fx, "openssl req -new -key %s.key -subj /CN=%s.example.jp -out %s.csr", name, name,
	   name);
	sign_csr(fx, name, san, days);
}

/* cert.import of NAME.crt (+ the files in extra, appended) with NAME.key. */
static json_object *
import_params(Fixture *fx, const char *name, const char *cert_pem, const char *key_file,
              const char *passphrase)
{
	g_autofree char *key_pem = key_file ? read_in(fx, key_file) : NULL;

	return params_new(HK_CERTD_KEY_NAME, name, HK_CERTD_KEY_CERT_PEM, cert_pem,
	                  HK_CERTD_KEY_KEY_PEM, key_pem, HK_CERTD_KEY_PASSPHRASE, passphrase, NULL);
}

/* Makes NAME (leaf + key) and imports it with the intermediate; returns the reply. */
static json_object *
import_leaf(Fixture *fx, const char *name, gboolean ec, int days)
{
	g_autofree char *file = g_strconcat(name, ".crt", NULL);
	g_autofree char *key = g_strconcat(name, ".key", NULL);
	g_autofree char *leaf = NULL;
	g_autofree char *inter = NULL;
	g_autofree char *bundle = NULL;

	make_leaf(fx, name, ec, days);
	leaf = read_in(fx, file);
	inter = read_in(fx, "int.crt");
	bundle = g_strconcat(leaf, inter, NULL);
	return call_ok(fx, HK_CERTD_OP_CERT_IMPORT, import_params(fx, name, bundle, key, NULL));
}

/* ----- fixture ----- */

static void
fixture_setup(Fixture *fx, gconstpointer data)
{
	g_autoptr(GError) error = NULL;

	fx->dir = g_dir_make_tmp("hanko-servercert-XXXXXX", &error);
	g_assert_no_error(error);
	make_external_ca(fx);
}

static void
fixture_teardown(Fixture *fx, gconstpointer data)
{
	g_clear_pointer(&fx->client, hk_ipc_client_free);
	hk_test_certd_stop(fx->certd);
	if (!g_test_failed())
		hk_test_run(NULL, NULL, NULL, "rm", "-rf", fx->dir, NULL);
	g_free(fx->dir);
}

/* ----- csr create -> external CA -> cert import (seed 002, scenario A) ----- */

static void
check_csr_file(Fixture *fx)
{
	g_autofree char *out = NULL;

	g_assert_cmpint(sh_output(fx, &out, "openssl req -verify -in web.csr -noout"), ==, 0);
	hk_assert_contains(out, "verify OK");
	g_clear_pointer(&out, g_free);
	g_assert_cmpint(
	        sh_output(fx, &out, "openssl req -in web.csr -noout -subject -nameopt oneline"), ==,
	        0);
	hk_assert_contains(out, "C = JP, ST = Tokyo, L = Shibuya, O = Example K.K., "
	                        "OU = Support Division, CN = mail.example.jp, "
	                        "emailAddress = postmaster@example.jp");
	g_clear_pointer(&out, g_free);
	g_assert_cmpint(sh_output(fx, &out, "openssl req -in web.csr -noout -text"), ==, 0);
	hk_assert_contains(out, "DNS:mail.example.jp, DNS:smtp.example.jp, IP Address:192.0.2.25");
	hk_assert_contains(out, "Public-Key: (2048 bit)");
}

static void
create_csr(Fixture *fx)
{
	g_autofree char *csr = path_in(fx, "web.csr");
	g_autofree char *key = g_build_filename(fx->certd->state, "certs/server-web/key.pem", NULL);
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	int status = hk_test_ctl(fx->certd, NULL, &out, &err, "csr", "create", "--name", "web",
	                         "--cn", "mail.example.jp", "--country", "jp", "--state", "Tokyo",
	                         "--locality", "Shibuya", "--org", "Example K.K.", "--ou",
	                         "Support Division", "--email", "postmaster@example.jp", "--san",
	                         "DNS:smtp.example.jp", "--san", "IP:192.0.2.25", "-o", csr, NULL);

	g_assert_cmpint(status, ==, 0);
	hk_assert_contains(out, "status: requested");
	check_csr_file(fx);
	g_assert_cmpuint(file_mode(key), ==, 0600);
	assert_status(fx, "web", HK_CERTD_STATUS_REQUESTED);
}

static void
test_csr_import(Fixture *fx, gconstpointer data)
{
	g_autofree char *bundle = path_in(fx, "web-bundle.pem");
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	g_autoptr(json_object) exported = NULL;
	g_autofree char *cns = NULL;

	start(fx, NULL);
	create_csr(fx);
	/* the same name again: refused, and the request stays as it was */
	g_assert_cmpint(hk_test_ctl(fx->certd, NULL, NULL, &err, "csr", "create", "--name", "web",
	                            "--cn", "other.example.jp", NULL),
	                ==, 1);
	hk_assert_contains(err, "conflict");
	sign_csr(fx, "web", "DNS:mail.example.jp,DNS:smtp.example.jp,IP:192.0.2.25", 365);
	/* root, leaf, intermediate: any order */
	sh(fx, "cat root.crt web.crt int.crt > web-bundle.pem");
	g_assert_cmpint(hk_test_ctl(fx->certd, NULL, &out, NULL, "cert", "import", "--name", "web",
	                            "--cert", bundle, NULL),
	                ==, 0);
	hk_assert_contains(out, "status: unused");
	hk_assert_contains(out, "issuer: CN = Test Intermediate");
	g_assert_null(strstr(out, "warning"));
	assert_status(fx, "web", HK_CERTD_STATUS_UNUSED);
	exported = call_ok(fx, HK_CERTD_OP_CERT_EXPORT,
	                   params_new(HK_CERTD_KEY_ID, "web", HK_CERTD_KEY_FORMAT, "pem", NULL));
	cns = pem_cns(hk_json_get_string(exported, HK_CERTD_KEY_CERT_PEM));
	g_assert_cmpstr(cns, ==, "mail.example.jp > Test Intermediate > Test Root");
}

/* A certificate for another key: refused, nothing written, the request still pending. */
static void
test_csr_mismatch(Fixture *fx, gconstpointer data)
{
	g_autofree char *stranger = path_in(fx, "stranger.crt");
	g_autofree char *err = NULL;
	g_autofree char *other = NULL;

	start(fx, NULL);
	json_object_put(call_ok(fx, HK_CERTD_OP_CSR_CREATE,
	                        params_new(HK_CERTD_KEY_NAME, "pending", HK_CERTD_KEY_CN,
	                                   "mail.example.jp", HK_CERTD_KEY_KEY, "ec:p256", NULL)));
	make_leaf(fx, "stranger", TRUE, 90);
	g_assert_cmpint(hk_test_ctl(fx->certd, NULL, NULL, &err, "cert", "import", "--name",
	                            "pending", "--cert", stranger, NULL),
	                ==, 1);
	hk_assert_contains(err, "invalid_argument: the certificate does not match the key of "
	                        "request pending");
	g_assert_false(exists_in_state(fx, "certs/server-pending/chain.pem"));
	g_assert_false(exists_in_state(fx, "certs/server-pending/cert.pem"));
	assert_status(fx, "pending", HK_CERTD_STATUS_REQUESTED);
	/* a pending name cannot be reused for a certificate with its own key */
	other = read_in(fx, "stranger.crt");
	call_fails(fx, HK_CERTD_OP_CERT_IMPORT,
	           import_params(fx, "pending", other, "stranger.key", NULL), HK_IPC_ERROR_CONFLICT,
	           "pending request");
	call_fails(fx, HK_CERTD_OP_CERT_IMPORT, import_params(fx, "nobody", other, NULL, NULL),
	           HK_IPC_ERROR_NOT_FOUND, "no server certificate named \"nobody\"");
	/* a request has nothing to export or assign yet */
	call_fails(fx, HK_CERTD_OP_CERT_EXPORT, params_new(HK_CERTD_KEY_ID, "pending", NULL),
	           HK_IPC_ERROR_CONFLICT, "without a certificate");
	call_fails(fx, HK_CERTD_OP_CERT_ASSIGN,
	           params_new(HK_CERTD_KEY_ID, "pending", HK_CERTD_KEY_SERVICE, "smtpd", NULL),
	           HK_IPC_ERROR_CONFLICT, "without a certificate");
}

/* ----- cert import with a key: every PEM form seed 002 meets ----- */

typedef struct {
	const char *name;
	const char *convert; /* shell: $N.key (PKCS#8) -> $N.in */
	const char *label;   /* what $N.in must contain */
	gboolean encrypted;
} KeyForm;

static const KeyForm key_forms[] = {
        {"pkcs1", "openssl rsa -in $N.key -traditional -out $N.in", "BEGIN RSA PRIVATE KEY", FALSE},
        {"pkcs8", "cp $N.key $N.in", "BEGIN PRIVATE KEY", FALSE},
        {"pkcs8-aes",
         "openssl pkcs8 -topk8 -v2 aes-256-cbc -in $N.key -out $N.in -passout 'pass:" PASSPHRASE
         "'",
         "BEGIN ENCRYPTED PRIVATE KEY", TRUE},
        {"legacy-aes",
         "openssl rsa -aes256 -traditional -in $N.key -out $N.in -passout 'pass:" PASSPHRASE "'",
         "Proc-Type: 4,ENCRYPTED", TRUE},
};

static void
import_key_form(Fixture *fx, const KeyForm *form)
{
	g_autofree char *in = g_strconcat(form->name, ".in", NULL);
	g_autofree char *crt = g_strconcat(form->name, ".crt", NULL);
	g_autofree char *cert = NULL;
	g_autofree char *key_in = NULL;
	g_autofree char *dir = g_strconcat("certs/server-", form->name, NULL);
	g_autofree char *stored = NULL;
	g_autofree char *key_path = NULL;
	g_autoptr(json_object) result = NULL;

	make_leaf(fx, form->name, FALSE, 90);
	sh(fx, "N=%s && %s 2>/dev/null", form->name, form->convert);
	key_in = read_in(fx, in);
	hk_assert_contains(key_in, form->label);
	cert = read_in(fx, crt);
	if (form->encrypted) {
		call_fails(fx, HK_CERTD_OP_CERT_IMPORT,
		           import_params(fx, form->name, cert, in, "not the passphrase"),
		           HK_IPC_ERROR_INVALID_ARGUMENT, "wrong passphrase");
		call_fails(fx, HK_CERTD_OP_CERT_IMPORT,
		           import_params(fx, form->name, cert, in, NULL),
		           HK_IPC_ERROR_INVALID_ARGUMENT, "wrong passphrase");
		g_assert_false(exists_in_state(fx, dir));
	}
	result = call_ok(
	        fx, HK_CERTD_OP_CERT_IMPORT,
	        import_params(fx, form->name, cert, in, form->encrypted ? PASSPHRASE : NULL));
	g_assert_cmpstr(hk_json_get_string(result, HK_CERTD_KEY_STATUS), ==, "unused");
	/* kept as unencrypted PKCS#8, readable by certd alone */
	key_path = g_build_filename(fx->certd->state, dir, "key.pem", NULL);
	g_assert_cmpuint(file_mode(key_path), ==, 0600);
	g_assert_true(g_file_get_contents(key_path, &stored, NULL, NULL));
	hk_assert_contains(stored, "-----BEGIN PRIVATE KEY-----");
}

static void
test_key_forms(Fixture *fx, gconstpointer data)
{
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	g_autofree char *pass = path_in(fx, "pass");
	g_autofree char *cert = path_in(fx, "ctl.crt");
	g_autofree char *key = path_in(fx, "ctl.in");

	start(fx, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(key_forms); i++)
		import_key_form(fx, &key_forms[i]);
	/* hankoctl: the passphrase from a file, and from standard input */
	make_leaf(fx, "ctl", FALSE, 90);
	sh(fx, "openssl pkcs8 -topk8 -v2 aes-256-cbc -in ctl.key -out ctl.in -passout "
	       "'pass:" PASSPHRASE "' && printf '%%s\\n' '" PASSPHRASE "' > pass");
	g_assert_cmpint(hk_test_ctl(fx->certd, NULL, &out, &err, "cert", "import", "--name", "ctl",
	                            "--cert", cert, "--key", key, "--passphrase-file", pass, NULL),
	                ==, 0);
	hk_assert_contains(out, "status: unused");
	g_clear_pointer(&out, g_free);
	g_clear_pointer(&err, g_free);
	/* from stdin: the key is decrypted (else "wrong passphrase"), then found to be in
	 * certd already under the first name */
	g_assert_cmpint(hk_test_ctl(fx->certd, PASSPHRASE "\n", &out, &err, "cert", "import",
	                            "--name", "ctl2", "--cert", cert, "--key", key,
	                            "--passphrase-file", "-", NULL),
	                ==, 1);
	hk_assert_contains(err, "conflict: this certificate is already in certd as \"ctl\"");
}

/* ----- chains ----- */

static void
test_chain(Fixture *fx, gconstpointer data)
{
	g_autofree char *leaf = NULL;
	g_autofree char *inter = NULL;
	g_autofree char *root = NULL;
	g_autofree char *stray = NULL;
	g_autofree char *bundle = NULL;
	g_autofree char *cns = NULL;
	g_autoptr(json_object) result = NULL;
	g_autoptr(json_object) exported = NULL;
	json_object *warnings = NULL;

	start(fx, NULL);
	make_leaf(fx, "alone", TRUE, 90);
	sh(fx, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
	       "stray.key -subj '/CN=Stray' -days 30 -out stray.crt 2>/dev/null");
	leaf = read_in(fx, "alone.crt");
	inter = read_in(fx, "int.crt");
	root = read_in(fx, "root.crt");
	stray = read_in(fx, "stray.crt");
	/* the leaf alone: imported, with a warning naming the missing issuer */
	result = call_ok(fx, HK_CERTD_OP_CERT_IMPORT,
	                 import_params(fx, "alone", leaf, "alone.key", NULL));
	json_object_object_get_ex(result, HK_CERTD_KEY_WARNINGS, &warnings);
	g_assert_cmpuint(json_object_array_length(warnings), ==, 1);
	g_assert_cmpstr(json_object_get_string(json_object_array_get_idx(warnings, 0)), ==,
	                "missing intermediate: no certificate for issuer CN = Test Intermediate");
	g_clear_pointer(&result, json_object_put);
	/* shuffled, with a stranger: ordered, the stranger left out with a warning */
	make_leaf(fx, "full", FALSE, 90);
	g_free(leaf);
	leaf = read_in(fx, "full.crt");
	bundle = g_strconcat(root, stray, inter, leaf, NULL);
	result = call_ok(fx, HK_CERTD_OP_CERT_IMPORT,
	                 import_params(fx, "full", bundle, "full.key", NULL));
	json_object_object_get_ex(result, HK_CERTD_KEY_WARNINGS, &warnings);
	g_assert_cmpuint(json_object_array_length(warnings), ==, 1);
	hk_assert_contains(json_object_get_string(json_object_array_get_idx(warnings, 0)),
	                   "CN = Stray is not part of the chain");
	exported = call_ok(fx, HK_CERTD_OP_CERT_EXPORT, params_new(HK_CERTD_KEY_ID, "full", NULL));
	cns = pem_cns(hk_json_get_string(exported, HK_CERTD_KEY_CERT_PEM));
	g_assert_cmpstr(cns, ==, "full.example.jp > Test Intermediate > Test Root");
}

/* `openssl ca` sets any validity, past or future, which `openssl x509 -req` cannot. */
static void
make_dated_leaf(Fixture *fx, const char *name, const char *start_date, const char *end_date)
{
	sh(fx, "printf '[ca]\\ndefault_ca = t\\n[t]\\ndatabase = index.txt\\nnew_certs_dir = .\\n"
	       "rand_serial = yes\\ndefault_md = sha256\\npolicy = p\\nunique_subject = no\\n"
	       "[p]\\ncommonName = supplied\\n' > ca.cnf && touch index.txt");
	sh(fx,
	   "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key"
	   " -subj /CN=%s.example.jp -out %s.csr 2>/dev/null",
	   name, name, name);
	sh(fx,
	   "openssl ca -batch -config ca.cnf -cert int.crt -keyfile int.key -in %s.csr"
	   " -out %s.crt -startdate %s -enddate %s -notext 2>/dev/null",
	   name, name, start_date, end_date);
}

typedef struct {
	const char *what;
	const char *cert_pem; /* NULL: the file named by cert_file */
	const char *cert_file;
	const char *key_file;
	HkIpcError code;
	const char *message;
} BadImport;

static const BadImport bad_imports[] = {
        {"expired leaf", NULL, "old.crt", "old.key", HK_IPC_ERROR_INVALID_ARGUMENT,
         "the certificate expired on 2020-02-01T00:00:00Z"},
        {"future leaf", NULL, "future.crt", "future.key", HK_IPC_ERROR_INVALID_ARGUMENT,
         "the certificate is not valid before 2090-01-01T00:00:00Z"},
        {"garbage", "this is not PEM\n", NULL, "old.key", HK_IPC_ERROR_INVALID_ARGUMENT,
         "no certificate found in cert_pem"},
        {"bad block 2", NULL, "bad2.pem", "full.key", HK_IPC_ERROR_INVALID_ARGUMENT,
         "cert_pem: PEM block 2 is not a certificate: "},
        {"a key in cert_pem", NULL, "withkey.pem", "full.key", HK_IPC_ERROR_INVALID_ARGUMENT,
         "cert_pem: PEM block 2 is not a certificate: it is a \"PRIVATE KEY\" block"},
        {"key of another certificate", NULL, "full.crt", "old.key", HK_IPC_ERROR_INVALID_ARGUMENT,
         "no certificate in cert_pem matches the key"},
        {"not a key", NULL, "full.crt", "full.crt", HK_IPC_ERROR_INVALID_ARGUMENT,
         "no private key found in key_pem"},
};

/* Each bad input gets an error naming it, and nothing is written. */
static void
test_bad_imports(Fixture *fx, gconstpointer data)
{
	start(fx, NULL);
	make_dated_leaf(fx, "old", "20200101000000Z", "20200201000000Z");
	make_dated_leaf(fx, "future", "20900101000000Z", "20910101000000Z");
	make_leaf(fx, "full", FALSE, 90);
	sh(fx, "cat full.crt > bad2.pem && printf -- '-----BEGIN CERTIFICATE-----\\nAAAA\\n"
	       "-----END CERTIFICATE-----\\n' >> bad2.pem && cat full.crt full.key > withkey.pem");
	for (guint i = 0; i < G_N_ELEMENTS(bad_imports); i++) {
		const BadImport *b = &bad_imports[i];
		g_autofree char *pem =
		        b->cert_pem ? g_strdup(b->cert_pem) : read_in(fx, b->cert_file);

		g_test_message("%s", b->what);
		call_fails(fx, HK_CERTD_OP_CERT_IMPORT,
		           import_params(fx, "bad", pem, b->key_file, NULL), b->code, b->message);
		g_assert_false(exists_in_state(fx, "certs/server-bad"));
		g_assert_null(db_status(fx, "bad"));
	}
}

/* ----- export ----- */

static void
check_export_pem(Fixture *fx)
{
	g_autofree char *out = NULL;
	g_autofree char *pem = path_in(fx, "rsa-export.pem");
	g_autofree char *text = NULL;

	g_assert_cmpint(hk_test_ctl(fx->certd, NULL, NULL, NULL, "cert", "export", "rsa", "--pem",
	                            "--key-format", "pkcs1", "-o", pem, NULL),
	                ==, 0);
	g_assert_cmpuint(file_mode(pem), ==, 0600);
	text = read_in(fx, "rsa-export.pem");
	g_assert_true(g_str_has_prefix(text, "-----BEGIN RSA PRIVATE KEY-----"));
	g_assert_cmpint(sh_output(fx, &out, "openssl rsa -check -noout -in rsa-export.pem"), ==, 0);
	hk_assert_contains(out, "RSA key ok");
	g_clear_pointer(&out, g_free);
	/* the exported key is the imported one */
	g_assert_cmpint(sh_output(fx, &out,
	                          "openssl pkey -in rsa-export.pem -pubout | "
	                          "cmp - rsa-pub.pem && echo same-key"),
	                ==, 0);
	hk_assert_contains(out, "same-key");
}

static void
check_export_p12(Fixture *fx)
{
	g_autofree char *p12 = path_in(fx, "rsa.p12");
	g_autofree char *out = NULL;
	g_autofree char *command = NULL;
	const char *password;

	g_assert_cmpint(hk_test_ctl(fx->certd, NULL, &out, NULL, "cert", "export", "rsa", "--p12",
	                            "-o", p12, NULL),
	                ==, 0);
	g_assert_cmpuint(file_mode(p12), ==, 0600);
	hk_assert_contains(out, "p12 password: ");
	password = strstr(out, "p12 password: ") + strlen("p12 password: ");
	command = g_strdup_printf("openssl pkcs12 -in rsa.p12 -info -nodes -passin 'pass:%.20s'",
	                          password);
	g_clear_pointer(&out, g_free);
	g_assert_cmpint(sh_output(fx, &out, command), ==, 0);
	hk_assert_contains(out, "MAC: sha256");
	hk_assert_contains(out, "PBES2, PBKDF2, AES-256-CBC");
	hk_assert_contains(out, "friendlyName: rsa");
	hk_assert_contains(out, "subject=CN = Test Intermediate");
	g_clear_pointer(&out, g_free);
	g_assert_cmpint(sh_output(fx, &out, "openssl pkcs12 -in rsa.p12 -noout -passin pass:wrong"),
	                !=, 0);
}

/* A password of the admin's choosing; NSS reads the file too. */
static void
check_export_p12_password(Fixture *fx)
{
	g_autofree char *p12 = path_in(fx, "chosen.p12");
	g_autofree char *pass = path_in(fx, "p12pass");
	g_autofree char *out = NULL;

	sh(fx, "echo 'chosen password' > p12pass");
	g_assert_cmpint(hk_test_ctl(fx->certd, NULL, &out, NULL, "cert", "export", "rsa", "--p12",
	                            "--password-file", pass, "-o", p12, NULL),
	                ==, 0);
	g_assert_true(out == NULL || strstr(out, "p12 password") == NULL); /* none generated */
	sh(fx, "openssl pkcs12 -in chosen.p12 -noout -passin 'pass:chosen password'");
	/* pk12util comes with libnss3-tools, which contrib/scripts/install-deps.sh installs */
	sh(fx, "mkdir nss && certutil -N -d sql:nss --empty-password && "
	       "pk12util -i chosen.p12 -d sql:nss -W 'chosen password' >/dev/null && "
	       "certutil -L -d sql:nss | grep -q '^rsa  *u,u,u'");
}

static void
test_export(Fixture *fx, gconstpointer data)
{
	g_autoptr(json_object) result = NULL;
	g_autoptr(json_object) ec = NULL;
	g_autoptr(json_object) encrypted = NULL;

	start(fx, NULL);
	result = import_leaf(fx, "rsa", FALSE, 90);
	sh(fx, "openssl pkey -in rsa.key -pubout -out rsa-pub.pem");
	check_export_pem(fx);
	check_export_p12(fx);
	check_export_p12_password(fx);
	/* EC keys in the traditional form are SEC1 */
	g_clear_pointer(&result, json_object_put);
	result = import_leaf(fx, "ec", TRUE, 90);
	ec = call_ok(fx, HK_CERTD_OP_CERT_EXPORT,
	             params_new(HK_CERTD_KEY_ID, "ec", HK_CERTD_KEY_KEY_FORMAT, "pkcs1", NULL));
	hk_assert_contains(hk_json_get_string(ec, HK_CERTD_KEY_KEY_PEM),
	                   "-----BEGIN EC PRIVATE KEY-----");
	/* PEM with a password: the key is encrypted (seed 002's "openssl rsa -aes256") */
	encrypted = call_ok(fx, HK_CERTD_OP_CERT_EXPORT,
	                    params_new(HK_CERTD_KEY_ID, "rsa", HK_CERTD_KEY_KEY_FORMAT, "pkcs1",
	                               HK_CERTD_KEY_PASSWORD, "pw", NULL));
	hk_assert_contains(hk_json_get_string(encrypted, HK_CERTD_KEY_KEY_PEM),
	                   "Proc-Type: 4,ENCRYPTED");
	call_fails(fx, HK_CERTD_OP_CERT_EXPORT,
	           params_new(HK_CERTD_KEY_ID, "rsa", HK_CERTD_KEY_FORMAT, "p12",
	                      HK_CERTD_KEY_KEY_FORMAT, "pkcs1", NULL),
	           HK_IPC_ERROR_INVALID_ARGUMENT, "key_format applies to the pem format only");
	call_fails(fx, HK_CERTD_OP_CERT_EXPORT,
	           params_new(HK_CERTD_KEY_ID, "rsa", HK_CERTD_KEY_FORMAT, "der", NULL),
	           HK_IPC_ERROR_INVALID_ARGUMENT, "format must be pem or p12");
	call_fails(fx, HK_CERTD_OP_CERT_EXPORT, params_new(HK_CERTD_KEY_ID, "nope", NULL),
	           HK_IPC_ERROR_NOT_FOUND, "no server certificate named \"nope\"");
}

/* ----- assign ----- */

static const char assign_conf[] = "reload_smtpd = /bin/sh -c 'echo reloaded; exit 3'\n"
                                  "reload_smtp = /bin/sh -c 'echo started; sleep 30'\n"
                                  "reload_gateway = /bin/sh -c 'yes | head -c 10000'\n"
                                  "reload_timeout = 1s\n";

static json_object *
assign(Fixture *fx, const char *name, const char *service)
{
	return call_ok(fx, HK_CERTD_OP_CERT_ASSIGN,
	               params_new(HK_CERTD_KEY_ID, name, HK_CERTD_KEY_SERVICE, service, NULL));
}

static json_object *
reload_of(json_object *result)
{
	json_object *reload = NULL;

	g_assert_true(json_object_object_get_ex(result, HK_CERTD_KEY_RELOAD, &reload));
	return reload;
}

/* The one file Postfix reads: key first, then the leaf, then the intermediate. */
static void
check_service_file(Fixture *fx, const char *service, const char *cn)
{
	g_autofree char *file = g_strdup_printf("services/%s.pem", service);
	g_autofree char *path = path_in(fx, file);
	g_autofree char *pem = read_in(fx, file);
	g_autofree char *cns = pem_cns(pem);
	g_autofree char *expected = g_strdup_printf("%s > Test Intermediate", cn);
	g_autofree char *command = g_strdup_printf(
	        "openssl pkey -in %s -noout && openssl verify -CAfile root.crt -untrusted %s %s",
	        file, file, file);
	g_autofree char *out = NULL;

	g_assert_cmpuint(file_mode(path), ==, 0600);
	g_assert_true(g_str_has_prefix(pem, "-----BEGIN PRIVATE KEY-----"));
	g_assert_cmpstr(cns, ==, expected);
	g_assert_cmpint(sh_output(fx, &out, command), ==, 0);
	hk_assert_contains(out, ": OK");
}

static void
check_reload_failure(Fixture *fx)
{
	g_autoptr(json_object) result = assign(fx, "first", "smtpd");
	json_object *reload = reload_of(result);
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	g_autofree char *log = NULL;

	g_assert_cmpstr(hk_json_get_string(reload, HK_CERTD_KEY_COMMAND), ==,
	                "/bin/sh -c 'echo reloaded; exit 3'");
	g_assert_cmpint(hk_json_get_int(reload, HK_CERTD_KEY_EXIT_STATUS, -1), ==, 3);
	g_assert_cmpstr(hk_json_get_string(reload, HK_CERTD_KEY_OUTPUT), ==, "reloaded\n");
	g_assert_false(hk_json_get_bool(reload, HK_CERTD_KEY_TIMED_OUT, TRUE));
	check_service_file(fx, "smtpd", "first.example.jp");
	assert_status(fx, "first", HK_CERTD_STATUS_IN_USE); /* the assignment stays */
	/* hankoctl shows the outcome and fails */
	g_assert_cmpint(hk_test_ctl(fx->certd, NULL, &out, &err, "cert", "assign", "first",
	                            "--service", "smtpd", NULL),
	                ==, 1);
	hk_assert_contains(out, "files: ");
	hk_assert_contains(out, "exit status 3");
	hk_assert_contains(out, "  reloaded");
	hk_assert_contains(err, "the reload command failed");
	log = hk_test_certd_log(fx->certd);
	hk_assert_contains(log, "reload of smtpd: \"/bin/sh -c 'echo reloaded; exit 3'\" exited "
	                        "with status 3");
}

static void
check_reload_timeout(Fixture *fx)
{
	gint64 start_us = g_get_monotonic_time();
	g_autoptr(json_object) result = assign(fx, "first", "smtp");
	json_object *reload = reload_of(result);

	g_assert_cmpint(g_get_monotonic_time() - start_us, <, 10 * G_USEC_PER_SEC);
	g_assert_true(hk_json_get_bool(reload, HK_CERTD_KEY_TIMED_OUT, FALSE));
	g_assert_cmpint(hk_json_get_int(reload, HK_CERTD_KEY_EXIT_STATUS, -1), ==, 128 + 9);
	g_assert_cmpstr(hk_json_get_string(reload, HK_CERTD_KEY_OUTPUT), ==, "started\n");
	check_service_file(fx, "smtp", "first.example.jp");
}

/* A second certificate takes smtpd over; the first, used nowhere else, is unused again. */
static void
check_reassign(Fixture *fx)
{
	g_autoptr(json_object) first = NULL;
	g_autoptr(json_object) second = NULL;
	g_autoptr(json_object) output = NULL;
	g_autofree char *out = NULL;

	first = assign(fx, "first", "submission"); /* no reload command: reload null */
	g_assert_null(reload_of(first));
	g_assert_cmpint(hk_test_ctl(fx->certd, NULL, &out, NULL, "cert", "assign", "second",
	                            "--service", "submission", NULL),
	                ==, 0);
	hk_assert_contains(out, "reload: none configured");
	check_service_file(fx, "submission", "second.example.jp");
	assert_status(fx, "first", HK_CERTD_STATUS_IN_USE); /* still smtpd and smtp */
	second = assign(fx, "second", "smtpd");
	json_object_put(assign(fx, "second", "smtp"));
	assert_status(fx, "first", HK_CERTD_STATUS_UNUSED);
	assert_status(fx, "second", HK_CERTD_STATUS_IN_USE);
	/* output beyond 4 KiB is cut */
	output = assign(fx, "second", "gateway");
	g_assert_cmpuint(strlen(hk_json_get_string(reload_of(output), HK_CERTD_KEY_OUTPUT)), ==,
	                 4096);
}

/* hanko-milter's view: the key and chain of whatever the gateway has been assigned. */
static void
check_identity(Fixture *fx)
{
	g_autoptr(json_object) identity =
	        call_ok(fx, HK_CERTD_OP_SERVICE_IDENTITY,
	                params_new(HK_CERTD_KEY_SERVICE, "gateway", NULL));
	g_autofree char *cns = pem_cns(hk_json_get_string(identity, HK_CERTD_KEY_CERT_PEM));

	g_assert_cmpstr(hk_json_get_string(identity, HK_CERTD_KEY_NAME), ==, "second");
	g_assert_true(g_str_has_prefix(hk_json_get_string(identity, HK_CERTD_KEY_KEY_PEM),
	                               "-----BEGIN PRIVATE KEY-----"));
	g_assert_cmpstr(cns, ==, "second.example.jp > Test Intermediate");
	call_fails(fx, HK_CERTD_OP_SERVICE_IDENTITY,
	           params_new(HK_CERTD_KEY_SERVICE, "smtpd", NULL), HK_IPC_ERROR_INVALID_ARGUMENT,
	           "only the gateway's identity is handed out, not smtpd's");
}

/* cert.list belongs to certd-client.c; it must show what assign did. */
static void
check_listed(Fixture *fx)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_object) list = call(fx, HK_CERTD_OP_CERT_LIST,
	                                   params_new(HK_CERTD_KEY_KIND, "server", NULL), &error);
	json_object *certs = NULL;
	guint seen = 0;

	if (g_error_matches(error, HK_IPC_ERROR, HK_IPC_ERROR_UNKNOWN_OP)) {
		g_test_message("cert.list is not there yet");
		return;
	}
	g_assert_no_error(error);
	json_object_object_get_ex(list, HK_CERTD_KEY_CERTS, &certs);
	for (size_t i = 0; certs && i < json_object_array_length(certs); i++) {
		json_object *c = json_object_array_get_idx(certs, i);
		const char *name = hk_json_get_string(c, HK_CERTD_KEY_NAME);
		const char *status = hk_json_get_string(c, HK_CERTD_KEY_STATUS);

		if (g_strcmp0(name, "first") == 0 && ++seen)
			g_assert_cmpstr(status, ==, HK_CERTD_STATUS_UNUSED);
		if (g_strcmp0(name, "second") == 0 && ++seen)
			g_assert_cmpstr(status, ==, HK_CERTD_STATUS_IN_USE);
	}
	g_assert_cmpuint(seen, ==, 2);
}

/* events.watch on a second connection hears cert.assigned. */
static HkIpcClient *
watch(Fixture *fx)
{
	static const char request[] = "{\"id\":1,\"op\":\"events.watch\"}\n";
	g_autoptr(GError) error = NULL;
	HkIpcClient *watcher = hk_ipc_client_connect(fx->certd->socket, 10000, &error);
	g_autofree char *reply = NULL;

	g_assert_no_error(error);
	g_assert_true(hk_ipc_client_send_line(watcher, request, strlen(request), &error));
	reply = hk_ipc_client_read_line(watcher, &error);
	g_assert_no_error(error);
	hk_assert_contains(reply, "\"ok\":true");
	return watcher;
}

static void
test_assign(Fixture *fx, gconstpointer data)
{
	g_autoptr(HkIpcClient) watcher = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *event = NULL;

	start(fx, assign_conf);
	json_object_put(import_leaf(fx, "first", FALSE, 90));
	json_object_put(import_leaf(fx, "second", TRUE, 90));
	watcher = watch(fx);
	check_reload_failure(fx);
	event = hk_ipc_client_read_line(watcher, &error);
	g_assert_no_error(error);
	hk_assert_contains(event, "\"event\":\"cert.assigned\"");
	hk_assert_contains(event, "\"service\":\"smtpd\"");
	hk_assert_contains(event, "\"name\":\"first\"");
	check_reload_timeout(fx);
	call_fails(fx, HK_CERTD_OP_SERVICE_IDENTITY,
	           params_new(HK_CERTD_KEY_SERVICE, "gateway", NULL), HK_IPC_ERROR_NOT_FOUND,
	           "no certificate is assigned to gateway");
	check_reassign(fx);
	check_identity(fx);
	check_listed(fx);
	call_fails(fx, HK_CERTD_OP_CERT_ASSIGN,
	           params_new(HK_CERTD_KEY_ID, "first", HK_CERTD_KEY_SERVICE, "imap", NULL),
	           HK_IPC_ERROR_INVALID_ARGUMENT,
	           "service must be smtpd, smtp, submission or "
	           "gateway");
	call_fails(fx, HK_CERTD_OP_CERT_ASSIGN,
	           params_new(HK_CERTD_KEY_ID, "nope", HK_CERTD_KEY_SERVICE, "smtpd", NULL),
	           HK_IPC_ERROR_NOT_FOUND, "no server certificate named \"nope\"");
}

/* ----- the expiry warning ----- */

static void
check_expiry_in_process(Fixture *fx)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(HkConfig) config = hk_config_load(fx->certd->conf, certd_config_sections, &error);
	CertdState *state;

	g_assert_no_error(error);
	state = certd_state_open(config, &error);
	g_assert_no_error(error);
	g_test_expect_message("certd", G_LOG_LEVEL_WARNING,
	                      "certificate soon (in use for smtp, smtpd) expires on *, in * days");
	certd_servercert_schedule(state);
	g_test_assert_expected_messages();
	g_assert_cmpuint(state->expiry_timer, !=, 0);
	certd_state_free(state);
}

static void
test_expiry(Fixture *fx, gconstpointer data)
{
	g_autofree char *log = NULL;

	start(fx, NULL);
	json_object_put(import_leaf(fx, "soon", TRUE, 10));
	json_object_put(import_leaf(fx, "later", TRUE, 90));
	json_object_put(assign(fx, "soon", "smtpd"));
	json_object_put(assign(fx, "soon", "smtp"));
	json_object_put(assign(fx, "later", "submission"));
	/* certd-server.c's start() runs the check once hanko-certd is up */
	hk_test_certd_kill(fx->certd, SIGTERM);
	hk_test_certd_restart(fx->certd);
	log = hk_test_certd_log(fx->certd);
	hk_assert_contains(log, "certificate soon (in use for smtp, smtpd) expires on");
	g_assert_null(strstr(log, "certificate later (in use"));
	hk_test_certd_kill(fx->certd, SIGTERM);
	check_expiry_in_process(fx);
	hk_test_certd_restart(fx->certd); /* teardown stops it */
}

/* ----- a real Postfix serves what cert assign wrote (seed 002's last step) ----- */

/* The CN of the certificate Postfix's smtpd presents after STARTTLS, once it verifies
 * against the external root with the intermediate Postfix sent; NULL: it did not. */
static char *
served_cn(Fixture *fx, HkTestPostfix *pf)
{
	g_autofree char *command = g_strdup_printf(
	        "openssl s_client -connect 127.0.0.1:%d -starttls smtp -brief -CAfile root.crt "
	        "-verify_return_error < /dev/null",
	        pf->smtp_port);
	g_autofree char *out = NULL;
	const char *cn;

	if (sh_output(fx, &out, command) != 0 || strstr(out, "Verification: OK") == NULL ||
	    (cn = strstr(out, "Peer certificate: CN = ")) == NULL)
		return NULL;
	cn += strlen("Peer certificate: CN = ");
	return g_strndup(cn, strcspn(cn, "\n"));
}

/* postfix reload lets new smtpd processes read the file; idle old ones exit soon. */
static void
wait_served(Fixture *fx, HkTestPostfix *pf, const char *cn)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	g_autofree char *seen = NULL;

	while (g_get_monotonic_time() < deadline) {
		g_free(seen);
		seen = served_cn(fx, pf);
		if (g_strcmp0(seen, cn) == 0)
			return;
		g_usleep(200 * 1000);
	}
	g_error("Postfix serves %s, not %s:\n%s", seen ? seen : "no verified certificate", cn,
	        hk_test_postfix_log(pf));
}

static void
assign_reloads(Fixture *fx, const char *name)
{
	g_autoptr(json_object) result = assign(fx, name, "smtpd");
	json_object *reload = reload_of(result);

	if (hk_json_get_int(reload, HK_CERTD_KEY_EXIT_STATUS, -1) != 0)
		g_error("postfix reload: %s", hk_json_get_string(reload, HK_CERTD_KEY_OUTPUT));
}

static void
test_postfix(Fixture *fx, gconstpointer data)
{
	g_autofree char *conf = g_strdup_printf("reload_smtpd = /bin/sh -c '/usr/sbin/postfix -c "
	                                        "\"$(cat %s/postfix-etc)\" reload'\n",
	                                        fx->dir);
	g_autofree char *main_extra =
	        g_strdup_printf("smtpd_tls_chain_files = %s/services/smtpd.pem\n", fx->dir);
	g_autofree char *etc = path_in(fx, "postfix-etc");
	HkTestPostfix *pf;

	/* contrib/scripts/install-deps.sh installs it; its absence is a broken setup */
	g_assert_true(g_file_test("/usr/sbin/postfix", G_FILE_TEST_IS_EXECUTABLE));
	start(fx, conf);
	json_object_put(import_leaf(fx, "first", TRUE, 90));
	json_object_put(import_leaf(fx, "second", FALSE, 90));
	pf = hk_test_postfix_start(main_extra, NULL);
	g_assert_true(g_file_set_contents(etc, pf->config_dir, -1, NULL));
	assign_reloads(fx, "first");
	wait_served(fx, pf, "first.example.jp");
	assign_reloads(fx, "second");
	wait_served(fx, pf, "second.example.jp");
	hk_test_postfix_stop(pf);
}

/* ----- bad requests ----- */

typedef struct {
	const char *what;
	const char *params; /* JSON */
	HkIpcError code;
	const char *message;
} BadRequest;

static const BadRequest bad_csrs[] = {
        {"name with a slash", "{\"name\":\"a/b\",\"cn\":\"mail.example.jp\"}",
         HK_IPC_ERROR_INVALID_ARGUMENT, "use only letters, digits"},
        {"name too long",
         "{\"name\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
         "\"cn\":\"mail.example.jp\"}",
         HK_IPC_ERROR_INVALID_ARGUMENT, "1..64 characters"},
        {"no cn", "{\"name\":\"x\"}", HK_IPC_ERROR_INVALID_ARGUMENT, "cn"},
        {"empty cn", "{\"name\":\"x\",\"cn\":\"\"}", HK_IPC_ERROR_INVALID_ARGUMENT,
         "common name (CN) is required"},
        {"small key", "{\"name\":\"x\",\"cn\":\"mail.example.jp\",\"key\":\"rsa:1024\"}",
         HK_IPC_ERROR_INVALID_ARGUMENT, "unsupported key \"rsa:1024\""},
        {"p384 is not offered", "{\"name\":\"x\",\"cn\":\"mail.example.jp\",\"key\":\"ec:p384\"}",
         HK_IPC_ERROR_INVALID_ARGUMENT, "rsa:2048, rsa:4096, ec:p256"},
        {"three-letter country", "{\"name\":\"x\",\"cn\":\"mail.example.jp\",\"country\":\"JPN\"}",
         HK_IPC_ERROR_INVALID_ARGUMENT, "country must be two letters"},
        {"bad email", "{\"name\":\"x\",\"cn\":\"mail.example.jp\",\"email\":\"postmaster\"}",
         HK_IPC_ERROR_INVALID_ARGUMENT, "not a valid e-mail address"},
        {"bad san type", "{\"name\":\"x\",\"cn\":\"mail.example.jp\",\"san\":[\"URI:x\"]}",
         HK_IPC_ERROR_INVALID_ARGUMENT, "san \"URI:x\""},
        {"bad san host", "{\"name\":\"x\",\"cn\":\"mail.example.jp\",\"san\":[\"DNS:a..b\"]}",
         HK_IPC_ERROR_INVALID_ARGUMENT, "san \"DNS:a..b\""},
        {"bad san address", "{\"name\":\"x\",\"cn\":\"mail.example.jp\",\"san\":[\"IP:1.2.3\"]}",
         HK_IPC_ERROR_INVALID_ARGUMENT, "san \"IP:1.2.3\""},
        {"san not strings", "{\"name\":\"x\",\"cn\":\"mail.example.jp\",\"san\":[1]}",
         HK_IPC_ERROR_INVALID_ARGUMENT, "san must be an array of strings"},
        {"control character", "{\"name\":\"x\",\"cn\":\"mail.example.jp\",\"org\":\"a\\u0001\"}",
         HK_IPC_ERROR_INVALID_ARGUMENT, "org contains a control character"},
};

static void
test_bad_csr(Fixture *fx, gconstpointer data)
{
	g_autoptr(json_object) ok = NULL;

	start(fx, NULL);
	for (guint i = 0; i < G_N_ELEMENTS(bad_csrs); i++) {
		g_test_message("%s", bad_csrs[i].what);
		call_fails(fx, HK_CERTD_OP_CSR_CREATE, json_tokener_parse(bad_csrs[i].params),
		           bad_csrs[i].code, bad_csrs[i].message);
	}
	g_assert_false(exists_in_state(fx, "certs/server-x"));
	/* a CN that is no host name gets no DNS name; EC keys; Japanese subject text */
	ok = call_ok(fx, HK_CERTD_OP_CSR_CREATE,
	             params_new(HK_CERTD_KEY_NAME, "x", HK_CERTD_KEY_CN, "判子 Gateway",
	                        HK_CERTD_KEY_ORG, "株式会社テスト", HK_CERTD_KEY_KEY, "ec:p256",
	                        NULL));
	g_assert_cmpstr(hk_json_get_string(ok, HK_CERTD_KEY_KEY), ==, "ec:p256");
	g_assert_null(strstr(hk_json_get_string(ok, HK_CERTD_KEY_CSR_PEM), "PRIVATE"));
	sh(fx, "printf '%%s' '%s' > x.csr", hk_json_get_string(ok, HK_CERTD_KEY_CSR_PEM));
	sh(fx, "openssl req -in x.csr -noout -subject -nameopt oneline,-esc_msb | "
	       "grep -q 'O = 株式会社テスト, CN = 判子 Gateway' && "
	       "! openssl req -in x.csr -noout -text | grep -q 'Subject Alternative Name'");
}

/* ----- main ----- */

static void
add(const char *path, void (*func)(Fixture *, gconstpointer))
{
	g_test_add(path, Fixture, NULL, fixture_setup, func, fixture_teardown);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	add("/certd/servercert/csr-import", test_csr_import);
	add("/certd/servercert/csr-mismatch", test_csr_mismatch);
	add("/certd/servercert/key-forms", test_key_forms);
	add("/certd/servercert/chain", test_chain);
	add("/certd/servercert/bad-imports", test_bad_imports);
	add("/certd/servercert/export", test_export);
	add("/certd/servercert/assign", test_assign);
	add("/certd/servercert/expiry", test_expiry);
	add("/certd/servercert/postfix", test_postfix);
	add("/certd/servercert/bad-csr", test_bad_csr);
	return g_test_run();
}
