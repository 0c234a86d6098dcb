#!/bin/sh
# --exit-with-parent: when the process that started nbdcage exits, nbdcage
# (and its plugin host) go too.
. "$(dirname "$0")/functions.sh"
sh -c "\"$NBDCAGE\" --exit-with-parent -f -U '$tmp/sock' memory 1M & echo \$! > '$tmp/pid'
       while [ ! -S '$tmp/sock' ]; do sleep 0.05; done
       cat /proc/\$(cat '$tmp/pid')/task/*/children > '$tmp/host'" &
parent=$!
wait $parent
pid=$(cat "$tmp/pid")
host=$(cat "$tmp/host")
[ -n "$host" ] || fail "no plugin host seen"
gone() { ! kill -0 "$pid" 2>/dev/null && ! kill -0 "$host" 2>/dev/null; }
poll 30 gone || { kill "$pid" 2>/dev/null; fail "nbdcage outlived its parent"; }
[ ! -e "$tmp/sock" ] || fail "the socket was left behind"
echo PASS
