/**
 * Delivers outbox messages. Any number of gateways may run a sender: each claims a batch of due
 * messages with `FOR UPDATE SKIP LOCKED`, so two never claim the same one, and the claim itself
 * counts the attempt and leases the message, so a sender that dies mid-delivery leaves it to be
 * claimed again once the lease runs out (at-least-once delivery).
 *
 * A failed delivery is retried with exponential backoff until OUTBOX_MAX_ATTEMPTS, then marked
 * failed. A message with a one-time code has its body blanked once delivered or failed for good,
 * and is given up unsent once the code has lapsed (ROOT_RECOVERY_TTL_SECONDS, the life of the
 * only codes sent): a text message nobody can use still costs the operator, and the code would
 * otherwise rest in the row for the whole retention period.
 */
import type { Logger } from "pino";
import type { GatewayConfig } from "../config";
import { repeating } from "../common/repeating";
import type { Db } from "../db";
import { maskRecipient } from "./mask";
import type { Channel } from "./outbox";
import { configuredTransports, type OutgoingMessage, type Transport } from "./transports";

export const DELIVERED_SECRET_BODY = "(delivered; the one-time code is no longer stored)";
export const UNDELIVERED_SECRET_BODY = "(not delivered; the one-time code is no longer stored)";

export interface OutboxSenderOptions {
  db: Db;
  logger: Logger;
  config: Pick<
    GatewayConfig,
    | "OUTBOX_POLL_INTERVAL_MS"
    | "OUTBOX_MAX_ATTEMPTS"
    | "SMTP_URL"
    | "SMTP_FROM"
    | "SMS_WEBHOOK_URL"
    | "ROOT_RECOVERY_TTL_SECONDS"
  >;
  /** Default: SMTP / webhook where configured, else the log. */
  transports?: Record<Channel, Transport>;
  /** Messages claimed per round. Default 20. */
  batchSize?: number;
  /** How long a claimed message is left to its sender before another may claim it. Default 60. */
  leaseSeconds?: number;
  /** First retry delay, doubled for each further attempt. Default 10. */
  retryBaseSeconds?: number;
  /** Longest retry delay. Default one hour. */
  retryCapSeconds?: number;
}

export interface OutboxSender {
  /** Claims and delivers one batch of due messages. */
  runOnce(): Promise<{ sent: number; failed: number }>;
  /** Polls every OUTBOX_POLL_INTERVAL_MS until stopped. */
  start(): void;
  /** Stops polling and waits for the round in progress. */
  stop(): Promise<void>;
}

interface Claimed extends OutgoingMessage {
  attempts: number;
  containsSecret: boolean;
  createdAt: Date;
}

