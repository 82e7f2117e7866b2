-- Install a revocation mark (epoch milliseconds), keeping a higher one this primary holds.
-- KEYS[1] the owner's mark; ARGV[1] the mark, ARGV[2] seconds to keep it. -> the mark in force
local held = redis.call('HMGET', KEYS[1], 'm', 'o')
if held[1] and ours(held[2]) and tonumber(held[1]) > tonumber(ARGV[1]) then
  redis.call('EXPIRE', KEYS[1], ARGV[2], 'GT')
  return held[1]
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'm', ARGV[1])
if FENCED then redis.call('HSET', KEYS[1], 'o', ME) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return ARGV[1]
