/**
 * The worker's verification core: unseal the seed, find which steps the submitted code(s)
 * match, then let one atomic Lua script per device decide with Redis TIME (see verify-3.lua).
 *
 * The worker's own clock only chooses which steps to compute; it never decides. If its guess
 * does not cover the script's window, the script changes nothing and says so, and the worker
 * searches again around Redis's time.
 */
import { createHash, createHmac } from "node:crypto";
import {
  MAX_BURNT_STEPS,
  RequestSchema,
  VerifyResultSchema,
  type VerifyResult,
  type WORKER_ERRORS,
  type WorkerRequest,
} from "../protocol";
import { loadWorkerScripts, type ScriptRunner, type WorkerScripts } from "../lua/scripts";
import type { Keyring } from "../seal/keyring";
import { matchingSteps, stepAt } from "../totp/hotp";
import { parsePolicy, type VerifyPolicy, type VerifyPolicyInput } from "./policy";

export type VerifyRequest = Extract<WorkerRequest, { op: "verify" }>;
export type WorkerError = (typeof WORKER_ERRORS)[number];

/** A verification that produced no result. Never carries a seed, key or code. */
export class VerifierError extends Error {
  override readonly name = "VerifierError";
  constructor(
    readonly code: WorkerError,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface VerifierDeps {
  scripts: ScriptRunner;
  keyring: Keyring;
  /** Key prefix, e.g. "vmfa". Must not contain braces: those delimit the hash tags. */
  prefix: string;
  policy?: VerifyPolicyInput;
  /** Defaults to the scripts in worker/lua, loaded once. */
  lua?: WorkerScripts;
  /** The worker's clock, used only to guess which steps to compute; Redis TIME decides. */
  localClock?: () => number;
}

export interface Verifier {
  verify(request: VerifyRequest, requestId: string): Promise<VerifyResult>;
  /**
   * Deletes a deleted device's state hash (watermark, failures, burnt steps, known sources),
   * which would otherwise lapse only after the longest of its memories (210 days by default).
   * Stored results keep their ten minutes: a retry still gets its first answer.
   */
  forget(deviceId: string): Promise<boolean>;
}

/** Numeric codes returned by the Lua scripts, each with the one meaning it has. */
export const SCRIPT_CODES = {
  0: "OK",
  1: "INVALID",
  2: "REPLAYED",
  3: "THROTTLED",
  4: "CLOCK_SKEW",
  5: "CLOCK_RANGE: the worker's candidate steps do not cover the script's window",
  6: "REQUEST_ID_CONFLICT: a different request already used this request id",
} as const;

/** Sources (IPs, session ids) are hashed so keys neither reveal nor are shaped by them. */
export function hashSource(source: string): string {
  return createHash("sha256").update(source, "utf8").digest("hex").slice(0, 32);
}

/** A device's state hash (verify-3.lua); its `{d:<device>}` tag is the slot of all its keys. */
const deviceStateKey = (prefix: string, deviceId: string) => `${prefix}:{d:${deviceId}}`;

/**
 * Every key of one verification. A device's whole state is one hash (see verify-3.lua); its
 * stored results share its `{d:<device>}` tag, so one slot.
 */
export function verifierKeys(
  prefix: string,
  deviceId: string,
  sourceHash: string,
  requestId: string,
) {
  const device = deviceStateKey(prefix, deviceId);
  return {
    state: device,
    result: `${device}:res:${requestId}`,
    /** The budget as verify-3.lua keeps it on a single Redis: a counter (a string). */
    sourceBudget: `${prefix}:{s:${sourceHash}}:budget`,
    /**
     * The budget on Redis Cluster, kept by attempt-budget-1.lua: a hash. A name of its own, so a
     * counter left under `:budget` by an earlier version cannot make its HMGET fail (WRONGTYPE).
     */
    sourceAttempts: `${prefix}:{s:${sourceHash}}:attempts`,
    /** Stands in for the source budget in the verify script where that lives in another slot. */
    noSourceBudget: `${device}:budget-elsewhere`,
  };
}

/**
 * How near a step boundary the worker's estimate of Redis's time must be for the step beyond it
 * to be searched too. The estimate is corrected by every script reply, so it is off by about a
 * round trip; 2 s is generous. Away from a boundary the extra step is skipped, which spares two
 * of the five HMACs a login computed. Should the estimate still be wrong, the script finds its
 * window uncovered, changes nothing, and the worker searches again around Redis's time. The
 * choice depends on the clock alone, never on the seed or the code, so its timing says nothing.
 */
const MARGIN_MS = 2000;

/** Steps to add below and above the window for an estimate `estimateMs` (0 or 1 each). */
export function searchMargins(
  estimateMs: number,
  period: number,
): { below: number; above: number } {
  const stepMs = period * 1000;
  const intoStep = ((estimateMs % stepMs) + stepMs) % stepMs;
  return { below: intoStep < MARGIN_MS ? 1 : 0, above: stepMs - intoStep <= MARGIN_MS ? 1 : 0 };
}

interface Window {
  pairMode: boolean;
  centreOffset: number;
  radius: number;
  driftLimit: number;
}

function windowFor(request: VerifyRequest, policy: VerifyPolicy): Window {
  if (request.mode === "login") {
    // A stored drift beyond what enrolment may record is malformed; clamp it, never widen.
    const limit = policy.maxEnrolDrift;
    const centreOffset = Math.max(-limit, Math.min(limit, request.device.drift));
    // Logins may creep the drift a step at a time up to maxLoginDrift, but keep a larger
    // drift that a two-code resync recorded.
    const driftLimit = Math.max(policy.maxLoginDrift, Math.abs(centreOffset));
    return { pairMode: false, centreOffset, radius: policy.loginRadius, driftLimit };
  }
  const radius = request.mode === "enrol" ? policy.enrolRadius : policy.resyncRadius;
  return { pairMode: true, centreOffset: 0, radius, driftLimit: policy.maxEnrolDrift };
}

export function createVerifier(deps: VerifierDeps): Verifier {
  if (!/^[^{}\s]+$/.test(deps.prefix))
    throw new Error("verifier: prefix must be non-empty, without braces");
  const policy = parsePolicy(deps.policy);
  const lua = deps.lua ?? loadWorkerScripts();
  const localClock = deps.localClock ?? Date.now;
  const { scripts, keyring, prefix } = deps;
  // On a single Redis the verify script checks the per-source budget itself: one script call
  // per verification instead of three (claim, verify, settle). README "Benchmarks".
  const budgetInScript = scripts.singleNode === true;
  // The device's state hash lives as long as the longest of its memories; each record in it
  // carries its own time and lapses on its own (verify-3.lua).
  const stateTtlSeconds = Math.max(
    policy.pairMemorySeconds,
    policy.deviceMemorySeconds,
    policy.knownSourceMemorySeconds,
    policy.watermarkTtlSeconds,
  );
  // Redis TIME minus the local clock, learnt from every script reply.
  let offsetMs = 0;

  function search(seed: Buffer, request: VerifyRequest, from: number, to: number): number[] {
    const { algorithm, digits } = request.device;
    const first = matchingSteps(seed, request.code1, from, to, algorithm, digits);
    if (request.mode === "login") return first;
    // Both codes always cost the full window, so timing never says whether code1 alone matched.
    const second = new Set(
      matchingSteps(seed, request.code2!, from + 1, to + 1, algorithm, digits),
    );
    return first.filter((step) => second.has(step + 1));
  }

  /** Candidate steps around `estimateMs`: the acceptance window first, then its flanks. */
  function candidates(seed: Buffer, request: VerifyRequest, window: Window, estimateMs: number) {
    const { period } = request.device;
    const centre = stepAt(estimateMs, period) + window.centreOffset;
    const { below, above } = searchMargins(estimateMs, period);
    const from = centre - window.radius - below;
    const to = centre + window.radius + above;
    const matches = search(seed, request, from, to);
    // A match here will be OK or REPLAYED, which the reply reveals anyway, so skipping the
    // classification flanks leaks nothing through timing and spares most logins ~20 HMACs.
    const classify = policy.classifyRadius;
    if (matches.length > 0 || classify === 0) return { from, to, matches };
    const flanks = [
      ...search(seed, request, from - classify, from - 1),
      ...search(seed, request, to + 1, to + classify),
    ];
    return { from: from - classify, to: to + classify, matches: flanks };
  }

  async function decide(
    request: VerifyRequest,
    requestId: string,
    seed: Buffer,
  ): Promise<VerifyResult> {
    const window = windowFor(request, policy);
    const sourceHash = hashSource(request.source);
    const keys = verifierKeys(prefix, request.device.deviceId, sourceHash, requestId);
    const fingerprint = createHmac("sha256", seed)
      .update(JSON.stringify([request.mode, request.source, request.code1, request.code2 ?? ""]))
      .digest("hex")
      .slice(0, 32);
    const budgetArgs = [policy.sourceBudget, policy.sourceWindowSeconds];
    const { device } = request;
    const fixedArgs = (from: number, to: number, matches: number[]) => [
      window.pairMode ? "pair" : "login",
      fingerprint,
      device.period,
      window.centreOffset,
      window.radius,
      policy.classifyRadius,
      window.driftLimit,
      device.lastStep ?? "",
      from,
      to,
      matches.join(","),
      policy.pairFree,
      policy.pairBaseSeconds * 1000,
      policy.pairCapSeconds * 1000,
      policy.pairMemorySeconds,
      policy.deviceFree,
      policy.deviceBaseSeconds * 1000,
      policy.deviceCapSeconds * 1000,
      policy.deviceMemorySeconds,
      policy.resultTtlSeconds,
      stateTtlSeconds,
      sourceHash,
      policy.knownSourceMemorySeconds,
      policy.knownSourcesKept,
      budgetInScript ? 1 : 0,
      ...budgetArgs,
      policy.loginRecentreSeconds,
      // The store keeps at most MAX_BURNT_STEPS; the request schema has already held it to that.
      (device.burntSteps ?? []).join(","),
      MAX_BURNT_STEPS,
    ];
    const deviceKeys = [
      keys.state,
      keys.result,
      budgetInScript ? keys.sourceBudget : keys.noSourceBudget,
    ];

    /** One verify script call: {code, a, b, nowMs, fromStore} and the burnt steps. */
    const runVerify = async () => {
      const { from, to, matches } = candidates(seed, request, window, localClock() + offsetMs);
      const sentAt = localClock();
      const reply = scriptReply(
        await scripts.run(lua.verify, deviceKeys, fixedArgs(from, to, matches)),
        5,
      );
      offsetMs = reply.numbers[3]! - (sentAt + localClock()) / 2;
      return reply;
    };
    // CLOCK_RANGE changed nothing: search once more, around Redis's time.
    const check = async () => {
      const reply = await runVerify();
      return reply.numbers[0] === 5 ? runVerify() : reply;
    };

    if (budgetInScript) return conclude(await check());

    // Redis Cluster: the budget lives in the source's slot, so it is claimed first, alone, and
    // settled once the verify script has decided (attempt-budget-1.lua). The verify script
    // begins with the same stored-result check, so the separate read is only needed when the
    // claim is refused (a retry must still get its first answer when its source has since run
    // out of budget).
    const [allowed, detail] = integers(
      await scripts.run(lua.attemptBudget, [keys.sourceAttempts], ["claim", ...budgetArgs, ""]),
      2,
    );
    if (allowed !== 1) {
      const stored = scriptReply(
        await scripts.run(lua.storedResult, [keys.result], [fingerprint]),
        4,
      );
      const [found, ...storedNumbers] = stored.numbers;
      if (found === 1) return toResult({ numbers: storedNumbers, burnt: stored.burnt });
      return { outcome: "THROTTLED", retryAfterSeconds: Math.max(1, detail!) };
    }
    // Passing the claim's window end back means a settlement that arrives after that window
    // ended gives nothing back in the next one. Not awaited, so the reply does not wait a round
    // trip; best effort, since a settlement lost leaves the claim in flight for at most a
    // minute (the claim lifetime in attempt-budget-1.lua), which only makes this source's
    // budget stricter, the safe direction.
    const settleClaim = (how: "count" | "release") =>
      void scripts
        .run(lua.attemptBudget, [keys.sourceAttempts], [how, ...budgetArgs, detail!])
        .catch(() => undefined);
    let reply: ScriptReply;
    try {
      reply = await check();
    } catch (error) {
      // The script may have decided (and charged the device) before its reply was lost, and it
      // charges the device when deciding fails: count the claim too, failing closed. Releasing
      // it could make a guess free.
      settleClaim("count");
      throw error;
    }
    // Counted: a fresh INVALID, exactly what verify-3.lua charges the budget for on a single
    // Redis. Replayed or skewed genuine codes, locks, stored results and CLOCK_RANGE are released.
    settleClaim(reply.numbers[0] === 1 && reply.numbers[4] === 0 ? "count" : "release");
    return conclude(reply);
  }

  return {
    async forget(deviceId) {
      const state = deviceStateKey(prefix, deviceId);
      // The tombstone outlives any verification of the device still under way: requests run
      // within their deadline, long before a result's life ends.
      return (await scripts.run(lua.forgetDevice, [state], [policy.resultTtlSeconds])) === 1;
    },
    async verify(input, requestId) {
      const parsed = RequestSchema.safeParse(input);
      if (!parsed.success || parsed.data.op !== "verify") {
        throw new VerifierError("BAD_REQUEST", "malformed verify request");
      }
      const request = parsed.data;
      if (request.mode !== "login" && request.code2 === undefined) {
        throw new VerifierError("BAD_REQUEST", `${request.mode} needs two consecutive codes`);
      }
      if (!/^[\x21-\x7e]{1,128}$/.test(requestId))
        throw new VerifierError("BAD_REQUEST", "malformed request id");

      const { device } = request;
      let seed: Buffer;
      try {
        seed = keyring.unseal(device.sealedSeed, device.keyId, {
          accountId: device.accountId,
          deviceId: device.deviceId,
        });
      } catch (error) {
        throw new VerifierError("UNSEAL_FAILED", "the device's seed could not be unsealed", {
          cause: error,
        });
      }
      try {
        return await decide(request, requestId, seed);
      } catch (error) {
        if (error instanceof VerifierError) throw error;
        // Fail closed: Redis errors, script errors and malformed replies never become a result.
        throw new VerifierError("UNAVAILABLE", "verification could not be completed", {
          cause: error,
        });
      } finally {
        seed.fill(0);
      }
    },
  };
}

/** A script reply as `count` safe integers, or an error: malformed replies never pass. */
function integers(reply: unknown, count: number): number[] {
  if (!Array.isArray(reply) || reply.length !== count || !reply.every(Number.isSafeInteger)) {
    throw new VerifierError("UNAVAILABLE", "malformed script reply");
  }
  return reply as number[];
}

/** A verify or stored-result script's reply: its leading integers, then the burnt steps. */
interface ScriptReply {
  numbers: number[];
  burnt: number[];
}

/** `count` safe integers and a list of steps ("s,s,..." or ""), or an error. */
function scriptReply(reply: unknown, count: number): ScriptReply {
  if (!Array.isArray(reply) || reply.length !== count + 1) {
    throw new VerifierError("UNAVAILABLE", "malformed script reply");
  }
  const burntList = reply[count];
  if (typeof burntList !== "string" || !/^(-?\d+(,-?\d+)*)?$/.test(burntList)) {
    throw new VerifierError("UNAVAILABLE", "malformed script reply");
  }
  const burnt = burntList === "" ? [] : burntList.split(",").map(Number);
  return { numbers: integers(reply.slice(0, count), count), burnt: integers(burnt, burnt.length) };
}

/** The verify script's reply as a result, or an error when it could not decide. */
function conclude(reply: ScriptReply): VerifyResult {
  if (reply.numbers[0] === 5) throw new VerifierError("UNAVAILABLE", SCRIPT_CODES[5]);
  return toResult(reply);
}

function toResult({ numbers: [code, a, b, nowMs], burnt }: ScriptReply): VerifyResult {
  const result = (() => {
    switch (code) {
      case 0:
        return { outcome: "OK", step: a, drift: b };
      case 1:
        return { outcome: "INVALID" };
      case 2:
        return { outcome: "REPLAYED" };
      case 3:
        return { outcome: "THROTTLED", retryAfterSeconds: a };
      case 4:
        return { outcome: "CLOCK_SKEW", offsetSteps: a, burntSteps: burnt, serverTime: nowMs };
      case 6:
        throw new VerifierError("BAD_REQUEST", SCRIPT_CODES[6]);
      default:
        throw new VerifierError("UNAVAILABLE", `unknown script code ${code}`);
    }
  })();
  const checked = VerifyResultSchema.safeParse(result);
  if (!checked.success) throw new VerifierError("UNAVAILABLE", "script result out of range");
  return checked.data;
}
