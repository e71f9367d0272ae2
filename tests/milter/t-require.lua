-- Required signatures: by recipient (require_signature_recipients = secure@example.jp),
-- by sender domain (@signed.example.jp) and by certd's per-user attribute (bob).
dofile(os.getenv("HANKO_SRC") .. "/tests/milter/common.lua")

local NOT_FOUND = "Cannot authenticate - signature not found"

local function rejected(file, sender, rcpt, text)
	local conn = hk.connect()
	hk.check(hk.send(conn, sender, { rcpt }, file) == SMFIR_REPLYCODE, file .. ": not rejected")
	hk.expect_reply(conn, "550", "5.7.1", text)
	mt.disconnect(conn)
end

local function accepted(file, sender, rcpt)
	local conn = hk.connect()
	hk.check(hk.send(conn, sender, { rcpt }, file) == SMFIR_CONTINUE, file .. ": not accepted")
	mt.disconnect(conn)
end

hk.run(function()
	rejected("unsigned-alice.eml", "<alice@example.jp>", "<secure@example.jp>", NOT_FOUND)
	rejected("tampered.eml", "<alice@example.jp>", "<secure@example.jp>",
		"S/MIME signature invalid: the signature does not match the content")
	accepted("signed.eml", "<alice@example.jp>", "<secure@example.jp>")
	-- bob has require_signature = yes in certd
	rejected("unsigned.eml", "<bob@example.jp>", "<anyone@example.jp>", NOT_FOUND)
	rejected("unsigned-alice.eml", "<dave@signed.example.jp>", "<anyone@example.jp>", NOT_FOUND)
	-- nothing asks alice for a signature when she writes to anyone else
	accepted("unsigned-alice.eml", "<alice@example.jp>", "<anyone@example.jp>")
end)
