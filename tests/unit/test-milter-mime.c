/*
 * test-milter-mime: the MIME reader (milter-smime/milter-mime.c), table by table: header
 * fields, Content-Type, multipart spans, transfer decoding and From addresses, and one real
 * multipart/signed message from `openssl cms -sign` whose part must verify byte for byte.
 *
 * Talks to: milter-mime.c, and the openssl command (on PATH) in a temporary directory.
 * Must never: leave files behind, or pass input that ends in a NUL the reader could lean on.
 */
#include "milter-mime.h"

#include <string.h>

#include <glib/gstdio.h>

/* The input in a heap block of exactly its size: ASan reports a read past the end. */
static char *
exact_copy(const char *data, gsize len)
{
	return len > 0 ? g_memdup2(data, len) : g_malloc(1);
}

static gboolean
span_within(MilterMimeSpan inner, MilterMimeSpan outer)
{
	return inner.data >= outer.data && inner.data + inner.len <= outer.data + outer.len;
}

/* ---- header fields ---- */

typedef struct {
	const char *in;
	const char *fields[9]; /* name, value, name, value ... NULL */
	const char *body;      /* NULL: no blank line, the body is empty at the end */
} HeaderCase;

static const HeaderCase header_cases[] = {
        {"From: a@b\r\nSubject: hi\r\n\r\nbody\r\n", {"From", "a@b", "Subject", "hi"}, "body\r\n"},
        {"From: a@b\nSubject: hi\n\nbody\n", {"From", "a@b", "Subject", "hi"}, "body\n"},
        {"Subject: one\r\n two\r\n\tthree\r\nX: y\r\n\r\n",
         {"Subject", "one two\tthree", "X", "y"},
         ""},
        {"Subject: one\n  two\n\n", {"Subject", "one  two"}, ""},
        {"A:   spaced \t \r\nB:\r\nC:x\r\n\r\n\r\nbody",
         {"A", "spaced", "B", "", "C", "x"},
         "\r\nbody"},
        {"A: 1\r\nB: 2\r\n", {"A", "1", "B", "2"}, NULL},
        {"A: 1\r\nB: 2", {"A", "1", "B", "2"}, NULL},
        {"A: 1\r\n \r\n", {"A", "1"}, NULL}, /* a blank continuation is not an empty line */
        {"\r\nbody\r\n", {NULL}, "body\r\n"},
        {"\nbody", {NULL}, "body"},
        {"", {NULL}, NULL},
        {"X-8bit: caf\xc3\xa9\r\n\r\n", {"X-8bit", "caf\xc3\xa9"}, ""},
        {"Strange!#$%&'*+-.^_`{|}~name: v\r\n\r\n", {"Strange!#$%&'*+-.^_`{|}~name", "v"}, ""},
        {"A: has: colons: too\r\n\r\nx", {"A", "has: colons: too"}, "x"},
        {"A: 1\r\n\r\nB: 2\r\n", {"A", "1"}, "B: 2\r\n"},
};

static void
test_header_table(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(header_cases); i++) {
		const HeaderCase *c = &header_cases[i];
		gsize len = strlen(c->in);
		g_autofree char *data = exact_copy(c->in, len);
		g_autoptr(GError) error = NULL;
		g_autoptr(MilterMimeEntity) entity = milter_mime_entity_parse(data, len, &error);
		g_autofree char *shown = g_strescape(c->in, NULL);
		guint n = 0;

		g_test_message("case %" G_GSIZE_FORMAT ": %s", i, shown);
		g_assert_no_error(error);
		g_assert_nonnull(entity);
		while (c->fields[n * 2] != NULL)
			n++;
		g_assert_cmpuint(entity->headers->len, ==, n);
		for (guint f = 0; f < n; f++) {
			const MilterMimeHeader *h = g_ptr_array_index(entity->headers, f);

			g_assert_cmpstr(h->name, ==, c->fields[f * 2]);
			g_assert_cmpstr(h->value, ==, c->fields[f * 2 + 1]);
		}
		g_assert_true(entity->raw.data == data && entity->raw.len == len);
		g_assert_true(span_within(entity->body, entity->raw));
		if (c->body == NULL) {
			g_assert_true(entity->body.data == data + len);
			g_assert_cmpuint(entity->body.len, ==, 0);
		} else {
			g_assert_true(entity->body.data + entity->body.len == data + len);
			g_assert_cmpmem(entity->body.data, entity->body.len, c->body,
			                strlen(c->body));
		}
	}
}

typedef struct {
	const char *in;
	gsize len; /* 0: strlen */
	MilterMimeError code;
	const char *message;
} HeaderErrorCase;

static const HeaderErrorCase header_error_cases[] = {
        {"From a@b.example Mon Jan  1 00:00:00 2024\r\nFrom: a@b.example\r\n\r\n", 0,
         MILTER_MIME_ERROR_HEADER, "header line 1 is an mbox \"From \" line, not a field"},
        {"A: 1\r\nB: 2\r\ngarbage here\r\n\r\n", 0, MILTER_MIME_ERROR_HEADER,
         "header line 3 is not a field (no colon)"},
        {"A: 1\nB: 2\n C\ngarbage\n\n", 0, MILTER_MIME_ERROR_HEADER,
         "header line 4 is not a field (no colon)"},
        {" folded: first\r\n\r\n", 0, MILTER_MIME_ERROR_HEADER,
         "header line 1 is a continuation with no field before it"},
        {"A: 1\r\n: empty name\r\n", 0, MILTER_MIME_ERROR_HEADER,
         "header line 2 has an empty field name"},
        {"Bad Name: x\r\n\r\n", 0, MILTER_MIME_ERROR_HEADER,
         "header line 1 is not a field (byte 0x20 in its name)"},
        {"Subject : x\r\n\r\n", 0, MILTER_MIME_ERROR_HEADER,
         "header line 1 is not a field (byte 0x20 in its name)"},
        {"Caf\xc3\xa9: x\r\n\r\n", 0, MILTER_MIME_ERROR_HEADER,
         "header line 1 is not a field (byte 0xC3 in its name)"},
        {"A: 1\r\nB: x\0y\r\n\r\n", 15, MILTER_MIME_ERROR_HEADER,
         "header line 2 contains a NUL byte"},
};

