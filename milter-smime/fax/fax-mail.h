/*
 * fax-mail: the gateway's own mail: job result notifications, registration
 * confirmations, and the "get the gateway certificate" mail (seed 003). Each is
 * S/MIME-signed with the gateway identity (multipart/signed, SHA-256, the chain included)
 * and, when the recipient's certificate is known, then encrypted for it (AES-256-CBC by
 * default; the gateway's own certificate is a recipient too, so the gateway can read its
 * sent mail). Handed to sendmail(1): COMMAND -i -f FROM -- TO.
 *
 * Must never: put a fax password or document content in a notification or a log line.
 */
#pragma once

#include "fax-spool.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

G_BEGIN_DECLS

typedef struct {
	const char *from;       /* the gateway address: From and envelope sender */
	const char *from_name;  /* display name, "" : none */
	EVP_PKEY *key;          /* signing key; NULL: send unsigned */
	X509 *cert;             /* its certificate */
	STACK_OF(X509) * chain; /* intermediates/CA to include; may be NULL */
	const char *cipher; /* "aes-256-cbc" (default when NULL), "aes-128-cbc", "aes-256-gcm" */
	const char *const *sendmail; /* argv: {"/usr/sbin/sendmail", NULL} or with -C DIR ... */
} FaxMailer;

typedef struct {
	const char *filename;     /* "gateway.cer" */
	const char *content_type; /* "application/pkix-cert" */
	const guint8 *data;
	gsize len;
} FaxMailAttachment;

/*
 * The whole message (header and body, CRLF line ends) for to: text (UTF-8) as
 * text/plain, the attachments after it (multipart/mixed), signed, and encrypted for
 * encrypt_to when not NULL.
 */
GBytes *fax_mail_build(const FaxMailer *mailer, const char *to, const char *subject,
                       const char *text, const FaxMailAttachment *attachments, guint n_attachments,
                       X509 *encrypt_to, GError **error);

/* Builds and pipes the message to the sendmail command; an exit status != 0 is an error
 * carrying the command's output. */
gboolean fax_mail_send(const FaxMailer *mailer, const char *to, const char *subject,
                       const char *text, const FaxMailAttachment *attachments, guint n_attachments,
                       X509 *encrypt_to, GError **error);

/* The result mail of a job: *subject ("Fax sent: ..." / "Fax failed: ...") and the text. */
void fax_mail_job_result(const FaxJob *job, char **subject, char **text);

G_END_DECLS
