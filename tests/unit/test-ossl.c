/*
 * test-ossl: unit tests for common/hk-ossl.
 *
 * Checks the fingerprints against what the openssl command prints for real EC and RSA
 * certificates made in a temporary directory, the certificate loader on good and bad
 * files, the error-queue helper on real OpenSSL failures, and the fingerprint parser on
 * what people paste. Needs the openssl command on PATH; leaves nothing behind.
 */
#include "hk-ossl.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>
#include <openssl/err.h>

/* SHA-256("abc"), FIPS 180-2 appendix B.1. */
#define ABC_HEX "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define ABC_31                                                                                     \
	"BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:"  \
	"00:15"
#define ABC_FP ABC_31 ":AD"
#define EMPTY_FP                                                                                   \
	"E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:"  \
	"52:B8:55"

static char *tmpdir;

/* Runs argv in tmpdir and returns its standard output; the test fails if it fails. */
static char *
run(const char *const *argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *out = NULL;
	g_autofree char *err = NULL;
	int status = 0;

	g_spawn_sync(tmpdir, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
	             &status, &error);
	g_assert_no_error(error);
	if (!g_spawn_check_wait_status(status, &error))
		g_test_message("%s failed: %s", argv[0], err);
	g_assert_no_error(error);
	return g_steal_pointer(&out);
}

static char *
run_sh(const char *script)
{
	const char *argv[] = {"sh", "-c", script, NULL};

	return run(argv);
}

/* Makes <name>.pem (and <name>.key) once with `openssl req`; returns the PEM's path. */
static char *
make_cert(const char *name, const char *newkey, const char *pkeyopt)
{
	g_autofree char *key = g_strconcat(name, ".key", NULL);
	g_autofree char *pem = g_strconcat(name, ".pem", NULL);
	char *path = g_build_filename(tmpdir, pem, NULL);
	const char *argv[] = {"openssl", "req", "-x509",   "-nodes", "-subj",    "/CN=test",
	                      "-days",   "2",   "-newkey", newkey,   "-pkeyopt", pkeyopt,
	                      "-keyout", key,   "-out",    pem,      NULL};

	if (!g_file_test(path, G_FILE_TEST_EXISTS))
		g_free(run(argv));
	return path;
}

static char *
make_ec_cert(void)
{
	return make_cert("ec", "ec", "ec_paramgen_curve:P-256");
}

static char *
make_rsa_cert(void)
{
	return make_cert("rsa", "rsa", "rsa_keygen_bits:2048");
}

static X509 *
load_or_fail(const char *path)
{
	g_autoptr(GError) error = NULL;
	X509 *cert = hk_ossl_load_cert_file(path, &error);

	g_assert_no_error(error);
	g_assert_nonnull(cert);
	g_assert_cmpuint(ERR_peek_error(), ==, 0);
	return cert;
}

/* "SHA2-256(stdin)= ab:cd..." or "sha256 Fingerprint=AB:CD..." -> "AB:CD..." */
static char *
after_last(const char *output, char sep)
{
	const char *p = strrchr(output, sep);

	g_assert_nonnull(p);
	return g_strstrip(g_ascii_strup(p + 1, -1));
}

static void
assert_fingerprint_format(const char *fp)
{
	g_assert_nonnull(fp);
	g_assert_cmpuint(strlen(fp), ==, 95);
	for (gsize i = 0; i < 95; i++) {
		if (i % 3 == 2)
			g_assert_cmpint(fp[i], ==, ':');
		else
			g_assert_true(g_ascii_isdigit(fp[i]) || (fp[i] >= 'A' && fp[i] <= 'F'));
	}
}

/* ---- fingerprints ---- */

static void
check_cert_fingerprint(const char *path)
{
	g_autofree char *cmd =
	        g_strdup_printf("openssl x509 -in '%s' -noout -fingerprint -sha256", path);
	g_autofree char *out = run_sh(cmd);
	g_autofree char *expected = after_last(out, '=');
	g_autoptr(X509) cert = load_or_fail(path);
	g_autoptr(GError) error = NULL;
	g_autofree char *fp = hk_ossl_fingerprint_cert(cert, &error);

	g_assert_no_error(error);
	assert_fingerprint_format(fp);
	g_assert_cmpstr(fp, ==, expected);
}

