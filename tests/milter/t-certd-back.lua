-- certd is back: the milter reconnects by itself.
dofile(os.getenv("HANKO_SRC") .. "/tests/milter/common.lua")

hk.run(function()
	local conn = hk.connect()
	hk.check(hk.send(conn, "<alice@example.jp>", { "<anyone@example.jp>" }, "signed.eml")
		== SMFIR_CONTINUE, "not accepted after certd came back")
	hk.check(hk.auth_results(conn):find("smime=pass", 1, true), "not pass")
	mt.disconnect(conn)
end)
