/**
 * Starts the real product for a test file: the gateway listening on a loopback port and auth
 * workers on their own Redis connections, over the real PostgreSQL and Redis. Each stack has
 * its own Redis key prefix, and tests create their own accounts, so files never share state.
 */
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { loadGatewayConfig, type GatewayConfig } from "../../src/config";
import { createDatabase, type Db } from "../../src/db";
import { createLogger } from "../../src/logger";
import { instrumentWorkerClient } from "../../src/observability/instrumented-worker";
import { createGatewayMetrics } from "../../src/observability/metrics";
import { createGateway, type Gateway } from "../../src/server";
import { createServices } from "../../src/services";
import { createWorkerClient } from "../../worker/client";
import { connectRedis, type AnyRedis } from "../../worker/redis-connection";
import { startTestWorker, testKeyringSpec, type TestWorker } from "./workers";
import type { VerifyPolicyInput } from "../../worker/verify/policy";
import { gqlRequest, type GraphQLResponse } from "./graphql";

export interface Stack {
  url: string;
  origin: string;
  prefix: string;
  db: Db;
  redis: AnyRedis;
  config: GatewayConfig;
  workers: TestWorker[];
  /** Every log line both processes wrote, for secrecy checks. */
  logs: string[];
  /** gqlRequest bound to this stack's URL. */
  gql<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    token?: string,
    headers?: Record<string, string>,
  ): Promise<GraphQLResponse<T>>;
  /** Starts one more worker, optionally with another keyring (for key rotation). */
  addWorker(keyringSpec?: string): Promise<TestWorker>;
  stop(): Promise<void>;
}

export interface StackOptions {
  workers?: number;
  env?: Record<string, string>;
  /** Verification policy for the workers, e.g. small lock times for limit tests. */
  policy?: VerifyPolicyInput;
  /** The workers' keyring (`kid:base64,…`); one shared test key by default. */
  keyringSpec?: string;
}

export function logSink(lines: string[]): Writable {
  return new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const prefix = `t-${randomUUID().slice(0, 8)}`;
  const config = loadGatewayConfig({
    ...process.env,
    NODE_ENV: "test",
    REDIS_PREFIX: prefix,
    LOG_LEVEL: "info",
    WORKER_DEADLINE_MS: "2000",
    // Tests read /ready and /metrics right after changing what they report.
    PROBE_CACHE_MS: "0",
    // Every test signs its accounts up from 127.0.0.1; accounts.test.ts checks the limit.
    ACCOUNT_SIGNUPS_PER_SOURCE: "1000000",
    ...options.env,
  });
  const logs: string[] = [];
  const { db, sql } = createDatabase(config.DATABASE_URL, 5);
  const redis = await connectRedis({ url: config.REDIS_URL });
  const workers: TestWorker[] = [];
  const addWorker = async (keyringSpec = options.keyringSpec ?? testKeyringSpec()) => {
    const worker = await startTestWorker({
      prefix,
      keyringSpec,
      logs,
      // Tests sign in many times a minute with ever later codes, which is just what the login
      // recentre gap stops (verify-3.lua); verifier.test.ts and devices-drift.test.ts keep it.
      policy: { loginRecentreSeconds: 0, ...options.policy },
      redisUrl: config.REDIS_URL,
    });
    workers.push(worker);
    return worker;
  };
  for (let i = 0; i < (options.workers ?? 1); i++) await addWorker();
  // Wired as src/main.ts wires it, so /metrics counts the verifications tests drive.
  const metrics = createGatewayMetrics({
    queue: { redis, prefix, livenessMs: config.WORKER_LIVENESS_SECONDS * 1000 },
    maxOperationNames: config.METRICS_MAX_OPERATION_NAMES,
  });
  const worker = instrumentWorkerClient(
    createWorkerClient({ redis, prefix, deadlineMs: config.WORKER_DEADLINE_MS }),
    metrics,
  );
  const logger = createLogger("gateway", config.LOG_LEVEL, logSink(logs));
  const services = createServices({ config, db, sql, worker, redis, logger, metrics });
  const gateway: Gateway = await createGateway({ services, metrics });
  const url = await gateway.listen(0, "127.0.0.1");
  return {
    url,
    origin: new URL(url).origin,
    prefix,
    db,
    redis,
    config,
    workers,
    logs,
    gql: (query, variables, token, headers) => gqlRequest(url, query, variables, token, headers),
    addWorker,
    async stop() {
      await gateway.stop();
      await worker.close();
      await Promise.all(workers.map((w) => w.stop()));
      await deleteKeys(redis, prefix);
      await redis.close();
      await db.$disconnect();
    },
  };
}

async function deleteKeys(redis: AnyRedis, prefix: string) {
  const single = redis as Extract<AnyRedis, { scanIterator: unknown }>;
  if (!("scanIterator" in single)) return;
  for await (const keys of single.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
    if (keys.length) await single.del(keys);
  }
}
