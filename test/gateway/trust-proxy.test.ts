/**
 * Whose address a request is counted and audited under: TRUST_PROXY as the proxies' own
 * addresses (safer than a hop count, which lets a client that reaches the gateway directly name
 * its own source), and X-Forwarded-For entries written as address:port by some proxies.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestAccount } from "../support/fixtures";
import { errorCode } from "../support/graphql";
import { SIGN_IN } from "../support/signin";
import { startStack, type Stack } from "../support/stack";

let trustsLoopback: Stack;
let trustsOthers: Stack;
let trustsChain: Stack;
beforeAll(async () => {
  // The tests reach the gateway from 127.0.0.1, the trusted proxy for one and not the other.
  trustsLoopback = await startStack({ env: { TRUST_PROXY: "loopback" } });
  trustsOthers = await startStack({ env: { TRUST_PROXY: "10.0.0.0/8, 192.168.0.1" } });
  // Loopback stands in for the outer load balancer, 10.0.0.0/8 for a proxy in front of it.
  trustsChain = await startStack({ env: { TRUST_PROXY: "loopback, 10.0.0.0/8" } });
});
afterAll(async () => {
  await trustsLoopback?.stop();
  await trustsOthers?.stop();
  await trustsChain?.stop();
});

/** A wrong password from `forwardedFor`, and the source its audit event recorded. */
async function auditedSource(stack: Stack, forwardedFor: string): Promise<string | null> {
  const account = await createTestAccount(stack);
  const input = { email: account.email, password: "not the password at all" };
  const res = await stack.gql(SIGN_IN, { input }, undefined, { "x-forwarded-for": forwardedFor });
  expect(errorCode(res)).toBe("UNAUTHENTICATED");
  const [event] = await stack.db.auditEvent.findMany({
    where: { accountId: account.accountId, outcome: "failure" },
  });
  return event?.sourceIp ?? null;
}

describe("the source of a request", () => {
  it("is the client a trusted proxy names, even written as address:port", async () => {
    expect(await auditedSource(trustsLoopback, "198.51.100.23")).toBe("198.51.100.23");
    expect(await auditedSource(trustsLoopback, "203.0.113.9:4444")).toBe("203.0.113.9");
    expect(await auditedSource(trustsLoopback, "[2001:db8::7]:443")).toBe("2001:db8::7");
  });

  it("is the client behind two trusted proxies that each write address:port", async () => {
    // As Azure Front Door before Application Gateway: every hop with its port.
    expect(await auditedSource(trustsChain, "198.51.100.7:1234, 10.0.0.5:80")).toBe("198.51.100.7");
    expect(await auditedSource(trustsChain, "198.51.100.8:1234, 10.0.0.5:80")).toBe("198.51.100.8");
    // And an untrusted hop still ends the walk: a client cannot hide behind a forged proxy.
    expect(await auditedSource(trustsChain, "198.51.100.9, 203.0.113.1:80, 10.0.0.5:80")).toBe(
      "203.0.113.1",
    );
  });

  it("is the peer itself when the peer is not a proxy the gateway trusts", async () => {
    const source = await auditedSource(trustsOthers, "198.51.100.23");
    expect(source).not.toBe("198.51.100.23");
    expect(["127.0.0.1", "::ffff:127.0.0.1"]).toContain(source);
  });
});
