/** TagMFADevice and UntagMFADevice: one device's tags, changed under its row lock. */
import type { Principal } from "../context";
import type { Db } from "../db";
import type { AuditService } from "../audit/audit.service";
import { badInput } from "../errors";
import { checkTags, MAX_TAGS, type Tag } from "../common/iam-names";
import type { RequestMeta } from "../users/user.service";
import { storedTags, type DeviceRow } from "./mfa-device.type";
import { noSuchDevice, type MfaDeviceService } from "./mfa-device.service";
import { mergeTags, removeTags } from "./tags";
import { deviceAuditEntry } from "./device-audit";

export class MfaDeviceTagService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly devices: MfaDeviceService,
  ) {}

  async tag(
    principal: Principal,
    serialNumber: string,
    tags: Tag[],
    meta: RequestMeta,
  ): Promise<DeviceRow> {
    // One bad tag fails the whole request, before anything is read or changed.
    const added = checkTags(tags.map(({ key, value }) => ({ key, value })));
    return this.change(
      principal,
      serialNumber,
      "TagMFADevice",
      meta,
      (existing) => mergeTags(existing, added),
      {
        tagCount: added.length,
      },
    );
  }

  async untag(
    principal: Principal,
    serialNumber: string,
    tagKeys: string[],
    meta: RequestMeta,
  ): Promise<DeviceRow> {
    if (tagKeys.length > MAX_TAGS) {
      throw badInput(
        "1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: " +
          `Member must have length less than or equal to ${MAX_TAGS}`,
      );
    }
    // The same rules as tag keys; repeating a key to remove is harmless, so it is not an error.
    const unique = [...new Map(tagKeys.map((k) => [k.toLowerCase(), k])).values()];
    checkTags(unique.map((key) => ({ key, value: "" })));
    return this.change(
      principal,
      serialNumber,
      "UntagMFADevice",
      meta,
      (existing) => removeTags(existing, unique),
      {
        tagCount: unique.length,
      },
    );
  }

  private async change(
    principal: Principal,
    serialNumber: string,
    action: string,
    meta: RequestMeta,
    update: (existing: Tag[]) => Tag[],
    detail: Record<string, number>,
  ): Promise<DeviceRow> {
    const device = await this.devices.findManageable(principal, serialNumber);
    return this.db.$transaction(async (tx) => {
      // Two concurrent tag calls must not lose each other's keys.
      const [locked] = await tx.$queryRaw<{ tags: unknown }[]>`
        SELECT "tags" FROM "VirtualMfaDevice" WHERE "id" = ${device.id}::uuid FOR UPDATE`;
      if (!locked) throw noSuchDevice(device.serialNumber);
      const tags = update(storedTags(locked.tags));
      const updated = await tx.virtualMfaDevice.update({
        where: { id: device.id },
        data: { tags: tags.map(({ key, value }) => ({ key, value })) },
        include: { user: true },
      });
      await this.audit.record(deviceAuditEntry(principal, action, device, meta, detail), tx);
      return updated;
    });
  }
}
