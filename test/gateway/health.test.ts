import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "../support/stack";

let stack: Stack;
beforeAll(async () => {
  // Heartbeats count for one second, so a stopped worker shows quickly.
  stack = await startStack({ env: { WORKER_LIVENESS_SECONDS: "1" } });
});
afterAll(async () => {
  await stack?.stop();
});

async function readiness() {
  const response = await fetch(`${stack.origin}/ready`);
  return { status: response.status, body: (await response.json()) as { checks: object } };
}

describe("health and readiness", () => {
  it("reports liveness on /health", async () => {
    const response = await fetch(`${stack.origin}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  it("is ready while PostgreSQL, Redis and a worker answer, and not once the workers stop", async () => {
    expect(await readiness()).toEqual({
      status: 200,
      body: { ready: true, checks: { postgres: true, redis: true, worker: true } },
    });
    await Promise.all(stack.workers.map((w) => w.stop()));
    stack.workers.length = 0;
    await new Promise((r) => setTimeout(r, 1500));
    expect(await readiness()).toEqual({
      status: 503,
      body: { ready: false, checks: { postgres: true, redis: true, worker: false } },
    });
    await stack.addWorker();
    expect((await readiness()).status).toBe(200);
  });
});

describe("readiness and metrics under a flood", () => {
  let cached: Stack;
  beforeAll(async () => {
    // A window longer than the test, so what it shows cannot depend on the machine's speed.
    cached = await startStack({
      env: { WORKER_LIVENESS_SECONDS: "1", PROBE_CACHE_MS: "60000" },
    });
  });
  afterAll(async () => {
    await cached?.stop();
  });

  it("shares one /ready answer and one /metrics render per window", async () => {
    const ready = async () => (await fetch(`${cached.origin}/ready`)).status;
    const scrape = async () => (await fetch(`${cached.origin}/metrics`)).text();
    expect(await Promise.all(Array.from({ length: 20 }, ready))).toEqual(Array(20).fill(200));
    const firstRender = await scrape();

    // Both would change if probed again: no worker heartbeats, and a GraphQL request counted.
    await Promise.all(cached.workers.map((w) => w.stop()));
    cached.workers.length = 0;
    await new Promise((r) => setTimeout(r, 1500));
    await cached.gql("{ __typename }");

    expect(await ready()).toBe(200);
    expect(await scrape()).toBe(firstRender);
  });
});
