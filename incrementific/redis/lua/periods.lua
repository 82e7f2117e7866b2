-- The values of some periods of a series. KEYS[1] the counter; ARGV the periods.
-- -> {0, ME} missing (or not ours) | {1, value, ...} in ARGV's order (0 for a period never used)
local state = redis.call('HMGET', KEYS[1], 'c', 'o')
if not state[1] or not ours(state[2]) then return {0, ME} end
local reply = {1}
for i = 1, #ARGV do
  table.insert(reply, redis.call('HGET', KEYS[1], 'v:' .. ARGV[i]) or '0')
end
return reply
