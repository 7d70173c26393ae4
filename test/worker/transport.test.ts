/**
 * The gateway ↔ worker transport against a real Redis: the worker client, the stream consumer
 * and the worker around injected handlers. Each test gets its own key prefix, deleted afterwards.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { freePort } from "../../scripts/free-port";
import path from "node:path";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import pino from "pino";
import { createClient } from "redis";
import { afterEach, describe, expect, it } from "vitest";
import {
  createWorkerClient,
  WorkerRequestError,
  WorkerUnavailableError,
  type WorkerClientOptions,
} from "../../worker/client";
import { createHandlers } from "../../worker/handlers";
import type { ReplyEnvelope, WorkerRequest } from "../../worker/protocol";
import { provisionSeed } from "../../worker/provision";
import { generateKeyringSpec, parseKeyring } from "../../worker/seal/keyring";
import { base32Decode } from "../../worker/totp/base32";
import { totpAt } from "../../worker/totp/hotp";
import {
  CONSUMER_GROUP,
  destroyQuietly,
  encodeRequestEntry,
  redisTimeMs,
  transportKeys,
} from "../../worker/transport/keys";
import {
  createWorker,
  WorkerHandlerError,
  type WorkerDeps,
  type WorkerHandlers,
} from "../../worker/worker";

type Redis = ReturnType<typeof createClient>;
type VerifyRequest = Extract<WorkerRequest, { op: "verify" }>;

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const SEED = "JBSWY3DPEHPK3PXP".repeat(4);
const silent = pino({ level: "silent" });

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

async function connect(): Promise<Redis> {
  const redis = createClient({ url: REDIS_URL });
  redis.on("error", () => undefined);
  await redis.connect();
  cleanups.push(() => redis.close());
  return redis;
}

/** A fresh prefix whose keys are deleted after the test, once its workers have stopped. */
async function newPrefix(): Promise<{ prefix: string; admin: Redis }> {
  const prefix = `test-transport-${randomUUID().slice(0, 8)}`;
  const admin = await connect();
  cleanups.push(async () => {
    for await (const keys of admin.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
      if (keys.length > 0) await admin.del(keys);
    }
  });
  return { prefix, admin };
}

function verifyRequest(drift = 0, code1 = "123456"): VerifyRequest {
  return {
    op: "verify",
    mode: "login",
    code1,
    source: "198.51.100.7",
    device: {
      deviceId: "device-1",
      accountId: "123456789012",
      sealedSeed: "c2VhbGVk",
      keyId: "k1",
      algorithm: "SHA1",
      digits: 6,
      period: 30,
      drift,
      lastStep: null,
    },
  };
}

/** Handlers that answer from the request and record every verify they run. */
function fakeHandlers(overrides: Partial<WorkerHandlers> = {}) {
  const verified: string[] = [];
  const handlers: WorkerHandlers = {
    provision: async () => ({ base32Seed: SEED, sealedSeed: "sealed-seed", keyId: "k1" }),
    verify: async (request, requestId) => {
      verified.push(requestId);
      const { drift } = request.device;
      return { outcome: "OK", step: 1000 + drift, drift };
    },
    reseal: async () => ({ sealedSeed: "resealed-seed", keyId: "k2" }),
    forget: async () => ({ forgotten: false }),
    ...overrides,
  };
  return { handlers, verified };
}

async function startWorker(
  prefix: string,
  handlers: WorkerHandlers,
  options: Partial<WorkerDeps> = {},
) {
  const redis = await connect();
  const worker = createWorker({
    redis,
    prefix,
    handlers,
    logger: silent,
    claimIdleMs: 300,
    ...options,
  });
  await worker.start();
  cleanups.push(() => worker.stop());
  return worker;
}

async function startClient(prefix: string, options: Partial<WorkerClientOptions> = {}) {
  const redis = await connect();
  const client = createWorkerClient({ redis, prefix, deadlineMs: 3000, ...options });
  cleanups.push(() => client.close());
  return client;
}

async function settleTime(work: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const startedAt = Date.now();
  const error = await work.then(
    () => undefined,
    (rejection: unknown) => rejection,
  );
  return { error, ms: Date.now() - startedAt };
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > giveUpAt) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function logSink(lines: string[]): Writable {
  return new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
}

