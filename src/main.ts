/**
 * The gateway process: wires configuration to the server and listens. Shutdown on SIGTERM or
 * SIGINT is ordered: stop taking requests and drain, then close the worker client, Redis and
 * PostgreSQL, logging each step.
 */
import "reflect-metadata";
import { ConfigError, loadGatewayConfig } from "./config";
import { createDatabase } from "./db";
import { createLogger } from "./logger";
import { instrumentWorkerClient } from "./observability/instrumented-worker";
import { createGatewayMetrics } from "./observability/metrics";
import { startOutboxSender } from "./notifications/outbox-sender";
import { startExpiredRowsCleaner } from "./maintenance/expired-rows";
import { createGateway } from "./server";
import { createServices } from "./services";
import { createWorkerClient } from "../worker/client";
import { connectRedis } from "../worker/redis-connection";

async function main() {
  let config;
  try {
    config = loadGatewayConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger("gateway", config.LOG_LEVEL);
  if (
    config.NODE_ENV === "production" &&
    config.OUTBOX_SENDER_ENABLED &&
    config.NOTIFICATIONS_LOG_ONLY
  ) {
    logger.error(
      { smtp: config.SMTP_URL !== undefined, sms: config.SMS_WEBHOOK_URL !== undefined },
      "NOTIFICATIONS_LOG_ONLY: messages without a transport are only logged; root recovery " +
        "codes and security notices sent that way reach nobody",
    );
  }
  const { db, sql } = createDatabase(config.DATABASE_URL, config.DATABASE_POOL_SIZE, (error) =>
    logger.warn({ err: error }, "a PostgreSQL connection was lost; the pool opens another"),
  );
  const redis = await connectRedis(
    { url: config.REDIS_URL, clusterNodes: config.REDIS_CLUSTER_NODES },
    logger,
  );
  const metrics = createGatewayMetrics({
    queue: {
      redis,
      prefix: config.REDIS_PREFIX,
      livenessMs: config.WORKER_LIVENESS_SECONDS * 1000,
    },
    maxOperationNames: config.METRICS_MAX_OPERATION_NAMES,
  });
  const worker = instrumentWorkerClient(
    createWorkerClient({
      redis,
      prefix: config.REDIS_PREFIX,
      deadlineMs: config.WORKER_DEADLINE_MS,
    }),
    metrics,
  );
  const services = createServices({ config, db, sql, worker, redis, logger, metrics });
  const gateway = await createGateway({ services, metrics });
  const url = await gateway.listen(config.PORT, config.HOST);
  const outbox = startOutboxSender(services);
  const cleaner = startExpiredRowsCleaner(services);
  logger.info(
    { url, metrics: config.METRICS_ENABLED ? config.METRICS_PORT || "public port" : "off" },
    "gateway listening",
  );
  console.log(`GraphQL gateway ready at ${url}`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => {
      logger.error("shutdown grace period over; exiting");
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS);
    force.unref();
    if (outbox) {
      logger.info({ signal }, "shutdown: stopping the outbox sender");
      await outbox.stop();
    }
    await cleaner?.stop();
    logger.info({ signal }, "shutdown: draining HTTP requests");
    await gateway.stop();
    logger.info("shutdown: closing worker client");
    await worker.close();
    logger.info("shutdown: closing Redis");
    await redis.close();
    logger.info("shutdown: closing PostgreSQL");
    await db.$disconnect();
    logger.info("shutdown: done");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((error) => {
  console.error("gateway failed to start:", error instanceof Error ? error.message : error);
  process.exit(1);
});
