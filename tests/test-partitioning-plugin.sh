#!/bin/sh
# nbdcage's partitioning plugin: files behind an MBR (up to 4) or GPT
# table that sfdisk reads and verifies; each partition holds its file's
# bytes (zeroes to the end of its last sector); alignment=, mbr-id= and
# type-guid= apply to the files after them; writes reach the files, and a
# write that would change the table is refused.
. "$(dirname "$0")/functions.sh"
requires nbdcopy nbdsh sfdisk
PATH=$PATH:/usr/sbin:/sbin
cd "$tmp"
head -c 1048576 /dev/urandom > a
head -c 524288 /dev/urandom > b
head -c 1000 /dev/urandom > c
check_layout() {  # check_layout IMAGE LABEL FILE... : sfdisk's view and each partition's bytes
  img=$1 label=$2; shift 2
  sfdisk -J "$img" > layout.json || fail "sfdisk cannot read the $label table"
  /usr/bin/python3 - "$img" "$label" "$@" <<'PY' || fail "$label layout"
import json, sys
img, label, files = sys.argv[1], sys.argv[2], sys.argv[3:]
t = json.load(open("layout.json"))["partitiontable"]
assert t["label"] == label, t["label"]
parts = t["partitions"]
assert len(parts) == len(files), parts
data = open(img, "rb").read()
for p, f in zip(parts, files):
    want = open(f, "rb").read()
    got = data[p["start"] * 512:(p["start"] + p["size"]) * 512]
    assert p["size"] == (len(want) + 511) // 512, (f, p)
    assert got == want + bytes(len(got) - len(want)), "partition of %s holds other bytes" % f
print(label, [(p["start"], p["size"], p["type"]) for p in parts])
PY
}
"$NBDCAGE" -U - partitioning a b c --run 'nbdcopy "$uri" mbr.img' || fail "mbr"
check_layout mbr.img dos a b c
sfdisk -d mbr.img | grep -q "mbr.img1 .*bootable" || fail "the first MBR partition is not bootable"
"$NBDCAGE" -U - partitioning a b c partition-type=gpt --run 'nbdcopy "$uri" gpt.img' || fail "gpt"
check_layout gpt.img gpt a b c
sfdisk --verify gpt.img | grep -q "No errors detected" || { sfdisk --verify gpt.img; fail "the GPT does not verify"; }
for i in 1 2 3 4 5; do cp c "f$i"; done
"$NBDCAGE" -U - partitioning a f1 f2 f3 f4 --run 'nbdcopy "$uri" five.img' || fail "five files"
check_layout five.img gpt a f1 f2 f3 f4
echo "ok: MBR (bootable first), GPT (verified), five files as GPT"

"$NBDCAGE" -U - partitioning a alignment=4K mbr-id=0x0c b type-guid=default c --run 'nbdcopy "$uri" opts.img'
sfdisk -J opts.img > layout.json
/usr/bin/python3 - <<'PY' || fail "alignment= and mbr-id="
import json
p = json.load(open("layout.json"))["partitiontable"]["partitions"]
assert p[0]["start"] == 2048 and p[0]["type"] == "83", p[0]
assert p[1]["start"] == 4096 and p[1]["type"] == "c", p[1]      # 4K-aligned right after a
assert p[2]["start"] == 4096 + 1024 and p[2]["type"] == "c", p[2]
PY
echo "ok: alignment= and mbr-id= for the files after them"

"$NBDCAGE" -U - partitioning a b --run 'nbdsh -u "$uri" -c "
h.pwrite(b\"P\" * 4096, 2048 * 512 + 8192)
h.flush()
try:
    h.pwrite(b\"x\" * 512, 0)
    raise SystemExit(\"the MBR was overwritten\")
except nbd.Error as e:
    assert e.errno == \"EIO\", e.errno
mbr = h.pread(512, 0)
h.pwrite(mbr, 0)  # writing what is there is fine
"' || fail "writes"
[ "$(dd if=a bs=1 skip=8192 count=4 status=none)" = PPPP ] || fail "the write did not reach the file"
echo "ok: writes reach the files; the table cannot be changed"
if "$NBDCAGE" -U - partitioning a f1 f2 f3 f4 partition-type=mbr --run true 2>err; then fail "5 MBR partitions"; fi
grep -q "no extended one" err || { cat err; fail "5 MBR partitions: message"; }
if "$NBDCAGE" -U - partitioning a type-guid=nonsense b --run true 2>err; then fail "a bad GUID"; fi
grep -q "not a GUID" err || fail "bad GUID: message"
echo PASS