describe("worker transport", () => {
  it("answers a ping with the worker's id and the Redis time", async () => {
    const { prefix, admin } = await newPrefix();
    const worker = await startWorker(prefix, fakeHandlers().handlers);
    const client = await startClient(prefix);
    expect(client.lastReplyAt()).toBeNull();

    const pong = await client.ping();

    expect(pong.workerId).toBe(worker.workerId);
    expect(Math.abs(pong.time - (await redisTimeMs(admin)))).toBeLessThan(5000);
    expect(client.lastReplyAt()).not.toBeNull();
  });

  it("returns each op's reply typed and checked against the contract", async () => {
    const { prefix } = await newPrefix();
    await startWorker(prefix, fakeHandlers().handlers);
    const client = await startClient(prefix);

    const provisioned = await client.call({
      op: "provision",
      accountId: "123456789012",
      deviceId: "d-7",
    });
    const verified = await client.call(verifyRequest(2));
    const resealed = await client.call({ op: "reseal", device: verifyRequest().device });

    expect(provisioned).toEqual({ base32Seed: SEED, sealedSeed: "sealed-seed", keyId: "k1" });
    expect(verified).toEqual({ outcome: "OK", step: 1002, drift: 2 });
    expect(resealed).toEqual({ sealedSeed: "resealed-seed", keyId: "k2" });
  });

  it("masks a handler reply outside the contract as unavailable", async () => {
    const { prefix } = await newPrefix();
    const { handlers } = fakeHandlers({ verify: async () => ({ outcome: "MAYBE" }) as never });
    await startWorker(prefix, handlers);
    const client = await startClient(prefix);

    const { error } = await settleTime(client.call(verifyRequest()));

    expect(error).toBeInstanceOf(WorkerUnavailableError);
    expect((error as WorkerUnavailableError).reason).toBe("WORKER");
  });

  it("refuses a reply whose result does not match the op's schema", async () => {
    const { prefix, admin } = await newPrefix();
    const client = await startClient(prefix, { gatewayId: "gw-contract", deadlineMs: 10_000 });

    const call = settleTime(client.ping());
    await eventually(async () => (await admin.xLen(transportKeys(prefix).requests)) === 1);
    const [entry] = await admin.xRange(transportKeys(prefix).requests, "-", "+");
    const forged = { id: entry!.message.id, ok: true, result: { workerId: 42 } };
    await admin.lPush(transportKeys(prefix).replyList("gw-contract"), JSON.stringify(forged));
    const { error, ms } = await call;

    expect(error).toBeInstanceOf(WorkerUnavailableError);
    expect((error as WorkerUnavailableError).reason).toBe("PROTOCOL");
    expect(ms).toBeLessThan(10_000);
  });

  it("rejects with WorkerUnavailableError by the deadline when no worker runs", async () => {
    const { prefix } = await newPrefix();
    const client = await startClient(prefix);

    const { error, ms } = await settleTime(client.call(verifyRequest(), { deadlineMs: 300 }));

    expect(error).toBeInstanceOf(WorkerUnavailableError);
    expect((error as WorkerUnavailableError).reason).toBe("DEADLINE");
    expect(ms).toBeLessThan(300 + 2000);
  });

  it("rejects with WorkerUnavailableError by the deadline when Redis is unreachable", async () => {
    const port = await freePort();
    const server = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: "ignore" },
    );
    cleanups.push(async () => server.kill("SIGKILL"));
    // The default client queues commands while offline: the client's own guards must hold.
    const pong = () => spawnSync("redis-cli", ["-p", String(port), "ping"]).stdout?.toString();
    await eventually(async () => pong()?.trim() === "PONG");
    const redis = createClient({ url: `redis://127.0.0.1:${port}` });
    redis.on("error", () => undefined);
    await redis.connect();
    cleanups.push(async () => destroyQuietly(redis));
    const client = createWorkerClient({ redis, prefix: "unreachable", deadlineMs: 500 });
    cleanups.push(() => client.close());
    await expect(client.liveWorkers()).resolves.toBe(0);

    server.kill("SIGKILL");
    const first = await settleTime(client.ping());
    await new Promise((resolve) => setTimeout(resolve, 200));
    const later = await settleTime(client.call(verifyRequest()));

    for (const { error, ms } of [first, later]) {
      expect(error).toBeInstanceOf(WorkerUnavailableError);
      expect(ms).toBeLessThan(500 + 2000);
    }
    await expect(client.liveWorkers()).rejects.toBeInstanceOf(WorkerUnavailableError);
  });

  it("runs a cached op once when it is retried with the same request id", async () => {
    const { prefix } = await newPrefix();
    const resealed: string[] = [];
    const { handlers } = fakeHandlers({
      reseal: async (request) => (
        resealed.push(request.device.deviceId),
        { sealedSeed: `resealed-${resealed.length}`, keyId: "k2" }
      ),
    });
    await startWorker(prefix, handlers);
    const client = await startClient(prefix);
    const reseal = { op: "reseal", device: verifyRequest().device } as const;

    const first = await client.call(reseal, { requestId: "retry-1" });
    const second = await client.call(reseal, { requestId: "retry-1" });

    expect(resealed).toEqual(["device-1"]);
    expect(second).toEqual(first);
  });

  it("never replays a cached answer to a different request under the same id", async () => {
    const { prefix } = await newPrefix();
    const { handlers } = fakeHandlers();
    await startWorker(prefix, handlers);
    const client = await startClient(prefix);
    const device = verifyRequest().device;

    await client.call({ op: "reseal", device }, { requestId: "reused-1" });
    const otherDevice = await settleTime(
      client.call(
        { op: "reseal", device: { ...device, deviceId: "device-2" } },
        {
          requestId: "reused-1",
        },
      ),
    );

    expect(otherDevice.error).toBeInstanceOf(WorkerRequestError);
    expect((otherDevice.error as WorkerRequestError).code).toBe("BAD_REQUEST");
  });

  it("leaves verify's idempotency to the verifier: a retry gets its first answer, not REPLAYED", async () => {
    const { prefix } = await newPrefix();
    const keyring = parseKeyring(generateKeyringSpec("transport"));
    const redis = await connect();
    await startWorker(prefix, createHandlers({ redis, keyring, prefix }));
    const client = await startClient(prefix);
    const deviceId = randomUUID();
    const provisioned = provisionSeed(keyring, { accountId: "123456789012", deviceId });
    const request: VerifyRequest = {
      ...verifyRequest(),
      code1: totpAt(base32Decode(provisioned.base32Seed), Date.now()),
      device: {
        ...verifyRequest().device,
        deviceId,
        sealedSeed: provisioned.sealedSeed,
        keyId: provisioned.keyId,
      },
    };

    const first = await client.call(request, { requestId: "verify-retry-1" });
    const retried = await client.call(request, { requestId: "verify-retry-1" });
    const fresh = await client.call(request, { requestId: "verify-retry-2" });

    expect(first.outcome).toBe("OK");
    expect(retried).toEqual(first);
    expect(fresh.outcome).toBe("REPLAYED");
    // Nothing in the transport's done-cache: the verifier's stored result answered the retry.
    expect(await redis.exists(transportKeys(prefix).done("verify-retry-1"))).toBe(0);
  });

  it("never stores a provisioned seed in Redis", async () => {
    const { prefix, admin } = await newPrefix();
    let provisions = 0;
    const { handlers } = fakeHandlers({
      provision: async () => (
        provisions++,
        { base32Seed: SEED, sealedSeed: "sealed-seed", keyId: "k1" }
      ),
    });
    await startWorker(prefix, handlers);
    const client = await startClient(prefix);
    const request = { op: "provision", accountId: "123456789012", deviceId: "d-1" } as const;

    await client.call(request, { requestId: "provision-1" });
    await client.call(request, { requestId: "provision-1" });

    // A retry provisions again (harmless: the gateway keeps the first answer) because caching
    // the reply would put the plaintext seed in Redis.
    expect(provisions).toBe(2);
    const contents: string[] = [];
    for await (const keys of admin.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
      for (const key of keys) contents.push(key, await dumpKey(admin, key));
    }
    expect(contents.join("\n")).not.toContain(SEED);
    expect(await admin.exists(transportKeys(prefix).done("provision-1"))).toBe(0);
  });

  it("takes over a request from a worker killed while holding it", async () => {
    const { prefix } = await newPrefix();
    const child = spawn(
      process.execPath,
      ["--require", "tsx/cjs", path.join(__dirname, "fixtures/slow-worker.ts"), prefix],
      { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, REDIS_URL } },
    );
    cleanups.push(async () => child.kill("SIGKILL"));
    const lines = createInterface({ input: child.stdout! });
    const nextLine = (start: string) =>
      new Promise<string>((resolve) =>
        lines.on("line", (line) => line.startsWith(start) && resolve(line)),
      );
    const ready = nextLine("READY");
    await ready;
    const client = await startClient(prefix, { deadlineMs: 10_000 });

    const holding = nextLine("HOLDING takeover-1");
    const answer = client.call(verifyRequest(5), { requestId: "takeover-1" });
    await holding;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    const { handlers, verified } = fakeHandlers();
    await startWorker(prefix, handlers, { claimIdleMs: 300 });

    await expect(answer).resolves.toEqual({ outcome: "OK", step: 1005, drift: 5 });
    expect(verified).toEqual(["takeover-1"]);
  });

  it("answers BAD_REQUEST to a request that breaks the contract", async () => {
    const { prefix, admin } = await newPrefix();
    await startWorker(prefix, fakeHandlers().handlers);
    const client = await startClient(prefix);
    const keys = transportKeys(prefix);

    const invalid = { ...verifyRequest(), code1: "12" };
    const refused = await settleTime(client.call(invalid));
    expect(refused.error).toBeInstanceOf(WorkerRequestError);
    expect((refused.error as WorkerRequestError).code).toBe("BAD_REQUEST");

    // A request that slips past the client (another version, a bug) is refused by the worker.
    const deadline = (await redisTimeMs(admin)) + 5000;
    for (const [requestId, body] of [
      ["raw-1", JSON.stringify(invalid)],
      ["raw-2", "not json"],
    ]) {
      const entry = {
        requestId: requestId!,
        replyList: keys.replyList("raw"),
        deadline,
        body: body!,
      };
      await admin.xAdd(keys.requests, "*", encodeRequestEntry(entry));
    }
    await eventually(async () => (await admin.lLen(keys.replyList("raw"))) === 2);
    const replies = await admin.lRange(keys.replyList("raw"), 0, -1);
    const envelopes = replies.map((reply) => JSON.parse(reply) as ReplyEnvelope);
    expect(envelopes.map((envelope) => envelope.id).sort()).toEqual(["raw-1", "raw-2"]);
    expect(envelopes.every((envelope) => !envelope.ok && envelope.error === "BAD_REQUEST")).toBe(
      true,
    );
  });

  it("passes a handler's refusal through and masks its other failures", async () => {
    const { prefix } = await newPrefix();
    const { handlers } = fakeHandlers({
      reseal: async () => {
        throw new WorkerHandlerError("UNSEAL_FAILED");
      },
      verify: async () => {
        throw new Error("connection reset");
      },
    });
    await startWorker(prefix, handlers);
    const client = await startClient(prefix);

    const unseal = await settleTime(client.call({ op: "reseal", device: verifyRequest().device }));
    const broken = await settleTime(client.call(verifyRequest()));

    expect(unseal.error).toBeInstanceOf(WorkerRequestError);
    expect((unseal.error as WorkerRequestError).code).toBe("UNSEAL_FAILED");
    expect(broken.error).toBeInstanceOf(WorkerUnavailableError);
    expect((broken.error as WorkerUnavailableError).reason).toBe("WORKER");
  });

  it("answers requests that settle together with one MULTI, not one each", async () => {
    const { prefix } = await newPrefix();
    const redis = await connect();
    let multis = 0;
    // The worker's own connection, counting the MULTIs it is asked for.
    const counting = new Proxy(redis, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== "function") return value;
        if (property === "multi")
          return (...args: unknown[]) => (multis++, value.apply(target, args));
        return value.bind(target);
      },
    });
    await startWorker(prefix, fakeHandlers().handlers, { redis: counting });
    const client = await startClient(prefix);

    const replies = await Promise.all(Array.from({ length: 40 }, () => client.ping()));

    expect(replies).toHaveLength(40);
    // One per request was the old cost; a couple of batches is what reading in batches gives.
    expect(multis).toBeGreaterThan(0);
    expect(multis).toBeLessThanOrEqual(10);
  });

  it("answers 200 concurrent calls across 2 workers, each exactly once", async () => {
    const { prefix } = await newPrefix();
    const ranBy = new Map<string, string[]>();
    const handlersFor = (name: string) =>
      fakeHandlers({
        verify: async (request, requestId) => {
          ranBy.set(requestId, [...(ranBy.get(requestId) ?? []), name]);
          await new Promise((resolve) => setTimeout(resolve, 2));
          return { outcome: "OK", step: request.device.drift, drift: 0 };
        },
      }).handlers;
    await startWorker(prefix, handlersFor("a"), { concurrency: 16 });
    await startWorker(prefix, handlersFor("b"), { concurrency: 16 });
    const client = await startClient(prefix, { deadlineMs: 10_000 });

    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => client.call(verifyRequest(i), { requestId: `c-${i}` })),
    );

    expect(results.map((result) => (result.outcome === "OK" ? result.step : -1))).toEqual(
      Array.from({ length: 200 }, (_, i) => i),
    );
    expect(ranBy.size).toBe(200);
    expect([...ranBy.values()].every((runs) => runs.length === 1)).toBe(true);
    const perWorker = [...ranBy.values()].flat();
    expect(perWorker.filter((name) => name === "a").length).toBeGreaterThan(0);
    expect(perWorker.filter((name) => name === "b").length).toBeGreaterThan(0);
  });

  it("drops a request past its deadline without running it", async () => {
    const { prefix, admin } = await newPrefix();
    const keys = transportKeys(prefix);
    const client = await startClient(prefix);
    const timedOut = await settleTime(client.call(verifyRequest(), { deadlineMs: 150 }));
    expect(timedOut.error).toBeInstanceOf(WorkerUnavailableError);
    const expired = {
      requestId: "expired-raw",
      replyList: keys.replyList("raw"),
      deadline: (await redisTimeMs(admin)) - 1,
      body: JSON.stringify(verifyRequest()),
    };
    await admin.xAdd(keys.requests, "*", encodeRequestEntry(expired));

    const { handlers, verified } = fakeHandlers();
    await startWorker(prefix, handlers);
    await client.ping();
    await eventually(async () => (await admin.xLen(keys.requests)) === 0);

    expect(verified).toEqual([]);
    expect(await admin.lLen(keys.replyList("raw"))).toBe(0);
  });

  it("finishes requests in flight before it stops", async () => {
    const { prefix } = await newPrefix();
    let started!: () => void;
    const handlerStarted = new Promise<void>((resolve) => (started = resolve));
    const { handlers } = fakeHandlers({
      verify: async () => {
        started();
        await new Promise((resolve) => setTimeout(resolve, 300));
        return { outcome: "INVALID" };
      },
    });
    const worker = await startWorker(prefix, handlers);
    const client = await startClient(prefix);

    const answer = client.call(verifyRequest());
    await handlerStarted;
    await worker.stop();

    await expect(answer).resolves.toEqual({ outcome: "INVALID" });
  });

  it("counts live workers by heartbeat, and none once they stop", async () => {
    const { prefix } = await newPrefix();
    const first = await startWorker(prefix, fakeHandlers().handlers);
    const second = await startWorker(prefix, fakeHandlers().handlers);
    const client = await startClient(prefix);

    expect(await client.liveWorkers()).toBe(2);
    await first.stop();
    expect(await client.liveWorkers()).toBe(1);
    await second.stop();
    expect(await client.liveWorkers()).toBe(0);
  });

  it("removes the consumers of workers that died, and not its own", async () => {
    const { prefix, admin } = await newPrefix();
    const worker = await startWorker(prefix, fakeHandlers().handlers, {
      transport: { heartbeatMs: 100, consumerRetentionMs: 500 },
    });
    const { requests } = transportKeys(prefix);
    const consumers = async () =>
      (await admin.xInfoConsumers(requests, CONSUMER_GROUP)).map((c) => String(c.name)).sort();
    // The worker joins the group's consumers with its first request.
    await (await startClient(prefix)).ping();
    // A consumer as a worker that crashed leaves it: known to the group, reading no more.
    await admin.xGroupCreateConsumer(requests, CONSUMER_GROUP, "crashed-worker");
    expect(await consumers()).toContain("crashed-worker");
    await eventually(async () => !(await consumers()).includes("crashed-worker"));
    // Its own stays, though it has been idle longer than the retention too.
    expect(await consumers()).toEqual([worker.workerId]);
  });

  it("never logs request bodies", async () => {
    const { prefix } = await newPrefix();
    const lines: string[] = [];
    const logger = pino({ level: "trace" }, logSink(lines));
    const { handlers } = fakeHandlers({
      verify: async (request) => {
        if (request.device.drift === 1) throw new Error("script failed");
        return new Promise(() => undefined);
      },
    });
    await startWorker(prefix, handlers, { logger, drainTimeoutMs: 200 });
    const client = await startClient(prefix, { logger });

    await settleTime(client.call(verifyRequest(1, "987654")));
    await settleTime(client.call(verifyRequest(0, "987654"), { deadlineMs: 200 }));

    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join("\n")).not.toContain("987654");
  });
});

async function dumpKey(redis: Redis, key: string): Promise<string> {
  const type = await redis.type(key);
  if (type === "string") return String(await redis.get(key));
  if (type === "list") return (await redis.lRange(key, 0, -1)).join("\n");
  if (type === "stream") return JSON.stringify(await redis.xRange(key, "-", "+"));
  if (type === "zset") return (await redis.zRange(key, 0, -1)).join("\n");
  if (type === "hash") return JSON.stringify(await redis.hGetAll(key));
  return type;
}

// Fail fast with a clear message when the machine lacks the binary the outage test needs.
if (spawnSync("redis-server", ["--version"]).status !== 0) {
  throw new Error("redis-server is required for the transport tests");
}
