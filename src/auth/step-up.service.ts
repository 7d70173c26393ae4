/**
 * getSessionToken, like AWS STS GetSessionToken with SerialNumber and TokenCode: a signed-in
 * caller proves one code of their own device and gets a new, shorter session marked
 * MFA-authenticated. No password is hashed.
 *
 * This is the hot path of the benchmark, so it costs one device lookup, one worker round trip
 * and one SQL statement (the session was looked up when the request was authenticated). That
 * statement records the accepted step, ends the user's failure streak, writes the audit event
 * and creates the session together.
 */
import { randomUUID } from "node:crypto";
import type { Principal } from "../context";
import type { HotSql } from "../db";
import type { AuditService } from "../audit/audit.service";
import { ApiError, badInput, ErrorCode, forbidden, unauthenticated } from "../errors";
import { checkSerialNumber } from "../common/iam-names";
import {
  replayedCode,
  type CodeVerificationService,
  type VerifiableDevice,
} from "../mfa-devices/code-verification.service";
import { accountOfSerialNumber } from "../mfa-devices/serial-number";
import type { RequestMeta } from "../users/user.service";
import type { UserRow } from "../users/user.type";
import type { MfaFailureService } from "./mfa-failures";
import { SESSION_TOKEN_PREFIX, type IssuedSession } from "./session.service";
import { SessionKind } from "./session-kind";
import { hashToken, newToken } from "./tokens";

/** AWS's limits for GetSessionToken, in seconds. */
export const STS_MIN_DURATION = 900;
export const STS_MAX_DURATION = 129_600;
export const STS_DEFAULT_DURATION = 43_200;
/** AWS caps sessions of the account's root user at one hour, and so does this. */
export const STS_ROOT_MAX_DURATION = 3600;

export interface StepUpRequest {
  serialNumber: string;
  tokenCode: string;
  durationSeconds?: number | null;
}

export class StepUpService {
  constructor(
    private readonly sql: HotSql,
    private readonly audit: AuditService,
    private readonly verification: CodeVerificationService,
    private readonly failures: MfaFailureService,
  ) {}

  async getSessionToken(
    principal: Principal,
    request: StepUpRequest,
    meta: RequestMeta,
  ): Promise<{ session: IssuedSession; user: UserRow }> {
    const requested = checkDuration(request.durationSeconds);
    const code = checkTokenCode(request.tokenCode);
    const serialNumber = checkSerialNumber(request.serialNumber);
    // Another account's serial, or one that is not a virtual device ARN, is refused unread.
    if (accountOfSerialNumber(serialNumber) !== principal.accountId) throw forbidden();
    // Only the caller's own device counts; whose else it is, or whether it exists, is not said.
    const device = await this.findOwnDevice(principal.userId, serialNumber);
    if (!device) throw forbidden();

    let accepted;
    try {
      accepted = await this.verification.checkCodes(
        device,
        "login",
        { code1: code, fieldNames: { code1: "tokenCode" } },
        meta,
      );
    } catch (error) {
      await this.recordRefusal(principal, device.serialNumber, error, meta);
      throw error;
    }

    const cap = principal.isRoot ? STS_ROOT_MAX_DURATION : STS_MAX_DURATION;
    const remaining = Math.floor((principal.expiresAt.getTime() - Date.now()) / 1000);
    const ttlSeconds = Math.min(requested ?? defaultDuration(principal), cap, remaining);
    if (ttlSeconds <= 0) throw unauthenticated();
    const token = newToken(SESSION_TOKEN_PREFIX);
    const expiresAt = new Date(Date.now() + ttlSeconds * 1000);
    const detail = JSON.stringify({
      serialNumber: device.serialNumber,
      durationSeconds: ttlSeconds,
    });
    // One statement claims the step and grants: the calling session must still be live (its
    // row is locked, so a concurrent signOutUser or password change waits, then ends the new
    // session too), the device must still be the caller's and its stored watermark below the
    // accepted step, or nothing else happens. So of any number of grants for one step
    // (concurrent requests the worker each answered OK) exactly one gets a session, and a
    // device deactivated or deleted while its code was checked grants none.
    // On `pg` directly, as the hottest statement there is (src/db.ts, HotSql).
    const granted = await this.sql.rows(
      `WITH "caller" AS (
         SELECT 1 FROM "Session" WHERE "id" = $13::uuid AND "revokedAt" IS NULL FOR SHARE
       ), "claim" AS (
         UPDATE "VirtualMfaDevice" SET "lastStep" = $1::int, "drift" = $2::int
         WHERE "id" = $3::uuid AND "userId" = $4::text
           AND ("lastStep" IS NULL OR "lastStep" < $1::int)
           AND EXISTS (SELECT 1 FROM "caller")
         RETURNING "id"
       ), "streak" AS (
         UPDATE "User" SET "mfaFailureStreak" = 0
         WHERE "id" = $4::text AND "mfaFailureStreak" <> 0 AND EXISTS (SELECT 1 FROM "claim")
       ), "audit" AS (
         INSERT INTO "AuditEvent"
           ("accountId", "actorUserId", "action", "entityType", "entityId", "outcome",
            "sourceIp", "requestId", "detail")
         SELECT $5::text, $4::text, 'GetSessionToken', 'User', $4::text, 'success', $6::text,
                $7::text, $8::jsonb
         FROM "claim"
       )
       INSERT INTO "Session"
         ("id", "tokenHash", "accountId", "userId", "kind", "mfaAuthenticated", "expiresAt",
          "parentId")
       SELECT $9::uuid, $10::text, $5::text, $4::text, $11::text, true, $12::timestamp,
              $13::uuid
       FROM "claim"
       RETURNING "id"`,
      [
        accepted.step,
        accepted.drift,
        device.id,
        principal.userId,
        principal.accountId,
        meta.sourceIp,
        meta.requestId,
        detail,
        randomUUID(),
        hashToken(token),
        SessionKind.STS,
        expiresAt.toISOString(),
        principal.sessionId,
      ],
      "step-up-grant",
    );
    if (granted.length === 0) {
      const error = await this.lostGrantError(principal, device.id);
      await this.recordRefusal(principal, device.serialNumber, error, meta);
      throw error;
    }
    return {
      session: {
        token,
        expiresAt,
        mfaAuthenticated: true,
        kind: SessionKind.STS,
        userId: principal.userId,
      },
      user: device.user,
    };
  }

