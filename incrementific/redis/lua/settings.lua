-- A series' settings changed (its format). KEYS[1] the counter; ARGV[1] the settings ('' for
-- none). Only on state this primary holds: any other is restored from SQL, settings and all.
-- -> 1 changed | 0 no state of ours (nothing to change)
local state = redis.call('HMGET', KEYS[1], 'c', 'o')
if not state[1] or not ours(state[2]) then return 0 end
if ARGV[1] == '' then redis.call('HDEL', KEYS[1], 's') else redis.call('HSET', KEYS[1], 's', ARGV[1]) end
return 1
