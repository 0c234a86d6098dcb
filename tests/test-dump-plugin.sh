#!/bin/sh
# --dump-plugin and --version with a plugin load it in a plugin host and
# print its facts; an unknown plugin fails; --dump-plugin with -s is an
# error that prints nothing on stdout.  The probes are sandboxed.
. "$(dirname "$0")/functions.sh"

"$NBDCAGE" memory --dump-plugin > "$tmp/dump"
for line in name=memory api_version=2 thread_model=parallel has_pread=1 has_pwrite=1 magic_config_key=size; do
  grep -qx "$line" "$tmp/dump" || { cat "$tmp/dump"; fail "--dump-plugin lacks $line"; }
done
grep -q '^path=/.*nbdcage-memory-plugin.so$' "$tmp/dump" || fail "--dump-plugin lacks the path"

"$NBDCAGE" null --version > "$tmp/version" || fail "null --version failed"
# The project's plugins carry nbdcage's version.
ours=$("$NBDCAGE" --version | cut -d' ' -f2)
grep -q '^nbdcage [0-9]' "$tmp/version" && grep -qx "null $ours" "$tmp/version" || { cat "$tmp/version"; fail "version lines"; }

set +e
"$NBDCAGE" nosuchplugin --version > /dev/null 2>&1; status=$?
"$NBDCAGE" --dump-plugin -s memory > "$tmp/out" 2> "$tmp/err"; status2=$?
set -e
[ $status -eq 1 ] || fail "an unknown plugin's --version gave $status"
[ $status2 -eq 1 ] && [ ! -s "$tmp/out" ] && [ -s "$tmp/err" ] || fail "--dump-plugin -s: $status2"

# A third-party plugin's own dump_plugin output follows ours.
example2=${NBDKIT_PLUGINDIR:?}/nbdkit-example2-plugin.so
if [ -f "$example2" ]; then
  "$NBDCAGE" "$example2" --dump-plugin > "$tmp/ex2"
  grep -q '^has_dump_plugin=1$' "$tmp/ex2" && grep -q '^example2_extra=' "$tmp/ex2" \
    || { cat "$tmp/ex2"; fail "example2's dump_plugin output missing"; }
fi

# The probes run sandboxed too: a plugin that writes outside its grants
# while it is configured for --dump-plugin or --version cannot (and can
# with --no-sandbox, which shows the check can fail).
hostile=${NBDCAGE_BUILD:?}/tests/plugins/hostile.so
for probe in --dump-plugin --version; do
  "$NBDCAGE" "$probe" "$hostile" when=config target="$tmp/pwned" attack=write-file > /dev/null
  [ ! -e "$tmp/pwned" ] || fail "$probe ran the plugin unconfined"
  "$NBDCAGE" "$probe" --no-sandbox "$hostile" when=config target="$tmp/pwned" attack=write-file > /dev/null 2>&1
  [ -e "$tmp/pwned" ] || fail "the write attack does not work even unsandboxed: the check proves nothing"
  rm -f "$tmp/pwned"
done
echo PASS
