-- The gateway after certd assigned its EC identity: an ECDH recipient is opened, and the
-- RSA one no longer matches.
dofile(os.getenv("HANKO_SRC") .. "/tests/milter/common.lua")

hk.run(function()
	local conn = hk.connect()
	hk.check(hk.send(conn, "<alice@example.jp>", { "<send@fax.example.jp>" }, "enc-plain-ec.eml")
		== SMFIR_CONTINUE, "enc-plain-ec refused")
	hk.check(mt.eom_check(conn, MT_BODYCHANGE, "FAX test: 03-1111-2222\r\n"), "not decrypted")
	mt.disconnect(conn)
	conn = hk.connect()
	hk.check(hk.send(conn, "<alice@example.jp>", { "<send@fax.example.jp>" }, "enc-plain.eml")
		== SMFIR_REPLYCODE, "enc-plain accepted with the EC identity")
	hk.expect_reply(conn, "550", "5.7.5",
		"S/MIME decryption failed: not encrypted to the gateway's certificate")
	mt.disconnect(conn)
end)
