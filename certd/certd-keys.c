/*
 * certd-keys: the small crypto and validation pieces every certd part uses: key specs
 * and generation, random serials, input checks, generated passwords, validity, X.509v3
 * extensions, and conversions for replies.
 *
 * Talks to: OpenSSL.
 * Must never: log or return key material; accept input it cannot represent faithfully.
 */
#include "certd.h"

#include <gio/gio.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <string.h>

typedef struct {
	const char *spec;
	const char *algorithm;
	const char *curve; /* EC */
	guint bits;        /* RSA */
} CertdKeySpec;

static const CertdKeySpec key_specs[] = {
        {"rsa:2048", "RSA", NULL, 2048}, {"rsa:3072", "RSA", NULL, 3072},
        {"rsa:4096", "RSA", NULL, 4096}, {"ec:p256", "EC", "P-256", 0},
        {"ec:p384", "EC", "P-384", 0},   {NULL},
};

static const CertdKeySpec *
find_spec(const char *spec)
{
	for (const CertdKeySpec *k = key_specs; k->spec != NULL; k++) {
		if (g_strcmp0(k->spec, spec) == 0)
			return k;
	}
	return NULL;
}

gboolean
certd_key_spec_check(const char *spec, const char *const *allowed, GError **error)
{
	if (find_spec(spec) != NULL && (allowed == NULL || g_strv_contains(allowed, spec)))
		return TRUE;
	{
		g_autofree char *list =
		        allowed ? g_strjoinv(", ", (char **)allowed)
		                : g_strdup("rsa:2048, rsa:3072, rsa:4096, ec:p256, ec:p384");

		g_set_error(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT,
		            "unsupported key \"%s\": use one of %s", spec ? spec : "", list);
	}
	return FALSE;
}

EVP_PKEY *
certd_key_generate(const char *spec, GError **error)
{
	const CertdKeySpec *k = find_spec(spec);
	EVP_PKEY *key;

	if (k == NULL) {
		certd_key_spec_check(spec, NULL, error);
		return NULL;
	}
	if (k->bits > 0)
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)k->bits);
	else
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", k->curve);
	if (key == NULL)
		hk_ossl_set_error(error, "cannot generate a %s key", spec);
	return key;
}

char *
certd_key_describe(EVP_PKEY *key)
{
	char curve[64] = "";
	size_t len = 0;

	if (EVP_PKEY_is_a(key, "RSA"))
		return g_strdup_printf("rsa:%d", EVP_PKEY_get_bits(key));
	if (EVP_PKEY_is_a(key, "EC") &&
	    EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof(curve), &len)) {
		if (g_strcmp0(curve, "prime256v1") == 0 || g_strcmp0(curve, "P-256") == 0)
			return g_strdup("ec:p256");
		if (g_strcmp0(curve, "secp384r1") == 0 || g_strcmp0(curve, "P-384") == 0)
			return g_strdup("ec:p384");
		return g_strdup_printf("ec:%s", curve);
	}
	return g_strdup(EVP_PKEY_get0_type_name(key));
}

ASN1_INTEGER *
certd_serial_random(GError **error)
{
	guint8 bytes[16];
	g_autoptr(BIGNUM) bn = NULL;
	ASN1_INTEGER *serial;

	if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
		hk_ossl_set_error(error, "cannot get random bytes for a serial number");
		return NULL;
	}
	/* positive, and never a leading zero byte, so it keeps 16 octets and 127 bits */
	bytes[0] = (bytes[0] & 0x7f) | 0x40;
	bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
	serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	if (serial == NULL)
		hk_ossl_set_error(error, "cannot make a serial number");
	return serial;
}

