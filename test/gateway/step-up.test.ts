/**
 * getSessionToken: like AWS STS GetSessionToken, a signed-in caller proves one code of their
 * own device and gets a new, shorter session marked MFA-authenticated (kind STS).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashToken } from "../../src/auth/tokens";
import { errorCode, ok, type GraphQLResponse } from "../support/graphql";
import { createTestAccount, createTestUser } from "../support/fixtures";
import {
  actionsOf,
  enrolForSignIn,
  enrolRootDevice,
  GET_SESSION_TOKEN,
  mfaSession,
  newDevice,
  nextCode,
  passwordSession,
  whileCodeIsChecked,
  wrongCode,
  type EnrolledDevice,
} from "../support/signin";
import { startStack, type Stack } from "../support/stack";
import { awayFromStepEdge, codeAt } from "../support/totp";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

type Stepped = {
  getSessionToken: {
    token: string;
    kind: string;
    mfaAuthenticated: boolean;
    expiresAt: string;
    user: { userName: string };
  };
};

/** A user with a password session opened before their device was enabled. */
async function signedInUser(userName = "alice") {
  const account = await createTestAccount(stack);
  await createTestUser(stack, account.rootToken, userName);
  const token = await passwordSession(stack, { account: account.accountId, userName });
  const device = await enrolForSignIn(stack, account.rootToken, userName, `${userName}-phone`);
  return { account, token, device };
}

async function stepUp(token: string, device: EnrolledDevice, durationSeconds?: number) {
  return actionsOf(stack, token).getSessionToken(
    device.serialNumber,
    await nextCode(stack, device),
    durationSeconds,
  ) as Promise<GraphQLResponse<Stepped>>;
}

const lifeOf = (res: Stepped) => (Date.parse(res.getSessionToken.expiresAt) - Date.now()) / 1000;

