/**
 * Password guessing limits, for every check of a password: signIn, startRootRecovery (both
 * through SignInService.checkPassword) and changePassword.
 *
 * Two fixed-window failure budgets in Redis (src/common/redis-budgets.ts), each spent *before*
 * the password is checked and given back when it turns out right, so parallel guesses cannot
 * slip past the limit and a user who types their password correctly never uses any of it:
 * - per (user, source): one source may guess one user's password only so often;
 * - per source: one source may not spray guesses over many users.
 * There is deliberately no budget per user across all sources: anyone who knows a user name
 * could then keep its owner from signing in (Keycloak's and privacyIDEA's users' complaint in
 * totp-verifiers-compared.md). A user's password alone is not enough where MFA is on.
 */
import type { RedisBudgets } from "../common/redis-budgets";

export interface PasswordAttemptLimits {
  /** Wrong passwords one source may try for one user per window. */
  perUserAndSource: number;
  /** Wrong passwords one source may try over all users per window. */
  perSource: number;
  windowSeconds: number;
}

/**
 * An attempt allowed to go ahead. `succeeded` gives its claim on the source's budget back and
 * forgives the user's earlier typos from that source: only the right password can, so this
 * helps no guesser. The source's budget keeps its failures, or a guesser could wipe it by
 * signing in to an account of their own between guesses.
 */
export interface PasswordAttempt {
  succeeded(): Promise<void>;
}

export class PasswordAttemptGuard {
  constructor(
    private readonly budgets: RedisBudgets,
    private readonly limits: PasswordAttemptLimits,
  ) {}

  /**
   * Spends one attempt for `identity` (a user id, or what the caller typed when no user
   * matched) from `source`, or throws RATE_LIMITED with the wait.
   */
  async begin(identity: string, source: string): Promise<PasswordAttempt> {
    const { perSource, perUserAndSource, windowSeconds } = this.limits;
    const fromSource = this.budgets.budget("pws", [source], perSource, windowSeconds);
    const userFromSource = this.budgets.budget(
      "pwu",
      [identity, source],
      perUserAndSource,
      windowSeconds,
    );
    await this.budgets.claimAll([fromSource, userFromSource]);
    return {
      succeeded: async () => {
        await Promise.all([this.budgets.refund(fromSource), this.budgets.clear(userFromSource)]);
      },
    };
  }
}
