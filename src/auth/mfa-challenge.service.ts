/**
 * The second half of sign-in: a correct password yields a short-lived challenge, answered with
 * one TOTP code (checked by the auth worker, ±1 step around the device's drift) or one
 * recovery code. A challenge:
 * - is stored only as the SHA-256 of its token;
 * - expires (MFA_CHALLENGE_TTL_SECONDS);
 * - has its own budget of wrong answers (MFA_CHALLENGE_MAX_FAILURES), after which it is void.
 *   An attempt is taken from the budget before the code is checked, so concurrent guesses
 *   cannot overrun it, and given back when the answer was not a wrong guess (a replayed or
 *   skewed genuine code, a throttled or failed check);
 * - is consumed by a conditional UPDATE in the transaction that creates the session, so of
 *   any number of concurrent right answers exactly one gets a session.
 * A TOTP answer's step is claimed in that same transaction (`claimAcceptedStep`): one code
 * opens one session however many challenges it answers at once, and none once its device was
 * deactivated or deleted while the code was being checked.
 */
import type { Db } from "../db";
import type { AuditEntry, AuditService } from "../audit/audit.service";
import { ApiError, badInput, ErrorCode, invalidCode, unauthenticated } from "../errors";
import { recoveryCodeUsedNotice } from "../notifications/messages";
import { enqueue, noticeRecipient, securityNotice } from "../notifications/outbox";
import type { RecoveryCodeService } from "../recovery/recovery-code.service";
import { normaliseRecoveryCode } from "../recovery/recovery-code";
import {
  replayedCode,
  type AcceptedCode,
  type CodeVerificationService,
} from "../mfa-devices/code-verification.service";
import type { RequestMeta } from "../users/user.service";
import type { UserRow } from "../users/user.type";
import type { MfaFailureService } from "./mfa-failures";
import type { IssuedSession, SessionService } from "./session.service";
import { SessionKind } from "./session-kind";
import { hashToken, newToken } from "./tokens";

export const CHALLENGE_TOKEN_PREFIX = "mfac";

export interface IssuedChallenge {
  challenge: string;
  expiresAt: Date;
  serialNumbers: string[];
}

export interface ChallengeAnswer {
  challenge: string;
  code: string;
  serialNumber?: string | null;
}

export interface AnsweredChallenge {
  session: IssuedSession;
  user: UserRow;
  usedRecoveryCode: boolean;
  recoveryCodesRemaining: number;
}

export interface ChallengeConfig {
  MFA_CHALLENGE_TTL_SECONDS: number;
  MFA_CHALLENGE_MAX_FAILURES: number;
  SESSION_TTL_SECONDS: number;
}

type Tx = Parameters<Parameters<Db["$transaction"]>[0]>[0];
type Answer = { method: "totp"; code: string } | { method: "recovery-code"; code: string };
/** What the answer proved: a recovery code to spend, or a device step to claim. */
type Proof = { recoveryCode: string } | { deviceId: string; accepted: AcceptedCode };

/** Unknown, expired, used or void: one answer, so a guessed token learns nothing. */
export const challengeVoid = () =>
  unauthenticated("The MFA challenge is not valid or has expired. Sign in again.");

/** Thrown inside a transaction to roll it back when the challenge was consumed meanwhile. */
class ChallengeGone extends Error {}
/** Thrown inside a transaction to roll it back when the device step could not be claimed. */
class ClaimLost extends Error {
  constructor(readonly deviceId: string) {
    super("the device step was claimed first, or the device is gone");
  }
}

export class MfaChallengeService {
  constructor(
    private readonly db: Db,
    private readonly sessions: SessionService,
    private readonly audit: AuditService,
    private readonly verification: CodeVerificationService,
    private readonly recoveryCodes: RecoveryCodeService,
    private readonly failures: MfaFailureService,
    private readonly config: ChallengeConfig,
  ) {}

  async issue(user: UserRow, serialNumbers: string[]): Promise<IssuedChallenge> {
    const challenge = newToken(CHALLENGE_TOKEN_PREFIX);
    const expiresAt = new Date(Date.now() + this.config.MFA_CHALLENGE_TTL_SECONDS * 1000);
    await this.db.mfaChallenge.create({
      data: {
        tokenHash: hashToken(challenge),
        accountId: user.accountId,
        userId: user.id,
        expiresAt,
      },
    });
    return { challenge, expiresAt, serialNumbers };
  }

