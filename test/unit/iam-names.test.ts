import { describe, expect, it } from "vitest";
import {
  checkNewSerialNumber,
  checkNewUserName,
  checkPath,
  checkSerialNumber,
  checkTags,
} from "../../src/common/iam-names";

describe("IAM names and paths", () => {
  it("accepts IAM's name characters", () => {
    expect(checkNewUserName("a+b=c,d.e@f-g_h")).toBe("a+b=c,d.e@f-g_h");
  });

  it.each(["/", "/a/", "/test//double/", `/${"a".repeat(510)}/`])("accepts path %s", (path) => {
    expect(checkPath(path)).toBe(path);
  });

  it.each(["", "a/", "/a", "/a b/", "/é/", `/${"a".repeat(511)}/`])("refuses path %j", (path) => {
    expect(() => checkPath(path)).toThrow();
  });

  it("says which bound a serial number breaks", () => {
    expect(() => checkSerialNumber("nope")).toThrow("greater than or equal to 9");
    expect(() => checkSerialNumber("x".repeat(257))).toThrow("less than or equal to 256");
  });

  it("lets a new device have only a serial number every later call accepts", () => {
    const serial = `arn:aws:iam::123456789012:mfa/${"n".repeat(226)}`;
    expect(serial).toHaveLength(256);
    expect(checkNewSerialNumber(serial)).toBe(serial);
    expect(checkSerialNumber(serial)).toBe(serial);
    expect(() => checkNewSerialNumber(`${serial}n`)).toThrow("at most 256");
  });

  it("refuses tag keys that differ only in case", () => {
    expect(() =>
      checkTags([
        { key: "Env", value: "a" },
        { key: "env", value: "b" },
      ]),
    ).toThrow("Tag keys are case insensitive");
  });

  it.each(["aws:createdBy", "AWS:x"])("refuses the reserved tag key prefix in %s", (key) => {
    expect(() => checkTags([{ key, value: "v" }])).toThrow("reserved for AWS use");
    expect(checkTags([{ key: "awsome:x", value: "v" }])).toHaveLength(1);
  });

  it("refuses more than 50 tags", () => {
    const tags = Array.from({ length: 51 }, (_, i) => ({ key: `k${i}`, value: "v" }));
    expect(() => checkTags(tags)).toThrow("less than or equal to 50");
  });
});
