/**
 * The gateway's attempt budgets (src/common/redis-budgets.ts, worker/lua/attempt-budget-1.lua)
 * on the real Redis: claims in flight against counted attempts, and windows that end.
 */
import { randomUUID } from "node:crypto";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisBudgets, type Budget } from "../../src/common/redis-budgets";
import { ApiError } from "../../src/errors";
import { connectRedis, type SingleRedis } from "../../worker/redis-connection";
import { cleanUpAll, startRedisServer } from "../support/throwaway";

const prefix = `t-budgets-${randomUUID().slice(0, 8)}`;
let redis: SingleRedis;
let budgets: RedisBudgets;
beforeAll(async () => {
  redis = (await connectRedis({
    url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
  })) as SingleRedis;
  budgets = new RedisBudgets(redis, prefix, pino({ level: "silent" }));
});
afterAll(async () => {
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
    if (keys.length) await redis.del(keys);
  }
  await redis.close();
  await cleanUpAll();
});

const budget = (limit: number, windowSeconds = 600): Budget =>
  budgets.budget("test", [randomUUID()], limit, windowSeconds);

/** The wait a refused claim gives, or null when the claim went through. */
async function refusal(b: Budget): Promise<number | null> {
  try {
    await budgets.claim([b]);
    return null;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    expect(error.code).toBe("RATE_LIMITED");
    return Number(error.extensions.retryAfterSeconds);
  }
}

describe("attempt budgets", () => {
  it("refuse for 1 s while claims in flight fill the budget, and for the window's rest once counted attempts do", async () => {
    const b = budget(2, 600);
    const claims = [...(await budgets.claim([b])), ...(await budgets.claim([b]))];
    expect(await refusal(b)).toBe(1);
    await budgets.settle(claims, "count");
    const wait = await refusal(b);
    expect(wait).toBeGreaterThan(590);
    expect(wait).toBeLessThanOrEqual(600);
  });

  it("hold nothing for claims abandoned past their lifetime, as after a stall or a crashed caller", async () => {
    const shortLived = new RedisBudgets(redis, prefix, pino({ level: "silent" }), {
      claimLifetimeMs: 1000,
    });
    const b = shortLived.budget("test", [randomUUID()], 2, 600);
    // Two claims nobody will settle: the budget is full, "retry in 1 s".
    await shortLived.claim([b]);
    await shortLived.claim([b]);
    await expect(shortLived.claim([b])).rejects.toMatchObject({ code: "RATE_LIMITED" });
    await new Promise((r) => setTimeout(r, 1500));
    // Past the lifetime they hold nothing: without that, the budget stayed full all window.
    const claims = await shortLived.claim([b]);
    await shortLived.settle(claims, "count");
    await shortLived.claim([b]);
  });

  it("count nothing for a released claim, and forget counted attempts when forgiven", async () => {
    const b = budget(2);
    await budgets.settle(await budgets.claim([b]), "count");
    await budgets.settle(await budgets.claim([b]), "release");
    const forgiving = await budgets.claim([b]);
    // One counted, one in flight: full until the claim settles.
    expect(await refusal(b)).toBe(1);
    await budgets.settle(forgiving, "forgive");
    await budgets.settle([...(await budgets.claim([b])), ...(await budgets.claim([b]))], "count");
    expect(await refusal(b)).toBeGreaterThan(1);
  });

  it("give nothing back in a new window for a claim of the ended one", async () => {
    const b = budget(2, 1);
    const old = await budgets.claim([b]);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const fresh = [...(await budgets.claim([b])), ...(await budgets.claim([b]))];
    // Releasing the old window's claim must not make room beside the two in flight now.
    await budgets.settle(old, "release");
    expect(await refusal(b)).toBe(1);
    await budgets.settle(fresh, "release");
  });

  it("release what they claimed when a later budget refuses, so a refusal costs nothing", async () => {
    const open = budget(1);
    const full = budget(1);
    await budgets.settle(await budgets.claim([full]), "count");
    await expect(budgets.claim([open, full])).rejects.toThrow("Too many attempts");
    // Had the refused request kept its claim on `open`, that budget would now be full.
    expect(await refusal(open)).toBeNull();
  });

  it("fail closed, with SERVICE_UNAVAILABLE, when Redis stalls past the deadline", async () => {
    const server = await startRedisServer();
    const stalled = (await connectRedis({ url: server.url })) as SingleRedis;
    try {
      const own = new RedisBudgets(stalled, prefix, pino({ level: "silent" }), { deadlineMs: 200 });
      await stalled.sendCommand(["CLIENT", "PAUSE", "3000", "ALL"]);
      // Without the deadline the claim would wait out the pause and then go through.
      await expect(own.claim([own.budget("test", ["x"], 5, 60)])).rejects.toMatchObject({
        code: "SERVICE_UNAVAILABLE",
      });
    } finally {
      await stalled.sendCommand(["CLIENT", "UNPAUSE"]).catch(() => undefined);
      await stalled.close().catch(() => undefined);
    }
  });
});
