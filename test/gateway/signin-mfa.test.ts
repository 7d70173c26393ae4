/**
 * Sign-in with an MFA device: a correct password yields a challenge, one code from the device
 * answers it. A challenge expires, is single use, and is void after five wrong codes; a code
 * once accepted is refused ever after; wrong codes after a correct password are reported to the
 * user and never lock the account.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashToken } from "../../src/auth/tokens";
import { errorCode, ok } from "../support/graphql";
import { createTestAccount, createTestUser, PASSWORD } from "../support/fixtures";
import {
  actionsOf,
  answer,
  challengeFor,
  enrolForSignIn,
  enrolRootDevice,
  from,
  nextCode,
  nextStep,
  outboxOf,
  passwordSession,
  randomSource,
  SIGN_IN,
  whileCodeIsChecked,
  wrongCode,
  type Answered,
} from "../support/signin";
import { startStack, type Stack } from "../support/stack";
import { codeAt } from "../support/totp";

let stack: Stack;
beforeAll(async () => {
  // Requests may say where they come from, so tests can act as several addresses.
  stack = await startStack({ env: { TRUST_PROXY: "1" } });
});
afterAll(async () => {
  await stack?.stop();
});

/** An account with one user, `userName`, who has an enabled device. */
async function userWithDevice(userName = "alice", extra: { email?: string } = {}) {
  const account = await createTestAccount(stack);
  ok(
    await stack.gql(
      `mutation($input: CreateUserInput!) { createUser(input: $input) { userName } }`,
      { input: { userName, password: PASSWORD, ...extra } },
      account.rootToken,
    ),
  );
  const device = await enrolForSignIn(stack, account.rootToken, userName, `${userName}-phone`);
  const who = { account: account.accountId, userName };
  return { account, device, who };
}

