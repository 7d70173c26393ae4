/**
 * Enrolling the way a person with a phone does: scan the QR code, let the app compute codes
 * (oathtool stands in for it), type two of them, and keep using the app afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger";
import { CodeVerificationService } from "../../src/mfa-devices/code-verification.service";
import { createWorkerClient, type WorkerClient } from "../../worker/client";
import type { TransportRedis } from "../../worker/transport/keys";
import { errorCode, ok } from "../support/graphql";
import { createTestAccount, createTestUser, signInUser } from "../support/fixtures";
import { startStack, type Stack } from "../support/stack";
import {
  awayFromStepEdge,
  codeAt,
  CREATE_DEVICE,
  ENABLE_DEVICE,
  parseKeyUri,
  readQrCode,
  RESYNC_DEVICE,
} from "../support/totp";

let stack: Stack;
let worker: WorkerClient;
/** The gateway's own verification service, as sign-in will use it for login codes. */
let verification: CodeVerificationService;
beforeAll(async () => {
  stack = await startStack();
  worker = createWorkerClient({
    redis: stack.redis as TransportRedis,
    prefix: stack.prefix,
    deadlineMs: 2000,
  });
  verification = new CodeVerificationService(stack.db, worker, createLogger("test", "silent"));
});
afterAll(async () => {
  await worker?.close();
  await stack?.stop();
});

type Created = {
  createVirtualMfaDevice: {
    virtualMfaDevice: { serialNumber: string };
    base32StringSeed: string;
    otpauthUri: string;
    qrCodePng: string;
  };
};

async function loginCheck(serialNumber: string, code: string, requestId: string) {
  const device = await stack.db.virtualMfaDevice.findUniqueOrThrow({ where: { serialNumber } });
  return verification.verifyDeviceCode(
    device,
    "login",
    { code1: code },
    { requestId, sourceIp: "127.0.0.9" },
  );
}

describe("enrolling with a phone", () => {
  it("enrols the way a phone does: scan, type two codes, then keep using the app", async () => {
    const alias = `phone-${Date.now().toString(36)}`;
    const account = await createTestAccount(stack, alias);
    await createTestUser(stack, account.rootToken, "alice");
    const alice = (await signInUser(stack, account.accountId, "alice")).session!.token;

    const created = ok(
      await stack.gql<Created>(
        CREATE_DEVICE,
        { input: { virtualMfaDeviceName: "alice-phone" } },
        alice,
      ),
    ).createVirtualMfaDevice;
    const { serialNumber } = created.virtualMfaDevice;

    // The camera reads the QR code; the app takes everything it needs from the URI.
    const uri = readQrCode(created.qrCodePng);
    expect(uri).toBe(created.otpauthUri);
    const key = parseKeyUri(uri);
    expect(key).toMatchObject({
      type: "totp",
      issuerInLabel: "Virtual MFA",
      accountName: `alice-phone@${alias}`,
    });
    expect(Object.fromEntries(key.params)).toEqual({
      secret: created.base32StringSeed,
      issuer: "Virtual MFA",
      algorithm: "SHA1",
      digits: "6",
      period: "30",
    });
    const secret = key.params.get("secret")!;

    // The person types the code on screen, then the next one.
    const step = await awayFromStepEdge(stack, 5);
    ok(
      await stack.gql(
        ENABLE_DEVICE,
        {
          input: {
            userName: "alice",
            serialNumber,
            authenticationCode1: codeAt(secret, step - 1),
            authenticationCode2: codeAt(secret, step),
          },
        },
        alice,
      ),
    );

    const mine = ok(
      await stack.gql<{
        mfaDevices: { edges: { node: { serialNumber: string; userName: string } }[] };
      }>(`{ mfaDevices { edges { node { serialNumber userName } } } }`, {}, alice),
    );
    expect(mine.mfaDevices.edges.map((e) => e.node)).toEqual([{ serialNumber, userName: "alice" }]);
    const assigned = ok(
      await stack.gql<{ virtualMfaDevices: { edges: { node: { serialNumber: string } }[] } }>(
        `{ virtualMfaDevices(assignmentStatus: ASSIGNED) { edges { node { serialNumber } } } }`,
        {},
        account.rootToken,
      ),
    );
    expect(assigned.virtualMfaDevices.edges.map((e) => e.node.serialNumber)).toEqual([
      serialNumber,
    ]);

    // The app's next code works once, and only once.
    const next = codeAt(secret, step + 1);
    await expect(loginCheck(serialNumber, next, "phone-login-1")).resolves.toMatchObject({
      step: step + 1,
    });
    await expect(loginCheck(serialNumber, next, "phone-login-2")).rejects.toMatchObject({
      extensions: { code: "INVALID_AUTHENTICATION_CODE", reason: "REPLAYED" },
    });

    // And later codes resync it.
    ok(
      await stack.gql(
        RESYNC_DEVICE,
        {
          input: {
            userName: "alice",
            serialNumber,
            authenticationCode1: codeAt(secret, step + 2),
            authenticationCode2: codeAt(secret, step + 3),
          },
        },
        alice,
      ),
    );
    const row = await stack.db.virtualMfaDevice.findUniqueOrThrow({ where: { serialNumber } });
    expect(row.lastStep).toBe(step + 3);
  });

  it("labels the key with the account id when the account has no alias", async () => {
    const account = await createTestAccount(stack);
    const created = ok(
      await stack.gql<Created>(
        CREATE_DEVICE,
        { input: { virtualMfaDeviceName: "no-alias" } },
        account.rootToken,
      ),
    ).createVirtualMfaDevice;
    expect(parseKeyUri(readQrCode(created.qrCodePng)).accountName).toBe(
      `no-alias@${account.accountId}`,
    );
  });

  it("encodes names with + and @ so apps read them back unchanged", async () => {
    const account = await createTestAccount(stack);
    const created = ok(
      await stack.gql<Created>(
        CREATE_DEVICE,
        { input: { virtualMfaDeviceName: "a+b@c.d=e" } },
        account.rootToken,
      ),
    ).createVirtualMfaDevice;
    expect(created.otpauthUri).not.toMatch(/totp\/[^?]*[+@ ]/);
    expect(parseKeyUri(created.otpauthUri).accountName).toBe(`a+b@c.d=e@${account.accountId}`);
  });

  it("does not accept the codes of one device for another", async () => {
    const account = await createTestAccount(stack);
    const user = "bob";
    await createTestUser(stack, account.rootToken, user);
    const [first, second] = await Promise.all(
      ["bob-1", "bob-2"].map(
        async (name) =>
          ok(
            await stack.gql<Created>(
              CREATE_DEVICE,
              { input: { virtualMfaDeviceName: name } },
              account.rootToken,
            ),
          ).createVirtualMfaDevice,
      ),
    );
    const step = await awayFromStepEdge(stack);
    const res = await stack.gql(
      ENABLE_DEVICE,
      {
        input: {
          userName: user,
          serialNumber: second!.virtualMfaDevice.serialNumber,
          authenticationCode1: codeAt(first!.base32StringSeed, step - 1),
          authenticationCode2: codeAt(first!.base32StringSeed, step),
        },
      },
      account.rootToken,
    );
    expect(errorCode(res)).toBe("INVALID_AUTHENTICATION_CODE");
  });
});
