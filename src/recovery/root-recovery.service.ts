/**
 * Root recovery with alternative factors, as AWS offers when the root user's MFA device is lost:
 * the root password, then a one-time code sent to the account's email and another sent to its
 * phone. Both codes together give a "recovery" session, which may only deactivate and delete
 * root's device and create and enable a new one (src/auth/access.ts).
 *
 * The codes are stored as HMACs under the recovery pepper, bound to the recovery and channel;
 * they expire (ROOT_RECOVERY_TTL_SECONDS) and a recovery takes ROOT_RECOVERY_MAX_FAILURES wrong
 * answers before it is void. A new recovery voids the previous one, and may start only
 * ROOT_RECOVERY_COOLDOWN_SECONDS after it, so codes cannot be sent in a flood; budgets per
 * source and per recipient (recovery-sends.ts) bound the messages across accounts too.
 */
import { createHmac, randomInt, randomUUID, timingSafeEqual } from "node:crypto";
import type { GatewayConfig } from "../config";
import type { Db } from "../db";
import type { AuditEntry, AuditService } from "../audit/audit.service";
import { badInput, invalidCode, rateLimited, unauthenticated, type ApiError } from "../errors";
import type { SignInService } from "../auth/sign-in.service";
import type { IssuedSession, SessionService } from "../auth/session.service";
import { SessionKind } from "../auth/session-kind";
import { hashToken, newToken } from "../auth/tokens";
import { maskEmail, maskPhone } from "../notifications/mask";
import {
  rootRecoveryCompletedNotice,
  rootRecoveryEmailCode,
  rootRecoverySmsCode,
} from "../notifications/messages";
import { enqueue } from "../notifications/outbox";
import type { RequestMeta } from "../users/user.service";
import type { RecoverySendGuard } from "./recovery-sends";
import type { UserRow } from "../users/user.type";

export const RECOVERY_TOKEN_PREFIX = "mfar";
export const ROOT_RECOVERY_CODE_DIGITS = 8;

export type RootRecoveryConfig = Pick<
  GatewayConfig,
  | "RECOVERY_CODE_PEPPER"
  | "ROOT_RECOVERY_TTL_SECONDS"
  | "ROOT_RECOVERY_MAX_FAILURES"
  | "ROOT_RECOVERY_COOLDOWN_SECONDS"
  | "RECOVERY_SESSION_TTL_SECONDS"
>;

export interface StartedRecovery {
  recoveryToken: string;
  expiresAt: Date;
  emailSentTo: string;
  smsSentTo: string;
}

export interface CompletedRecovery {
  session: IssuedSession;
  user: UserRow;
  serialNumbers: string[];
}

const recoveryVoid = () =>
  unauthenticated("The recovery is not valid or has expired. Start the recovery again.");

type Channel = "email" | "phone";

/** Ends the account's unfinished recoveries: a new one starts, or root's password changed. */
export async function voidPendingRecoveries(
  tx: Pick<Db, "rootRecovery">,
  accountId: string,
  now: Date,
): Promise<void> {
  await tx.rootRecovery.updateMany({
    where: { accountId, completedAt: null, expiresAt: { gt: now } },
    data: { expiresAt: now },
  });
}

export class RootRecoveryService {
  constructor(
    private readonly db: Db,
    private readonly signIn: SignInService,
    private readonly sessions: SessionService,
    private readonly audit: AuditService,
    private readonly sends: RecoverySendGuard,
    private readonly config: RootRecoveryConfig,
  ) {}

