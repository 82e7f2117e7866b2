-- Read the owner's revocation mark. KEYS[1] the owner's mark (keys.revocation).
-- -> {1, mark} ('' for none) | {0} fenced, and this primary holds no mark of its own
local held = redis.call('HMGET', KEYS[1], 'm', 'o')
if FENCED and not (held[1] and ours(held[2])) then return {0} end
return {1, held[1] or ''}
