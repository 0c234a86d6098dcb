#!/bin/sh
# A client that leaves while the plugin is still opening its export costs
# nothing more: the connection waits for the plugin's answer beside its
# client, and ends when the client hangs up (the open is closed when it
# comes).  With --max-connections=1, the next client is admitted at once,
# long before the hung open's deadline.
. "$(dirname "$0")/functions.sh"
requires nbdinfo

hostile=${NBDCAGE_BUILD:?}/tests/plugins/hostile.so
start_nbdcage --max-connections=1 --request-timeout=60 "$hostile" when=open attack=hang 2>"$tmp/log"
nbdinfo --size "nbd+unix:///attack?socket=$sock" >/dev/null 2>&1 &
waiting=$!
cleanup_fn "kill $waiting 2>/dev/null"
sleep 1  # its open hangs in the plugin
kill "$waiting"
wait "$waiting" 2>/dev/null || true
poll 10 sh -c "nbdinfo --size '$uri' >/dev/null 2>&1" ||
  { cat "$tmp/log"; fail "the next client was not admitted after the first left"; }
grep -q "the client left while the plugin answered" "$tmp/log" || { cat "$tmp/log"; fail "no word of the client leaving"; }
kill -0 "$pid" || fail "nbdcage died"
echo PASS
