#!/bin/sh
# Installs the Debian 12 packages hanko needs, and nothing when they are all there.
#   install-deps.sh build    compile hanko
#   install-deps.sh test     compile and run the test suite (adds clang, the openssl CLI)
#   install-deps.sh demo     compile and run the demo (adds Postfix, swaks, ghostscript)
# Run as root, or have the packages installed already.
set -eu

build_pkgs="cmake ninja-build gcc pkg-config libglib2.0-dev libjson-c-dev libssl-dev
libsqlite3-dev libsystemd-dev libcrypt-dev libmilter-dev openssl libgmime-3.0-dev
libpango1.0-dev libcairo2-dev libpoppler-glib-dev libtiff-dev libgdk-pixbuf-2.0-dev
libspandsp-dev
fonts-ipafont-gothic fonts-dejavu-core"
# the test suite runs real peers: the openssl CLI, NSS's pk12util, Postfix and swaks
# (with the Perl TLS modules it needs for --tls, which are only recommended), and
# postfwd, the anchor of hanko-policyd's benchmark; miltertest (opendkim's libmilter test
# client) for hanko-milter's scenarios, gpgsm (GnuPG's S/MIME, with its agent) as a
# second signer, and opendkim, the anchor of hanko-milter's benchmark; ghostscript, the
# anchor of the fax renderer's benchmark, libtiff-tools and poppler-utils to look at
# and make fax pages; efax and mgetty-fax (sendfax), the third-party fax programs that
# prove the soft modem of tests/fax (spandsp, in build_pkgs)
test_pkgs="$build_pkgs clang libclang-rt-14-dev libnss3-tools whois postfix swaks
libnet-ssleay-perl libio-socket-ssl-perl postfwd miltertest gpgsm gpg-agent
opendkim opendkim-tools ghostscript libtiff-tools poppler-utils efax mgetty-fax"

# the demo: a private Postfix, swaks to send, ghostscript for its PDF, and tools to show
# the pages (tiffinfo, tiff2pdf, pdftoppm)
demo_pkgs="$build_pkgs postfix swaks libnet-ssleay-perl ghostscript libtiff-tools
poppler-utils"

case "${1:-build}" in
build) wanted=$build_pkgs ;;
demo) wanted=$demo_pkgs ;;
test) wanted=$test_pkgs ;;
*) echo "usage: $0 build|test|demo" >&2; exit 64 ;;
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
