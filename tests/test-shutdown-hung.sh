#!/bin/sh
# An orderly stop answers every request in flight before it closes a
# connection: 30 reads hung in the plugin (over 3 connections) each get a
# reply (EIO once the stop gives up on them), and nbdcage exits 0.
. "$(dirname "$0")/functions.sh"
requires nbdsh
eval_plugin=${NBDKIT_PLUGINDIR:?}/nbdkit-eval-plugin.so
[ -f "$eval_plugin" ] || { echo "SKIP: Debian's eval plugin is not installed"; exit 77; }

start_nbdcage --allow-path="$tmp" "$eval_plugin" get_size='echo 1048576' thread_model='echo parallel' \
  pread="echo x >> $tmp/started; sleep 60; head -c \$3 /dev/zero"

cat > "$tmp/hung.py" <<'PY'
import nbd, os, sys, time
hs = []
for c in range(3):
    h = nbd.NBD()
    h.connect_uri(os.environ["uri"])
    hs.append((h, [h.aio_pread(nbd.Buffer(512), i * 4096) for i in range(10)]))
open(sys.argv[1], "w").close()
answered = errors = 0
deadline = time.time() + 60
for h, cookies in hs:
    for c in cookies:
        try:
            while not h.aio_command_completed(c):
                if time.time() > deadline or h.aio_is_closed() or h.aio_is_dead():
                    raise TimeoutError
                h.poll(100)
            answered += 1
        except nbd.Error as e:
            # A reply with an error; a dropped connection is no reply.
            if e.errno == "EIO":
                answered += 1
                errors += 1
            else:
                print("lost:", e, file=sys.stderr)
        except TimeoutError:
            pass
print(answered, errors)
PY
uri=$uri /usr/bin/python3 "$tmp/hung.py" "$tmp/sent" > "$tmp/result" 2>&1 &
client=$!
poll 30 test -e "$tmp/sent" || fail "the client did not send its reads"
poll 30 sh -c "[ \$(wc -l < '$tmp/started') -ge 10 ]" || fail "the reads did not reach the plugin"
kill -TERM "$pid"
expect_exit 30 0
wait "$client" || true
read answered errors < "$tmp/result" || true
[ "$answered" = 30 ] || fail "only $answered of 30 requests in flight were answered ($(cat "$tmp/result"))"
echo "30 answered, $errors with an error"
echo PASS
