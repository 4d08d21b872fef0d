-- End every session of a user. KEYS[1] user's live sessions, KEYS[2] user's
-- de-duplication pointer, KEYS[3] user's profile snapshot, KEYS[4] user's
-- deletion mark; ARGV session key prefix, seconds the deletion mark lives
-- (0: the user stays; otherwise the user is being deleted: the snapshot goes
-- and no login may issue the user a session while the mark lives).
-- Returns how many live sessions ended.
local ended = 0
for _, token in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  ended = ended + redis.call('DEL', ARGV[1] .. token)
end
redis.call('DEL', KEYS[1], KEYS[2])
if tonumber(ARGV[2]) > 0 then
  redis.call('DEL', KEYS[3])
  redis.call('SET', KEYS[4], '1', 'EX', ARGV[2])
end
return ended
