/*
 * milter-message: one message as the milter sees it (envelope, header fields, body) and
 * the verdict on it. No libmilter here: milter-filter.c feeds the callbacks' data in and
 * applies the verdict, and the unit tests do the same without an MTA.
 *
 * The body is kept in memory up to 256 KiB, then in an unlinked file in tmp_dir; beyond
 * max_smime_size it is only counted.
 *
 * Talks to: milter-smime (the checks), hanko-certd through the runtime's MilterCertd
 * (user.lookup, cert.lookup).
 * Must never: let a message needing a signature through unchecked, keep a body file
 * after the message (the file has no name), or log a header's or body's content.
 */
#pragma once

#include "milter-mime.h"
#include "milter-runtime.h"

G_BEGIN_DECLS

typedef struct _MilterMessage MilterMessage;

typedef enum {
	MILTER_VERDICT_ACCEPT,
	MILTER_VERDICT_REJECT,
	MILTER_VERDICT_TEMPFAIL,
	MILTER_VERDICT_DISCARD, /* the fax gateway took it: it goes no further */
} MilterAction;

typedef struct {
	char *name;
	guint index; /* 1-based among the fields of that name */
} MilterHeaderRef;

typedef struct {
	MilterAction action;
	char *rcode; /* "550" */
	char *xcode; /* "5.7.1" */
	char *text;
	char *auth_results; /* value of the Authentication-Results field to add, or NULL */
	GArray *remove;     /* MilterHeaderRef: fields to delete, last first */
	GBytes *new_body;   /* the decrypted entity's body, or NULL */
	GPtrArray *add;     /* MilterMimeHeader: the decrypted entity's Content-* fields */
	char *log;          /* the message's one log line */
	char *fax_log;      /* what the fax gateway did, part of log */
} MilterVerdict;

MilterMessage *milter_message_new(MilterRuntime *rt);
void milter_message_free(MilterMessage *msg);

void milter_message_set_queue_id(MilterMessage *msg, const char *queue_id);
void milter_message_set_sender(MilterMessage *msg, const char *sender);
/*
 * Adds a recipient. Mail for the gateway (its address, NUMBER@fax_domain, the
 * registration address) is decrypted and taken by the gateway, so it must not share a
 * transaction with other recipients: FALSE (answer 452 4.5.3 with *why) for a recipient
 * that would mix them; the client sends it again in a transaction of its own.
 */
gboolean milter_message_add_rcpt(MilterMessage *msg, const char *rcpt, char **why);
void milter_message_add_header(MilterMessage *msg, const char *name, const char *value);
/* FALSE only when the spool file cannot be written. */
gboolean milter_message_add_body(MilterMessage *msg, const guint8 *data, gsize len, GError **error);
/* Something went wrong on our side while collecting: on_internal_error decides. */
void milter_message_mark_failed(MilterMessage *msg);
/* Judges the message. */
MilterVerdict *milter_message_finish(MilterMessage *msg);

void milter_verdict_free(MilterVerdict *verdict);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MilterMessage, milter_message_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MilterVerdict, milter_verdict_free)

G_END_DECLS
