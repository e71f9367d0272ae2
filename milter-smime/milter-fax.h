/*
 * milter-fax: the fax gateway as hanko-milter runs it (issue #6, seed 003). It owns the
 * spool, the backend and the queue runner, and takes three kinds of mail:
 *
 *   gateway_address        fax requests with /fax= directives (Subject or body)
 *   NUMBER@fax_domain      a fax to NUMBER
 *   registration_address   signed: register the signer's certificate for encrypted result
 *                          mails; unsigned: unregister
 *
 * A request is checked (a hanko user with fax_allowed, the fax password when the user has
 * one, the destinations), rendered and spooled durably before the milter answers; the
 * message itself then goes no further (the milter discards it). Every refusal is an
 * SMTP reply that says what is wrong.
 *
 * Talks to: hanko-certd (user.lookup, fax.verify, smime.lookup, smime.register,
 * smime.unregister), fax-spool, fax-render, fax-queue, the backend plugin, sendmail(1).
 * Must never: answer 250 for a request that is not committed to the spool, log a fax
 * password or document content, or let a request through half-checked.
 */
#pragma once

#include "fax-spool.h"
#include "milter-certd.h"
#include "milter.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

G_BEGIN_DECLS

typedef struct _MilterFax MilterFax;

typedef enum {
	MILTER_FAX_NONE,     /* not for the fax gateway */
	MILTER_FAX_GATEWAY,  /* gateway_address */
	MILTER_FAX_DIRECT,   /* NUMBER@fax_domain */
	MILTER_FAX_REGISTER, /* registration_address */
} MilterFaxKind;

typedef struct {
	MilterFaxKind kind;
	const char *queue_id;
	const char *sender;       /* envelope */
	const char *from;         /* the From address; NULL: none */
	const char *subject;      /* raw (RFC 2047) Subject value; NULL: none */
	const char *message_id;   /* NULL: none */
	const char *const *rcpts; /* envelope recipients (bare, lower case) */
	GBytes *content;          /* the entity inside every S/MIME layer: header and body */
	const char *digest;       /* hex SHA-256 of the message as received (resend detection) */
	X509 *signer;             /* the signer's certificate; NULL: unsigned */
	gboolean signature_ok;    /* signed, and the signature passed every check */
} MilterFaxRequest;

typedef struct {
	gboolean taken; /* the gateway took the message: discard it */
	gboolean temporary;
	char *rcode; /* "550", for !taken */
	char *xcode;
	char *text;
	char *log; /* what the gateway did, for the message's log line */
} MilterFaxOutcome;

void milter_fax_outcome_clear(MilterFaxOutcome *outcome);

/* Opens the spool, loads and opens the backend, starts the queue runner. */
MilterFax *milter_fax_new(HkConfig *config, MilterCertd *certd, GError **error);
void milter_fax_free(MilterFax *fax);

/* What this recipient is to the gateway. Thread-safe. */
MilterFaxKind milter_fax_classify(MilterFax *fax, HkConfig *config, const char *rcpt);

/* Takes a message for the gateway. Runs in libmilter's threads. */
void milter_fax_take(MilterFax *fax, HkConfig *config, const MilterFaxRequest *request,
                     MilterFaxOutcome *outcome);

/* The gateway's identity and CA for its own mail (NULL: send unsigned). Thread-safe. */
void milter_fax_set_identity(MilterFax *fax, EVP_PKEY *key, X509 *cert, X509 *ca);

/* For the admin socket (main thread). */
FaxSpool *milter_fax_get_spool(MilterFax *fax);
gboolean milter_fax_cancel(MilterFax *fax, gint64 job, GError **error);
gboolean milter_fax_resend(MilterFax *fax, gint64 job, guint *n, GError **error);
/* Canonical numbers of the written ones, by the dial rules of config. */
GStrv milter_fax_canonical_numbers(HkConfig *config, const char *const *written, GError **error);
/* Mails the gateway certificate (signed, and attached as gateway.cer) to each address. */
gboolean
milter_fax_send_cert(MilterFax *fax, HkConfig *config, const char *const *to, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MilterFax, milter_fax_free)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(MilterFaxOutcome, milter_fax_outcome_clear)

G_END_DECLS
