/**
 * `npm run reseal`: re-seal every device under the worker's current key (SEAL_CURRENT_KEY_ID).
 * Needs PostgreSQL, Redis and at least one running worker that holds both old and new keys.
 * Exits non-zero unless every device was resealed and all now share one key id.
 */
import { loadGatewayConfig } from "../src/config";
import { createDb } from "../src/db";
import { resealAllDevices, unfinishedReseal } from "../src/maintenance/reseal";
import { createWorkerClient } from "../worker/client";
import { connectRedis } from "../worker/redis-connection";

async function main() {
  const config = loadGatewayConfig();
  const db = createDb(config.DATABASE_URL, 2);
  const redis = await connectRedis({
    url: config.REDIS_URL,
    clusterNodes: config.REDIS_CLUSTER_NODES,
  });
  const worker = createWorkerClient({
    redis,
    prefix: config.REDIS_PREFIX,
    deadlineMs: config.WORKER_DEADLINE_MS,
  });
  try {
    const report = await resealAllDevices(db, worker, {
      onProgress: (r) =>
        console.log(`scanned ${r.scanned}, resealed ${r.resealed}, skipped ${r.skipped}`),
    });
    console.log(`done: ${JSON.stringify(report)}`);
    const unfinished = unfinishedReseal(report);
    if (unfinished) {
      // Exit non-zero: the old key must not be dropped yet.
      console.error(`reseal unfinished: ${unfinished}`);
      process.exitCode = 1;
    }
  } finally {
    await worker.close();
    await redis.close();
    await db.$disconnect();
  }
}

main().catch((error) => {
  console.error("reseal failed:", error instanceof Error ? error.message : error);
  process.exit(1);
});
