#!/bin/sh
# The plugin runs in a separate process: nbdcage itself never maps the
# plugin's code; its child nbdcage-pluginhost does, and runs sandboxed.
. "$(dirname "$0")/functions.sh"
start_nbdcage memory 1M
poll 10 sh -c "[ -n \"\$(cat /proc/$pid/task/*/children)\" ]" || fail "no plugin host child"
host=$(host_pids "$pid")
[ -n "$host" ] || fail "no nbdcage-pluginhost child of nbdcage"
[ "$host" != "$pid" ] || fail "the host is the frontend"
grep -q 'nbdcage-memory-plugin.so' /proc/"$host"/maps || fail "the host has not loaded the plugin"
if grep -q 'nbdcage-memory-plugin.so' /proc/"$pid"/maps; then fail "the frontend loaded plugin code"; fi
grep -q '^NoNewPrivs:[[:space:]]*1' /proc/"$host"/status || fail "the host did not set no_new_privs"
grep -q '^Seccomp:[[:space:]]*2' /proc/"$host"/status || fail "the host has no seccomp filter"
echo PASS
