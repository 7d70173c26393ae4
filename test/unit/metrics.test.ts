import { describe, expect, it } from "vitest";
import { createGatewayMetrics } from "../../src/observability/metrics";

describe("the gateway's operation label", () => {
  it("gives the first maxOperationNames labels their own series and the rest `other`", () => {
    const metrics = createGatewayMetrics({ maxOperationNames: 2, processMetrics: false });
    expect(["signIn", "createUser", "deleteUser", "signIn"].map(metrics.operationLabel)).toEqual([
      "signIn",
      "createUser",
      "other",
      "signIn",
    ]);
    expect(metrics.operationLabel(undefined)).toBe("unknown");
  });
});
