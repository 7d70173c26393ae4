/**
 * Faults under steady load. The product runs on its own throwaway PostgreSQL and Redis (never
 * the machine's shared ones) with auth workers as child processes, while a test client sends
 * getSessionToken with correct codes, wrong codes and replays (see load.ts). For each fault —
 * a worker SIGKILLed while it holds requests, Redis restarted empty, PostgreSQL restarted, all
 * workers stopped for 10 s — every request ends with a correct answer or SERVICE_UNAVAILABLE
 * within its deadline, no code is accepted twice, no wrong code is accepted, nothing is lost,
 * and the product recovers by itself. Each test prints its counts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestAccount, createTestUser } from "../support/fixtures";
import { enrolForSignIn, passwordSession } from "../support/signin";
import { startStack, type Stack } from "../support/stack";
import {
  cleanUpAll,
  spawnWorker,
  startPostgres,
  startRedisServer,
  type ChildWorker,
  type PostgresServer,
  type RedisServer,
} from "../support/throwaway";
import { testKeyringSpec } from "../support/workers";
import { CLIENT_DEADLINE_MS, SteadyLoad, type LoadDevice } from "./load";
import { transportKeys, CONSUMER_GROUP } from "../../worker/transport/keys";

const DEVICES = 48;
const DECOYS = 4;
const RECOVERY_LIMIT_MS = 30_000;

let pg: PostgresServer;
let redis: RedisServer;
let stack: Stack;
let load: SteadyLoad;
let accountId: string;
const workers: ChildWorker[] = [];
const logs: string[] = [];
let baseline: { users: number; devices: number };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function addWorker() {
  const worker = await spawnWorker({
    redisUrl: redis.url,
    prefix: stack.prefix,
    keyringSpec: testKeyringSpec(),
    logs,
  });
  workers.push(worker);
  return worker;
}

async function enrolAll(rootToken: string, count: number, tag: string): Promise<LoadDevice[]> {
  const made: LoadDevice[] = [];
  const one = async (i: number) => {
    const userName = `${tag}${i}`;
    const user = await createTestUser(stack, rootToken, userName);
    const token = await passwordSession(stack, { account: accountId, userName });
    const device = await enrolForSignIn(stack, rootToken, userName, `${userName}-phone`);
    const row = await stack.db.virtualMfaDevice.findUniqueOrThrow({
      where: { serialNumber: device.serialNumber },
    });
    made.push({
      userName,
      userId: user.userId,
      serialNumber: device.serialNumber,
      seed: device.seed,
      token,
      drift: row.drift,
      lastSent: row.lastStep!,
    });
  };
  for (let i = 0; i < count; i += 6) {
    await Promise.all(Array.from({ length: Math.min(6, count - i) }, (_, j) => one(i + j)));
  }
  return made;
}

beforeAll(async () => {
  pg = await startPostgres();
  redis = await startRedisServer();
  stack = await startStack({
    workers: 0,
    env: { DATABASE_URL: pg.url, REDIS_URL: redis.url, TRUST_PROXY: "1" },
  });
  await addWorker();
  await addWorker();
  const account = await createTestAccount(stack);
  accountId = account.accountId;
  const devices = await enrolAll(account.rootToken, DEVICES, "load");
  const decoys = await enrolAll(account.rootToken, DECOYS, "decoy");
  load = new SteadyLoad(stack, devices, decoys);
  baseline = {
    users: await stack.db.user.count({ where: { accountId } }),
    devices: await stack.db.virtualMfaDevice.count({ where: { accountId } }),
  };
}, 180_000);

afterAll(async () => {
  await load?.stop();
  await stack?.stop().catch(() => undefined);
  await cleanUpAll();
});

/**
 * Waits until the whole path (gateway, PostgreSQL, Redis, a worker's verification) answers again:
 * a correct code accepted or a wrong one refused. Returns how long that took.
 */
async function recovery(since: number): Promise<number> {
  const started = Date.now();
  const working = (r: { verdict: string; at: number }) =>
    (r.verdict === "accepted" || r.verdict === "refused") && r.at >= started;
  while (Date.now() - started < RECOVERY_LIMIT_MS) {
    if (load.records.slice(since).some(working)) {
      return Date.now() - started;
    }
    await sleep(100);
  }
  throw new Error(
    `no verification answered within ${RECOVERY_LIMIT_MS} ms after the fault cleared`,
  );
}

