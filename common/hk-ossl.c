/*
 * hk-ossl: OpenSSL glue for GLib code.
 *
 * Turns OpenSSL's error queue into GErrors, writes SHA-256 fingerprints the way Postfix
 * writes ccert_fingerprint and ccert_pubkey_fingerprint, reads the fingerprints people
 * paste, and loads certificate files. Talks to nothing but OpenSSL and the file system.
 * Must never put key material in an error message or a log line, and must never leave
 * stale entries on the OpenSSL error queue for an unrelated caller to report.
 */
#include "hk-ossl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#define SHA256_LEN 32

/* A certificate file is a few kilobytes; this only stops us reading /dev/zero forever. */
#define CERT_FILE_MAX (16 * 1024 * 1024)

/* written out: clang-format would put spaces into G_DEFINE_QUARK's stringified name */
GQuark
hk_ossl_error_quark(void)
{
	return g_quark_from_static_string("hk-ossl-error-quark");
}

void
hk_ossl_x509_stack_free(HkX509Stack *stack)
{
	if (stack == NULL)
		return;
	sk_X509_pop_free(stack, X509_free);
}

void
hk_secret_free(char *secret)
{
	if (secret == NULL)
		return;
	/* OPENSSL_cleanse, unlike memset, is not optimised away before the free. */
	OPENSSL_cleanse(secret, strlen(secret));
	g_free(secret);
}

/* ---- the error queue ---- */

static char *
ossl_error_text(unsigned long code, const char *data, int flags)
{
	const char *reason = ERR_reason_error_string(code);
	char buf[256];

	if (reason == NULL) {
		/* Reasons from libraries OpenSSL has no strings for: "error:0A000086:..." */
		ERR_error_string_n(code, buf, sizeof buf);
		reason = buf;
	}
	if ((flags & ERR_TXT_STRING) && data != NULL && *data != '\0')
		return g_strdup_printf("%s (%s)", reason, data);
	return g_strdup(reason);
}

/* Empties the queue, oldest (usually the root cause) first; NULL if it was empty. */
static char *
ossl_take_errors(void)
{
	g_autoptr(GString) out = g_string_new(NULL);
	g_autofree char *previous = NULL;
	const char *data = NULL;
	int flags = 0;
	unsigned long code;

	while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		g_autofree char *text = ossl_error_text(code, data, flags);

		/* The ASN.1 decoder repeats "nested asn1 error" once per level; once is enough. */
		if (g_strcmp0(text, previous) == 0)
			continue;
		if (out->len > 0)
			g_string_append(out, "; ");
		g_string_append(out, text);
		g_free(previous);
		previous = g_steal_pointer(&text);
	}
	if (out->len == 0)
		return NULL;
	return g_string_free(g_steal_pointer(&out), FALSE);
}

gboolean
hk_ossl_set_error(GError **error, const char *format, ...)
{
	/* Drained even when the caller ignores the error, so it cannot surface later. */
	g_autofree char *reasons = ossl_take_errors();
	g_autofree char *what = NULL;
	va_list args;

	if (error == NULL)
		return FALSE;
	va_start(args, format);
	what = g_strdup_vprintf(format, args);
	va_end(args);
	if (reasons == NULL)
		g_set_error_literal(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED, what);
	else
		g_set_error(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED, "%s: %s", what, reasons);
	return FALSE;
}

/* ---- fingerprints ---- */

/* Postfix's format (tls_digest_encode): upper-case hex bytes separated by colons. */
static char *
colon_hex(const guint8 *bytes, gsize len)
{
	static const char digits[] = "0123456789ABCDEF";
	GString *out = g_string_sized_new(len * 3);

	for (gsize i = 0; i < len; i++) {
		if (i > 0)
			g_string_append_c(out, ':');
		g_string_append_c(out, digits[bytes[i] >> 4]);
		g_string_append_c(out, digits[bytes[i] & 0x0f]);
	}
	return g_string_free(out, FALSE);
}

static char *
sha256_colon_hex(const void *data, size_t len, GError **error)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;

	if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL)) {
		hk_ossl_set_error(error, "cannot compute a SHA-256 digest");
		return NULL;
	}
	return colon_hex(md, md_len);
}

char *
hk_ossl_fingerprint_der(const guint8 *der, gsize len)
{
	g_autoptr(GError) error = NULL;
	char *fingerprint;

	g_return_val_if_fail(der != NULL || len == 0, NULL);
	/* Only fails if OpenSSL has no SHA-256 at all (a broken provider configuration). */
	fingerprint = sha256_colon_hex(der, len, &error);
	if (fingerprint == NULL)
		g_warning("%s", error->message);
	return fingerprint;
}

/* The fingerprint of what an i2d_*() call encoded: len bytes at der (freed here), or
 * len <= 0 when it failed (what says what could not be encoded). */
static char *
fingerprint_encoded(unsigned char *der, int len, const char *what, GError **error)
{
	char *fingerprint;

	if (len <= 0) {
		hk_ossl_set_error(error, "%s", what);
		return NULL;
	}
	fingerprint = sha256_colon_hex(der, (size_t)len, error);
	OPENSSL_free(der);
	return fingerprint;
}

