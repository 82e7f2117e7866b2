-- Keep the answer, if the record is still this attempt's hold. KEYS[1] a record; ARGV[1]
-- fingerprint, ARGV[2] attempt, ARGV[3] the answer, ARGV[4] seconds. -> 1 kept | 0
if redis.call('HGET', KEYS[1], 'p') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'f', ARGV[1], 'a', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
