/**
 * Password guessing limits, for every check of a password: signIn, startRootRecovery (both
 * through SignInService.checkPassword) and changePassword.
 *
 * Two fixed-window budgets in Redis (src/common/redis-budgets.ts), each claimed *before* the
 * password is checked, so parallel guesses cannot slip past the limit, and counted only when
 * the password is wrong:
 * - per (user, source): one source may guess one user's password only so often;
 * - per source (IPv6: per /64): one source may not spray guesses over many users. Not per /48
 *   as well, unlike the budgets of rare, costly actions (sign-ups, recovery texts): a /48 on a
 *   mobile or cloud network holds many unrelated users, and one of them could then keep all
 *   the others from signing in.
 * There is deliberately no budget per user across all sources: anyone who knows a user name
 * could then keep its owner from signing in (Keycloak's and privacyIDEA's users' complaint in
 * totp-verifiers-compared.md). A user's password alone is not enough where MFA is on.
 */
import type { Claim, RedisBudgets } from "../common/redis-budgets";
import { sourceBucket } from "../common/source-bucket";

export interface PasswordAttemptLimits {
  /** Wrong passwords one source may try for one user per window. */
  perUserAndSource: number;
  /** Wrong passwords one source may try over all users per window. */
  perSource: number;
  windowSeconds: number;
}

/** An attempt allowed to go ahead; exactly one of its two ends is called once it is checked. */
export interface PasswordAttempt {
  /** A wrong password: counted in both budgets. */
  failed(): Promise<void>;
  /**
   * The right password: both claims are given back, and the user's earlier typos from this
   * source are forgiven; only the right password can do that, so it helps no guesser. The
   * source keeps its count, or a guesser could wipe it by signing in to an account of their own.
   */
  succeeded(): Promise<void>;
}

export class PasswordAttemptGuard {
  constructor(
    private readonly budgets: RedisBudgets,
    private readonly limits: PasswordAttemptLimits,
  ) {}

  /**
   * Claims one attempt for `identity` from the caller's address, or throws RATE_LIMITED with
   * the wait.
   */
  async begin(identity: string, sourceIp: string): Promise<PasswordAttempt> {
    const { perSource, perUserAndSource, windowSeconds } = this.limits;
    const source = sourceBucket(sourceIp);
    const [fromSource, userFromSource] = (await this.budgets.claim([
      this.budgets.budget("password_per_source", [source], perSource, windowSeconds),
      this.budgets.budget(
        "password_per_user_and_source",
        [identity, source],
        perUserAndSource,
        windowSeconds,
      ),
    ])) as [Claim, Claim];
    return {
      failed: () => this.budgets.settle([fromSource, userFromSource], "count"),
      succeeded: async () => {
        await Promise.all([
          this.budgets.settle([fromSource], "release"),
          this.budgets.settle([userFromSource], "forgive"),
        ]);
      },
    };
  }
}
