-- A new counter. KEYS[1] the counter; ARGV[1] value, ARGV[2] limit, ARGV[3] created.
-- Replaces whatever was there. -> ME, the primary that now holds it
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'l', ARGV[2], 'c', ARGV[3])
if FENCED then redis.call('HSET', KEYS[1], 'o', ME) end
return ME
