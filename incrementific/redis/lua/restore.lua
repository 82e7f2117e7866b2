-- Put a counter's state (back) on this primary, from its SQL row, under the row's lock.
-- KEYS[1] the counter; ARGV[1] the row's reserved_through, ARGV[2] created, ARGV[3] the primary
-- the row says holds the counter's reservation.
-- -> {0, ME} left alone: the state is ours and the row says so too (another request restored
--    it first) | {1, ME} restored at ARGV[1], or at the state's own value if that is ours and
--    higher: a takeover never lowers a value. The limit is the value: the next `next` reserves.
local state = redis.call('HMGET', KEYS[1], 'v', 'o')
local value = ARGV[1]
if state[1] and ours(state[2]) then
  if ARGV[3] == ME then return {0, ME} end
  if above(state[1], value) then value = state[1] end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', value, 'l', value, 'c', ARGV[2])
if FENCED then redis.call('HSET', KEYS[1], 'o', ME) end
return {1, ME}
