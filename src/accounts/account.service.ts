import { isBareEmailAddress } from "../common/email";
import { randomInt } from "node:crypto";
import type { Db } from "../db";
import type { AuditService } from "../audit/audit.service";
import { hashPassword } from "../auth/password";
import { checkPasswordRules } from "../auth/password-rules";
import { ACCOUNT_ID_PATTERN } from "../common/iam-names";
import { alreadyExists, badInput } from "../errors";
import type { RequestMeta } from "../users/user.service";
import type { Principal } from "../context";
import type { RedisBudgets } from "../common/redis-budgets";

/** How many sign-ups one source may make per window (ACCOUNT_SIGNUPS_PER_SOURCE…). */
export interface SignUpLimits {
  perSource: number;
  windowSeconds: number;
}

const PHONE_PATTERN = /^\+[1-9]\d{6,14}$/;
/** AWS's account alias rule: lower-case letters, digits and single hyphens, 3–63 long. */
const ALIAS_PATTERN = /^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$/;

/** AWS allows up to eight MFA devices per identity. */
export const MAX_DEVICES_PER_USER_LIMIT = 8;

export const rootArn = (accountId: string) => `arn:aws:iam::${accountId}:root`;

function newAccountId(): string {
  return (
    String(randomInt(1, 10 ** 6)).padStart(6, "0") + String(randomInt(0, 10 ** 6)).padStart(6, "0")
  );
}

export interface NewAccount {
  email: string;
  phone: string;
  password: string;
  accountAlias?: string | null;
}

export class AccountService {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditService,
    private readonly budgets: RedisBudgets,
    private readonly signUps: SignUpLimits,
  ) {}

  /**
   * Public sign-up: the account and its root user, in one transaction.
   *
   * Each attempt that passes the input checks spends one of its source's sign-ups first,
   * whatever it then answers: every account can start root recoveries that text its phone,
   * every password hash costs real CPU (scrypt), and ALREADY_EXISTS tells whether an email has an
   * account, so neither may be had without limit.
   */
  async create(input: NewAccount, meta: RequestMeta) {
    const email = input.email.trim().toLowerCase();
    if (!isBareEmailAddress(email)) throw badInput("The email address is not valid.");
    if (!PHONE_PATTERN.test(input.phone)) {
      throw badInput("The phone number must be in E.164 form, for example +14155550100.");
    }
    if (input.accountAlias != null && !ALIAS_PATTERN.test(input.accountAlias)) {
      throw badInput(
        "The account alias must be 3 to 63 lower-case letters, digits and single hyphens, " +
          "starting and ending with a letter or digit.",
      );
    }
    // Sign-in reads twelve digits as an account id, so such an alias could never be used, and
    // it could pose as another account's id.
    if (input.accountAlias != null && ACCOUNT_ID_PATTERN.test(input.accountAlias)) {
      throw badInput("The account alias must not be twelve digits: that is an account id.");
    }
    checkPasswordRules(input.password);
    const { perSource, windowSeconds } = this.signUps;
    await this.budgets.spend(
      this.budgets.perSource("signup_per_source", meta.sourceIp, perSource, windowSeconds),
    );
    const passwordHash = await hashPassword(input.password);
    const accountId = newAccountId();
    try {
      return await this.db.$transaction(async (tx) => {
        const account = await tx.account.create({
          data: { id: accountId, email, phone: input.phone, alias: input.accountAlias ?? null },
        });
        const root = await tx.user.create({
          data: {
            id: accountId,
            accountId,
            userName: "root",
            userNameKey: "root",
            path: "/",
            arn: rootArn(accountId),
            isRoot: true,
            passwordHash,
          },
        });
        await this.audit.record(
          {
            accountId,
            actorUserId: root.id,
            action: "CreateAccount",
            entityType: "Account",
            entityId: accountId,
            outcome: "success",
            ...meta,
          },
          tx,
        );
        return { account, root };
      });
    } catch (error) {
      if ((error as { code?: string }).code === "P2002") {
        // Email or alias taken (an id collision is 1 in 10^12 and surfaces the same way).
        throw alreadyExists("An account with this email or alias already exists.");
      }
      throw error;
    }
  }

  /** Root and administrators only; the caller is checked by the resolver. */
  async updateSettings(
    principal: Principal,
    input: { maxDevicesPerUser: number },
    meta: RequestMeta,
  ) {
    const max = input.maxDevicesPerUser;
    if (!Number.isInteger(max) || max < 1 || max > MAX_DEVICES_PER_USER_LIMIT) {
      throw badInput(
        "1 validation error detected: Value at 'maxDevicesPerUser' failed to satisfy constraint: " +
          `Member must have value between 1 and ${MAX_DEVICES_PER_USER_LIMIT}`,
      );
    }
    // Lowering the limit keeps devices already assigned; it only stops new ones.
    return this.db.$transaction(async (tx) => {
      const account = await tx.account.update({
        where: { id: principal.accountId },
        data: { maxDevicesPerUser: max },
      });
      await this.audit.record(
        {
          accountId: principal.accountId,
          actorUserId: principal.userId,
          action: "UpdateAccountSettings",
          entityType: "Account",
          entityId: principal.accountId,
          outcome: "success",
          detail: { maxDevicesPerUser: max },
          ...meta,
        },
        tx,
      );
      return account;
    });
  }
}
