import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HASH_ALGORITHMS } from "../../worker/protocol";
import { base32Decode, base32Encode } from "../../worker/totp/base32";
import { hotp, matchingSteps, stepAt, totpAt } from "../../worker/totp/hotp";

// RFC 6238 Appendix B: the seed is "12345678901234567890" repeated to the hash's block size.
const RFC_SEEDS = {
  SHA1: Buffer.from("12345678901234567890"),
  SHA256: Buffer.from("12345678901234567890123456789012"),
  SHA512: Buffer.from("1234567890123456789012345678901234567890123456789012345678901234"),
};
const RFC_VECTORS: [number, Record<keyof typeof RFC_SEEDS, string>][] = [
  [59, { SHA1: "94287082", SHA256: "46119246", SHA512: "90693936" }],
  [1111111109, { SHA1: "07081804", SHA256: "68084774", SHA512: "25091201" }],
  [1111111111, { SHA1: "14050471", SHA256: "67062674", SHA512: "99943326" }],
  [1234567890, { SHA1: "89005924", SHA256: "91819424", SHA512: "93441116" }],
  [2000000000, { SHA1: "69279037", SHA256: "90698825", SHA512: "38618901" }],
  [20000000000, { SHA1: "65353130", SHA256: "77737706", SHA512: "47863826" }],
];

describe("TOTP codes", () => {
  for (const algorithm of HASH_ALGORITHMS) {
    it(`matches every RFC 6238 Appendix B vector for ${algorithm} at 8 digits`, () => {
      for (const [time, expected] of RFC_VECTORS) {
        expect(totpAt(RFC_SEEDS[algorithm], time * 1000, algorithm, 8, 30)).toBe(
          expected[algorithm],
        );
      }
    });
  }

  it("matches the RFC 4226 Appendix D HOTP values at 6 digits", () => {
    const expected = [
      "755224",
      "287082",
      "359152",
      "969429",
      "338314",
      "254676",
      "287922",
      "162583",
    ];
    expected.forEach((code, counter) =>
      expect(hotp(RFC_SEEDS.SHA1, counter, "SHA1", 6)).toBe(code),
    );
  });

  const oathtool = existsSync("/usr/bin/oathtool") ? "/usr/bin/oathtool" : undefined;
  describe.skipIf(!oathtool)(
    "against oathtool (skipped: /usr/bin/oathtool is not installed)",
    () => {
      for (const algorithm of HASH_ALGORITHMS) {
        for (const digits of [6, 8] as const) {
          it(`agrees with oathtool --totp=${algorithm} -d ${digits} for random seeds and times`, () => {
            fc.assert(
              fc.property(
                fc.uint8Array({ minLength: 10, maxLength: 64 }),
                fc.integer({ min: 0, max: 4_102_444_800 }), // up to 2100-01-01
                fc.constantFrom(30, 60),
                (seed, unix, period) => {
                  const key = Buffer.from(seed);
                  const args = [`--totp=${algorithm}`, "-d", String(digits), "-s", `${period}s`];
                  const theirs = execFileSync(
                    oathtool!,
                    [...args, "-N", `@${unix}`, key.toString("hex")],
                    {
                      encoding: "utf8",
                    },
                  ).trim();
                  expect(totpAt(key, unix * 1000, algorithm, digits, period)).toBe(theirs);
                },
              ),
              { numRuns: 25 },
            );
          });
        }
      }
    },
  );

  it("counts steps from the Unix epoch in whole periods", () => {
    expect(stepAt(59_000, 30)).toBe(1);
    expect(stepAt(60_000, 30)).toBe(2);
    expect(stepAt(1_111_111_109_000, 30)).toBe(37037036);
  });
});

describe("matchingSteps", () => {
  const key = RFC_SEEDS.SHA1;
  const now = stepAt(1_234_567_890_000, 30);

  it("finds the step a code belongs to anywhere in the window", () => {
    const code = hotp(key, now + 2, "SHA1", 6);
    expect(matchingSteps(key, code, now - 3, now + 3, "SHA1", 6)).toContain(now + 2);
  });

  it("finds nothing for a code outside the window", () => {
    const code = hotp(key, now + 5, "SHA1", 6);
    expect(matchingSteps(key, code, now - 1, now + 1, "SHA1", 6)).not.toContain(now + 5);
  });

  it("matches nothing for a code of the wrong length or with non-digits", () => {
    const code = hotp(key, now, "SHA1", 8);
    expect(matchingSteps(key, code, now - 1, now + 1, "SHA1", 6)).toEqual([]);
    expect(matchingSteps(key, code.slice(0, 6), now, now, "SHA1", 8)).toEqual([]);
    expect(matchingSteps(key, "12345a", now - 1, now + 1, "SHA1", 6)).toEqual([]);
  });
});

describe("base32", () => {
  it("encodes the RFC 4648 test vectors without padding", () => {
    const vectors = ["", "MY", "MZXQ", "MZXW6", "MZXW6YQ", "MZXW6YTB", "MZXW6YTBOI"];
    vectors.forEach((encoded, length) =>
      expect(base32Encode(Buffer.from("foobar".slice(0, length)))).toBe(encoded),
    );
  });

  it("decodes what it encodes, for any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        expect(base32Decode(base32Encode(bytes))).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it("accepts lowercase, spaces and padding as people type them", () => {
    expect(base32Decode("mzxw 6ytb oi======")).toEqual(Buffer.from("foobar"));
  });

  it("refuses characters outside the alphabet and impossible lengths", () => {
    expect(() => base32Decode("MZXW1")).toThrow(/invalid character/);
    expect(() => base32Decode("MZX")).toThrow(/impossible length/);
  });
});
