import { describe, expect, it } from "vitest";
import { ConfigError, loadGatewayConfig } from "../../src/config";

describe("gateway configuration", () => {
  it("has safe local defaults", () => {
    const config = loadGatewayConfig({});
    expect(config.DATABASE_URL).toBe("postgresql://postgres@127.0.0.1:5432/virtual_mfa");
    expect(config.REDIS_URL).toBe("redis://127.0.0.1:6379");
    expect(config.PORT).toBe(4000);
  });

  it("reports every problem at once", () => {
    try {
      loadGatewayConfig({ PORT: "not-a-port", WORKER_DEADLINE_MS: "5", REDIS_URL: "nope" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems.join("\n");
      expect(problems).toContain("PORT");
      expect(problems).toContain("WORKER_DEADLINE_MS");
      expect(problems).toContain("REDIS_URL");
    }
  });

  it("treats an empty variable as unset", () => {
    expect(loadGatewayConfig({ PORT: "" }).PORT).toBe(4000);
  });
});
