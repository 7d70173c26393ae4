/**
 * Fixed-window budgets in Redis for the gateway's own limits: password guesses
 * (src/auth/password-attempts.ts) and messages that carry recovery codes
 * (src/recovery/recovery-sends.ts). Each runs worker/lua/attempt-budget-1.lua, which keeps the
 * attempts counted in a window apart from claims still in flight, so:
 * - an attempt is claimed *before* its check runs, and parallel attempts cannot slip past;
 * - a refusal caused only by claims in flight says "retry in 1 s", not "in 15 minutes";
 * - a claim released after its window ended makes no room in the next window.
 *
 * Redis unreachable or stalled past the deadline means no budget can be claimed, so the caller
 * gets SERVICE_UNAVAILABLE and nothing is checked or sent (fail closed). A claim that lands
 * after its deadline holds its place until its window ends: an over-count, the safe direction.
 */
import type { Logger } from "pino";
import { createScriptRunner, loadScript, type ScriptRunner } from "../../worker/lua/scripts";
import type { AnyRedis } from "../../worker/redis-connection";
import { hashSource } from "../../worker/verify/verifier";
import { rateLimited, serviceUnavailable } from "../errors";
import { withTimeout } from "./deadline";
import { sourceBucket, sourceSite } from "./source-bucket";

/**
 * How many sources' budgets one IPv6 /48 gets together, in the budgets of rare, costly actions
 * (sign-ups, recovery texts). Not password checks: a /48 on a mobile or cloud network holds many
 * unrelated users, and there one could keep the rest from signing in (password-attempts.ts).
 */
export const IPV6_SITE_SHARE = 4;

export interface Budget {
  /** What it counts, as metrics name it: `password_per_source`, `recovery_per_phone`… */
  name: string;
  key: string;
  /** Attempts counted per window. */
  limit: number;
  windowSeconds: number;
}

/** A claim on one budget, to be settled once its attempt's outcome is known. */
export interface Claim {
  budget: Budget;
  /** The end of the window the claim was taken in, as the script reported it. */
  windowEnd: number;
}

/** What became of a claimed attempt: counted, given back, or given back with the slate wiped. */
export type Settlement = "count" | "release" | "forgive";

export class RedisBudgets {
  private readonly scripts: ScriptRunner;
  private readonly script = loadScript("attempt-budget");

  private readonly deadlineMs: number;
  private readonly claimLifetimeMs: number;
  private readonly onRefused: (budgetName: string) => void;

  constructor(
    redis: AnyRedis,
    private readonly prefix: string,
    private readonly logger: Pick<Logger, "warn">,
    options: {
      /** A stalled Redis answers SERVICE_UNAVAILABLE after this long (default 3000 ms). */
      deadlineMs?: number;
      /** Told of every refusal, with the full budget's name, for metrics. */
      onRefused?: (budgetName: string) => void;
      /**
       * Claims all older than this were abandoned (their caller died, or they reached a stalled
       * Redis after it gave up) and hold nothing (default 60 s, past any caller's deadline).
       */
      claimLifetimeMs?: number;
    } = {},
  ) {
    this.scripts = createScriptRunner(redis);
    this.deadlineMs = options.deadlineMs ?? 3000;
    this.claimLifetimeMs = options.claimLifetimeMs ?? 60_000;
    this.onRefused = options.onRefused ?? (() => {});
  }

  /**
   * A budget: `name` says what it counts, `parts` whose it is. Parts are hashed, so keys neither
   * reveal nor are shaped by what a client sent; the hash is the key's Cluster hash tag.
   */
  budget(name: string, parts: string[], limit: number, windowSeconds: number): Budget {
    // The worker hashes its sources the same way, for the same reasons.
    const key = `${this.prefix}:{${name}:${hashSource(parts.join("\0"))}}:budget`;
    return { name, key, limit, windowSeconds };
  }

  /**
   * The budgets of one source for a rare, costly action (src/common/source-bucket.ts): its
   * address (IPv6: its /64), and for IPv6 also its /48 at IPV6_SITE_SHARE times the limit, so a
   * /48's 65,536 /64s cannot each spend a budget of their own. Both carry `name` in metrics.
   */
  perSource(name: string, sourceIp: string, limit: number, windowSeconds: number): Budget[] {
    const site = sourceSite(sourceIp);
    const own = this.budget(name, [sourceBucket(sourceIp)], limit, windowSeconds);
    if (site === null) return [own];
    return [own, this.budget(name, [site], limit * IPV6_SITE_SHARE, windowSeconds)];
  }

  /**
   * Claims one attempt from each budget in turn, or throws RATE_LIMITED with the wait of the
   * first that is full, after releasing what it had claimed. Budgets live in different hash
   * slots, so each claim is a call of its own.
   */
  async claim(budgets: Budget[]): Promise<Claim[]> {
    const claims: Claim[] = [];
    for (const budget of budgets) {
      const [allowed, detail] = await this.run(budget, "claim");
      if (allowed !== 1) {
        this.onRefused(budget.name);
        await this.settle(claims, "release");
        throw rateLimited(Math.max(1, detail ?? 1));
      }
      claims.push({ budget, windowEnd: detail! });
    }
    return claims;
  }

  /**
   * Claims one from each budget and counts it at once, for things that are never given back
   * (a message queued, a set of codes made); throws RATE_LIMITED as `claim` does.
   */
  async spend(budgets: Budget[]): Promise<void> {
    await this.settle(await this.claim(budgets), "count");
  }

  /**
   * Settles claims. Best effort: a claim left unsettled holds its place until its window ends,
   * which only over-counts, the safe direction.
   */
  async settle(claims: Claim[], how: Settlement): Promise<void> {
    await Promise.all(
      claims.map((claim) => this.run(claim.budget, how, claim.windowEnd).catch(() => undefined)),
    );
  }

  /** Runs `op` on the budget's script; `windowEnd` is a settled claim's window. */
  private async run(
    budget: Budget,
    op: "claim" | Settlement,
    windowEnd?: number,
  ): Promise<number[]> {
    try {
      const reply = await withTimeout(
        this.scripts.run(
          this.script,
          [budget.key],
          [op, budget.limit, budget.windowSeconds, windowEnd ?? "", this.claimLifetimeMs],
        ),
        this.deadlineMs,
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
