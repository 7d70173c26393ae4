/**
 * Password guessing limits (src/auth/password-attempts.ts) on signIn, startRootRecovery and
 * changePassword: a budget per (user, source) and one per source, spent before the password is
 * checked, given back when it is right, in the real Redis. Sources differ by X-Forwarded-For
 * (TRUST_PROXY=1).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestAccount, createTestUser, PASSWORD } from "../support/fixtures";
import { errorCode, ok, type GraphQLResponse } from "../support/graphql";
import { from, SIGN_IN } from "../support/signin";
import { startStack, type Stack } from "../support/stack";
import { cleanUpAll, startRedisServer } from "../support/throwaway";
import { redisReachable } from "../../worker/redis-connection";
import { IPV6_SITE_SHARE } from "../../src/common/redis-budgets";

const PER_USER_AND_SOURCE = 3;
const PER_SOURCE = 6;
const WINDOW_SECONDS = 600;
const LIMITS = {
  TRUST_PROXY: "1",
  PASSWORD_FAILURES_PER_USER_AND_SOURCE: String(PER_USER_AND_SOURCE),
  PASSWORD_FAILURES_PER_SOURCE: String(PER_SOURCE),
  PASSWORD_FAILURE_WINDOW_SECONDS: String(WINDOW_SECONDS),
};
const START_RECOVERY = `mutation($input: StartRootRecoveryInput!) { startRootRecovery(input: $input) { recoveryToken } }`;
const CHANGE = `mutation($input: ChangePasswordInput!) { changePassword(input: $input) { sessionsSignedOut } }`;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: LIMITS });
});
afterAll(async () => {
  await stack?.stop();
  await cleanUpAll();
});

/** A fresh documentation-range address per call, so tests never share a source's budget. */
let lastOctet = 0;
const newSource = () => `203.0.113.${++lastOctet}`;

type SignInResult = GraphQLResponse<{ signIn: { status: string } }>;

function signIn(target: Stack, who: Record<string, string>, password: string, source: string) {
  return target.gql(
    SIGN_IN,
    { input: { ...who, password } },
    undefined,
    from(source),
  ) as Promise<SignInResult>;
}

async function userWho(target = stack) {
  const account = await createTestAccount(target);
  await createTestUser(target, account.rootToken, "alice");
  return { account, who: { account: account.accountId, userName: "alice" } };
}

/** The retry wait of a RATE_LIMITED answer, after checking that it is one. */
function retryAfter(res: GraphQLResponse<unknown>): number {
  expect(errorCode(res)).toBe("RATE_LIMITED");
  return Number(res.errors?.[0]?.extensions?.retryAfterSeconds);
}

/** What the gateway's /metrics says about refusals by `budget`. */
async function refusalsOf(budget: string): Promise<number> {
  const text = await (await fetch(`${stack.origin}/metrics`)).text();
  const line = new RegExp(
    `^mfa_gateway_budget_refusals_total\\{budget="${budget}"\\} (\\d+)$`,
    "m",
  );
  return Number(line.exec(text)?.[1] ?? 0);
}

async function failTimes(n: number, who: Record<string, string>, source: string) {
  for (let i = 0; i < n; i++) {
    expect(errorCode(await signIn(stack, who, "not the password", source))).toBe("UNAUTHENTICATED");
  }
}

