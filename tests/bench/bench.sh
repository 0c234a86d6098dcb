#!/bin/bash
# Benchmarks nbdcage against nbdkit in one run, alternating the two servers
# round by round so that drift on the machine hits both alike, and prints
# each result as a ratio (nbdcage / nbdkit; above 1 means nbdcage is faster).
#
#   tests/bench/bench.sh [ROUNDS] [SECONDS]     (defaults: 3 rounds, 10 s)
#
# Workloads:
#   randread   fio --ioengine=nbd, 4 KiB random reads, QD32, on a 256 MiB
#              memory disk filled with data
#   randwrite  the same with random writes
#   copy       nbdcopy of a 1 GiB file-plugin export to null:
#   slowseq    sequential 4 KiB reads (one at a time, nbdsh) for SECONDS from
#              a plugin that takes 1 ms per call (Debian's eval plugin with a
#              sleep: a remote source), both servers with --filter=readahead
# Needs: nbdkit, fio, nbdcopy (./bootstrap installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
secs=${2:-10}
. tests/bench/common.sh

head -c 1G /dev/urandom > "$tmp/big"

server() {  # server NAME PLUGIN ARGS... : starts NAME on $tmp/sock, sets $spid
  local name=$1; shift
  rm -f "$tmp/sock"
  if [ "$name" = nbdcage ]; then "$NBDCAGE" -f -U "$tmp/sock" "$@" & else nbdkit -f -U "$tmp/sock" "$@" & fi
  spid=$!
  for _ in $(seq 600); do [ -S "$tmp/sock" ] && return 0; sleep 0.05; done
  echo "bench: $name did not start" >&2; exit 1
}
stop() { kill "$spid"; wait "$spid" 2>/dev/null || true; }

fio_iops() {  # fio_iops RW
  fio --name=b --ioengine=nbd --uri="nbd+unix://?socket=$tmp/sock" --rw="$1" --bs=4k --iodepth=32 \
      --size=256M --time_based --runtime="$secs" --output-format=json --output="$tmp/fio.json" >/dev/null
  /usr/bin/python3 -c "import json,sys; j=json.load(open(sys.argv[1]))['jobs'][0]; \
print(int(j['read']['iops'] + j['write']['iops']))" "$tmp/fio.json"
}

eval_plugin=${NBDKIT_PLUGINDIR:-/usr/lib/x86_64-linux-gnu/nbdkit/plugins}/nbdkit-eval-plugin.so
slowseq() {  # slowseq NAME: MiB/s of sequential 4K reads for $secs seconds
  local plugin=eval
  [ "$1" = nbdcage ] && plugin=$eval_plugin
  server "$1" --filter=readahead "$plugin" get_size='echo 1073741824' \
    pread='sleep 0.001; head -c $3 /dev/zero'
  /usr/bin/nbdsh -u "nbd+unix://?socket=$tmp/sock" -c "
import time
end = time.time() + $secs
n = 0
while time.time() < end:
    h.pread(4096, n * 4096)
    n += 1
print(int(n * 4096 / $secs / 1048576 * 100) / 100)
"
  stop
}

results=()
for r in $(seq "$rounds"); do
  for name in nbdcage nbdkit; do
    server "$name" memory size=256M
    nbdcopy "$tmp/fill" "nbd+unix://?socket=$tmp/sock"
    rr=$(fio_iops randread)
    rw=$(fio_iops randwrite)
    stop
    server "$name" file "$tmp/big"
    t0=$(date +%s.%N)
    nbdcopy "nbd+unix://?socket=$tmp/sock" null:
    t1=$(date +%s.%N)
    stop
    mbps=$(/usr/bin/python3 -c "print(int(1024 / ($t1 - $t0)))")
    seq=$(slowseq "$name")
    echo "round $r $name: randread ${rr} IOPS, randwrite ${rw} IOPS, copy ${mbps} MiB/s, slowseq ${seq} MiB/s"
    results+=("$r $name $rr $rw $mbps $seq")
  done
done
# The median over rounds of each round's ratio: one noisy round (this is a
# shared virtual machine) moves it far less than it moves a mean.
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import statistics, sys
rows = [l.split() for l in sys.stdin if l.strip()]
by = {}
for r, name, rr, rw, cp, sq in rows:
    by.setdefault(r, {})[name] = (int(rr), int(rw), int(cp), float(sq))
ratios = [[by[r]["nbdcage"][i] / by[r]["nbdkit"][i] for r in by] for i in range(4)]
print("ratio nbdcage/nbdkit (median of %d rounds): randread %.2f randwrite %.2f copy %.2f slowseq %.1f"
      % (len(by), *(statistics.median(x) for x in ratios)))'
