"""The one Lua script that applies a chunk of outbox entries to one gateway's Redis keys.

It runs atomically on the node that owns the gateway's hash slot (every key it touches is
``edge:{<gw>}:...`` and is passed in KEYS, so it is valid on Redis Cluster).

KEYS: 1 ``sync`` hash (high-water marks), 2 ``alerts`` stream, 3 ``windows`` stream,
4 ``dedupe:alerts`` zset, 5 ``dedupe:windows`` zset, 6.. the chunk's ``device:<d>`` hashes.

ARGV: 1 high-water field (``applied:<outbox epoch>``), 2 windows MAXLEN (approximate),
3 alert dedupe entries kept, 4 window dedupe entries kept (0: no window dedupe set),
5 number of entries, 6 the id the mark must already have reached (the last id of the previous
chunk of the same batch, so a chunk never applies after a failed one: order is kept even when
chunks are pipelined), 7 the
entries as one JSON array: per entry nine values ``id kind member score device_key_index name
extra payload nf`` followed by ``nf`` field/value pairs (all strings but the integers
``score``, ``device_key_index`` and ``nf``; ``id`` is a string so it is stored exactly).
``kind``: ``w`` window, ``a`` alert, ``d`` device summary, ``l`` late reading.

An entry whose id is at or below the high-water mark was applied before and is skipped; an
alert whose ``alert_id|state`` or a window whose dedupe key is in the (bounded) dedupe sets is
skipped too. The mark is raised to the last entry applied, in the same script, also when a
write fails half-way (the error is returned after the mark is saved).

Returns ``{applied, skipped, high_water}`` (high_water as a string).
"""

from __future__ import annotations

__all__ = ["APPLY_SCRIPT", "FIXED_KEYS"]

FIXED_KEYS = 5

APPLY_SCRIPT = r"""
local hwm_field = ARGV[1]
local maxlen = ARGV[2]
local keep_alerts = tonumber(ARGV[3])
local keep_windows = tonumber(ARGV[4])
local count = tonumber(ARGV[5])
local hwm_s = redis.call('HGET', KEYS[1], hwm_field)
local hwm = tonumber(hwm_s or '0')
if hwm < tonumber(ARGV[6]) then
  return redis.error_reply(
    'GAP outbox applied up to id ' .. (hwm_s or '0') .. ', this chunk needs ' .. ARGV[6])
end
local A = cjson.decode(ARGV[7])
local last_s = nil
local applied, skipped = 0, 0
local failure = nil
local i = 1

local function failed(r)
  if type(r) == 'table' and r.err then
    failure = r.err
    return true
  end
  return false
end

for _ = 1, count do
  local id_s = A[i]
  local id = tonumber(id_s)
  local kind = A[i + 1]
  local member = A[i + 2]
  local score = A[i + 3]
  local dkey = KEYS[A[i + 4]]
  local name = A[i + 5]
  local extra = A[i + 6]
  local payload = A[i + 7]
  local nf = A[i + 8]
  local first = i + 9
  local stop = first + 2 * nf - 1
  i = stop + 1
  if id <= hwm then
    skipped = skipped + 1
  elseif kind == 'w' then
    if keep_windows > 0 and redis.call('ZSCORE', KEYS[5], member) then
      skipped = skipped + 1
      last_s = id_s
    else
      local r = redis.pcall('XADD', KEYS[3], 'MAXLEN', '~', maxlen, '*', unpack(A, first, stop))
      if failed(r) then break end
      last_s = id_s
      applied = applied + 1
      if keep_windows > 0 and failed(redis.pcall('ZADD', KEYS[5], score, member)) then break end
      if dkey and failed(redis.pcall('HSET', dkey, 'window:' .. name, payload)) then break end
    end
  elseif kind == 'a' then
    if redis.call('ZSCORE', KEYS[4], member) then
      skipped = skipped + 1
      last_s = id_s
    else
      local r = redis.pcall('XADD', KEYS[2], '*', unpack(A, first, stop))
      if failed(r) then break end
      last_s = id_s
      applied = applied + 1
      if failed(redis.pcall('ZADD', KEYS[4], score, member)) then break end
      if dkey then
        if failed(redis.pcall('HSET', dkey, 'last_alert', payload)) then break end
        if extra == 'resolved' then
          r = redis.pcall('HDEL', dkey, 'alert:' .. name)
          if failed(r) then break end
          if r == 1 and failed(redis.pcall('HINCRBY', dkey, 'active_alerts', -1)) then break end
        else
          r = redis.pcall('HSET', dkey, 'alert:' .. name, payload)
          if failed(r) then break end
          if r == 1 and failed(redis.pcall('HINCRBY', dkey, 'active_alerts', 1)) then break end
        end
      end
    end
  elseif kind == 'd' then
    if nf > 0 then
      if failed(redis.pcall('HSET', dkey, unpack(A, first, stop))) then break end
    end
    last_s = id_s
    applied = applied + 1
  elseif kind == 'l' then
    if failed(redis.pcall('HINCRBY', dkey, 'late', 1)) then break end
    last_s = id_s
    applied = applied + 1
    if failed(redis.pcall('HSET', dkey, 'late:' .. name, payload)) then break end
  else
    -- an entry kind this script does not know: passed over, never blocks the outbox
    last_s = id_s
    skipped = skipped + 1
  end
end

if last_s then
  redis.call('HSET', KEYS[1], hwm_field, last_s)
  hwm_s = last_s
end
local n = redis.call('ZCARD', KEYS[4])
if n > keep_alerts + keep_alerts / 10 then
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, n - keep_alerts - 1)
end
n = keep_windows > 0 and redis.call('ZCARD', KEYS[5]) or 0
if keep_windows > 0 and n > keep_windows + keep_windows / 10 then
  redis.call('ZREMRANGEBYRANK', KEYS[5], 0, n - keep_windows - 1)
end
if failure then
  return redis.error_reply(failure .. ' (outbox applied up to id ' .. (hwm_s or '0') .. ')')
end
return {applied, skipped, hwm_s or '0'}
"""
