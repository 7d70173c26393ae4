--[[
  Forgets a deleted device's state, so it does not lapse only after its longest memory, and
  leaves a tombstone in its place: a verification of the device already under way when it was
  deleted (an enableMfaDevice still being checked, say) runs verify-3.lua after this, and the
  tombstone makes that script refuse it and write nothing, where it would have written the state
  back for its full life. A script rather than plain commands so that the verifier reaches Redis
  through scripts alone, on a single Redis and on Redis Cluster alike.

  KEYS[1] device state    <prefix>:{d:<device>}   (see verify-3.lua)
  ARGV[1] tombstone ttl s longer than any verification of the device can still be under way

  Returns 1 when the device had state, or 0 when it had none (or only its tombstone).
]]
local hadState = redis.call('EXISTS', KEYS[1]) == 1 and not redis.call('HGET', KEYS[1], 'gone')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'gone', '1')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return hadState and 1 or 0
