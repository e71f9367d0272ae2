/*
 * test-policyd-codec: the Postfix policy protocol codec, as bytes in and bytes out.
 *
 * Talks to: policyd-codec.c only. Must never: need a socket or a daemon.
 */
#include "policyd-codec.h"

#include <string.h>

#define POSTFIX_REQUEST                                                                            \
	"request=smtpd_access_policy\n"                                                            \
	"protocol_state=RCPT\n"                                                                    \
	"protocol_name=ESMTP\n"                                                                    \
	"client_address=192.0.2.7\n"                                                               \
	"client_name=mua.example\n"                                                                \
	"reverse_client_name=mua.example\n"                                                        \
	"helo_name=laptop\n"                                                                       \
	"sender=alice@example.org\n"                                                               \
	"recipient=bob@example.net\n"                                                              \
	"recipient_count=0\n"                                                                      \
	"queue_id=\n"                                                                              \
	"instance=123.456.7\n"                                                                     \
	"size=0\n"                                                                                 \
	"etrn_domain=\n"                                                                           \
	"stress=\n"                                                                                \
	"sasl_method=\n"                                                                           \
	"sasl_username=\n"                                                                         \
	"sasl_sender=\n"                                                                           \
	"ccert_subject=alice\n"                                                                    \
	"ccert_issuer=hanko CA\n"                                                                  \
	"ccert_fingerprint=AB:CD:EF\n"                                                             \
	"ccert_pubkey_fingerprint=01:02:03\n"                                                      \
	"encryption_protocol=TLSv1.3\n"                                                            \
	"encryption_cipher=TLS_AES_256_GCM_SHA384\n"                                               \
	"encryption_keysize=256\n"                                                                 \
	"policy_context=\n"                                                                        \
	"server_address=127.0.0.1\n"                                                               \
	"server_port=25\n"                                                                         \
	"compatibility_level=3.6\n"                                                                \
	"mail_version=3.7.11\n"                                                                    \
	"\n"

static void
test_full_request(void)
{
	g_auto(PolicydRequest) req = {0};
	g_autoptr(GError) error = NULL;

	g_assert_true(
	        policyd_request_parse(POSTFIX_REQUEST, strlen(POSTFIX_REQUEST), &req, &error));
	g_assert_no_error(error);
	g_assert_cmpstr(req.request, ==, "smtpd_access_policy");
	g_assert_cmpstr(req.protocol_state, ==, "RCPT");
	g_assert_cmpstr(req.protocol_name, ==, "ESMTP");
	g_assert_cmpstr(req.client_address, ==, "192.0.2.7");
	g_assert_cmpstr(req.client_name, ==, "mua.example");
	g_assert_cmpstr(req.helo_name, ==, "laptop");
	g_assert_cmpstr(req.sender, ==, "alice@example.org");
	g_assert_cmpstr(req.recipient, ==, "bob@example.net");
	g_assert_cmpstr(req.queue_id, ==, ""); /* empty is tolerated, and kept empty */
	g_assert_cmpstr(req.instance, ==, "123.456.7");
	g_assert_cmpstr(req.sasl_username, ==, "");
	g_assert_cmpstr(req.ccert_subject, ==, "alice");
	g_assert_cmpstr(req.ccert_fingerprint, ==, "AB:CD:EF");
	g_assert_cmpstr(req.ccert_pubkey_fingerprint, ==, "01:02:03");
	g_assert_cmpstr(req.encryption_protocol, ==, "TLSv1.3");
}

/* A request cut anywhere and fed in pieces decodes the same, and what follows it stays. */
static void
test_split_feeds(void)
{
	const char *two = "sender=a@x\nrecipient=b@y\n\nsender=c@z\n\n";
	gsize len = strlen(two);

	for (gsize cut = 0; cut <= len; cut++) {
		g_auto(PolicydDecoder) dec = {0};
		g_auto(PolicydRequest) first = {0};
		g_auto(PolicydRequest) second = {0};
		gsize used = 0, pos = 0;
		PolicydDecodeStatus st;

		policyd_decoder_init(&dec);
		st = policyd_decoder_feed(&dec, two, cut, &used, &first, NULL);
		pos = used;
		if (st == POLICYD_DECODE_NEED_MORE) {
			g_assert_cmpuint(used, ==, cut);
			st = policyd_decoder_feed(&dec, two + pos, len - pos, &used, &first, NULL);
			pos += used;
		}
		g_assert_cmpint(st, ==, POLICYD_DECODE_READY);
		g_assert_cmpstr(first.sender, ==, "a@x");
		g_assert_cmpstr(first.recipient, ==, "b@y");
		st = policyd_decoder_feed(&dec, two + pos, len - pos, &used, &second, NULL);
		g_assert_cmpint(st, ==, POLICYD_DECODE_READY);
		g_assert_cmpstr(second.sender, ==, "c@z");
		g_assert_null(second.recipient); /* nothing carries over between requests */
		g_assert_cmpuint(pos + used, ==, len);
	}
}

