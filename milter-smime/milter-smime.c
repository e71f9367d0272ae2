/*
 * milter-smime: walks a message's S/MIME layers and reports signature and decryption.
 * See milter-smime.h.
 */
#include "milter-smime.h"
#include "hk-ossl.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

typedef struct {
	const MilterSmimeContext *ctx;
	MilterSmimeReport *report;
	GPtrArray *keep; /* GBytes of decoded layers the entities point into */
	gboolean signed_seen;
	GError *internal;
} Walk;

static void walk_entity(Walk *w, const MilterMimeEntity *entity, guint depth);

const char *
milter_smime_result_name(MilterSmimeResult result)
{
	static const char *const names[] = {
	        [MILTER_SMIME_NONE] = "none",           [MILTER_SMIME_PASS] = "pass",
	        [MILTER_SMIME_FAIL] = "fail",           [MILTER_SMIME_NEUTRAL] = "neutral",
	        [MILTER_SMIME_TEMPERROR] = "temperror", [MILTER_SMIME_PERMERROR] = "permerror",
	};

	return (guint)result < G_N_ELEMENTS(names) ? names[result] : "permerror";
}

/* ----- outcomes ----- */

/* The first bad outcome sticks: a later layer cannot turn a failure into a pass. */
static void
set_result(Walk *w, MilterSmimeResult result, const char *format, ...) G_GNUC_PRINTF(3, 4);

static void
set_result(Walk *w, MilterSmimeResult result, const char *format, ...)
{
	MilterSmimeReport *r = w->report;
	va_list ap;

	if (r->result == MILTER_SMIME_FAIL || r->result == MILTER_SMIME_PERMERROR ||
	    r->result == MILTER_SMIME_TEMPERROR)
		return;
	if (r->result == MILTER_SMIME_PASS && result == MILTER_SMIME_NEUTRAL)
		return;
	r->result = result;
	g_clear_pointer(&r->reason, g_free);
	if (format != NULL) {
		va_start(ap, format);
		r->reason = g_strdup_vprintf(format, ap);
		va_end(ap);
	}
}

/* The reason of the newest OpenSSL error, for a message; the queue is emptied. */
static char *
ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;
	char *text = g_strdup(reason ? reason : "unknown error");

	ERR_clear_error();
	return text;
}

/* ----- the signer ----- */

static char *
name_text(const X509_NAME *name)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	char *data;
	long len;

	X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	len = BIO_get_mem_data(bio, &data);
	return g_strndup(data, (gsize)len);
}

static void
record_signer(Walk *w, X509 *signer)
{
	MilterSmimeReport *r = w->report;
	STACK_OF(OPENSSL_STRING) *emails = X509_get1_email(signer);
	GPtrArray *list = g_ptr_array_new();
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(signer), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	for (int i = 0; i < sk_OPENSSL_STRING_num(emails); i++)
		g_ptr_array_add(list, g_ascii_strdown(sk_OPENSSL_STRING_value(emails, i), -1));
	g_ptr_array_add(list, NULL);
	X509_email_free(emails);
	r->signer_emails = (char **)g_ptr_array_free(list, FALSE);
	r->signer_serial = g_strdup(hex ? hex : "");
	r->signer_issuer = name_text(X509_get_issuer_name(signer));
	r->signer_subject = name_text(X509_get_subject_name(signer));
	X509_up_ref(signer);
	r->signer = signer;
	OPENSSL_free(hex);
	BN_free(bn);
}

/* Missing CRLs are not failures: only an issuer that publishes one is checked against it. */
static int
chain_callback(int ok, X509_STORE_CTX *ctx)
{
	if (!ok && X509_STORE_CTX_get_error(ctx) == X509_V_ERR_UNABLE_TO_GET_CRL)
		return 1;
	return ok;
}

