-- A new counter. KEYS[1] the counter; ARGV[1] value, ARGV[2] limit, ARGV[3] created, ARGV[4] a
-- series' settings ('' for none), ARGV[5] the period the value and limit are of ('' for none;
-- the counter's own are then 0).
-- Replaces whatever was there. -> ME, the primary that now holds it
redis.call('DEL', KEYS[1])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'v', 0, 'l', 0, 'c', ARGV[3], 'v:' .. ARGV[5], ARGV[1], 'l:' .. ARGV[5], ARGV[2])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'l', ARGV[2], 'c', ARGV[3])
end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 's', ARGV[4]) end
if FENCED then redis.call('HSET', KEYS[1], 'o', ME) end
return ME
