#!/bin/sh
# The demo: builds hanko, starts hanko-certd and hanko-policyd on sockets in a temporary
# directory, creates the private CA, a user and a client certificate with hankoctl, asks
# policyd what it would tell Postfix for that certificate (own sender, someone else's,
# old TLS), revokes the certificate and asks again.
# Nothing is installed outside the source tree's build/ and the temporary directory.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${HANKO_BUILD_DIR:-$root/build/demo}

"$root/contrib/scripts/install-deps.sh" build

echo "== building hanko in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

work=$(mktemp -d /tmp/hanko-demo-XXXXXX)
pids=""
cleanup() {
	# shellcheck disable=SC2086 # a list of pids
	[ -n "$pids" ] && kill $pids 2>/dev/null && wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

cat >"$work/hanko.conf" <<CONF
[certd]
socket = $work/certd.sock
state_dir = $work/certd
socket_mode = 0600
# no admin or service groups on a demo machine: root alone holds every role
admin_group =
service_group =

[policyd]
policy_listen = unix:$work/policy.sock
auth_listen = unix:$work/auth.sock
admin_socket = $work/policyd-admin.sock
certd_socket = $work/certd.sock
admin_group =
CONF

ctl() {
	echo "\$ hankoctl $*"
	"$build/certd/hankoctl" -c "$work/hanko.conf" "$@"
}

wait_socket() {
	i=0
	while [ ! -S "$1" ]; do
		i=$((i + 1))
		if [ $i -gt 200 ]; then
			echo "$2 did not start:" >&2
			cat "$work/$2.log" >&2
			exit 1
		fi
		sleep 0.05
	done
}

echo "== starting hanko-certd and hanko-policyd in $work"
"$build/certd/hanko-certd" -f -c "$work/hanko.conf" 2>"$work/certd.log" &
pids="$!"
wait_socket "$work/certd.sock" certd
"$build/policyd/hanko-policyd" -f -c "$work/hanko.conf" 2>"$work/policyd.log" &
pids="$pids $!"
wait_socket "$work/policyd-admin.sock" policyd

echo "== the private CA, a user, a client certificate (seed 001)"
ctl ping
ctl ca init --cn "hanko Demo CA" --key ec:p256
ctl user add sindbad --email sindbad@example.jp
echo "Open-Sesame-1" | ctl user passwd sindbad
ctl cert issue --cn "Sindbad the Sailor" --email sindbad@example.jp --user sindbad \
	--key ec:p256 -o "$work/sindbad.p12"
ctl cert list

echo "== what Postfix would be told (hanko-policyd), by the certificate's fingerprint"
serial=$("$build/certd/hankoctl" -c "$work/hanko.conf" --json cert list |
	sed -n 's/.*"serial":"\([0-9A-F]*\)".*/\1/p' | head -n 1)
"$build/certd/hankoctl" -c "$work/hanko.conf" cert show "$serial" --password |
	sed -n 's/^p12_password: //p' >"$work/p12pass"
openssl pkcs12 -in "$work/sindbad.p12" -passin "file:$work/p12pass" -nokeys -clcerts \
	-out "$work/sindbad.pem" 2>/dev/null ||
	openssl pkcs12 -legacy -in "$work/sindbad.p12" -passin "file:$work/p12pass" -nokeys \
		-clcerts -out "$work/sindbad.pem"
fp=$(openssl x509 -in "$work/sindbad.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
ctl policy check --fingerprint "$fp" --sender sindbad@example.jp
ctl policy check --fingerprint "$fp" --sender someone-else@example.jp
ctl policy check --fingerprint "$fp" --sender sindbad@example.jp --tls TLSv1.1
ctl user verify sindbad <<PW
Open-Sesame-1
PW

echo "== revocation: the CRL and policyd see it at once"
ctl cert revoke "$serial" --reason keyCompromise
ctl policy check --fingerprint "$fp" --sender sindbad@example.jp
ctl ca crl | openssl crl -noout -text | sed -n '/Revoked Certificates/,/Signature Algorithm/p'
ctl audit

echo "== stopping"
# shellcheck disable=SC2086 # two pids
kill -TERM $pids
wait
pids=""
echo "== hanko-policyd's decisions"
grep -E "outcome|decision" "$work/policyd.log" || cat "$work/policyd.log"
