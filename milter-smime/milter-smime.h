/*
 * milter-smime: the S/MIME engine. Given a message (its top-level header fields and body)
 * it walks the S/MIME layers: detached multipart/signed, opaque signed-data, and, when
 * asked to, EnvelopedData (AES-CBC) and AuthEnvelopedData (AES-GCM) opened with the
 * gateway's key; a layer's content is looked into again, up to a depth limit, so signed
 * inside encrypted and encrypted inside signed both work. It reports the signature's
 * result and signer, and the decrypted entity.
 *
 * Talks to: OpenSSL (CMS, X509 chains), and a caller-supplied signer check (certd's status
 * of the certificates hanko issued).
 * Must never: call a signature valid that was not checked over exactly the bytes sent, let
 * bad input be more than a failed result (only an internal error is a GError), or keep
 * decrypted data anywhere but the report.
 */
#pragma once

#include "milter-mime.h"

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

G_BEGIN_DECLS

/* RFC 7281's smime results. */
typedef enum {
	MILTER_SMIME_NONE,      /* not signed */
	MILTER_SMIME_PASS,      /* signed, valid, trusted */
	MILTER_SMIME_FAIL,      /* signed, but not valid, trusted or current */
	MILTER_SMIME_NEUTRAL,   /* encrypted and not ours to open: no telling */
	MILTER_SMIME_TEMPERROR, /* the signer's status could not be had (certd down) */
	MILTER_SMIME_PERMERROR, /* S/MIME structure broken */
} MilterSmimeResult;

const char *milter_smime_result_name(MilterSmimeResult result);

typedef enum {
	MILTER_DECRYPT_NONE,        /* nothing encrypted, or not asked to */
	MILTER_DECRYPT_OK,          /* decrypted; plain holds the entity */
	MILTER_DECRYPT_NO_IDENTITY, /* encrypted, but no gateway identity is assigned */
	MILTER_DECRYPT_WRONG_KEY,   /* not encrypted to the gateway's certificate */
	MILTER_DECRYPT_CORRUPT,     /* damaged data, wrong padding or tag */
	MILTER_DECRYPT_UNSUPPORTED, /* an algorithm OpenSSL cannot do */
} MilterDecrypt;

/* What certd says of a certificate hanko issued. */
typedef enum {
	MILTER_SIGNER_GOOD,
	MILTER_SIGNER_REVOKED,
	MILTER_SIGNER_UNKNOWN,     /* issued by hanko's CA but not in certd's records */
	MILTER_SIGNER_UNAVAILABLE, /* certd cannot say now */
} MilterSignerStatus;

typedef MilterSignerStatus (*MilterSignerCheck)(X509 *signer, gpointer data);

typedef struct {
	X509_STORE *store; /* trust anchors and CRLs; NULL trusts nobody */
	X509 *hanko_ca;    /* its certificates get check(); NULL: none */
	MilterSignerCheck check;
	gpointer check_data;
	EVP_PKEY *key; /* the gateway's key and certificate; NULL: cannot decrypt */
	X509 *cert;
	gboolean decrypt;    /* open EnvelopedData (mail for the gateway) */
	gboolean keep_inner; /* fill report->inner (the fax gateway reads the content) */
	gboolean allow_sha1;
	guint max_depth; /* S/MIME and multipart layers looked into */
} MilterSmimeContext;

typedef struct {
	MilterSmimeResult result;
	char *reason; /* why, for anything but pass and none */
	/* of the outermost signature, when there is one */
	char **signer_emails; /* the certificate's addresses (SAN and emailAddress), lower case */
	char *signer_serial;  /* upper-case hex */
	char *signer_issuer;  /* RFC 2253 */
	char *signer_subject; /* RFC 2253 */
	X509 *signer;         /* its certificate (a reference) */
	gboolean encrypted;
	MilterDecrypt decrypt;
	char *decrypt_reason;
	GBytes *plain; /* the decrypted entity (header fields and body) */
	guint layers;  /* S/MIME layers seen */
	GBytes *inner; /* keep_inner: the innermost content, inside every S/MIME layer */
} MilterSmimeReport;

/*
 * Checks message. Returns FALSE only for an internal error (out of memory, OpenSSL
 * failing on its own); everything wrong with the message is in the report.
 */
gboolean milter_smime_check(const MilterSmimeContext *ctx, const MilterMimeEntity *message,
                            MilterSmimeReport *report, GError **error);
void milter_smime_report_clear(MilterSmimeReport *report);

/* TRUE if one of the signer's addresses is address (case-insensitive). */
gboolean milter_smime_signer_has(const MilterSmimeReport *report, const char *address);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(MilterSmimeReport, milter_smime_report_clear)

G_END_DECLS