  async start(
    input: { email: string; password: string },
    meta: RequestMeta,
  ): Promise<StartedRecovery> {
    const root = await this.signIn.checkPassword(
      { email: input.email, password: input.password },
      meta,
      "StartRootRecovery",
    );
    const id = randomUUID();
    const recoveryToken = newToken(RECOVERY_TOKEN_PREFIX);
    const emailCode = oneTimeCode();
    const phoneCode = oneTimeCode();
    const now = new Date();
    const expiresAt = new Date(now.getTime() + this.config.ROOT_RECOVERY_TTL_SECONDS * 1000);
    const event: AuditEntry = {
      accountId: root.accountId,
      actorUserId: root.id,
      action: "StartRootRecovery",
      entityType: "Account",
      entityId: root.accountId,
      outcome: "success",
      ...meta,
    };

    // The sends are held before the transaction (Redis round trips never run inside one) and
    // counted only once the recovery and its messages are stored.
    const addresses = await this.db.account.findUnique({
      where: { id: root.accountId },
      select: { email: true, phone: true, createdAt: true },
    });
    if (!addresses) throw unauthenticated("Incorrect sign-in details.");
    const reservation = await this.sends.reserve(
      meta.sourceIp,
      { accountId: root.accountId, ...addresses },
      now,
    );
    if ("retryAfterSeconds" in reservation) {
      throw await this.refuseStart(event, reservation.retryAfterSeconds);
    }
    const outcome = await this.db
      .$transaction(async (tx) => {
        // One recovery starts at a time per account, so the cooldown cannot be raced.
        const [account] = await tx.$queryRaw<{ email: string; phone: string; createdAt: Date }[]>`
        SELECT "email", "phone", "createdAt" FROM "Account"
        WHERE "id" = ${root.accountId} FOR NO KEY UPDATE`;
        if (!account) return null;
        const latest = await tx.rootRecovery.findFirst({
          where: { accountId: root.accountId },
          orderBy: { createdAt: "desc" },
          select: { createdAt: true },
        });
        const wait = latest
          ? latest.createdAt.getTime() +
            this.config.ROOT_RECOVERY_COOLDOWN_SECONDS * 1000 -
            now.getTime()
          : 0;
        if (wait > 0) return { started: false as const, retryAfterSeconds: Math.ceil(wait / 1000) };
        await voidPendingRecoveries(tx, root.accountId, now);
        await tx.rootRecovery.create({
          data: {
            id,
            tokenHash: hashToken(recoveryToken),
            accountId: root.accountId,
            emailCodeHash: this.codeHash(id, "email", emailCode),
            phoneCodeHash: this.codeHash(id, "phone", phoneCode),
            expiresAt,
            createdAt: now,
          },
        });
        const minutes = Math.round(this.config.ROOT_RECOVERY_TTL_SECONDS / 60);
        const email = rootRecoveryEmailCode(root.accountId, emailCode, minutes);
        const sms = rootRecoverySmsCode(root.accountId, phoneCode);
        await enqueue(
          tx,
          {
            accountId: root.accountId,
            channel: "EMAIL",
            recipient: account.email,
            kind: "root-recovery-code",
            ...email,
            containsSecret: true,
          },
          {
            accountId: root.accountId,
            channel: "SMS",
            recipient: account.phone,
            kind: "root-recovery-code",
            ...sms,
            containsSecret: true,
          },
        );
        await this.audit.record(event, tx);
        return { started: true as const, email: account.email, phone: account.phone };
      })
      .catch(async (error: unknown) => {
        await reservation.settle(false);
        throw error;
      });
    await reservation.settle(outcome?.started === true);

    if (!outcome) throw unauthenticated("Incorrect sign-in details.");
    if (!outcome.started) throw await this.refuseStart(event, outcome.retryAfterSeconds);
    return {
      recoveryToken,
      expiresAt,
      emailSentTo: maskEmail(outcome.email),
      smsSentTo: maskPhone(outcome.phone),
    };
  }

  /** A start refused for a cooldown or a spent send budget: audited, then RATE_LIMITED. */
  private async refuseStart(event: AuditEntry, retryAfterSeconds: number): Promise<ApiError> {
    await this.audit.record({ ...event, outcome: "denied", detail: { error: "RATE_LIMITED" } });
    return rateLimited(retryAfterSeconds);
  }

