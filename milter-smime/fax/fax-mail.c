/*
 * fax-mail: the gateway's own mail (job results, registration confirmations, the gateway
 * certificate), written as canonical MIME (CRLF, 7-bit, lines of at most 76 characters),
 * S/MIME-signed and optionally encrypted with OpenSSL's CMS, then piped to sendmail(1).
 * See fax-mail.h.
 *
 * Talks to OpenSSL and to the sendmail command. Must never put a fax password or the
 * document in a notification, an error message or a log line, and must never let a
 * header value (a request's Subject, a display name) start a header field of its own.
 * Expects SIGPIPE to be ignored, as hk-daemon does: a sendmail that stops reading early
 * is then reported by its exit status.
 */
#include "fax-mail.h"
#include "hk-ossl.h"

#include <string.h>

#include <gio/gio.h>
#include <openssl/cms.h>
#include <openssl/rand.h>

/* Header folding and base64 lines (RFC 5322 says 78 at most, RFC 2045 76). */
#define FOLD_COLUMN 76
/* Quoted-printable: 75 characters, then the soft break's "=". */
#define QP_COLUMN 75
/* "=?UTF-8?B?" and "?=" around an encoded-word's payload. */
#define ENCODED_WORD_FRAME 12
/* An ASCII word longer than this cannot be folded under FOLD_COLUMN: the text is encoded. */
#define FOLDABLE_WORD_MAX 60
/* Attachment names are cut to this many bytes (whole characters). */
#define FILENAME_MAX_BYTES 100
/* How much of a request's Subject and of a backend's result text a report repeats. */
#define SUBJECT_EXCERPT_CHARS 80
#define RESULT_EXCERPT_CHARS  200
#define SENDMAIL_TIMEOUT_S    60
#define SENDMAIL_OUTPUT_CHARS 200

/* a local name: hk-ossl.h may one day define the cleanup for EVP_CIPHER itself */
typedef EVP_CIPHER FaxMailCipher;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FaxMailCipher, EVP_CIPHER_free)

/* ----- small pieces ----- */

/* Only unique, not secret: boundaries and Message-IDs. */
static char *
random_hex(gsize n_bytes)
{
	guint8 buf[32];
	GString *hex = g_string_sized_new(n_bytes * 2);

	g_assert(n_bytes <= sizeof buf);
	if (RAND_bytes(buf, (int)n_bytes) != 1) {
		for (gsize i = 0; i < n_bytes; i++)
			buf[i] = (guint8)g_random_int_range(0, 256);
	}
	for (gsize i = 0; i < n_bytes; i++)
		g_string_append_printf(hex, "%02x", buf[i]);
	return g_string_free(hex, FALSE);
}

/* "=_" never occurs in quoted-printable or base64, so no part can contain the boundary. */
static char *
make_boundary(void)
{
	g_autofree char *hex = random_hex(12);

	return g_strconcat("----=_hanko_", hex, NULL);
}

/* Valid UTF-8 on one line: control characters become spaces, runs of white space one
 * space, none at either end. What a header field or a report line may carry. */
static char *
one_line(const char *text)
{
	g_autofree char *valid = g_utf8_make_valid(text != NULL ? text : "", -1);
	GString *out = g_string_sized_new(strlen(valid));

	for (const char *p = valid; *p != '\0'; p++) {
		char c = (guchar)*p < 0x20 || *p == 0x7f ? ' ' : *p;

		if (c == ' ' && (out->len == 0 || out->str[out->len - 1] == ' '))
			continue;
		g_string_append_c(out, c);
	}
	if (out->len > 0 && out->str[out->len - 1] == ' ')
		g_string_truncate(out, out->len - 1);
	return g_string_free(out, FALSE);
}

/* one_line, then cut to max_chars characters with "..." to say so. */
static char *
excerpt(const char *text, glong max_chars)
{
	g_autofree char *line = one_line(text);
	g_autofree char *cut = NULL;

	if (g_utf8_strlen(line, -1) <= max_chars)
		return g_steal_pointer(&line);
	cut = g_utf8_substring(line, 0, max_chars);
	return g_strconcat(cut, "...", NULL);
}

static gboolean
is_printable_ascii(const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < 0x20 || *p > 0x7e)
			return FALSE;
	}
	return TRUE;
}

/* Whether a one_line text must be written as encoded-words: 8-bit, something a reader
 * would take for an encoded-word, or a word too long to fold. */
static gboolean
needs_encoding(const char *text)
{
	gsize word = 0;

	if (!is_printable_ascii(text) || strstr(text, "=?") != NULL)
		return TRUE;
	for (const char *p = text; *p != '\0'; p++) {
		word = *p == ' ' ? 0 : word + 1;
		if (word > FOLDABLE_WORD_MAX)
			return TRUE;
	}
	return FALSE;
}

/*
 * Checks an address for the header and for sendmail's command line: local@domain in
 * printable ASCII without white space or anything that ends an address early. Quoted
 * local parts and SMTPUTF8 addresses are not needed by the gateway and refused.
 */
