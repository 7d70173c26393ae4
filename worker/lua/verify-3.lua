--[[
  Decides one verification for one device, atomically, with Redis TIME as the only clock.
  The worker has already computed which steps the submitted code(s) match; this script decides
  whether any of them may be accepted *now*, charges attempts, moves the watermark and stores
  the result under the request id. Every key hashes to the device's slot.

  A device's whole state is ONE hash, read with one HMGET and written with one HSET (plus an
  HDEL only when a field present must go) and one EXPIRE. Inside a script each command costs
  about as much as the Lua around it (README, Benchmarks): a key per concern and a write per
  phase cost 20 commands for a first success from a new network; this costs 7.

  KEYS[1] device state    <prefix>:{d:<device>}               hash, fields below
  KEYS[2] result          <prefix>:{d:<device>}:res:<request> "fingerprint|code|a|b|burnt"
  KEYS[3] source budget   <prefix>:{s:<source>}:budget        failures of this source, all devices
                          (on Redis Cluster, where that key lives in another slot, an unused key
                          in the device's slot: the worker claims the budget beforehand with
                          attempt-budget-1.lua and passes ARGV[25] = "0")

  Fields of KEYS[1]. Hash fields cannot expire on their own (Redis < 7.4), so each record
  carries the time it was last charged and counts as empty once its memory has passed:
    wm          highest accepted step
    burn        steps revealed by CLOCK_SKEW, "s,s,..."
    dev         device-wide failures of sources not known to it, "n|untilMs|lastMs"
    p:<source>  this source's failures, "n|untilMs|lastMs"
    known       sources that succeeded here, "<source>=<ms>;...", the most recent few
    gone        the device was deleted (forget-device-1.lua): refuse, and write nothing

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
  ARGV[20] result ttl s    ARGV[21] state ttl s (the longest of the memories and the watermark's)
  ARGV[22] source hash     ARGV[23] known-source memory s   ARGV[24] known sources kept
  ARGV[25] budget here     "1": check and charge KEYS[3] in this script; "0": the worker did
  ARGV[26] budget limit    ARGV[27] budget window s
  ARGV[28] recentre gap s  a login moves the drift only this long after the last acceptance
  ARGV[29] burnt steps     "s,s,...": steps PostgreSQL knows were burnt (see `burn`), or ""
  ARGV[30] burnt kept      how many burnt steps `burn` keeps: the highest above the watermark

  Known sources: a source that has succeeded on this device within the known-source memory is
  the owner's (or shares the owner's network). The device-wide layer (`dev`) neither counts
  its failures nor locks it out: it exists to stop many sources guessing together, and that
  must not let them lock the owner out. So it can lock unknown sources for days, where a layer
  that also held back the owner would have to stay short (15 minutes let a thousand sources
  guess about 36,500 times a year). A known source is held back by its own pair layer.

  Returns {code, a, b, nowMs, fromStore, burnt}:
    0 OK a=step b=drift   1 INVALID   2 REPLAYED   3 THROTTLED a=retryAfterSeconds
    4 CLOCK_SKEW a=offsetSteps
    5 CLOCK_RANGE  the worker's search does not cover this script's window; nothing changed,
                   retry with candidates around nowMs
    6 REQUEST_ID_CONFLICT  a result is stored under this request id for a different request
  `burnt` lists the steps a CLOCK_SKEW answer burnt, "s,s,...", and is "" otherwise. The gateway
  stores them beside its watermark, so that a Redis which loses this hash reopens none of them.

  Redis >= 5 replicates scripts by effects, so calling TIME before writing is allowed; Redis 7
  makes that the only mode, so redis.replicate_commands() is not needed.
]]
--#include budget.lua

local state, mode, fingerprint = KEYS[1], ARGV[1], ARGV[2]
local period, centreOffset = tonumber(ARGV[3]), tonumber(ARGV[4])
local radius, classify, driftLimit = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local pgLastStep = tonumber(ARGV[8])
local fromStep, toStep = tonumber(ARGV[9]), tonumber(ARGV[10])

