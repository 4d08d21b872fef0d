-- Put a newer profile into every live session of a user, so /user/info
-- (which reads only the session) shows it at once on every session. Each
-- session takes it only if it holds an older version, so a slower, older
-- sync can never overwrite a newer one.
-- KEYS[1] user's live sessions, KEYS[2] user's newest profile snapshot
-- ARGV session key prefix, profile version, profile json, ttl
-- Returns how many sessions were updated.
local pv = tonumber(ARGV[2])
local known = redis.call('HGET', KEYS[2], 'pv')
if not known or tonumber(known) < pv then
  redis.call('HSET', KEYS[2], 'pv', pv, 'profile', ARGV[3])
end
redis.call('EXPIRE', KEYS[2], ARGV[4])
local updated = 0
for _, token in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. token
  local current = redis.call('HGET', key, 'pv')
  if current and tonumber(current) < pv then
    redis.call('HSET', key, 'pv', pv, 'profile', ARGV[3])
    updated = updated + 1
  end
end
return updated