static void
test_header_errors(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(header_error_cases); i++) {
		const HeaderErrorCase *c = &header_error_cases[i];
		gsize len = c->len != 0 ? c->len : strlen(c->in);
		g_autofree char *data = exact_copy(c->in, len);
		g_autoptr(GError) error = NULL;
		g_autoptr(MilterMimeEntity) entity = milter_mime_entity_parse(data, len, &error);

		g_assert_null(entity);
		g_assert_error(error, MILTER_MIME_ERROR, (gint)c->code);
		g_assert_cmpstr(error->message, ==, c->message);
	}
}

/* A header of n fields, each folded once when folded is set. */
static GString *
many_fields(guint n, gboolean folded)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < n; i++)
		g_string_append_printf(s, "X-F%u: %u%s\r\n", i, i, folded ? "\r\n more" : "");
	g_string_append(s, "\r\nbody");
	return s;
}

static void
test_header_limit(void)
{
	for (guint folded = 0; folded < 2; folded++) {
		g_autoptr(GString) ok = many_fields(MILTER_MIME_MAX_HEADERS, folded);
		g_autoptr(GString) over = many_fields(MILTER_MIME_MAX_HEADERS + 1, folded);
		g_autoptr(GError) error = NULL;
		g_autoptr(MilterMimeEntity) entity =
		        milter_mime_entity_parse(ok->str, ok->len, &error);
		g_autoptr(MilterMimeEntity) none = NULL;
		const MilterMimeHeader *last;

		g_assert_no_error(error);
		g_assert_cmpuint(entity->headers->len, ==, MILTER_MIME_MAX_HEADERS);
		last = g_ptr_array_index(entity->headers, MILTER_MIME_MAX_HEADERS - 1);
		g_assert_cmpstr(last->value, ==, folded ? "999 more" : "999");
		g_assert_cmpmem(entity->body.data, entity->body.len, "body", 4);

		none = milter_mime_entity_parse(over->str, over->len, &error);
		g_assert_null(none);
		g_assert_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_LIMIT);
		g_assert_cmpstr(error->message, ==, "more than 1000 header fields");
	}
}

static void
test_header_lookup(void)
{
	const char *in = "content-TYPE: text/plain\r\nContent-Type: text/html\r\n\r\n";
	g_autoptr(MilterMimeEntity) entity = milter_mime_entity_parse(in, strlen(in), NULL);

	g_assert_cmpstr(milter_mime_entity_header(entity, "Content-Type"), ==, "text/plain");
	g_assert_cmpstr(milter_mime_entity_header(entity, "CONTENT-type"), ==, "text/plain");
	g_assert_null(milter_mime_entity_header(entity, "Content-Transfer-Encoding"));
	g_assert_null(milter_mime_entity_header(entity, "Content"));
}

static void
test_entity_new(void)
{
	char name[] = "Content-Transfer-Encoding";
	char value[] = "base64";
	MilterMimeHeader fields[] = {{name, value}, {(char *)"From", (char *)"a@b"}};
	const char body[] = "QQ==";
	g_autoptr(MilterMimeEntity) entity = milter_mime_entity_new(fields, 2, body, 4);
	g_autoptr(MilterMimeEntity) empty = milter_mime_entity_new(NULL, 0, NULL, 0);
	g_autoptr(GBytes) decoded = NULL;

	/* copied: changing the caller's strings afterwards changes nothing */
	name[0] = 'X';
	value[0] = 'X';
	g_assert_cmpuint(entity->headers->len, ==, 2);
	g_assert_cmpstr(milter_mime_entity_header(entity, "content-transfer-encoding"), ==,
	                "base64");
	g_assert_cmpstr(milter_mime_entity_header(entity, "from"), ==, "a@b");
	g_assert_true(entity->body.data == body && entity->body.len == 4);
	g_assert_true(entity->raw.data == body && entity->raw.len == 4);
	decoded = milter_mime_entity_decode(entity, NULL);
	g_assert_cmpmem(g_bytes_get_data(decoded, NULL), g_bytes_get_size(decoded), "A", 1);

	g_assert_cmpuint(empty->headers->len, ==, 0);
	g_assert_cmpuint(empty->body.len, ==, 0);
}

/* An empty buffer may come as (NULL, 0); nothing is read and the spans stay empty. */
static void
test_null_empty(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MilterMimeEntity) entity = milter_mime_entity_parse(NULL, 0, &error);
	g_autoptr(GArray) parts = NULL;
	g_autoptr(GBytes) bytes = NULL;

	g_assert_no_error(error);
	g_assert_cmpuint(entity->headers->len, ==, 0);
	g_assert_null(entity->body.data);
	g_assert_cmpuint(entity->body.len, ==, 0);
	bytes = milter_mime_entity_decode(entity, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_bytes_get_size(bytes), ==, 0);
	parts = milter_mime_multipart_split(entity->body, "abc", &error);
	g_assert_null(parts);
	g_assert_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_MULTIPART);
}

