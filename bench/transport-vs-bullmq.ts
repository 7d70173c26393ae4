/**
 * Our Redis Streams transport against BullMQ 5, measured in one run on the same Redis.
 *
 * 1. Request → reply round trips of a fake `verify` (the request has the real verify shape, the
 *    handler answers `{ outcome: "INVALID" }`): ours through createWorkerClient → request stream
 *    → createWorker → reply list; BullMQ through Queue.add → Worker → QueueEvents and
 *    `job.waitUntilFinished`. 1 and 2 in-process workers (concurrency 64 each), 1, 20 and 50
 *    calls in flight, BENCH_MS per row. Every worker and client has its own connections.
 * 2. Crash takeover: a worker takes a request and closes without answering; we time from that
 *    close until a second worker's answer arrives. Ours: XAUTOCLAIM after claimIdleMs (the
 *    WORKER_CLAIM_IDLE_MS default, 1000). BullMQ: the lock must expire (lockDuration) and the
 *    stalled check (stalledInterval) must run; both default to 30 s, so this run sets both to
 *    BULL_STALL_MS (default 1000) and prints what the defaults imply.
 *
 * Keys live under unique prefixes and are deleted afterwards.
 * Run: npx tsx bench/transport-vs-bullmq.ts   (REDIS_URL, BENCH_MS, BULL_STALL_MS to override)
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { Queue, QueueEvents, Worker as BullWorker, type ConnectionOptions } from "bullmq";
import pino from "pino";
import { createClient } from "redis";
import { createWorkerClient } from "../worker/client";
import { runLanes } from "./lib/lanes";
import type { VerifyResult, WorkerRequest } from "../worker/protocol";
import { createWorker, type Worker, type WorkerHandlers } from "../worker/worker";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const BENCH_MS = Number(process.env.BENCH_MS ?? 3000);
const BULL_STALL_MS = Number(process.env.BULL_STALL_MS ?? 1000);
const WARMUP_CALLS = 200;
const CONCURRENCY = 64;
const url = new URL(REDIS_URL);
const bullConnection: ConnectionOptions = {
  host: url.hostname,
  port: Number(url.port || 6379),
  maxRetriesPerRequest: null,
};
const silent = pino({ level: "silent" });
const INVALID: VerifyResult = { outcome: "INVALID" };
const VERIFY = {
  op: "verify",
  mode: "login",
  device: {
    deviceId: "bench-device-0001",
    accountId: "123456789012",
    sealedSeed: "v1.bench.c2VhbGVkLXNlZWQtcGxhY2Vob2xkZXI",
    keyId: "k1",
    algorithm: "SHA1",
    digits: 6,
    period: 30,
    drift: 0,
    lastStep: null,
  },
  code1: "123456",
  source: "203.0.113.7",
} satisfies Extract<WorkerRequest, { op: "verify" }>;

type Redis = ReturnType<typeof createClient>;
/** One request → reply path under test: `call` sends VERIFY and resolves with the answer. */
interface Rpc {
  call(): Promise<unknown>;
  close(): Promise<void>;
}

const refuse = () => Promise.reject(new Error("the benchmark only verifies"));
const handlersFor = (verify: WorkerHandlers["verify"]): WorkerHandlers => ({
  provision: refuse,
  reseal: refuse,
  forget: refuse,
  verify,
});
const hang = () => new Promise<never>(() => undefined);

async function connect(opened: Redis[]): Promise<Redis> {
  const redis = createClient({ url: REDIS_URL });
  redis.on("error", () => undefined);
  await redis.connect();
  opened.push(redis);
  return redis;
}

async function deleteKeys(prefix: string): Promise<void> {
  const admin = createClient({ url: REDIS_URL });
  await admin.connect();
  for await (const keys of admin.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
    if (keys.length > 0) await admin.del(keys);
  }
  await admin.close();
}

async function ours(workerCount: number): Promise<Rpc> {
  const prefix = `bench-vs-${randomUUID().slice(0, 8)}`;
  const opened: Redis[] = [];
  const workers: Worker[] = [];
  for (let i = 0; i < workerCount; i++) {
    const handlers = handlersFor(() => INVALID);
    const redis = await connect(opened);
    workers.push(
      createWorker({ redis, prefix, handlers, logger: silent, concurrency: CONCURRENCY }),
    );
    await workers[i]!.start();
  }
  const client = createWorkerClient({ redis: await connect(opened), prefix, deadlineMs: 10_000 });
  return {
    call: () => client.call(VERIFY),
    async close() {
      await client.close();
      for (const worker of workers) await worker.stop();
      for (const redis of opened) await redis.close();
      await deleteKeys(prefix);
    },
  };
}