static gboolean
check_address(const char *address, const char *what, GError **error)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;

	if (address == NULL || *address == '\0') {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "no %s address", what);
		return FALSE;
	}
	if (at == NULL || at == address || at[1] == '\0' || *address == '-' ||
	    strlen(address) > 254 || !is_printable_ascii(address) ||
	    strpbrk(address, " <>()[],;:\\\"") != NULL || strchr(address, '@') != at) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "invalid %s address \"%s\"", what, address);
		return FALSE;
	}
	return TRUE;
}

/* type/subtype of RFC 2045 tokens. */
static gboolean
valid_content_type(const char *type)
{
	const char *slash = strchr(type, '/');
	gsize len = strlen(type);

	if (slash == NULL || slash == type || slash == type + len - 1)
		return FALSE;
	for (const char *p = type; *p != '\0'; p++) {
		if (p != slash && (*p <= 0x20 || *p >= 0x7f || strchr("()<>@,;:\\\"/[]?=", *p)))
			return FALSE;
	}
	return TRUE;
}

/* ----- header fields ----- */

/* "=?UTF-8?B?...?=" of n bytes at p; returns its length. */
static gsize
append_b_word(GString *out, const char *p, gsize n)
{
	g_autofree char *b64 = g_base64_encode((const guchar *)p, n);

	g_string_append_printf(out, "=?UTF-8?B?%s?=", b64);
	return ENCODED_WORD_FRAME + strlen(b64);
}

/* "=?UTF-8?Q?...?=" of n bytes at p, as RFC 2047 5(3) allows in a phrase. */
static gsize
append_q_word(GString *out, const char *p, gsize n)
{
	gsize start = out->len;

	g_string_append(out, "=?UTF-8?Q?");
	for (gsize i = 0; i < n; i++) {
		if (g_ascii_isalnum(p[i]))
			g_string_append_c(out, p[i]);
		else if (p[i] == ' ')
			g_string_append_c(out, '_');
		else
			g_string_append_printf(out, "=%02X", (guchar)p[i]);
	}
	g_string_append(out, "?=");
	return out->len - start;
}

/*
 * Appends text (valid UTF-8) as RFC 2047 encoded-words, the first after the col
 * characters of out's last line, each further one on a folded line, so that no line
 * passes FOLD_COLUMN. Returns the last line's length.
 *
 * Each word holds whole characters, as RFC 2047 requires. GMime and others decode a run
 * of B words as one base64 stream and lose what follows a padded word, so a B word that
 * is not the last holds a multiple of three bytes; where no such cut exists (a misaligned
 * run of three-byte characters), one character goes as a Q word, which ends the run.
 */
static gsize
append_encoded_words(GString *out, gsize col, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		gsize max_bytes;
		gsize n = 0;
		gsize whole = 0;

		/* room for one four-byte character as a Q word */
		if (p != text || col + ENCODED_WORD_FRAME + 12 > FOLD_COLUMN) {
			g_string_append(out, "\r\n ");
			col = 1;
		}
		max_bytes = (FOLD_COLUMN - col - ENCODED_WORD_FRAME) / 4 * 3;
		while (p[n] != '\0' && (gsize)(g_utf8_next_char(p + n) - p) <= max_bytes) {
			n = (gsize)(g_utf8_next_char(p + n) - p);
			if (n % 3 == 0)
				whole = n;
		}
		if (p[n] == '\0') {
			col += append_b_word(out, p, n);
		} else if (whole > 0) {
			n = whole;
			col += append_b_word(out, p, n);
		} else {
			n = (gsize)(g_utf8_next_char(p) - p);
			col += append_q_word(out, p, n);
		}
		p += n;
	}
	return col;
}

/* Appends plain words, each after a space, folding before one that would not fit. */
static gsize
append_folded_words(GString *out, gsize col, const char *text)
{
	g_auto(GStrv) words = g_strsplit(text, " ", -1);

	for (guint i = 0; words[i] != NULL; i++) {
		gsize len = strlen(words[i]);

		if (i > 0 && col + 1 + len > FOLD_COLUMN) {
			g_string_append(out, "\r\n");
			col = 0;
		}
		g_string_append_c(out, ' ');
		g_string_append(out, words[i]);
		col += 1 + len;
	}
	return col;
}

/* An unstructured field (Subject), encoded when it is not plain ASCII. */
static void
append_unstructured(GString *out, const char *name, const char *value)
{
	g_autofree char *clean = one_line(value);
	gsize col = strlen(name) + 1;

	g_string_append_printf(out, "%s:", name);
	if (needs_encoding(clean)) {
		g_string_append_c(out, ' ');
		append_encoded_words(out, col + 1, clean);
	} else if (*clean != '\0') {
		append_folded_words(out, col, clean);
	}
	g_string_append(out, "\r\n");
}

static gboolean
is_atext_phrase(const char *text)
{
	for (const char *p = text; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != ' ' && strchr("!#$%&'*+-/=?^_`{|}~", *p) == NULL)
			return FALSE;
	}
	return TRUE;
}

