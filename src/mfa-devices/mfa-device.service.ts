/**
 * The account's inventory of virtual MFA devices: create (with the one showing of the secret),
 * find, list and delete. Assigning devices to users lives in mfa-assignment.service.ts.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { WorkerClient } from "../../worker/client";
import type { Principal } from "../context";
import type { Db } from "../db";
import type { GatewayConfig } from "../config";
import type { RedisBudgets } from "../common/redis-budgets";
import type { AuditService } from "../audit/audit.service";
import { canManageRootDevice, isAccountAdmin, isRecoverySession } from "../auth/access";
import {
  alreadyExists,
  ApiError,
  deleteConflict,
  ErrorCode,
  forbidden,
  limitExceeded,
  notFound,
} from "../errors";
import {
  checkDeviceName,
  checkNewSerialNumber,
  checkPath,
  checkSerialNumber,
  checkTags,
  type Tag,
} from "../common/iam-names";
import { checkPageSize, startAfter, toPage, type Page } from "../common/pagination";
import type { RequestMeta, UserService } from "../users/user.service";
import { AssignmentStatus, type DeviceRow } from "./mfa-device.type";
import { keyUri, qrCodePngBase64 } from "./otpauth";
import {
  accountOfSerialNumber,
  deviceSerialNumber,
  isReservedDeviceName,
  ROOT_DEVICE_NAME,
} from "./serial-number";
import { sortTags } from "./tags";
import { callWorker } from "./worker-call";
import { deviceAuditEntry } from "./device-audit";

/**
 * AWS caps virtual devices, assigned or not, at the account's user quota (5000 by default), so
 * an abandoned enrolment cannot be repeated without bound.
 */
export const DEFAULT_MAX_DEVICES_PER_ACCOUNT = 5000;
/**
 * Unassigned devices one non-administrator may have created and left so. They cannot list or
 * delete them, so without a bound one user could fill the account's quota; administrators can
 * clean up, and are not bound.
 */
export const MAX_UNASSIGNED_CREATED_PER_USER = 10;

export const noSuchDevice = (serialNumber: string) =>
  notFound(`MFA Device with serial number ${serialNumber} does not exist.`);

/** Devices that belong to root: assigned to it, or carrying the name reserved for it. */
export const isRootDevice = (device: DeviceRow) =>
  device.user?.isRoot === true || isReservedDeviceName(device.name);

export interface CreatedDevice {
  device: DeviceRow;
  base32StringSeed: string;
  otpauthUri: string;
  qrCodePng: string;
}

export interface PageArgs {
  first?: number | null;
  after?: string | null;
}

/** ALREADY_EXISTS answers to one plain user's createVirtualMfaDevice per hour. */
export const TAKEN_NAME_ANSWERS_PER_HOUR = 10;

export class MfaDeviceService {
  constructor(
    private readonly db: Db,
    private readonly worker: WorkerClient,
    private readonly audit: AuditService,
    private readonly users: UserService,
    private readonly config: Pick<GatewayConfig, "MFA_ISSUER">,
    private readonly logger: Logger,
    private readonly budgets: RedisBudgets,
    private readonly maxDevicesPerAccount = DEFAULT_MAX_DEVICES_PER_ACCOUNT,
  ) {}

