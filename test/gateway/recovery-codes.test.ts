/**
 * Recovery codes: ten single-use codes of 80 bits, shown once, stored as peppered HMACs, each
 * able to answer one MFA challenge in place of a TOTP code, under the challenge's budget.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, DEV_RECOVERY_CODE_PEPPER, loadGatewayConfig } from "../../src/config";
import { hashRecoveryCode, normaliseRecoveryCode } from "../../src/recovery/recovery-code";
import { errorCode, ok } from "../support/graphql";
import { createTestAccount, createTestUser, PASSWORD } from "../support/fixtures";
import {
  actionsOf,
  answer,
  challengeFor,
  type Challenge,
  enrolForSignIn,
  enrolRootDevice,
  from,
  generateRecoveryCodes,
  GENERATE_RECOVERY_CODES,
  mfaSession,
  outboxOf,
  passwordSession,
  randomSource,
} from "../support/signin";
import { startStack, type Stack } from "../support/stack";
import { randomUUID } from "node:crypto";
import { AuditService } from "../../src/audit/audit.service";
import { hashToken } from "../../src/auth/tokens";
import type { RedisBudgets } from "../../src/common/redis-budgets";
import type { Principal } from "../../src/context";
import { RecoveryCodeService } from "../../src/recovery/recovery-code.service";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ env: { TRUST_PROXY: "1" } });
});
afterAll(async () => {
  await stack?.stop();
});

const CODE_SHAPE = /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/;
const REMAINING = `query($userName: String) { user(userName: $userName) { userName recoveryCodesRemaining } }`;

/** A user with a device, signed in with MFA, holding a fresh set of recovery codes. */
async function userWithCodes(userName = "alice") {
  const account = await createTestAccount(stack);
  await createTestUser(stack, account.rootToken, userName);
  const who = { account: account.accountId, userName };
  const device = await enrolForSignIn(stack, account.rootToken, userName, `${userName}-phone`);
  const token = await mfaSession(stack, who, device);
  const codes = await generateRecoveryCodes(stack, token);
  const user = await stack.db.user.findFirstOrThrow({
    where: { accountId: account.accountId, userName },
  });
  return { account, who, device, token, codes, user };
}

const remainingOf = async (token: string, userName?: string) =>
  ok(
    await stack.gql<{ user: { recoveryCodesRemaining: number | null } }>(
      REMAINING,
      { userName },
      token,
    ),
  ).user.recoveryCodesRemaining;