/* ---- Content-Type ---- */

typedef struct {
	const char *in;
	const char *type;
	const char *subtype;
	const char *params[13]; /* name, value ... NULL: all of them, nothing more */
} ContentTypeCase;

static const ContentTypeCase content_type_cases[] = {
        {"multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; "
         "boundary=\"----=_Part_0_1.2\"",
         "multipart",
         "signed",
         {"protocol", "application/pkcs7-signature", "micalg", "sha-256", "boundary",
          "----=_Part_0_1.2"}},
        {"application/x-pkcs7-mime; smime-type=enveloped-data; name=smime.p7m",
         "application",
         "x-pkcs7-mime",
         {"smime-type", "enveloped-data", "name", "smime.p7m"}},
        {"TEXT/Plain; CHARSET=UTF-8", "text", "plain", {"charset", "UTF-8"}},
        {"text/plain (a comment (nested; x=y) here) ; charset = \"us-ascii\" (x)",
         "text",
         "plain",
         {"charset", "us-ascii"}},
        {"(lead) multipart (c) / (c) mixed (c); boundary=b",
         "multipart",
         "mixed",
         {"boundary", "b"}},
        {"multipart/mixed; boundary=\"a\\\"b\\\\c d\"",
         "multipart",
         "mixed",
         {"boundary", "a\"b\\c d"}},
        {"multipart/mixed;\r\n\tboundary=\"folded\"", "multipart", "mixed", {"boundary", "folded"}},
        {"text/html; charset=utf-8; broken; name=x", "text", "html", {"charset", "utf-8"}},
        {"text/html; charset=utf-8; name=\"unterminated", "text", "html", {"charset", "utf-8"}},
        {"text/html; charset=utf-8 garbage; name=x", "text", "html", {"charset", "utf-8"}},
        {"text/plain; a=1; A=2; a=3", "text", "plain", {"a", "1"}},
        {"text/plain;; charset=x;", "text", "plain", {"charset", "x"}},
        {"text/plain; name=caf\xc3\xa9.txt", "text", "plain", {"name", "caf\xc3\xa9.txt"}},
        {"text/plain; empty=\"\"", "text", "plain", {"empty", ""}},
        {"application/pkcs7-mime; name*=utf-8''smime%2Ep7m",
         "application",
         "pkcs7-mime",
         {"name*", "utf-8''smime%2Ep7m", "name", "smime.p7m"}},
        {"multipart/mixed; boundary*0=abc; boundary*1*=%64ef; boundary*2=\"g h\"",
         "multipart",
         "mixed",
         {"boundary*0", "abc", "boundary*1*", "%64ef", "boundary*2", "g h", "boundary",
          "abcdefg h"}},
        {"text/plain; name=plain; name*=utf-8''ext",
         "text",
         "plain",
         {"name", "plain", "name*", "utf-8''ext"}},
        {"text/plain; a*=''x%00y", "text", "plain", {"a*", "''x%00y"}},
        {"text/plain; a*1=late", "text", "plain", {"a*1", "late"}},
        {NULL, "text", "plain", {NULL}},
        {"", "text", "plain", {NULL}},
        {"garbage", "text", "plain", {NULL}},
        {"garbage; charset=x", "text", "plain", {NULL}},
        {"/plain", "text", "plain", {NULL}},
        {"text/", "text", "plain", {NULL}},
        {"text/;charset=x", "text", "plain", {NULL}},
        {"\"text\"/plain", "text", "plain", {NULL}},
        {"(unterminated comment", "text", "plain", {NULL}},
        {"image/png", "image", "png", {NULL}},
};

static void
test_content_type_table(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(content_type_cases); i++) {
		const ContentTypeCase *c = &content_type_cases[i];
		g_autoptr(MilterMimeContentType) ct = milter_mime_content_type_parse(c->in);
		guint n = 0;

		g_test_message("case %" G_GSIZE_FORMAT ": %s", i, c->in != NULL ? c->in : "(NULL)");
		g_assert_cmpstr(ct->type, ==, c->type);
		g_assert_cmpstr(ct->subtype, ==, c->subtype);
		g_assert_true(milter_mime_content_type_is(ct, c->type, c->subtype));
		while (c->params[n * 2] != NULL) {
			g_assert_cmpstr(milter_mime_content_type_param(ct, c->params[n * 2]), ==,
			                c->params[n * 2 + 1]);
			n++;
		}
		g_assert_cmpuint(g_hash_table_size(ct->params), ==, n);
	}
}

static void
test_content_type_lookup(void)
{
	g_autoptr(MilterMimeContentType) ct =
	        milter_mime_content_type_parse("Multipart/Signed; Boundary=X; micalg=SHA-256");

	g_assert_true(milter_mime_content_type_is(ct, "multipart", "signed"));
	g_assert_true(milter_mime_content_type_is(ct, "MULTIPART", "SIGNED"));
	g_assert_false(milter_mime_content_type_is(ct, "multipart", "mixed"));
	g_assert_false(milter_mime_content_type_is(ct, "application", "signed"));
	g_assert_cmpstr(milter_mime_content_type_param(ct, "BOUNDARY"), ==, "X");
	g_assert_cmpstr(milter_mime_content_type_param(ct, "boundary"), ==, "X");
	g_assert_cmpstr(milter_mime_content_type_param(ct, "MicAlg"), ==, "SHA-256");
	g_assert_null(milter_mime_content_type_param(ct, "protocol"));
}

