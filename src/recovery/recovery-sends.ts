/**
 * Limits on the messages that carry root recovery codes. Nothing verifies the email and phone
 * given to createAccount, so without these anyone could make accounts naming someone else's
 * phone and start recoveries: one text message and one email a minute per account, each a cost
 * to the operator (SMS pumping onto premium numbers) and a nuisance to the recipient.
 *
 * Each recovery counts one send, held before it is stored and given back only if it is not (the
 * messages then never go), in fixed-window budgets:
 * - per source (IPv6: per /64, and per /48 at a few times the limit), over all accounts;
 * - per recipient (the email address and the phone number). Accounts younger than
 *   ROOT_RECOVERY_NEW_ACCOUNT_DAYS share one budget per recipient, so fresh accounts made to
 *   name a victim's phone reach it only so often together; an older account has a budget of
 *   its own per recipient, so nobody can spend the owner's recoveries with accounts of their
 *   own.
 * - service-wide for accounts younger than ROOT_RECOVERY_NEW_ACCOUNT_DAYS together, a cap on
 *   what pumping through fresh accounts can cost (ROOT_RECOVERY_SENDS_SERVICE_WIDE); older
 *   accounts never meet it, so nobody can shut recovery off for them.
 * The per-account cooldown (ROOT_RECOVERY_COOLDOWN_SECONDS) still spaces one account's
 * recoveries out.
 */
import { ApiError, ErrorCode } from "../errors";
import type { Claim, RedisBudgets } from "../common/redis-budgets";

export interface RecoverySendLimits {
  perRecipient: number;
  perSource: number;
  serviceWide: number;
  windowSeconds: number;
  /** Accounts younger than this share each recipient's budget. */
  newAccountDays: number;
}

/** The account whose root is recovered, as its row holds it (email already lower-cased). */
export interface RecoveryTarget {
  accountId: string;
  createdAt: Date;
  email: string;
  phone: string;
}

const DAY_MS = 24 * 3600 * 1000;

/** Sends held for a recovery: counted once its messages are stored, else given back. */
export interface SendReservation {
  settle(sent: boolean): Promise<void>;
}

export class RecoverySendGuard {
  constructor(
    private readonly budgets: RedisBudgets,
    private readonly limits: RecoverySendLimits,
  ) {}

  /**
   * Holds one send for a recovery from `sourceIp` to the target's email and phone, or returns
   * the seconds to wait when a budget is spent (nothing is then held). Called before the
   * recovery's transaction, never inside it: these are Redis round trips, each up to a worker
   * deadline, and a slow Redis once outlasted the transaction's timeout, failing the request
   * after the sends were already counted.
   */
  async reserve(
    sourceIp: string,
    target: RecoveryTarget,
    now: Date,
  ): Promise<SendReservation | { retryAfterSeconds: number }> {
    const { perRecipient, perSource, serviceWide, windowSeconds, newAccountDays } = this.limits;
    const isNew = now.getTime() - target.createdAt.getTime() < newAccountDays * DAY_MS;
    const owner = isNew ? [] : [target.accountId];
    const recipient = (name: string, address: string) =>
      this.budgets.budget(name, [address, ...owner], perRecipient, windowSeconds);
    let claims: Claim[];
    try {
      claims = await this.budgets.claim([
        ...this.budgets.perSource("recovery_per_source", sourceIp, perSource, windowSeconds),
        recipient("recovery_per_email", target.email),
        recipient("recovery_per_phone", target.phone),
        // Last, so a caller refused by its own budgets never spends the service's. New accounts
        // only: they are what pumping needs in bulk, and a cap that established accounts shared
        // would let anyone shut root recovery off for everyone with throwaway accounts.
        ...(isNew
          ? [this.budgets.budget("recovery_service_wide", [], serviceWide, windowSeconds)]
          : []),
      ]);
    } catch (error) {
      if (error instanceof ApiError && error.code === ErrorCode.RATE_LIMITED) {
        return { retryAfterSeconds: Number(error.extensions.retryAfterSeconds) };
      }
      throw error;
    }
    // A send is never given back once its messages are stored: they will go out.
    return { settle: (sent) => this.budgets.settle(claims, sent ? "count" : "release") };
  }
}