describe("password guessing per user and source", () => {
  it("refuses a source after its wrong guesses, the right password too, and says how long to wait", async () => {
    const { who } = await userWho();
    const source = newSource();
    const refusedBefore = await refusalsOf("password_per_user_and_source");
    await failTimes(PER_USER_AND_SOURCE, who, source);
    const wait = retryAfter(await signIn(stack, who, PASSWORD, source));
    expect((await refusalsOf("password_per_user_and_source")) - refusedBefore).toBe(1);
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(WINDOW_SECONDS);
    // Refused attempts are not counted, and other sources are not held back: the owner elsewhere signs in.
    expect(ok(await signIn(stack, who, PASSWORD, newSource())).signIn.status).toBe("SIGNED_IN");
  });

  it("checks no more guesses than the budget when they arrive all at once", async () => {
    const { account, who } = await userWho();
    const source = newSource();
    const volley = await Promise.all(
      Array.from({ length: 12 }, () => signIn(stack, who, "not the password", source)),
    );
    const codes = volley.map(errorCode);
    expect(codes.filter((c) => c === "UNAUTHENTICATED")).toHaveLength(PER_USER_AND_SOURCE);
    expect(codes.filter((c) => c === "RATE_LIMITED")).toHaveLength(12 - PER_USER_AND_SOURCE);
    // Each checked guess left an audited failure; the refused ones were never checked.
    const failures = await stack.db.auditEvent.count({
      where: { accountId: account.accountId, action: "SignIn", outcome: "failure" },
    });
    expect(failures).toBe(PER_USER_AND_SOURCE);
  });

  it("forgives the owner's typos once the right password is given", async () => {
    const { who } = await userWho();
    const source = newSource();
    await failTimes(PER_USER_AND_SOURCE - 1, who, source);
    expect(ok(await signIn(stack, who, PASSWORD, source)).signIn.status).toBe("SIGNED_IN");
    // A fresh budget: without the reset the second typo below would already be refused.
    await failTimes(PER_USER_AND_SOURCE, who, source);
    retryAfter(await signIn(stack, who, PASSWORD, source));
  });

  it("limits a name that matches nobody exactly as it limits a real user", async () => {
    const { account } = await userWho();
    const nobody = { account: account.accountId, userName: `nobody-${randomUUID().slice(0, 8)}` };
    const source = newSource();
    await failTimes(PER_USER_AND_SOURCE, nobody, source);
    retryAfter(await signIn(stack, nobody, PASSWORD, source));
  });

  it("counts a user's guesses under any name for the account, id or alias", async () => {
    const alias = `pw-${randomUUID().slice(0, 8)}`;
    const account = await createTestAccount(stack, alias);
    await createTestUser(stack, account.rootToken, "alice");
    const source = newSource();
    await failTimes(
      PER_USER_AND_SOURCE - 1,
      { account: account.accountId, userName: "alice" },
      source,
    );
    await failTimes(1, { account: alias, userName: "ALICE" }, source);
    retryAfter(
      await signIn(stack, { account: account.accountId, userName: "alice" }, PASSWORD, source),
    );
  });
});

describe("what the limits tell", () => {
  it("treats a user who exists and one who does not alike, under every spelling of the account", async () => {
    const alias = `pw-${randomUUID().slice(0, 8)}`;
    const account = await createTestAccount(stack, alias);
    await createTestUser(stack, account.rootToken, "alice");
    const outcomes = async (userName: string) => {
      const source = newSource();
      await failTimes(PER_USER_AND_SOURCE, { account: alias, userName }, source);
      const names = [account.accountId, alias.toUpperCase(), alias];
      return Promise.all(
        names.map(async (name) =>
          errorCode(await signIn(stack, { account: name, userName }, "not it", source)),
        ),
      );
    };
    const real = await outcomes("alice");
    // The account id names the same budget as the alias; the upper-cased alias names no
    // account (aliases are exact), so it has a budget of its own, for real and unknown alike.
    expect(real).toEqual(["RATE_LIMITED", "UNAUTHENTICATED", "RATE_LIMITED"]);
    expect(await outcomes("bob")).toEqual(real);
  });
});

describe("what counts as one source", () => {
  it("is a whole IPv6 /64, and an IPv4 address however it is written", async () => {
    const { who } = await userWho();
    await failTimes(PER_USER_AND_SOURCE, who, "2001:db8:77::1");
    retryAfter(await signIn(stack, who, PASSWORD, "2001:db8:77::2"));
    retryAfter(await signIn(stack, who, PASSWORD, "2001:DB8:77:0:0:0:0:ffff"));
    const v4 = newSource();
    await failTimes(PER_USER_AND_SOURCE, who, v4);
    retryAfter(await signIn(stack, who, PASSWORD, `::ffff:${v4}`));
    // The next /64 is another source.
    expect(ok(await signIn(stack, who, PASSWORD, "2001:db8:78::1")).signIn.status).toBe(
      "SIGNED_IN",
    );
  });
});

describe("the caller's address", () => {
  it("is never header text that is not an address, in the audit or anywhere else", async () => {
    const { account, who } = await userWho();
    const junk = "http://evil.example/verify?user=alice";
    const res = await signIn(stack, who, "not the password", `198.51.100.9, ${junk}`);
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
    const failure = await stack.db.auditEvent.findFirstOrThrow({
      where: { accountId: account.accountId, action: "SignIn", outcome: "failure" },
    });
    // The proxy's own peer address (this test's loopback), not the text it passed on.
    expect(failure.sourceIp).toMatch(/^(::ffff:)?127\.0\.0\.1$|^::1$/);
  });
});

