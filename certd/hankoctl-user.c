/*
 * hankoctl-user: hankoctl user add|passwd|list|show|del|set|import|verify and
 * smime register|show|unregister.
 *
 * Passwords are read from standard input (its first line) or, on a terminal, asked for
 * without echo. Talks to: hanko-certd.
 * Must never: take a password from the command line (other users see it in ps), or print
 * one.
 */
#include "hankoctl.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define PROMPT_MAX     1024             /* longer than certd accepts, so it can say so */
#define IMPORT_TIMEOUT (10 * 60 * 1000) /* {PLAIN} lines are hashed one by one */

/* ----- passwords ----- */

/* Reads one line from the terminal on stdin with echo off. */
static char *
prompt_no_echo(const char *prompt, GError **error)
{
	struct termios old, quiet;
	char buf[PROMPT_MAX + 2];
	gboolean ok;

	fprintf(stderr, "%s", prompt);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &old) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot read the terminal: %s",
		            g_strerror(errno));
		return NULL;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	ok = fgets(buf, sizeof(buf), stdin) != NULL;
	tcsetattr(STDIN_FILENO, TCSANOW, &old);
	fprintf(stderr, "\n");
	if (!ok) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "no password was entered");
		return NULL;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	{
		char *copy = g_strdup(buf);

		explicit_bzero(buf, sizeof(buf));
		return copy;
	}
}

/* A password from the first line of stdin or, on a terminal, asked for (twice when
 * confirm is set, as a new password is). */
static char *
read_password(const char *what, gboolean confirm, GError **error)
{
	g_autofree char *prompt = NULL;
	g_autofree char *again = NULL;
	g_autoptr(HkSecret) first = NULL;
	g_autoptr(HkSecret) second = NULL;

	if (!isatty(STDIN_FILENO))
		return ctl_read_secret("-", error);
	prompt = g_strdup_printf("%s%s: ", confirm ? "New " : "", what);
	again = g_strdup_printf("Retype the new %s: ", what);
	if ((first = prompt_no_echo(prompt, error)) == NULL)
		return NULL;
	if (!confirm)
		return g_steal_pointer(&first);
	if ((second = prompt_no_echo(again, error)) == NULL)
		return NULL;
	if (g_strcmp0(first, second) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "the two entries differ");
		return NULL;
	}
	return g_steal_pointer(&first);
}

/* ----- output ----- */

static const char *const user_keys[] = {
        HK_CERTD_KEY_NAME,         HK_CERTD_KEY_EMAILS,
        HK_CERTD_KEY_HAS_PASSWORD, HK_CERTD_KEY_REQUIRE_SIG,
        HK_CERTD_KEY_FAX_ALLOWED,  HK_CERTD_KEY_HAS_FAX_PASSWORD,
        HK_CERTD_KEY_CREATED,      NULL,
};

static void
print_certs(json_object *user)
{
	json_object *certs = NULL;

	if (!json_object_object_get_ex(user, HK_CERTD_KEY_CERTS, &certs))
		return;
	printf("certificates:%s\n", json_object_array_length(certs) ? "" : " none");
	for (size_t i = 0; i < json_object_array_length(certs); i++) {
		json_object *c = json_object_array_get_idx(certs, i);

		printf("  %s  %-8s  until %s\n", hk_json_get_string(c, HK_CERTD_KEY_SERIAL),
		       hk_json_get_string(c, HK_CERTD_KEY_STATUS),
		       hk_json_get_string(c, HK_CERTD_KEY_NOT_AFTER));
	}
}

/* The usual ending of a command: the error, or the user as certd now has it. */
static int
user_result(json_object *result, gboolean printed, const GError *error)
{
	if (result == NULL)
		return ctl_fail(error);
	if (!printed) {
		ctl_print_object(result, user_keys);
		print_certs(result);
	}
	return CTL_EXIT_OK;
}

static int
call_name(Ctl *ctl, const char *op, const char *name)
{
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;

	ctl_add_string(params, HK_CERTD_KEY_NAME, name);
	result = ctl_call(ctl, op, params, &printed, &error);
	return user_result(result, printed, error);
}

/* ----- user commands ----- */

static json_object *
split_emails(char **options)
{
	json_object *emails = json_object_new_array();

	for (guint i = 0; options != NULL && options[i] != NULL; i++) {
		g_auto(GStrv) parts = g_strsplit(options[i], ",", -1);

		for (guint j = 0; parts[j] != NULL; j++) {
			g_strstrip(parts[j]);
			if (*parts[j] != '\0')
				json_object_array_add(emails, json_object_new_string(parts[j]));
		}
	}
	return emails;
}