local time = redis.call('TIME')
local nowSec = tonumber(time[1])
local nowMs = nowSec * 1000 + math.floor(tonumber(time[2]) / 1000)

-- Idempotency first: a retried request gets the first answer and verifies nothing.
local stored = redis.call('GET', KEYS[2])
if stored then
  -- Results stored by the previous version have no `burnt` field; they read as "".
  local fp, code, a, b, burnt =
    string.match(stored, '^([^|]*)|(%-?%d+)|(%-?%d+)|(%-?%d+)|?([%d,%-]*)$')
  if fp ~= fingerprint then return {6, 0, 0, nowMs, 1, ''} end
  return {tonumber(code), tonumber(a), tonumber(b), nowMs, 1, burnt}
end

local function int(x) return string.format('%.0f', x) end

local nowStep = math.floor(nowSec / period)
local centre = nowStep + centreOffset
local lo, hi = centre - radius, centre + radius
if mode == 'pair' then hi = hi - 1 end -- s + 1 must lie in the window too
if lo < fromStep or hi > toStep then return {5, 0, 0, nowMs, 0, ''} end

-- The per-source budget, when it lives on this Redis: refused without counting, and without
-- storing the refusal, as a refused claim on Redis Cluster (attempt-budget-1.lua).
local budgetHere = ARGV[25] == '1'
if budgetHere then
  local retryAfter = budgetRetryAfter(KEYS[3], ARGV[26], ARGV[27])
  if retryAfter then return {3, retryAfter, 0, nowMs, 0, ''} end
end

local sourceHash = ARGV[22]
-- Hex only, so it is safe inside the patterns and separators below.
assert(string.match(sourceHash, '^%x+$'), 'the source hash must be hex')
local pairField = 'p:' .. sourceHash
local fields = redis.call('HMGET', state, 'wm', 'burn', 'dev', 'known', pairField, 'gone')
if fields[6] then return {1, 0, 0, nowMs, 0, ''} end

-- Known sources: "<hash>=<ms>;..." (hashes are hex, so neither separator occurs in them).
local knownMemoryMs = tonumber(ARGV[23]) * 1000
local knownList = fields[4] or ''
local lastSuccess = tonumber(string.match(';' .. knownList, ';' .. sourceHash .. '=(%d+)') or '')
local known = lastSuccess ~= nil and lastSuccess > nowMs - knownMemoryMs

-- A failure layer as {n, until, last}; a record whose memory has passed counts as empty.
local function layer(record, memorySeconds)
  local n, untilMs, last = string.match(record or '', '^(%d+)|(%d+)|(%d+)$')
  if not n or tonumber(last) <= nowMs - tonumber(memorySeconds) * 1000 then return {0, 0, 0} end
  return {tonumber(n), tonumber(untilMs), tonumber(last)}
end
local function encode(record) return int(record[1]) .. '|' .. int(record[2]) .. '|' .. int(record[3]) end

local pairBefore = layer(fields[5], ARGV[15])
local deviceBefore = layer(fields[3], ARGV[19])

