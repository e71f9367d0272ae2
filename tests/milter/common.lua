-- Shared by hanko-milter's miltertest scenarios (tests/milter/t-*.lua).
-- The test driver (tests/integration/test-milter.c) starts certd and the milter with the
-- scenario's own configuration and passes, in the environment:
--   HANKO_MILTER   the milter's socket (miltertest syntax: unix:/path)
--   HANKO_FILES    a directory of messages made for the run (signed with openssl ...)

hk = {}

hk.files = os.getenv("HANKO_FILES")

-- Runs a scenario; a failed check prints what failed and exits 1 (miltertest alone
-- would exit 1 without a word).
function hk.run(scenario)
	local ok, err = pcall(scenario)
	if not ok then
		print("FAIL: " .. tostring(err))
		os.exit(1)
	end
	print("ok")
end

function hk.check(cond, what)
	if not cond then
		error(what, 2)
	end
end

function hk.connect()
	local conn = mt.connect(os.getenv("HANKO_MILTER"), 20, 0.25)
	hk.check(conn ~= nil, "cannot connect to the milter")
	hk.check(mt.conninfo(conn, "client.example.jp", "192.0.2.7") == nil, "conninfo")
	hk.check(mt.getreply(conn) == SMFIR_CONTINUE, "conninfo reply")
	return conn
end

-- The file's header fields and body; line ends become CRLF, as Postfix hands them over.
function hk.read(name)
	local f = io.open(hk.files .. "/" .. name, "rb")
	hk.check(f ~= nil, "cannot open " .. name)
	local text = f:read("a")
	f:close()
	text = text:gsub("\r\n", "\n"):gsub("\n", "\r\n")
	local head, body = text:match("^(.-)\r\n\r\n(.*)$")
	if head == nil then
		head, body = text, ""
	end
	local fields = {}
	for line in (head .. "\r\n"):gmatch("(.-)\r\n") do
		if line:match("^[ \t]") and #fields > 0 then
			fields[#fields].value = fields[#fields].value .. "\r\n" .. line
		else
			local name, value = line:match("^([^:]+):[ \t]*(.*)$")
			hk.check(name ~= nil, "bad header line in " .. name)
			table.insert(fields, { name = name, value = value })
		end
	end
	return fields, body
end

-- Sends one message; returns the reply to end-of-message.
function hk.send(conn, sender, rcpts, file, extra_headers)
	mt.macro(conn, SMFIC_MAIL, "i", "TESTQID")
	hk.check(mt.mailfrom(conn, sender) == nil, "mailfrom")
	hk.check(mt.getreply(conn) == SMFIR_CONTINUE, "mailfrom reply")
	for _, rcpt in ipairs(rcpts) do
		hk.check(mt.rcptto(conn, rcpt) == nil, "rcptto")
	end
	local fields, body = hk.read(file)
	for _, h in ipairs(extra_headers or {}) do
		hk.check(mt.header(conn, h[1], h[2]) == nil, "header")
	end
	for _, h in ipairs(fields) do
		hk.check(mt.header(conn, h.name, h.value) == nil, "header " .. h.name)
	end
	-- no mt.eoh(): the filter negotiates it away (SMFIP_NOEOH) and miltertest moves on
	-- in chunks, as Postfix sends them
	local pos = 1
	while pos <= #body do
		hk.check(mt.bodystring(conn, body:sub(pos, pos + 65534)) == nil, "body")
		pos = pos + 65535
	end
	hk.check(mt.eom(conn) == nil, "eom")
	return mt.getreply(conn)
end

function hk.expect_reply(conn, code, xcode, text)
	hk.check(mt.getreply(conn) == SMFIR_REPLYCODE, "expected a reply code")
	hk.check(mt.eom_check(conn, MT_SMTPREPLY, code, xcode, text),
		"expected the reply " .. code .. " " .. xcode .. " " .. text)
end

-- The Authentication-Results value the milter inserted.
function hk.auth_results(conn)
	local value = mt.getheader(conn, "Authentication-Results", 0)
	hk.check(value ~= nil, "no Authentication-Results field was inserted")
	mt.echo("Authentication-Results: " .. value)
	return value
end
