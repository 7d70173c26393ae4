/**
 * IAM's self-service policy made concrete. Every denial is the same FORBIDDEN error, so it
 * never tells whether the target exists.
 */
import type { GatewayContext, Principal } from "../context";
import { forbidden, unauthenticated } from "../errors";

export function requirePrincipal(ctx: GatewayContext): Principal {
  if (!ctx.principal) throw unauthenticated();
  return ctx.principal;
}

export const isAccountAdmin = (p: Principal) => p.isRoot || p.isAdmin;

/** Root and administrators manage every user of their own account. */
export function requireAccountAdmin(ctx: GatewayContext): Principal {
  const principal = requirePrincipal(ctx);
  if (!isAccountAdmin(principal)) throw forbidden();
  return principal;
}

export interface UserRef {
  id: string;
  accountId: string;
  isRoot: boolean;
}

/** May the principal act on this user at all (read, or manage their own device)? */
export function canActOnUser(principal: Principal, target: UserRef): boolean {
  if (principal.accountId !== target.accountId) return false;
  if (target.isRoot) return principal.isRoot;
  return isAccountAdmin(principal) || principal.userId === target.id;
}

/**
 * May the principal take a device away from this user (deactivate, or rotate it out)? As
 * canActOnUser, but a user removing their own device must have passed MFA in this session, so
 * a stolen password alone cannot strip or replace someone's second factor.
 */
export function canRemoveDeviceFrom(principal: Principal, target: UserRef): boolean {
  if (!canActOnUser(principal, target)) return false;
  return principal.userId !== target.id || principal.mfaAuthenticated;
}

/** Only a root session touches the root user's device (assigned to root, or named for it). */
export const canManageRootDevice = (principal: Principal) => principal.isRoot;
