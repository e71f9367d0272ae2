/*
 * hankoctl-ca: hankoctl ca init|import|show|export|rehash|crl.
 *
 * ca rehash is done here, not in certd: it writes into a directory of the admin's
 * choosing (Postfix's smtpd_tls_CApath, XMail's certs/), which certd cannot and should
 * not be able to write.
 */
#include "hankoctl.h"

#include <openssl/pem.h>
#include <string.h>

static const char *const ca_show_keys[] = {
        HK_CERTD_KEY_SUBJECT,
        HK_CERTD_KEY_KEY,
        HK_CERTD_KEY_SERIAL,
        HK_CERTD_KEY_FINGERPRINT,
        HK_CERTD_KEY_NOT_BEFORE,
        HK_CERTD_KEY_NOT_AFTER,
        NULL,
};

/* ca export and ca crl: DER from der_base64, or the PEM in pem_key, to out or stdout. */
static int
write_export(json_object *result, gboolean printed, gboolean der, const char *pem_key,
             const char *out)
{
	g_autoptr(GError) error = NULL;
	const char *path = out ? out : "-";
	const char *pem;

	if (printed && out == NULL)
		return CTL_EXIT_OK;
	if (der) {
		if (!ctl_write_base64(result, HK_CERTD_KEY_DER_BASE64, path, 0644, &error))
			return ctl_fail(error);
		return CTL_EXIT_OK;
	}
	pem = hk_json_get_string(result, pem_key);
	if (!ctl_write_file(path, pem, strlen(pem), 0644, &error))
		return ctl_fail(error);
	return CTL_EXIT_OK;
}

static int
cmd_ca_init(Ctl *ctl, int argc, char **argv)
{
	g_autofree char *cn = NULL;
	g_autofree char *key = NULL;
	gint days = 0;
	const GOptionEntry entries[] = {
	        {"cn", 0, 0, G_OPTION_ARG_STRING, &cn, "The CA's common name", "NAME"},
	        {"key", 0, 0, G_OPTION_ARG_STRING, &key,
	         "rsa:3072 (default), rsa:4096, ec:p256 or ec:p384", "SPEC"},
	        {"days", 0, 0, G_OPTION_ARG_INT, &days, "Validity (default 3650)", "N"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "ca init --cn NAME [--key SPEC] [--days N]", entries, &status))
		return status;
	if (cn == NULL)
		return ctl_fail_local("ca init: --cn NAME is required");
	ctl_add_string(params, HK_CERTD_KEY_CN, cn);
	ctl_add_string(params, HK_CERTD_KEY_KEY, key);
	if (days != 0)
		json_object_object_add(params, HK_CERTD_KEY_DAYS, json_object_new_int(days));
	result = ctl_call(ctl, HK_CERTD_OP_CA_INIT, params, &printed, &error);
	return ctl_show_result(result, printed, error, ca_show_keys);
}

static int
cmd_ca_import(Ctl *ctl, int argc, char **argv)
{
	g_autofree char *cert_path = NULL;
	g_autofree char *key_path = NULL;
	g_autofree char *pass_path = NULL;
	const GOptionEntry entries[] = {
	        {"cert", 0, 0, G_OPTION_ARG_FILENAME, &cert_path, "CA certificate (PEM)", "FILE"},
	        {"key", 0, 0, G_OPTION_ARG_FILENAME, &key_path, "CA private key (PEM)", "FILE"},
	        {"passphrase-file", 0, 0, G_OPTION_ARG_FILENAME, &pass_path,
	         "Passphrase of an encrypted key (- reads standard input)", "FILE"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "ca import --cert FILE --key FILE [--passphrase-file FILE]",
	               entries, &status))
		return status;
	if (cert_path == NULL || key_path == NULL)
		return ctl_fail_local("ca import: --cert FILE and --key FILE are required");
	if (!ctl_add_pem_files(params, cert_path, key_path, pass_path, &error))
		return ctl_fail(error);
	result = ctl_call(ctl, HK_CERTD_OP_CA_IMPORT, params, &printed, &error);
	return ctl_show_result(result, printed, error, ca_show_keys);
}

static int
cmd_ca_show(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "ca show", NULL, &status))
		return status;
	result = ctl_call(ctl, HK_CERTD_OP_CA_SHOW, NULL, &printed, &error);
	return ctl_show_result(result, printed, error, ca_show_keys);
}