describe("generating recovery codes", () => {
  it("gives ten distinct 80-bit codes, stored only as HMACs under the pepper", async () => {
    const { token, codes, user } = await userWithCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(CODE_SHAPE);
    const rows = await stack.db.recoveryCode.findMany({ where: { userId: user.id } });
    expect(rows).toHaveLength(10);
    const expected = codes.map((c) =>
      hashRecoveryCode(DEV_RECOVERY_CODE_PEPPER, user.id, normaliseRecoveryCode(c)!),
    );
    expect(rows.map((r) => r.codeHash).sort()).toEqual(expected.sort());
    const stored = JSON.stringify(rows);
    for (const code of codes) {
      expect(stored).not.toContain(code);
      expect(stored).not.toContain(code.replace(/-/g, ""));
    }
    expect(await remainingOf(token)).toBe(10);
  });

  it("is FORBIDDEN from a session that did not pass MFA", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "bob");
    const password = await passwordSession(stack, { account: account.accountId, userName: "bob" });
    await enrolForSignIn(stack, account.rootToken, "bob", "bob-phone");
    const res = await actionsOf(stack, password).generateRecoveryCodes();
    expect(errorCode(res)).toBe("FORBIDDEN");
    expect(
      await stack.db.recoveryCode.count({ where: { user: { accountId: account.accountId } } }),
    ).toBe(0);
  });

  it("needs an enabled device: BAD_USER_INPUT once the device is gone", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "cy");
    const who = { account: account.accountId, userName: "cy" };
    const device = await enrolForSignIn(stack, account.rootToken, "cy", "cy-phone");
    const token = await mfaSession(stack, who, device);
    ok(await actionsOf(stack, account.rootToken).deactivate(device.serialNumber, "cy"));
    const res = await actionsOf(stack, token).generateRecoveryCodes();
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
  });

  it("are deleted with the user's last device, so a set taken with the phone never works again", async () => {
    const { account, device, user } = await userWithCodes("dora");
    const codesOf = () => stack.db.recoveryCode.count({ where: { userId: user.id } });
    expect(await codesOf()).toBe(10);
    ok(await actionsOf(stack, account.rootToken).deactivate(device.serialNumber, "dora"));
    expect(await codesOf()).toBe(0);
  });

  it("replaces the earlier set: old codes stop working", async () => {
    const { who, token, codes: old } = await userWithCodes();
    const fresh = await generateRecoveryCodes(stack, token);
    expect(fresh.some((c) => old.includes(c))).toBe(false);
    const { challenge } = await challengeFor(stack, who);
    const stale = await answer(stack, { challenge, code: old[0]! }, from(randomSource()));
    expect(errorCode(stale)).toBe("INVALID_AUTHENTICATION_CODE");
    ok(await answer(stack, { challenge, code: fresh[0]! }));
    expect(await remainingOf(token)).toBe(9);
  });

  it("keeps one set of ten when several new sets are asked for at once", async () => {
    const { token, user } = await userWithCodes();
    // Four more, so the five sets of the hour allowed are all used.
    const sets = await Promise.all(
      Array.from({ length: 4 }, () => generateRecoveryCodes(stack, token)),
    );
    expect(sets.every((set) => set.length === 10)).toBe(true);
    const stored = await stack.db.recoveryCode.findMany({ where: { userId: user.id } });
    expect(stored).toHaveLength(10);
    expect(await remainingOf(token)).toBe(10);
  });

  it("makes at most five sets an hour per user, so its notices cannot flood a mailbox", async () => {
    const { account, token, user } = await userWithCodes();
    for (let i = 0; i < 4; i++) await generateRecoveryCodes(stack, token);
    const before = await stack.db.recoveryCode.findMany({ where: { userId: user.id } });
    const refused = await stack.gql(GENERATE_RECOVERY_CODES, {}, token);
    expect(errorCode(refused)).toBe("RATE_LIMITED");
    expect(Number(refused.errors![0]!.extensions!.retryAfterSeconds)).toBeGreaterThan(3000);
    // The refused call changed nothing: the last set stands, and no sixth notice was queued.
    const after = await stack.db.recoveryCode.findMany({ where: { userId: user.id } });
    expect(after.map((c) => c.codeHash).sort()).toEqual(before.map((c) => c.codeHash).sort());
    expect(await outboxOf(stack, account.accountId, "recovery-codes-generated")).toHaveLength(5);
  });

  it("tells the user a new set was made, without the codes", async () => {
    const { account, codes } = await userWithCodes();
    const [notice] = await outboxOf(stack, account.accountId, "recovery-codes-generated");
    expect(notice).toMatchObject({ channel: "EMAIL", recipient: account.email });
    for (const code of codes) expect(notice!.body).not.toContain(code);
  });
});

