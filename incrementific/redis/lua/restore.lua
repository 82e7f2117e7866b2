-- Put a counter's state (back) on this primary, from its SQL row, under the row's lock.
-- KEYS[1] the counter; ARGV[1] the row's reserved_through, ARGV[2] created, ARGV[3] the primary
-- the row says holds the counter's reservation, ARGV[4] a series' settings ('' for none), then
-- for each period of a series SQL knows of (CounterPeriod), its name and its reserved_through.
-- -> {0, ME} left alone: the state is ours and the row says so too (another request restored
--    it first) | {1, ME} restored at ARGV[1] (each period at its own), or at the state's own
--    value where that is ours and higher: a takeover never lowers a value. The limit is the
--    value: the next `next` reserves.
local state = redis.call('HMGET', KEYS[1], 'v', 'o', 'c')
local mine = state[3] and ours(state[2])
local value = ARGV[1]
if mine then
  if ARGV[3] == ME then return {0, ME} end
  if state[1] and above(state[1], value) then value = state[1] end
end
local periods = {}
for i = 5, #ARGV - 1, 2 do
  local v = ARGV[i + 1]
  if mine then
    local held = redis.call('HGET', KEYS[1], 'v:' .. ARGV[i])
    if held and above(held, v) then v = held end
  end
  table.insert(periods, {ARGV[i], v})
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', value, 'l', value, 'c', ARGV[2])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 's', ARGV[4]) end
for _, p in ipairs(periods) do  -- one HSET each: a daily series has thousands, past unpack's limit
  redis.call('HSET', KEYS[1], 'v:' .. p[1], p[2], 'l:' .. p[1], p[2])
end
if FENCED then redis.call('HSET', KEYS[1], 'o', ME) end
return {1, ME}
