/* test-certd-keys: certd's input checks, key specs, serials and generated passwords. */
#include "certd.h"

#include <string.h>

static void
test_email(void)
{
	static const struct {
		const char *email;
		gboolean ok;
	} cases[] = {
	        {"s@example.jp", TRUE},       {"sindbad.the-sailor+fax@mail.example.co.jp", TRUE},
	        {"a_b@x-y.example", TRUE},    {"", FALSE},
	        {"no-at.example.jp", FALSE},  {"two@@example.jp", FALSE},
	        {"a@b@example.jp", FALSE},    {".lead@example.jp", FALSE},
	        {"trail.@example.jp", FALSE}, {"dou..ble@example.jp", FALSE},
	        {"user@localhost", FALSE},    {"user@-bad.example", FALSE},
	        {"user@bad-.example", FALSE}, {"user@exa mple.jp", FALSE},
	        {"us er@example.jp", FALSE},  {"ユーザ@example.jp", FALSE},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		gboolean ok = certd_check_email(cases[i].email, &error);

		g_test_message("%s", cases[i].email);
		g_assert_cmpint(ok, ==, cases[i].ok);
		if (!ok)
			g_assert_error(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT);
	}
}

static void
test_cn(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *long_cn = g_strnfill(65, 'x');
	g_autofree char *max_cn = g_strnfill(64, 'x');

	g_assert_true(certd_check_cn("Sindbad the Sailor", NULL));
	g_assert_true(certd_check_cn("判子 太郎", NULL));
	g_assert_true(certd_check_cn(max_cn, NULL));
	g_assert_false(certd_check_cn("", &error));
	g_assert_nonnull(strstr(error->message, "required"));
	g_clear_error(&error);
	g_assert_false(certd_check_cn(long_cn, &error));
	g_assert_nonnull(strstr(error->message, "65 characters, at most 64"));
	g_clear_error(&error);
	g_assert_false(certd_check_cn("tab\there", &error));
	g_assert_nonnull(strstr(error->message, "control character"));
	g_clear_error(&error);
	g_assert_false(certd_check_cn("\xff\xfe", &error));
	g_assert_nonnull(strstr(error->message, "UTF-8"));
}

static void
test_key_specs(void)
{
	static const char *const ca_keys[] = {"rsa:3072", "ec:p256", NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(EVP_PKEY) ec = NULL;
	g_autofree char *ec_name = NULL;

	g_assert_true(certd_key_spec_check("rsa:2048", NULL, NULL));
	g_assert_false(certd_key_spec_check("rsa:2048", ca_keys, &error));
	g_assert_nonnull(strstr(error->message, "use one of rsa:3072, ec:p256"));
	g_clear_error(&error);
	g_assert_false(certd_key_spec_check("rsa:1024", NULL, &error));
	g_assert_nonnull(strstr(error->message, "unsupported key \"rsa:1024\""));
	g_clear_error(&error);
	ec = certd_key_generate("ec:p384", &error);
	g_assert_no_error(error);
	ec_name = certd_key_describe(ec);
	g_assert_cmpstr(ec_name, ==, "ec:p384");
}

static void
test_serials(void)
{
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (int i = 0; i < 1000; i++) {
		g_autoptr(ASN1_INTEGER) serial = certd_serial_random(NULL);
		g_autoptr(BIGNUM) bn = ASN1_INTEGER_to_BN(serial, NULL);
		char *hex = certd_serial_to_hex(serial);

		/* positive, 127 bits: well over the 64 bits of entropy CA/B asks for */
		g_assert_false(BN_is_negative(bn));
		g_assert_cmpint(BN_num_bits(bn), ==, 127);
		g_assert_false(g_hash_table_contains(seen, hex));
		g_hash_table_add(seen, hex);
	}
}

static void
test_passwords(void)
{
	g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (int i = 0; i < 200; i++) {
		char *password = certd_password_generate(20);

		g_assert_cmpuint(strlen(password), ==, 20);
		/* nothing that reads as something else on a screen */
		g_assert_null(strpbrk(password, "0O1lIio"));
		for (const char *p = password; *p; p++)
			g_assert_true(g_ascii_isalnum(*p));
		g_assert_false(g_hash_table_contains(seen, password));
		g_hash_table_add(seen, password);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/certd-keys/email", test_email);
	g_test_add_func("/certd-keys/cn", test_cn);
	g_test_add_func("/certd-keys/key-specs", test_key_specs);
	g_test_add_func("/certd-keys/serials", test_serials);
	g_test_add_func("/certd-keys/passwords", test_passwords);
	return g_test_run();
}
