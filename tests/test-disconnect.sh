#!/bin/sh
# nbdkit_disconnect (nbdkit 1.34's API), from a plugin's read: graceful
# (the read completes, later requests fail with ESHUTDOWN) and forced (the
# client is dropped at once, without a reply), with and without a filter
# between; the server goes on serving the next client either way.
. "$(dirname "$0")/functions.sh"
requires nbdsh nbdinfo
bye=${NBDCAGE_BUILD:?}/tests/plugins/bye.so
for filters in "" "--filter=readahead"; do
  # shellcheck disable=SC2086
  "$NBDCAGE" -U - $filters "$bye" --run 'nbdsh -u "$uri" -c "
assert len(h.pread(512, 0)) == 512
assert len(h.pread(512, 4096)) == 512, \"the read that asked for the disconnect did not complete\"
try:
    h.pread(512, 0)
    raise SystemExit(\"served after nbdkit_disconnect(0)\")
except nbd.Error as e:
    assert e.errno == \"ESHUTDOWN\", e.errno
" && nbdsh -u "$uri" -c "
try:
    h.pread(512, 8192)
    raise SystemExit(\"the forced read was answered\")
except nbd.Error as e:
    assert e.errno != \"EIO\", \"an error reply instead of a dropped connection\"
assert h.aio_is_closed() or h.aio_is_dead(), \"still connected\"
" && nbdinfo --size "$uri"' > "$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; fail "nbdkit_disconnect ${filters:-without a filter}"; }
  [ "$(cat "$tmp/out")" = 1048576 ] || fail "the next client was not served"
  grep -q "the plugin disconnected a client" "$tmp/err" || fail "the forced disconnect was not logged"
  echo "ok: nbdkit_disconnect(0) and (1) ${filters:-without a filter}"
done
echo PASS
