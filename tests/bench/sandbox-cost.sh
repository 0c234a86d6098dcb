#!/bin/bash
# What the sandbox's syscall allow-list costs on the hot path: fio 4 KiB
# random reads and writes, QD32, on a filled 256 MiB memory disk, served by
# nbdcage as it is, by nbdcage with only the calls refused by name
# (NBDCAGE_SANDBOX_WITHOUT=allow-list), and by nbdkit, alternating round by
# round so that drift on the machine hits all three alike.
#
#   tests/bench/sandbox-cost.sh [ROUNDS] [SECONDS]     (defaults: 3 rounds, 5 s)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
secs=${2:-5}
. tests/bench/common.sh

ticks() {  # ticks PID: CPU ticks of PID and everything below it
  local t c
  t=$(awk '{print $14 + $15}' /proc/"$1"/stat 2>/dev/null || echo 0)
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do t=$((t + $(ticks "$c"))); done
  echo "$t"
}

one() {  # one LABEL SERVER...: prints "LABEL RW IOPS CPU-µs-per-request" for randread and randwrite
  local label=$1; shift
  rm -f "$tmp/sock"
  "$@" -f -U "$tmp/sock" memory size=256M &
  local pid=$!
  for _ in $(seq 600); do [ -S "$tmp/sock" ] && break; sleep 0.05; done
  nbdcopy "$tmp/fill" "nbd+unix://?socket=$tmp/sock"
  for rw in randread randwrite; do
    local t0
    t0=$(ticks "$pid")
    fio --name=b --ioengine=nbd --uri="nbd+unix://?socket=$tmp/sock" --rw=$rw --bs=4k --iodepth=32 --size=256M \
        --time_based --runtime="$secs" --output-format=json --output="$tmp/fio.json" >/dev/null
    /usr/bin/python3 -c "import json,os,sys; j=json.load(open(sys.argv[1]))['jobs'][0]; \
n = j['read']['total_ios'] + j['write']['total_ios']; hz = os.sysconf('SC_CLK_TCK'); \
print(sys.argv[2], sys.argv[3], int(j['read']['iops'] + j['write']['iops']), \
      round((int(sys.argv[5]) - int(sys.argv[4])) / hz * 1e6 / max(n, 1), 2))" \
      "$tmp/fio.json" "$label" $rw "$t0" "$(ticks "$pid")"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for _ in $(seq "$rounds"); do
  one allow-list "$NBDCAGE"
  one by-name env NBDCAGE_SANDBOX_WITHOUT=allow-list "$NBDCAGE"
  [ -n "${SKIP_NBDKIT:-}" ] || one nbdkit nbdkit
done | tee "$tmp/all"
/usr/bin/python3 - "$tmp/all" <<'PY'
import collections, statistics, sys
r = collections.defaultdict(list)
cpu = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, rw, iops, us = line.split()
    r[(label, rw)].append(int(iops))
    cpu[(label, rw)].append(float(us))
for rw in ("randread", "randwrite"):
    med = {l: statistics.median(r[(l, rw)]) for l in ("allow-list", "by-name", "nbdkit") if r[(l, rw)]}
    line = "%s medians: allow-list %d, by name only %d; allow-list / by name %.2f" % (
        rw, med["allow-list"], med["by-name"], med["allow-list"] / med["by-name"])
    if "nbdkit" in med:
        line += "; nbdkit %d, allow-list / nbdkit %.2f" % (med["nbdkit"], med["allow-list"] / med["nbdkit"])
    print(line)
    print("%s server CPU per request (µs, medians): %s" % (rw, ", ".join(
        "%s %.2f" % (l, statistics.median(cpu[(l, rw)])) for l in ("allow-list", "by-name", "nbdkit") if cpu[(l, rw)])))
PY
