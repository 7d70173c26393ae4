import { randomUUID } from "node:crypto";
import { createClient } from "redis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { DeviceState, HashAlgorithm, VerifyResult } from "../../worker/protocol";
import { createScriptRunner, loadWorkerScripts, type ScriptRunner } from "../../worker/lua/scripts";
import { provisionSeed } from "../../worker/provision";
import { generateKeyringSpec, parseKeyring } from "../../worker/seal/keyring";
import { base32Decode } from "../../worker/totp/base32";
import { hotp, type Digits } from "../../worker/totp/hotp";
import { DEFAULT_POLICY, guessesPerYear, type VerifyPolicyInput } from "../../worker/verify/policy";
import {
  createVerifier,
  hashSource,
  VerifierError,
  type VerifyRequest,
} from "../../worker/verify/verifier";

const redis = createClient({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" });
const keyring = parseKeyring(generateKeyringSpec("test"));
const prefixes: string[] = [];

beforeAll(async () => {
  await redis.connect();
});
afterEach(async () => {
  for (const prefix of prefixes.splice(0)) {
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
      if (keys.length > 0) await redis.del(keys);
    }
  }
});
afterAll(async () => {
  await redis.close();
});

/** Redis's step: tests take "now" from the same clock the scripts decide with. */
async function redisStep(period = 30): Promise<number> {
  const [seconds] = await redis.time();
  return Math.floor(Number(seconds) / period);
}

/** Like redisStep, but first waits out the step's last second so the test cannot straddle it. */
async function freshStep(period: number): Promise<number> {
  const [seconds] = await redis.time();
  const left = period - (Number(seconds) % period);
  if (left <= 1) await sleep(left * 1000 + 50);
  return redisStep(period);
}

interface Options {
  policy?: VerifyPolicyInput;
  runner?: ScriptRunner;
  /** Claim the per-source budget in a script of its own, as on Redis Cluster. */
  separateBudget?: boolean;
  localClock?: () => number;
}

/** A verifier with its own key prefix, removed after the test. */
function setupVerifier(options: Options = {}) {
  const prefix = `test-verifier-${randomUUID()}`;
  prefixes.push(prefix);
  const verifier = createVerifier({
    scripts:
      options.runner ??
      (options.separateBudget
        ? { run: createScriptRunner(redis).run, singleNode: false }
        : createScriptRunner(redis)),
    keyring,
    prefix,
    policy: options.policy,
    localClock: options.localClock,
  });

  function device(params: { algorithm?: HashAlgorithm; digits?: Digits; period?: number } = {}) {
    const deviceId = randomUUID();
    const accountId = "123456789012";
    const provisioned = provisionSeed(keyring, { accountId, deviceId });
    const seed = base32Decode(provisioned.base32Seed);
    const { algorithm = "SHA1", digits = 6, period = 30 } = params;
    const state: DeviceState = {
      deviceId,
      accountId,
      sealedSeed: provisioned.sealedSeed,
      keyId: provisioned.keyId,
      algorithm,
      digits,
      period,
      drift: 0,
      lastStep: null,
    };
    const code = (step: number) => hotp(seed, step, algorithm, digits);
    /** A code that matches no step anywhere near `step`, so it is certainly a wrong guess. */
    const wrongCode = (step: number) => {
      const near = new Set(Array.from({ length: 201 }, (_, i) => code(step - 100 + i)));
      for (let n = 0; ; n++) {
        const guess = String(n).padStart(digits, "0");
        if (!near.has(guess)) return guess;
      }
    };
    return { state, code, wrongCode };
  }

  const verify = (request: VerifyRequest, requestId: string = randomUUID()) =>
    verifier.verify(request, requestId);
  return { prefix, verifier, device, verify };
}

const setup = setupVerifier;

const login = (device: DeviceState, code1: string, source = "203.0.113.7"): VerifyRequest => ({
  op: "verify",
  mode: "login",
  device,
  code1,
  source,
});
const pair = (
  mode: "enrol" | "resync",
  device: DeviceState,
  code1: string,
  code2: string,
): VerifyRequest => ({
  op: "verify",
  mode,
  device,
  code1,
  code2,
  source: "203.0.113.7",
});
const outcomes = (results: VerifyResult[]) =>
  results.reduce<Record<string, number>>(
    (counts, r) => ({ ...counts, [r.outcome]: (counts[r.outcome] ?? 0) + 1 }),
    {},
  );
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("verifying codes", () => {
  it("accepts the current code and reports its step", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    const result = await verify(login(d.state, d.code(now)));
    expect(result).toEqual({ outcome: "OK", step: now, drift: expect.any(Number) });
  });

  it.each([
    ["SHA256", 8, 60],
    ["SHA512", 6, 30],
    ["SHA1", 8, 15],
  ] as const)(
    "accepts the current code of a %s / %i-digit / %is device",
    async (algorithm, digits, period) => {
      const { device, verify } = setup();
      const d = device({ algorithm, digits, period });
      const now = await redisStep(period);
      expect(await verify(login(d.state, d.code(now)))).toMatchObject({ outcome: "OK", step: now });
    },
  );

  it("refuses a code that was already accepted", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    expect((await verify(login(d.state, d.code(now)))).outcome).toBe("OK");
    expect(await verify(login(d.state, d.code(now)))).toEqual({ outcome: "REPLAYED" });
  });

  it("refuses an older unused code after a newer one was accepted", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    expect((await verify(login(d.state, d.code(now)))).outcome).toBe("OK");
    expect(await verify(login(d.state, d.code(now - 1)))).toEqual({ outcome: "REPLAYED" });
  });

  it("honours a lastStep from PostgreSQL that is ahead of Redis (as after a Redis flush)", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    const restored = { ...d.state, lastStep: now };
    expect(await verify(login(restored, d.code(now)))).toEqual({ outcome: "REPLAYED" });
    expect(await verify(login(restored, d.code(now + 1)))).toMatchObject({
      outcome: "OK",
      step: now + 1,
    });
  });

  it("accepts exactly one of 200 concurrent verifications of the same valid code", async () => {
    const { device, verify } = setup();
    const d = device();
    const code = d.code(await redisStep());
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => verify(login(d.state, code, `198.51.100.${i}`))),
    );
    expect(outcomes(results)).toEqual({ OK: 1, REPLAYED: 199 });
  });

  it("re-centres drift after a login but never beyond maxLoginDrift", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    const drifted = { ...d.state, drift: DEFAULT_POLICY.maxLoginDrift };
    const result = await verify(login(drifted, d.code(now + DEFAULT_POLICY.maxLoginDrift + 1)));
    expect(result).toMatchObject({ outcome: "OK", drift: DEFAULT_POLICY.maxLoginDrift });
  });

  it("moves the drift on a login only an hour after the last acceptance, so codes cannot walk the window ahead", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    // Enabled just now at drift 0: a login at now+1 is accepted, but moves nothing.
    const enabled = { ...d.state, lastStep: now };
    expect(await verify(login(enabled, d.code(now + 1)))).toMatchObject({
      outcome: "OK",
      step: now + 1,
      drift: 0,
    });
    // So the next later code is outside the window: a run of ever later codes, which walked
    // the drift a step per code up to maxLoginDrift, stops at the first.
    const afterLogin = { ...enabled, lastStep: now + 1 };
    expect(await verify(login(afterLogin, d.code(now + 2)))).toMatchObject({
      outcome: "CLOCK_SKEW",
    });
    // A device last accepted over an hour ago follows its clock by a step.
    const rested = device();
    const idle = { ...rested.state, lastStep: now - 121 };
    expect(await verify(login(idle, rested.code(now + 1)))).toMatchObject({
      outcome: "OK",
      drift: 1,
    });
  });

  it("refuses a used or older step beyond the window as replayed, not as clock skew", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    const state = { ...d.state, lastStep: now + 1 };
    // now-3 lies in the classification band; it is below the watermark, so a resync with it
    // would be refused: it must not be reported as skew that asks for one.
    expect(await verify(login(state, d.code(now - 3)))).toEqual({ outcome: "REPLAYED" });
  });

  it("decides with Redis TIME even when the worker's own clock is ten minutes fast", async () => {
    const { device, verify } = setup({ localClock: () => Date.now() + 10 * 60_000 });
    const d = device();
    const now = await redisStep();
    expect(await verify(login(d.state, d.code(now)))).toMatchObject({ outcome: "OK", step: now });
    expect(await verify(login(d.state, d.code(now + 20)))).toEqual({ outcome: "INVALID" });
  });
});

