/**
 * Assigning devices to users: enable, resync, deactivate and rotate.
 *
 * Codes are checked by the worker before any lock is taken (a worker call can take seconds);
 * the decision is then re-checked under row locks, user first and devices after, the same order
 * everywhere, so two requests racing for one device or for a user's last free place cannot
 * both win, and never deadlock.
 */
import type { Principal } from "../context";
import type { Db } from "../db";
import type { AuditEntry, AuditService } from "../audit/audit.service";
import { deviceAuditEntry } from "./device-audit";
import { canAddDeviceTo, canRemoveDeviceFrom, isRecoverySession } from "../auth/access";
import { alreadyExists, ApiError, badInput, forbidden, limitExceeded, notFound } from "../errors";
import { checkSerialNumber } from "../common/iam-names";
import type { RequestMeta, UserService } from "../users/user.service";
import { lockUser } from "../users/user-lock";
import type { UserRow } from "../users/user.type";
import type { DeviceRow } from "./mfa-device.type";
import { isRootDevice, noSuchDevice, type MfaDeviceService } from "./mfa-device.service";
import { isReservedDeviceName } from "./serial-number";
import {
  normaliseCode,
  type AcceptedCode,
  type CodeVerificationService,
} from "./code-verification.service";

type Tx = Parameters<Parameters<Db["$transaction"]>[0]>[0];

export interface CodePair {
  authenticationCode1: string;
  authenticationCode2: string;
}

const inUse = () => alreadyExists("MFA Device is already in use.");
const noSuchUser = (userName: string) =>
  notFound(`The user with name ${userName} cannot be found.`);

