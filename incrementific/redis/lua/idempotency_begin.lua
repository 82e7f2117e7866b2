-- For the changes that are not a counter's script (create, delete, a new API key): their answer
-- is kept whole. KEYS[1] an Idempotency-Key's record; ARGV[1] fingerprint, ARGV[2] attempt.
-- -> {0} go on (the key is now held) | {8} reused | {9, answer} the answer kept | {10} in progress
local record = redis.call('HMGET', KEYS[1], 'f', 'a', 'p')
if not record[1] then
  redis.call('HSET', KEYS[1], 'f', ARGV[1], 'p', ARGV[2])
  redis.call('EXPIRE', KEYS[1], 30)
  return {0}
end
if record[1] ~= ARGV[1] then return {8} end
if record[2] then return {9, record[2]} end
return {10}
