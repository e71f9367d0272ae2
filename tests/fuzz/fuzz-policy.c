/*
 * fuzz-policy: libFuzzer target for the Postfix policy codec (policyd-codec.c).
 *
 * Feeds the input to one decoder in pieces whose sizes come from the input's first byte,
 * as a socket would deliver it, decoding every request it completes and formatting a reply
 * for each; checks that the decoder never holds more than one line, and that a reply has
 * exactly one line break pair at its end.
 */
#include "policyd-codec.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_reply(const PolicydRequest *req)
{
	g_autofree char *reply = policyd_reply_format(req->sender ? req->sender : "DUNNO");
	size_t len = strlen(reply);

	if (len < 9 || strcmp(reply + len - 2, "\n\n") != 0 || memchr(reply, '\n', len - 2))
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_auto(PolicydDecoder) decoder = {0};
	size_t step, pos = 1;

	if (size == 0)
		return 0;
	step = (size_t)data[0] + 1;
	policyd_decoder_init(&decoder);
	while (pos < size) {
		size_t len = MIN(step, size - pos), used = 0;
		PolicydRequest req = {0};
		PolicydDecodeStatus st = policyd_decoder_feed(&decoder, (const char *)data + pos,
		                                              len, &used, &req, NULL);

		if (st == POLICYD_DECODE_ERROR)
			break;
		if (decoder.line->len > POLICYD_MAX_LINE + 1 || used > len)
			__builtin_trap();
		if (st == POLICYD_DECODE_READY)
			check_reply(&req);
		policyd_request_clear(&req);
		pos += used;
	}
	return 0;
}
