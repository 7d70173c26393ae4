/**
 * Ending a compromise: a user changes their own password (like AWS IAM ChangePassword), and an
 * administrator signs a user out of every session. Both end the sessions a thief may hold; the
 * security notices (wrong MFA codes after a correct password, a root recovery) tell users to do
 * exactly this.
 */
import type { Principal } from "../context";
import type { Db } from "../db";
import type { AuditEntry, AuditService } from "../audit/audit.service";
import { badInput, forbidden, unauthenticated } from "../errors";
import { passwordChangedNotice, signedOutByAdministratorNotice } from "../notifications/messages";
import { enqueue, noticeRecipient, securityNotice } from "../notifications/outbox";
import { voidPendingRecoveries } from "../recovery/root-recovery.service";
import type { RequestMeta } from "../users/user.service";
import { lockUser } from "../users/user-lock";
import type { UserRow } from "../users/user.type";
import { canActOnUser, canManageRootDevice } from "./access";
import { hashPassword, verifyPassword } from "./password";
import type { PasswordAttemptGuard } from "./password-attempts";
import { checkPasswordRules } from "./password-rules";
import type { SessionService } from "./session.service";

export interface PasswordChange {
  currentPassword: string;
  newPassword: string;
}

export class CredentialService {
  constructor(
    private readonly db: Db,
    private readonly sessions: SessionService,
    private readonly audit: AuditService,
    private readonly attempts: PasswordAttemptGuard,
  ) {}

  /**
   * Sets the caller's new password and signs out every other session of theirs. A user with an
   * MFA device must have passed MFA in this session: the password alone must not be enough to
   * take the account over.
   */
  async changePassword(
    principal: Principal,
    change: PasswordChange,
    meta: RequestMeta,
  ): Promise<number> {
    const user = await this.db.user.findUnique({
      where: { id: principal.userId },
      include: { _count: { select: { devices: true } } },
    });
    if (!user) throw forbidden();
    if (user._count.devices > 0 && !principal.mfaAuthenticated) throw forbidden();
    // Root's password is root's credential like its device and recovery codes: a programmatic
    // (getSessionToken) session may manage none of them. With the password, a leaked token
    // could otherwise change it and sign the owner out for good (recovery needs the password).
    if (user.isRoot && !canManageRootDevice(principal)) throw forbidden();
    const currentHash = user.passwordHash;
    // A stolen session must not become a password oracle: guesses spend the sign-in budget.
    const attempt = await this.attempts.begin(`user:${user.id}`, meta.sourceIp);
    if (!currentHash || !(await verifyPassword(change.currentPassword, currentHash))) {
      await attempt.failed();
      // Audited like a failed sign-in: a session guessing its own password is worth seeing.
      await this.audit.record({
        ...userEvent(principal, user, "ChangePassword", meta),
        outcome: "failure",
        detail: { error: "WRONG_CURRENT_PASSWORD" },
      });
      throw badInput("The current password is not correct.", "InvalidInput");
    }
    await attempt.succeeded();
    checkPasswordRules(change.newPassword);
    if (change.newPassword === change.currentPassword) {
      throw badInput(
        "The new password must differ from the current one.",
        "PasswordPolicyViolation",
      );
    }
    const passwordHash = await hashPassword(change.newPassword);
    return this.db.$transaction(async (tx) => {
      if (!(await lockUser(tx, user.id))) throw forbidden();
      // Under the lock: of two concurrent changes from the same current password, the second
      // finds it changed (and its own session ended) and changes nothing.
      const live = await tx.session.count({
        where: { id: principal.sessionId, revokedAt: null },
      });
      const changed = await tx.user.updateMany({
        where: { id: user.id, passwordHash: currentHash },
        data: { passwordHash },
      });
      if (live !== 1 || changed.count !== 1) {
        throw unauthenticated("The password was changed meanwhile. Sign in again.");
      }
      const signedOut = await this.sessions.revokeAllOf(tx, user.id, principal.sessionId);
      // A root recovery in progress started from the old password: it goes too.
      if (user.isRoot) await voidPendingRecoveries(tx, user.accountId, new Date());
      await this.audit.record(
        {
          ...userEvent(principal, user, "ChangePassword", meta),
          detail: { sessionsSignedOut: signedOut },
        },
        tx,
      );
      const to = await noticeRecipient(tx, user.id);
      if (to) {
        const message = passwordChangedNotice(to, signedOut, meta.sourceIp);
        await enqueue(tx, securityNotice(to, "password-changed", message));
      }
      return signedOut;
    });
  }

  /**
   * Ends every session of `target`, the caller's own included when it is theirs. For root and
   * administrators (the resolver checks that); root's sessions only by root.
   */
  async signOutUser(principal: Principal, target: UserRow, meta: RequestMeta): Promise<number> {
    if (!canActOnUser(principal, target)) throw forbidden();
    return this.db.$transaction(async (tx) => {
      const signedOut = await this.sessions.revokeAllOf(tx, target.id);
      await this.audit.record(
        {
          ...userEvent(principal, target, "SignOutUser", meta),
          detail: { sessionsSignedOut: signedOut },
        },
        tx,
      );
      const to = await noticeRecipient(tx, target.id);
      if (to && signedOut > 0) {
        const message = signedOutByAdministratorNotice(to, signedOut);
        await enqueue(tx, securityNotice(to, "signed-out-by-administrator", message));
      }
      return signedOut;
    });
  }
}

function userEvent(
  principal: Principal,
  target: { id: string },
  action: string,
  meta: RequestMeta,
): AuditEntry {
  return {
    accountId: principal.accountId,
    actorUserId: principal.userId,
    action,
    entityType: "User",
    entityId: target.id,
    outcome: "success",
    ...meta,
  };
}
