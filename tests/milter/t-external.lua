-- An external issuer (ca_file) with its CRL (crl_file): erin's signature passes, dave's
-- certificate is on the CRL; hanko's own signers still pass.
dofile(os.getenv("HANKO_SRC") .. "/tests/milter/common.lua")

local function result(who)
	local conn = hk.connect()
	hk.check(hk.send(conn, "<" .. who .. "@ext.example.jp>", { "<anyone@example.jp>" },
		"ext-" .. who .. ".eml") == SMFIR_CONTINUE, who .. ": not accepted")
	local ar = hk.auth_results(conn)
	mt.disconnect(conn)
	return ar
end

hk.run(function()
	local erin = result("erin")
	hk.check(erin:find("smime=pass", 1, true), "erin: not pass")
	hk.check(erin:find('body.smime-issuer="CN=External Test CA"', 1, true), "erin: issuer")
	-- hanko's CA publishes no CRL here: its signers are not failed for the missing CRL
	local conn = hk.connect()
	hk.send(conn, "<alice@example.jp>", { "<anyone@example.jp>" }, "signed.eml")
	hk.check(hk.auth_results(conn):find("smime=pass", 1, true), "alice: not pass")
	mt.disconnect(conn)
	hk.check(result("dave"):find(
		'smime=fail reason="certificate not trusted: certificate revoked"', 1, true),
		"dave: not failed as revoked")
end)
