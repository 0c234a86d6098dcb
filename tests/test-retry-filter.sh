#!/bin/sh
# retry and retry-request, through real clients, bytes checked:
# - retry: a copy survives its plugin host being killed twice mid-copy
#   (one connection, then four), reads and writes, and without the filter
#   the same crash fails it; a plugin whose reads fail now and then (an sh
#   script failing every third one) copies right, and fails without the
#   filter; retry-readonly turns writes into EROFS after the first failure;
#   a host that stays dead (the memory plugin is not restarted) fails the
#   request after `retries` reopens, and nbdcage lives on; a host past its
#   deadline is replaced and the request answered; open is retried while
#   the plugin refuses; a reopen that finds the export changed is not used.
# - retry-request: the failing script copies right; no retries fails;
#   the open is retried.
# - bad parameters and retry given twice are startup errors.
. "$(dirname "$0")/functions.sh"
requires nbdsh nbdcopy nbdinfo
cd "$tmp"
head -c 24M /dev/urandom > disk

# Kills nbdcage ($pid)'s plugin host while the copy ($copy) runs, twice:
# the second time once the first reopen is logged.
kill_host_twice() {
  sleep 0.5
  for n in 1 2; do
    kill -0 $copy 2>/dev/null || fail "the copy ended before crash $n: too fast to test"
    h=$(host_pids "$pid")
    [ -n "$h" ] || fail "no plugin host to kill"
    kill -9 $h
    poll 10 sh -c "[ \$(grep -c 'retry: reopened' log) -ge $n ]" || { cat log; fail "no reopen after crash $n"; }
    sleep 0.3
  done
}

# Runs nbdsh's Python $1 on $uri in the background; its `crash()` waits
# while the test kills the plugin host.
nbdsh_with_crash() {
  rm -f ready go
  nbdsh -u "$uri" -c '
import os, time
def crash():
    open("ready", "w").close()
    while not os.path.exists("go"):
        time.sleep(0.02)
'"$1" & sh_pid=$!
  poll 10 test -e ready || fail "nbdsh did not get to its crash"
  kill -9 $(host_pids "$pid")
  sleep 0.2
  touch go
  wait $sh_pid
}

# A read copy, one connection, four requests in flight; the delay below
# the retry stretches it to about 2.5 s.
start_nbdcage --filter=retry --filter=delay file disk retry-delay=0.1 rdelay=100ms 2> log
nbdcopy --connections=1 --requests=4 "$uri" out.img & copy=$!
kill_host_twice
wait $copy || { cat log; fail "the copy failed although retry was there"; }
cmp disk out.img || fail "the copy's bytes are wrong"
[ "$(grep -c 'retry: reopened' log)" -ge 2 ] || { cat log; fail "two reopens were not logged"; }
kill "$pid"; expect_exit 10 0
echo "ok: a read copy survives two host crashes"

# Four connections, and writes: a copy into the file plugin's export.
truncate -s 24M target
start_nbdcage --filter=retry --filter=delay file target retry-delay=0.1 wdelay=100ms 2> log
nbdcopy --connections=4 --requests=2 disk "$uri" & copy=$!
kill_host_twice
wait $copy || { cat log; fail "the write copy failed although retry was there"; }
kill "$pid"; expect_exit 10 0
cmp disk target || fail "the written bytes are wrong"
echo "ok: a write copy over four connections survives two host crashes"

# Without the filter, the same crash fails the copy (the check above is real).
start_nbdcage --filter=delay file disk rdelay=40ms 2> log
if nbdcopy --connections=1 --requests=4 "$uri" out2.img 2>/dev/null & copy=$!; then :; fi
sleep 0.7; kill -9 $(host_pids "$pid")
if wait $copy; then fail "a copy survived a crash with no retry filter"; fi
kill "$pid"; expect_exit 10 0

