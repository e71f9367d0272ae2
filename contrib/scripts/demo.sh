#!/bin/sh
# The demo, hanko's main job (seed 003): an S/MIME email-to-fax gateway.
#
# Installs what it needs (Debian 12, as root), builds hanko, and in a temporary
# directory starts hanko-certd, hanko-milter with the file fax backend, and a private
# Postfix on 127.0.0.1 with hanko-milter as its smtpd milter. It creates the private CA
# and a user with an S/MIME certificate, gives the gateway its identity, sends a fax
# request signed by the user and encrypted for the gateway (Japanese text and a PDF,
# "/fax=03-1111-2222" in the Subject), waits for the fax job, and shows where the TIFF
# pages and the signed and encrypted result mail landed, with page 1 as a PNG.
#
# Nothing is installed outside the source tree's build/ and the temporary directory,
# which is kept for a look (HANKO_DEMO_CLEAN=1 removes it).
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${HANKO_BUILD_DIR:-$root/build/demo}

"$root/contrib/scripts/install-deps.sh" demo

echo "== building hanko in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

work=$(mktemp -d /tmp/hanko-demo-XXXXXX)
chmod 0711 "$work" # Postfix's smtpd (user postfix) reaches the milter's socket inside
pids=""
cleanup() {
	# shellcheck disable=SC2086 # a list of pids
	[ -n "$pids" ] && kill $pids 2>/dev/null && wait 2>/dev/null
	if [ "${HANKO_DEMO_CLEAN:-0}" = 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

# a port above the usual ones, picked at random
smtp_port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 30000))
pf="$work/postfix"

cat >"$work/hanko.conf" <<CONF
[certd]
socket = $work/certd.sock
state_dir = $work/certd
service_dir = $work/services
socket_mode = 0600
# no admin or service groups on a demo machine: root alone holds every role
admin_group =
service_group =

[milter]
listen = unix:$work/milter.sock
socket_group = postfix
certd_socket = $work/certd.sock
tmp_dir = $work/milter-tmp
admin_socket = $work/milter-admin.sock
gateway_address = send@fax.example.jp
registration_address = digitalid@fax.example.jp
fax_spool_dir = $work/fax-spool
fax_sendmail = /usr/sbin/sendmail -C $pf/etc

[fax.file]
outbox = $work/outbox
CONF

ctl() {
	echo "\$ hankoctl $*"
	"$build/certd/hankoctl" -c "$work/hanko.conf" "$@"
}

wait_for() { # what, file to appear or log line (file:needle), log to show
	i=0
	while :; do
		case $1 in
		*:*) grep -q "${1#*:}" "${1%%:*}" 2>/dev/null && return 0 ;;
		*) [ -e "$1" ] && return 0 ;;
		esac
		i=$((i + 1))
		if [ $i -gt 600 ]; then
			echo "demo: gave up waiting for $1:" >&2
			cat "$2" >&2
			exit 1
		fi
		sleep 0.1
	done
}

echo "== starting hanko-certd in $work"
"$build/certd/hanko-certd" -f -c "$work/hanko.conf" 2>"$work/certd.log" &
pids="$!"
wait_for "$work/certd.sock" "$work/certd.log"

echo "== the private CA, a fax user with an S/MIME certificate (seed 001)"
ctl ca init --cn "hanko Demo CA" --key ec:p256
ctl user add alice --email alice@example.jp
ctl user set alice fax_allowed=yes
ctl cert issue --cn "Alice" --email alice@example.jp --user alice -o "$work/alice.p12" |
	tee "$work/alice.issue"
p12pass=$(sed -n 's/^P12 password: //p' "$work/alice.issue")
mkdir -p "$work/files"
openssl pkcs12 -in "$work/alice.p12" -passin "pass:$p12pass" -nodes -out "$work/files/alice.pem"

echo "== the gateway's identity: a certificate for send@fax.example.jp, assigned in certd"
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=hanko fax gateway" \
	-addext "subjectAltName=email:send@fax.example.jp" \
	-addext "extendedKeyUsage=emailProtection" \
	-keyout "$work/files/gw.key" -out "$work/files/gw.crt" 2>/dev/null
ctl cert import --name fax-gw --cert "$work/files/gw.crt" --key "$work/files/gw.key"
ctl cert assign fax-gw --service gateway