describe("enrolment, resync and clock skew", () => {
  it("enrols with two consecutive codes from several steps ago, records the drift and accepts later logins at it", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    const enrolled = await verify(pair("enrol", d.state, d.code(now - 6), d.code(now - 5)));
    expect(enrolled).toMatchObject({ outcome: "OK", step: now - 5 });
    if (enrolled.outcome !== "OK") return;
    expect([-5, -6]).toContain(enrolled.drift); // -6 if Redis's step ticked meanwhile
    const enabled = { ...d.state, drift: enrolled.drift, lastStep: enrolled.step };
    // The device now shows the code for the step after the enrolment pair.
    expect(await verify(login(enabled, d.code(enrolled.step + 1)))).toMatchObject({
      outcome: "OK",
    });
    // Without the stored drift the same device's next code is only recognised as skew.
    const ignoringDrift = { ...enabled, drift: 0 };
    expect(await verify(login(ignoringDrift, d.code(enrolled.step + 2)))).toMatchObject({
      outcome: "CLOCK_SKEW",
    });
  });

  it("refuses enrolment codes that are not consecutive", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    expect(await verify(pair("enrol", d.state, d.code(now), d.code(now + 2)))).toEqual({
      outcome: "INVALID",
    });
  });

  it("resyncs a device whose clock is 30 steps behind, which enrolment would not accept", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    const codes = [d.code(now - 31), d.code(now - 30)] as const;
    expect((await verify(pair("enrol", d.state, ...codes))).outcome).not.toBe("OK");
    const result = await verify(pair("resync", d.state, ...codes));
    expect(result).toMatchObject({ outcome: "OK", step: now - 30 });
  });

  it("reports a code 5 steps ahead as CLOCK_SKEW and never accepts it", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    const skewed = d.code(now + 5);
    const first = await verify(login(d.state, skewed));
    expect(first.outcome).toBe("CLOCK_SKEW");
    if (first.outcome === "CLOCK_SKEW") expect([5, 4]).toContain(first.offsetSteps);
    expect((await verify(login(d.state, skewed))).outcome).not.toBe("OK");
  });

  it("resyncs at once with the codes a phone shows after its code was reported as CLOCK_SKEW", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    // The phone runs 5 steps ahead; its login code is reported, and that step burnt.
    const reported = await verify(login(d.state, d.code(now + 5)));
    expect(reported.outcome).toBe("CLOCK_SKEW");
    const resynced = await verify(pair("resync", d.state, d.code(now + 5), d.code(now + 6)));
    expect(resynced).toMatchObject({ outcome: "OK", step: now + 6 });
    // The pair moved Redis's watermark past the reported code: it stays refused, though the
    // state the gateway passes knows no watermark.
    const after = { ...d.state, lastStep: null, drift: 6 };
    expect(await verify(login(after, d.code(now + 5)))).toEqual({ outcome: "REPLAYED" });
  });

  it("refuses a code reported as CLOCK_SKEW even once its step comes round, so the report is no oracle", async () => {
    const period = 15;
    const { device, verify } = setup();
    const d = device({ period });
    const now = await freshStep(period);
    expect(await verify(login(d.state, d.code(now + 2)))).toMatchObject({ outcome: "CLOCK_SKEW" });
    while ((await redisStep(period)) < now + 1) await sleep(250);
    expect(await verify(login(d.state, d.code(now + 2)))).toEqual({ outcome: "REPLAYED" });
  }, 40_000);

  it("keeps only the 32 highest burnt steps above the watermark, however long the list had grown", async () => {
    const { device, verify, prefix } = setup();
    const d = device();
    const now = await freshStep(30);
    const state = `${prefix}:{d:${d.state.deviceId}}`;
    // As a device whose list grew without bound before the cap: a thousand steps long gone.
    const stale = Array.from({ length: 1000 }, (_, i) => now - 1500 + i);
    await redis.hSet(state, "burn", stale.join(","));
    const burntList = async () =>
      String(await redis.hGet(state, "burn"))
        .split(",")
        .map(Number);

    expect(await verify(login(d.state, d.code(now + 4)))).toMatchObject({ outcome: "CLOCK_SKEW" });
    const kept = await burntList();
    expect(kept).toHaveLength(32);
    expect(kept).toEqual([now + 4, ...stale.slice(-31).reverse()]);

    // An acceptance moves the watermark, and only steps above it stay.
    expect(await verify(login(d.state, d.code(now)))).toMatchObject({ outcome: "OK" });
    expect(await burntList()).toEqual([now + 4]);
  });

  it("says which steps a CLOCK_SKEW answer burnt, and refuses them when only the gateway still knows them", async () => {
    const { device, verify, prefix } = setup();
    const d = device();
    const now = await freshStep(30);
    const reported = await verify(login(d.state, d.code(now + 4)));
    expect(reported).toEqual({
      outcome: "CLOCK_SKEW",
      offsetSteps: 4,
      burntSteps: [now + 4],
      serverTime: expect.any(Number),
    });
    // The time it was compared with is Redis's, inside the step the test took as now.
    const { serverTime } = reported as { serverTime: number };
    expect(Math.floor(serverTime / 30_000)).toBe(now);
    // A pair burns the step after each match too, for later logins.
    const pairReported = await verify(pair("resync", d.state, d.code(now - 45), d.code(now - 44)));
    expect(pairReported).toMatchObject({ burntSteps: [now - 45, now - 44] });

    // Redis loses the device's state; its clock has meanwhile reached the reported step, which
    // a drift of 4 stands in for here. PostgreSQL's copy of the burnt step still refuses it.
    await redis.del(`${prefix}:{d:${d.state.deviceId}}`);
    const later = { ...d.state, drift: 4 };
    expect(await verify(login({ ...later, burntSteps: [now + 4] }, d.code(now + 4)))).toEqual({
      outcome: "REPLAYED",
    });
    // The control: without that copy the same code would have been accepted.
    await redis.del(`${prefix}:{d:${d.state.deviceId}}`);
    expect(await verify(login(later, d.code(now + 4)))).toMatchObject({ outcome: "OK" });
  });
});

