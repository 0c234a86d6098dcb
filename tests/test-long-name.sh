#!/bin/sh
# A 4096-byte export name (-e) reaches --run verbatim in $exportname and
# percent-encoded in $uri, for Unix and TCP; 4097 bytes are refused.
. "$(dirname "$0")/functions.sh"
name=$(head -c 4096 /dev/zero | tr '\0' 'n')
"$NBDCAGE" -U - -e "$name" memory 1M --run 'printf "%s\n%s\n" "$exportname" "$uri"' > "$tmp/out"
[ "$(sed -n 1p "$tmp/out")" = "$name" ] || fail "exportname differs"
sed -n 2p "$tmp/out" | grep -q "^nbd+unix:///$name?socket=/" || fail "unix uri"
port=$(( 50000 + $(od -An -N2 -tu2 /dev/urandom) % 15000 ))
"$NBDCAGE" -p "$port" -e "$name" memory 1M --run 'echo "$uri"' > "$tmp/tcp" || fail "TCP run failed"
[ "$(cat "$tmp/tcp")" = "nbd://localhost:$port/$name" ] || fail "tcp uri"
set +e
"$NBDCAGE" -U - -e "${name}n" memory 1M --run true 2> "$tmp/err"; status=$?
set -e
[ $status -eq 1 ] && grep -q 'longer than 4096' "$tmp/err" || fail "a 4097-byte name was not refused"
echo PASS
