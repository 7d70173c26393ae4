import type { createClient } from "redis";

/** Deletes every key under `prefix:`, so a benchmark leaves the shared Redis as it found it. */
export async function deleteKeysWithPrefix(
  redis: ReturnType<typeof createClient>,
  prefix: string,
): Promise<void> {
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
    if (keys.length > 0) await redis.del(keys);
  }
}
