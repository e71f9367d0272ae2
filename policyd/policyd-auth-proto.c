/*
 * policyd-auth-proto: the pure parts of the Dovecot authentication protocol server:
 * AUTH parameter parsing, strict base64, PLAIN and LOGIN decoding, user name checks and
 * the failure penalty (delay arithmetic and the per-address table). No sockets, no main
 * loop: the unit tests call it through policyd-auth.h.
 *
 * Talks to: nothing; the clock is passed in.
 * Must never: log a password or put one in an error, or leave one in memory it frees.
 */
#include "policyd-auth.h"
#include "policyd-auth-private.h"
#include "hk-ossl.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <string.h>

#define MAX_FIELDS 64 /* tab-separated fields of one command */

GQuark
policyd_auth_error_quark(void)
{
	return g_quark_from_static_string("policyd-auth-error-quark");
}

void
policyd_auth_secret_free(guint8 *data, gsize len)
{
	if (data == NULL)
		return;
	OPENSSL_cleanse(data, len + 1);
	g_free(data);
}

static gboolean
base64_char(char c)
{
	return g_ascii_isalnum(c) || c == '+' || c == '/';
}

/* Checks the text is canonical padded base64, so g_base64_decode (which skips what it
 * does not know) decodes exactly what the client meant. */
static gboolean
base64_is_valid(const char *text, gsize n)
{
	gsize pad = 0;

	if (n % 4 != 0)
		return FALSE;
	while (pad < 2 && n > pad && text[n - 1 - pad] == '=')
		pad++;
	for (gsize i = 0; i < n - pad; i++) {
		if (!base64_char(text[i]))
			return FALSE;
	}
	return TRUE;
}

guint8 *
policyd_auth_base64_decode(const char *text, gsize *len, GError **error)
{
	gsize n = strlen(text);
	guint8 *raw, *out;

	*len = 0;
	if (n == 0 || strcmp(text, "=") == 0)
		return g_malloc0(1); /* Dovecot's way of sending an empty response */
	if (!base64_is_valid(text, n)) {
		g_set_error_literal(error, POLICYD_AUTH_ERROR, POLICYD_AUTH_ERROR_BASE64,
		                    "invalid base64 data");
		return NULL;
	}
	raw = g_base64_decode(text, len);
	out = g_malloc(*len + 1); /* NUL-terminated, for the callers that want text */
	memcpy(out, raw, *len);
	out[*len] = '\0';
	OPENSSL_cleanse(raw, *len);
	g_free(raw);
	return out;
}

gboolean
policyd_auth_user_is_valid(const char *user, gsize len)
{
	if (user == NULL || len == 0 || len > POLICYD_AUTH_MAX_USER || strlen(user) != len)
		return FALSE;
	if (!g_utf8_validate(user, (gssize)len, NULL))
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		guchar c = (guchar)user[i];

		if (c < 0x20 || c == 0x7f)
			return FALSE;
	}
	return TRUE;
}

static gboolean
message_error(GError **error, const char *what)
{
	g_set_error_literal(error, POLICYD_AUTH_ERROR, POLICYD_AUTH_ERROR_MESSAGE, what);
	return FALSE;
}

gboolean
policyd_auth_decode_plain(const guint8 *data, gsize len, char **user, char **password,
                          GError **error)
{
	const guint8 *nul1 = memchr(data, '\0', len), *nul2;
	gsize authz_len, authc_len, pass_len;

	*user = *password = NULL;
	if (nul1 == NULL)
		return message_error(error, "PLAIN message without NUL separators");
	nul2 = memchr(nul1 + 1, '\0', len - (gsize)(nul1 + 1 - data));
	if (nul2 == NULL)
		return message_error(error, "PLAIN message with one NUL separator");
	authz_len = (gsize)(nul1 - data);
	authc_len = (gsize)(nul2 - nul1 - 1);
	pass_len = len - (gsize)(nul2 + 1 - data);
	if (memchr(nul2 + 1, '\0', pass_len) != NULL)
		return message_error(error, "PLAIN message with more than two NUL separators");
	if (authz_len > 0 && (authz_len != authc_len || memcmp(data, nul1 + 1, authz_len) != 0))
		return message_error(error, "PLAIN authorization identity differs from the user");
	if (pass_len > POLICYD_AUTH_MAX_PASSWORD)
		return message_error(error, "PLAIN password too long");
	*user = g_strndup((const char *)nul1 + 1, authc_len);
	*password = g_strndup((const char *)nul2 + 1, pass_len);
	return TRUE;
}

