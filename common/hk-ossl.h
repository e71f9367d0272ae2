/*
 * hk-ossl: OpenSSL glue for GLib code.
 *
 * autoptr cleanups for the OpenSSL types hanko uses, one way of turning OpenSSL's
 * error queue into a GError, and certificate fingerprints written exactly as Postfix
 * writes ccert_fingerprint and ccert_pubkey_fingerprint with
 * smtpd_tls_fingerprint_digest = sha256: upper-case hex bytes separated by colons.
 * Never logs or returns key material.
 */
#pragma once

#include <glib.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

G_BEGIN_DECLS

#define HK_OSSL_ERROR (hk_ossl_error_quark())
GQuark hk_ossl_error_quark(void);

typedef enum {
	HK_OSSL_ERROR_FAILED,
} HkOsslError;

typedef STACK_OF(X509) HkX509Stack;

G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_REQ, X509_REQ_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_CRL, X509_CRL_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_NAME, X509_NAME_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_STORE, X509_STORE_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_STORE_CTX, X509_STORE_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_EXTENSION, X509_EXTENSION_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY_CTX, EVP_PKEY_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIO, BIO_free_all)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIGNUM, BN_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ASN1_INTEGER, ASN1_INTEGER_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ASN1_TIME, ASN1_TIME_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CMS_ContentInfo, CMS_ContentInfo_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PKCS12, PKCS12_free)
void hk_ossl_x509_stack_free(HkX509Stack *stack); /* frees the certificates too */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HkX509Stack, hk_ossl_x509_stack_free)

/*
 * Sets *error to "<what>: <reason>[; <reason>...]" from OpenSSL's error queue (the
 * queue is emptied) and returns FALSE, so callers can write
 *     if (!X509_sign(...)) return hk_ossl_set_error(error, "cannot sign certificate");
 * With an empty queue the message is <what> alone.
 */
gboolean hk_ossl_set_error(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* "AB:CD:..." SHA-256 of the DER certificate / of its DER SubjectPublicKeyInfo. */
char *hk_ossl_fingerprint_cert(X509 *cert, GError **error);
char *hk_ossl_fingerprint_pubkey(X509 *cert, GError **error);
/* Same format for any DER bytes (e.g. a CSR's public key). */
char *hk_ossl_fingerprint_der(const guint8 *der, gsize len);

/*
 * Accepts a SHA-256 fingerprint as people paste it (any case, with or without colons,
 * spaces or a "sha256:" prefix) and returns it in the canonical form above; NULL with
 * an error naming what is wrong otherwise.
 */
char *hk_ossl_fingerprint_normalize(const char *text, GError **error);
/* TRUE when text is already in the canonical form (95 characters, AB:CD:..., upper case). */
gboolean hk_ossl_fingerprint_is_canonical(const char *text);

/* PEM/DER loaders that say which file failed and why. */
X509 *hk_ossl_load_cert_file(const char *path, GError **error);

/* Zeroes and frees a string that held a secret (passwords, PEM keys). NULL-safe. */
void hk_secret_free(char *secret);
typedef char HkSecret;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HkSecret, hk_secret_free)

G_END_DECLS
