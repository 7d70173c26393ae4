/**
 * Clocks that drift: a device enabled late is out of sync, its drift is recorded, later codes
 * are checked at that drift, and resync re-centres it. The replay watermark only moves up.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger";
import { CodeVerificationService } from "../../src/mfa-devices/code-verification.service";
import { createWorkerClient, type WorkerClient } from "../../worker/client";
import type { TransportRedis } from "../../worker/transport/keys";
import { errorCode, ok } from "../support/graphql";
import { createTestAccount, createTestUser, type TestAccount } from "../support/fixtures";
import { startStack, type Stack } from "../support/stack";
import {
  awayFromStepEdge,
  codeAt,
  codePair,
  createDevice,
  ENABLE_DEVICE,
  RESYNC_DEVICE,
} from "../support/totp";

let stack: Stack;
let worker: WorkerClient;
let verification: CodeVerificationService;
beforeAll(async () => {
  // The production default, which the test stack otherwise turns off.
  stack = await startStack({ policy: { loginRecentreSeconds: 3600 } });
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

const row = (serialNumber: string) =>
  stack.db.virtualMfaDevice.findUniqueOrThrow({ where: { serialNumber } });

/** A login-style check of one code, as sign-in will make it. */
async function loginCheck(serialNumber: string, code: string) {
  return verification.verifyDeviceCode(
    await row(serialNumber),
    "login",
    { code1: code },
    {
      requestId: randomUUID(),
      sourceIp: "127.0.0.7",
    },
  );
}

async function enableWith(
  account: TestAccount,
  userName: string,
  serialNumber: string,
  codes: object,
) {
  return stack.gql(
    ENABLE_DEVICE,
    { input: { userName, serialNumber, ...codes } },
    account.rootToken,
  );
}

async function resyncWith(
  account: TestAccount,
  userName: string,
  serialNumber: string,
  codes: object,
) {
  return stack.gql(
    RESYNC_DEVICE,
    { input: { userName, serialNumber, ...codes } },
    account.rootToken,
  );
}

