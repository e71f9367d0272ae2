/*
 * test-fax-mail: unit tests for milter-smime/fax/fax-mail.
 *
 * Makes a CA, the gateway's RSA certificate and two users' (RSA, and EC P-256 for an ECDH
 * recipient) with the openssl command in a temporary directory, then has the same command
 * verify and decrypt what fax_mail_build writes, and GMime read its header fields and parts
 * back. fax_mail_send runs small shell scripts in place of sendmail. Needs openssl and sh
 * on PATH; leaves nothing behind.
 */
#include "fax-mail.h"
#include "fax-plugin.h"
#include "hk-ossl.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include <glib/gstdio.h>
#include <gmime/gmime.h>
#include <openssl/pem.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeObject, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeMessage, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeStream, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GMimeParser, g_object_unref)

#define GATEWAY  "fax@example.org"
#define ALICE    "alice@example.org"
#define JOB_TIME 1714558800 /* 2024-05-01 10:20:00 UTC */

typedef struct {
	char *pem; /* paths in tmpdir */
	char *key;
	X509 *cert;
	EVP_PKEY *pkey;
} Identity;

static char *tmpdir;
static Identity ca, gateway, alice, bob_ec;
static STACK_OF(X509) * chain; /* the CA */

static const char *const no_sendmail[] = {"/bin/false", NULL};

/* ----- helpers ----- */

static char *
tmp_path(const char *name)
{
	return g_build_filename(tmpdir, name, NULL);
}

/* Runs argv in tmpdir; returns the exit status, and the output when asked. */
static int
run(const char *const *argv, char **out)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *err = NULL;
	int status = 0;

	g_spawn_sync(tmpdir, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, out, &err,
	             &status, &error);
	g_assert_no_error(error);
	if (!g_spawn_check_wait_status(status, NULL)) {
		g_test_message("%s %s: %s", argv[0], argv[1], err);
		return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	}
	return 0;
}

static void
run_ok(const char *const *argv)
{
	g_assert_cmpint(run(argv, NULL), ==, 0);
}

static void
write_file(const char *name, const void *data, gsize len)
{
	g_autofree char *path = tmp_path(name);
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, data, (gssize)len, &error);
	g_assert_no_error(error);
}

static GBytes *
read_file(const char *name)
{
	g_autofree char *path = tmp_path(name);
	g_autoptr(GError) error = NULL;
	char *data = NULL;
	gsize len = 0;

	g_file_get_contents(path, &data, &len, &error);
	g_assert_no_error(error);
	return g_bytes_new_take(data, len);
}

static void
write_bytes(const char *name, GBytes *bytes)
{
	write_file(name, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
}

static const char *
text_of(GBytes *bytes)
{
	/* every GBytes here is built from a NUL-terminated GString or file */
	return g_bytes_get_data(bytes, NULL);
}

/* ----- the test PKI ----- */

static void
load_identity(Identity *id, const char *name)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(BIO) bio = NULL;
	g_autofree char *pem = g_strconcat(name, ".pem", NULL);
	g_autofree char *key = g_strconcat(name, ".key", NULL);

	id->pem = tmp_path(pem);
	id->key = tmp_path(key);
	id->cert = hk_ossl_load_cert_file(id->pem, &error);
	g_assert_no_error(error);
	bio = BIO_new_file(id->key, "r");
	g_assert_nonnull(bio);
	id->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	g_assert_nonnull(id->pkey);
}

static void
free_identity(Identity *id)
{
	g_free(id->pem);
	g_free(id->key);
	X509_free(id->cert);
	EVP_PKEY_free(id->pkey);
}

/* An end-entity certificate for email, signed by the CA. */
static void
make_user(const char *name, const char *email, gboolean ec, const char *serial)
{
	g_autofree char *key = g_strconcat(name, ".key", NULL);
	g_autofree char *csr = g_strconcat(name, ".csr", NULL);
	g_autofree char *pem = g_strconcat(name, ".pem", NULL);
	g_autofree char *extfile = g_strconcat(name, ".ext", NULL);
	g_autofree char *subj = g_strdup_printf("/CN=%s/emailAddress=%s", name, email);
	g_autofree char *ext = g_strdup_printf("basicConstraints=CA:FALSE\n"
	                                       "keyUsage=critical,digitalSignature,%s\n"
	                                       "extendedKeyUsage=emailProtection\n"
	                                       "subjectAltName=email:%s\n",
	                                       ec ? "keyAgreement" : "keyEncipherment", email);
	const char *type = ec ? "ec" : "rsa";
	const char *opt = ec ? "ec_paramgen_curve:P-256" : "rsa_keygen_bits:2048";
	const char *req[] = {"openssl",  "req", "-new",   "-newkey", type,
	                     "-pkeyopt", opt,   "-nodes", "-keyout", key,
	                     "-subj",    subj,  "-out",   csr,       NULL};
	const char *sign[] = {"openssl", "x509",     "-req",   "-in",   csr, "-CA",
	                      "ca.pem",  "-CAkey",   "ca.key", "-days", "2", "-set_serial",
	                      serial,    "-extfile", extfile,  "-out",  pem, NULL};

	write_file(extfile, ext, strlen(ext));
	run_ok(req);
	run_ok(sign);
}

static void
make_pki(void)
{
	const char *req[] = {"openssl",
	                     "req",
	                     "-x509",
	                     "-newkey",
	                     "rsa",
	                     "-pkeyopt",
	                     "rsa_keygen_bits:2048",
	                     "-nodes",
	                     "-keyout",
	                     "ca.key",
	                     "-out",
	                     "ca.pem",
	                     "-subj",
	                     "/CN=hanko test CA",
	                     "-days",
	                     "2",
	                     "-addext",
	                     "basicConstraints=critical,CA:TRUE",
	                     "-addext",
	                     "keyUsage=critical,keyCertSign,cRLSign",
	                     NULL};

	run_ok(req);
	make_user("gateway", GATEWAY, FALSE, "1001");
	make_user("alice", ALICE, FALSE, "1002");
	make_user("bob", "bob@example.org", TRUE, "1003");
	load_identity(&ca, "ca");
	load_identity(&gateway, "gateway");
	load_identity(&alice, "alice");
	load_identity(&bob_ec, "bob");
	chain = sk_X509_new_null();
	X509_up_ref(ca.cert);
	sk_X509_push(chain, ca.cert);
}