/* The signer's chain to a trust anchor, as an S/MIME signer at this moment. */
static gboolean
signer_trusted(Walk *w, X509 *signer, STACK_OF(X509) * untrusted, char **why)
{
	g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new();
	int err;

	if (w->ctx->store == NULL) {
		*why = g_strdup("no trusted CA is configured");
		return FALSE;
	}
	if (ctx == NULL || !X509_STORE_CTX_init(ctx, w->ctx->store, signer, untrusted)) {
		*why = ossl_reason();
		return FALSE;
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_SIGN);
	X509_STORE_CTX_set_verify_cb(ctx, chain_callback);
	if (X509_verify_cert(ctx) == 1)
		return TRUE;
	err = X509_STORE_CTX_get_error(ctx);
	*why = g_strdup_printf("certificate not trusted: %s", X509_verify_cert_error_string(err));
	ERR_clear_error();
	return FALSE;
}

static gboolean
issued_by_hanko(Walk *w, X509 *signer)
{
	return w->ctx->hanko_ca != NULL && X509_check_issued(w->ctx->hanko_ca, signer) == X509_V_OK;
}

/* certd's word on a certificate hanko issued. */
static void
signer_status(Walk *w, X509 *signer)
{
	switch (w->ctx->check ? w->ctx->check(signer, w->ctx->check_data) : MILTER_SIGNER_GOOD) {
	case MILTER_SIGNER_GOOD:
		set_result(w, MILTER_SMIME_PASS, NULL);
		break;
	case MILTER_SIGNER_REVOKED:
		set_result(w, MILTER_SMIME_FAIL, "certificate revoked");
		break;
	case MILTER_SIGNER_UNKNOWN:
		set_result(w, MILTER_SMIME_FAIL, "certificate unknown to hanko-certd");
		break;
	case MILTER_SIGNER_UNAVAILABLE:
		set_result(w, MILTER_SMIME_TEMPERROR, "hanko-certd unavailable");
		break;
	}
}

/* MD5 never, SHA-1 only when allowed: a collision forges the content. */
static gboolean
digests_acceptable(Walk *w, CMS_ContentInfo *cms)
{
	STACK_OF(CMS_SignerInfo) *infos = CMS_get0_SignerInfos(cms);

	for (int i = 0; i < sk_CMS_SignerInfo_num(infos); i++) {
		X509_ALGOR *digest = NULL;
		int nid;

		CMS_SignerInfo_get0_algs(sk_CMS_SignerInfo_value(infos, i), NULL, NULL, &digest,
		                         NULL);
		nid = digest ? OBJ_obj2nid(digest->algorithm) : NID_undef;
		if (nid == NID_md5 || (nid == NID_sha1 && !w->ctx->allow_sha1)) {
			set_result(w, MILTER_SMIME_FAIL, "signed with %s (too weak%s)",
			           OBJ_nid2sn(nid), nid == NID_sha1 ? "; allow_sha1 = no" : "");
			return FALSE;
		}
	}
	return TRUE;
}

/* Why CMS_verify said no, in words for the sender. */
static void
verify_failed(Walk *w)
{
	unsigned long e = ERR_peek_last_error();
	int reason = ERR_GET_LIB(e) == ERR_LIB_CMS ? ERR_GET_REASON(e) : 0;
	g_autofree char *text = ossl_reason();

	switch (reason) {
	case CMS_R_VERIFICATION_FAILURE:
	case CMS_R_CONTENT_VERIFY_ERROR:
		set_result(w, MILTER_SMIME_FAIL, "the signature does not match the content");
		break;
	case CMS_R_SIGNER_CERTIFICATE_NOT_FOUND:
		set_result(w, MILTER_SMIME_FAIL, "the signer's certificate is not in the message");
		break;
	case CMS_R_NO_SIGNERS:
		set_result(w, MILTER_SMIME_PERMERROR, "the signature has no signer");
		break;
	default:
		set_result(w, MILTER_SMIME_FAIL, "invalid signature: %s", text);
	}
}

