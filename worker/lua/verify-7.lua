--[[
  Decides one verification for one device, atomically, with Redis TIME as the only clock.
  The worker has already computed which steps the submitted code(s) match; this script decides
  whether any of them may be accepted *now*, spends and refunds attempts, moves the watermark
  and stores the result under the request id. Every key hashes to the device's slot.

  KEYS[1] watermark       <prefix>:{d:<device>}:wm            highest accepted step
  KEYS[2] device fails    <prefix>:{d:<device>}:fail          hash n, until (ms), unknown sources
  KEYS[3] pair fails      <prefix>:{d:<device>}:src:<source>  hash n, until (ms), this source
  KEYS[4] burnt steps     <prefix>:{d:<device>}:burn          zset of steps revealed by CLOCK_SKEW
  KEYS[5] result          <prefix>:{d:<device>}:res:<request> "fingerprint|code|a|b"
  KEYS[6] known sources   <prefix>:{d:<device>}:known         zset source hash -> last success (ms)
  KEYS[7] source budget   <prefix>:{s:<source>}:budget        failures of this source, all devices
                          (on Redis Cluster, where that key lives in another slot, an unused key
                          in the device's slot: the worker claims the budget beforehand with
                          source-budget-1.lua and passes ARGV[25] = "0")

  ARGV[1]  mode            "login" (one code) or "pair" (two consecutive codes: enrol, resync)
  ARGV[2]  fingerprint     HMAC of the request under the seed; a reused request id must match
  ARGV[3]  period          seconds per step
  ARGV[4]  centre offset   drift in steps added to now (login) or 0 (pair)
  ARGV[5]  radius          acceptance half-width in steps
  ARGV[6]  classify        steps beyond the acceptance window still reported as CLOCK_SKEW
  ARGV[7]  drift limit     |drift| recorded on success is clamped to this
  ARGV[8]  lastStep        watermark as PostgreSQL knows it, or "" when none
  ARGV[9]  from step       first step the worker searched completely
  ARGV[10] to step         last step the worker searched completely
  ARGV[11] matches         comma-separated matching steps (pair mode: s where code1=s, code2=s+1)
  ARGV[12] pair free       ARGV[13] pair base ms   ARGV[14] pair cap ms   ARGV[15] pair memory s
  ARGV[16] device free     ARGV[17] device base ms ARGV[18] device cap ms ARGV[19] device memory s
  ARGV[20] result ttl s    ARGV[21] watermark ttl s
  ARGV[22] source hash     ARGV[23] known-source memory s   ARGV[24] known sources kept
  ARGV[25] budget here     "1": check and charge KEYS[7] in this script; "0": the worker did
  ARGV[26] budget limit    ARGV[27] budget window s

  Known sources: a source that has succeeded on this device within the known-source memory is
  the owner's (or shares the owner's network). The device-wide layer (KEYS[2]) neither counts
  its failures nor locks it out: it exists to stop many sources guessing together, and that
  must not let them lock the owner out. So it can lock unknown sources for days, where a layer
  that also held back the owner would have to stay short (15 minutes let a thousand sources
  guess about 36,500 times a year). A known source is held back by its own pair layer.

  Returns {code, a, b, nowMs, fromStore}:
    0 OK a=step b=drift   1 INVALID   2 REPLAYED   3 THROTTLED a=retryAfterSeconds
    4 CLOCK_SKEW a=offsetSteps
    5 CLOCK_RANGE  the worker's search does not cover this script's window; nothing changed,
                   retry with candidates around nowMs
    6 REQUEST_ID_CONFLICT  a result is stored under this request id for a different request

  Redis >= 5 replicates scripts by effects, so calling TIME before writing is allowed; Redis 7
  makes that the only mode, so redis.replicate_commands() is not needed.
]]
--#include budget.lua

local mode, fingerprint = ARGV[1], ARGV[2]
local period, centreOffset = tonumber(ARGV[3]), tonumber(ARGV[4])
local radius, classify, driftLimit = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local pgLastStep = tonumber(ARGV[8])
local fromStep, toStep = tonumber(ARGV[9]), tonumber(ARGV[10])

local time = redis.call('TIME')
local nowSec = tonumber(time[1])
local nowMs = nowSec * 1000 + math.floor(tonumber(time[2]) / 1000)

-- Idempotency first: a retried request gets the first answer and verifies nothing.
local stored = redis.call('GET', KEYS[5])
if stored then
  local fp, code, a, b = string.match(stored, '^([^|]*)|(%-?%d+)|(%-?%d+)|(%-?%d+)$')
  if fp ~= fingerprint then return {6, 0, 0, nowMs, 1} end
  return {tonumber(code), tonumber(a), tonumber(b), nowMs, 1}
end

local function int(x) return string.format('%.0f', x) end

local function finish(code, a, b)
  redis.call('SET', KEYS[5], fingerprint .. '|' .. code .. '|' .. int(a) .. '|' .. int(b),
    'EX', ARGV[20])
  return {code, a, b, nowMs, 0}
end

local nowStep = math.floor(nowSec / period)
local centre = nowStep + centreOffset
local lo, hi = centre - radius, centre + radius
if mode == 'pair' then hi = hi - 1 end -- s + 1 must lie in the window too
if lo < fromStep or hi > toStep then return {5, 0, 0, nowMs, 0} end

-- The per-source budget, when it lives on this Redis: refused without counting, and without
-- storing the refusal, exactly as a refused claim by source-budget-1.lua.
local budgetHere = ARGV[25] == '1'
if budgetHere then
  local retryAfter = budgetRetryAfter(KEYS[7], ARGV[26], ARGV[27])
  if retryAfter then return {3, retryAfter, 0, nowMs, 0} end
end