static FaxMailer
signing_mailer(void)
{
	FaxMailer mailer = {
	        .from = GATEWAY,
	        .from_name = "hanko fax",
	        .key = gateway.pkey,
	        .cert = gateway.cert,
	        .chain = chain,
	        .sendmail = no_sendmail,
	};

	return mailer;
}

static FaxMailer
plain_mailer(void)
{
	FaxMailer mailer = {.from = GATEWAY, .from_name = "", .sendmail = no_sendmail};

	return mailer;
}

static GBytes *
build_ok(const FaxMailer *mailer, const char *subject, const char *text,
         const FaxMailAttachment *attachments, guint n, X509 *encrypt_to)
{
	g_autoptr(GError) error = NULL;
	GBytes *mail =
	        fax_mail_build(mailer, ALICE, subject, text, attachments, n, encrypt_to, &error);

	g_assert_no_error(error);
	g_assert_nonnull(mail);
	return mail;
}

/* ----- what a mail must look like ----- */

/* CRLF only, 7-bit, no line longer than 76 characters. */
static void
assert_canonical(GBytes *mail)
{
	gsize len;
	const guint8 *p = g_bytes_get_data(mail, &len);
	gsize col = 0;

	g_assert_cmpuint(len, >, 2);
	g_assert_cmpint(p[len - 2], ==, '\r');
	g_assert_cmpint(p[len - 1], ==, '\n');
	for (gsize i = 0; i < len; i++) {
		g_assert_cmpuint(p[i], <, 0x80);
		g_assert_cmpuint(p[i], !=, 0);
		if (p[i] == '\r') {
			g_assert_true(i + 1 < len && p[i + 1] == '\n');
		} else if (p[i] == '\n') {
			g_assert_true(i > 0 && p[i - 1] == '\r');
			col = 0;
			continue;
		}
		if (p[i] != '\r' && ++col > 76)
			g_error("line longer than 76 characters at byte %" G_GSIZE_FORMAT, i);
	}
}

/* The header block (up to the empty line), unfolded, one field a line. */
static char *
unfolded_header(GBytes *mail)
{
	const char *text = text_of(mail);
	const char *end = strstr(text, "\r\n\r\n");
	g_autofree char *header = NULL;
	g_autoptr(GString) out = g_string_new(NULL);

	g_assert_nonnull(end);
	header = g_strndup(text, (gsize)(end - text));
	for (const char *p = header; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\t'))
			p += 1; /* the white space stays */
		else if (p[0] == '\r' && p[1] == '\n')
			g_string_append_c(out, '\n'), p++;
		else
			g_string_append_c(out, *p);
	}
	g_string_append_c(out, '\n');
	return g_string_free(g_steal_pointer(&out), FALSE);
}

/* The unfolded value of the header field name (case as written), or NULL. */
static char *
header_value(GBytes *mail, const char *name)
{
	g_autofree char *header = unfolded_header(mail);
	g_autofree char *prefix = g_strconcat(name, ":", NULL);
	g_auto(GStrv) lines = g_strsplit(header, "\n", -1);

	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_str_has_prefix(lines[i], prefix))
			return g_strstrip(g_strdup(lines[i] + strlen(prefix)));
	}
	return NULL;
}

static GMimeObject *
parse_entity(const char *data, gsize len)
{
	g_autoptr(GMimeStream) stream = g_mime_stream_mem_new_with_buffer(data, len);
	g_autoptr(GMimeParser) parser = g_mime_parser_new_with_stream(stream);
	GMimeObject *object = g_mime_parser_construct_part(parser, NULL);

	g_assert_nonnull(object);
	return object;
}

static GMimeMessage *
parse_message(GBytes *mail)
{
	g_autoptr(GMimeStream) stream =
	        g_mime_stream_mem_new_with_buffer(text_of(mail), g_bytes_get_size(mail));
	g_autoptr(GMimeParser) parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *message = g_mime_parser_construct_message(parser, NULL);

	g_assert_nonnull(message);
	return message;
}

/* A text part's text with the CRLFs made LF. */
static char *
part_text(GMimeObject *object)
{
	g_autofree char *text = NULL;
	GString *out;

	g_assert_true(GMIME_IS_TEXT_PART(object));
	text = g_mime_text_part_get_text(GMIME_TEXT_PART(object));
	out = g_string_new(text);
	g_string_replace(out, "\r\n", "\n", 0);
	return g_string_free(out, FALSE);
}

static GBytes *
part_content(GMimeObject *object)
{
	g_autoptr(GMimeStream) out = g_mime_stream_mem_new();
	GByteArray *array;

	g_assert_true(GMIME_IS_PART(object));
	g_mime_data_wrapper_write_to_stream(g_mime_part_get_content(GMIME_PART(object)), out);
	array = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
	return g_bytes_new(array->data, array->len);
}

static char *
mime_type(GMimeObject *object)
{
	return g_mime_content_type_get_mime_type(g_mime_object_get_content_type(object));
}

/* `openssl cms -verify` against the test CA: the exit status; the content to out_name. */
static int
openssl_verify(const char *in_name, const char *out_name)
{
	const char *argv[] = {"openssl", "cms", "-verify", "-CAfile", "ca.pem", "-inform",
	                      "SMIME",   "-in", in_name,   "-out",    out_name, NULL};

	return run(argv, NULL);
}

static int
openssl_decrypt(const char *in_name, const Identity *id, const char *out_name)
{
	const char *argv[] = {"openssl", "cms",   "-decrypt", "-recip", id->pem, "-inkey", id->key,
	                      "-inform", "SMIME", "-in",      in_name,  "-out",  out_name, NULL};

	return run(argv, NULL);
}

/* ----- building ----- */