/*
 * CMS_verify() copies detached content held in a memory BIO into a BIO of its own, and
 * OpenSSL 3.0 leaks that copy when CMS_dataInit() then fails (a signature naming a digest
 * it cannot set up: found by fuzz-smime). A buffering filter on top is no memory BIO, so
 * the content is read where it is.
 */
static int
cms_verify(CMS_ContentInfo *cms, BIO *content, BIO *out, unsigned int flags)
{
	BIO *filter;
	int rc;

	if (content == NULL)
		return CMS_verify(cms, NULL, NULL, NULL, out, flags);
	filter = BIO_new(BIO_f_buffer());
	if (filter == NULL)
		return 0;
	BIO_push(filter, content);
	rc = CMS_verify(cms, NULL, NULL, filter, out, flags);
	BIO_pop(filter);
	BIO_free(filter);
	return rc;
}

/*
 * One signature: content (detached) or NULL (inside cms; out receives it). The signature
 * itself first, then the signer's chain and, for hanko's certificates, certd's status.
 */
static gboolean
verify(Walk *w, CMS_ContentInfo *cms, BIO *content, BIO *out)
{
	g_autoptr(HkX509Stack) certs = NULL;
	STACK_OF(X509) * signers;
	g_autofree char *why = NULL;
	gboolean first = !w->signed_seen;
	X509 *signer;

	w->signed_seen = TRUE;
	if (!digests_acceptable(w, cms))
		return FALSE;
	if (cms_verify(cms, content, out, CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1) {
		verify_failed(w);
		return FALSE;
	}
	signers = CMS_get0_signers(cms);
	signer = sk_X509_value(signers, 0);
	sk_X509_free(signers);
	if (signer == NULL) {
		set_result(w, MILTER_SMIME_PERMERROR, "the signature has no signer");
		return FALSE;
	}
	if (first)
		record_signer(w, signer);
	certs = CMS_get1_certs(cms);
	if (!signer_trusted(w, signer, certs, &why))
		set_result(w, MILTER_SMIME_FAIL, "%s", why);
	else if (issued_by_hanko(w, signer))
		signer_status(w, signer);
	else
		set_result(w, MILTER_SMIME_PASS, NULL);
	return TRUE;
}

/* ----- layers ----- */

/* Content with bare LF line ends gets CRLF, as it was signed; CRLF content is used as is. */
static GBytes *
canonical_crlf(MilterMimeSpan span)
{
	GByteArray *out;

	for (gsize i = 0; i < span.len; i++) {
		if (span.data[i] == '\n' && (i == 0 || span.data[i - 1] != '\r'))
			goto convert;
	}
	return g_bytes_new_static(span.data, span.len);
convert:
	out = g_byte_array_sized_new((guint)(span.len + span.len / 32));
	for (gsize i = 0; i < span.len; i++) {
		if (span.data[i] == '\n' && (i == 0 || span.data[i - 1] != '\r'))
			g_byte_array_append(out, (const guint8 *)"\r", 1);
		g_byte_array_append(out, (const guint8 *)&span.data[i], 1);
	}
	return g_byte_array_free_to_bytes(out);
}

/* Parses bytes that must outlive the walk as an entity and walks it. */
static void
walk_bytes(Walk *w, GBytes *bytes, guint depth, const char *what)
{
	g_autoptr(MilterMimeEntity) inner = NULL;
	g_autoptr(GError) error = NULL;
	gsize len;
	const char *data = g_bytes_get_data(bytes, &len);

	g_ptr_array_add(w->keep, g_bytes_ref(bytes));
	if (w->ctx->keep_inner) {
		/* a copy: bytes may point into the caller's mapping of the body */
		g_clear_pointer(&w->report->inner, g_bytes_unref);
		w->report->inner = g_bytes_new(data, len);
	}
	inner = milter_mime_entity_parse(data ? data : "", len, &error);
	if (inner == NULL) {
		set_result(w, MILTER_SMIME_PERMERROR, "the %s is not a MIME entity: %s", what,
		           error->message);
		return;
	}
	walk_entity(w, inner, depth + 1);
}

static GBytes *
bio_bytes(BIO *bio)
{
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);

	return g_bytes_new(data, len > 0 ? (gsize)len : 0);
}

