/**
 * Workload (c): verifications through Redis alone — the gateway's worker client talking to the
 * worker processes over the Streams transport, with no HTTP and no PostgreSQL. Each synthetic
 * device is used at most once per TOTP step, so every call is a genuine acceptance.
 */
import { randomUUID } from "node:crypto";
import { createWorkerClient } from "../../worker/client";
import type { DeviceState } from "../../worker/protocol";
import { provisionSeed } from "../../worker/provision";
import type { Keyring } from "../../worker/seal/keyring";
import { base32Decode } from "../../worker/totp/base32";
import { stepAt, totpAt } from "../../worker/totp/hotp";
import type { AnyRedis } from "../../worker/redis-connection";

export interface PathResult {
  calls: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  outcomes: Record<string, number>;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export interface PoolDevice {
  device: DeviceState;
  key: Buffer;
  lastStep: number;
}

/** Synthetic enabled devices, sealed under `keyring`, that the workers can verify. */
export function makeDevicePool(keyring: Keyring, size: number): PoolDevice[] {
  const accountId = "123456789012";
  return Array.from({ length: size }, () => {
    const deviceId = randomUUID();
    const sealed = provisionSeed(keyring, { accountId, deviceId });
    const device: DeviceState = {
      deviceId,
      accountId,
      sealedSeed: sealed.sealedSeed,
      keyId: sealed.keyId,
      algorithm: "SHA1",
      digits: 6,
      period: 30,
      drift: 0,
      lastStep: null,
    };
    return { device, key: base32Decode(sealed.base32Seed), lastStep: -1 };
  });
}

export async function measureRedisPath(options: {
  redis: AnyRedis;
  prefix: string;
  pool: PoolDevice[];
  inFlight: number;
  durationSeconds: number;
}): Promise<PathResult> {
  const { pool } = options;
  const client = createWorkerClient({
    redis: options.redis,
    prefix: options.prefix,
    deadlineMs: 5000,
  });
  const latencies: number[] = [];
  const outcomes: Record<string, number> = {};
  let next = 0;
  const pick = () => {
    const step = stepAt(Date.now(), 30);
    for (let tries = 0; tries < pool.length; tries++) {
      const candidate = pool[next++ % pool.length]!;
      if (candidate.lastStep < step) {
        candidate.lastStep = step;
        return candidate;
      }
    }
    throw new Error("every synthetic device was used this step; raise BENCH_REDIS_DEVICES");
  };
  const stopAt = Date.now() + options.durationSeconds * 1000;
  const started = process.hrtime.bigint();
  await Promise.all(
    // One source per lane, as many users would be: a single source may only have
    // `sourceBudget` attempts in flight, so one shared source would measure throttling.
    Array.from({ length: options.inFlight }, async (_, lane) => {
      while (Date.now() < stopAt) {
        const { device, key } = pick();
        const t0 = process.hrtime.bigint();
        let outcome: string;
        try {
          const result = await client.call(
            {
              op: "verify",
              mode: "login",
              device,
              code1: totpAt(key, Date.now()),
              source: `bench-${lane}`,
            },
            { requestId: randomUUID() },
          );
          outcome = result.outcome;
        } catch (error) {
          outcome = (error as Error).name;
        }
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await client.close();
  latencies.sort((a, b) => a - b);
  return {
    calls: latencies.length,
    rps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? NaN,
    outcomes,
  };
}