  async answer(input: ChallengeAnswer, meta: RequestMeta): Promise<AnsweredChallenge> {
    const answer = parseAnswer(input.code);
    const challenge = await this.findUsable(input.challenge);
    const user = challenge.user;
    const device =
      answer.method === "totp" ? await this.chooseDevice(user.id, input.serialNumber) : null;
    const event: AuditEntry = {
      accountId: user.accountId,
      actorUserId: user.id,
      action: "AnswerMfaChallenge",
      entityType: "User",
      entityId: user.id,
      outcome: "success",
      detail: { method: answer.method, ...(device ? { serialNumber: device.serialNumber } : {}) },
      ...meta,
    };

    const failuresAfter = await this.takeAttempt(challenge.id);
    if (failuresAfter === null) throw challengeVoid();
    const attemptsRemaining = this.config.MFA_CHALLENGE_MAX_FAILURES - failuresAfter;

    let proof: Proof = { recoveryCode: answer.code };
    if (device) {
      try {
        const accepted = await this.verification.checkCodes(
          device,
          "login",
          { code1: answer.code, fieldNames: { code1: "code" } },
          meta,
        );
        proof = { deviceId: device.id, accepted };
      } catch (error) {
        throw await this.refuse(challenge.id, user, event, error, attemptsRemaining, meta);
      }
    }
    try {
      return await this.grant(challenge.id, user, event, meta, proof);
    } catch (error) {
      // A refusal at the grant (a wrong recovery code, a step claimed first, a device removed
      // meanwhile) is audited, and keeps the attempt only when it was a wrong guess.
      if (error instanceof ApiError && error.code !== ErrorCode.UNAUTHENTICATED) {
        throw await this.refuse(challenge.id, user, event, error, attemptsRemaining, meta);
      }
      throw error;
    }
  }

  private async findUsable(token: string) {
    const trimmed = token.trim();
    if (!trimmed.startsWith(`${CHALLENGE_TOKEN_PREFIX}_`) || trimmed.length > 128) {
      throw challengeVoid();
    }
    const challenge = await this.db.mfaChallenge.findUnique({
      where: { tokenHash: hashToken(trimmed) },
      include: { user: true },
    });
    if (
      !challenge ||
      challenge.consumedAt ||
      challenge.expiresAt.getTime() <= Date.now() ||
      challenge.failures >= this.config.MFA_CHALLENGE_MAX_FAILURES
    ) {
      throw challengeVoid();
    }
    return challenge;
  }

  /** The device to check: the one named, or the user's only one. */
  private async chooseDevice(userId: string, serialNumber?: string | null) {
    const devices = await this.db.virtualMfaDevice.findMany({
      where: { userId },
      orderBy: { serialNumber: "asc" },
    });
    if (serialNumber !== undefined && serialNumber !== null) {
      const named = devices.find((d) => d.serialNumber === serialNumber);
      if (!named) throw badInput("serialNumber is not one of the challenge's serialNumbers.");
      return named;
    }
    if (devices.length === 1) return devices[0]!;
    // No device left (deactivated since sign-in) leaves the recovery codes; several need a name.
    throw badInput(
      devices.length === 0
        ? "The user has no MFA device any more; answer with a recovery code or sign in again."
        : "The user has several MFA devices: give the serialNumber of the one the code is from.",
    );
  }

  /** Takes one attempt from the budget; the failures count after it, or null when void. */
  private async takeAttempt(challengeId: string): Promise<number | null> {
    const [row] = await this.db.$queryRaw<{ failures: number }[]>`
      UPDATE "MfaChallenge" SET "failures" = "failures" + 1
      WHERE "id" = ${challengeId}::uuid AND "consumedAt" IS NULL
        AND "expiresAt" > ${new Date()} AND "failures" < ${this.config.MFA_CHALLENGE_MAX_FAILURES}
      RETURNING "failures"`;
    return row ? row.failures : null;
  }

  private async giveAttemptBack(challengeId: string): Promise<void> {
    await this.db.$executeRaw`
      UPDATE "MfaChallenge" SET "failures" = "failures" - 1
      WHERE "id" = ${challengeId}::uuid AND "failures" > 0`;
  }