static void
test_tolerant(void)
{
	static const struct {
		const char *input;
		const char *sender;
	} cases[] = {
	        {"\n", NULL},                           /* no attributes at all */
	        {"x-unknown=1\nsender=s@x\n\n", "s@x"}, /* unknown attributes ignored */
	        {"sender=\n\n", ""},                    /* empty value */
	        {"sender=a@x\nsender=b@x\n\n", "b@x"},  /* the last one wins */
	        {"sender=a=b@x\n\n", "a=b@x"},          /* '=' in a value */
	        {"sender=s@x\r\n\r\n", "s@x"},          /* CRLF */
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_auto(PolicydRequest) req = {0};
		g_autoptr(GError) error = NULL;

		g_test_message("case %u: %s", i, cases[i].input);
		g_assert_true(policyd_request_parse(cases[i].input, strlen(cases[i].input), &req,
		                                    &error));
		g_assert_no_error(error);
		g_assert_cmpstr(req.sender, ==, cases[i].sender);
	}
}

static void
test_malformed(void)
{
	g_autoptr(GString) long_line = g_string_new("sender=");
	g_autoptr(GString) many = g_string_new(NULL);
	g_autoptr(GString) just_fits = g_string_new("sender=");
	struct {
		const char *input;
		int code;
	} cases[] = {
	        {"no equals sign\n\n", POLICYD_CODEC_ERROR_NO_EQUALS},
	        {"=value\n\n", POLICYD_CODEC_ERROR_NO_EQUALS},
	        {NULL, POLICYD_CODEC_ERROR_LINE_TOO_LONG},
	        {NULL, POLICYD_CODEC_ERROR_TOO_MANY_ATTRS},
	        {"sender=a@x\n", POLICYD_CODEC_ERROR_INCOMPLETE},
	};

	while (long_line->len <= POLICYD_MAX_LINE)
		g_string_append_c(long_line, 'x');
	g_string_append(long_line, "\n\n");
	cases[2].input = long_line->str;
	for (guint i = 0; i <= POLICYD_MAX_ATTRS; i++)
		g_string_append_printf(many, "a%u=%u\n", i, i);
	g_string_append(many, "\n");
	cases[3].input = many->str;

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_auto(PolicydRequest) req = {0};
		g_autoptr(GError) error = NULL;

		g_test_message("case %u", i);
		g_assert_false(policyd_request_parse(cases[i].input, strlen(cases[i].input), &req,
		                                     &error));
		g_assert_error(error, POLICYD_CODEC_ERROR, cases[i].code);
	}

	/* the limits themselves are allowed */
	while (just_fits->len < POLICYD_MAX_LINE)
		g_string_append_c(just_fits, 'x');
	g_string_append(just_fits, "\n\n");
	{
		g_auto(PolicydRequest) req = {0};

		g_assert_true(policyd_request_parse(just_fits->str, just_fits->len, &req, NULL));
		g_assert_cmpuint(strlen(req.sender), ==, POLICYD_MAX_LINE - 7);
	}
}

/* A line that never ends is refused as soon as it is too long, not buffered forever. */
static void
test_endless_line(void)
{
	g_auto(PolicydDecoder) dec = {0};
	g_auto(PolicydRequest) req = {0};
	g_autoptr(GError) error = NULL;
	char chunk[1000];
	gsize used;
	PolicydDecodeStatus st = POLICYD_DECODE_NEED_MORE;

	memset(chunk, 'x', sizeof(chunk));
	policyd_decoder_init(&dec);
	for (guint i = 0; i < 100 && st == POLICYD_DECODE_NEED_MORE; i++)
		st = policyd_decoder_feed(&dec, chunk, sizeof(chunk), &used, &req, &error);
	g_assert_cmpint(st, ==, POLICYD_DECODE_ERROR);
	g_assert_error(error, POLICYD_CODEC_ERROR, POLICYD_CODEC_ERROR_LINE_TOO_LONG);
	g_assert_cmpuint(dec.line->len, <=, POLICYD_MAX_LINE + 1);
}

