#!/bin/sh
# nbdkit's command line (1.32 and what 1.34-1.46 added), option by option:
# each one nbdcage implements has its effect checked here; each one it does
# not is refused with exit 1 and a message that names it.
. "$(dirname "$0")/functions.sh"
requires nbdinfo ss
N=$NBDCAGE

free_port() {
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$(( 50000 + $(od -An -N2 -tu2 /dev/urandom) % 15000 ))
    ss -ltn | grep -q ":$port " || return 0
  done
}
# captive ARGS...: nbdcage -U - ARGS, its stdout in $out.
captive() { out=$("$N" -U - "$@" 2>"$tmp/err") || { cat "$tmp/err"; fail "nbdcage $*"; }; }
# refused OPTION PATTERN ARGS...: exit 1, one line naming OPTION, nothing served.
refused() {
  opt=$1 pattern=$2; shift 2
  set +e; "$N" -f -U "$tmp/rsock" "$@" > "$tmp/out" 2> "$tmp/err"; st=$?; set -e
  [ $st -eq 1 ] || fail "$opt: exit $st, expected 1"
  [ "$(wc -l < "$tmp/err")" -eq 1 ] || { cat "$tmp/err"; fail "$opt: not one line"; }
  grep -q -- "$pattern" "$tmp/err" || { cat "$tmp/err"; fail "$opt: message lacks '$pattern'"; }
  [ ! -e "$tmp/rsock" ] || fail "$opt: served anyway"
  echo "ok: $opt refused: $(cat "$tmp/err")"
}

# Aliases: each spelling has the option's effect.
for e in -e --exportname --export --export-name; do
  captive "$e" foo memory 1M --run 'echo "$exportname $uri"'
  [ "$out" = "foo nbd+unix:///foo?socket=$(echo "$out" | sed 's/.*socket=//')" ] || fail "$e: $out"
done
echo "ok: -e --exportname --export --export-name"
for r in -r --readonly --read-only; do
  captive "$r" memory 1M --run 'nbdinfo --json "$uri"'
  echo "$out" | grep -q '"is_read_only": true' || fail "$r: not read-only"
done
echo "ok: -r --readonly --read-only"
for n in -n --newstyle --new-style; do
  captive "$n" memory 1M --run 'nbdinfo --size "$uri"'
  [ "$out" = 1048576 ] || fail "$n"
done
echo "ok: -n --newstyle --new-style (accepted: newstyle is all nbdcage speaks)"
for p in -P --pidfile --pid-file; do
  rm -f "$tmp/pid"
  captive "$p" "$tmp/pid" memory 1M --run "cat '$tmp/pid'"
  [ -n "$out" ] && [ "$out" -gt 1 ] || fail "$p: pidfile holds '$out'"
done
echo "ok: -P --pidfile --pid-file"
for f in -f --foreground --no-fork; do
  rm -f "$tmp/sock"
  "$N" "$f" -U "$tmp/sock" memory 1M & pid=$!
  poll 30 test -S "$tmp/sock" || fail "$f: did not serve"
  kill -0 "$pid" || fail "$f: went into the background"
  kill "$pid"; wait "$pid" || true
done
echo "ok: -f --foreground --no-fork"
for t in "-t 0" "-t 1" "--threads=0" "--threads=64"; do
  # shellcheck disable=SC2086
  captive $t memory 1M --run 'nbdinfo --size "$uri"'
  [ "$out" = 1048576 ] || fail "$t"
done
echo "ok: -t 0 (the default), -t 1, --threads"
for to in --timeout=5 --time-out=5; do
  captive "$to" memory 1M --run 'nbdinfo --size "$uri"'
  [ "$out" = 1048576 ] || fail "$to"
done
refused --timeout "\-\-timeout must be a number" --timeout=soon memory 1M

