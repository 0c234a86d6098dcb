#!/bin/sh
# --filter=readahead never starves a request of buffer space: its 4 MiB
# window, placed in the middle of the shared area while a 30 MiB read held
# its start, is given back when a legal 32 MiB read finds no room (before,
# the read waited for ever with nothing in flight).
. "$(dirname "$0")/functions.sh"
requires nbdsh
cd "$tmp"
cat > slow.sh <<'SH'
#!/bin/sh
case "$1" in
  thread_model) echo parallel ;;
  get_size) echo 67108864 ;;
  pread) if [ "$4" = 0 ] && [ "$3" -gt 16777216 ]; then sleep 3; fi
         head -c "$3" /dev/zero ;;
  *) exit 2 ;;
esac
SH
chmod +x slow.sh
start_nbdcage --filter=readahead sh slow.sh 2> log
timeout 20 nbdsh -u "$uri" -c '
import time
buf = nbd.Buffer(30 << 20)
big = h.aio_pread(buf, 0)               # held by the plugin for 3 s: the start of the area
off = 30 << 20
t = time.time()
while off < (40 << 20):                 # sequential: windows of 64K, 128K, ... 4M
    h.pread(65536, off)
    off += 65536
assert time.time() - t < 2.5, "the window grew too slowly to fragment the area"
while not h.aio_command_completed(big):
    h.poll(-1)
print("fragmented", flush=True)
h.pread(32 << 20, 32 << 20)             # the largest legal read
print("answered")
' > out || { cat out log; fail "the 32 MiB read was not answered"; }
grep -q answered out || fail "no answer"
kill "$pid"; expect_exit 10 0
echo PASS