static void
check_pubkey_fingerprint(const char *path)
{
	g_autofree char *cmd = g_strdup_printf(
	        "openssl x509 -in '%s' -noout -pubkey | openssl pkey -pubin -outform DER | "
	        "openssl dgst -sha256 -c",
	        path);
	g_autofree char *out = run_sh(cmd);
	g_autofree char *expected = after_last(out, ' ');
	g_autoptr(X509) cert = load_or_fail(path);
	g_autoptr(GError) error = NULL;
	g_autofree char *fp = hk_ossl_fingerprint_pubkey(cert, &error);
	g_autofree char *cert_fp = hk_ossl_fingerprint_cert(cert, NULL);

	g_assert_no_error(error);
	assert_fingerprint_format(fp);
	g_assert_cmpstr(fp, ==, expected);
	g_assert_cmpstr(fp, !=, cert_fp);
}

static void
test_fingerprint_cert_ec(void)
{
	g_autofree char *path = make_ec_cert();

	check_cert_fingerprint(path);
}

static void
test_fingerprint_cert_rsa(void)
{
	g_autofree char *path = make_rsa_cert();

	check_cert_fingerprint(path);
}

static void
test_fingerprint_pubkey_ec(void)
{
	g_autofree char *path = make_ec_cert();

	check_pubkey_fingerprint(path);
}

static void
test_fingerprint_pubkey_rsa(void)
{
	g_autofree char *path = make_rsa_cert();

	check_pubkey_fingerprint(path);
}

static void
test_fingerprint_der(void)
{
	g_autofree char *abc = hk_ossl_fingerprint_der((const guint8 *)"abc", 3);
	g_autofree char *empty = hk_ossl_fingerprint_der(NULL, 0);

	assert_fingerprint_format(abc);
	g_assert_cmpstr(abc, ==, ABC_FP);
	g_assert_cmpstr(empty, ==, EMPTY_FP);
}

/* The certificate fingerprint is the digest of the file's DER bytes, as Postfix has it. */
static void
test_fingerprint_der_matches_cert(void)
{
	g_autofree char *pem = make_ec_cert();
	g_autofree char *der_path = g_build_filename(tmpdir, "ec-fp.der", NULL);
	const char *argv[] = {"openssl", "x509", "-in",    pem, "-outform",
	                      "DER",     "-out", der_path, NULL};
	g_autoptr(GError) error = NULL;
	g_autofree char *der = NULL;
	gsize len = 0;
	g_autoptr(X509) cert = load_or_fail(pem);
	g_autofree char *from_cert = hk_ossl_fingerprint_cert(cert, NULL);
	g_autofree char *from_der = NULL;

	g_free(run(argv));
	g_file_get_contents(der_path, &der, &len, &error);
	g_assert_no_error(error);
	from_der = hk_ossl_fingerprint_der((const guint8 *)der, len);
	g_assert_cmpstr(from_der, ==, from_cert);
}

/* ---- loading ---- */

static void
test_load_pem(void)
{
	g_autofree char *path = make_ec_cert();
	g_autoptr(X509) cert = load_or_fail(path);
	g_autofree char *cn = NULL;
	int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, NULL, 0);

	g_assert_cmpint(len, ==, 4);
	cn = g_malloc(len + 1);
	X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, len + 1);
	g_assert_cmpstr(cn, ==, "test");
}

static void
test_load_der(void)
{
	g_autofree char *pem = make_rsa_cert();
	g_autofree char *der = g_build_filename(tmpdir, "rsa.der", NULL);
	const char *argv[] = {"openssl", "x509", "-in", pem, "-outform", "DER", "-out", der, NULL};
	g_autoptr(X509) from_pem = load_or_fail(pem);
	g_autoptr(X509) from_der = NULL;

	g_free(run(argv));
	/* load_or_fail also checks the failed PEM attempt left nothing on the queue. */
	from_der = load_or_fail(der);
	g_assert_cmpint(X509_cmp(from_pem, from_der), ==, 0);
}