const attemptsLeft = (res: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  res.errors?.[0]?.extensions?.attemptsRemaining;

describe("signing in with a password", () => {
  it("answers a user with an enabled device with MFA_REQUIRED and a challenge, not a session", async () => {
    const { account, device, who } = await userWithDevice();
    const res = ok(
      await stack.gql<{
        signIn: {
          status: string;
          session: null;
          challenge: { challenge: string; expiresAt: string; serialNumbers: string[] };
        };
      }>(SIGN_IN, { input: { ...who, password: PASSWORD } }),
    );
    expect(res.signIn.status).toBe("MFA_REQUIRED");
    expect(res.signIn.session).toBeNull();
    expect(res.signIn.challenge.serialNumbers).toEqual([device.serialNumber]);
    expect(res.signIn.challenge.challenge).toMatch(/^mfac_[\w-]{43}$/);
    const ttl = Date.parse(res.signIn.challenge.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(290_000);
    expect(ttl).toBeLessThanOrEqual(300_000);
    // Only the token's hash is stored.
    const rows = await stack.db.mfaChallenge.findMany({ where: { accountId: account.accountId } });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.tokenHash).toBe(hashToken(res.signIn.challenge.challenge));
    expect(JSON.stringify(rows, (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toContain(
      res.signIn.challenge.challenge,
    );
    // No session was created by the password alone.
    expect(
      await stack.db.session.count({
        where: { accountId: account.accountId, kind: { not: "password" } },
      }),
    ).toBe(0);
  });

  it("gives a user without a device a password session at once", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "nodevice");
    const res = ok(
      await stack.gql<{
        signIn: {
          status: string;
          session: { kind: string; mfaAuthenticated: boolean };
          challenge: null;
        };
      }>(SIGN_IN, {
        input: { account: account.accountId, userName: "nodevice", password: PASSWORD },
      }),
    );
    expect(res.signIn).toMatchObject({
      status: "SIGNED_IN",
      session: { kind: "PASSWORD", mfaAuthenticated: false },
      challenge: null,
    });
  });

  it("asks the root user for MFA as well once root has a device", async () => {
    const account = await createTestAccount(stack);
    const device = await enrolRootDevice(stack, account.rootToken);
    const challenge = await challengeFor(stack, { email: account.email });
    expect(challenge.serialNumbers).toEqual([device.serialNumber]);
    const res = ok(
      await answer(stack, { challenge: challenge.challenge, code: await nextCode(stack, device) }),
    );
    expect(res.answerMfaChallenge.session).toMatchObject({ kind: "MFA", mfaAuthenticated: true });
  });
});

/**
 * Holds `userId`'s row locked while `send` runs, until the request waits on that lock (to create
 * its session or challenge, which references the user), then deletes the user and lets go. So
 * the deletion lands exactly between the password check and what it grants.
 */
async function deletedWhilePasswordIsChecked<T>(userId: string, send: () => Promise<T>) {
  let pending: Promise<T> | undefined;
  await stack.db.$transaction(
    async (tx) => {
      const [{ pid }] = await tx.$queryRaw<{ pid: number }[]>`
        SELECT pg_backend_pid() AS pid FROM "User" WHERE "id" = ${userId} FOR UPDATE`;
      pending = send();
      for (let waiting = 0; waiting === 0;) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        [{ waiting }] = await tx.$queryRaw<{ waiting: number }[]>`
          SELECT count(*)::int AS waiting FROM pg_stat_activity
          WHERE ${pid}::int = ANY(pg_blocking_pids(pid))`;
      }
      await tx.$executeRaw`UPDATE "VirtualMfaDevice" SET "userId" = NULL WHERE "userId" = ${userId}`;
      await tx.$executeRaw`DELETE FROM "User" WHERE "id" = ${userId}`;
    },
    { timeout: 20_000 },
  );
  return pending!;
}

describe("signing in while the user is deleted", () => {
  it.each([
    ["without a device, before its session is created", false],
    ["with a device, before its challenge is created", true],
  ])("answers UNAUTHENTICATED as for an unknown user, %s", async (_, withDevice) => {
    const account = await createTestAccount(stack);
    const user = await createTestUser(stack, account.rootToken, "doomed");
    if (withDevice) await enrolForSignIn(stack, account.rootToken, "doomed", "doomed-phone");
    const res = await deletedWhilePasswordIsChecked(user.userId, () =>
      stack.gql(SIGN_IN, {
        input: { account: account.accountId, userName: "doomed", password: PASSWORD },
      }),
    );
    expect(res.errors?.[0]?.message).toBe("Incorrect sign-in details.");
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
  });
});

describe("answering the challenge", () => {
  it("gives an MFA-authenticated session of kind MFA for one right code", async () => {
    const { device, who } = await userWithDevice();
    const { challenge } = await challengeFor(stack, who);
    const res = ok(await answer(stack, { challenge, code: await nextCode(stack, device) }));
    const session = res.answerMfaChallenge.session;
    expect(session).toMatchObject({
      kind: "MFA",
      mfaAuthenticated: true,
      user: { userName: "alice", isRoot: false },
    });
    expect(res.answerMfaChallenge.usedRecoveryCode).toBe(false);
    const me = ok(
      await stack.gql<{ user: { userName: string } }>("{ user { userName } }", {}, session.token),
    );
    expect(me.user.userName).toBe("alice");
  });

  it("accepts the code with spaces, as people type it", async () => {
    const { device, who } = await userWithDevice();
    const { challenge } = await challengeFor(stack, who);
    const code = await nextCode(stack, device);
    ok(await answer(stack, { challenge, code: `${code.slice(0, 3)} ${code.slice(3)}` }));
  });

  it("refuses a wrong code with INVALID_AUTHENTICATION_CODE and tells how many attempts are left", async () => {
    const { device, who } = await userWithDevice();
    const { challenge } = await challengeFor(stack, who);
    const res = await answer(
      stack,
      { challenge, code: await wrongCode(stack, device) },
      from(randomSource()),
    );
    expect(errorCode(res)).toBe("INVALID_AUTHENTICATION_CODE");
    expect(res.errors![0]!.extensions!.iamCode).toBe("InvalidAuthenticationCode");
    expect(attemptsLeft(res)).toBe(4);
    // The same challenge still works with the right code.
    ok(await answer(stack, { challenge, code: await nextCode(stack, device) }));
  });

  it("voids the challenge after five wrong codes, from however many addresses, without spending the right code", async () => {
    const { device, who } = await userWithDevice();
    const { challenge } = await challengeFor(stack, who);
    for (let left = 4; left >= 0; left--) {
      // Each guess from another address: the per-source limits in the worker do not apply,
      // the challenge's own budget does.
      const res = await answer(
        stack,
        { challenge, code: await wrongCode(stack, device) },
        from(`203.0.113.${10 + left}`),
      );
      expect(errorCode(res)).toBe("INVALID_AUTHENTICATION_CODE");
      expect(attemptsLeft(res)).toBe(left);
    }
    const step = await nextStep(stack, device);
    const late = await answer(stack, { challenge, code: codeAt(device.seed, step) });
    expect(errorCode(late)).toBe("UNAUTHENTICATED");
    expect(late.errors![0]!.message).toMatch(/Sign in again/);
    // Signing in again starts a new challenge, and the code refused unread still works.
    const again = await challengeFor(stack, who);
    ok(await answer(stack, { challenge: again.challenge, code: codeAt(device.seed, step) }));
  });

  it("expires: after expiresAt the challenge is UNAUTHENTICATED and the code is not spent", async () => {
    const { device, who } = await userWithDevice();
    const { challenge } = await challengeFor(stack, who);
    await stack.db.mfaChallenge.update({
      where: { tokenHash: hashToken(challenge) },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    const step = await nextStep(stack, device);
    const res = await answer(stack, { challenge, code: codeAt(device.seed, step) });
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
    const again = await challengeFor(stack, who);
    ok(await answer(stack, { challenge: again.challenge, code: codeAt(device.seed, step) }));
  });

  it("is single use: a challenge answered once cannot be answered again", async () => {
    const { device, who } = await userWithDevice();
    const { challenge } = await challengeFor(stack, who);
    ok(await answer(stack, { challenge, code: await nextCode(stack, device) }));
    const second = await answer(stack, { challenge, code: await nextCode(stack, device) });
    expect(errorCode(second)).toBe("UNAUTHENTICATED");
  });

  it("refuses a code replayed after success, without counting it as a wrong guess", async () => {
    const { device, who } = await userWithDevice();
    const first = await challengeFor(stack, who);
    const code = await nextCode(stack, device);
    ok(await answer(stack, { challenge: first.challenge, code }));
    const second = await challengeFor(stack, who);
    const replay = await answer(stack, { challenge: second.challenge, code });
    expect(errorCode(replay)).toBe("INVALID_AUTHENTICATION_CODE");
    expect(replay.errors![0]!.extensions!.reason).toBe("REPLAYED");
    // The replay took nothing from the challenge's budget.
    const wrong = await answer(
      stack,
      { challenge: second.challenge, code: await wrongCode(stack, device) },
      from(randomSource()),
    );
    expect(attemptsLeft(wrong)).toBe(4);
  });

  it("gives exactly one session to concurrent right answers", async () => {
    const { account, device, who } = await userWithDevice();
    const { challenge } = await challengeFor(stack, who);
    const first = await nextStep(stack, device);
    // Move the stored drift one step ahead, so two fresh steps lie in the window and the
    // worker accepts both codes: only the challenge can then stop a second session.
    await stack.db.virtualMfaDevice.update({
      where: { serialNumber: device.serialNumber },
      data: { drift: { increment: 1 } },
    });
    const codes = [codeAt(device.seed, first), codeAt(device.seed, first + 1)];
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => answer(stack, { challenge, code: codes[i % 2]! })),
    );
    const sessions = results.filter((r) => r.data?.answerMfaChallenge);
    expect(sessions).toHaveLength(1);
    for (const r of results.filter((r) => !r.data?.answerMfaChallenge)) {
      expect(["UNAUTHENTICATED", "INVALID_AUTHENTICATION_CODE"]).toContain(errorCode(r));
    }
    expect(
      await stack.db.session.count({ where: { accountId: account.accountId, kind: "mfa" } }),
    ).toBe(1);
  });

  it("gives one session for one code answering many challenges at once under one x-request-id", async () => {
    const { account, device, who } = await userWithDevice();
    const challenges = await Promise.all(Array.from({ length: 6 }, () => challengeFor(stack, who)));
    const code = await nextCode(stack, device);
    const headers = { "x-request-id": "one-id-for-every-answer" };
    const results = await Promise.all(
      challenges.map(({ challenge }) => answer(stack, { challenge, code }, headers)),
    );
    expect(results.filter((r) => r.data?.answerMfaChallenge)).toHaveLength(1);
    for (const r of results.filter((r) => !r.data?.answerMfaChallenge)) {
      expect(errorCode(r)).toBe("INVALID_AUTHENTICATION_CODE");
      expect(r.errors![0]!.extensions!.reason).toBe("REPLAYED");
    }
    expect(
      await stack.db.session.count({ where: { accountId: account.accountId, kind: "mfa" } }),
    ).toBe(1);
  });

  it("gives no session when the device is deactivated while the answer's code is being checked", async () => {
    const { account, device, who } = await userWithDevice();
    const { challenge } = await challengeFor(stack, who);
    const code = await nextCode(stack, device);
    const res = await whileCodeIsChecked(
      stack,
      () => answer(stack, { challenge, code }),
      async () =>
        ok(await actionsOf(stack, account.rootToken).deactivate(device.serialNumber, "alice")),
    );
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(res.errors![0]!.message).toMatch(/removed from the user/);
    expect(
      await stack.db.session.count({ where: { accountId: account.accountId, kind: "mfa" } }),
    ).toBe(0);
  });

  it("needs the serial number when the user has several devices, and checks the one named", async () => {
    const account = await createTestAccount(stack);
    ok(
      await stack.gql(
        `mutation($input: UpdateAccountSettingsInput!) { updateAccountSettings(input: $input) { maxDevicesPerUser } }`,
        { input: { maxDevicesPerUser: 2 } },
        account.rootToken,
      ),
    );
    await createTestUser(stack, account.rootToken, "bea");
    const phone = await enrolForSignIn(stack, account.rootToken, "bea", "bea-phone");
    const tablet = await enrolForSignIn(stack, account.rootToken, "bea", "bea-tablet");
    const who = { account: account.accountId, userName: "bea" };
    const { challenge, serialNumbers } = await challengeFor(stack, who);
    expect(serialNumbers).toEqual([phone.serialNumber, tablet.serialNumber].sort());
    const code = await nextCode(stack, tablet);
    const unnamed = await answer(stack, { challenge, code });
    expect(errorCode(unnamed)).toBe("BAD_USER_INPUT");
    const unknown = await answer(stack, {
      challenge,
      code,
      serialNumber: `arn:aws:iam::${account.accountId}:mfa/not-hers`,
    });
    expect(errorCode(unknown)).toBe("BAD_USER_INPUT");
    // Neither took an attempt, and the tablet's code checked against the tablet signs in.
    ok(await answer(stack, { challenge, code, serialNumber: tablet.serialNumber }));
  });

  it("refuses an unknown, malformed or missing challenge with UNAUTHENTICATED", async () => {
    for (const challenge of ["mfac_" + "A".repeat(43), "not-a-challenge", ""]) {
      const res = await answer(stack, { challenge, code: "123456" });
      expect(errorCode(res)).toBe("UNAUTHENTICATED");
    }
  });

  it("refuses a code that is neither six digits nor a recovery code with BAD_USER_INPUT", async () => {
    const { who } = await userWithDevice();
    const { challenge } = await challengeFor(stack, who);
    for (const code of ["12345", "abcdef", "1234567890123", "1"]) {
      const res = await answer(stack, { challenge, code });
      expect(errorCode(res)).toBe("BAD_USER_INPUT");
      expect(res.errors![0]!.message).not.toContain("authenticationCode");
    }
  });

  it("limits guessing per source address: a throttled address does not stop the user at another", async () => {
    const { device, who } = await userWithDevice();
    const { challenge } = await challengeFor(stack, who);
    const attacker = from(randomSource());
    // The worker lets three failures of one address through, then makes it wait.
    for (let i = 0; i < 3; i++) {
      const res = await answer(
        stack,
        { challenge, code: await wrongCode(stack, device) },
        attacker,
      );
      expect(errorCode(res)).toBe("INVALID_AUTHENTICATION_CODE");
    }
    const throttled = await answer(
      stack,
      { challenge, code: await wrongCode(stack, device) },
      attacker,
    );
    expect(errorCode(throttled)).toBe("RATE_LIMITED");
    expect(throttled.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    // The owner, elsewhere, is not held up, and the throttled try cost the challenge nothing.
    const owner = await answer(
      stack,
      { challenge, code: await nextCode(stack, device) },
      from(randomSource()),
    );
    ok(owner);
    const row = await stack.db.mfaChallenge.findUniqueOrThrow({
      where: { tokenHash: hashToken(challenge) },
    });
    expect(row.failures).toBe(3);
  });
});

describe("wrong codes after a correct password", () => {
  it("tell the user after five in a row and again at ten, and never lock the account", async () => {
    const { account, device, who } = await userWithDevice("carl", { email: "Carl@Example.com" });
    const guess = async (challenge: string) =>
      answer(stack, { challenge, code: await wrongCode(stack, device) }, from(randomSource()));
    for (let round = 1; round <= 2; round++) {
      const { challenge } = await challengeFor(stack, who);
      for (let i = 0; i < 5; i++)
        expect(errorCode(await guess(challenge))).toBe("INVALID_AUTHENTICATION_CODE");
      const notices = await outboxOf(stack, account.accountId, "mfa-failures");
      expect(notices).toHaveLength(round);
      expect(notices[round - 1]).toMatchObject({ channel: "EMAIL", recipient: "carl@example.com" });
      expect(notices[round - 1]!.body).toContain(`${round * 5} wrong MFA codes in a row`);
    }
    const user = await stack.db.user.findFirstOrThrow({
      where: { accountId: account.accountId, userName: "carl" },
    });
    expect(user.mfaFailureStreak).toBe(10);
    // Not locked: the right code still signs in, and ends the streak.
    const { challenge } = await challengeFor(stack, who);
    ok(await answer(stack, { challenge, code: await nextCode(stack, device) }));
    const after = await stack.db.user.findUniqueOrThrow({ where: { id: user.id } });
    expect(after.mfaFailureStreak).toBe(0);
  });

  it("tell the user again only as the streak doubles, so wrong recovery codes cannot flood them", async () => {
    // Recovery codes never reach the worker's attempt budgets, and challenges cost nothing to
    // whoever holds the password: 40 wrong answers in 8 challenges, none throttled.
    const { account, who } = await userWithDevice("erin", { email: "erin@example.com" });
    const source = from(randomSource());
    for (let round = 0; round < 8; round++) {
      const { challenge } = await challengeFor(stack, who);
      for (let i = 0; i < 5; i++) {
        const res = await answer(stack, { challenge, code: "AAAA-BBBB-CCCC-DDDD" }, source);
        expect(errorCode(res)).toBe("INVALID_AUTHENTICATION_CODE");
      }
    }
    const notices = await outboxOf(stack, account.accountId, "mfa-failures");
    expect(notices.map((n) => /(\d+) wrong MFA codes in a row/.exec(n.body)?.[1])).toEqual([
      "5",
      "10",
      "20",
      "40",
    ]);
  });

  it("are reported to the account email when the user has no email of their own", async () => {
    const { account, device, who } = await userWithDevice("dina");
    const { challenge } = await challengeFor(stack, who);
    for (let i = 0; i < 5; i++) {
      await answer(
        stack,
        { challenge, code: await wrongCode(stack, device) },
        from(randomSource()),
      );
    }
    const [notice] = await outboxOf(stack, account.accountId, "mfa-failures");
    expect(notice).toMatchObject({ channel: "EMAIL", recipient: account.email });
    expect(notice!.body).toContain("user dina");
  });
});

describe("the audit trail", () => {
  it("records each answer, right and wrong, with no code in it", async () => {
    const { account, device, who } = await userWithDevice();
    const { challenge } = await challengeFor(stack, who);
    const wrong = await wrongCode(stack, device);
    await answer(stack, { challenge, code: wrong }, from(randomSource()));
    const right = await nextCode(stack, device);
    ok(await answer(stack, { challenge, code: right }));
    const events = await stack.db.auditEvent.findMany({
      where: { accountId: account.accountId, action: { in: ["SignIn", "AnswerMfaChallenge"] } },
      orderBy: { id: "asc" },
    });
    expect(events.map((e) => [e.action, e.outcome])).toEqual([
      ["SignIn", "success"],
      ["AnswerMfaChallenge", "failure"],
      ["AnswerMfaChallenge", "success"],
    ]);
    expect(events[2]!.detail).toMatchObject({ method: "totp", serialNumber: device.serialNumber });
    const text = JSON.stringify(events, (_k, v) => (typeof v === "bigint" ? String(v) : v));
    expect(text).not.toContain(wrong);
    expect(text).not.toContain(right);
    expect(text).not.toContain(challenge);
  });
});

describe("a session from password sign-in alone", () => {
  it("is not MFA-authenticated, and answering gives a separate session", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "erin");
    const password = await passwordSession(stack, { account: account.accountId, userName: "erin" });
    const device = await enrolForSignIn(stack, password, "erin", "erin-phone");
    const { challenge } = await challengeFor(stack, {
      account: account.accountId,
      userName: "erin",
    });
    const res: Answered = ok(
      await answer(stack, { challenge, code: await nextCode(stack, device) }),
    );
    expect(res.answerMfaChallenge.session.token).not.toBe(password);
    const rows = await stack.db.session.findMany({
      where: { accountId: account.accountId, userId: { not: account.accountId } },
      orderBy: { createdAt: "asc" },
    });
    expect(rows.map((r) => [r.kind, r.mfaAuthenticated])).toEqual([
      ["password", false],
      ["mfa", true],
    ]);
  });
});
