-- Set the counter (a series: its period's value) to ARGV[1], never above its limit, and append
-- the change (ARGV[13]) with the old and the new value (and a series' period) to the owner's
-- stream KEYS[5], in the same step. KEYS and ARGV: see gate.lua.
-- -> {0, ME} missing (or not ours) | {1, value, created, touched} | {3, value, ME} above the
--    limit | {4} to {12} as for next.lua
local refusal = gate() or remembered()
if refusal then return refusal end
local state = redis.call('HMGET', KEYS[1], L, 'c', 'o', V, 's')
if not state[2] or not ours(state[3]) then hold() return {0, ME} end
local other = unsettled(state[5])
if other then return other end
local limit = limit_in_force(state[1] or '0', ARGV[2])
if above(ARGV[1], limit) then hold() return {3, ARGV[1], ME} end
redis.call('HSET', KEYS[1], V, ARGV[1])
if ARGV[13] then
  local entry = {'c', ARGV[13], 'old', state[4] or '0', 'new', ARGV[1]}
  if ARGV[15] and ARGV[15] ~= '' then table.insert(entry, 'p') table.insert(entry, ARGV[15]) end
  redis.call('XADD', KEYS[5], '*', unpack(entry))
end
remember(ARGV[1], state[2])
return {1, ARGV[1], state[2], touched}