  async create(
    principal: Principal,
    input: { virtualMfaDeviceName: string; path: string; tags: Tag[] },
    meta: RequestMeta,
  ): Promise<CreatedDevice> {
    const name = checkDeviceName(input.virtualMfaDeviceName);
    const path = checkPath(input.path);
    const tags = sortTags(checkTags(input.tags.map(({ key, value }) => ({ key, value }))));
    if (isReservedDeviceName(name) && !canManageRootDevice(principal)) throw forbidden();
    // A recovery session is for root's new device, which takes the reserved name exactly, at
    // the root path; any other device it made it could neither list nor delete.
    if (isRecoverySession(principal) && (name !== ROOT_DEVICE_NAME || path !== "/")) {
      throw forbidden();
    }
    const { accountId } = principal;
    const serialNumber = checkNewSerialNumber(deviceSerialNumber(accountId, path, name));
    const account = await this.db.account.findUniqueOrThrow({ where: { id: accountId } });
    // Cheap early refusals, so no seed is made for nothing; the transaction below decides.
    // Every read answers a plain user alike for a device that is not theirs and one that does
    // not exist, so a taken name must not tell them for free: the quota comes first (at it, a
    // taken name and a free one both answer LIMIT_EXCEEDED), and below it they hear
    // ALREADY_EXISTS, as AWS answers, only so often.
    await this.checkUnassignedLeftBy(principal, this.db);
    if (
      await this.db.virtualMfaDevice.findUnique({ where: { serialNumber }, select: { id: true } })
    ) {
      if (!isAccountAdmin(principal)) {
        await this.budgets.spend([
          this.budgets.budget(
            "device_name_taken_per_user",
            [principal.userId],
            TAKEN_NAME_ANSWERS_PER_HOUR,
            3600,
          ),
        ]);
      }
      throw deviceExists();
    }

    // The id comes first: the worker binds the sealed seed to it.
    const deviceId = randomUUID();
    const seed = await callWorker(
      this.worker,
      this.logger,
      { op: "provision", accountId, deviceId },
      meta.requestId,
    );
    const device = await this.db
      .$transaction(async (tx) => {
        // Serialises creates per account so two cannot both take the last place under the cap.
        await tx.$queryRaw`SELECT "id" FROM "Account" WHERE "id" = ${accountId} FOR NO KEY UPDATE`;
        const count = await tx.virtualMfaDevice.count({ where: { accountId } });
        if (count >= this.maxDevicesPerAccount) {
          throw limitExceeded(`Cannot exceed quota for MFADevices: ${this.maxDevicesPerAccount}.`);
        }
        await this.checkUnassignedLeftBy(principal, tx);
        const created = await tx.virtualMfaDevice.create({
          data: {
            id: deviceId,
            accountId,
            name,
            path,
            serialNumber,
            sealedSeed: seed.sealedSeed,
            keyId: seed.keyId,
            tags: tags.map(({ key, value }) => ({ key, value })),
            createdById: principal.userId,
          },
          include: { user: true },
        });
        await this.audit.record(
          deviceAuditEntry(principal, "CreateVirtualMFADevice", created, meta),
          tx,
        );
        return created;
      })
      .catch((error: { code?: string }) => {
        // A concurrent create of the same name and path: the unique serial decides.
        if (error.code === "P2002") throw deviceExists();
        throw error;
      });

    const otpauthUri = keyUri({
      issuer: this.config.MFA_ISSUER,
      deviceName: name,
      accountLabel: account.alias ?? accountId,
      base32Seed: seed.base32Seed,
      algorithm: device.algorithm,
      digits: device.digits,
      period: device.period,
    });
    return {
      device,
      base32StringSeed: seed.base32Seed,
      otpauthUri,
      qrCodePng: await qrCodePngBase64(otpauthUri),
    };
  }