export class MfaAssignmentService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly users: UserService,
    private readonly devices: MfaDeviceService,
    private readonly verification: CodeVerificationService,
  ) {}

  /** EnableMFADevice: two consecutive codes prove the user holds the device. */
  async enable(
    principal: Principal,
    input: CodePair & { userName: string; serialNumber: string },
    meta: RequestMeta,
  ): Promise<DeviceRow> {
    const { codes, user, device } = await this.loadCodeTarget(principal, input);
    if (isReservedDeviceName(device.name) && !user.isRoot) throw forbidden();
    // A recovery enables the new root device it created, never another device: one a plain
    // user created would make a seed that user holds root's second factor.
    if (isRecoverySession(principal) && !isRootDevice(device)) throw forbidden();
    if (device.userId !== null) throw inUse();
    const assignedBefore = await this.db.virtualMfaDevice.count({ where: { userId: user.id } });
    if (!canAddDeviceTo(principal, user, assignedBefore)) throw forbidden();
    const limit = await this.devicesPerUser(principal.accountId);
    if (assignedBefore >= limit) throw quotaExceeded(limit);

    const event = auditEvent(principal, "EnableMFADevice", device, user, meta);
    const accepted = await this.checked(event, () =>
      this.verification.checkCodes(device, "enrol", codes, meta),
    );
    return this.decide(async (tx) => {
      if (!(await lockUser(tx, user.id))) return noSuchUser(user.userName);
      const [locked] = await lockDevices(tx, [device.id]);
      if (!locked) return noSuchDevice(device.serialNumber);
      // The codes are spent whatever happens next; keep the watermark even when refusing.
      await this.verification.recordAcceptedStep(device.id, accepted, tx);
      if (locked.userId !== null) return inUse();
      const max = await this.devicesPerUser(principal.accountId, tx);
      const assigned = await tx.virtualMfaDevice.count({ where: { userId: user.id } });
      // Again under the lock: a first device enabled meanwhile makes this one a second.
      if (!canAddDeviceTo(principal, user, assigned)) return forbidden();
      if (assigned >= max) return quotaExceeded(max);
      const enabled = await tx.virtualMfaDevice.update({
        where: { id: device.id },
        data: { userId: user.id, enableDate: new Date() },
        include: { user: true },
      });
      await this.audit.record({ ...event, detail: { ...event.detail, drift: accepted.drift } }, tx);
      return enabled;
    });
  }

  /** ResyncMFADevice: two consecutive codes re-centre the stored drift. */
  async resync(
    principal: Principal,
    input: CodePair & { userName: string; serialNumber: string },
    meta: RequestMeta,
  ): Promise<DeviceRow> {
    const { codes, user, device } = await this.loadCodeTarget(principal, input);
    if (device.userId !== user.id) throw noSuchDevice(device.serialNumber);

    const event = auditEvent(principal, "ResyncMFADevice", device, user, meta);
    const accepted = await this.checked(event, () =>
      this.verification.verifyDeviceCode(device, "resync", codes, meta),
    );
    await this.audit.record({ ...event, detail: { ...event.detail, drift: accepted.drift } });
    return this.devices.findInAccount(principal, device.serialNumber);
  }

  /** DeactivateMFADevice: the device keeps its seed and may be enabled again. */
  async deactivate(
    principal: Principal,
    input: { serialNumber: string; userName?: string | null },
    meta: RequestMeta,
  ): Promise<DeviceRow> {
    checkSerialNumber(input.serialNumber);
    const user = await this.users.findVisible(principal, input.userName);
    if (!canRemoveDeviceFrom(principal, user)) throw forbidden();
    const device = await this.devices.findInAccount(principal, input.serialNumber);
    if (device.userId !== user.id) throw noSuchDevice(device.serialNumber);

    return this.decide(async (tx) => {
      if (!(await lockUser(tx, user.id))) return noSuchUser(user.userName);
      const [locked] = await lockDevices(tx, [device.id]);
      if (!locked || locked.userId !== user.id) return noSuchDevice(device.serialNumber);
      const deactivated = await tx.virtualMfaDevice.update({
        where: { id: device.id },
        data: { userId: null, enableDate: null },
        include: { user: true },
      });
      // Recovery codes stand in for a device. With the last one gone they would only wait,
      // valid, for the next: a set taken with the old phone would then work again.
      const remaining = await tx.virtualMfaDevice.count({ where: { userId: user.id } });
      if (remaining === 0) await tx.recoveryCode.deleteMany({ where: { userId: user.id } });
      await this.audit.record(auditEvent(principal, "DeactivateMFADevice", device, user, meta), tx);
      return deactivated;
    });
  }

  /**
   * Replaces a user's device in one transaction: the new one is proven with two codes, then
   * assigned while the old one is deactivated, so the user is never without a device and a
   * limit of one device per user never stands in the way.
   */
  async rotate(
    principal: Principal,
    input: CodePair & { userName: string; oldSerialNumber: string; newSerialNumber: string },
    meta: RequestMeta,
  ): Promise<{ enabled: DeviceRow; deactivated: DeviceRow }> {
    readCodes(input);
    checkSerialNumber(input.oldSerialNumber);
    checkSerialNumber(input.newSerialNumber);
    if (input.oldSerialNumber === input.newSerialNumber) {
      throw badInput("The new device must be a different device from the old one.");
    }
    const user = await this.users.findVisible(principal, input.userName);
    // It takes the old device away, so it needs what deactivating would need.
    if (!canRemoveDeviceFrom(principal, user)) throw forbidden();
    const oldDevice = await this.devices.findInAccount(principal, input.oldSerialNumber);
    if (oldDevice.userId !== user.id) throw noSuchDevice(oldDevice.serialNumber);
    const newDevice = await this.devices.findInAccount(principal, input.newSerialNumber);
    if (isReservedDeviceName(newDevice.name) && !user.isRoot) throw forbidden();
    if (newDevice.userId !== null) throw inUse();
    const codes = readCodes(input, newDevice);

    const event = auditEvent(principal, "RotateMFADevice", newDevice, user, meta);
    const accepted = await this.checked(event, () =>
      this.verification.checkCodes(newDevice, "enrol", codes, meta),
    );
    return this.decide(async (tx) => {
      if (!(await lockUser(tx, user.id))) return noSuchUser(user.userName);
      const locked = await lockDevices(tx, [oldDevice.id, newDevice.id]);
      const lockedNew = locked.find((d) => d.id === newDevice.id);
      const lockedOld = locked.find((d) => d.id === oldDevice.id);
      if (!lockedNew) return noSuchDevice(newDevice.serialNumber);
      await this.verification.recordAcceptedStep(newDevice.id, accepted, tx);
      if (lockedNew.userId !== null) return inUse();
      if (!lockedOld || lockedOld.userId !== user.id) return noSuchDevice(oldDevice.serialNumber);
      const deactivated = await tx.virtualMfaDevice.update({
        where: { id: oldDevice.id },
        data: { userId: null, enableDate: null },
        include: { user: true },
      });
      const enabled = await tx.virtualMfaDevice.update({
        where: { id: newDevice.id },
        data: { userId: user.id, enableDate: new Date() },
        include: { user: true },
      });
      await this.audit.record(
        {
          ...event,
          detail: {
            ...event.detail,
            oldSerialNumber: oldDevice.serialNumber,
            drift: accepted.drift,
          },
        },
        tx,
      );
      return { enabled, deactivated };
    });
  }

  /**
   * Enable and resync start alike: codes well-formed before any I/O, then the user and the
   * device as the caller may see them (unknown, foreign and forbidden refused the usual way).
   */
  private async loadCodeTarget(
    principal: Principal,
    input: CodePair & { userName: string; serialNumber: string },
  ) {
    readCodes(input);
    checkSerialNumber(input.serialNumber);
    const user = await this.users.findVisible(principal, input.userName);
    const device = await this.devices.findInAccount(principal, input.serialNumber);
    return { codes: readCodes(input, device), user, device };
  }

  /** Runs a code check, recording a refusal in the audit trail before passing it on. */
  private async checked(
    event: AuditEntry,
    check: () => Promise<AcceptedCode>,
  ): Promise<AcceptedCode> {
    try {
      return await check();
    } catch (error) {
      if (error instanceof ApiError) {
        const reason = error.extensions.reason;
        await this.audit.record({
          ...event,
          outcome: "failure",
          detail: {
            ...event.detail,
            error: error.code,
            ...(typeof reason === "string" ? { reason } : {}),
          },
        });
      }
      throw error;
    }
  }

  /**
   * Runs a decision in a transaction. A refusal is returned, not thrown, so what the
   * transaction recorded before refusing (a spent code's watermark) is committed; it is
   * thrown once the transaction is over.
   */
  private async decide<T>(work: (tx: Tx) => Promise<T | ApiError>): Promise<T> {
    const outcome = await this.db.$transaction(work);
    if (outcome instanceof ApiError) throw outcome;
    return outcome;
  }

  private async devicesPerUser(
    accountId: string,
    tx: Pick<Db, "account"> = this.db,
  ): Promise<number> {
    const account = await tx.account.findUniqueOrThrow({
      where: { id: accountId },
      select: { maxDevicesPerUser: true },
    });
    return account.maxDevicesPerUser;
  }
}