# A plugin whose every third read fails (its own counter in $tmpdir); its
# disk is made by the same command as the test's reference, "small".
cat > flaky.sh <<'SH'
#!/bin/sh
case "$1" in
  config_complete) seq 1 400000 | head -c 2M > "$tmpdir/disk" ;;
  get_size) stat -c %s "$tmpdir/disk" ;;
  pread) n=$(cat "$tmpdir/n" 2>/dev/null || echo 0); echo $((n + 1)) > "$tmpdir/n"
         if [ $((n % 3)) = 2 ]; then echo "EIO read number $n fails" >&2; exit 1; fi
         dd if="$tmpdir/disk" skip="$4" count="$3" iflag=skip_bytes,count_bytes status=none ;;
  *) exit 2 ;;
esac
SH
chmod +x flaky.sh
seq 1 400000 | head -c 2M > small
if "$NBDCAGE" -U - sh flaky.sh --run 'nbdcopy --requests=1 "$uri" flaky0.img' 2>/dev/null; then
  fail "the flaky plugin did not fail a copy on its own"
fi
"$NBDCAGE" -U - --filter=retry sh flaky.sh retry-delay=10ms \
  --run 'nbdcopy --requests=1 "$uri" flaky1.img' 2> log || { cat log; fail "retry: the flaky copy failed"; }
cmp small flaky1.img || fail "retry: the flaky copy's bytes are wrong"
grep -q "read number 2 fails" log || fail "the plugin's failure was not logged"
"$NBDCAGE" -U - --filter=retry-request sh flaky.sh retry-request-delay=10ms \
  --run 'nbdcopy --requests=1 "$uri" flaky2.img' 2> log || { cat log; fail "retry-request: the flaky copy failed"; }
cmp small flaky2.img || fail "retry-request: the flaky copy's bytes are wrong"
grep -q "retry-request: a read failed" log || fail "retry-request did not say it retried"
if "$NBDCAGE" -U - --filter=retry-request sh flaky.sh retry-request-retries=0 \
  --run 'nbdcopy --requests=1 "$uri" flaky3.img' 2>/dev/null; then fail "retry-request-retries=0 still retried"; fi
echo "ok: a plugin that fails every third read copies right with retry and retry-request"

# retry-readonly: after the first failure, writes get EROFS (EPERM on the
# wire); reads go on, and a new connection writes again.
start_nbdcage --filter=retry file target retry-delay=0.1 retry-readonly=true 2> log
nbdsh_with_crash '
h.pwrite(b"w" * 4096, 0)
h.flush()
crash()
assert h.pread(4096, 0) == b"w" * 4096
try:
    h.pwrite(b"x" * 4096, 0)
    raise SystemExit("a write succeeded after the read-only reopen")
except nbd.Error as e:
    assert e.errno == "EPERM", e.errno   # EROFS, as NBD says it
' || { cat log; fail "retry-readonly"; }
nbdsh -u "$uri" -c 'h.pwrite(b"y" * 4096, 0)' || fail "retry-readonly: a new connection could not write"
kill "$pid"; expect_exit 10 0
echo "ok: retry-readonly"

# A host that stays dead: the memory plugin is not restarted by default,
# so every reopen fails; the request fails after retries=2 reopens (0.1 s,
# then 0.2 s apart), and nbdcage goes on.
start_nbdcage --filter=retry memory 1M retries=2 retry-delay=0.1 2> log
nbdsh_with_crash '
h.pwrite(b"m" * 512, 0)
crash()
t = time.time()
try:
    h.pread(512, 0)
    raise SystemExit("a read succeeded from a dead memory disk")
except nbd.Error as e:
    assert e.errno == "EIO", e.errno
assert time.time() - t >= 0.25, time.time() - t
' || { cat log; fail "the dead host's request did not fail after its retries"; }
kill -0 "$pid" || fail "nbdcage died"
grep -q "trying again in 0.2 s" log || { cat log; fail "the doubled delay was not used"; }
grep -q "giving up" log || { cat log; fail "giving up was not said"; }
kill "$pid"; expect_exit 10 0
echo "ok: a host that stays dead fails after its retries"

