-- The gateway (gateway_address = send@fax.example.jp, certd's RSA identity assigned,
-- gateway_require_signature = no): AES-256-CBC and AES-128-GCM EnvelopedData are opened
-- and the decrypted entity replaces body and Content-* fields; the wrong key and damaged
-- data are refused; the gateway address does not share a transaction with others.
--
-- The messages here are encrypted but not signed: miltertest 2.11 overflows a buffer
-- when a filter replaces a body of more than a few hundred bytes, and a signed entity is
-- larger. Signed-then-encrypted mail is tested through the real Postfix.
dofile(os.getenv("HANKO_SRC") .. "/tests/milter/common.lua")

local GW = { "<send@fax.example.jp>" }

local function decrypted(file)
	local conn = hk.connect()
	hk.check(hk.send(conn, "<alice@example.jp>", GW, file) == SMFIR_CONTINUE, file .. ": refused")
	hk.check(mt.eom_check(conn, MT_BODYCHANGE, "FAX test: 03-1111-2222\r\n"),
		file .. ": body not replaced by the decrypted text")
	hk.check(mt.eom_check(conn, MT_HDRADD, "Content-Type", "text/plain; charset=utf-8"),
		file .. ": Content-Type not replaced")
	hk.check(mt.eom_check(conn, MT_HDRDELETE, "Content-Type"), file .. ": old Content-Type kept")
	hk.check(hk.auth_results(conn):find("smime=none", 1, true), file .. ": not none")
	mt.disconnect(conn)
end

local function refused(file, code, xcode, text)
	local conn = hk.connect()
	hk.check(hk.send(conn, "<alice@example.jp>", GW, file) == SMFIR_REPLYCODE, file .. ": accepted")
	hk.expect_reply(conn, code, xcode, text)
	mt.disconnect(conn)
end

hk.run(function()
	decrypted("enc-plain.eml")
	decrypted("enc-plain-gcm.eml")
	refused("enc-wrong.eml", "550", "5.7.5",
		"S/MIME decryption failed: not encrypted to the gateway's certificate")
	refused("enc-corrupt.eml", "550", "5.7.5",
		"S/MIME decryption failed: the encrypted data is damaged")

	-- one transaction, two kinds of recipient: the second is deferred
	local conn = hk.connect()
	mt.macro(conn, SMFIC_MAIL, "i", "TESTQID")
	hk.check(mt.mailfrom(conn, "<alice@example.jp>") == nil, "mailfrom")
	hk.check(mt.rcptto(conn, "<send@fax.example.jp>") == nil, "rcpt 1")
	hk.check(mt.getreply(conn) == SMFIR_CONTINUE, "gateway recipient refused")
	hk.check(mt.rcptto(conn, "<bob@example.jp>") == nil, "rcpt 2")
	hk.check(mt.getreply(conn) == SMFIR_REPLYCODE, "mixed recipients accepted")
	mt.disconnect(conn)
end)
