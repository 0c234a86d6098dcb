# The same disk (byte at offset o is o % 251) for nbdkit's tcl plugin.
proc plugin_open {readonly} {
    return 1
}

proc get_size {h} {
    return 65536
}

proc pread {h count offset} {
    set bytes {}
    for {set i 0} {$i < $count} {incr i} {
        append bytes [binary format c [expr {($offset + $i) % 251}]]
    }
    return $bytes
}