static int
cmd_user_add(Ctl *ctl, int argc, char **argv)
{
	g_auto(GStrv) email_opts = NULL;
	const GOptionEntry entries[] = {
	        {"email", 0, 0, G_OPTION_ARG_STRING_ARRAY, &email_opts,
	         "The user's addresses (comma-separated, or the option repeated)", "A[,B...]"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "user add NAME --email A[,B...]", entries, &status))
		return status;
	if (argc != 2 || email_opts == NULL)
		return ctl_usage("user add NAME --email A[,B...]");
	ctl_add_string(params, HK_CERTD_KEY_NAME, argv[1]);
	json_object_object_add(params, HK_CERTD_KEY_EMAILS, split_emails(email_opts));
	result = ctl_call(ctl, HK_CERTD_OP_USER_ADD, params, &printed, &error);
	return user_result(result, printed, error);
}

/* "COMMAND NAME" with a password read as read_password() does: the params
 * {name_key: NAME, password: ...}, or NULL with *status the exit status. */
static json_object *
name_password_params(int argc, char **argv, const char *command, const char *name_key,
                     const char *what, gboolean confirm, int *status)
{
	g_autofree char *usage =
	        g_strdup_printf("%s NAME  (the password on standard input)", command);
	g_autofree char *short_usage = g_strdup_printf("%s NAME < password", command);
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(HkSecret) password = NULL;
	g_autoptr(GError) error = NULL;

	if (!ctl_parse(&argc, &argv, usage, NULL, status))
		return NULL;
	if (argc != 2) {
		*status = ctl_usage(short_usage);
		return NULL;
	}
	if ((password = read_password(what, confirm, &error)) == NULL) {
		*status = ctl_fail(error);
		return NULL;
	}
	ctl_add_string(params, name_key, argv[1]);
	ctl_add_string(params, HK_CERTD_KEY_PASSWORD, password);
	return g_steal_pointer(&params);
}

static int
cmd_user_passwd(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(json_object) params = NULL;
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	int status;

	params = name_password_params(argc, argv, "user passwd", HK_CERTD_KEY_NAME, "password",
	                              TRUE, &status);
	if (params == NULL)
		return status;
	result = ctl_call(ctl, HK_CERTD_OP_USER_PASSWD, params, &printed, &error);
	return user_result(result, printed, error);
}

static const char *
yes_no(json_object *obj, const char *key)
{
	return hk_json_get_bool(obj, key, FALSE) ? "yes" : "no";
}

static void
print_user_row(json_object *user)
{
	json_object *emails = NULL;
	g_autoptr(GString) list = g_string_new(NULL);

	json_object_object_get_ex(user, HK_CERTD_KEY_EMAILS, &emails);
	for (size_t i = 0; i < json_object_array_length(emails); i++)
		g_string_append_printf(
		        list, "%s%s", i ? "," : "",
		        json_object_get_string(json_object_array_get_idx(emails, i)));
	printf("%-24s %-8s %-9s %-5s %s\n", hk_json_get_string(user, HK_CERTD_KEY_NAME),
	       yes_no(user, HK_CERTD_KEY_HAS_PASSWORD), yes_no(user, HK_CERTD_KEY_REQUIRE_SIG),
	       yes_no(user, HK_CERTD_KEY_FAX_ALLOWED), list->str);
}

static int
cmd_user_list(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	json_object *users = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "user list", NULL, &status))
		return status;
	if (argc != 1)
		return ctl_fail_local("user list takes no arguments");
	result = ctl_call(ctl, HK_CERTD_OP_USER_LIST, NULL, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (printed)
		return CTL_EXIT_OK;
	json_object_object_get_ex(result, HK_CERTD_KEY_USERS, &users);
	printf("%-24s %-8s %-9s %-5s %s\n", "NAME", "PASSWORD", "SIGNATURE", "FAX", "E-MAIL");
	for (size_t i = 0; i < json_object_array_length(users); i++)
		print_user_row(json_object_array_get_idx(users, i));
	return CTL_EXIT_OK;
}

static int
cmd_user_show(Ctl *ctl, int argc, char **argv)
{
	int status;

	if (!ctl_parse(&argc, &argv, "user show NAME", NULL, &status))
		return status;
	if (argc != 2)
		return ctl_usage("user show NAME");
	return call_name(ctl, HK_CERTD_OP_USER_SHOW, argv[1]);
}

