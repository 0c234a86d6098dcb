#!/bin/sh
# The plugin may read nbdcage's standard input while it configures itself,
# as with nbdkit (nbdkit_stdio_safe): the sh plugin's script from stdin
# (sh -), a password from stdin (password=-) or from a descriptor
# nbdcage was given (password=-3 3<FILE); +FILE passwords reach the
# sandbox; with -s (stdin is the client) and in a restarted host it is
# refused with a reason, and a host configured from stdin is not replaced
# by one that could not read it again.
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdinfo nbdsh
secret=${NBDCAGE_BUILD:?}/tests/plugins/secret.so

# password=- from a pipe, +FILE, and a literal: the plugin got each.
printf 'hunter2\n' | "$NBDCAGE" -U - "$secret" password=- --run 'nbdcopy "$uri" -' > "$tmp/got" ||
  fail "password=-"
[ "$(cat "$tmp/got")" = hunter2 ] || fail "password=-: the plugin got '$(cat "$tmp/got")'"
printf 'from a file\n' > "$tmp/pw"
"$NBDCAGE" -U - "$secret" password=+"$tmp/pw" --run 'nbdcopy "$uri" -' > "$tmp/got" </dev/null || fail "password=+FILE"
[ "$(cat "$tmp/got")" = "from a file" ] || fail "password=+FILE: the plugin got '$(cat "$tmp/got")'"
echo "ok: password=- and password=+FILE"

# nbdkit 1.36-1.46's helpers, as a plugin built against them calls them.
"$NBDCAGE" -v -U - "$secret" password=hunter2 delay=1.5ms probability=1:8 --run true 2>"$tmp/log" </dev/null ||
  { cat "$tmp/log"; fail "the newer API"; }
grep -q "password: 00000000: 68 75 6e 74 65 72 32 " "$tmp/log" || { cat "$tmp/log"; fail "nbdkit_debug_hexdump"; }
grep -q "|hunter2|" "$tmp/log" || fail "nbdkit_debug_hexdump: no text column"
grep -Eq "debug: 20[0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9:]{8}\.[0-9]{6}: delay 0 s 1500000 ns" "$tmp/log" ||
  { cat "$tmp/log"; fail "nbdkit_parse_delay / nbdkit_timestamp"; }
grep -q "probability 0.1250" "$tmp/log" || fail "nbdkit_parse_probability"
if "$NBDCAGE" -U - "$secret" password=x delay=soon --run true 2>"$tmp/err" </dev/null; then fail "delay=soon accepted"; fi
grep -q "could not parse delay 'soon'" "$tmp/err" || { cat "$tmp/err"; fail "parse_delay error"; }
echo "ok: nbdkit_debug_hexdump, nbdkit_parse_delay, nbdkit_parse_probability, nbdkit_timestamp"

# password=-FD: read from a descriptor nbdcage was given (3<FILE), which
# the first plugin host gets; one that is not open is refused clearly.
"$NBDCAGE" -U - "$secret" password=-3 --run 'nbdcopy "$uri" -' 3<"$tmp/pw" > "$tmp/got" </dev/null || fail "password=-3"
[ "$(cat "$tmp/got")" = "from a file" ] || fail "password=-3: the plugin got '$(cat "$tmp/got")'"
"$NBDCAGE" -U - "$secret" password=-3 --dump-plugin 3<"$tmp/pw" >/dev/null </dev/null || fail "password=-3 --dump-plugin"
if "$NBDCAGE" -U - "$secret" password=-7 --run true 2>"$tmp/err" </dev/null; then fail "password=-7 accepted"; fi
grep -q "password=-7: descriptor 7 is not open here" "$tmp/err" || { cat "$tmp/err"; fail "password=-7: message"; }
# -s: stdin is the client's.
if nbdsh -c "h.connect_command(['$NBDCAGE', '-s', '$secret', 'password=-'])" >/dev/null 2>"$tmp/err"; then
  fail "password=- with -s accepted"
fi
grep -q "password=-: standard input is not available here" "$tmp/err" || { cat "$tmp/err"; fail "-s: message"; }
echo "ok: password=-FD from a descriptor; an unopened one and password=- with -s refused with a reason"

# sh -: the script comes from stdin.
if [ -e "${NBDKIT_PLUGINDIR:?}/nbdkit-sh-plugin.so" ]; then
  cat > "$tmp/script" <<'SH'
#!/bin/sh
case "$1" in
  get_size) echo 8192 ;;
  pread) yes from-stdin | head -c "$3" ;;
  *) exit 2 ;;
esac
SH
  "$NBDCAGE" -U - sh - --run 'nbdcopy "$uri" -' < "$tmp/script" > "$tmp/got" 2>"$tmp/err" || { cat "$tmp/err"; fail "sh -"; }
  yes from-stdin | head -c 8192 > "$tmp/want"
  cmp -s "$tmp/want" "$tmp/got" || fail "sh -: wrong bytes"
  echo "ok: sh - (script on stdin)"
fi

# A host configured from stdin that dies is not replaced: the export is
# refused, and the log says why.
printf 'hunter2\n' > "$tmp/in"
rm -f "$tmp/sock"
"$NBDCAGE" -f -U "$tmp/sock" "$secret" password=- < "$tmp/in" 2>"$tmp/log" & pid=$!
cleanup_fn "kill $pid 2>/dev/null"
poll 30 test -S "$tmp/sock" || fail "did not serve"
[ "$(nbdinfo --size "nbd+unix://?socket=$tmp/sock")" = 7 ] || fail "size before the crash"
kill -9 $(host_pids "$pid")
poll 10 grep -q "was killed by signal 9" "$tmp/log" || fail "the host's death was not noticed"
if nbdinfo --size "nbd+unix://?socket=$tmp/sock" 2>/dev/null; then fail "served after its host died"; fi
poll 10 grep -q "what it read from standard input cannot be read again" "$tmp/log" || { cat "$tmp/log"; fail "no reason"; }
kill "$pid"; wait "$pid" || true
echo "ok: a host configured from stdin is not restarted"
echo PASS
