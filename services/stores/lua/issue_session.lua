-- Issue a session to an identity that has just logged in, atomically with
-- the identity's index of live sessions, the login de-duplication pointer,
-- the per-user login limit and its newest session_key: one round trip.
-- Every key shares the identity's hash tag (one Cluster slot).
--
-- KEYS[1] identity's live sessions (zset: token -> expiry time)
-- KEYS[2] identity's de-duplication pointer (string: token of the newest login)
-- KEYS[3] identity's newest profile snapshot (hash: pv, profile)
-- KEYS[4] identity's deletion mark (set while its account is being deleted)
-- KEYS[5] identity's recent session_keys (zset: sealed key -> when seen)
-- KEYS[6] identity's recent logins (list of times, newest first)
-- ARGV    session key prefix, candidate token, ttl, dedup window, now,
--         max sessions per identity, account id, profile version, profile json,
--         identity id, appid,
--         sealed session_key ('' for none), when it was seen, how many to keep,
--         their ttl,
--         login limits ('amount:seconds' pairs, comma separated; '' for none),
--         now with its fractions
-- Returns {token, reused (0|1), profile version, profile json}; {false}
-- when the account is being deleted; {false, seconds to wait} when the user
-- has logged in too often (nothing written, the login is not counted).
if redis.call('EXISTS', KEYS[4]) == 1 then
  return {false}
end

-- The per-user login limit: the `limits` library's moving window.
if ARGV[16] ~= '' then
  local at = tonumber(ARGV[17])
  local most, longest = 0, 0
  for amount, seconds in string.gmatch(ARGV[16], '(%d+):(%d+)') do
    amount, seconds = tonumber(amount), tonumber(seconds)
    local oldest = redis.call('LINDEX', KEYS[6], amount - 1)
    if oldest and tonumber(oldest) >= at - seconds then
      -- A string: Redis would truncate a Lua number to an integer.
      return {false, tostring(tonumber(oldest) + seconds - at)}
    end
    most, longest = math.max(most, amount), math.max(longest, seconds)
  end
  redis.call('LPUSH', KEYS[6], ARGV[17])
  redis.call('LTRIM', KEYS[6], 0, most - 1)
  redis.call('EXPIRE', KEYS[6], longest)
end

if ARGV[12] ~= '' then
  redis.call('ZADD', KEYS[5], ARGV[13], ARGV[12])
  redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -(tonumber(ARGV[14]) + 1))
  redis.call('EXPIRE', KEYS[5], ARGV[15])
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
