/*
 * hankoctl-servercert: server certificates (seed 002): csr create, cert import,
 * cert export, cert assign.
 *
 * Talks to: hanko-certd's csr.create, cert.import, cert.export and cert.assign ops.
 * Must never: print a key or a password the admin did not ask for, or write one to a file
 * wider than 0600.
 */
#include "hankoctl.h"

#include <string.h>

/* ----- csr create ----- */

typedef struct {
	char *name, *cn, *key, *country, *state, *locality, *org, *ou, *email, *out;
	char **san;
} CsrOptions;

static void
csr_options_clear(CsrOptions *o)
{
	char **strings[] = {&o->name,     &o->cn,  &o->key, &o->country, &o->state,
	                    &o->locality, &o->org, &o->ou,  &o->email,   &o->out};

	for (guint i = 0; i < G_N_ELEMENTS(strings); i++)
		g_clear_pointer(strings[i], g_free);
	g_clear_pointer(&o->san, g_strfreev);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CsrOptions, csr_options_clear)

static json_object *
csr_params(const CsrOptions *o)
{
	json_object *params = json_object_new_object();

	ctl_add_string(params, HK_CERTD_KEY_NAME, o->name);
	ctl_add_string(params, HK_CERTD_KEY_CN, o->cn);
	ctl_add_string(params, HK_CERTD_KEY_KEY, o->key);
	ctl_add_string(params, HK_CERTD_KEY_COUNTRY, o->country);
	ctl_add_string(params, HK_CERTD_KEY_STATE, o->state);
	ctl_add_string(params, HK_CERTD_KEY_LOCALITY, o->locality);
	ctl_add_string(params, HK_CERTD_KEY_ORG, o->org);
	ctl_add_string(params, HK_CERTD_KEY_OU, o->ou);
	ctl_add_string(params, HK_CERTD_KEY_EMAIL, o->email);
	if (o->san != NULL) {
		json_object *san = json_object_new_array();

		for (guint i = 0; o->san[i] != NULL; i++)
			json_object_array_add(san, json_object_new_string(o->san[i]));
		json_object_object_add(params, HK_CERTD_KEY_SAN, san);
	}
	return params;
}

static int
csr_output(json_object *result, gboolean printed, const char *out)
{
	g_autoptr(GError) error = NULL;
	const char *pem = hk_json_get_string(result, HK_CERTD_KEY_CSR_PEM);

	if (out == NULL) {
		if (!printed)
			fputs(pem, stdout);
		return CTL_EXIT_OK;
	}
	if (!ctl_write_file(out, pem, strlen(pem), 0644, &error))
		return ctl_fail(error);
	if (!printed)
		printf("name: %s\nstatus: %s\ncsr: %s\n",
		       hk_json_get_string(result, HK_CERTD_KEY_NAME),
		       hk_json_get_string(result, HK_CERTD_KEY_STATUS), out);
	return CTL_EXIT_OK;
}

static int
cmd_csr_create(Ctl *ctl, int argc, char **argv)
{
	g_auto(CsrOptions) o = {0};
	const GOptionEntry entries[] = {
	        {"name", 0, 0, G_OPTION_ARG_STRING, &o.name, "Name of the certificate in certd",
	         "NAME"},
	        {"cn", 0, 0, G_OPTION_ARG_STRING, &o.cn, "Common name: the server's host name",
	         "HOST"},
	        {"key", 0, 0, G_OPTION_ARG_STRING, &o.key,
	         "rsa:2048 (default), rsa:4096 or ec:p256", "SPEC"},
	        {"country", 0, 0, G_OPTION_ARG_STRING, &o.country, "Country code (JP)", "CC"},
	        {"state", 0, 0, G_OPTION_ARG_STRING, &o.state, "State or prefecture", "TEXT"},
	        {"locality", 0, 0, G_OPTION_ARG_STRING, &o.locality, "City", "TEXT"},
	        {"org", 0, 0, G_OPTION_ARG_STRING, &o.org, "Organisation", "TEXT"},
	        {"ou", 0, 0, G_OPTION_ARG_STRING, &o.ou, "Organisational unit", "TEXT"},
	        {"email", 0, 0, G_OPTION_ARG_STRING, &o.email, "Contact address", "ADDR"},
	        {"san", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o.san,
	         "Another name: DNS:host, IP:address or email:address (repeatable)", "NAME"},
	        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &o.out,
	         "Write the CSR here (default: print it)", "FILE"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = NULL;
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "csr create --name NAME --cn HOST [options]", entries,
	               &status))
		return status;
	if (o.name == NULL || o.cn == NULL)
		return ctl_fail_local("csr create: --name NAME and --cn HOST are required");
	params = csr_params(&o);
	result = ctl_call(ctl, HK_CERTD_OP_CSR_CREATE, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	return csr_output(result, printed, o.out);
}

