--[[
  A fixed-window attempt budget that tells checks still in flight from settled ones. The
  gateway's password limits and recovery-message limits use it (src/common/redis-budgets.ts),
  and so does the worker's per-source code budget on Redis Cluster (worker/verify/verifier.ts;
  on a single Redis verify-3.lua keeps that budget itself).

  KEYS[1] budget   a hash: c = attempts counted in the window, p = claims in flight,
                   e = the window's end (ms, Redis clock). The key expires with its window.

  ARGV[1] op       "claim", or a claim's settlement: "count", "release" or "forgive"
  ARGV[2] limit    attempts counted per window
  ARGV[3] window   window length in seconds
  ARGV[4] claimed  for a settlement: the window end its claim returned
  ARGV[5] claim lifetime ms (optional, 60000): claims all older than this were abandoned

  claim   -> {1, windowEnd}, or {0, retryAfterSeconds}: the window's rest when counted attempts
             fill it, 1 s when claims in flight do (they settle within moments). A refused claim
             is not counted.
  count   -> counts the claim (a wrong password, a message sent) in the current window, a new
             one if its own has ended: counting late is the safe direction.
  release -> gives the claim back. Counted attempts stay.
  forgive -> gives the claim back and forgets the window's counted attempts.
  A claim of a window that has ended holds nothing any more, so releasing it changes nothing:
  a claim taken in one window can never make room in the next.
]]
local key, op = KEYS[1], ARGV[1]
local limit, window = tonumber(ARGV[2]), tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local state = redis.call('HMGET', key, 'c', 'p', 'e', 't')
local counted, inFlight, ends = tonumber(state[1]) or 0, tonumber(state[2]) or 0, tonumber(state[3])
local lastClaim = tonumber(state[4]) or now
if not ends or ends <= now then
  counted, inFlight, ends = 0, 0, now + window * 1000
end
-- A claim settles within its caller's deadline. Claims that never will (the caller died, or they
-- reached a stalled Redis after the caller had given up) would otherwise fill the budget until
-- the window ends, refusing the right password with "retry in 1 s" for 15 minutes. So once the
-- newest claim is older than the lifetime, every claim still counted in flight is abandoned.
if now - lastClaim > (tonumber(ARGV[5]) or 60000) then inFlight = 0 end
local ownWindow = tonumber(ARGV[4]) == ends

if op == 'claim' then
  if counted >= limit then return {0, math.max(1, math.ceil((ends - now) / 1000))} end
  if counted + inFlight >= limit then return {0, 1} end
  inFlight = inFlight + 1
  lastClaim = now
elseif op == 'count' then
  if ownWindow and inFlight > 0 then inFlight = inFlight - 1 end
  counted = counted + 1
elseif op == 'release' or op == 'forgive' then
  if ownWindow and inFlight > 0 then inFlight = inFlight - 1 end
  if op == 'forgive' then counted = 0 end
else
  return redis.error_reply('attempt-budget: unknown op ' .. tostring(op))
end

redis.call('HSET', key, 'c', counted, 'p', inFlight, 'e', ends, 't', lastClaim)
redis.call('PEXPIREAT', key, ends)
if op == 'claim' then return {1, ends} end
return {1, 0}
