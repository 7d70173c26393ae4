import { describe, expect, it } from "vitest";
import { clusterOptions } from "../../worker/redis-connection";

describe("Redis Cluster options", () => {
  it("reach every node with REDIS_URL's scheme, user and password", () => {
    const options = clusterOptions("rediss://mfa:s%40cret@ignored:6379", " a:7000, b:7001 ");
    expect(options.rootNodes).toEqual([{ url: "rediss://a:7000" }, { url: "rediss://b:7001" }]);
    expect(options.defaults).toMatchObject({
      username: "mfa",
      password: "s@cret",
      socket: { tls: true },
      disableOfflineQueue: true,
    });
  });

  it("add nothing to a plain redis:// URL without credentials", () => {
    const options = clusterOptions("redis://127.0.0.1:6379", "127.0.0.1:7000");
    expect(options.rootNodes).toEqual([{ url: "redis://127.0.0.1:7000" }]);
    expect(options.defaults).not.toHaveProperty("password");
    expect(options.defaults.socket).not.toHaveProperty("tls");
  });
});
