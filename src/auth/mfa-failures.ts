/**
 * A correct password followed by wrong MFA codes means the password is probably known to
 * someone else. Such failures are counted per user (User.mfaFailureStreak) across challenges
 * and step-ups; every MFA_FAILURE_NOTIFY_EVERY in a row the user is told, through the outbox.
 * Nothing is ever locked: locking would let anyone with the password lock the owner out, and
 * the auth worker already slows guessing per device and per source.
 */
import type { Db } from "../db";
import { mfaFailuresNotice } from "../notifications/messages";
import { enqueue, noticeRecipient, securityNotice } from "../notifications/outbox";

type Tx = Pick<Db, "$executeRaw">;

export class MfaFailureService {
  constructor(
    private readonly db: Db,
    private readonly notifyEvery: number,
  ) {}

  /** Counts one wrong code; the notice, when due, is written in the same transaction. */
  async recordFailure(userId: string, sourceIp: string): Promise<number> {
    return this.db.$transaction(async (tx) => {
      const [row] = await tx.$queryRaw<{ streak: number }[]>`
        UPDATE "User" SET "mfaFailureStreak" = "mfaFailureStreak" + 1
        WHERE "id" = ${userId}
        RETURNING "mfaFailureStreak" AS "streak"`;
      if (!row) return 0;
      if (row.streak % this.notifyEvery === 0) {
        const to = await noticeRecipient(tx, userId);
        if (to) {
          await enqueue(
            tx,
            securityNotice(to, "mfa-failures", mfaFailuresNotice(to, row.streak, sourceIp)),
          );
        }
      }
      return row.streak;
    });
  }

  /** A right code ends the streak. Writes only when there is a streak to end. */
  async reset(userId: string, tx: Tx = this.db): Promise<void> {
    await tx.$executeRaw`
      UPDATE "User" SET "mfaFailureStreak" = 0 WHERE "id" = ${userId} AND "mfaFailureStreak" <> 0`;
  }
}
