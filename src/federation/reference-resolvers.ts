/**
 * `__resolveReference` for the entities this subgraph owns. A reference resolves only to what
 * the caller could read through the ordinary queries; anything else, including a well-formed
 * reference to another account's entity, resolves to null, which says nothing about whether it
 * exists.
 */
import type { GatewayContext } from "../context";
import { canActOnUser, isAccountAdmin, requirePrincipal } from "../auth/access";
import { toVirtualMfaDevice, type VirtualMfaDevice } from "../mfa-devices/mfa-device.type";
import { toUser, type User } from "../users/user.type";
import type { ReferenceResolvers } from "./subgraph";

/** Representations are arbitrary JSON (`_Any`); only a sane string key is ever looked up. */
function keyOf(reference: unknown, field: string): string | null {
  const value = (reference as Record<string, unknown> | null)?.[field];
  return typeof value === "string" && value.length > 0 && value.length <= 2048 ? value : null;
}

export async function resolveUserReference(
  reference: unknown,
  ctx: GatewayContext,
): Promise<User | null> {
  const principal = requirePrincipal(ctx);
  const userId = keyOf(reference, "userId");
  if (userId === null) return null;
  const row = await ctx.loaders.users(principal.accountId).load(userId);
  return row && canActOnUser(principal, row) ? toUser(row) : null;
}

export async function resolveDeviceReference(
  reference: unknown,
  ctx: GatewayContext,
): Promise<VirtualMfaDevice | null> {
  const principal = requirePrincipal(ctx);
  const serialNumber = keyOf(reference, "serialNumber");
  if (serialNumber === null) return null;
  const row = await ctx.loaders.devices(principal.accountId).load(serialNumber);
  // As virtualMfaDevice(serialNumber): root and administrators see every device, a user theirs.
  const visible = row && (isAccountAdmin(principal) || row.userId === principal.userId);
  return visible ? toVirtualMfaDevice(row) : null;
}

export const REFERENCE_RESOLVERS: ReferenceResolvers = {
  User: { __resolveReference: resolveUserReference },
  VirtualMfaDevice: { __resolveReference: resolveDeviceReference },
};
