#!/bin/bash
# The whole test suite: builds (installing what is missing), runs every
# unit and integration test in a normal build and again under
# AddressSanitizer + UndefinedBehaviorSanitizer, fuzzes the frontend for a
# minute as a client and a minute as a hostile plugin host (clang +
# libFuzzer, in build-fuzz), and ends with one line
# "N passed, N failed" (skips are counted separately).
set -u
cd "$(dirname "$0")/.."

status=0
./bootstrap build || exit 1
./bootstrap build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug || exit 1

run_suite() {
  local dir=$1
  shift
  meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" || status=1
}

# The fuzz target needs clang and its libFuzzer runtime.
fuzz_tools() {
  command -v clang++-14 >/dev/null &&
    ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 && return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null
}
fuzz_build() {
  [ -f build-fuzz/build.ninja ] ||
    CC=clang-14 CXX=clang++-14 meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined \
      -Db_lundef=false >/dev/null || return 1
  ninja -C build-fuzz tests/fuzz/fuzz-server tests/fuzz/fuzz-host >/dev/null
}

run_suite build
# Leak checking needs ptrace, which the plugin host's sandbox forbids; the
# frontend still runs with leak detection.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan --timeout-multiplier 3

dirs="build build-asan"
fuzz_skipped=0
if ! fuzz_tools; then
  # A missing tool is a skip, never a pass.
  echo "run-all: SKIP the fuzz runs: clang-14 and libclang-rt-14-dev cannot be installed" >&2
  fuzz_skipped=1
elif fuzz_build; then
  run_suite build-fuzz --no-rebuild --suite fuzz
  dirs="$dirs build-fuzz"
else
  echo "run-all: the fuzz target does not build" >&2
  status=1
fi

# shellcheck disable=SC2086
FUZZ_SKIPPED=$fuzz_skipped /usr/bin/python3 - $dirs <<'PY'
import json, os, sys
passed = failed = 0
skipped = int(os.environ["FUZZ_SKIPPED"])
for d in sys.argv[1:]:
    with open(f"{d}/meson-logs/testlog.json") as f:
        for line in f:
            r = json.loads(line)["result"]
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
            else:
                failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
summary=$?
[ $status -eq 0 ] && [ $summary -eq 0 ]
