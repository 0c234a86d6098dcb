# The same disk (byte at offset o is o % 251) for nbdkit's perl plugin.
use strict;

sub open { return 1; }

sub get_size { return 65536; }

sub pread {
  my ($h, $count, $offset) = @_;
  return join '', map { chr(($offset + $_) % 251) } 0 .. $count - 1;
}
