/**
 * A worker's /readiness says whether it can take requests, and without Redis it can take none:
 * a real worker process on a throwaway redis-server, which the test stops and starts again.
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { networkInterfaces } from "node:os";
import { afterAll, describe, expect, it } from "vitest";
import { cleanUpAll, spawnWorker, startRedisServer } from "../support/throwaway";
import { testKeyringSpec } from "../support/workers";

afterAll(async () => {
  await cleanUpAll();
});

async function readiness(port: number) {
  const response = await fetch(`http://127.0.0.1:${port}/readiness`);
  return `${response.status} ${(await response.text()).trim()}`;
}

/** Polls until `readiness` answers `expected`, and returns what it answered last. */
async function settlesOn(port: number, expected: string, timeoutMs = 15_000): Promise<string> {
  const giveUp = Date.now() + timeoutMs;
  let last = await readiness(port);
  while (last !== expected && Date.now() < giveUp) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await readiness(port);
  }
  return last;
}

/** A real worker process on a throwaway redis-server that the test may stop or freeze. */
async function workerOnItsOwnRedis() {
  const redis = await startRedisServer();
  const worker = await spawnWorker({
    redisUrl: redis.url,
    prefix: `probe-${randomUUID().slice(0, 8)}`,
    keyringSpec: testKeyringSpec(),
    logs: [],
  });
  return { redis, worker };
}

describe("a worker's readiness", () => {
  it("is 503 while its Redis is down, and ready again once Redis is back", async () => {
    const { redis, worker } = await workerOnItsOwnRedis();
    expect(await readiness(worker.metricsPort)).toBe("200 ready");
    await redis.kill();
    expect(await settlesOn(worker.metricsPort, "503 redis unavailable")).toBe(
      "503 redis unavailable",
    );
    // The process itself is fine: liveness must not have it restarted for Redis's sake.
    expect((await fetch(`http://127.0.0.1:${worker.metricsPort}/health`)).status).toBe(200);
    await redis.start();
    expect(await settlesOn(worker.metricsPort, "200 ready")).toBe("200 ready");
  });

  it("is 503 while its Redis is connected but stalled, and ready again once it answers", async () => {
    const { redis, worker } = await workerOnItsOwnRedis();
    expect(await readiness(worker.metricsPort)).toBe("200 ready");
    // Every client is held for 10 s; the connection stays up, so only the silence shows.
    spawnSync("redis-cli", ["-p", String(redis.port), "client", "pause", "10000", "all"]);
    expect(await settlesOn(worker.metricsPort, "503 redis unresponsive")).toBe(
      "503 redis unresponsive",
    );
    expect(await settlesOn(worker.metricsPort, "200 ready", 20_000)).toBe("200 ready");
  }, 40_000);

  it("listens on loopback only unless told otherwise: its probes are unauthenticated", async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((address) => address && address.family === "IPv4" && !address.internal)?.address;
    const { worker } = await workerOnItsOwnRedis();
    expect(await readiness(worker.metricsPort)).toBe("200 ready");
    expect(external, "this machine has a non-loopback IPv4 address to try").toBeDefined();
    const fromOutside = await fetch(`http://${external}:${worker.metricsPort}/metrics`).then(
      (response) => response.status,
      () => "refused",
    );
    expect(fromOutside).toBe("refused");
  });
});
