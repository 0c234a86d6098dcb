#!/bin/sh
# As root, the plugin host is nobody (or --sandbox-user), yet reaches what
# it was granted as its owner would: a root-owned 0600 file below a 0700
# directory is served read-write, and files it creates in a granted
# directory belong on disk to that directory's owner.  Where a grant cannot
# be given to that identity (a file system without idmapped mounts; no
# mount namespace and a path it cannot reach) it stays uid 0, says why,
# and still serves.  The --sandbox-files and --sandbox-processes limits
# are the host's.
. "$(dirname "$0")/functions.sh"
requires nbdsh
[ "$(id -u)" -eq 0 ] || { echo "SKIP: not root: the host keeps the caller's uid"; exit 77; }

# The host's uid and gid as the machine sees them (not its namespace).
host_ids() {
  h=$(host_pids "$pid" | head -n1)
  [ -n "$h" ] || fail "no plugin host"
  echo "$(awk '/^Uid:/ {print $2}' /proc/"$h"/status):$(awk '/^Gid:/ {print $2}' /proc/"$h"/status)"
}

# Not under /tmp, which the host sees as its own: a private directory of
# root's on the machine's file system.
outside=$(mktemp -d /var/tmp/nbdcage-identity.XXXXXX)
cleanup_fn "rm -rf '$outside'"
chmod 700 "$outside"
mkdir -m 700 "$outside/deep"
truncate -s 1M "$outside/deep/disk.img"
chmod 600 "$outside/deep/disk.img"

readwrite() {  # readwrite URI BYTE: write 64 KiB of BYTE, read it back
  nbdsh -u "$1" -c "h.pwrite(b'\\x$2' * 65536, 0); assert h.pread(65536, 0) == b'\\x$2' * 65536"
}

start_nbdcage file "$outside/deep/disk.img" 2> "$tmp/log"
[ "$(host_ids)" = "65534:65534" ] || fail "the host runs as $(host_ids), not nobody:nogroup"
readwrite "$uri" 5a || { cat "$tmp/log"; fail "nobody could not write the root-owned 0600 file it was granted"; }
[ "$(od -An -tx1 -N1 "$outside/deep/disk.img" | tr -d ' ')" = 5a ] || fail "the write did not reach the file"
[ "$(stat -c %u:%a "$outside/deep/disk.img")" = "0:600" ] || fail "the file's owner or mode changed"
if grep -q "stays uid 0" "$tmp/log"; then cat "$tmp/log"; fail "fell back to uid 0"; fi
kill "$pid"; wait "$pid" 2>/dev/null || true

# The limits reach the host (as the kernel shows them to anyone).
start_nbdcage --sandbox-files=64 --sandbox-processes=77 memory 1M
h=$(host_pids "$pid" | head -n1)
grep -Eq '^Max open files +64 +64 ' /proc/"$h"/limits || fail "--sandbox-files=64: $(grep 'open files' /proc/"$h"/limits)"
grep -Eq '^Max processes +77 +77 ' /proc/"$h"/limits || fail "--sandbox-processes=77: $(grep 'processes' /proc/"$h"/limits)"
kill "$pid"; wait "$pid" 2>/dev/null || true

start_nbdcage --sandbox-user=daemon:daemon memory 1M
[ "$(host_ids)" = "$(id -u daemon):$(id -g daemon)" ] || fail "--sandbox-user=daemon gave $(host_ids)"
kill "$pid"; wait "$pid" 2>/dev/null || true
start_nbdcage --sandbox-user=root memory 1M
[ "$(host_ids)" = "0:0" ] || fail "--sandbox-user=root gave $(host_ids)"
kill "$pid"; wait "$pid" 2>/dev/null || true

# A file the plugin makes in a granted directory is root's on disk (the
# directory's owner), though nobody made it.
if [ -f "${NBDKIT_PLUGINDIR:?}/nbdkit-eval-plugin.so" ]; then
  mkdir -m 700 "$outside/made"
  "$NBDCAGE" -U - --allow-path="$outside/made" "$NBDKIT_PLUGINDIR/nbdkit-eval-plugin.so" \
    get_size='echo 4096' pread="id -u > $outside/made/by-plugin; head -c \$3 /dev/zero" \
    --run 'nbdsh -u "$uri" -c "h.pread(512, 0)"' || fail "the eval plugin did not serve"
  [ "$(cat "$outside/made/by-plugin")" = 0 ] || fail "inside, the plugin is uid $(cat "$outside/made/by-plugin"), not 0 of its namespace"
  [ "$(stat -c %u "$outside/made/by-plugin")" = 0 ] || fail "the plugin's file is uid $(stat -c %u "$outside/made/by-plugin")'s on disk"
else
  echo "SKIP part: Debian's eval plugin is not installed"
fi

# /dev/full lives on devtmpfs, which has no idmapped mounts: uid 0, said.
start_nbdcage --allow-path=/dev/full memory 1M 2> "$tmp/log"
readwrite "$uri" 11 || fail "not served with a grant that cannot be idmapped"
[ "$(host_ids)" = "0:0" ] || fail "the host is $(host_ids) with a grant it cannot reach"
grep -q "stays uid 0 (without capabilities), since /dev/full" "$tmp/log" || { cat "$tmp/log"; fail "the fallback is not said"; }
kill "$pid"; wait "$pid" 2>/dev/null || true

# No mount namespace: nothing can be remounted.  A grant nobody cannot
# reach keeps uid 0 (and says so); one it can reaches it as it is.
NBDCAGE_SANDBOX_WITHOUT=namespaces start_nbdcage file "$outside/deep/disk.img" 2> "$tmp/log"
readwrite "$uri" 22 || fail "not served without namespaces"
[ "$(host_ids)" = "0:0" ] || fail "without namespaces the host is $(host_ids) though it cannot reach its file"
grep -q "stays uid 0.*not reachable by uid 65534 without a mount namespace" "$tmp/log" || { cat "$tmp/log"; fail "not said"; }
kill "$pid"; wait "$pid" 2>/dev/null || true
echo PASS
