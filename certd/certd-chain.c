/*
 * certd-chain: the PEM and chain pieces of server certificates (certd-servercert.c):
 * reading certificates and private keys in the forms seed 002 meets (PKCS#1, PKCS#8, SEC1,
 * encrypted or not), writing keys back as PEM, ordering a leaf's chain up to its root, and
 * the date and purpose checks that turn into errors or warnings.
 *
 * Talks to: OpenSSL, and the files certd wrote itself (certd_store_read).
 * Must never: prompt for a passphrase, put a key or a passphrase into an error message or a
 * warning, or leave a copy of key material in a buffer it frees.
 */
#include "certd.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>

/* Copies what a memory BIO holds and wipes the BIO's copy (it may hold a key). */
char *
certd_bio_take(BIO *bio, gsize *len)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	char *copy = g_malloc((gsize)n + 1);

	memcpy(copy, data, (gsize)n);
	copy[n] = '\0';
	OPENSSL_cleanse(data, (size_t)n);
	if (len != NULL)
		*len = (gsize)n;
	return copy;
}

/* "C = JP, O = Example, CN = mail.example.jp", as openssl x509 -subject shows it, in UTF-8. */
char *
certd_name_text(const X509_NAME *name)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());

	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) < 0) {
		ERR_clear_error();
		return g_strdup("");
	}
	return certd_bio_take(bio, NULL);
}

/* The first CN of a name in UTF-8; NULL when there is none. */
char *
certd_name_cn(const X509_NAME *name)
{
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	char *copy;
	int len;

	if (i < 0)
		return NULL;
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (len < 0) {
		ERR_clear_error();
		return NULL;
	}
	copy = g_strndup((const char *)utf8, (gsize)len);
	OPENSSL_free(utf8);
	return copy;
}

static char *
time_text(const ASN1_TIME *time)
{
	return certd_time_iso(certd_asn1_time_to_unix(time));
}

/*
 * The key as PEM: PKCS#8, or with traditional PKCS#1 ("RSA PRIVATE KEY") / SEC1 ("EC
 * PRIVATE KEY"); encrypted with AES-256-CBC when a password is given. A secret.
 */
char *
certd_key_to_pem(EVP_PKEY *key, gboolean traditional, const char *password, gsize *len,
                 GError **error)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	const EVP_CIPHER *cipher = password ? EVP_aes_256_cbc() : NULL;
	unsigned char *pass = (unsigned char *)password;
	int pass_len = password ? (int)strlen(password) : 0;
	int ok;

	if (traditional)
		ok = PEM_write_bio_PrivateKey_traditional(bio, key, cipher, pass, pass_len, NULL,
		                                          NULL);
	else
		ok = PEM_write_bio_PrivateKey(bio, key, cipher, pass, pass_len, NULL, NULL);
	if (!ok) {
		hk_ossl_set_error(error, "cannot encode the private key");
		return NULL;
	}
	return certd_bio_take(bio, len);
}

static int
refuse_prompt(char *buf, int size, int rwflag, void *u)
{
	return -1; /* an encrypted key without a passphrase: never prompt */
}

/* Finds the first private key block of pem; *encrypted tells whether it needs a passphrase. */
static gboolean
key_block_find(const char *pem, gboolean *encrypted)
{
	g_autoptr(BIO) bio = BIO_new_mem_buf(pem, -1);
	char *label = NULL, *header = NULL;
	unsigned char *data = NULL;
	long len = 0;
	gboolean found = FALSE;

	while (!found && PEM_read_bio(bio, &label, &header, &data, &len)) {
		found = g_str_has_suffix(label, "PRIVATE KEY");
		*encrypted = g_strcmp0(label, PEM_STRING_PKCS8) == 0 ||
		             strstr(header, "ENCRYPTED") != NULL;
		OPENSSL_free(label);
		OPENSSL_free(header);
		OPENSSL_clear_free(data, (size_t)len);
	}
	ERR_clear_error();
	return found;
}