static CMS_ContentInfo *
cms_from_entity(Walk *w, const MilterMimeEntity *entity, const char *what)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) der = milter_mime_entity_decode(entity, &error);
	g_autoptr(BIO) bio = NULL;
	CMS_ContentInfo *cms;

	if (der == NULL) {
		set_result(w, MILTER_SMIME_PERMERROR, "the %s cannot be decoded: %s", what,
		           error->message);
		return NULL;
	}
	bio = BIO_new_mem_buf(g_bytes_get_data(der, NULL), (int)g_bytes_get_size(der));
	cms = bio ? d2i_CMS_bio(bio, NULL) : NULL;
	if (cms == NULL) {
		g_autofree char *why = ossl_reason();

		set_result(w, MILTER_SMIME_PERMERROR, "the %s is not CMS data: %s", what, why);
	}
	return cms;
}

static gboolean
is_signature_type(const char *protocol)
{
	return protocol != NULL &&
	       (g_ascii_strcasecmp(protocol, "application/pkcs7-signature") == 0 ||
	        g_ascii_strcasecmp(protocol, "application/x-pkcs7-signature") == 0);
}

static void
walk_multipart_signed(Walk *w, const MilterMimeEntity *entity, const MilterMimeContentType *ct,
                      guint depth)
{
	const char *protocol = milter_mime_content_type_param(ct, "protocol");
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) parts = NULL;
	g_autoptr(MilterMimeEntity) sig = NULL;
	g_autoptr(CMS_ContentInfo) cms = NULL;
	g_autoptr(GBytes) content = NULL;
	g_autoptr(BIO) bio = NULL;
	MilterMimeSpan first;

	if (!is_signature_type(protocol)) {
		/* PGP/MIME and friends: signed, but not S/MIME; nothing to say */
		return;
	}
	w->report->layers++;
	parts = milter_mime_multipart_split(entity->body,
	                                    milter_mime_content_type_param(ct, "boundary"), &error);
	if (parts == NULL) {
		set_result(w, MILTER_SMIME_PERMERROR, "malformed multipart/signed: %s",
		           error->message);
		return;
	}
	if (parts->len != 2) {
		set_result(w, MILTER_SMIME_PERMERROR, "multipart/signed has %u parts instead of 2",
		           parts->len);
		return;
	}
	first = g_array_index(parts, MilterMimeSpan, 0);
	sig = milter_mime_entity_parse(g_array_index(parts, MilterMimeSpan, 1).data,
	                               g_array_index(parts, MilterMimeSpan, 1).len, &error);
	if (sig == NULL) {
		set_result(w, MILTER_SMIME_PERMERROR, "malformed signature part: %s",
		           error->message);
		return;
	}
	if ((cms = cms_from_entity(w, sig, "signature part")) == NULL)
		return;
	content = canonical_crlf(first);
	bio = BIO_new_mem_buf(g_bytes_get_data(content, NULL), (int)g_bytes_get_size(content));
	if (!verify(w, cms, bio, NULL))
		return;
	walk_bytes(w, content, depth, "signed content"); /* keeps content alive */
}

static void
walk_signed_data(Walk *w, CMS_ContentInfo *cms, guint depth)
{
	g_autoptr(BIO) out = BIO_new(BIO_s_mem());
	g_autoptr(GBytes) content = NULL;

	if (!verify(w, cms, NULL, out))
		return;
	content = bio_bytes(out);
	walk_bytes(w, content, depth, "signed content");
}