/* RFC 2231 sections are joined once per name, not once per section: quadratic here would
 * mean minutes for one header line of a few hundred kilobytes. */
static void
test_content_type_many_sections(void)
{
	g_autoptr(GString) value = g_string_new("application/pkcs7-mime");
	g_autoptr(MilterMimeContentType) ct = NULL;
	g_autoptr(GTimer) timer = g_timer_new();
	const guint n = 20000;

	for (guint i = 0; i + 1 < n; i++)
		g_string_append_printf(value, "; a*%u=x", i);
	g_string_append_printf(value, "; a*%u*=%%00", n - 1); /* spoils the join at its end */
	ct = milter_mime_content_type_parse(value->str);
	g_assert_cmpuint(g_hash_table_size(ct->params), ==, n);
	g_assert_null(milter_mime_content_type_param(ct, "a"));
	g_assert_cmpstr(milter_mime_content_type_param(ct, "a*0"), ==, "x");
	g_assert_cmpfloat(g_timer_elapsed(timer, NULL), <, 10.0);
}

/* ---- multipart ---- */

#define BOUNDARY_70 "0123456789012345678901234567890123456789012345678901234567890123456789"

typedef struct {
	const char *body;
	const char *boundary;
	const char *parts[4]; /* NULL-terminated; "" is an empty part */
} SplitCase;

static const SplitCase split_cases[] = {
        {"preamble --abc\r\n--abc\r\nA: 1\r\n\r\none\r\n--abc\r\n\r\ntwo\r\n--abc--\r\n"
         "epilogue\r\n",
         "abc",
         {"A: 1\r\n\r\none", "\r\ntwo"}},
        {"preamble\n--abc\nA: 1\n\none\n--abc\n\ntwo\n--abc--\nepilogue\n",
         "abc",
         {"A: 1\n\none", "\ntwo"}},
        {"--abc\r\nx\r\n--abc--", "abc", {"x"}},
        {"--abc \t\r\nx\r\n--abc\t\r\ny\r\n--abc-- \t\r\n", "abc", {"x", "y"}},
        {"--abc\r\nx\r\n--abcdef\r\ny\r\n--abc--\r\n", "abc", {"x\r\n--abcdef\r\ny"}},
        {"--abc\r\nx\r\n--abc--x\r\n--abc --\r\n--abc--\r\n", "abc", {"x\r\n--abc--x\r\n--abc --"}},
        {"--abc\r\nx --abc\r\n -abc\r\n--abc--\r\n", "abc", {"x --abc\r\n -abc"}},
        {"--abc\r\n\r\n--abc--\r\n", "abc", {""}},
        {"--abc\r\n--abc--\r\n", "abc", {""}},
        {"--abc\nx\n--abc\n\n--abc--\n", "abc", {"x", ""}},
        {"--abc\r\nx\r\n\r\n\r\n--abc--\r\n", "abc", {"x\r\n\r\n"}},
        {"--abc\r\nline\r\n\r\n\n--abc--\r\n", "abc", {"line\r\n\r\n"}},
        {"--abc\nx\r\n\n--abc--\n", "abc", {"x\r\n"}}, /* openssl's mixed line ends */
        {"--abc\r\nx\r\n--abc--\r\n--abc\r\nlater\r\n--abc--\r\n", "abc", {"x"}},
        {"--abc\r\nx\r\n--abc--\r", "abc", {"x"}},
        {"------=_Part_0_1.2\r\na\r\n------=_Part_0_1.2\r\nb\r\n------=_Part_0_1.2--\r\n",
         "----=_Part_0_1.2",
         {"a", "b"}},
        {"--out\r\nContent-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\ninner\r\n--in--\r\n"
         "--out\r\nsecond\r\n--out--\r\n",
         "out",
         {"Content-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\ninner\r\n--in--", "second"}},
        {"--" BOUNDARY_70 "\r\nx\r\n--" BOUNDARY_70 "--\r\n", BOUNDARY_70, {"x"}},
};

static void
check_split(const char *body_in, gsize len, const char *boundary, const char *const *parts)
{
	g_autofree char *data = exact_copy(body_in, len);
	MilterMimeSpan body = {data, len};
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) spans = milter_mime_multipart_split(body, boundary, &error);
	guint n = 0;

	g_assert_no_error(error);
	while (parts[n] != NULL)
		n++;
	g_assert_cmpuint(spans->len, ==, n);
	for (guint i = 0; i < n; i++) {
		MilterMimeSpan part = g_array_index(spans, MilterMimeSpan, i);

		g_assert_true(span_within(part, body));
		g_assert_cmpmem(part.data, part.len, parts[i], strlen(parts[i]));
	}
}

static void
test_split_table(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(split_cases); i++) {
		const SplitCase *c = &split_cases[i];

		g_autofree char *shown = g_strescape(c->body, NULL);

		g_test_message("case %" G_GSIZE_FORMAT ": %s", i, shown);
		check_split(c->body, strlen(c->body), c->boundary, c->parts);
	}
}