describe("answering a challenge with a recovery code", () => {
  it("gives an MFA session once per code, however the code is typed", async () => {
    const { account, who, token, codes } = await userWithCodes();
    const { challenge } = await challengeFor(stack, who);
    // Lower case, spaces for hyphens, O for 0 and L for 1: all read as the same code.
    const typed = codes[0]!.toLowerCase().replace(/-/g, " ").replace(/0/g, "o").replace(/1/g, "l");
    const res = ok(await answer(stack, { challenge, code: typed }));
    expect(res.answerMfaChallenge).toMatchObject({
      session: { kind: "MFA", mfaAuthenticated: true },
      usedRecoveryCode: true,
      recoveryCodesRemaining: 9,
    });
    const again = await challengeFor(stack, who);
    const reuse = await answer(
      stack,
      { challenge: again.challenge, code: codes[0]! },
      from(randomSource()),
    );
    expect(errorCode(reuse)).toBe("INVALID_AUTHENTICATION_CODE");
    expect(reuse.errors![0]!.extensions!.attemptsRemaining).toBe(4);
    expect(await remainingOf(token)).toBe(9);
    // The use is reported, with the count left but not the code.
    const [notice] = await outboxOf(stack, account.accountId, "recovery-code-used");
    expect(notice!.body).toContain("9 unused recovery codes remain");
    for (const code of codes) expect(notice!.body).not.toContain(code);
  });

  it("counts wrong recovery codes against the challenge's budget of five", async () => {
    const { who, codes } = await userWithCodes();
    const { challenge } = await challengeFor(stack, who);
    for (let left = 4; left >= 0; left--) {
      const res = await answer(
        stack,
        { challenge, code: "AAAA-BBBB-CCCC-DDDD" },
        from(randomSource()),
      );
      expect(errorCode(res)).toBe("INVALID_AUTHENTICATION_CODE");
      expect(res.errors![0]!.extensions!.attemptsRemaining).toBe(left);
    }
    const late = await answer(stack, { challenge, code: codes[1]! });
    expect(errorCode(late)).toBe("UNAUTHENTICATED");
    // The void challenge did not spend the code.
    const again = await challengeFor(stack, who);
    ok(await answer(stack, { challenge: again.challenge, code: codes[1]! }));
  });

  it("does not accept one user's code for another user", async () => {
    const { account, codes } = await userWithCodes("dora");
    await createTestUser(stack, account.rootToken, "eli");
    await enrolForSignIn(stack, account.rootToken, "eli", "eli-phone");
    const { challenge } = await challengeFor(stack, {
      account: account.accountId,
      userName: "eli",
    });
    const res = await answer(stack, { challenge, code: codes[0]! }, from(randomSource()));
    expect(errorCode(res)).toBe("INVALID_AUTHENTICATION_CODE");
  });

  it("gives exactly one session when one code is used 50 times at once, on 50 challenges", async () => {
    const { account, who, codes, user } = await userWithCodes();
    // Five sign-ins at a time: a password check in flight holds one of the ten attempts one
    // source has per user until it turns out right.
    const challenges: Challenge[] = [];
    for (let i = 0; i < 50; i += 5) {
      challenges.push(
        ...(await Promise.all(Array.from({ length: 5 }, () => challengeFor(stack, who)))),
      );
    }
    const before = await stack.db.session.count({ where: { userId: user.id, kind: "mfa" } });
    const results = await Promise.all(
      challenges.map((c) =>
        answer(stack, { challenge: c.challenge, code: codes[2]! }, from(randomSource())),
      ),
    );
    const winners = results.filter((r) => r.data?.answerMfaChallenge);
    expect(winners).toHaveLength(1);
    for (const r of results)
      if (!r.data?.answerMfaChallenge) expect(errorCode(r)).toBe("INVALID_AUTHENTICATION_CODE");
    expect(await stack.db.session.count({ where: { userId: user.id, kind: "mfa" } })).toBe(
      before + 1,
    );
    expect(
      await stack.db.recoveryCode.count({ where: { userId: user.id, usedAt: { not: null } } }),
    ).toBe(1);
    expect(await outboxOf(stack, account.accountId, "recovery-code-used")).toHaveLength(1);
  });

  it("gives exactly one session when one challenge is answered 50 times at once with good codes", async () => {
    const { who, codes, user } = await userWithCodes();
    const { challenge } = await challengeFor(stack, who);
    const before = await stack.db.session.count({ where: { userId: user.id, kind: "mfa" } });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        answer(stack, { challenge, code: codes[i % 10]! }, from(randomSource())),
      ),
    );
    expect(results.filter((r) => r.data?.answerMfaChallenge)).toHaveLength(1);
    expect(await stack.db.session.count({ where: { userId: user.id, kind: "mfa" } })).toBe(
      before + 1,
    );
    // Codes whose answer lost the race were given back: exactly one is spent.
    expect(
      await stack.db.recoveryCode.count({ where: { userId: user.id, usedAt: { not: null } } }),
    ).toBe(1);
  });
});

describe("the remaining count", () => {
  it("is shown to the user themself and to nobody else", async () => {
    const { account, token } = await userWithCodes();
    expect(await remainingOf(token)).toBe(10);
    expect(await remainingOf(token, "alice")).toBe(10);
    expect(await remainingOf(account.rootToken, "alice")).toBeNull();
    expect(await remainingOf(account.rootToken)).toBe(0);
  });
});

describe("the pepper", () => {
  it("is required in production, at least 32 characters, and a labelled fixed default elsewhere", () => {
    expect(() => loadGatewayConfig({ NODE_ENV: "production" })).toThrow(ConfigError);
    expect(() => loadGatewayConfig({ NODE_ENV: "production" })).toThrow(/RECOVERY_CODE_PEPPER/);
    expect(() =>
      loadGatewayConfig({ NODE_ENV: "production", RECOVERY_CODE_PEPPER: "too short" }),
    ).toThrow(/RECOVERY_CODE_PEPPER/);
    const pepper = "k".repeat(32);
    const delivery = { NOTIFICATIONS_LOG_ONLY: "true" };
    expect(
      loadGatewayConfig({ NODE_ENV: "production", RECOVERY_CODE_PEPPER: pepper, ...delivery })
        .RECOVERY_CODE_PEPPER,
    ).toBe(pepper);
    expect(loadGatewayConfig({}).RECOVERY_CODE_PEPPER).toBe(DEV_RECOVERY_CODE_PEPPER);
    expect(DEV_RECOVERY_CODE_PEPPER).toMatch(/INSECURE/);
  });

  it("keys the stored codes: a gateway with another pepper does not accept them", async () => {
    const { who, codes } = await userWithCodes();
    const other = await startStack({
      env: { RECOVERY_CODE_PEPPER: "another-pepper-".padEnd(40, "x") },
    });
    try {
      const { challenge } = await challengeFor(other, who);
      const res = await answer(other, { challenge, code: codes[0]! });
      expect(errorCode(res)).toBe("INVALID_AUTHENTICATION_CODE");
    } finally {
      await other.stop();
    }
    const { challenge } = await challengeFor(stack, who);
    ok(await answer(stack, { challenge, code: codes[0]! }));
  });
});

