import type { Principal } from "../context";
import type { AuditEntry } from "../audit/audit.service";
import type { RequestMeta } from "../users/user.service";

export type AuditDetail = Record<string, string | number | boolean | null>;

/**
 * The audit entry of a successful device operation. The detail names the device by serial
 * number (never its seed); callers add what else the operation is about.
 */
export function deviceAuditEntry(
  principal: Principal,
  action: string,
  device: { id: string; serialNumber: string },
  meta: RequestMeta,
  detail: AuditDetail = {},
): AuditEntry & { detail: AuditDetail } {
  return {
    accountId: principal.accountId,
    actorUserId: principal.userId,
    action,
    entityType: "VirtualMfaDevice",
    entityId: device.id,
    outcome: "success",
    detail: { serialNumber: device.serialNumber, ...detail },
    ...meta,
  };
}