#define SAMPLE_TEXT                                                                                \
	"Fax job 42 was sent.\n"                                                                   \
	"A long line: Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod "    \
	"tempor incididunt ut labore et dolore magna aliqua; a=b and 100% done.\n"                 \
	"trailing spaces   \n"                                                                     \
	"From the gateway\n"                                                                       \
	".\n"                                                                                      \
	"\ttabbed\n"                                                                               \
	"\n"                                                                                       \
	"ファクスを送信しました。宛先: 03-1234-5678\n"

static void
test_plain(void)
{
	FaxMailer mailer = plain_mailer();
	g_autoptr(GBytes) mail = build_ok(&mailer, "Fax sent: job 42", SAMPLE_TEXT, NULL, 0, NULL);
	g_autoptr(GMimeMessage) message = parse_message(mail);
	g_autofree char *from = header_value(mail, "From");
	g_autofree char *id = header_value(mail, "Message-ID");
	g_autofree char *text = NULL;
	g_autoptr(GRegex) id_re = g_regex_new("^<[0-9a-f]{32}@example\\.org>$", 0, 0, NULL);
	g_autoptr(GRegex) date_re =
	        g_regex_new("^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
	                    "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
	                    "[0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}$",
	                    0, 0, NULL);
	g_autofree char *date = header_value(mail, "Date");
	g_autofree char *to = header_value(mail, "To");
	g_autofree char *version = header_value(mail, "MIME-Version");
	g_autofree char *auto_submitted = header_value(mail, "Auto-Submitted");
	g_autofree char *subject = header_value(mail, "Subject");

	assert_canonical(mail);
	g_assert_cmpstr(from, ==, GATEWAY);
	g_assert_cmpstr(to, ==, ALICE);
	g_assert_cmpstr(subject, ==, "Fax sent: job 42");
	g_assert_cmpstr(version, ==, "1.0");
	g_assert_cmpstr(auto_submitted, ==, "auto-generated");
	g_assert_true(g_regex_match(id_re, id, 0, NULL));
	g_assert_true(g_regex_match(date_re, date, 0, NULL));
	g_assert_nonnull(g_mime_message_get_date(message));
	g_assert_true(g_str_has_prefix(text_of(mail), "From: " GATEWAY "\r\nTo: " ALICE "\r\n"));
	g_assert_nonnull(strstr(text_of(mail), "Content-Type: text/plain; charset=UTF-8\r\n"));
	/* quoted-printable kept what mail transport would damage away from the line starts */
	g_assert_nonnull(strstr(text_of(mail), "\r\n=46rom the gateway\r\n"));
	g_assert_nonnull(strstr(text_of(mail), "\r\n=2E\r\n"));
	g_assert_nonnull(strstr(text_of(mail), "trailing spaces  =20\r\n"));
	text = part_text(g_mime_message_get_mime_part(message));
	g_assert_cmpstr(text, ==, SAMPLE_TEXT);
}

static void
test_message_ids_differ(void)
{
	FaxMailer mailer = plain_mailer();
	g_autoptr(GBytes) one = build_ok(&mailer, "a", "a\n", NULL, 0, NULL);
	g_autoptr(GBytes) two = build_ok(&mailer, "a", "a\n", NULL, 0, NULL);
	g_autofree char *id1 = header_value(one, "Message-ID");
	g_autofree char *id2 = header_value(two, "Message-ID");

	g_assert_cmpstr(id1, !=, id2);
}

#define JAPANESE_SUBJECT                                                                                                             \
	"FAX送信結果のお知らせ：ジョブ 42 は 3 件の宛先すべてに送信されました（株式会社ハンコ " \
	"経理部 御中）"
#define JAPANESE_NAME "ハンコ FAX ゲートウェイ"

static void
test_subject_encoding(void)
{
	FaxMailer mailer = plain_mailer();
	g_autoptr(GBytes) mail = NULL;
	g_autoptr(GMimeMessage) message = NULL;
	g_autofree char *raw = NULL;
	g_autofree char *decoded = NULL;
	InternetAddressList *from;

	mailer.from_name = JAPANESE_NAME;
	mail = build_ok(&mailer, JAPANESE_SUBJECT, "x\n", NULL, 0, NULL);
	assert_canonical(mail);
	raw = header_value(mail, "Subject");
	g_assert_true(g_str_has_prefix(raw, "=?UTF-8?B?"));
	/* folded: the field spans lines */
	g_assert_nonnull(strstr(text_of(mail), "?=\r\n =?UTF-8?B?"));
	/* only the last word is padded: GMime loses what follows a padded one */
	g_assert_null(strstr(text_of(mail), "=?=\r\n =?UTF-8?B?"));
	decoded = g_mime_utils_header_decode_text(NULL, raw);
	g_assert_cmpstr(decoded, ==, JAPANESE_SUBJECT);
	message = parse_message(mail);
	g_assert_cmpstr(g_mime_message_get_subject(message), ==, JAPANESE_SUBJECT);
	from = g_mime_message_get_from(message);
	g_assert_cmpint(internet_address_list_length(from), ==, 1);
	g_assert_cmpstr(internet_address_get_name(internet_address_list_get_address(from, 0)), ==,
	                JAPANESE_NAME);
	g_assert_cmpstr(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(
	                        internet_address_list_get_address(from, 0))),
	                ==, GATEWAY);
}

