import { createHash, randomBytes } from "node:crypto";

/** A bearer token: a prefix that secret scanners can spot, then 256 random bits. */
export function newToken(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString("base64url")}`;
}

/** Tokens are stored only as SHA-256: they are random, so a slow hash adds nothing. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