-- Writes are gathered and sent as one HSET and at most one HDEL, then one EXPIRE.
local present = {wm = fields[1], burn = fields[2], dev = fields[3], known = fields[4]}
present[pairField] = fields[5]
local sets, dels = {}, {}
local function put(field, value) sets[#sets + 1] = field; sets[#sets + 1] = value end
local function drop(field) if present[field] then dels[#dels + 1] = field end end
local function flush()
  if #sets > 0 then redis.call('HSET', state, unpack(sets)) end
  if #dels > 0 then redis.call('HDEL', state, unpack(dels)) end
  redis.call('EXPIRE', state, ARGV[21])
end
-- Leaves a layer as it was, tidying away a record whose memory has passed.
local function untouched(field, before) if before[1] == 0 then drop(field) end end

local function finish(code, a, b, burnt)
  burnt = burnt or ''
  redis.call('SET', KEYS[2],
    fingerprint .. '|' .. code .. '|' .. int(a) .. '|' .. int(b) .. '|' .. burnt, 'EX', ARGV[20])
  return {code, a, b, nowMs, 0, burnt}
end

-- Attempts made while locked are not counted, so an attacker cannot extend a lock.
local lockEnd = pairBefore[2]
if not known then lockEnd = math.max(lockEnd, deviceBefore[2]) end
if lockEnd > nowMs then
  return finish(3, math.max(1, math.ceil((lockEnd - nowMs) / 1000)), 0)
end

-- The attempt as charged: each layer one failure more, locked once past its free failures.
local function spent(before, free, baseMs, capMs)
  local n = before[1] + 1
  local untilMs = before[2]
  if n >= free then untilMs = nowMs + math.min(capMs, baseMs * 2 ^ math.min(n - free, 62)) end
  return {n, untilMs, nowMs}
end
local pairSpent = spent(pairBefore, tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14]))
local deviceSpent = nil
if not known then
  deviceSpent = spent(deviceBefore, tonumber(ARGV[16]), tonumber(ARGV[17]), tonumber(ARGV[18]))
end
local function chargeAttempt()
  put(pairField, encode(pairSpent))
  if deviceSpent then put('dev', encode(deviceSpent)) end
end

local watermark = tonumber(fields[1] or '')
if pgLastStep and (not watermark or pgLastStep > watermark) then watermark = pgLastStep end

-- Burnt steps guard single codes only. A pair (enrol, resync) still needs the code of the step
-- beside a reported one, so a report helps a guesser no more than a login guess would; and a
-- resync with the codes the phone shows right after a CLOCK_SKEW answer is what that answer
-- asks for.
-- Redis's own list, and PostgreSQL's: after Redis lost its data, the gateway's copy still holds.
local burntSteps = {}
for token in string.gmatch((fields[2] or '') .. ',' .. ARGV[29], '[^,]+') do
  burntSteps[tonumber(token)] = true
end
local function burnt(step) return mode ~= 'pair' and burntSteps[step] == true end

