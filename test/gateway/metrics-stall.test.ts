/**
 * The gateway's /metrics must answer while Redis stalls: its queue gauges read Redis at scrape
 * time, and a stalled read used to hold the whole scrape (every series lost to Prometheus'
 * scrape timeout exactly when an operator needs them).
 */
import { afterAll, describe, expect, it } from "vitest";
import { createGatewayMetrics } from "../../src/observability/metrics";
import { connectRedis, type SingleRedis } from "../../worker/redis-connection";
import { cleanUpAll, startRedisServer } from "../support/throwaway";

afterAll(async () => {
  await cleanUpAll();
});

describe("the queue gauges", () => {
  it("report NaN for a Redis that stalls past their deadline, and the scrape still answers", async () => {
    const server = await startRedisServer();
    const redis = (await connectRedis({ url: server.url })) as SingleRedis;
    try {
      const metrics = createGatewayMetrics({
        queue: { redis, prefix: "stall", readTimeoutMs: 200 },
        processMetrics: false,
      });
      await redis.sendCommand(["CLIENT", "PAUSE", "3000", "ALL"]);
      const text = await metrics.registry.metrics();
      // Had the scrape waited the pause out, it would hold real numbers (0) instead.
      for (const gauge of ["mfa_worker_queue_length", "mfa_workers_live"]) {
        expect(text).toMatch(new RegExp(`^${gauge} nan$`, "im"));
      }
    } finally {
      await redis.sendCommand(["CLIENT", "UNPAUSE"]).catch(() => undefined);
      await redis.close().catch(() => undefined);
    }
  });
});
