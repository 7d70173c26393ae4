/**
 * The one place the gateway checks TOTP codes: enrolment, resync and (for sign-in) login.
 *
 * It sends the device's sealed state to the auth worker, which decides with Redis TIME, and
 * turns every outcome into the product's typed errors. What it accepts it records in
 * PostgreSQL as the replay watermark, which only ever moves up, so a Redis restart cannot
 * reopen a used code.
 */
import { sourceBucket } from "../common/source-bucket";
import type { Logger } from "pino";
import {
  MAX_BURNT_STEPS,
  type DeviceState,
  type VerifyMode,
  type VerifyResult,
} from "../../worker/protocol";
import type { WorkerClient } from "../../worker/client";
import type { Db } from "../db";
import { badInput, invalidCode, rateLimited } from "../errors";
import { callWorker } from "./worker-call";

/** The columns of a device row that verification reads. Nothing in it is secret. */
export interface VerifiableDevice {
  id: string;
  accountId: string;
  sealedSeed: string;
  keyId: string;
  algorithm: string;
  digits: number;
  period: number;
  drift: number;
  lastStep: number | null;
  /** Steps burnt by CLOCK_SKEW answers (null from a raw query of a row older than the column). */
  burntSteps: number[] | null;
}

/** Enrol and resync need two consecutive codes; login needs one. */
export interface DeviceCodes {
  code1: string;
  code2?: string;
  /** The input fields the codes came in, for validation messages; AWS's names by default. */
  fieldNames?: { code1: string; code2?: string };
}

export interface VerificationMeta {
  requestId: string;
  /** Whoever is guessing gets their own attempt budget in the worker. */
  sourceIp: string;
}

export interface AcceptedCode {
  /** The highest step the codes proved; the new replay watermark. */
  step: number;
  /** Where the device's clock is, in steps from Redis's, as the worker measured it. */
  drift: number;
}

type Tx = Pick<Db, "$executeRaw">;

/**
 * Strips the spaces people type ("123 456") and insists on exactly `digits` digits. The
 * message names the field, never the value.
 */
export function normaliseCode(
  raw: string,
  field: string,
  digits: number | { min: number; max: number } = 6,
): string {
  const { min, max } = typeof digits === "number" ? { min: digits, max: digits } : digits;
  const code = raw.replace(/\s+/g, "");
  const constraint =
    code.length < min
      ? `Member must have length greater than or equal to ${min}`
      : code.length > max
        ? `Member must have length less than or equal to ${max}`
        : /^\d+$/.test(code)
          ? null
          : "Member must satisfy regular expression pattern: [\\d]+";
  if (constraint) {
    throw badInput(
      `1 validation error detected: Value at '${field}' failed to satisfy constraint: ${constraint}`,
    );
  }
  return code;
}

export class CodeVerificationService {
  constructor(
    private readonly db: Db,
    private readonly worker: WorkerClient,
    private readonly logger: Logger,
  ) {}

  /** Checks the codes and records the accepted step. Throws the typed error for any refusal. */
  async verifyDeviceCode(
    device: VerifiableDevice,
    mode: VerifyMode,
    codes: DeviceCodes,
    meta: VerificationMeta,
  ): Promise<AcceptedCode> {
    const accepted = await this.checkCodes(device, mode, codes, meta);
    await this.recordAcceptedStep(device.id, accepted);
    return accepted;
  }

  /**
   * Asks the worker only. For callers that must record the result in their own transaction
   * (enabling a device), together with `recordAcceptedStep(…, tx)`.
   */
  async checkCodes(
    device: VerifiableDevice,
    mode: VerifyMode,
    codes: DeviceCodes,
    meta: VerificationMeta,
  ): Promise<AcceptedCode> {
    const names = {
      code1: "authenticationCode1",
      code2: "authenticationCode2",
      ...codes.fieldNames,
    };
    const code1 = normaliseCode(codes.code1, names.code1, device.digits);
    const code2 =
      mode === "login"
        ? undefined
        : normaliseCode(codes.code2 ?? "", names.code2 ?? "authenticationCode2", device.digits);
    const result = await callWorker(
      this.worker,
      this.logger,
      {
        op: "verify",
        mode,
        device: deviceState(device),
        code1,
        code2,
        source: sourceBucket(meta.sourceIp),
      },
      meta.requestId,
    );
    if (result.outcome === "CLOCK_SKEW" && result.burntSteps?.length) {
      await this.recordBurntSteps(device.id, result.burntSteps);
    }
    return acceptedOrThrow(result);
  }