static void
test_header_ascii(void)
{
	static const char long_subject[] =
	        "Fax failed: job 42, 2 of 3 destinations failed - this subject is long enough "
	        "that it has to be folded over more than one line of the header";
	FaxMailer mailer = plain_mailer();
	g_autoptr(GBytes) mail = NULL;
	g_autoptr(GBytes) injected = NULL;
	g_autoptr(GMimeMessage) message = NULL;
	g_autofree char *raw = NULL;
	g_autofree char *from = NULL;
	g_autofree char *header = NULL;
	InternetAddressList *list;

	mailer.from_name = "Hanko, \"the\" gateway";
	mail = build_ok(&mailer, long_subject, "x\n", NULL, 0, NULL);
	assert_canonical(mail);
	raw = header_value(mail, "Subject");
	g_assert_cmpstr(raw, ==, long_subject); /* plain words, folded at a space */
	from = header_value(mail, "From");
	g_assert_cmpstr(from, ==, "\"Hanko, \\\"the\\\" gateway\" <" GATEWAY ">");
	message = parse_message(mail);
	g_assert_cmpstr(g_mime_message_get_subject(message), ==, long_subject);
	list = g_mime_message_get_from(message);
	g_assert_cmpstr(internet_address_get_name(internet_address_list_get_address(list, 0)), ==,
	                "Hanko, \"the\" gateway");

	/* a header value cannot start a field of its own */
	injected = build_ok(&mailer, "hello\r\nBcc: victim@example.net\nX-Evil: 1", "x\n", NULL, 0,
	                    NULL);
	header = unfolded_header(injected);
	g_assert_null(strstr(header, "\nBcc:"));
	g_assert_null(strstr(header, "\nX-Evil:"));
	g_assert_nonnull(strstr(header, "\nSubject: hello Bcc: victim@example.net X-Evil: 1\n"));
}

static void
test_bad_arguments(void)
{
	static const char *const bad_to[] = {
	        "",
	        "alice",
	        "@example.org",
	        "alice@",
	        "-oQ@example.org",
	        "a b@example.org",
	        "alice@example.org\r\nBcc: x@example.net",
	        "<alice@example.org>",
	        "a@b@c",
	};
	FaxMailer mailer = plain_mailer();
	FaxMailAttachment bad_type = {"x.bin", "no type", (const guint8 *)"x", 1};
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) mail = NULL;

	for (guint i = 0; i < G_N_ELEMENTS(bad_to); i++) {
		g_autoptr(GBytes) m =
		        fax_mail_build(&mailer, bad_to[i], "s", "t", NULL, 0, NULL, &error);

		g_assert_null(m);
		g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
		g_clear_error(&error);
	}
	mail = fax_mail_build(&mailer, ALICE, "s", "t", &bad_type, 1, NULL, &error);
	g_assert_null(mail);
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

static void
test_attachments(void)
{
	/* 94 bytes: kept whole, but percent-encoded it needs RFC 2231 continuations */
	static const char long_name[] =
	        "ファクス送信結果_2024年5月1日_株式会社ハンコ_経理部_請求書.pdf";
	g_autofree char *xs = g_strnfill(200, 'x');
	g_autofree char *too_long = g_strconcat(xs, ".pdf", NULL);
	g_autofree char *cut = g_strdup_printf("%.96s.pdf", xs);
	guint8 blob[3000];
	FaxMailAttachment attachments[] = {
	        {"../../etc/請求書.pdf", "application/pdf", blob, sizeof blob},
	        {long_name, NULL, (const guint8 *)"", 0},
	        {too_long, "text/plain", (const guint8 *)"x", 1},
	};
	FaxMailer mailer = plain_mailer();
	g_autoptr(GBytes) mail = NULL;
	g_autoptr(GMimeMessage) message = NULL;
	g_autoptr(GBytes) content = NULL;
	GMimeObject *body;
	GMimeMultipart *multipart;
	g_autofree char *type = NULL;
	g_autofree char *text = NULL;

	for (guint i = 0; i < sizeof blob; i++)
		blob[i] = (guint8)(i * 7 + 3);
	mail = build_ok(&mailer, "files", "see attached\n", attachments, 3, NULL);
	assert_canonical(mail);
	message = parse_message(mail);
	body = g_mime_message_get_mime_part(message);
	g_assert_true(GMIME_IS_MULTIPART(body));
	multipart = GMIME_MULTIPART(body);
	g_assert_cmpint(g_mime_multipart_get_count(multipart), ==, 4);
	g_assert_nonnull(strstr(text_of(mail), "filename*1*="));
	text = part_text(g_mime_multipart_get_part(multipart, 0));
	g_assert_cmpstr(text, ==, "see attached\n");
	g_assert_cmpstr(
	        g_mime_part_get_filename(GMIME_PART(g_mime_multipart_get_part(multipart, 1))), ==,
	        "請求書.pdf");
	type = mime_type(g_mime_multipart_get_part(multipart, 1));
	g_assert_cmpstr(type, ==, "application/pdf");
	content = part_content(g_mime_multipart_get_part(multipart, 1));
	g_assert_cmpmem(g_bytes_get_data(content, NULL), g_bytes_get_size(content), blob,
	                sizeof blob);
	g_assert_cmpstr(
	        g_mime_part_get_filename(GMIME_PART(g_mime_multipart_get_part(multipart, 2))), ==,
	        long_name);
	g_clear_pointer(&type, g_free);
	type = mime_type(g_mime_multipart_get_part(multipart, 2));
	g_assert_cmpstr(type, ==, "application/octet-stream");
	/* cut to 100 bytes, the extension kept */
	g_assert_cmpstr(
	        g_mime_part_get_filename(GMIME_PART(g_mime_multipart_get_part(multipart, 3))), ==,
	        cut);
}

/* ----- S/MIME ----- */

static GBytes *
gateway_cer(void)
{
	unsigned char *der = NULL;
	int len = i2d_X509(gateway.cert, &der);
	GBytes *bytes;

	g_assert_cmpint(len, >, 0);
	bytes = g_bytes_new(der, (gsize)len);
	OPENSSL_free(der);
	return bytes;
}

/* The verified content of a signed entity: the text and the gateway.cer attachment. */
static void
assert_signed_content(const char *content_name, GBytes *cer)
{
	g_autoptr(GBytes) content = read_file(content_name);
	g_autoptr(GMimeObject) entity = parse_entity(text_of(content), g_bytes_get_size(content));
	g_autoptr(GBytes) attached = NULL;
	g_autofree char *text = NULL;
	g_autofree char *type = NULL;
	GMimeMultipart *multipart;
	GMimeObject *part;

	g_assert_true(GMIME_IS_MULTIPART(entity));
	multipart = GMIME_MULTIPART(entity);
	g_assert_cmpint(g_mime_multipart_get_count(multipart), ==, 2);
	text = part_text(g_mime_multipart_get_part(multipart, 0));
	g_assert_cmpstr(text, ==, SAMPLE_TEXT);
	part = g_mime_multipart_get_part(multipart, 1);
	type = mime_type(part);
	g_assert_cmpstr(type, ==, "application/pkix-cert");
	g_assert_cmpstr(g_mime_part_get_filename(GMIME_PART(part)), ==, "gateway.cer");
	attached = part_content(part);
	g_assert_true(g_bytes_equal(attached, cer));
}

