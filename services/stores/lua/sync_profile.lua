-- Put a newer profile into every live session of an identity, so /user/info
-- (which reads only the session) shows it at once. Each session takes it only
-- if it holds an older version, so a slower, older sync never overwrites a
-- newer one. The account id goes with it: after two accounts became one,
-- the sessions of both show the one that is left.
-- KEYS[1] identity's live sessions, KEYS[2] identity's profile snapshot
-- ARGV session key prefix, profile version, profile json, ttl, account id
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
    redis.call('HSET', key, 'uid', ARGV[5], 'pv', pv, 'profile', ARGV[3])
    updated = updated + 1
  end
end
return updated