static void
decrypt_failed(Walk *w)
{
	unsigned long e = ERR_peek_last_error();
	int reason = ERR_GET_LIB(e) == ERR_LIB_CMS ? ERR_GET_REASON(e) : 0;
	g_autofree char *text = ossl_reason();
	MilterSmimeReport *r = w->report;

	switch (reason) {
	case CMS_R_NO_MATCHING_RECIPIENT:
		r->decrypt = MILTER_DECRYPT_WRONG_KEY;
		r->decrypt_reason = g_strdup("not encrypted to the gateway's certificate");
		break;
	case CMS_R_UNKNOWN_CIPHER:
	case CMS_R_UNSUPPORTED_CONTENT_ENCRYPTION_ALGORITHM:
	case CMS_R_UNSUPPORTED_KEY_ENCRYPTION_ALGORITHM:
	case CMS_R_UNSUPPORTED_RECIPIENTINFO_TYPE:
	case CMS_R_UNSUPPORTED_RECIPIENT_TYPE:
	case CMS_R_UNKNOWN_DIGEST_ALGORITHM:
		r->decrypt = MILTER_DECRYPT_UNSUPPORTED;
		r->decrypt_reason = g_strdup_printf("unsupported algorithm: %s", text);
		break;
	default:
		/* OpenSSL often leaves nothing in its queue for a bad padding or tag */
		r->decrypt = MILTER_DECRYPT_CORRUPT;
		r->decrypt_reason =
		        e != 0 ? g_strdup_printf("the encrypted data is damaged (%s)", text)
		               : g_strdup("the encrypted data is damaged");
	}
}

/* Whether a RecipientInfo names cert: OpenSSL's CMS_decrypt says nothing useful when none
 * does. Key transport (RSA) and key agreement (ECDH) recipients are looked at. */
static gboolean
addressed_to(CMS_ContentInfo *cms, X509 *cert)
{
	STACK_OF(CMS_RecipientInfo) *infos = CMS_get0_RecipientInfos(cms);

	for (int i = 0; i < sk_CMS_RecipientInfo_num(infos); i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(infos, i);
		STACK_OF(CMS_RecipientEncryptedKey) * reks;

		switch (CMS_RecipientInfo_type(ri)) {
		case CMS_RECIPINFO_TRANS:
			if (CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0)
				return TRUE;
			break;
		case CMS_RECIPINFO_AGREE:
			reks = CMS_RecipientInfo_kari_get0_reks(ri);
			for (int k = 0; k < sk_CMS_RecipientEncryptedKey_num(reks); k++) {
				if (CMS_RecipientEncryptedKey_cert_cmp(
				            sk_CMS_RecipientEncryptedKey_value(reks, k), cert) == 0)
					return TRUE;
			}
			break;
		default:
			break;
		}
	}
	return FALSE;
}

static void
walk_enveloped(Walk *w, CMS_ContentInfo *cms, guint depth)
{
	MilterSmimeReport *r = w->report;
	g_autoptr(BIO) out = NULL;
	g_autoptr(GBytes) plain = NULL;

	r->encrypted = TRUE;
	if (!w->ctx->decrypt || r->decrypt != MILTER_DECRYPT_NONE) {
		set_result(w, MILTER_SMIME_NEUTRAL, "encrypted");
		return;
	}
	if (w->ctx->key == NULL || w->ctx->cert == NULL) {
		r->decrypt = MILTER_DECRYPT_NO_IDENTITY;
		r->decrypt_reason = g_strdup("no certificate is assigned to the gateway");
		return;
	}
	if (!addressed_to(cms, w->ctx->cert)) {
		r->decrypt = MILTER_DECRYPT_WRONG_KEY;
		r->decrypt_reason = g_strdup("not encrypted to the gateway's certificate");
		return;
	}
	out = BIO_new(BIO_s_mem());
	if (CMS_decrypt(cms, w->ctx->key, w->ctx->cert, NULL, out, CMS_BINARY) != 1) {
		decrypt_failed(w);
		return;
	}
	plain = bio_bytes(out);
	r->decrypt = MILTER_DECRYPT_OK;
	r->plain = g_bytes_ref(plain);
	walk_bytes(w, plain, depth, "decrypted content");
}

