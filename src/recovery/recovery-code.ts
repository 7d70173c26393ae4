/**
 * Recovery codes: 80 random bits as 16 Crockford base32 characters in groups of four
 * (`7QF2-M9XK-4D0C-HRWA`), stored only as an HMAC under a pepper the database does not hold.
 * Reading them back is forgiving, as Crockford intends: any case, spaces and hyphens anywhere,
 * O for 0 and I or L for 1.
 */
import { createHmac, randomBytes } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
export const RECOVERY_CODE_LENGTH = 16;
export const RECOVERY_CODES_PER_SET = 10;

export function newRecoveryCode(): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out.match(/.{4}/g)!.join("-");
}

/** The canonical form of a typed code, or null when it cannot be a recovery code. */
export function normaliseRecoveryCode(raw: string): string | null {
  if (raw.length > 64) return null;
  const code = raw
    .toUpperCase()
    .replace(/[\s-]+/g, "")
    .replace(/O/g, "0")
    .replace(/[IL]/g, "1");
  if (code.length !== RECOVERY_CODE_LENGTH) return null;
  for (const char of code) if (!ALPHABET.includes(char)) return null;
  return code;
}

/** The stored form: bound to its user, so equal codes of two users never share a hash. */
export function hashRecoveryCode(pepper: string, userId: string, canonicalCode: string): string {
  return createHmac("sha256", pepper)
    .update(`recovery-code\0${userId}\0${canonicalCode}`)
    .digest("hex");
}