/* A NUL inside a part is a byte like any other: the split goes by length. */
static void
test_split_binary(void)
{
	static const char body[] = "--a\r\nbin\0ary\r\n--a\r\n\0\r\n--a--";
	g_autoptr(GArray) spans = NULL;
	MilterMimeSpan part;

	spans = milter_mime_multipart_split((MilterMimeSpan){body, sizeof(body) - 1}, "a", NULL);
	g_assert_nonnull(spans);
	g_assert_cmpuint(spans->len, ==, 2);
	part = g_array_index(spans, MilterMimeSpan, 0);
	g_assert_cmpmem(part.data, part.len, "bin\0ary", 7);
	part = g_array_index(spans, MilterMimeSpan, 1);
	g_assert_cmpmem(part.data, part.len, "\0", 1);
}

typedef struct {
	const char *body;
	const char *boundary;
	MilterMimeError code;
	const char *message;
} SplitErrorCase;

static const SplitErrorCase split_error_cases[] = {
        {"--abc\r\nx\r\n", "abc", MILTER_MIME_ERROR_MULTIPART,
         "multipart body ends without its closing delimiter --abc--"},
        {"--abc\r\nx\r\n--abc\r\ny", "abc", MILTER_MIME_ERROR_MULTIPART,
         "multipart body ends without its closing delimiter --abc--"},
        {"--abc\r\nx\r\n--abc-\r\n", "abc", MILTER_MIME_ERROR_MULTIPART,
         "multipart body ends without its closing delimiter --abc--"},
        {"--abc\r\nx\r\n --abc--\r\n", "abc", MILTER_MIME_ERROR_MULTIPART,
         "multipart body ends without its closing delimiter --abc--"},
        {"--abc", "abc", MILTER_MIME_ERROR_MULTIPART,
         "multipart body ends without its closing delimiter --abc--"},
        {"hello\r\nworld\r\n", "abc", MILTER_MIME_ERROR_MULTIPART,
         "multipart body has no delimiter line --abc"},
        {"--abcdef\r\nx\r\n--abcdef--\r\n", "abc", MILTER_MIME_ERROR_MULTIPART,
         "multipart body has no delimiter line --abc"},
        {"", "abc", MILTER_MIME_ERROR_MULTIPART, "multipart body has no delimiter line --abc"},
        {"preamble\r\n--abc--\r\n", "abc", MILTER_MIME_ERROR_MULTIPART,
         "multipart body has no parts before --abc--"},
        {"--abc\r\nx\r\n--abc--\r\n", "", MILTER_MIME_ERROR_MULTIPART,
         "multipart boundary must be 1 to 70 characters, not 0"},
        {"--abc\r\nx\r\n--abc--\r\n", NULL, MILTER_MIME_ERROR_MULTIPART,
         "multipart boundary must be 1 to 70 characters, not 0"},
        {"--" BOUNDARY_70 "1\r\nx\r\n--" BOUNDARY_70 "1--\r\n", BOUNDARY_70 "1",
         MILTER_MIME_ERROR_MULTIPART, "multipart boundary must be 1 to 70 characters, not 71"},
};

static void
test_split_errors(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(split_error_cases); i++) {
		const SplitErrorCase *c = &split_error_cases[i];
		gsize len = strlen(c->body);
		g_autofree char *data = exact_copy(c->body, len);
		g_autoptr(GError) error = NULL;
		g_autoptr(GArray) spans = milter_mime_multipart_split((MilterMimeSpan){data, len},
		                                                      c->boundary, &error);

		g_test_message("case %" G_GSIZE_FORMAT ": %s", i, c->body);
		g_assert_null(spans);
		g_assert_error(error, MILTER_MIME_ERROR, (gint)c->code);
		g_assert_cmpstr(error->message, ==, c->message);
	}
}

static GString *
many_parts(guint n)
{
	GString *s = g_string_new("preamble\r\n");

	for (guint i = 0; i < n; i++)
		g_string_append_printf(s, "--b\r\npart %u\r\n", i);
	g_string_append(s, "--b--\r\n");
	return s;
}

static void
test_split_limit(void)
{
	g_autoptr(GString) ok = many_parts(MILTER_MIME_MAX_PARTS);
	g_autoptr(GString) over = many_parts(MILTER_MIME_MAX_PARTS + 1);
	g_autoptr(GError) error = NULL;
	g_autoptr(GArray) spans =
	        milter_mime_multipart_split((MilterMimeSpan){ok->str, ok->len}, "b", &error);
	g_autoptr(GArray) none = NULL;

	g_assert_no_error(error);
	g_assert_cmpuint(spans->len, ==, MILTER_MIME_MAX_PARTS);
	for (guint i = 0; i < spans->len; i++) {
		MilterMimeSpan part = g_array_index(spans, MilterMimeSpan, i);
		g_autofree char *want = g_strdup_printf("part %u", i);

		g_assert_cmpmem(part.data, part.len, want, strlen(want));
	}
	none = milter_mime_multipart_split((MilterMimeSpan){over->str, over->len}, "b", &error);
	g_assert_null(none);
	g_assert_error(error, MILTER_MIME_ERROR, MILTER_MIME_ERROR_LIMIT);
	g_assert_cmpstr(error->message, ==, "multipart body has more than 1000 parts");
}

/*
 * Lines that almost match a long boundary, and a long line of dashes: a scan that restarts
 * at each near miss would take minutes here; a linear one takes milliseconds.
 */