/** The checks every fault must pass, on the records since `since`, and on the database. */
async function checkInvariants(name: string, since: number, recoveredMs: number) {
  const counts = load.counts(since);
  console.log(`[fault: ${name}] recovered in ${recoveredMs} ms;`, JSON.stringify(counts));
  const bad = load.records
    .slice(since)
    .filter((r) => ["lost", "wrongly-accepted", "correct-refused"].includes(r.verdict));
  if (bad.length)
    console.log(`[fault: ${name}] unexpected answers:`, JSON.stringify(bad.slice(0, 3)));
  const masked = stack.logs.filter((line) => line.includes("unexpected error masked"));
  if (masked.length)
    console.log(`[fault: ${name}] masked errors:`, masked.slice(-2).join("\n").slice(0, 3000));

  expect(counts.wronglyAccepted).toBe(0);
  expect(counts.lost).toBe(0);
  expect(counts.correctRefused).toBe(0);
  expect(counts.slowestMs).toBeLessThan(CLIENT_DEADLINE_MS);
  expect(counts.accepted).toBeGreaterThan(0);
  expect(counts.refusedWrongOrReplay).toBeGreaterThan(0);
  for (const [key, times] of load.acceptedSteps) expect({ key, times }).toEqual({ key, times: 1 });

  // Nothing lost: every user and device is still there, and every acceptance the client saw
  // left exactly one audit event, one STS session and a watermark at or above its step.
  expect(await stack.db.user.count({ where: { accountId } })).toBe(baseline.users);
  expect(await stack.db.virtualMfaDevice.count({ where: { accountId } })).toBe(baseline.devices);
  const accepted = load.records.filter((r) => r.verdict === "accepted");
  const audited = await stack.db.auditEvent.count({
    where: { accountId, action: "GetSessionToken", outcome: "success" },
  });
  expect(audited).toBe(accepted.length);
  expect(await stack.db.session.count({ where: { accountId, kind: "sts" } })).toBe(accepted.length);
  const rows = await stack.db.virtualMfaDevice.findMany({ where: { accountId } });
  const lastStep = new Map(rows.map((row) => [row.serialNumber, row.lastStep ?? -1]));
  for (const r of accepted) expect(lastStep.get(r.serialNumber)).toBeGreaterThanOrEqual(r.step);
}

/** Runs the load around a fault: 3 s before, the fault, recovery, 3 s after. */
async function underLoad(fault: () => Promise<void>) {
  const since = load.records.length;
  load.start();
  try {
    // Steady state first: at least one code accepted (a device's first fresh step may be the next).
    const ready = Date.now();
    while (!load.records.slice(since).some((r) => r.verdict === "accepted")) {
      if (Date.now() - ready > 40_000) throw new Error("the load never got a code accepted");
      await sleep(200);
    }
    await sleep(2000);
    await fault();
    const recoveredMs = await recovery(since);
    await sleep(3000);
    await load.stop();
    return { since, recoveredMs };
  } finally {
    await load.stop();
  }
}

async function pendingFor(worker: ChildWorker): Promise<number> {
  const redisClient = stack.redis as unknown as { sendCommand(args: string[]): Promise<unknown> };
  const summary = (await redisClient.sendCommand([
    "XPENDING",
    transportKeys(stack.prefix).requests,
    CONSUMER_GROUP,
  ])) as [number, string | null, string | null, [string, string][] | null];
  const mine = (summary[3] ?? []).find(([consumer]) => consumer.includes(`-${worker.pid}-`));
  return mine ? Number(mine[1]) : 0;
}

describe("faults under steady load", () => {
  it("a worker SIGKILLed while it holds requests loses none: another worker answers them", async () => {
    let held = 0;
    const { since, recoveredMs } = await underLoad(async () => {
      const victim = workers[0]!;
      // Wait until the victim holds requests (read, not yet answered), then kill it.
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && held === 0) {
        const burst = Array.from({ length: 6 }, () => load.correct());
        held = await pendingFor(victim);
        if (held > 0) await victim.kill("SIGKILL");
        await Promise.all(burst);
      }
      if (held === 0) await victim.kill("SIGKILL");
      workers.shift();
      await addWorker();
    });
    console.log(`[fault: worker SIGKILL] the killed worker held ${held} request(s)`);
    expect(held).toBeGreaterThan(0);
    await checkInvariants("worker SIGKILL", since, recoveredMs);
  }, 90_000);

  it("Redis restarted empty (every watermark and counter lost) reopens no used code", async () => {
    const { since, recoveredMs } = await underLoad(async () => {
      await redis.kill();
      await sleep(2000);
      await redis.start();
      // The sharpest check: right after the flush, replay every device's last accepted code.
      await load.replayAllLatest();
    });
    await checkInvariants("Redis restart + flush", since, recoveredMs);
    expect(load.records.slice(since).filter((r) => r.kind === "replay").length).toBeGreaterThan(0);
  }, 120_000);

  it("PostgreSQL restarted answers SERVICE_UNAVAILABLE meanwhile and recovers by itself", async () => {
    const { since, recoveredMs } = await underLoad(async () => {
      pg.stop("fast");
      await sleep(3000);
      pg.start();
    });
    await checkInvariants("PostgreSQL restart", since, recoveredMs);
    expect(load.counts(since).unavailable).toBeGreaterThan(0);
  }, 90_000);

  it("all workers stopped for 10 s: callers get SERVICE_UNAVAILABLE, then service resumes", async () => {
    const { since, recoveredMs } = await underLoad(async () => {
      const all = workers.splice(0);
      await Promise.all(all.map((w) => w.kill("SIGTERM")));
      await sleep(10_000);
      await addWorker();
      await addWorker();
    });
    await checkInvariants("all workers down 10 s", since, recoveredMs);
    expect(load.counts(since).unavailable).toBeGreaterThan(0);
  }, 90_000);

  it("prints the totals over every fault", () => {
    const totals = load.counts(0);
    console.log("[faults: totals]", JSON.stringify(totals));
    expect(totals.wronglyAccepted).toBe(0);
    expect(totals.lost).toBe(0);
  });
});
