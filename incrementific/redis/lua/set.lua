-- Set the counter to ARGV[1], never above its limit, and append the change (ARGV[13]) with the
-- old and the new value to the owner's stream KEYS[5], in the same step. KEYS and ARGV: see
-- gate.lua.
-- -> {0, ME} missing (or not ours) | {1, value, created, touched} | {3, value, ME} above the
--    limit | {4} to {10} as for next.lua
local refusal = gate() or remembered()
if refusal then return refusal end
local state = redis.call('HMGET', KEYS[1], 'l', 'c', 'o', 'v')
if not state[1] or not ours(state[3]) then hold() return {0, ME} end
local limit = limit_in_force(state[1], ARGV[2])
if above(ARGV[1], limit) then hold() return {3, ARGV[1], ME} end
redis.call('HSET', KEYS[1], 'v', ARGV[1])
if ARGV[13] then redis.call('XADD', KEYS[5], '*', 'c', ARGV[13], 'old', state[4], 'new', ARGV[1]) end
remember(ARGV[1], state[2])
return {1, ARGV[1], state[2], touched}
