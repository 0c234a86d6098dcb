#!/bin/sh
# The plugin host honours the thread model: a slow PARALLEL plugin gets
# its requests run concurrently (workers join while calls are slow), and a
# SERIALIZE_REQUESTS plugin never sees two at once.  Measured by the plugin
# itself: each pread marks itself running and records how many were.
. "$(dirname "$0")/functions.sh"
requires nbdsh
eval_plugin=${NBDKIT_PLUGINDIR:?}/nbdkit-eval-plugin.so
[ -f "$eval_plugin" ] || { echo "SKIP: Debian's eval plugin is not installed"; exit 77; }

cat > "$tmp/client.py" <<'PY'
import nbd, os
h = nbd.NBD()
h.connect_uri(os.environ["uri"])
bufs = [nbd.Buffer(512) for i in range(8)]
for i in range(8):
    h.aio_pread(bufs[i], i * 4096)
while h.aio_in_flight() > 0:
    h.poll(-1)
assert all(b.to_bytearray() == bytearray(512) for b in bufs)
PY

run() {  # run MODEL: prints the highest concurrency the plugin saw
  rm -rf "$tmp/running"; mkdir "$tmp/running"; : > "$tmp/seen"
  "$NBDCAGE" -U - --allow-path="$tmp" "$eval_plugin" get_size='echo 1048576' thread_model="echo $1" \
    pread="d=$tmp/running/\$\$; mkdir \$d; ls \"$tmp/running\" | wc -l >> $tmp/seen; sleep 0.3; rmdir \$d; head -c \$3 /dev/zero" \
    --run "uri=\$uri /usr/bin/python3 '$tmp/client.py'"
  sort -n "$tmp/seen" | tail -1
}

p=$(run parallel)
echo "parallel: $p at once"
[ "$p" -ge 4 ] || fail "a slow parallel plugin ran only $p requests at once"
s=$(run serialize_requests)
echo "serialize_requests: $s at once"
[ "$s" -eq 1 ] || fail "a serialize_requests plugin ran $s requests at once"

# SERIALIZE_CONNECTIONS: a second connection waits until the first one's
# handle is closed; both are served.
rm -rf "$tmp/open"; mkdir "$tmp/open"; : > "$tmp/handles"
"$NBDCAGE" -U - --allow-path="$tmp" "$eval_plugin" get_size='echo 1048576' thread_model='echo serialize_connections' \
  open="mkdir $tmp/open/h\$\$; ls \"$tmp/open\" | wc -l >> $tmp/handles; echo h\$\$" \
  close="rmdir $tmp/open/\$2" pread='head -c $3 /dev/zero' \
  --run "for i in 1 2 3; do nbdsh -u \"\$uri\" -c 'import time; h.pread(512, 0); time.sleep(0.3)' & done; wait" \
  || fail "serialized connections were not all served"
[ "$(wc -l < "$tmp/handles")" -eq 3 ] || fail "expected 3 handles, saw $(wc -l < "$tmp/handles")"
[ "$(sort -n "$tmp/handles" | tail -1)" -eq 1 ] || fail "two handles were open at once"
echo PASS
