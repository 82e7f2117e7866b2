-- What the counter scripts (next, set, get) share, after the fence.
--
-- KEYS[1] the counter, KEYS[2] what proves the caller (see refused()), KEYS[3] the owner's rate
-- window (when ARGV[3] is a limit; else unused: the counter again, when more keys follow),
-- KEYS[4] an Idempotency-Key's record (when ARGV[10] is given; else the counter again, when
-- more keys follow), KEYS[5] (set only) the owner's stream of changes.
-- ARGV[1] the step or value, ARGV[2] a newly reserved limit to install first or '', ARGV[3] and
-- ARGV[4] the rate's limit and seconds (or ''), ARGV[5] to ARGV[9] the caller's check (see
-- refused()), ARGV[10] to ARGV[12] the record's (see remembered(); '' without a record), ARGV[13]
-- (set only) the change, as counters/history.py encodes it, ARGV[14] to ARGV[16] the series'
-- (see unsettled(); left off for a counter the caller takes to be plain).
--
-- A series (counters/series.py) keeps its settings in the hash's field s, and each period's value
-- and limit in the fields v:<period> and l:<period>. ARGV[14] is the settings the caller took the
-- counter to have, ARGV[15] the period (of the document's date) and ARGV[16] that date, kept with
-- an Idempotency-Key's answer. A period nobody took a number in has neither field: its value is 0
-- and its limit 0 (so its first number reserves). restore.lua puts every period SQL knows of back
-- with the counter, so a missing field is a period never used, never a forgotten one.
local SETTINGS = ARGV[14] or ''
local V, L = 'v', 'l'
if ARGV[15] and ARGV[15] ~= '' then V, L = 'v:' .. ARGV[15], 'l:' .. ARGV[15] end
-- A gapless counter's settings begin with 'gapless|': its value is SQL's (counters/gapless.py), and
-- Redis never takes, sets or reads one for it, whatever settings the caller sent.
local function unsettled(settings)  -- nil, or {12, the counter's settings}: the caller's are not
  if (settings or '') ~= SETTINGS or (settings and string.sub(settings, 1, 8) == 'gapless|') then
    return {12, settings or ''}
  end
  return nil
end
local function limit_in_force(limit, reserved)  -- installs a newly reserved, higher limit
  if reserved ~= '' and above(reserved, limit) then
    redis.call('HSET', KEYS[1], L, reserved)
    return reserved
  end
  return limit
end
-- Who calls, checked before anything else is read or changed. ARGV[5] says what to check:
--   ''       nothing (a session, the admin, an API key checked already);
--   'key'    KEYS[2] is the caller's API key's entry in the owner's slot, and must exist, be
--            ours (see the fence) and not have expired; its scope (accounts/keystore.py) must
--            allow the action ARGV[8] on the counter ARGV[9]. Its last use is set to ARGV[6]
--            (now) when it is ARGV[7] seconds old or more;
--   a number an access token's rev; KEYS[2] is the owner's revocation mark (a hash: m the mark,
--            o the primary that wrote it). Fenced, a mark this primary did not write, or none,
--            is unknown: SQL answers for it (accounts.models.TokenRevocation).
-- -> false, or the reply's refusal code: 5 token revoked, 6 API key unknown here (or expired:
--    SQL answers for it), 7 outside the key's scope, 11 revocation mark unknown here.
local touched = 0
local function refused()
  if ARGV[5] == '' then return false end
  if ARGV[5] == 'key' then
    local entry = redis.call('HMGET', KEYS[2], 't', 'x', 'a', 's', 'n:' .. ARGV[9], 'o')
    local used = entry[1]
    if not used or not ours(entry[6]) then return 6 end
    if entry[2] and tonumber(ARGV[6]) >= tonumber(entry[2]) then return 6 end
    if entry[3] and not string.find(entry[3], ',' .. ARGV[8] .. ',', 1, true) then return 7 end
    if entry[4] and not entry[5] then return 7 end
    if tonumber(ARGV[6]) - tonumber(used) >= tonumber(ARGV[7]) then
      redis.call('HSET', KEYS[2], 't', ARGV[6])
      touched = 1
    end
    return false
  end
  local mark = redis.call('HMGET', KEYS[2], 'm', 'o')
  if FENCED and not (mark[1] and ours(mark[2])) then return 11 end
  if mark[1] and tonumber(ARGV[5]) < tonumber(mark[1]) then return 5 end
  return false
end
local function over_rate()  -- KEYS[3], when ARGV[3] is a limit: the owner's rate window
  if ARGV[3] == '' then return false end
  local used = redis.call('INCR', KEYS[3])
  if used == 1 then redis.call('EXPIRE', KEYS[3], ARGV[4]) end
  return used > tonumber(ARGV[3])
end
local function gate()  -- every counter script's first step: nil to go on, or the refusal
  local code = refused()
  if code then return {code} end
  if over_rate() then return {4} end
  return nil
end
-- An Idempotency-Key's record (keys.idempotency) is KEYS[4] when ARGV[10] is given: ARGV[10] is the
-- request's fingerprint, ARGV[11] this attempt's own id, ARGV[12] how long a record is kept.
-- A record holds f (the fingerprint) and either the answer (v, c, and d: a series' date) or,
-- while its attempt is still going on outside Redis (a reservation, a restore), p (the attempt's
-- id). A record is not fenced: an answer kept by an earlier primary was given, and giving it
-- again is right.
-- -> nil to go on, or {8} key reused for another request | {9, value, created, date, the
--    counter's settings} the answer already given | {10} the first attempt is still going on
local IDEM = ARGV[10] ~= nil and ARGV[10] ~= ''
local function remembered()
  if not IDEM then return nil end
  local record = redis.call('HMGET', KEYS[4], 'f', 'v', 'c', 'p', 'd')
  if not record[1] then return nil end
  if record[1] ~= ARGV[10] then return {8} end
  if record[2] then return {9, record[2], record[3], record[5] or '', redis.call('HGET', KEYS[1], 's') or ''} end
  if record[4] ~= ARGV[11] then return {10} end
  return nil
end
local function remember(value, created)  -- the change is made: keep its answer
  if not IDEM then return end
  redis.call('DEL', KEYS[4])
  redis.call('HSET', KEYS[4], 'f', ARGV[10], 'v', value, 'c', created)
  if ARGV[16] and ARGV[16] ~= '' then redis.call('HSET', KEYS[4], 'd', ARGV[16]) end
  redis.call('EXPIRE', KEYS[4], ARGV[12])
end
local function hold()  -- the attempt goes on outside Redis: a retry meanwhile waits (409)
  if not IDEM then return end
  redis.call('HSET', KEYS[4], 'f', ARGV[10], 'p', ARGV[11])
  redis.call('EXPIRE', KEYS[4], 30)
end
local function release()  -- nothing changed, and nothing is kept: the key may be used again
  if IDEM then redis.call('DEL', KEYS[4]) end
end
