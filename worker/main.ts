/**
 * The auth worker process: wires configuration to Redis, the keyring and the handlers, starts the
 * worker and serves /metrics, /health and /readiness. Shutdown on SIGTERM or SIGINT is ordered:
 * stop taking requests, drain the ones in flight, close the probe listener, then Redis, logging
 * each step. A second signal, or a drain that overruns, exits at once.
 */
import { collectDefaultMetrics, Registry } from "prom-client";
import {
  ConfigError,
  DEVELOPMENT_KEY_WARNING,
  loadWorkerConfig,
  type WorkerConfig,
} from "./config";
import { createHandlers } from "./handlers";
import { createLogger } from "./logger";
import { instrumentHandlers, listenForProbes } from "./metrics";
import { connectRedis, redisReachable } from "./redis-connection";
import { parseKeyring } from "./seal/keyring";
import { createWorker } from "./worker";

const DRAIN_TIMEOUT_MS = 5000;
/** Heartbeats go every second; this long without one Redis accepted means it is stalled. */
const HEARTBEAT_SILENCE_MS = 5000;
/** Past the drain, closing the listener and Redis should take moments; give them this. */
const SHUTDOWN_SLACK_MS = 5000;

function loadConfigOrExit(): WorkerConfig {
  try {
    return loadWorkerConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(2);
  }
}

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger("worker", config.LOG_LEVEL);
  if (config.usesDevelopmentKey) logger.warn(DEVELOPMENT_KEY_WARNING);
  const keyring = parseKeyring(config.keyringSpec);
  const prefix = config.REDIS_PREFIX;

  const redis = await connectRedis(
    { url: config.REDIS_URL, clusterNodes: config.REDIS_CLUSTER_NODES },
    logger,
  );

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const worker = createWorker({
    redis,
    prefix,
    handlers: instrumentHandlers(
      createHandlers({ redis, keyring, prefix, policy: config.VERIFY_POLICY }),
      registry,
    ),
    logger,
    concurrency: config.WORKER_CONCURRENCY,
    claimIdleMs: config.WORKER_CLAIM_IDLE_MS,
    drainTimeoutMs: DRAIN_TIMEOUT_MS,
    metrics: registry,
  });
  await worker.start();
  let ready = true;
  const probes =
    config.WORKER_METRICS_PORT > 0
      ? await listenForProbes(
          config.WORKER_METRICS_PORT,
          registry,
          () => {
            // Without Redis it takes no request at all, whatever its own state; a Redis that
            // is connected but stalled shows as heartbeats it no longer accepts.
            if (!ready) return "stopping";
            if (!redisReachable(redis)) return "redis unavailable";
            const silentMs = Date.now() - worker.lastHeartbeatAt();
            return silentMs > HEARTBEAT_SILENCE_MS ? "redis unresponsive" : "ready";
          },
          config.WORKER_METRICS_HOST,
        )
      : undefined;
  logger.info(
    {
      workerId: worker.workerId,
      keyIds: keyring.keyIds,
      metricsPort: config.WORKER_METRICS_PORT,
      metricsHost: config.WORKER_METRICS_HOST,
    },
    "auth worker running",
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, "shutdown: second signal; exiting without finishing");
      process.exit(1);
    }
    stopping = true;
    ready = false;
    const force = setTimeout(() => {
      logger.error("shutdown: took too long; exiting");
      process.exit(1);
    }, DRAIN_TIMEOUT_MS + SHUTDOWN_SLACK_MS);
    force.unref();
    logger.info({ signal }, "shutdown: stop taking requests and drain the ones in flight");
    await worker.stop();
    if (probes) {
      logger.info("shutdown: closing the probe listener");
      await new Promise((resolve) => probes.close(resolve));
    }
    logger.info("shutdown: closing Redis");
    await redis.close();
    logger.info("shutdown: done");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((error: unknown) => {
  console.error("auth worker failed to start:", error instanceof Error ? error.message : error);
  process.exit(1);
});
