-- The fence, the first lines of every script (the loader puts `local FENCED = true|false` above
-- them: true where the topology can fail over, Sentinel and Cluster).
--
-- ME is the id of the primary the script runs on: its master_replid, a fresh random id each
-- time a server becomes a primary or restarts. State records the ME that wrote it (field `o`);
-- state that another primary wrote is not ours (ours() is false), and a script treats it as
-- missing: it may be a replica's copy that was behind when it was promoted. On a replica the
-- script refuses with READONLY, as a write would, and redis-py's Sentinel connection then looks
-- the primary up again. Unfenced (a single server), ME is '' and all state is ours: a restart
-- from the append-only file then resumes exactly where it stopped.
local ME = ''
if FENCED then
  local info = redis.call('INFO', 'replication')
  if not string.find(info, 'role:master', 1, true) then
    return redis.error_reply('READONLY this server is a replica, the counters are on its primary')
  end
  local at = string.find(info, 'master_replid:', 1, true) + 14  -- plain finds: a third of a match's cost
  ME = string.sub(info, at, at + 39)  -- 40 hex digits
end
local function ours(o)
  return not FENCED or o == ME
end
local function above(a, b)  -- a > b, for decimal strings of non-negative integers
  if #a ~= #b then return #a > #b end
  return a > b
end