static void
test_split_linear(void)
{
	const char *boundary = BOUNDARY_70;
	g_autoptr(GString) body = g_string_new("--" BOUNDARY_70 "\r\n");
	g_autoptr(GArray) spans = NULL;
	g_autoptr(GTimer) timer = g_timer_new();

	for (guint i = 0; i < 100000; i++)
		g_string_append(body, "--" BOUNDARY_70 "x\r\n");
	for (guint i = 0; i < 4000000; i++)
		g_string_append_c(body, '-');
	g_string_append(body, "\r\n--" BOUNDARY_70 "--\r\n");
	spans = milter_mime_multipart_split((MilterMimeSpan){body->str, body->len}, boundary, NULL);
	g_assert_nonnull(spans);
	g_assert_cmpuint(spans->len, ==, 1);
	g_assert_cmpuint(g_array_index(spans, MilterMimeSpan, 0).len, ==,
	                 body->len - strlen(BOUNDARY_70) * 2 - 12);
	g_assert_cmpfloat(g_timer_elapsed(timer, NULL), <, 10.0);
}

/* ---- transfer decoding ---- */

typedef struct {
	const char *cte; /* NULL: no Content-Transfer-Encoding field */
	const char *body;
	gsize body_len; /* 0: strlen */
	const char *out;
	gsize out_len;       /* 0: strlen */
	const char *message; /* set: an error, with this message */
	MilterMimeError code;
} DecodeCase;

static const DecodeCase decode_cases[] = {
        {"base64", "SGVsbG8=", 0, "Hello", 0},
        {"base64", "SGVs\r\nbG8s\r\nIHdv\r\ncmxk\r\n", 0, "Hello, world", 0},
        {"base64", "SGVs\nbG8s\n", 0, "Hello,", 0},
        {"base64", " SGVs bG8s\tIHdv cmxk \r\n\r\n", 0, "Hello, world", 0},
        {"BASE64", "QQ==", 0, "A", 0},
        {"  Base64 \t", "QUI=", 0, "AB", 0},
        {"base64", "QUJD", 0, "ABC", 0},
        {"base64", "AAEC/w==", 0, "\x00\x01\x02\xff", 4},
        {"base64", "+/+/", 0, "\xfb\xff\xbf", 0},
        {"base64", "", 0, "", 0},
        {"base64", "\r\n", 0, "", 0},
        {"base64", "SGVs*G8=", 0, NULL, 0, "invalid base64 character 0x2A at offset 4",
         MILTER_MIME_ERROR_ENCODING},
        {"base64", "SGVs\r\nbG8-", 0, NULL, 0, "invalid base64 character 0x2D at offset 9",
         MILTER_MIME_ERROR_ENCODING},
        {"base64", "QQ==\0", 5, NULL, 0, "invalid base64 character 0x00 at offset 4",
         MILTER_MIME_ERROR_ENCODING},
        {"base64", "SGVsbG8", 0, NULL, 0, "base64 length 7 is not a multiple of 4",
         MILTER_MIME_ERROR_ENCODING},
        {"base64", "SGVs\r\nbG8\r\n", 0, NULL, 0, "base64 length 7 is not a multiple of 4",
         MILTER_MIME_ERROR_ENCODING},
        {"base64", "QQ==QUJD", 0, NULL, 0, "base64 data after padding at offset 4",
         MILTER_MIME_ERROR_ENCODING},
        {"base64", "QQ==\r\nQUJD", 0, NULL, 0, "base64 data after padding at offset 6",
         MILTER_MIME_ERROR_ENCODING},
        {"base64", "QUI=QUJD", 0, NULL, 0, "base64 data after padding at offset 4",
         MILTER_MIME_ERROR_ENCODING},
        {"base64", "QQ===", 0, NULL, 0, "base64 padding out of place at offset 4",
         MILTER_MIME_ERROR_ENCODING},
        {"base64", "Q===", 0, NULL, 0, "base64 padding out of place at offset 1",
         MILTER_MIME_ERROR_ENCODING},
        {"base64", "QQ=A", 0, NULL, 0, "base64 data after padding at offset 3",
         MILTER_MIME_ERROR_ENCODING},
        {"base64", "====", 0, NULL, 0, "base64 padding out of place at offset 0",
         MILTER_MIME_ERROR_ENCODING},
        {"base64", "QQ=", 0, NULL, 0, "base64 length 3 is not a multiple of 4",
         MILTER_MIME_ERROR_ENCODING},
        {NULL, "as is\r\n=3D\r\n", 0, "as is\r\n=3D\r\n", 0},
        {"7bit", "as is\r\n", 0, "as is\r\n", 0},
        {"8BIT", "caf\xc3\xa9\r\n", 0, "caf\xc3\xa9\r\n", 0},
        {"binary", "a\0b", 3, "a\0b", 3},
        {"quoted-printable", "a=3Db", 0, NULL, 0,
         "Content-Transfer-Encoding quoted-printable is not allowed here",
         MILTER_MIME_ERROR_ENCODING},
        {"x-uuencode", "begin 644 x", 0, NULL, 0,
         "Content-Transfer-Encoding x-uuencode is not allowed here", MILTER_MIME_ERROR_ENCODING},
        {"", "x", 0, NULL, 0, "Content-Transfer-Encoding  is not allowed here",
         MILTER_MIME_ERROR_ENCODING},
};

