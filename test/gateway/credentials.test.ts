/**
 * Ending a compromise: changePassword (the caller's own, like AWS IAM ChangePassword) and
 * signOutUser (an administrator ends every session of a user).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, ok } from "../support/graphql";
import { createTestAccount, createTestUser, PASSWORD } from "../support/fixtures";
import {
  actionsOf,
  answer,
  challengeFor,
  enrolForSignIn,
  mfaSession,
  nextCode,
  outboxOf,
  passwordSession,
  SIGN_IN,
  whileCodeIsChecked,
} from "../support/signin";
import { startStack, type Stack } from "../support/stack";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const CHANGE = `mutation($input: ChangePasswordInput!) { changePassword(input: $input) { sessionsSignedOut } }`;
const SIGN_OUT_USER = `mutation($input: SignOutUserInput!) { signOutUser(input: $input) { sessionsSignedOut } }`;
const WHO_AM_I = `{ user { userName } }`;
const NEW_PASSWORD = "a new and longer passphrase";

/** Alice, with an enabled device and two MFA sessions of her own. */
async function aliceWithTwoSessions() {
  const account = await createTestAccount(stack);
  await createTestUser(stack, account.rootToken, "alice");
  const device = await enrolForSignIn(stack, account.rootToken, "alice", "alice-phone");
  const who = { account: account.accountId, userName: "alice" };
  const mine = await mfaSession(stack, who, device);
  const other = await mfaSession(stack, who, device);
  return { account, who, device, mine, other };
}

const change = (token: string, currentPassword: string, newPassword: string) =>
  stack.gql<{ changePassword: { sessionsSignedOut: number } }>(
    CHANGE,
    { input: { currentPassword, newPassword } },
    token,
  );

describe("changePassword", () => {
  it("sets the new password and signs out every other session of the caller", async () => {
    const { account, who, mine, other } = await aliceWithTwoSessions();
    const res = ok(await change(mine, PASSWORD, NEW_PASSWORD));
    expect(res.changePassword.sessionsSignedOut).toBe(1);
    expect(errorCode(await stack.gql(WHO_AM_I, {}, other))).toBe("UNAUTHENTICATED");
    ok(await stack.gql(WHO_AM_I, {}, mine));
    // The old password no longer signs in; the new one does (to the MFA challenge).
    const old = await stack.gql(SIGN_IN, { input: { ...who, password: PASSWORD } });
    expect(errorCode(old)).toBe("UNAUTHENTICATED");
    const fresh = ok(
      await stack.gql<{ signIn: { status: string } }>(SIGN_IN, {
        input: { ...who, password: NEW_PASSWORD },
      }),
    );
    expect(fresh.signIn.status).toBe("MFA_REQUIRED");
    const [notice] = await outboxOf(stack, account.accountId, "password-changed");
    expect(notice?.body).toContain("1 other session(s) were signed out");
    expect(notice?.body).not.toContain(NEW_PASSWORD);
    const event = await stack.db.auditEvent.findFirstOrThrow({
      where: { accountId: account.accountId, action: "ChangePassword" },
    });
    expect(event.detail).toEqual({ sessionsSignedOut: 1 });
  });

  it("lets one of two concurrent changes from the same password win, and signs the other out", async () => {
    const { who, mine, other } = await aliceWithTwoSessions();
    const [a, b] = await Promise.all([
      change(mine, PASSWORD, "first new passphrase"),
      change(other, PASSWORD, "second new passphrase"),
    ]);
    const winners = [a, b].filter((res) => !res.errors);
    expect(winners).toHaveLength(1);
    expect(errorCode([a, b].find((res) => res.errors)!)).toBe("UNAUTHENTICATED");
    const works = async (password: string) =>
      !(await stack.gql(SIGN_IN, { input: { ...who, password } })).errors;
    const firstWon = winners[0] === a;
    expect(await works("first new passphrase")).toBe(firstWon);
    expect(await works("second new passphrase")).toBe(!firstWon);
    // The winner's session stands; the loser's was signed out by the winner's change.
    ok(await stack.gql(WHO_AM_I, {}, firstWon ? mine : other));
  });

  it("voids the MFA challenges opened with the old password", async () => {
    const { who, mine, device } = await aliceWithTwoSessions();
    const { challenge } = await challengeFor(stack, who);
    ok(await change(mine, PASSWORD, NEW_PASSWORD));
    const res = await answer(stack, { challenge, code: await nextCode(stack, device) });
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
  });

  it("needs an MFA-authenticated session once the user has a device", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "bob");
    // Opened with the password before the device was enabled: a password alone.
    const token = await passwordSession(stack, { account: account.accountId, userName: "bob" });
    await enrolForSignIn(stack, account.rootToken, "bob", "bob-phone");
    expect(errorCode(await change(token, PASSWORD, NEW_PASSWORD))).toBe("FORBIDDEN");
    // The password is unchanged.
    await challengeFor(stack, { account: account.accountId, userName: "bob" });
  });

  it("refuses a wrong current password, a short new one and the same one with BAD_USER_INPUT", async () => {
    const { mine } = await aliceWithTwoSessions();
    for (const [current, next] of [
      ["not the password", NEW_PASSWORD],
      [PASSWORD, "short"],
      [PASSWORD, PASSWORD],
    ]) {
      expect(errorCode(await change(mine, current!, next!))).toBe("BAD_USER_INPUT");
    }
    ok(await stack.gql(WHO_AM_I, {}, mine));
  });
});

