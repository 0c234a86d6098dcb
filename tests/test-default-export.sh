#!/bin/sh
# The empty export name is the plugin's default export, by the plugin's own
# name for it: Debian's ondemand plugin (whose open refuses the empty name)
# serves "default", and a client sees that name in NBD_INFO_NAME.  A
# plugin without default_export keeps the empty name.
. "$(dirname "$0")/functions.sh"
requires nbdinfo nbdsh mkfs.ext4
[ -e "${NBDKIT_PLUGINDIR:?}/nbdkit-ondemand-plugin.so" ] || { echo "SKIP: no ondemand plugin"; exit 77; }

mkdir "$tmp/exports"
start_nbdcage ondemand dir="$tmp/exports" 8M 2>"$tmp/log"
nbdinfo --json "$uri" > "$tmp/info.json" || { cat "$tmp/log"; fail "nbdinfo on the default export"; }
/usr/bin/python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
assert e["export-name"] == "default", e["export-name"]
assert e["export-size"] == 8 * 1024 * 1024, e["export-size"]
' "$tmp/info.json" || { cat "$tmp/info.json"; fail "the default export's name or size"; }
[ -s "$tmp/exports/default" ] || fail "ondemand did not make its default file system"
# Writes reach it, and a reconnect (the empty name again) finds them.
nbdsh -u "$uri" -c 'h.pwrite(b"\xa5" * 512, 1 << 20); h.flush()'
out=$(nbdsh -u "$uri" -c 'print(h.pread(512, 1 << 20) == b"\xa5" * 512)')
[ "$out" = True ] || fail "the default export lost a write"
# A named export is its own.
nbdinfo --size "nbd+unix:///other?socket=$sock" | grep -qx 8388608 || fail "export 'other'"
[ -s "$tmp/exports/other" ] || fail "no file system for 'other'"
kill "$pid"; expect_exit 10 0

# Without default_export the name stays empty.
start_nbdcage memory 1M
nbdinfo --json "$uri" | /usr/bin/python3 -c '
import json, sys
assert json.load(sys.stdin)["exports"][0]["export-name"] == ""' || fail "memory's export name is not empty"
echo PASS
