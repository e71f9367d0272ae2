/*
 * policyd-auth: the server side of Dovecot's authentication protocol (auth-client socket),
 * so that Postfix's smtpd_sasl_type = dovecot (and Exim's dovecot authenticator) check
 * SMTP AUTH PLAIN and LOGIN passwords against hanko's users. docs/policyd-auth.md tells
 * what is supported and how Postfix is wired to it.
 *
 * Talks to: Postfix smtpd (or Exim) on the listening sockets; hanko-certd's auth.verify
 * through the caller's asynchronous client.
 * Must never: log a password or put one in an error message, keep one in memory longer
 * than the request that carried it, tell a client whether a user exists, or block the
 * main loop (failure delays are timers).
 */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "hk-config.h"
#include "hk-ipc.h"

G_BEGIN_DECLS

typedef struct _PolicydAuth PolicydAuth;

/* certd: the shared asynchronous client to hanko-certd, owned by the caller, who frees it
 * after policyd_auth_free(). config: [policyd] keys auth_*, certd_timeout, max_connections. */
PolicydAuth *policyd_auth_new(HkConfig *config, HkIpcAsync *certd);
/* spec: "unix:PATH" (created with mode and group, unless group is (gid_t)-1) or
 * "inet:HOST:PORT" ("inet:[::1]:PORT" for IPv6). */
gboolean
policyd_auth_listen(PolicydAuth *auth, const char *spec, guint mode, gid_t group, GError **error);
/* A listening socket systemd passed (socket activation). Takes the fd. */
gboolean policyd_auth_listen_fd(PolicydAuth *auth, int fd, GError **error);
/* New requests use the new config; requests in flight keep theirs. */
void policyd_auth_reload(PolicydAuth *auth, HkConfig *config);
/* Closes listeners (removing the socket files it created) and connections. NULL-safe. */
void policyd_auth_free(PolicydAuth *auth);

/* Connections open now (for tests and statistics). */
guint policyd_auth_get_n_connections(PolicydAuth *auth);

/* ----- the pure parts, exposed for the unit tests ----- */

#define POLICYD_AUTH_MAX_LINE     8192 /* bytes, without the newline (Dovecot's old limit) */
#define POLICYD_AUTH_MAX_USER     256  /* bytes of a user name */
#define POLICYD_AUTH_MAX_PASSWORD 1024 /* bytes of a password */

#define POLICYD_AUTH_ERROR (policyd_auth_error_quark())
GQuark policyd_auth_error_quark(void);

typedef enum {
	POLICYD_AUTH_ERROR_PROTOCOL, /* the client broke the protocol: close the connection */
	POLICYD_AUTH_ERROR_BASE64,   /* not valid base64: FAIL at once */
	POLICYD_AUTH_ERROR_MESSAGE,  /* a SASL message that does not decode: a failed login */
} PolicydAuthError;

/* The parameters of an AUTH command (after "AUTH\t"), as Dovecot and Postfix spell them. */
typedef struct {
	guint id;
	char *mech;    /* upper-cased */
	char *service; /* "smtp"; required, as Dovecot requires it */
	char *lip, *rip;
	guint lport, rport; /* 0: absent */
	gboolean secured;   /* the client side runs TLS (or is local) */
	gboolean valid_client_cert;
	gboolean nologin;
	gboolean has_resp; /* resp= given with a non-empty value */
	char *resp;        /* the initial response, base64, cleansed on clear */
} PolicydAuthParams;

void policyd_auth_params_clear(PolicydAuthParams *params);
/* Parses "ID\tMECH\tname=value\tflag..." in place (args is modified). Unknown parameters
 * are ignored; resp= must come last, as Dovecot says. */
gboolean policyd_auth_params_parse(char *args, PolicydAuthParams *params, GError **error);

/* Strict base64 (RFC 4648 alphabet, padded); "" and "=" decode to nothing. The result is
 * NUL-terminated one byte past *len; free it with policyd_auth_secret_free(). */
guint8 *policyd_auth_base64_decode(const char *text, gsize *len, GError **error);
/* Zeroes len bytes (and the NUL after them) and frees. NULL-safe. */
void policyd_auth_secret_free(guint8 *data, gsize len);

/* A name a client may log in as: 1..POLICYD_AUTH_MAX_USER bytes of UTF-8 without control
 * characters (so it can be echoed in "user=" and in log lines as it is). */
gboolean policyd_auth_user_is_valid(const char *user, gsize len);

/* PLAIN (RFC 4616): authzid NUL authcid NUL passwd; authzid empty or equal to authcid.
 * *password is cleansed with hk_secret_free() by the caller. */
gboolean policyd_auth_decode_plain(const guint8 *data, gsize len, char **user, char **password,
                                   GError **error);
/* One LOGIN answer (user name or password): no NUL inside. */
char *policyd_auth_decode_login(const guint8 *data, gsize len, gsize max, GError **error);

/* The delay before the FAIL of the n-th failure in a row from one address: base_ms doubled
 * per failure after the first, at most max_ms; 0 for n = 0. */
guint policyd_auth_penalty_delay(guint base_ms, guint max_ms, guint failures);
/* What failures are counted under: the IPv4 address, or the /48 of an IPv6 one (as Dovecot
 * does, so one host cannot flood the table); NULL when rip is not an address. */
char *policyd_auth_penalty_key(const char *rip);

/* Failures per address, with the clock passed in so tests can move it. */
typedef struct _PolicydAuthPenalty PolicydAuthPenalty;

#define POLICYD_AUTH_PENALTY_EXPIRE_US                                                             \
	(G_GINT64_CONSTANT(3600) * G_USEC_PER_SEC) /* as Dovecot's penalty */
#define POLICYD_AUTH_PENALTY_MAX_KEYS 100000

PolicydAuthPenalty *policyd_auth_penalty_new(void);
void policyd_auth_penalty_free(PolicydAuthPenalty *penalty);
/* Counts a failure from rip (NULL or not an address: not counted) and returns its delay. */
guint policyd_auth_penalty_fail(PolicydAuthPenalty *penalty, const char *rip, gint64 now_us,
                                guint base_ms, guint max_ms);
/* A success from rip forgets its failures. */
void policyd_auth_penalty_reset(PolicydAuthPenalty *penalty, const char *rip);
/* Forgets addresses whose last failure is older than POLICYD_AUTH_PENALTY_EXPIRE_US. */
void policyd_auth_penalty_expire(PolicydAuthPenalty *penalty, gint64 now_us);
guint policyd_auth_penalty_get_failures(PolicydAuthPenalty *penalty, const char *rip);
guint policyd_auth_penalty_size(PolicydAuthPenalty *penalty);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PolicydAuth, policyd_auth_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PolicydAuthPenalty, policyd_auth_penalty_free)

G_END_DECLS