static void
assert_load_fails(const char *path, GQuark domain, const char *substring)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(X509) cert = hk_ossl_load_cert_file(path, &error);

	g_assert_null(cert);
	g_assert_error(error, domain, error->code);
	g_test_message("%s", error->message);
	g_assert_true(g_str_has_prefix(error->message, "cannot read ") ||
	              g_str_has_prefix(error->message, path));
	g_assert_nonnull(strstr(error->message, path));
	g_assert_nonnull(strstr(error->message, substring));
	g_assert_cmpuint(ERR_peek_error(), ==, 0);
}

static void
test_load_garbage(void)
{
	g_autofree char *path = g_build_filename(tmpdir, "garbage.pem", NULL);
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, "this is not a certificate\n\x30\x82\xff", -1, &error);
	g_assert_no_error(error);
	assert_load_fails(path, HK_OSSL_ERROR, ": not a PEM or DER certificate: ");
}

/* A PEM with a broken body reports the PEM reason, not DER's. */
static void
test_load_bad_pem(void)
{
	g_autofree char *path = g_build_filename(tmpdir, "bad.pem", NULL);
	g_autoptr(GError) error = NULL;
	const char *text = "-----BEGIN CERTIFICATE-----\nnot*base64!\n-----END CERTIFICATE-----\n";

	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
	assert_load_fails(path, HK_OSSL_ERROR, ": not a PEM or DER certificate: ");
}

static void
test_load_empty(void)
{
	g_autofree char *path = g_build_filename(tmpdir, "empty.pem", NULL);
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, "", 0, &error);
	g_assert_no_error(error);
	assert_load_fails(path, HK_OSSL_ERROR, ": not a PEM or DER certificate");
}

static void
test_load_missing(void)
{
	g_autofree char *path = g_build_filename(tmpdir, "missing.pem", NULL);
	g_autofree char *expected = g_strdup_printf("cannot read %s: %s", path, g_strerror(ENOENT));
	g_autoptr(GError) error = NULL;
	g_autoptr(X509) cert = hk_ossl_load_cert_file(path, &error);

	g_assert_null(cert);
	g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
	g_assert_cmpstr(error->message, ==, expected);
}

static void
test_load_directory(void)
{
	assert_load_fails(tmpdir, G_FILE_ERROR, g_strerror(EISDIR));
}

/* ---- the error queue ---- */

static void
test_set_error_real_failure(void)
{
	static const guint8 garbage[] = {0x30, 0x03, 0x02, 0x01, 0x05};
	const unsigned char *p = garbage;
	g_autoptr(GError) error = NULL;
	const char *reason;

	g_assert_null(d2i_X509(NULL, &p, sizeof garbage));
	g_assert_cmpuint(ERR_peek_error(), !=, 0);
	reason = ERR_reason_error_string(ERR_peek_error());
	g_assert_nonnull(reason);

	g_assert_false(hk_ossl_set_error(&error, "cannot parse %s", "the blob"));
	g_test_message("%s", error->message);
	g_assert_error(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED);
	g_assert_true(g_str_has_prefix(error->message, "cannot parse the blob: "));
	g_assert_nonnull(strstr(error->message, reason));
	g_assert_cmpuint(ERR_peek_error(), ==, 0);
}

static void
test_set_error_wrong_key(void)
{
	g_autofree char *ec_path = make_ec_cert();
	g_autofree char *rsa_path = make_rsa_cert();
	g_autoptr(X509) ec = load_or_fail(ec_path);
	g_autoptr(X509) rsa = load_or_fail(rsa_path);
	g_autoptr(GError) error = NULL;

	/* An EC-signed certificate checked with an RSA key: OpenSSL queues a reason. */
	g_assert_cmpint(X509_verify(ec, X509_get0_pubkey(rsa)), <=, 0);
	g_assert_false(hk_ossl_set_error(&error, "cannot verify"));
	g_test_message("%s", error->message);
	g_assert_true(g_str_has_prefix(error->message, "cannot verify: "));
	g_assert_cmpuint(strlen(error->message), >, strlen("cannot verify: "));
	g_assert_cmpuint(ERR_peek_error(), ==, 0);
}

