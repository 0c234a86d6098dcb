#!/bin/sh
# nbdkit's plugins by their short names, with nbdkit's own syntax: the
# language plugins take a script as the first bare parameter (they have no
# magic key, so it is script=), and nbdkit's installed .so files are found
# beside nbdcage's.  Each serves a disk whose byte at offset o is o % 251,
# checked against that reference, computed here (not against nbdkit).
. "$(dirname "$0")/functions.sh"
requires nbdcopy
scripts=${NBDCAGE_SOURCE:?}/tests/scripts
/usr/bin/python3 -c '
import sys
sys.stdout.buffer.write(bytes(o % 251 for o in range(65536)))' > "$tmp/pattern.bin"

served=0
check() {  # check NAME ARGS...: serves ARGS and compares every byte
  name=$1; shift
  rm -f "$tmp/out.bin"
  if ! "$NBDCAGE" -U - "$@" --run "nbdcopy \"\$uri\" '$tmp/out.bin'" 2>"$tmp/log"; then
    cat "$tmp/log"; fail "$name: nbdcage $*"
  fi
  cmp -s "$tmp/pattern.bin" "$tmp/out.bin" || fail "$name: wrong bytes"
  served=$((served + 1))
}
have() { [ -e "${NBDKIT_PLUGINDIR:?}/nbdkit-$1-plugin.so" ] || { echo "(no nbdkit $1 plugin: not checked)"; false; }; }

have python && check python python "$scripts/pattern.py"
have perl && check perl perl "$scripts/pattern.pl"
have lua && check lua lua "$scripts/pattern.lua"
# (Not ruby: Debian 12's ruby plugin crashes in Ruby 3.1 when called from a
# thread, under nbdkit itself too; nbdcage contains the crash, no more.)
have tcl && check tcl tcl "$scripts/pattern.tcl"
# script= still works, and so does a relative path.
have python && (cd "$scripts" && check python-relative python script=pattern.py)
# A .so of nbdkit's by name (eval and sh: programs, exec granted by policy).
have eval && check eval --allow-path="$tmp:ro" eval get_size='echo 65536' \
  pread="dd if='$tmp/pattern.bin' skip=\$4 count=\$3 iflag=skip_bytes,count_bytes status=none"
cat > "$tmp/pattern.sh" <<SH
#!/bin/sh
case "\$1" in
  get_size) echo 65536 ;;
  pread) dd if='$tmp/pattern.bin' skip="\$4" count="\$3" iflag=skip_bytes,count_bytes status=none ;;
  *) exit 2 ;;
esac
SH
chmod +x "$tmp/pattern.sh"
have sh && check sh --allow-path="$tmp:ro" sh "$tmp/pattern.sh"
# A script whose #! line names its language, given as the plugin.
have perl && {
  { echo '#!/usr/sbin/nbdkit perl'; cat "$scripts/pattern.pl"; } > "$tmp/shebang.pl"
  check shebang "$tmp/shebang.pl"
  # nbdkit's example4 (a perl script installed as a plugin), by name: a
  # RAM disk of zeroes (read-only, under nbdkit 1.32 too).
  [ -e "$NBDKIT_PLUGINDIR/nbdkit-example4-plugin" ] && {
    head -c 65536 /dev/zero > "$tmp/zero.bin"
    "$NBDCAGE" -U - example4 size=65536 --run "nbdcopy \"\$uri\" '$tmp/out.bin'" 2>"$tmp/log" ||
      { cat "$tmp/log"; fail "example4 by name"; }
    cmp -s "$tmp/zero.bin" "$tmp/out.bin" || fail "example4: wrong bytes"
    served=$((served + 1))
  }
}
printf '#!/bin/sh\necho hi\n' > "$tmp/notours.sh"
if "$NBDCAGE" "$tmp/notours.sh" 2>"$tmp/log"; then fail "a shell script as a plugin"; fi
grep -q "is a script for 'sh', not for nbdkit" "$tmp/log" || { cat "$tmp/log"; fail "no clear message for a foreign script"; }
[ "$served" -gt 0 ] || { echo "SKIP: no nbdkit plugin installed"; exit 77; }

# A second bare parameter is refused, saying what a bare one is for.
if "$NBDCAGE" -U - python "$scripts/pattern.py" extra --run true 2>"$tmp/log"; then fail "a second bare parameter"; fi
grep -q "parameter 'extra' is not KEY=VALUE" "$tmp/log" || { cat "$tmp/log"; fail "no clear message"; }
# An unknown name says where it looked.
if "$NBDCAGE" nosuchplugin 2>"$tmp/log"; then fail "an unknown plugin"; fi
grep -q "nbdkit-nosuchplugin-plugin.so in .*$NBDKIT_PLUGINDIR" "$tmp/log" || { cat "$tmp/log"; fail "no search path"; }
# NBDCAGE_PLUGIN_PATH comes first.
mkdir "$tmp/plugins"
cp "$NBDKIT_PLUGINDIR/nbdkit-null-plugin.so" "$tmp/plugins/nbdkit-nulltwin-plugin.so" 2>/dev/null && {
  size=$(NBDCAGE_PLUGIN_PATH=$tmp/plugins "$NBDCAGE" -U - nulltwin size=4096 --run 'nbdinfo --size "$uri"')
  [ "$size" = 4096 ] || fail "NBDCAGE_PLUGIN_PATH: got $size"
  NBDCAGE_PLUGIN_PATH=$tmp/plugins "$NBDCAGE" --dump-config | grep -qx "plugin_path=$tmp/plugins:.*" ||
    fail "--dump-config lacks the plugin path"
}
echo "PASS ($served plugins by name)"