static void
walk_pkcs7_mime(Walk *w, const MilterMimeEntity *entity, guint depth)
{
	g_autoptr(CMS_ContentInfo) cms = NULL;

	w->report->layers++;
	if ((cms = cms_from_entity(w, entity, "S/MIME body")) == NULL)
		return;
	switch (OBJ_obj2nid(CMS_get0_type(cms))) {
	case NID_pkcs7_signed:
		walk_signed_data(w, cms, depth);
		break;
	case NID_pkcs7_enveloped:
	case NID_id_smime_ct_authEnvelopedData:
		walk_enveloped(w, cms, depth);
		break;
	default:
		set_result(w, MILTER_SMIME_PERMERROR, "unsupported CMS content type %s",
		           OBJ_nid2sn(OBJ_obj2nid(CMS_get0_type(cms))));
	}
}

static gboolean
is_pkcs7_mime(const MilterMimeContentType *ct)
{
	const char *name = milter_mime_content_type_param(ct, "name");

	if (milter_mime_content_type_is(ct, "application", "pkcs7-mime") ||
	    milter_mime_content_type_is(ct, "application", "x-pkcs7-mime"))
		return TRUE;
	/* some agents label smime.p7m as octet-stream */
	return milter_mime_content_type_is(ct, "application", "octet-stream") && name != NULL &&
	       g_str_has_suffix(name, ".p7m");
}

static void
walk_entity(Walk *w, const MilterMimeEntity *entity, guint depth)
{
	g_autoptr(MilterMimeContentType) ct = NULL;

	if (depth > w->ctx->max_depth) {
		set_result(w, MILTER_SMIME_PERMERROR, "S/MIME nested deeper than %u layers",
		           w->ctx->max_depth);
		return;
	}
	ct = milter_mime_content_type_parse(milter_mime_entity_header(entity, "Content-Type"));
	if (milter_mime_content_type_is(ct, "multipart", "signed"))
		walk_multipart_signed(w, entity, ct, depth);
	else if (is_pkcs7_mime(ct))
		walk_pkcs7_mime(w, entity, depth);
}

gboolean
milter_smime_check(const MilterSmimeContext *ctx, const MilterMimeEntity *message,
                   MilterSmimeReport *report, GError **error)
{
	Walk w = {.ctx = ctx, .report = report};

	memset(report, 0, sizeof(*report));
	w.keep = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	ERR_clear_error();
	walk_entity(&w, message, 0);
	g_ptr_array_unref(w.keep);
	if (report->decrypt != MILTER_DECRYPT_OK)
		g_clear_pointer(&report->plain, g_bytes_unref);
	if (w.internal != NULL) {
		g_propagate_error(error, w.internal);
		return FALSE;
	}
	return TRUE;
}

void
milter_smime_report_clear(MilterSmimeReport *report)
{
	g_free(report->reason);
	g_strfreev(report->signer_emails);
	g_free(report->signer_serial);
	g_free(report->signer_issuer);
	g_free(report->signer_subject);
	g_free(report->decrypt_reason);
	g_clear_pointer(&report->plain, g_bytes_unref);
	g_clear_pointer(&report->inner, g_bytes_unref);
	g_clear_pointer(&report->signer, X509_free);
	memset(report, 0, sizeof(*report));
}

gboolean
milter_smime_signer_has(const MilterSmimeReport *report, const char *address)
{
	for (char **e = report->signer_emails; address != NULL && e && *e; e++) {
		if (g_ascii_strcasecmp(*e, address) == 0)
			return TRUE;
	}
	return FALSE;
}