char *
hk_ossl_fingerprint_cert(X509 *cert, GError **error)
{
	unsigned char *der = NULL;
	int len;

	g_return_val_if_fail(cert != NULL, NULL);
	len = i2d_X509(cert, &der);
	return fingerprint_encoded(der, len, "cannot encode the certificate", error);
}

char *
hk_ossl_fingerprint_pubkey(X509 *cert, GError **error)
{
	unsigned char *der = NULL;
	int len;

	g_return_val_if_fail(cert != NULL, NULL);
	/* The SubjectPublicKeyInfo as the certificate carries it, which is what Postfix hashes. */
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	return fingerprint_encoded(der, len, "cannot encode the certificate's public key", error);
}

/* ---- reading pasted fingerprints ---- */

/* What hk_ossl_fingerprint_normalize has read so far. */
typedef struct {
	GString *digits;   /* the hex digits, upper case */
	gsize since_colon; /* digits since the last colon (or the start) */
	gsize since_blank; /* digits since the last colon or blank (or the start) */
	gsize last_colon;  /* 1-based position of the last colon, 0 for none */
} FpReader;

/* What people paste besides the digits: Postfix tables, openssl x509 -fingerprint output. */
static const char *const fp_prefixes[] = {
        "sha256 fingerprint=",
        "sha256:",
        "sha256=",
        "sha-256:",
};

static const char *
fp_skip_prefix(const char *p)
{
	while (g_ascii_isspace(*p))
		p++;
	for (gsize i = 0; i < G_N_ELEMENTS(fp_prefixes); i++) {
		gsize len = strlen(fp_prefixes[i]);

		if (g_ascii_strncasecmp(p, fp_prefixes[i], len) == 0)
			return p + len;
	}
	return p;
}

static gboolean
fp_misplaced_colon(gsize position, GError **error)
{
	g_set_error(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED,
	            "fingerprint has a misplaced ':' at position %" G_GSIZE_FORMAT
	            ": colons go between bytes, as in AB:CD:EF",
	            position);
	return FALSE;
}

static gboolean
fp_not_hex(char c, gsize position, GError **error)
{
	if (g_ascii_isprint(c))
		g_set_error(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED,
		            "fingerprint contains '%c', not a hex digit (position %" G_GSIZE_FORMAT
		            ")",
		            c, position);
	else
		g_set_error(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED,
		            "fingerprint contains byte 0x%02X, not a hex digit (position "
		            "%" G_GSIZE_FORMAT ")",
		            (guint)(guchar)c, position);
	return FALSE;
}

static gboolean
fp_read_char(FpReader *r, char c, gsize position, GError **error)
{
	if (g_ascii_isxdigit(c)) {
		g_string_append_c(r->digits, g_ascii_toupper(c));
		r->since_colon++;
		r->since_blank++;
		return TRUE;
	}
	if (c == ':') {
		/* Catches ":AB", "AB::CD", "AB:C:D" and "ABCD:EF" alike. */
		if (r->since_colon != 2)
			return fp_misplaced_colon(position, error);
		r->since_colon = r->since_blank = 0;
		r->last_colon = position;
		return TRUE;
	}
	if (g_ascii_isspace(c)) {
		if (r->since_blank % 2 != 0) {
			g_set_error(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED,
			            "fingerprint has a blank inside a byte at position "
			            "%" G_GSIZE_FORMAT,
			            position);
			return FALSE;
		}
		r->since_blank = 0;
		return TRUE;
	}
	return fp_not_hex(c, position, error);
}

/* A wrong length is usually a fingerprint made with another digest; say which. */
static const char *
fp_length_hint(gsize bytes)
{
	switch (bytes) {
	case 16:
		return " (16 bytes is an MD5 fingerprint)";
	case 20:
		return " (20 bytes is a SHA-1 fingerprint)";
	case 64:
		return " (64 bytes is a SHA-512 fingerprint)";
	default:
		return "";
	}
}

static gboolean
fp_check_length(const FpReader *r, GError **error)
{
	gsize n = r->digits->len;

	if (n == 0) {
		g_set_error_literal(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED,
		                    "fingerprint is empty");
		return FALSE;
	}
	if (n % 2 != 0) {
		g_set_error(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED,
		            "fingerprint has %" G_GSIZE_FORMAT
		            " hex digits, a SHA-256 fingerprint has %d",
		            n, SHA256_LEN * 2);
		return FALSE;
	}
	if (n / 2 != SHA256_LEN) {
		g_set_error(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED,
		            "fingerprint has %" G_GSIZE_FORMAT
		            " bytes, a SHA-256 fingerprint has %d%s",
		            n / 2, SHA256_LEN, fp_length_hint(n / 2));
		return FALSE;
	}
	return TRUE;
}

static gboolean
is_upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

