#!/bin/sh
# Makes the messages hanko-milter's miltertest scenarios send, with the real openssl CLI.
#   make-files.sh DIR
# DIR holds alice.pem and carol.pem (key and certificate of hanko-issued users: alice
# valid, carol to be revoked), ca.crt (hanko's CA) and gw-rsa.crt, gw-ec.crt (the
# gateway's certificates).
set -eu
cd "$1"

text() {
	printf 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n' "$1"
}
header() { # from subject
	printf 'From: %s\r\nTo: someone@example.jp\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n' \
		"$1" "$2" "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
}
# cms output after our own header fields
wrap() { # from subject file
	{ header "$1" "$2"; cat "$3"; } >"$3.eml"
	rm -f "$3"
}

text "FAX test: 03-1111-2222" >content.txt
text "unsigned message" >plain.txt

# signed by alice: detached (multipart/signed), opaque (signed-data), SHA-1
openssl cms -sign -in content.txt -signer alice.pem -md sha256 -out signed
openssl cms -sign -in content.txt -signer alice.pem -md sha256 -nodetach -out opaque
openssl cms -sign -in content.txt -signer alice.pem -md sha1 -out sha1
openssl cms -sign -in content.txt -signer carol.pem -md sha256 -out revoked
wrap "Alice <alice@example.jp>" "signed" signed
wrap "Alice <alice@example.jp>" "opaque" opaque
wrap "Alice <alice@example.jp>" "sha1" sha1
wrap "Carol <carol@example.jp>" "revoked" revoked
# alice's signature on a message that claims to be from dave
cp signed.eml wrongfrom.eml
sed -i 's/^From: Alice <alice@example.jp>/From: Dave <dave@example.jp>/' wrongfrom.eml
# one character of the signed text changed after signing
sed 's/03-1111-2222/03-1111-2223/' signed.eml >tampered.eml
{ header "Bob <bob@example.jp>" "unsigned"; printf 'MIME-Version: 1.0\r\n'; cat plain.txt; } >unsigned.eml
{ header "Alice <alice@example.jp>" "unsigned"; printf 'MIME-Version: 1.0\r\n'; cat plain.txt; } >unsigned-alice.eml

# for the gateway: signed, then encrypted (AES-256-CBC and AES-128-GCM), to the RSA and
# the EC certificate; encrypted to the wrong certificate; damaged; and encrypted, then signed
openssl cms -sign -in content.txt -signer alice.pem -md sha256 -out inner.txt
openssl cms -encrypt -in inner.txt -aes-256-cbc -out enc-cbc gw-rsa.crt
openssl cms -encrypt -in inner.txt -aes-128-gcm -out enc-gcm gw-rsa.crt
openssl cms -encrypt -in inner.txt -aes-256-cbc -out enc-ec gw-ec.crt
openssl cms -encrypt -in inner.txt -aes-256-cbc -out enc-wrong alice.pem
openssl cms -encrypt -in content.txt -aes-256-cbc -out enc-plain gw-rsa.crt
openssl cms -encrypt -in content.txt -aes-128-gcm -out enc-plain-gcm gw-rsa.crt
openssl cms -encrypt -in content.txt -aes-256-cbc -out enc-plain-ec gw-ec.crt
# AES-GCM authenticates: one changed base64 character in the last line (the tag's
# neighbourhood) must fail decryption, not yield garbage
n=$(grep -c '' enc-plain-gcm)
awk -v last="$((n - 1))" 'NR == last { $0 = (substr($0, 1, 1) == "A" ? "B" : "A") substr($0, 2) } { print }' \
	enc-plain-gcm >enc-corrupt
openssl cms -sign -in enc-cbc -signer alice.pem -md sha256 -out enc-signed
for f in enc-cbc enc-gcm enc-ec enc-wrong enc-corrupt enc-plain enc-plain-gcm enc-plain-ec \
	enc-signed; do
	wrap "Alice <alice@example.jp>" "$f" "$f"
done
rm -f inner.txt

# an external CA (not hanko's) that publishes a CRL: erin's certificate is valid, dave's
# revoked. hanko-milter trusts it through ca_file and checks crl_file.
rm -rf extca
mkdir extca
: >extca/index.txt
echo 01 >extca/crlnumber
cat >extca/ca.cnf <<CNF
[ca]
default_ca = ext
[ext]
database = extca/index.txt
crlnumber = extca/crlnumber
certificate = extca/ca.crt
private_key = extca/ca.key
default_md = sha256
default_crl_days = 30
CNF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	-subj "/CN=External Test CA" -keyout extca/ca.key -out extca/ca.crt 2>/dev/null
for who in erin dave; do
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$who" \
		-keyout "extca/$who.key" -out "extca/$who.csr" 2>/dev/null
	printf 'subjectAltName=email:%s@ext.example.jp\nextendedKeyUsage=emailProtection\n' "$who" \
		>"extca/$who.ext"
	openssl x509 -req -in "extca/$who.csr" -CA extca/ca.crt -CAkey extca/ca.key \
		-set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" -days 30 \
		-extfile "extca/$who.ext" -out "extca/$who.crt" 2>/dev/null
	cat "extca/$who.key" "extca/$who.crt" >"$who.pem"
	openssl cms -sign -in content.txt -signer "$who.pem" -md sha256 -out "ext-$who"
	wrap "$who <$who@ext.example.jp>" "external $who" "ext-$who"
done
openssl ca -config extca/ca.cnf -revoke extca/dave.crt 2>/dev/null
openssl ca -config extca/ca.cnf -gencrl -out ext.crl 2>/dev/null
cp extca/ca.crt ext-ca.crt

# signed by GnuPG's gpgsm, an S/MIME implementation of its own: alice's key goes into a
# private keybox (gpgsm reads only legacy PKCS#12), hanko's CA is trusted there, and the
# detached signature over content.txt becomes a multipart/signed written by hand
export GNUPGHOME="$PWD/gnupg"
rm -rf "$GNUPGHOME"
mkdir -m 700 "$GNUPGHOME"
echo allow-loopback-pinentry >"$GNUPGHOME/gpg-agent.conf"
openssl pkcs12 -export -legacy -in alice.pem -out alice-gpgsm.p12 -passout pass:gpgsm-test
echo gpgsm-test >gpgsm.pw
# no dirmngr (a separate package): nothing is fetched, CRLs are not asked for
gpgsm_run() {
	gpgsm --batch --quiet --disable-dirmngr --disable-crl-checks --pinentry-mode loopback \
		--passphrase-fd 0 "$@" <gpgsm.pw 2>>gpgsm.log
}
gpgsm_run --import ca.crt
gpgsm_run --import alice-gpgsm.p12
echo "$(openssl x509 -in ca.crt -noout -fingerprint -sha1 | cut -d= -f2) S relax" \
	>"$GNUPGHOME/trustlist.txt"
gpgsm_run -u alice@example.jp --detach-sign --base64 --include-certs 1 -o gpgsm.sig content.txt
gpgconf --kill gpg-agent
{
	header "Alice <alice@example.jp>" "gpgsm"
	printf 'MIME-Version: 1.0\r\n'
	printf 'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="=-gpgsm-1"\r\n\r\n'
	printf 'This is a signed message.\r\n--=-gpgsm-1\r\n'
	cat content.txt
	printf '\r\n--=-gpgsm-1\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n'
	printf 'Content-Transfer-Encoding: base64\r\n\r\n'
	cat gpgsm.sig
	printf '\r\n--=-gpgsm-1--\r\n'
} >gpgsm.eml