  /**
   * A device of the caller's account by serial number. Another account's serial is refused
   * before any lookup, so the answer never says whether it exists there.
   */
  async findInAccount(principal: Principal, serialNumber: string): Promise<DeviceRow> {
    const serial = checkSerialNumber(serialNumber);
    const owner = accountOfSerialNumber(serial);
    if (owner !== null && owner !== principal.accountId) throw forbidden();
    const device = await this.db.virtualMfaDevice.findUnique({
      where: { serialNumber: serial },
      include: { user: true },
    });
    if (!isAccountAdmin(principal)) {
      // A user learns nothing of devices that are not theirs: missing and someone else's look
      // alike. An unassigned device stays reachable, to be enabled for oneself, unless another
      // plain user of the account created it: each wrong code tried would spend that device's
      // attempts, and a fresh device knows no source yet, so a colleague could lock it before
      // its owner enrols. Devices an administrator provisioned stay reachable, also once that
      // administrator is gone, and so do those of a deleted user or from before creators were
      // recorded.
      const inAccount = device?.accountId === principal.accountId;
      const theirs = inAccount && device.userId === principal.userId;
      const unassigned = inAccount && device.userId === null;
      const ownUnassigned = unassigned && device.createdById === principal.userId;
      // Asked whenever the device is not plainly the caller's, missing ones included, so the
      // time taken does not tell a missing device from someone else's.
      const closed =
        !theirs &&
        !ownUnassigned &&
        (await this.createdByPlainUser(device?.createdById ?? "", principal.accountId));
      const free = unassigned && !closed;
      if (!theirs && !free) throw forbidden();
    }
    if (!device || device.accountId !== principal.accountId) throw noSuchDevice(serial);
    return device;
  }

  /**
   * Whether `userId` is a current user of the account who is neither root nor an administrator.
   * A missing creator ("") is looked up too (and never found), so every caller takes one query.
   */
  private async createdByPlainUser(userId: string, accountId: string) {
    const creator = await this.db.user.findFirst({
      where: { id: userId, accountId, isRoot: false, isAdmin: false },
      select: { id: true },
    });
    return creator !== null;
  }

  /** Root and administrators see every device of the account; a user only their own. */
  async findVisible(principal: Principal, serialNumber: string): Promise<DeviceRow> {
    if (isAccountAdmin(principal)) return this.findInAccount(principal, serialNumber);
    // A user learns nothing about devices that are not theirs, not even whether they exist.
    const device = await this.findInAccount(principal, serialNumber).catch((error: unknown) => {
      throw error instanceof ApiError && error.code === ErrorCode.NOT_FOUND ? forbidden() : error;
    });
    if (device.userId !== principal.userId) throw forbidden();
    return device;
  }

  /** A device root and administrators may change; root's own device is for root alone. */
  async findManageable(principal: Principal, serialNumber: string): Promise<DeviceRow> {
    if (!isAccountAdmin(principal)) throw forbidden();
    const device = await this.findInAccount(principal, serialNumber);
    if (isRootDevice(device) && !canManageRootDevice(principal)) throw forbidden();
    return device;
  }

  /** ListVirtualMFADevices: keyset pages in serial number order, for root and administrators. */
  async list(
    principal: Principal,
    args: PageArgs & { assignmentStatus: AssignmentStatus },
  ): Promise<Page<DeviceRow>> {
    if (!isAccountAdmin(principal)) throw forbidden();
    const size = checkPageSize(args.first);
    const list = `devices:${args.assignmentStatus}`;
    const after = startAfter(args.after, list, principal.accountId);
    const where = {
      [AssignmentStatus.ASSIGNED]: { userId: { not: null } },
      [AssignmentStatus.UNASSIGNED]: { userId: null },
      [AssignmentStatus.ANY]: {},
    }[args.assignmentStatus];
    // Each order is that of the index serving the filter, so the planner walks it and stops
    // after one page. The leading columns are constant under the filter, so both are serial
    // number order. Unassigned devices sit together under userId NULL in (accountId, userId,
    // serialNumber); assigned ones are read from (accountId, serialNumber), skipping unassigned
    // rows, which the per-account device cap bounds.
    const orderBy =
      args.assignmentStatus === AssignmentStatus.UNASSIGNED
        ? [{ accountId: ASC }, { userId: ASC }, { serialNumber: ASC }]
        : [{ accountId: ASC }, { serialNumber: ASC }];
    // With accountId fixed, serial-number order is what every index above gives, and the
    // planner may walk the global unique index on serialNumber instead, filtering out every
    // device of the accounts whose serials sort first (measured: 21,000 rows and 8-17 ms for the
    // first page at 1,000,000 devices, against 0.2 ms). Every serial of an account begins with
    // its ARN prefix, and a string sorts at or after its own prefix in any collation, so this
    // lower bound drops no device of the account and lets either index start at its first one.
    const firstSerial = deviceSerialNumber(principal.accountId, "/", "");
    const rows = await this.db.virtualMfaDevice.findMany({
      where: {
        accountId: principal.accountId,
        ...where,
        serialNumber: after === undefined ? { gte: firstSerial } : { gt: after },
      },
      orderBy,
      take: size + 1,
      include: { user: true },
    });
    return toPage(rows, size, (d) => d.serialNumber, list, principal.accountId);
  }

