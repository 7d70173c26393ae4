import { describe, expect, it } from "vitest";
import { isBareEmailAddress } from "../../src/common/email";

describe("isBareEmailAddress", () => {
  it("accepts ordinary addresses", () => {
    for (const email of [
      "root@example.com",
      "first.last+tag@mail.example.co.uk",
      "o'brien@example.org",
      "a_b-c@sub-domain.example",
    ]) {
      expect(isBareEmailAddress(email), email).toBe(true);
    }
  });

  it("refuses anything a mail library would deliver elsewhere or read as several addresses", () => {
    for (const email of [
      "x1,victim@corp.example",
      "x<victim@corp.example>y.z",
      "Security<victim@corp.example>",
      '"quoted"@example.com',
      "a@b@example.com",
      "victim@corp.example (comment)",
      "a;b@example.com",
      ".dot@example.com",
      "dot.@example.com",
      "a..b@example.com",
      "a@example",
      "a@-example.com",
      "a@example.c0m",
      "not-an-email",
      "@example.com",
      `${"a".repeat(65)}@example.com`,
    ]) {
      expect(isBareEmailAddress(email), email).toBe(false);
    }
  });
});