echo "== a private Postfix on 127.0.0.1:$smtp_port with hanko-milter as smtpd_milters"
mkdir -p "$pf/etc" "$pf/spool" "$pf/data"
chmod 0755 "$pf" "$pf/etc" "$pf/spool"
chown postfix:postfix "$pf/data"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=localhost -keyout "$pf/etc/server.key" -out "$pf/etc/server.crt" 2>/dev/null
# the gateway's result mails are held in Postfix's queue, for the demo to show
echo '/^Auto-Submitted: auto-generated/ HOLD' >"$pf/etc/hold.regexp"
cat >"$pf/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $pf/spool
data_directory = $pf/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.jp
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = /dev/stdout
default_transport = discard:demo
alias_maps =
alias_database =
smtpd_tls_chain_files = $pf/etc/server.key, $pf/etc/server.crt
smtpd_tls_security_level = may
smtpd_milters = unix:$work/milter.sock
milter_default_action = tempfail
header_checks = regexp:$pf/etc/hold.regexp
CF
{
	echo "127.0.0.1:$smtp_port inet n - n - - smtpd"
	for s in "pickup unix n - n 60 1 pickup" "cleanup unix n - n - 0 cleanup" \
		"qmgr unix n - n 300 1 qmgr" "tlsmgr unix - - n 1000? 1 tlsmgr" \
		"rewrite unix - - n - - trivial-rewrite" "bounce unix - - n - 0 bounce" \
		"defer unix - - n - 0 bounce" "trace unix - - n - 0 bounce" \
		"verify unix - - n - 1 verify" "flush unix n - n 1000? 0 flush" \
		"proxymap unix - - n - - proxymap" "showq unix n - n - - showq" \
		"error unix - - n - - error" "retry unix - - n - - error" \
		"discard unix - - n - - discard" "anvil unix - - n - 1 anvil" \
		"scache unix - - n - 1 scache" "postlog unix-dgram n - n - 1 postlogd"; do
		echo "$s"
	done
} >"$pf/etc/master.cf"
postfix -c "$pf/etc" check
/usr/lib/postfix/sbin/master -s -c "$pf/etc" >"$pf/maillog" 2>&1 &
pids="$pids $!"

echo "== starting hanko-milter (fax backend: file, outbox $work/outbox)"
"$build/milter-smime/hanko-milter" -f -c "$work/hanko.conf" 2>"$work/milter.log" &
pids="$pids $!"
wait_for "$work/milter.log:gateway identity: fax-gw" "$work/milter.log"
i=0
until swaks --server 127.0.0.1 --port "$smtp_port" --quit-after CONNECT >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "demo: Postfix did not start:" >&2; cat "$pf/maillog" >&2; exit 1; }
	sleep 0.1
done

echo "== a fax request: Japanese text and a PDF, signed by alice, encrypted for the gateway"
cp "$root/tests/fax/make-requests.sh" "$work/files/" # it makes the test suite's requests
for who in bob dave; do cp "$work/files/alice.pem" "$work/files/$who.pem"; done
"$work/files/make-requests.sh" "$work/files" >/dev/null 2>&1
sed -n '/^Subject:/p' "$work/files/subject.eml"
echo "(the Subject decodes to: 見積書 /fax=03-1111-2222;０６－２２２２－３３３３)"
swaks --server 127.0.0.1 --port "$smtp_port" --from alice@example.jp \
	--to send@fax.example.jp --data "@$work/files/subject.eml" 2>&1 | grep -E '^ *<-' | tail -2

echo "== the fax job"
wait_for "$work/milter.log:result mail sent to alice@example.jp" "$work/milter.log"
ctl fax jobs
ctl fax show 1

echo "== the pages, as the file backend wrote them (TIFF Class F)"
ls -l "$work/outbox"
tiffinfo "$work/outbox/1-0311112222.tif" 2>/dev/null | grep -E 'Image Width|Resolution|Compression Scheme|Page Number' | head -4
tiff2pdf -o "$work/page.pdf" "$work/outbox/1-0311112222.tif"
pdftoppm -png -r 50 -f 1 -l 1 "$work/page.pdf" "$work/page"
echo "page 1 as PNG: $(ls "$work"/page*.png)"

echo "== the result mail, held in Postfix's queue: signed by the gateway, encrypted for alice"
id=$(postqueue -c "$pf/etc" -p | awk '/^[0-9A-F]+!/ { sub("!", "", $1); print $1; exit }')
postcat -c "$pf/etc" -hb -q "$id" >"$work/notification.eml"
sed -n '/^From:/p; /^To:/p; /^Subject:/p; /^Content-Type:/p' "$work/notification.eml" | head -5
openssl cms -decrypt -in "$work/notification.eml" -recip "$work/files/alice.pem" \
	-inkey "$work/files/alice.pem" -out "$work/notification.signed"
openssl cms -verify -in "$work/notification.signed" -CAfile "$work/files/gw.crt" \
	-purpose any -out "$work/notification.txt" 2>&1
echo "--- decrypted and verified (quoted-printable decoded):"
sed '1,/^\r*$/d' "$work/notification.txt" | perl -MMIME::QuotedPrint -0777 -ne 'print decode_qp($_)' |
	tr -d '\r'
echo "---"
echo "== everything is in $work (pages: outbox/, mail: notification.eml, logs: *.log)"
