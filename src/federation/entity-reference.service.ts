/**
 * The database reads behind `_entities`: many references in one query per type, always within
 * one account, so a reference to another account's entity is simply not found.
 */
import type { Db } from "../db";
import type { DeviceRow } from "../mfa-devices/mfa-device.type";
import type { UserRow } from "../users/user.type";

export class EntityReferenceService {
  constructor(private readonly db: Db) {}

  usersById(accountId: string, userIds: readonly string[]): Promise<UserRow[]> {
    return this.db.user.findMany({ where: { accountId, id: { in: [...userIds] } } });
  }

  devicesBySerialNumber(accountId: string, serialNumbers: readonly string[]): Promise<DeviceRow[]> {
    return this.db.virtualMfaDevice.findMany({
      where: { accountId, serialNumber: { in: [...serialNumbers] } },
      include: { user: true },
    });
  }
}
