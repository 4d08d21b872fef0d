-- Slide a session's expiry, and its entry in the identity's index with it.
-- KEYS[1] session, KEYS[2] identity's live sessions; ARGV ttl, now, token
if redis.call('EXPIRE', KEYS[1], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[2], 'XX', tonumber(ARGV[2]) + tonumber(ARGV[1]), ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  return 1
end
return 0