  async complete(
    input: { recoveryToken: string; emailCode: string; phoneCode: string },
    meta: RequestMeta,
  ): Promise<CompletedRecovery> {
    const emailCode = readCode(input.emailCode, "emailCode");
    const phoneCode = readCode(input.phoneCode, "phoneCode");
    const recovery = await this.findUsable(input.recoveryToken);
    const event: AuditEntry = {
      accountId: recovery.accountId,
      actorUserId: null,
      action: "CompleteRootRecovery",
      entityType: "Account",
      entityId: recovery.accountId,
      outcome: "success",
      ...meta,
    };
    const failuresAfter = await this.takeAttempt(recovery.id);
    if (failuresAfter === null) throw recoveryVoid();

    // Both are always compared, and the answer never says which one was wrong.
    const emailRight = sameHash(
      this.codeHash(recovery.id, "email", emailCode),
      recovery.emailCodeHash,
    );
    const phoneRight = sameHash(
      this.codeHash(recovery.id, "phone", phoneCode),
      recovery.phoneCodeHash,
    );
    if (!emailRight || !phoneRight) {
      await this.audit.record({ ...event, outcome: "failure", detail: { error: "INVALID_CODES" } });
      throw invalidCode("The verification codes are not valid.", {
        attemptsRemaining: this.config.ROOT_RECOVERY_MAX_FAILURES - failuresAfter,
      });
    }

    const granted = await this.db.$transaction(async (tx) => {
      const now = new Date();
      const completed = await tx.$executeRaw`
        UPDATE "RootRecovery"
        SET "completedAt" = ${now}, "emailVerifiedAt" = ${now}, "phoneVerifiedAt" = ${now},
            "failures" = "failures" - 1
        WHERE "id" = ${recovery.id}::uuid AND "completedAt" IS NULL AND "expiresAt" > ${now}`;
      if (completed !== 1) return null;
      const root = await tx.user.findFirst({
        where: { accountId: recovery.accountId, isRoot: true },
        include: {
          account: { select: { email: true } },
          devices: { select: { serialNumber: true } },
        },
      });
      if (!root) return null;
      // Whoever holds the lost device may also hold a session of root's: sign every one out,
      // so that after a recovery only the recovery session stands.
      const signedOut = await this.sessions.revokeAllOf(tx, root.id);
      // And root's recovery codes, which a recovery means were lost too, perhaps with the device:
      // after the sign-out, which waited for any set being made (it holds its session's row).
      await tx.recoveryCode.deleteMany({ where: { userId: root.id } });
      const session = await this.sessions.issue(
        root,
        {
          kind: SessionKind.RECOVERY,
          // Email and phone are the alternative factors: this session passed a second factor.
          mfaAuthenticated: true,
          ttlSeconds: this.config.RECOVERY_SESSION_TTL_SECONDS,
        },
        tx,
      );
      await this.audit.record(
        { ...event, actorUserId: root.id, detail: { sessionsSignedOut: signedOut } },
        tx,
      );
      await enqueue(tx, {
        accountId: recovery.accountId,
        channel: "EMAIL",
        recipient: root.account.email,
        kind: "root-recovery-completed",
        ...rootRecoveryCompletedNotice(recovery.accountId, meta.sourceIp),
      });
      return {
        session,
        user: root,
        serialNumbers: root.devices.map((d) => d.serialNumber).sort(),
      };
    });
    if (!granted) throw recoveryVoid();
    return granted;
  }

  private async findUsable(token: string) {
    const trimmed = token.trim();
    if (!trimmed.startsWith(`${RECOVERY_TOKEN_PREFIX}_`) || trimmed.length > 128) {
      throw recoveryVoid();
    }
    const recovery = await this.db.rootRecovery.findUnique({
      where: { tokenHash: hashToken(trimmed) },
    });
    if (
      !recovery ||
      recovery.completedAt ||
      recovery.expiresAt.getTime() <= Date.now() ||
      recovery.failures >= this.config.ROOT_RECOVERY_MAX_FAILURES
    ) {
      throw recoveryVoid();
    }
    return recovery;
  }

  /** Takes one attempt before the codes are compared, so concurrent guesses cannot overrun. */
  private async takeAttempt(recoveryId: string): Promise<number | null> {
    const [row] = await this.db.$queryRaw<{ failures: number }[]>`
      UPDATE "RootRecovery" SET "failures" = "failures" + 1
      WHERE "id" = ${recoveryId}::uuid AND "completedAt" IS NULL
        AND "expiresAt" > ${new Date()} AND "failures" < ${this.config.ROOT_RECOVERY_MAX_FAILURES}
      RETURNING "failures"`;
    return row ? row.failures : null;
  }

  private codeHash(recoveryId: string, channel: Channel, code: string): string {
    return createHmac("sha256", this.config.RECOVERY_CODE_PEPPER)
      .update(`root-recovery\0${recoveryId}\0${channel}\0${code}`)
      .digest("hex");
  }
}

function oneTimeCode(): string {
  return String(randomInt(0, 10 ** ROOT_RECOVERY_CODE_DIGITS)).padStart(
    ROOT_RECOVERY_CODE_DIGITS,
    "0",
  );
}

function readCode(raw: string, field: string): string {
  const code = raw.replace(/\s+/g, "");
  if (!new RegExp(`^\\d{${ROOT_RECOVERY_CODE_DIGITS}}$`).test(code)) {
    throw badInput(
      `1 validation error detected: Value at '${field}' failed to satisfy constraint: ` +
        `Member must be ${ROOT_RECOVERY_CODE_DIGITS} digits`,
    );
  }
  return code;
}

function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, "hex");
  const right = Buffer.from(b, "hex");
  return left.length === right.length && timingSafeEqual(left, right);
}