describe("signOutUser", () => {
  it("lets an administrator end every session of a user", async () => {
    const { account, mine, other } = await aliceWithTwoSessions();
    const res = ok(
      await stack.gql<{ signOutUser: { sessionsSignedOut: number } }>(
        SIGN_OUT_USER,
        { input: { userName: "alice" } },
        account.rootToken,
      ),
    );
    expect(res.signOutUser.sessionsSignedOut).toBe(2);
    for (const token of [mine, other])
      expect(errorCode(await stack.gql(WHO_AM_I, {}, token))).toBe("UNAUTHENTICATED");
    const event = await stack.db.auditEvent.findFirstOrThrow({
      where: { accountId: account.accountId, action: "SignOutUser" },
    });
    expect(event.detail).toEqual({ sessionsSignedOut: 2 });
  });

  it("ends a session granted by a getSessionToken that was in flight", async () => {
    const { account, device, mine } = await aliceWithTwoSessions();
    const code = await nextCode(stack, device);
    const res = await whileCodeIsChecked(
      stack,
      () => actionsOf(stack, mine).getSessionToken(device.serialNumber, code),
      async () =>
        ok(await stack.gql(SIGN_OUT_USER, { input: { userName: "alice" } }, account.rootToken)),
    );
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
    expect(
      await stack.db.session.count({
        where: { accountId: account.accountId, kind: "sts", revokedAt: null },
      }),
    ).toBe(0);
  });

  it("is FORBIDDEN to a user who is not an administrator, and to an administrator for root", async () => {
    const { account, mine } = await aliceWithTwoSessions();
    await createTestUser(stack, account.rootToken, "boss", { isAdministrator: true });
    const boss = await passwordSession(stack, { account: account.accountId, userName: "boss" });
    const asAlice = await stack.gql(SIGN_OUT_USER, { input: { userName: "boss" } }, mine);
    expect(errorCode(asAlice)).toBe("FORBIDDEN");
    const onRoot = await stack.gql(SIGN_OUT_USER, { input: { userName: "root" } }, boss);
    expect(errorCode(onRoot)).toBe("FORBIDDEN");
    ok(await stack.gql(WHO_AM_I, {}, account.rootToken));
    ok(await stack.gql(WHO_AM_I, {}, boss));
  });
});
