--[[
  Deletes a deleted device's state hash, so it does not lapse only after its longest memory.
  A script rather than a plain DEL so that the verifier reaches Redis through scripts alone, on a
  single Redis and on Redis Cluster alike.

  KEYS[1] device state    <prefix>:{d:<device>}   (see verify-3.lua)

  Returns the number of keys deleted: 1, or 0 when the device had no state.
]]
return redis.call('DEL', KEYS[1])