export function createOutboxSender(options: OutboxSenderOptions): OutboxSender {
  const { db, config } = options;
  const logger = options.logger.child({ component: "outbox-sender" });
  const transports = options.transports ?? configuredTransports(config);
  const batchSize = options.batchSize ?? 20;
  const leaseSeconds = options.leaseSeconds ?? 60;
  const retryBase = options.retryBaseSeconds ?? 10;
  const retryCap = options.retryCapSeconds ?? 3600;

  const claim = () =>
    db.$queryRaw<Claimed[]>`
      UPDATE "OutboxMessage"
      SET "attempts" = "attempts" + 1,
          "nextAttemptAt" = now() + make_interval(secs => ${leaseSeconds}::int)
      WHERE "id" IN (
        SELECT "id" FROM "OutboxMessage"
        WHERE "sentAt" IS NULL AND "failedAt" IS NULL AND "nextAttemptAt" <= now()
        -- One-time codes first: a flood of notices must not hold a recovery code back.
        ORDER BY "containsSecret" DESC, "nextAttemptAt", "id"
        LIMIT ${batchSize}::int
        FOR UPDATE SKIP LOCKED)
      RETURNING "id", "channel", "recipient", "kind", "subject", "body", "attempts",
                "containsSecret", "createdAt"`;

  /** A one-time code older than its life: sending it would cost and help nobody. */
  const lapsed = (message: Claimed) =>
    message.containsSecret &&
    Date.now() - message.createdAt.getTime() > config.ROOT_RECOVERY_TTL_SECONDS * 1000;

  /**
   * Renews this sender's lease on a claimed message just before it goes out, and says whether
   * the message is still this sender's. A batch can outlast the lease it was claimed under (a
   * slow provider); another sender may then have claimed the rest, which raised `attempts`,
   * so `attempts` fences the claim: the older claimant skips, and nothing goes out twice.
   */
  async function stillMine(message: Claimed): Promise<boolean> {
    const renewed = await db.$executeRaw`
      UPDATE "OutboxMessage"
      SET "nextAttemptAt" = now() + make_interval(secs => ${leaseSeconds}::int)
      WHERE "id" = ${message.id} AND "attempts" = ${message.attempts}
        AND "sentAt" IS NULL AND "failedAt" IS NULL`;
    return renewed === 1;
  }

  async function deliver(message: Claimed): Promise<boolean> {
    const transport = transports[message.channel as Channel];
    const logged = {
      outboxId: String(message.id),
      channel: message.channel,
      kind: message.kind,
      to: maskRecipient(message.channel, message.recipient),
      attempt: message.attempts,
    };
    if (!(await stillMine(message))) {
      logger.info(logged, "outbox message taken over by another sender; skipped");
      return false;
    }
    try {
      if (lapsed(message)) throw new Error("the one-time code lapsed before it could be delivered");
      if (!transport) throw new Error(`no transport for channel ${message.channel}`);
      await transport.deliver(message);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      const giveUp = message.attempts >= config.OUTBOX_MAX_ATTEMPTS || lapsed(message);
      const delay = Math.min(retryCap, retryBase * 2 ** (message.attempts - 1));
      await db.$executeRaw`
        UPDATE "OutboxMessage"
        SET "lastError" = ${reason.slice(0, 500)},
            "nextAttemptAt" = now() + make_interval(secs => ${delay}::int),
            "failedAt" = CASE WHEN ${giveUp} THEN now() ELSE NULL END,
            "body" = CASE WHEN ${giveUp} AND "containsSecret" THEN ${UNDELIVERED_SECRET_BODY}
                          ELSE "body" END
        WHERE "id" = ${message.id}`;
      // The reason may quote the recipient; the log keeps to the masked form.
      logger.warn(
        { ...logged, transport: transport?.name, retryInSeconds: giveUp ? null : delay },
        giveUp ? "outbox message failed for good" : "outbox message not sent; will retry",
      );
      return false;
    }
    await db.outboxMessage.update({
      where: { id: message.id },
      data: {
        sentAt: new Date(),
        lastError: null,
        ...(message.containsSecret ? { body: DELIVERED_SECRET_BODY } : {}),
      },
    });
    logger.info({ ...logged, transport: transport.name }, "outbox message sent");
    return true;
  }

  async function runOnce() {
    // RETURNING keeps no order: one-time codes first, then oldest first, as claimed.
    const claimed = (await claim()).sort(
      (a, b) => Number(b.containsSecret) - Number(a.containsSecret) || Number(a.id - b.id),
    );
    let sent = 0;
    for (const message of claimed) if (await deliver(message)) sent++;
    return { sent, failed: claimed.length - sent };
  }

  const job = repeating({
    // A full batch means more may be waiting: go again at once rather than after a pause.
    round: async () => {
      const { sent, failed } = await runOnce();
      return sent + failed >= batchSize;
    },
    pauseMs: config.OUTBOX_POLL_INTERVAL_MS,
    onError: (error) => logger.error({ err: error }, "outbox sender round failed"),
  });

  return {
    runOnce,
    start: job.start,
    async stop() {
      await job.stop();
      for (const transport of Object.values(transports)) transport.close?.();
    },
  };
}

/**
 * What src/main.ts calls: a started sender, or null when OUTBOX_SENDER_ENABLED is off. Kept out
 * of createGateway so tests read the outbox table without a sender racing them.
 */
export function startOutboxSender(services: {
  db: Db;
  logger: Logger;
  config: GatewayConfig;
}): OutboxSender | null {
  if (!services.config.OUTBOX_SENDER_ENABLED) return null;
  const sender = createOutboxSender(services);
  sender.start();
  services.logger.info(
    { pollIntervalMs: services.config.OUTBOX_POLL_INTERVAL_MS },
    "outbox sender started",
  );
  return sender;
}
