/**
 * Recovery codes (beyond AWS): ten single-use codes a user keeps on paper, each able to answer
 * one MFA challenge in place of a TOTP code. Shown once, stored as peppered HMACs, consumed
 * with a conditional UPDATE so one code can never be used twice, even by concurrent requests.
 */
import type { Principal } from "../context";
import type { Db } from "../db";
import type { AuditService } from "../audit/audit.service";
import type { RedisBudgets } from "../common/redis-budgets";
import { canManageRootDevice } from "../auth/access";
import { badInput, forbidden, unauthenticated } from "../errors";
import { recoveryCodesGeneratedNotice } from "../notifications/messages";
import { enqueue, noticeRecipient, securityNotice } from "../notifications/outbox";
import type { RequestMeta } from "../users/user.service";
import { lockUser } from "../users/user-lock";
import {
  hashRecoveryCode,
  newRecoveryCode,
  normaliseRecoveryCode,
  RECOVERY_CODES_PER_SET,
} from "./recovery-code";

type Tx = Pick<Db, "$executeRaw">;

export interface GeneratedRecoveryCodes {
  codes: string[];
  generatedAt: Date;
}

const noDevice = () => badInput("Recovery codes need an enabled MFA device; enable one first.");

export class RecoveryCodeService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly pepper: string,
    private readonly budgets: RedisBudgets,
    /** New sets one user may make per hour; each mails a notice, which must not become a flood. */
    private readonly setsPerHour: number,
  ) {}

  /**
   * A new set for the caller, replacing any earlier one. It needs a session that passed MFA
   * (a password alone must not yield a way around the device) and an enabled device (codes
   * stand in for a device; without one there is nothing to stand in for).
   */
  async generate(principal: Principal, meta: RequestMeta): Promise<GeneratedRecoveryCodes> {
    if (!principal.mfaAuthenticated) throw forbidden();
    // Root's codes stand in for root's device, so they take a session that may manage it: not
    // a programmatic (getSessionToken) one, as for the device itself.
    if (principal.isRoot && !canManageRootDevice(principal)) throw forbidden();
    const devices = await this.db.virtualMfaDevice.count({ where: { userId: principal.userId } });
    if (devices === 0) throw noDevice();
    await this.budgets.spend([
      this.budgets.budget(
        "recovery_code_sets_per_user",
        [principal.userId],
        this.setsPerHour,
        3600,
      ),
    ]);
    const codes = Array.from({ length: RECOVERY_CODES_PER_SET }, newRecoveryCode);
    const generatedAt = new Date();
    await this.db.$transaction(async (tx) => {
      // One set at a time: without the lock, concurrent calls each delete only the codes they
      // can see, and several "replaced" sets stay valid.
      if (!(await lockUser(tx, principal.userId))) throw unauthenticated();
      // Again under the lock, which deactivating a device takes too, and with the session's row
      // held: the device may have gone, or a root recovery signed the session out (deleting the
      // codes), while the budget was spent, and a set made after them would outlive what it
      // stands for. A recovery completing now waits for this set, then signs the session out
      // and deletes it. (Completing takes no user lock: it locks the recovery first, and a
      // password change locks in the other order.)
      const live = await tx.$queryRaw<unknown[]>`
        SELECT 1 FROM "Session"
        WHERE "id" = ${principal.sessionId}::uuid AND "revokedAt" IS NULL FOR SHARE`;
      if (live.length === 0) throw unauthenticated();
      if ((await tx.virtualMfaDevice.count({ where: { userId: principal.userId } })) === 0) {
        throw noDevice();
      }
      await tx.recoveryCode.deleteMany({ where: { userId: principal.userId } });
      await tx.recoveryCode.createMany({
        data: codes.map((code) => ({
          userId: principal.userId,
          codeHash: this.hash(principal.userId, normaliseRecoveryCode(code)!),
          createdAt: generatedAt,
        })),
      });
      await this.audit.record(
        {
          accountId: principal.accountId,
          actorUserId: principal.userId,
          action: "GenerateRecoveryCodes",
          entityType: "User",
          entityId: principal.userId,
          outcome: "success",
          detail: { count: codes.length },
          ...meta,
        },
        tx,
      );
      const to = await noticeRecipient(tx, principal.userId);
      if (to) {
        await enqueue(
          tx,
          securityNotice(
            to,
            "recovery-codes-generated",
            recoveryCodesGeneratedNotice(to, meta.sourceIp),
          ),
        );
      }
    });
    return { codes, generatedAt };
  }

  /** Unused codes the user has left. */
  remaining(userId: string, tx: Pick<Db, "recoveryCode"> = this.db): Promise<number> {
    return tx.recoveryCode.count({ where: { userId, usedAt: null } });
  }

  /**
   * Spends a code if it is one of the user's unused ones. Exactly one of any number of
   * concurrent callers sees true: the row lock makes the others re-read `usedAt` as set.
   */
  async consume(tx: Tx, userId: string, canonicalCode: string): Promise<boolean> {
    const hash = this.hash(userId, canonicalCode);
    const count = await tx.$executeRaw`
      UPDATE "RecoveryCode" SET "usedAt" = now()
      WHERE "userId" = ${userId} AND "codeHash" = ${hash} AND "usedAt" IS NULL`;
    return count === 1;
  }

  private hash(userId: string, canonicalCode: string): string {
    return hashRecoveryCode(this.pepper, userId, canonicalCode);
  }
}
