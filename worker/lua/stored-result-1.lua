--[[
  Reads, without side effects, the result stored for a request id, so a retried request gets its
  first answer even when its source has since run out of budget.

  KEYS[1] result        <prefix>:{d:<device>}:res:<request>   "fingerprint|code|a|b|burnt"

  ARGV[1] fingerprint   HMAC of the request under the seed

  Returns {found, code, a, b, burnt}: {0,0,0,0,''} when nothing is stored, {1, code, a, b, burnt}
  when the stored result belongs to this request, and {1, 6, 0, 0, ''} (REQUEST_ID_CONFLICT) when
  it does not. `burnt` is as verify-3.lua returns it ("" in results of the previous version).
]]
local stored = redis.call('GET', KEYS[1])
if not stored then return {0, 0, 0, 0, ''} end
local fp, code, a, b, burnt =
  string.match(stored, '^([^|]*)|(%-?%d+)|(%-?%d+)|(%-?%d+)|?([%d,%-]*)$')
if fp ~= ARGV[1] then return {1, 6, 0, 0, ''} end
return {1, tonumber(code), tonumber(a), tonumber(b), burnt}
