#!/bin/sh
# --on-plugin-crash: a restart never silently changes the data behind an
# export.  The memory plugin keeps its disk in its host's memory, so by
# default a crash makes its export refuse clients, with a log line saying
# why, while nbdcage lives on; "exit" ends nbdcage with status 1; "restart"
# serves a new, empty disk.  The file plugin's data is outside the host:
# by default it restarts, and the data is still there.
. "$(dirname "$0")/functions.sh"
requires nbdsh nbdinfo

write_then_kill() {  # writes a block, flushes, kills the host
  nbdsh -u "$uri" -c 'h.pwrite(b"\x5a" * 4096, 0); h.flush()'
  host=$(host_pids "$pid")
  [ -n "$host" ] || fail "no host"
  kill -9 $host
  poll 10 sh -c "[ \"\$(host_pids $pid)\" != '$host' ] || ! kill -0 $host 2>/dev/null" 2>/dev/null || true
  sleep 0.3
}

# The default for memory: fail.
start_nbdcage memory 1M 2> "$tmp/log"
write_then_kill
if nbdinfo --size "$uri" > /dev/null 2>&1; then fail "a client was served after the memory plugin's data was lost"; fi
if nbdinfo --size "$uri" > /dev/null 2>&1; then fail "a later client was served from an empty disk"; fi
kill -0 "$pid" || fail "nbdcage died with its plugin host"
grep -q "its data went with it" "$tmp/log" || { cat "$tmp/log"; fail "the crash was not explained in the log"; }
grep -q "data it kept in memory went with it" "$tmp/log" || { cat "$tmp/log"; fail "the refusal was not explained"; }
kill "$pid"; expect_exit 10 0

# exit: nbdcage ends with status 1.
start_nbdcage --on-plugin-crash=exit memory 1M 2> "$tmp/log"
write_then_kill
expect_exit 10 1

# restart: a new host, a new (empty) disk, as asked.
start_nbdcage --on-plugin-crash=restart memory 1M 2> "$tmp/log"
write_then_kill
out=$(nbdsh -u "$uri" -c 'print(h.pread(4, 0) == bytearray(4))')
[ "$out" = True ] || fail "restart: expected a new empty disk, got $out"
kill "$pid"; expect_exit 10 0

# The file plugin restarts by default, and the flushed data is there.
truncate -s 1M "$tmp/disk"
start_nbdcage file "$tmp/disk" 2> "$tmp/log"
write_then_kill
out=$(nbdsh -u "$uri" -c 'print(h.pread(4096, 0) == b"\x5a" * 4096)')
[ "$out" = True ] || { cat "$tmp/log"; fail "file: the data did not survive a restart"; }
kill "$pid"; expect_exit 10 0

# A crash loop is said once, with the plugin's last words.
hostile=${NBDCAGE_BUILD:?}/tests/plugins/hostile.so
start_nbdcage "$hostile" when=open attack=crash 2> "$tmp/log"
for i in 1 2 3; do  # each costs two hosts (the open is tried once more on a new one)
  if nbdinfo --size "nbd+unix:///attack?socket=$sock" > /dev/null 2>&1; then fail "a crashing open succeeded"; fi
done
kill -0 "$pid" || fail "nbdcage died in a crash loop"
[ "$(grep -c 'keeps dying' "$tmp/log")" = 1 ] || { cat "$tmp/log"; fail "the crash loop was not reported exactly once"; }
grep -A20 'keeps dying' "$tmp/log" | grep -q 'about to crash on purpose' ||
  { cat "$tmp/log"; fail "the crash loop report lacks the plugin's last words"; }
kill "$pid"; expect_exit 10 0

# A wrong value is a startup error.
if "$NBDCAGE" -U - --on-plugin-crash=maybe memory 1M --run true 2> "$tmp/err"; then fail "bad value accepted"; fi
grep -q "must be restart, fail or exit" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
echo PASS