describe("a set made while what it stands for ends", () => {
  /**
   * The real service on the real PostgreSQL, with only its Redis budget held open, so that
   * something else can happen between the checks and the set's transaction, as a slow Redis
   * round trip allows in production.
   */
  function heldService() {
    let reached!: () => void;
    let release!: () => void;
    const atBudget = new Promise<void>((resolve) => (reached = resolve));
    const gate = new Promise<void>((resolve) => (release = resolve));
    const budgets = {
      budget: () => ({ name: "held", key: "held", limit: 5, windowSeconds: 3600 }),
      spend: async () => {
        reached();
        await gate;
      },
    } as unknown as RedisBudgets;
    const service = new RecoveryCodeService(
      stack.db,
      new AuditService(stack.db),
      stack.config.RECOVERY_CODE_PEPPER,
      budgets,
      5,
    );
    return { service, atBudget, release };
  }

  /** The principal a session token authenticates as, read from its row. */
  async function principalOf(token: string): Promise<Principal> {
    const row = await stack.db.session.findUniqueOrThrow({
      where: { tokenHash: hashToken(token) },
      include: { user: true },
    });
    return {
      sessionId: row.id,
      userId: row.userId,
      accountId: row.accountId,
      isRoot: row.user.isRoot,
      isAdmin: row.user.isAdmin,
      mfaAuthenticated: row.mfaAuthenticated,
      kind: row.kind as Principal["kind"],
      expiresAt: row.expiresAt,
    };
  }

  const meta = () => ({ requestId: randomUUID(), sourceIp: "198.51.100.1" });

  it("is refused when the user's last device is deactivated meanwhile, and leaves no codes", async () => {
    const account = await createTestAccount(stack);
    const alice = await createTestUser(stack, account.rootToken, "alice");
    const device = await enrolForSignIn(stack, account.rootToken, "alice", "alice-phone");
    const token = await mfaSession(
      stack,
      { account: account.accountId, userName: "alice" },
      device,
    );
    const { service, atBudget, release } = heldService();
    const pending = service.generate(await principalOf(token), meta());
    await atBudget;
    ok(await actionsOf(stack, account.rootToken).deactivate(device.serialNumber, "alice"));
    release();
    await expect(pending).rejects.toMatchObject({ extensions: { code: "BAD_USER_INPUT" } });
    expect(await stack.db.recoveryCode.count({ where: { userId: alice.userId } })).toBe(0);
  });

  it("is refused when a root recovery completes meanwhile, and leaves root no codes", async () => {
    const account = await createTestAccount(stack);
    const device = await enrolRootDevice(stack, account.rootToken);
    const thief = await mfaSession(stack, { email: account.email }, device);
    const { service, atBudget, release } = heldService();
    const pending = service.generate(await principalOf(thief), meta());
    await atBudget;
    // The owner recovers root meanwhile, which signs root's sessions out and drops its codes.
    const started = ok(
      await stack.gql<{ startRootRecovery: { recoveryToken: string } }>(
        `mutation($input: StartRootRecoveryInput!) { startRootRecovery(input: $input) { recoveryToken } }`,
        { input: { email: account.email, password: PASSWORD } },
        undefined,
        from(randomSource()),
      ),
    ).startRootRecovery;
    const messages = await outboxOf(stack, account.accountId, "root-recovery-code");
    const codeIn = (channel: string) =>
      /\b(\d{8})\b/.exec(messages.filter((m) => m.channel === channel).at(-1)!.body)![1]!;
    ok(
      await stack.gql(
        `mutation($input: CompleteRootRecoveryInput!) { completeRootRecovery(input: $input) { serialNumbers } }`,
        {
          input: {
            recoveryToken: started.recoveryToken,
            emailCode: codeIn("EMAIL"),
            phoneCode: codeIn("SMS"),
          },
        },
      ),
    );
    release();
    await expect(pending).rejects.toMatchObject({ extensions: { code: "UNAUTHENTICATED" } });
    expect(await stack.db.recoveryCode.count({ where: { userId: account.accountId } })).toBe(0);
  });
});
