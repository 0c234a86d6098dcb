#!/bin/sh
# A short libFuzzer run of a fuzz target over its committed corpus
# (tests/fuzz/CORPUS; new inputs go to a scratch directory, so the source
# tree is never written).  Fails on any crash, sanitizer report, leak or
# hang; a finding is left in the build directory's fuzz-findings/ to
# reproduce with FUZZER-replay.
#   smoke.sh FUZZER [SECONDS] [CORPUS]
set -eu
fuzzer=$1
seconds=${2:-60}
corpus=${NBDCAGE_SOURCE:?}/tests/fuzz/${3:-corpus}
findings=${NBDCAGE_BUILD:?}/fuzz-findings
scratch=$(mktemp -d /tmp/nbdcage-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$findings"
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
  -artifact_prefix="$findings/" "$scratch" "$corpus" 2>"$scratch/log" || {
  tail -n 60 "$scratch/log"
  echo "FAIL: $(basename "$fuzzer") found a problem; inputs in $findings" >&2
  exit 1
}
grep -E '^stat::number_of_executed_units' "$scratch/log"
echo PASS
