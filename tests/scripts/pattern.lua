-- The same disk (byte at offset o is o % 251) for nbdkit's lua plugin.
function open(readonly)
  return 1
end

function get_size(h)
  return 65536
end

function pread(h, count, offset)
  local bytes = {}
  for i = 0, count - 1 do
    bytes[#bytes + 1] = string.char((offset + i) % 251)
  end
  return table.concat(bytes)
end