# TCP: -i/--ipaddr/--ip-addr, -4, -6, --keepalive, --print-uri and its aliases.
for i in -i --ipaddr --ip-addr; do
  free_port
  "$N" -f "$i" 127.0.0.1 -p "$port" memory 1M & pid=$!
  poll 30 sh -c "ss -ltn | grep -q '127.0.0.1:$port '" || fail "$i: not listening on 127.0.0.1:$port"
  [ "$(nbdinfo --size "nbd://127.0.0.1:$port")" = 1048576 ] || fail "$i"
  kill "$pid"; wait "$pid" || true
done
echo "ok: -i --ipaddr --ip-addr"
for four in -4 --ipv4-only; do
  free_port
  "$N" -f "$four" -p "$port" memory 1M & pid=$!
  poll 30 sh -c "ss -ltn | grep -q '0.0.0.0:$port '" || fail "$four: no IPv4 listener"
  ! ss -ltn | grep -q "\[::\]:$port " || fail "$four: listens on IPv6 too"
  kill "$pid"; wait "$pid" || true
done
if ss -ltn | grep -q '\[::' || [ -e /proc/net/if_inet6 ]; then
  for six in -6 --ipv6-only; do
    free_port
    "$N" -f "$six" -p "$port" memory 1M & pid=$!
    poll 30 sh -c "ss -ltn | grep -q '\[::\]:$port '" || fail "$six: no IPv6 listener"
    ! ss -ltn | grep -q "0.0.0.0:$port " || fail "$six: listens on IPv4 too"
    [ "$(nbdinfo --size "nbd://[::1]:$port")" = 1048576 ] || fail "$six: no answer on ::1"
    kill "$pid"; wait "$pid" || true
  done
  echo "ok: -4 --ipv4-only -6 --ipv6-only"
else
  echo "ok: -4 --ipv4-only (no IPv6 here: -6 not checked)"
fi
refused "-4 -6" "cannot be used together" -4 -6 -p 10809 memory 1M
refused "-4 -U" "is for TCP" -4 memory 1M

for k in --keepalive --keep-alive; do
  free_port
  "$N" -f "$k" -i 127.0.0.1 -p "$port" memory 1M & pid=$!
  poll 30 sh -c "ss -ltn | grep -q '127.0.0.1:$port '" || fail "$k: not listening"
  nbdsh -u "nbd://127.0.0.1:$port" -c "import time; time.sleep(2)" & client=$!
  sleep 1
  ss -tno state established "( sport = :$port )" | grep -q "keepalive" || {
    ss -tno state established "( sport = :$port )"; fail "$k: the server's side has no keepalive timer"; }
  wait "$client"
  kill "$pid"; wait "$pid" || true
done
free_port
"$N" -f -i 127.0.0.1 -p "$port" memory 1M & pid=$!
poll 30 sh -c "ss -ltn | grep -q '127.0.0.1:$port '" || fail "not listening"
nbdsh -u "nbd://127.0.0.1:$port" -c "import time; time.sleep(2)" & client=$!
sleep 1
! ss -tno state established "( sport = :$port )" | grep -q "keepalive" || fail "keepalive without --keepalive"
wait "$client"; kill "$pid"; wait "$pid" || true
echo "ok: --keepalive --keep-alive (and none without)"

for u in --print-uri --print-url --show-uri --show-url; do
  rm -f "$tmp/sock"
  # (A file of its own: the background job's redirection truncates it late.)
  "$N" -f "$u" -U "$tmp/sock" memory 1M > "$tmp/uri$u" & pid=$!
  poll 30 test -s "$tmp/uri$u" || fail "$u: printed nothing"
  [ "$(cat "$tmp/uri$u")" = "nbd+unix://?socket=$tmp/sock" ] || fail "$u: printed '$(cat "$tmp/uri$u")'"
  [ "$(nbdinfo --size "$(cat "$tmp/uri$u")")" = 1048576 ] || fail "$u: the URI does not connect"
  kill "$pid"; wait "$pid" || true
done
free_port
"$N" --print-uri -i 127.0.0.1 -p "$port" -e disk -P "$tmp/daemon.pid" memory 1M > "$tmp/uri"
cleanup_fn "kill \$(cat $tmp/daemon.pid)"
[ "$(cat "$tmp/uri")" = "nbd://127.0.0.1:$port/disk" ] || fail "--print-uri (TCP, daemon): '$(cat "$tmp/uri")'"
[ "$(nbdinfo --size "$(cat "$tmp/uri")")" = 1048576 ] || fail "--print-uri: the TCP URI does not connect"
kill "$(cat "$tmp/daemon.pid")"
refused "--print-uri -s" "print-uri cannot be used with -s" --print-uri -s memory 1M
echo "ok: --print-uri --print-url --show-uri --show-url"

# Versions and probing (nbdkit-probing(1)).
v=$("$N" --version)
echo "$v" | grep -Eq '^nbdcage [0-9]+\.[0-9]+\.[0-9]+ \(nbdkit 1\.[0-9]+\.[0-9]+\)$' || fail "--version: $v"
set +e; "$N" --version nosuchplugin > "$tmp/out" 2>"$tmp/err"; st=$?; set -e
[ $st -eq 1 ] && [ ! -s "$tmp/out" ] || fail "--version nosuchplugin: status $st, stdout '$(cat "$tmp/out")'"
out=$("$N" memory --version)
[ "$(echo "$out" | sed -n 2p)" = "memory $(echo "$v" | cut -d' ' -f2)" ] || fail "memory --version: $out"
"$N" --dump-config > "$tmp/config"
for key in binary bindir exit_with_parent filterdir host_cpu host_os libdir mandir name nbdcage_version plugindir \
           run_default_socket sbindir selinux sysconfdir timeout_option tls version version_major version_minor \
           vsock_option zstd; do
  grep -q "^$key=" "$tmp/config" || fail "--dump-config lacks $key="
done
major=$(sed -n 's/^version_major=//p' "$tmp/config"); minor=$(sed -n 's/^version_minor=//p' "$tmp/config")
# The check nbdkit-probing(1) shows, for "nbdkit >= 1.12".
[ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -ge 12 ]; } || fail "version check >= 1.12 fails: $major.$minor"
grep -qx "exit_with_parent=yes" "$tmp/config" && grep -qx "tls=no" "$tmp/config" && grep -qx "name=nbdcage" "$tmp/config" ||
  fail "--dump-config values"
"$N" memory 1M --dump-plugin | grep -qx "max_thread_model=parallel" || fail "--dump-plugin lacks max_thread_model"
echo "ok: --version, PLUGIN --version, --dump-config keys, --dump-plugin max_thread_model"

# --long-options / --short-options list nbdkit's (1.32 to 1.46) and ours.
"$N" --long-options > "$tmp/long"
for o in --ipv4-only --ipv6-only --debug --dump-config --dump-plugin --exit-with-parent --export --export-name \
         --exportname --filter --foreground --no-fork --group --help --ip-addr --ipaddr --log --mask-handshake \
         --new-style --newstyle --no-sr --old-style --oldstyle --pid-file --pidfile --port --read-only --readonly \
         --run --selinux-label --single --stdin --swap --threads --tls --tls-certificates --tls-psk \
         --tls-verify-peer --unix --user --verbose --version --vsock --no-mc --no-meta-contexts \
         --no-structured-replies --print-uri --print-url --show-uri --show-url --timeout --time-out --keepalive \
         --keep-alive --name --tls-priority --long-options --short-options; do
  grep -qx -- "$o" "$tmp/long" || fail "--long-options lacks $o"
done
[ "$("$N" --short-options | tr '\n' ' ')" = "-4 -6 -D -P -U -V -e -f -g -h -i -n -o -p -r -s -t -u -v " ] ||
  fail "--short-options: $("$N" --short-options | tr '\n' ' ')"
echo "ok: --long-options --short-options"

# Refused, each with its reason.
refused -o "oldstyle protocol is not supported" -o memory 1M
refused --oldstyle "oldstyle protocol is not supported" --oldstyle memory 1M
refused --old-style "oldstyle protocol is not supported" --old-style memory 1M
refused -u "\-\-user: not supported: start nbdcage as that user" -u nobody memory 1M
refused --user "\-\-user: not supported" --user=nobody memory 1M
refused -g "\-\-group: not supported: start nbdcage as that group" -g nogroup memory 1M
refused --group "\-\-group: not supported" --group=nogroup memory 1M
refused --tls=on "\-\-tls: TLS is not supported yet" --tls=on memory 1M
refused --tls=require "\-\-tls: TLS is not supported yet" --tls=require memory 1M
refused --tls=maybe "\-\-tls must be off, on or require" --tls=maybe memory 1M
refused --tls-certificates "\-\-tls-certificates: TLS is not supported yet" --tls-certificates=/etc memory 1M
refused --tls-psk "\-\-tls-psk: TLS is not supported yet" --tls-psk=/etc/keys.psk memory 1M
refused --tls-verify-peer "\-\-tls-verify-peer: TLS is not supported yet" --tls-verify-peer memory 1M
refused --tls-priority "\-\-tls-priority: TLS is not supported yet" --tls-priority=NORMAL memory 1M
refused --mask-handshake "\-\-mask-handshake: not supported yet" --mask-handshake=0 memory 1M
for o in --no-sr --no-structured-replies --no-mc --no-meta-contexts; do
  refused "$o" "\\$o: not supported yet" "$o" memory 1M
done
if [ -e /sys/fs/selinux/enforce ]; then
  refused --selinux-label "\-\-selinux-label is not supported yet" --selinux-label=system_u:object_r:svirt_t:s0 memory 1M
else
  refused --selinux-label "\-\-selinux-label: SELinux is not enabled" --selinux-label=system_u:object_r:svirt_t:s0 memory 1M
fi
captive --tls=off memory 1M --run 'echo "$tls"; nbdinfo --size "$uri"'
[ "$out" = "0
1048576" ] || fail "--tls=off: $out"
echo "ok: --tls=off (what nbdcage does)"

# --swap: both processes locked in memory, where the memlock limit allows
# it (the plugin host has no privilege to exceed it); else a clear refusal.
if [ "$(ulimit -l)" = unlimited ] || (ulimit -l unlimited) 2>/dev/null; then
  rm -f "$tmp/sock"
  (ulimit -l unlimited 2>/dev/null; exec "$N" -f --swap -U "$tmp/sock" memory 1M) & pid=$!
  poll 30 test -S "$tmp/sock" || fail "--swap: did not serve"
  locked() { awk '/^VmLck:/ { print $2 }' "/proc/$1/status"; }
  [ "$(locked "$pid")" -gt 0 ] || fail "--swap: nbdcage is not locked in memory"
  [ -n "$(host_pids "$pid")" ] || fail "--swap: no plugin host found"
  for h in $(host_pids "$pid"); do [ "$(locked "$h")" -gt 0 ] || fail "--swap: plugin host $h is not locked"; done
  [ "$(nbdinfo --size "nbd+unix://?socket=$tmp/sock")" = 1048576 ] || fail "--swap: no answer"
  kill "$pid"; wait "$pid" || true
  echo "ok: --swap"
else
  refused --swap "\-\-swap: the plugin host cannot be locked in memory: RLIMIT_MEMLOCK is" --swap memory 1M
fi

# --log: a file (appended), default, and the known names; --name renames.
captive --log="$tmp/nbdcage.log" -v memory 1M --run 'nbdinfo --size "$uri"'
grep -q "nbdcage: debug: .*NBD_OPT_GO" "$tmp/nbdcage.log" || fail "--log=FILE: the file lacks the messages"
! grep -q "NBD_OPT_GO" "$tmp/err" || fail "--log=FILE: messages still went to stderr"
lines=$(wc -l < "$tmp/nbdcage.log")
captive --log="$tmp/nbdcage.log" -v memory 1M --run true
[ "$(wc -l < "$tmp/nbdcage.log")" -gt "$lines" ] || fail "--log=FILE: not appended"
captive --log=default memory 1M --run 'nbdinfo --size "$uri"'
refused "--log=bad" "\-\-log must be stderr, syslog, null, default or a file" --log=bad memory 1M
refused "--log=/nonexistent/x" "\-\-log=/nonexistent/x: No such file" --log=/nonexistent/x memory 1M
captive --name=in -v memory 1M --run true
grep -q "^in: debug: " "$tmp/err" && grep -q "^in-pluginhost: debug: " "$tmp/err" || { cat "$tmp/err"; fail "--name"; }
! grep -q "^nbdcage" "$tmp/err" || fail "--name: a line still says nbdcage"
refused "--name='a b'" "\-\-name must be a word" --name='a b' memory 1M
echo "ok: --log=FILE --log=default --name"

# @PATH: arguments from a file, one a line.
printf '%s\n' '# options and parameters' -e fromfile memory 2M > "$tmp/args"
captive @"$tmp/args" --run 'echo "$exportname"; nbdinfo --size "$uri"'
[ "$out" = "fromfile
2097152" ] || fail "@PATH: $out"
refused "@missing" "cannot read the argument file" @"$tmp/missing" memory 1M
echo "ok: @PATH"

# PLUGIN --help and --help PLUGIN: the plugin's parameters follow the usage.
"$N" memory --help | grep -q "^size=" || fail "memory --help lacks the plugin's parameters"
"$N" --help file | grep -q "^file=" || fail "--help file lacks the plugin's parameters"
echo "ok: PLUGIN --help"

# -D: the server's flag, a filter's, an unknown module's.
captive -v -D nbdkit.environ=1 memory 1M --run true
grep -q "debug: environ: PATH=" "$tmp/err" || fail "-D nbdkit.environ=1 printed no environment"
captive -D readahead.x=1 --filter=readahead memory 1M --run true
grep -q "warning: -D readahead.x: nbdcage's filters have no debug flags" "$tmp/err" || { cat "$tmp/err"; fail "-D FILTER.FLAG"; }
captive -D nosuch.flag=1 memory 1M --run true
grep -q "warning: -D nosuch.flag: there is no plugin or filter called 'nosuch'" "$tmp/err" || { cat "$tmp/err"; fail "-D other"; }
captive -D nbdkit.nosuch=1 memory 1M --run true
grep -q "warning: -D nbdkit.nosuch: nbdcage has no such debug flag" "$tmp/err" || { cat "$tmp/err"; fail "-D nbdkit.nosuch"; }
echo "ok: -D nbdkit.environ, FILTER.FLAG, unknown"

# -v traces the handshake and every request.
captive -v memory 1M --run 'nbdsh -u "$uri" -c "h.pread(512, 4096); h.flush()"'
for line in "newstyle negotiation" "option NBD_OPT_GO" "request NBD_CMD_READ cookie=0x[0-9a-f]* offset=4096 count=512" \
            "reply NBD_CMD_READ cookie=0x[0-9a-f]*: ok" "request NBD_CMD_FLUSH"; do
  grep -q "nbdcage: debug: .*$line" "$tmp/err" || { cat "$tmp/err"; fail "-v does not trace '$line'"; }
done
captive memory 1M --run 'nbdsh -u "$uri" -c "h.pread(512, 0)"'
! grep -q "NBD_CMD_READ" "$tmp/err" || fail "requests traced without -v"
echo "ok: -v traces the protocol"
echo PASS
