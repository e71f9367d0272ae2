/*
 * hankoctl: the administrator's client of hanko-certd. hankoctl.c holds the framework
 * (options, connection, dispatch, output helpers); each hankoctl-*.c file holds the
 * commands of one area as a table.
 */
#pragma once

#include "certd.h"
#include "hk-certd-proto.h"

#include <stdio.h>

G_BEGIN_DECLS

#define CTL_EXIT_OK          0
#define CTL_EXIT_FAILED      1  /* the daemon answered with an error, or a local step failed */
#define CTL_EXIT_USAGE       64 /* sysexits.h EX_USAGE */
#define CTL_EXIT_UNAVAILABLE 69 /* sysexits.h EX_UNAVAILABLE: cannot reach the daemon */
#define CTL_EXIT_CONFIG      78 /* sysexits.h EX_CONFIG */

typedef struct {
	char *config_path;
	char *socket_path;
	gboolean json; /* print the daemon's raw reply instead of text */
	gint timeout_ms;
	HkIpcClient *client;
} Ctl;

/* argv[0] is the command's own name ("issue" for "cert issue"). */
typedef int (*CtlFunc)(Ctl *ctl, int argc, char **argv);

typedef struct {
	const char *group; /* "cert"; NULL for a top-level command such as "ping" */
	const char *name;
	const char *args; /* "--cn NAME --email ADDR [--key SPEC] ..." */
	const char *help;
	CtlFunc func;
} CtlCommand;

extern const CtlCommand ctl_core_commands[];
extern const CtlCommand ctl_ca_commands[];
extern const CtlCommand ctl_cert_commands[];
extern const CtlCommand ctl_servercert_commands[];
extern const CtlCommand ctl_user_commands[];
extern const CtlCommand ctl_policy_commands[];
extern const CtlCommand ctl_fax_commands[];

/*
 * Calls op and returns its result (transfer full). With --json the daemon's reply line is
 * printed as it came, *printed is set, and the result is still returned on success so
 * commands that write files (P12, exports) can do so. On error, returns NULL with *error
 * set (the daemon's code is kept: see ctl_fail()).
 */
json_object *
ctl_call(Ctl *ctl, const char *op, json_object *params, gboolean *printed, GError **error);
/* Prints "hankoctl: <code>: <message>" and returns the exit status for the error. */
int ctl_fail(const GError *error);
/* Prints "hankoctl: <message>" for a local problem and returns CTL_EXIT_FAILED. */
int ctl_fail_local(const char *format, ...) G_GNUC_PRINTF(1, 2);

/*
 * Parses a command's options (GOptionEntry list ending in G_OPTION_ENTRY_NULL) and leaves
 * its positional arguments in argv[1..]. On a usage error prints it and returns FALSE;
 * *status is then the exit status.
 */
gboolean
ctl_parse(int *argc, char ***argv, const char *usage, const GOptionEntry *entries, int *status);
/* Reads a whole file ("-": standard input) for sending to certd. */
char *ctl_read_file(const char *path, gsize *len, GError **error);
/* Reads a secret from a file or, for "-", one line of standard input (newline removed). */
char *ctl_read_secret(const char *path, GError **error);
/* Writes data to path ("-": standard output) with mode, through a temporary file. */
gboolean ctl_write_file(const char *path, const void *data, gsize len, guint mode, GError **error);
/* Decodes a base64 member of a result and writes it to path. */
gboolean ctl_write_base64(json_object *result, const char *key, const char *path, guint mode,
                          GError **error);
/* Prints "key: value" lines for the string/number/bool members of obj, in order. */
void ctl_print_object(json_object *obj, const char *const *keys);
/* Prints "hankoctl: usage: hankoctl <usage>" and returns CTL_EXIT_USAGE. */
int ctl_usage(const char *usage);
/* Adds key: value to params when value is not NULL. */
void ctl_add_string(json_object *params, const char *key, const char *value);
/* Reads cert_path, and key_path and pass_path when given, into cert_pem, key_pem, passphrase. */
gboolean ctl_add_pem_files(json_object *params, const char *cert_path, const char *key_path,
                           const char *pass_path, GError **error);
/* A command's end: the error of ctl_call(), or the keys of its result (not with --json). */
int ctl_show_result(json_object *result, gboolean printed, const GError *error,
                    const char *const *keys);
/* Calls op and, on success without --json, prints the message; the error otherwise. */
int ctl_call_say(Ctl *ctl, const char *op, json_object *params, const char *format, ...)
        G_GNUC_PRINTF(4, 5);
/* Prints prefix and each of the result's warnings, a line each, to out. */
void ctl_print_warnings(FILE *out, const char *prefix, json_object *result);

G_END_DECLS
