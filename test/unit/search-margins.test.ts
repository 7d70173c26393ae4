/** Which extra steps the worker searches around its estimate of Redis's time. */
import { describe, expect, it } from "vitest";
import { searchMargins } from "../../worker/verify/verifier";

const step = (n: number) => n * 30_000;

describe("searchMargins", () => {
  it("adds no step in the middle of a step, where the estimate cannot be a step off", () => {
    expect(searchMargins(step(1000) + 15_000, 30)).toEqual({ below: 0, above: 0 });
  });

  it("adds the step below just after a boundary, and the step above just before one", () => {
    expect(searchMargins(step(1000) + 500, 30)).toEqual({ below: 1, above: 0 });
    expect(searchMargins(step(1001) - 500, 30)).toEqual({ below: 0, above: 1 });
  });

  it("treats the boundary itself as near, on both sides of it", () => {
    expect(searchMargins(step(1000), 30)).toEqual({ below: 1, above: 0 });
    expect(searchMargins(step(1000) - 2000, 30)).toEqual({ below: 0, above: 1 });
    expect(searchMargins(step(1000) + 2000, 30)).toEqual({ below: 0, above: 0 });
  });

  it("follows the device's period", () => {
    expect(searchMargins(60_000 + 59_000, 60)).toEqual({ below: 0, above: 1 });
    expect(searchMargins(60_000 + 29_000, 60)).toEqual({ below: 0, above: 0 });
  });
});