/* From: "name" <address>, the name as atoms, a quoted-string or encoded-words. */
static void
append_from(GString *out, const char *name, const char *address)
{
	g_autofree char *clean = one_line(name);
	gsize col = strlen("From:");

	g_string_append(out, "From:");
	if (*clean == '\0') {
		g_string_append_printf(out, " %s\r\n", address);
		return;
	}
	if (needs_encoding(clean)) {
		g_string_append_c(out, ' ');
		col = append_encoded_words(out, col + 1, clean);
	} else if (is_atext_phrase(clean)) {
		col = append_folded_words(out, col, clean);
	} else {
		g_autoptr(GString) quoted = g_string_new("\"");

		for (const char *p = clean; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				g_string_append_c(quoted, '\\');
			g_string_append_c(quoted, *p);
		}
		g_string_append_c(quoted, '"');
		g_string_append_printf(out, " %s", quoted->str);
		col += 1 + quoted->len;
	}
	if (col + 3 + strlen(address) > FOLD_COLUMN)
		g_string_append(out, "\r\n");
	g_string_append_printf(out, " <%s>\r\n", address);
}

/* RFC 5322 date-time in local time; written out, strftime's names follow the locale. */
static void
append_date(GString *out)
{
	static const char *const days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	gint64 offset = g_date_time_get_utc_offset(now) / G_TIME_SPAN_MINUTE;
	gint64 abs_offset = offset < 0 ? -offset : offset;

	g_string_append_printf(
	        out, "Date: %s, %02d %s %04d %02d:%02d:%02d %c%02d%02d\r\n",
	        days[g_date_time_get_day_of_week(now) - 1], g_date_time_get_day_of_month(now),
	        months[g_date_time_get_month(now) - 1], g_date_time_get_year(now),
	        g_date_time_get_hour(now), g_date_time_get_minute(now), g_date_time_get_second(now),
	        offset < 0 ? '-' : '+', (int)(abs_offset / 60), (int)(abs_offset % 60));
}

static void
append_message_header(GString *out, const FaxMailer *mailer, const char *to, const char *subject)
{
	g_autofree char *id = random_hex(16);

	append_from(out, mailer->from_name, mailer->from);
	g_string_append_printf(out, "To: %s\r\n", to);
	append_unstructured(out, "Subject", subject);
	append_date(out);
	g_string_append_printf(out, "Message-ID: <%s@%s>\r\n", id, strrchr(mailer->from, '@') + 1);
	g_string_append(out, "MIME-Version: 1.0\r\n");
	g_string_append(out, "Auto-Submitted: auto-generated\r\n");
}

/* ----- bodies ----- */

static void
append_base64(GString *out, const guint8 *data, gsize len)
{
	g_autofree char *b64 = g_base64_encode(data, len);
	gsize total = strlen(b64);

	for (gsize i = 0; i < total; i += FOLD_COLUMN) {
		g_string_append_len(out, b64 + i, (gssize)MIN(FOLD_COLUMN, total - i));
		g_string_append(out, "\r\n");
	}
}

/* Whether byte i of a line (len bytes) may stand for itself at column col. */
static gboolean
qp_literal(const char *line, gsize i, gsize len, gsize col)
{
	guchar c = (guchar)line[i];

	if (c == ' ' || c == '\t')
		return i + 1 < len; /* trailing white space is lost in transit */
	if (c < 33 || c > 126 || c == '=')
		return FALSE;
	/* what mbox and SMTP would touch at the start of a line */
	if (col == 0 && c == '.')
		return FALSE;
	return !(col == 0 && c == 'F' && len - i >= 5 && memcmp(line + i, "From ", 5) == 0);
}

/* RFC 2045 quoted-printable of text's lines, each ended by CRLF. */
static void
append_quoted_printable(GString *out, const char *text)
{
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	guint n = g_strv_length(lines);

	/* a final line break does not start another line */
	if (n > 1 && lines[n - 1][0] == '\0')
		n--;
	for (guint l = 0; l < n; l++) {
		const char *line = lines[l];
		gsize len = strlen(line);
		gsize col = 0;

		if (len > 0 && line[len - 1] == '\r')
			len--;
		for (gsize i = 0; i < len; i++) {
			gboolean literal = qp_literal(line, i, len, col);

			if (col + (literal ? 1 : 3) > QP_COLUMN) {
				g_string_append(out, "=\r\n");
				col = 0;
				literal = qp_literal(line, i, len, col);
			}
			if (literal)
				g_string_append_c(out, line[i]);
			else
				g_string_append_printf(out, "=%02X", (guchar)line[i]);
			col += literal ? 1 : 3;
		}
		g_string_append(out, "\r\n");
	}
}

/* The longest prefix of text of at most max bytes that ends on a character boundary. */
static gsize
utf8_prefix(const char *text, gsize max)
{
	const char *end = text;

	while (*end != '\0' && (gsize)(g_utf8_next_char(end) - text) <= max)
		end = g_utf8_next_char(end);
	return (gsize)(end - text);
}

