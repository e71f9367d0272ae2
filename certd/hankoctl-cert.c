/*
 * hankoctl-cert: hankoctl cert issue|list|show|p12|revoke|lookup, the client and S/MIME
 * certificates of seed 001 (the server certificate commands are in hankoctl-servercert.c;
 * list, show and revoke see both kinds).
 *
 * Talks to: hanko-certd's cert.* ops; writes the P12 files it is asked for.
 * Must never: print a P12 password it was not asked for (cert show shows one only with
 * --password), or write a P12 file wider than 0600.
 */
#include "hankoctl.h"

#include <string.h>

#define DAYS_UNSET G_MININT

static void
print_field(FILE *out, const char *label, const char *value)
{
	if (value != NULL)
		fprintf(out, "%s: %s\n", label, value);
}

/* ----- cert issue ----- */

typedef struct {
	char *cn, *email, *key, *memo, *user, *profile, *p12, *out;
	gint days;
} IssueOptions;

static void
issue_options_clear(IssueOptions *o)
{
	g_free(o->cn);
	g_free(o->email);
	g_free(o->key);
	g_free(o->memo);
	g_free(o->user);
	g_free(o->profile);
	g_free(o->p12);
	g_free(o->out);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(IssueOptions, issue_options_clear)

static json_object *
issue_params(const IssueOptions *o)
{
	json_object *params = json_object_new_object();

	ctl_add_string(params, HK_CERTD_KEY_CN, o->cn);
	ctl_add_string(params, HK_CERTD_KEY_EMAIL, o->email);
	ctl_add_string(params, HK_CERTD_KEY_KEY, o->key);
	ctl_add_string(params, HK_CERTD_KEY_MEMO, o->memo);
	ctl_add_string(params, HK_CERTD_KEY_USER, o->user);
	ctl_add_string(params, HK_CERTD_KEY_PROFILE, o->profile);
	ctl_add_string(params, HK_CERTD_KEY_P12_FORMAT, o->p12);
	if (o->days != DAYS_UNSET)
		json_object_object_add(params, HK_CERTD_KEY_DAYS, json_object_new_int(o->days));
	return params;
}

/* The P12 goes to a file; what the admin must hand the user goes to the terminal (to
 * stderr when the P12 itself goes to stdout). */
static int
issue_save(json_object *result, const char *out, gboolean printed)
{
	const char *serial = hk_json_get_string(result, HK_CERTD_KEY_SERIAL);
	g_autofree char *path = out ? g_strdup(out) : g_strdup_printf("%s.p12", serial);
	FILE *info = g_strcmp0(path, "-") == 0 || printed ? stderr : stdout;
	g_autoptr(GError) error = NULL;
	int status = CTL_EXIT_OK;

	if (!ctl_write_base64(result, HK_CERTD_KEY_P12_BASE64, path, 0600, &error)) {
		status = ctl_fail(error);
		fprintf(stderr,
		        "hankoctl: certificate %s was issued; write its P12 again with "
		        "\"hankoctl cert p12 %s -o FILE\"\n",
		        serial, serial);
	}
	if (printed)
		return status;
	print_field(info, "serial", serial);
	print_field(info, "cn", hk_json_get_string(result, HK_CERTD_KEY_CN));
	print_field(info, "email", hk_json_get_string(result, HK_CERTD_KEY_EMAIL));
	print_field(info, "user", hk_json_get_string(result, HK_CERTD_KEY_USER));
	print_field(info, "fingerprint", hk_json_get_string(result, HK_CERTD_KEY_FINGERPRINT));
	print_field(info, "not_after", hk_json_get_string(result, HK_CERTD_KEY_NOT_AFTER));
	if (status == CTL_EXIT_OK)
		fprintf(info, "P12 file: %s\n", path);
	fprintf(info, "P12 password: %s\n", hk_json_get_string(result, HK_CERTD_KEY_P12_PASSWORD));
	return status;
}

static int
cmd_cert_issue(Ctl *ctl, int argc, char **argv)
{
	g_auto(IssueOptions) o = {.days = DAYS_UNSET};
	/* FILENAME, not STRING: names and memos pass as the bytes given (certd checks that
	 * they are UTF-8); STRING would convert from the locale's charset, and hankoctl runs
	 * in the C locale, which refuses every non-ASCII name */
	const GOptionEntry entries[] = {
	        {"cn", 0, 0, G_OPTION_ARG_FILENAME, &o.cn, "Common name (the holder's name)",
	         "NAME"},
	        {"email", 0, 0, G_OPTION_ARG_STRING, &o.email, "The holder's mail address", "ADDR"},
	        {"key", 0, 0, G_OPTION_ARG_STRING, &o.key,
	         "rsa:2048, rsa:3072, rsa:4096, ec:p256 or ec:p384 (default: [certd] default_key)",
	         "SPEC"},
	        {"days", 0, 0, G_OPTION_ARG_INT, &o.days, "Validity, 1..825 days", "N"},
	        {"memo", 0, 0, G_OPTION_ARG_FILENAME, &o.memo, "A note kept with the certificate",
	         "TEXT"},
	        {"user", 0, 0, G_OPTION_ARG_FILENAME, &o.user, "The user it belongs to", "NAME"},
	        {"profile", 0, 0, G_OPTION_ARG_STRING, &o.profile, "client (TLS), smime, or both",
	         "PROFILE"},
	        {"p12", 0, 0, G_OPTION_ARG_STRING, &o.p12,
	         "compat (3DES, SHA-1 MAC: old clients) or modern (AES-256, SHA-256 MAC)",
	         "FORMAT"},
	        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &o.out,
	         "Write the P12 here (default SERIAL.p12; - for stdout)", "FILE"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = NULL;
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "cert issue --cn NAME --email ADDR [OPTIONS]", entries,
	               &status))
		return status;
	if (argc != 1 || o.cn == NULL || o.email == NULL)
		return ctl_usage("cert issue --cn NAME --email ADDR [--key SPEC] [--days N] "
		                 "[--memo TEXT] [--user NAME] [--profile client|smime|both] "
		                 "[--p12 compat|modern] [-o FILE]");
	params = issue_params(&o);
	result = ctl_call(ctl, HK_CERTD_OP_CERT_ISSUE, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	return issue_save(result, o.out, printed);
}

/* ----- cert list ----- */

static const char *const list_header[] = {
        "SERIAL/NAME", "KIND", "STATUS", "NOT AFTER", "USER", "CN", "EMAIL", "SERVICES", NULL,
};

static char *
join_array(json_object *array)
{
	g_autoptr(GString) text = g_string_new(NULL);

	for (size_t i = 0; array && i < json_object_array_length(array); i++)
		g_string_append_printf(text, "%s%s", i ? "," : "",
		                       json_object_get_string(json_object_array_get_idx(array, i)));
	return g_string_free(g_steal_pointer(&text), FALSE);
}

static char *
dash_if_null(const char *text)
{
	return g_strdup(text && *text ? text : "-");
}

/* A server certificate goes by its name, a client certificate by its serial. */
static GStrv
list_row(json_object *cert)
{
	const char *name = hk_json_get_string(cert, HK_CERTD_KEY_NAME);
	const char *not_after = hk_json_get_string(cert, HK_CERTD_KEY_NOT_AFTER);
	json_object *services = NULL;
	GStrv row = g_new0(char *, G_N_ELEMENTS(list_header));
	g_autofree char *joined = NULL;

	json_object_object_get_ex(cert, HK_CERTD_KEY_SERVICES, &services);
	joined = join_array(services);
	row[0] = dash_if_null(name ? name : hk_json_get_string(cert, HK_CERTD_KEY_SERIAL));
	row[1] = dash_if_null(hk_json_get_string(cert, HK_CERTD_KEY_KIND));
	row[2] = dash_if_null(hk_json_get_string(cert, HK_CERTD_KEY_STATUS));
	row[3] = not_after ? g_strndup(not_after, 10) : g_strdup("-");
	row[4] = dash_if_null(hk_json_get_string(cert, HK_CERTD_KEY_USER));
	row[5] = dash_if_null(hk_json_get_string(cert, HK_CERTD_KEY_CN));
	row[6] = dash_if_null(hk_json_get_string(cert, HK_CERTD_KEY_EMAIL));
	row[7] = dash_if_null(joined);
	return row;
}

static void
print_row(const char *const *row, const glong *widths)
{
	for (guint c = 0; row[c] != NULL; c++) {
		glong pad = widths[c] - g_utf8_strlen(row[c], -1);

		if (row[c + 1] == NULL)
			printf("%s\n", row[c]);
		else
			printf("%s%*s  ", row[c], (int)MAX(pad, 0), "");
	}
}

static void
print_table(GPtrArray *rows)
{
	glong widths[G_N_ELEMENTS(list_header)] = {0};

	g_ptr_array_insert(rows, 0, g_strdupv((char **)list_header));
	for (guint r = 0; r < rows->len; r++) {
		const char *const *row = g_ptr_array_index(rows, r);

		for (guint c = 0; row[c] != NULL; c++)
			widths[c] = MAX(widths[c], g_utf8_strlen(row[c], -1));
	}
	for (guint r = 0; r < rows->len; r++)
		print_row(g_ptr_array_index(rows, r), widths);
}

/* "30d" or "30" */
static gboolean
parse_days(const char *text, gint64 *days)
{
	char *end = NULL;

	*days = g_ascii_strtoll(text, &end, 10);
	return end != text && *days >= 0 && (*end == '\0' || g_strcmp0(end, "d") == 0);
}

static int
list_print(json_object *result)
{
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
	json_object *certs = NULL;

	json_object_object_get_ex(result, HK_CERTD_KEY_CERTS, &certs);
	for (size_t i = 0; certs && i < json_object_array_length(certs); i++)
		g_ptr_array_add(rows, list_row(json_object_array_get_idx(certs, i)));
	if (rows->len == 0)
		printf("no certificates\n");
	else
		print_table(rows);
	return CTL_EXIT_OK;
}

static int
cmd_cert_list(Ctl *ctl, int argc, char **argv)
{
	g_autofree char *user = NULL, *status_filter = NULL, *expiring = NULL, *kind = NULL;
	const GOptionEntry entries[] = {
	        {"user", 0, 0, G_OPTION_ARG_FILENAME, &user, "Only this user's", "NAME"},
	        {"status", 0, 0, G_OPTION_ARG_STRING, &status_filter,
	         "valid, revoked, expired, requested, unused or in_use", "STATUS"},
	        {"expiring", 0, 0, G_OPTION_ARG_STRING, &expiring,
	         "Only those expiring within N days (30d or 30)", "N"},
	        {"kind", 0, 0, G_OPTION_ARG_STRING, &kind, "client or server", "KIND"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gint64 days = 0;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "cert list [--user NAME] [--status S] [--expiring 30d]",
	               entries, &status))
		return status;
	if (expiring != NULL && !parse_days(expiring, &days)) {
		fprintf(stderr,
		        "hankoctl: --expiring: \"%s\" is not a number of days (30d or 30)\n",
		        expiring);
		return CTL_EXIT_USAGE;
	}
	ctl_add_string(params, HK_CERTD_KEY_USER, user);
	ctl_add_string(params, HK_CERTD_KEY_STATUS, status_filter);
	ctl_add_string(params, HK_CERTD_KEY_KIND, kind);
	if (expiring != NULL)
		json_object_object_add(params, HK_CERTD_KEY_EXPIRING, json_object_new_int64(days));
	result = ctl_call(ctl, HK_CERTD_OP_CERT_LIST, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	return printed ? CTL_EXIT_OK : list_print(result);
}

/* ----- cert show, p12 ----- */

static const char *const show_keys[] = {
        HK_CERTD_KEY_SERIAL,      HK_CERTD_KEY_NAME,         HK_CERTD_KEY_KIND,
        HK_CERTD_KEY_STATUS,      HK_CERTD_KEY_CN,           HK_CERTD_KEY_EMAIL,
        HK_CERTD_KEY_USER,        HK_CERTD_KEY_KEY,          HK_CERTD_KEY_PROFILE,
        HK_CERTD_KEY_DAYS,        HK_CERTD_KEY_MEMO,         HK_CERTD_KEY_SUBJECT,
        HK_CERTD_KEY_ISSUER,      HK_CERTD_KEY_NOT_BEFORE,   HK_CERTD_KEY_NOT_AFTER,
        HK_CERTD_KEY_FINGERPRINT, HK_CERTD_KEY_PUBKEY_FP,    HK_CERTD_KEY_SERVICES,
        HK_CERTD_KEY_REVOKED_AT,  HK_CERTD_KEY_REASON,       HK_CERTD_KEY_CREATED,
        HK_CERTD_KEY_DIR,         HK_CERTD_KEY_P12_PASSWORD, NULL,
};

static void
drop_empty_array(json_object *obj, const char *key)
{
	json_object *array = NULL;

	if (json_object_object_get_ex(obj, key, &array) &&
	    json_object_is_type(array, json_type_array) && json_object_array_length(array) == 0)
		json_object_object_del(obj, key);
}

static json_object *
id_params(const char *id)
{
	json_object *params = json_object_new_object();

	ctl_add_string(params, HK_CERTD_KEY_ID, id);
	return params;
}

static int
cmd_cert_show(Ctl *ctl, int argc, char **argv)
{
	gboolean password = FALSE;
	const GOptionEntry entries[] = {
	        {"password", 0, 0, G_OPTION_ARG_NONE, &password,
	         "Also show the P12 password (when certd kept it)", NULL},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = NULL;
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	const char *pem;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "cert show SERIAL|FINGERPRINT|NAME [--password]", entries,
	               &status))
		return status;
	if (argc != 2)
		return ctl_fail_local(
		        "usage: hankoctl cert show SERIAL|FINGERPRINT|NAME [--password]");
	params = id_params(argv[1]);
	if (password)
		json_object_object_add(params, HK_CERTD_KEY_PASSWORD,
		                       json_object_new_boolean(TRUE));
	result = ctl_call(ctl, HK_CERTD_OP_CERT_SHOW, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (printed)
		return CTL_EXIT_OK;
	drop_empty_array(result, HK_CERTD_KEY_SERVICES); /* client certificates serve nothing */
	ctl_print_object(result, show_keys);
	pem = hk_json_get_string(result, HK_CERTD_KEY_CERT_PEM);
	if (pem != NULL)
		printf("%s", pem);
	return CTL_EXIT_OK;
}

static int
cmd_cert_p12(Ctl *ctl, int argc, char **argv)
{
	g_autofree char *out = NULL;
	const GOptionEntry entries[] = {
	        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Write the P12 here (- for stdout)",
	         "FILE"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = NULL;
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "cert p12 SERIAL|FINGERPRINT -o FILE", entries, &status))
		return status;
	if (argc != 2 || out == NULL)
		return ctl_fail_local("usage: hankoctl cert p12 SERIAL|FINGERPRINT -o FILE");
	params = id_params(argv[1]);
	result = ctl_call(ctl, HK_CERTD_OP_CERT_P12, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (!ctl_write_base64(result, HK_CERTD_KEY_P12_BASE64, out, 0600, &error))
		return ctl_fail(error);
	if (!printed && g_strcmp0(out, "-") != 0)
		printf("wrote the P12 of %s to %s\n",
		       hk_json_get_string(result, HK_CERTD_KEY_SERIAL), out);
	return CTL_EXIT_OK;
}

/* ----- cert revoke ----- */

static int
cmd_cert_revoke(Ctl *ctl, int argc, char **argv)
{
	g_autofree char *reason = NULL;
	const GOptionEntry entries[] = {
	        {"reason", 0, 0, G_OPTION_ARG_STRING, &reason,
	         "unspecified (default), keyCompromise, affiliationChanged, superseded, "
	         "cessationOfOperation, ...",
	         "REASON"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = NULL;
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	const char *serial;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "cert revoke SERIAL|FINGERPRINT|NAME [--reason REASON]",
	               entries, &status))
		return status;
	if (argc != 2)
		return ctl_fail_local("usage: hankoctl cert revoke SERIAL|FINGERPRINT|NAME "
		                      "[--reason REASON]");
	params = id_params(argv[1]);
	ctl_add_string(params, HK_CERTD_KEY_REASON, reason);
	result = ctl_call(ctl, HK_CERTD_OP_CERT_REVOKE, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	ctl_print_warnings(stderr, "hankoctl: warning: ", result);
	if (printed)
		return CTL_EXIT_OK;
	serial = hk_json_get_string(result, HK_CERTD_KEY_SERIAL);
	printf("revoked %s (%s) at %s\n",
	       serial ? serial : hk_json_get_string(result, HK_CERTD_KEY_NAME),
	       hk_json_get_string(result, HK_CERTD_KEY_REASON),
	       hk_json_get_string(result, HK_CERTD_KEY_REVOKED_AT));
	return CTL_EXIT_OK;
}

/* ----- cert lookup ----- */

static const char *const lookup_keys[] = {
        HK_CERTD_KEY_SERIAL, HK_CERTD_KEY_KIND,   HK_CERTD_KEY_STATUS,    HK_CERTD_KEY_CN,
        HK_CERTD_KEY_USER,   HK_CERTD_KEY_EMAILS, HK_CERTD_KEY_NOT_AFTER, NULL,
};

static int
cmd_cert_lookup(Ctl *ctl, int argc, char **argv)
{
	g_autofree char *fingerprint = NULL, *pubkey = NULL;
	const GOptionEntry entries[] = {
	        {"fingerprint", 0, 0, G_OPTION_ARG_STRING, &fingerprint,
	         "SHA-256 fingerprint of the certificate (as Postfix's ccert_fingerprint)", "FP"},
	        {"pubkey-fingerprint", 0, 0, G_OPTION_ARG_STRING, &pubkey,
	         "SHA-256 fingerprint of the public key (ccert_pubkey_fingerprint)", "FP"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "cert lookup --fingerprint FP | --pubkey-fingerprint FP",
	               entries, &status))
		return status;
	if (argc != 1 || (fingerprint == NULL) == (pubkey == NULL))
		return ctl_usage("cert lookup --fingerprint FP | --pubkey-fingerprint FP");
	ctl_add_string(params, HK_CERTD_KEY_FINGERPRINT, fingerprint);
	ctl_add_string(params, HK_CERTD_KEY_PUBKEY_FP, pubkey);
	result = ctl_call(ctl, HK_CERTD_OP_CERT_LOOKUP, params, &printed, &error);
	return ctl_show_result(result, printed, error, lookup_keys);
}

const CtlCommand ctl_cert_commands[] = {
        {"cert", "issue", "--cn NAME --email ADDR [--key SPEC] [--days N] [-o FILE] ...",
         "issue a client/S-MIME certificate as a PKCS#12 file", cmd_cert_issue},
        {"cert", "list", "[--user NAME] [--status S] [--expiring 30d] [--kind K]",
         "list client and server certificates", cmd_cert_list},
        {"cert", "show", "SERIAL|FINGERPRINT|NAME [--password]", "show one certificate",
         cmd_cert_show},
        {"cert", "p12", "SERIAL|FINGERPRINT -o FILE", "write a client certificate's P12 again",
         cmd_cert_p12},
        {"cert", "revoke", "SERIAL|FINGERPRINT|NAME [--reason R]",
         "revoke a certificate and renew the CRL", cmd_cert_revoke},
        {"cert", "lookup", "--fingerprint FP | --pubkey-fingerprint FP",
         "find a certificate's user by fingerprint, as hanko-policyd does", cmd_cert_lookup},
        {0},
};