local sourceHash = ARGV[22]
local knownMemoryMs = tonumber(ARGV[23]) * 1000
local lastSuccess = tonumber(redis.call('ZSCORE', KEYS[6], sourceHash) or '')
local known = lastSuccess ~= nil and lastSuccess > nowMs - knownMemoryMs

-- Each counter as it stands: {n, until}. Read once, for the lock check and for any refund.
local pairBefore = redis.call('HMGET', KEYS[3], 'n', 'until')
local deviceBefore = redis.call('HMGET', KEYS[2], 'n', 'until')

-- Attempts made while locked are not counted, so an attacker cannot extend a lock.
local lockEnd = tonumber(pairBefore[2] or '0')
if not known then lockEnd = math.max(lockEnd, tonumber(deviceBefore[2] or '0')) end
if lockEnd > nowMs then
  return finish(3, math.max(1, math.ceil((lockEnd - nowMs) / 1000)), 0)
end

-- Spend the attempt before deciding: should anything below fail, the attempt stays spent.
local function spend(key, free, baseMs, capMs, memory)
  local n = redis.call('HINCRBY', key, 'n', 1)
  if n >= free then
    local lock = math.min(capMs, baseMs * 2 ^ math.min(n - free, 62))
    redis.call('HSET', key, 'until', int(nowMs + lock))
  end
  redis.call('EXPIRE', key, memory)
end
local function refund(key, before)
  local fields = {'n', 'until'}
  for i = 1, 2 do
    if before[i] then redis.call('HSET', key, fields[i], before[i])
    else redis.call('HDEL', key, fields[i]) end
  end
end
spend(KEYS[3], tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14]), ARGV[15])
if not known then
  spend(KEYS[2], tonumber(ARGV[16]), tonumber(ARGV[17]), tonumber(ARGV[18]), ARGV[19])
end

local watermark = tonumber(redis.call('GET', KEYS[1]) or '')
if pgLastStep and (not watermark or pgLastStep > watermark) then watermark = pgLastStep end

-- Burnt steps guard single codes only. A pair (enrol, resync) still needs the code of the step
-- beside a reported one, so a report helps a guesser no more than a login guess would; and a
-- resync with the codes the phone shows right after a CLOCK_SKEW answer is what that answer
-- asks for.
local function burnt(step)
  return mode ~= 'pair' and redis.call('ZSCORE', KEYS[4], step) ~= false
end

local accepted, replayed, skewed = nil, false, {}
for token in string.gmatch(ARGV[11], '[^,]+') do
  local step = tonumber(token)
  if step >= lo and step <= hi then
    if (watermark and step <= watermark) or burnt(step) then
      replayed = true
    elseif not accepted or step < accepted then
      -- The lowest eligible step burns the fewest of the user's future codes.
      accepted = step
    end
  elseif step >= lo - classify and step <= hi + classify then
    skewed[#skewed + 1] = step
  end
end

local function clamp(x, limit) return math.max(-limit, math.min(limit, x)) end
-- In pair mode the device showed code2 for s + 1, so that is where its clock is.
local shown = 0
if mode == 'pair' then shown = 1 end

if accepted then
  local newWatermark = accepted + shown
  redis.call('SET', KEYS[1], int(newWatermark), 'EX', ARGV[21])
  if not known then
    -- This source's own earlier failures were the owner's typos, not guesses by others: take
    -- them back out of the device-wide count. Other sources' failures stay counted, so an
    -- owner's success never hands a distributed attacker a fresh allowance.
    -- The count goes back to before this attempt, less those failures, and the lock with it.
    local remaining = tonumber(deviceBefore[1] or '0') - tonumber(pairBefore[1] or '0')
    if remaining > 0 then refund(KEYS[2], {int(remaining), deviceBefore[2]})
    else redis.call('DEL', KEYS[2]) end
  end
  redis.call('DEL', KEYS[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', int(newWatermark))
  -- Remember the source, keeping only the most recent few so the set stays small. A source
  -- remembered within the last hour is left as it is: most sign-ins come from known networks,
  -- and an hour is nothing against the memory of months.
  if not (known and lastSuccess > nowMs - 3600000) then
    if redis.call('ZADD', KEYS[6], nowMs, sourceHash) == 1 then
      redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -1 - tonumber(ARGV[24]))
    end
    redis.call('EXPIRE', KEYS[6], ARGV[23])
  end
  return finish(0, newWatermark, clamp(newWatermark - nowStep, driftLimit))
end

if replayed then
  -- A genuine but used code proves possession; it is not a guess.
  refund(KEYS[3], pairBefore)
  if not known then refund(KEYS[2], deviceBefore) end
  return finish(2, 0, 0)
end

if #skewed > 0 then
  -- A match out here proves possession, so the attempt is refunded. But the code may be valid
  -- later (a fast clock), and reporting it must not turn the verifier into an oracle for
  -- future codes: every step recognised here is burnt and will be refused as REPLAYED.
  local nearest = skewed[1]
  for _, step in ipairs(skewed) do
    if math.abs(step - centre) < math.abs(nearest - centre) then nearest = step end
    redis.call('ZADD', KEYS[4], step, int(step))
    if mode == 'pair' then redis.call('ZADD', KEYS[4], step + 1, int(step + 1)) end
  end
  redis.call('EXPIRE', KEYS[4], ARGV[21])
  refund(KEYS[3], pairBefore)
  if not known then refund(KEYS[2], deviceBefore) end
  return finish(4, nearest + shown - nowStep, 0)
end

if budgetHere then
  -- Charged only now, for a fresh failure: within one atomic script that is the same as
  -- spending first and refunding every other outcome (as the separate claim must), and cheaper.
  chargeBudget(KEYS[7], ARGV[27])
end
return finish(1, 0, 0)
