/**
 * Password guessing limits, for every check of a password: signIn, startRootRecovery (both
 * through SignInService.checkPassword) and changePassword.
 *
 * Two fixed-window failure budgets in Redis, each spent *before* the password is checked and
 * given back when it turns out right, so parallel guesses cannot slip past the limit and a user
 * who types their password correctly never uses any of it:
 * - per (user, source): one source may guess one user's password only so often;
 * - per source: one source may not spray guesses over many users.
 * There is deliberately no budget per user across all sources: anyone who knows a user name
 * could then keep its owner from signing in (Keycloak's and privacyIDEA's users' complaint in
 * totp-verifiers-compared.md). A user's password alone is not enough where MFA is on.
 *
 * The budgets reuse the worker's fixed-window script (worker/lua/source-budget-1.lua), so both
 * kinds of budget follow one rule: a refused claim is not counted, a window always expires.
 * Redis unreachable means no check at all: the caller gets SERVICE_UNAVAILABLE (fail closed).
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { createScriptRunner, loadWorkerScripts, type ScriptRunner } from "../../worker/lua/scripts";
import type { AnyRedis } from "../../worker/redis-connection";
import { rateLimited, serviceUnavailable } from "../errors";

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

/** Keys hold hashes, so they neither reveal nor are shaped by what a client sent. */
function digest(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\0"), "utf8").digest("hex").slice(0, 32);
}

export class PasswordAttemptGuard {
  private readonly scripts: ScriptRunner;
  private readonly budget = loadWorkerScripts().sourceBudget;

  constructor(
    private readonly redis: AnyRedis,
    private readonly prefix: string,
    private readonly limits: PasswordAttemptLimits,
    private readonly logger: Pick<Logger, "warn">,
  ) {
    this.scripts = createScriptRunner(redis);
  }

  /**
   * Spends one attempt for `identity` (a user id, or what the caller typed when no user
   * matched) from `source`, or throws RATE_LIMITED with the wait. The keys live in different
   * hash slots, so the two claims are two calls; a refused second claim gives the first back.
   */
  async begin(identity: string, source: string): Promise<PasswordAttempt> {
    const fromSource = {
      key: `${this.prefix}:{ps:${digest(source)}}:pw-budget`,
      limit: this.limits.perSource,
    };
    const userFromSource = {
      key: `${this.prefix}:{pu:${digest(identity, source)}}:pw-budget`,
      limit: this.limits.perUserAndSource,
    };
    // Best effort: a lost refund only over-counts this source, the safe direction.
    const refundSource = () =>
      this.run("refund", fromSource.key, fromSource.limit).catch(() => undefined);

    await this.claim(fromSource);
    try {
      await this.claim(userFromSource);
    } catch (error) {
      await refundSource();
      throw error;
    }
    return {
      succeeded: async () => {
        await Promise.all([refundSource(), this.redis.del(userFromSource.key).catch(() => 0)]);
      },
    };
  }

  private async claim(budget: { key: string; limit: number }): Promise<void> {
    const [allowed, retryAfterSeconds] = await this.run("claim", budget.key, budget.limit);
    if (allowed !== 1) throw rateLimited(Math.max(1, retryAfterSeconds ?? 1));
  }

  private async run(op: "claim" | "refund", key: string, limit: number): Promise<number[]> {
    try {
      const reply = await this.scripts.run(
        this.budget,
        [key],
        [op, limit, this.limits.windowSeconds],
      );
      return (reply as unknown[]).map(Number);
    } catch (error) {
      this.logger.warn(
        { failure: error instanceof Error ? error.name : "UNEXPECTED" },
        "password attempt budget unavailable",
      );
      throw serviceUnavailable();
    }
  }
}
