-- Verification: detached and opaque signatures pass with the signer in
-- Authentication-Results; what is wrong fails with the reason; unsigned is none; a forged
-- Authentication-Results claiming our authserv-id is removed. Default configuration.
dofile(os.getenv("HANKO_SRC") .. "/tests/milter/common.lua")

local function one(file, sender, extra)
	local conn = hk.connect()
	hk.check(hk.send(conn, sender or "<alice@example.jp>", { "<bob@example.jp>" }, file, extra)
		== SMFIR_CONTINUE, file .. ": not accepted")
	return conn, hk.auth_results(conn)
end

local function expect(file, pattern, sender)
	local conn, ar = one(file, sender)
	hk.check(ar:find(pattern, 1, true), file .. ": expected " .. pattern .. " in " .. ar)
	mt.disconnect(conn)
	return ar
end

hk.run(function()
	local ar = expect("signed.eml", "mx.example.jp; smime=pass")
	hk.check(ar:find("body.smime-identifier=alice@example.jp", 1, true), "identifier")
	hk.check(ar:find("body.smime-serial=", 1, true), "serial")
	hk.check(ar:find('body.smime-issuer="CN=hanko Test CA"', 1, true), "issuer")
	expect("opaque.eml", "smime=pass")
	expect("gpgsm.eml", "smime=pass") -- GnuPG's gpgsm as the signer
	expect("tampered.eml", 'smime=fail reason="the signature does not match the content"')
	expect("sha1.eml", 'smime=fail reason="signed with SHA1 (too weak; allow_sha1 = no)"')
	expect("revoked.eml", 'smime=fail reason="certificate revoked"', "<carol@example.jp>")
	expect("wrongfrom.eml",
		'smime=fail reason="the signer\'s certificate is not for the From address dave@example.jp"')
	expect("unsigned-alice.eml", "mx.example.jp; smime=none")

	-- a field claiming our verdict goes; another host's stays
	local conn = hk.connect()
	hk.send(conn, "<alice@example.jp>", { "<bob@example.jp>" }, "unsigned-alice.eml", {
		{ "Authentication-Results", "other.example.jp; smime=pass" },
		{ "Authentication-Results", "mx.example.jp; smime=pass body.smime-identifier=x@y" },
	})
	hk.check(mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results"), "forged field kept")
	hk.check(hk.auth_results(conn):find("smime=none", 1, true), "forged result")
	mt.disconnect(conn)
end)
