/*
 * policyd-codec: Postfix's SMTP access policy delegation protocol (SMTPD_POLICY_README),
 * as bytes in and bytes out, without sockets.
 *
 * A request is "name=value" lines ended by an empty line; the reply is "action=..." and
 * an empty line. Unknown attributes are ignored, missing or empty ones tolerated; the
 * last of a repeated attribute wins. A line without '=', a line over
 * POLICYD_MAX_LINE bytes or more than POLICYD_MAX_ATTRS attributes is malformed: the
 * transport then closes the connection, as Postfix's own servers do.
 *
 * Must never: allocate without bound on hostile input, or let a value reach the reply
 * with a line break in it.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define POLICYD_MAX_LINE  4096 /* bytes, without the newline */
#define POLICYD_MAX_ATTRS 100

#define POLICYD_CODEC_ERROR (policyd_codec_error_quark())
GQuark policyd_codec_error_quark(void);

typedef enum {
	POLICYD_CODEC_ERROR_NO_EQUALS,
	POLICYD_CODEC_ERROR_LINE_TOO_LONG,
	POLICYD_CODEC_ERROR_TOO_MANY_ATTRS,
	POLICYD_CODEC_ERROR_INCOMPLETE, /* policyd_request_parse(): no empty line at the end */
} PolicydCodecError;

/* The attributes hanko reads; every field NULL when absent. */
typedef struct {
	char *request; /* "smtpd_access_policy" */
	char *protocol_state;
	char *protocol_name;
	char *client_address;
	char *client_name;
	char *helo_name;
	char *queue_id;
	char *instance;
	char *sender;
	char *recipient;
	char *sasl_username;
	char *encryption_protocol; /* "TLSv1.3"; empty without TLS */
	char *ccert_subject;
	char *ccert_fingerprint;
	char *ccert_pubkey_fingerprint;
	/* private: a decoded request's values lie in one block, the fields point into it */
	char *values;
	guint32 owned; /* fields set by policyd_request_set(), each a string of its own */
} PolicydRequest;

#define POLICYD_REQUEST_N_FIELDS 15

void policyd_request_clear(PolicydRequest *request);
/* Sets a field by attribute name; unknown names are ignored (FALSE). Used by the admin
 * socket too, which takes the same names. */
gboolean policyd_request_set(PolicydRequest *request, const char *name, const char *value);

/* Incremental decoder for one connection's byte stream. */
typedef struct {
	GString *line;   /* the line being read, without its newline */
	GString *values; /* the request's values read so far, each ended by a NUL */
	guint32 value_at[POLICYD_REQUEST_N_FIELDS]; /* offset in values + 1; 0: absent */
	gsize dead;                                 /* bytes of values a repeat replaced */
	guint n_attrs;
} PolicydDecoder;

typedef enum {
	POLICYD_DECODE_NEED_MORE,
	POLICYD_DECODE_READY,
	POLICYD_DECODE_ERROR,
} PolicydDecodeStatus;

void policyd_decoder_init(PolicydDecoder *decoder);
void policyd_decoder_clear(PolicydDecoder *decoder);
/*
 * Reads from data until one request is complete (READY: *out filled, to be cleared by the
 * caller), the data is used up (NEED_MORE), or the input is malformed (ERROR, *error set;
 * the decoder is then unusable). *consumed says how much of data was read; feed the rest
 * again after READY.
 */
PolicydDecodeStatus policyd_decoder_feed(PolicydDecoder *decoder, const char *data, gsize len,
                                         gsize *consumed, PolicydRequest *out, GError **error);

/* A whole request block (ending with the empty line) -> request. For tests and tools. */
gboolean policyd_request_parse(const char *data, gsize len, PolicydRequest *out, GError **error);

/* "action=<action>\n\n"; line breaks and other control characters become spaces. */
char *policyd_reply_format(const char *action);
/* The same reply, appended to out. */
void policyd_reply_append(GString *out, const char *action);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PolicydRequest, policyd_request_clear)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PolicydDecoder, policyd_decoder_clear)

G_END_DECLS
