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
--#include budget.lua

local key, op = KEYS[1], ARGV[1]

if op == 'refund' then
  -- Never below zero: the window may have rolled over between claim and refund.
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
  return {1, 0}
end

local retryAfter = budgetRetryAfter(key, ARGV[2], ARGV[3])
if retryAfter then return {0, retryAfter} end
chargeBudget(key, ARGV[3])
return {1, 0}
