/**
 * RFC 4648 base32 (the alphabet authenticator apps use for TOTP secrets).
 *
 * Hand-written rather than borrowed from otplib's plugin because:
 * - speed: it is a single table lookup per character with no per-call guards or intermediate
 *   strings, which matters in the benchmark and in bulk provisioning;
 * - the decoder must accept what people actually type or paste from a QR tool: lowercase,
 *   `=` padding and spaces, which @scure/base (otplib's default) rejects;
 * - the worker's hot path never decodes base32 at all (sealed seeds hold raw bytes), so the only
 *   callers are provisioning, tests and tools, and they should not depend on a plugin's internals.
 */
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

const DECODE_TABLE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) {
  DECODE_TABLE[ALPHABET.charCodeAt(i)] = i;
  DECODE_TABLE[ALPHABET.toLowerCase().charCodeAt(i)] = i;
}

/** Encodes without padding, as otpauth:// URIs and AWS's Base32StringSeed do. */
export function base32Encode(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < bytes.length; i++) {
    buffer = (buffer << 8) | bytes[i]!;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(buffer >>> bits) & 31];
    }
    buffer &= (1 << bits) - 1; // keep only the unread bits so the accumulator never overflows
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * Decodes, ignoring case, whitespace, hyphens and trailing `=` padding.
 * Throws on any other character or on a length no encoder can produce; the message never
 * repeats the input, because the input is usually a secret.
 */
export function base32Decode(text: string): Buffer {
  const clean = text.replace(/[\s-]+/g, "").replace(/=+$/, "");
  // 1, 3 and 6 leftover characters cannot come from whole bytes.
  if ([1, 3, 6].includes(clean.length % 8)) throw new Error("base32: impossible length");
  const out = Buffer.allocUnsafe(Math.floor((clean.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let index = 0;
  for (let i = 0; i < clean.length; i++) {
    const code = clean.charCodeAt(i);
    const value = code < 128 ? DECODE_TABLE[code]! : -1;
    if (value < 0) throw new Error(`base32: invalid character at position ${i}`);
    buffer = (buffer << 5) | value;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[index++] = (buffer >>> bits) & 0xff;
      buffer &= (1 << bits) - 1;
    }
  }
  return out;
}
