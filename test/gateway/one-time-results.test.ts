/**
 * A mutation whose result is shown once (a device's seed, recovery codes, a session bought with
 * a code) must run alone: beside another field, that field's error would null the whole answer
 * and the secret would be made, or the code spent, for nothing. Such requests are refused
 * before anything runs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, ok } from "../support/graphql";
import { createTestAccount, createTestUser } from "../support/fixtures";
import { actionsOf, enrolForSignIn, nextCode, passwordSession } from "../support/signin";
import { startStack, type Stack } from "../support/stack";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const deviceCount = (accountId: string) =>
  stack.db.virtualMfaDevice.count({ where: { accountId } });

describe("a mutation with a one-time result", () => {
  it("is refused beside another field, and creates nothing", async () => {
    const account = await createTestAccount(stack);
    const res = await stack.gql(
      `mutation {
        a: createVirtualMfaDevice(input: { virtualMfaDeviceName: "lost-seed" }) { base32StringSeed }
        b: deleteUser(input: { userName: "nobody" }) { deleted }
      }`,
      {},
      account.rootToken,
    );
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(res.errors![0]!.message).toContain("createVirtualMfaDevice must be the only field");
    expect(await deviceCount(account.accountId)).toBe(0);
  });

  it("is refused twice under two aliases, and the code is not spent", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "alice");
    const who = { account: account.accountId, userName: "alice" };
    const session = await passwordSession(stack, who);
    const device = await enrolForSignIn(stack, account.rootToken, "alice", "alice-phone");
    const input = { serialNumber: device.serialNumber, tokenCode: await nextCode(stack, device) };
    const twice = await stack.gql(
      `mutation($input: GetSessionTokenInput!) {
        g0: getSessionToken(input: $input) { token }
        g1: getSessionToken(input: $input) { token }
      }`,
      { input },
      session,
    );
    expect(errorCode(twice)).toBe("BAD_USER_INPUT");
    const once = await actionsOf(stack, session).getSessionToken(
      input.serialNumber,
      input.tokenCode,
    );
    expect(ok(once)).toMatchObject({ getSessionToken: { token: expect.any(String) } });
  });

  it("is found through fragments spread at the top level", async () => {
    const account = await createTestAccount(stack);
    const res = await stack.gql(
      `mutation { ...Both }
       fragment Both on Mutation {
         ... on Mutation { createVirtualMfaDevice(input: { virtualMfaDeviceName: "x" }) { base32StringSeed } }
         signOut { signedOut }
       }`,
      {},
      account.rootToken,
    );
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(await deviceCount(account.accountId)).toBe(0);
  });

  it("runs alone, and other mutations still share a request", async () => {
    const account = await createTestAccount(stack);
    const alone = await stack.gql<{ createVirtualMfaDevice: { base32StringSeed: string } }>(
      `mutation { createVirtualMfaDevice(input: { virtualMfaDeviceName: "kept" }) { base32StringSeed } }`,
      {},
      account.rootToken,
    );
    expect(ok(alone).createVirtualMfaDevice.base32StringSeed).toMatch(/^[A-Z2-7]{64}$/);
    const two = await stack.gql(
      `mutation {
        a: createUser(input: { userName: "carol" }) { userName }
        b: createUser(input: { userName: "dave" }) { userName }
      }`,
      {},
      account.rootToken,
    );
    expect(ok(two)).toEqual({ a: { userName: "carol" }, b: { userName: "dave" } });
  });
});
