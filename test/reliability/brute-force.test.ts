/**
 * Brute force over a simulated year. The worker's one clock is Redis TIME, so the test moves
 * Redis's own wall clock: a throwaway redis-server runs with test/support/fast-clock.c preloaded
 * (libfaketime cannot: Debian's redis-server uses jemalloc, which breaks libfaketime's start-up),
 * and the attacker jumps that clock forward by exactly the retryAfterSeconds each refusal names,
 * so lock expiries pass at once in real time. The real verifier (createVerifier with the
 * worker/lua scripts and the DEFAULT policy) decides every guess.
 */
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createScriptRunner, type RedisConnection } from "../../worker/lua/scripts";
import { connectRedis, type AnyRedis } from "../../worker/redis-connection";
import { DeviceStateSchema } from "../../worker/protocol";
import { generateKeyringSpec, parseKeyring } from "../../worker/seal/keyring";
import { createVerifier, type VerifyRequest } from "../../worker/verify/verifier";
import { guessesPerYear, parsePolicy } from "../../worker/verify/policy";
import {
  cleanUpAll,
  createClockControl,
  startRedisServer,
  type ClockControl,
} from "../support/throwaway";

const YEAR = 365 * 86_400;
const ACCOUNT = "123456789012";

let clock: ClockControl;
let redis: AnyRedis;

beforeAll(async () => {
  clock = createClockControl();
  const server = await startRedisServer({ clock });
  redis = await connectRedis({ url: server.url });
});
afterAll(async () => {
  await redis?.close();
  await cleanUpAll();
});

async function redisSeconds(): Promise<number> {
  const [seconds] = await (redis as unknown as { time(): Promise<[string, string]> }).time();
  return Number(seconds);
}

function newDevice() {
  const keyring = parseKeyring(generateKeyringSpec("bf"));
  const deviceId = randomUUID();
  const sealed = keyring.seal(randomBytes(40), { accountId: ACCOUNT, deviceId });
  const verifier = createVerifier({
    scripts: createScriptRunner(redis as RedisConnection),
    keyring,
    prefix: `bf-${deviceId.slice(0, 8)}`,
    // The worker's clock only guesses which steps to compute; keep it on Redis's offset clock.
    localClock: () => Date.now() + clock.offsetSeconds * 1000,
  });
  // The schema's defaults are AWS's: SHA1, 6 digits, 30 s.
  const device = DeviceStateSchema.parse({
    deviceId,
    accountId: ACCOUNT,
    ...sealed,
    drift: 0,
    lastStep: null,
  });
  const request = (code: string, source: string): VerifyRequest => ({
    op: "verify",
    mode: "login",
    device,
    code1: code,
    source,
  });
  return { verifier, request };
}

/**
 * Guesses as fast as the limits allow for `seconds` of Redis time: each refusal's
 * retryAfterSeconds is waited (the clock jumped) and nothing else. Sources rotate over
 * `sources` addresses. Returns what happened.
 */
async function attack(seconds: number, sources: number) {
  const { verifier, request } = newDevice();
  const start = clock.offsetSeconds;
  let guesses = 0;
  let throttled = 0;
  let accepted = 0;
  let turn = 0;
  const redisStart = await redisSeconds();
  while (clock.offsetSeconds - start < seconds) {
    const source = `203.0.113.${(turn++ % sources) + 1}`;
    const code = String(randomInt(0, 1_000_000)).padStart(6, "0");
    const result = await verifier.verify(request(code, source), randomUUID());
    if (result.outcome === "THROTTLED") {
      throttled++;
      clock.advance(result.retryAfterSeconds);
    } else {
      guesses++;
      if (result.outcome === "OK") accepted++;
      clock.advance(1);
    }
  }
  const redisElapsed = (await redisSeconds()) - redisStart;
  // Each guess is checked against the ±1 window: 3 of the 10^6 codes.
  const chance = 1 - (1 - 3 / 1_000_000) ** guesses;
  return { guesses, throttled, accepted, redisElapsed, chance };
}

describe("brute force against the default policy, over a simulated year", () => {
  it("the test really moves the verifier's clock: Redis TIME jumps and keys expire", async () => {
    const before = await redisSeconds();
    await redis.set("bf-probe", "1", { EX: 3600 });
    clock.advance(3601);
    expect((await redisSeconds()) - before).toBeGreaterThanOrEqual(3601);
    expect(await redis.get("bf-probe")).toBeNull();
  });

  it("one source with the password gets fewer than 100 guesses a year at one device", async () => {
    const policy = parsePolicy({});
    const boundPerYear = guessesPerYear(
      policy.pairFree,
      policy.pairBaseSeconds,
      policy.pairCapSeconds,
    );
    const year = await attack(YEAR, 1);
    console.log(
      `[brute force, one source] simulated ${Math.round(year.redisElapsed / 86_400)} days of ` +
        `Redis time: ${year.guesses} guesses checked, ${year.throttled} refused as throttled, ` +
        `${year.accepted} accepted; chance of success ${(year.chance * 100).toFixed(4)}% ` +
        `(policy's own bound: ${boundPerYear} guesses a year)`,
    );
    expect(year.redisElapsed).toBeGreaterThanOrEqual(YEAR);
    expect(year.guesses).toBeLessThan(100);
    expect(year.guesses).toBeGreaterThan(20); // the attack really ran
    expect(year.chance).toBeLessThan(0.001);
  }, 120_000);

  it("reports what many sources together get at one device (the per-device layer's rate)", async () => {
    // Not a pass/fail bound of the product: the per-device layer is deliberately short so that
    // nobody can lock a device out for long. Simulated for a week and printed, per year.
    const policy = parsePolicy({});
    const week = await attack(7 * 86_400, 1000);
    const perYear = Math.round((week.guesses * YEAR) / week.redisElapsed);
    // What each layer alone allows over the same simulated time.
    const deviceBound = guessesPerYear(
      policy.deviceFree,
      policy.deviceBaseSeconds,
      policy.deviceCapSeconds,
      week.redisElapsed,
    );
    const oneSourceBound = guessesPerYear(
      policy.pairFree,
      policy.pairBaseSeconds,
      policy.pairCapSeconds,
      week.redisElapsed,
    );
    console.log(
      `[brute force, 1000 sources] simulated ${Math.round(week.redisElapsed / 86_400)} days: ` +
        `${week.guesses} guesses checked (≈ ${perYear} a year, chance of success ≈ ` +
        `${((1 - (1 - 3e-6) ** perYear) * 100).toFixed(2)}% a year at the verifier alone)`,
    );
    // Rotating sources gets past the per-source layer, but the per-device one still holds.
    expect(week.guesses).toBeGreaterThan(oneSourceBound);
    expect(week.guesses).toBeLessThanOrEqual(deviceBound);
  }, 120_000);
});
