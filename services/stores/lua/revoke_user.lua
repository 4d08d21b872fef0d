-- End every session of a user. KEYS[1] user's live sessions,
-- KEYS[2] user's de-duplication pointer; ARGV session key prefix.
-- Returns how many live sessions ended.
local ended = 0
for _, token in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  ended = ended + redis.call('DEL', ARGV[1] .. token)
end
redis.call('DEL', KEYS[1], KEYS[2])
return ended
