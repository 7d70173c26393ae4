import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DeviceStateSchema, ProvisionReplySchema, ResealReplySchema } from "../../worker/protocol";
import { provisionSeed, resealSeed } from "../../worker/provision";
import { generateKeyringSpec, parseKeyring, UnsealError } from "../../worker/seal/keyring";
import { base32Decode } from "../../worker/totp/base32";

const binding = { accountId: "123456789012", deviceId: "dev-1" };
const seed = randomBytes(40);

function unsealFailure(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(UnsealError);
    return (error as UnsealError).reason;
  }
  throw new Error("expected unseal to fail");
}

describe("sealing seeds", () => {
  const keyring = parseKeyring(generateKeyringSpec("k1"));

  it("unseals what it sealed, under the current key id", () => {
    const sealed = keyring.seal(seed, binding);
    expect(sealed.keyId).toBe("k1");
    expect(keyring.unseal(sealed.sealedSeed, sealed.keyId, binding)).toEqual(seed);
  });

  it("uses a fresh IV every time, so equal seeds never seal alike", () => {
    expect(keyring.seal(seed, binding).sealedSeed).not.toBe(keyring.seal(seed, binding).sealedSeed);
  });

  it("refuses a sealed seed moved to another device or account", () => {
    const { sealedSeed, keyId } = keyring.seal(seed, binding);
    expect(
      unsealFailure(() => keyring.unseal(sealedSeed, keyId, { ...binding, deviceId: "dev-2" })),
    ).toBe("AUTHENTICATION_FAILED");
    expect(
      unsealFailure(() =>
        keyring.unseal(sealedSeed, keyId, { ...binding, accountId: "210987654321" }),
      ),
    ).toBe("AUTHENTICATION_FAILED");
  });

  it("refuses a sealed seed relabelled with another key id, even one holding the same key", () => {
    const key = generateKeyringSpec("a").split(":")[1];
    const twins = parseKeyring(`a:${key},b:${key}`);
    const { sealedSeed } = twins.seal(seed, binding);
    expect(unsealFailure(() => twins.unseal(sealedSeed, "b", binding))).toBe(
      "AUTHENTICATION_FAILED",
    );
    expect(unsealFailure(() => twins.unseal(sealedSeed, "zz", binding))).toBe("UNKNOWN_KEY_ID");
  });

  it("refuses tampered ciphertext, tag, IV or version", () => {
    const { sealedSeed, keyId } = keyring.seal(seed, binding);
    const bytes = Buffer.from(sealedSeed, "base64");
    for (const index of [0, 5, 20, bytes.length - 1]) {
      const tampered = Buffer.from(bytes);
      tampered[index]! ^= 0x01;
      expect(() => keyring.unseal(tampered.toString("base64"), keyId, binding)).toThrow(
        UnsealError,
      );
    }
    expect(
      unsealFailure(() => keyring.unseal(bytes.subarray(0, 20).toString("base64"), keyId, binding)),
    ).toBe("MALFORMED");
  });

  it("still unseals with an old key after a new one becomes current", () => {
    const oldSpec = generateKeyringSpec("old");
    const sealedOld = parseKeyring(oldSpec).seal(seed, binding);
    const rotated = parseKeyring(`${generateKeyringSpec("new")},${oldSpec}`);
    expect(rotated.currentKeyId).toBe("new");
    expect(rotated.unseal(sealedOld.sealedSeed, "old", binding)).toEqual(seed);
  });

  it("reseals a device's seed under the current key", () => {
    const oldSpec = generateKeyringSpec("old");
    const sealedOld = parseKeyring(oldSpec).seal(seed, binding);
    const rotated = parseKeyring(`${generateKeyringSpec("new")},${oldSpec}`);
    const device = DeviceStateSchema.parse({ ...binding, ...sealedOld, drift: 0, lastStep: null });
    const resealed = ResealReplySchema.parse(resealSeed(rotated, device));
    expect(resealed.keyId).toBe("new");
    expect(rotated.unseal(resealed.sealedSeed, "new", binding)).toEqual(seed);
    // Sealed under "new" itself, not merely labelled so: another key called "new" cannot open it.
    const impostor = parseKeyring(generateKeyringSpec("new"));
    expect(unsealFailure(() => impostor.unseal(resealed.sealedSeed, "new", binding))).toBe(
      "AUTHENTICATION_FAILED",
    );
  });

  it("never puts key material in a keyring error or in the keyring's printed form", () => {
    const key = randomBytes(31).toString("base64");
    expect(() => parseKeyring(`k:${key}`)).toThrow(/32 bytes/);
    try {
      parseKeyring(`k:${key}`);
    } catch (error) {
      expect(String(error)).not.toContain(key);
    }
    const spec = generateKeyringSpec("k");
    expect(JSON.stringify(parseKeyring(spec))).not.toContain(spec.split(":")[1]);
    expect(() => parseKeyring("k:abc,k:abc")).toThrow();
    expect(() => parseKeyring(`${spec},${spec}`)).toThrow(/duplicate/);
  });
});

describe("provisioning", () => {
  const keyring = parseKeyring(generateKeyringSpec("k1"));

  it("creates a 64-character base32 seed from 40 random bytes, sealed to the device", () => {
    const reply = ProvisionReplySchema.parse(provisionSeed(keyring, binding));
    const bytes = base32Decode(reply.base32Seed);
    expect(bytes).toHaveLength(40);
    expect(keyring.unseal(reply.sealedSeed, reply.keyId, binding)).toEqual(bytes);
  });

  it("never provisions the same seed twice", () => {
    const seeds = new Set(
      Array.from({ length: 50 }, () => provisionSeed(keyring, binding).base32Seed),
    );
    expect(seeds.size).toBe(50);
  });
});