describe("getSessionToken", () => {
  it("gives a new MFA-authenticated session of kind STS for one code of the caller's device", async () => {
    const { token, device } = await signedInUser();
    const res = ok(await stepUp(token, device, 900));
    expect(res.getSessionToken).toMatchObject({
      kind: "STS",
      mfaAuthenticated: true,
      user: { userName: "alice" },
    });
    expect(res.getSessionToken.token).not.toBe(token);
    expect(lifeOf(res)).toBeGreaterThan(895);
    expect(lifeOf(res)).toBeLessThanOrEqual(900);
    const row = await stack.db.session.findUniqueOrThrow({
      where: { tokenHash: hashToken(res.getSessionToken.token) },
    });
    expect(row).toMatchObject({ kind: "sts", mfaAuthenticated: true });
    ok(await actionsOf(stack, res.getSessionToken.token).user());
    // The calling session is unchanged: still a password session.
    const caller = await stack.db.session.findUniqueOrThrow({
      where: { tokenHash: hashToken(token) },
    });
    expect(caller).toMatchObject({ kind: "password", mfaAuthenticated: false });
  });

  it("works from an MFA session, and the stepped-up session may step up again", async () => {
    const { account, device } = await signedInUser();
    const mfa = await mfaSession(stack, { account: account.accountId, userName: "alice" }, device);
    const first = ok(await stepUp(mfa, device, 3600));
    ok(await stepUp(first.getSessionToken.token, device, 900));
  });

  it("ends with the session it came from, at any depth, when that one signs out", async () => {
    const { account, token, device } = await signedInUser();
    const child = ok(await stepUp(token, device, 3600)).getSessionToken.token;
    const grandchild = ok(await stepUp(child, device, 900)).getSessionToken.token;
    // Another session of the same user is no relation, and stays.
    const who = { account: account.accountId, userName: "alice" };
    const other = await mfaSession(stack, who, device);
    ok(await stack.gql("mutation { signOut { signedOut } }", {}, token));
    for (const ended of [token, child, grandchild]) {
      expect(errorCode(await actionsOf(stack, ended).user())).toBe("UNAUTHENTICATED");
    }
    ok(await actionsOf(stack, other).user());
  });

  it("ends only itself and what came from it when a derived session signs out", async () => {
    const { token, device } = await signedInUser();
    const child = ok(await stepUp(token, device, 3600)).getSessionToken.token;
    const grandchild = ok(await stepUp(child, device, 900)).getSessionToken.token;
    ok(await stack.gql("mutation { signOut { signedOut } }", {}, child));
    expect(errorCode(await actionsOf(stack, grandchild).user())).toBe("UNAUTHENTICATED");
    ok(await actionsOf(stack, token).user());
  });

  it("defaults to 12 hours, and never outlives the calling session", async () => {
    const { token, device } = await signedInUser();
    // The calling session has its default 12 hours, less a moment: the default is cut to that.
    const defaulted = ok(await stepUp(token, device));
    const caller = await stack.db.session.findUniqueOrThrow({
      where: { tokenHash: hashToken(token) },
    });
    expect(Date.parse(defaulted.getSessionToken.expiresAt)).toBeLessThanOrEqual(
      caller.expiresAt.getTime(),
    );
    expect(lifeOf(defaulted)).toBeGreaterThan(43_000);
    // With 20 minutes left, a request for 36 hours gets 20 minutes.
    await stack.db.session.update({
      where: { tokenHash: hashToken(token) },
      data: { expiresAt: new Date(Date.now() + 1200_000) },
    });
    const capped = ok(await stepUp(token, device, 129_600));
    expect(lifeOf(capped)).toBeGreaterThan(1190);
    expect(lifeOf(capped)).toBeLessThanOrEqual(1200);
  });

  it("caps the root user's sessions at one hour, as AWS does", async () => {
    const account = await createTestAccount(stack);
    const device = await enrolRootDevice(stack, account.rootToken);
    const res = ok(await stepUp(account.rootToken, device, 7200));
    expect(lifeOf(res)).toBeGreaterThan(3590);
    expect(lifeOf(res)).toBeLessThanOrEqual(3600);
    const defaulted = ok(await stepUp(account.rootToken, device));
    expect(lifeOf(defaulted)).toBeLessThanOrEqual(3600);
  });

  it.each([
    [899, "greater than or equal to 900"],
    [129_601, "less than or equal to 129600"],
  ])("refuses durationSeconds %i with BAD_USER_INPUT and AWS's message", async (duration, text) => {
    const { token, device } = await signedInUser();
    const res = await actionsOf(stack, token).getSessionToken(
      device.serialNumber,
      "123456",
      duration,
    );
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(res.errors![0]!.message).toContain(text);
  });

  it("refuses a malformed code with BAD_USER_INPUT before checking anything", async () => {
    const { token, device } = await signedInUser();
    for (const code of ["12345", "abcdef", "123456789", "1234567"]) {
      const res = await actionsOf(stack, token).getSessionToken(device.serialNumber, code);
      expect(errorCode(res)).toBe("BAD_USER_INPUT");
      // The message names the field the caller sent, not one of enable's.
      expect(res.errors![0]!.message).toContain("'tokenCode'");
    }
  });

  it("refuses a wrong code, and a code used once already, with INVALID_AUTHENTICATION_CODE", async () => {
    const { account, token, device } = await signedInUser();
    const as = actionsOf(stack, token);
    const wrong = await as.getSessionToken(device.serialNumber, await wrongCode(stack, device));
    expect(errorCode(wrong)).toBe("INVALID_AUTHENTICATION_CODE");
    const code = await nextCode(stack, device);
    ok(await as.getSessionToken(device.serialNumber, code));
    const replay = await as.getSessionToken(device.serialNumber, code);
    expect(errorCode(replay)).toBe("INVALID_AUTHENTICATION_CODE");
    expect(replay.errors![0]!.extensions!.reason).toBe("REPLAYED");
    expect(
      await stack.db.session.count({ where: { accountId: account.accountId, kind: "sts" } }),
    ).toBe(1);
  });

  it("keeps a code reported as CLOCK_SKEW refused after Redis forgets it, by PostgreSQL's copy of its step", async () => {
    const { token, device } = await signedInUser("skewed");
    const where = { serialNumber: device.serialNumber };
    const { id, drift } = await stack.db.virtualMfaDevice.findUniqueOrThrow({ where });
    const now = await awayFromStepEdge(stack, 10);
    const ahead = now + drift + 4;
    const reported = await actionsOf(stack, token).getSessionToken(
      device.serialNumber,
      codeAt(device.seed, ahead),
    );
    expect(reported.errors![0]!.extensions).toMatchObject({
      reason: "CLOCK_SKEW",
      offsetSteps: drift + 4,
    });
    // And the server time the phone's clock was compared with, for the app to show.
    const serverTime = Date.parse(String(reported.errors![0]!.extensions!.serverTime));
    expect(Math.floor(serverTime / 30_000)).toBe(now);
    expect(await stack.db.virtualMfaDevice.findUniqueOrThrow({ where })).toMatchObject({
      burntSteps: [ahead],
    });

    // As after a Redis restart, once the phone's step has come round (a drift of 4 more stands
    // in for the wait): the worker's own record of the burnt step is gone.
    const forget = () =>
      (stack.redis as unknown as { del(key: string): Promise<number> }).del(
        `${stack.prefix}:{d:${id}}`,
      );
    expect(await forget()).toBe(1);
    await stack.db.virtualMfaDevice.update({ where, data: { drift: drift + 4 } });
    const replayed = await actionsOf(stack, token).getSessionToken(
      device.serialNumber,
      codeAt(device.seed, ahead),
    );
    expect(replayed.errors![0]!.extensions).toMatchObject({ reason: "REPLAYED" });

    // The control: without PostgreSQL's copy, the same code would have granted a session.
    await forget();
    await stack.db.virtualMfaDevice.update({ where, data: { burntSteps: [] } });
    ok(
      await actionsOf(stack, token).getSessionToken(
        device.serialNumber,
        codeAt(device.seed, ahead),
      ),
    );
  });

  it("refuses a device that is not the caller's, whoever's it is, with FORBIDDEN", async () => {
    const { account, token } = await signedInUser();
    await createTestUser(stack, account.rootToken, "bob");
    const bobs = await enrolForSignIn(stack, account.rootToken, "bob", "bob-phone");
    const unassigned = await newDevice(stack, account.rootToken, "spare");
    const other = await createTestAccount(stack);
    const theirs = await enrolRootDevice(stack, other.rootToken);
    const as = actionsOf(stack, token);
    const answers = [
      await as.getSessionToken(bobs.serialNumber, await nextCode(stack, bobs)),
      await as.getSessionToken(unassigned.serialNumber, "123456"),
      await as.getSessionToken(theirs.serialNumber, await nextCode(stack, theirs)),
      await as.getSessionToken(`arn:aws:iam::${account.accountId}:mfa/missing`, "123456"),
      await as.getSessionToken("GAHT12345678", "123456"),
    ];
    for (const res of answers) {
      expect(errorCode(res)).toBe("FORBIDDEN");
      expect(res.errors).toEqual(answers[0]!.errors);
    }
    // Bob's code was never checked, so it still works for Bob.
    const bob = await mfaSession(stack, { account: account.accountId, userName: "bob" }, bobs);
    expect(bob).toMatch(/^mfas_/);
  });

  it("records the accepted step, the audit event and the end of the failure streak", async () => {
    const { account, token, device } = await signedInUser();
    const as = actionsOf(stack, token);
    await as.getSessionToken(device.serialNumber, await wrongCode(stack, device));
    const user = await stack.db.user.findFirstOrThrow({
      where: { accountId: account.accountId, userName: "alice" },
    });
    expect(user.mfaFailureStreak).toBe(1);
    const code = await nextCode(stack, device);
    const before = await stack.db.virtualMfaDevice.findUniqueOrThrow({
      where: { serialNumber: device.serialNumber },
    });
    ok(await as.getSessionToken(device.serialNumber, code, 900));
    const after = await stack.db.virtualMfaDevice.findUniqueOrThrow({
      where: { serialNumber: device.serialNumber },
    });
    expect(after.lastStep).toBe(before.lastStep! + 1);
    expect(
      (await stack.db.user.findUniqueOrThrow({ where: { id: user.id } })).mfaFailureStreak,
    ).toBe(0);
    const events = await stack.db.auditEvent.findMany({
      where: { accountId: account.accountId, action: "GetSessionToken" },
      orderBy: { id: "asc" },
    });
    expect(events.map((e) => e.outcome)).toEqual(["failure", "success"]);
    expect(events[1]).toMatchObject({
      actorUserId: user.id,
      detail: { serialNumber: device.serialNumber, durationSeconds: 900 },
    });
    expect(
      JSON.stringify(events, (_k, v) => (typeof v === "bigint" ? String(v) : v)),
    ).not.toContain(code);
  });

  it("grants one session for one code, however many copies of the request share one x-request-id", async () => {
    const { account, token, device } = await signedInUser();
    const code = await nextCode(stack, device);
    const input = { serialNumber: device.serialNumber, tokenCode: code };
    const headers = { "x-request-id": "one-id-for-every-copy" };
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => stack.gql(GET_SESSION_TOKEN, { input }, token, headers)),
    );
    const granted = answers.filter((res) => !res.errors);
    expect(granted).toHaveLength(1);
    for (const res of answers.filter((r) => r.errors)) {
      expect(errorCode(res)).toBe("INVALID_AUTHENTICATION_CODE");
      expect(res.errors![0]!.extensions!.reason).toBe("REPLAYED");
    }
    expect(
      await stack.db.session.count({ where: { accountId: account.accountId, kind: "sts" } }),
    ).toBe(1);
  });

  it("grants nothing when the device is deactivated while its code is being checked", async () => {
    const { account, token, device } = await signedInUser();
    const code = await nextCode(stack, device);
    const res = await whileCodeIsChecked(
      stack,
      () => actionsOf(stack, token).getSessionToken(device.serialNumber, code),
      async () =>
        ok(await actionsOf(stack, account.rootToken).deactivate(device.serialNumber, "alice")),
    );
    expect(errorCode(res)).toBe("FORBIDDEN");
    expect(
      await stack.db.session.count({ where: { accountId: account.accountId, kind: "sts" } }),
    ).toBe(0);
  });

  it("needs a session", async () => {
    const { device } = await signedInUser();
    const res = await actionsOf(stack).getSessionToken(device.serialNumber, "123456");
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
  });
});
