/**
 * Creates and re-keys device seeds. The plaintext seed exists only inside these functions
 * (and, for provisioning, in the one reply that shows it to the person enrolling).
 */
import { randomBytes } from "node:crypto";
import type { z } from "zod";
import type { DeviceState, ProvisionReplySchema, ResealReplySchema } from "./protocol";
import { base32Encode } from "./totp/base32";
import type { Keyring, SeedBinding } from "./seal/keyring";

export type ProvisionReply = z.infer<typeof ProvisionReplySchema>;
export type ResealReply = z.infer<typeof ResealReplySchema>;

/** 40 bytes, as AWS uses: exactly 64 base32 characters with no padding. */
const SEED_BYTES = 40;

export function provisionSeed(keyring: Keyring, binding: SeedBinding): ProvisionReply {
  const seed = randomBytes(SEED_BYTES);
  try {
    const { sealedSeed, keyId } = keyring.seal(seed, binding);
    return { base32Seed: base32Encode(seed), sealedSeed, keyId };
  } finally {
    seed.fill(0);
  }
}

/** The same seed sealed under the keyring's current key, for key rotation. Throws `UnsealError`. */
export function resealSeed(keyring: Keyring, device: DeviceState): ResealReply {
  const binding = { accountId: device.accountId, deviceId: device.deviceId };
  const seed = keyring.unseal(device.sealedSeed, device.keyId, binding);
  try {
    return keyring.seal(seed, binding);
  } finally {
    seed.fill(0);
  }
}
