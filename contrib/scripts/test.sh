#!/bin/sh
# The test suite: installs what it needs, builds hanko with warnings as errors and
# AddressSanitizer + UndefinedBehaviorSanitizer, runs every unit and integration test,
# then builds the libFuzzer targets with clang and runs each for a bounded time.
#
#   contrib/scripts/test.sh                  everything
#   HANKO_FUZZ_SECONDS=300 contrib/scripts/test.sh    fuzz longer (default 60 s)
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${HANKO_BUILD_DIR:-$root/build/test}
fuzz_build=$build-fuzz
jobs=$(nproc 2>/dev/null || echo 2)

"$root/contrib/scripts/install-deps.sh" test

echo "== build (gcc, -Werror, ASan+UBSan) in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	-DHANKO_WERROR=ON -DHANKO_SANITIZE=ON -DHANKO_TEST_HOOKS=ON >/dev/null
cmake --build "$build" -j "$jobs"

echo "== unit and integration tests (open file limit $(ulimit -Sn), hard $(ulimit -Hn))"
ctest --test-dir "$build" --output-on-failure -j "$jobs" -L 'unit|integration|fax'

echo "== benchmarks, as a smoke check (small counts; numbers in BENCHMARKS.md)"
ctest --test-dir "$build" --output-on-failure -L bench

echo "== fuzz (clang, libFuzzer, ${HANKO_FUZZ_SECONDS:-60} s a target)"
CC=clang cmake -S "$root" -B "$fuzz_build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DHANKO_WERROR=ON -DHANKO_FUZZ=ON -DHANKO_FUZZ_SECONDS="${HANKO_FUZZ_SECONDS:-60}" >/dev/null
cmake --build "$fuzz_build" -j "$jobs" --target fuzzers
ctest --test-dir "$fuzz_build" --output-on-failure -L fuzz
