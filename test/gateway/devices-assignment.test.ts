/**
 * Taking devices away and swapping them: deactivate, rotate, and the root user's device,
 * which only root may touch.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, ok } from "../support/graphql";
import { createTestAccount, createTestUser, signInUser } from "../support/fixtures";
import { startStack, type Stack } from "../support/stack";
import {
  awayFromStepEdge,
  codePair,
  createDevice,
  ENABLE_DEVICE,
  enrolDevice,
  markSessionMfaAuthenticated,
} from "../support/totp";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const DEACTIVATE = `mutation($input: DeactivateMfaDeviceInput!) {
  deactivateMfaDevice(input: $input) { serialNumber user { userName } enableDate }
}`;
const DELETE = `mutation($input: DeleteVirtualMfaDeviceInput!) { deleteVirtualMfaDevice(input: $input) { deleted } }`;
const ROTATE = `mutation($input: RotateMfaDeviceInput!) {
  rotateMfaDevice(input: $input) {
    enabled { serialNumber user { userName } enableDate }
    deactivated { serialNumber user { userName } enableDate }
  }
}`;

async function assignedTo(serialNumber: string) {
  const row = await stack.db.virtualMfaDevice.findUniqueOrThrow({
    where: { serialNumber },
    include: { user: true },
  });
  return row.user?.userName ?? null;
}

describe("deactivating a device", () => {
  it("unassigns it, clears user and enable date, and lets it be enabled again", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "alice");
    const device = await enrolDevice(stack, account.rootToken, "alice", "alice-phone");
    const res = ok(
      await stack.gql<{ deactivateMfaDevice: unknown }>(
        DEACTIVATE,
        { input: { userName: "alice", serialNumber: device.serialNumber } },
        account.rootToken,
      ),
    );
    expect(res.deactivateMfaDevice).toEqual({
      serialNumber: device.serialNumber,
      user: null,
      enableDate: null,
    });
    expect(await assignedTo(device.serialNumber)).toBeNull();
    // The seed is kept: later codes from the same app enable it again.
    const step = await awayFromStepEdge(stack);
    ok(
      await stack.gql(
        ENABLE_DEVICE,
        {
          input: {
            userName: "alice",
            serialNumber: device.serialNumber,
            ...codePair(device.seed, step + 1),
          },
        },
        account.rootToken,
      ),
    );
    expect(await assignedTo(device.serialNumber)).toBe("alice");
  });

  it("answers NOT_FOUND with AWS's messages for an unknown user, an unknown serial and someone else's device", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "alice");
    await createTestUser(stack, account.rootToken, "bob");
    const device = await enrolDevice(stack, account.rootToken, "alice", "alice-phone");
    const unknownUser = await stack.gql(
      DEACTIVATE,
      { input: { userName: "nonexistent-user", serialNumber: device.serialNumber } },
      account.rootToken,
    );
    expect(errorCode(unknownUser)).toBe("NOT_FOUND");
    expect(unknownUser.errors![0]!.message).toBe(
      "The user with name nonexistent-user cannot be found.",
    );
    const missing = `arn:aws:iam::${account.accountId}:mfa/nonexistent-device`;
    const unknownSerial = await stack.gql(
      DEACTIVATE,
      { input: { userName: "alice", serialNumber: missing } },
      account.rootToken,
    );
    expect(errorCode(unknownSerial)).toBe("NOT_FOUND");
    expect(unknownSerial.errors![0]!.message).toBe(
      `MFA Device with serial number ${missing} does not exist.`,
    );
    const notBobs = await stack.gql(
      DEACTIVATE,
      { input: { userName: "bob", serialNumber: device.serialNumber } },
      account.rootToken,
    );
    expect(errorCode(notBobs)).toBe("NOT_FOUND");
    expect(notBobs.errors![0]!.message).toBe(
      `MFA Device with serial number ${device.serialNumber} does not exist.`,
    );
    expect(await assignedTo(device.serialNumber)).toBe("alice");
  });

  it("lets a user deactivate their own device only from a session that passed MFA", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "carol");
    const carol = await signInUser(stack, account.accountId, "carol");
    const device = await enrolDevice(stack, carol.session!.token, "carol", "carol-phone");
    const input = { serialNumber: device.serialNumber };
    expect(errorCode(await stack.gql(DEACTIVATE, { input }, carol.session!.token))).toBe(
      "FORBIDDEN",
    );
    expect(await assignedTo(device.serialNumber)).toBe("carol");
    await markSessionMfaAuthenticated(stack, carol.session!.token);
    ok(await stack.gql(DEACTIVATE, { input }, carol.session!.token));
    expect(await assignedTo(device.serialNumber)).toBeNull();
  });

  it("does not let a plain user deactivate someone else's device", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "victim");
    await createTestUser(stack, account.rootToken, "mallory");
    const mallory = await signInUser(stack, account.accountId, "mallory");
    await markSessionMfaAuthenticated(stack, mallory.session!.token);
    const device = await enrolDevice(stack, account.rootToken, "victim", "victim-phone");
    const res = await stack.gql(
      DEACTIVATE,
      { input: { userName: "victim", serialNumber: device.serialNumber } },
      mallory.session!.token,
    );
    expect(errorCode(res)).toBe("FORBIDDEN");
    expect(await assignedTo(device.serialNumber)).toBe("victim");
  });

  it("records who deactivated which device in the audit trail", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "dora");
    const device = await enrolDevice(stack, account.rootToken, "dora", "dora-phone");
    ok(
      await stack.gql(
        DEACTIVATE,
        { input: { userName: "dora", serialNumber: device.serialNumber } },
        account.rootToken,
      ),
    );
    const events = await stack.db.auditEvent.findMany({
      where: { accountId: account.accountId, entityType: "VirtualMfaDevice" },
      orderBy: { id: "asc" },
    });
    expect(events.map((e) => [e.action, e.outcome])).toEqual([
      ["CreateVirtualMFADevice", "success"],
      ["EnableMFADevice", "success"],
      ["DeactivateMFADevice", "success"],
    ]);
    expect(events[2]!.actorUserId).toBe(account.accountId);
    expect(events[2]!.detail).toMatchObject({
      serialNumber: device.serialNumber,
      userName: "dora",
    });
  });
});

describe("rotating a device", () => {
  it("enables the new device and deactivates the old one together, even at one device per user", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "hank");
    const old = await enrolDevice(stack, account.rootToken, "hank", "hank-old");
    const replacement = await createDevice(stack, account.rootToken, "hank-new");
    const step = await awayFromStepEdge(stack);
    const res = ok(
      await stack.gql<{
        rotateMfaDevice: { enabled: { user: { userName: string } }; deactivated: { user: null } };
      }>(
        ROTATE,
        {
          input: {
            userName: "hank",
            oldSerialNumber: old.serialNumber,
            newSerialNumber: replacement.serialNumber,
            ...codePair(replacement.seed, step - 1),
          },
        },
        account.rootToken,
      ),
    );
    expect(res.rotateMfaDevice.enabled).toMatchObject({
      serialNumber: replacement.serialNumber,
      user: { userName: "hank" },
    });
    expect(res.rotateMfaDevice.deactivated).toEqual({
      serialNumber: old.serialNumber,
      user: null,
      enableDate: null,
    });
    expect(await assignedTo(replacement.serialNumber)).toBe("hank");
    expect(await assignedTo(old.serialNumber)).toBeNull();
  });

  it("leaves the old device in place when the new device's codes are wrong", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "ivy");
    const old = await enrolDevice(stack, account.rootToken, "ivy", "ivy-old");
    const replacement = await createDevice(stack, account.rootToken, "ivy-new");
    const step = await awayFromStepEdge(stack);
    const res = await stack.gql(
      ROTATE,
      {
        input: {
          userName: "ivy",
          oldSerialNumber: old.serialNumber,
          newSerialNumber: replacement.serialNumber,
          // The old device's codes do not prove the new one.
          ...codePair(old.seed, step + 1),
        },
      },
      account.rootToken,
    );
    expect(errorCode(res)).toBe("INVALID_AUTHENTICATION_CODE");
    expect(await assignedTo(old.serialNumber)).toBe("ivy");
    expect(await assignedTo(replacement.serialNumber)).toBeNull();
  });

  it("refuses a new device that is already in use", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "jack");
    await createTestUser(stack, account.rootToken, "kate");
    const jacks = await enrolDevice(stack, account.rootToken, "jack", "jack-phone");
    const kates = await enrolDevice(stack, account.rootToken, "kate", "kate-phone");
    const step = await awayFromStepEdge(stack);
    const res = await stack.gql(
      ROTATE,
      {
        input: {
          userName: "jack",
          oldSerialNumber: jacks.serialNumber,
          newSerialNumber: kates.serialNumber,
          ...codePair(kates.seed, step + 1),
        },
      },
      account.rootToken,
    );
    expect(errorCode(res)).toBe("ALREADY_EXISTS");
    expect(res.errors![0]!.message).toBe("MFA Device is already in use.");
    expect(await assignedTo(jacks.serialNumber)).toBe("jack");
    expect(await assignedTo(kates.serialNumber)).toBe("kate");
  });

  it("needs an MFA-authenticated session to rotate one's own device", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "liam");
    const liam = await signInUser(stack, account.accountId, "liam");
    const old = await enrolDevice(stack, liam.session!.token, "liam", "liam-old");
    const replacement = await createDevice(stack, liam.session!.token, "liam-new");
    const step = await awayFromStepEdge(stack);
    const input = {
      userName: "liam",
      oldSerialNumber: old.serialNumber,
      newSerialNumber: replacement.serialNumber,
      ...codePair(replacement.seed, step - 1),
    };
    expect(errorCode(await stack.gql(ROTATE, { input }, liam.session!.token))).toBe("FORBIDDEN");
    await markSessionMfaAuthenticated(stack, liam.session!.token);
    ok(await stack.gql(ROTATE, { input }, liam.session!.token));
    expect(await assignedTo(replacement.serialNumber)).toBe("liam");
  });
});

describe("the root user's device", () => {
  it("is enabled and deactivated by root alone, and shows root's ARN", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "admin", { isAdministrator: true });
    const admin = await signInUser(stack, account.accountId, "admin");
    await markSessionMfaAuthenticated(stack, admin.session!.token);
    const device = await createDevice(stack, account.rootToken, "root-account-mfa-device");
    const step = await awayFromStepEdge(stack);
    const codes = codePair(device.seed, step - 1);

    // An administrator can neither give root the device nor take it for themselves.
    for (const userName of ["root", "admin"]) {
      const res = await stack.gql(
        ENABLE_DEVICE,
        { input: { userName, serialNumber: device.serialNumber, ...codes } },
        admin.session!.token,
      );
      expect(errorCode(res)).toBe("FORBIDDEN");
    }
    ok(
      await stack.gql(
        ENABLE_DEVICE,
        { input: { userName: "root", serialNumber: device.serialNumber, ...codes } },
        account.rootToken,
      ),
    );
    const shown = ok(
      await stack.gql<{ virtualMfaDevice: { user: { userName: string } } }>(
        `query($s: String!) { virtualMfaDevice(serialNumber: $s) { user { userName arn isRoot } } }`,
        { s: device.serialNumber },
        account.rootToken,
      ),
    );
    expect(shown.virtualMfaDevice.user).toEqual({
      userName: "root",
      arn: `arn:aws:iam::${account.accountId}:root`,
      isRoot: true,
    });

    const byAdmin = await stack.gql(
      DEACTIVATE,
      { input: { userName: "root", serialNumber: device.serialNumber } },
      admin.session!.token,
    );
    expect(errorCode(byAdmin)).toBe("FORBIDDEN");
    const deleteByAdmin = await stack.gql(
      DELETE,
      { input: { serialNumber: device.serialNumber } },
      admin.session!.token,
    );
    expect(errorCode(deleteByAdmin)).toBe("FORBIDDEN");
    expect(await assignedTo(device.serialNumber)).toBe("root");

    await markSessionMfaAuthenticated(stack, account.rootToken);
    ok(
      await stack.gql(
        DEACTIVATE,
        { input: { serialNumber: device.serialNumber } },
        account.rootToken,
      ),
    );
    expect(await assignedTo(device.serialNumber)).toBeNull();
  });

  it("cannot be given to anyone but root", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "mia");
    const device = await createDevice(stack, account.rootToken, "root-account-mfa-device");
    const step = await awayFromStepEdge(stack);
    const res = await stack.gql(
      ENABLE_DEVICE,
      {
        input: {
          userName: "mia",
          serialNumber: device.serialNumber,
          ...codePair(device.seed, step - 1),
        },
      },
      account.rootToken,
    );
    expect(errorCode(res)).toBe("FORBIDDEN");
    expect(await assignedTo(device.serialNumber)).toBeNull();
  });
});