static int
cmd_user_del(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(json_object) params = json_object_new_object();
	int status;

	if (!ctl_parse(&argc, &argv, "user del NAME", NULL, &status))
		return status;
	if (argc != 2)
		return ctl_usage("user del NAME");
	ctl_add_string(params, HK_CERTD_KEY_NAME, argv[1]);
	return ctl_call_say(ctl, HK_CERTD_OP_USER_DEL, params, "user %s deleted\n", argv[1]);
}

/* KEY=VALUE. A fax password goes to certd as "password" (masked in its debug log);
 * fax_password=- reads it like a password, fax_password= clears it. */
static gboolean
set_params(json_object *params, const char *assignment, GError **error)
{
	const char *eq = strchr(assignment, '=');
	g_autofree char *key = NULL;
	g_autoptr(HkSecret) password = NULL;

	if (eq == NULL) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		            "\"%s\" is not KEY=VALUE", assignment);
		return FALSE;
	}
	key = g_strndup(assignment, (gsize)(eq - assignment));
	ctl_add_string(params, HK_CERTD_KEY_ATTR, key);
	if (!g_str_equal(key, HK_CERTD_KEY_FAX_PASSWORD) || eq[1] == '\0') {
		json_object_object_add(params, HK_CERTD_KEY_VALUE, json_object_new_string(eq + 1));
		return TRUE;
	}
	if (g_str_equal(eq + 1, "-"))
		password = read_password("fax password", TRUE, error);
	else
		password = g_strdup(eq + 1);
	if (password == NULL)
		return FALSE;
	ctl_add_string(params, HK_CERTD_KEY_PASSWORD, password);
	return TRUE;
}

static int
cmd_user_set(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "user set NAME KEY=VALUE", NULL, &status))
		return status;
	if (argc != 3)
		return ctl_usage("user set NAME KEY=VALUE  (KEY: require_signature, fax_allowed, "
		                 "fax_password; fax_password=- reads it from standard input)");
	ctl_add_string(params, HK_CERTD_KEY_NAME, argv[1]);
	if (!set_params(params, argv[2], &error))
		return ctl_fail(error);
	result = ctl_call(ctl, HK_CERTD_OP_USER_SET, params, &printed, &error);
	return user_result(result, printed, error);
}

static int
print_import(json_object *result)
{
	json_object *errors = NULL;
	size_t n;

	json_object_object_get_ex(result, HK_CERTD_KEY_ERRORS, &errors);
	n = json_object_array_length(errors);
	printf("added: %" G_GINT64_FORMAT ", updated: %" G_GINT64_FORMAT
	       ", unchanged: %" G_GINT64_FORMAT ", refused: %zu\n",
	       hk_json_get_int(result, HK_CERTD_KEY_ADDED, 0),
	       hk_json_get_int(result, HK_CERTD_KEY_UPDATED, 0),
	       hk_json_get_int(result, HK_CERTD_KEY_SKIPPED, 0), n);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(errors, i);

		fprintf(stderr, "hankoctl: line %" G_GINT64_FORMAT ": %s\n",
		        hk_json_get_int(e, HK_CERTD_KEY_LINE, 0),
		        hk_json_get_string(e, HK_CERTD_KEY_MESSAGE));
	}
	return n > 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
}

