/**
 * createAccount is public: each account can text its phone through root recovery, each call
 * hashes a password, and ALREADY_EXISTS says whether an email has an account. So one source
 * may only sign up so often (src/accounts/account.service.ts), and an IPv6 site only a few
 * times as often as one of its /64s (src/common/redis-budgets.ts `perSource`).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IPV6_SITE_SHARE } from "../../src/common/redis-budgets";
import { PASSWORD, testPhone } from "../support/fixtures";
import { errorCode, ok } from "../support/graphql";
import { from } from "../support/signin";
import { startStack, type Stack } from "../support/stack";

const PER_SOURCE = 3;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    env: { TRUST_PROXY: "1", ACCOUNT_SIGNUPS_PER_SOURCE: String(PER_SOURCE) },
  });
});
afterAll(async () => {
  await stack?.stop();
});

const CREATE = `mutation($input: CreateAccountInput!) {
  createAccount(input: $input) { account { accountId } }
}`;

const signUp = (source: string, email = `signup-${randomUUID()}@example.com`) =>
  stack.gql(CREATE, { input: { email, phone: testPhone(), password: PASSWORD } }, undefined, {
    ...from(source),
  });

const accountsNamed = (email: string) => stack.db.account.count({ where: { email } });

let lastOctet = 0;
const newSource = () => `203.0.113.${++lastOctet}`;

describe("sign-ups per source", () => {
  it("allows a source its sign-ups, counting a taken email too, then refuses with a wait", async () => {
    const source = newSource();
    const email = `taken-${randomUUID()}@example.com`;
    ok(await signUp(source, email));
    // Asking again whether an email is taken costs a sign-up like any other.
    expect(errorCode(await signUp(source, email))).toBe("ALREADY_EXISTS");
    ok(await signUp(source));

    const lateEmail = `late-${randomUUID()}@example.com`;
    const refused = await signUp(source, lateEmail);
    expect(errorCode(refused)).toBe("RATE_LIMITED");
    expect(Number(refused.errors![0]!.extensions!.retryAfterSeconds)).toBeGreaterThan(0);
    expect(await accountsNamed(lateEmail)).toBe(0);
    // A taken email is not revealed past the limit either.
    expect(errorCode(await signUp(source, email))).toBe("RATE_LIMITED");

    // Other sources are not held back.
    ok(await signUp(newSource(), lateEmail));
    expect(await accountsNamed(lateEmail)).toBe(1);
  });

  it("does not count input refused before anything is looked up", async () => {
    const source = newSource();
    for (let i = 0; i < PER_SOURCE + 2; i++) {
      const bad = await stack.gql(
        CREATE,
        { input: { email: "not-an-email", phone: testPhone(), password: PASSWORD } },
        undefined,
        from(source),
      );
      expect(errorCode(bad)).toBe("BAD_USER_INPUT");
    }
    ok(await signUp(source));
  });

  it("holds a whole IPv6 /48 to a few sources' worth, however many /64s it uses", async () => {
    const site = "2001:db8:77";
    const siteBudget = PER_SOURCE * IPV6_SITE_SHARE;
    // Each /64 stays within its own budget; together they spend the site's.
    for (let i = 0; i < siteBudget; i++) {
      ok(await signUp(`${site}:${(i % 4) + 1}::${i + 1}`));
    }
    expect(errorCode(await signUp(`${site}:ffff::1`))).toBe("RATE_LIMITED");
    ok(await signUp("2001:db8:78:1::1"));
  });
});