static GBytes *
build_with_cer(const FaxMailer *mailer, GBytes *cer, X509 *encrypt_to)
{
	FaxMailAttachment attachment = {
	        "gateway.cer",
	        "application/pkix-cert",
	        g_bytes_get_data(cer, NULL),
	        g_bytes_get_size(cer),
	};

	return build_ok(mailer, "The gateway certificate", SAMPLE_TEXT, &attachment, 1, encrypt_to);
}

static void
test_signed(void)
{
	FaxMailer mailer = signing_mailer();
	g_autoptr(GBytes) cer = gateway_cer();
	g_autoptr(GBytes) mail = build_with_cer(&mailer, cer, NULL);
	g_autofree char *type = header_value(mail, "Content-Type");

	assert_canonical(mail);
	g_assert_nonnull(strstr(type, "multipart/signed;"));
	g_assert_nonnull(strstr(type, "protocol=\"application/pkcs7-signature\""));
	g_assert_nonnull(strstr(type, "micalg=sha-256"));
	g_assert_nonnull(strstr(text_of(mail), "Content-Type: application/pkcs7-signature; "
	                                       "name=\"smime.p7s\"\r\n"));
	write_bytes("signed.eml", mail);
	g_assert_cmpint(openssl_verify("signed.eml", "signed.out"), ==, 0);
	assert_signed_content("signed.out", cer);
}

/* The signer's certificate and the chain travel in the signature. */
static void
test_signed_certs(void)
{
	FaxMailer mailer = signing_mailer();
	g_autoptr(GBytes) mail = build_ok(&mailer, "s", "t\n", NULL, 0, NULL);
	const char *argv[] = {"openssl", "cms", "-cmsout",   "-print", "-inform",
	                      "SMIME",   "-in", "certs.eml", NULL};
	g_autofree char *printed = NULL;

	write_bytes("certs.eml", mail);
	g_assert_cmpint(run(argv, &printed), ==, 0);
	g_assert_nonnull(strstr(printed, "CN=gateway"));
	g_assert_nonnull(strstr(printed, "CN=hanko test CA"));
	g_assert_nonnull(strstr(printed, "sha256"));
}

static void
test_signed_tampered(void)
{
	FaxMailer mailer = signing_mailer();
	g_autoptr(GBytes) cer = gateway_cer();
	g_autoptr(GBytes) mail = build_with_cer(&mailer, cer, NULL);
	g_autofree char *copy = g_strdup(text_of(mail));
	char *where = strstr(copy, "Fax job 42 was sent.");

	g_assert_nonnull(where);
	where[5] = 'm'; /* "Fax jmb" */
	write_file("tampered.eml", copy, strlen(copy));
	g_assert_cmpint(openssl_verify("tampered.eml", "tampered.out"), !=, 0);
}

static void
test_signed_wrong_key(void)
{
	FaxMailer mailer = signing_mailer();
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) mail = NULL;

	mailer.key = alice.pkey;
	mail = fax_mail_build(&mailer, ALICE, "s", "t", NULL, 0, NULL, &error);
	g_assert_null(mail);
	g_assert_error(error, HK_OSSL_ERROR, HK_OSSL_ERROR_FAILED);
	g_test_message("%s", error->message);
}

/* Encrypted for id (and the gateway); decrypts to multipart/signed that verifies. */
static void
check_encrypted(const char *cipher, const Identity *id, const char *smime_type,
                const char *algorithm)
{
	FaxMailer mailer = signing_mailer();
	g_autoptr(GBytes) cer = gateway_cer();
	g_autoptr(GBytes) mail = NULL;
	g_autoptr(GBytes) decrypted = NULL;
	g_autofree char *type = NULL;
	g_autofree char *subject = NULL;
	g_autofree char *printed = NULL;
	g_autofree char *expect_type = g_strdup_printf(
	        "application/pkcs7-mime; smime-type=%s;\tname=\"smime.p7m\"", smime_type);
	const char *print[] = {"openssl", "cms", "-cmsout", "-print", "-inform",
	                       "SMIME",   "-in", "enc.eml", NULL};

	mailer.cipher = cipher;
	mail = build_with_cer(&mailer, cer, id->cert);
	assert_canonical(mail);
	type = header_value(mail, "Content-Type");
	g_assert_cmpstr(type, ==, expect_type);
	subject = header_value(mail, "Subject");
	g_assert_cmpstr(subject, ==, "The gateway certificate");
	g_assert_nonnull(strstr(text_of(mail), "\r\nContent-Disposition: attachment; "
	                                       "filename=\"smime.p7m\"\r\n"));
	g_assert_null(strstr(text_of(mail), "Fax job"));
	write_bytes("enc.eml", mail);
	g_assert_cmpint(run(print, &printed), ==, 0);
	g_assert_nonnull(strstr(printed, algorithm));

	g_assert_cmpint(openssl_decrypt("enc.eml", id, "dec.eml"), ==, 0);
	decrypted = read_file("dec.eml");
	g_assert_true(g_str_has_prefix(text_of(decrypted), "Content-Type: multipart/signed;"));
	g_assert_cmpint(openssl_verify("dec.eml", "dec.out"), ==, 0);
	assert_signed_content("dec.out", cer);

	/* the gateway reads what it sent; nobody else does */
	g_assert_cmpint(openssl_decrypt("enc.eml", &gateway, "dec-gw.eml"), ==, 0);
	g_assert_cmpint(openssl_decrypt("enc.eml", id == &alice ? &bob_ec : &alice, "dec-no.eml"),
	                !=, 0);
}

static void
test_encrypted_rsa(void)
{
	check_encrypted(NULL, &alice, "enveloped-data", "aes-256-cbc");
}

