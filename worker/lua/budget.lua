-- The per-source failure budget's two rules on a single Redis, included by verify-3.lua
-- (scripts.ts pastes this file where a script says `--#include budget.lua`). On Redis Cluster
-- the worker keeps that budget in a key of its own with attempt-budget-1.lua instead.

-- Seconds until the budget at `key` has room again, or nil while it has room (`limit` failures
-- per `window` seconds). A refusal is not counted.
local function budgetRetryAfter(key, limit, window)
  if tonumber(redis.call('GET', key) or '0') < tonumber(limit) then return nil end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    -- A counter without expiry would be a permanent lock; restore the window.
    redis.call('EXPIRE', key, window)
    ttl = tonumber(window) * 1000
  end
  return math.max(1, math.ceil(ttl / 1000))
end

-- Counts one failure; the first one of a window starts it.
local function chargeBudget(key, window)
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, window) end
end