// On a single Redis the verify script checks the per-source budget itself; on Redis Cluster the
// worker claims it first in a script of its own. Both ways must keep every limit.
describe.each([
  ["in the verify script", false],
  ["claimed separately, as on Redis Cluster", true],
])("attempt limits, source budget %s", (_, separateBudget) => {
  const setup = (options: Options = {}) => setupVerifier({ ...options, separateBudget });

  it("checks at most pairFree of 200 concurrent wrong guesses from one source", async () => {
    const { device, verify } = setup();
    const d = device();
    const guess = d.wrongCode(await redisStep());
    const results = await Promise.all(
      Array.from({ length: 200 }, () => verify(login(d.state, guess))),
    );
    const counts = outcomes(results);
    expect(counts.INVALID).toBeLessThanOrEqual(DEFAULT_POLICY.pairFree);
    expect(counts.INVALID! + counts.THROTTLED!).toBe(200);
  });

  it("checks at most deviceFree of 200 concurrent wrong guesses from 200 sources", async () => {
    const { device, verify } = setup();
    const d = device();
    const guess = d.wrongCode(await redisStep());
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => verify(login(d.state, guess, `192.0.2.${i}`))),
    );
    expect(outcomes(results).INVALID).toBeLessThanOrEqual(DEFAULT_POLICY.deviceFree);
  });

  it("does not count attempts made while locked, and the lock ends on its own", async () => {
    const { device, verify } = setup({ policy: { pairFree: 2, pairCapSeconds: 60 } });
    const d = device();
    const now = await redisStep();
    const guess = d.wrongCode(now);
    expect((await verify(login(d.state, guess))).outcome).toBe("INVALID");
    expect((await verify(login(d.state, guess))).outcome).toBe("INVALID"); // 2nd failure: 1 s lock
    for (let i = 0; i < 10; i++) {
      const locked = await verify(login(d.state, guess));
      expect(locked).toEqual({ outcome: "THROTTLED", retryAfterSeconds: 1 });
    }
    await sleep(1_100);
    expect((await verify(login(d.state, guess))).outcome).toBe("INVALID"); // 3rd failure: 2 s lock
    // Had the 10 locked attempts counted, this lock would be 2^11 s, capped at 60.
    const next = await verify(login(d.state, guess));
    expect(next).toMatchObject({ outcome: "THROTTLED" });
    if (next.outcome === "THROTTLED") expect(next.retryAfterSeconds).toBeLessThanOrEqual(2);
    await sleep(2_100);
    expect(await verify(login(d.state, d.code(await redisStep())))).toMatchObject({
      outcome: "OK",
    });
  });

  it("does not count a replayed genuine code as a failure", async () => {
    const { device, verify } = setup({ policy: { pairFree: 2, deviceFree: 2 } });
    const d = device();
    const code = d.code(await redisStep());
    expect((await verify(login(d.state, code))).outcome).toBe("OK");
    for (let i = 0; i < 5; i++)
      expect(await verify(login(d.state, code))).toEqual({ outcome: "REPLAYED" });
    expect(await verify(login(d.state, d.wrongCode(await redisStep())))).toEqual({
      outcome: "INVALID",
    });
  });

  it("does not lock out the owner's source when another source guesses", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    for (let i = 0; i < 6; i++) await verify(login(d.state, d.wrongCode(now), "attacker"));
    expect((await verify(login(d.state, d.wrongCode(now), "attacker"))).outcome).toBe("THROTTLED");
    expect(await verify(login(d.state, d.code(now), "owner"))).toMatchObject({ outcome: "OK" });
  });

  /**
   * A device whose device-wide layer locks after 3 failures, for long enough that nothing
   * expires while a test runs, and `strangers(from, to)`: one wrong guess each from sources
   * 198.51.100.<from…to>, in turn, returning the outcomes.
   */
  async function sharedLockDevice() {
    const { device, verify } = setup({ policy: { deviceFree: 3, deviceBaseSeconds: 600 } });
    const d = device();
    const now = await freshStep(30);
    const strangers = async (from: number, to: number) => {
      const seen: string[] = [];
      for (let i = from; i <= to; i++)
        seen.push((await verify(login(d.state, d.wrongCode(now), `198.51.100.${i}`))).outcome);
      return seen;
    };
    return { d, verify, now, strangers };
  }

  it("locks unknown sources out when many guess together, but never the owner's known source", async () => {
    const { d, verify, now, strangers } = await sharedLockDevice();
    expect((await verify(login(d.state, d.code(now), "owner"))).outcome).toBe("OK");
    expect(await strangers(1, 4)).toEqual(["INVALID", "INVALID", "INVALID", "THROTTLED"]);
    const stranger = await verify(login(d.state, d.code(now + 1), "198.51.100.99"));
    expect(stranger).toMatchObject({ outcome: "THROTTLED" });
    if (stranger.outcome === "THROTTLED") expect(stranger.retryAfterSeconds).toBeGreaterThan(500);
    // The owner's network is known to the device: a typo is checked, and the code accepted.
    expect(await verify(login(d.state, d.wrongCode(now), "owner"))).toEqual({ outcome: "INVALID" });
    expect(await verify(login(d.state, d.code(now + 1), "owner"))).toMatchObject({ outcome: "OK" });
    // The owner's success hands the attackers no fresh allowance: the device stays locked.
    expect(await strangers(5, 5)).toEqual(["THROTTLED"]);
  });

  it("keeps counting other sources' failures across the owner's success", async () => {
    const { d, verify, now, strangers } = await sharedLockDevice();
    expect((await verify(login(d.state, d.code(now), "owner"))).outcome).toBe("OK");
    expect(await strangers(1, 2)).toEqual(["INVALID", "INVALID"]);
    expect((await verify(login(d.state, d.code(now + 1), "owner"))).outcome).toBe("OK");
    // Had the success reset the device-wide count, the first would be its first failure, not its
    // third, and the second would not be locked out.
    expect(await strangers(3, 4)).toEqual(["INVALID", "THROTTLED"]);
  });

  it("takes the owner's own typos from a new network back out of the device-wide count", async () => {
    const { d, verify, now, strangers } = await sharedLockDevice();
    for (let i = 0; i < 2; i++)
      expect((await verify(login(d.state, d.wrongCode(now), "cafe"))).outcome).toBe("INVALID");
    expect((await verify(login(d.state, d.code(now), "cafe"))).outcome).toBe("OK");
    // Three more failures from strangers before the lock: the owner's two typos do not count.
    expect(await strangers(1, 4)).toEqual(["INVALID", "INVALID", "INVALID", "THROTTLED"]);
  });

  it("remembers only the most recent knownSourcesKept sources of a device", async () => {
    const { device, verify } = setup({
      policy: { deviceFree: 1, deviceBaseSeconds: 600, knownSourcesKept: 1 },
    });
    const d = device();
    const now = await freshStep(30);
    expect((await verify(login(d.state, d.code(now), "home"))).outcome).toBe("OK");
    expect((await verify(login(d.state, d.code(now + 1), "office"))).outcome).toBe("OK");
    expect((await verify(login(d.state, d.wrongCode(now), "198.51.100.1"))).outcome).toBe(
      "INVALID",
    );
    expect(await verify(login(d.state, d.wrongCode(now), "home"))).toMatchObject({
      outcome: "THROTTLED",
    });
    expect(await verify(login(d.state, d.wrongCode(now), "office"))).toEqual({
      outcome: "INVALID",
    });
  });

  it("throttles one source spraying wrong codes over many devices, but not other sources", async () => {
    const { device, verify } = setup({ policy: { sourceBudget: 5, sourceWindowSeconds: 60 } });
    const now = await redisStep();
    const devices = Array.from({ length: 8 }, () => device());
    const results = [];
    for (const d of devices)
      results.push(await verify(login(d.state, d.wrongCode(now), "sprayer")));
    expect(outcomes(results)).toEqual({ INVALID: 5, THROTTLED: 3 });
    const victim = devices[7]!;
    const refused = await verify(login(victim.state, victim.code(now), "sprayer"));
    expect(refused).toMatchObject({ outcome: "THROTTLED" });
    if (refused.outcome === "THROTTLED")
      expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(await verify(login(victim.state, victim.code(now), "owner"))).toMatchObject({
      outcome: "OK",
    });
  });

  it("answers a retry with its first result after its source has run out of budget", async () => {
    const { device, verify } = setup({ policy: { sourceBudget: 2, sourceWindowSeconds: 60 } });
    const d = device();
    const now = await redisStep();
    const id = randomUUID();
    const first = await verify(login(d.state, d.code(now), "spender"), id);
    expect(first.outcome).toBe("OK");
    for (const other of [device(), device()])
      expect((await verify(login(other.state, other.wrongCode(now), "spender"))).outcome).toBe(
        "INVALID",
      );
    expect(await verify(login(d.state, d.wrongCode(now), "spender"))).toMatchObject({
      outcome: "THROTTLED",
    });
    expect(await verify(login(d.state, d.code(now), "spender"), id)).toEqual(first);
  });

  it("forgets a source's failures once their memory has passed, while the device's state lives on", async () => {
    const { device, verify } = setup({
      policy: { pairFree: 2, pairBaseSeconds: 1, pairCapSeconds: 2, pairMemorySeconds: 2 },
    });
    const d = device();
    const guess = d.wrongCode(await redisStep());
    for (let i = 0; i < 2; i++)
      expect((await verify(login(d.state, guess))).outcome).toBe("INVALID");
    await sleep(2_100);
    // Forgotten, the count starts again: two more failures before a lock. Remembered, the third
    // failure would lock for 2 s and the fourth attempt be THROTTLED.
    for (let i = 0; i < 2; i++)
      expect((await verify(login(d.state, guess))).outcome).toBe("INVALID");
    expect((await verify(login(d.state, guess))).outcome).toBe("THROTTLED");
  });

  it("keeps a device's state small: a success clears its source's failures and the burnt steps it passes", async () => {
    const { prefix, device, verify } = setup();
    const d = device();
    const now = await freshStep(30);
    for (let i = 0; i < 2; i++)
      expect((await verify(login(d.state, d.wrongCode(now), "cafe"))).outcome).toBe("INVALID");
    expect((await verify(login(d.state, d.code(now - 5), "cafe"))).outcome).toBe("CLOCK_SKEW");
    const state = `${prefix}:{d:${d.state.deviceId}}`;
    expect((await redis.hKeys(state)).sort()).toEqual(["burn", "dev", "p:" + hashSource("cafe")]);
    expect((await verify(login(d.state, d.code(now), "cafe"))).outcome).toBe("OK");
    expect((await redis.hKeys(state)).sort()).toEqual(["known", "wm"]);
  });

  it("refuses a verification that reaches Redis after its device was forgotten, and writes nothing back", async () => {
    const { prefix, verifier, device, verify } = setup();
    const d = device();
    const now = await redisStep();
    expect((await verify(login(d.state, d.code(now - 1)))).outcome).toBe("OK");
    const state = `${prefix}:{d:${d.state.deviceId}}`;
    expect(await verifier.forget(d.state.deviceId)).toBe(true);
    // As an enableMfaDevice checked while its device was deleted: a genuine pair, too late.
    const late = await verify(pair("enrol", d.state, d.code(now), d.code(now + 1)));
    expect(late.outcome).toBe("INVALID");
    // Only the tombstone is left, and it lapses like every key.
    expect(await redis.hGetAll(state)).toEqual({ gone: "1" });
    const ttl = await redis.ttl(state);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(10 * 60);
    expect(await verifier.forget(d.state.deviceId)).toBe(false);
  });

  it("leaves no key without an expiry, so every lock is temporary", async () => {
    const { prefix, device, verify } = setup();
    const d = device();
    const now = await redisStep();
    for (let i = 0; i < 5; i++) await verify(login(d.state, d.wrongCode(now), "attacker"));
    expect((await verify(login(d.state, d.code(now), "owner"))).outcome).toBe("OK");
    expect((await verify(login(d.state, d.code(now + 6), "owner"))).outcome).toBe("CLOCK_SKEW");
    expect((await verify(login(d.state, d.wrongCode(now), "third"))).outcome).toBe("INVALID");
    let keys = 0;
    for await (const batch of redis.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
      for (const key of batch) {
        keys++;
        expect(await redis.pTTL(key), key).toBeGreaterThan(0);
      }
    }
    expect(keys).toBeGreaterThanOrEqual(8);
  });

  it("allows a single source fewer than 100 guesses a year by default", () => {
    const { pairFree, pairBaseSeconds, pairCapSeconds } = DEFAULT_POLICY;
    expect(guessesPerYear(pairFree, pairBaseSeconds, pairCapSeconds)).toBe(93);
  });

  it("allows any number of unknown sources together fewer than 100 guesses a year by default", () => {
    const { deviceFree, deviceBaseSeconds, deviceCapSeconds } = DEFAULT_POLICY;
    expect(guessesPerYear(deviceFree, deviceBaseSeconds, deviceCapSeconds)).toBe(80);
  });
});