/* ----- cert import ----- */

static const char *const import_keys[] = {
        HK_CERTD_KEY_NAME,
        HK_CERTD_KEY_STATUS,
        HK_CERTD_KEY_SUBJECT,
        HK_CERTD_KEY_ISSUER,
        HK_CERTD_KEY_FINGERPRINT,
        HK_CERTD_KEY_NOT_AFTER,
        NULL,
};

static int
cmd_cert_import(Ctl *ctl, int argc, char **argv)
{
	g_autofree char *name = NULL;
	g_autofree char *cert_path = NULL;
	g_autofree char *key_path = NULL;
	g_autofree char *pass_path = NULL;
	const GOptionEntry entries[] = {
	        {"name", 0, 0, G_OPTION_ARG_STRING, &name,
	         "A pending request's name, or (with --key) a new name", "NAME"},
	        {"cert", 0, 0, G_OPTION_ARG_FILENAME, &cert_path,
	         "Certificate and intermediates (PEM, any order)", "FILE"},
	        {"key", 0, 0, G_OPTION_ARG_FILENAME, &key_path,
	         "Its private key (PEM: PKCS#1, PKCS#8, encrypted or not)", "FILE"},
	        {"passphrase-file", 0, 0, G_OPTION_ARG_FILENAME, &pass_path,
	         "Passphrase of an encrypted key (- reads standard input)", "FILE"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv,
	               "cert import --name NAME --cert FILE [--key FILE [--passphrase-file FILE]]",
	               entries, &status))
		return status;
	if (name == NULL || cert_path == NULL)
		return ctl_fail_local("cert import: --name NAME and --cert FILE are required");
	ctl_add_string(params, HK_CERTD_KEY_NAME, name);
	if (!ctl_add_pem_files(params, cert_path, key_path, pass_path, &error))
		return ctl_fail(error);
	result = ctl_call(ctl, HK_CERTD_OP_CERT_IMPORT, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (!printed) {
		ctl_print_object(result, import_keys);
		ctl_print_warnings(stdout, "warning: ", result);
	}
	return CTL_EXIT_OK;
}

/* ----- cert export ----- */

static gboolean
export_write(json_object *result, gboolean p12, const char *out, GError **error)
{
	g_autoptr(HkSecret) pem = NULL;
	const char *password = hk_json_get_string(result, HK_CERTD_KEY_P12_PASSWORD);

	if (p12) {
		if (!ctl_write_base64(result, HK_CERTD_KEY_P12_BASE64, out, 0600, error))
			return FALSE;
	} else {
		pem = g_strconcat(hk_json_get_string(result, HK_CERTD_KEY_KEY_PEM),
		                  hk_json_get_string(result, HK_CERTD_KEY_CERT_PEM), NULL);
		if (!ctl_write_file(out, pem, strlen(pem), 0600, error))
			return FALSE;
	}
	/* a generated password is shown once: the P12 is useless without it */
	if (password != NULL)
		fprintf(g_strcmp0(out, "-") == 0 ? stderr : stdout, "p12 password: %s\n", password);
	return TRUE;
}

static int
cmd_cert_export(Ctl *ctl, int argc, char **argv)
{
	gboolean pem = FALSE, p12 = FALSE;
	g_autofree char *pass_path = NULL;
	g_autofree char *key_format = NULL;
	g_autofree char *out = NULL;
	const GOptionEntry entries[] = {
	        {"pem", 0, 0, G_OPTION_ARG_NONE, &pem, "Key and chain as PEM (the default)", NULL},
	        {"p12", 0, 0, G_OPTION_ARG_NONE, &p12, "A PKCS#12 file (AES-256, SHA-256 MAC)",
	         NULL},
	        {"password-file", 0, 0, G_OPTION_ARG_FILENAME, &pass_path,
	         "Password for the P12 (default: generated and shown) or to encrypt the PEM key",
	         "FILE"},
	        {"key-format", 0, 0, G_OPTION_ARG_STRING, &key_format,
	         "PEM key as pkcs8 (default) or pkcs1 (\"RSA PRIVATE KEY\")", "FORMAT"},
	        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &out,
	         "Write here (mode 0600; - for stdout)", "FILE"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(HkSecret) password = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(
	            &argc, &argv,
	            "cert export NAME --pem|--p12 [--password-file FILE] [--key-format F] -o FILE",
	            entries, &status))
		return status;
	if (argc != 2 || out == NULL)
		return ctl_fail_local("usage: hankoctl cert export NAME --pem|--p12 -o FILE");
	if (pem && p12)
		return ctl_fail_local("cert export: choose one of --pem and --p12");
	if (pass_path != NULL && (password = ctl_read_secret(pass_path, &error)) == NULL)
		return ctl_fail(error);
	ctl_add_string(params, HK_CERTD_KEY_ID, argv[1]);
	ctl_add_string(params, HK_CERTD_KEY_FORMAT, p12 ? "p12" : "pem");
	ctl_add_string(params, HK_CERTD_KEY_PASSWORD, password);
	ctl_add_string(params, HK_CERTD_KEY_KEY_FORMAT, key_format);
	result = ctl_call(ctl, HK_CERTD_OP_CERT_EXPORT, params, &printed, &error);
	if (result == NULL || !export_write(result, p12, out, &error))
		return ctl_fail(error);
	return CTL_EXIT_OK;
}

/* ----- cert assign ----- */

static void
print_reload(json_object *reload)
{
	const char *output = hk_json_get_string(reload, HK_CERTD_KEY_OUTPUT);
	g_auto(GStrv) lines = g_strsplit(output ? output : "", "\n", -1);

	if (hk_json_get_bool(reload, HK_CERTD_KEY_TIMED_OUT, FALSE))
		printf("reload: %s: killed after the reload timeout\n",
		       hk_json_get_string(reload, HK_CERTD_KEY_COMMAND));
	else
		printf("reload: %s: exit status %" G_GINT64_FORMAT "\n",
		       hk_json_get_string(reload, HK_CERTD_KEY_COMMAND),
		       hk_json_get_int(reload, HK_CERTD_KEY_EXIT_STATUS, -1));
	for (guint i = 0; lines[i] != NULL; i++) {
		if (lines[i][0] != '\0' || lines[i + 1] != NULL)
			printf("  %s\n", lines[i]);
	}
}

/* The assignment stands either way; a failed reload still fails the command. */
static int
assign_status(json_object *reload)
{
	if (reload == NULL || (hk_json_get_int(reload, HK_CERTD_KEY_EXIT_STATUS, -1) == 0 &&
	                       !hk_json_get_bool(reload, HK_CERTD_KEY_TIMED_OUT, FALSE)))
		return CTL_EXIT_OK;
	return ctl_fail_local("the certificate is assigned, but the reload command failed");
}

static int
cmd_cert_assign(Ctl *ctl, int argc, char **argv)
{
	static const char *const keys[] = {HK_CERTD_KEY_NAME, HK_CERTD_KEY_SERVICE,
	                                   HK_CERTD_KEY_STATUS, HK_CERTD_KEY_FILES, NULL};
	g_autofree char *service = NULL;
	const GOptionEntry entries[] = {
	        {"service", 0, 0, G_OPTION_ARG_STRING, &service,
	         "smtpd, smtp, submission or gateway", "SERVICE"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	json_object *reload = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "cert assign NAME --service SERVICE", entries, &status))
		return status;
	if (argc != 2 || service == NULL)
		return ctl_fail_local("usage: hankoctl cert assign NAME --service SERVICE");
	ctl_add_string(params, HK_CERTD_KEY_ID, argv[1]);
	ctl_add_string(params, HK_CERTD_KEY_SERVICE, service);
	result = ctl_call(ctl, HK_CERTD_OP_CERT_ASSIGN, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	json_object_object_get_ex(result, HK_CERTD_KEY_RELOAD, &reload);
	if (!printed) {
		ctl_print_object(result, keys);
		if (reload != NULL)
			print_reload(reload);
		else
			printf("reload: none configured\n");
	}
	return assign_status(reload);
}

const CtlCommand ctl_servercert_commands[] = {
        {"csr", "create", "--name N --cn HOST [--key SPEC] [--san ...] [-o FILE]",
         "create a key and a certificate signing request for a server", cmd_csr_create},
        {"cert", "import", "--name N --cert FILE [--key FILE [--passphrase-file F]]",
         "import a server certificate (answer to a CSR, or with its key)", cmd_cert_import},
        {"cert", "export", "NAME --pem|--p12 [--key-format pkcs1|pkcs8] -o FILE",
         "export a server certificate with its key", cmd_cert_export},
        {"cert", "assign", "NAME --service smtpd|smtp|submission|gateway",
         "install a server certificate for a service and reload it", cmd_cert_assign},
        {0},
};