/*
 * A file name without directories or characters that break a parameter, at most
 * FILENAME_MAX_BYTES long (a long name keeps its extension); never empty.
 */
static char *
clean_filename(const char *filename)
{
	const char *base = filename != NULL ? filename : "";
	g_autofree char *line = NULL;
	g_autofree char *stem = NULL;
	const char *ext;
	gsize len;

	for (const char *p = base; *p != '\0'; p++) {
		if (*p == '/' || *p == '\\')
			base = p + 1;
	}
	line = one_line(base);
	g_strdelimit(line, "\"", '_');
	len = strlen(line);
	if (len == 0)
		return g_strdup("attachment");
	if (len <= FILENAME_MAX_BYTES)
		return g_steal_pointer(&line);
	ext = strrchr(line, '.');
	if (ext == NULL || strlen(ext) > 16)
		ext = "";
	stem = g_strndup(line, utf8_prefix(line, FILENAME_MAX_BYTES - strlen(ext)));
	return g_strconcat(stem, ext, NULL);
}

/*
 * "; param=..." on a folded line of its own: a quoted-string when it fits, else RFC 2231
 * (UTF-8, percent-encoded, in continuations that each fit).
 */
static void
append_param(GString *out, const char *param, const char *value)
{
	g_autoptr(GString) encoded = g_string_new("UTF-8''");
	gsize start = 0;
	guint section = 0;

	if (is_printable_ascii(value) && strlen(param) + strlen(value) + 4 <= FOLD_COLUMN) {
		g_string_append_printf(out, ";\r\n\t%s=\"%s\"", param, value);
		return;
	}
	for (const char *p = value; *p != '\0'; p++) {
		if (g_ascii_isalnum(*p) || strchr("!#$&+-.^_`|~", *p) != NULL)
			g_string_append_c(encoded, *p);
		else
			g_string_append_printf(encoded, "%%%02X", (guchar)*p);
	}
	while (start < encoded->len) {
		gsize room = FOLD_COLUMN - strlen(param) - 12;
		gsize n = MIN(room, encoded->len - start);

		/* never split a %XX */
		if (start + n < encoded->len && n >= 2 && encoded->str[start + n - 1] == '%')
			n -= 1;
		else if (start + n < encoded->len && n >= 2 && encoded->str[start + n - 2] == '%')
			n -= 2;
		if (n == encoded->len)
			g_string_append_printf(out, ";\r\n\t%s*=%s", param, encoded->str);
		else
			g_string_append_printf(out, ";\r\n\t%s*%u*=%.*s", param, section++, (int)n,
			                       encoded->str + start);
		start += n;
	}
}

static GString *
text_entity(const char *text)
{
	g_autofree char *valid = g_utf8_make_valid(text != NULL ? text : "", -1);
	GString *out = g_string_new("Content-Type: text/plain; charset=UTF-8\r\n"
	                            "Content-Transfer-Encoding: quoted-printable\r\n\r\n");

	append_quoted_printable(out, valid);
	return out;
}

static gboolean
append_attachment(GString *out, const FaxMailAttachment *attachment, GError **error)
{
	const char *type =
	        attachment->content_type ? attachment->content_type : "application/octet-stream";
	g_autofree char *name = clean_filename(attachment->filename);

	if (!valid_content_type(type)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "invalid content type \"%s\" for attachment %s", type, name);
		return FALSE;
	}
	g_string_append_printf(out, "Content-Type: %s", type);
	append_param(out, "name", name);
	g_string_append(out, "\r\nContent-Transfer-Encoding: base64\r\n"
	                     "Content-Disposition: attachment");
	append_param(out, "filename", name);
	g_string_append(out, "\r\n\r\n");
	append_base64(out, attachment->data, attachment->len);
	return TRUE;
}

/* The text alone, or multipart/mixed with the attachments after it. */
static GString *
body_entity(const char *text, const FaxMailAttachment *attachments, guint n_attachments,
            GError **error)
{
	g_autoptr(GString) out = NULL;
	g_autoptr(GString) first = text_entity(text);
	g_autofree char *boundary = NULL;

	if (n_attachments == 0)
		return g_steal_pointer(&first);
	boundary = make_boundary();
	out = g_string_new(NULL);
	g_string_append_printf(out,
	                       "Content-Type: multipart/mixed;\r\n\tboundary=\"%s\"\r\n\r\n"
	                       "This is a multi-part message in MIME format.\r\n--%s\r\n",
	                       boundary, boundary);
	g_string_append_len(out, first->str, (gssize)first->len);
	for (guint i = 0; i < n_attachments; i++) {
		g_string_append_printf(out, "\r\n--%s\r\n", boundary);
		if (!append_attachment(out, &attachments[i], error))
			return NULL;
	}
	g_string_append_printf(out, "\r\n--%s--\r\n", boundary);
	return g_steal_pointer(&out);
}

/* ----- S/MIME ----- */

