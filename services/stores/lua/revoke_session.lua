-- End one session. KEYS[1] session, KEYS[2] identity's live sessions,
-- KEYS[3] identity's de-duplication pointer; ARGV token. Returns 1 if it was live.
local ended = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[3]) == ARGV[1] then
  redis.call('DEL', KEYS[3])
end
return ended
