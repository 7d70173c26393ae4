/**
 * Deletes rows whose life has ended, so the tables the sign-in path writes on every request do
 * not grow for ever: sessions, MFA challenges and root recoveries past their expiry, and outbox
 * messages sent or given up on, once EXPIRED_ROWS_RETENTION_HOURS have passed (kept that long
 * for investigations). The audit log of an account is never deleted; audit events of no account
 * (failed sign-ins naming an account that does not exist), which anyone can add, go after
 * ANONYMOUS_AUDIT_RETENTION_DAYS.
 *
 * It deletes in batches, each its own short statement, so it never holds many locks or one long
 * transaction. Any number of gateways may run it: `FOR UPDATE SKIP LOCKED` lets two cleaners (or
 * a cleaner and a sender) pass each other's rows instead of waiting on them.
 */
import type { Logger } from "pino";
import { repeating, type RepeatingJob } from "../common/repeating";
import type { GatewayConfig } from "../config";
import type { Db } from "../db";

type RetentionConfig = Pick<
  GatewayConfig,
  "EXPIRED_ROWS_RETENTION_HOURS" | "ANONYMOUS_AUDIT_RETENTION_DAYS"
>;
const endedRowsHours = (config: RetentionConfig) => config.EXPIRED_ROWS_RETENTION_HOURS;

/**
 * Each kind of row: its table, what "ended before the cutoff ($1)" means (fixed text, no input),
 * and how many hours an ended row is kept.
 */
const ENDED_ROWS = {
  Session: { table: "Session", ended: `"expiresAt" < $1`, keptHours: endedRowsHours },
  MfaChallenge: { table: "MfaChallenge", ended: `"expiresAt" < $1`, keptHours: endedRowsHours },
  RootRecovery: { table: "RootRecovery", ended: `"expiresAt" < $1`, keptHours: endedRowsHours },
  OutboxMessage: {
    table: "OutboxMessage",
    ended: `("sentAt" < $1 OR "failedAt" < $1)`,
    keptHours: endedRowsHours,
  },
  AnonymousAuditEvent: {
    table: "AuditEvent",
    ended: `"accountId" IS NULL AND "createdAt" < $1`,
    keptHours: (config: RetentionConfig) => config.ANONYMOUS_AUDIT_RETENTION_DAYS * 24,
  },
} as const;

export type CleanedRows = keyof typeof ENDED_ROWS;
export type CleanupCounts = Record<CleanedRows, number>;

export interface ExpiredRowsCleanerOptions {
  db: Db;
  logger: Logger;
  config: RetentionConfig & Pick<GatewayConfig, "EXPIRED_ROWS_CLEANUP_INTERVAL_SECONDS">;
  /** Rows deleted per statement. Default 1000. */
  batchSize?: number;
}

export interface ExpiredRowsCleaner extends RepeatingJob {
  /** Deletes every row that ended before the retention cutoff; counts per table. */
  runOnce(): Promise<CleanupCounts>;
}

export function createExpiredRowsCleaner(options: ExpiredRowsCleanerOptions): ExpiredRowsCleaner {
  const { db, config } = options;
  const logger = options.logger.child({ component: "expired-rows" });
  const batchSize = options.batchSize ?? 1000;

  async function deleteEnded(rows: CleanedRows): Promise<number> {
    const { table, ended, keptHours } = ENDED_ROWS[rows];
    const cutoff = new Date(Date.now() - keptHours(config) * 3_600_000);
    const sql =
      `DELETE FROM "${table}" WHERE "id" IN (SELECT "id" FROM "${table}" ` +
      `WHERE ${ended} LIMIT $2 FOR UPDATE SKIP LOCKED)`;
    let total = 0;
    for (;;) {
      const deleted = await db.$executeRawUnsafe(sql, cutoff, batchSize);
      total += deleted;
      if (deleted < batchSize) return total;
    }
  }

  async function runOnce(): Promise<CleanupCounts> {
    const counts = {} as CleanupCounts;
    for (const rows of Object.keys(ENDED_ROWS) as CleanedRows[]) {
      counts[rows] = await deleteEnded(rows);
    }
    return counts;
  }

  const job = repeating({
    round: async () => {
      logger.info({ deleted: await runOnce() }, "deleted ended rows");
      return false; // each round deletes everything due, so the next waits its interval
    },
    pauseMs: config.EXPIRED_ROWS_CLEANUP_INTERVAL_SECONDS * 1000,
    onError: (error) => logger.error({ err: error }, "deleting ended rows failed"),
  });

  return { runOnce, ...job };
}

/** What src/main.ts calls: a started cleaner, or null when EXPIRED_ROWS_CLEANUP_ENABLED is off. */
export function startExpiredRowsCleaner(services: {
  db: Db;
  logger: Logger;
  config: GatewayConfig;
}): ExpiredRowsCleaner | null {
  if (!services.config.EXPIRED_ROWS_CLEANUP_ENABLED) return null;
  const cleaner = createExpiredRowsCleaner(services);
  cleaner.start();
  return cleaner;
}