static gboolean
append_cms(GString *out, CMS_ContentInfo *cms, GError **error)
{
	unsigned char *der = NULL;
	int len = i2d_CMS_ContentInfo(cms, &der);

	if (len <= 0)
		return hk_ossl_set_error(error, "cannot encode the CMS structure");
	append_base64(out, der, (gsize)len);
	OPENSSL_free(der);
	return TRUE;
}

static BIO *
entity_bio(const GString *entity, GError **error)
{
	BIO *bio;

	if (entity->len > G_MAXINT) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE, "message too large");
		return NULL;
	}
	bio = BIO_new_mem_buf(entity->str, (int)entity->len);
	if (bio == NULL)
		hk_ossl_set_error(error, "cannot allocate a BIO");
	return bio;
}

/* The chain without the signer and without repeats (OpenSSL 3.0 refuses a duplicate). */
static gboolean
add_chain(CMS_ContentInfo *cms, const FaxMailer *mailer, GError **error)
{
	for (int i = 0; i < sk_X509_num(mailer->chain); i++) {
		X509 *cert = sk_X509_value(mailer->chain, i);
		gboolean seen = X509_cmp(cert, mailer->cert) == 0;

		for (int j = 0; j < i && !seen; j++)
			seen = X509_cmp(cert, sk_X509_value(mailer->chain, j)) == 0;
		if (!seen && !CMS_add1_cert(cms, cert))
			return hk_ossl_set_error(error, "cannot add the certificate chain");
	}
	return TRUE;
}

/* multipart/signed over exactly entity's bytes (RFC 8551 3.5), SHA-256, chain included. */
static GString *
sign_entity(const FaxMailer *mailer, const GString *entity, GError **error)
{
	const unsigned int flags = CMS_DETACHED | CMS_BINARY;
	g_autoptr(CMS_ContentInfo) cms = NULL;
	g_autoptr(BIO) in = NULL;
	g_autoptr(GString) out = NULL;
	g_autofree char *boundary = make_boundary();

	if (mailer->cert == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "a signing key without its certificate");
		return NULL;
	}
	if ((in = entity_bio(entity, error)) == NULL)
		return NULL;
	cms = CMS_sign(NULL, NULL, NULL, NULL, flags | CMS_PARTIAL);
	if (cms == NULL ||
	    CMS_add1_signer(cms, mailer->cert, mailer->key, EVP_sha256(), flags) == NULL) {
		hk_ossl_set_error(error, "cannot sign the message");
		return NULL;
	}
	if (!add_chain(cms, mailer, error))
		return NULL;
	if (CMS_final(cms, in, NULL, flags) != 1) {
		hk_ossl_set_error(error, "cannot sign the message");
		return NULL;
	}
	out = g_string_new(NULL);
	g_string_append_printf(out,
	                       "Content-Type: multipart/signed;"
	                       " protocol=\"application/pkcs7-signature\";\r\n"
	                       "\tmicalg=sha-256; boundary=\"%s\"\r\n\r\n"
	                       "This is an S/MIME signed message.\r\n--%s\r\n",
	                       boundary, boundary);
	g_string_append_len(out, entity->str, (gssize)entity->len);
	g_string_append_printf(out,
	                       "\r\n--%s\r\n"
	                       "Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n"
	                       "Content-Transfer-Encoding: base64\r\n"
	                       "Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n",
	                       boundary);
	if (!append_cms(out, cms, error))
		return NULL;
	g_string_append_printf(out, "\r\n--%s--\r\n", boundary);
	return g_steal_pointer(&out);
}

/* AES (or another 128-bit block cipher) in CBC mode, or in GCM (AuthEnvelopedData). */
static EVP_CIPHER *
fetch_cipher(const char *name, GError **error)
{
	g_autoptr(FaxMailCipher) cipher = EVP_CIPHER_fetch(NULL, name, NULL);
	int mode;

	if (cipher == NULL) {
		hk_ossl_set_error(error, "unknown cipher %s", name);
		return NULL;
	}
	mode = EVP_CIPHER_get_mode(cipher);
	if (!(mode == EVP_CIPH_CBC_MODE && EVP_CIPHER_get_block_size(cipher) == 16) &&
	    mode != EVP_CIPH_GCM_MODE) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
		            "cipher %s is not usable for S/MIME (aes-256-cbc, aes-128-cbc or "
		            "aes-256-gcm are)",
		            name);
		return NULL;
	}
	return g_steal_pointer(&cipher);
}

/* The recipient, and the gateway so that it can read what it sent. */
static HkX509Stack *
recipients(const FaxMailer *mailer, X509 *encrypt_to)
{
	HkX509Stack *certs = sk_X509_new_null();

	if (certs == NULL)
		return NULL;
	if (!X509_up_ref(encrypt_to) || !sk_X509_push(certs, encrypt_to)) {
		hk_ossl_x509_stack_free(certs);
		return NULL;
	}
	if (mailer->cert != NULL && X509_cmp(mailer->cert, encrypt_to) != 0 &&
	    (!X509_up_ref(mailer->cert) || !sk_X509_push(certs, mailer->cert))) {
		hk_ossl_x509_stack_free(certs);
		return NULL;
	}
	return certs;
}