async function bull(workerCount: number): Promise<Rpc> {
  const prefix = `bench-bull-${randomUUID().slice(0, 8)}`;
  const opts = { connection: bullConnection, prefix };
  const queue = new Queue("verify", {
    ...opts,
    defaultJobOptions: { removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } },
  });
  queue.setMaxListeners(0); // waitUntilFinished adds a 'closing' listener per waiting call
  const events = new QueueEvents("verify", opts);
  const workers = Array.from(
    { length: workerCount },
    () => new BullWorker("verify", async () => INVALID, { ...opts, concurrency: CONCURRENCY }),
  );
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  return {
    call: async () => (await queue.add("verify", VERIFY)).waitUntilFinished(events),
    async close() {
      await Promise.all(workers.map((worker) => worker.close()));
      await events.close();
      await queue.close();
      await deleteKeys(prefix);
    },
  };
}

async function measure(rpc: Rpc, inFlight: number) {
  for (let i = 0; i < WARMUP_CALLS; i++) await rpc.call();
  return runLanes(inFlight, BENCH_MS, () => rpc.call());
}

/** `taken` resolves once the stuck worker's handler holds the request. */
function signal(): { taken: Promise<void>; take(): void } {
  let take!: () => void;
  const taken = new Promise<void>((resolve) => (take = resolve));
  return { taken, take };
}

async function takeoverOurs(): Promise<number> {
  const prefix = `bench-vs-${randomUUID().slice(0, 8)}`;
  const opened: Redis[] = [];
  const { taken, take } = signal();
  const stuckHandlers = handlersFor(() => (take(), hang()));
  const deps = { prefix, logger: silent, drainTimeoutMs: 0 };
  const stuck = createWorker({ ...deps, redis: await connect(opened), handlers: stuckHandlers });
  await stuck.start();
  const client = createWorkerClient({ redis: await connect(opened), prefix, deadlineMs: 30_000 });
  const reply = client.call(VERIFY);
  await taken;
  const handlers = handlersFor(() => INVALID);
  const rescuer = createWorker({ ...deps, redis: await connect(opened), handlers });
  await rescuer.start();
  const crashedAt = performance.now();
  await stuck.stop(); // drainTimeoutMs 0: leaves the request pending in its consumer's list
  await reply;
  const ms = performance.now() - crashedAt;
  await client.close();
  await rescuer.stop();
  for (const redis of opened) await redis.close();
  await deleteKeys(prefix);
  return ms;
}

async function takeoverBull(): Promise<number> {
  const prefix = `bench-bull-${randomUUID().slice(0, 8)}`;
  const opts = { connection: bullConnection, prefix };
  const workerOpts = { ...opts, lockDuration: BULL_STALL_MS, stalledInterval: BULL_STALL_MS };
  const queue = new Queue("verify", opts);
  const events = new QueueEvents("verify", opts);
  await events.waitUntilReady();
  const { taken, take } = signal();
  const stuck = new BullWorker("verify", () => (take(), hang()), workerOpts);
  const job = await queue.add("verify", VERIFY);
  const reply = job.waitUntilFinished(events);
  await taken;
  const rescuer = new BullWorker("verify", async () => INVALID, workerOpts);
  await rescuer.waitUntilReady();
  const crashedAt = performance.now();
  await stuck.close(true); // force: the lock is left to expire, as after a crash
  await reply;
  const ms = performance.now() - crashedAt;
  await rescuer.close();
  await events.close();
  await queue.close();
  await deleteKeys(prefix);
  return ms;
}

async function main() {
  const lines = [
    "| transport | workers | in flight | p50 ms | p99 ms | ops/s |",
    "|---|---:|---:|---:|---:|---:|",
  ];
  const paths = { "redis streams (ours)": ours, "bullmq 5.81.5": bull };
  for (const [name, open] of Object.entries(paths)) {
    for (const workers of [1, 2]) {
      for (const inFlight of [1, 20, 50]) {
        const rpc = await open(workers);
        const row = await measure(rpc, inFlight).finally(() => rpc.close());
        const cells = [row.p50.toFixed(2), row.p99.toFixed(2), Math.round(row.rps)];
        lines.push(`| ${name} | ${workers} | ${inFlight} | ${cells.join(" | ")} |`);
      }
    }
  }
  const oursMs = await takeoverOurs();
  const bullMs = await takeoverBull();
  console.log(
    `fake verify round trips over ${REDIS_URL}, ${BENCH_MS} ms per row, ${process.version}`,
  );
  console.log(["", ...lines, ""].join("\n"));
  console.log(`crash takeover, ours (claimIdleMs 1000, XAUTOCLAIM): ${oursMs.toFixed(0)} ms`);
  console.log(
    `crash takeover, bullmq (lockDuration = stalledInterval = ${BULL_STALL_MS}): ` +
      `${bullMs.toFixed(0)} ms; at the 30 s defaults expect roughly 30-60 s`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
