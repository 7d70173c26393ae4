/**
 * The IAM lifecycle of a virtual MFA device: create and delete, with every error reference §4
 * records from real AWS, and what happens when no auth worker answers.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { errorCode, ok } from "../support/graphql";
import {
  createTestAccount,
  createTestUser,
  signInUser,
  type TestAccount,
} from "../support/fixtures";
import {
  MAX_UNASSIGNED_CREATED_PER_USER,
  TAKEN_NAME_ANSWERS_PER_HOUR,
} from "../../src/mfa-devices/mfa-device.service";
import { startStack, type Stack } from "../support/stack";
import {
  awayFromStepEdge,
  codePair,
  CREATE_DEVICE,
  createDevice,
  ENABLE_DEVICE,
  enrolDevice,
} from "../support/totp";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const DELETE = `mutation($input: DeleteVirtualMfaDeviceInput!) { deleteVirtualMfaDevice(input: $input) { deleted } }`;
const DEVICE = `query($serialNumber: String!) {
  virtualMfaDevice(serialNumber: $serialNumber) { serialNumber user { userName } enableDate }
}`;

const DEACTIVATE = `mutation($input: DeactivateMfaDeviceInput!) { deactivateMfaDevice(input: $input) { serialNumber } }`;

const stateFields = (key: string) =>
  (stack.redis as unknown as { hKeys(key: string): Promise<string[]> }).hKeys(key);

const deviceCount = (account: TestAccount) =>
  stack.db.virtualMfaDevice.count({ where: { accountId: account.accountId } });

async function assignedTo(serialNumber: string) {
  const row = await stack.db.virtualMfaDevice.findUniqueOrThrow({
    where: { serialNumber },
    include: { user: true },
  });
  return row.user?.userName ?? null;
}

describe("creating a device", () => {
  it("names it arn:aws:iam::<account>:mfa/<name> and shows a 64-character seed once", async () => {
    const account = await createTestAccount(stack);
    const res = await stack.gql<{
      createVirtualMfaDevice: {
        virtualMfaDevice: {
          serialNumber: string;
          virtualMfaDeviceName: string;
          path: string;
          user: null;
          enableDate: null;
        };
        base32StringSeed: string;
        otpauthUri: string;
        qrCodePng: string;
      };
    }>(CREATE_DEVICE, { input: { virtualMfaDeviceName: "test-device" } }, account.rootToken);
    const created = ok(res).createVirtualMfaDevice;
    expect(created.virtualMfaDevice).toMatchObject({
      serialNumber: `arn:aws:iam::${account.accountId}:mfa/test-device`,
      virtualMfaDeviceName: "test-device",
      path: "/",
      user: null,
      enableDate: null,
    });
    expect(created.base32StringSeed).toMatch(/^[A-Z2-7]{64}$/);
    expect(created.otpauthUri).toContain(`secret=${created.base32StringSeed}`);
    expect(Buffer.from(created.qrCodePng, "base64").subarray(1, 4).toString("latin1")).toBe("PNG");
  });

  it("puts the path between mfa and the name, and accepts an empty segment as AWS does", async () => {
    const account = await createTestAccount(stack);
    const a = await createDevice(stack, account.rootToken, "dev", { path: "/test-path/" });
    const b = await createDevice(stack, account.rootToken, "dev", { path: "/test//double/" });
    expect(a.serialNumber).toBe(`arn:aws:iam::${account.accountId}:mfa/test-path/dev`);
    expect(b.serialNumber).toBe(`arn:aws:iam::${account.accountId}:mfa/test//double/dev`);
  });

  it("refuses the same name at the same path with AWS's message, but not at another path", async () => {
    const account = await createTestAccount(stack);
    await createDevice(stack, account.rootToken, "dup");
    const res = await stack.gql(
      CREATE_DEVICE,
      { input: { virtualMfaDeviceName: "dup" } },
      account.rootToken,
    );
    expect(errorCode(res)).toBe("ALREADY_EXISTS");
    expect(res.errors![0]!.message).toBe("MFA device already exists.");
    expect(res.errors![0]!.extensions!.iamCode).toBe("EntityAlreadyExists");
    await createDevice(stack, account.rootToken, "dup", { path: "/other/" });
    expect(await deviceCount(account)).toBe(2);
  });

  it.each([
    ["a path without a trailing slash", { path: "/invalid-path" }, "must begin and end with /"],
    ["a path without a leading slash", { path: "invalid-path/" }, "must begin and end with /"],
    ["a path of 514 characters", { path: `/${"a".repeat(512)}/` }, "less than or equal to 512"],
    ["a name with a space", { virtualMfaDeviceName: "bad name" }, "regular expression pattern"],
    ["an empty name", { virtualMfaDeviceName: "" }, "greater than or equal to 1"],
    [
      "a name that makes the serial number longer than 256",
      { virtualMfaDeviceName: "z".repeat(250) },
      "must be at most 256",
    ],
    [
      "a path that makes the serial number longer than 256",
      { path: `/${"q".repeat(300)}/` },
      "must be at most 256",
    ],
    [
      "51 tags",
      { tags: Array.from({ length: 51 }, (_, i) => ({ key: `k${i}`, value: "v" })) },
      "less than or equal to 50",
    ],
    [
      "a tag key with a comma",
      {
        tags: [
          { key: "ok", value: "v" },
          { key: "a,b", value: "v" },
        ],
      },
      "regular expression pattern",
    ],
  ])("refuses %s with BAD_USER_INPUT and creates nothing", async (_label, input, message) => {
    const account = await createTestAccount(stack);
    const res = await stack.gql(
      CREATE_DEVICE,
      { input: { virtualMfaDeviceName: "dev", ...input } },
      account.rootToken,
    );
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
    expect(res.errors![0]!.message).toContain(message);
    expect(await deviceCount(account)).toBe(0);
  });

  // A serial number allows fewer characters than a path does: such a device could never be
  // named again (not even to delete it), and would hold its place in the quotas for good.
  it.each(["%", "(", "~", "!", "{", "\\"])(
    "refuses a path holding %s, which no serial number may, and creates nothing",
    async (char) => {
      const account = await createTestAccount(stack);
      const res = await stack.gql(
        CREATE_DEVICE,
        { input: { virtualMfaDeviceName: "dev", path: `/a${char}b/` } },
        account.rootToken,
      );
      expect(errorCode(res)).toBe("BAD_USER_INPUT");
      expect(res.errors![0]!.message).toContain("serial number may hold only");
      expect(await deviceCount(account)).toBe(0);
    },
  );

  it("creates a device whose serial number is exactly 256 characters, and can delete it", async () => {
    const account = await createTestAccount(stack);
    const prefix = `arn:aws:iam::${account.accountId}:mfa/`;
    const name = "n".repeat(256 - prefix.length);
    const device = await createDevice(stack, account.rootToken, name);
    expect(device.serialNumber).toHaveLength(256);
    const found = await stack.gql(DEVICE, { serialNumber: device.serialNumber }, account.rootToken);
    expect(errorCode(found)).toBeUndefined();
    const input = { serialNumber: device.serialNumber };
    expect(ok(await stack.gql(DELETE, { input }, account.rootToken))).toEqual({
      deleteVirtualMfaDevice: { deleted: true },
    });
  });

  it("reserves root-account-mfa-device, in any case, for root", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "boss", { isAdministrator: true });
    const boss = await signInUser(stack, account.accountId, "boss");
    // A case variant would look like root's device to people and to case-blind audit scripts.
    for (const virtualMfaDeviceName of ["root-account-mfa-device", "ROOT-Account-MFA-Device"]) {
      const input = { virtualMfaDeviceName };
      expect(errorCode(await stack.gql(CREATE_DEVICE, { input }, boss.session!.token))).toBe(
        "FORBIDDEN",
      );
    }
    ok(
      await stack.gql(
        CREATE_DEVICE,
        { input: { virtualMfaDeviceName: "root-account-mfa-device" } },
        account.rootToken,
      ),
    );
  });

  it("refuses more devices than the account's quota with LIMIT_EXCEEDED", async () => {
    const account = await createTestAccount(stack);
    // Filling 4999 places through the API would take minutes; the rows need not be real.
    await stack.db.virtualMfaDevice.createMany({
      data: Array.from({ length: 4999 }, (_, i) => ({
        id: randomUUID(),
        accountId: account.accountId,
        name: `filler-${i}`,
        serialNumber: `arn:aws:iam::${account.accountId}:mfa/filler-${i}`,
        sealedSeed: "not-a-seal",
        keyId: "none",
      })),
    });
    await createDevice(stack, account.rootToken, "the-last-one");
    const res = await stack.gql(
      CREATE_DEVICE,
      { input: { virtualMfaDeviceName: "one-too-many" } },
      account.rootToken,
    );
    expect(errorCode(res)).toBe("LIMIT_EXCEEDED");
    expect(res.errors![0]!.extensions!.iamCode).toBe("LimitExceeded");
    expect(await deviceCount(account)).toBe(5000);
  });

  it("tells a plain user a name is taken only so often, and an administrator always", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "ivy");
    await createTestUser(stack, account.rootToken, "ops", { isAdministrator: true });
    const ivy = (await signInUser(stack, account.accountId, "ivy")).session!.token;
    const ops = (await signInUser(stack, account.accountId, "ops")).session!.token;
    await createDevice(stack, account.rootToken, "break-glass");
    const probe = (token: string) =>
      stack.gql(CREATE_DEVICE, { input: { virtualMfaDeviceName: "break-glass" } }, token);
    for (let i = 0; i < TAKEN_NAME_ANSWERS_PER_HOUR; i++) {
      expect(errorCode(await probe(ivy))).toBe("ALREADY_EXISTS");
    }
    expect(errorCode(await probe(ivy))).toBe("RATE_LIMITED");
    expect(errorCode(await probe(ops))).toBe("ALREADY_EXISTS");
    // Nothing was made by any of it, and ivy may still create a device of her own.
    expect(await deviceCount(account)).toBe(1);
    await createDevice(stack, ivy, "ivy-phone");
  });

  it("bounds the unassigned devices a plain user may leave behind, but not an administrator's", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "hal");
    const hal = (await signInUser(stack, account.accountId, "hal")).session!.token;
    const first = await createDevice(stack, hal, "h0");
    for (let i = 1; i < MAX_UNASSIGNED_CREATED_PER_USER; i++)
      await createDevice(stack, hal, `h${i}`);
    const res = await stack.gql(CREATE_DEVICE, { input: { virtualMfaDeviceName: "more" } }, hal);
    expect(errorCode(res)).toBe("LIMIT_EXCEEDED");
    expect(res.errors![0]!.message).toContain("created by one user");
    expect(await deviceCount(account)).toBe(MAX_UNASSIGNED_CREATED_PER_USER);
    // At the bound, a name that is taken answers as a free one does, so a plain user cannot
    // probe for free which devices exist where no read of theirs would show them.
    await createDevice(stack, account.rootToken, "break-glass");
    const taken = await stack.gql(
      CREATE_DEVICE,
      { input: { virtualMfaDeviceName: "break-glass" } },
      hal,
    );
    expect(errorCode(taken)).toBe("LIMIT_EXCEEDED");
    // Enabling one of them makes room again.
    const step = await awayFromStepEdge(stack);
    const input = { userName: "hal", serialNumber: first.serialNumber };
    ok(
      await stack.gql(
        ENABLE_DEVICE,
        { input: { ...input, ...codePair(first.seed, step - 1) } },
        hal,
      ),
    );
    await createDevice(stack, hal, "after-enabling");
    // Root, with as many of its own unassigned as the bound, may still create more.
    const root = await stack.db.user.findFirstOrThrow({
      where: { accountId: account.accountId, isRoot: true },
    });
    await stack.db.virtualMfaDevice.createMany({
      data: Array.from({ length: MAX_UNASSIGNED_CREATED_PER_USER }, (_, i) => ({
        accountId: account.accountId,
        name: `root-left-${i}`,
        serialNumber: `arn:aws:iam::${account.accountId}:mfa/root-left-${i}`,
        sealedSeed: "not-a-seal",
        keyId: "none",
        createdById: root.id,
      })),
    });
    await createDevice(stack, account.rootToken, "roots-own");
  });

  it("needs a session", async () => {
    const res = await stack.gql(CREATE_DEVICE, { input: { virtualMfaDeviceName: "anon" } });
    expect(errorCode(res)).toBe("UNAUTHENTICATED");
  });
});

describe("deleting a device", () => {
  it("deletes an unassigned device, after which it cannot be found", async () => {
    const account = await createTestAccount(stack);
    const device = await createDevice(stack, account.rootToken, "gone");
    expect(
      ok(
        await stack.gql(
          DELETE,
          { input: { serialNumber: device.serialNumber } },
          account.rootToken,
        ),
      ),
    ).toEqual({
      deleteVirtualMfaDevice: { deleted: true },
    });
    const res = await stack.gql(DEVICE, { serialNumber: device.serialNumber }, account.rootToken);
    expect(errorCode(res)).toBe("NOT_FOUND");
  });

  it("drops the device's verification state from Redis once it is deleted", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "fay");
    // Enabling leaves state in Redis: the watermark and the source that succeeded.
    const device = await enrolDevice(stack, account.rootToken, "fay", "fay-phone");
    const input = { serialNumber: device.serialNumber };
    ok(await stack.gql(DEACTIVATE, { input: { ...input, userName: "fay" } }, account.rootToken));
    const { id } = await stack.db.virtualMfaDevice.findUniqueOrThrow({ where: input });
    const stateKey = `${stack.prefix}:{d:${id}}`;
    expect(await stateFields(stateKey)).toContain("wm");

    ok(await stack.gql(DELETE, { input }, account.rootToken));
    // Nothing is left but a tombstone, which refuses a verification still under way.
    await vi.waitFor(async () => expect(await stateFields(stateKey)).toEqual(["gone"]), {
      timeout: 5000,
    });
  });

  it("refuses while the device is assigned, with DELETE_CONFLICT", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "erin");
    const device = await enrolDevice(stack, account.rootToken, "erin", "erin-phone");
    const res = await stack.gql(
      DELETE,
      { input: { serialNumber: device.serialNumber } },
      account.rootToken,
    );
    expect(errorCode(res)).toBe("DELETE_CONFLICT");
    expect(res.errors![0]!.message).toBe("MFA VirtualDevice in use. Must deactivate first.");
    expect(res.errors![0]!.extensions!.iamCode).toBe("DeleteConflict");
    expect(await assignedTo(device.serialNumber)).toBe("erin");
  });

  it("answers NOT_FOUND with AWS's message for an unknown serial", async () => {
    const account = await createTestAccount(stack);
    const serialNumber = `arn:aws:iam::${account.accountId}:mfa/nonexistent-device`;
    const res = await stack.gql(DELETE, { input: { serialNumber } }, account.rootToken);
    expect(errorCode(res)).toBe("NOT_FOUND");
    expect(res.errors![0]!.message).toBe(
      `MFA Device with serial number arn:aws:iam::${account.accountId}:mfa/nonexistent-device does not exist.`,
    );
  });

  it("keeps deleteUser refusing while the user has a device", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "frank");
    await enrolDevice(stack, account.rootToken, "frank", "frank-phone");
    const res = await stack.gql(
      `mutation($input: DeleteUserInput!) { deleteUser(input: $input) { deleted } }`,
      { input: { userName: "frank" } },
      account.rootToken,
    );
    expect(errorCode(res)).toBe("DELETE_CONFLICT");
  });

  it("is for root and administrators only", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "gina");
    const gina = await signInUser(stack, account.accountId, "gina");
    const device = await createDevice(stack, gina.session!.token, "gina-spare");
    const res = await stack.gql(
      DELETE,
      { input: { serialNumber: device.serialNumber } },
      gina.session!.token,
    );
    expect(errorCode(res)).toBe("FORBIDDEN");
    expect(await deviceCount(account)).toBe(1);
  });
});

describe("when no auth worker answers", () => {
  it("refuses to create a device with SERVICE_UNAVAILABLE and writes nothing", async () => {
    const account = await createTestAccount(stack);
    const stopped = stack.workers.splice(0, stack.workers.length);
    try {
      await Promise.all(stopped.map((w) => w.stop()));
      const started = Date.now();
      const res = await stack.gql(
        CREATE_DEVICE,
        { input: { virtualMfaDeviceName: "offline" } },
        account.rootToken,
      );
      expect(errorCode(res)).toBe("SERVICE_UNAVAILABLE");
      expect(res.data).toBeNull();
      expect(Date.now() - started).toBeLessThan(5000);
      expect(await deviceCount(account)).toBe(0);
      const audit = await stack.db.auditEvent.count({
        where: { accountId: account.accountId, action: "CreateVirtualMFADevice" },
      });
      expect(audit).toBe(0);
    } finally {
      await stack.addWorker();
    }
    // And with a worker back, the same request succeeds.
    await createDevice(stack, account.rootToken, "offline");
  });

  it("still deletes a device: its state in Redis then lapses on its own", async () => {
    const account = await createTestAccount(stack);
    const device = await createDevice(stack, account.rootToken, "orphan");
    const stopped = stack.workers.splice(0, stack.workers.length);
    try {
      await Promise.all(stopped.map((w) => w.stop()));
      const input = { serialNumber: device.serialNumber };
      expect(ok(await stack.gql(DELETE, { input }, account.rootToken))).toEqual({
        deleteVirtualMfaDevice: { deleted: true },
      });
      expect(await deviceCount(account)).toBe(0);
    } finally {
      await stack.addWorker();
    }
  });

  it("refuses to enable a device with SERVICE_UNAVAILABLE and leaves it unassigned", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "nina");
    const device = await createDevice(stack, account.rootToken, "nina-phone");
    const stopped = stack.workers.splice(0, stack.workers.length);
    try {
      await Promise.all(stopped.map((w) => w.stop()));
      const step = await awayFromStepEdge(stack);
      const res = await stack.gql(
        ENABLE_DEVICE,
        {
          input: {
            userName: "nina",
            serialNumber: device.serialNumber,
            ...codePair(device.seed, step - 1),
          },
        },
        account.rootToken,
      );
      expect(errorCode(res)).toBe("SERVICE_UNAVAILABLE");
      expect(await assignedTo(device.serialNumber)).toBeNull();
    } finally {
      await stack.addWorker();
    }
  });
});
