import { withTimeout } from "./common/deadline";
import type { Services } from "./services";

export interface ReadinessReport {
  ready: boolean;
  checks: { postgres: boolean; redis: boolean; worker: boolean };
}

/**
 * Ready means PostgreSQL answers, Redis answers, and a worker has heartbeated recently. The
 * heartbeat read doubles as the Redis check: it fails when Redis is down.
 */
export async function checkReadiness(
  services: Services,
  timeoutMs = 1000,
): Promise<ReadinessReport> {
  const [postgres, liveWorkers] = await Promise.all([
    withTimeout(services.db.$queryRaw`SELECT 1`, timeoutMs).then(
      () => true,
      () => false,
    ),
    withTimeout(
      services.worker.liveWorkers(services.config.WORKER_LIVENESS_SECONDS * 1000),
      timeoutMs,
    ).catch(() => null),
  ]);
  const checks = { postgres, redis: liveWorkers !== null, worker: Number(liveWorkers ?? 0) > 0 };
  return { ready: checks.postgres && checks.redis && checks.worker, checks };
}
