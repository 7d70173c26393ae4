/**
 * A correct password followed by wrong MFA codes means the password is probably known to
 * someone else. Such failures are counted per user (User.mfaFailureStreak) across challenges
 * and step-ups; the user is told, through the outbox, at MFA_FAILURE_NOTIFY_EVERY in a row and
 * again each time the streak doubles (5, 10, 20, 40, … by default). Not at every multiple:
 * wrong recovery codes never reach the worker's budgets and challenges are free to whoever has
 * the password, so a notice per five wrong answers let them mail the user without limit (40
 * emails in under 6 s); doubling still reports an attack that goes on, a few times a day at most.
 * Nothing is ever locked: locking would let anyone with the password lock the owner out, and
 * the auth worker already slows guessing per device and per source.
 */
import type { Db } from "../db";
import { mfaFailuresNotice } from "../notifications/messages";
import { enqueue, noticeRecipient, securityNotice } from "../notifications/outbox";

type Tx = Pick<Db, "$executeRaw">;

/** Whether a streak of `streak` wrong codes is `every` times a power of two. */
export function noticeDue(streak: number, every: number): boolean {
  return streak >= every && Number.isInteger(Math.log2(streak / every));
}

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
      if (noticeDue(row.streak, this.notifyEvery)) {
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
