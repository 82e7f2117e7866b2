-- Set the counter to ARGV[1], never above its limit. KEYS and ARGV: see gate.lua.
-- -> {0, ME} missing (or not ours) | {1, value, created, touched} | {3, value, ME} above the
--    limit | {4} to {10} as for next.lua
local refusal = gate() or remembered()
if refusal then return refusal end
local state = redis.call('HMGET', KEYS[1], 'l', 'c', 'o')
if not state[1] or not ours(state[3]) then hold() return {0, ME} end
local limit = limit_in_force(state[1], ARGV[2])
if above(ARGV[1], limit) then hold() return {3, ARGV[1], ME} end
redis.call('HSET', KEYS[1], 'v', ARGV[1])
remember(ARGV[1], state[2])
return {1, ARGV[1], state[2], touched}
