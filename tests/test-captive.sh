#!/bin/sh
# --run: variables, exit status (including 128+signal), the private socket
# directory removed afterwards, and no process left behind.
. "$(dirname "$0")/functions.sh"

# The command sees the documented variables, unexported.
"$NBDCAGE" -U - -e 'a b' memory 1M --run '
  echo "uri=$uri"; echo "nbd=$nbd"; echo "port=$port"; echo "unixsocket=$unixsocket"
  echo "exportname=$exportname"; echo "tls=$tls"; echo "exported=$(sh -c "echo \${uri:-none}")"' > "$tmp/vars"
cat "$tmp/vars"
sock=$(sed -n 's/^unixsocket=//p' "$tmp/vars")
grep -q "^uri=nbd+unix:///a%20b?socket=$sock\$" "$tmp/vars" || fail "uri"
grep -q "^nbd=nbd+unix:///a%20b?socket=$sock\$" "$tmp/vars" || fail "nbd"
grep -q '^port=$' "$tmp/vars" || fail "port"
grep -q '^exportname=a b$' "$tmp/vars" || fail "exportname"
grep -q '^tls=0$' "$tmp/vars" || fail "tls"
grep -q '^exported=none$' "$tmp/vars" || fail "variables must not be exported"
[ ! -e "$sock" ] && [ ! -e "$(dirname "$sock")" ] || fail "private socket directory left behind"

# The exit status is the command's.
set +e
"$NBDCAGE" -U - memory 1M --run 'exit 2'; s=$?
[ $s -eq 2 ] || fail "exit 2 gave $s"
"$NBDCAGE" -U - memory 1M --run 'kill -9 $$'; s=$?
[ $s -eq 137 ] || fail "SIGKILL gave $s, expected 137"
set -e

# Nothing survives: the plugin host is gone when nbdcage returns.
"$NBDCAGE" -U - memory 1M --run 'echo $PPID > '"$tmp/ppid"'; ls /proc/$PPID/task/*/children >/dev/null; cat /proc/$PPID/task/*/children > '"$tmp/children"
for child in $(cat "$tmp/children"); do
  case "$(cat /proc/"$child"/comm 2>/dev/null)" in
    nbdcage-pluginh | nbdcage-reaper) fail "plugin host $child survived" ;;
  esac
done
[ ! -d /proc/"$(cat "$tmp/ppid")" ] || fail "nbdcage itself survived"

# A user -U socket is usable at once by the command and removed afterwards.
"$NBDCAGE" -U "$tmp/s" memory 1M --run 'test -S "$unixsocket" && nbdinfo --size "$uri"' > "$tmp/size"
[ "$(cat "$tmp/size")" = 1048576 ] || fail "size via -U PATH"
[ ! -e "$tmp/s" ] || fail "-U PATH socket left behind"
# ...so the same path serves again.
"$NBDCAGE" -U "$tmp/s" memory 1M --run 'nbdinfo --size "$uri"' >/dev/null || fail "restart on the same path"
echo PASS
