/**
 * Fixed-window budgets in Redis for the gateway's own limits: password guesses
 * (src/auth/password-attempts.ts) and messages that carry recovery codes
 * (src/recovery/recovery-sends.ts). They run the worker's fixed-window script
 * (worker/lua/source-budget-1.lua), so every budget in the product follows one rule: a refused
 * claim is not counted, and a window always ends.
 *
 * Redis unreachable means no budget can be spent, so the caller gets SERVICE_UNAVAILABLE and
 * nothing is checked or sent (fail closed).
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { createScriptRunner, loadWorkerScripts, type ScriptRunner } from "../../worker/lua/scripts";
import type { AnyRedis } from "../../worker/redis-connection";
import { rateLimited, serviceUnavailable } from "../errors";

export interface Budget {
  key: string;
  /** Claims allowed per window. */
  limit: number;
  windowSeconds: number;
}

export class RedisBudgets {
  private readonly scripts: ScriptRunner;
  private readonly script = loadWorkerScripts().sourceBudget;

  constructor(
    private readonly redis: AnyRedis,
    private readonly prefix: string,
    private readonly logger: Pick<Logger, "warn">,
  ) {
    this.scripts = createScriptRunner(redis);
  }

  /**
   * A budget's key: `kind` names what it counts, `parts` whose it is. Parts are hashed, so keys
   * neither reveal nor are shaped by what a client sent; the hash is the key's Cluster hash tag.
   */
  budget(kind: string, parts: string[], limit: number, windowSeconds: number): Budget {
    const digest = createHash("sha256").update(parts.join("\0"), "utf8").digest("hex");
    return { key: `${this.prefix}:{${kind}:${digest.slice(0, 32)}}:budget`, limit, windowSeconds };
  }

  /**
   * Claims one from each budget in turn, or throws RATE_LIMITED with the wait of the first that
   * is spent, after giving back what it had claimed. Budgets live in different hash slots, so
   * each claim is a call of its own.
   */
  async claimAll(budgets: Budget[]): Promise<void> {
    const claimed: Budget[] = [];
    for (const budget of budgets) {
      const [allowed, retryAfterSeconds] = await this.run("claim", budget);
      if (allowed !== 1) {
        await Promise.all(claimed.map((b) => this.refund(b)));
        throw rateLimited(Math.max(1, retryAfterSeconds ?? 1));
      }
      claimed.push(budget);
    }
  }

  /** Gives one claim back. Best effort: a lost refund only over-counts, the safe direction. */
  async refund(budget: Budget): Promise<void> {
    await this.run("refund", budget).catch(() => undefined);
  }

  /** Forgets everything counted in the budget's window. Best effort, as a refund. */
  async clear(budget: Budget): Promise<void> {
    await this.redis.del(budget.key).catch(() => 0);
  }

  private async run(op: "claim" | "refund", budget: Budget): Promise<number[]> {
    try {
      const reply = await this.scripts.run(
        this.script,
        [budget.key],
        [op, budget.limit, budget.windowSeconds],
      );
      return (reply as unknown[]).map(Number);
    } catch (error) {
      this.logger.warn(
        { failure: error instanceof Error ? error.name : "UNEXPECTED" },
        "Redis budget unavailable",
      );
      throw serviceUnavailable();
    }
  }
}