/* Reads a PEM private key in any of the forms seed 002 meets; never prompts. */
EVP_PKEY *
certd_key_from_pem(const char *pem, const char *passphrase, GError **error)
{
	g_autoptr(BIO) bio = BIO_new_mem_buf(pem, -1);
	gboolean encrypted = FALSE;
	EVP_PKEY *key;

	if (!key_block_find(pem, &encrypted)) {
		certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                "no private key found in key_pem (expected a PEM block such as "
		                "\"-----BEGIN PRIVATE KEY-----\")");
		return NULL;
	}
	if (encrypted && (passphrase == NULL || *passphrase == '\0')) {
		certd_set_error(
		        error, HK_IPC_ERROR_INVALID_ARGUMENT,
		        "wrong passphrase: key_pem is encrypted and no passphrase was given");
		return NULL;
	}
	if (passphrase != NULL)
		key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)passphrase);
	else
		key = PEM_read_bio_PrivateKey(bio, NULL, refuse_prompt, NULL);
	if (key == NULL && encrypted) {
		ERR_clear_error();
		certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT, "wrong passphrase");
	} else if (key == NULL) {
		certd_set_ossl_invalid(error, "key_pem cannot be read");
	}
	return key;
}

/* Reads a key certd wrote itself (unencrypted PKCS#8). */
EVP_PKEY *
certd_key_from_file(const char *path, GError **error)
{
	g_autoptr(HkSecret) pem = NULL;
	g_autoptr(BIO) bio = NULL;
	EVP_PKEY *key;

	if (!certd_store_read(path, &pem, NULL, error))
		return NULL;
	bio = BIO_new_mem_buf(pem, -1);
	key = PEM_read_bio_PrivateKey(bio, NULL, refuse_prompt, NULL);
	if (key == NULL)
		hk_ossl_set_error(error, "%s: not a private key", path);
	return key;
}

gboolean
certd_key_check_type(EVP_PKEY *key, GError **error)
{
	if (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) < 2048)
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                       "the key is RSA with %d bits; at least 2048 are required",
		                       EVP_PKEY_get_bits(key));
	if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "EC") ||
	    EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448"))
		return TRUE;
	return certd_set_error(
	        error, HK_IPC_ERROR_INVALID_ARGUMENT,
	        "unsupported key type %s: use RSA (2048 bits or more), EC or Ed25519",
	        EVP_PKEY_get0_type_name(key));
}

static gboolean
is_cert_label(const char *label)
{
	return g_strcmp0(label, PEM_STRING_X509) == 0 ||
	       g_strcmp0(label, PEM_STRING_X509_OLD) == 0 ||
	       g_strcmp0(label, PEM_STRING_X509_TRUSTED) == 0;
}

/* Reads PEM block n: TRUE with *cert set, TRUE with *cert NULL at the end of the input,
 * FALSE when the block is not a certificate. */
static gboolean
next_cert_block(BIO *bio, guint n, X509 **cert, GError **error)
{
	char *label = NULL, *header = NULL;
	unsigned char *data = NULL;
	const unsigned char *p;
	long len = 0;
	gboolean ok = TRUE;

	*cert = NULL;
	if (!PEM_read_bio(bio, &label, &header, &data, &len)) {
		if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE)
			return certd_set_ossl_invalid(error,
			                              "cert_pem: PEM block %u cannot be read", n);
		ERR_clear_error();
		return TRUE;
	}
	if (!is_cert_label(label)) {
		ok = certd_set_error(
		        error, HK_IPC_ERROR_INVALID_ARGUMENT,
		        "cert_pem: PEM block %u is not a certificate: it is a \"%s\" block", n,
		        label);
	} else {
		p = data;
		*cert = d2i_X509_AUX(NULL, &p, len);
		if (*cert == NULL)
			ok = certd_set_ossl_invalid(
			        error, "cert_pem: PEM block %u is not a certificate", n);
	}
	OPENSSL_free(label);
	OPENSSL_free(header);
	OPENSSL_clear_free(data, (size_t)len);
	return ok;
}

/* Every PEM block of pem, each of which must be a certificate; at least one. */
HkX509Stack *
certd_certs_from_pem(const char *pem, GError **error)
{
	g_autoptr(BIO) bio = BIO_new_mem_buf(pem, -1);
	g_autoptr(HkX509Stack) certs = sk_X509_new_null();
	X509 *cert = NULL;

	for (guint n = 1;; n++) {
		if (!next_cert_block(bio, n, &cert, error))
			return NULL;
		if (cert == NULL)
			break;
		sk_X509_push(certs, cert);
	}
	if (sk_X509_num(certs) == 0) {
		certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT,
		                "no certificate found in cert_pem");
		return NULL;
	}
	return g_steal_pointer(&certs);
}

