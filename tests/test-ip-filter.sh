#!/bin/sh
# The ip filter, as nbdkit's: by address over TCP (a single address, a
# range, a kind), by uid, gid and pid on a Unix socket; a refused client
# reads nothing (not even the greeting) and the log names the rule; allow
# wins over deny; with no lists nothing is filtered; a pipe (-s) is
# refused unless allow=all; rules nbdcage cannot honour are refused at
# startup.
. "$(dirname "$0")/functions.sh"
requires nbdinfo nbdsh ss
uid=$(id -u) gid=$(id -g)
served() { nbdinfo --size "$1" >/dev/null 2>&1; }

unix_case() {  # unix_case WANT ARGS...: served or refused over a Unix socket
  want=$1; shift
  "$NBDCAGE" -U - --filter=ip memory 1M "$@" --run 'nbdinfo --size "$uri"' >/dev/null 2>"$tmp/err" && got=served || got=refused
  [ "$got" = "$want" ] || { cat "$tmp/err"; fail "$*: $got, expected $want"; }
  if [ "$want" = refused ]; then grep -q "nbdcage: ip: client on a Unix socket (pid [0-9]*, uid $uid, gid $gid) refused" "$tmp/err" ||
    { cat "$tmp/err"; fail "$*: the refusal was not logged"; }; fi
  echo "ok: unix $*: $got"
}
unix_case served allow=uid:$uid deny=all
unix_case refused allow=uid:$((uid + 1)) deny=all
unix_case refused deny=uid:$uid
unix_case served allow=gid:$gid deny=all
unix_case refused deny=gid:$gid
unix_case served allow=anyunix deny=all
unix_case refused allow=anyipv4,anyipv6 deny=all
unix_case served deny=pid:1
unix_case served
unix_case served deny=127.0.0.1

# The refused client gets no greeting at all.
start_nbdcage --filter=ip memory 1M deny=all
/usr/bin/python3 - "$sock" <<'PY' || fail "a refused client read something"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(10)
assert s.recv(100) == b"", "the refused client got bytes"
PY
kill "$pid"; wait "$pid" || true
echo "ok: a refused client reads nothing"

# TCP.
for attempt in 1 2 3 4 5; do
  port=$(( 50000 + $(od -An -N2 -tu2 /dev/urandom) % 15000 ))
  ss -ltn | grep -q ":$port " || break
done
tcp_case() {  # tcp_case URI WANT ARGS...
  target=$1 want=$2; shift 2
  "$NBDCAGE" -f -p "$port" --filter=ip memory 1M "$@" 2>"$tmp/err" & pid=$!
  poll 30 sh -c "ss -ltn | grep -q ':$port '" || fail "not listening"
  served "$target" && got=served || got=refused
  kill "$pid"; wait "$pid" || true
  [ "$got" = "$want" ] || { cat "$tmp/err"; fail "$target $*: $got, expected $want"; }
  echo "ok: tcp $target $*: $got"
}
v4=nbd://127.0.0.1:$port
tcp_case "$v4" served allow=127.0.0.1 deny=all
tcp_case "$v4" refused deny=127.0.0.0/8
grep -q "client 127.0.0.1 refused (deny=127.0.0.0/8)" "$tmp/err" || fail "the TCP refusal was not logged"
tcp_case "$v4" served allow=127.0.0.0/24 deny=all
tcp_case "$v4" refused allow=10.0.0.0/8 deny=all
tcp_case "$v4" refused allow=anyipv6 deny=all
tcp_case "$v4" served allow=anyipv4 deny=any
if [ -e /proc/net/if_inet6 ] && /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
  v6="nbd://[::1]:$port"
  tcp_case "$v6" served allow=::1 deny=all
  tcp_case "$v6" refused allow=127.0.0.1 deny=all
  tcp_case "$v6" served allow=::/64 deny=all
else
  echo "(no IPv6 loopback here: IPv6 rules not checked)"
fi

# -s on a pipe: its kind cannot be told.
/usr/bin/python3 - "$NBDCAGE" <<'PY' || fail "a client on a pipe"
import subprocess, sys
def run(*rules):
    p = subprocess.Popen([sys.argv[1], "-s", "--filter=ip", "memory", "1M", *rules],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=30)
    return out, err
out, err = run("deny=127.0.0.1")
assert out == b"", "a pipe was served with a deny list"
assert b"refused" in err, err
out, err = run("allow=all", "deny=127.0.0.1")
assert out.startswith(b"NBDMAGIC"), "allow=all did not let the pipe in"
PY
echo "ok: a client on a pipe is refused, unless allow=all"

refused() {  # refused PATTERN ARGS...
  pattern=$1; shift
  if "$NBDCAGE" -U - --filter=ip memory 1M "$@" --run true 2>"$tmp/err"; then fail "accepted: $*"; fi
  grep -q -- "$pattern" "$tmp/err" || { cat "$tmp/err"; fail "$*: message"; }
  echo "ok: refused $*: $(cat "$tmp/err")"
}
refused "needs TLS" allow=dn:CN=client
refused "does not read clients' security labels" deny=security:system_u
refused "the prefix is longer than the address" allow=10.0.0.0/33
refused "is not an address, a range or a rule" allow=localhost
refused "an empty rule" allow=127.0.0.1,,::1
refused "a number was expected" allow=uid:root
echo PASS
