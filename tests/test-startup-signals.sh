#!/bin/sh
# Signals as an nbdkit user meets them:
# - SIGTERM or SIGINT while the plugin configures itself ends nbdcage at
#   once with the signal's status (143, 130), in the foreground, with --run
#   and in daemon mode (where the waiting foreground half passes it on, and
#   no server comes up afterwards); the plugin host goes too.
# - What a plugin starts gets default signal dispositions and an empty
#   mask, whatever nbdcage ignores or blocks (a shell pipeline into a
#   closed pipe ends instead of spinning).
. "$(dirname "$0")/functions.sh"
requires nbdinfo
hostile=${NBDCAGE_BUILD:?}/tests/plugins/hostile.so

# stopped HOW SIG STATUS ARGS...: nbdcage ARGS hangs in the plugin's config;
# SIG ends it within 5 s with STATUS, and nothing of it is left.
stopped() {
  how=$1 sig=$2 status=$3; shift 3
  rm -f "$tmp/sock"
  # (target= only marks this run's processes.)
  "$NBDCAGE" "$@" "$hostile" attack=hang when=config target="$tmp/mark" 2>"$tmp/log" &
  pid=$!
  cleanup_fn "pkill -9 -f 'target=$tmp/mark'"
  poll 20 pgrep -f "nbdcage-pluginhost.*target=$tmp/mark" >/dev/null || fail "$how: the plugin host never started"
  sleep 0.3  # in the plugin's config by now
  kill -"$sig" "$pid"
  expect_exit 5 "$status"
  sleep 0.2
  ! pgrep -f "target=$tmp/mark" >/dev/null || fail "$how: something of nbdcage is left: $(pgrep -af "target=$tmp/mark")"
  [ ! -e "$tmp/sock" ] || fail "$how: the server came up after SIG$sig"
  grep -q "SIG$sig while the plugin was starting" "$tmp/log" || { cat "$tmp/log"; fail "$how: no message"; }
  echo "ok: $how: SIG$sig -> $status"
}
stopped foreground TERM 143 -f -v -U "$tmp/sock"
stopped foreground INT 130 -f -v -U "$tmp/sock"
stopped captive TERM 143 -v -U - --run 'echo ran > '"$tmp/ran"
[ ! -e "$tmp/ran" ] || fail "captive: the --run command ran after SIGTERM"
stopped daemon TERM 143 -v -U "$tmp/sock"

# A perl plugin's script checks what the programs it runs inherit (awk
# reads its own status: no signal ignored, none blocked).  Perl's system()
# passes on what the host has, as a C plugin's would.  (Not the sh plugin:
# it resets SIGPIPE for its scripts itself.)
if [ -e "${NBDKIT_PLUGINDIR:?}/nbdkit-perl-plugin.so" ]; then
  cat > "$tmp/check.pl" <<'PL'
sub config_complete {
  my $awk = q{/^Sig(Ign|Blk):/ { if ($2 !~ /^0+$/) { print "inherited " $1 " " $2 > "/dev/stderr"; bad = 1 } }
              END { exit bad }};
  system("awk", $awk, "/proc/self/status") == 0 or die "a program the plugin ran inherited ignored or blocked signals";
  # SIGPIPE's default action ends a writer into a closed pipe.
  system("sh", "-c", "yes | head -c 1 >/dev/null") == 0 or die "yes | head failed";
}
sub open { return 1; }
sub get_size { return 4096; }
sub pread { my ($h, $count, $offset) = @_; return "\0" x $count; }
PL
  size=$(timeout 30 "$NBDCAGE" -U - perl "$tmp/check.pl" --run 'nbdinfo --size "$uri"' 2>"$tmp/log") ||
    { cat "$tmp/log"; fail "a program the plugin ran inherited an ignored or blocked signal"; }
  [ "$size" = 4096 ] || fail "perl plugin served $size bytes, not 4096"
  echo "ok: programs a plugin runs start with default signals"
else
  echo "(no nbdkit perl plugin: dispositions not checked)"
fi