/* application/pkcs7-mime holding entity (its header and body) as (Auth)EnvelopedData. */
static GString *
encrypt_entity(const FaxMailer *mailer, const GString *entity, X509 *encrypt_to, GError **error)
{
	const char *name = mailer->cipher != NULL ? mailer->cipher : "aes-256-cbc";
	g_autoptr(FaxMailCipher) cipher = NULL;
	g_autoptr(HkX509Stack) certs = NULL;
	g_autoptr(CMS_ContentInfo) cms = NULL;
	g_autoptr(BIO) in = NULL;
	g_autoptr(GString) out = NULL;
	gboolean aead;

	if ((cipher = fetch_cipher(name, error)) == NULL ||
	    (in = entity_bio(entity, error)) == NULL)
		return NULL;
	if ((certs = recipients(mailer, encrypt_to)) == NULL) {
		hk_ossl_set_error(error, "cannot list the recipients");
		return NULL;
	}
	if ((cms = CMS_encrypt(certs, in, cipher, CMS_BINARY)) == NULL) {
		hk_ossl_set_error(error, "cannot encrypt the message with %s", name);
		return NULL;
	}
	aead = OBJ_obj2nid(CMS_get0_type(cms)) == NID_id_smime_ct_authEnvelopedData;
	out = g_string_new(NULL);
	g_string_append_printf(out,
	                       "Content-Type: application/pkcs7-mime; smime-type=%s;\r\n"
	                       "\tname=\"smime.p7m\"\r\n"
	                       "Content-Transfer-Encoding: base64\r\n"
	                       "Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n",
	                       aead ? "authEnveloped-data" : "enveloped-data");
	if (!append_cms(out, cms, error))
		return NULL;
	return g_steal_pointer(&out);
}

GBytes *
fax_mail_build(const FaxMailer *mailer, const char *to, const char *subject, const char *text,
               const FaxMailAttachment *attachments, guint n_attachments, X509 *encrypt_to,
               GError **error)
{
	g_autoptr(GString) entity = NULL;
	GString *message;

	if (!check_address(mailer->from, "sender", error) || !check_address(to, "recipient", error))
		return NULL;
	entity = body_entity(text, attachments, n_attachments, error);
	if (entity == NULL)
		return NULL;
	if (mailer->key != NULL) {
		GString *signed_entity = sign_entity(mailer, entity, error);

		if (signed_entity == NULL)
			return NULL;
		g_string_free(entity, TRUE);
		entity = signed_entity;
	}
	if (encrypt_to != NULL) {
		GString *encrypted = encrypt_entity(mailer, entity, encrypt_to, error);

		if (encrypted == NULL)
			return NULL;
		g_string_free(entity, TRUE);
		entity = encrypted;
	}
	message = g_string_sized_new(entity->len + 1024);
	append_message_header(message, mailer, to, subject);
	g_string_append_len(message, entity->str, (gssize)entity->len);
	return g_string_free_to_bytes(message);
}

/* ----- sendmail ----- */

/* One sendmail run: the message in, its output (stdout and stderr) out, its exit. */
typedef struct {
	GSubprocess *process;
	GCancellable *cancellable;
	GOutputStream *output; /* GMemoryOutputStream */
	GError *error;         /* the first that is not the child's doing */
	guint pending;
	gboolean timed_out;
} SendmailRun;

static void
run_note_error(SendmailRun *run, GError *error)
{
	/* a sendmail that stopped reading says why in its exit status */
	if (error == NULL || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE) ||
	    g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || run->error != NULL)
		return;
	run->error = g_error_copy(error);
}

static void
on_spliced(GObject *source, GAsyncResult *result, gpointer data)
{
	SendmailRun *run = data;
	g_autoptr(GError) error = NULL;

	g_output_stream_splice_finish(G_OUTPUT_STREAM(source), result, &error);
	run_note_error(run, error);
	run->pending--;
}

static void
on_waited(GObject *source, GAsyncResult *result, gpointer data)
{
	SendmailRun *run = data;
	g_autoptr(GError) error = NULL;

	g_subprocess_wait_finish(G_SUBPROCESS(source), result, &error);
	run_note_error(run, error);
	run->pending--;
}

static gboolean
on_timeout(gpointer data)
{
	SendmailRun *run = data;

	run->timed_out = TRUE;
	g_subprocess_force_exit(run->process);
	g_cancellable_cancel(run->cancellable);
	return G_SOURCE_REMOVE;
}

/* Feeds message in, collects the output and waits, in a context of its own so that the
 * caller's main loop (if any) is not run from here. */
