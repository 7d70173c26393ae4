/**
 * HOTP (RFC 4226) and the TOTP step arithmetic (RFC 6238) on raw key bytes.
 *
 * The worker unseals a device's seed to bytes once per request and calls node:crypto directly:
 * otplib spends most of its time decoding the base32 secret and running guards on every call,
 * which a verifier that already holds the decoded key does not need.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { HashAlgorithm } from "../protocol";

export type Digits = 6 | 8;

const NODE_HASH: Record<HashAlgorithm, string> = {
  SHA1: "sha1",
  SHA256: "sha256",
  SHA512: "sha512",
};
const MODULUS: Record<Digits, number> = { 6: 1_000_000, 8: 100_000_000 };

/** The code for one counter value, zero-padded to `digits`. */
export function hotp(
  key: Buffer,
  counter: number,
  algorithm: HashAlgorithm,
  digits: Digits,
): string {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new RangeError("hotp: bad counter");
  const message = Buffer.alloc(8);
  // Split into two 32-bit halves: JS bit operators only see 32 bits.
  message.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 0);
  message.writeUInt32BE(counter >>> 0, 4);
  const mac = createHmac(NODE_HASH[algorithm], key).update(message).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fff_ffff;
  return String(binary % MODULUS[digits]).padStart(digits, "0");
}

/** The TOTP step (counter) that contains `unixMs`, with T0 = 0 as every authenticator uses. */
export function stepAt(unixMs: number, period: number): number {
  return Math.floor(unixMs / (period * 1000));
}

/** The code an authenticator shows at `unixMs`. */
export function totpAt(
  key: Buffer,
  unixMs: number,
  algorithm: HashAlgorithm = "SHA1",
  digits: Digits = 6,
  period = 30,
): string {
  return hotp(key, stepAt(unixMs, period), algorithm, digits);
}

/**
 * Every step in [fromStep, toStep] whose code equals `code`.
 *
 * The whole window is always computed and every comparison runs, in constant time, so the time
 * taken does not reveal whether or where the code matched. A code of the wrong length or with
 * non-digits still costs the full window and matches nothing.
 */
export function matchingSteps(
  key: Buffer,
  code: string,
  fromStep: number,
  toStep: number,
  algorithm: HashAlgorithm,
  digits: Digits,
): number[] {
  const wellFormed = code.length === digits && /^\d+$/.test(code);
  const submitted = wellFormed ? Buffer.from(code, "latin1") : Buffer.alloc(digits, 0xff);
  const matches: number[] = [];
  for (let step = Math.max(0, fromStep); step <= toStep; step++) {
    const expected = Buffer.from(hotp(key, step, algorithm, digits), "latin1");
    const equal = timingSafeEqual(expected, submitted);
    if (equal) matches.push(step);
  }
  return matches;
}
