#!/bin/sh
# Real plugins still work inside the sandbox: Debian's python, perl, sh,
# eval and curl plugins, with the paths their parameters name granted
# and nothing else; curl over HTTP only with --allow-network.
. "$(dirname "$0")/functions.sh"
requires nbdsh nbdinfo nbdcopy cmp
dir=${NBDKIT_PLUGINDIR:?}
have() { [ -f "$dir/nbdkit-$1-plugin.so" ] || { echo "SKIP part: Debian's $1 plugin is not installed"; return 1; }; }
cd "$tmp"

# python: a script (script=) that keeps a disk in memory.
if have python; then
  cat > disk.py <<'PY'
import nbdkit
disk = bytearray(1024 * 1024)
API_VERSION = 2
def open(readonly):
    return 1
def get_size(h):
    return len(disk)
def pread(h, buf, offset, flags):
    buf[:] = disk[offset:offset + len(buf)]
def pwrite(h, buf, offset, flags):
    disk[offset:offset + len(buf)] = buf
PY
  "$NBDCAGE" -U - "$dir/nbdkit-python-plugin.so" script=disk.py \
    --run 'nbdsh -u "$uri" -c "h.pwrite(b\"py\" * 2048, 4096); assert h.pread(4096, 4096) == b\"py\" * 2048"' ||
    fail "the python plugin does not work sandboxed"
fi

# perl: a script that serves a pattern.
if have perl; then
  cat > disk.pl <<'PL'
sub open { return 1; }
sub get_size { return 1048576; }
sub pread { my ($h, $count, $offset, $flags) = @_; return "\x42" x $count; }
PL
  out=$("$NBDCAGE" -U - "$dir/nbdkit-perl-plugin.so" script=disk.pl --run 'nbdsh -u "$uri" -c "print(h.pread(4, 0))"')
  [ "$out" = "bytearray(b'BBBB')" ] || fail "the perl plugin does not work sandboxed: $out"
fi

# sh: a script given as the bare parameter; it runs programs.
if have sh; then
  cat > disk.sh <<'SH'
#!/bin/sh
case "$1" in
  get_size) echo 1M ;;
  pread) head -c "$3" /dev/zero | tr '\0' 'S' ;;
  *) exit 2 ;;
esac
SH
  chmod +x disk.sh
  out=$("$NBDCAGE" -U - "$dir/nbdkit-sh-plugin.so" ./disk.sh --run 'nbdsh -u "$uri" -c "print(h.pread(2, 0))"')
  [ "$out" = "bytearray(b'SS')" ] || fail "the sh plugin does not work sandboxed: $out"
fi

# eval: inline snippets.
if have eval; then
  size=$("$NBDCAGE" -U - "$dir/nbdkit-eval-plugin.so" get_size='echo 65536' pread='head -c $3 /dev/zero' \
    --run 'nbdinfo --size "$uri"')
  [ "$size" = 65536 ] || fail "the eval plugin does not work sandboxed: $size"
fi

# tmpdisk runs mke2fs (exec) in the host's private /tmp.
if have tmpdisk && command -v mke2fs >/dev/null; then
  size=$("$NBDCAGE" -U - "$dir/nbdkit-tmpdisk-plugin.so" 16M --run 'nbdinfo --size "$uri"')
  [ "$size" = 16777216 ] || fail "the tmpdisk plugin does not work sandboxed: $size"
fi

# A granted file under /dev/shm is bound into the host's private /dev/shm.
shm=/dev/shm/nbdcage-test.$$
head -c 64K /dev/urandom > "$shm"
cleanup_fn "rm -f $shm"
"$NBDCAGE" -U - file "$shm" --run "nbdcopy \"\$uri\" '$tmp/shm.copy'" || fail "a file under /dev/shm was not served"
cmp "$shm" "$tmp/shm.copy" || fail "a file under /dev/shm read wrong bytes"

# curl: file:// is granted read-only; http:// needs --allow-network.
if have curl; then
  head -c 1M /dev/urandom > src.img
  "$NBDCAGE" -U - "$dir/nbdkit-curl-plugin.so" url="file://$tmp/src.img" --run "nbdcopy \"\$uri\" '$tmp/copy.img'" ||
    fail "curl (file://) does not work sandboxed"
  cmp src.img copy.img || fail "curl (file://) read wrong bytes"
  # A web server on loopback that answers byte ranges, as curl needs.
  cat > web.py <<'PY'
import http.server, os, re, sys
class Ranges(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def send_head(self):
        data = open(os.path.join(sys.argv[2], self.path.lstrip("/")), "rb").read()
        m = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if m:
            start, end = int(m.group(1)), int(m.group(2) or len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))
            data = data[start:end + 1]
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return data
    def do_HEAD(self):
        self.send_head()
    def do_GET(self):
        self.wfile.write(self.send_head())
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Ranges).serve_forever()
PY
  port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  /usr/bin/python3 web.py "$port" "$tmp" &
  web=$!
  cleanup_fn "kill $web"
  poll 20 sh -c "/usr/bin/python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", $port))' 2>/dev/null" ||
    fail "the test's web server did not start"
  rm -f copy.img
  "$NBDCAGE" -U - --allow-network "$dir/nbdkit-curl-plugin.so" url="http://127.0.0.1:$port/src.img" \
    --run "nbdcopy \"\$uri\" '$tmp/copy.img'" || fail "curl (http://) with --allow-network failed"
  cmp src.img copy.img || fail "curl (http://) read wrong bytes"
  if "$NBDCAGE" -U - "$dir/nbdkit-curl-plugin.so" url="http://127.0.0.1:$port/src.img" --run 'nbdinfo --size "$uri"' \
      > out 2>&1; then
    fail "curl reached the network without --allow-network"
  fi
fi
echo PASS