static void
test_encrypted_ec(void)
{
	check_encrypted(NULL, &bob_ec, "enveloped-data", "aes-256-cbc");
}

static void
test_encrypted_aes128(void)
{
	check_encrypted("aes-128-cbc", &alice, "enveloped-data", "aes-128-cbc");
}

static void
test_encrypted_gcm(void)
{
	check_encrypted("aes-256-gcm", &alice, "authEnveloped-data", "aes-256-gcm");
}

/* Unsigned but encrypted: the text entity itself is the content. */
static void
test_encrypted_unsigned(void)
{
	FaxMailer mailer = plain_mailer();
	g_autoptr(GBytes) mail = build_ok(&mailer, "s", SAMPLE_TEXT, NULL, 0, alice.cert);
	g_autoptr(GBytes) decrypted = NULL;
	g_autoptr(GMimeObject) entity = NULL;
	g_autofree char *text = NULL;

	write_bytes("enc-plain.eml", mail);
	g_assert_cmpint(openssl_decrypt("enc-plain.eml", &alice, "dec-plain.eml"), ==, 0);
	decrypted = read_file("dec-plain.eml");
	g_assert_true(g_str_has_prefix(text_of(decrypted), "Content-Type: text/plain;"));
	entity = parse_entity(text_of(decrypted), g_bytes_get_size(decrypted));
	text = part_text(entity);
	g_assert_cmpstr(text, ==, SAMPLE_TEXT);
}

static void
test_bad_cipher(void)
{
	static const char *const bad[] = {"no-such-cipher", "aes-256-ecb", "des-cbc", "rc4"};
	FaxMailer mailer = signing_mailer();

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) mail = NULL;

		mailer.cipher = bad[i];
		mail = fax_mail_build(&mailer, ALICE, "s", "t", NULL, 0, alice.cert, &error);
		g_assert_null(mail);
		g_assert_nonnull(error);
		g_assert_nonnull(strstr(error->message, bad[i]));
	}
}

/* ----- sendmail ----- */

static char *
write_script(const char *name, const char *body)
{
	g_autofree char *text = g_strdup_printf("#!/bin/sh\ncd '%s' || exit 99\n%s", tmpdir, body);
	char *path = tmp_path(name);

	write_file(name, text, strlen(text));
	g_assert_cmpint(g_chmod(path, 0700), ==, 0);
	return path;
}

/* Without Date and Message-ID, the only lines that differ between two builds. */
static char *
without_date_and_id(const char *mail)
{
	g_auto(GStrv) lines = g_strsplit(mail, "\r\n", -1);
	GString *out = g_string_new(NULL);

	for (guint i = 0; lines[i] != NULL; i++) {
		if (g_str_has_prefix(lines[i], "Date: ") ||
		    g_str_has_prefix(lines[i], "Message-ID: "))
			continue;
		g_string_append_printf(out, "%s\r\n", lines[i]);
	}
	return g_string_free(out, FALSE);
}

static void
test_send(void)
{
	g_autofree char *script = write_script("sendmail-ok", "printf '%s\\n' \"$@\" > args\n"
	                                                      "cat > stdin\n"
	                                                      "exit 0\n");
	const char *const argv[] = {script, NULL};
	FaxMailer mailer = plain_mailer();
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) args = NULL;
	g_autoptr(GBytes) stdin_bytes = NULL;
	g_autoptr(GBytes) expected = NULL;
	g_autofree char *got = NULL;
	g_autofree char *want = NULL;

	mailer.from_name = "hanko fax";
	mailer.sendmail = argv;
	g_assert_true(fax_mail_send(&mailer, ALICE, "Fax sent: job 42", SAMPLE_TEXT, NULL, 0, NULL,
	                            &error));
	g_assert_no_error(error);
	args = read_file("args");
	g_assert_cmpstr(text_of(args), ==, "-i\n-f\n" GATEWAY "\n--\n" ALICE "\n");
	stdin_bytes = read_file("stdin");
	expected = build_ok(&mailer, "Fax sent: job 42", SAMPLE_TEXT, NULL, 0, NULL);
	got = without_date_and_id(text_of(stdin_bytes));
	want = without_date_and_id(text_of(expected));
	g_assert_cmpstr(got, ==, want);
}

static void
test_send_extra_args(void)
{
	g_autofree char *script = write_script("sendmail-args", "printf '%s\\n' \"$@\" > args2\n"
	                                                        "cat > /dev/null\n");
	const char *const argv[] = {script, "-C", "/etc/postfix-out", NULL};
	FaxMailer mailer = signing_mailer();
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) args = NULL;

	mailer.sendmail = argv;
	g_assert_true(fax_mail_send(&mailer, ALICE, "s", "t\n", NULL, 0, alice.cert, &error));
	g_assert_no_error(error);
	args = read_file("args2");
	g_assert_cmpstr(text_of(args), ==,
	                "-C\n/etc/postfix-out\n-i\n-f\n" GATEWAY "\n--\n" ALICE "\n");
}