static void
test_decode_table(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(decode_cases); i++) {
		const DecodeCase *c = &decode_cases[i];
		gsize len = c->body_len != 0 ? c->body_len : strlen(c->body);
		g_autofree char *data = exact_copy(c->body, len);
		MilterMimeHeader field = {(char *)"Content-Transfer-Encoding", (char *)c->cte};
		g_autoptr(MilterMimeEntity) entity =
		        milter_mime_entity_new(&field, c->cte != NULL ? 1 : 0, data, len);
		g_autoptr(GError) error = NULL;
		g_autoptr(GBytes) out = milter_mime_entity_decode(entity, &error);

		g_test_message("case %" G_GSIZE_FORMAT ": %s", i, c->body);
		if (c->message != NULL) {
			g_assert_null(out);
			g_assert_error(error, MILTER_MIME_ERROR, (gint)c->code);
			g_assert_cmpstr(error->message, ==, c->message);
			continue;
		}
		g_assert_no_error(error);
		g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out), c->out,
		                c->out_len != 0 ? c->out_len : strlen(c->out));
	}
}

/* The field as the header parser leaves it: folded, blanks around it. */
static void
test_decode_parsed(void)
{
	const char *in = "Content-Type: application/pkcs7-signature\r\n"
	                 "Content-Transfer-Encoding:\r\n  Base64 \r\n\r\n"
	                 "SGVs\r\nbG8=\r\n";
	g_autoptr(MilterMimeEntity) entity = milter_mime_entity_parse(in, strlen(in), NULL);
	g_autoptr(GBytes) out = milter_mime_entity_decode(entity, NULL);

	g_assert_nonnull(out);
	g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out), "Hello", 5);
}

/* ---- addresses ---- */

typedef struct {
	const char *in;
	const char *out;
} AddressCase;

static const AddressCase address_cases[] = {
        {"Name <a@B.Example>", "a@b.example"},
        {"a@b.example (comment)", "a@b.example"},
        {"(comment) a@B.example", "a@b.example"},
        {"\"Doe, J\" <j@x.jp>", "j@x.jp"},
        {"\"a <b@c>\" <d@E>", "d@e"},
        {"<>", NULL},
        {"\"Someone\" <>", NULL},
        {"undisclosed", NULL},
        {"undisclosed-recipients:;", NULL},
        {"", NULL},
        {"a@b, c@d", "a@b"},
        {"a@b, C <c@d>", "a@b"},
        {"\"a b\"@X.jp", "\"a b\"@x.jp"},
        {"Name <\"a b\"@X.JP>", "\"a b\"@x.jp"},
        {"<\"a@b\"@X.jp>", "\"a@b\"@x.jp"},
        {"Mixed.Case@Example.COM", "Mixed.Case@example.com"},
        {"<  a@b  >", "a@b"},
        {"<@route.example,@r2:a@b>", "a@b"},
        {"Group: a@b, c@d;", "a@b"},
        {"\"a@b.example\"", "a@b.example"},
        {"'a@b.example'", "a@b.example"},
        {"John Doe a@B", "a@b"},
        {"Name <a@b", "a@b"},
        {"a@[192.0.2.1]", "a@[192.0.2.1]"},
        {"@b", NULL},
        {"a@", NULL},
        {"<a>", NULL},
        {"a@b@c", NULL},
        {"(a@b) c", NULL},
        {"(unterminated a@b", NULL},
        {"\"unterminated a@b", NULL},
        {"Name (x <y@z>) <a@b>", "a@b"},
        {"B\xc3\xbcro <b@\xc3\x9c.example>", "b@\xc3\x9c.example"},
        {NULL, NULL},
};

static void
test_address_table(void)
{
	for (gsize i = 0; i < G_N_ELEMENTS(address_cases); i++) {
		const AddressCase *c = &address_cases[i];
		g_autofree char *address = milter_mime_address(c->in);

		g_test_message("case %" G_GSIZE_FORMAT ": %s", i, c->in != NULL ? c->in : "(NULL)");
		g_assert_cmpstr(address, ==, c->out);
	}
}

/* ---- a real signed message ---- */

static void
run_or_fail(const char *dir, const char *const *argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *err = NULL;
	int status = 0;

	g_spawn_sync(dir, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
	             NULL, NULL, NULL, &err, &status, &error);
	g_assert_no_error(error);
	if (!g_spawn_check_wait_status(status, &error))
		g_test_message("%s failed: %s", argv[0], err);
	g_assert_no_error(error);
}

/* TRUE if openssl says the DER signature in dir/sig.der is good for dir/part0.bin. */
static gboolean
verify(const char *dir)
{
	const char *argv[] = {"openssl",   "cms",  "-verify",   "-noverify", "-binary",
	                      "-inform",   "DER",  "-in",       "sig.der",   "-content",
	                      "part0.bin", "-out", "/dev/null", NULL};
	g_autoptr(GError) error = NULL;
	int status = 0;

	g_spawn_sync(dir, (char **)argv, NULL,
	             G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
	             NULL, NULL, NULL, NULL, &status, &error);
	g_assert_no_error(error);
	return g_spawn_check_wait_status(status, NULL);
}

/* What Postfix hands a milter: every line end CRLF. */
static GString *
to_crlf(const char *in, gsize len)
{
	GString *out = g_string_sized_new(len + len / 16);

	for (gsize i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			g_string_append_c(out, '\r');
		g_string_append_c(out, in[i]);
	}
	return out;
}

static void
write_file(const char *dir, const char *name, const void *data, gsize len)
{
	g_autofree char *path = g_build_filename(dir, name, NULL);
	g_autoptr(GError) error = NULL;

	g_file_set_contents(path, data, (gssize)len, &error);
	g_assert_no_error(error);
}

