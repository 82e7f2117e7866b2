-- An API key's entry, when it is ours (see the fence) and not expired. KEYS[1] the entry;
-- ARGV[1] now, ARGV[2] the touch interval (its last use is set to now when that old).
-- -> {touched (0/1), the entry's fields and values} | nil (none, not ours, or expired: SQL
--    answers for those)
local entry = redis.call('HMGET', KEYS[1], 'u', 't', 'x', 'o')
if not entry[1] or not ours(entry[4]) then return nil end
if entry[3] and tonumber(ARGV[1]) >= tonumber(entry[3]) then return nil end
local touched = 0
if tonumber(ARGV[1]) - tonumber(entry[2] or 0) >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 't', ARGV[1])
  touched = 1
end
return {touched, redis.call('HGETALL', KEYS[1])}
