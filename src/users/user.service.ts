import { isBareEmailAddress } from "../common/email";
import { randomBytes } from "node:crypto";
import type { Db } from "../db";
import type { Principal } from "../context";
import type { AuditService } from "../audit/audit.service";
import { canActOnUser, isAccountAdmin } from "../auth/access";
import { checkPasswordRules } from "../auth/password-rules";
import { hashPassword } from "../auth/password";
import { alreadyExists, badInput, deleteConflict, forbidden, notFound } from "../errors";
import {
  checkExistingUserName,
  checkNewUserName,
  checkPath,
  checkPathPrefix,
} from "../common/iam-names";
import { checkPageSize, startAfter, toPage, type Page } from "../common/pagination";
import type { UserRow } from "./user.type";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** AWS user ids are AIDA + 17 base32 characters. */
export function newUserId(): string {
  const bytes = randomBytes(17);
  return "AIDA" + Array.from(bytes, (b) => BASE32[b & 31]).join("");
}

export const userArn = (accountId: string, path: string, userName: string) =>
  `arn:aws:iam::${accountId}:user${path}${userName}`;

/** An address to send notices to; lower-cased, as account emails are. */
function checkNoticeEmail(raw: string): string {
  const email = raw.trim().toLowerCase();
  if (!isBareEmailAddress(email)) {
    throw badInput("The email address is not valid.");
  }
  return email;
}

const noSuchUser = (userName: string) =>
  notFound(`The user with name ${userName} cannot be found.`);

export interface RequestMeta {
  requestId: string;
  sourceIp: string;
}

export class UserService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
  ) {}

  async create(
    principal: Principal,
    input: {
      userName: string;
      path: string;
      password?: string | null;
      isAdministrator: boolean;
      email?: string | null;
    },
    meta: RequestMeta,
  ): Promise<UserRow> {
    const userName = checkNewUserName(input.userName);
    const path = checkPath(input.path);
    if (input.password != null) checkPasswordRules(input.password);
    const email = input.email == null ? null : checkNoticeEmail(input.email);
    const existing = await this.db.user.findUnique({
      where: {
        accountId_userNameKey: {
          accountId: principal.accountId,
          userNameKey: userName.toLowerCase(),
        },
      },
      select: { id: true },
    });
    if (existing) throw alreadyExists(`User with name ${userName} already exists.`);
    const passwordHash = input.password == null ? null : await hashPassword(input.password);
    const user = await this.db.user
      .create({
        data: {
          id: newUserId(),
          accountId: principal.accountId,
          userName,
          userNameKey: userName.toLowerCase(),
          path,
          arn: userArn(principal.accountId, path, userName),
          isAdmin: input.isAdministrator,
          passwordHash,
          email,
        },
      })
      .catch((error: { code?: string }) => {
        // Two concurrent creates of the same name: the unique index decides, as IAM would.
        if (error.code === "P2002")
          throw alreadyExists(`User with name ${userName} already exists.`);
        throw error;
      });
    await this.audit.record({
      accountId: principal.accountId,
      actorUserId: principal.userId,
      action: "CreateUser",
      entityType: "User",
      entityId: user.id,
      outcome: "success",
      ...meta,
    });
    return user;
  }

  /** Finds a user the principal may see; unknown and foreign users are NOT_FOUND alike. */
  async findVisible(principal: Principal, userName?: string | null): Promise<UserRow> {
    if (userName === undefined || userName === null) {
      const self = await this.db.user.findUnique({ where: { id: principal.userId } });
      if (!self) throw noSuchUser("(caller)");
      return self;
    }
    const name = checkExistingUserName(userName);
    const user = await this.findByName(principal.accountId, name);
    if (!user) {
      if (!isAccountAdmin(principal)) throw forbidden();
      throw noSuchUser(name);
    }
    if (!canActOnUser(principal, user)) throw forbidden();
    return user;
  }

  findByName(accountId: string, userName: string): Promise<UserRow | null> {
    return this.db.user.findUnique({
      where: { accountId_userNameKey: { accountId, userNameKey: userName.toLowerCase() } },
    });
  }

  async list(
    principal: Principal,
    args: { pathPrefix?: string | null; first?: number | null; after?: string | null },
  ): Promise<Page<UserRow>> {
    const pathPrefix = checkPathPrefix(args.pathPrefix ?? "/");
    const size = checkPageSize(args.first);
    const list = `users:${pathPrefix}`;
    const after = startAfter(args.after, list, principal.accountId);
    const rows = await this.db.user.findMany({
      where: {
        accountId: principal.accountId,
        path: { startsWith: likeLiteral(pathPrefix) },
        // Administrators may not read root (user(userName: "root") is FORBIDDEN to them), so
        // their list leaves it out, as AWS's ListUsers always does.
        ...(principal.isRoot ? {} : { isRoot: false }),
        ...(after === undefined ? {} : { userNameKey: { gt: after } }),
      },
      orderBy: { userNameKey: "asc" },
      take: size + 1,
    });
    return toPage(rows, size, (u) => u.userName.toLowerCase(), list, principal.accountId);
  }

  async delete(principal: Principal, userName: string, meta: RequestMeta): Promise<void> {
    const name = checkExistingUserName(userName);
    const user = await this.findByName(principal.accountId, name);
    if (!user) throw noSuchUser(name);
    if (user.isRoot) throw forbidden();
    await this.db.$transaction(async (tx) => {
      // Lock the user row so a device cannot be enabled for them while they are deleted.
      await tx.$queryRaw`SELECT id FROM "User" WHERE id = ${user.id} FOR UPDATE`;
      const devices = await tx.virtualMfaDevice.count({ where: { userId: user.id } });
      if (devices > 0) throw deleteConflict("Cannot delete entity, must delete MFA device first.");
      await tx.user.delete({ where: { id: user.id } });
      await this.audit.record(
        {
          accountId: principal.accountId,
          actorUserId: principal.userId,
          action: "DeleteUser",
          entityType: "User",
          entityId: user.id,
          outcome: "success",
          ...meta,
        },
        tx,
      );
    });
  }
}

/**
 * Prisma's `startsWith` becomes SQL LIKE without escaping its wildcards, so `/%` would list
 * every path. A path prefix is literal (as in AWS): escape LIKE's characters with its default
 * escape, the backslash.
 */
function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, "\\$&");
}
