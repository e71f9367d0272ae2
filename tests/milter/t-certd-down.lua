-- certd is down (on_certd_down = tempfail): a message whose signer must be checked, or
-- whose sender's requirement must be asked, is deferred; nothing is lost.
dofile(os.getenv("HANKO_SRC") .. "/tests/milter/common.lua")

hk.run(function()
	local cases = {
		{ "signed.eml", "<alice@example.jp>", "Signature check unavailable, try again later" },
		{ "unsigned.eml", "<bob@example.jp>", "Signature requirement unknown, try again later" },
	}
	for _, case in ipairs(cases) do
		local conn = hk.connect()
		hk.check(hk.send(conn, case[2], { "<anyone@example.jp>" }, case[1]) == SMFIR_REPLYCODE,
			case[1] .. ": not deferred")
		hk.expect_reply(conn, "451", "4.7.0", case[3])
		mt.disconnect(conn)
	end
end)
