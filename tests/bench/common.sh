# What every benchmark here starts with; source it from the repository's
# root.  Sets $NBDCAGE (the binary under test), puts the system's tools
# first on PATH (python3-libnbd needs /usr/bin/python3), exits 77 (skip)
# when nbdkit, fio or nbdcopy is missing, and makes $tmp (removed on exit)
# with $tmp/fill: 256 MiB of random bytes.
NBDCAGE=${NBDCAGE:-$PWD/build/frontend/nbdcage}
export PATH=/usr/bin:/bin:$PATH
for c in nbdkit fio nbdcopy; do command -v $c >/dev/null || { echo "bench: $c is missing"; exit 77; }; done
tmp=$(mktemp -d /tmp/nbdcage-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
head -c 256M /dev/urandom > "$tmp/fill"