gboolean
hk_ossl_fingerprint_is_canonical(const char *text)
{
	if (text == NULL)
		return FALSE;
	/* "AB:" 31 times, then "AB" and the end; each test stops at a NUL */
	for (guint i = 0; i < SHA256_LEN; i++, text += 3) {
		if (!is_upper_hex(text[0]) || !is_upper_hex(text[1]))
			return FALSE;
		if (text[2] != (i + 1 < SHA256_LEN ? ':' : '\0'))
			return FALSE;
	}
	return TRUE;
}

char *
hk_ossl_fingerprint_normalize(const char *text, GError **error)
{
	g_autoptr(GString) digits = NULL;
	FpReader r = {0};
	guint8 bytes[SHA256_LEN];
	const char *p;

	if (hk_ossl_fingerprint_is_canonical(text))
		return g_strdup(text); /* what Postfix sends: no need to take it apart */
	if (text == NULL)
		text = "";
	digits = g_string_new(NULL);
	r.digits = digits;
	for (p = fp_skip_prefix(text); *p != '\0'; p++) {
		if (!fp_read_char(&r, *p, (gsize)(p - text) + 1, error))
			return NULL;
	}
	/* A trailing colon, or a last field that is not one byte. */
	if (r.last_colon != 0 && r.since_colon != 2) {
		fp_misplaced_colon(r.last_colon, error);
		return NULL;
	}
	if (!fp_check_length(&r, error))
		return NULL;
	for (gsize i = 0; i < SHA256_LEN; i++)
		bytes[i] = (guint8)(g_ascii_xdigit_value(digits->str[2 * i]) << 4 |
		                    g_ascii_xdigit_value(digits->str[2 * i + 1]));
	return colon_hex(bytes, sizeof bytes);
}

/* ---- certificate files ---- */

static gboolean
set_read_error(GError **error, const char *path, int errsv)
{
	g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "cannot read %s: %s", path,
	            g_strerror(errsv));
	return FALSE;
}

/* Not g_file_get_contents: its message does not follow ours and it hides errno. */
static GBytes *
read_cert_file(const char *path, GError **error)
{
	g_autoptr(GByteArray) buf = g_byte_array_new();
	guint8 chunk[8192];
	FILE *f = fopen(path, "rb");
	size_t n;
	int errsv;

	if (f == NULL) {
		set_read_error(error, path, errno);
		return NULL;
	}
	while (buf->len <= CERT_FILE_MAX && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
		g_byte_array_append(buf, chunk, (guint)n);
	errsv = ferror(f) ? (errno != 0 ? errno : EIO) : 0;
	fclose(f);
	if (errsv == 0 && buf->len > CERT_FILE_MAX)
		errsv = EFBIG;
	if (errsv != 0) {
		set_read_error(error, path, errsv);
		return NULL;
	}
	return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
}

/* A certificate is never encrypted; never let OpenSSL prompt on a terminal for one. */
static int
refuse_password(char *buf G_GNUC_UNUSED, int size G_GNUC_UNUSED, int rwflag G_GNUC_UNUSED,
                void *userdata G_GNUC_UNUSED)
{
	return -1;
}

static X509 *
cert_from_pem(const guint8 *data, gsize len)
{
	g_autoptr(BIO) bio = BIO_new_mem_buf(data, (int)len);

	if (bio == NULL)
		return NULL;
	return PEM_read_bio_X509(bio, NULL, refuse_password, NULL);
}

static X509 *
cert_from_der(const guint8 *data, gsize len)
{
	const unsigned char *p = data;

	return d2i_X509(NULL, &p, (long)len);
}

/* PEM first, then DER; on failure the queue holds the reason worth reporting. */
static X509 *
cert_from_bytes(const guint8 *data, gsize len)
{
	gboolean looks_pem = g_strstr_len((const char *)data, (gssize)len, "-----BEGIN") != NULL;
	X509 *cert = cert_from_pem(data, len);

	if (cert != NULL)
		return cert;
	/* For a file meant as PEM, "bad base64 decode" says more than DER's "wrong tag". */
	if (!looks_pem)
		ERR_clear_error();
	ERR_set_mark();
	cert = cert_from_der(data, len);
	if (cert == NULL && looks_pem)
		ERR_pop_to_mark();
	else
		ERR_clear_last_mark();
	if (cert != NULL)
		ERR_clear_error();
	return cert;
}

X509 *
hk_ossl_load_cert_file(const char *path, GError **error)
{
	g_autoptr(GBytes) contents = NULL;
	X509 *cert;
	gsize len = 0;
	const guint8 *data;

	g_return_val_if_fail(path != NULL, NULL);
	contents = read_cert_file(path, error);
	if (contents == NULL)
		return NULL;
	data = g_bytes_get_data(contents, &len);
	/* g_bytes_get_data gives NULL for an empty file; OpenSSL wants a pointer. */
	cert = cert_from_bytes(data != NULL ? data : (const guint8 *)"", len);
	if (cert == NULL)
		hk_ossl_set_error(error, "%s: not a PEM or DER certificate", path);
	return cert;
}