  /**
   * Why the grant found nothing to claim: the calling session was signed out meanwhile, the
   * step was claimed first (a replay), or the device is no longer the caller's, which is
   * answered as if it had never been (see findOwnDevice).
   */
  private async lostGrantError(principal: Principal, deviceId: string): Promise<ApiError> {
    const live = await this.sql.rows(
      `SELECT 1 FROM "Session" WHERE "id" = $1::uuid AND "revokedAt" IS NULL`,
      [principal.sessionId],
      "session-live",
    );
    if (live.length === 0) return unauthenticated();
    const reason = await this.verification.lostClaimReason(deviceId, principal.userId);
    return reason === "REPLAYED" ? replayedCode() : forbidden();
  }

  /** The caller's device and the caller's user row, in one query (Prisma's include takes two). */
  private async findOwnDevice(
    userId: string,
    serialNumber: string,
  ): Promise<(VerifiableDevice & { serialNumber: string; user: UserRow }) | null> {
    const [row] = await this.sql.rows<VerifiableDevice & OwnerColumns & { serialNumber: string }>(
      `SELECT d."id"::text AS "id", d."accountId", d."serialNumber", d."sealedSeed", d."keyId",
              d."algorithm", d."digits", d."period", d."drift", d."lastStep", d."burntSteps",
              u."id" AS "ownerId", u."userName" AS "ownerUserName", u."arn" AS "ownerArn",
              u."path" AS "ownerPath", u."createdAt" AS "ownerCreatedAt",
              u."isRoot" AS "ownerIsRoot", u."isAdmin" AS "ownerIsAdmin"
       FROM "VirtualMfaDevice" d JOIN "User" u ON u."id" = d."userId"
       WHERE d."serialNumber" = $1 AND d."userId" = $2`,
      [serialNumber, userId],
      "own-device-with-owner",
    );
    if (!row) return null;
    return {
      ...row,
      user: {
        id: row.ownerId,
        accountId: row.accountId,
        userName: row.ownerUserName,
        arn: row.ownerArn,
        path: row.ownerPath,
        createdAt: row.ownerCreatedAt,
        isRoot: row.ownerIsRoot,
        isAdmin: row.ownerIsAdmin,
      },
    };
  }

  /** A wrong code counts towards the failure streak; every refusal is audited. */
  private async recordRefusal(
    principal: Principal,
    serialNumber: string,
    error: unknown,
    meta: RequestMeta,
  ): Promise<void> {
    const apiError = error instanceof ApiError ? error : null;
    const reason = apiError?.extensions.reason;
    if (apiError?.code === ErrorCode.INVALID_AUTHENTICATION_CODE && !reason) {
      await this.failures.recordFailure(principal.userId, meta.sourceIp);
    }
    await this.audit.record({
      accountId: principal.accountId,
      actorUserId: principal.userId,
      action: "GetSessionToken",
      entityType: "User",
      entityId: principal.userId,
      outcome: "failure",
      detail: {
        serialNumber,
        error: apiError?.code ?? ErrorCode.INTERNAL_SERVER_ERROR,
        ...(typeof reason === "string" ? { reason } : {}),
      },
      ...meta,
    });
  }
}

interface OwnerColumns {
  ownerId: string;
  ownerUserName: string;
  ownerArn: string;
  ownerPath: string;
  ownerCreatedAt: Date;
  ownerIsRoot: boolean;
  ownerIsAdmin: boolean;
}

const defaultDuration = (principal: Principal) =>
  principal.isRoot ? STS_ROOT_MAX_DURATION : STS_DEFAULT_DURATION;

function checkDuration(value: number | null | undefined): number | null {
  if (value === undefined || value === null) return null;
  const constraint =
    value < STS_MIN_DURATION
      ? `Member must have value greater than or equal to ${STS_MIN_DURATION}`
      : value > STS_MAX_DURATION
        ? `Member must have value less than or equal to ${STS_MAX_DURATION}`
        : null;
  if (constraint) {
    throw badInput(
      `1 validation error detected: Value '${value}' at 'durationSeconds' failed to satisfy ` +
        `constraint: ${constraint}`,
    );
  }
  return value;
}

/** AWS's TokenCode shape: digits only; the device's own length is checked with the code. */
function checkTokenCode(raw: string): string {
  const code = raw.replace(/\s+/g, "");
  if (!/^\d{6,8}$/.test(code)) {
    throw badInput(
      "1 validation error detected: Value at 'tokenCode' failed to satisfy constraint: " +
        "Member must satisfy regular expression pattern: [\\d]{6,8}",
    );
  }
  return code;
}
