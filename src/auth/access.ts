/**
 * IAM's self-service policy made concrete. Every denial is the same FORBIDDEN error, so it
 * never tells whether the target exists.
 *
 * Sessions come in four kinds (src/auth/session-kind.ts). A "recovery" session, from a root
 * recovery with email and phone codes, may only replace root's device: every operation refuses
 * it unless its resolver opts in with `requirePrincipal(ctx, ALLOW_RECOVERY_SESSION)`, and even
 * then it acts on the root user alone. An "sts" session (getSessionToken) is a programmatic
 * credential: it never manages the root user's device.
 */
import type { GatewayContext, Principal } from "../context";
import { forbidden, unauthenticated } from "../errors";
import { SessionKind } from "./session-kind";

export interface PrincipalOptions {
  /** A root recovery session exists for this operation (create, enable, deactivate, delete). */
  allowRecovery?: boolean;
}

export const ALLOW_RECOVERY_SESSION: PrincipalOptions = { allowRecovery: true };

export function requirePrincipal(ctx: GatewayContext, options: PrincipalOptions = {}): Principal {
  const principal = ctx.principal;
  if (!principal) throw unauthenticated();
  if (isRecoverySession(principal) && !options.allowRecovery) throw forbidden();
  return principal;
}

export const isRecoverySession = (p: Principal) => p.kind === SessionKind.RECOVERY;

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
  // A recovery session is root's, and is for root's own device only.
  if (isRecoverySession(principal)) return principal.userId === target.id;
  if (target.isRoot) return canManageRootDevice(principal);
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

/**
 * May the principal give this user another device while they already have one? As
 * canActOnUser, but a user adding to their own second factors must have passed MFA in this
 * session: a session opened with the password before the first device was enabled must not let
 * whoever holds it enrol a device of their own beside the owner's.
 */
export function canAddDeviceTo(principal: Principal, target: UserRef, assigned: number): boolean {
  if (!canActOnUser(principal, target)) return false;
  return assigned === 0 || principal.userId !== target.id || principal.mfaAuthenticated;
}

/**
 * Only a root session touches the root user's device (assigned to root, or named for it), and
 * not one from getSessionToken: programmatic credentials cannot, as in AWS.
 */
export const canManageRootDevice = (principal: Principal) =>
  principal.isRoot && principal.kind !== SessionKind.STS;
