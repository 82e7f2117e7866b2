-- Add ARGV[1] to the counter (a series: to its period's value), never past its limit. KEYS and
-- ARGV: see gate.lua.
-- -> {0, ME} missing (or not ours) | {1, value, created, touched} | {2} overflow |
--    {3, value, ME} limit reached | {4} over the rate | {5} token revoked | {6} API key unknown |
--    {7} outside the key's scope | {8} Idempotency-Key reused | {9, value, created, date,
--    settings} replayed | {10} Idempotency-Key in progress | {11} revocation mark unknown here |
--    {12, settings} the counter's settings are not the ones the caller sent
local refusal = gate() or remembered()
if refusal then return refusal end
local state = redis.call('HMGET', KEYS[1], V, L, 'c', 'o', 's')
if not state[3] or not ours(state[4]) then hold() return {0, ME} end
local other = unsettled(state[5])
if other then return other end
local limit = limit_in_force(state[2] or '0', ARGV[2])
local r = redis.pcall('HINCRBY', KEYS[1], V, ARGV[1])
if type(r) == 'table' and r.err then
  if string.find(r.err, 'overflow') then release() return {2} end
  return r
end
local value = redis.call('HGET', KEYS[1], V)
if above(value, limit) then
  -- Past the reservation: put the exact old value back. Nothing outside this script saw it.
  if state[1] then redis.call('HSET', KEYS[1], V, state[1]) else redis.call('HDEL', KEYS[1], V) end
  hold()
  return {3, state[1] or '0', ME}
end
remember(value, state[3])
return {1, value, state[3], touched}
