-- Replace a key's value only if it still holds the value the caller read: a
-- token someone else already replaced, a lock someone else now holds, or a
-- login code another attempt took over is left alone.
-- KEYS[1] the key; ARGV expected value, new value ('' deletes the key),
-- milliseconds the new value lives. Returns 1 if the key was changed.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
