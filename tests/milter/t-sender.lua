-- signer_address_match = from_and_sender: the signer's certificate must carry the
-- envelope sender too.
dofile(os.getenv("HANKO_SRC") .. "/tests/milter/common.lua")

local function result(sender)
	local conn = hk.connect()
	hk.check(hk.send(conn, sender, { "<anyone@example.jp>" }, "signed.eml") == SMFIR_CONTINUE,
		"not accepted")
	local ar = hk.auth_results(conn)
	mt.disconnect(conn)
	return ar
end

hk.run(function()
	hk.check(result("<alice@example.jp>"):find("smime=pass", 1, true), "own sender: not pass")
	hk.check(result("<list-bounces@example.jp>"):find(
		'smime=fail reason="the signer\'s certificate is not for the envelope sender '
		.. 'list-bounces@example.jp"', 1, true), "other sender: not fail")
end)
