-- Issue a session to an identity that has just logged in, atomically with
-- the identity's index of live sessions and the login de-duplication pointer.
-- Every key shares the identity's hash tag (one Cluster slot).
--
-- KEYS[1] identity's live sessions (zset: token -> expiry time)
-- KEYS[2] identity's de-duplication pointer (string: token of the newest login)
-- KEYS[3] identity's newest profile snapshot (hash: pv, profile)
-- KEYS[4] identity's deletion mark (set while its account is being deleted)
-- ARGV    session key prefix, candidate token, ttl, dedup window, now,
--         max sessions per identity, account id, profile version, profile json,
--         identity id, appid
-- Returns {token, reused (0|1), profile version, profile json}, or {false}
-- when the account is being deleted.
if redis.call('EXISTS', KEYS[4]) == 1 then
  return {false}
end
local prefix, token = ARGV[1], ARGV[2]
local ttl, window, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local limit, uid = tonumber(ARGV[6]), ARGV[7]
local pv, profile = tonumber(ARGV[8]), ARGV[9]

-- A profile change may have committed after this login read the account:
-- the higher version wins, whichever way round the two happened.
local newest = redis.call('HMGET', KEYS[3], 'pv', 'profile')
if newest[1] and tonumber(newest[1]) > pv then
  pv, profile = tonumber(newest[1]), newest[2]
else
  redis.call('HSET', KEYS[3], 'pv', pv, 'profile', profile)
end
redis.call('EXPIRE', KEYS[3], ttl)

local reused = 0
local current = window > 0 and redis.call('GET', KEYS[2])
if current and redis.call('EXISTS', prefix .. current) == 1 then
  token, reused = current, 1
  if tonumber(redis.call('HGET', prefix .. token, 'pv')) < pv then
    redis.call('HSET', prefix .. token, 'uid', uid, 'pv', pv, 'profile', profile)
  end
else
  redis.call('HSET', prefix .. token, 'uid', uid, 'iid', ARGV[10], 'app', ARGV[11],
             'pv', pv, 'profile', profile, 'iat', now)
  if window > 0 then
    redis.call('SET', KEYS[2], token, 'EX', window)
  end
end
redis.call('EXPIRE', prefix .. token, ttl)

-- Keep the index bounded: drop expired entries, then end the oldest sessions.
redis.call('ZREM', KEYS[1], token)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local excess = redis.call('ZCARD', KEYS[1]) - (limit - 1)
if excess > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[1], 0, excess - 1)) do
    redis.call('DEL', prefix .. old)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
end
redis.call('ZADD', KEYS[1], now + ttl, token)
redis.call('EXPIRE', KEYS[1], ttl)
return {token, reused, pv, profile}