describe("a device out of sync", () => {
  it("enables with codes from several steps ago, records the drift, and checks later codes at it", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "slow");
    const device = await createDevice(stack, account.rootToken, "slow-phone");
    const step = await awayFromStepEdge(stack, 6);
    // The phone is five steps (2.5 minutes) slow: it shows now-6 and then now-5.
    ok(await enableWith(account, "slow", device.serialNumber, codePair(device.seed, step - 6)));
    expect(await row(device.serialNumber)).toMatchObject({ drift: -5, lastStep: step - 5 });

    // Its next code is for now-4: two steps outside a window around real time, but inside
    // the window around the recorded drift. Minutes after the last acceptance, a login does not
    // move the drift (verify-3.lua, the recentre gap).
    await expect(loginCheck(device.serialNumber, codeAt(device.seed, step - 4))).resolves.toEqual({
      step: step - 4,
      drift: -5,
    });
    expect(await row(device.serialNumber)).toMatchObject({ lastStep: step - 4 });
  });

  it("re-centres the drift when the device is resynced", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "fixed");
    const device = await createDevice(stack, account.rootToken, "fixed-phone");
    const step = await awayFromStepEdge(stack, 6);
    ok(await enableWith(account, "fixed", device.serialNumber, codePair(device.seed, step - 8)));
    expect((await row(device.serialNumber)).drift).toBe(-7);

    // The owner set the phone's clock right (a little fast, even): its codes are now far from
    // the recorded drift. (A step reported as skewed is burnt, so the resync below uses others.)
    const skewed = await loginCheck(device.serialNumber, codeAt(device.seed, step + 2)).catch(
      (e: unknown) => e,
    );
    expect(skewed).toMatchObject({
      extensions: { code: "INVALID_AUTHENTICATION_CODE", reason: "CLOCK_SKEW" },
    });

    ok(await resyncWith(account, "fixed", device.serialNumber, codePair(device.seed, step - 1)));
    expect(await row(device.serialNumber)).toMatchObject({ drift: 0, lastStep: step });
    await expect(
      loginCheck(device.serialNumber, codeAt(device.seed, step + 1)),
    ).resolves.toMatchObject({
      step: step + 1,
      drift: 0,
    });
  });

  it("resyncs a device further out than enabling would ever accept", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "far");
    const device = await createDevice(stack, account.rootToken, "far-phone");
    const step = await awayFromStepEdge(stack, 6);
    ok(await enableWith(account, "far", device.serialNumber, codePair(device.seed, step - 1)));
    // Fifteen minutes fast.
    ok(await resyncWith(account, "far", device.serialNumber, codePair(device.seed, step + 29)));
    expect(await row(device.serialNumber)).toMatchObject({ drift: 30, lastStep: step + 30 });
    await expect(
      loginCheck(device.serialNumber, codeAt(device.seed, step + 31)),
    ).resolves.toMatchObject({
      step: step + 31,
    });
  });

  it("refuses resync codes that were already accepted", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "twice");
    const device = await createDevice(stack, account.rootToken, "twice-phone");
    const step = await awayFromStepEdge(stack);
    ok(await enableWith(account, "twice", device.serialNumber, codePair(device.seed, step - 1)));
    const codes = codePair(device.seed, step + 1);
    ok(await resyncWith(account, "twice", device.serialNumber, codes));
    const again = await resyncWith(account, "twice", device.serialNumber, codes);
    expect(errorCode(again)).toBe("INVALID_AUTHENTICATION_CODE");
    expect(again.errors![0]!.extensions!.reason).toBe("REPLAYED");
  });

  it("answers NOT_FOUND when the device is not assigned to that user", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "owner");
    await createTestUser(stack, account.rootToken, "other");
    const device = await createDevice(stack, account.rootToken, "unassigned");
    const step = await awayFromStepEdge(stack);
    const unassigned = await resyncWith(
      account,
      "owner",
      device.serialNumber,
      codePair(device.seed, step - 1),
    );
    expect(errorCode(unassigned)).toBe("NOT_FOUND");
    expect(unassigned.errors![0]!.message).toBe(
      `MFA Device with serial number ${device.serialNumber} does not exist.`,
    );
    ok(await enableWith(account, "owner", device.serialNumber, codePair(device.seed, step - 1)));
    const someoneElse = await resyncWith(
      account,
      "other",
      device.serialNumber,
      codePair(device.seed, step + 1),
    );
    expect(errorCode(someoneElse)).toBe("NOT_FOUND");
    const unknownUser = await resyncWith(
      account,
      "ghost",
      device.serialNumber,
      codePair(device.seed, step + 1),
    );
    expect(unknownUser.errors![0]!.message).toBe("The user with name ghost cannot be found.");
  });
});

describe("the replay watermark", () => {
  it("keeps a used code used even when Redis forgets it", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "amnesia");
    const device = await createDevice(stack, account.rootToken, "amnesia-phone");
    const step = await awayFromStepEdge(stack);
    const codes = codePair(device.seed, step - 1);
    ok(await enableWith(account, "amnesia", device.serialNumber, codes));
    ok(
      await stack.gql(
        `mutation($input: DeactivateMfaDeviceInput!) { deactivateMfaDevice(input: $input) { serialNumber } }`,
        { input: { userName: "amnesia", serialNumber: device.serialNumber } },
        account.rootToken,
      ),
    );
    // As after a Redis restart: the worker's copy of the watermark (the device's state) is gone.
    const { id } = await row(device.serialNumber);
    const deleted = await (stack.redis as unknown as { del(key: string): Promise<number> }).del(
      `${stack.prefix}:{d:${id}}`,
    );
    expect(deleted).toBe(1); // so the refusal below comes from PostgreSQL's copy alone
    const again = await enableWith(account, "amnesia", device.serialNumber, codes);
    expect(errorCode(again)).toBe("INVALID_AUTHENTICATION_CODE");
    expect(again.errors![0]!.extensions!.reason).toBe("REPLAYED");
  });

  it("never moves backwards, even when accepted steps are recorded out of order", async () => {
    const account = await createTestAccount(stack);
    const device = await createDevice(stack, account.rootToken, "ordered");
    const { id } = await row(device.serialNumber);
    await verification.recordAcceptedStep(id, { step: 1000, drift: 2 });
    await verification.recordAcceptedStep(id, { step: 990, drift: -8 });
    expect(await row(device.serialNumber)).toMatchObject({ lastStep: 1000, drift: 2 });
    await verification.recordAcceptedStep(id, { step: 1001, drift: 3 });
    expect(await row(device.serialNumber)).toMatchObject({ lastStep: 1001, drift: 3 });
  });
});
