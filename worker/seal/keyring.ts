/**
 * Seals device seeds with AES-256-GCM under named keys, so keys can rotate without downtime:
 * a sealed seed records the id of the key that sealed it, and the keyring keeps old keys for
 * unsealing while new seals use the current one.
 *
 * Associated data binds each sealed seed to its account, device and key id. A sealed seed copied
 * into another device's row, or relabelled with another key id, fails authentication instead of
 * yielding a seed someone else enrolled.
 *
 * Key bytes live only in this module's closures: nothing enumerable on the keyring holds them,
 * so logging a keyring cannot leak a key.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

const FORMAT_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const AAD_LABEL = "virtual-mfa/seed";
const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export interface SeedBinding {
  accountId: string;
  deviceId: string;
}

export interface SealedSeed {
  /** base64 of version byte | 12-byte IV | 16-byte tag | ciphertext */
  sealedSeed: string;
  keyId: string;
}

export interface Keyring {
  /** The key new seals use. */
  readonly currentKeyId: string;
  /** Every key id that can still unseal, current first. */
  readonly keyIds: readonly string[];
  seal(seed: Buffer, binding: SeedBinding): SealedSeed;
  /** The seed bytes; the caller should `fill(0)` them when done. Throws `UnsealError`. */
  unseal(sealedSeed: string, keyId: string, binding: SeedBinding): Buffer;
}

export type UnsealFailure = "UNKNOWN_KEY_ID" | "MALFORMED" | "AUTHENTICATION_FAILED";

const UNSEAL_MESSAGES: Record<UnsealFailure, string> = {
  UNKNOWN_KEY_ID: "sealed seed names a key id this keyring does not hold",
  MALFORMED: "sealed seed is not in the expected format",
  AUTHENTICATION_FAILED:
    "sealed seed failed authentication (tampered, or bound to another device or key)",
};

/** Why a seed could not be unsealed. The message never contains key or seed material. */
export class UnsealError extends Error {
  override readonly name = "UnsealError";
  constructor(readonly reason: UnsealFailure) {
    super(UNSEAL_MESSAGES[reason]);
  }
}

/** Length-prefixed, so no two different (account, device, key) triples encode alike. */
function associatedData(binding: SeedBinding, keyId: string): Buffer {
  const parts = [AAD_LABEL, String(FORMAT_VERSION), binding.accountId, binding.deviceId, keyId];
  return Buffer.concat(
    parts.flatMap((part) => {
      const bytes = Buffer.from(part, "utf8");
      const length = Buffer.alloc(2);
      length.writeUInt16BE(bytes.length);
      return [length, bytes];
    }),
  );
}

/**
 * Builds a keyring from `kid1:<base64 of 32 bytes>,kid2:<base64>`. The FIRST entry is the
 * current key; list a new key first to rotate, and keep old ones after it until every device
 * has been resealed. Errors name the entry by position, never by its key.
 */
export function parseKeyring(spec: string): Keyring {
  const keys = new Map<string, Buffer>();
  const entries = spec
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new Error("keyring: no keys given");
  entries.forEach((entry, index) => {
    const separator = entry.indexOf(":");
    const keyId = entry.slice(0, separator);
    const encoded = entry.slice(separator + 1);
    const where = `keyring entry ${index + 1}`;
    if (separator < 1 || !KEY_ID_PATTERN.test(keyId)) {
      throw new Error(`${where}: expected <keyId>:<base64 key> with keyId of [A-Za-z0-9._-]`);
    }
    if (keys.has(keyId)) throw new Error(`${where}: duplicate key id ${keyId}`);
    const key = Buffer.from(encoded, "base64");
    // Round-tripping catches stray characters that Buffer.from would silently skip.
    const canonical = key.toString("base64").replace(/=+$/, "");
    if (key.length !== KEY_BYTES || canonical !== encoded.replace(/=+$/, "")) {
      throw new Error(`${where}: key must be ${KEY_BYTES} bytes in base64`);
    }
    keys.set(keyId, key);
  });
  return createKeyring(keys);
}

function createKeyring(keys: Map<string, Buffer>): Keyring {
  const keyIds = Object.freeze([...keys.keys()]);
  const currentKeyId = keyIds[0]!;

  function seal(seed: Buffer, binding: SeedBinding): SealedSeed {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", keys.get(currentKeyId)!, iv);
    cipher.setAAD(associatedData(binding, currentKeyId));
    const ciphertext = Buffer.concat([cipher.update(seed), cipher.final()]);
    const sealed = Buffer.concat([
      Buffer.from([FORMAT_VERSION]),
      iv,
      cipher.getAuthTag(),
      ciphertext,
    ]);
    return { sealedSeed: sealed.toString("base64"), keyId: currentKeyId };
  }

  function unseal(sealedSeed: string, keyId: string, binding: SeedBinding): Buffer {
    const key = keys.get(keyId);
    if (!key) throw new UnsealError("UNKNOWN_KEY_ID");
    const sealed = Buffer.from(sealedSeed, "base64");
    if (sealed.length < 1 + IV_BYTES + TAG_BYTES + 1 || sealed[0] !== FORMAT_VERSION) {
      throw new UnsealError("MALFORMED");
    }
    const iv = sealed.subarray(1, 1 + IV_BYTES);
    const tag = sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
    const ciphertext = sealed.subarray(1 + IV_BYTES + TAG_BYTES);
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(associatedData(binding, keyId));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } catch {
      // Node's own message is generic, but replacing it keeps the contract explicit.
      throw new UnsealError("AUTHENTICATION_FAILED");
    }
  }

  return Object.freeze({ currentKeyId, keyIds, seal, unseal });
}

/** A fresh single-key spec for development, e.g. `WORKER_KEYRING=$(... generateKeyringSpec())`. */
export function generateKeyringSpec(keyId = "dev"): string {
  if (!KEY_ID_PATTERN.test(keyId)) throw new Error("keyring: invalid key id");
  return `${keyId}:${randomBytes(KEY_BYTES).toString("base64")}`;
}