char *
certd_certs_to_pem(X509 *leaf, HkX509Stack *chain)
{
	g_autoptr(GString) pem = g_string_new(NULL);

	for (int i = -1; i < sk_X509_num(chain); i++) {
		g_autofree char *one = certd_cert_to_pem(i < 0 ? leaf : sk_X509_value(chain, i));

		g_string_append(pem, one ? one : "");
	}
	return g_string_free(g_steal_pointer(&pem), FALSE);
}

/* Takes out of certs the first certificate for key. */
X509 *
certd_chain_take_leaf(HkX509Stack *certs, EVP_PKEY *key)
{
	for (int i = 0; i < sk_X509_num(certs); i++) {
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(certs, i)), key) == 1)
			return sk_X509_delete(certs, i);
	}
	ERR_clear_error();
	return NULL;
}

static gboolean
issued_by(X509 *subject, X509 *issuer)
{
	EVP_PKEY *key = X509_get0_pubkey(issuer);
	gboolean ok = X509_check_issued(issuer, subject) == X509_V_OK && key != NULL &&
	              X509_verify(subject, key) == 1;

	ERR_clear_error();
	return ok;
}

/* Takes out of certs the one that issued and signed cert. */
static X509 *
take_issuer(HkX509Stack *certs, X509 *cert)
{
	for (int i = 0; i < sk_X509_num(certs); i++) {
		if (issued_by(cert, sk_X509_value(certs, i)))
			return sk_X509_delete(certs, i);
	}
	return NULL;
}

static void warn(GPtrArray *warnings, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void
warn(GPtrArray *warnings, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	g_ptr_array_add(warnings, g_strdup_vprintf(format, args));
	va_end(args);
}

/* Links the leaf up to a self-signed root through the certificates given; what does not
 * fit is left out with a warning, and so is a chain that stops short of a root. */
HkX509Stack *
certd_chain_order(X509 *leaf, HkX509Stack *rest, GPtrArray *warnings)
{
	HkX509Stack *chain = sk_X509_new_null();
	X509 *cert = leaf;
	X509 *next;

	while (X509_self_signed(cert, 1) != 1) {
		ERR_clear_error();
		next = take_issuer(rest, cert);
		if (next == NULL) {
			g_autofree char *issuer = certd_name_text(X509_get_issuer_name(cert));

			warn(warnings, "missing intermediate: no certificate for issuer %s",
			     issuer);
			break;
		}
		sk_X509_push(chain, next);
		cert = next;
	}
	for (int i = 0; i < sk_X509_num(rest); i++) {
		g_autofree char *subject =
		        certd_name_text(X509_get_subject_name(sk_X509_value(rest, i)));

		warn(warnings, "certificate %s is not part of the chain; it was left out", subject);
	}
	return chain;
}

/* "expired on ..." or "is not valid before ..."; NULL when valid now. */
static char *
validity_problem(X509 *cert)
{
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
		g_autofree char *date = time_text(X509_get0_notAfter(cert));

		return g_strdup_printf("expired on %s", date);
	}
	if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
		g_autofree char *date = time_text(X509_get0_notBefore(cert));

		return g_strdup_printf("is not valid before %s", date);
	}
	return NULL;
}

gboolean
certd_chain_check_dates(X509 *leaf, HkX509Stack *chain, GPtrArray *warnings, GError **error)
{
	g_autofree char *problem = validity_problem(leaf);

	if (problem != NULL)
		return certd_set_error(error, HK_IPC_ERROR_INVALID_ARGUMENT, "the certificate %s",
		                       problem);
	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *cert = sk_X509_value(chain, i);
		g_autofree char *late = validity_problem(cert);
		g_autofree char *subject = NULL;

		if (late == NULL)
			continue;
		subject = certd_name_text(X509_get_subject_name(cert));
		warn(warnings, "intermediate %s %s", subject, late);
	}
	return TRUE;
}

void
certd_chain_check_purpose(X509 *leaf, GPtrArray *warnings)
{
	if (X509_check_purpose(leaf, X509_PURPOSE_SSL_SERVER, 0) != 1)
		warn(warnings, "the certificate's key usage does not allow a TLS server");
	ERR_clear_error();
}
