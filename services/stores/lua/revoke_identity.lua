-- End every session of an identity. KEYS[1] identity's live sessions,
-- KEYS[2] its de-duplication pointer, KEYS[3] its profile snapshot, KEYS[4]
-- its deletion mark, KEYS[5] its recent logins (the per-user limit); ARGV
-- session key prefix, seconds the deletion mark lives (0: the identity
-- stays; otherwise its account is being deleted: the snapshot and the login
-- count go, and no login may issue it a session while the mark lives).
-- Returns how many live sessions ended.
local ended = 0
for _, token in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  ended = ended + redis.call('DEL', ARGV[1] .. token)
end
redis.call('DEL', KEYS[1], KEYS[2])
if tonumber(ARGV[2]) > 0 then
  redis.call('DEL', KEYS[3], KEYS[5])
  redis.call('SET', KEYS[4], '1', 'EX', ARGV[2])
end
return ended
