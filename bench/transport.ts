/**
 * Round-trip latency and throughput of `ping` through Redis: gateway client → request stream →
 * worker → reply list → client, with 1 and 2 in-process workers at 1, 20 and 50 calls in flight
 * (20 is the level of the BullMQ comparison in the offline-toolchain notes). Every worker and the
 * client have their own connections, as separate processes would.
 *
 * Run: npx tsx bench/transport.ts   (REDIS_URL, BENCH_SECONDS to override)
 */
import { randomUUID } from "node:crypto";
import pino from "pino";
import { createClient } from "redis";
import { createWorkerClient } from "../worker/client";
import { runLanes } from "./lib/lanes";
import { createWorker, type Worker, type WorkerHandlers } from "../worker/worker";
import { deleteKeysWithPrefix } from "./lib/redis-keys";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const WARMUP_CALLS = 300;

type Redis = ReturnType<typeof createClient>;

const refuseWork = async (): Promise<never> => {
  throw new Error("the benchmark only pings");
};
const handlers: WorkerHandlers = {
  provision: refuseWork,
  verify: refuseWork,
  reseal: refuseWork,
  forget: refuseWork,
};

async function connect(opened: Redis[]): Promise<Redis> {
  const redis = createClient({ url: REDIS_URL });
  redis.on("error", () => undefined);
  await redis.connect();
  opened.push(redis);
  return redis;
}

async function measure(workerCount: number, inFlight: number) {
  const prefix = `bench-${randomUUID().slice(0, 8)}`;
  const opened: Redis[] = [];
  const workers: Worker[] = [];
  for (let i = 0; i < workerCount; i++) {
    const redis = await connect(opened);
    const worker = createWorker({
      redis,
      prefix,
      handlers,
      logger: pino({ level: "silent" }),
      concurrency: 64,
    });
    await worker.start();
    workers.push(worker);
  }
  const client = createWorkerClient({ redis: await connect(opened), prefix, deadlineMs: 5000 });
  for (let i = 0; i < WARMUP_CALLS; i++) await client.ping();

  const result = await runLanes(inFlight, SECONDS * 1000, () => client.ping());

  await client.close();
  for (const worker of workers) await worker.stop();
  const admin = opened[0]!;
  await deleteKeysWithPrefix(admin, prefix);
  for (const redis of opened) await redis.close();

  return { workers: workerCount, inFlight, ...result };
}

async function main() {
  const rows = [];
  for (const workers of [1, 2]) {
    for (const inFlight of [1, 20, 50]) rows.push(await measure(workers, inFlight));
  }
  console.log(`ping round trips over ${REDIS_URL}, ${SECONDS} s per row, node ${process.version}`);
  console.log("workers  in flight    calls   p50 ms   p99 ms     ops/s");
  for (const row of rows) {
    console.log(
      [
        String(row.workers).padStart(7),
        String(row.inFlight).padStart(10),
        String(row.calls).padStart(8),
        row.p50.toFixed(2).padStart(8),
        row.p99.toFixed(2).padStart(8),
        Math.round(row.rps).toString().padStart(9),
      ].join(" "),
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
