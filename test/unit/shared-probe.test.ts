import { describe, expect, it } from "vitest";
import { sharedFor } from "../../src/http/shared-probe";

/** A probe whose runs are counted and settled by the test. */
function controlledProbe() {
  const runs: { resolve(value: number): void; reject(error: Error): void }[] = [];
  const probe = () =>
    new Promise<number>((resolve, reject) => {
      runs.push({ resolve, reject });
    });
  return { probe, runs };
}

describe("sharedFor", () => {
  it("gives every caller during a run that run's result", async () => {
    const { probe, runs } = controlledProbe();
    const shared = sharedFor(60_000, probe);
    const answers = Promise.all(Array.from({ length: 20 }, () => shared()));
    expect(runs).toHaveLength(1);
    runs[0]!.resolve(7);
    expect(await answers).toEqual(Array(20).fill(7));
  });

  it("keeps a settled result, failures included, for the window", async () => {
    const { probe, runs } = controlledProbe();
    const shared = sharedFor(60_000, probe);
    const first = shared();
    runs[0]!.reject(new Error("postgres down"));
    await expect(first).rejects.toThrow("postgres down");
    await expect(shared()).rejects.toThrow("postgres down");
    expect(runs).toHaveLength(1);
  });

  it("probes again once the window has passed, and every time with a window of 0", async () => {
    const { probe, runs } = controlledProbe();
    const shared = sharedFor(0, probe);
    const first = shared();
    runs[0]!.resolve(1);
    expect(await first).toBe(1);
    const second = shared();
    expect(runs).toHaveLength(2);
    runs[1]!.resolve(2);
    expect(await second).toBe(2);
  });
});