static void
test_set_error_empty_queue(void)
{
	g_autoptr(GError) error = NULL;

	g_assert_cmpuint(ERR_peek_error(), ==, 0);
	g_assert_false(hk_ossl_set_error(&error, "nothing queued (%d)", 42));
	g_assert_error(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED);
	g_assert_cmpstr(error->message, ==, "nothing queued (42)");
}

static void
test_set_error_several(void)
{
	g_autoptr(GError) error = NULL;

	ERR_raise_data(ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE, "detail %d", 7);
	ERR_raise(ERR_LIB_X509, X509_R_NO_CERT_SET_FOR_US_TO_VERIFY);
	g_assert_false(hk_ossl_set_error(&error, "two"));
	g_assert_cmpstr(error->message, ==,
	                "two: cert already in hash table (detail 7); no cert set for us to verify");
	g_assert_cmpuint(ERR_peek_error(), ==, 0);
}

static void
test_set_error_null(void)
{
	ERR_raise(ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE);
	g_assert_false(hk_ossl_set_error(NULL, "ignored %s", "error"));
	g_assert_cmpuint(ERR_peek_error(), ==, 0);
}

/* ---- pasted fingerprints ---- */

typedef struct {
	const char *input;
	const char *error; /* NULL: must give ABC_FP; else a substring of the message */
} NormalizeCase;

static const NormalizeCase normalize_cases[] = {
        {ABC_FP, NULL},
        {ABC_HEX, NULL},
        {"  " ABC_HEX "\n", NULL},
        {"ba:78:16:bf:8f:01:cf:ea:41:41:40:de:5d:ae:22:23:b0:03:61:a3:96:17:7a:9c:b4:10:ff:61:f2:"
         "00:"
         "15:ad",
         NULL},
        {"BA 78 16 BF 8F 01 CF EA 41 41 40 DE 5D AE 22 23 B0 03 61 A3 96 17 7A 9C B4 10 FF 61 F2 "
         "00 "
         "15 AD",
         NULL},
        {"ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad", NULL},
        {"Ba:78:16:bF:8f:01:CF:ea:41:41:40:De:5D:AE:22:23:\n    "
         "B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:"
         "F2:00:15:AD",
         NULL},
        {"sha256:" ABC_HEX, NULL},
        {"SHA256=" ABC_FP, NULL},
        {"sha256 Fingerprint=" ABC_FP "\n", NULL},
        {"", "fingerprint is empty"},
        {"   \n", "fingerprint is empty"},
        {"sha256:", "fingerprint is empty"},
        {ABC_31, "fingerprint has 31 bytes, a SHA-256 fingerprint has 32"},
        {ABC_FP ":00", "fingerprint has 33 bytes, a SHA-256 fingerprint has 32"},
        {"A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D", "SHA-1"},
        {"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a", "has 63 hex digits"},
        {ABC_31 ":ag", "fingerprint contains 'g', not a hex digit"},
        {"sha1:" ABC_HEX, "fingerprint contains 's', not a hex digit"},
        {"BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:"
         "00:"
         "15:\xc3\xa9",
         "byte 0xC3, not a hex digit"},
        {"AB:C:D:" ABC_31, "misplaced ':' at position 5"},
        {":" ABC_FP, "misplaced ':' at position 1"},
        {ABC_FP ":", "misplaced ':' at position 96"},
        {"BA::78:16", "misplaced ':' at position 4"},
        {"BA78:16:BF", "misplaced ':' at position 5"},
        {ABC_31 ":ADE", "misplaced ':' at position 93"},
        {"B A7816bf", "blank inside a byte at position 2"},
};

static void
test_normalize(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(normalize_cases); i++) {
		const NormalizeCase *c = &normalize_cases[i];
		g_autoptr(GError) error = NULL;
		g_autofree char *fp = hk_ossl_fingerprint_normalize(c->input, &error);

		g_test_message("case %" G_GSIZE_FORMAT ": \"%s\" -> %s", i, c->input,
		               error ? error->message : fp);
		if (c->error == NULL) {
			g_assert_no_error(error);
			g_assert_cmpstr(fp, ==, ABC_FP);
			continue;
		}
		g_assert_null(fp);
		g_assert_error(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED);
		g_assert_nonnull(strstr(error->message, c->error));
	}
}

