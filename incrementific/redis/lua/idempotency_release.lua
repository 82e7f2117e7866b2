-- Drop a record while it is that attempt's hold (the request failed: nothing is kept, and the
-- key may be sent again). KEYS[1] a record; ARGV[1] an attempt. -> 1
if redis.call('HGET', KEYS[1], 'p') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
