import { describe, expect, it } from "vitest";
import { noticeDue } from "../../src/auth/mfa-failures";

describe("MFA failure notices", () => {
  it("fall due at the first multiple and again each time the streak doubles", () => {
    const due = (every: number) =>
      Array.from({ length: 100 }, (_, i) => i + 1).filter((n) => noticeDue(n, every));
    expect(due(5)).toEqual([5, 10, 20, 40, 80]);
    expect(due(1)).toEqual([1, 2, 4, 8, 16, 32, 64]);
    expect(due(3)).toEqual([3, 6, 12, 24, 48, 96]);
  });
});
