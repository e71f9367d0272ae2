-- max_smime_size = 1k: a larger message passes unchecked, unless a signature is required
-- or it is for the gateway; broken S/MIME is permerror, never a crash.
dofile(os.getenv("HANKO_SRC") .. "/tests/milter/common.lua")

local function inline(conn, sender, rcpt, ctype, body, cte)
	mt.macro(conn, SMFIC_MAIL, "i", "TESTQID")
	hk.check(mt.mailfrom(conn, sender) == nil, "mailfrom")
	hk.check(mt.rcptto(conn, rcpt) == nil, "rcpt")
	hk.check(mt.header(conn, "From", "Alice <alice@example.jp>") == nil, "from")
	hk.check(mt.header(conn, "Content-Type", ctype) == nil, "content-type")
	if cte then
		hk.check(mt.header(conn, "Content-Transfer-Encoding", cte) == nil, "cte")
	end
	hk.check(mt.bodystring(conn, body) == nil, "body")
	hk.check(mt.eom(conn) == nil, "eom")
	return mt.getreply(conn)
end

hk.run(function()
	local conn = hk.connect()
	hk.check(hk.send(conn, "<alice@example.jp>", { "<anyone@example.jp>" }, "signed.eml")
		== SMFIR_CONTINUE, "large message not accepted")
	hk.check(not mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results"), "large message judged")
	mt.disconnect(conn)

	conn = hk.connect()
	hk.check(hk.send(conn, "<alice@example.jp>", { "<secure@example.jp>" }, "signed.eml")
		== SMFIR_REPLYCODE, "large message with a required signature accepted")
	hk.expect_reply(conn, "552", "5.3.4", "Message too big for S/MIME processing (at most 1024 bytes)")
	mt.disconnect(conn)

	-- no closing delimiter
	conn = hk.connect()
	hk.check(inline(conn, "<alice@example.jp>", "<anyone@example.jp>",
		'multipart/signed; protocol="application/pkcs7-signature"; boundary="b1"',
		"--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\n") == SMFIR_CONTINUE, "broken: refused")
	hk.check(hk.auth_results(conn):find("smime=permerror", 1, true), "broken: not permerror")
	mt.disconnect(conn)

	-- not base64
	conn = hk.connect()
	hk.check(inline(conn, "<alice@example.jp>", "<secure@example.jp>",
		"application/pkcs7-mime; smime-type=signed-data",
		"MIIB*not base64*\r\n", "base64") == SMFIR_REPLYCODE, "bad base64 with a required signature accepted")
	hk.expect_reply(conn, "550", "5.7.1", "S/MIME signature invalid: the S/MIME body cannot "
		.. "be decoded: invalid base64 character 0x2A at offset 4")
	mt.disconnect(conn)
end)
