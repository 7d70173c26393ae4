import { describe, expect, it } from "vitest";
import { unfinishedReseal, type ResealReport } from "../../src/maintenance/reseal";

const report = (over: Partial<ResealReport>): ResealReport => ({
  scanned: 3,
  resealed: 3,
  skipped: 0,
  failed: [],
  devicesByKeyId: { new: 3 },
  ...over,
});

describe("unfinishedReseal", () => {
  it("lets the old key go only when every device was resealed and all share one key", () => {
    expect(unfinishedReseal(report({}))).toBeNull();
  });

  it("holds the old key while a worker on the old keyring left devices under it", () => {
    // Every reseal succeeded, as the run of an old-keyring worker does: still not finished.
    const reason = unfinishedReseal(report({ devicesByKeyId: { new: 2, old: 1 } }));
    expect(reason).toContain("2 key ids");
    expect(reason).toContain('"old":1');
  });

  it("names each device it could not reseal", () => {
    const reason = unfinishedReseal(
      report({
        failed: [{ serialNumber: "arn:aws:iam::123456789012:mfa/a", reason: "UNSEAL_FAILED" }],
      }),
    );
    expect(reason).toContain("arn:aws:iam::123456789012:mfa/a (UNSEAL_FAILED)");
  });
});