static void
test_normalize_null(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *fp = hk_ossl_fingerprint_normalize(NULL, &error);

	g_assert_null(fp);
	g_assert_error(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED);
}

/* What the fingerprint functions print, normalize gives back unchanged. */
static void
test_normalize_roundtrip(void)
{
	g_autofree char *path = make_ec_cert();
	g_autoptr(X509) cert = load_or_fail(path);
	g_autofree char *fp = hk_ossl_fingerprint_cert(cert, NULL);
	g_autofree char *lower = g_ascii_strdown(fp, -1);
	g_autofree char *again = hk_ossl_fingerprint_normalize(lower, NULL);

	g_assert_cmpstr(again, ==, fp);
}

/* ---- cleanups (leaks show up under ASan) ---- */

static void
test_stack_free(void)
{
	g_autofree char *path = make_ec_cert();
	g_autoptr(X509) cert = load_or_fail(path);
	g_autoptr(HkX509Stack) stack = sk_X509_new_null();

	for (int i = 0; i < 2; i++) {
		g_assert_cmpint(X509_up_ref(cert), ==, 1);
		g_assert_cmpint(sk_X509_push(stack, cert), >, 0);
	}
	hk_ossl_x509_stack_free(NULL);
}

static void
test_secret_free(void)
{
	g_autoptr(HkSecret) secret = g_strdup("correct horse battery staple");

	hk_secret_free(NULL);
	hk_secret_free(g_strdup(""));
	g_assert_cmpuint(strlen(secret), ==, 28);
}

static void
remove_tmpdir(void)
{
	g_autoptr(GDir) dir = g_dir_open(tmpdir, 0, NULL);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
		g_autofree char *path = g_build_filename(tmpdir, name, NULL);

		g_assert_cmpint(g_remove(path), ==, 0);
	}
	g_assert_cmpint(g_rmdir(tmpdir), ==, 0);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int status;

	g_test_init(&argc, &argv, NULL);
	tmpdir = g_dir_make_tmp("hk-test-ossl-XXXXXX", &error);
	g_assert_no_error(error);

	g_test_add_func("/ossl/fingerprint/cert-ec", test_fingerprint_cert_ec);
	g_test_add_func("/ossl/fingerprint/cert-rsa", test_fingerprint_cert_rsa);
	g_test_add_func("/ossl/fingerprint/pubkey-ec", test_fingerprint_pubkey_ec);
	g_test_add_func("/ossl/fingerprint/pubkey-rsa", test_fingerprint_pubkey_rsa);
	g_test_add_func("/ossl/fingerprint/der", test_fingerprint_der);
	g_test_add_func("/ossl/fingerprint/der-matches-cert", test_fingerprint_der_matches_cert);
	g_test_add_func("/ossl/load/pem", test_load_pem);
	g_test_add_func("/ossl/load/der", test_load_der);
	g_test_add_func("/ossl/load/garbage", test_load_garbage);
	g_test_add_func("/ossl/load/bad-pem", test_load_bad_pem);
	g_test_add_func("/ossl/load/empty", test_load_empty);
	g_test_add_func("/ossl/load/missing", test_load_missing);
	g_test_add_func("/ossl/load/directory", test_load_directory);
	g_test_add_func("/ossl/set-error/real-failure", test_set_error_real_failure);
	g_test_add_func("/ossl/set-error/wrong-key", test_set_error_wrong_key);
	g_test_add_func("/ossl/set-error/empty-queue", test_set_error_empty_queue);
	g_test_add_func("/ossl/set-error/several", test_set_error_several);
	g_test_add_func("/ossl/set-error/null", test_set_error_null);
	g_test_add_func("/ossl/normalize/table", test_normalize);
	g_test_add_func("/ossl/normalize/null", test_normalize_null);
	g_test_add_func("/ossl/normalize/roundtrip", test_normalize_roundtrip);
	g_test_add_func("/ossl/free/stack", test_stack_free);
	g_test_add_func("/ossl/free/secret", test_secret_free);

	status = g_test_run();
	remove_tmpdir();
	g_free(tmpdir);
	return status;
}