char *
policyd_auth_decode_login(const guint8 *data, gsize len, gsize max, GError **error)
{
	if (memchr(data, '\0', len) != NULL) {
		message_error(error, "LOGIN answer with a NUL inside");
		return NULL;
	}
	if (len > max) {
		message_error(error, "LOGIN answer too long");
		return NULL;
	}
	return g_strndup((const char *)data, len);
}

void
policyd_auth_params_clear(PolicydAuthParams *params)
{
	g_free(params->mech);
	g_free(params->service);
	g_free(params->lip);
	g_free(params->rip);
	hk_secret_free(params->resp);
	memset(params, 0, sizeof(*params));
}

gboolean
policyd_auth_protocol_error(GError **error, const char *format, ...)
{
	g_autofree char *message = NULL;
	va_list args;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	g_set_error_literal(error, POLICYD_AUTH_ERROR, POLICYD_AUTH_ERROR_PROTOCOL, message);
	return FALSE;
}

gboolean
policyd_auth_parse_uint(const char *text, guint max, guint *out)
{
	guint64 value;

	if (!g_ascii_isdigit(text[0]) ||
	    !g_ascii_string_to_unsigned(text, 10, 0, max, &value, NULL))
		return FALSE;
	*out = (guint)value;
	return TRUE;
}

/* Splits line at tabs in place; FALSE when there are more than max fields. */
static gboolean
split_tabs(char *line, char **fields, guint max, guint *n)
{
	*n = 0;
	for (char *p = line;; p++) {
		if (*n == max)
			return FALSE;
		fields[(*n)++] = p;
		p = strchr(p, '\t');
		if (p == NULL)
			return TRUE;
		*p = '\0';
	}
}

static gboolean
param_port(const char *name, const char *value, guint *port, GError **error)
{
	if (!policyd_auth_parse_uint(value, 65535, port))
		return policyd_auth_protocol_error(error, "AUTH parameter %s is not a port", name);
	return TRUE;
}

static void
set_str(char **field, const char *value)
{
	g_free(*field);
	*field = g_strdup(value);
}

/* One optional parameter; unknown ones are ignored, as the protocol says. */
static gboolean
param_one(PolicydAuthParams *params, const char *name, const char *value, GError **error)
{
	if (value == NULL) {
		if (strcmp(name, "secured") == 0)
			params->secured = TRUE;
		else if (strcmp(name, "valid-client-cert") == 0)
			params->valid_client_cert = TRUE;
		else if (strcmp(name, "nologin") == 0)
			params->nologin = TRUE;
		return TRUE;
	}
	if (strcmp(name, "service") == 0)
		set_str(&params->service, value);
	else if (strcmp(name, "lip") == 0)
		set_str(&params->lip, value);
	else if (strcmp(name, "rip") == 0)
		set_str(&params->rip, value);
	else if (strcmp(name, "lport") == 0)
		return param_port(name, value, &params->lport, error);
	else if (strcmp(name, "rport") == 0)
		return param_port(name, value, &params->rport, error);
	return TRUE;
}

static gboolean
params_optional(PolicydAuthParams *params, char **fields, guint n, GError **error)
{
	for (guint i = 0; i < n; i++) {
		char *value = strchr(fields[i], '=');

		if (value != NULL)
			*value++ = '\0';
		if (strcmp(fields[i], "resp") == 0 && value != NULL) {
			if (i + 1 != n)
				return policyd_auth_protocol_error(error,
				                                   "AUTH parameters after resp");
			params->has_resp = value[0] != '\0'; /* Exim sends "resp=" for none */
			if (params->has_resp)
				params->resp = g_strdup(value);
			return TRUE;
		}
		if (!param_one(params, fields[i], value, error))
			return FALSE;
	}
	return TRUE;
}

gboolean
policyd_auth_params_parse(char *args, PolicydAuthParams *params, GError **error)
{
	char *fields[MAX_FIELDS];
	guint n;

	memset(params, 0, sizeof(*params));
	if (!split_tabs(args, fields, MAX_FIELDS, &n))
		return policyd_auth_protocol_error(error, "AUTH with more than %d fields",
		                                   MAX_FIELDS);
	if (n < 2 || !policyd_auth_parse_uint(fields[0], G_MAXUINT32, &params->id))
		return policyd_auth_protocol_error(error, "broken AUTH request");
	if (fields[1][0] == '\0')
		return policyd_auth_protocol_error(error, "AUTH without a mechanism");
	params->mech = g_ascii_strup(fields[1], -1);
	if (!params_optional(params, fields + 2, n - 2, error))
		return FALSE;
	if (params->service == NULL)
		return policyd_auth_protocol_error(error, "AUTH without service=");
	return TRUE;
}