static int
cmd_user_import(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	g_autoptr(HkSecret) content = NULL;
	gboolean printed;
	gsize len = 0;
	int status;

	if (!ctl_parse(&argc, &argv, "user import FILE  (a Dovecot passwd-file; - for stdin)", NULL,
	               &status))
		return status;
	if (argc != 2)
		return ctl_usage("user import FILE");
	if ((content = ctl_read_file(argv[1], &len, &error)) == NULL)
		return ctl_fail(error);
	if (memchr(content, '\0', len) != NULL)
		return ctl_fail_local("%s: not a text file", argv[1]);
	ctl_add_string(params, HK_CERTD_KEY_PASSWD_FILE, content);
	ctl->timeout_ms = MAX(ctl->timeout_ms, IMPORT_TIMEOUT);
	result = ctl_call(ctl, HK_CERTD_OP_USER_IMPORT, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (printed)
		return json_object_array_length(json_object_object_get(result, HK_CERTD_KEY_ERRORS))
		               ? CTL_EXIT_FAILED
		               : CTL_EXIT_OK;
	return print_import(result);
}

static int
cmd_user_verify(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(json_object) params = NULL;
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	gboolean printed;
	int status;

	params = name_password_params(argc, argv, "user verify", HK_CERTD_KEY_USER, "Password",
	                              FALSE, &status);
	if (params == NULL)
		return status;
	result = ctl_call(ctl, HK_CERTD_OP_AUTH_VERIFY, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	if (!hk_json_get_bool(result, HK_CERTD_KEY_OK, FALSE)) {
		if (!printed)
			printf("failed: %s\n", hk_json_get_string(result, HK_CERTD_KEY_REASON));
		return CTL_EXIT_FAILED;
	}
	if (!printed)
		printf("ok: %s\n", hk_json_get_string(result, HK_CERTD_KEY_USER));
	return CTL_EXIT_OK;
}

/* ----- smime commands ----- */

static const char *const smime_keys[] = {
        HK_CERTD_KEY_EMAIL,
        HK_CERTD_KEY_FINGERPRINT,
        HK_CERTD_KEY_NOT_AFTER,
        NULL,
};

static int
cmd_smime_register(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree char *pem = NULL;
	gboolean printed;
	gsize len = 0;
	int status;

	if (!ctl_parse(&argc, &argv, "smime register EMAIL CERT.pem", NULL, &status))
		return status;
	if (argc != 3)
		return ctl_usage("smime register EMAIL CERT.pem");
	if ((pem = ctl_read_file(argv[2], &len, &error)) == NULL)
		return ctl_fail(error);
	ctl_add_string(params, HK_CERTD_KEY_EMAIL, argv[1]);
	ctl_add_string(params, HK_CERTD_KEY_CERT_PEM, pem);
	result = ctl_call(ctl, HK_CERTD_OP_SMIME_REGISTER, params, &printed, &error);
	return ctl_show_result(result, printed, error, smime_keys);
}

static int
cmd_smime_show(Ctl *ctl, int argc, char **argv)
{
	g_autofree char *out = NULL;
	const GOptionEntry entries[] = {
	        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &out,
	         "Write the certificate (PEM) here instead of printing it", "FILE"},
	        G_OPTION_ENTRY_NULL,
	};
	g_autoptr(json_object) params = json_object_new_object();
	g_autoptr(json_object) result = NULL;
	g_autoptr(GError) error = NULL;
	const char *pem;
	gboolean printed;
	int status;

	if (!ctl_parse(&argc, &argv, "smime show EMAIL [-o FILE]", entries, &status))
		return status;
	if (argc != 2)
		return ctl_usage("smime show EMAIL [-o FILE]");
	ctl_add_string(params, HK_CERTD_KEY_EMAIL, argv[1]);
	result = ctl_call(ctl, HK_CERTD_OP_SMIME_LOOKUP, params, &printed, &error);
	if (result == NULL)
		return ctl_fail(error);
	pem = hk_json_get_string(result, HK_CERTD_KEY_CERT_PEM);
	if (out != NULL && !ctl_write_file(out, pem, strlen(pem), 0644, &error))
		return ctl_fail(error);
	if (printed)
		return CTL_EXIT_OK;
	ctl_print_object(result, smime_keys);
	if (out == NULL)
		printf("%s", pem);
	return CTL_EXIT_OK;
}

static int
cmd_smime_unregister(Ctl *ctl, int argc, char **argv)
{
	g_autoptr(json_object) params = json_object_new_object();
	int status;

	if (!ctl_parse(&argc, &argv, "smime unregister EMAIL", NULL, &status))
		return status;
	if (argc != 2)
		return ctl_usage("smime unregister EMAIL");
	ctl_add_string(params, HK_CERTD_KEY_EMAIL, argv[1]);
	return ctl_call_say(ctl, HK_CERTD_OP_SMIME_UNREGISTER, params,
	                    "S/MIME certificate for %s unregistered\n", argv[1]);
}

const CtlCommand ctl_user_commands[] = {
        {"user", "add", "NAME --email A[,B...]", "add a user", cmd_user_add},
        {"user", "passwd", "NAME", "set a user's password (from stdin)", cmd_user_passwd},
        {"user", "list", "", "list the users", cmd_user_list},
        {"user", "show", "NAME", "show a user and its certificates", cmd_user_show},
        {"user", "del", "NAME", "delete a user without valid certificates", cmd_user_del},
        {"user", "set", "NAME KEY=VALUE", "set require_signature, fax_allowed, fax_password",
         cmd_user_set},
        {"user", "import", "FILE", "import a Dovecot passwd-file", cmd_user_import},
        {"user", "verify", "NAME", "check a password (from stdin) as SMTP AUTH would",
         cmd_user_verify},
        {"smime", "register", "EMAIL CERT.pem", "register an S/MIME recipient certificate",
         cmd_smime_register},
        {"smime", "show", "EMAIL [-o FILE]", "show the S/MIME certificate for an address",
         cmd_smime_show},
        {"smime", "unregister", "EMAIL", "remove a registered S/MIME certificate",
         cmd_smime_unregister},
        {0},
};