static void
sendmail_run(SendmailRun *run, GBytes *message)
{
	g_autoptr(GMainContext) context = g_main_context_new();
	g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes(message);
	g_autoptr(GSource) timeout = g_timeout_source_new_seconds(SENDMAIL_TIMEOUT_S);
	const GOutputStreamSpliceFlags close_both =
	        G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET;

	g_main_context_push_thread_default(context);
	g_source_set_callback(timeout, on_timeout, run, NULL);
	g_source_attach(timeout, context);
	run->pending = 3;
	g_output_stream_splice_async(g_subprocess_get_stdin_pipe(run->process), in, close_both,
	                             G_PRIORITY_DEFAULT, run->cancellable, on_spliced, run);
	g_output_stream_splice_async(run->output, g_subprocess_get_stdout_pipe(run->process),
	                             close_both, G_PRIORITY_DEFAULT, run->cancellable, on_spliced,
	                             run);
	g_subprocess_wait_async(run->process, run->cancellable, on_waited, run);
	while (run->pending > 0)
		g_main_context_iteration(context, TRUE);
	g_source_destroy(timeout);
	g_main_context_pop_thread_default(context);
}

/* The first line of what the command printed, fit for an error message. */
static char *
output_first_line(GOutputStream *output)
{
	GMemoryOutputStream *memory = G_MEMORY_OUTPUT_STREAM(output);
	const char *data = g_memory_output_stream_get_data(memory);
	gsize len = g_memory_output_stream_get_data_size(memory);
	const char *newline = data != NULL ? memchr(data, '\n', len) : NULL;
	g_autofree char *line = NULL;

	if (newline != NULL)
		len = (gsize)(newline - data);
	/* an embedded NUL ends it early, which is fine for a message */
	line = g_strndup(data != NULL ? data : "", data != NULL ? len : 0);
	return excerpt(line, SENDMAIL_OUTPUT_CHARS);
}

static gboolean
sendmail_status(SendmailRun *run, GError **error)
{
	g_autofree char *line = output_first_line(run->output);
	g_autofree char *said = *line != '\0' ? g_strconcat(": ", line, NULL) : g_strdup("");

	if (run->timed_out) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
		            "sendmail did not finish within %d s%s", SENDMAIL_TIMEOUT_S, said);
		return FALSE;
	}
	if (run->error != NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot talk to sendmail: %s",
		            run->error->message);
		return FALSE;
	}
	if (g_subprocess_get_if_signaled(run->process)) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "sendmail killed by signal %d%s",
		            g_subprocess_get_term_sig(run->process), said);
		return FALSE;
	}
	if (g_subprocess_get_exit_status(run->process) != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
		            "sendmail exited with status %d%s",
		            g_subprocess_get_exit_status(run->process), said);
		return FALSE;
	}
	return TRUE;
}

gboolean
fax_mail_send(const FaxMailer *mailer, const char *to, const char *subject, const char *text,
              const FaxMailAttachment *attachments, guint n_attachments, X509 *encrypt_to,
              GError **error)
{
	g_autoptr(GBytes) message = NULL;
	g_autoptr(GPtrArray) argv = g_ptr_array_new();
	g_autoptr(GError) spawn_error = NULL;
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	g_autoptr(GOutputStream) output = g_memory_output_stream_new_resizable();
	g_autoptr(GSubprocess) process = NULL;
	SendmailRun run = {.cancellable = cancellable, .output = output};
	gboolean ok;

	if (mailer->sendmail == NULL || mailer->sendmail[0] == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "no sendmail command configured");
		return FALSE;
	}
	message = fax_mail_build(mailer, to, subject, text, attachments, n_attachments, encrypt_to,
	                         error);
	if (message == NULL)
		return FALSE;
	for (guint i = 0; mailer->sendmail[i] != NULL; i++)
		g_ptr_array_add(argv, (gpointer)mailer->sendmail[i]);
	g_ptr_array_add(argv, (gpointer) "-i");
	g_ptr_array_add(argv, (gpointer) "-f");
	g_ptr_array_add(argv, (gpointer)mailer->from);
	g_ptr_array_add(argv, (gpointer) "--");
	g_ptr_array_add(argv, (gpointer)to);
	g_ptr_array_add(argv, NULL);
	process = g_subprocess_newv((const char *const *)argv->pdata,
	                            G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
	                                    G_SUBPROCESS_FLAGS_STDERR_MERGE,
	                            &spawn_error);
	if (process == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot run sendmail: %s",
		            spawn_error->message);
		return FALSE;
	}
	run.process = process;
	sendmail_run(&run, message);
	ok = sendmail_status(&run, error);
	g_clear_error(&run.error);
	if (ok)
		g_debug("mail to %s handed to sendmail", to);
	return ok;
}

/* ----- the job result ----- */

static const char *
dest_status(FaxDestState state)
{
	switch (state) {
	case FAX_DEST_DONE:
		return "sent";
	case FAX_DEST_FAILED:
		return "failed";
	case FAX_DEST_CANCELED:
		return "canceled";
	case FAX_DEST_SENDING:
		return "sending";
	case FAX_DEST_QUEUED:
	default:
		return "queued";
	}
}

/* "2024-05-01 10:21:10 +0900" in local time, "-" for never. */
static char *
local_time(gint64 unix_seconds)
{
	g_autoptr(GDateTime) when =
	        unix_seconds > 0 ? g_date_time_new_from_unix_local(unix_seconds) : NULL;

	return when != NULL ? g_date_time_format(when, "%Y-%m-%d %H:%M:%S %z") : g_strdup("-");
}