describe("idempotency and failing closed", () => {
  it("answers a retried request id with its first result without verifying twice", async () => {
    const { device, verify } = setup({ policy: { pairFree: 2 } });
    const d = device();
    const now = await redisStep();
    const okId = randomUUID();
    const first = await verify(login(d.state, d.code(now)), okId);
    expect(first.outcome).toBe("OK");
    expect(await verify(login(d.state, d.code(now)), okId)).toEqual(first);
    expect(await verify(login(d.state, d.code(now)))).toEqual({ outcome: "REPLAYED" });

    const failedId = randomUUID();
    const wrong = login(d.state, d.wrongCode(now));
    expect(await verify(wrong, failedId)).toEqual({ outcome: "INVALID" });
    for (let i = 0; i < 5; i++)
      expect(await verify(wrong, failedId)).toEqual({ outcome: "INVALID" });
    // Only one failure was spent by the six calls above, so this is the second, not a lock.
    expect(await verify(wrong)).toEqual({ outcome: "INVALID" });
  });

  it("charges the attempt even when deciding fails half-way, and refuses", async () => {
    const lua = loadWorkerScripts();
    const real = createScriptRunner(redis);
    // A matching step the script cannot read stands in for any fault after the state was read.
    const faulty: ScriptRunner = {
      singleNode: true,
      run: (script, keys, args) =>
        real.run(
          script,
          keys,
          script === lua.verify ? args.map((a, i) => (i === 10 ? "x" : a)) : args,
        ),
    };
    const { prefix, device, verify } = setup({ runner: faulty });
    const d = device();
    await expect(verify(login(d.state, d.code(await redisStep()), "cafe"))).rejects.toMatchObject({
      code: "UNAVAILABLE",
    });
    const state = `${prefix}:{d:${d.state.deviceId}}`;
    expect(await redis.hGet(state, "p:" + hashSource("cafe"))).toMatch(/^1\|/);
    expect(await redis.hGet(state, "dev")).toMatch(/^1\|/);
  });

  it("gives every one of 20 concurrent retries of a request id the same single answer", async () => {
    const { device, verify } = setup();
    const d = device();
    const request = login(d.state, d.code(await redisStep()));
    const id = randomUUID();
    const results = await Promise.all(Array.from({ length: 20 }, () => verify(request, id)));
    expect(outcomes(results)).toEqual({ OK: 20 });
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
  });

  it("refuses to reuse a request id for a different request", async () => {
    const { device, verify } = setup();
    const d = device();
    const now = await redisStep();
    const id = randomUUID();
    await verify(login(d.state, d.wrongCode(now)), id);
    await expect(verify(login(d.state, d.code(now)), id)).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
  });

  it("fails closed when Redis fails", async () => {
    const broken: ScriptRunner = { run: () => Promise.reject(new Error("connection lost")) };
    const { device, verify } = setup({ runner: broken });
    const d = device();
    await expect(verify(login(d.state, d.code(await redisStep())))).rejects.toMatchObject({
      name: "VerifierError",
      code: "UNAVAILABLE",
    });
  });

  it("fails closed on a malformed script reply", async () => {
    const lua = loadWorkerScripts();
    const real = createScriptRunner(redis);
    const garbled: ScriptRunner = {
      run: (script, keys, args) =>
        script === lua.verify ? Promise.resolve([0, 1, 0]) : real.run(script, keys, args),
    };
    const { device, verify } = setup({ runner: garbled });
    const d = device();
    await expect(verify(login(d.state, d.code(await redisStep())))).rejects.toBeInstanceOf(
      VerifierError,
    );
  });

  it("fails closed with UNSEAL_FAILED when the seed is sealed for another device", async () => {
    const { device, verify } = setup();
    const a = device();
    const b = device();
    const swapped = { ...a.state, sealedSeed: b.state.sealedSeed };
    await expect(verify(login(swapped, b.code(await redisStep())))).rejects.toMatchObject({
      code: "UNSEAL_FAILED",
    });
  });

  it("never puts the submitted code in an error", async () => {
    const { device, verify } = setup();
    const d = device();
    const request = { ...pair("enrol", d.state, d.code(await redisStep()), "x") };
    const error = await verify(request).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "BAD_REQUEST" });
    expect(JSON.stringify(error) + String(error)).not.toContain(request.code1);
  });
});