/* Splits a signed message, then has openssl check part 0 against part 1's signature. */
static void
check_signed(const char *dir, const char *message, gsize len)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(MilterMimeEntity) top = milter_mime_entity_parse(message, len, &error);
	g_autoptr(MilterMimeContentType) ct = NULL;
	g_autoptr(MilterMimeEntity) sig = NULL;
	g_autoptr(GArray) parts = NULL;
	g_autoptr(GBytes) der = NULL;
	g_autofree char *altered = NULL;
	MilterMimeSpan part0, part1;

	g_assert_no_error(error);
	ct = milter_mime_content_type_parse(milter_mime_entity_header(top, "Content-Type"));
	g_assert_true(milter_mime_content_type_is(ct, "multipart", "signed"));
	g_assert_cmpstr(milter_mime_content_type_param(ct, "protocol"), ==,
	                "application/pkcs7-signature");
	parts = milter_mime_multipart_split(top->body,
	                                    milter_mime_content_type_param(ct, "boundary"), &error);
	g_assert_no_error(error);
	g_assert_cmpuint(parts->len, ==, 2);
	part0 = g_array_index(parts, MilterMimeSpan, 0);
	part1 = g_array_index(parts, MilterMimeSpan, 1);
	g_assert_true(span_within(part0, top->body) && span_within(part1, top->body));

	sig = milter_mime_entity_parse(part1.data, part1.len, &error);
	g_assert_no_error(error);
	der = milter_mime_entity_decode(sig, &error);
	g_assert_no_error(error);
	write_file(dir, "sig.der", g_bytes_get_data(der, NULL), g_bytes_get_size(der));
	write_file(dir, "part0.bin", part0.data, part0.len);
	g_assert_true(verify(dir));

	/* one byte different, and the same signature no longer fits */
	altered = g_memdup2(part0.data, part0.len);
	altered[part0.len / 2] ^= 0x01;
	write_file(dir, "part0.bin", altered, part0.len);
	g_assert_false(verify(dir));
	/* nor does the part with the line end that belongs to the delimiter */
	write_file(dir, "part0.bin", part0.data, part0.len + 1);
	g_assert_false(verify(dir));
}

static void
remove_dir(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		g_autofree char *path = g_build_filename(dir, name, NULL);

		g_assert_cmpint(g_remove(path), ==, 0);
	}
	g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void
test_split_openssl_signed(void)
{
	const char *req[] = {"openssl",
	                     "req",
	                     "-x509",
	                     "-newkey",
	                     "ec",
	                     "-pkeyopt",
	                     "ec_paramgen_curve:P-256",
	                     "-nodes",
	                     "-subj",
	                     "/CN=t",
	                     "-keyout",
	                     "key.pem",
	                     "-out",
	                     "cert.pem",
	                     "-days",
	                     "1",
	                     NULL};
	const char *sign[] = {"openssl",  "cms",    "-sign",   "-in",  "content.txt", "-signer",
	                      "cert.pem", "-inkey", "key.pem", "-out", "signed.eml",  NULL};
	/* blanks at line ends and a line like a delimiter: what a careless split would break */
	const char content[] = "Content-Type: text/plain; charset=us-ascii\n\n"
	                       "Hello,  \nthe next line looks like a delimiter:\n"
	                       "------not-it\n\n-- \nsignature\n";
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("hk-test-mime-XXXXXX", &error);
	g_autofree char *eml_path = NULL;
	g_autofree char *eml = NULL;
	g_autoptr(GString) crlf = NULL;
	gsize len = 0;

	g_assert_no_error(error);
	write_file(dir, "content.txt", content, sizeof(content) - 1);
	run_or_fail(dir, req);
	run_or_fail(dir, sign);
	eml_path = g_build_filename(dir, "signed.eml", NULL);
	g_file_get_contents(eml_path, &eml, &len, &error);
	g_assert_no_error(error);

	/* as openssl writes it (LF outside, CRLF in the signed part) and as a milter sees it */
	check_signed(dir, eml, len);
	crlf = to_crlf(eml, len);
	g_assert_cmpuint(crlf->len, >, len);
	check_signed(dir, crlf->str, crlf->len);
	remove_dir(dir);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);

	g_test_add_func("/mime/header/table", test_header_table);
	g_test_add_func("/mime/header/errors", test_header_errors);
	g_test_add_func("/mime/header/limit", test_header_limit);
	g_test_add_func("/mime/header/lookup", test_header_lookup);
	g_test_add_func("/mime/entity/new", test_entity_new);
	g_test_add_func("/mime/entity/null-empty", test_null_empty);
	g_test_add_func("/mime/content-type/table", test_content_type_table);
	g_test_add_func("/mime/content-type/lookup", test_content_type_lookup);
	g_test_add_func("/mime/content-type/many-sections", test_content_type_many_sections);
	g_test_add_func("/mime/multipart/table", test_split_table);
	g_test_add_func("/mime/multipart/binary", test_split_binary);
	g_test_add_func("/mime/multipart/errors", test_split_errors);
	g_test_add_func("/mime/multipart/limit", test_split_limit);
	g_test_add_func("/mime/multipart/linear", test_split_linear);
	g_test_add_func("/mime/multipart/openssl-signed", test_split_openssl_signed);
	g_test_add_func("/mime/decode/table", test_decode_table);
	g_test_add_func("/mime/decode/parsed", test_decode_parsed);
	g_test_add_func("/mime/address/table", test_address_table);

	return g_test_run();
}
