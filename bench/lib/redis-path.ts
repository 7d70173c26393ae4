/**
 * Workload (c): verifications through Redis alone — the gateway's worker client talking to the
 * worker processes over the Streams transport, with no HTTP and no PostgreSQL. Each synthetic
 * device is used at most once per TOTP step, so every call is a genuine acceptance. Also the
 * same verifications without the transport, for comparison.
 */
import { randomUUID } from "node:crypto";
import { createWorkerClient } from "../../worker/client";
import { DeviceStateSchema, type DeviceState } from "../../worker/protocol";
import { provisionSeed } from "../../worker/provision";
import type { Keyring } from "../../worker/seal/keyring";
import { base32Decode } from "../../worker/totp/base32";
import { stepAt, totpAt } from "../../worker/totp/hotp";
import type { AnyRedis } from "../../worker/redis-connection";
import { createHandlers } from "../../worker/handlers";
import type { VerifyRequest } from "../../worker/verify/verifier";
import { runLanes, type LaneResult } from "./lanes";

export interface PathResult extends LaneResult {
  outcomes: Record<string, number>;
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
    const { base32Seed, sealedSeed, keyId } = provisionSeed(keyring, { accountId, deviceId });
    // The schema's defaults are AWS's: SHA1, 6 digits, 30 s.
    const device = DeviceStateSchema.parse({
      accountId,
      deviceId,
      sealedSeed,
      keyId,
      drift: 0,
      lastStep: null,
    });
    return { device, key: base32Decode(base32Seed), lastStep: -1 };
  });
}

/** Hands out devices so that each is verified at most once per TOTP step: every call is an OK. */
function devicePicker(pool: PoolDevice[]): () => PoolDevice {
  let next = 0;
  return () => {
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
}

type Verify = (request: VerifyRequest, requestId: string) => Promise<{ outcome: string }>;

/** Runs genuine login verifications through `verify` in `inFlight` lanes, counting outcomes. */
async function verifyInLanes(
  verify: Verify,
  options: { pool: PoolDevice[]; inFlight: number; durationSeconds: number },
): Promise<PathResult> {
  const pick = devicePicker(options.pool);
  const outcomes: Record<string, number> = {};
  // One source per lane, as many users would be. (On Redis Cluster, where the per-source budget
  // is claimed before the check, one shared source could have only `sourceBudget` attempts in
  // flight, and the figure would measure throttling.)
  const result = await runLanes(options.inFlight, options.durationSeconds * 1000, async (lane) => {
    const { device, key } = pick();
    let outcome: string;
    try {
      const request = { op: "verify", mode: "login", device, source: `bench-${lane}` } as const;
      const reply = await verify({ ...request, code1: totpAt(key, Date.now()) }, randomUUID());
      outcome = reply.outcome;
    } catch (error) {
      outcome = (error as Error).name;
    }
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  });
  return { ...result, outcomes };
}

/** Workload (c): the gateway's worker client, the Streams transport and the worker processes. */
export async function measureRedisPath(options: {
  redis: AnyRedis;
  prefix: string;
  pool: PoolDevice[];
  inFlight: number;
  durationSeconds: number;
}): Promise<PathResult> {
  const client = createWorkerClient({
    redis: options.redis,
    prefix: options.prefix,
    deadlineMs: 5000,
  });
  try {
    return await verifyInLanes(
      (request, requestId) => client.call(request, { requestId }),
      options,
    );
  } finally {
    await client.close();
  }
}

/**
 * (c) without the transport: the worker's own verify handler, in this process, on the same
 * Redis. What is left is the verification itself (unseal, HMACs, one verify script), so this
 * is the most any transport could deliver on this machine, and its CPU split shows how much
 * of a verification Redis alone spends.
 */
export async function measureVerifierInProcess(options: {
  redis: AnyRedis;
  keyring: Keyring;
  prefix: string;
  pool: PoolDevice[];
  inFlight: number;
  durationSeconds: number;
}): Promise<PathResult> {
  const handlers = createHandlers(options);
  return verifyInLanes(async (request, requestId) => handlers.verify(request, requestId), options);
}
