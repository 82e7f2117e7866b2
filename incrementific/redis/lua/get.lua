-- Read the counter (a series: its period's value). KEYS and ARGV: see gate.lua (ARGV[1] and
-- ARGV[2] unused, no KEYS[4]).
-- -> {0, ME} missing (or not ours) | {1, value, created, touched} | {4} to {7}, {11}, {12} as
--    for next.lua
local refusal = gate()
if refusal then return refusal end
local state = redis.call('HMGET', KEYS[1], V, 'c', 'o', 's')
if not state[2] or not ours(state[3]) then return {0, ME} end
local other = unsettled(state[4])
if other then return other end
return {1, state[1] or '0', state[2], touched}