describe("password guessing per source", () => {
  it("stops one source spraying guesses over many users, whoever it names next", async () => {
    const source = newSource();
    for (let i = 0; i < PER_SOURCE; i++) {
      const { who } = await userWho();
      await failTimes(1, who, source);
    }
    const { who } = await userWho();
    retryAfter(await signIn(stack, who, "not the password", source));
    // Another source is untouched.
    expect(errorCode(await signIn(stack, who, "not the password", newSource()))).toBe(
      "UNAUTHENTICATED",
    );
  });

  it("is a /64, not its /48: a neighbour on the same mobile or cloud /48 still signs in", async () => {
    const { who } = await userWho();
    // Other customers' /64s spend their whole budgets, as many as the sign-up and recovery
    // budgets would allow one /48; the /48 they share is no password budget of its own.
    const sprayers = Array.from({ length: IPV6_SITE_SHARE }, (_, n) => `2001:db8:99:${n + 1}::1`);
    for (const sprayer of sprayers) {
      for (let i = 0; i < PER_SOURCE; i++) await failTimes(1, (await userWho()).who, sprayer);
    }
    retryAfter(await signIn(stack, who, PASSWORD, "2001:db8:99:1::2"));
    expect(ok(await signIn(stack, who, PASSWORD, "2001:db8:99:ffff::1")).signIn.status).toBe(
      "SIGNED_IN",
    );
  });

  it("is not spent by right passwords, so a shared address signs many users in", async () => {
    const source = newSource();
    for (let i = 0; i < PER_SOURCE + 2; i++) {
      const { who } = await userWho();
      expect(ok(await signIn(stack, who, PASSWORD, source)).signIn.status).toBe("SIGNED_IN");
    }
  });
});

describe("the other password checks share the budget", () => {
  it("startRootRecovery spends root's budget from that source", async () => {
    const account = await createTestAccount(stack);
    const source = newSource();
    await failTimes(PER_USER_AND_SOURCE, { email: account.email }, source);
    const res = await stack.gql(
      START_RECOVERY,
      { input: { email: account.email, password: PASSWORD } },
      undefined,
      from(source),
    );
    retryAfter(res);
  });

  it("changePassword with wrong current passwords cannot test guesses without limit", async () => {
    const { who } = await userWho();
    const source = newSource();
    const session = ok(
      await stack.gql<{ signIn: { session: { token: string } } }>(
        SIGN_IN,
        { input: { ...who, password: PASSWORD } },
        undefined,
        from(source),
      ),
    ).signIn.session.token;
    const change = (currentPassword: string) =>
      stack.gql(
        CHANGE,
        { input: { currentPassword, newPassword: "a new and longer passphrase" } },
        session,
        from(source),
      );
    for (let i = 0; i < PER_USER_AND_SOURCE; i++) {
      expect(errorCode(await change(`wrong guess ${i}`))).toBe("BAD_USER_INPUT");
    }
    retryAfter(await change(PASSWORD));
  });
});

describe("the budget's Redis", () => {
  it("refuses every password check while it is down (fail closed), and lets the window end", async () => {
    // A Redis whose clock runs 100 times fast, so the window ends within seconds.
    const redis = await startRedisServer({ clockSpeed: 100 });
    const own = await startStack({ env: { ...LIMITS, REDIS_URL: redis.url } });
    try {
      const { who } = await userWho(own);
      const source = newSource();
      for (let i = 0; i < PER_USER_AND_SOURCE; i++) {
        expect(errorCode(await signIn(own, who, "not the password", source))).toBe(
          "UNAUTHENTICATED",
        );
      }
      const wait = retryAfter(await signIn(own, who, PASSWORD, source));
      await new Promise((resolve) => setTimeout(resolve, (wait * 1000) / 100 + 500));
      expect(ok(await signIn(own, who, PASSWORD, source)).signIn.status).toBe("SIGNED_IN");

      await redis.kill();
      const res = await signIn(own, who, PASSWORD, source);
      expect(errorCode(res)).toBe("SERVICE_UNAVAILABLE");
      expect(res.data?.signIn ?? null).toBeNull();
    } finally {
      await redis.start();
      // The stack's client reconnects on its own schedule; stopping needs it back.
      for (let i = 0; i < 100 && !redisReachable(own.redis); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await own.stop();
    }
  });
});