static void
test_send_fails(void)
{
	g_autofree char *script = write_script(
	        "sendmail-75", "cat > /dev/null\n"
	                       "echo 'postdrop: warning: unable to look up public/pickup' >&2\n"
	                       "echo 'second line' >&2\n"
	                       "exit 75\n");
	const char *const argv[] = {script, NULL};
	FaxMailer mailer = plain_mailer();
	g_autoptr(GError) error = NULL;

	mailer.sendmail = argv;
	g_assert_false(fax_mail_send(&mailer, ALICE, "s", "t\n", NULL, 0, NULL, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_FAILED);
	g_assert_cmpstr(error->message, ==,
	                "sendmail exited with status 75: postdrop: warning: unable to look up "
	                "public/pickup");
}

/* A sendmail that does not read its input is reported by its status, not by the pipe. */
static void
test_send_not_reading(void)
{
	g_autofree char *script = write_script("sendmail-deaf", "echo 'go away'\nexit 1\n");
	const char *const argv[] = {script, NULL};
	FaxMailer mailer = plain_mailer();
	g_autoptr(GError) error = NULL;
	g_autofree guint8 *big = g_malloc0(1024 * 1024);
	FaxMailAttachment attachment = {"big.bin", "application/octet-stream", big, 1024 * 1024};

	mailer.sendmail = argv;
	g_assert_false(fax_mail_send(&mailer, ALICE, "s", "t\n", &attachment, 1, NULL, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_FAILED);
	g_assert_cmpstr(error->message, ==, "sendmail exited with status 1: go away");
}

static void
test_send_no_command(void)
{
	const char *const missing[] = {"/nonexistent/sendmail", NULL};
	const char *const empty[] = {NULL};
	FaxMailer mailer = plain_mailer();
	g_autoptr(GError) error = NULL;

	mailer.sendmail = missing;
	g_assert_false(fax_mail_send(&mailer, ALICE, "s", "t\n", NULL, 0, NULL, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_FAILED);
	g_assert_true(g_str_has_prefix(error->message, "cannot run sendmail: "));
	g_clear_error(&error);
	mailer.sendmail = empty;
	g_assert_false(fax_mail_send(&mailer, ALICE, "s", "t\n", NULL, 0, NULL, &error));
	g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

/* ----- the job result ----- */

/* fax_job_free may live in fax-spool.c, which this test does not need. */
static void
free_job(FaxJob *job)
{
	for (guint i = 0; i < job->destinations->len; i++) {
		FaxDestination *d = g_ptr_array_index(job->destinations, i);

		g_free(d->number);
		g_free(d->dial);
		g_free(d->result_text);
		g_free(d);
	}
	g_ptr_array_unref(job->destinations);
	g_free(job->user);
	g_free(job->sender);
	g_free(job->notify);
	g_free(job->subject);
	g_free(job->queue_id);
	g_free(job->tiff);
	g_free(job->notes);
	g_free(job);
}

static void
add_destination(FaxJob *job, const char *number, FaxDestState state, guint pages_sent,
                guint attempts, gint64 finished, const char *result)
{
	FaxDestination *d = g_new0(FaxDestination, 1);

	d->number = g_strdup(number);
	d->dial = g_strconcat("0", number, NULL);
	d->state = state;
	d->pages_sent = pages_sent;
	d->attempts = attempts;
	d->finished = finished;
	d->result = state == FAX_DEST_DONE ? FAX_RESULT_OK : FAX_RESULT_BUSY;
	d->result_text = g_strdup(result);
	g_ptr_array_add(job->destinations, d);
}

static FaxJob *
make_job(void)
{
	FaxJob *job = g_new0(FaxJob, 1);

	job->id = 42;
	job->user = g_strdup("alice");
	job->sender = g_strdup(ALICE);
	job->notify = g_strdup(ALICE);
	job->subject = g_strdup("Quarterly report /fax=0312345678;0398765432");
	job->queue_id = g_strdup("4ABCD1234");
	job->created = JOB_TIME;
	job->pages = 3;
	job->tiff = g_strdup("/var/spool/hanko/fax/jobs/42/fax.tif");
	job->notes = g_strdup("");
	job->destinations = g_ptr_array_new();
	return job;
}

static void
assert_contains(const char *text, const char *line)
{
	if (strstr(text, line) == NULL)
		g_error("\"%s\" not in:\n%s", line, text);
}

static void
test_result_sent(void)
{
	FaxJob *job = make_job();
	g_autofree char *subject = NULL;
	g_autofree char *text = NULL;

	add_destination(job, "0312345678", FAX_DEST_DONE, 3, 1, JOB_TIME + 70,
	                "sent 3 pages in 41 s");
	add_destination(job, "0398765432", FAX_DEST_DONE, 3, 2, JOB_TIME + 600, "sent");
	fax_mail_job_result(job, &subject, &text);
	g_assert_cmpstr(subject, ==, "Fax sent: job 42 to 2 destinations");
	assert_contains(text, "Fax job 42 was sent to all 2 destinations.\n");
	assert_contains(text, "  Job:      42\n");
	assert_contains(text, "  Request:  Quarterly report /fax=0312345678;0398765432\n");
	assert_contains(text, "  Queued:   2024-05-01 10:20:00 +0000\n");
	assert_contains(text, "  Pages:    3\n");
	assert_contains(text, "  0312345678  sent      3/3 pages  2024-05-01 10:21:10 +0000  sent "
	                      "3 pages in 41 s\n");
	assert_contains(text,
	                "  0398765432  sent      3/3 pages  2024-05-01 10:30:00 +0000  sent (2 "
	                "attempts)\n");
	g_assert_null(strstr(text, "hankoctl"));
	g_assert_null(strstr(text, "Notes:"));
	g_assert_null(strstr(text, job->tiff));
	free_job(job);
}

static void
test_result_failed(void)
{
	FaxJob *job = make_job();
	g_autofree char *subject = NULL;
	g_autofree char *text = NULL;

	g_free(job->notes);
	job->notes = g_strdup("skipped attachment photo.heic (unsupported type)\n"
	                      "skipped attachment movie.mp4 (unsupported type)\n");
	add_destination(job, "0312345678", FAX_DEST_DONE, 3, 1, JOB_TIME + 70, "sent");
	add_destination(job, "+81398765432", FAX_DEST_FAILED, 1, 3, JOB_TIME + 3600,
	                "busy\nline two");
	fax_mail_job_result(job, &subject, &text);
	g_assert_cmpstr(subject, ==, "Fax failed: job 42, 1 of 2 destinations failed");
	g_test_message("%s\n%s", subject, text);
	assert_contains(text, "Fax job 42 could not be sent to 1 of 2 destinations.\n");
	assert_contains(text, "  0312345678    sent      3/3 pages  2024-05-01 10:21:10 +0000  "
	                      "sent\n");
	assert_contains(text, "  +81398765432  failed    1/3 pages  2024-05-01 11:20:00 +0000  "
	                      "busy line two (3 attempts)\n");
	assert_contains(text, "\nNotes:\n  skipped attachment photo.heic (unsupported type)\n"
	                      "  skipped attachment movie.mp4 (unsupported type)\n");
	assert_contains(text, "ask your administrator to run:\n  hankoctl fax resend 42\n");
	free_job(job);
}

static void
test_result_canceled(void)
{
	FaxJob *job = make_job();
	g_autofree char *subject = NULL;
	g_autofree char *text = NULL;
	g_autofree char *long_subject = g_strnfill(300, 'x');

	g_free(job->subject);
	job->subject = g_strconcat("line\r\none ", long_subject, NULL);
	job->canceled = TRUE;
	add_destination(job, "0312345678", FAX_DEST_CANCELED, 0, 0, 0, "");
	add_destination(job, "0398765432", FAX_DEST_CANCELED, 0, 1, JOB_TIME + 5, "canceled");
	fax_mail_job_result(job, &subject, &text);
	g_assert_cmpstr(subject, ==, "Fax canceled: job 42");
	assert_contains(text, "Fax job 42 was canceled");
	assert_contains(text, "  0312345678  canceled  0/3 pages  -\n");
	assert_contains(text, "  0398765432  canceled  0/3 pages  2024-05-01 10:20:05 +0000  "
	                      "canceled\n");
	/* the request's subject: one line, cut */
	assert_contains(text, "  Request:  line one xxxxxxxxxx");
	g_assert_null(strstr(text, long_subject));
	assert_contains(text, "x...\n");
	assert_contains(text, "hankoctl fax resend 42");
	free_job(job);
}

static void
test_result_single(void)
{
	FaxJob *job = make_job();
	g_autofree char *subject = NULL;
	g_autofree char *text = NULL;

	add_destination(job, "0312345678", FAX_DEST_FAILED, 0, 1, JOB_TIME + 9, "no fax machine");
	fax_mail_job_result(job, &subject, &text);
	g_assert_cmpstr(subject, ==, "Fax failed: job 42, 1 of 1 destination failed");
	assert_contains(text, "  0312345678  failed    0/3 pages  2024-05-01 10:20:09 +0000  no "
	                      "fax machine\n");
	free_job(job);
}

/* The result mail goes through fax_mail_build as it is. */
static void
test_result_mail(void)
{
	FaxJob *job = make_job();
	FaxMailer mailer = signing_mailer();
	g_autofree char *subject = NULL;
	g_autofree char *text = NULL;
	g_autoptr(GBytes) mail = NULL;
	g_autoptr(GMimeMessage) message = NULL;

	add_destination(job, "0312345678", FAX_DEST_DONE, 3, 1, JOB_TIME + 70, "sent");
	fax_mail_job_result(job, &subject, &text);
	mail = build_ok(&mailer, subject, text, NULL, 0, NULL);
	assert_canonical(mail);
	message = parse_message(mail);
	g_assert_cmpstr(g_mime_message_get_subject(message), ==,
	                "Fax sent: job 42 to 1 destination");
	write_bytes("result.eml", mail);
	g_assert_cmpint(openssl_verify("result.eml", "result.out"), ==, 0);
	free_job(job);
}

/* ----- main ----- */

static void
remove_tree(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *path = g_build_filename(dir, name, NULL);

		g_remove(path);
	}
	g_rmdir(dir);
}

int
main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	int status;

	/* hk-daemon ignores SIGPIPE; fax_mail_send relies on it */
	signal(SIGPIPE, SIG_IGN);
	g_setenv("TZ", "UTC", TRUE);
	g_test_init(&argc, &argv, NULL);
	g_mime_init();
	tmpdir = g_dir_make_tmp("test-fax-mail-XXXXXX", &error);
	g_assert_no_error(error);
	make_pki();

	g_test_add_func("/fax-mail/build/plain", test_plain);
	g_test_add_func("/fax-mail/build/message-ids-differ", test_message_ids_differ);
	g_test_add_func("/fax-mail/build/subject-encoding", test_subject_encoding);
	g_test_add_func("/fax-mail/build/header-ascii", test_header_ascii);
	g_test_add_func("/fax-mail/build/bad-arguments", test_bad_arguments);
	g_test_add_func("/fax-mail/build/attachments", test_attachments);
	g_test_add_func("/fax-mail/smime/signed", test_signed);
	g_test_add_func("/fax-mail/smime/signed-certs", test_signed_certs);
	g_test_add_func("/fax-mail/smime/signed-tampered", test_signed_tampered);
	g_test_add_func("/fax-mail/smime/signed-wrong-key", test_signed_wrong_key);
	g_test_add_func("/fax-mail/smime/encrypted-rsa", test_encrypted_rsa);
	g_test_add_func("/fax-mail/smime/encrypted-ec", test_encrypted_ec);
	g_test_add_func("/fax-mail/smime/encrypted-aes128", test_encrypted_aes128);
	g_test_add_func("/fax-mail/smime/encrypted-gcm", test_encrypted_gcm);
	g_test_add_func("/fax-mail/smime/encrypted-unsigned", test_encrypted_unsigned);
	g_test_add_func("/fax-mail/smime/bad-cipher", test_bad_cipher);
	g_test_add_func("/fax-mail/send/ok", test_send);
	g_test_add_func("/fax-mail/send/extra-args", test_send_extra_args);
	g_test_add_func("/fax-mail/send/fails", test_send_fails);
	g_test_add_func("/fax-mail/send/not-reading", test_send_not_reading);
	g_test_add_func("/fax-mail/send/no-command", test_send_no_command);
	g_test_add_func("/fax-mail/result/sent", test_result_sent);
	g_test_add_func("/fax-mail/result/failed", test_result_failed);
	g_test_add_func("/fax-mail/result/canceled", test_result_canceled);
	g_test_add_func("/fax-mail/result/single", test_result_single);
	g_test_add_func("/fax-mail/result/mail", test_result_mail);
	status = g_test_run();

	free_identity(&ca);
	free_identity(&gateway);
	free_identity(&alice);
	free_identity(&bob_ec);
	hk_ossl_x509_stack_free(chain);
	g_mime_shutdown();
	remove_tree(tmpdir);
	g_free(tmpdir);
	return status;
}