guint
policyd_auth_penalty_delay(guint base_ms, guint max_ms, guint failures)
{
	guint64 delay = base_ms;

	if (failures == 0)
		return 0;
	for (guint i = 1; i < failures && delay < max_ms; i++)
		delay *= 2;
	return (guint)MIN(delay, (guint64)max_ms);
}

char *
policyd_auth_penalty_key(const char *rip)
{
	struct in6_addr a6;
	struct in_addr a4;
	char text[INET6_ADDRSTRLEN];

	if (rip == NULL)
		return NULL;
	if (inet_pton(AF_INET, rip, &a4) == 1)
		return g_strdup(inet_ntop(AF_INET, &a4, text, sizeof(text)));
	if (inet_pton(AF_INET6, rip, &a6) != 1)
		return NULL;
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		memcpy(&a4, &a6.s6_addr[12], 4);
		return g_strdup(inet_ntop(AF_INET, &a4, text, sizeof(text)));
	}
	memset(&a6.s6_addr[6], 0, 10); /* the /48: one site, one counter */
	return g_strdup(inet_ntop(AF_INET6, &a6, text, sizeof(text)));
}

typedef struct {
	guint failures;
	gint64 last_us;
} PenaltyEntry;

struct _PolicydAuthPenalty {
	GHashTable *entries; /* key -> PenaltyEntry* */
};

PolicydAuthPenalty *
policyd_auth_penalty_new(void)
{
	PolicydAuthPenalty *penalty = g_new0(PolicydAuthPenalty, 1);

	penalty->entries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	return penalty;
}

void
policyd_auth_penalty_free(PolicydAuthPenalty *penalty)
{
	if (penalty == NULL)
		return;
	g_hash_table_destroy(penalty->entries);
	g_free(penalty);
}

static PenaltyEntry *
penalty_entry(PolicydAuthPenalty *penalty, char *key, gint64 now_us)
{
	PenaltyEntry *entry = g_hash_table_lookup(penalty->entries, key);

	if (entry != NULL)
		return entry;
	if (g_hash_table_size(penalty->entries) >= POLICYD_AUTH_PENALTY_MAX_KEYS)
		policyd_auth_penalty_expire(penalty, now_us);
	if (g_hash_table_size(penalty->entries) >= POLICYD_AUTH_PENALTY_MAX_KEYS)
		return NULL; /* full of fresh entries: the newcomer gets the base delay */
	entry = g_new0(PenaltyEntry, 1);
	g_hash_table_insert(penalty->entries, g_strdup(key), entry);
	return entry;
}

guint
policyd_auth_penalty_fail(PolicydAuthPenalty *penalty, const char *rip, gint64 now_us,
                          guint base_ms, guint max_ms)
{
	g_autofree char *key = policyd_auth_penalty_key(rip);
	PenaltyEntry *entry = key ? penalty_entry(penalty, key, now_us) : NULL;

	if (entry == NULL)
		return policyd_auth_penalty_delay(base_ms, max_ms, 1);
	if (now_us - entry->last_us >= POLICYD_AUTH_PENALTY_EXPIRE_US)
		entry->failures = 0; /* not swept yet, but as good as forgotten */
	if (entry->failures < 32)
		entry->failures++;
	entry->last_us = now_us;
	return policyd_auth_penalty_delay(base_ms, max_ms, entry->failures);
}

void
policyd_auth_penalty_reset(PolicydAuthPenalty *penalty, const char *rip)
{
	g_autofree char *key = policyd_auth_penalty_key(rip);

	if (key != NULL)
		g_hash_table_remove(penalty->entries, key);
}

static gboolean
penalty_is_old(gpointer key, gpointer value, gpointer now_us)
{
	const PenaltyEntry *entry = value;

	return *(gint64 *)now_us - entry->last_us >= POLICYD_AUTH_PENALTY_EXPIRE_US;
}

void
policyd_auth_penalty_expire(PolicydAuthPenalty *penalty, gint64 now_us)
{
	g_hash_table_foreach_remove(penalty->entries, penalty_is_old, &now_us);
}

guint
policyd_auth_penalty_get_failures(PolicydAuthPenalty *penalty, const char *rip)
{
	g_autofree char *key = policyd_auth_penalty_key(rip);
	PenaltyEntry *entry = key ? g_hash_table_lookup(penalty->entries, key) : NULL;

	return entry ? entry->failures : 0;
}

guint
policyd_auth_penalty_size(PolicydAuthPenalty *penalty)
{
	return g_hash_table_size(penalty->entries);
}