char *
certd_serial_to_hex(const ASN1_INTEGER *serial)
{
	g_autoptr(BIGNUM) bn = ASN1_INTEGER_to_BN(serial, NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	char *copy = g_strdup(hex ? hex : "");

	OPENSSL_free(hex);
	return copy;
}

static gboolean
set_error_va(GError **error, HkIpcError code, const char *format, va_list args) G_GNUC_PRINTF(3, 0);

static gboolean
set_error_va(GError **error, HkIpcError code, const char *format, va_list args)
{
	g_autofree char *message = g_strdup_vprintf(format, args);

	g_set_error_literal(error, HK_IPC_ERROR, code, message);
	return FALSE;
}

gboolean
certd_set_error(GError **error, HkIpcError code, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	set_error_va(error, code, format, args);
	va_end(args);
	return FALSE;
}

gboolean
certd_set_invalid(GError **error, const char *format, ...)
{
	va_list args;

	va_start(args, format);
	set_error_va(error, HK_IPC_ERROR_INVALID_ARGUMENT, format, args);
	va_end(args);
	return FALSE;
}

gboolean
certd_set_ossl_invalid(GError **error, const char *format, ...)
{
	g_autoptr(GError) reason = NULL;
	g_autofree char *what = NULL;
	va_list args;

	va_start(args, format);
	what = g_strdup_vprintf(format, args);
	va_end(args);
	hk_ossl_set_error(&reason, "%s", what);
	g_set_error_literal(error, HK_IPC_ERROR, HK_IPC_ERROR_INVALID_ARGUMENT, reason->message);
	return FALSE;
}

gint64
certd_now_unix(void)
{
	return g_get_real_time() / G_USEC_PER_SEC;
}

static gboolean
local_part_ok(const char *local, gsize len)
{
	static const char specials[] = "!#$%&'*+/=?^_`{|}~.-";

	if (len == 0 || len > 64 || local[0] == '.' || local[len - 1] == '.')
		return FALSE;
	for (gsize i = 0; i < len; i++) {
		if (!g_ascii_isalnum(local[i]) && strchr(specials, local[i]) == NULL)
			return FALSE;
		if (local[i] == '.' && local[i + 1] == '.')
			return FALSE;
	}
	return TRUE;
}

gboolean
certd_dns_labels_ok(const char *name)
{
	g_auto(GStrv) labels = g_strsplit(name, ".", -1);

	for (guint i = 0; labels[i] != NULL; i++) {
		gsize n = strlen(labels[i]);

		if (n == 0 || n > 63 || labels[i][0] == '-' || labels[i][n - 1] == '-')
			return FALSE;
		for (gsize j = 0; j < n; j++) {
			if (!g_ascii_isalnum(labels[i][j]) && labels[i][j] != '-')
				return FALSE;
		}
	}
	return TRUE;
}

static gboolean
domain_ok(const char *domain)
{
	return strlen(domain) <= 253 && strchr(domain, '.') != NULL && certd_dns_labels_ok(domain);
}

gboolean
certd_check_email(const char *email, GError **error)
{
	const char *at = email ? strchr(email, '@') : NULL;

	if (email == NULL || *email == '\0')
		return certd_set_invalid(error, "an e-mail address is required");
	if (at == NULL || strchr(at + 1, '@') != NULL ||
	    !local_part_ok(email, (gsize)(at - email)) || !domain_ok(at + 1))
		return certd_set_invalid(error, "\"%s\" is not a valid e-mail address", email);
	return TRUE;
}

gboolean
certd_check_cn(const char *cn, GError **error)
{
	if (cn == NULL || *cn == '\0')
		return certd_set_invalid(error, "a common name (CN) is required");
	if (!g_utf8_validate(cn, -1, NULL))
		return certd_set_invalid(error, "the common name is not valid UTF-8");
	if (g_utf8_strlen(cn, -1) > 64)
		return certd_set_invalid(
		        error, "the common name has %ld characters, at most 64 are allowed",
		        (long)g_utf8_strlen(cn, -1));
	for (const char *p = cn; *p != '\0'; p = g_utf8_next_char(p)) {
		if (g_unichar_iscntrl(g_utf8_get_char(p)))
			return certd_set_invalid(error,
			                         "the common name contains a control character");
	}
	return TRUE;
}

/* No 0/O/o, 1/l/I/i: passwords are read off a screen and typed into a mail client. */
static const char password_alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789";

char *
certd_password_generate(guint n)
{
	const guint size = sizeof(password_alphabet) - 1;
	const guint limit = 256 - 256 % size; /* reject bytes that would bias the choice */
	char *password = g_malloc0(n + 1);
	guint have = 0;

	while (have < n) {
		guint8 byte;

		if (RAND_bytes(&byte, 1) != 1)
			g_error("the random number generator failed"); /* nothing safe to do */
		if (byte < limit)
			password[have++] = password_alphabet[byte % size];
	}
	return password;
}

gboolean
certd_cert_set_validity(X509 *cert, guint days, GError **error)
{
	if (X509_gmtime_adj(X509_getm_notBefore(cert), -5 * 60) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(cert), (int)days, 0, NULL) == NULL)
		return hk_ossl_set_error(error, "cannot set the validity");
	return TRUE;
}

gboolean
certd_cert_add_ext(X509 *cert, X509 *issuer, int nid, const char *value, GError **error)
{
	X509V3_CTX ctx;
	g_autoptr(X509_EXTENSION) ext = NULL;

	X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL || !X509_add_ext(cert, ext, -1))
		return hk_ossl_set_error(error, "cannot add %s = %s", OBJ_nid2sn(nid), value);
	return TRUE;
}

char *
certd_time_iso(gint64 unix_seconds)
{
	g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(unix_seconds);

	return t ? g_date_time_format(t, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("");
}

gint64
certd_asn1_time_to_unix(const ASN1_TIME *time)
{
	struct tm tm;

	if (time == NULL || !ASN1_TIME_to_tm(time, &tm))
		return 0;
	return (gint64)timegm(&tm);
}

char *
certd_cert_to_pem(X509 *cert)
{
	g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;

	if (!PEM_write_bio_X509(bio, cert))
		return NULL;
	len = BIO_get_mem_data(bio, &data);
	return g_strndup(data, (gsize)len);
}

json_object *
certd_json_base64(const void *data, gsize len)
{
	g_autofree char *text = g_base64_encode(data, len);

	return json_object_new_string(text);
}

void
certd_json_add_string(json_object *obj, const char *key, const char *value)
{
	json_object_object_add(obj, key, value ? json_object_new_string(value) : NULL);
}

void
certd_json_add_time(json_object *obj, const char *key, gint64 unix_seconds)
{
	g_autofree char *text = certd_time_iso(unix_seconds);

	json_object_object_add(obj, key, json_object_new_string(text));
}

json_object *
certd_json_object_with(const char *key, const char *value)
{
	json_object *obj = json_object_new_object();

	certd_json_add_string(obj, key, value);
	return obj;
}
