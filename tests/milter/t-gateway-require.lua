-- The gateway requires a signature by default: encrypted but unsigned mail is refused
-- with the fax service's words; signed mail passes.
dofile(os.getenv("HANKO_SRC") .. "/tests/milter/common.lua")

hk.run(function()
	local conn = hk.connect()
	hk.check(hk.send(conn, "<alice@example.jp>", { "<send@fax.example.jp>" }, "enc-plain.eml")
		== SMFIR_REPLYCODE, "unsigned gateway mail accepted")
	hk.expect_reply(conn, "550", "5.7.1", "Cannot authenticate - signature not found")
	mt.disconnect(conn)
	conn = hk.connect()
	hk.check(hk.send(conn, "<alice@example.jp>", { "<send@fax.example.jp>" }, "signed.eml")
		== SMFIR_CONTINUE, "signed gateway mail refused")
	hk.check(hk.auth_results(conn):find("smime=pass", 1, true), "not pass")
	mt.disconnect(conn)
end)
