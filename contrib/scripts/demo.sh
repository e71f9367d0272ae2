#!/bin/sh
# The demo: builds hanko, starts hanko-certd on a socket in a temporary directory, asks
# it for a ping with hankoctl (as text and as raw JSON), and stops it again.
# Nothing is installed outside the source tree's build/ and the temporary directory.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${HANKO_BUILD_DIR:-$root/build/demo}

"$root/contrib/scripts/install-deps.sh" build

echo "== building hanko in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null

work=$(mktemp -d /tmp/hanko-demo-XXXXXX)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

cat >"$work/hanko.conf" <<CONF
[certd]
socket = $work/certd.sock
socket_mode = 0600
# no admin or service groups on a demo machine: root alone holds every role
admin_group =
service_group =
CONF

echo "== starting hanko-certd (socket $work/certd.sock)"
"$build/certd/hanko-certd" -f -c "$work/hanko.conf" 2>"$work/certd.log" &
pid=$!
i=0
while [ ! -S "$work/certd.sock" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "hanko-certd did not start:" >&2
		cat "$work/certd.log" >&2
		exit 1
	fi
	sleep 0.05
done

echo "== hankoctl ping"
"$build/certd/hankoctl" -c "$work/hanko.conf" ping
echo "== hankoctl --json ping"
"$build/certd/hankoctl" -c "$work/hanko.conf" --json ping

echo "== stopping hanko-certd"
kill -TERM "$pid"
wait "$pid"
pid=""
echo "== hanko-certd's log"
cat "$work/certd.log"