static const char *
destinations_word(guint n)
{
	return n == 1 ? "destination" : "destinations";
}

typedef enum {
	OUTCOME_SENT,
	OUTCOME_FAILED,
	OUTCOME_CANCELED,
} JobOutcome;

static JobOutcome
job_outcome(const FaxJob *job, guint total, guint done, guint canceled)
{
	if (total > 0 && done == total)
		return OUTCOME_SENT;
	if (total > 0 && done == 0 && (job->canceled || canceled == total))
		return OUTCOME_CANCELED;
	return OUTCOME_FAILED;
}

static void
append_destinations(GString *out, const FaxJob *job)
{
	int width = 0;

	for (guint i = 0; i < job->destinations->len; i++) {
		const FaxDestination *d = g_ptr_array_index(job->destinations, i);

		width = MAX(width, (int)g_utf8_strlen(d->number ? d->number : "", -1));
	}
	g_string_append(out, "Destinations:\n");
	for (guint i = 0; i < job->destinations->len; i++) {
		const FaxDestination *d = g_ptr_array_index(job->destinations, i);
		g_autofree char *number = one_line(d->number);
		g_autofree char *finished = local_time(d->finished);
		g_autofree char *result = excerpt(d->result_text, RESULT_EXCERPT_CHARS);

		g_string_append_printf(out, "  %-*s  %-8s  %u/%u pages  %s", width, number,
		                       dest_status(d->state), d->pages_sent, job->pages, finished);
		if (*result != '\0')
			g_string_append_printf(out, "  %s", result);
		if (d->attempts > 1)
			g_string_append_printf(out, " (%u attempts)", d->attempts);
		g_string_append_c(out, '\n');
	}
}

static void
append_notes(GString *out, const char *notes)
{
	g_auto(GStrv) lines = g_strsplit(notes != NULL ? notes : "", "\n", -1);
	gboolean any = FALSE;

	for (guint i = 0; lines[i] != NULL; i++) {
		g_autofree char *line = one_line(lines[i]);

		if (*line == '\0')
			continue;
		if (!any)
			g_string_append(out, "\nNotes:\n");
		any = TRUE;
		g_string_append_printf(out, "  %s\n", line);
	}
}

void
fax_mail_job_result(const FaxJob *job, char **subject, char **text)
{
	guint total = job->destinations != NULL ? job->destinations->len : 0;
	guint done = 0, canceled = 0;
	g_autofree char *request = excerpt(job->subject, SUBJECT_EXCERPT_CHARS);
	g_autofree char *queued = local_time(job->created);
	GString *out = g_string_new(NULL);

	for (guint i = 0; i < total; i++) {
		const FaxDestination *d = g_ptr_array_index(job->destinations, i);

		done += d->state == FAX_DEST_DONE;
		canceled += d->state == FAX_DEST_CANCELED;
	}
	switch (job_outcome(job, total, done, canceled)) {
	case OUTCOME_SENT:
		*subject = g_strdup_printf("Fax sent: job %" G_GINT64_FORMAT " to %u %s", job->id,
		                           total, destinations_word(total));
		g_string_append_printf(out, "Fax job %" G_GINT64_FORMAT " was sent to %s%u %s.\n",
		                       job->id, total > 1 ? "all " : "", total,
		                       destinations_word(total));
		break;
	case OUTCOME_CANCELED:
		*subject = g_strdup_printf("Fax canceled: job %" G_GINT64_FORMAT, job->id);
		g_string_append_printf(out,
		                       "Fax job %" G_GINT64_FORMAT
		                       " was canceled; it was not sent to any destination.\n",
		                       job->id);
		break;
	case OUTCOME_FAILED:
	default:
		*subject =
		        g_strdup_printf("Fax failed: job %" G_GINT64_FORMAT ", %u of %u %s failed",
		                        job->id, total - done, total, destinations_word(total));
		g_string_append_printf(
		        out, "Fax job %" G_GINT64_FORMAT " could not be sent to %u of %u %s.\n",
		        job->id, total - done, total, destinations_word(total));
		break;
	}
	g_string_append_printf(out, "\n  Job:      %" G_GINT64_FORMAT "\n", job->id);
	g_string_append_printf(out, "  Request:  %s\n",
	                       *request != '\0' ? request : "(no subject)");
	g_string_append_printf(out, "  Queued:   %s\n", queued);
	g_string_append_printf(out, "  Pages:    %u\n\n", job->pages);
	if (total > 0)
		append_destinations(out, job);
	append_notes(out, job->notes);
	if (done < total)
		g_string_append_printf(
		        out,
		        "\nTo try the destinations that were not reached again, ask "
		        "your administrator to run:\n  hankoctl fax resend %" G_GINT64_FORMAT "\n",
		        job->id);
	g_string_append(out, "\n-- \nThis is an automatic message from the hanko fax gateway.\n");
	*text = g_string_free(out, FALSE);
}
