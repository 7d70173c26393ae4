/**
 * Limits on the messages that carry root recovery codes. Nothing verifies the email and phone
 * given to createAccount, so without these anyone could make accounts naming someone else's
 * phone and start recoveries: one text message and one email a minute per account, each a cost
 * to the operator (SMS pumping onto premium numbers) and a nuisance to the recipient.
 *
 * Each recovery spends one send, never given back, from three fixed-window budgets: per
 * source, per email address and per phone number. The per-account cooldown
 * (ROOT_RECOVERY_COOLDOWN_SECONDS) still spaces one account's recoveries out.
 */
import { ApiError, ErrorCode } from "../errors";
import type { RedisBudgets } from "../common/redis-budgets";

export interface RecoverySendLimits {
  perRecipient: number;
  perSource: number;
  windowSeconds: number;
}

export class RecoverySendGuard {
  constructor(
    private readonly budgets: RedisBudgets,
    private readonly limits: RecoverySendLimits,
  ) {}

  /**
   * Spends one send for a recovery from `source` to `email` and `phone`. Returns 0 when the
   * messages may go, or the seconds to wait when a budget is spent (nothing is then counted).
   */
  async claim(source: string, email: string, phone: string): Promise<number> {
    const { perRecipient, perSource, windowSeconds } = this.limits;
    try {
      await this.budgets.claimAll([
        this.budgets.budget("rcs", [source], perSource, windowSeconds),
        this.budgets.budget("rce", [email.trim().toLowerCase()], perRecipient, windowSeconds),
        this.budgets.budget("rcp", [phone.replace(/[^\d+]/g, "")], perRecipient, windowSeconds),
      ]);
      return 0;
    } catch (error) {
      if (error instanceof ApiError && error.code === ErrorCode.RATE_LIMITED) {
        return Number(error.extensions.retryAfterSeconds);
      }
      throw error;
    }
  }
}
