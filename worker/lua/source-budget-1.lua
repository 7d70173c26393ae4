--[[
  Per-source failure budget across all devices, in a fixed window. Claimed before the device
  script runs and refunded when the attempt turns out not to be a failed guess, so one source
  cannot spray wrong codes over many users' devices (or lock them all out).

  KEYS[1] budget   <prefix>:{s:<sourceHash>}:budget   failures claimed in the current window

  ARGV[1] op       "claim" or "refund"
  ARGV[2] limit    failures allowed per window
  ARGV[3] window   window length in seconds

  Returns {allowed, retryAfterSeconds}: claim -> {1, 0} or {0, seconds until the window ends};
  refund -> {1, 0}. A refused claim is not counted.
]]
local key, op = KEYS[1], ARGV[1]

if op == 'refund' then
  -- Never below zero: the window may have rolled over between claim and refund.
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
  return {1, 0}
end

local used = tonumber(redis.call('GET', key) or '0')
if used >= tonumber(ARGV[2]) then
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    -- A counter without expiry would be a permanent lock; restore the window.
    redis.call('EXPIRE', key, ARGV[3])
    ttl = tonumber(ARGV[3]) * 1000
  end
  return {0, math.max(1, math.ceil(ttl / 1000))}
end
if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[3]) end
return {1, 0}
