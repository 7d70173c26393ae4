/**
 * EnableMFADevice: two consecutive codes assign a device to a user, with AWS's errors, the
 * per-user limit, and races that must not both win.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, ok, type GraphQLResponse } from "../support/graphql";
import { createTestAccount, createTestUser, signInUser } from "../support/fixtures";
import { startStack, type Stack } from "../support/stack";
import {
  awayFromStepEdge,
  codeAt,
  codePair,
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

const MFA_DEVICES = `query($userName: String) {
  mfaDevices(userName: $userName) { edges { node { serialNumber userName enableDate } } }
}`;
const SETTINGS = `mutation($input: UpdateAccountSettingsInput!) {
  updateAccountSettings(input: $input) { maxDevicesPerUser }
}`;

async function assignedTo(serialNumber: string) {
  const row = await stack.db.virtualMfaDevice.findUniqueOrThrow({
    where: { serialNumber },
    include: { user: true },
  });
  return row.user?.userName ?? null;
}

const enable = (token: string, input: Record<string, string>) =>
  stack.gql(ENABLE_DEVICE, { input }, token);

function expectInvalidCode(res: GraphQLResponse<unknown>) {
  expect(errorCode(res)).toBe("INVALID_AUTHENTICATION_CODE");
  expect(res.errors![0]!.message).toBe("Authentication code for device is not valid.");
  expect(res.errors![0]!.extensions!.iamCode).toBe("InvalidAuthenticationCode");
}

describe("enabling a device", () => {
  it("accepts the codes for steps T-1 and T, after which the user lists the device", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "alice");
    const device = await createDevice(stack, account.rootToken, "alice-phone");
    const step = await awayFromStepEdge(stack);
    const before = Date.now();
    ok(
      await enable(account.rootToken, {
        userName: "alice",
        serialNumber: device.serialNumber,
        ...codePair(device.seed, step - 1),
      }),
    );
    const listed = ok(
      await stack.gql<{
        mfaDevices: {
          edges: { node: { serialNumber: string; userName: string; enableDate: string } }[];
        };
      }>(MFA_DEVICES, { userName: "alice" }, account.rootToken),
    );
    expect(listed.mfaDevices.edges).toHaveLength(1);
    const node = listed.mfaDevices.edges[0]!.node;
    expect(node).toMatchObject({ serialNumber: device.serialNumber, userName: "alice" });
    expect(Math.abs(Date.parse(node.enableDate) - before)).toBeLessThan(10_000);
  });

  it("lets a user enable a device for themselves, but not for someone else", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "bob");
    await createTestUser(stack, account.rootToken, "carl");
    const bob = await signInUser(stack, account.accountId, "bob");
    const device = await createDevice(stack, bob.session!.token, "bob-phone");
    const step = await awayFromStepEdge(stack);
    const codes = codePair(device.seed, step - 1);
    const forCarl = await enable(bob.session!.token, {
      userName: "carl",
      serialNumber: device.serialNumber,
      ...codes,
    });
    expect(errorCode(forCarl)).toBe("FORBIDDEN");
    ok(
      await enable(bob.session!.token, {
        userName: "bob",
        serialNumber: device.serialNumber,
        ...codes,
      }),
    );
    expect(await assignedTo(device.serialNumber)).toBe("bob");
  });

  it("answers NOT_FOUND with AWS's message for an unknown user", async () => {
    const account = await createTestAccount(stack);
    const device = await createDevice(stack, account.rootToken, "orphan");
    const step = await awayFromStepEdge(stack);
    const res = await enable(account.rootToken, {
      userName: "nonexistent-user",
      serialNumber: device.serialNumber,
      ...codePair(device.seed, step - 1),
    });
    expect(errorCode(res)).toBe("NOT_FOUND");
    expect(res.errors![0]!.message).toBe("The user with name nonexistent-user cannot be found.");
    expect(res.errors![0]!.extensions!.iamCode).toBe("NoSuchEntity");
  });

  it("answers NOT_FOUND with AWS's message for an unknown serial number", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "dan");
    const serialNumber = `arn:aws:iam::${account.accountId}:mfa/nonexistent-device`;
    const res = await enable(account.rootToken, {
      userName: "dan",
      serialNumber,
      authenticationCode1: "123456",
      authenticationCode2: "654321",
    });
    expect(errorCode(res)).toBe("NOT_FOUND");
    expect(res.errors![0]!.message).toBe(
      `MFA Device with serial number ${serialNumber} does not exist.`,
    );
  });

  it("refuses a device already in use, by the same user or another, with ALREADY_EXISTS", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "eve");
    await createTestUser(stack, account.rootToken, "fay");
    const device = await enrolDevice(stack, account.rootToken, "eve", "eve-phone");
    const step = await awayFromStepEdge(stack);
    for (const userName of ["eve", "fay"]) {
      const res = await enable(account.rootToken, {
        userName,
        serialNumber: device.serialNumber,
        ...codePair(device.seed, step + 1),
      });
      expect(errorCode(res)).toBe("ALREADY_EXISTS");
      expect(res.errors![0]!.message).toBe("MFA Device is already in use.");
    }
    expect(await assignedTo(device.serialNumber)).toBe("eve");
  });

  it("refuses wrong codes with INVALID_AUTHENTICATION_CODE, records the failure, and assigns nothing", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "gus");
    const device = await createDevice(stack, account.rootToken, "gus-phone");
    const step = await awayFromStepEdge(stack);
    const right = codePair(device.seed, step - 1);
    // Right codes in the wrong order are not two consecutive codes.
    const res = await enable(account.rootToken, {
      userName: "gus",
      serialNumber: device.serialNumber,
      authenticationCode1: right.authenticationCode2,
      authenticationCode2: right.authenticationCode1,
    });
    expectInvalidCode(res);
    expect(await assignedTo(device.serialNumber)).toBeNull();
    const failure = await stack.db.auditEvent.findFirst({
      where: { accountId: account.accountId, action: "EnableMFADevice" },
    });
    expect(failure).toMatchObject({ outcome: "failure" });
    expect(failure!.detail).toMatchObject({ error: "INVALID_AUTHENTICATION_CODE" });
  });

  it("refuses a code that was already accepted, saying it was replayed", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "hal");
    const device = await createDevice(stack, account.rootToken, "hal-phone");
    const step = await awayFromStepEdge(stack);
    const codes = codePair(device.seed, step - 1);
    ok(
      await enable(account.rootToken, {
        userName: "hal",
        serialNumber: device.serialNumber,
        ...codes,
      }),
    );
    ok(
      await stack.gql(
        `mutation($input: DeactivateMfaDeviceInput!) { deactivateMfaDevice(input: $input) { serialNumber } }`,
        { input: { userName: "hal", serialNumber: device.serialNumber } },
        account.rootToken,
      ),
    );
    const again = await enable(account.rootToken, {
      userName: "hal",
      serialNumber: device.serialNumber,
      ...codes,
    });
    expectInvalidCode(again);
    expect(again.errors![0]!.extensions!.reason).toBe("REPLAYED");
    expect(await assignedTo(device.serialNumber)).toBeNull();
  });

  it("reports codes from far outside the window as CLOCK_SKEW with the offset, and never accepts them", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "ida");
    const device = await createDevice(stack, account.rootToken, "ida-phone");
    const step = await awayFromStepEdge(stack, 10);
    // A phone 15 steps (7.5 minutes) slow: beyond the enrolment window, inside classification.
    const res = await enable(account.rootToken, {
      userName: "ida",
      serialNumber: device.serialNumber,
      ...codePair(device.seed, step - 16),
    });
    expectInvalidCode(res);
    expect(res.errors![0]!.extensions).toMatchObject({ reason: "CLOCK_SKEW", offsetSteps: -15 });
    expect(await assignedTo(device.serialNumber)).toBeNull();
  });

  it.each([
    ["five digits", "12345", "greater than or equal to 6"],
    ["seven digits", "1234567", "less than or equal to 6"],
    ["letters", "12a456", "regular expression pattern"],
  ])(
    "refuses a code of %s with BAD_USER_INPUT before asking the worker",
    async (_label, code, message) => {
      const account = await createTestAccount(stack);
      await createTestUser(stack, account.rootToken, "jon");
      const device = await createDevice(stack, account.rootToken, "jon-phone");
      const res = await enable(account.rootToken, {
        userName: "jon",
        serialNumber: device.serialNumber,
        authenticationCode1: code,
        authenticationCode2: "123456",
      });
      expect(errorCode(res)).toBe("BAD_USER_INPUT");
      expect(res.errors![0]!.message).toContain("authenticationCode1");
      expect(res.errors![0]!.message).toContain(message);
      // No worker call means no attempt spent and nothing in the audit trail.
      expect(
        await stack.db.auditEvent.count({
          where: { accountId: account.accountId, action: "EnableMFADevice" },
        }),
      ).toBe(0);
    },
  );

  it("enables a device of 8-digit SHA-256 codes with its own codes, and says how long they are", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "alice");
    const device = await createDevice(stack, account.rootToken, "alice-token");
    // No public input makes such a device; a provisioning or migration path might.
    await stack.db.virtualMfaDevice.update({
      where: { serialNumber: device.serialNumber },
      data: { digits: 8, algorithm: "SHA256" },
    });
    const step = await awayFromStepEdge(stack);
    const codes = (digits: number) => ({
      authenticationCode1: codeAt(device.seed, step - 1, { digits, algorithm: "SHA256" }),
      authenticationCode2: codeAt(device.seed, step, { digits, algorithm: "SHA256" }),
    });
    const input = { userName: "alice", serialNumber: device.serialNumber };
    const tooShort = await enable(account.rootToken, { ...input, ...codes(6) });
    expect(errorCode(tooShort)).toBe("BAD_USER_INPUT");
    expect(tooShort.errors![0]!.message).toContain("length greater than or equal to 8");
    ok(await enable(account.rootToken, { ...input, ...codes(8) }));
    expect(await assignedTo(device.serialNumber)).toBe("alice");
  });

  it("accepts codes typed with spaces, as people copy them", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "kim");
    const device = await createDevice(stack, account.rootToken, "kim-phone");
    const step = await awayFromStepEdge(stack);
    const spaced = (code: string) => `${code.slice(0, 3)} ${code.slice(3)}`;
    ok(
      await enable(account.rootToken, {
        userName: "kim",
        serialNumber: device.serialNumber,
        authenticationCode1: spaced(codeAt(device.seed, step - 1)),
        authenticationCode2: spaced(codeAt(device.seed, step)),
      }),
    );
    expect(await assignedTo(device.serialNumber)).toBe("kim");
  });
});

describe("request ids", () => {
  it("never hands one request's acceptance to another that reuses its request id", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "rae");
    await createTestUser(stack, account.rootToken, "sol");
    const raes = await createDevice(stack, account.rootToken, "rae-phone");
    const sols = await createDevice(stack, account.rootToken, "sol-phone");
    const step = await awayFromStepEdge(stack);
    const headers = { "x-request-id": "client-chosen-id" };
    const good = {
      userName: "rae",
      serialNumber: raes.serialNumber,
      ...codePair(raes.seed, step - 1),
    };
    ok(await stack.gql(ENABLE_DEVICE, { input: good }, account.rootToken, headers));
    const forged = {
      userName: "sol",
      serialNumber: sols.serialNumber,
      authenticationCode1: "000000",
      authenticationCode2: "000000",
    };
    const res = await stack.gql(ENABLE_DEVICE, { input: forged }, account.rootToken, headers);
    expect(errorCode(res)).toBe("INVALID_AUTHENTICATION_CODE");
    expect(await assignedTo(sols.serialNumber)).toBeNull();
  });
});

describe("devices per user", () => {
  it("allows one device per user by default and more once the account allows it", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "leo");
    await enrolDevice(stack, account.rootToken, "leo", "leo-1");
    const second = await createDevice(stack, account.rootToken, "leo-2");
    const step = await awayFromStepEdge(stack);
    const input = {
      userName: "leo",
      serialNumber: second.serialNumber,
      ...codePair(second.seed, step - 1),
    };
    const refused = await enable(account.rootToken, input);
    expect(errorCode(refused)).toBe("LIMIT_EXCEEDED");
    expect(refused.errors![0]!.message).toBe("Cannot exceed quota for MFADevicesPerUser: 1.");
    expect(await assignedTo(second.serialNumber)).toBeNull();

    expect(
      ok(await stack.gql(SETTINGS, { input: { maxDevicesPerUser: 2 } }, account.rootToken)),
    ).toEqual({
      updateAccountSettings: { maxDevicesPerUser: 2 },
    });
    ok(await enable(account.rootToken, input));
    expect(await assignedTo(second.serialNumber)).toBe("leo");
  });

  it.each([0, 9])("refuses a per-user limit of %i", async (maxDevicesPerUser) => {
    const account = await createTestAccount(stack);
    const res = await stack.gql(SETTINGS, { input: { maxDevicesPerUser } }, account.rootToken);
    expect(errorCode(res)).toBe("BAD_USER_INPUT");
  });

  it("lets only root and administrators change the limit", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "max");
    const max = await signInUser(stack, account.accountId, "max");
    const res = await stack.gql(SETTINGS, { input: { maxDevicesPerUser: 8 } }, max.session!.token);
    expect(errorCode(res)).toBe("FORBIDDEN");
    const row = await stack.db.account.findUniqueOrThrow({ where: { id: account.accountId } });
    expect(row.maxDevicesPerUser).toBe(1);
  });
});

describe("racing enables", () => {
  it("lets only one of two devices take a user's last place", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "ned");
    const a = await createDevice(stack, account.rootToken, "ned-a");
    const b = await createDevice(stack, account.rootToken, "ned-b");
    const step = await awayFromStepEdge(stack);
    const results = await Promise.all(
      [a, b].map((d) =>
        enable(account.rootToken, {
          userName: "ned",
          serialNumber: d.serialNumber,
          ...codePair(d.seed, step - 1),
        }),
      ),
    );
    expect(results.map(errorCode).sort()).toEqual([undefined, "LIMIT_EXCEEDED"].sort());
    expect(
      await stack.db.virtualMfaDevice.count({
        where: { accountId: account.accountId, user: { userName: "ned" } },
      }),
    ).toBe(1);
  });

  it("gives one device to only one of two users enabling it at once", async () => {
    const account = await createTestAccount(stack);
    await createTestUser(stack, account.rootToken, "oli");
    await createTestUser(stack, account.rootToken, "pat");
    const device = await createDevice(stack, account.rootToken, "shared");
    const step = await awayFromStepEdge(stack);
    const results = await Promise.all(
      ["oli", "pat"].map((userName, i) =>
        enable(account.rootToken, {
          userName,
          serialNumber: device.serialNumber,
          ...codePair(device.seed, step - 1 + i),
        }),
      ),
    );
    expect(results.filter((r) => errorCode(r) === undefined)).toHaveLength(1);
    const owner = await assignedTo(device.serialNumber);
    expect(["oli", "pat"]).toContain(owner);
  });
});

describe("guessing", () => {
  let strict: Stack;
  beforeAll(async () => {
    // Locks long enough that the test cannot outrun them.
    strict = await startStack({
      policy: { pairFree: 2, pairBaseSeconds: 120, pairCapSeconds: 600 },
    });
  });
  afterAll(async () => {
    await strict?.stop();
  });

  it("answers RATE_LIMITED with retryAfterSeconds once a device's attempts are spent", async () => {
    const account = await createTestAccount(strict);
    await createTestUser(strict, account.rootToken, "quinn");
    const device = await createDevice(strict, account.rootToken, "quinn-phone");
    const wrong = {
      userName: "quinn",
      serialNumber: device.serialNumber,
      authenticationCode1: "000000",
      authenticationCode2: "000000",
    };
    const first = await strict.gql(ENABLE_DEVICE, { input: wrong }, account.rootToken);
    const second = await strict.gql(ENABLE_DEVICE, { input: wrong }, account.rootToken);
    expect([errorCode(first), errorCode(second)]).toEqual([
      "INVALID_AUTHENTICATION_CODE",
      "INVALID_AUTHENTICATION_CODE",
    ]);
    // Locked now: even the right codes are not looked at.
    const step = await awayFromStepEdge(strict);
    const locked = await strict.gql(
      ENABLE_DEVICE,
      { input: { ...wrong, ...codePair(device.seed, step - 1) } },
      account.rootToken,
    );
    expect(errorCode(locked)).toBe("RATE_LIMITED");
    expect(locked.errors![0]!.extensions!.iamCode).toBe("Throttling");
    expect(locked.errors![0]!.extensions!.retryAfterSeconds).toBeGreaterThan(60);
    const row = await strict.db.virtualMfaDevice.findUniqueOrThrow({
      where: { serialNumber: device.serialNumber },
    });
    expect(row.userId).toBeNull();
  });
});
