#!/bin/sh
# Installs the Debian 12 packages hanko needs, and nothing when they are all there.
#   install-deps.sh build    compile hanko
#   install-deps.sh test     compile and run the test suite (adds clang, the openssl CLI)
# Run as root, or have the packages installed already.
set -eu

build_pkgs="cmake ninja-build gcc pkg-config libglib2.0-dev libjson-c-dev libssl-dev
libsqlite3-dev libsystemd-dev libcrypt-dev libmilter-dev openssl"
# the test suite runs real peers: the openssl CLI, NSS's pk12util, Postfix and swaks
# (with the Perl TLS modules it needs for --tls, which are only recommended), and
# postfwd, the anchor of hanko-policyd's benchmark; miltertest (opendkim's libmilter test
# client) for hanko-milter's scenarios, gpgsm (GnuPG's S/MIME, with its agent) as a
# second signer, and opendkim, the anchor of hanko-milter's benchmark
test_pkgs="$build_pkgs clang libclang-rt-14-dev libnss3-tools whois postfix swaks
libnet-ssleay-perl libio-socket-ssl-perl postfwd miltertest gpgsm gpg-agent
opendkim opendkim-tools"

case "${1:-build}" in
build) wanted=$build_pkgs ;;
test) wanted=$test_pkgs ;;
*) echo "usage: $0 build|test" >&2; exit 64 ;;
esac

missing=""
for pkg in $wanted; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = "installed" ] || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "hanko needs these Debian packages:$missing" >&2
	echo "install them as root: apt-get install$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Postfix's package asks what kind of mail system this is; the tests run private
# instances of their own, so the system one is left unconfigured
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -qq
# shellcheck disable=SC2086 # the list is meant to split
apt-get install -y -qq --no-install-recommends $missing >/dev/null