  /**
   * Keeps the steps a CLOCK_SKEW answer burnt beside the watermark: the worker's own copy lives
   * only in Redis, and a Redis that lost it would otherwise accept the recognised code once its
   * step came round, making the answer an oracle. Steps at or below the watermark are dropped
   * (it refuses them anyway), and only the highest MAX_BURNT_STEPS are kept.
   */
  private async recordBurntSteps(deviceId: string, steps: number[]): Promise<void> {
    await this.db.$executeRaw`
      UPDATE "VirtualMfaDevice"
      SET "burntSteps" = ARRAY(
        SELECT DISTINCT s FROM unnest(COALESCE("burntSteps", '{}') || ${steps}::int[]) AS s
        WHERE "lastStep" IS NULL OR s > "lastStep"
        ORDER BY s DESC LIMIT ${MAX_BURNT_STEPS})
      WHERE "id" = ${deviceId}::uuid`;
  }

  /**
   * Moves the watermark to `step` unless it is already higher, and keeps the drift that goes
   * with the highest step, so answers recorded out of order never move either backwards.
   */
  async recordAcceptedStep(
    deviceId: string,
    accepted: AcceptedCode,
    tx: Tx = this.db,
  ): Promise<void> {
    await tx.$executeRaw`
      UPDATE "VirtualMfaDevice"
      SET "drift" = CASE WHEN "lastStep" IS NULL OR "lastStep" <= ${accepted.step}
                         THEN ${accepted.drift}::int ELSE "drift" END,
          "lastStep" = GREATEST("lastStep", ${accepted.step}::int)
      WHERE "id" = ${deviceId}::uuid`;
  }

  /**
   * Claims an accepted step for a session: moves the watermark to `step` only while the device
   * is still `userId`'s and its watermark below `step`. False when another grant took this step
   * (or a later one) first, or the device was deactivated or deleted while its code was checked:
   * the worker's OK then grants nothing. Run it in the transaction that creates the session.
   */
  async claimAcceptedStep(
    deviceId: string,
    userId: string,
    accepted: AcceptedCode,
    tx: Tx = this.db,
  ): Promise<boolean> {
    const claimed = await tx.$executeRaw`
      UPDATE "VirtualMfaDevice" SET "lastStep" = ${accepted.step}::int, "drift" = ${accepted.drift}::int
      WHERE "id" = ${deviceId}::uuid AND "userId" = ${userId}
        AND ("lastStep" IS NULL OR "lastStep" < ${accepted.step}::int)`;
    return claimed === 1;
  }

  /**
   * Why a claim failed: another grant used this step (or a later one) first, so the code is
   * spent like any replayed one; or the device is no longer the user's.
   */
  async lostClaimReason(deviceId: string, userId: string): Promise<"REPLAYED" | "DEVICE_GONE"> {
    const stillTheirs = await this.db.virtualMfaDevice.count({ where: { id: deviceId, userId } });
    return stillTheirs === 0 ? "DEVICE_GONE" : "REPLAYED";
  }
}

/** The refusal of a code whose step another grant claimed first. */
export const replayedCode = () => invalidCode(undefined, { reason: "REPLAYED" });

/** What the worker needs to know about a device row; nothing in it is secret. */
export function deviceState(device: VerifiableDevice): DeviceState {
  return {
    deviceId: device.id,
    accountId: device.accountId,
    sealedSeed: device.sealedSeed,
    keyId: device.keyId,
    algorithm: device.algorithm as DeviceState["algorithm"],
    digits: device.digits as DeviceState["digits"],
    period: device.period,
    drift: device.drift,
    lastStep: device.lastStep,
    burntSteps: (device.burntSteps ?? [])
      .filter((step) => device.lastStep === null || step > device.lastStep)
      .slice(0, MAX_BURNT_STEPS),
  };
}

function acceptedOrThrow(result: VerifyResult): AcceptedCode {
  switch (result.outcome) {
    case "OK":
      return { step: result.step, drift: result.drift };
    case "INVALID":
      throw invalidCode();
    case "REPLAYED":
      throw replayedCode();
    case "CLOCK_SKEW":
      throw invalidCode(undefined, {
        reason: "CLOCK_SKEW",
        offsetSteps: result.offsetSteps,
        // What the device's clock was compared with, so an app can say how far off it is.
        ...(result.serverTime === undefined
          ? {}
          : { serverTime: new Date(result.serverTime).toISOString() }),
      });
    case "THROTTLED":
      throw rateLimited(result.retryAfterSeconds);
  }
}
