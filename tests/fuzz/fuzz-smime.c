/*
 * fuzz-smime: libFuzzer target for hanko-milter's S/MIME engine (milter-smime.c) on top of
 * the MIME reader: the input is a whole message; the engine walks its layers, decodes
 * base64, parses CMS (signed-data, enveloped-data, authEnveloped-data) with OpenSSL,
 * verifies and tries to decrypt with a throwaway RSA gateway key made once.
 *
 * Traps when a report is inconsistent: decrypted data without a successful decryption,
 * a pass without a signer, or a reason missing from a failure.
 */
#include "hk-ossl.h"
#include "milter-smime.h"

#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *key;
static X509 *cert;

static void
check(gboolean ok)
{
	if (!ok)
		__builtin_trap();
}

/* A self-signed gateway certificate, so that the decryption path is reachable. */
static void
make_identity(void)
{
	X509_NAME *name;

	key = EVP_RSA_gen(2048);
	cert = X509_new();
	check(key != NULL && cert != NULL);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
	X509_set_pubkey(cert, key);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"gw", -1, -1,
	                           0);
	X509_set_issuer_name(cert, name);
	check(X509_sign(cert, key, EVP_sha256()) > 0);
}

static MilterSignerStatus
signer_good(X509 *signer, gpointer data)
{
	return MILTER_SIGNER_GOOD;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(MilterMimeEntity) entity = NULL;
	g_autoptr(X509_STORE) store = X509_STORE_new();
	MilterSmimeContext ctx = {
	        .store = store,
	        .check = signer_good,
	        .decrypt = TRUE,
	        .max_depth = 8,
	};
	g_auto(MilterSmimeReport) report = {0};

	if (key == NULL)
		make_identity();
	ctx.key = key;
	ctx.cert = cert;
	entity = milter_mime_entity_parse((const char *)data, size, NULL);
	if (entity == NULL)
		return 0;
	check(milter_smime_check(&ctx, entity, &report, NULL));
	check((report.plain != NULL) == (report.decrypt == MILTER_DECRYPT_OK));
	check(report.result != MILTER_SMIME_PASS || report.signer_serial != NULL);
	check(report.result == MILTER_SMIME_PASS || report.result == MILTER_SMIME_NONE ||
	      report.reason != NULL);
	check(report.decrypt == MILTER_DECRYPT_NONE || report.decrypt == MILTER_DECRYPT_OK ||
	      report.decrypt_reason != NULL);
	return 0;
}
