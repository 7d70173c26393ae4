/** In-process auth workers for the test stack, each on its own Redis connection. */
import { createLogger } from "../../src/logger";
import { createHandlers } from "../../worker/handlers";
import type { RedisConnection } from "../../worker/lua/scripts";
import { connectRedis } from "../../worker/redis-connection";
import { generateKeyringSpec, parseKeyring } from "../../worker/seal/keyring";
import { createWorker } from "../../worker/worker";
import type { VerifyPolicyInput } from "../../worker/verify/policy";
import { logSink } from "./stack";

export interface TestWorker {
  workerId: string;
  stop(): Promise<void>;
}

let sharedSpec: string | undefined;
/** One keyring per test process, so every worker of a stack can open every seal. */
export function testKeyringSpec(): string {
  sharedSpec ??= generateKeyringSpec("test-1");
  return sharedSpec;
}

export async function startTestWorker(options: {
  prefix: string;
  keyringSpec: string;
  logs: string[];
  policy?: VerifyPolicyInput;
  redisUrl?: string;
}): Promise<TestWorker> {
  const redis = await connectRedis({ url: options.redisUrl ?? "redis://127.0.0.1:6379" });
  const logger = createLogger("worker", "info", logSink(options.logs));
  const worker = createWorker({
    redis: redis as RedisConnection,
    prefix: options.prefix,
    handlers: createHandlers({
      redis: redis as RedisConnection,
      keyring: parseKeyring(options.keyringSpec),
      prefix: options.prefix,
      policy: options.policy,
    }),
    logger,
  });
  await worker.start();
  return {
    workerId: worker.workerId,
    async stop() {
      await worker.stop();
      await redis.close();
    },
  };
}