/** Code lengths some device shows: 6 by default, 8 for some. */
const ANY_DEVICE = { min: 6, max: 8 };

/**
 * The codes, normalised. Before any I/O their shape is checked against any device (digits, 6 to
 * 8 of them); once the device is loaded, against its own length. Checking 6 up front made 8-digit
 * devices unusable.
 */
function readCodes(input: CodePair, device?: { digits: number }) {
  const digits = device?.digits ?? ANY_DEVICE;
  return {
    code1: normaliseCode(input.authenticationCode1, "authenticationCode1", digits),
    code2: normaliseCode(input.authenticationCode2, "authenticationCode2", digits),
  };
}

const quotaExceeded = (limit: number) =>
  limitExceeded(`Cannot exceed quota for MFADevicesPerUser: ${limit}.`);

/** The audit entry of an assignment change: the device and the user it concerns. */
function auditEvent(
  principal: Principal,
  action: string,
  device: DeviceRow,
  user: UserRow,
  meta: RequestMeta,
) {
  return deviceAuditEntry(principal, action, device, meta, { userName: user.userName });
}

/** Locks device rows in id order, the one order every writer uses. */
function lockDevices(tx: Tx, ids: string[]) {
  const sorted = [...ids].sort();
  return tx.$queryRaw<{ id: string; userId: string | null }[]>`
    SELECT "id"::text AS "id", "userId" FROM "VirtualMfaDevice"
    WHERE "id" = ANY(${sorted}::uuid[]) ORDER BY "id" FOR UPDATE`;
}
