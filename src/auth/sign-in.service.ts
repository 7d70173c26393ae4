import type { Db } from "../db";
import type { AuditService } from "../audit/audit.service";
import { badInput, unauthenticated } from "../errors";
import type { RequestMeta } from "../users/user.service";
import type { UserRow } from "../users/user.type";
import { decoyPasswordHash, verifyPassword, PASSWORD_MAX_LENGTH } from "./password";
import type { IssuedSession, SessionService } from "./session.service";

export interface SignInRequest {
  email?: string;
  account?: string;
  userName?: string;
  password: string;
}

export type SignInOutcome = { status: "SIGNED_IN"; session: IssuedSession; user: UserRow };

/** One message for every failure, so sign-in never tells which part was wrong. */
const badCredentials = () => unauthenticated("Incorrect sign-in details.");

export class SignInService {
  constructor(
    private readonly db: Db,
    private readonly sessions: SessionService,
    private readonly audit: AuditService,
    private readonly sessionTtlSeconds: number,
  ) {}

  async signIn(request: SignInRequest, meta: RequestMeta): Promise<SignInOutcome> {
    if (request.password.length > PASSWORD_MAX_LENGTH) throw badCredentials();
    const user = await this.findUser(request);
    // Always pay for one hash, so an unknown user answers as slowly as a wrong password.
    const valid = await verifyPassword(
      request.password,
      user?.passwordHash ?? (await decoyPasswordHash()),
    );
    if (!user || !user.passwordHash || !valid) {
      await this.audit.record({
        accountId: user?.accountId ?? null,
        actorUserId: user?.id ?? null,
        action: "SignIn",
        entityType: "User",
        entityId: user?.id ?? null,
        outcome: "failure",
        ...meta,
      });
      throw badCredentials();
    }
    const session = await this.sessions.issue(user, {
      kind: "password",
      mfaAuthenticated: false,
      ttlSeconds: this.sessionTtlSeconds,
    });
    await this.audit.record({
      accountId: user.accountId,
      actorUserId: user.id,
      action: "SignIn",
      entityType: "User",
      entityId: user.id,
      outcome: "success",
      ...meta,
    });
    return { status: "SIGNED_IN", session, user };
  }

  private async findUser(request: SignInRequest) {
    if (request.email !== undefined) {
      if (request.account !== undefined || request.userName !== undefined) {
        throw badInput("Give either email (root) or account and userName, not both.");
      }
      const account = await this.db.account.findUnique({
        where: { email: request.email.trim().toLowerCase() },
        select: { id: true },
      });
      if (!account) return null;
      return this.db.user.findUnique({ where: { id: account.id } });
    }
    if (request.account === undefined || request.userName === undefined) {
      throw badInput("Give either email (root) or account and userName.");
    }
    if (request.account.length > 63 || request.userName.length > 128) return null;
    const account = await this.db.account.findFirst({
      where: /^\d{12}$/.test(request.account) ? { id: request.account } : { alias: request.account },
      select: { id: true },
    });
    if (!account) return null;
    const user = await this.db.user.findUnique({
      where: {
        accountId_userNameKey: { accountId: account.id, userNameKey: request.userName.toLowerCase() },
      },
    });
    // The root user signs in with the account email, never by name.
    return user && !user.isRoot ? user : null;
  }
}
