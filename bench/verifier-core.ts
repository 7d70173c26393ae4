/**
 * In-process verifications per second of the worker's TOTP core beside otplib 13's verifySync,
 * measured in the same run on the same seed. Run: npx tsx bench/verifier-core.ts
 *
 * Optionally (REDIS_URL, default redis://127.0.0.1:6379) it also measures whole verify() calls
 * through the Lua scripts, with attempt limits raised so every call does the full work.
 */
import { randomUUID } from "node:crypto";
import { verifySync } from "otplib";
import { createClient } from "redis";
import { createScriptRunner } from "../worker/lua/scripts";
import { provisionSeed } from "../worker/provision";
import { generateKeyringSpec, parseKeyring } from "../worker/seal/keyring";
import { base32Decode } from "../worker/totp/base32";
import { matchingSteps, stepAt, totpAt } from "../worker/totp/hotp";
import { createVerifier } from "../worker/verify/verifier";
import { deleteKeysWithPrefix } from "./lib/redis-keys";

const DURATION_MS = Number(process.env.BENCH_MS ?? 3000);
const keyring = parseKeyring(generateKeyringSpec("bench"));
const binding = { accountId: "123456789012", deviceId: "bench-device" };
const { base32Seed, sealedSeed, keyId } = provisionSeed(keyring, binding);
const seed = base32Decode(base32Seed);
const code = totpAt(seed, Date.now());
const wrong = code === "000000" ? "000001" : "000000";

function measure(run: () => unknown, durationMs = DURATION_MS): number {
  const warmUntil = Date.now() + 100;
  while (Date.now() < warmUntil) run();
  let count = 0;
  const start = process.hrtime.bigint();
  const stop = Date.now() + durationMs;
  while (Date.now() < stop) {
    for (let i = 0; i < 100; i++) run();
    count += 100;
  }
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** What the worker does in-process for one login: unseal, then HMAC a window of steps. */
function workerPath(submitted: string, halfWidth: number) {
  return () => {
    const key = keyring.unseal(sealedSeed, keyId, binding);
    const now = stepAt(Date.now(), 30);
    const matches = matchingSteps(key, submitted, now - halfWidth, now + halfWidth, "SHA1", 6);
    key.fill(0);
    return matches;
  };
}

async function throughRedis(): Promise<number | undefined> {
  const redis = createClient({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379" });
  redis.on("error", () => undefined);
  try {
    await redis.connect();
  } catch {
    return undefined;
  }
  const prefix = `bench-${randomUUID()}`;
  const limitless = { pairFree: 1e9, deviceFree: 1e9, sourceBudget: 1e9 };
  const verifier = createVerifier({
    scripts: createScriptRunner(redis),
    keyring,
    prefix,
    policy: limitless,
  });
  const device = {
    ...binding,
    sealedSeed,
    keyId,
    algorithm: "SHA1",
    digits: 6,
    period: 30,
    drift: 0,
    lastStep: null,
  } as const;
  const request = { op: "verify", mode: "login", device, code1: wrong, source: "bench" } as const;
  let done = 0;
  const stop = Date.now() + DURATION_MS;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (Date.now() < stop) {
        await verifier.verify(request, randomUUID());
        done++;
      }
    }),
  );
  const rate = done / (Number(process.hrtime.bigint() - start) / 1e9);
  await deleteKeysWithPrefix(redis, prefix);
  await redis.close();
  return rate;
}

/** The headline pair for the benchmark table: otplib's rate and our core's, same run. */
export function measureCoreAgainstOtplib(): { otplib: number; core: number } {
  // The module's `code` was computed at import, which in `npm run bench` is minutes earlier.
  const current = totpAt(seed, Date.now());
  checkAgreement(current);
  const otplib = () => verifySync({ secret: base32Seed, token: current, epochTolerance: 30 });
  const core = () => {
    const n = stepAt(Date.now(), 30);
    return matchingSteps(seed, current, n - 1, n + 1, "SHA1", 6);
  };
  // Alternating short rounds, then the median of each: a burst of load from another process
  // then hits both sides alike instead of whichever happened to be measuring.
  const rounds = { otplib: [] as number[], core: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    rounds.otplib.push(measure(otplib, DURATION_MS / ROUNDS));
    rounds.core.push(measure(core, DURATION_MS / ROUNDS));
  }
  return { otplib: median(rounds.otplib), core: median(rounds.core) };
}

const ROUNDS = 7;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function checkAgreement(code: string) {
  if (!verifySync({ secret: base32Seed, token: code, epochTolerance: 30 }).valid) {
    throw new Error("otplib disagrees with our code; the comparison would be meaningless");
  }
  if (
    !matchingSteps(seed, code, stepAt(Date.now(), 30) - 1, stepAt(Date.now(), 30) + 1, "SHA1", 6)
      .length
  ) {
    throw new Error("core did not match the current code");
  }
}

async function main() {
  checkAgreement(code);
  const rows: [string, string, number | undefined][] = [
    [
      "otplib 13 verifySync, ±1 step",
      "base32 secret, 3 HMACs",
      measure(() => verifySync({ secret: base32Seed, token: code, epochTolerance: 30 })),
    ],
    [
      "core matchingSteps, ±1 step",
      "decoded key, 3 HMACs",
      measure(() => {
        const n = stepAt(Date.now(), 30);
        return matchingSteps(seed, code, n - 1, n + 1, "SHA1", 6);
      }),
    ],
    ["worker in-process, valid login", "unseal + ±2 steps (5 HMACs)", measure(workerPath(code, 2))],
    [
      "worker in-process, wrong code",
      "unseal + ±12 steps (25 HMACs)",
      measure(workerPath(wrong, 12)),
    ],
    [
      "verify() through Redis, 50 in flight",
      "3 scripts per call, wrong code",
      await throughRedis(),
    ],
  ];
  const baseline = rows[0]![2]!;
  console.log(`node ${process.version}, ${DURATION_MS} ms per row, SHA1 / 6 digits / 30 s\n`);
  console.log("| what | work per verification | verifications/s | vs otplib |");
  console.log("|---|---|---:|---:|");
  for (const [what, work, rate] of rows) {
    const shown = rate === undefined ? "n/a (no Redis)" : Math.round(rate).toLocaleString("en-US");
    const ratio = rate === undefined ? "" : `${(rate / baseline).toFixed(2)}×`;
    console.log(`| ${what} | ${work} | ${shown} | ${ratio} |`);
  }
}

if (require.main === module) void main();
