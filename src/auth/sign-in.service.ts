import type { Db } from "../db";
import type { User as UserRecord } from "../../generated/prisma/client";
import type { AuditService } from "../audit/audit.service";
import { ACCOUNT_ID_PATTERN } from "../common/iam-names";
import { badInput, isForeignKeyViolation, unauthenticated } from "../errors";
import type { RequestMeta } from "../users/user.service";
import type { UserRow } from "../users/user.type";
import type { IssuedChallenge, MfaChallengeService } from "./mfa-challenge.service";
import type { PasswordAttemptGuard } from "./password-attempts";
import { decoyPasswordHash, verifyPassword, PASSWORD_MAX_LENGTH } from "./password";
import type { IssuedSession, SessionService } from "./session.service";
import { SessionKind } from "./session-kind";

export interface SignInRequest {
  email?: string;
  account?: string;
  userName?: string;
  password: string;
}

export type SignInOutcome =
  | { status: "SIGNED_IN"; session: IssuedSession; user: UserRow }
  | { status: "MFA_REQUIRED"; challenge: IssuedChallenge; user: UserRow };

/** One message for every failure, so sign-in never tells which part was wrong. */
export const badCredentials = () => unauthenticated("Incorrect sign-in details.");

export class SignInService {
  constructor(
    private readonly db: Db,
    private readonly sessions: SessionService,
    private readonly challenges: MfaChallengeService,
    private readonly audit: AuditService,
    private readonly attempts: PasswordAttemptGuard,
    private readonly sessionTtlSeconds: number,
  ) {}

  /** Password first; a user with an enabled MFA device gets a challenge, not a session. */
  async signIn(request: SignInRequest, meta: RequestMeta): Promise<SignInOutcome> {
    const user = await this.checkPassword(request, meta, "SignIn");
    try {
      return await this.admit(user, meta);
    } catch (error) {
      // The user was deleted while the password was being checked: to the caller, as if the
      // user had never been there.
      if (isForeignKeyViolation(error)) throw badCredentials();
      throw error;
    }
  }

  /** A challenge for a user with a device, a session for one without. */
  private async admit(user: UserRow, meta: RequestMeta): Promise<SignInOutcome> {
    const devices = await this.db.virtualMfaDevice.findMany({
      where: { userId: user.id },
      select: { serialNumber: true },
      orderBy: { serialNumber: "asc" },
    });
    const event = {
      accountId: user.accountId,
      actorUserId: user.id,
      action: "SignIn",
      entityType: "User",
      entityId: user.id,
      outcome: "success" as const,
      ...meta,
    };
    if (devices.length > 0) {
      const challenge = await this.challenges.issue(
        user,
        devices.map((d) => d.serialNumber),
      );
      await this.audit.record({ ...event, detail: { mfaRequired: true } });
      return { status: "MFA_REQUIRED", challenge, user };
    }
    const session = await this.sessions.issue(user, {
      kind: SessionKind.PASSWORD,
      mfaAuthenticated: false,
      ttlSeconds: this.sessionTtlSeconds,
    });
    await this.audit.record({ ...event, detail: { mfaRequired: false } });
    return { status: "SIGNED_IN", session, user };
  }

  /**
   * Checks a password and returns its user, or records the failure under `action` and throws
   * one UNAUTHENTICATED for every cause. Also the first step of root recovery. Each check
   * spends a guess first (RATE_LIMITED when none is left); a right password gives it back.
   */
  async checkPassword(request: SignInRequest, meta: RequestMeta, action: string): Promise<UserRow> {
    if (request.password.length > PASSWORD_MAX_LENGTH) throw badCredentials();
    const { user, identity } = await this.findUser(request);
    const attempt = await this.attempts.begin(identity, meta.sourceIp);
    // Always pay for one hash, so an unknown user answers as slowly as a wrong password.
    const valid = await verifyPassword(
      request.password,
      user?.passwordHash ?? (await decoyPasswordHash()),
    );
    if (!user || !user.passwordHash || !valid) {
      await attempt.failed();
      await this.audit.record({
        accountId: user?.accountId ?? null,
        actorUserId: user?.id ?? null,
        action,
        entityType: "User",
        entityId: user?.id ?? null,
        outcome: "failure",
        ...meta,
      });
      throw badCredentials();
    }
    await attempt.succeeded();
    return user;
  }

  /**
   * The user a request names, if any, and the identity its guesses are counted under. The
   * identity depends only on how the name resolves as far as the account, never on whether the
   * user exists, so the limits cannot tell anyone which users exist: every way of naming one
   * user (account id or alias, any case of the user name) counts as one, for real and unknown
   * users alike.
   */
  private async findUser(
    request: SignInRequest,
  ): Promise<{ user: UserRecord | null; identity: string }> {
    if (request.email !== undefined && request.email !== null) {
      if (request.account != null || request.userName != null) {
        throw badInput("Give either email (root) or account and userName, not both.");
      }
      const email = request.email.trim().toLowerCase();
      const identity = `email:${email}`;
      if (request.email.length > 254) return { user: null, identity };
      const account = await this.db.account.findUnique({ where: { email }, select: { id: true } });
      if (!account) return { user: null, identity };
      // The root user's id is its account's id.
      return { user: await this.db.user.findUnique({ where: { id: account.id } }), identity };
    }
    if (request.account == null || request.userName == null) {
      throw badInput("Give either email (root) or account and userName.");
    }
    const userNameKey = request.userName.toLowerCase();
    const typed = { user: null, identity: `typed:${request.account}/${userNameKey}` };
    if (request.account.length > 63 || request.userName.length > 128) return typed;
    const account = await this.db.account.findFirst({
      where: ACCOUNT_ID_PATTERN.test(request.account)
        ? { id: request.account }
        : { alias: request.account },
      select: { id: true },
    });
    if (!account) return typed;
    const identity = `account:${account.id}/${userNameKey}`;
    const user = await this.db.user.findUnique({
      where: { accountId_userNameKey: { accountId: account.id, userNameKey } },
    });
    // The root user signs in with the account email, never by name.
    return { user: user && !user.isRoot ? user : null, identity };
  }
}
