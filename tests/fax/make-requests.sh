#!/bin/sh
# Makes the fax requests that test-fax (and the demo) send, with the real openssl CLI
# and a PDF made by ghostscript.
#   make-requests.sh DIR
# DIR holds alice.pem, bob.pem and dave.pem (key and certificate of hanko-issued users),
# gw.crt (the gateway's certificate) and erin.pem (a user whose certificate comes from
# an outside CA, ext-ca.crt; this script makes both when they are missing).
set -eu
cd "$1"

rand() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n'; }
crlf() { sed 's/\r*$/\r/'; }
header() { # from to subject
	printf 'From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test.example.jp>\r\nDate: %s\r\n' \
		"$1" "$2" "$3" "$(rand)" "$(date -R)"
}
# a text/plain entity of the given (UTF-8) text
text() {
	printf 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
	printf '%s\n' "$1" | crlf
}
# Japanese text and doc.pdf as multipart/mixed
mixed() {
	b="=-hanko-mixed-$(rand)"
	printf 'Content-Type: multipart/mixed; boundary="%s"\r\n\r\n' "$b"
	printf -- '--%s\r\n' "$b"
	text "$1"
	printf -- '\r\n--%s\r\nContent-Type: application/pdf; name="doc.pdf"\r\n' "$b"
	printf 'Content-Disposition: attachment; filename="doc.pdf"\r\n'
	printf 'Content-Transfer-Encoding: base64\r\n\r\n'
	base64 doc.pdf | crlf
	printf -- '--%s--\r\n' "$b"
}
# signed by SIGNER, encrypted to the gateway: request NAME SIGNER FROM SUBJECT (entity on stdin)
request() {
	cat >"$1.inner"
	openssl cms -sign -in "$1.inner" -signer "$2" -md sha256 -out "$1.signed"
	openssl cms -encrypt -in "$1.signed" -aes-256-cbc -out "$1.enc" gw.crt
	{ header "$3" "send@fax.example.jp" "$4"; cat "$1.enc"; } >"$1.eml"
	rm -f "$1.inner" "$1.signed" "$1.enc"
}
# signed only: signed NAME SIGNER FROM TO SUBJECT (entity on stdin)
signed() {
	cat >"$1.inner"
	openssl cms -sign -in "$1.inner" -signer "$2" -md sha256 -out "$1.signed"
	{ header "$3" "$4" "$5"; cat "$1.signed"; } >"$1.eml"
	rm -f "$1.inner" "$1.signed"
}
# RFC 2047 B encoding of UTF-8 text
encoded() { printf '=?UTF-8?B?%s?=' "$(printf '%s' "$1" | base64 -w0)"; }

# a two-page PDF
gs -q -dNOPAUSE -dBATCH -dSAFER -sDEVICE=pdfwrite -sPAPERSIZE=a4 -o doc.pdf -c \
	'/Helvetica findfont 36 scalefont setfont 72 700 moveto (hanko fax: PDF page 1) show
	 0 0 moveto 595 842 lineto 8 setlinewidth stroke showpage
	 /Helvetica findfont 36 scalefont setfont 72 700 moveto (PDF page 2) show showpage'

# erin: a user with a certificate from an outside CA
if [ ! -f erin.pem ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj "/CN=Outside Test CA" -keyout ext-ca.key -out ext-ca.crt 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj "/CN=erin" -keyout erin.key -out erin.csr \
		2>/dev/null
	printf 'subjectAltName=email:erin@example.jp\nextendedKeyUsage=emailProtection\nkeyUsage=digitalSignature,keyEncipherment\n' >erin.ext
	openssl x509 -req -in erin.csr -CA ext-ca.crt -CAkey ext-ca.key -set_serial "0x$(rand)" \
		-days 30 -extfile erin.ext -out erin.crt 2>/dev/null
	cat erin.key erin.crt >erin.pem
fi

jp='見積書をお送りします。ご確認ください。
日本語のテキストがファクスに描かれます。'

# the Subject names the destinations (RFC 2047, full-width digits after the directive)
mixed "$jp" | request subject alice.pem "Alice <alice@example.jp>" \
	"$(encoded '見積書 /fax=03-1111-2222;０６－２２２２－３３３３')"
# the body names them, after the fax password, with a list
text "!#password123
!*list=members*!;!*03-1111-2222*!
$jp" | request body dave.pem "Dave <dave@example.jp>" "/fax=body"
text "!#wrong-password
!*03-1111-2222*!
text" | request wrongpw dave.pem "Dave <dave@example.jp>" "/fax=body"
text "!*list=members2*!
text" | request unknownlist alice.pem "Alice <alice@example.jp>" "/fax=body"
line=""
i=100
while [ $i -le 200 ]; do
	line="$line!*03-1000-0$i*!;"
	i=$((i + 1))
done
text "$line
text" | request toomany alice.pem "Alice <alice@example.jp>" "/fax=body"
text "hello" | request nodirective alice.pem "Alice <alice@example.jp>" "hello, no directive"
text "hello" | request notallowed bob.pem "Bob <bob@example.jp>" "/fax=03-1111-2222"
text "busy line" | request busy alice.pem "Alice <alice@example.jp>" "/fax=03-9999-8888"
text "busy line, canceled" | request cancel alice.pem "Alice <alice@example.jp>" "/fax=03-9999-8888"
text "モデム経由のファクス: through the soft modem" | request modem alice.pem "Alice <alice@example.jp>" "/fax=03-1111-2222"
text "after a crash" | request crash alice.pem "Alice <alice@example.jp>" "/fax=03-2222-3333"
for n in 1 2 3; do
	text "erin's fax $n" | request "erinfax$n" erin.pem "Erin <erin@example.jp>" "/fax=03-1111-2222"
done
# straight to NUMBER@fax_domain, signed only
text "direct" | signed direct alice.pem "Alice <alice@example.jp>" "0311112222@fax.example.jp" \
	"direct"
# registration: signed registers erin's certificate, unsigned unregisters it
text "register me" | signed register erin.pem "Erin <erin@example.jp>" \
	"digitalid@fax.example.jp" "register"
{
	header "Erin <erin@example.jp>" "digitalid@fax.example.jp" "unregister"
	printf 'MIME-Version: 1.0\r\n'
	text "unregister me"
} >unregister.eml
{
	header "Alice <alice@example.jp>" "send@fax.example.jp" "/fax=03-1111-2222"
	printf 'MIME-Version: 1.0\r\n'
	text "not signed"
} >unsigned.eml