-- The burnt steps worth keeping, as `burn` stores them: those above `floor` (the watermark
-- refuses the rest anyway), at most the ARGV[30] highest, as the gateway keeps them. Unbounded,
-- a list anyone can grow for free (a CLOCK_SKEW answer costs no attempt) on a device of their
-- own made every check of it scan megabytes inside Redis, stalling every other account.
local function burnField(floor)
  local kept = {}
  for step in pairs(burntSteps) do
    if not floor or step > floor then kept[#kept + 1] = step end
  end
  table.sort(kept, function(x, y) return x > y end)
  local parts = {}
  for i = 1, math.min(tonumber(ARGV[30]), #kept) do parts[i] = int(kept[i]) end
  return table.concat(parts, ',')
end

local function clamp(x, limit) return math.max(-limit, math.min(limit, x)) end
-- In pair mode the device showed code2 for s + 1, so that is where its clock is.
local shown = 0
if mode == 'pair' then shown = 1 end

-- Known sources, this one first at `nowMs`, without those past their memory, at most `kept`.
local function rememberSource(kept)
  local entries = {{sourceHash, nowMs}}
  for hash, ms in string.gmatch(knownList, '(%x+)=(%d+)') do
    ms = tonumber(ms)
    if hash ~= sourceHash and ms > nowMs - knownMemoryMs then entries[#entries + 1] = {hash, ms} end
  end
  table.sort(entries, function(x, y) return x[2] > y[2] end)
  local parts = {}
  for i = 1, math.min(kept, #entries) do parts[i] = entries[i][1] .. '=' .. int(entries[i][2]) end
  return table.concat(parts, ';')
end

-- The drift to store after accepting `newWatermark`. Pair mode re-centres: two consecutive codes
-- prove where the device's clock is. A login may move the drift by its one step only when the
-- last acceptance is at least ARGV[28] old: a real clock drifts seconds a month, and without the
-- gap a run of ever later codes walked the window ahead a step per code, up to the limit within
-- one real step, so the owner's own current code was refused until real time caught up.
local recentreGapSteps = math.floor(tonumber(ARGV[28]) / period)
local function driftAfter(newWatermark)
  local lastAcceptedAt = watermark and watermark - centreOffset
  if mode ~= 'pair' and lastAcceptedAt and lastAcceptedAt > nowStep - recentreGapSteps then
    return clamp(centreOffset, driftLimit)
  end
  return clamp(newWatermark - nowStep, driftLimit)
end

-- Decides, gathering the writes of the outcome, and returns {code, a, b}.
local function decide()
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
      -- A used or older step is refused as replayed wherever it lies: reporting it as skew
      -- would suggest a resync with codes the watermark refuses anyway.
      if watermark and step <= watermark then replayed = true
      else skewed[#skewed + 1] = step end
    end
  end

  if accepted then
    local newWatermark = accepted + shown
    put('wm', int(newWatermark))
    if not known then
      -- This source's own earlier failures were the owner's typos, not guesses by others: take
      -- them back out of the device-wide count. Other sources' failures stay counted, so an
      -- owner's success never hands a distributed attacker a fresh allowance.
      local remaining = deviceBefore[1] - pairBefore[1]
      if remaining > 0 then put('dev', encode({remaining, deviceBefore[2], deviceBefore[3]}))
      else drop('dev') end
    end
    drop(pairField)
    local later = burnField(newWatermark)
    if later ~= '' then put('burn', later) else drop('burn') end
    -- Remember the source. A source remembered within the last hour is left as it is: most
    -- sign-ins come from known networks, and an hour is nothing against the memory of months.
    if not (known and lastSuccess > nowMs - 3600000) then
      put('known', rememberSource(tonumber(ARGV[24])))
    end
    return {0, newWatermark, driftAfter(newWatermark)}
  end

  if replayed then
    -- A genuine but used code proves possession; it is not a guess, and costs nothing.
    untouched(pairField, pairBefore)
    if not known then untouched('dev', deviceBefore) end
    return {2, 0, 0}
  end

  if #skewed > 0 then
    -- A match out here proves possession, so the attempt costs nothing. But the code may be
    -- valid later (a fast clock), and reporting it must not turn the verifier into an oracle for
    -- future codes: every step recognised here is burnt and will be refused as REPLAYED.
    local nearest = skewed[1]
    local newlyBurnt = {}
    for _, step in ipairs(skewed) do
      if math.abs(step - centre) < math.abs(nearest - centre) then nearest = step end
      newlyBurnt[#newlyBurnt + 1] = int(step)
      burntSteps[step] = true
      if mode == 'pair' then
        newlyBurnt[#newlyBurnt + 1] = int(step + 1)
        burntSteps[step + 1] = true
      end
    end
    put('burn', burnField(watermark))
    untouched(pairField, pairBefore)
    if not known then untouched('dev', deviceBefore) end
    return {4, nearest + shown - nowStep, 0, table.concat(newlyBurnt, ',')}
  end

  chargeAttempt()
  if budgetHere then
    -- Charged only now, for a fresh failure: within one atomic script that is the same as
    -- spending first and refunding every other outcome (as the separate claim must), and cheaper.
    chargeBudget(KEYS[3], ARGV[27])
  end
  return {1, 0, 0}
end

-- The attempt is spent before the decision counts: Redis runs one script at a time, so no
-- parallel guess is checked before this one is charged, and the charge reaches Redis in the same
-- write as the decision. Should deciding fail, the charge alone is written before the error
-- surfaces (and the worker refuses): a failure is never a free guess.
local decided, outcome = pcall(decide)
if not decided then
  sets, dels = {}, {}
  chargeAttempt()
  flush()
  error(outcome)
end
flush()
return finish(outcome[1], outcome[2], outcome[3], outcome[4])
