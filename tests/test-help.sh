#!/bin/sh
# --help and the man page document the same options; --version names us;
# --dump-config says where things are.
. "$(dirname "$0")/functions.sh"
man=${NBDCAGE_SOURCE:?}/man/nbdcage.1

"$NBDCAGE" --help > "$tmp/help"
"$NBDCAGE" --version | grep -q '^nbdcage [0-9]' || fail "--version"
"$NBDCAGE" -V | grep -q '^nbdcage [0-9]' || fail "-V"
grep -q '^Usage: nbdcage' "$tmp/help" || fail "--help has no usage line"

grep -o -- '--[a-z][a-z-]*' "$tmp/help" | sort -u > "$tmp/help-opts"
sed -n 's/\\-/-/g; s/\\fB//g; s/\\fR//g; /^\.B/p; /^\.TP/p; /^\.BI/p; /^\.BR/p' "$man" \
  | grep -o -- '--[a-z][a-z-]*' | sort -u > "$tmp/man-opts"
diff -u "$tmp/man-opts" "$tmp/help-opts" || fail "--help and nbdcage.1 disagree on the options"
[ "$(wc -l < "$tmp/help-opts")" -ge 12 ] || fail "too few options found"

# --dump-config: KEY=VALUE lines naming where things are.
"$NBDCAGE" --dump-config > "$tmp/config"
grep -q '^version=[0-9]' "$tmp/config" || fail "--dump-config: no version"
grep -q '^version_major=[0-9][0-9]*$' "$tmp/config" || fail "--dump-config: no version_major"
grep -q '^bindir=/' "$tmp/config" || fail "--dump-config: no bindir"
host=$(sed -n 's/^pluginhost=//p' "$tmp/config")
[ -x "$host" ] || fail "--dump-config: pluginhost=$host is not executable"

# --dump-config with a plugin: also the sandbox that command line gets.
: > "$tmp/disk"; mkdir "$tmp/extra"
"$NBDCAGE" --dump-config file "$tmp/disk" --allow-path="$tmp/extra:ro" > "$tmp/sandbox"
grep -q '^version=' "$tmp/sandbox" || fail "--dump-config PLUGIN: no build configuration"
grep -qx 'sandbox=on' "$tmp/sandbox" || fail "--dump-config PLUGIN: sandbox not on"
grep -qx "sandbox_path=$tmp/disk" "$tmp/sandbox" || fail "the file= path is not granted read-write"
grep -qx "sandbox_path=$tmp/extra:ro" "$tmp/sandbox" || fail "--allow-path=...:ro is not granted read-only"
grep -qx 'sandbox_network=none' "$tmp/sandbox" || fail "network is not refused by default"
grep -qx 'sandbox_exec=refused' "$tmp/sandbox" || fail "exec is not refused for a C plugin"
grep -q '^sandbox_landlock_abi=[0-9]' "$tmp/sandbox" || fail "no Landlock ABI"
"$NBDCAGE" --dump-config -r --allow-network --allow-exec file "$tmp/disk" > "$tmp/sandbox"
grep -qx "sandbox_path=$tmp/disk:ro" "$tmp/sandbox" || fail "-r does not make the grant read-only"
grep -qx 'sandbox_network=allowed' "$tmp/sandbox" || fail "--allow-network is not shown"
grep -qx 'sandbox_exec=allowed' "$tmp/sandbox" || fail "--allow-exec is not shown"
"$NBDCAGE" --dump-config --no-sandbox memory 1M | grep -qx 'sandbox=off' || fail "--no-sandbox is not shown"
if "$NBDCAGE" --dump-config memory 1M --allow-path="$tmp/missing" 2> "$tmp/err"; then fail "a missing --allow-path was accepted"; fi
grep -q "allow-path: $tmp/missing: no such file" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
echo PASS
