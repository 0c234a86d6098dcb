#!/bin/sh
# Inside the plugin host's sandbox a plugin (and every process it starts)
# cannot make new namespaces (unshare, clone with CLONE_NEW*), while it can
# still start processes and threads.  Debian's eval plugin runs shell
# snippets inside the host; the export's size says what they could do.
. "$(dirname "$0")/functions.sh"
requires nbdinfo unshare
eval_plugin=${NBDKIT_PLUGINDIR:?}/nbdkit-eval-plugin.so
[ -f "$eval_plugin" ] || { echo "SKIP: Debian's eval plugin is not installed"; exit 77; }
# Where the test runs, the same commands must work, or the check says nothing.
unshare -U true 2>/dev/null && unshare -m true 2>/dev/null ||
  { echo "SKIP: this machine does not allow namespaces at all"; exit 77; }

# size 4096: allowed (wrong); 8192: refused (right).
for ns in -U -m -n -p; do
  start_nbdcage "$eval_plugin" get_size="if unshare $ns true 2>/dev/null; then echo 4096; else echo 8192; fi"
  size=$(nbdinfo --size "$uri")
  [ "$size" = 8192 ] || fail "unshare $ns worked inside the sandbox (size $size)"
  kill "$pid"; expect_exit 10 0
done

# Processes and threads still work there: the snippets fork and exec, and
# the reads are served by the host's worker threads (clone3 answers ENOSYS,
# so threads are made with clone).
start_nbdcage "$eval_plugin" get_size='sh -c "echo 12288"' pread='head -c $3 /dev/zero'
[ "$(nbdinfo --size "$uri")" = 12288 ] || fail "a plugin could not start a process"
nbdsh -u "$uri" -c 'assert h.pread(4096, 4096) == bytearray(4096)' || fail "reads failed in the sandbox"
echo PASS
