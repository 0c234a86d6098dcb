#!/bin/sh
# The rate filter, measured in time (lower bounds only: a limit can make
# requests slower, never faster): rate= for the server, connection-rate=
# per connection, reads and writes in buckets of their own, rate-file=
# read while it runs; the bytes are right; bad values are refused.
. "$(dirname "$0")/functions.sh"
requires nbdsh
# Seconds (with a fraction) that the command takes.
timed() {
  start=$(date +%s.%N)
  "$@" || fail "$*"
  awk "BEGIN { print $(date +%s.%N) - $start }"
}
at_least() {  # at_least SECONDS MEASURED WHAT
  awk "BEGIN { exit !($2 >= $1) }" || fail "$3 took $2 s, less than the limit allows ($1 s)"
  echo "ok: $3: $2 s (at least $1 s)"
}
# 2 Mibit/s = 256 KiB/s, and a bucket of 2 s = 512 KiB: 1.5 MiB of reads
# wait at least (1.5 MiB - 512 KiB) / 256 KiB/s = 4 s.
reads='nbdsh -u "$uri" -c "
for i in range(6):
    assert len(h.pread(262144, i * 262144)) == 262144
"'
t=$(timed "$NBDCAGE" -U - --filter=rate memory 8M rate=2M --run "$reads")
at_least 3.5 "$t" "1.5 MiB of reads at rate=2M"

# Writes have a bucket of their own, and the bytes arrive.
t=$(timed "$NBDCAGE" -U - --filter=rate memory 8M connection-rate=2M --run 'nbdsh -u "$uri" -c "
d = bytes(range(256)) * 1024
for i in range(6):
    h.pwrite(d, i * 262144)
for i in range(6):
    assert h.pread(262144, i * 262144) == d, \"wrong bytes\"
"')
at_least 7 "$t" "1.5 MiB of writes, then 1.5 MiB of reads, at connection-rate=2M"

# connection-rate= is per connection: two at once each get it (together
# they wait as long as one), rate= is for all of them.
both() {
  "$NBDCAGE" -U - --filter=rate memory 8M "$@" --run "
    ($reads) & a=\$!
    ($reads) & b=\$!
    wait \$a && wait \$b"
}
t=$(timed both rate=2M)
at_least 9 "$t" "two clients sharing rate=2M (3 MiB)"

# rate-file=: no limit until the file says one.
rm -f "$tmp/rate"
"$NBDCAGE" -U - --filter=rate memory 8M rate-file="$tmp/rate" --run '
  t0=$(date +%s.%N)
  '"$reads"'
  t1=$(date +%s.%N)
  echo 2M > "'"$tmp"'/rate.new" && mv "'"$tmp"'/rate.new" "'"$tmp"'/rate"
  sleep 0.5
  '"$reads"'
  t2=$(date +%s.%N)
  awk "BEGIN { print $t1 - $t0 }" > "'"$tmp"'/before"
  awk "BEGIN { print $t2 - $t1 }" > "'"$tmp"'/after"' || fail "rate-file"
at_least 3.5 "$(cat "$tmp/after")" "1.5 MiB of reads after rate-file= said 2M"
echo "(before the file: $(cat "$tmp/before") s)"

for bad in rate=fast connection-rate=-1 burstiness=0 burstiness=x; do
  if "$NBDCAGE" -U - --filter=rate memory 1M "$bad" --run true 2>"$tmp/err"; then fail "$bad accepted"; fi
  grep -q "rate: " "$tmp/err" || { cat "$tmp/err"; fail "$bad: no message"; }
  echo "ok: refused $bad: $(cat "$tmp/err")"
done
echo PASS