  /**
   * A plain wrong code keeps its attempt, counts towards the user's failure streak and says
   * how many attempts the challenge has left. Anything else (replayed or skewed genuine code,
   * throttling, an unavailable worker) gives the attempt back and passes through unchanged.
   */
  private async refuse(
    challengeId: string,
    user: UserRow,
    event: AuditEntry,
    error: unknown,
    attemptsRemaining: number,
    meta: RequestMeta,
  ): Promise<unknown> {
    const apiError = error instanceof ApiError ? error : null;
    const reason = apiError?.extensions.reason;
    const wrongGuess = apiError?.code === ErrorCode.INVALID_AUTHENTICATION_CODE && !reason;
    if (!wrongGuess) await this.giveAttemptBack(challengeId);
    else await this.failures.recordFailure(user.id, meta.sourceIp);
    await this.audit.record({
      ...event,
      outcome: "failure",
      detail: {
        ...event.detail,
        error: apiError?.code ?? ErrorCode.INTERNAL_SERVER_ERROR,
        ...(typeof reason === "string" ? { reason } : {}),
      },
    });
    if (!wrongGuess) return error;
    return invalidCode(apiError!.message, { attemptsRemaining });
  }

  /**
   * Consumes the challenge and creates the session in one transaction. The proof is spent in
   * the same transaction (a recovery code used, a device step claimed), so it is given back
   * if the challenge turns out to be gone.
   */
  private async grant(
    challengeId: string,
    user: UserRow,
    event: AuditEntry,
    meta: RequestMeta,
    proof: Proof,
  ): Promise<AnsweredChallenge> {
    const usedRecoveryCode = "recoveryCode" in proof;
    try {
      return await this.db.$transaction(async (tx) => {
        if ("recoveryCode" in proof) {
          if (!(await this.recoveryCodes.consume(tx, user.id, proof.recoveryCode))) {
            throw invalidCode();
          }
        } else if (
          !(await this.verification.claimAcceptedStep(proof.deviceId, user.id, proof.accepted, tx))
        ) {
          throw new ClaimLost(proof.deviceId);
        }
        if (!(await consumeChallenge(tx, challengeId))) throw new ChallengeGone();
        await this.failures.reset(user.id, tx);
        const session = await this.sessions.issue(
          user,
          {
            kind: SessionKind.MFA,
            mfaAuthenticated: true,
            ttlSeconds: this.config.SESSION_TTL_SECONDS,
          },
          tx,
        );
        const remaining = await this.recoveryCodes.remaining(user.id, tx);
        await this.audit.record(event, tx);
        if (usedRecoveryCode) {
          const to = await noticeRecipient(tx, user.id);
          if (to) {
            await enqueue(
              tx,
              securityNotice(
                to,
                "recovery-code-used",
                recoveryCodeUsedNotice(to, remaining, meta.sourceIp),
              ),
            );
          }
        }
        return {
          session,
          user,
          usedRecoveryCode,
          recoveryCodesRemaining: remaining,
        };
      });
    } catch (error) {
      if (error instanceof ChallengeGone) {
        // The worker accepted the step: keep PostgreSQL's watermark up with Redis's.
        if ("deviceId" in proof)
          await this.verification.recordAcceptedStep(proof.deviceId, proof.accepted);
        throw challengeVoid();
      }
      if (error instanceof ClaimLost) {
        const reason = await this.verification.lostClaimReason(error.deviceId, user.id);
        if (reason === "REPLAYED") throw replayedCode();
        throw badInput(
          "The MFA device was removed from the user while its code was being checked; " +
            "answer with a recovery code or sign in again.",
        );
      }
      throw error;
    }
  }
}

/** Marks the challenge used, giving back the attempt the right answer took. */
async function consumeChallenge(tx: Tx, challengeId: string): Promise<boolean> {
  const count = await tx.$executeRaw`
    UPDATE "MfaChallenge" SET "consumedAt" = ${new Date()}, "failures" = "failures" - 1
    WHERE "id" = ${challengeId}::uuid AND "consumedAt" IS NULL`;
  return count === 1;
}

/** A TOTP code is digits only; anything else must read as a recovery code. */
function parseAnswer(raw: string): Answer {
  const compact = raw.replace(/\s+/g, "");
  if (/^\d{1,8}$/.test(compact)) return { method: "totp", code: compact };
  const recovery = normaliseRecoveryCode(raw);
  if (recovery) return { method: "recovery-code", code: recovery };
  throw badInput(
    "1 validation error detected: Value at 'code' failed to satisfy constraint: " +
      "Member must be a 6-digit MFA code or a 16-character recovery code",
  );
}