# A host that misses its deadline (a read that hangs while the switch file
# exists) is killed; the request goes to its replacement.
mkdir switch
touch switch/hang
start_nbdcage --request-timeout=1 --allow-path="$tmp/switch" --filter=retry "$NBDCAGE_BUILD/tests/plugins/hostile.so" \
  when=pread attack=hang-if target="$tmp/switch/hang" retry-delay=0.2 2> log
nbdsh -u "nbd+unix:///attack?socket=$sock" -c 'h.pread(512, 0)' & sh_pid=$!
poll 10 grep -q "killed by signal 9" log || { cat log; fail "the hung host was not killed"; }
rm switch/hang
wait $sh_pid || { cat log; fail "the hung read was not answered by the replacement host"; }
grep -q "retry: reopened" log || { cat log; fail "no reopen"; }
kill "$pid"; expect_exit 10 0
echo "ok: a request past its deadline goes to the replacement host"

# Open is retried while the plugin refuses it (its first two opens fail).
cat > late.sh <<'SH'
#!/bin/sh
case "$1" in
  open) n=$(cat "$tmpdir/opens" 2>/dev/null || echo 0); echo $((n + 1)) > "$tmpdir/opens"
        [ "$n" -ge 2 ] || { echo "EIO not ready yet" >&2; exit 1; } ;;
  get_size) echo 1048576 ;;
  pread) head -c "$3" /dev/zero ;;
  *) exit 2 ;;
esac
SH
chmod +x late.sh
if "$NBDCAGE" -U - sh late.sh --run 'nbdinfo --size "$uri"' 2>/dev/null; then fail "late.sh opened at once"; fi
for f in "retry retry-delay=10ms" "retry-request retry-request-delay=10ms"; do
  set -- $f
  out=$("$NBDCAGE" -U - --filter=$1 sh late.sh $2 --run 'nbdinfo --size "$uri"' 2> log) || { cat log; fail "$1: open was not retried"; }
  [ "$out" = 1048576 ] || fail "$1: size $out"
  [ "$(grep -c 'trying again' log)" = 2 ] || { cat log; fail "$1: not two retried opens"; }
done
if "$NBDCAGE" -U - --filter=retry-request sh late.sh retry-request-delay=10ms retry-request-open=false \
  --run 'nbdinfo --size "$uri"' 2>/dev/null; then fail "retry-request-open=false retried the open"; fi
echo "ok: open retried (retry, retry-request; not with retry-request-open=false)"

# A reopen that finds the export changed (a new size each open) is not used.
cat > shifty.sh <<'SH'
#!/bin/sh
case "$1" in
  open) n=$(cat "$tmpdir/opens" 2>/dev/null || echo 0); echo $((n + 1)) > "$tmpdir/opens" ;;
  get_size) echo $((1048576 + 512 * $(cat "$tmpdir/opens"))) ;;
  pread) echo "EIO always" >&2; exit 1 ;;
  *) exit 2 ;;
esac
SH
chmod +x shifty.sh
if "$NBDCAGE" -U - --filter=retry sh shifty.sh retries=1 retry-delay=10ms \
  --run 'nbdsh -u "$uri" -c "h.pread(512, 0)"' 2> log; then fail "a read succeeded from a failing plugin"; fi
grep -q "the export changed on reopening (its size)" log || { cat log; fail "the changed export was not refused"; }
echo "ok: a changed export is not used"

# Bad parameters, and retry twice.
for bad in "retries=-1" "retries=x" "retry-delay=soon" "retry-exponential=maybe" "retry-readonly=2"; do
  if "$NBDCAGE" -U - --filter=retry memory 1M "$bad" --run true 2> err; then fail "retry took $bad"; fi
  grep -q "${bad%%=*}" err || { cat err; fail "the error for $bad does not name it"; }
done
if "$NBDCAGE" -U - --filter=retry-request memory 1M retry-request-open=perhaps --run true 2> err; then
  fail "retry-request took retry-request-open=perhaps"
fi
if "$NBDCAGE" -U - --filter=retry --filter=retry memory 1M --run true 2> err; then fail "retry was taken twice"; fi
grep -q "can be given once" err || { cat err; fail "retry twice: no clear error"; }
echo "ok: bad parameters"