/* Repeating long attributes keeps one value per field, not every value sent. */
static void
test_repeats_bounded(void)
{
	g_auto(PolicydDecoder) dec = {0};
	g_autoptr(GString) input = g_string_new(NULL);
	g_autoptr(GString) value = g_string_new(NULL);
	gsize used = 0, pos = 0;
	gsize most = 0;

	while (value->len < POLICYD_MAX_LINE - 20)
		g_string_append_c(value, 'v');
	for (guint i = 0; i < POLICYD_MAX_ATTRS - 2; i++)
		g_string_append_printf(input, "%s=%u%s\n", i % 2 ? "sender" : "recipient", i,
		                       value->str);
	{
		static const char last[] = "sender=last@x\nrecipient=r\0hidden\n\n";

		g_string_append_len(input, last, sizeof(last) - 1);
	}
	policyd_decoder_init(&dec);
	/* one line at a time, to see what the decoder holds in between */
	while (pos < input->len) {
		g_auto(PolicydRequest) req = {0};
		const char *nl = memchr(input->str + pos, '\n', input->len - pos);
		gsize len = (gsize)(nl - (input->str + pos)) + 1;
		PolicydDecodeStatus st =
		        policyd_decoder_feed(&dec, input->str + pos, len, &used, &req, NULL);

		g_assert_cmpuint(used, ==, len);
		most = MAX(most, dec.values->len);
		pos += len;
		if (st == POLICYD_DECODE_READY) {
			g_assert_cmpuint(pos, ==, input->len);
			g_assert_cmpstr(req.sender, ==, "last@x");
			g_assert_cmpstr(req.recipient, ==, "r"); /* a NUL byte ends a value */
		} else {
			g_assert_cmpint(st, ==, POLICYD_DECODE_NEED_MORE);
		}
	}
	/* two live values and at most the dead bytes allowed before a compaction */
	g_assert_cmpuint(most, <=,
	                 2 * (POLICYD_MAX_LINE + 1) + 4 * POLICYD_MAX_LINE + POLICYD_MAX_LINE + 1);
	g_assert_cmpuint(dec.values->len, ==, 0);
}

static void
test_reply(void)
{
	static const struct {
		const char *action, *reply;
	} cases[] = {
	        {"OK", "action=OK\n\n"},
	        {"DUNNO", "action=DUNNO\n\n"},
	        {"REJECT 5.7.1 <a@x>: no", "action=REJECT 5.7.1 <a@x>: no\n\n"},
	        {"REJECT a\nb\rc", "action=REJECT a b c\n\n"},
	        {"", "action=\n\n"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *reply = policyd_reply_format(cases[i].action);

		g_assert_cmpstr(reply, ==, cases[i].reply);
	}
}

static void
test_set(void)
{
	g_auto(PolicydRequest) req = {0};

	g_assert_true(policyd_request_set(&req, "sender", "a@x"));
	g_assert_true(policyd_request_set(&req, "sender", "b@x"));
	g_assert_false(policyd_request_set(&req, "no_such_attribute", "v"));
	g_assert_cmpstr(req.sender, ==, "b@x");
	g_assert_true(policyd_request_set(&req, "recipient", NULL));
	g_assert_null(req.recipient);
}

/* A decoded request whose fields are then set one by one frees both kinds. */
static void
test_set_after_parse(void)
{
	static const char input[] = "sender=a@x\nrecipient=r@x\n\n";
	g_auto(PolicydRequest) req = {0};

	g_assert_true(policyd_request_parse(input, sizeof(input) - 1, &req, NULL));
	g_assert_true(policyd_request_set(&req, "sender", "b@x"));
	g_assert_cmpstr(req.sender, ==, "b@x");
	g_assert_cmpstr(req.recipient, ==, "r@x");
	policyd_request_clear(&req);
	g_assert_null(req.sender);
	g_assert_null(req.recipient);
	policyd_request_clear(&req); /* cleared twice: nothing left to free */
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/policyd/codec/full-request", test_full_request);
	g_test_add_func("/policyd/codec/split-feeds", test_split_feeds);
	g_test_add_func("/policyd/codec/tolerant", test_tolerant);
	g_test_add_func("/policyd/codec/malformed", test_malformed);
	g_test_add_func("/policyd/codec/endless-line", test_endless_line);
	g_test_add_func("/policyd/codec/repeats-bounded", test_repeats_bounded);
	g_test_add_func("/policyd/codec/reply", test_reply);
	g_test_add_func("/policyd/codec/set", test_set);
	g_test_add_func("/policyd/codec/set-after-parse", test_set_after_parse);
	return g_test_run();
}
