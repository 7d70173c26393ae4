import { describe, expect, it } from "vitest";
import { ConfigError, loadWorkerConfig } from "../../worker/config";

describe("worker configuration", () => {
  it("refuses to start outside development without a sealing key", () => {
    expect(() => loadWorkerConfig({ NODE_ENV: "production" })).toThrow(ConfigError);
    expect(loadWorkerConfig({ NODE_ENV: "development" }).usesDevelopmentKey).toBe(true);
  });

  it("takes verification policy overrides as JSON and fills in the rest", () => {
    const config = loadWorkerConfig({ NODE_ENV: "test", VERIFY_POLICY: '{"enrolRadius":20}' });
    expect(config.VERIFY_POLICY).toMatchObject({ enrolRadius: 20, loginRadius: 1 });
  });

  it.each(['{"enrolRadius":-1}', '{"noSuchKnob":1}', "not json"])(
    "refuses the policy %s with a clear problem",
    (policy) => {
      try {
        loadWorkerConfig({ NODE_ENV: "test", VERIFY_POLICY: policy });
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).problems.join()).toContain("VERIFY_POLICY");
      }
    },
  );
});