  /** ListMFADevices: the devices assigned to one user (the caller by default). */
  async listForUser(
    principal: Principal,
    userName: string | null | undefined,
    args: PageArgs,
  ): Promise<Page<DeviceRow>> {
    const user = await this.users.findVisible(principal, userName);
    const size = checkPageSize(args.first);
    const list = `mfa-devices:${user.id}`;
    const after = startAfter(args.after, list, principal.accountId);
    const rows = await this.db.virtualMfaDevice.findMany({
      where: {
        accountId: principal.accountId,
        userId: user.id,
        ...(after === undefined ? {} : { serialNumber: { gt: after } }),
      },
      orderBy: [{ accountId: ASC }, { userId: ASC }, { serialNumber: ASC }],
      take: size + 1,
      include: { user: true },
    });
    return toPage(rows, size, (d) => d.serialNumber, list, principal.accountId);
  }

  /** MAX_UNASSIGNED_CREATED_PER_USER, for a principal that is not an administrator. */
  private async checkUnassignedLeftBy(
    principal: Principal,
    db: Pick<Db, "virtualMfaDevice">,
  ): Promise<void> {
    if (isAccountAdmin(principal)) return;
    const left = await db.virtualMfaDevice.count({
      where: { createdById: principal.userId, userId: null },
    });
    if (left >= MAX_UNASSIGNED_CREATED_PER_USER) {
      throw limitExceeded(
        `Cannot exceed quota for unassigned MFADevices created by one user: ${MAX_UNASSIGNED_CREATED_PER_USER}.`,
      );
    }
  }

  async delete(principal: Principal, serialNumber: string, meta: RequestMeta): Promise<void> {
    const device = await this.findManageable(principal, serialNumber);
    // A recovery session replaces root's device; it deletes no other.
    if (isRecoverySession(principal) && !isRootDevice(device)) throw forbidden();
    await this.db.$transaction(async (tx) => {
      const [locked] = await tx.$queryRaw<{ userId: string | null }[]>`
        SELECT "userId" FROM "VirtualMfaDevice" WHERE "id" = ${device.id}::uuid FOR UPDATE`;
      if (!locked) throw noSuchDevice(device.serialNumber);
      if (locked.userId !== null)
        throw deleteConflict("MFA VirtualDevice in use. Must deactivate first.");
      await tx.virtualMfaDevice.delete({ where: { id: device.id } });
      await this.audit.record(
        deviceAuditEntry(principal, "DeleteVirtualMFADevice", device, meta),
        tx,
      );
    });
    void this.forgetVerificationState(device.id, meta.requestId);
  }

  /**
   * Asks the worker to drop a deleted device's Redis state now rather than when its longest
   * memory lapses (210 days): with devices rotated and deleted at scale, that is most of what
   * Redis would hold. Best effort: the deletion has happened, and state left behind names a
   * device id that is never reused, so it only costs memory until it lapses.
   */
  private async forgetVerificationState(deviceId: string, requestId: string): Promise<void> {
    try {
      await this.worker.call({ op: "forget", deviceId }, { logContext: { requestId } });
    } catch (error) {
      this.logger.warn(
        { deviceId, requestId, err: error },
        "could not drop a deleted device's verification state; it lapses on its own",
      );
    }
  }
}

const ASC = "asc" as const;
const deviceExists = () => alreadyExists("MFA device already exists.");