static int
cmd_ca_export(Ctl *ctl, int argc, char **argv)
{
	gboolean der = FALSE, pem = FALSE, bundle = FALSE;
	g_autofree char *out = NULL;
	const GOptionEntry entries[] = {
	        {"der", 0, 0, G_OPTION_ARG_NONE, &der, "DER, as mail clients install it", NULL},
	        {"pem", 0, 0, G_OPTION_ARG_NONE, &pem, "PEM (the default)", NULL},
	        {"bundle", 0, 0, G_OPTION_ARG_NONE, &bundle, "A certs.pem-style bundle", NULL},
	        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Write here (default stdout)",
	         "FILE"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	const char *format = der ? "der" : bundle ? "bundle" : "pem";
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "ca export [--der|--pem|--bundle] [-o FILE]", entries,
	               &status))
		return status;
	format = der ? "der" : bundle ? "bundle" : "pem";
	if (der + pem + bundle > 1)
		return ctl_fail_local("ca export: choose one of --der, --pem, --bundle");
	json_object_object_add(params, HK_CERTD_KEY_FORMAT, json_object_new_string(format));
	result = ctl_call(ctl, HK_CERTD_OP_CA_EXPORT, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	return write_export(result, printed, der, HK_CERTD_KEY_PEM, out);
}

/* <hash>.0 for the CA certificate and <hash>.r0 for its CRL, as "openssl rehash" names
 * them; an existing file of that name that holds something else moves to .1, .r1 ... */
static char *
free_hash_name(const char *dir, unsigned long hash, const char *kind, const char *content)
{
	for (int i = 0; i < 100; i++) {
		g_autofree char *name = g_strdup_printf("%08lx.%s%d", hash, kind, i);
		g_autofree char *path = g_build_filename(dir, name, NULL);
		g_autofree char *old = NULL;

		if (!g_file_get_contents(path, &old, NULL, NULL) || g_strcmp0(old, content) == 0)
			return g_steal_pointer(&name);
	}
	return NULL;
}

static gboolean
write_hashed(const char *dir, unsigned long hash, const char *kind, const char *pem, GError **error)
{
	g_autofree char *name = free_hash_name(dir, hash, kind, pem);
	g_autofree char *path = NULL;

	if (name == NULL) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST, "%s: too many %08lx.%s* files",
		            dir, hash, kind);
		return FALSE;
	}
	path = g_build_filename(dir, name, NULL);
	if (!ctl_write_file(path, pem, strlen(pem), 0644, error))
		return FALSE;
	printf("%s\n", path);
	return TRUE;
}

static int
cmd_ca_rehash(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) ca = NULL;
	g_autoptr(json_object) crl = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(BIO) bio = NULL;
	g_autoptr(X509) cert = NULL;
	gboolean printed;
	unsigned long hash;
	int status;

	if (!ctl_parse(&argc, &argv, "ca rehash DIR", NULL, &status))
		return status;
	if (argc != 2)
		return ctl_fail_local("usage: hankoctl ca rehash DIR");
	json_object_object_add(params, HK_CERTD_KEY_FORMAT, json_object_new_string("pem"));
	ctl->json = FALSE; /* this command writes files; its output is their names */
	ca = ctl_call(ctl, HK_CERTD_OP_CA_EXPORT, params, &printed, &error);
	if (ca == NULL || (crl = ctl_call(ctl, HK_CERTD_OP_CA_CRL, NULL, &printed, &error)) == NULL)
		return ctl_fail(error);
	bio = BIO_new_mem_buf(hk_json_get_string(ca, HK_CERTD_KEY_PEM), -1);
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (cert == NULL)
		return ctl_fail_local("the CA certificate certd sent cannot be read");
	/* the subject hash OpenSSL's CApath lookup uses, for the certificate and its CRL */
	hash = X509_NAME_hash_ex(X509_get_subject_name(cert), NULL, NULL, NULL);
	if (!write_hashed(argv[1], hash, "", hk_json_get_string(ca, HK_CERTD_KEY_PEM), &error) ||
	    !write_hashed(argv[1], hash, "r", hk_json_get_string(crl, HK_CERTD_KEY_CRL_PEM),
	                  &error))
		return ctl_fail(error);
	return CTL_EXIT_OK;
}

static int
cmd_ca_crl(Ctl *ctl, int argc, char **argv)
{
	gboolean der = FALSE;
	g_autofree char *out = NULL;
	const GOptionEntry entries[] = {
	        {"der", 0, 0, G_OPTION_ARG_NONE, &der, "DER instead of PEM", NULL},
	        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Write here (default stdout)",
	         "FILE"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "ca crl [--der] [-o FILE]", entries, &status))
		return status;
	result = ctl_call(ctl, HK_CERTD_OP_CA_CRL, NULL, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	return write_export(result, printed, der, HK_CERTD_KEY_CRL_PEM, out);
}

const CtlCommand ctl_ca_commands[] = {
        {"ca", "init", "--cn NAME [--key SPEC] [--days N]", "create the private CA", cmd_ca_init},
        {"ca", "import", "--cert FILE --key FILE", "import an existing CA", cmd_ca_import},
        {"ca", "show", "", "show the CA certificate", cmd_ca_show},
        {"ca", "export", "[--der|--pem|--bundle] [-o FILE]", "export the CA certificate",
         cmd_ca_export},
        {"ca", "rehash", "DIR", "write the CA and CRL under OpenSSL hash names", cmd_ca_rehash},
        {"ca", "crl", "[--der] [-o FILE]", "export the current CRL", cmd_ca_crl},
        {0},
};
