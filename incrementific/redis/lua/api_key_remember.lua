-- Cache an API key's entry from its SQL row, replacing what was there. KEYS[1] the entry;
-- ARGV field, value, field, value... -> 1
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
if FENCED then redis.call('HSET', KEYS[1], 'o', ME) end
return 1
